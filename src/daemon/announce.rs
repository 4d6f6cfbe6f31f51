//! Puts VIP announcements on the wire.
//!
//! Owns the AF_PACKET socket that sends `wire::arp` frames out of any
//! interface. How often to repeat an announcement, and with what spacing, is
//! the caller's choice; one call sends one round.

use std::io;
use std::mem::size_of;
use std::net::IpAddr;
use std::sync::{Mutex, PoisonError};

use socket2::{Domain, SockAddr, SockAddrStorage, Socket, Type, socklen_t};

use crate::wire::arp::{ArpOp, gratuitous_arp, unsolicited_na};

const ETHERTYPE_ARP: u16 = 0x0806;
const ETHERTYPE_IPV6: u16 = 0x86dd;

#[derive(Debug, thiserror::Error)]
pub enum AnnounceError {
    /// No interface can have this index (it does not fit the kernel's type).
    #[error("interface index {ifindex} is out of range")]
    InvalidIndex { ifindex: u32 },
    /// The packet socket could not be opened; it needs CAP_NET_RAW.
    #[error("opening packet socket for interface index {ifindex}: {source}")]
    Socket { ifindex: u32, source: io::Error },
    /// A frame announcing this address could not be sent.
    #[error("announcing {address} on interface index {ifindex}: {source}")]
    Send {
        ifindex: u32,
        address: IpAddr,
        source: io::Error,
    },
}

/// Sends one round of announcements from `mac` out of interface `ifindex`:
/// for every IPv4 address a gratuitous ARP request and reply, for every IPv6
/// address an unsolicited Neighbor Advertisement.
///
/// Synchronous but never blocks: the socket is non-blocking, so a full
/// transmit queue is reported as an error rather than waited out, and the
/// call is safe to make from async code. A failure for one address does not
/// stop the others; the first error is returned.
pub fn announce(ifindex: u32, mac: [u8; 6], addresses: &[IpAddr]) -> Result<(), AnnounceError> {
    Announcer::default().announce(ifindex, mac, addresses)
}

/// Sends announcements through one packet socket, opened on first use and kept.
/// Closing a packet socket waits for an RCU grace period (synchronize_net), and on
/// a host starved by realtime work that takes up to a second: too long for the
/// heartbeat thread, which sends the announcements of a takeover.
#[derive(Debug, Default)]
pub struct Announcer {
    socket: Mutex<Option<Socket>>,
}

impl Announcer {
    /// Like [`announce`], through the kept socket.
    pub fn announce(
        &self,
        ifindex: u32,
        mac: [u8; 6],
        addresses: &[IpAddr],
    ) -> Result<(), AnnounceError> {
        if addresses.is_empty() {
            return Ok(());
        }
        let index = i32::try_from(ifindex).map_err(|_| AnnounceError::InvalidIndex { ifindex })?;
        let mut kept = self.socket.lock().unwrap_or_else(PoisonError::into_inner);
        let socket = match kept.take() {
            Some(socket) => socket,
            // Protocol 0: the socket only sends, so the kernel queues nothing to it.
            None => Socket::new(Domain::PACKET, Type::RAW, None)
                .and_then(|socket| socket.set_nonblocking(true).map(|()| socket))
                .map_err(|source| AnnounceError::Socket { ifindex, source })?,
        };
        let sent = send_all(&socket, ifindex, index, mac, addresses);
        *kept = Some(socket);
        sent
    }
}

fn send_all(
    socket: &Socket,
    ifindex: u32,
    index: i32,
    mac: [u8; 6],
    addresses: &[IpAddr],
) -> Result<(), AnnounceError> {
    let mut first_error = None;
    for &address in addresses {
        let sent = match address {
            IpAddr::V4(ip) => [ArpOp::Request, ArpOp::Reply]
                .into_iter()
                .try_for_each(|op| {
                    send(socket, index, ETHERTYPE_ARP, &gratuitous_arp(mac, ip, op))
                }),
            IpAddr::V6(ip) => send(socket, index, ETHERTYPE_IPV6, &unsolicited_na(mac, ip)),
        };
        if let Err(source) = sent {
            first_error.get_or_insert(AnnounceError::Send {
                ifindex,
                address,
                source,
            });
        }
    }
    first_error.map_or(Ok(()), Err)
}

fn send(socket: &Socket, index: i32, ethertype: u16, frame: &[u8]) -> io::Result<()> {
    let sent = socket.send_to(frame, &link_address(index, ethertype))?;
    if sent != frame.len() {
        return Err(io::Error::new(
            io::ErrorKind::WriteZero,
            format!("sent {sent} of {} bytes", frame.len()),
        ));
    }
    Ok(())
}

/// A `sockaddr_ll` naming the interface and protocol, which socket2 has no
/// constructor for. No hardware address: on a SOCK_RAW socket the frame
/// carries its own Ethernet header, and the kernel ignores it.
pub(super) fn link_address(index: i32, ethertype: u16) -> SockAddr {
    let mut storage = SockAddrStorage::zeroed();
    // SAFETY: sockaddr_ll is one of the platform's sockaddr types, and
    // view_as checks that it fits in the storage.
    let address = unsafe { storage.view_as::<libc::sockaddr_ll>() };
    address.sll_family = libc::AF_PACKET as libc::sa_family_t;
    address.sll_protocol = ethertype.to_be();
    address.sll_ifindex = index;
    let len = size_of::<libc::sockaddr_ll>() as socklen_t;
    // SAFETY: the family is AF_PACKET and the storage holds a sockaddr_ll of
    // exactly `len` bytes, as written above.
    unsafe { SockAddr::new(storage, len) }
}
