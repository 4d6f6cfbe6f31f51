//! The split-brain guard, rule by rule: a VIP still answered is never taken, a
//! restarted daemon keeps what it held, a resumed node reads before it judges,
//! fencing comes before an unplanned takeover and never before a planned one, and a
//! node that hears nobody needs its gateway when asked to.

use failoverd::config::{Failback, LiveVip};
use failoverd::machine::{Event, Hold, Hook, Input, Order, Reason, Refusal, Role, Sighting};

use crate::harness::{HookBehaviour, Sim, config, mac, ms};

fn held(sim: &Sim, i: usize) -> Option<Hold> {
    sim.machine(i).takeover_held().cloned()
}

/// The daemon on the active node dies, its kernel keeps the VIP: the standby sees
/// the VIP answered by alpha's MAC and holds back, saying why once, in an event and
/// the fault hook; it stays standby.
#[test]
fn a_killed_daemons_vip_is_never_taken_and_the_standby_says_who_answers() {
    let mut sim = Sim::settled(config(2, Failback::Manual), 201);
    sim.kill_daemon(0);
    sim.run_for(ms(3000));
    assert_eq!(sim.holders(), vec![0], "only alpha's kernel has the VIP");
    assert!(sim.nodes[1].adds.is_empty(), "beta added nothing");
    assert_eq!(sim.role(1), Some(Role::Standby));
    let Some(Hold::LiveVip { sighting }) = held(&sim, 1) else {
        panic!("beta holds back for another reason: {:?}", held(&sim, 1));
    };
    assert_eq!(sighting.mac, mac(0));
    let fault = sim.hook_runs(1, Hook::Fault);
    assert_eq!(fault.len(), 1, "the fault hook runs once per hold");
    let reason = &fault[0].env["FAILOVERD_REASON"];
    assert!(reason.contains("still answered"), "{reason}");
    assert!(reason.contains("02:00:00:00:00:01"), "{reason}");
    let status = sim.machine(1).status(sim.now, std::time::SystemTime::now());
    assert!(status.takeover_held.is_some());
    // It keeps asking, at a gentle pace: twice a second, not a stream.
    let before = sim.nodes[1].probes_sent;
    sim.run_for(ms(2000));
    let asked = sim.nodes[1].probes_sent - before;
    assert!((3..=5).contains(&asked), "{asked} probes in 2 s");
}

/// The daemon restarts on the active node (systemd, a second later): it finds its
/// VIP, hears nobody holding the VIPs, and keeps it. The VIP never leaves alpha's
/// kernel, no hook runs (the service ran on), and beta stands by again.
#[test]
fn a_restarted_daemon_adopts_the_vip_it_left_and_clients_lose_nothing() {
    let mut sim = Sim::settled(config(2, Failback::Manual), 202);
    sim.kill_daemon(0);
    sim.run_for(ms(1000));
    let hooks_before = sim.nodes[0].hooks.len();
    sim.restart(0);
    let mut always_on = true;
    for _ in 0..3000 {
        sim.step();
        always_on &= sim.nodes[0].vips[0];
        if sim.role(0) == Some(Role::Active) && sim.role(1) == Some(Role::Standby) {
            break;
        }
    }
    assert!(always_on, "the VIP left alpha's kernel");
    assert_eq!(sim.role(0), Some(Role::Active));
    assert_eq!(sim.role(1), Some(Role::Standby));
    assert_eq!(
        sim.transitions(0).last().unwrap().2,
        Reason::Adopted.to_string()
    );
    assert_eq!(
        sim.nodes[0].hooks.len(),
        hooks_before,
        "no hook on adoption"
    );
    assert!(sim.nodes[1].adds.is_empty());
    assert_eq!(sim.max_holders_seen, 1);
}

/// `[hooks] on_adopt = "start"`: the start hook runs on adoption too.
#[test]
fn on_adopt_start_runs_the_start_hook_when_the_vip_is_adopted() {
    let mut cfg = config(2, Failback::Manual);
    cfg.hooks.start = Some("/start".into());
    cfg.hooks.on_adopt = failoverd::config::OnAdopt::Start;
    let mut sim = Sim::settled(cfg, 203);
    sim.kill_daemon(0);
    sim.run_for(ms(500));
    let starts = sim.hook_runs(0, Hook::Start).len();
    sim.restart(0);
    sim.run_until(ms(3000), |s| s.role(0) == Some(Role::Active));
    sim.run_for(ms(100));
    assert_eq!(sim.hook_runs(0, Hook::Start).len(), starts + 1);
    assert!(sim.hook_runs(0, Hook::Stop).is_empty());
}

