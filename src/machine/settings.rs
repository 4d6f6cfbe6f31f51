//! What one node takes from the shared configuration: built the same way at start
//! and on every reload, so the two can never disagree about a field. The timing
//! rules derived from the configured intervals are named here, once.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::Hook;
use super::VipTarget;
use super::health::Spec;
use crate::config::{
    Config, Damping, Failback, Fencing, OnAdopt, SplitBrain, StartFailure, Timing,
};
use crate::wire::heartbeat::Signer;

/// This node's view of the configuration.
#[derive(Debug, Clone)]
pub(super) struct Settings {
    pub name: String,
    /// This node's place in the file's `[[node]]` list: its bit in the votes.
    pub index: usize,
    /// A witness votes and holds nothing (see `quorum`).
    pub witness: bool,
    /// Every node of the file, witnesses included; with three or more, takeovers
    /// and holders follow the majority rule.
    pub voters: usize,
    /// How many of them, this node included, make a majority.
    pub majority: usize,
    pub cluster: String,
    pub priority: u16,
    pub port: u16,
    /// This node's address on each link (the sockets are bound to them); none on a
    /// link it is not on.
    pub addresses: Vec<Option<IpAddr>>,
    pub links: Vec<String>,
    pub peers: Vec<PeerSettings>,
    pub timing: Timing,
    pub failback: Failback,
    pub failback_delay: Duration,
    pub vips: Vec<VipTarget>,
    pub hooks: Hooks,
    pub announce: Announce,
    /// Every check, configured ones first (in the order the shell numbers them),
    /// then the built-in ones.
    pub checks: Vec<Spec>,
    pub start_failure: StartFailure,
    pub on_adopt: OnAdopt,
    /// Where a release under way is noted, so that a daemon killed during one
    /// does not adopt what it was letting go (see `Machine::note_release`).
    pub state_dir: PathBuf,
    pub split_brain: SplitBrain,
    pub fencing: Fencing,
    pub damping: Damping,
    pub fingerprint: [u8; 8],
    pub signer: Signer,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct PeerSettings {
    pub name: String,
    /// The peer's place in the file's `[[node]]` list.
    pub index: usize,
    pub witness: bool,
    pub priority: u16,
    /// The peer's address on each link, indexed like [`Settings::links`].
    pub addresses: Vec<Option<IpAddr>>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Hooks {
    pub start: Option<PathBuf>,
    pub stop: Option<PathBuf>,
    pub fault: Option<PathBuf>,
    pub standby: Option<PathBuf>,
    pub timeout: Duration,
}

impl Hooks {
    pub fn program(&self, hook: Hook) -> Option<&PathBuf> {
        match hook {
            Hook::Start => self.start.as_ref(),
            Hook::Stop => self.stop.as_ref(),
            Hook::Fault => self.fault.as_ref(),
            Hook::Standby => self.standby.as_ref(),
            // Run with its own environment and timeout; see `guard`.
            Hook::Fence => None,
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Announce {
    pub rounds: u32,
    pub interval: Duration,
    pub refresh: Option<Duration>,
}

impl Settings {
    pub fn new(config: &Config, me: usize) -> Settings {
        let node = &config.nodes[me];
        let witness = node.witness;
        Settings {
            name: node.name.clone(),
            index: me,
            witness,
            voters: config.voters(),
            majority: config.majority(),
            cluster: config.cluster.name.clone(),
            priority: node.priority,
            port: config.cluster.port,
            addresses: node.addresses.clone(),
            links: config.links.clone(),
            peers: config
                .nodes
                .iter()
                .enumerate()
                .filter(|(i, _)| *i != me)
                .map(|(i, n)| PeerSettings {
                    name: n.name.clone(),
                    index: i,
                    witness: n.witness,
                    priority: n.priority,
                    addresses: n.addresses.clone(),
                })
                .collect(),
            timing: config.timing,
            failback: config.cluster.failback,
            failback_delay: config.cluster.failback_delay,
            // A witness places no VIPs and runs no service, so no hook either.
            vips: if witness {
                Vec::new()
            } else {
                vip_targets(config, me)
            },
            hooks: if witness {
                Hooks {
                    start: None,
                    stop: None,
                    fault: None,
                    standby: None,
                    timeout: config.hooks.timeout,
                }
            } else {
                Hooks {
                    start: config.hooks.start.clone(),
                    stop: config.hooks.stop.clone(),
                    fault: config.hooks.fault.clone(),
                    standby: config.hooks.standby.clone(),
                    timeout: config.hooks.timeout,
                }
            },
            announce: Announce {
                rounds: config.announce.count,
                interval: config.announce.interval,
                refresh: config.announce.refresh,
            },
            checks: config
                .checks_for(me)
                .iter()
                .map(|check| Spec::configured(check, config.timing.interval))
                .chain(Spec::builtins())
                .collect(),
            start_failure: config.hooks.start_failure,
            on_adopt: config.hooks.on_adopt,
            state_dir: config.control.state_dir.clone(),
            split_brain: config.split_brain,
            fencing: config.fencing.clone(),
            damping: config.damping,
            fingerprint: config.fingerprint(),
            signer: Signer::new(config.key.as_bytes()),
        }
    }

    /// Whether unplanned takeovers need a majority of the voters (see `quorum`).
    pub fn majority_rule(&self) -> bool {
        self.voters >= 3
    }

    /// How long a starting node that has heard every peer still listens: its own
    /// first heartbeats need an interval to arrive and another to be answered, so a
    /// peer about to claim the VIPs has either claimed them or deferred by then.
    pub fn heard_back(&self) -> Duration {
        self.timing.interval * 2
    }

    /// How long a node that has just released gives the peer to say it took the
    /// VIPs before claiming them back: its view of the peer may be a heartbeat old,
    /// and one lost packet must not make two holders.
    pub fn release_grace(&self) -> Duration {
        self.timing.interval * 3
    }

    /// How long an election waits for a peer whose handshake is under way: a round
    /// trip takes one interval, and one lost packet another.
    pub fn handshake_wait(&self) -> Duration {
        self.timing.interval * 3
    }
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
