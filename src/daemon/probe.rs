//! Asks the LAN who answers for a VIP, and watches for others claiming one.
//!
//! Before an unplanned takeover the machine wants to know whether the old
//! holder's kernel still has the VIPs (its daemon died, the node did not). The
//! probe sends RFC 5227 ARP probes (sender address 0.0.0.0) and, for IPv6,
//! duplicate-address-detection neighbour solicitations (source ::), and reports
//! any answer from a MAC address that is not this host's. While active, the watch
//! reads ARP and neighbour advertisements on the VIPs' interfaces, filtered in
//! the kernel, and reports anyone else claiming a VIP.
//!
//! Owns the packet sockets, the probe schedule and what counts as a claim. What
//! a claim means for the election is the machine's decision. Every VIP is asked
//! about and watched on its own interface only: a host on another segment that
//! uses the same address does not take the VIP's traffic.

use std::io::{self, Read};
use std::mem::ManuallyDrop;
use std::net::IpAddr;
use std::time::Duration;

use futures_util::StreamExt;
use futures_util::future::try_join_all;
use futures_util::stream::FuturesUnordered;
use socket2::{Domain, SockFilter, Socket, Type};
use tokio::io::unix::AsyncFd;
use tokio::sync::mpsc::{self, error::TrySendError};
use tokio::time::{Instant, timeout_at};

use super::announce::link_address;
use super::vip::{LinkInfo, Netlink, VipError};
use crate::machine::{Sighting, VipTarget};
use crate::wire::arp::{arp_probe, dad_solicitation, parse_arp, parse_na};

const ETHERTYPE_ARP: u16 = 0x0806;
const ETHERTYPE_IPV6: u16 = 0x86dd;
/// RFC 5227 sends three probes 1 to 2 s apart. The machine's window ends
/// before its peer would be declared dead, well under a second, so the three
/// are spread evenly over the window instead: at 0, 1/3 and 2/3 of it.
const PROBES: u32 = 3;
/// Room for a whole frame on an Ethernet MTU. Anything longer is cut short and
/// then fails to parse; no ARP packet or advertisement we look for is that long.
const RECV_BUFFER: usize = 2048;
/// Queued frames read without waiting once a probe has its first answer.
const DRAIN_LIMIT: usize = 64;
/// The watch reports each VIP at most this often, so a host that keeps
/// announcing a VIP does not flood the machine with the same news.
const REPORT_INTERVAL: Duration = Duration::from_secs(1);

/// Classic BPF, as in linux/filter.h.
const LD_HALF: u16 = (libc::BPF_LD | libc::BPF_H | libc::BPF_ABS) as u16;
const LD_BYTE: u16 = (libc::BPF_LD | libc::BPF_B | libc::BPF_ABS) as u16;
const JUMP_IF_EQUAL: u16 = (libc::BPF_JMP | libc::BPF_JEQ | libc::BPF_K) as u16;
const RETURN: u16 = (libc::BPF_RET | libc::BPF_K) as u16;
/// A filter's verdict: keep the whole frame, or drop it.
const KEEP: u32 = u32::MAX;
const DROP: u32 = 0;

/// ICMPv6 neighbour advertisements only (IPv6 next header 58 at byte 20,
/// ICMPv6 type 136 at byte 54), so that ordinary IPv6 traffic never reaches
/// user space. Jump offsets count the instructions skipped, to the drop at the
/// end.
const NA_FILTER: [SockFilter; 8] = [
    SockFilter::new(LD_HALF, 0, 0, 12),
    SockFilter::new(JUMP_IF_EQUAL, 0, 5, ETHERTYPE_IPV6 as u32),
    SockFilter::new(LD_BYTE, 0, 0, 20),
    SockFilter::new(JUMP_IF_EQUAL, 0, 3, 58),
    SockFilter::new(LD_BYTE, 0, 0, 54),
    SockFilter::new(JUMP_IF_EQUAL, 0, 1, 136),
    SockFilter::new(RETURN, 0, 0, KEEP),
    SockFilter::new(RETURN, 0, 0, DROP),
];

