//! `exec` checks: a program with arguments (no shell), in a process group of its own,
//! killed at its timeout like a hook (`process.rs`); exit 0 passes.
//!
//! Its output is not logged: a check that prints a line every second would flood
//! the journal. Stdout and stderr share one pipe, so their lines keep the order the
//! program wrote them in, and only the last non-empty line is kept, bounded, as the
//! run's detail for the status and the metrics.

use std::io;
use std::os::fd::OwnedFd;
use std::path::PathBuf;
use std::time::Duration;

use tokio::io::AsyncReadExt;
use tokio::net::unix::pipe;
use tokio::time::{Instant, timeout};

use super::{Cleanup, Context, bounded_line};
use crate::daemon::process::{self, Exit, Group, Waited};
use crate::duration::format_duration;
use crate::machine::Role;
use crate::machine::health::Run;

/// How much of the end of a program's output is kept to find its last line: the
/// program may write any amount, read as it comes so that it never blocks on a full
/// pipe, but only this much stays in memory.
const KEPT_OUTPUT: usize = 4096;
/// How long output still in the pipe is waited for after the program exits; a
/// background process it left holding the pipe is killed after that.
const OUTPUT_DRAIN: Duration = Duration::from_millis(250);

/// One `exec` check, ready to run.
#[derive(Debug, Clone)]
pub struct Exec {
    /// The check's name, for `FAILOVERD_CHECK`.
    pub name: String,
    pub program: PathBuf,
    pub args: Vec<String>,
    pub timeout: Duration,
}

impl Exec {
    /// Runs the program once, as this node in `role`. On a timeout the run is
    /// reported at once, and the returned cleanup (SIGTERM, then SIGKILL after the
    /// grace) must finish before the next run starts, so two runs never overlap.
    pub async fn run(&self, context: &Context, role: Role) -> (Run, Option<Cleanup>) {
        let started = Instant::now();
        let failed = |detail: String| Run {
            passed: false,
            took: started.elapsed(),
            detail,
        };
        let (group, output) = match self.spawn(context, role) {
            Ok(spawned) => spawned,
            Err(err) => {
                let detail = format!("cannot run {}: {err}", self.program.display());
                return (failed(bounded_line(detail.as_bytes())), None);
            }
        };
        let mut group = group;
        let mut tail = Tail::default();
        // Boxed so that it can be dropped, ending its borrow of the tail, before the
        // tail is read.
        let mut reading = Box::pin(read_into(output, &mut tail));
        let mut read_all = false;
        let waited = {
            let wait = group.wait_until(started + self.timeout);
            tokio::pin!(wait);
            loop {
                tokio::select! {
                    waited = &mut wait => break waited,
                    () = &mut reading, if !read_all => read_all = true,
                }
            }
        };
        let exit = match waited {
            Waited::Exited(exit) => exit,
            Waited::TimedOut => {
                drop(reading);
                let detail = format!("timed out after {}", format_duration(self.timeout));
                let cleanup: Cleanup = Box::pin(group.terminate());
                return (failed(detail), Some(cleanup));
            }
            Waited::Failed(err) => return (failed(err), None),
        };
        let took = started.elapsed();
        if !read_all {
            let _ = timeout(OUTPUT_DRAIN, &mut reading).await;
        }
        drop(reading);
        // A check is a probe, run every interval: whatever it left behind would pile
        // up, one per run.
        group.kill_leftovers();
        let line = tail.last_line();
        let (passed, detail) = match exit {
            Exit::Code(0) => (true, line),
            Exit::Code(code) if line.is_empty() => (false, format!("exited {code}")),
            Exit::Code(_) => (false, line),
            Exit::Signal(signal) => (false, format!("killed by signal {signal}")),
        };
        (
            Run {
                passed,
                took,
                detail,
            },
            None,
        )
    }

    fn spawn(&self, context: &Context, role: Role) -> io::Result<(Group, pipe::Receiver)> {
        let (reader, writer) = io::pipe()?;
        let mut command = process::command(&self.program, context.run_as.as_ref());
        command
            .args(&self.args)
            .env("FAILOVERD_CHECK", &self.name)
            .env("FAILOVERD_NODE", &context.node)
            .env("FAILOVERD_ROLE", role.as_str())
            .env("FAILOVERD_CLUSTER", &context.cluster)
            .stdout(writer.try_clone()?)
            .stderr(writer);
        let group = Group::spawn(command)?;
        let reader = pipe::Receiver::from_owned_fd(OwnedFd::from(reader))?;
        Ok((group, reader))
    }
}

