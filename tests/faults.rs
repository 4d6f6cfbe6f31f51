//! Fault injection against real daemons in the namespace lab: the things that go
//! wrong in ways nobody planned. A hook that hangs, a flood of junk, a daemon killed
//! or frozen while it holds the VIP, strangers on the heartbeat links, a primary that
//! keeps restarting, and broken configuration files.
//!
//! Like the end-to-end tests they need root, every wait and loop is bounded, and every
//! fault that moves, or could move, the VIP runs inside `Cluster::across`
//! (tests/common/crossing.rs): the client's view and the kernels' record held to the
//! rule.

#![allow(
    clippy::zombie_processes,
    reason = "the Lab kills and reaps the processes it spawned when it is dropped"
)]

mod common;

use std::fs::{self, File};
use std::net::UdpSocket;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use common::cluster::*;
use common::crossing::{DEATH_SLACK, Expect, SHORT_GAP};
use common::{Lab, failoverd};
use failoverd::machine::Role;
use failoverd::wire::heartbeat::{Heartbeat, Signer, WireState};
use nix::sched::{CloneFlags, setns};
use nix::sys::signal::Signal;

/// Resident memory of a process, from /proc.
fn rss_kib(pid: u32) -> u64 {
    let status = fs::read_to_string(format!("/proc/{pid}/status")).expect("read /proc status");
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmRSS")
}

/// Sends `count` datagrams (alternately junk and heartbeats signed with the wrong
/// key) from the client namespace to both nodes' heartbeat ports, on a thread that
/// joins that namespace. Bounded in count and in time.
fn flood(lab: &Lab, count: u32, limit: Duration) -> std::thread::JoinHandle<u32> {
    let ns = format!("/run/netns/{}", lab.ns("cl"));
    std::thread::spawn(move || {
        let netns = File::open(&ns).expect("open the client namespace");
        setns(&netns, CloneFlags::CLONE_NEWNET).expect("join the client namespace");
        let socket = UdpSocket::bind("0.0.0.0:0").expect("bind in the client namespace");
        let forger = Signer::new(b"not the cluster key, not at all");
        let mut forged = Vec::new();
        let started = Instant::now();
        let mut sent = 0;
        for i in 0..count {
            if started.elapsed() > limit {
                break;
            }
            let hb = Heartbeat {
                link: 1,
                state: WireState::Active,
                flags: 0,
                health: 0,
                priority: u16::MAX,
                incarnation: u64::from(i),
                sequence: u64::from(i),
                fingerprint: [0; 8],
                nonce: 1,
                echo: 1,
                votes: None,
                quiet: false,
                wake: false,
                cluster: "e2e".into(),
                node: "alpha".into(),
            };
            forged.clear();
            hb.encode(&forger, &mut forged);
            let junk = [0xa5u8; 64];
            let payload: &[u8] = if i % 2 == 0 { &forged } else { &junk };
            for target in ["198.18.0.11:694", "198.18.0.12:694"] {
                if socket.send_to(payload, target).is_ok() {
                    sent += 1;
                }
            }
            if i % 64 == 0 {
                std::thread::sleep(Duration::from_millis(1));
            }
        }
        sent
    })
}

