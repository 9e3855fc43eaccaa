//! `DispatcherExt`: undici's `request`, `stream`, `pipeline`, `connect`,
//! `upgrade` and `dispatch`, on any service of the contract's shape.
//!
//! Each API is a thin driver over the `tower::Service`: it clones the
//! service, waits for readiness, calls it with the request, and shapes
//! what comes back (a response, bytes written into a writer, a duplex, an
//! upgraded socket, handler callbacks). So every API works the same over a
//! [`Client`](crate::Client), a [`Pool`](crate::Pool), an
//! [`Agent`](crate::Agent) or any tower stack composed over them.
//!
//! Where undici takes an `AbortSignal`, Rust drops: dropping the future an
//! API returns (or the [`Pipeline`], or a response body) aborts the
//! request, and an HTTP/1.1 connection with a request in flight is closed
//! rather than reused.
//!
//! ```
//! use undici_dispatcher::{Body, Client, Dispatcher, DispatcherExt};
//!
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), undici_dispatcher::Error> {
//! # let server = undici_test_support::TestServer::http1(undici_test_support::handlers::hello).await;
//! let client = Client::new(server.url())?;
//!
//! // request(): the response, its body still to read.
//! let response = client.request(http::Request::get("/").body(Body::empty()).unwrap()).await?;
//! assert_eq!(response.into_body().text().await?, "hello world");
//!
//! // stream(): the body written into a writer the factory returns.
//! let mut text = Vec::new();
//! let writer = &mut text;
//! client
//!     .stream(http::Request::get("/").body(Body::empty()).unwrap(), move |head| {
//!         assert_eq!(head.status, 200);
//!         Ok::<_, undici_dispatcher::Error>(writer)
//!     })
//!     .await?;
//! assert_eq!(text, b"hello world");
//! client.close().await;
//! # Ok(())
//! # }
//! ```

mod connect;
mod dispatch;
mod pipeline;
mod stream;
mod upgrade;
mod upgraded;

use std::future::Future;

use http::Method;
use tokio::io::AsyncWrite;
use tower_service::Service;

pub use connect::ConnectData;
pub use dispatch::{Controller, Handler};
pub use pipeline::Pipeline;
pub use stream::{StreamData, StreamFactoryData};
pub use upgrade::UpgradeData;
pub use upgraded::UpgradedIo;

use crate::error::{BoxError, Error};
use crate::options::{Opaque, RequestOptions};
use crate::router::Routed;
use crate::{Body, Request, Response};

/// undici's request APIs, for every `Service<Request, Response = Response,
/// Error = Error>` that can be cloned: the dispatchers of this crate,
/// composed ones, and any tower stack over them.
///
/// Each call clones the service (clones share one pool), waits for it to
/// be ready, and calls it, so `&self` is enough, as with undici.
///
/// `request`, `stream` and `dispatch` start at the call, as undici's do:
/// a ready dispatcher is called at once, so the request takes its place
/// in line (a connection, or the queue) before the returned future is
/// first polled; its bytes go out as the future is polled. `connect` and
/// `upgrade` do the same; a [`Pipeline`] starts when first polled.
/// Dropping the future aborts the request, as undici's `AbortSignal`
/// does.
pub trait DispatcherExt:
    Service<Request, Response = Response, Error = Error, Future: Send + 'static>
    + Clone
    + Send
    + 'static
{
    /// undici's `request()`: sends the request and answers the response,
    /// whose body is still to be read (or dumped). A `CONNECT` request is
    /// refused (`UND_ERR_INVALID_ARG`): use [`connect`](Self::connect).
    ///
    /// As in undici, the request starts when this is called: a ready
    /// dispatcher is called at once, so the request takes its place in
    /// line (a connection, or the queue) before the future is first
    /// polled. One that is not ready is waited for when it is polled.
    fn request(&self, request: Request) -> impl Future<Output = Result<Response, Error>> + Send {
        start(self.clone(), request, "request")
    }

    /// undici's `stream()`: sends the request, hands the response head to
    /// `factory`, and writes the body into the writer it returns.
    ///
    /// Each chunk is written before the next one is read, so a slow writer
    /// holds the server back (nothing is buffered beyond the chunk being
    /// written). When the body has ended the writer is flushed and shut
    /// down, and the call answers the trailers and the request's opaque
    /// value ([`StreamData`]).
    ///
    /// Errors: the factory's error (an [`Error`] as it is, anything else
    /// as an `UND_ERR_ABORTED` that keeps it as its source), a body error,
    /// or a write error (`UND_ERR_ABORTED` with the `io::Error` as source).
    /// Each aborts the request: the rest of the body is not read and the
    /// connection is closed. A `CONNECT` request is refused
    /// (`UND_ERR_INVALID_ARG`). The request starts when this is called,
    /// as [`request`](Self::request)'s does.
    ///
    /// ```
    /// use undici_dispatcher::{Body, Client, DispatcherExt, RequestOptions};
    ///
    /// # #[tokio::main(flavor = "current_thread")]
    /// # async fn main() -> Result<(), undici_dispatcher::Error> {
    /// # let server = undici_test_support::TestServer::http1(undici_test_support::handlers::hello).await;
    /// let client = Client::new(server.url())?;
    /// let request = http::Request::get("/")
    ///     .extension(RequestOptions::new().opaque("greeting"))
    ///     .body(Body::empty())
    ///     .unwrap();
    /// let mut sink = Vec::new();
    /// let writer = &mut sink;
    /// let data = client
    ///     .stream(request, move |head| {
    ///         let label = head.opaque.as_ref().and_then(|o| o.downcast_ref::<&str>());
    ///         println!("{} for {label:?}", head.status);
    ///         Ok::<_, std::io::Error>(writer)
    ///     })
    ///     .await?;
    /// assert!(data.trailers.is_empty());
    /// assert_eq!(sink, b"hello world");
    /// # Ok(())
    /// # }
    /// ```
    fn stream<F, W, E>(
        &self,
        request: Request,
        factory: F,
    ) -> impl Future<Output = Result<StreamData, Error>> + Send
    where
        F: FnOnce(&StreamFactoryData) -> Result<W, E> + Send,
        W: AsyncWrite + Unpin + Send,
        E: Into<BoxError>,
    {
        stream::stream(self.clone(), request, factory)
    }

    /// undici's `pipeline()`: a duplex ([`Pipeline`], tokio's `AsyncRead`
    /// and `AsyncWrite`) whose writes are the request body and whose reads
    /// are the body `handler` makes of the response (usually the response
    /// body itself).
    ///
    /// `request` is the head: its body is what is written into the
    /// pipeline (`shutdown` ends it). Errors, the handler's included, come
    /// out of reads (and writes) as `io::Error`s wrapping the [`Error`].
    /// See [`Pipeline`] for how the request is driven.
    fn pipeline<H>(&self, request: http::Request<()>, handler: H) -> Pipeline
    where
        H: FnOnce(Response) -> Result<Body, Error> + Send + 'static,
    {
        pipeline::pipeline(self.clone(), request, handler)
    }

    /// undici's `connect()`: sends `request` as an HTTP `CONNECT` (the
    /// method is set here; the target is the request's authority, or the
    /// dispatcher's origin when it has none, e.g. `"/"`) and answers the
    /// tunnel: status, headers, and the connection as [`UpgradedIo`].
    ///
    /// A non-2xx answer is an `UND_ERR_SOCKET` error ("bad connect", as
    /// undici's `SocketError`) that carries the status and headers. Its
    /// body is not read, so its connection is closed; one without a body
    /// leaves the connection clean and the dispatcher may keep it, as HTTP
    /// allows (undici always closes it). Build a request for a `host:port`
    /// target with `http::Request::connect("example.com:443")`.
    fn connect(&self, request: Request) -> impl Future<Output = Result<ConnectData, Error>> + Send {
        connect::connect(self.clone(), request)
    }

    /// undici's `upgrade()`: sends `request` (undici's default method is
    /// GET, as `http::Request`'s) with `connection: upgrade` and
    /// `upgrade: <protocol>`, and answers the 101's headers and the
    /// connection as [`UpgradedIo`].
    ///
    /// `protocol` defaults to the request's
    /// [`RequestOptions::upgrade`] or else undici's `"Websocket"`. Any
    /// answer but 101 is an `UND_ERR_SOCKET` error ("bad upgrade", as
    /// undici's `SocketError`) carrying the status and headers.
    fn upgrade(
        &self,
        request: Request,
        protocol: Option<&str>,
    ) -> impl Future<Output = Result<UpgradeData, Error>> + Send {
        upgrade::upgrade(self.clone(), request, protocol)
    }

    /// undici's `dispatch()` with a v2 [`Handler`]: the request goes
    /// through this service, and the handler sees the exchange as
    /// callbacks (`on_request_start`, `on_response_start` for each 1xx and
    /// the final head, `on_response_data`, `on_response_end` or
    /// `on_response_error`, or `on_request_upgrade`), each with a
    /// [`Controller`] that can pause, resume and abort.
    ///
    /// As in undici, the exchange starts when this is called:
    /// `on_request_start` runs and the request takes its place in line
    /// before the future is first polled. The future drives the rest and
    /// resolves, handing the handler back, after the last callback. See
    /// [`Handler`] for how this maps to undici.
    fn dispatch<H>(&self, request: Request, handler: H) -> impl Future<Output = H> + Send
    where
        H: Handler + Send,
    {
        dispatch::dispatch(self.clone(), request, handler)
    }
}

impl<S> DispatcherExt for S where
    S: Service<Request, Response = Response, Error = Error, Future: Send + 'static>
        + Clone
        + Send
        + 'static
{
}

/// Sends `request` through `service`: at once when the service is ready
/// already, as undici's `request()`, `stream()`, `dispatch()` and
/// `upgrade()` start when they are called; otherwise once the returned
/// future has waited for it. A CONNECT fails at once (`api` names the
/// API it was sent through).
///
/// A dispatcher of this crate is nearly always ready (its readiness is a
/// permit from an atomic count), and calling it now hands the request
/// straight to `call`: a future that waits first keeps the request in its
/// state and moves it in and out of it (two copies of a few hundred
/// bytes, and every move of the future carries the request's room).
fn start<S>(service: S, request: Request, api: &str) -> Routed<S>
where
    S: Service<Request, Response = Response, Error = Error>,
{
    match refuse_connect(&request, api) {
        Ok(()) => Routed::new(service, request),
        Err(error) => Routed::failed(error),
    }
}

/// `UND_ERR_INVALID_ARG` for a CONNECT sent through an API that is not
/// `connect()`, as undici's `invalid method`.
fn refuse_connect(request: &http::Request<impl Sized>, api: &str) -> Result<(), Error> {
    if request.method() == Method::CONNECT {
        return Err(Error::invalid_argument(format!(
            "invalid method: CONNECT goes through connect(), not {api}()"
        )));
    }
    Ok(())
}

/// The request's opaque value, read before the request is sent.
fn opaque_of(request: &Request) -> Option<Opaque> {
    RequestOptions::of(request).and_then(|options| options.opaque_value().cloned())
}

/// The opaque value to hand back with `response`: the one the dispatcher
/// put in its extensions, else the request's (a service that is not one
/// of ours may not copy it).
fn response_opaque(response: &Response, sent: Option<Opaque>) -> Option<Opaque> {
    response.extensions().get::<Opaque>().cloned().or(sent)
}
