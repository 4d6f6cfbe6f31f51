//! The witness and the majority rule end to end: real daemons in the namespace lab
//! (tests/common), with a third namespace, n3, on the LAN bridge alone (no crossover)
//! where a witness runs: `[[node]] name = "witness"`, `witness = true`, an address on
//! the LAN only.
//!
//! The rules pinned, from the witness design (src/machine/quorum.rs):
//! - **A witness that hears the holder vetoes a takeover.** Alpha and beta cut from
//!   each other on both links (nftables in their namespaces) while the witness hears
//!   both: beta finds alpha silent but the witness does not, so beta holds its
//!   takeover (`takeover_held`: "witness still hears alpha ..."), stands by and never
//!   adds the VIP; alpha keeps it on the witness's acknowledgements alone, and the
//!   client is served throughout. Healed, nothing moves.
//! - **A dead holder is replaced at `dead`.** Alpha powered off (daemon killed, links
//!   down) with the witness up: beta and the witness both find it silent, and the
//!   witness tells beta at once, so beta takes over within `dead` and an interval.
//! - **A witness holds nothing.** Its status says "witness" and lists both peers, it
//!   refuses `takeover` (and `standby`, `failback`) with the witness message, and
//!   `failoverd check --node witness` describes it and the majority rule.
//!
//! Timing: a 100 ms interval and `dead` = 500 ms (warn 300 ms), not the lab's 50 ms
//! and 300 ms: with three voters `dead` must be at least four intervals, and a
//! holder cut from its peer lives on the witness's acknowledgements alone, so the
//! wider margin keeps a loaded machine's scheduling from ending its lease. Every
//! event that moves, or could move, the VIP runs inside `Cluster::across`
//! (tests/common/crossing.rs). Every wait and loop is bounded. Like every end-to-end
//! test these need root; the cut needs `nft` (nftables) and fails, never passes
//! untested, without it.

#![allow(
    clippy::zombie_processes,
    reason = "the Lab kills and reaps the processes it spawned when it is dropped"
)]

mod common;

use std::process::Child;
use std::time::{Duration, Instant};

use common::cluster::*;
use common::crossing::{DEATH_SLACK, Expect, arrived_after};
use common::sample::Sample;
use common::{Lab, N1_LAN, N1_XO, N2_LAN, N2_XO, N3_LAN, failoverd, require_nft};
use failoverd::machine::Role;
use failoverd::status::{PeerState, PeerStatus, Status};

/// The lab host of the witness: on the LAN bridge only.
const WITNESS_HOST: &str = "n3";
/// `timing.interval` in these tests.
const INTERVAL: Duration = Duration::from_millis(100);
/// `timing.dead` in these tests: five intervals (four at least with a witness).
const WITNESS_DEAD: Duration = Duration::from_millis(500);
/// `cluster.port`: the heartbeats' UDP port, in the sample and so in the lab.
const HEARTBEAT_PORT: u16 = 694;
/// Room for process scheduling in the takeover after a crash, on top of `dead` and
/// an interval: beta's timer and the witness's out-of-turn heartbeat (both wake up
/// about `dead` after alpha's last heartbeat), beta's election and its netlink add,
/// and the watcher's read of it, on a shared two-core machine.
const TAKEOVER_MARGIN: Duration = Duration::from_millis(150);
/// How long a held takeover is watched for a wrong move: three times `dead`, so
/// that beta's verdict, alpha's lease (renewed by the witness alone) and several
/// of the guard's looks all come and go inside it.
const HOLD_WINDOW: Duration = Duration::from_millis(1500);
/// What beta says while the witness vetoes its takeover (status, error, fault hook).
const VETOED: &str = "witness still hears alpha, which is silent here";
/// What the witness answers to an order that would move the VIPs.
const WITNESS_REFUSAL: &str = "this node is a witness: it never holds the VIPs";

// --- 1. the witness vetoes a takeover it can see is wrong ------------------------

