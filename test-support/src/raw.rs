//! [`RawServer`]: a TCP server on `127.0.0.1:0` whose per-connection script
//! reads and writes exact bytes, for malformed responses, stalls, early
//! FIN and RST.
//!
//! ```
//! use undici_test_support::RawServer;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! // Send half a response, then reset the connection.
//! let server = RawServer::new(|mut conn| async move {
//!     if conn.read_request().await.is_err() {
//!         return;
//!     }
//!     let _ = conn.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\npartial").await;
//!     let _ = conn.reset();
//! })
//! .await;
//! # drop(server);
//! # }
//! ```

use std::fmt;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;

use crate::util::{wait_until, Counts, Tasks};

/// Largest request head (or chunk-size line) [`RawConn`] accepts.
const MAX_HEAD: usize = 1024 * 1024;

type BoxFuture = Pin<Box<dyn Future<Output = ()> + Send>>;
type DynScript = dyn Fn(RawConn) -> BoxFuture + Send + Sync;
type Shared = Arc<watch::Sender<Counts>>;

/// A TCP server that runs a script per accepted connection. Dropping it
/// stops the accept loop and aborts every running script.
///
/// The `wait_for_*` helpers wait without sleeping, and panic after 20 s
/// rather than hanging a test forever.
#[derive(Debug)]
pub struct RawServer {
    addr: SocketAddr,
    shared: Shared,
    tasks: Arc<Tasks>,
}

impl Drop for RawServer {
    fn drop(&mut self) {
        self.tasks.shutdown();
    }
}

impl RawServer {
    /// Starts a server that runs `script` for every accepted connection.
    /// The connection closes when the script drops its [`RawConn`] (with a
    /// RST rather than a FIN if unread request bytes are left).
    ///
    /// # Panics
    ///
    /// If binding `127.0.0.1:0` fails; see [`try_new`](Self::try_new).
    pub async fn new<F, Fut>(script: F) -> Self
    where
        F: Fn(RawConn) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        match Self::try_new(script).await {
            Ok(server) => server,
            Err(e) => panic!("failed to start raw test server: {e}"),
        }
    }

    /// Like [`new`](Self::new), returning bind errors.
    pub async fn try_new<F, Fut>(script: F) -> io::Result<Self>
    where
        F: Fn(RawConn) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let script: Arc<DynScript> = Arc::new(move |conn| Box::pin(script(conn)));
        let listener = TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let shared: Shared = Arc::new(watch::Sender::new(Counts::default()));
        let tasks = Tasks::new();
        tasks.spawn(accept_loop(listener, script, shared.clone(), tasks.clone()));
        Ok(Self {
            addr,
            shared,
            tasks,
        })
    }

    /// For each connection: read one request (head and any
    /// `content-length`/chunked body), write `bytes`, then keep the socket
    /// open until the peer closes it.
    pub async fn respond(bytes: impl AsRef<[u8]>) -> Self {
        let bytes = Bytes::copy_from_slice(bytes.as_ref());
        Self::new(move |mut conn| {
            let bytes = bytes.clone();
            async move {
                if conn.read_request().await.is_err() || conn.write_all(&bytes).await.is_err() {
                    return;
                }
                let _ = conn.read_to_end().await;
            }
        })
        .await
    }

    /// For each connection: read one request, write `bytes`, then send FIN
    /// (half-close). The socket is released when the peer closes too, so
    /// the peer never sees a RST.
    pub async fn respond_then_close(bytes: impl AsRef<[u8]>) -> Self {
        let bytes = Bytes::copy_from_slice(bytes.as_ref());
        Self::new(move |mut conn| {
            let bytes = bytes.clone();
            async move {
                if conn.read_request().await.is_err() || conn.write_all(&bytes).await.is_err() {
                    return;
                }
                if conn.shutdown().await.is_ok() {
                    let _ = conn.read_to_end().await;
                }
            }
        })
        .await
    }

    /// For each connection: answer every request (keep-alive, pipelining)
    /// with `bytes` until the peer closes.
    pub async fn respond_to_each_request(bytes: impl AsRef<[u8]>) -> Self {
        let bytes = Bytes::copy_from_slice(bytes.as_ref());
        Self::new(move |mut conn| {
            let bytes = bytes.clone();
            async move {
                while conn.read_request().await.is_ok() {
                    if conn.write_all(&bytes).await.is_err() {
                        return;
                    }
                }
            }
        })
        .await
    }

    /// The address the server listens on.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://127.0.0.1:PORT`.
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Sockets accepted so far.
    pub fn connections_accepted(&self) -> usize {
        self.shared.borrow().accepted
    }

    /// Connections whose [`RawConn`] is still alive.
    pub fn open_connections(&self) -> usize {
        self.shared.borrow().open
    }

    /// The largest number of connections open at the same time so far.
    pub fn max_open_connections(&self) -> usize {
        self.shared.borrow().max_open
    }

    /// Remote addresses of accepted sockets, in accept order.
    pub fn peer_addrs(&self) -> Vec<SocketAddr> {
        self.shared.borrow().peers.clone()
    }

    /// Waits until at least `n` sockets were accepted.
    pub async fn wait_for_connections(&self, n: usize) {
        wait_until(
            &self.shared,
            |s| s.accepted >= n,
            |s| format!("{n} accepted connections (got {})", s.accepted),
        )
        .await;
    }

    /// Waits until exactly `n` connections are open.
    pub async fn wait_for_open_connections(&self, n: usize) {
        wait_until(
            &self.shared,
            |s| s.open == n,
            |s| format!("{n} open connections (open: {})", s.open),
        )
        .await;
    }
}

