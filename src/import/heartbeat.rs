//! Heartbeat v1: `ha.cf`, `haresources` and `authkeys` into a failoverd configuration
//! and one start/stop hook.
//!
//! Heartbeat's timers map one to one; its media (`bcast`, `mcast`, `ucast`) become one
//! link per interface, since failoverd sends unicast and must be told each node's
//! address there. The first `haresources` line names the preferred node (the higher
//! priority), its `IPaddr`/`IPaddr2` entries and bare addresses become VIPs, and the
//! other resources go into a hook that runs them as Heartbeat's ResourceManager did.

use std::time::Duration;

use super::{
    HOOK_DIR, Hook, ImportError, KEY_FILE, KeySource, Known, Note, Options, Plan, PlanHooks,
    PlanNode, PlanTiming, PlanVip, Translation, check_priority_flags, check_vip_flags,
    resolve_addresses, seconds, shell_word, sort_notes, valid_name, vip_flag,
};

/// The hook's file name under [`HOOK_DIR`].
pub const HOOK_NAME: &str = "heartbeat-resources.sh";
/// Where Heartbeat looked for resource scripts, in order.
pub const RESOURCE_DIRS: &str = "/etc/ha.d/resource.d /etc/init.d";
/// The preferred node's priority, and the others'.
const PREFERRED: u16 = 200;
const OTHER: u16 = 100;

/// The three files, as text; `haresources` and `authkeys` may be missing.
#[derive(Debug, Clone, Copy)]
pub struct Inputs<'a> {
    pub ha_cf: &'a str,
    pub haresources: Option<&'a str>,
    pub authkeys: Option<&'a str>,
}

/// Translates a Heartbeat v1 configuration.
pub fn translate(inputs: &Inputs<'_>, options: &Options) -> Result<Translation, ImportError> {
    let mut notes = Vec::new();
    let cf = read_ha_cf(inputs.ha_cf, &mut notes)?;
    if cf.nodes.len() < 2 {
        return Err(ImportError::Incomplete {
            file: "ha.cf".to_string(),
            what: format!(
                "{} node(s) named: failoverd needs at least two (`node osm1 osm2`)",
                cf.nodes.len()
            ),
        });
    }
    let group = match inputs.haresources {
        Some(text) => read_haresources(text, &cf.nodes, &mut notes)?,
        None => {
            notes.push(note(
                "haresources",
                None,
                "(missing)",
                "no haresources: no VIPs and no hook; add [[vip]] and [hooks] by hand",
            ));
            None
        }
    };
    let key = read_authkeys(inputs.authkeys, options, &mut notes);

    let mut links = cf.links.clone();
    if links.is_empty() {
        notes.push(note(
            "ha.cf",
            None,
            "(no bcast, mcast or ucast)",
            "no Ethernet link: added one named \"lan\"; name it after its interface and \
             give each node its address there",
        ));
        links.push("lan".to_string());
    }
    let ucast = assign_ucast(&cf, &links, options, &mut notes);
    let addresses = resolve_addresses(&cf.nodes, &links, &options.addresses, |n, l| {
        ucast.get(&(n, l)).cloned()
    })?;
    check_priority_flags(&options.priorities, &cf.nodes)?;
    if let Some(this) = options.this_node.as_ref().filter(|n| !cf.nodes.contains(n)) {
        return Err(ImportError::Flag {
            flag: "--this-node",
            value: this.clone(),
            what: format!("no node {this} (nodes: {})", cf.nodes.join(", ")),
        });
    }
    let vip_addresses: Vec<String> = group
        .iter()
        .flat_map(|g| g.vips.iter().map(|v| v.address.clone()))
        .collect();
    check_vip_flags(&options.vips, &vip_addresses)?;

    let preferred = group.as_ref().map(|g| g.node.as_str());
    let nodes = cf
        .nodes
        .iter()
        .zip(addresses)
        .map(|(name, addresses)| {
            let flag = options.priorities.iter().find(|(n, _)| n == name);
            let (priority, comment) = match (flag, preferred) {
                (Some((_, p)), _) => (*p, "from --priority".to_string()),
                (None, Some(p)) if p == name => (
                    PREFERRED,
                    "the preferred node: it comes first in haresources".to_string(),
                ),
                (None, Some(_)) => (OTHER, "not the preferred node in haresources".to_string()),
                (None, None) => (OTHER, "no haresources: no preferred node".to_string()),
            };
            PlanNode {
                name: name.clone(),
                priority: Known::Value(priority),
                addresses,
                comment: Some(comment),
            }
        })
        .collect();

    let vips = group
        .iter()
        .flat_map(|g| &g.vips)
        .map(|vip| plan_vip(vip, options))
        .collect();
    let mut hooks = Vec::new();
    let mut plan_hooks = PlanHooks::default();
    if let Some(group) = group.as_ref().filter(|g| !g.resources.is_empty()) {
        hooks.push(Hook {
            name: HOOK_NAME.to_string(),
            text: resource_hook(group),
        });
        let path = format!("{HOOK_DIR}/{HOOK_NAME}");
        plan_hooks.start = Some(path.clone());
        plan_hooks.stop = Some(path);
    }

    let cluster = options
        .cluster
        .clone()
        .or_else(|| Some(cf.nodes.join("-")).filter(|n| valid_name(n)))
        .unwrap_or_else(|| "heartbeat".to_string());
    let plan = Plan {
        header: vec![
            "Made by `failoverd import heartbeat` from ha.cf, haresources and authkeys."
                .to_string(),
        ],
        cluster,
        key_file: options.key_file.clone().unwrap_or(KEY_FILE.to_string()),
        port: cf.port,
        failback: cf.failback.clone(),
        failback_delay: None,
        timing: Some(cf.timing()),
        links,
        nodes,
        vips,
        gateways: cf.gateways.clone(),
        checks: Vec::new(),
        hooks: plan_hooks,
    };
    sort_notes(&mut notes);
    Ok(Translation {
        config: plan.render(),
        key,
        hooks,
        notes,
    })
}

