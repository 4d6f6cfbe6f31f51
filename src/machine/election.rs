//! One election: who among the live nodes holds a set of VIPs, and the rules that
//! move them.
//!
//! `Election` holds what belongs to the election rather than to the node: the role,
//! the data only that role has (`Phase`), the state of each VIP, and the operator's
//! standing request. The rules are methods of the machine, because they read the
//! node's peers, health and timers; each role change goes through
//! `Machine::transition`, which logs from, to and why.

use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};

use super::effects::{Retired, Unremoved};
use super::guard::{Guard, Verdict};
use super::health::{Kind, Run};
use super::rank::Rank;
use super::timer::Timer;
use super::{Action, Effect, EffectId, Event, Hook, Lapse, Machine, Reason, Role};
use crate::config::{OnAdopt, StartFailure};

/// Where the daemon is in its life; the same for every election it takes part in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Lifecycle {
    Running,
    /// Asked to leave (SIGTERM): releasing whatever it holds, then saying goodbye.
    Stopping,
    /// The farewell went out; the machine does nothing more.
    Exited,
}

/// The role this node plays in an election, with what only makes sense in it.
#[derive(Debug, Clone)]
pub(super) enum Phase {
    /// Listening for peers before claiming anything (the `HeardBack` and
    /// `InitDead` timers bound the wait).
    Starting,
    Standby,
    Fault,
    /// A witness's only phase: it votes and holds nothing.
    Witness,
    Active(Active),
    /// Handing the VIPs back: stop hook, then removal. Peers see the role it is
    /// leaving, flagged "releasing", until the last effect completes.
    Releasing(Release),
    /// About to take the VIPs: peers see "active, claiming", and the node adds
    /// nothing until every peer that might claim too has echoed the claim (or the
    /// handshake wait is over). Locally it keeps the role it had.
    Claiming(Claim),
}

impl Phase {
    pub(super) fn role(&self) -> Role {
        match self {
            Phase::Starting => Role::Starting,
            Phase::Standby => Role::Standby,
            Phase::Fault => Role::Fault,
            Phase::Witness => Role::Witness,
            Phase::Active(_) => Role::Active,
            Phase::Releasing(release) => release.from,
            Phase::Claiming(claim) => claim.from,
        }
    }

    /// The plain phase of a role that has no data of its own.
    pub(super) fn from_role(role: Role) -> Phase {
        match role {
            Role::Starting => Phase::Starting,
            Role::Fault => Phase::Fault,
            Role::Witness => Phase::Witness,
            Role::Standby | Role::Active => Phase::Standby,
        }
    }
}

/// A takeover waiting for its confirmations.
///
/// Candidates elect by the ranks they last heard. When a rank change is on its way
/// (a takeover request, a health change) to one of them, two may each believe they
/// rank first and both take the VIPs. So a node that may have a rival first says it
/// claims, with a fresh nonce, and waits until each rival has answered with a
/// heartbeat that echoes it: by then each rival has seen the claim, and a rival that
/// outranks the claimer (and claims too) makes it withdraw, while one that does not
/// defers to it. Peers answer a claim at once, so this costs one round trip. A node
/// with no rival (its peer dead, or the peer that just released) takes over at once.
#[derive(Debug, Clone)]
pub(super) struct Claim {
    pub from: Role,
    pub reason: Reason,
    /// The epoch of this node's nonce when it claimed (a fresh one): a rival's echo
    /// of it, or of a later one, confirms.
    pub epoch: u64,
    /// Rivals (peer indexes) that have not echoed the claim yet.
    pub waiting: Vec<usize>,
}

/// What only an active node has.
#[derive(Debug, Clone, Default)]
pub(super) struct Active {
    /// When the takeover began, while it waits for every VIP before running the
    /// start hook; `None` once the hook has run (or for VIPs adopted in maintenance).
    pub starting_service: Option<Instant>,
    /// Active by an operator's takeover: automatic failback leaves it alone.
    pub pinned: bool,
    /// The preferred peer automatic failback is waiting for.
    pub failback: Option<FailbackWait>,
    /// When the service came up (the start hook finished): active-only checks count
    /// from then, after their start grace.
    pub service_up: Option<Instant>,
    /// An operator's handover waiting for a standby that beats every interval.
    pub handover: Option<Handover>,
}

/// An operator's handover (`failoverd standby`, or `failback` on the holder) that
/// waits to release until a standby that can take the VIPs beats every interval.
///
/// A quiet standby (see `pace`) may have died up to `standby_interval` before this
/// node would count it dead: releasing to it then would leave the VIPs on no node
/// until this node took them back. So the holder first asks the quiet standby to
/// wake ([`Heartbeat::wake`](crate::wire::heartbeat::Heartbeat::wake)); a live one
/// answers within a round trip and the release follows, and if none is left alive
/// the order lapses, with the VIPs where they are.
#[derive(Debug, Clone)]
pub(super) struct Handover {
    /// The node the VIPs go to (failback), or `None` for any that can take them.
    pub to: Option<String>,
    pub reason: Reason,
    /// When the order came, for the status.
    pub since: Instant,
}

/// Who could take the VIPs from this node now; see [`Machine::takers`].
#[derive(Debug, Clone, Copy, Default)]
pub(super) struct Takers {
    /// A node could take them.
    pub any: bool,
    /// One of them is a standby that beats every interval: a release now is taken
    /// within a round trip.
    pub awake: bool,
}

