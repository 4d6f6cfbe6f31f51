//! What keeps a node steady on a busy host: flap damping, and knowing when it was
//! starved itself. docs/steadiness.md is the administrator's side of both.
//!
//! **Flap damping.** The node watches who holds the VIPs (itself or a peer) and
//! counts each change of holder that was not planned: a takeover after a silence, and
//! the release of one of two holders. Planned moves (an operator's takeover or
//! standby, a shutdown's handover, failback, a health move, maintenance) hand over
//! through a release and never count: the node that takes over answers a heartbeat
//! that says the VIPs were let go, not a silence. More than `changes` unplanned
//! changes within `window` is flapping: the node's next unplanned takeover then
//! waits for the holder to be silent for twice `dead`, and each further change
//! doubles that, up to `max_silence`. A silence that ends before then (a starved
//! holder that speaks again) moves nothing. A holder that is really dead is still
//! replaced, `max_silence` after its last heartbeat at the latest. Without an
//! unplanned change for `quiet`, the node relaxes.
//!
//! **Starvation.** The node asks to be woken at [`Machine::poll_timeout`]; when it is
//! woken an interval or more after that (the host did not run it), it was starved,
//! and the silence of its peers meanwhile is its own fault: their heartbeats are
//! waiting in its socket. `Machine::observe` notices, and the peers it heard within
//! `dead` (longer for a quiet standby) before it stopped running are not judged
//! before those heartbeats have been read (the `Resumed` wait of a node that
//! resumed after a stall, which this generalizes).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use super::election::{Phase, Request};
use super::timer::Timer;
use super::{Event, Machine, Reason};

/// A starvation is logged at most this often; the others are counted.
const STARVED_REPORT_EVERY: Duration = Duration::from_secs(10);

/// Who holds the VIPs, as this node sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Holder {
    Me,
    Peer(String),
}

/// The node's own record of flapping and starvation.
#[derive(Debug, Default)]
pub(super) struct Steadiness {
    /// The holder this node saw last; `None` before it saw any.
    holder: Option<Holder>,
    /// Whether the holder that let go last did so in a planned move.
    handed_over: bool,
    /// The unplanned changes of holder within the window, oldest first.
    changes: VecDeque<Instant>,
    /// Zero while not flapping; otherwise how many times `dead` has doubled.
    level: u32,
    /// When the node began to flap, while it does.
    since: Option<Instant>,
    /// The latest unplanned change: the node relaxes `quiet` after it.
    last_change: Option<Instant>,
    /// How many times the node began to flap.
    episodes: u64,
    /// The peer whose silence a damped takeover waits out, once said in the log.
    deferring: Option<usize>,
    /// When this node last ran before it was found starved: peers heard within
    /// `dead` (longer for a quiet standby) before then are not judged until what
    /// they sent has been read.
    pub ran_at: Option<Instant>,
    /// Starvations since start, the longest, and the latest (when, how long).
    pub starved: u64,
    pub longest_starved: Duration,
    pub last_starved: Option<(Instant, Duration)>,
    /// Starvations since the last one logged, and when that was.
    unreported: u64,
    reported: Option<Instant>,
}

/// What the status reports of damping.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Damping {
    pub enabled: bool,
    /// Unplanned changes of holder within the window.
    pub changes: usize,
    pub flapping: bool,
    pub since: Option<Instant>,
    /// The silence the next unplanned takeover waits for (`dead` when not flapping).
    pub silence: Duration,
    /// When the node relaxes unless another unplanned change comes first.
    pub until: Option<Instant>,
    pub episodes: u64,
}

impl Machine {
    /// What damping looks like now, for the status.
    pub fn damping(&self) -> Damping {
        let s = &self.steady;
        let flapping = s.level > 0;
        Damping {
            enabled: self.settings.damping.enabled,
            changes: s.changes.len(),
            flapping,
            since: s.since,
            silence: self.takeover_silence(),
            until: s
                .last_change
                .filter(|_| flapping)
                .map(|at| at + self.settings.damping.quiet),
            episodes: s.episodes,
        }
    }

    /// The silence of the holder an unplanned takeover waits for now.
    pub(super) fn takeover_silence(&self) -> Duration {
        let dead = self.settings.timing.dead;
        let level = self.steady.level;
        if level == 0 || !self.settings.damping.enabled {
            return dead;
        }
        let factor = 1u32.checked_shl(level).unwrap_or(u32::MAX);
        dead.saturating_mul(factor)
            .min(self.settings.damping.max_silence)
            .max(dead)
    }

