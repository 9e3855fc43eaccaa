//! How bytes reach a server: undici's `buildConnector` on tokio and rustls.
//!
//! [`build_connector`] turns [`ConnectOptions`] into a [`Connector`], a
//! `tower::Service<Destination, Response = Connection>`. It opens TCP
//! (happy eyeballs over the resolved addresses, keep-alive, nodelay, a local
//! address, type of service) or a Unix domain socket, runs TLS through
//! rustls for `https` (SNI, roots or a custom CA, client certificates, a
//! session cache for resumption, ALPN `http/1.1` and `h2`), and hands back a
//! [`Connection`] that hyper can drive and that says what it is
//! ([`ConnectionInfo`]: addresses, ALPN, TLS version, resumption and the
//! server's certificate chain).
//!
//! ```
//! use undici_connectors::{build_connector, ConnectOptions, Destination, Scheme};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
//! let port = listener.local_addr()?.port();
//!
//! let connector = build_connector(ConnectOptions::new())?;
//! let connection = connector
//!     .connect(Destination::new(Scheme::Http, "127.0.0.1", port))
//!     .await?;
//! assert_eq!(connection.info().remote_addr(), Some(listener.local_addr()?));
//! # Ok(())
//! # }
//! ```
//!
//! # A connector of your own
//!
//! undici lets a `connect` function wrap the built connector to check a
//! socket before it is used. Here the same is a service that wraps
//! [`Connector`]; a check that fails returns [`ConnectError::rejected`] and
//! the connection is dropped (closed).
//!
//! ```
//! use std::future::Future;
//! use std::pin::Pin;
//! use std::task::{Context, Poll};
//! use undici_connectors::{Connection, ConnectError, Connector, Destination};
//!
//! /// Refuses servers whose leaf certificate is not the pinned one.
//! #[derive(Clone)]
//! struct Pinned {
//!     inner: Connector,
//!     fingerprint: String,
//! }
//!
//! impl tower::Service<Destination> for Pinned {
//!     type Response = Connection;
//!     type Error = ConnectError;
//!     type Future = Pin<Box<dyn Future<Output = Result<Connection, ConnectError>> + Send>>;
//!
//!     fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), ConnectError>> {
//!         self.inner.poll_ready(cx)
//!     }
//!
//!     fn call(&mut self, destination: Destination) -> Self::Future {
//!         let connecting = self.inner.call(destination);
//!         let expected = self.fingerprint.clone();
//!         Box::pin(async move {
//!             let connection = connecting.await?;
//!             let seen = connection.info().tls().and_then(|tls| tls.peer_fingerprint256());
//!             if seen.as_deref() != Some(expected.as_str()) {
//!                 return Err(ConnectError::rejected("certificate fingerprint does not match"));
//!             }
//!             Ok(connection)
//!         })
//!     }
//! }
//! ```
//!
//! # Errors
//!
//! Every failure is a [`ConnectError`] with undici's code:
//! `UND_ERR_CONNECT_TIMEOUT` (the message lists the addresses tried),
//! `ECONNREFUSED`, `ENOTFOUND`, `UND_ERR_SOCKET` or the errno name of a
//! socket error, and for TLS a [`TlsFailure`] (unknown issuer, wrong name,
//! expired, client certificate rejected) with rustls's error as the source.
//! A failure on a socket carries the socket's local and remote address as
//! far as they are known ([`ConnectError::local_addr`],
//! [`ConnectError::remote_addr`]), and its message ends with them.
//!
//! With TLS 1.3 the server judges the client certificate after the client
//! has finished its handshake, so a rejected client certificate shows up on
//! the first read of the connection, not in `connect`.
//!
//! # Features
//!
//! | feature | default | what it does |
//! |---|---|---|
//! | `ring` | yes | rustls with the ring provider |
//! | `aws-lc-rs` | no | rustls with aws-lc-rs (used when `ring` is off) |
//! | `webpki-roots` | yes | Mozilla's roots compiled in ([`Roots::WebPki`]) |
//! | `native-roots` | no | the system trust store ([`Roots::Native`]) |
#![deny(missing_docs, unreachable_pub, unsafe_code)]
#![warn(
    rust_2018_idioms,
    clippy::await_holding_lock,
    clippy::dbg_macro,
    clippy::todo
)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod connection;
mod connector;
mod destination;
mod error;
mod options;
mod resolve;
mod session_cache;
mod tcp;
mod tls;

pub use connection::{fingerprint256, Connection, ConnectionInfo, TlsInfo};
pub use connector::{build_connector, Connector};
pub use destination::{Destination, Io, Scheme};
pub use error::{ConnectError, ConnectErrorKind, TlsFailure};
pub use options::{ConnectOptions, Roots};
pub use resolve::{GaiResolver, Name, Resolver};

/// The rustls types that appear in this crate's API.
pub mod rustls {
    pub use rustls::crypto::CryptoProvider;
    pub use rustls::ClientConfig;
    pub use rustls_pki_types::CertificateDer;
}
