//! The configuration file: TOML in, a typed and checked [`Config`] out.
//!
//! One file serves every node of a cluster. Parsing happens in two passes so that
//! `failoverd check` can report every problem at once, each with its key and line:
//! first serde reads the document into raw structs (unknown keys and wrong types are
//! collected one by one, dropping the offending key and reading again), then the raw
//! values are converted into [`Config`], where addresses, durations and the relations
//! between them are checked. Nothing here touches the network; `[hooks] user` and
//! `group` are looked up in the user database.
//!
//! This file owns the typed [`Config`] and its parts, loading and parsing, and what is
//! derived from a checked configuration (node lookup, the fingerprint, the control
//! socket for clients). The passes live apart: `raw` reads the document into serde
//! structs, `checks` turns them into typed values and checks their relations (the
//! `[[check]]` tables in `checks/check_table.rs`), and `diagnostics` ties each
//! [`Problem`] to its key and line. `check` holds the types of the checks of a node's
//! fitness and expands the `[health]` shorthand into them. `files` opens the files
//! the configuration names (and the configuration itself) and decides whether
//! someone other than root could change them.

mod check;
mod checks;
mod diagnostics;
mod files;
pub mod fit;
mod raw;
/// The sample configuration (config/failoverd.toml) that the tests set values in.
#[cfg(test)]
#[path = "../../tests/common/sample.rs"]
pub(crate) mod sample;

use std::collections::BTreeMap;
use std::fmt;
use std::fs;
use std::io::Read;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use sha2::{Digest, Sha256};
use toml::de::DeTable;

pub use check::{BUILTIN_CHECKS, Check, HttpUrl, MAX_HTTP_BODY, Probe, Scope, StartFailure};
pub use diagnostics::Problem;
use diagnostics::{LineIndex, describe_problems, duplicate_key, key_lines, not_utf8};

/// Where the control socket lives unless `[control] socket` says otherwise.
pub const DEFAULT_SOCKET: &str = "/run/failoverd/failoverd.sock";
/// Heartbeat's UDP port, kept so firewall rules written for it still apply.
pub const DEFAULT_PORT: u16 = 694;
/// The shortest heartbeat interval accepted; timers are tested down to it.
pub const MIN_INTERVAL: Duration = Duration::from_millis(10);
/// Longest node or cluster name, in bytes: both travel in every heartbeat.
pub const MAX_NAME_LEN: usize = 64;
/// A shared key shorter than this is too easy to guess.
pub const MIN_KEY_LEN: usize = 16;
/// Linux limits interface names and address labels to 15 bytes.
const MAX_IFNAME_LEN: usize = 15;

/// Why a configuration could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file itself could not be read.
    #[error("cannot read {path}: {source}")]
    Read {
        path: PathBuf,
        source: std::io::Error,
    },
    /// The file was read but holds one or more problems: one line for one problem,
    /// a count and a line each for several.
    #[error("{}", describe_problems(.path, .problems))]
    Invalid {
        path: PathBuf,
        problems: Vec<Problem>,
    },
}

/// What to do when a preferred node comes back while another holds the VIPs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Failback {
    /// The preferred node takes the VIPs back once it has been up and healthy for
    /// `failback_delay`.
    Auto,
    /// The VIPs stay where they are until an operator moves them.
    Manual,
}

impl fmt::Display for Failback {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Failback::Auto => "auto",
            Failback::Manual => "manual",
        })
    }
}