    /// Compares the holder now with the one seen last, and counts an unplanned
    /// change. Called at the end of every input, after the election ran.
    pub(super) fn note_holder(&mut self, now: Instant) {
        let mine = matches!(self.election.phase, Phase::Active(_));
        // Compared by name, and copied only on a change: a standby runs this on
        // every heartbeat, and the heartbeat path allocates nothing.
        let seen = if mine {
            Some(None)
        } else {
            self.peers
                .iter()
                .find(|p| p.holds() && !p.claiming && !p.releasing)
                .map(|p| Some(p.name.as_str()))
        };
        let Some(seen) = seen else { return };
        let same = match (&self.steady.holder, seen) {
            (Some(Holder::Me), None) => true,
            (Some(Holder::Peer(last)), Some(name)) => last == name,
            _ => false,
        };
        if same {
            self.steady.deferring = None;
            return;
        }
        let seen = seen.map_or(Holder::Me, |name| Holder::Peer(name.to_string()));
        self.steady.deferring = None;
        let Some(last) = self.steady.holder.replace(seen.clone()) else {
            return;
        };
        debug_assert_ne!(last, seen);
        let planned = match seen {
            Holder::Me => match &self.election.reason {
                Reason::PeerReleased { .. }
                | Reason::PeerLeft { .. }
                | Reason::OperatorTakeover
                | Reason::Adopted => true,
                Reason::PeerDead { .. } => false,
                _ => self.steady.handed_over,
            },
            Holder::Peer(_) => self.steady.handed_over,
        };
        if !planned && self.settings.damping.enabled {
            self.count_change(now);
        }
    }

    /// The holder let go: in a planned move (a release it announced), or not (it
    /// went silent, restarted, or backed off as one of two holders).
    pub(super) fn note_let_go(&mut self, planned: bool) {
        self.steady.handed_over = planned;
    }

    /// Whether a release for `reason` is a planned move, as far as damping counts.
    pub(super) fn planned_release(reason: &Reason) -> bool {
        !matches!(
            reason,
            Reason::PeerOutranks { .. }
                | Reason::ResumedAfterStall { .. }
                | Reason::MajorityLost { .. }
        )
    }

    fn count_change(&mut self, now: Instant) {
        let d = self.settings.damping;
        let s = &mut self.steady;
        while s
            .changes
            .front()
            .is_some_and(|at| now.saturating_duration_since(*at) >= d.window)
        {
            s.changes.pop_front();
        }
        s.changes.push_back(now);
        s.last_change = Some(now);
        let count = s.changes.len();
        if s.level > 0 {
            s.level = s.level.saturating_add(1).min(31);
        } else if count > usize::try_from(d.changes).unwrap_or(usize::MAX) {
            s.level = 1;
            s.since = Some(now);
            s.episodes += 1;
        } else {
            return;
        }
        self.timers.set(Timer::Relax, now + d.quiet);
        self.events.push(Event::Flapping {
            changes: count,
            window: d.window,
            silence: self.takeover_silence(),
        });
    }

    /// `quiet` without an unplanned change: unplanned takeovers wait `dead` again.
    pub(super) fn relax(&mut self, now: Instant) {
        let s = &mut self.steady;
        let Some(since) = s.since.take() else {
            return;
        };
        s.level = 0;
        s.changes.clear();
        s.deferring = None;
        self.timers.stop(Timer::Relax);
        self.timers.stop(Timer::Damped);
        self.events.push(Event::Relaxed {
            flapped: now.saturating_duration_since(since),
        });
    }

    /// Whether an unplanned takeover must wait because the node flaps and the
    /// holder that went silent has not been silent for long enough. Arms the end of
    /// the wait. An operator's takeover, and a holder that is heard again (alive,
    /// whatever it says now), never wait.
    pub(super) fn damped(&mut self, now: Instant) -> bool {
        let silence = self.takeover_silence();
        let waiting = match &self.election.takeover_reason {
            Some(Reason::PeerDead { peer }) if self.steady.level > 0 => self
                .peers
                .iter()
                .position(|p| p.name == *peer && !p.alive)
                .and_then(|i| Some((i, self.peers[i].last_heard()? + silence)))
                .filter(|(_, until)| *until > now),
            _ => None,
        };
        let waiting = waiting.filter(|_| self.election.request != Some(Request::Takeover));
        let Some((peer, until)) = waiting else {
            self.steady.deferring = None;
            self.timers.stop(Timer::Damped);
            return false;
        };
        self.timers.set(Timer::Damped, until);
        if self.steady.deferring != Some(peer) {
            self.steady.deferring = Some(peer);
            self.events.push(Event::TakeoverDamped {
                peer: self.peers[peer].name.clone(),
                silence,
            });
        }
        true
    }

