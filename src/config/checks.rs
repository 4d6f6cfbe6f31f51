//! The second pass: raw values converted into typed ones, and their relations checked.
//!
//! Owns every rule a value must follow once it has the right type: names, addresses
//! and prefixes, the timing relations (dead >= 2 x interval, ...), links named by the
//! nodes, VIPs against node addresses and interface names, health, hooks (existing
//! executables that only root can change, see `files`) and the user they run as,
//! announcements, and the key file (who can read it, its length). Every broken
//! rule is one [`Problem`] with its key; none stops the others from being checked.
//! The `[[check]]` tables have more rules than all of these together, so they live
//! in `checks/check_table.rs`, which shares this `Checker`. Syntax, unknown keys
//! and wrong types are the first pass's (`raw`); finding the line of a key is
//! `diagnostics`'.

mod check_table;
mod damping;
mod guard;

use std::collections::HashMap;
use std::ffi::CString;
use std::fs;
use std::io::Read;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use nix::unistd::{Gid, Group, Uid, User, getgrouplist};

use super::files::{self, Checked, Use};
use super::raw::{
    RawAnnounce, RawCluster, RawConfig, RawControl, RawEvents, RawHealth, RawHooks, RawHttp,
    RawLink, RawNode, RawScheduling, RawTiming, RawVip,
};
use super::{
    Announce, Cluster, Config, Control, DEFAULT_PORT, DEFAULT_SOCKET, Events, Failback, Health,
    Hooks, Http, Key, MAX_IFNAME_LEN, MAX_NAME_LEN, MAX_STANDBY_INTERVAL, MIN_INTERVAL,
    MIN_KEY_LEN, Node, Problem, RunAs, STANDBY_INTERVAL, Scheduling, StartFailure, Timing, Vip,
};
use crate::duration::{format_duration, parse_duration};
use crate::wire::heartbeat::MAX_NODES;

/// Converts the raw document, if the first pass got one, adding to the `problems` it
/// found; `positions` gives the line of each key. A configuration comes out only when
/// no pass found anything.
pub(super) fn convert(
    raw: Option<RawConfig>,
    base: &Path,
    problems: Vec<Problem>,
    positions: HashMap<String, usize>,
) -> Result<Config, Vec<Problem>> {
    let mut check = Checker {
        first_pass: problems.len(),
        problems,
        warnings: Vec::new(),
        positions,
    };
    let config = raw.and_then(|raw| check.convert(raw, base));
    match config {
        Some(config) if check.problems.is_empty() => Ok(config),
        _ => {
            // In the order of the file, as an editor shows it; a stable sort keeps
            // the problems of one line in the order they were found, and those of
            // no line (a missing table) first.
            check.problems.sort_by_key(|p| p.line);
            Err(check.problems)
        }
    }
}

/// Second pass: raw values to typed ones, collecting every problem.
struct Checker {
    problems: Vec<Problem>,
    /// How many of `problems` the first pass found: keys of the wrong type, which
    /// it dropped. This pass sees them as missing, and says nothing about them.
    first_pass: usize,
    /// What is reported but keeps nothing from running: see [`Config::warnings`].
    warnings: Vec<Problem>,
    positions: HashMap<String, usize>,
}

impl Checker {
    fn warning(&mut self, key: impl Into<String>, message: impl Into<String>) {
        let key = key.into();
        let line = self.line_of(&key);
        self.warnings.push(Problem {
            key,
            line,
            message: message.into(),
        });
    }

    /// A program failoverd runs (a hook, an `exec` check's program, the fencing
    /// command): an executable regular file that only root can change (`files`).
    /// Reports what is wrong under `key`, adding `hint` when the file cannot be
    /// opened; returns whether it may be run.
    fn program(&mut self, key: &str, path: &Path, hint: &str) -> bool {
        match files::open(path, Use::Program) {
            Ok(checked) => self.findings(key, &checked),
            Err(err) => {
                self.problem(key, format!("{}: {err}{hint}", path.display()));
                false
            }
        }
    }

    /// Reports the findings about a file under `key`; returns whether there was no
    /// error among them.
    fn findings(&mut self, key: &str, checked: &Checked) -> bool {
        for warning in checked.warnings() {
            self.warning(key, warning);
        }
        match checked.errors() {
            Some(errors) => {
                self.problem(key, errors);
                false
            }
            None => true,
        }
    }

