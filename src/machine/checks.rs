//! What the machine does with a check's run: counting it (or only showing it, for an
//! active-only check before its start grace), acting on a check lost or back, the
//! grace of shared losses, and the end of sticky failures. The checks' state itself
//! is `health.rs`'; running them is the shell's.

use std::time::Instant;

use super::health::{Change, Run};
use super::timer::Timer;
use super::{Event, Machine};
use crate::config::Scope;

/// What ended a sticky failure.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Unstuck {
    Operator,
    Timeout,
}

impl Unstuck {
    pub(super) fn as_str(self) -> &'static str {
        match self {
            Unstuck::Operator => "failoverd clear",
            Unstuck::Timeout => "its failure_timeout",
        }
    }
}

impl Machine {
    pub(super) fn on_check(&mut self, now: Instant, index: usize, run: &Run) {
        let Some(check) = self.health.check(index) else {
            return;
        };
        // An active-only check counts once the service is up and its start grace is
        // over; before, and on a node that is not active, its runs are only shown.
        if check.spec.scope == Scope::Active && !self.service_settled(now, check.spec.start_grace) {
            return self.health.note(index, run.clone());
        }
        self.record_check(now, index, run.clone());
    }

    /// Records a run of check `index` and acts on what it changed.
    pub(super) fn record_check(&mut self, now: Instant, index: usize, run: Run) {
        let change = self.health.record(index, run, now);
        let Some(check) = self.health.check(index) else {
            return;
        };
        let (name, kind, what) = (
            check.spec.name.clone(),
            check.spec.kind.as_str(),
            check.spec.kind.to_string(),
        );
        match change {
            Change::None => return,
            Change::Lost => self.events.push(Event::CheckFailed {
                check: name,
                kind,
                what,
                failures: check.failures,
                detail: check
                    .last
                    .as_ref()
                    .map(|r| r.detail.clone())
                    .unwrap_or_default(),
            }),
            Change::Restored => self.events.push(Event::CheckPassed {
                check: name,
                kind,
                what,
            }),
        }
        self.arm_health_grace(now);
        // Peers rank on health: tell them now rather than at the next interval.
        self.heartbeat();
    }

    /// Wakes the election when the next loss still in its grace starts to count.
    pub(super) fn arm_health_grace(&mut self, now: Instant) {
        let next = self.health.next_settled(now);
        self.timers.set_or_stop(Timer::HealthGrace, next);
    }

    /// Ends the sticky failure of check `index`.
    pub(super) fn unstick(&mut self, now: Instant, index: usize, by: Unstuck) {
        self.timers.stop(Timer::Unstick(index));
        if !self.health.unstick(index) {
            return;
        }
        if let Some(check) = self.health.check(index) {
            self.events.push(Event::CheckCleared {
                check: check.spec.name.clone(),
                by: by.as_str(),
            });
        }
        self.heartbeat();
        self.evaluate(now);
    }
}
