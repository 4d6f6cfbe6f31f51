//! This node's health as a combination of checks.
//!
//! Every check is a [`Source`]; the node's health is the number of failing checks,
//! which travels in each heartbeat and ranks nodes (fewer is better). Sources: gateway
//! pings, and the link state of the interfaces that carry VIPs; service check scripts
//! slot in as a new variant.

use std::net::IpAddr;
use std::time::{Duration, Instant};

/// A health check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Source {
    /// ICMP echo to `health.gateways[i]`.
    Gateway(usize),
    /// Link state (up and running) of the i-th interface that carries a VIP.
    Interface(usize),
}

/// What a check looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    Gateway(IpAddr),
    Interface(String),
}

impl std::fmt::Display for Target {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Target::Gateway(address) => write!(f, "gateway {address}"),
            Target::Interface(name) => write!(f, "interface {name}"),
        }
    }
}

/// The state of one check.
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    pub source: Source,
    pub target: Target,
    /// Consecutive failed probes.
    pub failures: u32,
    /// Failing: `failures` reached the threshold and no probe has passed since.
    pub failing: bool,
    /// When the check started failing, for the grace before that counts.
    pub failing_since: Option<Instant>,
    pub last_rtt: Option<Duration>,
    pub probes: u64,
}

/// What a probe result changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    None,
    Lost,
    Restored,
}

#[derive(Debug, Clone)]
pub struct Health {
    checks: Vec<Check>,
    threshold: u32,
}

impl Health {
    /// Gateway checks fail after `threshold` consecutive lost pings; an interface
    /// check fails at the first "down" (link state does not get lost on the way).
    pub fn new(gateways: &[IpAddr], interfaces: &[String], threshold: u32) -> Health {
        let check = |source, target| Check {
            source,
            target,
            failures: 0,
            failing: false,
            failing_since: None,
            last_rtt: None,
            probes: 0,
        };
        let checks = gateways
            .iter()
            .enumerate()
            .map(|(i, &a)| check(Source::Gateway(i), Target::Gateway(a)))
            .chain(
                interfaces
                    .iter()
                    .enumerate()
                    .map(|(i, name)| check(Source::Interface(i), Target::Interface(name.clone()))),
            )
            .collect();
        Health {
            checks,
            threshold: threshold.max(1),
        }
    }

    /// Records one probe, made at `now`. A check fails after `threshold` consecutive
    /// failures and heals on the first success, so one lost ping never moves a VIP.
    pub fn record(&mut self, source: Source, rtt: Option<Duration>, now: Instant) -> Change {
        let Some(check) = self.checks.iter_mut().find(|c| c.source == source) else {
            return Change::None;
        };
        check.probes += 1;
        match rtt {
            Some(rtt) => {
                check.failures = 0;
                check.last_rtt = Some(rtt);
                if check.failing {
                    check.failing = false;
                    check.failing_since = None;
                    return Change::Restored;
                }
            }
            None => {
                check.failures = check.failures.saturating_add(1);
                let threshold = match source {
                    Source::Gateway(_) => self.threshold,
                    Source::Interface(_) => 1,
                };
                if !check.failing && check.failures >= threshold {
                    check.failing = true;
                    check.failing_since = Some(now);
                    return Change::Lost;
                }
            }
        }
        Change::None
    }

    /// The same checks for a reloaded configuration: a target that stays keeps its
    /// state, so a reload never makes a lost gateway look reachable.
    pub fn reconfigured(
        &self,
        gateways: &[IpAddr],
        interfaces: &[String],
        threshold: u32,
    ) -> Health {
        let mut next = Health::new(gateways, interfaces, threshold);
        for check in &mut next.checks {
            if let Some(old) = self.checks.iter().find(|c| c.target == check.target) {
                let source = check.source;
                *check = old.clone();
                check.source = source;
            }
        }
        next
    }

    /// Number of failing checks: the value sent on the wire.
    pub fn failing(&self) -> u8 {
        let n = self.checks.iter().filter(|c| c.failing).count();
        u8::try_from(n).unwrap_or(u8::MAX)
    }