#[test]
fn a_hanging_start_hook_is_killed_and_heartbeats_never_stall() {
    let lab = Lab::new();
    let hang = lab.write_file(
        "hang.sh",
        "#!/bin/sh\nsleep 1000 &\necho \"$!\" >> \"$(dirname \"$0\")/sleepers\"\nsleep 1000\n",
    );
    fs::set_permissions(&hang, fs::Permissions::from_mode(0o755)).expect("chmod");
    let mut cluster = Cluster::start_with(&lab, |sample| {
        sample
            .set("hooks.timeout", "2s")
            .set("hooks.start", hang.display())
            // This test is about heartbeats while a hook hangs; a start hook that
            // fails would otherwise hand the VIP over (start_failure = "release").
            .set("hooks.start_failure", "ignore")
    });
    // The VIP is in place before the start hook runs, and stays while it hangs.
    cluster.across(&Expect::stays("alpha"), |c| {
        c.wait_for("alpha's start hook to be killed at its timeout", || {
            lab.log(&c.alpha)
                .contains("start hook failed: timed out after 2s")
        });
    });
    // Meanwhile beta heard alpha all along: no late heartbeat, no takeover.
    let beta = lab.log(&cluster.beta);
    assert!(
        !beta.contains("are late: none for"),
        "heartbeats stalled:\n{beta}"
    );
    assert!(!beta.contains("-> active"), "false failover:\n{beta}");
    // The whole process group went, the backgrounded sleeper too.
    let sleepers = fs::read_to_string(lab.tmpdir().join("sleepers")).expect("sleeper pids");
    for pid in sleepers.split_whitespace() {
        assert!(
            !std::path::Path::new(&format!("/proc/{pid}")).exists()
                || fs::read_to_string(format!("/proc/{pid}/stat"))
                    .is_ok_and(|s| s.contains(") Z ")),
            "hook child {pid} outlived the timeout"
        );
    }
}

/// A check that hangs: "none of that may delay a heartbeat" (src/daemon/checks).
/// An `exec` check on both nodes that sleeps far past its timeout once the file
/// `hang-<node>` exists, with a sleeper in the background that the shell takes down
/// with it on SIGTERM. On alpha every run times out and counts as failed, so after
/// `fall` runs alpha hands over, as fast as a check that fails at once plus its
/// timeout; meanwhile neither node logs a late heartbeat. Each timed-out run's
/// process group is killed, the background sleeper too.
#[test]
fn a_hanging_check_delays_neither_heartbeats_nor_the_move_it_triggers() {
    let lab = Lab::new();
    let hang = "trap 'kill $!; wait; exit 1' TERM; sleep 1000 & echo $! >> {dir}/sleepers; wait";
    let mut cluster = hanging_check_cluster(&lab, hang);
    let took = hang_alpha(&mut cluster);
    let bound = hang_bound();
    eprintln!("hang to beta holding the VIP: {took:?} (at most {bound:?})");
    assert!(
        took <= bound,
        "beta held the VIP {took:?} after alpha's check began to hang, at most \
         {bound:?}\n{}",
        cluster.logs()
    );
    // Every run that hung is gone a moment after its timeout: once the flag is gone
    // the runs pass, and the last one that hung began at most an interval before.
    fs::remove_file(lab.tmpdir().join("hang-alpha")).expect("remove the flag");
    std::thread::sleep(HANG_INTERVAL + HANG_TIMEOUT + SHORT_GAP);
    let sleepers = fs::read_to_string(lab.tmpdir().join("sleepers")).expect("sleeper pids");
    let pids: Vec<&str> = sleepers.split_whitespace().collect();
    assert!(pids.len() >= HANG_FALL as usize, "sleepers: {sleepers}");
    for pid in pids {
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists(),
            "process {pid} of a timed-out check run outlived its timeout\n{}",
            cluster.logs()
        );
    }
}

/// The same with a check whose processes ignore SIGTERM (a program that traps it):
/// `fall` runs one `interval` apart still make the move. Killing a timed-out run's
/// group takes the whole SIGKILL grace (1.5 s) here, and the next run does not wait
/// for it (it once did, and each timed-out run cost 1.6 s); the same holds for a run
/// that leaves an orphan init does not reap at once.
#[test]
fn a_check_that_ignores_sigterm_still_fails_after_fall_intervals() {
    let lab = Lab::new();
    let mut cluster = hanging_check_cluster(&lab, "trap '' TERM; sleep 1000");
    let took = hang_alpha(&mut cluster);
    let bound = hang_bound();
    assert!(
        took <= bound,
        "beta held the VIP {took:?} after alpha's check began to hang, at most \
         {bound:?}\n{}",
        cluster.logs()
    );
}

/// The longest from the first hanging run to the peer holding the VIP, by the
/// rule for every check: `fall` failed runs one interval apart, the first within an
/// interval (here each failing at its timeout, which is at most an interval), then a
/// planned handover (`SHORT_GAP`, as for every planned move).
fn hang_bound() -> Duration {
    HANG_INTERVAL * (HANG_FALL + 1) + SHORT_GAP
}

