//! The machine's next deadline as a timerfd that the loop waits on beside its
//! sockets.
//!
//! A tokio timer costs the loop extra wake-ups at every heartbeat interval: moving a
//! timer earlier than the one the driver last slept for makes it wake its own
//! eventfd, and moving one later leaves it to wake at the old deadline for nothing.
//! At a 10 ms interval those were two of the four wake-ups of every interval. A
//! timerfd is rearmed with one call that wakes nobody, and the kernel wakes the
//! loop once, when the deadline comes.

use std::io;
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::task::{Context, Poll, ready};
use std::time::{Duration, Instant};

use tokio::io::unix::AsyncFd;

/// A one-shot timer on CLOCK_MONOTONIC, the clock of `Instant`.
pub struct Deadline {
    fd: AsyncFd<OwnedFd>,
    armed: Option<Instant>,
}

impl Deadline {
    /// A disarmed timer; call from within the runtime.
    pub fn new() -> io::Result<Deadline> {
        // SAFETY: plain call with flags; the result is checked before use.
        let raw = unsafe {
            libc::timerfd_create(
                libc::CLOCK_MONOTONIC,
                libc::TFD_NONBLOCK | libc::TFD_CLOEXEC,
            )
        };
        if raw < 0 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `raw` is a new descriptor that nothing else owns.
        let fd = unsafe { OwnedFd::from_raw_fd(raw) };
        // SAFETY: the OwnedFd owns its descriptor and always returns that same one;
        // nothing here takes it out or replaces it while it is registered.
        let fd = unsafe { AsyncFd::register_with_interest(fd, tokio::io::Interest::READABLE) }?;
        Ok(Deadline { fd, armed: None })
    }

    /// Fires at `at` (at once if it has passed); `None` disarms. The same deadline
    /// again costs nothing.
    pub fn set(&mut self, at: Option<Instant>) -> io::Result<()> {
        if self.armed == at {
            return Ok(());
        }
        let value = match at {
            // A zero value disarms a timerfd, so a deadline already passed is set to
            // the shortest wait instead.
            Some(at) => at
                .saturating_duration_since(Instant::now())
                .max(Duration::from_nanos(1)),
            None => Duration::ZERO,
        };
        let spec = libc::itimerspec {
            it_interval: libc::timespec {
                tv_sec: 0,
                tv_nsec: 0,
            },
            it_value: libc::timespec {
                tv_sec: libc::time_t::try_from(value.as_secs()).unwrap_or(libc::time_t::MAX),
                tv_nsec: libc::c_long::from(value.subsec_nanos() as i32),
            },
        };
        // SAFETY: `spec` lives across the call; the old value is not asked for.
        let done = unsafe {
            libc::timerfd_settime(
                self.fd.as_raw_fd(),
                0,
                &raw const spec,
                std::ptr::null_mut(),
            )
        };
        if done != 0 {
            return Err(io::Error::last_os_error());
        }
        self.armed = at;
        Ok(())
    }

    /// Resolves once the deadline set last has come; the next `set` arms the timer
    /// again. It fails only when the runtime goes away.
    pub async fn fired(&mut self) -> io::Result<()> {
        std::future::poll_fn(|cx| self.poll_fired(cx)).await
    }

    /// [`Deadline::fired`] as a poll. The timer's readiness is polled rather than
    /// awaited: awaiting it puts a waiter on the runtime's list for the descriptor
    /// and takes it off again on every turn of the loop that ends another way.
    pub fn poll_fired(&mut self, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        loop {
            let mut ready = ready!(self.fd.poll_read_ready(cx))?;
            // The timer is never read: arming it again resets its count of
            // expirations, and each expiry is an edge of its own for the runtime, so
            // the read would cost a system call per interval and tell nothing. The
            // clock tells instead: a readiness left from a deadline since moved
            // later (it fired while the loop was busy with a heartbeat) is dropped
            // and waited past, because the new deadline has not come.
            ready.clear_ready();
            if let Some(at) = self.armed
                && Instant::now() >= at
            {
                self.armed = None;
                return Poll::Ready(Ok(()));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testing::block_on;

    #[test]
    fn fires_at_the_deadline_and_only_once_it_is_set_again() {
        block_on(async {
            let mut deadline = Deadline::new().expect("timerfd");
            let start = Instant::now();
            deadline
                .set(Some(start + Duration::from_millis(30)))
                .expect("arm");
            deadline.fired().await.expect("fired");
            assert!(start.elapsed() >= Duration::from_millis(30));
            // Fired and not set again: waiting must not resolve.
            let again = tokio::time::timeout(Duration::from_millis(50), deadline.fired()).await;
            assert!(again.is_err(), "a fired deadline fired again");
        });
    }

    #[test]
    fn a_moved_deadline_fires_at_the_new_time_and_a_past_one_at_once() {
        block_on(async {
            let mut deadline = Deadline::new().expect("timerfd");
            let start = Instant::now();
            deadline
                .set(Some(start + Duration::from_secs(3600)))
                .expect("arm");
            deadline
                .set(Some(start + Duration::from_millis(20)))
                .expect("move");
            tokio::time::timeout(Duration::from_secs(5), deadline.fired())
                .await
                .expect("fires at the moved deadline")
                .expect("fired");
            deadline
                .set(Some(start - Duration::from_millis(1)))
                .expect("past");
            tokio::time::timeout(Duration::from_secs(1), deadline.fired())
                .await
                .expect("a past deadline fires at once")
                .expect("fired");
            deadline.set(None).expect("disarm");
            let disarmed = tokio::time::timeout(Duration::from_millis(30), deadline.fired()).await;
            assert!(disarmed.is_err(), "a disarmed deadline fired");
        });
    }

    #[test]
    fn a_deadline_moved_later_after_it_fired_unseen_waits_for_the_new_time() {
        block_on(async {
            let mut deadline = Deadline::new().expect("timerfd");
            let start = Instant::now();
            deadline
                .set(Some(start + Duration::from_millis(10)))
                .expect("arm");
            // The runtime takes the expiry while nobody waits on the deadline, as
            // the loop's does while it handles a heartbeat.
            tokio::time::sleep(Duration::from_millis(40)).await;
            let later = start + Duration::from_millis(150);
            deadline.set(Some(later)).expect("move later");
            tokio::time::timeout(Duration::from_secs(5), deadline.fired())
                .await
                .expect("fires at the later deadline")
                .expect("fired");
            assert!(
                Instant::now() >= later,
                "fired {:?} early, on the expiry of the deadline it replaced",
                later - Instant::now()
            );
        });
    }
}
