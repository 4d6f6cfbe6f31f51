//! The second pass for the `[[check]]` tables: each one converted into a typed
//! [`Check`], every broken rule a [`Problem`](crate::config::Problem) keyed like
//! `check[2].url`.
//!
//! A child of `checks` so that it shares its `Checker` (the problems, their lines, the
//! helpers for required keys and durations) without opening it to the rest of the
//! crate; a file of its own because a check has more rules than any other table (a
//! kind and the keys that go with it, a URL, a program that runs as root, a scope)
//! and `checks.rs` is long enough without them. The types are `config/check.rs`';
//! running the checks is the shell's.

use std::net::{Ipv6Addr, SocketAddr};
use std::ops::RangeInclusive;
use std::path::Path;
use std::time::Duration;

use super::{Checker, interface_name_problem, ping_target, pinged_self};
use crate::config::check::shorthand;
use crate::config::raw::{RawCheck, RawStatus};
use crate::config::{
    BUILTIN_CHECKS, Check, Health, HttpUrl, MAX_HTTP_BODY, MAX_NAME_LEN, MIN_INTERVAL, Node, Probe,
    Scope, Vip,
};
use crate::duration::{format_duration, parse_duration};

const DEFAULT_INTERVAL: Duration = Duration::from_secs(1);
/// Both `rise` and `fall`: one lost probe neither fails a check nor restores it.
const DEFAULT_RISE_FALL: u32 = 2;
const DEFAULT_WEIGHT: u32 = 1;
const MAX_WEIGHT: u32 = 100;
const DEFAULT_START_GRACE: Duration = Duration::from_secs(10);
const DEFAULT_STATUS: RangeInclusive<u16> = 200..=399;
const HTTP_STATUS: RangeInclusive<u16> = 100..=599;
const URL_EXAMPLE: &str = "http://127.0.0.1:8080/health";

/// What a check looks at, as `kind` names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Exec,
    Tcp,
    Http,
    Ping,
    Link,
}

impl Kind {
    const ALL: [Kind; 5] = [Kind::Exec, Kind::Tcp, Kind::Http, Kind::Ping, Kind::Link];

    fn parse(text: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|kind| kind.name() == text)
    }

    fn name(self) -> &'static str {
        match self {
            Kind::Exec => "exec",
            Kind::Tcp => "tcp",
            Kind::Http => "http",
            Kind::Ping => "ping",
            Kind::Link => "link",
        }
    }
}

/// The keys that belong to one kind of check each.
struct ProbeKeys {
    url: Option<String>,
    expect_status: Option<RawStatus>,
    expect_body: Option<String>,
    command: Option<Vec<String>>,
    address: Option<String>,
    target: Option<String>,
    interface: Option<String>,
}

impl Checker {
    /// The `[[check]]` tables in file order. `nodes`, `vips` and `health` give the
    /// names the `[health]` shorthand takes on each node, which no table may take;
    /// `nodes`, `vips` and `links` the addresses a ping check must not ping.
    pub(super) fn checks(
        &mut self,
        raw: Vec<RawCheck>,
        base: &Path,
        (nodes, links): (&[Node], &[String]),
        vips: &[Vip],
        health: &Health,
    ) -> Vec<Check> {
        let taken: Vec<(&str, Check)> = nodes
            .iter()
            .flat_map(|node| {
                let name = node.name.as_str();
                shorthand(health, vips, node)
                    .into_iter()
                    .map(move |check| (name, check))
            })
            .collect();
        let mut names: Vec<String> = Vec::new();
        let mut checks = Vec::new();
        for (i, raw) in raw.into_iter().enumerate() {
            let prefix = format!("check[{i}]");
            if let Some(name) = &raw.name {
                let key = format!("{prefix}.name");
                self.check_name(&key, name);
                if names.contains(name) {
                    self.problem(&key, format!("check \"{name}\" is declared twice"));
                } else if let Some((node, check)) = taken.iter().find(|(_, c)| &c.name == name) {
                    self.problem(
                        &key,
                        format!(
                            "\"{name}\" is the name of a check that [health] makes ({} on \
                             node \"{node}\"); choose another",
                            check.probe
                        ),
                    );
                }
                names.push(name.clone());
            }
            let Some(check) = self.check(&prefix, raw, base) else {
                continue;
            };
            if let Probe::Ping { target } = check.probe
                && let Some(why) = pinged_self(target, vips, nodes, links)
            {
                self.problem(format!("{prefix}.target"), why);
            }
            checks.push(check);
        }
        checks
    }

