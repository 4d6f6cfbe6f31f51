//! This node's health: the state of every check, and the one number the election
//! reads from them.
//!
//! A check is configured (`[[check]]`, and the `[health]` shorthand for gateways and
//! VIP interfaces) or built in (`vip`: a VIP could not be added; `start-hook`: the
//! start hook failed). The shell runs the configured ones and reports each run; the
//! core feeds the built-in ones itself. A check fails after `fall` failed runs in a
//! row and passes again after `rise` passed runs in a row.
//!
//! The node's health is its *score*: the sum of the weights of the failing checks,
//! or [`UNFIT`] while a fatal one fails. It travels in every heartbeat and ranks
//! nodes, lower first. A check that runs only while the node is active
//! ([`Scope::Active`]) and fails there *sticks* when the node lets the VIPs go: the
//! node then will not take them back while another node can hold them, until an
//! operator clears it or its `failure_timeout` passes. That is what stops two nodes
//! with the same broken service from passing the VIPs back and forth.

use std::fmt;
use std::time::{Duration, Instant};

use crate::config::{Check as Configured, Probe, Scope};

/// The score of a node a fatal check makes unfit: worse than any sum of weights.
pub const UNFIT: u8 = u8::MAX;

/// What a check looks at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Kind {
    /// ICMP echo to a gateway (or any address).
    Ping(String),
    /// The link state of an interface.
    Link(String),
    /// A program (its command line).
    Exec(String),
    /// A TCP connection (the address).
    Tcp(String),
    /// An HTTP GET (the URL).
    Http(String),
    /// Built in: every VIP could be added.
    Vip,
    /// Built in: the start hook exited 0.
    StartHook,
}

impl Kind {
    /// The kind's name, as the configuration writes it.
    pub fn as_str(&self) -> &'static str {
        match self {
            Kind::Ping(_) => "ping",
            Kind::Link(_) => "link",
            Kind::Exec(_) => "exec",
            Kind::Tcp(_) => "tcp",
            Kind::Http(_) => "http",
            Kind::Vip => "vip",
            Kind::StartHook => "start-hook",
        }
    }

    /// What the check looks at: an address, an interface, a command, a URL.
    pub fn target(&self) -> &str {
        match self {
            Kind::Ping(t) | Kind::Link(t) | Kind::Exec(t) | Kind::Tcp(t) | Kind::Http(t) => t,
            Kind::Vip => "the VIPs",
            Kind::StartHook => "the start hook",
        }
    }
}

impl fmt::Display for Kind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Kind::Ping(target) => write!(f, "gateway {target}"),
            Kind::Link(name) => write!(f, "interface {name}"),
            Kind::Exec(_) | Kind::Tcp(_) | Kind::Http(_) => {
                write!(f, "{} {}", self.as_str(), self.target())
            }
            Kind::Vip => f.write_str("adding the VIPs"),
            Kind::StartHook => f.write_str("the start hook"),
        }
    }
}

/// How a check is judged: what the configuration says, or the built-in rules.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Spec {
    pub name: String,
    pub kind: Kind,
    pub rise: u32,
    pub fall: u32,
    pub weight: u8,
    pub fatal: bool,
    pub scope: Scope,
    /// How long a loss waits before it counts: for a check every node may lose at
    /// once (a gateway), one probe interval and two heartbeats, so that the nodes,
    /// noticing it a probe apart, see each other lose it before either acts; zero
    /// for the others.
    pub grace: Duration,
    /// With [`Scope::Active`]: how long after the service started runs count.
    pub start_grace: Duration,
    /// How long a sticky failure lasts; `None` until cleared.
    pub failure_timeout: Option<Duration>,
}

impl Spec {
    /// `heartbeat` is the heartbeat interval, which a shared loss's grace includes.
    pub fn configured(check: &Configured, heartbeat: Duration) -> Spec {
        let kind = match &check.probe {
            Probe::Ping { target } => Kind::Ping(target.to_string()),
            Probe::Link { interface } => Kind::Link(interface.clone()),
            Probe::Exec { command } => Kind::Exec(command.join(" ")),
            Probe::Tcp { address } => Kind::Tcp(address.to_string()),
            Probe::Http { url, .. } => Kind::Http(url.to_string()),
        };
        Spec {
            name: check.name.clone(),
            kind,
            rise: check.rise.max(1),
            fall: check.fall.max(1),
            weight: check.weight,
            fatal: check.fatal,
            scope: check.on,
            grace: if check.shared() {
                check.interval + heartbeat * 2
            } else {
                Duration::ZERO
            },
            start_grace: check.start_grace,
            failure_timeout: check.failure_timeout,
        }
    }

