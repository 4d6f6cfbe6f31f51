//! Steadiness, rule by rule (src/machine/steady.rs): flap damping engages after more
//! unplanned changes of holder than `[damping] changes`, planned moves neither count
//! nor wait, damping relaxes after `quiet`, and a holder that is really dead is still
//! replaced, within `max_silence`; a holder that keeps stalling stops moving the
//! VIPs once the nodes flap; a standby woken late does not blame its peer for its own
//! starvation, and still replaces a holder that is really dead.

use std::time::{Duration, SystemTime};

use failoverd::config::{Config, Failback, LiveVip};
use failoverd::machine::health::Run;
use failoverd::machine::{Event, Input, Order, Role};

use crate::harness::{Sim, config, ms};

/// Two nodes without the split-brain guard's probe, so that a partition gives two
/// holders (the fight that damping is for); failback manual, so that only the
/// partitions move the VIPs.
fn fighting() -> Config {
    let mut cfg = config(2, Failback::Manual);
    cfg.split_brain.live_vip = LiveVip::Take;
    cfg
}

/// One round of a fight: alpha and beta stop hearing each other, beta takes over
/// (an unplanned change), they hear each other again and beta, which ranks lower,
/// backs off (another). Returns how long beta took to take over.
fn fight(sim: &mut Sim) -> Duration {
    sim.partition(0, 1);
    let took = sim.run_until(ms(10_000), |s| s.active() == vec![0, 1]);
    sim.heal();
    sim.run_until(ms(2000), |s| {
        s.holders() == vec![0] && s.active() == vec![0]
    });
    sim.run_for(ms(300));
    took
}

fn flapping(sim: &Sim, i: usize) -> bool {
    sim.machine(i).damping().flapping
}

#[test]
fn damping_engages_after_more_than_n_unplanned_changes_and_lengthens_the_silence() {
    let mut sim = Sim::settled(fighting(), 301);
    let dead = sim.config.timing.dead;
    let interval = sim.config.timing.interval;
    // Two rounds are four changes: not more than `changes`, so no damping yet.
    for _ in 0..2 {
        let took = fight(&mut sim);
        assert!(took <= dead + interval, "undamped takeover took {took:?}");
    }
    assert!(!flapping(&sim, 1));
    assert_eq!(sim.machine(1).damping().changes, 4);
    // The fifth change (the third takeover) engages damping, the sixth doubles it.
    fight(&mut sim);
    assert!(flapping(&sim, 1));
    assert!(sim.has_event(1, |e| matches!(e, Event::Flapping { changes: 5, .. })));
    let silence = sim.machine(1).damping().silence;
    assert_eq!(silence, dead * 4);
    // Alpha held the VIP throughout: it saw no change of holder.
    assert!(!flapping(&sim, 0));
    // Now beta waits for that silence before it takes over, and says so.
    let took = fight(&mut sim);
    assert!(
        took >= silence - interval && took <= silence + interval,
        "damped takeover took {took:?}, not about {silence:?}"
    );
    assert!(sim.has_event(1, |e| matches!(e, Event::TakeoverDamped { .. })));
    let status = sim.machine(1).status(sim.now, SystemTime::now());
    assert!(status.damping.flapping && status.damping.until.is_some());
    assert!(status.damping.takeover_silence_ms >= 2000.0);
}

#[test]
fn damping_turned_off_never_engages() {
    let mut cfg = fighting();
    cfg.damping.enabled = false;
    let mut sim = Sim::settled(cfg, 302);
    let (dead, interval) = (sim.config.timing.dead, sim.config.timing.interval);
    for _ in 0..5 {
        let took = fight(&mut sim);
        assert!(took <= dead + interval, "takeover took {took:?}");
    }
    assert!(!flapping(&sim, 1));
    assert!(!sim.has_event(1, |e| matches!(e, Event::Flapping { .. })));
}

