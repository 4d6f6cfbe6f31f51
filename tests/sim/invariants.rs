//! What must hold after every step of a simulation, and the bounds it is held to.
//!
//! **Safety.** Two nodes may both have a VIP in their kernel only while that pair is
//! apart (see [`Sim::apart`]: they cannot reach each other now, one of them could
//! have declared the other dead, or one holds VIPs a killed daemon left behind), or,
//! once they are back in clean contact, for at most [`resolve_bound`]. Never globally: every other pair is held to "never
//! two", so a planned move, a health move, an operator's move or a reload that put a
//! VIP on two nodes fails the run at once. With three voters or more (the majority
//! rule, src/machine/quorum.rs) the promise is stronger: never two active daemons
//! that run whose kernels have a VIP, apart or not, outside a planned move's release
//! step (see `Watch::check_one_holder`).
//!
//! **Liveness.** Whenever a takeover is expected (see [`takeover_blocked`], and
//! [`majority_blocked`] with three voters or more), some running node holds every
//! VIP within [`takeover_bound`]: the check fails as soon as the cluster has gone
//! longer than that without such a holder while a takeover was expected all along.
//! Flap damping (src/machine/steady.rs) may make an unplanned takeover wait for a
//! longer silence than `dead`: the bound grows by the most any running node asked
//! for meanwhile, and no node ever asks for more than `[damping] max_silence`, so
//! damping delays a takeover, within that cap, and never prevents one.
//!
//! **Progress of each node.** A running daemon sends a heartbeat to every peer on
//! every link both are on at least every interval (so a silence between two nodes
//! comes from the network, a pause or a death, never from a node that stopped
//! talking, and "apart" cannot hide a bug); it counts a VIP as held only if the
//! kernel has it; a witness holds nothing and stays a witness; and no timer stays due
//! after it ran (checked in `Sim::step`).

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use failoverd::config::{Config, LiveVip, Timing};
use failoverd::machine::{Event, Machine, Role};

use crate::harness::{HookBehaviour, Sim, VIP_RETRY};

/// Silence for this long, in one direction, lets the receiver declare the sender
/// dead (every link silent for `dead`), after which both may hold the VIPs: that is
/// a real separation. A shorter silence lets no node declare another dead, so it
/// excuses nothing.
pub fn real_separation(t: &Timing) -> Duration {
    t.dead
}

/// In clean contact, a datagram arrives in each direction at least this often: the
/// sender's heartbeats go out every interval on every link, and the network delay
/// varies by less than its maximum. A longer gap means heartbeats were lost.
pub fn clean_gap(t: &Timing, max_delay: Duration) -> Duration {
    t.interval + max_delay
}

/// How long two nodes that both hold a VIP may go on doing so once they are in clean
/// contact again after being apart (see [`Sim::apart`]). Only clean contact counts: a
/// lost heartbeat stops the count for about as long as it delays the resolution, so
/// no allowance for loss is needed, and a new silence that grows into a separation
/// finds the allowance not yet spent.
///
/// - Handshake, 3 × interval (`Settings::handshake_wait`): the first datagrams after a
///   separation do not echo the receiver's current nonce and are only counted; the
///   answer that echoes it leaves with the next heartbeat, an interval later. A node
///   that resumed after a stall finds its peer active in the buffered datagrams at once.
/// - The release of the node that backs off (the lower-ranked of two active nodes, or
///   the one that resumed after a stall), 2 × the longest hook: its executor may first
///   finish a hook already running (the start hook of the takeover it made while
///   apart, or the stop hook for a stale VIP found at restart), then runs the
///   release's stop hook before the removal.
/// - 10 ms: the effects around them (the search for stale VIPs, the removal) take 1 ms
///   each in the simulation.
pub fn resolve_bound(t: &Timing, hook_max: Duration) -> Duration {
    t.interval * 3 + hook_max * 2 + Duration::from_millis(10)
}

