//! End-to-end tests: real `failoverd run` processes for alpha (on n1) and beta (on n2)
//! in the namespaces of the test lab (tests/common), with a client probing the VIP.
//! They pin what only whole daemons on a real kernel can show: who holds the VIP, that
//! the client follows it, that it is never on both nodes at once, and what hooks see.
//!
//! Every wait is a bounded poll; time limits are generous sanity bounds, not
//! performance claims. They need root, like the lab itself.

#![allow(
    clippy::zombie_processes,
    reason = "the Lab kills and reaps the processes it spawned when it is dropped"
)]

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output};
use std::time::{Duration, Instant};

use common::{Lab, Probe, VIP, failoverd};
use failoverd::status::Status;
use nix::sys::signal::Signal;

/// The VIP as the config writes it and `ip addr` lists it.
const VIP_CIDR: &str = "198.18.0.10/24";
/// Upper bound for anything the daemons should do by themselves.
const LIMIT: Duration = Duration::from_secs(10);
/// How often a wait looks again.
const POLL: Duration = Duration::from_millis(50);
/// How often a handover is sampled when looking for the VIP on both nodes.
const HANDOVER_POLL: Duration = Duration::from_millis(5);
/// `timing.dead` in the config: three of these pass without anything moving in
/// `crossover_cut_moves_nothing`.
const DEAD: Duration = Duration::from_millis(300);

/// The cluster configuration; `{key}` and `{hook}` are filled in by `write_config`.
const CONFIG: &str = r#"[cluster]
name = "e2e"
key_file = "{key}"
port = 694
failback = "auto"
failback_delay = "1s"

[timing]
interval = "50ms"
warn = "150ms"
dead = "300ms"
init_dead = "1s"

[[link]]
name = "crossover"

[[link]]
name = "lan"

[[node]]
name = "alpha"
priority = 200
addresses = { crossover = "198.19.0.1", lan = "198.18.0.11" }

[[node]]
name = "beta"
priority = 100
addresses = { crossover = "198.19.0.2", lan = "198.18.0.12" }

[[vip]]
address = "198.18.0.10/24"
interface = "eth0"
label = "eth0:vip"

[health]
gateways = ["198.18.0.1"]
interval = "100ms"
timeout = "100ms"
failures = 3

[hooks]
start = "{hook}"
stop = "{hook}"
fault = "{hook}"
timeout = "10s"

[announce]
count = 3
interval = "50ms"
refresh = "60s"
"#;

/// One line per hook run, in hooks-<node>.log; the reason goes last as it has spaces.
const HOOK: &str = r#"#!/bin/sh
echo "$FAILOVERD_HOOK state=$FAILOVERD_STATE prev=$FAILOVERD_PREVIOUS_STATE node=$FAILOVERD_NODE peer=$FAILOVERD_PEER cluster=$FAILOVERD_CLUSTER vips=$FAILOVERD_VIPS reason=$FAILOVERD_REASON" >> "{dir}/hooks-$FAILOVERD_NODE.log"
"#;

#[test]
fn preferred_node_takes_the_vip_and_the_client_reaches_it() {
    let lab = Lab::new();
    let cluster = Cluster::start(&lab);

    let probe = lab.probe(&answer_from("alpha"));
    assert!(
        probe.stopped_early,
        "the client got no answers from alpha: {}\n{}",
        probe.raw,
        cluster.logs()
    );
    assert_eq!(
        probe.answers_from("beta"),
        0,
        "beta answered for the VIP: {}\n{}",
        probe.raw,
        cluster.logs()
    );

    let output = check(&lab, &cluster.config);
    assert_eq!(
        output.status.code(),
        Some(0),
        "failoverd check rejected the config: {}",
        describe(&output)
    );
}

#[test]
fn node_death_moves_the_vip_to_the_standby() {
    let lab = Lab::new();
    let mut cluster = Cluster::start(&lab);

    cluster.crash_alpha();
    let probe = lab.probe(&answer_from("beta"));
    assert!(
        probe.stopped_early && probe.last_responder.as_deref() == Some("beta"),
        "the client never reached beta after alpha died: {}\n{}",
        probe.raw,
        cluster.logs()
    );
    cluster.wait_for("the VIP on n2", || vip_on(&lab, "n2"));
    cluster.assert_log_contains("beta", "peer alpha dead on all links");
}