/// `interval`, `timeout` and `fall` of the hanging check.
const HANG_INTERVAL: Duration = Duration::from_millis(200);
const HANG_TIMEOUT: Duration = Duration::from_millis(100);
const HANG_FALL: u32 = 2;

/// The lab's cluster, failback manual, with an `exec` check named `hang` on both
/// nodes that runs the shell line `hang` (`{dir}` is the lab's directory) while
/// `hang-<node>` exists, and passes otherwise.
fn hanging_check_cluster<'a>(lab: &'a Lab, hang: &str) -> Cluster<'a> {
    let dir = lab.tmpdir().display().to_string();
    let line = format!(
        "if [ -e {dir}/hang-$FAILOVERD_NODE ]; then {}; fi",
        hang.replace("{dir}", &dir)
    );
    let check = format!(
        "[[check]]\nname = \"hang\"\nkind = \"exec\"\ncommand = [\"/bin/sh\", \"-c\", {}]\n\
         interval = \"{}ms\"\ntimeout = \"{}ms\"\nfall = {HANG_FALL}\n",
        toml_string(&line),
        HANG_INTERVAL.as_millis(),
        HANG_TIMEOUT.as_millis()
    );
    // Manual failback: alpha would take the VIP back once its check passes again,
    // a move this test is not about.
    Cluster::start_with(lab, |sample| {
        sample.set("cluster.failback", "manual").append(&check)
    })
}

/// Makes alpha's check hang, across the planned move it triggers; checks that it
/// timed out and that no heartbeat was late; returns the time from the event until
/// beta held the VIP.
fn hang_alpha(cluster: &mut Cluster) -> Duration {
    let lab = cluster.lab;
    let (_, seen) = cluster.across(&Expect::planned("alpha", "beta"), |_| {
        lab.write_file("hang-alpha", "");
    });
    assert!(
        lab.log(&cluster.alpha).contains(&format!(
            "failing after {HANG_FALL} failed runs: timed out after {}ms",
            HANG_TIMEOUT.as_millis()
        )),
        "alpha's check did not time out\n{}",
        cluster.logs()
    );
    for (node, child) in [("alpha", &cluster.alpha), ("beta", &cluster.beta)] {
        assert!(
            !lab.log(child).contains("are late: none for"),
            "{node} logged a late heartbeat while a check hung\n{}",
            cluster.logs()
        );
    }
    seen.kernel
        .first_added(1)
        .expect("the VIP reached beta")
        .saturating_sub(seen.event_began)
}

/// `text` as a TOML basic string.
fn toml_string(text: &str) -> String {
    format!("\"{}\"", text.replace('\\', "\\\\").replace('"', "\\\""))
}

#[test]
fn a_flood_of_junk_and_forged_packets_does_not_stop_a_failover() {
    let lab = Lab::new();
    let mut cluster = Cluster::start(&lab);
    let beta_pid = cluster.beta.id();
    let before = rss_kib(beta_pid);
    // The flood, then alpha's death in the middle of it: the client's silence is held
    // to `dead` plus the usual slack, flood or not.
    let ((flooding, died), seen) = cluster.across(&Expect::unplanned("alpha", "beta"), |c| {
        let flooding = flood(&lab, 40_000, Duration::from_secs(8));
        std::thread::sleep(Duration::from_millis(300));
        let died = Instant::now();
        c.crash_alpha();
        (flooding, died)
    });
    let sent = flooding.join().expect("flood thread");
    assert!(sent > 1000, "the flood hardly ran: {sent} datagrams");
    // And in beta's kernel: the VIP added within `dead` and the slack of alpha's death.
    let added = seen.kernel.started + seen.kernel.first_added(1).expect("added on n2");
    assert!(
        added - died <= DEAD + DEATH_SLACK,
        "beta added the VIP {:?} after alpha died under the flood, dead is {DEAD:?}",
        added - died
    );
    let status = status_of(&lab, "beta");
    let rejected = |why: &str| {
        status
            .counters
            .rejected
            .iter()
            .find(|(reason, _)| reason == why)
            .map_or(0, |(_, n)| *n)
    };
    assert!(
        rejected("authentication failed") > 0,
        "{:?}",
        status.counters
    );
    assert!(
        rejected("bad length") + rejected("not a heartbeat") > 0,
        "{:?}",
        status.counters
    );
    assert!(lab.log(&cluster.beta).contains("dropped datagrams"));
    let after = rss_kib(beta_pid);
    assert!(
        after < before + 8 * 1024,
        "beta grew from {before} KiB to {after} KiB under the flood"
    );
}

