//! The one check for every end-to-end test that moves, or could move, the VIP:
//! `Cluster::across` runs an event while the client probes the VIP and the nodes'
//! kernels are watched, and then holds both to what the rule promises.
//!
//! What it asserts, from the client (netprobe on `cl`, one probe every
//! `PROBE_INTERVAL` to the VIP, from `WARMUP` before the event until the VIP has
//! reached its last holder and `Expect::settle` more has passed):
//!
//! - **Exactly the expected responders**, in order: `[alpha]` for an event that must
//!   move nothing, `[alpha, beta]` for one move, `[beta, alpha, beta]` for a round
//!   trip. A node that answers, stops and answers again (alpha, beta, alpha) where the
//!   rule does not expect it is named as interleaved answers.
//! - **A bounded silence**: the longest time between two answered probes (measured on
//!   their send times, so it is at least one interval), and the unanswered stretches
//!   before the first and after the last answer, are at most `Expect`'s gap: a few
//!   probe intervals when the rule promises no silence or a planned move,
//!   `timing.dead` plus `DEATH_SLACK` when a node dies.
//! - No duplicate answers (one probe answered twice).
//!
//! From the kernels (`super::vipwatch`: every change of the VIP on n1 and n2, read
//! from netlink in the order the kernels made it, not sampled. An overlap is seen
//! however short it is, down to two back-to-back netlink calls about 40 µs apart, and
//! its length is measured to within a few milliseconds, typically 0.1 ms;
//! `tests/lab.rs` proves both with scripted moves):
//!
//! - **Planned moves and events that move nothing never put the VIP on both nodes.**
//!   Unplanned ones (a dead or frozen holder keeps its address) may; the overlap is
//!   reported on stderr and in `Seen`, not failed.
//! - Where the VIP ends: on the last expected holder, and for planned moves no longer
//!   on the first; when nothing may move, never on the other node and, unless the
//!   expectation allows it, never off the holder.
//!
//! Every wait is bounded: the wait for the VIP to arrive by `LIMIT`, the probe by its
//! count, the kernel watch by `vipwatch::WATCH_LIMIT`.

use std::net::Ipv4Addr;
use std::time::{Duration, Instant};

use super::cluster::{Cluster, DEAD, LIMIT, POLL};
use super::vipwatch::{NODES, VipHistory, VipWatch};
use super::{Probe, ProbeSummary, VIP};

/// Time between two probes of the client.
pub const PROBE_INTERVAL: Duration = Duration::from_millis(10);
/// An answer later than this counts as lost.
pub const PROBE_TIMEOUT: Duration = Duration::from_millis(200);
/// The client probes this long before the event, so it has heard the holder.
pub const WARMUP: Duration = Duration::from_millis(150);
/// Longest silence when the rule promises none, or a planned move (release, then
/// take over on the released heartbeat): ten probe intervals. A planned move costs the
/// client one or two (the benchmark, and 16 to 30 ms in these tests); the rest is slack
/// for a shared two-core machine that builds and tests in parallel. A third of `dead`,
/// so a peer that waited for `dead` instead of the released heartbeat fails it.
pub const SHORT_GAP: Duration = Duration::from_millis(100);
/// Added to `dead` for the longest silence when the holder dies: the client's last
/// answer may come a probe interval before the death, then beta's add and
/// announcement, the client's switch to beta's address, and scheduling on a loaded
/// machine. A daemon that waited twice `dead` fails it.
pub const DEATH_SLACK: Duration = Duration::from_millis(200);
/// How long the client keeps probing after the VIP reached its last holder, to see
/// that it stays: more than the three intervals a releasing node waits before it
/// would claim the VIPs back, and the announcement rounds.
pub const SETTLE: Duration = Duration::from_millis(500);

/// Whether the VIP may be on both nodes at once during the event.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Sharing {
    /// Never, for any length of time: planned moves, and events that move nothing.
    Forbidden,
    /// It may (a dead or frozen holder keeps its address); reported, not failed.
    Reported,
}

/// What the client and the kernels must see across an event.
#[derive(Debug, Clone)]
pub struct Expect {
    /// The nodes the client hears, in order.
    responders: Vec<String>,
    /// Nobody answers before the event (the VIP is on no node yet).
    from_silence: bool,
    /// Longest silence; see the module docs.
    max_gap: Duration,
    sharing: Sharing,
    /// With one responder: the VIP may leave its node and come back (a restart).
    may_leave: bool,
    settle: Duration,
}

