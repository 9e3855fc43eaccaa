//! `HeadDeadline`: the headers timeout of an HTTP/1 request, kept by its
//! connection's task.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::time::Instant;

/// No head awaited.
const NONE: u64 = 0;
/// The task found the head late and ended the connection.
const LATE: u64 = u64::MAX;

/// When the response head of the request in flight on an HTTP/1
/// connection is due (undici's `headers_timeout`).
///
/// A tokio timer per request costs a registration in the timer wheel and
/// a removal, a lock each, on every request. An HTTP/1 connection carries
/// one request at a time and its task already keeps a timer (the
/// keep-alive one), so the request writes its deadline here before
/// handing itself to hyper, whose wake-up of the task carries it; the
/// task keeps its one timer at the earlier of the two deadlines, and ends
/// the connection when the head is late. The request, failed by hyper,
/// then answers `UND_ERR_HEADERS_TIMEOUT`.
#[derive(Debug)]
pub(crate) struct HeadDeadline {
    /// The origin of the clock `due` counts on.
    base: Instant,
    /// `NONE`, `LATE`, or nanoseconds after `base`, plus one.
    due: AtomicU64,
}

/// A deadline in force, as the task read it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct Due {
    pub(crate) at: Instant,
    raw: u64,
}

impl HeadDeadline {
    pub(crate) fn new() -> Self {
        HeadDeadline {
            base: Instant::now(),
            due: AtomicU64::new(NONE),
        }
    }

    /// The request is about to be handed to hyper; its head is due by `at`.
    pub(crate) fn arm(&self, at: Instant) {
        let nanos = at.saturating_duration_since(self.base).as_nanos();
        let raw = u64::try_from(nanos).unwrap_or(LATE - 2).min(LATE - 2) + 1;
        self.due.store(raw, Ordering::Release);
    }

    /// The exchange no longer waits for the head: `false` when the task
    /// had found it late already (and ended the connection).
    pub(crate) fn disarm(&self) -> bool {
        self.due.swap(NONE, Ordering::AcqRel) != LATE
    }

    /// For the task: the deadline in force, if a head is awaited.
    pub(crate) fn due(&self) -> Option<Due> {
        match self.due.load(Ordering::Acquire) {
            NONE | LATE => None,
            raw => Some(Due {
                at: self.base + Duration::from_nanos(raw - 1),
                raw,
            }),
        }
    }

    /// For the task: marks the head late, if `due` is still the deadline
    /// in force (the head did not arrive in between); `true` if so.
    pub(crate) fn expire(&self, due: Due) -> bool {
        self.due
            .compare_exchange(due.raw, LATE, Ordering::AcqRel, Ordering::Acquire)
            .is_ok()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_late_head_is_expired_once_and_a_timely_one_never() {
        let deadline = HeadDeadline::new();
        assert_eq!(deadline.due(), None);
        let at = Instant::now() + Duration::from_secs(1);
        deadline.arm(at);
        let due = deadline.due().unwrap();
        assert!(due.at <= at && at - due.at < Duration::from_micros(1));
        assert!(deadline.disarm(), "disarmed in time");
        assert!(!deadline.expire(due), "nothing to expire any more");

        deadline.arm(at);
        let due = deadline.due().unwrap();
        assert!(deadline.expire(due));
        assert_eq!(deadline.due(), None);
        assert!(!deadline.disarm(), "the request learns it was late");
    }
}
