//! The dump interceptor's response future: waits for the head, then reads
//! the body to its end.

use std::future::Future;
use std::pin::Pin;
use std::task::{ready, Context, Poll};

use crate::discard::{poll_discard, Discarded};
use http::header::CONTENT_LENGTH;
use http::HeaderMap;
use http_body::Body as _;
use pin_project_lite::pin_project;
use undici_dispatcher::{Body, Error, ErrorKind, Response};

pin_project! {
    /// The response future of [`Dump`](super::Dump): resolves to the
    /// response head with an empty body once the body has been discarded.
    pub struct ResponseFuture<F> {
        #[pin]
        state: State<F>,
        max_size: u64,
        discard_limit: u64,
    }
}

pin_project! {
    #[project = StateProj]
    enum State<F> {
        Waiting { #[pin] inner: F },
        // The response keeps its head; its body is taken out to drain.
        Draining { response: Response, body: Body, read: u64 },
        Done,
    }
}

impl<F> ResponseFuture<F> {
    pub(super) fn new(inner: F, max_size: u64, discard_limit: u64) -> Self {
        ResponseFuture {
            state: State::Waiting { inner },
            max_size,
            discard_limit,
        }
    }
}

impl<F> Future for ResponseFuture<F>
where
    F: Future<Output = Result<Response, Error>>,
{
    type Output = Result<Response, Error>;

    #[inline]
    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut this = self.project();
        let max_size = *this.max_size;
        let discard_limit = *this.discard_limit;
        match this.state.as_mut().project() {
            StateProj::Waiting { inner } => {
                let mut response = match ready!(inner.poll(cx)) {
                    Ok(response) => response,
                    Err(err) => {
                        this.state.set(State::Done);
                        return Poll::Ready(Err(err));
                    }
                };
                let mut body = std::mem::take(response.body_mut());
                if body.is_end_stream() {
                    this.state.set(State::Done);
                    return Poll::Ready(Ok(response));
                }
                let declared = declared_size(response.headers(), &body);
                if declared > max_size {
                    // Dropping the body closes the connection rather
                    // than reading what we already know is too much.
                    this.state.set(State::Done);
                    return Poll::Ready(Err(too_large(declared, max_size)));
                }
                // A small body has usually arrived with its head: drained
                // now, the response goes back without being stored.
                let mut read = 0;
                if let Poll::Ready(discarded) = poll_discard(&mut body, &mut read, max_size, cx) {
                    this.state.set(State::Done);
                    return Poll::Ready(finish(response, body, discarded, discard_limit));
                }
                this.state.set(State::Draining {
                    response,
                    body,
                    read,
                });
                Poll::Pending
            }
            StateProj::Draining {
                response,
                body,
                read,
            } => {
                let discarded = ready!(poll_discard(body, read, max_size, cx));
                let (response, body) = (std::mem::take(response), std::mem::take(body));
                this.state.set(State::Done);
                Poll::Ready(finish(response, body, discarded, discard_limit))
            }
            StateProj::Done => panic!("dump ResponseFuture polled after completion"),
        }
    }
}

/// The response (its body already taken out) once its body was drained.
fn finish(
    response: Response,
    body: Body,
    discarded: Discarded,
    discard_limit: u64,
) -> Result<Response, Error> {
    match discarded {
        Discarded::Ended => Ok(response),
        Discarded::Failed(err) => Err(err),
        // undici ends the response at maxSize and lets the socket
        // swallow the rest.
        Discarded::OverLimit => {
            discard_in_background(body, discard_limit);
            Ok(response)
        }
    }
}

/// Reads and throws away up to `limit` more bytes of `body` on a task of
/// its own, so that its connection goes back to the pool when it ends.
/// Past the limit, on an error, or without a runtime to run the task, the
/// body is dropped, which closes its connection.
fn discard_in_background(mut body: Body, limit: u64) {
    if limit == 0 {
        return;
    }
    let Ok(runtime) = tokio::runtime::Handle::try_current() else {
        return;
    };
    runtime.spawn(async move {
        let mut read = 0;
        // However it ends, dropping the body then does the right thing.
        let _ = std::future::poll_fn(|cx| poll_discard(&mut body, &mut read, limit, cx)).await;
    });
}

/// What the response says its body weighs: its `content-length`, or what
/// the body itself knows.
fn declared_size(headers: &HeaderMap, body: &Body) -> u64 {
    let hint = body.size_hint();
    if let Some(exact) = hint.exact() {
        // A dispatcher's body knows its content-length (hyper holds the
        // body to it): the header need not be looked up and parsed again.
        return exact;
    }
    let content_length = headers
        .get(CONTENT_LENGTH)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| value.trim().parse::<u64>().ok())
        .unwrap_or(0);
    content_length.max(hint.lower())
}

/// undici's `RequestAbortedError` for a body over `maxSize`.
fn too_large(size: u64, max_size: u64) -> Error {
    Error::new(
        ErrorKind::Aborted,
        format!("Response size ({size}) larger than maxSize ({max_size})"),
    )
}