/// Alpha and beta stop hearing each other on both links (crossover and LAN) while the
/// witness hears both. Beta finds alpha silent, but the witness still hears it and
/// says so in its votes: beta holds its takeover, stands by and never adds the VIP.
/// Alpha, acknowledged by the witness alone, keeps the VIP and serves the client
/// throughout. With the rules removed, beta hears alpha again and nothing moves.
#[test]
fn a_witness_that_hears_the_holder_vetoes_the_takeover_of_a_cut_off_peer() {
    let lab = witness_lab();
    require_nft(&lab);
    let mut w = Witnessed::start(&lab);
    let expect = Expect::stays("alpha").settle(Duration::from_millis(500));
    let (_, seen) = w.cluster.across(&expect, |c| {
        cut_pair(&lab);
        wait_for_veto(&lab, &w.witness, c);
        std::thread::sleep(HOLD_WINDOW);
        let (alpha, beta, witness) = (
            status(&lab, "alpha"),
            status(&lab, "beta"),
            status(&lab, "witness"),
        );
        let logs = || all_logs(&lab, c, &w.witness);
        assert!(
            alpha.state == Role::Active && alpha.vips.iter().all(|v| v.held_here),
            "alpha, heard by the witness, let go: state {:?}, reason {:?}\n{}",
            alpha.state,
            alpha.reason,
            logs()
        );
        assert!(
            beta.state == Role::Standby
                && beta
                    .takeover_held
                    .as_deref()
                    .is_some_and(|h| h.contains(VETOED)),
            "beta after {HOLD_WINDOW:?} of the cut: state {:?}, takeover_held {:?}\n{}",
            beta.state,
            beta.takeover_held,
            logs()
        );
        assert!(
            !peer(&alpha, "beta").alive && !peer(&beta, "alpha").alive,
            "the cut left alpha and beta hearing each other\n{}",
            logs()
        );
        for node in ["alpha", "beta"] {
            assert!(
                peer(&witness, node).alive,
                "the witness lost {node}, which only alpha and beta's rules cut\n{}",
                logs()
            );
        }
        heal_pair(&lab);
        wait_for_all_alive(&lab, &w.witness, c);
        std::thread::sleep(WITNESS_DEAD * 3);
    });
    assert_eq!(
        seen.client.lost,
        0,
        "the client lost probes: {}\n{}",
        seen.client.raw,
        w.logs()
    );
    let alpha = status(&lab, "alpha");
    let beta = status(&lab, "beta");
    assert_eq!(alpha.state, Role::Active, "{}", w.logs());
    assert_eq!(beta.state, Role::Standby, "{}", w.logs());
    assert_eq!(beta.takeover_held, None, "{}", w.logs());
    let beta_log = lab.log(&w.cluster.beta);
    assert!(
        !beta_log.contains("-> active"),
        "beta went active while the witness heard alpha\n{}",
        w.logs()
    );
    assert!(
        beta_log
            .lines()
            .any(|l| l.contains("ERROR") && l.contains("takeover held") && l.contains(VETOED)),
        "beta logged no error for the vetoed takeover\n{}",
        w.logs()
    );
    let alpha_log = lab.log(&w.cluster.alpha);
    assert!(
        !alpha_log.contains("no longer heard by a majority"),
        "alpha let go although the witness heard it\n{}",
        w.logs()
    );
    let vetoes: Vec<String> = hook_lines(&lab, "beta")
        .into_iter()
        .filter(|l| l.starts_with("fault ") && l.contains(VETOED))
        .collect();
    assert_eq!(
        vetoes.len(),
        1,
        "beta's fault hook runs once for the veto, however often it looked again: \
         {vetoes:?}\n{}",
        w.logs()
    );
}

// --- 2. a dead holder is replaced at dead ----------------------------------------

/// Alpha, the holder, is powered off (its daemon killed and both its links taken
/// down) with the witness up. Beta and the witness both find it silent about `dead`
/// after its last heartbeat, the witness tells beta at once, and beta takes over:
/// the VIP is on n2 within `dead` and an interval of the crash, with
/// `TAKEOVER_MARGIN` for scheduling, and nothing is held afterwards.
#[test]
fn with_the_witness_up_a_powered_off_holder_is_replaced_within_dead_and_an_interval() {
    let lab = witness_lab();
    let mut w = Witnessed::start(&lab);
    let expect = Expect::unplanned("alpha", "beta").gap(WITNESS_DEAD + DEATH_SLACK);
    let (crashed, seen) = w.cluster.across(&expect, |c| {
        let crashed = Instant::now();
        c.crash_alpha();
        crashed
    });
    let took = arrived_after(&seen, 1, crashed);
    let bound = WITNESS_DEAD + INTERVAL + TAKEOVER_MARGIN;
    eprintln!("crash of alpha to the VIP on n2: {took:?} (at most {bound:?})");
    assert!(
        took <= bound,
        "beta added the VIP {took:?} after alpha's crash, at most {bound:?} (dead \
         {WITNESS_DEAD:?} + interval {INTERVAL:?} + {TAKEOVER_MARGIN:?})\n{}\n{}",
        seen.kernel.describe(),
        w.logs()
    );
    let beta = status(&lab, "beta");
    assert_eq!(beta.state, Role::Active, "{}", w.logs());
    assert_eq!(beta.takeover_held, None, "{}", w.logs());
    let witness = status(&lab, "witness");
    assert!(
        !peer(&witness, "alpha").alive
            && peer(&witness, "beta").alive
            && peer(&witness, "beta").state == PeerState::Active,
        "the witness's peers after the takeover: {:?}\n{}",
        witness.peers,
        w.logs()
    );
    // A veto that lasted only until the witness's own verdict arrived fits the bound
    // above; it is pinned apart, by `a_clean_crash_with_the_witness_up_holds_nothing`.
    let held = held_lines(&lab, &w.cluster.beta);
    if !held.is_empty() {
        eprintln!("beta held its takeover on the way: {held:?}");
    }
}

