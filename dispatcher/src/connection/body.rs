//! The body of a response as it comes off a connection: the body timeout,
//! `max_response_size`, and giving the connection back at the end.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};
use std::time::Duration;

use bytes::Bytes;
use http_body::{Body as _, Frame, SizeHint};
use hyper::body::Incoming;
use tokio::time::{Instant, Sleep};

use crate::error::{Error, ErrorKind};

use super::errors::{self, Phase};
use super::gate::Permit;
use super::lease::Lease;
use super::pool::Outcome;

/// A response body read from a pooled connection.
///
/// The connection goes back to the pool when the body ends; a body
/// dropped early or failing takes its connection down with it (hyper
/// closes an HTTP/1 connection whose body was not read to the end).
pub(crate) struct ResponseBody {
    incoming: Incoming,
    lease: Option<Lease>,
    permit: Option<Permit>,
    /// What to tell the pool once the body ends cleanly.
    outcome: Outcome,
    idle_timeout: Option<Duration>,
    /// Armed the first time the body has to wait, so a body that arrives
    /// with its head costs no timer.
    timer: Option<Pin<Box<Sleep>>>,
    /// When the current wait for data began: the first `Pending` after a
    /// frame. Time the reader spends away (paused, or writing the last
    /// frame somewhere slow) is not the server's silence, so it does not
    /// count, as undici refreshes its body timer on resume.
    waiting_since: Option<Instant>,
    max_size: Option<u64>,
    received: u64,
    sized: bool,
    done: bool,
}

impl ResponseBody {
    pub(crate) fn new(
        incoming: Incoming,
        lease: Lease,
        permit: Option<Permit>,
        outcome: Outcome,
        idle_timeout: Option<Duration>,
        max_size: Option<u64>,
        sized: bool,
    ) -> Self {
        ResponseBody {
            incoming,
            lease: Some(lease),
            permit,
            outcome,
            idle_timeout,
            timer: None,
            waiting_since: None,
            max_size,
            received: 0,
            sized,
            done: false,
        }
    }

    pub(crate) fn is_end_stream(&self) -> bool {
        self.done || self.incoming.is_end_stream()
    }

    pub(crate) fn size_hint(&self) -> SizeHint {
        if self.done {
            return SizeHint::with_exact(0);
        }
        self.incoming.size_hint()
    }

    /// The body ended cleanly: the connection goes back to the pool.
    fn finish(&mut self) {
        self.done = true;
        self.timer = None;
        if let Some(mut lease) = self.lease.take() {
            lease.set_outcome(self.outcome);
        }
        self.permit = None;
    }

    /// The body failed: its connection is not reused.
    fn fail(&mut self, error: Error) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        self.done = true;
        self.timer = None;
        let destroyed = self
            .lease
            .as_ref()
            .and_then(|lease| lease.shared().destroyed_error());
        // The failed lease drops the connection, and its disconnect event
        // says why.
        if let Some(mut lease) = self.lease.take() {
            lease.fail(&error);
        }
        self.permit = None;
        Poll::Ready(Some(Err(destroyed.unwrap_or(error))))
    }

    fn socket(&self) -> crate::error::SocketInfo {
        self.lease.as_ref().map(Lease::socket).unwrap_or_default()
    }

    /// Polls the idle timer; `true` when the body has been silent too long.
    fn poll_timed_out(&mut self, cx: &mut Context<'_>) -> bool {
        let Some(timeout) = self.idle_timeout else {
            return false;
        };
        let since = *self.waiting_since.get_or_insert_with(Instant::now);
        let Some(deadline) = since.checked_add(timeout) else {
            return false;
        };
        let timer = self
            .timer
            .get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if timer.deadline() != deadline {
            timer.as_mut().reset(deadline);
        }
        timer.as_mut().poll(cx).is_ready()
    }

    pub(crate) fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, Error>>> {
        let this = &mut *self;
        if this.done {
            return Poll::Ready(None);
        }
        match Pin::new(&mut this.incoming).poll_frame(cx) {
            Poll::Ready(Some(Ok(frame))) => {
                if let Some(data) = frame.data_ref() {
                    this.received += data.len() as u64;
                    if this.max_size.is_some_and(|max| this.received > max) {
                        return this.fail(exceeded_max_size(this.max_size));
                    }
                }
                this.waiting_since = None;
                if this.incoming.is_end_stream() {
                    this.finish();
                }
                Poll::Ready(Some(Ok(frame)))
            }
            Poll::Ready(None) => {
                this.finish();
                Poll::Ready(None)
            }
            Poll::Ready(Some(Err(err))) => {
                let phase = Phase::Body { sized: this.sized };
                let socket = this.socket();
                this.fail(errors::from_hyper(err, phase, socket))
            }
            Poll::Pending => {
                if this.poll_timed_out(cx) {
                    return this.fail(Error::new(ErrorKind::BodyTimeout, "Body Timeout Error"));
                }
                Poll::Pending
            }
        }
    }
}

/// `UND_ERR_RES_EXCEEDED_MAX_SIZE`.
pub(crate) fn exceeded_max_size(max: Option<u64>) -> Error {
    Error::new(
        ErrorKind::ResponseExceededMaxSize,
        format!(
            "Response content exceeded max size of {} bytes",
            max.unwrap_or_default()
        ),
    )
}

impl Drop for ResponseBody {
    fn drop(&mut self) {
        // Not read to the end: the lease keeps its Discard outcome, which
        // closes an HTTP/1 connection and resets an HTTP/2 stream.
        let _ = self.lease.take();
    }
}
