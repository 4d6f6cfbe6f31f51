//! The split-brain guard end to end: real daemons in the namespace lab (tests/common)
//! where a silent peer is not a dead one. A daemon killed on a machine that runs on,
//! heartbeats blocked while the LAN works, a restart that should cost nothing, a
//! standby that was paused, the fencing command that makes a takeover safe, and a
//! node that reaches no gateway when its peer is cut off from everything.
//!
//! The rules pinned, from the split-brain guard of docs/split-brain.md:
//! - **Do not steal a live VIP.** A node whose peer is silent on every link ARP-probes
//!   the VIPs before it takes over; while another MAC answers (`live_vip = "wait"`,
//!   the default) it goes to fault with "still answered by <MAC>", runs its fault
//!   hook, and takes over once the VIP stops answering. `live_vip = "take"` keeps the
//!   old takeover at `dead`.
//! - **Restarts that cost nothing.** A daemon that finds its VIP on its node at start
//!   keeps it (adopts it) unless a live peer holds the VIPs or is healthier; then it
//!   removes it at once. A node that did not run for `dead` reads the heartbeats
//!   queued meanwhile before it judges anyone dead.
//! - **Fencing.** Before an unplanned takeover, never before a planned one, the
//!   fencing command runs for the silent peer; the takeover follows its exit 0, and a
//!   failure is retried after `retry`, doubled after each failure.
//! - **A gateway** (`require_gateway = true`). A node that hears no peer and reaches
//!   no gateway holds its takeover (`takeover_held`, an error event, the fault hook
//!   once) and takes over once a gateway answers again; in reach of its gateway it
//!   takes over at `dead`.
//!
//! Every event that moves, or could move, the VIP runs inside `Cluster::across`
//! (tests/common/crossing.rs): the client's view and the kernels' record (no overlap
//! where the rule forbids one) held to the rule. Every wait and loop is bounded;
//! timing is only asserted as bounds with room for a loaded two-core machine. Like
//! every end-to-end test these need root. The heartbeat block needs `nft`
//! (nftables) and fails, never passes untested, without it.

#![allow(
    clippy::zombie_processes,
    reason = "the Lab kills and reaps the processes it spawned when it is dropped"
)]

mod common;

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::cluster::*;
use common::crossing::{DEATH_SLACK, Expect, Seen, arrived_after};
use common::sample::Sample;
use common::{Lab, N1_LAN, N1_XO, failoverd, require_nft};
use failoverd::machine::Role;
use failoverd::status::Status;
use nix::sys::signal::Signal;

/// `timing.interval` of the lab's configuration (tests/common/cluster.rs).
const INTERVAL: Duration = Duration::from_millis(50);
/// `cluster.port`: the heartbeats' UDP port, in the sample and so in the lab.
const HEARTBEAT_PORT: u16 = 694;
/// `timing.warn` of the lab's configuration.
const WARN: Duration = Duration::from_millis(150);
/// How often at most the guard probes again while a live VIP holds a takeover back.
const REPROBE: Duration = Duration::from_millis(500);
/// How long a test waits after the fact for a wrong decision to show: three times
/// `dead`, as `crossover_cut_moves_nothing` does.
const WRONG_MOVE_WINDOW: Duration = Duration::from_millis(900);
/// What a node says while `require_gateway` holds its takeover back (the status,
/// the error event and the fault hook's reason).
const NO_GATEWAY: &str = "no peer heard and no gateway reachable";
/// How long a held takeover is watched for a wrong move: three times `dead`, and
/// more, past several of the guard's looks (`REPROBE`).
const HOLD_WINDOW: Duration = Duration::from_millis(1500);
/// From the gateway's return to the VIP on the node that held back: the next gateway
/// probe and its answer (`health.interval`, 100 ms, and `health.timeout`, 100 ms; one
/// answer restores the gateway), the election that follows with the ARP probe's
/// answer at hand, then the add, with `DEATH_SLACK` for a loaded machine; and a
/// `REPROBE` more, in case the guard looks at the LAN again first.
const GATEWAY_BACK_BOUND: Duration = Duration::from_millis(900);
/// From a daemon's spawn to its first decisions: exec, the configuration, sockets
/// and the address dump, on a loaded machine.
const STARTUP_SLACK: Duration = Duration::from_millis(250);

// --- 1. do not steal a live VIP --------------------------------------------------