/// What ha.cf says that failoverd uses.
#[derive(Debug, Default)]
struct HaCf {
    keepalive: Option<Duration>,
    warntime: Option<Duration>,
    deadtime: Option<Duration>,
    initdead: Option<Duration>,
    port: Option<u16>,
    /// Interface names, in order of first mention.
    links: Vec<String>,
    /// `ucast IF ADDRESS`, with its line.
    ucast: Vec<(String, String, usize)>,
    gateways: Vec<String>,
    failback: Option<(String, String)>,
    nodes: Vec<String>,
}

impl HaCf {
    /// Heartbeat's timers, with its defaults (keepalive 2s, deadtime 30s) for those
    /// not set, and a warn and init_dead derived from them when not given.
    fn timing(&self) -> PlanTiming {
        let interval = self.keepalive.unwrap_or(Duration::from_secs(2));
        let dead = self.deadtime.unwrap_or(Duration::from_secs(30));
        PlanTiming {
            interval,
            warn: self.warntime.unwrap_or((dead / 2).max(interval)),
            dead,
            init_dead: self.initdead.unwrap_or(dead * 2),
        }
    }
}

fn note(file: &str, line: Option<usize>, construct: &str, advice: &str) -> Note {
    Note {
        file: file.to_string(),
        line,
        construct: construct.to_string(),
        advice: advice.to_string(),
    }
}

/// Lines without comments and blank lines, as numbered word lists of one word or more.
fn words(text: &str) -> Vec<(usize, Vec<&str>)> {
    text.lines()
        .enumerate()
        .filter_map(|(i, line)| {
            let words: Vec<&str> = line
                .split_whitespace()
                .take_while(|w| !w.starts_with('#'))
                .collect();
            (!words.is_empty()).then_some((i + 1, words))
        })
        .collect()
}

/// Heartbeat's times: seconds, with an optional fraction, or a `ms`/`us`/`s` suffix.
fn parse_time(text: &str) -> Option<Duration> {
    let (number, scale) = if let Some(n) = text.strip_suffix("ms") {
        (n, 1e-3)
    } else if let Some(n) = text.strip_suffix("us") {
        (n, 1e-6)
    } else if let Some(n) = text.strip_suffix('s') {
        (n, 1.0)
    } else {
        (text, 1.0)
    };
    let value: f64 = number.parse().ok()?;
    seconds(value * scale)
}

