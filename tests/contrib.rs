//! What contrib/ ships for Prometheus and Grafana holds together: the alert rules
//! pass `promtool check rules` and their unit tests, the dashboard is Grafana JSON
//! whose queries parse, and every metric either of them names is one the daemon
//! serves. No root, no network; each promtool run is bounded in time.
//!
//! promtool comes with Debian's `prometheus` package, which .ci/run installs; these
//! tests fail without it rather than pass unchecked.

use std::collections::BTreeSet;
use std::fs::File;
use std::path::PathBuf;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use failoverd::status::{InterfaceStatus, Status};
use failoverd::view::metrics::{Format, Served, render_served_metrics};
use serde_json::Value;

const RULES: &str = "contrib/prometheus/failoverd-rules.yml";
const RULE_TESTS: &str = "contrib/prometheus/failoverd-rules.test.yml";
const DASHBOARD: &str = "contrib/grafana/failoverd.json";
/// The sample status, with every family of metrics in it (see [`served_names`]).
const FIXTURE: &str = include_str!("fixtures/status.json");
/// promtool checks a file in well under a second; this is for a wedged one.
const RUN_LIMIT: Duration = Duration::from_secs(60);

/// What the dashboard must show, by the metric that shows it: roles, role changes,
/// peers, links, checks, split-brain conflicts, the configuration fingerprint,
/// heartbeats dropped, hook failures.
const DASHBOARD_MUST_USE: &[&str] = &[
    "failoverd_state",
    "failoverd_transitions_total",
    "failoverd_peer_up",
    "failoverd_peer_last_heartbeat_seconds",
    "failoverd_check_failing",
    "failoverd_vip_conflicts_total",
    "failoverd_peer_fingerprint_match",
    "failoverd_heartbeats_dropped_total",
    "failoverd_hook_last_success",
];

/// What the rules must watch, by the metric: nodes active, peer dead, link dead,
/// checks failing, split-brain conflicts, fingerprint mismatch, flapping.
const RULES_MUST_USE: &[&str] = &[
    "failoverd_state",
    "failoverd_peer_up",
    "failoverd_peer_last_heartbeat_seconds",
    "failoverd_check_failing",
    "failoverd_vip_conflicts_total",
    "failoverd_peer_fingerprint_match",
    "failoverd_transitions_total",
];

#[test]
fn alert_rules_pass_promtool_check() {
    let out = promtool(&["check", "rules", RULES]);
    assert_success("promtool check rules", &out);
}

#[test]
fn alert_rules_pass_their_unit_tests() {
    let out = promtool(&["test", "rules", RULE_TESTS]);
    assert_success("promtool test rules", &out);
}

#[test]
fn every_alert_has_a_unit_test_that_makes_it_fire() {
    let rules = read(RULES);
    let alerts: BTreeSet<&str> = rules
        .lines()
        .filter_map(|l| l.trim().strip_prefix("- alert: "))
        .map(str::trim)
        .collect();
    assert!(alerts.len() >= 10, "only {alerts:?}");
    let tests = read(RULE_TESTS);
    // Each case: `alertname: NAME`, then its expected alerts, up to the next case.
    let fired: BTreeSet<&str> = tests
        .split("alertname: ")
        .skip(1)
        .filter(|case| {
            let case = case.split("- eval_time:").next().unwrap_or_default();
            case.contains("exp_labels:")
        })
        .filter_map(|case| case.lines().next().map(str::trim))
        .collect();
    let untested: Vec<_> = alerts.difference(&fired).collect();
    assert!(untested.is_empty(), "no test makes {untested:?} fire");
}

#[test]
fn the_dashboard_is_importable_grafana_json() {
    let dashboard = dashboard();
    assert_eq!(dashboard["uid"], "failoverd");
    let variables = dashboard["templating"]["list"]
        .as_array()
        .expect("templating.list");
    assert!(
        variables.iter().any(|v| v["type"] == "datasource"
            && v["name"] == "datasource"
            && v["query"] == "prometheus"),
        "no Prometheus data source variable: every query names ${{datasource}}"
    );
    let mut ids = BTreeSet::new();
    let mut queries = 0;
    for panel in dashboard["panels"].as_array().expect("panels") {
        let title = panel["title"].as_str().expect("a panel title");
        assert!(
            ids.insert(panel["id"].as_u64().expect("a panel id")),
            "second panel with the id of {title}"
        );
        let grid = &panel["gridPos"];
        let (x, w) = (grid["x"].as_u64().unwrap(), grid["w"].as_u64().unwrap());
        assert!(x + w <= 24, "{title} is wider than the dashboard");
        if panel["type"] == "row" {
            continue;
        }
        assert_eq!(panel["datasource"]["uid"], "${datasource}", "{title}");
        let targets = panel["targets"].as_array().expect("targets");
        assert!(!targets.is_empty(), "{title} has no query");
        for target in targets {
            assert_eq!(target["datasource"]["uid"], "${datasource}", "{title}");
            assert!(target["expr"].is_string(), "{title}: a query without expr");
            queries += 1;
        }
    }
    assert!(
        queries >= DASHBOARD_MUST_USE.len(),
        "only {queries} queries"
    );
}

