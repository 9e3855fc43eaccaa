//! `Controller`: undici's `DispatchController`, shared between the
//! dispatch driver and whoever holds a clone.

use std::collections::VecDeque;
use std::fmt;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::task::Waker;

use futures_util::task::AtomicWaker;

use crate::error::Error;
use crate::options::{Informational, InformationalSink, OnInfo};
use crate::sync::lock;

/// 1xx responses held for the handler while it has not seen them; past
/// this a hostile stream of them is dropped rather than buffered.
const MAX_QUEUED_INFORMATIONAL: usize = 32;

/// undici's `DispatchController`: pauses, resumes or aborts one
/// dispatched request.
///
/// Cheap to clone and usable from any task or thread: keep a clone from
/// a callback and call [`resume`](Self::resume) or
/// [`abort`](Self::abort) later.
///
/// - [`pause`](Self::pause) stops reading the response body: the
///   connection is not read, so the server's writes back up (TCP flow
///   control; an HTTP/2 stream's window is not released).
/// - [`resume`](Self::resume) reads again.
/// - [`abort`](Self::abort) drops the request (an HTTP/1.1 connection is
///   closed, not reused) and the handler gets `on_response_error` with the
///   reason, once. Aborting after the exchange ended does nothing.
#[derive(Clone)]
pub struct Controller {
    shared: Arc<Shared>,
}

#[derive(Default)]
struct Shared {
    paused: AtomicBool,
    aborted: AtomicBool,
    /// Set when the exchange reached its last callback.
    done: AtomicBool,
    reason: Mutex<Option<Error>>,
    /// 1xx heads the connection handed over, for the driver to pass on;
    /// `informational_queued` says there are some without taking the lock.
    informational: Mutex<VecDeque<Informational>>,
    informational_queued: AtomicBool,
    /// The dispatch driver, woken by `resume`, `abort` and a 1xx head.
    driver: AtomicWaker,
}

impl Controller {
    pub(super) fn new() -> Self {
        Controller {
            shared: Arc::default(),
        }
    }

    fn reason_slot(&self) -> MutexGuard<'_, Option<Error>> {
        lock(&self.shared.reason)
    }

    /// Stops reading the response body until [`resume`](Self::resume).
    pub fn pause(&self) {
        self.shared.paused.store(true, Ordering::SeqCst);
    }

    /// Reads the response body again after [`pause`](Self::pause).
    pub fn resume(&self) {
        self.shared.paused.store(false, Ordering::SeqCst);
        self.shared.driver.wake();
    }

    /// Aborts the request with `reason` (e.g. [`Error::aborted`]); the
    /// handler's `on_response_error` gets it. Only the first reason
    /// counts.
    pub fn abort(&self, reason: Error) {
        if self.shared.done.load(Ordering::SeqCst) {
            return;
        }
        {
            let mut slot = self.reason_slot();
            if slot.is_none() {
                *slot = Some(reason);
            }
        }
        self.shared.aborted.store(true, Ordering::SeqCst);
        self.shared.driver.wake();
    }

    /// True once [`abort`](Self::abort) was called (undici's `aborted`).
    #[inline]
    pub fn is_aborted(&self) -> bool {
        self.shared.aborted.load(Ordering::SeqCst)
    }

    /// True while paused (undici's `paused`).
    #[inline]
    pub fn is_paused(&self) -> bool {
        self.shared.paused.load(Ordering::SeqCst)
    }

    /// The abort reason, once aborted (undici's `reason`).
    pub fn reason(&self) -> Option<Error> {
        self.reason_slot().clone()
    }

    /// Registers the driver's waker; call before checking the flags so
    /// that a `resume` or `abort` in between is not lost.
    #[inline]
    pub(super) fn register(&self, waker: &Waker) {
        self.shared.driver.register(waker);
    }

    /// The abort reason, if the request was aborted.
    #[inline]
    pub(super) fn aborted(&self) -> Option<Error> {
        if !self.is_aborted() {
            return None;
        }
        Some(self.reason().unwrap_or_else(Error::aborted))
    }

    /// Where the connection sends the request's 1xx heads: this
    /// controller's queue, which its driver hands to the handler.
    pub(super) fn informational_sink(&self) -> OnInfo {
        OnInfo::from_sink(self.shared.clone())
    }

    /// The oldest 1xx head not yet handed to the handler. The check is
    /// inline: the driver asks on every poll, and there rarely is one.
    #[inline]
    pub(super) fn take_informational(&self) -> Option<Informational> {
        if !self.shared.informational_queued.load(Ordering::SeqCst) {
            return None;
        }
        self.take_queued_informational()
    }

    fn take_queued_informational(&self) -> Option<Informational> {
        let mut queue = lock(&self.shared.informational);
        let info = queue.pop_front();
        if queue.is_empty() {
            self.shared
                .informational_queued
                .store(false, Ordering::SeqCst);
        }
        info
    }

    /// The exchange is over: later aborts are ignored.
    #[inline]
    pub(super) fn finish(&self) {
        self.shared.done.store(true, Ordering::SeqCst);
    }
}

/// Queues a 1xx head for the driver (from the connection's side).
impl InformationalSink for Shared {
    fn informational(&self, info: &Informational) {
        {
            let mut queue = lock(&self.informational);
            if queue.len() >= MAX_QUEUED_INFORMATIONAL {
                return;
            }
            queue.push_back(info.clone());
            self.informational_queued.store(true, Ordering::SeqCst);
        }
        self.driver.wake();
    }
}

impl fmt::Debug for Controller {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Controller")
            .field("paused", &self.is_paused())
            .field("aborted", &self.is_aborted())
            .field("reason", &self.reason())
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_first_abort_reason_wins() {
        let controller = Controller::new();
        assert!(!controller.is_aborted());
        controller.abort(Error::aborted());
        controller.clone().abort(Error::closed());
        assert!(controller.is_aborted());
        assert!(controller.reason().unwrap().is_aborted());
    }

    #[test]
    fn abort_after_the_end_is_ignored() {
        let controller = Controller::new();
        controller.finish();
        controller.abort(Error::aborted());
        assert!(!controller.is_aborted());
        assert!(controller.reason().is_none());
    }

    #[test]
    fn informational_heads_queue_in_order_up_to_the_limit() {
        let controller = Controller::new();
        assert!(controller.take_informational().is_none());
        let sink = controller.informational_sink();
        for status in 100..100 + MAX_QUEUED_INFORMATIONAL as u16 + 5 {
            sink.call(&Informational {
                status: http::StatusCode::from_u16(status.min(199)).unwrap(),
                headers: http::HeaderMap::new(),
            });
        }
        let taken = std::iter::from_fn(|| controller.take_informational()).count();
        assert_eq!(taken, MAX_QUEUED_INFORMATIONAL);
        assert!(controller.take_informational().is_none());
    }

    #[test]
    fn pause_and_resume_flip_the_flag() {
        let controller = Controller::new();
        controller.pause();
        assert!(controller.is_paused());
        controller.resume();
        assert!(!controller.is_paused());
    }
}