impl Expect {
    /// Nothing moves: the client hears `node` throughout with no silence longer than
    /// `SHORT_GAP`, and the VIP never leaves `node` nor reaches the other node.
    pub fn stays(node: &str) -> Expect {
        Expect {
            responders: vec![node.to_owned()],
            from_silence: false,
            max_gap: SHORT_GAP,
            sharing: Sharing::Forbidden,
            may_leave: false,
            settle: Duration::from_millis(200),
        }
    }

    /// The VIP leaves `node` for at most `gap` and comes back to it, never reaching
    /// the other node: a restart of its daemon.
    pub fn returns(node: &str, gap: Duration) -> Expect {
        Expect {
            may_leave: true,
            max_gap: gap,
            settle: SETTLE,
            ..Expect::stays(node)
        }
    }

    /// A planned move (the holder releases, the peer takes over on its heartbeat):
    /// `from`, then `to`, silence at most `SHORT_GAP`, never on both nodes.
    pub fn planned(from: &str, to: &str) -> Expect {
        Expect {
            responders: vec![from.to_owned(), to.to_owned()],
            from_silence: false,
            max_gap: SHORT_GAP,
            sharing: Sharing::Forbidden,
            may_leave: false,
            settle: SETTLE,
        }
    }

    /// The holder dies or freezes and the peer takes over after `dead`: `from`, then
    /// `to`, silence at most `DEAD` + `DEATH_SLACK`; an overlap is reported.
    pub fn unplanned(from: &str, to: &str) -> Expect {
        Expect {
            max_gap: DEAD + DEATH_SLACK,
            sharing: Sharing::Reported,
            ..Expect::planned(from, to)
        }
    }

    /// Two planned moves, `from` to `via` and back, each with a silence of at most
    /// `SHORT_GAP` and never on both nodes: a node that takes the VIP and hands it
    /// back at once (its start hook failed). The VIP is on `from` before and after, so
    /// `across` cannot tell when the round trip is over: the event must wait for it.
    pub fn round_trip(from: &str, via: &str) -> Expect {
        Expect {
            responders: vec![from.to_owned(), via.to_owned(), from.to_owned()],
            ..Expect::planned(from, via)
        }
    }

    /// The VIP is on no node before the event and comes to `node`, never to the other.
    pub fn arrives(node: &str) -> Expect {
        Expect {
            from_silence: true,
            may_leave: true,
            settle: SETTLE,
            ..Expect::stays(node)
        }
    }

    /// Another bound for the longest silence, for a rule that promises another one.
    pub fn gap(mut self, max_gap: Duration) -> Expect {
        self.max_gap = max_gap;
        self
    }

    /// Probe this long after the VIP reached its last holder (default `SETTLE`; 200 ms
    /// for `stays`, whose event is itself the time to watch).
    pub fn settle(mut self, settle: Duration) -> Expect {
        self.settle = settle;
        self
    }

    fn last(&self) -> &str {
        self.responders.last().expect("an expectation names a node")
    }
}

/// What the client and the kernels saw across an event.
#[derive(Debug, Clone)]
pub struct Seen {
    pub client: ProbeSummary,
    pub kernel: VipHistory,
    /// When the event began, after the kernel watch began.
    pub event_began: Duration,
}

impl Seen {
    /// The client's longest silence: between two answers, or before the first (unless
    /// nobody was expected to answer yet) or after the last.
    pub fn longest_silence(&self, from_silence: bool) -> Duration {
        let gap = self.client.longest_gap_ms.unwrap_or(0.0);
        let interval = PROBE_INTERVAL.as_secs_f64() * 1e3;
        let start = if from_silence {
            0.0
        } else {
            self.client.lost_at_start as f64 * interval
        };
        let end = self.client.lost_at_end as f64 * interval;
        Duration::from_secs_f64(gap.max(start).max(end) / 1e3)
    }

    /// The responders the client heard, in order.
    pub fn responders(&self) -> Vec<String> {
        let mut seen: Vec<String> = self.client.first_responder.iter().cloned().collect();
        seen.extend(self.client.changes.iter().map(|c| c.to.clone()));
        seen
    }

