//! The heartbeat path under pressure from outside the election: a LAN flooded with
//! junk at line rate (over IPv4 links, and over IPv6 ones), an event file that
//! stops taking writes, and a reload of a configuration file that a read would
//! block on. Nodes beat every 10 ms; no kind of pressure may make a node late or
//! hand the VIP over.
//!
//! Like the other end-to-end tests they need root; the flood is bounded in count and
//! time and stops by itself, and every namespace is the lab's own.

#![allow(
    clippy::zombie_processes,
    reason = "the Lab kills and reaps the processes it spawned when it is dropped"
)]

mod common;

use std::fs::File;
use std::io::Write;
use std::net::{SocketAddr, UdpSocket};
use std::os::unix::fs::OpenOptionsExt;
use std::time::{Duration, Instant};

use common::cluster::*;
use common::sample::Sample;
use common::{Lab, N1_LAN, N2_LAN};
use failoverd::status::Status;
use failoverd::wire::heartbeat::{MAGIC, MAX_LEN, VERSION};
use nix::sched::{CloneFlags, setns};

/// The timing the flood runs at: a heartbeat every 10 ms, late after five.
fn fast(sample: Sample) -> Sample {
    sample
        .set("timing.interval", "10ms")
        .set("timing.warn", "50ms")
        .set("timing.dead", "200ms")
        .set("timing.init_dead", "1s")
}

/// A heartbeat every 10 ms, but late only after 300 ms and checks given a second:
/// for the tests where the daemon froze before the fix (a writer or a read that
/// blocks for ever), so that a stall of the whole small machine, which those tests
/// do not measure, is not taken for one.
fn tolerant(sample: Sample) -> Sample {
    fast(sample)
        .set("timing.warn", "300ms")
        .set("timing.dead", "600ms")
        .set("health.interval", "1s")
        .set("health.timeout", "1s")
}

/// The tests of this file load the machine on purpose (a flood, two daemons at
/// 10 ms each); they run one at a time, so that none judges heartbeats under
/// another's load.
static ONE_AT_A_TIME: std::sync::Mutex<()> = std::sync::Mutex::new(());

fn one_at_a_time() -> std::sync::MutexGuard<'static, ()> {
    ONE_AT_A_TIME.lock().unwrap_or_else(|e| e.into_inner())
}

/// CPU time (user and system) that process `pid` has used so far.
fn cpu_time(pid: u32) -> Duration {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).expect("read /proc stat");
    // The fields after the command, which is in parentheses and may hold spaces.
    let fields: Vec<&str> = stat
        .rsplit_once(')')
        .map_or("", |(_, rest)| rest)
        .split_whitespace()
        .collect();
    let ticks: u64 = [11, 12]
        .iter()
        .map(|&i| {
            fields
                .get(i)
                .and_then(|f| f.parse::<u64>().ok())
                .expect("utime, stime")
        })
        .sum();
    // SAFETY: sysconf only reads a system constant.
    let hz = u64::try_from(unsafe { libc::sysconf(libc::_SC_CLK_TCK) }).unwrap_or(100);
    Duration::from_millis(ticks * 1000 / hz.max(1))
}

/// How many heartbeats `node` counted from `peer` on `link`.
fn received(status: &Status, peer: &str, link: &str) -> u64 {
    status
        .peers
        .iter()
        .find(|p| p.name == peer)
        .and_then(|p| p.links.iter().find(|l| l.name == link))
        .map_or(0, |l| l.received)
}

/// The count under `key` in a list of `[name, count]` pairs of the status, 0 if absent.
fn count(pairs: &[(String, u64)], key: &str) -> u64 {
    pairs.iter().find(|(k, _)| k == key).map_or(0, |(_, n)| *n)
}

