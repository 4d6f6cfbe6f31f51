//! What a client of the control socket or the status page may cost a running node:
//! real daemons in the lab (tests/common), heartbeating every 10 ms, against clients
//! that ask for much, never read, flood, or trickle. Each test pins that the node
//! keeps its heartbeats on time (the standby never logs a late heartbeat nor takes
//! over) and keeps answering the clients that behave. Every load is bounded in count
//! and time and stops by itself. They need root, like the lab.

#![allow(
    clippy::zombie_processes,
    reason = "the Lab kills and reaps the processes it spawned when it is dropped"
)]

mod common;

use std::fs::File;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::os::unix::net::UnixStream;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread;
use std::time::{Duration, Instant};

use common::cluster::*;
use common::sample::Sample;
use common::{Lab, N1_LAN};
use failoverd::machine::Role;
use failoverd::status::EventRecord;
use nix::sched::{CloneFlags, setns};

/// The heartbeat interval of these tests: short, so that a stall of the loop's
/// thread shows as a late heartbeat. `timing.warn` is 30 intervals, generous on a
/// small shared machine where both daemons and the test's load share two cores: a
/// stall of the whole machine (seen at 150 to 200 ms on both nodes at once) is not
/// what these tests look for.
const INTERVAL: &str = "10ms";
const WARN: &str = "300ms";
const DEAD: &str = "600ms";

/// The tests of this file make heavy load on purpose; run one at a time, so that
/// none judges heartbeats under another's load.
static ONE_AT_A_TIME: Mutex<()> = Mutex::new(());

fn one_at_a_time() -> MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}
/// Bytes of padding in each check's command line, and so in each event about it:
/// 600 such events are more than any single reply may carry (8 MiB).
const PADDING: usize = 16 * 1024;
/// Events the noisy checks make before the tests use them: about 10 MiB of them.
const EVENTS: u64 = 600;

/// The cluster at a 10 ms interval, keeping up to 100000 events in memory. The
/// gateway and link checks get a second, not the lab's usual 100 ms: the load these
/// tests make (processes, megabytes of log lines) may slow a netlink query or a
/// ping past 100 ms, which would move the VIP for reasons not tested here.
fn fast(sample: Sample) -> Sample {
    sample
        .set("timing.interval", INTERVAL)
        .set("timing.warn", WARN)
        .set("timing.dead", DEAD)
        .set("events.keep", 100_000)
        .set("health.interval", "1s")
        .set("health.timeout", "1s")
}

/// Two checks on the active node, alpha, that fail and pass in turn every 30 ms,
/// each change an event of some 16 KiB (the command line is in the message), until
/// the file `quiet` exists. Weight 0: they show without counting.
fn noisy_checks(lab: &Lab) -> String {
    let dir = lab.tmpdir().display();
    let padding = "x".repeat(PADDING);
    (1..=2)
        .map(|n| {
            let script = format!(
                "[ -e {dir}/quiet ] && exit 0; \
                 f={dir}/toggle-{n}; if [ -e $f ]; then rm $f; exit 1; fi; touch $f"
            );
            format!(
                "[[check]]\nname = \"noisy{n}\"\nkind = \"exec\"\n\
                 command = [\"/bin/sh\", \"-c\", \"{script}\", \"{padding}\"]\n\
                 interval = \"30ms\"\nrise = 1\nfall = 1\nweight = 0\n\
                 on = \"active\"\nstart_grace = \"0s\"\n"
            )
        })
        .collect()
}

/// Starts the cluster with the noisy checks, lets them make `EVENTS` events on
/// alpha, then quiets them; returns the cluster once alpha's log is still.
fn cluster_with_many_events(lab: &Lab) -> Cluster<'_> {
    let checks = noisy_checks(lab);
    let cluster = Cluster::start_with(lab, |sample| fast(sample).append(&checks));
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let last = status_of(lab, "alpha").events.last().map_or(0, |e| e.seq);
        if last >= EVENTS {
            break;
        }
        assert!(Instant::now() < deadline, "only {last} events after 60 s");
        thread::sleep(Duration::from_millis(500));
    }
    lab.write_file("quiet", "");
    // A run under way when the file appeared may still report.
    thread::sleep(Duration::from_millis(300));
    cluster
}