/// The longest the cluster may go without a running node that holds every VIP while
/// a takeover is expected. The terms add up waits that can come one after the other:
///
/// - `dead`: a holder that vanished (killed, paused, cut off) is declared dead this
///   long after its last heartbeat.
/// - `init_dead`: a node that has just started listens this long before it claims
///   anything, and a peer it outranks waits for it.
/// - Handshake, 3 × interval: elections wait for a peer whose handshake is under way.
/// - Release grace, 3 × interval: a node that has just released waits this long before
///   it would claim the VIPs back.
/// - A holder that lost a check notices after `failures` probes and releases only
///   after the health grace (`health.interval` + 2 × interval).
/// - 3 × the longest hook: the old holder's executor may finish a hook and then run the
///   release's stop hook before the removal, and the new holder's add may wait behind
///   a hook (its fault hook, or the stop hook for a stale VIP found at its start).
/// - `VIP_RETRY`: an add that failed just before the takeover became expected is tried
///   again a second later (the start hook waits for it, the check does not).
/// - With fencing, a fence run and, after a failed one, the wait up to `retry_max`.
/// - 4 × interval for lost heartbeats: the one that says a release is over, a handshake
///   round; with the loss rates of the randomized runs, five in a row on both links of
///   one path happen about once in 10⁸ rounds.
/// - With the majority rule (three voters or more), an interval for the voters' news:
///   a peer that still hears the silent holder vetoes the takeover until it declares
///   the holder dead too (up to a network delay later) and says so, at once in a
///   heartbeat out of turn, or, if that one is lost, in the next within an interval;
///   and `dead` for a claim, which waits for every rival that is still alive, however
///   late, until it answers or is declared dead. A first-ranked node that is held
///   back says so in its votes, and the next node in rank stops waiting for it; that
///   fits in the same allowances (the hold comes when a veto settles).
pub fn takeover_bound(config: &Config, hook_max: Duration) -> Duration {
    let t = &config.timing;
    let h = &config.health;
    let health_grace = h.interval + t.interval * 2;
    // With fencing, an unplanned takeover first runs the fence (a hook run), and a
    // fence that failed while hooks failed is tried again after at most
    // `retry_max`.
    let fencing = if config.fencing.command.is_some() {
        hook_max * 2 + config.fencing.retry_max
    } else {
        Duration::ZERO
    };
    // The voters' news, with the majority rule; and a claim that waits for a rival
    // that is late but alive until it answers or is declared dead (`dead` instead
    // of the handshake's three intervals).
    let news = if config.majority_rule() {
        t.interval + t.dead
    } else {
        Duration::ZERO
    };
    fencing
        + news
        + t.dead
        + t.init_dead
        + t.interval * 3
        + t.interval * 3
        + h.interval * h.failures
        + health_grace
        + hook_max * 3
        + VIP_RETRY
        + t.interval * 4
}

/// Why no takeover is expected now, or `None` when one is: some live node (a daemon
/// runs, not paused) that is fit (its gateway answers, no SIGTERM sent) can exchange
/// datagrams both ways, on some link each way, with every other live node (with three
/// voters or more: see [`majority_blocked`] instead), and nothing legitimately holds
/// the cluster still. What does: maintenance on a live node (it freezes automatic
/// moves), VIP additions failed on purpose (the first-ranked node takes over and keeps
/// retrying them). Random loss does not block: the bound allows for it.
pub fn takeover_blocked(sim: &Sim) -> Option<String> {
    let live: Vec<usize> = (0..sim.nodes.len()).filter(|&i| sim.live(i)).collect();
    if live.is_empty() {
        return Some("no daemon runs".into());
    }
    for &i in &live {
        if sim.machine(i).maintenance() {
            return Some(format!("maintenance on {}", sim.name(i)));
        }
        // A witness adds nothing, so its kernel's refusal holds nobody back.
        if sim.nodes[i].vip_adds_fail && !sim.witness(i) {
            return Some(format!("VIP adds fail on {}", sim.name(i)));
        }
    }
    // The split-brain guard waits while a kernel whose daemon is gone (killed) or
    // paused still answers for a VIP: its service may well still serve clients.
    if sim.config.split_brain.live_vip == LiveVip::Wait && sim.config.fencing.command.is_none() {
        for v in 0..sim.config.vips.len() {
            if let Some(&i) = live.iter().find(|&&i| !sim.witness(i))
                && let Some(j) = sim.left_behind(i, v)
            {
                return Some(format!(
                    "VIP {v} still answered by {}, whose daemon does not run",
                    sim.name(j)
                ));
            }
        }
    }
    // Fencing that fails holds every unplanned takeover back, by design. A witness
    // fences nobody.
    if sim.config.fencing.command.is_some()
        && let Some(&i) = live
            .iter()
            .find(|&&i| !sim.witness(i) && sim.nodes[i].hook_behaviour != HookBehaviour::Succeed)
    {
        return Some(format!("fences fail on {}", sim.name(i)));
    }
    let fit = |x: usize| sim.nodes[x].gateway_up && !sim.nodes[x].stopping;
    if sim.config.majority_rule() {
        return majority_blocked(sim, &live, fit);
    }
    let reaches_all = |x: usize| {
        live.iter()
            .all(|&y| y == x || (sim.path_open(x, y) && sim.path_open(y, x)))
    };
    if live.iter().any(|&x| fit(x) && reaches_all(x)) {
        None
    } else {
        Some("no fit node reaches every live node".into())
    }
}