    /// What a name may look like; uniqueness is the caller's.
    fn check_name(&mut self, key: &str, name: &str) {
        let allowed = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.');
        if name.is_empty() || name.len() > MAX_NAME_LEN {
            self.problem(key, format!("must be 1 to {MAX_NAME_LEN} bytes long"));
        } else if !name.bytes().all(allowed) {
            self.problem(
                key,
                format!("\"{name}\" may hold only letters, digits, '-', '_' and '.'"),
            );
        } else if BUILTIN_CHECKS.contains(&name) {
            self.problem(
                key,
                format!(
                    "\"{name}\" is the name of a built-in check ({})",
                    BUILTIN_CHECKS.join(", ")
                ),
            );
        }
    }

    /// One table; `None` when a problem leaves nothing to build.
    fn check(&mut self, prefix: &str, raw: RawCheck, base: &Path) -> Option<Check> {
        let key = |name: &str| format!("{prefix}.{name}");
        let RawCheck {
            name,
            kind,
            url,
            expect_status,
            expect_body,
            command,
            address,
            target,
            interface,
            interval,
            timeout,
            rise,
            fall,
            weight,
            fatal,
            on,
            start_grace,
            failure_timeout,
        } = raw;
        let name = self.required(&key("name"), name);
        let kind = self
            .required(&key("kind"), kind)
            .and_then(|text| self.kind(&key("kind"), &text));
        let probe_keys = ProbeKeys {
            url,
            expect_status,
            expect_body,
            command,
            address,
            target,
            interface,
        };
        let probe = kind.and_then(|kind| self.probe(prefix, kind, probe_keys, base));

        let interval = self.duration(&key("interval"), interval.as_deref(), DEFAULT_INTERVAL);
        if interval < MIN_INTERVAL {
            self.problem(
                key("interval"),
                format!("must be at least {}", format_duration(MIN_INTERVAL)),
            );
        }
        let timeout = self.duration(&key("timeout"), timeout.as_deref(), interval);
        if timeout.is_zero() || timeout > interval {
            self.problem(
                key("timeout"),
                format!(
                    "{} must be positive and at most interval ({})",
                    format_duration(timeout),
                    format_duration(interval)
                ),
            );
        }
        let mut at_least_one = |name: &str, value: Option<u32>| {
            let value = value.unwrap_or(DEFAULT_RISE_FALL);
            if value == 0 {
                self.problem(key(name), "must be at least 1");
            }
            value
        };
        let rise = at_least_one("rise", rise);
        let fall = at_least_one("fall", fall);

        let fatal = fatal.unwrap_or(false);
        if let Some(weight) = weight {
            if weight > MAX_WEIGHT {
                self.problem(key("weight"), format!("must be between 0 and {MAX_WEIGHT}"));
            } else if fatal {
                self.problem(
                    key("weight"),
                    "cannot go with fatal = true: a failing fatal check makes the node \
                     unfit whatever the weight; remove one of the two",
                );
            }
        }
        // At most MAX_WEIGHT, which fits a u8.
        let weight = weight.unwrap_or(DEFAULT_WEIGHT).min(MAX_WEIGHT) as u8;

        let (on, start_grace, failure_timeout) =
            self.scope(prefix, on, start_grace, failure_timeout)?;
        Some(Check {
            name: name?,
            probe: probe?,
            interval,
            timeout,
            rise,
            fall,
            weight,
            fatal,
            on,
            start_grace,
            failure_timeout,
        })
    }

    fn kind(&mut self, key: &str, text: &str) -> Option<Kind> {
        let kind = Kind::parse(text);
        if kind.is_none() {
            let kinds: Vec<String> = Kind::ALL
                .iter()
                .map(|k| format!("\"{}\"", k.name()))
                .collect();
            let kinds = kinds.join(", ");
            self.problem(key, format!("\"{text}\" is not one of {kinds}"));
        }
        kind
    }

