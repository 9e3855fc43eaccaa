//! Server and clients on different cores, and enough file descriptors.
//!
//! With two or more cores the server gets the upper half and the clients
//! the lower half, so a client's CPU time and the server's do not steal
//! from each other and the per-request CPU figure is the client's alone.
//! A process pins itself before it starts its threads: Linux threads and
//! child processes inherit the mask.

use rustix::process::{getrlimit, setrlimit, Resource, Rlimit};
use rustix::thread::{sched_getaffinity, sched_setaffinity, CpuSet};

/// Which cores the server and the clients run on.
#[derive(Clone, Debug)]
pub struct CoreSplit {
    pub client: Vec<usize>,
    pub server: Vec<usize>,
    pub pinned: bool,
}

impl CoreSplit {
    /// The cores this process may run on, split in two when there are at
    /// least two and `pin` is on.
    pub fn detect(pin: bool) -> CoreSplit {
        let allowed = allowed_cores();
        if !pin || allowed.len() < 2 {
            return CoreSplit {
                client: allowed.clone(),
                server: allowed,
                pinned: false,
            };
        }
        let (client, server) = allowed.split_at(allowed.len() / 2);
        CoreSplit {
            client: client.to_vec(),
            server: server.to_vec(),
            pinned: true,
        }
    }

    /// Pins the calling thread (and so every thread and child it starts
    /// later) to the client cores.
    pub fn pin_self_to_client_cores(&self) {
        if self.pinned {
            pin_self(&self.client);
        }
    }

    /// Worker threads for a client runtime: one per client core.
    pub fn client_threads(&self) -> usize {
        self.client.len().max(1)
    }

    pub fn describe(&self) -> String {
        if self.pinned {
            format!(
                "client cores {:?}, server cores {:?}",
                self.client, self.server
            )
        } else {
            format!("not pinned, cores {:?} shared", self.client)
        }
    }
}

/// Pins the calling thread to `cores`; a failure is reported and the run
/// goes on unpinned.
pub fn pin_self(cores: &[usize]) {
    let mut set = CpuSet::new();
    for &core in cores {
        if core >= CpuSet::MAX_CPU {
            eprintln!("undici-bench: core {core} is out of range, not pinned");
            return;
        }
        set.set(core);
    }
    if let Err(err) = sched_setaffinity(None, &set) {
        eprintln!("undici-bench: could not pin to cores {cores:?}: {err}");
    }
}

/// Parses a core list as written by [`format_cores`] (`"0,1"`).
pub fn parse_cores(list: &str) -> Vec<usize> {
    list.split(',')
        .filter_map(|c| c.trim().parse().ok())
        .collect()
}

pub fn format_cores(cores: &[usize]) -> String {
    cores
        .iter()
        .map(usize::to_string)
        .collect::<Vec<_>>()
        .join(",")
}

/// Raises the soft limit on open files to the hard one: the memory
/// comparison holds 1000 connections in each process, more than the
/// common soft limit of 1024 with everything else open.
pub fn raise_open_files_limit() {
    let limit = getrlimit(Resource::Nofile);
    // `None` is unlimited.
    let below_hard = match (limit.current, limit.maximum) {
        (Some(soft), Some(hard)) => soft < hard,
        (Some(_), None) => true,
        (None, _) => false,
    };
    if below_hard {
        let raised = Rlimit {
            current: limit.maximum,
            maximum: limit.maximum,
        };
        let _ = setrlimit(Resource::Nofile, raised);
    }
}

fn allowed_cores() -> Vec<usize> {
    match sched_getaffinity(None) {
        Ok(set) => (0..CpuSet::MAX_CPU)
            .filter(|&core| set.is_set(core))
            .collect(),
        Err(_) => (0..std::thread::available_parallelism().map_or(1, |n| n.get())).collect(),
    }
}
