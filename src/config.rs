//! The configuration file: TOML in, a typed and checked [`Config`] out.
//!
//! One file serves every node of a cluster. Parsing happens in two passes so that
//! `failoverd check` can report every problem at once, each with its key and line:
//! first serde reads the document into raw structs (unknown keys and wrong types are
//! collected one by one, dropping the offending key and reading again), then the raw
//! values are converted into [`Config`], where addresses, durations and the relations
//! between them are checked. Nothing here touches the network.

use std::collections::{BTreeMap, HashMap};
use std::fmt;
use std::fs;
use std::net::IpAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde::Deserialize;
use sha2::{Digest, Sha256};
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::duration::{format_duration, parse_duration};

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

/// One problem in the file, tied to the key (and, where known, the line) it is about.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// Dotted path of the key, e.g. `node[1].addresses.lan`.
    pub key: String,
    pub line: Option<usize>,
    pub message: String,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "line {line}: {}: {}", self.key, self.message),
            None => write!(f, "{}: {}", self.key, self.message),
        }
    }
}

fn describe_problems(path: &Path, problems: &[Problem]) -> String {
    match problems {
        [one] => format!("{}: {one}", path.display()),
        _ => format!(
            "{} has {} problems:\n{}",
            path.display(),
            problems.len(),
            Problems(problems)
        ),
    }
}

struct Problems<'a>(&'a [Problem]);

impl fmt::Display for Problems<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for (i, problem) in self.0.iter().enumerate() {
            if i > 0 {
                writeln!(f)?;
            }
            write!(f, "  {problem}")?;
        }
        Ok(())
    }
}

/// What to do when a preferred node comes back while another holds the VIPs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
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
    pub hooks: Hooks,
    pub announce: Announce,
    pub control: Control,
    pub events: Events,
    pub http: Http,
    /// The shared secret read from `cluster.key_file`.
    pub key: Key,
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
}

#[derive(Debug, Clone, PartialEq)]
pub struct Node {
    pub name: String,
    /// Higher wins the election among equally healthy nodes.
    pub priority: u16,
    /// This node's address on each link, indexed like [`Config::links`].
    pub addresses: Vec<IpAddr>,
    /// Interface names on this node for the logical names used by `[[vip]]`.
    pub interfaces: BTreeMap<String, String>,
}

impl Node {
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
    pub timeout: Duration,
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

/// The event log kept for `failoverd status` and `failoverd events`.
#[derive(Debug, Clone, PartialEq)]
pub struct Events {
    /// Append every event as a JSON line here (reopened on SIGHUP).
    pub file: Option<PathBuf>,
    /// Events kept in memory.
    pub keep: usize,
}

/// The status page and metrics endpoint; off unless `listen` is set.
#[derive(Debug, Clone, PartialEq)]
pub struct Http {
    pub listen: Option<std::net::SocketAddr>,
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
            .field("hooks", &self.hooks)
            .field("announce", &self.announce)
            .field("control", &self.control)
            .field("events", &self.events)
            .field("http", &self.http)
            .finish_non_exhaustive()
    }
}