/// A daemon killed while its start hook runs finds the note of it at its restart:
/// it adopts its VIP as any restarted daemon does, and runs the start hook again,
/// `on_adopt = "keep"` notwithstanding, since the service may be half started. Once
/// that run has ended the note is gone, and the next restart leaves the service
/// alone again.
#[test]
fn a_daemon_killed_during_its_start_hook_runs_it_again_when_it_adopts() {
    let mut cfg = config(2, Failback::Manual);
    cfg.hooks.start = Some("/start".into());
    let mut sim = Sim::settled(cfg, 205);
    assert!(!sim.nodes[0].start_noted, "the first start hook ended");
    sim.hook_time = ms(400);
    sim.order(1, Order::Takeover).expect("beta takes over");
    sim.run_until(ms(2000), |s| !s.hook_runs(1, Hook::Start).is_empty());
    sim.run_for(ms(100));
    assert!(sim.nodes[1].start_noted, "noted before the hook");
    sim.kill_daemon(1);
    sim.run_for(ms(500));
    let starts = sim.hook_runs(1, Hook::Start).len();
    sim.restart(1);
    sim.run_until(ms(3000), |s| s.role(1) == Some(Role::Active));
    assert_eq!(
        sim.transitions(1).last().unwrap().2,
        Reason::Adopted.to_string()
    );
    assert!(sim.has_event(1, |e| matches!(e, Event::UnfinishedStart { .. })));
    sim.run_for(ms(600));
    assert_eq!(
        sim.hook_runs(1, Hook::Start).len(),
        starts + 1,
        "the start hook runs again"
    );
    assert!(!sim.nodes[1].start_noted, "and its note goes once it ended");

    // Killed again, with no start hook running: the service ran on.
    sim.kill_daemon(1);
    sim.run_for(ms(500));
    sim.restart(1);
    sim.run_until(ms(3000), |s| s.role(1) == Some(Role::Active));
    sim.run_for(ms(600));
    assert_eq!(sim.hook_runs(1, Hook::Start).len(), starts + 1);
    assert_eq!(sim.holders(), vec![1]);
    assert_eq!(sim.max_holders_seen, 1);
}

/// The same note, when the restarted daemon finds a peer holding the VIPs: it
/// drops its own copy, with the stop hook, and the note goes once that is done.
#[test]
fn the_note_of_a_killed_start_goes_when_the_restart_drops_its_vip() {
    let mut cfg = config(2, Failback::Manual);
    cfg.hooks.start = Some("/start".into());
    cfg.split_brain.live_vip = LiveVip::Take;
    let mut sim = Sim::settled(cfg, 206);
    sim.hook_time = ms(400);
    sim.order(1, Order::Takeover).expect("beta takes over");
    sim.run_until(ms(2000), |s| !s.hook_runs(1, Hook::Start).is_empty());
    sim.run_for(ms(100));
    sim.kill_daemon(1);
    sim.run_until(ms(3000), |s| s.role(0) == Some(Role::Active));
    sim.run_for(ms(500));
    assert!(sim.nodes[1].start_noted);
    sim.restart(1);
    sim.run_until(ms(3000), |s| s.role(1) == Some(Role::Standby));
    sim.run_for(ms(1000));
    assert!(!sim.nodes[1].vips[0], "beta dropped its copy");
    assert!(
        !sim.hook_runs(1, Hook::Stop).is_empty(),
        "with the stop hook"
    );
    assert!(!sim.nodes[1].start_noted, "and the note went");
    assert!(!sim.has_event(1, |e| matches!(e, Event::UnfinishedStart { .. })));
}

/// A stop during the start hook lets the hook end first, and the exit leaves no
/// note behind, though its removal waited behind the release's effects.
#[test]
fn a_stop_during_the_start_hook_leaves_no_note() {
    let mut cfg = config(2, Failback::Manual);
    cfg.hooks.start = Some("/start".into());
    let mut sim = Sim::settled(cfg, 207);
    sim.hook_time = ms(400);
    sim.order(1, Order::Takeover).expect("beta takes over");
    sim.run_until(ms(2000), |s| !s.hook_runs(1, Hook::Start).is_empty());
    sim.run_for(ms(100));
    assert!(sim.nodes[1].start_noted);
    sim.shutdown(1);
    sim.run_until(ms(5000), |s| s.nodes[1].machine.is_none());
    assert!(sim.nodes[1].machine.is_none(), "beta exited");
    assert!(!sim.nodes[1].start_noted, "the exit removed the note");
}

