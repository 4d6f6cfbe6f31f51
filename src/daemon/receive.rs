//! The receive side of the heartbeat links. The loop reads the links' sockets
//! itself, in turn, and drops on the spot whatever the machine would reject
//! whatever its state (a bad length, magic, version or tag; another cluster; a node
//! that is not a peer, or not at its address on that link). A link has two sockets,
//! the kernel sorting its peers' datagrams to one and everyone else's to the other
//! (see `steer`; one socket where the kernel cannot); each socket's receive buffer
//! is its own bounded queue: the kernel drops what does not fit, and says how much.
//! Read in the loop rather than by a task per link that hands each datagram over
//! on a channel: that hop woke a task and the loop for every heartbeat, the larger
//! part of an idle standby's CPU at a short interval.
//!
//! So junk from strangers, however much, costs a link's reads the work of rejecting
//! some of it and never takes the place of a heartbeat: the sockets are read in
//! turn, the peers' at most [`BURST`] datagrams per [`REST`] and the strangers' at
//! most [`STRANGERS_BURST`], so a LAN flooded at line rate leaves both its own
//! heartbeats and the crossover's on time. Junk that forges a peer's address shares
//! that peer's queue, and costs that link alone its heartbeats. The work is small: a
//! datagram from an address that is no peer's on the link is dropped on its address
//! alone once [`DIAGNOSED`] of them in a second were decoded and authenticated (so
//! that a stranger at a normal rate is still counted as a wrong key or another
//! cluster); only a spoofed peer address makes the loop compute an HMAC. What is
//! dropped here is counted per link and per reason; the loop adds the counts to the
//! status and logs them as the machine logs its own rejections, at most every
//! [`REPORT_EVERY`]. Replays and stale nonces depend on what the node has heard, so
//! the machine judges those.
//!
//! A quiet standby (see `machine::pace`) learns nothing from its active peer's
//! heartbeats while they repeat the peer's standing (`heartbeat::Standing`) but
//! that the peer is alive. So the kernel sorts those to a third socket that the
//! runtime does not watch (see `steer::Routine`): they wake nobody, on either
//! host, and wait for the loop's next wake-up, which a deadline brings at the
//! latest (the peer's `warn`). The loop then reads all of them before anything
//! else and gives them to the machine dated by the kernel's arrival stamp, so the
//! peer is judged by the same arrival times as if each had been read at once.
//! Anything else from the peer (a release, a change of health or priority) differs
//! in those bytes and is read at once. A datagram in that socket that fails the
//! filter, or a drop there, stops the sorting on that link for [`DISTRUST`], so
//! that a flood forging the peer's address and standing holds its heartbeats up
//! until the next wake-up at most, and then not again for a while.

use std::collections::BTreeMap;
use std::future::Future;
use std::net::IpAddr;
use std::pin::Pin;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::socket::{
    ControlMessageOwned, MsgFlags, SockaddrStorage, recvmsg, setsockopt, sockopt,
};
use nix::sys::time::TimeSpec;
use std::os::fd::AsRawFd;
use std::time::{SystemTime, UNIX_EPOCH};
use tokio::sync::watch;
use tokio::time::Sleep;
use tracing::warn;

use crate::config::Config;
use crate::daemon::gate::Gate;
use crate::daemon::listen::{self, HeartbeatSocket, LinkSockets};
use crate::daemon::steer::{self, Routine};
use crate::machine::{Event, Reject};
use crate::status::Counters;
use crate::wire::heartbeat::{self, DecodeError, Signer, Standing, Verified};

/// Datagrams from strangers' addresses decoded, per link and second, to count why
/// they are wrong; the rest are dropped as "unexpected source address".
const DIAGNOSED: u32 = 200;

/// Datagrams a link's peers' socket is read for per [`REST`] at most; then it rests
/// out the rest of that time and the kernel drops what does not fit in the socket's
/// buffer. The loop runs at realtime priority: unbounded, a flood would take a whole
/// CPU from everything else on the host (the service among them). Every peer of the
/// largest cluster at the shortest interval sends 31 in that time; a flood that
/// forges a peer's address costs the host about a twentieth of a CPU per link.
const BURST: u32 = 128;
const REST: Duration = Duration::from_millis(10);

/// The same for the socket the kernel sorts strangers' datagrams to: enough to
/// diagnose them ([`DIAGNOSED`] a second) and to count them, the rest counted from
/// the kernel's drops without being read.
const STRANGERS_BURST: u32 = 16;

/// How long a link rests after a failed read, so that an error that repeats does
/// not spin the loop.
const AFTER_ERROR: Duration = Duration::from_millis(100);

/// Drops are logged at most this often (the machine's own rejections too).
pub const REPORT_EVERY: Duration = Duration::from_secs(10);

/// Routine heartbeats read per link and wake-up at most: more than a socket's
/// buffer holds (about 300 heartbeats at the default size), so that a wake-up
/// reads all that waited, however long the node was away, and yet a flood that
/// forges the active peer cannot keep the loop reading.
const ROUTINE_BURST: usize = 1024;

/// How long a link reads every heartbeat at once after its routine socket gave a
/// datagram that failed the filter, or lost some: a flood that forges the active
/// peer's address and standing would otherwise sit in that socket and crowd out
/// the real heartbeats until the next wake-up.
const DISTRUST: Duration = Duration::from_secs(10);

/// How long a routine socket is still read, at every wake-up, after the kernel
/// stopped sorting to it: a datagram sorted under the old program may still be on
/// its way into the socket.
const DRAIN_FOR: Duration = Duration::from_secs(1);

/// A datagram that passed its link's filter; the machine does not check its tag
/// again.
pub struct Datagram {
    pub link: usize,
    pub from: IpAddr,
    pub packet: Verified,
}

/// What a datagram must be to reach the machine; rebuilt on every reload.
pub struct Filter {
    cluster: String,
    signer: Signer,
    /// The links' names, in the file's order.
    links: Vec<String>,
    /// Every other node's name and its addresses, link by link.
    peers: Vec<(String, Vec<Option<IpAddr>>)>,
}

