//! `Handle`: the service half shared by Client and Pool, readiness (the
//! gate) and the call.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::task::{ready, Context, Poll};

use crate::connection::{send, Call, Permit, Shared, Wait};
use crate::error::Error;
use crate::{Request, Response};

/// One handle on a pool: clones share the pool, each waits for its own
/// readiness permit.
pub(crate) struct Handle {
    pub(crate) shared: Arc<Shared>,
    permit: Option<Permit>,
    /// Made the first time this handle has to wait for a permit.
    waiting: Option<Wait>,
    /// Whether this handle is counted among the pool's waiting requests.
    counted: bool,
}

impl Handle {
    pub(crate) fn new(shared: Arc<Shared>) -> Self {
        Handle {
            shared,
            permit: None,
            waiting: None,
            counted: false,
        }
    }

    /// Counts this handle among the requests waiting for the pool (undici's
    /// `pending`) while it waits at the gate, or stops counting it.
    fn count_waiting(&mut self, waiting: bool) {
        if self.counted != waiting {
            self.counted = waiting;
            self.shared.count_gate_waiter(waiting);
        }
    }

    /// Ready when a request may be sent now. A handle already waiting
    /// when `close` came keeps waiting and is let through: undici's
    /// `close` lets queued requests finish. Only `destroy` ends the wait.
    pub(crate) fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Error>> {
        if let Some(err) = self.shared.destroyed_error() {
            return Poll::Ready(Err(err));
        }
        if self.permit.is_some() {
            return Poll::Ready(Ok(()));
        }
        if !self.counted && self.shared.is_closed() {
            return Poll::Ready(Err(Error::closed()));
        }
        let Some(gate) = &self.shared.gate else {
            return Poll::Ready(Ok(()));
        };
        if let Some(permit) = gate.try_acquire() {
            self.permit = Some(permit);
            return Poll::Ready(Ok(()));
        }
        let gate = gate.clone();
        self.count_waiting(true);
        let waiting = self.waiting.get_or_insert_with(|| Wait::new(gate));
        match ready!(waiting.poll_acquire(cx)) {
            // Still counted until `call`, so that `close` cannot finish
            // between the permit and the request.
            Some(permit) => {
                self.permit = Some(permit);
                Poll::Ready(Ok(()))
            }
            None => {
                self.count_waiting(false);
                Poll::Ready(Err(self
                    .shared
                    .destroyed_error()
                    .unwrap_or_else(Error::closed)))
            }
        }
    }

    /// Starts the request now: it takes a connection or its place in the
    /// queue before this returns, so a `close` that follows lets it
    /// finish.
    pub(crate) fn call(&mut self, request: Request) -> ResponseFuture {
        let permit = self.permit.take();
        let inner = send(self.shared.clone(), request, permit).map_err(Some);
        self.count_waiting(false);
        ResponseFuture { inner }
    }
}

impl Drop for Handle {
    fn drop(&mut self) {
        self.count_waiting(false);
    }
}

impl Clone for Handle {
    fn clone(&self) -> Self {
        Handle::new(self.shared.clone())
    }
}

/// The future of a request to a Client or Pool: the response head, with
/// the body still to read.
///
/// Dropping it aborts the request: an HTTP/1 connection with the request
/// in flight is closed, an HTTP/2 stream is reset.
pub struct ResponseFuture {
    /// The request on its way, or why it could not start.
    inner: Result<Box<Call>, Option<Error>>,
}

impl Future for ResponseFuture {
    type Output = Result<Response, Error>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        match &mut self.inner {
            Ok(call) => Pin::new(&mut **call).poll(cx),
            Err(refused) => Poll::Ready(Err(refused
                .take()
                .expect("ResponseFuture polled after it answered"))),
        }
    }
}

impl fmt::Debug for ResponseFuture {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ResponseFuture").finish_non_exhaustive()
    }
}