    /// The keys of one kind: those of the others are problems, each naming its kind.
    fn probe(&mut self, prefix: &str, kind: Kind, keys: ProbeKeys, base: &Path) -> Option<Probe> {
        let key = |name: &str| format!("{prefix}.{name}");
        let owned = [
            ("url", keys.url.is_some(), Kind::Http),
            ("expect_status", keys.expect_status.is_some(), Kind::Http),
            ("expect_body", keys.expect_body.is_some(), Kind::Http),
            ("command", keys.command.is_some(), Kind::Exec),
            ("address", keys.address.is_some(), Kind::Tcp),
            ("target", keys.target.is_some(), Kind::Ping),
            ("interface", keys.interface.is_some(), Kind::Link),
        ];
        for (name, present, owner) in owned {
            if present && owner != kind {
                self.problem(
                    key(name),
                    format!(
                        "is for kind = \"{}\" checks; this one is kind = \"{}\"",
                        owner.name(),
                        kind.name()
                    ),
                );
            }
        }
        let mut missing = |name: &str| {
            // Unless the first pass dropped it for its type.
            if !self.reported(&key(name)) {
                let message = format!("is required for kind = \"{}\"", kind.name());
                self.problem(key(name), message);
            }
        };
        match kind {
            Kind::Exec => {
                let Some(command) = keys.command else {
                    missing("command");
                    return None;
                };
                self.exec_probe(&key("command"), command, base)
            }
            Kind::Tcp => {
                let Some(address) = keys.address else {
                    missing("address");
                    return None;
                };
                self.tcp_probe(&key("address"), &address)
            }
            Kind::Http => {
                if keys.url.is_none() {
                    missing("url");
                }
                self.http_probe(prefix, keys.url, keys.expect_status, keys.expect_body)
            }
            Kind::Ping => {
                let Some(text) = keys.target else {
                    missing("target");
                    return None;
                };
                match ping_target(&text) {
                    Ok(target) => Some(Probe::Ping { target }),
                    Err(message) => {
                        self.problem(key("target"), message);
                        None
                    }
                }
            }
            Kind::Link => {
                let Some(interface) = keys.interface else {
                    missing("interface");
                    return None;
                };
                if let Some(why) = interface_name_problem(&interface) {
                    self.problem(key("interface"), why);
                    return None;
                }
                Some(Probe::Link { interface })
            }
        }
    }

    /// `on`, and the two keys that only `on = "active"` takes: the scope, the start
    /// grace and the failure timeout, or `None` when `on` is not a scope.
    fn scope(
        &mut self,
        prefix: &str,
        on: Option<String>,
        start_grace: Option<String>,
        failure_timeout: Option<String>,
    ) -> Option<(Scope, Duration, Option<Duration>)> {
        let key = |name: &str| format!("{prefix}.{name}");
        match on.as_deref() {
            Some("active") => Some((
                Scope::Active,
                self.duration(
                    &key("start_grace"),
                    start_grace.as_deref(),
                    DEFAULT_START_GRACE,
                ),
                self.failure_timeout(&key("failure_timeout"), failure_timeout.as_deref()),
            )),
            None | Some("both") => {
                for (name, present) in [
                    ("start_grace", start_grace.is_some()),
                    ("failure_timeout", failure_timeout.is_some()),
                ] {
                    if present {
                        self.problem(
                            key(name),
                            "is for on = \"active\" checks only; this one is on = \"both\"",
                        );
                    }
                }
                Some((Scope::Both, Duration::ZERO, None))
            }
            Some(other) => {
                self.problem(
                    key("on"),
                    format!("\"{other}\" is not one of \"both\", \"active\""),
                );
                None
            }
        }
    }

    /// `failure_timeout`: a duration, or "never" (as when it is left out).
    fn failure_timeout(&mut self, key: &str, text: Option<&str>) -> Option<Duration> {
        match text? {
            "never" => None,
            text => match parse_duration(text) {
                Ok(duration) => Some(duration),
                Err(message) => {
                    self.problem(key, format!("{message}; or \"never\""));
                    None
                }
            },
        }
    }

    /// `command`: the program must be one that only root can change, since failoverd
    /// runs it every interval (see `files`).
    fn exec_probe(&mut self, key: &str, mut command: Vec<String>, base: &Path) -> Option<Probe> {
        let Some(program) = command.first().filter(|p| !p.is_empty()) else {
            self.problem(
                key,
                "must name a program and its arguments, e.g. [\"/usr/bin/pg_isready\", \"-q\"]",
            );
            return None;
        };
        let program_key = format!("{key}[0]");
        let path = base.join(program);
        let hint = if program.contains('/') {
            ""
        } else {
            " (there is no search of PATH: a relative path is taken from the configuration \
             file's directory)"
        };
        if !self.program(&program_key, &path, hint) {
            return None;
        }
        let Some(path) = path.to_str() else {
            self.problem(program_key, format!("{} is not UTF-8", path.display()));
            return None;
        };
        command[0] = path.to_string();
        Some(Probe::Exec { command })
    }

    fn tcp_probe(&mut self, key: &str, text: &str) -> Option<Probe> {
        match text.parse::<SocketAddr>() {
            Ok(address) if address.port() == 0 => {
                self.problem(key, format!("{address}: the port must not be 0"));
                None
            }
            Ok(address) => Some(Probe::Tcp { address }),
            Err(_) => {
                self.problem(
                    key,
                    format!(
                        "\"{text}\" is not an address:port such as \"127.0.0.1:5432\" or \
                         \"[::1]:5432\""
                    ),
                );
                None
            }
        }
    }