/// With the majority rule (three voters or more, src/machine/quorum.rs), why no
/// takeover is expected, or `None` when one is. The core lets a node take over
/// unplanned only while it and the peers whose votes count for it (they hear it) are a
/// majority of the voters and none of the peers it hears still hears a non-witness
/// node that it finds silent (a veto: that node may hold the VIPs); a node that ranks
/// first but is held back says so in its votes, and the others stop waiting for it
/// (pinned by `a_vetoed_first_ranked_node_does_not_keep_the_others_from_taking_over`).
/// So a takeover is expected in a group of live nodes (joined by paths open both
/// ways, a witness included) such that
///
/// - no live node outside the group has a path into it (one may stay alive in a
///   member's eyes, which may then defer to it, or be vetoed for it);
/// - some fit non-witness member could take over itself: the members it exchanges
///   datagrams with both ways, not stopping, make a majority with it; and none of
///   those may hear a non-witness node that it does not surely hear. A node may hear another
///   whose datagrams reached it within `dead` (a paused, killed or cut-off node stays
///   heard that long), or that is live with a path to it; a node surely hears a live
///   node it exchanges datagrams with both ways.
///
/// The group takes over within [`takeover_bound`]; nodes outside it hold nothing
/// (none of them can be a majority). Two nodes cut from each other while the witness
/// hears both veto each other for as long as the cut lasts: the rule's price.
pub fn majority_blocked(sim: &Sim, live: &[usize], fit: impl Fn(usize) -> bool) -> Option<String> {
    let dead = sim.config.timing.dead;
    let majority = sim.config.voters() / 2 + 1;
    let linked = |a: usize, b: usize| sim.path_open(a, b) && sim.path_open(b, a);
    let may_hear = |y: usize, z: usize| {
        y != z && (sim.gap(z, y) < dead || (sim.live(z) && sim.path_open(z, y)))
    };
    let surely_hears = |x: usize, z: usize| sim.live(z) && linked(x, z);
    // The groups: live nodes joined by paths open both ways.
    let mut group: Vec<usize> = (0..sim.nodes.len()).collect();
    let root = |group: &Vec<usize>, mut i: usize| {
        while group[i] != i {
            i = group[i];
        }
        i
    };
    for &a in live {
        for &b in live {
            if a < b && linked(a, b) {
                let (ra, rb) = (root(&group, a), root(&group, b));
                group[ra.max(rb)] = ra.min(rb);
            }
        }
    }
    let mut why = Vec::new();
    for &r in live.iter().filter(|&&i| root(&group, i) == i) {
        let members: Vec<usize> = live
            .iter()
            .copied()
            .filter(|&i| root(&group, i) == r)
            .collect();
        let names = members
            .iter()
            .map(|&i| sim.name(i))
            .collect::<Vec<_>>()
            .join(", ");
        let outside = live.iter().copied().filter(|i| !members.contains(i));
        if let Some((b, a)) = outside
            .flat_map(|b| members.iter().map(move |&a| (b, a)))
            .find(|&(b, a)| sim.path_open(b, a))
        {
            why.push(format!(
                "{} hears {} from outside its group",
                sim.name(a),
                sim.name(b)
            ));
            continue;
        }
        if !members.iter().any(|&x| !sim.witness(x) && fit(x)) {
            why.push(format!("no fit node that may hold the VIPs among {names}"));
            continue;
        }
        let mut blocked = members
            .iter()
            .copied()
            .filter(|&x| !sim.witness(x) && fit(x))
            .map(|x| {
                let reached: Vec<usize> = members
                    .iter()
                    .copied()
                    .filter(|&y| y != x && linked(x, y))
                    .collect();
                let heard = 1 + reached.iter().filter(|&&y| !sim.nodes[y].stopping).count();
                if heard < majority {
                    return Some(format!(
                        "{} reaches {heard} of {} voters",
                        sim.name(x),
                        sim.config.voters()
                    ));
                }
                let veto = reached.iter().find_map(|&y| {
                    (0..sim.nodes.len())
                        .find(|&z| {
                            z != x && !sim.witness(z) && may_hear(y, z) && !surely_hears(x, z)
                        })
                        .map(|z| (y, z))
                });
                veto.map(|(y, z)| {
                    format!(
                        "{} may hear {}, which {} does not surely hear (a veto)",
                        sim.name(y),
                        sim.name(z),
                        sim.name(x)
                    )
                })
            });
        let mut reasons = Vec::new();
        for reason in &mut blocked {
            match reason {
                Some(reason) => reasons.push(reason),
                None => return None,
            }
        }
        why.extend(reasons);
    }
    Some(format!("majority rule: {}", why.join("; ")))
}

