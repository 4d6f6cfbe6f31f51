//! netprobe: a UDP echo service and a client that measures who answers it.
//!
//! The failover tests and the demo use it to watch a virtual IP from the outside, the
//! way a client of the protected service would:
//!
//! - `netprobe serve` answers every datagram with `<name> <request payload>`, from the
//!   address the request was sent to (so an answer to the VIP comes from the VIP, not
//!   from the node's own address), and exits by itself after `--duration`.
//! - `netprobe probe` sends numbered probes at a fixed interval, matches answers to
//!   probes by number, and prints one JSON line that says how many were answered, by
//!   whom, when the responder changed and how long the longest silence was.
//!
//! - `netprobe http-serve` answers every HTTP request on a TCP port with a fixed body
//!   and status 200: the service that the tests and the benchmark check with a
//!   failoverd `http` check (or keepalived's curl), and kill to make it fail.
//!
//! Every loop here is bounded: the servers by their duration, the client by its count.
//! SIGUSR1 ends a probe run early, with the summary as usual, for a caller that probes
//! across an event of unknown length.

use std::fmt::Write as _;
use std::io::{ErrorKind, IoSlice, IoSliceMut, Read, Write};
use std::net::{Ipv4Addr, Shutdown, SocketAddr, SocketAddrV4, TcpListener, TcpStream, UdpSocket};
use std::os::fd::AsRawFd;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use clap::{Args, Parser, Subcommand};
use nix::libc;
use nix::sys::signal::{SaFlags, SigAction, SigHandler, SigSet, Signal, sigaction};
use nix::sys::socket::{
    ControlMessage, ControlMessageOwned, MsgFlags, SockaddrIn, recvmsg, sendmsg, setsockopt,
    sockopt,
};

/// Tag that starts every probe payload, so stray datagrams are not taken for answers.
const PROBE_TAG: &str = "netprobe";

/// Set by SIGUSR1: send no more probes, wait for the answers on their way, report.
static STOP: AtomicBool = AtomicBool::new(false);

extern "C" fn on_stop_signal(_: libc::c_int) {
    STOP.store(true, Ordering::SeqCst);
}

/// Whether `socket` has something to read within `wait`. Every signal is let in
/// while it waits, and one ends the wait early, which reads as nothing.
fn readable_within(socket: &UdpSocket, wait: Duration) -> bool {
    let mut fd = libc::pollfd {
        fd: socket.as_raw_fd(),
        events: libc::POLLIN,
        revents: 0,
    };
    let timeout = libc::timespec {
        tv_sec: libc::time_t::try_from(wait.as_secs()).unwrap_or(libc::time_t::MAX),
        tv_nsec: libc::c_long::from(wait.subsec_nanos() as i32),
    };
    let none = SigSet::empty();
    // SAFETY: one pollfd, a timespec and a signal set that live across the call.
    let ready = unsafe { libc::ppoll(&raw mut fd, 1, &raw const timeout, none.as_ref()) };
    ready > 0
}

#[derive(Parser)]
#[command(
    name = "netprobe",
    about = "UDP echo server and failover probe for the failoverd lab",
    long_about = "UDP echo server and failover probe for the failoverd lab.\n\n\
        Run `netprobe serve` on each node and `netprobe probe` on the client, aimed at \
        the virtual IP; the probe prints one JSON line telling which node answered, \
        when that changed and how long the client was left without answers."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Answer every UDP datagram with "<name> <payload>" until --duration runs out.
    Serve(ServeArgs),
    /// Send numbered probes to a target and print a one-line JSON summary on stdout.
    #[command(after_help = PROBE_AFTER_HELP)]
    Probe(ProbeArgs),
    /// Answer every HTTP request with status 200 and --body until --duration runs out.
    HttpServe(HttpServeArgs),
}

