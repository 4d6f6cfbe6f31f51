//! The randomized runs: a cluster shaped by the seed, then a random menu of faults and
//! operator actions, each written to the trace, with the invariants of
//! `invariants.rs` checked after every step. At the end everything heals and exactly
//! one node must hold every VIP.

use std::time::Duration;

use failoverd::config::{Failback, LiveVip, Scope};
use failoverd::machine::{Accepted, ConfigChange, Event, Order, Refusal, Role};

use crate::harness::{HookBehaviour, Rng, Sim, add_vip, config, ms, service_check, witness_config};
use crate::invariants::Stats;

/// How a seed shapes its cluster.
#[derive(Debug)]
struct Plan {
    nodes: usize,
    vips: usize,
    failback: Failback,
    equal_priorities: bool,
    loss: f64,
    max_delay: u64,
    hook_time: Duration,
    /// Hooks may hang in this run, killed at this `hooks.timeout`.
    hang: Option<Duration>,
    /// A service check `svc` (on every node, or only on the active one), whose
    /// service the menu stops and starts.
    service: Option<Scope>,
    /// `[split_brain] live_vip = "take"`: the guard's probe is not heeded.
    take: bool,
    /// `[fencing] command`: a fence that works powers the peer off.
    fencing: bool,
    /// One more node, a witness on the LAN only (with two nodes, the third voter of
    /// the majority rule; with three, the fourth). It holds nothing; faults and
    /// orders reach it as they reach the others.
    witness: bool,
    /// Someone on the LAN records what one node (`from`) sends another (`to`) from
    /// the start, and from the tenth verb on replays it, one every `every`.
    replay: Option<Replay>,
    /// `[damping]`: as configured (the defaults), eager (flapping after two
    /// unplanned changes within a minute, so that the runs reach it often), or off.
    damping: Damping,
    /// `timing.standby_interval`: how often a quiet standby beats (the interval,
    /// 100 ms, turns the quiet off).
    standby_interval: Duration,
}

#[derive(Debug, Clone, Copy)]
enum Damping {
    Default,
    Eager,
    Off,
}

#[derive(Debug, Clone, Copy)]
struct Replay {
    from: usize,
    to: usize,
    every: Duration,
}

/// The verb after which the recorder starts replaying.
const REPLAY_FROM_VERB: usize = 10;

impl Plan {
    fn of(seed: u64) -> Plan {
        let mut rng = Rng::new(!seed);
        let nodes = rng.pick(&[2, 2, 2, 3, 3, 4]);
        Plan {
            nodes,
            vips: if rng.chance(0.3) { 2 } else { 1 },
            failback: if rng.chance(0.5) {
                Failback::Auto
            } else {
                Failback::Manual
            },
            equal_priorities: rng.chance(0.25),
            loss: rng.pick(&[0.0, 0.01, 0.05, 0.1, 0.2]),
            max_delay: rng.pick(&[2, 5, 10]),
            hook_time: ms(rng.pick(&[5, 20, 100, 300])),
            hang: rng.chance(0.3).then(|| ms(rng.pick(&[500, 1000, 2000]))),
            service: rng
                .chance(0.5)
                .then(|| rng.pick(&[Scope::Both, Scope::Active])),
            // Drawn last, so that the plans drawn before the guard existed stay as
            // they were.
            take: rng.chance(0.25),
            fencing: rng.chance(0.2),
            // Drawn after those, for the same reason: the plans drawn before the
            // witness existed stay as they were.
            witness: rng.chance(0.4) && nodes < 4,
            replay: None,
            damping: Damping::Default,
            standby_interval: ms(1000),
        }
        .with_replay(&mut rng)
        .with_damping(&mut rng)
        .with_pace(&mut rng)
    }

    /// Drawn after everything else, so that the plans drawn before the quiet
    /// standby existed stay as they were.
    fn with_pace(mut self, rng: &mut Rng) -> Plan {
        self.standby_interval = ms(rng.pick(&[100, 300, 1000, 1000, 2500]));
        self
    }

    /// Drawn after everything else, so that the plans drawn before damping existed
    /// stay as they were.
    fn with_damping(mut self, rng: &mut Rng) -> Plan {
        self.damping = rng.pick(&[
            Damping::Default,
            Damping::Eager,
            Damping::Eager,
            Damping::Off,
        ]);
        self
    }