fn read_ha_cf(text: &str, notes: &mut Vec<Note>) -> Result<HaCf, ImportError> {
    let mut cf = HaCf::default();
    let syntax = |line, what: String| ImportError::Syntax {
        file: "ha.cf".to_string(),
        line,
        what,
    };
    for (line, words) in words(text) {
        let directive = words[0];
        let args = &words[1..];
        let construct = words.join(" ");
        let mut skip = |advice: &str| notes.push(note("ha.cf", Some(line), &construct, advice));
        let time = |slot: &mut Option<Duration>| -> Result<(), ImportError> {
            let value = args.first().and_then(|a| parse_time(a));
            *slot = Some(value.ok_or_else(|| {
                syntax(
                    line,
                    format!("{directive}: expected a time such as 2 or 500ms"),
                )
            })?);
            Ok(())
        };
        match directive {
            "keepalive" => time(&mut cf.keepalive)?,
            "warntime" => time(&mut cf.warntime)?,
            "deadtime" => time(&mut cf.deadtime)?,
            "initdead" => time(&mut cf.initdead)?,
            "udpport" => {
                let port = args.first().and_then(|p| p.parse::<u16>().ok());
                cf.port = Some(port.filter(|p| *p != 0).ok_or_else(|| {
                    syntax(line, "udpport: expected a port from 1 to 65535".to_string())
                })?);
            }
            "bcast" => {
                for interface in args {
                    add_link(&mut cf.links, interface);
                }
                skip(
                    "each interface is a [[link]]; failoverd sends unicast, so each node needs \
                     its address there (--address NODE:LINK=ADDRESS)",
                );
            }
            "mcast" => {
                let Some(interface) = args.first() else {
                    return Err(syntax(line, "mcast: expected an interface".to_string()));
                };
                add_link(&mut cf.links, interface);
                skip(
                    "the interface is a [[link]]; failoverd sends unicast, not to the group: \
                     give each node its address there (--address NODE:LINK=ADDRESS)",
                );
            }
            "ucast" => {
                let [interface, address] = args else {
                    return Err(syntax(
                        line,
                        "ucast: expected an interface and an address".to_string(),
                    ));
                };
                add_link(&mut cf.links, interface);
                cf.ucast
                    .push((interface.to_string(), address.to_string(), line));
            }
            "serial" | "baud" => skip(
                "failoverd has no serial links: use a crossover Ethernet cable as a second \
                 [[link]] instead",
            ),
            "ping" => cf.gateways.extend(args.iter().map(|a| a.to_string())),
            "ping_group" => {
                cf.gateways
                    .extend(args.iter().skip(1).map(|a| a.to_string()));
                skip(
                    "each address became a gateway in [health]: failoverd counts each lost \
                     gateway on its own, while Heartbeat counted the group as one",
                );
            }
            "auto_failback" | "nice_failback" => {
                let value = args.first().map(|a| a.to_ascii_lowercase());
                let on = matches!(value.as_deref(), Some("on" | "yes" | "true" | "1"));
                let off = matches!(value.as_deref(), Some("off" | "no" | "false" | "0"));
                // nice_failback on is the old spelling of auto_failback off.
                let auto = if directive == "nice_failback" {
                    off
                } else {
                    on
                };
                if value.as_deref() == Some("legacy") {
                    skip(
                        "failoverd has no legacy mode: translated as failback = \"manual\"; \
                         use \"auto\" if the preferred node should take the VIPs back",
                    );
                } else if !on && !off {
                    return Err(syntax(line, format!("{directive}: expected on or off")));
                }
                cf.failback = Some(if auto {
                    (
                        "auto".to_string(),
                        format!(
                            "ha.cf:{line} {construct}: the preferred node takes the VIPs back, \
                             after failback_delay (default 30s) of health"
                        ),
                    )
                } else {
                    (
                        "manual".to_string(),
                        format!("ha.cf:{line} {construct}: the VIPs stay where they are"),
                    )
                });
            }
            "node" => {
                for name in args {
                    if !valid_name(name) {
                        return Err(syntax(line, format!("node {name}: not a usable name")));
                    }
                    if !cf.nodes.iter().any(|n| n == name) {
                        cf.nodes.push(name.to_string());
                    }
                }
            }
            "respawn" if args.iter().any(|a| a.ends_with("ipfail")) => skip(
                "not needed: failoverd pings the gateways itself ([health] gateways) and \
                 hands the VIPs to the node that reaches more of them",
            ),
            "respawn" => skip(
                "failoverd runs no programs beside itself: run it as a systemd service \
                 (Restart=always)",
            ),
            "logfacility" | "logfile" | "debugfile" | "debug" | "use_logd" => skip(
                "failoverd logs to stderr, which systemd puts in the journal; \
                 [events] file keeps a file of events",
            ),
            "crm" | "pacemaker" => skip(
                "failoverd has no cluster resource manager: the resources come from \
                 haresources; a CIB is not read",
            ),
            "watchdog" => skip(
                "the failoverd unit uses systemd's watchdog (WatchdogSec) instead of a \
                 watchdog device",
            ),
            "stonith" | "stonith_host" => skip(
                "set [fencing] command to a program that fences the peer; see \
                 config/fencing/ for IPMI, libvirt and ssh",
            ),
            "apiauth"
            | "hopfudge"
            | "deadping"
            | "realtime"
            | "compression"
            | "traditional_compression"
            | "coredumps"
            | "msgfmt"
            | "conn_logd_time"
            | "autojoin"
            | "uuidfrom"
            | "max_rexmit_delay"
            | "rtprio"
            | "compression_threshold"
            | "cluster" => skip("not needed by failoverd: ignored"),
            _ => skip("not known to failoverd import: ignored; see docs/migrating.md"),
        }
    }
    Ok(cf)
}

fn add_link(links: &mut Vec<String>, interface: &str) {
    if !links.iter().any(|l| l == interface) {
        links.push(interface.to_string());
    }
}

/// The `ucast` addresses that can be given to a node: on a link where every node but
/// one has its address from `--address` or is the node the file is from
/// (`--this-node`), a single `ucast` address left over is that node's. The others are reported, since one ha.cf does not say whose they are.
fn assign_ucast(
    cf: &HaCf,
    links: &[String],
    options: &Options,
    notes: &mut Vec<Note>,
) -> std::collections::BTreeMap<(usize, usize), String> {
    let mut assigned = std::collections::BTreeMap::new();
    for (l, link) in links.iter().enumerate() {
        let flagged = |flag: &&super::AddressFlag| {
            flag.link.as_deref() == Some(link.as_str()) || (flag.link.is_none() && links.len() == 1)
        };
        let flags: Vec<&super::AddressFlag> = options.addresses.iter().filter(flagged).collect();
        let left: Vec<&(String, String, usize)> = cf
            .ucast
            .iter()
            .filter(|(i, a, _)| i == link && !flags.iter().any(|f| f.address == *a))
            .collect();
        // A node's own ha.cf lists the others' addresses: Heartbeat skips its own.
        let this = options.this_node.as_deref();
        let unset: Vec<usize> = (0..cf.nodes.len())
            .filter(|n| !flags.iter().any(|f| f.node == cf.nodes[*n]))
            .filter(|n| Some(cf.nodes[*n].as_str()) != this)
            .collect();
        if let ([(_, address, _)], [n]) = (left.as_slice(), unset.as_slice()) {
            assigned.insert((*n, l), address.clone());
            continue;
        }
        for (interface, address, line) in left {
            notes.push(note(
                "ha.cf",
                Some(*line),
                &format!("ucast {interface} {address}"),
                &format!(
                    "{address} is one node's address on {link}, but ha.cf does not say whose: \
                     pass --address NODE:{link}={address} for that node (and the other \
                     nodes' addresses the same way)"
                ),
            ));
        }
    }
    assigned
}

/// The group of resources failoverd takes over: the first haresources line's.
#[derive(Debug, PartialEq)]
struct Group {
    node: String,
    /// The first line, as written, for the hook's comment.
    source: String,
    vips: Vec<VipSpec>,
    /// Script name and arguments, in start order.
    resources: Vec<(String, Vec<String>)>,
}