const PROBE_AFTER_HELP: &str = "\
Output: one JSON object on stdout with
  sent, answered, lost         probes sent, answered within --timeout, and the rest
  late, duplicates             answers after --timeout (not counted), extra answers
  foreign                      answers from an address other than the target (ignored)
  send_errors                  probes the kernel refused to send (counted as lost)
  longest_gap_ms               longest time between two consecutive answered probes,
                               measured on the probes' send times (equals the interval
                               when nothing was lost; null with fewer than 2 answers)
  gap_from, gap_to             probe numbers that bound that gap
  lost_at_start, lost_at_end   unanswered probes before the first / after the last answer
  first_responder, last_responder, responders {name: answers}
  changes [{seq, at_ms, from, to}]  each change of responder, in probe order; at_ms is
                               the send time of probe seq after the first probe
  stopped_early                true when --stop-after-responder ended the run

SIGUSR1 ends the run early: no more probes are sent, answers on their way are awaited
for --timeout, and the summary is printed as usual (stopped_early stays false).

Durations take a unit: 500us, 10ms, 2s, 1.5s, 1m.";

#[derive(Args)]
struct ServeArgs {
    /// UDP port to listen on (all IPv4 addresses).
    #[arg(long, default_value_t = 9000)]
    port: u16,
    /// Name put in front of every answer; no spaces.
    #[arg(long)]
    name: String,
    /// Exit after this long.
    #[arg(long, default_value = "600s", value_parser = parse_duration)]
    duration: Duration,
}

#[derive(Args)]
struct HttpServeArgs {
    /// TCP port to listen on (all IPv4 addresses).
    #[arg(long, default_value_t = 8080)]
    port: u16,
    /// The body of every answer, whatever the request's method or path.
    #[arg(long, default_value = "ok")]
    body: String,
    /// Exit after this long.
    #[arg(long, default_value = "600s", value_parser = parse_duration)]
    duration: Duration,
}

