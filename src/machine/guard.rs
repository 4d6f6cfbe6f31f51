//! The split-brain guard: what an unplanned takeover must get past.
//!
//! A peer that fell silent on every link is not always gone. Its daemon may have
//! died while its kernel keeps the VIPs and answers ARP for them; its heartbeats may
//! be cut (a firewall rule, a VLAN) while it still serves clients on the LAN. Taking
//! the VIPs then puts them on two machines, and every host that resolves them again
//! may land on either. So a takeover that no release made room for (the holder went
//! silent, or nobody was heard at start) must pass, in this order:
//!
//! 1. **A gateway** (`[split_brain] require_gateway`): a node that hears no peer
//!    takes over only while one of its gateway checks passes, so a node cut off from
//!    everything does not take the VIPs for a LAN it cannot reach.
//! 2. **A majority** (three voters or more, see `quorum`): this node and the peers
//!    it hears must be most of the voters, and none of them may still hear the
//!    silent holder.
//! 3. **The LAN's answer.** While the VIPs are up for grabs (no holder heard on time)
//!    the node probes them, RFC 5227 style, from the moment a holder is late (`warn`)
//!    or from its start, so an answer is at hand when `dead` expires and node death
//!    costs no more time. If another MAC answers, the old holder's kernel is alive:
//!    with `live_vip = "wait"` the node goes to fault, says who answers, and probes on;
//!    it takes over once the VIP falls silent or the peer is heard releasing.
//! 4. **Fencing** (`[fencing] command`): every silent peer is fenced (powered off, or
//!    its VIPs removed) before the takeover; only a fence that exited 0 counts, and a
//!    failed one is retried with a growing wait. A fenced peer counts as gone even if
//!    the probe still saw its VIP.
//!
//! A planned move (a release or a farewell heard from the holder) passes at once: the
//! holder said its VIPs are gone, so it costs no probe and fences nobody.

use std::time::{Duration, Instant};

use super::election::Phase;
use super::health::Kind;
use super::timer::Timer;
use super::{Action, Effect, EffectId, Event, Hook, Machine, Reason, Role, Sighting};
use crate::config::LiveVip;

/// The shortest probe window: an ARP reply crosses a LAN in well under a millisecond,
/// but a busy host may take a few to read it.
const MIN_WINDOW: Duration = Duration::from_millis(5);
/// The longest probe window: RFC 5227 spreads its probes over 1 to 2 s; a takeover
/// waiting for its answer cannot afford more.
const MAX_WINDOW: Duration = Duration::from_secs(1);
/// While a takeover is held back by a live VIP, it is probed again this often at
/// most, so the LAN sees a few frames a second and not a stream.
const REPROBE: Duration = Duration::from_millis(500);
/// A conflict is answered with an announcement at most this often.
const REANNOUNCE: Duration = Duration::from_secs(1);

/// What the guard knows in the current episode, the time the VIPs have been up for
/// grabs; forgotten as soon as a holder is heard on time again.
#[derive(Debug, Default)]
pub(super) struct Guard {
    next_probe: u64,
    /// The probe in flight.
    probing: Option<u64>,
    /// Since when the VIPs have been up for grabs.
    episode: Option<Instant>,
    /// The answer of the last probe of this episode: when it ended, and who answered.
    answer: Option<(Instant, Vec<Sighting>)>,
    /// The last probe failure reported, so that a lasting one is logged once.
    probe_error: Option<String>,
    /// Fencing of each peer (by index) in this episode.
    fences: Vec<Fence>,
    /// Why the takeover is held back now.
    held: Option<Hold>,
    /// The kinds of hold already reported in this episode.
    reported: Vec<&'static str>,
    /// When the takeover was last held back: an answer from before says nothing of
    /// the LAN the node sees now (it may have been cut off then).
    held_at: Option<Instant>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
enum Fence {
    #[default]
    Idle,
    /// Under way, after this many failures.
    Running { id: EffectId, failures: u32 },
    /// The fence command exited 0: the peer holds nothing any more.
    Done,
    /// It failed this many times; the next try is due when `Timer::Fence` expires.
    Failed { failures: u32 },
}

/// Why an unplanned takeover does not happen now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Hold {
    /// Another host still answers for a VIP.
    LiveVip { sighting: Sighting },
    /// No peer is heard and no gateway check passes (`require_gateway`).
    NoGateway,
    /// This node and the peers it hears are no majority of the voters (see `quorum`).
    NoMajority { heard: usize, voters: usize },
    /// Peer `by` still hears `hears`, which this node finds silent.
    Vetoed { by: String, hears: String },
    /// Fencing `peer` failed; it is tried again in `retry`.
    FenceFailed {
        peer: String,
        failures: u32,
        retry: Duration,
    },
}

