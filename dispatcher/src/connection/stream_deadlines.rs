//! `StreamDeadlines`: the headers timeouts of an HTTP/2 connection's
//! streams, swept by its connection's task.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, Waker};
use std::time::Duration;

use slab::Slab;
use tokio::time::Instant;

use crate::sync::lock;

use super::orders::Orders;

/// How often a connection's task looks for late heads while any stream
/// waits for one: undici's "fast timers" tick every 500 ms.
pub(crate) const TICK: Duration = Duration::from_millis(500);

/// Timeouts up to this long get a timer of their own, as in undici
/// (longer ones use its fast timers, with about a second of resolution).
pub(crate) const PRECISE_UP_TO: Duration = Duration::from_secs(1);

/// The heads awaited on one HTTP/2 connection, and when each is due.
///
/// A tokio timer per stream costs a registration in the timer wheel, its
/// removal, and a poll of the timer on every poll of the stream. Streams
/// whose timeout is longer than [`PRECISE_UP_TO`] are entered here
/// instead, one lock each way, and the connection's task, which keeps a
/// timer anyway, sweeps them every [`TICK`] while any is entered: a late
/// head is found at most a tick after its deadline. The first stream to
/// enter while no sweep is due tells the task through its orders.
#[derive(Debug)]
pub(crate) struct StreamDeadlines {
    entries: Mutex<Entries>,
    orders: Arc<Orders>,
}

#[derive(Debug, Default)]
struct Entries {
    streams: Slab<Entry>,
    /// The task sweeps: it will look at every entry within a tick.
    sweeping: bool,
}

#[derive(Debug)]
struct Entry {
    due: Instant,
    waker: Waker,
    late: bool,
}

impl StreamDeadlines {
    pub(crate) fn new(orders: Arc<Orders>) -> Self {
        StreamDeadlines {
            entries: Mutex::default(),
            orders,
        }
    }

    fn enter(&self, due: Instant, waker: &Waker) -> usize {
        let (key, first) = {
            let mut entries = lock(&self.entries);
            let key = entries.streams.insert(Entry {
                due,
                waker: waker.clone(),
                late: false,
            });
            (key, !std::mem::replace(&mut entries.sweeping, true))
        };
        if first {
            self.orders.sweep();
        }
        key
    }

    /// True when the stream's head is late; else keeps `waker` for the
    /// sweep that finds it so.
    fn check(&self, key: usize, waker: &Waker) -> bool {
        let mut entries = lock(&self.entries);
        let Some(entry) = entries.streams.get_mut(key) else {
            return false;
        };
        if !entry.late && !entry.waker.will_wake(waker) {
            entry.waker = waker.clone();
        }
        entry.late
    }

    fn leave(&self, key: usize) {
        let mut entries = lock(&self.entries);
        entries.streams.try_remove(key);
    }

    /// For the task: wakes the streams whose head is due by `now`; true
    /// while streams remain to sweep a tick later.
    pub(crate) fn sweep(&self, now: Instant) -> bool {
        let mut late = Vec::new();
        let sweeping = {
            let mut entries = lock(&self.entries);
            for (_, entry) in entries.streams.iter_mut() {
                if !entry.late && entry.due <= now {
                    entry.late = true;
                    late.push(entry.waker.clone());
                }
            }
            entries.sweeping = !entries.streams.is_empty();
            entries.sweeping
        };
        late.into_iter().for_each(Waker::wake);
        sweeping
    }
}

pin_project_lite::pin_project! {
    /// hyper's future of one HTTP/2 stream, with its head's deadline in
    /// the connection's [`StreamDeadlines`]: its answer, or [`Late::late`]
    /// when the head is late.
    pub(crate) struct DueStream<F> {
        #[pin]
        sending: F,
        place: Place,
        due: Instant,
    }
}

/// Where a stream is among its connection's deadlines.
enum Place {
    /// Not entered yet: entered on its first wait (most heads come on the
    /// next wake-up, and an answer already there needs no entry).
    Outside(Arc<StreamDeadlines>),
    Entered(Entered),
    /// Answered, or late.
    Left,
}

