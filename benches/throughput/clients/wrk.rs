//! wrk, the C reference for HTTP/1.1 (and HTTP/1.1 over TLS, which it
//! speaks through OpenSSL without verifying the certificate).
//!
//! A first run warms the server up; the measured run is a separate
//! process, so its CPU time (from `RUSAGE_CHILDREN`) is the window's plus
//! a process start. Latencies are wrk's `--latency` percentiles.

use std::path::Path;
use std::process::Command;
use std::time::Duration;

use super::external::{self, parse_duration_us, whole_secs};
use super::Skip;
use crate::affinity::CoreSplit;
use crate::closed_loop::Window;
use crate::scenario::{Protocol, Scenario};
use crate::server::Target;
use crate::stats::Sample;

pub fn run(
    wrk: &Path,
    scenario: &Scenario,
    target: &Target,
    window: Window,
    cores: &CoreSplit,
) -> Result<Sample, Skip> {
    if scenario.protocol == Protocol::H2c {
        return Err(Skip::Missing("wrk has no HTTP/2".into()));
    }
    // One thread per client core; wrk wants at least one connection each.
    let threads = cores.client_threads().min(scenario.in_flight);
    let command = |secs: u64, latency: bool| {
        let mut command = Command::new(wrk);
        command
            .arg(format!("-t{threads}"))
            .arg(format!("-c{}", scenario.in_flight))
            .arg(format!("-d{secs}s"));
        if latency {
            command.arg("--latency");
        }
        command.arg(scenario.url(target));
        command
    };
    let warmup = whole_secs(window.warmup);
    external::run(command(warmup, false), limit(warmup))?;
    let secs = whole_secs(window.measure);
    let ran = external::run(command(secs, true), limit(secs))?;
    parse(&ran.stdout, ran.cpu)
        .ok_or_else(|| Skip::Failed(format!("could not read wrk's output: {}", ran.stdout)))
}

fn limit(secs: u64) -> Duration {
    Duration::from_secs(secs + 30)
}

/// `N requests in 5.00s, ...` and the `50%` / `99%` lines of
/// `Latency Distribution`.
fn parse(out: &str, cpu: Duration) -> Option<Sample> {
    let mut requests = None;
    let mut elapsed_us = None;
    let mut p50 = None;
    let mut p99 = None;
    for line in out.lines().map(str::trim) {
        let words: Vec<&str> = line.split_whitespace().collect();
        match words.as_slice() {
            [n, "requests", "in", secs, ..] => {
                requests = n.parse::<u64>().ok();
                elapsed_us = parse_duration_us(secs.trim_end_matches(','));
            }
            ["50%", value] => p50 = parse_duration_us(value),
            ["99%", value] => p99 = parse_duration_us(value),
            _ => {}
        }
    }
    if out.contains("Non-2xx or 3xx responses") {
        return None;
    }
    let window = Duration::from_secs_f64(elapsed_us? / 1e6);
    Some(Sample::new(requests?, window, cpu, p50?, p99?))
}
