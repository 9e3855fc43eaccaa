//! The connector's error: what failed, why, and undici's code for it.

use std::error::Error as StdError;
use std::fmt;
use std::io;
use std::net::SocketAddr;
use std::time::Duration;

type BoxError = Box<dyn StdError + Send + Sync>;

/// Why a connection could not be made.
///
/// Opaque like hyper's and tokio's errors: branch on [`ConnectError::kind`],
/// the predicates (`is_timeout()`, `is_tls()`, ...) or undici's
/// [`ConnectError::code`]. The underlying cause (an `io::Error`, a
/// `rustls::Error`) stays reachable through [`std::error::Error::source`].
pub struct ConnectError {
    inner: Box<Inner>,
}

struct Inner {
    kind: ConnectErrorKind,
    message: String,
    local: Option<SocketAddr>,
    remote: Option<SocketAddr>,
    source: Option<BoxError>,
}

/// The kinds of connect failure.
///
/// Non-exhaustive: new kinds may be added without a breaking change.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ConnectErrorKind {
    /// The connect `timeout` elapsed (`UND_ERR_CONNECT_TIMEOUT`).
    Timeout,
    /// The peer refused the connection (`ECONNREFUSED`).
    Refused,
    /// The host name did not resolve (`ENOTFOUND`).
    Dns,
    /// A socket-level failure: reset, unreachable, a Unix socket that does
    /// not exist, a failed bind (`UND_ERR_SOCKET` or the errno name).
    Socket,
    /// The TLS handshake failed; [`ConnectError::tls_failure`] says why.
    Tls(TlsFailure),
    /// The destination or an option is invalid (`UND_ERR_INVALID_ARG`).
    InvalidArgument,
    /// A check of a custom connector rejected the connection.
    Rejected,
}

/// Why a TLS handshake failed, as far as the client can tell.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum TlsFailure {
    /// The server's certificate chain does not lead to a trusted root.
    UnknownIssuer,
    /// The certificate is valid, but not for the name that was asked for.
    WrongName,
    /// The certificate has expired.
    Expired,
    /// The certificate is not valid yet.
    NotYetValid,
    /// The server refused our client certificate, or required one that we
    /// did not send.
    ClientCertificateRejected,
    /// The peers have no protocol version or cipher suite in common.
    HandshakeFailure,
    /// Anything else: a bad certificate, an unexpected message, a peer that
    /// does not speak TLS.
    Other,
}

impl ConnectError {
    pub(crate) fn new(kind: ConnectErrorKind, message: impl Into<String>) -> Self {
        ConnectError {
            inner: Box::new(Inner {
                kind,
                message: message.into(),
                local: None,
                remote: None,
                source: None,
            }),
        }
    }

    pub(crate) fn with_source(mut self, source: impl Into<BoxError>) -> Self {
        self.inner.source = Some(source.into());
        self
    }

    pub(crate) fn with_addrs(
        mut self,
        local: Option<SocketAddr>,
        remote: Option<SocketAddr>,
    ) -> Self {
        self.inner.local = local;
        self.inner.remote = remote;
        self
    }

    /// A connect `timeout` error; the message lists what was tried
    /// (addresses, or a socket path), as undici's does.
    pub(crate) fn timeout(attempted: &str, timeout: Duration) -> Self {
        ConnectError::new(
            ConnectErrorKind::Timeout,
            format!(
                "connect timeout (attempted addresses: {attempted}, timeout: {}ms)",
                timeout.as_millis()
            ),
        )
    }

    pub(crate) fn invalid(message: impl Into<String>) -> Self {
        ConnectError::new(ConnectErrorKind::InvalidArgument, message)
    }

    /// An error for a socket-level `io::Error` while connecting. The
    /// addresses of the socket (`with_addrs`) say where; undici's
    /// `SocketError` carries them the same way, apart from the message.
    pub(crate) fn io(err: io::Error) -> Self {
        let message = format!("connect: {err}");
        ConnectError::from_io(err, message)
    }

    /// An error for a socket-level `io::Error` while connecting to `target`,
    /// a socket path, which has no `SocketAddr` to carry it.
    pub(crate) fn io_to(err: io::Error, target: &str) -> Self {
        let message = format!("connect {target}: {err}");
        ConnectError::from_io(err, message)
    }

    /// An error for a socket-level `io::Error` during the TLS handshake with
    /// `server_name` (a reset, an early close).
    pub(crate) fn io_in_handshake(err: io::Error, server_name: &str) -> Self {
        let message = format!("TLS handshake with {server_name:?} failed: {err}");
        ConnectError::from_io(err, message)
    }

    fn from_io(err: io::Error, message: String) -> Self {
        let kind = match err.kind() {
            io::ErrorKind::ConnectionRefused => ConnectErrorKind::Refused,
            io::ErrorKind::TimedOut => ConnectErrorKind::Timeout,
            _ => ConnectErrorKind::Socket,
        };
        ConnectError::new(kind, message).with_source(err)
    }