/// A checked configuration, the same on every node.
#[derive(Clone, PartialEq)]
pub struct Config {
    pub cluster: Cluster,
    pub timing: Timing,
    /// Heartbeat link names, in file order; a link's index is its id on the wire.
    pub links: Vec<String>,
    pub nodes: Vec<Node>,
    pub vips: Vec<Vip>,
    pub health: Health,
    /// The `[[check]]` tables; [`Config::checks_for`] adds the `[health]` shorthand.
    pub checks: Vec<Check>,
    pub hooks: Hooks,
    pub announce: Announce,
    pub control: Control,
    pub events: Events,
    pub http: Http,
    pub split_brain: SplitBrain,
    pub fencing: Fencing,
    pub scheduling: Scheduling,
    /// `[damping]`: how a node that sees the holder flap stops acting on short
    /// silences.
    pub damping: Damping,
    /// The shared secret read from `cluster.key_file`.
    pub key: Key,
    /// What is wrong but stops nothing: a file failoverd reads or runs that a user
    /// other than root owns, or in a directory that a group can write. `check`
    /// prints them and the daemon logs them.
    pub warnings: Vec<Problem>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Cluster {
    pub name: String,
    pub key_file: PathBuf,
    pub port: u16,
    pub failback: Failback,
    pub failback_delay: Duration,
}

/// Heartbeat timers, named after Heartbeat's keepalive / warntime / deadtime / initdead.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Timing {
    /// Time between two heartbeats on every link.
    pub interval: Duration,
    /// Silence on a link after which a late heartbeat is reported (< `dead`).
    pub warn: Duration,
    /// Silence on every link after which a peer is declared dead (>= 2 x `interval`).
    pub dead: Duration,
    /// Time to listen for peers at start before claiming the VIPs (>= `dead`).
    pub init_dead: Duration,
    /// Time between two heartbeats of a standby that hears an active node, in a
    /// cluster of two nodes (>= `interval`: a shorter value in the file means
    /// `interval`). See `machine::pace`.
    pub standby_interval: Duration,
}

/// `timing.standby_interval` when the file does not set it.
pub const STANDBY_INTERVAL: Duration = Duration::from_secs(1);
/// The longest `timing.standby_interval`: the active node notices a dead standby
/// that much later than `dead`, and learns of its health that much later.
pub const MAX_STANDBY_INTERVAL: Duration = Duration::from_secs(10);

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub name: String,
    /// A witness votes in the majority rule and holds nothing: it never becomes
    /// active, has no VIPs, checks or hooks.
    pub witness: bool,
    /// Higher wins the election among equally healthy nodes (0 for a witness).
    pub priority: u16,
    /// This node's address on each link, indexed like [`Config::links`]. Every node
    /// that may hold the VIPs has one on every link; a witness only on the links it
    /// is on (a crossover cable joins two machines only).
    pub addresses: Vec<Option<IpAddr>>,
    /// Interface names on this node for the logical names used by `[[vip]]`.
    pub interfaces: BTreeMap<String, String>,
}

impl Node {
    /// This node's addresses, link by link, on the links it is on.
    pub fn link_addresses(&self) -> impl Iterator<Item = (usize, IpAddr)> + '_ {
        self.addresses
            .iter()
            .enumerate()
            .filter_map(|(link, address)| Some((link, (*address)?)))
    }

    /// The real interface on this node for a logical interface name.
    pub fn interface<'a>(&'a self, logical: &'a str) -> &'a str {
        self.interfaces.get(logical).map_or(logical, String::as_str)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Vip {
    pub address: IpAddr,
    pub prefix_len: u8,
    /// Logical interface name; see [`Node::interface`].
    pub interface: String,
    pub label: Option<String>,
}

impl Vip {
    /// The label to set on `node`, with the logical interface prefix replaced by the
    /// node's real interface (the kernel insists a label starts with the device name).
    pub fn label_on(&self, node: &Node) -> Option<String> {
        let label = self.label.as_ref()?;
        let real = node.interface(&self.interface);
        Some(match label.strip_prefix(self.interface.as_str()) {
            Some(rest) => format!("{real}{rest}"),
            None => label.clone(),
        })
    }
}

impl fmt::Display for Vip {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.address, self.prefix_len)
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Health {
    /// Addresses pinged to learn whether this node can still reach its clients.
    pub gateways: Vec<IpAddr>,
    pub interval: Duration,
    pub timeout: Duration,
    /// Consecutive failed probes after which a gateway counts as lost.
    pub failures: u32,
    /// Check the link state of the interfaces that carry VIPs.
    pub link_state: bool,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Hooks {
    pub start: Option<PathBuf>,
    pub stop: Option<PathBuf>,
    pub fault: Option<PathBuf>,
    /// Run on entering standby (keepalived's `notify_backup`).
    pub standby: Option<PathBuf>,
    pub timeout: Duration,
    pub start_failure: StartFailure,
    /// What to do with the service when the daemon starts and keeps VIPs it found.
    pub on_adopt: OnAdopt,
    /// Who hooks, `exec` checks and the fencing command run as; failoverd's own
    /// user (root, as a rule) when unset.
    pub run_as: Option<RunAs>,
}

/// A user and group to run children as (`[hooks] user` and `group`), resolved when
/// the file is read: a child gets ids, since between fork and exec it must not look
/// names up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RunAs {
    /// The user's name, for USER and LOGNAME.
    pub user: String,
    pub uid: u32,
    /// `[hooks] group`, else the user's primary group.
    pub gid: u32,
    /// Every group the user is in, with `gid`: the supplementary groups.
    pub groups: Vec<u32>,
    /// The user's home directory, for HOME.
    pub home: PathBuf,
}

impl fmt::Display for RunAs {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} (uid {}, gid {})", self.user, self.uid, self.gid)
    }
}

