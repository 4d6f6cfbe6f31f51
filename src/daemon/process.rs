//! A child process in a process group of its own, from spawn to reaping, and its
//! deadline: what hooks (`hooks.rs`) and `exec` checks (`checks/exec.rs`) share.
//!
//! Owns the environment every child gets (systemd's variables removed, stdin from
//! /dev/null), the user it runs as (`[hooks] user`: ids set and capabilities
//! dropped between fork and exec), the process group, waiting with a deadline, and
//! the kill at that deadline: SIGTERM to the whole group, SIGKILL to what is left
//! after a grace. It does not own the child's output: hooks log it line by line,
//! checks keep its last line.

use std::ffi::OsStr;
use std::os::unix::process::ExitStatusExt;
use std::process::{ExitStatus, Stdio};
use std::time::Duration;

use nix::sys::signal::{Signal, killpg};
use nix::unistd::{Gid, Pid, Uid, setgid, setgroups, setuid};
use tokio::process::{Child, Command};
use tokio::time::{Instant, sleep, timeout_at};

use crate::config::RunAs;

/// How long a timed-out process group gets between SIGTERM and SIGKILL, to clean
/// up.
pub const KILL_GRACE: Duration = Duration::from_millis(1500);
/// How often a terminated group is checked for survivors during the grace.
const GROUP_POLL: Duration = Duration::from_millis(20);

/// A command for `program` with what every child of the daemon gets: stdin from
/// /dev/null, a process group of its own, none of systemd's variables, and, with
/// `run_as`, that user and group and no capabilities. The caller adds arguments,
/// environment and output, then calls [`Group::spawn`].
pub fn command(program: impl AsRef<OsStr>, run_as: Option<&RunAs>) -> Command {
    let mut command = Command::new(program);
    // A child that starts a service must not talk to systemd as if it were us.
    command
        .env_remove("NOTIFY_SOCKET")
        .env_remove("WATCHDOG_USEC")
        .env_remove("WATCHDOG_PID")
        .stdin(Stdio::null())
        .process_group(0);
    if let Some(run_as) = run_as {
        become_user(&mut command, run_as);
    }
    command
}

/// Makes the child `run_as`'s user, in its groups, with no capabilities left.
fn become_user(command: &mut Command, run_as: &RunAs) {
    command
        .env("USER", &run_as.user)
        .env("LOGNAME", &run_as.user)
        .env("HOME", &run_as.home);
    let uid = Uid::from_raw(run_as.uid);
    let gid = Gid::from_raw(run_as.gid);
    // Resolved when the configuration was read and built here, before the fork: the
    // child runs only async-signal-safe system calls, no name lookup and no
    // allocation.
    let groups: Vec<Gid> = run_as.groups.iter().copied().map(Gid::from_raw).collect();
    let clear_ambient = || {
        // Ambient capabilities would survive the exec even as another user (a
        // daemon run as a user of its own with AmbientCapabilities=). EINVAL means a
        // kernel without them (before 4.3): nothing to clear.
        // SAFETY: prctl with integer arguments only.
        let cleared = unsafe {
            libc::prctl(
                libc::PR_CAP_AMBIENT,
                libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
                0 as libc::c_ulong,
                0 as libc::c_ulong,
                0 as libc::c_ulong,
            )
        };
        match cleared {
            0 => Ok(()),
            _ => match std::io::Error::last_os_error() {
                err if err.raw_os_error() == Some(libc::EINVAL) => Ok(()),
                err => Err(err),
            },
        }
    };
    // SAFETY: the closure runs in the child between fork and exec and calls only
    // setgroups, setgid, setuid and prctl, all async-signal-safe, on data prepared
    // before the fork.
    unsafe {
        command.pre_exec(move || {
            // Groups first and the user last: once the user is not root, it may no
            // longer change either. Leaving root also empties the permitted and
            // effective capability sets.
            setgroups(&groups)?;
            setgid(gid)?;
            setuid(uid)?;
            clear_ambient()
        });
    }
}

/// How a child ended, by itself.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// It exited with this code.
    Code(i32),
    /// It was killed by this signal, not by us.
    Signal(i32),
}

/// What waiting for a child came to.
#[derive(Debug)]
pub enum Waited {
    Exited(Exit),
    /// The deadline passed first; the child still runs.
    TimedOut,
    /// Waiting failed (rarely: the child cannot be reaped); the group was killed.
    Failed(String),
}

/// A running child, leader of its own process group. Dropped before the child was
/// waited for or released, it kills the whole group, so a cancelled run never leaves
/// a process behind unsupervised.
pub struct Group {
    child: Child,
    guard: GroupGuard,
}

impl Group {
    /// Starts `command` (made by [`command`]). The command is consumed so that the
    /// parent's copies of any pipe ends handed to the child close now: the reader
    /// sees end of file once the child's side closes.
    pub fn spawn(mut command: Command) -> std::io::Result<Group> {
        let child = command.spawn()?;
        drop(command);
        // The leader's pid is its group id. It is None only once the child was
        // reaped, which cannot have happened yet.
        let pgid = child
            .id()
            .and_then(|id| i32::try_from(id).ok())
            .ok_or_else(|| std::io::Error::other("no process id"))?;
        Ok(Group {
            child,
            guard: GroupGuard {
                pgid: Pid::from_raw(pgid),
                armed: true,
            },
        })
    }

    /// The child, to take its pipes.
    pub fn child(&mut self) -> &mut Child {
        &mut self.child
    }

