//! The ranking of nodes, in one place: who takes over when no node is active, which
//! of two holders keeps the VIPs, and which node is preferred (for failback, manual
//! or automatic, and for `failoverd status`). Clients read the preferred node from
//! the status instead of ranking nodes themselves.

use std::cmp::Reverse;

use super::election::Request;
use super::peer::Peer;
use super::timer::Timer;
use super::{Machine, Role};

/// A node's place in the election; greater ranks first. The name is borrowed: ranks
/// are compared on every input, and cloning names there allocated every time.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
pub struct Rank<'a> {
    /// An operator asked this node to take over: it comes first, unless it is in
    /// fault.
    takeover: bool,
    /// No sticky check failure: a node whose service failed while it was active
    /// comes after every node that may hold the VIPs, so it takes them back only
    /// when nobody else can.
    clean: bool,
    /// Health before the operator's standby request: a node asked to stand by
    /// still takes over rather than leave the VIPs to a node that fails checks.
    health: Reverse<u8>,
    /// An operator asked this node to stand by: it comes after its equals.
    available: bool,
    priority: u16,
    /// Equal priorities are broken by name, the smaller first.
    name: Reverse<&'a str>,
}

impl Rank<'_> {
    pub fn of_peer(peer: &Peer) -> Rank<'_> {
        Rank {
            // A node in fault cannot take over, so its request cannot put it first:
            // it would keep every other node waiting for it.
            takeover: peer.takeover && peer.role != Role::Fault,
            clean: !peer.failed,
            health: Reverse(peer.health),
            available: !peer.standby,
            priority: peer.priority,
            name: Reverse(&peer.name),
        }
    }
}

impl Machine {
    pub(super) fn rank(&self) -> Rank<'_> {
        Rank {
            takeover: self.election.request == Some(Request::Takeover)
                && self.role() != Role::Fault,
            clean: !self.health.failed(),
            health: Reverse(self.health.score()),
            available: self.election.request != Some(Request::Standby),
            priority: self.settings.priority,
            name: Reverse(&self.settings.name),
        }
    }

    /// The node that should hold the VIPs when nothing else stands in the way: the
    /// first by rank among this node and the live peers that are neither in fault
    /// nor asked to stand by.
    pub fn preferred_node(&self) -> String {
        match self.preferred_peer() {
            Some(i) => self.peers[i].name.clone(),
            None => self.settings.name.clone(),
        }
    }

    /// The node that holds the VIPs, as far as this node knows: itself or an
    /// active peer.
    pub(super) fn holder(&self) -> Option<String> {
        if self.role() == Role::Active {
            return Some(self.settings.name.clone());
        }
        self.peers
            .iter()
            .find(|p| p.holds())
            .map(|p| p.name.clone())
    }

    /// The preferred node when it is a peer (by index).
    pub(super) fn preferred_peer(&self) -> Option<usize> {
        let me = self.rank();
        self.peers
            .iter()
            .enumerate()
            .filter(|(_, p)| p.present() && !p.witness && p.role != Role::Fault && !p.standby)
            .map(|(i, p)| (i, Rank::of_peer(p)))
            .filter(|(_, rank)| *rank > me)
            .max_by(|a, b| a.1.cmp(&b.1))
            .map(|(i, _)| i)
    }

    /// The best-ranked peer that could take over, if it outranks this node.
    pub(super) fn first_ranked_peer(&self) -> Option<String> {
        let me = self.rank();
        self.peers
            .iter()
            .filter(|p| p.in_the_running())
            .map(|p| (p, Rank::of_peer(p)))
            .filter(|(_, rank)| *rank > me)
            .max_by(|a, b| a.1.cmp(&b.1))
            .map(|(p, _)| p.name.clone())
    }

    /// Whether this node is the first among the nodes that could take over. Not
    /// while a peer is completing its handshake: it may rank first, and it may
    /// already see things this node does not.
    pub(super) fn ranks_first(&self) -> bool {
        self.ranks_first_of(Peer::in_the_running)
    }

    /// Whether this node is the first among the nodes that could take over, counting
    /// those held back by their guard too: for a takeover that makes no claim.
    pub(super) fn ranks_first_of_every_candidate(&self) -> bool {
        self.ranks_first_of(Peer::candidate)
    }

    fn ranks_first_of(&self, candidate: fn(&Peer) -> bool) -> bool {
        if (0..self.peers.len()).any(|i| self.timers.pending(Timer::Handshake(i), self.now_hint)) {
            return false;
        }
        let me = self.rank();
        !self
            .peers
            .iter()
            // Peers in fault count too: their fault may have been relative to a node
            // that is gone now, and health comes first in the rank anyway.
            .filter(|p| candidate(p))
            .any(|p| Rank::of_peer(p) > me)
    }
}