impl Filter {
    pub fn new(config: &Config, me: usize) -> Filter {
        Filter {
            cluster: config.cluster.name.clone(),
            signer: Signer::new(config.key.as_bytes()),
            links: config.links.clone(),
            peers: config
                .nodes
                .iter()
                .enumerate()
                .filter(|(index, _)| *index != me)
                .map(|(_, node)| (node.name.clone(), node.addresses.clone()))
                .collect(),
        }
    }

    /// The address of the peer named `name` on `link`.
    fn address(&self, name: &str, link: usize) -> Option<IpAddr> {
        let (_, addresses) = self.peers.iter().find(|(peer, _)| peer == name)?;
        addresses.get(link).copied().flatten()
    }

    /// Every peer's address on `link`, in the file's order, as `listen::peers_on`.
    fn peers_on(&self, link: usize) -> Vec<IpAddr> {
        (self.peers.iter())
            .filter_map(|(_, addresses)| addresses.get(link).copied().flatten())
            .collect()
    }

    /// The name of the peer at `from` on the link named `link`.
    fn name_at(&self, from: &IpAddr, link: &str) -> Option<&str> {
        let index = self.links.iter().position(|l| l == link)?;
        (self.peers.iter())
            .find(|(_, addresses)| addresses.get(index).copied().flatten() == Some(*from))
            .map(|(name, _)| name.as_str())
    }

    /// Whether `from` is a peer's address on `link`.
    fn knows(&self, link: usize, from: IpAddr) -> bool {
        self.peers
            .iter()
            .any(|(_, addresses)| addresses.get(link).copied().flatten() == Some(from))
    }

    /// Checks in the machine's order, so that a datagram is counted under the
    /// reason the machine would have given.
    pub fn check(&self, link: usize, from: IpAddr, bytes: &[u8]) -> Result<Verified, Reject> {
        let packet = Verified::check(bytes, &self.signer).map_err(Reject::Decode)?;
        let hb = packet.heartbeat();
        if hb.cluster != self.cluster {
            return Err(Reject::ForeignCluster);
        }
        let Some((_, addresses)) = self.peers.iter().find(|(name, _)| *name == hb.node) else {
            return Err(Reject::UnknownNode);
        };
        if usize::from(hb.link) != link || addresses.get(link).copied().flatten() != Some(from) {
            return Err(Reject::WrongSource);
        }
        drop(hb);
        Ok(packet)
    }
}

/// What one link dropped, in all and since the last report.
#[derive(Debug, Default)]
struct Tally {
    rejected: BTreeMap<&'static str, (Reject, u64)>,
    pending: BTreeMap<&'static str, (Reject, u64)>,
    /// Datagrams the kernel dropped because the buffer of the link's peers' socket
    /// was full: the loop fell behind, or the socket rested under a flood (of
    /// anything, on a link whose datagrams the kernel does not sort).
    overflow: u64,
    overflow_pending: u64,
    /// Routine heartbeats read late (see `Deferred`), and whether the kernel sets
    /// them aside now.
    read_late: u64,
    setting_aside: bool,
    /// Datagrams from a peer's own address on the link whose tag was wrong: in
    /// all, when the last came, and since the last report. From a live peer, the
    /// two nodes' keys differ (or someone forges the peer's address).
    unauthentic: BTreeMap<IpAddr, Unauthentic>,
}

/// Datagrams from one peer address that failed authentication.
#[derive(Debug, Default, Clone, Copy)]
struct Unauthentic {
    total: u64,
    last: Option<Instant>,
    pending: u64,
}

impl Tally {
    /// Counts `reject`; true when it is the first since the last report.
    fn reject(&mut self, reject: Reject) -> bool {
        self.reject_many(reject, 1)
    }

    /// Counts `n` datagrams the kernel dropped on a full buffer of a peers' or
    /// routine socket.
    fn overflowed(&mut self, n: u64) {
        self.overflow += n;
        self.overflow_pending += n;
    }

    /// Counts `n` datagrams dropped for `reject`; true when they are the first since
    /// the last report.
    fn reject_many(&mut self, reject: Reject, n: u64) -> bool {
        let first = self.pending.is_empty();
        let key = reject.as_str();
        self.rejected.entry(key).or_insert((reject, 0)).1 += n;
        self.pending.entry(key).or_insert((reject, 0)).1 += n;
        first
    }

    fn total(&self) -> u64 {
        self.rejected.values().map(|(_, n)| n).sum::<u64>() + self.overflow
    }
}

/// The loop's view of what the links dropped, and the filter they apply.
pub struct Intake {
    filter: watch::Sender<Arc<Filter>>,
    /// The peers' socket of each link whose datagrams the kernel sorts (the link's
    /// number and name), to sort them again by a reloaded configuration's addresses.
    steered: Vec<(usize, String, Arc<HeartbeatSocket>)>,
    /// Each link's name and tally, for the links this node listens on.
    tallies: Vec<(String, Arc<Mutex<Tally>>)>,
    reported: Option<Instant>,
}

/// What reading the links gave the loop.
#[expect(
    clippy::large_enum_variant,
    reason = "if boxed, every heartbeat would allocate; it is moved a few times and dropped"
)]
pub enum Received {
    Heartbeat(Datagram),
    /// The first datagram dropped since the last report, so that the first of a
    /// burst is logged at once, as the machine logs its own rejections.
    Dropped,
}

/// The heartbeat links as the loop reads them.
pub struct Datagrams {
    links: Vec<Link>,
    filter: watch::Receiver<Arc<Filter>>,
    /// Longer than any valid packet: anything longer is junk, cut here and then
    /// rejected by the decoder for its length.
    buf: Box<[u8]>,
    /// Room for the kernel's count of the socket's drops.
    control: [u8; CONTROL],
    /// The link to read first next time, so that no link is always served last.
    next: usize,
    /// In front of the links' sockets: a wake-up of the loop by its deadline
    /// polls none of them (see `gate`).
    gate: Gate,
    /// Each link's socket for routine heartbeats, where the kernel sorts them.
    deferred: Vec<Deferred>,
    /// Routine heartbeats read at one wake-up, put in the order they arrived in
    /// across the links; kept to reuse its room.
    arrived: Vec<(Instant, usize, Datagram)>,
}

/// Room for an SO_RXQ_OVFL control message (a u32) and an SO_TIMESTAMPNS one (a
/// timespec) on any 64-bit target.
const CONTROL: usize = 64;