impl Takers {
    /// A release now could go to a node that died unnoticed (every taker is quiet,
    /// or still starting): an operator's handover waits for one to wake.
    pub fn asleep(self) -> bool {
        self.any && !self.awake
    }
}

#[derive(Debug, Clone, Copy)]
pub(super) struct FailbackWait {
    pub peer: usize,
    pub since: Instant,
}

/// Where a release ends, unless the daemon is stopping (then it ends in the exit).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum After {
    Standby,
    Fault,
}

#[derive(Debug, Clone)]
pub(super) struct Release {
    pub from: Role,
    pub after: After,
    pub reason: Reason,
    /// The last effect of the release; its completion ends the release, once no
    /// VIP is still being removed (removals beside the queue may finish later).
    pub last: Option<EffectId>,
    pub last_done: bool,
    /// The majority ran out during the release: its VIPs were removed beside the
    /// queue, without waiting for the stop hook before them.
    pub withdrawn: bool,
}

/// An operator's standing request on this node.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Request {
    /// `failoverd takeover` (or failback on the preferred node), until active.
    Takeover,
    /// `failoverd standby`: keep out while another node can hold the VIPs.
    Standby,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum VipState {
    Absent,
    Adding(EffectId),
    Held,
    Removing(EffectId),
    Failed {
        retry_at: Instant,
    },
    /// A removal failed: the VIP may still be in the kernel, so it does not count
    /// as gone until a later try succeeds (see `effects`).
    Unremoved(Unremoved),
}

#[derive(Debug)]
pub(super) struct Election {
    pub phase: Phase,
    pub previous: Role,
    pub since: Instant,
    pub reason: Reason,
    /// The state of each VIP, indexed like the settings' VIPs.
    pub vips: Vec<VipState>,
    pub request: Option<Request>,
    /// Why the next takeover happens, learned when the holder went away.
    pub takeover_reason: Option<Reason>,
    /// The start-up check for VIPs left by a crash, until answered.
    pub stale_probe: Option<EffectId>,
    /// The probe that VIP adds to try again wait for, and the VIPs it asks about
    /// (see `retry_vips`).
    pub add_probe: Option<(u64, Vec<usize>)>,
    pub hooks_running: BTreeMap<EffectId, Hook>,
    /// Removals under way beside the queue ([`Action::Withdraw`]): a failed one is
    /// tried again the same way.
    pub withdrawals: BTreeSet<EffectId>,
    /// VIPs a reload took out of the file while on this node, until removed.
    pub retired: Vec<Retired>,
    pub last_takeover: Option<Duration>,
    pub transitions: BTreeMap<(Role, &'static str), u64>,
    /// What guards an unplanned takeover (see `guard`).
    pub guard: Guard,
    /// Other hosts seen claiming a VIP while this node held it.
    pub conflicts: u64,
    /// When a conflict was last answered with an announcement.
    pub conflict_answered: Option<Instant>,
}

impl Election {
    pub(super) fn new(vips: usize, peers: usize, witness: bool, now: Instant) -> Election {
        Election {
            phase: if witness {
                Phase::Witness
            } else {
                Phase::Starting
            },
            previous: Role::Starting,
            since: now,
            reason: Reason::Start,
            vips: vec![VipState::Absent; vips],
            request: None,
            takeover_reason: None,
            stale_probe: None,
            add_probe: None,
            hooks_running: BTreeMap::new(),
            withdrawals: BTreeSet::new(),
            retired: Vec::new(),
            last_takeover: None,
            transitions: BTreeMap::new(),
            guard: Guard::new(peers),
            conflicts: 0,
            conflict_answered: None,
        }
    }

    pub(super) fn role(&self) -> Role {
        self.phase.role()
    }
}

impl Machine {
    pub(super) fn evaluate(&mut self, now: Instant) {
        if self.lifecycle != Lifecycle::Running || self.releasing() {
            return;
        }
        if let Some(by) = self.frozen_by() {
            // No automatic move in maintenance: a claim under way is withdrawn, and
            // an operator's handover still waiting for its standby is dropped.
            self.withdraw_claim(now, Reason::Maintenance { by: by.clone() });
            self.drop_handover(Lapse::Frozen { by: by.clone() });
            return self.evaluate_frozen(now, by);
        }
        if matches!(self.election.phase, Phase::Claiming(_)) {
            return self.pursue_claim(now);
        }
        match self.role() {
            Role::Starting => {
                if let Some(holder) = self.peers.iter().find(|p| p.holds()) {
                    let peer = holder.name.clone();
                    return self.transition(now, Phase::Standby, Reason::PeerActive { peer });
                }
                // Hearing every peer ends the wait early, but not before our own
                // "starting" heartbeats have had time to reach them (see
                // `Settings::heard_back`).
                // Whether VIPs were left on this node decides what it does next.
                if self.election.stale_probe.is_some() && self.timers.pending(Timer::InitDead, now)
                {
                    return;
                }
                let all_heard = self.peers.iter().all(|p| p.alive || p.leaving);
                let heard_back = all_heard && !self.timers.pending(Timer::HeardBack, now);
                if !heard_back && self.timers.pending(Timer::InitDead, now) {
                    return;
                }
                // A restarted holder's voters back it again only `dead` after they
                // last said they did not hear it (see `quorum`): the VIPs it found
                // wait for that within the start wait, rather than go and come back.
                if self.adopting()
                    && self.majority_hold().is_some()
                    && self.timers.pending(Timer::InitDead, now)
                {
                    return;
                }
                let reason = if self.peers.iter().any(|p| p.present()) {
                    Reason::Elected
                } else {
                    Reason::NoPeerAtStart
                };
                self.settle(now, reason);
            }
            Role::Standby | Role::Fault => self.settle(now, Reason::Elected),
            Role::Active => self.keep_or_release(now),
            Role::Witness => {}
        }
    }

