//! What the machine tells the world: roles, the reasons for changing them, and the
//! notable events the shell logs. One vocabulary for logs, hooks and the docs.

use std::fmt;
use std::time::Duration;

use serde::{Deserialize, Serialize};

use super::{Hold, Sighting};
use crate::duration::format_duration;
use crate::wire::heartbeat::{DecodeError, WireState};

/// A node's role in the cluster. Serialized as [`Role::as_str`] names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Listening for peers before claiming anything (`timing.init_dead`).
    Starting,
    /// Healthy and ready to take over; holds nothing.
    Standby,
    /// Holds the VIPs and runs the service.
    Active,
    /// Less healthy than a live peer; holds nothing until it recovers.
    Fault,
    /// A witness (`[[node]] witness = true`): it votes and holds nothing, ever.
    Witness,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Starting => "starting",
            Role::Standby => "standby",
            Role::Active => "active",
            Role::Fault => "fault",
            Role::Witness => "witness",
        }
    }

    pub(crate) fn wire(self) -> WireState {
        match self {
            Role::Starting => WireState::Starting,
            Role::Standby => WireState::Standby,
            Role::Active => WireState::Active,
            Role::Fault => WireState::Fault,
            // Peers know a witness from the file; old ones take it for a standby.
            Role::Witness => WireState::Standby,
        }
    }
}

