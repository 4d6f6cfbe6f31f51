//! Where the VIP is, as the nodes' kernels say, with every change in the order the
//! kernels made it: the detector of overlaps (the VIP on both nodes at once).
//!
//! **Method.** One netlink socket in the LAN namespace listens to IPv4 address changes
//! of both nodes: n1 and n2 get a namespace id there, and the socket is opened with
//! `NETLINK_LISTEN_ALL_NSID`, so each notification carries the id of the node it came
//! from. The kernel queues a notification inside the very system call that adds or
//! removes an address, whichever node it happens in, so the one queue holds both
//! nodes' changes in the order they happened. Whether the VIP was ever on both nodes is
//! therefore read from that order, not from samples: an overlap is seen however short
//! it is, down to two back-to-back netlink calls (about 40 µs), and a clean move
//! (removed, then added) never looks like one. `tests/lab.rs` proves both with scripted
//! moves: a 5 ms overlap, a back-to-back one, and clean moves with no pause.
//! A netlink dump of each node's address table (a socket made in each namespace) gives
//! the state before the first change.
//!
//! **Durations** (how long an overlap lasted, when a change happened) come from the
//! monotonic clock, read by the watcher thread as each notification arrives (netlink
//! carries no kernel timestamp), so they are late by that thread's wake-up latency.
//! The thread runs with real-time priority where allowed (root may, and the lab runs
//! as root), which keeps that latency to tens of microseconds even while the machine
//! builds and tests in parallel: the lab test measures its 5 ms overlap to within a
//! few milliseconds (typically 0.1 ms) and one of about 40 µs as such. Without it,
//! read times may be late by milliseconds under load. The order, and so the verdict,
//! depends on neither.
//!
//! If the queue overflowed (the kernel says ENOBUFS), changes were lost and the
//! history cannot be trusted; `finish` panics rather than report a clean record.
//!
//! The watcher thread joins no namespace itself: sockets stay in the namespace they
//! were made in, so short-lived threads make them (`socket_in`) and hand them over.
//! It stops when asked, when dropped (also while a test panics), and after
//! `WATCH_LIMIT` at the latest; every read waits at most `READ_TIMEOUT`.

use std::fs::File;
use std::net::{IpAddr, Ipv4Addr};
use std::os::fd::AsRawFd;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use nix::sched::{CloneFlags, setns};
use nix::sys::socket::{ControlMessageOwned, MsgFlags, recvmsg, setsockopt, sockopt};
use nix::sys::time::TimeVal;
use rtnetlink::packet_core::{
    NLM_F_ACK, NLM_F_CREATE, NLM_F_DUMP, NLM_F_EXCL, NLM_F_REQUEST, NetlinkHeader, NetlinkMessage,
    NetlinkPayload,
};
use rtnetlink::packet_route::address::{AddressAttribute, AddressMessage};
use rtnetlink::packet_route::link::{LinkAttribute, LinkMessage};
use rtnetlink::packet_route::nsid::{NsidAttribute, NsidMessage};
use rtnetlink::packet_route::{AddressFamily, RouteNetlinkMessage};
use rtnetlink::sys::{Socket, SocketAddr, protocols::NETLINK_ROUTE};

use super::Lab;

/// The nodes watched, by lab host: index 0 is n1 (alpha), 1 is n2 (beta).
pub const NODES: [&str; 2] = ["n1", "n2"];
/// A watch ends by itself after this long.
pub const WATCH_LIMIT: Duration = Duration::from_secs(120);
/// Longest single wait for a notification, so a stop request is seen promptly.
const READ_TIMEOUT: Duration = Duration::from_millis(20);
/// How long a request (a dump, an id, an address change) may take to be answered.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(2);
/// Kernel's SOL_NETLINK option and control message carrying the origin's namespace id.
const NETLINK_LISTEN_ALL_NSID: i32 = 8;

/// One change of the VIP on one node.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct VipChange {
    /// When the watcher read it (see the module docs for its precision).
    pub at: Instant,
    /// Index into `NODES`.
    pub node: usize,
    /// Added (true) or removed (false).
    pub present: bool,
}

/// A stretch of time in which both nodes held the VIP.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Overlap {
    /// When the second node got it, after the start of the watch.
    pub began: Duration,
    /// How long until one of them let it go; None when both still held it at the end.
    pub lasted: Option<Duration>,
}

