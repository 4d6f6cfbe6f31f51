//! The heartbeat sockets, bound to this node's addresses even before those exist.
//!
//! At boot a NIC can come up after failoverd starts (a slow driver, a bond that is
//! still negotiating). A plain bind to its address would fail, the daemon would exit,
//! and systemd's restarts would run out before the address appeared. So each socket is
//! bound with IP_FREEBIND: it listens on the address from the start and receives as
//! soon as the kernel has it. An address not on the host yet is logged, watched until
//! it appears (a bounded number of checks), and logged again when it does. Each link
//! has two sockets on its address, the kernel sorting peers' datagrams from
//! strangers' between them (see `steer`). Only binding lives here; receiving is the
//! loop's (`receive`).

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

// `sockopt_impl!` calls the other two by their bare names.
use nix::{getsockopt_impl, setsockopt_impl, sockopt_impl};
use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;
use tracing::{info, warn};

use super::steer;
use crate::config::Config;

/// How often an address that is not on the host yet is looked for.
const RECHECK: Duration = Duration::from_secs(1);
/// How many times it is looked for before the watch gives up (one hour): it is
/// reported again only if it appears, by the heartbeats that start to arrive.
const RECHECKS: u32 = 3600;

/// A link's socket, watched by the runtime for datagrams to read and nothing else.
/// Heartbeats are sent without waiting for room (see the loop's `perform`), so
/// watching for writability would only wake the loop once more after every send,
/// when the kernel frees the datagram: on a real NIC at the transmit interrupt.
pub type HeartbeatSocket = AsyncFd<std::net::UdpSocket>;

/// Registers a bound, non-blocking socket as a link's socket.
pub fn watch_for_reading(socket: std::net::UdpSocket) -> io::Result<HeartbeatSocket> {
    // SAFETY: the UdpSocket owns its descriptor and always returns that same one;
    // nothing takes it out or replaces it while registered (no `get_mut` or
    // `into_inner` on a link's socket).
    Ok(unsafe { AsyncFd::register_with_interest(socket, Interest::READABLE) }?)
}

/// A link's sockets, both bound to this node's address on the link.
#[derive(Clone)]
pub struct LinkSockets {
    /// Datagrams from the peers' addresses on the link (all of them when `strangers`
    /// is None); heartbeats go out from it or beside it (see `send`).
    pub peers: Arc<HeartbeatSocket>,
    /// Datagrams from any other address, sorted apart by the kernel (see `steer`).
    pub strangers: Option<Arc<HeartbeatSocket>>,
    /// A quiet standby's routine heartbeats, when the kernel sorts them apart (see
    /// `steer::Routine`): not watched by the runtime, so that they wake nobody, and
    /// stamped by the kernel on arrival, so that the loop can date them when it
    /// reads them later.
    pub routine: Option<Arc<std::net::UdpSocket>>,
}

/// The sockets of a link on which this node is at `address` and its peers at
/// `peers`, whether or not `address` is on this host yet. Fails only for what
/// waiting cannot fix: the port is taken, or the daemon may not bind to it. When
/// the kernel cannot sort the link's datagrams (before Linux 4.5), one socket takes
/// them all, as `error` says.
pub fn link_sockets(
    address: SocketAddr,
    peers: &[IpAddr],
) -> io::Result<(LinkSockets, Option<io::Error>)> {
    // A plain bind first: it fails while any other socket holds the port, SO_REUSEPORT
    // or not, so a second daemon on this host is refused as before rather than let
    // into the group to take heartbeats. It also gives the port when asked for 0.
    // (Only a second failoverd that binds its own probe in the instant between this
    // one's and the pair's could join; the control socket, bound before the links,
    // refuses one with the same file first.)
    let probe = unbound(address)?;
    probe.bind(&address.into())?;
    let address = probe.local_addr()?.as_socket().unwrap_or(address);
    drop(probe);
    let program = steer::program(peers, None);
    let first = reusable(address)?;
    // The one step an older kernel refuses: then one socket takes every datagram.
    // A failed bind is the port taken, and an error.
    if let Err(err) = steer::attach(&first, &program) {
        drop(first);
        let socket = unbound(address)?;
        socket.bind(&address.into())?;
        return Ok((
            LinkSockets::single(watch_for_reading(socket.into())?),
            Some(err),
        ));
    }
    let second = reusable(address)?;
    // Optional: without it, or without arrival stamps (a routine heartbeat would
    // count as heard when it is read, up to `warn` late), every heartbeat is read
    // at once, as before it existed.
    let routine = reusable(address)
        .and_then(|third| stamped(&third).map(|()| Arc::new(third.into())))
        .ok();
    let sockets = LinkSockets {
        peers: Arc::new(watch_for_reading(first.into())?),
        strangers: Some(Arc::new(watch_for_reading(second.into())?)),
        routine,
    };
    Ok((sockets, None))
}