#[derive(Args)]
struct ProbeArgs {
    /// Address and port to probe, e.g. 198.18.0.10:9000.
    #[arg(long)]
    target: SocketAddrV4,
    /// Time between two probes (at least 1ms).
    #[arg(long, default_value = "10ms", value_parser = parse_duration)]
    interval: Duration,
    /// Number of probes to send at most (1 to 1000000).
    #[arg(long, default_value_t = 100)]
    count: u64,
    /// An answer arriving later than this after its probe counts as late, not answered.
    #[arg(long, default_value = "200ms", value_parser = parse_duration)]
    timeout: Duration,
    /// Stop --settle probes after the first answer from this responder.
    #[arg(long, value_name = "NAME")]
    stop_after_responder: Option<String>,
    /// Probes to send after the first answer from --stop-after-responder.
    #[arg(long, default_value_t = 10, value_name = "N")]
    settle: u64,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Serve(args) => serve(&args),
        Command::Probe(args) => probe(&args).map(|summary| println!("{}", summary.to_json())),
        Command::HttpServe(args) => http_serve(&args),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("netprobe: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Parses "10ms", "2s", "1.5s", "500us", "1m".
fn parse_duration(text: &str) -> Result<Duration, String> {
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .ok_or_else(|| format!("{text:?} has no unit (use us, ms, s or m)"))?;
    let (number, unit) = text.split_at(split);
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} does not start with a number"))?;
    let seconds = match unit {
        "us" => value / 1e6,
        "ms" => value / 1e3,
        "s" => value,
        "m" => value * 60.0,
        _ => {
            return Err(format!(
                "unknown unit {unit:?} in {text:?} (use us, ms, s or m)"
            ));
        }
    };
    Duration::try_from_secs_f64(seconds).map_err(|e| format!("{text:?}: {e}"))
}

fn serve(args: &ServeArgs) -> Result<(), String> {
    if args.name.is_empty() || args.name.len() > 64 || args.name.contains(char::is_whitespace) {
        return Err(format!(
            "--name {:?} must be 1 to 64 bytes without spaces",
            args.name
        ));
    }
    let socket = UdpSocket::bind((Ipv4Addr::UNSPECIFIED, args.port))
        .map_err(|e| format!("bind udp port {}: {e}", args.port))?;
    // With the destination address of each request in hand, the answer can leave from
    // that same address. Without it the kernel would pick the node's primary address,
    // and a client talking to the VIP would see answers from a stranger.
    setsockopt(&socket, sockopt::Ipv4PacketInfo, &true)
        .map_err(|e| format!("enable IP_PKTINFO: {e}"))?;
    let deadline = Instant::now() + args.duration;
    eprintln!(
        "netprobe: {} serving udp 0.0.0.0:{} for {:?}",
        args.name, args.port, args.duration
    );

    let mut answered: u64 = 0;
    let mut buf = [0u8; 2048];
    let prefix_len = args.name.len() + 1;
    let mut reply = Vec::with_capacity(prefix_len + buf.len());
    loop {
        let now = Instant::now();
        if now >= deadline {
            break;
        }
        // Wake up at least once a second so the deadline is honoured on a silent port.
        let wait = (deadline - now).min(Duration::from_secs(1));
        socket
            .set_read_timeout(Some(wait.max(Duration::from_millis(1))))
            .map_err(|e| format!("set read timeout: {e}"))?;
        let Some((len, peer, local)) = receive_with_destination(&socket, &mut buf)? else {
            continue;
        };
        reply.clear();
        reply.extend_from_slice(args.name.as_bytes());
        reply.push(b' ');
        reply.extend_from_slice(&buf[..len]);
        // ipi_spec_dst picks the source address; 0.0.0.0 leaves it to the kernel.
        let source = local.unwrap_or(Ipv4Addr::UNSPECIFIED);
        let info = libc::in_pktinfo {
            ipi_ifindex: 0,
            ipi_spec_dst: libc::in_addr {
                s_addr: u32::from(source).to_be(),
            },
            ipi_addr: libc::in_addr { s_addr: 0 },
        };
        let cmsgs = [ControlMessage::Ipv4PacketInfo(&info)];
        let iov = [IoSlice::new(&reply)];
        // A failed answer (peer gone, route removed) is the client's loss to count.
        if sendmsg(
            socket.as_raw_fd(),
            &iov,
            &cmsgs,
            MsgFlags::empty(),
            Some(&peer),
        )
        .is_ok()
        {
            answered += 1;
        }
    }
    eprintln!(
        "netprobe: {} answered {answered} datagrams, duration over",
        args.name
    );
    Ok(())
}

/// How long `http_serve` waits for a client's request head, so that one silent client
/// cannot hold the server (it answers one connection at a time) for long.
const HTTP_READ_TIMEOUT: Duration = Duration::from_millis(500);
/// The longest request head `http_serve` reads.
const HTTP_MAX_HEAD: usize = 8192;

/// One connection at a time: read the request head, answer 200 with the body, close.
/// That is all a health check (failoverd's `http` kind, curl) needs, and a check that
/// finds the port closed (the process killed) fails at once with "connection refused".
fn http_serve(args: &HttpServeArgs) -> Result<(), String> {
    let listener = TcpListener::bind((Ipv4Addr::UNSPECIFIED, args.port))
        .map_err(|e| format!("bind tcp port {}: {e}", args.port))?;
    listener
        .set_nonblocking(true)
        .map_err(|e| format!("set the listener non-blocking: {e}"))?;
    let deadline = Instant::now() + args.duration;
    eprintln!(
        "netprobe: serving http 0.0.0.0:{} for {:?}",
        args.port, args.duration
    );
    let response = format!(
        "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: {}\r\n\
         Connection: close\r\n\r\n{}",
        args.body.len(),
        args.body
    );
    let mut answered: u64 = 0;
    while Instant::now() < deadline {
        let stream = match listener.accept() {
            Ok((stream, _)) => stream,
            // Look at the deadline at least every 10 ms on an idle port.
            Err(e) if e.kind() == ErrorKind::WouldBlock => {
                let left = deadline.saturating_duration_since(Instant::now());
                std::thread::sleep(Duration::from_millis(10).min(left));
                continue;
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(e) => return Err(format!("accept: {e}")),
        };
        // A client that goes away or never sends a whole head is its own loss.
        if answer_http(stream, response.as_bytes()).is_ok() {
            answered += 1;
        }
    }
    eprintln!("netprobe: answered {answered} http requests, duration over");
    Ok(())
}

/// Reads one request head (bounded in size and time) and writes `response`.
fn answer_http(mut stream: TcpStream, response: &[u8]) -> std::io::Result<()> {
    stream.set_nonblocking(false)?;
    stream.set_read_timeout(Some(HTTP_READ_TIMEOUT))?;
    stream.set_write_timeout(Some(HTTP_READ_TIMEOUT))?;
    let mut head = Vec::new();
    let mut buf = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") && head.len() < HTTP_MAX_HEAD {
        let n = stream.read(&mut buf)?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&buf[..n]);
    }
    stream.write_all(response)?;
    stream.shutdown(Shutdown::Write)
}

