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
//!   first). When no live node is active, the first-ranked candidate takes over.
//! - The active node stays active against a better-ranked standby, except that with
//!   `failback = "auto"` it hands over once that node has been up and no less healthy
//!   for `failback_delay` without a break (a restart starts the wait over).
//! - A node that fails more health checks than a live peer goes to fault and releases;
//!   if no live peer is healthier, nothing moves, so a gateway lost for everyone causes
//!   no failover storm, and a node alone takes the VIPs whatever its health.
//! - Two active nodes (a healed partition): the lower-ranked one releases as soon as it
//!   hears the other.
//! - Every planned move releases first: stop hook, then VIP removal, then a heartbeat
//!   that says so; the peer takes over on that heartbeat instead of waiting for `dead`.
//!   So a planned move never leaves the VIPs on two nodes.

pub mod event;
pub mod health;
pub mod peer;
mod report;

use std::collections::{BTreeMap, VecDeque};
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::time::{Duration, Instant};

pub use event::{Event, Reason, Reject, Role, Severity};
use health::{Change, Health, Source};
use peer::Peer;

use crate::config::{Config, Failback, Timing};
use crate::wire::heartbeat::{
    FLAG_LEAVING, FLAG_MAINTENANCE, FLAG_RELEASING, FLAG_STANDBY, FLAG_TAKEOVER, FLAG_YIELDING,
    Heartbeat, Signer,
};

/// Rejections are summed up in one log line at most this often.
const REJECT_REPORT_EVERY: Duration = Duration::from_secs(10);
/// A VIP that could not be added is tried again after this long.
const VIP_RETRY: Duration = Duration::from_secs(1);
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
}

impl Hook {
    pub fn as_str(self) -> &'static str {
        match self {
            Hook::Start => "start",
            Hook::Stop => "stop",
            Hook::Fault => "fault",
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
    AddVip(VipTarget),
    RemoveVip(VipTarget),
    /// Announce the VIPs `rounds` times, `interval` apart; the rounds run in the
    /// background, so this effect completes at once.
    Announce {
        vips: Vec<VipTarget>,
        rounds: u32,
        interval: Duration,
    },
    RunHook {
        hook: Hook,
        program: PathBuf,
        env: Vec<(String, String)>,
        timeout: Duration,
    },
}

/// An operator's request, from the control socket.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Order {
    /// Make this node active now; the holder releases first.
    Takeover,
    /// Hand the VIPs to a peer and keep out of the way while a peer can hold them.
    Standby,
    /// Move the VIPs to the preferred (first-ranked) node.
    Failback,
    /// Freeze or thaw automatic transitions.
    Maintenance(bool),
}

/// The result of an [`Effect`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// For [`Effect::FindStale`]: indexes of the VIPs found.
    Present(Vec<usize>),
    /// For VIP additions and removals.
    Vip(Result<(), String>),
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
    /// A health probe finished: `rtt` is `None` when it failed.
    Probe {
        source: Source,
        rtt: Option<Duration>,
    },
    /// The effect `id` finished.
    Done { id: EffectId, outcome: &'a Outcome },
    /// Leave the cluster gracefully (SIGTERM): hand over, then [`Action::Exit`].
    Shutdown,
}

/// What the shell must do.
#[derive(Debug, Clone, PartialEq)]
pub enum Action {
    /// Send a datagram on `link`'s socket. Never waits behind an effect.
    Send {
        link: usize,
        to: SocketAddr,
        datagram: Vec<u8>,
    },
    /// Queue a slow effect; report it back with [`Input::Done`].
    Effect { id: EffectId, effect: Effect },
    /// Announce the held VIPs now, outside the effect queue (they are already held).
    Announce {
        vips: Vec<VipTarget>,
        rounds: u32,
        interval: Duration,
    },
    /// Log an event.
    Log(Event),
    /// The graceful shutdown is complete: the process may exit.
    Exit,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum VipState {
    Absent,
    Adding(EffectId),
    Held,
    Removing(EffectId),
    Failed { retry_at: Instant },
}

/// Where a release ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum After {
    Standby,
    Fault,
    Exit,
}

#[derive(Debug, Clone)]
struct Release {
    after: After,
    reason: Reason,
    /// The last effect of the release; its completion ends the release.
    last: Option<EffectId>,
}

/// A peer as [`Machine::peers`] shows it.
pub use peer::{LinkState, LinkView};

/// One node's election state machine.
#[derive(Debug)]
pub struct Machine {
    name: String,
    cluster: String,
    priority: u16,
    /// This node's address on each link (the sockets are bound to them).
    addresses: Vec<IpAddr>,
    port: u16,
    timing: Timing,
    failback: Failback,
    failback_delay: Duration,
    vips: Vec<VipTarget>,
    hooks: [Option<PathBuf>; 3],
    hook_timeout: Duration,
    announce_rounds: u32,
    announce_interval: Duration,
    refresh: Option<Duration>,
    fingerprint: [u8; 8],
    signer: Signer,
    incarnation: u64,
    sequence: u64,
    /// Freshness nonce, changed every `dead`; peers must echo it (see wire::heartbeat).
    nonce: u64,
    previous_nonce: u64,
    next_nonce_at: Instant,
    nonce_epoch: u64,

    role: Role,
    previous_role: Role,
    since: Instant,
    reason: Reason,
    started: Instant,
    release: Option<Release>,
    stopping: bool,
    exited: bool,
    /// Why the next takeover happens, learned when the holder went away.
    takeover_reason: Option<Reason>,
    stale_probe: Option<EffectId>,
    /// Active, waiting for the VIPs before running the start hook.
    start_pending: bool,
    takeover_started: Option<Instant>,
    last_takeover: Option<Duration>,
    /// When this node last lost a health check; see [`Machine::healthier_peer`].
    health_lost_at: Option<Instant>,
    health_grace: Duration,
    /// The time of the latest input, so `poll_timeout` can skip past deadlines.
    now_hint: Instant,

