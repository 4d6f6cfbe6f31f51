//! keepalived: one `vrrp_instance` of a keepalived.conf into a failoverd configuration,
//! its checks and one notify hook.
//!
//! The file is read as keepalived reads it: words and quoted strings, `{ }` blocks
//! (opened on the same line or the next), comments from `#` or `!`. One instance
//! becomes the whole configuration, since failoverd has no VIP groups: its interface
//! is the one link, `unicast_src_ip` this node's address and `unicast_peer` the
//! peers', `track_script`/`track_interface` become `[[check]]`s and the notify
//! scripts one hook. A keepalived.conf describes one node, so the peers' priorities
//! and names come from the command line or are left to fill in.

use std::time::Duration;

use super::{
    HOOK_DIR, Hook, ImportError, KEY_FILE, KeySource, Known, Note, Options, Plan, PlanCheck,
    PlanHooks, PlanNode, PlanProbe, PlanTiming, PlanVip, Translation, check_priority_flags,
    resolve_addresses, seconds, shell_word, sort_notes, valid_name,
};

/// The hook's file name under [`HOOK_DIR`].
pub const HOOK_NAME: &str = "keepalived-notify.sh";
const FILE: &str = "keepalived.conf";
/// keepalived's defaults.
const DEFAULT_PRIORITY: u16 = 100;
const DEFAULT_ADVERT: Duration = Duration::from_secs(1);

/// One statement: a keyword, its arguments on the same line, and its block if any.
#[derive(Debug, Clone, PartialEq)]
pub struct Statement {
    pub key: String,
    pub args: Vec<String>,
    pub line: usize,
    pub block: Option<Vec<Statement>>,
}

impl Statement {
    /// The statement as written, without its block.
    fn construct(&self) -> String {
        let mut words = vec![self.key.clone()];
        words.extend(self.args.iter().cloned());
        words.join(" ")
    }

    fn block(&self) -> &[Statement] {
        self.block.as_deref().unwrap_or_default()
    }
}

#[derive(Debug, PartialEq)]
enum Token {
    Word { text: String, line: usize },
    Open(usize),
    Close(usize),
}

fn tokens(text: &str) -> Result<Vec<Token>, ImportError> {
    let mut out = Vec::new();
    for (i, line) in text.lines().enumerate() {
        let line_no = i + 1;
        let mut chars = line.char_indices().peekable();
        while let Some(&(start, c)) = chars.peek() {
            match c {
                c if c.is_whitespace() => {
                    chars.next();
                }
                '#' | '!' => break,
                '{' => {
                    chars.next();
                    out.push(Token::Open(line_no));
                }
                '}' => {
                    chars.next();
                    out.push(Token::Close(line_no));
                }
                '"' => {
                    chars.next();
                    let rest = &line[start + 1..];
                    let Some(end) = rest.find('"') else {
                        return Err(ImportError::Syntax {
                            file: FILE.to_string(),
                            line: line_no,
                            what: "a quoted string does not end on its line".to_string(),
                        });
                    };
                    out.push(Token::Word {
                        text: rest[..end].to_string(),
                        line: line_no,
                    });
                    while chars.next_if(|&(at, _)| at <= start + 1 + end).is_some() {}
                }
                _ => {
                    let mut end = line.len();
                    while let Some(&(at, c)) = chars.peek() {
                        if c.is_whitespace() || c == '{' || c == '}' {
                            end = at;
                            break;
                        }
                        chars.next();
                    }
                    out.push(Token::Word {
                        text: line[start..end].to_string(),
                        line: line_no,
                    });
                }
            }
        }
    }
    Ok(out)
}

/// Reads keepalived.conf into statements.
pub fn parse(text: &str) -> Result<Vec<Statement>, ImportError> {
    let tokens = tokens(text)?;
    let mut at = 0;
    let statements = parse_block(&tokens, &mut at, None)?;
    Ok(statements)
}

fn parse_block(
    tokens: &[Token],
    at: &mut usize,
    opened: Option<usize>,
) -> Result<Vec<Statement>, ImportError> {
    let syntax = |line, what: &str| ImportError::Syntax {
        file: FILE.to_string(),
        line,
        what: what.to_string(),
    };
    let mut statements: Vec<Statement> = Vec::new();
    // Whether a word on the same line adds to the last statement.
    let mut extending = false;
    while let Some(token) = tokens.get(*at) {
        *at += 1;
        match token {
            Token::Close(line) => {
                if opened.is_none() {
                    return Err(syntax(*line, "} without a matching {"));
                }
                return Ok(statements);
            }
            Token::Open(line) => {
                let Some(last) = statements.last_mut().filter(|s| s.block.is_none()) else {
                    return Err(syntax(*line, "{ without a keyword before it"));
                };
                last.block = Some(parse_block(tokens, at, Some(*line))?);
                extending = false;
            }
            Token::Word { text, line } => match statements.last_mut() {
                Some(last) if extending && last.line == *line => last.args.push(text.clone()),
                _ => {
                    statements.push(Statement {
                        key: text.clone(),
                        args: Vec::new(),
                        line: *line,
                        block: None,
                    });
                    extending = true;
                }
            },
        }
    }
    match opened {
        Some(line) => Err(syntax(line, "this { is never closed")),
        None => Ok(statements),
    }
}

