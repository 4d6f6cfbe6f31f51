//! A reloaded configuration applied to a running node, without dropping a VIP that
//! stays configured. What the sockets are bound to (the cluster, the port, the
//! nodes, the links, this node's addresses) needs a restart and is refused.

use std::fmt;
use std::time::Instant;

use super::effects::Retired;
use super::election::{Phase, VipState};
use super::settings::Settings;
use super::timer::Timer;
use super::{Effect, Event, Machine, Role, VipTarget};
use crate::config::Config;

/// Why a reloaded configuration was not applied; the running one stays.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ReloadError {
    #[error("this node ({node}) is no longer in the file")]
    NodeRemoved { node: String },
    /// `what` names what changed: the cluster name, the port, the nodes, the links.
    #[error("{what} changed: restart the daemons to apply")]
    ClusterChanged { what: String },
    #[error("this node's heartbeat addresses changed: restart the daemon to listen on them")]
    AddressesChanged,
    /// With three voters or more, each holder's lease and each voter's verdict use
    /// their own node's `dead`: a change on one node first would let them disagree.
    #[error(
        "[timing] changed with three nodes or more: stop every daemon, then start them with \
         the new file"
    )]
    MajorityTimingChanged,
}

/// One thing a reload changed, for the log and the operator's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    Priority {
        from: u16,
        to: u16,
    },
    /// A peer's priority, as this node's file says (the peer's own heartbeats
    /// say what it runs with).
    PeerPriority {
        peer: String,
        from: u16,
        to: u16,
    },
    /// A peer's heartbeat addresses: where this node sends and whom it hears.
    PeerAddresses(String),
    Timing,
    Failback,
    Hooks,
    Announce,
    HealthChecks,
    /// `[damping]`: turned off, a flapping node relaxes at once.
    Damping,
    /// `[split_brain]`: the guard's probes and what it does on a conflict.
    SplitBrain,
    Fencing,
    VipRemoved(String),
    VipAdded(String),
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Change::Priority { from, to } => write!(f, "priority {from} -> {to}"),
            Change::PeerPriority { peer, from, to } => write!(
                f,
                "peer {peer} priority {from} -> {to} (in effect once {peer} runs with it)"
            ),
            Change::PeerAddresses(peer) => write!(f, "peer {peer} addresses"),
            Change::Timing => f.write_str("timing"),
            Change::Failback => f.write_str("failback"),
            Change::Hooks => f.write_str("hooks"),
            Change::Announce => f.write_str("announce"),
            Change::HealthChecks => f.write_str("health checks"),
            Change::Damping => f.write_str("damping"),
            Change::SplitBrain => f.write_str("split-brain guard"),
            Change::Fencing => f.write_str("fencing"),
            Change::VipRemoved(vip) => write!(f, "VIP {vip} removed"),
            Change::VipAdded(vip) => write!(f, "VIP {vip} added"),
        }
    }
}