async fn accept_loop(
    listener: TcpListener,
    script: Arc<DynScript>,
    shared: Shared,
    tasks: Arc<Tasks>,
) {
    loop {
        match listener.accept().await {
            Ok((stream, peer_addr)) => {
                let _ = stream.set_nodelay(true);
                let mut id = 0;
                shared.send_modify(|s| id = s.accept(Some(peer_addr)));
                let conn = RawConn {
                    stream,
                    buf: Vec::new(),
                    id,
                    peer_addr,
                    _guard: OpenGuard(shared.clone()),
                };
                tasks.spawn(script(conn));
            }
            // E.g. out of file descriptors: back off instead of spinning.
            Err(_) => tokio::time::sleep(Duration::from_millis(10)).await,
        }
    }
}

struct OpenGuard(Shared);

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0.send_modify(Counts::close);
    }
}

/// A request as read by [`RawConn::read_request`]. Parsing is lenient: it
/// is only meant to consume what well-behaved clients send.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct RawRequest {
    /// The head exactly as received, through the final `\r\n\r\n`.
    pub head: Vec<u8>,
    /// Request method.
    pub method: String,
    /// Request target (`/path?query`, `host:port`, …).
    pub target: String,
    /// `HTTP/1.1` or whatever the request line said.
    pub version: String,
    /// Header fields in order, names as sent.
    pub headers: Vec<(String, String)>,
    /// The body (de-chunked if it was chunked).
    pub body: Vec<u8>,
    /// Trailer fields of a chunked body.
    pub trailers: Vec<(String, String)>,
}

impl RawRequest {
    /// The first header named `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(n, _)| n.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

/// One accepted connection of a [`RawServer`]: a `TcpStream` with a read
/// buffer. Dropping it closes the socket.
pub struct RawConn {
    stream: TcpStream,
    buf: Vec<u8>,
    id: usize,
    peer_addr: SocketAddr,
    _guard: OpenGuard,
}

impl fmt::Debug for RawConn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("RawConn")
            .field("id", &self.id)
            .field("peer_addr", &self.peer_addr)
            .field("buffered", &self.buf.len())
            .finish()
    }
}

fn invalid(msg: &str) -> io::Error {
    io::Error::new(io::ErrorKind::InvalidData, msg.to_owned())
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

fn parse_fields(lines: &[&str]) -> Vec<(String, String)> {
    lines
        .iter()
        .filter_map(|line| line.split_once(':'))
        .map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned()))
        .collect()
}

impl RawConn {
    /// 0-based accept order of this connection.
    pub fn id(&self) -> usize {
        self.id
    }

    /// The client's address.
    pub fn peer_addr(&self) -> SocketAddr {
        self.peer_addr
    }

    /// The socket (reads through it bypass [`buffered`](Self::buffered)).
    pub fn stream(&self) -> &TcpStream {
        &self.stream
    }

    /// The socket, mutably (reads through it bypass
    /// [`buffered`](Self::buffered)).
    pub fn stream_mut(&mut self) -> &mut TcpStream {
        &mut self.stream
    }

