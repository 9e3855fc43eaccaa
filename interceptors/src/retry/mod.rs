//! The retry interceptor: undici's `interceptors.retry()`, `RetryHandler`
//! and `RetryAgent`.
//!
//! [`RetryLayer`] sends a request again when it fails with a retryable
//! status (500, 502, 503, 504, 429) or network error (`ECONNRESET`,
//! `UND_ERR_SOCKET`, ...), after an exponential backoff (500 ms doubling
//! up to 30 s) or what the server's `Retry-After` asks for, up to
//! `max_retries` (5) times, for idempotent methods. The options and their
//! defaults are undici's ([`RetryOptions`]); a request overrides them with
//! [`RequestOptions::retry`](undici_dispatcher::RequestOptions::retry). A
//! [`RetryPolicy`] decides, undici's [`DefaultRetryPolicy`] unless you
//! give your own.
//!
//! ```
//! use std::time::Duration;
//! use tower::ServiceBuilder;
//! use undici_dispatcher::{Body, Client, Dispatcher, DispatcherExt};
//! use undici_interceptors::retry::RetryLayer;
//! # use std::sync::atomic::{AtomicUsize, Ordering};
//! # use std::sync::Arc;
//! # use undici_test_support::{body, TestServer};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), undici_dispatcher::Error> {
//! # let calls = Arc::new(AtomicUsize::new(0));
//! # let server = TestServer::http1(move |_request| {
//! #     let call = calls.fetch_add(1, Ordering::SeqCst);
//! #     async move {
//! #         let status = if call % 3 == 2 { 200 } else { 503 };
//! #         http::Response::builder().status(status).body(body::full("hi")).unwrap()
//! #     }
//! # })
//! # .await;
//! // This server answers 503 twice, then 200.
//! let client = Client::new(server.url().as_str())?;
//! let retry = RetryLayer::new()
//!     .max_retries(3)
//!     .min_timeout(Duration::from_millis(10));
//!
//! // In a tower stack...
//! let service = ServiceBuilder::new()
//!     .layer(retry.clone())
//!     .service(client.clone());
//! let response = service.request(http::Request::get("/").body(Body::empty()).unwrap()).await?;
//! assert_eq!(response.status(), 200);
//! assert_eq!(response.into_body().text().await?, "hi");
//!
//! // ...or composed onto the dispatcher, which keeps close and destroy.
//! let client = client.compose(retry);
//! let response = client.request(http::Request::get("/").body(Body::empty()).unwrap()).await?;
//! assert_eq!(response.status(), 200);
//! # response.into_body().dump(1024).await?;
//! client.close().await;
//! # Ok(())
//! # }
//! ```
//!
//! [`RetryAgent`] is the same as a dispatcher of its own, under undici's
//! name: `RetryAgent::new(dispatcher, RetryLayer::new())`.
//!
//! # Statuses
//!
//! The body of a response that is retried is read and discarded (up to
//! [`dump_max_size`](RetryLayer::dump_max_size), 64 KiB) so that its
//! keep-alive connection serves the retry; a larger one is dropped.
//!
//! When the retries run out on a status, the caller gets that response,
//! body included, and the connection stays usable. undici instead fails
//! with `UND_ERR_REQ_RETRY`, losing the body and the socket (its open
//! issue 4222); [`throw_on_error(true)`](RetryLayer::throw_on_error) gives
//! undici's error (with the status, the headers and
//! [`Error::retry_count`](undici_dispatcher::Error::retry_count)) while
//! still saving the connection.
//!
//! # Bodies
//!
//! Only requests whose body can be sent again are retried: an empty or a
//! full body ([`Body::is_replayable`](undici_dispatcher::Body::is_replayable)).
//! A streamed body is sent once, and its failure goes to the caller.
//!
//! # Resuming downloads
//!
//! When a `200` (or `206`) response with a strong `ETag` breaks off while
//! its body is read (the server closes the connection: `UND_ERR_SOCKET`,
//! or `UND_ERR_RES_CONTENT_LENGTH_MISMATCH` from the Client, which the
//! policy treats alike), the layer asks the policy, waits, and requests
//! the rest with `Range: bytes=<received>-<end>` and `If-Match: <etag>`.
//! The answer must be a `206` whose `Content-Range` starts at the bytes
//! received, with the same ETag and a `Content-Length` equal to the
//! range's length (a chunked `206`, without one, is a mismatch, as in
//! undici); its bytes then continue the same body the caller is reading.
//! Otherwise the body fails with undici's `UND_ERR_REQ_RETRY` errors:
//! "server does not support the range header and the payload was
//! partially consumed", "Content-Range mismatch", "ETag mismatch",
//! "Content-Length mismatch".
//!
//! Without a strong ETag a download is not resumed (undici sends `Range`
//! without `If-Match`, and could splice two versions of a resource): the
//! body's error reaches the caller as it is.
//!
//! # Cost
//!
//! A request the policy will never retry (a `POST`, a streamed body) goes
//! straight through: no copy, no allocation. A retryable one keeps a copy
//! of its head (method, URI, headers, extensions) and of its body (a
//! reference count); its response body is wrapped, which allocates, only
//! when it can be resumed.
//!
//! # Differences from undici
//!
//! - Exhausted retries on a status hand back the response (see above).
//! - `Retry-After: 0` (or a past date) retries at once; `retry_after(false)`
//!   is honoured.
//! - Resuming needs a strong ETag.
//! - Optional [`jitter`](RetryLayer::jitter).
//! - Aborting is dropping: dropping the response future cancels the
//!   backoff and the attempt in flight.

