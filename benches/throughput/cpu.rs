//! CPU time (user + system), as `getrusage` counts it.
//!
//! - In-process clients: this process's CPU clock
//!   (`CLOCK_PROCESS_CPUTIME_ID`, the sum over all threads that
//!   `RUSAGE_SELF` reports, to the nanosecond) around the window. The
//!   server is another process, so all of it is the client's.
//! - External tools (wrk, h2load): the `RUSAGE_CHILDREN` totals, read from
//!   `/proc/self/stat` (`cutime`, `cstime`, in clock ticks), around one
//!   run: the tool is the only child that ends in between (the server
//!   child lives until the end).
//!
//! Both without unsafe code and without `nix`, whose `libc` features
//! would spread to every crate of `cargo test --workspace`.

use std::time::Duration;

use rustix::time::{clock_gettime, ClockId};

/// CPU time this process has used so far, all threads.
pub fn self_cpu() -> Duration {
    let now = clock_gettime(ClockId::ProcessCPUTime);
    Duration::new(
        now.tv_sec.max(0) as u64,
        now.tv_nsec.clamp(0, 999_999_999) as u32,
    )
}

/// CPU time of this process's children that ended and were waited for.
pub fn children_cpu() -> Duration {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return Duration::ZERO;
    };
    // The command name (field 2) is in parentheses and may hold spaces;
    // the fields after it start at field 3 (`state`).
    let Some((_, after_name)) = stat.rsplit_once(')') else {
        return Duration::ZERO;
    };
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // cutime and cstime are fields 16 and 17, so 13 and 14 from `state`.
    let ticks: u64 = [13, 14]
        .iter()
        .filter_map(|&i| fields.get(i)?.parse::<u64>().ok())
        .sum();
    let per_second = rustix::param::clock_ticks_per_second().max(1);
    Duration::from_nanos(ticks.saturating_mul(1_000_000_000) / per_second)
}
