//! The election: a pure state machine, with no clock, socket or task of its own.
//!
//! The shell feeds it [`Input`]s with the time they happened ([`Machine::handle`]),
//! wakes it at [`Machine::poll_timeout`] ([`Machine::handle_timeout`]), and drains
//! [`Action`]s with [`Machine::poll_action`]. Side effects that take time (adding a VIP,
//! running a hook) are requests carrying an [`EffectId`]; the shell performs them one
//! at a time in order and reports each back with [`Input::Done`]. The machine counts a
//! VIP as held only once its add has succeeded.
//!
//! # Rules
//! - A starting node listens for `init_dead` (or until every peer has been heard)
//!   before it claims anything, so a restarting node never grabs the VIPs from an
//!   active peer.
//! - Nodes rank by health (fewer failing checks), then priority, then name (smaller
//!   first); see `rank.rs`. When no live node is active, the first-ranked candidate
//!   takes over.
//! - The active node stays active against a better-ranked standby, except that with
//!   `failback = "auto"` it hands over once the preferred node has been up and ready
//!   for `failback_delay` without a break (a restart starts the wait over).
//! - A node that fails more health checks than a live peer goes to fault and releases;
//!   if no live peer is healthier, nothing moves, so a gateway lost for everyone causes
//!   no failover storm, and a node alone takes the VIPs whatever its health.
//! - Two active nodes (a healed partition): the lower-ranked one releases as soon as it
//!   hears the other.
//! - Every planned move releases first: stop hook, then VIP removal, then a heartbeat
//!   that says so; the peer takes over on that heartbeat instead of waiting for `dead`.
//!   So a planned move never leaves the VIPs on two nodes.
//!
//! # Where things live
//! What the node is (its settings, its peers, its health, its heartbeats, the timer
//! table) is kept apart from the election it takes part in (its role and the data of
//! that role, its VIPs, the operator's standing request). A node holds
//! one election today; VIP groups will hold one per group over the same peers and
//! heartbeats.

mod checks;
mod effects;
mod election;
pub mod event;
mod guard;
pub mod health;
mod nonce;
mod orders;
mod pace;
pub mod peer;
mod quorum;
mod rank;
mod reload;
mod report;
mod settings;
mod steady;
mod timer;

use std::borrow::Cow;
use std::collections::{BTreeMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::{Duration, Instant};

use checks::Unstuck;
use election::{Election, Handover, Lifecycle, Phase, Request, VipState};
pub use event::{Event, Lapse, Reason, Reject, Role, Severity};
pub use guard::Hold;
use health::{Health, Run};
use nonce::Nonces;
pub use orders::{Accepted, Order, Refusal};
use peer::Peer;
pub use peer::{LinkState, LinkView};
pub use reload::{Change as ConfigChange, ReloadError};
use settings::Settings;
pub use steady::Damping;
use steady::Steadiness;
use timer::{Timer, Timers};

use crate::config::Config;
use crate::wire::heartbeat::{
    FLAG_CLAIMING, FLAG_FAILED, FLAG_LEAVING, FLAG_MAINTENANCE, FLAG_RELEASING, FLAG_STANDBY,
    FLAG_TAKEOVER, FLAG_YIELDING, Heartbeat, Packet, Verified,
};

/// Rejections are summed up in one log line at most this often.
const REJECT_REPORT_EVERY: Duration = Duration::from_secs(10);
/// Copies of the farewell heartbeat, so one lost datagram does not cost a `dead` wait.
const FAREWELL_COPIES: u32 = 2;

/// Identifies a requested side effect and its completion.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct EffectId(pub u64);

/// The hook scripts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Hook {
    Start,
    Stop,
    Fault,
    /// On entering standby (keepalived's `notify_backup`).
    Standby,
    /// `[fencing] command`, before an unplanned takeover.
    Fence,
}

impl Hook {
    pub fn as_str(self) -> &'static str {
        match self {
            Hook::Start => "start",
            Hook::Stop => "stop",
            Hook::Fault => "fault",
            Hook::Standby => "standby",
            Hook::Fence => "fence",
        }
    }
}

/// A VIP as this node places it: the real interface and label, after the node's
/// `interfaces` overrides.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VipTarget {
    pub address: IpAddr,
    pub prefix_len: u8,
    pub interface: String,
    /// IPv4 only: the name `ip addr` and `ifconfig` show for the address. The
    /// kernel wants it to start with the interface name, e.g. `eth0:vip`.
    pub label: Option<String>,
}

impl std::fmt::Display for VipTarget {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.address, self.prefix_len)
    }
}

/// A slow side effect, performed by the shell in the order requested. Each carries
/// everything needed to perform it, so a reload never leaves the shell with a stale
/// copy of the configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Report which of these VIPs are already on their interfaces.
    FindStale {
        vips: Vec<VipTarget>,
    },
    /// Add the VIP. With `announce`, the shell sends the VIP's first announcement
    /// round as soon as the kernel has acknowledged the add, ahead of the rest of a
    /// lot of adds: with a thousand VIPs, the clients of the first need not wait
    /// for the last. The `Announce` queued after the adds carries the later rounds.
    AddVip {
        vip: VipTarget,
        announce: bool,
    },
    RemoveVip(VipTarget),
    /// Announce the VIPs `rounds` times, `interval` apart, the first round `delay`
    /// from now; the rounds run in the background, so this effect completes at once.
    Announce {
        vips: Vec<VipTarget>,
        rounds: u32,
        interval: Duration,
        delay: Duration,
    },
    RunHook {
        hook: Hook,
        program: PathBuf,
        env: Vec<(String, String)>,
        timeout: Duration,
    },
    /// Note in `state_dir` that a release is under way (`under_way`), or that none
    /// is any more: read at the next start (see [`Kept::releasing`]). A note that
    /// cannot be written is logged and the release goes on.
    NoteRelease {
        state_dir: PathBuf,
        under_way: bool,
    },
    /// The same for the start hook: noted before it runs, cleared once it ended (see
    /// [`Kept::starting`]).
    NoteStart {
        state_dir: PathBuf,
        under_way: bool,
    },
}