/// A link's socket for a quiet standby's routine heartbeats (see `steer::Routine`).
/// It is read at every wake-up of the loop, before anything else, and never wakes
/// the loop itself: the active peer's routine heartbeats wait in it for the next
/// deadline (a peer's `warn`, the node's own heartbeat), when they are dated by
/// their arrival, so the peer is judged exactly as if each had been read at once.
struct Deferred {
    link: usize,
    name: String,
    socket: Arc<std::net::UdpSocket>,
    tally: Arc<Mutex<Tally>>,
    /// What the kernel sorts to `socket` now, if anything.
    installed: Option<Routine>,
    /// The program was replaced with a reload's, or could not be attached: sort
    /// again, whatever is wanted, from `retry_at` on.
    resort: bool,
    retry_at: Option<Instant>,
    /// Until then `socket` is read although nothing is sorted to it any more.
    draining_until: Option<Instant>,
    /// Until then the link reads all its peers' heartbeats at once (see [`DISTRUST`]).
    distrusted_until: Option<Instant>,
    kernel_drops: u32,
    /// When `socket` was last read empty, on both clocks: what it holds now
    /// arrived after that (see [`arrival`]).
    emptied: Option<Moment>,
}

/// One moment on the loop's clock and on the wall clock.
type Moment = (Instant, SystemTime);

/// One of a link's sockets and what its reading keeps.
struct Link {
    link: usize,
    /// The socket the kernel sorts strangers' datagrams to (see `steer`): what it
    /// drops is theirs.
    strangers: bool,
    socket: Arc<HeartbeatSocket>,
    tally: Arc<Mutex<Tally>>,
    /// The kernel's count of datagrams the socket dropped, as last seen.
    kernel_drops: u32,
    /// Strangers' datagrams decoded since `second`; see [`DIAGNOSED`].
    second: Instant,
    diagnosed: u32,
    /// Datagrams read since `window`; see [`BURST`].
    window: Instant,
    read: u32,
    /// While the link rests, the end of its rest.
    resting: Option<Pin<Box<Sleep>>>,
}

/// Sets up reading on each socket (a link without one is not read).
pub fn start(config: &Config, me: usize, sockets: &[Option<LinkSockets>]) -> (Intake, Datagrams) {
    let (filter, filtering) = watch::channel(Arc::new(Filter::new(config, me)));
    let mut tallies = Vec::new();
    let mut links = Vec::new();
    let mut steered = Vec::new();
    let mut deferred = Vec::new();
    for (link, sockets) in sockets.iter().enumerate() {
        let Some(sockets) = sockets else { continue };
        let tally = Arc::new(Mutex::new(Tally::default()));
        let name = config.links.get(link).cloned().unwrap_or_default();
        if sockets.strangers.is_some() {
            steered.push((link, name.clone(), Arc::clone(&sockets.peers)));
        }
        let strangers = sockets.strangers.iter().map(|socket| (socket, true));
        for (socket, strangers) in std::iter::once((&sockets.peers, false)).chain(strangers) {
            // Without it the drops below are not counted; the heartbeats still flow.
            if let Err(err) = setsockopt(socket.get_ref(), sockopt::RxqOvfl, &1) {
                warn!(
                    link = %name,
                    "the socket's drops will be counted only once a second: {err}"
                );
            }
            links.push(Link::new(
                link,
                strangers,
                Arc::clone(socket),
                Arc::clone(&tally),
            ));
        }
        if let Some(socket) = &sockets.routine {
            deferred.push(Deferred {
                link,
                name: name.clone(),
                socket: Arc::clone(socket),
                tally: Arc::clone(&tally),
                installed: None,
                resort: false,
                retry_at: None,
                draining_until: None,
                distrusted_until: None,
                kernel_drops: 0,
                emptied: None,
            });
        }
        tallies.push((name, tally));
    }
    let intake = Intake {
        filter,
        steered,
        tallies,
        reported: None,
    };
    let datagrams = Datagrams {
        links,
        filter: filtering,
        buf: vec![0u8; heartbeat::MAX_LEN * 2 + 1].into_boxed_slice(),
        control: [0; CONTROL],
        next: 0,
        gate: Gate::new(),
        deferred,
        arrived: Vec::new(),
    };
    (intake, datagrams)
}

impl Intake {
    /// Filters with a reloaded configuration from now on.
    pub fn refilter(&self, config: &Config, me: usize) {
        self.filter.send_replace(Arc::new(Filter::new(config, me)));
        for (link, name, socket) in &self.steered {
            if let Err(err) = listen::resteer(socket, &listen::peers_on(config, me, *link)) {
                // The old sorting stays: a moved peer's heartbeats still reach the
                // filter, from the strangers' socket, only without the shelter.
                warn!(
                    link = %name,
                    "cannot sort the link's datagrams by the new addresses: {err}"
                );
            }
        }
    }

    /// What was dropped since the last report, as the machine reports its own
    /// rejections, if there is any and the last report is [`REPORT_EVERY`] ago.
    /// Datagrams the kernel dropped are logged here too.
    pub fn report(&mut self, now: Instant) -> Option<Event> {
        if let Some(last) = self.reported
            && now.saturating_duration_since(last) < REPORT_EVERY
        {
            return None;
        }
        let mut counts: BTreeMap<&'static str, (Reject, u64)> = BTreeMap::new();
        for (link, tally) in &self.tallies {
            let Ok(mut tally) = tally.lock() else {
                continue;
            };
            for (key, (reject, n)) in std::mem::take(&mut tally.pending) {
                counts.entry(key).or_insert((reject, 0)).1 += n;
            }
            for (from, seen) in &mut tally.unauthentic {
                let refused = std::mem::take(&mut seen.pending);
                if refused == 0 {
                    continue;
                }
                let filter = self.filter.borrow();
                let peer = filter.name_at(from, link).unwrap_or("a peer");
                let heartbeats = if refused == 1 {
                    "heartbeat"
                } else {
                    "heartbeats"
                };
                warn!(
                    link = %link,
                    "{refused} {heartbeats} from {peer}'s address {from} failed authentication: \
                     if {peer} runs, the two nodes' key files differ (compare them), or \
                     someone sends in its name"
                );
                self.reported = Some(now);
            }
            let overflow = std::mem::take(&mut tally.overflow_pending);
            if overflow > 0 {
                warn!(
                    link = %link,
                    "{overflow} datagrams dropped on arrival: the link's buffer was full \
                     (a flood, or the loop fell behind)"
                );
                self.reported = Some(now);
            }
        }
        if counts.is_empty() {
            return None;
        }
        self.reported = Some(now);
        Some(Event::Rejected {
            counts: counts.into_values().collect(),
        })
    }