/// Where beta's log ends now: `assert_heartbeats_on_time` looks at what comes
/// after. (Making the events, a hundred processes and megabytes of log lines a
/// second, is load of its own on a small machine; it is not what is tested.)
fn log_mark(lab: &Lab, cluster: &Cluster) -> usize {
    lab.log(&cluster.beta).len()
}

/// What the tests demand of the heartbeats: since `mark` in its log, the standby
/// heard alpha on time, and alpha still holds the VIP.
fn assert_heartbeats_on_time(lab: &Lab, cluster: &Cluster, mark: usize) {
    let log = lab.log(&cluster.beta);
    let missed: Vec<&str> = log
        .get(mark..)
        .unwrap_or_default()
        .lines()
        .filter(|l| {
            l.contains("are late: none for")
                || l.contains("peer alpha late")
                || l.contains("-> active")
        })
        .collect();
    assert!(
        missed.is_empty(),
        "the standby missed heartbeats:\n{}",
        missed.join("\n")
    );
    assert_eq!(status_of(lab, "alpha").state, Role::Active);
}

/// `failoverd events` prints every kept event, in order, when they are far more than
/// one reply may carry: the daemon answers a page at a time and the client asks for
/// the next until the last.
#[test]
fn events_prints_a_large_event_log_in_full() {
    let _one = one_at_a_time();
    let lab = Lab::new();
    let cluster = cluster_with_many_events(&lab);
    let mark = log_mark(&lab, &cluster);
    let last = status_of(&lab, "alpha").events.last().map_or(0, |e| e.seq);

    let out = ctl(&lab, "alpha", &["events", "--json"]);
    assert!(out.status.success(), "events: {}", describe(&out));
    let events: Vec<EventRecord> = String::from_utf8_lossy(&out.stdout)
        .lines()
        .map(|line| serde_json::from_str(line).expect("an event per line"))
        .collect();
    let bytes = out.stdout.len();
    eprintln!(
        "failoverd events printed {} events, {bytes} bytes",
        events.len()
    );
    assert!(bytes > 8 << 20, "only {bytes} bytes of events");
    let seqs: Vec<u64> = events.iter().map(|e| e.seq).collect();
    assert!(
        seqs.iter().copied().eq(1..=seqs.len() as u64),
        "events missing or repeated: {:?}..{:?}",
        seqs.first(),
        seqs.last()
    );
    assert!(
        seqs.len() as u64 >= last,
        "{} events, {last} kept",
        seqs.len()
    );
    assert_heartbeats_on_time(&lab, &cluster, mark);
}

/// Clients that ask the control socket for the whole event log and never read the
/// reply, more of them than it serves at once, held open while the nodes heartbeat
/// every 10 ms: `failoverd status` from another client still answers, and the
/// heartbeats stay on time.
#[test]
fn clients_that_never_read_hold_up_neither_the_daemon_nor_other_clients() {
    let _one = one_at_a_time();
    let lab = Lab::new();
    let cluster = cluster_with_many_events(&lab);
    let mark = log_mark(&lab, &cluster);
    let socket = node_socket(&lab, "alpha");
    let mut stuck = Vec::new();
    for _ in 0..20 {
        let mut stream = UnixStream::connect(&socket).expect("connect to alpha's socket");
        stream
            .write_all(b"{\"version\":1,\"command\":\"events\"}\n")
            .expect("send a request");
        stuck.push(stream);
    }
    let started = Instant::now();
    let status = ctl(&lab, "alpha", &["status", "--json"]);
    let took = started.elapsed();
    eprintln!(
        "status took {took:?} beside {} clients that never read",
        stuck.len()
    );
    assert!(
        status.status.success(),
        "status beside clients that never read: {}",
        describe(&status)
    );
    // Held a while longer, for the heartbeats' sake.
    thread::sleep(Duration::from_secs(2));
    drop(stuck);
    assert_heartbeats_on_time(&lab, &cluster, mark);
}