/// Asserts, every 200 ms for `how_long`, that both nodes answer and hear each other;
/// `when` says what is going on, for the failure. Returns how many polls passed.
fn keep_hearing(lab: &Lab, cluster: &Cluster, how_long: Duration, when: &str) -> u32 {
    let heard = |status: &Option<Status>, peer: &str| {
        status
            .as_ref()
            .and_then(|s| s.peers.iter().find(|p| p.name == peer))
            .is_some_and(|p| p.alive)
    };
    let until = Instant::now() + how_long;
    let mut polls = 0;
    while Instant::now() < until {
        let alpha = try_status_of(lab, "alpha");
        let beta = try_status_of(lab, "beta");
        assert!(
            heard(&alpha, "beta") && heard(&beta, "alpha"),
            "a node stopped answering or hearing its peer {when} (alpha answers: {}, beta \
             answers: {})\n{}",
            alpha.is_some(),
            beta.is_some(),
            cluster.logs()
        );
        polls += 1;
        std::thread::sleep(Duration::from_millis(200));
    }
    polls
}

/// The lines of `log` after the first `from` bytes that say a heartbeat was missed
/// (on any link but `spared`) or the VIP moved: what must not happen under the
/// pressure.
fn trouble(log: &str, from: usize, spared: Option<&str>) -> Vec<String> {
    let spared = |l: &str| {
        spared.is_some_and(|link| {
            l.contains(&format!(" on {link} ")) || l.contains(&format!("link {link} "))
        })
    };
    log.get(from..)
        .unwrap_or_default()
        .lines()
        .filter(|l| !spared(l))
        .filter(|l| {
            l.contains("are late: none for")
                || l.contains(" late: ")
                || l.contains(" dead")
                || l.contains("-> active")
                || l.contains("-> standby")
                || l.contains("releasing")
        })
        .map(str::to_owned)
        .collect()
}

/// Asserts that since byte `from.0` of alpha's log and `from.1` of beta's, neither
/// node missed a heartbeat (on any link but `spared`) or moved, and that alpha
/// alone holds the VIP; `when` says during what, for the message.
fn assert_undisturbed(
    lab: &Lab,
    cluster: &Cluster,
    from: (usize, usize),
    spared: Option<&str>,
    when: &str,
) {
    let trouble: Vec<String> = trouble(&lab.log(&cluster.alpha), from.0, spared)
        .into_iter()
        .chain(trouble(&lab.log(&cluster.beta), from.1, spared))
        .collect();
    assert!(
        trouble.is_empty(),
        "heartbeats were missed {when}:\n{}",
        trouble.join("\n")
    );
    assert!(
        vip_on(lab, "n1") && !vip_on(lab, "n2"),
        "the VIP is not on alpha alone {when}"
    );
}

/// The lines of `log` after byte `from` that declare a peer or a link dead, or
/// change the node's role.
fn dead_or_moved(log: &str, from: usize) -> Vec<&str> {
    (log.get(from..).unwrap_or_default().lines())
        .filter(|l| l.contains(" dead") || l.contains(" -> "))
        .collect()
}

/// Sends datagrams that cost the most to reject (the right magic and version, the
/// longest length, so only an HMAC over all of it tells them from a heartbeat) from
/// the client namespace to `target` (beta's heartbeat port on the LAN), as fast as
/// it can up to `rate` a second, for `limit`, from [`FLOOD_SENDERS`] threads, each
/// from a port of its own. Returns how many went out.
fn junk_flood(
    lab: &Lab,
    target: SocketAddr,
    rate: u32,
    limit: Duration,
) -> std::thread::JoinHandle<u64> {
    let ns = format!("/run/netns/{}", lab.ns("cl"));
    std::thread::spawn(move || {
        let senders: Vec<_> = (0..FLOOD_SENDERS)
            .map(|_| {
                let ns = ns.clone();
                std::thread::spawn(move || junk_sender(&ns, target, rate / FLOOD_SENDERS, limit))
            })
            .collect();
        senders
            .into_iter()
            .map(|sender| sender.join().expect("flood sender"))
            .sum()
    })
}

