//! End-to-end tests of effects that hang: a hook that only notifies (standby,
//! fault) and never finishes, a mail server that does not answer, must not hold up
//! a takeover that comes after it. Real `failoverd run` processes for alpha (n1) and
//! beta (n2) in the lab's namespaces (tests/common); every wait is a bounded poll,
//! and the hung hook is killed with beta's daemon at the end. They need root.

#![allow(
    clippy::zombie_processes,
    reason = "the Lab kills and reaps the processes it spawned when it is dropped"
)]

mod common;

use std::fs;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::cluster::*;
use common::sample::Sample;
use common::{GATEWAY, Lab};
use failoverd::daemon::executor::NOTICE_WAIT;
use nix::sys::signal::Signal;

/// How long the hung hook sleeps: far beyond any takeover, and still bounded, so a
/// hook left behind by a failed run ends by itself.
const HANG: &str = "25";

/// Writes a hook that logs every run like `HOOK`, and on beta, as `hook`, records its
/// PID in hung-<hook>.pid and sleeps for `HANG` seconds.
fn hanging_hook(lab: &Lab, hook: &str) -> PathBuf {
    write_hook(
        lab,
        "hanging.sh",
        &format!(
            "if [ \"$FAILOVERD_NODE\" = beta ] && [ \"$FAILOVERD_HOOK\" = {hook} ]; then\n\
             echo $$ > \"{{dir}}/hung-{hook}.pid\"\n\
             exec sleep {HANG}\n\
             fi"
        ),
    )
}

/// Every hook is the hanging one; `hooks.timeout` is longer than the hang, so only
/// running beside the queue can let the takeover pass it.
fn with_hanging_hook(hook: &Path) -> impl FnOnce(Sample) -> Sample {
    let hook = hook.display().to_string();
    move |sample| {
        sample
            .set("hooks.start", &hook)
            .set("hooks.stop", &hook)
            .set("hooks.fault", &hook)
            .set("hooks.standby", &hook)
            .set("hooks.timeout", "30s")
    }
}

/// The PID the hung hook wrote, once it has.
fn hung_pid(cluster: &Cluster, hook: &str) -> i32 {
    let path = cluster.lab.tmpdir().join(format!("hung-{hook}.pid"));
    let mut pid = None;
    cluster.wait_for(&format!("beta's {hook} hook to hang"), || {
        pid = fs::read_to_string(&path)
            .ok()
            .and_then(|text| text.trim().parse().ok());
        pid.is_some()
    });
    pid.unwrap_or_default()
}

/// Alive means existing and not a zombie.
fn running(pid: i32) -> bool {
    fs::read_to_string(format!("/proc/{pid}/stat")).is_ok_and(|stat| {
        let state = stat.rsplit(')').next().unwrap_or("").trim_start();
        !state.starts_with('Z') && !state.starts_with('X')
    })
}

/// Alpha dies while beta's `hook` hangs: beta adds the VIP and runs its start hook
/// within the usual time, then stops gracefully, gives the hung hook its last wait,
/// says it cut it short, and the hook dies with it.
fn takeover_passes_the_hung_hook(cluster: &mut Cluster, hook: &str) {
    let pid = hung_pid(cluster, hook);
    assert!(running(pid), "the {hook} hook is not running");
    let crashed = Instant::now();
    cluster.crash_alpha();
    cluster.wait_for("beta to add the VIP beside its hung hook", || {
        vip_on(cluster.lab, "n2")
    });
    let took = crashed.elapsed();
    cluster.wait_for_hook("beta", "start", &["state=active"]);
    assert!(
        running(pid),
        "the {hook} hook ended before the takeover: the test shows nothing"
    );
    // Generous: a takeover takes `dead` and a probe; the hook hangs for 25 s.
    assert!(
        took < Duration::from_secs(8),
        "beta took {took:?} to add the VIP\n{}",
        cluster.logs()
    );
    cluster
        .lab
        .kill(&cluster.beta, Signal::SIGTERM)
        .expect("send SIGTERM to beta");
    let exit = wait_exit_within(&mut cluster.beta, LIMIT + NOTICE_WAIT);
    assert!(exit.success(), "beta's exit: {exit}\n{}", cluster.logs());
    let said = "exiting with notification hooks unfinished 5s after the handover (those \
                running are killed, those waiting never run): ";
    assert!(
        (cluster.lab.log(&cluster.beta).lines()).any(|l| l.contains(said) && l.contains(hook)),
        "beta did not name the {hook} hook it cut short\n{}",
        cluster.logs()
    );
    let deadline = Instant::now() + LIMIT;
    while running(pid) && Instant::now() < deadline {
        std::thread::sleep(POLL);
    }
    assert!(!running(pid), "the hung {hook} hook outlived beta's daemon");
}

/// The standby hook runs on beta as it settles; it hangs, and alpha dies.
#[test]
fn a_hung_standby_hook_does_not_delay_the_takeover() {
    let lab = Lab::new();
    let hook = hanging_hook(&lab, "standby");
    let mut cluster = Cluster::start_with(&lab, with_hanging_hook(&hook));
    takeover_passes_the_hung_hook(&mut cluster, "standby");
}

/// Beta loses its gateway and goes to fault; its fault hook hangs. Alpha dies: beta,
/// alone, takes the VIP whatever its health, without waiting for the hook.
#[test]
fn a_hung_fault_hook_does_not_delay_the_takeover() {
    let lab = Lab::new();
    let hook = hanging_hook(&lab, "fault");
    let mut cluster = Cluster::start_with(&lab, with_hanging_hook(&hook));
    lab.blackhole("n2", GATEWAY);
    cluster.assert_log_contains("beta", "-> fault");
    takeover_passes_the_hung_hook(&mut cluster, "fault");
}
