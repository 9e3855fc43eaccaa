//! The readiness gate of a pool with a connection limit: one permit per
//! request it can serve without queueing, taken in `poll_ready`, given
//! back when the response ends.
//!
//! tokio's `Semaphore` does the same, but every release takes the lock of
//! its waiter list, and a busy pool releases a permit with every response.
//! Here a release is an atomic add; the lock is taken only while someone
//! waits. Waiters are served in order, and a newcomer does not pass them.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::SeqCst};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};

use futures_util::task::AtomicWaker;

use crate::sync::lock;

pub(crate) struct Gate {
    permits: AtomicUsize,
    closed: AtomicBool,
    /// Whether `waiters` may hold anyone: a release looks here before it
    /// takes the lock, a newcomer before it takes a permit.
    contended: AtomicBool,
    waiters: Mutex<VecDeque<Arc<Waiter>>>,
}

/// One handle waiting in line.
struct Waiter {
    /// Set, under the waiters' lock, when a permit was taken for it.
    granted: AtomicBool,
    waker: AtomicWaker,
}

/// A permit: one request the pool can serve now. Dropping it gives it
/// back.
pub(crate) struct Permit {
    gate: Arc<Gate>,
}

/// A handle's place in the line, left when dropped (a permit already
/// taken for it goes to the next in line).
pub(crate) struct Wait {
    gate: Arc<Gate>,
    waiter: Option<Arc<Waiter>>,
}

impl Gate {
    /// More permits than this are not counted (as tokio's semaphore).
    pub(crate) const MAX_PERMITS: usize = usize::MAX >> 3;

    pub(crate) fn new(permits: usize) -> Self {
        Gate {
            permits: AtomicUsize::new(permits.min(Self::MAX_PERMITS)),
            closed: AtomicBool::new(false),
            contended: AtomicBool::new(false),
            waiters: Mutex::default(),
        }
    }

    /// A permit now, unless there is none, the gate is closed, or others
    /// wait for one already.
    pub(crate) fn try_acquire(self: &Arc<Self>) -> Option<Permit> {
        if self.closed.load(SeqCst) || self.contended.load(SeqCst) || !self.take() {
            return None;
        }
        Some(self.permit())
    }

    /// Adds permits (an HTTP/2 connection's extra streams), never past
    /// the maximum.
    pub(crate) fn add_permits(&self, n: usize) {
        let _ = self.permits.fetch_update(SeqCst, SeqCst, |permits| {
            Some(permits.saturating_add(n).min(Self::MAX_PERMITS))
        });
        self.serve_if_contended();
    }

    /// A permit taken from the count already.
    fn permit(self: &Arc<Self>) -> Permit {
        Permit { gate: self.clone() }
    }

    /// Refuses every waiter and every later request for a permit; permits
    /// held still come back.
    pub(crate) fn close(&self) {
        self.closed.store(true, SeqCst);
        let waiters = std::mem::take(&mut *lock(&self.waiters));
        self.contended.store(false, SeqCst);
        for waiter in waiters {
            waiter.waker.wake();
        }
    }

    /// Takes one permit from the count.
    fn take(&self) -> bool {
        self.permits
            .fetch_update(SeqCst, SeqCst, |n| n.checked_sub(1))
            .is_ok()
    }

    /// Gives one permit back: an atomic add, far from overflow (what
    /// `add_permits` adds stops at the maximum, an eighth of `usize`).
    fn release(&self) {
        self.permits.fetch_add(1, SeqCst);
        self.serve_if_contended();
    }

    /// A waiter sets `contended` before it looks at the count again, and
    /// this looks at `contended` after adding (both SeqCst): one of the
    /// two sees the other, so no permit is left while one waits.
    fn serve_if_contended(&self) {
        if self.contended.load(SeqCst) {
            self.serve(&mut lock(&self.waiters));
        }
    }

    /// Hands permits to the waiters in order while there are some.
    fn serve(&self, waiters: &mut VecDeque<Arc<Waiter>>) {
        while !waiters.is_empty() && self.take() {
            if let Some(waiter) = waiters.pop_front() {
                waiter.granted.store(true, SeqCst);
                waiter.waker.wake();
            }
        }
        if waiters.is_empty() {
            self.contended.store(false, SeqCst);
        }
    }
}

impl Drop for Permit {
    fn drop(&mut self) {
        self.gate.release();
    }
}

impl Wait {
    pub(crate) fn new(gate: Arc<Gate>) -> Self {
        Wait { gate, waiter: None }
    }