/// The same crash, held to what an operator should see from a routine failover:
/// beta waits for the witness's news of alpha's death (both find alpha silent within
/// a millisecond of each other, and the witness sends its votes out of turn), and
/// does not report that wait as a held takeover: no error "takeover held", no fault
/// hook run. Beta's timer for alpha fires a fraction of a millisecond before the
/// witness's, so the witness's last votes still say it hears alpha: that is a veto
/// only once it outlasts an interval after beta judged alpha dead.
#[test]
fn a_clean_crash_with_the_witness_up_holds_nothing() {
    let lab = witness_lab();
    let mut w = Witnessed::start(&lab);
    let expect = Expect::unplanned("alpha", "beta").gap(WITNESS_DEAD + DEATH_SLACK);
    w.cluster.across(&expect, Cluster::crash_alpha);
    let held = held_lines(&lab, &w.cluster.beta);
    let faults: Vec<String> = hook_lines(&lab, "beta")
        .into_iter()
        .filter(|l| l.starts_with("fault "))
        .collect();
    assert!(
        held.is_empty() && faults.is_empty(),
        "beta reported a held takeover for a routine failover: log {held:?}, fault \
         hooks {faults:?}\n{}",
        w.logs()
    );
}

// --- 3. the witness's own commands -----------------------------------------------

/// The witness's status says "witness", holds no VIP and lists both peers as the
/// others see them (alpha active, beta standby), and alpha lists the witness as one;
/// `takeover`, `standby` and `failback` on the witness are refused with the witness
/// message and move nothing; `failoverd check --node witness` describes a witness and
/// the majority rule of three voters.
#[test]
fn the_witness_reports_its_role_refuses_moves_and_checks_as_a_witness() {
    let lab = witness_lab();
    let w = Witnessed::start(&lab);

    let witness = status(&lab, "witness");
    assert_eq!(witness.state, Role::Witness, "{}", w.logs());
    assert!(witness.vips.is_empty(), "{:?}", witness.vips);
    let names: Vec<&str> = witness.peers.iter().map(|p| p.name.as_str()).collect();
    assert_eq!(names, ["alpha", "beta"], "{}", w.logs());
    for (name, state) in [("alpha", PeerState::Active), ("beta", PeerState::Standby)] {
        let p = peer(&witness, name);
        assert!(
            p.alive && p.state == state && p.fingerprint_match == Some(true),
            "the witness sees {name} as {p:?}, expected alive, {state:?}, config matching\n{}",
            w.logs()
        );
    }
    for node in ["alpha", "beta"] {
        let seen_by = peer(&status(&lab, node), "witness").clone();
        assert!(
            seen_by.alive && seen_by.state == PeerState::Witness,
            "{node} sees the witness as {seen_by:?}\n{}",
            w.logs()
        );
    }

    let text = ctl(&lab, "witness", &["status"]);
    let out = String::from_utf8_lossy(&text.stdout);
    assert!(
        text.status.success()
            && out.contains("node witness is WITNESS")
            && out.lines().any(|l| l.starts_with("peer alpha: ACTIVE"))
            && out.lines().any(|l| l.starts_with("peer beta: STANDBY")),
        "failoverd status on the witness: {}",
        describe(&text)
    );

    for order in ["takeover", "standby", "failback"] {
        let output = ctl(&lab, "witness", &[order]);
        assert!(
            !output.status.success()
                && String::from_utf8_lossy(&output.stderr).contains(WITNESS_REFUSAL),
            "failoverd {order} on the witness: {}\n{}",
            describe(&output),
            w.logs()
        );
    }
    std::thread::sleep(INTERVAL * 3);
    assert!(
        vip_on(&lab, "n1") && !vip_on(&lab, "n2"),
        "an order refused by the witness moved the VIP\n{}",
        w.logs()
    );
    assert_eq!(status(&lab, "witness").state, Role::Witness);

    let failoverd = failoverd();
    let config = w.cluster.config.to_str().expect("UTF-8 path");
    let check = lab.exec(
        WITNESS_HOST,
        &[
            failoverd.to_str().expect("UTF-8 path"),
            "check",
            "--config",
            config,
            "--node",
            "witness",
        ],
    );
    let out = String::from_utf8_lossy(&check.stdout);
    assert!(
        check.status.success()
            && out.contains("this node: witness (witness, holds nothing)")
            && out.contains("majority rule: 3 voters, taking or keeping the VIPs needs 2"),
        "failoverd check --node witness: {}",
        describe(&check)
    );
}

