//! `Lease`: one request's hold on a connection, given back on drop.

use std::sync::Arc;
use std::task::{Context, Poll};

use hyper::client::conn::{http1, http2};
use tokio::time::Instant;

use crate::error::{Error, SocketInfo};
use crate::Body;

use super::head_deadline::HeadDeadline;
use super::pool::{Outcome, Shared};
use super::stream_deadlines::StreamDeadlines;

/// The sending half of a hyper connection, with the deadlines its task
/// keeps for the heads awaited: of the request in flight (HTTP/1), of
/// the streams with a long timeout (HTTP/2).
pub(crate) enum Sender {
    H1(http1::SendRequest<Body>, Arc<HeadDeadline>),
    H2(http2::SendRequest<Body>, Arc<StreamDeadlines>),
}

impl Sender {
    pub(crate) fn is_closed(&self) -> bool {
        match self {
            Sender::H1(tx, _) => tx.is_closed(),
            Sender::H2(tx, _) => tx.is_closed(),
        }
    }

    pub(crate) fn is_h2(&self) -> bool {
        matches!(self, Sender::H2(..))
    }

    /// Another handle on an HTTP/2 connection (HTTP/1 has one user at a
    /// time, so it has none).
    pub(crate) fn clone_h2(&self) -> Option<Sender> {
        match self {
            Sender::H1(..) => None,
            Sender::H2(tx, deadlines) => Some(Sender::H2(tx.clone(), deadlines.clone())),
        }
    }

    pub(crate) fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<hyper::Result<()>> {
        match self {
            Sender::H1(tx, _) => tx.poll_ready(cx),
            Sender::H2(tx, _) => tx.poll_ready(cx),
        }
    }
}

/// A request's hold on one connection (or one HTTP/2 stream of it). The
/// connection goes back to the pool when the lease is dropped, with what
/// [`Lease::set_outcome`] last said about it.
pub(crate) struct Lease {
    shared: Arc<Shared>,
    key: usize,
    id: u64,
    sender: Option<Sender>,
    reused: bool,
    /// When the pool handed the connection over (the clock read that
    /// checked it had not expired): the start of the request's headers
    /// timeout, which then needs no clock read of its own.
    taken: Instant,
    socket: Arc<SocketInfo>,
    outcome: Outcome,
    /// The error that broke the connection, for its disconnect event.
    failure: Option<Error>,
    armed: bool,
}

impl Lease {
    pub(crate) fn new(
        shared: Arc<Shared>,
        key: usize,
        id: u64,
        sender: Sender,
        reused: bool,
        taken: Instant,
        socket: Arc<SocketInfo>,
    ) -> Self {
        Lease {
            shared,
            key,
            id,
            sender: Some(sender),
            reused,
            taken,
            socket,
            // Unused, the connection is as good as before.
            outcome: Outcome::Reuse(None),
            failure: None,
            armed: true,
        }
    }

    /// Takes the lease apart without giving the connection back; for the
    /// pool itself, which holds its lock.
    pub(crate) fn disarm(mut self) -> (usize, u64, Option<Sender>) {
        self.armed = false;
        (self.key, self.id, self.sender.take())
    }

    pub(crate) fn sender(&mut self) -> Option<&mut Sender> {
        self.sender.as_mut()
    }

    pub(crate) fn is_h2(&self) -> bool {
        self.sender.as_ref().is_some_and(Sender::is_h2)
    }

    /// True when the connection served a request before this one.
    pub(crate) fn is_reused(&self) -> bool {
        self.reused
    }

    /// When the pool handed the connection over.
    pub(crate) fn taken_at(&self) -> Instant {
        self.taken
    }

    pub(crate) fn socket(&self) -> SocketInfo {
        *self.socket
    }

    pub(crate) fn shared(&self) -> &Arc<Shared> {
        &self.shared
    }

    pub(crate) fn set_outcome(&mut self, outcome: Outcome) {
        self.outcome = outcome;
    }

    /// The exchange failed with `error`: the connection is not reused, and
    /// its disconnect event will carry the error.
    pub(crate) fn fail(&mut self, error: &Error) {
        if self.outcome != Outcome::Retire {
            self.outcome = Outcome::Discard;
        }
        self.failure = Some(error.clone());
    }
}

impl Drop for Lease {
    fn drop(&mut self) {
        if self.armed {
            self.shared.release(
                self.key,
                self.id,
                self.sender.take(),
                self.outcome,
                self.failure.take(),
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_lease_is_small_enough_to_move_inline() {
        // A lease moves several times per request; past 128 bytes each
        // move is a call to `memcpy`.
        assert!(
            std::mem::size_of::<Lease>() <= 128,
            "{}",
            std::mem::size_of::<Lease>()
        );
    }
}