#[test]
fn graceful_stop_hands_over_without_overlap() {
    let lab = Lab::new();
    let mut cluster = Cluster::start(&lab);

    lab.kill(&cluster.alpha, Signal::SIGTERM)
        .expect("send SIGTERM to alpha");
    let mut exit: Option<ExitStatus> = None;
    let watch = watch_handover(&lab, "n1", "n2", |on_n1, on_n2| {
        if exit.is_none() {
            exit = cluster.alpha.try_wait().expect("wait for alpha");
        }
        exit.is_some() && on_n2 && !on_n1
    });
    assert!(
        watch.finished,
        "within {LIMIT:?} of SIGTERM alpha did not exit (status {exit:?}) or the VIP did \
         not end up on n2 alone\n{}",
        cluster.logs()
    );
    assert_eq!(
        watch.overlaps,
        0,
        "the VIP was on both nodes in {} of {} polls\n{}",
        watch.overlaps,
        watch.polls,
        cluster.logs()
    );
    assert_eq!(
        exit.and_then(|s| s.code()),
        Some(0),
        "alpha's exit after SIGTERM: {exit:?}\n{}",
        cluster.logs()
    );
    cluster.assert_log_contains("beta", "peer alpha shut down");
    let stop = cluster.wait_for_hook("alpha", "stop", &["state=stopped", "prev=active"]);
    assert!(
        stop.contains(&format!("vips={VIP_CIDR}")),
        "alpha's stop hook: {stop}"
    );
    assert!(
        !vip_on(&lab, "n1"),
        "the VIP is still on n1 after alpha stopped\n{}",
        cluster.logs()
    );
}

#[test]
fn crossover_cut_moves_nothing() {
    let lab = Lab::new();
    let cluster = Cluster::start(&lab);

    let cut = Instant::now();
    lab.link_down("n1", "xo");
    cluster.wait_for("beta to report the crossover link dead", || {
        lab.log(&cluster.beta)
            .contains("link crossover to alpha dead")
    });
    // Give a wrong decision time to show: three times `dead` since the cut.
    let settle = (DEAD * 3 + Duration::from_millis(600)).saturating_sub(cut.elapsed());
    std::thread::sleep(settle);

    assert!(
        vip_on(&lab, "n1") && !vip_on(&lab, "n2"),
        "the VIP moved after a crossover cut: n1 {:?}, n2 {:?}\n{}",
        lab.addresses("n1", "eth0"),
        lab.addresses("n2", "eth0"),
        cluster.logs()
    );
    let beta = lab.log(&cluster.beta);
    assert!(
        !beta.contains("-> active"),
        "beta went active while alpha was alive on the LAN\n{}",
        cluster.logs()
    );
}

#[test]
fn gateway_loss_on_the_active_node_moves_the_vip() {
    let lab = Lab::new();
    let cluster = Cluster::start(&lab);

    lab.blackhole("n1", common::GATEWAY);
    let watch = watch_handover(&lab, "n1", "n2", |on_n1, on_n2| {
        on_n2 && !on_n1 && lab.log(&cluster.alpha).contains("-> fault")
    });
    assert!(
        watch.finished,
        "within {LIMIT:?} of losing its gateway alpha did not go to fault or the VIP did \
         not end up on n2 alone: n1 {:?}, n2 {:?}\n{}",
        lab.addresses("n1", "eth0"),
        lab.addresses("n2", "eth0"),
        cluster.logs()
    );
    assert_eq!(
        watch.overlaps,
        0,
        "the VIP was on both nodes in {} of {} polls\n{}",
        watch.overlaps,
        watch.polls,
        cluster.logs()
    );
    let probe = lab.probe(&answer_from("beta"));
    assert!(
        probe.stopped_early,
        "the client does not reach beta: {}\n{}",
        probe.raw,
        cluster.logs()
    );
}

#[test]
fn vip_interface_down_on_the_active_node_moves_the_vip() {
    let lab = Lab::new();
    let cluster = Cluster::start(&lab);

    // The crossover stays up, so the nodes still hear each other: alpha learns it
    // is less healthy than beta and hands over, rather than being declared dead.
    lab.link_down("n1", "eth0");
    cluster.wait_for("alpha to release after its VIP interface went down", || {
        vip_on(&lab, "n2") && !vip_on(&lab, "n1") && lab.log(&cluster.alpha).contains("-> fault")
    });
    assert!(lab.log(&cluster.alpha).contains("interface eth0 is down"));
    let probe = lab.probe(&answer_from("beta"));
    assert!(
        probe.stopped_early,
        "the client does not reach beta: {}\n{}",
        probe.raw,
        cluster.logs()
    );
}