/// Alpha's daemon is killed; its namespace, its kernel and the VIP in it live on. Beta
/// hears nothing on either link, probes the VIP, hears alpha's MAC answer, and waits
/// instead of taking it: the client is served by alpha's kernel throughout.
#[test]
fn a_killed_daemon_on_a_live_node_keeps_its_vip_and_the_peer_holds_back() {
    let lab = Lab::new();
    let mut cluster = Cluster::start(&lab);
    let mac = mac_of(&lab, "n1");

    let (_, seen) = cluster.across(&Expect::stays("alpha"), |c| {
        kill_alpha(c);
        wait_for_hold(c, "beta", &mac);
        std::thread::sleep(WRONG_MOVE_WINDOW);
    });
    assert_no_loss(&seen, &cluster);
    let beta = status(&lab, "beta");
    assert_eq!(beta.state, Role::Standby, "{}", cluster.logs());
    let fault = cluster.wait_for_hook("beta", "fault", &["state=standby", "node=beta"]);
    assert!(
        fault.contains("still answered by") && fault.contains(&mac),
        "beta's fault hook: {fault}\n{}",
        cluster.logs()
    );
    assert_logged_error(&cluster, "beta", &["still answered by", &mac]);
    assert!(
        !lab.log(&cluster.beta).contains("-> active"),
        "beta went active while alpha's kernel answered for the VIP\n{}",
        cluster.logs()
    );
}

/// Beta holds back, standing by, while alpha's kernel answers for the VIP, and keeps probing:
/// once the address is gone from n1 (an operator deleted it, the machine went down),
/// beta takes over as soon as the VIP stops answering, as from a dead node.
#[test]
fn a_node_holding_back_takes_over_once_the_vip_stops_answering() {
    let lab = Lab::new();
    let mut cluster = Cluster::start(&lab);
    let mac = mac_of(&lab, "n1");
    cluster.across(&Expect::stays("alpha"), |c| {
        kill_alpha(c);
        wait_for_hold(c, "beta", &mac);
    });
    // Removed before beta adds it: never on both. The client's silence runs from the
    // removal until beta has announced it.
    let expect = Expect::planned("alpha", "beta").gap(silent_vip_bound());
    let (removed, seen) = cluster.across(&expect, |_| {
        lab.exec_ok("n1", &["ip", "addr", "del", VIP_CIDR, "dev", "eth0"]);
        Instant::now()
    });
    let took = arrived_after(&seen, 1, removed);
    eprintln!("VIP removed from n1 to added on n2: {took:?}");
    assert!(
        took <= silent_vip_bound(),
        "beta added the VIP {took:?} after it stopped answering on n1, at most {:?}\n{}\n{}",
        silent_vip_bound(),
        seen.kernel.describe(),
        cluster.logs()
    );
    assert_eq!(status(&lab, "beta").state, Role::Active);
}

/// The longest from a held-back VIP falling silent to the waiting node holding it:
/// the guard probes a held-back takeover again `REPROBE` (500 ms) after the last
/// answer (src/machine/guard.rs: a few frames a second, not a stream), a probe that
/// nobody answers lasts its window (three quarters of `dead` - `warn`: 112 ms here),
/// then the add and the announcement, with `DEATH_SLACK` for a loaded machine.
fn silent_vip_bound() -> Duration {
    let window = (DEAD - WARN) * 3 / 4;
    REPROBE + window + DEATH_SLACK
}

/// The heartbeat port is blocked by nftables in both nodes, in both directions, while
/// the LAN carries everything else: each node hears no peer. Beta probes, hears
/// alpha's MAC answer for the VIP and holds back, standing by,; alpha stays active; the client
/// is served throughout. Unblocked, beta hears alpha active again and is standby.
#[test]
fn blocked_heartbeats_with_a_working_lan_leave_one_holder() {
    let lab = Lab::new();
    require_nft(&lab);
    let mut cluster = Cluster::start(&lab);
    let mac = mac_of(&lab, "n1");
    let expect = Expect::stays("alpha").settle(Duration::from_millis(500));
    let (_, seen) = cluster.across(&expect, |c| {
        for host in ["n1", "n2"] {
            block_heartbeats(&lab, host);
        }
        wait_for_hold(c, "beta", &mac);
        std::thread::sleep(WRONG_MOVE_WINDOW);
        let alpha = status(&lab, "alpha");
        assert_eq!(alpha.state, Role::Active, "{}", c.logs());
        assert_eq!(status(&lab, "beta").state, Role::Standby, "{}", c.logs());
        assert!(status(&lab, "beta").takeover_held.is_some(), "{}", c.logs());
        for host in ["n1", "n2"] {
            unblock_heartbeats(&lab, host);
        }
        c.wait_for("beta standby once it hears alpha again", || {
            try_status_of(&lab, "beta").is_some_and(|s| s.state == Role::Standby)
        });
    });
    assert_no_loss(&seen, &cluster);
    assert_logged_error(&cluster, "beta", &["still answered by", &mac]);
    assert_eq!(status(&lab, "alpha").state, Role::Active);
}

