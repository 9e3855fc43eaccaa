//! The closed loop that drives every in-process client.
//!
//! N workers, one task each, each sending a request, reading its whole
//! body, and sending the next: N requests are always in flight. The
//! workers run through a warm-up (connections open, caches fill), then a
//! fixed window in which every completed request is counted and its
//! latency recorded, then stop. CPU time is the process's CPU clock
//! delta over exactly that window (see [`cpu`]).

use std::future::Future;
use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use crate::cpu;
use crate::stats::{Histogram, Sample};

pub type BoxError = Box<dyn std::error::Error + Send + Sync>;

/// One in-flight slot of a client: sends one request and reads all of
/// its body per call. A client shares one pool between its workers (a
/// clone each) or gives each its own connection (hyper-raw).
pub trait Worker: Send + 'static {
    fn send(&mut self) -> impl Future<Output = Result<(), BoxError>> + Send;
}

/// The warm-up, then the measured window.
#[derive(Clone, Copy, Debug)]
pub struct Window {
    pub warmup: Duration,
    pub measure: Duration,
}

const WARMUP: u8 = 0;
const MEASURE: u8 = 1;
const STOP: u8 = 2;

/// How long workers may take to finish their last request after the
/// window: a client that hangs fails the run instead of the bench.
const GRACE: Duration = Duration::from_secs(10);

/// Runs `workers` through `window` on the current runtime.
pub async fn run<W: Worker>(workers: Vec<W>, window: Window) -> Result<Sample, String> {
    let phase = Arc::new(AtomicU8::new(WARMUP));
    let tasks: Vec<_> = workers
        .into_iter()
        .map(|worker| tokio::spawn(drive(worker, phase.clone())))
        .collect();

    tokio::time::sleep(window.warmup).await;
    let cpu_start = cpu::self_cpu();
    let start = Instant::now();
    phase.store(MEASURE, Ordering::Relaxed);
    tokio::time::sleep(window.measure).await;
    phase.store(STOP, Ordering::Relaxed);
    let elapsed = start.elapsed();
    let cpu_used = cpu::self_cpu().saturating_sub(cpu_start);

    let mut histogram = Histogram::new();
    let deadline = tokio::time::Instant::now() + GRACE;
    for task in tasks {
        let abort = task.abort_handle();
        match tokio::time::timeout_at(deadline, task).await {
            Ok(Ok(Ok(worker))) => histogram.merge(&worker),
            Ok(Ok(Err(err))) => return Err(err),
            Ok(Err(join)) => return Err(format!("a worker panicked: {join}")),
            Err(_) => {
                abort.abort();
                return Err("a worker did not finish its request after the window".into());
            }
        }
    }
    if histogram.count() == 0 {
        return Err("no request completed in the window".into());
    }
    Ok(Sample::from_window(&histogram, elapsed, cpu_used))
}

/// One worker's loop: a request at a time until `STOP`, recording the
/// latency of those that end inside the window.
async fn drive<W: Worker>(mut worker: W, phase: Arc<AtomicU8>) -> Result<Histogram, String> {
    let mut histogram = Histogram::new();
    while phase.load(Ordering::Relaxed) != STOP {
        let sent = Instant::now();
        worker
            .send()
            .await
            .map_err(|err| format!("request failed: {}", chain(&*err)))?;
        if phase.load(Ordering::Relaxed) == MEASURE {
            histogram.record(sent.elapsed());
        }
    }
    Ok(histogram)
}

/// An error and its sources, `a: b: c`, so a failure says what broke.
pub fn chain(err: &(dyn std::error::Error + 'static)) -> String {
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        text.push_str(": ");
        text.push_str(&cause.to_string());
        source = cause.source();
    }
    text
}