    /// Wraps the error of a check in a custom connector (certificate
    /// pinning, socket validation) so that it keeps its message and source.
    pub fn rejected(reason: impl Into<BoxError>) -> Self {
        let reason = reason.into();
        ConnectError::new(ConnectErrorKind::Rejected, reason.to_string()).with_source(reason)
    }

    /// What kind of failure this is.
    pub fn kind(&self) -> ConnectErrorKind {
        self.inner.kind
    }

    /// undici's (and Node's) code for this failure: `UND_ERR_CONNECT_TIMEOUT`,
    /// `ECONNREFUSED`, `ENOTFOUND`, `UND_ERR_SOCKET` or an errno name such as
    /// `ECONNRESET`, a TLS code such as `ERR_TLS_CERT_ALTNAME_INVALID`, or
    /// `UND_ERR_INVALID_ARG`.
    pub fn code(&self) -> &'static str {
        match self.inner.kind {
            ConnectErrorKind::Timeout => "UND_ERR_CONNECT_TIMEOUT",
            ConnectErrorKind::Refused => "ECONNREFUSED",
            ConnectErrorKind::Dns => "ENOTFOUND",
            ConnectErrorKind::Socket => self.io_code(),
            ConnectErrorKind::Tls(failure) => failure.code(),
            ConnectErrorKind::InvalidArgument => "UND_ERR_INVALID_ARG",
            ConnectErrorKind::Rejected => "UND_ERR_SOCKET",
        }
    }

    fn io_code(&self) -> &'static str {
        let Some(err) = self.io_error() else {
            return "UND_ERR_SOCKET";
        };
        match err.kind() {
            io::ErrorKind::ConnectionReset => "ECONNRESET",
            io::ErrorKind::ConnectionAborted => "ECONNABORTED",
            io::ErrorKind::BrokenPipe => "EPIPE",
            io::ErrorKind::NetworkUnreachable => "ENETUNREACH",
            io::ErrorKind::HostUnreachable => "EHOSTUNREACH",
            io::ErrorKind::NetworkDown => "ENETDOWN",
            io::ErrorKind::AddrNotAvailable => "EADDRNOTAVAIL",
            io::ErrorKind::AddrInUse => "EADDRINUSE",
            io::ErrorKind::NotFound => "ENOENT",
            io::ErrorKind::PermissionDenied => "EACCES",
            _ => "UND_ERR_SOCKET",
        }
    }

    /// The `io::Error` behind this error, if there is one.
    pub fn io_error(&self) -> Option<&io::Error> {
        self.inner.source.as_ref()?.downcast_ref::<io::Error>()
    }

    /// Why the TLS handshake failed, for TLS errors.
    pub fn tls_failure(&self) -> Option<TlsFailure> {
        match self.inner.kind {
            ConnectErrorKind::Tls(failure) => Some(failure),
            _ => None,
        }
    }

    /// True when the connect `timeout` elapsed.
    pub fn is_timeout(&self) -> bool {
        self.inner.kind == ConnectErrorKind::Timeout
    }

    /// True when the peer refused the connection.
    pub fn is_refused(&self) -> bool {
        self.inner.kind == ConnectErrorKind::Refused
    }

    /// True when the host name did not resolve.
    pub fn is_dns(&self) -> bool {
        self.inner.kind == ConnectErrorKind::Dns
    }

    /// True when the TLS handshake failed.
    pub fn is_tls(&self) -> bool {
        matches!(self.inner.kind, ConnectErrorKind::Tls(_))
    }

    /// What failed and why, without the addresses `Display` adds (for
    /// an error type that prints them its own way).
    pub fn message(&self) -> String {
        match self.inner.kind {
            ConnectErrorKind::Tls(failure) => {
                format!("{}: {}", self.inner.message, failure.describe())
            }
            _ => self.inner.message.to_string(),
        }
    }

    /// The local address of the failed socket, when it got one.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.inner.local
    }

    /// The remote address the failure happened on, when there was one.
    pub fn remote_addr(&self) -> Option<SocketAddr> {
        self.inner.remote
    }
}

