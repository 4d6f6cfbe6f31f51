//! How a link's heartbeats leave the host: over IPv4 through a raw socket, with
//! their IPv4 and UDP headers written by the daemon (`wire::udp4`), and through the
//! link's UDP socket otherwise.
//!
//! The receiver cannot tell the two apart: the same addresses, ports, flags and
//! bytes. What differs is the sender's cost. At a 10 ms interval an active node's
//! CPU goes mostly to sending two heartbeats after sleeping, and the kernel's raw
//! path, which has no socket lock, no corking and no UDP layer to run, costs about
//! an eighth less per heartbeat than the UDP path when its code has gone cold
//! (`docs/performance.md`). The route lookup, the firewall's output hooks and the
//! neighbour tables are the same for both.
//!
//! What the UDP path does that the raw one does not: it refuses to send from an
//! address that is not on the host (raw sockets may write any source). So the UDP
//! socket stays the judge. Every [`CHECK_EVERY`]th heartbeat of a link goes through
//! it, and so does every heartbeat while the last one sent that way failed; a raw
//! send that fails is sent again through it. What the loop reports about a send is
//! always what the UDP socket said when it was used: a link whose address was
//! removed stops sending from it within [`CHECK_EVERY`] heartbeats and reports the
//! kernel's refusal as before. Over IPv6, or without CAP_NET_RAW, every heartbeat
//! goes through the UDP socket.

use std::io;
use std::net::{SocketAddr, SocketAddrV4};
use std::sync::Arc;

use socket2::{Domain, Protocol, SockAddr, Socket, Type};
use tracing::{debug, info};

use super::listen::HeartbeatSocket;
use crate::wire::heartbeat::MAX_LEN;
use crate::wire::udp4;

/// One heartbeat in this many goes through the link's UDP socket.
pub const CHECK_EVERY: u32 = 16;

/// A link's way out for heartbeats.
pub struct Sender {
    udp: Arc<HeartbeatSocket>,
    raw: Option<Raw>,
    /// Raw sends left before the next one through the UDP socket.
    until_check: u32,
    /// Whether the last heartbeat sent through the UDP socket went out: the raw
    /// socket is used only while it did.
    udp_sent: bool,
}

/// A raw IPv4 socket and what its headers say.
struct Raw {
    socket: Socket,
    from: SocketAddrV4,
    ttl: u8,
}

impl Sender {
    /// The sender of the link whose (peers') socket is `udp`, with a raw socket if
    /// the link is IPv4 and the kernel grants one.
    pub fn new(udp: Arc<HeartbeatSocket>) -> Sender {
        let raw = match Raw::open(udp.get_ref()) {
            Ok(raw) => raw,
            Err(err) => {
                debug!("heartbeats go out through the UDP socket: {err}");
                None
            }
        };
        Sender {
            udp,
            raw,
            until_check: 0,
            udp_sent: true,
        }
    }

    /// Sends `datagram` to `to` without waiting for room, and says how the send
    /// went, as the UDP socket said when it was asked.
    pub fn send(&mut self, datagram: &[u8], to: SocketAddr) -> io::Result<()> {
        if let (Some(raw), SocketAddr::V4(to4)) = (&self.raw, to)
            && self.udp_sent
            && self.until_check > 0
        {
            self.until_check -= 1;
            let Err(err) = raw.send(datagram, to4) else {
                return Ok(());
            };
            let from = raw.from;
            let sent = self.send_udp(datagram, to);
            if sent.is_ok() {
                info!(
                    %from,
                    "heartbeats from {from} go out through the UDP socket from now on: the \
                     raw socket failed where it did not: {err}"
                );
                self.raw = None;
            }
            return sent;
        }
        self.send_udp(datagram, to)
    }

    /// Whether the next heartbeats to IPv4 peers go out through the raw socket.
    pub fn through_raw(&self) -> bool {
        self.raw.is_some() && self.udp_sent
    }

    fn send_udp(&mut self, datagram: &[u8], to: SocketAddr) -> io::Result<()> {
        let sent = self.udp.get_ref().send_to(datagram, to).map(drop);
        self.udp_sent = sent.is_ok();
        self.until_check = CHECK_EVERY - 1;
        sent
    }
}

impl Raw {
    /// A raw socket sending as `udp` does, or `None` for an IPv6 socket.
    fn open(udp: &std::net::UdpSocket) -> io::Result<Option<Raw>> {
        let SocketAddr::V4(from) = udp.local_addr()? else {
            return Ok(None);
        };
        // The TTL the UDP socket's datagrams get: the host's default unless set.
        let ttl = u8::try_from(udp.ttl()?).unwrap_or(u8::MAX);
        // IPPROTO_RAW: headers written here, and nothing is ever received on it.
        let socket = Socket::new(
            Domain::IPV4,
            Type::RAW,
            Some(Protocol::from(libc::IPPROTO_RAW)),
        )?;
        socket.set_nonblocking(true)?;
        // Bound to the link's address so that the kernel picks the route as it
        // does for the UDP socket (a source-based rule); free, like it, of the
        // address being on the host yet.
        socket.set_freebind_v4(true)?;
        socket.bind(&SocketAddrV4::new(*from.ip(), 0).into())?;
        Ok(Some(Raw { socket, from, ttl }))
    }

    fn send(&self, datagram: &[u8], to: SocketAddrV4) -> io::Result<()> {
        let mut packet = [0u8; udp4::HEADERS_LEN + MAX_LEN];
        let len = udp4::emit(self.from, to, self.ttl, datagram, &mut packet)
            .ok_or_else(|| io::Error::from(io::ErrorKind::InvalidInput))?;
        // The port in the address is not used by a raw socket; the header's is.
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
