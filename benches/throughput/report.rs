//! The markdown table on stdout and `target/bench/throughput.json`.
//!
//! JSON shape (issue 6), every figure a median across runs:
//!
//! ```text
//! {"scenarios": {"<scenario>": {"<client>": {"rps", "p50_us", "p99_us", "cpu_s_per_100k"}}},
//!  "memory": {"connections": 1000, "clients": {"<client>": {"delta_kib", "per_connection_kib", ...}}},
//!  "targets": [{"target", "met", "checked", "missed", "worst": {"ratio", "at"}}],
//!  "runs": {"<scenario>": {"<client>": [every run's figures]}},
//!  "meta": {window, runs, cores, machine}}
//! ```
//!
//! A client without figures is `{"missing": why}` (not installed, or
//! cannot do the scenario) or `{"error": why}` (it ran and failed).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use serde_json::{json, Map, Value};

use crate::affinity::CoreSplit;
use crate::clients::ClientId;
use crate::config::Config;
use crate::memory::MemoryResult;
use crate::scenario::{Compare, Scenario};
use crate::stats::{self, Sample};
use crate::targets;

/// One client's result in one scenario.
pub enum Outcome {
    Measured { median: Sample, runs: Vec<Sample> },
    Missing(String),
    Failed(String),
}

pub struct ScenarioResult {
    pub scenario: &'static Scenario,
    pub outcomes: Vec<(ClientId, Outcome)>,
}

impl ScenarioResult {
    pub fn median(&self, client: ClientId) -> Option<&Sample> {
        self.outcomes.iter().find_map(|(c, outcome)| match outcome {
            Outcome::Measured { median, .. } if *c == client => Some(median),
            _ => None,
        })
    }
}

/// Everything one bench run found.
pub struct Results {
    meta: Value,
    smoke: bool,
    scenarios: Vec<ScenarioResult>,
    memory: Option<MemoryResult>,
}

/// The peers the ratios divide by, in the issue's order.
const PEERS: &[ClientId] = &[
    ClientId::HyperRaw,
    ClientId::Reqwest,
    ClientId::HyperUtilLegacy,
    ClientId::NodeUndici,
];

