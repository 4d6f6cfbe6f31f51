//! The event log: recent events in memory for `failoverd status` and `events`, and
//! optionally appended as JSON lines to a file (the failover.log older tools keep).
//! The file is opened in append mode, so logrotate's copytruncate works, and it is
//! reopened on SIGHUP for rotation by rename.

use std::collections::VecDeque;
use std::fs::{File, OpenOptions};
use std::io::Write;
use std::path::PathBuf;
use std::time::SystemTime;

use tracing::warn;

use crate::machine::Event;
use crate::status::{EventRecord, rfc3339, unix_ms};

pub struct EventLog {
    recent: VecDeque<EventRecord>,
    keep: usize,
    next_seq: u64,
    path: Option<PathBuf>,
    file: Option<File>,
}

impl EventLog {
    pub fn new(keep: usize, path: Option<PathBuf>) -> EventLog {
        let mut log = EventLog {
            recent: VecDeque::new(),
            keep: keep.max(1),
            next_seq: 1,
            path,
            file: None,
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
        self.file = None;
        let Some(path) = &self.path else { return };
        if let Some(dir) = path.parent() {
            let _ = std::fs::create_dir_all(dir);
        }
        match OpenOptions::new().create(true).append(true).open(path) {
            Ok(file) => self.file = Some(file),
            Err(err) => warn!("cannot open the event file {}: {err}", path.display()),
        }
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
        if let Some(file) = &mut self.file
            && let Ok(mut line) = serde_json::to_vec(&record)
        {
            line.push(b'\n');
            if let Err(err) = file.write_all(&line) {
                warn!("writing the event file: {err}");
                self.file = None;
            }
        }
        self.recent.push_back(record);
        while self.recent.len() > self.keep {
            self.recent.pop_front();
        }
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
        let text = std::fs::read_to_string(&path).unwrap();
        let lines: Vec<EventRecord> = text
            .lines()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        assert_eq!(lines.len(), 2);
        assert_eq!(lines[1].seq, 2);
        let _ = std::fs::remove_dir_all(dir);
    }
}