/// Whether the start hook runs when a starting daemon adopts the VIPs it found on
/// its node (a restart of the active node's daemon).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnAdopt {
    /// The service normally ran on while the daemon was down: leave it.
    Keep,
    /// Run the start hook as on a takeover.
    Start,
}

/// `[split_brain]`: what guards an unplanned takeover.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SplitBrain {
    pub live_vip: LiveVip,
    /// A node that hears no peer takes over only while a gateway check passes.
    pub require_gateway: bool,
}

/// What a node does when its peers are silent but another host still answers for
/// a VIP (`[split_brain] live_vip`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LiveVip {
    /// Do not take the VIPs while they are answered (unless fencing succeeded).
    Wait,
    /// Take them anyway, as before the guard existed.
    Take,
}

/// `[fencing]`: a command that makes sure a silent peer holds nothing before an
/// unplanned takeover.
#[derive(Debug, Clone, PartialEq)]
pub struct Fencing {
    pub command: Option<PathBuf>,
    pub timeout: Duration,
    /// The wait after the first failure; doubled after each one up to `retry_max`.
    pub retry: Duration,
    pub retry_max: Duration,
}

/// `[damping]`: flap damping. A node that has seen more than `changes` unplanned
/// changes of the VIPs' holder within `window` wants a longer silence (`dead`
/// doubled with each further change, up to `max_silence`) before its next unplanned
/// takeover, and relaxes after `quiet` without one. Planned moves neither count nor
/// wait. See docs/steadiness.md.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Damping {
    /// `false` turns damping off: every unplanned takeover waits `dead`, as before.
    pub enabled: bool,
    /// How many unplanned changes within `window` are still no flapping (>= 1).
    pub changes: u32,
    pub window: Duration,
    /// Without an unplanned change for this long, damping relaxes.
    pub quiet: Duration,
    /// The longest silence damping ever asks for (>= `timing.dead`): with the
    /// holder really dead, the VIPs are taken at most this long after its last
    /// heartbeat (plus what an undamped takeover takes).
    pub max_silence: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Announce {
    /// Gratuitous ARP / neighbour advertisement rounds on taking the VIPs.
    pub count: u32,
    pub interval: Duration,
    /// Period of the low-rate re-announcement while active; `None` turns it off.
    pub refresh: Option<Duration>,
}

/// The control socket that `failoverd status` and the commands talk to.
#[derive(Debug, Clone, PartialEq)]
pub struct Control {
    pub socket: PathBuf,
    /// Group allowed to use the socket (mode 0660); root only when unset.
    pub group: Option<String>,
    /// Where state that must survive a restart (maintenance) is kept.
    pub state_dir: PathBuf,
}

/// `[control]` paths given on `run`'s command line (`--socket`, `--state-dir`),
/// which win over the file's, at start and at every reload.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ControlOverrides {
    pub socket: Option<PathBuf>,
    pub state_dir: Option<PathBuf>,
}

impl ControlOverrides {
    /// `control` as the daemon uses it: the file's, with the command line's paths.
    pub fn apply(&self, mut control: Control) -> Control {
        if let Some(socket) = &self.socket {
            control.socket.clone_from(socket);
        }
        if let Some(dir) = &self.state_dir {
            control.state_dir.clone_from(dir);
        }
        control
    }
}