// --- helpers ---------------------------------------------------------------------

/// The two-node cluster of the lab and a witness daemon in n3.
struct Witnessed<'a> {
    cluster: Cluster<'a>,
    witness: Child,
}

impl<'a> Witnessed<'a> {
    /// Writes the configuration with the witness, starts the witness first, then
    /// alpha and beta (each with its probe responder), and waits until alpha holds
    /// the VIP alone, beta stands by, and each of the three hears the other two.
    fn start(lab: &'a Lab) -> Witnessed<'a> {
        let config = write_config_with(lab, with_witness);
        let witness = start_daemon(lab, WITNESS_HOST, "witness", &config);
        lab.serve("n1", "alpha");
        lab.serve("n2", "beta");
        let alpha = start_daemon(lab, "n1", "alpha", &config);
        let beta = start_daemon(lab, "n2", "beta", &config);
        let w = Witnessed {
            cluster: Cluster {
                lab,
                config,
                alpha,
                beta,
            },
            witness,
        };
        wait_until(
            "alpha active with the VIP on n1 alone, beta standby",
            || {
                vip_on(lab, "n1")
                    && !vip_on(lab, "n2")
                    && try_status_of(lab, "beta").is_some_and(|s| s.state == Role::Standby)
            },
            || w.logs(),
        );
        wait_for_all_alive(lab, &w.witness, &w.cluster);
        w
    }

    fn logs(&self) -> String {
        all_logs(self.cluster.lab, &self.cluster, &self.witness)
    }
}

/// A lab with n3, the witness's host, on the LAN bridge.
fn witness_lab() -> Lab {
    let mut lab = Lab::new();
    lab.add_lan_host(WITNESS_HOST, N3_LAN);
    lab
}

/// The lab's configuration with the witness as a third `[[node]]`, on the LAN only,
/// and the timing of these tests (see the module docs).
fn with_witness(sample: Sample) -> Sample {
    sample
        .set("timing.interval", "100ms")
        .set("timing.warn", "300ms")
        .set("timing.dead", "500ms")
        .set("timing.init_dead", "1s")
        .append(&format!(
            "[[node]]\nname = \"witness\"\nwitness = true\naddresses = {{ lan = \"{N3_LAN}\" }}"
        ))
}

/// Waits (at most `LIMIT`) until each of alpha, beta and the witness hears the other
/// two; a timeout says what each one reported.
fn wait_for_all_alive(lab: &Lab, witness: &Child, cluster: &Cluster) {
    let nodes = ["alpha", "beta", "witness"];
    wait_until(
        "alpha, beta and the witness each hearing the other two",
        || {
            nodes.iter().all(|node| {
                try_status_of(lab, node).is_some_and(|s| {
                    s.peers.len() == 2
                        && s.peers.iter().all(|p| p.alive)
                        && s.takeover_held.is_none()
                })
            })
        },
        || {
            let views: Vec<String> = nodes
                .iter()
                .map(|node| match try_status_of(lab, node) {
                    Some(s) => format!(
                        "{node}: {:?}, held {:?}, peers {:?}",
                        s.state,
                        s.takeover_held,
                        s.peers
                            .iter()
                            .map(|p| (p.name.clone(), p.alive))
                            .collect::<Vec<_>>()
                    ),
                    None => format!("{node}: no status"),
                })
                .collect();
            format!("{}\n{}", views.join("\n"), all_logs(lab, cluster, witness))
        },
    );
}

/// Waits (at most `LIMIT`) until beta stands by with its takeover vetoed by the
/// witness; fails at once if the VIP reaches n2.
fn wait_for_veto(lab: &Lab, witness: &Child, cluster: &Cluster) {
    let deadline = Instant::now() + LIMIT;
    loop {
        assert!(
            !vip_on(lab, "n2"),
            "beta added the VIP while the witness heard alpha\n{}",
            all_logs(lab, cluster, witness)
        );
        let last = try_status_of(lab, "beta");
        if last.as_ref().is_some_and(|s| {
            s.state == Role::Standby
                && s.takeover_held
                    .as_deref()
                    .is_some_and(|h| h.contains(VETOED))
        }) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {LIMIT:?} waiting for beta's takeover to be vetoed by the \
             witness; beta reported {}\n{}",
            last.map_or("no status".into(), |s| format!(
                "state {:?}, reason {:?}, takeover_held {:?}",
                s.state, s.reason, s.takeover_held
            )),
            all_logs(lab, cluster, witness)
        );
        std::thread::sleep(POLL);
    }
}