    /// Records a problem with `key`, unless the first pass reported `key` or a key
    /// holding it: a value of the wrong type was dropped, and whatever this pass
    /// finds about it (missing, empty) follows from that and is not so.
    fn problem(&mut self, key: impl Into<String>, message: impl Into<String>) {
        let key = key.into();
        let dropped = self.problems[..self.first_pass].iter().any(|p| {
            key.strip_prefix(p.key.as_str())
                .is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', '[']))
        });
        if dropped {
            return;
        }
        let line = self.line_of(&key);
        self.problems.push(Problem {
            key,
            line,
            message: message.into(),
        });
    }

    /// " (first on line N)" for the first of two declarations at `key`, as the
    /// TOML reader says it of a table declared twice; empty if its line is unknown.
    fn first_at(&self, key: &str) -> String {
        self.line_of(key)
            .map(|line| format!(" (first on line {line})"))
            .unwrap_or_default()
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
        if value.is_none() && !self.reported(key) {
            self.problem(key, "is required");
        }
        value
    }

    /// Whether `key`, or a part of it, has a problem already: the first pass drops a
    /// key of the wrong type, which is then missing here but not to be called so.
    fn reported(&self, key: &str) -> bool {
        self.problems.iter().any(|p| {
            p.key
                .strip_prefix(key)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with(['.', '[']))
        })
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
        self.majority_timing(&timing, &nodes);
        let vips = self.vips(raw.vip.unwrap_or_default(), &nodes);
        let health = self.health(raw.health.unwrap_or_default(), (&nodes, &links), &vips);
        let checks = self.checks(
            raw.check.unwrap_or_default(),
            base,
            (&nodes, &links),
            &vips,
            &health,
        );
        let hooks = self.hooks(raw.hooks.unwrap_or_default(), base);
        let announce = self.announce(raw.announce.unwrap_or_default());
        let control = self.control(raw.control.unwrap_or_default(), base);
        let events = self.events(raw.events.unwrap_or_default(), base);
        let scheduling = self.scheduling(raw.scheduling.unwrap_or_default());
        let http = self.http(raw.http.unwrap_or_default());
        let gateway_checks = !health.gateways.is_empty()
            || checks
                .iter()
                .any(|c| matches!(c.probe, super::Probe::Ping { .. }));
        let split_brain = self.split_brain(raw.split_brain.unwrap_or_default(), gateway_checks);
        let fencing = self.fencing(raw.fencing.unwrap_or_default(), base);
        let damping = self.damping(raw.damping.unwrap_or_default(), &timing);
        let (cluster, key) = cluster?;
        Some(Config {
            cluster,
            timing,
            links,
            nodes,
            vips,
            health,
            checks,
            hooks,
            announce,
            control,
            events,
            http,
            split_brain,
            fencing,
            scheduling,
            damping,
            key,
            warnings: {
                let mut warnings = std::mem::take(&mut self.warnings);
                warnings.sort_by_key(|w| w.line);
                warnings
            },
        })
    }

