//! Who gets a connection to the status page. The limits keep a flood of requests and a
//! crowd of slow clients to a bounded cost, and keep one client address from locking
//! out the others: the monitoring that the page is for gets in while someone else
//! floods it. A connection over a limit is closed at once, which costs an accept and
//! a close and nothing more. Pure code: the time comes with each call.
//!
//! Two limits apply to the server as a whole and again, tighter, to each client
//! address (IPv6 addresses by their /64, which one host usually has whole): open
//! connections, and new connections per second as a token bucket. When the server
//! as a whole is full but the newcomer's address is within its limits, the server
//! may close its slowest connection to make room (see `Refusal::Full`).

use std::collections::HashMap;
use std::net::IpAddr;
use std::time::Instant;

/// Client addresses remembered at most. Past this, those that are idle and whose
/// budget is whole again are forgotten (they would start afresh anyway), then any
/// that are idle; so the table stays small whatever addresses a flood comes from.
const MAX_SOURCES: usize = 1024;

/// How many connections may be open, and how fast new ones may come.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Limits {
    /// Connections open at once, over all clients.
    pub(super) connections: usize,
    /// Connections open at once from one client address.
    pub(super) connections_per_source: usize,
    /// New connections per second over all clients, and how many may come at once.
    pub(super) rate: f64,
    pub(super) burst: f64,
    /// New connections per second from one client address, and how many at once.
    pub(super) rate_per_source: f64,
    pub(super) burst_per_source: f64,
}

impl Limits {
    pub(super) const DEFAULT: Limits = Limits {
        // Each connection is a small buffer and a task; 32 is many times what a
        // scraper and a few open pages use, and few enough to cost nothing.
        connections: 32,
        // A quarter of them: four client addresses are needed to fill the server,
        // and one busy or hostile address leaves room for everyone else.
        connections_per_source: 8,
        // A request costs well under a millisecond of the server's own thread (a
        // page render): 100 a second stays a few percent of one core at worst.
        rate: 100.0,
        burst: 100.0,
        // A page reloads every 2 s and Prometheus scrapes every few seconds: 10 a
        // second from one address is far above any of them, 20 at once covers a
        // browser opening the page and /status together with a few tabs.
        rate_per_source: 10.0,
        burst_per_source: 20.0,
    };
}

/// Why a connection was closed at once.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Refusal {
    /// As many connections open from this address as allowed.
    Busy,
    /// As many connections open as the server allows, though this address may open
    /// one more: the server may make room by closing a slow one
    /// ([`Admission::admit_in_place`]).
    Full,
    /// New connections coming faster than allowed, to the server or from this address.
    Rate,
}

/// The open connections and the budgets of new ones.
#[derive(Debug)]
pub(super) struct Admission {
    limits: Limits,
    open: usize,
    all: Bucket,
    sources: HashMap<Source, Client>,
}

impl Admission {
    pub(super) fn new(limits: Limits, now: Instant) -> Admission {
        Admission {
            limits,
            open: 0,
            all: Bucket::full(limits.burst, now),
            sources: HashMap::new(),
        }
    }

    /// Lets a new connection from `peer` in, counting it open until [`release`], or
    /// says why not.
    ///
    /// [`release`]: Admission::release
    pub(super) fn admit(&mut self, now: Instant, peer: IpAddr) -> Result<(), Refusal> {
        self.admit_with(now, peer, false)
    }

    /// Like [`admit`] after a [`Refusal::Full`], once the server closed a slow
    /// connection to make room: the one it closed is still counted until its task
    /// ends, which is at once.
    ///
    /// [`admit`]: Admission::admit
    pub(super) fn admit_in_place(&mut self, now: Instant, peer: IpAddr) -> Result<(), Refusal> {
        self.admit_with(now, peer, true)
    }

    fn admit_with(&mut self, now: Instant, peer: IpAddr, in_place: bool) -> Result<(), Refusal> {
        if self.sources.len() >= MAX_SOURCES {
            self.forget(now);
        }
        let limits = self.limits;
        let client = self
            .sources
            .entry(Source::of(peer))
            .or_insert_with(|| Client {
                open: 0,
                bucket: Bucket::full(limits.burst_per_source, now),
            });
        if client.open >= limits.connections_per_source {
            return Err(Refusal::Busy);
        }
        let mine = client
            .bucket
            .refill(now, limits.rate_per_source, limits.burst_per_source);
        let everyone = self.all.refill(now, limits.rate, limits.burst);
        if mine < 1.0 || everyone < 1.0 {
            return Err(Refusal::Rate);
        }
        if self.open >= limits.connections && !in_place {
            return Err(Refusal::Full);
        }
        client.bucket.tokens -= 1.0;
        self.all.tokens -= 1.0;
        client.open += 1;
        self.open += 1;
        Ok(())
    }

    /// A connection admitted from `peer` is closed.
    pub(super) fn release(&mut self, peer: IpAddr) {
        self.open = self.open.saturating_sub(1);
        if let Some(client) = self.sources.get_mut(&Source::of(peer)) {
            client.open = client.open.saturating_sub(1);
        }
    }

    /// Connections open now.
    #[cfg(test)]
    fn open(&self) -> usize {
        self.open
    }