/// Receives one datagram; returns its length, sender and the address it was sent to,
/// or None when the read timed out or failed in a way worth retrying.
fn receive_with_destination(
    socket: &UdpSocket,
    buf: &mut [u8],
) -> Result<Option<(usize, SockaddrIn, Option<Ipv4Addr>)>, String> {
    let mut cmsg_buf = nix::cmsg_space!(libc::in_pktinfo);
    let mut iov = [IoSliceMut::new(buf)];
    let message = match recvmsg::<SockaddrIn>(
        socket.as_raw_fd(),
        &mut iov,
        Some(&mut cmsg_buf),
        MsgFlags::empty(),
    ) {
        Ok(message) => message,
        Err(nix::errno::Errno::EAGAIN | nix::errno::Errno::EINTR) => return Ok(None),
        // ICMP errors from earlier answers surface here; they are not ours to handle.
        Err(nix::errno::Errno::ECONNREFUSED | nix::errno::Errno::EHOSTUNREACH) => {
            return Ok(None);
        }
        Err(e) => return Err(format!("receive: {e}")),
    };
    let Some(peer) = message.address else {
        return Ok(None);
    };
    let mut local = None;
    if let Ok(cmsgs) = message.cmsgs() {
        for cmsg in cmsgs {
            if let ControlMessageOwned::Ipv4PacketInfo(info) = cmsg {
                local = Some(Ipv4Addr::from(u32::from_be(info.ipi_addr.s_addr)));
            }
        }
    }
    Ok(Some((message.bytes, peer, local)))
}

/// What happened to one probe.
struct Sent {
    /// Send time after the first probe was sent.
    at: Duration,
    /// Index into `Run::responders` of the first in-time answer.
    responder: Option<usize>,
}

/// State of one probe run; becomes a `Summary` when the run is over.
struct Run {
    start: Instant,
    probes: Vec<Sent>,
    responders: Vec<(String, u64)>,
    late: u64,
    duplicates: u64,
    foreign: u64,
    send_errors: u64,
    stopped_early: bool,
}

