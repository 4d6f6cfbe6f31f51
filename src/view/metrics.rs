//! The metrics of a status snapshot, as text: Prometheus' exposition format 0.0.4, or
//! OpenMetrics 1.0 for a scraper that asks for it. prometheus-client writes
//! OpenMetrics; the Prometheus text is rewritten from it.

use std::collections::HashSet;
use std::fmt;
use std::sync::Arc;

use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, EncodeLabelSet, EncodeMetric};
use prometheus_client::metrics::TypedMetric;
use prometheus_client::metrics::counter::ConstCounter;
use prometheus_client::metrics::gauge::ConstGauge;
use prometheus_client::registry::{Registry, Unit};

use crate::machine::event::Role;
use crate::status::Status;

/// The states of [`Status::state`], in the order the `state` metric lists them.
const STATES: [Role; 4] = [Role::Starting, Role::Standby, Role::Active, Role::Fault];

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

/// The metrics of `status` in `format`. Every sample is the snapshot's value; a family
/// without samples (no peers, no takeover yet) is left out. The README lists them.
pub fn render_metrics(status: &Status, format: Format) -> String {
    let openmetrics = render_openmetrics(Arc::new(status.clone()));
    match format {
        Format::OpenMetrics => openmetrics,
        Format::Prometheus => openmetrics_to_prometheus(&openmetrics),
    }
}

/// The metrics of one status snapshot. A fresh registry per scrape holds only this
/// collector, so every sample is the snapshot's value and nothing outlives the scrape.
#[derive(Debug)]
struct StatusMetrics(Arc<Status>);

impl Collector for StatusMetrics {
    fn encode(&self, mut enc: DescriptorEncoder) -> Result<(), fmt::Error> {
        let s = &*self.0;
        family(
            &mut enc,
            "state",
            "1 for the state this node is in, 0 for the others.",
            None,
            STATES.map(|state| ([("state", state.as_str())], gauge(s.state == state))),
        )?;
        single(
            &mut enc,
            "maintenance",
            "1 while automatic transitions are frozen (set here or by a peer).",
            None,
            gauge(s.maintenance.on),
        )?;
        single(
            &mut enc,
            "health_failing_checks",
            "Failing health checks on this node; 0 is healthy.",
            None,
            ConstGauge::new(i64::from(s.health.failing)),
        )?;
        family(
            &mut enc,
            "transitions",
            "State transitions of this node, by target state and kind of reason.",
            None,
            s.counters.transitions.iter().map(|t| {
                (
                    [("to", t.to.as_str()), ("reason", t.reason.as_str())],
                    ConstCounter::new(t.count),
                )
            }),
        )?;
        single(
            &mut enc,
            "heartbeats_sent",
            "Heartbeats sent, over all links.",
            None,
            ConstCounter::new(s.counters.heartbeats_sent),
        )?;
        family(
            &mut enc,
            "heartbeats_received",
            "Valid heartbeats received, by link.",
            None,
            s.counters
                .heartbeats_received
                .iter()
                .map(|(link, n)| ([("link", link.as_str())], ConstCounter::new(*n))),
        )?;
        family(
            &mut enc,
            "heartbeats_rejected",
            "Datagrams dropped on the heartbeat port, by reason.",
            None,
            s.counters
                .rejected
                .iter()
                .map(|(reason, n)| ([("reason", reason.as_str())], ConstCounter::new(*n))),
        )?;
        family(
            &mut enc,
            "peer_up",
            "1 while the peer is heard on at least one link.",
            None,
            s.peers
                .iter()
                .map(|p| ([("peer", p.name.as_str())], gauge(p.alive))),
        )?;
        family(
            &mut enc,
            "peer_last_heartbeat",
            "Age of the last valid heartbeat from the peer on the link.",
            Some(&Unit::Seconds),
            s.peers.iter().flat_map(|p| {
                p.links.iter().filter_map(|link| {
                    let labels = [("peer", p.name.as_str()), ("link", link.name.as_str())];
                    Some((labels, seconds(link.last_heartbeat_ms?)?))
                })
            }),
        )?;
        let gateways = &s.health.gateways;
        family(
            &mut enc,
            "gateway_up",
            "1 while the gateway answers its probes.",
            None,
            gateways
                .iter()
                .map(|g| ([("gateway", g.address.as_str())], gauge(g.reachable))),
        )?;
        family(
            &mut enc,
            "gateway_rtt",
            "Round-trip time of the gateway's last answered probe.",
            Some(&Unit::Seconds),
            gateways
                .iter()
                .filter_map(|g| Some(([("gateway", g.address.as_str())], seconds(g.rtt_ms?)?))),
        )?;
        family(
            &mut enc,
            "gateway_consecutive_failures",
            "Probes of the gateway that failed in a row.",
            None,
            gateways.iter().map(|g| {
                (
                    [("gateway", g.address.as_str())],
                    ConstGauge::new(i64::from(g.consecutive_failures)),
                )
            }),
        )?;
        family(
            &mut enc,
            "interface_up",
            "1 while an interface that carries a VIP is up and running.",
            None,
            s.health
                .interfaces
                .iter()
                .map(|i| ([("interface", i.name.as_str())], gauge(i.up))),
        )?;
        let last_runs = last_run_per_hook(s);
        family(
            &mut enc,
            "hook_last_duration",
            "How long the hook's last run took.",
            Some(&Unit::Seconds),
            last_runs
                .iter()
                .filter_map(|run| Some(([("hook", run.hook.as_str())], seconds(run.duration_ms)?))),
        )?;
        family(
            &mut enc,
            "hook_last_success",
            "1 if the hook's last run succeeded, 0 if it failed.",
            None,
            last_runs
                .iter()
                .map(|run| ([("hook", run.hook.as_str())], gauge(run.success))),
        )?;
        family(
            &mut enc,
            "vip_held",
            "1 while the VIP is on this node's interface.",
            None,
            s.vips
                .iter()
                .map(|v| ([("vip", v.address.as_str())], gauge(v.held_here))),
        )?;
        if let Some(takeover) = s.last_takeover_ms.and_then(seconds) {
            single(
                &mut enc,
                "last_takeover",
                "How long the last takeover took, from the decision to every VIP in place.",
                Some(&Unit::Seconds),
                takeover,
            )?;
        }
        family(
            &mut enc,
            "info",
            "Always 1; the labels name this node, its cluster and the daemon's version.",
            None,
            [(
                [
                    ("node", s.node.as_str()),
                    ("cluster", s.cluster.as_str()),
                    ("version", s.daemon_version.as_str()),
                ],
                ConstGauge::new(1i64),
            )],
        )
    }
}

