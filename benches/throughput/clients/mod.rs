//! The peers, and running one scenario with all of them in turn.
//!
//! In-process clients (ours, reqwest, hyper-util's legacy Client, raw
//! hyper) each get a fresh tokio runtime per run, with one worker thread
//! per client core, and go through the same [`closed_loop`]. External
//! tools (wrk, h2load, Node's undici) run as child processes on the client
//! cores. A peer that is not installed is reported as missing.

pub mod external;
mod h2load;
mod hyper_raw;
mod hyper_util_legacy;
mod node;
mod reqwest;
mod undici;
mod wrk;

use std::path::{Path, PathBuf};
use std::time::Duration;

use bytes::Buf;
use http_body::Body;
use http_body_util::BodyExt;

use crate::affinity::CoreSplit;
use crate::closed_loop::{self, BoxError, Window, Worker};
use crate::config::Config;
use crate::report::{Outcome, ScenarioResult};
use crate::scenario::Scenario;
use crate::server::Target;
use crate::stats::{self, Sample};

pub use hyper_util_legacy::http_connector;
use undici::{Api, Front};

/// Every client, named as in the JSON report.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ClientId {
    /// `DispatcherExt::request` on a `Pool`.
    UndiciRequest,
    /// `DispatcherExt::dispatch` with a `Handler` on a `Pool`.
    UndiciDispatch,
    /// `request` on an `Agent`.
    UndiciRequestAgent,
    /// `dispatch` on an `Agent`.
    UndiciDispatchAgent,
    /// `request` on an `Agent` composed with the five interceptors.
    UndiciRequestAgentInterceptors,
    Reqwest,
    HyperUtilLegacy,
    /// hyper's `client::conn`, one connection per worker.
    HyperRaw,
    Wrk,
    H2load,
    /// Node's undici `dispatch()` on a `Pool` (an `H2CClient` for h2c).
    NodeUndici,
}

impl ClientId {
    pub fn name(self) -> &'static str {
        match self {
            ClientId::UndiciRequest => "undici-request",
            ClientId::UndiciDispatch => "undici-dispatch",
            ClientId::UndiciRequestAgent => "undici-request-agent",
            ClientId::UndiciDispatchAgent => "undici-dispatch-agent",
            ClientId::UndiciRequestAgentInterceptors => "undici-request-agent-interceptors",
            ClientId::Reqwest => "reqwest",
            ClientId::HyperUtilLegacy => "hyper-util-legacy",
            ClientId::HyperRaw => "hyper-raw",
            ClientId::Wrk => "wrk",
            ClientId::H2load => "h2load",
            ClientId::NodeUndici => "node-undici",
        }
    }

    /// This project's clients, the ones the ratios are about.
    pub fn is_ours(self) -> bool {
        matches!(
            self,
            ClientId::UndiciRequest
                | ClientId::UndiciDispatch
                | ClientId::UndiciRequestAgent
                | ClientId::UndiciDispatchAgent
                | ClientId::UndiciRequestAgentInterceptors
        )
    }
}

/// Why a client has no figure.
pub enum Skip {
    /// Not installed, or cannot do this scenario.
    Missing(String),
    /// Ran and broke.
    Failed(String),
}

impl Skip {
    pub fn reason(self) -> String {
        match self {
            Skip::Missing(why) | Skip::Failed(why) => why,
        }
    }
}

/// The optional peers found on this machine.
pub struct Peers {
    wrk: Result<PathBuf, String>,
    h2load: Result<PathBuf, String>,
    node: Result<node::Node, String>,
}

impl Peers {
    pub fn discover(config: &Config) -> Peers {
        Peers {
            wrk: find_program("wrk").ok_or_else(|| "wrk not installed".to_owned()),
            h2load: find_program("h2load")
                .ok_or_else(|| "h2load not installed (Debian: nghttp2-client)".to_owned()),
            node: node::Node::discover(&config.node_undici),
        }
    }

    fn missing(&self, client: ClientId) -> Option<&str> {
        match client {
            ClientId::Wrk => self.wrk.as_ref().err(),
            ClientId::H2load => self.h2load.as_ref().err(),
            ClientId::NodeUndici => self.node.as_ref().err(),
            _ => None,
        }
        .map(String::as_str)
    }
}

/// Runs `scenario`'s clients in turn, `config.runs` times over, and keeps
/// each client's median.
pub fn run_scenario(
    scenario: &'static Scenario,
    target: &Target,
    peers: &Peers,
    config: &Config,
    cores: &CoreSplit,
) -> ScenarioResult {
    let clients: Vec<ClientId> = scenario
        .clients
        .iter()
        .copied()
        .filter(|c| config.runs_client(c.name()))
        .collect();
    let mut samples: Vec<Vec<Sample>> = vec![Vec::new(); clients.len()];
    let mut skipped: Vec<Option<Skip>> = clients
        .iter()
        .map(|&c| peers.missing(c).map(|why| Skip::Missing(why.to_owned())))
        .collect();
    let window = Window {
        warmup: config.warmup,
        measure: config.secs,
        requests: config.requests,
    };

    for run in 1..=config.runs {
        for (i, &client) in clients.iter().enumerate() {
            if skipped[i].is_some() {
                continue;
            }
            eprint!(
                "undici-bench: {} {} run {run}/{} ... ",
                scenario.name,
                client.name(),
                config.runs
            );
            match measure_guarded(client, scenario, target, peers, window, cores) {
                Ok(sample) => {
                    eprintln!(
                        "{:.0} req/s, p50 {:.0} us, p99 {:.0} us, {:.2} CPU s/100k",
                        sample.rps, sample.p50_us, sample.p99_us, sample.cpu_s_per_100k
                    );
                    samples[i].push(sample);
                }
                Err(Skip::Missing(why)) => {
                    eprintln!("missing: {why}");
                    skipped[i] = Some(Skip::Missing(why));
                }
                Err(Skip::Failed(why)) => {
                    eprintln!("failed: {why}");
                    skipped[i] = Some(Skip::Failed(why));
                }
            }
        }
    }

    let outcomes = clients
        .iter()
        .zip(samples)
        .zip(skipped)
        .map(|((&client, samples), skip)| {
            let outcome = match skip {
                Some(Skip::Missing(why)) => Outcome::Missing(why),
                Some(Skip::Failed(why)) => Outcome::Failed(why),
                None => Outcome::Measured {
                    median: stats::median(&samples),
                    runs: samples,
                },
            };
            (client, outcome)
        })
        .collect();
    ScenarioResult { scenario, outcomes }
}