    /// Failing checks that have been failing for `grace` or longer at `now`: the
    /// losses the election acts on. Each loss waits out its own grace, so a second
    /// loss never postpones acting on the first.
    pub fn settled_failing(&self, now: Instant, grace: Duration) -> u8 {
        let n = self
            .checks
            .iter()
            .filter(|c| c.failing_since.is_some_and(|since| since + grace <= now))
            .count();
        u8::try_from(n).unwrap_or(u8::MAX)
    }

    /// When the next loss still in its grace at `now` will count.
    pub fn next_settled(&self, now: Instant, grace: Duration) -> Option<Instant> {
        self.checks
            .iter()
            .filter_map(|c| c.failing_since.map(|since| since + grace))
            .filter(|at| *at > now)
            .min()
    }

    pub fn checks(&self) -> &[Check] {
        &self.checks
    }

    pub fn check(&self, source: Source) -> Option<&Check> {
        self.checks.iter().find(|c| c.source == source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t0() -> Instant {
        Instant::now()
    }

    #[test]
    fn each_loss_counts_after_its_own_grace() {
        let start = t0();
        let at = |ms| start + Duration::from_millis(ms);
        let grace = Duration::from_millis(200);
        let gw: IpAddr = "198.18.0.1".parse().unwrap();
        let mut h = Health::new(&[gw], &["eth0".to_string()], 1);
        h.record(Source::Interface(0), None, at(0));
        h.record(Source::Gateway(0), None, at(100));
        assert_eq!(h.failing(), 2);
        assert_eq!(h.settled_failing(at(199), grace), 0);
        assert_eq!(h.next_settled(at(0), grace), Some(at(200)));
        // The first loss counts after its grace, whatever came after it.
        assert_eq!(h.settled_failing(at(200), grace), 1);
        assert_eq!(h.next_settled(at(200), grace), Some(at(300)));
        assert_eq!(h.settled_failing(at(300), grace), 2);
        assert_eq!(h.next_settled(at(300), grace), None);
        h.record(Source::Interface(0), Some(Duration::ZERO), at(400));
        assert_eq!(h.settled_failing(at(400), grace), 1);
    }

    #[test]
    fn fails_after_threshold_and_heals_on_one_success() {
        let gw: IpAddr = "198.18.0.1".parse().unwrap();
        let mut h = Health::new(&[gw], &[], 3);
        let g = Source::Gateway(0);
        assert_eq!(h.record(g, None, t0()), Change::None);
        assert_eq!(h.record(g, None, t0()), Change::None);
        assert_eq!(h.failing(), 0);
        assert_eq!(h.record(g, None, t0()), Change::Lost);
        assert_eq!(h.failing(), 1);
        assert_eq!(h.record(g, None, t0()), Change::None);
        assert_eq!(
            h.record(g, Some(Duration::from_millis(1)), t0()),
            Change::Restored
        );
        assert_eq!(h.failing(), 0);
    }

    #[test]
    fn a_success_resets_the_count() {
        let gw: IpAddr = "198.18.0.1".parse().unwrap();
        let mut h = Health::new(&[gw], &[], 2);
        let g = Source::Gateway(0);
        h.record(g, None, t0());
        h.record(g, Some(Duration::from_millis(1)), t0());
        assert_eq!(h.record(g, None, t0()), Change::None);
        assert_eq!(h.failing(), 0);
    }

    #[test]
    fn an_interface_fails_at_once() {
        let mut h = Health::new(&[], &["eth0".to_string()], 3);
        let i = Source::Interface(0);
        assert_eq!(h.record(i, Some(Duration::ZERO), t0()), Change::None);
        assert_eq!(h.record(i, None, t0()), Change::Lost);
        assert_eq!(h.failing(), 1);
        assert_eq!(h.record(i, Some(Duration::ZERO), t0()), Change::Restored);
    }

    #[test]
    fn no_checks_means_healthy() {
        assert_eq!(Health::new(&[], &[], 3).failing(), 0);
    }
}