/// Alpha's daemon, the holder, is paused (SIGSTOP, as a stalled VM) for three times
/// `dead`: its kernel keeps answering for the VIP, so beta holds back, standing by, instead of
/// doubling it. Resumed, alpha carries on as active and beta returns to standby:
/// nothing moved, and the client was served throughout.
#[test]
fn a_paused_active_daemon_keeps_its_vip_and_the_peer_holds_back() {
    let lab = Lab::new();
    let mut cluster = Cluster::start(&lab);
    let mac = mac_of(&lab, "n1");
    let expect = Expect::stays("alpha").settle(Duration::from_millis(500));
    let (_, seen) = cluster.across(&expect, |c| {
        lab.kill(&c.alpha, Signal::SIGSTOP).expect("SIGSTOP alpha");
        let paused = Instant::now();
        wait_for_hold(c, "beta", &mac);
        std::thread::sleep((DEAD * 3).saturating_sub(paused.elapsed()));
        lab.kill(&c.alpha, Signal::SIGCONT).expect("SIGCONT alpha");
        c.wait_for("beta standby once it hears alpha again", || {
            try_status_of(&lab, "beta").is_some_and(|s| s.state == Role::Standby)
        });
    });
    assert_no_loss(&seen, &cluster);
    assert_eq!(status(&lab, "alpha").state, Role::Active);
}

// --- 2. restarts that cost nothing -----------------------------------------------

/// Heartbeat timers for a restart test, as the config writes them.
struct Timing {
    interval: &'static str,
    warn: &'static str,
    dead: &'static str,
    init_dead: &'static str,
}

/// At a 1 s interval a restart 1 s after the kill comes before `warn`: beta never
/// notices. The restarted alpha adopts the VIP it finds; `on_adopt` is left at
/// "keep", so no hook runs.
#[test]
fn a_daemon_restarted_a_second_after_sigkill_keeps_its_vip_at_a_1s_interval() {
    restart_a_second_after_sigkill(
        Timing {
            interval: "1s",
            warn: "2s",
            dead: "3s",
            init_dead: "3s",
        },
        None,
    );
}

/// At a 100 ms interval the restart comes after `dead`: beta has found the VIP still
/// answered and holds back, standing by,. The restarted alpha adopts the VIP all the same (a
/// peer holding back holds nothing), beta stays standby. With `on_adopt = "start"`
/// the start hook runs once for the adoption.
#[test]
fn a_daemon_restarted_a_second_after_sigkill_keeps_its_vip_at_a_100ms_interval() {
    restart_a_second_after_sigkill(
        Timing {
            interval: "100ms",
            warn: "300ms",
            dead: "500ms",
            init_dead: "1s",
        },
        Some("start"),
    );
}

/// Kills alpha's daemon, starts it again a second later, and holds the restart to
/// "costs nothing": the VIP never leaves n1 nor reaches n2, no probe of the client is
/// lost, alpha ends active with a reason that says it adopted the VIP, beta standby;
/// no stop hook, and the start hook only with `on_adopt = "start"`.
fn restart_a_second_after_sigkill(timing: Timing, on_adopt: Option<&str>) {
    let lab = Lab::new();
    let mut cluster = Cluster::start_with(&lab, |sample| {
        let sample = sample
            .set("timing.interval", timing.interval)
            .set("timing.warn", timing.warn)
            .set("timing.dead", timing.dead)
            .set("timing.init_dead", timing.init_dead);
        match on_adopt {
            Some(value) => sample.set("hooks.on_adopt", value),
            None => sample,
        }
    });
    let starts_before = hooks_of(&lab, "alpha", "start");
    let expect = Expect::stays("alpha").settle(Duration::from_millis(500));
    let (_, seen) = cluster.across(&expect, |c| {
        kill_alpha(c);
        std::thread::sleep(Duration::from_secs(1));
        c.alpha = start_daemon(&lab, "n1", "alpha", &c.config);
        c.wait_for("the restarted alpha active, beta standby", || {
            try_status_of(&lab, "alpha").is_some_and(|s| s.state == Role::Active)
                && try_status_of(&lab, "beta").is_some_and(|s| s.state == Role::Standby)
        });
    });
    assert_no_loss(&seen, &cluster);
    let alpha = status(&lab, "alpha");
    assert!(
        alpha.reason.contains("adopted") && alpha.vips.iter().all(|v| v.held_here),
        "alpha's reason {:?}, VIPs {:?}\n{}",
        alpha.reason,
        alpha.vips,
        cluster.logs()
    );
    assert!(
        lab.log(&cluster.alpha).contains("adopted"),
        "the restarted alpha's log does not say it adopted the VIP\n{}",
        cluster.logs()
    );
    assert_eq!(
        hooks_of(&lab, "alpha", "stop"),
        Vec::<String>::new(),
        "alpha ran its stop hook: an adoption stops nothing\n{}",
        cluster.logs()
    );
    let starts = hooks_of(&lab, "alpha", "start");
    match on_adopt {
        None => assert_eq!(
            starts,
            starts_before,
            "with on_adopt = \"keep\" the adoption ran the start hook\n{}",
            cluster.logs()
        ),
        Some(_) => {
            // Counted by reason: the first start hook's line may land after
            // `starts_before` was read.
            let new: Vec<&String> = starts.iter().filter(|l| l.contains("adopted")).collect();
            assert!(
                new.len() == 1,
                "with on_adopt = \"start\" one start hook run for the adoption, got \
                 {new:?}\n{}",
                cluster.logs()
            );
        }
    }
    assert_eq!(status(&lab, "beta").state, Role::Standby);
}

