//! `Orders`: what the pool tells a connection's task.

use std::sync::atomic::{AtomicU8, Ordering};
use std::task::{Context, Poll};

use futures_util::task::AtomicWaker;

const CLOSE: u8 = 1;
const DETACH: u8 = 1 << 1;
const RECHECK: u8 = 1 << 2;
const SWEEP: u8 = 1 << 3;
const FRAMES_SEEN: u8 = 1 << 4;

/// What the pool tells a connection's task: close the connection, let it
/// go (an upgrade took it over), or look at its idle deadline again (a
/// server's keep-alive hint shortened it); and what its HTTP/2 side tells
/// it: start sweeping the streams' deadlines (see `StreamDeadlines`), or
/// look at what the server's frames said (see `H2Signals`).
///
/// One atomic word and one waker: the task wakes twice per request for
/// hyper, and reads its orders with a load where a oneshot, a flag and
/// their wakers would each cost a poll.
#[derive(Debug, Default)]
pub(crate) struct Orders {
    given: AtomicU8,
    task: AtomicWaker,
}

/// One order, as the task takes it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Order {
    Close,
    Detach,
    Recheck,
    Sweep,
    FramesSeen,
}

impl Orders {
    pub(crate) fn close(&self) {
        self.give(CLOSE);
    }

    pub(crate) fn detach(&self) {
        self.give(DETACH);
    }

    pub(crate) fn recheck(&self) {
        self.give(RECHECK);
    }

    pub(crate) fn sweep(&self) {
        self.give(SWEEP);
    }

    pub(crate) fn frames_seen(&self) {
        self.give(FRAMES_SEEN);
    }

    fn give(&self, order: u8) {
        self.given.fetch_or(order, Ordering::AcqRel);
        self.task.wake();
    }

    /// The most pressing order given: close before detach before a
    /// recheck, a sweep, new frames. Close and detach stay given; the
    /// others are taken once each.
    pub(crate) fn poll(&self, cx: &mut Context<'_>) -> Poll<Order> {
        self.task.register(cx.waker());
        let given = self.given.load(Ordering::Acquire);
        if given == 0 {
            return Poll::Pending;
        }
        if given & CLOSE != 0 {
            return Poll::Ready(Order::Close);
        }
        if given & DETACH != 0 {
            return Poll::Ready(Order::Detach);
        }
        let (bit, order) = [
            (RECHECK, Order::Recheck),
            (SWEEP, Order::Sweep),
            (FRAMES_SEEN, Order::FramesSeen),
        ]
        .into_iter()
        .find(|(bit, _)| given & bit != 0)
        .unwrap_or((RECHECK, Order::Recheck));
        self.given.fetch_and(!bit, Ordering::AcqRel);
        Poll::Ready(order)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn taken(orders: &Orders) -> Poll<Order> {
        orders.poll(&mut Context::from_waker(std::task::Waker::noop()))
    }

    #[test]
    fn close_outranks_detach_and_a_recheck_is_taken_once() {
        let orders = Orders::default();
        assert_eq!(taken(&orders), Poll::Pending);
        orders.recheck();
        assert_eq!(taken(&orders), Poll::Ready(Order::Recheck));
        assert_eq!(taken(&orders), Poll::Pending);
        orders.sweep();
        orders.recheck();
        assert_eq!(taken(&orders), Poll::Ready(Order::Recheck));
        assert_eq!(taken(&orders), Poll::Ready(Order::Sweep));
        assert_eq!(taken(&orders), Poll::Pending);
        orders.frames_seen();
        assert_eq!(taken(&orders), Poll::Ready(Order::FramesSeen));
        assert_eq!(taken(&orders), Poll::Pending);
        orders.detach();
        orders.close();
        assert_eq!(taken(&orders), Poll::Ready(Order::Close));
        assert_eq!(taken(&orders), Poll::Ready(Order::Close));
    }
}
