//! `pipeline()`: a duplex whose writes are the request body and whose
//! reads are the (handled) response body.

use std::fmt;
use std::io;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll, Wake, Waker};

use futures_util::future::BoxFuture;
use futures_util::task::AtomicWaker;
use futures_util::FutureExt;
use tokio::io::{AsyncRead, AsyncWrite, ReadBuf};
use tower::ServiceExt;
use tower_service::Service;

use crate::body::{BodyReader, BodySender};
use crate::error::Error;
use crate::options::Opaque;
use crate::{Body, Request, Response};

type PipelineHandler = Box<dyn FnOnce(Response) -> Result<Body, Error> + Send>;

/// undici's `pipeline()` duplex, from
/// [`DispatcherExt::pipeline`](crate::DispatcherExt::pipeline): tokio's
/// `AsyncWrite` into the request body and `AsyncRead` out of the body the
/// handler made of the response.
///
/// - Writes are chunks of the request body; `shutdown` ends it. A write
///   waits while the connection has not taken the previous chunk.
/// - The handler runs once, when the response head arrives; reads return
///   the body it answered (usually `response.into_body()`, or a transform
///   of it).
/// - No task is spawned: the request is driven by this value's own
///   `poll_read`, `poll_write`, `poll_flush` and `poll_shutdown`. The
///   request goes out on the first of them; once it is on a connection,
///   the connection's task pulls the body from the writes, so writing
///   never waits on reading. With an echoing server (which answers while
///   it is still receiving) read and write concurrently, e.g. with
///   `tokio::io::split` and `tokio::join!`, as node's `stream.pipeline`
///   does; writing everything before reading deadlocks once the socket
///   buffers are full, as it would in node.
/// - Errors (the request's, the handler's, the body's) are `io::Error`s
///   wrapping the [`Error`]: `err.get_ref()` and
///   `downcast_ref::<undici_dispatcher::Error>()` reach it.
/// - Dropping the pipeline aborts the request; a request body not yet
///   shut down fails instead of ending cleanly.
/// - Over HTTP/1.1, hyper sends no body with a `GET` or `HEAD` whose
///   length is unknown (undici sends it chunked): give such a head a
///   `content-length`, or use a method that carries a body (`POST`,
///   `PUT`...); otherwise what is written is not sent, and writes fail
///   with `BrokenPipe` once hyper has dropped the body.
///
/// ```
/// use tokio::io::{AsyncReadExt, AsyncWriteExt};
/// use undici_dispatcher::{Client, DispatcherExt};
///
/// # #[tokio::main(flavor = "current_thread")]
/// # async fn main() -> std::io::Result<()> {
/// # let server = undici_test_support::TestServer::http1(undici_test_support::handlers::echo).await;
/// let client = Client::new(server.url()).map_err(std::io::Error::other)?;
/// let head = http::Request::put("/echo").body(()).unwrap();
/// let pipeline = client.pipeline(head, |response| {
///     assert_eq!(response.status(), 200);
///     Ok(response.into_body())
/// });
/// let (mut reader, mut writer) = tokio::io::split(pipeline);
/// let send = async {
///     writer.write_all(b"undici").await?;
///     writer.shutdown().await
/// };
/// let mut echoed = String::new();
/// let (sent, read) = tokio::join!(send, reader.read_to_string(&mut echoed));
/// sent?;
/// read?;
/// assert_eq!(echoed, "undici");
/// # Ok(())
/// # }
/// ```
pub struct Pipeline {
    /// The request body's writing end; `None` once shut down.
    request: Option<BodySender>,
    response: State,
    /// Runs once, when the response head is in.
    handler: Option<PipelineHandler>,
    /// The tasks behind the read and the write side, both woken when the
    /// response future makes progress: either side may be the one that
    /// polled it last.
    sides: Arc<Sides>,
    /// `sides` as a waker, for polling the response future.
    waker: Waker,
}

enum State {
    Waiting(BoxFuture<'static, Result<Response, Error>>),
    /// Boxed: a body reader is large, and the other states are small.
    Reading(Box<BodyReader>),
    Failed(Error),
}

#[derive(Default)]
struct Sides {
    read: AtomicWaker,
    write: AtomicWaker,
}

impl Wake for Sides {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.read.wake();
        self.write.wake();
    }
}

#[derive(Clone, Copy)]
enum Side {
    Read,
    Write,
}

