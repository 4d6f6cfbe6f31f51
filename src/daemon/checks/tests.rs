//! The check thread: schedules, active-only checks, a new set of checks on reload,
//! and the bounds on a run's detail. The runners of each kind are tested in their
//! own files.

use std::net::IpAddr;
use std::path::Path;

use super::*;
use crate::daemon::announce::AnnounceError;
use crate::daemon::hooks::{HookOutcome, HookStatus};
use crate::daemon::vip::{LinkInfo, VipError};
use crate::machine::{Hook, Sighting, VipFailure, VipTarget};

/// A host whose interfaces are all up but `down0`, and that notes the thread each
/// look at a link ran on; nothing else is asked of it.
#[derive(Clone, Default)]
struct Links(Arc<std::sync::Mutex<Vec<Option<String>>>>);

impl Host for Links {
    async fn add_vip(&self, _: &VipTarget) -> Result<(), VipFailure> {
        Ok(())
    }

    async fn remove_vip(&self, _: &VipTarget) -> Result<(), VipFailure> {
        Ok(())
    }

    async fn vips_present(&self, vips: &[VipTarget]) -> Vec<Result<bool, VipFailure>> {
        vips.iter().map(|_| Ok(false)).collect()
    }

    async fn write_note(
        &self,
        _: &std::path::Path,
        _: &'static str,
        _: bool,
    ) -> std::io::Result<()> {
        Ok(())
    }

    async fn link(&self, interface: &str) -> Result<LinkInfo, VipError> {
        let thread = std::thread::current().name().map(str::to_string);
        self.0.lock().unwrap().push(thread);
        Ok(LinkInfo {
            index: 2,
            mac: [2, 0, 0, 0, 0, 2],
            up: interface != "down0",
        })
    }

    fn announce(&self, _: &LinkInfo, _: &[IpAddr]) -> Result<(), AnnounceError> {
        Ok(())
    }

    async fn probe(
        &self,
        _: &[VipTarget],
        _: Duration,
    ) -> Result<Vec<Sighting>, crate::daemon::probe::ProbeError> {
        Ok(Vec::new())
    }

    async fn watch(
        &self,
        _: Vec<VipTarget>,
        _: tokio::sync::mpsc::Sender<Sighting>,
    ) -> Result<(), crate::daemon::probe::ProbeError> {
        Ok(())
    }

    async fn run_hook(
        &self,
        _: Hook,
        _: &Path,
        _: &[(String, String)],
        _: Duration,
    ) -> HookOutcome {
        HookOutcome {
            status: HookStatus::Exited(0),
            duration: Duration::ZERO,
        }
    }
}

fn link_check(name: &str, interface: &str, on: Scope) -> Check {
    Check {
        name: name.to_string(),
        probe: Probe::Link {
            interface: interface.to_string(),
        },
        interval: Duration::from_millis(20),
        timeout: Duration::from_millis(20),
        rise: 1,
        fall: 1,
        weight: 1,
        fatal: false,
        on,
        start_grace: Duration::ZERO,
        failure_timeout: None,
    }
}

fn context() -> Context {
    Context {
        node: "alpha".to_string(),
        cluster: "web".to_string(),
        run_as: None,
    }
}

fn start() -> (Checks, watch::Sender<Role>) {
    let (role, role_rx) = watch::channel(Role::Standby);
    (Checks::start(Links::default(), role_rx).unwrap(), role)
}

/// The check indexes that report within `wait`, after the runs already queued are
/// drained (they may predate what the test just changed).
async fn reporting(checks: &mut Checks, wait: Duration) -> Vec<usize> {
    let drained = Instant::now() + Duration::from_millis(100);
    while let Ok(Some(_)) = tokio::time::timeout_at(drained, checks.recv()).await {}
    let mut seen = Vec::new();
    let until = Instant::now() + wait;
    while let Ok(Some(report)) = tokio::time::timeout_at(until, checks.recv()).await {
        if !seen.contains(&report.index) {
            seen.push(report.index);
        }
    }
    seen.sort_unstable();
    seen
}

#[tokio::test]
async fn active_only_checks_run_only_between_the_machines_orders() {
    let (mut checks, _role) = start();
    checks.run(
        vec![
            link_check("link-eth0", "eth0", Scope::Both),
            link_check("app", "eth1", Scope::Active),
        ],
        context(),
    );
    let wait = Duration::from_millis(300);
    assert_eq!(reporting(&mut checks, wait).await, [0]);
    checks.set_active(true);
    assert_eq!(reporting(&mut checks, wait).await, [0, 1]);
    checks.set_active(false);
    assert_eq!(reporting(&mut checks, wait).await, [0]);
}