#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    /// A VIP's interface does not exist, could not be looked up, or has no
    /// Ethernet address.
    #[error(transparent)]
    Link(#[from] VipError),
    /// A packet socket could not be opened or set up; it needs CAP_NET_RAW.
    #[error("opening a packet socket on {interface}: {source}")]
    Socket {
        interface: String,
        source: io::Error,
    },
    /// A probe for this address could not be sent, e.g. the link is down.
    #[error("probing for {address} on {interface}: {source}")]
    Send {
        interface: String,
        address: IpAddr,
        source: io::Error,
    },
    /// Reading from the packet socket failed.
    #[error("reading packets on {interface}: {source}")]
    Receive {
        interface: String,
        source: io::Error,
    },
}

/// Probes every VIP on its interface for `window`; see the module docs.
///
/// Resolves with the claims seen as soon as there is one (and whatever else is
/// already queued), or with nothing once `window` has passed. The sockets are
/// open before the first probe leaves, so no answer can slip past. An error
/// on one interface does not stop the others: an answer there still counts,
/// and the error is returned only if nothing answered.
pub async fn probe(
    netlink: &Netlink,
    vips: &[VipTarget],
    window: Duration,
) -> Result<Vec<Sighting>, ProbeError> {
    let listeners = Listeners::open(netlink, vips).await?;
    let started = Instant::now();
    let deadline = started + window;
    let mut pending: FuturesUnordered<_> = listeners
        .all
        .iter()
        .map(|listener| listener.probe(&listeners.ours, started, window))
        .collect();
    let mut found = Vec::new();
    let mut failed = None;
    // Each listener stops reading at the deadline by itself; the timeout here
    // also bounds a send that waits for room in a full transmit queue.
    while let Ok(Some(result)) = timeout_at(deadline, pending.next()).await {
        match result {
            Ok(answers) if !answers.is_empty() => {
                found = answers;
                break;
            }
            Ok(_) => {}
            Err(err) => {
                failed.get_or_insert(err);
            }
        }
    }
    drop(pending);
    if found.is_empty() {
        return failed.map_or(Ok(found), Err);
    }
    let mut buf = [0u8; RECV_BUFFER];
    for listener in &listeners.all {
        listener.drain(&listeners.ours, &mut buf, &mut found);
    }
    Ok(found)
}

/// Watches the VIPs' interfaces until dropped; see the module docs.
///
/// Sends a sighting for every ARP packet (request or reply, gratuitous ones
/// included) whose sender address is a VIP, and every neighbour advertisement
/// whose target is one, from a MAC that is not this host's: at most one a
/// second per VIP, and never waiting for room on `tx`, so a busy receiver
/// loses news instead of stalling the reader. Returns when `tx` closes, at
/// once when there are no VIPs, or with the first error.
pub async fn watch(
    netlink: &Netlink,
    vips: Vec<VipTarget>,
    tx: mpsc::Sender<Sighting>,
) -> Result<(), ProbeError> {
    let listeners = Listeners::open(netlink, &vips).await?;
    let readers = listeners
        .all
        .iter()
        .map(|listener| listener.watch(&listeners.ours, &tx));
    tokio::select! {
        () = tx.closed() => Ok(()),
        result = try_join_all(readers) => result.map(drop),
    }
}

/// The open packet sockets for a set of VIPs, and this host's MACs on their
/// interfaces.
struct Listeners {
    all: Vec<Listener>,
    /// Claims from these are this host's own, come back over the LAN.
    ours: Vec<[u8; 6]>,
}

/// One packet socket: the VIPs of one address family on one interface.
struct Listener {
    interface: String,
    mac: [u8; 6],
    /// What this socket asks about and reports: all IPv4 or all IPv6.
    addresses: Vec<IpAddr>,
    /// Taken out only when the listener is dropped.
    socket: ManuallyDrop<AsyncFd<Socket>>,
}

impl Drop for Listener {
    /// Closes the socket off this thread: see `worker::close_elsewhere`.
    fn drop(&mut self) {
        // SAFETY: the field is taken once, here, and never used after.
        let socket = unsafe { ManuallyDrop::take(&mut self.socket) };
        super::worker::close_elsewhere(socket.into_inner());
    }
}

