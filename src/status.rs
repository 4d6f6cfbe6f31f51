//! The status report: what `failoverd status --json`, the control socket's `status`
//! reply and the HTTP `/status` page all return. Field names are stable (documented in
//! docs/operations.md); new fields may be added, none renamed or removed within version 1.
//!
//! States, severities and the like are enums that serialize to the docs' words. A
//! client reads them leniently, as [`Named`]: a newer daemon may send a word this
//! client does not know, and the document must still read.

use std::fmt;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

pub use crate::config::{Failback, Scope};
use crate::machine::event::{EventKind, Role, Severity};
use crate::machine::peer::LinkState;

/// Version of the status document and of the control protocol.
pub const VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Status {
    pub version: u32,
    pub cluster: String,
    pub node: String,
    /// This node's configured priority (peers carry theirs in `peers`). Absent from
    /// older documents.
    #[serde(default)]
    pub priority: u16,
    pub pid: u32,
    pub daemon_version: String,
    pub config: String,
    /// Fingerprint of the shared configuration, hex.
    pub fingerprint: String,
    /// starting, standby, active or fault.
    pub state: Named<Role>,
    /// When the state was entered (RFC 3339, UTC).
    pub since: String,
    pub since_unix_ms: u64,
    pub reason: String,
    /// The reason's kind, as the metrics label transitions (`peer_dead`,
    /// `failed_while_active`, ...). Absent from older documents.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason_kind: String,
    /// A release (stop hook, then VIP removal) is under way.
    pub releasing: bool,
    /// An operator's handover (`standby`, `failback`) waits for the quiet standby
    /// to wake before the release begins. Absent from older documents.
    #[serde(default)]
    pub handing_over: bool,
    /// The node a waiting failback hands the VIPs to; absent for `standby`, which
    /// hands them to any standby, and when no handover waits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handing_over_to: Option<String>,
    /// How long the waiting handover has waited, in milliseconds; absent when none
    /// waits.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub handing_over_ms: Option<u64>,
    pub maintenance: Maintenance,
    /// Set by `failoverd standby`: this node keeps out of the way while a peer can
    /// hold the VIPs.
    pub standby_requested: bool,
    /// Set by `failoverd takeover` until this node is active: the order stands
    /// after the command has stopped waiting (a takeover held back, a holder that
    /// does not answer), until it is carried out or another order replaces it.
    #[serde(default)]
    pub takeover_requested: bool,
    pub failback: Named<Failback>,
    pub failback_delay_ms: u64,
    /// On an active node with `failback = "auto"`: the preferred peer that gets the
    /// VIPs back, and when, once it has stood by healthy for `failback_delay`.
    /// Absent when no failback waits, and from older documents.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub failback_due: Option<FailbackDue>,
    /// This node was made active by `failoverd takeover` with `failback = "auto"`:
    /// automatic failback leaves it alone until it stops being active (`failoverd
    /// failback` still moves the VIPs). Absent from older documents.
    #[serde(default)]
    pub failback_held: bool,
    /// The node that should hold the VIPs when nothing else stands in the way, and
    /// that `failoverd failback` moves them to: the first by the election's ranking
    /// among this node and the live peers that are neither in fault nor asked to
    /// stand by. The daemon ranks, so that no client has to repeat its rules. Absent
    /// from older documents.
    #[serde(default)]
    pub preferred: Option<String>,
    pub health: HealthStatus,
    pub vips: Vec<VipStatus>,
    pub peers: Vec<PeerStatus>,
    pub counters: Counters,
    /// Most recent first.
    pub hooks: Vec<HookRun>,
    /// Most recent last.
    pub events: Vec<EventRecord>,
    /// How long the last takeover took, from the decision to every VIP in place.
    pub last_takeover_ms: Option<f64>,
    /// Why an unplanned takeover is held back by the split-brain guard, if one is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub takeover_held: Option<String>,
    /// This node's heartbeat addresses that are not on the host yet (link name,
    /// address): the daemon listens on them and nothing goes out or comes in on
    /// those links until they appear. Absent from older documents.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub addresses_missing: Vec<(String, String)>,
    /// The links on which this quiet standby has the kernel set its active peer's
    /// routine heartbeats aside, to read at its next wake-up (see the shell's
    /// `receive`). Absent when there is none, and from older documents.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub reading_late: Vec<String>,
    /// Time between this node's heartbeats now: `timing.interval`, or
    /// `timing.standby_interval` while it is a quiet standby. Absent (0) from older
    /// documents.
    #[serde(default)]
    pub heartbeat_every_ms: f64,
    /// This node is a quiet standby (see `heartbeat_every_ms`). Absent from older
    /// documents.
    #[serde(default)]
    pub quiet: bool,
    /// Whether the heartbeat thread runs at realtime priority and the memory is
    /// locked (`[scheduling]`). Absent from older documents.
    #[serde(default)]
    pub scheduling: SchedulingStatus,
    /// What this node saw happen, for the status page's timeline. Absent from older
    /// documents.
    #[serde(default, skip_serializing_if = "History::is_empty")]
    pub history: History,
    /// Flap damping (docs/steadiness.md). Absent from older documents.
    #[serde(default)]
    pub damping: DampingStatus,
    /// When the host did not run this node on time. Absent from older documents.
    #[serde(default)]
    pub starved: StarvedStatus,
}

