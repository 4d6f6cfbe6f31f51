//! An operator's orders (from the control socket): what each one does to the
//! election, and the typed answer, accepted or refused, with why.
//!
//! Moves are planned moves: whoever holds the VIPs releases first, so they are never
//! on two nodes. The shell watches the status for the outcome.

use std::fmt;
use std::time::Instant;

use super::election::{After, Handover, Lifecycle, Request};
use super::peer::Peer;
use super::{Machine, Reason, Role, Unstuck};

/// An operator's request, from the control socket.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Order {
    /// Make this node active now; the holder releases first.
    Takeover,
    /// Hand the VIPs to a peer and keep out of the way while a peer can hold them.
    Standby,
    /// Move the VIPs to the preferred (first-ranked) node.
    Failback,
    /// Freeze or thaw automatic transitions.
    Maintenance(bool),
    /// End the sticky failure of this check (`failoverd clear CHECK`).
    Clear(String),
}

/// What an accepted order set in motion.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Accepted {
    /// This node takes over; `holder` is first asked to release.
    TakingOver {
        holder: Option<String>,
    },
    /// This node releases the VIPs to a peer and stays standby.
    Releasing,
    /// This node holds nothing and stays out of the way.
    StandingBy,
    /// This node (the holder) hands the VIPs to the preferred node.
    HandingBack {
        to: String,
    },
    /// This node (the holder) first wakes its quiet standby (`to`, the preferred
    /// node for a failback) and releases to it once it answers (see
    /// `election::Handover`).
    Waking {
        to: Option<String>,
    },
    Maintenance {
        on: bool,
    },
    MaintenanceAlreadyOn,
    /// `maintenance off` where nobody has it on: nothing to do, as `on` twice.
    MaintenanceAlreadyOff,
    /// `takeover` on the active node: nothing to do.
    AlreadyActive,
    /// The check's sticky failure is over: this node may take the VIPs again.
    Cleared {
        check: String,
    },
}

impl fmt::Display for Accepted {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Accepted::TakingOver {
                holder: Some(holder),
            } => write!(f, "asked {holder} to release; taking over then"),
            Accepted::TakingOver { holder: None } => f.write_str("taking over"),
            Accepted::Releasing => f.write_str("releasing the VIPs to a peer; staying standby"),
            Accepted::StandingBy => {
                f.write_str("standing by: this node will not take over while a peer can")
            }
            Accepted::HandingBack { to } => write!(f, "handing the VIPs back to {to}"),
            Accepted::Waking { to: None } => f.write_str(
                "waking the quiet standby (or waiting for a node still starting); releasing \
                 the VIPs to it once it answers, then staying standby",
            ),
            Accepted::Waking { to: Some(to) } => write!(
                f,
                "waking {to}, a quiet standby (or waiting for it to finish starting); \
                 handing the VIPs back to it once it answers"
            ),
            Accepted::Maintenance { on: true } => {
                f.write_str("maintenance on: no automatic transitions until `maintenance off`")
            }
            Accepted::Maintenance { on: false } => {
                f.write_str("maintenance off: automatic transitions resume")
            }
            Accepted::MaintenanceAlreadyOn => f.write_str("maintenance is already on"),
            Accepted::MaintenanceAlreadyOff => f.write_str("maintenance is already off"),
            Accepted::AlreadyActive => f.write_str("this node is already active"),
            Accepted::Cleared { check } => {
                write!(
                    f,
                    "check {check} cleared: this node may take the VIPs again (it runs \
                     {check} only while active, so it tells whether the fault is fixed \
                     only once it holds them)"
                )
            }
        }
    }
}

