//! Every deadline the machine keeps, in one table.
//!
//! A deadline is armed where the rule that needs it decides so, and nowhere else:
//! [`Machine::poll_timeout`](super::Machine::poll_timeout) is the earliest armed
//! one, and [`Machine::handle_timeout`](super::Machine::handle_timeout) disarms every
//! expired one before it dispatches them, so a deadline can never be due and
//! ignored (which would wake the shell in a busy loop). A new kind of deadline is a
//! new [`Timer`] variant, and the exhaustive match in `handle_timeout` shows where
//! it must be handled.
//!
//! Some timers do work when they expire (send a heartbeat, age a peer); the others
//! only bound a wait that a rule asks about with [`Timers::pending`] ("is the node
//! still within its release grace?"), and their expiry just lets the election run
//! again.

use std::time::Instant;

/// A kind of deadline. The order of the variants is the order in which expired
/// timers are handled within one wake-up: peers age before the heartbeat that
/// reports on them, and the nonce turns before the heartbeat that carries it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(super) enum Timer {
    /// A link to this peer (by index) crosses `warn` or `dead` of silence.
    Silence(usize),
    /// The freshness nonce is due to change (every `dead`): it does with the next
    /// heartbeat.
    Nonce,
    /// The next regular heartbeat.
    Heartbeat,
    /// A quiet heartbeat's nonce has gone unechoed for two intervals: the quiet
    /// ends now (see `pace`), and this node must be awake to beat at once.
    QuietEcho,
    /// Starting: our first heartbeats have had time to reach every peer.
    HeardBack,
    /// Starting: `init_dead` is over; the node elects with whoever it heard.
    InitDead,
    /// Elections stop waiting for this peer's handshake.
    Handshake(usize),
    /// The earliest health loss still in its grace has lasted it and now counts.
    HealthGrace,
    /// A node that resumed after a stall stops yielding to an active peer.
    Yield,
    /// A node that just released may claim the VIPs back.
    ReleaseGrace,
    /// A claim has waited long enough for its confirmations: it proceeds.
    Claim,
    /// The preferred node has been ready for `failback_delay`.
    Failback,
    /// The earliest failed VIP addition or removal is due for another try.
    VipRetry,
    /// The sticky failure of this check (by index) reaches its `failure_timeout`.
    Unstick(usize),
    /// The held VIPs are due to be announced again (`announce.refresh`).
    Refresh,
    /// Dropped datagrams are due to be summed up in one log line.
    RejectReport,
    /// The split-brain guard's next probe is due (see `guard`).
    Probe,
    /// The fence of this peer (by index) is due for another try.
    Fence(usize),
    /// This node resumed after a stall: peers are not judged dead before the
    /// heartbeats that queued up meanwhile have been read.
    Resumed,
    /// The holder's majority runs out (see `quorum`).
    Majority,
    /// A veto has outlasted the voter's news about a dead holder: it is reported.
    Veto,
    /// A flapping node's damped takeover: the silent holder has been silent for
    /// long enough (see `steady`).
    Damped,
    /// A flapping node has gone `quiet` without an unplanned change: it relaxes.
    Relax,
}

/// The armed deadlines. A handful at most per peer, so a short list beats a map.
#[derive(Debug, Clone, Default)]
pub(super) struct Timers {
    armed: Vec<(Timer, Instant)>,
    /// The list [`Timers::expire`] fills, kept between expiries so that the
    /// heartbeat's own expiry allocates nothing.
    spare: Vec<(Timer, Instant)>,
}

impl Timers {
    /// Arms `timer` at `at`, replacing any earlier setting.
    pub(super) fn set(&mut self, timer: Timer, at: Instant) {
        match self.armed.iter_mut().find(|(t, _)| *t == timer) {
            Some(slot) => slot.1 = at,
            None => self.armed.push((timer, at)),
        }
    }

    /// Arms `timer` at `at`, or disarms it for `None`.
    pub(super) fn set_or_stop(&mut self, timer: Timer, at: Option<Instant>) {
        match at {
            Some(at) => self.set(timer, at),
            None => self.stop(timer),
        }
    }

    pub(super) fn stop(&mut self, timer: Timer) {
        self.armed.retain(|(t, _)| *t != timer);
    }

    pub(super) fn get(&self, timer: Timer) -> Option<Instant> {
        self.armed
            .iter()
            .find(|(t, _)| *t == timer)
            .map(|(_, at)| *at)
    }

    /// Whether `timer` is armed and not yet due at `now`: the wait it bounds is
    /// still on, whether or not `handle_timeout` has run since it expired.
    pub(super) fn pending(&self, timer: Timer, now: Instant) -> bool {
        self.get(timer).is_some_and(|at| now < at)
    }

    /// The earliest armed deadline.
    pub(super) fn next(&self) -> Option<Instant> {
        self.armed.iter().map(|(_, at)| *at).min()
    }

    /// Disarms every timer due at `now` and returns them, with the deadline each
    /// was set for, in handling order. Give the list back with [`Timers::restore`]
    /// once handled, for the next expiry to fill.
    pub(super) fn expire(&mut self, now: Instant) -> Vec<(Timer, Instant)> {
        let mut due = std::mem::take(&mut self.spare);
        due.extend(self.armed.iter().filter(|(_, at)| *at <= now).copied());
        self.armed.retain(|(_, at)| *at > now);
        due.sort_unstable_by_key(|(t, _)| *t);
        due
    }

    /// Takes back a list [`Timers::expire`] returned.
    pub(super) fn restore(&mut self, mut due: Vec<(Timer, Instant)>) {
        due.clear();
        self.spare = due;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn the_earliest_deadline_is_next_and_expiry_disarms_in_handling_order() {
        let t0 = Instant::now();
        let mut timers = Timers::default();
        timers.set(Timer::Heartbeat, t0 + Duration::from_millis(100));
        timers.set(Timer::Silence(1), t0 + Duration::from_millis(100));
        timers.set(Timer::RejectReport, t0 + Duration::from_millis(50));
        timers.set(Timer::InitDead, t0 + Duration::from_secs(1));
        assert_eq!(timers.next(), Some(t0 + Duration::from_millis(50)));

        let due = timers.expire(t0 + Duration::from_millis(100));
        let kinds: Vec<Timer> = due.iter().map(|(t, _)| *t).collect();
        assert_eq!(
            kinds,
            vec![Timer::Silence(1), Timer::Heartbeat, Timer::RejectReport]
        );
        assert_eq!(due[1].1, t0 + Duration::from_millis(100));
        assert_eq!(timers.next(), Some(t0 + Duration::from_secs(1)));
        assert!(timers.expire(t0 + Duration::from_millis(100)).is_empty());
    }

    #[test]
    fn setting_again_moves_the_deadline_and_stop_disarms() {
        let t0 = Instant::now();
        let mut timers = Timers::default();
        timers.set(Timer::Refresh, t0 + Duration::from_secs(10));
        timers.set(Timer::Refresh, t0 + Duration::from_secs(5));
        assert_eq!(
            timers.get(Timer::Refresh),
            Some(t0 + Duration::from_secs(5))
        );
        timers.set_or_stop(Timer::Refresh, None);
        assert_eq!(timers.next(), None);
    }

    #[test]
    fn pending_means_armed_and_not_yet_due() {
        let t0 = Instant::now();
        let mut timers = Timers::default();
        assert!(!timers.pending(Timer::Yield, t0));
        timers.set(Timer::Yield, t0 + Duration::from_millis(10));
        assert!(timers.pending(Timer::Yield, t0));
        assert!(!timers.pending(Timer::Yield, t0 + Duration::from_millis(10)));
    }
}
