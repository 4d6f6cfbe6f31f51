//! How often this node beats: every `interval`, or every `standby_interval` while
//! it is a quiet standby.
//!
//! In a cluster of two, the standby's heartbeats keep nothing in place: the active
//! node holds the VIPs whether it hears its peer or not, and what it learns from
//! the standby (alive, its health, its requests) is not in a hurry, while the
//! standby must hear every heartbeat of the active node to take over within `dead`.
//! So a standby that hears its peer active, holding the VIPs, and has nothing to
//! ask of it beats only every `timing.standby_interval` and says so in its
//! heartbeats ([`Heartbeat::quiet`](crate::wire::heartbeat::Heartbeat::quiet)); the
//! active node then counts that standby late or dead that much later, and two
//! intervals more for one of them lost on every link (see `Peer::judged_by`). At a 10 ms interval this halves the packets the pair moves, which
//! is most of its idle CPU.
//!
//! It stops being quiet, and beats at once, as soon as any of that changes: the
//! peer releases, claims, leaves, dies, asks for something, or asks it to wake
//! because an operator's handover waits for it (see `election::Handover`), or this
//! node is asked for something or changes role. Nor is a standby quiet that the
//! VIPs may move to on their own: one healthier than the active node, or of a
//! higher priority with `failback = "auto"`. The active node decides those moves on
//! what it hears of that standby, and a quiet one could have died up to
//! `standby_interval` before the active node counts it dead; it would hand the VIPs
//! to nobody. Everything that needs an answer in time (a claim's echo, a planned
//! handover, a takeover order) therefore finds it beating every interval, or wakes
//! it first. With the majority rule (a witness, or three nodes) the votes need
//! every node's heartbeats each interval, so nobody is quiet there.
//!
//! A quiet node renews its freshness nonce only with its heartbeats: renewed twice
//! between two of them, the nonce the peer echoes would no longer count, and this
//! node would take the active node's heartbeats for recordings. A quiet heartbeat
//! that carries a new nonce (each does when `standby_interval` is longer than
//! `dead`, as usual) tells this node, by the echo, when it was lost on every link:
//! a timer wakes it when that echo is two intervals overdue (`Timer::QuietEcho`). And it is quiet only
//! while the active node echoes its latest nonce (or that nonce is younger than two
//! intervals): a quiet heartbeat that was lost, or that a node of a version before
//! the quiet standby refused, ends the quiet until the peer has heard this node
//! again, so its echo never falls two nonces behind; nor is a nonce that went out
//! in quiet heartbeats only replaced before the peer echoed it or a heartbeat that
//! is not quiet carried it (see `nonce_unheard`). An active node that never echoed
//! such a nonce and misses three in a row refuses quiet heartbeats (a version
//! before the quiet standby): this node stays out of quiet toward it until it
//! restarts, or for `QUIET_RETRY` (see `watch_quiet_echo`).

use std::time::{Duration, Instant};

use super::election::{Lifecycle, Phase};
use super::event::Role;
use super::peer::{Peer, QUIET_MISSES, QUIET_RETRY};
use super::timer::Timer;
use super::{Event, Machine};
use crate::config::Failback;

impl Machine {
    /// Whether this node beats every `standby_interval` rather than every
    /// `interval` now (see the module's documentation).
    pub(super) fn quiet(&self) -> bool {
        self.quiet_toward().is_some()
    }

    /// The active peer this node is quiet toward, if it is quiet (see
    /// [`Machine::quiet`]). Its heartbeats that repeat its standing
    /// ([`Peer::standing`]) tell this node nothing but that the peer is alive, so
    /// the shell may read them late and give them to
    /// [`Machine::handle_arrived`] by their arrival time, rather than wake for each
    /// one (see `daemon::receive`); anything else from it is news.
    pub fn quiet_toward(&self) -> Option<&Peer> {
        let timing = &self.settings.timing;
        // The shell asks on every turn: the active node, and any node that cannot
        // be quiet, answers before the per-peer rules and the health score.
        let can = timing.standby_interval > timing.interval
            && !self.settings.majority_rule()
            && self.lifecycle == Lifecycle::Running
            && matches!(self.election.phase, Phase::Standby)
            && self.election.request.is_none();
        if !can {
            return None;
        }
        let epoch = self.nonces.epoch();
        let fresh = self.now_hint < self.nonces.issued_at() + timing.interval * 2;
        let auto = self.settings.failback == Failback::Auto;
        let (health, priority) = (self.health.score(), self.settings.priority);
        self.peers.iter().find(|p| {
            p.alive
                && p.role == Role::Active
                && !p.releasing
                && !p.claiming
                && !p.leaving
                && !p.takeover
                && !p.standby
                && !p.yielding
                && !p.wake
                && p.quiet_refused_at
                    .is_none_or(|at| self.now_hint >= at + QUIET_RETRY)
                && (p.echoed == Some(epoch) || fresh)
                && health >= p.health
                && !(auto && priority > p.priority)
        })
    }