/// Everything a watch saw, in kernel order.
#[derive(Debug, Clone)]
pub struct VipHistory {
    pub vip: Ipv4Addr,
    pub started: Instant,
    /// Whether the watcher thread ran with real-time priority (see the module docs).
    pub realtime: bool,
    pub ended: Instant,
    /// Whether each node held the VIP when the watch began.
    pub initial: [bool; 2],
    pub changes: Vec<VipChange>,
}

/// A running watch; `finish` stops it and returns what it saw.
pub struct VipWatch {
    vip: Ipv4Addr,
    started: Instant,
    realtime: bool,
    initial: [bool; 2],
    stop: Arc<AtomicBool>,
    /// Changes seen so far, shared with the watcher thread.
    changes: Arc<Mutex<Vec<VipChange>>>,
    thread: Option<JoinHandle<Result<(), String>>>,
}

impl VipWatch {
    /// Starts watching `vip` on n1 and n2 of `lab`. Panics when the kernel refuses.
    pub fn start(lab: &Lab, vip: Ipv4Addr) -> VipWatch {
        let mut lan = Rtnl::open_in(lab, "lan");
        let listener = socket_in(lab, "lan");
        listener
            .set_listen_all_namespaces(true)
            .expect("NETLINK_LISTEN_ALL_NSID");
        // Room for thousands of notifications; an overflow is detected, not ignored.
        listener
            .set_rx_buf_sz(1 << 20)
            .expect("receive buffer size");
        listener
            .add_membership(libc::RTNLGRP_IPV4_IFADDR)
            .expect("join the IPv4 address group");
        setsockopt(&listener, sockopt::ReceiveTimeout, &timeval(READ_TIMEOUT))
            .expect("receive timeout");
        let ids = NODES.map(|host| lan.namespace_id(lab, host));
        // Subscribed first, dumped second: a change between the two is in both, and
        // applying it again changes nothing.
        let started = Instant::now();
        let initial = NODES.map(|host| {
            Rtnl::open_in(lab, host)
                .addresses()
                .contains(&IpAddr::V4(vip))
        });
        let stop = Arc::new(AtomicBool::new(false));
        let changes = Arc::new(Mutex::new(Vec::new()));
        let (realtime_tx, realtime_rx) = std::sync::mpsc::channel();
        let thread = {
            let stop = stop.clone();
            let changes = changes.clone();
            std::thread::spawn(move || {
                let _ = realtime_tx.send(make_realtime());
                listen(&listener, vip, ids, &stop, &changes, started)
            })
        };
        let realtime = realtime_rx.recv().unwrap_or(false);
        VipWatch {
            vip,
            started,
            realtime,
            initial,
            stop,
            changes,
            thread: Some(thread),
        }
    }

    /// Time since the watch began.
    pub fn elapsed(&self) -> Duration {
        self.started.elapsed()
    }

    /// Whether each node holds the VIP, as far as the watcher has read.
    pub fn now(&self) -> [bool; 2] {
        let changes = self.changes.lock().unwrap_or_else(|e| e.into_inner());
        state_after(self.initial, &changes)
    }

    /// Stops the watch, after reading every change the kernel queued until now.
    /// Panics if changes were lost or the watcher failed.
    pub fn finish(mut self) -> VipHistory {
        self.stop.store(true, Ordering::SeqCst);
        let thread = self.thread.take().expect("a watch finishes once");
        match thread.join() {
            Ok(Ok(())) => {}
            Ok(Err(e)) => panic!("the VIP watcher failed, its record cannot be trusted: {e}"),
            Err(panic) => std::panic::resume_unwind(panic),
        }
        let changes = std::mem::take(&mut *self.changes.lock().unwrap_or_else(|e| e.into_inner()));
        VipHistory {
            vip: self.vip,
            started: self.started,
            realtime: self.realtime,
            ended: Instant::now(),
            initial: self.initial,
            changes,
        }
    }
}

impl Drop for VipWatch {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        if let Some(thread) = self.thread.take() {
            // Bounded: the thread looks at `stop` after every read of READ_TIMEOUT.
            let _ = thread.join();
        }
    }
}

impl VipHistory {
    /// Whether each node held the VIP at the end.
    pub fn at_end(&self) -> [bool; 2] {
        state_after(self.initial, &self.changes)
    }

    /// Whether `node` (index into `NODES`) held the VIP at any time.
    pub fn ever_on(&self, node: usize) -> bool {
        self.initial[node] || self.changes.iter().any(|c| c.node == node && c.present)
    }

