//! End-to-end tests: real `failoverd run` processes for alpha (on n1) and beta (on n2)
//! in the namespaces of the test lab (tests/common), with a client probing the VIP.
//! They pin what only whole daemons on a real kernel can show: who holds the VIP, that
//! the client follows it, that it is never on both nodes at once, and what hooks see.
//!
//! Every event that moves, or could move, the VIP runs inside `Cluster::across`
//! (tests/common/crossing.rs), which holds the client's view and the kernels' record to
//! the rule: who answers, the longest silence, and no overlap for planned moves. Every
//! wait is a bounded poll. They need root, like the lab itself.

#![allow(
    clippy::zombie_processes,
    reason = "the Lab kills and reaps the processes it spawned when it is dropped"
)]

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::time::{Duration, Instant};

use common::Lab;
use common::cluster::*;
use common::crossing::{Expect, PROBE_INTERVAL, SHORT_GAP};
use failoverd::machine::{LinkState, Role};
use failoverd::status::PeerState;
use nix::sys::signal::Signal;

#[test]
fn preferred_node_takes_the_vip_and_the_client_reaches_it() {
    let lab = Lab::new();
    let mut cluster = Cluster::start(&lab);

    // Settled, the client hears alpha alone, with no silence, while `check` runs.
    let (output, _) = cluster.across(&Expect::stays("alpha"), |c| check(&lab, &c.config));
    assert_eq!(
        output.status.code(),
        Some(0),
        "failoverd check rejected the config: {}",
        describe(&output)
    );
}

#[test]
fn node_death_moves_the_vip_to_the_standby_within_dead() {
    let lab = Lab::new();
    let mut cluster = Cluster::start(&lab);

    cluster.across(&Expect::unplanned("alpha", "beta"), Cluster::crash_alpha);
    cluster.assert_log_contains("beta", "peer alpha dead on all links");
}