fn probe(args: &ProbeArgs) -> Result<Summary, String> {
    if !(1..=1_000_000).contains(&args.count) {
        return Err(format!(
            "--count {} is not between 1 and 1000000",
            args.count
        ));
    }
    if args.interval < Duration::from_millis(1) {
        return Err("--interval must be at least 1ms".into());
    }
    if args.timeout.is_zero() {
        return Err("--timeout must be more than zero".into());
    }
    let on_stop = SigAction::new(
        SigHandler::Handler(on_stop_signal),
        SaFlags::empty(),
        SigSet::empty(),
    );
    // SAFETY: the handler only stores to an atomic, which is async-signal-safe. Without
    // SA_RESTART a wait for an answer returns at once, so the flag is seen promptly.
    unsafe { sigaction(Signal::SIGUSR1, &on_stop) }.map_err(|e| format!("handle SIGUSR1: {e}"))?;
    // Held back but while waiting (see `readable_within`): a SIGUSR1 that comes
    // between the check of STOP and the wait then ends the wait at once, rather
    // than going unnoticed until it times out.
    SigSet::from(Signal::SIGUSR1)
        .thread_block()
        .map_err(|e| format!("block SIGUSR1: {e}"))?;
    let socket =
        UdpSocket::bind((Ipv4Addr::UNSPECIFIED, 0)).map_err(|e| format!("bind udp: {e}"))?;
    socket
        .set_nonblocking(true)
        .map_err(|e| format!("make the socket non-blocking: {e}"))?;
    let target = SocketAddr::V4(args.target);
    // The run id keeps answers to an earlier probe run on the same port apart.
    let run_id = std::process::id() as u64
        ^ SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or(0);
    let run_tag = format!("{PROBE_TAG} {run_id:x} ");

    let start = Instant::now();
    let mut run = Run {
        start,
        probes: Vec::with_capacity(args.count as usize),
        responders: Vec::new(),
        late: 0,
        duplicates: 0,
        foreign: 0,
        send_errors: 0,
        stopped_early: false,
    };
    let mut stop_at = args.count;
    let mut next_due = start;
    let mut outstanding: u64 = 0;
    let mut buf = [0u8; 2048];
    loop {
        let now = Instant::now();
        let sent = run.probes.len() as u64;
        if STOP.load(Ordering::SeqCst) {
            stop_at = stop_at.min(sent);
        }
        let wait_until = if sent < stop_at {
            if now >= next_due {
                let payload = format!("{run_tag}{sent}");
                if socket.send_to(payload.as_bytes(), target).is_err() {
                    // A blackhole route or an unreachable neighbour: the probe is lost.
                    run.send_errors += 1;
                }
                run.probes.push(Sent {
                    at: now - start,
                    responder: None,
                });
                outstanding += 1;
                next_due += args.interval;
                // After a stall (a descheduled process), resume the pace instead of
                // sending a burst to catch up.
                if now > next_due + args.interval {
                    next_due = now + args.interval;
                }
                continue;
            }
            next_due
        } else {
            let last_sent = start + run.probes.last().map_or(Duration::ZERO, |p| p.at);
            if outstanding == 0 || now >= last_sent + args.timeout {
                break;
            }
            last_sent + args.timeout
        };
        let wait = wait_until.saturating_duration_since(now);
        // Not SO_RCVTIMEO: the kernel counts that in scheduler ticks (4 ms at
        // HZ=250) and wakes late by up to one, so a 2 ms probe went out every 4 to
        // 8 ms and a 10 ms one with as much jitter. ppoll sleeps on a high
        // resolution timer.
        if !readable_within(&socket, wait) {
            continue;
        }
        let (len, from) = match socket.recv_from(&mut buf) {
            Ok(received) => received,
            Err(e)
                if matches!(
                    e.kind(),
                    ErrorKind::WouldBlock | ErrorKind::TimedOut | ErrorKind::Interrupted
                ) =>
            {
                continue;
            }
            // Errors queued by ICMP (port unreachable and the like) mean nothing answered.
            Err(_) => continue,
        };
        let received_at = Instant::now();
        if from != target {
            run.foreign += 1;
            continue;
        }
        let Some((name, seq)) = parse_answer(&buf[..len], &run_tag) else {
            run.foreign += 1;
            continue;
        };
        let Some(probe) = run.probes.get(seq as usize) else {
            run.foreign += 1;
            continue;
        };
        if received_at - (start + probe.at) > args.timeout {
            run.late += 1;
            continue;
        }
        if probe.responder.is_some() {
            run.duplicates += 1;
            continue;
        }
        let index = match run.responders.iter().position(|(n, _)| n == name) {
            Some(index) => index,
            None => {
                run.responders.push((name.to_owned(), 0));
                run.responders.len() - 1
            }
        };
        run.responders[index].1 += 1;
        run.probes[seq as usize].responder = Some(index);
        outstanding = outstanding.saturating_sub(1);
        if args.stop_after_responder.as_deref() == Some(name) && !run.stopped_early {
            run.stopped_early = true;
            stop_at = stop_at.min(run.probes.len() as u64 + args.settle);
        }
    }
    // `stopped_early` says whether the run ended before --count, not merely that the
    // awaited responder showed up near the end.
    run.stopped_early &= (run.probes.len() as u64) < args.count;
    Ok(Summary::new(args, run))
}