pub(super) fn pipeline<S, H>(service: S, head: http::Request<()>, handler: H) -> Pipeline
where
    S: Service<Request, Response = Response, Error = Error, Future: Send + 'static>
        + Send
        + 'static,
    H: FnOnce(Response) -> Result<Body, Error> + Send + 'static,
{
    let sides = Arc::new(Sides::default());
    let waker = Waker::from(sides.clone());
    if let Err(err) = super::refuse_connect(&head, "pipeline") {
        return Pipeline {
            request: None,
            response: State::Failed(err),
            handler: None,
            sides,
            waker,
        };
    }
    let (sender, body) = Body::channel();
    let (parts, ()) = head.into_parts();
    let request = Request::from_parts(parts, body);
    let sent_opaque = super::opaque_of(&request);
    let response = service.oneshot(request).map(move |result| {
        let mut response = result?;
        if let Some(opaque) = super::response_opaque(&response, sent_opaque) {
            response.extensions_mut().insert::<Opaque>(opaque);
        }
        Ok(response)
    });
    Pipeline {
        request: Some(sender),
        response: State::Waiting(Box::pin(response)),
        handler: Some(Box::new(handler)),
        sides,
        waker,
    }
}

fn io_error(err: &Error) -> io::Error {
    io::Error::other(err.clone())
}

impl Pipeline {
    /// Drives the request until the response head is in and handled; the
    /// calling side's waker is woken when it progresses.
    fn poll_response(&mut self, side: Side, cx: &mut Context<'_>) -> Poll<()> {
        let State::Waiting(response) = &mut self.response else {
            return Poll::Ready(());
        };
        match side {
            Side::Read => self.sides.read.register(cx.waker()),
            Side::Write => self.sides.write.register(cx.waker()),
        }
        let result = ready!(response
            .as_mut()
            .poll(&mut Context::from_waker(&self.waker)));
        let handled = match self.handler.take() {
            Some(handler) => result.and_then(handler),
            None => Err(Error::aborted()),
        };
        self.response = match handled {
            Ok(body) => State::Reading(Box::new(body.into_reader())),
            Err(err) => State::Failed(err),
        };
        // The other side may be waiting for this change without having
        // polled the response future itself.
        self.sides.wake_by_ref();
        Poll::Ready(())
    }

    fn failure(&self) -> Option<io::Error> {
        match &self.response {
            State::Failed(err) => Some(io_error(err)),
            _ => None,
        }
    }
}

impl AsyncRead for Pipeline {
    fn poll_read(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &mut ReadBuf<'_>,
    ) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        ready!(this.poll_response(Side::Read, cx));
        match &mut this.response {
            State::Reading(reader) => Pin::new(&mut **reader).poll_read(cx, buf),
            State::Failed(err) => Poll::Ready(Err(io_error(err))),
            State::Waiting(_) => Poll::Pending,
        }
    }
}

impl AsyncWrite for Pipeline {
    fn poll_write(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        let this = self.get_mut();
        // Keep the request moving: until it is on a connection nobody
        // takes the chunks written here.
        let _ = this.poll_response(Side::Write, cx);
        if let Some(err) = this.failure() {
            return Poll::Ready(Err(err));
        }
        let Some(sender) = this.request.as_mut() else {
            return Poll::Ready(Err(io::Error::new(
                io::ErrorKind::BrokenPipe,
                "write after the pipeline's request body was shut down",
            )));
        };
        match ready!(Pin::new(sender).poll_write(cx, buf)) {
            Ok(n) => Poll::Ready(Ok(n)),
            // The request ended under the body: say why, if we know.
            Err(err) => Poll::Ready(Err(this.failure().unwrap_or(err))),
        }
    }

    fn poll_flush(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let _ = this.poll_response(Side::Write, cx);
        match this.failure() {
            Some(err) => Poll::Ready(Err(err)),
            None => Poll::Ready(Ok(())),
        }
    }

    fn poll_shutdown(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        let this = self.get_mut();
        let _ = this.poll_response(Side::Write, cx);
        if let Some(mut sender) = this.request.take() {
            // Closing the channel ends the request body cleanly.
            let _ = Pin::new(&mut sender).poll_shutdown(cx);
        }
        match this.failure() {
            Some(err) => Poll::Ready(Err(err)),
            None => Poll::Ready(Ok(())),
        }
    }
}

impl Drop for Pipeline {
    fn drop(&mut self) {
        // Dropped mid-body: the server must not see a clean end of a
        // truncated request body.
        if let Some(sender) = self.request.take() {
            sender.abort(Error::aborted());
        }
    }
}

impl fmt::Debug for Pipeline {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let state = match &self.response {
            State::Waiting(_) => "waiting",
            State::Reading(_) => "reading",
            State::Failed(_) => "failed",
        };
        f.debug_struct("Pipeline")
            .field("response", &state)
            .field("writable", &self.request.is_some())
            .finish()
    }
}