#[tokio::test]
async fn a_new_set_of_checks_replaces_the_old_and_keeps_the_active_state() {
    let (mut checks, _role) = start();
    checks.set_active(true);
    checks.run(
        vec![
            link_check("a", "down0", Scope::Both),
            link_check("b", "down0", Scope::Both),
        ],
        context(),
    );
    let first = tokio::time::timeout(Duration::from_secs(2), checks.recv())
        .await
        .expect("a run within the bound")
        .unwrap();
    assert!(!first.run.passed);
    assert_eq!(first.run.detail, "down");

    // Index 0 now names another check, which passes: no failing run of the old
    // check 0 may come through under that index, not even one already queued.
    checks.run(
        vec![
            link_check("c", "eth0", Scope::Active),
            link_check("a", "down0", Scope::Both),
        ],
        context(),
    );
    let until = Instant::now() + Duration::from_millis(300);
    let mut seen = [0u32; 2];
    while let Ok(Some(report)) = tokio::time::timeout_at(until, checks.recv()).await {
        seen[report.index] += 1;
        assert_eq!(report.run.passed, report.index == 0, "{report:?}");
    }
    assert!(seen[0] > 0, "the active-only check runs: still active");
    assert!(seen[1] > 0);
}

#[tokio::test]
async fn checks_run_on_their_own_thread_never_on_the_loops() {
    let host = Links::default();
    let (_role, role_rx) = watch::channel(Role::Standby);
    let mut checks = Checks::start(host.clone(), role_rx).unwrap();
    checks.run(vec![link_check("a", "eth0", Scope::Both)], context());
    for _ in 0..3 {
        assert!(checks.recv().await.is_some());
    }
    let loop_thread = std::thread::current().name().map(str::to_string);
    let threads = host.0.lock().unwrap().clone();
    assert!(threads.len() >= 3);
    for thread in threads {
        assert_eq!(thread.as_deref(), Some("failoverd-checks"));
        assert_ne!(thread, loop_thread);
    }
}

#[tokio::test]
async fn dropping_the_handle_stops_the_thread() {
    let (mut checks, _role) = start();
    checks.run(vec![link_check("a", "eth0", Scope::Both)], context());
    assert!(checks.recv().await.is_some());
    let started = std::time::Instant::now();
    drop(checks);
    assert!(started.elapsed() < Duration::from_secs(1));
}

/// Waits up to `within` for a ring of a run the machine must hear of at once.
async fn rung(checks: &mut Checks, within: Duration) -> bool {
    let ring = std::future::poll_fn(|cx| checks.poll_news(cx));
    matches!(tokio::time::timeout(within, ring).await, Ok(Some(())))
}

/// Whether a ring is waiting now (and takes it).
fn ringing(checks: &mut Checks) -> bool {
    let mut cx = std::task::Context::from_waker(std::task::Waker::noop());
    matches!(checks.poll_news(&mut cx), std::task::Poll::Ready(Some(())))
}

/// The runs waiting now, as the loop takes them after a turn.
fn taken(checks: &mut Checks) -> Vec<Report> {
    let mut runs = Vec::new();
    checks.take(|report| runs.push(report));
    runs
}

#[tokio::test]
async fn passes_after_rise_passes_in_a_row_wait_for_the_loop_without_ringing() {
    let (mut checks, _role) = start();
    let mut check = link_check("a", "eth0", Scope::Both);
    check.rise = 3;
    checks.run(vec![check], context());
    // The first three passes may end a failure the machine holds: they ring.
    assert!(
        rung(&mut checks, Duration::from_secs(2)).await,
        "the first pass rang"
    );
    let mut seen = taken(&mut checks).len();
    while seen < 4 {
        let report = tokio::time::timeout(Duration::from_secs(2), checks.recv())
            .await
            .expect("a run within the bound")
            .unwrap();
        assert!(report.run.passed);
        seen += 1;
    }
    // The fourth run is sent after the third one's ring: that ring, if any, is
    // waiting now, and is the last.
    let _ = ringing(&mut checks);
    let _ = taken(&mut checks);
    let mut later = 0;
    while later < 5 {
        let report = tokio::time::timeout(Duration::from_secs(2), checks.recv())
            .await
            .expect("a run within the bound")
            .unwrap();
        assert!(report.run.passed);
        later += 1;
    }
    assert!(!ringing(&mut checks), "a pass after three in a row rang");
}

