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
use std::process::ExitStatus;
use std::time::{Duration, Instant};

use common::Lab;
use common::cluster::*;
use failoverd::machine::{LinkState, Role};
use failoverd::status::PeerState;
use nix::sys::signal::Signal;

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
    assert_eq!(alpha.state, Role::Standby);
    assert!(alpha.standby_requested);
}

#[test]
fn failback_returns_the_vip_to_the_preferred_node() {
    let lab = Lab::new();
    let mut cluster = Cluster::start_with(&lab, |sample| sample.set("cluster.failback", "manual"));
    let output = ctl(&lab, "alpha", &["standby", "--timeout", "10s"]);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    // A restart clears alpha's standby request; with manual failback beta keeps
    // the VIP until an operator moves it back.
    cluster.restart_alpha();
    cluster.wait_for("alpha standby again after its restart", || {
        try_status_of(&lab, "alpha").is_some_and(|s| s.state == Role::Standby)
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
