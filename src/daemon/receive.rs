//! The receive side of the heartbeat links: one task per link reads its socket,
//! drops on the spot whatever the machine would reject whatever its state (a bad
//! length, magic, version or tag; another cluster; a node that is not a peer, or
//! not at its address on that link), and queues the rest on that link's own bounded
//! queue. The loop takes from the queues in turn.
//!
//! So junk on one link, however much, costs that link's task the work of rejecting
//! it and never takes the place of a heartbeat on another link: a LAN flooded at
//! line rate leaves the crossover's heartbeats on time. The work is small too: a
//! datagram from an address that is no peer's on the link is dropped on its address
//! alone once [`DIAGNOSED`] of them in a second were decoded and authenticated (so
//! that a stranger at a normal rate is still counted as a wrong key or another
//! cluster); only a spoofed peer address makes the task compute an HMAC. What is dropped here is
//! counted per link and per reason; the loop adds the counts to the status and logs
//! them as the machine logs its own rejections, at most every [`REPORT_EVERY`].
//! Replays and stale nonces depend on what the node has heard, so the machine judges
//! those.

use std::collections::BTreeMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::{Duration, Instant};

use tokio::net::UdpSocket;
use tokio::sync::{Notify, mpsc, watch};
use tracing::warn;

use crate::config::Config;
use crate::machine::{Event, Reject};
use crate::status::Counters;
use crate::wire::heartbeat::{self, Signer, Verified};

/// Datagrams that passed the filter and may wait on one link for the loop.
const QUEUE: usize = 64;

/// Datagrams from strangers' addresses decoded, per link and second, to count why
/// they are wrong; the rest are dropped as "unexpected source address".
const DIAGNOSED: u32 = 200;

/// The reason counted for datagrams that found their link's queue full.
const QUEUE_FULL: &str = "queue full";

/// Datagrams a link's task reads per [`REST`] at most; then it sleeps out the rest
/// of that time and the kernel drops what does not fit in the socket's buffer. The
/// task runs at realtime priority: unbounded, a flood would take a whole CPU from
/// everything else on the host (the service among them). Every peer of the largest
/// cluster at the shortest interval sends 31 in that time; a flood costs the host
/// about a twentieth of a CPU per link.
const BURST: u32 = 128;
const REST: Duration = Duration::from_millis(10);

/// Drops are logged at most this often (the machine's own rejections too).
pub const REPORT_EVERY: Duration = Duration::from_secs(10);

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
    /// Every other node's name and its addresses, link by link.
    peers: Vec<(String, Vec<Option<IpAddr>>)>,
}

impl Filter {
    pub fn new(config: &Config, me: usize) -> Filter {
        Filter {
            cluster: config.cluster.name.clone(),
            signer: Signer::new(config.key.as_bytes()),
            peers: config
                .nodes
                .iter()
                .enumerate()
                .filter(|(index, _)| *index != me)
                .map(|(_, node)| (node.name.clone(), node.addresses.clone()))
                .collect(),
        }
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
    /// Datagrams that passed the filter but found the link's queue full: the loop
    /// is behind.
    overflow: u64,
    overflow_pending: u64,
}

impl Tally {
    /// Counts `reject`; true when it is the first since the last report.
    fn reject(&mut self, reject: Reject) -> bool {
        let first = self.pending.is_empty();
        let key = reject.as_str();
        self.rejected.entry(key).or_insert((reject, 0)).1 += 1;
        self.pending.entry(key).or_insert((reject, 0)).1 += 1;
        first
    }

    fn total(&self) -> u64 {
        self.rejected.values().map(|(_, n)| n).sum::<u64>() + self.overflow
    }
}

/// The loop's side of the receivers: the filter they apply and what they dropped.
pub struct Intake {
    filter: watch::Sender<Arc<Filter>>,
    /// Each link's name and tally, for the links this node listens on.
    tallies: Vec<(String, Arc<Mutex<Tally>>)>,
    reported: Option<Instant>,
    /// Rung by a receiver on its first drop since the last report, so that the
    /// first of a burst is logged at once, as the machine logs its own.
    dropping: Arc<Notify>,
}

/// The loop's end of the links' queues.
pub struct Datagrams {
    queues: Vec<mpsc::Receiver<Datagram>>,
    /// The queue to look at first next time, so that no link is always served last.
    next: usize,
}

/// Starts a receiver task on each socket (a link without one gets none).
pub fn start(
    config: &Config,
    me: usize,
    sockets: &[Option<Arc<UdpSocket>>],
) -> (Intake, Datagrams) {
    let (filter, filtering) = watch::channel(Arc::new(Filter::new(config, me)));
    let mut tallies = Vec::new();
    let mut queues = Vec::new();
    let dropping = Arc::new(Notify::new());
    for (link, socket) in sockets.iter().enumerate() {
        let Some(socket) = socket else { continue };
        let tally = Arc::new(Mutex::new(Tally::default()));
        let (tx, rx) = mpsc::channel(QUEUE);
        let name = config.links.get(link).cloned().unwrap_or_default();
        tokio::spawn(receive(
            link,
            Arc::clone(socket),
            filtering.clone(),
            tx,
            Arc::clone(&tally),
            Arc::clone(&dropping),
        ));
        tallies.push((name, tally));
        queues.push(rx);
    }
    let intake = Intake {
        filter,
        tallies,
        reported: None,
        dropping,
    };
    (intake, Datagrams { queues, next: 0 })
}

impl Intake {
    /// Filters with a reloaded configuration from now on.
    pub fn refilter(&self, config: &Config, me: usize) {
        self.filter.send_replace(Arc::new(Filter::new(config, me)));
    }

