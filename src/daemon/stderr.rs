//! The daemon's log lines reach stderr (journald, under systemd) through a thread of
//! their own, so a log reader that stops reading (journald restarting or stuck, a
//! full pipe) never blocks the loop that sends heartbeats: a line that finds the
//! queue full is dropped and counted, and the next line that gets through says how
//! many were lost.
//!
//! Lines still queued at exit are written by [`Flush`], which the caller holds for
//! as long as the daemon runs, waiting a bounded time.

use std::io::{self, Write};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use tracing_subscriber::fmt::MakeWriter;

use super::worker::Worker;

/// Lines that may wait for stderr: a burst of a few seconds' worth at debug level.
const QUEUED: usize = 4096;
/// How long the daemon waits at exit for the queued lines to be written.
const FLUSH_WAIT: Duration = Duration::from_secs(1);

enum Job {
    Line(Vec<u8>),
    Flush(mpsc::Sender<()>),
}

/// A `MakeWriter` for tracing: each event becomes one line queued for the thread.
#[derive(Clone)]
pub struct Stderr {
    worker: Worker<Job>,
    dropped: Arc<AtomicU64>,
}

impl Stderr {
    /// Starts the thread writing to `out` (stderr in the daemon).
    pub fn spawn(out: impl Write + Send + 'static) -> io::Result<(Stderr, Flush)> {
        Stderr::with_capacity(out, QUEUED)
    }

    fn with_capacity(
        mut out: impl Write + Send + 'static,
        capacity: usize,
    ) -> io::Result<(Stderr, Flush)> {
        let dropped = Arc::new(AtomicU64::new(0));
        let lost = Arc::clone(&dropped);
        let worker = Worker::spawn("failoverd-log", capacity, move |job: Job| match job {
            Job::Line(line) => {
                let n = lost.swap(0, Ordering::Relaxed);
                if n > 0 {
                    let _ = writeln!(
                        out,
                        "{n} log lines dropped: stderr did not take them in time"
                    );
                }
                let _ = out.write_all(&line);
                let _ = out.flush();
            }
            Job::Flush(done) => {
                let _ = out.flush();
                let _ = done.send(());
            }
        })?;
        let stderr = Stderr { worker, dropped };
        let flush = Flush(stderr.clone());
        Ok((stderr, flush))
    }

    fn submit(&self, line: Vec<u8>) {
        if self.worker.submit(Job::Line(line)).is_err() {
            self.dropped.fetch_add(1, Ordering::Relaxed);
        }
    }
}

/// One log line being formatted; queued when tracing is done with it.
pub struct Line<'a> {
    to: &'a Stderr,
    buf: Vec<u8>,
}

impl Write for Line<'_> {
    fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
        self.buf.extend_from_slice(bytes);
        Ok(bytes.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

impl Drop for Line<'_> {
    fn drop(&mut self) {
        if !self.buf.is_empty() {
            self.to.submit(std::mem::take(&mut self.buf));
        }
    }
}

impl<'a> MakeWriter<'a> for Stderr {
    type Writer = Line<'a>;

    fn make_writer(&'a self) -> Line<'a> {
        Line {
            to: self,
            buf: Vec::new(),
        }
    }
}

/// Writes what is still queued when dropped, waiting at most [`FLUSH_WAIT`]: the
/// last lines (why the daemon stopped) matter most.
pub struct Flush(Stderr);

impl Flush {
    /// Waits until the lines queued so far are written, at most [`FLUSH_WAIT`].
    pub fn wait(&self) {
        let deadline = Instant::now() + FLUSH_WAIT;
        let (done, wait) = mpsc::channel();
        let mut job = Job::Flush(done);
        // A full queue takes the request once the thread has written a line.
        while let Err(back) = self.0.worker.submit(job) {
            if Instant::now() >= deadline {
                return;
            }
            job = back;
            std::thread::sleep(Duration::from_millis(2));
        }
        let _ = wait.recv_timeout(deadline.saturating_duration_since(Instant::now()));
    }
}

impl Drop for Flush {
    fn drop(&mut self) {
        self.wait();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Mutex;

    /// A writer that blocks until the test lets go, then keeps what it got.
    struct Stuck {
        gate: Arc<Mutex<()>>,
        got: Arc<Mutex<Vec<u8>>>,
    }

    impl Write for Stuck {
        fn write(&mut self, bytes: &[u8]) -> io::Result<usize> {
            let _open = self.gate.lock().unwrap_or_else(|e| e.into_inner());
            self.got
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .extend_from_slice(bytes);
            Ok(bytes.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    #[test]
    fn a_stuck_stderr_never_blocks_a_log_line_and_the_loss_is_told() {
        let gate = Arc::new(Mutex::new(()));
        let got = Arc::new(Mutex::new(Vec::new()));
        let closed = gate.lock().unwrap();
        let out = Stuck {
            gate: Arc::clone(&gate),
            got: Arc::clone(&got),
        };
        let (stderr, flush) = Stderr::with_capacity(out, 4).unwrap();
        let started = Instant::now();
        for i in 0..100 {
            let mut line = stderr.make_writer();
            writeln!(line, "line {i}").unwrap();
        }
        assert!(
            started.elapsed() < Duration::from_secs(2),
            "logging waited for a stuck stderr"
        );
        drop(closed);
        // The queue drains once stderr takes lines again.
        flush.wait();
        {
            let mut line = stderr.make_writer();
            writeln!(line, "after").unwrap();
        }
        drop(flush);
        let text = String::from_utf8(got.lock().unwrap().clone()).unwrap();
        assert!(text.contains("line 0\n"), "{text}");
        assert!(text.contains("log lines dropped"), "{text}");
        assert!(text.ends_with("after\n"), "{text}");
    }
}
