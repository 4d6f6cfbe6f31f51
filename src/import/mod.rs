//! `failoverd import`: a Heartbeat or keepalived configuration in, a failoverd
//! configuration out.
//!
//! The translators ([`heartbeat`], [`keepalived`]) are pure: text in, a [`Translation`]
//! out, with no file, clock or randomness. Both fill one [`Plan`], the part of a
//! failoverd configuration that an import can say something about, which this module
//! renders as commented TOML. What the input does not tell (a peer's address when
//! Heartbeat broadcast, a peer's priority in keepalived) comes from [`Options`] or is
//! written as a value marked [`FILL_IN`] that `failoverd check` refuses, quoting it.
//! Every construct that is not carried over becomes a [`Note`] with its file and line.
//! [`output`] writes the result into a directory and [`command`] is the command line's
//! side; they alone touch files.

pub mod command;
pub mod heartbeat;
pub mod keepalived;
pub mod output;

use std::fmt;
use std::fmt::Write as _;
use std::time::Duration;

use crate::duration::format_duration;

/// Starts every value the input could not tell; `failoverd check` quotes it back in
/// its error, so the text after it says what belongs there.
pub const FILL_IN: &str = "FILL-IN";
/// The key file's name, beside the configuration, unless `--key-file` names another.
pub const KEY_FILE: &str = "authkey";
/// The configuration's name in an output directory.
pub const CONFIG_FILE: &str = "failoverd.toml";
/// The directory of the hooks, beside the configuration.
pub const HOOK_DIR: &str = "hooks";

/// What an import produces.
#[derive(Debug, Clone, PartialEq)]
pub struct Translation {
    /// The configuration, TOML.
    pub config: String,
    /// What to do about the shared key.
    pub key: KeySource,
    /// Hooks, by file name (under [`HOOK_DIR`]) and script text.
    pub hooks: Vec<Hook>,
    /// Everything not translated as it was, and what to do instead.
    pub notes: Vec<Note>,
}

/// Where the shared key comes from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum KeySource {
    /// The old secret is long enough to serve: write it as [`KEY_FILE`].
    Secret(String),
    /// No usable secret: write a new random one as [`KEY_FILE`], the same on every node.
    Generate,
    /// `--key-file` named an existing key; nothing to write.
    External,
}

/// One hook script.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hook {
    /// File name under [`HOOK_DIR`].
    pub name: String,
    /// The script, bash.
    pub text: String,
}

/// A construct that was not carried over as it was.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Note {
    /// The input file's name, as the user knows it (`ha.cf`, `keepalived.conf`).
    pub file: String,
    /// 1-based line, when the note is about one.
    pub line: Option<usize>,
    /// The construct, as written.
    pub construct: String,
    /// What became of it and what to do instead.
    pub advice: String,
}

impl fmt::Display for Note {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self.line {
            Some(line) => write!(f, "{}:{line}: ", self.file)?,
            None => write!(f, "{}: ", self.file)?,
        }
        write!(f, "{}: {}", self.construct, self.advice)
    }
}

/// Why an input cannot be imported at all.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum ImportError {
    /// Nothing to make a cluster of.
    #[error("{file}: {what}")]
    Incomplete { file: String, what: String },
    /// A line that cannot be read.
    #[error("{file}:{line}: {what}")]
    Syntax {
        file: String,
        line: usize,
        what: String,
    },
    /// A command-line value that does not fit the input.
    #[error("{flag} {value}: {what}")]
    Flag {
        flag: &'static str,
        value: String,
        what: String,
    },
}

/// What the command line adds to the input.
#[derive(Debug, Clone, Default)]
pub struct Options {
    /// `--cluster`: the cluster name.
    pub cluster: Option<String>,
    /// `--address NODE[:LINK]=ADDRESS`, repeatable.
    pub addresses: Vec<AddressFlag>,
    /// `--priority NODE=N`, repeatable.
    pub priorities: Vec<(String, u16)>,
    /// `--vip ADDRESS/PREFIX/INTERFACE`, repeatable: completes a VIP the input gives
    /// without prefix or interface.
    pub vips: Vec<String>,
    /// `--key-file PATH`: an existing key to name instead of writing one.
    pub key_file: Option<String>,
    /// keepalived: `--instance NAME`, the `vrrp_instance` to translate.
    pub instance: Option<String>,
    /// `--this-node NAME`, the name of the node the file is from.
    pub this_node: Option<String>,
    /// keepalived: `--peer NAME`, repeatable, the names of the `unicast_peer`s in order.
    pub peers: Vec<String>,
}