    /// The built-in checks: a node that cannot add its VIPs, or whose service did not
    /// start, cannot serve, whatever else is true of it, so both are fatal. A VIP add
    /// fails the check only when its retry a second later fails too.
    pub fn builtins() -> [Spec; 2] {
        let builtin = |name: &str, kind, fall| Spec {
            name: name.to_string(),
            kind,
            rise: 1,
            fall,
            weight: 1,
            fatal: true,
            scope: Scope::Active,
            grace: Duration::ZERO,
            start_grace: Duration::ZERO,
            failure_timeout: None,
        };
        [
            builtin("vip", Kind::Vip, 2),
            builtin("start-hook", Kind::StartHook, 1),
        ]
    }

    pub fn builtin(&self) -> bool {
        matches!(self.kind, Kind::Vip | Kind::StartHook)
    }
}

/// One run of a check, as the shell (or the core, for a built-in one) saw it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Run {
    pub passed: bool,
    /// How long the run took (a ping's round trip, a program's run time).
    pub took: Duration,
    /// Why it failed, or what it said: a program's last output line, an HTTP status,
    /// the error. Short: the shell bounds it.
    pub detail: String,
}

/// The state of one check.
#[derive(Debug, Clone, PartialEq)]
pub struct Check {
    pub spec: Spec,
    /// Consecutive passed runs that counted.
    pub passes: u32,
    /// Consecutive failed runs that counted.
    pub failures: u32,
    /// Failing: `fall` runs failed in a row and fewer than `rise` passed since.
    pub failing: bool,
    /// When the check started failing, for the grace before a shared loss counts.
    pub failing_since: Option<Instant>,
    pub runs: u64,
    pub last: Option<Run>,
    /// Sticky: this active-only check was failing when the node let the VIPs go.
    pub failed_at: Option<Instant>,
}

impl Check {
    fn new(spec: Spec) -> Check {
        Check {
            spec,
            passes: 0,
            failures: 0,
            failing: false,
            failing_since: None,
            runs: 0,
            last: None,
            failed_at: None,
        }
    }

    /// What the check adds to the score while it fails.
    fn cost(&self) -> u8 {
        if self.spec.fatal {
            UNFIT
        } else {
            self.spec.weight
        }
    }
}

/// What a run changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    None,
    Lost,
    Restored,
}

#[derive(Debug, Clone)]
pub struct Health {
    checks: Vec<Check>,
}

impl Health {
    pub fn new(specs: Vec<Spec>) -> Health {
        Health {
            checks: specs.into_iter().map(Check::new).collect(),
        }
    }

    /// The same checks for a reloaded configuration: a check that keeps its name
    /// keeps its state, so a reload never makes a lost gateway look reachable.
    pub fn reconfigured(&self, specs: Vec<Spec>) -> Health {
        let mut next = Health::new(specs);
        for check in &mut next.checks {
            if let Some(old) = self.checks.iter().find(|c| c.spec.name == check.spec.name) {
                let spec = std::mem::replace(&mut check.spec, old.spec.clone());
                *check = old.clone();
                check.spec = spec;
            }
        }
        next
    }

    /// Records one run of check `index`, made at `now`.
    pub fn record(&mut self, index: usize, run: Run, now: Instant) -> Change {
        let Some(check) = self.checks.get_mut(index) else {
            return Change::None;
        };
        check.runs += 1;
        let passed = run.passed;
        check.last = Some(run);
        if passed {
            check.failures = 0;
            check.passes = check.passes.saturating_add(1);
            if check.failing && check.passes >= check.spec.rise {
                check.failing = false;
                check.failing_since = None;
                return Change::Restored;
            }
        } else {
            check.passes = 0;
            check.failures = check.failures.saturating_add(1);
            if !check.failing && check.failures >= check.spec.fall {
                check.failing = true;
                check.failing_since = Some(now);
                return Change::Lost;
            }
        }
        Change::None
    }

    /// Records a run that does not count (an active-only check in its start grace):
    /// shown, but it moves nothing.
    pub fn note(&mut self, index: usize, run: Run) {
        if let Some(check) = self.checks.get_mut(index) {
            check.runs += 1;
            check.last = Some(run);
        }
    }