/// What the state directory kept across a restart of the daemon.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Kept {
    /// Maintenance mode was on.
    pub maintenance: bool,
    /// The daemon was killed during a release: VIPs it finds at start were being let
    /// go (its stop hook may have run) and are removed rather than adopted.
    pub releasing: bool,
    /// The daemon was killed while its start hook ran: the service may be half
    /// started, so VIPs it adopts at start come with the start hook, whatever
    /// `on_adopt` says.
    pub starting: bool,
}

/// Why the shell could not add or remove a VIP. The kind is what the core decides
/// on; the message is for the log.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{message}")]
pub struct VipFailure {
    pub kind: VipFailureKind,
    pub message: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VipFailureKind {
    /// The interface does not exist (a typo, or a NIC not there yet).
    NoInterface,
    /// The kernel refused the request as made (a bad label, no permission).
    Refused,
    /// Netlink failed on the way; the same request may well work next time.
    Transient,
}

/// Another host seen answering for one of this node's VIPs: the address, and the
/// MAC address that answered (never one of this node's own).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Sighting {
    pub address: IpAddr,
    pub mac: [u8; 6],
}

impl std::fmt::Display for Sighting {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{} at {}", self.address, guard::mac_string(self.mac))
    }
}

/// The result of an [`Effect`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// For [`Effect::FindStale`]: indexes of the VIPs found.
    Present(Vec<usize>),
    /// For VIP additions and removals.
    Vip(Result<(), VipFailure>),
    /// For hooks: whether it exited 0, and a summary ("exited 0 after 12ms").
    Hook { success: bool, summary: String },
    /// For effects with nothing to report.
    Done,
}

/// Something that happened, as the shell saw it.
#[derive(Debug, Clone, Copy)]
pub enum Input<'a> {
    /// A datagram arrived on the heartbeat socket of `link`.
    Datagram {
        link: usize,
        from: IpAddr,
        bytes: &'a [u8],
    },
    /// A datagram whose tag the shell checked as it read it.
    Heartbeat {
        link: usize,
        from: IpAddr,
        packet: &'a Verified,
    },
    /// A run of check `index` (in [`Config::checks_for`] order) finished.
    Check { index: usize, run: &'a Run },
    /// The effect `id` finished.
    Done { id: EffectId, outcome: &'a Outcome },
    /// Leave the cluster gracefully (SIGTERM): hand over, then [`Action::Exit`].
    Shutdown,
    /// The probe `id` ([`Action::Probe`]) is over: the hosts that answered for a
    /// VIP (as soon as one did), none when its window passed in silence, or why it
    /// could not be made.
    Probed {
        id: u64,
        result: &'a Result<Vec<Sighting>, String>,
    },
    /// While watching ([`Action::Watch`]): another host claimed one of the VIPs.
    Conflict(Sighting),
}

/// What the shell must do.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Send a datagram on `link`'s socket. Never waits behind an effect.
    Send {
        link: usize,
        to: SocketAddr,
        datagram: Packet,
    },
    /// Queue a slow effect; report it back with [`Input::Done`].
    Effect { id: EffectId, effect: Effect },
    /// Remove a VIP now, beside the queue of effects rather than behind it, and
    /// report it with [`Input::Done`] like a queued removal: a holder that lost its
    /// majority races the others' takeover, and a start hook still running (a
    /// database taking its time) must not keep the VIP on it.
    Withdraw { id: EffectId, vip: VipTarget },
    /// Run a hook that only tells someone (always an [`Effect::RunHook`] of the
    /// fault or standby hook) beside the queue of effects, and report it with
    /// [`Input::Done`]: a fault hook hung on a mail server must not hold up the VIPs
    /// of a takeover that follows. Such hooks run one at a time in the order given,
    /// so that the last to run tells the latest state; they may overlap the queue.
    Notify { id: EffectId, effect: Effect },
    /// Run the checks that run only on the active node (`on = "active"`), or stop
    /// them. Their results count once the service started and its start grace is
    /// over.
    ActiveChecks(bool),
    /// Announce the held VIPs now, outside the effect queue (they are already held).
    Announce {
        vips: Vec<VipTarget>,
        rounds: u32,
        interval: Duration,
    },
    /// Ask the LAN whether another host still answers for these VIPs (an RFC 5227
    /// ARP probe, a duplicate address detection solicitation for IPv6), and report
    /// with [`Input::Probed`]. Runs beside everything else; never waits behind an
    /// effect.
    Probe {
        id: u64,
        vips: Vec<VipTarget>,
        window: Duration,
    },
    /// Watch the VIPs' interfaces for other hosts claiming them, reporting each with
    /// [`Input::Conflict`]; an empty list stops watching.
    Watch(Vec<VipTarget>),
    /// Log an event.
    Log(Event),
    /// The graceful shutdown is complete: the process may exit.
    Exit,
}