/// Splits an answer "<name> netprobe <run> <seq>" into name and probe number, if it
/// belongs to this run.
fn parse_answer<'a>(answer: &'a [u8], run_tag: &str) -> Option<(&'a str, u64)> {
    let text = std::str::from_utf8(answer).ok()?;
    let (name, rest) = text.split_once(' ')?;
    let seq = rest.strip_prefix(run_tag)?.parse().ok()?;
    Some((name, seq))
}

/// A change of responder between two consecutive answered probes.
struct Change {
    seq: u64,
    at: Duration,
    from: String,
    to: String,
}

/// The result of a probe run, printed as one JSON line.
struct Summary {
    target: SocketAddrV4,
    interval: Duration,
    timeout: Duration,
    sent: u64,
    answered: u64,
    late: u64,
    duplicates: u64,
    foreign: u64,
    send_errors: u64,
    elapsed: Duration,
    /// Longest send-time distance between consecutive answered probes, with their numbers.
    longest_gap: Option<(Duration, u64, u64)>,
    lost_at_start: u64,
    lost_at_end: u64,
    first_responder: Option<String>,
    last_responder: Option<String>,
    responders: Vec<(String, u64)>,
    changes: Vec<Change>,
    stopped_early: bool,
}

impl Summary {
    fn new(args: &ProbeArgs, run: Run) -> Summary {
        let answered: Vec<(u64, &Sent, usize)> = run
            .probes
            .iter()
            .enumerate()
            .filter_map(|(seq, p)| p.responder.map(|r| (seq as u64, p, r)))
            .collect();
        let mut longest_gap: Option<(Duration, u64, u64)> = None;
        let mut changes = Vec::new();
        for pair in answered.windows(2) {
            let ((seq_a, a, ra), (seq_b, b, rb)) = (pair[0], pair[1]);
            let gap = b.at - a.at;
            if longest_gap.is_none_or(|(longest, _, _)| gap > longest) {
                longest_gap = Some((gap, seq_a, seq_b));
            }
            if ra != rb {
                changes.push(Change {
                    seq: seq_b,
                    at: b.at,
                    from: run.responders[ra].0.clone(),
                    to: run.responders[rb].0.clone(),
                });
            }
        }
        let sent = run.probes.len() as u64;
        let name_of = |entry: Option<&(u64, &Sent, usize)>| {
            entry.map(|&(_, _, r)| run.responders[r].0.clone())
        };
        Summary {
            target: args.target,
            interval: args.interval,
            timeout: args.timeout,
            sent,
            answered: answered.len() as u64,
            late: run.late,
            duplicates: run.duplicates,
            foreign: run.foreign,
            send_errors: run.send_errors,
            elapsed: run.start.elapsed(),
            longest_gap,
            lost_at_start: answered.first().map_or(sent, |&(seq, _, _)| seq),
            lost_at_end: answered.last().map_or(sent, |&(seq, _, _)| sent - seq - 1),
            first_responder: name_of(answered.first()),
            last_responder: name_of(answered.last()),
            responders: run.responders,
            changes,
            stopped_early: run.stopped_early,
        }
    }