impl Results {
    pub fn new(config: &Config, cores: &CoreSplit) -> Results {
        let meta = json!({
            "window_s": config.secs.as_secs_f64(),
            "warmup_s": config.warmup.as_secs_f64(),
            "runs": config.runs,
            "cores": cores.describe(),
            "client_threads": cores.client_threads(),
            "cpu": cpu_model(),
            "kernel": read_trimmed("/proc/sys/kernel/osrelease"),
            "node_undici": node_undici_version(&config.node_undici),
            "unix_time": std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_secs()),
        });
        Results {
            meta,
            smoke: config.runs < 3,
            scenarios: Vec::new(),
            memory: None,
        }
    }

    pub fn push(&mut self, result: ScenarioResult) {
        self.scenarios.push(result);
    }

    pub fn set_memory(&mut self, memory: MemoryResult) {
        self.memory = Some(memory);
    }

    pub fn write_json(&self, out_dir: &Path) -> std::io::Result<PathBuf> {
        std::fs::create_dir_all(out_dir)?;
        let path = out_dir.join("throughput.json");
        let text = serde_json::to_string_pretty(&self.json()).map_err(std::io::Error::other)?;
        std::fs::write(&path, text + "\n")?;
        Ok(path)
    }

    fn json(&self) -> Value {
        let mut scenarios = Map::new();
        let mut runs = Map::new();
        for result in &self.scenarios {
            let mut clients = Map::new();
            let mut client_runs = Map::new();
            for (client, outcome) in &result.outcomes {
                let value = match outcome {
                    Outcome::Measured { median, runs } => {
                        let all = runs.iter().map(sample_json).collect();
                        client_runs.insert(client.name().into(), Value::Array(all));
                        sample_json(median)
                    }
                    Outcome::Missing(why) => json!({ "missing": why }),
                    Outcome::Failed(why) => json!({ "error": why }),
                };
                clients.insert(client.name().into(), value);
            }
            scenarios.insert(result.scenario.name.into(), Value::Object(clients));
            runs.insert(result.scenario.name.into(), Value::Object(client_runs));
        }
        let mut root = Map::new();
        root.insert("scenarios".into(), Value::Object(scenarios));
        if let Some(memory) = &self.memory {
            root.insert("memory".into(), memory_json(memory));
        }
        let checks = targets::check(&self.scenarios, self.memory.as_ref());
        root.insert("targets".into(), targets::json(&checks));
        root.insert("runs".into(), Value::Object(runs));
        root.insert("meta".into(), self.meta.clone());
        Value::Object(root)
    }

    pub fn markdown(&self) -> String {
        let mut md = String::new();
        let meta = &self.meta;
        let _ = writeln!(md, "## undici-bench throughput\n");
        let _ = writeln!(
            md,
            "Median of {} run(s) of {} s after {} s of warm-up, peers in turn; {}; {}.",
            meta["runs"],
            meta["window_s"],
            meta["warmup_s"],
            meta["cores"].as_str().unwrap_or(""),
            meta["cpu"].as_str().unwrap_or("unknown CPU"),
        );
        if self.smoke {
            let _ = writeln!(
                md,
                "\n**Fewer than 3 runs: a smoke run, not figures to quote.**"
            );
        }
        for result in &self.scenarios {
            scenario_table(&mut md, result);
        }
        self.ratio_tables(&mut md);
        if let Some(memory) = &self.memory {
            memory_table(&mut md, memory);
        }
        let checks = targets::check(&self.scenarios, self.memory.as_ref());
        md.push_str(&targets::markdown(&checks));
        md
    }

    fn ratio_tables(&self, md: &mut String) {
        let _ = writeln!(
            md,
            "\n### Ratios: ours / peer (req/s, and CPU per request in parentheses)\n"
        );
        let _ = write!(md, "| scenario | ours |");
        for peer in PEERS {
            let _ = write!(md, " vs {} |", peer.name());
        }
        let _ = writeln!(md, "\n|---|---|{}", "---|".repeat(PEERS.len()));
        let mut baselines = Vec::new();
        for result in &self.scenarios {
            match result.scenario.compare {
                Compare::Peers => {
                    for (client, _) in result.outcomes.iter().filter(|(c, _)| c.is_ours()) {
                        let Some(ours) = result.median(*client) else {
                            continue;
                        };
                        let _ = write!(md, "| {} | {} |", result.scenario.name, client.name());
                        for peer in PEERS {
                            let _ = write!(md, " {} |", ratio(ours, result.median(*peer)));
                        }
                        let _ = writeln!(md);
                    }
                }
                Compare::Baseline { ours, base } => baselines.push((result, ours, base)),
            }
        }
        for (result, ours, base) in baselines {
            let _ = writeln!(
                md,
                "\n{}: {} / {} = {}",
                result.scenario.name,
                ours.name(),
                base.name(),
                result
                    .median(ours)
                    .map_or_else(|| "n/a".to_owned(), |o| ratio(o, result.median(base)))
            );
        }
    }
}

fn scenario_table(md: &mut String, result: &ScenarioResult) {
    let _ = writeln!(
        md,
        "\n### {}: {}\n\n| client | req/s | p50 µs | p99 µs | CPU s / 100k req |\n|---|---:|---:|---:|---:|",
        result.scenario.name, result.scenario.title
    );
    for (client, outcome) in &result.outcomes {
        let _ = match outcome {
            Outcome::Measured { median, .. } => writeln!(
                md,
                "| {} | {} | {:.0} | {:.0} | {:.3} |",
                client.name(),
                thousands(median.rps),
                median.p50_us,
                median.p99_us,
                median.cpu_s_per_100k
            ),
            Outcome::Missing(why) => writeln!(md, "| {} | missing: {why} | | | |", client.name()),
            Outcome::Failed(why) => writeln!(md, "| {} | error: {why} | | | |", client.name()),
        };
    }
}

