//! How a link's heartbeats leave the host: over IPv4 through a raw socket, with
//! their IPv4 and UDP headers written by the daemon (`wire::udp4`), and through the
//! link's UDP socket otherwise.
//!
//! A receiver cannot tell the two apart: the same addresses, ports, flags and
//! bytes. What differs is the sender's cost. At a 10 ms interval an active node's
//! CPU goes mostly to the kernel sending two heartbeats after 10 ms asleep, and
//! measured that way the raw path costs less than the UDP path
//! (`docs/performance.md`, "Heartbeats through a raw socket").
//!
//! What the UDP path does that the raw one does not: it refuses to send from an
//! address that is not on the host (a raw socket may write any source). So the UDP
//! socket stays the judge, for each destination on its own: a heartbeat goes
//! through the raw socket only within [`CHECK_PERIOD`] of one that the UDP socket
//! sent to the same destination. The first heartbeat after that goes through the
//! UDP socket again, and so does every one while that one fails. What the loop
//! reports about a failed send is always what the UDP socket said: a link whose
//! address was removed stops sending from it within [`CHECK_PERIOD`] and one
//! interval, and reports the kernel's refusal, as before. A raw send that fails
//! goes out again through the UDP socket, which carries that destination's
//! heartbeats alone for the next [`CHECK_PERIOD`]. At an interval of
//! [`CHECK_PERIOD`] or more every routine heartbeat is such a first one: the raw
//! socket carries only the shorter intervals' heartbeats (and the extra ones of a
//! role change), where the saving is.
//!
//! The kernel looks up the route of a raw datagram by its addresses, as for the
//! UDP socket's, but without the protocol and ports: routing rules (`ip rule
//! ipproto`, `sport`, `dport`) and IPsec policies that select heartbeats by
//! protocol or port do not see the raw ones. `[scheduling] raw_send = false` sends
//! every heartbeat through the UDP socket. Over IPv6, or without CAP_NET_RAW, every
//! heartbeat goes through it too.

use std::io;
use std::net::{SocketAddr, SocketAddrV4};
use std::sync::Arc;
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use tracing::{debug, info};

use super::listen::HeartbeatSocket;
use crate::wire::heartbeat::MAX_LEN;
use crate::wire::udp4;

/// How long a heartbeat that the UDP socket sent vouches for raw sends to the
/// same destination, and how long a raw send that failed leaves that
/// destination to the UDP socket.
pub const CHECK_PERIOD: Duration = Duration::from_millis(100);

/// Destinations followed at most; more (peers moved by many reloads) start the
/// list afresh, which costs each of them one check.
const MAX_DESTINATIONS: usize = 64;

/// How often a raw socket that could not be bound, the link's address not being
/// on the host yet (kernels before 5.19 refuse IP_FREEBIND on raw sockets), is
/// tried again.
const REOPEN_EVERY: Duration = Duration::from_secs(1);

/// How often at most a failed raw send is logged above debug level.
const TELL_EVERY: Duration = Duration::from_secs(60);

/// A link's way out for heartbeats.
pub struct Sender {
    udp: Arc<HeartbeatSocket>,
    raw: Option<Raw>,
    destinations: Vec<Destination>,
    /// When to try opening the raw socket again, after the link's address was
    /// not on the host to bind it to.
    reopen_at: Option<Instant>,
    /// Heartbeats sent through the raw socket, and raw sends that failed; for the
    /// status and the metrics.
    sent_raw: u64,
    failed_raw: u64,
    /// When a failed raw send was last logged above debug level.
    told_at: Option<Instant>,
}

/// What the UDP socket last said about sending to one destination.
struct Destination {
    to: SocketAddrV4,
    /// Raw sends may go to it until then: set by a UDP send that went out.
    raw_until: Option<Instant>,
    /// After a raw send to it failed: the UDP socket alone until then.
    udp_until: Option<Instant>,
}

/// A raw IPv4 socket and what its headers say.
struct Raw {
    socket: Socket,
    from: SocketAddrV4,
    ttl: u8,
}

impl Sender {
    /// The sender of the link whose (peers') socket is `udp`, with a raw socket if
    /// `raw` asks for one, the link is IPv4 and the kernel grants one.
    pub fn new(udp: Arc<HeartbeatSocket>, raw: bool) -> Sender {
        let mut sender = Sender {
            udp,
            raw: None,
            destinations: Vec::new(),
            reopen_at: None,
            sent_raw: 0,
            failed_raw: 0,
            told_at: None,
        };
        sender.set_raw(raw);
        sender
    }

    /// Opens the raw socket, or closes it: `[scheduling] raw_send`, on start and
    /// on reload.
    pub fn set_raw(&mut self, on: bool) {
        if !on {
            // What the UDP socket vouched for before is no longer known to hold.
            self.raw = None;
            self.destinations.clear();
            self.reopen_at = None;
            return;
        }
        if self.raw.is_none() {
            self.open(Instant::now());
        }
    }

