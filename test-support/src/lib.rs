//! Test servers shared by undici's tests, examples and benches, so they are
//! not copied into every file. Everything listens on `127.0.0.1:0` or on a
//! Unix socket in a temporary directory; nothing touches the network.
//!
//! - [`server`]: [`TestServer`], an in-process hyper server (HTTP/1.1,
//!   h2c, auto-detected, TLS with ALPN, Unix socket) that counts sockets and
//!   requests and records TLS details (SNI, ALPN, resumption, client certs).
//! - [`raw`]: [`RawServer`], a TCP server whose per-connection script writes
//!   exact bytes: malformed responses, stalls, FIN or RST at any point.
//! - [`certs`]: [`TestPki`], a run-time CA issuing server, expired and
//!   client certificates, and rustls configs built with the *ring*
//!   provider.
//! - [`gate`]: [`Gate`], which holds handlers until the test releases
//!   them one at a time.
//! - [`blackhole`]: [`unresponsive_listener`], an address where TCP
//!   connects hang, for connect-timeout tests.
//! - [`body`] and [`handlers`]: response bodies (full, empty, streamed
//!   through a channel) and ready-made handlers ([`handlers::echo`],
//!   [`handlers::hello`]).
//!
//! Servers run as tasks on the current tokio runtime (so they work inside
//! `#[tokio::test]`) and stop, with all their connections, when their
//! handle is dropped.
//!
//! ```
//! use http::Response;
//! use undici_test_support::{body, certs::TestPki, handlers, RawServer, TestServer};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() {
//! // HTTP/1.1 with an inline handler.
//! let plain = TestServer::http1(|_req| async { Response::new(body::full("hello")) }).await;
//! println!("{}", plain.url()); // http://127.0.0.1:PORT
//!
//! // TLS offering h2 and HTTP/1.1, certificate for 127.0.0.1 and localhost.
//! let pki = TestPki::new();
//! let cert = pki.server_cert(&["localhost", "127.0.0.1"]);
//! let tls = TestServer::tls(handlers::echo, pki.server_config(&cert, &[b"h2", b"http/1.1"])).await;
//! println!("{}", tls.url_with_host("localhost")); // https://localhost:PORT
//!
//! // A hostile server: answers any request with a broken response.
//! let raw = RawServer::respond_then_close(b"HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nshort").await;
//! println!("{}", raw.url());
//! # drop((plain, tls, raw));
//! # }
//! ```

#![deny(missing_docs)]

pub mod blackhole;
pub mod body;
pub mod certs;
pub mod gate;
pub mod handlers;
pub mod raw;
pub mod server;
mod util;

pub use blackhole::{unresponsive_listener, Blackhole};
pub use body::{BoxError, TestBody};
pub use certs::{CertifiedKey, TestPki};
pub use gate::Gate;
pub use raw::{RawConn, RawRequest, RawServer};
pub use server::{ConnectionId, ConnectionInfo, Protocol, TestServer, TestServerBuilder, TlsInfo};