    /// Every way in which this falls short of `expect`.
    fn violations(&self, expect: &Expect) -> Vec<String> {
        let mut wrong = Vec::new();
        let responders = self.responders();
        if responders != expect.responders {
            let interleaved = responders
                .iter()
                .enumerate()
                .any(|(i, r)| responders[..i].contains(r));
            wrong.push(format!(
                "the client heard {responders:?}, expected {:?}{}",
                expect.responders,
                if interleaved {
                    ": answers from two nodes interleaved"
                } else {
                    ""
                }
            ));
        }
        let silence = self.longest_silence(expect.from_silence);
        if silence > expect.max_gap {
            wrong.push(format!(
                "the client's longest silence was {silence:?}, more than {:?}",
                expect.max_gap
            ));
        }
        if self.client.duplicates > 0 {
            wrong.push(format!(
                "{} probes were answered twice",
                self.client.duplicates
            ));
        }
        let overlaps = self.kernel.overlaps();
        if expect.sharing == Sharing::Forbidden && !overlaps.is_empty() {
            wrong.push(format!("the VIP was on both nodes at once: {overlaps:?}"));
        }
        let last = node_index(expect.last());
        let first = node_index(&expect.responders[0]);
        let at_end = self.kernel.at_end();
        if !at_end[last] {
            wrong.push(format!("the VIP is not on {} at the end", NODES[last]));
        }
        if expect.sharing == Sharing::Forbidden && first != last && at_end[first] {
            wrong.push(format!("the VIP is still on {} at the end", NODES[first]));
        }
        if expect.responders.len() == 1 {
            let other = 1 - last;
            if self.kernel.ever_on(other) {
                wrong.push(format!("the VIP was on {} at some point", NODES[other]));
            }
            let left = self
                .kernel
                .changes
                .iter()
                .any(|c| c.node == last && !c.present);
            if left && !expect.may_leave {
                wrong.push(format!("the VIP left {} for a while", NODES[last]));
            }
        }
        wrong
    }
}

impl Cluster<'_> {
    /// Runs `event` while the client probes the VIP and the kernels are watched, waits
    /// (at most `LIMIT`) until the VIP is where `expect` says it ends, probes
    /// `expect.settle` longer, and panics with everything seen unless it all matches
    /// `expect` (see the module docs). Returns what `event` returned and what was seen,
    /// for checks of a test's own.
    pub fn across<T>(&mut self, expect: &Expect, event: impl FnOnce(&mut Self) -> T) -> (T, Seen) {
        let lab = self.lab;
        let vip: Ipv4Addr = VIP.parse().expect("the VIP is an IPv4 address");
        let kernel = VipWatch::start(lab, vip);
        let bound = (WARMUP + LIMIT * 3 + expect.settle).as_micros() / PROBE_INTERVAL.as_micros();
        let probe = lab.start_probe(
            &Probe::new(VIP)
                .count(bound as u64)
                .interval(PROBE_INTERVAL)
                .timeout(PROBE_TIMEOUT),
        );
        std::thread::sleep(WARMUP);
        let event_began = kernel.elapsed();
        let out = event(self);

        let last = node_index(expect.last());
        let first = node_index(&expect.responders[0]);
        let planned = expect.sharing == Sharing::Forbidden;
        let deadline = Instant::now() + LIMIT;
        while Instant::now() < deadline {
            let on = kernel.now();
            if on[last] && !(planned && first != last && on[first]) {
                break;
            }
            std::thread::sleep(POLL);
        }
        std::thread::sleep(expect.settle);
        let client = probe.finish();
        let seen = Seen {
            client,
            kernel: kernel.finish(),
            event_began,
        };
        eprintln!(
            "across {:?}: the client heard {:?}, longest silence {:?} (at most {:?}), \
             lost {} of {}",
            expect.responders,
            seen.responders(),
            seen.longest_silence(expect.from_silence),
            expect.max_gap,
            seen.client.lost,
            seen.client.sent
        );
        for overlap in seen.kernel.overlaps() {
            eprintln!(
                "across {:?}: the VIP was on both nodes from {:?} after the event, for {}",
                expect.responders,
                overlap.began.saturating_sub(seen.event_began),
                overlap
                    .lasted
                    .map_or("the rest of the watch".into(), |d| format!("{d:?}"))
            );
        }
        let wrong = seen.violations(expect);
        assert!(
            wrong.is_empty(),
            "across an event expected {expect:?}:\n- {}\nclient: {}\nkernels: {}\n{}",
            wrong.join("\n- "),
            seen.client.raw,
            seen.kernel.describe(),
            self.logs()
        );
        (out, seen)
    }
}

/// Index into `NODES` of a node by name: alpha on n1, beta on n2.
fn node_index(node: &str) -> usize {
    match node {
        "alpha" => 0,
        "beta" => 1,
        _ => panic!("no node {node:?} in the lab; the nodes are alpha and beta"),
    }
}

/// How long after `event` the VIP was first added on `node` (index into NODES).
pub fn arrived_after(seen: &Seen, node: usize, event: Instant) -> Duration {
    let added = seen.kernel.started
        + seen
            .kernel
            .first_added(node)
            .unwrap_or_else(|| panic!("the VIP never arrived: {}", seen.kernel.describe()));
    added.saturating_duration_since(event)
}