impl Hold {
    /// A short, stable label: what is reported once per episode.
    pub fn kind(&self) -> &'static str {
        match self {
            Hold::LiveVip { .. } => "live_vip",
            Hold::NoGateway => "no_gateway",
            Hold::NoMajority { .. } => "no_majority",
            Hold::Vetoed { .. } => "vetoed",
            Hold::FenceFailed { .. } => "fence_failed",
        }
    }
}

impl std::fmt::Display for Hold {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Hold::LiveVip { sighting } => write!(
                f,
                "VIP {sighting} still answered by another host: the silent peer's kernel \
                 may still hold it; waiting for it to go quiet ([split_brain] live_vip = \
                 \"wait\")"
            ),
            Hold::NoGateway => write!(
                f,
                "no peer heard and no gateway reachable ([split_brain] require_gateway)"
            ),
            Hold::NoMajority { heard, voters } => write!(
                f,
                "this node hears {heard} of {voters} voters, itself included: no majority"
            ),
            Hold::Vetoed { by, hears } => write!(
                f,
                "{by} still hears {hears}, which is silent here: {hears} may still hold \
                 the VIPs"
            ),
            Hold::FenceFailed {
                peer,
                failures,
                retry,
            } => write!(
                f,
                "fencing {peer} failed {failures} time{}; trying again in {}",
                if *failures == 1 { "" } else { "s" },
                crate::duration::format_duration(*retry)
            ),
        }
    }
}

/// What the guard says of a takeover now.
#[derive(Debug)]
pub(super) enum Verdict {
    Go,
    /// An answer (a probe, a fence) is on its way.
    Wait,
    Hold(Hold),
}

impl Guard {
    pub(super) fn new(peers: usize) -> Guard {
        Guard {
            fences: vec![Fence::Idle; peers],
            ..Guard::default()
        }
    }

    /// Why the takeover is held back, if it is.
    pub(super) fn held(&self) -> Option<&Hold> {
        self.held.as_ref()
    }

    /// A new probe's id.
    pub(super) fn next_id(&mut self) -> u64 {
        self.next_probe += 1;
        self.next_probe - 1
    }

    /// Who answered the last probe, if anyone did.
    pub(super) fn answered_by(&self) -> Option<&Sighting> {
        self.answer.as_ref().and_then(|(_, a)| a.first())
    }
}

impl Machine {
    /// Starts, keeps up or ends the guard's episode; called after every input.
    pub(super) fn tend_guard(&mut self, now: Instant) {
        if !self.up_for_grabs() {
            if self.election.guard.episode.is_some() {
                let peers = self.peers.len();
                let next_probe = self.election.guard.next_probe;
                self.election.guard = Guard {
                    next_probe,
                    ..Guard::new(peers)
                };
                self.timers.stop(Timer::Probe);
                self.timers.stop(Timer::Veto);
                for i in 0..peers {
                    self.timers.stop(Timer::Fence(i));
                }
            }
            return;
        }
        self.election.guard.episode.get_or_insert(now);
        if self.settings.vips.is_empty() || self.election.guard.probing.is_some() {
            return;
        }
        // Back to back while a takeover may come any moment, so that the answer at
        // hand is at most a window old; at a gentler pace once the episode has lasted
        // (a takeover held back, maintenance, a long start wait), so that the LAN sees
        // a few frames a second and not a stream.
        let window = self.probe_window();
        let lasted =
            self.election.guard.episode.is_some_and(|since| {
                now.saturating_duration_since(since) > self.settings.timing.dead
            });
        let due = match &self.election.guard.answer {
            None => now,
            Some((at, _)) if lasted => *at + REPROBE.max(window),
            Some((at, _)) => *at,
        };
        if now < due {
            self.timers.set(Timer::Probe, due);
            return;
        }
        let id = self.election.guard.next_probe;
        self.election.guard.next_probe += 1;
        self.election.guard.probing = Some(id);
        self.actions.push_back(Action::Probe {
            id,
            vips: self.settings.vips.clone(),
            window,
        });
    }