    /// With three voters or more, a holder lets go half an interval before a
    /// majority could have declared it dead, and what it knows of that trails its
    /// heartbeats by up to two intervals (its cadence, then the acknowledging
    /// peer's): `dead` must leave room for both and a lost acknowledgement, or the
    /// holder would let go in steady state (see `machine::quorum`).
    fn majority_timing(&mut self, timing: &Timing, nodes: &[Node]) {
        if nodes.len() < 3 || timing.dead >= timing.interval * 4 {
            return;
        }
        self.problem(
            "timing.dead",
            format!(
                "{} must be at least four times timing.interval ({}) with {} nodes: \
                 the holder must keep hearing from a majority well within timing.dead",
                format_duration(timing.dead),
                format_duration(timing.interval),
                nodes.len()
            ),
        );
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

    fn scheduling(&mut self, raw: RawScheduling) -> Scheduling {
        let defaults = Scheduling::default();
        let realtime_priority = raw.realtime_priority.unwrap_or(defaults.realtime_priority);
        if realtime_priority > 99 {
            self.problem(
                "scheduling.realtime_priority",
                "must be between 1 and 99 (SCHED_RR), or 0 for normal priority",
            );
        }
        Scheduling {
            realtime_priority,
            lock_memory: raw.lock_memory.unwrap_or(defaults.lock_memory),
            raw_send: raw.raw_send.unwrap_or(defaults.raw_send),
        }
    }

    fn events(&mut self, raw: RawEvents, base: &Path) -> Events {
        let keep = raw.keep.unwrap_or(200);
        if !(1..=100_000).contains(&keep) {
            self.problem("events.keep", "must be between 1 and 100000");
        }
        Events {
            file: raw.file.map(|f| base.join(f)),
            // A u32 always fits a usize on the targets failoverd runs on (Linux, 32
            // and 64 bits).
            keep: keep as usize,
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
        let mut hosts = Vec::new();
        for name in raw.hosts.unwrap_or_default() {
            let bare = name.strip_suffix('.').unwrap_or(&name);
            let valid = !bare.is_empty()
                && bare.len() <= 253
                && bare
                    .split('.')
                    .all(|label| !label.is_empty() && label.len() <= 63)
                && bare
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'.');
            if valid {
                hosts.push(bare.to_ascii_lowercase());
            } else {
                self.problem(
                    "http.hosts",
                    format!("\"{name}\" is not a host name such as \"alpha.example.com\""),
                );
            }
        }
        Http { listen, hosts }
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
            match files::open(&path, Use::Key) {
                Ok(checked) if self.findings("cluster.key_file", &checked) => {
                    match read_key(checked.file, &path) {
                        Ok(key) => Some(key),
                        Err(message) => {
                            self.problem("cluster.key_file", message);
                            None
                        }
                    }
                }
                Ok(_) => None,
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
                    self.problem(
                        "cluster.key_file",
                        format!(
                            "{}: {err}; create it on one node with: {}, then copy it to the \
                             others with its mode (scp -p)",
                            path.display(),
                            make_key(&path)
                        ),
                    );
                    None
                }
                Err(err) => {
                    self.problem("cluster.key_file", format!("{}: {err}", path.display()));
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
        let standby_interval = self.duration(
            "timing.standby_interval",
            raw.standby_interval.as_deref(),
            STANDBY_INTERVAL,
        );
        if standby_interval > MAX_STANDBY_INTERVAL {
            self.problem(
                "timing.standby_interval",
                format!(
                    "{} is longer than the maximum {}",
                    format_duration(standby_interval),
                    format_duration(MAX_STANDBY_INTERVAL)
                ),
            );
        }
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
        // A key left out takes a fixed default, which one set key can leave out of
        // step (dead = "10s" alone and init_dead's 3s): say which value is a default
        // and which key to set.
        let shown = |value: Duration, raw: &Option<String>| match raw {
            Some(_) => format_duration(value),
            None => format!("{} (the default)", format_duration(value)),
        };
        // The same inside the parentheses of another key's message.
        let within = |value: Duration, raw: &Option<String>| match raw {
            Some(_) => format_duration(value),
            None => format!("{}, the default", format_duration(value)),
        };
        let set = |key: &str, raw: &Option<String>| match raw {
            Some(_) => String::new(),
            None => format!("; set {key}"),
        };
        if dead < interval * 2 {
            self.problem(
                "timing.dead",
                format!(
                    "{} must be at least twice timing.interval ({}), or one lost packet \
                     is a failover{}",
                    shown(dead, &raw.dead),
                    within(interval, &raw.interval),
                    set("timing.dead", &raw.dead)
                ),
            );
        }
        if warn < interval || warn >= dead {
            self.problem(
                "timing.warn",
                format!(
                    "{} must lie between timing.interval ({}) and timing.dead ({}){}",
                    shown(warn, &raw.warn),
                    within(interval, &raw.interval),
                    within(dead, &raw.dead),
                    set("timing.warn", &raw.warn)
                ),
            );
        }
        if init_dead < dead {
            self.problem(
                "timing.init_dead",
                format!(
                    "{} must be at least timing.dead ({}){}",
                    shown(init_dead, &raw.init_dead),
                    within(dead, &raw.dead),
                    set("timing.init_dead", &raw.init_dead)
                ),
            );
        }
        Timing {
            interval,
            warn,
            dead,
            init_dead,
            // Never faster than the others: a standby that beats more often than
            // `interval` would only cost more.
            standby_interval: standby_interval.max(interval),
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
            if let Some(first) = names.iter().position(|n| *n == name) {
                let at = self.first_at(&format!("link[{first}].name"));
                self.problem(&key, format!("link \"{name}\" is declared twice{at}"));
            }
            names.push(name);
        }
        names
    }

    fn nodes(&mut self, raw: Vec<RawNode>, links: &[String]) -> Vec<Node> {
        let holders = raw.iter().filter(|n| n.witness != Some(true)).count();
        if holders < 2 {
            self.problem(
                "node",
                format!(
                    "at least two [[node]] entries that are not witnesses are required, \
                     found {holders}"
                ),
            );
        }
        if raw.len() > MAX_NODES {
            self.problem(
                "node",
                format!(
                    "at most {MAX_NODES} [[node]] entries are supported, found {}",
                    raw.len()
                ),
            );
        }
        let mut nodes: Vec<Node> = Vec::new();
        let mut seen_addresses: HashMap<IpAddr, String> = HashMap::new();
        for (i, node) in raw.into_iter().enumerate() {
            let prefix = format!("node[{i}]");
            let name = self.required(&format!("{prefix}.name"), node.name);
            if let Some(name) = &name {
                self.name(&format!("{prefix}.name"), name);
            }
            let name = name.unwrap_or_default();
            if let Some(first) = nodes.iter().position(|n| n.name == name) {
                let at = self.first_at(&format!("node[{first}].name"));
                self.problem(
                    format!("{prefix}.name"),
                    format!("node \"{name}\" is declared twice{at}"),
                );
            }
            let witness = node.witness.unwrap_or(false);
            let priority = if witness {
                if node.priority.is_some() {
                    self.problem(
                        format!("{prefix}.priority"),
                        "a witness never holds the VIPs, so it has no priority",
                    );
                }
                0
            } else {
                self.required(&format!("{prefix}.priority"), node.priority)
                    .unwrap_or(0)
            };
            let addresses_given = node.addresses.is_some();
            let raw_addresses = self
                .required(&format!("{prefix}.addresses"), node.addresses)
                .unwrap_or_default();
            // A link without a name (reported already) may be the one meant.
            let links_named = !links.is_empty() && links.iter().all(|l| !l.is_empty());
            for link in raw_addresses.keys() {
                if links_named && !links.contains(link) {
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
                    // A witness joins the links it is on: a crossover cable joins
                    // the two machines it plugs into and no third. An address of
                    // the wrong type is reported as such, not as missing.
                    if !witness && !link.is_empty() && !self.reported(&key) {
                        self.problem(
                            format!("{prefix}.addresses"),
                            format!("no address for link \"{link}\""),
                        );
                    }
                    addresses.push(None);
                    continue;
                };
                match text.parse::<IpAddr>() {
                    Ok(addr) => {
                        if let Some(other) = seen_addresses.insert(addr, name.clone()) {
                            self.problem(&key, format!("{addr} is also used by node \"{other}\""));
                        }
                        addresses.push(Some(addr));
                    }
                    Err(_) => {
                        self.problem(&key, format!("\"{text}\" is not an IP address"));
                        addresses.push(None);
                    }
                }
            }
            if witness && addresses_given && addresses.iter().all(Option::is_none) {
                self.problem(
                    format!("{prefix}.addresses"),
                    "a witness needs an address on at least one link",
                );
            }
            let interfaces = node.interfaces.unwrap_or_default();
            if witness && !interfaces.is_empty() {
                self.problem(
                    format!("{prefix}.interfaces"),
                    "a witness holds no VIPs, so it has no interfaces for them",
                );
            }
            for (logical, real) in &interfaces {
                if let Some(why) = interface_name_problem(real) {
                    self.problem(format!("{prefix}.interfaces.{logical}"), why);
                }
            }
            nodes.push(Node {
                name,
                witness,
                priority,
                addresses,
                interfaces,
            });
        }
        self.one_family_per_link(&nodes, links);
        nodes
    }

    /// The first node on a link sets its family; each address of the other family is
    /// a problem of its own, on its own line.
    fn one_family_per_link(&mut self, nodes: &[Node], links: &[String]) {
        let family = |address: &IpAddr| if address.is_ipv4() { "IPv4" } else { "IPv6" };
        for (l, link) in links.iter().enumerate() {
            let on_link = nodes.iter().enumerate().filter_map(|(i, node)| {
                let address = node.addresses.get(l).copied().flatten()?;
                Some((i, node, address))
            });
            let mut first: Option<(&Node, IpAddr)> = None;
            for (i, node, address) in on_link {
                let Some((first_node, first_address)) = first else {
                    first = Some((node, address));
                    continue;
                };
                if address.is_ipv4() != first_address.is_ipv4() {
                    self.problem(
                        format!("node[{i}].addresses.{link}"),
                        format!(
                            "{address} is an {} address, but node \"{}\" has an {} address \
                             on link \"{link}\" ({first_address}); all addresses on a link \
                             must be of one family",
                            family(&address),
                            first_node.name,
                            family(&first_address)
                        ),
                    );
                }
            }
        }
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
            if let Some(why) = not_holdable(address, prefix_len) {
                self.problem(format!("{prefix}.address"), why);
            }
            if vips.iter().any(|v| v.address == address) {
                self.problem(
                    format!("{prefix}.address"),
                    format!("{address} is declared twice"),
                );
            }
            if let Some(node) = nodes.iter().find(|n| n.addresses.contains(&Some(address))) {
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
            let holders: Vec<&Node> = nodes.iter().filter(|n| !n.witness).collect();
            // The name itself matters on the nodes that do not map it to another
            // (a bad mapping is reported under the node's `interfaces`).
            let unmapped: Vec<&str> = holders
                .iter()
                .filter(|n| !n.interfaces.contains_key(&vip.interface))
                .map(|n| n.name.as_str())
                .collect();
            if let Some(why) = interface_name_problem(&vip.interface)
                && !unmapped.is_empty()
            {
                let on = if unmapped.len() == holders.len() {
                    String::new()
                } else {
                    let names: Vec<String> = unmapped.iter().map(|n| format!("\"{n}\"")).collect();
                    let nodes = if names.len() == 1 { "node" } else { "nodes" };
                    format!(" (on {nodes} {})", names.join(", "))
                };
                self.problem(format!("{prefix}.interface"), format!("{why}{on}"));
            }
            for node in holders {
                let real = node.interface(&vip.interface);
                if interface_name_problem(real).is_some() {
                    continue;
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

    /// `[health]`; the gateways must not be a VIP or a node (`pinged_self`).
    fn health(
        &mut self,
        raw: RawHealth,
        (nodes, links): (&[Node], &[String]),
        vips: &[Vip],
    ) -> Health {
        let mut gateways = Vec::new();
        for (i, text) in raw.gateways.unwrap_or_default().iter().enumerate() {
            let key = format!("health.gateways[{i}]");
            match ping_target(text) {
                // Each gateway is a check named after it, and check names are unique.
                Ok(addr) if gateways.contains(&addr) => {
                    self.problem(key, format!("{addr} is listed twice"))
                }
                Ok(addr) => match pinged_self(addr, vips, nodes, links) {
                    Some(why) => self.problem(key, why),
                    None => gateways.push(addr),
                },
                Err(message) => self.problem(key, message),
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
            self.program(&format!("hooks.{name}"), &path, "");
            Some(path)
        };
        let start = hook("start", raw.start);
        let stop = hook("stop", raw.stop);
        let fault = hook("fault", raw.fault);
        let standby = hook("standby", raw.standby);
        let timeout = self.duration(
            "hooks.timeout",
            raw.timeout.as_deref(),
            Duration::from_secs(60),
        );
        if timeout.is_zero() {
            self.problem("hooks.timeout", "must be positive");
        }
        let start_failure = match raw.start_failure.as_deref() {
            None | Some("release") => StartFailure::Release,
            Some("ignore") => StartFailure::Ignore,
            Some(other) => {
                self.problem(
                    "hooks.start_failure",
                    format!("\"{other}\" is not one of \"release\", \"ignore\""),
                );
                StartFailure::Release
            }
        };
        let on_adopt = self.on_adopt(raw.on_adopt.as_deref());
        let run_as = self.run_as(raw.user.as_deref(), raw.group.as_deref());
        Hooks {
            start,
            stop,
            fault,
            standby,
            timeout,
            start_failure,
            on_adopt,
            run_as,
        }
    }

    /// `[hooks] user` and `group`, looked up now: an unknown name is an error here
    /// rather than a hook that cannot start when it is needed.
    fn run_as(&mut self, user: Option<&str>, group: Option<&str>) -> Option<RunAs> {
        let Some(name) = user else {
            if group.is_some() {
                self.problem(
                    "hooks.group",
                    "needs hooks.user: the group goes with the user hooks run as",
                );
            }
            return None;
        };
        let found = match name.parse::<u32>() {
            Ok(uid) => User::from_uid(Uid::from_raw(uid)),
            Err(_) => User::from_name(name),
        };
        let user = match found {
            Ok(Some(user)) => user,
            Ok(None) => {
                self.problem(
                    "hooks.user",
                    format!("there is no user \"{name}\" on this host (getent passwd {name})"),
                );
                return None;
            }
            Err(err) => {
                self.problem(
                    "hooks.user",
                    format!("cannot look up user \"{name}\": {err}"),
                );
                return None;
            }
        };
        let gid = match group {
            None => user.gid,
            Some(group) => {
                let found = match group.parse::<u32>() {
                    Ok(gid) => Group::from_gid(Gid::from_raw(gid)),
                    Err(_) => Group::from_name(group),
                };
                match found {
                    Ok(Some(group)) => group.gid,
                    Ok(None) => {
                        self.problem(
                            "hooks.group",
                            format!(
                                "there is no group \"{group}\" on this host (getent group {group})"
                            ),
                        );
                        return None;
                    }
                    Err(err) => {
                        self.problem(
                            "hooks.group",
                            format!("cannot look up group \"{group}\": {err}"),
                        );
                        return None;
                    }
                }
            }
        };
        let groups = CString::new(user.name.as_str())
            .map_err(|err| err.to_string())
            .and_then(|name| getgrouplist(&name, gid).map_err(|err| err.to_string()));
        let groups = match groups {
            Ok(groups) => groups.into_iter().map(Gid::as_raw).collect(),
            Err(err) => {
                self.problem(
                    "hooks.user",
                    format!("cannot list the groups of user \"{name}\": {err}"),
                );
                return None;
            }
        };
        Some(RunAs {
            user: user.name,
            uid: user.uid.as_raw(),
            gid: gid.as_raw(),
            groups,
            home: user.dir,
        })
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

/// Why Linux would refuse `name` as an interface name, if it would (the kernel's
/// `dev_valid_name`).
fn interface_name_problem(name: &str) -> Option<String> {
    if name.is_empty() {
        return Some("an interface name must not be empty".to_string());
    }
    if name.len() > MAX_IFNAME_LEN {
        return Some(format!(
            "\"{name}\" is {} bytes long; Linux allows at most {MAX_IFNAME_LEN} in an \
             interface name",
            name.len()
        ));
    }
    if name == "." || name == ".." {
        return Some(format!("\"{name}\" is not an interface name Linux allows"));
    }
    if name.contains(|c: char| c.is_whitespace() || c.is_control()) {
        return Some(format!(
            "\"{name}\" holds a space or a control character; Linux does not allow one \
             in an interface name"
        ));
    }
    if let Some(c) = name.chars().find(|&c| c == '/' || c == ':') {
        return Some(format!(
            "\"{name}\" holds '{c}', which Linux does not allow in an interface name"
        ));
    }
    None
}

/// An address to ping: a gateway of `[health]` or the target of a ping check.
fn ping_target(text: &str) -> Result<IpAddr, String> {
    match text.parse::<IpAddr>() {
        // The pinger cannot reach one: an IpAddr has no scope (interface) to go by.
        Ok(IpAddr::V6(v6)) if v6.is_unicast_link_local() => {
            Err(format!("{v6} is link-local; use its global or ULA address"))
        }
        Ok(addr) if addr.is_loopback() || addr.is_unspecified() => Err(format!(
            "{addr} is this host itself: every node would ping itself; name a router on \
             the LAN"
        )),
        Ok(addr) => Ok(addr),
        Err(_) => Err(format!("\"{text}\" is not an IP address")),
    }
}

/// Why pinging `address` would tell nothing, if it would: it is a VIP or a node's
/// heartbeat address, so some node would ping itself, and would find itself fit
/// however cut off it is. Meant to be a router on the clients' side.
fn pinged_self(address: IpAddr, vips: &[Vip], nodes: &[Node], links: &[String]) -> Option<String> {
    const FIX: &str = "name a router on the LAN";
    if let Some(i) = vips.iter().position(|v| v.address == address) {
        return Some(format!(
            "{address} is the address of vip[{i}]: the node that holds it would ping \
             itself; {FIX}"
        ));
    }
    nodes.iter().find_map(|node| {
        let (link, _) = node.link_addresses().find(|(_, a)| *a == address)?;
        let link = links.get(link).map_or("", String::as_str);
        Some(format!(
            "{address} is node \"{}\"'s address on link \"{link}\": that node would ping \
             itself; {FIX}",
            node.name
        ))
    })
}

/// Why no node can hold `address` as a VIP, with `prefix_len`, if none can: it
/// names no one host (unspecified, loopback, multicast, broadcast), or it is the
/// network or broadcast address of its own IPv4 prefix.
fn not_holdable(address: IpAddr, prefix_len: u8) -> Option<String> {
    let what = if address.is_unspecified() {
        "the unspecified address"
    } else if address.is_loopback() {
        "a loopback address"
    } else if address.is_multicast() {
        "a multicast address"
    } else if address == IpAddr::V4(std::net::Ipv4Addr::BROADCAST) {
        "the broadcast address"
    } else {
        ""
    };
    if !what.is_empty() {
        return Some(format!(
            "{address} is {what}, which no node can hold for its clients"
        ));
    }
    // /31 and /32 have no network or broadcast address (RFC 3021).
    let IpAddr::V4(v4) = address else {
        return None;
    };
    if prefix_len > 30 {
        return None;
    }
    let host_bits = u32::MAX >> prefix_len;
    let host = u32::from(v4) & host_bits;
    let network = std::net::Ipv4Addr::from(u32::from(v4) & !host_bits);
    let role = if host == 0 {
        "network"
    } else if host == host_bits {
        "broadcast"
    } else {
        return None;
    };
    Some(format!(
        "{address} is the {role} address of {network}/{prefix_len}; a VIP is one of its \
         hosts"
    ))
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

/// Reads the shared key from `file`, opened and checked (`files`) at `path`.
fn read_key(mut file: fs::File, path: &Path) -> Result<Key, String> {
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)
        .map_err(|err| format!("{}: {err}", path.display()))?;
    let trimmed = bytes.trim_ascii();
    if trimmed.len() < MIN_KEY_LEN {
        return Err(format!(
            "{} holds {} bytes; at least {MIN_KEY_LEN} are required; create one with: {}",
            path.display(),
            trimmed.len(),
            make_key(path)
        ));
    }
    Ok(Key::new(trimmed.to_vec()))
}

/// The shell command that writes a new key to `path`, readable by its owner alone.
fn make_key(path: &Path) -> String {
    format!(
        "(umask 077; head -c 32 /dev/urandom | base64 > {})",
        path.display()
    )
}

#[cfg(test)]
mod tests {
    use crate::config::Config;
    use crate::config::tests::{dir_with_key, good, keys, parse};
    use crate::scratch::Scratch;

    #[test]
    fn missing_required_keys_are_each_reported() {
        let problems = parse("[cluster]\nkey_file = \"authkey\"\n").unwrap_err();
        let keys = keys(&problems);
        assert!(keys.contains(&"cluster.name"), "{problems:#?}");
        assert!(keys.contains(&"link"), "{problems:#?}");
        assert!(keys.contains(&"node"), "{problems:#?}");
    }

    #[test]
    fn a_key_of_the_wrong_type_is_not_also_missing() {
        let text = good().set("node[0].priority", "\"high\"").to_string();
        let problems = parse(&text).unwrap_err();
        assert_eq!(keys(&problems), ["node[0].priority"], "{problems:#?}");
    }

    #[test]
    fn what_follows_from_a_key_of_the_wrong_type_is_not_reported() {
        for (key, value) in [
            ("node[0].name", "5"),
            ("link[0].name", "5"),
            ("node[1].addresses", "5"),
            (
                "node[1].addresses",
                r#"{ crossover = "198.19.0.2", lan = 12 }"#,
            ),
            ("vip[0].address", "10"),
            ("health.gateways", "[1]"),
        ] {
            let problems = parse(&good().set(key, value).to_string()).unwrap_err();
            assert_eq!(problems.len(), 1, "{key} = {value}: {problems:#?}");
            assert!(
                problems[0].message.starts_with("wrong type"),
                "{key} = {value}: {problems:#?}"
            );
        }
        for table in ["cluster", "link", "node"] {
            let text = format!("{table} = 5\n{}", good().remove(table));
            let problems = parse(&text).unwrap_err();
            let keys = keys(&problems);
            assert!(
                keys.contains(&table) && !keys.iter().any(|k| *k != table && k.starts_with(table)),
                "{table}: {problems:#?}"
            );
            assert_eq!(
                problems.iter().filter(|p| p.key == table).count(),
                1,
                "{table}: {problems:#?}"
            );
        }
        // A missing name is missing, and not also too short.
        let problems = parse(&good().remove("node[0].name").to_string()).unwrap_err();
        assert_eq!(keys(&problems), ["node[0].name"], "{problems:#?}");
    }

    #[test]
    fn problems_come_in_file_order() {
        let text = good()
            .set("events.keep", -1)
            .set("timing.interval", 200)
            .set("announce.count", 0)
            .set("cluster.failback", "sometimes")
            .to_string();
        let problems = parse(&text).unwrap_err();
        let lines: Vec<usize> = problems.iter().filter_map(|p| p.line).collect();
        assert_eq!(lines.len(), 4, "{problems:#?}");
        assert!(lines.is_sorted(), "{problems:#?}");
    }

    #[test]
    fn an_interface_name_is_refused_once_with_the_reason() {
        let text = good()
            .set(
                "node[1].interfaces",
                r#"{ eth0 = "enp1s0-very-long-name" }"#,
            )
            .to_string();
        let problems = parse(&text).unwrap_err();
        assert_eq!(
            keys(&problems),
            ["node[1].interfaces.eth0"],
            "{problems:#?}"
        );
        assert!(
            problems[0]
                .message
                .ends_with("is 21 bytes long; Linux allows at most 15 in an interface name"),
            "{}",
            problems[0]
        );
        // Named once however many nodes use it, with the nodes when not all do.
        let text = good()
            .set("vip[0].interface", "eth/0")
            .remove("vip[0].label");
        let problems = parse(&text.clone().to_string()).unwrap_err();
        assert_eq!(keys(&problems), ["vip[0].interface"], "{problems:#?}");
        assert!(!problems[0].message.contains("node"), "{}", problems[0]);
        let text = text
            .set("node[0].interfaces", r#"{ "eth/0" = "eth0" }"#)
            .to_string();
        let problems = parse(&text).unwrap_err();
        assert_eq!(keys(&problems), ["vip[0].interface"], "{problems:#?}");
        assert!(
            problems[0].message.ends_with("(on node \"beta\")"),
            "{}",
            problems[0]
        );
    }

    #[test]
    fn a_link_of_two_families_is_reported_at_the_odd_address() {
        let text = good()
            .set(
                "node[1].addresses",
                r#"{ crossover = "fd00::2", lan = "198.18.0.12" }"#,
            )
            .to_string();
        let problems = parse(&text).unwrap_err();
        assert_eq!(
            keys(&problems),
            ["node[1].addresses.crossover"],
            "{problems:#?}"
        );
        assert_eq!(
            problems[0].message,
            "fd00::2 is an IPv6 address, but node \"alpha\" has an IPv4 address on link \
             \"crossover\" (198.19.0.1); all addresses on a link must be of one family"
        );
    }

    #[test]
    fn a_gateway_is_neither_a_vip_nor_a_node() {
        for (gateway, expected) in [
            ("198.18.0.10", "198.18.0.10 is the address of vip[0]"),
            ("2001:db8::10", "2001:db8::10 is the address of vip[1]"),
            (
                "198.19.0.1",
                "198.19.0.1 is node \"alpha\"'s address on link \"crossover\"",
            ),
        ] {
            let text = good()
                .set(
                    "health.gateways",
                    format!("[\"198.18.0.1\", \"{gateway}\"]"),
                )
                .to_string();
            let problems = parse(&text).unwrap_err();
            assert_eq!(keys(&problems), ["health.gateways[1]"], "{problems:#?}");
            assert!(problems[0].message.starts_with(expected), "{}", problems[0]);
        }
    }

    #[test]
    fn a_vip_is_an_address_a_node_can_hold() {
        for (vip, expected) in [
            ("0.0.0.0/0", "0.0.0.0 is the unspecified address"),
            ("127.0.0.2/8", "127.0.0.2 is a loopback address"),
            ("224.0.0.18/24", "224.0.0.18 is a multicast address"),
            (
                "255.255.255.255/32",
                "255.255.255.255 is the broadcast address",
            ),
            ("::/64", ":: is the unspecified address"),
            (
                "198.18.0.0/24",
                "198.18.0.0 is the network address of 198.18.0.0/24",
            ),
            (
                "198.18.0.255/24",
                "198.18.0.255 is the broadcast address of 198.18.0.0/24",
            ),
            (
                "198.18.0.15/29",
                "198.18.0.15 is the broadcast address of 198.18.0.8/29",
            ),
        ] {
            let text = good()
                .set("vip[0].address", vip)
                .remove("vip[0].label")
                .to_string();
            let problems = parse(&text).unwrap_err();
            assert_eq!(keys(&problems), ["vip[0].address"], "{vip}: {problems:#?}");
            assert!(problems[0].message.starts_with(expected), "{}", problems[0]);
        }
        for vip in [
            "198.18.0.10/32",
            "198.18.0.2/31",
            "198.18.0.3/31",
            "198.18.0.254/24",
        ] {
            let text = good().set("vip[0].address", vip).to_string();
            parse(&text).unwrap_or_else(|p| panic!("{vip}: {p:#?}"));
        }
        for gateway in ["127.0.0.1", "::1", "0.0.0.0"] {
            let text = good()
                .set("health.gateways", format!("[\"{gateway}\"]"))
                .to_string();
            let problems = parse(&text).unwrap_err();
            assert_eq!(keys(&problems), ["health.gateways[0]"], "{problems:#?}");
            assert!(
                problems[0].message.contains("is this host itself"),
                "{}",
                problems[0]
            );
        }
    }

    #[test]
    fn addresses_must_name_declared_links() {
        let text = good()
            .set(
                "node[0].addresses",
                r#"{ crossover = "198.19.0.1", wan = "198.18.0.11" }"#,
            )
            .to_string();
        let problems = parse(&text).unwrap_err();
        let keys = keys(&problems);
        assert!(keys.contains(&"node[0].addresses.wan"), "{problems:#?}");
        assert!(keys.contains(&"node[0].addresses"), "{problems:#?}");
    }

    #[test]
    fn timing_relations_are_checked() {
        let text = good()
            .set("timing.interval", "5ms")
            .set("timing.init_dead", "100ms")
            .to_string();
        let problems = parse(&text).unwrap_err();
        let keys = keys(&problems);
        assert!(keys.contains(&"timing.interval"), "{problems:#?}");
        assert!(keys.contains(&"timing.init_dead"), "{problems:#?}");
    }

    /// A node named twice says where the first one is, as a table declared twice
    /// does.
    #[test]
    fn a_node_declared_twice_names_the_first_line() {
        let text = good().set("node[1].name", "\"alpha\"").to_string();
        let first = 1 + text
            .lines()
            .position(|l| l.trim() == "name = \"alpha\"")
            .expect("alpha's name in the sample");
        let problems = parse(&text).unwrap_err();
        let twice: Vec<&str> = problems
            .iter()
            .filter(|p| p.key == "node[1].name")
            .map(|p| p.message.as_str())
            .collect();
        assert_eq!(
            twice,
            [format!(
                "node \"alpha\" is declared twice (first on line {first})"
            )]
        );
    }

    /// A key left out takes its default, which a key set alone can leave out of
    /// step: the message says which value is the default and which key to set.
    #[test]
    fn a_default_out_of_step_with_a_set_timer_is_named_as_such() {
        let text = good()
            .remove("timing.warn")
            .remove("timing.init_dead")
            .set("timing.dead", "10s")
            .to_string();
        let problems = parse(&text).unwrap_err();
        let messages: Vec<(&str, &str)> = problems
            .iter()
            .map(|p| (p.key.as_str(), p.message.as_str()))
            .collect();
        assert_eq!(
            messages,
            [(
                "timing.init_dead",
                "3s (the default) must be at least timing.dead (10s); set timing.init_dead"
            )]
        );
        let text = good()
            .remove("timing.warn")
            .set("timing.dead", "500ms")
            .to_string();
        let problems = parse(&text).unwrap_err();
        assert_eq!(
            problems[0].message,
            "600ms (the default) must lie between timing.interval (200ms) and timing.dead \
             (500ms); set timing.warn"
        );
    }

    /// At most 10 s; never faster than `interval` (a shorter value means the
    /// interval); the default, 1 s, unless set.
    #[test]
    fn standby_interval_is_bounded_and_never_faster_than_interval() {
        let problems = parse(&good().set("timing.standby_interval", "11s").to_string());
        let problems = problems.unwrap_err();
        assert_eq!(
            keys(&problems),
            vec!["timing.standby_interval"],
            "{problems:#?}"
        );
        let short = good()
            .set("timing.interval", "200ms")
            .set("timing.standby_interval", "50ms");
        let config = parse(&short.to_string()).unwrap();
        assert_eq!(
            config.timing.standby_interval,
            std::time::Duration::from_millis(200)
        );
        let config = parse(&good().to_string()).unwrap();
        assert_eq!(
            config.timing.standby_interval,
            std::time::Duration::from_secs(1)
        );
        // Set otherwise, it is part of the fingerprint; left at the default, not.
        let set = parse(&good().set("timing.standby_interval", "2s").to_string()).unwrap();
        assert_ne!(set.fingerprint(), config.fingerprint());
        let same = parse(&good().set("timing.standby_interval", "1s").to_string()).unwrap();
        assert_eq!(same.fingerprint(), config.fingerprint());
    }

    #[test]
    fn key_file_mode_and_length_are_checked() {
        let good = good().to_string();
        let dir = dir_with_key(0o644, "0123456789abcdef0123456789abcdef");
        let problems = Config::parse(&good, dir.path()).unwrap_err();
        assert_eq!(keys(&problems), ["cluster.key_file"]);
        assert!(problems[0].message.contains("0644"), "{}", problems[0]);

        let dir = dir_with_key(0o600, "short");
        let problems = Config::parse(&good, dir.path()).unwrap_err();
        assert!(
            problems[0].message.contains("at least 16"),
            "{}",
            problems[0]
        );

        let dir = Scratch::new("checks");
        let problems = Config::parse(&good, dir.path()).unwrap_err();
        assert_eq!(keys(&problems), ["cluster.key_file"]);
        // A missing key says how to make one, as a short one does.
        assert!(
            problems[0]
                .message
                .contains("create it on one node with: (umask 077; head -c 32 /dev/urandom"),
            "{}",
            problems[0]
        );
    }

    const WITNESS: &str = "[[node]]\nname = \"witness\"\nwitness = true\n\
                           addresses = { lan = \"198.18.0.13\" }";

    #[test]
    fn a_witness_joins_the_links_it_is_on_and_holds_nothing() {
        let text = good().append(WITNESS).to_string();
        let config = parse(&text).expect("a witness on the LAN only is valid");
        let witness = &config.nodes[2];
        assert!(witness.witness && !config.nodes[0].witness);
        assert_eq!(witness.addresses[0], None, "not on the crossover");
        assert_eq!(witness.addresses[1], Some("198.18.0.13".parse().unwrap()));
        assert_eq!(config.voters(), 3);
        assert!(config.majority_rule());
        assert!(config.checks_for(2).is_empty(), "a witness checks nothing");
        let two = parse(&good().to_string()).unwrap();
        assert!(!two.majority_rule());
        assert_ne!(two.fingerprint(), config.fingerprint());
    }

    #[test]
    fn a_witness_needs_an_address_and_no_priority_or_interfaces() {
        let text = good()
            .append(
                "[[node]]\nname = \"witness\"\nwitness = true\npriority = 5\n\
                 addresses = {}\ninterfaces = { eth0 = \"ens3\" }",
            )
            .to_string();
        let problems = parse(&text).unwrap_err();
        let keys = keys(&problems);
        assert!(keys.contains(&"node[2].priority"), "{problems:#?}");
        assert!(keys.contains(&"node[2].interfaces"), "{problems:#?}");
        for addresses in ["{ lan = \"x\" }", "{}"] {
            let text = good()
                .append(&format!(
                    "[[node]]\nname = \"witness\"\nwitness = true\naddresses = {addresses}"
                ))
                .to_string();
            let problems = parse(&text).unwrap_err();
            assert!(
                problems
                    .iter()
                    .any(|p| p.message.contains("at least one link")),
                "{addresses}: {problems:#?}"
            );
        }
    }

    #[test]
    fn two_nodes_that_may_hold_the_vips_are_required_besides_witnesses() {
        let text = good()
            .set("node[1].witness", true)
            .remove("node[1].priority");
        let text = text.remove("node[1].interfaces").to_string();
        let problems = parse(&text).unwrap_err();
        assert!(
            problems
                .iter()
                .any(|p| p.key == "node" && p.message.contains("not witnesses")),
            "{problems:#?}"
        );
    }

    #[test]
    fn three_voters_need_dead_of_four_intervals() {
        let text = good()
            .set("timing.dead", "700ms")
            .set("timing.warn", "600ms")
            .append(WITNESS)
            .to_string();
        let problems = parse(&text).unwrap_err();
        assert_eq!(keys(&problems), ["timing.dead"], "{problems:#?}");
        assert!(
            problems[0].message.contains("four times"),
            "{}",
            problems[0]
        );
        // The same timing is fine for two nodes.
        let two = good()
            .set("timing.dead", "700ms")
            .set("timing.warn", "600ms")
            .to_string();
        parse(&two).expect("two nodes need only twice the interval");
    }

    #[test]
    fn vip_problems() {
        let text = good()
            .set("vip[0].address", "198.18.0.11")
            .set("vip[0].label", "bond0:vip")
            .to_string();
        let problems = parse(&text).unwrap_err();
        assert_eq!(keys(&problems), ["vip[0].address"], "{problems:#?}");

        let text = good().set("vip[0].label", "bond0:vip").to_string();
        let problems = parse(&text).unwrap_err();
        assert_eq!(keys(&problems), ["vip[0].label", "vip[0].label"]);
    }

    #[test]
    fn hooks_user_and_group_are_resolved_to_ids_when_the_file_is_read() {
        let config = parse(&good().append("[hooks]\nuser = \"root\"").to_string()).unwrap();
        let run_as = config.hooks.run_as.expect("resolved");
        assert_eq!(
            (run_as.user.as_str(), run_as.uid, run_as.gid),
            ("root", 0, 0)
        );
        assert!(run_as.groups.contains(&0), "{:?}", run_as.groups);
        let config = parse(
            &good()
                .append("[hooks]\nuser = \"0\"\ngroup = \"0\"")
                .to_string(),
        )
        .unwrap();
        assert_eq!(
            config.hooks.run_as.map(|r| r.user),
            Some("root".to_string())
        );
        let config = parse(&good().to_string()).unwrap();
        assert_eq!(config.hooks.run_as, None);
    }

    #[test]
    fn an_unknown_hooks_user_or_group_is_named() {
        let problems = parse(
            &good()
                .append("[hooks]\nuser = \"no-such-user-here\"")
                .to_string(),
        )
        .unwrap_err();
        assert_eq!(keys(&problems), ["hooks.user"]);
        assert!(
            problems[0].message.contains("\"no-such-user-here\""),
            "{}",
            problems[0]
        );
        let problems = parse(
            &good()
                .append("[hooks]\nuser = \"root\"\ngroup = \"no-such-group-here\"")
                .to_string(),
        )
        .unwrap_err();
        assert_eq!(keys(&problems), ["hooks.group"]);
        assert!(
            problems[0].message.contains("\"no-such-group-here\""),
            "{}",
            problems[0]
        );
        let problems = parse(&good().append("[hooks]\ngroup = \"root\"").to_string()).unwrap_err();
        assert_eq!(keys(&problems), ["hooks.group"]);
    }
}