    /// Maintenance: nothing moves automatically. A starting node still has to say
    /// what it is; it holds nothing (or, in its own maintenance, adopted what it
    /// found).
    fn evaluate_frozen(&mut self, now: Instant, by: String) {
        if self.role() == Role::Starting && !self.timers.pending(Timer::HeardBack, now) {
            self.transition(now, Phase::Standby, Reason::Maintenance { by });
        }
        // An operator stopped the holder: taking over is the answer to a deliberate
        // act, not an automatic move, so maintenance allows it. It takes no claim
        // (maintenance withdraws claims), so only the first of every candidate goes,
        // held or not: two nodes that each passed over the other's hold would both
        // take the VIPs once the hold lifts.
        let left = matches!(self.election.takeover_reason, Some(Reason::PeerLeft { .. }));
        if left
            && matches!(self.role(), Role::Standby | Role::Fault)
            && !self.peers.iter().any(|p| p.holds())
            && self.ranks_first_of_every_candidate()
        {
            // Two nodes that both heard the farewell may not hear each other: the
            // majority rule decides in maintenance too.
            match self.majority_verdict(now) {
                None => {}
                Some(Verdict::Hold(hold)) => return self.hold_takeover(now, hold),
                Some(_) => return,
            }
            let reason = self
                .election
                .takeover_reason
                .take()
                .unwrap_or(Reason::Elected);
            return self.become_active(now, reason);
        }
        // Two holders is never left alone, maintenance or not: resolving it is a
        // safety action, not an automatic move. A node that resumed after a stall
        // backs off as it would outside maintenance, for the same reason.
        if self.role() == Role::Active && !self.releasing() {
            if let Some(reason) = self.majority_lost(now) {
                return self.start_release(now, After::Standby, reason);
            }
            if let Some(peer) = self.stalled_behind() {
                return self.start_release(now, After::Standby, Reason::ResumedAfterStall { peer });
            }
            if let Some(peer) = self.outranking_holder() {
                self.start_release(now, After::Standby, Reason::PeerOutranks { peer });
            }
        }
    }

    /// A node that holds nothing: fault, standby, or take over.
    fn settle(&mut self, now: Instant, default_reason: Reason) {
        if let Some(peer) = self.healthier_peer(now) {
            self.release_hold();
            if self.role() != Role::Fault {
                let reason = self.health_lost(peer);
                self.transition(now, Phase::Fault, reason);
                self.run_hook(Hook::Fault);
            }
            return;
        }
        let recovered = match (self.health.score(), self.health.failed_check()) {
            // Passing, as far as a standby can tell: the check that failed runs only
            // on the active node, and its failure still keeps this node back.
            (0, Some(check)) => Reason::FailedWhileActive {
                check: check.to_string(),
            },
            (0, None) => Reason::HealthRestored,
            _ => Reason::NoHealthierPeer,
        };
        if let Some(holder) = self.peers.iter().position(|p| p.holds()) {
            self.release_hold();
            // Someone holds the VIPs: whatever release this node was answering has
            // been answered.
            self.election.takeover_reason = None;
            match self.role() {
                Role::Fault => self.transition(now, Phase::Standby, recovered),
                Role::Starting => {
                    // Named only here: a standby passes this way on every input.
                    let peer = self.peers[holder].name.clone();
                    self.transition(now, Phase::Standby, Reason::PeerActive { peer });
                }
                _ => {}
            }
            return;
        }
        // The VIPs found at start stay where clients find them, unless an operator
        // asked another node to take over, or a peer that found them too (two
        // daemons restarted after a split) ranks first (see `Reason::Adopted`).
        if self.adopting()
            && !self.peers.iter().any(|p| p.present() && p.takeover)
            && !self.outranked_by_a_starting_peer()
            && self.majority_hold().is_none()
        {
            self.release_hold();
            return self.become_active(now, Reason::Adopted);
        }
        if self.ranks_first() && !self.just_released() && !self.listening(now) {
            // Only a holder that said it let go makes room for a takeover at once;
            // anything else must get past the split-brain guard.
            let planned = self.planned();
            // A flapping node waits out a longer silence before the guard runs: a
            // fence must not answer a silence that ends on its own.
            if !planned && self.damped(now) {
                return;
            }
            let verdict = if planned {
                self.majority_verdict(now).unwrap_or(Verdict::Go)
            } else {
                self.guard_verdict(now)
            };
            match verdict {
                Verdict::Go => {}
                Verdict::Wait => return,
                Verdict::Hold(hold) => return self.hold_takeover(now, hold),
            }
            self.release_hold();
            let reason = if self.election.request == Some(Request::Takeover) {
                self.election.takeover_reason = None;
                Reason::OperatorTakeover
            } else {
                self.election
                    .takeover_reason
                    .take()
                    .unwrap_or(default_reason)
            };
            return self.claim(now, reason);
        }
        if self.first_ranked_peer().is_some() {
            // Not this node's takeover to hold any more.
            self.release_hold();
        }
        match self.role() {
            Role::Fault => self.transition(now, Phase::Standby, recovered),
            Role::Starting => {
                let reason = match self.first_ranked_peer() {
                    Some(peer) => Reason::PeerRanksFirst { peer },
                    None => default_reason,
                };
                self.transition(now, Phase::Standby, reason);
            }
            _ => {}
        }
    }