    /// A probe ended.
    pub(super) fn on_probed(
        &mut self,
        now: Instant,
        id: u64,
        result: &Result<Vec<Sighting>, String>,
    ) {
        if self
            .election
            .add_probe
            .as_ref()
            .is_some_and(|(probe, _)| *probe == id)
        {
            self.note_probe_error(result.as_ref().err());
            return self.on_add_probed(now, result);
        }
        if self.election.guard.probing != Some(id) {
            return;
        }
        self.election.guard.probing = None;
        self.note_probe_error(result.as_ref().err());
        let answers = result.clone().unwrap_or_default();
        let guard = &mut self.election.guard;
        if guard.episode.is_some() {
            guard.answer = Some((now, answers));
        }
    }

    /// A probe that could not be sent: the guard cannot tell, and the node behaves
    /// as it would without it. It says so once per error, not once per probe.
    fn note_probe_error(&mut self, error: Option<&String>) {
        let guard = &mut self.election.guard;
        match error {
            None => guard.probe_error = None,
            Some(error) if guard.probe_error.as_ref() != Some(error) => {
                guard.probe_error = Some(error.clone());
                self.events.push(Event::ProbeFailed {
                    error: error.clone(),
                });
            }
            Some(_) => {}
        }
    }

    /// While active, another host claimed one of the VIPs: say so and tell the LAN
    /// again where they live. Which of two holders keeps them is for the ranks to
    /// decide as soon as the other is heard.
    pub(super) fn on_conflict(&mut self, now: Instant, sighting: Sighting) {
        if !self.holding() {
            return;
        }
        self.election.conflicts += 1;
        self.events.push(Event::VipConflict { sighting });
        // A node that resumed after a stall reads what queued up before it pulls
        // the VIPs back: the claimer may be the peer that took over meanwhile.
        if self.yielding() || self.timers.pending(Timer::Resumed, now) {
            return;
        }
        // Two holders that both watch would answer each other's announcements for
        // ever: one answer per second at most.
        let election = &mut self.election;
        if election
            .conflict_answered
            .is_some_and(|at| now.saturating_duration_since(at) < REANNOUNCE)
        {
            return;
        }
        election.conflict_answered = Some(now);
        let action = self.announce_action(self.settings.announce.rounds);
        self.actions.push_back(action);
    }

    /// A fence run ended.
    pub(super) fn on_fence_done(&mut self, now: Instant, id: EffectId, success: bool) {
        let fencing = &self.settings.fencing;
        let (retry, retry_max) = (fencing.retry, fencing.retry_max);
        let Some(i) = self
            .election
            .guard
            .fences
            .iter()
            .position(|f| matches!(f, Fence::Running { id: x, .. } if *x == id))
        else {
            return;
        };
        let Fence::Running { failures, .. } = self.election.guard.fences[i] else {
            return;
        };
        if success {
            self.election.guard.fences[i] = Fence::Done;
            let peer = self.peers[i].name.clone();
            self.events.push(Event::Fenced { peer });
            return;
        }
        let failures = failures + 1;
        let wait = retry
            .saturating_mul(1 << (failures - 1).min(16))
            .min(retry_max);
        self.election.guard.fences[i] = Fence::Failed { failures };
        self.timers.set(Timer::Fence(i), now + wait);
    }