/// One node's election state machine.
#[derive(Debug)]
pub struct Machine {
    settings: Settings,
    incarnation: u64,
    sequence: u64,
    /// Freshness nonces, changed every `dead`; peers must echo them (see wire::heartbeat).
    nonces: Nonces,
    lifecycle: Lifecycle,
    /// Set by `failoverd maintenance on` here: no automatic transitions anywhere.
    maintenance: bool,
    /// A release is noted as under way in the state directory: from its start
    /// until it ends or this node takes the VIPs again (see `note_release`).
    release_noted: bool,
    /// The start hook is noted as running in the state directory (see
    /// `note_start`).
    start_noted: bool,
    election: Election,
    peers: Vec<Peer>,
    health: Health,
    timers: Timers,
    /// The time of the latest input, for the rules that ask whether a wait is over.
    now_hint: Instant,
    /// A heartbeat was accepted by the input being handled: see `answer_early`.
    heard: bool,
    /// The nonce was due while this node was quiet: it is renewed with the next
    /// heartbeat (see `pace`).
    nonce_overdue: bool,
    /// The epoch of this node's nonce last sent, and whether it went out in quiet
    /// heartbeats only so far: an active peer that echoes it then takes quiet
    /// heartbeats (see `pace::watch_quiet_echo`).
    sent_epoch: Option<(u64, bool)>,
    /// The deadline `poll_timeout` last gave the shell: how late a wake-up is, is
    /// measured from it, not from a timer set in the past since (a reload's).
    asked: std::cell::Cell<Option<Instant>>,
    /// When this daemon started: until it has listened for `dead`, it cannot say
    /// that any peer is silent (see `quorum`).
    started: Instant,
    next_effect: u64,
    actions: VecDeque<Action>,
    events: Vec<Event>,
    rejects_pending: BTreeMap<&'static str, (Reject, u64)>,
    rejects_total: BTreeMap<&'static str, u64>,
    /// Every datagram refused (see [`Machine::refused`]).
    refused: u64,
    last_reject_report: Option<Instant>,
    sent: u64,
    /// When recent heartbeats left, for the peers' acknowledgements (see `quorum`).
    sent_at: quorum::Sent,
    /// Flap damping and starvation (see `steady`).
    steady: Steadiness,
}

impl Machine {
    /// A machine for node `me` of `config`. `incarnation` must grow from one start of
    /// the daemon to the next (the shell uses the wall-clock start time in µs): peers
    /// reject anything older while this one lives (see `Peer::accept` for a clock
    /// that went back). `seed` seeds the freshness nonces: it must differ from one
    /// start to the next and be unknown outside (the shell reads it from
    /// getrandom(2)); the machine draws nothing random otherwise.
    pub fn new(config: &Config, me: usize, incarnation: u64, seed: u64, now: Instant) -> Machine {
        Machine::with_kept(config, me, incarnation, seed, Kept::default(), now)
    }

    /// Like [`Machine::new`], for a node whose state directory kept what `kept` says
    /// across a restart.
    pub fn with_kept(
        config: &Config,
        me: usize,
        incarnation: u64,
        seed: u64,
        kept: Kept,
        now: Instant,
    ) -> Machine {
        let maintenance = kept.maintenance;
        let settings = Settings::new(config, me);
        let peers = settings
            .peers
            .iter()
            .map(|p| Peer::new(p, &settings.links, &settings.addresses))
            .collect();
        let health = Health::new(settings.checks.clone());
        let mut timers = Timers::default();
        timers.set(Timer::Heartbeat, now + settings.timing.interval);
        timers.set(Timer::Nonce, now + settings.timing.dead);
        timers.set(Timer::HeardBack, now + settings.heard_back());
        timers.set(Timer::InitDead, now + settings.timing.init_dead);
        let mut machine = Machine {
            election: Election::new(
                settings.vips.len(),
                settings.peers.len(),
                settings.witness,
                now,
            ),
            settings,
            incarnation,
            sequence: 0,
            nonces: Nonces::new(config.key.as_bytes(), seed, now),
            lifecycle: Lifecycle::Running,
            maintenance,
            release_noted: kept.releasing,
            start_noted: kept.starting,
            peers,
            health,
            timers,
            now_hint: now,
            heard: false,
            nonce_overdue: false,
            sent_epoch: None,
            asked: std::cell::Cell::new(None),
            started: now,
            next_effect: 0,
            actions: VecDeque::new(),
            events: Vec::new(),
            rejects_pending: BTreeMap::new(),
            rejects_total: BTreeMap::new(),
            refused: 0,
            last_reject_report: None,
            sent: 0,
            sent_at: quorum::Sent::default(),
            steady: Steadiness::default(),
        };
        if !machine.settings.vips.is_empty() {
            let vips = machine.settings.vips.clone();
            machine.election.stale_probe = Some(machine.effect(Effect::FindStale { vips }));
        }
        machine.heartbeat();
        machine
    }

    /// Feeds one input that happened at `now`.
    pub fn handle(&mut self, now: Instant, input: Input<'_>) {
        if self.lifecycle == Lifecycle::Exited {
            return;
        }
        self.observe(now);
        self.dispatch(now, input);
    }

