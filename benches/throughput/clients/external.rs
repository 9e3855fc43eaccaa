//! Running an external tool with a deadline, and reading its numbers.

use std::io::Read;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use super::Skip;
use crate::cpu;

/// What a tool printed, and the CPU time it used (its `RUSAGE_CHILDREN`
/// share: it is the only child that ends while it runs).
pub struct Ran {
    pub stdout: String,
    pub cpu: Duration,
}

/// Runs `command` to its end, killing it after `limit`.
pub fn run(mut command: Command, limit: Duration) -> Result<Ran, Skip> {
    let name = command.get_program().to_string_lossy().into_owned();
    let cpu_before = cpu::children_cpu();
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|err| Skip::Failed(format!("could not start {name}: {err}")))?;
    // Read both pipes on their own threads so a chatty tool never blocks.
    let stdout = child.stdout.take().map(reader);
    let stderr = child.stderr.take().map(reader);
    let deadline = Instant::now() + limit;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if Instant::now() < deadline => std::thread::sleep(Duration::from_millis(20)),
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(Skip::Failed(format!("{name} ran past {limit:?}, killed")));
            }
            Err(err) => return Err(Skip::Failed(format!("waiting for {name}: {err}"))),
        }
    };
    let cpu_used = cpu::children_cpu().saturating_sub(cpu_before);
    let stdout = stdout.map(join).unwrap_or_default();
    let stderr = stderr.map(join).unwrap_or_default();
    if !status.success() {
        let said = if stderr.trim().is_empty() {
            &stdout
        } else {
            &stderr
        };
        return Err(Skip::Failed(format!(
            "{name} exited with {status}: {}",
            said.trim()
        )));
    }
    Ok(Ran {
        stdout,
        cpu: cpu_used,
    })
}

fn reader(mut pipe: impl Read + Send + 'static) -> std::thread::JoinHandle<String> {
    std::thread::spawn(move || {
        let mut text = String::new();
        let _ = pipe.read_to_string(&mut text);
        text
    })
}

fn join(handle: std::thread::JoinHandle<String>) -> String {
    handle.join().unwrap_or_default()
}

/// A duration as the C tools print them (`123.45us`, `1.20ms`, `5.00s`,
/// `1.00m`), in microseconds.
pub fn parse_duration_us(text: &str) -> Option<f64> {
    let text = text.trim();
    let split = text.find(|c: char| !(c.is_ascii_digit() || c == '.'))?;
    let (number, unit) = text.split_at(split);
    let number: f64 = number.parse().ok()?;
    let scale = match unit {
        "ns" => 0.001,
        "us" | "µs" => 1.0,
        "ms" => 1_000.0,
        "s" => 1_000_000.0,
        "m" => 60_000_000.0,
        "h" => 3_600_000_000.0,
        _ => return None,
    };
    Some(number * scale)
}

/// Whole seconds, at least one: wrk and h2load take durations in seconds.
pub fn whole_secs(duration: Duration) -> u64 {
    duration.as_secs_f64().round().max(1.0) as u64
}