#[test]
fn a_daemon_killed_and_restarted_while_holding_the_vip_never_shares_it() {
    let lab = Lab::new();
    let mut cluster = Cluster::start(&lab);
    // The restarted daemon finds the VIP on its node, hears beta in standby and keeps
    // it (adopts it): no removal, no stop hook, the client served throughout. Beta
    // never gets it: alpha was silent for far less than `dead`.
    cluster.across(&Expect::stays("alpha"), |c| {
        lab.kill(&c.alpha, Signal::SIGKILL).expect("SIGKILL alpha");
        c.alpha.wait().expect("reap alpha");
        assert!(
            vip_on(&lab, "n1"),
            "the kernel keeps the VIP of a killed daemon"
        );
        c.alpha = start_daemon(&lab, "n1", "alpha", &c.config);
        c.wait_for("the restarted alpha active with the VIP", || {
            try_status_of(&lab, "alpha")
                .is_some_and(|s| s.state == Role::Active && s.vips.iter().all(|v| v.held_here))
        });
    });
    assert!(
        lab.log(&cluster.alpha).contains("adopted"),
        "the restarted alpha does not say it adopted the VIP\n{}",
        cluster.logs()
    );
    assert!(
        !hook_lines(&lab, "alpha")
            .iter()
            .any(|l| l.starts_with("stop ")),
        "alpha ran its stop hook for a VIP it kept\n{}",
        cluster.logs()
    );
}

#[test]
fn an_active_daemon_paused_past_dead_yields_on_resume() {
    let lab = Lab::new();
    // Manual failback: the preferred alpha would otherwise take the VIP back a second
    // after it resumed, a move of its own that this test is not about. A frozen alpha's
    // kernel still answers for the VIP, which by default keeps beta from taking it
    // (tests/split_brain.rs); `live_vip = "take"` is the setting under which beta
    // takes over anyway, and this test is about what alpha does after that.
    let mut cluster = Cluster::start_with(&lab, |sample| {
        sample
            .set("cluster.failback", "manual")
            .with_table("split_brain")
            .set("split_brain.live_vip", "take")
    });
    // Frozen, alpha keeps the VIP in its kernel: the overlap is reported, not failed. The client keeps hearing alpha's kernel until beta's
    // announcement, so it hears one move, and the probing goes on for `SETTLE` after
    // alpha yielded: no second move.
    let (resumed, seen) = cluster.across(&Expect::unplanned("alpha", "beta"), |c| {
        lab.kill(&c.alpha, Signal::SIGSTOP).expect("SIGSTOP alpha");
        c.wait_for("beta to take over from the frozen alpha", || {
            vip_on(&lab, "n2")
        });
        std::thread::sleep(DEAD);
        let resumed = Instant::now();
        lab.kill(&c.alpha, Signal::SIGCONT).expect("SIGCONT alpha");
        c.wait_for("alpha to release after resuming", || {
            !vip_on(&lab, "n1") && vip_on(&lab, "n2")
        });
        resumed
    });
    // Once it runs again the overlap ends soon: alpha hears beta active within an
    // interval (50 ms) and releases (stop hook, then the VIP).
    let released = seen.kernel.started + seen.kernel.last_removed(0).expect("removed from n1");
    assert!(
        released > resumed && released - resumed <= Duration::from_millis(50) + SHORT_GAP,
        "alpha let the VIP go {:?} after it resumed\n{}",
        released.checked_duration_since(resumed),
        seen.kernel.describe()
    );
    cluster.assert_log_contains(
        "alpha",
        "resumed after a stall, peer beta took over meanwhile",
    );
    let beta = lab.log(&cluster.beta);
    let after_takeover = beta.rsplit("-> active").next().unwrap_or_default();
    assert!(
        !after_takeover.contains("-> standby"),
        "beta released too, a second move:\n{beta}"
    );
}