/// One `--address`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AddressFlag {
    pub node: String,
    /// None: the node's one link.
    pub link: Option<String>,
    pub address: String,
}

impl std::str::FromStr for AddressFlag {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let Some((left, address)) = text.split_once('=') else {
            return Err(format!(
                "{text}: expected NODE=ADDRESS or NODE:LINK=ADDRESS"
            ));
        };
        let (node, link) = match left.split_once(':') {
            Some((node, link)) => (node, Some(link.to_string())),
            None => (left, None),
        };
        if node.is_empty() || address.is_empty() || link.as_deref() == Some("") {
            return Err(format!(
                "{text}: expected NODE=ADDRESS or NODE:LINK=ADDRESS"
            ));
        }
        if address.parse::<std::net::IpAddr>().is_err() {
            return Err(format!("{address} is not an IP address"));
        }
        Ok(AddressFlag {
            node: node.to_string(),
            link,
            address: address.to_string(),
        })
    }
}

/// `--priority NODE=N`.
pub fn parse_priority(text: &str) -> Result<(String, u16), String> {
    let Some((node, priority)) = text.split_once('=') else {
        return Err(format!("{text}: expected NODE=PRIORITY"));
    };
    let priority = priority
        .parse()
        .map_err(|_| format!("{priority}: a priority is a number from 0 to 65535"))?;
    Ok((node.to_string(), priority))
}

/// A value the input gave, or what belongs in its place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Known<T> {
    Value(T),
    /// What to fill in and how; rendered as a string starting with [`FILL_IN`].
    Missing(String),
}

/// The part of a failoverd configuration an import fills; rendered by [`Plan::render`].
#[derive(Debug, Clone, Default)]
pub struct Plan {
    /// First comment lines: where this came from.
    pub header: Vec<String>,
    pub cluster: String,
    pub key_file: String,
    pub port: Option<u16>,
    /// `"auto"` or `"manual"`, with the reason as a comment.
    pub failback: Option<(String, String)>,
    pub failback_delay: Option<Duration>,
    pub timing: Option<PlanTiming>,
    pub links: Vec<String>,
    pub nodes: Vec<PlanNode>,
    pub vips: Vec<PlanVip>,
    pub gateways: Vec<String>,
    pub checks: Vec<PlanCheck>,
    pub hooks: PlanHooks,
}

#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PlanTiming {
    pub interval: Duration,
    pub warn: Duration,
    pub dead: Duration,
    pub init_dead: Duration,
}

#[derive(Debug, Clone)]
pub struct PlanNode {
    pub name: String,
    pub priority: Known<u16>,
    /// One per link, in link order.
    pub addresses: Vec<Known<String>>,
    /// Why this priority, as a comment.
    pub comment: Option<String>,
}

#[derive(Debug, Clone)]
pub struct PlanVip {
    /// `address/prefix`, or what to fill in.
    pub address: Known<String>,
    pub interface: Known<String>,
    pub label: Option<String>,
    /// Where it came from, as a comment.
    pub source: String,
}

#[derive(Debug, Clone)]
pub struct PlanCheck {
    pub name: String,
    pub source: String,
    pub kind: PlanProbe,
    pub interval: Option<Duration>,
    pub timeout: Option<Duration>,
    pub rise: Option<u32>,
    pub fall: Option<u32>,
    /// None: fatal.
    pub weight: Option<u32>,
}

#[derive(Debug, Clone)]
pub enum PlanProbe {
    Exec(Vec<String>),
    Link(String),
}

#[derive(Debug, Clone, Default)]
pub struct PlanHooks {
    /// Hook paths, relative to the configuration.
    pub start: Option<String>,
    pub stop: Option<String>,
    pub fault: Option<String>,
    pub standby: Option<String>,
    pub start_failure_ignore: bool,
}

