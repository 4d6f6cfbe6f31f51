//! The check thread's clock: every check's schedule waits on one timerfd.
//!
//! tokio's timer wheel wakes its thread twice for a timer more than 64 ms away: once
//! to move it down a level of the wheel, once to fire it. At the default interval of
//! a second, each check's schedule cost the check thread two wake-ups a run. The
//! schedules wait on [`Alarms`] instead: one timerfd (see `deadline`), armed for the
//! earliest time any of them waits for, wakes the thread once, and every schedule
//! due by then runs in that wake-up. A run's own timeout stays a tokio timer: it is
//! almost always dropped before it fires, and a dropped timer wakes nobody.

use std::collections::BTreeMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::task::{Context, Poll, Waker};
use std::time::{Duration, Instant};

use tracing::warn;

use crate::daemon::deadline::Deadline;

/// The schedules' clock; clones share it.
#[derive(Clone, Default)]
pub struct Alarms {
    shared: Arc<Mutex<Shared>>,
}

#[derive(Default)]
struct Shared {
    /// The alarms waiting, by their time and their number, with the waker of each.
    waiting: BTreeMap<(Instant, u64), Waker>,
    numbered: u64,
    /// The clock's waker, woken when an alarm earlier than `armed` is set.
    clock: Option<Waker>,
    armed: Option<Instant>,
}

impl Alarms {
    /// A future that resolves at `at`, woken by [`Alarms::run`].
    pub fn until(&self, at: Instant) -> Alarm {
        Alarm {
            alarms: self.clone(),
            at,
            number: None,
        }
    }

    /// Wakes every alarm whose time has come, until the runtime goes away: from a
    /// timerfd, or from a tokio timer if none can be made (the process is out of
    /// descriptors), so that the checks still run.
    pub async fn run(self) {
        let clock = match Deadline::new() {
            Ok(deadline) => Clock::Timerfd(deadline),
            Err(err) => {
                warn!("checks are scheduled by tokio's timers: no timerfd for them: {err}");
                Clock::Tokio(Box::pin(tokio::time::sleep(Duration::ZERO)))
            }
        };
        self.drive(clock).await;
    }

    /// [`Alarms::run`] on `clock`.
    async fn drive(self, mut clock: Clock) {
        std::future::poll_fn(|cx| {
            loop {
                let next = self.ring(Instant::now(), cx.waker());
                if clock.poll_wait(next, cx).is_pending() {
                    return Poll::<()>::Pending;
                }
            }
        })
        .await;
    }

    /// Wakes the alarms due at `now` and takes them off; notes `clock` as the waker
    /// to wake for an earlier alarm; gives the time of the next.
    fn ring(&self, now: Instant, clock: &Waker) -> Option<Instant> {
        let mut shared = self.lock();
        while let Some(entry) = shared.waiting.first_entry() {
            if entry.key().0 > now {
                break;
            }
            entry.remove().wake();
        }
        let next = shared.waiting.first_key_value().map(|((at, _), _)| *at);
        shared.armed = next;
        if !shared.clock.as_ref().is_some_and(|w| w.will_wake(clock)) {
            shared.clock = Some(clock.clone());
        }
        next
    }

    fn lock(&self) -> MutexGuard<'_, Shared> {
        // Nothing panics while holding it; a poisoned lock still holds whole data.
        self.shared.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// What wakes the clock.
enum Clock {
    Timerfd(Deadline),
    Tokio(Pin<Box<tokio::time::Sleep>>),
    /// The runtime is going away.
    Stopped,
}

impl Clock {
    /// Armed for `next` (or for nothing), ready once it has come.
    fn poll_wait(&mut self, next: Option<Instant>, cx: &mut Context<'_>) -> Poll<()> {
        match self {
            Clock::Timerfd(deadline) => {
                if let Err(err) = deadline.set(next) {
                    warn!(
                        "cannot arm the checks' timerfd, scheduling them by tokio's timers: {err}"
                    );
                    *self = Clock::Tokio(Box::pin(tokio::time::sleep(Duration::ZERO)));
                    return Poll::Ready(());
                }
                match deadline.poll_fired(cx) {
                    Poll::Ready(Ok(())) => Poll::Ready(()),
                    // Only a runtime going away fails the wait: so do the checks.
                    Poll::Ready(Err(err)) => {
                        warn!("the checks' timerfd failed, checks stop: {err}");
                        *self = Clock::Stopped;
                        Poll::Pending
                    }
                    Poll::Pending => Poll::Pending,
                }
            }
            Clock::Tokio(sleep) => {
                // A day stands for "nothing": the next alarm set wakes the clock.
                let at = next.unwrap_or_else(|| Instant::now() + Duration::from_secs(86_400));
                if sleep.deadline().into_std() != at {
                    sleep.as_mut().reset(at.into());
                }
                sleep.as_mut().poll(cx)
            }
            Clock::Stopped => Poll::Pending,
        }
    }
}

/// See [`Alarms::until`].
pub struct Alarm {
    alarms: Alarms,
    at: Instant,
    /// Its number among the waiting alarms, once it waits.
    number: Option<u64>,
}

impl Future for Alarm {
    type Output = ();

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let this = &mut *self;
        let mut shared = this.alarms.lock();
        if Instant::now() >= this.at {
            if let Some(number) = this.number.take() {
                shared.waiting.remove(&(this.at, number));
            }
            return Poll::Ready(());
        }
        let number = *this.number.get_or_insert_with(|| {
            shared.numbered += 1;
            shared.numbered
        });
        match shared.waiting.get_mut(&(this.at, number)) {
            Some(waker) if waker.will_wake(cx.waker()) => {}
            Some(waker) => *waker = cx.waker().clone(),
            None => {
                shared.waiting.insert((this.at, number), cx.waker().clone());
            }
        }
        if shared.armed.is_none_or(|armed| this.at < armed) {
            shared.armed = Some(this.at);
            if let Some(clock) = &shared.clock {
                clock.wake_by_ref();
            }
        }
        Poll::Pending
    }
}