    /// The score the peers see: the weights of the failing checks, [`UNFIT`] while a
    /// fatal one fails.
    pub fn score(&self) -> u8 {
        score(self.checks.iter().filter(|c| c.failing))
    }

    /// The score the election acts on at `now`: a loss counts once it has lasted
    /// its check's grace, so that a gateway lost for every node, noticed a probe
    /// apart, moves nothing. Each loss waits out its own grace.
    pub fn settled_score(&self, now: Instant) -> u8 {
        score(self.checks.iter().filter(|c| {
            c.failing_since
                .is_some_and(|since| since + c.spec.grace <= now)
        }))
    }

    /// When the next loss still in its grace at `now` will count.
    pub fn next_settled(&self, now: Instant) -> Option<Instant> {
        self.checks
            .iter()
            .filter_map(|c| c.failing_since.map(|since| since + c.spec.grace))
            .filter(|at| *at > now)
            .min()
    }

    /// The node lets the VIPs go: its active-only checks stop running. Those that
    /// were failing stick (see the module doc); all of them forget their runs, so
    /// they no longer count against the node. Returns the indexes that stuck.
    pub fn leave_active(&mut self, now: Instant) -> Vec<usize> {
        let mut stuck = Vec::new();
        for (i, check) in self.checks.iter_mut().enumerate() {
            if check.spec.scope != Scope::Active {
                continue;
            }
            if check.failing {
                check.failed_at = Some(now);
                stuck.push(i);
            }
            check.passes = 0;
            check.failures = 0;
            check.failing = false;
            check.failing_since = None;
        }
        stuck
    }

    /// Ends a sticky failure; false when the check had none.
    pub fn unstick(&mut self, index: usize) -> bool {
        self.checks
            .get_mut(index)
            .is_some_and(|check| check.failed_at.take().is_some())
    }

    /// Whether a check failed while this node was active and still sticks.
    pub fn failed(&self) -> bool {
        self.checks.iter().any(|c| c.failed_at.is_some())
    }

    /// The name of the first check whose failure while active still sticks.
    pub fn failed_check(&self) -> Option<&str> {
        (self.checks.iter())
            .find(|c| c.failed_at.is_some())
            .map(|c| c.spec.name.as_str())
    }

    /// The failing check that weighs most, to name in a reason.
    pub fn worst(&self) -> Option<&Check> {
        self.checks
            .iter()
            .filter(|c| c.failing)
            .max_by_key(|c| c.cost())
    }

    pub fn checks(&self) -> &[Check] {
        &self.checks
    }

    pub fn check(&self, index: usize) -> Option<&Check> {
        self.checks.get(index)
    }

    pub fn index_of(&self, name: &str) -> Option<usize> {
        self.checks.iter().position(|c| c.spec.name == name)
    }
}