/// How the daemon asks the kernel to favour its heartbeat path (`[scheduling]`).
#[derive(Debug, Clone, PartialEq)]
pub struct Scheduling {
    /// SCHED_RR priority of the thread that receives, decides and sends heartbeats,
    /// 1 to 99; 0 leaves it at normal priority.
    pub realtime_priority: u8,
    /// Lock the daemon's memory as it is touched (mlockall with MCL_ONFAULT), so that
    /// memory pressure cannot page the heartbeat path out.
    pub lock_memory: bool,
    /// Send IPv4 heartbeats through a raw socket, which costs less than the UDP
    /// socket (see `daemon::send`).
    pub raw_send: bool,
}

/// The default realtime priority: above every normal process, below the kernel's
/// own realtime threads (interrupt threads run at 50, the watchdog at 99), and low
/// enough that a site's own realtime work can be put above it.
pub const DEFAULT_REALTIME_PRIORITY: u8 = 10;

impl Default for Scheduling {
    fn default() -> Scheduling {
        Scheduling {
            realtime_priority: DEFAULT_REALTIME_PRIORITY,
            lock_memory: true,
            raw_send: true,
        }
    }
}

/// The event log kept for `failoverd status` and `failoverd events`.
#[derive(Debug, Clone, PartialEq)]
pub struct Events {
    /// Append every event as a JSON line here (reopened by every reload).
    pub file: Option<PathBuf>,
    /// Events kept in memory.
    pub keep: usize,
}

/// The status page and metrics endpoint; off unless `listen` is set.
#[derive(Debug, Clone, PartialEq)]
pub struct Http {
    pub listen: Option<std::net::SocketAddr>,
    /// Host names the status page answers to besides the address a request came in
    /// on (and `localhost` on a loopback address): lowercase, without a final dot.
    pub hosts: Vec<String>,
}

/// The cluster's shared secret. Its bytes never appear in logs.
#[derive(Clone, PartialEq, Eq)]
pub struct Key(Vec<u8>);

impl Key {
    pub fn new(bytes: Vec<u8>) -> Key {
        Key(bytes)
    }

    pub fn as_bytes(&self) -> &[u8] {
        &self.0
    }

    /// A short check of the key, for `failoverd check` to print: the same key file
    /// gives the same check on every node, and the configuration's fingerprint
    /// leaves the key out. An HMAC of a fixed text under the key, cut to 8 bytes:
    /// it says whether two keys are the same and nothing of the key itself.
    pub fn check(&self) -> [u8; 8] {
        use hmac::{Hmac, KeyInit, Mac};
        let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(&self.0)
            .expect("HMAC takes a key of any length");
        mac.update(b"failoverd key check");
        let tag = mac.finalize().into_bytes();
        let mut check = [0u8; 8];
        check.copy_from_slice(&tag[..8]);
        check
    }
}

impl fmt::Debug for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Key({} bytes)", self.0.len())
    }
}

impl fmt::Debug for Config {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Config")
            .field("cluster", &self.cluster)
            .field("timing", &self.timing)
            .field("links", &self.links)
            .field("nodes", &self.nodes)
            .field("vips", &self.vips)
            .field("health", &self.health)
            .field("checks", &self.checks)
            .field("hooks", &self.hooks)
            .field("announce", &self.announce)
            .field("control", &self.control)
            .field("events", &self.events)
            .field("http", &self.http)
            .field("scheduling", &self.scheduling)
            .finish_non_exhaustive()
    }
}

