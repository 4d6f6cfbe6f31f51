//! Steadiness on a starved host: both nodes beat every 10 ms (or 100 ms) while the
//! host is buried in CPU-bound work, realtime work below the daemon's priority, or
//! memory pressure aimed at the daemons. A node that the scheduler or the pager can
//! hold back for longer than `dead` makes its peer take over, and the two then fight:
//! before the heartbeat thread ran at realtime priority, 64 hogs for 15 s at 10 ms
//! moved the VIP several times a run.
//!
//! Like the other end-to-end tests they need root. Every load (`pressure`, an
//! example) stops by itself after its seconds, and is stopped by PID if the test
//! ends first; every namespace is the lab's own.

#![allow(
    clippy::zombie_processes,
    reason = "the Lab kills and reaps the processes it spawned when it is dropped"
)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Child;
use std::time::{Duration, Instant};

use common::cluster::*;
use common::sample::Sample;
use common::{Lab, Probe, VIP, netprobe};

/// How long the load lasts.
const LOAD: Duration = Duration::from_secs(15);
/// CPU-bound threads per node: with both nodes, 64 on this host, a load average far
/// above any core count, as a runaway job or a build makes it.
const HOGS: u32 = 32;

/// The tests of this file load the whole machine on purpose; they run one at a
/// time, so that none measures under another's load.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

/// The `pressure` example, built next to netprobe.
fn pressure() -> PathBuf {
    let path = netprobe().with_file_name("pressure");
    assert!(
        path.is_file(),
        "{} is missing: build it first with `cargo build --examples` (scripts/test.sh does)",
        path.display()
    );
    path
}

/// A heartbeat every `interval`, late after three, dead after five: as tight as an
/// administrator would set a crossover cable.
fn timing(interval: u64, dead: u64) -> impl FnOnce(Sample) -> Sample {
    move |sample: Sample| {
        sample
            .set("timing.interval", format!("{interval}ms"))
            .set("timing.warn", format!("{}ms", interval * 3))
            .set("timing.dead", format!("{dead}ms"))
            .set("timing.init_dead", "1s")
            .set("health.interval", "1s")
            .set("health.timeout", "1s")
    }
}

/// Starts `threads` busy threads in `host` for `LOAD`, under `chrt -r PRIORITY` when
/// a realtime priority is given.
fn hogs(lab: &Lab, host: &str, threads: u32, realtime: Option<u8>) -> Child {
    let pressure = pressure();
    let pressure = pressure.to_str().expect("UTF-8 path");
    let threads = threads.to_string();
    let seconds = LOAD.as_secs().to_string();
    let spin = [
        pressure,
        "spin",
        "--threads",
        &threads,
        "--seconds",
        &seconds,
    ];
    match realtime {
        None => lab.spawn(host, pressure, &spin[1..]),
        Some(priority) => {
            let priority = priority.to_string();
            let mut args = vec!["-r", &priority];
            args.extend(spin);
            lab.spawn(host, "chrt", &args)
        }
    }
}