/// With `live_vip = "take"` beta takes over at `dead` from a killed daemon whose
/// kernel keeps the VIP (the overlap is the price of that setting, reported). Alpha's
/// daemon, started again, hears beta active and removes the VIP from n1 at once:
/// within one interval of its start, and the slack for a process to start.
#[test]
fn with_live_vip_take_a_restarted_daemon_removes_the_vip_the_peer_took() {
    let lab = Lab::new();
    // Manual failback: the restarted, preferred alpha would take the VIP back after
    // a second, a planned move this test is not about.
    let mut cluster = Cluster::start_with(&lab, |sample| {
        sample
            .with_table("split_brain")
            .set("split_brain.live_vip", "take")
            .set("cluster.failback", "manual")
    });
    let (restarted, seen) = cluster.across(&Expect::unplanned("alpha", "beta"), |c| {
        kill_alpha(c);
        c.wait_for("beta to take the VIP from the killed alpha", || {
            vip_on(&lab, "n2")
        });
        let restarted = Instant::now();
        c.alpha = start_daemon(&lab, "n1", "alpha", &c.config);
        c.wait_for("the restarted alpha to remove its VIP", || {
            !vip_on(&lab, "n1")
        });
        restarted
    });
    let removed = seen.kernel.started + seen.kernel.last_removed(0).expect("removed from n1");
    let bound = INTERVAL + STARTUP_SLACK;
    let took = removed.checked_duration_since(restarted);
    eprintln!("restart to removal on n1: {took:?} (at most {bound:?})");
    assert!(
        took.is_some_and(|t| t <= bound),
        "the restarted alpha removed the VIP {took:?} after its start, at most {bound:?}\n{}\n{}",
        seen.kernel.describe(),
        cluster.logs()
    );
    assert!(
        !seen.kernel.at_end()[0],
        "the VIP came back to n1 after alpha removed it\n{}",
        seen.kernel.describe()
    );
    assert_eq!(status(&lab, "beta").state, Role::Active);
    assert!(
        !hooks_of(&lab, "alpha", "start")
            .iter()
            .any(|l| l.contains("adopted")),
        "alpha adopted a VIP that beta held\n{}",
        cluster.logs()
    );
}

/// Beta, the standby, is stopped (SIGSTOP, as a paused VM) for three times `dead` at
/// a 10 ms interval and resumed. It must read the heartbeats that queued up meanwhile
/// before it judges alpha: it never adds the VIP. `live_vip = "take"` so that the
/// ARP probe, which would also stop it, does not hide a wrong judgement.
#[test]
fn a_standby_paused_past_dead_never_takes_the_vip_when_it_resumes() {
    let lab = Lab::new();
    let mut cluster = Cluster::start_with(&lab, |sample| {
        sample
            .with_table("split_brain")
            .set("split_brain.live_vip", "take")
            .set("timing.interval", "10ms")
    });
    let expect = Expect::stays("alpha").settle(Duration::from_millis(500));
    let (_, seen) = cluster.across(&expect, |c| {
        lab.kill(&c.beta, Signal::SIGSTOP).expect("SIGSTOP beta");
        std::thread::sleep(DEAD * 3);
        lab.kill(&c.beta, Signal::SIGCONT).expect("SIGCONT beta");
        std::thread::sleep(WRONG_MOVE_WINDOW);
    });
    assert_no_loss(&seen, &cluster);
    let beta = lab.log(&cluster.beta);
    assert!(
        !beta.contains("-> active") && !beta.contains("peer alpha dead"),
        "the resumed beta judged alpha by its own pause\n{}",
        cluster.logs()
    );
    assert_eq!(status(&lab, "beta").state, Role::Standby);
    assert_eq!(status(&lab, "alpha").state, Role::Active);
}

// --- 3. fencing ------------------------------------------------------------------

/// The daemon-dead case with the ssh-vip.sh example as fencing command, and a fake
/// `ssh` on beta's PATH that runs the remote command in n1 (`ip netns exec`): the
/// fence removes the VIP from alpha's kernel, and only then does beta add it. The
/// fence runs once, with the environment docs/configuration.md promises (`[fencing]`).
#[test]
fn a_fence_that_removes_the_vip_lets_the_peer_take_over_without_overlap() {
    let lab = Lab::new();
    let fake = fake_ssh(&lab);
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/fencing/ssh-vip.sh");
    let mut cluster = start_with_beta_env(
        &lab,
        |sample| {
            sample
                .with_table("fencing")
                .set("fencing.command", script.display())
                .set("fencing.timeout", "10s")
                .set("fencing.retry", "1s")
        },
        &[("PATH", &format!("{}:{}", fake.display(), system_path()))],
    );
    let mac = mac_of(&lab, "n1");
    // Never on both nodes; the client's silence runs from the fence's delete on n1 to
    // beta's add and announcement.
    let expect = Expect::planned("alpha", "beta").gap(DEAD + DEATH_SLACK);
    cluster.across(&expect, kill_alpha);
    let calls = fence_calls(&lab);
    assert_eq!(calls.len(), 1, "fence runs: {calls:?}\n{}", cluster.logs());
    let call = &calls[0];
    let expected = [
        ("destination", format!("root@{N1_XO}")),
        ("FAILOVERD_HOOK", "fence".into()),
        ("FAILOVERD_NODE", "beta".into()),
        ("FAILOVERD_CLUSTER", "e2e".into()),
        ("FAILOVERD_PEER", "alpha".into()),
        // Link order: the crossover, then the LAN.
        ("FAILOVERD_PEER_ADDRESSES", format!("{N1_XO} {N1_LAN}")),
        ("FAILOVERD_VIPS", VIP_CIDR.into()),
        ("FAILOVERD_ANSWERED_BY", mac.clone()),
    ];
    for (key, value) in expected {
        assert_eq!(
            call.get(key).map(|v| v.to_lowercase()),
            Some(value.to_lowercase()),
            "{key} of the fence run: {call:?}\n{}",
            cluster.logs()
        );
    }
    assert!(
        call.get("FAILOVERD_REASON").is_some_and(|r| !r.is_empty()),
        "the fence got no reason: {call:?}"
    );
    assert_eq!(status(&lab, "beta").state, Role::Active);
}