/// What the kernel granted of `[scheduling]`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct SchedulingStatus {
    /// The SCHED_RR priority the heartbeat thread runs at; 0 at normal priority.
    pub realtime_priority: u8,
    /// Why the heartbeat thread is not at realtime priority (turned off, or what the
    /// kernel refused and what to grant); absent when it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub realtime_off: Option<String>,
    /// The daemon's memory is locked as it is touched.
    pub memory_locked: bool,
    /// Why it is not; absent when it is.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_off: Option<String>,
}

/// The roles of this node and the states of its peers over time, as this node saw
/// them, and when maintenance went on and off: the last [`History::KEPT`] changes,
/// oldest first.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct History {
    /// Where the history begins: when the daemon started, or, once older changes
    /// were let go, when the oldest one kept happened.
    pub since_unix_ms: u64,
    pub changes: Vec<Change>,
    #[serde(default)]
    pub maintenance: Vec<MaintenanceChange>,
}

impl History {
    /// Changes kept, of roles and of maintenance each: a few days of a calm
    /// cluster, an hour of a flapping one, and a few tens of KiB in the status.
    pub const KEPT: usize = 128;

    pub fn is_empty(&self) -> bool {
        self.since_unix_ms == 0 && self.changes.is_empty() && self.maintenance.is_empty()
    }
}

/// One node changing state.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Change {
    pub unix_ms: u64,
    /// This node or a peer.
    pub node: String,
    /// The state before and after, as `state` and `peers[].state` name them: a
    /// role, or, for a peer, dead, stopped or unknown. This node's changes are its
    /// transitions, at the moment they happened; a peer's are seen within a second.
    pub from: Named<PeerState>,
    pub to: Named<PeerState>,
    /// Why, for this node's transitions (the reason it logged); empty for a peer.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub reason: String,
}

/// Maintenance going on or off (set here or by a peer), seen within a second.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MaintenanceChange {
    pub unix_ms: u64,
    pub on: bool,
}

/// Flap damping: whether this node flaps, and what an unplanned takeover waits for.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct DampingStatus {
    /// `[damping] enabled`.
    pub enabled: bool,
    /// More unplanned changes of holder than `[damping] changes` within its window:
    /// unplanned takeovers wait for a longer silence.
    pub flapping: bool,
    /// Unplanned changes of holder this node saw within the window.
    pub changes: u64,
    /// The silence of the holder an unplanned takeover waits for now: `timing.dead`,
    /// or more while flapping (at most `[damping] max_silence`).
    pub takeover_silence_ms: f64,
    /// While flapping: since when (RFC 3339, UTC).
    pub since: Option<String>,
    /// While flapping: when it relaxes unless another unplanned change comes first.
    pub until: Option<String>,
    /// How many times this node began to flap since start.
    pub episodes: u64,
}

