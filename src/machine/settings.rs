//! What one node takes from the shared configuration: built the same way at start
//! and on every reload, so the two can never disagree about a field. The timing
//! rules derived from the configured intervals are named here, once.

use std::net::IpAddr;
use std::path::PathBuf;
use std::time::Duration;

use super::Hook;
use super::VipTarget;
use crate::config::{Config, Failback, Timing};
use crate::wire::heartbeat::Signer;

/// This node's view of the configuration.
#[derive(Debug, Clone)]
pub(super) struct Settings {
    pub name: String,
    pub cluster: String,
    pub priority: u16,
    pub port: u16,
    /// This node's address on each link (the sockets are bound to them).
    pub addresses: Vec<IpAddr>,
    pub links: Vec<String>,
    pub peers: Vec<PeerSettings>,
    pub timing: Timing,
    pub failback: Failback,
    pub failback_delay: Duration,
    pub vips: Vec<VipTarget>,
    pub hooks: Hooks,
    pub announce: Announce,
    pub health: HealthSettings,
    pub fingerprint: [u8; 8],
    pub signer: Signer,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct PeerSettings {
    pub name: String,
    pub priority: u16,
    /// The peer's address on each link, indexed like [`Settings::links`].
    pub addresses: Vec<IpAddr>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Hooks {
    pub start: Option<PathBuf>,
    pub stop: Option<PathBuf>,
    pub fault: Option<PathBuf>,
    pub timeout: Duration,
}

impl Hooks {
    pub fn program(&self, hook: Hook) -> Option<&PathBuf> {
        match hook {
            Hook::Start => self.start.as_ref(),
            Hook::Stop => self.stop.as_ref(),
            Hook::Fault => self.fault.as_ref(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) struct Announce {
    pub rounds: u32,
    pub interval: Duration,
    pub refresh: Option<Duration>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct HealthSettings {
    pub gateways: Vec<IpAddr>,
    /// Interfaces whose link state is checked.
    pub interfaces: Vec<String>,
    /// Consecutive lost pings that make a gateway check fail.
    pub failures: u32,
    pub interval: Duration,
}

impl Settings {
    pub fn new(config: &Config, me: usize) -> Settings {
        let node = &config.nodes[me];
        Settings {
            name: node.name.clone(),
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
                .map(|(_, n)| PeerSettings {
                    name: n.name.clone(),
                    priority: n.priority,
                    addresses: n.addresses.clone(),
                })
                .collect(),
            timing: config.timing,
            failback: config.cluster.failback,
            failback_delay: config.cluster.failback_delay,
            vips: vip_targets(config, me),
            hooks: Hooks {
                start: config.hooks.start.clone(),
                stop: config.hooks.stop.clone(),
                fault: config.hooks.fault.clone(),
                timeout: config.hooks.timeout,
            },
            announce: Announce {
                rounds: config.announce.count,
                interval: config.announce.interval,
                refresh: config.announce.refresh,
            },
            health: HealthSettings {
                gateways: config.health.gateways.clone(),
                interfaces: checked_interfaces(config, me),
                failures: config.health.failures,
                interval: config.health.interval,
            },
            fingerprint: config.fingerprint(),
            signer: Signer::new(config.key.as_bytes()),
        }
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

    /// How long a fresh health loss waits before it counts: one probe interval and
    /// two heartbeats. When a gateway dies for everyone, the nodes notice up to a
    /// probe interval apart, and a node that released at once would hand the VIPs
    /// to a peer about to find itself just as cut off.
    pub fn health_grace(&self) -> Duration {
        self.health.interval + self.timing.interval * 2
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
