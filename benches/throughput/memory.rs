//! Peak RSS with 1000 idle keep-alive connections: ours against
//! hyper-util's legacy Client (and reqwest, which is built anyway).
//!
//! Each client runs in a fresh process (this binary, re-executed as a
//! `memory-probe`), so what it measures is that client alone and not the
//! heap left behind by earlier scenarios. The probe makes one request
//! (runtime, client and one connection up), reads `VmHWM` from
//! `/proc/self/status` as its baseline, then sends 1000 requests at once
//! to `/hold/<token>/1000`, which the server answers only when all 1000
//! have arrived, so the client must open 1000 connections. Once every
//! body is read and the connections sit idle in the pool, it reads
//! `VmHWM` again and counts its open sockets.

use std::future::Future;
use std::process::{Command, ExitCode};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::Empty;
use serde_json::{json, Value};
use undici_dispatcher::{Body, DispatcherExt, Pool};

use crate::clients::{drain, external};
use crate::closed_loop::{chain, BoxError};
use crate::config::{Config, ROLE_VAR};
use crate::server::Target;
use crate::stats::median_of;

/// The filter word and the JSON key of the comparison.
pub const SCENARIO: &str = "memory";

/// The clients compared, as named in the report.
pub const CLIENTS: &[&str] = &["undici-pool", "hyper-util-legacy", "reqwest"];

const CLIENT_VAR: &str = "UNDICI_BENCH_PROBE_CLIENT";
const ORIGIN_VAR: &str = "UNDICI_BENCH_PROBE_ORIGIN";
const CONNECTIONS_VAR: &str = "UNDICI_BENCH_PROBE_CONNECTIONS";

/// One client's figures, medians across runs.
pub struct Footprint {
    /// `VmHWM` after the first request.
    pub baseline_kib: f64,
    /// `VmHWM` with all connections open.
    pub peak_kib: f64,
    /// `peak_kib - baseline_kib`: what the connections cost.
    pub delta_kib: f64,
    pub per_connection_kib: f64,
    /// Sockets open at the end, to check that there were `connections`.
    pub sockets: f64,
}