    /// Adds what the links dropped to the machine's counters: each reason to
    /// `rejected`, and each link's total to `dropped`.
    pub fn count_into(&self, counters: &mut Counters) {
        for (link, tally) in &self.tallies {
            let Ok(tally) = tally.lock() else { continue };
            for (reason, (_, n)) in &tally.rejected {
                match counters.rejected.iter_mut().find(|(r, _)| r == reason) {
                    Some((_, total)) => *total += n,
                    None => counters.rejected.push(((*reason).to_string(), *n)),
                }
            }
            // Summed over the links like every other reason: one series per reason,
            // or the metrics would repeat a label set, which scrapers refuse.
            if tally.overflow > 0 {
                match counters.rejected.iter_mut().find(|(r, _)| r == QUEUE_FULL) {
                    Some((_, total)) => *total += tally.overflow,
                    None => counters
                        .rejected
                        .push((QUEUE_FULL.to_string(), tally.overflow)),
                }
            }
            counters.dropped.push((link.clone(), tally.total()));
            counters.read_late.push((link.clone(), tally.read_late));
        }
    }

    /// How many datagrams from `address`, a peer's address on `link`, failed
    /// authentication, and how long ago the last did, at `now`.
    pub fn unauthentic(
        &self,
        link: &str,
        address: IpAddr,
        now: Instant,
    ) -> (u64, Option<Duration>) {
        let Some((_, tally)) = self.tallies.iter().find(|(name, _)| name == link) else {
            return (0, None);
        };
        let Ok(tally) = tally.lock() else {
            return (0, None);
        };
        tally.unauthentic.get(&address).map_or((0, None), |seen| {
            (
                seen.total,
                seen.last.map(|last| now.saturating_duration_since(last)),
            )
        })
    }

    /// The links on which the kernel sets the active peer's routine heartbeats
    /// aside now.
    pub fn reading_late(&self) -> Vec<String> {
        (self.tallies.iter())
            .filter(|(_, tally)| tally.lock().is_ok_and(|tally| tally.setting_aside))
            .map(|(link, _)| link.clone())
            .collect()
    }
}

/// The reason counted for datagrams the kernel dropped on a full socket buffer.
const QUEUE_FULL: &str = "queue full";

impl Datagrams {
    /// The next heartbeat from any link, taking the links in turn; None when this
    /// node has no link to read. The links are read only after one of their
    /// sockets (or a rest, see [`BURST`]) woke the loop, or gave a datagram the last
    /// time: at a 10 ms interval most of an active node's wake-ups are its
    /// deadline's, and polling each socket's readiness on those was about an
    /// eighth of the instructions of its turn, SHA-256 aside.
    pub async fn recv(&mut self) -> Option<Received> {
        std::future::poll_fn(|cx| {
            let (gate, mut poll) = self.behind_gate();
            gate.poll(cx, |cx| poll(cx))
        })
        .await
    }

    /// What is ready on the links now, without waiting: the loop takes the
    /// heartbeats that arrived together in one turn. The sockets are polled with
    /// the gate's waker, which they must always hold: one that found nothing
    /// still opens the gate, and wakes the loop, when a datagram comes.
    pub fn try_recv(&mut self) -> Option<Received> {
        let (gate, mut poll) = self.behind_gate();
        match poll(&mut Context::from_waker(gate.waker())) {
            Poll::Ready(received) => received,
            Poll::Pending => None,
        }
    }

    /// Learns what the kernel dropped from each socket since it last said. A
    /// datagram read brings the count as it stood when that datagram was queued, so
    /// the drops at the end of a flood would wait for the next datagram; asked for
    /// about once a second, they are counted within a second and a quarter.
    pub fn learn_drops(&mut self) {
        for link in &mut self.links {
            if let Some(drops) = kernel_drops(link.socket.get_ref()) {
                link.count_kernel_drops(drops);
            }
        }
    }

    /// Whether a link's routine socket may hold heartbeats: the loop then reads
    /// them first at every wake-up ([`Datagrams::take_deferred`]).
    pub fn deferring(&self) -> bool {
        (self.deferred.iter()).any(|d| d.installed.is_some() || d.draining_until.is_some())
    }

    /// Reads the routine heartbeats that wait and gives each, in the order they
    /// arrived in across the links, to `take` with its arrival time (`now` at the
    /// latest). A datagram that fails the filter is counted as any other, and stops
    /// the link's routine sorting for [`DISTRUST`]; so does one that `take` says
    /// the machine refused (a recording of the active peer's, which passes the
    /// filter: a few hundred of them sent between two wake-ups would fill the
    /// socket and leave the peer's own heartbeats to the kernel's drops).
    pub fn take_deferred(&mut self, now: Instant, mut take: impl FnMut(Datagram, Instant) -> bool) {
        let Datagrams {
            deferred,
            filter,
            buf,
            control,
            arrived,
            ..
        } = self;
        let real_now = wall_clock_at(now);
        for d in deferred.iter_mut() {
            let before = arrived.len();
            if d.installed.is_none() {
                match d.draining_until {
                    Some(until) if now < until => {}
                    Some(_) => {
                        // The last read of a drain: what it leaves came after it.
                        d.draining_until = None;
                    }
                    None => continue,
                }
            }
            // Only a read that ends empty moves the bound: one that stops short (a
            // full burst, an error) leaves the last empty one for what waits.
            let emptied = d.emptied;
            for _ in 0..ROUTINE_BURST {
                let read = read_datagram(&*d.socket, buf, control, MsgFlags::MSG_DONTWAIT);
                let Read {
                    len,
                    from,
                    drops,
                    stamp,
                } = match read {
                    Ok(read) => read,
                    Err(Errno::EAGAIN) => {
                        d.emptied = Some((now, real_now));
                        break;
                    }
                    Err(err) => {
                        d.distrust(
                            now,
                            format_args!("reading its routine socket failed: {err}"),
                        );
                        break;
                    }
                };
                if let Some(drops) = drops
                    && d.count_kernel_drops(drops)
                {
                    d.distrust(now, format_args!("the kernel dropped routine heartbeats"));
                }
                let Some(from) = from else { continue };
                let verdict = filter.borrow().check(d.link, from, &buf[..len]);
                match verdict {
                    Ok(packet) => {
                        let heard = match stamp {
                            Some(stamp) => arrival((now, real_now), stamp, emptied),
                            None => now,
                        };
                        let datagram = Datagram {
                            link: d.link,
                            from,
                            packet,
                        };
                        arrived.push((heard, arrived.len(), datagram));
                    }
                    Err(reject) => {
                        if let Ok(mut tally) = d.tally.lock() {
                            tally.reject(reject);
                        }
                        d.distrust(
                            now,
                            format_args!("a datagram sorted as routine was refused ({reject})"),
                        );
                    }
                }
            }
            let read = (arrived.len() - before) as u64;
            if read > 0
                && let Ok(mut tally) = d.tally.lock()
            {
                tally.read_late += read;
            }
        }
        // Unstable, so no scratch buffer and no allocation; the order of reading
        // breaks ties, so a link's heartbeats keep theirs.
        arrived.sort_unstable_by_key(|(heard, read, _)| (*heard, *read));
        for (heard, _, datagram) in arrived.drain(..) {
            let link = datagram.link;
            if take(datagram, heard)
                && let Some(d) = deferred.iter_mut().find(|d| d.link == link)
            {
                d.distrust(
                    now,
                    format_args!("the machine refused a heartbeat sorted as routine"),
                );
            }
        }
    }