/// Translates the instance `options.instance` names, or the first.
pub fn translate(text: &str, options: &Options) -> Result<Translation, ImportError> {
    let statements = parse(text)?;
    let mut notes = Vec::new();
    let instances: Vec<&Statement> = statements
        .iter()
        .filter(|s| s.key == "vrrp_instance")
        .collect();
    let names: Vec<String> = instances
        .iter()
        .map(|s| s.args.first().cloned().unwrap_or_default())
        .collect();
    let chosen = match &options.instance {
        Some(name) => names
            .iter()
            .position(|n| n == name)
            .ok_or_else(|| ImportError::Flag {
                flag: "--instance",
                value: name.clone(),
                what: format!("no vrrp_instance {name} (instances: {})", names.join(", ")),
            })?,
        None if instances.is_empty() => {
            return Err(ImportError::Incomplete {
                file: FILE.to_string(),
                what: "no vrrp_instance: nothing to translate".to_string(),
            });
        }
        None => 0,
    };
    let instance = instances[chosen];
    let mut used_scripts = Vec::new();
    for statement in &statements {
        top_level(statement, instance, &mut notes);
    }
    let read = read_instance(instance, &mut notes)?;
    let checks = plan_checks(&read, &statements, &mut used_scripts, &mut notes);
    for script in statements.iter().filter(|s| s.key == "vrrp_script") {
        let name = script.args.first().cloned().unwrap_or_default();
        if !used_scripts.contains(&name) {
            notes.push(note(
                script.line,
                &script.construct(),
                "not tracked by the translated instance: not translated",
            ));
        }
    }

    // The nodes: this one, then one per unicast_peer (at least one).
    let this = options
        .this_node
        .clone()
        .unwrap_or_else(|| "node1".to_string());
    if options.this_node.is_none() {
        notes.push(note(
            instance.line,
            &instance.construct(),
            "keepalived.conf does not name its node: this node is called node1 and the peers \
             node2, ...; pass --this-node NAME and --peer NAME (in unicast_peer order) with \
             the host names, or edit them",
        ));
    }
    let peer_count = read.peers.len().max(options.peers.len()).max(1);
    let mut names = vec![this];
    names.extend((0..peer_count).map(|i| {
        options
            .peers
            .get(i)
            .cloned()
            .unwrap_or_else(|| format!("node{}", i + 2))
    }));
    if let Some(bad) = names.iter().find(|n| !valid_name(n)) {
        return Err(ImportError::Flag {
            flag: "--this-node/--peer",
            value: bad.clone(),
            what: "not a usable node name".to_string(),
        });
    }
    check_priority_flags(&options.priorities, &names)?;
    let link = read.interface.clone().unwrap_or_else(|| "lan".to_string());
    let links = vec![link];
    let addresses = resolve_addresses(&names, &links, &options.addresses, |n, _| {
        if n == 0 {
            read.src_ip.clone()
        } else {
            read.peers.get(n - 1).cloned()
        }
    })?;
    let nodes = names
        .iter()
        .zip(addresses)
        .enumerate()
        .map(|(n, (name, addresses))| {
            let flag = options.priorities.iter().find(|(f, _)| f == name);
            let (priority, comment) = match (flag, n) {
                (Some((_, p)), _) => (Known::Value(*p), "from --priority".to_string()),
                (None, 0) => (
                    Known::Value(read.priority),
                    format!(
                        "{FILE}:{} priority",
                        read.priority_line.unwrap_or(instance.line)
                    ),
                ),
                (None, _) => (
                    Known::Missing(format!(
                        "{name}'s priority, the `priority` in its keepalived.conf (pass \
                         --priority {name}=N to failoverd import)"
                    )),
                    "keepalived.conf holds only this node's priority".to_string(),
                ),
            };
            PlanNode {
                name: name.clone(),
                priority,
                addresses,
                comment: Some(comment),
            }
        })
        .collect::<Vec<_>>();

    let advert = read.advert.unwrap_or(DEFAULT_ADVERT);
    // keepalived's master-down interval is three adverts (plus a skew); with three
    // nodes failoverd wants four intervals for its majority rule.
    let dead = advert * if names.len() > 2 { 4 } else { 3 };
    let timing = PlanTiming {
        interval: advert,
        warn: advert * 2,
        dead,
        init_dead: dead,
    };

    let (hooks, plan_hooks) = notify_hook(&read, instance, &names[0]);
    let key = if options.key_file.is_some() {
        KeySource::External
    } else {
        KeySource::Generate
    };
    if key == KeySource::Generate && read.auth_line.is_none() {
        notes.push(note(
            instance.line,
            &instance.construct(),
            &format!(
                "failoverd signs every heartbeat: a new random key is written as {KEY_FILE}; \
                 copy that same file to every node"
            ),
        ));
    }
    let cluster = options
        .cluster
        .clone()
        .or_else(|| Some(names_of(instance)).filter(|n| valid_name(n)))
        .unwrap_or_else(|| "keepalived".to_string());
    let plan = Plan {
        header: vec![format!(
            "Made by `failoverd import keepalived` from vrrp_instance {} in {FILE}.",
            names_of(instance)
        )],
        cluster,
        key_file: options.key_file.clone().unwrap_or(KEY_FILE.to_string()),
        port: None,
        failback: read.failback.clone(),
        failback_delay: read.preempt_delay,
        timing: Some(timing),
        links,
        nodes,
        vips: read.vips.clone(),
        gateways: Vec::new(),
        checks,
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

fn names_of(statement: &Statement) -> String {
    statement.args.first().cloned().unwrap_or_default()
}

fn note(line: usize, construct: &str, advice: &str) -> Note {
    Note {
        file: FILE.to_string(),
        line: Some(line),
        construct: construct.to_string(),
        advice: advice.to_string(),
    }
}

/// Notes for the top-level statements other than the translated instance.
fn top_level(statement: &Statement, instance: &Statement, notes: &mut Vec<Note>) {
    let construct = statement.construct();
    match statement.key.as_str() {
        "vrrp_instance" if std::ptr::eq(statement, instance) => {}
        "vrrp_instance" => notes.push(note(
            statement.line,
            &construct,
            &format!(
                "not translated: failoverd has no VIP groups yet, one configuration moves \
                 one set of VIPs. Import it with --instance {} into a configuration of its \
                 own (run by a second failoverd with its own port, control socket and state \
                 directory), or add its VIPs to this one if they may move together",
                names_of(statement)
            ),
        )),
        "vrrp_script" => {}
        "global_defs" => {
            for inner in statement.block() {
                let advice = match inner.key.as_str() {
                    "notification_email"
                    | "notification_email_from"
                    | "smtp_server"
                    | "smtp_connect_timeout" => {
                        "not translated: failoverd sends no mail itself; use \
                         config/hooks/mail-alert.sh as a start and fault hook"
                    }
                    "router_id" => {
                        "not translated: failoverd names nodes in [[node]] (--this-node, --peer)"
                    }
                    "script_user" => "not translated: see [hooks] user and group",
                    _ => "global_defs: not needed by failoverd, ignored",
                };
                notes.push(note(inner.line, &inner.construct(), advice));
            }
        }
        "vrrp_sync_group" => notes.push(note(
            statement.line,
            &construct,
            "not translated: failoverd has no sync groups; one configuration moves all its \
             VIPs together, so put the VIPs of the grouped instances in one configuration",
        )),
        "virtual_server" | "virtual_server_group" | "real_server" => notes.push(note(
            statement.line,
            &construct,
            "not translated: failoverd does not balance load (IPVS); keep the IPVS rules in \
             the start hook (ipvsadm), or run a load balancer as a service the hooks start",
        )),
        "include" => notes.push(note(
            statement.line,
            &construct,
            "not followed: import the included files' instances by putting them in one file",
        )),
        "static_ipaddress" | "static_routes" | "static_rules" => notes.push(note(
            statement.line,
            &construct,
            "not translated: configure static addresses and routes in the system's network \
             configuration",
        )),
        _ => notes.push(note(
            statement.line,
            &construct,
            "not known to failoverd import: ignored; see docs/migrating.md",
        )),
    }
}

/// What one instance says.
#[derive(Debug, Default)]
struct Instance {
    interface: Option<String>,
    priority: u16,
    priority_line: Option<usize>,
    advert: Option<Duration>,
    vips: Vec<PlanVip>,
    src_ip: Option<String>,
    peers: Vec<String>,
    failback: Option<(String, String)>,
    preempt_delay: Option<Duration>,
    auth_line: Option<usize>,
    /// Interface, weight (None: keepalived's default, fault when down), line.
    track_interfaces: Vec<(String, Option<i64>, usize)>,
    /// Script name, weight override, line.
    track_scripts: Vec<(String, Option<i64>, usize)>,
    /// failoverd hook name, command, the keepalived key and line.
    notify: Vec<(&'static str, String, String, usize)>,
}

fn read_instance(instance: &Statement, notes: &mut Vec<Note>) -> Result<Instance, ImportError> {
    let mut read = Instance {
        priority: DEFAULT_PRIORITY,
        failback: Some((
            "auto".to_string(),
            "keepalived preempts: the higher priority takes the VIPs back (failoverd after \
             failback_delay of health)"
                .to_string(),
        )),
        ..Instance::default()
    };
    let syntax = |line, what: String| ImportError::Syntax {
        file: FILE.to_string(),
        line,
        what,
    };
    // Interface names of the VIPs are settled once the instance's is known, and the
    // generic notify's arguments once its priority is.
    let mut vip_statements = Vec::new();
    let mut generic_notify = None;
    for s in instance.block() {
        let construct = s.construct();
        let first = s.args.first().cloned();
        let mut skip = |advice: &str| notes.push(note(s.line, &construct, advice));
        match s.key.as_str() {
            "interface" => read.interface = first,
            "priority" => {
                read.priority = first.and_then(|p| p.parse().ok()).ok_or_else(|| {
                    syntax(
                        s.line,
                        "priority: expected a number from 1 to 255".to_string(),
                    )
                })?;
                read.priority_line = Some(s.line);
            }
            "advert_int" => {
                let advert = first
                    .and_then(|a| a.parse::<f64>().ok())
                    .and_then(seconds)
                    .filter(|a| !a.is_zero())
                    .ok_or_else(|| {
                        syntax(s.line, "advert_int: expected seconds, e.g. 1".to_string())
                    })?;
                read.advert = Some(advert);
            }
            "state" => skip(
                "not translated: failoverd has no initial state; the node with the higher \
                 priority becomes active",
            ),
            "virtual_router_id" => {
                skip("not needed: the cluster name and the key keep failoverd clusters apart")
            }
            "virtual_ipaddress" => vip_statements.push((s, false)),
            "virtual_ipaddress_excluded" => {
                skip("translated as VIPs like virtual_ipaddress: failoverd does not send them");
                vip_statements.push((s, true));
            }
            "unicast_src_ip" | "mcast_src_ip" => {
                if s.key == "mcast_src_ip" {
                    skip("taken as this node's address: failoverd sends unicast heartbeats");
                }
                read.src_ip = first;
            }
            "unicast_peer" => {
                read.peers.extend(s.block().iter().map(|p| p.key.clone()));
            }
            "nopreempt" => {
                read.failback = Some((
                    "manual".to_string(),
                    format!("{FILE}:{} nopreempt: the VIPs stay where they are", s.line),
                ));
            }
            "preempt_delay" => {
                let delay = first
                    .and_then(|d| d.parse::<f64>().ok())
                    .filter(|d| d.is_finite() && *d >= 0.0)
                    .ok_or_else(|| syntax(s.line, "preempt_delay: expected seconds".to_string()))?;
                read.preempt_delay = Some(Duration::from_secs_f64(delay));
            }
            "authentication" => {
                read.auth_line = Some(s.line);
                skip(&format!(
                    "not translated: failoverd signs every heartbeat with HMAC-SHA256 and a key \
                     of at least 16 bytes; a new random key is written as {KEY_FILE}: copy \
                     that same file to every node"
                ));
            }
            "track_interface" => {
                for t in s.block() {
                    read.track_interfaces
                        .push((t.key.clone(), weight_of(t, notes), t.line));
                }
            }
            "track_script" => {
                for t in s.block() {
                    read.track_scripts
                        .push((t.key.clone(), weight_of(t, notes), t.line));
                }
                // The one-line form: track_script NAME.
                for name in &s.args {
                    read.track_scripts.push((name.clone(), None, s.line));
                }
            }
            "notify_master" | "notify_backup" | "notify_fault" | "notify_stop" => {
                let hook = match s.key.as_str() {
                    "notify_master" => "start",
                    "notify_backup" => "standby",
                    "notify_fault" => "fault",
                    _ => "stop",
                };
                read.notify
                    .push((hook, s.args.join(" "), s.key.clone(), s.line));
            }
            "notify" => generic_notify = Some((s.args.join(" "), s.line)),
            "smtp_alert" => {
                skip("not translated: use config/hooks/mail-alert.sh as a start and fault hook")
            }
            "garp_master_delay"
            | "garp_master_repeat"
            | "garp_master_refresh"
            | "garp_master_refresh_repeat" => skip(
                "not translated: see [announce] count, interval and refresh (failoverd \
                 announces the VIPs on takeover and every 60s by default)",
            ),
            "track_process" | "track_file" | "track_bfd" => {
                skip("not translated: write an exec [[check]] that tests the same thing")
            }
            "virtual_routes" | "virtual_rules" => skip(
                "not translated: add and remove the routes or rules in the start and stop \
                 hooks",
            ),
            _ => skip("not translated: failoverd has no equivalent; see docs/migrating.md"),
        }
    }
    // keepalived calls the generic notify with INSTANCE, the name, the state and the
    // priority, after the state's own script.
    if let Some((script, line)) = generic_notify {
        for (hook, state) in [
            ("start", "MASTER"),
            ("standby", "BACKUP"),
            ("fault", "FAULT"),
            ("stop", "STOP"),
        ] {
            let command = format!(
                "{script} INSTANCE {} {state} {}",
                shell_word(&names_of(instance)),
                read.priority
            );
            read.notify
                .push((hook, command, "notify".to_string(), line));
        }
    }
    for (s, _) in vip_statements {
        for entry in s.block() {
            read.vips
                .push(read_vip(entry, read.interface.as_deref(), notes)?);
        }
    }
    if read.vips.is_empty() {
        notes.push(note(
            instance.line,
            &instance.construct(),
            "no virtual_ipaddress: the configuration has no [[vip]]",
        ));
    }
    Ok(read)
}

/// `weight N` after a tracked name; reported when it is not a number.
fn weight_of(statement: &Statement, notes: &mut Vec<Note>) -> Option<i64> {
    let at = statement.args.iter().position(|a| a == "weight")?;
    let weight = statement.args.get(at + 1).and_then(|w| w.parse().ok());
    if weight.is_none() {
        notes.push(note(
            statement.line,
            &statement.construct(),
            "the weight is not a number: ignored",
        ));
    }
    weight
}

/// One virtual_ipaddress entry: `ADDRESS[/PREFIX] [dev IF] [label L] [...]`.
fn read_vip(
    entry: &Statement,
    interface: Option<&str>,
    notes: &mut Vec<Note>,
) -> Result<PlanVip, ImportError> {
    let construct = entry.construct();
    let (address, prefix) = match entry.key.split_once('/') {
        Some((address, prefix)) => (address, Some(prefix)),
        None => (entry.key.as_str(), None),
    };
    let ip: std::net::IpAddr = address.parse().map_err(|_| ImportError::Syntax {
        file: FILE.to_string(),
        line: entry.line,
        what: format!("{address} is not an IP address"),
    })?;
    // keepalived adds an address without a prefix as a host address.
    let prefix = match prefix {
        Some(p) => p.to_string(),
        None if ip.is_ipv4() => "32".to_string(),
        None => "128".to_string(),
    };
    let mut dev = None;
    let mut label = None;
    let mut rest = entry.args.iter();
    let mut ignored = Vec::new();
    while let Some(word) = rest.next() {
        match word.as_str() {
            "dev" => dev = rest.next().cloned(),
            "label" => label = rest.next().cloned(),
            other => ignored.push(other.to_string()),
        }
    }
    if !ignored.is_empty() {
        notes.push(note(
            entry.line,
            &construct,
            &format!(
                "{} not translated: failoverd adds the address with its prefix, on its \
                 interface, with its label",
                ignored.join(" ")
            ),
        ));
    }
    let interface = match dev.or(interface.map(str::to_string)) {
        Some(dev) => Known::Value(dev),
        None => Known::Missing(format!("the interface for {address}")),
    };
    Ok(PlanVip {
        address: Known::Value(format!("{address}/{prefix}")),
        interface,
        label,
        source: format!("{FILE}:{} {construct}", entry.line),
    })
}

/// The `[[check]]`s: one per tracked script and per tracked interface.
fn plan_checks(
    read: &Instance,
    statements: &[Statement],
    used: &mut Vec<String>,
    notes: &mut Vec<Note>,
) -> Vec<PlanCheck> {
    let mut checks = Vec::new();
    let weight_note = |line: usize, construct: &str, notes: &mut Vec<Note>| {
        notes.push(note(
            line,
            construct,
            "keepalived adds a weight to the priority; failoverd counts the weights of the \
             failing checks and the node that fails less wins, whatever the priorities: \
             the weight is kept (at most 100) but the arithmetic differs",
        ));
    };
    for (name, weight_override, line) in &read.track_scripts {
        let Some(script) = statements
            .iter()
            .find(|s| s.key == "vrrp_script" && s.args.first() == Some(name))
        else {
            notes.push(note(
                *line,
                name,
                "track_script names no vrrp_script: not translated",
            ));
            continue;
        };
        used.push(name.clone());
        let mut command = None;
        let mut interval = DEFAULT_ADVERT;
        let mut timeout = None;
        let mut rise = 1;
        let mut fall = 1;
        let mut weight = 0;
        for s in script.block() {
            let value = s.args.first().map(String::as_str).unwrap_or_default();
            match s.key.as_str() {
                "script" => command = Some(s.args.join(" ")),
                "interval" => {
                    interval = value
                        .parse::<f64>()
                        .ok()
                        .and_then(seconds)
                        .filter(|v| !v.is_zero())
                        .unwrap_or(interval)
                }
                "timeout" => {
                    timeout = value
                        .parse::<f64>()
                        .ok()
                        .and_then(seconds)
                        .filter(|v| !v.is_zero())
                }
                "rise" => rise = value.parse().unwrap_or(rise).max(1),
                "fall" => fall = value.parse().unwrap_or(fall).max(1),
                "weight" => weight = value.parse().unwrap_or(0),
                _ => notes.push(note(
                    s.line,
                    &s.construct(),
                    "not translated: see [hooks] user for the user checks run as",
                )),
            }
        }
        let Some(command) = command else {
            notes.push(note(
                script.line,
                &script.construct(),
                "no script: not translated",
            ));
            continue;
        };
        let weight = weight_override.unwrap_or(weight);
        if weight != 0 {
            weight_note(script.line, &script.construct(), notes);
        }
        if timeout.is_some_and(|t| t > interval) {
            notes.push(note(
                script.line,
                &script.construct(),
                "the timeout is longer than the interval: failoverd allows at most the \
                 interval, so the timeout is the interval",
            ));
            timeout = Some(interval);
        }
        checks.push(PlanCheck {
            name: check_name(name),
            source: format!("{FILE}:{} vrrp_script {name}: {command}", script.line),
            kind: PlanProbe::Exec(exec_command(&command)),
            interval: Some(interval),
            timeout,
            rise: Some(rise),
            fall: Some(fall),
            weight: (weight != 0).then(|| weight.unsigned_abs().min(100) as u32),
        });
    }
    for (interface, weight, line) in &read.track_interfaces {
        let weight = weight.unwrap_or(0);
        if weight != 0 {
            weight_note(*line, &format!("track_interface {interface}"), notes);
        }
        checks.push(PlanCheck {
            name: check_name(&format!("track-{interface}")),
            source: format!("{FILE}:{line} track_interface {interface}"),
            kind: PlanProbe::Link(interface.clone()),
            interval: None,
            timeout: None,
            rise: Some(1),
            fall: Some(1),
            weight: (weight != 0).then(|| weight.unsigned_abs().min(100) as u32),
        });
    }
    checks
}

/// A check name failoverd accepts: letters, digits, `-`, `_` and `.`, at most 64
/// bytes, and not one of the names `[health]` makes.
fn check_name(name: &str) -> String {
    let mut clean: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "-_.".contains(c) {
                c
            } else {
                '_'
            }
        })
        .take(56)
        .collect();
    if clean.is_empty()
        || clean.starts_with("gateway-")
        || clean.starts_with("link-")
        || crate::config::BUILTIN_CHECKS.contains(&clean.as_str())
    {
        clean = format!("script-{clean}");
    }
    clean
}

/// A script as failoverd runs it: its words, when it is one absolute program with
/// plain arguments; else through /bin/sh, which finds programs on PATH as keepalived
/// did.
fn exec_command(script: &str) -> Vec<String> {
    let words: Vec<&str> = script.split_whitespace().collect();
    let plain = words.first().is_some_and(|w| w.starts_with('/'))
        && !script.contains(|c: char| "|&;<>()$`\\\"'*?[]#~=%!{}".contains(c));
    if plain {
        words.iter().map(|w| w.to_string()).collect()
    } else {
        vec!["/bin/sh".to_string(), "-c".to_string(), script.to_string()]
    }
}

/// The hook that runs the notify scripts, and which failoverd hooks it is.
fn notify_hook(read: &Instance, instance: &Statement, this: &str) -> (Vec<Hook>, PlanHooks) {
    let mut plan = PlanHooks::default();
    if read.notify.is_empty() {
        return (Vec::new(), plan);
    }
    let path = format!("{HOOK_DIR}/{HOOK_NAME}");
    let mut text = format!(
        r#"#!/usr/bin/env bash
# failoverd hook, made by `failoverd import keepalived` from the notify scripts of
# vrrp_instance {name} ({FILE}) on {this}. keepalived ran them on its state changes;
# failoverd runs this hook on the matching role changes:
#   start    becoming active (MASTER): notify_master, notify ... MASTER
#   standby  entering standby (BACKUP): notify_backup, notify ... BACKUP
#   fault    entering fault (FAULT): notify_fault, notify ... FAULT
#   stop     leaving active, and when failoverd stops: notify_stop, notify ... STOP
# keepalived did not act on what they returned: each command here runs whatever the
# one before it returned, and the configuration sets start_failure = "ignore".
set -u
case "${{FAILOVERD_HOOK:-}}" in
"#,
        name = names_of(instance),
    );
    for hook in ["start", "standby", "fault", "stop"] {
        let commands: Vec<_> = read.notify.iter().filter(|(h, ..)| *h == hook).collect();
        if commands.is_empty() {
            continue;
        }
        text.push_str(&format!("{hook})\n"));
        for (_, command, key, line) in commands {
            text.push_str(&format!("    # {FILE}:{line} {key}\n    {command}\n"));
        }
        text.push_str("    ;;\n");
        let slot = match hook {
            "start" => &mut plan.start,
            "standby" => &mut plan.standby,
            "fault" => &mut plan.fault,
            _ => &mut plan.stop,
        };
        *slot = Some(path.clone());
    }
    text.push_str(
        r#"*)
    echo "unexpected hook ${FAILOVERD_HOOK:-(none)}" >&2
    exit 2
    ;;
esac
"#,
    );
    plan.start_failure_ignore = plan.start.is_some();
    (
        vec![Hook {
            name: HOOK_NAME.to_string(),
            text,
        }],
        plan,
    )
}

#[cfg(test)]
mod tests {
    use super::super::{FILL_IN, placeholders};
    use super::*;

    const CONF: &str = r#"! Configuration File for keepalived
global_defs {
   notification_email {
     admin@example.com
   }
   router_id LB1
}

vrrp_script chk_haproxy {
    script "killall -0 haproxy"   # cheap
    interval 2
    timeout 1
    fall 3
    rise 2
    weight -20
}

vrrp_instance VI_1 {
    state MASTER
    interface eth0
    virtual_router_id 51
    priority 150
    advert_int 1
    nopreempt
    authentication {
        auth_type PASS
        auth_pass s3cret
    }
    unicast_src_ip 192.168.1.11
    unicast_peer {
        192.168.1.12
    }
    virtual_ipaddress {
        192.168.1.100/24 dev eth0 label eth0:vip
        192.168.1.101
    }
    track_interface {
        eth1
    }
    track_script {
        chk_haproxy
    }
    notify_master "/etc/keepalived/master.sh up"
    notify_backup /etc/keepalived/backup.sh
    notify "/etc/keepalived/notify.sh"
}

vrrp_instance VI_2
{
    interface eth1
    virtual_router_id 52
    virtual_ipaddress { 10.0.0.100/24 }
}
"#;

    fn line_of(text: &str, needle: &str) -> usize {
        text.lines().position(|l| l.contains(needle)).unwrap() + 1
    }

    fn config_of(t: &Translation) -> toml::Table {
        t.config.parse().expect(&t.config)
    }

    fn notes_at(t: &Translation, line: usize) -> Vec<&Note> {
        t.notes.iter().filter(|n| n.line == Some(line)).collect()
    }

    #[test]
    fn the_grammar_takes_braces_quotes_and_comments() {
        let statements = parse(CONF).unwrap();
        let keys: Vec<&str> = statements.iter().map(|s| s.key.as_str()).collect();
        assert_eq!(
            keys,
            [
                "global_defs",
                "vrrp_script",
                "vrrp_instance",
                "vrrp_instance"
            ]
        );
        let script = &statements[1].block()[0];
        assert_eq!(script.key, "script");
        assert_eq!(script.args, ["killall -0 haproxy"]);
        // The block opened on the line after its keyword, and one on a single line.
        let vi2 = &statements[3];
        assert_eq!(vi2.args, ["VI_2"]);
        let vips = &vi2.block()[2];
        assert_eq!(vips.block()[0].key, "10.0.0.100/24");
        assert!(matches!(
            parse("a {\n b\n"),
            Err(ImportError::Syntax { line: 1, .. })
        ));
        assert!(matches!(parse("}\n"), Err(ImportError::Syntax { .. })));
        assert!(matches!(
            parse("script \"open\n"),
            Err(ImportError::Syntax { .. })
        ));
    }

    #[test]
    fn the_first_instance_becomes_the_configuration() {
        let t = translate(CONF, &Options::default()).unwrap();
        let config = config_of(&t);
        assert_eq!(config["cluster"]["name"].as_str(), Some("VI_1"));
        assert_eq!(config["cluster"]["failback"].as_str(), Some("manual"));
        assert_eq!(config["link"][0]["name"].as_str(), Some("eth0"));
        let this = &config["node"][0];
        assert_eq!(this["name"].as_str(), Some("node1"));
        assert_eq!(this["priority"].as_integer(), Some(150));
        assert_eq!(this["addresses"]["eth0"].as_str(), Some("192.168.1.11"));
        let peer = &config["node"][1];
        assert_eq!(peer["addresses"]["eth0"].as_str(), Some("192.168.1.12"));
        assert!(peer["priority"].as_str().unwrap().starts_with(FILL_IN));
        assert_eq!(placeholders(&t.config), 1, "{}", t.config);
        let timing = config["timing"].as_table().unwrap();
        assert_eq!(timing["interval"].as_str(), Some("1s"));
        assert_eq!(timing["dead"].as_str(), Some("3s"));
        assert_eq!(t.key, KeySource::Generate);
    }

    #[test]
    fn vips_take_their_prefix_device_and_label() {
        let t = translate(CONF, &Options::default()).unwrap();
        let config = config_of(&t);
        let vip = &config["vip"][0];
        assert_eq!(vip["address"].as_str(), Some("192.168.1.100/24"));
        assert_eq!(vip["interface"].as_str(), Some("eth0"));
        assert_eq!(vip["label"].as_str(), Some("eth0:vip"));
        // No prefix: keepalived adds a host address.
        assert_eq!(
            config["vip"][1]["address"].as_str(),
            Some("192.168.1.101/32")
        );
        assert_eq!(config["vip"][1]["interface"].as_str(), Some("eth0"));
        let t = translate(
            "vrrp_instance A {\n interface eth0\n virtual_ipaddress {\n  10.0.0.1/24 brd 10.0.0.255 dev eth2 scope global\n }\n}\n",
            &Options::default(),
        )
        .unwrap();
        assert_eq!(config_of(&t)["vip"][0]["interface"].as_str(), Some("eth2"));
        assert_eq!(notes_at(&t, 4).len(), 1, "{:#?}", t.notes);
    }

    #[test]
    fn tracked_scripts_and_interfaces_become_checks() {
        let t = translate(CONF, &Options::default()).unwrap();
        let config = config_of(&t);
        let script = &config["check"][0];
        assert_eq!(script["name"].as_str(), Some("chk_haproxy"));
        assert_eq!(script["kind"].as_str(), Some("exec"));
        let command: Vec<&str> = script["command"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w.as_str().unwrap())
            .collect();
        assert_eq!(command, ["/bin/sh", "-c", "killall -0 haproxy"]);
        assert_eq!(script["interval"].as_str(), Some("2s"));
        assert_eq!(script["timeout"].as_str(), Some("1s"));
        assert_eq!(script["fall"].as_integer(), Some(3));
        assert_eq!(script["rise"].as_integer(), Some(2));
        assert_eq!(script["weight"].as_integer(), Some(20));
        let link = &config["check"][1];
        assert_eq!(link["kind"].as_str(), Some("link"));
        assert_eq!(link["interface"].as_str(), Some("eth1"));
        assert_eq!(link["fatal"].as_bool(), Some(true));
        // The weight's different meaning is noted at the vrrp_script.
        assert_eq!(notes_at(&t, line_of(CONF, "vrrp_script")).len(), 1);
    }

    #[test]
    fn an_absolute_plain_script_runs_without_a_shell() {
        assert_eq!(
            exec_command("/usr/bin/pgrep -x haproxy"),
            ["/usr/bin/pgrep", "-x", "haproxy"]
        );
        assert_eq!(exec_command("pidof haproxy")[0], "/bin/sh");
        assert_eq!(exec_command("/bin/check > /dev/null")[0], "/bin/sh");
        assert_eq!(check_name("link-eth0"), "script-link-eth0");
        assert_eq!(check_name("chk web"), "chk_web");
    }

    #[test]
    fn a_track_script_weight_overrides_the_scripts_and_a_missing_script_is_noted() {
        let conf = "vrrp_script s {\n script \"/bin/true\"\n weight 10\n}\nvrrp_instance A {\n interface eth0\n track_script {\n  s weight -5\n  nowhere\n }\n}\n";
        let t = translate(conf, &Options::default()).unwrap();
        let config = config_of(&t);
        assert_eq!(config["check"][0]["weight"].as_integer(), Some(5));
        assert_eq!(config["check"].as_array().unwrap().len(), 1);
        assert_eq!(notes_at(&t, 9).len(), 1, "{:#?}", t.notes);
    }

    #[test]
    fn notify_scripts_become_one_hook() {
        let t = translate(CONF, &Options::default()).unwrap();
        let config = config_of(&t);
        let path = "hooks/keepalived-notify.sh";
        assert_eq!(config["hooks"]["start"].as_str(), Some(path));
        assert_eq!(config["hooks"]["standby"].as_str(), Some(path));
        assert_eq!(config["hooks"]["fault"].as_str(), Some(path));
        assert_eq!(config["hooks"]["stop"].as_str(), Some(path));
        assert_eq!(config["hooks"]["start_failure"].as_str(), Some("ignore"));
        let hook = &t.hooks[0].text;
        let start = hook.find("start)").unwrap();
        let master = hook.find("/etc/keepalived/master.sh up").unwrap();
        let generic = hook
            .find("/etc/keepalived/notify.sh INSTANCE VI_1 MASTER 150")
            .unwrap();
        let standby = hook.find("standby)").unwrap();
        assert!(
            start < master && master < generic && generic < standby,
            "{hook}"
        );
        assert!(hook.contains("/etc/keepalived/backup.sh"), "{hook}");
        assert!(hook.contains("notify.sh INSTANCE VI_1 FAULT 150"), "{hook}");
    }

    #[test]
    fn other_instances_global_defs_and_authentication_are_noted() {
        let t = translate(CONF, &Options::default()).unwrap();
        let vi2 = notes_at(&t, line_of(CONF, "vrrp_instance VI_2"));
        assert_eq!(vi2.len(), 1, "{:#?}", t.notes);
        assert!(vi2[0].advice.contains("no VIP groups"), "{}", vi2[0]);
        assert!(vi2[0].advice.contains("--instance VI_2"), "{}", vi2[0]);
        for needle in [
            "notification_email {",
            "router_id",
            "state MASTER",
            "authentication",
        ] {
            assert_eq!(
                notes_at(&t, line_of(CONF, needle)).len(),
                1,
                "{needle}: {:#?}",
                t.notes
            );
        }
    }

    #[test]
    fn instance_and_names_come_from_flags() {
        let options = Options {
            instance: Some("VI_2".to_string()),
            this_node: Some("lb1".to_string()),
            peers: vec!["lb2".to_string()],
            priorities: vec![("lb2".to_string(), 90)],
            addresses: vec![
                "lb1=198.18.0.11".parse().unwrap(),
                "lb2=198.18.0.12".parse().unwrap(),
            ],
            ..Options::default()
        };
        let t = translate(CONF, &options).unwrap();
        let config = config_of(&t);
        assert_eq!(config["cluster"]["name"].as_str(), Some("VI_2"));
        assert_eq!(config["cluster"]["failback"].as_str(), Some("auto"));
        assert_eq!(config["node"][0]["name"].as_str(), Some("lb1"));
        assert_eq!(config["node"][0]["priority"].as_integer(), Some(100));
        assert_eq!(config["node"][1]["priority"].as_integer(), Some(90));
        assert_eq!(config["vip"][0]["interface"].as_str(), Some("eth1"));
        assert_eq!(placeholders(&t.config), 0, "{}", t.config);
        // VI_1 is now the one left out.
        assert_eq!(notes_at(&t, line_of(CONF, "vrrp_instance VI_1")).len(), 1);
        let options = Options {
            instance: Some("VI_9".to_string()),
            ..Options::default()
        };
        assert!(matches!(
            translate(CONF, &options),
            Err(ImportError::Flag { .. })
        ));
    }

    #[test]
    fn a_time_beyond_a_day_is_an_error_not_an_overflow() {
        let err = translate(
            "vrrp_instance A {\n advert_int 1e19\n}\n",
            &Options::default(),
        );
        assert!(
            matches!(err, Err(ImportError::Syntax { line: 2, .. })),
            "{err:?}"
        );
    }

    #[test]
    fn preempt_delay_is_the_failback_delay_and_includes_are_noted() {
        let t = translate(
            "include /etc/keepalived/conf.d/*.conf\nvrrp_instance A {\n interface eth0\n preempt_delay 45\n advert_int 0.5\n}\n",
            &Options::default(),
        )
        .unwrap();
        let config = config_of(&t);
        assert_eq!(config["cluster"]["failback"].as_str(), Some("auto"));
        assert_eq!(config["cluster"]["failback_delay"].as_str(), Some("45s"));
        assert_eq!(config["timing"]["interval"].as_str(), Some("500ms"));
        assert_eq!(notes_at(&t, 1).len(), 1);
        assert!(notes_at(&t, 1)[0].advice.contains("not followed"));
        assert!(translate("global_defs {\n}\n", &Options::default()).is_err());
    }
}