    /// Whether an unplanned takeover may go ahead now; see the module docs.
    pub(super) fn guard_verdict(&mut self, now: Instant) -> Verdict {
        let alone = !self.peers.iter().any(|p| p.present());
        if self.settings.split_brain.require_gateway && alone && !self.gateway_reachable() {
            return Verdict::Hold(Hold::NoGateway);
        }
        if let Some(verdict) = self.majority_verdict(now) {
            return verdict;
        }
        let fencing = self.settings.fencing.command.is_some();
        let mut waiting = false;
        if !self.settings.vips.is_empty() {
            match &self.election.guard.answer {
                None if self.settings.split_brain.live_vip == LiveVip::Wait || fencing => {
                    // Asked for in `tend_guard`; its answer runs the election again.
                    waiting = true;
                }
                // A "nobody answered" from before a long wait (probes slow down to
                // one every `REPROBE` then) or from before a hold (the node may have
                // been cut off from the LAN then) is asked again before it lets a
                // takeover go ahead: the VIP may have come up somewhere meanwhile.
                // This costs a takeover after a long wait (a node starting alone,
                // a hold) at most one probe window; a node that was cut off from the
                // LAN meanwhile would otherwise take a VIP that answers again.
                Some((at, answers))
                    if answers.is_empty()
                        && (now.saturating_duration_since(*at) > self.fresh_answer()
                            || self.election.guard.held_at.is_some_and(|held| *at <= held)) =>
                {
                    self.election.guard.answer = None;
                    waiting = true;
                }
                Some((_, answers)) if !fencing => {
                    if let Some(&sighting) = answers.first() {
                        match self.settings.split_brain.live_vip {
                            LiveVip::Wait => return Verdict::Hold(Hold::LiveVip { sighting }),
                            LiveVip::Take => {
                                self.events.push(Event::TakingLiveVip { sighting });
                            }
                        }
                    }
                }
                _ => {}
            }
        }
        if fencing {
            for i in 0..self.peers.len() {
                let peer = &self.peers[i];
                // A witness holds nothing: there is nothing to fence.
                if peer.alive || peer.leaving || peer.witness {
                    continue;
                }
                match self.election.guard.fences[i] {
                    Fence::Done => {}
                    Fence::Running { .. } => waiting = true,
                    Fence::Idle => {
                        self.fence(i);
                        waiting = true;
                    }
                    Fence::Failed { failures } => {
                        match self.timers.get(Timer::Fence(i)).filter(|at| *at > now) {
                            Some(at) => {
                                return Verdict::Hold(Hold::FenceFailed {
                                    peer: peer.name.clone(),
                                    failures,
                                    retry: at - now,
                                });
                            }
                            None => {
                                self.fence(i);
                                waiting = true;
                            }
                        }
                    }
                }
            }
        }
        if waiting { Verdict::Wait } else { Verdict::Go }
    }

    /// What the majority rule says of a takeover, planned or not; `None` when it
    /// lets it go ahead (or does not apply).
    pub(super) fn majority_verdict(&mut self, now: Instant) -> Option<Verdict> {
        match self.majority_hold() {
            // The voter heard the holder's last heartbeat a moment after this node
            // did and will say so: a veto that lasts less than that is a wait, not
            // something to page anyone about (see `quorum::veto_settles`).
            Some(Hold::Vetoed { by, hears }) => match self.veto_settles(now, &hears) {
                Some(at) => {
                    self.timers.set(Timer::Veto, at);
                    Some(Verdict::Wait)
                }
                None => Some(Verdict::Hold(Hold::Vetoed { by, hears })),
            },
            // No majority holds even a planned handover (the witness down, the
            // holder leaving): the node would let the VIPs go at once.
            hold => hold.map(Verdict::Hold),
        }
    }

