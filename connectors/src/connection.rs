//! `Connection`: a connected stream and what is known about it.

use std::any::Any;
use std::fmt::{self, Write as _};
use std::io::{self, IoSlice};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::task::{Context, Poll};

use rustls_pki_types::CertificateDer;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tokio::net::TcpStream;
#[cfg(unix)]
use tokio::net::UnixStream;
use tokio_rustls::client::TlsStream;

use crate::destination::Io;

/// A connected stream: TCP, a Unix socket or a stream of the user's, with
/// TLS on top or not. It is tokio's `AsyncRead + AsyncWrite`; hyper takes it
/// through `hyper_util::rt::TokioIo`.
pub struct Connection {
    transport: Transport,
    /// Boxed: hyper's HTTP/2 client moves a future holding the connection
    /// into a new task for each request; read once per connection.
    info: Box<ConnectionInfo>,
}

pub(crate) enum Transport {
    Tcp(TcpStream),
    #[cfg(unix)]
    Unix(UnixStream),
    Tls(Box<TlsStream<Transport>>),
    Custom(Box<dyn Io>),
}

impl Connection {
    /// A connection over any stream, for connectors written from scratch
    /// (a test double, an in-memory pipe, a tunnel).
    pub fn new(io: impl Io, info: ConnectionInfo) -> Self {
        Connection {
            transport: Transport::Custom(Box::new(io)),
            info: Box::new(info),
        }
    }

    pub(crate) fn from_transport(transport: Transport, info: ConnectionInfo) -> Self {
        Connection {
            transport,
            info: Box::new(info),
        }
    }

    /// What is known about this connection.
    pub fn info(&self) -> &ConnectionInfo {
        &self.info
    }

    /// Mutable access to the connection's information, for connectors that
    /// wrap ours and add to it.
    pub fn info_mut(&mut self) -> &mut ConnectionInfo {
        &mut self.info
    }
}

impl fmt::Debug for Connection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let transport = match &self.transport {
            Transport::Tcp(_) => "tcp",
            #[cfg(unix)]
            Transport::Unix(_) => "unix",
            Transport::Tls(_) => "tls",
            Transport::Custom(_) => "custom",
        };
        f.debug_struct("Connection")
            .field("transport", &transport)
            .field("info", &self.info)
            .finish()
    }
}

/// What a caller may want to know about a connection: addresses, ALPN, and
/// for TLS the version, resumption and the server's certificates (enough
/// for a pinning check).
#[derive(Clone, Debug, Default)]
pub struct ConnectionInfo {
    local_addr: Option<SocketAddr>,
    remote_addr: Option<SocketAddr>,
    socket_path: Option<PathBuf>,
    tls: Option<TlsInfo>,
}

impl ConnectionInfo {
    /// Information about a TCP connection.
    pub fn tcp(local_addr: Option<SocketAddr>, remote_addr: Option<SocketAddr>) -> Self {
        ConnectionInfo {
            local_addr,
            remote_addr,
            ..ConnectionInfo::default()
        }
    }

    /// Information about a Unix socket connection.
    pub fn unix(path: impl Into<PathBuf>) -> Self {
        ConnectionInfo {
            socket_path: Some(path.into()),
            ..ConnectionInfo::default()
        }
    }

    /// What a stream handed in for TLS (`http_socket`) can tell about its
    /// socket: only the stream types known here have addresses to give,
    /// and `Io` is implemented for every stream, so its type is asked at
    /// run time.
    pub(crate) fn of_stream(stream: &dyn Any) -> ConnectionInfo {
        if let Some(tcp) = stream.downcast_ref::<TcpStream>() {
            return ConnectionInfo::tcp(tcp.local_addr().ok(), tcp.peer_addr().ok());
        }
        #[cfg(unix)]
        if let Some(unix) = stream.downcast_ref::<UnixStream>() {
            let path = unix
                .peer_addr()
                .ok()
                .and_then(|addr| addr.as_pathname().map(Path::to_path_buf));
            return ConnectionInfo {
                socket_path: path,
                ..ConnectionInfo::default()
            };
        }
        if let Some(connection) = stream.downcast_ref::<Connection>() {
            // The TLS details, if any, are those of the tunnel (a proxy
            // spoken to over TLS); the handshake about to run replaces them.
            return ConnectionInfo {
                tls: None,
                ..connection.info().clone()
            };
        }
        ConnectionInfo::default()
    }

    /// The local address of a TCP connection.
    pub fn local_addr(&self) -> Option<SocketAddr> {
        self.local_addr
    }

    /// The remote address of a TCP connection.
    pub fn remote_addr(&self) -> Option<SocketAddr> {
        self.remote_addr
    }

    /// The path of a Unix socket connection.
    pub fn socket_path(&self) -> Option<&Path> {
        self.socket_path.as_deref()
    }

    /// The TLS details, for TLS connections.
    pub fn tls(&self) -> Option<&TlsInfo> {
        self.tls.as_ref()
    }

    /// The protocol agreed by ALPN (`b"h2"`, `b"http/1.1"`), if any.
    pub fn alpn(&self) -> Option<&[u8]> {
        self.tls.as_ref()?.alpn.as_deref()
    }

    /// True when ALPN chose HTTP/2.
    pub fn is_negotiated_h2(&self) -> bool {
        self.alpn() == Some(b"h2")
    }

    pub(crate) fn set_tls(&mut self, tls: TlsInfo) {
        self.tls = Some(tls);
    }
}