impl From<WireState> for Role {
    fn from(state: WireState) -> Role {
        match state {
            WireState::Starting => Role::Starting,
            WireState::Standby => Role::Standby,
            WireState::Active => Role::Active,
            WireState::Fault => Role::Fault,
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a role changed. Logged with every transition and passed to hooks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reason {
    /// The daemon started.
    Start,
    /// `init_dead` passed without any peer answering.
    NoPeerAtStart,
    /// A peer was found active while starting.
    PeerActive { peer: String },
    /// No node was active and this one ranks first among the live ones.
    Elected,
    /// No node was active and a peer ranks first: it takes over, this node waits.
    PeerRanksFirst { peer: String },
    /// A configured VIP was on this node at start (left by a crash).
    StaleVip,
    /// A configured VIP was on this node at start, left by a release that the
    /// daemon did not finish (see `Machine::note_release`).
    UnfinishedRelease,
    /// The active peer sent no valid heartbeat on any link for `dead`.
    PeerDead { peer: String },
    /// The active peer announced a graceful shutdown.
    PeerLeft { peer: String },
    /// The active peer released the VIPs in a planned move.
    PeerReleased { peer: String },
    /// This node's health is worse than a live peer's; `check` is the failing check
    /// that weighs most.
    HealthLost { peer: String, check: String },
    /// This node's health checks pass again.
    HealthRestored,
    /// This node's checks pass, but `check`, which runs only on the active node,
    /// failed while it held the VIPs: it takes them back only if no other node can,
    /// until the failure is cleared.
    FailedWhileActive { check: String },
    /// This node still fails checks, but no live peer is healthier any more.
    NoHealthierPeer,
    /// Two nodes were active (a healed partition) and the peer ranks higher.
    PeerOutranks { peer: String },
    /// `failback = "auto"`: the preferred node has been healthy for `failback_delay`.
    Failback { peer: String },
    /// The daemon was asked to stop.
    Shutdown,
    /// `failoverd takeover` on this node.
    OperatorTakeover,
    /// `failoverd takeover` on the peer: this node releases to it.
    TakeoverRequested { peer: String },
    /// `failoverd standby` on this node.
    OperatorStandby,
    /// Maintenance is on (set on `by`): the node keeps what it has.
    Maintenance { by: String },
    /// This node resumed after a stall and found `peer` active in its place.
    ResumedAfterStall { peer: String },
    /// An unplanned takeover is held back by the split-brain guard.
    TakeoverHeld { hold: Hold },
    /// This node held the VIPs and no longer hears a majority of the voters: the
    /// others may be about to take them.
    MajorityLost { heard: usize, voters: usize },
    /// The daemon started, found the VIPs on this node, and no live peer holds them:
    /// it keeps them (a restart of the active node's daemon).
    Adopted,
}

impl Reason {
    /// A short, stable label for metrics.
    pub fn kind(&self) -> &'static str {
        match self {
            Reason::Start => "start",
            Reason::NoPeerAtStart => "no_peer_at_start",
            Reason::PeerActive { .. } => "peer_active",
            Reason::Elected => "elected",
            Reason::PeerRanksFirst { .. } => "peer_ranks_first",
            Reason::StaleVip => "stale_vip",
            Reason::UnfinishedRelease => "unfinished_release",
            Reason::PeerDead { .. } => "peer_dead",
            Reason::PeerLeft { .. } => "peer_left",
            Reason::PeerReleased { .. } => "planned_handover",
            Reason::HealthLost { .. } => "health_lost",
            Reason::HealthRestored => "health_restored",
            Reason::FailedWhileActive { .. } => "failed_while_active",
            Reason::NoHealthierPeer => "no_healthier_peer",
            Reason::PeerOutranks { .. } => "peer_outranks",
            Reason::Failback { .. } => "failback",
            Reason::Shutdown => "shutdown",
            Reason::OperatorTakeover => "operator_takeover",
            Reason::TakeoverRequested { .. } => "takeover_requested",
            Reason::OperatorStandby => "operator_standby",
            Reason::Maintenance { .. } => "maintenance",
            Reason::ResumedAfterStall { .. } => "resumed_after_stall",
            Reason::TakeoverHeld { hold } => hold.kind(),
            Reason::MajorityLost { .. } => "majority_lost",
            Reason::Adopted => "adopted",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Reason::Start => write!(f, "daemon started"),
            Reason::NoPeerAtStart => write!(f, "no peer answered within init_dead"),
            Reason::PeerActive { peer } => write!(f, "peer {peer} is active"),
            Reason::Elected => write!(f, "no node active, this node ranks first"),
            Reason::PeerRanksFirst { peer } => write!(f, "no node active, peer {peer} ranks first"),
            Reason::StaleVip => write!(f, "VIP found on this node at start, left by a crash"),
            Reason::UnfinishedRelease => write!(
                f,
                "VIP found on this node at start, left by a release the daemon did not finish"
            ),
            Reason::PeerDead { peer } => write!(f, "peer {peer} dead on all links"),
            Reason::PeerLeft { peer } => write!(f, "peer {peer} shut down"),
            Reason::PeerReleased { peer } => write!(f, "planned handover from {peer}"),
            Reason::HealthLost { peer, check } if check.is_empty() => {
                write!(f, "health checks failing, peer {peer} is healthier")
            }
            Reason::HealthLost { peer, check } => {
                write!(
                    f,
                    "health checks failing ({check}), peer {peer} is healthier"
                )
            }
            Reason::HealthRestored => write!(f, "health checks pass again"),
            Reason::FailedWhileActive { check } => write!(
                f,
                "check {check} failed while active: this node takes the VIPs back only if \
                 no other node can (failoverd clear {check})"
            ),
            Reason::NoHealthierPeer => write!(f, "no live peer is healthier any more"),
            Reason::PeerOutranks { peer } => {
                write!(f, "both nodes active, peer {peer} ranks higher")
            }
            Reason::Failback { peer } => write!(f, "failback to preferred node {peer}"),
            Reason::Shutdown => write!(f, "shutdown"),
            Reason::OperatorTakeover => write!(f, "operator takeover"),
            Reason::TakeoverRequested { peer } => {
                write!(f, "operator asked {peer} to take over")
            }
            Reason::OperatorStandby => write!(f, "operator asked this node to stand by"),
            Reason::Maintenance { by } => write!(f, "maintenance mode (set on {by})"),
            Reason::ResumedAfterStall { peer } => {
                write!(f, "resumed after a stall, peer {peer} took over meanwhile")
            }
            Reason::TakeoverHeld { hold } => write!(f, "takeover held: {hold}"),
            Reason::MajorityLost { heard, voters } => write!(
                f,
                "no longer heard by a majority ({heard} of {voters} voters, itself \
                 included): letting go before the others take over"
            ),
            Reason::Adopted => write!(
                f,
                "adopted the VIPs found on this node at start: no live peer holds them"
            ),
        }
    }
}

/// Why a received datagram was dropped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Reject {
    /// It failed to decode or authenticate.
    Decode(DecodeError),
    /// It belongs to another cluster.
    ForeignCluster,
    /// It names no configured peer (or this node itself).
    UnknownNode,
    /// It came from an address that is not the sender's address on that link.
    WrongSource,
    /// Its sequence number is not newer than one already seen: a replay or a duplicate.
    Replay,
    /// It does not echo a recent nonce of this node: a recording, or the first
    /// packet of a handshake after a start or a partition.
    Stale,
    /// It comes from an earlier incarnation of the peer than the one heard: a
    /// recording (or a peer whose clock went back, heard once its last incarnation
    /// is dead here; see `Peer::accept`).
    OldIncarnation,
}

impl Reject {
    pub fn as_str(self) -> &'static str {
        match self {
            Reject::Decode(DecodeError::Length) => "bad length",
            Reject::Decode(DecodeError::Magic) => "not a heartbeat",
            Reject::Decode(DecodeError::Version) => "unsupported version",
            Reject::Decode(DecodeError::Tag) => "authentication failed",
            Reject::Decode(DecodeError::Malformed) => "malformed",
            Reject::ForeignCluster => "other cluster",
            Reject::UnknownNode => "unknown node",
            Reject::WrongSource => "unexpected source address",
            Reject::Replay => "replayed or duplicate",
            Reject::Stale => "stale (not echoing a recent nonce)",
            Reject::OldIncarnation => "older incarnation",
        }
    }
}

