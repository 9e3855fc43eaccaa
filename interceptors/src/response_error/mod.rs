//! The responseError interceptor: a response with an error status (400 and
//! up) becomes an `UND_ERR_RESPONSE` error that carries the status, the
//! headers and the body (undici's `interceptors.responseError`).
//!
//! ```
//! use tower::ServiceBuilder;
//! use undici_dispatcher::{Body, Client, Dispatcher, DispatcherExt, ErrorBody, ErrorKind};
//! use undici_interceptors::response_error::ResponseErrorLayer;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), undici_dispatcher::Error> {
//! # let server = undici_test_support::TestServer::http1(|_req| async {
//! #     http::Response::builder()
//! #         .status(404)
//! #         .header("content-type", "text/plain")
//! #         .body(undici_test_support::body::full("no such page"))
//! #         .unwrap()
//! # })
//! # .await;
//! # let origin = server.url();
//! let client = Client::new(origin.as_str())?;
//!
//! // As a tower layer in a ServiceBuilder stack.
//! let service = ServiceBuilder::new()
//!     .layer(ResponseErrorLayer::new())
//!     .service(client.clone());
//! let err = service
//!     .request(http::Request::get("/missing").body(Body::empty()).unwrap())
//!     .await
//!     .unwrap_err();
//! assert_eq!(err.kind(), ErrorKind::Response);
//! assert_eq!(err.code(), "UND_ERR_RESPONSE");
//! assert_eq!(err.status(), Some(http::StatusCode::NOT_FOUND));
//! assert_eq!(err.body(), Some(&ErrorBody::Text("no such page".into())));
//!
//! // Composed onto the client: close, destroy and events still reach it.
//! let dispatcher = client.compose(ResponseErrorLayer::new().max_body_size(64 * 1024));
//! let err = dispatcher
//!     .request(http::Request::get("/missing").body(Body::empty()).unwrap())
//!     .await
//!     .unwrap_err();
//! assert_eq!(err.message(), "Response Error");
//! dispatcher.close().await;
//! # Ok(())
//! # }
//! ```
//!
//! # The error's body
//!
//! The body is read before the error is returned, so the connection can be
//! reused, and decoded by the response's `content-type` (its media type,
//! without parameters, compared case-insensitively):
//!
//! | content-type | [`Error::body`](undici_dispatcher::Error::body) |
//! |---|---|
//! | `application/json`, or any `+json` type (`application/problem+json`) | [`ErrorBody::Json`](undici_dispatcher::ErrorBody::Json), or [`ErrorBody::Text`](undici_dispatcher::ErrorBody::Text) when it does not parse |
//! | `text/plain` | [`ErrorBody::Text`](undici_dispatcher::ErrorBody::Text) (invalid UTF-8 becomes U+FFFD) |
//! | anything else, or none | [`ErrorBody::Bytes`](undici_dispatcher::ErrorBody::Bytes): the raw bytes |
//!
//! undici 8 leaves the body empty for other content types; the raw bytes
//! are kept here (within the same bound) because an HTML or XML error page
//! is often what explains the failure.
//!
//! At most [`max_body_size`](ResponseErrorLayer::max_body_size) bytes
//! (1 MiB by default) are read, so a hostile server cannot make us buffer
//! without end. A longer body is truncated there (a truncated JSON body
//! then fails to parse and comes back as text) and the rest is not read:
//! that connection is closed instead of reused.
//!
//! A failure while reading the body (the connection breaks, the body
//! timeout) is returned as that error rather than as `UND_ERR_RESPONSE`.
//!
//! # Cost
//!
//! A response under 400 is handed back untouched, without allocating.
//! Reading an error body runs in one boxed future, on the error path only.

mod future;
mod layer;

use std::task::{Context, Poll};

use tower_service::Service;
use undici_dispatcher::{Error, Request, Response};

pub use future::ResponseFuture;
pub use layer::{ResponseErrorLayer, DEFAULT_MAX_BODY_SIZE};

/// The responseError service: turns error statuses into `UND_ERR_RESPONSE`
/// errors. Built by [`ResponseErrorLayer`].
#[derive(Clone, Debug)]
pub struct ResponseError<S> {
    inner: S,
    max_body_size: u64,
}

impl<S> ResponseError<S> {
    /// The service underneath.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The service underneath, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// Unwraps the service underneath.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S> Service<Request> for ResponseError<S>
where
    S: Service<Request, Response = Response, Error = Error>,
{
    type Response = Response;
    type Error = Error;
    type Future = ResponseFuture<S::Future>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.inner.poll_ready(cx)
    }

    #[inline]
    fn call(&mut self, request: Request) -> Self::Future {
        ResponseFuture::new(self.inner.call(request), self.max_body_size)
    }
}
