//! The heartbeat sockets, bound to this node's addresses even before those exist.
//!
//! At boot a NIC can come up after failoverd starts (a slow driver, a bond that is
//! still negotiating). A plain bind to its address would fail, the daemon would exit,
//! and systemd's restarts would run out before the address appeared. So each socket is
//! bound with IP_FREEBIND: it listens on the address from the start and receives as
//! soon as the kernel has it. An address not on the host yet is logged, watched until
//! it appears (a bounded number of checks), and logged again when it does. Only
//! binding lives here; receiving is the loop's (`mod.rs`).

use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use socket2::{Domain, Protocol, Socket, Type};
use tokio::io::Interest;
use tokio::io::unix::AsyncFd;
use tracing::{info, warn};

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

/// A heartbeat socket bound to `address`, whether or not the address is on this
/// host yet. Fails only for what waiting cannot fix: the port is taken, or the
/// daemon may not bind to it.
pub fn heartbeat_socket(address: SocketAddr) -> io::Result<HeartbeatSocket> {
    let socket = Socket::new(
        Domain::for_address(address),
        Type::DGRAM,
        Some(Protocol::UDP),
    )?;
    match address.ip() {
        IpAddr::V4(_) => socket.set_freebind_v4(true)?,
        IpAddr::V6(_) => socket.set_freebind_v6(true)?,
    }
    socket.set_nonblocking(true)?;
    socket.bind(&address.into())?;
    watch_for_reading(socket.into())
}

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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_not_on_the_host_is_bound_all_the_same() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        // 198.18.0.0/15 is for tests and on no interface here; FREEBIND needs no
        // privilege.
        let address: SocketAddr = "198.18.255.254:0".parse().unwrap();
        assert!(!local_addresses().unwrap().contains(&address.ip()));
        let socket = runtime.block_on(async { heartbeat_socket(address) });
        let bound = socket
            .expect("bound with IP_FREEBIND")
            .get_ref()
            .local_addr()
            .unwrap();
        assert_eq!(bound.ip(), address.ip());
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