/// A fencing command that fails twice and then exits 0 without removing anything:
/// beta runs it after `retry` (200 ms) and again after twice that, holds nothing
/// until it succeeds, logs each failure, and then takes over although the VIP still
/// answers on n1: a fence that exits 0 is believed (the overlap is reported).
#[test]
fn a_failing_fence_is_retried_with_a_doubling_wait_and_believed_when_it_succeeds() {
    let lab = Lab::new();
    let dir = lab.tmpdir().display().to_string();
    let fence = executable(
        &lab,
        "flaky-fence.sh",
        &format!(
            "#!/bin/sh\n\
             n=$(( $(cat {dir}/fence-count 2>/dev/null || echo 0) + 1 ))\n\
             echo $n > {dir}/fence-count\n\
             here=$(ip -o addr show to {vip} | wc -l)\n\
             echo \"$n $(date +%s.%N) vip_here=$here peer=$FAILOVERD_PEER\" >> {dir}/fence-runs.log\n\
             if [ $n -lt 3 ]; then echo \"no luck ($n)\" >&2; exit 1; fi\n",
            vip = common::VIP
        ),
    );
    let retry = Duration::from_millis(200);
    let mut cluster = Cluster::start_with(&lab, |sample| {
        sample
            .with_table("fencing")
            .set("fencing.command", fence.display())
            .set("fencing.retry", "200ms")
            .set("fencing.retry_max", "1s")
            .set("fencing.timeout", "5s")
    });
    cluster.across(&Expect::unplanned("alpha", "beta"), kill_alpha);
    let runs: Vec<(f64, String)> = fs::read_to_string(lab.tmpdir().join("fence-runs.log"))
        .unwrap_or_default()
        .lines()
        .map(|line| {
            let mut words = line.split_whitespace().skip(1);
            let at = words.next().and_then(|t| t.parse().ok()).expect("a time");
            (at, words.collect::<Vec<_>>().join(" "))
        })
        .collect();
    assert_eq!(runs.len(), 3, "fence runs: {runs:?}\n{}", cluster.logs());
    for (_, rest) in &runs {
        assert!(
            rest.contains("vip_here=0") && rest.contains("peer=alpha"),
            "a fence run saw the VIP on beta already, or the wrong peer: {runs:?}\n{}",
            cluster.logs()
        );
    }
    // The daemon's own record of when each run failed and the next started: it
    // runs at realtime priority, the fence script does not, and on a busy host the
    // script's clock can lag its start, and the script itself take, hundreds of
    // milliseconds. The wait runs from a failure to the next start.
    let log = lab.log(&cluster.beta);
    let started = logged_times(&log, "fencing alpha before taking over");
    let failed = logged_times(&log, "fence hook failed");
    assert_eq!(
        (started.len(), failed.len()),
        (3, 2),
        "fence runs started: {started:?}, failed: {failed:?}\n{}",
        cluster.logs()
    );
    let waits = [started[1] - failed[0], started[2] - failed[1]];
    eprintln!("waits from a failed fence run to the next: {waits:?}");
    let slack = Duration::from_millis(300);
    for (wait, want) in waits.iter().zip([retry, retry * 2]) {
        assert!(
            *wait >= want && *wait <= want + slack,
            "waits from a failed fence run to the next {waits:?}, expected {retry:?} then {:?}\n{}",
            retry * 2,
            cluster.logs()
        );
    }
    let failures = log
        .lines()
        .filter(|l| (l.contains("WARN") || l.contains("ERROR")) && l.contains("fenc"))
        .count();
    assert!(
        failures >= 2,
        "beta logged {failures} fence failures, expected one per failed run\n{}",
        cluster.logs()
    );
    assert!(vip_on(&lab, "n1") && vip_on(&lab, "n2"));
}