impl Config {
    /// Reads, parses and checks the file at `path`, including the key file it names.
    /// The file must be one that only root can change, as the programs it names
    /// must be (see `files`).
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let read = |source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        };
        let mut checked = files::open(path, files::Use::Config).map_err(read)?;
        let file_problem = |message: &str| Problem {
            key: "(file)".to_string(),
            line: None,
            message: message.to_string(),
        };
        if let Some(errors) = checked.errors() {
            return Err(ConfigError::Invalid {
                path: path.to_path_buf(),
                problems: vec![file_problem(&errors)],
            });
        }
        let mut bytes = Vec::new();
        checked.file.read_to_end(&mut bytes).map_err(read)?;
        let text = String::from_utf8(bytes).map_err(|err| ConfigError::Invalid {
            path: path.to_path_buf(),
            problems: vec![not_utf8(err.as_bytes(), err.utf8_error().valid_up_to())],
        })?;
        let mut config =
            Config::parse(&text, path.parent().unwrap_or(Path::new("."))).map_err(|problems| {
                ConfigError::Invalid {
                    path: path.to_path_buf(),
                    problems,
                }
            })?;
        let warnings: Vec<Problem> = checked.warnings().map(file_problem).collect();
        config.warnings.splice(0..0, warnings);
        Ok(config)
    }

    /// Parses a document; relative paths in it are taken from `base`.
    pub fn parse(text: &str, base: &Path) -> Result<Config, Vec<Problem>> {
        let mut problems = Vec::new();
        let lines = LineIndex::new(text);
        let mut doc = match DeTable::parse(text) {
            Ok(doc) => doc,
            Err(err) => {
                let duplicate = err
                    .span()
                    .filter(|_| err.message() == "duplicate key")
                    .and_then(|span| duplicate_key(text, span.start..span.end, &lines));
                return Err(vec![duplicate.unwrap_or_else(|| Problem {
                    key: "(document)".to_string(),
                    line: err.span().map(|s| lines.line(s.start)),
                    message: err.message().to_string(),
                })]);
            }
        };
        doc.get_mut().make_owned();
        let positions = key_lines(doc.get_ref(), &lines);
        let raw = raw::read_raw(doc, &lines, &mut problems);
        checks::convert(raw, base, problems, positions)
    }

    /// Index of the node called `name`.
    pub fn node_index(&self, name: &str) -> Option<usize> {
        self.nodes.iter().position(|n| n.name == name)
    }

    /// How many nodes vote: every node, witnesses included. With three or more, an
    /// unplanned takeover needs a majority of them (see `machine::quorum`).
    pub fn voters(&self) -> usize {
        self.nodes.len()
    }

    /// Whether the majority rule applies: three voters or more.
    pub fn majority_rule(&self) -> bool {
        self.voters() >= 3
    }

    /// How many voters make a majority: more than half of them.
    pub fn majority(&self) -> usize {
        self.voters() / 2 + 1
    }

    /// Short digest of the part of the configuration that every node must share:
    /// cluster, timings, links, nodes and VIPs. Hooks, health targets and the key
    /// file's path may differ between nodes without harm, so they are left out.
    pub fn fingerprint(&self) -> [u8; 8] {
        let mut canon = String::new();
        let c = &self.cluster;
        let t = &self.timing;
        canon.push_str(&format!(
            "cluster {} {} {} {}\n",
            c.name,
            c.port,
            c.failback,
            c.failback_delay.as_micros()
        ));
        canon.push_str(&format!(
            "timing {} {} {} {}\n",
            t.interval.as_micros(),
            t.warn.as_micros(),
            t.dead.as_micros(),
            t.init_dead.as_micros()
        ));
        // Written only when set otherwise, so that files from before it keep their
        // fingerprint; both nodes must agree on it, since each judges the other's
        // silence by it.
        if t.standby_interval != STANDBY_INTERVAL.max(t.interval) {
            canon.push_str(&format!(
                "standby_interval {}\n",
                t.standby_interval.as_micros()
            ));
        }
        for link in &self.links {
            canon.push_str(&format!("link {link}\n"));
        }
        for node in &self.nodes {
            canon.push_str(&format!("node {} {}", node.name, node.priority));
            for address in &node.addresses {
                match address {
                    Some(address) => canon.push_str(&format!(" {address}")),
                    None => canon.push_str(" -"),
                }
            }
            // Written only for a witness, so two-node files keep their fingerprint.
            if node.witness {
                canon.push_str(" witness");
            }
            canon.push('\n');
        }
        for vip in &self.vips {
            canon.push_str(&format!(
                "vip {} {} {}\n",
                vip,
                vip.interface,
                vip.label.as_deref().unwrap_or("-")
            ));
        }
        let digest = Sha256::digest(canon.as_bytes());
        let mut out = [0u8; 8];
        out.copy_from_slice(&digest[..8]);
        out
    }
}