/// The flood the issue of record asks the standby to shrug off: 200,000 junk
/// datagrams a second to its LAN address, for five seconds.
const FLOOD_RATE: u32 = 200_000;
const FLOOD_FOR: Duration = Duration::from_secs(5);

/// Whether a flood meant to send `rate` a second for `limit` sent at least three
/// quarters of that: a busy host slows the senders a little (188,000 a second with
/// a CPU-bound process beside the test), and a test that passed under a flood much
/// weaker than the one it names would prove less than it says.
fn flood_ran(sent: u64, rate: u32, limit: Duration) -> bool {
    sent as f64 >= 0.75 * f64::from(rate) * limit.as_secs_f64()
}

/// How many threads send a flood: the kernel delivers each datagram into the
/// target's namespace within the sender's system call, so one thread on this
/// lab's hosts tops out below 200,000 a second.
const FLOOD_SENDERS: u32 = 2;

/// One thread of [`junk_flood`].
fn junk_sender(ns: &str, target: SocketAddr, rate: u32, limit: Duration) -> u64 {
    let netns = File::open(ns).expect("open the client namespace");
    setns(&netns, CloneFlags::CLONE_NEWNET).expect("join the client namespace");
    let any = if target.is_ipv4() {
        "0.0.0.0:0"
    } else {
        "[::]:0"
    };
    let socket = UdpSocket::bind(any).expect("bind in the client namespace");
    let mut junk = vec![0x5au8; MAX_LEN];
    junk[..4].copy_from_slice(&MAGIC);
    junk[4] = VERSION;
    let started = Instant::now();
    let per_ms = u64::from(rate / 1000).max(1);
    let most = per_ms * u64::try_from(limit.as_millis()).unwrap_or(u64::MAX);
    let mut sent = 0u64;
    let mut tick = 0u64;
    while sent < most && started.elapsed() < limit {
        for _ in 0..per_ms {
            junk[8] = junk[8].wrapping_add(1);
            if socket.send_to(&junk, target).is_ok() {
                sent += 1;
            }
        }
        // Paced to `rate`: never ahead of the millisecond it is in.
        tick += 1;
        let due = Duration::from_millis(tick);
        if let Some(ahead) = due.checked_sub(started.elapsed()) {
            std::thread::sleep(ahead);
        }
    }
    sent
}