    /// Has the kernel sort the routine heartbeats of `quiet_toward`, the active
    /// peer this node is quiet toward (its name and standing), to each link's
    /// routine socket, or nothing when it is None; called after every turn of the
    /// loop, and a system call only when that changes.
    pub fn sort_routine(&mut self, quiet_toward: Option<(&str, Standing)>) {
        // The active node's case at every turn: nothing wanted, nothing to undo.
        let idle =
            |d: &Deferred| d.installed.is_none() && !d.resort && d.distrusted_until.is_none();
        if quiet_toward.is_none()
            && self.deferred.iter().all(idle)
            && !self.filter.has_changed().unwrap_or(false)
        {
            return;
        }
        let now = Instant::now();
        // A reload replaced the programs (`Intake::refilter`) and the addresses.
        if self.filter.has_changed().unwrap_or(false) {
            self.filter.borrow_and_update();
            for d in &mut self.deferred {
                d.resort = true;
            }
        }
        for d in &mut self.deferred {
            if d.distrusted_until.is_some_and(|until| now >= until) {
                d.distrusted_until = None;
            }
            let wanted = match (quiet_toward, d.distrusted_until, u8::try_from(d.link)) {
                (Some((name, standing)), None, Ok(link)) => {
                    (self.filter.borrow().address(name, d.link)).map(|from| Routine {
                        from,
                        header: standing.header(link),
                    })
                }
                _ => None,
            };
            if wanted == d.installed && !d.resort {
                continue;
            }
            if d.retry_at.is_some_and(|at| now < at) {
                continue;
            }
            let peers = self.filter.borrow().peers_on(d.link);
            match steer::attach(&*d.socket, &steer::program(&peers, wanted.as_ref())) {
                Ok(()) => {
                    if d.installed.is_some() && wanted.is_none() {
                        d.draining_until = Some(now + DRAIN_FOR);
                    }
                    if let Ok(mut tally) = d.tally.lock() {
                        tally.setting_aside = wanted.is_some();
                    }
                    d.installed = wanted;
                    d.resort = false;
                    d.retry_at = None;
                }
                Err(err) => {
                    // What the kernel sorts now is not known: the socket is read at
                    // every wake-up until the next try, [`DISTRUST`] later.
                    warn!(
                        link = %d.name,
                        "cannot sort the link's routine heartbeats: {err}"
                    );
                    d.distrusted_until = Some(now + DISTRUST);
                    d.retry_at = Some(now + DISTRUST);
                    d.draining_until = Some(now + DISTRUST + DRAIN_FOR);
                    d.resort = true;
                }
            }
        }
    }

