//! This node's health as a combination of checks.
//!
//! Every check is a [`Source`]; the node's health is the number of failing checks,
//! which travels in each heartbeat and ranks nodes (fewer is better). Sources: gateway
//! pings, and the link state of the interfaces that carry VIPs; service check scripts
//! slot in as a new variant.

use std::net::IpAddr;
use std::time::Duration;

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

    /// Records one probe. A check fails after `threshold` consecutive failures and
    /// heals on the first success, so one lost ping never moves a VIP.
    pub fn record(&mut self, source: Source, rtt: Option<Duration>) -> Change {
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

    #[test]
    fn fails_after_threshold_and_heals_on_one_success() {
        let gw: IpAddr = "198.18.0.1".parse().unwrap();
        let mut h = Health::new(&[gw], &[], 3);
        let g = Source::Gateway(0);
        assert_eq!(h.record(g, None), Change::None);
        assert_eq!(h.record(g, None), Change::None);
        assert_eq!(h.failing(), 0);
        assert_eq!(h.record(g, None), Change::Lost);
        assert_eq!(h.failing(), 1);
        assert_eq!(h.record(g, None), Change::None);
        assert_eq!(
            h.record(g, Some(Duration::from_millis(1))),
            Change::Restored
        );
        assert_eq!(h.failing(), 0);
    }

    #[test]
    fn a_success_resets_the_count() {
        let gw: IpAddr = "198.18.0.1".parse().unwrap();
        let mut h = Health::new(&[gw], &[], 2);
        let g = Source::Gateway(0);
        h.record(g, None);
        h.record(g, Some(Duration::from_millis(1)));
        assert_eq!(h.record(g, None), Change::None);
        assert_eq!(h.failing(), 0);
    }

    #[test]
    fn an_interface_fails_at_once() {
        let mut h = Health::new(&[], &["eth0".to_string()], 3);
        let i = Source::Interface(0);
        assert_eq!(h.record(i, Some(Duration::ZERO)), Change::None);
        assert_eq!(h.record(i, None), Change::Lost);
        assert_eq!(h.failing(), 1);
        assert_eq!(h.record(i, Some(Duration::ZERO)), Change::Restored);
    }

    #[test]
    fn no_checks_means_healthy() {
        assert_eq!(Health::new(&[], &[], 3).failing(), 0);
    }
}