#[test]
fn a_junk_flood_from_strangers_never_costs_a_heartbeat_on_either_link() {
    let _one = one_at_a_time();
    let lab = Lab::new();
    let cluster = Cluster::start_with(&lab, fast);
    let beta_before = status_of(&lab, "beta");
    let alpha_before = status_of(&lab, "alpha");
    let from = lab.log(&cluster.beta).len();
    let cpu_before = cpu_time(cluster.beta.id());
    let began = Instant::now();
    let target = SocketAddr::new(N2_LAN.parse().unwrap(), 694);
    let flooding = junk_flood(&lab, target, FLOOD_RATE, FLOOD_FOR);
    let sent = flooding.join().expect("flood thread");
    let lasted = began.elapsed();
    let cpu = cpu_time(cluster.beta.id()) - cpu_before;
    let alpha_after = status_of(&lab, "alpha");
    let beta_after = status_of(&lab, "beta");

    // Alpha sends each heartbeat once on each of its two links to its one peer.
    let beats = (alpha_after.counters.heartbeats_sent - alpha_before.counters.heartbeats_sent) / 2;
    let counted =
        received(&beta_after, "alpha", "crossover") - received(&beta_before, "alpha", "crossover");
    let counted_lan =
        received(&beta_after, "alpha", "lan") - received(&beta_before, "alpha", "lan");
    let log = lab.log(&cluster.beta);
    let late = log
        .get(from..)
        .unwrap_or_default()
        .matches("heartbeats from alpha on crossover are late")
        .count();
    eprintln!(
        "flood: {sent} datagrams in {lasted:?} ({:.0}/s); alpha sent about {beats} heartbeats \
         a link, beta counted {counted} on the crossover ({late} late) and {counted_lan} on the \
         flooded LAN, and used {cpu:?} of CPU \
         ({:.2} us a datagram); dropped on arrival {:?}; rejected {:?}",
        sent as f64 / lasted.as_secs_f64(),
        cpu.as_secs_f64() * 1e6 / sent.max(1) as f64,
        beta_after.counters.dropped,
        beta_after.counters.rejected,
    );
    assert!(
        flood_ran(sent, FLOOD_RATE, FLOOD_FOR),
        "the flood ran at {:.0} datagrams a second, not near {FLOOD_RATE}",
        sent as f64 / FLOOD_FOR.as_secs_f64()
    );
    // The heartbeat thread runs at realtime priority: the link's socket for
    // strangers rests once it has read 16 datagrams in 10 ms, so a flood takes a
    // bounded share of a CPU from the host rather than all of it (about 5 % here;
    // 10 to 13 % while one socket took the flood and rested after 128, 40 % before
    // any rest).
    assert!(
        cpu < lasted / 8,
        "beta used {cpu:?} of CPU in {lasted:?} of flood: the link's reader does not rest"
    );
    // The slack covers the heartbeats in flight between the two status requests.
    let lost = beats.saturating_sub(counted);
    assert!(
        lost <= 10 + beats / 50,
        "the flood on the LAN cost {lost} of {beats} crossover heartbeats"
    );
    // Late means 50 ms without one, five intervals. A busy machine may cause one or
    // two, more when it is so busy that alpha itself falls behind its interval; the
    // bound allows for that. (While one shared queue carried every link's datagrams
    // and the loop authenticated each, runs gave 1 to 16; since, 0 in nearly all.)
    let due = u64::try_from(lasted.as_millis() / 10).unwrap_or(u64::MAX);
    let behind = due.saturating_sub(beats);
    assert!(
        late as u64 <= 2 + behind / 20,
        "{late} crossover heartbeats came late under the flood on the LAN \
         (alpha sent {beats} of {due})"
    );
    // What makes the flood cheap, whatever the machine's load: a stranger's junk is
    // authenticated at most 200 times a second per link, then dropped on its address.
    // (Before, the loop authenticated every datagram the shared queue took in:
    // 48,000 of 166,000 in one run.)
    let authenticated = count(&beta_after.counters.rejected, "authentication failed");
    let budget = 200 * (lasted.as_secs() + 2);
    assert!(
        authenticated <= budget,
        "beta authenticated {authenticated} junk datagrams in {lasted:?}, more than {budget}"
    );
    // The LAN's own heartbeats come from alpha's address: the kernel sorts them from
    // the junk to a socket of their own, so the flood costs them no more than the
    // crossover's. (With one socket a link, the junk filled its buffer: about half
    // the LAN's heartbeats were lost, 214 and 246 of 506 in two runs.) Nothing may
    // be declared dead, and nothing may move.
    let lost_lan = beats.saturating_sub(counted_lan);
    assert!(
        lost_lan <= 10 + beats / 50,
        "the flood on the LAN cost {lost_lan} of {beats} of the LAN's own heartbeats"
    );
    let moved = dead_or_moved(&log, from);
    assert!(
        moved.is_empty(),
        "beta lost alpha on a link or moved under the flood:\n{}",
        moved.join("\n")
    );
    assert_eq!(beta_after.state.as_str(), "standby", "{beta_after:?}");
    let lan = count(&beta_after.counters.dropped, "lan");
    assert!(
        lan > 0,
        "the junk is counted on the LAN: {:?}",
        beta_after.counters
    );
    // Every datagram of the flood is counted: rejected as read, or, past the
    // strangers' socket's budget (16 per 10 ms), dropped by the kernel from its full
    // buffer and counted from its own count (SO_RXQ_OVFL, under "unexpected source
    // address"). That count comes with the next datagram read, or within a second
    // from the socket's own figures (SO_MEMINFO) when none comes after the flood.
    // The slack is for datagrams lost before any socket (the namespace's backlog),
    // which no count sees.
    let settled = Instant::now() + Duration::from_secs(3);
    let mut counters = beta_after.counters;
    while count(&counters.dropped, "lan") + 5_000 < sent && Instant::now() < settled {
        std::thread::sleep(Duration::from_millis(100));
        counters = status_of(&lab, "beta").counters;
    }
    let lan = count(&counters.dropped, "lan");
    assert!(
        lan + 5_000 >= sent,
        "{lan} of {sent} junk datagrams counted on the LAN: {counters:?}"
    );

    assert!(vip_on(&lab, "n1") && !vip_on(&lab, "n2"));
}