/// The longest a hook run since `since` can take: `hooks.timeout` if a hook could have
/// been hanging at any time since (one that hung then may still be running), the
/// simulated hook time otherwise. So a run where hooks may hang is held to the tight
/// bounds while none does.
pub fn hook_max(sim: &Sim, since: Instant) -> Duration {
    if sim.hang_possible_until.is_some_and(|until| until > since) {
        sim.hook_time.max(sim.config.hooks.timeout)
    } else {
        sim.hook_time
    }
}

/// What the invariants had to allow and what the runs reached, for long runs to
/// report.
#[derive(Debug, Default, Clone)]
pub struct Stats {
    /// Longest clean contact during which a pair still both held a VIP after a real
    /// separation, and the seed.
    pub overlap_in_contact: (Duration, u64),
    /// Longest stretch without a holder of every VIP while a takeover was expected,
    /// and the seed.
    pub unheld_while_expected: (Duration, u64),
    /// Real separations that ended with both nodes holding a VIP, resolved in contact.
    pub resolved_overlaps: u64,
    /// Steps at which two running daemons' kernels had a VIP while one was in a
    /// release that excuses it (see [`Sim::excused_release`]; the majority rule only).
    pub overlaps_in_release: u64,
    /// The most flap damping added to a takeover's wait while none held every VIP,
    /// and the seed.
    pub damped: (Duration, u64),
    /// How often each kind of transition and notable event happened.
    pub reached: BTreeMap<String, u64>,
}

impl Stats {
    /// Adds the stats of one run of `seed`.
    pub fn add(&mut self, run: &Stats, seed: u64) {
        if run.overlap_in_contact.0 > self.overlap_in_contact.0 {
            self.overlap_in_contact = (run.overlap_in_contact.0, seed);
        }
        if run.unheld_while_expected.0 > self.unheld_while_expected.0 {
            self.unheld_while_expected = (run.unheld_while_expected.0, seed);
        }
        if run.damped.0 > self.damped.0 {
            self.damped = (run.damped.0, seed);
        }
        self.resolved_overlaps += run.resolved_overlaps;
        self.overlaps_in_release += run.overlaps_in_release;
        for (what, n) in &run.reached {
            *self.reached.entry(what.clone()).or_default() += n;
        }
    }

