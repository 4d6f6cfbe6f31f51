//! The metrics of a status snapshot, as text: Prometheus' exposition format 0.0.4, or
//! OpenMetrics 1.0 for a scraper that asks for it.
//!
//! Written here rather than through a metrics library: for gauges and counters of
//! one snapshot, both formats are a `# HELP` and a `# TYPE` line per family and one
//! `name{label="value"} number` line per sample, and a library would bring its
//! registry, its traits and its dependencies into the daemon for that. The formats
//! differ in three places, all in `Exposition::family` and `Exposition::finish`:
//! OpenMetrics names a counter's family without the `_total` that its samples carry,
//! states a family's unit in a `# UNIT` line, and ends with `# EOF`.

use std::collections::HashSet;
use std::fmt::{self, Write as _};

use crate::machine::event::Role;
use crate::status::{CheckState, HookRun, Status};

/// Every metric's name starts with this.
const PREFIX: &str = "failoverd_";
/// The longest `line` label of `check_last_output_info`, in bytes; the daemon's
/// details are shorter still.
const MAX_OUTPUT_LABEL: usize = 200;
/// The states of [`Status::state`], in the order the `state` metric lists them.
const STATES: [Role; 5] = [
    Role::Starting,
    Role::Standby,
    Role::Active,
    Role::Fault,
    Role::Witness,
];

/// A text format for the metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Format {
    /// Prometheus' text format 0.0.4, for curl, browsers and most scrapers.
    Prometheus,
    /// OpenMetrics 1.0, which Prometheus asks for first.
    OpenMetrics,
}

impl Format {
    /// The Content-Type of a response in this format.
    pub fn content_type(self) -> &'static str {
        match self {
            Format::Prometheus => "text/plain; version=0.0.4; charset=utf-8",
            Format::OpenMetrics => "application/openmetrics-text; version=1.0.0; charset=utf-8",
        }
    }
}

/// What the status page's server counts of itself, for `/metrics` beside the status:
/// connections and requests it turned away, by reason (see [`Served::REASONS`]).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Served {
    /// Closed at once: the server, or this client's address, had as many
    /// connections open as it may.
    pub busy: u64,
    /// Closed at once: over the rate of new connections, this address's or the
    /// server's.
    pub rate: u64,
    /// Answered 421: the request named a host this server does not answer to.
    pub host: u64,
    /// Closed for being slow: the request head did not arrive in time, or the
    /// response was not taken in time.
    pub slow: u64,
}