/// The lab's IPv6 addresses (unique local, on no host's network): the LAN and the
/// crossover, as the lab's IPv4 ones are.
const V6: [(&str, &str, &str); 5] = [
    ("n1", "eth0", "fd00:18::11"),
    ("n2", "eth0", "fd00:18::12"),
    // Alpha's LAN address but for the third word: only a comparison of the whole
    // address tells the client's junk from alpha's heartbeats.
    ("cl", "eth0", "fd00:18::1:0:0:11"),
    ("n1", "xo", "fd00:19::1"),
    ("n2", "xo", "fd00:19::2"),
];

#[test]
fn over_ipv6_links_a_strangers_flood_is_sorted_from_the_heartbeats_too() {
    let _one = one_at_a_time();
    let lab = Lab::new();
    for (host, interface, address) in V6 {
        // Without duplicate address detection, so that each is usable at once.
        let cidr = format!("{address}/64");
        lab.exec_ok(
            host,
            &["ip", "-6", "addr", "add", &cidr, "dev", interface, "nodad"],
        );
    }
    let cluster = Cluster::start_with(&lab, |sample| {
        fast(sample)
            .set(
                "node[0].addresses",
                r#"{ crossover = "fd00:19::1", lan = "fd00:18::11" }"#,
            )
            .set(
                "node[1].addresses",
                r#"{ crossover = "fd00:19::2", lan = "fd00:18::12" }"#,
            )
    });
    let before = status_of(&lab, "beta");
    let from = lab.log(&cluster.beta).len();
    let target = SocketAddr::new("fd00:18::12".parse().unwrap(), 694);
    let flood_for = Duration::from_secs(3);
    let sent = junk_flood(&lab, target, FLOOD_RATE, flood_for)
        .join()
        .expect("flood thread");
    let after = status_of(&lab, "beta");
    let alpha = status_of(&lab, "alpha");

    let heard = |link: &str| received(&after, "alpha", link) - received(&before, "alpha", link);
    let (crossover, lan) = (heard("crossover"), heard("lan"));
    eprintln!(
        "IPv6 flood: {sent} datagrams; beta heard alpha {crossover} times on the crossover \
         and {lan} on the LAN; rejected {:?}",
        after.counters.rejected
    );
    assert!(
        flood_ran(sent, FLOOD_RATE, flood_for),
        "the flood ran at {:.0} datagrams a second, not near {FLOOD_RATE}",
        sent as f64 / flood_for.as_secs_f64()
    );
    // Both links carried alpha's heartbeats all along, the flooded one as well: the
    // junk comes from an address that differs from alpha's in one word of four.
    assert!(
        crossover > 200 && lan + 10 + crossover / 50 >= crossover,
        "under the flood beta heard alpha {crossover} times on the crossover, {lan} on the LAN"
    );
    assert!(
        count(&after.counters.rejected, "unexpected source address") > 0,
        "the stranger's junk is counted as such: {:?}",
        after.counters
    );
    let log = lab.log(&cluster.beta);
    let trouble = dead_or_moved(&log, from);
    assert!(
        trouble.is_empty(),
        "under the flood:\n{}",
        trouble.join("\n")
    );
    assert_eq!(after.state.as_str(), "standby");
    assert_eq!(alpha.state.as_str(), "active");
}