#[test]
fn graceful_stop_hands_over_without_overlap() {
    let lab = Lab::new();
    let mut cluster = Cluster::start(&lab);

    let (exit, _) = cluster.across(&Expect::planned("alpha", "beta"), |c| {
        lab.kill(&c.alpha, Signal::SIGTERM)
            .expect("send SIGTERM to alpha");
        wait_exit(&mut c.alpha)
    });
    assert_eq!(
        exit.code(),
        Some(0),
        "alpha's exit after SIGTERM: {exit}\n{}",
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

/// The VIPs beside the first in `graceful_handover_moves_two_hundred_vips`:
/// 198.18.1.1/32 to 198.18.1.199/32.
fn more_vips() -> Vec<String> {
    (1..200).map(|i| format!("198.18.1.{i}/32")).collect()
}

/// Two hundred VIPs, added and removed as lots: a graceful handover moves every one
/// of them, leaves none behind, and the client of the first VIP sees the planned
/// move's short silence.
#[test]
fn graceful_handover_moves_two_hundred_vips() {
    let lab = Lab::new();
    let more = more_vips();
    let tables: String = more
        .iter()
        .map(|vip| format!("\n[[vip]]\naddress = \"{vip}\"\ninterface = \"eth0\"\n"))
        .collect();
    let mut cluster = Cluster::start_with(&lab, |sample| sample.append(&tables));
    let all_on = |host: &str| {
        let held = lab.addresses(host, "eth0");
        more.iter().all(|vip| held.contains(vip))
    };
    let none_on = |host: &str| {
        let held = lab.addresses(host, "eth0");
        !more.iter().any(|vip| held.contains(vip))
    };
    cluster.wait_for("all 200 VIPs on n1 alone", || all_on("n1") && none_on("n2"));

    let (exit, _) = cluster.across(&Expect::planned("alpha", "beta"), |c| {
        lab.kill(&c.alpha, Signal::SIGTERM)
            .expect("send SIGTERM to alpha");
        wait_exit(&mut c.alpha)
    });
    assert_eq!(
        exit.code(),
        Some(0),
        "alpha's exit after SIGTERM: {exit}\n{}",
        cluster.logs()
    );
    cluster.wait_for("all 200 VIPs on n2 alone", || all_on("n2") && none_on("n1"));
    assert!(!vip_on(&lab, "n1"), "the first VIP is still on n1");
    // Nothing was lost on the way: no request timed out, no announcement failed.
    let logs = cluster.logs();
    for trouble in ["no answer from netlink", "announcing VIPs"] {
        assert!(!logs.contains(trouble), "{trouble}\n{logs}");
    }
}

#[test]
fn crossover_cut_moves_nothing() {
    let lab = Lab::new();
    let mut cluster = Cluster::start(&lab);

    cluster.across(&Expect::stays("alpha"), |c| {
        let cut = Instant::now();
        lab.link_down("n1", "xo");
        c.wait_for("beta to report the crossover link dead", || {
            lab.log(&c.beta).contains("link crossover to alpha dead")
        });
        // Give a wrong decision time to show: three times `dead` since the cut.
        std::thread::sleep((DEAD * 3).saturating_sub(cut.elapsed()));
    });
    let beta = lab.log(&cluster.beta);
    assert!(
        !beta.contains("-> active"),
        "beta went active while alpha was alive on the LAN\n{}",
        cluster.logs()
    );
}

#[test]
fn gateway_loss_on_the_active_node_hands_the_vip_over_without_overlap() {
    let lab = Lab::new();
    let mut cluster = Cluster::start(&lab);

    // Alpha still answers the client on the LAN; it releases when it counts the
    // gateway as lost, and beta takes over on the released heartbeat.
    cluster.across(&Expect::planned("alpha", "beta"), |c| {
        lab.blackhole("n1", common::GATEWAY);
        c.wait_for("alpha to go to fault", || {
            lab.log(&c.alpha).contains("-> fault")
        });
    });
}

#[test]
fn vip_interface_down_on_the_active_node_moves_the_vip() {
    let lab = Lab::new();
    // The gateway is behind the same interface; ten failed probes (a second) before
    // it counts as lost keep that second loss out of the way of the first.
    let mut cluster = Cluster::start_with(&lab, |sample| sample.set("health.failures", 10));

    // The crossover stays up, so the nodes still hear each other: alpha learns it
    // is less healthy than beta and hands over, rather than being declared dead.
    cluster.across(&interface_down_expectation(), |c| {
        lab.link_down("n1", "eth0");
        c.wait_for("alpha to go to fault", || {
            lab.log(&c.alpha).contains("-> fault")
        });
    });
    assert!(lab.log(&cluster.alpha).contains("interface eth0 is down"));
}

/// The client loses alpha with its interface. The rule promises one look at the link
/// (health.interval, 100 ms), the grace for a new loss (health.interval + 2 × interval,
/// 200 ms), then a planned handover.
fn interface_down_expectation() -> Expect {
    Expect::planned("alpha", "beta").gap(Duration::from_millis(100 + 200) + SHORT_GAP)
}

/// The VIP's interface goes down and the gateway behind it, probed every 100 ms and
/// lost after two failed probes, is lost within the interface's grace. Each loss
/// counts one grace (health.interval + 2 × interval, 200 ms) after it was noticed, so
/// the gateway's later loss does not postpone the release for the interface's.
#[test]
fn a_later_health_loss_does_not_postpone_acting_on_an_earlier_one() {
    let lab = Lab::new();
    let mut cluster = Cluster::start_with(&lab, |sample| sample.set("health.failures", 2));
    cluster.across(&interface_down_expectation(), |c| {
        lab.link_down("n1", "eth0");
        c.wait_for("alpha to go to fault", || {
            lab.log(&c.alpha).contains("-> fault")
        });
    });
    let log = lab.log(&cluster.alpha);
    let noticed = logged_at(&log, "interface eth0 is down");
    let released = logged_at(&log, "releasing (stop hook, then VIPs)");
    let grace = Duration::from_millis(200);
    assert!(
        released - noticed <= grace + Duration::from_millis(50),
        "alpha released {:?} after it noticed its interface down, one grace is {grace:?}\n{}",
        released - noticed,
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

    cluster.across(&Expect::unplanned("alpha", "beta"), Cluster::crash_alpha);
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
#[test]
fn status_shows_the_active_node_and_live_links() {
    let lab = Lab::new();
    let cluster = Cluster::start(&lab);
    cluster.wait_for("beta to see alpha on both links", || {
        status_of(&lab, "beta").peers[0]
            .links
            .iter()
            .all(|l| l.state == LinkState::Up)
    });

    let alpha = status_of(&lab, "alpha");
    assert_eq!(alpha.node, "alpha");
    assert_eq!(alpha.state, Role::Active);
    assert_eq!(alpha.vips[0].address, "198.18.0.10/24");
    assert!(alpha.vips[0].held_here);
    assert_eq!(alpha.peers[0].name, "beta");
    assert_eq!(alpha.peers[0].state, PeerState::Standby);
    assert_eq!(alpha.peers[0].fingerprint_match, Some(true));
    assert!(alpha.health.gateways[0].reachable);
    let beta = status_of(&lab, "beta");
    assert_eq!(beta.state, Role::Standby);
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
    let mut cluster = Cluster::start(&lab);
    // The client keeps probing for two seconds after the move: the operator's choice
    // stands against automatic failback (delay 1 s).
    let expect = Expect::planned("alpha", "beta").settle(Duration::from_secs(2));
    let (output, _) = cluster.across(&expect, |_| {
        ctl(&lab, "beta", &["takeover", "--timeout", "10s"])
    });
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    assert!(lab.log(&cluster.beta).contains("operator takeover"));
    // A second takeover has nothing to do, and says so: asking twice is no failure.
    let again = ctl(&lab, "beta", &["takeover"]);
    assert_eq!(again.status.code(), Some(0), "{}", describe(&again));
    assert!(String::from_utf8_lossy(&again.stdout).contains("already active"));
}

#[test]
fn standby_hands_the_vip_over_and_stays_standby() {
    let lab = Lab::new();
    let mut cluster = Cluster::start(&lab);
    // Two seconds after the move, twice the failback delay, alpha has not pulled it back.
    let expect = Expect::planned("alpha", "beta").settle(Duration::from_secs(2));
    let (output, _) = cluster.across(&expect, |_| {
        ctl(&lab, "alpha", &["standby", "--timeout", "10s"])
    });
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let alpha = status_of(&lab, "alpha");
    assert_eq!(alpha.state, Role::Standby);
    assert!(alpha.standby_requested);
}

#[test]
fn failback_returns_the_vip_to_the_preferred_node() {
    let lab = Lab::new();
    let mut cluster = Cluster::start_with(&lab, |sample| sample.set("cluster.failback", "manual"));
    let (output, _) = cluster.across(&Expect::planned("alpha", "beta"), |_| {
        ctl(&lab, "alpha", &["standby", "--timeout", "10s"])
    });
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    // A restart clears alpha's standby request; with manual failback beta keeps
    // the VIP until an operator moves it back, past the automatic delay (1 s).
    let expect = Expect::stays("beta").settle(Duration::from_secs(2));
    cluster.across(&expect, |c| {
        c.restart_alpha();
        c.wait_for("alpha standby again after its restart", || {
            try_status_of(&lab, "alpha").is_some_and(|s| s.state == Role::Standby)
        });
    });
    let (output, _) = cluster.across(&Expect::planned("beta", "alpha"), |_| {
        ctl(&lab, "beta", &["failback", "--timeout", "10s"])
    });
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    let refused = ctl(&lab, "alpha", &["failback"]);
    assert_eq!(refused.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&refused.stderr).contains("already on the preferred node"));
}

/// `failoverd standby` on the active node whose quiet standby has just died: the
/// holder asks the standby to answer before it releases, no answer comes, and once
/// it counts beta dead (`dead` + `standby_interval` − `interval` after beta's last
/// heartbeat) it drops the order. The VIP never leaves alpha, and the command says
/// so with exit 1 long before its timeout.
#[test]
fn standby_toward_a_quiet_standby_that_died_keeps_the_vip_and_says_so() {
    let lab = Lab::new();
    let mut cluster = Cluster::start(&lab);
    cluster.wait_for("beta a quiet standby", || {
        try_status_of(&lab, "beta").is_some_and(|s| s.quiet)
    });
    let ((output, took), _) = cluster.across(&Expect::stays("alpha"), |c| {
        c.lab
            .kill(&c.beta, Signal::SIGKILL)
            .expect("send SIGKILL to beta");
        c.beta.wait().expect("reap beta");
        let began = Instant::now();
        let output = ctl(&lab, "alpha", &["standby", "--timeout", "20s"]);
        (output, began.elapsed())
    });
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    let said = describe(&output);
    assert!(said.contains("waking the quiet standby"), "{said}");
    assert!(
        said.contains("keeps the VIPs, the handover did not go through"),
        "{said}"
    );
    // dead 300 ms + standby_interval 1 s − interval 50 ms, and the status polls.
    assert!(took < Duration::from_secs(5), "the command took {took:?}");
    cluster.assert_log_contains(
        "alpha",
        "handover dropped (operator asked this node to stand by)",
    );
    let alpha = status_of(&lab, "alpha");
    assert_eq!(alpha.state, Role::Active);
    assert!(!alpha.standby_requested && !alpha.handing_over);
}

#[test]
fn maintenance_freezes_moves_until_turned_off() {
    let lab = Lab::new();
    let mut cluster = Cluster::start(&lab);
    // Alpha loses its gateway in maintenance: two seconds, well past the grace for a
    // lost gateway, and nothing moves.
    cluster.across(&Expect::stays("alpha"), |c| {
        let output = ctl(&lab, "beta", &["maintenance", "on"]);
        assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
        c.wait_for("alpha to see the maintenance", || {
            status_of(&lab, "alpha").maintenance.on
        });
        lab.blackhole("n1", common::GATEWAY);
        std::thread::sleep(Duration::from_secs(2));
        let text = String::from_utf8_lossy(&ctl(&lab, "alpha", &["status"]).stdout).to_string();
        assert!(text.contains("MAINTENANCE"), "{text}");
        let refused = ctl(&lab, "alpha", &["standby"]);
        assert_eq!(refused.status.code(), Some(1));
    });
    // Thawed, alpha acts on the lost gateway: a planned handover.
    let (output, _) = cluster.across(&Expect::planned("alpha", "beta"), |_| {
        ctl(&lab, "beta", &["maintenance", "off"])
    });
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
}

/// Maintenance mode: turned on on the standby, it freezes failover for as long as that
/// node lives, so the holder's death leaves the VIP on no node. The flag is kept in
/// `[control] state_dir`, so a real restart of the standby's daemon (SIGTERM, a new
/// process) reads it back and the freeze goes on, past `init_dead`. `maintenance off`
/// on beta then lets it take over at once.
#[test]
fn maintenance_on_the_standby_outlives_the_holders_death_and_a_restart() {
    let lab = Lab::new();
    let mut cluster = Cluster::start(&lab);
    // Beta takes its state directory from its own file (relative to it), not from
    // --state-dir: the key docs/configuration.md names.
    let text = fs::read_to_string(&cluster.config).expect("read the config");
    let own = text.replace(
        "state_dir = \"/var/lib/failoverd\"",
        "state_dir = \"beta-state\"",
    );
    assert_ne!(
        own, text,
        "the sample has no [control] state_dir line to replace"
    );
    let beta_config = lab.write_file("failoverd-beta.toml", &own);
    let flag = lab.tmpdir().join("beta-state").join("maintenance");
    cluster.restart("beta", &beta_config, None);
    cluster.wait_for("beta standby again", || {
        try_status_of(&lab, "beta").is_some_and(|s| s.state == Role::Standby)
    });
    let output = ctl(&lab, "beta", &["maintenance", "on"]);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    assert!(flag.exists(), "no maintenance flag at {}", flag.display());
    cluster.wait_for("alpha to see the maintenance", || {
        status_of(&lab, "alpha").maintenance.on
    });

    // One crossing from alpha's death to beta's takeover: the client hears alpha, a
    // silence as long as the freeze, then beta.
    let expect = Expect::unplanned("alpha", "beta").gap(LIMIT * 2);
    let ((died, thawed, answered), seen) = cluster.across(&expect, |c| {
        let died = Instant::now();
        c.crash_alpha();
        std::thread::sleep(DEAD * 3);
        let beta = status_of(&lab, "beta");
        assert!(
            beta.state == Role::Standby && !vip_on(&lab, "n2"),
            "beta took over in maintenance: {:?}\n{}",
            beta.state,
            c.logs()
        );
        c.restart("beta", &beta_config, None);
        c.wait_for("the restarted beta in maintenance, set by itself", || {
            try_status_of(&lab, "beta").is_some_and(|s| {
                s.state == Role::Standby && s.maintenance.on && s.maintenance.set_by == ["beta"]
            })
        });
        assert!(lab.log(&c.beta).contains("maintenance mode (set on beta)"));
        // Alone after a restart, beta would claim the VIP after init_dead (1 s).
        std::thread::sleep(Duration::from_millis(1000) + DEAD * 2);
        assert!(
            !vip_on(&lab, "n2"),
            "beta took over after its restart in maintenance\n{}",
            c.logs()
        );
        let thawed = Instant::now();
        let output = ctl(&lab, "beta", &["maintenance", "off"]);
        assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
        (died, thawed, Instant::now())
    });
    assert!(!flag.exists(), "the flag outlived `maintenance off`");
    // The kernel: the VIP came to beta only once maintenance was off, and at once:
    // by the time the command had its answer, or just after. Counted from the
    // answer, not the command's start: on a loaded machine the command itself may
    // wait to be scheduled beside a dozen realtime daemons (121 ms once). After a
    // wait this long the split-brain guard probes the VIP again unless its last
    // answer is fresh, which adds one probe window at most (docs/split-brain.md).
    let added = seen.kernel.started + seen.kernel.first_added(1).expect("added on n2");
    assert!(
        added > thawed && added < answered + PROBE_WINDOW + SHORT_GAP,
        "beta added the VIP {:?} after `maintenance off`, whose answer took {:?}\n{}",
        added.checked_duration_since(thawed),
        answered - thawed,
        seen.kernel.describe()
    );
    // The client: one silence, from alpha's death to beta's takeover.
    let silence = seen.longest_silence(false);
    let frozen = thawed - died;
    assert!(
        silence + PROBE_INTERVAL * 5 >= frozen
            && silence <= answered - died + PROBE_WINDOW + SHORT_GAP,
        "the client's longest silence was {silence:?}, the freeze lasted {frozen:?}: {}",
        seen.client.raw
    );
}

/// A hook that, run as the stop hook, writes `begin` to stop-<node>.log in the
/// lab's directory, sleeps `secs` and then runs `after`.
fn slow_stop_hook(lab: &Lab, secs: u32, after: &str) -> std::path::PathBuf {
    write_hook(
        lab,
        "slow-stop.sh",
        &format!(
            "if [ \"$FAILOVERD_HOOK\" = stop ]; then\n  echo begin >> \"{{dir}}/stop-$FAILOVERD_NODE.log\"\n  sleep {secs}\n  {after}\nfi"
        ),
    )
}

/// SIGTERM: "A signal during a release lets the release finish first." A second
/// SIGTERM, and a SIGINT, while the stop hook runs: the hook runs once and to its end,
/// the VIP goes after it, the daemon exits 0 once, and beta takes over without overlap.
#[test]
fn a_signal_during_the_release_lets_it_finish_and_the_daemon_exits_once() {
    let lab = Lab::new();
    let slow_stop = slow_stop_hook(
        &lab,
        1,
        r#"echo "end vip=$(ip -o addr show | grep -c ' 198.18.0.10/')" >> "{dir}/stop-$FAILOVERD_NODE.log""#,
    );
    let mut cluster =
        Cluster::start_with(&lab, |sample| sample.set("hooks.stop", slow_stop.display()));
    let stop_log = lab.tmpdir().join("stop-alpha.log");
    let read = |path: &std::path::Path| fs::read_to_string(path).unwrap_or_default();
    let ((exit, at_exit), _) = cluster.across(&Expect::planned("alpha", "beta"), |c| {
        lab.kill(&c.alpha, Signal::SIGTERM)
            .expect("send SIGTERM to alpha");
        c.wait_for("alpha's stop hook to begin", || {
            read(&stop_log).contains("begin")
        });
        for signal in [Signal::SIGTERM, Signal::SIGINT] {
            lab.kill(&c.alpha, signal).expect("signal alpha");
        }
        let exit = wait_exit(&mut c.alpha);
        (exit, read(&stop_log))
    });
    assert_eq!(
        exit.code(),
        Some(0),
        "alpha's exit: {exit}\n{}",
        cluster.logs()
    );
    // Read the moment alpha exited: the hook had run once, to its end, and the VIP was
    // still there when it ended.
    assert_eq!(
        at_exit,
        "begin\nend vip=1\n",
        "alpha's stop hook\n{}",
        cluster.logs()
    );
    let log = lab.log(&cluster.alpha);
    for once in [
        "releasing (stop hook, then VIPs): shutdown",
        "shutdown requested",
        "handover complete, exiting",
    ] {
        assert_eq!(
            log.matches(once).count(),
            1,
            "{once:?} in alpha's log\n{}",
            cluster.logs()
        );
    }
    cluster.assert_log_contains("beta", "peer alpha shut down");
}

/// A daemon killed during a release, once its stop hook has begun and before the
/// VIP went, does not adopt the VIP at restart: the service behind it may be
/// stopped. The release was noted in the state directory; the restarted daemon
/// removes the VIP, runs the stop hook again with a reason that says why, and the
/// election gives the VIP to one node, whose start hook runs.
#[test]
fn a_daemon_killed_during_its_release_does_not_adopt_the_vip_at_restart() {
    let lab = Lab::new();
    let slow_stop = slow_stop_hook(&lab, 2, "");
    let mut cluster =
        Cluster::start_with(&lab, |sample| sample.set("hooks.stop", slow_stop.display()));
    let stop_log = lab.tmpdir().join("stop-alpha.log");
    let out = ctl(&lab, "alpha", &["standby", "--no-wait"]);
    assert!(out.status.success(), "{}", describe(&out));
    cluster.wait_for("alpha's stop hook to begin", || {
        fs::read_to_string(&stop_log).is_ok_and(|log| log.contains("begin"))
    });
    let note = state_dir(&lab, "alpha").join("releasing");
    assert!(
        note.exists(),
        "the release was not noted\n{}",
        cluster.logs()
    );
    lab.kill(&cluster.alpha, Signal::SIGKILL)
        .expect("send SIGKILL to alpha");
    cluster.alpha.wait().expect("reap alpha");
    assert!(vip_on(&lab, "n1"), "the VIP went before the kill");
    let starts = |node: &str| {
        hook_lines(&lab, node)
            .iter()
            .filter(|line| line.starts_with("start "))
            .count()
    };
    let before = (starts("alpha"), starts("beta"));
    // Beta hears alpha fall silent with the VIP still answering: it holds back.
    std::thread::sleep(DEAD * 3);
    assert!(!vip_on(&lab, "n2"), "beta took a VIP alpha still held");

    let config = cluster.config.clone();
    cluster.alpha = start_daemon(&lab, "n1", "alpha", &config);
    cluster.assert_log_contains("alpha", "the daemon stopped during a release");
    cluster.wait_for("one node to hold the VIP, after its start hook", || {
        let on = (vip_on(&lab, "n1"), vip_on(&lab, "n2"));
        let after = (starts("alpha"), starts("beta"));
        match on {
            (true, false) => after.0 > before.0,
            (false, true) => after.1 > before.1,
            _ => false,
        }
    });
    let log = lab.log(&cluster.alpha);
    assert!(
        !log.contains("adopted the VIPs found"),
        "alpha adopted the VIP\n{}",
        cluster.logs()
    );
    assert!(
        hook_lines(&lab, "alpha").iter().any(|line| line.starts_with("stop ")
            && line.ends_with(
                "reason=VIP found on this node at start, left by a release the daemon did not finish"
            )),
        "{}",
        cluster.logs()
    );
}

#[test]
fn reload_applies_a_new_priority_and_vip_without_dropping_the_old_one() {
    let lab = Lab::new();
    let mut cluster = Cluster::start(&lab);
    let text = fs::read_to_string(&cluster.config).expect("read the config");
    let text = text.replace("priority = 100", "priority = 250").replace(
        "\n[health]\n",
        "\n[[vip]]\naddress = \"198.18.0.20/24\"\ninterface = \"eth0\"\n\n[health]\n",
    );
    fs::write(&cluster.config, text).expect("write the config");
    // Beta now ranks first: failback (auto, 1 s) moves both VIPs to it, planned.
    cluster.across(&Expect::planned("alpha", "beta"), |c| {
        for node in ["alpha", "beta"] {
            let output = ctl(&lab, node, &["reload"]);
            assert_eq!(
                output.status.code(),
                Some(0),
                "{node}: {}",
                describe(&output)
            );
        }
        c.wait_for("alpha to add the new VIP", || {
            lab.addresses("n1", "eth0")
                .iter()
                .any(|a| a == "198.18.0.20/24")
        });
        c.wait_for("both VIPs on beta after the priority change", || {
            let n2 = lab.addresses("n2", "eth0");
            n2.iter().any(|a| a == "198.18.0.10/24") && n2.iter().any(|a| a == "198.18.0.20/24")
        });
    });
    assert!(lab.log(&cluster.beta).contains("configuration reloaded"));
}

#[test]
fn an_invalid_reload_is_rejected_and_the_old_configuration_kept() {
    let lab = Lab::new();
    let mut cluster = Cluster::start(&lab);
    let text = fs::read_to_string(&cluster.config).expect("read the config");
    fs::write(
        &cluster.config,
        text.replace("priority = 200", "priority = \"high\""),
    )
    .expect("write the config");
    let (output, _) = cluster.across(&Expect::stays("alpha"), |_| ctl(&lab, "alpha", &["reload"]));
    assert_eq!(output.status.code(), Some(1), "{}", describe(&output));
    assert!(String::from_utf8_lossy(&output.stderr).contains("node[0].priority"));
    assert!(lab.log(&cluster.alpha).contains("reload rejected"));
    assert_eq!(status_of(&lab, "alpha").state, Role::Active);
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

#[test]
fn status_page_status_json_and_metrics_answer_a_real_http_client() {
    let lab = Lab::new();
    let cluster = Cluster::start_with(&lab, |sample| sample.set("http.listen", "0.0.0.0:9469"));
    let curl = |path: &str| {
        let url = format!("http://198.18.0.11:9469{path}");
        let output = lab.exec("cl", &["curl", "-sS", "--max-time", "5", "-i", &url]);
        assert!(output.status.success(), "curl {url}: {}", describe(&output));
        String::from_utf8_lossy(&output.stdout).to_string()
    };
    let page = curl("/");
    assert!(page.starts_with("HTTP/1.1 200"), "{page}");
    assert!(
        page.contains("text/html") && page.contains("alpha"),
        "{page}"
    );

    cluster.wait_for("the published status to show alpha active", || {
        let json = curl("/status");
        json.contains("\"state\":\"active\"")
    });
    let json = curl("/status");
    let body = json.split("\r\n\r\n").nth(1).expect("a body");
    let status: failoverd::status::Status = serde_json::from_str(body).expect("JSON status");
    assert_eq!(status.node, "alpha");
    assert_eq!(status.peers[0].name, "beta");

    // The history behind the page's timeline: alpha's takeover with its reason, and
    // beta as alpha saw it, looked at on the daemon's one-second tick.
    let history = || -> failoverd::status::History {
        let json = curl("/status");
        let body = json.split("\r\n\r\n").nth(1).expect("a body");
        let status: failoverd::status::Status = serde_json::from_str(body).expect("JSON status");
        status.history
    };
    cluster.wait_for("the history to show beta", || {
        // Slower than the server's 10 new connections a second from one address.
        std::thread::sleep(std::time::Duration::from_millis(200));
        history().changes.iter().any(|c| c.node == "beta")
    });
    let history = history();
    assert!(
        history.changes.iter().any(|c| c.node == "alpha"
            && c.to == failoverd::status::PeerState::Active
            && !c.reason.is_empty()),
        "{history:?}"
    );
    let page = curl("/");
    assert!(
        page.contains("<svg class=\"timeline\"") && page.contains("<rect class=\"tl-active\""),
        "{page}"
    );

    let metrics = curl("/metrics");
    assert!(
        metrics.contains("failoverd_state{state=\"active\"} 1"),
        "{metrics}"
    );
    assert!(
        metrics.contains("failoverd_heartbeats_sent_total"),
        "{metrics}"
    );
    let missing = curl("/nope");
    assert!(missing.starts_with("HTTP/1.1 404"), "{missing}");
}

/// A settled pair at a 10 ms interval: the standby is quiet, one heartbeat a second
/// on each link (the default `standby_interval`), while the active node beats every
/// interval; each keeps the other alive and nothing is reported late. With
/// `standby_interval` equal to `interval` the standby beats every interval too.
#[test]
fn a_settled_standby_beats_every_standby_interval_and_stays_heard() {
    for standby_interval in [None, Some("10ms")] {
        let lab = Lab::new();
        let cluster = Cluster::start_with(&lab, |sample| {
            let sample = sample
                .set("timing.interval", "10ms")
                .set("timing.warn", "50ms")
                .set("timing.dead", "200ms")
                .set("timing.init_dead", "1s");
            match standby_interval {
                Some(value) => sample.set("timing.standby_interval", value),
                None => sample,
            }
        });
        std::thread::sleep(Duration::from_secs(1));
        let from = lab.log(&cluster.alpha).len();
        let (alpha_before, beta_before) = (status_of(&lab, "alpha"), status_of(&lab, "beta"));
        let began = Instant::now();
        std::thread::sleep(Duration::from_secs(3));
        let (alpha_after, beta_after) = (status_of(&lab, "alpha"), status_of(&lab, "beta"));
        let secs = began.elapsed().as_secs_f64();
        // Two links, one peer: each heartbeat is two datagrams.
        let per_second = |before: &failoverd::status::Status, after: &failoverd::status::Status| {
            (after.counters.heartbeats_sent - before.counters.heartbeats_sent) as f64 / 2.0 / secs
        };
        let (alpha_rate, beta_rate) = (
            per_second(&alpha_before, &alpha_after),
            per_second(&beta_before, &beta_after),
        );
        eprintln!(
            "standby_interval {standby_interval:?}: alpha beats {alpha_rate:.1}/s, beta \
             {beta_rate:.1}/s"
        );
        assert!(
            alpha_rate > 60.0,
            "the active node beats every interval: {alpha_rate:.1}/s"
        );
        if standby_interval.is_none() {
            assert!(
                beta_rate < 3.0,
                "the standby is not quiet: {beta_rate:.1}/s"
            );
        } else {
            assert!(beta_rate > 60.0, "the standby was quiet: {beta_rate:.1}/s");
        }
        for (status, peer) in [(&alpha_after, "beta"), (&beta_after, "alpha")] {
            let seen = status.peers.iter().find(|p| p.name == peer);
            assert!(
                seen.is_some_and(|p| p.alive),
                "{peer} is not heard: {status:?}"
            );
        }
        assert_eq!(beta_after.state, Role::Standby);
        let log = lab.log(&cluster.alpha);
        let late: Vec<&str> = log
            .get(from..)
            .unwrap_or_default()
            .lines()
            // What alpha says of beta and its links; not "woken that late", which
            // a host that paused the lab for a moment makes alpha say of itself.
            .filter(|l| {
                l.contains("heartbeats from beta on")
                    || l.contains("peer beta late")
                    || l.contains("peer beta dead")
                    || l.contains("to beta dead")
            })
            .collect();
        assert!(
            late.is_empty(),
            "alpha judged its quiet standby:\n{}",
            late.join("\n")
        );
    }
}

/// A link that never carried a heartbeat (the crossover cable of n1 unplugged
/// before either daemon starts) is reported by both nodes once `init_dead` has
/// passed since they heard each other on the LAN, in the log and in the status;
/// nothing moves, and its first heartbeat, once plugged in, is logged too.
#[test]
fn a_link_that_never_worked_is_reported_dead() {
    let lab = Lab::new();
    lab.link_down("n1", "xo");
    let cluster = Cluster::start(&lab);
    for (node, daemon, peer) in [
        ("alpha", &cluster.alpha, "beta"),
        ("beta", &cluster.beta, "alpha"),
    ] {
        let said = format!("link crossover to {peer} dead: not one heartbeat on it");
        cluster.wait_for(&format!("{node} to report the crossover"), || {
            lab.log(daemon).contains(&said)
        });
        let status = status_of(&lab, node);
        let crossover = (status.peers[0].links.iter())
            .find(|l| l.name == "crossover")
            .expect("a crossover link in the status");
        assert_eq!(crossover.state, LinkState::Down, "{node}: {crossover:?}");
        assert_eq!(crossover.last_heartbeat_ms, None, "{node}: {crossover:?}");
    }
    lab.link_up("n1", "xo");
    for (node, daemon, peer) in [
        ("alpha", &cluster.alpha, "beta"),
        ("beta", &cluster.beta, "alpha"),
    ] {
        let said = format!("link crossover to {peer} up: its first heartbeat came");
        cluster.wait_for(&format!("{node} to hear the crossover"), || {
            lab.log(daemon).contains(&said)
        });
    }
    assert!(vip_on(&lab, "n1") && !vip_on(&lab, "n2"));
    assert!(
        !lab.log(&cluster.beta).contains("-> active"),
        "beta went active while alpha was alive on the LAN\n{}",
        cluster.logs()
    );
}
