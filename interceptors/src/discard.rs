//! Reading a body to its end without keeping it: the dump interceptor's
//! work, and what redirect and retry do with the bodies they step over so
//! their connections go back to the pool.

use std::pin::Pin;
use std::task::{ready, Context, Poll};

use http_body::Body as _;
use undici_dispatcher::{Body, Error};

/// How discarding a body ended.
pub(crate) enum Discarded {
    /// The body ended.
    Ended,
    /// Reading the body failed.
    Failed(Error),
    /// More than the limit arrived (the count is in `read`).
    OverLimit,
}

/// Reads and throws away frames of `body` until it ends, fails, or passes
/// `limit` bytes, counting them in `read`.
pub(crate) fn poll_discard(
    body: &mut Body,
    read: &mut u64,
    limit: u64,
    cx: &mut Context<'_>,
) -> Poll<Discarded> {
    loop {
        match ready!(Pin::new(&mut *body).poll_frame(cx)) {
            None => return Poll::Ready(Discarded::Ended),
            Some(Err(err)) => return Poll::Ready(Discarded::Failed(err)),
            Some(Ok(frame)) => {
                if let Some(data) = frame.data_ref() {
                    *read += data.len() as u64;
                    if *read > limit {
                        return Poll::Ready(Discarded::OverLimit);
                    }
                }
            }
        }
    }
}

/// Discards `body` as [`poll_discard`] does and then drops it, whatever
/// the outcome: a body over the limit or failing closes its connection.
pub(crate) fn poll_discard_and_drop(
    body: &mut Body,
    read: &mut u64,
    limit: u64,
    cx: &mut Context<'_>,
) -> Poll<()> {
    ready!(poll_discard(body, read, limit, cx));
    *body = Body::empty();
    Poll::Ready(())
}
