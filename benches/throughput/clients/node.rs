//! Node's undici (npm, undici@7: the line that runs on Node 20), through
//! `benches/node/bench.cjs`.
//!
//! The script runs the same closed loop as the Rust clients: N
//! `dispatch()` calls in flight on a `Pool` (an `H2CClient` for h2c), a
//! warm-up, then the window. It measures inside the process: latencies
//! with `process.hrtime`, CPU with `process.cpuUsage()` (its own
//! `getrusage`) over exactly the window, so Node's start and JIT warm-up
//! are not counted, as the Rust clients' runtime start is not.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use serde_json::Value;

use super::external;
use super::Skip;
use crate::closed_loop::Window;
use crate::scenario::{Protocol, Scenario};
use crate::server::Target;
use crate::stats::Sample;

/// `node` and the undici package it loads.
pub struct Node {
    node: PathBuf,
    undici: PathBuf,
    script: PathBuf,
}

impl Node {
    pub fn discover(undici: &Path) -> Result<Node, String> {
        let node = super::find_program("node").ok_or("node not installed")?;
        if !undici.join("package.json").is_file() {
            return Err(format!(
                "undici not installed at {} (scripts/bench.sh installs undici@7 there)",
                undici.display()
            ));
        }
        Ok(Node {
            node,
            undici: undici.to_path_buf(),
            script: Path::new(env!("CARGO_MANIFEST_DIR")).join("node/bench.cjs"),
        })
    }

    pub fn run(
        &self,
        scenario: &Scenario,
        target: &Target,
        window: Window,
    ) -> Result<Sample, Skip> {
        let protocol = match scenario.protocol {
            Protocol::Http1 => "h1",
            Protocol::H2c => "h2c",
            Protocol::Tls => "tls",
        };
        let mut command = Command::new(&self.node);
        command
            .arg(&self.script)
            .env("UNDICI_MODULE", &self.undici)
            .env("BENCH_ORIGIN", scenario.origin(target))
            .env("BENCH_PATH", scenario.path())
            .env("BENCH_PROTOCOL", protocol)
            .env("BENCH_IN_FLIGHT", scenario.in_flight.to_string())
            .env("BENCH_BODY_LEN", scenario.body_len.to_string())
            .env("BENCH_CA_FILE", &target.ca_file)
            .env("BENCH_WARMUP_MS", window.warmup.as_millis().to_string())
            .env("BENCH_WINDOW_MS", window.measure.as_millis().to_string());
        let limit = window.warmup + window.measure + Duration::from_secs(30);
        let ran = external::run(command, limit)?;
        parse(&ran.stdout)
    }
}

/// The script's last line: `{"requests", "secs", "p50_us", "p99_us",
/// "cpu_s"}`, or `{"missing": why}`.
fn parse(out: &str) -> Result<Sample, Skip> {
    let line = out.lines().rev().find(|l| l.trim_start().starts_with('{'));
    let value: Value = line
        .and_then(|l| serde_json::from_str(l).ok())
        .ok_or_else(|| Skip::Failed(format!("no result from bench.cjs: {out}")))?;
    if let Some(why) = value.get("missing").and_then(Value::as_str) {
        return Err(Skip::Missing(why.to_owned()));
    }
    let number = |key: &str| {
        value
            .get(key)
            .and_then(Value::as_f64)
            .ok_or_else(|| Skip::Failed(format!("bench.cjs gave no {key}: {out}")))
    };
    Ok(Sample::new(
        number("requests")? as u64,
        Duration::from_secs_f64(number("secs")?),
        Duration::from_secs_f64(number("cpu_s")?),
        number("p50_us")?,
        number("p99_us")?,
    ))
}