/// A note whose start hook a reload took out before the restart has nothing to
/// finish: the adoption keeps the service alone and clears it. In maintenance,
/// where no hook runs, the adoption says that the service may be half started.
#[test]
fn a_note_without_a_start_hook_or_in_maintenance_runs_nothing_and_says_so() {
    let mut cfg = config(2, Failback::Manual);
    cfg.hooks.start = None;
    let mut sim = Sim::settled(cfg, 208);
    sim.nodes[0].start_noted = true;
    sim.kill_daemon(0);
    sim.run_for(ms(500));
    sim.restart(0);
    sim.run_until(ms(3000), |s| s.role(0) == Some(Role::Active));
    sim.run_for(ms(200));
    assert!(!sim.has_event(0, |e| matches!(e, Event::UnfinishedStart { .. })));
    assert!(
        !sim.nodes[0].start_noted,
        "nothing to finish: the note went"
    );

    sim.nodes[0].start_noted = true;
    sim.kill_daemon(0);
    sim.run_for(ms(500));
    sim.restart_in_maintenance(0);
    sim.run_until(ms(3000), |s| s.role(0) == Some(Role::Active));
    assert!(sim.has_event(0, |e| matches!(e, Event::UnfinishedStart { rerun: false })));
}

/// With `live_vip = "take"` the standby takes the killed daemon's VIP (the old
/// behaviour); the restarted daemon then hears it active and drops its own copy at
/// once, before its stop hook.
#[test]
fn a_restarted_daemon_drops_its_vip_at_once_when_a_peer_holds_them() {
    let mut cfg = config(2, Failback::Manual);
    cfg.split_brain.live_vip = LiveVip::Take;
    let mut sim = Sim::settled(cfg, 204);
    sim.kill_daemon(0);
    sim.run_until(ms(3000), |s| s.role(1) == Some(Role::Active));
    assert!(sim.has_event(1, |e| matches!(e, Event::TakingLiveVip { .. })));
    sim.run_for(ms(300));
    sim.restart(0);
    let took = sim.run_until(ms(3000), |s| !s.nodes[0].vips[0]);
    let bound = sim.config.timing.interval * 4;
    assert!(
        took <= bound,
        "alpha kept the VIP for {took:?} after its start"
    );
    assert_eq!(sim.holders(), vec![1]);
    assert_eq!(sim.role(0), Some(Role::Standby));
}

/// A node powered off answers nothing: the standby takes over at `dead`, as before
/// the guard, because its probe began at `warn` and ended before `dead`.
#[test]
fn a_powered_off_holder_is_replaced_at_dead_as_before() {
    let mut sim = Sim::settled(config(2, Failback::Manual), 205);
    sim.crash(0);
    let took = sim.run_until(ms(3000), |s| s.holders() == vec![1]);
    let t = &sim.config.timing;
    assert!(took <= t.dead + ms(5), "took {took:?}");
    assert!(took >= t.dead - t.interval, "took {took:?}");
}

/// Heartbeats cut both ways (a firewall rule on the heartbeat port) while the LAN
/// works: the standby sees alpha's VIP answered and never takes it; when the
/// heartbeats come back it stands by again.
#[test]
fn a_heartbeat_partition_with_the_lan_up_never_makes_two_holders() {
    let mut sim = Sim::settled(config(2, Failback::Manual), 206);
    sim.partition(0, 1);
    sim.run_for(ms(5000));
    assert_eq!(sim.max_holders_seen, 1);
    assert_eq!(sim.holders(), vec![0]);
    assert!(matches!(held(&sim, 1), Some(Hold::LiveVip { .. })));
    assert_eq!(sim.role(1), Some(Role::Standby));
    sim.heal();
    sim.run_until(ms(2000), |s| held(s, 1).is_none());
    assert_eq!(sim.role(1), Some(Role::Standby));
    assert_eq!(sim.holders(), vec![0]);
}