    /// The links' gate, and a poll of the links behind it (see `poll_links`).
    fn behind_gate(
        &mut self,
    ) -> (
        &Gate,
        impl FnMut(&mut Context<'_>) -> Poll<Option<Received>> + '_,
    ) {
        let Datagrams {
            links,
            filter,
            buf,
            control,
            next,
            gate,
            ..
        } = self;
        (gate, move |cx| {
            poll_links(links, next, filter, buf, control, cx)
        })
    }
}

/// Reads the next heartbeat from any of `links`, starting at `next` and taking
/// them in turn; Pending once none has one, with `cx`'s waker held by each
/// socket (or its rest).
fn poll_links(
    links: &mut [Link],
    next: &mut usize,
    filter: &watch::Receiver<Arc<Filter>>,
    buf: &mut [u8],
    control: &mut [u8; CONTROL],
    cx: &mut Context<'_>,
) -> Poll<Option<Received>> {
    let n = links.len();
    if n == 0 {
        return Poll::Ready(None);
    }
    let first = *next;
    // The next call starts one link on whatever this one gives: a link that ran
    // out of the loop's budget (tokio's, per turn) before resting would
    // otherwise be read first again and take the whole budget every turn.
    *next = (first + 1) % n;
    for i in 0..n {
        let k = (first + i) % n;
        if let Poll::Ready(received) = poll_link(&mut links[k], filter, buf, control, cx) {
            *next = (k + 1) % n;
            return Poll::Ready(Some(received));
        }
    }
    Poll::Pending
}

/// Reads `link` until a heartbeat passes the filter, the first drop since the
/// last report, or nothing is left to read.
fn poll_link(
    link: &mut Link,
    filter: &watch::Receiver<Arc<Filter>>,
    buf: &mut [u8],
    control: &mut [u8; CONTROL],
    cx: &mut Context<'_>,
) -> Poll<Received> {
    loop {
        if let Some(rest) = link.resting.as_mut() {
            ready!(rest.as_mut().poll(cx));
            link.resting = None;
            link.window = Instant::now();
            link.read = 0;
        }
        let mut ready = match ready!(link.socket.poll_read_ready(cx)) {
            Ok(ready) => ready,
            Err(err) => {
                link.rest_after_error(&err);
                continue;
            }
        };
        // On WouldBlock the guard forgets the readiness, so the next poll waits.
        let received =
            ready.try_io(|socket| Ok(read_datagram(socket, buf, control, MsgFlags::empty())?));
        let Read {
            len, from, drops, ..
        } = match received {
            Ok(Ok(received)) => received,
            Ok(Err(err)) => {
                link.rest_after_error(&err);
                continue;
            }
            Err(_would_block) => continue,
        };
        if let Some(drops) = drops {
            link.count_kernel_drops(drops);
        }
        link.read += 1;
        if link.read >= link.burst() {
            let spent = link.window.elapsed();
            if spent < REST {
                link.resting = Some(Box::pin(tokio::time::sleep(REST - spent)));
            } else {
                link.window = Instant::now();
                link.read = 0;
            }
        }
        let Some(from) = from else { continue };
        // Whether `from` is a peer's address here: also what a wrong tag is
        // counted against (see `Unauthentic`).
        let (known, verdict) = {
            let filter = filter.borrow();
            let known = filter.knows(link.link, from);
            let verdict = if known || link.diagnose() {
                filter.check(link.link, from, &buf[..len])
            } else {
                Err(Reject::WrongSource)
            };
            (known, verdict)
        };
        match verdict {
            Ok(packet) => {
                return Poll::Ready(Received::Heartbeat(Datagram {
                    link: link.link,
                    from,
                    packet,
                }));
            }
            Err(reject) => {
                if let Ok(mut tally) = link.tally.lock() {
                    if known && reject == Reject::Decode(DecodeError::Tag) {
                        let seen = tally.unauthentic.entry(from).or_default();
                        seen.total += 1;
                        seen.pending += 1;
                        seen.last = Some(Instant::now());
                    }
                    if tally.reject(reject) {
                        return Poll::Ready(Received::Dropped);
                    }
                }
            }
        }
    }
}

impl Link {
    fn new(
        link: usize,
        strangers: bool,
        socket: Arc<HeartbeatSocket>,
        tally: Arc<Mutex<Tally>>,
    ) -> Link {
        let now = Instant::now();
        Link {
            link,
            strangers,
            socket,
            tally,
            kernel_drops: 0,
            second: now,
            diagnosed: 0,
            window: now,
            read: 0,
            resting: None,
        }
    }

    /// Datagrams read per [`REST`] at most.
    fn burst(&self) -> u32 {
        if self.strangers {
            STRANGERS_BURST
        } else {
            BURST
        }
    }

    /// Whether a stranger's datagram may still be decoded this second.
    fn diagnose(&mut self) -> bool {
        let now = Instant::now();
        if now.saturating_duration_since(self.second) >= Duration::from_secs(1) {
            self.second = now;
            self.diagnosed = 0;
        }
        self.diagnosed += 1;
        self.diagnosed <= DIAGNOSED
    }

    /// Counts what the kernel dropped since the last count it gave.
    fn count_kernel_drops(&mut self, count: u32) {
        let Some(new) = dropped_since(&mut self.kernel_drops, count) else {
            return;
        };
        let Ok(mut tally) = self.tally.lock() else {
            return;
        };
        if self.strangers {
            // Sorted to this socket by their address: no peer's on the link.
            tally.reject_many(Reject::WrongSource, new);
        } else {
            tally.overflowed(new);
        }
    }

    fn rest_after_error(&mut self, err: &std::io::Error) {
        warn!(link = self.link, "heartbeat receive failed: {err}");
        self.resting = Some(Box::pin(tokio::time::sleep(AFTER_ERROR)));
    }
}

impl Deferred {
    /// Stops the link's routine sorting for [`DISTRUST`] from `now`, and says so at
    /// the start of each such stretch: a steady trickle of forgeries logs one line
    /// every [`DISTRUST`], not one per datagram.
    fn distrust(&mut self, now: Instant, why: std::fmt::Arguments<'_>) {
        if self.distrusted_until.is_none_or(|until| now >= until) {
            warn!(
                link = %self.name,
                "{why}: the link's heartbeats are all read at once, none set aside, until {}s \
                 pass without another",
                DISTRUST.as_secs()
            );
        }
        self.distrusted_until = Some(now + DISTRUST);
    }