    fn keep_or_release(&mut self, now: Instant) {
        if let Some(reason) = self.majority_lost(now) {
            return self.start_release(now, After::Standby, reason);
        }
        if let Some(peer) = self.healthier_peer(now) {
            let reason = self.health_lost(peer);
            return self.start_release(now, After::Fault, reason);
        }
        if let Some(peer) = self.stalled_behind() {
            return self.start_release(now, After::Standby, Reason::ResumedAfterStall { peer });
        }
        let requested = self
            .peers
            .iter()
            .find(|p| p.present() && p.takeover && p.role != Role::Fault)
            .map(|p| p.name.clone());
        if let Some(peer) = requested {
            return self.start_release(now, After::Standby, Reason::TakeoverRequested { peer });
        }
        if let Some(peer) = self.outranking_holder() {
            return self.start_release(now, After::Standby, Reason::PeerOutranks { peer });
        }
        if self.pursue_handover(now) {
            return;
        }
        self.consider_failback(now);
    }

    /// Begins the operator's handover (see [`Handover`]): at once if a standby that
    /// can take the VIPs beats every interval, or once one does.
    pub(super) fn hand_over(&mut self, now: Instant, handover: Handover) {
        if let Phase::Active(active) = &mut self.election.phase {
            active.handover = Some(handover);
        }
        if !self.pursue_handover(now) && self.handing_over() {
            // Carries the wake-up; the regular heartbeats repeat it.
            self.heartbeat();
        }
    }

    /// Whether a waiting handover went ahead (the release began). One that can no
    /// longer go where it was meant to lapses, with an event.
    fn pursue_handover(&mut self, now: Instant) -> bool {
        let Phase::Active(Active {
            handover: Some(handover),
            ..
        }) = &self.election.phase
        else {
            return false;
        };
        let (to, reason) = (handover.to.clone(), handover.reason.clone());
        let takers = self.takers(to.as_deref());
        if !takers.any {
            self.drop_handover(Lapse::NoTaker);
            return false;
        }
        // A failback is for the preferred node: a change of ranks while it waited
        // (a reload, a health or priority change) ends it.
        if let Some(to) = &to {
            let preferred = self.preferred_node();
            if preferred != *to {
                self.drop_handover(Lapse::NotPreferred { preferred });
                return false;
            }
        }
        if takers.awake {
            self.start_release(now, After::Standby, reason);
            return true;
        }
        false
    }

    /// The peers that could take the VIPs from this node, toward `to` only when
    /// given: a standby, or a node starting again that will be one (waited for: it
    /// beats every interval until then), but not one asked to stand by. The one
    /// rule for an operator's order and for the handover that waits on it.
    pub(super) fn takers(&self, to: Option<&str>) -> Takers {
        let mut takers = Takers::default();
        for p in &self.peers {
            let taker = p.present()
                && !p.witness
                && !p.standby
                && matches!(p.role, Role::Standby | Role::Starting)
                && to.is_none_or(|to| to == p.name);
            takers.any |= taker;
            takers.awake |= taker && p.role == Role::Standby && !p.quiet;
        }
        takers
    }

    /// Ends a waiting handover without a release, and the standing standby request
    /// that came with it (an active node has no other): the VIPs stay, and the
    /// status says nothing is asked.
    fn drop_handover(&mut self, why: Lapse) {
        let Phase::Active(active) = &mut self.election.phase else {
            return;
        };
        let Some(handover) = active.handover.take() else {
            return;
        };
        if self.election.request == Some(Request::Standby) {
            self.election.request = None;
        }
        self.events.push(Event::HandoverLapsed {
            reason: handover.reason,
            why,
        });
        // The peers learn at once that nothing is asked of them any more.
        self.heartbeat();
    }

    /// `failback = "auto"`: hands the VIPs to the preferred node (the first by
    /// [`Rank`]) once it has been up and standing by for `failback_delay` without a
    /// break. Its restart or death starts the wait over, so a node that keeps
    /// restarting never pulls the VIPs after it. Only a higher priority is worth an
    /// automatic move: between equal priorities the name decides who takes over
    /// when nobody holds the VIPs, but it never moves them by itself.
    fn consider_failback(&mut self, now: Instant) {
        let candidate = self.preferred_peer().filter(|&i| {
            let peer = &self.peers[i];
            peer.role == Role::Standby
                && !peer.quiet
                && !peer.maintenance
                && peer.priority > self.settings.priority
        });
        let auto = self.settings.failback == crate::config::Failback::Auto;
        let delay = self.settings.failback_delay;
        let Phase::Active(active) = &mut self.election.phase else {
            return;
        };
        let wait = match candidate {
            Some(peer) if auto && !active.pinned => {
                let up_since = self.peers[peer].up_since;
                let since = match active.failback {
                    Some(w) if w.peer == peer && up_since.is_some_and(|u| u <= w.since) => w.since,
                    _ => now,
                };
                Some(FailbackWait { peer, since })
            }
            _ => None,
        };
        active.failback = wait;
        let Some(wait) = wait else {
            self.timers.stop(Timer::Failback);
            return;
        };
        if now.saturating_duration_since(wait.since) >= delay {
            let peer = self.peers[wait.peer].name.clone();
            self.start_release(now, After::Standby, Reason::Failback { peer });
        } else {
            self.timers.set(Timer::Failback, wait.since + delay);
        }
    }