/// Wake-ups an interval or more late: the host did not run this node when it asked.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct StarvedStatus {
    /// Since start.
    pub count: u64,
    /// How late the longest one was.
    pub longest_ms: Option<f64>,
    /// The latest: how late, and when (RFC 3339, UTC).
    pub last_ms: Option<f64>,
    pub last: Option<String>,
}

/// An automatic failback under way: the VIPs go to `to` at `at` unless something
/// changes first (the peer restarts, fails a check, or stops standing by).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct FailbackDue {
    pub to: String,
    /// RFC 3339, UTC.
    pub at: String,
    pub at_unix_ms: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Maintenance {
    /// Automatic transitions are frozen on this node (set here or by a peer).
    pub on: bool,
    /// Nodes that asked for it (this one and/or peers).
    pub set_by: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HealthStatus {
    /// The health score: the weights of the failing checks, 255 while a fatal one
    /// fails (0 is healthy); sent to peers, lower ranks higher. With every weight 1,
    /// the number of failing checks.
    pub failing: u8,
    /// The `[health] gateways` checks, as before checks had names.
    pub gateways: Vec<GatewayStatus>,
    /// Link state of the interfaces that carry VIPs (`[health] link_state`).
    #[serde(default)]
    pub interfaces: Vec<InterfaceStatus>,
    /// Every check, the built-in ones too, in the order `failoverd check` lists them.
    #[serde(default)]
    pub checks: Vec<CheckStatus>,
    /// A check failed while this node was active and sticks: this node takes the
    /// VIPs only if no other node can (`failoverd clear CHECK` ends it).
    #[serde(default)]
    pub failed: bool,
}

/// One check and its last run.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct CheckStatus {
    pub name: String,
    /// ping, link, exec, tcp, http, or the built-in vip and start-hook.
    pub kind: String,
    /// What it looks at: an address, an interface, a command line, a URL.
    pub target: String,
    /// both, or active (runs only on the active node).
    pub on: Scope,
    pub weight: u8,
    pub fatal: bool,
    /// passing, failing, or idle (an active-only check on a node that is not
    /// active, or in its start grace).
    pub state: Named<CheckState>,
    pub consecutive_failures: u32,
    pub runs: u64,
    pub last_duration_ms: Option<f64>,
    /// The last run's output line or error, when it said something.
    pub last_detail: Option<String>,
    /// It failed while this node was active and sticks (see `HealthStatus::failed`).
    pub failed: bool,
    /// When that sticky failure ends on its own (`failure_timeout`), RFC 3339.
    pub failed_until: Option<String>,
}