impl Served {
    /// The `reason` labels of `http_refused_total`, in the order listed.
    pub const REASONS: [&'static str; 4] = ["busy", "rate", "host", "slow"];

    fn counts(&self) -> [u64; 4] {
        [self.busy, self.rate, self.host, self.slow]
    }
}

/// The metrics of `status` and of the server that serves them, in `format`; see
/// [`render_metrics`].
pub fn render_served_metrics(status: &Status, served: &Served, format: Format) -> String {
    let mut out = Exposition::new(format);
    families(&mut out, status);
    out.counter(
        "http_refused",
        "Connections and requests the status page turned away, by reason.",
        Served::REASONS
            .iter()
            .zip(served.counts())
            .map(|(reason, count)| ([("reason", *reason)], count)),
    );
    out.finish()
}

/// The metrics of `status` in `format`. Every sample is the snapshot's value; a family
/// without samples (no peers, no takeover yet) is left out. docs/status-page.md lists
/// them.
pub fn render_metrics(status: &Status, format: Format) -> String {
    let mut out = Exposition::new(format);
    families(&mut out, status);
    out.finish()
}

fn families(out: &mut Exposition, status: &Status) {
    let s = status;
    out.gauge(
        "state",
        "1 for the state this node is in, 0 for the others.",
        STATES.map(|state| ([("state", state.as_str())], s.state == state)),
    );
    out.gauge(
        "maintenance",
        "1 while automatic transitions are frozen (set here or by a peer).",
        [([], s.maintenance.on)],
    );
    out.gauge(
        "takeover_held",
        "1 while the split-brain guard holds an unplanned takeover back (a VIP still \
         answered, no gateway, a failed fence).",
        [([], s.takeover_held.is_some())],
    );
    out.gauge(
        "realtime_priority",
        "The SCHED_RR priority the heartbeat thread runs at; 0 at normal priority.",
        [([], s.scheduling.realtime_priority)],
    );
    out.gauge(
        "memory_locked",
        "1 while the daemon's memory is locked as it is touched (mlockall).",
        [([], s.scheduling.memory_locked)],
    );
    out.counter(
        "vip_conflicts",
        "Other hosts seen claiming a VIP while this node held it.",
        [([], s.counters.vip_conflicts)],
    );
    out.gauge(
        "flapping",
        "1 while flap damping makes this node's unplanned takeovers wait for a longer \
         silence.",
        [([], s.damping.flapping)],
    );
    out.seconds(
        "takeover_silence",
        "The silence of the holder an unplanned takeover waits for now: timing.dead, \
         longer while flapping.",
        [([], s.damping.takeover_silence_ms)],
    );
    out.counter(
        "flapping_episodes",
        "Times this node began to flap.",
        [([], s.damping.episodes)],
    );
    out.counter(
        "starved",
        "Wake-ups an interval or more after the deadline this node asked for: the host \
         did not run it on time.",
        [([], s.starved.count)],
    );
    out.seconds(
        "starved_longest",
        "The longest this node was woken after the deadline it asked for, since start.",
        s.starved.longest_ms.map(|ms| ([], ms)),
    );
    out.gauge(
        "health_failing_checks",
        "The health score: the weights of the failing checks, 255 while a fatal one \
         fails; 0 is healthy.",
        [([], s.health.failing)],
    );
    out.gauge(
        "failed",
        "1 while a check that failed while this node was active sticks.",
        [([], s.health.failed)],
    );
    out.counter(
        "transitions",
        "State transitions of this node, by target state and kind of reason.",
        s.counters.transitions.iter().map(|t| {
            let labels = [("to", t.to.as_str()), ("reason", t.reason.as_str())];
            (labels, t.count)
        }),
    );
    out.counter(
        "heartbeats_sent",
        "Heartbeats sent, over all links.",
        [([], s.counters.heartbeats_sent)],
    );
    out.counter(
        "heartbeats_received",
        "Valid heartbeats received, by link.",
        s.counters
            .heartbeats_received
            .iter()
            .map(|(link, n)| ([("link", link.as_str())], *n)),
    );
    out.counter(
        "heartbeats_rejected",
        "Datagrams dropped on the heartbeat port, by reason.",
        s.counters
            .rejected
            .iter()
            .map(|(reason, n)| ([("reason", reason.as_str())], *n)),
    );
    out.counter(
        "heartbeats_dropped",
        "Datagrams dropped on arrival on a link, before the election saw them, by link.",
        s.counters
            .dropped
            .iter()
            .map(|(link, n)| ([("link", link.as_str())], *n)),
    );
    out.counter(
        "heartbeats_read_late",
        "Routine heartbeats of the active node that this quiet standby read at a wake-up, by link.",
        s.counters
            .read_late
            .iter()
            .map(|(link, n)| ([("link", link.as_str())], *n)),
    );
    out.counter(
        "heartbeats_sent_raw",
        "Heartbeats sent through the link's raw socket ([scheduling] raw_send), by link.",
        s.counters
            .sent_raw
            .iter()
            .map(|(link, n)| ([("link", link.as_str())], *n)),
    );
    out.counter(
        "heartbeats_raw_failed",
        "Raw sends of heartbeats that failed and went again through the link's UDP socket, by link.",
        s.counters
            .raw_failed
            .iter()
            .map(|(link, n)| ([("link", link.as_str())], *n)),
    );
    out.gauge(
        "peer_up",
        "1 while the peer is heard on at least one link.",
        s.peers
            .iter()
            .map(|p| ([("peer", p.name.as_str())], p.alive)),
    );
    out.gauge(
        "peer_fingerprint_match",
        "1 while the peer runs the configuration this node runs (same fingerprint), 0 \
         while it runs another; absent until the peer is heard.",
        s.peers
            .iter()
            .filter_map(|p| Some(([("peer", p.name.as_str())], p.fingerprint_match?))),
    );
    out.seconds(
        "peer_last_heartbeat",
        "Age of the last valid heartbeat from the peer on the link.",
        s.peers.iter().flat_map(|p| {
            p.links.iter().filter_map(|link| {
                let labels = [("peer", p.name.as_str()), ("link", link.name.as_str())];
                Some((labels, link.last_heartbeat_ms?))
            })
        }),
    );
    let gateways = &s.health.gateways;
    out.gauge(
        "gateway_up",
        "1 while the gateway answers its probes.",
        gateways
            .iter()
            .map(|g| ([("gateway", g.address.as_str())], g.reachable)),
    );
    out.seconds(
        "gateway_rtt",
        "Round-trip time of the gateway's last answered probe.",
        gateways
            .iter()
            .filter_map(|g| Some(([("gateway", g.address.as_str())], g.rtt_ms?))),
    );
    out.gauge(
        "gateway_consecutive_failures",
        "Probes of the gateway that failed in a row.",
        gateways
            .iter()
            .map(|g| ([("gateway", g.address.as_str())], g.consecutive_failures)),
    );
    out.gauge(
        "interface_up",
        "1 while an interface that carries a VIP is up and running.",
        s.health
            .interfaces
            .iter()
            .map(|i| ([("interface", i.name.as_str())], i.up)),
    );
    let checks = &s.health.checks;
    out.gauge(
        "check_failing",
        "1 while the check fails.",
        checks.iter().map(|c| {
            let labels = [("check", c.name.as_str()), ("kind", c.kind.as_str())];
            (labels, c.state == CheckState::Failing)
        }),
    );
    out.gauge(
        "check_consecutive_failures",
        "Runs of the check that failed in a row.",
        checks
            .iter()
            .map(|c| ([("check", c.name.as_str())], c.consecutive_failures)),
    );
    out.seconds(
        "check_last_duration",
        "How long the check's last run took.",
        checks
            .iter()
            .filter_map(|c| Some(([("check", c.name.as_str())], c.last_duration_ms?))),
    );
    out.gauge(
        "check_failed",
        "1 while the check sticks: it failed while this node was active.",
        checks
            .iter()
            .map(|c| ([("check", c.name.as_str())], c.failed)),
    );
    out.counter(
        "check_runs",
        "Runs of the check.",
        checks
            .iter()
            .map(|c| ([("check", c.name.as_str())], c.runs)),
    );
    out.gauge(
        "check_last_output_info",
        "Always 1; the line label is what the check's last run said.",
        checks.iter().filter_map(|c| {
            let line = output_line(c.last_detail.as_deref()?);
            Some(([("check", c.name.as_str()), ("line", line)], 1u8))
        }),
    );
    let last_runs = last_run_per_hook(s);
    out.seconds(
        "hook_last_duration",
        "How long the hook's last run took.",
        last_runs
            .iter()
            .map(|run| ([("hook", run.hook.as_str())], run.duration_ms)),
    );
    out.gauge(
        "hook_last_success",
        "1 if the hook's last run succeeded, 0 if it failed.",
        last_runs
            .iter()
            .map(|run| ([("hook", run.hook.as_str())], run.success)),
    );
    out.gauge(
        "vip_held",
        "1 while the VIP is on this node's interface.",
        s.vips
            .iter()
            .map(|v| ([("vip", v.address.as_str())], v.held_here)),
    );
    out.gauge(
        "vip_removal_failures",
        "Failed removals of the VIP in a row; above 0 it may still be on this node.",
        s.vips
            .iter()
            .map(|v| ([("vip", v.address.as_str())], v.removal_failures)),
    );
    out.seconds(
        "last_takeover",
        "How long the last takeover took, from the decision to every VIP in place.",
        s.last_takeover_ms.map(|ms| ([], ms)),
    );
    out.gauge(
        "info",
        "Always 1; the labels name this node, its cluster and the daemon's version.",
        [(
            [
                ("node", s.node.as_str()),
                ("cluster", s.cluster.as_str()),
                ("version", s.daemon_version.as_str()),
            ],
            1u8,
        )],
    );
}

/// The first line of a check's output, at most [`MAX_OUTPUT_LABEL`] bytes of it: a
/// label value should stay short, whatever a document holds.
fn output_line(detail: &str) -> &str {
    let line = detail.lines().next().unwrap_or_default();
    if line.len() <= MAX_OUTPUT_LABEL {
        return line;
    }
    let mut cut = MAX_OUTPUT_LABEL;
    while !line.is_char_boundary(cut) {
        cut -= 1;
    }
    &line[..cut]
}

/// The most recent run of each hook (`status.hooks` is newest first).
fn last_run_per_hook(s: &Status) -> Vec<&HookRun> {
    let mut seen = HashSet::new();
    s.hooks
        .iter()
        .filter(|run| seen.insert(run.hook.as_str()))
        .collect()
}

/// One sample: its labels (name and value) and its value.
type Sample<'a, const N: usize, V> = ([(&'static str, &'a str); N], V);

/// The text of the metrics, one family after the other.
struct Exposition {
    out: String,
    format: Format,
}

impl Exposition {
    fn new(format: Format) -> Exposition {
        Exposition {
            out: String::with_capacity(4096),
            format,
        }
    }