impl Listeners {
    /// Looks up every VIP's interface and opens one socket per interface and
    /// address family.
    async fn open(netlink: &Netlink, vips: &[VipTarget]) -> Result<Listeners, ProbeError> {
        let mut links: Vec<(&str, LinkInfo)> = Vec::new();
        let mut groups: Vec<(&str, LinkInfo, Vec<IpAddr>)> = Vec::new();
        for vip in vips {
            let interface = vip.interface.as_str();
            let link = match links.iter().find(|(name, _)| *name == interface) {
                Some(&(_, link)) => link,
                None => {
                    let link = netlink.link_info(interface).await?;
                    links.push((interface, link));
                    link
                }
            };
            let same = |(name, _, addresses): &&mut (&str, LinkInfo, Vec<IpAddr>)| {
                *name == interface && addresses[0].is_ipv4() == vip.address.is_ipv4()
            };
            match groups.iter_mut().find(same) {
                Some((_, _, addresses)) => addresses.push(vip.address),
                None => groups.push((interface, link, vec![vip.address])),
            }
        }
        let all = groups
            .into_iter()
            .map(|(interface, link, addresses)| {
                // ARP is all that an ARP socket gets, and it is rare enough
                // to read every packet.
                let (ethertype, filter) = match addresses[0] {
                    IpAddr::V4(_) => (ETHERTYPE_ARP, None),
                    IpAddr::V6(_) => (ETHERTYPE_IPV6, Some(&NA_FILTER[..])),
                };
                let socket = open_socket(link.index, ethertype, filter).map_err(|source| {
                    ProbeError::Socket {
                        interface: interface.to_owned(),
                        source,
                    }
                })?;
                Ok(Listener {
                    interface: interface.to_owned(),
                    mac: link.mac,
                    addresses,
                    socket: ManuallyDrop::new(socket),
                })
            })
            .collect::<Result<_, ProbeError>>()?;
        Ok(Listeners {
            all,
            ours: links.iter().map(|(_, link)| link.mac).collect(),
        })
    }
}

impl Listener {
    /// Sends the probes on the schedule and reads until the first claim, or
    /// until the window ends.
    async fn probe(
        &self,
        ours: &[[u8; 6]],
        started: Instant,
        window: Duration,
    ) -> Result<Vec<Sighting>, ProbeError> {
        let mut buf = [0u8; RECV_BUFFER];
        for round in 0..PROBES {
            let send_at = started + window * round / PROBES;
            let found = self.read_until(send_at, ours, &mut buf).await?;
            if !found.is_empty() {
                return Ok(found);
            }
            self.send_probes().await?;
        }
        self.read_until(started + window, ours, &mut buf).await
    }

    /// Reports claims on `tx`, at most one a second per address, until `tx`
    /// closes or a read fails.
    async fn watch(&self, ours: &[[u8; 6]], tx: &mpsc::Sender<Sighting>) -> Result<(), ProbeError> {
        let mut buf = [0u8; RECV_BUFFER];
        let mut reported: Vec<(IpAddr, Instant)> = Vec::new();
        loop {
            let sighting = self.next_claim(ours, &mut buf).await?;
            let now = Instant::now();
            let last = reported
                .iter_mut()
                .find(|(address, _)| *address == sighting.address);
            if let Some((_, at)) = &last
                && now.duration_since(*at) < REPORT_INTERVAL
            {
                continue;
            }
            match tx.try_send(sighting) {
                Ok(()) => match last {
                    Some((_, at)) => *at = now,
                    None => reported.push((sighting.address, now)),
                },
                // Not counted as reported: the next claim tries again.
                Err(TrySendError::Full(_)) => {}
                Err(TrySendError::Closed(_)) => return Ok(()),
            }
        }
    }

    async fn send_probes(&self) -> Result<(), ProbeError> {
        for &address in &self.addresses {
            let frame = match address {
                IpAddr::V4(ip) => arp_probe(self.mac, ip).to_vec(),
                IpAddr::V6(ip) => dad_solicitation(self.mac, ip),
            };
            send(&self.socket, &frame)
                .await
                .map_err(|source| ProbeError::Send {
                    interface: self.interface.clone(),
                    address,
                    source,
                })?;
        }
        Ok(())
    }