    /// Feeds an input that happened at `at` but that the shell reads only now, at a
    /// wake-up it brings other inputs to as well: a routine heartbeat set aside
    /// while this node is quiet (see [`Machine::quiet_toward`]), dated by its
    /// arrival. It says nothing of when the shell woke, so the input or timeout
    /// that follows judges the wake-up (late or not, see `observe`). Time never goes
    /// back: a date before the latest input's is taken as that one.
    pub fn handle_arrived(&mut self, at: Instant, input: Input<'_>) {
        if self.lifecycle == Lifecycle::Exited {
            return;
        }
        let now = at.max(self.now_hint);
        self.now_hint = now;
        self.dispatch(now, input);
    }

    fn dispatch(&mut self, now: Instant, input: Input<'_>) {
        match input {
            Input::Datagram { link, from, bytes } => {
                match Heartbeat::decode(bytes, &self.settings.signer) {
                    Ok(hb) => self.on_heartbeat(now, link, from, &hb),
                    Err(err) => self.reject(now, Reject::Decode(err)),
                }
                self.answer_early(now);
            }
            Input::Heartbeat { link, from, packet } => {
                self.on_heartbeat(now, link, from, &packet.heartbeat());
                self.answer_early(now);
            }
            Input::Check { index, run } => self.on_check(now, index, run),
            Input::Done { id, outcome } => self.on_done(now, id, outcome),
            Input::Shutdown => self.on_shutdown(now),
            Input::Probed { id, result } => self.on_probed(now, id, result),
            Input::Conflict(sighting) => self.on_conflict(now, sighting),
        }
        self.evaluate(now);
        self.tend_guard(now);
        self.tend_majority(now);
        self.note_holder(now);
        self.pace(now);
        self.flush_events();
    }

    /// Sends this interval's heartbeats now, with the ones just heard, when they are
    /// due within half an interval anyway. Every wake-up costs a node more than the
    /// work it wakes for, and this saves one an interval: the two nodes fall into
    /// step, one beating on its timer and the other in the same wake-up as it hears
    /// it. The next beat is then set a sixteenth of an interval past the next one
    /// expected, so that it keeps following; should that one not come, this node
    /// beats at most that much late, and never late by the peer's `warn`.
    fn answer_early(&mut self, now: Instant) {
        // Only for a heartbeat accepted: junk and replays must not set the pace.
        if !std::mem::take(&mut self.heard) {
            return;
        }
        let interval = self.settings.timing.interval;
        let Some(due) = self.timers.get(Timer::Heartbeat) else {
            return;
        };
        if self.lifecycle != Lifecycle::Running || due > now + interval / 2 {
            return;
        }
        self.renew_nonce_early(now);
        self.heartbeat();
        // Never so late that the peer would count it late: `warn` may be as short
        // as an interval.
        let warn = self.settings.timing.warn;
        let slack = (interval / 16).min(warn.saturating_sub(interval) / 2);
        self.timers
            .set(Timer::Heartbeat, now + self.beat_interval() + slack);
    }

    /// Renews the nonce with this interval's heartbeats rather than on a wake-up of
    /// its own when it is due before the next ones: a nonce a little younger than it
    /// need be costs nothing, a wake-up every `dead` at a 10 ms interval a fifth more.
    fn renew_nonce_early(&mut self, now: Instant) {
        let interval = self.settings.timing.interval;
        if self.nonce_unheard() {
            return;
        }
        if self.nonce_overdue
            || self
                .timers
                .get(Timer::Nonce)
                .is_some_and(|due| due <= now + interval)
        {
            self.renew_nonce(now);
        }
    }

