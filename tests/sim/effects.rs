//! Effects that fail or hang, rule by rule (see `src/machine/effects.rs`): a VIP
//! whose removal failed counts as held until a later try works, so its release (and
//! the peer that waits for it) waits too; a withdrawal that failed is tried again
//! beside the queue; a hook that only notifies runs beside the queue, so a hung one
//! holds up no VIP.

use failoverd::config::{Config, Failback, Node};
use failoverd::machine::{Event, Hook, Order, Role};

use crate::harness::{HookBehaviour, Sim, config, ms};

const ALPHA: usize = 0;
const BETA: usize = 1;

/// Alpha and beta, and a witness on the LAN: the majority rule applies.
fn with_witness() -> Config {
    let mut cfg = config(2, Failback::Manual);
    cfg.nodes.push(Node {
        name: "witness".into(),
        witness: true,
        priority: 0,
        addresses: vec![None, Some("198.18.0.13".parse().expect("an address"))],
        interfaces: Default::default(),
    });
    assert!(cfg.majority_rule());
    cfg
}

/// Alpha, asked to stand by, cannot remove its VIP (netlink fails): it stays
/// releasing and tells its peer so, tries again with a growing wait, and reports
/// every failure; beta does not add the VIP while alpha's kernel may still have it.
/// Once the removal works, the release ends and beta takes over.
#[test]
fn a_failed_removal_is_retried_and_the_release_waits_for_it() {
    let mut sim = Sim::settled(config(2, Failback::Manual), 71);
    sim.vip_removes_fail(ALPHA, true, None);
    sim.order(ALPHA, Order::Standby).expect("alpha stands by");
    sim.run_for(ms(4000));
    assert!(sim.machine(ALPHA).releasing(), "alpha ended its release");
    assert_eq!(sim.holders(), vec![ALPHA], "the VIP left alpha's kernel");
    assert!(sim.nodes[BETA].adds.is_empty(), "beta added the VIP");
    let status = sim
        .machine(ALPHA)
        .status(sim.now, std::time::SystemTime::now());
    assert!(status.releasing);
    assert!(status.vips[0].removal_failures >= 3, "{:?}", status.vips);
    // Tried again and again, each wait longer than the one before, up to a cap.
    let removes = &sim.nodes[ALPHA].removes;
    assert!(removes.len() >= 4, "{} tries", removes.len());
    assert!(removes.iter().all(|r| !r.ok && !r.beside && r.vip == 0));
    let gaps: Vec<_> = removes.windows(2).map(|w| w[1].at - w[0].at).collect();
    for pair in gaps.windows(2) {
        assert!(pair[1] >= pair[0], "the waits shrink: {gaps:?}");
    }
    assert!(gaps[0] >= ms(400) && gaps[0] <= ms(600), "{gaps:?}");
    let reported = sim.nodes[ALPHA]
        .events
        .iter()
        .filter(|(_, e)| matches!(e, Event::VipRemoveFailed { .. }))
        .count();
    assert_eq!(reported, removes.len(), "each failure is reported");

    sim.vip_removes_fail(ALPHA, false, None);
    sim.run_until(ms(12_000), |s| s.holders() == vec![BETA]);
    assert_eq!(sim.role(ALPHA), Some(Role::Standby));
    assert_eq!(sim.max_holders_seen, 1);
    let status = sim
        .machine(ALPHA)
        .status(sim.now, std::time::SystemTime::now());
    assert_eq!(status.vips[0].removal_failures, 0);
}

/// A VIP found at start that the daemon drops (restarted while cut off from
/// everyone, with a witness: no majority) and cannot remove stays in the kernel;
/// the daemon keeps trying, and the VIP goes once netlink works.
#[test]
fn a_stale_vip_whose_removal_fails_is_removed_once_netlink_works() {
    let mut sim = Sim::settled(with_witness(), 72);
    sim.kill_daemon(ALPHA);
    sim.isolate(ALPHA);
    sim.vip_removes_fail(ALPHA, true, None);
    sim.run_for(ms(100));
    sim.restart(ALPHA);
    sim.run_for(ms(5000));
    assert!(
        sim.nodes[ALPHA].vips[0],
        "the stale VIP left alpha's kernel"
    );
    assert!(sim.has_event(ALPHA, |e| matches!(e, Event::StaleVip { .. })));
    let failed = sim.nodes[ALPHA].removes.iter().filter(|r| !r.ok).count();
    assert!(failed >= 3, "{failed} failed tries");
    sim.vip_removes_fail(ALPHA, false, None);
    sim.run_until(ms(10_000), |s| !s.nodes[ALPHA].vips[0]);
    assert_eq!(sim.holders(), vec![BETA]);
}

/// With the majority rule, a holder cut off from everyone withdraws its VIP beside
/// the queue while its stop hook runs. The withdrawal fails at first: it is tried
/// again beside the queue, not behind the 3 s stop hook, and the VIP goes as soon as
/// netlink works. (Beta's adds fail on purpose, so that the VIP left behind shows in
/// alpha's kernel only.)
#[test]
fn a_failed_withdrawal_is_retried_beside_the_queue() {
    let mut sim = Sim::settled(with_witness(), 73);
    sim.hook_time = ms(3000);
    sim.vip_adds_fail(BETA, true, None);
    sim.vip_removes_fail(ALPHA, true, Some(ms(1000)));
    sim.isolate(ALPHA);
    let cut = sim.t();
    sim.run_until(ms(3000), |s| s.machine(ALPHA).releasing());
    let gone = sim.run_until(ms(2500), |s| !s.nodes[ALPHA].vips[0]);
    let removes = &sim.nodes[ALPHA].removes;
    assert!(removes.iter().all(|r| r.beside), "a try went to the queue");
    assert!(!removes[0].ok, "the first withdrawal worked");
    assert!(removes.last().is_some_and(|r| r.ok));
    let stop = sim.hook_runs(ALPHA, Hook::Stop);
    let stop = stop.first().expect("the stop hook ran").at;
    assert!(
        sim.t() < stop + sim.hook_time,
        "the VIP went only after the stop hook: at {:?}, the hook began at {stop:?}",
        sim.t()
    );
    assert!(
        gone < ms(2500),
        "the VIP left {gone:?} after the release began"
    );
    assert!(sim.t() - cut < ms(3000));
}

/// A fault hook that hangs (a mail server that does not answer) runs beside the
/// queue: beta, in fault with its fault hook hung until `hooks.timeout` (5 s), takes
/// the VIP as soon as it is alone, not after the hook is killed.
#[test]
fn a_hung_fault_hook_does_not_hold_up_a_takeover() {
    let mut sim = Sim::settled(config(2, Failback::Manual), 74);
    sim.hooks(BETA, HookBehaviour::Hang, None);
    sim.gateway_down(BETA);
    sim.run_until(ms(2000), |s| s.role(BETA) == Some(Role::Fault));
    sim.run_for(ms(50));
    assert_eq!(sim.hook_runs(BETA, Hook::Fault).len(), 1);
    sim.crash(ALPHA);
    let took = sim.run_until(ms(4000), |s| s.holders() == vec![BETA]);
    let t = &sim.config.timing;
    assert!(
        took < t.dead + ms(1000),
        "beta took {took:?} to add the VIP behind its fault hook"
    );
}
