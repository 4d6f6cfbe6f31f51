//! Probes the gateway (or any target) with ICMP echo.
//!
//! Owns the raw ICMP sockets, the echo identifier and sequence numbers, the
//! matching of replies to requests, and the probe schedule. What a run of
//! failed probes means for the election is the core's decision.
//!
//! Every ping opens its own raw socket, connected to the target. The kernel
//! gives each raw socket a copy of every ICMP message from the connected
//! address, so concurrent pings never steal each other's replies, and no
//! shared receive loop or table of pending requests is needed. One socket per
//! probe costs nothing at gateway-probing rates.

use std::io::{self, Read};
use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicU16, Ordering};
use std::time::{Duration, Instant};

use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::unix::AsyncFd;
use tokio::sync::mpsc;
use tokio::time::MissedTickBehavior;

use crate::wire::icmp::{
    EchoId, echo_request_v4, echo_request_v6, parse_echo_reply_v4, parse_echo_reply_v6,
};

/// Sent in every request; echoed back, and recognisable in a packet capture.
const PAYLOAD: &[u8] = b"failoverd probe";
/// Room for an IPv4 header with options plus any reply we care about; larger
/// messages are not ours and may be truncated.
const RECV_BUFFER: usize = 1024;

#[derive(Debug, thiserror::Error)]
pub enum PingError {
    /// No matching reply arrived within the timeout.
    #[error("no echo reply from {target}")]
    Timeout { target: IpAddr },
    /// The raw socket could not be opened; it needs CAP_NET_RAW.
    #[error("opening icmp socket for {target}: {source}")]
    Socket { target: IpAddr, source: io::Error },
    /// The request could not be sent, e.g. no route to the target.
    #[error("sending echo request to {target}: {source}")]
    Send { target: IpAddr, source: io::Error },
    /// Waiting for the reply failed, e.g. the kernel got host unreachable.
    #[error("receiving echo reply from {target}: {source}")]
    Receive { target: IpAddr, source: io::Error },
}

/// One probe of one target, as `run_prober` reports it.
#[derive(Debug)]
pub struct ProbeResult {
    /// Position of the target in the list given to `run_prober`.
    pub target_index: usize,
    pub target: IpAddr,
    /// The round-trip time, or why the probe failed.
    pub outcome: Result<Duration, PingError>,
}

/// Sends echo requests and waits for their replies. Shareable between tasks:
/// `ping` takes `&self`.
#[derive(Debug)]
pub struct Pinger {
    ident: u16,
    next_seq: AtomicU16,
}

impl Pinger {
    /// Picks this pinger's echo identifier. Opens no socket: each ping opens
    /// its own, so a missing CAP_NET_RAW shows as `PingError::Socket`.
    pub fn new() -> Pinger {
        static INSTANCES: AtomicU16 = AtomicU16::new(0);
        // Process id like ping(8), so probers on one host differ; truncating
        // it is fine, it only needs to differ. The instance count separates
        // pingers within this process.
        let pid = std::process::id() as u16;
        Pinger {
            ident: pid.wrapping_add(INSTANCES.fetch_add(1, Ordering::Relaxed)),
            next_seq: AtomicU16::new(0),
        }
    }

    /// Pings `target` once and returns the round-trip time.
    ///
    /// Only a reply from `target` carrying this request's identifier and
    /// sequence number counts; other ICMP traffic is ignored. IPv6 link-local
    /// targets are not supported: an `IpAddr` has no scope to reach them by.
    pub async fn ping(&self, target: IpAddr, timeout: Duration) -> Result<Duration, PingError> {
        let id = EchoId {
            ident: self.ident,
            seq: self.next_seq.fetch_add(1, Ordering::Relaxed),
        };
        let socket = open(target).map_err(|source| PingError::Socket { target, source })?;
        // Connecting makes the kernel drop ICMP from other addresses before
        // it reaches us, and reports a missing route right here.
        socket
            .get_ref()
            .connect(&SocketAddr::new(target, 0).into())
            .map_err(|source| PingError::Send { target, source })?;
        let request = match target {
            IpAddr::V4(_) => echo_request_v4(id, PAYLOAD),
            IpAddr::V6(_) => echo_request_v6(id, PAYLOAD),
        };

        let started = Instant::now();
        let exchange = async {
            send(&socket, &request)
                .await
                .map_err(|source| PingError::Send { target, source })?;
            wait_for_reply(&socket, target, id)
                .await
                .map_err(|source| PingError::Receive { target, source })?;
            Ok(started.elapsed())
        };
        tokio::time::timeout(timeout, exchange)
            .await
            .unwrap_or(Err(PingError::Timeout { target }))
    }
}

impl Default for Pinger {
    fn default() -> Self {
        Pinger::new()
    }
}

/// Pings every target once per `interval`, all targets concurrently, and
/// sends each result to `tx` as soon as it is known. Returns when the
/// receiver is dropped.
///
/// A round lasts at most `timeout`; if that is longer than `interval`, the
/// next round starts late rather than overlapping.
pub async fn run_prober(
    targets: Vec<IpAddr>,
    interval: Duration,
    timeout: Duration,
    tx: mpsc::Sender<ProbeResult>,
) {
    let pinger = Pinger::new();
    let mut ticks = tokio::time::interval(interval);
    ticks.set_missed_tick_behavior(MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            () = tx.closed() => return,
            _ = ticks.tick() => {}
        }
        let mut round: FuturesUnordered<_> = targets
            .iter()
            .enumerate()
            .map(|(target_index, &target)| {
                let pinger = &pinger;
                async move {
                    ProbeResult {
                        target_index,
                        target,
                        outcome: pinger.ping(target, timeout).await,
                    }
                }
            })
            .collect();
        loop {
            let next = tokio::select! {
                () = tx.closed() => return,
                next = round.next() => next,
            };
            let Some(result) = next else {
                break;
            };
            if tx.send(result).await.is_err() {
                return;
            }
        }
    }
}

fn open(target: IpAddr) -> io::Result<AsyncFd<Socket>> {
    let (domain, protocol) = match target {
        IpAddr::V4(_) => (Domain::IPV4, Protocol::ICMPV4),
        IpAddr::V6(_) => (Domain::IPV6, Protocol::ICMPV6),
    };
    let socket = Socket::new(domain, Type::RAW, Some(protocol))?;
    socket.set_nonblocking(true)?;
    // SAFETY: the Socket owns its descriptor and always returns that same
    // one; it is never taken out or replaced while registered, as nothing
    // here calls `get_mut` or `into_inner`.
    Ok(unsafe { AsyncFd::register(socket) }?)
}

async fn send(socket: &AsyncFd<Socket>, request: &[u8]) -> io::Result<()> {
    loop {
        let mut ready = socket.writable().await?;
        if let Ok(sent) = ready.try_io(|inner| inner.get_ref().send(request)) {
            // Raw sockets send whole datagrams or fail.
            return sent.map(drop);
        }
    }
}

async fn wait_for_reply(socket: &AsyncFd<Socket>, target: IpAddr, id: EchoId) -> io::Result<()> {
    let mut buf = [0u8; RECV_BUFFER];
    loop {
        let mut ready = socket.readable().await?;
        let Ok(received) = ready.try_io(|inner| inner.get_ref().read(&mut buf)) else {
            continue;
        };
        let message = &buf[..received?];
        // Raw IPv4 sockets deliver the IP header too; raw IPv6 sockets do not.
        let reply = match target {
            IpAddr::V4(_) => parse_echo_reply_v4(message),
            IpAddr::V6(_) => parse_echo_reply_v6(message),
        };
        if reply == Some(id) {
            return Ok(());
        }
    }
}