/// What the TLS handshake settled.
#[derive(Clone, Debug)]
pub struct TlsInfo {
    pub(crate) version: Option<rustls::ProtocolVersion>,
    pub(crate) alpn: Option<Vec<u8>>,
    pub(crate) resumed: bool,
    pub(crate) server_name: String,
    pub(crate) peer_certificates: Vec<CertificateDer<'static>>,
}

impl TlsInfo {
    /// The TLS version, as Node names it: `"TLSv1.3"` or `"TLSv1.2"`.
    pub fn version(&self) -> Option<&'static str> {
        match self.version? {
            rustls::ProtocolVersion::TLSv1_3 => Some("TLSv1.3"),
            rustls::ProtocolVersion::TLSv1_2 => Some("TLSv1.2"),
            _ => None,
        }
    }

    /// The protocol agreed by ALPN, if any.
    pub fn alpn(&self) -> Option<&[u8]> {
        self.alpn.as_deref()
    }

    /// True when this connection resumed a cached TLS session instead of a
    /// full handshake.
    pub fn is_resumed(&self) -> bool {
        self.resumed
    }

    /// The server name that was sent (SNI) and checked.
    pub fn server_name(&self) -> &str {
        &self.server_name
    }

    /// The server's certificate chain as sent, leaf first (DER).
    pub fn peer_certificates(&self) -> &[CertificateDer<'static>] {
        &self.peer_certificates
    }

    /// The SHA-256 fingerprint of the server's leaf certificate, in Node's
    /// `AA:BB:...` form (`fingerprint256`).
    pub fn peer_fingerprint256(&self) -> Option<String> {
        self.peer_certificates
            .first()
            .map(|cert| fingerprint256(cert))
    }

    /// The certificate that issued the leaf: the next one in the chain the
    /// server sent, if it sent one.
    pub fn issuer_certificate(&self) -> Option<&CertificateDer<'static>> {
        self.peer_certificates.get(1)
    }
}

/// The SHA-256 fingerprint of a DER certificate in Node's `fingerprint256`
/// form: upper-case hex bytes joined by colons (`"AA:BB:..."`).
pub fn fingerprint256(der: &[u8]) -> String {
    let digest = Sha256::digest(der);
    let mut out = String::with_capacity(digest.len() * 3);
    for (i, byte) in digest.iter().enumerate() {
        if i > 0 {
            out.push(':');
        }
        let _ = write!(out, "{byte:02X}");
    }
    out
}

impl AsyncRead for Transport {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Tcp(io) => Pin::new(io).poll_read(cx, buf),
            #[cfg(unix)]
            Transport::Unix(io) => Pin::new(io).poll_read(cx, buf),
            Transport::Tls(io) => Pin::new(io).poll_read(cx, buf),
            Transport::Custom(io) => Pin::new(io).poll_read(cx, buf),
        }
    }
}

impl AsyncWrite for Transport {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Transport::Tcp(io) => Pin::new(io).poll_write(cx, buf),
            #[cfg(unix)]
            Transport::Unix(io) => Pin::new(io).poll_write(cx, buf),
            Transport::Tls(io) => Pin::new(io).poll_write(cx, buf),
            Transport::Custom(io) => Pin::new(io).poll_write(cx, buf),
        }
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        match self.get_mut() {
            Transport::Tcp(io) => Pin::new(io).poll_write_vectored(cx, bufs),
            #[cfg(unix)]
            Transport::Unix(io) => Pin::new(io).poll_write_vectored(cx, bufs),
            Transport::Tls(io) => Pin::new(io).poll_write_vectored(cx, bufs),
            Transport::Custom(io) => Pin::new(io).poll_write_vectored(cx, bufs),
        }
    }

    fn is_write_vectored(&self) -> bool {
        match self {
            Transport::Tcp(io) => io.is_write_vectored(),
            #[cfg(unix)]
            Transport::Unix(io) => io.is_write_vectored(),
            Transport::Tls(io) => io.is_write_vectored(),
            Transport::Custom(io) => io.is_write_vectored(),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Tcp(io) => Pin::new(io).poll_flush(cx),
            #[cfg(unix)]
            Transport::Unix(io) => Pin::new(io).poll_flush(cx),
            Transport::Tls(io) => Pin::new(io).poll_flush(cx),
            Transport::Custom(io) => Pin::new(io).poll_flush(cx),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        match self.get_mut() {
            Transport::Tcp(io) => Pin::new(io).poll_shutdown(cx),
            #[cfg(unix)]
            Transport::Unix(io) => Pin::new(io).poll_shutdown(cx),
            Transport::Tls(io) => Pin::new(io).poll_shutdown(cx),
            Transport::Custom(io) => Pin::new(io).poll_shutdown(cx),
        }
    }
}

impl AsyncRead for Connection {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().transport).poll_read(cx, buf)
    }
}

impl AsyncWrite for Connection {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().transport).poll_write(cx, buf)
    }

    fn poll_write_vectored(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        bufs: &[IoSlice<'_>],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.get_mut().transport).poll_write_vectored(cx, bufs)
    }

    fn is_write_vectored(&self) -> bool {
        self.transport.is_write_vectored()
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().transport).poll_flush(cx)
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.get_mut().transport).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fingerprint_is_upper_hex_joined_by_colons() {
        // SHA-256 of the empty input.
        let fp = fingerprint256(b"");
        assert!(fp.starts_with("E3:B0:C4:42:98:FC:1C:14"));
        assert_eq!(fp.len(), 32 * 3 - 1);
    }
}