impl Drop for Alarm {
    fn drop(&mut self) {
        if let Some(number) = self.number {
            self.alarms.lock().waiting.remove(&(self.at, number));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::block_on;

    /// `future`, which must resolve within `within`: a broken clock fails the test
    /// rather than hang it, and an alarm never resolves by the bound's own wake-up.
    async fn within(within: Duration, future: impl Future<Output = ()>) {
        tokio::select! {
            biased;
            () = tokio::time::sleep(within) => panic!("not resolved within {within:?}"),
            () = future => {}
        }
    }

    #[test]
    fn alarms_resolve_at_their_times_in_order_whatever_order_they_were_set_in() {
        block_on(async {
            let alarms = Alarms::default();
            tokio::spawn(alarms.clone().run());
            let start = Instant::now();
            let order = Arc::new(Mutex::new(Vec::new()));
            let mut tasks = tokio::task::JoinSet::new();
            for ms in [60u64, 20, 40, 0] {
                let (alarms, order) = (alarms.clone(), Arc::clone(&order));
                tasks.spawn(async move {
                    alarms.until(start + Duration::from_millis(ms)).await;
                    assert!(start.elapsed() >= Duration::from_millis(ms));
                    order.lock().unwrap().push(ms);
                });
            }
            within(Duration::from_secs(5), async {
                while let Some(done) = tasks.join_next().await {
                    done.expect("an alarm task");
                }
            })
            .await;
            assert_eq!(*order.lock().unwrap(), [0, 20, 40, 60]);
        });
    }

    #[test]
    fn an_alarm_earlier_than_the_one_armed_wakes_the_clock_for_it() {
        block_on(async {
            let alarms = Alarms::default();
            tokio::spawn(alarms.clone().run());
            let start = Instant::now();
            let late = tokio::spawn(alarms.until(start + Duration::from_secs(30)));
            tokio::time::sleep(Duration::from_millis(20)).await;
            // The clock is armed for 30 s now; this one must not wait that long.
            within(
                Duration::from_secs(2),
                alarms.until(start + Duration::from_millis(50)),
            )
            .await;
            late.abort();
        });
    }

    #[test]
    fn without_a_timerfd_the_clock_still_wakes_the_alarms() {
        block_on(async {
            let alarms = Alarms::default();
            let clock = Clock::Tokio(Box::pin(tokio::time::sleep(Duration::ZERO)));
            tokio::spawn(alarms.clone().drive(clock));
            let start = Instant::now();
            for ms in [30, 60] {
                within(
                    Duration::from_secs(2),
                    alarms.until(start + Duration::from_millis(ms)),
                )
                .await;
            }
        });
    }

    #[test]
    fn the_clock_wakes_its_thread_once_for_every_alarm_due_together() {
        block_on(async {
            let alarms = Alarms::default();
            let turns = Arc::new(std::sync::atomic::AtomicUsize::new(0));
            let counted = Arc::clone(&turns);
            let clock = Clock::Timerfd(Deadline::new().expect("timerfd"));
            let mut drive = Box::pin(alarms.clone().drive(clock));
            tokio::spawn(std::future::poll_fn(move |cx| {
                counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                drive.as_mut().poll(cx)
            }));
            let start = Instant::now();
            let due = start + Duration::from_millis(100);
            let mut tasks = tokio::task::JoinSet::new();
            for _ in 0..8 {
                tasks.spawn(alarms.until(due));
            }
            within(Duration::from_secs(2), async {
                while tasks.join_next().await.is_some() {}
            })
            .await;
            // Polled once at the start, once for each of the first alarms set (an
            // earlier time wakes it), and once at the time: never busy.
            let turns = turns.load(std::sync::atomic::Ordering::SeqCst);
            assert!(turns <= 12, "the clock was polled {turns} times");
        });
    }

    #[test]
    fn a_dropped_alarm_leaves_nothing_waiting() {
        block_on(async {
            let alarms = Alarms::default();
            tokio::spawn(alarms.clone().run());
            let start = Instant::now();
            let waited = tokio::time::timeout(
                Duration::from_millis(20),
                alarms.until(start + Duration::from_secs(30)),
            )
            .await;
            assert!(waited.is_err(), "a 30 s alarm resolved");
            assert!(alarms.lock().waiting.is_empty());
            within(
                Duration::from_secs(2),
                alarms.until(start + Duration::from_millis(30)),
            )
            .await;
            assert!(alarms.lock().waiting.is_empty());
        });
    }
}