/// A planned move (alpha's graceful stop) never runs the fencing command.
#[test]
fn a_planned_move_never_runs_the_fence() {
    let lab = Lab::new();
    let dir = lab.tmpdir().display().to_string();
    let fence = executable(
        &lab,
        "fence.sh",
        &format!("#!/bin/sh\necho \"$FAILOVERD_PEER\" >> {dir}/fence-runs.log\n"),
    );
    let mut cluster = Cluster::start_with(&lab, |sample| {
        sample
            .with_table("fencing")
            .set("fencing.command", fence.display())
    });
    cluster.across(&Expect::planned("alpha", "beta"), |c| {
        lab.kill(&c.alpha, Signal::SIGTERM)
            .expect("send SIGTERM to alpha");
        wait_exit(&mut c.alpha)
    });
    assert!(
        !lab.tmpdir().join("fence-runs.log").exists(),
        "the fence ran for a planned move\n{}",
        cluster.logs()
    );
}

// --- 4. cut off from everything (require_gateway) --------------------------------

/// `[split_brain] require_gateway = true`, both nodes pinging the lab's gateway. Beta
/// loses its gateway (a blackhole route in n2: its links stay up) and then alpha, the
/// holder, dies with every link cut, LAN included. Beta hears no peer and reaches no
/// gateway: it does not add the VIP, and says why (`takeover_held` in its status, the
/// error event, the fault hook once). Its gateway back, it takes over within
/// `GATEWAY_BACK_BOUND`, and not a moment before: the kernels' record has the VIP
/// reach n2 only after the route is gone.
#[test]
fn require_gateway_holds_a_takeover_without_the_gateway_until_it_answers_again() {
    let lab = Lab::new();
    let mut cluster = Cluster::start_with(&lab, require_gateway);
    // The client hears alpha, nobody from the crash until beta's takeover, then beta.
    // That silence is beta's verdict on alpha (at `dead`, with `DEATH_SLACK`), the
    // hold watched for `HOLD_WINDOW`, and the gateway's return.
    let expect = Expect::unplanned("alpha", "beta")
        .gap(DEAD + DEATH_SLACK + HOLD_WINDOW + GATEWAY_BACK_BOUND);
    let (restored, seen) = cluster.across(&expect, |c| {
        lab.blackhole("n2", common::GATEWAY);
        c.wait_for("beta to count its gateway as lost", || {
            try_status_of(&lab, "beta").is_some_and(|s| {
                !s.health.gateways.is_empty() && s.health.gateways.iter().all(|g| !g.reachable)
            })
        });
        assert!(
            vip_on(&lab, "n1") && !vip_on(&lab, "n2"),
            "beta's gateway loss moved the VIP\n{}",
            c.logs()
        );
        c.crash_alpha();
        wait_for_gateway_hold(c);
        std::thread::sleep(HOLD_WINDOW);
        let beta = status(&lab, "beta");
        assert!(
            beta.state != Role::Active && !vip_on(&lab, "n2"),
            "beta took over with no peer heard and no gateway: state {:?}, VIP on n2 {}\n{}",
            beta.state,
            vip_on(&lab, "n2"),
            c.logs()
        );
        assert!(
            beta.takeover_held
                .as_deref()
                .is_some_and(|h| h.contains(NO_GATEWAY)),
            "beta's takeover_held after {HOLD_WINDOW:?} on hold: {:?}\n{}",
            beta.takeover_held,
            c.logs()
        );
        lab.unblackhole("n2", common::GATEWAY);
        Instant::now()
    });

    // Not before the gateway answered again, and soon after.
    let added = seen.kernel.started
        + seen
            .kernel
            .first_added(1)
            .unwrap_or_else(|| panic!("the VIP never reached n2: {}", seen.kernel.describe()));
    assert!(
        added > restored,
        "beta added the VIP {:?} before its gateway came back\n{}\n{}",
        restored - added,
        seen.kernel.describe(),
        cluster.logs()
    );
    let took = added - restored;
    eprintln!("gateway back to the VIP on n2: {took:?} (at most {GATEWAY_BACK_BOUND:?})");
    assert!(
        took <= GATEWAY_BACK_BOUND,
        "beta added the VIP {took:?} after its gateway came back, at most \
         {GATEWAY_BACK_BOUND:?}\n{}\n{}",
        seen.kernel.describe(),
        cluster.logs()
    );

    assert_logged_error(
        &cluster,
        "beta",
        &[NO_GATEWAY, "[split_brain] require_gateway"],
    );
    let holds: Vec<String> = hooks_of(&lab, "beta", "fault")
        .into_iter()
        .filter(|l| l.contains(NO_GATEWAY))
        .collect();
    assert_eq!(
        holds.len(),
        1,
        "beta's fault hook runs for the hold, once however often the election looked \
         again: {holds:?}\n{}",
        cluster.logs()
    );
    let beta = status(&lab, "beta");
    assert_eq!(beta.state, Role::Active, "{}", cluster.logs());
    assert_eq!(beta.takeover_held, None, "{}", cluster.logs());
}

