//! h2load (nghttp2), the C reference for h2c: one connection, 64 streams.
//!
//! As with wrk, a first run warms up and the measured run is its own
//! process (CPU from `RUSAGE_CHILDREN`). h2load prints no percentiles, so
//! they come from its per-request log (`--log-file`: start, status,
//! microseconds to the end of the response).

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use super::external::{self, whole_secs};
use super::Skip;
use crate::closed_loop::Window;
use crate::scenario::{Protocol, Scenario};
use crate::server::Target;
use crate::stats::{Histogram, Sample};

pub fn run(
    h2load: &Path,
    scenario: &Scenario,
    target: &Target,
    window: Window,
) -> Result<Sample, Skip> {
    if scenario.protocol != Protocol::H2c {
        return Err(Skip::Missing("h2load runs the h2c scenario only".into()));
    }
    let log = std::env::temp_dir().join(format!("undici-bench-h2load-{}.log", std::process::id()));
    let command = |secs: u64, log: Option<&Path>| {
        let mut command = Command::new(h2load);
        command
            .arg("-t1")
            .arg("-c1")
            .arg(format!("-m{}", scenario.in_flight))
            .arg(format!("-D{secs}"));
        if let Some(log) = log {
            command.arg(format!("--log-file={}", log.display()));
        }
        command.arg(scenario.url(target));
        command
    };
    let warmup = whole_secs(window.warmup);
    external::run(command(warmup, None), limit(warmup))?;
    let secs = whole_secs(window.measure);
    let ran = external::run(command(secs, Some(&log)), limit(secs));
    let latencies = std::fs::read_to_string(&log).unwrap_or_default();
    let _ = std::fs::remove_file(&log);
    let ran = ran?;
    let (requests, elapsed) = parse_summary(&ran.stdout)
        .ok_or_else(|| Skip::Failed(format!("could not read h2load's output: {}", ran.stdout)))?;
    let histogram = parse_log(&latencies);
    Ok(Sample::new(
        requests,
        elapsed,
        ran.cpu,
        histogram.quantile_us(0.50),
        histogram.quantile_us(0.99),
    ))
}

fn limit(secs: u64) -> Duration {
    Duration::from_secs(secs + 30)
}

/// `finished in 5.00s, ...` and `requests: ... N succeeded, F failed, E
/// errored, ...`; any failed or errored request fails the run.
fn parse_summary(out: &str) -> Option<(u64, Duration)> {
    let mut elapsed = None;
    let mut succeeded = None;
    for line in out.lines().map(str::trim) {
        if let Some(rest) = line.strip_prefix("finished in ") {
            let secs = rest.split(',').next()?;
            elapsed = external::parse_duration_us(secs).map(|us| Duration::from_secs_f64(us / 1e6));
        }
        if let Some(rest) = line.strip_prefix("requests: ") {
            let count = |what: &str| -> Option<u64> {
                rest.split(',')
                    .map(str::trim)
                    .find(|part| part.ends_with(what))?
                    .split_whitespace()
                    .next()?
                    .parse()
                    .ok()
            };
            if count(" failed")? > 0 || count(" errored")? > 0 {
                return None;
            }
            succeeded = count(" succeeded");
        }
    }
    Some((succeeded?, elapsed?))
}

/// The third column of each log line, in microseconds.
fn parse_log(log: &str) -> Histogram {
    let mut histogram = Histogram::new();
    for line in log.lines() {
        let mut columns = line.split('\t');
        let status = columns.nth(1).and_then(|s| s.trim().parse::<i32>().ok());
        let micros = columns.next().and_then(|s| s.trim().parse::<u64>().ok());
        if let (Some(200), Some(micros)) = (status, micros) {
            histogram.record_nanos(micros.saturating_mul(1000));
        }
    }
    histogram
}
