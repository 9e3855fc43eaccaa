//! What to run and for how long, from the environment and the command line.
//!
//! Environment variables, so that `scripts/bench.sh` and a smoke run in CI
//! can set them without fighting cargo's argument passing:
//!
//! | variable | default | meaning |
//! |---|---|---|
//! | `BENCH_SECS` | 5 | the measured window of one run, in seconds |
//! | `BENCH_WARMUP` | 1 | the warm-up before each window, in seconds |
//! | `BENCH_RUNS` | 3 | runs per peer and scenario; each figure is their median |
//! | `BENCH_FILTER` | all | comma-separated substrings of scenario names (`memory` selects the memory comparison; `=name` selects only that scenario) |
//! | `BENCH_CLIENTS` | all | comma-separated client names to run |
//! | `BENCH_MEMORY_CONNECTIONS` | 1000 | idle connections in the memory comparison |
//! | `BENCH_REQUESTS` | unset | profiling: each in-process run sends exactly this many requests, no warm-up, no window |
//! | `BENCH_NO_PIN` | unset | set to skip pinning server and clients to cores |
//! | `BENCH_NODE_UNDICI` | `target/bench/node/node_modules/undici` | Node's undici package |

use std::env;
use std::path::PathBuf;
use std::time::Duration;

/// The variable the bench sets when it re-executes itself in another part.
pub const ROLE_VAR: &str = "UNDICI_BENCH_ROLE";

/// Which part this process plays.
pub enum Role {
    Conductor,
    Server,
    MemoryProbe,
}

impl Role {
    pub fn from_env() -> Role {
        match env::var(ROLE_VAR).as_deref() {
            Ok("server") => Role::Server,
            Ok("memory-probe") => Role::MemoryProbe,
            _ => Role::Conductor,
        }
    }
}

/// The conductor's settings.
pub struct Config {
    pub secs: Duration,
    pub warmup: Duration,
    pub runs: usize,
    pub filter: Vec<String>,
    pub clients: Vec<String>,
    pub memory_connections: usize,
    /// Profiling: a fixed number of requests per run instead of a window.
    pub requests: Option<u64>,
    pub pin: bool,
    /// `target/bench`: the JSON report, the CA file, Node's undici.
    pub out_dir: PathBuf,
    /// Where Node's undici package is.
    pub node_undici: PathBuf,
}

impl Config {
    pub fn from_env_and_args() -> Config {
        let mut filter = list("BENCH_FILTER");
        // cargo passes `--bench` to a harness = false target; every other
        // word is a scenario filter.
        filter.extend(env::args().skip(1).filter(|arg| !arg.starts_with("--")));
        let out_dir = target_dir().join("bench");
        Config {
            secs: seconds("BENCH_SECS", 5.0),
            warmup: seconds("BENCH_WARMUP", 1.0),
            runs: number("BENCH_RUNS", 3).max(1),
            filter,
            clients: list("BENCH_CLIENTS"),
            memory_connections: number("BENCH_MEMORY_CONNECTIONS", 1000).max(1),
            requests: env::var("BENCH_REQUESTS").ok().and_then(|v| v.parse().ok()),
            pin: env::var_os("BENCH_NO_PIN").is_none(),
            node_undici: env::var_os("BENCH_NODE_UNDICI")
                .map(PathBuf::from)
                .unwrap_or_else(|| out_dir.join("node/node_modules/undici")),
            out_dir,
        }
    }

    /// Whether the filter selects the scenario `name`.
    pub fn selects(&self, name: &str) -> bool {
        self.filter.is_empty() || self.filter.iter().any(|word| selects(word, name))
    }

    /// Names in `BENCH_CLIENTS` that are no client, and words of the
    /// scenario filter that select nothing: a typo would otherwise run
    /// nothing and report an empty table.
    pub fn check(&self, scenarios: &[&str], clients: &[&str]) -> Result<(), String> {
        let known = |names: &[&str]| names.join(", ");
        if let Some(unknown) = self.clients.iter().find(|c| !clients.contains(&c.as_str())) {
            return Err(format!(
                "BENCH_CLIENTS names no client `{unknown}`; the clients: {}",
                known(clients)
            ));
        }
        let selects_nothing = |word: &&String| !scenarios.iter().any(|name| selects(word, name));
        if let Some(word) = self.filter.iter().find(selects_nothing) {
            return Err(format!(
                "the scenario filter `{word}` selects nothing; the scenarios: {}",
                known(scenarios)
            ));
        }
        Ok(())
    }

    /// Whether the client filter selects the client `name`.
    pub fn runs_client(&self, name: &str) -> bool {
        self.clients.is_empty() || self.clients.iter().any(|c| c == name)
    }
}

/// Whether one word of the scenario filter selects the scenario `name`:
/// `=name` exactly, any other word as a part of the name.
fn selects(word: &str, name: &str) -> bool {
    match word.strip_prefix('=') {
        Some(exact) => name == exact,
        None => name.contains(word),
    }
}

/// cargo's target directory: `CARGO_TARGET_DIR`, else the one this binary
/// was built into (`<target>/release/deps/throughput-<hash>`).
fn target_dir() -> PathBuf {
    if let Some(dir) = env::var_os("CARGO_TARGET_DIR") {
        return PathBuf::from(dir);
    }
    env::current_exe()
        .ok()
        .and_then(|exe| exe.ancestors().nth(3).map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../target")))
}

fn list(var: &str) -> Vec<String> {
    env::var(var)
        .unwrap_or_default()
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .map(String::from)
        .collect()
}

fn seconds(var: &str, default: f64) -> Duration {
    let secs = env::var(var)
        .ok()
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s > 0.0)
        .unwrap_or(default);
    Duration::from_secs_f64(secs)
}

fn number(var: &str, default: usize) -> usize {
    env::var(var)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(default)
}