/// A VIP as haresources writes it: `address[/prefix[/interface[/broadcast]]]`.
#[derive(Debug, PartialEq)]
struct VipSpec {
    address: String,
    prefix: Option<u8>,
    interface: Option<String>,
    line: usize,
    construct: String,
}

/// haresources lines, joined where one ends in a backslash, with the first line's
/// number.
fn logical_lines(text: &str) -> Vec<(usize, String)> {
    let mut out: Vec<(usize, String)> = Vec::new();
    let mut open: Option<(usize, String)> = None;
    for (i, raw) in text.lines().enumerate() {
        let line = raw.split('#').next().unwrap_or_default();
        let (body, more) = match line.trim_end().strip_suffix('\\') {
            Some(body) => (body, true),
            None => (line, false),
        };
        let (start, mut joined) = open.take().unwrap_or((i + 1, String::new()));
        joined.push(' ');
        joined.push_str(body);
        if more {
            open = Some((start, joined));
        } else if !joined.trim().is_empty() {
            out.push((start, joined.trim().to_string()));
        }
    }
    if let Some((start, joined)) = open.filter(|(_, j)| !j.trim().is_empty()) {
        out.push((start, joined.trim().to_string()));
    }
    out
}

fn read_haresources(
    text: &str,
    nodes: &[String],
    notes: &mut Vec<Note>,
) -> Result<Option<Group>, ImportError> {
    let lines = logical_lines(text);
    let Some((first_line, first)) = lines.first() else {
        notes.push(note(
            "haresources",
            None,
            "(empty)",
            "no resource group: no VIPs and no hook; add [[vip]] and [hooks] by hand",
        ));
        return Ok(None);
    };
    for (line, other) in &lines[1..] {
        notes.push(note(
            "haresources",
            Some(*line),
            other,
            "failoverd moves one group of resources: only the first haresources line is \
             translated; add these resources to the hook and their VIPs as [[vip]] if \
             they belong together, or run a second failoverd cluster for them",
        ));
    }
    let mut words = first.split_whitespace();
    let node = words.next().unwrap_or_default().to_string();
    if !nodes.contains(&node) {
        return Err(ImportError::Syntax {
            file: "haresources".to_string(),
            line: *first_line,
            what: format!(
                "{node} is not a node of ha.cf (nodes: {})",
                nodes.join(", ")
            ),
        });
    }
    let mut group = Group {
        node,
        source: first.clone(),
        vips: Vec::new(),
        resources: Vec::new(),
    };
    for word in words {
        let mut parts = word.split("::");
        let name = parts.next().unwrap_or_default();
        let args: Vec<String> = parts.map(str::to_string).collect();
        let spec = if looks_like_address(name) {
            Some(name)
        } else if name == "IPaddr" || name == "IPaddr2" {
            args.first().map(String::as_str)
        } else {
            None
        };
        let Some(spec) = spec else {
            group.resources.push((name.to_string(), args));
            continue;
        };
        let vip = read_vip(spec, *first_line, word, notes)?;
        if !group.resources.is_empty() {
            notes.push(note(
                "haresources",
                Some(*first_line),
                word,
                "Heartbeat added this address after the resources before it; failoverd adds \
                 every VIP before the start hook runs",
            ));
        }
        group.vips.push(vip);
    }
    Ok(Some(group))
}

fn looks_like_address(word: &str) -> bool {
    let address = word.split('/').next().unwrap_or_default();
    address.parse::<std::net::IpAddr>().is_ok()
}

fn read_vip(
    spec: &str,
    line: usize,
    construct: &str,
    notes: &mut Vec<Note>,
) -> Result<VipSpec, ImportError> {
    let bad = |what: String| ImportError::Syntax {
        file: "haresources".to_string(),
        line,
        what: format!("{construct}: {what}"),
    };
    let mut parts = spec.split('/');
    let address = parts.next().unwrap_or_default();
    if address.parse::<std::net::IpAddr>().is_err() {
        return Err(bad(format!("{address} is not an IP address")));
    }
    let prefix = match parts.next().filter(|p| !p.is_empty()) {
        None => None,
        Some(mask) => Some(
            prefix_len(mask)
                .ok_or_else(|| bad(format!("{mask} is neither a prefix length nor a netmask")))?,
        ),
    };
    let interface = parts.next().filter(|i| !i.is_empty()).map(str::to_string);
    if parts.next().is_some() {
        notes.push(note(
            "haresources",
            Some(line),
            construct,
            "the broadcast address is not needed: the kernel derives it from the prefix",
        ));
    }
    Ok(VipSpec {
        address: address.to_string(),
        prefix,
        interface,
        line,
        construct: construct.to_string(),
    })
}

/// A prefix length, or a dotted IPv4 netmask turned into one.
fn prefix_len(mask: &str) -> Option<u8> {
    if let Ok(bits) = mask.parse::<u8>() {
        return (bits <= 128).then_some(bits);
    }
    let mask: std::net::Ipv4Addr = mask.parse().ok()?;
    let bits = u32::from(mask);
    (bits.leading_ones() + bits.trailing_zeros() == 32).then_some(bits.leading_ones() as u8)
}