impl Plan {
    /// The configuration file, with comments saying where each part came from.
    pub fn render(&self) -> String {
        let mut out = String::new();
        for line in &self.header {
            let _ = writeln!(out, "# {line}");
        }
        out.push_str(
            "# Install it in /etc/failoverd on every node, with the key and hooks/ beside it\n\
             # (the paths below are relative to this file), and check it there:\n\
             #   failoverd check --config /etc/failoverd/failoverd.toml\n",
        );
        let _ = writeln!(
            out,
            "# Values starting with \"{FILL_IN}\" could not be read from the input: \
             `failoverd check`\n# refuses them until they are replaced.\n"
        );
        out.push_str("[cluster]\n");
        let _ = writeln!(out, "name = {}", quote(&self.cluster));
        let _ = writeln!(out, "key_file = {}", quote(&self.key_file));
        if let Some(port) = self.port {
            let _ = writeln!(out, "port = {port}");
        }
        if let Some((failback, why)) = &self.failback {
            let _ = writeln!(out, "# {why}");
            let _ = writeln!(out, "failback = {}", quote(failback));
        }
        if let Some(delay) = self.failback_delay {
            let _ = writeln!(out, "failback_delay = {}", quote(&format_duration(delay)));
        }
        if let Some(t) = &self.timing {
            out.push_str("\n[timing]\n");
            for (key, value) in [
                ("interval", t.interval),
                ("warn", t.warn),
                ("dead", t.dead),
                ("init_dead", t.init_dead),
            ] {
                let _ = writeln!(out, "{key} = {}", quote(&format_duration(value)));
            }
        }
        for link in &self.links {
            let _ = writeln!(out, "\n[[link]]\nname = {}", quote(link));
        }
        for node in &self.nodes {
            out.push_str("\n[[node]]\n");
            let _ = writeln!(out, "name = {}", quote(&node.name));
            if let Some(comment) = &node.comment {
                let _ = writeln!(out, "# {comment}");
            }
            let _ = writeln!(
                out,
                "priority = {}",
                known(&node.priority, |p| p.to_string())
            );
            let pairs: Vec<String> = self
                .links
                .iter()
                .zip(&node.addresses)
                .map(|(link, address)| {
                    format!("{} = {}", bare_key(link), known(address, |a| quote(a)))
                })
                .collect();
            let _ = writeln!(out, "addresses = {{ {} }}", pairs.join(", "));
        }
        for vip in &self.vips {
            out.push_str("\n[[vip]]\n");
            let _ = writeln!(out, "# {}", vip.source);
            let _ = writeln!(out, "address = {}", known(&vip.address, |a| quote(a)));
            let _ = writeln!(out, "interface = {}", known(&vip.interface, |a| quote(a)));
            if let Some(label) = &vip.label {
                let _ = writeln!(out, "label = {}", quote(label));
            }
        }
        if !self.gateways.is_empty() {
            out.push_str("\n[health]\n");
            let list: Vec<String> = self.gateways.iter().map(|g| quote(g)).collect();
            let _ = writeln!(out, "gateways = [{}]", list.join(", "));
        }
        for check in &self.checks {
            out.push_str("\n[[check]]\n");
            let _ = writeln!(out, "# {}", check.source);
            let _ = writeln!(out, "name = {}", quote(&check.name));
            match &check.kind {
                PlanProbe::Exec(command) => {
                    let words: Vec<String> = command.iter().map(|w| quote(w)).collect();
                    let _ = writeln!(out, "kind = \"exec\"\ncommand = [{}]", words.join(", "));
                }
                PlanProbe::Link(interface) => {
                    let _ = writeln!(out, "kind = \"link\"\ninterface = {}", quote(interface));
                }
            }
            for (key, value) in [("interval", check.interval), ("timeout", check.timeout)] {
                if let Some(value) = value {
                    let _ = writeln!(out, "{key} = {}", quote(&format_duration(value)));
                }
            }
            for (key, value) in [("rise", check.rise), ("fall", check.fall)] {
                if let Some(value) = value {
                    let _ = writeln!(out, "{key} = {value}");
                }
            }
            match check.weight {
                Some(weight) => {
                    let _ = writeln!(out, "weight = {weight}");
                }
                None => out.push_str("fatal = true\n"),
            }
        }
        let h = &self.hooks;
        let hooks = [
            ("start", &h.start),
            ("stop", &h.stop),
            ("fault", &h.fault),
            ("standby", &h.standby),
        ];
        if hooks.iter().any(|(_, path)| path.is_some()) {
            out.push_str("\n[hooks]\n");
            for (name, path) in hooks {
                if let Some(path) = path {
                    let _ = writeln!(out, "{name} = {}", quote(path));
                }
            }
            if h.start_failure_ignore {
                out.push_str(
                    "# keepalived ignores what its notify scripts return; so does this.\n\
                     start_failure = \"ignore\"\n",
                );
            }
        }
        out
    }
}

