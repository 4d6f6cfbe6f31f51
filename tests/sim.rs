//! Deterministic simulation of several election state machines over a simulated
//! network, driven by a fake clock: no root, no sleeps, no sockets.
//!
//! - `sim/harness.rs`: the world (nodes, network, executors, kernel VIPs, gateways,
//!   hooks) and the fault verbs, each written to a trace.
//! - `sim/invariants.rs`: what is checked after every step, and the bounds: no two
//!   holders of a VIP unless that pair is apart or only just back in contact; a holder
//!   of every VIP within a bound whenever a takeover is expected; every node keeps
//!   sending and counts only the VIPs the kernel has.
//! - `sim/menu.rs`: the randomized runs and their menu of faults and orders.
//!
//! Below: one scenario test per rule, named for it, then the randomized runs.
//! `SIM_SEEDS=N` runs N seeds, `SIM_SEED=N` replays one; a failure prints the seed,
//! how to replay it and the trace.

#[path = "sim/effects.rs"]
mod effects;
#[path = "sim/guard.rs"]
mod guard;
#[path = "sim/harness.rs"]
mod harness;
#[path = "sim/invariants.rs"]
mod invariants;
#[path = "sim/menu.rs"]
mod menu;
#[path = "sim/quorum.rs"]
mod quorum;
#[path = "common/sample.rs"]
mod sample;
#[path = "sim/steady.rs"]
mod steady;

use std::time::{Duration, SystemTime};

use failoverd::config::{Config, Failback, Key, LiveVip, Scope, StartFailure};
use failoverd::machine::peer::QUIET_RETRY;
use failoverd::machine::{
    Accepted, Action, ConfigChange, Event, Hook, Input, Lapse, LinkState, Machine, Order, Refusal,
    Role,
};
use failoverd::status;
use failoverd::wire::heartbeat::Heartbeat;

use harness::{HookBehaviour, Sim, VIP_RETRY, config, ms, service_check};
use invariants::{Stats, takeover_bound};

// --- start-up ----------------------------------------------------------------

#[test]
fn startup_the_preferred_node_takes_the_vip_and_only_it() {
    let mut sim = Sim::new(config(2, Failback::Auto), 1);
    sim.run_for(ms(3000));
    assert_eq!(sim.role(0), Some(Role::Active));
    assert_eq!(sim.role(1), Some(Role::Standby));
    assert_eq!(sim.holders(), vec![0]);
    assert_eq!(sim.max_holders_seen, 1);
    let beta = sim.transitions(1)[0].2.clone();
    assert!(
        beta == "no node active, peer alpha ranks first" || beta == "peer alpha is active",
        "{beta}"
    );
    // Both heard each other at once, so nobody waited for init_dead.
    let took = sim.nodes[0]
        .events
        .iter()
        .find_map(|(t, e)| {
            matches!(
                e,
                Event::Transition {
                    to: Role::Active,
                    ..
                }
            )
            .then_some(*t)
        })
        .unwrap();
    assert!(took < ms(1000), "took over at {took:?}");
}

#[test]
fn start_hook_runs_after_the_vip_with_the_documented_environment() {
    let sim = Sim::settled(config(2, Failback::Auto), 2);
    let runs = sim.hook_runs(0, Hook::Start);
    let start = runs.first().expect("start hook ran");
    let added = sim.nodes[0]
        .adds
        .iter()
        .find(|a| a.ok)
        .expect("the VIP was added");
    assert!(
        start.at > added.at,
        "start hook at {:?}, VIP at {:?}",
        start.at,
        added.at
    );
    let env = &start.env;
    assert_eq!(env["FAILOVERD_STATE"], "active");
    assert_eq!(env["FAILOVERD_NODE"], "alpha");
    assert_eq!(env["FAILOVERD_PEER"], "beta");
    assert_eq!(env["FAILOVERD_VIPS"], "198.18.0.10/24");
    assert_eq!(env["FAILOVERD_CLUSTER"], "sim");
    assert!(!env["FAILOVERD_REASON"].is_empty());
    assert!(sim.hook_runs(1, Hook::Start).is_empty());
}

#[test]
fn a_node_alone_waits_init_dead_then_takes_over() {
    let mut sim = Sim::new(config(2, Failback::Auto), 3);
    sim.crash(0);
    sim.packets.clear();
    let took = sim.run_until(ms(3000), |s| s.role(1) == Some(Role::Active));
    assert!(took >= ms(1000), "claimed before init_dead: {took:?}");
    let reason = sim.transitions(1)[0].2.clone();
    assert!(reason.contains("init_dead"), "{reason}");
}

#[test]
fn a_restarting_node_does_not_grab_the_vip_from_an_active_peer() {
    let mut sim = Sim::settled(config(2, Failback::Manual), 4);
    sim.crash(0);
    sim.run_until(ms(2000), |s| s.role(1) == Some(Role::Active));
    sim.restart(0);
    sim.run_for(ms(5000));
    assert_eq!(sim.role(0), Some(Role::Standby));
    assert_eq!(sim.holders(), vec![1]);
    let reason = sim.transitions(0).last().unwrap().2.clone();
    assert_eq!(reason, "peer beta is active");
}

// --- node death ---------------------------------------------------------------

#[test]
fn primary_death_the_standby_takes_over_after_dead() {
    let mut sim = Sim::settled(config(2, Failback::Auto), 5);
    sim.crash(0);
    let took = sim.run_until(ms(3000), |s| s.holders() == vec![1]);
    let t = &sim.config.timing;
    assert!(took >= t.dead - t.interval, "took over too early: {took:?}");
    assert!(
        took <= t.dead + t.interval + sim.hook_time,
        "took over too late: {took:?}"
    );
    let (from, to, reason) = sim.transitions(1).last().unwrap().clone();
    assert_eq!((from, to), (Role::Standby, Role::Active));
    assert_eq!(reason, "peer alpha dead on all links");
}

#[test]
fn crossover_cut_with_lan_alive_moves_nothing() {
    let mut sim = Sim::settled(config(2, Failback::Auto), 6);
    let before = (sim.transitions(0).len(), sim.transitions(1).len());
    sim.cut_link(0);
    sim.run_for(ms(10_000));
    assert_eq!((sim.transitions(0).len(), sim.transitions(1).len()), before);
    assert_eq!(sim.holders(), vec![0]);
    assert!(sim.has_event(
        1,
        |e| matches!(e, Event::LinkDown { link, .. } if link == "crossover")
    ));
    assert!(!sim.has_event(1, |e| matches!(e, Event::PeerDead { .. })));
    // The link heals: logged, and still nothing moves.
    sim.restore_link(0);
    sim.run_for(ms(1000));
    assert!(sim.has_event(
        1,
        |e| matches!(e, Event::LinkUp { link, .. } if link == "crossover")
    ));
    assert_eq!(sim.holders(), vec![0]);
}

#[test]
fn a_link_that_never_carried_a_heartbeat_is_reported_dead() {
    // A firewall that drops the LAN's heartbeats from the start: each node hears
    // the other on the crossover only, and the LAN would stay `unknown` in silence.
    let mut sim = Sim::new(config(2, Failback::Auto), 8);
    sim.cut_link(1);
    sim.run_for(ms(5000));
    assert_eq!(sim.holders().len(), 1);
    let dead = sim.config.timing.dead;
    for i in 0..2 {
        assert!(
            sim.has_event(i, |e| matches!(e,
                Event::LinkSilent { link, since, .. } if link == "lan" && *since >= dead)),
            "{} did not report the silent link",
            sim.name(i)
        );
        let lan = &sim.machine(i).peers()[0].links[1];
        assert_eq!((lan.name.as_str(), lan.state), ("lan", LinkState::Down));
        // The working link is not reported.
        assert!(!sim.has_event(i, |e| matches!(e,
            Event::LinkSilent { link, .. } | Event::LinkDown { link, .. } if link == "crossover")));
    }
    sim.restore_link(1);
    sim.run_for(sim.config.timing.standby_interval + ms(300));
    for i in 0..2 {
        assert!(sim.has_event(i, |e| matches!(e,
            Event::LinkUp { link, first: true, .. } if link == "lan")));
        assert_eq!(sim.machine(i).peers()[0].links[1].state, LinkState::Up);
    }
}

/// A link that comes up later than the other, within `init_dead` (a switch port in
/// spanning tree after a power cut), is no link that never worked.
#[test]
fn a_link_that_comes_up_within_init_dead_is_not_reported() {
    let mut sim = Sim::new(config(2, Failback::Auto), 9);
    let t = sim.config.timing;
    assert!(
        t.init_dead > t.dead + ms(200),
        "the test wants room between them"
    );
    sim.cut_link(1);
    sim.run_until(ms(3000), |s| s.machine(0).peers()[0].alive);
    sim.run_for(t.dead + ms(100));
    sim.restore_link(1);
    sim.run_for(ms(5000));
    for i in 0..2 {
        assert!(!sim.has_event(i, |e| matches!(e, Event::LinkSilent { .. })));
        assert_eq!(sim.machine(i).peers()[0].links[1].state, LinkState::Up);
    }
}

/// The peer stops and comes back while a link still carries nothing: the link is
/// reported again, not shown `dead` in silence from the stop on.
#[test]
fn a_link_that_never_worked_is_reported_again_when_the_peer_comes_back() {
    let mut sim = Sim::new(config(2, Failback::Manual), 10);
    sim.cut_link(1);
    sim.run_for(ms(5000));
    let silent = |sim: &Sim| {
        sim.nodes[0]
            .events
            .iter()
            .filter(|(_, e)| matches!(e, Event::LinkSilent { link, .. } if link == "lan"))
            .count()
    };
    assert_eq!(silent(&sim), 1);
    sim.shutdown(1);
    sim.run_for(ms(1000));
    assert_eq!(
        sim.machine(0).peers()[0].links[1].state,
        LinkState::Unknown,
        "a link never heard is not known dead while the peer is away"
    );
    sim.restart(1);
    sim.run_for(ms(5000));
    assert_eq!(silent(&sim), 2);
    // Plugged in at last: its first heartbeat is news, though the peer went and
    // came back since the link was first reported.
    sim.shutdown(1);
    sim.run_for(ms(1000));
    sim.restore_link(1);
    sim.restart(1);
    sim.run_for(ms(5000));
    assert!(sim.has_event(0, |e| matches!(e,
        Event::LinkUp { link, first: true, .. } if link == "lan")));
    assert_eq!(silent(&sim), 2);
}

// --- health -------------------------------------------------------------------

#[test]
fn gateway_loss_on_the_active_node_moves_the_vip_without_overlap() {
    let mut sim = Sim::settled(config(2, Failback::Auto), 7);
    sim.gateway_down(0);
    sim.run_until(ms(2000), |s| s.holders() == vec![1]);
    sim.run_for(ms(500));
    assert_eq!(sim.role(0), Some(Role::Fault));
    assert_eq!(sim.role(1), Some(Role::Active));
    assert_eq!(sim.max_holders_seen, 1);
    assert!(!sim.hook_runs(0, Hook::Fault).is_empty());
    let reason = sim.transitions(0).last().unwrap().2.clone();
    assert!(reason.contains("health checks failing"), "{reason}");
    // Planned move: beta took over on alpha's heartbeat, not after `dead`.
    let (_, _, why) = sim.transitions(1).last().unwrap().clone();
    assert_eq!(why, "planned handover from alpha");
}

#[test]
fn gateway_lost_for_everyone_moves_nothing() {
    let mut sim = Sim::settled(config(2, Failback::Auto), 8);
    let before = sim.transitions(0).len();
    sim.gateway_down(0);
    sim.gateway_down(1);
    sim.run_for(ms(5000));
    assert_eq!(sim.transitions(0).len(), before);
    assert_eq!(sim.holders(), vec![0]);
}

#[test]
fn standby_losing_its_gateway_goes_to_fault_and_back() {
    let mut sim = Sim::settled(config(2, Failback::Auto), 9);
    sim.gateway_down(1);
    sim.run_until(ms(2000), |s| s.role(1) == Some(Role::Fault));
    sim.gateway_up(1);
    sim.run_until(ms(2000), |s| s.role(1) == Some(Role::Standby));
    assert_eq!(sim.holders(), vec![0]);
}

#[test]
fn a_node_alone_takes_the_vip_even_with_its_gateway_down() {
    let mut sim = Sim::settled(config(2, Failback::Auto), 10);
    sim.gateway_down(1);
    sim.run_until(ms(2000), |s| s.role(1) == Some(Role::Fault));
    sim.crash(0);
    sim.run_until(ms(3000), |s| s.holders() == vec![1]);
}

#[test]
fn the_faulty_node_gets_the_vip_back_only_by_failback_rules() {
    let mut sim = Sim::settled(config(2, Failback::Auto), 11);
    sim.gateway_down(0);
    sim.run_until(ms(2000), |s| s.holders() == vec![1]);
    sim.gateway_up(0);
    // Healthy again and preferred: failback after failback_delay, never overlapping.
    let took = sim.run_until(ms(5000), |s| s.holders() == vec![0]);
    assert!(took >= sim.config.cluster.failback_delay, "{took:?}");
    assert_eq!(sim.max_holders_seen, 1);
}

// --- partitions -----------------------------------------------------------------

/// The behaviour without the split-brain guard (`live_vip = "take"`), for the rules
/// that matter only once two nodes hold a VIP: a standby takes a VIP that a killed,
/// paused or cut-off holder still answers for.
fn taking(mut cfg: Config) -> Config {
    cfg.split_brain.live_vip = LiveVip::Take;
    cfg
}

/// After a partition, the first datagrams do not echo the receiver's nonce; the next
/// heartbeat does (a handshake, at most three intervals), and the lower-ranked node
/// then releases: its stop hook, then the removal. (With `live_vip = "take"`: by
/// default the guard keeps beta from taking a VIP that alpha still answers for; see
/// `guard::a_heartbeat_partition_with_the_lan_up_never_makes_two_holders`.)
#[test]
fn partition_then_heal_the_lower_ranked_releases_within_a_handshake_and_its_stop_hook() {
    let mut cfg = config(2, Failback::Manual);
    cfg.split_brain.live_vip = LiveVip::Take;
    let mut sim = Sim::settled(cfg, 12);
    sim.partition(0, 1);
    sim.run_until(ms(3000), |s| s.active() == vec![0, 1]);
    sim.run_for(ms(500));
    let announces_before = sim.nodes[0].announces.len();
    let loser_announces = sim.nodes[1].announces.len();
    sim.heal();
    let took = sim.run_until(ms(1000), |s| {
        s.holders() == vec![0] && s.active() == vec![0]
    });
    let t = &sim.config.timing;
    let bound = t.interval * 3 + sim.hook_time + ms(5);
    assert!(took <= bound, "took {took:?}, more than {bound:?}");
    assert_eq!(sim.role(1), Some(Role::Standby));
    let reason = sim.transitions(1).last().unwrap().2.clone();
    assert!(reason.contains("ranks higher"), "{reason}");
    // The winner re-announces so switches learn its MAC again; the loser, which
    // heard the winner come back in the step it decided to release, does not.
    sim.run_for(ms(300));
    assert!(sim.nodes[0].announces.len() > announces_before);
    assert_eq!(sim.nodes[1].announces.len(), loser_announces);
}