    fn gauge<'a, const N: usize, V: Into<Value>>(
        &mut self,
        name: &str,
        help: &str,
        samples: impl IntoIterator<Item = Sample<'a, N, V>>,
    ) {
        self.family(name, help, Kind::Gauge, None, samples);
    }

    /// A counter; its samples are named `<name>_total`.
    fn counter<'a, const N: usize, V: Into<Value>>(
        &mut self,
        name: &str,
        help: &str,
        samples: impl IntoIterator<Item = Sample<'a, N, V>>,
    ) {
        self.family(name, help, Kind::Counter, None, samples);
    }

    /// A gauge in seconds, named `<name>_seconds`, of values given in milliseconds.
    /// Values no scraper should see (NaN, infinite) are left out.
    fn seconds<'a, const N: usize>(
        &mut self,
        name: &str,
        help: &str,
        samples: impl IntoIterator<Item = Sample<'a, N, f64>>,
    ) {
        let samples = samples
            .into_iter()
            .filter(|(_, ms)| ms.is_finite())
            .map(|(labels, ms)| (labels, Value::Float(ms / 1000.0)));
        let name = format!("{name}_seconds");
        self.family(&name, help, Kind::Gauge, Some("seconds"), samples);
    }

    /// One family: its HELP and TYPE lines (and UNIT, in OpenMetrics), then a line per
    /// sample in the order given. Nothing at all when there are no samples.
    fn family<'a, const N: usize, V: Into<Value>>(
        &mut self,
        name: &str,
        help: &str,
        kind: Kind,
        unit: Option<&str>,
        samples: impl IntoIterator<Item = Sample<'a, N, V>>,
    ) {
        let mut samples = samples.into_iter().peekable();
        if samples.peek().is_none() {
            return;
        }
        let (family, sample) = match kind {
            Kind::Gauge => (name.to_string(), name.to_string()),
            Kind::Counter => (name.to_string(), format!("{name}_total")),
        };
        let family = match self.format {
            Format::Prometheus => &sample,
            Format::OpenMetrics => &family,
        };
        // Help texts are constants without backslashes or line breaks: no escaping.
        let out = &mut self.out;
        let _ = writeln!(out, "# HELP {PREFIX}{family} {help}");
        let _ = writeln!(out, "# TYPE {PREFIX}{family} {}", kind.as_str());
        if let (Format::OpenMetrics, Some(unit)) = (self.format, unit) {
            let _ = writeln!(out, "# UNIT {PREFIX}{family} {unit}");
        }
        for (labels, value) in samples {
            out.push_str(PREFIX);
            out.push_str(&sample);
            for (i, (label, text)) in labels.iter().enumerate() {
                out.push_str(if i == 0 { "{" } else { "," });
                let _ = write!(out, "{label}=\"{}\"", LabelValue(text));
            }
            if N > 0 {
                out.push('}');
            }
            let _ = writeln!(out, " {}", value.into());
        }
    }

    fn finish(mut self) -> String {
        if self.format == Format::OpenMetrics {
            self.out.push_str("# EOF\n");
        }
        self.out
    }
}