/// The longest time an import reads: a day. Anything longer is a typo, and the
/// bound keeps the sums made from it (3 × advert_int, 2 × deadtime) from overflowing.
const MAX_SECONDS: f64 = 86_400.0;

/// Seconds as the old files write them (`2`, `0.5`), as a duration; None when not a
/// number from 0 to a day.
fn seconds(value: f64) -> Option<Duration> {
    if !(0.0..=MAX_SECONDS).contains(&value) {
        return None;
    }
    Duration::try_from_secs_f64(value).ok()
}

/// Puts the notes in reading order: file by file, as first met, each by line.
fn sort_notes(notes: &mut [Note]) {
    let mut files: Vec<String> = Vec::new();
    for note in notes.iter() {
        if !files.contains(&note.file) {
            files.push(note.file.clone());
        }
    }
    notes.sort_by_key(|n| (files.iter().position(|f| *f == n.file), n.line));
}

/// How many values of a rendered configuration still wait to be filled in.
pub fn placeholders(config: &str) -> usize {
    config.matches(&format!("\"{FILL_IN}:")).count()
}

/// A TOML basic string.
pub fn quote(text: &str) -> String {
    toml::Value::String(text.to_string()).to_string()
}

/// A TOML key: bare when it can be, quoted otherwise.
fn bare_key(key: &str) -> String {
    let bare = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if bare { key.to_string() } else { quote(key) }
}

fn known<T>(value: &Known<T>, render: impl Fn(&T) -> String) -> String {
    match value {
        Known::Value(v) => render(v),
        Known::Missing(what) => quote(&format!("{FILL_IN}: {what}")),
    }
}

/// A word for a bash script, quoted when it needs to be.
pub fn shell_word(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "/._-+=:,@%".contains(c));
    if plain {
        word.to_string()
    } else {
        format!("'{}'", word.replace('\'', r"'\''"))
    }
}

/// A cluster or node name as failoverd accepts it: no whitespace or control
/// characters, 1 to 64 bytes.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= crate::config::MAX_NAME_LEN
        && !name.chars().any(|c| c.is_whitespace() || c.is_control())
}

/// Addresses for each node on each link: `--address` first, then what the input
/// offers through `known`, else a [`FILL_IN`] that names the flag.
fn resolve_addresses(
    nodes: &[String],
    links: &[String],
    flags: &[AddressFlag],
    known: impl Fn(usize, usize) -> Option<String>,
) -> Result<Vec<Vec<Known<String>>>, ImportError> {
    let mut table: Vec<Vec<Option<String>>> = nodes
        .iter()
        .enumerate()
        .map(|(n, _)| (0..links.len()).map(|l| known(n, l)).collect())
        .collect();
    for flag in flags {
        let value = || format!("{}={}", flag_left(flag), flag.address);
        let Some(n) = nodes.iter().position(|name| *name == flag.node) else {
            return Err(ImportError::Flag {
                flag: "--address",
                value: value(),
                what: format!("no node {} (nodes: {})", flag.node, nodes.join(", ")),
            });
        };
        let l = match &flag.link {
            Some(link) => {
                links
                    .iter()
                    .position(|name| name == link)
                    .ok_or_else(|| ImportError::Flag {
                        flag: "--address",
                        value: value(),
                        what: format!("no link {link} (links: {})", links.join(", ")),
                    })?
            }
            None if links.len() == 1 => 0,
            None => {
                return Err(ImportError::Flag {
                    flag: "--address",
                    value: value(),
                    what: format!(
                        "there are {} links ({}): write NODE:LINK=ADDRESS",
                        links.len(),
                        links.join(", ")
                    ),
                });
            }
        };
        table[n][l] = Some(flag.address.clone());
    }
    Ok(table
        .into_iter()
        .enumerate()
        .map(|(n, row)| {
            row.into_iter()
                .enumerate()
                .map(|(l, address)| match address {
                    Some(address) => Known::Value(address),
                    None => Known::Missing(format!(
                        "{}'s address on {} (pass --address {}:{}=ADDRESS to failoverd import)",
                        nodes[n], links[l], nodes[n], links[l]
                    )),
                })
                .collect()
        })
        .collect())
}