fn score<'a>(failing: impl Iterator<Item = &'a Check>) -> u8 {
    let mut sum: u8 = 0;
    for check in failing {
        if check.spec.fatal {
            return UNFIT;
        }
        sum = sum.saturating_add(check.spec.weight);
    }
    // A sum of weights never reads as unfit.
    sum.min(UNFIT - 1)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(name: &str, fall: u32, rise: u32) -> Spec {
        Spec {
            name: name.into(),
            kind: Kind::Tcp("127.0.0.1:80".into()),
            rise,
            fall,
            weight: 1,
            fatal: false,
            scope: Scope::Both,
            grace: Duration::ZERO,
            start_grace: Duration::ZERO,
            failure_timeout: None,
        }
    }

    fn run(passed: bool) -> Run {
        Run {
            passed,
            took: Duration::from_millis(1),
            detail: String::new(),
        }
    }

    #[test]
    fn fails_after_fall_failures_and_passes_after_rise_passes() {
        let t = Instant::now();
        let mut h = Health::new(vec![spec("web", 3, 2)]);
        assert_eq!(h.record(0, run(false), t), Change::None);
        assert_eq!(h.record(0, run(false), t), Change::None);
        assert_eq!(h.score(), 0);
        assert_eq!(h.record(0, run(false), t), Change::Lost);
        assert_eq!(h.score(), 1);
        assert_eq!(h.record(0, run(true), t), Change::None, "one pass of two");
        assert_eq!(h.record(0, run(false), t), Change::None);
        assert_eq!(h.record(0, run(true), t), Change::None);
        assert_eq!(h.record(0, run(true), t), Change::Restored);
        assert_eq!(h.score(), 0);
        assert_eq!(h.check(0).unwrap().runs, 7);
    }

    #[test]
    fn a_pass_resets_the_failures() {
        let t = Instant::now();
        let mut h = Health::new(vec![spec("web", 2, 1)]);
        h.record(0, run(false), t);
        h.record(0, run(true), t);
        assert_eq!(h.record(0, run(false), t), Change::None);
        assert_eq!(h.score(), 0);
    }

    #[test]
    fn the_score_sums_weights_and_a_fatal_check_makes_the_node_unfit() {
        let t = Instant::now();
        let mut heavy = spec("db", 1, 1);
        heavy.weight = 5;
        let mut fatal = spec("disk", 1, 1);
        fatal.fatal = true;
        let mut h = Health::new(vec![spec("web", 1, 1), heavy, fatal]);
        h.record(0, run(false), t);
        h.record(1, run(false), t);
        assert_eq!(h.score(), 6);
        assert_eq!(h.worst().unwrap().spec.name, "db");
        h.record(2, run(false), t);
        assert_eq!(h.score(), UNFIT);
        assert_eq!(h.worst().unwrap().spec.name, "disk");
    }

    #[test]
    fn weights_never_add_up_to_unfit() {
        let t = Instant::now();
        let specs = (0..3)
            .map(|i| {
                let mut s = spec(&format!("c{i}"), 1, 1);
                s.weight = 100;
                s
            })
            .collect();
        let mut h = Health::new(specs);
        for i in 0..3 {
            h.record(i, run(false), t);
        }
        assert_eq!(h.score(), UNFIT - 1);
    }

    #[test]
    fn a_shared_loss_counts_after_its_own_grace_and_others_at_once() {
        let start = Instant::now();
        let at = |ms| start + Duration::from_millis(ms);
        let mut gateway = spec("gateway-198.18.0.1", 1, 1);
        gateway.grace = Duration::from_millis(200);
        let mut other = gateway.clone();
        other.name = "gateway-198.18.0.2".into();
        let mut h = Health::new(vec![gateway, other, spec("web", 1, 1)]);
        h.record(0, run(false), at(0));
        h.record(1, run(false), at(100));
        assert_eq!(h.settled_score(at(199)), 0);
        assert_eq!(h.next_settled(at(0)), Some(at(200)));
        // The first loss counts after its grace, whatever came after it.
        assert_eq!(h.settled_score(at(200)), 1);
        assert_eq!(h.next_settled(at(200)), Some(at(300)));
        assert_eq!(h.settled_score(at(300)), 2);
        assert_eq!(h.next_settled(at(300)), None);
        // A check that no peer shares counts at once.
        h.record(2, run(false), at(300));
        assert_eq!(h.settled_score(at(300)), 3);
    }

    #[test]
    fn an_active_only_failure_sticks_when_the_node_lets_go_and_counts_no_more() {
        let t = Instant::now();
        let mut active = spec("app", 1, 1);
        active.scope = Scope::Active;
        let mut h = Health::new(vec![spec("web", 1, 1), active]);
        h.record(1, run(false), t);
        h.record(0, run(false), t);
        assert_eq!(h.score(), 2);
        assert_eq!(h.leave_active(t), vec![1]);
        assert!(h.failed());
        assert_eq!(h.score(), 1, "the active-only check counts no more");
        assert!(
            h.check(0).unwrap().failing,
            "a check of both scopes is untouched"
        );
        assert!(h.unstick(1));
        assert!(!h.failed());
        assert!(!h.unstick(1));
    }

    #[test]
    fn a_reload_keeps_the_state_of_the_checks_that_stay() {
        let t = Instant::now();
        let mut h = Health::new(vec![spec("web", 1, 1), spec("db", 1, 1)]);
        h.record(1, run(false), t);
        let mut db = spec("db", 5, 1);
        db.weight = 3;
        let next = h.reconfigured(vec![db, spec("cache", 1, 1)]);
        assert_eq!(next.checks().len(), 2);
        assert!(next.check(0).unwrap().failing, "db stays failing");
        assert_eq!(next.check(0).unwrap().spec.weight, 3, "with its new spec");
        assert_eq!(next.score(), 3);
        assert!(!next.check(1).unwrap().failing);
    }
}