/// Hooks: "A failing hook ... changes nothing else: a release goes on to remove the
/// VIPs." A stop hook that exits 3 on SIGTERM: the VIP still goes, the daemon exits 0,
/// and beta takes over without overlap.
#[test]
fn a_failing_stop_hook_still_removes_the_vip_and_the_daemon_exits_cleanly() {
    let lab = Lab::new();
    let failing = write_hook(
        &lab,
        "failing-stop.sh",
        r#"[ "$FAILOVERD_HOOK" != stop ] || exit 3"#,
    );
    let mut cluster =
        Cluster::start_with(&lab, |sample| sample.set("hooks.stop", failing.display()));
    let (exit, _) = cluster.across(&Expect::planned("alpha", "beta"), |c| {
        lab.kill(&c.alpha, Signal::SIGTERM)
            .expect("send SIGTERM to alpha");
        wait_exit(&mut c.alpha)
    });
    assert_eq!(
        exit.code(),
        Some(0),
        "alpha's exit: {exit}\n{}",
        cluster.logs()
    );
    cluster.wait_for_hook("alpha", "stop", &["state=stopped", "prev=active"]);
    let alpha = lab.log(&cluster.alpha);
    assert!(
        alpha.contains("stop hook failed: exited 3") && alpha.contains("handover complete"),
        "{}",
        cluster.logs()
    );
    cluster.assert_log_contains("beta", "peer alpha shut down");
}

/// How the election works, Order of effects: "A VIP that cannot be added is logged as
/// an error and tried again every second while the node is active; the start hook
/// waits for it", and the built-in `vip` check: a node whose add and retry both
/// failed hands over to a node that can hold the VIPs, and sticks. Here the VIP's
/// interface (eth1) is missing on both nodes: alpha fails twice and hands over to
/// beta; beta fails too, but alpha, failed, cannot take the VIP back, so beta keeps
/// trying about once a second. eth1 appears on beta three seconds later: the VIP comes
/// within a retry, and only then does beta's start hook run, with the VIP in place.
#[test]
fn a_vip_add_that_fails_is_retried_every_second_and_the_start_hook_waits_for_it() {
    let lab = Lab::new();
    // The hook records whether the VIP was on its node when it ran.
    let hook = write_hook(
        &lab,
        "vip-check.sh",
        r#"echo "$FAILOVERD_HOOK vip=$(ip -o addr show | grep -c ' 198.18.0.10/')" >> "{dir}/vip-at-hook-$FAILOVERD_NODE.log""#,
    );
    let mut cluster = Cluster::launch_with(&lab, |sample| {
        sample
            .set("node[0].interfaces", "{ eth0 = \"eth1\" }")
            .set("node[1].interfaces", "{ eth0 = \"eth1\" }")
            // A missing interface would fail the link check too; this test is about
            // the add.
            .set("health.link_state", "false")
            .set("hooks.start", hook.display())
    });
    cluster.wait_for("beta active, alpha failed", || {
        try_status_of(&lab, "beta").is_some_and(|s| s.state == Role::Active)
            && try_status_of(&lab, "alpha").is_some_and(|s| s.health.failed)
    });
    cluster.assert_log_contains("alpha", "check vip failed while this node was active");
    let hook_log = lab.tmpdir().join("vip-at-hook-beta.log");
    let failures = |log: &str| log.matches("failed to add VIP 198.18.0.10/24").count();
    let missing = Duration::from_secs(3);
    let expect = Expect::arrives("beta");
    let ((failed, created), seen) = cluster.across(&expect, |c| {
        let before = failures(&lab.log(&c.beta));
        std::thread::sleep(missing);
        let failed = failures(&lab.log(&c.beta)) - before;
        assert!(
            !hook_log.exists() && !vip_on(&lab, "n2"),
            "the start hook ran or the VIP came without its interface\n{}",
            c.logs()
        );
        // eth1: a second port of n2 on the LAN bridge.
        let lan = lab.ns("lan");
        lab.exec_ok(
            "n2",
            &[
                "ip", "link", "add", "eth1", "type", "veth", "peer", "name", "n2b", "netns", &lan,
            ],
        );
        lab.exec_ok("lan", &["ip", "link", "set", "n2b", "master", "br0", "up"]);
        lab.exec_ok("n2", &["ip", "link", "set", "eth1", "up"]);
        let created = Instant::now();
        c.wait_for("the start hook to run", || hook_log.exists());
        (failed, created)
    });
    // Tried about once a second while the interface was missing.
    assert!(
        (2..=4).contains(&failed),
        "{failed} failed adds in {missing:?}\n{}",
        cluster.logs()
    );
    // The VIP came within a retry (1 s) of the interface, and no node had it before.
    let added = seen.kernel.started + seen.kernel.first_added(1).expect("added on n2");
    assert!(
        added > created && added - created <= Duration::from_secs(1) + SHORT_GAP,
        "the VIP came {:?} after its interface\n{}",
        added.checked_duration_since(created),
        seen.kernel.describe()
    );
    assert_eq!(
        fs::read_to_string(&hook_log).expect("the hook's record"),
        "start vip=1\n",
        "the start hook ran without the VIP, or more than once\n{}",
        cluster.logs()
    );
    assert_eq!(status_of(&lab, "alpha").state, Role::Standby);
}