fn flag_left(flag: &AddressFlag) -> String {
    match &flag.link {
        Some(link) => format!("{}:{link}", flag.node),
        None => flag.node.clone(),
    }
}

/// `--vip ADDRESS/PREFIX/INTERFACE` for `address`, if given.
fn vip_flag<'a>(flags: &'a [String], address: &str) -> Option<(&'a str, &'a str)> {
    flags.iter().find_map(|flag| {
        let mut parts = flag.splitn(3, '/');
        let (a, prefix, interface) = (parts.next()?, parts.next()?, parts.next()?);
        (a == address).then_some((prefix, interface))
    })
}

/// Checks that each `--vip` is well formed and names a VIP of the input.
fn check_vip_flags(flags: &[String], addresses: &[String]) -> Result<(), ImportError> {
    for flag in flags {
        let parts: Vec<&str> = flag.splitn(3, '/').collect();
        let well_formed = parts.len() == 3
            && parts[0].parse::<std::net::IpAddr>().is_ok()
            && parts[1].parse::<u8>().is_ok()
            && !parts[2].is_empty();
        if !well_formed {
            return Err(ImportError::Flag {
                flag: "--vip",
                value: flag.clone(),
                what: "expected ADDRESS/PREFIX/INTERFACE, e.g. 192.0.2.10/24/eth0".to_string(),
            });
        }
        if !addresses.iter().any(|a| a == parts[0]) {
            return Err(ImportError::Flag {
                flag: "--vip",
                value: flag.clone(),
                what: format!(
                    "{} is not a VIP of the input (VIPs: {})",
                    parts[0],
                    addresses.join(", ")
                ),
            });
        }
    }
    Ok(())
}