    pub fn summary(&self, passed: usize) -> String {
        let mut out = format!(
            "{passed} seed(s) passed. Overlaps after a separation, resolved in contact: {}, \
             the longest after {:?} of clean contact (seed {}). Longest without a holder \
             while a takeover was expected: {:?} (seed {}). Majority rule: steps with \
             two running holders, one in an excused release: {}. Most flap damping added \
             to a wait for a holder: {:?} (seed {}).\nReached:",
            self.resolved_overlaps,
            self.overlap_in_contact.0,
            self.overlap_in_contact.1,
            self.unheld_while_expected.0,
            self.unheld_while_expected.1,
            self.overlaps_in_release,
            self.damped.0,
            self.damped.1,
        );
        for (what, n) in &self.reached {
            out.push_str(&format!(" {what} {n},"));
        }
        out.pop();
        out
    }
}

/// What one pair of nodes looked like at the last check.
#[derive(Debug, Clone, Copy, Default)]
struct Pair {
    apart: bool,
    clean: bool,
    /// When the pair was last apart, if ever.
    apart_until: Option<Instant>,
    /// Clean contact since then.
    clean_contact: Duration,
    overlapping: bool,
}

/// The state the invariants carry from one step to the next.
#[derive(Debug, Default)]
pub struct Watch {
    pairs: BTreeMap<(usize, usize), Pair>,
    last: Option<Instant>,
    expected_since: Option<Instant>,
    unheld_since: Option<Instant>,
    blocked: Option<String>,
    /// The most that flap damping added to `dead` on any running node since the
    /// cluster last had a holder of every VIP.
    damped: Duration,
    /// When each node's waiting handover (see `Machine::handing_over`) began.
    handovers: BTreeMap<usize, Instant>,
    pub stats: Stats,
}

impl Watch {
    /// Checks every invariant at `sim.now`; the error says which broke and why.
    pub fn check(&mut self, sim: &Sim) -> Result<(), String> {
        let now = sim.now;
        let elapsed = self.last.map_or(Duration::ZERO, |l| now - l);
        self.last = Some(now);
        check_nodes(sim)?;
        self.check_handovers(sim)?;
        self.check_safety(sim, elapsed)?;
        self.check_one_holder(sim)?;
        self.check_liveness(sim)
    }

    /// An operator's handover waiting for a quiet standby ends: the standby
    /// answers within a round trip, or is counted dead `dead` + `standby_interval`
    /// − `interval` after its last heartbeat, or, restarted, becomes a standby
    /// within `init_dead`. A pause of the holder stops its clock, not the bound's.
    fn check_handovers(&mut self, sim: &Sim) -> Result<(), String> {
        let t = &sim.config.timing;
        let bound = t.dead + t.standby_interval + t.init_dead + t.interval * 4;
        for (i, node) in sim.nodes.iter().enumerate() {
            let waiting = node.machine.as_ref().is_some_and(|m| m.handing_over());
            if !waiting {
                self.handovers.remove(&i);
                continue;
            }
            let since = *self.handovers.entry(i).or_insert_with(|| {
                *self
                    .stats
                    .reached
                    .entry("handover_waited".into())
                    .or_default() += 1;
                sim.now
            });
            let paused = match node.last_pause {
                Some((from, to)) if to >= since => to - from.max(since),
                _ => Duration::ZERO,
            };
            if node.paused || sim.now - since <= bound + paused {
                continue;
            }
            return Err(format!(
                "{} has waited {:?} to hand over, longer than {bound:?}",
                sim.name(i),
                sim.now - since
            ));
        }
        Ok(())
    }

