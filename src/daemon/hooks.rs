//! Runs the operator's start/stop/fault/standby hook scripts.
//!
//! Owns what is particular to hooks: their output, logged line by line as it
//! arrives, and their outcome. The process group, the environment every child gets
//! and the kill at the deadline are `process.rs`'s, shared with `exec` checks. What
//! a hook's result means for the election is the caller's call.

use std::path::Path;
use std::process::Stdio;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncRead, AsyncReadExt, BufReader};
use tokio::time::{Instant, timeout};
use tracing::{info, warn};

use super::process::{self, Exit, Group, Waited};
use crate::config::RunAs;

/// How long output still in the pipes is waited for after the hook exits.
/// Background processes the hook left behind may hold the pipes open for
/// good; their output keeps being logged, but the caller does not wait.
const OUTPUT_DRAIN: Duration = Duration::from_millis(250);
/// Longer lines are logged in pieces, so a hook cannot make us buffer
/// unbounded output.
const MAX_LINE: u64 = 4096;

/// How a hook ended, and how long it took.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HookOutcome {
    pub status: HookStatus,
    pub duration: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HookStatus {
    /// The hook exited with this code.
    Exited(i32),
    /// The hook was killed by this signal, not by us.
    Signaled(i32),
    /// The hook outlived its timeout; its process group was killed.
    TimedOut,
    /// The hook could not be started (or, rarely, not be waited for).
    SpawnFailed(String),
}

impl HookOutcome {
    /// True only for exit code 0.
    pub fn is_success(&self) -> bool {
        self.status == HookStatus::Exited(0)
    }
}

/// Runs `program` with `env` added to the daemon's environment, stdin from
/// /dev/null, as `run_as` when given, and waits at most `timeout` for it.
///
/// Never returns later than about `timeout` + 2 s: on timeout the hook's whole
/// process group gets SIGTERM, then SIGKILL after a grace period, and nobody
/// waits for pipes that a straying grandchild still holds. A hook that exits
/// on its own may leave background processes running: a start hook may
/// legitimately launch a service.
///
/// If the returned future is dropped before the hook ended, the hook's process
/// group is killed.
pub async fn run_hook(
    name: &str,
    program: &Path,
    env: &[(String, String)],
    timeout: Duration,
    run_as: Option<&RunAs>,
) -> HookOutcome {
    let started = Instant::now();
    let status = run(name, program, env, started + timeout, run_as).await;
    HookOutcome {
        status,
        duration: started.elapsed(),
    }
}

async fn run(
    name: &str,
    program: &Path,
    env: &[(String, String)],
    deadline: Instant,
    run_as: Option<&RunAs>,
) -> HookStatus {
    let mut command = process::command(program, run_as);
    command
        .envs(env.iter().map(|(key, value)| (key, value)))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut group = match Group::spawn(command) {
        Ok(group) => group,
        Err(err) => return HookStatus::SpawnFailed(format!("{}: {err}", program.display())),
    };

    let mut readers = Vec::new();
    if let Some(stdout) = group.child().stdout.take() {
        readers.push(tokio::spawn(log_lines(name.to_owned(), stdout, false)));
    }
    if let Some(stderr) = group.child().stderr.take() {
        readers.push(tokio::spawn(log_lines(name.to_owned(), stderr, true)));
    }

    let status = match group.wait_until(deadline).await {
        Waited::Exited(exit) => {
            group.release();
            match exit {
                Exit::Code(code) => HookStatus::Exited(code),
                Exit::Signal(signal) => HookStatus::Signaled(signal),
            }
        }
        Waited::Failed(err) => HookStatus::SpawnFailed(format!("{}: {err}", program.display())),
        Waited::TimedOut => {
            warn!(hook = name, "hook timed out, killing its process group");
            group.terminate().await;
            HookStatus::TimedOut
        }
    };

    // Readers that outlive the drain are left running detached: they end when
    // the last holder of the pipe exits.
    let _ = timeout(OUTPUT_DRAIN, async {
        for reader in readers {
            let _ = reader.await;
        }
    })
    .await;
    status
}

