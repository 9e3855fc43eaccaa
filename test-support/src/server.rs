//! [`TestServer`]: an in-process hyper 1.x server (HTTP/1.1, h2c, TLS with
//! ALPN, or a Unix socket) that records what happened on its sockets.
//!
//! ```
//! use http::Response;
//! use undici_test_support::{body, TestServer};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! let server = TestServer::http1(|_req| async { Response::new(body::full("hello")) }).await;
//! assert!(server.url().starts_with("http://127.0.0.1:"));
//! assert_eq!(server.connections_accepted(), 0);
//!
//! // Less common knobs go through the builder.
//! let h2 = TestServer::builder()
//!     .http2_only()
//!     .h2_max_concurrent_streams(1)
//!     .serve(undici_test_support::handlers::echo)
//!     .await;
//! # drop((server, h2));
//! # }
//! ```

use std::collections::HashMap;
use std::convert::Infallible;
use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use http::{Request, Response};
use hyper::body::Incoming;
use hyper::server::conn::{http1, http2};
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use rustls::ServerConfig;
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::net::{TcpListener, UnixListener};
use tokio::sync::watch;
use tokio_rustls::TlsAcceptor;

use crate::body::TestBody;
use crate::util::{unique_name, wait_until, Counts, Tasks, TrackedExecutor};

type BoxFuture<T> = Pin<Box<dyn Future<Output = T> + Send>>;
type DynHandler = dyn Fn(Request<Incoming>) -> BoxFuture<Response<TestBody>> + Send + Sync;

/// Which HTTP versions a [`TestServer`] speaks on a connection.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
#[non_exhaustive]
pub enum Protocol {
    /// HTTP/1.1 only (HTTP/1.0 requests are answered too).
    Http1,
    /// HTTP/2 only: prior knowledge on cleartext, or whatever ALPN said.
    Http2,
    /// Detect per connection: the HTTP/2 preface selects HTTP/2, anything
    /// else HTTP/1.1.
    #[default]
    Auto,
}

/// A request extension the server inserts before calling the handler:
/// which connection (0-based accept order, the index into
/// [`TestServer::connections`]) the request arrived on.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub struct ConnectionId(pub usize);

/// What the server saw on one accepted socket.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct ConnectionInfo {
    /// 0-based accept order.
    pub id: usize,
    /// Remote address (`None` on a Unix socket).
    pub peer_addr: Option<SocketAddr>,
    /// Whether the socket is still open on the server side.
    pub open: bool,
    /// Requests received on this connection.
    pub requests: usize,
    /// HTTP version of the last request received on it.
    pub http_version: Option<http::Version>,
    /// TLS details, once the handshake completed.
    pub tls: Option<TlsInfo>,
    /// The server-side error, if the TLS handshake failed.
    pub tls_error: Option<String>,
}

/// Server-side view of a completed TLS handshake.
#[derive(Clone, Debug)]
#[non_exhaustive]
pub struct TlsInfo {
    /// The SNI name the client sent.
    pub sni: Option<String>,
    /// The negotiated ALPN protocol.
    pub alpn: Option<Vec<u8>>,
    /// Whether the session was resumed (`HandshakeKind::Resumed`).
    pub resumed: bool,
    /// Whether the client presented a (verified) certificate.
    pub client_cert_presented: bool,
    /// The negotiated TLS version.
    pub version: Option<rustls::ProtocolVersion>,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum CloseMode {
    Graceful,
    Abort,
}

#[derive(Debug, Default)]
struct ServerState {
    counts: Counts,
    conns: Vec<ConnectionInfo>,
    closers: HashMap<usize, watch::Sender<Option<CloseMode>>>,
    requests_received: usize,
    requests_served: usize,
}

impl ServerState {
    fn tls_handshakes(&self) -> usize {
        self.conns
            .iter()
            .filter(|c| c.tls.is_some() || c.tls_error.is_some())
            .count()
    }
}

type Shared = Arc<watch::Sender<ServerState>>;

/// Options for a [`TestServer`]; start with [`TestServer::builder`].
///
/// Defaults: [`Protocol::Auto`], HTTP/1 keep-alive on, no HTTP/1 header
/// read timeout, hyper's default HTTP/2 settings, plain TCP on
/// `127.0.0.1:0`.
#[derive(Clone, Debug, Default)]
#[must_use]
pub struct TestServerBuilder {
    protocol: Protocol,
    keep_alive_off: bool,
    h2_max_concurrent_streams: Option<u32>,
    header_read_timeout: Option<Duration>,
    tls: Option<Arc<ServerConfig>>,
    unix: bool,
}

impl TestServerBuilder {
    /// Speak only HTTP/1.1.
    pub fn http1_only(mut self) -> Self {
        self.protocol = Protocol::Http1;
        self
    }

    /// Speak only HTTP/2 (h2c prior knowledge on cleartext).
    pub fn http2_only(mut self) -> Self {
        self.protocol = Protocol::Http2;
        self
    }

    /// Sets the protocol selection explicitly.
    pub fn protocol(mut self, protocol: Protocol) -> Self {
        self.protocol = protocol;
        self
    }

    /// HTTP/1 keep-alive (default on). Off: every response carries
    /// `connection: close` and the server closes the socket after it.
    pub fn keep_alive(mut self, enabled: bool) -> Self {
        self.keep_alive_off = !enabled;
        self
    }

    /// HTTP/2 `SETTINGS_MAX_CONCURRENT_STREAMS` the server advertises.
    pub fn h2_max_concurrent_streams(mut self, max: u32) -> Self {
        self.h2_max_concurrent_streams = Some(max);
        self
    }

    /// HTTP/1 header read timeout; `None` (the default here, unlike hyper)
    /// lets a client stall mid-head forever.
    pub fn header_read_timeout(mut self, timeout: Option<Duration>) -> Self {
        self.header_read_timeout = timeout;
        self
    }