impl fmt::Display for Reject {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why an operator's handover was dropped before its release began.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lapse {
    /// No peer that could take the VIPs is left: each is dead, in fault, or asked
    /// to stand by.
    NoTaker,
    /// The failback was for a node that is no longer the preferred one.
    NotPreferred { preferred: String },
    /// Maintenance, turned on on `by`, froze moves.
    Frozen { by: String },
}

/// Something worth a log line. `Transition` is the one that matters most.
#[derive(Debug, Clone, PartialEq)]
pub enum Event {
    Transition {
        from: Role,
        to: Role,
        reason: Reason,
    },
    /// A release (stop hook, then VIP removal) began; the transition follows it.
    Releasing {
        reason: Reason,
    },
    /// An operator's handover (standby, failback) that waited for a quiet standby
    /// to wake was dropped before its release began, for `why`. The VIPs stay on
    /// this node.
    HandoverLapsed {
        reason: Reason,
        why: Lapse,
    },
    PeerUp {
        peer: String,
        link: String,
    },
    PeerRestarted {
        peer: String,
    },
    /// The active `peer` did not echo the nonces of this node's quiet heartbeats
    /// (see `pace`): it runs a version that refuses them, so this node beats every
    /// interval toward it until it restarts, or for `retry`.
    QuietRefused {
        peer: String,
        retry: Duration,
    },
    PeerLate {
        peer: String,
        silent: Duration,
    },
    PeerDead {
        peer: String,
    },
    PeerLeaving {
        peer: String,
    },
    LinkLate {
        peer: String,
        link: String,
        silent: Duration,
    },
    LinkDown {
        peer: String,
        link: String,
    },
    /// Nothing came from `peer` on `link` in `init_dead` (at least `dead`) since the
    /// peer came up on another link: a link that never worked (a firewall, a wrong
    /// address), which would otherwise show only as `unknown` in the status.
    LinkSilent {
        peer: String,
        link: String,
        since: Duration,
    },
    /// A heartbeat came on a link that was dead; `first` when it is the first one
    /// ever heard on it (the link was [`Event::LinkSilent`]).
    LinkUp {
        peer: String,
        link: String,
        first: bool,
    },
    FingerprintMismatch {
        peer: String,
        ours: [u8; 8],
        theirs: [u8; 8],
    },
    /// A peer that ran another configuration runs this node's again: its reload,
    /// or this node's, made them agree.
    FingerprintMatch {
        peer: String,
    },
    /// A check started failing: `check` is its name, `kind` its kind ("ping",
    /// "http", ...), `what` what it looks at ("gateway 198.18.0.1"), `detail` why
    /// its last run failed.
    CheckFailed {
        check: String,
        kind: &'static str,
        what: String,
        failures: u32,
        detail: String,
    },
    CheckPassed {
        check: String,
        kind: &'static str,
        what: String,
    },
    /// An active-only check was failing when this node let the VIPs go: it will not
    /// take them back while another node can hold them, until cleared or `until`.
    CheckStuck {
        check: String,
        until: Option<Duration>,
    },
    /// A sticky failure ended, by `failoverd clear` or its failure timeout.
    CheckCleared {
        check: String,
        by: &'static str,
    },
    /// Datagrams dropped since the last report, by reason (reported at most every 10 s).
    Rejected {
        counts: Vec<(Reject, u64)>,
    },
    /// A peer that is not alive sent `count` stale heartbeats over `over`, after a
    /// handshake that did not make it count: it does not hear this node (a one-way
    /// cut), or someone replays recordings of it on the LAN. Elections do not wait
    /// for them. Reported at most once a minute.
    StaleBurst {
        peer: String,
        count: u64,
        over: Duration,
    },
    VipFailed {
        vip: String,
        action: &'static str,
        error: String,
    },
    /// A removal of this VIP failed for the `failures`-th time in a row: it may
    /// still be on the interface, so it is tried again in `retry_in`.
    VipRemoveFailed {
        vip: String,
        error: String,
        failures: u32,
        retry_in: Duration,
    },
    StaleVip {
        vip: String,
    },
    /// The state directory says a release was under way when the daemon stopped:
    /// the VIPs found at start are removed, not adopted.
    UnfinishedRelease,
    /// The state directory says the start hook ran when the daemon stopped: the
    /// VIPs found at start are adopted with the start hook run again (`rerun`), or,
    /// in maintenance, without it.
    UnfinishedStart {
        rerun: bool,
    },
    HookFailed {
        hook: &'static str,
        outcome: String,
    },
    HookDone {
        hook: &'static str,
        outcome: String,
    },
    /// The node did not run for this long: paused, frozen or starved.
    Stalled {
        gap: Duration,
    },
    /// The split-brain guard holds an unplanned takeover back.
    TakeoverHeld {
        hold: Hold,
    },
    /// `live_vip = "take"`: taking the VIPs although another host answers for one.
    TakingLiveVip {
        sighting: Sighting,
    },
    /// A probe of the VIPs could not be made; takeovers go ahead without it.
    ProbeFailed {
        error: String,
    },
    /// While this node holds the VIPs, another host claimed one.
    VipConflict {
        sighting: Sighting,
    },
    /// The fence command runs for this silent peer.
    Fencing {
        peer: String,
    },
    /// The fence command for this peer exited 0.
    Fenced {
        peer: String,
    },
    /// A VIP was on this node at start; it is kept until the cluster is heard.
    VipFound {
        vip: String,
    },
    /// More unplanned changes of holder within the damping window than
    /// `[damping] changes` (or one more while flapping): the next unplanned
    /// takeover waits for `silence` (see `steady`).
    Flapping {
        changes: usize,
        window: Duration,
        silence: Duration,
    },
    /// `[damping] quiet` without an unplanned change, after flapping for `flapped`:
    /// unplanned takeovers wait `dead` again.
    Relaxed {
        flapped: Duration,
    },
    /// A flapping node holds its takeover until `peer` has been silent for `silence`.
    TakeoverDamped {
        peer: String,
        silence: Duration,
    },
    /// This node was woken `late` after its deadline (the host did not run it), the
    /// latest of `times` such wake-ups since the last report: its peers' silence
    /// meanwhile is not held against them. Reported at most every 10 s.
    Starved {
        late: Duration,
        times: u64,
    },
}

