//! Tests of the test lab itself: if these fail, the end-to-end failover tests cannot be
//! believed either way. They need root; as another user they fail and say so.

#![allow(
    clippy::zombie_processes,
    reason = "the Lab kills and reaps the processes it spawned when it is dropped"
)]

mod common;

use std::net::Ipv4Addr;
use std::process::Command;
use std::time::{Duration, Instant};

use common::vipwatch::{Rtnl, VipWatch};
use common::{GATEWAY, Lab, N1_LAN, N1_XO, N2_LAN, N2_XO, N3_LAN, Probe};

/// A short probe: 20 probes 5 ms apart. The generous timeout keeps a loaded machine
/// from turning a slow answer into a loss.
fn short(target: &str) -> Probe {
    Probe::new(target)
        .count(20)
        .interval(Duration::from_millis(5))
        .timeout(Duration::from_secs(1))
}

/// Names of the namespaces that exist right now.
fn existing_namespaces() -> Vec<String> {
    let output = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .expect("run ip netns list");
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .filter_map(|line| line.split_whitespace().next().map(str::to_owned))
        .collect()
}

#[test]
fn client_reaches_the_gateway_and_both_nodes() {
    let lab = Lab::new();
    let _gw = lab.serve("gw", "gateway");
    let _alpha = lab.serve("n1", "alpha");
    let _beta = lab.serve("n2", "beta");
    for (target, name) in [(GATEWAY, "gateway"), (N1_LAN, "alpha"), (N2_LAN, "beta")] {
        let summary = lab.probe(&short(target));
        assert_eq!(summary.sent, 20, "{}", summary.raw);
        assert_eq!(summary.answered, 20, "{target}: {}", summary.raw);
        assert_eq!(summary.answers_from(name), 20, "{target}: {}", summary.raw);
        assert!(summary.changes.is_empty(), "{}", summary.raw);
    }
}

#[test]
fn hosts_have_the_planned_addresses() {
    let lab = Lab::new();
    let n1 = lab.addresses("n1", "eth0");
    assert!(n1.contains(&"198.18.0.11/24".to_owned()), "n1 eth0: {n1:?}");
    let xo = lab.addresses("n2", "xo");
    assert!(xo.contains(&"198.19.0.2/30".to_owned()), "n2 xo: {xo:?}");
    let client = lab.addresses("cl", "eth0");
    assert!(
        client.contains(&"198.18.0.100/24".to_owned()),
        "cl eth0: {client:?}"
    );
    let route = lab.exec_ok("cl", &["ip", "route", "show", "default"]);
    assert!(
        route.contains("via 198.18.0.1"),
        "client default route: {route}"
    );
}

#[test]
fn nodes_reach_each_other_over_the_crossover() {
    let lab = Lab::new();
    let _alpha = lab.serve("n1", "alpha");
    let _beta = lab.serve("n2", "beta");
    let route = lab.exec_ok("n1", &["ip", "route", "get", N2_XO]);
    assert!(route.contains("dev xo"), "n1 reaches {N2_XO} via: {route}");

    let to_beta = lab.probe_from("n1", &short(N2_XO));
    assert_eq!(to_beta.answers_from("beta"), 20, "{}", to_beta.raw);
    let to_alpha = lab.probe_from("n2", &short(N1_XO));
    assert_eq!(to_alpha.answers_from("alpha"), 20, "{}", to_alpha.raw);

    // The crossover is not on the LAN: the client cannot reach it.
    let from_client = lab.probe(&short(N2_XO).timeout(Duration::from_millis(100)));
    assert_eq!(from_client.answered, 0, "{}", from_client.raw);
}

#[test]
fn link_down_cuts_a_node_off_the_lan_and_link_up_restores_it() {
    let lab = Lab::new();
    let _alpha = lab.serve("n1", "alpha");
    let before = lab.probe(&short(N1_LAN));
    assert_eq!(before.answered, 20, "{}", before.raw);

    lab.link_down("n1", "eth0");
    let down = lab.probe(&short(N1_LAN).timeout(Duration::from_millis(100)));
    assert_eq!(down.sent, 20, "{}", down.raw);
    assert_eq!(down.answered, 0, "{}", down.raw);

    lab.link_up("n1", "eth0");
    // The link may take a moment to carry traffic again; wait for the first answer.
    let up = lab.probe(&short(N1_LAN).count(200).stop_after("alpha", 5));
    assert!(up.stopped_early, "no answer after link_up: {}", up.raw);
    assert_eq!(up.last_responder.as_deref(), Some("alpha"), "{}", up.raw);
}