/// A standby stopped for 3 × dead and resumed, with the timers due during the pause
/// run before the queued heartbeats are read (as the shell may do): it judges nobody
/// dead before it has read them, and adds nothing.
#[test]
fn a_resumed_standby_reads_its_queue_before_it_judges_the_holder_dead() {
    let mut sim = Sim::settled(config(2, Failback::Manual), 207);
    let alpha_moves = sim.transitions(0).len();
    sim.pause(1, None);
    sim.run_for(sim.config.timing.dead * 3);
    sim.resume_timers_first(1);
    sim.run_for(ms(2000));
    assert!(sim.nodes[1].adds.is_empty(), "beta added the VIP");
    assert!(!sim.has_event(1, |e| matches!(e, Event::PeerDead { .. })));
    assert_eq!(sim.transitions(0).len(), alpha_moves);
    assert_eq!(sim.role(1), Some(Role::Standby));
}

/// Fencing: a silent peer is fenced before an unplanned takeover, with its name and
/// addresses in the environment, and the takeover follows the fence even while the
/// VIP was still answered (the fence powered the peer off). A planned move fences
/// nobody.
#[test]
fn fencing_comes_before_an_unplanned_takeover_and_never_before_a_planned_one() {
    let mut cfg = config(2, Failback::Manual);
    cfg.fencing.command = Some("/fence".into());
    let mut sim = Sim::settled(cfg.clone(), 208);
    sim.shutdown(0);
    sim.run_until(ms(2000), |s| s.holders() == vec![1]);
    assert!(
        sim.hook_runs(1, Hook::Fence).is_empty(),
        "a planned move fenced"
    );

    let mut sim = Sim::settled(cfg, 209);
    sim.kill_daemon(0);
    let took = sim.run_until(ms(3000), |s| s.holders() == vec![1]);
    let fences = sim.hook_runs(1, Hook::Fence);
    assert_eq!(fences.len(), 1);
    let env = &fences[0].env;
    assert_eq!(env["FAILOVERD_PEER"], "alpha");
    assert_eq!(env["FAILOVERD_PEER_ADDRESSES"], "198.19.0.1 198.18.0.11");
    assert_eq!(env["FAILOVERD_ANSWERED_BY"], "02:00:00:00:00:01");
    let add = sim.nodes[1].adds.first().expect("beta added the VIP");
    assert!(
        add.at >= fences[0].at + sim.hook_time,
        "added before the fence ended"
    );
    let t = &sim.config.timing;
    assert!(took <= t.dead + sim.hook_time + ms(10), "took {took:?}");
    assert_eq!(sim.max_holders_seen, 1);
}

/// A fence that fails holds the takeover back, in fault, and is tried again after a
/// wait that doubles up to `retry_max`.
#[test]
fn a_failed_fence_holds_the_takeover_and_is_retried_with_a_growing_wait() {
    let mut cfg = config(2, Failback::Manual);
    cfg.fencing.command = Some("/fence".into());
    cfg.fencing.retry = ms(200);
    cfg.fencing.retry_max = ms(800);
    let mut sim = Sim::settled(cfg, 210);
    sim.hooks(1, HookBehaviour::Fail, None);
    sim.crash(0);
    sim.run_for(ms(4000));
    assert!(sim.holders().is_empty());
    assert!(matches!(held(&sim, 1), Some(Hold::FenceFailed { .. })));
    assert_eq!(
        sim.hook_runs(1, Hook::Fault).len(),
        1,
        "one report, however many failures"
    );
    let starts: Vec<_> = sim.hook_runs(1, Hook::Fence).iter().map(|r| r.at).collect();
    let waits: Vec<_> = starts
        .windows(2)
        .map(|w| w[1] - w[0] - sim.hook_time)
        .collect();
    assert!(waits.len() >= 4, "{waits:?}");
    for (wait, want) in waits.iter().zip([200, 400, 800, 800]) {
        let want = ms(want);
        assert!(*wait >= want && *wait <= want + ms(5), "{waits:?}");
    }
    // Once the fence works, the takeover follows.
    sim.hooks(1, HookBehaviour::Succeed, None);
    sim.run_until(ms(2000), |s| s.holders() == vec![1]);
}

/// `require_gateway`: a node that hears no peer takes over only while a gateway check
/// passes.
#[test]
fn require_gateway_keeps_a_node_alone_without_its_gateway_from_taking_over() {
    let mut cfg = config(2, Failback::Manual);
    cfg.split_brain.require_gateway = true;
    let mut sim = Sim::settled(cfg, 211);
    sim.gateway_down(1);
    sim.crash(0);
    sim.run_for(ms(3000));
    assert!(sim.holders().is_empty());
    assert_eq!(held(&sim, 1), Some(Hold::NoGateway));
    sim.gateway_up(1);
    sim.run_until(ms(3000), |s| s.holders() == vec![1]);
}

