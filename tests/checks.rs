//! Service checks end to end: real `failoverd run` processes in the namespace lab
//! (tests/common), a service on each node that a `[[check]]` watches, and a client
//! probing the VIP. What each test pins is a promise of the docs: docs/election.md under
//! "Checks on the active node, and failures that stick", docs/checks-and-hooks.md under
//! "Hooks":
//!
//! - a service that dies on the active node moves the VIP with a planned handover
//!   after `fall` failed runs (and at most one interval more), and back per the
//!   failback policy once it passes again;
//! - an active-only check that fails on the holder hands over and sticks: the old
//!   holder does not take the VIP back while the peer can hold it, until `failoverd
//!   clear` or `failure_timeout`;
//! - the same service broken on both nodes leaves the VIP where it is;
//! - a start hook that fails hands over (`start_failure = "release"`) or not
//!   (`"ignore"`); the standby hook runs on entering standby;
//! - a failing check shows in `failoverd check`, `status`, `/metrics` and the log.
//!
//! A hanging check is in tests/faults.rs. Like every end-to-end test these need root,
//! every wait and loop is bounded, and every event that moves, or could move, the VIP
//! runs inside `Cluster::across` (tests/common/crossing.rs).

#![allow(
    clippy::zombie_processes,
    reason = "the Lab kills and reaps the processes it spawned when it is dropped"
)]

mod common;

use std::fs;
use std::time::Duration;

use common::cluster::*;
use common::crossing::{Expect, SHORT_GAP, Seen};
use common::{HTTP_PORT, Lab};
use failoverd::machine::Role;
use failoverd::status::{CheckState, CheckStatus, Status};
use nix::sys::signal::Signal;

/// `interval` of the checks here: twice the lab's heartbeat interval (50 ms).
const INTERVAL: Duration = Duration::from_millis(100);
/// `fall` of the checks here.
const FALL: u32 = 3;
/// `rise` of the checks here.
const RISE: u32 = 2;
/// `cluster.failback_delay` in the lab's configuration (tests/common/cluster.rs).
const FAILBACK_DELAY: Duration = Duration::from_secs(1);
/// Added to a bound from the rules for the move itself: a planned handover (release,
/// then take over on the released heartbeat) on a loaded two-core machine.
const MOVE_SLACK: Duration = SHORT_GAP;

/// Probes (one every 10 ms) a client may lose in a planned handover: none to two in
/// practice (the release on one node, then the add on the other), three more for a
/// loaded two-core machine. A peer that waited for `dead` instead of the released
/// heartbeat loses thirty.
const MAX_LOST: u64 = 5;
/// Log lines carry the time they were written, a little after the moment they tell of.
const LOG_SLACK: Duration = Duration::from_millis(10);

/// The lab's cluster with `checks` appended, `[[check]]` tables as TOML.
fn with_checks(checks: String) -> impl FnOnce(common::sample::Sample) -> common::sample::Sample {
    move |sample| sample.append(&checks)
}

/// An `http` check of the node's own service (`Lab::serve_http`), on both nodes.
fn web_check() -> String {
    format!(
        "[[check]]\nname = \"web\"\nkind = \"http\"\n\
         url = \"http://127.0.0.1:{HTTP_PORT}/health\"\nexpect_body = \"ok\"\n\
         interval = \"{}ms\"\nfall = {FALL}\nrise = {RISE}\n",
        INTERVAL.as_millis()
    )
}

/// An `on = "active"` exec check named `app` that fails while the file
/// `broken-<node>` exists in the lab's directory: the service the start hook would
/// start, broken on one node or both by a test.
fn app_check(lab: &Lab, extra: &str) -> String {
    let dir = lab.tmpdir().display();
    format!(
        "[[check]]\nname = \"app\"\nkind = \"exec\"\n\
         command = [\"/bin/sh\", \"-c\", \"test ! -e {dir}/broken-$FAILOVERD_NODE\"]\n\
         interval = \"{}ms\"\nfall = {FALL}\nrise = {RISE}\non = \"active\"\n\
         start_grace = \"300ms\"\n{extra}",
        INTERVAL.as_millis()
    )
}