    /// With the majority rule, a holder whose majority ran out lets go: the others
    /// may form one without it and take the VIPs (see `quorum`).
    fn majority_lost(&self, now: Instant) -> Option<Reason> {
        if self.majority_holds(now) {
            return None;
        }
        Some(Reason::MajorityLost {
            heard: self.voters_heard(now),
            voters: self.settings.voters,
        })
    }

    /// Arms the moment the holder's majority runs out, while it holds the VIPs: as
    /// the active node, and during a release until its VIPs are gone (a stop hook
    /// that takes its time runs before the removal).
    pub(super) fn tend_majority(&mut self, now: Instant) {
        let has_vips = self.election.vips.iter().any(|s| *s != VipState::Absent);
        let holding = self.settings.majority_rule()
            && self.lifecycle != Lifecycle::Exited
            && match &self.election.phase {
                Phase::Active(_) => true,
                Phase::Releasing(release) => !release.withdrawn && has_vips,
                _ => false,
            };
        let until = holding
            .then(|| self.majority_until())
            .flatten()
            .filter(|at| *at > now);
        self.timers.set_or_stop(Timer::Majority, until);
    }

    /// The majority ran out while a release was still running its stop hook: the
    /// VIPs go now, beside the queue. Each VIP waits for its withdrawal from then on
    /// (tried again until it works); the removals queued behind the hook find the
    /// VIPs gone, and only end the queue's part of the release.
    pub(super) fn withdraw_in_release(&mut self, now: Instant) {
        if self.majority_holds(now) {
            return;
        }
        let Phase::Releasing(release) = &mut self.election.phase else {
            return;
        };
        if release.withdrawn {
            return;
        }
        release.withdrawn = true;
        for i in 0..self.settings.vips.len() {
            if self.election.vips[i] != VipState::Absent {
                // Tracked from now on, so that a failed withdrawal is tried again
                // beside the queue rather than behind the stop hook.
                let id = self.withdraw(self.settings.vips[i].clone());
                self.election.vips[i] = VipState::Removing(id);
            }
        }
    }

    /// While this node yields after a stall: the peer that took over meanwhile.
    fn stalled_behind(&self) -> Option<String> {
        if !self.yielding() {
            return None;
        }
        self.peers
            .iter()
            .find(|p| p.holds() && !p.releasing && !p.leaving)
            .map(|p| p.name.clone())
    }

    /// An active peer that ranks above this node (and is not already backing off).
    pub(super) fn outranking_holder(&self) -> Option<String> {
        let me = self.rank();
        self.peers
            .iter()
            .find(|p| {
                p.holds()
                    && !p.claiming
                    && !p.releasing
                    && !p.leaving
                    && !p.yielding
                    && Rank::of_peer(p) > me
            })
            .map(|p| p.name.clone())
    }

    /// Whether a peer that is starting too, and so may have found the VIPs as well,
    /// ranks above this node: of two daemons restarted after a split, only the first
    /// adopts. A standby that ranks higher does not count: the VIPs stay where
    /// clients find them, as after an operator's move to this node.
    fn outranked_by_a_starting_peer(&self) -> bool {
        let me = self.rank();
        self.peers
            .iter()
            .any(|p| p.present() && !p.witness && p.role == Role::Starting && Rank::of_peer(p) > me)
    }

    /// Whether the takeover at hand answers a holder that said it let go, and still
    /// does: a release answered by another node, or a leaver that came back, makes
    /// any later takeover an unplanned one again.
    fn planned(&self) -> bool {
        let peer = |name: &str| self.peers.iter().find(|p| p.name == name);
        match &self.election.takeover_reason {
            // Heard on time: a releaser gone quiet may have taken the VIPs back
            // since (after its own majority came back) without this node hearing it.
            Some(Reason::PeerReleased { peer: name }) => {
                peer(name).is_some_and(|p| p.present() && p.on_time() && !p.holds())
            }
            Some(Reason::PeerLeft { peer: name }) => {
                peer(name).is_some_and(|p| p.leaving && !p.alive)
            }
            _ => false,
        }
    }

    /// A node that has just handed the VIPs over gives the peer the release grace to
    /// say it took them before it would claim them back.
    fn just_released(&self) -> bool {
        self.timers.pending(Timer::ReleaseGrace, self.now_hint)
            && self.peers.iter().any(|p| p.present() && !p.witness)
    }

    /// Whether this node is still within its start wait with a peer it has not
    /// heard: a node that left `starting` early, because it found a holder, takes
    /// nothing before `init_dead` either, for a peer it has not heard yet may hold
    /// the VIPs too (the holder it found may be handing them over to it).
    fn listening(&self, now: Instant) -> bool {
        self.timers.pending(Timer::InitDead, now)
            && self.peers.iter().any(|p| p.incarnation.is_none())
    }

    /// A live, settled peer that is healthier than this node (a lower score) and may
    /// hold the VIPs (no sticky failure). Each loss counts only once its own grace is
    /// over (see `health::Spec::grace`).
    fn healthier_peer(&self, now: Instant) -> Option<String> {
        let mine = self.health.settled_score(now);
        self.peers
            .iter()
            .filter(|p| p.present() && matches!(p.role, Role::Standby | Role::Active))
            // A peer whose takeover is held cannot have the VIPs; one that can only
            // fail its checks is better than none.
            .filter(|p| !p.held())
            // A quiet standby may have died up to `standby_interval` ago unnoticed:
            // it stops being quiet once it hears this node's health, and the move
            // waits for that heartbeat (see `pace`).
            .filter(|p| !p.quiet)
            .filter(|p| !p.failed && p.health < mine)
            .min_by_key(|p| p.health)
            .map(|p| p.name.clone())
    }

