//! The event log: recent events in memory for `failoverd status` and `events`, and
//! optionally appended as JSON lines to a file (the failover.log older tools keep).
//! The file is opened in append mode, so logrotate's copytruncate works, and it is
//! reopened by every reload for rotation by rename.
//!
//! The file is written on a thread of its own (`failoverd-events`), never by the
//! loop: a file on a hung mount, a FIFO nobody reads or a full disk must not delay a
//! heartbeat. Lines are written in order. When the writer falls [`BACKLOG`] lines
//! behind, further lines are dropped (their sequence numbers show the gap), counted,
//! and reported at most every 10 s; the in-memory log keeps every event.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;
use std::time::{Instant, SystemTime};

use tracing::warn;

use super::worker::{Drops, Worker};
use crate::machine::Event;
use crate::status::{EventRecord, rfc3339, unix_ms};

/// Lines that may wait for the writer; a few hundred KiB at most.
pub const BACKLOG: usize = 1024;

/// What the writer thread is asked to do, in order.
enum Job {
    /// Close the file and open `path` (or none) in append mode.
    Open(Option<PathBuf>),
    /// Append one line.
    Append(Vec<u8>),
    /// Answer once every job before this one is done.
    Flush(std::sync::mpsc::Sender<()>),
}

pub struct EventLog {
    recent: VecDeque<EventRecord>,
    keep: usize,
    next_seq: u64,
    path: Option<PathBuf>,
    /// None when the writer thread could not be started: then no file is written.
    writer: Option<Worker<Job>>,
    /// Lines the writer had no room for.
    dropped: Drops,
}

impl EventLog {
    pub fn new(keep: usize, path: Option<PathBuf>) -> EventLog {
        let writer = match Worker::spawn("failoverd-events", BACKLOG, writer()) {
            Ok(writer) => Some(writer),
            Err(err) => {
                warn!("cannot start the event file's writer, no event file: {err}");
                None
            }
        };
        let mut log = EventLog {
            recent: VecDeque::new(),
            keep: keep.max(1),
            next_seq: 1,
            path,
            writer,
            dropped: Drops::default(),
        };
        log.reopen();
        log
    }

    /// Applies a reloaded `[events]` section.
    pub fn configure(&mut self, keep: usize, path: Option<PathBuf>) {
        self.keep = keep.max(1);
        while self.recent.len() > self.keep {
            self.recent.pop_front();
        }
        if path != self.path {
            self.path = path;
            self.reopen();
        }
    }

    /// Opens the file again (after a rotation by rename).
    pub fn reopen(&mut self) {
        self.submit(Job::Open(self.path.clone()));
    }

    pub fn record(&mut self, event: &Event) {
        let now = SystemTime::now();
        let record = EventRecord {
            seq: self.next_seq,
            time: rfc3339(now),
            unix_ms: unix_ms(now),
            severity: event.severity().into(),
            kind: event.kind().into(),
            message: event.to_string(),
        };
        self.next_seq += 1;
        if self.path.is_some()
            && let Ok(mut line) = serde_json::to_vec(&record)
        {
            line.push(b'\n');
            self.submit(Job::Append(line));
        }
        self.recent.push_back(record);
        while self.recent.len() > self.keep {
            self.recent.pop_front();
        }
    }

    /// Lines not written to the file because the writer was behind.
    pub fn dropped(&self) -> u64 {
        self.dropped.total()
    }

    /// The last `n` events, oldest first.
    pub fn recent(&self, n: usize) -> Vec<EventRecord> {
        let skip = self.recent.len().saturating_sub(n);
        self.recent.iter().skip(skip).cloned().collect()
    }

    /// Events with a sequence number above `after`, oldest first. Found by bisection
    /// (the numbers only grow), so that paging through 100000 kept events costs the
    /// loop a page's worth of work per request, not a scan of them all.
    pub fn since(&self, after: u64) -> impl Iterator<Item = &EventRecord> {
        let first = self.recent.partition_point(|r| r.seq <= after);
        self.recent.range(first..)
    }

    /// Waits until the writer has done everything asked of it so far, or `limit`
    /// has passed; true when it has. For the daemon's exit, so that the last events
    /// reach the file unless it is stuck.
    pub fn flush(&self, limit: std::time::Duration) -> bool {
        let (done, wait) = std::sync::mpsc::channel();
        let Some(writer) = &self.writer else {
            return true;
        };
        writer.submit(Job::Flush(done)).is_ok() && wait.recv_timeout(limit).is_ok()
    }