/// Breaks (or repairs) `node`'s service for `app_check`.
fn break_app(lab: &Lab, node: &str, broken: bool) {
    let flag = lab.tmpdir().join(format!("broken-{node}"));
    if broken {
        fs::write(&flag, "").expect("write the flag");
    } else {
        fs::remove_file(&flag).expect("remove the flag");
    }
}

/// `node`'s status, whatever its role: `status` exits 1 in fault, which
/// `status_of` takes for a failure.
fn status(lab: &Lab, node: &str) -> Status {
    try_status_of(lab, node).unwrap_or_else(|| panic!("no status from {node}"))
}

/// The check `name` in a status.
fn check_of<'s>(status: &'s Status, name: &str) -> &'s CheckStatus {
    status
        .health
        .checks
        .iter()
        .find(|c| c.name == name)
        .unwrap_or_else(|| panic!("no check {name} in {:?}", status.health.checks))
}

/// When the VIP reached `node` after the event began, from the kernels' record.
fn arrived_after(seen: &Seen, node: usize) -> Duration {
    let added = seen.kernel.first_added(node).unwrap_or_else(|| {
        panic!(
            "the VIP never reached node {node}: {}",
            seen.kernel.describe()
        )
    });
    added.saturating_sub(seen.event_began)
}

/// The longest a check may take to fail once its service is gone, by the target:
/// `fall` runs one interval apart must fail, and the first of them starts within
/// one interval.
fn detection_bound(interval: Duration, fall: u32) -> Duration {
    interval * fall + interval
}

/// Prints how long `what` took, and panics with the logs unless within `low..=high`.
fn assert_within(what: &str, took: Duration, low: Duration, high: Duration, cluster: &Cluster) {
    eprintln!("{what}: {took:?} (bounds {low:?} to {high:?})");
    assert!(
        took >= low && took <= high,
        "{what} took {took:?}, expected {low:?} to {high:?}\n{}",
        cluster.logs()
    );
}