    fn check_safety(&mut self, sim: &Sim, elapsed: Duration) -> Result<(), String> {
        let t = &sim.config.timing;
        let n = sim.nodes.len();
        for a in 0..n {
            for b in a + 1..n {
                let apart = sim.apart(a, b);
                let clean = sim.clean(a, b);
                let pair = self.pairs.entry((a, b)).or_default();
                if apart {
                    pair.apart_until = Some(sim.now);
                    pair.clean_contact = Duration::ZERO;
                } else if pair.clean && clean {
                    pair.clean_contact += elapsed;
                }
                pair.apart = apart;
                pair.clean = clean;
            }
        }
        let mut overlapping = BTreeSet::new();
        for v in 0..sim.config.vips.len() {
            let holders = sim.holders_of(v);
            for (x, &a) in holders.iter().enumerate() {
                for &b in &holders[x + 1..] {
                    overlapping.insert((a, b));
                    let pair = self.pairs[&(a, b)];
                    if pair.apart {
                        continue;
                    }
                    let Some(since) = pair.apart_until else {
                        return Err(format!(
                            "VIP {} is on {} and on {}, which have never been apart",
                            sim.config.vips[v].address,
                            sim.name(a),
                            sim.name(b),
                        ));
                    };
                    let bound = resolve_bound(t, hook_max(sim, since));
                    if pair.clean_contact >= bound {
                        return Err(format!(
                            "VIP {} is on {} and on {}, which are in contact and have \
                             been for longer than the resolve bound {bound:?} since they \
                             were last apart, at {:?}",
                            sim.config.vips[v].address,
                            sim.name(a),
                            sim.name(b),
                            since - sim.base,
                        ));
                    }
                    if pair.clean_contact > self.stats.overlap_in_contact.0 {
                        self.stats.overlap_in_contact = (pair.clean_contact, sim.seed);
                    }
                }
            }
        }
        for (key, pair) in &mut self.pairs {
            let now = overlapping.contains(key);
            if pair.overlapping && !now && !pair.apart {
                self.stats.resolved_overlaps += 1;
            }
            pair.overlapping = now;
        }
        Ok(())
    }

    /// The majority rule's promise (three voters or more): never two holders of a VIP
    /// among the nodes whose daemons run and are not paused, whatever the network
    /// does, outside a planned move's release step. A holder that can no longer
    /// count on a majority lets go before any other can form one (see
    /// src/machine/quorum.rs); what is left is
    ///
    /// - a release under way that [`Sim::excused_release`] excuses: a planned move's,
    ///   or the one of a holder that resumed after a pause and found its majority
    ///   gone, whose removal may wait behind a hook that was running when it stopped;
    /// - a kernel that has VIPs a killed daemon left and that the daemon started since
    ///   has not dealt with yet: `stale_kernel`, or a daemon that is not active. A
    ///   daemon adds VIPs only as the active node, so what the kernel of a starting or
    ///   standby one has, it found at start; it keeps that only until it has heard the
    ///   cluster, and then removes it or adopts it (active). The `stolen` and
    ///   [`Sim::left_behind`] rules cover that kernel, as they cover a paused daemon's.
    fn check_one_holder(&mut self, sim: &Sim) -> Result<(), String> {
        if !sim.config.majority_rule() {
            return Ok(());
        }
        let running = |i: usize| {
            sim.live(i) && !sim.nodes[i].stale_kernel && sim.machine(i).role() == Role::Active
        };
        for v in 0..sim.config.vips.len() {
            let holders: Vec<usize> = sim
                .holders_of(v)
                .into_iter()
                .filter(|&i| running(i))
                .collect();
            for (x, &a) in holders.iter().enumerate() {
                for &b in &holders[x + 1..] {
                    if sim.excused_release(a) || sim.excused_release(b) {
                        self.stats.overlaps_in_release += 1;
                        continue;
                    }
                    return Err(format!(
                        "VIP {} is on {} and on {}, whose daemons both run, neither in a \
                         planned move's release step: the majority rule allows one holder",
                        sim.config.vips[v].address,
                        sim.name(a),
                        sim.name(b),
                    ));
                }
            }
        }
        Ok(())
    }

