//! `Origin`: scheme, host and port, the key of a pool.

use std::fmt;
use std::str::FromStr;

use http::uri::{Authority, Scheme};
use http::Uri;
use undici_connectors::{Destination, Scheme as ConnectScheme};

use crate::error::Error;

/// An origin: `http` or `https`, a host and a port (the scheme's default
/// port is left out, so `http://a:80` and `http://a` are one origin).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Origin {
    scheme: Scheme,
    authority: Authority,
}

impl Origin {
    /// The origin of an absolute URL.
    pub fn from_uri(uri: &Uri) -> Result<Self, Error> {
        let scheme = match uri.scheme_str() {
            Some("http") => Scheme::HTTP,
            Some("https") => Scheme::HTTPS,
            Some(other) => {
                return Err(Error::invalid_argument(format!(
                    "invalid protocol {other:?} in {uri}: expected http or https"
                )))
            }
            None => {
                return Err(Error::invalid_argument(format!(
                    "{uri} is not an absolute URL: the origin is missing"
                )))
            }
        };
        let authority = uri
            .authority()
            .filter(|a| !a.host().is_empty())
            .ok_or_else(|| Error::invalid_argument(format!("{uri} has no host")))?;
        if authority.as_str().contains('@') {
            return Err(Error::invalid_argument(format!(
                "{uri}: credentials in the origin are not supported; send an authorization header"
            )));
        }
        let default_port = if scheme == Scheme::HTTPS { 443 } else { 80 };
        let authority = match authority.port_u16() {
            Some(port) if port == default_port => Authority::from_str(authority.host())
                .map_err(|e| Error::invalid_argument(format!("invalid host in {uri}: {e}")))?,
            _ => authority.clone(),
        };
        Ok(Origin { scheme, authority })
    }

    /// `http` or `https`.
    pub fn scheme(&self) -> &Scheme {
        &self.scheme
    }

    /// Host and port as written in URLs (`example.com:8080`, `[::1]:80`).
    pub fn authority(&self) -> &Authority {
        &self.authority
    }

    /// The host, without IPv6 brackets.
    pub fn host(&self) -> &str {
        self.authority
            .host()
            .trim_start_matches('[')
            .trim_end_matches(']')
    }

    /// The port, or the scheme's default.
    pub fn port(&self) -> u16 {
        self.authority
            .port_u16()
            .unwrap_or(if self.is_https() { 443 } else { 80 })
    }

    /// True for `https`.
    pub fn is_https(&self) -> bool {
        self.scheme == Scheme::HTTPS
    }

    /// The URL of the origin's root, `http://host:port/`.
    pub fn to_uri(&self) -> Uri {
        Uri::builder()
            .scheme(self.scheme.clone())
            .authority(self.authority.clone())
            .path_and_query("/")
            .build()
            .unwrap_or_default()
    }

    /// What the connector is asked to reach for this origin.
    pub fn destination(&self) -> Destination {
        let scheme = if self.is_https() {
            ConnectScheme::Https
        } else {
            ConnectScheme::Http
        };
        Destination::new(scheme, self.host(), self.port())
    }
}

impl FromStr for Origin {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self, Error> {
        let uri: Uri = s
            .parse()
            .map_err(|e| Error::invalid_argument(format!("invalid origin {s:?}: {e}")))?;
        Origin::from_uri(&uri)
    }
}

impl TryFrom<&str> for Origin {
    type Error = Error;

    fn try_from(s: &str) -> Result<Self, Error> {
        s.parse()
    }
}

impl TryFrom<String> for Origin {
    type Error = Error;

    fn try_from(s: String) -> Result<Self, Error> {
        s.parse()
    }
}

impl TryFrom<&Uri> for Origin {
    type Error = Error;

    fn try_from(uri: &Uri) -> Result<Self, Error> {
        Origin::from_uri(uri)
    }
}

impl TryFrom<Uri> for Origin {
    type Error = Error;

    fn try_from(uri: Uri) -> Result<Self, Error> {
        Origin::from_uri(&uri)
    }
}

/// What names an origin: an [`Origin`], a URL string or a `Uri`.
pub trait IntoOrigin {
    /// The origin, or `UND_ERR_INVALID_ARG` when it is not an absolute
    /// `http`/`https` URL.
    fn into_origin(self) -> Result<Origin, Error>;
}

impl IntoOrigin for Origin {
    fn into_origin(self) -> Result<Origin, Error> {
        Ok(self)
    }
}

impl IntoOrigin for &Origin {
    fn into_origin(self) -> Result<Origin, Error> {
        Ok(self.clone())
    }
}

impl IntoOrigin for &str {
    fn into_origin(self) -> Result<Origin, Error> {
        self.parse()
    }
}

impl IntoOrigin for String {
    fn into_origin(self) -> Result<Origin, Error> {
        self.parse()
    }
}

impl IntoOrigin for &String {
    fn into_origin(self) -> Result<Origin, Error> {
        self.parse()
    }
}

impl IntoOrigin for Uri {
    fn into_origin(self) -> Result<Origin, Error> {
        Origin::from_uri(&self)
    }
}

impl IntoOrigin for &Uri {
    fn into_origin(self) -> Result<Origin, Error> {
        Origin::from_uri(self)
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}://{}", self.scheme, self.authority)
    }
}

impl fmt::Debug for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Origin({self})")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn default_ports_are_left_out() {
        let a: Origin = "http://example.com:80/path".parse().unwrap();
        let b: Origin = "http://EXAMPLE.com".parse().unwrap();
        assert_eq!(a, b);
        assert_eq!(a.to_string(), "http://example.com");
        assert_eq!(a.port(), 80);
    }

    #[test]
    fn ipv6_hosts_lose_their_brackets() {
        let origin: Origin = "https://[::1]:8443".parse().unwrap();
        assert_eq!(origin.host(), "::1");
        assert_eq!(origin.port(), 8443);
    }

    #[test]
    fn paths_and_other_schemes_are_rejected() {
        assert_eq!(
            "/just/a/path".parse::<Origin>().unwrap_err().code(),
            "UND_ERR_INVALID_ARG"
        );
        assert!("ftp://example.com".parse::<Origin>().is_err());
    }
}