/// How loud an event is in the log. Serialized as [`Severity::as_str`] names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warn,
    Error,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warn => "warn",
            Severity::Error => "error",
        }
    }
}

/// What an event is about, a short label for filtering. Serialized as
/// [`EventKind::as_str`] names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum EventKind {
    /// A role change, or a release leading to one.
    Transition,
    /// A peer came up, restarted, went late or dead, or is leaving.
    Peer,
    /// One heartbeat link to a peer went late, dead or up again.
    Link,
    /// A health check (gateway or interface) failed or passed again.
    Health,
    /// A hook run failed or finished.
    Hook,
    /// A VIP could not be added or removed, or was found left over at start.
    Vip,
    /// A peer runs a different configuration.
    Config,
    /// Datagrams were dropped.
    Rejected,
    /// This node did not run for a while.
    Stall,
    /// The split-brain guard: probes, conflicts, fencing, held takeovers.
    Guard,
    /// Flap damping engaged, held a takeover, or relaxed.
    Flapping,
}

impl EventKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EventKind::Transition => "transition",
            EventKind::Peer => "peer",
            EventKind::Link => "link",
            EventKind::Health => "health",
            EventKind::Hook => "hook",
            EventKind::Vip => "vip",
            EventKind::Config => "config",
            EventKind::Rejected => "rejected",
            EventKind::Stall => "stall",
            EventKind::Guard => "guard",
            EventKind::Flapping => "flapping",
        }
    }
}