/// The state of a check, as the status names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CheckState {
    Passing,
    Failing,
    Idle,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct InterfaceStatus {
    pub name: String,
    pub up: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct GatewayStatus {
    pub address: String,
    pub reachable: bool,
    pub rtt_ms: Option<f64>,
    pub consecutive_failures: u32,
    pub probes: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct VipStatus {
    /// Address with prefix, e.g. 198.18.0.10/24.
    pub address: String,
    pub interface: String,
    pub label: Option<String>,
    /// The address is on this node's interface (its add succeeded).
    pub held_here: bool,
    /// The node that holds it, as far as this node knows (itself or an active peer).
    pub holder: Option<String>,
    /// Failed removals in a row: the VIP may still be on this node's interface, and
    /// the removal is being tried again. 0 (left out) when no removal is failing.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub removal_failures: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeerStatus {
    pub name: String,
    /// As the peer last reported it; "dead" when silent on every link, "unknown"
    /// when never heard, "stopped" after it announced its shutdown.
    pub state: Named<PeerState>,
    pub alive: bool,
    pub priority: u16,
    pub health_failing: u8,
    pub maintenance: bool,
    pub standby_requested: bool,
    /// None until the first heartbeat.
    pub fingerprint_match: Option<bool>,
    /// The peer has a sticky check failure (see [`HealthStatus::failed`]).
    #[serde(default)]
    pub failed: bool,
    /// The peer is a quiet standby: it beats every `timing.standby_interval`, and
    /// its links count late and dead that much plus two intervals later. Absent from older documents.
    #[serde(default)]
    pub quiet: bool,
    pub links: Vec<LinkStatus>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinkStatus {
    pub name: String,
    pub address: String,
    /// ok, late, dead or unknown.
    pub state: Named<LinkState>,
    /// Age of the last valid heartbeat on this link.
    pub last_heartbeat_ms: Option<f64>,
    pub received: u64,
    /// Datagrams from the peer's address on this link that failed authentication
    /// (a key that differs, or a forgery), and the age of the last. Absent from
    /// older documents.
    #[serde(default)]
    pub unauthentic: u64,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub last_unauthentic_ms: Option<f64>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Counters {
    pub heartbeats_sent: u64,
    /// Valid heartbeats received, per link name.
    pub heartbeats_received: Vec<(String, u64)>,
    /// Dropped datagrams per reason.
    pub rejected: Vec<(String, u64)>,
    /// Datagrams dropped on arrival, before the election saw them, per link name:
    /// junk, strangers and forgeries, and what the kernel dropped from the link's
    /// full socket buffer. Absent from older documents.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub dropped: Vec<(String, u64)>,
    /// Routine heartbeats of the active peer that this node, a quiet standby, read
    /// late, at a wake-up, dated by their arrival, per link name. Absent when the
    /// node listens on no link, and from older documents.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub read_late: Vec<(String, u64)>,
    /// Heartbeats sent through the link's raw socket, per link name (see
    /// `[scheduling] raw_send`); the rest went through its UDP socket. Absent when
    /// the node sends on no link, and from older documents.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub sent_raw: Vec<(String, u64)>,
    /// Raw sends that failed, per link name, each sent again through the UDP
    /// socket. Absent as `sent_raw` is.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub raw_failed: Vec<(String, u64)>,
    /// Transitions per target state and reason kind.
    pub transitions: Vec<TransitionCount>,
    /// Other hosts seen claiming a VIP while this node held it.
    #[serde(default, skip_serializing_if = "is_zero")]
    pub vip_conflicts: u64,
}

impl Counters {
    /// The links of per-link `counts` (`sent_raw`, `raw_failed`) that counted
    /// anything, with their counts: what the views show.
    pub fn counted(counts: &[(String, u64)]) -> impl Iterator<Item = (&str, u64)> {
        (counts.iter())
            .filter(|(_, n)| *n > 0)
            .map(|(link, n)| (link.as_str(), *n))
    }
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TransitionCount {
    pub to: Named<Role>,
    pub reason: String,
    pub count: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HookRun {
    pub hook: String,
    pub started: String,
    pub duration_ms: f64,
    /// "exited 0", "killed by signal 9", "timed out and was killed", "could not
    /// start: ..."; how long it ran is `duration_ms`.
    pub outcome: String,
    pub success: bool,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct EventRecord {
    /// Increases by one per event over the daemon's life; `events -f` follows it.
    pub seq: u64,
    pub time: String,
    pub unix_ms: u64,
    /// info, warn or error.
    pub severity: Named<Severity>,
    /// transition, peer, link, health, hook, vip, config, rejected or stall.
    pub kind: Named<EventKind>,
    pub message: String,
}

/// A peer as this node sees it: the role it last reported while alive, or why there
/// is none.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PeerState {
    Starting,
    Standby,
    Active,
    Fault,
    /// A witness, heard: it votes and holds nothing.
    Witness,
    /// Silent on every link.
    Dead,
    /// Not heard since this daemon started.
    Unknown,
    /// It announced its shutdown.
    Stopped,
}

impl From<Role> for PeerState {
    fn from(role: Role) -> PeerState {
        match role {
            Role::Starting => PeerState::Starting,
            Role::Standby => PeerState::Standby,
            Role::Active => PeerState::Active,
            Role::Fault => PeerState::Fault,
            Role::Witness => PeerState::Witness,
        }
    }
}

/// A closed list of words of the status document: roles, peer and link states,
/// failback modes, event severities and kinds.
pub trait Word: Copy {
    /// The word as the document spells it (and as serde writes it).
    fn as_str(self) -> &'static str;
}

impl Word for Role {
    fn as_str(self) -> &'static str {
        Role::as_str(self)
    }
}

impl Word for PeerState {
    fn as_str(self) -> &'static str {
        match self {
            PeerState::Starting => "starting",
            PeerState::Standby => "standby",
            PeerState::Active => "active",
            PeerState::Fault => "fault",
            PeerState::Witness => "witness",
            PeerState::Dead => "dead",
            PeerState::Unknown => "unknown",
            PeerState::Stopped => "stopped",
        }
    }
}

impl Word for LinkState {
    fn as_str(self) -> &'static str {
        LinkState::as_str(self)
    }
}

impl Word for Failback {
    fn as_str(self) -> &'static str {
        match self {
            Failback::Auto => "auto",
            Failback::Manual => "manual",
        }
    }
}

impl Word for CheckState {
    fn as_str(self) -> &'static str {
        match self {
            CheckState::Passing => "passing",
            CheckState::Failing => "failing",
            CheckState::Idle => "idle",
        }
    }
}

impl Word for Severity {
    fn as_str(self) -> &'static str {
        Severity::as_str(self)
    }
}

