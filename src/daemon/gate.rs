//! The loop's seldom-ready sources (the channels from the other threads and tasks,
//! the signals), polled only after one of them has woken.
//! The heartbeat sockets sit behind a gate of their own (`receive::Datagrams`):
//! most of an active node's wake-ups are its deadline's.
//!
//! tokio's `select!` polls every branch on every wake-up of the loop. At a 10 ms
//! interval the loop wakes about a hundred times a second for heartbeats and its
//! deadline, and polling a dozen other sources each time (a lock taken and released
//! for each signal, a waker registered for each channel and timer) was about a tenth
//! of an idle standby's CPU. Polled through a [`Gate`], those sources hold the
//! gate's waker instead of the loop's: when one of them wakes, the gate opens and
//! wakes the loop, which then polls them all; while it is shut, they cost a wake-up
//! of the loop one atomic swap.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll, Wake, Waker};

use futures_util::task::AtomicWaker;

/// See the module's documentation.
pub struct Gate {
    shared: Arc<Shared>,
    /// The waker the sources behind the gate are polled with.
    waker: Waker,
}

struct Shared {
    /// Whether a source behind the gate woke since they were last polled.
    open: AtomicBool,
    /// The loop's waker, which the gate passes a wake-up on to.
    outer: AtomicWaker,
}

impl Wake for Shared {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.open.store(true, Ordering::Release);
        self.outer.wake();
    }
}

impl Gate {
    /// An open gate: the sources must be polled once to hold its waker.
    pub fn new() -> Gate {
        let shared = Arc::new(Shared {
            open: AtomicBool::new(true),
            outer: AtomicWaker::new(),
        });
        let waker = Waker::from(Arc::clone(&shared));
        Gate { shared, waker }
    }

    /// Runs `poll` on the sources behind the gate, with the gate's waker, if one of
    /// them woke since the last time; `Pending` at once if none did. After a
    /// `Ready` the gate stays open, since the source that gave one item may hold
    /// more.
    pub fn poll<T>(
        &self,
        cx: &mut Context<'_>,
        poll: impl FnOnce(&mut Context<'_>) -> Poll<T>,
    ) -> Poll<T> {
        // Before the swap, so that a wake-up between the two still reaches the loop.
        self.shared.outer.register(cx.waker());
        if !self.shared.open.swap(false, Ordering::AcqRel) {
            return Poll::Pending;
        }
        let result = poll(&mut Context::from_waker(&self.waker));
        if result.is_ready() {
            self.shared.open.store(true, Ordering::Release);
        }
        result
    }

    /// The waker the sources behind the gate must hold: for polling one outside
    /// [`Gate::poll`], so that it still opens the gate when it wakes.
    pub fn waker(&self) -> &Waker {
        &self.waker
    }

    /// Opens the gate, so that the next turn polls every source: after a source
    /// was replaced by one that holds no waker yet.
    pub fn open(&self) {
        self.shared.open.store(true, Ordering::Release);
    }
}

impl Default for Gate {
    fn default() -> Gate {
        Gate::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::future::poll_fn;
    use std::sync::atomic::AtomicUsize;
    use std::time::Duration;

    use tokio::sync::mpsc;

    /// A waker that counts its wake-ups, as the loop's would be woken.
    struct Count(AtomicUsize);

    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    #[test]
    fn a_shut_gate_polls_nothing_until_a_source_behind_it_wakes() {
        let gate = Gate::new();
        let count = Arc::new(Count(AtomicUsize::new(0)));
        let outer = Waker::from(Arc::clone(&count));
        let mut cx = Context::from_waker(&outer);
        let (tx, mut rx) = mpsc::unbounded_channel::<u32>();
        let polls = AtomicUsize::new(0);
        let mut poll = |cx: &mut Context<'_>| {
            polls.fetch_add(1, Ordering::SeqCst);
            rx.poll_recv(cx)
        };
        // Open at first: polled, nothing there, shut.
        assert_eq!(gate.poll(&mut cx, &mut poll), Poll::Pending);
        assert_eq!(polls.load(Ordering::SeqCst), 1);
        // Shut: the source is not polled, however often the loop wakes.
        for _ in 0..3 {
            assert_eq!(gate.poll(&mut cx, &mut poll), Poll::Pending);
        }
        assert_eq!(polls.load(Ordering::SeqCst), 1);
        assert_eq!(count.0.load(Ordering::SeqCst), 0);
        // A message wakes the source, which opens the gate and wakes the loop.
        tx.send(7).expect("send");
        assert_eq!(count.0.load(Ordering::SeqCst), 1);
        assert_eq!(gate.poll(&mut cx, &mut poll), Poll::Ready(Some(7)));
        // Open after an item: polled again, then shut once it is empty.
        assert_eq!(gate.poll(&mut cx, &mut poll), Poll::Pending);
        assert_eq!(gate.poll(&mut cx, &mut poll), Poll::Pending);
        assert_eq!(polls.load(Ordering::SeqCst), 3);
    }

    #[tokio::test]
    async fn a_source_woken_from_another_thread_reaches_the_loop() {
        let gate = Gate::new();
        let (tx, mut rx) = mpsc::channel::<u32>(4);
        let (ticks_tx, mut ticks) = mpsc::unbounded_channel::<()>();
        let sender = std::thread::spawn(move || {
            for n in 0..100 {
                if n % 10 == 0 {
                    std::thread::sleep(Duration::from_millis(1));
                }
                tx.blocking_send(n).expect("send");
            }
        });
        // The loop also wakes for another source, not behind the gate, as it
        // does for heartbeats.
        std::thread::spawn(move || {
            for _ in 0..50 {
                if ticks_tx.send(()).is_err() {
                    return;
                }
                std::thread::sleep(Duration::from_micros(200));
            }
        });
        let mut got = Vec::new();
        let waited = tokio::time::timeout(Duration::from_secs(10), async {
            while got.len() < 100 {
                tokio::select! {
                    Some(()) = ticks.recv() => {}
                    Some(n) = poll_fn(|cx| gate.poll(cx, |cx| rx.poll_recv(cx))) => got.push(n),
                }
            }
        })
        .await;
        assert!(waited.is_ok(), "lost a wake-up: got {} of 100", got.len());
        assert_eq!(got, (0..100).collect::<Vec<_>>());
        sender.join().expect("sender");
    }
}