    /// Flat scalar fields come first and each key appears once, so a shell script can
    /// pick a number out with sed; nested ones follow.
    fn to_json(&self) -> String {
        let mut out = String::from("{");
        let _ = write!(out, "\"target\":{}", json_str(&self.target.to_string()));
        let _ = write!(out, ",\"interval_ms\":{}", ms(self.interval));
        let _ = write!(out, ",\"timeout_ms\":{}", ms(self.timeout));
        let _ = write!(out, ",\"sent\":{}", self.sent);
        let _ = write!(out, ",\"answered\":{}", self.answered);
        let _ = write!(out, ",\"lost\":{}", self.sent - self.answered);
        let _ = write!(out, ",\"late\":{}", self.late);
        let _ = write!(out, ",\"duplicates\":{}", self.duplicates);
        let _ = write!(out, ",\"foreign\":{}", self.foreign);
        let _ = write!(out, ",\"send_errors\":{}", self.send_errors);
        let _ = write!(out, ",\"elapsed_ms\":{}", ms(self.elapsed));
        match self.longest_gap {
            Some((gap, from, to)) => {
                let _ = write!(
                    out,
                    ",\"longest_gap_ms\":{},\"gap_from\":{from},\"gap_to\":{to}",
                    ms(gap)
                );
            }
            None => out.push_str(",\"longest_gap_ms\":null,\"gap_from\":null,\"gap_to\":null"),
        }
        let _ = write!(out, ",\"lost_at_start\":{}", self.lost_at_start);
        let _ = write!(out, ",\"lost_at_end\":{}", self.lost_at_end);
        let _ = write!(
            out,
            ",\"first_responder\":{}",
            json_opt(&self.first_responder)
        );
        let _ = write!(
            out,
            ",\"last_responder\":{}",
            json_opt(&self.last_responder)
        );
        let _ = write!(out, ",\"stopped_early\":{}", self.stopped_early);
        out.push_str(",\"responders\":{");
        for (i, (name, count)) in self.responders.iter().enumerate() {
            let comma = if i == 0 { "" } else { "," };
            let _ = write!(out, "{comma}{}:{count}", json_str(name));
        }
        out.push_str("},\"changes\":[");
        for (i, change) in self.changes.iter().enumerate() {
            let comma = if i == 0 { "" } else { "," };
            let _ = write!(
                out,
                "{comma}{{\"seq\":{},\"at_ms\":{},\"from\":{},\"to\":{}}}",
                change.seq,
                ms(change.at),
                json_str(&change.from),
                json_str(&change.to)
            );
        }
        out.push_str("]}");
        out
    }
}

/// Milliseconds with microsecond precision.
fn ms(d: Duration) -> String {
    format!("{:.3}", d.as_secs_f64() * 1000.0)
}

fn json_opt(value: &Option<String>) -> String {
    value.as_deref().map_or_else(|| "null".into(), json_str)
}