    /// Why this node lets a healthier peer have the VIPs, naming the check that
    /// weighs most.
    fn health_lost(&self, peer: String) -> Reason {
        let check = self
            .health
            .worst()
            .map_or_else(String::new, |c| c.spec.name.clone());
        Reason::HealthLost { peer, check }
    }

    /// Whether the service has been up for `grace` at `now` (active-only checks
    /// count from then).
    pub(super) fn service_settled(&self, now: Instant, grace: Duration) -> bool {
        matches!(&self.election.phase, Phase::Active(active)
            if active.service_up.is_some_and(|up| now >= up + grace))
    }

    /// Who put the cluster in maintenance, if anyone alive did.
    pub(super) fn frozen_by(&self) -> Option<String> {
        let mut by: Vec<&str> = Vec::new();
        if self.maintenance {
            by.push(&self.settings.name);
        }
        by.extend(
            self.peers
                .iter()
                .filter(|p| p.present() && p.maintenance)
                .map(|p| p.name.as_str()),
        );
        (!by.is_empty()).then(|| by.join(", "))
    }

    // --- role changes -------------------------------------------------------

    /// The one place a role changes: logs from, to and why, and tells the peers.
    pub(super) fn transition(&mut self, now: Instant, next: Phase, reason: Reason) {
        let from = self.role();
        let to = next.role();
        // VIPs found at start and not adopted go at once, before anything else: a
        // live peer may hold them too.
        let drop_found = from == Role::Starting && to != Role::Active && self.adopting();
        self.election.phase = next;
        if drop_found {
            self.drop_found();
        }
        if to != Role::Active {
            self.timers.stop(Timer::Failback);
        }
        if from == to {
            return;
        }
        *self
            .election
            .transitions
            .entry((to, reason.kind()))
            .or_default() += 1;
        self.events.push(Event::Transition {
            from,
            to,
            reason: reason.clone(),
        });
        self.election.previous = from;
        self.election.since = now;
        self.election.reason = reason;
        self.heartbeat();
        if to == Role::Standby && self.lifecycle == Lifecycle::Running {
            self.run_hook(Hook::Standby);
        }
    }

    /// Takes the VIPs, at once when no live peer could be claiming them too, after a
    /// round trip of confirmations otherwise (see [`Claim`]).
    fn claim(&mut self, now: Instant, reason: Reason) {
        // The peer whose release or departure this election answers defers to us,
        // but under the majority rule only a peer that left: a holder there also
        // lets go when it loses its majority, and two nodes that both did so, each
        // answering the other's release once their majority is back, would both
        // take the VIPs at once. There the releaser is a rival like any other, and
        // the claim costs one round trip.
        let released_by = match &reason {
            Reason::PeerLeft { peer } => Some(peer.clone()),
            Reason::PeerReleased { peer } if !self.settings.majority_rule() => Some(peer.clone()),
            _ => None,
        };
        let rivals: Vec<usize> = self
            .peers
            .iter()
            .enumerate()
            .filter(|(_, p)| p.present() && !p.holds() && !p.witness)
            .filter(|(_, p)| released_by.as_deref() != Some(p.name.as_str()))
            .map(|(i, _)| i)
            .collect();
        if rivals.is_empty() {
            return self.become_active(now, reason);
        }
        self.renew_nonce(now);
        self.election.phase = Phase::Claiming(Claim {
            from: self.role(),
            reason,
            epoch: self.nonces.epoch(),
            waiting: rivals,
        });
        let wait = self.settings.handshake_wait();
        self.timers.set(Timer::Claim, now + wait);
        self.heartbeat();
    }

    /// A claim under way: withdrawn for a confirmed holder or a rival that ranks
    /// higher; carried out once every rival has echoed it, or the wait is over.
    fn pursue_claim(&mut self, now: Instant) {
        if let Some(holder) = self.peers.iter().find(|p| p.holds() && !p.claiming) {
            let peer = holder.name.clone();
            return self.withdraw_claim(now, Reason::PeerActive { peer });
        }
        let me = self.rank();
        if let Some(rival) = self
            .peers
            .iter()
            .find(|p| p.holds() && p.claiming && Rank::of_peer(p) > me)
        {
            let peer = rival.name.clone();
            return self.withdraw_claim(now, Reason::PeerRanksFirst { peer });
        }
        if !self.ranks_first() {
            let peer = self.first_ranked_peer().unwrap_or_default();
            return self.withdraw_claim(now, Reason::PeerRanksFirst { peer });
        }
        let Phase::Claiming(claim) = &mut self.election.phase else {
            return;
        };
        let peers = &self.peers;
        claim.waiting.retain(|&i| peers[i].present());
        // Under the majority rule a claim waits for every live rival, however late:
        // one that is alive but unheard for a moment may be claiming too, and it
        // either answers or is declared dead within `dead`. Two nodes keep the
        // shorter wait, where the split-brain guard stands behind it.
        let waited_out = !self.timers.pending(Timer::Claim, now) && !self.settings.majority_rule();
        if claim.waiting.is_empty() || waited_out {
            let reason = claim.reason.clone();
            // The majority that let the claim start may have gone during the
            // wait (its voters died): it is asked again before anything is added.
            match self.majority_verdict(now) {
                None | Some(Verdict::Go) => {}
                // A voter's word on its way: the claim waits for it.
                Some(Verdict::Wait) => return,
                Some(Verdict::Hold(hold)) => {
                    return self.withdraw_claim(now, Reason::TakeoverHeld { hold });
                }
            }
            self.timers.stop(Timer::Claim);
            self.become_active(now, reason);
        }
    }