/// Reads `pipe` to its end (or an error) into `tail`.
async fn read_into(mut pipe: pipe::Receiver, tail: &mut Tail) {
    let mut buf = [0u8; 1024];
    loop {
        match pipe.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => tail.push(&buf[..n]),
        }
    }
}

/// The end of a program's output, at most [`KEPT_OUTPUT`] bytes of it.
#[derive(Debug, Default)]
struct Tail {
    bytes: Vec<u8>,
}

impl Tail {
    fn push(&mut self, more: &[u8]) {
        self.bytes.extend_from_slice(more);
        if self.bytes.len() > KEPT_OUTPUT {
            let cut = self.bytes.len() - KEPT_OUTPUT;
            self.bytes.drain(..cut);
        }
    }

    /// The last line with something on it besides whitespace, bounded (see
    /// [`bounded_line`]); empty when there is none.
    fn last_line(&self) -> String {
        self.bytes
            .split(|&b| b == b'\n')
            .rfind(|line| !line.trim_ascii().is_empty())
            .map(bounded_line)
            .unwrap_or_default()
    }
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::path::Path;

    use super::*;
    use crate::daemon::process::KILL_GRACE;
    use crate::scratch::Scratch;

    /// A check running `body` in `scratch`, with two arguments.
    fn check(scratch: &Scratch, body: &str, timeout: Duration) -> Exec {
        Exec {
            name: "app".to_string(),
            program: scratch.script("check.sh", body),
            args: vec!["first arg".to_string(), "second".to_string()],
            timeout,
        }
    }

    fn context() -> Context {
        Context {
            node: "alpha".to_string(),
            cluster: "web".to_string(),
            run_as: None,
        }
    }

    async fn run(check: &Exec) -> Run {
        let (run, cleanup) = check.run(&context(), Role::Active).await;
        if let Some(cleanup) = cleanup {
            cleanup.await;
        }
        run
    }

    /// Alive means existing and not a zombie.
    fn is_alive(pid: i32) -> bool {
        let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
            return false;
        };
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

    const LONG: Duration = Duration::from_secs(10);

    #[tokio::test]
    async fn exit_0_passes_and_the_last_line_is_the_detail() {
        let scratch = Scratch::new("pass");
        let check = check(
            &scratch,
            "echo starting\necho 'all good'\necho\necho '   '",
            LONG,
        );
        let run = run(&check).await;
        assert!(run.passed, "{run:?}");
        assert_eq!(run.detail, "all good");
    }

    #[tokio::test]
    async fn a_failure_says_its_last_line_or_its_exit_code() {
        let scratch = Scratch::new("fail");
        let run1 = run(&check(
            &scratch,
            "echo ok >&2\necho 'disk full' >&2\nexit 1",
            LONG,
        ))
        .await;
        assert!(!run1.passed);
        assert_eq!(run1.detail, "disk full", "stderr counts too");
        let run3 = run(&check(&scratch, "exit 3", LONG)).await;
        assert!(!run3.passed);
        assert_eq!(run3.detail, "exited 3");
        let killed = run(&check(&scratch, "kill -USR1 $$", LONG)).await;
        assert!(!killed.passed);
        assert_eq!(killed.detail, "killed by signal 10");
    }

    #[tokio::test]
    async fn arguments_and_environment_reach_the_program_and_stdin_is_empty() {
        let scratch = Scratch::new("env");
        let out = scratch.join("out");
        let check = check(
            &scratch,
            &format!(
                "printf '%s|%s|%s|%s|%s|%s|%s' \"$1\" \"$2\" \"$FAILOVERD_CHECK\" \
                 \"$FAILOVERD_NODE\" \"$FAILOVERD_ROLE\" \"$FAILOVERD_CLUSTER\" \
                 \"${{NOTIFY_SOCKET:-none}}\" > {out}\ncat >> {out}",
                out = out.display()
            ),
            LONG,
        );
        let run = run(&check).await;
        assert!(run.passed, "{run:?}");
        assert_eq!(
            fs::read_to_string(out).unwrap(),
            "first arg|second|app|alpha|active|web|none"
        );
    }