#[test]
fn an_isolated_holder_is_replaced_and_its_replacement_releases_to_it_on_return() {
    let mut sim = Sim::settled(config(2, Failback::Auto), 13);
    sim.isolate(0);
    let took = sim.run_until(ms(3000), |s| s.holders() == vec![0, 1]);
    // Dead counts from alpha's last heartbeat, up to an interval before it was cut off.
    let t = &sim.config.timing;
    assert!(
        took >= t.dead - t.interval,
        "replaced before dead: {took:?}"
    );
    assert_eq!(
        sim.role(0),
        Some(Role::Active),
        "alone, alpha keeps the VIP"
    );
    sim.run_for(ms(1000));
    sim.heal();
    // Alpha outranks beta, so beta releases, without waiting for a failback delay.
    let took = sim.run_until(ms(1000), |s| {
        s.holders() == vec![0] && s.active() == vec![0]
    });
    let t = &sim.config.timing;
    assert!(took <= t.interval * 3 + sim.hook_time + ms(5), "{took:?}");
    assert_eq!(sim.active(), vec![0]);
    let (from, to, reason) = sim.transitions(1).last().unwrap().clone();
    assert_eq!((from, to), (Role::Active, Role::Standby));
    assert_eq!(reason, "both nodes active, peer alpha ranks higher");
    assert_eq!(sim.transitions(0).last().unwrap().1, Role::Active);
}

// --- failback --------------------------------------------------------------------

#[test]
fn failback_auto_returns_the_vip_after_the_delay_without_overlap() {
    let mut sim = Sim::settled(config(2, Failback::Auto), 14);
    sim.crash(0);
    sim.run_until(ms(2000), |s| s.holders() == vec![1]);
    sim.restart(0);
    sim.run_until(ms(2000), |s| s.role(0) == Some(Role::Standby));
    // The holder's status says where the VIPs go, and when, once it heard alpha
    // stand by.
    let wall = SystemTime::now();
    sim.run_until(ms(500), |s| {
        s.machine(1).status(s.now, wall).failback_due.is_some()
    });
    let status = sim.machine(1).status(sim.now, wall);
    let due = status.failback_due.expect("a failback waits");
    assert_eq!(due.to, "alpha");
    let due_in = Duration::from_millis(due.at_unix_ms - status::unix_ms(wall));
    assert!(due_in <= sim.config.cluster.failback_delay, "{due_in:?}");
    assert!(!status.failback_held);
    let took = sim.run_until(ms(5000), |s| s.holders() == vec![0]);
    assert!(
        took + ms(300) >= sim.config.cluster.failback_delay,
        "{took:?}"
    );
    // What took it is what the status said, to the millisecond of the simulation.
    assert!(
        took.abs_diff(due_in) <= sim.config.timing.interval,
        "taken {took:?} after the status said {due_in:?}"
    );
    assert_eq!(sim.max_holders_seen, 1);
    let (_, _, reason) = sim.transitions(1).last().unwrap().clone();
    assert_eq!(reason, "failback to preferred node alpha");
    let (_, _, reason) = sim.transitions(0).last().unwrap().clone();
    assert_eq!(reason, "planned handover from beta");
}

/// Maintenance freezes failback, so the holder stops saying when the VIPs go back.
/// The wait went on meanwhile: once maintenance is off, the VIPs go back at once.
#[test]
fn maintenance_takes_the_failback_off_the_status() {
    let mut sim = Sim::settled(config(2, Failback::Auto), 14);
    sim.crash(0);
    sim.run_until(ms(2000), |s| s.holders() == vec![1]);
    sim.restart(0);
    let due = |s: &Sim| {
        s.machine(1)
            .status(s.now, SystemTime::now())
            .failback_due
            .is_some()
    };
    sim.run_until(ms(3000), due);
    sim.order(1, Order::Maintenance(true)).unwrap();
    sim.run_for(sim.config.cluster.failback_delay * 2);
    assert!(!due(&sim));
    assert_eq!(sim.holders(), vec![1]);
    sim.order(1, Order::Maintenance(false)).unwrap();
    let took = sim.run_until(ms(2000), |s| s.holders() == vec![0]);
    assert!(took <= ms(500), "{took:?}");
    assert_eq!(sim.max_holders_seen, 1);
}

#[test]
fn failback_manual_keeps_the_vip_where_it_is() {
    let mut sim = Sim::settled(config(2, Failback::Manual), 15);
    sim.crash(0);
    sim.run_until(ms(2000), |s| s.holders() == vec![1]);
    sim.restart(0);
    sim.run_for(ms(10_000));
    assert_eq!(sim.holders(), vec![1]);
    assert_eq!(sim.role(0), Some(Role::Standby));
}

#[test]
fn a_primary_that_keeps_restarting_never_pulls_the_vip() {
    let mut sim = Sim::settled(config(2, Failback::Auto), 16);
    sim.crash(0);
    sim.run_until(ms(2000), |s| s.holders() == vec![1]);
    for _ in 0..6 {
        sim.restart(0);
        sim.run_for(sim.config.cluster.failback_delay / 2 + ms(400));
        sim.kill_daemon(0);
        sim.run_for(ms(200));
    }
    assert_eq!(sim.holders(), vec![1]);
    let moves = sim
        .transitions(1)
        .iter()
        .filter(|(_, to, _)| *to == Role::Active)
        .count();
    assert_eq!(moves, 1, "{:?}", sim.transitions(1));
}

// --- planned moves ---------------------------------------------------------------

#[test]
fn graceful_shutdown_hands_over_at_once_and_never_overlaps() {
    let mut sim = Sim::settled(config(2, Failback::Auto), 17);
    sim.shutdown(0);
    let took = sim.run_until(ms(2000), |s| s.holders() == vec![1]);
    assert!(took < sim.config.timing.dead, "waited for dead: {took:?}");
    assert_eq!(sim.max_holders_seen, 1);
    assert!(sim.nodes[0].machine.is_none(), "alpha exited");
    let stop = sim.hook_runs(0, Hook::Stop);
    assert_eq!(stop.len(), 1);
    assert_eq!(stop[0].env["FAILOVERD_STATE"], "stopped");
    let (_, _, reason) = sim.transitions(1).last().unwrap().clone();
    assert_eq!(reason, "peer alpha shut down");
}

#[test]
fn graceful_shutdown_of_the_standby_moves_nothing() {
    let mut sim = Sim::settled(config(2, Failback::Auto), 18);
    sim.shutdown(1);
    sim.run_for(ms(2000));
    assert!(sim.nodes[1].machine.is_none());
    assert_eq!(sim.holders(), vec![0]);
    assert!(sim.has_event(0, |e| matches!(e, Event::PeerLeaving { .. })));
    assert!(!sim.has_event(0, |e| matches!(e, Event::PeerDead { .. })));
}

#[test]
fn handover_waits_for_a_slow_stop_hook() {
    let mut sim = Sim::settled(config(2, Failback::Auto), 19);
    sim.hook_time = ms(2000);
    sim.shutdown(0);
    sim.run_for(ms(1500));
    // The stop hook still runs: beta must not have taken the VIP.
    assert_eq!(sim.holders(), vec![0]);
    sim.run_until(ms(2000), |s| s.holders() == vec![1]);
    assert_eq!(sim.max_holders_seen, 1);
}

// --- crash leftovers and hostile packets -----------------------------------------

#[test]
fn a_stale_vip_found_at_start_is_removed() {
    let mut sim = Sim::settled(taking(config(2, Failback::Manual)), 20);
    sim.kill_daemon(0);
    // Beta takes over while alpha's kernel keeps the VIP: only alpha's restart can
    // clean that up, and the invariants allow the overlap until it has.
    sim.run_until(ms(2000), |s| s.holders() == vec![0, 1]);
    sim.run_for(ms(1000));
    assert_eq!(sim.holders(), vec![0, 1]);
    sim.restart(0);
    // The stale VIP goes as soon as alpha hears beta active, before the stop hook.
    let took = sim.run_until(ms(1000), |s| s.holders() == vec![1]);
    assert!(took <= sim.config.timing.interval * 4, "{took:?}");
    assert!(sim.has_event(0, |e| matches!(e, Event::StaleVip { .. })));
    sim.run_for(ms(1000));
    let stop = sim.hook_runs(0, Hook::Stop);
    assert_eq!(stop.len(), 1);
    assert_eq!(
        stop[0].env["FAILOVERD_REASON"],
        "VIP found on this node at start, left by a crash"
    );
    assert_eq!(sim.holders(), vec![1]);
    assert_eq!(sim.role(0), Some(Role::Standby));
}

/// A daemon killed during a release, once its stop hook has run and before its
/// VIPs went, does not adopt them at restart: the service behind them is stopped.
/// It removes them (the stop hook again, with a reason that says so), and the
/// election gives the VIPs to one node, whose start hook runs.
#[test]
fn a_daemon_killed_mid_release_does_not_adopt_what_it_was_letting_go() {
    let mut sim = Sim::settled(config(2, Failback::Manual), 22);
    sim.hook_time = ms(400);
    sim.order(0, Order::Standby).expect("alpha stands by");
    sim.run_for(ms(300));
    assert_eq!(sim.hook_runs(0, Hook::Stop).len(), 1, "the stop hook runs");
    assert_eq!(sim.holders(), vec![0]);
    assert!(sim.nodes[0].release_noted, "noted before the stop hook");
    sim.kill_daemon(0);
    // Beta hears alpha fall silent with its VIP still answering: it holds back.
    sim.run_for(ms(1500));
    assert_eq!(sim.holders(), vec![0]);
    let restarted = sim.t();
    sim.restart(0);
    sim.run_until(ms(5000), |s| {
        s.holders().len() == 1 && s.role(0).is_some_and(|r| r != Role::Starting)
    });
    sim.run_for(ms(1000));
    let holder = sim.holders()[0];
    // Alpha ranks first, so the election gives it the VIPs back, and taking them
    // clears the note.
    assert_eq!(holder, 0);
    assert!(!sim.nodes[0].release_noted);
    assert!(
        !sim.transitions(0).iter().any(|t| t.2.contains("adopted")),
        "{:?}",
        sim.transitions(0)
    );
    assert!(sim.has_event(0, |e| matches!(e, Event::UnfinishedRelease)));
    let stop = sim.hook_runs(0, Hook::Stop);
    assert_eq!(
        stop.last().expect("a stop hook").env["FAILOVERD_REASON"],
        "VIP found on this node at start, left by a release the daemon did not finish"
    );
    let started = sim.hook_runs(holder, Hook::Start);
    assert!(
        started.iter().any(|run| run.at > restarted),
        "{} holds the VIPs without a start hook since the restart",
        sim.name(holder)
    );
    assert_eq!(sim.max_holders_seen, 1);
}

/// A daemon restarted in its own maintenance keeps the VIPs it finds, whatever
/// the note says (maintenance leaves everything where it is), and holding them
/// again ends the note: a later crash then adopts them, as after any other.
#[test]
fn adopting_in_maintenance_clears_the_note() {
    let mut sim = Sim::settled(config(2, Failback::Manual), 24);
    sim.nodes[0].release_noted = true;
    sim.kill_daemon(0);
    sim.restart_in_maintenance(0);
    sim.run_for(ms(500));
    assert_eq!(sim.holders(), vec![0]);
    assert!(!sim.nodes[0].release_noted);
}

/// The note goes when the release ends.
#[test]
fn a_finished_release_leaves_no_note() {
    let mut sim = Sim::settled(config(2, Failback::Manual), 23);
    sim.order(0, Order::Standby).expect("alpha stands by");
    sim.run_until(ms(2000), |s| s.holders() == vec![1]);
    sim.run_for(ms(200));
    assert!(!sim.nodes[0].release_noted);
    assert!(!sim.nodes[1].release_noted, "beta never released");
    sim.order(1, Order::Standby).expect("beta stands by");
    sim.run_until(ms(2000), |s| s.holders() == vec![0]);
    sim.run_for(ms(200));
    assert!(!sim.nodes[0].release_noted && !sim.nodes[1].release_noted);
}

#[test]
fn replayed_heartbeats_never_revive_a_dead_peer() {
    let mut sim = Sim::settled(config(2, Failback::Auto), 21);
    // Record what alpha sends for a while, as an attacker on the LAN would.
    sim.capture = true;
    sim.run_for(ms(300));
    sim.capture = false;
    let captured = std::mem::take(&mut sim.captured);
    assert!(!captured.is_empty());
    sim.crash(0);
    sim.run_until(ms(2000), |s| s.role(1) == Some(Role::Active));
    for p in captured.into_iter().filter(|p| p.to == 1) {
        sim.input(
            1,
            Input::Datagram {
                link: p.link,
                from: p.from,
                bytes: &p.bytes,
            },
        );
        sim.run_for(ms(10));
    }
    let beta = sim.nodes[1].machine.as_ref().unwrap();
    assert!(!beta.peers()[0].alive, "a replay revived alpha");
    assert!(
        beta.rejected()
            .get("replayed or duplicate")
            .copied()
            .unwrap_or(0)
            > 0
    );
    assert_eq!(sim.role(1), Some(Role::Active));
}

#[test]
fn recordings_replayed_to_a_restarted_node_change_nothing() {
    let mut sim = Sim::settled(config(2, Failback::Auto), 25);
    sim.capture = true;
    sim.run_for(ms(300));
    sim.capture = false;
    let captured = std::mem::take(&mut sim.captured);
    sim.crash(0);
    sim.run_until(ms(2000), |s| s.role(1) == Some(Role::Active));
    // Beta restarts: it remembers nothing, so only the echo can tell the recording
    // from a live alpha.
    sim.crash(1);
    sim.packets.clear();
    sim.restart(1);
    for p in captured.iter().filter(|p| p.to == 1) {
        sim.input(
            1,
            Input::Datagram {
                link: p.link,
                from: p.from,
                bytes: &p.bytes,
            },
        );
        sim.run_for(ms(5));
    }
    sim.run_until(ms(3000), |s| s.role(1) == Some(Role::Active));
    let beta = sim.nodes[1].machine.as_ref().unwrap();
    assert!(!beta.peers()[0].alive, "a recording revived alpha");
    let reason = sim.transitions(1).last().unwrap().2.clone();
    assert_eq!(reason, "no peer answered within init_dead");
}