#[test]
fn an_event_file_that_stops_taking_writes_never_delays_heartbeats() {
    let _one = one_at_a_time();
    let lab = Lab::new();
    let fifo = lab.tmpdir().join("events.fifo");
    nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600)).expect("mkfifo");
    // Held open for reading and never read: once the pipe is full, every write to
    // it blocks. Opened read-write so that neither this open nor the daemons' waits
    // for the other end.
    let mut stuck = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&fifo)
        .expect("open the FIFO");
    let cluster = Cluster::start_with(&lab, |sample| {
        tolerant(sample).set("events.file", format!("\"{}\"", fifo.display()))
    });
    // Fill what is left of the pipe: from here on the writer is stuck.
    let chunk = [b'\n'; 4096];
    let mut filled = 0;
    loop {
        match stuck.write(&chunk) {
            Ok(n) if n > 0 => filled += n,
            _ => break,
        }
        assert!(filled < 16 << 20, "the FIFO never filled");
    }
    let from_alpha = lab.log(&cluster.alpha).len();
    let from_beta = lab.log(&cluster.beta).len();
    // Events to write: beta's heartbeats to alpha's LAN address are cut, so alpha
    // reports the link late, then dead (the crossover still carries them).
    lab.blackhole("n2", N1_LAN);
    let polls = keep_hearing(
        &lab,
        &cluster,
        Duration::from_secs(3),
        "while the event file is stuck",
    );
    assert!(polls >= 5);
    let alpha_log = lab.log(&cluster.alpha);
    assert!(
        alpha_log[from_alpha..].contains("link lan to beta dead"),
        "alpha had an event to write:\n{}",
        cluster.logs()
    );
    lab.unblackhole("n2", N1_LAN);
    assert_undisturbed(
        &lab,
        &cluster,
        (from_alpha, from_beta),
        Some("lan"),
        "while the event file was stuck",
    );
    drop(stuck);
}

/// A reload whose file takes its reader a long time: the active node's file grown
/// by comments until reading and parsing it takes this build at least three dead
/// times of `fast` (600 ms; tens of MiB). The loop carries on meanwhile, as it does
/// for a slow mount or a slow NSS lookup of the hooks' user: the standby never
/// misses a heartbeat of the active node, which stays active, and the reload goes
/// through. (With the load on the loop, the standby took over.)
#[test]
fn a_reload_that_takes_long_to_read_never_delays_heartbeats() {
    let _one = one_at_a_time();
    let lab = Lab::new();
    let cluster = Cluster::start_with(&lab, fast);
    let dead = Duration::from_millis(200);
    let mib = grow_until_slow(&cluster.config, 3 * dead);
    let from_alpha = lab.log(&cluster.alpha).len();
    let from_beta = lab.log(&cluster.beta).len();
    lab.kill(&cluster.alpha, nix::sys::signal::Signal::SIGHUP)
        .expect("SIGHUP alpha");
    cluster.wait_for("alpha's reload to finish", || {
        lab.log(&cluster.alpha)[from_alpha..].contains("configuration reloaded")
    });
    let log = lab.log(&cluster.alpha);
    let at = |what: &str| {
        (log[from_alpha..].lines())
            .find(|l| l.contains(what))
            .and_then(logged_at)
            .unwrap_or_else(|| panic!("no time on alpha's line with {what:?}:\n{log}"))
    };
    let (began, ended) = (at("SIGHUP: reloading"), at("configuration reloaded"));
    // Across midnight, the time of day starts again.
    let took = ended
        .checked_sub(began)
        .unwrap_or_else(|| ended + Duration::from_secs(86_400) - began);
    eprintln!("alpha's reload of a file of {mib} MiB took {took:?}");
    assert_undisturbed(
        &lab,
        &cluster,
        (from_alpha, from_beta),
        None,
        "while alpha read its file",
    );
    // What makes the test worth its name: the daemon's own reload, from its log,
    // took longer than the dead time.
    assert!(
        took > dead,
        "the reload took {took:?}, too little to show that it runs off the loop"
    );
}