impl fmt::Display for EventKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl Event {
    /// What the event is about.
    pub fn kind(&self) -> EventKind {
        match self {
            Event::Transition { .. } | Event::Releasing { .. } | Event::HandoverLapsed { .. } => {
                EventKind::Transition
            }
            Event::PeerUp { .. }
            | Event::PeerRestarted { .. }
            | Event::QuietRefused { .. }
            | Event::PeerLate { .. }
            | Event::PeerDead { .. }
            | Event::PeerLeaving { .. } => EventKind::Peer,
            Event::LinkLate { .. }
            | Event::LinkDown { .. }
            | Event::LinkSilent { .. }
            | Event::LinkUp { .. } => EventKind::Link,
            Event::FingerprintMismatch { .. } | Event::FingerprintMatch { .. } => EventKind::Config,
            Event::CheckFailed { .. }
            | Event::CheckPassed { .. }
            | Event::CheckStuck { .. }
            | Event::CheckCleared { .. } => EventKind::Health,
            Event::Rejected { .. } | Event::StaleBurst { .. } => EventKind::Rejected,
            Event::VipFailed { .. }
            | Event::VipRemoveFailed { .. }
            | Event::StaleVip { .. }
            | Event::UnfinishedRelease
            | Event::UnfinishedStart { .. } => EventKind::Vip,
            Event::HookFailed { .. } | Event::HookDone { .. } => EventKind::Hook,
            Event::Stalled { .. } | Event::Starved { .. } => EventKind::Stall,
            Event::Flapping { .. } | Event::Relaxed { .. } | Event::TakeoverDamped { .. } => {
                EventKind::Flapping
            }
            Event::TakeoverHeld { .. }
            | Event::TakingLiveVip { .. }
            | Event::ProbeFailed { .. }
            | Event::VipConflict { .. }
            | Event::Fencing { .. }
            | Event::Fenced { .. } => EventKind::Guard,
            Event::VipFound { .. } => EventKind::Vip,
        }
    }

