//! Heartbeats the kernel would not send, per link.
//!
//! A send fails at once and says why: a local firewall's output rule (EPERM), a
//! route or address gone (ENETUNREACH, EADDRNOTAVAIL), a link whose MTU is below
//! a heartbeat's size (EMSGSIZE). The peer then sees the link go silent; without
//! a word from this node an administrator looks for the fault on the wrong side.
//! So the first failure on a link is reported, then at most every
//! [`REPORT_EVERY`] while sends keep failing, and the first send that goes out
//! again. The clock is read only then: a send that succeeds on a link that was
//! not failing costs one comparison.

use std::io;
use std::time::{Duration, Instant};

/// How often a link whose sends keep failing is reported again.
pub const REPORT_EVERY: Duration = Duration::from_secs(60);

/// What to say about a link's sends.
#[derive(Debug, PartialEq, Eq)]
pub enum Report {
    /// The first send to fail since the link's sends last went out.
    Failing { error: String },
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

/// Each link's failing sends.
#[derive(Debug, Default)]
pub struct Outbound {
    links: Vec<Trouble>,
}

#[derive(Debug, Default, Clone)]
struct Trouble {
    /// When the first send of the current run of failures failed.
    since: Option<Instant>,
    failed: u64,
    reported: Option<Instant>,
}

impl Outbound {
    pub fn new(links: usize) -> Outbound {
        Outbound {
            links: vec![Trouble::default(); links],
        }
    }

    /// Notes how a send on `link` went; `now` is asked only when there is
    /// something to count.
    pub fn note(
        &mut self,
        link: usize,
        sent: &io::Result<()>,
        now: impl FnOnce() -> Instant,
    ) -> Option<Report> {
        let trouble = self.links.get_mut(link)?;
        match sent {
            // A full socket buffer: this heartbeat is dropped, the next goes out
            // when there is room (see the loop's `perform`). Not a fault of the
            // link's, and it passes.
            Err(err) if err.kind() == io::ErrorKind::WouldBlock => None,
            Ok(()) => {
                let since = trouble.since?;
                let report = Report::Recovered {
                    failed: trouble.failed,
                    lasted: now().saturating_duration_since(since),
                };
                *trouble = Trouble::default();
                Some(report)
            }
            Err(err) => {
                let now = now();
                trouble.failed += 1;
                let Some(since) = trouble.since else {
                    trouble.since = Some(now);
                    trouble.reported = Some(now);
                    return Some(Report::Failing {
                        error: err.to_string(),
                    });
                };
                if trouble
                    .reported
                    .is_some_and(|at| now.saturating_duration_since(at) < REPORT_EVERY)
                {
                    return None;
                }
                trouble.reported = Some(now);
                Some(Report::StillFailing {
                    error: err.to_string(),
                    failed: trouble.failed,
                    lasted: now.saturating_duration_since(since),
                })
            }
        }
    }
}

#[cfg(test)]
impl Outbound {
    /// How many sends on `link` have failed since its sends last went out.
    pub fn failing(&self, link: usize) -> u64 {
        self.links.get(link).map_or(0, |t| t.failed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn refused() -> io::Result<()> {
        Err(io::Error::from_raw_os_error(libc::EPERM))
    }

    #[test]
    fn a_link_whose_sends_fail_is_reported_at_once_then_seldom_then_when_they_go_out_again() {
        let mut outbound = Outbound::new(2);
        let t0 = Instant::now();
        let at = |secs: u64| move || t0 + Duration::from_secs(secs);
        assert_eq!(outbound.note(0, &Ok(()), at(0)), None, "nothing to say");
        let Some(Report::Failing { error }) = outbound.note(0, &refused(), at(0)) else {
            panic!("the first failure is reported");
        };
        assert!(error.contains("not permitted"), "{error}");
        // Every interval fails again: said again only after REPORT_EVERY.
        for secs in 1..60 {
            assert_eq!(outbound.note(0, &refused(), at(secs)), None, "{secs} s");
        }
        assert!(matches!(
            outbound.note(0, &refused(), at(60)),
            Some(Report::StillFailing {
                failed: 61,
                lasted,
                ..
            }) if lasted == Duration::from_secs(60)
        ));
        // The other link is its own.
        assert!(matches!(
            outbound.note(1, &refused(), at(61)),
            Some(Report::Failing { .. })
        ));
        assert_eq!(
            outbound.note(0, &Ok(()), at(75)),
            Some(Report::Recovered {
                failed: 61,
                lasted: Duration::from_secs(75)
            })
        );
        assert_eq!(outbound.note(0, &Ok(()), at(76)), None, "said once");
        let full = Err(io::Error::from(io::ErrorKind::WouldBlock));
        assert_eq!(
            outbound.note(0, &full, at(76)),
            None,
            "a full buffer passes"
        );
        assert!(
            matches!(
                outbound.note(0, &refused(), at(77)),
                Some(Report::Failing { .. })
            ),
            "a new run of failures is reported at once"
        );
    }

    #[test]
    fn a_send_that_goes_out_on_a_link_that_was_not_failing_reads_no_clock() {
        let mut outbound = Outbound::new(1);
        let report = outbound.note(0, &Ok(()), || panic!("the clock was read"));
        assert_eq!(report, None);
        assert_eq!(
            outbound.note(7, &refused(), Instant::now),
            None,
            "no such link"
        );
    }
}