/// The control: with `require_gateway = true` and the gateway in reach, the same
/// death of alpha (every link cut) lets beta take over at `dead`, as without it
/// (`Expect::unplanned` bounds the client's silence by `dead` and `DEATH_SLACK`), and
/// nothing is held.
#[test]
fn require_gateway_lets_a_node_that_reaches_its_gateway_take_over_at_dead() {
    let lab = Lab::new();
    let mut cluster = Cluster::start_with(&lab, require_gateway);
    cluster.across(&Expect::unplanned("alpha", "beta"), |c| {
        assert!(
            status(&lab, "beta")
                .health
                .gateways
                .iter()
                .any(|g| g.reachable),
            "beta's gateway is not reachable before the crash\n{}",
            c.logs()
        );
        c.crash_alpha();
    });
    let beta = status(&lab, "beta");
    assert_eq!(beta.state, Role::Active, "{}", cluster.logs());
    assert_eq!(beta.takeover_held, None, "{}", cluster.logs());
    assert!(
        !lab.log(&cluster.beta).contains(NO_GATEWAY),
        "beta held its takeover for a gateway it reaches\n{}",
        cluster.logs()
    );
}

// --- helpers ---------------------------------------------------------------------

/// Kills alpha's daemon outright and reaps it; unlike `Cluster::crash_alpha` the
/// node lives on, and so does the VIP in its kernel.
fn kill_alpha(cluster: &mut Cluster) {
    cluster
        .lab
        .kill(&cluster.alpha, Signal::SIGKILL)
        .expect("send SIGKILL to alpha");
    cluster.alpha.wait().expect("reap alpha");
    assert!(
        vip_on(cluster.lab, "n1"),
        "the kernel keeps the VIP of a killed daemon"
    );
}

/// Waits (at most `LIMIT`) until `node` stands by with a takeover held for the VIP
/// still answered by `mac`; a timeout says what `node` reported instead.
fn wait_for_hold(cluster: &Cluster, node: &str, mac: &str) {
    let deadline = Instant::now() + LIMIT;
    loop {
        let last = try_status_of(cluster.lab, node);
        if last.as_ref().is_some_and(|s| {
            s.state == Role::Standby
                && s.takeover_held.as_ref().is_some_and(|held| {
                    held.contains("still answered by") && held.to_lowercase().contains(mac)
                })
        }) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {LIMIT:?} waiting for {node} to hold back, the VIP still answered \
             by {mac}; {node} reported {}\n{}",
            last.map_or("no status".into(), |s| format!(
                "state {:?}, reason {:?}, takeover_held {:?}",
                s.state, s.reason, s.takeover_held
            )),
            cluster.logs()
        );
        std::thread::sleep(POLL);
    }
}

/// The lab's configuration with `[split_brain] require_gateway = true`; the sample
/// pings the lab's gateway (`[health] gateways`), which the setting needs.
fn require_gateway(sample: Sample) -> Sample {
    sample
        .with_table("split_brain")
        .set("split_brain.require_gateway", true)
}

/// Waits (at most `LIMIT`) until beta holds its takeover back for want of a gateway,
/// without the VIP; a timeout says what beta reported instead.
fn wait_for_gateway_hold(cluster: &Cluster) {
    let lab = cluster.lab;
    let deadline = Instant::now() + LIMIT;
    loop {
        let last = try_status_of(lab, "beta");
        assert!(
            !vip_on(lab, "n2"),
            "beta added the VIP with no peer heard and no gateway\n{}",
            cluster.logs()
        );
        if last
            .as_ref()
            .and_then(|s| s.takeover_held.as_deref())
            .is_some_and(|held| held.contains(NO_GATEWAY))
        {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {LIMIT:?} waiting for beta to hold its takeover for want of a \
             gateway; beta reported {}\n{}",
            last.map_or("no status".into(), |s| format!(
                "state {:?}, reason {:?}, takeover_held {:?}",
                s.state, s.reason, s.takeover_held
            )),
            cluster.logs()
        );
        std::thread::sleep(POLL);
    }
}

/// `node`'s status, whatever its role (`status` exits 1 in fault).
fn status(lab: &Lab, node: &str) -> Status {
    try_status_of(lab, node).unwrap_or_else(|| panic!("no status from {node}"))
}

/// The MAC address of eth0 in `host`, as "aa:bb:cc:dd:ee:ff".
fn mac_of(lab: &Lab, host: &str) -> String {
    let link = lab.exec_ok(host, &["ip", "-o", "link", "show", "eth0"]);
    link.split_whitespace()
        .skip_while(|w| *w != "link/ether")
        .nth(1)
        .unwrap_or_else(|| panic!("no MAC address in {link:?}"))
        .to_lowercase()
}

/// The client lost no probe: the VIP answered throughout.
fn assert_no_loss(seen: &Seen, cluster: &Cluster) {
    assert_eq!(
        seen.client.lost,
        0,
        "the client lost probes: {}\n{}",
        seen.client.raw,
        cluster.logs()
    );
}