/// The `http` check on both nodes: alpha's service dies, the check fails after `fall`
/// runs, alpha goes to fault and hands over; beta takes over on the released
/// heartbeat. The failing check shows in `check`, `status`, `/metrics` and the log.
/// Alpha's service comes back, its check passes after `rise` runs, and automatic
/// failback brings the VIP back after `failback_delay`.
#[test]
fn a_dead_service_moves_the_vip_after_fall_runs_and_failback_brings_it_back() {
    let lab = Lab::new();
    let mut web = lab.serve_http("n1");
    lab.serve_http("n2");
    let mut cluster = Cluster::start_with(&lab, |sample| {
        with_checks(web_check())(sample.set("http.listen", "0.0.0.0:9469"))
    });

    let listed = check(&lab, &cluster.config);
    let text = String::from_utf8_lossy(&listed.stdout);
    assert!(
        listed.status.success() && text.contains("web") && text.contains("http"),
        "failoverd check does not list the web check: {}",
        describe(&listed)
    );

    let (_, seen) = cluster.across(&Expect::planned("alpha", "beta"), |_| {
        lab.kill(&web, Signal::SIGKILL)
            .expect("kill alpha's service");
        web.wait().expect("reap alpha's service");
    });
    // Detection, as the benchmark counts it: from the service's death to the new
    // holder. At least `fall` - 1 intervals (the first failed run may start at once),
    // less a little for a run that the kill cut short.
    let took = arrived_after(&seen, 1);
    assert_within(
        "service death to beta holding the VIP",
        took,
        INTERVAL * (FALL - 1) - Duration::from_millis(10),
        detection_bound(INTERVAL, FALL) + MOVE_SLACK,
        &cluster,
    );
    assert!(
        seen.client.lost <= MAX_LOST,
        "the client lost {} probes in the handover, at most {MAX_LOST}: {}",
        seen.client.lost,
        seen.client.raw
    );
    let log = lab.log(&cluster.alpha);
    assert!(
        log.contains(&format!("failing after {FALL} failed runs")),
        "no failing check in alpha's log\n{}",
        cluster.logs()
    );
    assert!(
        log.contains("health checks failing (web), peer beta is healthier"),
        "alpha's reason\n{}",
        cluster.logs()
    );

    // The views of the failing check.
    let alpha = status(&lab, "alpha");
    assert_eq!(alpha.state, Role::Fault);
    let web_status = check_of(&alpha, "web");
    assert_eq!(web_status.state, CheckState::Failing, "{web_status:?}");
    assert!(web_status.consecutive_failures >= FALL, "{web_status:?}");
    let detail = web_status.last_detail.clone().unwrap_or_default();
    assert!(
        !detail.is_empty(),
        "no detail for the failing check: {web_status:?}"
    );
    assert!(!alpha.health.failed, "an on = both check does not stick");
    // The view wraps at 100 columns: compare with the whitespace collapsed.
    let human = String::from_utf8_lossy(&ctl(&lab, "alpha", &["status"]).stdout).to_string();
    let words = |text: &str| text.split_whitespace().collect::<Vec<_>>().join(" ");
    let line =
        format!("check web failing http http://127.0.0.1:{HTTP_PORT}/health, weight 1: {detail}");
    assert!(
        words(&human).contains(&words(&line)),
        "no line {line:?} in the status:\n{human}"
    );
    let metrics = lab.exec_ok(
        "cl",
        &[
            "curl",
            "-sS",
            "--max-time",
            "5",
            "http://198.18.0.11:9469/metrics",
        ],
    );
    assert!(
        metrics.contains("failoverd_check_failing{check=\"web\",kind=\"http\"} 1"),
        "{metrics}"
    );

    // The service comes back: `rise` passes, then the failback delay, then a planned
    // move back.
    let (_, seen) = cluster.across(&Expect::planned("beta", "alpha"), |_| {
        lab.serve_http("n1");
    });
    let took = arrived_after(&seen, 0);
    assert_within(
        "service back to alpha holding the VIP",
        took,
        FAILBACK_DELAY + INTERVAL * (RISE - 1),
        FAILBACK_DELAY + INTERVAL * (RISE + 1) + MOVE_SLACK,
        &cluster,
    );
    cluster.assert_log_contains("alpha", "check web (");
    assert!(lab.log(&cluster.alpha).contains("passes again"));
    assert!(
        lab.log(&cluster.beta)
            .contains("failback to preferred node alpha")
    );
}

/// An active-only check fails on the holder: a planned handover, and the failure
/// sticks. Alpha shows `failed`, beta sees it, and alpha does not take the VIP back
/// although it has the higher priority and failback is automatic, until `failoverd
/// clear app` on it; then failback moves it back after the delay.
#[test]
fn an_active_only_failure_sticks_until_cleared() {
    let lab = Lab::new();
    let mut cluster = Cluster::start_with(&lab, with_checks(app_check(&lab, "")));

    cluster.across(&Expect::planned("alpha", "beta"), |_| {
        break_app(&lab, "alpha", true)
    });
    cluster.assert_log_contains("alpha", "check app failed while this node was active");
    let alpha = status(&lab, "alpha");
    assert!(alpha.health.failed, "alpha does not show failed");
    let app = check_of(&alpha, "app");
    assert!(app.failed && app.failed_until.is_none(), "{app:?}");
    cluster.wait_for("beta to see alpha's failure", || {
        status(&lab, "beta").peers[0].failed
    });

    // Repaired, alpha still stays away: three failback delays.
    cluster.across(&Expect::stays("beta"), |_| {
        break_app(&lab, "alpha", false);
        std::thread::sleep(FAILBACK_DELAY * 3);
    });
    assert!(status(&lab, "alpha").health.failed);

    let (output, seen) = cluster.across(&Expect::planned("beta", "alpha"), |_| {
        ctl(&lab, "alpha", &["clear", "app"])
    });
    assert!(output.status.success(), "{}", describe(&output));
    let took = arrived_after(&seen, 0);
    assert_within(
        "clear to alpha holding the VIP",
        took,
        FAILBACK_DELAY,
        FAILBACK_DELAY + INTERVAL + MOVE_SLACK,
        &cluster,
    );
    cluster.assert_log_contains("alpha", "check app no longer counts as failed");
    assert!(!status(&lab, "alpha").health.failed);
}