#[derive(Debug, Clone, Copy)]
enum Kind {
    Gauge,
    Counter,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Gauge => "gauge",
            Kind::Counter => "counter",
        }
    }
}

/// A sample's value: a count, a flag (1 or 0), or a measurement.
#[derive(Debug, Clone, Copy)]
enum Value {
    Int(u64),
    Float(f64),
}

impl From<bool> for Value {
    fn from(on: bool) -> Value {
        Value::Int(u64::from(on))
    }
}

impl From<u8> for Value {
    fn from(n: u8) -> Value {
        Value::Int(u64::from(n))
    }
}

impl From<u32> for Value {
    fn from(n: u32) -> Value {
        Value::Int(u64::from(n))
    }
}

impl From<u64> for Value {
    fn from(n: u64) -> Value {
        Value::Int(n)
    }
}

impl fmt::Display for Value {
    /// A float in the fewest digits that read back as the same number, never with an
    /// exponent; the special values as both formats spell them.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match *self {
            Value::Int(n) => write!(f, "{n}"),
            Value::Float(x) if x.is_nan() => f.write_str("NaN"),
            Value::Float(x) if x == f64::INFINITY => f.write_str("+Inf"),
            Value::Float(x) if x == f64::NEG_INFINITY => f.write_str("-Inf"),
            Value::Float(x) => write!(f, "{x}"),
        }
    }
}