fn plan_vip(vip: &VipSpec, options: &Options) -> PlanVip {
    let flag = vip_flag(&options.vips, &vip.address);
    let hint = format!(
        "(or pass --vip {}/PREFIX/INTERFACE to failoverd import)",
        vip.address
    );
    let address = match (vip.prefix, flag) {
        (Some(prefix), _) => Known::Value(format!("{}/{prefix}", vip.address)),
        (None, Some((prefix, _))) => Known::Value(format!("{}/{prefix}", vip.address)),
        // No slash here: check quotes an address/prefix only up to its slash.
        (None, None) => Known::Missing(format!(
            "{} and the prefix length of its network (failoverd import --vip takes both)",
            vip.address
        )),
    };
    let interface = match (&vip.interface, flag) {
        (Some(interface), _) => Known::Value(interface.clone()),
        (None, Some((_, interface))) => Known::Value(interface.to_string()),
        (None, None) => Known::Missing(format!("the interface for {} {hint}", vip.address)),
    };
    PlanVip {
        address,
        interface,
        label: None,
        source: format!("haresources:{} {}", vip.line, vip.construct),
    }
}

/// The hook that starts the resources in order and stops them in reverse.
fn resource_hook(group: &Group) -> String {
    let call = |(name, args): &(String, Vec<String>), action: &str| {
        let mut words = vec![shell_word(name)];
        words.extend(args.iter().map(|a| shell_word(a)));
        words.push(action.to_string());
        words.join(" ")
    };
    let vips: Vec<&str> = group.vips.iter().map(|v| v.address.as_str()).collect();
    let mut text = format!(
        r#"#!/usr/bin/env bash
# failoverd start and stop hook, made by `failoverd import heartbeat` from haresources:
#   {source}
# It runs the resources as Heartbeat did: each resource script is looked up in
# {dirs} (in that order; HA_RESOURCE_DIRS, a space-separated
# list, overrides it) and called with its arguments (script::arg1::arg2) followed
# by start or stop: in the listed order on start, in reverse order on stop.
# The VIPs ({vips}) are not here: failoverd adds them before the start hook
# runs and removes them after the stop hook.
set -u

# resource NAME [ARG...] ACTION: runs the first resource script called NAME.
resource() {{
    local name=$1 dir
    shift
    for dir in ${{HA_RESOURCE_DIRS:-{dirs}}}; do
        if [[ -x $dir/$name && ! -d $dir/$name ]]; then
            echo "resource $name $*"
            "$dir/$name" "$@"
            return
        fi
    done
    echo "resource $name: no executable $name in ${{HA_RESOURCE_DIRS:-{dirs}}}" >&2
    return 127
}}

# A resource that does not start stops the start: failoverd then hands the VIPs to
# the peer, and runs this hook's stop.
start() {{
"#,
        source = group.source,
        dirs = RESOURCE_DIRS,
        vips = if vips.is_empty() {
            "none".to_string()
        } else {
            vips.join(" ")
        },
    );
    for resource in &group.resources {
        text.push_str(&format!(
            "    resource {} || return\n",
            call(resource, "start")
        ));
    }
    text.push_str(
        "}\n\n# Every resource is stopped, even after one failed to stop.\nstop() {\n    \
         local status=0\n",
    );
    for resource in group.resources.iter().rev() {
        text.push_str(&format!(
            "    resource {} || status=$?\n",
            call(resource, "stop")
        ));
    }
    text.push_str(
        r#"    return "$status"
}

case "${FAILOVERD_HOOK:-}" in
start) start ;;
stop) stop ;;
*)
    echo "unexpected hook ${FAILOVERD_HOOK:-(none)}: set this script as [hooks] start and stop" >&2
    exit 2
    ;;
esac
"#,
    );
    text
}

/// The key: the selected authkeys secret when it is long enough, else a new one.
fn read_authkeys(text: Option<&str>, options: &Options, notes: &mut Vec<Note>) -> KeySource {
    if options.key_file.is_some() {
        return KeySource::External;
    }
    let Some(text) = text else {
        notes.push(note(
            "authkeys",
            None,
            "(missing)",
            &format!(
                "a new random key is written as {KEY_FILE}: copy that same file to every node"
            ),
        ));
        return KeySource::Generate;
    };
    let lines = words(text);
    let selected = lines
        .iter()
        .find(|(_, w)| w[0] == "auth")
        .and_then(|(_, w)| w.get(1).copied());
    let entry = lines
        .iter()
        .find(|(_, w)| Some(w[0]) == selected && w[0] != "auth");
    let Some((line, words)) = entry else {
        notes.push(note(
            "authkeys",
            None,
            "auth",
            &format!(
                "no key selected by an `auth N` line: a new random key is written as \
                 {KEY_FILE}; copy that same file to every node"
            ),
        ));
        return KeySource::Generate;
    };
    let method = words.get(1).copied().unwrap_or_default();
    // The secret is the rest of the line after the method.
    let secret = text
        .lines()
        .nth(line - 1)
        .and_then(|l| l.split_once(method))
        .map(|(_, rest)| rest.trim())
        .unwrap_or_default();
    let construct = format!("{} {method} ...", words[0]);
    if method == "crc" || secret.is_empty() {
        notes.push(note(
            "authkeys",
            Some(*line),
            &construct,
            &format!(
                "{method} has no secret: a new random key is written as {KEY_FILE}; copy \
                 that same file to every node (do not import again on the other node)"
            ),
        ));
        return KeySource::Generate;
    }
    if secret.len() < crate::config::MIN_KEY_LEN {
        notes.push(note(
            "authkeys",
            Some(*line),
            &construct,
            &format!(
                "the secret is shorter than the {} bytes failoverd requires: a new random key \
                 is written as {KEY_FILE}; copy that same file to every node",
                crate::config::MIN_KEY_LEN
            ),
        ));
        return KeySource::Generate;
    }
    notes.push(note(
        "authkeys",
        Some(*line),
        &construct,
        &format!(
            "the secret is kept as {KEY_FILE} (mode 0600); failoverd signs with HMAC-SHA256 \
             instead of {method}, so old and new nodes cannot talk to each other"
        ),
    ));
    KeySource::Secret(secret.to_string())
}