    fn check_liveness(&mut self, sim: &Sim) -> Result<(), String> {
        let now = sim.now;
        self.blocked = takeover_blocked(sim);
        if self.blocked.is_some() {
            self.expected_since = None;
        } else {
            self.expected_since.get_or_insert(now);
        }
        if sim.holder_of_every_vip().is_some() {
            self.unheld_since = None;
            self.damped = Duration::ZERO;
        } else {
            self.unheld_since.get_or_insert(now);
            let dead = sim.config.timing.dead;
            for node in sim.nodes.iter().filter(|n| !n.paused) {
                let Some(d) = node.machine.as_ref().map(Machine::damping) else {
                    continue;
                };
                if d.flapping {
                    self.damped = self.damped.max(d.silence.saturating_sub(dead));
                }
            }
            if self.damped > self.stats.damped.0 {
                self.stats.damped = (self.damped, sim.seed);
            }
        }
        let (Some(expected), Some(unheld)) = (self.expected_since, self.unheld_since) else {
            return Ok(());
        };
        let waited = now - expected.max(unheld);
        if waited > self.stats.unheld_while_expected.0 {
            self.stats.unheld_while_expected = (waited, sim.seed);
        }
        let bound = takeover_bound(&sim.config, hook_max(sim, expected.max(unheld))) + self.damped;
        if waited > bound {
            return Err(format!(
                "no running node has held every VIP for {waited:?} while a takeover was \
                 expected (bound {bound:?}, of which flap damping {:?})",
                self.damped
            ));
        }
        Ok(())
    }

    /// What the invariants see now, for the failure report.
    pub fn describe(&self, sim: &Sim) -> String {
        let show = |d: Duration| {
            if d == Duration::MAX {
                "never".to_string()
            } else {
                format!("{d:?}")
            }
        };
        let mut out = String::from("watch:\n");
        for (&(a, b), pair) in &self.pairs {
            out.push_str(&format!(
                "  {}-{}: last heard {} / {} ago, {}{}, last apart at {:?}, clean contact \
                 since {:?}\n",
                sim.name(a),
                sim.name(b),
                show(sim.gap(a, b)),
                show(sim.gap(b, a)),
                if pair.apart { "apart" } else { "in contact" },
                if pair.clean { ", clean" } else { "" },
                pair.apart_until.map(|t| t - sim.base),
                pair.clean_contact,
            ));
        }
        let since = |t: Option<Instant>| t.map(|t| format!("{:?}", t - sim.base));
        match &self.blocked {
            Some(why) => out.push_str(&format!("  no takeover expected: {why}\n")),
            None => out.push_str(&format!(
                "  takeover expected since {:?}; no holder of every VIP since {:?}\n",
                since(self.expected_since),
                since(self.unheld_since),
            )),
        }
        out
    }
}