    /// Drawn after everything else, so that the plans drawn before the recorder
    /// existed stay as they were.
    fn with_replay(mut self, rng: &mut Rng) -> Plan {
        let n = (self.nodes + usize::from(self.witness)) as u64;
        if rng.chance(0.3) {
            let from = rng.below(n) as usize;
            let to = (from + 1 + rng.below(n - 1) as usize) % n as usize;
            let every = ms(rng.pick(&[100, 700, 1500, 3000]));
            self.replay = Some(Replay { from, to, every });
        }
        self
    }
}

/// The verbs of the menu.
#[derive(Debug, Clone, Copy)]
enum Verb {
    Crash,
    Kill,
    Restart,
    Shutdown,
    Pause,
    GatewayDown,
    GatewayUp,
    CutLink,
    RestoreLink,
    Partition,
    OneWay,
    CutPath,
    Isolate,
    Burst,
    Loss,
    Heal,
    Order,
    Reload,
    Hooks,
    VipAddsFail,
    Service,
}

/// Each verb with its weight.
const MENU: &[(u64, Verb)] = &[
    (2, Verb::Crash),
    (2, Verb::Kill),
    (6, Verb::Restart),
    (2, Verb::Shutdown),
    (3, Verb::Pause),
    (2, Verb::GatewayDown),
    (3, Verb::GatewayUp),
    (2, Verb::CutLink),
    (2, Verb::RestoreLink),
    (2, Verb::Partition),
    (2, Verb::OneWay),
    (1, Verb::CutPath),
    (1, Verb::Isolate),
    (3, Verb::Burst),
    (1, Verb::Loss),
    (4, Verb::Heal),
    (6, Verb::Order),
    (1, Verb::Reload),
    (2, Verb::Hooks),
    (1, Verb::VipAddsFail),
    (3, Verb::Service),
];

/// Verbs per run.
const VERBS: usize = 40;

/// One seeded run; returns what the invariants had to allow. With `trace`, prints
/// the report of a run that passed too.
pub fn random_run(seed: u64, trace: bool) -> Stats {
    let plan = Plan::of(seed);
    let mut config = if plan.witness {
        witness_config(plan.nodes, plan.failback)
    } else {
        config(plan.nodes, plan.failback)
    };
    if plan.equal_priorities {
        // A witness has no priority (0, as the loader leaves it).
        config
            .nodes
            .iter_mut()
            .filter(|n| !n.witness)
            .for_each(|n| n.priority = 100);
    }
    if plan.vips == 2 {
        add_vip(&mut config);
    }
    if let Some(timeout) = plan.hang {
        config.hooks.timeout = timeout;
    }
    if let Some(on) = plan.service {
        let mut check = service_check(&config, "svc");
        check.on = on;
        config.checks.push(check);
    }
    if plan.take {
        config.split_brain.live_vip = LiveVip::Take;
    }
    if plan.fencing {
        // A fence that hangs holds the effect queue for its timeout, like any hook:
        // the same bound as the hooks keeps the runs' recovery bounds meaningful.
        config.fencing.command = Some("/fence".into());
        config.fencing.timeout = config.hooks.timeout;
    }
    config.timing.standby_interval = plan.standby_interval.max(config.timing.interval);
    match plan.damping {
        Damping::Default => {}
        Damping::Eager => config.damping.changes = 1,
        Damping::Off => config.damping.enabled = false,
    }
    let mut sim = Sim::new(config, seed);
    sim.about = format!("{plan:?}");
    sim.replay = Some(format!(
        "SIM_SEED={seed} cargo test --test sim randomized_runs_keep_the_invariants"
    ));
    sim.loss = plan.loss;
    sim.delay = (1, plan.max_delay);
    sim.hook_time = plan.hook_time;
    if let Some(r) = plan.replay {
        sim.record(r.from, r.to);
    }
    let total: u64 = MENU.iter().map(|(w, _)| w).sum();
    for verb_no in 0..VERBS {
        // The recorder draws nothing from the run's generator: the verbs and the
        // network stay what they are without it.
        if let Some(r) = plan.replay
            && verb_no == REPLAY_FROM_VERB
        {
            sim.replay(r.every);
        }
        let mut roll = sim.rng.below(total);
        let verb = MENU
            .iter()
            .find(|(w, _)| {
                let hit = roll < *w;
                roll = roll.saturating_sub(*w);
                hit
            })
            .map_or(Verb::Heal, |(_, v)| *v);
        apply(&mut sim, &plan, verb);
        let d = sim.rng.millis(50, 2000);
        sim.run_for(d);
    }
    finish(&mut sim, &plan);
    if trace {
        eprintln!("{}", sim.report());
    }
    let mut stats = sim.watch.stats.clone();
    for node in &sim.nodes {
        for (_, event) in &node.events {
            let what = match event {
                Event::Transition { to, reason, .. } => format!("->{to}:{}", reason.kind()),
                Event::Stalled { .. } => "stalled".into(),
                Event::StaleVip { .. } => "stale_vip".into(),
                Event::TakeoverHeld { .. } => "takeover_held".into(),
                Event::Fenced { .. } => "fenced".into(),
                Event::Flapping { .. } => "flapping".into(),
                Event::TakeoverDamped { .. } => "takeover_damped".into(),
                Event::Relaxed { .. } => "relaxed".into(),
                Event::Starved { .. } => "starved".into(),
                Event::VipConflict { .. } => "vip_conflict".into(),
                Event::StaleBurst { .. } => "stale_burst".into(),
                Event::HandoverLapsed { .. } => "handover_lapsed".into(),
                Event::QuietRefused { .. } => "quiet_refused".into(),
                Event::HookFailed { hook, .. } => format!("{hook}_hook_failed"),
                Event::VipFailed { action, .. } => format!("vip_{action}_failed"),
                _ => continue,
            };
            *stats.reached.entry(what).or_default() += 1;
        }
    }
    stats
}