impl Word for EventKind {
    fn as_str(self) -> &'static str {
        EventKind::as_str(self)
    }
}

/// A [`Word`] as a client reads it from a status document.
///
/// A daemon newer than the client may send a word the client does not know. Rather
/// than reject the whole document, the client keeps it as [`Named::Newer`]: it shows
/// as sent, `status --json` writes it back unchanged, and it equals no known value,
/// so a state the client does not know counts as a failure
/// ([`crate::cli::status_exit_code`]). A daemon only ever writes [`Named::Known`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(untagged)]
pub enum Named<T> {
    Known(T),
    /// A word this build does not know, as sent.
    Newer(String),
}

impl<T: Word> Named<T> {
    /// The known value; None for a word this build does not know.
    pub fn known(&self) -> Option<T> {
        match self {
            Named::Known(word) => Some(*word),
            Named::Newer(_) => None,
        }
    }

    /// The word as the document spells it.
    pub fn as_str(&self) -> &str {
        match self {
            Named::Known(word) => word.as_str(),
            Named::Newer(word) => word,
        }
    }
}

impl<T> From<T> for Named<T> {
    fn from(word: T) -> Named<T> {
        Named::Known(word)
    }
}

impl<T: PartialEq> PartialEq<T> for Named<T> {
    fn eq(&self, other: &T) -> bool {
        matches!(self, Named::Known(word) if word == other)
    }
}

impl<T: Word> fmt::Display for Named<T> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Milliseconds, as a float with microsecond precision.
pub fn millis(d: Duration) -> f64 {
    d.as_micros() as f64 / 1000.0
}

pub fn unix_ms(t: SystemTime) -> u64 {
    t.duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
}

/// RFC 3339 in UTC with milliseconds, e.g. `2026-11-22T04:30:00.123Z`.
pub fn rfc3339(t: SystemTime) -> String {
    let ms = unix_ms(t);
    let secs = ms / 1000;
    let days = i64::try_from(secs / 86_400).unwrap_or(0);
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60,
        ms % 1000
    )
}