impl LinkSockets {
    /// One socket that takes every datagram.
    pub fn single(socket: HeartbeatSocket) -> LinkSockets {
        LinkSockets {
            peers: Arc::new(socket),
            strangers: None,
            routine: None,
        }
    }
}

/// Has the kernel stamp each datagram `socket` receives with its arrival time, and
/// say how many it dropped. The kernel starts stamping on arrival for the whole
/// host a moment after the first socket asks (a work queue turns it on); until
/// then it stamps a datagram when it is read, which can only make a peer look
/// heard later than it was, for the first heartbeats after the start.
fn stamped(socket: &Socket) -> io::Result<()> {
    use nix::sys::socket::{setsockopt, sockopt};
    setsockopt(socket, sockopt::ReceiveTimestampns, &true)?;
    setsockopt(socket, sockopt::RxqOvfl, &1)?;
    Ok(())
}

/// The addresses of this node's peers (`me` is its index) on `link`.
pub fn peers_on(config: &Config, me: usize, link: usize) -> Vec<IpAddr> {
    (config.nodes.iter().enumerate())
        .filter(|(node, _)| *node != me)
        .filter_map(|(_, node)| node.addresses.get(link).copied().flatten())
        .collect()
}

/// Sorts the datagrams of the link whose peers' socket is `socket` by `peers`, from
/// now on: after a reload that moved a peer.
pub fn resteer(socket: &HeartbeatSocket, peers: &[IpAddr]) -> io::Result<()> {
    steer::attach(socket.get_ref(), &steer::program(peers, None))
}

/// A socket of a link's SO_REUSEPORT pair, bound to `address`.
fn reusable(address: SocketAddr) -> io::Result<Socket> {
    let socket = unbound(address)?;
    socket.set_reuse_port(true)?;
    socket.bind(&address.into())?;
    Ok(socket)
}

/// A non-blocking UDP socket for `address`, with IP_FREEBIND (and, over IPv4,
/// Don't Fragment: see `unfragmented`), not bound yet.
fn unbound(address: SocketAddr) -> io::Result<Socket> {
    let socket = Socket::new(
        Domain::for_address(address),
        Type::DGRAM,
        Some(Protocol::UDP),
    )?;
    match address.ip() {
        IpAddr::V4(_) => {
            socket.set_freebind_v4(true)?;
            // A saving, not a need: the heartbeats go out either way.
            if let Err(err) = unfragmented(&socket) {
                tracing::debug!(%address, "heartbeats may go out fragmented: {err}");
            }
        }
        IpAddr::V6(_) => socket.set_freebind_v6(true)?,
    }
    socket.set_nonblocking(true)?;
    Ok(socket)
}

/// Has the kernel send the socket's datagrams with Don't Fragment set, ignoring
/// the MTU it learned for the path (IP_PMTUDISC_PROBE). A heartbeat, at most 254
/// bytes with its headers, fits any link whose MTU is that or more: every one in
/// practice, though IPv4 allows 68. A datagram that the kernel may split needs an
/// IP ID that cannot be guessed, and it hashes one for every such datagram an
/// unconnected socket sends, about 2 % of the active node's CPU at a 10 ms
/// interval in a profile; one it never splits goes with ID 0 (RFC 6864). A
/// forged "fragmentation needed" no longer changes how heartbeats go out either.
fn unfragmented(socket: &Socket) -> io::Result<()> {
    use nix::sys::socket::setsockopt;
    setsockopt(socket, MtuDiscover, &libc::IP_PMTUDISC_PROBE).map_err(io::Error::from)
}

sockopt_impl!(
    /// IP_MTU_DISCOVER, which neither nix nor socket2 names.
    MtuDiscover,
    Both,
    libc::IPPROTO_IP,
    libc::IP_MTU_DISCOVER,
    libc::c_int
);