#[test]
fn hooks_run_with_the_right_environment() {
    let lab = Lab::new();
    let mut cluster = Cluster::start(&lab);

    let start = cluster.wait_for_hook(
        "alpha",
        "start",
        &[
            "state=active",
            "node=alpha",
            "peer=beta",
            "cluster=e2e",
            &format!("vips={VIP_CIDR}"),
        ],
    );
    assert!(
        !start.ends_with("reason="),
        "alpha's start hook got no reason: {start}"
    );

    cluster.crash_alpha();
    let start = cluster.wait_for_hook(
        "beta",
        "start",
        &[
            "state=active",
            "prev=standby",
            "node=beta",
            "peer=alpha",
            "cluster=e2e",
            &format!("vips={VIP_CIDR}"),
        ],
    );
    assert!(
        start.ends_with("reason=peer alpha dead on all links"),
        "beta's start hook: {start}\n{}",
        cluster.logs()
    );
}

#[test]
fn stale_vip_is_removed_at_start() {
    let lab = Lab::new();
    lab.exec_ok("n2", &["ip", "addr", "add", VIP_CIDR, "dev", "eth0"]);
    assert!(vip_on(&lab, "n2"), "the stale VIP was not added to n2");

    // `Cluster::start` waits until n1 holds the VIP and n2 does not.
    let cluster = Cluster::start(&lab);
    cluster.assert_log_contains(
        "beta",
        &format!("VIP {VIP_CIDR} found on this node at start"),
    );
}

#[test]
fn invalid_config_is_rejected_with_exit_code_2() {
    let lab = Lab::new();
    let config = write_config(&lab);
    let text = fs::read_to_string(&config).expect("read the config");
    let broken = text
        .replace("priority = 200", "priority = \"high\"")
        .replace("failures = 3", "failures = 3\nretries = 4");
    let broken = lab.write_file("broken.toml", &broken);

    let output = check(&lab, &broken);
    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    for key in ["node[0].priority", "health.retries"] {
        assert!(
            stderr.contains(key),
            "{key} not named: {}",
            describe(&output)
        );
    }

    let key = lab.tmpdir().join("authkey");
    fs::set_permissions(&key, fs::Permissions::from_mode(0o644)).expect("chmod the key");
    let output = check(&lab, &config);
    assert_eq!(output.status.code(), Some(2), "{}", describe(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("cluster.key_file") && stderr.contains("0644"),
        "the key file's mode is not named: {}",
        describe(&output)
    );
}

/// Two daemons running the same config: alpha on n1, beta on n2, with a probe
/// responder on each node.
struct Cluster<'a> {
    lab: &'a Lab,
    config: PathBuf,
    alpha: Child,
    beta: Child,
}