#[cfg(test)]
mod tests {
    use super::super::{FILL_IN, placeholders};
    use super::*;

    const HA_CF: &str = "\
# Heartbeat on osm1 and osm2
logfacility local0
keepalive 2
warntime 5
deadtime 15
initdead 60
udpport 694
bcast eth1
ping 192.168.0.1
auto_failback on
node osm1
node osm2
respawn hacluster /usr/lib/heartbeat/ipfail
";

    fn translate_text(
        ha_cf: &str,
        haresources: Option<&str>,
        authkeys: Option<&str>,
        options: &Options,
    ) -> Result<Translation, ImportError> {
        translate(
            &Inputs {
                ha_cf,
                haresources,
                authkeys,
            },
            options,
        )
    }

    fn config_of(translation: &Translation) -> toml::Table {
        translation.config.parse().expect(&translation.config)
    }

    fn notes_at<'a>(translation: &'a Translation, file: &str, line: usize) -> Vec<&'a Note> {
        translation
            .notes
            .iter()
            .filter(|n| n.file == file && n.line == Some(line))
            .collect()
    }

    #[test]
    fn heartbeat_times_are_seconds_or_carry_a_unit() {
        assert_eq!(parse_time("2"), Some(Duration::from_secs(2)));
        assert_eq!(parse_time("1.5"), Some(Duration::from_millis(1500)));
        assert_eq!(parse_time("500ms"), Some(Duration::from_millis(500)));
        assert_eq!(parse_time("3s"), Some(Duration::from_secs(3)));
        assert_eq!(parse_time("250000us"), Some(Duration::from_millis(250)));
        assert_eq!(parse_time("soon"), None);
        assert_eq!(parse_time("-1"), None);
        assert_eq!(parse_time("1e300"), None);
        assert_eq!(parse_time("NaN"), None);
    }

    #[test]
    fn timers_map_one_to_one() {
        let t = translate_text(HA_CF, None, None, &Options::default()).unwrap();
        let config = config_of(&t);
        let timing = config["timing"].as_table().unwrap();
        assert_eq!(timing["interval"].as_str(), Some("2s"));
        assert_eq!(timing["warn"].as_str(), Some("5s"));
        assert_eq!(timing["dead"].as_str(), Some("15s"));
        assert_eq!(timing["init_dead"].as_str(), Some("60s"));
        assert_eq!(config["cluster"]["port"].as_integer(), Some(694));
        assert_eq!(config["cluster"]["failback"].as_str(), Some("auto"));
        assert_eq!(config["cluster"]["name"].as_str(), Some("osm1-osm2"));
    }

    #[test]
    fn unset_timers_get_heartbeats_defaults() {
        let t = translate_text(
            "node a b\nkeepalive 500ms\n",
            None,
            None,
            &Options::default(),
        )
        .unwrap();
        let timing = config_of(&t)["timing"].as_table().unwrap().clone();
        assert_eq!(timing["interval"].as_str(), Some("500ms"));
        assert_eq!(timing["dead"].as_str(), Some("30s"));
        assert_eq!(timing["warn"].as_str(), Some("15s"));
        assert_eq!(timing["init_dead"].as_str(), Some("60s"));
    }

    #[test]
    fn bcast_makes_a_link_whose_addresses_are_asked_for() {
        let t = translate_text(HA_CF, None, None, &Options::default()).unwrap();
        let config = config_of(&t);
        assert_eq!(config["link"][0]["name"].as_str(), Some("eth1"));
        let address = config["node"][1]["addresses"]["eth1"].as_str().unwrap();
        assert!(address.starts_with(FILL_IN), "{address}");
        assert!(address.contains("--address osm2:eth1=ADDRESS"), "{address}");
        assert_eq!(notes_at(&t, "ha.cf", 8).len(), 1, "{:#?}", t.notes);

        let options = Options {
            addresses: vec![
                "osm1=198.18.0.1".parse().unwrap(),
                "osm2:eth1=198.18.0.2".parse().unwrap(),
            ],
            ..Options::default()
        };
        let t = translate_text(HA_CF, None, None, &options).unwrap();
        let config = config_of(&t);
        assert_eq!(
            config["node"][0]["addresses"]["eth1"].as_str(),
            Some("198.18.0.1")
        );
        assert_eq!(
            config["node"][1]["addresses"]["eth1"].as_str(),
            Some("198.18.0.2")
        );
        assert_eq!(placeholders(&t.config), 0, "{}", t.config);
    }

    #[test]
    fn a_ucast_address_goes_to_the_one_node_left_without_one() {
        let ha_cf = "node a b\nucast eth1 198.18.0.2\nbcast eth0\n";
        let t = translate_text(ha_cf, None, None, &Options::default()).unwrap();
        let notes = notes_at(&t, "ha.cf", 2);
        assert_eq!(notes.len(), 1, "{:#?}", t.notes);
        assert!(notes[0].advice.contains("--address NODE:eth1=198.18.0.2"));
        let options = Options {
            addresses: vec!["a:eth1=198.18.0.1".parse().unwrap()],
            ..Options::default()
        };
        let t = translate_text(ha_cf, None, None, &options).unwrap();
        let config = config_of(&t);
        assert_eq!(
            config["node"][1]["addresses"]["eth1"].as_str(),
            Some("198.18.0.2")
        );
        assert!(notes_at(&t, "ha.cf", 2).is_empty(), "{:#?}", t.notes);
        assert_eq!(config["link"][1]["name"].as_str(), Some("eth0"));
        // The same from the file's own node, whose address is then still asked for.
        let options = Options {
            this_node: Some("a".to_string()),
            ..Options::default()
        };
        let t = translate_text(ha_cf, None, None, &options).unwrap();
        let config = config_of(&t);
        assert_eq!(
            config["node"][1]["addresses"]["eth1"].as_str(),
            Some("198.18.0.2")
        );
        let own = config["node"][0]["addresses"]["eth1"].as_str().unwrap();
        assert!(own.starts_with(FILL_IN), "{own}");
        // Two addresses: whose is whose is not in the file.
        let t = translate_text(
            "node a b\nucast eth1 198.18.0.1\nucast eth1 198.18.0.2\n",
            None,
            None,
            &options,
        )
        .unwrap();
        assert_eq!(notes_at(&t, "ha.cf", 2).len(), 1, "{:#?}", t.notes);
        assert_eq!(notes_at(&t, "ha.cf", 3).len(), 1, "{:#?}", t.notes);
    }

    #[test]
    fn ping_and_ping_group_become_gateways() {
        let ha_cf = "node a b\nbcast eth0\nping 192.168.0.1\nping_group g 10.0.0.1 10.0.0.2\n";
        let t = translate_text(ha_cf, None, None, &Options::default()).unwrap();
        let gateways = config_of(&t)["health"]["gateways"].clone();
        let gateways: Vec<&str> = gateways
            .as_array()
            .unwrap()
            .iter()
            .map(|g| g.as_str().unwrap())
            .collect();
        assert_eq!(gateways, ["192.168.0.1", "10.0.0.1", "10.0.0.2"]);
        assert_eq!(notes_at(&t, "ha.cf", 4).len(), 1);
    }

    #[test]
    fn auto_failback_off_and_legacy_are_manual() {
        for (value, failback, noted) in [
            ("on", "auto", false),
            ("yes", "auto", false),
            ("off", "manual", false),
            ("no", "manual", false),
            ("legacy", "manual", true),
        ] {
            let ha_cf = format!("node a b\nauto_failback {value}\n");
            let t = translate_text(&ha_cf, None, None, &Options::default()).unwrap();
            assert_eq!(
                config_of(&t)["cluster"]["failback"].as_str(),
                Some(failback),
                "{value}"
            );
            assert_eq!(!notes_at(&t, "ha.cf", 2).is_empty(), noted, "{value}");
        }
        let err = translate_text(
            "node a b\nauto_failback maybe\n",
            None,
            None,
            &Options::default(),
        );
        assert!(matches!(err, Err(ImportError::Syntax { line: 2, .. })));
    }

    #[test]
    fn constructs_without_an_equivalent_are_noted_with_their_line() {
        let ha_cf = "node a b\nbcast eth0\nserial /dev/ttyS0\nrespawn hacluster /usr/lib/heartbeat/ipfail\nrespawn root /usr/local/bin/monitor\nlogfacility local0\ndebugfile /var/log/ha-debug\ncrm off\nstonith_host * baytech 10.0.0.3 mylogin\nfrobnicate yes\n";
        let t = translate_text(ha_cf, None, None, &Options::default()).unwrap();
        for line in 3..=10 {
            assert_eq!(
                notes_at(&t, "ha.cf", line).len(),
                1,
                "line {line}: {:#?}",
                t.notes
            );
        }
        assert!(notes_at(&t, "ha.cf", 4)[0].advice.contains("gateways"));
        assert!(notes_at(&t, "ha.cf", 9)[0].advice.contains("[fencing]"));
    }

    #[test]
    fn a_time_beyond_a_day_is_an_error_not_an_overflow() {
        let err = translate_text("node a b\ndeadtime 1e19\n", None, None, &Options::default());
        assert!(
            matches!(err, Err(ImportError::Syntax { line: 2, .. })),
            "{err:?}"
        );
    }

    #[test]
    fn fewer_than_two_nodes_is_an_error() {
        let err = translate_text("node a\nbcast eth0\n", None, None, &Options::default());
        assert!(
            matches!(err, Err(ImportError::Incomplete { .. })),
            "{err:?}"
        );
    }

    #[test]
    fn haresources_gives_the_preferred_node_the_vips_and_the_resources() {
        let t = translate_text(
            HA_CF,
            Some("# resources\nosm1 192.168.0.200 cron osm-failover.sh\n"),
            None,
            &Options::default(),
        )
        .unwrap();
        let config = config_of(&t);
        assert_eq!(config["node"][0]["priority"].as_integer(), Some(200));
        assert_eq!(config["node"][1]["priority"].as_integer(), Some(100));
        let vip = &config["vip"][0];
        let address = vip["address"].as_str().unwrap();
        assert!(
            address.starts_with(FILL_IN) && !address.contains('/'),
            "{address}"
        );
        assert!(vip["interface"].as_str().unwrap().starts_with(FILL_IN));
        assert_eq!(
            config["hooks"]["start"].as_str(),
            Some("hooks/heartbeat-resources.sh")
        );
        assert_eq!(config["hooks"]["stop"], config["hooks"]["start"]);
        let hook = &t.hooks[0].text;
        let start = hook.find("resource cron start").unwrap();
        let script = hook.find("resource osm-failover.sh start").unwrap();
        assert!(start < script, "{hook}");
        let stop = hook.find("resource cron stop").unwrap();
        let script_stop = hook.find("resource osm-failover.sh stop").unwrap();
        assert!(script_stop < stop, "{hook}");

        let options = Options {
            vips: vec!["192.168.0.200/24/eth0".to_string()],
            ..Options::default()
        };
        let t = translate_text(HA_CF, Some("osm1 192.168.0.200 cron\n"), None, &options).unwrap();
        let config = config_of(&t);
        assert_eq!(
            config["vip"][0]["address"].as_str(),
            Some("192.168.0.200/24")
        );
        assert_eq!(config["vip"][0]["interface"].as_str(), Some("eth0"));
    }

    #[test]
    fn ipaddr_entries_are_vips_and_script_arguments_are_split() {
        let haresources = "node1 IPaddr::10.0.0.10/24/eth0 IPaddr2::10.0.0.11/255.255.255.0/eth0/10.0.0.255 \\\n  Filesystem::/dev/sdb1::/data::ext4 httpd\n";
        let t = translate_text(
            "node node1 node2\nbcast eth0\n",
            Some(haresources),
            None,
            &Options::default(),
        )
        .unwrap();
        let config = config_of(&t);
        assert_eq!(config["vip"][0]["address"].as_str(), Some("10.0.0.10/24"));
        assert_eq!(config["vip"][1]["address"].as_str(), Some("10.0.0.11/24"));
        assert_eq!(config["vip"][1]["interface"].as_str(), Some("eth0"));
        let hook = &t.hooks[0].text;
        assert!(
            hook.contains("resource Filesystem /dev/sdb1 /data ext4 start"),
            "{hook}"
        );
        assert!(hook.contains("resource httpd stop"), "{hook}");
        assert!(!hook.contains("resource IPaddr"), "{hook}");
        // The broadcast address is noted.
        assert_eq!(notes_at(&t, "haresources", 1).len(), 1, "{:#?}", t.notes);
    }

    #[test]
    fn a_vip_after_other_resources_and_further_groups_are_noted() {
        let haresources =
            "node1 drbddisk::r0 10.0.0.10/24/eth0 httpd\nnode2 10.0.0.20/24/eth0 mysql\n";
        let t = translate_text(
            "node node1 node2\nbcast eth0\n",
            Some(haresources),
            None,
            &Options::default(),
        )
        .unwrap();
        assert_eq!(notes_at(&t, "haresources", 1).len(), 1, "{:#?}", t.notes);
        assert_eq!(notes_at(&t, "haresources", 2).len(), 1, "{:#?}", t.notes);
        assert_eq!(config_of(&t)["vip"].as_array().unwrap().len(), 1);
    }

    #[test]
    fn a_haresources_node_not_in_ha_cf_is_an_error() {
        let err = translate_text(
            "node a b\n",
            Some("c 10.0.0.1 httpd\n"),
            None,
            &Options::default(),
        );
        assert!(
            matches!(err, Err(ImportError::Syntax { line: 1, .. })),
            "{err:?}"
        );
    }

    #[test]
    fn a_long_sha1_secret_is_kept_and_crc_or_a_short_one_is_replaced() {
        let run = |authkeys: &str| {
            translate_text(HA_CF, None, Some(authkeys), &Options::default()).unwrap()
        };
        let t = run("auth 1\n1 sha1 a secret of some length\n2 md5 other\n");
        assert_eq!(
            t.key,
            KeySource::Secret("a secret of some length".to_string())
        );
        assert_eq!(
            config_of(&t)["cluster"]["key_file"].as_str(),
            Some("authkey")
        );
        let t = run("auth 2\n1 sha1 a secret of some length\n2 md5 short\n");
        assert_eq!(t.key, KeySource::Generate);
        assert_eq!(notes_at(&t, "authkeys", 3).len(), 1, "{:#?}", t.notes);
        let t = run("auth 3\n3 crc\n");
        assert_eq!(t.key, KeySource::Generate);
        assert!(notes_at(&t, "authkeys", 2)[0].advice.contains("no secret"));
        let options = Options {
            key_file: Some("/etc/failoverd/authkey".to_string()),
            ..Options::default()
        };
        let t = translate_text(HA_CF, None, Some("auth 3\n3 crc\n"), &options).unwrap();
        assert_eq!(t.key, KeySource::External);
        assert_eq!(
            config_of(&t)["cluster"]["key_file"].as_str(),
            Some("/etc/failoverd/authkey")
        );
    }

    #[test]
    fn a_priority_flag_overrides_haresources() {
        let options = Options {
            priorities: vec![("osm2".to_string(), 300)],
            ..Options::default()
        };
        let t = translate_text(HA_CF, Some("osm1 192.168.0.200\n"), None, &options).unwrap();
        assert_eq!(config_of(&t)["node"][1]["priority"].as_integer(), Some(300));
        let options = Options {
            priorities: vec![("osm3".to_string(), 300)],
            ..Options::default()
        };
        assert!(translate_text(HA_CF, None, None, &options).is_err());
    }

    #[test]
    fn netmasks_become_prefix_lengths() {
        assert_eq!(prefix_len("24"), Some(24));
        assert_eq!(prefix_len("255.255.255.0"), Some(24));
        assert_eq!(prefix_len("255.255.0.255"), None);
        assert_eq!(prefix_len("129"), None);
    }
}