fn memory_table(md: &mut String, memory: &MemoryResult) {
    let _ = writeln!(
        md,
        "\n### Idle memory: {} keep-alive connections (VmHWM over the baseline, fresh process each)\n\n\
         | client | peak RSS growth KiB | per connection KiB | sockets open | vs hyper-util-legacy |\n|---|---:|---:|---:|---:|",
        memory.connections
    );
    let legacy = memory.per_connection_kib("hyper-util-legacy");
    for (name, result) in &memory.clients {
        let _ = match result {
            Ok(f) => writeln!(
                md,
                "| {name} | {:.0} | {:.2} | {:.0} | {} |",
                f.delta_kib,
                f.per_connection_kib,
                f.sockets,
                legacy
                    .and_then(|l| stats::ratio(f.per_connection_kib, l))
                    .map_or_else(|| "n/a".into(), |r| format!("{r:.2}x"))
            ),
            Err(why) => writeln!(md, "| {name} | error: {why} | | | |"),
        };
    }
}

/// `0.97x (1.03x)`: req/s ratio, CPU-per-request ratio.
fn ratio(ours: &Sample, peer: Option<&Sample>) -> String {
    let ratios = peer.and_then(|peer| {
        stats::ratio(ours.rps, peer.rps).zip(stats::ratio(ours.cpu_s_per_100k, peer.cpu_s_per_100k))
    });
    match ratios {
        Some((rps, cpu)) => format!("{rps:.2}x ({cpu:.2}x)"),
        None => "n/a".into(),
    }
}

fn sample_json(s: &Sample) -> Value {
    json!({
        "rps": round(s.rps, 1),
        "p50_us": round(s.p50_us, 1),
        "p99_us": round(s.p99_us, 1),
        "cpu_s_per_100k": round(s.cpu_s_per_100k, 4),
    })
}

fn memory_json(memory: &MemoryResult) -> Value {
    let mut clients = Map::new();
    for (name, result) in &memory.clients {
        let value = match result {
            Ok(f) => json!({
                "baseline_kib": round(f.baseline_kib, 0),
                "peak_kib": round(f.peak_kib, 0),
                "delta_kib": round(f.delta_kib, 0),
                "per_connection_kib": round(f.per_connection_kib, 2),
                "sockets": f.sockets,
            }),
            Err(why) => json!({ "error": why }),
        };
        clients.insert((*name).into(), value);
    }
    json!({ "connections": memory.connections, "clients": clients })
}

fn round(value: f64, digits: i32) -> f64 {
    let scale = 10f64.powi(digits);
    (value * scale).round() / scale
}

/// `123456.7` as `123,457`.
fn thousands(value: f64) -> String {
    let digits = format!("{:.0}", value);
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i) % 3 == 0 {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn read_trimmed(path: &str) -> String {
    std::fs::read_to_string(path)
        .map(|s| s.trim().to_owned())
        .unwrap_or_default()
}

fn cpu_model() -> String {
    let cpuinfo = read_trimmed("/proc/cpuinfo");
    let model = cpuinfo
        .lines()
        .find_map(|l| {
            l.strip_prefix("model name")?
                .split_once(':')
                .map(|(_, m)| m.trim())
        })
        .unwrap_or("unknown CPU");
    let cores = cpuinfo
        .lines()
        .filter(|l| l.starts_with("processor"))
        .count();
    format!("{model}, {cores} cores")
}

fn node_undici_version(dir: &Path) -> Value {
    std::fs::read_to_string(dir.join("package.json"))
        .ok()
        .and_then(|text| serde_json::from_str::<Value>(&text).ok())
        .and_then(|pkg| pkg.get("version").cloned())
        .unwrap_or(Value::Null)
}