impl<'a> Cluster<'a> {
    /// Starts both daemons and waits until alpha, the preferred node, holds the VIP
    /// and beta has settled as its standby.
    fn start(lab: &'a Lab) -> Cluster<'a> {
        Cluster::start_with(lab, |text| text)
    }

    /// Like `start`, with the configuration text changed by `edit` first.
    fn start_with(lab: &'a Lab, edit: impl Fn(String) -> String) -> Cluster<'a> {
        let config = write_config(lab);
        let text = fs::read_to_string(&config).expect("read the config");
        fs::write(&config, edit(text)).expect("write the config");
        lab.serve("n1", "alpha");
        lab.serve("n2", "beta");
        let alpha = start_daemon(lab, "n1", "alpha", &config);
        let beta = start_daemon(lab, "n2", "beta", &config);
        let cluster = Cluster {
            lab,
            config,
            alpha,
            beta,
        };
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

    /// Kills alpha's daemon outright and cuts n1 off both networks, as if the machine
    /// had died: the VIP it leaves on eth0 can no longer answer.
    fn crash_alpha(&mut self) {
        self.lab
            .kill(&self.alpha, Signal::SIGKILL)
            .expect("send SIGKILL to alpha");
        self.alpha.wait().expect("reap alpha");
        self.lab.link_down("n1", "eth0");
        self.lab.link_down("n1", "xo");
    }

    /// Polls `cond` every `POLL` for up to `LIMIT`; panics with both logs if it never
    /// holds.
    fn wait_for(&self, what: &str, mut cond: impl FnMut() -> bool) {
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
    fn wait_for_hook(&self, node: &str, hook: &str, fields: &[&str]) -> String {
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

    fn assert_log_contains(&self, node: &str, text: &str) {
        let child = match node {
            "alpha" => &self.alpha,
            _ => &self.beta,
        };
        self.wait_for(&format!("{text:?} in {node}'s log"), || {
            self.lab.log(child).contains(text)
        });
    }

    /// Both daemon logs and both hook logs, for failure messages.
    /// Stops alpha's daemon gracefully and starts it again.
    fn restart_alpha(&mut self) {
        self.lab
            .kill(&self.alpha, Signal::SIGTERM)
            .expect("send SIGTERM to alpha");
        self.alpha.wait().expect("reap alpha");
        self.alpha = start_daemon(self.lab, "n1", "alpha", &self.config);
    }

    fn logs(&self) -> String {
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
fn write_config(lab: &Lab) -> PathBuf {
    let key = lab.write_key();
    let hook = lab.write_file(
        "hook.sh",
        &HOOK.replace("{dir}", &lab.tmpdir().display().to_string()),
    );
    fs::set_permissions(&hook, fs::Permissions::from_mode(0o755)).expect("chmod the hook");
    let text = CONFIG
        .replace("{key}", &key.display().to_string())
        .replace("{hook}", &hook.display().to_string());
    lab.write_file("failoverd.toml", &text)
}

/// Both daemons share one file system here, so each gets its own control socket and
/// state directory (on real nodes the defaults in /run and /var/lib are per host).
fn start_daemon(lab: &Lab, host: &str, node: &str, config: &Path) -> Child {
    let config = config.to_str().expect("UTF-8 path");
    let socket = node_socket(lab, node);
    let state = lab.tmpdir().join(format!("state-{node}"));
    lab.spawn(
        host,
        failoverd(),
        &[
            "run",
            "--config",
            config,
            "--node",
            node,
            "--socket",
            socket.to_str().expect("UTF-8 path"),
            "--state-dir",
            state.to_str().expect("UTF-8 path"),
        ],
    )
}

fn node_socket(lab: &Lab, node: &str) -> std::path::PathBuf {
    lab.tmpdir().join(format!("{node}.sock"))
}

/// `failoverd check` for alpha, run inside n1.
fn check(lab: &Lab, config: &Path) -> Output {
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

fn describe(output: &Output) -> String {
    format!(
        "{}\nstdout: {}\nstderr: {}",
        output.status,
        String::from_utf8_lossy(&output.stdout).trim(),
        String::from_utf8_lossy(&output.stderr).trim()
    )
}

fn vip_on(lab: &Lab, host: &str) -> bool {
    lab.addresses(host, "eth0").iter().any(|a| a == VIP_CIDR)
}

fn hook_lines(lab: &Lab, node: &str) -> Vec<String> {
    fs::read_to_string(lab.tmpdir().join(format!("hooks-{node}.log")))
        .unwrap_or_default()
        .lines()
        .map(str::to_owned)
        .collect()
}

/// Probes the VIP from the client for up to ten seconds, stopping a few probes after
/// `responder` first answers.
fn answer_from(responder: &str) -> Probe {
    Probe::new(VIP)
        .count(1000)
        .interval(Duration::from_millis(10))
        .timeout(Duration::from_millis(200))
        .stop_after(responder, 5)
}

/// What `watch_handover` saw.
struct Watch {
    /// Whether `done` held before `LIMIT`.
    finished: bool,
    polls: u32,
    /// Polls that found the VIP on both nodes.
    overlaps: u32,
}

/// Samples the VIP on both nodes every `HANDOVER_POLL` until `done(on_from, on_to)`
/// holds or `LIMIT` passes. The node gaining the VIP is read first: during a handover
/// `from` only loses it and `to` only gains it, so seeing it on `to` and then still on
/// `from` means both held it at the same moment, not merely within one poll.
fn watch_handover(
    lab: &Lab,
    from: &str,
    to: &str,
    mut done: impl FnMut(bool, bool) -> bool,
) -> Watch {
    let deadline = Instant::now() + LIMIT;
    let mut watch = Watch {
        finished: false,
        polls: 0,
        overlaps: 0,
    };
    while Instant::now() < deadline {
        let on_to = vip_on(lab, to);
        let on_from = vip_on(lab, from);
        watch.polls += 1;
        if on_to && on_from {
            watch.overlaps += 1;
        }
        if done(on_from, on_to) {
            watch.finished = true;
            break;
        }
        std::thread::sleep(HANDOVER_POLL);
    }
    watch
}

// --- operations through the control socket ----------------------------------------

/// Runs a client command against `node`'s daemon.
fn ctl(lab: &Lab, node: &str, args: &[&str]) -> Output {
    let socket = node_socket(lab, node);
    Command::new(failoverd())
        .args(args)
        .arg("--socket")
        .arg(&socket)
        .output()
        .expect("run the failoverd client")
}

/// The status, or None while the daemon is not answering yet.
fn try_status_of(lab: &Lab, node: &str) -> Option<Status> {
    let output = ctl(lab, node, &["status", "--json"]);
    serde_json::from_slice(&output.stdout).ok()
}

fn status_of(lab: &Lab, node: &str) -> Status {
    let output = ctl(lab, node, &["status", "--json"]);
    assert!(
        output.status.success(),
        "status --json: {}",
        describe(&output)
    );
    serde_json::from_slice(&output.stdout).expect("status --json parses")
}

#[test]
fn status_shows_the_active_node_and_live_links() {
    let lab = Lab::new();
    let cluster = Cluster::start(&lab);
    cluster.wait_for("beta to see alpha on both links", || {
        status_of(&lab, "beta").peers[0]
            .links
            .iter()
            .all(|l| l.state == "ok")
    });

    let alpha = status_of(&lab, "alpha");
    assert_eq!(alpha.node, "alpha");
    assert_eq!(alpha.state, "active");
    assert_eq!(alpha.vips[0].address, "198.18.0.10/24");
    assert!(alpha.vips[0].held_here);
    assert_eq!(alpha.peers[0].name, "beta");
    assert_eq!(alpha.peers[0].state, "standby");
    assert_eq!(alpha.peers[0].fingerprint_match, Some(true));
    assert!(alpha.health.gateways[0].reachable);
    let beta = status_of(&lab, "beta");
    assert_eq!(beta.state, "standby");
    assert_eq!(beta.vips[0].holder.as_deref(), Some("alpha"));
    assert!(!beta.vips[0].held_here);

    let human = ctl(&lab, "alpha", &["status"]);
    assert_eq!(human.status.code(), Some(0), "{}", describe(&human));
    let text = String::from_utf8_lossy(&human.stdout);
    assert!(text.contains("alpha") && text.contains("ACTIVE"), "{text}");
    assert!(!text.contains('\x1b'), "colour on a pipe: {text}");
}

#[test]
fn takeover_moves_the_vip_to_the_asking_node_without_overlap() {
    let lab = Lab::new();
    let cluster = Cluster::start(&lab);
    let watcher = std::thread::scope(|scope| {
        let watch =
            scope.spawn(|| watch_handover(&lab, "n1", "n2", |on_n1, on_n2| on_n2 && !on_n1));
        let output = ctl(&lab, "beta", &["takeover", "--timeout", "10s"]);
        assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
        watch.join().expect("watcher")
    });
    assert!(
        watcher.finished,
        "the VIP did not move to n2\n{}",
        cluster.logs()
    );
    assert_eq!(watcher.overlaps, 0, "VIP on both nodes\n{}", cluster.logs());
    assert!(lab.log(&cluster.beta).contains("operator takeover"));
    // The operator's choice stands against automatic failback (delay 1 s).
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        vip_on(&lab, "n2") && !vip_on(&lab, "n1"),
        "{}",
        cluster.logs()
    );
    // A second takeover is refused with a reason.
    let again = ctl(&lab, "beta", &["takeover"]);
    assert_eq!(again.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&again.stderr).contains("already active"));
}

#[test]
fn standby_hands_the_vip_over_and_stays_standby() {
    let lab = Lab::new();
    let cluster = Cluster::start(&lab);
    let output = ctl(&lab, "alpha", &["standby", "--timeout", "10s"]);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    assert!(
        vip_on(&lab, "n2") && !vip_on(&lab, "n1"),
        "{}",
        cluster.logs()
    );
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        vip_on(&lab, "n2") && !vip_on(&lab, "n1"),
        "{}",
        cluster.logs()
    );
    let alpha = status_of(&lab, "alpha");
    assert_eq!(alpha.state, "standby");
    assert!(alpha.standby_requested);
}

#[test]
fn failback_returns_the_vip_to_the_preferred_node() {
    let lab = Lab::new();
    let mut cluster = Cluster::start_with(&lab, |c| {
        c.replace("failback = \"auto\"", "failback = \"manual\"")
    });
    let output = ctl(&lab, "alpha", &["standby", "--timeout", "10s"]);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    // A restart clears alpha's standby request; with manual failback beta keeps
    // the VIP until an operator moves it back.
    cluster.restart_alpha();
    cluster.wait_for("alpha standby again after its restart", || {
        try_status_of(&lab, "alpha").is_some_and(|s| s.state == "standby")
    });
    assert!(vip_on(&lab, "n2"), "{}", cluster.logs());
    let output = ctl(&lab, "beta", &["failback", "--timeout", "10s"]);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    assert!(
        vip_on(&lab, "n1") && !vip_on(&lab, "n2"),
        "{}",
        cluster.logs()
    );
    let refused = ctl(&lab, "alpha", &["failback"]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("already on the preferred node"));
}

#[test]
fn maintenance_freezes_moves_until_turned_off() {
    let lab = Lab::new();
    let cluster = Cluster::start(&lab);
    let output = ctl(&lab, "beta", &["maintenance", "on"]);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    cluster.wait_for("alpha to see the maintenance", || {
        status_of(&lab, "alpha").maintenance.on
    });
    lab.blackhole("n1", common::GATEWAY);
    std::thread::sleep(Duration::from_secs(2));
    assert!(
        vip_on(&lab, "n1") && !vip_on(&lab, "n2"),
        "moved in maintenance\n{}",
        cluster.logs()
    );
    let text = String::from_utf8_lossy(&ctl(&lab, "alpha", &["status"]).stdout).to_string();
    assert!(text.contains("MAINTENANCE"), "{text}");
    let refused = ctl(&lab, "alpha", &["standby"]);
    assert_eq!(refused.status.code(), Some(1));
    let output = ctl(&lab, "beta", &["maintenance", "off"]);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    cluster.wait_for("the VIP to move to beta once maintenance is off", || {
        vip_on(&lab, "n2") && !vip_on(&lab, "n1")
    });
}

#[test]
fn reload_applies_a_new_priority_and_vip_without_dropping_the_old_one() {
    let lab = Lab::new();
    let cluster = Cluster::start(&lab);
    let text = fs::read_to_string(&cluster.config).expect("read the config");
    let text = text.replace("priority = 100", "priority = 250").replace(
        "[health]",
        "[[vip]]\naddress = \"198.18.0.20/24\"\ninterface = \"eth0\"\n\n[health]",
    );
    fs::write(&cluster.config, text).expect("write the config");
    for node in ["alpha", "beta"] {
        let output = ctl(&lab, node, &["reload"]);
        assert_eq!(
            output.status.code(),
            Some(0),
            "{node}: {}",
            describe(&output)
        );
    }
    // Right after the reload alpha holds both, the old one never dropped.
    let addresses = lab.addresses("n1", "eth0");
    assert!(
        addresses.iter().any(|a| a == "198.18.0.10/24"),
        "{addresses:?}"
    );
    cluster.wait_for("alpha to add the new VIP", || {
        lab.addresses("n1", "eth0")
            .iter()
            .any(|a| a == "198.18.0.20/24")
    });
    // Beta now ranks first: failback (auto, 1 s) moves both VIPs to it.
    cluster.wait_for("both VIPs on beta after the priority change", || {
        let n2 = lab.addresses("n2", "eth0");
        n2.iter().any(|a| a == "198.18.0.10/24") && n2.iter().any(|a| a == "198.18.0.20/24")
    });
    assert!(lab.log(&cluster.beta).contains("configuration reloaded"));
}

#[test]
fn an_invalid_reload_is_rejected_and_the_old_configuration_kept() {
    let lab = Lab::new();
    let cluster = Cluster::start(&lab);
    let text = fs::read_to_string(&cluster.config).expect("read the config");
    fs::write(
        &cluster.config,
        text.replace("priority = 200", "priority = \"high\""),
    )
    .expect("write the config");
    let output = ctl(&lab, "alpha", &["reload"]);
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    assert!(String::from_utf8_lossy(&output.stderr).contains("node[0].priority"));
    assert!(lab.log(&cluster.alpha).contains("reload rejected"));
    assert_eq!(status_of(&lab, "alpha").state, "active");
    assert!(vip_on(&lab, "n1"));
}

#[test]
fn status_of_a_stopped_daemon_exits_3_with_one_line() {
    let lab = Lab::new();
    let output = ctl(&lab, "alpha", &["status"]);
    assert_eq!(output.status.code(), Some(3), "{}", describe(&output));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(stderr.trim().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("not running"), "{stderr}");
}