fn apply(sim: &mut Sim, plan: &Plan, verb: Verb) {
    // Every node, the witness too: it crashes, pauses and gets cut off like the others.
    let n = sim.nodes.len();
    let a = sim.rng.below(n as u64) as usize;
    let b = (a + 1 + sim.rng.below(n as u64 - 1) as usize) % n;
    let link = sim.rng.below(sim.config.links.len() as u64) as usize;
    match verb {
        Verb::Crash => sim.crash(a),
        Verb::Kill => sim.kill_daemon(a),
        Verb::Restart => {
            let stopped: Vec<usize> = (0..n).filter(|&i| sim.nodes[i].machine.is_none()).collect();
            if !stopped.is_empty() {
                let i = sim.rng.pick(&stopped);
                sim.restart(i);
            }
        }
        Verb::Shutdown => sim.shutdown(a),
        Verb::Pause => {
            if sim.live(a) {
                let d = sim.rng.millis(100, 3000);
                sim.pause(a, Some(d));
            }
        }
        Verb::GatewayDown => sim.gateway_down(a),
        Verb::GatewayUp => sim.gateway_up(a),
        Verb::CutLink => sim.cut_link(link),
        Verb::RestoreLink => sim.restore_link(link),
        Verb::Partition => sim.partition(a, b),
        Verb::OneWay => sim.one_way(a, b),
        Verb::CutPath => sim.cut_path(a, b, link),
        Verb::Isolate => sim.isolate(a),
        Verb::Burst => {
            let both = sim.rng.chance(0.5);
            let d = sim.rng.millis(100, 3000);
            sim.burst(a, b, both, d);
        }
        Verb::Loss => {
            sim.loss = sim.rng.pick(&[0.0, 0.01, 0.05, 0.1, 0.2]);
            let loss = sim.loss;
            sim.note(format!("random loss {:.0}%", loss * 100.0));
        }
        Verb::Heal => sim.heal(),
        Verb::Service => {
            if plan.service.is_some() {
                if sim.nodes[a].services_down.is_empty() {
                    sim.service_down(a, "svc");
                } else {
                    sim.service_up(a, "svc");
                }
            }
        }
        Verb::Order => {
            if sim.live(a) {
                let orders = [
                    Order::Takeover,
                    Order::Standby,
                    Order::Failback,
                    Order::Maintenance(true),
                    Order::Maintenance(false),
                    Order::Clear("vip".into()),
                    Order::Clear("svc".into()),
                ];
                let order = orders[sim.rng.below(orders.len() as u64) as usize].clone();
                order_and_check(sim, a, order);
            }
        }
        Verb::Reload => reload(sim, a, b),
        Verb::Hooks => {
            let behaviour = if plan.hang.is_some() && sim.rng.chance(0.5) {
                HookBehaviour::Hang
            } else {
                HookBehaviour::Fail
            };
            let d = sim.rng.millis(200, 4000);
            sim.hooks(a, behaviour, Some(d));
        }
        Verb::VipAddsFail => {
            let d = sim.rng.millis(300, 3000);
            sim.vip_adds_fail(a, true, Some(d));
        }
    }
}