impl TlsFailure {
    /// The TLS failure somewhere in an error's source chain, if any: how a
    /// rustls alert that arrives after the handshake (a client certificate
    /// rejected under TLS 1.3) is recognised in a read error.
    pub fn find_in(error: &(dyn StdError + 'static)) -> Option<TlsFailure> {
        let mut next = Some(error);
        while let Some(err) = next {
            if let Some(tls) = err.downcast_ref::<rustls::Error>() {
                return Some(crate::tls::classify(tls));
            }
            // tokio-rustls reports rustls's errors inside an `io::Error`,
            // whose `source()` skips the error it wraps: look inside.
            next = match err.downcast_ref::<io::Error>().and_then(io::Error::get_ref) {
                Some(inner) => Some(inner as &(dyn StdError + 'static)),
                None => err.source(),
            };
        }
        None
    }

    /// Node's code for this failure, which undici passes through.
    pub fn code(self) -> &'static str {
        match self {
            TlsFailure::UnknownIssuer => "UNABLE_TO_GET_ISSUER_CERT_LOCALLY",
            TlsFailure::WrongName => "ERR_TLS_CERT_ALTNAME_INVALID",
            TlsFailure::Expired => "CERT_HAS_EXPIRED",
            TlsFailure::NotYetValid => "CERT_NOT_YET_VALID",
            TlsFailure::ClientCertificateRejected => "ERR_SSL_CLIENT_CERTIFICATE_REJECTED",
            TlsFailure::HandshakeFailure => "ERR_SSL_HANDSHAKE_FAILURE",
            TlsFailure::Other => "ERR_TLS_HANDSHAKE",
        }
    }

    fn describe(self) -> &'static str {
        match self {
            TlsFailure::UnknownIssuer => "certificate issuer is not trusted",
            TlsFailure::WrongName => "certificate is not valid for the requested name",
            TlsFailure::Expired => "certificate has expired",
            TlsFailure::NotYetValid => "certificate is not valid yet",
            TlsFailure::ClientCertificateRejected => "the server rejected the client certificate",
            TlsFailure::HandshakeFailure => "no protocol version or cipher suite in common",
            TlsFailure::Other => "handshake failed",
        }
    }
}

impl fmt::Debug for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut d = f.debug_struct("ConnectError");
        d.field("kind", &self.inner.kind)
            .field("code", &self.code())
            .field("message", &self.inner.message);
        if let Some(local) = self.inner.local {
            d.field("local", &local);
        }
        if let Some(remote) = self.inner.remote {
            d.field("remote", &remote);
        }
        if let Some(source) = &self.inner.source {
            d.field("source", source);
        }
        d.finish()
    }
}

impl fmt::Display for ConnectError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message())?;
        match (self.inner.local, self.inner.remote) {
            (Some(local), Some(remote)) => write!(f, " (local {local}, remote {remote})"),
            (Some(local), None) => write!(f, " (local {local})"),
            (None, Some(remote)) => write!(f, " (remote {remote})"),
            (None, None) => Ok(()),
        }
    }
}

impl StdError for ConnectError {
    fn source(&self) -> Option<&(dyn StdError + 'static)> {
        self.inner
            .source
            .as_ref()
            .map(|source| &**source as &(dyn StdError + 'static))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timeout_message_lists_the_addresses_tried() {
        let err = ConnectError::timeout("10.0.0.1:80, [::1]:80", Duration::from_millis(250));
        assert_eq!(err.code(), "UND_ERR_CONNECT_TIMEOUT");
        assert_eq!(
            err.to_string(),
            "connect timeout (attempted addresses: 10.0.0.1:80, [::1]:80, timeout: 250ms)"
        );
    }

    #[test]
    fn io_errors_map_to_errno_names() {
        let reset = io::Error::from(io::ErrorKind::ConnectionReset);
        assert_eq!(ConnectError::io(reset).code(), "ECONNRESET");
        let refused = io::Error::from(io::ErrorKind::ConnectionRefused);
        let err = ConnectError::io(refused);
        assert!(err.is_refused());
        assert_eq!(err.code(), "ECONNREFUSED");
        let other = io::Error::other("boom");
        assert_eq!(ConnectError::io(other).code(), "UND_ERR_SOCKET");
    }

    #[test]
    fn display_prints_whichever_addresses_are_known() {
        let local: SocketAddr = "127.0.0.1:40000".parse().unwrap();
        let remote: SocketAddr = "127.0.0.1:443".parse().unwrap();
        let err = || ConnectError::io(io::Error::other("boom"));

        assert_eq!(err().to_string(), "connect: boom");
        assert_eq!(
            err().with_addrs(Some(local), Some(remote)).to_string(),
            "connect: boom (local 127.0.0.1:40000, remote 127.0.0.1:443)"
        );
        assert_eq!(
            err().with_addrs(Some(local), None).to_string(),
            "connect: boom (local 127.0.0.1:40000)"
        );
        assert_eq!(
            err().with_addrs(None, Some(remote)).to_string(),
            "connect: boom (remote 127.0.0.1:443)"
        );
    }

    #[test]
    fn rejected_keeps_the_reason_as_source() {
        let err = ConnectError::rejected("fingerprint does not match");
        assert_eq!(err.kind(), ConnectErrorKind::Rejected);
        assert_eq!(err.to_string(), "fingerprint does not match");
        assert!(err.source().is_some());
    }
}
