//! The status report as the core knows it: a pure view of the machine's state,
//! which the shell completes with what only it knows (process, hook runs, events).

use std::collections::BTreeMap;
use std::time::{Instant, SystemTime};

use super::election::{Phase, Request, VipState};
use super::health::{self, Kind};
use super::{Machine, Role};
use crate::config::Scope;
use crate::status::{self, PeerState, Status, millis, rfc3339, unix_ms};

impl Machine {
    /// Each peer's name and state, as `status` reports them, without allocating:
    /// the shell looks every second for the status page's timeline.
    pub fn peer_states(&self) -> impl Iterator<Item = (&str, PeerState)> {
        self.peers.iter().map(|p| (p.name.as_str(), p.state()))
    }

    /// Whether maintenance is on, set here or by a live peer (`status.maintenance.on`),
    /// without allocating.
    pub fn frozen(&self) -> bool {
        self.maintenance || self.peers.iter().any(|p| p.present() && p.maintenance)
    }

    /// What this node knows, for `failoverd status`. The shell adds what only it
    /// knows (process, hook runs, events) and the wall-clock times.
    pub fn status(&self, now: Instant, wall: SystemTime) -> Status {
        let at = |t: Instant| match t.checked_duration_since(now) {
            Some(ahead) => wall + ahead,
            None => wall
                .checked_sub(now.saturating_duration_since(t))
                .unwrap_or(wall),
        };
        let holder = self.holder();
        let mut set_by: Vec<String> = Vec::new();
        if self.maintenance {
            set_by.push(self.settings.name.clone());
        }
        set_by.extend(
            self.peers
                .iter()
                .filter(|p| p.present() && p.maintenance)
                .map(|p| p.name.clone()),
        );
        let auto = self.settings.failback == crate::config::Failback::Auto;
        let (failback_due, failback_held) = match &self.election.phase {
            Phase::Active(active) => (
                // Maintenance freezes failback: the wait it left is no promise.
                active.failback.filter(|_| !self.frozen()).map(|wait| {
                    let due = at(wait.since + self.settings.failback_delay);
                    status::FailbackDue {
                        to: self.peers[wait.peer].name.clone(),
                        at: rfc3339(due),
                        at_unix_ms: unix_ms(due),
                    }
                }),
                auto && active.pinned,
            ),
            _ => (None, false),
        };
        let mut received: BTreeMap<String, u64> = BTreeMap::new();
        for peer in &self.peers {
            for link in &peer.links {
                *received.entry(link.name.clone()).or_default() += link.received;
            }
        }
        Status {
            version: crate::status::VERSION,
            cluster: self.settings.cluster.clone(),
            node: self.settings.name.clone(),
            priority: self.settings.priority,
            pid: 0,
            daemon_version: String::new(),
            config: String::new(),
            fingerprint: self
                .settings
                .fingerprint
                .iter()
                .map(|b| format!("{b:02x}"))
                .collect(),
            state: self.role().into(),
            since: rfc3339(at(self.election.since)),
            since_unix_ms: unix_ms(at(self.election.since)),
            reason: self.election.reason.to_string(),
            reason_kind: self.election.reason.kind().to_string(),
            releasing: self.releasing(),
            handing_over: self.handing_over(),
            handing_over_to: self.handover().and_then(|h| h.to.clone()),
            handing_over_ms: self.handover().map(|h| {
                u64::try_from(now.saturating_duration_since(h.since).as_millis())
                    .unwrap_or(u64::MAX)
            }),
            maintenance: status::Maintenance {
                on: !set_by.is_empty(),
                set_by,
            },
            standby_requested: self.election.request == Some(Request::Standby),
            takeover_requested: self.election.request == Some(Request::Takeover),
            failback: self.settings.failback.into(),
            failback_delay_ms: u64::try_from(self.settings.failback_delay.as_millis())
                .unwrap_or(u64::MAX),
            failback_due,
            failback_held,
            preferred: Some(self.preferred_node()),
            health: self.health_status(now, &at),
            vips: self
                .settings
                .vips
                .iter()
                .zip(&self.election.vips)
                .enumerate()
                .map(|(i, (v, s))| status::VipStatus {
                    address: v.to_string(),
                    interface: v.interface.clone(),
                    label: v.label.clone(),
                    held_here: *s == VipState::Held,
                    holder: holder.clone(),
                    removal_failures: u64::from(self.removal_failures(i)),
                })
                .collect(),
            peers: self
                .peers
                .iter()
                .map(|p| status::PeerStatus {
                    name: p.name.clone(),
                    state: p.state().into(),
                    alive: p.alive,
                    priority: p.priority,
                    health_failing: p.health,
                    maintenance: p.maintenance,
                    standby_requested: p.standby,
                    fingerprint_match: p.fingerprint.map(|f| f == self.settings.fingerprint),
                    failed: p.failed,
                    quiet: p.quiet && p.alive,
                    links: p
                        .links
                        .iter()
                        .map(|l| status::LinkStatus {
                            name: l.name.clone(),
                            address: l.address.to_string(),
                            state: l.state.into(),
                            last_heartbeat_ms: l
                                .last_rx
                                .map(|t| millis(now.saturating_duration_since(t))),
                            received: l.received,
                            // What the filter refused is the shell's to add.
                            unauthentic: 0,
                            last_unauthentic_ms: None,
                        })
                        .collect(),
                })
                .collect(),
            counters: status::Counters {
                heartbeats_sent: self.sent,
                heartbeats_received: received.into_iter().collect(),
                rejected: self
                    .rejects_total
                    .iter()
                    .map(|(k, v)| ((*k).to_string(), *v))
                    .collect(),
                // The shell's receivers count what they drop before the machine.
                dropped: Vec::new(),
                read_late: Vec::new(),
                // The shell's senders count how heartbeats left.
                sent_raw: Vec::new(),
                raw_failed: Vec::new(),
                transitions: self
                    .election
                    .transitions
                    .iter()
                    .map(|((to, reason), count)| status::TransitionCount {
                        to: (*to).into(),
                        reason: (*reason).to_string(),
                        count: *count,
                    })
                    .collect(),
                vip_conflicts: self.election.conflicts,
            },
            hooks: Vec::new(),
            events: Vec::new(),
            last_takeover_ms: self.election.last_takeover.map(millis),
            takeover_held: self.election.guard.held().map(ToString::to_string),
            // The shell knows which addresses the host has.
            addresses_missing: Vec::new(),
            reading_late: Vec::new(),
            heartbeat_every_ms: millis(self.beat_interval()),
            quiet: self.quiet(),
            scheduling: status::SchedulingStatus::default(),
            // The shell keeps it, from events and from what it sees each second.
            history: status::History::default(),
            damping: self.damping_status(&at),
            starved: status::StarvedStatus {
                count: self.steady.starved,
                longest_ms: (self.steady.starved > 0).then(|| millis(self.steady.longest_starved)),
                last_ms: self.steady.last_starved.map(|(_, late)| millis(late)),
                last: self.steady.last_starved.map(|(when, _)| rfc3339(at(when))),
            },
        }
    }

