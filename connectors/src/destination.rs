//! `Destination`: what a connector is asked to reach.

use std::fmt;
use std::net::{IpAddr, SocketAddr};

use http::Uri;
use tokio::io::{AsyncRead, AsyncWrite};

use crate::connection::ConnectionInfo;
use crate::error::ConnectError;

/// A stream the connector can run TLS over (undici's `httpSocket`).
///
/// Any tokio stream that is `Send + Unpin + 'static` is one. Whether its
/// addresses are known depends on its type: see
/// [`Destination::http_socket`].
pub trait Io: AsyncRead + AsyncWrite + Send + Unpin + 'static {}

impl<T: AsyncRead + AsyncWrite + Send + Unpin + 'static> Io for T {}

/// Whether the connection is plain or TLS.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Scheme {
    /// Plain TCP (or a plain Unix socket).
    Http,
    /// TLS on top.
    Https,
}

impl Scheme {
    /// The port used when a URL names none: 80 or 443.
    pub fn default_port(self) -> u16 {
        match self {
            Scheme::Http => 80,
            Scheme::Https => 443,
        }
    }

    /// `"http"` or `"https"`.
    pub fn as_str(self) -> &'static str {
        match self {
            Scheme::Http => "http",
            Scheme::Https => "https",
        }
    }
}

/// Where to connect: the argument of a connector's `call`, as the object
/// undici passes to a connector function (`hostname`, `protocol`, `port`,
/// `servername`, `localAddress`, `httpSocket`).
pub struct Destination {
    scheme: Scheme,
    host: String,
    port: u16,
    servername: Option<String>,
    local_address: Option<IpAddr>,
    addresses: Option<Vec<SocketAddr>>,
    allow_h2: Option<bool>,
    http_socket: Option<(Box<dyn Io>, ConnectionInfo)>,
}

impl Destination {
    /// A destination from its parts. `host` is a name or an IP literal
    /// (IPv6 with or without brackets).
    pub fn new(scheme: Scheme, host: impl Into<String>, port: u16) -> Self {
        let mut host = host.into();
        if host.starts_with('[') && host.ends_with(']') {
            host = host[1..host.len() - 1].to_owned();
        }
        Destination {
            scheme,
            host,
            port,
            servername: None,
            local_address: None,
            addresses: None,
            allow_h2: None,
            http_socket: None,
        }
    }

    /// The destination of a URL's origin: scheme `http` or `https`, its host,
    /// and its port or the scheme's default.
    pub fn from_uri(uri: &Uri) -> Result<Self, ConnectError> {
        let scheme = match uri.scheme_str() {
            Some("http") | Some("ws") => Scheme::Http,
            Some("https") | Some("wss") => Scheme::Https,
            Some(other) => {
                return Err(ConnectError::invalid(format!(
                    "unsupported scheme {other:?} in {uri}, expected http or https"
                )))
            }
            None => return Err(ConnectError::invalid(format!("{uri} has no scheme"))),
        };
        let host = uri
            .host()
            .filter(|host| !host.is_empty())
            .ok_or_else(|| ConnectError::invalid(format!("{uri} has no host")))?;
        let port = uri.port_u16().unwrap_or(scheme.default_port());
        Ok(Destination::new(scheme, host, port))
    }

    /// The TLS server name (SNI) for this connection, overriding the
    /// connector's `servername` and the host.
    pub fn servername(mut self, name: impl Into<String>) -> Self {
        self.servername = Some(name.into());
        self
    }

    /// Bind the socket to this local address, overriding the connector's.
    pub fn local_address(mut self, address: IpAddr) -> Self {
        self.local_address = Some(address);
        self
    }

    /// Addresses already resolved (by the dns interceptor): the connector
    /// connects to these instead of resolving the host, while the host
    /// still names the server for TLS.
    pub fn addresses(mut self, addresses: Vec<SocketAddr>) -> Self {
        self.addresses = Some(addresses);
        self
    }

    /// Offer `h2` in ALPN or not, overriding the connector's `allow_h2`.
    pub fn allow_h2(mut self, allow: bool) -> Self {
        self.allow_h2 = Some(allow);
        self
    }

    /// Run TLS over this existing stream instead of opening a socket
    /// (undici's `httpSocket`, how a proxy's CONNECT tunnel carries TLS to
    /// the target). Only for `https`.
    ///
    /// The connection's [`ConnectionInfo`] has the stream's local and
    /// remote address (or socket path) when the stream is a tokio
    /// `TcpStream` or `UnixStream`, or a [`Connection`](crate::Connection)
    /// of this crate (a tunnel through a proxy it connected to). Other
    /// streams cannot tell: the addresses are `None`, and a wrapping
    /// connector may fill them in through
    /// [`Connection::info_mut`](crate::Connection::info_mut).
    pub fn http_socket<S: Io>(mut self, stream: S) -> Self {
        let info = ConnectionInfo::of_stream(&stream);
        self.http_socket = Some((Box::new(stream), info));
        self
    }

    /// `http` or `https`.
    pub fn scheme(&self) -> Scheme {
        self.scheme
    }

    /// The host name or IP literal (IPv6 without brackets).
    pub fn host(&self) -> &str {
        &self.host
    }

    /// The port.
    pub fn port(&self) -> u16 {
        self.port
    }

    /// The server name override, if any.
    pub fn servername_override(&self) -> Option<&str> {
        self.servername.as_deref()
    }

    /// The local address override, if any.
    pub fn local_address_override(&self) -> Option<IpAddr> {
        self.local_address
    }

    /// The pre-resolved addresses, if any.
    pub fn resolved_addresses(&self) -> Option<&[SocketAddr]> {
        self.addresses.as_deref()
    }

    /// The ALPN override, if any.
    pub fn allow_h2_override(&self) -> Option<bool> {
        self.allow_h2
    }

    /// Whether an existing stream was handed in for TLS.
    pub fn has_http_socket(&self) -> bool {
        self.http_socket.is_some()
    }

    pub(crate) fn take_http_socket(&mut self) -> Option<(Box<dyn Io>, ConnectionInfo)> {
        self.http_socket.take()
    }
}

impl fmt::Debug for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Destination")
            .field("scheme", &self.scheme)
            .field("host", &self.host)
            .field("port", &self.port)
            .field("servername", &self.servername)
            .field("local_address", &self.local_address)
            .field("addresses", &self.addresses)
            .field("allow_h2", &self.allow_h2)
            .field("http_socket", &self.http_socket.is_some())
            .finish()
    }
}

impl fmt::Display for Destination {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.host.contains(':') {
            write!(
                f,
                "{}://[{}]:{}",
                self.scheme.as_str(),
                self.host,
                self.port
            )
        } else {
            write!(f, "{}://{}:{}", self.scheme.as_str(), self.host, self.port)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn from_uri_fills_the_default_port() {
        let dest = Destination::from_uri(&"https://example.com/path".parse().unwrap()).unwrap();
        assert_eq!(dest.scheme(), Scheme::Https);
        assert_eq!(dest.host(), "example.com");
        assert_eq!(dest.port(), 443);
    }

    #[test]
    fn ipv6_brackets_are_stripped_and_restored_for_display() {
        let dest = Destination::from_uri(&"http://[::1]:8080".parse().unwrap()).unwrap();
        assert_eq!(dest.host(), "::1");
        assert_eq!(dest.to_string(), "http://[::1]:8080");
    }

    #[test]
    fn unknown_schemes_are_invalid_arguments() {
        let err = Destination::from_uri(&"ftp://example.com".parse().unwrap()).unwrap_err();
        assert_eq!(err.code(), "UND_ERR_INVALID_ARG");
    }
}
