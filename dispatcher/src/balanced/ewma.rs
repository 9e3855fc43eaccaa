//! Peak EWMA latency and power of two choices, as tower's `balance::p2c`
//! with `load::PeakEwma`: each upstream's cost is its decaying peak
//! latency times its requests in flight, and a request goes to the
//! cheaper of two upstreams picked at random.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

use crate::sync::lock;

/// How fast old latencies are forgotten.
const DECAY: Duration = Duration::from_secs(10);

/// Latency assumed before the first response: 1 ms, so a new upstream is
/// tried soon.
const DEFAULT_RTT: Duration = Duration::from_millis(1);

/// What a request that failed on a connection error counts as. A reset
/// comes back faster than any answer: not counted, a failing upstream
/// kept its first estimate while a healthy one's peaks rose past it, and
/// drew the load back. Counted as this slow, it is tried only by
/// exploration until its fast answers wear the peak down (`DECAY`).
const FAILURE_RTT: Duration = Duration::from_secs(1);

#[derive(Debug)]
pub(super) struct Load {
    in_flight: AtomicUsize,
    estimate: Mutex<Estimate>,
}

#[derive(Debug)]
struct Estimate {
    rtt_ns: f64,
    updated: Instant,
}

impl Load {
    pub(super) fn new() -> Self {
        Load {
            in_flight: AtomicUsize::new(0),
            estimate: Mutex::new(Estimate {
                rtt_ns: DEFAULT_RTT.as_nanos() as f64,
                updated: Instant::now(),
            }),
        }
    }

    pub(super) fn start(&self) {
        self.in_flight.fetch_add(1, Ordering::Relaxed);
    }

    /// A request ended after `rtt` (to its response head).
    pub(super) fn end(&self, rtt: Option<Duration>) {
        self.in_flight.fetch_sub(1, Ordering::Relaxed);
        let Some(rtt) = rtt else {
            return;
        };
        let mut estimate = lock(&self.estimate);
        let now = Instant::now();
        let rtt = rtt.as_nanos() as f64;
        if rtt > estimate.rtt_ns {
            // Peaks are taken at once; calm is learned slowly.
            estimate.rtt_ns = rtt;
        } else {
            let elapsed = now
                .saturating_duration_since(estimate.updated)
                .as_secs_f64();
            let decay = (-elapsed / DECAY.as_secs_f64()).exp();
            estimate.rtt_ns = estimate.rtt_ns * decay + rtt * (1.0 - decay);
        }
        estimate.updated = now;
    }

    /// A request ended on a connection error: a peak of `FAILURE_RTT`.
    pub(super) fn fail(&self) {
        self.end(Some(FAILURE_RTT));
    }

    /// The cost of one more request: the latency estimate times the
    /// requests in flight, plus one.
    pub(super) fn cost(&self) -> f64 {
        let rtt = lock(&self.estimate).rtt_ns;
        rtt * (self.in_flight.load(Ordering::Relaxed) + 1) as f64
    }
}

/// Two distinct indices below `n` picked at random (one when `n` is 1).
pub(super) fn two_choices(n: usize) -> (usize, usize) {
    if n < 2 {
        return (0, 0);
    }
    let a = fastrand::usize(..n);
    let mut b = fastrand::usize(..n - 1);
    if b >= a {
        b += 1;
    }
    (a, b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_slow_response_raises_the_cost_at_once() {
        let load = Load::new();
        let before = load.cost();
        load.start();
        load.end(Some(Duration::from_millis(50)));
        assert!(load.cost() > before * 10.0);
    }

    #[test]
    fn a_failure_costs_more_than_a_slow_answer() {
        let failing = Load::new();
        let slow = Load::new();
        failing.start();
        failing.fail();
        slow.start();
        slow.end(Some(Duration::from_millis(500)));
        assert!(failing.cost() > slow.cost());
    }

    #[test]
    fn requests_in_flight_raise_the_cost() {
        let load = Load::new();
        let idle = load.cost();
        load.start();
        assert_eq!(load.cost(), idle * 2.0);
    }

    #[test]
    fn two_choices_are_distinct() {
        for _ in 0..100 {
            let (a, b) = two_choices(3);
            assert_ne!(a, b);
            assert!(a < 3 && b < 3);
        }
    }
}
