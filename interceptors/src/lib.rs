//! undici's interceptors as tower layers.
//!
//! Each interceptor is a module with a `XLayer` (its options, with
//! undici's defaults) and the `X<S>` service, behind its own cargo
//! feature. They work over any `Dispatcher` of `undici-dispatcher` and over
//! any `tower::Service<Request, Response = Response, Error = Error>`;
//! per-request overrides come from the request's `RequestOptions`.
//!
//! Order: in a `ServiceBuilder` the first layer is the outermost, the
//! first to see a request. undici's `compose([a, b, c])` calls `c` first,
//! so it reads `ServiceBuilder::new().layer(c).layer(b).layer(a)`.
//!
//! ```
//! use tower::ServiceBuilder;
//! use undici_dispatcher::{Body, Client, Dispatcher, DispatcherExt};
//! use undici_interceptors::{dump::DumpLayer, response_error::ResponseErrorLayer};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), undici_dispatcher::Error> {
//! # let server = undici_test_support::TestServer::http1(undici_test_support::handlers::hello).await;
//! // responseError turns a 4xx/5xx into an error; dump reads every body.
//! let stack = ServiceBuilder::new()
//!     .layer(ResponseErrorLayer::new())
//!     .layer(DumpLayer::new());
//! let client = Client::new(server.url())?.compose(stack);
//! let response = client.request(http::Request::get("/").body(Body::empty()).unwrap()).await?;
//! assert_eq!(response.status(), 200);
//! client.close().await;
//! # Ok(())
//! # }
//! ```
//!
//! Each layer's `call` and its future's `poll` are `#[inline]`: a stack of
//! them then runs as one function rather than a call per layer (five
//! layers with nothing to do: 0.2k instructions per request less).
#![deny(missing_docs, unreachable_pub, unsafe_code)]
#![warn(
    rust_2018_idioms,
    clippy::await_holding_lock,
    clippy::dbg_macro,
    clippy::todo
)]
#![cfg_attr(docsrs, feature(doc_cfg))]

#[cfg(feature = "decompress")]
#[cfg_attr(docsrs, doc(cfg(feature = "decompress")))]
pub mod decompress;
#[cfg(any(feature = "dump", feature = "redirect", feature = "retry"))]
mod discard;
#[cfg(feature = "dump")]
#[cfg_attr(docsrs, doc(cfg(feature = "dump")))]
pub mod dump;
#[cfg(feature = "redirect")]
#[cfg_attr(docsrs, doc(cfg(feature = "redirect")))]
pub mod redirect;
#[cfg(feature = "response-error")]
#[cfg_attr(docsrs, doc(cfg(feature = "response-error")))]
pub mod response_error;
#[cfg(feature = "retry")]
#[cfg_attr(docsrs, doc(cfg(feature = "retry")))]
pub mod retry;