/// [`measure`], with a client's panic turned into a failed run: one
/// broken peer must not take the whole bench down.
fn measure_guarded(
    client: ClientId,
    scenario: &Scenario,
    target: &Target,
    peers: &Peers,
    window: Window,
    cores: &CoreSplit,
) -> Result<Sample, Skip> {
    let run = || measure(client, scenario, target, peers, window, cores);
    std::panic::catch_unwind(std::panic::AssertUnwindSafe(run)).unwrap_or_else(|panic| {
        let message = panic
            .downcast_ref::<&str>()
            .map(|s| s.to_string())
            .or_else(|| panic.downcast_ref::<String>().cloned())
            .unwrap_or_else(|| "no message".into());
        Err(Skip::Failed(format!("panicked: {message}")))
    })
}

fn measure(
    client: ClientId,
    scenario: &Scenario,
    target: &Target,
    peers: &Peers,
    window: Window,
    cores: &CoreSplit,
) -> Result<Sample, Skip> {
    match client {
        ClientId::Wrk => wrk::run(installed(&peers.wrk)?, scenario, target, window, cores),
        ClientId::H2load => h2load::run(installed(&peers.h2load)?, scenario, target, window),
        ClientId::NodeUndici => match &peers.node {
            Ok(node) => node.run(scenario, target, window),
            Err(why) => Err(Skip::Missing(why.clone())),
        },
        _ => in_process(client, scenario, target, window, cores.client_threads())
            .map_err(Skip::Failed),
    }
}

/// The tool's path, or why it is missing.
fn installed(tool: &Result<PathBuf, String>) -> Result<&Path, Skip> {
    tool.as_deref().map_err(|why| Skip::Missing(why.clone()))
}

/// One run of an in-process client on a runtime of its own.
fn in_process(
    client: ClientId,
    scenario: &Scenario,
    target: &Target,
    window: Window,
    threads: usize,
) -> Result<Sample, String> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(threads)
        .enable_all()
        .build()
        .map_err(|err| format!("no runtime: {err}"))?;
    let result = runtime.block_on(async {
        match client {
            ClientId::UndiciRequest => {
                undici::run(Front::Pool, Api::Request, scenario, target, window).await
            }
            ClientId::UndiciDispatch => {
                undici::run(Front::Pool, Api::Dispatch, scenario, target, window).await
            }
            ClientId::UndiciRequestAgent => {
                undici::run(Front::Agent, Api::Request, scenario, target, window).await
            }
            ClientId::UndiciDispatchAgent => {
                undici::run(Front::Agent, Api::Dispatch, scenario, target, window).await
            }
            ClientId::UndiciRequestAgentInterceptors => {
                let front = Front::AgentWithInterceptors;
                undici::run(front, Api::Request, scenario, target, window).await
            }
            ClientId::Reqwest => reqwest::run(scenario, target, window).await,
            ClientId::HyperUtilLegacy => hyper_util_legacy::run(scenario, target, window).await,
            ClientId::HyperRaw => hyper_raw::run(scenario, target, window).await,
            ClientId::Wrk | ClientId::H2load | ClientId::NodeUndici => {
                Err(format!("{} is not an in-process client", client.name()))
            }
        }
    });
    runtime.shutdown_timeout(Duration::from_secs(1));
    result
}

/// Builds `n` workers with `make` and runs them through `window`.
async fn run_workers<W, F>(n: usize, mut make: F, window: Window) -> Result<Sample, String>
where
    W: Worker,
    F: FnMut() -> W,
{
    closed_loop::run((0..n).map(|_| make()).collect(), window).await
}

/// Reads a body to its end, frame by frame, dropping the bytes: every
/// peer reads its bodies the same way, and none collects them.
pub async fn drain<B>(mut body: B, expected: usize) -> Result<(), BoxError>
where
    B: Body + Unpin,
    B::Error: Into<BoxError>,
{
    let mut len = 0;
    while let Some(frame) = body.frame().await {
        if let Some(data) = frame.map_err(Into::into)?.data_ref() {
            len += data.remaining();
        }
    }
    check_len(len, expected)
}

/// A client that read a short body would look fast; this catches it.
pub fn check_len(len: usize, expected: usize) -> Result<(), BoxError> {
    if len == expected {
        Ok(())
    } else {
        Err(format!("read {len} body bytes, expected {expected}").into())
    }
}

/// `name` on `PATH`.
fn find_program(name: &str) -> Option<PathBuf> {
    let path = std::env::var_os("PATH")?;
    std::env::split_paths(&path)
        .map(|dir| dir.join(name))
        .find(|candidate| is_executable(candidate))
}

fn is_executable(path: &Path) -> bool {
    use std::os::unix::fs::PermissionsExt;
    path.metadata()
        .map(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        .unwrap_or(false)
}