/// A label value, escaped as both formats want it: backslash, double quote and line
/// feed as `\\`, `\"` and `\n`.
struct LabelValue<'a>(&'a str);

impl fmt::Display for LabelValue<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut rest = self.0;
        while let Some(i) = rest.find(['\\', '"', '\n']) {
            f.write_str(&rest[..i])?;
            f.write_str(match rest.as_bytes()[i] {
                b'\\' => "\\\\",
                b'"' => "\\\"",
                _ => "\\n",
            })?;
            rest = &rest[i + 1..];
        }
        f.write_str(rest)
    }
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use super::*;
    use crate::status::{Counters, fixture};

    /// Checks `text` against Prometheus' text format 0.0.4, strictly: every sample
    /// follows its family's HELP and TYPE lines, families are contiguous, series are
    /// unique. Returns each series (`name{labels}` as written) with its value.
    fn parse_prometheus_text(text: &str) -> BTreeMap<String, f64> {
        fn is_name(s: &str) -> bool {
            let mut chars = s.chars();
            chars
                .next()
                .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
                && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
        }
        assert!(text.ends_with('\n'), "no final newline");
        let mut helped = HashSet::new();
        let mut typed = HashSet::new();
        let mut current: Option<String> = None;
        let mut finished = HashSet::new();
        let mut series = BTreeMap::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# HELP ") {
                let (name, help) = rest.split_once(' ').expect("HELP without text");
                assert!(is_name(name) && !help.is_empty(), "{line}");
                assert!(helped.insert(name.to_string()), "second HELP: {line}");
                continue;
            }
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let (name, kind) = rest.split_once(' ').expect("TYPE without type");
                assert!(is_name(name), "{line}");
                assert!(["counter", "gauge", "untyped"].contains(&kind), "{line}");
                assert!(helped.contains(name), "TYPE before HELP: {line}");
                assert!(typed.insert(name.to_string()), "second TYPE: {line}");
                if let Some(previous) = current.replace(name.to_string()) {
                    finished.insert(previous);
                }
                continue;
            }
            assert!(!line.starts_with('#'), "unexpected comment: {line}");
            let name_end = line.find(['{', ' ']).expect("sample without value");
            let name = &line[..name_end];
            assert!(is_name(name), "bad name: {line}");
            assert_eq!(
                current.as_deref(),
                Some(name),
                "sample outside its family: {line}"
            );
            assert!(!finished.contains(name), "family split: {line}");
            let mut rest = &line[name_end..];
            if let Some(labels) = rest.strip_prefix('{') {
                let mut chars = labels.char_indices();
                let mut expect_name = true;
                let end = loop {
                    let (i, c) = chars.next().expect("unterminated labels");
                    match c {
                        '}' if expect_name => break i,
                        '"' => loop {
                            match chars.next().expect("unterminated value").1 {
                                '\\' => {
                                    let escaped = chars.next().expect("lone backslash").1;
                                    assert!(['\\', '"', 'n'].contains(&escaped), "{line}");
                                }
                                '"' => {
                                    expect_name = true;
                                    break;
                                }
                                '\n' => panic!("raw newline in {line}"),
                                _ => {}
                            }
                        },
                        ',' => {}
                        _ => {
                            let from = i;
                            let eq = labels[from..].find('=').expect("label without value");
                            let label = &labels[from..from + eq];
                            assert!(is_name(label) && !label.contains(':'), "{line}");
                            while chars.next().expect("label").0 < from + eq {}
                            expect_name = false;
                        }
                    }
                };
                rest = &labels[end + 1..];
            }
            let value = rest.strip_prefix(' ').expect("no space before the value");
            let value: f64 = match value {
                "+Inf" => f64::INFINITY,
                "-Inf" => f64::NEG_INFINITY,
                "NaN" => f64::NAN,
                v => v.parse().unwrap_or_else(|_| panic!("bad value: {line}")),
            };
            let key = line[..line.len() - rest.len()].to_string();
            assert!(
                series.insert(key, value).is_none(),
                "duplicate series: {line}"
            );
        }
        series
    }

    #[test]
    fn the_sample_gives_exactly_the_documented_metrics() {
        // Names, labels, types, order and values, in both formats; docs/status-page.md
        // lists them, and dashboards and alerts depend on them.
        let status = fixture::status();
        let prometheus = render_metrics(&status, Format::Prometheus);
        assert_eq!(prometheus, include_str!("../../tests/fixtures/status.prom"));
        let openmetrics = render_metrics(&status, Format::OpenMetrics);
        assert_eq!(
            openmetrics,
            include_str!("../../tests/fixtures/status.openmetrics")
        );
    }

    #[test]
    fn metrics_parse_as_prometheus_text_and_hold_the_snapshot() {
        let mut status = fixture::status();
        status.peers[0].links[1].last_heartbeat_ms = None;
        let mut older = status.hooks[0].clone();
        older.success = false;
        status.hooks.push(older);
        let text = render_metrics(&status, Format::Prometheus);
        let series = parse_prometheus_text(&text);
        let value = |key: &str| series.get(key).copied().unwrap_or_else(|| panic!("{key}"));
        let close = |a: f64, b: f64| (a - b).abs() < 1e-9;
        assert_eq!(value("failoverd_state{state=\"active\"}"), 1.0);
        assert_eq!(value("failoverd_state{state=\"fault\"}"), 0.0);
        assert_eq!(value("failoverd_heartbeats_sent_total"), 95_012.0);
        assert!(close(
            value("failoverd_peer_last_heartbeat_seconds{peer=\"beta\",link=\"crossover\"}"),
            0.0382
        ));
        assert!(close(
            value("failoverd_gateway_rtt_seconds{gateway=\"198.18.0.1\"}"),
            0.000412
        ));
        assert!(close(value("failoverd_last_takeover_seconds"), 0.0034));
        // A link not heard has no age, and only the newest run of a hook counts.
        assert!(!text.contains("heartbeat_seconds{peer=\"beta\",link=\"lan\"}"));
        assert_eq!(value("failoverd_hook_last_success{hook=\"start\"}"), 1.0);
        // Every family says what it is.
        let families = text.lines().filter(|l| l.starts_with("# TYPE ")).count();
        assert_eq!(
            families,
            text.lines().filter(|l| l.starts_with("# HELP ")).count()
        );
        assert_eq!(families, 35);
        assert_eq!(value("failoverd_flapping"), 0.0);
        assert!(close(value("failoverd_takeover_silence_seconds"), 1.0));
        assert_eq!(value("failoverd_starved_total"), 2.0);
        assert!(close(value("failoverd_starved_longest_seconds"), 0.3125));
        // Every check, the built-in ones too; its last line as a label.
        assert_eq!(
            value("failoverd_check_failing{check=\"web\",kind=\"http\"}"),
            1.0
        );
        assert_eq!(value("failoverd_check_failed{check=\"db\"}"), 1.0);
        assert_eq!(value("failoverd_check_runs_total{check=\"vip\"}"), 2.0);
        assert_eq!(
            value("failoverd_check_consecutive_failures{check=\"web\"}"),
            4.0
        );
        assert!(close(
            value("failoverd_check_last_duration_seconds{check=\"db\"}"),
            0.00025
        ));
        assert_eq!(
            value("failoverd_check_last_output_info{check=\"web\",line=\"status 503\"}"),
            1.0
        );
        assert_eq!(value("failoverd_failed"), 1.0);
        // A check that has not run has no duration and no output.
        assert!(!text.contains("{check=\"app\",line="));
        assert!(!text.contains("duration_seconds{check=\"app\"}"));
    }

    #[test]
    fn openmetrics_differs_only_where_the_formats_do() {
        let status = fixture::status();
        let openmetrics = render_metrics(&status, Format::OpenMetrics);
        assert!(openmetrics.ends_with("\n# EOF\n"));
        assert!(openmetrics.contains("# TYPE failoverd_heartbeats_sent counter\n"));
        assert!(openmetrics.contains("\nfailoverd_heartbeats_sent_total 95012\n"));
        assert!(openmetrics.contains("# UNIT failoverd_gateway_rtt_seconds seconds\n"));
        // A UNIT line for each family in seconds, and the rest as in Prometheus' format.
        let units = openmetrics.lines().filter(|l| l.starts_with("# UNIT "));
        assert_eq!(units.count(), 7);
        let prometheus = render_metrics(&status, Format::Prometheus);
        let samples = |text: &str| -> Vec<String> {
            let lines = text.lines().filter(|l| !l.starts_with('#'));
            lines.map(str::to_string).collect()
        };
        assert_eq!(samples(&openmetrics), samples(&prometheus));
    }

    /// Drops on arrival, a quiet standby's routine heartbeats read late, and raw
    /// sends.
    #[test]
    fn the_links_counts_are_exported_by_link() {
        let mut status = fixture::status();
        status.counters.dropped = vec![("crossover".into(), 0), ("lan".into(), 220_864)];
        status.counters.read_late = vec![("crossover".into(), 5_812), ("lan".into(), 0)];
        status.counters.sent_raw = vec![("crossover".into(), 90_117), ("lan".into(), 90_105)];
        status.counters.raw_failed = vec![("crossover".into(), 0), ("lan".into(), 12)];
        let text = render_metrics(&status, Format::Prometheus);
        parse_prometheus_text(&text);
        for line in [
            "failoverd_heartbeats_dropped_total{link=\"lan\"} 220864",
            "failoverd_heartbeats_dropped_total{link=\"crossover\"} 0",
            "failoverd_heartbeats_read_late_total{link=\"crossover\"} 5812",
            "failoverd_heartbeats_read_late_total{link=\"lan\"} 0",
            "failoverd_heartbeats_sent_raw_total{link=\"crossover\"} 90117",
            "failoverd_heartbeats_raw_failed_total{link=\"lan\"} 12",
        ] {
            assert!(text.contains(&format!("\n{line}\n")), "{line} in\n{text}");
        }
    }

    #[test]
    fn a_peer_running_another_configuration_reads_0_and_one_not_heard_nothing() {
        let mut status = fixture::status();
        status.peers[0].fingerprint_match = Some(false);
        let mut unheard = status.peers[0].clone();
        unheard.name = "gamma".into();
        unheard.fingerprint_match = None;
        status.peers.push(unheard);
        let series = parse_prometheus_text(&render_metrics(&status, Format::Prometheus));
        assert_eq!(
            series.get("failoverd_peer_fingerprint_match{peer=\"beta\"}"),
            Some(&0.0)
        );
        assert!(!series.contains_key("failoverd_peer_fingerprint_match{peer=\"gamma\"}"));
    }

    #[test]
    fn metric_label_values_are_escaped() {
        let mut status = fixture::status();
        status.health.gateways[0].address = "a\"b\\c\nd".into();
        let text = render_metrics(&status, Format::Prometheus);
        parse_prometheus_text(&text);
        assert!(text.contains("failoverd_gateway_up{gateway=\"a\\\"b\\\\c\\nd\"} 1"));
    }

    #[test]
    fn a_checks_output_line_is_escaped_and_bounded() {
        let mut status = fixture::status();
        status.health.checks[1].last_detail = Some(format!("a\"b\\c{}", "é".repeat(200)));
        status.health.checks[2].last_detail = Some("first\nsecond".to_string());
        let text = render_metrics(&status, Format::Prometheus);
        let series = parse_prometheus_text(&text);
        let line = text
            .lines()
            .find(|l| l.starts_with("failoverd_check_last_output_info{check=\"web\""))
            .unwrap();
        assert!(
            line.starts_with("failoverd_check_last_output_info{check=\"web\",line=\"a\\\"b\\\\cé")
        );
        let label = line.split("line=\"").nth(1).unwrap();
        assert!(
            label.len() <= MAX_OUTPUT_LABEL + 3 + "\"} 1".len(),
            "{label}"
        );
        assert!(
            series.contains_key("failoverd_check_last_output_info{check=\"app\",line=\"first\"}")
        );
    }

    #[test]
    fn metrics_of_an_empty_status_parse() {
        let mut status = fixture::status();
        status.vips.clear();
        status.peers.clear();
        status.hooks.clear();
        status.health.gateways.clear();
        status.counters = Counters::default();
        status.last_takeover_ms = None;
        let series = parse_prometheus_text(&render_metrics(&status, Format::Prometheus));
        assert!(series.contains_key("failoverd_heartbeats_sent_total"));
        assert!(!series.keys().any(|k| k.starts_with("failoverd_peer_up")));
        assert!(
            !series
                .keys()
                .any(|k| k.starts_with("failoverd_transitions"))
        );
    }

    #[test]
    fn values_no_scraper_should_see_are_left_out() {
        let mut status = fixture::status();
        status.last_takeover_ms = Some(f64::NAN);
        status.hooks[0].duration_ms = f64::INFINITY;
        status.peers[0].links[0].last_heartbeat_ms = Some(f64::NEG_INFINITY);
        let text = render_metrics(&status, Format::Prometheus);
        parse_prometheus_text(&text);
        assert!(!text.contains("last_takeover"));
        assert!(!text.contains("hook_last_duration"));
        assert!(!text.contains("heartbeat_seconds{peer=\"beta\",link=\"crossover\"}"));
    }

    #[test]
    fn values_are_spelled_as_the_formats_want() {
        for (value, text) in [
            (Value::Int(95_012), "95012"),
            (Value::from(true), "1"),
            (Value::Float(2.0), "2"),
            (Value::Float(0.0382), "0.0382"),
            (Value::Float(0.000012), "0.000012"),
            (Value::Float(f64::INFINITY), "+Inf"),
            (Value::Float(f64::NEG_INFINITY), "-Inf"),
            (Value::Float(f64::NAN), "NaN"),
        ] {
            assert_eq!(value.to_string(), text);
        }
    }
}