/// The control socket that the file at `config` names, read without checking the rest
/// of the file: a client needs only this path, and neither a valid file nor the key
/// file it names. Falls back to [`DEFAULT_SOCKET`] when the file cannot be read, is not
/// TOML, or sets no `[control] socket`. A relative path is taken from the file's
/// directory, as [`Config::load`] does.
pub fn socket_path(config: &Path) -> PathBuf {
    #[derive(Deserialize)]
    struct Document {
        control: Option<ControlSocket>,
    }
    #[derive(Deserialize)]
    struct ControlSocket {
        socket: Option<PathBuf>,
    }
    let socket = fs::read_to_string(config)
        .ok()
        .and_then(|text| toml::from_str::<Document>(&text).ok())
        .and_then(|document| document.control?.socket);
    match socket {
        Some(socket) => config.parent().unwrap_or(Path::new(".")).join(socket),
        None => PathBuf::from(DEFAULT_SOCKET),
    }
}

#[cfg(test)]
mod tests {
    //! The sample document and helpers here serve the tests of raw, checks and
    //! diagnostics too.

    use std::os::unix::fs::PermissionsExt;

    use super::sample::Sample;
    use super::*;
    pub(crate) use crate::scratch::Scratch;

    /// The key's check is the same for the same key, on any node and in any
    /// version (an HMAC of a fixed text, pinned here), and differs for another.
    #[test]
    fn the_key_check_tells_keys_apart_and_says_nothing_else() {
        let key = Key::new(b"shell-test-key-0123456789".to_vec());
        let hex = |check: [u8; 8]| check.iter().map(|b| format!("{b:02x}")).collect::<String>();
        assert_eq!(hex(key.check()), "fd7b91b416ee0871");
        let same = Key::new(b"shell-test-key-0123456789".to_vec());
        assert_eq!(key.check(), same.check());
        let other = Key::new(b"shell-test-key-0123456788".to_vec());
        assert_ne!(key.check(), other.check());
    }

    /// The sample with its key file next to it (see `dir_with_key`), no hooks (they
    /// would have to exist), and a second VIP, an IPv6 one.
    pub(super) fn good() -> Sample {
        Sample::new()
            .set("cluster.key_file", "authkey")
            .remove("hooks")
            .append("[[vip]]\naddress = \"2001:db8::10/64\"\ninterface = \"eth0\"")
    }

    pub(super) fn dir_with_key(mode: u32, key: &str) -> Scratch {
        let dir = Scratch::new("config");
        let path = dir.path().join("authkey");
        fs::write(&path, key).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
        dir
    }

    pub(super) fn parse(text: &str) -> Result<Config, Vec<Problem>> {
        let dir = dir_with_key(0o600, "0123456789abcdef0123456789abcdef\n");
        Config::parse(text, dir.path())
    }

    pub(super) fn keys(problems: &[Problem]) -> Vec<&str> {
        problems.iter().map(|p| p.key.as_str()).collect()
    }

    #[test]
    fn good_file_parses_into_typed_values() {
        let text = good()
            .set("cluster.failback", "manual")
            .remove("health.timeout")
            .to_string();
        let config = parse(&text).expect("valid config");
        assert_eq!(config.cluster.name, "web");
        assert_eq!(config.cluster.port, DEFAULT_PORT);
        assert_eq!(config.cluster.failback, Failback::Manual);
        assert_eq!(config.timing.interval, Duration::from_millis(200));
        assert_eq!(config.links, ["crossover", "lan"]);
        assert_eq!(
            config.nodes[1].addresses,
            [
                Some("198.19.0.2".parse::<IpAddr>().unwrap()),
                Some("198.18.0.12".parse().unwrap())
            ]
        );
        assert_eq!(config.vips[0].prefix_len, 24);
        assert_eq!(
            config.vips[1].address,
            "2001:db8::10".parse::<IpAddr>().unwrap()
        );
        assert_eq!(config.health.timeout, config.health.interval, "the default");
        assert_eq!(config.key.as_bytes().len(), 32, "trailing newline trimmed");
        assert_eq!(config.announce.refresh, Some(Duration::from_secs(60)));
    }

