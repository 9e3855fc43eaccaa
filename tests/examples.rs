//! Every program in `examples/` runs on its own and exits 0: each starts
//! the servers it needs and asserts what it shows.
//!
//! `cargo test` builds the examples before it runs any test; this one runs
//! the binaries it built, one process each.

use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// Where cargo put this build's examples: `target/<profile>/examples`,
/// beside the `deps` folder this test runs from.
fn examples_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("the test binary's path");
    let profile = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/<profile>/deps/<test>");
    profile.join("examples")
}

fn example_names() -> Vec<String> {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("examples");
    let mut names: Vec<String> = std::fs::read_dir(&dir)
        .expect("the examples folder")
        .filter_map(|entry| {
            let path = entry.ok()?.path();
            (path.extension()? == "rs").then(|| path.file_stem()?.to_str().map(str::to_owned))?
        })
        .collect();
    names.sort();
    names
}

/// An example is a short demonstration: one that runs this long waits on
/// something it should not, and is killed.
const LIMIT: Duration = Duration::from_secs(60);

/// Runs `binary` to its end, or kills it after `limit`.
fn run(binary: &std::path::Path, limit: Duration) -> Result<Output, String> {
    let mut child = Command::new(binary)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|err| format!("could not start: {err}"))?;
    let started = Instant::now();
    loop {
        match child.try_wait() {
            Ok(Some(_)) => return child.wait_with_output().map_err(|err| err.to_string()),
            Ok(None) if started.elapsed() > limit => {
                let _ = child.kill();
                let output = child.wait_with_output().map_err(|err| err.to_string())?;
                return Err(format!(
                    "still running after {limit:?}, killed\n{}{}",
                    String::from_utf8_lossy(&output.stdout),
                    String::from_utf8_lossy(&output.stderr)
                ));
            }
            // Polling a child process: std has no wait with a timeout.
            Ok(None) => std::thread::sleep(Duration::from_millis(20)),
            Err(err) => return Err(err.to_string()),
        }
    }
}

#[test]
fn every_example_runs_and_exits_zero() {
    let dir = examples_dir();
    let names = example_names();
    assert!(names.len() >= 15, "examples found: {names:?}");
    let mut failures = Vec::new();
    for name in &names {
        let binary = dir.join(name);
        assert!(
            binary.exists(),
            "{} is missing: run the whole suite (`cargo test --workspace`), which builds the examples",
            binary.display()
        );
        match run(&binary, LIMIT) {
            Ok(output) if output.status.success() => {}
            Ok(output) => failures.push(format!(
                "{name}: {}\n{}{}",
                output.status,
                String::from_utf8_lossy(&output.stdout),
                String::from_utf8_lossy(&output.stderr)
            )),
            Err(why) => failures.push(format!("{name}: {why}")),
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n\n"));
}
