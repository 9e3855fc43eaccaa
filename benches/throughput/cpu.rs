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

/// CPU time this process has used so far, in clock ticks' resolution,
/// from `/proc/self/stat` (`utime`, `stime`): for profiling runs, as
/// valgrind cannot run rustix's vDSO lookup behind [`self_cpu`].
pub fn self_cpu_coarse() -> Duration {
    // Linux reports these in USER_HZ, 100 per second on every platform
    // (asking rustix for it reads the auxiliary vector, which valgrind
    // does not give it either).
    const USER_HZ: u64 = 100;
    Duration::from_millis(stat_ticks(&[11, 12]) * (1000 / USER_HZ))
}

/// User and system CPU time of this process so far, in clock ticks'
/// resolution (see [`self_cpu_coarse`]).
pub fn self_user_sys_coarse() -> (Duration, Duration) {
    const USER_HZ: u64 = 100;
    let ms = |field| Duration::from_millis(stat_ticks(&[field]) * (1000 / USER_HZ));
    (ms(11), ms(12))
}

/// Context switches of this process's threads so far (voluntary ones:
/// a thread that parked), from `/proc/self/task/*/status`. Threads that
/// ended are not counted.
pub fn self_context_switches() -> u64 {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else {
        return 0;
    };
    tasks
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("status")).ok())
        .filter_map(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("voluntary_ctxt_switches:"))
                .and_then(|n| n.trim().parse::<u64>().ok())
        })
        .sum()
}

/// CPU time of this process's children that ended and were waited for.
pub fn children_cpu() -> Duration {
    // cutime and cstime are fields 16 and 17, so 13 and 14 from `state`.
    let ticks = stat_ticks(&[13, 14]);
    let per_second = rustix::param::clock_ticks_per_second().max(1);
    Duration::from_nanos(ticks.saturating_mul(1_000_000_000) / per_second)
}

/// The sum of some clock-tick fields of `/proc/self/stat`, counted from
/// the `state` field (field 3).
fn stat_ticks(fields_from_state: &[usize]) -> u64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0;
    };
    // The command name (field 2) is in parentheses and may hold spaces;
    // the fields after it start at field 3 (`state`).
    let Some((_, after_name)) = stat.rsplit_once(')') else {
        return 0;
    };
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    fields_from_state
        .iter()
        .filter_map(|&i| fields.get(i)?.parse::<u64>().ok())
        .sum()
}
