//! The dump interceptor: reads and discards response bodies, up to a
//! limit, so the connection can serve the next request (undici's
//! `interceptors.dump`).
//!
//! The caller gets the response head with an empty body once the body has
//! been read to its end, or once more than
//! [`max_size`](DumpLayer::max_size) bytes of it arrived (1 MiB by
//! default, or the request's
//! [`RequestOptions::dump_max_size`](undici_dispatcher::RequestOptions::dump_max_size)).
//!
//! - A `content-length` over `max_size` is an `UND_ERR_ABORTED` error,
//!   "Response size (N) larger than maxSize (M)", before anything is read;
//!   the body is dropped, which closes its HTTP/1 connection. A body that
//!   knows its exact length (a dispatcher's always does, and hyper holds
//!   it to its `content-length`) is judged by that length.
//! - A body without `content-length` (chunked, HTTP/2) that passes
//!   `max_size` ends the caller's response there, as undici does. The rest
//!   is read and discarded by a background task so that the connection
//!   can serve the next request; undici reads it whatever its size, this
//!   layer up to [`discard_limit`](DumpLayer::discard_limit) more bytes
//!   (1 MiB), then drops the body and so the connection. The dispatcher's
//!   `body_timeout` bounds how long a stalled rest is waited for. Outside
//!   a tokio runtime there is no task to do it: the body is dropped.
//!
//! ```
//! use tower::ServiceBuilder;
//! use undici_dispatcher::{Body, Client, Dispatcher, DispatcherExt, RequestOptions};
//! use undici_interceptors::dump::DumpLayer;
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), undici_dispatcher::Error> {
//! # let server = undici_test_support::TestServer::http1(undici_test_support::handlers::hello).await;
//! # let origin = server.url();
//! let client = Client::new(origin.as_str())?;
//!
//! // As a tower layer in a ServiceBuilder stack.
//! let service = ServiceBuilder::new()
//!     .layer(DumpLayer::new())
//!     .service(client.clone());
//! let response = service.request(http::Request::get("/").body(Body::empty()).unwrap()).await?;
//! assert!(response.status().is_success());
//! assert!(response.into_body().bytes().await?.is_empty()); // dumped
//!
//! // Composed onto the client: close, destroy and events still reach it.
//! let dispatcher = client.compose(DumpLayer::new().max_size(64 * 1024));
//! let request = http::Request::get("/")
//!     .extension(RequestOptions::new().dump_max_size(4)) // "hello world" is 11 bytes
//!     .body(Body::empty())
//!     .unwrap();
//! let err = dispatcher.request(request).await.unwrap_err();
//! assert_eq!(err.code(), "UND_ERR_ABORTED");
//! dispatcher.close().await;
//! # Ok(())
//! # }
//! ```
//!
//! # Differences from undici
//!
//! - undici's socket swallows the rest of a body past `maxSize` without
//!   bound; here at most [`discard_limit`](DumpLayer::discard_limit)
//!   bytes. A body that fits in `max_size` is read to its end before the
//!   caller gets the response, so its connection is back in the pool by
//!   then; one that passes it frees its connection only once the
//!   background discard ends, which a next request on a single-connection
//!   Client waits for.
//! - A response that has no body (`HEAD`, `204`, `304`) is never an error,
//!   whatever its `content-length` says.
//! - undici replaces the request's abort with a flag so that an abort
//!   waits for the dump; in Rust, dropping the response future aborts the
//!   request, as everywhere else.

mod future;
mod layer;

use std::task::{Context, Poll};

use tower_service::Service;
use undici_dispatcher::{Error, Request, RequestOptions, Response};

pub use future::ResponseFuture;
pub use layer::{DumpLayer, DEFAULT_DISCARD_LIMIT, DEFAULT_MAX_SIZE};

/// The dump service: discards each response body (up to a limit) and
/// answers the head with an empty body. Built by [`DumpLayer`].
#[derive(Clone, Debug)]
pub struct Dump<S> {
    inner: S,
    max_size: u64,
    discard_limit: u64,
}

impl<S> Dump<S> {
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

impl<S> Service<Request> for Dump<S>
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
        let max_size = RequestOptions::of(&request)
            .and_then(RequestOptions::dump_max_size_override)
            .unwrap_or(self.max_size);
        ResponseFuture::new(self.inner.call(request), max_size, self.discard_limit)
    }
}
