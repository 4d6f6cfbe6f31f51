//! The loop's periodic chores (publishing the status, pinging systemd's watchdog),
//! done in a turn the loop wakes for anyway.
//!
//! A tokio interval wakes the loop on its own: at a 10 ms heartbeat interval, a
//! once-a-second tick cost two wake-ups a second (the timer wheel wakes once to move
//! a far timer down a level and once more to fire it), each a whole turn of the
//! loop. A chore instead runs in the first turn that comes once it is nearly due,
//! and only holds the loop's deadline to a bound a little past its due time: a node
//! that wakes every interval does its chores in those wake-ups, and one that sleeps
//! longer still does them on time.

use std::time::{Duration, Instant};

/// One chore: what it is for is the loop's business; this keeps its schedule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Chore {
    every: Duration,
    next: Instant,
}

impl Chore {
    /// A chore done every `every`, first at `first`.
    pub fn new(every: Duration, first: Instant) -> Chore {
        Chore { every, next: first }
    }

    /// Whether the chore is to be done in the turn at `now`; if so, the next is
    /// due a period after this one was (after `now`, if that is later). It counts
    /// as due an eighth of its period early, so that a wake-up that comes every
    /// period, a shade before the due time, still takes it rather than leaving it to
    /// a wake-up of its own.
    pub fn take(&mut self, now: Instant) -> bool {
        if now + self.every / 8 < self.next {
            return false;
        }
        self.next = self.next.max(now) + self.every;
        true
    }

    /// The latest the loop may sleep to and still do the chore on time: a quarter
    /// of its period past its due time.
    pub fn latest(&self) -> Instant {
        self.next + self.every / 4
    }
}

/// The earliest of the loop's deadline and its chores' latest times.
pub fn wake_by(deadline: Option<Instant>, chores: &[Option<Chore>]) -> Option<Instant> {
    chores
        .iter()
        .flatten()
        .map(Chore::latest)
        .chain(deadline)
        .min()
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECOND: Duration = Duration::from_secs(1);

    #[test]
    fn a_chore_rides_on_wake_ups_that_come_more_often_than_it_is_due() {
        let start = Instant::now();
        let mut chore = Chore::new(SECOND, start);
        let mut done = Vec::new();
        // Wake-ups every 10 ms for 3 s: the chore is done once a second, in one of
        // them, never asks the loop to wake for it, and does not creep earlier.
        for k in 0..300 {
            let now = start + Duration::from_millis(10 * k);
            assert!(chore.latest() > now);
            if chore.take(now) {
                done.push(now - start);
            }
        }
        assert_eq!(
            done,
            [
                Duration::ZERO,
                Duration::from_millis(880),
                Duration::from_millis(1880),
                Duration::from_millis(2880)
            ]
        );
    }

    #[test]
    fn a_wake_up_each_period_a_little_early_still_takes_the_chore() {
        let start = Instant::now();
        let mut chore = Chore::new(SECOND, start);
        assert!(chore.take(start));
        // A heartbeat every second that comes 5 ms before the chore is due: taken
        // every time, so the chore never needs a wake-up of its own.
        for k in 1..=5 {
            let now = start + SECOND * k - Duration::from_millis(5);
            assert!(chore.take(now), "wake-up {k}");
        }
    }

    #[test]
    fn a_chore_not_yet_nearly_due_waits_and_bounds_the_sleep() {
        let start = Instant::now();
        let mut chore = Chore::new(SECOND, start);
        assert!(chore.take(start));
        assert!(!chore.take(start + Duration::from_millis(800)));
        assert_eq!(chore.latest(), start + Duration::from_millis(1250));
        // A loop that sleeps until then does it then, and counts the next from there.
        assert!(chore.take(start + Duration::from_millis(1250)));
        assert_eq!(chore.latest(), start + Duration::from_millis(2500));
        // One that slept through several periods does it once, not once for each.
        assert!(chore.take(start + SECOND * 9));
        assert!(!chore.take(start + SECOND * 9 + Duration::from_millis(10)));
    }

    #[test]
    fn the_loop_wakes_by_the_earliest_of_its_deadline_and_its_chores() {
        let start = Instant::now();
        let publish = Chore::new(SECOND, start);
        let watchdog = Chore::new(SECOND * 10, start);
        let soon = start + Duration::from_millis(100);
        let late = start + SECOND * 5;
        assert_eq!(
            wake_by(Some(soon), &[Some(publish), Some(watchdog)]),
            Some(soon)
        );
        assert_eq!(
            wake_by(Some(late), &[Some(publish), None]),
            Some(start + Duration::from_millis(250))
        );
        assert_eq!(wake_by(None, &[None]), None);
    }
}
