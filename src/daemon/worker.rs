//! Threads for the blocking calls the loop must never make itself: appending to the
//! event file, writing the maintenance flag, sending to systemd, reading the
//! configuration on reload (which may ask NSS for group names).
//!
//! Each [`Worker`] is one thread with a bounded queue, so its jobs run in the order
//! they were given and a stuck one (a FIFO nobody reads, a hung FUSE or NFS mount, a
//! slow LDAP server) holds up only that worker. The loop never waits for room: a full
//! queue refuses the job, and the caller counts it and says so at most every
//! [`Drops::EVERY`]. A job that panics is logged and the worker goes on with the
//! next: a thread that died would refuse every later job as if it were stuck.

use std::io;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::OnceLock;
use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::time::{Duration, Instant};

/// A thread running jobs of type `J` one at a time, in order.
pub struct Worker<J> {
    queue: SyncSender<J>,
}

impl<J: Send + 'static> Worker<J> {
    /// Starts thread `name`, which hands each job to `run` until every handle to
    /// the worker is dropped. At most `capacity` jobs wait.
    pub fn spawn(
        name: &str,
        capacity: usize,
        mut run: impl FnMut(J) + Send + 'static,
    ) -> io::Result<Worker<J>> {
        let (queue, jobs) = mpsc::sync_channel::<J>(capacity);
        let thread = name.to_owned();
        std::thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || {
                let _helper = super::scheduling::helper_started();
                for job in jobs {
                    // The job's state is its own; what `run` keeps between jobs (a
                    // file handle, a counter) stays usable after a panic in one.
                    if catch_unwind(AssertUnwindSafe(|| run(job))).is_err() {
                        tracing::error!(worker = %thread, "a job of the {thread} thread panicked; going on with the next");
                    }
                }
            })?;
        Ok(Worker { queue })
    }

    /// Queues `job`, or gives it back when the queue is full (the worker is stuck or
    /// behind) or the thread is gone.
    pub fn submit(&self, job: J) -> Result<(), J> {
        self.queue.try_send(job).map_err(|err| match err {
            TrySendError::Full(job) | TrySendError::Disconnected(job) => job,
        })
    }
}

impl<J> Clone for Worker<J> {
    fn clone(&self) -> Self {
        Worker {
            queue: self.queue.clone(),
        }
    }
}

/// Things whose closing blocks: a packet socket's close waits for an RCU grace
/// period (synchronize_net), which a host starved by realtime work can stretch to
/// a second. The loop's tasks hand them here rather than close them themselves.
static CLOSER: OnceLock<Worker<Box<dyn Send>>> = OnceLock::new();

/// Things that may wait to be closed; more are closed where they are dropped.
const CLOSING: usize = 64;

/// Starts the thread behind [`close_elsewhere`]; once is enough.
pub fn start_closer() -> io::Result<()> {
    if CLOSER.get().is_none() {
        let closer = Worker::spawn("failoverd-close", CLOSING, drop::<Box<dyn Send>>)?;
        let _ = CLOSER.set(closer);
    }
    Ok(())
}

/// Drops `value` on the closer thread, or here if it was never started (a tool, a
/// test) or is behind.
pub fn close_elsewhere<T: Send + 'static>(value: T) {
    if let Some(closer) = CLOSER.get() {
        let _ = closer.submit(Box::new(value));
    }
}

/// Counts what was dropped and says when to report it: at once for the first drop,
/// then at most every [`Drops::EVERY`], so a flood or a stuck worker costs one log
/// line every few seconds, never one per drop.
#[derive(Debug, Default)]
pub struct Drops {
    total: u64,
    pending: u64,
    reported: Option<Instant>,
}

impl Drops {
    pub const EVERY: Duration = Duration::from_secs(10);

    /// Counts `n` more drops at `now`; returns how many to report now, if it is time.
    pub fn count(&mut self, n: u64, now: Instant) -> Option<u64> {
        self.total += n;
        self.pending += n;
        self.due(now)
    }

    /// The drops not yet reported, if it is time to report them.
    pub fn due(&mut self, now: Instant) -> Option<u64> {
        if self.pending == 0 {
            return None;
        }
        if let Some(last) = self.reported
            && now.saturating_duration_since(last) < Drops::EVERY
        {
            return None;
        }
        self.reported = Some(now);
        Some(std::mem::take(&mut self.pending))
    }

    /// Everything dropped so far.
    pub fn total(&self) -> u64 {
        self.total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_that_panics_leaves_the_worker_running_the_next() {
        let (done_tx, done) = mpsc::channel::<u32>();
        let worker = Worker::spawn("worker-panic", 4, move |n: u32| {
            assert!(n != 1, "job 1 panics on purpose");
            let _ = done_tx.send(n);
        })
        .unwrap();
        for n in 0..3 {
            worker.submit(n).unwrap();
        }
        let got: Vec<u32> = (0..2)
            .map(|_| {
                done.recv_timeout(Duration::from_secs(5))
                    .expect("a job ran")
            })
            .collect();
        assert_eq!(got, vec![0, 2]);
        assert!(worker.submit(3).is_ok(), "the worker is still there");
    }

    #[test]
    fn jobs_run_in_order_and_a_stuck_worker_refuses_rather_than_blocks() {
        let (gate_tx, gate) = mpsc::channel::<()>();
        let (done_tx, done) = mpsc::channel::<u32>();
        let worker = Worker::spawn("worker-test", 2, move |n: u32| {
            if n == 0 {
                // Stuck until the test lets go.
                let _ = gate.recv();
            }
            let _ = done_tx.send(n);
        })
        .unwrap();
        worker.submit(0).unwrap();
        // The first job may not have been taken off the queue yet: wait until the
        // queue refuses, which must come after at most three more.
        let mut queued = Vec::new();
        let mut refused = None;
        for n in 1..=4 {
            match worker.submit(n) {
                Ok(()) => queued.push(n),
                Err(n) => {
                    refused = Some(n);
                    break;
                }
            }
        }
        assert!(refused.is_some(), "a stuck worker's queue never filled");
        gate_tx.send(()).unwrap();
        let ran: Vec<u32> = (0..=queued.len()).map(|_| done.recv().unwrap()).collect();
        let mut expected = vec![0];
        expected.extend(&queued);
        assert_eq!(ran, expected);
    }

    #[test]
    fn drops_are_reported_at_once_then_at_most_every_ten_seconds() {
        let start = Instant::now();
        let mut drops = Drops::default();
        assert_eq!(drops.count(1, start), Some(1));
        assert_eq!(drops.count(5, start + Duration::from_secs(1)), None);
        assert_eq!(drops.due(start + Duration::from_secs(9)), None);
        assert_eq!(drops.due(start + Duration::from_secs(10)), Some(5));
        assert_eq!(drops.due(start + Duration::from_secs(30)), None);
        assert_eq!(drops.total(), 6);
    }
}