    peers: Vec<Peer>,
    health: Health,
    vip_state: Vec<VipState>,
    hooks_running: BTreeMap<EffectId, Hook>,
    next_heartbeat: Instant,
    next_refresh: Option<Instant>,
    next_effect: u64,
    actions: VecDeque<Action>,
    events: Vec<Event>,
    rejects_pending: BTreeMap<&'static str, (event::Reject, u64)>,
    rejects_total: BTreeMap<&'static str, u64>,
    last_reject_report: Option<Instant>,
    sent: u64,
    /// Set by `failoverd maintenance on` here: no automatic transitions anywhere.
    maintenance: bool,
    /// Set by `failoverd standby`: keep out while another node can hold the VIPs.
    standby_requested: bool,
    /// Set by `failoverd takeover` (or failback on the preferred node) until active.
    takeover_requested: bool,
    /// Active by an operator's takeover: automatic failback leaves it alone.
    pinned: bool,
    transitions: BTreeMap<(Role, &'static str), u64>,
    /// After a stall, until when this node yields to an active peer.
    yield_until: Option<Instant>,
    /// When this node last finished a release.
    released_at: Option<Instant>,
}

impl Machine {
    /// A machine for node `me` of `config`. `incarnation` must grow from one start of
    /// the daemon to the next (the shell uses the wall-clock start time in µs): peers
    /// reject anything older, which is what makes replayed packets harmless.
    pub fn new(config: &Config, me: usize, incarnation: u64, now: Instant) -> Machine {
        Machine::with_maintenance(config, me, incarnation, false, now)
    }

    /// Like [`Machine::new`], for a node whose maintenance mode survived a restart.
    pub fn with_maintenance(
        config: &Config,
        me: usize,
        incarnation: u64,
        maintenance: bool,
        now: Instant,
    ) -> Machine {
        let node = &config.nodes[me];
        let peers = config
            .nodes
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != me)
            .map(|(_, n)| Peer::new(n.name.clone(), &config.links, &n.addresses, n.priority))
            .collect();
        let mut machine = Machine {
            name: node.name.clone(),
            addresses: node.addresses.clone(),
            cluster: config.cluster.name.clone(),
            priority: node.priority,
            port: config.cluster.port,
            timing: config.timing,
            failback: config.cluster.failback,
            failback_delay: config.cluster.failback_delay,
            vips: vip_targets(config, me),
            hooks: [
                config.hooks.start.clone(),
                config.hooks.stop.clone(),
                config.hooks.fault.clone(),
            ],
            hook_timeout: config.hooks.timeout,
            announce_rounds: config.announce.count,
            announce_interval: config.announce.interval,
            refresh: config.announce.refresh,
            fingerprint: config.fingerprint(),
            signer: Signer::new(config.key.as_bytes()),
            incarnation,
            sequence: 0,
            nonce: nonce_for(incarnation, 0),
            previous_nonce: 0,
            next_nonce_at: now + config.timing.dead,
            nonce_epoch: 0,
            role: Role::Starting,
            previous_role: Role::Starting,
            since: now,
            reason: Reason::Start,
            started: now,
            release: None,
            stopping: false,
            exited: false,
            takeover_reason: None,
            stale_probe: None,
            start_pending: false,
            takeover_started: None,
            last_takeover: None,
            health_lost_at: None,
            health_grace: config.health.interval + config.timing.interval * 2,
            now_hint: now,
            peers,
            health: Health::new(
                &config.health.gateways,
                &checked_interfaces(config, me),
                config.health.failures,
            ),
            vip_state: vec![VipState::Absent; config.vips.len()],
            hooks_running: BTreeMap::new(),
            next_heartbeat: now + config.timing.interval,
            next_refresh: None,
            next_effect: 0,
            actions: VecDeque::new(),
            events: Vec::new(),
            rejects_pending: BTreeMap::new(),
            rejects_total: BTreeMap::new(),
            last_reject_report: None,
            sent: 0,
            maintenance,
            standby_requested: false,
            takeover_requested: false,
            pinned: false,
            transitions: BTreeMap::new(),
            yield_until: None,
            released_at: None,
        };
        if !machine.vips.is_empty() {
            let vips = machine.vips.clone();
            machine.stale_probe = Some(machine.effect(Effect::FindStale { vips }));
        }
        machine.heartbeat();
        machine
    }

    /// Feeds one input that happened at `now`.
    pub fn handle(&mut self, now: Instant, input: Input<'_>) {
        if self.exited {
            return;
        }
        self.observe(now);
        match input {
            Input::Datagram { link, from, bytes } => self.on_datagram(now, link, from, bytes),
            Input::Probe { source, rtt } => self.on_probe(now, source, rtt),
            Input::Done { id, outcome } => self.on_done(now, id, outcome),
            Input::Shutdown => self.on_shutdown(now),
        }
        self.evaluate(now);
        self.flush_events();
    }

    /// Runs the timers due at `now`. Calling it early or twice is harmless.
    pub fn handle_timeout(&mut self, now: Instant) {
        if self.exited {
            return;
        }
        self.observe(now);
        for i in 0..self.peers.len() {
            let held = self.peers[i].holds();
            if self.peers[i].age(now, &self.timing, &mut self.events) && held {
                self.takeover_reason = Some(Reason::PeerDead {
                    peer: self.peers[i].name.clone(),
                });
            }
        }
        if now >= self.next_nonce_at {
            self.previous_nonce = self.nonce;
            self.nonce_epoch += 1;
            self.nonce = nonce_for(self.incarnation, self.nonce_epoch);
            self.next_nonce_at = now + self.timing.dead;
        }
        if now >= self.next_heartbeat {
            self.heartbeat();
            // Keep the cadence, whatever extra heartbeats role changes sent in
            // between; after a stall, start again from now rather than bursting.
            self.next_heartbeat += self.timing.interval;
            if self.next_heartbeat <= now {
                self.next_heartbeat = now + self.timing.interval;
            }
        }
        self.retry_vips(now);
        if !self.rejects_pending.is_empty()
            && self
                .last_reject_report
                .is_none_or(|t| now >= t + REJECT_REPORT_EVERY)
        {
            self.report_rejects(now);
        }
        if let Some(at) = self.next_refresh
            && now >= at
        {
            self.next_refresh = self.refresh.map(|r| now + r);
            if self.holding() {
                self.actions.push_back(self.announce_action(1));
            }
        }
        self.evaluate(now);
        self.flush_events();
    }

    pub fn poll_action(&mut self) -> Option<Action> {
        self.actions.pop_front()
    }

