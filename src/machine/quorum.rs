//! The majority rule: what a witness, or a third node, adds to the split-brain guard.
//!
//! Two nodes that stop hearing each other cannot tell a dead peer from a cut link;
//! the guard's probe and fencing narrow that down, but only a third voice can settle
//! it. With three voters or more (every `[[node]]` of the file votes, witnesses
//! included), heartbeats carry votes (see `wire::heartbeat::Votes`): each node says
//! which nodes it hears alive, and acknowledges the newest heartbeat it accepted from
//! the peer it sends to (a node that started less than `dead` ago says it hears
//! every peer that has not left: it cannot tell a silent one yet). Two rules follow:
//!
//! - **Taking over.** A takeover needs a majority: this node and the peers whose
//!   votes count for it must be more than half of the voters, and none of the peers
//!   it hears may still hear a node that this node finds silent. A vote counts for
//!   this node only if it says it hears this node and acknowledges a heartbeat
//!   recent enough to give it the lease below: a voter that two candidates both
//!   count heard one of them first, and names it to the other. So two nodes cut
//!   from each other but both heard by a witness never both take the VIPs (the
//!   witness hears the holder, or the other candidate, and vetoes), and a node cut
//!   from everyone takes nothing. A planned move follows the rule too (two
//!   candidates that both heard the holder let go may not hear each other), but
//!   skips the probe and the fence: the holder said its VIPs are gone.
//! - **Keeping.** A holder keeps the VIPs only while a majority still hears it. A
//!   peer counts this node alive until `dead` after it received this node's
//!   heartbeat, and the acknowledgement says which heartbeat that was, so this node
//!   knows the earliest moment each peer can declare it dead: the send time of the
//!   acknowledged heartbeat plus `dead`. It lets go half an interval before the
//!   majority it can count on runs out, VIPs first and stop hook after, so the VIPs
//!   are gone before any majority without it can have formed (a removal takes a
//!   millisecond; the others still need a datagram to agree).
//!
//! The acknowledgement the holder has in hand trails its heartbeats by up to two
//! intervals (its own cadence, then the peer's) and two network delays, so the
//! holder's majority would run out in steady state if `dead` were not longer than
//! that plus the half interval: the configuration asks for `dead >= 4 x interval`
//! with three voters or more, which also rides out one lost acknowledgement.
//!
//! The holder's lease holds during a release too: a stop hook that takes its time
//! runs before the removal, so when the lease runs out then, the VIPs go at once,
//! beside the queue. A voter backs a peer's lease only `dead` after it last said it
//! did not hear that peer: another node may be acting on that word meanwhile. And
//! with three voters or more, `[timing]` changes only with every daemon restarted,
//! since each node judges by its own `dead`.
//!
//! The margin is half an interval and a datagram: within it the holder's timer must
//! fire and netlink must remove the address. A holder starved of the CPU for longer
//! (but less than `dead`, which the stall detection would notice) can overrun it.
//!
//! With two voters none of this applies, and the two-node rules of `guard` stand
//! alone.

use std::collections::VecDeque;
use std::time::Instant;

use super::Machine;
use super::guard::Hold;
use super::peer::Peer;
use crate::wire::heartbeat::Votes;

/// The send times kept for acknowledgements: a peer acknowledges a heartbeat at most
/// `dead` old, and at the shortest interval that is a few dozen. The cap bounds a
/// burst of out-of-turn heartbeats.
const SENT_KEPT: usize = 256;

/// When this node sent its recent heartbeats, by sequence.
#[derive(Debug, Default)]
pub(super) struct Sent {
    times: VecDeque<(u64, Instant)>,
}

impl Sent {
    fn record(&mut self, sequence: u64, at: Instant) {
        if self.times.len() == SENT_KEPT {
            self.times.pop_front();
        }
        self.times.push_back((sequence, at));
    }

    fn at(&self, sequence: u64) -> Option<Instant> {
        self.times
            .binary_search_by_key(&sequence, |(s, _)| *s)
            .ok()
            .map(|i| self.times[i].1)
    }
}

impl Machine {
    /// Notes that heartbeat `sequence` left now.
    pub(super) fn record_sent(&mut self, sequence: u64) {
        if self.settings.majority_rule() {
            self.sent_at.record(sequence, self.now_hint);
        }
    }

    /// Whom this node hears, for the votes of the heartbeat it sends now; notes the
    /// peers it says it does not hear (see `Peer::disowned_at`). `None` in a
    /// two-node cluster.
    pub(super) fn heard_now(&mut self) -> Option<u32> {
        let heard = self.heard_bits()?;
        let now = self.now_hint;
        for p in &mut self.peers {
            if heard & Votes::bit(p.index) == 0 {
                p.disowned_at = Some(now);
            }
        }
        Some(heard)
    }