/// The addresses configured on this host's interfaces (in this network namespace).
pub fn local_addresses() -> io::Result<Vec<IpAddr>> {
    let addresses = nix::ifaddrs::getifaddrs().map_err(io::Error::from)?;
    Ok(addresses
        .filter_map(|ifaddr| {
            let address = ifaddr.address?;
            if let Some(v4) = address.as_sockaddr_in() {
                Some(IpAddr::V4(v4.ip()))
            } else {
                address.as_sockaddr_in6().map(|v6| IpAddr::V6(v6.ip()))
            }
        })
        .collect())
}

pub use crate::config::fit::Interface;

/// This host's interfaces (in this network namespace), addresses or not.
pub fn local_interfaces() -> io::Result<Vec<Interface>> {
    let mut interfaces: Vec<Interface> = Vec::new();
    for ifaddr in nix::ifaddrs::getifaddrs().map_err(io::Error::from)? {
        let at = match interfaces
            .iter()
            .position(|i| i.name == ifaddr.interface_name)
        {
            Some(at) => at,
            None => {
                interfaces.push(Interface {
                    name: ifaddr.interface_name.clone(),
                    addresses: Vec::new(),
                });
                interfaces.len() - 1
            }
        };
        let (Some(address), Some(mask)) = (ifaddr.address, ifaddr.netmask) else {
            continue;
        };
        let entry = match (address.as_sockaddr_in(), mask.as_sockaddr_in()) {
            (Some(a), Some(m)) => Some((IpAddr::V4(a.ip()), u32::from(m.ip()).count_ones())),
            _ => match (address.as_sockaddr_in6(), mask.as_sockaddr_in6()) {
                (Some(a), Some(m)) => Some((IpAddr::V6(a.ip()), u128::from(m.ip()).count_ones())),
                _ => None,
            },
        };
        if let Some((address, len)) = entry {
            let len = u8::try_from(len).unwrap_or(u8::MAX);
            interfaces[at].addresses.push((address, len));
        }
    }
    Ok(interfaces)
}

/// The heartbeat addresses (link name, address) not on this host yet, for the
/// status; an address leaves the list when it appears.
pub type Missing = Arc<Mutex<Vec<(String, IpAddr)>>>;

/// Logs each of `addresses` (link name, address) that is not on this host yet, and
/// watches for it in the background until it appears. Call from within the runtime.
pub fn report_missing(addresses: Vec<(String, IpAddr)>) -> Missing {
    let missing = Missing::default();
    let Ok(local) = local_addresses() else {
        // Without the list there is nothing to report; the sockets listen anyway.
        return missing;
    };
    for (link, address) in addresses {
        if local.contains(&address) {
            continue;
        }
        if let Ok(mut list) = missing.lock() {
            list.push((link.clone(), address));
        }
        warn!(
            link = link.as_str(),
            %address,
            "heartbeat address {address} (link {link}) is not on this host yet: listening \
             on it anyway; no heartbeat goes out or comes in on this link until it appears"
        );
        tokio::spawn(watch(link, address, Arc::clone(&missing)));
    }
    missing
}

/// Watches for `address` until it appears, then takes it off `missing`. One that
/// never comes stays listed: the status keeps saying so after the watch gives up.
async fn watch(link: String, address: IpAddr, missing: Missing) {
    let mut interval = tokio::time::interval(RECHECK);
    for _ in 0..RECHECKS {
        interval.tick().await;
        if local_addresses().is_ok_and(|local| local.contains(&address)) {
            if let Ok(mut list) = missing.lock() {
                list.retain(|(_, a)| *a != address);
            }
            info!(
                link = link.as_str(),
                %address,
                "heartbeat address {address} (link {link}) is on this host now"
            );
            return;
        }
    }
    warn!(
        link = link.as_str(),
        %address,
        "heartbeat address {address} (link {link}) is still not on this host after an \
         hour; no longer watching for it"
    );
}

/// Sends one datagram from `from` to `to`, a link's address, and says which of the
/// link's sockets got it: "peers", "strangers" or "nowhere".
#[cfg(test)]
pub(crate) fn landed(sockets: &LinkSockets, from: &str, to: SocketAddr) -> &'static str {
    landed_with(sockets, from, to, b"x")
}