/// A new file with other priorities, reloaded on every running daemon: one node's
/// priority changed, two swapped, or all made equal. A witness has no priority, so
/// a change that would give it one leaves the file as it was.
fn reload(sim: &mut Sim, a: usize, b: usize) {
    let mut next = sim.config.clone();
    let witness = |i: usize| next.nodes[i].witness;
    match sim.rng.below(3) {
        0 => {
            let priority = 50 + sim.rng.below(201) as u16;
            if !witness(a) {
                next.nodes[a].priority = priority;
            }
        }
        1 if witness(a) || witness(b) => {}
        1 => {
            let pa = next.nodes[a].priority;
            next.nodes[a].priority = next.nodes[b].priority;
            next.nodes[b].priority = pa;
        }
        _ => next
            .nodes
            .iter_mut()
            .filter(|n| !n.witness)
            .for_each(|n| n.priority = 100),
    }
    // A daemon that was paused at an earlier reload still runs an older file.
    let before: Vec<u16> = sim.nodes.iter().map(|n| n.priority).collect();
    for (i, answer) in sim.reload(next.clone()) {
        let changes = answer.unwrap_or_else(|e| panic!("reload refused on {}: {e}", sim.name(i)));
        let expected = (before[i] != next.nodes[i].priority).then_some(ConfigChange::Priority {
            from: before[i],
            to: next.nodes[i].priority,
        });
        let reported = changes
            .iter()
            .find(|c| matches!(c, ConfigChange::Priority { .. }))
            .cloned();
        assert_eq!(
            reported,
            expected,
            "{} reported {changes:?} for a reload that changed priorities {before:?} -> {:?}",
            sim.name(i),
            next.nodes.iter().map(|n| n.priority).collect::<Vec<_>>()
        );
        // Besides its own, a node names only its peers' priorities, as the new
        // file has them. Which peers it names depends on the file it ran before,
        // which for a node paused at an earlier reload is an older one, so that
        // is not checked here (the daemon test of reload answers does).
        let named_right = |c: &ConfigChange| match c {
            ConfigChange::Priority { .. } => true,
            ConfigChange::PeerPriority { peer, to, .. } => {
                let node = next.nodes.iter().find(|n| &n.name == peer);
                node.is_some_and(|n| n.priority == *to)
            }
            _ => false,
        };
        assert!(
            changes.iter().all(named_right),
            "{} reported more than the priorities changed: {changes:?}",
            sim.name(i)
        );
    }
}

/// What a node was like just before an order, to judge its answer by.
struct Before {
    role: Role,
    releasing: bool,
    handing_over: bool,
    maintenance: bool,
    stopping: bool,
    failing: u8,
    preferred: String,
    /// Each peer as this node saw it: name, present, role, maintenance, holds.
    peers: Vec<(String, bool, Role, bool, bool)>,
}

impl Before {
    fn frozen(&self) -> bool {
        self.maintenance || self.peers.iter().any(|p| p.1 && p.3)
    }

    fn holding_peer(&self) -> Option<&str> {
        self.peers.iter().find(|p| p.4).map(|p| p.0.as_str())
    }
}

/// Gives node i an order and checks the answer makes sense: an accepted order was
/// possible, and a refusal gives a reason that was true of the node (its role, its
/// release, its shutdown, its health) or of what it saw of its peers, with names of
/// real nodes; a node named as being in maintenance really had it on recently.
pub fn order_and_check(sim: &mut Sim, i: usize, order: Order) {
    let m = sim.machine(i);
    let before = Before {
        role: m.role(),
        releasing: m.releasing(),
        handing_over: m.handing_over(),
        maintenance: m.maintenance(),
        stopping: sim.nodes[i].stopping,
        failing: m.health().score(),
        preferred: m.preferred_node(),
        peers: m
            .peers()
            .iter()
            .map(|p| {
                (
                    p.name.clone(),
                    p.present(),
                    p.role,
                    p.maintenance,
                    p.holds(),
                )
            })
            .collect(),
    };
    let answer = sim.order(i, order.clone());
    if let Err(why) = judge(sim, i, &order, &before, &answer) {
        panic!("{} answered {order:?} with {answer:?}: {why}", sim.name(i));
    }
    if answer == Ok(Accepted::Maintenance { on: true }) {
        let d = sim.rng.millis(300, 3000);
        sim.maintenance_off_after(i, d);
    }
}