    /// Every stretch in which both nodes held the VIP, in order.
    pub fn overlaps(&self) -> Vec<Overlap> {
        let mut overlaps = Vec::new();
        let mut on = self.initial;
        let mut began = (on[0] && on[1]).then_some(self.started);
        for change in &self.changes {
            on[change.node] = change.present;
            match (began, on[0] && on[1]) {
                (None, true) => began = Some(change.at),
                (Some(start), false) => {
                    overlaps.push(Overlap {
                        began: start - self.started,
                        lasted: Some(change.at - start),
                    });
                    began = None;
                }
                _ => {}
            }
        }
        if let Some(start) = began {
            overlaps.push(Overlap {
                began: start - self.started,
                lasted: None,
            });
        }
        overlaps
    }

    /// The first change that put the VIP on `node`, as time after the watch began.
    pub fn first_added(&self, node: usize) -> Option<Duration> {
        self.changes
            .iter()
            .find(|c| c.node == node && c.present)
            .map(|c| c.at - self.started)
    }

    /// The last change that took the VIP off `node`, as time after the watch began.
    pub fn last_removed(&self, node: usize) -> Option<Duration> {
        self.changes
            .iter()
            .rfind(|c| c.node == node && !c.present)
            .map(|c| c.at - self.started)
    }

    /// One line per change, for assertion messages.
    pub fn describe(&self) -> String {
        let mut out = format!(
            "VIP {} at the start: n1 {}, n2 {}",
            self.vip,
            holds(self.initial[0]),
            holds(self.initial[1])
        );
        for c in &self.changes {
            out.push_str(&format!(
                "\n  +{:>9.3} ms  {} {}",
                (c.at - self.started).as_secs_f64() * 1e3,
                NODES[c.node],
                if c.present { "added" } else { "removed" }
            ));
        }
        out.push_str(&format!(
            "\n  +{:>9.3} ms  end of the watch",
            (self.ended - self.started).as_secs_f64() * 1e3
        ));
        out
    }
}

fn holds(on: bool) -> &'static str {
    if on { "has it" } else { "has not" }
}

fn state_after(initial: [bool; 2], changes: &[VipChange]) -> [bool; 2] {
    let mut on = initial;
    for c in changes {
        on[c.node] = c.present;
    }
    on
}

/// The watcher thread: reads notifications until asked to stop and the queue is empty,
/// or until `WATCH_LIMIT`.
fn listen(
    socket: &Socket,
    vip: Ipv4Addr,
    ids: [i32; 2],
    stop: &AtomicBool,
    changes: &Mutex<Vec<VipChange>>,
    started: Instant,
) -> Result<(), String> {
    let mut buf = vec![0u8; 64 * 1024];
    while started.elapsed() < WATCH_LIMIT {
        // Read the flag before the read: once it is set, one empty read means every
        // change made before it was set has been read (they were queued at once).
        let stopping = stop.load(Ordering::SeqCst);
        let mut cmsg = nix::cmsg_space!(i32);
        let mut iov = [std::io::IoSliceMut::new(&mut buf)];
        let received = recvmsg::<()>(
            socket.as_raw_fd(),
            &mut iov,
            Some(&mut cmsg),
            MsgFlags::empty(),
        );
        let at = Instant::now();
        let (len, nsid) = match received {
            Ok(message) => {
                let mut nsid = None;
                for c in message
                    .cmsgs()
                    .map_err(|e| format!("control messages: {e}"))?
                {
                    if let ControlMessageOwned::Unknown(u) = c
                        && u.cmsg_header.cmsg_level == libc::SOL_NETLINK
                        && u.cmsg_header.cmsg_type == NETLINK_LISTEN_ALL_NSID
                        && let Ok(bytes) = <[u8; 4]>::try_from(u.data_bytes.as_slice())
                    {
                        nsid = Some(i32::from_ne_bytes(bytes));
                    }
                }
                (message.bytes, nsid)
            }
            Err(nix::errno::Errno::EAGAIN | nix::errno::Errno::EINTR) => {
                if stopping {
                    return Ok(());
                }
                continue;
            }
            Err(nix::errno::Errno::ENOBUFS) => {
                return Err("the notification queue overflowed: changes were lost".into());
            }
            Err(e) => return Err(format!("receive: {e}")),
        };
        // Only the two nodes' namespaces have an id here; a change in the LAN
        // namespace itself comes without one.
        let Some(node) = nsid.and_then(|id| ids.iter().position(|i| *i == id)) else {
            continue;
        };
        for message in messages(&buf[..len])? {
            let (present, address) = match message.payload {
                NetlinkPayload::InnerMessage(RouteNetlinkMessage::NewAddress(a)) => (true, a),
                NetlinkPayload::InnerMessage(RouteNetlinkMessage::DelAddress(a)) => (false, a),
                _ => continue,
            };
            if local_address(&address) == Some(IpAddr::V4(vip)) {
                changes
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(VipChange { at, node, present });
            }
        }
    }
    Ok(())
}