    #[test]
    fn per_node_interface_overrides_rewrite_the_label() {
        let config = parse(&good().to_string()).unwrap();
        let beta = &config.nodes[1];
        assert_eq!(beta.interface("eth0"), "enp1s0");
        assert_eq!(config.vips[0].label_on(beta).as_deref(), Some("enp1s0:vip"));
        assert_eq!(
            config.vips[0].label_on(&config.nodes[0]).as_deref(),
            Some("eth0:vip")
        );
    }

    #[test]
    fn scheduling_defaults_to_realtime_10_with_memory_locked_and_checks_its_range() {
        let config = parse(&good().remove("scheduling").to_string()).expect("valid config");
        assert_eq!(config.scheduling, Scheduling::default());
        assert_eq!(config.scheduling.realtime_priority, 10);
        assert!(config.scheduling.lock_memory);
        assert!(config.scheduling.raw_send);
        let off = good()
            .set("scheduling.realtime_priority", 0)
            .set("scheduling.lock_memory", false)
            .set("scheduling.raw_send", false);
        let config = parse(&off.to_string()).expect("valid config");
        assert_eq!(config.scheduling.realtime_priority, 0);
        assert!(!config.scheduling.lock_memory);
        assert!(!config.scheduling.raw_send);
        let problems = parse(&good().set("scheduling.realtime_priority", 100).to_string())
            .expect_err("priority 100");
        assert_eq!(keys(&problems), ["scheduling.realtime_priority"]);
    }

    #[test]
    fn fingerprint_covers_the_shared_part_only() {
        let a = parse(&good().to_string()).unwrap();
        let health_changed = parse(&good().set("health.failures", 5).to_string()).unwrap();
        assert_eq!(a.fingerprint(), health_changed.fingerprint());
        let priority_changed = parse(&good().set("node[1].priority", 101).to_string()).unwrap();
        assert_ne!(a.fingerprint(), priority_changed.fingerprint());
    }

    #[test]
    fn socket_path_reads_only_the_control_socket() {
        let dir = Scratch::new("config");
        let path = dir.path().join("failoverd.toml");
        // No key file and unknown keys elsewhere: only [control] socket matters.
        fs::write(
            &path,
            "[cluster]\nname = 1\nbogus = true\n[control]\nsocket = \"ctl.sock\"\n",
        )
        .unwrap();
        assert_eq!(socket_path(&path), dir.path().join("ctl.sock"));
        fs::write(&path, "[control]\nsocket = \"/run/x/y.sock\"\n").unwrap();
        assert_eq!(socket_path(&path), Path::new("/run/x/y.sock"));
        for fallback in [
            "[cluster]\nname = \"web\"\n",
            "[[[",
            "[control]\nsocket = 5\n",
        ] {
            fs::write(&path, fallback).unwrap();
            assert_eq!(
                socket_path(&path),
                Path::new(DEFAULT_SOCKET),
                "{fallback:?}"
            );
        }
        assert_eq!(
            socket_path(&dir.path().join("absent.toml")),
            Path::new(DEFAULT_SOCKET)
        );
    }

    #[test]
    fn status_page_host_names_are_names() {
        let config = parse(
            &good()
                .set("http.listen", "0.0.0.0:9469")
                .set("http.hosts", r#"["Alpha.Example.com.", "alpha"]"#)
                .to_string(),
        )
        .unwrap();
        assert_eq!(config.http.hosts, ["alpha.example.com", "alpha"]);
        for bad in [
            r#"[""]"#,
            r#"["a b"]"#,
            r#"["evil.com/x"]"#,
            r#"["[::1]"]"#,
            r#"["a..b"]"#,
        ] {
            let problems = parse(&good().set("http.hosts", bad).to_string()).unwrap_err();
            assert_eq!(keys(&problems), ["http.hosts"], "{bad}");
        }
    }

    #[test]
    fn garbage_never_panics() {
        for text in [
            "",
            "[[[",
            "cluster = 5",
            "[cluster]\nname = []",
            "node = [1, 2]",
            "[[node]]\naddresses = 3",
        ] {
            assert!(parse(text).is_err(), "{text:?}");
        }
    }
}
