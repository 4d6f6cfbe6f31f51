//! Running a program to completion in a test, bounded in time. Included by path
//! (`#[path = "common/run.rs"]`) from the test files that run the binary without a
//! lab.

use std::process::{Command, Output, Stdio};
use std::thread;
use std::time::{Duration, Instant};

/// Runs `command` with no stdin and its outputs captured, killing it (and failing
/// the test) if it outlives `limit`. The outputs of these runs are small, so polling
/// while they sit in the pipes cannot block the program.
pub fn run_bounded(mut command: Command, limit: Duration) -> Output {
    let mut child = command
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("spawn {command:?}: {e}"));
    let started = Instant::now();
    while child.try_wait().expect("wait for the program").is_none() {
        if started.elapsed() > limit {
            let _ = child.kill();
            panic!("{command:?} still running after {limit:?}");
        }
        thread::sleep(Duration::from_millis(10));
    }
    child.wait_with_output().expect("the program's output")
}