#[test]
fn the_dashboards_queries_parse() {
    // promtool parses PromQL only in rule files: each query becomes a recording
    // rule, with the dashboard's variables replaced by what Grafana puts there.
    let mut rules = String::from("groups:\n  - name: dashboard\n    rules:\n");
    for (i, expr) in dashboard_exprs(&dashboard()).iter().enumerate() {
        let expr = expr
            .replace("$__rate_interval", "1m")
            .replace("$job", "failoverd")
            .replace("$instance", "alpha:9469|beta:9469");
        let quoted = serde_json::to_string(&expr).expect("a string");
        rules.push_str(&format!(
            "      - record: dashboard:query_{i}\n        expr: {quoted}\n"
        ));
    }
    let dir = scratch_dir("dashboard-queries");
    let path = dir.join("queries.yml");
    std::fs::write(&path, rules).expect("write the queries");
    let out = promtool(&["check", "rules", path.to_str().expect("a UTF-8 path")]);
    let _ = std::fs::remove_dir_all(&dir);
    assert_success("promtool check rules (the dashboard's queries)", &out);
}

#[test]
fn every_metric_in_the_dashboard_and_rules_is_served() {
    let served = served_names();
    for (file, must_use) in [(DASHBOARD, DASHBOARD_MUST_USE), (RULES, RULES_MUST_USE)] {
        let text = read(file);
        let named = metric_names(&text);
        let unknown: Vec<_> = named.difference(&served).collect();
        assert!(
            unknown.is_empty(),
            "{file} names metrics the daemon does not serve: {unknown:?}\nserved: {served:?}"
        );
        let missing: Vec<_> = must_use.iter().filter(|m| !named.contains(**m)).collect();
        assert!(missing.is_empty(), "{file} does not use {missing:?}");
    }
}

#[test]
fn metric_names_are_found_where_queries_put_them() {
    let names = metric_names(
        "sum by (job) (failoverd_state{state=\"active\"}) and failoverd_pear_up == 0 \
         # failoverd status, FailoverdDown, job=\"failoverd\"",
    );
    let expected: BTreeSet<String> = ["failoverd_state", "failoverd_pear_up"]
        .map(String::from)
        .into();
    assert_eq!(names, expected);
    assert!(!served_names().contains("failoverd_pear_up"));
}

/// Every sample name `/metrics` can serve: the metrics of the sample status, with
/// the families it leaves empty filled in, so that each family has a sample.
fn served_names() -> BTreeSet<String> {
    let mut status: Status = serde_json::from_str(FIXTURE).expect("the fixture parses");
    status.counters.dropped = vec![("lan".into(), 1)];
    status.health.interfaces = vec![InterfaceStatus {
        name: "eth0".into(),
        up: true,
    }];
    let text = render_served_metrics(&status, &Served::default(), Format::Prometheus);
    let families = text.lines().filter(|l| l.starts_with("# TYPE ")).count();
    let names: BTreeSet<String> = text
        .lines()
        .filter(|l| !l.starts_with('#'))
        .filter_map(|l| l.split(['{', ' ']).next())
        .map(String::from)
        .collect();
    assert_eq!(names.len(), families, "a family without samples:\n{text}");
    names
}

/// The metric names in `text`: each word that starts with `failoverd_`.
fn metric_names(text: &str) -> BTreeSet<String> {
    let is_name = |c: char| c.is_ascii_alphanumeric() || c == '_' || c == ':';
    let mut names = BTreeSet::new();
    let mut rest = text;
    while let Some(at) = rest.find("failoverd_") {
        let starts_word = !rest[..at].ends_with(is_name);
        let len = rest[at..].find(|c| !is_name(c)).unwrap_or(rest.len() - at);
        if starts_word {
            names.insert(rest[at..at + len].to_string());
        }
        rest = &rest[at + len..];
    }
    names
}

fn dashboard() -> Value {
    serde_json::from_str(&read(DASHBOARD)).expect("the dashboard is JSON")
}

/// The PromQL of every panel query and annotation.
fn dashboard_exprs(dashboard: &Value) -> Vec<String> {
    let mut exprs = Vec::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().into_iter().flatten() {
            exprs.extend(target["expr"].as_str().map(String::from));
        }
    }
    for annotation in dashboard["annotations"]["list"].as_array().expect("list") {
        exprs.extend(annotation["expr"].as_str().map(String::from));
    }
    exprs
}

fn read(file: &str) -> String {
    let path = root().join(file);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn scratch_dir(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("failoverd-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).expect("a scratch directory");
    dir
}

/// Runs promtool in the repository's root, killed after [`RUN_LIMIT`]. Its output
/// goes to files, so that a chatty run cannot fill a pipe and hang.
fn promtool(args: &[&str]) -> Output {
    let dir = scratch_dir(&format!("promtool-{}", args.join("-").replace('/', "_")));
    let (stdout, stderr) = (dir.join("stdout"), dir.join("stderr"));
    let mut child = Command::new("promtool")
        .args(args)
        .current_dir(root())
        .stdin(Stdio::null())
        .stdout(File::create(&stdout).expect("a file for stdout"))
        .stderr(File::create(&stderr).expect("a file for stderr"))
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run promtool ({e}): install Debian's prometheus package \
                 (.ci/run does)"
            )
        });
    let started = Instant::now();
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for promtool") {
            break status;
        }
        if started.elapsed() > RUN_LIMIT {
            let _ = child.kill();
            let _ = child.wait();
            panic!("promtool {args:?} took over {RUN_LIMIT:?}");
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    let out = Output {
        status,
        stdout: std::fs::read(&stdout).unwrap_or_default(),
        stderr: std::fs::read(&stderr).unwrap_or_default(),
    };
    let _ = std::fs::remove_dir_all(&dir);
    out
}

fn assert_success(what: &str, out: &Output) {
    assert!(
        out.status.success(),
        "{what} failed ({}):\n{}{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}