/// A JSON string literal; responder names come off the network, so escape everything.
fn json_str(value: &str) -> String {
    let mut out = String::with_capacity(value.len() + 2);
    out.push('"');
    for c in value.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 || c == '\u{7f}' => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args() -> ProbeArgs {
        ProbeArgs {
            target: "198.18.0.10:9000".parse().unwrap(),
            interval: Duration::from_millis(10),
            count: 10,
            timeout: Duration::from_millis(200),
            stop_after_responder: None,
            settle: 10,
        }
    }

    /// A run of probes sent every 10 ms; `answers[i]` names who answered probe i.
    fn run(answers: &[Option<&str>]) -> Run {
        let mut run = Run {
            start: Instant::now(),
            probes: Vec::new(),
            responders: Vec::new(),
            late: 0,
            duplicates: 0,
            foreign: 0,
            send_errors: 0,
            stopped_early: false,
        };
        for (i, answer) in answers.iter().enumerate() {
            let responder =
                answer.map(
                    |name| match run.responders.iter().position(|(n, _)| n == name) {
                        Some(index) => index,
                        None => {
                            run.responders.push((name.to_owned(), 0));
                            run.responders.len() - 1
                        }
                    },
                );
            if let Some(index) = responder {
                run.responders[index].1 += 1;
            }
            run.probes.push(Sent {
                at: Duration::from_millis(10 * i as u64),
                responder,
            });
        }
        run
    }

    #[test]
    fn durations_need_a_unit() {
        assert_eq!(parse_duration("10ms"), Ok(Duration::from_millis(10)));
        assert_eq!(parse_duration("1.5s"), Ok(Duration::from_millis(1500)));
        assert_eq!(parse_duration("500us"), Ok(Duration::from_micros(500)));
        assert_eq!(parse_duration("2m"), Ok(Duration::from_secs(120)));
        assert!(parse_duration("10").is_err());
        assert!(parse_duration("ms").is_err());
        assert!(parse_duration("10h").is_err());
    }

    #[test]
    fn answers_are_matched_to_this_run_only() {
        let tag = "netprobe 1f ";
        assert_eq!(
            parse_answer(b"alpha netprobe 1f 42", tag),
            Some(("alpha", 42))
        );
        assert_eq!(parse_answer(b"alpha netprobe 2e 42", tag), None);
        assert_eq!(parse_answer(b"alpha netprobe 1f x", tag), None);
        assert_eq!(parse_answer(b"\xff netprobe 1f 1", tag), None);
    }

    #[test]
    fn a_failover_shows_as_one_change_and_one_gap() {
        let a = Some("alpha");
        let b = Some("beta");
        let summary = Summary::new(&args(), run(&[a, a, a, None, None, None, b, b, None, b]));
        assert_eq!(summary.sent, 10);
        assert_eq!(summary.answered, 6);
        // Probe 2 (20 ms) is alpha's last answer, probe 6 (60 ms) beta's first.
        let (gap, from, to) = summary.longest_gap.unwrap();
        assert_eq!((gap, from, to), (Duration::from_millis(40), 2, 6));
        assert_eq!(summary.changes.len(), 1);
        assert_eq!(summary.changes[0].seq, 6);
        assert_eq!(summary.changes[0].at, Duration::from_millis(60));
        assert_eq!(summary.first_responder.as_deref(), Some("alpha"));
        assert_eq!(summary.last_responder.as_deref(), Some("beta"));
        let json = summary.to_json();
        assert!(json.contains("\"lost\":4,"), "{json}");
        assert!(json.contains("\"longest_gap_ms\":40.000,"), "{json}");
        assert!(
            json.contains("\"responders\":{\"alpha\":3,\"beta\":3}"),
            "{json}"
        );
        assert!(
            json.ends_with(
                "\"changes\":[{\"seq\":6,\"at_ms\":60.000,\"from\":\"alpha\",\"to\":\"beta\"}]}"
            ),
            "{json}"
        );
    }

    #[test]
    fn losses_at_the_edges_are_reported_apart_from_the_gap() {
        let a = Some("alpha");
        let summary = Summary::new(&args(), run(&[None, None, a, a, None]));
        assert_eq!(summary.longest_gap.unwrap().0, Duration::from_millis(10));
        assert_eq!((summary.lost_at_start, summary.lost_at_end), (2, 1));

        let silent = Summary::new(&args(), run(&[None, None]));
        assert!(silent.longest_gap.is_none());
        assert_eq!((silent.lost_at_start, silent.lost_at_end), (2, 2));
        let json = silent.to_json();
        assert!(json.contains("\"longest_gap_ms\":null,"), "{json}");
        assert!(json.contains("\"first_responder\":null,"), "{json}");
    }

    #[test]
    fn names_are_escaped() {
        assert_eq!(json_str("a\"b\\c\n"), "\"a\\\"b\\\\c\\u000a\"");
    }
}