#[test]
fn withheld_packets_replayed_later_are_stale() {
    let mut sim = Sim::settled(config(2, Failback::Auto), 26);
    // An attacker on the path keeps alpha's packets from beta and replays them once
    // alpha is gone: they were never seen, so only their age betrays them.
    sim.capture = true;
    sim.withhold = true;
    sim.run_for(ms(150));
    sim.capture = false;
    let withheld = std::mem::take(&mut sim.captured);
    sim.crash(0);
    sim.run_until(ms(2000), |s| s.role(1) == Some(Role::Active));
    sim.run_for(sim.config.timing.dead * 2);
    for p in withheld.iter().filter(|p| p.to == 1) {
        sim.input(
            1,
            Input::Datagram {
                link: p.link,
                from: p.from,
                bytes: &p.bytes,
            },
        );
    }
    sim.run_for(ms(100));
    let beta = sim.nodes[1].machine.as_ref().unwrap();
    assert!(!beta.peers()[0].alive);
    assert!(beta.rejected()["stale (not echoing a recent nonce)"] > 0);
}

/// The two-node cluster at a heartbeat interval of `interval`: `warn` 2, `dead` and
/// `init_dead` 3 intervals, so a handshake (3 intervals) lasts as long as `dead`.
fn at_interval(interval: Duration) -> Config {
    let mut config = config(2, Failback::Manual);
    config.timing.interval = interval;
    config.timing.warn = interval * 2;
    config.timing.dead = interval * 3;
    config.timing.init_dead = interval * 3;
    config
}

/// Alpha active, beta standby, at `interval`; someone on the LAN records what alpha
/// sends beta for a while, and keeps it until it no longer echoes a nonce of beta
/// that counts (two nonce periods).
fn recorded(interval: Duration, seed: u64) -> Sim {
    let mut sim = Sim::new(at_interval(interval), seed);
    sim.run_until(interval * 20, |s| {
        s.role(0) == Some(Role::Active)
            && s.holders() == vec![0]
            && s.role(1) == Some(Role::Standby)
    });
    sim.record(0, 1);
    sim.run_for(interval * 5);
    sim.stop_recording();
    sim.run_for(sim.config.timing.dead * 2 + interval);
    sim
}

/// The replay period: more than the second of quiet after which the handshake rule
/// used to open a new handshake, less than a handshake at either interval.
const REPLAY_EVERY: Duration = Duration::from_millis(1500);

/// A standby takes over as soon as nothing else holds it back, whatever an attacker
/// replays of the old holder's heartbeats: it has heard their sequence numbers
/// already, so they open no handshake. Here the holder's daemon died first and its
/// kernel kept answering for the VIP, so the standby waited (in fault, probing) while
/// the replays came; then the holder's box went down.
fn replays_never_hold_off_a_standby(interval: Duration, seed: u64) {
    let mut sim = recorded(interval, seed);
    sim.kill_daemon(0);
    sim.replay(REPLAY_EVERY);
    let t = sim.config.timing;
    sim.run_for(t.dead * 4);
    assert!(sim.has_event(1, |e| matches!(e, Event::TakeoverHeld { .. })));
    assert_eq!(sim.holders(), vec![0]);
    sim.crash(0);
    let took = sim.run_until(t.dead * 20, |s| s.holders() == vec![1]);
    assert!(
        took <= t.interval * 2 + sim.hook_time,
        "took over too late: {took:?}"
    );
    assert!(sim.replayer.as_ref().unwrap().replayed >= 4);
    // They keep coming, and change nothing.
    sim.run_for(t.dead * 4);
    assert_eq!(sim.holders(), vec![1]);
    assert!(
        !sim.machine(1).peers()[0].alive,
        "a recording revived alpha"
    );
    assert!(sim.machine(1).rejected()["replayed or duplicate"] > 0);
}

#[test]
fn replays_of_a_dead_holder_never_hold_off_the_standby_at_a_1s_interval() {
    replays_never_hold_off_a_standby(Duration::from_secs(1), 27);
}

#[test]
fn replays_of_a_dead_holder_never_hold_off_the_standby_at_a_2s_interval() {
    replays_never_hold_off_a_standby(Duration::from_secs(2), 28);
}

/// A node that starts knows nothing of its peer, so a replayed heartbeat looks like
/// the first packet of a handshake; but a peer opens one handshake per handshake and
/// `dead`, so a replay delays the takeover by one handshake at most.
fn replays_never_hold_off_a_starting_node(interval: Duration, seed: u64) {
    let mut sim = recorded(interval, seed);
    sim.crash(0);
    sim.crash(1);
    sim.packets.clear();
    sim.restart(1);
    sim.replay(REPLAY_EVERY);
    let t = sim.config.timing;
    let took = sim.run_until(t.dead * 20, |s| s.holders() == vec![1]);
    let handshake = t.interval * 3;
    assert!(
        took <= t.init_dead + handshake + t.interval + sim.hook_time + ms(5),
        "took over too late: {took:?}"
    );
    assert!(sim.replayer.as_ref().unwrap().replayed >= 2);
    assert!(
        !sim.machine(1).peers()[0].alive,
        "a recording revived alpha"
    );
    // The burst is reported, once per handshake.
    sim.run_for(t.dead * 4);
    assert!(sim.has_event(1, |e| matches!(e, Event::StaleBurst { .. })));
    assert_eq!(sim.holders(), vec![1]);
}

#[test]
fn replays_of_a_dead_peer_never_hold_off_a_starting_node_at_a_1s_interval() {
    replays_never_hold_off_a_starting_node(Duration::from_secs(1), 29);
}

#[test]
fn replays_of_a_dead_peer_never_hold_off_a_starting_node_at_a_2s_interval() {
    replays_never_hold_off_a_starting_node(Duration::from_secs(2), 30);
}

/// Incarnations only grow: heartbeats recorded before the peer restarted, replayed
/// while they still echo a valid nonce, are dropped, never taken for a restart.
#[test]
fn a_recording_of_an_older_incarnation_is_never_taken_for_a_restart() {
    let mut sim = Sim::settled(config(2, Failback::Auto), 31);
    sim.record(0, 1);
    sim.run_for(ms(300));
    sim.restart(0);
    sim.run_until(ms(2000), |s| {
        s.has_event(1, |e| matches!(e, Event::PeerRestarted { .. }))
    });
    let restarted = sim.machine(1).peers()[0].incarnation;
    sim.replay(ms(10));
    sim.run_for(ms(300));
    let beta = sim.machine(1);
    let restarts = sim.nodes[1]
        .events
        .iter()
        .filter(|(_, e)| matches!(e, Event::PeerRestarted { .. }))
        .count();
    assert_eq!(restarts, 1, "a recording was taken for a restart");
    assert_eq!(beta.peers()[0].incarnation, restarted);
    assert!(beta.rejected()["older incarnation"] > 0);
    assert!(beta.peers()[0].alive);
}

/// The exception to "incarnations only grow": a peer whose clock went back between
/// two starts is heard again once its last incarnation is dead here, as a new peer,
/// never a restart.
#[test]
fn a_peer_whose_clock_went_back_is_heard_once_its_last_incarnation_is_dead() {
    let mut sim = Sim::settled(config(2, Failback::Auto), 32);
    sim.crash(1);
    let known = sim.machine(0).peers()[0].incarnation.unwrap();
    let now = sim.now;
    sim.nodes[1].machine = Some(Machine::new(&sim.config, 1, known - 1, 7, now));
    sim.drain(1);
    let t = sim.config.timing;
    let took = sim.run_until(t.dead * 4, |s| {
        let beta = &s.machine(0).peers()[0];
        beta.alive && beta.incarnation == Some(known - 1)
    });
    assert!(
        took >= t.dead - t.interval,
        "an older incarnation was heard while the newer one lived: {took:?}"
    );
    // Beta was a quiet standby: alpha counts it dead that much later.
    let grace = t.standby_interval + t.interval * 2;
    assert!(took <= t.dead * 2 + t.interval * 2 + grace, "{took:?}");
    assert_eq!(sim.machine(0).peers()[0].incarnation, Some(known - 1));
    assert!(!sim.has_event(0, |e| matches!(e, Event::PeerRestarted { .. })));
}

#[test]
fn packets_from_another_cluster_or_key_are_counted_and_ignored() {
    let mut sim = Sim::settled(config(2, Failback::Auto), 22);
    let mut foreign = config(2, Failback::Auto);
    foreign.cluster.name = "other".into();
    let mut wrong_key = config(2, Failback::Auto);
    wrong_key.key = Key::new(b"not-the-cluster-key-at-all".to_vec());
    let now = sim.now;
    for cfg in [foreign, wrong_key] {
        // An impostor claiming to be alpha, active, on beta's links.
        let mut impostor = Machine::new(&cfg, 0, u64::MAX / 2, 1, now);
        impostor.handle_timeout(now);
        while let Some(action) = impostor.poll_action() {
            if let Action::Send { link, to, datagram } = action
                && Some(to.ip()) == sim.config.nodes[1].addresses[link]
                && let Some(from) = sim.config.nodes[0].addresses[link]
            {
                sim.input(
                    1,
                    Input::Datagram {
                        link,
                        from,
                        bytes: &datagram,
                    },
                );
            }
        }
    }
    sim.crash(0);
    sim.run_until(ms(2000), |s| s.role(1) == Some(Role::Active));
    let beta = sim.nodes[1].machine.as_ref().unwrap();
    assert!(beta.rejected()["other cluster"] > 0);
    assert!(beta.rejected()["authentication failed"] > 0);
    assert!(sim.has_event(1, |e| matches!(e, Event::Rejected { .. })));
}

#[test]
fn a_different_configuration_on_the_peer_is_reported() {
    let mut other = config(2, Failback::Auto);
    other.timing.dead = ms(800);
    let mut sim = Sim::new(config(2, Failback::Auto), 23);
    sim.nodes[1].machine = Some(Machine::new(&other, 1, 99, 1, sim.now));
    sim.run_for(ms(1500));
    assert!(sim.has_event(0, |e| matches!(e, Event::FingerprintMismatch { .. })));
    assert!(sim.has_event(1, |e| matches!(e, Event::FingerprintMismatch { .. })));

    // Beta reloads alpha's file: both say they agree again, beta from its own
    // reload, alpha from beta's heartbeats.
    let marks = [sim.nodes[0].events.len(), sim.nodes[1].events.len()];
    let now = sim.now;
    let base = sim.config.clone();
    let beta = sim.nodes[1].machine.as_mut().expect("beta runs");
    beta.reconfigure(now, &base).expect("a file beta can take");
    sim.drain(1);
    sim.run_for(ms(500));
    let matched = |e: &Event| matches!(e, Event::FingerprintMatch { .. });
    let mismatched = |e: &Event| matches!(e, Event::FingerprintMismatch { .. });
    for (i, mark) in marks.into_iter().enumerate() {
        let said = sim.events_since(i, mark, |e| matched(e) || mismatched(e));
        assert_eq!(said.len(), 1, "node {i}: {said:?}");
        assert_eq!(
            said[0].1.to_string(),
            format!(
                "peer {} runs the same configuration as this node again",
                sim.name(1 - i)
            )
        );
    }

    // Alpha reloads another file: its own reload tells it so, before any
    // heartbeat of beta's could.
    let mark = sim.nodes[0].events.len();
    let now = sim.now;
    let alpha = sim.nodes[0].machine.as_mut().expect("alpha runs");
    alpha
        .reconfigure(now, &other)
        .expect("a file alpha can take");
    sim.drain(0);
    let said = sim.events_since(0, mark, |e| matched(e) || mismatched(e));
    assert_eq!(said.len(), 1, "{said:?}");
    assert!(mismatched(&said[0].1), "{said:?}");
}

// --- more than two nodes ----------------------------------------------------------

/// The VIPs go to the first node by priority among those a majority can reach: alpha,
/// then beta when alpha dies, then alpha again (back, and ahead of gamma) when beta
/// dies. The majority rule (src/machine/quorum.rs): with two of three nodes down, the
/// last one hears 1 of 3 voters and takes nothing, until a second one is back.
#[test]
fn three_nodes_elect_one_and_fail_over_in_priority_order() {
    let mut sim = Sim::new(config(3, Failback::Manual), 24);
    sim.run_until(ms(3000), |s| s.holders() == vec![0]);
    sim.crash(0);
    sim.run_until(ms(3000), |s| s.holders() == vec![1]);
    sim.restart(0);
    sim.run_for(ms(2000));
    assert_eq!(sim.holders(), vec![1], "manual failback: beta keeps them");
    sim.crash(1);
    sim.run_until(ms(3000), |s| s.holders() == vec![0]);
    // Majority rule: gamma alone is no majority, so it holds nothing and says why.
    sim.crash(0);
    sim.run_for(ms(3000));
    assert!(sim.holders().is_empty(), "gamma took the VIPs alone");
    assert_eq!(
        sim.machine(2).takeover_held(),
        Some(&failoverd::machine::Hold::NoMajority {
            heard: 1,
            voters: 3
        })
    );
    sim.restart(1);
    sim.run_until(ms(3000), |s| s.holders() == vec![1]);
    assert_eq!(sim.max_holders_seen, 1);
}

// --- operator orders -------------------------------------------------------------

#[test]
fn takeover_moves_the_vip_to_the_asking_node_without_overlap() {
    let mut sim = Sim::settled(config(2, Failback::Auto), 30);
    let accepted = sim.order(1, Order::Takeover).unwrap();
    assert_eq!(
        accepted,
        Accepted::TakingOver {
            holder: Some("alpha".into())
        }
    );
    // The order shows while it stands, and is gone once carried out.
    let standing = |sim: &Sim| {
        sim.machine(1)
            .status(sim.now, SystemTime::now())
            .takeover_requested
    };
    assert!(standing(&sim));
    sim.run_until(ms(2000), |s| s.holders() == vec![1]);
    assert!(!standing(&sim));
    assert_eq!(sim.max_holders_seen, 1);
    assert_eq!(sim.transitions(1).last().unwrap().2, "operator takeover");
    assert_eq!(
        sim.transitions(0).last().unwrap().2,
        "operator asked beta to take over"
    );
    // The operator's choice stands: no automatic failback undoes it, and the
    // status says so.
    sim.run_for(sim.config.cluster.failback_delay * 3);
    assert_eq!(sim.holders(), vec![1]);
    let status = sim.machine(1).status(sim.now, SystemTime::now());
    assert!(status.failback_held);
    assert_eq!(status.failback_due, None);
}

#[test]
fn takeover_is_refused_when_it_cannot_be_done() {
    let mut sim = Sim::settled(config(2, Failback::Auto), 31);
    assert_eq!(sim.order(0, Order::Takeover), Ok(Accepted::AlreadyActive));
    // Handing over to its quiet standby, the active node is as good as releasing:
    // a takeover does not say "already active" while the VIPs are about to leave.
    assert!(matches!(
        sim.order(0, Order::Standby),
        Ok(Accepted::Waking { .. })
    ));
    assert!(sim.machine(0).handing_over());
    assert_eq!(sim.order(0, Order::Takeover), Err(Refusal::Releasing));
    sim.run_until(ms(2000), |s| s.role(1) == Some(Role::Active));
    sim.order(0, Order::Takeover)
        .expect("alpha takes the VIPs back");
    sim.run_until(ms(2000), |s| s.role(0) == Some(Role::Active));
    sim.gateway_down(1);
    sim.run_until(ms(2000), |s| s.role(1) == Some(Role::Fault));
    assert_eq!(
        sim.order(1, Order::Takeover).unwrap_err(),
        Refusal::Unhealthy { failing: 1 }
    );
}