/// A node name from `--priority` that is not a node.
fn check_priority_flags(flags: &[(String, u16)], nodes: &[String]) -> Result<(), ImportError> {
    for (node, priority) in flags {
        if !nodes.contains(node) {
            return Err(ImportError::Flag {
                flag: "--priority",
                value: format!("{node}={priority}"),
                what: format!("no node {node} (nodes: {})", nodes.join(", ")),
            });
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_flag_names_a_node_and_maybe_a_link() {
        let flag: AddressFlag = "osm1=198.18.0.1".parse().unwrap();
        assert_eq!(flag.node, "osm1");
        assert_eq!(flag.link, None);
        let flag: AddressFlag = "osm1:eth1=2001:db8::1".parse().unwrap();
        assert_eq!(flag.link.as_deref(), Some("eth1"));
        assert_eq!(flag.address, "2001:db8::1");
        assert!("osm1".parse::<AddressFlag>().is_err());
        assert!("osm1=nowhere".parse::<AddressFlag>().is_err());
    }

    #[test]
    fn a_missing_value_is_rendered_as_a_marked_string() {
        let plan = Plan {
            cluster: "c".to_string(),
            key_file: KEY_FILE.to_string(),
            links: vec!["eth1".to_string()],
            nodes: vec![PlanNode {
                name: "a".to_string(),
                priority: Known::Missing("a's priority".to_string()),
                addresses: vec![Known::Missing("a's address".to_string())],
                comment: None,
            }],
            ..Plan::default()
        };
        let text = plan.render();
        assert!(
            text.contains("priority = \"FILL-IN: a's priority\""),
            "{text}"
        );
        assert!(
            text.contains("addresses = { eth1 = \"FILL-IN: a's address\" }"),
            "{text}"
        );
        let parsed: toml::Table = text.parse().unwrap();
        assert!(parsed.contains_key("node"));
    }

    #[test]
    fn notes_are_sorted_by_file_as_first_met_then_by_line() {
        let n = |file: &str, line| Note {
            file: file.to_string(),
            line,
            construct: String::new(),
            advice: String::new(),
        };
        let mut notes = vec![
            n("b", Some(9)),
            n("a", Some(3)),
            n("b", None),
            n("b", Some(2)),
        ];
        sort_notes(&mut notes);
        let order: Vec<(&str, Option<usize>)> =
            notes.iter().map(|n| (n.file.as_str(), n.line)).collect();
        assert_eq!(
            order,
            [("b", None), ("b", Some(2)), ("b", Some(9)), ("a", Some(3))]
        );
    }

    #[test]
    fn shell_words_are_quoted_only_when_needed() {
        assert_eq!(shell_word("/dev/sdb1"), "/dev/sdb1");
        assert_eq!(shell_word("a b"), "'a b'");
        assert_eq!(shell_word("it's"), r"'it'\''s'");
        assert_eq!(shell_word(""), "''");
    }

    #[test]
    fn an_address_flag_for_an_unknown_node_or_link_is_an_error() {
        let nodes = ["a".to_string(), "b".to_string()];
        let links = ["eth0".to_string(), "eth1".to_string()];
        let flag = |text: &str| vec![text.parse::<AddressFlag>().unwrap()];
        let err = resolve_addresses(&nodes, &links, &flag("c:eth0=198.18.0.1"), |_, _| None);
        assert!(matches!(err, Err(ImportError::Flag { .. })), "{err:?}");
        let err = resolve_addresses(&nodes, &links, &flag("a=198.18.0.1"), |_, _| None);
        assert!(
            err.unwrap_err().to_string().contains("NODE:LINK=ADDRESS"),
            "two links need the link named"
        );
        let table =
            resolve_addresses(&nodes, &links, &flag("b:eth1=198.18.0.2"), |_, _| None).unwrap();
        assert_eq!(table[1][1], Known::Value("198.18.0.2".to_string()));
        assert!(matches!(&table[0][0], Known::Missing(m) if m.contains("--address a:eth0=")));
    }

    /// Words both formats use, and the ones that break them, so that generated
    /// files reach deep into the translators rather than failing on the first line.
    const WORDS: &[&str] = &[
        "\n",
        "\n",
        "{",
        "}",
        "\"",
        "#",
        "!",
        "\\",
        "::",
        "/",
        "vrrp_instance",
        "vrrp_script",
        "virtual_ipaddress",
        "unicast_peer",
        "track_script",
        "track_interface",
        "notify",
        "notify_master",
        "script",
        "weight",
        "interval",
        "timeout",
        "fall",
        "rise",
        "priority",
        "advert_int",
        "preempt_delay",
        "nopreempt",
        "interface",
        "dev",
        "label",
        "include",
        "global_defs",
        "node",
        "keepalive",
        "deadtime",
        "initdead",
        "bcast",
        "ucast",
        "mcast",
        "ping",
        "ping_group",
        "auto_failback",
        "auth",
        "sha1",
        "crc",
        "1",
        "2",
        "-5",
        "1e300",
        "NaN",
        "0",
        "500ms",
        "eth0",
        "a",
        "b",
        "10.0.0.1",
        "10.0.0.2/24/eth0",
        "IPaddr::10.0.0.3/255.255.255.0",
        "2001:db8::1/64",
        "httpd",
        "x::y::z",
        "on",
        "legacy",
    ];

    proptest::proptest! {
        #[test]
        fn no_input_makes_a_translator_panic(
            words in proptest::collection::vec(proptest::sample::select(WORDS), 0..80),
            glue in proptest::collection::vec(proptest::sample::select(&[" ", "", "\n"][..]), 80),
        ) {
            let text: String = words
                .iter()
                .zip(&glue)
                .flat_map(|(w, g)| [*w, *g])
                .collect();
            let options = Options::default();
            let _ = keepalived::translate(&text, &options);
            let inputs = heartbeat::Inputs {
                ha_cf: &text,
                haresources: Some(&text),
                authkeys: Some(&text),
            };
            let _ = heartbeat::translate(&inputs, &options);
        }
    }
}