/// Days since 1970-01-01 to (year, month, day) in the proleptic Gregorian calendar
/// (the well-known era-based conversion).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// The sample status of `tests/fixtures/status.json`, which the tests of its views and
/// of the client read (and modify copies of); `examples/render_status.rs` renders it
/// for `scripts/check-status-page.sh`.
#[cfg(test)]
pub(crate) mod fixture {
    use std::time::{Duration, SystemTime, UNIX_EPOCH};

    use super::Status;

    /// 2026-11-22T04:30:00Z: about three hours after the fixture's takeover, 28 s
    /// after its last event.
    pub const NOW_MS: u64 = 1_795_321_800_000;

    pub fn status() -> Status {
        serde_json::from_str(include_str!("../tests/fixtures/status.json"))
            .expect("the fixture is a status document")
    }

    /// [`NOW_MS`] as a time.
    pub fn now() -> SystemTime {
        UNIX_EPOCH + Duration::from_millis(NOW_MS)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every word serializes as `as_str` spells it, and reads back as itself.
    fn words_round_trip<T>(words: &[T])
    where
        T: Word + fmt::Debug + PartialEq + Serialize + for<'de> Deserialize<'de>,
    {
        for &word in words {
            let json = serde_json::to_value(Named::Known(word)).unwrap();
            assert_eq!(json, serde_json::Value::from(word.as_str()), "{word:?}");
            let back: Named<T> = serde_json::from_value(json).unwrap();
            assert_eq!(back, word);
        }
    }

    #[test]
    fn words_are_the_documented_strings() {
        words_round_trip(&[
            Role::Starting,
            Role::Standby,
            Role::Active,
            Role::Fault,
            Role::Witness,
        ]);
        words_round_trip(&[
            PeerState::Starting,
            PeerState::Standby,
            PeerState::Active,
            PeerState::Fault,
            PeerState::Dead,
            PeerState::Unknown,
            PeerState::Stopped,
        ]);
        words_round_trip(&[
            LinkState::Unknown,
            LinkState::Up,
            LinkState::Late,
            LinkState::Down,
        ]);
        words_round_trip(&[Failback::Auto, Failback::Manual]);
        words_round_trip(&[Severity::Info, Severity::Warn, Severity::Error]);
        words_round_trip(&[
            EventKind::Transition,
            EventKind::Peer,
            EventKind::Link,
            EventKind::Health,
            EventKind::Hook,
            EventKind::Vip,
            EventKind::Config,
            EventKind::Rejected,
            EventKind::Stall,
        ]);
        assert_eq!(LinkState::Up.as_str(), "ok");
        assert_eq!(LinkState::Down.as_str(), "dead");
    }

    #[test]
    fn words_from_a_newer_daemon_are_kept_as_sent() {
        let state: Named<Role> = serde_json::from_str("\"draining\"").unwrap();
        assert_eq!(state, Named::Newer("draining".to_string()));
        assert_eq!(state.known(), None);
        assert_eq!(state.as_str(), "draining");
        assert_ne!(state, Role::Fault);
        assert_eq!(serde_json::to_string(&state).unwrap(), "\"draining\"");
        // Words are case-sensitive, as the daemon writes them.
        let state: Named<Role> = serde_json::from_str("\"ACTIVE\"").unwrap();
        assert_eq!(state.known(), None);
        assert!(serde_json::from_str::<Named<Role>>("1").is_err());
    }

    #[test]
    fn rfc3339_formats_known_instants() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let t = UNIX_EPOCH + Duration::from_millis(1_795_321_800_123);
        assert_eq!(rfc3339(t), "2026-11-22T04:30:00.123Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(rfc3339(leap), "2000-02-29T00:00:00.000Z");
    }
}