#[test]
fn standby_hands_over_and_stays_out_of_the_way() {
    let mut sim = Sim::settled(config(2, Failback::Auto), 32);
    sim.order(0, Order::Standby).unwrap();
    sim.run_until(ms(2000), |s| s.holders() == vec![1]);
    assert_eq!(sim.max_holders_seen, 1);
    // alpha outranks beta, yet neither failback nor the election bring it back.
    sim.run_for(sim.config.cluster.failback_delay * 3);
    assert_eq!(sim.holders(), vec![1]);
    assert_eq!(sim.role(0), Some(Role::Standby));
    // Still a standby in the HA sense: beta dies, alpha takes over.
    sim.crash(1);
    sim.run_until(ms(2000), |s| s.holders() == vec![0]);
}

#[test]
fn standby_is_refused_without_a_live_peer() {
    let mut sim = Sim::settled(config(2, Failback::Auto), 33);
    sim.crash(1);
    sim.run_until(ms(2000), |s| {
        s.nodes[0]
            .machine
            .as_ref()
            .is_some_and(|m| !m.peers()[0].alive)
    });
    assert_eq!(
        sim.order(0, Order::Standby).unwrap_err(),
        Refusal::NoLivePeer
    );
}

#[test]
fn manual_failback_returns_the_vip_to_the_preferred_node() {
    let mut sim = Sim::settled(config(2, Failback::Manual), 34);
    sim.crash(0);
    sim.run_until(ms(2000), |s| s.holders() == vec![1]);
    sim.restart(0);
    sim.run_for(ms(3000));
    assert_eq!(sim.holders(), vec![1]);
    // Either node can ask; here the holder does.
    sim.order(1, Order::Failback).unwrap();
    sim.run_until(ms(2000), |s| s.holders() == vec![0]);
    assert_eq!(sim.max_holders_seen, 1);
    assert_eq!(
        sim.order(0, Order::Failback).unwrap_err(),
        Refusal::AlreadyPreferred {
            node: "alpha".into()
        }
    );
}

/// The node `failoverd failback` moves the VIPs to, as node `i` names it in its status.
fn preferred(sim: &Sim, i: usize) -> String {
    let machine = sim.nodes[i].machine.as_ref().expect("a running node");
    let status = machine.status(sim.now, SystemTime::now());
    let preferred = machine.preferred_node();
    assert_eq!(status.preferred.as_ref(), Some(&preferred));
    preferred
}

#[test]
fn the_preferred_node_is_the_first_ranked_live_one_that_may_hold_the_vips() {
    // alpha (priority 200), beta (150), gamma (100).
    let mut sim = Sim::new(config(3, Failback::Manual), 43);
    sim.run_until(ms(3000), |s| s.holders() == vec![0]);
    sim.run_for(ms(300));
    for i in 0..3 {
        assert_eq!(
            preferred(&sim, i),
            "alpha",
            "higher priority first, on node {i}"
        );
    }
    // Fewer failing checks come before priority; a node in fault is never preferred.
    sim.gateway_down(0);
    sim.run_until(ms(3000), |s| {
        s.role(0) == Some(Role::Fault) && s.holders() == vec![1]
    });
    for i in 0..3 {
        assert_eq!(
            preferred(&sim, i),
            "beta",
            "alpha fails a check, on node {i}"
        );
    }
    // A node asked to stand by comes after its equals.
    sim.order(1, Order::Standby).unwrap();
    sim.run_until(ms(3000), |s| s.holders() == vec![2]);
    for i in 0..3 {
        assert_eq!(preferred(&sim, i), "gamma", "beta stands by, on node {i}");
    }
    // A dead peer is not preferred: beta, alone with alpha in fault, names itself.
    sim.crash(2);
    sim.run_until(ms(3000), |s| s.holders() == vec![1]);
    assert_eq!(preferred(&sim, 1), "beta");
}

#[test]
fn maintenance_freezes_automatic_moves_until_turned_off() {
    let mut sim = Sim::settled(config(2, Failback::Auto), 35);
    sim.order(1, Order::Maintenance(true)).unwrap();
    sim.run_for(ms(300));
    // Alpha loses its gateway: normally a move, now nothing happens.
    sim.gateway_down(0);
    sim.run_for(ms(3000));
    assert_eq!(sim.holders(), vec![0]);
    assert_eq!(sim.role(0), Some(Role::Active));
    assert_eq!(
        sim.order(1, Order::Takeover).unwrap_err(),
        Refusal::Frozen { by: "beta".into() }
    );
    assert_eq!(
        sim.order(0, Order::Maintenance(false)).unwrap_err(),
        Refusal::MaintenanceElsewhere { by: "beta".into() }
    );
    sim.order(1, Order::Maintenance(false)).unwrap();
    sim.run_until(ms(3000), |s| s.holders() == vec![1]);
    assert_eq!(sim.max_holders_seen, 1);
}

#[test]
fn maintenance_on_a_node_that_dies_no_longer_freezes_its_peer() {
    let mut sim = Sim::settled(config(2, Failback::Auto), 36);
    sim.order(0, Order::Maintenance(true)).unwrap();
    sim.run_for(ms(300));
    sim.crash(0);
    sim.run_until(ms(2000), |s| s.holders() == vec![1]);
}

/// The machine is given the flag the daemon reads from its state directory; that the
/// daemon stores and reads it is for the end-to-end tests.
#[test]
fn a_node_restarting_in_its_own_maintenance_adopts_its_vips_without_a_hook() {
    let mut sim = Sim::settled(config(2, Failback::Auto), 37);
    sim.order(0, Order::Maintenance(true)).unwrap();
    sim.run_for(ms(300));
    let hooks_before = sim.nodes[0].hooks.len();
    // The daemon restarts (an upgrade, say) while the kernel keeps the VIP.
    sim.kill_daemon(0);
    sim.run_for(ms(100));
    sim.restart_in_maintenance(0);
    sim.run_for(ms(3000));
    assert_eq!(sim.holders(), vec![0]);
    assert_eq!(sim.role(0), Some(Role::Active));
    assert_eq!(sim.role(1), Some(Role::Standby));
    assert_eq!(
        sim.transitions(0).last().unwrap().2,
        "maintenance mode (set on alpha)"
    );
    assert!(!sim.has_event(0, |e| matches!(e, Event::StaleVip { .. })));
    let hooks: Vec<Hook> = sim.nodes[0].hooks[hooks_before..]
        .iter()
        .map(|h| h.hook)
        .collect();
    assert!(hooks.is_empty(), "hooks ran: {hooks:?}");
    assert_eq!(sim.max_holders_seen, 1);
}

// --- reload ----------------------------------------------------------------------

#[test]
fn reload_applies_priority_and_a_new_vip_without_dropping_the_old_one() {
    let mut sim = Sim::settled(config(2, Failback::Auto), 38);
    let mut next = sim.config.clone();
    next.vips.push(failoverd::config::Vip {
        address: "198.18.0.20".parse().unwrap(),
        prefix_len: 24,
        interface: "eth0".into(),
        label: None,
    });
    next.nodes[1].priority = 250;
    // Both nodes get the new file, as `scp` then `failoverd reload` would do.
    sim.config = next.clone();
    for node in &mut sim.nodes {
        node.vips.resize(2, false);
    }
    for i in 0..2 {
        let now = sim.now;
        let changes = sim.nodes[i]
            .machine
            .as_mut()
            .unwrap()
            .reconfigure(now, &next)
            .unwrap();
        assert!(
            changes.contains(&ConfigChange::VipAdded("198.18.0.20/24".into())),
            "{changes:?}"
        );
        sim.drain(i);
    }
    sim.run_for(ms(200));
    assert!(sim.nodes[0].vips[0], "the existing VIP stayed");
    assert!(sim.nodes[0].vips[1], "the new VIP was added");
    let removed = sim.nodes[0].events.iter().any(|(_, e)| {
        matches!(
            e,
            Event::Transition {
                to: Role::Standby,
                ..
            }
        )
    });
    assert!(!removed, "alpha dropped the VIPs on reload");
    // Beta now ranks first: with failback auto it gets the VIPs after the delay.
    sim.run_until(ms(5000), |s| s.nodes[1].vips == vec![true, true]);
    assert_eq!(sim.max_holders_seen, 1);
}

#[test]
fn reload_refuses_changes_that_need_a_restart() {
    let mut sim = Sim::settled(config(2, Failback::Auto), 39);
    let mut next = sim.config.clone();
    next.links.push("backup".into());
    for node in &mut next.nodes {
        node.addresses.push(Some("198.18.1.1".parse().unwrap()));
    }
    let now = sim.now;
    let err = sim.nodes[0]
        .machine
        .as_mut()
        .unwrap()
        .reconfigure(now, &next)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "the nodes and the links changed: restart the daemons to apply"
    );
}

// --- stalls ----------------------------------------------------------------------

#[test]
fn an_active_node_paused_past_dead_yields_on_resume() {
    let mut sim = Sim::settled(taking(config(2, Failback::Manual)), 40);
    // SIGSTOP: alpha keeps its VIP in the kernel but sends nothing.
    sim.pause(0, None);
    sim.run_until(ms(3000), |s| {
        s.role(1) == Some(Role::Active) && s.nodes[1].vips[0]
    });
    sim.run_for(ms(500));
    // SIGCONT: alpha finds beta active in what waited in its socket and backs off at
    // once: its stop hook, then the removal; beta keeps the VIP (no second move).
    sim.resume(0);
    let took = sim.run_until(ms(1000), |s| s.holders() == vec![1]);
    assert!(took <= sim.hook_time + ms(5), "{took:?}");
    sim.run_for(ms(3000));
    assert_eq!(sim.holders(), vec![1]);
    assert_eq!(sim.active(), vec![1]);
    assert!(sim.has_event(0, |e| matches!(e, Event::Stalled { .. })));
    let reason = sim.transitions(0).last().unwrap().2.clone();
    assert_eq!(
        reason,
        "resumed after a stall, peer beta took over meanwhile"
    );
    assert_eq!(sim.transitions(1).last().unwrap().1, Role::Active);
}

#[test]
fn two_holders_are_resolved_even_in_maintenance() {
    let mut sim = Sim::settled(taking(config(2, Failback::Manual)), 41);
    sim.order(0, Order::Maintenance(true)).unwrap();
    sim.run_for(ms(300));
    sim.partition(0, 1);
    // Alpha's maintenance is invisible to beta across the partition: beta takes over.
    sim.run_until(ms(3000), |s| s.active() == vec![0, 1]);
    sim.heal();
    sim.run_until(ms(1000), |s| s.holders() == vec![0]);
    sim.run_for(ms(50));
    assert_eq!(sim.role(1), Some(Role::Standby));
    assert_eq!(sim.active(), vec![0]);
}

#[test]
fn a_node_asked_to_stand_by_still_takes_over_from_a_failing_holder() {
    let mut sim = Sim::settled(config(2, Failback::Auto), 42);
    sim.order(0, Order::Standby).unwrap();
    sim.run_until(ms(2000), |s| s.holders() == vec![1]);
    sim.gateway_down(1);
    sim.run_until(ms(3000), |s| s.holders() == vec![0]);
    assert_eq!(sim.role(1), Some(Role::Fault));
    assert_eq!(sim.max_holders_seen, 1);
}

#[test]
fn maintenance_on_the_standby_still_answers_a_graceful_stop_of_the_holder() {
    let mut sim = Sim::settled(config(2, Failback::Auto), 43);
    sim.order(1, Order::Maintenance(true)).unwrap();
    sim.run_for(ms(300));
    sim.shutdown(0);
    sim.run_until(ms(2000), |s| s.holders() == vec![1]);
    assert_eq!(sim.transitions(1).last().unwrap().2, "peer alpha shut down");
    // The stopping node logged its last transition before exiting.
    let (_, to, reason) = sim.transitions(0).last().unwrap().clone();
    assert_eq!((to, reason.as_str()), (Role::Standby, "shutdown"));
}

#[test]
fn extra_heartbeats_never_delay_the_regular_ones() {
    let mut sim = Sim::settled(config(2, Failback::Auto), 44);
    // Each toggle sends a heartbeat out of turn; ten of them within one interval
    // once pushed the next regular heartbeat a whole second away.
    for i in 0..10 {
        sim.order(1, Order::Maintenance(i % 2 == 0)).unwrap();
    }
    sim.run_for(ms(1500));
    assert!(!sim.has_event(0, |e| matches!(e, Event::PeerLate { .. })));
    assert!(!sim.has_event(0, |e| matches!(e, Event::LinkLate { .. })));
}

// --- the quiet standby -------------------------------------------------------------

/// Heartbeats `node` has sent so far, on every link.
fn sent(sim: &Sim, node: usize) -> u64 {
    sim.machine(node)
        .status(sim.now, SystemTime::now())
        .counters
        .heartbeats_sent
}

/// A settled pair: the standby beats every `standby_interval` (1 s here), the active
/// node every interval, and neither judges the other late or dead.
#[test]
fn a_quiet_standby_beats_every_standby_interval_and_stays_alive() {
    let mut sim = Sim::settled(config(2, Failback::Manual), 61);
    let t = sim.config.timing;
    let (alpha, beta) = (sent(&sim, 0), sent(&sim, 1));
    let from = sim.nodes[0].events.len();
    sim.run_for(ms(10_000));
    let beta_beats = (sent(&sim, 1) - beta) / 2;
    let alpha_beats = (sent(&sim, 0) - alpha) / 2;
    assert!(
        (9..=12).contains(&beta_beats),
        "beta beat {beta_beats} times in 10 s"
    );
    assert!(alpha_beats >= 95, "alpha beat {alpha_beats} times in 10 s");
    assert!(
        t.standby_interval > t.dead,
        "the test wants the grace to matter"
    );
    let judged: Vec<_> = sim.events_since(0, from, |e| {
        matches!(e, Event::PeerLate { .. } | Event::PeerDead { .. })
    });
    assert!(
        judged.is_empty(),
        "alpha judged its quiet standby: {judged:?}"
    );
    assert!(sim.machine(0).peers()[0].alive);
    assert!(!sim.has_event(1, |e| matches!(e, Event::QuietRefused { .. })));
}