    /// Bytes already read from the socket but not yet consumed.
    pub fn buffered(&self) -> &[u8] {
        &self.buf
    }

    /// Reads more bytes into the buffer; `false` at EOF.
    async fn fill(&mut self) -> io::Result<bool> {
        let mut chunk = [0u8; 8192];
        let n = self.stream.read(&mut chunk).await?;
        self.buf.extend_from_slice(&chunk[..n]);
        Ok(n > 0)
    }

    /// Reads until `\r\n\r\n` and returns the head including it; bytes
    /// after it stay buffered for the next read. EOF first is
    /// `UnexpectedEof`.
    pub async fn read_request_head(&mut self) -> io::Result<Vec<u8>> {
        let mut searched = 0;
        loop {
            if let Some(pos) = find(&self.buf[searched..], b"\r\n\r\n") {
                let end = searched + pos + 4;
                return Ok(self.buf.drain(..end).collect());
            }
            searched = self.buf.len().saturating_sub(3);
            if self.buf.len() > MAX_HEAD {
                return Err(invalid("request head too large"));
            }
            if !self.fill().await? {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        }
    }

    /// Reads a request head and its body (by `content-length`, or chunked
    /// with trailers; no body otherwise).
    pub async fn read_request(&mut self) -> io::Result<RawRequest> {
        let head = self.read_request_head().await?;
        let text = String::from_utf8_lossy(&head).into_owned();
        let lines: Vec<&str> = text.split("\r\n").filter(|l| !l.is_empty()).collect();
        let Some((request_line, header_lines)) = lines.split_first() else {
            return Err(invalid("empty request head"));
        };
        let mut parts = request_line.split_whitespace();
        let method = parts.next().unwrap_or_default().to_owned();
        let target = parts.next().unwrap_or_default().to_owned();
        let version = parts.next().unwrap_or_default().to_owned();
        let mut request = RawRequest {
            head,
            method,
            target,
            version,
            headers: parse_fields(header_lines),
            ..RawRequest::default()
        };
        let chunked = request
            .headers
            .iter()
            .filter(|(n, _)| n.eq_ignore_ascii_case("transfer-encoding"))
            .any(|(_, v)| v.to_ascii_lowercase().contains("chunked"));
        if chunked {
            self.read_chunked(&mut request).await?;
        } else if let Some(len) = request.header("content-length") {
            let len: usize = len.parse().map_err(|_| invalid("bad content-length"))?;
            request.body = self.read_exact(len).await?;
        }
        Ok(request)
    }

    async fn read_line(&mut self) -> io::Result<String> {
        loop {
            if let Some(pos) = find(&self.buf, b"\r\n") {
                let line: Vec<u8> = self.buf.drain(..pos + 2).collect();
                return Ok(String::from_utf8_lossy(&line[..pos]).into_owned());
            }
            if self.buf.len() > MAX_HEAD {
                return Err(invalid("line too long"));
            }
            if !self.fill().await? {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        }
    }

    async fn read_chunked(&mut self, request: &mut RawRequest) -> io::Result<()> {
        loop {
            let line = self.read_line().await?;
            let size = line.split(';').next().unwrap_or_default().trim();
            let size = usize::from_str_radix(size, 16).map_err(|_| invalid("bad chunk size"))?;
            if size == 0 {
                break;
            }
            let data = self.read_exact(size).await?;
            request.body.extend_from_slice(&data);
            if !self.read_line().await?.is_empty() {
                return Err(invalid("missing CRLF after chunk"));
            }
        }
        let mut trailers = Vec::new();
        loop {
            let line = self.read_line().await?;
            if line.is_empty() {
                break;
            }
            trailers.push(line);
        }
        let trailer_refs: Vec<&str> = trailers.iter().map(String::as_str).collect();
        request.trailers = parse_fields(&trailer_refs);
        Ok(())
    }

    /// Reads exactly `n` bytes (buffered ones first).
    pub async fn read_exact(&mut self, n: usize) -> io::Result<Vec<u8>> {
        while self.buf.len() < n {
            if !self.fill().await? {
                return Err(io::ErrorKind::UnexpectedEof.into());
            }
        }
        Ok(self.buf.drain(..n).collect())
    }

    /// Returns buffered bytes, or waits for the next read; empty at EOF.
    pub async fn read_some(&mut self) -> io::Result<Vec<u8>> {
        if self.buf.is_empty() {
            self.fill().await?;
        }
        Ok(std::mem::take(&mut self.buf))
    }

    /// Reads until the peer closes its side, returning everything not yet
    /// consumed. Also the way to "keep the socket open until the peer
    /// closes".
    pub async fn read_to_end(&mut self) -> io::Result<Vec<u8>> {
        while self.fill().await? {}
        Ok(std::mem::take(&mut self.buf))
    }

    /// Writes all of `bytes`.
    pub async fn write_all(&mut self, bytes: &[u8]) -> io::Result<()> {
        self.stream.write_all(bytes).await
    }

    /// Flushes the socket.
    pub async fn flush(&mut self) -> io::Result<()> {
        self.stream.flush().await
    }

    /// Shuts down the write side: the peer reads EOF (FIN). Reading still
    /// works.
    pub async fn shutdown(&mut self) -> io::Result<()> {
        self.stream.shutdown().await
    }

    /// Closes the connection with a RST (`SO_LINGER` 0, then close).
    pub fn reset(self) -> io::Result<()> {
        socket2::SockRef::from(&self.stream).set_linger(Some(Duration::ZERO))?;
        drop(self);
        Ok(())
    }

    /// Keeps the connection open, doing nothing, until the server is
    /// dropped.
    pub async fn stall(self) {
        std::future::pending::<()>().await;
        drop(self);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::body::{self, TestBody};
    use hyper::client::conn::http1;
    use hyper_util::rt::TokioIo;
    use tokio::sync::mpsc;

    const OK: &[u8] = b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok";

    async fn read_n(stream: &mut TcpStream, n: usize) -> Vec<u8> {
        let mut buf = vec![0; n];
        stream.read_exact(&mut buf).await.unwrap();
        buf
    }

    #[tokio::test]
    async fn respond_keeps_socket_open_until_peer_closes() {
        let server = RawServer::respond(OK).await;
        assert_eq!(server.url(), format!("http://{}", server.addr()));
        let mut client = TcpStream::connect(server.addr()).await.unwrap();
        client
            .write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
            .await
            .unwrap();
        assert_eq!(read_n(&mut client, OK.len()).await, OK);
        assert_eq!(server.connections_accepted(), 1);
        assert_eq!(server.open_connections(), 1);
        assert_eq!(server.peer_addrs(), vec![client.local_addr().unwrap()]);
        drop(client);
        server.wait_for_open_connections(0).await;
        assert_eq!(server.max_open_connections(), 1);
    }

    #[tokio::test]
    async fn respond_then_close_sends_fin() {
        let server = RawServer::respond_then_close(b"HTTP/1.1 200 OK\r\n\r\nuntil eof").await;
        let mut client = TcpStream::connect(server.addr()).await.unwrap();
        client
            .write_all(b"POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\nabc")
            .await
            .unwrap();
        let mut got = Vec::new();
        client.read_to_end(&mut got).await.unwrap();
        assert_eq!(got, b"HTTP/1.1 200 OK\r\n\r\nuntil eof");
    }

    #[tokio::test]
    async fn respond_to_each_request_handles_pipelining() {
        let server = RawServer::respond_to_each_request(OK).await;
        let mut client = TcpStream::connect(server.addr()).await.unwrap();
        client
            .write_all(b"GET /1 HTTP/1.1\r\n\r\nGET /2 HTTP/1.1\r\n\r\n")
            .await
            .unwrap();
        assert_eq!(read_n(&mut client, 2 * OK.len()).await, [OK, OK].concat());
    }

    #[tokio::test]
    async fn read_request_parses_bodies() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let server = RawServer::new(move |mut conn| {
            let tx = tx.clone();
            async move {
                while let Ok(req) = conn.read_request().await {
                    let _ = tx.send(req);
                }
            }
        })
        .await;
        let mut client = TcpStream::connect(server.addr()).await.unwrap();
        client
            .write_all(
                b"POST /len?x=1 HTTP/1.1\r\nHost: h\r\nContent-Length: 5\r\n\r\nhello\
                  PUT /chunked HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n\
                  3\r\nabc\r\n2;ext=1\r\nde\r\n0\r\nX-Trailer: t\r\n\r\n",
            )
            .await
            .unwrap();
        let first = rx.recv().await.unwrap();
        assert_eq!(first.method, "POST");
        assert_eq!(first.target, "/len?x=1");
        assert_eq!(first.version, "HTTP/1.1");
        assert_eq!(first.header("host"), Some("h"));
        assert_eq!(first.body, b"hello");
        assert!(first.head.ends_with(b"\r\n\r\n"));
        let second = rx.recv().await.unwrap();
        assert_eq!(second.method, "PUT");
        assert_eq!(second.body, b"abcde");
        assert_eq!(
            second.trailers,
            vec![("X-Trailer".to_owned(), "t".to_owned())]
        );
    }

    #[tokio::test]
    async fn head_keeps_extra_bytes_buffered() {
        let (tx, mut rx) = mpsc::unbounded_channel();
        let server = RawServer::new(move |mut conn| {
            let tx = tx.clone();
            async move {
                let head = conn.read_request_head().await;
                let rest = conn.read_exact(4).await;
                let _ = tx.send((head, rest, conn.id()));
            }
        })
        .await;
        let mut client = TcpStream::connect(server.addr()).await.unwrap();
        client
            .write_all(b"GET / HTTP/1.1\r\n\r\nextra")
            .await
            .unwrap();
        let (head, rest, id) = rx.recv().await.unwrap();
        assert_eq!(head.unwrap(), b"GET / HTTP/1.1\r\n\r\n");
        assert_eq!(rest.unwrap(), b"extr");
        assert_eq!(id, 0);
    }

    #[tokio::test]
    async fn reset_sends_rst() {
        let server = RawServer::new(|mut conn| async move {
            if conn.read_request_head().await.is_ok() {
                let _ = conn.reset();
            }
        })
        .await;
        let mut client = TcpStream::connect(server.addr()).await.unwrap();
        client.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
        let mut buf = [0u8; 16];
        let err = client.read(&mut buf).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionReset);
    }

    #[tokio::test]
    async fn stall_holds_until_server_dropped() {
        let server = RawServer::new(|mut conn| async move {
            if conn.write_all(b"partial").await.is_ok() {
                conn.stall().await;
            }
        })
        .await;
        let mut client = TcpStream::connect(server.addr()).await.unwrap();
        assert_eq!(read_n(&mut client, 7).await, b"partial");
        server.wait_for_connections(1).await;
        assert_eq!(server.open_connections(), 1);
        drop(server);
        let mut rest = Vec::new();
        client.read_to_end(&mut rest).await.unwrap();
        assert!(rest.is_empty());
    }

    #[tokio::test]
    async fn misbehaving_clients_do_not_break_the_server() {
        let server = RawServer::respond(OK).await;
        // Closes before sending a full head.
        let mut c1 = TcpStream::connect(server.addr()).await.unwrap();
        c1.write_all(b"GET / HT").await.unwrap();
        drop(c1);
        // Bad content-length.
        let mut c2 = TcpStream::connect(server.addr()).await.unwrap();
        c2.write_all(b"POST / HTTP/1.1\r\nContent-Length: nope\r\n\r\n")
            .await
            .unwrap();
        let mut rest = Vec::new();
        let _ = c2.read_to_end(&mut rest).await;
        assert!(rest.is_empty());
        server.wait_for_open_connections(0).await;
        // Still serving.
        let mut c3 = TcpStream::connect(server.addr()).await.unwrap();
        c3.write_all(b"GET / HTTP/1.1\r\n\r\n").await.unwrap();
        assert_eq!(read_n(&mut c3, OK.len()).await, OK);
        assert_eq!(server.connections_accepted(), 3);
    }

    #[tokio::test]
    async fn hyper_client_sees_malformed_response_as_error() {
        let server =
            RawServer::respond_then_close(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort")
                .await;
        let tcp = TcpStream::connect(server.addr()).await.unwrap();
        let (mut sender, conn) = http1::handshake::<_, TestBody>(TokioIo::new(tcp))
            .await
            .unwrap();
        tokio::spawn(conn);
        let req = http::Request::get("/").body(body::empty()).unwrap();
        let resp = sender.send_request(req).await.unwrap();
        let res = http_body_util::BodyExt::collect(resp.into_body()).await;
        assert!(res.is_err(), "truncated body must be an error");
    }
}