    /// The votes for a heartbeat to `peer`, with `heard` from [`Machine::heard_now`].
    /// The acknowledgement backs the peer's lease; it is withheld for `dead` after
    /// this node last said it did not hear the peer: a third node may have taken
    /// that vote as leave to take the VIPs, and may act on it until it hears a newer
    /// one, so the peer must not keep its majority through this node meanwhile.
    pub(super) fn votes_for(&self, peer: &Peer, heard: u32) -> Votes {
        let now = self.now_hint;
        let disowned = peer
            .disowned_at
            .is_some_and(|at| now < at + self.settings.timing.dead);
        Votes {
            ack: if disowned {
                0
            } else {
                peer.newest().unwrap_or(0)
            },
            heard,
            held: self.election.guard.held().is_some(),
        }
    }

    fn heard_bits(&self) -> Option<u32> {
        if !self.settings.majority_rule() {
            return None;
        }
        // A node that has not listened for `dead` yet cannot say that anyone is
        // silent: a witness that just restarted must not agree that the holder is
        // gone only because it has not heard it yet.
        let listened = self.now_hint >= self.started + self.settings.timing.dead;
        let heard = self
            .peers
            .iter()
            .filter(|p| p.alive || (!listened && !p.leaving))
            .fold(0u32, |bits, p| bits | Votes::bit(p.index));
        Some(heard)
    }

    /// Why the majority rule forbids a takeover now, if it does.
    pub(super) fn majority_hold(&self) -> Option<Hold> {
        if !self.settings.majority_rule() {
            return None;
        }
        // A peer that sends no votes (an older version) cannot agree to anything.
        let voting: Vec<&Peer> = self
            .peers
            .iter()
            .filter(|p| p.present() && p.votes.is_some())
            .collect();
        // Only a vote that hears this node counts for it: one sent before its peer
        // heard this node may also predate its hearing another candidate, so it
        // could not veto that one, and two nodes that do not hear each other could
        // both count the same peer. And only while it would keep this node's lease:
        // a holder that took the VIPs without one would let them go at once.
        let now = self.now_hint;
        let heard = 1 + voting
            .iter()
            .filter(|p| self.vote_until(p).is_some_and(|until| now < until))
            .count();
        if heard < self.settings.majority {
            return Some(Hold::NoMajority {
                heard,
                voters: self.settings.voters,
            });
        }
        // A peer that said goodbye counts as silent too: a voter that hears it has
        // newer news (it may have started again and taken the VIPs meanwhile).
        let silent = self.peers.iter().filter(|p| !p.witness && !p.alive);
        for holder in silent {
            if let Some(by) = voting
                .iter()
                .find(|p| p.votes.is_some_and(|v| v.hears(holder.index)))
            {
                return Some(Hold::Vetoed {
                    by: by.name.clone(),
                    hears: holder.name.clone(),
                });
            }
        }
        None
    }

    /// While a veto about `holder` may be only the voter's news on its way, the
    /// moment it stops being so: an interval after this node judged the holder dead.
    /// The voters got the holder's last heartbeat at about the same moment (it went
    /// to all of them at once), judge it dead at about the same time, and say so at
    /// once; an interval covers the spread of receipts and the news's trip.
    pub(super) fn veto_settles(&self, now: Instant, holder: &str) -> Option<Instant> {
        let t = &self.settings.timing;
        let last = self.peers.iter().find(|p| p.name == holder)?.last_heard()?;
        Some(last + t.dead + t.interval).filter(|at| *at > now)
    }

    /// Until when this node can count on a majority that hears it: the moment, half
    /// an interval before the earliest time enough peers could have declared it dead
    /// that the rest are no majority. `None` once that moment is past, or in a
    /// two-node cluster (`Some(far future)` is never needed: callers ask only with
    /// the rule on).
    pub(super) fn majority_until(&self) -> Option<Instant> {
        let mut until: Vec<Instant> = self.majority_leases().collect();
        // This node votes for itself; it needs `majority - 1` peers besides.
        let needed = self.settings.majority - 1;
        until.sort_unstable_by(|a, b| b.cmp(a));
        until.get(needed.checked_sub(1)?).copied()
    }

    /// Whether this node, holding the VIPs, still has its majority at `now`.
    pub(super) fn majority_holds(&self, now: Instant) -> bool {
        !self.settings.majority_rule() || self.majority_until().is_some_and(|until| now < until)
    }

    /// How many voters this node can still count on at `now`, itself included:
    /// the peers whose acknowledgements keep it alive to them.
    pub(super) fn voters_heard(&self, now: Instant) -> usize {
        1 + self.majority_leases().filter(|until| *until > now).count()
    }

    /// For each alive peer whose vote counts for this node, until when it does.
    fn majority_leases(&self) -> impl Iterator<Item = Instant> + '_ {
        self.peers
            .iter()
            .filter(|p| p.alive)
            .filter_map(|p| self.vote_until(p))
    }

    /// Until when `peer`'s vote counts for this node: it says it hears this node, and
    /// it acknowledged a heartbeat of ours, so it counts this node alive until `dead`
    /// after that one left at the earliest; this node lets go half an interval
    /// before. `None` for a peer that says neither.
    fn vote_until(&self, peer: &Peer) -> Option<Instant> {
        let t = &self.settings.timing;
        let votes = peer.votes?;
        if !votes.hears(self.settings.index) {
            return None;
        }
        let sent = self.sent_at.at(votes.ack)?;
        (sent + t.dead).checked_sub(t.interval / 2)
    }
}