/// The same as above with `failure_timeout`: the failure ends by itself after it,
/// and failback follows after its delay.
#[test]
fn an_active_only_failure_ends_after_its_failure_timeout() {
    let timeout = Duration::from_millis(1500);
    let lab = Lab::new();
    let extra = format!("failure_timeout = \"{}ms\"\n", timeout.as_millis());
    let mut cluster = Cluster::start_with(&lab, with_checks(app_check(&lab, &extra)));

    cluster.across(&Expect::planned("alpha", "beta"), |c| {
        break_app(&lab, "alpha", true);
        c.wait_for("alpha's failure to stick", || {
            lab.log(&c.alpha)
                .contains("check app failed while this node was active")
        });
        break_app(&lab, "alpha", false);
    });
    let alpha = status(&lab, "alpha");
    assert!(
        check_of(&alpha, "app").failed_until.is_some(),
        "{:?}",
        check_of(&alpha, "app")
    );
    // The failure ends `timeout` after it stuck, then failback waits its delay.
    cluster.across(&Expect::planned("beta", "alpha"), |c| {
        c.wait_for("the failure to end", || {
            lab.log(&c.alpha)
                .contains("check app no longer counts as failed")
        });
    });
    let log = lab.log(&cluster.alpha);
    let stuck = logged_at(&log, "check app failed while this node was active");
    let ended = logged_at(&log, "check app no longer counts as failed");
    assert_within(
        "the sticky failure",
        ended - stuck,
        timeout - LOG_SLACK,
        timeout + INTERVAL + MOVE_SLACK,
        &cluster,
    );
    let back = logged_at(&lab.log(&cluster.beta), "failback to preferred node alpha");
    assert_within(
        "the end of the failure to failback",
        back.saturating_sub(ended),
        FAILBACK_DELAY.saturating_sub(INTERVAL),
        FAILBACK_DELAY + INTERVAL + MOVE_SLACK,
        &cluster,
    );
}

/// The active-only service is broken on both nodes: alpha fails and hands over, beta
/// fails too once its start grace is over, and the VIP stays on beta: alpha's
/// failure sticks, so it is never the healthier node to hand back to. `status` on
/// beta shows both failures.
#[test]
fn a_service_broken_on_both_nodes_leaves_the_vip_where_it_is() {
    let lab = Lab::new();
    let mut cluster = Cluster::start_with(&lab, with_checks(app_check(&lab, "")));
    cluster.across(&Expect::planned("alpha", "beta"), |_| {
        break_app(&lab, "beta", true);
        break_app(&lab, "alpha", true);
    });
    // Four seconds: beta's grace and `fall` runs, then three failback delays, in
    // which a daemon that ping-pongs moves the VIP at least once.
    cluster.across(&Expect::stays("beta"), |c| {
        c.wait_for("beta's check to fail", || {
            check_of(&status(&lab, "beta"), "app").state == CheckState::Failing
        });
        std::thread::sleep(FAILBACK_DELAY * 3);
    });
    let beta = status(&lab, "beta");
    assert_eq!(beta.state, Role::Active);
    assert!(beta.peers[0].failed, "beta does not see alpha's failure");
    assert_eq!(check_of(&beta, "app").state, CheckState::Failing);
    let alpha = status(&lab, "alpha");
    assert!(alpha.health.failed && alpha.state != Role::Active);
    let own = String::from_utf8_lossy(&ctl(&lab, "alpha", &["status"]).stdout).to_string();
    assert!(
        own.contains("FAILED while active") && own.contains("failoverd clear app"),
        "alpha's status does not show its sticky failure:\n{own}"
    );
    let human = String::from_utf8_lossy(&ctl(&lab, "beta", &["status"]).stdout).to_string();
    assert!(
        human.contains("a check FAILED while active")
            && human
                .lines()
                .any(|l| l.trim_start().starts_with("check app") && l.contains("failing")),
        "beta's status does not show both failures:\n{human}"
    );
    for (node, child) in [("alpha", &cluster.alpha), ("beta", &cluster.beta)] {
        let moves = lab.log(child).matches("-> active").count();
        assert!(
            moves <= 1,
            "{node} became active {moves} times\n{}",
            cluster.logs()
        );
    }
}