    /// Takes the kernel's count of the socket's drops; true if it grew.
    fn count_kernel_drops(&mut self, count: u32) -> bool {
        let Some(new) = dropped_since(&mut self.kernel_drops, count) else {
            return false;
        };
        if let Ok(mut tally) = self.tally.lock() {
            tally.overflowed(new);
        }
        true
    }
}

/// When a datagram that the kernel stamped `stamp` (on the wall clock) arrived, on
/// the loop's clock: `now` less its age at `real_now`, never after `now` and, when
/// the socket was last read empty at `emptied`, never before that.
///
/// A step of the wall clock between the arrival and the read would misdate it by
/// the step: back, and a dead peer's last heartbeat would look up to a wake-up
/// younger than it is, its death counted that much late. When the two clocks
/// disagree by more than a slew explains since `emptied`, the datagram is dated
/// then, the earliest it can have come: the peer looks older than it is by less
/// than the gap between two reads (`warn` at most), a late warning at worst.
fn arrival(now: Moment, stamp: TimeSpec, emptied: Option<Moment>) -> Instant {
    let (now, real_now) = now;
    if let Some((then, real_then)) = emptied {
        let passed = now.saturating_duration_since(then);
        let stepped = match real_now.duration_since(real_then) {
            Ok(real) => real.abs_diff(passed) > STEP_TOLERANCE + passed / 1000,
            Err(_) => true,
        };
        if stepped {
            return then;
        }
    }
    let earliest = emptied.map_or(now, |(then, _)| then);
    let (Ok(secs), Ok(nanos)) = (
        u64::try_from(stamp.tv_sec()),
        u32::try_from(stamp.tv_nsec()),
    ) else {
        return earliest;
    };
    let Some(stamped) = UNIX_EPOCH.checked_add(Duration::new(secs, nanos)) else {
        return earliest;
    };
    let age = real_now.duration_since(stamped).unwrap_or(Duration::ZERO);
    let at = now.checked_sub(age).unwrap_or(now);
    emptied.map_or(at, |(then, _)| at.max(then))
}

/// The wall clock's reading at `now`, a moment on the loop's clock read a little
/// earlier. Read as is, it would be off by whatever the thread lost since `now`
/// (preempted on a busy host), which [`arrival`] would take for a step of the wall
/// clock. So it is read between two readings of the loop's clock, again when those
/// lie more than [`PAIR_SPREAD`] apart (the thread lost the processor between
/// them), and taken back to `now` by the loop's clock.
fn wall_clock_at(now: Instant) -> SystemTime {
    let read = || {
        let before = Instant::now();
        let real = SystemTime::now();
        let spread = Instant::now().saturating_duration_since(before);
        (before, real, spread)
    };
    let (mut before, mut real, mut spread) = read();
    for _ in 0..2 {
        if spread <= PAIR_SPREAD {
            break;
        }
        (before, real, spread) = read();
    }
    let since = before.saturating_duration_since(now);
    real.checked_sub(since).unwrap_or(real)
}

/// Two adjacent clock readings lie well within this unless the thread lost the
/// processor between them: far below [`STEP_TOLERANCE`].
const PAIR_SPREAD: Duration = Duration::from_micros(50);

/// How far the wall clock may drift from the loop's between two reads of a routine
/// socket, beyond a thousandth of the time between them (NTP slews at most half
/// that), before [`arrival`] takes it for a step.
const STEP_TOLERANCE: Duration = Duration::from_millis(1);

/// One datagram as [`read_datagram`] read it into the buffer it was given.
struct Read {
    len: usize,
    from: Option<IpAddr>,
    /// The socket's count of drops (SO_RXQ_OVFL), as it stood when the datagram
    /// was queued.
    drops: Option<u32>,
    /// When the kernel stamped its arrival (SO_TIMESTAMPNS), on the wall clock.
    stamp: Option<TimeSpec>,
}

/// Reads one datagram from `socket` into `buf`, with what its control messages
/// say. A truncated control message only loses those, not the datagram.
fn read_datagram(
    socket: &impl AsRawFd,
    buf: &mut [u8],
    control: &mut [u8; CONTROL],
    flags: MsgFlags,
) -> nix::Result<Read> {
    let mut iov = [std::io::IoSliceMut::new(buf)];
    let msg =
        recvmsg::<SockaddrStorage>(socket.as_raw_fd(), &mut iov, Some(&mut control[..]), flags)?;
    let mut read = Read {
        len: msg.bytes,
        from: msg.address.and_then(|a| ip_of(&a)),
        drops: None,
        stamp: None,
    };
    for cmsg in msg.cmsgs().into_iter().flatten() {
        match cmsg {
            ControlMessageOwned::RxqOvfl(count) => read.drops = Some(count),
            ControlMessageOwned::ScmTimestampns(at) => read.stamp = Some(at),
            _ => {}
        }
    }
    Ok(read)
}

/// How many datagrams a socket dropped since `last`, its count as last seen, given
/// `count`, the kernel's count now, which becomes `last`; None if none. The count
/// is the socket's total as it stood when a datagram was queued, so it never goes
/// back; a wrapped u32 still counts forward.
fn dropped_since(last: &mut u32, count: u32) -> Option<u64> {
    let new = count.wrapping_sub(*last);
    if new == 0 || new > u32::MAX / 2 {
        return None;
    }
    *last = count;
    Some(u64::from(new))
}

/// The socket's count of the datagrams the kernel dropped (SO_MEMINFO, Linux 4.12
/// and later), if the kernel gives it.
fn kernel_drops(socket: &impl AsRawFd) -> Option<u32> {
    const DROPS: usize = libc::SK_MEMINFO_DROPS as usize;
    let mut info = [0u32; DROPS + 1];
    let size = std::mem::size_of_val(&info) as libc::socklen_t;
    let mut len = size;
    // SAFETY: `info` and `len` outlive the call and `len` is `info`'s size: the
    // kernel writes at most that much and says how much it wrote in `len`.
    let rc = unsafe {
        libc::getsockopt(
            socket.as_raw_fd(),
            libc::SOL_SOCKET,
            libc::SO_MEMINFO,
            info.as_mut_ptr().cast(),
            &mut len,
        )
    };
    (rc == 0 && len >= size).then_some(info[DROPS])
}

/// The IP address of a datagram's source.
fn ip_of(address: &SockaddrStorage) -> Option<IpAddr> {
    if let Some(v4) = address.as_sockaddr_in() {
        Some(IpAddr::V4(v4.ip()))
    } else {
        address.as_sockaddr_in6().map(|v6| IpAddr::V6(v6.ip()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The wall clock as the kernel stamps it, `at` after `base`.
    fn stamp(base: SystemTime, at: Duration) -> TimeSpec {
        let since = (base + at).duration_since(UNIX_EPOCH).unwrap();
        TimeSpec::from_duration(since)
    }

    /// A thread that lost the processor after reading the loop's clock (the sleep
    /// stands for it) still gets the wall clock of that moment, not a reading 20 ms
    /// off that `arrival` would take for a step.
    #[test]
    fn the_wall_clock_is_read_for_the_moment_given() {
        let (now, real) = (Instant::now(), SystemTime::now());
        std::thread::sleep(Duration::from_millis(20));
        let at = wall_clock_at(now);
        let off = at.duration_since(real).unwrap_or_else(|e| e.duration());
        assert!(off < STEP_TOLERANCE, "{off:?} off");
    }

    /// With the clocks in step, a datagram is dated by its stamp, between the last
    /// read that emptied the socket and now.
    #[test]
    fn a_datagram_is_dated_by_its_stamp_between_the_last_empty_read_and_now() {
        let now = Instant::now();
        let real = SystemTime::now();
        let ms = Duration::from_millis;
        let emptied = Some((now - ms(20), real - ms(20)));
        assert_eq!(arrival((now, real), stamp(real, ms(0)), emptied), now);
        let five_ago = stamp(real - ms(5), ms(0));
        assert_eq!(arrival((now, real), five_ago, emptied), now - ms(5));
        assert_eq!(arrival((now, real), five_ago, None), now - ms(5));
        // Stamped before the socket was last found empty: it cannot have been.
        let early = stamp(real - ms(30), ms(0));
        assert_eq!(arrival((now, real), early, emptied), now - ms(20));
        // A slew of a few hundred parts per million is no step.
        let slewed = Some((now - ms(20), real - ms(20) + Duration::from_micros(10)));
        assert_eq!(arrival((now, real), five_ago, slewed), now - ms(5));
    }

    /// The wall clock stepped back between a heartbeat's arrival and its read: its
    /// stamp would make it look younger than it is, up to the time since the last
    /// read, and a dead peer's death would count late. It is dated at the last
    /// empty read, the earliest it can have come, and never later.
    #[test]
    fn a_step_of_the_wall_clock_dates_a_datagram_at_the_last_empty_read() {
        let now = Instant::now();
        let ms = Duration::from_millis;
        let before = SystemTime::now();
        let emptied = Some((now - ms(20), before - ms(20)));
        // Arrived 15 ms ago on the old clock; the clock then went back 1 s.
        let arrived = stamp(before - ms(15), ms(0));
        let back = before - Duration::from_secs(1);
        assert_eq!(arrival((now, back), arrived, emptied), now - ms(20));
        // Back by less than the age: without the check it would read 5 ms old.
        let back = before - ms(10);
        assert_eq!(arrival((now, back), arrived, emptied), now - ms(20));
        // Forward: without the check it would read 1.015 s old.
        let forward = before + Duration::from_secs(1);
        assert_eq!(arrival((now, forward), arrived, emptied), now - ms(20));
    }

    fn intake(links: &[(&str, Tally)]) -> Intake {
        let filter = Filter {
            cluster: "c".to_string(),
            signer: Signer::new(b"key"),
            links: links.iter().map(|(name, _)| name.to_string()).collect(),
            peers: Vec::new(),
        };
        Intake {
            filter: watch::channel(Arc::new(filter)).0,
            steered: Vec::new(),
            tallies: links
                .iter()
                .map(|(name, tally)| {
                    let copy = Tally {
                        rejected: tally.rejected.clone(),
                        pending: BTreeMap::new(),
                        overflow: tally.overflow,
                        ..Tally::default()
                    };
                    (name.to_string(), Arc::new(Mutex::new(copy)))
                })
                .collect(),
            reported: None,
        }
    }

    #[test]
    fn each_reason_is_counted_once_whatever_the_links_that_dropped_it() {
        let mut lan = Tally {
            overflow: 3,
            ..Tally::default()
        };
        lan.reject(Reject::WrongSource);
        let mut crossover = Tally {
            overflow: 4,
            ..Tally::default()
        };
        crossover.reject(Reject::WrongSource);
        crossover.reject(Reject::WrongSource);
        let intake = intake(&[("lan", lan), ("crossover", crossover)]);
        let mut counters = Counters::default();
        intake.count_into(&mut counters);
        let mut reasons: Vec<&str> = counters.rejected.iter().map(|(r, _)| r.as_str()).collect();
        reasons.sort_unstable();
        reasons.dedup();
        assert_eq!(
            reasons.len(),
            counters.rejected.len(),
            "{:?}",
            counters.rejected
        );
        let full = counters.rejected.iter().find(|(r, _)| r == QUEUE_FULL);
        assert_eq!(full.map(|(_, n)| *n), Some(7), "{:?}", counters.rejected);
        assert_eq!(
            counters.dropped,
            [("lan".to_string(), 4), ("crossover".to_string(), 6)]
        );
    }

    #[test]
    fn the_kernel_says_how_many_datagrams_it_dropped_without_one_to_carry_the_count() {
        let receiver = socket2::Socket::new(
            socket2::Domain::IPV4,
            socket2::Type::DGRAM,
            Some(socket2::Protocol::UDP),
        )
        .unwrap();
        // The smallest buffer the kernel allows: a few datagrams.
        receiver.set_recv_buffer_size(0).unwrap();
        receiver.set_nonblocking(true).unwrap();
        receiver
            .bind(
                &"127.0.0.1:0"
                    .parse::<std::net::SocketAddr>()
                    .unwrap()
                    .into(),
            )
            .unwrap();
        let to = receiver.local_addr().unwrap().as_socket().unwrap();
        let sender = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        for _ in 0..200 {
            sender.send_to(&[0u8; 1000], to).unwrap();
        }
        let receiver = std::net::UdpSocket::from(receiver);
        // Where the kernel leaves delivery to a thread, the last ones may come late.
        let mut queued = 0;
        let deadline = Instant::now() + Duration::from_secs(2);
        let mut drops = None;
        while Instant::now() < deadline {
            while receiver.recv(&mut [0u8; 1000]).is_ok() {
                queued += 1;
            }
            drops = kernel_drops(&receiver);
            if drops.is_some_and(|d| queued + d == 200) {
                break;
            }
            std::thread::sleep(Duration::from_millis(10));
        }
        assert!(queued < 200, "the buffer took all 200");
        assert_eq!(drops, Some(200 - queued));
    }

    #[test]
    fn what_the_strangers_socket_drops_counts_as_unexpected_source_and_older_counts_are_ignored() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap();
        let _entered = runtime.enter();
        let link = |strangers: bool| {
            let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
            socket.set_nonblocking(true).unwrap();
            Link::new(
                1,
                strangers,
                Arc::new(listen::watch_for_reading(socket).unwrap()),
                Arc::new(Mutex::new(Tally::default())),
            )
        };
        let mut strangers = link(true);
        let mut peers = link(false);
        for (link, counts) in [
            (&mut strangers, [500, 400, 700]),
            (&mut peers, [30, 20, 50]),
        ] {
            for count in counts {
                link.count_kernel_drops(count);
            }
        }
        let tally = strangers.tally.lock().unwrap();
        assert_eq!(
            tally
                .rejected
                .get("unexpected source address")
                .map(|(_, n)| *n),
            Some(700)
        );
        assert_eq!(tally.overflow, 0);
        let tally = peers.tally.lock().unwrap();
        assert!(tally.rejected.is_empty(), "{tally:?}");
        assert_eq!((tally.overflow, tally.overflow_pending), (50, 50));
    }
}