/// One quiet heartbeat lost on every link: the active node's echo of the standby's
/// nonce falls behind, the standby finds that out two intervals after it sent it
/// and beats at once (or at its next heartbeat, due within an interval), and the
/// active node, which allows a quiet standby those three intervals on top of
/// `standby_interval` − `interval`, counts it neither late nor dead. Before,
/// the standby beat again only at its next wake-up for other reasons, and the
/// active node gave it `standby_interval` − `interval`: at 10 ms, warn 20 ms and
/// dead 36 ms, one lost quiet heartbeat logged `peer beta dead`.
#[test]
fn a_quiet_heartbeat_lost_on_every_link_is_neither_late_nor_dead() {
    // (interval, warn, dead, standby_interval) in ms: the bench's 10 ms profile,
    // the tightest the file allows at 10 and 100 ms, and a quiet standby at 1 s.
    let profiles = [
        (10, 20, 36, 1000),
        (10, 12, 25, 1000),
        (100, 300, 500, 1000),
        (100, 150, 250, 1000),
        (1000, 1500, 2100, 2000),
        // The next quiet heartbeat is due within an interval of the moment the
        // standby finds the lost one: it waits for it.
        (334, 600, 1000, 1000),
        (100, 150, 200, 300),
    ];
    for (interval, warn, dead, standby) in profiles {
        for offset in [0, 137, 555] {
            let mut config = config(2, Failback::Manual);
            config.timing.interval = ms(interval);
            config.timing.warn = ms(warn);
            config.timing.dead = ms(dead);
            config.timing.standby_interval = ms(standby);
            let mut sim = Sim::settled(config, 70 + offset);
            sim.run_for(ms(1000 + offset));
            assert!(sim.machine(1).quiet_toward().is_some(), "beta is not quiet");
            let from = sim.nodes[0].events.len();
            // Lost: beta's next heartbeat, on both links.
            let before = sent(&sim, 1);
            sim.one_way(1, 0);
            sim.run_until(ms(3 * standby), |s| sent(s, 1) > before);
            sim.heal();
            sim.run_for(ms(3 * standby));
            let judged = sim.events_since(0, from, |e| {
                matches!(e, Event::PeerLate { .. } | Event::PeerDead { .. })
            });
            assert!(
                judged.is_empty(),
                "interval {interval} ms, warn {warn}, dead {dead}, at +{offset} ms: \
                 alpha judged beta for one lost heartbeat: {judged:?}"
            );
            assert!(sim.machine(1).quiet_toward().is_some(), "beta stayed awake");
        }
    }
}

/// Node death is the standby's to notice, at the active node's pace: a quiet standby
/// takes over within `dead` as before.
#[test]
fn a_quiet_standby_takes_over_within_dead() {
    let mut sim = Sim::settled(config(2, Failback::Manual), 62);
    sim.run_for(ms(2345));
    sim.crash(0);
    let took = sim.run_until(ms(3000), |s| s.holders() == vec![1]);
    assert!(
        took <= takeover_bound(&sim.config, sim.hook_time),
        "took {took:?}"
    );
}

/// A quiet standby reads its active peer's routine heartbeats late, at its next
/// wake-up, dated by their arrival (as the daemon does, see `daemon::receive`): it
/// judges the peer exactly as a standby that reads each at once, so it takes over
/// at the same moment when the peer dies, and a planned handover, whose heartbeats
/// are news, is as fast.
#[test]
fn a_standby_that_reads_routine_heartbeats_late_judges_its_peer_by_their_arrival() {
    let run = |defer: bool, stop: fn(&mut Sim)| {
        let mut sim = Sim::new(config(2, Failback::Manual), 63);
        sim.defer = defer;
        sim.run_until(ms(3000), |s| {
            s.role(0) == Some(Role::Active) && s.role(1) == Some(Role::Standby)
        });
        sim.run_for(ms(200));
        let (before, from) = (sim.nodes[1].read_late, sim.nodes[1].events.len());
        sim.run_for(ms(2345));
        let read_late = sim.nodes[1].read_late - before;
        let judged = sim.events_since(1, from, |e| {
            matches!(e, Event::PeerLate { .. } | Event::LinkLate { .. })
        });
        assert!(
            judged.is_empty(),
            "the standby judged its live peer: {judged:?}"
        );
        stop(&mut sim);
        let took = sim.run_until(ms(3000), |s| s.holders() == vec![1]);
        (took, read_late)
    };
    fn death(sim: &mut Sim) {
        sim.crash(0);
    }
    fn graceful(sim: &mut Sim) {
        sim.shutdown(0);
    }
    for (stop, what) in [
        (death as fn(&mut Sim), "the active node's death"),
        (graceful, "a graceful stop"),
    ] {
        let (late, read_late) = run(true, stop);
        let (at_once, none) = run(false, stop);
        assert!(read_late > 20, "{what}: {read_late} heartbeats read late");
        assert_eq!(none, 0);
        assert_eq!(late, at_once, "{what}: the takeover took another time");
    }
}

/// A quiet standby woken late still knows it was: the routine heartbeats it reads
/// first, dated before the deadline it asked for, leave that deadline to judge the
/// wake-up (see `steady`), and it blames nobody for its own pause.
#[test]
fn a_quiet_standby_woken_late_notes_it_though_routine_heartbeats_come_first() {
    let mut sim = Sim::settled(config(2, Failback::Manual), 64);
    let t = sim.config.timing;
    sim.run_for(ms(500));
    let (read_late, from) = (sim.nodes[1].read_late, sim.nodes[1].events.len());
    assert!(sim.machine(1).quiet_toward().is_some(), "beta is quiet");
    sim.pause(1, Some(t.warn + t.interval * 2));
    sim.run_for(ms(1000));
    assert!(sim.nodes[1].read_late > read_late + 5);
    let starved = sim.events_since(1, from, |e| matches!(e, Event::Starved { .. }));
    assert_eq!(starved.len(), 1, "{starved:?}");
    let blamed = sim.events_since(1, from, |e| {
        matches!(e, Event::PeerDead { .. } | Event::PeerLate { .. })
    });
    assert!(blamed.is_empty(), "beta blamed alpha: {blamed:?}");
}

/// A standby that the VIPs will move to on their own is never quiet: the preferred
/// node waiting out `failback_delay` beats every interval, so the active node counts
/// it dead within `dead` when it dies, and never hands the VIPs to nobody.
#[test]
fn a_standby_waiting_for_failback_is_not_quiet_and_never_gets_the_vips_dead() {
    let mut sim = Sim::settled(config(2, Failback::Auto), 64);
    sim.crash(0);
    sim.run_until(ms(3000), |s| s.holders() == vec![1]);
    sim.restart(0);
    sim.run_until(ms(3000), |s| s.role(0) == Some(Role::Standby));
    sim.run_for(ms(1500));
    assert!(
        sim.nodes[0].sent_quiet.values().all(|quiet| !quiet),
        "alpha, preferred, went quiet while beta waited to hand the VIPs back"
    );
    // failback_delay is 2 s: alpha dies just before it runs out.
    sim.crash(0);
    let from = sim.nodes[1].events.len();
    sim.run_for(ms(3000));
    assert_eq!(
        sim.holders(),
        vec![1],
        "beta handed the VIPs to a dead alpha"
    );
    let released: Vec<_> = sim.events_since(1, from, |e| matches!(e, Event::Releasing { .. }));
    assert!(released.is_empty(), "beta released: {released:?}");
}

/// A health move waits for a heartbeat of the standby that is not quiet: one that
/// died while quiet, not yet counted dead, never gets the VIPs.
#[test]
fn a_health_move_never_goes_to_a_quiet_standby_that_died() {
    let mut config = config(2, Failback::Manual);
    config.checks.push(service_check(&config, "svc"));
    let mut sim = Sim::settled(config, 65);
    sim.run_for(ms(1500));
    assert!(sim.machine(0).peers()[0].quiet, "beta is not quiet");
    sim.crash(1);
    sim.service_down(0, "svc");
    let from = sim.nodes[0].events.len();
    sim.run_for(ms(3000));
    let released: Vec<_> = sim.events_since(0, from, |e| matches!(e, Event::Releasing { .. }));
    assert!(
        released.is_empty(),
        "alpha handed the VIPs to a dead beta: {released:?}"
    );
    assert_eq!(sim.holders(), vec![0]);
}

/// And with the standby alive, the move happens: the standby stops being quiet as
/// soon as it hears the active node's health, one round trip.
#[test]
fn a_health_move_to_a_live_quiet_standby_waits_one_round_trip() {
    let mut config = config(2, Failback::Manual);
    config.checks.push(service_check(&config, "svc"));
    let mut sim = Sim::settled(config, 66);
    sim.run_for(ms(1500));
    assert!(sim.machine(0).peers()[0].quiet, "beta is not quiet");
    sim.service_down(0, "svc");
    let took = sim.run_until(ms(3000), |s| s.holders() == vec![1]);
    assert!(took <= ms(1000), "the health move took {took:?}");
}

/// A pair in which beta holds the VIPs and alpha, the preferred node, is a quiet
/// standby (manual failback: alpha waits to be ordered back).
fn beta_holds_and_alpha_is_quiet(seed: u64) -> Sim {
    let mut sim = Sim::settled(config(2, Failback::Manual), seed);
    sim.crash(0);
    sim.run_until(ms(2000), |s| s.holders() == vec![1]);
    sim.restart(0);
    sim.run_for(ms(3000));
    assert!(sim.machine(1).peers()[0].quiet, "alpha is not quiet");
    sim
}

/// The two orders that hand the VIPs to a quiet standby, each with its holder:
/// `standby` on alpha with beta quiet, and `failback` on beta with alpha, the
/// preferred node, quiet.
fn quiet_handovers(seed: u64) -> [(Sim, usize, Order); 2] {
    let mut sim = Sim::settled(config(2, Failback::Manual), seed);
    sim.run_for(ms(1500));
    assert!(sim.machine(0).peers()[0].quiet, "beta is not quiet");
    let failback = beta_holds_and_alpha_is_quiet(seed + 1);
    [(sim, 0, Order::Standby), (failback, 1, Order::Failback)]
}

/// An operator's handover waits for a heartbeat of the standby that is not quiet:
/// one that died while quiet, not yet counted dead, never gets the VIPs, and the
/// order lapses once the holder counts it dead.
#[test]
fn an_operators_handover_never_goes_to_a_quiet_standby_that_died() {
    for (mut sim, holder, order) in quiet_handovers(67) {
        let standby = 1 - holder;
        sim.crash(standby);
        let from = sim.nodes[holder].events.len();
        sim.order(holder, order.clone()).unwrap();
        sim.run_for(ms(3000));
        let released: Vec<_> =
            sim.events_since(holder, from, |e| matches!(e, Event::Releasing { .. }));
        assert!(
            released.is_empty(),
            "{order:?}: the holder handed the VIPs to a dead standby: {released:?}"
        );
        assert_eq!(sim.holders(), vec![holder], "{order:?}");
        let lapsed = sim.events_since(holder, from, |e| matches!(e, Event::HandoverLapsed { .. }));
        assert_eq!(lapsed.len(), 1, "{order:?}: {lapsed:?}");
        // The standing request lapsed with it: the status does not say it is on.
        let status = sim.machine(holder).status(sim.now, SystemTime::now());
        assert!(!status.standby_requested, "{order:?}");
    }
}

/// A failback toward the preferred node while it is still starting waits for it
/// to stand by, by the same rule as a handover that waits: a starting node takes
/// nothing yet, and a release then would leave the VIPs on no node meanwhile.
#[test]
fn a_failback_toward_a_node_still_starting_waits_for_it_to_stand_by() {
    let mut sim = Sim::settled(config(2, Failback::Manual), 74);
    sim.crash(0);
    sim.run_until(ms(2000), |s| s.holders() == vec![1]);
    sim.restart(0);
    sim.run_until(ms(1000), |s| {
        let alpha = &s.machine(1).peers()[0];
        alpha.present() && alpha.role == Role::Starting
    });
    assert_eq!(sim.machine(1).peers()[0].role, Role::Starting);
    let from = sim.nodes[1].events.len();
    assert_eq!(
        sim.order(1, Order::Failback).unwrap(),
        Accepted::Waking {
            to: Some("alpha".into())
        }
    );
    // Beta keeps the VIPs until alpha stands by: no release while it starts.
    sim.run_until(ms(1000), |s| s.role(0) == Some(Role::Standby));
    assert_eq!(sim.role(0), Some(Role::Standby));
    let early = sim.events_since(1, from, |e| matches!(e, Event::Releasing { .. }));
    assert!(
        early.is_empty(),
        "beta released to a node still starting: {early:?}"
    );
    sim.run_until(ms(3000), |s| s.holders() == vec![0]);
    assert_eq!(sim.holders(), vec![0]);
    assert_eq!(sim.max_holders_seen, 1);
}

/// Alpha ordered to stand by just after beta, its quiet standby, died: the order
/// waits for beta to answer.
fn standby_waiting_for_a_dead_standby(seed: u64) -> Sim {
    let mut sim = Sim::settled(config(2, Failback::Manual), seed);
    sim.run_for(ms(1500));
    sim.crash(1);
    sim.order(0, Order::Standby).unwrap();
    assert!(sim.machine(0).handing_over());
    let status = sim.machine(0).status(sim.now, SystemTime::now());
    assert!(status.handing_over);
    assert_eq!(
        status.handing_over_to, None,
        "a standby order is for any standby"
    );
    assert_eq!(status.handing_over_ms, Some(0));
    sim
}

/// A failback ordered while a standby order waits replaces it; when it lapses too,
/// the standby request lapses with it, rather than stay on an active node for good.
#[test]
fn a_lapsed_handover_leaves_no_standby_request_behind() {
    let mut sim = standby_waiting_for_a_dead_standby(72);
    assert_eq!(
        sim.order(0, Order::Failback).unwrap(),
        Accepted::Waking {
            to: Some("beta".into())
        }
    );
    sim.run_for(ms(20));
    let status = sim.machine(0).status(sim.now, SystemTime::now());
    assert_eq!(status.handing_over_to.as_deref(), Some("beta"));
    assert_eq!(
        status.handing_over_ms,
        Some(20),
        "the failback's wait, not the standby's"
    );
    let from = sim.nodes[0].events.len();
    sim.run_for(ms(3000));
    let lapsed = sim.events_since(0, from, |e| {
        matches!(
            e,
            Event::HandoverLapsed {
                why: Lapse::NoTaker,
                ..
            }
        )
    });
    assert_eq!(lapsed.len(), 1, "{lapsed:?}");
    assert!(!sim.machine(0).handing_over());
    let status = sim.machine(0).status(sim.now, SystemTime::now());
    assert!(!status.standby_requested);
    assert_eq!(
        (status.handing_over_to, status.handing_over_ms),
        (None, None)
    );
    assert_eq!(sim.holders(), vec![0]);
}