/// Threads of this test that open connections from inside a lab host.
fn in_namespace<T: Send + 'static>(
    lab: &Lab,
    host: &str,
    work: impl FnOnce() -> T + Send + 'static,
) -> thread::JoinHandle<T> {
    let path = format!("/run/netns/{}", lab.ns(host));
    thread::spawn(move || {
        let ns = File::open(&path).unwrap_or_else(|e| panic!("open {path}: {e}"));
        // Only this thread moves: the network namespace is a per-thread attribute.
        setns(&ns, CloneFlags::CLONE_NEWNET).unwrap_or_else(|e| panic!("enter {path}: {e}"));
        work()
    })
}

const PAGE_PORT: u16 = 9469;

/// Sends one GET for `path` and reads the response; the status code, or why none came.
fn get(to: SocketAddr, path: &str, limit: Duration) -> Result<u16, String> {
    let mut stream = TcpStream::connect_timeout(&to, limit).map_err(|e| e.to_string())?;
    stream
        .set_read_timeout(Some(limit))
        .map_err(|e| e.to_string())?;
    stream
        .set_write_timeout(Some(limit))
        .map_err(|e| e.to_string())?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: {}\r\n\r\n", to.ip());
    stream
        .write_all(request.as_bytes())
        .map_err(|e| e.to_string())?;
    let mut reply = Vec::new();
    stream.read_to_end(&mut reply).map_err(|e| e.to_string())?;
    let line = String::from_utf8_lossy(&reply[..reply.len().min(12)]).into_owned();
    line.strip_prefix("HTTP/1.1 ")
        .and_then(|rest| rest.get(..3))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| format!("no status line ({} bytes)", reply.len()))
}