/// Maintenance keeps a dead holder unreplaced; the probes go on meanwhile, so when
/// it ends the takeover is immediate.
#[test]
fn probes_go_on_in_maintenance_so_its_end_is_answered_at_once() {
    let mut sim = Sim::settled(config(2, Failback::Manual), 212);
    sim.order(1, Order::Maintenance(true)).unwrap();
    sim.run_for(ms(300));
    sim.crash(0);
    sim.run_for(ms(3000));
    sim.order(1, Order::Maintenance(false)).unwrap();
    let took = sim.run_until(ms(1000), |s| s.holders() == vec![1]);
    assert!(took <= ms(5), "{took:?}");
}

/// A probe that cannot be made (no CAP_NET_RAW) is reported once, and the node takes
/// over as it would without the guard: at `dead`.
#[test]
fn a_probe_that_cannot_be_made_is_reported_once_and_the_takeover_goes_ahead() {
    let mut sim = Sim::settled(config(2, Failback::Manual), 213);
    sim.nodes[1].probes_fail = true;
    sim.crash(0);
    let took = sim.run_until(ms(3000), |s| s.holders() == vec![1]);
    assert!(took <= sim.config.timing.dead + ms(5), "took {took:?}");
    sim.run_for(ms(2000));
    let reports = sim.nodes[1]
        .events
        .iter()
        .filter(|(_, e)| matches!(e, Event::ProbeFailed { .. }))
        .count();
    assert_eq!(reports, 1);
}

/// A holder that hears others claim its VIP counts every claim and answers with an
/// announcement at most once a second, so two holders that watch never flood the LAN
/// answering each other.
#[test]
fn conflicts_are_counted_and_answered_at_most_once_a_second() {
    let mut sim = Sim::settled(config(2, Failback::Manual), 214);
    let claim = Sighting {
        address: sim.config.vips[0].address,
        mac: [2, 0, 0, 0, 0, 9],
    };
    let announces = sim.nodes[0].announces.len();
    for _ in 0..5 {
        sim.input(0, Input::Conflict(claim));
        sim.run_for(ms(100));
    }
    assert_eq!(sim.machine(0).vip_conflicts(), 5);
    assert_eq!(sim.nodes[0].announces.len(), announces + 1);
    sim.run_for(ms(600));
    sim.input(0, Input::Conflict(claim));
    assert_eq!(sim.nodes[0].announces.len(), announces + 2);
}

// --- the majority rule: what the randomized runs found ---------------------------
//
// Each scenario below reproduces, deterministically, a class of seeds that failed
// the majority rule's invariants (tests/sim/invariants.rs) because of the core, and
// pins the fix. The one still ignored is a known limit of clusters of three nodes
// that may hold the VIPs; `cargo test --test sim -- --ignored` runs it.

/// Three nodes settled, alpha active, beta and gamma standing by.
fn three_settled(seed: u64) -> Sim {
    let mut sim = Sim::new(config(3, Failback::Manual), seed);
    sim.run_until(ms(3000), |s| {
        s.holders() == vec![0]
            && s.role(1) == Some(Role::Standby)
            && s.role(2) == Some(Role::Standby)
    });
    sim.run_for(ms(300));
    sim
}

/// A planned move follows the majority rule too: beta and gamma, cut from each
/// other, both hear alpha release; each ranks first among the nodes it hears, but
/// the releaser's votes say it hears the other, which is silent here, so each is
/// vetoed and at most one takes the VIPs. (When a planned move skipped the rule,
/// both took them: randomized seeds 19, 25, 49, 57, 21560 and 1916.)
#[test]
fn a_planned_release_heard_by_two_nodes_that_cannot_hear_each_other_makes_one_holder() {
    let mut sim = three_settled(215);
    sim.partition(1, 2);
    sim.run_for(ms(1000));
    sim.order(0, Order::Standby).unwrap();
    sim.run_for(ms(2000));
    assert_eq!(sim.max_holders_seen, 1);
}

