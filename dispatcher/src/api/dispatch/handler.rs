//! `Handler`: undici's v2 dispatch handler, as a trait.

use bytes::Bytes;
use http::{HeaderMap, StatusCode};

use crate::error::Error;
use crate::Request;

use super::super::UpgradedIo;
use super::Controller;

/// undici's dispatch handler (the v2 interface of undici 7 and 8), for
/// [`DispatcherExt::dispatch`](crate::DispatcherExt::dispatch).
///
/// Every method has a default that does nothing, so a handler implements
/// only what it needs.
///
/// Order of the callbacks for one request:
///
/// 1. [`on_request_start`](Self::on_request_start), before the request is
///    handed to the dispatcher;
/// 2. [`on_response_start`](Self::on_response_start) for each 1xx
///    informational response (over HTTP/1.1: hyper's HTTP/2 client does
///    not hand 1xx heads on), then once for the final head;
/// 3. [`on_response_data`](Self::on_response_data) per body chunk;
/// 4. [`on_response_end`](Self::on_response_end) with the trailers, or
///    [`on_response_error`](Self::on_response_error) at any point after
///    step 1 (once, and nothing after it).
///
/// An upgrade (a 101 to a request with
/// [`RequestOptions::upgrade`](crate::RequestOptions::upgrade), a 2xx to
/// a `CONNECT`) ends with
/// [`on_request_upgrade`](Self::on_request_upgrade) instead of steps 2-4.
///
/// # How this maps to undici
///
/// - undici calls the handler from the socket's event loop; here the
///   future [`dispatch`](crate::DispatcherExt::dispatch) returns drives
///   the request and makes the calls, on the task that polls it, and
///   resolves (handing the handler back) after the last one.
/// - Dropping that future aborts the request without any callback, as
///   Rust's drop does everywhere else in this crate; aborting through the
///   [`Controller`] delivers `on_response_error`.
/// - Backpressure is [`Controller::pause`] and [`Controller::resume`], as
///   in undici 8 (returning `false` from `onData` is gone there too).
/// - `dispatch` sits on top of the `tower::Service`, so a retry or
///   redirect layer under it is invisible: `on_request_start` runs once.
///   undici's `onResponseStarted`, `onBodySent` and `onRequestSent` have no
///   counterpart; `rawHeaders`/`rawTrailers` are the `HeaderMap`s.
/// - Callbacks are synchronous and must not block; keep a clone of the
///   controller to act later from elsewhere.
///
/// ```
/// use bytes::Bytes;
/// use http::{HeaderMap, StatusCode};
/// use undici_dispatcher::{Body, Client, Controller, DispatcherExt, Error, Handler};
///
/// #[derive(Default)]
/// struct Collect {
///     status: Option<StatusCode>,
///     body: Vec<u8>,
///     done: bool,
/// }
///
/// impl Handler for Collect {
///     fn on_response_start(&mut self, _: &Controller, status: StatusCode, _: &HeaderMap, _: &str) {
///         self.status = Some(status);
///     }
///     fn on_response_data(&mut self, _: &Controller, chunk: Bytes) {
///         self.body.extend_from_slice(&chunk);
///     }
///     fn on_response_end(&mut self, _: &Controller, _trailers: &HeaderMap) {
///         self.done = true;
///     }
///     fn on_response_error(&mut self, _: &Controller, error: Error) {
///         eprintln!("failed: {error}");
///     }
/// }
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> Result<(), Error> {
/// # let server = undici_test_support::TestServer::http1(undici_test_support::handlers::hello).await;
/// let client = Client::new(server.url())?;
/// let request = http::Request::get("/").body(Body::empty()).unwrap();
/// let handler = client.dispatch(request, Collect::default()).await;
/// assert_eq!(handler.status, Some(StatusCode::OK));
/// assert_eq!(handler.body, b"hello world");
/// assert!(handler.done);
/// # Ok(())
/// # }
/// ```
#[allow(unused_variables)]
pub trait Handler {
    /// The request is about to be sent (undici's `onRequestStart`; its
    /// `context` is the request itself here). Aborting through the
    /// controller now means the request is never sent.
    fn on_request_start(&mut self, controller: &Controller, request: &Request) {}

    /// The server switched protocols (a 101, or a 2xx to a `CONNECT`):
    /// the connection is `socket` now (undici's `onRequestUpgrade`). The
    /// default drops it, closing it.
    fn on_request_upgrade(
        &mut self,
        controller: &Controller,
        status: StatusCode,
        headers: &HeaderMap,
        socket: UpgradedIo,
    ) {
    }

    /// A response head arrived: each 1xx informational one, then the final
    /// one (undici's `onResponseStart`). `status_text` is the reason
    /// phrase the server sent, or the status's canonical one.
    fn on_response_start(
        &mut self,
        controller: &Controller,
        status: StatusCode,
        headers: &HeaderMap,
        status_text: &str,
    ) {
    }

    /// A chunk of the response body (undici's `onResponseData`).
    fn on_response_data(&mut self, controller: &Controller, chunk: Bytes) {}

    /// The body ended; `trailers` is empty when the server sent none
    /// (undici's `onResponseEnd`).
    fn on_response_end(&mut self, controller: &Controller, trailers: &HeaderMap) {}

    /// The request failed or was aborted (undici's `onResponseError`):
    /// the abort reason, the dispatcher's error, or the body's.
    fn on_response_error(&mut self, controller: &Controller, error: Error) {}
}

impl<H: Handler + ?Sized> Handler for &mut H {
    fn on_request_start(&mut self, controller: &Controller, request: &Request) {
        (**self).on_request_start(controller, request)
    }

    fn on_request_upgrade(
        &mut self,
        controller: &Controller,
        status: StatusCode,
        headers: &HeaderMap,
        socket: UpgradedIo,
    ) {
        (**self).on_request_upgrade(controller, status, headers, socket)
    }

    fn on_response_start(
        &mut self,
        controller: &Controller,
        status: StatusCode,
        headers: &HeaderMap,
        status_text: &str,
    ) {
        (**self).on_response_start(controller, status, headers, status_text)
    }

    fn on_response_data(&mut self, controller: &Controller, chunk: Bytes) {
        (**self).on_response_data(controller, chunk)
    }

    fn on_response_end(&mut self, controller: &Controller, trailers: &HeaderMap) {
        (**self).on_response_end(controller, trailers)
    }

    fn on_response_error(&mut self, controller: &Controller, error: Error) {
        (**self).on_response_error(controller, error)
    }
}

impl<H: Handler + ?Sized> Handler for Box<H> {
    fn on_request_start(&mut self, controller: &Controller, request: &Request) {
        (**self).on_request_start(controller, request)
    }

    fn on_request_upgrade(
        &mut self,
        controller: &Controller,
        status: StatusCode,
        headers: &HeaderMap,
        socket: UpgradedIo,
    ) {
        (**self).on_request_upgrade(controller, status, headers, socket)
    }

    fn on_response_start(
        &mut self,
        controller: &Controller,
        status: StatusCode,
        headers: &HeaderMap,
        status_text: &str,
    ) {
        (**self).on_response_start(controller, status, headers, status_text)
    }

    fn on_response_data(&mut self, controller: &Controller, chunk: Bytes) {
        (**self).on_response_data(controller, chunk)
    }

    fn on_response_end(&mut self, controller: &Controller, trailers: &HeaderMap) {
        (**self).on_response_end(controller, trailers)
    }

    fn on_response_error(&mut self, controller: &Controller, error: Error) {
        (**self).on_response_error(controller, error)
    }
}