#[tokio::test]
async fn every_failure_rings_and_the_loop_takes_every_run_waiting() {
    let (mut checks, _role) = start();
    checks.run(
        vec![
            link_check("down", "down0", Scope::Both),
            link_check("up", "eth0", Scope::Both),
        ],
        context(),
    );
    let mut failures = 0;
    for _ in 0..4 {
        assert!(
            rung(&mut checks, Duration::from_secs(2)).await,
            "a failure did not ring"
        );
        // A ring may come for a run taken with the one before it: then none waits.
        let runs = taken(&mut checks);
        failures += runs.iter().filter(|r| r.index == 0).count();
        assert!(runs.iter().all(|r| r.run.passed == (r.index == 1)));
    }
    assert!(failures >= 3, "only {failures} failures in four rings");
    // The passing check's runs are taken with them.
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert!(taken(&mut checks).iter().any(|r| r.index == 1));
}

#[tokio::test]
async fn routine_runs_left_waiting_ring_before_they_could_fill_the_channel() {
    let (mut checks, _role) = start();
    let passing = (0..10)
        .map(|i| link_check(&format!("up-{i}"), "eth0", Scope::Both))
        .collect();
    checks.run(passing, context());
    // Past their first runs (which ring), every run is a routine pass.
    let settled = Instant::now() + Duration::from_millis(300);
    while Instant::now() < settled {
        let _ = ringing(&mut checks);
        let _ = taken(&mut checks);
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let _ = ringing(&mut checks);
    let _ = taken(&mut checks);
    // Left alone, ten checks every 20 ms pile up: a ring comes once WAITING wait,
    // long before the channel is full.
    assert!(
        rung(&mut checks, Duration::from_secs(5)).await,
        "routine runs piled up without a ring"
    );
    let waiting = taken(&mut checks).len();
    assert!(
        (WAITING..RESULTS).contains(&waiting),
        "{waiting} runs waited for the ring"
    );
}

#[test]
fn news_is_a_failure_or_one_of_the_first_rise_passes() {
    // (passes in a row, rise) -> news
    let table = [
        ((0, 1), true),
        ((0, 5), true),
        ((1, 1), true),
        ((2, 1), false),
        ((3, 3), true),
        ((4, 3), false),
        ((1, 0), true),
        ((2, 0), false),
        ((u32::MAX, 3), false),
    ];
    for ((passes, rise), news) in table {
        assert_eq!(is_news(passes, rise), news, "passes {passes}, rise {rise}");
    }
}

#[test]
fn first_runs_start_in_small_groups_spread_over_a_short_jitter() {
    let interval = Duration::from_secs(10);
    // The first few (the defaults' gateway and link checks among them) start at
    // once, so that the thread wakes once for them.
    assert!((0..TOGETHER).all(|i| jitter(i, interval) == Duration::ZERO));
    let checks = 100 * TOGETHER;
    let mut delays: Vec<Duration> = (0..checks).map(|i| jitter(i, interval)).collect();
    assert!(delays.iter().all(|d| *d < MAX_JITTER));
    delays.sort_unstable();
    delays.dedup();
    assert_eq!(delays.len(), 100, "no two groups start together");
    let short = Duration::from_millis(40);
    assert!((0..checks).all(|i| jitter(i, short) < short));
}

#[test]
fn a_run_held_up_by_the_one_before_moves_the_schedule_rather_than_catching_up() {
    let due = std::time::Instant::now();
    let second = Duration::from_secs(1);
    assert_eq!(next_run(due, due, second), due + second);
    // Woken a little late: the schedule keeps its times.
    let woken = due + Duration::from_millis(3);
    assert_eq!(next_run(due, woken, second), due + second);
    // Started 1.5 s late (the run before timed out after 2.5 s): the next is a
    // second after this one, not due at once.
    let late = due + Duration::from_millis(1500);
    assert_eq!(next_run(due, late, second), late + second);
}

#[test]
fn a_detail_is_one_short_clean_line() {
    assert_eq!(bounded_line(b""), "");
    assert_eq!(bounded_line(b"  ok \n"), "ok");
    assert_eq!(
        bounded_line(b"tab\there\r\nnext\x1b[0m \xff!"),
        "tab here next [0m \u{fffd}!"
    );
    let long = bounded_line("é".repeat(300).as_bytes());
    assert!(long.len() <= MAX_DETAIL, "{}", long.len());
    assert!(long.ends_with("é…"), "{long}");
    let words = bounded_line("word ".repeat(100).as_bytes());
    assert!(words.len() <= MAX_DETAIL && words.ends_with('…'), "{words}");
}