    pub fn severity(&self) -> Severity {
        match self {
            Event::Transition { .. }
            | Event::Releasing { .. }
            | Event::PeerUp { .. }
            | Event::PeerRestarted { .. }
            | Event::QuietRefused { .. }
            | Event::PeerLeaving { .. }
            | Event::LinkUp { .. }
            | Event::FingerprintMatch { .. }
            | Event::CheckPassed { .. }
            | Event::CheckCleared { .. }
            | Event::HookDone { .. }
            | Event::VipFound { .. }
            | Event::Relaxed { .. } => Severity::Info,
            Event::PeerLate { .. }
            | Event::LinkLate { .. }
            | Event::LinkDown { .. }
            | Event::LinkSilent { .. }
            | Event::PeerDead { .. }
            | Event::CheckFailed { .. }
            | Event::CheckStuck { .. }
            | Event::Rejected { .. }
            | Event::StaleBurst { .. }
            | Event::StaleVip { .. }
            | Event::UnfinishedRelease
            | Event::UnfinishedStart { .. }
            | Event::Stalled { .. }
            | Event::Starved { .. }
            | Event::Flapping { .. }
            | Event::TakeoverDamped { .. }
            | Event::ProbeFailed { .. }
            | Event::Fencing { .. }
            | Event::Fenced { .. }
            | Event::HandoverLapsed { .. } => Severity::Warn,
            Event::FingerprintMismatch { .. }
            | Event::VipFailed { .. }
            | Event::VipRemoveFailed { .. }
            | Event::HookFailed { .. }
            | Event::TakeoverHeld { .. }
            | Event::TakingLiveVip { .. }
            | Event::VipConflict { .. } => Severity::Error,
        }
    }
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl fmt::Display for Event {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Event::Transition { from, to, reason } => write!(f, "{from} -> {to}: {reason}"),
            Event::Releasing {
                reason: reason @ Reason::MajorityLost { .. },
            } => write!(f, "releasing (VIPs, then stop hook): {reason}"),
            Event::Releasing { reason } => {
                write!(f, "releasing (stop hook, then VIPs): {reason}")
            }
            Event::HandoverLapsed { reason, why } => {
                write!(f, "handover dropped ({reason}): ")?;
                match why {
                    Lapse::NoTaker => f.write_str(
                        "no peer that could take the VIPs is left (dead, in fault or \
                         standing by), so they stay here",
                    ),
                    Lapse::NotPreferred { preferred } => write!(
                        f,
                        "{preferred} is now the preferred node, so the VIPs stay here"
                    ),
                    Lapse::Frozen { by } => write!(
                        f,
                        "maintenance turned on on {by} froze moves, so the VIPs stay here"
                    ),
                }
            }
            Event::PeerUp { peer, link } => write!(f, "peer {peer} up (first heard on {link})"),
            Event::PeerRestarted { peer } => write!(f, "peer {peer} restarted"),
            Event::QuietRefused { peer, retry } => write!(
                f,
                "peer {peer} does not take quiet heartbeats (an older version?): beating \
                 every interval toward it until it restarts, or for {}",
                format_duration(*retry)
            ),
            Event::PeerLate { peer, silent } => write!(
                f,
                "peer {peer} late: no heartbeat on any link for {}",
                format_duration(*silent)
            ),
            Event::PeerDead { peer } => write!(f, "peer {peer} dead: silent on all links"),
            Event::PeerLeaving { peer } => write!(f, "peer {peer} is shutting down"),
            Event::LinkLate { peer, link, silent } => write!(
                f,
                "heartbeats from {peer} on {link} are late: none for {}",
                format_duration(*silent)
            ),
            Event::LinkDown { peer, link } => {
                write!(
                    f,
                    "link {link} to {peer} dead (peer still alive on another link)"
                )
            }
            Event::LinkSilent { peer, link, since } => write!(
                f,
                "link {link} to {peer} dead: not one heartbeat on it in the {} since \
                 {peer} came up on another link (check the link's addresses and firewall)",
                format_duration(*since)
            ),
            Event::LinkUp {
                peer,
                link,
                first: false,
            } => write!(f, "link {link} to {peer} up again"),
            Event::LinkUp {
                peer,
                link,
                first: true,
            } => write!(f, "link {link} to {peer} up: its first heartbeat came"),
            Event::FingerprintMatch { peer } => {
                write!(
                    f,
                    "peer {peer} runs the same configuration as this node again"
                )
            }
            Event::FingerprintMismatch { peer, ours, theirs } => write!(
                f,
                "peer {peer} runs a different configuration (fingerprint {} here, {} there): \
                 copy the same file to every node",
                hex(ours),
                hex(theirs)
            ),
            Event::CheckFailed {
                kind: "ping",
                what,
                failures,
                ..
            } => write!(f, "{what} lost after {failures} failed probes"),
            Event::CheckFailed {
                kind: "link", what, ..
            } => write!(f, "{what} is down"),
            Event::CheckFailed {
                check,
                what,
                failures,
                detail,
                ..
            } => {
                write!(
                    f,
                    "check {check} ({what}) failing after {failures} failed run"
                )?;
                if *failures != 1 {
                    f.write_str("s")?;
                }
                if !detail.is_empty() {
                    write!(f, ": {detail}")?;
                }
                Ok(())
            }
            Event::CheckPassed {
                kind: "ping", what, ..
            } => write!(f, "{what} reachable"),
            Event::CheckPassed {
                kind: "link", what, ..
            } => write!(f, "{what} is up"),
            Event::CheckPassed { check, what, .. } => {
                write!(f, "check {check} ({what}) passes again")
            }
            Event::CheckStuck { check, until } => {
                write!(
                    f,
                    "check {check} failed while this node was active: it will not take the \
                     VIPs back while another node can hold them, until `failoverd clear {check}`"
                )?;
                match until {
                    Some(timeout) => write!(f, " or for {}", format_duration(*timeout)),
                    None => Ok(()),
                }
            }
            Event::CheckCleared { check, by } => {
                write!(f, "check {check} no longer counts as failed ({by})")
            }
            Event::Rejected { counts } => {
                write!(f, "dropped datagrams:")?;
                for (i, (reason, n)) in counts.iter().enumerate() {
                    let sep = if i == 0 { " " } else { ", " };
                    write!(f, "{sep}{n} {reason}")?;
                }
                Ok(())
            }
            Event::StaleBurst { peer, count, over } => write!(
                f,
                "{count} stale heartbeats from {peer} in {} while it is not alive: it does not \
                 hear this node, or recordings of it are replayed on the LAN; elections do not \
                 wait for them",
                format_duration(*over)
            ),
            Event::VipFailed { vip, action, error } => {
                write!(f, "failed to {action} VIP {vip}: {error}")
            }
            Event::VipRemoveFailed {
                vip,
                error,
                failures,
                retry_in,
            } => write!(
                f,
                "failed to remove VIP {vip} ({failures} in a row): {error}; it may still be \
                 on this node, trying again in {}",
                format_duration(*retry_in)
            ),
            Event::StaleVip { vip } => {
                write!(f, "VIP {vip} found on this node at start; removing it")
            }
            Event::UnfinishedRelease => write!(
                f,
                "the daemon stopped during a release: the VIPs found at start are removed, \
                 not adopted (their service may be stopped)"
            ),
            Event::UnfinishedStart { rerun: true } => write!(
                f,
                "the daemon stopped while its start hook ran: the VIPs found at start are \
                 adopted and the start hook runs again (the service may be half started)"
            ),
            Event::UnfinishedStart { rerun: false } => write!(
                f,
                "the daemon stopped while its start hook ran: in maintenance the VIPs found \
                 at start are adopted and no hook runs; the service may be half started \
                 (check it, or run the start hook by hand)"
            ),
            Event::HookFailed { hook, outcome } => write!(f, "{hook} hook failed: {outcome}"),
            Event::HookDone { hook, outcome } => write!(f, "{hook} hook {outcome}"),
            Event::Stalled { gap } => write!(
                f,
                "this node did not run for {} (paused or starved): a peer may have taken over",
                format_duration(*gap)
            ),
            Event::TakeoverHeld { hold } => write!(f, "takeover held: {hold}"),
            Event::TakingLiveVip { sighting } => write!(
                f,
                "taking the VIPs although {sighting} still answers ([split_brain] live_vip = \"take\")"
            ),
            Event::ProbeFailed { error } => write!(
                f,
                "cannot probe the VIPs ({error}): takeovers go ahead without knowing whether \
                 another host still answers for them"
            ),
            Event::VipConflict { sighting } => write!(
                f,
                "VIP conflict: {sighting} claims a VIP this node holds; announcing it again"
            ),
            Event::Fencing { peer } => write!(f, "fencing {peer} before taking over"),
            Event::Fenced { peer } => write!(f, "{peer} fenced: taking over"),
            Event::VipFound { vip } => write!(
                f,
                "VIP {vip} found on this node at start; keeping it until the cluster is heard"
            ),
            Event::Flapping {
                changes,
                window,
                silence,
            } => write!(
                f,
                "flapping: {changes} unplanned changes of holder within {}; an unplanned \
                 takeover now waits for {} of silence",
                format_duration(*window),
                format_duration(*silence)
            ),
            Event::Relaxed { flapped } => write!(
                f,
                "damping relaxed after flapping for {}: an unplanned takeover waits for \
                 timing.dead again",
                format_duration(*flapped)
            ),
            Event::TakeoverDamped { peer, silence } => write!(
                f,
                "takeover damped: flapping, so waiting until {peer} has been silent for {}",
                format_duration(*silence)
            ),
            Event::Starved { late, times } => {
                write!(
                    f,
                    "this node was starved for {} (woken that late): its peers' silence \
                     meanwhile is not held against them",
                    format_duration(*late)
                )?;
                if *times > 1 {
                    write!(f, " ({times} times since the last report)")?;
                }
                Ok(())
            }
        }
    }
}
