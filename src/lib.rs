//! undici for Rust: the model of Node's undici HTTP client, as a tower
//! ecosystem.
//!
//! Every undici concept is a tower `Service` or `Layer`:
//!
//! | undici | here |
//! |---|---|
//! | `Client`, `Pool`, `Agent` | [`Client`] and friends, `tower::Service`s and [`Dispatcher`]s |
//! | `buildConnector` | [`connectors::build_connector`], a `Service<Destination>` |
//! | interceptors (`retry`, `redirect`, ...) | [`interceptors`], tower `Layer`s |
//! | `dispatcher.compose(...)` | [`Dispatcher::compose`], or `tower::ServiceBuilder` |
//! | `request`, `stream`, `pipeline`, `connect`, `upgrade`, `dispatch` | [`DispatcherExt`] |
//!
//! ```
//! use undici::prelude::*;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), undici::Error> {
//! # let server = undici_test_support::TestServer::http1(undici_test_support::handlers::hello).await;
//! # let origin = server.url();
//! let client = Client::new(origin.as_str())?;
//! let response = client
//!     .request(http::Request::get("/").body(Body::empty()).unwrap())
//!     .await?;
//! println!("{}", response.into_body().text().await?);
//! client.close().await;
//! # Ok(())
//! # }
//! ```
#![deny(missing_docs, unreachable_pub, unsafe_code)]
#![warn(
    rust_2018_idioms,
    clippy::await_holding_lock,
    clippy::dbg_macro,
    clippy::todo
)]
#![cfg_attr(docsrs, feature(doc_cfg))]

mod global;

pub use global::{
    connect, dispatch, global_dispatcher, pipeline, request, set_global_dispatcher, stream,
    upgrade, IntoRequest,
};
pub use undici_dispatcher::*;

/// undici's interceptors as tower layers, each behind its cargo feature.
pub mod interceptors {
    pub use undici_interceptors::*;
}

/// What most programs import: the dispatchers, the traits, the body.
pub mod prelude {
    pub use undici_dispatcher::{
        Body, Client, Dispatcher, DispatcherExt, Error, Request, RequestOptions, Response,
    };
}
