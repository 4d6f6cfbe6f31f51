//! The history behind the status page's timeline: this node's transitions, taken
//! from its events as they are logged, and its peers' states and maintenance, looked
//! at once a second by the loop's publish chore (`chore`). Neither is on the heartbeat path,
//! and looking allocates nothing unless something changed.
//!
//! Peers' changes come from looking rather than from events because the events say
//! only when a peer was heard or lost, not the role it took; a second is fine
//! enough for a timeline drawn over hours.

use std::collections::VecDeque;
use std::time::SystemTime;

use crate::machine::Event;
use crate::status::{Change, History, MaintenanceChange, PeerState, unix_ms};

pub struct HistoryLog {
    me: String,
    since_ms: u64,
    changes: VecDeque<Change>,
    maintenance: VecDeque<MaintenanceChange>,
    /// Each peer's state when last looked at, in the machine's order.
    peers: Vec<(String, PeerState)>,
    frozen: bool,
}

impl HistoryLog {
    /// The history of node `me`, from its start at `started`, in maintenance or not.
    pub fn new(me: &str, started: SystemTime, frozen: bool) -> HistoryLog {
        let since_ms = unix_ms(started);
        let mut maintenance = VecDeque::new();
        if frozen {
            maintenance.push_back(MaintenanceChange {
                unix_ms: since_ms,
                on: true,
            });
        }
        HistoryLog {
            me: me.to_string(),
            since_ms,
            changes: VecDeque::new(),
            maintenance,
            peers: Vec::new(),
            frozen,
        }
    }

    /// Keeps a transition of this node, at `at`; other events say nothing the
    /// timeline draws.
    pub fn record(&mut self, event: &Event, at: SystemTime) {
        let Event::Transition { from, to, reason } = event else {
            return;
        };
        self.push(Change {
            unix_ms: unix_ms(at),
            node: self.me.clone(),
            from: PeerState::from(*from).into(),
            to: PeerState::from(*to).into(),
            reason: reason.to_string(),
        });
    }

    /// Notes what changed since the last look: a peer's state, maintenance.
    pub fn observe<'a>(
        &mut self,
        peers: impl Iterator<Item = (&'a str, PeerState)>,
        frozen: bool,
        at: SystemTime,
    ) {
        let mut seen = 0;
        // Set on the first peer not where it was: the peer list changed with a
        // reload, and the states from there on are found by name.
        let mut moved: Option<Vec<(String, PeerState)>> = None;
        for (i, (name, state)) in peers.enumerate() {
            seen = i + 1;
            if moved.is_none() {
                if let Some((known, last)) = self.peers.get_mut(i)
                    && known == name
                {
                    if *last != state {
                        let from = std::mem::replace(last, state);
                        self.push_peer(name, from, state, at);
                    }
                    continue;
                }
                moved = Some(self.peers.split_off(i));
            }
            let before = moved
                .iter()
                .flatten()
                .find(|(known, _)| known == name)
                .map_or(PeerState::Unknown, |(_, last)| *last);
            self.peers.push((name.to_string(), state));
            if before != state {
                self.push_peer(name, before, state, at);
            }
        }
        self.peers.truncate(seen);
        if frozen != self.frozen {
            self.frozen = frozen;
            self.maintenance.push_back(MaintenanceChange {
                unix_ms: unix_ms(at),
                on: frozen,
            });
            while self.maintenance.len() > History::KEPT {
                self.maintenance.pop_front();
            }
        }
    }

    /// The history as the status carries it.
    pub fn snapshot(&self) -> History {
        History {
            since_unix_ms: self.since_ms,
            changes: self.changes.iter().cloned().collect(),
            maintenance: self.maintenance.iter().cloned().collect(),
        }
    }

    fn push_peer(&mut self, name: &str, from: PeerState, to: PeerState, at: SystemTime) {
        self.push(Change {
            unix_ms: unix_ms(at),
            node: name.to_string(),
            from: from.into(),
            to: to.into(),
            reason: String::new(),
        });
    }