/// [`landed`] for a datagram of `payload`, and "routine" for the routine socket.
#[cfg(test)]
pub(crate) fn landed_with(
    sockets: &LinkSockets,
    from: &str,
    to: SocketAddr,
    payload: &[u8],
) -> &'static str {
    let sender = std::net::UdpSocket::bind(from).unwrap();
    sender.send_to(payload, to).unwrap();
    let strangers = sockets.strangers.as_ref().expect("a socket for strangers");
    let mut buf = [0u8; 64];
    for _ in 0..500 {
        if sockets.peers.get_ref().recv_from(&mut buf).is_ok() {
            return "peers";
        }
        if strangers.get_ref().recv_from(&mut buf).is_ok() {
            return "strangers";
        }
        if let Some(routine) = &sockets.routine
            && routine.recv_from(&mut buf).is_ok()
        {
            return "routine";
        }
        std::thread::sleep(Duration::from_millis(2));
    }
    "nowhere"
}

#[cfg(test)]
mod tests {
    use super::*;

    fn runtime() -> tokio::runtime::Runtime {
        tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
    }

    #[test]
    fn an_address_not_on_the_host_is_bound_all_the_same() {
        let runtime = runtime();
        // 198.18.0.0/15 is for tests and on no interface here; FREEBIND needs no
        // privilege.
        let address: SocketAddr = "198.18.255.254:0".parse().unwrap();
        assert!(!local_addresses().unwrap().contains(&address.ip()));
        let peer = "198.18.255.253".parse().unwrap();
        let (sockets, error) = runtime
            .block_on(async { link_sockets(address, &[peer]) })
            .expect("bound with IP_FREEBIND");
        assert!(error.is_none(), "{error:?}");
        let bound = sockets.peers.get_ref().local_addr().unwrap();
        assert_eq!(bound.ip(), address.ip());
        let strangers = sockets.strangers.expect("a socket for strangers");
        assert_eq!(strangers.get_ref().local_addr().unwrap(), bound);
    }

    #[test]
    fn heartbeats_over_ipv4_go_unfragmented_whatever_mtu_the_path_is_said_to_have() {
        let (sockets, _, _, _runtime) = sorted_link();
        let strangers = sockets.strangers.as_ref().unwrap();
        for socket in [sockets.peers.get_ref(), strangers.get_ref()] {
            let value = nix::sys::socket::getsockopt(socket, MtuDiscover).unwrap();
            assert_eq!(value, libc::IP_PMTUDISC_PROBE);
        }
    }

    /// A link's sockets at 127.0.0.1 with peers at 127.0.0.2 and .4, the peers,
    /// where to send to them, and the runtime they are registered with.
    fn sorted_link() -> (
        LinkSockets,
        Vec<IpAddr>,
        SocketAddr,
        tokio::runtime::Runtime,
    ) {
        let runtime = runtime();
        let peers: Vec<IpAddr> = vec!["127.0.0.2".parse().unwrap(), "127.0.0.4".parse().unwrap()];
        let (sockets, error) = runtime
            .block_on(async { link_sockets("127.0.0.1:0".parse().unwrap(), &peers) })
            .unwrap();
        assert!(error.is_none(), "{error:?}");
        let to = sockets.peers.get_ref().local_addr().unwrap();
        (sockets, peers, to, runtime)
    }

    #[test]
    fn the_kernel_sorts_the_peers_datagrams_from_everyone_elses() {
        let (sockets, _, to, _runtime) = sorted_link();
        assert_eq!(landed(&sockets, "127.0.0.2:0", to), "peers");
        assert_eq!(landed(&sockets, "127.0.0.3:0", to), "strangers");
        assert_eq!(landed(&sockets, "127.0.0.4:0", to), "peers");
        assert_eq!(landed(&sockets, "127.0.0.1:0", to), "strangers");
    }