    fn submit(&mut self, job: Job) {
        let Some(writer) = &self.writer else { return };
        if writer.submit(job).is_ok() {
            return;
        }
        if let Some(n) = self.dropped.count(1, Instant::now()) {
            let path = self.path.as_deref().unwrap_or(std::path::Path::new("-"));
            warn!(
                "the event file {} cannot keep up: {n} lines not written ({} in all)",
                path.display(),
                self.dropped.total()
            );
        }
    }
}

/// The writer thread's state and its work: the one place the file is touched.
fn writer() -> impl FnMut(Job) + Send + 'static {
    let mut file: Option<(PathBuf, File)> = None;
    move |job| match job {
        Job::Open(path) => {
            file = None;
            let Some(path) = path else { return };
            if let Some(dir) = path.parent() {
                let _ = std::fs::create_dir_all(dir);
            }
            match OpenOptions::new().create(true).append(true).open(&path) {
                Ok(opened) => file = Some((path, opened)),
                Err(err) => warn!("cannot open the event file {}: {err}", path.display()),
            }
        }
        Job::Append(line) => {
            if let Some((path, open)) = &mut file
                && let Err(err) = open.write_all(&line)
            {
                warn!("writing the event file {}: {err}", path.display());
                file = None;
            }
        }
        Job::Flush(done) => {
            let _ = done.send(());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::machine::event::EventKind;
    use crate::machine::{Reason, Role};

    fn event(n: usize) -> Event {
        Event::Transition {
            from: Role::Standby,
            to: Role::Active,
            reason: Reason::PeerDead {
                peer: format!("peer{n}"),
            },
        }
    }

    #[test]
    fn keeps_the_most_recent_and_numbers_them() {
        let mut log = EventLog::new(3, None);
        for n in 0..5 {
            log.record(&event(n));
        }
        let all: Vec<_> = log.since(0).collect();
        assert_eq!(all.len(), 3);
        assert_eq!(all[0].seq, 3);
        assert_eq!(log.since(4).map(|r| r.seq).collect::<Vec<_>>(), [5]);
        assert_eq!(log.since(2).count(), 3);
        assert_eq!(log.since(5).count(), 0);
        assert_eq!(
            log.recent(2)[1].message,
            "standby -> active: peer peer4 dead on all links"
        );
        assert_eq!(all[0].kind, EventKind::Transition);
    }

    #[test]
    fn appends_json_lines_to_the_file() {
        let dir = std::env::temp_dir().join(format!("failoverd-events-{}", std::process::id()));
        let path = dir.join("events.log");
        let mut log = EventLog::new(10, Some(path.clone()));
        log.record(&event(1));
        log.record(&event(2));
        assert!(log.flush(std::time::Duration::from_secs(5)));
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<EventRecord> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[1].seq, 2);
        let _ = std::fs::remove_dir_all(dir);
    }

    #[test]
    fn a_file_that_takes_no_writes_never_blocks_and_drops_past_the_backlog() {
        use std::os::unix::fs::OpenOptionsExt;
        let dir = std::env::temp_dir().join(format!("failoverd-fifo-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("events.fifo");
        nix::unistd::mkfifo(&path, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        // Open for reading (and never read), full to the brim: a write blocks.
        let mut stuck = OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NONBLOCK)
            .open(&path)
            .unwrap();
        while matches!(stuck.write(&[b'\n'; 4096]), Ok(n) if n > 0) {}
        let mut log = EventLog::new(10, Some(path));
        let started = std::time::Instant::now();
        for n in 0..BACKLOG + 100 {
            log.record(&event(n));
        }
        let took = started.elapsed();
        assert!(
            took < std::time::Duration::from_secs(5),
            "recording took {took:?}"
        );
        assert!(log.dropped() >= 99, "dropped {}", log.dropped());
        assert!(
            !log.flush(std::time::Duration::from_millis(50)),
            "the writer is stuck"
        );
        assert_eq!(log.since(0).count(), 10, "memory keeps its own");
        // Let the writer go: it finishes what it was given and stops with the log.
        drop(stuck);
        drop(log);
        let _ = std::fs::remove_dir_all(dir);
    }
}