/// A takeover order that the majority rule would hold back is refused before the
/// holder lets go, so an order never leaves the VIPs on no node. Beta and gamma are
/// cut from each other while alpha, the holder, hears both: each is silent to the
/// other, and alpha's votes say it hears it, so each would be vetoed. (Before the
/// refusal, alpha released to gamma, and beta kept "planned handover from alpha" as
/// the reason of a later takeover that skipped the guard: randomized seeds 142, 178,
/// 350, 361, 743, 1811; a release is now planned only while its releaser still says
/// so.)
#[test]
fn a_takeover_order_the_majority_would_hold_is_refused_and_nothing_moves() {
    let mut sim = three_settled(216);
    sim.partition(1, 2);
    sim.run_for(ms(1000));
    for node in [2, 1] {
        let refused = sim.order(node, Order::Takeover).err();
        assert!(
            matches!(refused, Some(Refusal::NoMajority { ref why }) if why.contains("still hears")),
            "{}: {refused:?}",
            sim.name(node)
        );
    }
    sim.run_for(ms(2000));
    assert_eq!(sim.holders(), vec![0]);
    assert_eq!(sim.max_holders_seen, 1);
}

/// The probe's answer may be half a second old when a majority hold ends (after the
/// first `dead` of an episode the guard probes at a gentle pace), and the takeover
/// goes by it. Beta, cut off (`isolate`: its probes reach no one), holds for want of
/// a majority while alpha's killed daemon leaves the VIP in its kernel; the cable
/// back, beta hears gamma, has its majority, and adds the VIP on the old "nobody
/// answers" although alpha's kernel answers now. Randomized seeds 406, 644, 893.
#[test]
fn the_takeover_after_a_majority_hold_asks_the_lan_again() {
    let mut sim = three_settled(217);
    sim.isolate(1);
    sim.run_for(ms(200));
    sim.kill_daemon(0);
    sim.run_for(ms(3000));
    assert!(matches!(held(&sim, 1), Some(Hold::NoMajority { .. })));
    // The cable goes back in just after beta's probe ended with no answer: the next
    // comes half a second later, after the handshake with gamma.
    let probes = sim.nodes[1].probes_sent;
    sim.run_until(ms(1000), |s| s.nodes[1].probes_sent > probes);
    sim.run_for(ms(160));
    sim.heal();
    sim.run_for(ms(2000));
    assert!(
        sim.nodes[1].adds.is_empty(),
        "beta added the VIP alpha's kernel has"
    );
    assert!(matches!(held(&sim, 1), Some(Hold::LiveVip { .. })));
}

/// The majority rule is checked when a claim starts, not when it ends: the claim
/// waits for its rivals' echoes (or three intervals), and a rival declared dead
/// meanwhile leaves the wait, so the claim ends with the VIPs taken by a node that
/// hears nobody. Alpha crashes; beta fences it (300 ms) and is cut off meanwhile,
/// still counting gamma when the fence ends; gamma dies in its eyes during the claim.
/// Randomized seed 1195 (four nodes: there a second holder follows).
#[test]
fn a_claim_that_outlives_its_majority_takes_nothing() {
    let mut cfg = config(3, Failback::Manual);
    cfg.fencing.command = Some("/fence".into());
    let mut sim = Sim::new(cfg, 218);
    sim.run_until(ms(3000), |s| s.holders() == vec![0]);
    sim.run_for(ms(300));
    sim.hook_time = ms(300);
    sim.crash(0);
    sim.run_until(ms(2000), |s| !s.hook_runs(1, Hook::Fence).is_empty());
    sim.run_for(ms(10));
    sim.isolate(1);
    sim.run_for(ms(2000));
    assert!(
        sim.nodes[1].adds.is_empty(),
        "beta took the VIPs hearing 1 of 3 voters"
    );
}

/// A node does not defer to a peer whose takeover is held: alpha and beta, cut from
/// each other, are each vetoed by gamma (which hears the other); their votes say they
/// are held, so gamma, which hears everyone, ranks first among the nodes in the
/// running and takes the VIPs instead of waiting for alpha for as long as the cut
/// lasts.
#[test]
fn a_vetoed_first_ranked_node_does_not_keep_the_others_from_taking_over() {
    let mut sim = Sim::new(config(3, Failback::Manual), 219);
    sim.partition(0, 1);
    sim.run_for(ms(4000));
    assert_eq!(sim.holders().len(), 1, "nobody holds the VIPs");
}