#[test]
fn planned_moves_are_neither_counted_nor_damped() {
    let mut sim = Sim::settled(fighting(), 303);
    let (dead, interval) = (sim.config.timing.dead, sim.config.timing.interval);
    // Three takeovers each way, then a graceful shutdown's handover and back.
    for round in 0..6 {
        let to = 1 - round % 2;
        sim.order(to, Order::Takeover).unwrap();
        sim.run_until(ms(3000), |s| {
            s.holders() == vec![to] && s.active() == vec![to]
        });
        sim.run_for(ms(300));
    }
    sim.shutdown(0);
    sim.run_until(ms(3000), |s| s.holders() == vec![1]);
    sim.restart(0);
    sim.run_for(ms(2000));
    sim.order(0, Order::Takeover).unwrap();
    sim.run_until(ms(3000), |s| {
        s.holders() == vec![0] && s.active() == vec![0]
    });
    sim.run_for(ms(300));
    for i in 0..2 {
        assert!(!flapping(&sim, i), "{} flaps", sim.name(i));
        assert_eq!(sim.machine(i).damping().changes, 0, "{}", sim.name(i));
    }
    // An unplanned takeover after all that waits `dead`, no more.
    sim.crash(0);
    let took = sim.run_until(ms(3000), |s| s.holders() == vec![1]);
    assert!(took <= dead + interval + sim.hook_time, "took {took:?}");
}

#[test]
fn damping_relaxes_after_a_quiet_period() {
    let mut sim = Sim::settled(fighting(), 304);
    let (dead, interval) = (sim.config.timing.dead, sim.config.timing.interval);
    for _ in 0..3 {
        fight(&mut sim);
    }
    assert!(flapping(&sim, 1));
    let quiet = sim.config.damping.quiet;
    sim.run_for(quiet);
    assert!(!flapping(&sim, 1));
    assert!(sim.has_event(1, |e| matches!(e, Event::Relaxed { .. })));
    assert_eq!(sim.machine(1).damping().silence, dead);
    let took = fight(&mut sim);
    assert!(took <= dead + interval, "relaxed takeover took {took:?}");
}

#[test]
fn a_really_dead_holder_is_still_replaced_within_the_cap() {
    let mut sim = Sim::settled(fighting(), 305);
    let interval = sim.config.timing.interval;
    let cap = sim.config.damping.max_silence;
    // Round after round, the silence doubles up to the cap and no further.
    for _ in 0..6 {
        fight(&mut sim);
        assert!(sim.machine(1).damping().silence <= cap);
    }
    assert_eq!(sim.machine(1).damping().silence, cap);
    // The holder dies for real: beta takes over, later than `dead` but within the
    // cap after alpha's last heartbeat.
    sim.crash(0);
    let took = sim.run_until(cap * 2, |s| s.holders() == vec![1]);
    assert!(
        took >= cap - interval && took <= cap + interval + sim.hook_time,
        "took {took:?} with a cap of {cap:?}"
    );
    assert_eq!(sim.role(1), Some(Role::Active));
}

/// Beta is not run for a moment shorter than `dead`, and wakes with its timers due
/// before the heartbeats that queued up meanwhile are read (as a shell may): alpha's
/// silence as beta's clock sees it has passed `dead`, but that is beta's own fault.
#[test]
fn a_standby_woken_late_does_not_blame_its_peer() {
    let mut sim = Sim::settled(fighting(), 306);
    let dead = sim.config.timing.dead;
    // A while after a heartbeat from alpha reached beta, before the next.
    sim.run_until(ms(1000), |s| s.gap(0, 1) >= ms(60));
    assert!(sim.gap(0, 1) < ms(100), "{:?}", sim.gap(0, 1));
    sim.pause(1, None);
    sim.run_for(dead - ms(20));
    sim.resume_timers_first(1);
    sim.run_for(ms(2000));
    assert_eq!(sim.holders(), vec![0]);
    assert_eq!(sim.role(1), Some(Role::Standby));
    assert!(!sim.has_event(1, |e| matches!(e, Event::PeerDead { .. })));
    assert!(sim.has_event(1, |e| matches!(e, Event::Starved { .. })));
    let status = sim.machine(1).status(sim.now, SystemTime::now());
    assert_eq!(status.starved.count, 1);
    assert!(status.starved.longest_ms.is_some_and(|ms| ms >= 200.0));
}