/// `node` logged an error line holding every one of `texts`.
fn assert_logged_error(cluster: &Cluster, node: &str, texts: &[&str]) {
    let child = if node == "alpha" {
        &cluster.alpha
    } else {
        &cluster.beta
    };
    let log = cluster.lab.log(child);
    assert!(
        log.lines()
            .any(|l| l.contains("ERROR") && texts.iter().all(|t| l.to_lowercase().contains(t))),
        "no error in {node}'s log with {texts:?}\n{}",
        cluster.logs()
    );
}

/// The lines of `node`'s hook log written by `hook`.
fn hooks_of(lab: &Lab, node: &str, hook: &str) -> Vec<String> {
    hook_lines(lab, node)
        .into_iter()
        .filter(|l| l.split_whitespace().next() == Some(hook))
        .collect()
}

/// Drops every UDP datagram to or from the heartbeat port in `host`, both ways,
/// inside its namespace only.
fn block_heartbeats(lab: &Lab, host: &str) {
    let port = HEARTBEAT_PORT;
    let rules = format!(
        "add table inet split_brain_test; \
         add chain inet split_brain_test input {{ type filter hook input priority 0; }}; \
         add chain inet split_brain_test output {{ type filter hook output priority 0; }}; \
         add rule inet split_brain_test input udp dport {port} drop; \
         add rule inet split_brain_test input udp sport {port} drop; \
         add rule inet split_brain_test output udp dport {port} drop; \
         add rule inet split_brain_test output udp sport {port} drop"
    );
    lab.exec_ok(host, &["nft", &rules]);
}

fn unblock_heartbeats(lab: &Lab, host: &str) {
    lab.exec_ok(host, &["nft", "delete table inet split_brain_test"]);
}

/// Writes an executable script into the lab's directory.
fn executable(lab: &Lab, name: &str, text: &str) -> PathBuf {
    let path = lab.write_file(name, text);
    fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).expect("chmod");
    path
}

/// PATH for a daemon with fakes in front: the system's own directories.
fn system_path() -> &'static str {
    "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
}

/// A directory with a fake `ssh` that logs in to alpha only: for either of alpha's
/// heartbeat addresses it runs the remote command in n1 with `sh -c`, as sshd would,
/// and fails like ssh (255) for anything else. Each call appends the destination and
/// the FAILOVERD_* variables of the fence, one per line, then "---", to fence.log.
fn fake_ssh(lab: &Lab) -> PathBuf {
    let dir = lab.tmpdir().join("fakebin");
    fs::create_dir_all(&dir).expect("create the fakes' directory");
    let log = lab.tmpdir().join("fence.log");
    let text = format!(
        r#"#!/bin/sh
while [ $# -gt 0 ]; do
    case $1 in
    -[oiplFJ]) shift 2 ;;
    -*) shift ;;
    *) break ;;
    esac
done
destination=$1
shift
{{
    echo "destination=$destination"
    env | grep '^FAILOVERD_' | sort
    echo ---
}} >>{log}
case ${{destination#*@}} in
{N1_XO} | {N1_LAN}) ;;
*)
    echo "ssh: connect to host ${{destination#*@}} port 22: No route to host" >&2
    exit 255
    ;;
esac
exec ip netns exec {ns} sh -c "$*"
"#,
        log = log.display(),
        ns = lab.ns("n1"),
    );
    let ssh = dir.join("ssh");
    fs::write(&ssh, text).expect("write the fake ssh");
    fs::set_permissions(&ssh, fs::Permissions::from_mode(0o755)).expect("chmod");
    dir
}

/// Every fence run the fake `ssh` saw: its destination and FAILOVERD_* variables.
fn fence_calls(lab: &Lab) -> Vec<BTreeMap<String, String>> {
    let text = fs::read_to_string(lab.tmpdir().join("fence.log")).unwrap_or_default();
    text.split("---\n")
        .filter(|call| !call.trim().is_empty())
        .map(|call| {
            call.lines()
                .filter_map(|l| l.split_once('='))
                .map(|(k, v)| (k.to_owned(), v.to_owned()))
                .collect()
        })
        .collect()
}

/// `Cluster::start_with`, with `env` added to beta's daemon's environment (and so to
/// its hooks' and fencing command's): started through env(1), which execs the
/// daemon, so the PID the lab knows is the daemon's.
fn start_with_beta_env<'a>(
    lab: &'a Lab,
    edit: impl FnOnce(Sample) -> Sample,
    env: &[(&str, &str)],
) -> Cluster<'a> {
    let cluster = Cluster::launch_with_beta(lab, edit, |config| {
        let mut args: Vec<String> = env.iter().map(|(k, v)| format!("{k}={v}")).collect();
        args.push(failoverd().to_str().expect("UTF-8 path").to_owned());
        args.extend(run_args(lab, "beta", config));
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        lab.spawn("n2", "/usr/bin/env", &args)
    });
    cluster.wait_for(
        "alpha active with the VIP on n1 alone, beta standby",
        || vip_on(lab, "n1") && !vip_on(lab, "n2") && lab.log(&cluster.beta).contains("-> standby"),
    );
    cluster
}