    /// The first claim read before `until`, with any others already queued;
    /// nothing if none came by then.
    async fn read_until(
        &self,
        until: Instant,
        ours: &[[u8; 6]],
        buf: &mut [u8],
    ) -> Result<Vec<Sighting>, ProbeError> {
        let Ok(first) = timeout_at(until, self.next_claim(ours, buf)).await else {
            return Ok(Vec::new());
        };
        let mut found = vec![first?];
        self.drain(ours, buf, &mut found);
        Ok(found)
    }

    /// Waits for the next frame that claims one of this socket's addresses.
    async fn next_claim(&self, ours: &[[u8; 6]], buf: &mut [u8]) -> Result<Sighting, ProbeError> {
        let failed = |source| ProbeError::Receive {
            interface: self.interface.clone(),
            source,
        };
        loop {
            let mut ready = self.socket.readable().await.map_err(failed)?;
            let Ok(read) = ready.try_io(|inner| inner.get_ref().read(buf)) else {
                continue;
            };
            match read {
                Ok(len) => {
                    if let Some(sighting) = claim(&buf[..len], &self.addresses, ours) {
                        return Ok(sighting);
                    }
                }
                // Reported once when the link goes down; the socket stays
                // bound and reads again when the link is back.
                Err(err) if err.raw_os_error() == Some(libc::ENETDOWN) => {}
                Err(err) => return Err(failed(err)),
            }
        }
    }

    /// Adds the new claims among the frames already queued, without waiting
    /// and at most `DRAIN_LIMIT` frames. A read error ends it: the claims
    /// found so far stand.
    fn drain(&self, ours: &[[u8; 6]], buf: &mut [u8], found: &mut Vec<Sighting>) {
        for _ in 0..DRAIN_LIMIT {
            let Ok(len) = self.socket.get_ref().read(buf) else {
                return;
            };
            if let Some(sighting) = claim(&buf[..len], &self.addresses, ours)
                && !found.contains(&sighting)
            {
                found.push(sighting);
            }
        }
    }
}

/// The claim that `frame` makes on one of `addresses`, unless it comes from
/// one of `ours`.
///
/// An ARP request or reply claims its sender address, except 0.0.0.0, which
/// is another host probing (the peer, perhaps, at the same moment). A
/// neighbour advertisement claims its target, at the MAC of its target
/// link-layer option or else of the frame's source.
fn claim(frame: &[u8], addresses: &[IpAddr], ours: &[[u8; 6]]) -> Option<Sighting> {
    let (address, mac) = if let Some(arp) = parse_arp(frame) {
        (IpAddr::V4(arp.sender_ip), arp.sender_mac)
    } else {
        let na = parse_na(frame)?;
        (IpAddr::V6(na.target), na.target_mac.unwrap_or(na.eth_src))
    };
    let claimed = !address.is_unspecified() && addresses.contains(&address);
    (claimed && !ours.contains(&mac)).then_some(Sighting { address, mac })
}

/// A non-blocking packet socket bound to interface `index` that receives
/// frames of `ethertype` which pass `filter`.
///
/// Bound to one protocol, it sees the frames the interface receives but none
/// that this host sends (only ETH_P_ALL sockets do), so this host's own probes
/// and announcements never reach it.
fn open_socket(
    index: u32,
    ethertype: u16,
    filter: Option<&[SockFilter]>,
) -> io::Result<AsyncFd<Socket>> {
    let index = i32::try_from(index)
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "interface index out of range"))?;
    // Protocol 0: the kernel queues nothing to the socket until bind names
    // the protocol and the interface, and by then the filter is on. So no
    // unfiltered frame, and none from another interface, is ever read.
    let socket = Socket::new(Domain::PACKET, Type::RAW, None)?;
    if let Some(filter) = filter {
        socket.attach_filter(filter)?;
    }
    socket.bind(&link_address(index, ethertype))?;
    socket.set_nonblocking(true)?;
    // SAFETY: the Socket owns its descriptor and always returns that same
    // one; it is never taken out or replaced while registered, as nothing
    // here calls `get_mut` or `into_inner`.
    Ok(unsafe { AsyncFd::register(socket) }?)
}

