//! undici's Dispatcher contract for Rust, and the dispatchers that
//! implement it over hyper connections.
//!
//! - [`Body`], [`Request`] and [`Response`]: one body type both ways, with
//!   undici's body mixin (`text`, `json`, `bytes`, `dump`, trailers).
//! - [`Error`]: one error type with [`Error::kind`] and undici's
//!   [`Error::code`] strings.
//! - [`RequestOptions`]: undici's per-request options, in the request's
//!   extensions.
//! - [`Dispatcher`]: a `tower::Service` plus `close`, `destroy`, `events`
//!   and `compose`; [`DispatcherExt`] adds undici's request APIs.
//! - [`Client`]: one origin over one connection; [`Pool`] and
//!   [`RoundRobinPool`]: one origin over many; [`BalancedPool`]: one
//!   service over several upstreams; [`Agent`]: a dispatcher per origin.
//!
//! # What runs underneath
//!
//! Every connection is a hyper 1.x `client::conn` connection (`http1` or
//! `http2`, chosen by ALPN or by [`ClientOptions::h2c`]), driven by one
//! task of its own. The pool around them is this crate's own, not
//! hyper-util's: its legacy client has no per-origin cap and none of
//! undici's semantics, and its `client::pool` services (`cache`,
//! `singleton`, `negotiate`, `map`) carry no FIFO queue, stats, events,
//! keep-alive hints or connection lifetimes. hyper-util's `TokioIo` and
//! `TokioTimer` are used as they are; HTTP/2 spawns its per-request
//! futures boxed, as hyper-util's legacy client does. Two things hyper
//! does not tell are read off the wire: an HTTP/2 server's
//! `SETTINGS_MAX_CONCURRENT_STREAMS` and its GOAWAY (the pool sizes its
//! streams by the first and retires the connection at the second).
//!
//! ```
//! use undici_dispatcher::{Body, Client, Dispatcher, DispatcherExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), undici_dispatcher::Error> {
//! # let server = undici_test_support::TestServer::http1(undici_test_support::handlers::hello).await;
//! # let origin = server.url();
//! let client = Client::new(origin.as_str())?;
//! let request = http::Request::get("/").body(Body::empty()).unwrap();
//! let response = client.request(request).await?;
//! println!("{} {}", response.status(), response.into_body().text().await?);
//! client.close().await;
//! # Ok(())
//! # }
//! ```
//!
//! # A runtime is needed
//!
//! Dispatchers open connections on the current tokio runtime, with its
//! timers: build the runtime with `enable_all()` (as `#[tokio::main]`
//! does).
#![deny(missing_docs, unreachable_pub, unsafe_code)]
#![warn(
    rust_2018_idioms,
    clippy::await_holding_lock,
    clippy::dbg_macro,
    clippy::todo
)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod agent;
mod api;
mod balanced;
mod body;
mod client;
mod connection;
mod dispatcher;
mod error;
mod events;
mod options;
mod origin;
mod pool;
mod router;
mod sync;

pub use agent::{Agent, AgentBuilder, AgentFuture};
pub use api::{
    ConnectData, Controller, DispatcherExt, Handler, Pipeline, StreamData, StreamFactoryData,
    UpgradeData, UpgradedIo,
};
pub use balanced::{Balance, BalancedFuture, BalancedPool, BalancedPoolBuilder};
pub use body::{try_clone_request, Body, BodyReader, BodySender, DEFAULT_DUMP_LIMIT};
pub use client::{Client, ClientBuilder, ClientOptions, ClientStats, ResponseFuture};
pub use dispatcher::{BoxDispatcher, Composed, Dispatcher};
pub use error::{BoxError, Error, ErrorBody, ErrorKind, SocketInfo};
pub use events::{Event, EventKind, Events, Target};
pub use options::{
    is_idempotent_method, Informational, OnInfo, Opaque, RequestOptions, RetryOverrides,
};
pub use origin::{IntoOrigin, Origin};
pub use pool::{
    FactoryPool, FactoryPoolBuilder, FactoryPoolFuture, Pool, PoolBuilder, PoolStats,
    RoundRobinPool,
};

/// A request: `http::Request` with undici's [`Body`]. Per-request options
/// go in its extensions as [`RequestOptions`].
pub type Request = http::Request<Body>;

/// A response: `http::Response` with undici's [`Body`].
pub type Response = http::Response<Body>;

/// The connector crate, re-exported: connect options, connections and
/// custom connectors.
pub use undici_connectors as connectors;