    /// Runs the timers due at `now`. Calling it early or twice is harmless.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.lifecycle == Lifecycle::Exited {
            return;
        }
        self.observe(now);
        let due = self.timers.expire(now);
        for &(timer, at) in &due {
            match timer {
                Timer::Silence(i) => self.age_peer(now, i),
                // Renewed with the next heartbeat, never between two: a nonce the
                // peer has not heard yet must not replace the one it echoes (a
                // quiet heartbeat lost or refused, see `pace`), or its echo would
                // fall two behind and its heartbeats would count as stale here.
                Timer::Nonce => self.nonce_overdue = true,
                Timer::Heartbeat => {
                    self.renew_nonce_early(now);
                    self.heartbeat();
                    // Keep the cadence, whatever extra heartbeats role changes sent
                    // in between; after a stall, start again from now, not in a burst.
                    let interval = self.beat_interval();
                    let next = if at + interval > now {
                        at + interval
                    } else {
                        now + interval
                    };
                    self.timers.set(Timer::Heartbeat, next);
                }
                Timer::VipRetry => self.retry_vips(now),
                Timer::Refresh => {
                    self.timers.set_or_stop(
                        Timer::Refresh,
                        self.settings.announce.refresh.map(|r| now + r),
                    );
                    if self.holding() {
                        let action = self.announce_action(1);
                        self.actions.push_back(action);
                    }
                }
                Timer::RejectReport => {
                    if !self.rejects_pending.is_empty() {
                        self.report_rejects(now);
                    }
                }
                Timer::HealthGrace => self.arm_health_grace(now),
                Timer::Unstick(i) => self.unstick(now, i, Unstuck::Timeout),
                // Waits that rules ask about with `Timers::pending`: their end is
                // for the election below to act on.
                // The quiet lapses now unless the echo came: `pace` below beats.
                Timer::QuietEcho => {}
                Timer::HeardBack
                | Timer::InitDead
                | Timer::Handshake(_)
                | Timer::Yield
                | Timer::ReleaseGrace
                | Timer::Claim
                | Timer::Failback
                | Timer::Probe
                | Timer::Fence(_)
                | Timer::Resumed
                | Timer::Veto
                | Timer::Damped => {}
                Timer::Majority => self.withdraw_in_release(now),
                Timer::Relax => self.relax(now),
            }
        }
        self.timers.restore(due);
        self.evaluate(now);
        self.tend_guard(now);
        self.tend_majority(now);
        self.note_holder(now);
        self.pace(now);
        self.flush_events();
    }

    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// When [`Machine::handle_timeout`] must next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.lifecycle == Lifecycle::Exited {
            return None;
        }
        let next = self.timers.next();
        self.asked.set(next);
        next
    }

    pub fn role(&self) -> Role {
        self.election.role()
    }

    /// Since when the node has had its current role, and why.
    pub fn since(&self) -> (Instant, &Reason) {
        (self.election.since, &self.election.reason)
    }

    pub fn name(&self) -> &str {
        &self.settings.name
    }

    pub fn incarnation(&self) -> u64 {
        self.incarnation
    }

    pub fn peers(&self) -> &[Peer] {
        &self.peers
    }

    pub fn health(&self) -> &Health {
        &self.health
    }

    /// Whether a release (stop hook, VIP removal) is under way.
    pub fn releasing(&self) -> bool {
        matches!(self.election.phase, Phase::Releasing(_))
    }

    /// Whether the daemon was asked to stop (a release, then goodbye, may still be
    /// under way).
    pub fn stopping(&self) -> bool {
        self.lifecycle != Lifecycle::Running
    }

    /// Whether an operator's handover waits for a quiet standby to wake before the
    /// release begins (see `election::Handover`).
    pub fn handing_over(&self) -> bool {
        self.handover().is_some()
    }

    /// The operator's handover waiting for a quiet standby, if any.
    fn handover(&self) -> Option<&Handover> {
        match &self.election.phase {
            Phase::Active(active) => active.handover.as_ref(),
            _ => None,
        }
    }

    /// VIPs whose addition succeeded and that have not been released since.
    pub fn held_vips(&self) -> Vec<&VipTarget> {
        self.settings
            .vips
            .iter()
            .zip(&self.election.vips)
            .filter(|(_, s)| **s == VipState::Held)
            .map(|(v, _)| v)
            .collect()
    }

    /// Dropped datagrams since start, by reason.
    pub fn rejected(&self) -> &BTreeMap<&'static str, u64> {
        &self.rejects_total
    }

    pub fn heartbeats_sent(&self) -> u64 {
        self.sent
    }

    /// Whether the start-up check for VIPs left by a crash has been answered.
    pub fn reconciled(&self) -> bool {
        self.election.stale_probe.is_none()
    }

    pub fn maintenance(&self) -> bool {
        self.maintenance
    }

    /// Whether the state directory is to say that a release is under way (see
    /// `note_release`): set from a release's start, or from the start of a daemon
    /// that found the note, until nothing it is about remains.
    pub fn release_noted(&self) -> bool {
        self.release_noted
    }

    /// Whether the start hook is noted as running in the state directory (see
    /// `note_start`): the exit leaves the note only then.
    pub fn start_noted(&self) -> bool {
        self.start_noted
    }

    /// The event for the outcome of effect `id`, a hook that ended after this
    /// machine exited (a notification the shell waited for): what the machine
    /// would have logged, had it been running. None for any other outcome.
    pub fn late_outcome(&self, id: EffectId, outcome: &Outcome) -> Option<Event> {
        let Outcome::Hook { success, summary } = outcome else {
            return None;
        };
        let hook = self.election.hooks_running.get(&id).copied();
        Some(hook_event(hook, *success, summary))
    }

    /// How many datagrams this machine has refused so far, for any reason: the
    /// shell tells by it whether one it handed over was taken.
    pub fn refused(&self) -> u64 {
        self.refused
    }

    /// Why an unplanned takeover is held back, if one is (see `guard`).
    pub fn takeover_held(&self) -> Option<&Hold> {
        self.election.guard.held()
    }

    /// Other hosts seen claiming a VIP while this node held it.
    pub fn vip_conflicts(&self) -> u64 {
        self.election.conflicts
    }

    /// Notices that this node did not run for `dead` or more (SIGSTOP, a VM pause,
    /// swapping): its peers will have declared it dead and one may hold the VIPs
    /// now. For one `dead` period it then yields to an active peer, and says so in
    /// its heartbeats, so that exactly one node backs off instead of both.
    ///
    /// A node of any role that did not run for `dead`, or that is woken an interval
    /// or more after the deadline it asked for ([`Machine::poll_timeout`]), was
    /// starved (see `steady`): for one interval it judges no peer dead that it heard
    /// within `dead` (longer for a quiet standby) before it stopped running. The
    /// heartbeats that queued up while it was away are read first, so a standby
    /// never takes the VIPs because of its own pause, and a peer that is really
    /// silent is still judged, only later.
    fn observe(&mut self, now: Instant) {
        let gap = now.saturating_duration_since(self.now_hint);
        let late = self
            .asked
            .take()
            .map_or(Duration::ZERO, |at| now.saturating_duration_since(at));
        let (interval, dead) = (self.settings.timing.interval, self.settings.timing.dead);
        let stalled = gap >= dead;
        // One starvation is one episode: the deadlines it left behind are still past
        // on the inputs that follow the first, and counting them again would date
        // the episode from after it, when the peers' silence is no longer excused.
        let ongoing = self.timers.pending(Timer::Resumed, now);
        if stalled || (late >= interval && !ongoing) {
            self.timers.set(Timer::Resumed, now + interval);
            let yields = stalled && self.role() == Role::Active;
            if yields {
                self.events.push(Event::Stalled { gap });
                self.timers.set(Timer::Yield, now + dead);
            }
            let starved_for = if late >= interval { late } else { gap };
            self.starved(now, self.now_hint, starved_for, !yields);
        }
        self.now_hint = now;
    }

    /// Moves to the next freshness nonce; the one before stays valid until the next
    /// renewal, which comes with the first heartbeat `dead` later (`standby_interval`
    /// later or more for a quiet node, see `pace`).
    pub(super) fn renew_nonce(&mut self, now: Instant) {
        self.nonce_overdue = false;
        self.nonces.renew(now);
        self.timers
            .set(Timer::Nonce, now + self.settings.timing.dead);
    }

    pub(super) fn yielding(&self) -> bool {
        self.timers.pending(Timer::Yield, self.now_hint)
    }

    // --- inputs -------------------------------------------------------------

    fn on_heartbeat(&mut self, now: Instant, link: usize, from: IpAddr, hb: &Heartbeat<'_>) {
        if hb.cluster != self.settings.cluster {
            return self.reject(now, Reject::ForeignCluster);
        }
        let Some(index) = self.peers.iter().position(|p| p.name == hb.node) else {
            return self.reject(now, Reject::UnknownNode);
        };
        let fresh = peer::Freshness {
            issued: self.nonces.find(hb.echo).map(|issued| issued.at),
            dead: self.settings.timing.dead,
            handshake: self.settings.handshake_wait(),
        };
        let peer = &mut self.peers[index];
        let Some(view) = peer.links.iter().position(|v| v.link == link) else {
            return self.reject(now, Reject::WrongSource);
        };
        if usize::from(hb.link) != link || peer.links[view].address != from {
            return self.reject(now, Reject::WrongSource);
        }
        // A claimer that withdraws held nothing: only a confirmed holder's release is
        // the reason for a takeover.
        let was_holding = peer.holds() && !peer.claiming;
        let alive = peer.alive;
        let accepted = peer.accept(view, hb, &fresh, now, &mut self.events);
        self.track_peer(now, index);
        let update = match accepted {
            Ok(update) => {
                self.heard = true;
                update
            }
            // The first packets from a peer that has not heard us yet are stale by
            // design; only count them. Stale packets while it is alive are suspect.
            Err(Reject::Stale) if !alive => {
                *self
                    .rejects_total
                    .entry(Reject::Stale.as_str())
                    .or_default() += 1;
                self.answer_stale(now);
                return;
            }
            Err(reject) => {
                if reject == Reject::Stale {
                    self.answer_stale(now);
                }
                return self.reject(now, reject);
            }
        };
        let peer = &mut self.peers[index];
        if peer.fingerprint != Some(hb.fingerprint) {
            let before = peer.fingerprint.replace(hb.fingerprint);
            let ours = self.settings.fingerprint;
            if hb.fingerprint != ours {
                self.events.push(Event::FingerprintMismatch {
                    peer: peer.name.clone(),
                    ours,
                    theirs: hb.fingerprint,
                });
            } else if before.is_some() {
                self.events.push(Event::FingerprintMatch {
                    peer: peer.name.clone(),
                });
            }
        }
        // A claimer waits for every peer that might claim too to echo its claim, or
        // a nonce of ours issued since: a claim that waits longer than `dead` for a
        // late rival sees its nonce renewed, and the rival echoes the newer one.
        // Nonces are random, so "since" is told by their epochs.
        let echoed = self.nonces.find(hb.echo);
        // From the newest heartbeat only: an older one that came late on another
        // link echoes an older nonce and would end a quiet spell for nothing.
        if self.peers[index].is_newest(hb.sequence) {
            self.peers[index].echoed = echoed.map(|issued| issued.epoch);
        }
        if let Phase::Claiming(claim) = &mut self.election.phase
            && echoed.is_some_and(|issued| issued.epoch >= claim.epoch)
        {
            claim.waiting.retain(|&i| i != index);
        }
        // Answer a claim at once rather than at the next interval, and tell the
        // other voters at once that this node hears a peer again, or no more.
        let votes_changed = self.peers[index].alive != alive;
        if update.started_claiming || (votes_changed && self.settings.majority_rule()) {
            self.heartbeat();
        }
        // For damping, a holder that backs off after a stall (it says "yielding")
        // or that restarted did not hand over: the move it makes room for is
        // unplanned.
        let peer = &self.peers[index];
        if was_holding && !peer.holds() {
            let planned = !update.restarted && !peer.yielding;
            self.note_let_go(planned);
        }
        let peer = &mut self.peers[index];
        // A holder that restarted did not let go: its daemon died, and its kernel
        // may still hold the VIPs (it adopts them when it can).
        if was_holding && !peer.holds() && !update.restarted {
            let peer = peer.name.clone();
            self.election.takeover_reason = Some(if self.peers[index].leaving {
                Reason::PeerLeft { peer }
            } else {
                Reason::PeerReleased { peer }
            });
        }
        // The classic outage after a partition heals: the node that stayed active
        // never re-announces, and switches keep sending to the other node's port.
        if (update.came_up || update.link_healed || update.stopped_being_active)
            && self.holding()
            && !self.yielding()
        {
            let action = self.announce_action(self.settings.announce.rounds);
            self.actions.push_back(action);
        }
    }

    /// Ages the links to peer `i`; a holder that went silent on every link is dead,
    /// and that is why the next takeover happens.
    fn age_peer(&mut self, now: Instant, i: usize) {
        if self.timers.pending(Timer::Resumed, now) && self.excused(i) {
            return self.track_peer(now, i);
        }
        let held = self.peers[i].holds();
        let died = self.peers[i].age(now, &self.settings.timing, &mut self.events);
        if died && held {
            self.election.takeover_reason = Some(Reason::PeerDead {
                peer: self.peers[i].name.clone(),
            });
            self.note_let_go(false);
        }
        self.track_peer(now, i);
        // Whom this node hears is a vote: its peers learn of the change at once,
        // not an interval later (see `quorum`).
        if died && self.settings.majority_rule() {
            self.heartbeat();
        }
    }

    /// Arms the deadlines that peer `i`'s state implies: the next link-silence
    /// threshold, and the end of a handshake under way.
    fn track_peer(&mut self, now: Instant, i: usize) {
        let peer = &self.peers[i];
        let resumed = self.timers.get(Timer::Resumed).filter(|at| *at > now);
        let silence = peer
            .deadline(&self.settings.timing)
            .map(|at| resumed.map_or(at, |r| at.max(r)));
        let handshake = peer
            .handshake_since
            .map(|since| since + self.settings.handshake_wait())
            .filter(|at| *at > now);
        self.timers.set_or_stop(Timer::Silence(i), silence);
        self.timers.set_or_stop(Timer::Handshake(i), handshake);
    }

    fn on_done(&mut self, now: Instant, id: EffectId, outcome: &Outcome) {
        match outcome {
            Outcome::Present(found) if self.election.stale_probe == Some(id) => {
                self.election.stale_probe = None;
                self.remove_stale(now, found);
            }
            Outcome::Vip(result) => self.on_vip_done(now, id, result),
            Outcome::Hook { success, summary } => {
                let hook = self.election.hooks_running.remove(&id);
                self.events.push(hook_event(hook, *success, summary));
                match hook {
                    Some(Hook::Start) => {
                        // Ended, well or not: a restart has nothing to finish.
                        self.note_start(false);
                        self.on_start_hook_done(now, *success, summary);
                    }
                    Some(Hook::Fence) => self.on_fence_done(now, id, *success),
                    _ => {}
                }
            }
            _ => {}
        }
        let removing = self.election.removing();
        if let Phase::Releasing(release) = &mut self.election.phase {
            release.last_done |= release.last == Some(id);
            if release.last_done && !removing {
                self.finish_release(now);
            }
        }
        self.settle_note();
    }

    fn on_shutdown(&mut self, now: Instant) {
        if self.lifecycle != Lifecycle::Running {
            return;
        }
        self.lifecycle = Lifecycle::Stopping;
        if let Phase::Claiming(claim) = &self.election.phase {
            // Nothing was added yet: the claim is simply withdrawn.
            let from = claim.from;
            self.election.phase = Phase::from_role(from);
        }
        if self.releasing() {
            // The release under way ends in the farewell.
            return;
        }
        // A VIP a reload took out of the file may still be in the kernel too.
        let holds_any = self.election.vips.iter().any(|s| *s != VipState::Absent)
            || !self.election.retired.is_empty();
        if self.role() == Role::Active || holds_any {
            self.start_release(now, election::After::Standby, Reason::Shutdown);
        } else {
            self.farewell();
        }
    }

    // --- plumbing -----------------------------------------------------------

    fn effect(&mut self, effect: Effect) -> EffectId {
        let id = EffectId(self.next_effect);
        self.next_effect += 1;
        self.actions.push_back(Action::Effect { id, effect });
        id
    }

    /// Removes a VIP beside the effect queue (see [`Action::Withdraw`]).
    fn withdraw(&mut self, vip: VipTarget) -> EffectId {
        let id = EffectId(self.next_effect);
        self.next_effect += 1;
        self.actions.push_back(Action::Withdraw { id, vip });
        self.election.withdrawals.insert(id);
        id
    }

    /// Sends one heartbeat to every peer on every link, now. Role and health changes
    /// call it out of turn; the regular cadence is kept by the heartbeat timer, so
    /// those extra ones never delay the next regular heartbeat.
    fn heartbeat(&mut self) {
        self.sequence += 1;
        let mut flags = 0;
        if self.releasing() {
            flags |= FLAG_RELEASING;
        }
        if self.lifecycle != Lifecycle::Running {
            flags |= FLAG_LEAVING;
        }
        if self.maintenance {
            flags |= FLAG_MAINTENANCE;
        }
        match self.election.request {
            Some(Request::Takeover) => flags |= FLAG_TAKEOVER,
            Some(Request::Standby) => flags |= FLAG_STANDBY,
            None => {}
        }
        if self.yielding() {
            flags |= FLAG_YIELDING;
        }
        if self.health.failed() {
            flags |= FLAG_FAILED;
        }
        // A claimer says "active" to its peers, so that none claims beside it, and
        // "claiming", so that none takes it for a holder that may not be moved.
        let claiming = matches!(self.election.phase, Phase::Claiming(_));
        if claiming {
            flags |= FLAG_CLAIMING;
        }
        let quiet = self.quiet();
        let epoch = self.nonces.epoch();
        if !quiet && self.sent_epoch == Some((epoch, true)) {
            self.note_quiet_unechoed(epoch);
        }
        let first = self.sent_epoch.is_none_or(|(sent, _)| sent != epoch);
        self.sent_epoch = match self.sent_epoch {
            Some((sent, only_quiet)) if sent == epoch => Some((epoch, only_quiet && quiet)),
            _ => Some((epoch, quiet)),
        };
        // Lost on every link, this nonce goes unechoed, and the quiet ends two
        // intervals after it was issued (`quiet_toward`): this node beats then, not
        // at whatever wake-up comes next, since the active node's patience with a
        // quiet standby allows for those two intervals and no more (`Peer::judged_by`).
        if quiet && first {
            let due = self.nonces.issued_at() + self.settings.timing.interval * 2;
            self.timers.set(Timer::QuietEcho, due);
        }
        let mut hb = Heartbeat {
            link: 0,
            state: if claiming {
                Role::Active.wire()
            } else {
                self.role().wire()
            },
            flags,
            health: self.health.score(),
            priority: self.settings.priority,
            incarnation: self.incarnation,
            sequence: self.sequence,
            fingerprint: self.settings.fingerprint,
            nonce: self.nonces.current(),
            echo: 0,
            votes: None,
            quiet,
            // A standby order wakes the standby with its own flag (`standby`); the
            // bit is for a failback, so as few heartbeats as can carry it.
            wake: self.handing_over() && self.election.request != Some(Request::Standby),
            cluster: Cow::Borrowed(""),
            node: Cow::Borrowed(""),
        };
        self.record_sent(self.sequence);
        let heard = self.heard_now();
        // Borrowed only now, past the calls above that need the whole machine.
        hb.cluster = Cow::Borrowed(&self.settings.cluster);
        hb.node = Cow::Borrowed(&self.settings.name);
        for peer in &self.peers {
            hb.echo = peer.heard_nonce.unwrap_or(0);
            hb.votes = heard.map(|heard| self.votes_for(peer, heard));
            for view in &peer.links {
                let link = view.link;
                hb.link = u8::try_from(link).unwrap_or(u8::MAX);
                self.actions.push_back(Action::Send {
                    link,
                    to: SocketAddr::new(view.address, self.settings.port),
                    datagram: hb.packet(&self.settings.signer),
                });
                self.sent += 1;
            }
        }
    }

    /// Adds VIP `i`, whose first announcement round goes out with the add (see
    /// [`Effect::AddVip`]); [`Machine::announce_after_adds`] queues the rest.
    fn add_effect(&mut self, i: usize) -> EffectId {
        self.effect(Effect::AddVip {
            vip: self.settings.vips[i].clone(),
            announce: self.settings.announce.rounds > 0,
        })
    }

    /// The announcement rounds after the first, which the adds just queued sent
    /// each as its VIP was added: one interval after them, behind them in the queue.
    /// Only for the VIPs held or being added: one whose add failed, or put off
    /// because another host answers for it, must not pull its clients here (the
    /// shell also leaves out those whose add just failed).
    fn announce_after_adds(&mut self) {
        let vips: Vec<VipTarget> = (0..self.settings.vips.len())
            .filter(|&i| matches!(self.election.vips[i], VipState::Held | VipState::Adding(_)))
            .map(|i| self.settings.vips[i].clone())
            .collect();
        let announce = &self.settings.announce;
        if announce.rounds > 1 && !vips.is_empty() {
            self.effect(Effect::Announce {
                vips,
                rounds: announce.rounds - 1,
                interval: announce.interval,
                delay: announce.interval,
            });
        }
    }

    fn announce_action(&self, rounds: u32) -> Action {
        Action::Announce {
            vips: self.settings.vips.clone(),
            rounds,
            interval: self.settings.announce.interval,
        }
    }

    fn reject(&mut self, now: Instant, reject: Reject) {
        self.refused += 1;
        let key = reject.as_str();
        *self.rejects_total.entry(key).or_default() += 1;
        self.rejects_pending.entry(key).or_insert((reject, 0)).1 += 1;
        match self.last_reject_report {
            Some(last) if now.saturating_duration_since(last) < REJECT_REPORT_EVERY => {
                self.timers
                    .set(Timer::RejectReport, last + REJECT_REPORT_EVERY);
            }
            _ => self.report_rejects(now),
        }
    }

    fn report_rejects(&mut self, now: Instant) {
        self.last_reject_report = Some(now);
        self.timers.stop(Timer::RejectReport);
        let counts = std::mem::take(&mut self.rejects_pending)
            .into_values()
            .collect();
        self.events.push(Event::Rejected { counts });
    }

    fn flush_events(&mut self) {
        for event in self.events.drain(..) {
            self.actions.push_back(Action::Log(event));
        }
    }
}

/// What a hook's outcome is logged as; `hook` is None only for an effect the
/// machine did not ask for.
fn hook_event(hook: Option<Hook>, success: bool, summary: &str) -> Event {
    let hook = hook.map_or("unknown", Hook::as_str);
    let outcome = summary.to_string();
    match success {
        true => Event::HookDone { hook, outcome },
        false => Event::HookFailed { hook, outcome },
    }
}