/// Maintenance freezes moves: a handover still waiting for its standby is dropped,
/// not carried out when maintenance ends.
#[test]
fn maintenance_drops_an_operators_handover_still_waiting() {
    let mut sim = standby_waiting_for_a_dead_standby(71);
    let from = sim.nodes[0].events.len();
    sim.order(0, Order::Maintenance(true)).unwrap();
    assert!(!sim.machine(0).handing_over());
    let lapsed = sim.events_since(
        0,
        from,
        |e| matches!(e, Event::HandoverLapsed { why: Lapse::Frozen { by }, .. } if by == "alpha"),
    );
    assert_eq!(lapsed.len(), 1, "{lapsed:?}");
    // Beta back and beating every interval: a handover still waiting would go now.
    sim.restart(1);
    sim.run_for(ms(3000));
    assert_eq!(sim.role(1), Some(Role::Standby));
    sim.order(0, Order::Maintenance(false)).unwrap();
    sim.run_for(ms(3000));
    assert_eq!(sim.holders(), vec![0]);
    assert!(
        !sim.machine(0)
            .status(sim.now, SystemTime::now())
            .standby_requested
    );
}

/// And with the standby alive, the handover is as fast as to a standby that beats
/// every interval: the holder's heartbeat wakes it, and its answer starts the
/// release, one round trip rather than up to `standby_interval`.
#[test]
fn an_operators_handover_to_a_live_quiet_standby_waits_one_round_trip() {
    for (mut sim, holder, order) in quiet_handovers(69) {
        let standby = 1 - holder;
        let t = sim.config.timing;
        sim.order(holder, order.clone()).unwrap();
        assert!(sim.machine(holder).handing_over(), "{order:?} did not wait");
        let took = sim.run_until(ms(3000), |s| s.holders() == vec![standby]);
        // A round trip, the stop hook and the start hook, far from the 1 s a quiet
        // standby may leave between two heartbeats.
        assert!(
            took <= t.interval * 2 + sim.hook_time * 2 + ms(50),
            "{order:?}: the handover took {took:?}"
        );
        assert!(t.standby_interval >= ms(1000));
        assert_eq!(sim.max_holders_seen, 1, "{order:?}");
    }
}

/// A settled pair whose active node, alpha, runs a version before the quiet
/// standby from its start: it refuses quiet heartbeats, and so never echoes a nonce
/// that went out in them alone.
fn settled_under_old_alpha(config: Config, seed: u64) -> Sim {
    let mut sim = Sim::new(config, seed);
    sim.nodes[0].refuses_quiet = true;
    sim.run_until(ms(3000), |s| {
        s.role(0) == Some(Role::Active) && s.role(1) == Some(Role::Standby)
    });
    sim.run_for(ms(200));
    sim
}

/// An active node of a version before the quiet standby refuses quiet heartbeats.
/// Its echo then falls behind the standby's nonce, which ends the quiet until it is
/// heard again: the standby never takes the active node's heartbeats for stale ones
/// and never takes over.
#[test]
fn a_quiet_standby_that_an_old_active_node_refuses_never_takes_over() {
    let mut sim = settled_under_old_alpha(config(2, Failback::Manual), 63);
    let from = sim.nodes[1].events.len();
    // Both count the first heartbeats of the other as stale, by design, at start.
    let stale = |sim: &Sim| {
        let rejected = sim.machine(1).rejected();
        rejected.get("stale (not echoing a recent nonce)").copied()
    };
    let before = stale(&sim);
    let alpha_from = sim.nodes[0].events.len();
    sim.run_for(ms(5_000));
    // Beta learns within two nonce periods that alpha refuses its quiet heartbeats,
    // and beats every interval from then on: alpha hears it again for good.
    let refused = sim.events_since(1, from, |e| matches!(e, Event::QuietRefused { .. }));
    assert_eq!(refused.len(), 1, "{refused:?}");
    let settled = sim.nodes[0].events.len();
    sim.run_for(ms(25_000));
    beta_kept_hearing_alpha(&sim, from);
    assert_eq!(
        stale(&sim),
        before,
        "beta took alpha's heartbeats for stale ones"
    );
    // Alpha, old, judges beta by plain `warn` and `dead`: late a few times while
    // beta learns, never after.
    let late = |from| {
        sim.events_since(0, from, |e| {
            matches!(
                e,
                Event::PeerDead { .. } | Event::PeerLate { .. } | Event::LinkLate { .. }
            )
        })
    };
    assert!(late(alpha_from).len() <= 12, "{:?}", late(alpha_from));
    assert!(
        late(settled).is_empty(),
        "alpha still finds beta late: {:?}",
        late(settled)
    );
    assert!(
        sim.nodes[1].sent_quiet.values().all(|quiet| !quiet),
        "beta is still quiet toward alpha"
    );
}

/// Refusals that were bad luck (here: alpha takes quiet heartbeats again) cost
/// quiet only for a while: beta tries again `QUIET_RETRY` after it gave up, and
/// stays quiet.
#[test]
fn a_standby_tries_quiet_again_a_while_after_refusals() {
    let mut sim = settled_under_old_alpha(config(2, Failback::Manual), 73);
    sim.run_until(ms(10_000), |s| {
        s.has_event(1, |e| matches!(e, Event::QuietRefused { .. }))
    });
    sim.nodes[0].refuses_quiet = false;
    sim.run_for(QUIET_RETRY - ms(1_000));
    assert!(
        sim.nodes[1].sent_quiet.values().all(|quiet| !quiet),
        "beta went quiet again before the retry"
    );
    sim.run_for(ms(5_000));
    let before = sent(&sim, 1);
    sim.run_for(ms(10_000));
    let beats = (sent(&sim, 1) - before) / 2;
    assert!((9..=12).contains(&beats), "beta beat {beats} times in 10 s");
}

/// With `standby_interval` under two intervals and `dead` under three, a quiet
/// heartbeat's nonce would be due again before the quiet ended for want of its
/// echo: an old active node's echo must still never fall two nonces behind, or
/// the standby would take its heartbeats for stale ones and count it dead.
/// Alpha still holds the VIPs, beta stands by, and beta counted alpha neither late
/// nor dead since its event `from`.
fn beta_kept_hearing_alpha(sim: &Sim, from: usize) {
    assert_eq!(sim.holders(), vec![0]);
    assert_eq!(sim.role(1), Some(Role::Standby));
    let lost: Vec<_> = sim.events_since(1, from, |e| {
        matches!(e, Event::PeerDead { .. } | Event::PeerLate { .. })
    });
    assert!(lost.is_empty(), "beta lost alpha: {lost:?}");
}

#[test]
fn an_old_active_node_stays_heard_with_a_short_standby_interval() {
    let mut cfg = config(2, Failback::Manual);
    cfg.timing.interval = ms(200);
    cfg.timing.warn = ms(400);
    cfg.timing.dead = ms(500);
    cfg.timing.standby_interval = ms(300);
    let mut sim = settled_under_old_alpha(cfg, 74);
    let from = sim.nodes[1].events.len();
    sim.run_for(ms(30_000));
    beta_kept_hearing_alpha(&sim, from);
}

// --- announcements ---------------------------------------------------------------

#[test]
fn the_holder_refreshes_its_announcements_unless_turned_off() {
    let mut on = config(2, Failback::Auto);
    on.announce.refresh = Some(ms(1000));
    let mut sim = Sim::settled(on, 45);
    let before = sim.nodes[0].announces.len();
    sim.run_for(ms(3500));
    assert!(
        sim.nodes[0].announces.len() >= before + 3,
        "no periodic refresh"
    );
    assert!(sim.nodes[1].announces.is_empty(), "the standby announced");

    let mut off = config(2, Failback::Auto);
    off.announce.refresh = None;
    let mut sim = Sim::settled(off, 46);
    let before = sim.nodes[0].announces.len();
    sim.run_for(ms(3500));
    assert_eq!(sim.nodes[0].announces.len(), before, "refresh turned off");
}

#[test]
fn the_holder_announces_again_when_a_link_heals() {
    let mut sim = Sim::settled(config(2, Failback::Auto), 47);
    sim.cut_link(1);
    sim.run_until(ms(2000), |s| {
        s.has_event(
            0,
            |e| matches!(e, Event::LinkDown { link, .. } if link == "lan"),
        )
    });
    let before = sim.nodes[0].announces.len();
    sim.restore_link(1);
    // The standby is quiet: the holder hears the link back with its next heartbeat.
    sim.run_for(sim.config.timing.standby_interval + ms(300));
    assert!(
        sim.nodes[0].announces.len() > before,
        "no announcement on link heal"
    );
    assert_eq!(sim.holders(), vec![0]);
}

// --- rules docs/election.md states, one test each ----------------------------------

/// Two nodes that lose the same gateway notice up to a probe interval apart. A new
/// loss counts only after the health grace, so the first to notice does not hand the
/// VIP to a peer about to find itself just as cut off.
#[test]
fn a_gateway_lost_for_both_nodes_a_probe_apart_moves_nothing_within_the_health_grace() {
    let mut sim = Sim::settled(config(2, Failback::Auto), 50);
    let before = (sim.transitions(0).len(), sim.transitions(1).len());
    sim.gateway_down(0);
    sim.run_for(sim.config.health.interval);
    sim.gateway_down(1);
    sim.run_for(ms(5000));
    assert_eq!((sim.transitions(0).len(), sim.transitions(1).len()), before);
    assert_eq!(sim.holders(), vec![0]);
    // For one probe interval alpha failed a check and beta did not: without the
    // grace, alpha would have released.
    let failed = |i| {
        sim.event_time(i, |e| matches!(e, Event::CheckFailed { .. }))
            .expect("the check failed")
    };
    assert_eq!(failed(1) - failed(0), sim.config.health.interval);
}

/// The heartbeat that says a release is over can be lost; the next one says the same
/// an interval later, and the peer takes over then: without waiting for `dead`, and
/// never while the VIP is still on the releasing node.
#[test]
fn a_handover_completes_when_the_releasing_nodes_last_heartbeat_is_lost() {
    let mut sim = Sim::settled(config(2, Failback::Auto), 51);
    let mut first = None;
    sim.drop_rule = Some(Box::new(move |from, _, hb: &Heartbeat| {
        if from != 0 || Role::from(hb.state) != Role::Standby || hb.releasing() {
            return false;
        }
        hb.sequence == *first.get_or_insert(hb.sequence)
    }));
    sim.order(0, Order::Standby).unwrap();
    let took = sim.run_until(ms(2000), |s| s.holders() == vec![1]);
    assert_eq!(sim.dropped_by_rule, 2, "lost on both links");
    let t = &sim.config.timing;
    assert!(took <= sim.hook_time + t.interval + ms(5), "{took:?}");
    assert_eq!(
        sim.transitions(1).last().unwrap().2,
        "planned handover from alpha"
    );
    assert_eq!(sim.max_holders_seen, 1);
}

/// A node hands the VIP over and the peer it hands it to dies before taking it. The
/// peer still ranks first while it counts as alive (here it asked to take over), so
/// the releasing node claims the VIP back once the peer is dead, not before.
#[test]
fn a_peer_killed_mid_handover_is_waited_for_until_dead_then_the_releasing_node_takes_back() {
    let mut sim = Sim::settled(config(2, Failback::Manual), 52);
    sim.order(1, Order::Takeover).unwrap();
    sim.run_until(ms(1000), |s| s.machine(0).releasing());
    sim.kill_daemon(1);
    let killed = sim.t();
    sim.run_until(ms(1000), |s| s.role(0) == Some(Role::Standby));
    assert!(sim.holders().is_empty());
    sim.run_until(ms(3000), |s| s.holders() == vec![0]);
    let t = &sim.config.timing;
    let dead = sim
        .event_time(0, |e| matches!(e, Event::PeerDead { .. }))
        .expect("beta declared dead");
    let claimed = sim.became(0, Role::Active).unwrap();
    assert_eq!(claimed, dead, "claimed back as soon as beta was dead");
    assert!(dead + t.interval >= killed + t.dead, "{dead:?} {killed:?}");
    assert_eq!(
        sim.transitions(0).last().unwrap().2,
        "no node active, this node ranks first"
    );
    assert_eq!(sim.max_holders_seen, 1);
}

/// The release grace: a node that has just released gives the peers three intervals
/// to say one took the VIPs before it claims them back itself, even when it ranks
/// first among the live ones. Here the peer it released to is killed and declared
/// dead within the grace; gamma stays live, so the grace, not the death, decides.
#[test]
fn the_releasing_node_claims_the_vips_back_only_after_its_release_grace() {
    let mut sim = Sim::new(config(3, Failback::Manual), 53);
    sim.run_until(ms(3000), |s| {
        s.holders() == vec![0]
            && s.role(1) == Some(Role::Standby)
            && s.role(2) == Some(Role::Standby)
    });
    sim.run_for(ms(300));
    sim.hook_time = ms(300);
    sim.order(1, Order::Takeover).unwrap();
    sim.run_until(ms(1000), |s| s.machine(0).releasing());
    sim.kill_daemon(1);
    sim.run_until(ms(1000), |s| s.role(0) == Some(Role::Standby));
    let released = sim.t();
    assert!(sim.holders().is_empty());
    sim.run_until(ms(3000), |s| s.holders() == vec![0]);
    let t = &sim.config.timing;
    let dead = sim
        .event_time(0, |e| matches!(e, Event::PeerDead { .. }))
        .expect("beta declared dead");
    let claimed = sim.became(0, Role::Active).unwrap();
    assert!(
        dead < released + t.interval * 3,
        "beta died within the grace"
    );
    // The grace, then the claim's round trip to gamma, a live rival.
    let grace = released + t.interval * 3;
    assert!(
        claimed >= grace && claimed <= grace + ms(10),
        "claimed at {claimed:?}, the grace ended at {grace:?}"
    );
    assert!(
        sim.transitions(2)
            .iter()
            .all(|(_, to, _)| *to != Role::Active)
    );
    assert_eq!(sim.max_holders_seen, 1);
}

/// A VIP the kernel refuses is logged and tried again every second while the node is
/// active; the start hook waits until every VIP is in place.
#[test]
fn a_failed_vip_add_is_retried_every_second_and_the_start_hook_waits_for_it() {
    let mut sim = Sim::settled(config(2, Failback::Auto), 54);
    sim.vip_adds_fail(1, true, None);
    sim.crash(0);
    sim.run_until(ms(2000), |s| s.role(1) == Some(Role::Active));
    sim.run_for(ms(2500));
    assert!(sim.holders().is_empty());
    sim.vip_adds_fail(1, false, None);
    sim.run_until(ms(2000), |s| s.holders() == vec![1]);
    let adds = &sim.nodes[1].adds;
    let added = adds[adds.len() - 1].at;
    assert!(adds.iter().all(|a| a.vip == 0));
    assert_eq!(
        adds.iter().map(|a| a.ok).collect::<Vec<_>>(),
        vec![false, false, false, true]
    );
    // Each try after an unplanned takeover first asks the LAN (a probe window, 3/4
    // of `dead` - `warn`, here 150 ms) whether another host answers for the VIP.
    let t = &sim.config.timing;
    let window = (t.dead - t.warn) * 3 / 4;
    for pair in adds.windows(2) {
        let gap = pair[1].at - pair[0].at;
        assert!(
            gap >= VIP_RETRY + window && gap <= VIP_RETRY + window + ms(5),
            "{gap:?}"
        );
    }
    let failed = sim.nodes[1]
        .events
        .iter()
        .filter(|(_, e)| matches!(e, Event::VipFailed { action: "add", .. }))
        .count();
    assert_eq!(failed, 3);
    sim.run_for(ms(500));
    let starts = sim.hook_runs(1, Hook::Start);
    assert_eq!(starts.len(), 1);
    assert!(
        starts[0].at > added,
        "the start hook ran before the VIP was in place"
    );
}