    /// When [`Machine::handle_timeout`] must next be called.
    pub fn poll_timeout(&self) -> Option<Instant> {
        if self.exited {
            return None;
        }
        let mut next = self.next_heartbeat.min(self.next_nonce_at);
        let mut consider = |t: Option<Instant>| {
            if let Some(t) = t {
                next = next.min(t);
            }
        };
        // Only timers that `handle_timeout` acts on in the current state: a deadline
        // that is due but ignored would wake the shell in a busy loop.
        let deciding = self.role == Role::Active && self.release.is_none() && !self.stopping;
        if self.just_released() {
            consider(self.released_at.map(|t| t + self.timing.interval * 3));
        }
        for peer in &self.peers {
            consider(peer.deadline(&self.timing));
            if self.handshaking(peer) {
                consider(peer.handshake_since.map(|t| t + self.handshake_wait()));
            }
            if deciding && let Some(since) = peer.failback_since {
                consider(Some(since + self.failback_delay));
            }
        }
        if self.role == Role::Starting && !self.stopping {
            let all_heard = self.peers.iter().all(|p| p.alive || p.leaving);
            if all_heard && self.now_hint < self.started + self.timing.interval * 2 {
                consider(Some(self.started + self.timing.interval * 2));
            }
            consider(Some(self.started + self.timing.init_dead));
        }
        if (deciding || matches!(self.role, Role::Standby | Role::Starting))
            && let Some(at) = self.health_settles_at()
        {
            consider(Some(at));
        }
        consider(self.next_refresh);
        if !self.rejects_pending.is_empty() {
            consider(self.last_reject_report.map(|t| t + REJECT_REPORT_EVERY));
        }
        if deciding {
            for state in &self.vip_state {
                if let VipState::Failed { retry_at } = state {
                    consider(Some(*retry_at));
                }
            }
        }
        Some(next)
    }

    pub fn role(&self) -> Role {
        self.role
    }

    /// Since when the node has had its current role, and why.
    pub fn since(&self) -> (Instant, &Reason) {
        (self.since, &self.reason)
    }

    pub fn name(&self) -> &str {
        &self.name
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
        self.release.is_some()
    }