/// Why an order cannot be carried out.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// Automatic and operator moves are frozen.
    #[error("maintenance is on (set on {by}); turn it off first")]
    Frozen { by: String },
    #[error("this node is shutting down")]
    ShuttingDown,
    #[error("a release is under way; try again in a moment")]
    Releasing,
    #[error("this node is a witness: it never holds the VIPs")]
    Witness,
    /// The majority rule would hold this node's takeover back (the hold, as text).
    #[error("the majority rule would not let this node take the VIPs: {why}")]
    NoMajority { why: String },
    #[error("this node is still starting")]
    Starting,
    /// `failing` is the node's health score (the weights of its failing checks).
    #[error("this node's health checks are failing (score {failing}); fix them first")]
    Unhealthy { failing: u8 },
    #[error("no live peer could take over")]
    NoLivePeer,
    /// Every live peer that could take over is in fault (names comma-separated).
    #[error("peer {peers} is in fault")]
    PeersInFault { peers: String },
    #[error("no node holds the VIPs")]
    NoHolder,
    #[error("the VIPs are already on the preferred node {node}")]
    AlreadyPreferred { node: String },
    /// Failback asked of a node that is neither the holder nor the preferred one.
    #[error("run it on {holder} (the holder) or {preferred} (the preferred node)")]
    NotInvolved { holder: String, preferred: String },
    #[error("maintenance was turned on on {by}; turn it off there")]
    MaintenanceElsewhere { by: String },
    #[error("this node has no check named {check}")]
    UnknownCheck { check: String },
    #[error("check {check} has not failed while this node was active; nothing to clear")]
    NotFailed { check: String },
    /// The check fails now: it counts until its runs pass again, and clear ends
    /// only a failure that stuck once the node let the VIPs go.
    #[error(
        "check {check} is failing now, not stuck: it counts until it passes again; clear \
         ends only a failure that stuck when this node let the VIPs go"
    )]
    FailingNow { check: String },
}

impl Machine {
    /// Carries out an operator's order, or says why it cannot be done.
    pub fn order(&mut self, now: Instant, order: Order) -> Result<Accepted, Refusal> {
        self.now_hint = now;
        let result = self.obey(now, order);
        self.evaluate(now);
        self.pace(now);
        self.flush_events();
        result
    }

    fn obey(&mut self, now: Instant, order: Order) -> Result<Accepted, Refusal> {
        match order {
            Order::Maintenance(on) => self.set_maintenance(on),
            Order::Takeover => self.may_move().and_then(|()| self.order_takeover()),
            Order::Standby => self.may_move().and_then(|()| self.order_standby(now)),
            Order::Failback => self.may_move().and_then(|()| self.order_failback(now)),
            Order::Clear(check) => self.clear(now, check),
        }
    }

    /// Whether this node can take part in a move at all.
    fn may_move(&self) -> Result<(), Refusal> {
        if self.settings.witness {
            return Err(Refusal::Witness);
        }
        if let Some(by) = self.frozen_by() {
            return Err(Refusal::Frozen { by });
        }
        if self.lifecycle != Lifecycle::Running {
            return Err(Refusal::ShuttingDown);
        }
        if self.releasing() {
            return Err(Refusal::Releasing);
        }
        Ok(())
    }

    fn order_takeover(&mut self) -> Result<Accepted, Refusal> {
        match self.role() {
            // Handing the VIPs over already (an earlier standby or failback): as good
            // as a release under way, which this order does not undo.
            Role::Active if self.handing_over() => return Err(Refusal::Releasing),
            // Already so: answered as done, so that asking twice is no failure.
            Role::Active => return Ok(Accepted::AlreadyActive),
            Role::Starting => return Err(Refusal::Starting),
            Role::Fault => {
                return Err(Refusal::Unhealthy {
                    failing: self.health.score(),
                });
            }
            Role::Witness => return Err(Refusal::Witness),
            Role::Standby => {}
        }
        // Asked before the holder lets go: a holder that released to a node the
        // majority then held back would leave the VIPs on no node.
        if let Some(hold) = self.majority_hold() {
            return Err(Refusal::NoMajority {
                why: hold.to_string(),
            });
        }
        self.election.request = Some(Request::Takeover);
        self.heartbeat();
        Ok(Accepted::TakingOver {
            holder: self
                .peers
                .iter()
                .find(|p| p.holds())
                .map(|p| p.name.clone()),
        })
    }