/// Polls `cond` every `POLL` for up to `LIMIT`; panics with `explain()` if it never
/// holds.
fn wait_until(what: &str, mut cond: impl FnMut() -> bool, explain: impl Fn() -> String) {
    let deadline = Instant::now() + LIMIT;
    while !cond() {
        assert!(
            Instant::now() < deadline,
            "timed out after {LIMIT:?} waiting for {what}\n{}",
            explain()
        );
        std::thread::sleep(POLL);
    }
}

/// Alpha's and beta's daemon and hook logs, then the witness's.
fn all_logs(lab: &Lab, cluster: &Cluster, witness: &Child) -> String {
    format!(
        "{}--- witness: {}\n{}",
        cluster.logs(),
        lab.log_path(witness).display(),
        lab.log(witness)
    )
}

/// The lines of a daemon's log that report a held takeover.
fn held_lines(lab: &Lab, daemon: &Child) -> Vec<String> {
    lab.log(daemon)
        .lines()
        .filter(|l| l.contains("takeover held"))
        .map(str::to_owned)
        .collect()
}

/// `node`'s status, whatever its role.
fn status(lab: &Lab, node: &str) -> Status {
    try_status_of(lab, node).unwrap_or_else(|| panic!("no status from {node}"))
}

/// The peer `name` in `status`.
fn peer<'s>(status: &'s Status, name: &str) -> &'s PeerStatus {
    status
        .peers
        .iter()
        .find(|p| p.name == name)
        .unwrap_or_else(|| panic!("{} lists no peer {name}: {:?}", status.node, status.peers))
}

/// The nftables table of the cut, in n1 and n2.
const CUT_TABLE: &str = "inet witness_test";

/// Cuts the heartbeats between alpha and beta on both links, and nothing else: in
/// each of n1 and n2, UDP on the heartbeat port to or from the other node's two
/// addresses is dropped. The witness's heartbeats, and everything that is not a
/// heartbeat (ARP, the client's probes), pass.
fn cut_pair(lab: &Lab) {
    for (host, peer) in [("n1", [N2_XO, N2_LAN]), ("n2", [N1_XO, N1_LAN])] {
        let peer = format!("{{ {}, {} }}", peer[0], peer[1]);
        let port = HEARTBEAT_PORT;
        let rules = format!(
            "add table {CUT_TABLE}; \
             add chain {CUT_TABLE} input {{ type filter hook input priority 0; }}; \
             add chain {CUT_TABLE} output {{ type filter hook output priority 0; }}; \
             add rule {CUT_TABLE} input ip saddr {peer} udp dport {port} drop; \
             add rule {CUT_TABLE} input ip saddr {peer} udp sport {port} drop; \
             add rule {CUT_TABLE} output ip daddr {peer} udp dport {port} drop; \
             add rule {CUT_TABLE} output ip daddr {peer} udp sport {port} drop"
        );
        lab.exec_ok(host, &["nft", &rules]);
    }
}

/// Removes the rules of `cut_pair`.
fn heal_pair(lab: &Lab) {
    for host in ["n1", "n2"] {
        lab.exec_ok(host, &["nft", &format!("delete table {CUT_TABLE}")]);
    }
}
