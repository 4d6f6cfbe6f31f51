//! Heartbeats the kernel would not send, per link and peer.
//!
//! A send fails at once and says why: a local firewall's output rule (EPERM), no
//! route to the peer (ENETUNREACH), a link whose MTU is below a heartbeat's size
//! (EMSGSIZE); this node's address on the link gone (ENETUNREACH) within
//! `send::CHECK_PERIOD`, when the UDP socket is next asked. The peer then sees the
//! link go silent; without a word from this node an administrator looks for the
//! fault on the wrong side. So a peer's first failed send is reported, then its
//! sends that keep failing, and the first that goes out again.
//!
//! One line a [`REPORT_EVERY`] at most per peer, however the failures come: sends
//! that fail and go out by turns (a rate-limiting firewall rule, a conntrack table
//! that is full) would otherwise log two lines a heartbeat. What fails between two
//! lines is counted into the next. Refusals depend on the destination (a rule or a
//! route per address), so each peer of a link is followed on its own.
//!
//! The clock is read only for a failed send and for the first send after
//! failures: a send that goes out to a peer whose sends were not failing costs a
//! comparison or two.

use std::io;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

/// How often at most a line is logged about one peer's sends.
pub const REPORT_EVERY: Duration = Duration::from_secs(60);

/// What to say about the sends to a peer.
#[derive(Debug, PartialEq, Eq)]
pub enum Report {
    /// Sends to the peer fail; `earlier` more failed since the last line, in
    /// runs too short to be told of on their own.
    Failing { error: String, earlier: u64 },
    /// Sends have kept failing: `failed` of them over `lasted`, the last with
    /// `error`.
    StillFailing {
        error: String,
        failed: u64,
        lasted: Duration,
    },
    /// A send went out after `failed` failed ones over `lasted`.
    Recovered { failed: u64, lasted: Duration },
}

/// The failing sends of each link, by peer.
#[derive(Debug, Default)]
pub struct Outbound {
    links: Vec<Vec<Trouble>>,
}

/// What sending to one peer on one link has met.
#[derive(Debug)]
struct Trouble {
    to: SocketAddr,
    /// The failures since the last send to `to` that went out, if its last failed.
    run: Option<Run>,
    /// When a line about `to` was last logged.
    reported: Option<Instant>,
    /// Failures of runs that ended before a line told of them, for the next line.
    unreported: u64,
}

/// Consecutive failed sends to one peer.
#[derive(Debug)]
struct Run {
    since: Instant,
    failed: u64,
    /// Whether a line told of this run: only then is its end told too.
    told: bool,
}

impl Outbound {
    pub fn new(links: usize) -> Outbound {
        Outbound {
            links: (0..links).map(|_| Vec::new()).collect(),
        }
    }

    /// Notes how a send to `to` on `link` went, and says what to log, if
    /// anything; `now` is asked only for a failed send and for the first send
    /// after failures.
    pub fn note(
        &mut self,
        link: usize,
        to: SocketAddr,
        sent: &io::Result<()>,
        now: impl FnOnce() -> Instant,
    ) -> Option<Report> {
        let peers = self.links.get_mut(link)?;
        match sent {
            Ok(()) => {
                let trouble = peers.iter_mut().find(|t| t.to == to)?;
                let run = trouble.run.take()?;
                if !run.told {
                    trouble.unreported += run.failed;
                    return None;
                }
                Some(Report::Recovered {
                    failed: run.failed,
                    lasted: now().saturating_duration_since(run.since),
                })
            }
            // A full socket buffer: this heartbeat is dropped, the next goes out
            // when there is room (see the loop's `perform`). Not a fault of the
            // link's, and it passes.
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => None,
            Err(err) => {
                let now = now();
                let at = match peers.iter().position(|t| t.to == to) {
                    Some(at) => at,
                    None => {
                        peers.push(Trouble {
                            to,
                            run: None,
                            reported: None,
                            unreported: 0,
                        });
                        peers.len() - 1
                    }
                };
                let trouble = &mut peers[at];
                let run = trouble.run.get_or_insert(Run {
                    since: now,
                    failed: 0,
                    told: false,
                });
                run.failed += 1;
                if trouble
                    .reported
                    .is_some_and(|at| now.saturating_duration_since(at) < REPORT_EVERY)
                {
                    return None;
                }
                trouble.reported = Some(now);
                if run.told {
                    return Some(Report::StillFailing {
                        error: err.to_string(),
                        failed: run.failed,
                        lasted: now.saturating_duration_since(run.since),
                    });
                }
                run.told = true;
                Some(Report::Failing {
                    error: err.to_string(),
                    earlier: std::mem::take(&mut trouble.unreported),
                })
            }
        }
    }
}