    fn order_standby(&mut self, now: Instant) -> Result<Accepted, Refusal> {
        let candidates: Vec<&Peer> = self
            .peers
            .iter()
            .filter(|p| p.present() && !p.witness && p.role != Role::Starting)
            .collect();
        if candidates.is_empty() {
            return Err(Refusal::NoLivePeer);
        }
        if candidates.iter().all(|p| p.role == Role::Fault) {
            let names: Vec<&str> = candidates.iter().map(|p| p.name.as_str()).collect();
            return Err(Refusal::PeersInFault {
                peers: names.join(", "),
            });
        }
        self.election.request = Some(Request::Standby);
        if self.role() == Role::Active {
            let reason = Reason::OperatorStandby;
            // If every node that could take the VIPs is quiet (or starting), one
            // may have died unnoticed: the release waits for one to wake (see
            // `Handover`). With none at all, the release goes ahead, and the
            // election decides who holds the VIPs.
            if self.takers(None).asleep() {
                self.hand_over(
                    now,
                    Handover {
                        to: None,
                        reason,
                        since: now,
                    },
                );
                return Ok(Accepted::Waking { to: None });
            }
            self.start_release(now, After::Standby, reason);
            Ok(Accepted::Releasing)
        } else {
            self.heartbeat();
            Ok(Accepted::StandingBy)
        }
    }

    fn order_failback(&mut self, now: Instant) -> Result<Accepted, Refusal> {
        let Some(holder) = self.holder() else {
            return Err(Refusal::NoHolder);
        };
        let preferred = self.preferred_node();
        if preferred == holder {
            return Err(Refusal::AlreadyPreferred { node: holder });
        }
        if holder == self.settings.name {
            let reason = Reason::Failback {
                peer: preferred.clone(),
            };
            if self.takers(Some(&preferred)).asleep() {
                let to = Some(preferred.clone());
                self.hand_over(
                    now,
                    Handover {
                        to,
                        reason,
                        since: now,
                    },
                );
                return Ok(Accepted::Waking {
                    to: Some(preferred),
                });
            }
            self.start_release(now, After::Standby, reason);
            return Ok(Accepted::HandingBack { to: preferred });
        }
        if preferred == self.settings.name {
            return self.order_takeover();
        }
        Err(Refusal::NotInvolved { holder, preferred })
    }

    /// Clearing is no move (the election decides what follows), so it is allowed in
    /// maintenance too.
    fn clear(&mut self, now: Instant, check: String) -> Result<Accepted, Refusal> {
        let Some(index) = self.health.index_of(&check) else {
            return Err(Refusal::UnknownCheck { check });
        };
        match self.health.check(index) {
            Some(c) if c.failed_at.is_some() => {}
            Some(c) if c.failing => return Err(Refusal::FailingNow { check }),
            _ => return Err(Refusal::NotFailed { check }),
        }
        self.unstick(now, index, Unstuck::Operator);
        Ok(Accepted::Cleared { check })
    }

    fn set_maintenance(&mut self, on: bool) -> Result<Accepted, Refusal> {
        if !on && !self.maintenance {
            let by: Vec<&str> = self
                .peers
                .iter()
                .filter(|p| p.present() && p.maintenance)
                .map(|p| p.name.as_str())
                .collect();
            if by.is_empty() {
                return Ok(Accepted::MaintenanceAlreadyOff);
            }
            return Err(Refusal::MaintenanceElsewhere { by: by.join(", ") });
        }
        if on == self.maintenance {
            return Ok(Accepted::MaintenanceAlreadyOn);
        }
        self.maintenance = on;
        self.heartbeat();
        Ok(Accepted::Maintenance { on })
    }
}