    /// VIPs whose addition succeeded and that have not been released since.
    pub fn held_vips(&self) -> Vec<&VipTarget> {
        self.vips
            .iter()
            .zip(&self.vip_state)
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

    /// Notices that this node did not run for `dead` or more (SIGSTOP, a VM pause,
    /// swapping): its peers will have declared it dead and one may hold the VIPs
    /// now. For one `dead` period it then yields to an active peer, and says so in
    /// its heartbeats, so that exactly one node backs off instead of both.
    fn observe(&mut self, now: Instant) {
        let gap = now.saturating_duration_since(self.now_hint);
        if gap >= self.timing.dead && self.role == Role::Active {
            self.events.push(Event::Stalled { gap });
            self.yield_until = Some(now + self.timing.dead);
        }
        self.now_hint = now;
    }

    fn yielding(&self) -> bool {
        self.yield_until.is_some_and(|t| self.now_hint < t)
    }

    /// Carries out an operator's order, or says why it cannot be done. Moves are
    /// planned moves: whoever holds the VIPs releases first, so they are never on
    /// two nodes. The shell watches the status for the outcome.
    pub fn order(&mut self, now: Instant, order: Order) -> Result<String, String> {
        self.now_hint = now;
        let result = self.obey(now, order);
        self.evaluate(now);
        self.flush_events();
        result
    }

    fn obey(&mut self, now: Instant, order: Order) -> Result<String, String> {
        if let Order::Maintenance(on) = order {
            return self.set_maintenance(on);
        }
        if let Some(by) = self.frozen_by() {
            return Err(format!(
                "maintenance is on (set on {by}); turn it off first"
            ));
        }
        if self.stopping {
            return Err("this node is shutting down".into());
        }
        if self.release.is_some() {
            return Err("a release is under way; try again in a moment".into());
        }
        match order {
            Order::Takeover => self.order_takeover(),
            Order::Standby => self.order_standby(now),
            Order::Failback => self.order_failback(now),
            Order::Maintenance(_) => unreachable!("handled above"),
        }
    }

    fn order_takeover(&mut self) -> Result<String, String> {
        match self.role {
            Role::Active => return Err("this node is already active".into()),
            Role::Starting => return Err("this node is still starting".into()),
            Role::Fault => {
                return Err(format!(
                    "this node fails {} health check(s); fix them first",
                    self.health.failing()
                ));
            }
            Role::Standby => {}
        }
        self.takeover_requested = true;
        self.standby_requested = false;
        self.heartbeat();
        Ok(match self.peers.iter().find(|p| p.holds()) {
            Some(holder) => format!("asked {} to release; taking over then", holder.name),
            None => "taking over".into(),
        })
    }

    fn order_standby(&mut self, now: Instant) -> Result<String, String> {
        let candidates: Vec<&Peer> = self
            .peers
            .iter()
            .filter(|p| p.present() && p.role != Role::Starting)
            .collect();
        if candidates.is_empty() {
            return Err("no live peer could take over".into());
        }
        if candidates.iter().all(|p| p.role == Role::Fault) {
            let names: Vec<&str> = candidates.iter().map(|p| p.name.as_str()).collect();
            return Err(format!("peer {} is in fault", names.join(", ")));
        }
        self.standby_requested = true;
        self.takeover_requested = false;
        self.pinned = false;
        if self.role == Role::Active {
            self.start_release(now, After::Standby, Reason::OperatorStandby);
            Ok("releasing the VIPs to a peer; staying standby".into())
        } else {
            self.heartbeat();
            Ok("standing by: this node will not take over while a peer can".into())
        }
    }

    fn order_failback(&mut self, now: Instant) -> Result<String, String> {
        let me = self.rank();
        let preferred = self
            .peers
            .iter()
            .filter(|p| p.present() && p.role != Role::Fault && !p.standby)
            .filter(|p| rank_of(p) > me)
            .max_by_key(|p| rank_of(p))
            .map(|p| p.name.clone());
        let holder = if self.role == Role::Active {
            Some(self.name.clone())
        } else {
            self.peers
                .iter()
                .find(|p| p.holds())
                .map(|p| p.name.clone())
        };
        let Some(holder) = holder else {
            return Err("no node holds the VIPs".into());
        };
        let preferred = preferred.unwrap_or_else(|| self.name.clone());
        if preferred == holder {
            return Err(format!(
                "the VIPs are already on the preferred node {holder}"
            ));
        }
        if holder == self.name {
            self.start_release(
                now,
                After::Standby,
                Reason::Failback {
                    peer: preferred.clone(),
                },
            );
            return Ok(format!("handing the VIPs back to {preferred}"));
        }
        if preferred == self.name {
            return self.order_takeover();
        }
        Err(format!(
            "run it on {holder} (the holder) or {preferred} (the preferred node)"
        ))
    }

    fn set_maintenance(&mut self, on: bool) -> Result<String, String> {
        if !on && !self.maintenance {
            let by: Vec<&str> = self
                .peers
                .iter()
                .filter(|p| p.present() && p.maintenance)
                .map(|p| p.name.as_str())
                .collect();
            if by.is_empty() {
                return Err("maintenance is not on".into());
            }
            return Err(format!(
                "maintenance was turned on on {}; turn it off there",
                by.join(", ")
            ));
        }
        if on == self.maintenance {
            return Ok("maintenance is already on".into());
        }
        self.maintenance = on;
        self.heartbeat();
        Ok(if on {
            "maintenance on: no automatic transitions until `maintenance off`".into()
        } else {
            "maintenance off: automatic transitions resume".into()
        })
    }

    /// Who put the cluster in maintenance, if anyone alive did.
    fn frozen_by(&self) -> Option<String> {
        let mut by: Vec<&str> = Vec::new();
        if self.maintenance {
            by.push(&self.name);
        }
        by.extend(
            self.peers
                .iter()
                .filter(|p| p.present() && p.maintenance)
                .map(|p| p.name.as_str()),
        );
        (!by.is_empty()).then(|| by.join(", "))
    }

    /// Whether the start-up check for VIPs left by a crash has been answered.
    pub fn reconciled(&self) -> bool {
        self.stale_probe.is_none()
    }

    pub fn maintenance(&self) -> bool {
        self.maintenance
    }

    /// Applies a reloaded configuration without dropping a VIP that stays
    /// configured. Nodes, links, the cluster name and the port need a restart.
    /// Returns what changed, for the log.
    pub fn reconfigure(&mut self, now: Instant, config: &Config) -> Result<Vec<String>, String> {
        self.now_hint = now;
        let Some(me) = config.node_index(&self.name) else {
            return Err(format!(
                "this node ({}) is no longer in the file",
                self.name
            ));
        };
        let peer_names: Vec<&str> = config
            .nodes
            .iter()
            .filter(|n| n.name != self.name)
            .map(|n| n.name.as_str())
            .collect();
        let current: Vec<&str> = self.peers.iter().map(|p| p.name.as_str()).collect();
        if config.cluster.name != self.cluster
            || config.cluster.port != self.port
            || peer_names != current
            || config.links.len() != self.peers.first().map_or(0, |p| p.links.len())
            || self
                .peers
                .first()
                .is_some_and(|p| p.links.iter().map(|l| &l.name).ne(config.links.iter()))
        {
            return Err(
                "the cluster name, port, nodes or links changed: restart the daemons to apply"
                    .into(),
            );
        }
        let node = &config.nodes[me];
        if node.addresses != self.addresses {
            return Err(
                "this node's heartbeat addresses changed: restart the daemon to listen on them"
                    .into(),
            );
        }
        let mut changes = Vec::new();
        if node.priority != self.priority {
            changes.push(format!("priority {} -> {}", self.priority, node.priority));
            self.priority = node.priority;
        }
        if config.timing != self.timing {
            changes.push("timing".to_string());
            self.timing = config.timing;
        }
        if config.cluster.failback != self.failback
            || config.cluster.failback_delay != self.failback_delay
        {
            changes.push("failback".to_string());
            self.failback = config.cluster.failback;
            self.failback_delay = config.cluster.failback_delay;
        }
        let hooks = [
            config.hooks.start.clone(),
            config.hooks.stop.clone(),
            config.hooks.fault.clone(),
        ];
        if hooks != self.hooks || config.hooks.timeout != self.hook_timeout {
            changes.push("hooks".to_string());
            self.hooks = hooks;
            self.hook_timeout = config.hooks.timeout;
        }
        self.announce_rounds = config.announce.count;
        self.announce_interval = config.announce.interval;
        if config.announce.refresh != self.refresh {
            changes.push("announce".to_string());
            self.refresh = config.announce.refresh;
            self.next_refresh = match (self.role, self.refresh) {
                (Role::Active, Some(r)) => Some(now + r),
                _ => None,
            };
        }
        let interfaces = checked_interfaces(config, me);
        let next =
            self.health
                .reconfigured(&config.health.gateways, &interfaces, config.health.failures);
        let targets = |h: &Health| {
            h.checks()
                .iter()
                .map(|c| c.target.clone())
                .collect::<Vec<_>>()
        };
        if targets(&next) != targets(&self.health) {
            changes.push("health checks".to_string());
        }
        self.health = next;
        self.health_grace = config.health.interval + config.timing.interval * 2;
        let fingerprint = config.fingerprint();
        if fingerprint != self.fingerprint {
            self.fingerprint = fingerprint;
        }
        self.signer = Signer::new(config.key.as_bytes());
        for (peer, node) in self
            .peers
            .iter_mut()
            .zip(config.nodes.iter().filter(|n| n.name != self.name))
        {
            for (view, address) in peer.links.iter_mut().zip(&node.addresses) {
                view.address = *address;
            }
        }
        self.reconfigure_vips(vip_targets(config, me), &mut changes);
        self.heartbeat();
        self.evaluate(now);
        self.flush_events();
        Ok(changes)
    }

    fn reconfigure_vips(&mut self, targets: Vec<VipTarget>, changes: &mut Vec<String>) {
        let mut states = Vec::with_capacity(targets.len());
        for target in &targets {
            let old = self.vips.iter().position(|v| v == target);
            states.push(old.map_or(VipState::Absent, |i| self.vip_state[i]));
        }
        for (i, old) in self.vips.clone().into_iter().enumerate() {
            if targets.contains(&old) {
                continue;
            }
            changes.push(format!("VIP {old} removed"));
            if self.vip_state[i] != VipState::Absent {
                // Not tracked: the VIP leaves the configuration with this removal.
                self.effect(Effect::RemoveVip(old));
            }
        }
        let added: Vec<usize> = (0..targets.len())
            .filter(|&i| !self.vips.contains(&targets[i]))
            .collect();
        self.vips = targets;
        self.vip_state = states;
        for &i in &added {
            changes.push(format!("VIP {} added", self.vips[i]));
        }
        if self.role == Role::Active && self.release.is_none() && !added.is_empty() {
            for &i in &added {
                let id = self.effect(Effect::AddVip(self.vips[i].clone()));
                self.vip_state[i] = VipState::Adding(id);
            }
            let effect = self.announce_effect(self.announce_rounds);
            self.effect(effect);
        }
    }

    // --- inputs -------------------------------------------------------------

    fn on_datagram(&mut self, now: Instant, link: usize, from: IpAddr, bytes: &[u8]) {
        let hb = match Heartbeat::decode(bytes, &self.signer) {
            Ok(hb) => hb,
            Err(err) => return self.reject(now, Reject::Decode(err)),
        };
        if hb.cluster != self.cluster {
            return self.reject(now, Reject::ForeignCluster);
        }
        let Some(index) = self.peers.iter().position(|p| p.name == hb.node) else {
            return self.reject(now, Reject::UnknownNode);
        };
        let ours = self.nonces();
        let peer = &mut self.peers[index];
        let Some(view) = peer.links.get(link) else {
            return self.reject(now, Reject::WrongSource);
        };
        if usize::from(hb.link) != link || view.address != from {
            return self.reject(now, Reject::WrongSource);
        }
        let was_holding = peer.holds();
        let alive = peer.alive;
        let update = match peer.accept(link, &hb, ours, now, &mut self.events) {
            Ok(update) => update,
            // The first packets from a peer that has not heard us yet are stale by
            // design; only count them. Stale packets while it is alive are suspect.
            Err(Reject::Stale) if !alive => {
                *self
                    .rejects_total
                    .entry(Reject::Stale.as_str())
                    .or_default() += 1;
                return;
            }
            Err(reject) => return self.reject(now, reject),
        };
        if peer.fingerprint != Some(hb.fingerprint) {
            peer.fingerprint = Some(hb.fingerprint);
            if hb.fingerprint != self.fingerprint {
                self.events.push(Event::FingerprintMismatch {
                    peer: peer.name.clone(),
                    ours: self.fingerprint,
                    theirs: hb.fingerprint,
                });
            }
        }
        let name = peer.name.clone();
        if was_holding && !peer.holds() {
            self.takeover_reason = Some(if peer.leaving {
                Reason::PeerLeft { peer: name }
            } else {
                Reason::PeerReleased { peer: name }
            });
        }
        // The classic outage after a partition heals: the node that stayed active
        // never re-announces, and switches keep sending to the other node's port.
        if (update.came_up || update.link_healed || update.stopped_being_active)
            && self.holding()
            && !self.yielding()
        {
            self.actions
                .push_back(self.announce_action(self.announce_rounds));
        }
    }

    fn on_probe(&mut self, now: Instant, source: Source, rtt: Option<Duration>) {
        let change = self.health.record(source, rtt);
        let Some(check) = self.health.check(source) else {
            return;
        };
        match change {
            Change::None => return,
            Change::Lost => {
                self.events.push(Event::CheckFailed {
                    check: check.target.to_string(),
                    failures: check.failures,
                });
                self.health_lost_at = Some(now);
            }
            Change::Restored => {
                self.events.push(Event::CheckPassed {
                    check: check.target.to_string(),
                });
                if self.health.failing() == 0 {
                    self.health_lost_at = None;
                }
            }
        }
        // Peers rank on health: tell them now rather than at the next interval.
        self.heartbeat();
    }

    fn on_done(&mut self, now: Instant, id: EffectId, outcome: &Outcome) {
        match outcome {
            Outcome::Present(found) if self.stale_probe == Some(id) => {
                self.stale_probe = None;
                self.remove_stale(now, found);
            }
            Outcome::Vip(result) => self.on_vip_done(now, id, result),
            Outcome::Hook { success, summary } => {
                let hook = self.hooks_running.remove(&id).map_or("hook", Hook::as_str);
                self.events.push(if *success {
                    Event::HookDone {
                        hook,
                        outcome: summary.clone(),
                    }
                } else {
                    Event::HookFailed {
                        hook,
                        outcome: summary.clone(),
                    }
                });
            }
            _ => {}
        }
        if let Some(release) = &self.release
            && release.last.is_some_and(|last| id >= last)
        {
            self.finish_release(now);
        }
    }

    fn on_vip_done(&mut self, now: Instant, id: EffectId, result: &Result<(), String>) {
        let Some(i) = self
            .vip_state
            .iter()
            .position(|s| matches!(s, VipState::Adding(x) | VipState::Removing(x) if *x == id))
        else {
            return;
        };
        let vip = self.vips[i].to_string();
        match (self.vip_state[i], result) {
            (VipState::Adding(_), Ok(())) => {
                self.vip_state[i] = VipState::Held;
                if self.role == Role::Active && self.release.is_none() {
                    self.start_when_held(now);
                }
            }
            (VipState::Adding(_), Err(error)) => {
                self.events.push(Event::VipFailed {
                    vip,
                    action: "add",
                    error: error.clone(),
                });
                self.vip_state[i] = VipState::Failed {
                    retry_at: now + VIP_RETRY,
                };
            }
            (VipState::Removing(_), result) => {
                if let Err(error) = result {
                    self.events.push(Event::VipFailed {
                        vip,
                        action: "remove",
                        error: error.clone(),
                    });
                }
                self.vip_state[i] = VipState::Absent;
            }
            _ => {}
        }
    }

    fn on_shutdown(&mut self, now: Instant) {
        if self.stopping {
            return;
        }
        self.stopping = true;
        if let Some(release) = &mut self.release {
            release.after = After::Exit;
            return;
        }
        if self.role == Role::Active || self.vip_state.iter().any(|s| *s != VipState::Absent) {
            self.start_release(now, After::Exit, Reason::Shutdown);
        } else {
            self.farewell();
        }
    }

    // --- the election -------------------------------------------------------

    fn evaluate(&mut self, now: Instant) {
        if self.stopping || self.release.is_some() || self.exited {
            return;
        }
        if let Some(by) = self.frozen_by() {
            // Maintenance: nothing moves. A starting node still has to say what it
            // is; it holds nothing (or, in its own maintenance, adopted what it found).
            let waited = now >= self.started + self.timing.interval * 2;
            if self.role == Role::Starting && waited {
                self.transition(now, Role::Standby, Reason::Maintenance { by });
            }
            // An operator stopped the holder: taking over is the answer to a
            // deliberate act, not an automatic move, so maintenance allows it.
            let left = matches!(self.takeover_reason, Some(Reason::PeerLeft { .. }));
            if left
                && matches!(self.role, Role::Standby | Role::Fault)
                && !self.peers.iter().any(|p| p.holds())
                && self.ranks_first()
            {
                let reason = self.takeover_reason.take().unwrap_or(Reason::Elected);
                return self.become_active(now, reason);
            }
            // Two holders is never left alone, maintenance or not: resolving it is
            // a safety action, not an automatic move.
            if self.role == Role::Active
                && let Some(peer) = self.outranking_holder()
            {
                self.start_release(now, After::Standby, Reason::PeerOutranks { peer });
            }
            return;
        }
        match self.role {
            Role::Starting => {
                if let Some(holder) = self.peers.iter().find(|p| p.holds()) {
                    let peer = holder.name.clone();
                    return self.transition(now, Role::Standby, Reason::PeerActive { peer });
                }
                // Hearing every peer ends the wait early, but not before our own
                // "starting" heartbeats have had time to reach them: a peer that was
                // about to claim the VIPs has then either claimed (and we see it) or
                // deferred to us.
                let all_heard = self.peers.iter().all(|p| p.alive || p.leaving);
                let heard_back = all_heard && now >= self.started + self.timing.interval * 2;
                if !heard_back && now < self.started + self.timing.init_dead {
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
        }
    }

    /// A node that holds nothing: fault, standby, or take over.
    fn settle(&mut self, now: Instant, default_reason: Reason) {
        if let Some(peer) = self.healthier_peer(now) {
            if self.role != Role::Fault {
                self.transition(now, Role::Fault, Reason::HealthLost { peer });
                self.run_hook(Hook::Fault);
            }
            return;
        }
        let recovered = if self.health.failing() == 0 {
            Reason::HealthRestored
        } else {
            Reason::NoHealthierPeer
        };
        if let Some(holder) = self.peers.iter().find(|p| p.holds()) {
            let peer = holder.name.clone();
            match self.role {
                Role::Fault => self.transition(now, Role::Standby, recovered),
                Role::Starting => self.transition(now, Role::Standby, Reason::PeerActive { peer }),
                _ => {}
            }
            return;
        }
        if self.ranks_first() && !self.just_released() {
            let reason = if self.takeover_requested {
                self.takeover_reason = None;
                Reason::OperatorTakeover
            } else {
                self.takeover_reason.take().unwrap_or(default_reason)
            };
            return self.become_active(now, reason);
        }
        match self.role {
            Role::Fault => self.transition(now, Role::Standby, recovered),
            Role::Starting => {
                let reason = match self.first_ranked_peer() {
                    Some(peer) => Reason::PeerRanksFirst { peer },
                    None => default_reason,
                };
                self.transition(now, Role::Standby, reason);
            }
            _ => {}
        }
    }

    fn keep_or_release(&mut self, now: Instant) {
        if let Some(peer) = self.healthier_peer(now) {
            return self.start_release(now, After::Fault, Reason::HealthLost { peer });
        }
        if self.yielding()
            && let Some(peer) = self
                .peers
                .iter()
                .find(|p| p.holds() && !p.releasing && !p.leaving)
                .map(|p| p.name.clone())
        {
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
        if self.failback != Failback::Auto || self.pinned {
            return;
        }
        let mine = self.health.failing();
        let mut due = None;
        for peer in &mut self.peers {
            let preferred = peer.present()
                && peer.role == Role::Standby
                && !peer.standby
                && !peer.maintenance
                && peer.priority > self.priority
                && peer.health <= mine;
            if !preferred {
                peer.failback_since = None;
                continue;
            }
            let since = *peer.failback_since.get_or_insert(now);
            if now.saturating_duration_since(since) >= self.failback_delay && due.is_none() {
                due = Some(peer.name.clone());
            }
        }
        if let Some(peer) = due {
            self.start_release(now, After::Standby, Reason::Failback { peer });
        }
    }

    /// An active peer that ranks above this node (and is not already backing off).
    fn outranking_holder(&self) -> Option<String> {
        let me = self.rank();
        self.peers
            .iter()
            .find(|p| p.holds() && !p.releasing && !p.leaving && !p.yielding && rank_of(p) > me)
            .map(|p| p.name.clone())
    }

    /// A node that has just handed the VIPs over gives the peer a few intervals to
    /// say it took them before it would claim them back: its view of the peer may
    /// be a heartbeat old, and one lost packet must not make two holders.
    fn just_released(&self) -> bool {
        self.released_at
            .is_some_and(|t| self.now_hint < t + self.timing.interval * 3)
            && self.peers.iter().any(|p| p.present())
    }

    fn handshaking(&self, peer: &Peer) -> bool {
        peer.handshake_since
            .is_some_and(|since| self.now_hint < since + self.handshake_wait())
    }

    /// How long an election waits for a peer whose handshake is under way: a round
    /// trip takes one interval, and one lost packet another.
    fn handshake_wait(&self) -> Duration {
        self.timing.interval * 3
    }

    /// When a fresh health loss has lasted long enough to act on, if it has not yet.
    fn health_settles_at(&self) -> Option<Instant> {
        let at = self.health_lost_at? + self.health_grace;
        (at > self.now_hint).then_some(at)
    }

    /// A live, settled peer that fails fewer health checks than this node.
    ///
    /// A loss is acted on only after `health_grace` (one probe interval and two
    /// heartbeats): when a gateway dies for everyone, the peers notice up to one probe
    /// interval apart, and a node that released at once would hand the VIPs to a peer
    /// that is about to find itself just as cut off.
    fn healthier_peer(&self, now: Instant) -> Option<String> {
        if self
            .health_lost_at
            .is_some_and(|at| now < at + self.health_grace)
        {
            return None;
        }
        let mine = self.health.failing();
        self.peers
            .iter()
            .filter(|p| p.present() && matches!(p.role, Role::Standby | Role::Active))
            .filter(|p| p.health < mine)
            .min_by_key(|p| p.health)
            .map(|p| p.name.clone())
    }

    fn rank(&self) -> Rank {
        Rank {
            takeover: self.takeover_requested,
            available: !self.standby_requested,
            health: std::cmp::Reverse(self.health.failing()),
            priority: self.priority,
            name: std::cmp::Reverse(self.name.clone()),
        }
    }

    /// The best-ranked peer that could take over, if it outranks this node.
    fn first_ranked_peer(&self) -> Option<String> {
        let me = self.rank();
        self.peers
            .iter()
            .filter(|p| p.present() && p.role != Role::Active && rank_of(p) > me)
            .max_by_key(|p| rank_of(p))
            .map(|p| p.name.clone())
    }

    /// Whether this node is the first among the nodes that could take over. Not
    /// while a peer is completing its handshake: it may rank first, and it may
    /// already see things this node does not.
    fn ranks_first(&self) -> bool {
        if self.peers.iter().any(|p| self.handshaking(p)) {
            return false;
        }
        let me = self.rank();
        !self
            .peers
            .iter()
            // Peers in fault count too: their fault may have been relative to a node
            // that is gone now, and health comes first in the rank anyway.
            .filter(|p| p.present() && p.role != Role::Active)
            .any(|p| rank_of(p) > me)
    }

    // --- role changes -------------------------------------------------------

    /// The one place a role changes: logs from, to and why, and tells the peers.
    fn transition(&mut self, now: Instant, to: Role, reason: Reason) {
        let from = self.role;
        if from == to {
            return;
        }
        *self.transitions.entry((to, reason.kind())).or_default() += 1;
        if to != Role::Active {
            self.pinned = false;
        }
        self.events.push(Event::Transition {
            from,
            to,
            reason: reason.clone(),
        });
        self.previous_role = from;
        self.role = to;
        self.since = now;
        self.reason = reason;
        for peer in &mut self.peers {
            peer.failback_since = None;
        }
        self.heartbeat();
    }

    /// Order matters: VIPs first, then the announcement, then the start hook, so the
    /// service starts only once clients can reach it.
    fn become_active(&mut self, now: Instant, reason: Reason) {
        // Cleared before the transition's heartbeat, which must not still ask.
        let pinned = self.takeover_requested;
        self.takeover_requested = false;
        self.standby_requested = false;
        self.transition(now, Role::Active, reason);
        self.pinned = pinned;
        for i in 0..self.vips.len() {
            if self.vip_state[i] != VipState::Held {
                let id = self.effect(Effect::AddVip(self.vips[i].clone()));
                self.vip_state[i] = VipState::Adding(id);
            }
        }
        if !self.vips.is_empty() {
            let effect = self.announce_effect(self.announce_rounds);
            self.effect(effect);
        }
        self.next_refresh = self.refresh.map(|r| now + r);
        self.takeover_started = Some(now);
        self.start_pending = true;
        self.start_when_held(now);
    }

    /// Runs the start hook once every VIP is in place: a service started while an
    /// address is missing would answer nobody. A failed add is retried, and the hook
    /// waits for it.
    fn start_when_held(&mut self, now: Instant) {
        if !self.start_pending || self.vip_state.iter().any(|s| *s != VipState::Held) {
            return;
        }
        self.start_pending = false;
        if let Some(started) = self.takeover_started.take() {
            self.last_takeover = Some(now.saturating_duration_since(started));
        }
        self.run_hook(Hook::Start);
    }

    /// The reverse order: stop hook, then VIPs. The heartbeat sent now says
    /// "releasing" so the peer waits for the release to finish rather than adding
    /// the VIPs while this node still has them.
    fn start_release(&mut self, now: Instant, after: After, reason: Reason) {
        // An announcement decided in this same step (the peer came back) must not
        // go out for VIPs about to be removed.
        self.actions
            .retain(|a| !matches!(a, Action::Announce { .. }));
        self.events.push(Event::Releasing {
            reason: reason.clone(),
        });
        self.release = Some(Release {
            after,
            reason,
            last: None,
        });
        let start_ran = !self.start_pending;
        self.start_pending = false;
        self.takeover_started = None;
        let mut last = None;
        if self.role == Role::Active && start_ran {
            last = self.run_hook(Hook::Stop);
        }
        for i in 0..self.vips.len() {
            if !matches!(self.vip_state[i], VipState::Absent | VipState::Removing(_)) {
                let id = self.effect(Effect::RemoveVip(self.vips[i].clone()));
                self.vip_state[i] = VipState::Removing(id);
                last = Some(id);
            }
        }
        self.next_refresh = None;
        self.heartbeat();
        match last {
            Some(id) => {
                if let Some(release) = &mut self.release {
                    release.last = Some(id);
                }
            }
            None => self.finish_release(now),
        }
    }

    fn finish_release(&mut self, now: Instant) {
        let Some(release) = self.release.take() else {
            return;
        };
        self.released_at = Some(now);
        match release.after {
            After::Standby => self.transition(now, Role::Standby, release.reason),
            After::Fault => {
                self.transition(now, Role::Fault, release.reason);
                self.run_hook(Hook::Fault);
            }
            After::Exit => {
                self.transition(now, Role::Standby, release.reason);
                self.farewell();
            }
        }
    }

    /// Tells the peers this node is leaving and holds nothing, then asks to exit.
    fn farewell(&mut self) {
        for _ in 0..FAREWELL_COPIES {
            self.heartbeat();
        }
        // The last transition must reach the log before the shell exits.
        self.flush_events();
        self.actions.push_back(Action::Exit);
        self.exited = true;
    }

    fn remove_stale(&mut self, now: Instant, found: &[usize]) {
        if self.role == Role::Active || self.release.is_some() || found.is_empty() {
            return;
        }
        if self.maintenance {
            // Maintenance leaves VIPs and services as they are, across a restart too.
            for &i in found {
                if let Some(state) = self.vip_state.get_mut(i) {
                    *state = VipState::Held;
                }
            }
            if self.role == Role::Starting {
                let by = self.name.clone();
                self.transition(now, Role::Active, Reason::Maintenance { by });
            }
            return;
        }
        for &i in found {
            if let Some(vip) = self.vips.get(i) {
                self.events.push(Event::StaleVip {
                    vip: vip.to_string(),
                });
            }
        }
        // A crash while active can leave the service running too.
        let role = self.role.as_str();
        self.run_hook_as(Hook::Stop, (role, role, Reason::StaleVip.to_string()));
        for &i in found {
            if self.vip_state.get(i) == Some(&VipState::Absent) {
                let id = self.effect(Effect::RemoveVip(self.vips[i].clone()));
                self.vip_state[i] = VipState::Removing(id);
            }
        }
    }

    fn retry_vips(&mut self, now: Instant) {
        if self.role != Role::Active || self.release.is_some() {
            return;
        }
        let mut retried = false;
        for i in 0..self.vips.len() {
            if let VipState::Failed { retry_at } = self.vip_state[i]
                && now >= retry_at
            {
                let id = self.effect(Effect::AddVip(self.vips[i].clone()));
                self.vip_state[i] = VipState::Adding(id);
                retried = true;
            }
        }
        if retried {
            let effect = self.announce_effect(self.announce_rounds);
            self.effect(effect);
        }
    }

    /// Active with every VIP in place and nothing being released.
    fn holding(&self) -> bool {
        self.role == Role::Active
            && self.release.is_none()
            && !self.vips.is_empty()
            && self.vip_state.iter().all(|s| *s == VipState::Held)
    }

    // --- plumbing -----------------------------------------------------------

    fn effect(&mut self, effect: Effect) -> EffectId {
        let id = EffectId(self.next_effect);
        self.next_effect += 1;
        self.actions.push_back(Action::Effect { id, effect });
        id
    }

    fn run_hook(&mut self, hook: Hook) -> Option<EffectId> {
        let context = self.hook_context(hook);
        self.run_hook_as(hook, context)
    }

    /// Runs `hook` with the given (new state, previous state, reason).
    fn run_hook_as(
        &mut self,
        hook: Hook,
        (state, previous, reason): (&'static str, &'static str, String),
    ) -> Option<EffectId> {
        let index = match hook {
            Hook::Start => 0,
            Hook::Stop => 1,
            Hook::Fault => 2,
        };
        let program = self.hooks[index].clone()?;
        let env = self.hook_env(hook, state, previous, reason);
        let id = self.effect(Effect::RunHook {
            hook,
            program,
            env,
            timeout: self.hook_timeout,
        });
        self.hooks_running.insert(id, hook);
        Some(id)
    }

    /// What a hook run now is about: the new state, the previous one, and why. A
    /// stop hook during a release speaks of where the release ends.
    fn hook_context(&self, hook: Hook) -> (&'static str, &'static str, String) {
        match (&self.release, hook) {
            (Some(release), Hook::Stop) => (
                match release.after {
                    After::Standby => "standby",
                    After::Fault => "fault",
                    After::Exit => "stopped",
                },
                self.role.as_str(),
                release.reason.to_string(),
            ),
            _ => (
                self.role.as_str(),
                self.previous_role.as_str(),
                self.reason.to_string(),
            ),
        }
    }

    /// The environment every hook sees; documented in the README.
    fn hook_env(
        &self,
        hook: Hook,
        state: &str,
        previous: &str,
        reason: String,
    ) -> Vec<(String, String)> {
        let peers: Vec<&str> = self.peers.iter().map(|p| p.name.as_str()).collect();
        let vips: Vec<String> = self.vips.iter().map(ToString::to_string).collect();
        vec![
            ("FAILOVERD_HOOK".into(), hook.as_str().into()),
            ("FAILOVERD_STATE".into(), state.into()),
            ("FAILOVERD_PREVIOUS_STATE".into(), previous.into()),
            ("FAILOVERD_REASON".into(), reason),
            ("FAILOVERD_NODE".into(), self.name.clone()),
            ("FAILOVERD_PEER".into(), peers.join(" ")),
            ("FAILOVERD_CLUSTER".into(), self.cluster.clone()),
            ("FAILOVERD_VIPS".into(), vips.join(" ")),
        ]
    }

    /// Sends one heartbeat to every peer on every link, now. Role and health changes
    /// call it out of turn; the regular cadence is kept by `handle_timeout`, so those
    /// extra ones never delay the next regular heartbeat.
    fn heartbeat(&mut self) {
        self.sequence += 1;
        let mut flags = 0;
        if self.release.is_some() {
            flags |= FLAG_RELEASING;
        }
        if self.stopping {
            flags |= FLAG_LEAVING;
        }
        if self.maintenance {
            flags |= FLAG_MAINTENANCE;
        }
        if self.takeover_requested {
            flags |= FLAG_TAKEOVER;
        }
        if self.standby_requested {
            flags |= FLAG_STANDBY;
        }
        if self.yielding() {
            flags |= FLAG_YIELDING;
        }
        let mut hb = Heartbeat {
            link: 0,
            state: self.role.wire(),
            flags,
            health: self.health.failing(),
            priority: self.priority,
            incarnation: self.incarnation,
            sequence: self.sequence,
            fingerprint: self.fingerprint,
            nonce: self.nonce,
            echo: 0,
            cluster: self.cluster.clone(),
            node: self.name.clone(),
        };
        for peer in &self.peers {
            hb.echo = peer.heard_nonce.unwrap_or(0);
            for (link, view) in peer.links.iter().enumerate() {
                hb.link = u8::try_from(link).unwrap_or(u8::MAX);
                let mut datagram = Vec::with_capacity(128);
                hb.encode(&self.signer, &mut datagram);
                self.actions.push_back(Action::Send {
                    link,
                    to: SocketAddr::new(view.address, self.port),
                    datagram,
                });
                self.sent += 1;
            }
        }
    }

    fn announce_effect(&self, rounds: u32) -> Effect {
        Effect::Announce {
            vips: self.vips.clone(),
            rounds,
            interval: self.announce_interval,
        }
    }

    fn announce_action(&self, rounds: u32) -> Action {
        Action::Announce {
            vips: self.vips.clone(),
            rounds,
            interval: self.announce_interval,
        }
    }

    fn nonces(&self) -> (u64, u64) {
        (self.nonce, self.previous_nonce)
    }

    fn reject(&mut self, now: Instant, reject: Reject) {
        let key = reject.as_str();
        *self.rejects_total.entry(key).or_default() += 1;
        self.rejects_pending.entry(key).or_insert((reject, 0)).1 += 1;
        let due = self
            .last_reject_report
            .is_none_or(|last| now.saturating_duration_since(last) >= REJECT_REPORT_EVERY);
        if due {
            self.report_rejects(now);
        }
    }

    fn report_rejects(&mut self, now: Instant) {
        self.last_reject_report = Some(now);
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

/// The interfaces whose link state is checked: those that carry VIPs on node `me`.
pub fn checked_interfaces(config: &Config, me: usize) -> Vec<String> {
    if !config.health.link_state {
        return Vec::new();
    }
    let mut names: Vec<String> = Vec::new();
    for vip in vip_targets(config, me) {
        if !names.contains(&vip.interface) {
            names.push(vip.interface);
        }
    }
    names
}

/// The VIPs as node `me` places them.
fn vip_targets(config: &Config, me: usize) -> Vec<VipTarget> {
    let node = &config.nodes[me];
    config
        .vips
        .iter()
        .map(|vip| VipTarget {
            address: vip.address,
            prefix_len: vip.prefix_len,
            interface: node.interface(&vip.interface).to_string(),
            label: vip.label_on(node),
        })
        .collect()
}

/// Unique over a node's life and across its restarts (the incarnation is the start
/// time in µs); never 0, which means "nothing heard" on the wire.
fn nonce_for(incarnation: u64, epoch: u64) -> u64 {
    incarnation.wrapping_add(epoch).max(1)
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Rank {
    /// An operator asked this node to take over: it comes first.
    takeover: bool,
    /// Health before the operator's standby request: a node asked to stand by
    /// still takes over rather than leave the VIPs to a node that fails checks.
    health: std::cmp::Reverse<u8>,
    /// An operator asked this node to stand by: it comes after its equals.
    available: bool,
    priority: u16,
    name: std::cmp::Reverse<String>,
}

fn rank_of(peer: &Peer) -> Rank {
    Rank {
        takeover: peer.takeover,
        available: !peer.standby,
        health: std::cmp::Reverse(peer.health),
        priority: peer.priority,
        name: std::cmp::Reverse(peer.name.clone()),
    }
}