/// Gives the calling thread real-time priority (SCHED_FIFO), so that it is woken as
/// soon as a notification arrives, even on a loaded machine. It only ever waits in
/// recvmsg and handles a few notifications per move, so it takes nothing from anyone.
/// Returns false where real-time scheduling is not allowed: read times are then later.
fn make_realtime() -> bool {
    let param = libc::sched_param { sched_priority: 10 };
    // SAFETY: pthread_self() names this thread, and `param` lives through the call.
    unsafe { libc::pthread_setschedparam(libc::pthread_self(), libc::SCHED_FIFO, &param) == 0 }
}

/// A route netlink socket made in `host`'s namespace, on a thread that joins it for
/// that moment only: the socket stays there whichever thread uses it later.
pub fn socket_in(lab: &Lab, host: &str) -> Socket {
    let path = format!("/run/netns/{}", lab.ns(host));
    std::thread::spawn(move || {
        let ns = File::open(&path).unwrap_or_else(|e| panic!("open {path}: {e}"));
        setns(&ns, CloneFlags::CLONE_NEWNET).unwrap_or_else(|e| panic!("join {path}: {e}"));
        let mut socket = Socket::new(NETLINK_ROUTE).expect("route netlink socket");
        socket
            .bind(&SocketAddr::new(0, 0))
            .expect("bind the netlink socket");
        socket
    })
    .join()
    .expect("the thread making a netlink socket")
}

/// Requests on a route netlink socket in one namespace: dumps, ids, address changes.
pub struct Rtnl {
    socket: Socket,
    sequence: u32,
}

impl Rtnl {
    pub fn open_in(lab: &Lab, host: &str) -> Rtnl {
        let socket = socket_in(lab, host);
        setsockopt(&socket, sockopt::ReceiveTimeout, &timeval(REQUEST_TIMEOUT))
            .expect("receive timeout");
        Rtnl {
            socket,
            sequence: 0,
        }
    }

    /// Every local IPv4 address in this namespace.
    pub fn addresses(&mut self) -> Vec<IpAddr> {
        let mut request = AddressMessage::default();
        request.header.family = AddressFamily::Inet;
        self.request(RouteNetlinkMessage::GetAddress(request), NLM_F_DUMP)
            .unwrap_or_else(|e| panic!("dump the addresses: {e}"))
            .iter()
            .filter_map(|m| match m {
                RouteNetlinkMessage::NewAddress(a) => local_address(a),
                _ => None,
            })
            .collect()
    }

    /// The index of interface `name` in this namespace.
    pub fn link_index(&mut self, name: &str) -> u32 {
        let mut request = LinkMessage::default();
        request.attributes = vec![LinkAttribute::IfName(name.to_owned())];
        let replies = self
            .request(RouteNetlinkMessage::GetLink(request), 0)
            .unwrap_or_else(|e| panic!("look up interface {name}: {e}"));
        replies
            .iter()
            .find_map(|m| match m {
                RouteNetlinkMessage::NewLink(link) => Some(link.header.index),
                _ => None,
            })
            .unwrap_or_else(|| panic!("no interface {name}"))
    }

    /// Adds `address/prefix_len` to the interface with index `index`.
    pub fn add_address(&mut self, index: u32, address: Ipv4Addr, prefix_len: u8) {
        let message = address_message(index, address, prefix_len);
        self.request(
            RouteNetlinkMessage::NewAddress(message),
            NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL,
        )
        .unwrap_or_else(|e| panic!("add {address}/{prefix_len}: {e}"));
    }

    /// Removes `address/prefix_len` from the interface with index `index`.
    pub fn remove_address(&mut self, index: u32, address: Ipv4Addr, prefix_len: u8) {
        let message = address_message(index, address, prefix_len);
        self.request(RouteNetlinkMessage::DelAddress(message), NLM_F_ACK)
            .unwrap_or_else(|e| panic!("remove {address}/{prefix_len}: {e}"));
    }