pub struct MemoryResult {
    pub connections: usize,
    pub clients: Vec<(&'static str, Result<Footprint, String>)>,
}

impl MemoryResult {
    /// The per-connection figure of `client`, when its probe worked.
    pub fn per_connection_kib(&self, client: &str) -> Option<f64> {
        self.clients.iter().find_map(|(name, result)| match result {
            Ok(f) if *name == client => Some(f.per_connection_kib),
            _ => None,
        })
    }
}

/// Runs every probe `config.runs` times, in turn.
pub fn compare(target: &Target, config: &Config) -> MemoryResult {
    let n = config.memory_connections;
    let mut runs: Vec<Vec<Value>> = vec![Vec::new(); CLIENTS.len()];
    let mut failed: Vec<Option<String>> = vec![None; CLIENTS.len()];
    for run in 1..=config.runs {
        for (i, client) in CLIENTS.iter().enumerate() {
            if failed[i].is_some() || !config.runs_client(client) {
                continue;
            }
            eprint!(
                "undici-bench: memory {client} run {run}/{} ... ",
                config.runs
            );
            match probe(client, target, n) {
                Ok(value) => {
                    eprintln!("{value}");
                    runs[i].push(value);
                }
                Err(why) => {
                    eprintln!("failed: {why}");
                    failed[i] = Some(why);
                }
            }
        }
    }
    let clients = CLIENTS
        .iter()
        .zip(runs.into_iter().zip(failed))
        .filter(|(client, _)| config.runs_client(client))
        .map(|(&client, (runs, failed))| {
            let outcome = match failed {
                Some(why) => Err(why),
                None => Ok(footprint(&runs, n)),
            };
            (client, outcome)
        })
        .collect();
    MemoryResult {
        connections: n,
        clients,
    }
}

fn footprint(runs: &[Value], n: usize) -> Footprint {
    let of = |key: &str| median_of(runs.iter().filter_map(|r| r[key].as_f64()).collect());
    let peak = of("peak_kib");
    let baseline = of("baseline_kib");
    Footprint {
        baseline_kib: baseline,
        peak_kib: peak,
        delta_kib: peak - baseline,
        per_connection_kib: (peak - baseline) / n as f64,
        sockets: of("sockets"),
    }
}

fn probe(client: &str, target: &Target, n: usize) -> Result<Value, String> {
    let exe = std::env::current_exe().map_err(|e| e.to_string())?;
    let mut command = Command::new(exe);
    command
        .env(ROLE_VAR, "memory-probe")
        .env(CLIENT_VAR, client)
        .env(ORIGIN_VAR, format!("http://{}", target.h1))
        .env(CONNECTIONS_VAR, n.to_string());
    let ran = external::run(command, Duration::from_secs(120)).map_err(|skip| skip.reason())?;
    let line = ran.stdout.lines().last().unwrap_or_default();
    serde_json::from_str(line).map_err(|_| format!("the probe said {:?}", ran.stdout))
}

/// The probe process's `main`: prints one JSON line.
pub fn probe_main() -> ExitCode {
    crate::affinity::raise_open_files_limit();
    let client = std::env::var(CLIENT_VAR).unwrap_or_default();
    let origin = std::env::var(ORIGIN_VAR).unwrap_or_default();
    let n: usize = std::env::var(CONNECTIONS_VAR)
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    // The same runtime as the throughput runs: one worker per core the
    // probe may run on (the client cores, inherited).
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(std::thread::available_parallelism().map_or(1, |n| n.get()))
        .enable_all()
        .build();
    let result = match runtime {
        Ok(runtime) => runtime.block_on(run_probe(&client, &origin, n)),
        Err(err) => Err(err.into()),
    };
    match result {
        Ok(value) => {
            println!("{value}");
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("memory probe {client}: {}", chain(&*err));
            ExitCode::FAILURE
        }
    }
}

async fn run_probe(client: &str, origin: &str, n: usize) -> Result<Value, BoxError> {
    // Long enough that no connection expires while the probe looks.
    let idle = Duration::from_secs(120);
    match client {
        "undici-pool" => {
            let pool = Pool::builder().keep_alive_timeout(idle).build(origin)?;
            hold_open(n, move |path| {
                let pool = pool.clone();
                async move {
                    let request = http::Request::get(path).body(Body::empty())?;
                    let response = pool.request(request).await?;
                    drain(response.into_body(), 12).await
                }
            })
            .await
        }
        "hyper-util-legacy" => {
            let client =
                hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
                    .pool_idle_timeout(idle)
                    .build(crate::clients::http_connector());
            let origin = origin.to_owned();
            hold_open(n, move |path| {
                let client = client.clone();
                let uri = format!("{origin}{path}");
                async move {
                    let request = http::Request::get(uri).body(Empty::<Bytes>::new())?;
                    let response = client.request(request).await?;
                    drain(response.into_body(), 12).await
                }
            })
            .await
        }
        "reqwest" => {
            let client = reqwest::Client::builder()
                .no_proxy()
                .pool_idle_timeout(idle)
                .http1_only()
                .tls_backend_preconfigured(crate::tls::client_config(b"", &[])?)
                .build()?;
            let origin = origin.to_owned();
            hold_open(n, move |path| {
                let client = client.clone();
                let url = format!("{origin}{path}");
                async move {
                    let body = client.get(url).send().await?.bytes().await?;
                    crate::clients::check_len(body.len(), 12)
                }
            })
            .await
        }
        other => Err(format!("no memory probe for {other:?}").into()),
    }
}

/// The measurement around `get`, which sends a GET for a path and reads
/// its body.
async fn hold_open<F, Fut>(n: usize, get: F) -> Result<Value, BoxError>
where
    F: Fn(String) -> Fut,
    Fut: Future<Output = Result<(), BoxError>> + Send + 'static,
{
    get("/12".to_owned()).await?;
    let baseline = status_kib("VmHWM")?;
    let path = format!("/hold/{}/{n}", std::process::id());
    let requests: Vec<_> = (0..n).map(|_| tokio::spawn(get(path.clone()))).collect();
    for request in requests {
        request.await??;
    }
    // Let connection tasks settle back into their pools.
    tokio::time::sleep(Duration::from_millis(200)).await;
    Ok(json!({
        "baseline_kib": baseline,
        "peak_kib": status_kib("VmHWM")?,
        "rss_kib": status_kib("VmRSS")?,
        "sockets": open_sockets(),
    }))
}

/// A `kB` line of `/proc/self/status`.
fn status_kib(key: &str) -> Result<u64, BoxError> {
    let status = std::fs::read_to_string("/proc/self/status")?;
    status
        .lines()
        .find_map(|line| {
            let rest = line.strip_prefix(key)?.strip_prefix(':')?;
            rest.trim().trim_end_matches("kB").trim().parse().ok()
        })
        .ok_or_else(|| format!("no {key} in /proc/self/status").into())
}

/// Sockets this process holds open: the connections, checked against n.
fn open_sockets() -> usize {
    std::fs::read_dir("/proc/self/fd")
        .map(|dir| {
            dir.filter_map(Result::ok)
                .filter_map(|entry| std::fs::read_link(entry.path()).ok())
                .filter(|target| target.to_string_lossy().starts_with("socket:"))
                .count()
        })
        .unwrap_or(0)
}
