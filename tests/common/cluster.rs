//! A two-node failoverd cluster on the lab, for the end-to-end and fault tests:
//! the configuration, starting and stopping the daemons, and the client commands.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output};
use std::time::{Duration, Instant};

use failoverd::status::Status;
use nix::sys::signal::Signal;

use super::sample::Sample;
use super::{Lab, failoverd};

/// The VIP as the config writes it and `ip addr` lists it.
pub const VIP_CIDR: &str = "198.18.0.10/24";
/// Upper bound for anything the daemons should do by themselves.
pub const LIMIT: Duration = Duration::from_secs(10);
/// How often a wait looks again.
pub const POLL: Duration = Duration::from_millis(50);
/// `timing.dead` in the config: three of these pass without anything moving in
/// `crossover_cut_moves_nothing`.
pub const DEAD: Duration = Duration::from_millis(300);
/// The split-brain guard's probe window with these timers: three quarters of
/// `dead` − `warn` (`timing.warn` is 150 ms).
pub const PROBE_WINDOW: Duration = Duration::from_micros((300_000 - 150_000) * 3 / 4);

/// The cluster's configuration: the sample (config/failoverd.toml) on the lab, with
/// short timers, the key file at `key`, and `hook` as every hook (none without it).
pub fn config(key: &Path, hook: Option<&Path>) -> Sample {
    let sample = Sample::new()
        .set("cluster.name", "e2e")
        .set("cluster.key_file", key.display())
        .set("cluster.failback_delay", "1s")
        .set("timing.interval", "50ms")
        .set("timing.warn", "150ms")
        .set("timing.dead", "300ms")
        .set("timing.init_dead", "1s")
        // Both nodes of the lab call their LAN interface eth0.
        .set("node[1].interfaces", "{}")
        .set("health.interval", "100ms")
        .set("health.timeout", "100ms")
        .set("hooks.timeout", "10s")
        .set("announce.interval", "50ms");
    match hook {
        Some(hook) => sample
            .set("hooks.start", hook.display())
            .set("hooks.stop", hook.display())
            .set("hooks.fault", hook.display()),
        None => sample
            .remove("hooks.start")
            .remove("hooks.stop")
            .remove("hooks.fault"),
    }
}

/// One line per hook run, in hooks-<node>.log; the reason goes last as it has spaces.
pub const HOOK: &str = r#"#!/bin/sh
echo "$FAILOVERD_HOOK state=$FAILOVERD_STATE prev=$FAILOVERD_PREVIOUS_STATE node=$FAILOVERD_NODE peer=$FAILOVERD_PEER cluster=$FAILOVERD_CLUSTER vips=$FAILOVERD_VIPS reason=$FAILOVERD_REASON" >> "{dir}/hooks-$FAILOVERD_NODE.log"
"#;

pub struct Cluster<'a> {
    pub lab: &'a Lab,
    pub config: PathBuf,
    pub alpha: Child,
    pub beta: Child,
}