/// A failing stop hook is logged and the release goes on: the VIP is removed, the
/// daemon exits, the peer takes over.
#[test]
fn a_failing_stop_hook_still_removes_the_vip_and_the_daemon_exits() {
    let mut sim = Sim::settled(config(2, Failback::Auto), 55);
    sim.hooks(0, HookBehaviour::Fail, None);
    sim.shutdown(0);
    sim.run_until(ms(2000), |s| s.holders() == vec![1]);
    assert!(sim.nodes[0].machine.is_none(), "alpha exited");
    assert!(sim.has_event(0, |e| matches!(e, Event::HookFailed { hook: "stop", .. })));
    assert_eq!(sim.transitions(1).last().unwrap().2, "peer alpha shut down");
    assert_eq!(sim.max_holders_seen, 1);
}

/// A stop hook that hangs is killed at `hooks.timeout`; until then the VIP stays on
/// the releasing node and the peer waits, then the release goes on.
#[test]
fn a_hanging_stop_hook_holds_the_handover_until_the_hook_timeout() {
    let mut cfg = config(2, Failback::Auto);
    cfg.hooks.timeout = ms(1500);
    let mut sim = Sim::settled(cfg, 56);
    sim.hooks(0, HookBehaviour::Hang, None);
    sim.order(0, Order::Standby).unwrap();
    let took = sim.run_until(ms(3000), |s| s.holders() == vec![1]);
    let t = &sim.config.timing;
    assert!(
        took >= ms(1500) && took <= ms(1500) + t.interval + ms(5),
        "{took:?}"
    );
    assert!(sim.has_event(0, |e| matches!(
        e,
        Event::HookFailed { hook: "stop", outcome } if outcome.contains("timed out")
    )));
    assert_eq!(sim.max_holders_seen, 1);
}

/// Maintenance on the standby: the holder dies and nothing moves while it is on; the
/// VIP stays on no node. Turned off, the standby takes the VIP at once.
#[test]
fn maintenance_on_the_standby_leaves_a_dead_holder_unreplaced_until_turned_off() {
    let mut sim = Sim::settled(config(2, Failback::Auto), 57);
    sim.order(1, Order::Maintenance(true)).unwrap();
    sim.run_for(ms(300));
    sim.crash(0);
    sim.run_for(ms(5000));
    assert!(sim.holders().is_empty());
    assert_eq!(sim.role(1), Some(Role::Standby));
    assert!(sim.has_event(1, |e| matches!(e, Event::PeerDead { .. })));
    sim.order(1, Order::Maintenance(false)).unwrap();
    let took = sim.run_until(ms(1000), |s| s.holders() == vec![1]);
    assert!(took <= ms(5), "{took:?}");
    assert_eq!(
        sim.transitions(1).last().unwrap().2,
        "peer alpha dead on all links"
    );
}

/// Equal priorities: the name breaks the tie, the smaller first, when nobody holds the
/// VIPs: at start, and when the holder dies.
#[test]
fn equal_priorities_the_smaller_name_takes_over_when_nobody_holds() {
    let mut cfg = config(3, Failback::Manual);
    cfg.nodes.iter_mut().for_each(|n| n.priority = 100);
    let mut sim = Sim::new(cfg, 58);
    sim.run_until(ms(3000), |s| s.holders() == vec![0]);
    sim.run_for(ms(1000));
    assert_eq!(
        (sim.role(1), sim.role(2)),
        (Some(Role::Standby), Some(Role::Standby))
    );
    sim.crash(0);
    sim.run_until(ms(3000), |s| s.holders() == vec![1]);
    sim.run_for(ms(1000));
    assert_eq!(sim.role(2), Some(Role::Standby));
    assert_eq!(sim.max_holders_seen, 1);
}

/// Automatic failback moves the VIPs only to a strictly higher priority: between equal
/// priorities the name makes a node preferred, but it gets them back only by an
/// operator's failback.
#[test]
fn equal_priorities_automatic_failback_never_moves_the_vips() {
    let mut cfg = config(2, Failback::Auto);
    cfg.nodes.iter_mut().for_each(|n| n.priority = 100);
    let mut sim = Sim::settled(cfg, 59);
    sim.crash(0);
    sim.run_until(ms(2000), |s| s.holders() == vec![1]);
    sim.restart(0);
    sim.run_until(ms(3000), |s| {
        s.role(0) == Some(Role::Standby) && s.machine(1).peers()[0].present()
    });
    assert_eq!(sim.machine(1).preferred_node(), "alpha");
    sim.run_for(sim.config.cluster.failback_delay * 3);
    assert_eq!(sim.holders(), vec![1]);
    let takeovers = sim
        .transitions(1)
        .iter()
        .filter(|t| t.1 == Role::Active)
        .count();
    assert_eq!(takeovers, 1);
    // Alpha is a quiet standby by now: beta wakes it first.
    assert_eq!(
        sim.order(1, Order::Failback),
        Ok(Accepted::Waking {
            to: Some("alpha".into())
        })
    );
    sim.run_until(ms(2000), |s| s.holders() == vec![0]);
    assert_eq!(sim.max_holders_seen, 1);
}

/// SIGTERM during a release lets the release finish (one stop hook, then the removal)
/// and then the daemon says goodbye and exits.
#[test]
fn a_shutdown_during_a_release_lets_it_finish_then_exits_without_a_second_stop_hook() {
    let mut sim = Sim::settled(config(2, Failback::Auto), 60);
    sim.hook_time = ms(300);
    sim.order(0, Order::Standby).unwrap();
    sim.run_for(ms(100));
    assert!(sim.machine(0).releasing());
    sim.shutdown(0);
    assert!(sim.nodes[0].vips[0], "the stop hook is still running");
    sim.run_until(ms(2000), |s| s.nodes[0].machine.is_none());
    assert!(!sim.nodes[0].vips[0]);
    assert_eq!(sim.hook_runs(0, Hook::Stop).len(), 1);
    sim.run_until(ms(1000), |s| s.holders() == vec![1]);
    assert_eq!(sim.transitions(1).last().unwrap().2, "peer alpha shut down");
    assert_eq!(sim.max_holders_seen, 1);
}

// --- the invariants themselves can fail ----------------------------------------------

/// Two holders of a VIP that are in contact fail the run at once, faults elsewhere or
/// not: beta's kernel gets the VIP behind the daemons' backs while gamma is cut off.
#[test]
#[should_panic(expected = "is on alpha and on beta, which are in contact")]
fn the_safety_check_catches_two_holders_in_contact_while_other_nodes_are_apart() {
    let mut sim = Sim::new(config(3, Failback::Manual), 61);
    sim.run_until(ms(3000), |s| s.holders() == vec![0]);
    sim.run_for(ms(1000));
    sim.isolate(2);
    sim.run_for(ms(1000));
    sim.nodes[1].vips[0] = true;
    sim.run_for(ms(100));
}

/// A standby that fails to take over from a dead holder fails the run once the takeover
/// bound has passed: here beta runs with a `dead` of 100 s, so it never notices.
#[test]
#[should_panic(expected = "no running node has held every VIP")]
fn the_liveness_check_catches_a_standby_that_never_takes_over() {
    let mut slow = config(2, Failback::Manual);
    slow.timing.dead = Duration::from_secs(100);
    slow.timing.init_dead = Duration::from_secs(100);
    let mut sim = Sim::new(config(2, Failback::Manual), 62);
    let now = sim.now;
    sim.nodes[1].machine = Some(Machine::new(&slow, 1, 99, 1, now));
    sim.run_until(ms(3000), |s| s.holders() == vec![0]);
    sim.crash(0);
    let bound = takeover_bound(&sim.config, sim.hook_time);
    assert!(bound < Duration::from_secs(100));
    sim.run_for(bound + ms(100));
}

// --- service checks --------------------------------------------------------------------

/// Two nodes that run a check `name` configured by `edit`, settled: alpha active.
fn with_check(name: &str, seed: u64, edit: impl FnOnce(&mut failoverd::config::Check)) -> Sim {
    let mut config = config(2, Failback::Manual);
    let mut check = service_check(&config, name);
    edit(&mut check);
    config.checks.push(check);
    Sim::settled(config, seed)
}

/// The reason of the node's last transition for its health (it names the check).
fn lost_on(sim: &Sim, i: usize) -> String {
    sim.transitions(i)
        .iter()
        .rev()
        .find(|t| t.2.starts_with("health checks failing"))
        .map(|t| t.2.clone())
        .unwrap_or_default()
}

#[test]
fn a_service_check_fails_after_fall_runs_and_the_vips_move_with_a_planned_handover() {
    let mut sim = with_check("web", 70, |_| {});
    let interval = sim.config.health.interval;
    sim.service_down(0, "web");
    let took = sim.run_until(ms(2000), |s| s.holders() == vec![1]);
    // Detected at the second failed run (fall 2), at most an interval after the
    // service went; then a planned handover of a few ms.
    assert!(took <= interval * 3 + ms(50), "{took:?}");
    assert!(took >= interval, "{took:?}");
    assert_eq!(sim.max_holders_seen, 1);
    assert_eq!(
        lost_on(&sim, 0),
        "health checks failing (web), peer beta is healthier"
    );
    assert_eq!(
        sim.transitions(1).last().map(|t| t.2.as_str()),
        Some("planned handover from alpha")
    );
}

#[test]
fn a_single_failed_run_below_fall_moves_nothing() {
    let mut sim = with_check("web", 71, |c| c.fall = 3);
    let before = sim.transitions(0).len();
    for _ in 0..5 {
        sim.service_down(0, "web");
        sim.run_for(sim.config.health.interval * 2);
        sim.service_up(0, "web");
        sim.run_for(sim.config.health.interval);
    }
    assert_eq!(sim.transitions(0).len(), before);
    assert_eq!(sim.holders(), vec![0]);
}

#[test]
fn rise_needs_that_many_passes_in_a_row_before_a_failed_check_passes_again() {
    let mut sim = with_check("web", 72, |c| c.rise = 3);
    let interval = sim.config.health.interval;
    sim.service_down(0, "web");
    sim.run_until(ms(2000), |s| s.role(0) == Some(Role::Fault));
    sim.service_up(0, "web");
    let back = sim.run_until(ms(2000), |s| s.role(0) == Some(Role::Standby));
    // Three passing runs, an interval apart, the first at most an interval away.
    assert!(back >= interval * 2, "standby again after {back:?}");
    assert!(back <= interval * 4, "standby again after {back:?}");
    assert_eq!(sim.holders(), vec![1], "manual failback: beta keeps them");
}

#[test]
fn weights_decide_between_two_nodes_that_both_fail_a_check() {
    let mut config = config(2, Failback::Manual);
    let mut db = service_check(&config, "db");
    db.weight = 5;
    config.checks.push(db);
    config.checks.push(service_check(&config, "web"));
    let mut sim = Sim::settled(config, 73);
    // Beta loses its web (1); alpha then its database (5): alpha is worse off.
    sim.service_down(1, "web");
    sim.run_until(ms(2000), |s| s.role(1) == Some(Role::Fault));
    sim.service_down(0, "db");
    sim.run_until(ms(2000), |s| s.holders() == vec![1]);
    assert_eq!(sim.machine(0).health().score(), 5);
    assert_eq!(sim.machine(1).health().score(), 1);
    assert_eq!(sim.max_holders_seen, 1);
}

#[test]
fn a_fatal_check_makes_the_node_unfit_even_next_to_a_peer_that_fails_others() {
    let mut config = config(2, Failback::Manual);
    let mut disk = service_check(&config, "disk");
    disk.fatal = true;
    config.checks.push(disk);
    let mut heavy = service_check(&config, "web");
    heavy.weight = 100;
    config.checks.push(heavy);
    let mut sim = Sim::settled(config, 74);
    sim.service_down(1, "web");
    sim.run_until(ms(2000), |s| s.role(1) == Some(Role::Fault));
    sim.service_down(0, "disk");
    sim.run_until(ms(2000), |s| s.holders() == vec![1]);
    assert_eq!(sim.machine(0).health().score(), u8::MAX);
    assert!(lost_on(&sim, 0).contains("(disk)"), "{}", lost_on(&sim, 0));
}

#[test]
fn an_active_only_check_runs_on_the_holder_alone_and_a_failure_there_sticks() {
    let mut sim = with_check("app", 75, |c| c.on = Scope::Active);
    assert!(
        sim.nodes[0].active_checks,
        "the holder runs its active-only checks"
    );
    assert!(!sim.nodes[1].active_checks, "the standby does not");
    sim.service_down(0, "app");
    sim.run_until(ms(2000), |s| s.holders() == vec![1]);
    assert_eq!(sim.max_holders_seen, 1);
    // Beta's checks run once its start hook is done.
    sim.run_for(sim.hook_time + ms(10));
    assert!(!sim.nodes[0].active_checks);
    assert!(sim.nodes[1].active_checks);
    assert!(sim.has_event(
        0,
        |e| matches!(e, Event::CheckStuck { check, .. } if check == "app")
    ));
    // Alpha's app would pass now, and alpha outranks beta; it still does not take
    // the VIPs back while beta can hold them.
    sim.service_up(0, "app");
    sim.run_for(ms(3000));
    assert_eq!(sim.holders(), vec![1]);
    assert!(sim.machine(0).health().failed());
    assert_eq!(sim.role(0), Some(Role::Standby));
    // And it says why: not "health checks pass again".
    assert_eq!(
        sim.transitions(0).last().unwrap().2,
        "check app failed while active: this node takes the VIPs back only if no other \
         node can (failoverd clear app)"
    );
}

#[test]
fn two_nodes_whose_active_only_check_fails_leave_the_vips_where_they_are() {
    let mut sim = with_check("app", 76, |c| c.on = Scope::Active);
    sim.service_down(0, "app");
    sim.service_down(1, "app");
    sim.run_until(ms(2000), |s| s.holders() == vec![1]);
    sim.run_for(ms(5000));
    // Beta fails too, but the only other node is failed: no ping-pong.
    assert_eq!(sim.holders(), vec![1]);
    let moves = sim
        .transitions(1)
        .iter()
        .filter(|t| t.1 == Role::Active)
        .count();
    assert_eq!(moves, 1, "{:?}", sim.transitions(1));
    let status = sim.machine(1).status(sim.now, SystemTime::now());
    let app = status
        .health
        .checks
        .iter()
        .find(|c| c.name == "app")
        .unwrap();
    assert_eq!(app.state, failoverd::status::CheckState::Failing);
    assert!(status.peers[0].failed, "beta's status says alpha failed");
    // Failing on the active node is not stuck: clear says so, not "not failed".
    assert_eq!(
        sim.order(1, Order::Clear("app".into())),
        Err(Refusal::FailingNow {
            check: "app".into()
        })
    );
}