/// One metric family without labels.
fn single<M: EncodeMetric + TypedMetric>(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    metric: M,
) -> Result<(), fmt::Error> {
    metric.encode(enc.encode_descriptor(name, help, unit, M::TYPE)?)
}

/// One metric family with a sample per label set, in the order given; nothing at all
/// when there are no samples.
fn family<L: EncodeLabelSet, M: EncodeMetric + TypedMetric>(
    enc: &mut DescriptorEncoder,
    name: &str,
    help: &str,
    unit: Option<&Unit>,
    samples: impl IntoIterator<Item = (L, M)>,
) -> Result<(), fmt::Error> {
    let mut samples = samples.into_iter().peekable();
    if samples.peek().is_none() {
        return Ok(());
    }
    let mut metric = enc.encode_descriptor(name, help, unit, M::TYPE)?;
    for (labels, value) in samples {
        value.encode(metric.encode_family(&labels)?)?;
    }
    Ok(())
}

fn gauge(on: bool) -> ConstGauge {
    ConstGauge::new(i64::from(on))
}

/// Milliseconds as a gauge in seconds; None for values no scraper should see.
fn seconds(ms: f64) -> Option<ConstGauge<f64>> {
    ms.is_finite().then(|| ConstGauge::new(ms / 1000.0))
}

/// The most recent run of each hook (`status.hooks` is newest first).
fn last_run_per_hook(s: &Status) -> Vec<&crate::status::HookRun> {
    let mut seen = HashSet::new();
    s.hooks
        .iter()
        .filter(|run| seen.insert(run.hook.as_str()))
        .collect()
}

/// The metrics in the OpenMetrics text format, as prometheus-client writes them.
fn render_openmetrics(status: Arc<Status>) -> String {
    let mut registry = Registry::with_prefix("failoverd");
    registry.register_collector(Box::new(StatusMetrics(status)));
    let mut out = String::with_capacity(4096);
    // Writing into a String cannot fail, and the collector only fails on write errors.
    let _ = prometheus_client::encoding::text::encode(&mut out, &registry);
    out
}

/// Turns prometheus-client's OpenMetrics text into Prometheus' text format 0.0.4.
/// The two differ, for the metrics here, in three places: 0.0.4 has no `# EOF` and
/// no `# UNIT` lines, and a counter's HELP and TYPE lines carry the name its samples
/// have (`x_total`), not the family's (`x`). Label values are escaped alike.
fn openmetrics_to_prometheus(openmetrics: &str) -> String {
    let counters: HashSet<&str> = openmetrics
        .lines()
        .filter_map(|line| line.strip_prefix("# TYPE ")?.strip_suffix(" counter"))
        .collect();
    let mut out = String::with_capacity(openmetrics.len() + 64);
    for line in openmetrics.lines() {
        if line == "# EOF" || line.starts_with("# UNIT ") {
            continue;
        }
        let renamed = ["# HELP ", "# TYPE "].into_iter().find_map(|prefix| {
            let (name, rest) = line.strip_prefix(prefix)?.split_once(' ')?;
            counters
                .contains(name)
                .then(|| format!("{prefix}{name}_total {rest}"))
        });
        out.push_str(renamed.as_deref().unwrap_or(line));
        out.push('\n');
    }
    out
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
        // Names, labels, types, order and values, in both formats; the README lists
        // them, and dashboards and alerts depend on them.
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
        assert_eq!(families, 17);
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
        assert_eq!(units.count(), 4);
        let prometheus = render_metrics(&status, Format::Prometheus);
        let samples = |text: &str| -> Vec<String> {
            let lines = text.lines().filter(|l| !l.starts_with('#'));
            lines.map(str::to_string).collect()
        };
        assert_eq!(samples(&openmetrics), samples(&prometheus));
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
}