fn judge(
    sim: &Sim,
    i: usize,
    order: &Order,
    before: &Before,
    answer: &Result<Accepted, Refusal>,
) -> Result<(), String> {
    let me = sim.name(i).to_string();
    let t = &sim.config.timing;
    // A peer's maintenance reaches this node's view within a heartbeat, and stays in
    // it until the peer is declared dead. A node that was paused reads, on resuming,
    // the heartbeats that waited for it, and ages its peers from then: its view is as
    // old as its pause.
    let stale_by = sim.nodes[i]
        .last_pause
        .filter(|(_, resumed)| sim.now - *resumed <= t.dead + t.interval * 2)
        .map_or(Duration::ZERO, |(paused, _)| sim.now - paused);
    let recently_in_maintenance = |name: &str| {
        sim.config.node_index(name).is_some_and(|j| {
            sim.maintenance_seen[j]
                .is_some_and(|at| sim.now - at <= t.dead + t.interval * 2 + stale_by)
        })
    };
    let peer = |name: &str| before.peers.iter().find(|p| p.0 == name);
    let is_move = matches!(order, Order::Takeover | Order::Standby | Order::Failback);
    let check = |ok: bool, why: &str| if ok { Ok(()) } else { Err(why.to_string()) };
    if answer.is_ok() && is_move {
        check(
            !before.frozen() && !before.stopping && !before.releasing,
            "a move accepted in maintenance, during a release or a shutdown",
        )?;
    }
    match answer {
        Ok(Accepted::TakingOver { holder }) => {
            check(
                matches!(order, Order::Takeover | Order::Failback) && before.role == Role::Standby,
                "only a standby node takes over on an order",
            )?;
            check(
                holder.as_deref() == before.holding_peer(),
                "the holder named is not the one it saw",
            )
        }
        Ok(Accepted::Releasing) => check(
            *order == Order::Standby && before.role == Role::Active && sim.machine(i).releasing(),
            "only the active node releases on standby, and it must be releasing",
        ),
        Ok(Accepted::Waking { to }) => check(
            match order {
                Order::Standby => to.is_none(),
                Order::Failback => to.as_ref() == Some(&before.preferred) && *to != Some(me),
                _ => false,
            } && before.role == Role::Active
                && sim.machine(i).handing_over(),
            "only the active node wakes a quiet standby, for standby or failback to the \
             preferred node, and it must be waiting for it",
        ),
        Ok(Accepted::StandingBy) => check(
            *order == Order::Standby && before.role != Role::Active,
            "the active node must release, not just stand by",
        ),
        Ok(Accepted::HandingBack { to }) => check(
            *order == Order::Failback
                && before.role == Role::Active
                && *to == before.preferred
                && *to != me
                && sim.machine(i).releasing(),
            "only the holder hands back, to the preferred node, by releasing",
        ),
        Ok(Accepted::Maintenance { on }) => check(
            *order == Order::Maintenance(*on)
                && before.maintenance != *on
                && sim.machine(i).maintenance() == *on,
            "maintenance did not change as answered",
        ),
        Ok(Accepted::MaintenanceAlreadyOn) => check(
            *order == Order::Maintenance(true) && before.maintenance,
            "maintenance was not on",
        ),
        Ok(Accepted::MaintenanceAlreadyOff) => check(
            *order == Order::Maintenance(false)
                && !before.maintenance
                && !before.peers.iter().any(|p| p.1 && p.3),
            "maintenance was on, here or on a peer it saw",
        ),
        Err(Refusal::Frozen { by }) => {
            check(is_move, "only moves are frozen")?;
            for name in by.split(", ") {
                let mine = name == me && before.maintenance;
                let theirs =
                    peer(name).is_some_and(|p| p.1 && p.3) && recently_in_maintenance(name);
                check(mine || theirs, &format!("{name} is not in maintenance"))?;
            }
            Ok(())
        }
        Ok(Accepted::Cleared { check: name })
        | Err(Refusal::NotFailed { check: name })
        | Err(Refusal::FailingNow { check: name }) => check(
            *order == Order::Clear(name.clone()),
            "only clear answers about a check's failure",
        ),
        Err(Refusal::UnknownCheck { check: name }) => check(
            *order == Order::Clear(name.clone()) && (name != "vip" || before.role == Role::Witness),
            "vip is a built-in check of every node but a witness",
        ),
        Err(Refusal::ShuttingDown) => check(before.stopping, "no SIGTERM was sent"),
        Err(Refusal::Releasing) => check(
            before.releasing || (*order == Order::Takeover && before.handing_over),
            "no release was under way",
        ),
        Ok(Accepted::AlreadyActive) => check(
            *order == Order::Takeover && before.role == Role::Active && !before.handing_over,
            "it was not active",
        ),
        Err(Refusal::Starting) => check(before.role == Role::Starting, "it was not starting"),
        Err(Refusal::NoMajority { .. }) => check(
            matches!(order, Order::Takeover | Order::Failback) && sim.config.majority_rule(),
            "only a takeover (or failback to this node), and only under the majority rule, \
             is refused for it",
        ),
        Err(Refusal::Witness) => check(
            is_move && before.role == Role::Witness,
            "only a witness refuses moves for being one",
        ),
        Err(Refusal::Unhealthy { failing }) => check(
            before.role == Role::Fault && *failing == before.failing,
            "it was not in fault with that many failing checks",
        ),
        Err(Refusal::NoLivePeer) => check(
            *order == Order::Standby
                && !before
                    .peers
                    .iter()
                    .any(|p| p.1 && !matches!(p.2, Role::Starting | Role::Witness)),
            "it saw a live peer that may hold the VIPs",
        ),
        Err(Refusal::PeersInFault { peers }) => {
            check(*order == Order::Standby, "only standby looks for a peer")?;
            for name in peers.split(", ") {
                check(
                    peer(name).is_some_and(|p| p.1 && p.2 == Role::Fault),
                    &format!("{name} was not a live peer in fault"),
                )?;
            }
            Ok(())
        }
        Err(Refusal::NoHolder) => check(
            *order == Order::Failback
                && before.role != Role::Active
                && before.holding_peer().is_none(),
            "a holder was known",
        ),
        Err(Refusal::AlreadyPreferred { node }) => {
            let holder = if before.role == Role::Active {
                Some(me.as_str())
            } else {
                before.holding_peer()
            };
            check(
                *order == Order::Failback
                    && holder == Some(node.as_str())
                    && *node == before.preferred,
                "the node named is not both the holder and the preferred node",
            )
        }
        Err(Refusal::NotInvolved { holder, preferred }) => check(
            *order == Order::Failback
                && *holder != me
                && *preferred != me
                && before.role != Role::Active
                && before.holding_peer() == Some(holder.as_str())
                && *preferred == before.preferred,
            "it was the holder or the preferred node",
        ),
        Err(Refusal::MaintenanceElsewhere { by }) => {
            check(
                *order == Order::Maintenance(false) && !before.maintenance,
                "maintenance was on here",
            )?;
            for name in by.split(", ") {
                check(
                    name != me
                        && peer(name).is_some_and(|p| p.1 && p.3)
                        && recently_in_maintenance(name),
                    &format!("{name} is not in maintenance"),
                )?;
            }
            Ok(())
        }
    }
}

/// Heals everything, lets it settle, and checks that exactly one node holds every
/// VIP, that no other holds any, and that the daemons agree it is the active one.
fn finish(sim: &mut Sim, plan: &Plan) {
    sim.note("the end: everything heals".into());
    sim.heal();
    sim.loss = plan.loss.min(0.05);
    for i in 0..sim.nodes.len() {
        sim.resume(i);
        sim.gateway_up(i);
        sim.hooks(i, HookBehaviour::Succeed, None);
        sim.vip_adds_fail(i, false, None);
        sim.service_up(i, "svc");
        if sim.nodes[i].machine.is_none() {
            sim.restart(i);
        } else if sim.machine(i).maintenance() {
            order_and_check(sim, i, Order::Maintenance(false));
        }
    }
    sim.run_for(ms(8000));
    let holder = sim.holder_of_every_vip();
    let Some(holder) = holder else {
        panic!("no node holds every VIP after everything healed");
    };
    for v in 0..sim.config.vips.len() {
        assert_eq!(
            sim.holders_of(v),
            vec![holder],
            "VIP {v} is not on {} alone after everything healed",
            sim.name(holder)
        );
    }
    assert_eq!(
        sim.active(),
        vec![holder],
        "the daemons disagree on the holder"
    );
}