mod agent;
mod body;
mod future;
mod layer;
mod policy;

use std::mem;
use std::sync::Arc;
use std::task::{Context, Poll};

use tower_service::Service;
use undici_dispatcher::{Error, Request, RequestOptions, Response};

pub use agent::RetryAgent;
pub use future::RetryFuture;
pub use layer::{RetryLayer, DEFAULT_DUMP_MAX_SIZE};
pub use policy::{Attempt, DefaultRetryPolicy, Outcome, RetryOptions, RetryPolicy};

use future::{Attempts, Template};

/// The retry service: `S` with [`RetryLayer`]'s behaviour. Built by the
/// layer.
#[derive(Clone, Debug)]
pub struct Retry<S, P = DefaultRetryPolicy> {
    inner: S,
    options: Arc<RetryOptions>,
    policy: P,
    throw_on_error: bool,
    dump_max_size: u64,
}

impl<S, P> Retry<S, P> {
    /// The inner service.
    pub fn get_ref(&self) -> &S {
        &self.inner
    }

    /// The inner service, mutably.
    pub fn get_mut(&mut self) -> &mut S {
        &mut self.inner
    }

    /// The inner service, unwrapped.
    pub fn into_inner(self) -> S {
        self.inner
    }
}

impl<S, P> Service<Request> for Retry<S, P>
where
    S: Service<Request, Response = Response, Error = Error> + Clone + Send + 'static,
    S::Future: Send + 'static,
    P: RetryPolicy,
{
    type Response = Response;
    type Error = Error;
    type Future = RetryFuture<S, P>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        self.inner.poll_ready(cx)
    }

    #[inline]
    fn call(&mut self, request: Request) -> RetryFuture<S, P> {
        let overrides = RequestOptions::of(&request).and_then(RequestOptions::retry_overrides);
        let options = match overrides {
            Some(overrides) => Arc::new(self.options.merged(overrides)),
            None => self.options.clone(),
        };
        let retryable =
            request.body().is_replayable() && self.policy.is_retryable(&request, &options);
        if !retryable && !self.throw_on_error {
            return RetryFuture::passthrough(self.inner.call(request));
        }
        // The ready service sends this attempt; a clone sends the next.
        let clone = self.inner.clone();
        let mut service = mem::replace(&mut self.inner, clone);
        let template = if retryable {
            Template::keep(&request)
        } else {
            None
        };
        let future = service.call(request);
        let attempts = Attempts::new(
            service,
            template,
            self.policy.clone(),
            options,
            self.dump_max_size,
            future,
        );
        RetryFuture::retrying(attempts, self.throw_on_error)
    }
}