/// The same for an active node and its quiet standby, which beats only every
/// `standby_interval`: heard longer than `dead` before the stall, but within what
/// its quiet allows, it is not blamed either.
#[test]
fn an_active_node_woken_late_does_not_blame_its_quiet_standby() {
    let mut sim = Sim::settled(fighting(), 308);
    let t = sim.config.timing;
    sim.run_for(ms(1500));
    assert!(sim.machine(0).peers()[0].quiet, "beta is not quiet");
    // Just before beta's next quiet heartbeat, which then waits in alpha's queue.
    sim.run_until(ms(2000), |s| s.gap(1, 0) >= t.standby_interval - ms(60));
    assert!(sim.gap(1, 0) > t.dead && sim.gap(1, 0) < t.standby_interval);
    let from = sim.nodes[0].events.len();
    sim.pause(0, None);
    sim.run_for(t.dead - ms(20));
    sim.resume_timers_first(0);
    sim.run_for(ms(2000));
    assert_eq!(sim.holders(), vec![0]);
    let blamed = sim.events_since(0, from, |e| matches!(e, Event::PeerDead { .. }));
    assert!(blamed.is_empty(), "alpha blamed beta: {blamed:?}");
    let starved = sim.events_since(0, from, |e| matches!(e, Event::Starved { .. }));
    assert_eq!(starved.len(), 1, "{starved:?}");
}

/// The same, woken first by a check's run rather than by its deadline: the
/// timeouts that follow belong to the same starvation, which still dates from
/// before the pause (a test in namespaces saw the standby take the VIP).
#[test]
fn a_standby_woken_late_by_another_input_first_does_not_blame_its_peer() {
    let mut sim = Sim::settled(fighting(), 306);
    let dead = sim.config.timing.dead;
    sim.run_until(ms(1000), |s| s.gap(0, 1) >= ms(60));
    sim.pause(1, None);
    sim.run_for(dead * 2);
    sim.resume(1);
    let _ = sim.machine(1).poll_timeout();
    let run = Run {
        passed: true,
        took: ms(1),
        detail: String::new(),
    };
    sim.input(
        1,
        Input::Check {
            index: 0,
            run: &run,
        },
    );
    sim.timeout(1);
    sim.run_for(ms(2000));
    assert_eq!(sim.holders(), vec![0]);
    assert!(!sim.has_event(1, |e| matches!(e, Event::PeerDead { .. })));
}

/// A standby starved again and again still replaces a holder that is really dead:
/// only the silence it could not have read is forgiven, not the silence it saw while
/// it ran.
#[test]
fn a_starved_standby_still_replaces_a_holder_that_is_really_dead() {
    let mut sim = Sim::settled(fighting(), 307);
    let dead = sim.config.timing.dead;
    sim.crash(0);
    let start = sim.now;
    for _ in 0..40 {
        if sim.holders() == vec![1] {
            break;
        }
        sim.pause(1, None);
        sim.run_for(ms(250));
        sim.resume_timers_first(1);
        sim.run_for(ms(10));
    }
    assert_eq!(sim.holders(), vec![1], "beta never took over");
    let took = sim.now - start;
    assert!(took <= dead * 3, "took {took:?}");
    assert!(sim.has_event(1, |e| matches!(e, Event::Starved { .. })));
}

/// Takeovers by either node since it started (its start-up takeover aside).
fn takeovers(sim: &Sim) -> usize {
    (0..2)
        .map(|i| {
            sim.transitions(i)
                .iter()
                .filter(|(from, to, _)| *to == Role::Active && *from != Role::Starting)
                .count()
        })
        .sum()
}

/// Twelve times, the holder of the moment is not run for a little more than `dead`
/// (a starved host): the other node takes over and the holder, resumed, yields.
/// Returns how many takeovers that made.
fn starve_the_holder_again_and_again(cfg: Config, seed: u64) -> usize {
    let mut sim = Sim::settled(cfg, seed);
    let dead = sim.config.timing.dead;
    let before = takeovers(&sim);
    for _ in 0..12 {
        let Some(holder) = sim.holder_of_every_vip() else {
            panic!("no holder between two stalls");
        };
        sim.pause(holder, Some(dead + ms(100)));
        sim.run_for(ms(1500));
    }
    takeovers(&sim) - before
}

/// The fight of the issue, in small: without damping every stall of the holder moves
/// the VIPs; with it, the moves stop once the nodes flap, since a stall shorter than
/// the damped silence ends before anyone acts on it.
#[test]
fn damping_stops_the_fight_over_a_holder_that_keeps_stalling() {
    let mut off = fighting();
    off.damping.enabled = false;
    let undamped = starve_the_holder_again_and_again(off, 308);
    assert_eq!(undamped, 12, "without damping, every stall moves the VIPs");
    let damped = starve_the_holder_again_and_again(fighting(), 308);
    assert!(damped <= 5, "{damped} takeovers with damping");
}