#[cfg(test)]
impl Outbound {
    /// How many sends to `to` on `link` have failed since one last went out.
    pub fn failing(&self, link: usize, to: SocketAddr) -> u64 {
        (self.links.get(link).into_iter().flatten())
            .find(|t| t.to == to)
            .and_then(|t| t.run.as_ref())
            .map_or(0, |run| run.failed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused() -> io::Result<()> {
        Err(io::Error::from_raw_os_error(libc::EPERM))
    }

    fn peer(n: u8) -> SocketAddr {
        SocketAddr::from(([198, 18, 0, n], 694))
    }

    #[test]
    fn a_peer_whose_sends_fail_is_told_of_at_once_then_seldom_then_when_they_go_out_again() {
        let mut outbound = Outbound::new(2);
        let t0 = Instant::now();
        let at = |secs: u64| move || t0 + Duration::from_secs(secs);
        let (beta, gamma) = (peer(12), peer(13));
        assert_eq!(
            outbound.note(0, beta, &Ok(()), at(0)),
            None,
            "nothing to say"
        );
        let Some(Report::Failing { error, earlier: 0 }) = outbound.note(0, beta, &refused(), at(0))
        else {
            panic!("the first failure is told of");
        };
        assert!(error.contains("not permitted"), "{error}");
        // Every interval fails again: told of again only after REPORT_EVERY.
        for secs in 1..60 {
            assert_eq!(
                outbound.note(0, beta, &refused(), at(secs)),
                None,
                "{secs} s"
            );
        }
        assert!(matches!(
            outbound.note(0, beta, &refused(), at(60)),
            Some(Report::StillFailing {
                failed: 61,
                lasted,
                ..
            }) if lasted == Duration::from_secs(60)
        ));
        // Another peer on the link, and the same peer on another link, are their own.
        assert!(matches!(
            outbound.note(0, gamma, &refused(), at(61)),
            Some(Report::Failing { earlier: 0, .. })
        ));
        assert!(matches!(
            outbound.note(1, beta, &refused(), at(61)),
            Some(Report::Failing { earlier: 0, .. })
        ));
        assert_eq!(
            outbound.note(0, gamma, &Ok(()), at(62)),
            Some(Report::Recovered {
                failed: 1,
                lasted: Duration::from_secs(1)
            })
        );
        assert_eq!(outbound.failing(0, beta), 61, "gamma's send is not beta's");
        assert_eq!(
            outbound.note(0, beta, &Ok(()), at(75)),
            Some(Report::Recovered {
                failed: 61,
                lasted: Duration::from_secs(75)
            })
        );
        assert_eq!(outbound.note(0, beta, &Ok(()), at(76)), None, "told once");
        let full = Err(io::Error::from(io::ErrorKind::WouldBlock));
        assert_eq!(
            outbound.note(0, beta, &full, at(76)),
            None,
            "a full buffer passes"
        );
        assert_eq!(outbound.failing(0, beta), 0);
    }

    #[test]
    fn sends_that_fail_and_go_out_by_turns_log_a_line_or_two_a_minute() {
        let mut outbound = Outbound::new(1);
        let t0 = Instant::now();
        let beta = peer(12);
        let mut lines = Vec::new();
        // Every other heartbeat refused, at a 100 ms interval, for three minutes.
        for tenth in 0..1800u64 {
            let now = t0 + Duration::from_millis(100 * tenth);
            let sent = if tenth % 2 == 0 { refused() } else { Ok(()) };
            if let Some(report) = outbound.note(0, beta, &sent, || now) {
                lines.push((tenth, report));
            }
        }
        // A failure and its end at 0, 60 and 120 s: the later failures carry the
        // count of those between, which were too short-lived to tell of alone.
        assert_eq!(lines.len(), 6, "{lines:#?}");
        assert!(matches!(lines[0], (0, Report::Failing { earlier: 0, .. })));
        assert!(matches!(lines[1], (1, Report::Recovered { failed: 1, .. })));
        assert!(matches!(
            lines[2],
            (600, Report::Failing { earlier: 299, .. })
        ));
        assert!(matches!(
            lines[4],
            (1200, Report::Failing { earlier: 299, .. })
        ));
    }

    #[test]
    fn a_send_that_goes_out_to_a_peer_that_was_not_failing_reads_no_clock() {
        let mut outbound = Outbound::new(1);
        let no_clock = || -> Instant { panic!("the clock was read") };
        assert_eq!(outbound.note(0, peer(12), &Ok(()), no_clock), None);
        // Nor to one peer while another's sends fail.
        outbound.note(0, peer(13), &refused(), Instant::now);
        assert_eq!(outbound.note(0, peer(12), &Ok(()), no_clock), None);
        assert_eq!(
            outbound.note(7, peer(12), &refused(), Instant::now),
            None,
            "no such link"
        );
    }
}