#[test]
fn nodes_with_a_wrong_key_or_another_cluster_are_ignored_and_counted() {
    let lab = Lab::new();
    let mut cluster = Cluster::start(&lab);
    let wrong_key = lab.write_file("wrong-key", "a key that belongs to nobody here, 32b");
    fs::set_permissions(&wrong_key, fs::Permissions::from_mode(0o600)).expect("chmod");
    let key_line = fs::read_to_string(&cluster.config)
        .expect("read config")
        .lines()
        .find(|l| l.starts_with("key_file"))
        .expect("key_file")
        .to_string();
    // Two strangers on the client's address: one with the wrong key, one from
    // another cluster (with the right key). Neither holds a VIP.
    // The client gets a second address so both strangers can bind the port.
    lab.exec_ok(
        "cl",
        &["ip", "addr", "add", "198.18.0.101/24", "dev", "eth0"],
    );
    cluster.across(&Expect::stays("alpha"), |c| {
        strangers(c, &wrong_key, &key_line)
    });
    assert!(lab.log(&cluster.beta).contains("dropped datagrams"));
    assert_eq!(status_of(&lab, "beta").state, Role::Standby);
}

/// Starts a stranger with the wrong key and one from another cluster on the client,
/// and waits until beta has counted both kinds.
fn strangers(cluster: &Cluster, wrong_key: &Path, key_line: &str) {
    let lab = cluster.lab;
    for (name, cluster_name, key, address) in [
        (
            "stranger-key",
            "e2e",
            format!("key_file = \"{}\"", wrong_key.display()),
            "198.18.0.100",
        ),
        (
            "stranger-cluster",
            "other",
            key_line.to_owned(),
            "198.18.0.101",
        ),
    ] {
        let text = format!(
            "[cluster]\nname = \"{cluster_name}\"\n{key}\n\
             [timing]\ninterval = \"50ms\"\nwarn = \"150ms\"\ndead = \"300ms\"\ninit_dead = \"1s\"\n\
             [[link]]\nname = \"lan\"\n\
             [[node]]\nname = \"gamma\"\npriority = 999\naddresses = {{ lan = \"{address}\" }}\n\
             [[node]]\nname = \"beta\"\npriority = 1\naddresses = {{ lan = \"198.18.0.12\" }}\n"
        );
        let config = lab.write_file(&format!("{name}.toml"), &text);
        let socket = lab.tmpdir().join(format!("{name}.sock"));
        let state = lab.tmpdir().join(format!("state-{name}"));
        lab.spawn(
            "cl",
            failoverd(),
            &[
                "run",
                "--config",
                config.to_str().expect("UTF-8"),
                "--node",
                "gamma",
                "--socket",
                socket.to_str().expect("UTF-8"),
                "--state-dir",
                state.to_str().expect("UTF-8"),
            ],
        );
    }
    cluster.wait_for("beta to count both kinds of strangers", || {
        let status = status_of(lab, "beta");
        let count = |why: &str| {
            status
                .counters
                .rejected
                .iter()
                .any(|(reason, n)| reason == why && *n > 0)
        };
        count("authentication failed") && count("other cluster")
    });
}