impl Config {
    /// Reads, parses and checks the file at `path`, including the key file it names.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        Config::parse(&text, path.parent().unwrap_or(Path::new("."))).map_err(|problems| {
            ConfigError::Invalid {
                path: path.to_path_buf(),
                problems,
            }
        })
    }

    /// Parses a document; relative paths in it are taken from `base`.
    pub fn parse(text: &str, base: &Path) -> Result<Config, Vec<Problem>> {
        let mut problems = Vec::new();
        let lines = LineIndex::new(text);
        let mut doc = match DeTable::parse(text) {
            Ok(doc) => doc,
            Err(err) => {
                return Err(vec![Problem {
                    key: "(document)".to_string(),
                    line: err.span().map(|s| lines.line(s.start)),
                    message: err.message().to_string(),
                }]);
            }
        };
        doc.get_mut().make_owned();
        let positions = key_lines(doc.get_ref(), &lines);
        let raw = read_raw(doc, &lines, &mut problems);
        let mut check = Checker {
            problems,
            positions,
        };
        let config = raw.and_then(|raw| check.convert(raw, base));
        match config {
            Some(config) if check.problems.is_empty() => Ok(config),
            _ => Err(check.problems),
        }
    }

    /// Index of the node called `name`.
    pub fn node_index(&self, name: &str) -> Option<usize> {
        self.nodes.iter().position(|n| n.name == name)
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
        for link in &self.links {
            canon.push_str(&format!("link {link}\n"));
        }
        for node in &self.nodes {
            canon.push_str(&format!("node {} {}", node.name, node.priority));
            for address in &node.addresses {
                canon.push_str(&format!(" {address}"));
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

// ---------------------------------------------------------------------------
// Raw document: every key optional so that missing keys are reported in the
// second pass together with everything else.

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawConfig {
    cluster: Option<RawCluster>,
    timing: Option<RawTiming>,
    link: Option<Vec<RawLink>>,
    node: Option<Vec<RawNode>>,
    vip: Option<Vec<RawVip>>,
    health: Option<RawHealth>,
    hooks: Option<RawHooks>,
    announce: Option<RawAnnounce>,
    control: Option<RawControl>,
    events: Option<RawEvents>,
    http: Option<RawHttp>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawControl {
    socket: Option<PathBuf>,
    group: Option<String>,
    state_dir: Option<PathBuf>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawEvents {
    file: Option<PathBuf>,
    keep: Option<usize>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawHttp {
    listen: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawCluster {
    name: Option<String>,
    key_file: Option<PathBuf>,
    port: Option<u16>,
    failback: Option<String>,
    failback_delay: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawTiming {
    interval: Option<String>,
    warn: Option<String>,
    dead: Option<String>,
    init_dead: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawLink {
    name: Option<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawNode {
    name: Option<String>,
    priority: Option<u16>,
    addresses: Option<BTreeMap<String, String>>,
    interfaces: Option<BTreeMap<String, String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawVip {
    address: Option<String>,
    interface: Option<String>,
    label: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawHealth {
    gateways: Option<Vec<String>>,
    interval: Option<String>,
    timeout: Option<String>,
    failures: Option<u32>,
    link_state: Option<bool>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawHooks {
    start: Option<PathBuf>,
    stop: Option<PathBuf>,
    fault: Option<PathBuf>,
    timeout: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct RawAnnounce {
    count: Option<u32>,
    interval: Option<String>,
    refresh: Option<String>,
}

/// Byte offset to 1-based line number.
struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    fn new(text: &str) -> LineIndex {
        let mut starts = vec![0];
        starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        LineIndex { starts }
    }

    fn line(&self, offset: usize) -> usize {
        match self.starts.binary_search(&offset) {
            Ok(i) => i + 1,
            Err(i) => i,
        }
    }
}

/// One step of a key path.
#[derive(Debug, Clone)]
enum Seg {
    Key(String),
    Index(usize),
}

fn path_string(path: &[Seg]) -> String {
    let mut out = String::new();
    for seg in path {
        match seg {
            Seg::Key(k) => {
                if !out.is_empty() {
                    out.push('.');
                }
                out.push_str(k);
            }
            Seg::Index(i) => out.push_str(&format!("[{i}]")),
        }
    }
    out
}

/// The line of every key path in the document, for the checks of the second pass.
fn key_lines(doc: &DeTable<'_>, lines: &LineIndex) -> HashMap<String, usize> {
    fn walk(
        table: &DeTable<'_>,
        prefix: &mut Vec<Seg>,
        lines: &LineIndex,
        out: &mut HashMap<String, usize>,
    ) {
        for (key, value) in table {
            prefix.push(Seg::Key(key.get_ref().to_string()));
            out.insert(path_string(prefix), lines.line(key.span().start));
            walk_value(value, prefix, lines, out);
            prefix.pop();
        }
    }
    fn walk_value(
        value: &Spanned<DeValue<'_>>,
        prefix: &mut Vec<Seg>,
        lines: &LineIndex,
        out: &mut HashMap<String, usize>,
    ) {
        match value.get_ref() {
            DeValue::Table(t) => walk(t, prefix, lines, out),
            DeValue::Array(items) => {
                for (i, item) in items.iter().enumerate() {
                    prefix.push(Seg::Index(i));
                    out.insert(path_string(prefix), lines.line(item.span().start));
                    walk_value(item, prefix, lines, out);
                    prefix.pop();
                }
            }
            _ => {}
        }
    }
    let mut out = HashMap::new();
    walk(doc, &mut Vec::new(), lines, &mut out);
    out
}

/// The deepest key whose key or value covers `offset`.
fn key_at(table: &DeTable<'_>, offset: usize) -> Option<Vec<Seg>> {
    fn in_value(value: &Spanned<DeValue<'_>>, offset: usize) -> Option<Vec<Seg>> {
        match value.get_ref() {
            DeValue::Table(t) => key_at(t, offset),
            // The span of an array-of-tables element may cover only its header, so
            // look inside every element rather than trusting the span.
            DeValue::Array(items) => items.iter().enumerate().find_map(|(i, item)| {
                let mut path = vec![Seg::Index(i)];
                match in_value(item, offset) {
                    Some(deeper) => path.extend(deeper),
                    None if covers(item.span(), offset) => {}
                    None => return None,
                }
                Some(path)
            }),
            _ => None,
        }
    }
    fn covers(span: std::ops::Range<usize>, offset: usize) -> bool {
        span.start <= offset && offset < span.end.max(span.start + 1)
    }
    for (key, value) in table {
        let deeper = in_value(value, offset);
        if deeper.is_some() || covers(key.span(), offset) || covers(value.span(), offset) {
            let mut path = vec![Seg::Key(key.get_ref().to_string())];
            path.extend(deeper.unwrap_or_default());
            return Some(path);
        }
    }
    None
}

/// Removes the entry at `path`; returns false if there is none.
fn remove_at(table: &mut DeTable<'_>, path: &[Seg]) -> bool {
    let Some((Seg::Key(first), rest)) = path.split_first() else {
        return false;
    };
    if rest.is_empty() {
        return table.remove(first.as_str()).is_some();
    }
    let Some(value) = table.get_mut(first.as_str()) else {
        return false;
    };
    remove_in_value(value.get_mut(), rest)
}

fn remove_in_value(value: &mut DeValue<'_>, path: &[Seg]) -> bool {
    match (value, path.first()) {
        (DeValue::Table(t), Some(Seg::Key(_))) => remove_at(t, path),
        (DeValue::Array(items), Some(Seg::Index(i))) => {
            let rest = &path[1..];
            if rest.is_empty() {
                // Dropping an array element would renumber the others; a bad
                // element is reported and its whole array dropped instead.
                return false;
            }
            match items.get_mut(*i) {
                Some(item) => remove_in_value(item.get_mut(), rest),
                None => false,
            }
        }
        _ => false,
    }
}

/// First pass: serde with `deny_unknown_fields`. Each error is recorded, the key it
/// points at is dropped and the document read again, so one run reports them all.
fn read_raw(
    mut doc: Spanned<DeTable<'_>>,
    lines: &LineIndex,
    problems: &mut Vec<Problem>,
) -> Option<RawConfig> {
    // Bounded: every round removes a key, and a document this broken says enough.
    for _ in 0..64 {
        let err = match RawConfig::deserialize(toml::de::Deserializer::from(doc.clone())) {
            Ok(raw) => return Some(raw),
            Err(err) => err,
        };
        let span = err.span();
        let path = span
            .as_ref()
            .and_then(|s| key_at(doc.get_ref(), s.start))
            .unwrap_or_default();
        let mut key = path_string(&path);
        let mut removed = !path.is_empty() && remove_at(doc.get_mut(), &path);
        if !removed && path.len() > 1 {
            // The error sits on an array element: drop the whole key holding it.
            let top: Vec<Seg> = path
                .iter()
                .take_while(|s| matches!(s, Seg::Key(_)))
                .cloned()
                .collect();
            if !top.is_empty() {
                key = path_string(&path);
                removed = remove_at(doc.get_mut(), &top);
            }
        }
        problems.push(Problem {
            key: if key.is_empty() {
                "(document)".to_string()
            } else {
                key
            },
            line: span.map(|s| lines.line(s.start)),
            message: tidy_serde_message(err.message()),
        });
        if !removed {
            return None;
        }
    }
    None
}

fn tidy_serde_message(message: &str) -> String {
    message
        .replace("invalid type: ", "wrong type: found ")
        .replace("unknown field", "unknown key")
        .trim()
        .to_string()
}

/// Second pass: raw values to typed ones, collecting every problem.
struct Checker {
    problems: Vec<Problem>,
    positions: HashMap<String, usize>,
}

impl Checker {
    fn problem(&mut self, key: impl Into<String>, message: impl Into<String>) {
        let key = key.into();
        let line = self.line_of(&key);
        self.problems.push(Problem {
            key,
            line,
            message: message.into(),
        });
    }

    /// Line of `key`, or of the nearest enclosing key that is in the file.
    fn line_of(&self, key: &str) -> Option<usize> {
        let mut k = key;
        loop {
            if let Some(line) = self.positions.get(k) {
                return Some(*line);
            }
            let cut = k.rfind(['.', '['])?;
            k = &k[..cut];
        }
    }

    fn required<T>(&mut self, key: &str, value: Option<T>) -> Option<T> {
        if value.is_none() {
            self.problem(key, "is required");
        }
        value
    }

    fn duration(&mut self, key: &str, value: Option<&str>, default: Duration) -> Duration {
        match value.map(parse_duration) {
            None => default,
            Some(Ok(d)) => d,
            Some(Err(message)) => {
                self.problem(key, message);
                default
            }
        }
    }

    fn name(&mut self, key: &str, name: &str) {
        if name.is_empty() || name.len() > MAX_NAME_LEN {
            self.problem(key, format!("must be 1 to {MAX_NAME_LEN} bytes long"));
        } else if name.chars().any(|c| c.is_whitespace() || c.is_control()) {
            self.problem(key, format!("\"{name}\" must not contain spaces"));
        }
    }

    fn convert(&mut self, raw: RawConfig, base: &Path) -> Option<Config> {
        let cluster = self.cluster(raw.cluster, base);
        let timing = self.timing(raw.timing.unwrap_or_default());
        let links = self.links(raw.link.unwrap_or_default());
        let nodes = self.nodes(raw.node.unwrap_or_default(), &links);
        let vips = self.vips(raw.vip.unwrap_or_default(), &nodes);
        let health = self.health(raw.health.unwrap_or_default());
        let hooks = self.hooks(raw.hooks.unwrap_or_default(), base);
        let announce = self.announce(raw.announce.unwrap_or_default());
        let control = self.control(raw.control.unwrap_or_default(), base);
        let events = self.events(raw.events.unwrap_or_default(), base);
        let http = self.http(raw.http.unwrap_or_default());
        let (cluster, key) = cluster?;
        Some(Config {
            cluster,
            timing,
            links,
            nodes,
            vips,
            health,
            hooks,
            announce,
            control,
            events,
            http,
            key,
        })
    }

    fn control(&mut self, raw: RawControl, base: &Path) -> Control {
        if let Some(group) = &raw.group {
            match nix::unistd::Group::from_name(group) {
                Ok(Some(_)) => {}
                Ok(None) => self.problem("control.group", format!("no group named \"{group}\"")),
                Err(err) => self.problem("control.group", format!("{group}: {err}")),
            }
        }
        Control {
            socket: base.join(raw.socket.unwrap_or_else(|| PathBuf::from(DEFAULT_SOCKET))),
            group: raw.group,
            state_dir: base.join(
                raw.state_dir
                    .unwrap_or_else(|| PathBuf::from("/var/lib/failoverd")),
            ),
        }
    }

    fn events(&mut self, raw: RawEvents, base: &Path) -> Events {
        let keep = raw.keep.unwrap_or(200);
        if !(1..=100_000).contains(&keep) {
            self.problem("events.keep", "must be between 1 and 100000");
        }
        Events {
            file: raw.file.map(|f| base.join(f)),
            keep,
        }
    }

    fn http(&mut self, raw: RawHttp) -> Http {
        let listen = raw.listen.and_then(|text| match text.parse() {
            Ok(addr) => Some(addr),
            Err(_) => {
                self.problem(
                    "http.listen",
                    format!("\"{text}\" is not an address:port such as \"127.0.0.1:9469\""),
                );
                None
            }
        });
        Http { listen }
    }

    fn cluster(&mut self, raw: Option<RawCluster>, base: &Path) -> Option<(Cluster, Key)> {
        let Some(raw) = raw else {
            self.problem("cluster", "the [cluster] table is required");
            return None;
        };
        let name = self.required("cluster.name", raw.name);
        if let Some(name) = &name {
            self.name("cluster.name", name);
        }
        let failback = match raw.failback.as_deref() {
            None | Some("auto") => Failback::Auto,
            Some("manual") => Failback::Manual,
            Some(other) => {
                self.problem(
                    "cluster.failback",
                    format!("\"{other}\" is not one of \"auto\", \"manual\""),
                );
                Failback::Auto
            }
        };
        let failback_delay = self.duration(
            "cluster.failback_delay",
            raw.failback_delay.as_deref(),
            Duration::from_secs(30),
        );
        let port = raw.port.unwrap_or(DEFAULT_PORT);
        if port == 0 {
            self.problem("cluster.port", "must not be 0");
        }
        let key_file = self.required("cluster.key_file", raw.key_file);
        let key = key_file.as_ref().and_then(|path| {
            let path = base.join(path);
            match read_key(&path) {
                Ok(key) => Some(key),
                Err(message) => {
                    self.problem("cluster.key_file", message);
                    None
                }
            }
        });
        Some((
            Cluster {
                name: name?,
                key_file: key_file.map(|p| base.join(p))?,
                port,
                failback,
                failback_delay,
            },
            key?,
        ))
    }

    fn timing(&mut self, raw: RawTiming) -> Timing {
        let interval = self.duration(
            "timing.interval",
            raw.interval.as_deref(),
            Duration::from_millis(200),
        );
        let warn = self.duration(
            "timing.warn",
            raw.warn.as_deref(),
            Duration::from_millis(600),
        );
        let dead = self.duration("timing.dead", raw.dead.as_deref(), Duration::from_secs(1));
        let init_dead = self.duration(
            "timing.init_dead",
            raw.init_dead.as_deref(),
            Duration::from_secs(3),
        );
        if interval < MIN_INTERVAL {
            self.problem(
                "timing.interval",
                format!(
                    "{} is shorter than the minimum {}",
                    format_duration(interval),
                    format_duration(MIN_INTERVAL)
                ),
            );
        }
        if dead < interval * 2 {
            self.problem(
                "timing.dead",
                format!(
                    "{} must be at least twice timing.interval ({}), or one lost packet \
                     is a failover",
                    format_duration(dead),
                    format_duration(interval)
                ),
            );
        }
        if warn < interval || warn >= dead {
            self.problem(
                "timing.warn",
                format!(
                    "{} must lie between timing.interval ({}) and timing.dead ({})",
                    format_duration(warn),
                    format_duration(interval),
                    format_duration(dead)
                ),
            );
        }
        if init_dead < dead {
            self.problem(
                "timing.init_dead",
                format!(
                    "{} must be at least timing.dead ({})",
                    format_duration(init_dead),
                    format_duration(dead)
                ),
            );
        }
        Timing {
            interval,
            warn,
            dead,
            init_dead,
        }
    }

    fn links(&mut self, raw: Vec<RawLink>) -> Vec<String> {
        if raw.is_empty() {
            self.problem(
                "link",
                "at least one [[link]] is required (e.g. a crossover and the LAN)",
            );
        }
        if raw.len() > usize::from(u8::MAX) {
            self.problem("link", "too many links");
        }
        let mut names: Vec<String> = Vec::new();
        for (i, link) in raw.into_iter().enumerate() {
            let key = format!("link[{i}].name");
            let Some(name) = self.required(&key, link.name) else {
                names.push(String::new());
                continue;
            };
            self.name(&key, &name);
            if names.contains(&name) {
                self.problem(&key, format!("link \"{name}\" is declared twice"));
            }
            names.push(name);
        }
        names
    }

    fn nodes(&mut self, raw: Vec<RawNode>, links: &[String]) -> Vec<Node> {
        if raw.len() < 2 {
            self.problem(
                "node",
                format!(
                    "at least two [[node]] entries are required, found {}",
                    raw.len()
                ),
            );
        }
        let mut nodes: Vec<Node> = Vec::new();
        let mut seen_addresses: HashMap<IpAddr, String> = HashMap::new();
        for (i, node) in raw.into_iter().enumerate() {
            let prefix = format!("node[{i}]");
            let name = self
                .required(&format!("{prefix}.name"), node.name)
                .unwrap_or_default();
            self.name(&format!("{prefix}.name"), &name);
            if nodes.iter().any(|n| n.name == name) {
                self.problem(
                    format!("{prefix}.name"),
                    format!("node \"{name}\" is declared twice"),
                );
            }
            let priority = self
                .required(&format!("{prefix}.priority"), node.priority)
                .unwrap_or(0);
            let raw_addresses = self
                .required(&format!("{prefix}.addresses"), node.addresses)
                .unwrap_or_default();
            for link in raw_addresses.keys() {
                if !links.contains(link) {
                    self.problem(
                        format!("{prefix}.addresses.{link}"),
                        format!(
                            "no [[link]] is named \"{link}\" (links: {})",
                            links.join(", ")
                        ),
                    );
                }
            }
            let mut addresses = Vec::new();
            for link in links {
                let key = format!("{prefix}.addresses.{link}");
                let Some(text) = raw_addresses.get(link) else {
                    self.problem(
                        format!("{prefix}.addresses"),
                        format!("no address for link \"{link}\""),
                    );
                    continue;
                };
                match text.parse::<IpAddr>() {
                    Ok(addr) => {
                        if let Some(other) = seen_addresses.insert(addr, name.clone()) {
                            self.problem(&key, format!("{addr} is also used by node \"{other}\""));
                        }
                        addresses.push(addr);
                    }
                    Err(_) => self.problem(&key, format!("\"{text}\" is not an IP address")),
                }
            }
            let interfaces = node.interfaces.unwrap_or_default();
            for (logical, real) in &interfaces {
                if real.is_empty() || real.len() > MAX_IFNAME_LEN {
                    self.problem(
                        format!("{prefix}.interfaces.{logical}"),
                        format!("\"{real}\" is not a valid interface name"),
                    );
                }
            }
            nodes.push(Node {
                name,
                priority,
                addresses,
                interfaces,
            });
        }
        for (l, link) in links.iter().enumerate() {
            let families: Vec<bool> = nodes
                .iter()
                .filter_map(|n| n.addresses.get(l).map(IpAddr::is_ipv4))
                .collect();
            if families.windows(2).any(|w| w[0] != w[1]) {
                self.problem(
                    "node",
                    format!("link \"{link}\" mixes IPv4 and IPv6 addresses"),
                );
            }
        }
        nodes
    }

    fn vips(&mut self, raw: Vec<RawVip>, nodes: &[Node]) -> Vec<Vip> {
        let mut vips: Vec<Vip> = Vec::new();
        for (i, vip) in raw.into_iter().enumerate() {
            let prefix = format!("vip[{i}]");
            let address = self.required(&format!("{prefix}.address"), vip.address);
            let interface = self.required(&format!("{prefix}.interface"), vip.interface);
            let parsed = address.as_deref().and_then(|text| match parse_cidr(text) {
                Ok(parsed) => Some(parsed),
                Err(message) => {
                    self.problem(format!("{prefix}.address"), message);
                    None
                }
            });
            let (Some((address, prefix_len)), Some(interface)) = (parsed, interface) else {
                continue;
            };
            if vips.iter().any(|v| v.address == address) {
                self.problem(
                    format!("{prefix}.address"),
                    format!("{address} is declared twice"),
                );
            }
            if let Some(node) = nodes.iter().find(|n| n.addresses.contains(&address)) {
                self.problem(
                    format!("{prefix}.address"),
                    format!(
                        "{address} is node \"{}\"'s own address, not a virtual one",
                        node.name
                    ),
                );
            }
            let vip = Vip {
                address,
                prefix_len,
                interface,
                label: vip.label,
            };
            if vip.label.is_some() && address.is_ipv6() {
                self.problem(
                    format!("{prefix}.label"),
                    "labels exist for IPv4 addresses only",
                );
            }
            for node in nodes {
                let real = node.interface(&vip.interface);
                if real.is_empty() || real.len() > MAX_IFNAME_LEN {
                    self.problem(
                        format!("{prefix}.interface"),
                        format!("\"{real}\" is not a valid interface name"),
                    );
                }
                if let Some(label) = vip.label_on(node)
                    && (label.len() > MAX_IFNAME_LEN || !label.starts_with(real))
                {
                    self.problem(
                        format!("{prefix}.label"),
                        format!(
                            "\"{label}\" on node \"{}\" must start with the interface \
                             name \"{real}\" and be at most {MAX_IFNAME_LEN} bytes",
                            node.name
                        ),
                    );
                }
            }
            vips.push(vip);
        }
        vips
    }

    fn health(&mut self, raw: RawHealth) -> Health {
        let mut gateways = Vec::new();
        for (i, text) in raw.gateways.unwrap_or_default().iter().enumerate() {
            match text.parse::<IpAddr>() {
                Ok(IpAddr::V6(v6)) if v6.is_unicast_link_local() => self.problem(
                    format!("health.gateways[{i}]"),
                    format!("{v6} is link-local; use the gateway's global or ULA address"),
                ),
                Ok(addr) => gateways.push(addr),
                Err(_) => self.problem(
                    format!("health.gateways[{i}]"),
                    format!("\"{text}\" is not an IP address"),
                ),
            }
        }
        let interval = self.duration(
            "health.interval",
            raw.interval.as_deref(),
            Duration::from_secs(1),
        );
        let timeout = self.duration("health.timeout", raw.timeout.as_deref(), interval);
        if interval < MIN_INTERVAL {
            self.problem(
                "health.interval",
                format!("must be at least {}", format_duration(MIN_INTERVAL)),
            );
        }
        if timeout > interval || timeout.is_zero() {
            self.problem(
                "health.timeout",
                format!(
                    "{} must be positive and at most health.interval ({})",
                    format_duration(timeout),
                    format_duration(interval)
                ),
            );
        }
        let failures = raw.failures.unwrap_or(3);
        if failures == 0 {
            self.problem("health.failures", "must be at least 1");
        }
        Health {
            gateways,
            interval,
            timeout,
            failures,
            link_state: raw.link_state.unwrap_or(true),
        }
    }

    fn hooks(&mut self, raw: RawHooks, base: &Path) -> Hooks {
        let mut hook = |name: &str, path: Option<PathBuf>| {
            let path = base.join(path?);
            let key = format!("hooks.{name}");
            match fs::metadata(&path) {
                Ok(meta) if !meta.is_file() => {
                    self.problem(key, format!("{} is not a file", path.display()))
                }
                Ok(meta) if meta.permissions().mode() & 0o111 == 0 => {
                    self.problem(key, format!("{} is not executable", path.display()))
                }
                Ok(_) => {}
                Err(err) => self.problem(key, format!("{}: {err}", path.display())),
            }
            Some(path)
        };
        let start = hook("start", raw.start);
        let stop = hook("stop", raw.stop);
        let fault = hook("fault", raw.fault);
        let timeout = self.duration(
            "hooks.timeout",
            raw.timeout.as_deref(),
            Duration::from_secs(60),
        );
        if timeout.is_zero() {
            self.problem("hooks.timeout", "must be positive");
        }
        Hooks {
            start,
            stop,
            fault,
            timeout,
        }
    }

    fn announce(&mut self, raw: RawAnnounce) -> Announce {
        let count = raw.count.unwrap_or(3);
        if !(1..=100).contains(&count) {
            self.problem("announce.count", "must be between 1 and 100");
        }
        let interval = self.duration(
            "announce.interval",
            raw.interval.as_deref(),
            Duration::from_millis(200),
        );
        let refresh = match raw.refresh.as_deref() {
            Some("off") => None,
            other => {
                let d = self.duration("announce.refresh", other, Duration::from_secs(60));
                if d.is_zero() {
                    None
                } else {
                    if d < Duration::from_secs(1) {
                        self.problem(
                            "announce.refresh",
                            "must be at least 1s, or \"off\" to turn it off",
                        );
                    }
                    Some(d)
                }
            }
        };
        Announce {
            count,
            interval,
            refresh,
        }
    }
}

/// "198.18.0.10/24" or "2001:db8::10/64".
fn parse_cidr(text: &str) -> Result<(IpAddr, u8), String> {
    let hint = "expected address/prefix, e.g. \"198.18.0.10/24\"";
    let Some((addr, prefix)) = text.split_once('/') else {
        return Err(format!("\"{text}\" has no prefix length: {hint}"));
    };
    let addr: IpAddr = addr
        .parse()
        .map_err(|_| format!("\"{addr}\" is not an IP address: {hint}"))?;
    let max = if addr.is_ipv4() { 32 } else { 128 };
    match prefix.parse::<u8>() {
        Ok(p) if p <= max => Ok((addr, p)),
        _ => Err(format!(
            "\"{prefix}\" is not a prefix length between 0 and {max}"
        )),
    }
}

/// Reads the shared key, refusing one that others on the machine could read: the
/// same rule Heartbeat applies to authkeys.
fn read_key(path: &Path) -> Result<Key, String> {
    let meta = fs::metadata(path).map_err(|err| format!("{}: {err}", path.display()))?;
    // A FIFO or a device would block `check` and every reload on reading it.
    if !meta.is_file() {
        return Err(format!("{} is not a regular file", path.display()));
    }
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        return Err(format!(
            "{} has mode {mode:04o}; it must not be readable by group or others \
             (chmod 600 {})",
            path.display(),
            path.display()
        ));
    }
    let bytes = fs::read(path).map_err(|err| format!("{}: {err}", path.display()))?;
    let trimmed = bytes.trim_ascii();
    if trimmed.len() < MIN_KEY_LEN {
        return Err(format!(
            "{} holds {} bytes; at least {MIN_KEY_LEN} are required \
             (e.g. head -c 32 /dev/urandom | base64 > {})",
            path.display(),
            trimmed.len(),
            path.display()
        ));
    }
    Ok(Key(trimmed.to_vec()))
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
[cluster]
name = "web"
key_file = "authkey"
failback = "manual"
failback_delay = "5s"

[timing]
interval = "100ms"
warn = "300ms"
dead = "500ms"
init_dead = "1s"

[[link]]
name = "crossover"
[[link]]
name = "lan"

[[node]]
name = "alpha"
priority = 200
addresses = { crossover = "198.19.0.1", lan = "198.18.0.11" }
interfaces = { eth0 = "ens3" }

[[node]]
name = "beta"
priority = 100
addresses = { crossover = "198.19.0.2", lan = "198.18.0.12" }

[[vip]]
address = "198.18.0.10/24"
interface = "eth0"
label = "eth0:vip"

[[vip]]
address = "2001:db8::10/64"
interface = "eth0"

[health]
gateways = ["198.18.0.1"]
interval = "500ms"
failures = 2
"#;

    fn dir_with_key(mode: u32, key: &str) -> tempdir::TempDir {
        let dir = tempdir::TempDir::new();
        let path = dir.path().join("authkey");
        fs::write(&path, key).unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(mode)).unwrap();
        dir
    }

    /// A throwaway directory, removed on drop; enough for these tests.
    mod tempdir {
        use std::path::{Path, PathBuf};
        use std::sync::atomic::{AtomicUsize, Ordering};

        pub struct TempDir(PathBuf);
        static NEXT: AtomicUsize = AtomicUsize::new(0);

        impl TempDir {
            pub fn new() -> TempDir {
                let n = NEXT.fetch_add(1, Ordering::Relaxed);
                let path = std::env::temp_dir()
                    .join(format!("failoverd-config-{}-{n}", std::process::id()));
                std::fs::create_dir_all(&path).unwrap();
                TempDir(path)
            }
            pub fn path(&self) -> &Path {
                &self.0
            }
        }

        impl Drop for TempDir {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
    }

    fn parse(text: &str) -> Result<Config, Vec<Problem>> {
        let dir = dir_with_key(0o600, "0123456789abcdef0123456789abcdef\n");
        Config::parse(text, dir.path())
    }

    fn keys(problems: &[Problem]) -> Vec<&str> {
        problems.iter().map(|p| p.key.as_str()).collect()
    }

    #[test]
    fn good_file_parses_into_typed_values() {
        let config = parse(GOOD).expect("valid config");
        assert_eq!(config.cluster.name, "web");
        assert_eq!(config.cluster.port, DEFAULT_PORT);
        assert_eq!(config.cluster.failback, Failback::Manual);
        assert_eq!(config.timing.interval, Duration::from_millis(100));
        assert_eq!(config.links, ["crossover", "lan"]);
        assert_eq!(
            config.nodes[1].addresses,
            [
                "198.19.0.2".parse::<IpAddr>().unwrap(),
                "198.18.0.12".parse().unwrap()
            ]
        );
        assert_eq!(config.vips[0].prefix_len, 24);
        assert_eq!(
            config.vips[1].address,
            "2001:db8::10".parse::<IpAddr>().unwrap()
        );
        assert_eq!(config.health.timeout, Duration::from_millis(500));
        assert_eq!(config.key.as_bytes().len(), 32, "trailing newline trimmed");
        assert_eq!(config.announce.refresh, Some(Duration::from_secs(60)));
    }

    #[test]
    fn per_node_interface_overrides_rewrite_the_label() {
        let config = parse(GOOD).unwrap();
        let alpha = &config.nodes[0];
        assert_eq!(alpha.interface("eth0"), "ens3");
        assert_eq!(config.vips[0].label_on(alpha).as_deref(), Some("ens3:vip"));
        assert_eq!(
            config.vips[0].label_on(&config.nodes[1]).as_deref(),
            Some("eth0:vip")
        );
    }

    #[test]
    fn every_problem_is_reported_at_once_with_key_and_line() {
        let text = GOOD
            .replace("priority = 200", "priority = \"high\"")
            .replace("failures = 2", "failures = 2\nretries = 4")
            .replace("dead = \"500ms\"", "dead = \"150ms\"")
            .replace("lan = \"198.18.0.12\"", "lan = \"198.18.0.x\"")
            .replace("name = \"lan\"", "name = \"lan\"\nmtu = 9000");
        let problems = parse(&text).unwrap_err();
        let keys = keys(&problems);
        for expected in [
            "node[0].priority",
            "health.retries",
            "link[1].mtu",
            "timing.dead",
            "node[1].addresses.lan",
        ] {
            assert!(
                keys.contains(&expected),
                "{expected} missing in {problems:#?}"
            );
        }
        let priority = problems
            .iter()
            .find(|p| p.key == "node[0].priority")
            .unwrap();
        let line = text.lines().position(|l| l.contains("\"high\"")).unwrap() + 1;
        assert_eq!(priority.line, Some(line));
        assert!(priority.message.contains("wrong type"), "{priority}");
        let retries = problems.iter().find(|p| p.key == "health.retries").unwrap();
        assert!(retries.message.contains("unknown key"), "{retries}");
    }

    #[test]
    fn syntax_error_names_the_line() {
        let problems = parse("[cluster]\nname = \"web\nport = 1\n").unwrap_err();
        assert_eq!(problems.len(), 1);
        assert_eq!(problems[0].line, Some(2));
    }

    #[test]
    fn missing_required_keys_are_each_reported() {
        let problems = parse("[cluster]\nkey_file = \"authkey\"\n").unwrap_err();
        let keys = keys(&problems);
        assert!(keys.contains(&"cluster.name"), "{problems:#?}");
        assert!(keys.contains(&"link"), "{problems:#?}");
        assert!(keys.contains(&"node"), "{problems:#?}");
    }

    #[test]
    fn addresses_must_name_declared_links() {
        let text = GOOD.replace("lan = \"198.18.0.11\"", "wan = \"198.18.0.11\"");
        let problems = parse(&text).unwrap_err();
        let keys = keys(&problems);
        assert!(keys.contains(&"node[0].addresses.wan"), "{problems:#?}");
        assert!(keys.contains(&"node[0].addresses"), "{problems:#?}");
    }

    #[test]
    fn timing_relations_are_checked() {
        let text = GOOD
            .replace("interval = \"100ms\"", "interval = \"5ms\"")
            .replace("init_dead = \"1s\"", "init_dead = \"100ms\"");
        let problems = parse(&text).unwrap_err();
        let keys = keys(&problems);
        assert!(keys.contains(&"timing.interval"), "{problems:#?}");
        assert!(keys.contains(&"timing.init_dead"), "{problems:#?}");
    }

    #[test]
    fn key_file_mode_and_length_are_checked() {
        let dir = dir_with_key(0o644, "0123456789abcdef0123456789abcdef");
        let problems = Config::parse(GOOD, dir.path()).unwrap_err();
        assert_eq!(keys(&problems), ["cluster.key_file"]);
        assert!(problems[0].message.contains("0644"), "{}", problems[0]);

        let dir = dir_with_key(0o600, "short");
        let problems = Config::parse(GOOD, dir.path()).unwrap_err();
        assert!(
            problems[0].message.contains("at least 16"),
            "{}",
            problems[0]
        );

        let dir = tempdir::TempDir::new();
        let problems = Config::parse(GOOD, dir.path()).unwrap_err();
        assert_eq!(keys(&problems), ["cluster.key_file"]);
    }

    #[test]
    fn vip_problems() {
        let text = GOOD
            .replace("198.18.0.10/24", "198.18.0.11")
            .replace("label = \"eth0:vip\"", "label = \"bond0:vip\"");
        let problems = parse(&text).unwrap_err();
        assert_eq!(keys(&problems), ["vip[0].address"], "{problems:#?}");

        let text = GOOD.replace("label = \"eth0:vip\"", "label = \"bond0:vip\"");
        let problems = parse(&text).unwrap_err();
        assert_eq!(keys(&problems), ["vip[0].label", "vip[0].label"]);
    }

    #[test]
    fn fingerprint_covers_the_shared_part_only() {
        let a = parse(GOOD).unwrap();
        let hooks_changed = parse(&GOOD.replace("failures = 2", "failures = 5")).unwrap();
        assert_eq!(a.fingerprint(), hooks_changed.fingerprint());
        let priority_changed = parse(&GOOD.replace("priority = 100", "priority = 101")).unwrap();
        assert_ne!(a.fingerprint(), priority_changed.fingerprint());
    }

    #[test]
    fn socket_path_reads_only_the_control_socket() {
        let dir = tempdir::TempDir::new();
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
