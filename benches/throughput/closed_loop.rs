//! The closed loop that drives every in-process client.
//!
//! N workers, one task each, each sending a request, reading its whole
//! body, and sending the next: N requests are always in flight. The
//! workers run through a warm-up (connections open, caches fill), then a
//! fixed window in which every completed request is counted and its
//! latency recorded, then stop. CPU time is the process's CPU clock
//! delta over exactly that window (see [`cpu`]).
//!
//! For profiling (`BENCH_REQUESTS`) the loop instead runs a fixed number
//! of requests with no warm-up and no clock, so that an instruction
//! counter such as callgrind sees the same work on every run.

use std::future::Future;
use std::sync::atomic::{AtomicU64, AtomicU8, Ordering};
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
    /// Profiling: exactly this many requests, shared by the workers,
    /// instead of the timed window.
    pub requests: Option<u64>,
}

const WARMUP: u8 = 0;
const MEASURE: u8 = 1;
const STOP: u8 = 2;

/// How long workers may take to finish their last request after the
/// window: a client that hangs fails the run instead of the bench.
const GRACE: Duration = Duration::from_secs(10);

/// Runs `workers` through `window` on the current runtime.
pub async fn run<W: Worker>(workers: Vec<W>, window: Window) -> Result<Sample, String> {
    if let Some(requests) = window.requests {
        return run_counted(workers, requests).await;
    }
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

/// Profiling: the workers send `requests` requests between them, then
/// stop. The figures cover the whole run, connection set-up included.
async fn run_counted<W: Worker>(workers: Vec<W>, requests: u64) -> Result<Sample, String> {
    let tickets = Arc::new(AtomicU64::new(requests));
    let cpu_start = cpu::self_cpu_coarse();
    let (user_start, sys_start) = cpu::self_user_sys_coarse();
    let switches_start = cpu::self_context_switches();
    let start = Instant::now();
    let tasks: Vec<_> = workers
        .into_iter()
        .map(|worker| tokio::spawn(drive_counted(worker, tickets.clone())))
        .collect();
    let mut histogram = Histogram::new();
    for task in tasks {
        match task.await {
            Ok(Ok(worker)) => histogram.merge(&worker),
            Ok(Err(err)) => return Err(err),
            Err(join) => return Err(format!("a worker panicked: {join}")),
        }
    }
    let elapsed = start.elapsed();
    let cpu_used = cpu::self_cpu_coarse().saturating_sub(cpu_start);
    let (user, sys) = cpu::self_user_sys_coarse();
    let switches = cpu::self_context_switches().saturating_sub(switches_start);
    eprint!(
        "[{requests} requests: user {:.2} s, system {:.2} s, {switches} context switches] ",
        user.saturating_sub(user_start).as_secs_f64(),
        sys.saturating_sub(sys_start).as_secs_f64()
    );
    Ok(Sample::from_window(&histogram, elapsed, cpu_used))
}

/// One worker's loop in a counted run: a request per ticket.
async fn drive_counted<W: Worker>(
    mut worker: W,
    tickets: Arc<AtomicU64>,
) -> Result<Histogram, String> {
    let mut histogram = Histogram::new();
    let take = |n: u64| n.checked_sub(1);
    while tickets
        .fetch_update(Ordering::Relaxed, Ordering::Relaxed, take)
        .is_ok()
    {
        let sent = Instant::now();
        worker
            .send()
            .await
            .map_err(|err| format!("request failed: {}", chain(&*err)))?;
        histogram.record(sent.elapsed());
    }
    Ok(histogram)
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