    fn damping_status(&self, at: &impl Fn(Instant) -> SystemTime) -> status::DampingStatus {
        let d = self.damping();
        status::DampingStatus {
            enabled: d.enabled,
            flapping: d.flapping,
            changes: u64::try_from(d.changes).unwrap_or(u64::MAX),
            takeover_silence_ms: millis(d.silence),
            since: d.since.map(|t| rfc3339(at(t))),
            until: d.until.map(|t| rfc3339(at(t))),
            episodes: d.episodes,
        }
    }

    fn health_status(
        &self,
        now: Instant,
        at: &impl Fn(Instant) -> SystemTime,
    ) -> status::HealthStatus {
        let checks = self.health.checks();
        let last_ms = |c: &health::Check| c.last.as_ref().map(|run| millis(run.took));
        status::HealthStatus {
            failing: self.health.score(),
            gateways: checks
                .iter()
                .filter_map(|c| match &c.spec.kind {
                    Kind::Ping(address) => Some(status::GatewayStatus {
                        address: address.clone(),
                        reachable: !c.failing,
                        rtt_ms: c
                            .last
                            .as_ref()
                            .filter(|run| run.passed)
                            .map(|run| millis(run.took)),
                        consecutive_failures: c.failures,
                        probes: c.runs,
                    }),
                    _ => None,
                })
                .collect(),
            interfaces: checks
                .iter()
                .filter_map(|c| match &c.spec.kind {
                    Kind::Link(name) if c.spec.name == format!("link-{name}") => {
                        Some(status::InterfaceStatus {
                            name: name.clone(),
                            up: !c.failing,
                        })
                    }
                    _ => None,
                })
                .collect(),
            checks: checks
                .iter()
                .map(|c| {
                    let counting = c.spec.scope == Scope::Both
                        || (c.spec.builtin() && self.role() == Role::Active)
                        || self.service_settled(now, c.spec.start_grace);
                    let state = match (c.failing, counting) {
                        (true, _) => status::CheckState::Failing,
                        (false, true) => status::CheckState::Passing,
                        (false, false) => status::CheckState::Idle,
                    };
                    status::CheckStatus {
                        name: c.spec.name.clone(),
                        kind: c.spec.kind.as_str().to_string(),
                        target: c.spec.kind.target().to_string(),
                        on: c.spec.scope,
                        weight: c.spec.weight,
                        fatal: c.spec.fatal,
                        state: state.into(),
                        consecutive_failures: c.failures,
                        runs: c.runs,
                        last_duration_ms: last_ms(c),
                        last_detail: c
                            .last
                            .as_ref()
                            .map(|run| run.detail.clone())
                            .filter(|d| !d.is_empty()),
                        failed: c.failed_at.is_some(),
                        failed_until: c
                            .failed_at
                            .zip(c.spec.failure_timeout)
                            .map(|(at_, timeout)| rfc3339(at(at_ + timeout))),
                    }
                })
                .collect(),
            failed: self.health.failed(),
        }
    }
}