    /// Gives up a claim under way; nothing was added. The node keeps the role it
    /// had, standby if it was starting; peers hear that the claim is off.
    fn withdraw_claim(&mut self, now: Instant, reason: Reason) {
        let Phase::Claiming(claim) = &self.election.phase else {
            return;
        };
        let from = claim.from;
        self.timers.stop(Timer::Claim);
        self.election.phase = Phase::from_role(from);
        if from == Role::Starting {
            return self.transition(now, Phase::Standby, reason);
        }
        self.heartbeat();
    }

    /// Order matters: VIPs first, then the announcement, then the start hook, so the
    /// service starts only once clients can reach it.
    pub(super) fn become_active(&mut self, now: Instant, reason: Reason) {
        // Cleared before the transition's heartbeat, which must not still ask.
        let pinned = self.election.request == Some(Request::Takeover);
        self.election.request = None;
        // An adopted service normally ran on while the daemon was away; not when
        // the daemon was killed while its start hook ran.
        let rerun = self.start_noted && self.settings.hooks.program(Hook::Start).is_some();
        let keep = reason == Reason::Adopted && self.settings.on_adopt == OnAdopt::Keep && !rerun;
        if reason == Reason::Adopted && rerun {
            self.events.push(Event::UnfinishedStart { rerun: true });
        }
        if keep {
            // No start hook to finish (a reload took it out before the restart).
            self.note_start(false);
        }
        // VIPs found at start are added again (already there is success): one that
        // could not be looked up was only taken for there, and any may have been
        // removed by hand during the wait.
        let found = reason == Reason::Adopted;
        let active = Active {
            starting_service: (!keep).then_some(now),
            pinned,
            failback: None,
            service_up: None,
            handover: None,
        };
        self.transition(now, Phase::Active(active), reason);
        for i in 0..self.settings.vips.len() {
            if found || self.election.vips[i] != VipState::Held {
                let id = self.add_effect(i);
                self.election.vips[i] = VipState::Adding(id);
            }
        }
        self.announce_after_adds();
        // This holding begins: an earlier release, finished or not, is over. Queued
        // after the adds, which must not wait on the disk: a daemon killed before
        // the note is gone drops the VIPs at its restart instead of adopting them,
        // a move too many but never a stopped service behind them.
        self.note_release(false);
        let refresh = self.settings.announce.refresh.map(|r| now + r);
        self.timers.set_or_stop(Timer::Refresh, refresh);
        if keep {
            self.service_started(now);
        }
        self.watch(true);
        self.start_when_held(now);
    }

    /// Runs the start hook once every VIP is in place: a service started while an
    /// address is missing would answer nobody. A failed add is retried, and the hook
    /// waits for it.
    pub(super) fn start_when_held(&mut self, now: Instant) {
        let Phase::Active(active) = &mut self.election.phase else {
            return;
        };
        let Some(started) = active.starting_service else {
            return;
        };
        if self.election.vips.iter().any(|s| *s != VipState::Held) {
            return;
        }
        active.starting_service = None;
        self.election.last_takeover = Some(now.saturating_duration_since(started));
        // Noted just before the hook; with no hook (a reload took it out), a note
        // left by an earlier daemon has nothing left to finish.
        self.note_start(self.settings.hooks.program(Hook::Start).is_some());
        if self.run_hook(Hook::Start).is_none() {
            self.service_started(now);
        }
    }

    /// The start hook finished. A failure fails the built-in `start-hook` check unless
    /// `[hooks] start_failure = "ignore"`: a node whose service did not start hands
    /// over to a healthy peer rather than stay active for nothing.
    pub(super) fn on_start_hook_done(&mut self, now: Instant, success: bool, summary: &str) {
        if !matches!(self.election.phase, Phase::Active(_)) {
            return;
        }
        if self.settings.start_failure == StartFailure::Release
            && let Some(index) = self.builtin(&Kind::StartHook)
        {
            let run = Run {
                passed: success,
                took: Duration::ZERO,
                detail: summary.to_string(),
            };
            self.record_check(now, index, run);
        }
        self.service_started(now);
    }

    /// The service is up: active-only checks run from now on.
    pub(super) fn service_started(&mut self, now: Instant) {
        let Phase::Active(active) = &mut self.election.phase else {
            return;
        };
        if active.service_up.is_some() {
            return;
        }
        active.service_up = Some(now);
        // Said even when no check runs only on the active node: the shell keeps it
        // across a reload that adds one.
        self.actions.push_back(Action::ActiveChecks(true));
    }

    /// The index of a built-in check.
    pub(super) fn builtin(&self, kind: &Kind) -> Option<usize> {
        self.health
            .checks()
            .iter()
            .position(|c| c.spec.kind == *kind)
    }