/// A failing service does not keep a node from taking the VIPs when the healthier
/// nodes are held back: alpha and beta, cut from each other, are vetoed by gamma,
/// whose service check fails. Gamma would leave the VIPs to a healthier peer, but
/// neither may take them; a node whose service fails is better than none.
#[test]
fn a_failing_node_takes_over_when_every_healthier_node_is_held() {
    let mut cfg = config(3, Failback::Manual);
    cfg.checks.push(crate::harness::service_check(&cfg, "svc"));
    let mut sim = Sim::new(cfg, 221);
    sim.service_down(2, "svc");
    sim.partition(0, 1);
    sim.run_for(ms(6000));
    assert_eq!(sim.holders(), vec![2], "gamma holds the VIPs");
}

/// In maintenance, a holder that shuts down is replaced by the first-ranked node
/// without a claim, so held or not, only the first of the candidates goes: beta and
/// gamma, both held (delta is down, alpha leaves: 2 of 4 voters), each passed over
/// the other's hold; when delta comes back and both have a majority, only beta may
/// take the VIPs. Found by seed 19660; the invariants watch for two holders.
#[test]
fn in_maintenance_only_the_first_candidate_replaces_a_holder_that_left_held_or_not() {
    let mut sim = Sim::new(config(4, Failback::Manual), 222);
    sim.run_until(ms(3000), |s| s.holders() == vec![0]);
    sim.kill_daemon(3);
    sim.run_for(ms(1000));
    sim.order(1, Order::Maintenance(true))
        .expect("maintenance on");
    sim.shutdown(0);
    sim.run_for(ms(2000));
    assert!(
        sim.holders().is_empty(),
        "a node took over without a majority"
    );
    sim.restart(3);
    sim.run_until(ms(3000), |s| !s.holders().is_empty());
    sim.run_for(ms(1000));
    assert_eq!(sim.holders(), vec![1], "beta alone replaces alpha");
}

/// A restart costs nothing on whichever node holds the VIPs, not only on the one
/// that ranks first: after an operator's move to beta (manual failback), beta's
/// daemon is killed and started again a second later; it adopts its VIP, which never
/// leaves its kernel, and alpha, which ranks first but only stands by, adds nothing.
#[test]
fn a_restart_of_the_holder_that_ranks_second_adopts_its_vip() {
    let mut sim = Sim::settled(config(2, Failback::Manual), 420);
    sim.order(1, Order::Takeover).expect("beta takes over");
    sim.run_until(ms(2000), |s| s.holders() == vec![1]);
    sim.run_for(ms(300));
    let alpha_adds = sim.nodes[0].adds.len();
    sim.kill_daemon(1);
    sim.run_for(ms(1000));
    sim.restart(1);
    let mut always_on = true;
    sim.run_until(ms(5000), |s| {
        always_on &= s.nodes[1].vips[0];
        s.role(1) == Some(Role::Active)
    });
    sim.run_for(ms(1000));
    assert!(always_on, "the VIP left beta's kernel");
    assert_eq!(sim.holders(), vec![1]);
    assert_eq!(sim.nodes[0].adds.len(), alpha_adds, "alpha added the VIP");
}

/// Found by the randomized runs (seed 424). Beta takes over while alpha is cut off,
/// but cannot add the VIP; the network heals while alpha's daemon is paused and its
/// kernel answers for the VIP. The add tried again asks the LAN first, as the
/// takeover did, and leaves the VIP to alpha's kernel while it answers.
#[test]
fn an_add_tried_again_after_an_unplanned_takeover_asks_the_lan_first() {
    let mut sim = Sim::settled(config(2, Failback::Manual), 215);
    sim.vip_adds_fail(1, true, None);
    sim.isolate(0);
    sim.run_until(ms(3000), |s| s.role(1) == Some(Role::Active));
    assert!(!sim.nodes[1].adds.is_empty(), "beta tried to add the VIP");
    sim.pause(0, None);
    sim.heal();
    sim.vip_adds_fail(1, false, None);
    sim.run_for(ms(3000));
    assert_eq!(
        sim.holders(),
        vec![0],
        "beta added a VIP alpha's kernel answers for"
    );
    assert!(
        sim.nodes[1].adds.iter().all(|a| !a.ok),
        "beta added the VIP"
    );
    assert!(sim.has_event(1, |e| matches!(
        e,
        Event::VipFailed { action: "add", error, .. } if error.contains("another host answers")
    )));
    // Once alpha's kernel no longer answers, the next try adds it.
    sim.crash(0);
    sim.run_for(ms(2500));
    assert_eq!(sim.holders(), vec![1]);
}