/// Sends `frame` out of the socket's interface, waiting if the transmit queue
/// is full.
async fn send(socket: &AsyncFd<Socket>, frame: &[u8]) -> io::Result<()> {
    loop {
        let mut ready = socket.writable().await?;
        if let Ok(sent) = ready.try_io(|inner| inner.get_ref().send(frame)) {
            // Packet sockets send whole frames or fail.
            return sent.map(drop);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::net::{Ipv4Addr, Ipv6Addr};

    use super::*;
    use crate::wire::arp::{ArpOp, gratuitous_arp, unsolicited_na};
    use crate::wire::icmp::checksum;

    const OURS: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
    const OTHER: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];
    const V4: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 10);
    const V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 0x10);

    fn claims(frame: &[u8]) -> Option<Sighting> {
        claim(frame, &[V4.into(), V6.into()], &[OURS])
    }

    fn seen(address: impl Into<IpAddr>, mac: [u8; 6]) -> Option<Sighting> {
        Some(Sighting {
            address: address.into(),
            mac,
        })
    }

    /// What Linux sends to answer an ARP probe: a reply to the prober, target
    /// address 0.0.0.0.
    fn probe_reply(from: [u8; 6], ip: Ipv4Addr, to: [u8; 6]) -> Vec<u8> {
        let mut frame = gratuitous_arp(from, ip, ArpOp::Reply);
        frame[0..6].copy_from_slice(&to);
        frame[32..38].copy_from_slice(&to);
        frame[38..42].fill(0);
        frame.to_vec()
    }

    #[test]
    fn arp_from_another_mac_claims_its_sender_address() {
        assert_eq!(claims(&probe_reply(OTHER, V4, OURS)), seen(V4, OTHER));
        for op in [ArpOp::Request, ArpOp::Reply] {
            assert_eq!(claims(&gratuitous_arp(OTHER, V4, op)), seen(V4, OTHER));
        }
    }

    #[test]
    fn advertisement_claims_its_target_at_the_option_or_source_mac() {
        assert_eq!(claims(&unsolicited_na(OTHER, V6)), seen(V6, OTHER));
        // Without the option, the Ethernet source stands for the answerer.
        let mut bare = unsolicited_na(OTHER, V6);
        bare.truncate(bare.len() - 8);
        bare[18..20].copy_from_slice(&24u16.to_be_bytes());
        bare[56..58].fill(0);
        let mut pseudo = bare[22..54].to_vec();
        pseudo.extend_from_slice(&[0, 0, 0, 24, 0, 0, 0, 58]);
        let sum = checksum(&[&pseudo, &bare[54..]]);
        bare[56..58].copy_from_slice(&sum.to_be_bytes());
        assert_eq!(parse_na(&bare).map(|na| na.target_mac), Some(None));
        assert_eq!(claims(&bare), seen(V6, OTHER));
    }

    #[test]
    fn own_macs_other_addresses_and_probes_claim_nothing() {
        assert_eq!(claims(&gratuitous_arp(OURS, V4, ArpOp::Request)), None);
        assert_eq!(claims(&unsolicited_na(OURS, V6)), None);
        let elsewhere = Ipv4Addr::new(198, 18, 0, 11);
        assert_eq!(claims(&probe_reply(OTHER, elsewhere, OURS)), None);
        // Another host probing for the VIP (sender 0.0.0.0) claims nothing.
        assert_eq!(claims(&arp_probe(OTHER, V4)), None);
        assert_eq!(claims(&dad_solicitation(OTHER, V6)), None);
        assert_eq!(claims(&[]), None);
    }

    #[test]
    fn a_claim_counts_only_for_the_sockets_addresses() {
        let frame = gratuitous_arp(OTHER, V4, ArpOp::Request);
        assert_eq!(claim(&frame, &[V6.into()], &[OURS]), None);
        assert_eq!(claim(&frame, &[V4.into()], &[]), seen(V4, OTHER));
    }
}