/// A stream's place among the deadlines, left when dropped.
struct Entered {
    deadlines: Arc<StreamDeadlines>,
    key: usize,
}

impl Drop for Entered {
    fn drop(&mut self) {
        self.deadlines.leave(self.key);
    }
}

impl<F> DueStream<F> {
    pub(crate) fn new(sending: F, deadlines: Arc<StreamDeadlines>, due: Instant) -> Self {
        DueStream {
            sending,
            place: Place::Outside(deadlines),
            due,
        }
    }
}

/// An answer that can also say it came too late.
pub(crate) trait Late {
    /// The answer of a stream whose head is late.
    fn late() -> Self;
}

/// The stream's answer passes through; a late head answers `late()`.
impl<F: Future<Output: Late>> Future for DueStream<F> {
    type Output = F::Output;

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let this = self.project();
        if let Poll::Ready(answer) = this.sending.poll(cx) {
            *this.place = Place::Left;
            return Poll::Ready(answer);
        }
        match std::mem::replace(this.place, Place::Left) {
            Place::Outside(deadlines) => {
                let key = deadlines.enter(*this.due, cx.waker());
                *this.place = Place::Entered(Entered { deadlines, key });
            }
            Place::Entered(entered) => {
                if entered.deadlines.check(entered.key, cx.waker()) {
                    return Poll::Ready(Late::late());
                }
                *this.place = Place::Entered(entered);
            }
            Place::Left => {}
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use std::future::pending;

    use super::super::orders::Order;
    use super::*;

    impl<T> Late for Option<T> {
        fn late() -> Self {
            None
        }
    }

    fn deadlines() -> (Arc<StreamDeadlines>, Arc<Orders>) {
        let orders = Arc::new(Orders::default());
        (Arc::new(StreamDeadlines::new(orders.clone())), orders)
    }

    #[tokio::test(start_paused = true)]
    async fn a_late_stream_is_woken_by_the_sweep_and_answers_none() {
        let (deadlines, orders) = deadlines();
        let due = Instant::now() + Duration::from_secs(2);
        let mut stream = Box::pin(DueStream::new(
            pending::<Option<()>>(),
            deadlines.clone(),
            due,
        ));
        let waker = futures_util::task::noop_waker();
        let mut cx = Context::from_waker(&waker);
        assert!(stream.as_mut().poll(&mut cx).is_pending());
        assert_eq!(
            orders.poll(&mut cx),
            Poll::Ready(Order::Sweep),
            "the first entry starts the sweeps"
        );
        assert!(orders.poll(&mut cx).is_pending());

        assert!(
            deadlines.sweep(due - Duration::from_millis(1)),
            "still waiting"
        );
        assert!(stream.as_mut().poll(&mut cx).is_pending());
        assert!(deadlines.sweep(due), "late, until the stream leaves");
        assert_eq!(stream.as_mut().poll(&mut cx), Poll::Ready(None));
        assert!(!deadlines.sweep(due), "nothing left to sweep");
    }

    #[tokio::test(start_paused = true)]
    async fn an_answered_or_dropped_stream_leaves_and_sweeps_stop() {
        let (deadlines, orders) = deadlines();
        let due = Instant::now() + Duration::from_secs(2);
        let waker = futures_util::task::noop_waker();
        let mut cx = Context::from_waker(&waker);

        let mut dropped = Box::pin(DueStream::new(
            pending::<Option<()>>(),
            deadlines.clone(),
            due,
        ));
        assert!(dropped.as_mut().poll(&mut cx).is_pending());
        drop(dropped);
        assert!(!deadlines.sweep(due + TICK), "a dropped stream left");

        let mut answered = Box::pin(DueStream::new(
            std::future::ready(Some(7)),
            deadlines.clone(),
            due,
        ));
        assert_eq!(answered.as_mut().poll(&mut cx), Poll::Ready(Some(7)));
        assert_eq!(
            orders.poll(&mut cx),
            Poll::Ready(Order::Sweep),
            "the dropped stream's entry had started the sweeps"
        );
        assert!(
            orders.poll(&mut cx).is_pending(),
            "an answer on the first poll never entered"
        );
    }
}