/// Grows the configuration file at `path` by lines of comments until loading it
/// takes at least `at_least` here, with the same build as the daemon under test;
/// returns its size in MiB. At most 512 MiB.
fn grow_until_slow(path: &std::path::Path, at_least: Duration) -> usize {
    let text = std::fs::read_to_string(path).expect("read the config");
    let line = format!("# {}\n", "-".repeat(125));
    let mut mib = 16;
    loop {
        let mut grown = text.clone();
        grown.push_str(&line.repeat(mib * 1024 * 1024 / line.len()));
        std::fs::write(path, grown).expect("write the long config");
        let started = Instant::now();
        failoverd::config::Config::load(path).expect("the long config loads");
        if started.elapsed() >= at_least {
            return mib;
        }
        if mib >= 512 {
            eprintln!(
                "{mib} MiB took this build only {:?} to load",
                started.elapsed()
            );
            return mib;
        }
        mib *= 2;
    }
}

/// When a line of a daemon's log was written, from its leading UTC time
/// (`2026-12-01T19:59:11.879190Z ...`), as the time of day.
fn logged_at(line: &str) -> Option<Duration> {
    let (_, clock) = line.split_whitespace().next()?.split_once('T')?;
    let mut parts = clock.trim_end_matches('Z').split(':');
    let hours: u64 = parts.next()?.parse().ok()?;
    let minutes: u64 = parts.next()?.parse().ok()?;
    let seconds: f64 = parts.next()?.parse().ok()?;
    Some(Duration::from_secs(hours * 3600 + minutes * 60) + Duration::from_secs_f64(seconds))
}

/// A configuration file replaced by a FIFO that nothing is written to: reading it
/// would block (as the loop's own read once froze the heartbeats), so the reload
/// refuses it at once as no regular file, while both nodes keep hearing each other
/// and answering; once the file is back, a reload goes through.
#[test]
fn a_reload_of_a_file_that_would_block_is_refused_and_never_delays_heartbeats() {
    let _one = one_at_a_time();
    let lab = Lab::new();
    let cluster = Cluster::start_with(&lab, tolerant);
    let text = std::fs::read_to_string(&cluster.config).expect("read the config");
    std::fs::remove_file(&cluster.config).expect("remove the config");
    nix::unistd::mkfifo(
        &cluster.config,
        nix::sys::stat::Mode::from_bits_truncate(0o600),
    )
    .expect("mkfifo");
    // Held open for writing and never written: a plain read of it blocks.
    let pending = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NONBLOCK)
        .open(&cluster.config)
        .expect("open the FIFO");
    let from_alpha = lab.log(&cluster.alpha).len();
    let from_beta = lab.log(&cluster.beta).len();
    lab.kill(&cluster.beta, nix::sys::signal::Signal::SIGHUP)
        .expect("SIGHUP beta");
    keep_hearing(
        &lab,
        &cluster,
        Duration::from_secs(2),
        "after beta's reload of a FIFO",
    );
    cluster.wait_for("beta to refuse the FIFO", || {
        lab.log(&cluster.beta)[from_beta..].contains("is not a regular file")
    });
    drop(pending);
    // The file is back: the next reload goes through.
    std::fs::remove_file(&cluster.config).expect("remove the FIFO");
    std::fs::write(&cluster.config, text).expect("write the config");
    lab.kill(&cluster.beta, nix::sys::signal::Signal::SIGHUP)
        .expect("SIGHUP beta");
    cluster.wait_for("beta's reload to finish", || {
        lab.log(&cluster.beta)[from_beta..].contains("configuration reloaded")
    });
    assert_undisturbed(
        &lab,
        &cluster,
        (from_alpha, from_beta),
        None,
        "around the reloads",
    );
}