    #[tokio::test]
    async fn the_detail_is_bounded_and_one_clean_line() {
        let scratch = Scratch::new("bounded");
        // Far more output than is kept, then a long line with a tab, an escape and
        // invalid UTF-8.
        let check = check(
            &scratch,
            "i=0\nwhile [ $i -lt 2000 ]; do echo \"line $i\"; i=$((i+1)); done\n\
             printf 'last\\t\\033[31mred\\377 %0300d' 0\nexit 2",
            LONG,
        );
        let run = run(&check).await;
        assert!(!run.passed);
        assert!(
            run.detail.starts_with("last [31mred\u{fffd} 000"),
            "{:?}",
            run.detail
        );
        assert!(
            run.detail.len() <= super::super::MAX_DETAIL,
            "{}",
            run.detail.len()
        );
        assert!(!run.detail.contains(['\n', '\x1b', '\t']));
    }

    #[tokio::test]
    async fn a_timeout_fails_at_once_and_kills_the_whole_group() {
        let scratch = Scratch::new("timeout");
        let pids = scratch.join("pids");
        let limit = Duration::from_millis(500);
        let check = check(
            &scratch,
            &format!(
                "sleep 1000 &\necho $! > {pids}\necho $$ >> {pids}\necho waiting\nsleep 1000",
                pids = pids.display()
            ),
            limit,
        );
        let started = Instant::now();
        let (run, cleanup) = check.run(&context(), Role::Standby).await;
        let reported = started.elapsed();
        assert!(!run.passed);
        assert_eq!(run.detail, "timed out after 500ms");
        assert!(reported >= limit, "{reported:?}");
        assert!(
            reported < limit + Duration::from_millis(400),
            "reported at the timeout, not after the kill: {reported:?}"
        );
        let cleanup = cleanup.expect("a group to terminate");
        cleanup.await;
        assert!(started.elapsed() < limit + KILL_GRACE + Duration::from_millis(500));
        let pids = read_pids(&pids);
        assert_eq!(pids.len(), 2);
        for pid in pids {
            assert!(!is_alive(pid), "pid {pid} survived the timeout");
        }
    }

    #[tokio::test]
    async fn what_a_passing_check_leaves_behind_is_killed() {
        let scratch = Scratch::new("leftover");
        let pids = scratch.join("pids");
        let check = check(
            &scratch,
            &format!("sleep 1000 &\necho $! > {}\necho fine", pids.display()),
            LONG,
        );
        let started = Instant::now();
        let run = run(&check).await;
        assert!(run.passed, "{run:?}");
        assert!(
            started.elapsed() < OUTPUT_DRAIN + Duration::from_secs(1),
            "the leftover holding the pipe does not hold up the run"
        );
        // SIGKILL is asynchronous: give the kernel a moment.
        let pid = read_pids(&pids)[0];
        let gone = Instant::now() + Duration::from_secs(2);
        while is_alive(pid) && Instant::now() < gone {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(!is_alive(pid), "the leftover {pid} was not killed");
    }

    #[tokio::test]
    async fn a_missing_program_fails_with_its_path() {
        let check = Exec {
            name: "app".to_string(),
            program: PathBuf::from("/nonexistent/failoverd-check"),
            args: Vec::new(),
            timeout: LONG,
        };
        let run = run(&check).await;
        assert!(!run.passed);
        assert!(
            run.detail
                .starts_with("cannot run /nonexistent/failoverd-check: "),
            "{}",
            run.detail
        );
    }

    #[test]
    fn the_tail_keeps_the_end() {
        let mut tail = Tail::default();
        tail.push(b"first\nsecond\n");
        assert_eq!(tail.last_line(), "second");
        tail.push(b"\r\n  \nthird without newline");
        assert_eq!(tail.last_line(), "third without newline");
        tail.push(&vec![b'x'; KEPT_OUTPUT * 3]);
        assert_eq!(tail.bytes.len(), KEPT_OUTPUT);
        assert_eq!(Tail::default().last_line(), "");
    }
}