    /// Waits for the child to exit, until `deadline`. Cancel-safe: dropping the
    /// future leaves the child running and the group armed.
    pub async fn wait_until(&mut self, deadline: Instant) -> Waited {
        match timeout_at(deadline, self.child.wait()).await {
            Ok(Ok(exit)) => Waited::Exited(exit_of(exit)),
            Ok(Err(err)) => {
                self.guard.kill(Signal::SIGKILL);
                Waited::Failed(format!("waiting for it: {err}"))
            }
            Err(_) => Waited::TimedOut,
        }
    }

    /// SIGTERM to the group, SIGKILL to whatever is left after [`KILL_GRACE`].
    /// Returns once the leader is reaped and the group is empty or killed.
    pub async fn terminate(mut self) {
        self.guard.kill(Signal::SIGTERM);
        let deadline = Instant::now() + KILL_GRACE;
        let mut leader_done = false;
        while Instant::now() < deadline {
            // Reap the leader as it goes: as a zombie it still counts as a member
            // of the group.
            if !leader_done {
                leader_done = matches!(self.child.try_wait(), Ok(Some(_)));
            }
            if leader_done && !self.guard.has_members() {
                self.guard.armed = false;
                return;
            }
            sleep(GROUP_POLL).await;
        }
        self.guard.kill(Signal::SIGKILL);
        self.guard.armed = false;
        if !leader_done {
            // SIGKILL cannot be caught, so this returns as soon as the kernel has
            // torn the process down.
            let _ = self.child.wait().await;
        }
    }

    /// The child exited on its own: leave the rest of its group alone (a start hook
    /// may legitimately have launched a service).
    pub fn release(mut self) {
        self.guard.armed = false;
    }

    /// The child exited on its own: SIGKILL whatever it left in its group.
    pub fn kill_leftovers(mut self) {
        self.guard.kill(Signal::SIGKILL);
        self.guard.armed = false;
    }
}

fn exit_of(exit: ExitStatus) -> Exit {
    match (exit.code(), exit.signal()) {
        (Some(code), _) => Exit::Code(code),
        (None, Some(signal)) => Exit::Signal(signal),
        // wait() reports neither stops nor continues; a status with neither code nor
        // signal does not occur.
        (None, None) => Exit::Code(-1),
    }
}

/// The process group; killed on drop while armed.
struct GroupGuard {
    pgid: Pid,
    armed: bool,
}

impl GroupGuard {
    fn kill(&self, signal: Signal) {
        // ESRCH only means everyone is gone already.
        let _ = killpg(self.pgid, signal);
    }

    fn has_members(&self) -> bool {
        killpg(self.pgid, None).is_ok()
    }
}

impl Drop for GroupGuard {
    fn drop(&mut self) {
        if self.armed {
            self.kill(Signal::SIGKILL);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::fs::PermissionsExt;

    use nix::unistd::{Group as UnixGroup, User};

    use super::*;
    use crate::config::Config;
    use crate::config::sample::Sample;
    use crate::scratch::Scratch;

    /// `[hooks] user` and `group` from the file reach the child: the group, not the
    /// user's primary one, is its real and effective group, its other groups are
    /// those the file's reading found for the user, root's not among them, and USER
    /// and HOME are the user's.
    /// Run as root, as CI runs the tests: only root may change ids.
    #[tokio::test]
    async fn a_child_runs_as_the_hooks_user_in_the_hooks_group() {
        let nobody = User::from_name("nobody")
            .expect("look up nobody")
            .expect("this test runs a child as the user nobody, which this host lacks");
        let daemon = UnixGroup::from_name("daemon")
            .expect("look up group daemon")
            .expect("this test runs a child in the group daemon, which this host lacks");
        assert_ne!(
            nobody.gid, daemon.gid,
            "daemon must not be nobody's own group"
        );
        let dir = Scratch::new("run-as");
        let key = dir.join("authkey");
        fs::write(&key, "run-as-test-key-0123456789\n").expect("write the key");
        fs::set_permissions(&key, fs::Permissions::from_mode(0o600)).expect("chmod the key");
        let text = Sample::new()
            .set("cluster.key_file", "authkey")
            .remove("hooks")
            .append("[hooks]\nuser = \"nobody\"\ngroup = \"daemon\"")
            .to_string();
        let config = Config::parse(&text, dir.path()).expect("a valid configuration");
        let run_as = config.hooks.run_as.expect("[hooks] user is set");

        let mut command = command("/bin/sh", Some(&run_as));
        command
            .args([
                "-c",
                "echo $(id -ru) $(id -u) $(id -rg) $(id -g) $USER $HOME; id -G",
            ])
            .stdout(Stdio::piped());
        let output = command.output().await.expect("run sh as nobody");
        assert!(output.status.success(), "{output:?}");
        let seen = String::from_utf8_lossy(&output.stdout);
        let mut lines = seen.lines();
        let ids = lines.next().unwrap_or_default();
        let (uid, gid) = (nobody.uid, daemon.gid);
        let home = nobody.dir.display();
        assert_eq!(
            ids,
            format!("{uid} {uid} {gid} {gid} nobody {home}"),
            "{seen}"
        );
        let mut groups: Vec<u32> = (lines.next().unwrap_or_default().split_whitespace())
            .filter_map(|g| g.parse().ok())
            .collect();
        groups.sort_unstable();
        groups.dedup();
        let mut expected = run_as.groups.clone();
        expected.push(gid.as_raw());
        expected.sort_unstable();
        expected.dedup();
        assert_eq!(groups, expected, "groups: {seen}");
        assert!(!groups.contains(&0), "root's group kept: {seen}");
    }
}