    /// The id that this namespace gives `host`'s namespace, allocated when it has none.
    fn namespace_id(&mut self, lab: &Lab, host: &str) -> i32 {
        let path = format!("/run/netns/{}", lab.ns(host));
        let ns = File::open(&path).unwrap_or_else(|e| panic!("open {path}: {e}"));
        let fd = u32::try_from(ns.as_raw_fd()).expect("a file descriptor is not negative");
        for allocate in [false, true] {
            if allocate {
                let mut new = NsidMessage::default();
                new.attributes = vec![NsidAttribute::Fd(fd), NsidAttribute::Id(-1)];
                self.request(RouteNetlinkMessage::NewNsId(new), NLM_F_ACK)
                    .unwrap_or_else(|e| panic!("give {host} a namespace id: {e}"));
            }
            let mut get = NsidMessage::default();
            get.attributes = vec![NsidAttribute::Fd(fd)];
            let replies = self
                .request(RouteNetlinkMessage::GetNsId(get), 0)
                .unwrap_or_else(|e| panic!("the namespace id of {host}: {e}"));
            let id = replies.iter().find_map(|m| match m {
                RouteNetlinkMessage::NewNsId(m) => m.attributes.iter().find_map(|a| match a {
                    NsidAttribute::Id(id) => Some(*id),
                    _ => None,
                }),
                _ => None,
            });
            if let Some(id) = id.filter(|id| *id >= 0) {
                return id;
            }
        }
        panic!("{host} has no namespace id even after allocating one");
    }

    /// Sends `message` and collects the replies: until the end of a dump, the
    /// acknowledgement, or the one answer to a plain request.
    fn request(
        &mut self,
        message: RouteNetlinkMessage,
        flags: u16,
    ) -> Result<Vec<RouteNetlinkMessage>, String> {
        self.sequence += 1;
        let mut header = NetlinkHeader::default();
        header.flags = NLM_F_REQUEST | flags;
        header.sequence_number = self.sequence;
        let mut packet = NetlinkMessage::new(header, NetlinkPayload::InnerMessage(message));
        packet.finalize();
        let mut buf = vec![0u8; packet.buffer_len()];
        packet.serialize(&mut buf);
        self.socket
            .send(&buf, 0)
            .map_err(|e| format!("send: {e}"))?;
        let mut replies = Vec::new();
        loop {
            let (data, _) = self
                .socket
                .recv_from_full()
                .map_err(|e| format!("receive: {e}"))?;
            for reply in messages(&data)? {
                if reply.header.sequence_number != self.sequence {
                    continue;
                }
                match reply.payload {
                    NetlinkPayload::InnerMessage(m) => {
                        replies.push(m);
                        if flags & (NLM_F_DUMP | NLM_F_ACK) == 0 {
                            return Ok(replies);
                        }
                    }
                    NetlinkPayload::Done(_) => return Ok(replies),
                    NetlinkPayload::Error(e) => {
                        return match e.code {
                            None => Ok(replies),
                            Some(code) => {
                                Err(std::io::Error::from_raw_os_error(-code.get()).to_string())
                            }
                        };
                    }
                    _ => {}
                }
            }
        }
    }
}

fn address_message(index: u32, address: Ipv4Addr, prefix_len: u8) -> AddressMessage {
    let mut message = AddressMessage::default();
    message.header.family = AddressFamily::Inet;
    message.header.prefix_len = prefix_len;
    message.header.index = index;
    message.attributes = vec![
        AddressAttribute::Local(address.into()),
        AddressAttribute::Address(address.into()),
    ];
    message
}

/// The node's own address in an address message: IFA_LOCAL, or IFA_ADDRESS without it.
fn local_address(message: &AddressMessage) -> Option<IpAddr> {
    let find = |local: bool| {
        message.attributes.iter().find_map(|a| match a {
            AddressAttribute::Local(ip) if local => Some(*ip),
            AddressAttribute::Address(ip) if !local => Some(*ip),
            _ => None,
        })
    };
    find(true).or_else(|| find(false))
}

/// The netlink messages in one datagram.
fn messages(data: &[u8]) -> Result<Vec<NetlinkMessage<RouteNetlinkMessage>>, String> {
    let mut out = Vec::new();
    let mut offset = 0;
    while offset + 16 <= data.len() {
        let length = u32::from_ne_bytes(
            data[offset..offset + 4]
                .try_into()
                .expect("a slice of four bytes"),
        ) as usize;
        if length < 16 || offset + length > data.len() {
            return Err(format!("a netlink message of length {length} at {offset}"));
        }
        let message = NetlinkMessage::deserialize(&data[offset..offset + length])
            .map_err(|e| format!("parse a netlink message: {e}"))?;
        out.push(message);
        offset += length.next_multiple_of(4);
    }
    Ok(out)
}

fn timeval(d: Duration) -> TimeVal {
    TimeVal::new(
        d.as_secs() as libc::time_t,
        d.subsec_micros() as libc::suseconds_t,
    )
}