impl<'a> Cluster<'a> {
    /// Starts both daemons and waits until alpha, the preferred node, holds the VIP
    /// and beta has settled as its standby.
    pub fn start(lab: &'a Lab) -> Cluster<'a> {
        Cluster::start_with(lab, |sample| sample)
    }

    /// Like `start`, with the configuration changed by `edit` first.
    pub fn start_with(lab: &'a Lab, edit: impl FnOnce(Sample) -> Sample) -> Cluster<'a> {
        let cluster = Cluster::launch_with(lab, edit);
        cluster.wait_for(
            "alpha active with the VIP on n1 alone, beta standby",
            || {
                vip_on(lab, "n1")
                    && !vip_on(lab, "n2")
                    && lab.log(&cluster.beta).contains("-> standby")
            },
        );
        cluster
    }

    /// Starts a probe responder on each node and both daemons, with the configuration
    /// changed by `edit`, and returns at once.
    pub fn launch_with(lab: &'a Lab, edit: impl FnOnce(Sample) -> Sample) -> Cluster<'a> {
        Cluster::launch_with_beta(lab, edit, |config| start_daemon(lab, "n2", "beta", config))
    }

    /// Like `launch_with`, with beta's daemon started by `beta`, given the
    /// configuration's path: for a test that runs it its own way (see `run_args`).
    pub fn launch_with_beta(
        lab: &'a Lab,
        edit: impl FnOnce(Sample) -> Sample,
        beta: impl FnOnce(&Path) -> Child,
    ) -> Cluster<'a> {
        let config = write_config_with(lab, edit);
        lab.serve("n1", "alpha");
        lab.serve("n2", "beta");
        let alpha = start_daemon(lab, "n1", "alpha", &config);
        let beta = beta(&config);
        Cluster {
            lab,
            config,
            alpha,
            beta,
        }
    }

    /// Kills alpha's daemon outright and cuts n1 off both networks, as if the machine
    /// had died: the VIP it leaves on eth0 can no longer answer.
    pub fn crash_alpha(&mut self) {
        self.lab
            .kill(&self.alpha, Signal::SIGKILL)
            .expect("send SIGKILL to alpha");
        self.alpha.wait().expect("reap alpha");
        self.lab.link_down("n1", "eth0");
        self.lab.link_down("n1", "xo");
    }

    /// Brings n1 back after `crash_alpha` as a rebooted machine, without its daemon:
    /// the kernel holds no VIP, and both links are up.
    pub fn reboot_alpha(&mut self) {
        if vip_on(self.lab, "n1") {
            self.lab
                .exec_ok("n1", &["ip", "addr", "del", VIP_CIDR, "dev", "eth0"]);
        }
        self.lab.link_up("n1", "eth0");
        self.lab.link_up("n1", "xo");
    }

    /// Polls `cond` every `POLL` for up to `LIMIT`; panics with both logs if it never
    /// holds.
    pub fn wait_for(&self, what: &str, mut cond: impl FnMut() -> bool) {
        let deadline = Instant::now() + LIMIT;
        while !cond() {
            assert!(
                Instant::now() < deadline,
                "timed out after {LIMIT:?} waiting for {what}\n{}",
                self.logs()
            );
            std::thread::sleep(POLL);
        }
    }

    /// Waits for a line in `node`'s hook log from `hook` carrying every one of
    /// `fields` ("state=active"), and returns it.
    pub fn wait_for_hook(&self, node: &str, hook: &str, fields: &[&str]) -> String {
        let mut found = None;
        self.wait_for(
            &format!("a {hook} hook run on {node} with {fields:?}"),
            || {
                found = hook_lines(self.lab, node).into_iter().find(|line| {
                    let mut words = line.split_whitespace();
                    words.next() == Some(hook)
                        && fields.iter().all(|f| words.clone().any(|w| w == *f))
                });
                found.is_some()
            },
        );
        found.unwrap_or_default()
    }

    pub fn assert_log_contains(&self, node: &str, text: &str) {
        let child = match node {
            "alpha" => &self.alpha,
            _ => &self.beta,
        };
        self.wait_for(&format!("{text:?} in {node}'s log"), || {
            self.lab.log(child).contains(text)
        });
    }

    /// Stops alpha's daemon gracefully and starts it again.
    pub fn restart_alpha(&mut self) {
        let config = self.config.clone();
        let state = state_dir(self.lab, "alpha");
        self.restart("alpha", &config, Some(&state));
    }

    /// Stops `node`'s daemon with SIGTERM, checks that it exited 0, and starts it again
    /// with `config`, and `state` as its state directory (None: the configuration's).
    pub fn restart(&mut self, node: &str, config: &Path, state: Option<&Path>) {
        let (host, child) = match node {
            "alpha" => ("n1", &mut self.alpha),
            _ => ("n2", &mut self.beta),
        };
        self.lab
            .kill(child, Signal::SIGTERM)
            .unwrap_or_else(|e| panic!("send SIGTERM to {node}: {e}"));
        let exit = wait_exit(child);
        *child = start_daemon_in(self.lab, host, node, config, state);
        assert!(
            exit.success(),
            "{node}'s exit after SIGTERM: {exit}\n{}",
            self.logs()
        );
    }

    /// Both daemon logs and both hook logs, for failure messages.
    pub fn logs(&self) -> String {
        let mut out = String::new();
        for (node, child) in [("alpha", &self.alpha), ("beta", &self.beta)] {
            out.push_str(&format!(
                "--- {node}: {}\n{}",
                self.lab.log_path(child).display(),
                self.lab.log(child)
            ));
            out.push_str(&format!(
                "--- hooks-{node}.log\n{}\n",
                hook_lines(self.lab, node).join("\n")
            ));
        }
        out
    }
}

/// Writes the key, the hook script and the config into the lab's directory; returns
/// the config's path.
pub fn write_config(lab: &Lab) -> PathBuf {
    write_config_with(lab, |sample| sample)
}

/// Like `write_config`, with the configuration changed by `edit` first.
pub fn write_config_with(lab: &Lab, edit: impl FnOnce(Sample) -> Sample) -> PathBuf {
    let key = lab.write_key();
    let hook = write_hook(lab, "hook.sh", "");
    let sample = edit(config(&key, Some(&hook)));
    lab.write_file("failoverd.toml", &sample.to_string())
}

/// Both daemons share one file system here, so each gets its own control socket and
/// state directory (on real nodes the defaults in /run and /var/lib are per host).
pub fn start_daemon(lab: &Lab, host: &str, node: &str, config: &Path) -> Child {
    let state = state_dir(lab, node);
    start_daemon_in(lab, host, node, config, Some(&state))
}

/// Like `start_daemon`; without `state`, the daemon takes `[control] state_dir` from
/// its configuration file.
pub fn start_daemon_in(
    lab: &Lab,
    host: &str,
    node: &str,
    config: &Path,
    state: Option<&Path>,
) -> Child {
    let socket = node_socket(lab, node);
    let mut args = vec![
        "run",
        "--config",
        config.to_str().expect("UTF-8 path"),
        "--node",
        node,
        "--socket",
        socket.to_str().expect("UTF-8 path"),
    ];
    if let Some(state) = state {
        args.extend(["--state-dir", state.to_str().expect("UTF-8 path")]);
    }
    lab.spawn(host, failoverd(), &args)
}

/// The arguments `start_daemon` runs `node` with (`run` and its configuration,
/// control socket and state directory), for a test that starts it its own way.
pub fn run_args(lab: &Lab, node: &str, config: &Path) -> Vec<String> {
    let path = |path: &Path| path.to_str().expect("UTF-8 path").to_owned();
    vec![
        "run".into(),
        "--config".into(),
        path(config),
        "--node".into(),
        node.into(),
        "--socket".into(),
        path(&node_socket(lab, node)),
        "--state-dir".into(),
        path(&state_dir(lab, node)),
    ]
}

/// The state directory `start_daemon` gives `node`.
pub fn state_dir(lab: &Lab, node: &str) -> PathBuf {
    lab.tmpdir().join(format!("state-{node}"))
}

/// Waits (at most `LIMIT`) for a daemon to exit and returns how it ended.
pub fn wait_exit(child: &mut Child) -> ExitStatus {
    wait_exit_within(child, LIMIT)
}

/// Waits (at most `limit`) for a daemon to exit and returns how it ended.
pub fn wait_exit_within(child: &mut Child, limit: Duration) -> ExitStatus {
    let deadline = Instant::now() + limit;
    loop {
        if let Some(status) = child.try_wait().expect("wait for the daemon") {
            return status;
        }
        assert!(
            Instant::now() < deadline,
            "the daemon (pid {}) did not exit within {limit:?}",
            child.id()
        );
        std::thread::sleep(Duration::from_millis(5));
    }
}

/// Writes an executable hook `name` into the lab's directory: `HOOK`'s line in
/// hooks-<node>.log, then the shell lines `more`.
pub fn write_hook(lab: &Lab, name: &str, more: &str) -> PathBuf {
    let dir = lab.tmpdir().display().to_string();
    let text = format!(
        "{}{}\n",
        HOOK.replace("{dir}", &dir),
        more.replace("{dir}", &dir)
    );
    let hook = lab.write_file(name, &text);
    fs::set_permissions(&hook, fs::Permissions::from_mode(0o755)).expect("chmod the hook");
    hook
}

pub fn node_socket(lab: &Lab, node: &str) -> std::path::PathBuf {
    lab.tmpdir().join(format!("{node}.sock"))
}

/// `failoverd check` for alpha, run inside n1.
pub fn check(lab: &Lab, config: &Path) -> Output {
    let failoverd = failoverd();
    let args = [
        failoverd.to_str().expect("UTF-8 path"),
        "check",
        "--config",
        config.to_str().expect("UTF-8 path"),
        "--node",
        "alpha",
    ];
    lab.exec("n1", &args)
}

pub fn describe(output: &Output) -> String {
    format!(
        "{}\nstdout: {}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stdout).trim(),
        String::from_utf8_lossy(&output.stderr).trim()
    )
}

pub fn vip_on(lab: &Lab, host: &str) -> bool {
    lab.addresses(host, "eth0").iter().any(|a| a == VIP_CIDR)
}

pub fn hook_lines(lab: &Lab, node: &str) -> Vec<String> {
    fs::read_to_string(lab.tmpdir().join(format!("hooks-{node}.log")))
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

// --- operations through the control socket ----------------------------------------

/// Runs a client command against `node`'s daemon.
pub fn ctl(lab: &Lab, node: &str, args: &[&str]) -> Output {
    let socket = node_socket(lab, node);
    Command::new(failoverd())
        .args(args)
        .arg("--socket")
        .arg(&socket)
        .output()
        .expect("run the failoverd client")
}

/// The status, or None while the daemon is not answering yet.
pub fn try_status_of(lab: &Lab, node: &str) -> Option<Status> {
    let output = ctl(lab, node, &["status", "--json"]);
    serde_json::from_slice(&output.stdout).ok()
}

pub fn status_of(lab: &Lab, node: &str) -> Status {
    let output = ctl(lab, node, &["status", "--json"]);
    assert!(
        output.status.success(),
        "status --json: {}",
        describe(&output)
    );
    serde_json::from_slice(&output.stdout).expect("status --json parses")
}

/// When each daemon log line containing `text` was written, as time of day, in
/// the order of the log.
pub fn logged_times(log: &str, text: &str) -> Vec<Duration> {
    log.lines()
        .filter(|l| l.contains(text))
        .map(|line| {
            // "2026-11-30T03:19:57.559419Z  WARN ...": hours, minutes, seconds.
            let clock = line
                .get(11..26)
                .unwrap_or_else(|| panic!("no time in {line:?}"));
            let parts: Vec<f64> = clock
                .split(':')
                .map(|p| p.parse().unwrap_or_else(|_| panic!("no time in {line:?}")))
                .collect();
            Duration::from_secs_f64(parts[0] * 3600.0 + parts[1] * 60.0 + parts[2])
        })
        .collect()
}

/// When the first daemon log line containing `text` was written, as time of day.
pub fn logged_at(log: &str, text: &str) -> Duration {
    logged_times(log, text)
        .first()
        .copied()
        .unwrap_or_else(|| panic!("no {text:?} in the log:\n{log}"))
}