    /// The keys of an http check; `url` has been reported already when missing.
    fn http_probe(
        &mut self,
        prefix: &str,
        url: Option<String>,
        status: Option<RawStatus>,
        body: Option<String>,
    ) -> Option<Probe> {
        let url = url.and_then(|text| match parse_http_url(&text) {
            Ok(url) => Some(url),
            Err(message) => {
                self.problem(format!("{prefix}.url"), message);
                None
            }
        });
        let status = match status {
            None => DEFAULT_STATUS,
            Some(RawStatus(text)) => parse_status(&text).unwrap_or_else(|message| {
                self.problem(format!("{prefix}.expect_status"), message);
                DEFAULT_STATUS
            }),
        };
        if let Some(body) = &body {
            let key = format!("{prefix}.expect_body");
            if body.is_empty() {
                self.problem(key, "is empty; leave it out to check the status alone");
            } else if body.len() > MAX_HTTP_BODY {
                self.problem(
                    key,
                    format!(
                        "is {} bytes long, and only the first {MAX_HTTP_BODY} bytes of the \
                         body are read",
                        body.len()
                    ),
                );
            }
        }
        Some(Probe::Http {
            url: url?,
            status,
            body,
        })
    }
}

/// A plain `http://` URL: host (a name, an IPv4 address or an IPv6 one in brackets),
/// port (default 80), path and query (default "/"). The fragment is dropped: it is
/// never sent.
fn parse_http_url(text: &str) -> Result<HttpUrl, String> {
    let not_a_url = || format!("\"{text}\" is not a plain http:// URL such as \"{URL_EXAMPLE}\"");
    let (scheme, rest) = text.split_once("://").ok_or_else(not_a_url)?;
    match scheme.to_ascii_lowercase().as_str() {
        "http" => {}
        "https" => {
            return Err(format!(
                "https is not supported: check the service's plain local port (e.g. \
                 \"{URL_EXAMPLE}\"), or use an exec check with curl"
            ));
        }
        _ => return Err(not_a_url()),
    }
    let end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(end);
    let tail = tail.split('#').next().unwrap_or_default();
    let path = match tail.strip_prefix('/') {
        Some(_) => tail.to_string(),
        None => format!("/{tail}"),
    };
    // The path goes into the request line as it is.
    if path.contains(|c: char| c.is_whitespace() || c.is_control()) {
        return Err(format!(
            "\"{text}\": the path must not hold spaces or control characters (percent-encode \
             them)"
        ));
    }
    if authority.contains('@') {
        return Err(format!(
            "\"{text}\": a user name or password in the URL is not supported"
        ));
    }
    let (host, port) = match authority.strip_prefix('[') {
        Some(bracketed) => {
            let Some((address, after)) = bracketed.split_once(']') else {
                return Err(format!("\"{text}\": the IPv6 address lacks its \"]\""));
            };
            if address.parse::<Ipv6Addr>().is_err() {
                return Err(format!("\"{address}\" is not an IPv6 address"));
            }
            let port = match after {
                "" => None,
                after => Some(after.strip_prefix(':').ok_or_else(not_a_url)?),
            };
            (format!("[{address}]"), port)
        }
        None => {
            let (host, port) = match authority.split_once(':') {
                Some((_, port)) if port.contains(':') => {
                    return Err(format!(
                        "\"{text}\": an IPv6 address goes in brackets, e.g. \
                         \"http://[::1]:8080/health\""
                    ));
                }
                Some((host, port)) => (host, Some(port)),
                None => (authority, None),
            };
            let allowed = |b: u8| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_');
            if host.is_empty() || !host.bytes().all(allowed) {
                return Err(format!("\"{host}\" is not a host name or an IP address"));
            }
            (host.to_string(), port)
        }
    };
    let port = match port {
        None => 80,
        Some(text) => match text.parse::<u16>() {
            Ok(port) if port != 0 => port,
            _ => return Err(format!("\"{text}\" is not a port (1 to 65535)")),
        },
    };
    Ok(HttpUrl { host, port, path })
}

/// `expect_status`: a code, "200", or a range, "200-399", within 100 to 599.
fn parse_status(text: &str) -> Result<RangeInclusive<u16>, String> {
    let wrong = || {
        format!(
            "\"{text}\" is not a status code (100 to 599) or a range of them such as \
             \"200-399\""
        )
    };
    let code = |part: &str| match part.trim().parse::<u16>() {
        Ok(code) if HTTP_STATUS.contains(&code) => Ok(code),
        _ => Err(wrong()),
    };
    let (low, high) = match text.split_once('-') {
        Some((low, high)) => (code(low)?, code(high)?),
        None => {
            let code = code(text)?;
            (code, code)
        }
    };
    if low > high {
        return Err(format!(
            "\"{text}\" is an empty range: write the lower code first"
        ));
    }
    Ok(low..=high)
}

/// What Linux accepts as an interface name (`dev_valid_name`).
#[cfg(test)]
mod tests;