/// Waits for a load to end by itself (it is bounded by `LOAD`).
fn wait_load(lab: &Lab, load: &mut Child) {
    let deadline = Instant::now() + LOAD + Duration::from_secs(15);
    loop {
        if let Some(status) = load.try_wait().expect("wait for the load") {
            assert!(status.success(), "the load failed: {}", lab.log(load));
            return;
        }
        assert!(Instant::now() < deadline, "the load did not end by itself");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// The role changes a daemon logged after the first `from` bytes of its log.
fn moves(log: &str, from: usize) -> Vec<String> {
    log.get(from..)
        .unwrap_or_default()
        .lines()
        .filter(|line| line.contains("-> active") || line.contains("-> standby"))
        .map(str::to_owned)
        .collect()
}

/// Major page faults (pages read back from disk) of process `pid` so far.
fn major_faults(pid: u32) -> u64 {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("read /proc stat");
    stat.rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().nth(9))
        .and_then(|field| field.parse().ok())
        .expect("majflt in /proc/PID/stat")
}

/// The longest time a daemon reported it did not run, after the first `from` bytes
/// of its log.
fn longest_stall(log: &str, from: usize) -> Duration {
    log.get(from..)
        .unwrap_or_default()
        .lines()
        .filter_map(|line| line.split_once("did not run for ")?.1.split_once(' '))
        .filter_map(|(took, _)| failoverd::duration::parse_duration(took).ok())
        .max()
        .unwrap_or_default()
}

/// What a loaded run did: the moves each daemon logged and what the client saw.
struct Run {
    moves: Vec<String>,
    client_changes: usize,
    client_duplicates: u64,
    client: String,
    logs: String,
}

/// Starts the cluster with `timing`, puts `load` on it while a client probes the VIP
/// every 20 ms, and reports what moved. `load` starts the load's processes and
/// returns them; the run waits for each to end by itself.
fn loaded(lab: &Lab, cluster: &Cluster, load: impl FnOnce(&Lab, &Cluster) -> Vec<Child>) -> Run {
    let alpha_from = lab.log(&cluster.alpha).len();
    let beta_from = lab.log(&cluster.beta).len();
    // 20 s of probes at most, whatever happens: the load lasts 15.
    let probe = lab.start_probe(
        &Probe::new(VIP)
            .count(1000)
            .interval(Duration::from_millis(20))
            .timeout(Duration::from_millis(500)),
    );
    let mut running = load(lab, cluster);
    for process in &mut running {
        wait_load(lab, process);
    }
    // Let whatever the load held back come out before looking.
    std::thread::sleep(Duration::from_secs(1));
    let summary = probe.finish();
    let mut moves = self::moves(&lab.log(&cluster.alpha), alpha_from);
    moves.extend(self::moves(&lab.log(&cluster.beta), beta_from));
    Run {
        moves,
        client_changes: summary.changes.len(),
        client_duplicates: summary.duplicates,
        client: summary.raw,
        logs: cluster.logs(),
    }
}

fn assert_steady(run: &Run, allowed: usize, what: &str) {
    assert!(
        run.moves.len() <= allowed * 2,
        "{what}: the daemons changed role {} times (at most {allowed} move allowed):\n{}\n\
         client: {}\n{}",
        run.moves.len(),
        run.moves.join("\n"),
        run.client,
        run.logs
    );
    assert!(
        run.client_changes <= allowed,
        "{what}: the client saw the VIP answered by another node {} times (at most \
         {allowed}): {}\n{}",
        run.client_changes,
        run.client,
        run.logs
    );
    assert_eq!(
        run.client_duplicates, 0,
        "{what}: a probe was answered by both nodes: {}",
        run.client
    );
}

/// Both nodes' heartbeat threads at realtime priority, with memory locked.
fn assert_realtime(lab: &Lab) {
    for node in ["alpha", "beta"] {
        let status = status_of(lab, node);
        assert_eq!(
            status.scheduling.realtime_priority, 10,
            "{node}: {:?}",
            status.scheduling
        );
        assert!(
            status.scheduling.memory_locked,
            "{node}: {:?}",
            status.scheduling
        );
    }
}

#[test]
fn at_10ms_64_cpu_hogs_move_the_vip_at_most_once() {
    cpu_hogs((10, 50), 1, "64 CPU hogs at a 10 ms interval");
}

#[test]
fn at_100ms_64_cpu_hogs_move_nothing() {
    cpu_hogs((100, 500), 0, "64 CPU hogs at a 100 ms interval");
}

/// 64 CPU-bound threads on the pair beating every `interval` ms, dead after `dead`:
/// at most `allowed` moves.
fn cpu_hogs((interval, dead): (u64, u64), allowed: usize, what: &str) {
    let _one = one_at_a_time();
    let lab = Lab::new();
    let cluster = Cluster::start_with(&lab, timing(interval, dead));
    assert_realtime(&lab);
    let run = loaded(&lab, &cluster, |lab, _| {
        vec![hogs(lab, "n1", HOGS, None), hogs(lab, "n2", HOGS, None)]
    });
    assert_steady(&run, allowed, what);
}

/// Realtime hogs below the daemon's priority, one per core and node: they take
/// every CPU from everything at normal priority (the client and the service answer
/// from above them, see `common`). The kernel's realtime throttling
/// (`kernel.sched_rt_runtime_us`, 950 ms of every second) then stops every
/// realtime thread, the daemons' too, for the last 50 ms of each second: `dead`
/// must be longer than that, as docs/steadiness.md says.
#[test]
fn realtime_hogs_below_the_daemon_move_nothing() {
    let _one = one_at_a_time();
    let lab = Lab::new();
    let cluster = Cluster::start_with(&lab, timing(10, 100));
    assert_realtime(&lab);
    let cores = std::thread::available_parallelism().map_or(2, |n| n.get() as u32);
    let run = loaded(&lab, &cluster, |lab, _| {
        vec![
            hogs(lab, "n1", cores, Some(5)),
            hogs(lab, "n2", cores, Some(5)),
        ]
    });
    assert_steady(&run, 0, "realtime hogs at priority 5, 10 ms interval");
    // Starved daemons would not move the VIP either, both silent at once and aware
    // of it; the point is that they go on beating, held up only by the throttling.
    for daemon in [&cluster.alpha, &cluster.beta] {
        let stall = longest_stall(&lab.log(daemon), 0);
        assert!(
            stall < Duration::from_millis(100),
            "a daemon did not run for {stall:?} under realtime hogs below its priority\n{}",
            run.logs
        );
    }
}

/// Memory pressure aimed at the daemons: every 10 ms the kernel is asked to page
/// out every page of both (process_madvise, MADV_PAGEOUT), with CPU hogs beside.
/// Locked pages stay, so the heartbeat path is never read back from disk. Each
/// node runs its own copy of the binary, as on two hosts: a page two processes map
/// is never paged out.
#[test]
fn memory_pressure_reads_nothing_back_from_disk_and_moves_at_most_once() {
    let _one = one_at_a_time();
    let lab = Lab::new();
    let config = write_config_with(&lab, timing(10, 50));
    lab.serve("n1", "alpha");
    lab.serve("n2", "beta");
    let copies = Copies::new();
    let alpha = start_copy(&lab, &copies, "n1", "alpha", &config);
    let beta = start_copy(&lab, &copies, "n2", "beta", &config);
    let cluster = Cluster {
        lab: &lab,
        config,
        alpha,
        beta,
    };
    cluster.wait_for("alpha active, beta standby", || {
        vip_on(&lab, "n1") && lab.log(&cluster.beta).contains("-> standby")
    });
    assert_realtime(&lab);
    let daemons = [cluster.alpha.id(), cluster.beta.id()];
    let faults_before = daemons.map(major_faults);
    let run = loaded(&lab, &cluster, |lab, cluster| {
        let pressure = pressure();
        // This test's own process too: its memory is not locked, so the kernel
        // taking some of it shows that the pager can page out at all.
        let pids = [
            cluster.alpha.id().to_string(),
            cluster.beta.id().to_string(),
            std::process::id().to_string(),
        ];
        let seconds = LOAD.as_secs().to_string();
        let page_out = lab.spawn(
            "cl",
            &pressure,
            &[
                "page-out",
                "--seconds",
                &seconds,
                "--every",
                "10",
                &pids[0],
                &pids[1],
                &pids[2],
            ],
        );
        vec![
            page_out,
            hogs(lab, "n1", HOGS / 2, None),
            hogs(lab, "n2", HOGS / 2, None),
        ]
    });
    // The pager must have done its work, or this test would prove nothing: it pages
    // out what is not locked (of the daemons, only mappings made after the start,
    // if any) and is refused the rest, as locked and for no other reason.
    let pager = std::fs::read_dir(lab.tmpdir())
        .expect("the lab's directory")
        .filter_map(Result::ok)
        .filter(|entry| {
            entry
                .file_name()
                .to_string_lossy()
                .ends_with("-pressure.log")
        })
        .filter_map(|entry| std::fs::read_to_string(entry.path()).ok())
        .find(|log| log.contains("\"rounds\""))
        .expect("the pager's summary");
    let summary: serde_json::Value =
        serde_json::from_str(pager.trim()).expect("the pager's summary is JSON");
    let counts = |pid: u32, key: &str| {
        (summary["pids"].as_array().into_iter().flatten())
            .find(|p| p["pid"].as_u64() == Some(u64::from(pid)))
            .and_then(|p| p[key].as_u64())
    };
    assert!(
        summary["rounds"].as_u64() > Some(100)
            && counts(std::process::id(), "advised_bytes") > Some(0),
        "the pager paged nothing out, not even of the test: {pager}"
    );
    for daemon in daemons {
        assert_eq!(
            counts(daemon, "failed"),
            Some(0),
            "the pager failed on the daemon {daemon} otherwise than on locked memory: {pager}"
        );
        assert!(
            counts(daemon, "advised_bytes") > Some(0) || counts(daemon, "refused_locked") > Some(0),
            "the pager never reached the daemon {daemon}: {pager}"
        );
    }
    let faults_after = daemons.map(major_faults);
    assert_eq!(
        faults_before, faults_after,
        "the daemons' pages were read back from disk (major faults before, after)\n{}",
        run.logs
    );
    assert_steady(
        &run,
        1,
        "memory pressure and 32 CPU hogs at a 10 ms interval",
    );
}

/// Starts `node` from a copy of the binary of its own; see the test above. The copy
/// lives under target/, on the disk the build uses: a copy on a tmpfs without swap
/// could never be paged out, and the test would prove nothing.
fn start_copy(lab: &Lab, copies: &Copies, host: &str, node: &str, config: &Path) -> Child {
    let copy = copies.0.join(format!("failoverd-{node}"));
    std::fs::copy(common::failoverd(), &copy).expect("copy the binary");
    let socket = node_socket(lab, node);
    let state = state_dir(lab, node);
    lab.spawn(
        host,
        &copy,
        &[
            "run",
            "--config",
            config.to_str().expect("UTF-8 path"),
            "--node",
            node,
            "--socket",
            socket.to_str().expect("UTF-8 path"),
            "--state-dir",
            state.to_str().expect("UTF-8 path"),
        ],
    )
}

/// The directory of the binaries' copies, removed with the test.
struct Copies(PathBuf);

impl Copies {
    fn new() -> Copies {
        let dir = Path::new(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("steadiness-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("a directory for the copies");
        Copies(dir)
    }
}

impl Drop for Copies {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A node the kernel refuses realtime priority and locked memory (no CAP_SYS_NICE
/// or CAP_IPC_LOCK, both limits 0, as under a unit without `LimitRTPRIO` and
/// `LimitMEMLOCK`) runs all the same, and its status and log say what was refused
/// and what to grant.
#[test]
fn a_node_refused_realtime_says_why_and_runs() {
    let _one = one_at_a_time();
    let lab = Lab::new();
    let cluster = Cluster::launch_with_beta(&lab, timing(100, 500), |config| {
        let failoverd = common::failoverd();
        let mut args = vec![
            "--bounding-set=-sys_nice,-ipc_lock",
            "--",
            "prlimit",
            "--rtprio=0",
            "--memlock=0",
            "--",
            failoverd.to_str().expect("UTF-8 path"),
        ];
        let run = run_args(&lab, "beta", config);
        args.extend(run.iter().map(String::as_str));
        lab.spawn("n2", "setpriv", &args)
    });
    cluster.wait_for("alpha active, beta standby", || {
        vip_on(&lab, "n1") && lab.log(&cluster.beta).contains("-> standby")
    });
    let beta = status_of(&lab, "beta").scheduling;
    assert_eq!(beta.realtime_priority, 0, "{beta:?}");
    let why = beta.realtime_off.clone().unwrap_or_default();
    assert!(why.contains("LimitRTPRIO=10"), "{beta:?}");
    assert!(!beta.memory_locked, "{beta:?}");
    let why = beta.memory_off.clone().unwrap_or_default();
    assert!(why.contains("LimitMEMLOCK="), "{beta:?}");
    let log = lab.log(&cluster.beta);
    assert!(
        log.contains("heartbeat thread at normal priority: SCHED_RR 10 refused")
            && log.contains("memory not locked: mlockall refused"),
        "{log}"
    );
    // Alpha, granted both, says so.
    let alpha = status_of(&lab, "alpha").scheduling;
    assert_eq!((alpha.realtime_priority, alpha.memory_locked), (10, true));
}

/// Each "released N KiB of read-only pages and locked M KiB" line of `log`, as
/// (N, M).
fn releases(log: &str) -> Vec<(u64, u64)> {
    log.lines()
        .filter_map(|line| {
            let (_, rest) = line.split_once("released ")?;
            let (released, rest) = rest.split_once(" KiB of read-only pages and locked ")?;
            let (locked, _) = rest.split_once(" KiB")?;
            Some((released.parse().ok()?, locked.parse().ok()?))
        })
        .collect()
}

/// Once a node has settled, start-up's read-only pages are unmapped and the code a
/// running node runs is locked whole; again after a reload. The node still takes
/// over afterwards, on code it never ran before the release, and its memory is
/// still locked.
#[test]
fn a_settled_node_lets_go_of_start_up_and_locks_its_running_code() {
    let _one = one_at_a_time();
    let lab = Lab::new();
    let mut cluster = Cluster::launch_with_beta(&lab, timing(100, 500), |config| {
        let mut args = run_args(&lab, "beta", config);
        args.extend(["--log-level".into(), "debug".into()]);
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        lab.spawn("n2", common::failoverd(), &args)
    });
    cluster.wait_for("beta standby and its pages released", || {
        !releases(&lab.log(&cluster.beta)).is_empty()
    });
    let log = lab.log(&cluster.beta);
    assert!(
        logged_at(&log, "-> standby") <= logged_at(&log, "of read-only pages"),
        "released before the node had left the starting role:\n{log}"
    );
    let (released, locked) = releases(&log)[0];
    // The executable alone has megabytes of read-only segments; the running
    // node's code, which the build links together, is above the 64 KiB the
    // daemon requires to believe its markers.
    assert!(released > 1024, "released {released} KiB:\n{log}");
    assert!(locked >= 64, "locked {locked} KiB of code:\n{log}");
    assert!(
        !log.contains("not all released") && !log.contains("partly unlocked"),
        "{log}"
    );
    let vmlck = std::fs::read_to_string(format!("/proc/{}/status", cluster.beta.id()))
        .expect("beta's status")
        .lines()
        .find_map(|line| {
            line.strip_prefix("VmLck:")?
                .trim()
                .strip_suffix(" kB")?
                .parse::<u64>()
                .ok()
        })
        .expect("VmLck in beta's status");
    assert!(
        vmlck >= locked,
        "VmLck {vmlck} kB below the {locked} KiB of code locked whole"
    );
    assert!(status_of(&lab, "beta").scheduling.memory_locked);

    let output = ctl(&lab, "beta", &["reload"]);
    assert!(output.status.success(), "{}", describe(&output));
    cluster.wait_for("a second release after the reload", || {
        releases(&lab.log(&cluster.beta)).len() >= 2
    });

    cluster.crash_alpha();
    cluster.wait_for("beta to take over", || vip_on(&lab, "n2"));
    assert!(status_of(&lab, "beta").scheduling.memory_locked);
}