    /// Serve TLS with this config. A negotiated ALPN of `h2` selects
    /// HTTP/2, `http/1.1` selects HTTP/1.1, no ALPN falls back to the
    /// configured [`Protocol`].
    pub fn tls(mut self, config: Arc<ServerConfig>) -> Self {
        self.tls = Some(config);
        self
    }

    /// Listen on a Unix socket in a fresh temporary directory (removed when
    /// the server is dropped) instead of TCP.
    pub fn unix(mut self) -> Self {
        self.unix = true;
        self
    }

    /// Binds and starts the server on the current tokio runtime.
    ///
    /// # Panics
    ///
    /// If binding fails; see [`try_serve`](Self::try_serve).
    pub async fn serve<F, Fut>(self, handler: F) -> TestServer
    where
        F: Fn(Request<Incoming>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Response<TestBody>> + Send + 'static,
    {
        match self.try_serve(handler).await {
            Ok(server) => server,
            Err(e) => panic!("failed to start test server: {e}"),
        }
    }

    /// Binds and starts the server on the current tokio runtime.
    pub async fn try_serve<F, Fut>(self, handler: F) -> io::Result<TestServer>
    where
        F: Fn(Request<Incoming>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Response<TestBody>> + Send + 'static,
    {
        let handler: Arc<DynHandler> = Arc::new(move |req| Box::pin(handler(req)));
        let tasks = Tasks::new();
        let exec = TrackedExecutor(tasks.clone());

        let mut h1 = http1::Builder::new();
        h1.timer(TokioTimer::new())
            .keep_alive(!self.keep_alive_off)
            .header_read_timeout(self.header_read_timeout);
        let mut h2 = http2::Builder::new(exec.clone());
        h2.timer(TokioTimer::new())
            .max_concurrent_streams(self.h2_max_concurrent_streams);
        let mut auto = auto::Builder::new(exec);
        auto.http1()
            .timer(TokioTimer::new())
            .keep_alive(!self.keep_alive_off)
            .header_read_timeout(self.header_read_timeout);
        auto.http2()
            .timer(TokioTimer::new())
            .max_concurrent_streams(self.h2_max_concurrent_streams);

        let shared: Shared = Arc::new(watch::Sender::new(ServerState::default()));
        let ctx = Arc::new(Ctx {
            handler,
            protocol: self.protocol,
            h1,
            h2,
            auto,
            tls: self.tls.clone().map(TlsAcceptor::from),
            shared: shared.clone(),
            tasks: tasks.clone(),
        });

        let endpoint = if self.unix {
            let dir = std::env::temp_dir().join(unique_name("undici-test"));
            std::fs::create_dir(&dir)?;
            let path = dir.join("server.sock");
            let listener = match UnixListener::bind(&path) {
                Ok(l) => l,
                Err(e) => {
                    let _ = std::fs::remove_dir(&dir);
                    return Err(e);
                }
            };
            tasks.spawn(accept_unix(listener, ctx));
            Endpoint::Unix { path, dir }
        } else {
            let listener = TcpListener::bind("127.0.0.1:0").await?;
            let addr = listener.local_addr()?;
            tasks.spawn(accept_tcp(listener, ctx));
            Endpoint::Tcp(addr)
        };

        Ok(TestServer {
            endpoint,
            tls: self.tls.is_some(),
            shared,
            tasks,
        })
    }
}

#[derive(Debug)]
enum Endpoint {
    Tcp(SocketAddr),
    Unix { path: PathBuf, dir: PathBuf },
}

/// A running in-process HTTP server. Dropping it stops the accept loop and
/// aborts every connection and handler task.
///
/// Counters and connection details are snapshots; the `wait_for_*` helpers
/// wait for a condition without sleeping (and panic after 20 s rather than
/// hanging a test forever).
#[derive(Debug)]
pub struct TestServer {
    endpoint: Endpoint,
    tls: bool,
    shared: Shared,
    tasks: Arc<Tasks>,
}

impl Drop for TestServer {
    fn drop(&mut self) {
        self.tasks.shutdown();
        if let Endpoint::Unix { path, dir } = &self.endpoint {
            let _ = std::fs::remove_file(path);
            let _ = std::fs::remove_dir(dir);
        }
    }
}

impl TestServer {
    /// Options for a less common server; see [`TestServerBuilder`].
    pub fn builder() -> TestServerBuilder {
        TestServerBuilder::default()
    }

    /// An HTTP/1.1-only server on `127.0.0.1:0`.
    pub async fn http1<F, Fut>(handler: F) -> Self
    where
        F: Fn(Request<Incoming>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Response<TestBody>> + Send + 'static,
    {
        Self::builder().http1_only().serve(handler).await
    }

    /// An HTTP/2 prior-knowledge (h2c) server on `127.0.0.1:0`.
    pub async fn h2c<F, Fut>(handler: F) -> Self
    where
        F: Fn(Request<Incoming>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Response<TestBody>> + Send + 'static,
    {
        Self::builder().http2_only().serve(handler).await
    }

    /// A server on `127.0.0.1:0` that serves HTTP/1.1 and h2c (detected
    /// from the connection preface).
    pub async fn auto<F, Fut>(handler: F) -> Self
    where
        F: Fn(Request<Incoming>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Response<TestBody>> + Send + 'static,
    {
        Self::builder().serve(handler).await
    }

    /// A TLS server on `127.0.0.1:0`: HTTP/2 when ALPN negotiated `h2`,
    /// otherwise HTTP/1.1. Build `config` with
    /// [`TestPki::server_config`](crate::certs::TestPki::server_config).
    /// (For HTTP/2 without ALPN use
    /// `TestServer::builder().http2_only().tls(config)`.)
    pub async fn tls<F, Fut>(handler: F, config: Arc<ServerConfig>) -> Self
    where
        F: Fn(Request<Incoming>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Response<TestBody>> + Send + 'static,
    {
        Self::builder()
            .http1_only()
            .tls(config)
            .serve(handler)
            .await
    }

    /// An HTTP/1.1 server on a Unix socket in a fresh temporary directory.
    pub async fn unix<F, Fut>(handler: F) -> Self
    where
        F: Fn(Request<Incoming>) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Response<TestBody>> + Send + 'static,
    {
        Self::builder().http1_only().unix().serve(handler).await
    }

    /// The TCP address the server listens on.
    ///
    /// # Panics
    ///
    /// On a Unix-socket server (use [`socket_path`](Self::socket_path)).
    pub fn addr(&self) -> SocketAddr {
        match &self.endpoint {
            Endpoint::Tcp(addr) => *addr,
            Endpoint::Unix { path, .. } => {
                panic!(
                    "TestServer::addr on a Unix socket server ({})",
                    path.display()
                )
            }
        }
    }

    /// `http://127.0.0.1:PORT` (or `https://…` for TLS). For a Unix socket
    /// server, `http://localhost` (the host is only used for `Host`).
    pub fn url(&self) -> String {
        match &self.endpoint {
            Endpoint::Tcp(addr) => self.url_with_host(&addr.ip().to_string()),
            Endpoint::Unix { .. } => self.url_with_host("localhost"),
        }
    }

    /// Like [`url`](Self::url) with another host, e.g. `"localhost"` to
    /// match a certificate's DNS name.
    pub fn url_with_host(&self, host: &str) -> String {
        let scheme = if self.tls { "https" } else { "http" };
        match &self.endpoint {
            Endpoint::Tcp(addr) => format!("{scheme}://{host}:{}", addr.port()),
            Endpoint::Unix { .. } => format!("{scheme}://{host}"),
        }
    }

    /// Whether the server speaks TLS.
    pub fn is_tls(&self) -> bool {
        self.tls
    }

    /// The Unix socket path, for a Unix-socket server.
    pub fn socket_path(&self) -> Option<&Path> {
        match &self.endpoint {
            Endpoint::Tcp(_) => None,
            Endpoint::Unix { path, .. } => Some(path),
        }
    }

    /// Sockets accepted so far (including ones whose TLS handshake failed).
    pub fn connections_accepted(&self) -> usize {
        self.shared.borrow().counts.accepted
    }

    /// Sockets currently open on the server side.
    pub fn open_connections(&self) -> usize {
        self.shared.borrow().counts.open
    }

    /// The largest number of sockets open at the same time so far.
    pub fn max_open_connections(&self) -> usize {
        self.shared.borrow().counts.max_open
    }

    /// Remote addresses of accepted TCP sockets, in accept order.
    pub fn peer_addrs(&self) -> Vec<SocketAddr> {
        self.shared.borrow().counts.peers.clone()
    }

    /// Details of every accepted socket, in accept order.
    pub fn connections(&self) -> Vec<ConnectionInfo> {
        self.shared.borrow().conns.clone()
    }

    fn tls_infos<T>(&self, f: impl Fn(&TlsInfo) -> T) -> Vec<T> {
        let state = self.shared.borrow();
        state
            .conns
            .iter()
            .filter_map(|c| c.tls.as_ref())
            .map(f)
            .collect()
    }

    /// SNI of every completed TLS handshake, in accept order.
    pub fn sni_names(&self) -> Vec<Option<String>> {
        self.tls_infos(|t| t.sni.clone())
    }

    /// Negotiated ALPN of every completed TLS handshake, in accept order.
    pub fn alpn_protocols(&self) -> Vec<Option<Vec<u8>>> {
        self.tls_infos(|t| t.alpn.clone())
    }

    /// For every completed TLS handshake, in accept order: was it resumed?
    pub fn resumed_sessions(&self) -> Vec<bool> {
        self.tls_infos(|t| t.resumed)
    }

    /// For every completed TLS handshake, in accept order: did the client
    /// present a certificate?
    pub fn client_cert_presented(&self) -> Vec<bool> {
        self.tls_infos(|t| t.client_cert_presented)
    }

    /// Server-side errors of failed TLS handshakes, in accept order.
    pub fn tls_errors(&self) -> Vec<String> {
        let state = self.shared.borrow();
        state
            .conns
            .iter()
            .filter_map(|c| c.tls_error.clone())
            .collect()
    }

    /// Requests whose handler was called.
    pub fn requests_received(&self) -> usize {
        self.shared.borrow().requests_received
    }

    /// Requests whose handler returned a response (counted before the
    /// response is written, so a client that got a response sees it).
    pub fn requests_served(&self) -> usize {
        self.shared.borrow().requests_served
    }

    /// Closes every currently open connection from the server side
    /// (abruptly: the socket is dropped, in-flight requests are cut) and
    /// waits until they are closed. Later connections are not affected.
    pub async fn close_connections(&self) {
        let ids = self.signal_close(CloseMode::Abort);
        wait_until(
            &self.shared,
            |s| ids.iter().all(|id| !s.closers.contains_key(id)),
            |s| format!("connections {ids:?} to close (open: {})", s.counts.open),
        )
        .await;
    }

    /// Starts a graceful shutdown of every currently open connection
    /// (HTTP/2: GOAWAY; HTTP/1: close after the in-flight response) and
    /// returns at once; use [`wait_for_open_connections`](Self::wait_for_open_connections)
    /// to wait for the sockets to close.
    pub fn graceful_shutdown_connections(&self) {
        self.signal_close(CloseMode::Graceful);
    }

    fn signal_close(&self, mode: CloseMode) -> Vec<usize> {
        let state = self.shared.borrow();
        for tx in state.closers.values() {
            tx.send_replace(Some(mode));
        }
        state.closers.keys().copied().collect()
    }

    /// Waits until at least `n` sockets were accepted.
    pub async fn wait_for_connections(&self, n: usize) {
        wait_until(
            &self.shared,
            |s| s.counts.accepted >= n,
            |s| format!("{n} accepted connections (got {})", s.counts.accepted),
        )
        .await;
    }

    /// Waits until exactly `n` sockets are open (e.g. `0` after a client
    /// closed its connections).
    pub async fn wait_for_open_connections(&self, n: usize) {
        wait_until(
            &self.shared,
            |s| s.counts.open == n,
            |s| format!("{n} open connections (open: {})", s.counts.open),
        )
        .await;
    }

    /// Waits until the handler was called at least `n` times.
    pub async fn wait_for_requests_received(&self, n: usize) {
        wait_until(
            &self.shared,
            |s| s.requests_received >= n,
            |s| format!("{n} received requests (got {})", s.requests_received),
        )
        .await;
    }

    /// Waits until the handler returned at least `n` responses.
    pub async fn wait_for_requests_served(&self, n: usize) {
        wait_until(
            &self.shared,
            |s| s.requests_served >= n,
            |s| format!("{n} served requests (got {})", s.requests_served),
        )
        .await;
    }

    /// Waits until at least `n` TLS handshakes finished, successfully or
    /// not (useful after a client rejected the server's certificate).
    pub async fn wait_for_tls_handshakes(&self, n: usize) {
        wait_until(
            &self.shared,
            |s| s.tls_handshakes() >= n,
            |s| format!("{n} TLS handshakes (got {})", s.tls_handshakes()),
        )
        .await;
    }
}

struct Ctx {
    handler: Arc<DynHandler>,
    protocol: Protocol,
    h1: http1::Builder,
    h2: http2::Builder<TrackedExecutor>,
    auto: auto::Builder<TrackedExecutor>,
    tls: Option<TlsAcceptor>,
    shared: Shared,
    tasks: Arc<Tasks>,
}

/// Marks a connection closed when the connection task ends or is aborted.
struct OpenGuard {
    id: usize,
    shared: Shared,
}

impl Drop for OpenGuard {
    fn drop(&mut self) {
        let id = self.id;
        self.shared.send_modify(|s| {
            s.counts.close();
            s.closers.remove(&id);
            if let Some(c) = s.conns.get_mut(id) {
                c.open = false;
            }
        });
    }
}

fn register(
    shared: &Shared,
    peer: Option<SocketAddr>,
) -> (OpenGuard, watch::Receiver<Option<CloseMode>>) {
    let (tx, rx) = watch::channel(None);
    let mut id = 0;
    shared.send_modify(|s| {
        id = s.counts.accept(peer);
        s.conns.push(ConnectionInfo {
            id,
            peer_addr: peer,
            open: true,
            requests: 0,
            http_version: None,
            tls: None,
            tls_error: None,
        });
        s.closers.insert(id, tx);
    });
    let guard = OpenGuard {
        id,
        shared: shared.clone(),
    };
    (guard, rx)
}

/// Backs off briefly after an accept error (e.g. out of file descriptors)
/// instead of spinning.
async fn accept_error_backoff() {
    tokio::time::sleep(Duration::from_millis(10)).await;
}

async fn accept_tcp(listener: TcpListener, ctx: Arc<Ctx>) {
    loop {
        match listener.accept().await {
            Ok((stream, peer)) => {
                let _ = stream.set_nodelay(true);
                let (guard, close_rx) = register(&ctx.shared, Some(peer));
                let c = ctx.clone();
                ctx.tasks.spawn(handle_conn(stream, guard, close_rx, c));
            }
            Err(_) => accept_error_backoff().await,
        }
    }
}

async fn accept_unix(listener: UnixListener, ctx: Arc<Ctx>) {
    loop {
        match listener.accept().await {
            Ok((stream, _)) => {
                let (guard, close_rx) = register(&ctx.shared, None);
                let c = ctx.clone();
                ctx.tasks.spawn(handle_conn(stream, guard, close_rx, c));
            }
            Err(_) => accept_error_backoff().await,
        }
    }
}

/// Resolves when the server asks this connection to close.
async fn close_signal(mut rx: watch::Receiver<Option<CloseMode>>) -> CloseMode {
    let mode = rx.wait_for(Option::is_some).await.ok().and_then(|m| *m);
    match mode {
        Some(mode) => mode,
        // The sender is only dropped after this task ended.
        None => std::future::pending().await,
    }
}

async fn handle_conn<I>(
    io: I,
    guard: OpenGuard,
    close_rx: watch::Receiver<Option<CloseMode>>,
    ctx: Arc<Ctx>,
) where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    // Dropped when this task ends or is aborted: marks the socket closed.
    let _guard = guard;
    let id = _guard.id;
    let Some(acceptor) = ctx.tls.clone() else {
        let protocol = ctx.protocol;
        serve_http(io, protocol, id, close_rx, &ctx).await;
        return;
    };
    let handshake = tokio::select! {
        res = acceptor.accept(io) => res,
        _ = close_signal(close_rx.clone()) => return,
    };
    let stream = match handshake {
        Ok(stream) => stream,
        Err(e) => {
            ctx.shared.send_modify(|s| {
                if let Some(c) = s.conns.get_mut(id) {
                    c.tls_error = Some(e.to_string());
                }
            });
            return;
        }
    };
    let conn = stream.get_ref().1;
    let info = TlsInfo {
        sni: conn.server_name().map(str::to_owned),
        alpn: conn.alpn_protocol().map(<[u8]>::to_vec),
        resumed: conn.handshake_kind() == Some(rustls::HandshakeKind::Resumed),
        client_cert_presented: conn.peer_certificates().is_some_and(|c| !c.is_empty()),
        version: conn.protocol_version(),
    };
    let protocol = match info.alpn.as_deref() {
        Some(b"h2") => Protocol::Http2,
        Some(b"http/1.1") | Some(b"http/1.0") => Protocol::Http1,
        _ => ctx.protocol,
    };
    ctx.shared.send_modify(|s| {
        if let Some(c) = s.conns.get_mut(id) {
            c.tls = Some(info);
        }
    });
    serve_http(stream, protocol, id, close_rx, &ctx).await;
}

/// Builds the hyper connection for `io` and returns the boxed future that
/// drives it. (Boxing here, outside any `async fn`, lets the compiler prove
/// `Send` for hyper's connection types.)
fn serve_http<I>(
    io: I,
    protocol: Protocol,
    id: usize,
    close_rx: watch::Receiver<Option<CloseMode>>,
    ctx: &Arc<Ctx>,
) -> BoxFuture<()>
where
    I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
{
    let io = TokioIo::new(io);
    let svc_ctx = ctx.clone();
    let service = hyper::service::service_fn(move |mut req: Request<Incoming>| {
        let ctx = svc_ctx.clone();
        let version = req.version();
        ctx.shared.send_modify(|s| {
            s.requests_received += 1;
            if let Some(c) = s.conns.get_mut(id) {
                c.requests += 1;
                c.http_version = Some(version);
            }
        });
        req.extensions_mut().insert(ConnectionId(id));
        let fut = (ctx.handler)(req);
        async move {
            let response = fut.await;
            ctx.shared.send_modify(|s| s.requests_served += 1);
            Ok::<_, Infallible>(response)
        }
    });
    match protocol {
        Protocol::Http1 => {
            let conn = ctx.h1.serve_connection(io, service).with_upgrades();
            Box::pin(drive(conn, close_rx, |c| c.graceful_shutdown()))
        }
        Protocol::Http2 => {
            let conn = ctx.h2.serve_connection(io, service);
            Box::pin(drive(conn, close_rx, |c| c.graceful_shutdown()))
        }
        Protocol::Auto => {
            let conn = ctx
                .auto
                .serve_connection_with_upgrades(io, service)
                .into_owned();
            Box::pin(drive(conn, close_rx, |c| c.graceful_shutdown()))
        }
    }
}

/// Runs a hyper connection until it ends or the server closes it.
async fn drive<C, G>(conn: C, mut close_rx: watch::Receiver<Option<CloseMode>>, graceful: G)
where
    C: Future,
    G: FnOnce(Pin<&mut C>),
{
    let mut conn = std::pin::pin!(conn);
    let mode = tokio::select! {
        _ = conn.as_mut() => return,
        mode = close_signal(close_rx.clone()) => mode,
    };
    if mode == CloseMode::Abort {
        return;
    }
    graceful(conn.as_mut());
    tokio::select! {
        _ = conn => {}
        _ = close_rx.wait_for(|m| *m == Some(CloseMode::Abort)) => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::body;
    use crate::certs::TestPki;
    use crate::handlers;
    use bytes::Bytes;
    use http_body_util::BodyExt;
    use hyper::client::conn::{http1 as client1, http2 as client2};
    use hyper_util::rt::TokioExecutor;
    use rustls::ClientConfig;
    use rustls_pki_types::ServerName;
    use tokio::net::{TcpStream, UnixStream};
    use tokio::sync::{mpsc, oneshot};
    use tokio::task::JoinHandle;
    use tokio_rustls::TlsConnector;

    type Sender1 = client1::SendRequest<TestBody>;
    type Sender2 = client2::SendRequest<TestBody>;

    async fn h1_over<I>(io: I) -> (Sender1, JoinHandle<hyper::Result<()>>)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (sender, conn) = client1::handshake(TokioIo::new(io)).await.unwrap();
        (sender, tokio::spawn(conn.with_upgrades()))
    }

    async fn h2_over<I>(io: I) -> (Sender2, JoinHandle<hyper::Result<()>>)
    where
        I: AsyncRead + AsyncWrite + Unpin + Send + 'static,
    {
        let (sender, conn) = client2::handshake(TokioExecutor::new(), TokioIo::new(io))
            .await
            .unwrap();
        (sender, tokio::spawn(conn))
    }

    async fn h1(addr: SocketAddr) -> (Sender1, JoinHandle<hyper::Result<()>>) {
        h1_over(TcpStream::connect(addr).await.unwrap()).await
    }

    async fn h2(addr: SocketAddr) -> (Sender2, JoinHandle<hyper::Result<()>>) {
        h2_over(TcpStream::connect(addr).await.unwrap()).await
    }

    fn get(uri: &str) -> Request<TestBody> {
        Request::get(uri).body(body::empty()).unwrap()
    }

    async fn text(resp: Response<Incoming>) -> String {
        let bytes = resp.into_body().collect().await.unwrap().to_bytes();
        String::from_utf8(bytes.to_vec()).unwrap()
    }

    async fn tls_connect(
        addr: SocketAddr,
        config: Arc<ClientConfig>,
        name: &str,
    ) -> io::Result<tokio_rustls::client::TlsStream<TcpStream>> {
        let tcp = TcpStream::connect(addr).await?;
        let name = ServerName::try_from(name.to_owned()).unwrap();
        TlsConnector::from(config).connect(name, tcp).await
    }

    #[tokio::test]
    async fn http1_serves_and_counts() {
        let server = TestServer::http1(handlers::hello).await;
        assert!(server.url().starts_with("http://127.0.0.1:"));
        assert_eq!(server.socket_path(), None);
        assert!(!server.is_tls());
        let tcp = TcpStream::connect(server.addr()).await.unwrap();
        let local = tcp.local_addr().unwrap();
        let (mut sender, _conn) = h1_over(tcp).await;
        for _ in 0..2 {
            let resp = sender.send_request(get("/")).await.unwrap();
            assert_eq!(resp.status(), 200);
            assert_eq!(text(resp).await, "hello world");
        }
        assert_eq!(server.connections_accepted(), 1);
        assert_eq!(server.open_connections(), 1);
        assert_eq!(server.requests_received(), 2);
        assert_eq!(server.requests_served(), 2);
        assert_eq!(server.peer_addrs(), vec![local]);
        let conns = server.connections();
        assert_eq!(conns[0].requests, 2);
        assert_eq!(conns[0].http_version, Some(http::Version::HTTP_11));
        assert!(conns[0].open && conns[0].tls.is_none());
    }

    #[tokio::test]
    async fn inline_closure_needs_no_annotations() {
        let server = TestServer::http1(|req| async move {
            let id = req.extensions().get::<ConnectionId>().map_or(99, |c| c.0);
            Response::new(body::full(format!("conn {id}")))
        })
        .await;
        for expected in ["conn 0", "conn 1"] {
            let (mut sender, _conn) = h1(server.addr()).await;
            let resp = sender.send_request(get("/")).await.unwrap();
            assert_eq!(text(resp).await, expected);
        }
    }

    #[tokio::test]
    async fn echo_reflects_request() {
        let server = TestServer::http1(handlers::echo).await;
        let (mut sender, _conn) = h1(server.addr()).await;
        let req = Request::post("/a/b?c=1")
            .header("x-foo", "bar")
            .header("host", "example.test")
            .body(body::full("ping"))
            .unwrap();
        let resp = sender.send_request(req).await.unwrap();
        let h = resp.headers();
        assert_eq!(h["x-method"], "POST");
        assert_eq!(h["x-path"], "/a/b?c=1");
        assert_eq!(h["x-version"], "HTTP/1.1");
        assert_eq!(h["x-req-x-foo"], "bar");
        assert_eq!(h["x-req-host"], "example.test");
        assert_eq!(h["content-length"], "4");
        assert_eq!(text(resp).await, "ping");
    }

    #[tokio::test]
    async fn h2c_speaks_only_http2() {
        let server = TestServer::h2c(handlers::echo).await;
        let (mut sender, _conn) = h2(server.addr()).await;
        let req = Request::get(format!("{}/x", server.url()))
            .body(body::empty())
            .unwrap();
        let resp = sender.send_request(req).await.unwrap();
        assert_eq!(resp.headers()["x-version"], "HTTP/2.0");
        assert_eq!(resp.headers()["x-path"], "/x");

        // An HTTP/1 client gets no response.
        let (mut sender, _conn) = h1(server.addr()).await;
        assert!(sender.send_request(get("/")).await.is_err());
    }

    #[tokio::test]
    async fn http1_only_rejects_http2_preface() {
        let server = TestServer::http1(handlers::hello).await;
        let (mut sender, _conn) = h2(server.addr()).await;
        let req = Request::get(format!("{}/", server.url()))
            .body(body::empty())
            .unwrap();
        assert!(sender.send_request(req).await.is_err());
    }

    #[tokio::test]
    async fn auto_serves_both_versions() {
        let server = TestServer::auto(handlers::echo).await;
        let (mut s1, _c1) = h1(server.addr()).await;
        let resp = s1.send_request(get("/")).await.unwrap();
        assert_eq!(resp.headers()["x-version"], "HTTP/1.1");
        let (mut s2, _c2) = h2(server.addr()).await;
        let req = Request::get(format!("{}/", server.url()))
            .body(body::empty())
            .unwrap();
        let resp = s2.send_request(req).await.unwrap();
        assert_eq!(resp.headers()["x-version"], "HTTP/2.0");
        assert_eq!(server.connections_accepted(), 2);
        assert_eq!(server.max_open_connections(), 2);
    }

    #[tokio::test]
    async fn h2_max_concurrent_streams_is_advertised() {
        let server = TestServer::builder()
            .http2_only()
            .h2_max_concurrent_streams(3)
            .serve(handlers::hello)
            .await;
        let tcp = TcpStream::connect(server.addr()).await.unwrap();
        let (client, conn) = ::h2::client::handshake(tcp).await.unwrap();
        let mut conn = Box::pin(conn);
        let mut client = client.ready().await.unwrap();
        let req = Request::get(format!("{}/", server.url())).body(()).unwrap();
        let (resp, _) = client.send_request(req, true).unwrap();
        let resp = tokio::select! {
            r = resp => r.unwrap(),
            _ = conn.as_mut() => panic!("connection ended"),
        };
        assert_eq!(resp.status(), 200);
        // The response came after the server's SETTINGS.
        assert_eq!(conn.max_concurrent_send_streams(), 3);
    }

    #[tokio::test]
    async fn keep_alive_off_closes_after_response() {
        let server = TestServer::builder()
            .http1_only()
            .keep_alive(false)
            .serve(handlers::hello)
            .await;
        let (mut sender, conn) = h1(server.addr()).await;
        let resp = sender.send_request(get("/")).await.unwrap();
        assert_eq!(resp.headers()["connection"], "close");
        assert_eq!(text(resp).await, "hello world");
        conn.await.unwrap().unwrap();
        server.wait_for_open_connections(0).await;
        assert!(!server.connections()[0].open);
    }

    #[tokio::test]
    async fn streaming_body_with_trailers_over_h2() {
        let (tx_sender, mut rx_sender) = mpsc::unbounded_channel();
        let server = TestServer::h2c(move |_req| {
            let (tx, body) = body::channel(1);
            let _ = tx_sender.send(tx);
            async move { Response::new(body) }
        })
        .await;
        let (mut sender, _conn) = h2(server.addr()).await;
        let req = Request::get(format!("{}/", server.url()))
            .body(body::empty())
            .unwrap();
        let resp = sender.send_request(req).await.unwrap();
        let body_tx = rx_sender.recv().await.unwrap();
        let mut incoming = resp.into_body();
        body_tx.send_data("one").await.unwrap();
        let frame = incoming.frame().await.unwrap().unwrap();
        assert_eq!(frame.into_data().unwrap(), Bytes::from_static(b"one"));
        // The body stalls until the test sends more.
        body_tx.send_data("two").await.unwrap();
        let mut trailers = http::HeaderMap::new();
        trailers.insert("x-done", "yes".parse().unwrap());
        body_tx.send_trailers(trailers).await.unwrap();
        drop(body_tx);
        let rest = incoming.collect().await.unwrap();
        assert_eq!(rest.trailers().unwrap()["x-done"], "yes");
        assert_eq!(rest.to_bytes(), "two");
        assert_eq!(server.requests_served(), 1);
    }

    #[tokio::test]
    async fn close_connections_from_server_side() {
        let (release_tx, release_rx) = oneshot::channel::<()>();
        let release_rx = Arc::new(std::sync::Mutex::new(Some(release_rx)));
        let server = TestServer::auto(move |req| {
            let rx = if req.uri().path() == "/stall" {
                release_rx.lock().unwrap().take()
            } else {
                None
            };
            async move {
                if let Some(rx) = rx {
                    let _ = rx.await;
                }
                Response::new(body::full("ok"))
            }
        })
        .await;
        let (mut idle, idle_conn) = h1(server.addr()).await;
        idle.send_request(get("/")).await.unwrap();
        let (mut busy, busy_conn) = h2(server.addr()).await;
        let req = Request::get(format!("{}/stall", server.url()))
            .body(body::empty())
            .unwrap();
        let in_flight = tokio::spawn(async move { busy.send_request(req).await });
        server.wait_for_requests_received(2).await;
        assert_eq!(server.open_connections(), 2);

        server.close_connections().await;
        assert_eq!(server.open_connections(), 0);
        assert!(
            in_flight.await.unwrap().is_err(),
            "in-flight request is cut"
        );
        let _ = idle_conn.await.unwrap();
        let _ = busy_conn.await.unwrap();
        assert!(idle.is_closed());
        drop(release_tx);

        // New connections still work.
        let (mut sender, _conn) = h1(server.addr()).await;
        let resp = sender.send_request(get("/")).await.unwrap();
        assert_eq!(text(resp).await, "ok");
        assert_eq!(server.connections_accepted(), 3);
        assert_eq!(server.max_open_connections(), 2);
    }

    #[tokio::test]
    async fn graceful_shutdown_sends_goaway() {
        let server = TestServer::h2c(handlers::hello).await;
        let (mut sender, conn) = h2(server.addr()).await;
        let req = Request::get(format!("{}/", server.url()))
            .body(body::empty())
            .unwrap();
        sender.send_request(req).await.unwrap();
        server.graceful_shutdown_connections();
        conn.await.unwrap().unwrap();
        server.wait_for_open_connections(0).await;
    }

    #[tokio::test]
    async fn counts_concurrent_sockets() {
        let server = TestServer::http1(handlers::hello).await;
        let mut sockets = Vec::new();
        for _ in 0..3 {
            sockets.push(TcpStream::connect(server.addr()).await.unwrap());
        }
        server.wait_for_connections(3).await;
        server.wait_for_open_connections(3).await;
        assert_eq!(server.max_open_connections(), 3);
        assert_eq!(server.peer_addrs().len(), 3);
        drop(sockets);
        server.wait_for_open_connections(0).await;
        assert_eq!(server.max_open_connections(), 3);
        assert_eq!(server.connections_accepted(), 3);
    }

    #[tokio::test]
    async fn handler_panic_does_not_kill_server() {
        let server = TestServer::http1(|req| async move {
            assert_ne!(req.uri().path(), "/panic", "handler panics on purpose");
            Response::new(body::full("fine"))
        })
        .await;
        let (mut sender, _conn) = h1(server.addr()).await;
        assert!(sender.send_request(get("/panic")).await.is_err());
        let (mut sender, _conn) = h1(server.addr()).await;
        let resp = sender.send_request(get("/")).await.unwrap();
        assert_eq!(text(resp).await, "fine");
        server.wait_for_open_connections(1).await;
    }

    #[tokio::test]
    async fn dropping_the_server_closes_everything() {
        let server = TestServer::http1(handlers::hello).await;
        let addr = server.addr();
        let (mut sender, conn) = h1(addr).await;
        sender.send_request(get("/")).await.unwrap();
        drop(server);
        let _ = conn.await.unwrap();
        let err = TcpStream::connect(addr).await.unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::ConnectionRefused);
    }

    #[tokio::test]
    async fn unix_socket_server() {
        let server = TestServer::unix(handlers::echo).await;
        let path = server.socket_path().unwrap().to_path_buf();
        assert!(path.exists());
        assert_eq!(server.url(), "http://localhost");
        let (mut sender, _conn) = h1_over(UnixStream::connect(&path).await.unwrap()).await;
        let resp = sender.send_request(get("/unix")).await.unwrap();
        assert_eq!(resp.headers()["x-path"], "/unix");
        assert_eq!(server.connections_accepted(), 1);
        assert!(server.peer_addrs().is_empty());
        drop(server);
        assert!(!path.exists());
        assert!(!path.parent().unwrap().exists());
    }

    #[tokio::test]
    async fn tls_alpn_sni_and_versions() {
        let pki = TestPki::new();
        let cert = pki.server_cert(&["localhost", "127.0.0.1"]);
        let server = TestServer::tls(
            handlers::echo,
            pki.server_config(&cert, &[b"h2", b"http/1.1"]),
        )
        .await;
        assert!(server.url().starts_with("https://127.0.0.1:"));
        assert!(server
            .url_with_host("localhost")
            .starts_with("https://localhost:"));

        let tls = tls_connect(server.addr(), pki.client_config(&[b"h2"]), "localhost")
            .await
            .unwrap();
        let (mut sender, _c) = h2_over(tls).await;
        let req = Request::get(server.url_with_host("localhost"))
            .body(body::empty())
            .unwrap();
        let resp = sender.send_request(req).await.unwrap();
        assert_eq!(resp.headers()["x-version"], "HTTP/2.0");

        let tls = tls_connect(
            server.addr(),
            pki.client_config(&[b"http/1.1"]),
            "127.0.0.1",
        )
        .await
        .unwrap();
        let (mut sender, _c) = h1_over(tls).await;
        let resp = sender.send_request(get("/")).await.unwrap();
        assert_eq!(resp.headers()["x-version"], "HTTP/1.1");

        // No ALPN: HTTP/1.1.
        let tls = tls_connect(server.addr(), pki.client_config(&[]), "localhost")
            .await
            .unwrap();
        let (mut sender, _c) = h1_over(tls).await;
        let resp = sender.send_request(get("/")).await.unwrap();
        assert_eq!(resp.headers()["x-version"], "HTTP/1.1");

        assert_eq!(
            server.sni_names(),
            vec![
                Some("localhost".to_owned()),
                None,
                Some("localhost".to_owned())
            ]
        );
        assert_eq!(
            server.alpn_protocols(),
            vec![Some(b"h2".to_vec()), Some(b"http/1.1".to_vec()), None]
        );
        assert_eq!(server.client_cert_presented(), vec![false, false, false]);
        let versions: Vec<_> = server
            .connections()
            .iter()
            .map(|c| c.tls.as_ref().unwrap().version)
            .collect();
        assert_eq!(versions, vec![Some(rustls::ProtocolVersion::TLSv1_3); 3]);
    }

    #[tokio::test]
    async fn tls_http2_without_alpn_via_builder() {
        let pki = TestPki::new();
        let cert = pki.server_cert(&["localhost"]);
        let server = TestServer::builder()
            .http2_only()
            .tls(pki.server_config(&cert, &[]))
            .serve(handlers::echo)
            .await;
        let tls = tls_connect(server.addr(), pki.client_config(&[]), "localhost")
            .await
            .unwrap();
        let (mut sender, _c) = h2_over(tls).await;
        let req = Request::get(server.url_with_host("localhost"))
            .body(body::empty())
            .unwrap();
        let resp = sender.send_request(req).await.unwrap();
        assert_eq!(resp.headers()["x-version"], "HTTP/2.0");
        assert_eq!(server.alpn_protocols(), vec![None]);
    }

    #[tokio::test]
    async fn tls_handshake_failure_does_not_crash_server() {
        let pki = TestPki::new();
        let cert = pki.server_cert(&["localhost"]);
        let server = TestServer::tls(handlers::hello, pki.server_config(&cert, &[])).await;
        let stranger = TestPki::new();
        let err = tls_connect(server.addr(), stranger.client_config(&[]), "localhost")
            .await
            .unwrap_err();
        assert!(err.to_string().contains("UnknownIssuer"), "{err}");
        server.wait_for_tls_handshakes(1).await;
        assert_eq!(server.tls_errors().len(), 1);
        assert!(server.sni_names().is_empty());

        let tls = tls_connect(server.addr(), pki.client_config(&[]), "localhost")
            .await
            .unwrap();
        let (mut sender, _c) = h1_over(tls).await;
        let resp = sender.send_request(get("/")).await.unwrap();
        assert_eq!(text(resp).await, "hello world");
        assert_eq!(server.connections_accepted(), 2);
        assert_eq!(server.sni_names().len(), 1);
    }

    #[tokio::test]
    async fn tls_session_resumption() {
        let pki = TestPki::new();
        let cert = pki.server_cert(&["localhost"]);
        let server = TestServer::tls(handlers::hello, pki.server_config(&cert, &[])).await;
        // One client config = one session cache.
        let client = pki.client_config(&[]);
        for _ in 0..2 {
            let tls = tls_connect(server.addr(), client.clone(), "localhost")
                .await
                .unwrap();
            let (mut sender, conn) = h1_over(tls).await;
            // Reading the response also reads the session tickets sent
            // before it.
            let resp = sender.send_request(get("/")).await.unwrap();
            assert_eq!(text(resp).await, "hello world");
            drop(sender);
            let _ = conn.await;
        }
        assert_eq!(server.resumed_sessions(), vec![false, true]);
    }

    #[tokio::test]
    async fn tls_client_certificates() {
        let pki = TestPki::new();
        let cert = pki.server_cert(&["localhost"]);
        let config = pki.server_config_with_client_auth(&cert, &[b"http/1.1"], false);
        let server = TestServer::tls(handlers::hello, config).await;
        let with_cert = pki.client_config_with_cert(&pki.client_cert("alice"), &[b"http/1.1"]);
        for config in [with_cert, pki.client_config(&[b"http/1.1"])] {
            let tls = tls_connect(server.addr(), config, "localhost")
                .await
                .unwrap();
            let (mut sender, _c) = h1_over(tls).await;
            let resp = sender.send_request(get("/")).await.unwrap();
            assert_eq!(resp.status(), 200);
        }
        assert_eq!(server.client_cert_presented(), vec![true, false]);
    }

    #[tokio::test]
    async fn header_read_timeout_can_be_enabled() {
        let server = TestServer::builder()
            .http1_only()
            .header_read_timeout(Some(Duration::from_millis(50)))
            .serve(handlers::hello)
            .await;
        // A client that never sends a request head is dropped by the server.
        let _idle = TcpStream::connect(server.addr()).await.unwrap();
        server.wait_for_connections(1).await;
        server.wait_for_open_connections(0).await;
    }

    #[tokio::test]
    async fn status_handler() {
        let server = TestServer::http1(handlers::status(503)).await;
        let (mut sender, _conn) = h1(server.addr()).await;
        let resp = sender.send_request(get("/")).await.unwrap();
        assert_eq!(resp.status(), 503);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn works_on_multi_thread_runtime() {
        let server = TestServer::auto(handlers::echo).await;
        let mut clients = Vec::new();
        for i in 0..8 {
            let addr = server.addr();
            clients.push(tokio::spawn(async move {
                let (mut sender, _conn) = h1(addr).await;
                for j in 0..5 {
                    let req = Request::post("/")
                        .body(body::full(format!("{i}-{j}")))
                        .unwrap();
                    let resp = sender.send_request(req).await.unwrap();
                    assert_eq!(text(resp).await, format!("{i}-{j}"));
                }
            }));
        }
        for client in clients {
            client.await.unwrap();
        }
        assert_eq!(server.requests_served(), 40);
        assert_eq!(server.connections_accepted(), 8);
        server.wait_for_open_connections(0).await;
    }
}