/// A host added with `add_lan_host` (a witness's, in tests/witness.rs) is on the LAN
/// like the nodes, reaching the gateway and both nodes, but not on the crossover;
/// dropping the lab deletes its namespace with the others.
#[test]
fn an_added_lan_host_reaches_the_lan_only_and_goes_with_the_lab() {
    let mut lab = Lab::new();
    lab.add_lan_host("n3", N3_LAN);
    let names = lab.namespaces();
    assert_eq!(names.len(), 6, "{names:?}");
    let eth0 = lab.addresses("n3", "eth0");
    assert!(eth0.contains(&format!("{N3_LAN}/24")), "n3 eth0: {eth0:?}");
    let _gw = lab.serve("gw", "gateway");
    let _alpha = lab.serve("n1", "alpha");
    let _beta = lab.serve("n2", "beta");
    let _third = lab.serve("n3", "third");
    for (target, name) in [(GATEWAY, "gateway"), (N1_LAN, "alpha"), (N2_LAN, "beta")] {
        let summary = lab.probe_from("n3", &short(target));
        assert_eq!(summary.answers_from(name), 20, "{target}: {}", summary.raw);
    }
    let from_n1 = lab.probe_from("n1", &short(N3_LAN));
    assert_eq!(from_n1.answers_from("third"), 20, "{}", from_n1.raw);
    for xo in [N1_XO, N2_XO] {
        let cut = lab.probe_from("n3", &short(xo).timeout(Duration::from_millis(100)));
        assert_eq!(cut.answered, 0, "{xo} from n3: {}", cut.raw);
    }
    drop(lab);
    let left: Vec<String> = existing_namespaces()
        .into_iter()
        .filter(|n| names.contains(n))
        .collect();
    assert!(left.is_empty(), "namespaces left behind: {left:?}");
}

#[test]
fn blackhole_cuts_only_that_node_off_the_gateway() {
    let lab = Lab::new();
    let _gw = lab.serve("gw", "gateway");
    lab.blackhole("n1", GATEWAY);

    let from_n1 = lab.probe_from("n1", &short(GATEWAY).timeout(Duration::from_millis(100)));
    assert_eq!(from_n1.answered, 0, "{}", from_n1.raw);
    for host in ["n2", "cl"] {
        let summary = lab.probe_from(host, &short(GATEWAY));
        assert_eq!(
            summary.answers_from("gateway"),
            20,
            "from {host}: {}",
            summary.raw
        );
    }

    lab.unblackhole("n1", GATEWAY);
    let healed = lab.probe_from("n1", &short(GATEWAY));
    assert_eq!(healed.answers_from("gateway"), 20, "{}", healed.raw);
}

#[test]
fn dropping_the_lab_kills_its_processes_and_deletes_its_namespaces() {
    let lab = Lab::new();
    let names = lab.namespaces();
    let existing = existing_namespaces();
    assert!(
        names.iter().all(|n| existing.contains(n)),
        "{names:?} not all in {existing:?}"
    );
    let server = lab.serve("n1", "alpha");
    let pid = server.id();
    drop(lab);

    let left: Vec<String> = existing_namespaces()
        .into_iter()
        .filter(|n| names.contains(n))
        .collect();
    assert!(left.is_empty(), "namespaces left behind: {left:?}");
    // Killed and reaped: not even a zombie is left.
    let proc_entry = std::path::Path::new("/proc").join(pid.to_string());
    assert!(
        !proc_entry.exists(),
        "netprobe serve (pid {pid}) survived the lab"
    );
}

#[test]
fn a_panicking_test_still_cleans_up() {
    let names = std::sync::Mutex::new(Vec::new());
    let result = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let lab = Lab::new();
        *names.lock().unwrap() = lab.namespaces();
        panic!("a test fails while its lab is up");
    }));
    assert!(result.is_err());
    let names = names.into_inner().unwrap();
    assert_eq!(names.len(), 5);
    let left: Vec<String> = existing_namespaces()
        .into_iter()
        .filter(|n| names.contains(n))
        .collect();
    assert!(left.is_empty(), "namespaces left behind: {left:?}");
}