impl Machine {
    /// Applies a reloaded configuration. Returns what changed, for the log.
    pub fn reconfigure(
        &mut self,
        now: Instant,
        config: &Config,
    ) -> Result<Vec<Change>, ReloadError> {
        self.now_hint = now;
        let Some(me) = config.node_index(&self.settings.name) else {
            return Err(ReloadError::NodeRemoved {
                node: self.settings.name.clone(),
            });
        };
        let next = Settings::new(config, me);
        // Who the peers are, where each sits in the votes, and which links join them
        // to this node: the peer views and sockets are built from these at start.
        let peers = |s: &Settings| {
            s.peers
                .iter()
                .map(|p| {
                    let links: Vec<bool> = p.addresses.iter().map(Option::is_some).collect();
                    (p.name.clone(), p.index, p.witness, links)
                })
                .collect::<Vec<_>>()
        };
        let was = &self.settings;
        let changed: Vec<String> = [
            (next.cluster != was.cluster)
                .then(|| format!("the cluster name ({} -> {})", was.cluster, next.cluster)),
            (next.port != was.port).then(|| format!("the port ({} -> {})", was.port, next.port)),
            ((next.index, next.witness) != (was.index, was.witness) || peers(&next) != peers(was))
                .then(|| "the nodes".to_string()),
            (next.links != was.links).then(|| "the links".to_string()),
        ]
        .into_iter()
        .flatten()
        .collect();
        if !changed.is_empty() {
            return Err(ReloadError::ClusterChanged {
                what: changed.join(" and "),
            });
        }
        if next.addresses != self.settings.addresses {
            return Err(ReloadError::AddressesChanged);
        }
        if next.majority_rule() && next.timing != self.settings.timing {
            return Err(ReloadError::MajorityTimingChanged);
        }
        let old = std::mem::replace(&mut self.settings, next);
        let new = &self.settings;
        // This node's reload may part it from a peer's file, or join them: told here,
        // as the peer's own reload is told when its heartbeats change.
        for peer in &self.peers {
            let Some(theirs) = peer.fingerprint else {
                continue;
            };
            let (was, is) = (theirs == old.fingerprint, theirs == new.fingerprint);
            if was && !is {
                self.events.push(Event::FingerprintMismatch {
                    peer: peer.name.clone(),
                    ours: new.fingerprint,
                    theirs,
                });
            } else if is && !was {
                self.events.push(Event::FingerprintMatch {
                    peer: peer.name.clone(),
                });
            }
        }
        let mut changes = Vec::new();
        if new.priority != old.priority {
            changes.push(Change::Priority {
                from: old.priority,
                to: new.priority,
            });
        }
        // The same peers in the same order: a reload that changes them is refused.
        for (was, is) in old.peers.iter().zip(&new.peers) {
            if is.priority != was.priority {
                changes.push(Change::PeerPriority {
                    peer: is.name.clone(),
                    from: was.priority,
                    to: is.priority,
                });
            }
            // Only on the links this node is on: it neither sends nor listens
            // on the others.
            let moved = (is.addresses.iter().zip(&was.addresses))
                .zip(&new.addresses)
                .any(|((is, was), mine)| mine.is_some() && is != was);
            if moved {
                changes.push(Change::PeerAddresses(is.name.clone()));
            }
        }
        if new.timing != old.timing {
            changes.push(Change::Timing);
        }
        if (new.failback, new.failback_delay) != (old.failback, old.failback_delay) {
            changes.push(Change::Failback);
        }
        if (&new.hooks, new.start_failure, new.on_adopt)
            != (&old.hooks, old.start_failure, old.on_adopt)
        {
            changes.push(Change::Hooks);
        }
        if new.announce != old.announce {
            changes.push(Change::Announce);
        }
        if new.checks != old.checks {
            changes.push(Change::HealthChecks);
        }
        if new.damping != old.damping {
            changes.push(Change::Damping);
        }
        if new.split_brain != old.split_brain {
            changes.push(Change::SplitBrain);
        }
        if new.fencing != old.fencing {
            changes.push(Change::Fencing);
        }

        // A check that keeps its name keeps its state, so a reload never makes a
        // lost gateway look reachable.
        self.health = self.health.reconfigured(self.settings.checks.clone());
        // Checks may have moved: the sticky failures' deadlines follow them.
        for index in 0..old.checks.len() {
            self.timers.stop(Timer::Unstick(index));
        }
        let deadlines: Vec<(usize, Instant)> = self
            .health
            .checks()
            .iter()
            .enumerate()
            .filter_map(|(i, c)| Some((i, c.failed_at? + c.spec.failure_timeout?)))
            .collect();
        for (index, at) in deadlines {
            self.timers.set(Timer::Unstick(index), at);
        }
        for (peer, settings) in self.peers.iter_mut().zip(&new.peers) {
            for view in &mut peer.links {
                if let Some(Some(address)) = settings.addresses.get(view.link) {
                    view.address = *address;
                }
            }
        }
        if new.timing != old.timing && self.role() == Role::Starting {
            let started = self.election.since;
            self.timers
                .set(Timer::HeardBack, started + self.settings.heard_back());
            self.timers
                .set(Timer::InitDead, started + self.settings.timing.init_dead);
        }
        if self.settings.announce.refresh != old.announce.refresh {
            let refresh = match self.election.phase {
                Phase::Active(_) => self.settings.announce.refresh.map(|r| now + r),
                _ => None,
            };
            self.timers.set_or_stop(Timer::Refresh, refresh);
        }
        self.arm_health_grace(now);
        if !self.settings.damping.enabled {
            self.relax(now);
        }
        self.reconfigure_vips(&old.vips, &mut changes);
        self.heartbeat();
        // The next one at the pace of the new timing, which may be faster.
        self.timers
            .set(Timer::Heartbeat, now + self.beat_interval());
        self.evaluate(now);
        self.pace(now);
        self.flush_events();
        Ok(changes)
    }

    /// Keeps the state of every VIP that stays, removes those that left the file,
    /// and adds the new ones at once on an active node.
    fn reconfigure_vips(&mut self, old: &[VipTarget], changes: &mut Vec<Change>) {
        // A probe out for retried adds named VIPs by their place in the old file:
        // its answer is dropped, and the next retry asks again.
        self.election.add_probe = None;
        // A VIP back in the file while its removal from an earlier reload is
        // still under way or waits for its next try keeps that removal: on a node
        // that is not active, nothing else would take it off the interface.
        let states: Vec<VipState> = self
            .settings
            .vips
            .iter()
            .map(|target| match old.iter().position(|v| v == target) {
                Some(i) => self.election.vips[i],
                None => self
                    .election
                    .retired
                    .iter()
                    .find(|r| r.vip == *target)
                    .map_or(VipState::Absent, |r| r.state),
            })
            .collect();
        for (i, vip) in old.iter().enumerate() {
            if self.settings.vips.contains(vip) {
                continue;
            }
            changes.push(Change::VipRemoved(vip.to_string()));
            if self.election.vips[i] != VipState::Absent {
                // Tracked apart, as it leaves the settings: a failed removal is
                // tried again like any other.
                let id = self.effect(Effect::RemoveVip(vip.clone()));
                self.election.retired.push(Retired {
                    vip: vip.clone(),
                    state: VipState::Removing(id),
                });
            }
        }
        // A VIP back in the file is the election's again (with its removal, as
        // above): on an active node the add below is queued after that removal,
        // and no later try may follow the add.
        let vips = &self.settings.vips;
        self.election.retired.retain(|r| !vips.contains(&r.vip));
        let added: Vec<usize> = (0..self.settings.vips.len())
            .filter(|&i| !old.contains(&self.settings.vips[i]))
            .collect();
        self.election.vips = states;
        for &i in &added {
            changes.push(Change::VipAdded(self.settings.vips[i].to_string()));
        }
        if matches!(self.election.phase, Phase::Active(_)) && !added.is_empty() {
            for &i in &added {
                let id = self.add_effect(i);
                self.election.vips[i] = VipState::Adding(id);
            }
            self.announce_after_adds();
        }
    }
}
