//! The checks of a node's fitness to hold the VIPs: the `[[check]]` tables, and the
//! `[health]` shorthand (gateway pings, the link state of the VIPs' interfaces)
//! expanded into the same model, so the election and the shell know one kind of
//! check. Parsing and validating them is the second pass's job (`checks/check_table.rs`);
//! running them is the shell's.

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::ops::RangeInclusive;
use std::time::Duration;

use super::{Config, Health, Node, Vip};

/// Names the core gives its own checks; a `[[check]]` may not take them.
pub const BUILTIN_CHECKS: [&str; 2] = ["vip", "start-hook"];

/// One check, as this node runs it.
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    /// Unique; names the check in events, the status, metrics and `failoverd clear`.
    pub name: String,
    pub probe: Probe,
    /// Time between two runs (from the start of one to the start of the next).
    pub interval: Duration,
    /// A run that takes longer fails (an `exec` program's process group is killed).
    pub timeout: Duration,
    /// Consecutive passes that make a failing check pass again.
    pub rise: u32,
    /// Consecutive failures that make a passing check fail.
    pub fall: u32,
    /// What this check adds to the node's health while it fails; 0 shows the check
    /// without letting it move anything.
    pub weight: u8,
    /// A failing fatal check alone makes the node unfit to hold the VIPs, whatever
    /// the peers' health.
    pub fatal: bool,
    pub on: Scope,
    /// With `on = "active"`: how long after the start hook ran the check starts to
    /// count, for the service to come up.
    pub start_grace: Duration,
    /// With `on = "active"`: how long a failure that made the node release keeps it
    /// from taking the VIPs back; `None` until `failoverd clear`.
    pub failure_timeout: Option<Duration>,
}

impl Check {
    /// Whether a loss of this check waits out the health grace before it counts:
    /// only gateways, which every node loses at once when the gateway itself dies,
    /// each noticing it up to a probe interval apart.
    pub fn shared(&self) -> bool {
        matches!(self.probe, Probe::Ping { .. })
    }
}

/// What a check looks at.
#[derive(Debug, Clone, PartialEq)]
pub enum Probe {
    /// Runs a program with arguments (no shell), in its own process group; exit 0
    /// passes. `command[0]` is a checked path.
    Exec { command: Vec<String> },
    /// Connects to the address.
    Tcp { address: SocketAddr },
    /// GETs the URL (plain HTTP); passes on a status in `status` and, when `body` is
    /// set, that text within the first [`MAX_HTTP_BODY`] bytes of the body.
    Http {
        url: HttpUrl,
        status: RangeInclusive<u16>,
        body: Option<String>,
    },
    /// ICMP echo to the address.
    Ping { target: IpAddr },
    /// The interface is up and running.
    Link { interface: String },
}

/// How much of an HTTP check's body is read, at most.
pub const MAX_HTTP_BODY: usize = 64 * 1024;

/// A plain `http://` URL, taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HttpUrl {
    /// The host as written (a name or an address; an IPv6 address keeps its
    /// brackets, `[::1]`), for the Host header.
    pub host: String,
    pub port: u16,
    /// The path and query, starting with `/`.
    pub path: String,
}

impl fmt::Display for HttpUrl {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "http://{}:{}{}", self.host, self.port, self.path)
    }
}

impl fmt::Display for Probe {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Probe::Exec { command } => {
                f.write_str("exec")?;
                for word in command {
                    // Quoted where a space would otherwise split or hide it.
                    if word.is_empty() || word.contains(|c: char| c.is_whitespace() || c == '"') {
                        write!(f, " {word:?}")?;
                    } else {
                        write!(f, " {word}")?;
                    }
                }
                Ok(())
            }
            Probe::Tcp { address } => write!(f, "tcp {address}"),
            Probe::Http { url, .. } => write!(f, "http {url}"),
            Probe::Ping { target } => write!(f, "ping {target}"),
            Probe::Link { interface } => write!(f, "link {interface}"),
        }
    }
}

/// Where a check runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Scope {
    /// On every node, whatever its role: for services that run everywhere.
    Both,
    /// Only while this node is active and its start hook has run: for services the
    /// start hook starts. A failure makes the node release to a healthy peer, and
    /// sticks (see [`Check::failure_timeout`]).
    Active,
}

impl fmt::Display for Scope {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Scope::Both => "both",
            Scope::Active => "active",
        })
    }
}

/// What a start hook that exits non-zero means (`[hooks] start_failure`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StartFailure {
    /// The built-in `start-hook` check fails: the node releases to a healthy peer.
    Release,
    /// Logged, nothing more.
    Ignore,
}

impl Config {
    /// Every check node `me` runs: the `[health]` shorthand first (see `shorthand`),
    /// then the `[[check]]` tables in file order.
    pub fn checks_for(&self, me: usize) -> Vec<Check> {
        // A witness holds nothing, so there is no fitness of its to check.
        if self.nodes[me].witness {
            return Vec::new();
        }
        let mut checks = shorthand(&self.health, &self.vips, &self.nodes[me]);
        checks.extend(self.checks.iter().cloned());
        checks
    }
}

/// The checks the `[health]` shorthand makes on `node`: a ping per gateway, then the
/// link state of each interface that carries a VIP on this node. The second pass
/// calls it too, for every node, to keep a `[[check]]` from taking one of these names.
pub(super) fn shorthand(health: &Health, vips: &[Vip], node: &Node) -> Vec<Check> {
    let check = |name: String, probe: Probe, fall: u32| Check {
        name,
        probe,
        interval: health.interval,
        timeout: health.timeout,
        rise: 1,
        fall,
        weight: 1,
        fatal: false,
        on: Scope::Both,
        start_grace: Duration::ZERO,
        failure_timeout: None,
    };
    let mut checks: Vec<Check> = health
        .gateways
        .iter()
        .map(|&target| {
            let probe = Probe::Ping { target };
            check(format!("gateway-{target}"), probe, health.failures)
        })
        .collect();
    if health.link_state {
        let mut interfaces: Vec<&str> = Vec::new();
        for vip in vips {
            let interface = node.interface(&vip.interface);
            if !interfaces.contains(&interface) {
                interfaces.push(interface);
            }
        }
        // Link state does not get lost on the way: one "down" is down.
        checks.extend(interfaces.into_iter().map(|interface| {
            let probe = Probe::Link {
                interface: interface.to_string(),
            };
            check(format!("link-{interface}"), probe, 1)
        }));
    }
    checks
}