    /// Holds the takeover back and says why, loudly: an error event and the fault
    /// hook, once per kind of hold in an episode, however often the election looks
    /// again. The role stays what it was (a starting node stands by): the node is
    /// healthy, it only may not take the VIPs, and a role that flapped with every
    /// look would make its peers' elections flap too.
    pub(super) fn hold_takeover(&mut self, now: Instant, hold: Hold) {
        let guard = &mut self.election.guard;
        guard.held = Some(hold.clone());
        guard.held_at = Some(now);
        let kind = hold.kind();
        if guard.reported.contains(&kind) {
            return;
        }
        guard.reported.push(kind);
        self.events.push(Event::TakeoverHeld { hold: hold.clone() });
        let reason = Reason::TakeoverHeld { hold };
        if self.role() == Role::Starting {
            self.transition(now, Phase::Standby, reason.clone());
        }
        let role = self.role().as_str();
        self.run_hook_as(Hook::Fault, (role, role, reason.to_string()));
    }

    /// The hold is over (the takeover goes ahead, or is no longer this node's).
    pub(super) fn release_hold(&mut self) {
        self.election.guard.held = None;
    }

    /// How old a probe's answer may be for a takeover to go on it: back-to-back
    /// probes are at most a window old, and the election looks at least every
    /// interval.
    fn fresh_answer(&self) -> Duration {
        self.probe_window() + self.settings.timing.interval
    }

    /// The probe window: it starts at `warn` and must end before `dead`.
    pub(super) fn probe_window(&self) -> Duration {
        let t = &self.settings.timing;
        (t.dead.saturating_sub(t.warn) * 3 / 4).clamp(MIN_WINDOW, MAX_WINDOW)
    }

    /// Whether the VIPs may be about to need a new holder: this node is running and
    /// holds nothing, and no peer that holds them is heard on time. Maintenance
    /// does not stop the probes: the answer is at hand when it ends.
    fn up_for_grabs(&self) -> bool {
        use super::election::Lifecycle;
        self.lifecycle == Lifecycle::Running
            && matches!(
                self.election.phase,
                Phase::Starting | Phase::Standby | Phase::Fault
            )
            && !self.peers.iter().any(|p| p.holds() && p.on_time())
    }

    /// Whether a gateway check (a `ping` one) passes.
    fn gateway_reachable(&self) -> bool {
        self.health
            .checks()
            .iter()
            .any(|c| matches!(c.spec.kind, Kind::Ping(_)) && c.runs > 0 && !c.failing)
    }

    /// Runs the fence command for peer `i`.
    fn fence(&mut self, i: usize) {
        let Some(program) = self.settings.fencing.command.clone() else {
            return;
        };
        let peer = &self.peers[i];
        let (name, addresses) = (
            peer.name.clone(),
            peer.links
                .iter()
                .map(|l| l.address.to_string())
                .collect::<Vec<_>>(),
        );
        let answered = self.election.guard.answered_by().copied();
        let reason = match answered {
            Some(sighting) => format!("peer {name} silent, VIP {sighting} still answered"),
            None => format!("peer {name} silent on every link"),
        };
        self.events.push(Event::Fencing { peer: name.clone() });
        // Every hook's environment, with the one peer to fence and what is known of
        // it.
        let role = self.role().as_str();
        let mut env = self.hook_env(Hook::Fence, role, role, reason);
        for (key, value) in &mut env {
            if key == "FAILOVERD_PEER" {
                value.clone_from(&name);
            }
        }
        env.push(("FAILOVERD_PEER_ADDRESSES".into(), addresses.join(" ")));
        let answered_by = answered.map(|s| mac_string(s.mac)).unwrap_or_default();
        env.push(("FAILOVERD_ANSWERED_BY".into(), answered_by));
        let id = self.effect(Effect::RunHook {
            hook: Hook::Fence,
            program,
            env,
            timeout: self.settings.fencing.timeout,
        });
        self.election.hooks_running.insert(id, Hook::Fence);
        let failures = match self.election.guard.fences[i] {
            Fence::Failed { failures, .. } => failures,
            _ => 0,
        };
        self.election.guard.fences[i] = Fence::Running { id, failures };
    }
}

/// A MAC address as `ip link` writes it.
pub(super) fn mac_string(mac: [u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}