    /// Resolves when a receiver has dropped a datagram after a quiet spell.
    pub async fn dropping(&self) {
        self.dropping.notified().await;
    }

    /// What was dropped since the last report, as the machine reports its own
    /// rejections, if there is any and the last report is [`REPORT_EVERY`] ago. Full
    /// queues are logged here too.
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
            let overflow = std::mem::take(&mut tally.overflow_pending);
            if overflow > 0 {
                warn!(
                    link = %link,
                    "{overflow} heartbeats dropped on arrival: the loop fell behind"
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

    /// Adds what the receivers dropped to the machine's counters: each reason to
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
        }
    }
}

impl Datagrams {
    /// The next datagram from any link, taking the links in turn; None once every
    /// receiver has stopped (or there is none).
    pub async fn recv(&mut self) -> Option<Datagram> {
        std::future::poll_fn(|cx| {
            let n = self.queues.len();
            let mut open = false;
            for i in 0..n {
                let k = (self.next + i) % n;
                match self.queues[k].poll_recv(cx) {
                    Poll::Ready(Some(datagram)) => {
                        self.next = (k + 1) % n;
                        return Poll::Ready(Some(datagram));
                    }
                    Poll::Ready(None) => {}
                    Poll::Pending => open = true,
                }
            }
            if open {
                Poll::Pending
            } else {
                Poll::Ready(None)
            }
        })
        .await
    }
}

async fn receive(
    link: usize,
    socket: Arc<UdpSocket>,
    filter: watch::Receiver<Arc<Filter>>,
    queue: mpsc::Sender<Datagram>,
    tally: Arc<Mutex<Tally>>,
    dropping: Arc<Notify>,
) {
    // Longer than any valid packet: anything longer is junk, cut here and then
    // rejected by the decoder for its length.
    let mut buf = vec![0u8; heartbeat::MAX_LEN * 2 + 1];
    let mut second = Instant::now();
    let mut diagnosed = 0;
    let mut window = Instant::now();
    let mut read = 0;
    loop {
        let (n, from) = match socket.recv_from(&mut buf).await {
            Ok(received) => received,
            Err(err) => {
                warn!(link, "heartbeat receive failed: {err}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        read += 1;
        if read >= BURST {
            let spent = window.elapsed();
            if spent < REST {
                tokio::time::sleep(REST - spent).await;
            }
            window = Instant::now();
            read = 0;
        }
        let verdict = {
            let filter = filter.borrow();
            if filter.knows(link, from.ip()) {
                filter.check(link, from.ip(), &buf[..n])
            } else {
                let now = Instant::now();
                if now.saturating_duration_since(second) >= Duration::from_secs(1) {
                    second = now;
                    diagnosed = 0;
                }
                diagnosed += 1;
                if diagnosed <= DIAGNOSED {
                    filter.check(link, from.ip(), &buf[..n])
                } else {
                    Err(Reject::WrongSource)
                }
            }
        };
        let packet = match verdict {
            Ok(packet) => packet,
            Err(reject) => {
                if let Ok(mut tally) = tally.lock()
                    && tally.reject(reject)
                {
                    dropping.notify_one();
                }
                continue;
            }
        };
        let datagram = Datagram {
            link,
            from: from.ip(),
            packet,
        };
        // A full queue means the loop is behind: drop rather than queue without
        // bound.
        match queue.try_send(datagram) {
            Ok(()) => {}
            Err(mpsc::error::TrySendError::Full(_)) => {
                if let Ok(mut tally) = tally.lock() {
                    tally.overflow += 1;
                    tally.overflow_pending += 1;
                }
            }
            Err(mpsc::error::TrySendError::Closed(_)) => return,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn intake(links: &[(&str, Tally)]) -> Intake {
        let filter = Filter {
            cluster: "c".to_string(),
            signer: Signer::new(b"key"),
            peers: Vec::new(),
        };
        Intake {
            filter: watch::channel(Arc::new(filter)).0,
            tallies: links
                .iter()
                .map(|(name, tally)| {
                    let copy = Tally {
                        rejected: tally.rejected.clone(),
                        pending: BTreeMap::new(),
                        overflow: tally.overflow,
                        overflow_pending: 0,
                    };
                    (name.to_string(), Arc::new(Mutex::new(copy)))
                })
                .collect(),
            reported: None,
            dropping: Arc::new(Notify::new()),
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
}