    /// Sends `datagram` to `to` at `now` without waiting for room, and says how the
    /// send went, as the UDP socket said when it was asked.
    pub fn send(&mut self, datagram: &[u8], to: SocketAddr, now: Instant) -> io::Result<()> {
        if self.reopen_at.is_some_and(|at| now >= at) {
            self.open(now);
        }
        let (Some(raw), SocketAddr::V4(to4)) = (&self.raw, to) else {
            return self.udp.get_ref().send_to(datagram, to).map(drop);
        };
        let i = match self.destinations.iter().position(|d| d.to == to4) {
            Some(i) => i,
            None => {
                if self.destinations.len() >= MAX_DESTINATIONS {
                    self.destinations.clear();
                }
                self.destinations.push(Destination {
                    to: to4,
                    raw_until: None,
                    udp_until: None,
                });
                self.destinations.len() - 1
            }
        };
        let destination = &mut self.destinations[i];
        let vouched = destination.raw_until.is_some_and(|until| now < until);
        let resting = destination.udp_until.is_some_and(|until| now < until);
        if vouched && !resting {
            match raw.send(datagram, to4) {
                Ok(()) => {
                    self.sent_raw += 1;
                    return Ok(());
                }
                Err(err) => {
                    destination.udp_until = Some(now + CHECK_PERIOD);
                    self.failed_raw += 1;
                    if self
                        .told_at
                        .is_some_and(|at| now.saturating_duration_since(at) < TELL_EVERY)
                    {
                        debug!(from = %raw.from, %to, "raw send failed: {err}");
                    } else {
                        info!(
                            from = %raw.from,
                            %to,
                            "a heartbeat the raw socket could not send goes through the \
                             UDP socket, as will the next ones to {to} for {} ms: {err}",
                            CHECK_PERIOD.as_millis()
                        );
                        self.told_at = Some(now);
                    }
                }
            }
        }
        let sent = self.udp.get_ref().send_to(datagram, to).map(drop);
        destination.raw_until = sent.is_ok().then(|| now + CHECK_PERIOD);
        sent
    }

    /// How many heartbeats went out through the raw socket so far.
    pub fn sent_raw(&self) -> u64 {
        self.sent_raw
    }

    /// How many raw sends failed so far (each sent again through the UDP socket).
    pub fn failed_raw(&self) -> u64 {
        self.failed_raw
    }

    /// Whether the sender has a raw socket.
    pub fn has_raw(&self) -> bool {
        self.raw.is_some()
    }

    /// Opens the raw socket; where the link's address is not on the host yet and
    /// the kernel will not bind to it, tries again [`REOPEN_EVERY`].
    fn open(&mut self, now: Instant) {
        self.reopen_at = None;
        match Raw::open(self.udp.get_ref()) {
            Ok(raw) => {
                self.raw = raw;
            }
            Err(err) if err.kind() == io::ErrorKind::AddrNotAvailable => {
                self.reopen_at = Some(now + REOPEN_EVERY);
            }
            Err(err) => {
                let at = self.udp.get_ref().local_addr().ok();
                info!(
                    "heartbeats from {} go out through the UDP socket: no raw socket: {err}",
                    at.map_or_else(|| "this link".to_string(), |at| at.to_string())
                );
            }
        }
    }
}

impl Raw {
    /// A raw socket sending as `udp` does, or `None` for an IPv6 socket.
    fn open(udp: &std::net::UdpSocket) -> io::Result<Option<Raw>> {
        let SocketAddr::V4(from) = udp.local_addr()? else {
            return Ok(None);
        };
        // The TTL the UDP socket's datagrams get, read once: the host's default
        // (net.ipv4.ip_default_ttl) at start, as the daemon never sets one.
        let ttl = u8::try_from(udp.ttl()?).unwrap_or(u8::MAX);
        // IPPROTO_RAW: headers written here, and nothing is ever received on it.
        let socket = Socket::new(
            Domain::IPV4,
            Type::RAW,
            Some(Protocol::from(libc::IPPROTO_RAW)),
        )?;
        socket.set_nonblocking(true)?;
        // Bound to the link's address, so that the route is looked up from it as
        // for the UDP socket (a rule by source address applies to both); free, like
        // it, of the address being on the host yet where the kernel allows that
        // (5.19 and later; before, the bind fails until the address is there).
        socket.set_freebind_v4(true)?;
        socket.bind(&SocketAddrV4::new(*from.ip(), 0).into())?;
        Ok(Some(Raw { socket, from, ttl }))
    }

    fn send(&self, datagram: &[u8], to: SocketAddrV4) -> io::Result<()> {
        let mut packet = [0u8; udp4::HEADERS_LEN + MAX_LEN];
        let len = udp4::emit(self.from, to, self.ttl, datagram, &mut packet)
            .ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
        // A raw socket takes the port from the header, not from the address.
        let sent = self.socket.send_to(
            &packet[..len],
            &SockAddr::from(SocketAddrV4::new(*to.ip(), 0)),
        )?;
        if sent == len {
            Ok(())
        } else {
            Err(io::Error::from(io::ErrorKind::WriteZero))
        }
    }
}