    fn forget(&mut self, now: Instant) {
        let limits = self.limits;
        self.sources.retain(|_, c| {
            c.open > 0
                || c.bucket
                    .refill(now, limits.rate_per_source, limits.burst_per_source)
                    < limits.burst_per_source
        });
        if self.sources.len() >= MAX_SOURCES {
            self.sources.retain(|_, c| c.open > 0);
        }
    }
}

/// A client address as the limits see it: an IPv4 address, or an IPv6 /64.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Source {
    V4(u32),
    V6(u64),
}

impl Source {
    fn of(peer: IpAddr) -> Source {
        match peer.to_canonical() {
            IpAddr::V4(v4) => Source::V4(v4.to_bits()),
            IpAddr::V6(v6) => Source::V6((v6.to_bits() >> 64) as u64),
        }
    }
}

#[derive(Debug)]
struct Client {
    open: usize,
    bucket: Bucket,
}

/// A token bucket: one token per connection, `rate` new tokens a second, at most
/// `burst` saved up.
#[derive(Debug)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn full(burst: f64, now: Instant) -> Bucket {
        Bucket {
            tokens: burst,
            at: now,
        }
    }

    /// Adds what accrued since the last refill; returns the tokens now there.
    fn refill(&mut self, now: Instant, rate: f64, burst: f64) -> f64 {
        let elapsed = now.saturating_duration_since(self.at);
        self.at = self.at.max(now);
        self.tokens = (self.tokens + elapsed.as_secs_f64() * rate).min(burst);
        self.tokens
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;

    /// How long a bucket of `burst` tokens filling at `rate` takes to fill from empty.
    fn fill_time(rate: f64, burst: f64) -> Duration {
        Duration::from_secs_f64(burst / rate)
    }

    const LIMITS: Limits = Limits {
        connections: 4,
        connections_per_source: 2,
        rate: 10.0,
        burst: 6.0,
        rate_per_source: 2.0,
        burst_per_source: 3.0,
    };

    fn ip(text: &str) -> IpAddr {
        text.parse().unwrap()
    }

    #[test]
    fn one_address_cannot_take_every_connection() {
        let now = Instant::now();
        let mut admission = Admission::new(LIMITS, now);
        let (a, b, c) = (ip("198.18.0.100"), ip("198.18.0.101"), ip("198.18.0.102"));
        assert_eq!(admission.admit(now, a), Ok(()));
        assert_eq!(admission.admit(now, a), Ok(()));
        assert_eq!(admission.admit(now, a), Err(Refusal::Busy));
        assert_eq!(admission.admit(now, b), Ok(()));
        assert_eq!(admission.admit(now, b), Ok(()));
        // The server is full too.
        assert_eq!(admission.admit(now, c), Err(Refusal::Full));
        assert_eq!(admission.open(), 4);
        // Unless it closes a connection to make room.
        assert_eq!(admission.admit_in_place(now, c), Ok(()));
        admission.release(b);
        assert_eq!(admission.open(), 4);
        admission.release(a);
        admission.release(a);
        assert_eq!(admission.admit(now, a), Ok(()), "a's last token");
        admission.release(a);
        assert_eq!(admission.admit(now, a), Err(Refusal::Rate));
    }

    #[test]
    fn new_connections_come_at_the_rate_and_a_flood_leaves_room_for_others() {
        let start = Instant::now();
        let mut admission = Admission::new(LIMITS, start);
        let flood = ip("198.18.0.100");
        let mut admitted = 0;
        // A thousand connections a second for two seconds, each closed at once.
        for ms in 0..2000 {
            let now = start + Duration::from_millis(ms);
            if admission.admit(now, flood).is_ok() {
                admitted += 1;
                admission.release(flood);
            }
        }
        // The burst, then 2 a second.
        assert!((6..=8).contains(&admitted), "{admitted}");
        let now = start + Duration::from_secs(2);
        assert_eq!(admission.admit(now, ip("198.18.0.200")), Ok(()));
        // IPv6 addresses count by their /64.
        let (v6a, v6b) = (ip("2001:db8::1"), ip("2001:db8::2"));
        for _ in 0..3 {
            assert_eq!(admission.admit(now, v6a), Ok(()));
            admission.release(v6a);
        }
        assert_eq!(admission.admit(now, v6b), Err(Refusal::Rate));
        assert_eq!(admission.admit(now, ip("2001:db8:0:1::1")), Ok(()));
        // The server's own rate: 6 at once, then 10 a second, whatever the address.
        let mut admission = Admission::new(LIMITS, start);
        let many = (1..=20).map(|n| ip(&format!("198.18.1.{n}")));
        let admitted = many
            .filter(|&peer| {
                let ok = admission.admit(start, peer).is_ok();
                if ok {
                    admission.release(peer);
                }
                ok
            })
            .count();
        assert_eq!(admitted, 6);
        let later = start + fill_time(LIMITS.rate, LIMITS.burst);
        assert_eq!(admission.admit(later, ip("198.18.1.1")), Ok(()));
    }

    #[test]
    fn the_table_of_addresses_stays_small() {
        let start = Instant::now();
        let mut admission = Admission::new(LIMITS, start);
        for n in 0..(MAX_SOURCES as u32 * 4) {
            let peer = IpAddr::V4(std::net::Ipv4Addr::from_bits(0xc612_0000 + n));
            let now = start + Duration::from_millis(u64::from(n));
            if admission.admit(now, peer).is_ok() {
                admission.release(peer);
            }
            assert!(admission.sources.len() <= MAX_SOURCES);
        }
    }
}
