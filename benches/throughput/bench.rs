//! `cargo bench -p undici-bench --bench throughput`: undici side by side
//! with its peers, against one local hyper server in its own process.
//!
//! The same binary plays three parts, chosen by the `UNDICI_BENCH_ROLE`
//! environment variable it sets when it re-executes itself:
//!
//! - no role: the conductor. It starts the server, pins itself to the
//!   client cores, runs every scenario with every peer in turn
//!   (A B A B ...), and writes the markdown table and
//!   `target/bench/throughput.json`;
//! - `server`: the hyper server (HTTP/1.1, h2c, HTTP/1.1 over TLS),
//!   pinned to the other cores;
//! - `memory-probe`: one client holding idle keep-alive connections, in a
//!   fresh process so its peak RSS is its own.
//!
//! Settings come from the environment (see [`config`]): `BENCH_SECS`,
//! `BENCH_WARMUP`, `BENCH_RUNS`, `BENCH_FILTER`, `BENCH_CLIENTS`,
//! `BENCH_MEMORY_CONNECTIONS`. Words on the command line (after `--`) are
//! added to the filter.

mod affinity;
mod clients;
mod closed_loop;
mod config;
mod cpu;
mod memory;
mod report;
mod scenario;
mod server;
mod stats;
mod targets;
mod tls;

use std::process::ExitCode;

use config::{Config, Role};

fn main() -> ExitCode {
    match Role::from_env() {
        Role::Server => server::child_main(),
        Role::MemoryProbe => memory::probe_main(),
        Role::Conductor => conduct(),
    }
}

/// The conductor: every selected scenario, then the memory comparison,
/// then the report.
fn conduct() -> ExitCode {
    let config = Config::from_env_and_args();
    let scenarios: Vec<&str> = scenario::all()
        .iter()
        .map(|s| s.name)
        .chain([memory::SCENARIO])
        .collect();
    // Every name a run can select: the scenarios' clients and the memory
    // comparison's.
    let mut client_names: Vec<&str> = scenario::all()
        .iter()
        .flat_map(|s| s.clients.iter().map(|c| c.name()))
        .chain(memory::CLIENTS.iter().copied())
        .collect();
    client_names.sort_unstable();
    client_names.dedup();
    if let Err(why) = config.check(&scenarios, &client_names) {
        eprintln!("undici-bench: {why}");
        return ExitCode::FAILURE;
    }
    let cores = affinity::CoreSplit::detect(config.pin);
    affinity::raise_open_files_limit();

    let server = match server::ServerProcess::spawn(&cores, &config.out_dir) {
        Ok(server) => server,
        Err(err) => {
            eprintln!("undici-bench: the server did not start: {err}");
            return ExitCode::FAILURE;
        }
    };
    // Pinned only now: the server child pins itself to its own cores, and
    // everything started from here on (wrk, h2load, node, memory probes)
    // inherits the client cores.
    cores.pin_self_to_client_cores();
    eprintln!("undici-bench: {}", cores.describe());

    let peers = clients::Peers::discover(&config);
    let mut results = report::Results::new(&config, &cores);
    for scenario in scenario::all().iter().filter(|s| config.selects(s.name)) {
        results.push(clients::run_scenario(
            scenario,
            server.target(),
            &peers,
            &config,
            &cores,
        ));
    }
    if config.selects(memory::SCENARIO) {
        results.set_memory(memory::compare(server.target(), &config));
    }
    drop(server);

    println!("{}", results.markdown());
    match results.write_json(&config.out_dir) {
        Ok(path) => {
            eprintln!("undici-bench: wrote {}", path.display());
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("undici-bench: could not write the JSON report: {err}");
            ExitCode::FAILURE
        }
    }
}
