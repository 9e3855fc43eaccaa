//! `Origin`: scheme, host and port, the key of a pool.

use std::fmt;
use std::hash::{Hash, Hasher};
use std::str::FromStr;

use http::uri::{Authority, Scheme};
use http::Uri;
use undici_connectors::{Destination, Scheme as ConnectScheme};

use crate::error::Error;

/// An origin: `http` or `https`, a host and a port (the scheme's default
/// port is left out, so `http://a:80` and `http://a` are one origin, and
/// the host is lowercased, so `http://A` and `http://a` are too).
#[derive(Clone)]
pub struct Origin {
    scheme: Scheme,
    authority: Authority,
}

impl Origin {
    /// The origin of an absolute URL.
    pub fn from_uri(uri: &Uri) -> Result<Self, Error> {
        let Some(name) = uri.scheme_str() else {
            return Err(Error::invalid_argument(format!(
                "{uri} is not an absolute URL: the origin is missing"
            )));
        };
        let Some(https) = https_scheme(name) else {
            return Err(Error::invalid_argument(format!(
                "invalid protocol {name:?} in {uri}: expected http or https"
            )));
        };
        // An Agent makes an origin of every request: the authority is
        // read in one pass of its own rather than through
        // `Authority::host` and `port_u16`'s string searches, and the
        // usual one, lowercase and without its default port, is kept
        // without allocating.
        let no_host = || Error::invalid_argument(format!("{uri} has no host"));
        let authority = uri.authority().ok_or_else(no_host)?;
        let written = authority.as_str();
        let (mut userinfo, mut uppercase) = (false, false);
        for byte in written.bytes() {
            userinfo |= byte == b'@';
            uppercase |= byte.is_ascii_uppercase();
        }
        if userinfo {
            return Err(Error::invalid_argument(format!(
                "{uri}: credentials in the origin are not supported; send an authorization header"
            )));
        }
        let (host, port) = split_port(written);
        if host.is_empty() {
            return Err(no_host());
        }
        let is_default_port = port == Some(if https { 443 } else { 80 });
        let authority = if is_default_port || uppercase {
            let kept = if is_default_port { host } else { written };
            Authority::from_str(&kept.to_ascii_lowercase())
                .map_err(|e| Error::invalid_argument(format!("invalid host in {uri}: {e}")))?
        } else {
            authority.clone()
        };
        Ok(Origin {
            scheme: scheme(https),
            authority,
        })
    }

    /// Whether `uri` names this origin as it is kept (lowercase, without
    /// the default port): what a request routed by an Agent carries, so
    /// the pool's check need not build its origin again. False says
    /// nothing: `uri` may still name it in another spelling.
    pub(crate) fn is_spelled_in(&self, uri: &Uri) -> bool {
        // Schemes compare as the parsed kinds they are, not as strings.
        uri.scheme() == Some(&self.scheme)
            && uri.authority().map(Authority::as_str) == Some(self.authority.as_str())
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

/// Whether a URL scheme is `https` (`Some(false)` for `http`); `None`
/// for any other.
pub(crate) fn https_scheme(name: &str) -> Option<bool> {
    match name {
        "http" => Some(false),
        "https" => Some(true),
        _ => None,
    }
}

fn scheme(https: bool) -> Scheme {
    if https {
        Scheme::HTTPS
    } else {
        Scheme::HTTP
    }
}

/// An authority without userinfo split into its host (IPv6 brackets
/// kept) and its port: `host:8080`, `[::1]:8080`; a port that is not a
/// number stays part of the host, which `Authority` never lets through.
fn split_port(authority: &str) -> (&str, Option<u16>) {
    let digits = authority
        .bytes()
        .rev()
        .take_while(u8::is_ascii_digit)
        .count();
    let Some(colon) = authority.len().checked_sub(digits + 1) else {
        return (authority, None);
    };
    if authority.as_bytes()[colon] != b':' {
        return (authority, None);
    }
    (&authority[..colon], authority[colon + 1..].parse().ok())
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

/// Compared and hashed as written: the authority is already normalized,
/// so one comparison of bytes does what `Authority`'s case-insensitive one
/// does byte by byte.
impl PartialEq for Origin {
    fn eq(&self, other: &Self) -> bool {
        self.scheme == other.scheme && self.authority.as_str() == other.authority.as_str()
    }
}

impl Eq for Origin {}

impl Hash for Origin {
    fn hash<H: Hasher>(&self, state: &mut H) {
        self.is_https().hash(state);
        self.authority.as_str().hash(state);
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
        assert_eq!(b.to_string(), "http://example.com");
        assert_eq!(a.port(), 80);
        let upper: Origin = "http://Example.COM:8080".parse().unwrap();
        assert_eq!(upper.to_string(), "http://example.com:8080");
        assert_eq!(upper, "http://example.com:8080".parse::<Origin>().unwrap());
    }

    #[test]
    fn ports_are_split_off_the_end() {
        assert_eq!(split_port("a.test:8080"), ("a.test", Some(8080)));
        assert_eq!(split_port("[::1]:443"), ("[::1]", Some(443)));
        assert_eq!(split_port("[::1]"), ("[::1]", None));
        assert_eq!(split_port("a1"), ("a1", None));
        assert_eq!(split_port("a.test:"), ("a.test", None));
        assert_eq!(split_port(":80"), ("", Some(80)));
        let v6: Origin = "http://[::1]:80/".parse().unwrap();
        assert_eq!(v6.to_string(), "http://[::1]");
        assert!("http://:80/".parse::<Origin>().is_err());
    }

    #[test]
    fn only_the_kept_spelling_is_recognised_without_parsing() {
        let origin: Origin = "http://Example.com:80".parse().unwrap();
        let spelled = |uri: &str| origin.is_spelled_in(&uri.parse().unwrap());
        assert!(spelled("http://example.com/a?b"));
        assert!(!spelled("https://example.com/"));
        assert!(!spelled("http://example.com:80/"));
        assert!(!spelled("http://example.com:8080/"));
        assert!(!spelled("/a"));
        assert!("http://user@example.com/".parse::<Origin>().is_err());
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