    /// This node was woken `late` after the deadline it asked for, having last run
    /// at `ran_at`: its peers' silence meanwhile is its own fault.
    /// `log` is false when the caller logs the stall itself.
    pub(super) fn starved(&mut self, now: Instant, ran_at: Instant, late: Duration, log: bool) {
        let s = &mut self.steady;
        s.ran_at = Some(ran_at);
        s.starved += 1;
        s.longest_starved = s.longest_starved.max(late);
        s.last_starved = Some((now, late));
        s.unreported += 1;
        if !log {
            s.reported = Some(now);
            s.unreported = 0;
            return;
        }
        let due = s
            .reported
            .is_none_or(|at| now.saturating_duration_since(at) >= STARVED_REPORT_EVERY);
        if due {
            self.events.push(Event::Starved {
                late,
                times: s.unreported,
            });
            s.reported = Some(now);
            s.unreported = 0;
        }
    }

    /// Whether peer `i`'s silence is this node's own fault: it was heard within
    /// `dead` (longer for a quiet peer) before this node stopped running, and what
    /// it sent since may still be waiting to be read.
    pub(super) fn excused(&self, i: usize) -> bool {
        let peer = &self.peers[i];
        let (Some(ran_at), Some(heard)) = (self.steady.ran_at, peer.last_heard()) else {
            return false;
        };
        ran_at.saturating_duration_since(heard) < peer.dead_after(&self.settings.timing)
    }
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::os::unix::fs::PermissionsExt;

    use super::*;
    use crate::config::Config;
    use crate::config::sample::Sample;
    use crate::scratch::Scratch;

    /// A node of the sample with `dead` = 500 ms and the default damping.
    fn machine() -> Machine {
        let dir = Scratch::new("steady");
        let key = dir.join("authkey");
        fs::write(&key, "steady-test-key-0123456789\n").unwrap();
        fs::set_permissions(&key, fs::Permissions::from_mode(0o600)).unwrap();
        let text = Sample::new()
            .set("cluster.key_file", "authkey")
            .set("timing.interval", "100ms")
            .set("timing.warn", "300ms")
            .set("timing.dead", "500ms")
            .set("timing.init_dead", "1s")
            .set("health.gateways", "[]")
            .set("health.link_state", false)
            .remove("hooks")
            .to_string();
        let config = Config::parse(&text, dir.path()).expect("a valid configuration");
        Machine::new(&config, 1, 1, 1, Instant::now())
    }

    #[test]
    fn the_damped_silence_doubles_with_each_change_up_to_the_cap() {
        let mut m = machine();
        let ms = Duration::from_millis;
        for (level, silence) in [
            (0, 500),
            (1, 1000),
            (2, 2000),
            (3, 4000),
            (4, 4000),
            (31, 4000),
        ] {
            m.steady.level = level;
            assert_eq!(m.takeover_silence(), ms(silence), "level {level}");
        }
        m.settings.damping.enabled = false;
        assert_eq!(m.takeover_silence(), ms(500));
    }

    #[test]
    fn only_the_releases_of_a_fight_are_unplanned() {
        let peer = || "alpha".to_string();
        for reason in [
            Reason::PeerOutranks { peer: peer() },
            Reason::ResumedAfterStall { peer: peer() },
            Reason::MajorityLost {
                heard: 1,
                voters: 3,
            },
        ] {
            assert!(!Machine::planned_release(&reason), "{reason}");
        }
        for reason in [
            Reason::Shutdown,
            Reason::OperatorStandby,
            Reason::TakeoverRequested { peer: peer() },
            Reason::Failback { peer: peer() },
            Reason::HealthLost {
                peer: peer(),
                check: String::new(),
            },
        ] {
            assert!(Machine::planned_release(&reason), "{reason}");
        }
    }
}