async fn log_lines(hook: String, pipe: impl AsyncRead + Unpin, is_stderr: bool) {
    let mut reader = BufReader::new(pipe);
    let mut line = Vec::new();
    loop {
        line.clear();
        // Bytes, not String: one invalid UTF-8 byte must not stop the
        // reading, or the hook would block on a full pipe.
        match (&mut reader)
            .take(MAX_LINE)
            .read_until(b'\n', &mut line)
            .await
        {
            Ok(0) | Err(_) => return,
            Ok(_) => {}
        }
        let text = String::from_utf8_lossy(&line);
        let text = text.trim_end_matches(['\n', '\r']);
        if is_stderr {
            warn!(hook = hook.as_str(), "{text}");
        } else {
            info!(hook = hook.as_str(), "{text}");
        }
    }
}

#[cfg(test)]
mod tests {
    use std::fs;

    use nix::sys::signal::Signal;
    use nix::unistd::Pid;

    use super::process::KILL_GRACE;
    use super::*;
    use crate::scratch::Scratch;
    use crate::testing::{Captured, block_on};

    /// Alive means existing and not a zombie: an orphan killed in a container
    /// without a reaping init stays a zombie, but runs nothing.
    fn is_alive(pid: i32) -> bool {
        let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
            return false;
        };
        // The state follows the parenthesised command name.
        let state = stat.rsplit(')').next().unwrap_or("").trim_start();
        !state.starts_with('Z') && !state.starts_with('X')
    }

    fn read_pids(path: &Path) -> Vec<i32> {
        fs::read_to_string(path)
            .unwrap()
            .split_whitespace()
            .map(|pid| pid.parse().unwrap())
            .collect()
    }

    /// Timeout for hooks meant to time out: long enough that a loaded machine
    /// still runs the script's first lines before it.
    const LIMIT: Duration = Duration::from_secs(1);
    /// Scheduling and process teardown on a busy machine.
    const SLACK: Duration = Duration::from_millis(500);

    fn run(script: &Path, env: &[(String, String)], limit: Duration) -> HookOutcome {
        block_on(run_hook("start", script, env, limit, None))
    }

    #[test]
    fn exit_codes_are_reported() {
        let scratch = Scratch::new("exit");
        let ok = run(
            &scratch.script("hook.sh", "exit 0"),
            &[],
            Duration::from_secs(10),
        );
        assert_eq!(ok.status, HookStatus::Exited(0));
        assert!(ok.is_success());

        let failed = run(
            &scratch.script("hook.sh", "exit 3"),
            &[],
            Duration::from_secs(10),
        );
        assert_eq!(failed.status, HookStatus::Exited(3));
        assert!(!failed.is_success());
    }

    #[test]
    fn death_by_signal_is_reported() {
        let scratch = Scratch::new("signal");
        let outcome = run(
            &scratch.script("hook.sh", "kill -USR1 $$"),
            &[],
            Duration::from_secs(10),
        );
        assert_eq!(outcome.status, HookStatus::Signaled(Signal::SIGUSR1 as i32));
        assert!(!outcome.is_success());
    }

    #[test]
    fn env_is_passed_and_stdin_is_empty() {
        let scratch = Scratch::new("env");
        let out = scratch.join("out");
        let script = scratch.script(
            "hook.sh",
            &format!(
                "printf '%s %s' \"$FAILOVERD_ROLE\" \"$FAILOVERD_VIP\" > {out}\n\
             cat >> {out}",
                out = out.display()
            ),
        );
        let env = [
            ("FAILOVERD_ROLE".to_owned(), "active".to_owned()),
            ("FAILOVERD_VIP".to_owned(), "198.18.0.10/24".to_owned()),
        ];
        let outcome = run(&script, &env, Duration::from_secs(10));
        assert!(outcome.is_success(), "{outcome:?}");
        assert_eq!(fs::read_to_string(out).unwrap(), "active 198.18.0.10/24");
    }

    #[test]
    fn output_is_captured_line_by_line() {
        let scratch = Scratch::new("output");
        let script = scratch.script(
            "hook.sh",
            "echo first\necho second\necho oops >&2\nprintf 'no newline \\377'",
        );
        let (logging, captured) = Captured::dispatch();
        let outcome = tracing::dispatcher::with_default(&logging, || {
            run(&script, &[], Duration::from_secs(10))
        });
        assert!(outcome.is_success(), "{outcome:?}");
        let logged = captured.text();
        let find = |needle: &str| {
            logged
                .lines()
                .find(|line| line.contains(needle))
                .unwrap_or_else(|| panic!("{needle:?} not logged in:\n{logged}"))
                .to_owned()
        };
        assert!(find("first").contains("INFO"));
        assert!(find("first").contains("hook=\"start\""));
        assert!(find("second").contains("INFO"));
        assert!(find("oops").contains("WARN"));
        // Invalid UTF-8 is replaced, not fatal.
        assert!(find("no newline \u{fffd}").contains("INFO"));
    }

    #[test]
    fn timeout_kills_the_whole_group() {
        let scratch = Scratch::new("timeout");
        let pids = scratch.join("pids");
        let script = scratch.script(
            "hook.sh",
            &format!(
                "sleep 1000 &\necho $! > {pids}\necho $$ >> {pids}\nsleep 1000",
                pids = pids.display()
            ),
        );
        let outcome = run(&script, &[], LIMIT);
        assert_eq!(outcome.status, HookStatus::TimedOut);
        assert!(
            outcome.duration < LIMIT + KILL_GRACE + OUTPUT_DRAIN + SLACK,
            "{outcome:?}"
        );
        let pids = read_pids(&pids);
        assert_eq!(pids.len(), 2);
        for pid in pids {
            assert!(!is_alive(pid), "pid {pid} survived the timeout");
        }
    }

    #[test]
    fn timeout_escalates_to_sigkill() {
        let scratch = Scratch::new("sigkill");
        let pids = scratch.join("pids");
        // Ignored signals stay ignored across fork and exec, so every
        // process in this group shrugs off SIGTERM.
        let script = scratch.script(
            "hook.sh",
            &format!(
                "trap '' TERM\nsleep 1000 &\necho $! > {pids}\necho $$ >> {pids}\nsleep 1000",
                pids = pids.display()
            ),
        );
        let outcome = run(&script, &[], LIMIT);
        assert_eq!(outcome.status, HookStatus::TimedOut);
        assert!(outcome.duration >= LIMIT + KILL_GRACE, "{outcome:?}");
        assert!(
            outcome.duration < LIMIT + KILL_GRACE + OUTPUT_DRAIN + SLACK,
            "{outcome:?}"
        );
        // SIGKILL went to the whole group, and only the leader is waited for: the
        // kernel tears the others down as soon as they are scheduled, which a
        // loaded host may put off for a moment.
        let deadline = std::time::Instant::now() + Duration::from_secs(2);
        for pid in read_pids(&pids) {
            while is_alive(pid) && std::time::Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(10));
            }
            assert!(!is_alive(pid), "pid {pid} survived SIGKILL");
        }
    }

    #[test]
    fn grandchild_holding_the_pipes_does_not_hang_the_caller() {
        let scratch = Scratch::new("pipes");
        let pids = scratch.join("pids");
        // The grandchild leaves the group (setsid), so it survives the kill,
        // and it keeps stdout and stderr open.
        let script = scratch.script(
            "hook.sh",
            &format!(
                "setsid sleep 5 &\necho $! > {pids}\nsleep 1000",
                pids = pids.display()
            ),
        );
        let outcome = run(&script, &[], LIMIT);
        assert_eq!(outcome.status, HookStatus::TimedOut);
        assert!(
            outcome.duration < LIMIT + KILL_GRACE + OUTPUT_DRAIN + SLACK,
            "{outcome:?}"
        );
        for pid in read_pids(&pids) {
            let _ = nix::sys::signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
        }
    }

    #[test]
    fn missing_program_is_spawn_failed() {
        let outcome = run(
            Path::new("/nonexistent/failoverd-hook"),
            &[],
            Duration::from_secs(1),
        );
        let HookStatus::SpawnFailed(message) = &outcome.status else {
            panic!("expected SpawnFailed, got {outcome:?}");
        };
        assert!(message.contains("/nonexistent/failoverd-hook"), "{message}");
        assert!(!outcome.is_success());
    }
}