#[test]
fn a_primary_that_keeps_restarting_never_pulls_the_vip_after_it() {
    let lab = Lab::new();
    let mut cluster = Cluster::start(&lab);
    cluster.across(&Expect::unplanned("alpha", "beta"), Cluster::crash_alpha);
    cluster.reboot_alpha();
    // failback_delay is 1 s: each run of alpha is shorter than that.
    cluster.across(&Expect::stays("beta"), |c| {
        for _ in 0..4 {
            c.alpha = start_daemon(&lab, "n1", "alpha", &c.config);
            std::thread::sleep(Duration::from_millis(600));
            lab.kill(&c.alpha, Signal::SIGKILL).expect("SIGKILL alpha");
            c.alpha.wait().expect("reap alpha");
        }
    });
    // Left running, alpha gets the VIP back once it has been up for the delay: a
    // planned move.
    cluster.across(&Expect::planned("beta", "alpha"), |c| {
        c.alpha = start_daemon(&lab, "n1", "alpha", &c.config);
        c.wait_for("failback to alpha after a stable run", || {
            vip_on(&lab, "n1") && !vip_on(&lab, "n2")
        });
    });
}

#[test]
fn broken_configuration_files_give_one_line_and_exit_2() {
    let dir = std::env::temp_dir().join(format!("failoverd-faults-{}", std::process::id()));
    fs::create_dir_all(&dir).expect("temp dir");
    let key = dir.join("authkey");
    fs::write(&key, "0123456789abcdef0123456789abcdef").expect("key");
    fs::set_permissions(&key, fs::Permissions::from_mode(0o600)).expect("chmod");
    let good = config(&key, None).to_string();
    let cases: Vec<(&str, Option<String>, &str)> = vec![
        ("missing file", None, "cannot read"),
        ("bad TOML", Some("[cluster\nname = ".into()), "line 1"),
        (
            "missing key file",
            Some(config(Path::new("/nonexistent/authkey"), None).to_string()),
            "cluster.key_file",
        ),
        ("wrong key mode", Some(good), "0644"),
    ];
    for (what, text, expect) in cases {
        let path = dir.join(format!("{}.toml", what.replace(' ', "-")));
        match &text {
            Some(text) => fs::write(&path, text).expect("write config"),
            None => {
                let _ = fs::remove_file(&path);
            }
        }
        let mode = if what == "wrong key mode" {
            0o644
        } else {
            0o600
        };
        fs::set_permissions(&key, fs::Permissions::from_mode(mode)).expect("chmod");
        for command in ["check", "run"] {
            let output = Command::new(failoverd())
                .args([command, "--config"])
                .arg(&path)
                .args(["--node", "alpha"])
                .output()
                .expect("run failoverd");
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert_eq!(
                output.status.code(),
                Some(2),
                "{what} ({command}): {stderr}"
            );
            assert_eq!(
                stderr.trim().lines().count(),
                1,
                "{what} ({command}): {stderr}"
            );
            assert!(stderr.contains(expect), "{what} ({command}): {stderr}");
            assert!(!stderr.contains("panicked"), "{what} ({command}): {stderr}");
        }
    }
    let _ = fs::remove_dir_all(&dir);
}