/// A start hook that fails: `start_failure = "release"` (the default) makes the
/// built-in `start-hook` check fail, so the node that just took the VIP hands it
/// back to the healthy peer.
#[test]
fn a_failing_start_hook_hands_the_vip_to_the_peer() {
    let lab = Lab::new();
    let mut cluster = failing_start_cluster(&lab, "release");
    cluster.across(&Expect::round_trip("beta", "alpha"), |c| {
        let output = ctl(&lab, "alpha", &["takeover", "--no-wait"]);
        assert!(output.status.success(), "{}", describe(&output));
        c.wait_for("alpha's start hook to fail", || {
            lab.log(&c.alpha).contains("start hook failed")
        });
        c.wait_for("the VIP back on beta alone", || {
            vip_on(&lab, "n2") && !vip_on(&lab, "n1")
        });
    });
    let alpha = status(&lab, "alpha");
    assert_ne!(alpha.state, Role::Active);
    let hook = check_of(&alpha, "start-hook");
    assert!(hook.failed, "{hook:?}");
}

/// With `start_failure = "ignore"` the same failure is logged and nothing moves.
#[test]
fn a_failing_start_hook_with_ignore_keeps_the_vip() {
    let lab = Lab::new();
    let mut cluster = failing_start_cluster(&lab, "ignore");
    let expect = Expect::planned("beta", "alpha").settle(FAILBACK_DELAY * 2);
    cluster.across(&expect, |c| {
        let output = ctl(&lab, "alpha", &["takeover", "--no-wait"]);
        assert!(output.status.success(), "{}", describe(&output));
        c.wait_for("alpha's start hook to fail", || {
            lab.log(&c.alpha).contains("start hook failed")
        });
    });
    let alpha = status(&lab, "alpha");
    assert_eq!(alpha.state, Role::Active);
    assert_eq!(check_of(&alpha, "start-hook").state, CheckState::Passing);
}

/// A cluster whose start hook fails on alpha from now on (after 300 ms, so that the
/// client hears alpha hold the VIP first), with the VIP on beta and alpha standing
/// by.
fn failing_start_cluster<'a>(lab: &'a Lab, start_failure: &str) -> Cluster<'a> {
    let start = write_hook(
        lab,
        "start.sh",
        r#"if [ "$FAILOVERD_HOOK" = start ] && [ -e "{dir}/fail-start-$FAILOVERD_NODE" ]; then
  sleep 0.3
  exit 1
fi"#,
    );
    let mut cluster = Cluster::start_with(lab, |sample| {
        sample
            .set("hooks.start", start.display())
            .set("hooks.start_failure", start_failure)
    });
    lab.write_file("fail-start-alpha", "");
    let (output, _) = cluster.across(&Expect::planned("alpha", "beta"), |_| {
        ctl(lab, "alpha", &["standby", "--timeout", "10s"])
    });
    assert!(output.status.success(), "{}", describe(&output));
    cluster
}

/// The standby hook runs on entering standby, at start and after a release, with
/// `FAILOVERD_HOOK=standby`.
#[test]
fn the_standby_hook_runs_on_entering_standby() {
    let lab = Lab::new();
    let hook = lab.tmpdir().join("hook.sh");
    let mut cluster =
        Cluster::start_with(&lab, |sample| sample.set("hooks.standby", hook.display()));
    cluster.wait_for_hook("beta", "standby", &["state=standby", "node=beta"]);
    let (output, _) = cluster.across(&Expect::planned("alpha", "beta"), |_| {
        ctl(&lab, "alpha", &["standby", "--timeout", "10s"])
    });
    assert!(output.status.success(), "{}", describe(&output));
    cluster.wait_for_hook(
        "alpha",
        "standby",
        &["state=standby", "prev=active", "node=alpha"],
    );
}