#[test]
fn a_failed_node_takes_the_vips_when_no_other_node_can_and_clear_ends_the_failure() {
    let mut sim = with_check("app", 77, |c| c.on = Scope::Active);
    sim.service_down(0, "app");
    sim.run_until(ms(2000), |s| s.holders() == vec![1]);
    sim.service_up(0, "app");
    // Beta dies: alpha, failed, is the only node that can hold the VIPs.
    sim.crash(1);
    sim.run_until(ms(3000), |s| s.holders() == vec![0]);
    assert_eq!(
        sim.order(0, Order::Clear("app".into())),
        Ok(Accepted::Cleared {
            check: "app".into()
        })
    );
    assert!(!sim.machine(0).health().failed());
    assert_eq!(
        sim.order(0, Order::Clear("app".into())),
        Err(Refusal::NotFailed {
            check: "app".into()
        })
    );
    assert_eq!(
        sim.order(0, Order::Clear("nope".into())),
        Err(Refusal::UnknownCheck {
            check: "nope".into()
        })
    );
}

#[test]
fn a_cleared_failure_lets_failback_bring_the_vips_home() {
    let mut config = config(2, Failback::Auto);
    let mut app = service_check(&config, "app");
    app.on = Scope::Active;
    config.checks.push(app);
    let mut sim = Sim::settled(config, 78);
    sim.service_down(0, "app");
    sim.run_until(ms(2000), |s| s.holders() == vec![1]);
    sim.service_up(0, "app");
    sim.run_for(sim.config.cluster.failback_delay * 2);
    assert_eq!(sim.holders(), vec![1], "no failback to a failed node");
    sim.order(0, Order::Clear("app".into())).unwrap();
    let took = sim.run_until(ms(5000), |s| s.holders() == vec![0]);
    assert!(took >= sim.config.cluster.failback_delay, "{took:?}");
    assert_eq!(sim.max_holders_seen, 1);
}

#[test]
fn a_sticky_failure_ends_on_its_own_after_failure_timeout() {
    let mut sim = with_check("app", 79, |c| {
        c.on = Scope::Active;
        c.failure_timeout = Some(Duration::from_secs(2));
    });
    sim.service_down(0, "app");
    sim.run_until(ms(2000), |s| s.holders() == vec![1]);
    let stuck = sim
        .event_time(0, |e| matches!(e, Event::CheckStuck { .. }))
        .unwrap();
    sim.run_until(ms(3000), |s| !s.machine(0).health().failed());
    let cleared = sim
        .event_time(
            0,
            |e| matches!(e, Event::CheckCleared { by, .. } if by.contains("timeout")),
        )
        .unwrap();
    assert!(
        cleared >= stuck + ms(2000) && cleared <= stuck + ms(2010),
        "stuck at {stuck:?}, cleared at {cleared:?}"
    );
}

#[test]
fn an_active_only_check_counts_only_after_the_service_started_and_its_start_grace() {
    let mut config = config(2, Failback::Manual);
    let mut app = service_check(&config, "app");
    app.on = Scope::Active;
    app.start_grace = Duration::from_secs(1);
    config.checks.push(app);
    let mut sim = Sim::new(config, 80);
    // The app is broken on alpha from the start.
    sim.service_down(0, "app");
    sim.run_until(ms(3000), |s| s.hook_runs(0, Hook::Start).len() == 1);
    let started = sim.hook_runs(0, Hook::Start)[0].at + sim.hook_time;
    sim.run_until(ms(3000), |s| s.holders() == vec![1]);
    let released = sim
        .event_time(0, |e| matches!(e, Event::Releasing { .. }))
        .unwrap();
    let interval = sim.config.health.interval;
    // Counted from the end of the grace: two failed runs (fall 2) after it.
    assert!(
        released >= started + ms(1000) + interval,
        "{released:?} vs {started:?}"
    );
    assert!(
        released <= started + ms(1000) + interval * 3 + ms(10),
        "{released:?} vs {started:?}"
    );
}

#[test]
fn a_start_hook_that_fails_hands_the_vips_over_unless_told_to_ignore_it() {
    let mut sim = Sim::settled(config(2, Failback::Manual), 81);
    sim.hooks(1, HookBehaviour::Fail, None);
    sim.crash(0);
    sim.run_until(ms(2000), |s| s.role(1) == Some(Role::Active));
    sim.restart(0);
    // Beta's start hook failed: it hands over to alpha once alpha is back, and sticks.
    sim.run_until(ms(5000), |s| s.holders() == vec![0]);
    assert!(sim.machine(1).health().failed());
    assert!(
        lost_on(&sim, 1).contains("(start-hook)"),
        "{}",
        lost_on(&sim, 1)
    );
    assert_eq!(sim.max_holders_seen, 1);

    let mut ignore: Config = config(2, Failback::Manual);
    ignore.hooks.start_failure = StartFailure::Ignore;
    let mut sim = Sim::settled(ignore, 82);
    sim.hooks(1, HookBehaviour::Fail, None);
    sim.crash(0);
    sim.run_until(ms(2000), |s| s.role(1) == Some(Role::Active));
    sim.restart(0);
    sim.run_for(ms(4000));
    assert_eq!(sim.holders(), vec![1]);
    assert!(!sim.machine(1).health().failed());
}

#[test]
fn a_node_that_cannot_add_its_vips_hands_over_once_the_retry_fails_too() {
    let mut sim = Sim::settled(config(2, Failback::Manual), 83);
    sim.vip_adds_fail(0, true, None);
    // The address goes missing on alpha (someone ran `ip addr del`): alpha is not
    // told; a takeover there shows it. Make alpha take over from beta instead.
    sim.order(0, Order::Standby).unwrap();
    sim.run_until(ms(2000), |s| s.holders() == vec![1]);
    sim.order(0, Order::Takeover).unwrap();
    sim.run_until(ms(5000), |s| {
        s.role(0) != Some(Role::Active) && s.holders() == vec![1] && s.machine(0).health().failed()
    });
    let failed_adds = sim.nodes[0].adds.iter().filter(|a| !a.ok).count();
    assert_eq!(failed_adds, 2, "the add and its retry");
    assert!(lost_on(&sim, 0).contains("(vip)"), "{}", lost_on(&sim, 0));
}

// --- rules the randomized runs found broken ---------------------------------------------

/// Found by the randomized runs (seeds 2067, 5658, 11188). A `takeover` order is accepted on
/// beta, standby, and alpha releases for it; while alpha's stop hook runs, beta goes to
/// fault (here its gateway is lost). A takeover request ranks a node first only while
/// it is not in fault: otherwise alpha would defer to beta and beta, in fault, would
/// defer to the healthier alpha, and nobody would hold the VIP.
#[test]
fn a_takeover_request_from_a_node_gone_to_fault_does_not_block_the_takeover() {
    let mut sim = Sim::settled(config(2, Failback::Manual), 63);
    sim.hook_time = ms(1000);
    sim.order(1, Order::Takeover).unwrap();
    sim.gateway_down(1);
    sim.run_until(ms(3000), |s| {
        s.role(1) == Some(Role::Fault) && s.role(0) == Some(Role::Standby)
    });
    // Beta cannot take the VIP while a healthier peer is live: alpha must take it back.
    sim.run_until(ms(3000), |s| s.holders() == vec![0]);
}

/// Found by the randomized runs (seeds 2411, 3096, 3561, 16153 and others). A holder
/// paused past `dead` resumes while it is frozen (its own maintenance here; in seed
/// 16153 a peer's maintenance it still believes in). Yielding after a stall is a
/// safety action like resolving two holders, so maintenance does not stop it: the
/// resumed node releases at once, as it does outside maintenance (see
/// `an_active_node_paused_past_dead_yields_on_resume`), instead of both holding the
/// VIP in contact for `dead`.
#[test]
fn an_active_node_paused_past_dead_in_its_own_maintenance_still_yields_on_resume() {
    let mut sim = Sim::settled(taking(config(2, Failback::Manual)), 64);
    sim.order(0, Order::Maintenance(true)).unwrap();
    sim.run_for(ms(300));
    sim.pause(0, None);
    // Alpha dead, its maintenance no longer counts: beta takes over.
    sim.run_until(ms(3000), |s| s.holders() == vec![0, 1]);
    sim.run_for(ms(500));
    sim.resume(0);
    let took = sim.run_until(ms(1000), |s| s.holders() == vec![1]);
    assert!(took <= sim.hook_time + ms(5), "{took:?}");
}

/// Found by the randomized runs (seeds 3809, 3818, 10361, 12689, 13496, 16143, 18843).
/// A daemon killed while holding the VIP is restarted; it finds the VIP and starts
/// removing it (stop hook, then removal). SIGTERM during that stop hook: the release
/// waits for the removal already under way before the farewell, since the shell exits
/// on `Action::Exit` without draining the executor and would otherwise leave the VIP
/// in the kernel of a node with no daemon, next to the peer's.
#[test]
fn a_shutdown_during_the_stale_vip_cleanup_at_start_exits_only_after_the_removal() {
    let mut sim = Sim::settled(taking(config(2, Failback::Manual)), 65);
    sim.kill_daemon(0);
    sim.run_until(ms(2000), |s| s.holders() == vec![0, 1]);
    sim.hook_time = ms(300);
    sim.restart(0);
    sim.run_for(ms(100));
    sim.shutdown(0);
    sim.run_until(ms(2000), |s| s.nodes[0].machine.is_none());
    assert_eq!(sim.holders(), vec![1]);
}

/// Found by the randomized runs (seeds 5773, 8915, 12127; seed 3871 is the same race
/// with health: a gateway back for two candidates at the same probe, each still seeing
/// the other fail). Candidates elect by the ranks they last heard, so a rank change
/// on its way lets two of them claim at once, in contact. Three nodes, gamma holds:
/// beta is ordered to take over, and its flagged heartbeats are lost on the way to
/// alpha for a moment. Gamma releases for beta; beta claims because its request ranks
/// it first, and alpha claims too because, by what it heard, it ranks first. Then beta,
/// whose request ended when it became active, releases to alpha: the order is defeated
/// and the planned move overlapped. Unignore once the core is fixed.
///
/// Gamma gets the VIPs while alpha and beta are down, one at a time, with an order
/// in between. (This test once crashed both at once; under the majority rule,
/// src/machine/quorum.rs, gamma alone hears 1 of 3 voters and takes nothing.) With
/// this start the race is back: alpha's claim waits three intervals for beta's echo,
/// the loss burst lasts as long, and alpha takes the VIPs while beta, late but alive,
/// claims them too.
#[test]
fn a_takeover_order_moves_the_vip_to_the_asking_node_alone_even_if_a_third_node_missed_it() {
    let mut sim = Sim::new(config(3, Failback::Manual), 66);
    sim.run_until(ms(3000), |s| s.holders() == vec![0]);
    sim.crash(0);
    sim.run_until(ms(3000), |s| s.holders() == vec![1]);
    sim.order(2, Order::Takeover).unwrap();
    sim.run_until(ms(3000), |s| s.holders() == vec![2]);
    sim.crash(1);
    sim.run_for(ms(300));
    sim.restart(0);
    sim.restart(1);
    sim.run_until(ms(3000), |s| {
        s.role(0) == Some(Role::Standby) && s.role(1) == Some(Role::Standby)
    });
    sim.run_for(ms(500));
    sim.burst(1, 0, false, ms(300));
    assert_eq!(
        sim.order(1, Order::Takeover),
        Ok(Accepted::TakingOver {
            holder: Some("gamma".into())
        })
    );
    sim.run_until(ms(2000), |s| s.holders() == vec![1]);
    sim.run_for(ms(1000));
    assert_eq!(sim.holders(), vec![1]);
    assert_eq!(sim.max_holders_seen, 1);
}

// --- seeded randomized runs ----------------------------------------------------------

/// Seeds that `cargo test` runs; `SIM_SEEDS=N` runs seeds 1 to N, `SIM_SEED=N` replays
/// seed N alone.
const QUICK_SEEDS: u64 = 60;

fn env_number(name: &str) -> Option<u64> {
    let value = std::env::var(name).ok()?;
    Some(
        value
            .parse()
            .unwrap_or_else(|_| panic!("{name}={value}: not a number")),
    )
}

/// Random faults, orders, reloads, hook and VIP failures over a lossy network, on two
/// to four nodes shaped by the seed; the invariants are checked after every step (see
/// `sim/invariants.rs`), and after everything heals exactly one node holds every VIP.
#[test]
fn randomized_runs_keep_the_invariants() {
    // One seed replayed is for looking at: its report is printed even if it passes
    // (`-- --nocapture` shows it).
    let replay = env_number("SIM_SEED");
    let seeds: Vec<u64> = match replay {
        Some(seed) => vec![seed],
        None => (1..=env_number("SIM_SEEDS").unwrap_or(QUICK_SEEDS)).collect(),
    };
    let mut all = Stats::default();
    let mut failed = Vec::new();
    for &seed in &seeds {
        // A failing seed prints its report; the others still run, so that a long run
        // says how many seeds fail, not only the first.
        match std::panic::catch_unwind(|| menu::random_run(seed, replay.is_some())) {
            Ok(stats) => all.add(&stats, seed),
            Err(_) => failed.push(seed),
        }
    }
    eprintln!("{}", all.summary(seeds.len() - failed.len()));
    assert!(
        failed.is_empty(),
        "{} of {} seeds failed: {failed:?}; replay one with SIM_SEED=N",
        failed.len(),
        seeds.len()
    );
}

/// Seeds of long runs that once found a bug in the core (see the commits that fixed
/// them: a takeover request in fault, a frozen node after a stall, SIGTERM during a
/// stale-VIP cleanup, the three-node claim race, a restarted node taking over before
/// hearing every peer). They run in every `cargo test`, so none comes back.
#[test]
fn seeds_that_once_found_a_bug_stay_green() {
    for seed in [
        2067, 5658, 2411, 16153, 3809, 18843, 3871, 5773, 8915, 12127, 2026, 15340, 21139, 21560,
        29318,
        // Two holders that both let go for want of a majority, each answering the
        // other's release once it came back (see `claim`).
        7006,
        // An add tried again after the network healed, without asking the LAN, while
        // the old holder's paused daemon left its kernel answering (see
        // `retry_vips`).
        424,
    ] {
        menu::random_run(seed, false);
    }
}