    #[test]
    fn the_kernel_sorts_a_peer_s_routine_heartbeats_by_their_first_bytes() {
        let (sockets, peers, to, _runtime) = sorted_link();
        let routine = sockets
            .routine
            .as_ref()
            .expect("a socket for routine heartbeats");
        let header = *b"FOHB\x01\x00\x02\x00\x00\x00\x00\xc8";
        let program = steer::program(
            &peers,
            Some(&steer::Routine {
                from: peers[1],
                header,
            }),
        );
        // Any socket of the group sets the group's program.
        steer::attach(&**routine, &program).unwrap();
        let mut routine_beat = header.to_vec();
        routine_beat.extend_from_slice(b"sequence, nonces, names and tag");
        let mut news = routine_beat.clone();
        news[7] = 1;
        for (from, payload, expected) in [
            ("127.0.0.4:0", &routine_beat[..], "routine"),
            // The same standing from the other peer, another standing, a datagram
            // too short to compare: the peers' socket.
            ("127.0.0.2:0", &routine_beat[..], "peers"),
            ("127.0.0.4:0", &news[..], "peers"),
            ("127.0.0.4:0", &header[..10], "peers"),
            ("127.0.0.3:0", &routine_beat[..], "strangers"),
        ] {
            assert_eq!(
                landed_with(&sockets, from, to, payload),
                expected,
                "{from}, {} bytes",
                payload.len()
            );
        }
        // Back to the program without routine heartbeats: the peers' socket.
        steer::attach(&**routine, &steer::program(&peers, None)).unwrap();
        assert_eq!(
            landed_with(&sockets, "127.0.0.4:0", to, &routine_beat),
            "peers"
        );
    }

    #[test]
    fn a_reload_that_moves_a_peer_sorts_by_its_new_address() {
        let runtime = runtime();
        let (sockets, _) = runtime
            .block_on(async {
                link_sockets(
                    "127.0.0.1:0".parse().unwrap(),
                    &["127.0.0.2".parse().unwrap()],
                )
            })
            .unwrap();
        let to = sockets.peers.get_ref().local_addr().unwrap();
        resteer(&sockets.peers, &["127.0.0.3".parse().unwrap()]).unwrap();
        assert_eq!(landed(&sockets, "127.0.0.3:0", to), "peers");
        assert_eq!(landed(&sockets, "127.0.0.2:0", to), "strangers");
    }

    #[test]
    fn ipv6_sources_are_sorted_on_the_whole_address() {
        let runtime = runtime();
        let to: SocketAddr = "[::1]:0".parse().unwrap();
        // The loopback is the only IPv6 source here: a peer on it, then a peer that
        // differs from it in the last word only.
        for (peer, expected) in [("::1", "peers"), ("::2", "strangers")] {
            let (sockets, error) = runtime
                .block_on(async { link_sockets(to, &[peer.parse().unwrap()]) })
                .unwrap();
            assert!(error.is_none(), "{error:?}");
            let at = sockets.peers.get_ref().local_addr().unwrap();
            assert_eq!(landed(&sockets, "[::1]:0", at), expected, "peer {peer}");
        }
    }

    #[test]
    fn a_second_daemon_on_the_same_address_is_refused_not_let_into_the_group() {
        let runtime = runtime();
        let peers: Vec<IpAddr> = vec!["127.0.0.2".parse().unwrap()];
        let (sockets, _) = runtime
            .block_on(async { link_sockets("127.0.0.1:0".parse().unwrap(), &peers) })
            .unwrap();
        let taken = sockets.peers.get_ref().local_addr().unwrap();
        let second = runtime.block_on(async { link_sockets(taken, &peers) });
        let err = second.err().expect("the port is taken");
        assert_eq!(err.kind(), io::ErrorKind::AddrInUse, "{err}");
        // Another program's socket, reusable or not, refuses the daemon as well.
        drop(sockets);
        for reuse in [false, true] {
            let other = unbound(taken).unwrap();
            other.set_reuse_port(reuse).unwrap();
            other.bind(&taken.into()).unwrap();
            let refused = runtime.block_on(async { link_sockets(taken, &peers) });
            let err = refused.err().expect("the port is taken");
            assert_eq!(err.kind(), io::ErrorKind::AddrInUse, "reuse {reuse}: {err}");
        }
        let free = runtime.block_on(async { link_sockets(taken, &peers) });
        assert!(free.is_ok(), "free again once let go: {:?}", free.err());
    }

    #[test]
    fn the_loopback_address_is_local() {
        assert!(
            local_addresses()
                .unwrap()
                .contains(&"127.0.0.1".parse().unwrap())
        );
    }
}