/// A flood of requests and a crowd of slow clients (a byte a second) from the client
/// host against alpha's status page, at a 10 ms heartbeat interval, for 8 seconds:
/// no late heartbeat and no takeover, the page answers a well-behaved client on the
/// gateway host within a few seconds throughout, and the slow clients are closed.
#[test]
fn a_flood_and_slow_clients_leave_the_heartbeats_and_other_clients_alone() {
    const FLOODERS: usize = 4;
    const SLOW: usize = 48;
    const LOAD: Duration = Duration::from_secs(8);
    let _one = one_at_a_time();
    let lab = Lab::new();
    let cluster = Cluster::start_with(&lab, |sample| {
        fast(sample).set("http.listen", format!("0.0.0.0:{PAGE_PORT}"))
    });
    let mark = log_mark(&lab, &cluster);
    let page: SocketAddr = format!("{N1_LAN}:{PAGE_PORT}").parse().unwrap();
    let stop = Arc::new(AtomicBool::new(false));

    let served = Arc::new(AtomicU64::new(0));
    let refused = Arc::new(AtomicU64::new(0));
    let mut flooders = Vec::new();
    for _ in 0..FLOODERS {
        let (stop, served, refused) = (stop.clone(), served.clone(), refused.clone());
        flooders.push(in_namespace(&lab, "cl", move || {
            let end = Instant::now() + LOAD;
            for _ in 0..20_000 {
                if Instant::now() > end || stop.load(Ordering::Relaxed) {
                    break;
                }
                match get(page, "/", Duration::from_secs(2)) {
                    Ok(200) => served.fetch_add(1, Ordering::Relaxed),
                    _ => refused.fetch_add(1, Ordering::Relaxed),
                };
            }
        }));
    }

    // Slow clients: each sends a byte of its request a second; one the server closes
    // is counted, with how long it lived, and replaced, until the load ends.
    let slow = in_namespace(&lab, "cl", move || {
        let request = b"GET / HTTP/1.1\r\nHost: 198.18.0.11\r\n\r\n";
        let open = |n: &mut u64| {
            *n += 1;
            let stream = TcpStream::connect_timeout(&page, Duration::from_secs(2)).ok()?;
            stream.set_nonblocking(true).ok()?;
            Some((stream, Instant::now(), 0usize))
        };
        let mut opened = 0;
        let mut clients: Vec<_> = (0..SLOW).filter_map(|_| open(&mut opened)).collect();
        let mut lifetimes = Vec::new();
        let end = Instant::now() + LOAD;
        while Instant::now() < end {
            thread::sleep(Duration::from_secs(1));
            for client in &mut clients {
                let (stream, since, sent) = client;
                let mut buf = [0u8; 256];
                let closed = match stream.read(&mut buf) {
                    Ok(_) => true,
                    Err(e) if e.kind() == ErrorKind::WouldBlock => {
                        let byte = &request[*sent % request.len()..][..1];
                        *sent += 1;
                        stream.write_all(byte).is_err()
                    }
                    Err(_) => true,
                };
                if closed {
                    lifetimes.push(since.elapsed());
                    if let Some(new) = open(&mut opened) {
                        *client = new;
                    }
                }
            }
        }
        (opened, lifetimes)
    });

    // The well-behaved client: the monitoring, on the gateway host.
    let mut waits = Vec::new();
    let started = Instant::now();
    while started.elapsed() < LOAD {
        let asked = Instant::now();
        let result = lab.exec(
            "gw",
            &[
                "curl",
                "-sS",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "--max-time",
                "5",
                &format!("http://{page}/status"),
            ],
        );
        let took = asked.elapsed();
        let code = String::from_utf8_lossy(&result.stdout).into_owned();
        waits.push((took, code));
        thread::sleep(Duration::from_millis(300));
    }
    stop.store(true, Ordering::Relaxed);
    for flooder in flooders {
        flooder.join().expect("a flooding thread");
    }
    let (opened, lifetimes) = slow.join().expect("the slow clients' thread");
    let slowest = waits
        .iter()
        .map(|(took, _)| *took)
        .max()
        .unwrap_or_default();
    eprintln!(
        "flood: {} served, {} refused; slow clients: {opened} opened, {} closed by the \
         server, longest lived {:?}; well-behaved client: {} requests, slowest {slowest:?}",
        served.load(Ordering::Relaxed),
        refused.load(Ordering::Relaxed),
        lifetimes.len(),
        lifetimes.iter().max(),
        waits.len(),
    );
    let metrics = lab.exec(
        "gw",
        &[
            "curl",
            "-sS",
            "--max-time",
            "5",
            &format!("http://{page}/metrics"),
        ],
    );
    let refusals: Vec<String> = String::from_utf8_lossy(&metrics.stdout)
        .lines()
        .filter(|l| l.starts_with("failoverd_http_refused_total"))
        .map(str::to_owned)
        .collect();
    eprintln!("{}", refusals.join("\n"));

    assert!(
        waits.iter().all(|(_, code)| code == "200"),
        "the page failed the well-behaved client: {waits:?}"
    );
    assert!(
        slowest < Duration::from_secs(3),
        "the page kept the well-behaved client waiting {slowest:?}: {waits:?}"
    );
    assert!(
        served.load(Ordering::Relaxed) > 0,
        "the flood got no page at all"
    );
    // Every slow client of the first round was closed, within the head's 3 s and
    // a second of this thread's polling.
    assert!(
        lifetimes.len() >= SLOW,
        "only {} of {SLOW} slow clients were closed",
        lifetimes.len()
    );
    assert!(
        lifetimes.iter().all(|l| *l < Duration::from_secs(5)),
        "a slow client lived {:?}",
        lifetimes.iter().max()
    );
    assert_heartbeats_on_time(&lab, &cluster, mark);
}