    /// The reverse order: stop hook, then VIPs. The heartbeat sent now says
    /// "releasing" so the peer waits for the release to finish rather than adding
    /// the VIPs while this node still has them.
    pub(super) fn start_release(&mut self, now: Instant, after: After, reason: Reason) {
        // A holder that lost its majority races the others' takeover: the VIPs go
        // first and the service after (see `quorum`). Otherwise the service stops
        // before its addresses go, so clients see a refusal and not a timeout.
        let urgent = matches!(reason, Reason::MajorityLost { .. });
        // An announcement decided in this same step (the peer came back) must not
        // go out for VIPs about to be removed.
        self.actions
            .retain(|a| !matches!(a, Action::Announce { .. }));
        self.note_let_go(Machine::planned_release(&reason));
        // Before the stop hook and the removals, in the effects' order.
        self.note_release(true);
        self.events.push(Event::Releasing {
            reason: reason.clone(),
        });
        let (service_started, service_up) = match &self.election.phase {
            Phase::Active(active) => (
                active.starting_service.is_none(),
                active.service_up.is_some(),
            ),
            // VIPs found at start: their service may well run.
            Phase::Starting => (self.adopting(), false),
            _ => (false, false),
        };
        if service_up {
            self.actions.push_back(Action::ActiveChecks(false));
        }
        if matches!(self.election.phase, Phase::Active(_)) {
            self.watch(false);
        }
        self.leave_active(now);
        self.election.phase = Phase::Releasing(Release {
            from: self.role(),
            after,
            reason,
            last: None,
            last_done: false,
            withdrawn: urgent,
        });
        self.timers.stop(Timer::Refresh);
        self.timers.stop(Timer::Failback);
        self.timers.stop(Timer::VipRetry);
        let mut last = None;
        if service_started && !urgent {
            last = self.run_hook(Hook::Stop);
        }
        for i in 0..self.settings.vips.len() {
            match self.election.vips[i] {
                VipState::Absent => {}
                // A removal already under way (a stale VIP found at start) is part of
                // the release: the node must not say goodbye before it is done.
                VipState::Removing(id) => last = last.max(Some(id)),
                // An add still queued would put the VIP back after a removal made
                // beside the queue: that one is removed in the queue's order too.
                VipState::Adding(_) if urgent => {
                    let vip = self.settings.vips[i].clone();
                    self.withdraw(vip.clone());
                    let id = self.effect(Effect::RemoveVip(vip));
                    self.election.vips[i] = VipState::Removing(id);
                    last = Some(id);
                }
                VipState::Adding(_)
                | VipState::Held
                | VipState::Failed { .. }
                | VipState::Unremoved(_) => {
                    let vip = self.settings.vips[i].clone();
                    let id = if urgent {
                        self.withdraw(vip)
                    } else {
                        self.effect(Effect::RemoveVip(vip))
                    };
                    self.election.vips[i] = VipState::Removing(id);
                    last = Some(id);
                }
            }
        }
        // The VIPs a reload took out of the file that may still be here: the
        // release waits for them too (see `removing`), and one that waits for its
        // next try is tried now, as the retry timer stops here.
        for r in 0..self.election.retired.len() {
            match self.election.retired[r].state {
                VipState::Removing(id) => last = last.max(Some(id)),
                VipState::Unremoved(u) => {
                    let state = match u.retrying {
                        Some(_) => VipState::Unremoved(u),
                        None => self.remove_again(self.election.retired[r].vip.clone(), u),
                    };
                    self.election.retired[r].state = state;
                    if let VipState::Unremoved(Unremoved {
                        retrying: Some(id), ..
                    }) = state
                    {
                        last = last.max(Some(id));
                    }
                }
                _ => {}
            }
        }
        if service_started && urgent {
            last = self.run_hook(Hook::Stop).or(last);
        }
        self.heartbeat();
        match (&mut self.election.phase, last) {
            (Phase::Releasing(release), Some(id)) => release.last = Some(id),
            _ => self.finish_release(now),
        }
    }

    pub(super) fn finish_release(&mut self, now: Instant) {
        let Phase::Releasing(release) = &self.election.phase else {
            return;
        };
        let (after, reason) = (release.after, release.reason.clone());
        let grace = now + self.settings.release_grace();
        self.timers.set(Timer::ReleaseGrace, grace);
        self.note_release(false);
        if self.lifecycle == Lifecycle::Stopping {
            self.transition(now, Phase::Standby, reason);
            return self.farewell();
        }
        match after {
            After::Standby => self.transition(now, Phase::Standby, reason),
            After::Fault => {
                self.transition(now, Phase::Fault, reason);
                self.run_hook(Hook::Fault);
            }
        }
    }

    /// The node lets the VIPs go: its active-only checks stop counting, and those
    /// that were failing stick (see `health`), each until cleared or its
    /// `failure_timeout`.
    fn leave_active(&mut self, now: Instant) {
        for index in self.health.leave_active(now) {
            let Some(check) = self.health.check(index) else {
                continue;
            };
            let (check, until) = (check.spec.name.clone(), check.spec.failure_timeout);
            self.events.push(Event::CheckStuck { check, until });
            if let Some(timeout) = until {
                self.timers.set(Timer::Unstick(index), now + timeout);
            }
        }
        self.arm_health_grace(now);
    }

    /// Tells the peers this node is leaving and holds nothing, then asks to exit.
    pub(super) fn farewell(&mut self) {
        for _ in 0..super::FAREWELL_COPIES {
            self.heartbeat();
        }
        // The last transition must reach the log before the shell exits.
        self.flush_events();
        self.actions.push_back(Action::Exit);
        self.lifecycle = Lifecycle::Exited;
    }
}
