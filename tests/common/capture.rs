//! A packet socket that sees every frame on one interface, both ways, for tests
//! that look at what the daemon put on the wire.

use std::time::Duration;

use socket2::{Domain, Protocol, SockAddr, SockAddrStorage, Socket, Type, socklen_t};

/// Captures every frame on interface `ifindex` of the calling thread's namespace;
/// reads give up after `timeout`.
pub fn capture_socket(ifindex: u32, timeout: Duration) -> Socket {
    let all = (libc::ETH_P_ALL as u16).to_be();
    let socket = Socket::new(
        Domain::PACKET,
        Type::RAW,
        Some(Protocol::from(i32::from(all))),
    )
    .expect("capture socket");
    let mut storage = SockAddrStorage::zeroed();
    // SAFETY: sockaddr_ll is a platform sockaddr type; view_as checks the size.
    let address = unsafe { storage.view_as::<libc::sockaddr_ll>() };
    address.sll_family = libc::AF_PACKET as libc::sa_family_t;
    address.sll_protocol = all;
    address.sll_ifindex = i32::try_from(ifindex).expect("small index");
    let len = std::mem::size_of::<libc::sockaddr_ll>() as socklen_t;
    // SAFETY: family and length match the sockaddr_ll written above.
    let address = unsafe { SockAddr::new(storage, len) };
    socket.bind(&address).expect("bind capture socket");
    socket
        .set_read_timeout(Some(timeout))
        .expect("read timeout");
    socket
}