/// The overlap detector that the end-to-end tests rely on (tests/common/vipwatch.rs):
/// scripted moves of the VIP between n1 and n2, made with netlink calls from this
/// process. An overlap of 5 ms and one of a few microseconds (two back-to-back calls)
/// are both reported, in order; clean moves (removed, then added, also back to back)
/// are not.
#[test]
fn the_vip_watcher_sees_overlaps_down_to_microseconds_and_no_clean_move_as_one() {
    let lab = Lab::new();
    let vip: Ipv4Addr = common::VIP.parse().unwrap();
    let mut n1 = Rtnl::open_in(&lab, "n1");
    let mut n2 = Rtnl::open_in(&lab, "n2");
    let (i1, i2) = (n1.link_index("eth0"), n2.link_index("eth0"));
    n1.add_address(i1, vip, 24);
    let watch = VipWatch::start(&lab, vip);
    // Beta gains it 5 ms before alpha lets it go; the overlap lies in [least, most].
    let before_add = Instant::now();
    n2.add_address(i2, vip, 24);
    let added = Instant::now();
    std::thread::sleep(Duration::from_millis(5));
    let before_remove = Instant::now();
    n1.remove_address(i1, vip, 24);
    let (least, most) = (before_remove - added, before_add.elapsed());
    // Back to alpha the same way, with nothing between the two calls.
    let t = Instant::now();
    n1.add_address(i1, vip, 24);
    n2.remove_address(i2, vip, 24);
    let tiny = t.elapsed();
    // Clean moves, with nothing between the calls either.
    n1.remove_address(i1, vip, 24);
    n2.add_address(i2, vip, 24);
    n2.remove_address(i2, vip, 24);
    n1.add_address(i1, vip, 24);
    let history = watch.finish();

    let changes: Vec<(usize, bool)> = history
        .changes
        .iter()
        .map(|c| (c.node, c.present))
        .collect();
    let expected = [
        (1, true),
        (0, false),
        (0, true),
        (1, false),
        (0, false),
        (1, true),
        (1, false),
        (0, true),
    ];
    assert_eq!(changes, expected, "{}", history.describe());
    assert_eq!(history.initial, [true, false]);
    let overlaps = history.overlaps();
    assert_eq!(overlaps.len(), 2, "{overlaps:?}\n{}", history.describe());
    let at = |i: usize| history.changes[i].at - history.started;
    assert_eq!(overlaps[0].began, at(0), "{overlaps:?}");
    assert_eq!(overlaps[1].began, at(2), "{overlaps:?}");
    let (five, short) = (overlaps[0].lasted.unwrap(), overlaps[1].lasted.unwrap());
    eprintln!(
        "overlap detector (real-time: {}): a 5 ms overlap ({least:?} to {most:?}) measured \
         as {five:?}; a back-to-back one (both calls within {tiny:?}) as {short:?}",
        history.realtime
    );
    // Lengths are read times, late by the watcher's wake-ups: with real-time priority
    // a few milliseconds at worst, which is the precision the module docs state.
    if history.realtime {
        let slack = Duration::from_millis(3);
        assert!(
            five + slack >= least && five <= most + slack,
            "the 5 ms overlap measured as {five:?}, really {least:?} to {most:?}"
        );
        assert!(short <= tiny + slack, "{short:?} for calls {tiny:?} apart");
    }
    assert_eq!(history.at_end(), [true, false]);
}

/// `Lab::start_probe` runs netprobe in the background; SIGUSR1 ends it early with its
/// summary, which `Cluster::across` relies on to probe across events of any length.
#[test]
fn a_background_probe_stops_when_told_and_reports_every_answer() {
    let lab = Lab::new();
    let _alpha = lab.serve("n1", "alpha");
    let probe = lab.start_probe(
        &short(N1_LAN)
            .count(10_000)
            .interval(Duration::from_millis(5)),
    );
    std::thread::sleep(Duration::from_millis(300));
    let summary = probe.finish();
    assert!(
        (20..2000).contains(&summary.sent),
        "stopped after {} probes: {}",
        summary.sent,
        summary.raw
    );
    assert_eq!(summary.answered, summary.sent, "{}", summary.raw);
    assert_eq!(
        summary.answers_from("alpha"),
        summary.sent,
        "{}",
        summary.raw
    );
    assert!(!summary.stopped_early, "{}", summary.raw);
}