    /// Time from one heartbeat of this node to the next, as things stand.
    pub(super) fn beat_interval(&self) -> Duration {
        if self.quiet() {
            self.settings.timing.standby_interval
        } else {
            self.settings.timing.interval
        }
    }

    /// After every input: a node that stopped being quiet with its next heartbeat
    /// further away than an interval beats now, since whatever ended the quiet is
    /// news for its peer, and takes up the interval again.
    pub(super) fn pace(&mut self, now: Instant) {
        self.watch_quiet_echo();
        let interval = self.settings.timing.interval;
        let Some(due) = self.timers.get(Timer::Heartbeat) else {
            return;
        };
        if due <= now + interval || self.quiet() || self.lifecycle != Lifecycle::Running {
            return;
        }
        self.renew_nonce_early(now);
        self.heartbeat();
        self.timers.set(Timer::Heartbeat, now + interval);
    }

    /// Learns whether the active peer takes quiet heartbeats. A node of a version
    /// before them refuses them as malformed, so a nonce that went out in quiet
    /// heartbeats only is not echoed in time: the quiet ends for want of the echo,
    /// a heartbeat that is not quiet carries the nonce (see
    /// [`Machine::note_quiet_unechoed`]), the quiet starts again, and the old node
    /// hears this one only now and then and finds it late, or dead. A peer that
    /// echoes such a nonce once takes quiet heartbeats for the rest of its run;
    /// one that misses [`QUIET_MISSES`] in a row before that is not beaten to
    /// quietly until it restarts, or for [`QUIET_RETRY`].
    fn watch_quiet_echo(&mut self) {
        // Only a node whose nonce went out quiet has anything to learn: an active
        // node returns here on every input.
        let Some((epoch, true)) = self.sent_epoch else {
            return;
        };
        let mut echoed = false;
        for peer in &mut self.peers {
            if peer.alive && peer.echoed == Some(epoch) {
                peer.takes_quiet = true;
                peer.quiet_misses = 0;
                echoed = true;
            }
        }
        // Heard: no need to wake when the nonce would have gone stale.
        if echoed {
            self.timers.stop(Timer::QuietEcho);
        }
    }

    /// A heartbeat that is not quiet is about to carry `epoch`, which went out in
    /// quiet heartbeats only so far: an active peer that has not echoed it two
    /// intervals after it was issued missed it (unless this node was starved
    /// meanwhile, which says nothing of the peer).
    pub(super) fn note_quiet_unechoed(&mut self, epoch: u64) {
        let now = self.now_hint;
        let late = now >= self.nonces.issued_at() + self.settings.timing.interval * 2;
        if !late || self.timers.pending(Timer::Resumed, now) {
            return;
        }
        for peer in &mut self.peers {
            if !peer.alive
                || peer.role != Role::Active
                || peer.takes_quiet
                || peer.echoed == Some(epoch)
            {
                continue;
            }
            match peer.quiet_refused_at {
                Some(at) if now < at + QUIET_RETRY => continue,
                // The retry: three misses again before another refusal.
                Some(_) => {
                    peer.quiet_refused_at = None;
                    peer.quiet_misses = 0;
                }
                None => {}
            }
            peer.quiet_misses = peer.quiet_misses.saturating_add(1);
            if peer.quiet_misses >= QUIET_MISSES {
                peer.quiet_refused_at = Some(now);
                self.events.push(Event::QuietRefused {
                    peer: peer.name.clone(),
                    retry: QUIET_RETRY,
                });
            }
        }
    }

    /// Whether the nonce must not be renewed yet: it went out in quiet heartbeats
    /// only and an active peer has not echoed it. That peer may have lost or refused
    /// them; a newer nonce would put its echo two behind, and its heartbeats would
    /// count as stale here. The renewal waits for a heartbeat that is not quiet to
    /// carry the nonce, at most two intervals on.
    pub(super) fn nonce_unheard(&self) -> bool {
        let epoch = self.nonces.epoch();
        self.sent_epoch == Some((epoch, true))
            && self
                .peers
                .iter()
                .any(|p| p.alive && p.role == Role::Active && p.echoed != Some(epoch))
    }

    /// A heartbeat that echoes no nonce of ours comes from a peer that has not
    /// heard this node lately: it restarted, or this node's quiet heartbeats were
    /// lost. A quiet node then beats within an interval rather than after
    /// `standby_interval`, so that the peer can echo it before `dead` runs out here.
    /// However many such packets come (a recording replayed), that is one heartbeat
    /// an interval: what a node that is not quiet sends anyway.
    pub(super) fn answer_stale(&mut self, now: Instant) {
        let next = now + self.settings.timing.interval;
        if self
            .timers
            .get(Timer::Heartbeat)
            .is_some_and(|due| due > next)
        {
            self.timers.set(Timer::Heartbeat, next);
        }
    }
}
