//! The status report: what `failoverd status --json`, the control socket's `status`
//! reply and the HTTP `/status` page all return. Field names are stable (documented in
//! the README); new fields may be added, none renamed or removed within version 1.

use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};

/// Version of the status document and of the control protocol.
pub const VERSION: u32 = 1;

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Status {
    pub version: u32,
    pub cluster: String,
    pub node: String,
    /// This node's configured priority (peers carry theirs in `peers`); with it a
    /// client can tell which live node is preferred. Absent from older documents.
    #[serde(default)]
    pub priority: u16,
    pub pid: u32,
    pub daemon_version: String,
    pub config: String,
    /// Fingerprint of the shared configuration, hex.
    pub fingerprint: String,
    /// starting, standby, active or fault.
    pub state: String,
    /// When the state was entered (RFC 3339, UTC).
    pub since: String,
    pub since_unix_ms: u64,
    pub reason: String,
    /// A release (stop hook, then VIP removal) is under way.
    pub releasing: bool,
    pub maintenance: Maintenance,
    /// Set by `failoverd standby`: this node keeps out of the way while a peer can
    /// hold the VIPs.
    pub standby_requested: bool,
    pub failback: String,
    pub failback_delay_ms: u64,
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
    /// Number of failing checks (0 is healthy); sent to peers, lower ranks higher.
    pub failing: u8,
    pub gateways: Vec<GatewayStatus>,
    /// Link state of the interfaces that carry VIPs (`[health] link_state`).
    #[serde(default)]
    pub interfaces: Vec<InterfaceStatus>,
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
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct PeerStatus {
    pub name: String,
    /// As the peer last reported it; "dead" when silent on every link, "unknown"
    /// when never heard, "stopped" after it announced its shutdown.
    pub state: String,
    pub alive: bool,
    pub priority: u16,
    pub health_failing: u8,
    pub maintenance: bool,
    pub standby_requested: bool,
    /// None until the first heartbeat.
    pub fingerprint_match: Option<bool>,
    pub links: Vec<LinkStatus>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct LinkStatus {
    pub name: String,
    pub address: String,
    /// ok, late, dead or unknown.
    pub state: String,
    /// Age of the last valid heartbeat on this link.
    pub last_heartbeat_ms: Option<f64>,
    pub received: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Counters {
    pub heartbeats_sent: u64,
    /// Valid heartbeats received, per link name.
    pub heartbeats_received: Vec<(String, u64)>,
    /// Dropped datagrams per reason.
    pub rejected: Vec<(String, u64)>,
    /// Transitions per target state and reason kind.
    pub transitions: Vec<TransitionCount>,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TransitionCount {
    pub to: String,
    pub reason: String,
    pub count: u64,
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct HookRun {
    pub hook: String,
    pub started: String,
    pub duration_ms: f64,
    /// "exited 0 after 12ms", "timed out after 30s and was killed", ...
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
    pub severity: String,
    /// transition, peer, link, health, hook, vip, config, rejected or stall.
    pub kind: String,
    pub message: String,
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rfc3339_formats_known_instants() {
        assert_eq!(rfc3339(UNIX_EPOCH), "1970-01-01T00:00:00.000Z");
        let t = UNIX_EPOCH + Duration::from_millis(1_795_321_800_123);
        assert_eq!(rfc3339(t), "2026-11-22T04:30:00.123Z");
        let leap = UNIX_EPOCH + Duration::from_secs(951_782_400);
        assert_eq!(rfc3339(leap), "2000-02-29T00:00:00.000Z");
    }
}