/// What every node must do on its own, whatever the others do.
fn check_nodes(sim: &Sim) -> Result<(), String> {
    let interval = sim.config.timing.interval;
    let guarded =
        sim.config.split_brain.live_vip == LiveVip::Wait && sim.config.fencing.command.is_none();
    for (i, node) in sim.nodes.iter().enumerate() {
        // The split-brain guard: a VIP that a kernel with no daemon to release it
        // still answers for is never taken.
        if guarded && let Some(theft) = node.stolen.first() {
            return Err(theft.clone());
        }
        // A witness votes and holds nothing, ever.
        if sim.witness(i) {
            if node.vips.iter().any(|&on| on) {
                return Err(format!("{} is a witness and has a VIP", sim.name(i)));
            }
            if let Some(m) = &node.machine
                && (m.role() != Role::Witness || !m.held_vips().is_empty())
            {
                return Err(format!(
                    "{} is a witness and is {} holding {:?}",
                    sim.name(i),
                    m.role(),
                    m.held_vips()
                ));
            }
        }
        let Some(m) = &node.machine else { continue };
        // Flap damping lengthens the silence an unplanned takeover waits for, never
        // beyond its cap, and not at all when turned off.
        let (dead, damping) = (sim.config.timing.dead, &sim.config.damping);
        let d = m.damping();
        if d.flapping && (!damping.enabled || d.silence > damping.max_silence.max(dead)) {
            return Err(format!(
                "{} flaps and waits for {:?} of silence before an unplanned takeover, with \
                 damping {} and a cap of {:?}",
                sim.name(i),
                d.silence,
                if damping.enabled { "on" } else { "off" },
                damping.max_silence,
            ));
        }
        for vip in m.held_vips() {
            let v = sim
                .config
                .vips
                .iter()
                .position(|c| c.address == vip.address);
            if !v.is_some_and(|v| node.vips[v]) {
                return Err(format!(
                    "{} counts {vip} as held but its kernel does not have it",
                    sim.name(i)
                ));
            }
        }
        if node.paused || sim.now - node.awake_since < interval {
            continue;
        }
        for peer in (0..sim.nodes.len()).filter(|&p| p != i) {
            // Only the links both are on: a witness is on the LAN only.
            for link in (0..sim.config.links.len()).filter(|&l| sim.on_link(i, peer, l)) {
                let last = node.last_sent.get(&(peer, link));
                // A node that answers its peer's heartbeats in the same wake-up then
                // expects the next a sixteenth of an interval later (`answer_early`);
                // a quiet standby said its next may take `standby_interval`.
                let pace = if node.sent_quiet.get(&(peer, link)) == Some(&true) {
                    sim.config.timing.standby_interval
                } else {
                    interval
                };
                if last.is_none_or(|&t| sim.now - t > pace + interval / 16) {
                    return Err(format!(
                        "{} has sent nothing to {} on link {link} for more than an interval",
                        sim.name(i),
                        sim.name(peer)
                    ));
                }
            }
        }
    }
    Ok(())
}

impl Sim {
    /// The pair cannot be held to "never two holders" now, because the two cannot reach
    /// each other: every link is down in one direction at least (a cut, a partition,
    /// an isolation, a loss burst), one of them is paused, or nothing from one has
    /// reached the other for a [`real_separation`] (all of those, and a run of random
    /// losses or a dead daemon, show up so); or one of them has VIPs in its kernel that
    /// a killed daemon left and no daemon has dealt with yet. A pair cut off for less
    /// than `dead` can still end up with two holders: both may declare a third node
    /// dead, each without hearing that the other took over.
    pub fn apart(&self, a: usize, b: usize) -> bool {
        let separation = real_separation(&self.config.timing);
        self.gap(a, b) >= separation
            || self.gap(b, a) >= separation
            || !self.path_open(a, b)
            || !self.path_open(b, a)
            || self.nodes[a].paused
            || self.nodes[b].paused
            || self.nodes[a].stale_kernel
            || self.nodes[b].stale_kernel
    }

    /// Node i is releasing the VIPs in a way that excuses a second holder while it
    /// does: a planned move's release step (an order, a failback, a health move, the
    /// lower-ranked of two holders backing off), or the release of a holder whose
    /// majority ran out while it was paused (`majority_lost`, begun within an
    /// interval of its resume: the others could take over meanwhile, and its removal
    /// may wait behind a hook that was running when it stopped). Not a
    /// `majority_lost` release of a node that ran all along: it must let go before the
    /// others can take over, so a second holder meanwhile means it let go too late.
    pub fn excused_release(&self, i: usize) -> bool {
        let node = &self.nodes[i];
        if !node.machine.as_ref().is_some_and(Machine::releasing) {
            return false;
        }
        let Some((began, why)) = node.events.iter().rev().find_map(|(t, e)| match e {
            Event::Releasing { reason } => Some((self.base + *t, reason.kind())),
            _ => None,
        }) else {
            return true;
        };
        let after_pause = node.last_pause.is_some_and(|(_, resumed)| {
            began >= resumed && began - resumed <= self.config.timing.interval
        });
        why != "majority_lost" || after_pause
    }

    /// Datagrams have reached each of the two from the other within [`clean_gap`].
    pub fn clean(&self, a: usize, b: usize) -> bool {
        let gap = clean_gap(&self.config.timing, Duration::from_millis(self.delay.1));
        self.gap(a, b) < gap && self.gap(b, a) < gap
    }
}