    fn push(&mut self, change: Change) {
        self.changes.push_back(change);
        if self.changes.len() > History::KEPT {
            self.changes.pop_front();
            // What came before the oldest change kept is no longer known.
            if let Some(oldest) = self.changes.front() {
                self.since_ms = self.since_ms.max(oldest.unix_ms);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::{Duration, UNIX_EPOCH};

    use super::*;
    use crate::machine::{Reason, Role};

    fn at(secs: u64) -> SystemTime {
        UNIX_EPOCH + Duration::from_secs(secs)
    }

    fn changes(log: &HistoryLog) -> Vec<(u64, String, String, String)> {
        let history = log.snapshot();
        history
            .changes
            .iter()
            .map(|c| {
                (
                    c.unix_ms / 1000,
                    c.node.clone(),
                    format!("{}->{}", c.from, c.to),
                    c.reason.clone(),
                )
            })
            .collect()
    }

    #[test]
    fn keeps_transitions_with_their_reasons_and_peers_as_they_change() {
        let mut log = HistoryLog::new("alpha", at(100), false);
        log.observe([("beta", PeerState::Unknown)].into_iter(), false, at(101));
        log.observe([("beta", PeerState::Active)].into_iter(), false, at(102));
        log.record(
            &Event::Transition {
                from: Role::Starting,
                to: Role::Standby,
                reason: Reason::PeerActive {
                    peer: "beta".into(),
                },
            },
            at(102),
        );
        log.record(
            &Event::PeerDead {
                peer: "beta".into(),
            },
            at(110),
        );
        for second in 103..110 {
            log.observe([("beta", PeerState::Active)].into_iter(), false, at(second));
        }
        log.observe([("beta", PeerState::Dead)].into_iter(), true, at(111));
        assert_eq!(
            changes(&log),
            [
                (102, "beta".into(), "unknown->active".into(), String::new()),
                (
                    102,
                    "alpha".into(),
                    "starting->standby".into(),
                    "peer beta is active".into()
                ),
                (111, "beta".into(), "active->dead".into(), String::new()),
            ]
        );
        let history = log.snapshot();
        assert_eq!(history.since_unix_ms, 100_000);
        assert_eq!(
            history.maintenance,
            [MaintenanceChange {
                unix_ms: 111_000,
                on: true
            }]
        );
    }

    #[test]
    fn keeps_the_most_recent_changes_and_says_from_when() {
        let mut log = HistoryLog::new("alpha", at(0), true);
        for second in 1..=(History::KEPT as u64 + 10) {
            let state = if second % 2 == 0 {
                PeerState::Dead
            } else {
                PeerState::Standby
            };
            log.observe([("beta", state)].into_iter(), false, at(second));
        }
        let history = log.snapshot();
        assert_eq!(history.changes.len(), History::KEPT);
        assert_eq!(history.changes[0].unix_ms, 11_000);
        assert_eq!(history.since_unix_ms, 11_000);
        // Maintenance that was on at the start, then went off.
        assert_eq!(history.maintenance.len(), 2);
        assert!(history.maintenance[0].on && !history.maintenance[1].on);
    }

    #[test]
    fn a_reloaded_peer_list_starts_again() {
        let mut log = HistoryLog::new("alpha", at(0), false);
        log.observe([("beta", PeerState::Standby)].into_iter(), false, at(1));
        log.observe(
            [("gamma", PeerState::Unknown), ("beta", PeerState::Standby)].into_iter(),
            false,
            at(2),
        );
        log.observe([("gamma", PeerState::Witness)].into_iter(), false, at(3));
        assert_eq!(
            changes(&log)
                .into_iter()
                .map(|(t, node, change, _)| format!("{t} {node} {change}"))
                .collect::<Vec<_>>(),
            ["1 beta unknown->standby", "3 gamma unknown->witness"]
        );
    }
}