    /// A permit, in line behind those who asked before; `None` once the
    /// gate is closed.
    pub(crate) fn poll_acquire(&mut self, cx: &mut Context<'_>) -> Poll<Option<Permit>> {
        let gate = &self.gate;
        if let Some(waiter) = &self.waiter {
            waiter.waker.register(cx.waker());
            if waiter.granted.load(SeqCst) {
                self.waiter = None;
                return Poll::Ready(Some(gate.permit()));
            }
            if gate.closed.load(SeqCst) {
                self.leave();
                return Poll::Ready(None);
            }
            return Poll::Pending;
        }
        if gate.closed.load(SeqCst) {
            return Poll::Ready(None);
        }
        let mut waiters = lock(&gate.waiters);
        if waiters.is_empty() && gate.take() {
            return Poll::Ready(Some(gate.permit()));
        }
        let waiter = Arc::new(Waiter {
            granted: AtomicBool::new(false),
            waker: AtomicWaker::new(),
        });
        waiter.waker.register(cx.waker());
        waiters.push_back(waiter.clone());
        gate.contended.store(true, SeqCst);
        // A permit given back since the count was read went unserved.
        gate.serve(&mut waiters);
        drop(waiters);
        if waiter.granted.load(SeqCst) {
            return Poll::Ready(Some(gate.permit()));
        }
        self.waiter = Some(waiter);
        Poll::Pending
    }

    /// Leaves the line; a permit taken for us meanwhile goes back.
    fn leave(&mut self) {
        let Some(waiter) = self.waiter.take() else {
            return;
        };
        {
            let mut waiters = lock(&self.gate.waiters);
            if let Some(at) = waiters.iter().position(|w| Arc::ptr_eq(w, &waiter)) {
                waiters.remove(at);
                if waiters.is_empty() {
                    self.gate.contended.store(false, SeqCst);
                }
                return;
            }
        }
        // Out of the line under the lock: served (or the gate closed).
        if waiter.granted.load(SeqCst) {
            self.gate.release();
        }
    }
}

impl Drop for Wait {
    fn drop(&mut self) {
        self.leave();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::poll_fn;

    fn ready(wait: &mut Wait) -> Poll<Option<Permit>> {
        let waker = futures_util::task::noop_waker();
        wait.poll_acquire(&mut Context::from_waker(&waker))
    }

    #[test]
    fn permits_come_back_and_waiters_are_served_in_order() {
        let gate = Arc::new(Gate::new(1));
        let held = gate.try_acquire().expect("one permit");
        assert!(gate.try_acquire().is_none());
        let (mut first, mut second) = (Wait::new(gate.clone()), Wait::new(gate.clone()));
        assert!(ready(&mut first).is_pending());
        assert!(ready(&mut second).is_pending());
        drop(held);
        // The freed permit is the first waiter's; a newcomer waits.
        assert!(gate.try_acquire().is_none());
        assert!(ready(&mut second).is_pending());
        let Poll::Ready(Some(permit)) = ready(&mut first) else {
            panic!("the first in line gets the permit")
        };
        drop(permit);
        assert!(matches!(ready(&mut second), Poll::Ready(Some(_))));
        assert!(gate.try_acquire().is_some(), "no one waits any more");
    }

    #[test]
    fn a_waiter_that_leaves_passes_its_permit_on() {
        let gate = Arc::new(Gate::new(1));
        let held = gate.try_acquire().unwrap();
        let (mut first, mut second) = (Wait::new(gate.clone()), Wait::new(gate.clone()));
        assert!(ready(&mut first).is_pending());
        assert!(ready(&mut second).is_pending());
        drop(held);
        drop(first);
        assert!(matches!(ready(&mut second), Poll::Ready(Some(_))));
    }

    #[test]
    fn close_refuses_waiters_and_newcomers() {
        let gate = Arc::new(Gate::new(1));
        let held = gate.try_acquire().unwrap();
        let mut wait = Wait::new(gate.clone());
        assert!(ready(&mut wait).is_pending());
        gate.close();
        assert!(matches!(ready(&mut wait), Poll::Ready(None)));
        assert!(matches!(
            ready(&mut Wait::new(gate.clone())),
            Poll::Ready(None)
        ));
        drop(held);
        assert!(gate.try_acquire().is_none());
    }

    #[test]
    fn added_permits_serve_waiters() {
        let gate = Arc::new(Gate::new(0));
        let mut wait = Wait::new(gate.clone());
        assert!(ready(&mut wait).is_pending());
        gate.add_permits(usize::MAX);
        let Poll::Ready(Some(_permit)) = ready(&mut wait) else {
            panic!("the waiter gets one of the added permits")
        };
        assert_eq!(gate.permits.load(SeqCst), Gate::MAX_PERMITS - 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn every_permit_reaches_a_waiter_across_threads() {
        let gate = Arc::new(Gate::new(2));
        let tasks: Vec<_> = (0..8)
            .map(|_| {
                let gate = gate.clone();
                tokio::spawn(async move {
                    for _ in 0..2000 {
                        let mut wait = Wait::new(gate.clone());
                        let permit = poll_fn(|cx| wait.poll_acquire(cx)).await;
                        assert!(permit.is_some());
                        tokio::task::yield_now().await;
                    }
                })
            })
            .collect();
        for task in tasks {
            task.await.unwrap();
        }
        assert_eq!(gate.permits.load(SeqCst), 2);
    }
}
