//! `failoverd status` and `failoverd events` for people at a terminal: a [`Status`]
//! as lines of text that fit in [`WIDTH`] columns, with ANSI colour when asked for.
//!
//! Pure: the time is a parameter and colour is a flag, so tests pin the output.

use std::fmt::Write as _;
use std::time::{Duration, SystemTime};

use crate::duration::format_duration;
use crate::machine::event::{Role, Severity};
use crate::machine::health::UNFIT;
use crate::machine::peer::LinkState;
use crate::status::{
    CheckState, CheckStatus, Counters, EventRecord, Failback, Named, PeerState, PeerStatus,
    SchedulingStatus, Scope, Status, rfc3339, unix_ms,
};

/// No rendered line is wider than this many columns.
pub const WIDTH: usize = 100;
/// How many of the most recent events and hook runs `render_status` shows.
const SHOWN_EVENTS: usize = 10;
const SHOWN_HOOKS: usize = 5;

/// The status as people read it: a headline with this node's state, then VIPs, peers
/// and their links, health, failback, and the latest hook runs and events. ANSI colour
/// only when `colour` is set. Every line fits in [`WIDTH`] columns; longer ones wrap
/// with a deeper indent. Ends with a newline.
pub fn render_status(status: &Status, colour: bool, now: SystemTime) -> String {
    let paint = Painter { colour };
    let now_ms = unix_ms(now);
    let mut out = Lines::default();

    let state = paint.maybe(
        status.state.known().and_then(role_paint),
        &status.state.as_str().to_uppercase(),
    );
    out.push(format!(
        "cluster {}: node {} is {state} since {} ({} ago) — {}{}",
        status.cluster,
        status.node,
        moment(&status.since, status.since_unix_ms, now_ms),
        ago(now_ms.saturating_sub(status.since_unix_ms)),
        status.reason,
        standing_now(status)
    ));
    if let Some(held) = &status.takeover_held {
        out.push(paint.paint(Paint::Alert, &format!("TAKEOVER HELD: {held}")));
    }
    let d = &status.damping;
    if d.flapping {
        let until = d
            .until
            .as_ref()
            .map(|t| format!(" until {} UTC unless the holder changes again", clock(t)))
            .unwrap_or_default();
        out.push(paint.paint(
            Paint::Yellow,
            &format!(
                "FLAPPING: {} unplanned changes of holder lately; an unplanned takeover waits \
                 for {} of silence{until}",
                d.changes,
                millis(d.takeover_silence_ms)
            ),
        ));
    }
    if status.quiet {
        out.push(format!(
            "quiet standby: heartbeats every {} while the active node is heard",
            crate::duration::format_duration(std::time::Duration::from_secs_f64(
                status.heartbeat_every_ms.max(0.0) / 1000.0
            ))
        ));
    }
    if !status.reading_late.is_empty() {
        out.push(format!(
            "  reads the active node's routine heartbeats as it wakes, by their arrival, on {}",
            status.reading_late.join(", ")
        ));
    }
    for (link, address) in &status.addresses_missing {
        out.push(paint.paint(
            Paint::Yellow,
            &format!(
                "ADDRESS MISSING: heartbeat address {address} (link {link}) is not on this \
                 host yet: nothing goes out or comes in on that link until it is"
            ),
        ));
    }
    if status.releasing {
        out.push(paint.paint(
            Paint::Yellow,
            "RELEASING: running the stop hook, then removing the VIPs",
        ));
    }
    if status.handing_over {
        let to = status
            .handing_over_to
            .as_ref()
            .map_or(String::new(), |node| format!(" to {node}"));
        let waited = status.handing_over_ms.map_or(String::new(), |ms| {
            format!(" ({} so far)", millis(ms as f64))
        });
        out.push(paint.paint(
            Paint::Yellow,
            &format!(
                "HANDING OVER{to}: waiting for the quiet standby to answer before \
                 releasing{waited}"
            ),
        ));
    }
    let m = &status.maintenance;
    if m.on {
        let by = if m.set_by.is_empty() {
            String::new()
        } else {
            format!(" (set by {})", m.set_by.join(", "))
        };
        out.push(paint.paint(
            Paint::Alert,
            &format!("MAINTENANCE: automatic transitions are frozen{by}"),
        ));
    }
    if status.standby_requested {
        out.push(paint.paint(
            Paint::Yellow,
            "standby requested: this node stays standby while a peer can hold the VIPs \
             (until it becomes active, `failoverd takeover` here, or a restart)",
        ));
    }
    if status.takeover_requested {
        out.push(paint.paint(
            Paint::Yellow,
            "takeover requested: this node takes the VIPs as soon as it may",
        ));
    }

    let vips: Vec<(String, String)> = status
        .vips
        .iter()
        .map(|vip| {
            let label = vip
                .label
                .as_ref()
                .map(|l| format!(" ({l})"))
                .unwrap_or_default();
            let place = match (&vip.holder, vip.held_here) {
                _ if vip.removal_failures > 0 => paint.paint(
                    Paint::Red,
                    &format!(
                        "removal failing ({} in a row), may still be here; trying again",
                        vip.removal_failures
                    ),
                ),
                (_, true) => paint.paint(Paint::Green, "here"),
                (Some(holder), false) if *holder != status.node => format!("on {holder}"),
                // A held takeover may be held because another host still answers
                // for the VIP (a peer's kernel whose daemon died): no live node
                // holds it, which is not to say nobody answers for it.
                _ if status.takeover_held.is_some() => {
                    paint.paint(Paint::Yellow, "on no live node (see TAKEOVER HELD)")
                }
                _ => paint.paint(Paint::Red, "nowhere"),
            };
            (
                format!("{} on {}{label}", vip.address, vip.interface),
                place,
            )
        })
        .collect();
    let vip_width = vips.iter().map(|(v, _)| v.chars().count()).max();
    for (vip, place) in &vips {
        let pad = vip_width.unwrap_or(0);
        out.push(format!("vip {vip:<pad$}  {place}"));
    }
    if vips.is_empty() {
        out.push("vip: none configured".to_string());
    }

    for peer in &status.peers {
        render_peer(&mut out, &paint, peer);
    }

    let health = &status.health;
    let configured = health.checks.iter().any(|c| !is_builtin(c));
    let sticking: Vec<&str> = (health.checks.iter())
        .filter(|c| c.failed)
        .map(|c| c.name.as_str())
        .collect();
    let checks = match health.failing {
        // Nothing fails now, but a check that runs only on the active node failed
        // there and keeps this node from the VIPs: not "healthy".
        0 if !sticking.is_empty() => paint.paint(
            Paint::Red,
            &format!(
                "checks pass, but {} FAILED while active",
                sticking.join(", ")
            ),
        ),
        0 if health.gateways.is_empty() && health.interfaces.is_empty() && !configured => {
            "healthy (no health checks)".to_string()
        }
        0 => paint.paint(Paint::Green, "healthy"),
        n => paint.paint(Paint::Red, &checks_failing(n)),
    };
    let witness = status.state.known() == Some(Role::Witness);
    if witness {
        out.push("this node: a witness: it votes and holds nothing".to_string());
    } else {
        out.push(format!("this node: priority {}, {checks}", status.priority));
    }
    let gw_width = health
        .gateways
        .iter()
        .map(|g| g.address.chars().count())
        .max()
        .unwrap_or(0);
    for gateway in &health.gateways {
        let reach = if gateway.reachable {
            let rtt = gateway
                .rtt_ms
                .map(|rtt| format!(", rtt {}", millis(rtt)))
                .unwrap_or_default();
            format!("{}{rtt}", paint.paint(Paint::Green, "reachable"))
        } else {
            format!(
                "{} ({} failed probes in a row)",
                paint.paint(Paint::Red, "unreachable"),
                gateway.consecutive_failures
            )
        };
        out.push(format!("  gateway {:<gw_width$}  {reach}", gateway.address));
    }
    for iface in &health.interfaces {
        let state = if iface.up {
            paint.paint(Paint::Green, "up")
        } else {
            paint.paint(Paint::Red, "down")
        };
        out.push(format!("  interface {}  {state}", iface.name));
    }
    render_checks(&mut out, &paint, &health.checks, now);

    if !witness {
        out.push(match status.failback.known() {
            Some(Failback::Auto) => format!(
                "failback: auto, after {} of health",
                format_duration(Duration::from_millis(status.failback_delay_ms))
            ),
            Some(Failback::Manual) | None => format!("failback: {}", status.failback),
        });
        if let Some(due) = &status.failback_due {
            out.push(format!(
                "  the VIPs go back to {} at {} (in {}) if it stays healthy",
                due.to,
                moment(&due.at, due.at_unix_ms, now_ms),
                ago(due.at_unix_ms.saturating_sub(now_ms))
            ));
        } else if status.failback_held {
            out.push("  held off since `failoverd takeover` made this node active".to_string());
        }
    }
    if let Some(ms) = status.last_takeover_ms {
        out.push(format!(
            "last takeover: {} from the decision to every VIP in place",
            millis(ms)
        ));
    }
    let starved = &status.starved;
    if starved.count > 0 {
        let longest = starved
            .longest_ms
            .map(|ms| format!(", the longest {} late", millis(ms)))
            .unwrap_or_default();
        let last = starved
            .last
            .as_ref()
            .map(|t| format!(", the last at {} UTC", clock(t)))
            .unwrap_or_default();
        out.push(format!(
            "starved: woken an interval or more late {} times{longest}{last}",
            starved.count
        ));
    }

    if !status.hooks.is_empty() {
        out.push("hooks, most recent first:".to_string());
        let name_width = status
            .hooks
            .iter()
            .take(SHOWN_HOOKS)
            .map(|h| h.hook.chars().count())
            .max()
            .unwrap_or(0);
        for run in status.hooks.iter().take(SHOWN_HOOKS) {
            let outcome = if run.success {
                run.outcome.clone()
            } else {
                paint.paint(Paint::Red, &run.outcome)
            };
            out.push(format!(
                "  {}  {:<name_width$}  {:>7}  {outcome}",
                clock(&run.started),
                run.hook,
                millis(run.duration_ms)
            ));
        }
    }

    if !status.events.is_empty() {
        out.push("events:".to_string());
        let skip = status.events.len().saturating_sub(SHOWN_EVENTS);
        for event in &status.events[skip..] {
            out.push(format!(
                "  {}  {}  {}",
                clock(&event.time),
                severity(&paint, &event.severity),
                event.message
            ));
        }
    }

    render_scheduling(&mut out, &paint, &status.scheduling);
    render_raw_sends(&mut out, &paint, &status.counters);
    out.push(format!(
        "failoverd {}, pid {}, {} (fingerprint {})",
        status.daemon_version, status.pid, status.config, status.fingerprint
    ));
    out.text
}

/// Whether the heartbeat thread is favoured by the scheduler and its memory locked,
/// and why not when not: yellow, since the node works without them but holds less
/// steadily on a starved host.
fn render_scheduling(out: &mut Lines, paint: &Painter, scheduling: &SchedulingStatus) {
    match &scheduling.realtime_off {
        // Neither: a daemon that does not report it.
        None if scheduling.realtime_priority == 0 => {}
        None => out.push(format!(
            "heartbeat thread: realtime priority (SCHED_RR {})",
            scheduling.realtime_priority
        )),
        Some(why) => out.push(paint.paint(
            Paint::Yellow,
            &format!("heartbeat thread: normal priority: {why}"),
        )),
    }
    match &scheduling.memory_off {
        None if scheduling.memory_locked => out.push("memory: locked".to_string()),
        None => {}
        Some(why) => out.push(paint.paint(Paint::Yellow, &format!("memory: not locked: {why}"))),
    }
}

/// Where heartbeats went through a raw socket, and where raw sends failed: yellow,
/// since the kernel refused those by their addresses alone (where routing rules or
/// IPsec policies select heartbeats by protocol or port, typically), and each went
/// again through the UDP socket.
fn render_raw_sends(out: &mut Lines, paint: &Painter, counters: &Counters) {
    let on_links = |counts: &[(String, u64)]| -> Option<String> {
        let links: Vec<String> = Counters::counted(counts)
            .map(|(link, n)| format!("{link} {n}"))
            .collect();
        (!links.is_empty()).then(|| links.join(", "))
    };
    if let Some(sent) = on_links(&counters.sent_raw) {
        out.push(format!("heartbeats sent through a raw socket: {sent}"));
    }
    if let Some(failed) = on_links(&counters.raw_failed) {
        out.push(paint.paint(
            Paint::Yellow,
            &format!(
                "raw sends failed: {failed}; each went again over UDP \
                 (see [scheduling] raw_send)"
            ),
        ));
    }
}

/// What a standby's headline adds to the reason it became standby, which its
/// situation outlives (a hold that ended, an order given before the peer died):
/// the peer that holds the VIPs now, when the reason does not already say so.
fn standing_now(status: &Status) -> String {
    if status.state.known() != Some(Role::Standby) {
        return String::new();
    }
    let mut now = String::new();
    // A reason that says to clear a failure that has been cleared since.
    if status.reason_kind == "failed_while_active" && !status.health.checks.iter().any(|c| c.failed)
    {
        now.push_str("; cleared since");
    }
    if status.takeover_held.is_some() {
        return now;
    }
    let holder =
        (status.peers.iter()).find(|p| p.alive && p.state.known() == Some(PeerState::Active));
    if let Some(peer) = holder
        && status.reason != format!("peer {} is active", peer.name)
    {
        now.push_str(&format!("; peer {} is active now", peer.name));
    }
    now
}

/// How long after the last datagram from a peer's address that failed
/// authentication the peer's line still says so.
const UNAUTHENTIC_SHOWN_MS: f64 = 60_000.0;

/// One event as `failoverd events` prints it: `time severity message`.
pub fn render_event(event: &EventRecord, colour: bool) -> String {
    let paint = Painter { colour };
    format!(
        "{}  {}  {}",
        event.time,
        severity(&paint, &event.severity),
        event.message
    )
}

fn render_peer(out: &mut Lines, paint: &Painter, peer: &PeerStatus) {
    let mut facts = vec![
        paint.maybe(
            peer.state.known().and_then(peer_paint),
            &peer.state.as_str().to_uppercase(),
        ),
        format!("priority {}", peer.priority),
        match peer.health_failing {
            0 => "healthy".to_string(),
            n => paint.paint(Paint::Red, &checks_failing(n)),
        },
        match peer.fingerprint_match {
            Some(true) => "config matches".to_string(),
            Some(false) => paint.paint(Paint::Red, "config MISMATCH"),
            None => "config not yet compared".to_string(),
        },
    ];
    if peer.maintenance {
        facts.push(paint.paint(Paint::Alert, "MAINTENANCE"));
    }
    if peer.standby_requested {
        facts.push(paint.paint(Paint::Yellow, "standby requested"));
    }
    if peer.failed {
        facts.push(paint.paint(Paint::Red, "a check FAILED while active"));
    }
    if peer.quiet {
        facts.push("quiet standby".to_string());
    }
    // Refused lately from the peer's own address for a wrong tag: what a peer
    // with another key looks like from here, silent as far as the election knows.
    let unauthentic = (peer.links.iter()).any(|l| {
        l.last_unauthentic_ms
            .is_some_and(|ms| ms < UNAUTHENTIC_SHOWN_MS)
    });
    if unauthentic {
        facts.push(paint.paint(
            Paint::Red,
            "its heartbeats FAIL AUTHENTICATION (key files differ?)",
        ));
    }
    out.push(format!("peer {}: {}", peer.name, facts.join(", ")));
    let name_width = peer.links.iter().map(|l| l.name.chars().count()).max();
    let addr_width = peer.links.iter().map(|l| l.address.chars().count()).max();
    for link in &peer.links {
        let age = match link.last_heartbeat_ms {
            Some(ms) => format!("{} ago", millis(ms)),
            None => "never".to_string(),
        };
        let colour = match link.state.known() {
            Some(LinkState::Up) => Some(Paint::Green),
            Some(LinkState::Late) => Some(Paint::Yellow),
            Some(LinkState::Down) => Some(Paint::Red),
            Some(LinkState::Unknown) | None => None,
        };
        let state = paint.maybe(colour, link.state.as_str());
        let refused = match link.last_unauthentic_ms {
            Some(ms) if ms < UNAUTHENTIC_SHOWN_MS => paint.paint(
                Paint::Red,
                &format!(
                    ", {} refused for authentication, the last {} ago",
                    link.unauthentic,
                    millis(ms)
                ),
            ),
            _ => String::new(),
        };
        out.push(format!(
            "  link {:<nw$}  {:<aw$}  last heartbeat {age:>9}  {state}{refused}",
            link.name,
            link.address,
            nw = name_width.unwrap_or(0),
            aw = addr_width.unwrap_or(0),
        ));
    }
}

/// The checks besides the gateways and interfaces shown before them, a line each:
/// name, state, what it looks at, how much it weighs, where it runs, and what its
/// last run said; a sticky failure gets a line of its own, with how to clear it.
/// The built-in checks show only when they fail or stick.
fn render_checks(out: &mut Lines, paint: &Painter, checks: &[CheckStatus], now: SystemTime) {
    let listed: Vec<&CheckStatus> = checks
        .iter()
        .filter(|c| !is_shorthand(c))
        .filter(|c| !is_builtin(c) || c.state == CheckState::Failing || c.failed)
        .collect();
    let name_width = listed.iter().map(|c| c.name.chars().count()).max();
    let name_width = name_width.unwrap_or(0);
    let today = rfc3339(now);
    for check in listed {
        let state = format!("{:<7}", check.state.as_str());
        let state = match check.state.known() {
            Some(CheckState::Passing) => paint.paint(Paint::Green, &state),
            Some(CheckState::Failing) => paint.paint(Paint::Red, &state),
            Some(CheckState::Idle) | None => state,
        };
        let mut line = format!(
            "  check {:<name_width$}  {state}  {} {}, ",
            check.name, check.kind, check.target
        );
        if check.fatal {
            line.push_str("fatal");
        } else {
            let _ = write!(line, "weight {}", check.weight);
        }
        if check.on == Scope::Active {
            line.push_str(", on active");
        }
        if let Some(detail) = &check.last_detail {
            let _ = write!(line, ": {detail}");
        }
        out.push(line);
        if check.failed {
            let until = check.failed_until.as_deref().map(|until| {
                let date = until.get(..10).filter(|d| today.get(..10) != Some(*d));
                let day = date.map(|d| format!("{d} ")).unwrap_or_default();
                format!(" until {day}{} UTC", clock(until))
            });
            let sticky = format!(
                "FAILED while active{}; clear with `failoverd clear {}`",
                until.unwrap_or_default(),
                check.name
            );
            out.push(format!(
                "        {:name_width$}  {}",
                "",
                paint.paint(Paint::Red, &sticky)
            ));
        }
    }
}

/// A check the core runs by itself (`vip`, `start-hook`).
fn is_builtin(check: &CheckStatus) -> bool {
    matches!(check.kind.as_str(), "vip" | "start-hook")
}

/// A check of the `[health]` shorthand, shown as a gateway or an interface line.
fn is_shorthand(check: &CheckStatus) -> bool {
    match check.kind.as_str() {
        "ping" => check.name == format!("gateway-{}", check.target),
        "link" => check.name == format!("link-{}", check.target),
        _ => false,
    }
}

fn checks_failing(n: u8) -> String {
    match n {
        1 => "1 check failing".to_string(),
        UNFIT => "a fatal check failing".to_string(),
        n => format!("{n} checks failing"),
    }
}

fn severity(paint: &Painter, severity: &Named<Severity>) -> String {
    let colour = match severity.known() {
        Some(Severity::Warn) => Some(Paint::Yellow),
        Some(Severity::Error) => Some(Paint::Red),
        Some(Severity::Info) | None => None,
    };
    paint.maybe(colour, &format!("{:<5}", severity.as_str()))
}

/// The colour of this node's role.
fn role_paint(role: Role) -> Option<Paint> {
    peer_paint(role.into())
}

/// The colour of a peer's state.
fn peer_paint(state: PeerState) -> Option<Paint> {
    match state {
        PeerState::Active => Some(Paint::Green),
        PeerState::Standby => Some(Paint::Yellow),
        PeerState::Fault | PeerState::Dead => Some(Paint::Red),
        PeerState::Starting | PeerState::Unknown | PeerState::Stopped | PeerState::Witness => None,
    }
}

/// `HH:MM:SS` out of an RFC 3339 time; the whole text if it is not one.
fn clock(rfc3339: &str) -> &str {
    match rfc3339.as_bytes().get(10) {
        Some(b'T') => rfc3339.get(11..19).unwrap_or(rfc3339),
        _ => rfc3339,
    }
}

/// A moment as `HH:MM:SS UTC`, with the date in front when it is a day old or more.
fn moment(rfc3339: &str, at_ms: u64, now_ms: u64) -> String {
    const DAY_MS: u64 = 86_400_000;
    match rfc3339.get(..10) {
        Some(date) if now_ms.saturating_sub(at_ms) >= DAY_MS => {
            format!("{date} {} UTC", clock(rfc3339))
        }
        _ => format!("{} UTC", clock(rfc3339)),
    }
}

/// An age in two units at most: `850ms`, `42s`, `3m 12s`, `2h 5m`, `3d 4h`.
fn ago(ms: u64) -> String {
    let s = ms / 1000;
    match s {
        0 => format!("{ms}ms"),
        1..60 => format!("{s}s"),
        60..3600 => format!("{}m {}s", s / 60, s % 60),
        3600..86_400 => format!("{}h {}m", s / 3600, s % 3600 / 60),
        _ => format!("{}d {}h", s / 86_400, s % 86_400 / 3600),
    }
}

/// A short duration given in milliseconds: `0.4ms`, `38ms`, `1.2s`, then as [`ago`].
fn millis(ms: f64) -> String {
    if !ms.is_finite() || ms < 0.0 {
        return "?".to_string();
    }
    if ms < 10.0 {
        format!("{ms:.1}ms")
    } else if ms < 1000.0 {
        format!("{ms:.0}ms")
    } else if ms < 60_000.0 {
        format!("{:.1}s", ms / 1000.0)
    } else {
        ago(ms as u64)
    }
}

#[derive(Clone, Copy)]
enum Paint {
    Green,
    Yellow,
    Red,
    /// Bold magenta: maintenance, which changes what every other line means.
    Alert,
}

struct Painter {
    colour: bool,
}

impl Painter {
    fn paint(&self, paint: Paint, text: &str) -> String {
        if !self.colour {
            return text.to_string();
        }
        let code = match paint {
            Paint::Green => "32",
            Paint::Yellow => "33",
            Paint::Red => "31",
            Paint::Alert => "1;35",
        };
        format!("\x1b[{code}m{text}\x1b[0m")
    }

    /// `text` in `paint` if any, else as it is.
    fn maybe(&self, paint: Option<Paint>, text: &str) -> String {
        match paint {
            Some(paint) => self.paint(paint, text),
            None => text.to_string(),
        }
    }
}

/// Output lines, each wrapped to [`WIDTH`] visible columns.
#[derive(Default)]
struct Lines {
    text: String,
}

impl Lines {
    fn push(&mut self, line: String) {
        for part in wrap(&line, WIDTH) {
            let _ = writeln!(self.text, "{part}");
        }
    }
}

/// Splits `line` into pieces of at most `width` visible columns (ANSI colour codes
/// take none), at spaces where possible. Continuations are indented four columns
/// deeper than the line.
fn wrap(line: &str, width: usize) -> Vec<String> {
    let indent = line.len() - line.trim_start_matches(' ').len();
    let cont = " ".repeat((indent + 4).min(width / 2));
    let mut pieces = Vec::new();
    let mut rest = line.to_string();
    loop {
        let Some(cut) = overflow(&rest, width) else {
            pieces.push(rest);
            return pieces;
        };
        // Break at the last space that fits, past the indentation; else mid-word.
        let floor = if pieces.is_empty() {
            indent
        } else {
            cont.len()
        };
        let (head, tail) = match rest[..cut].rfind(' ').filter(|&i| i > floor) {
            Some(space) => (&rest[..space], &rest[space + 1..]),
            None => (&rest[..cut], &rest[cut..]),
        };
        let next = format!("{cont}{}", tail.trim_start_matches(' '));
        pieces.push(head.trim_end_matches(' ').to_string());
        rest = next;
    }
}

/// The byte index of the first character past `width` visible columns, if any.
fn overflow(line: &str, width: usize) -> Option<usize> {
    let mut columns = 0;
    let mut in_escape = false;
    for (i, c) in line.char_indices() {
        if in_escape {
            in_escape = c != 'm';
            continue;
        }
        if c == '\x1b' {
            in_escape = true;
            continue;
        }
        if columns == width {
            return Some(i);
        }
        columns += 1;
    }
    None
}

#[cfg(test)]
mod tests {
    use std::time::UNIX_EPOCH;

    use super::*;
    use crate::status::fixture::{self, now};
    use crate::status::{GatewayStatus, HookRun};

    fn visible_width(line: &str) -> usize {
        let mut plain = String::new();
        let mut in_escape = false;
        for c in line.chars() {
            match (in_escape, c) {
                (false, '\x1b') => in_escape = true,
                (true, 'm') => in_escape = false,
                (true, _) => {}
                (false, c) => plain.push(c),
            }
        }
        plain.chars().count()
    }

    #[test]
    fn the_view_holds_every_piece() {
        let view = render_status(&fixture::status(), false, now());
        let first = view.lines().next().unwrap();
        assert_eq!(
            first,
            "cluster web: node alpha is ACTIVE since 01:17:39 UTC (3h 12m ago) \
             — peer beta dead on all links"
        );
        for piece in [
            "vip 198.18.0.10/24 on eth0 (eth0:vip)  here",
            "vip 2001:db8::10/64 on eth0            here",
            "peer beta: STANDBY, priority 100, healthy, config matches",
            "  link crossover  198.19.0.2   last heartbeat  38ms ago  ok",
            "  link lan        198.18.0.12  last heartbeat  42ms ago  ok",
            "this node: priority 200, checks pass, but db FAILED while active",
            "  gateway 198.18.0.1  reachable, rtt 0.4ms",
            "  check web  failing  http http://127.0.0.1:8080/health, weight 0: status 503",
            "  check app  idle     exec /etc/failoverd/checks/app-ready --quiet, weight 1, on active",
            "  check db   passing  tcp 127.0.0.1:5432, fatal, on active",
            "             FAILED while active until 05:17:39 UTC; clear with `failoverd clear db`",
            "failback: manual",
            "last takeover: 3.4ms",
            "  01:17:39  start    151ms  exited 0",
            "  04:29:31  warn   heartbeats from beta on lan are late: none for 412ms",
            "fingerprint 3f9c2a71d04b8e65",
        ] {
            assert!(view.contains(piece), "{piece:?} missing in\n{view}");
        }
        // The gateway's check is its line; the built-in checks pass, so they are left
        // out.
        assert!(!view.contains("check gateway-"), "{view}");
        assert!(!view.contains("check vip"), "{view}");
        assert!(!view.contains("start-hook"), "{view}");
        // The ten most recent events, not the two before them.
        assert!(!view.contains("failoverd started"), "{view}");
        assert!(view.contains("starting -> standby: peer beta is active"));
        assert!(!view.contains("MAINTENANCE"));
        assert!(!view.contains('\x1b'), "no colour asked for:\n{view}");
    }

    /// A quiet standby says so, and so does the active node of its peer.
    #[test]
    fn a_quiet_standby_is_named_on_both_sides() {
        let mut status = fixture::status();
        status.state = Role::Standby.into();
        status.quiet = true;
        status.heartbeat_every_ms = 1000.0;
        let view = render_status(&status, false, SystemTime::now());
        assert!(
            view.contains("quiet standby: heartbeats every 1s while the active node is heard"),
            "{view}"
        );
        assert!(!view.contains("routine heartbeats"), "{view}");
        status.reading_late = vec!["crossover".into(), "lan".into()];
        let view = render_status(&status, false, SystemTime::now());
        assert!(
            view.contains(
                "reads the active node's routine heartbeats as it wakes, by their arrival, \
                 on crossover, lan"
            ),
            "{view}"
        );
        let mut status = fixture::status();
        status.peers[0].quiet = true;
        let view = render_status(&status, false, SystemTime::now());
        assert!(view.contains("config matches, quiet standby"), "{view}");
        let view = render_status(&fixture::status(), false, SystemTime::now());
        assert!(!view.contains("quiet standby"), "{view}");
    }

    /// Raw sends show by link where there were any, and failed ones in yellow.
    #[test]
    fn raw_sends_show_where_there_were_any() {
        let mut status = fixture::status();
        let view = render_status(&status, false, SystemTime::now());
        assert!(!view.contains("raw"), "{view}");
        status.counters.sent_raw = vec![("crossover".into(), 5_120), ("lan".into(), 0)];
        status.counters.raw_failed = vec![("crossover".into(), 0), ("lan".into(), 0)];
        let view = render_status(&status, false, SystemTime::now());
        assert!(
            view.contains("heartbeats sent through a raw socket: crossover 5120\n"),
            "{view}"
        );
        assert!(!view.contains("raw sends failed"), "{view}");
        status.counters.raw_failed[1].1 = 3;
        let view = render_status(&status, true, SystemTime::now());
        assert!(
            view.contains(
                "\x1b[33mraw sends failed: lan 3; each went again over UDP \
                 (see [scheduling] raw_send)\x1b[0m"
            ),
            "{view}"
        );
    }

    #[test]
    fn trouble_shows() {
        let mut status = fixture::status();
        status.state = Role::Fault.into();
        status.reason = "health checks failing, peer beta is healthier".to_string();
        status.releasing = true;
        status.handing_over = true;
        status.handing_over_to = Some("beta".to_string());
        status.handing_over_ms = Some(800);
        status.maintenance.on = true;
        status.maintenance.set_by = vec!["beta".to_string()];
        status.standby_requested = true;
        status.takeover_requested = true;
        status.health.failing = 1;
        status.health.gateways.push(GatewayStatus {
            address: "198.18.0.2".to_string(),
            reachable: false,
            rtt_ms: None,
            consecutive_failures: 4,
            probes: 90,
        });
        status.vips[0].held_here = false;
        status.vips[0].holder = Some("beta".to_string());
        status.vips[1].held_here = false;
        status.vips[1].holder = None;
        status
            .addresses_missing
            .push(("crossover".to_string(), "198.19.0.1".to_string()));
        let peer = &mut status.peers[0];
        peer.fingerprint_match = Some(false);
        peer.health_failing = 2;
        peer.links[1].state = LinkState::Down.into();
        peer.links[1].last_heartbeat_ms = Some(2_140.0);
        peer.failed = true;
        status.failback = Failback::Auto.into();
        let vip = status.health.checks.iter_mut().find(|c| c.name == "vip");
        let vip = vip.unwrap();
        vip.state = CheckState::Failing.into();
        vip.last_detail = Some("no interface eth9".to_string());
        let db = status.health.checks.iter_mut().find(|c| c.name == "db");
        db.unwrap().failed_until = Some("2026-11-23T01:00:00.000Z".to_string());
        status.hooks.insert(
            0,
            HookRun {
                hook: "stop".to_string(),
                started: "2026-11-22T04:29:58.000Z".to_string(),
                duration_ms: 30_000.0,
                outcome: "timed out and was killed".to_string(),
                success: false,
            },
        );
        let view = render_status(&status, false, now());
        for piece in [
            "is FAULT since",
            "RELEASING",
            "HANDING OVER to beta: waiting for the quiet standby to answer before \
             releasing (800ms so far)",
            "ADDRESS MISSING: heartbeat address 198.19.0.1 (link crossover) is not on this host yet",
            "MAINTENANCE: automatic transitions are frozen (set by beta)",
            "standby requested",
            "takeover requested: this node takes the VIPs as soon as it may",
            "198.18.0.10/24 on eth0 (eth0:vip)  on beta",
            "nowhere",
            "2 checks failing, config MISMATCH",
            "last heartbeat  2.1s ago  dead",
            "this node: priority 200, 1 check failing",
            "  gateway 198.18.0.2  unreachable (4 failed probes in a row)",
            "a check FAILED while active",
            "  check vip  failing  vip the VIPs, fatal, on active: no interface eth9",
            "FAILED while active until 2026-11-23 01:00:00 UTC; clear with `failoverd clear db`",
            "failback: auto, after 5s of health",
            "  04:29:58  stop     30.0s  timed out and was killed",
        ] {
            assert!(view.contains(piece), "{piece:?} missing in\n{view}");
        }
    }

    /// An active node says when automatic failback gives the VIPs back, or that
    /// an operator's takeover holds it off.
    #[test]
    fn a_failback_due_or_held_shows() {
        let mut status = fixture::status();
        status.failback = Failback::Auto.into();
        status.failback_due = Some(crate::status::FailbackDue {
            to: "alpha".to_string(),
            at: "2026-11-22T04:30:42.000Z".to_string(),
            at_unix_ms: unix_ms(now()) + 42_000,
        });
        let view = render_status(&status, false, now());
        let piece = "  the VIPs go back to alpha at 04:30:42 UTC (in 42s) if it stays healthy";
        assert!(view.contains(piece), "{piece:?} missing in\n{view}");
        assert!(!view.contains("held off"), "{view}");

        status.failback_due = None;
        status.failback_held = true;
        let view = render_status(&status, false, now());
        let piece = "  held off since `failoverd takeover` made this node active";
        assert!(view.contains(piece), "{piece:?} missing in\n{view}");
    }

    #[test]
    fn flapping_and_starvation_show() {
        let mut status = fixture::status();
        let view = render_status(&status, false, now());
        assert!(!view.contains("FLAPPING"), "{view}");
        let piece = "starved: woken an interval or more late 2 times, the longest 312ms late, \
                     the last at 04:29:31 UTC";
        assert!(view.contains(piece), "{piece:?} missing in\n{view}");
        status.damping.flapping = true;
        status.damping.changes = 6;
        status.damping.takeover_silence_ms = 4000.0;
        status.damping.until = Some("2026-11-22T04:30:31.500Z".to_string());
        let view = render_status(&status, false, now());
        let piece = "FLAPPING: 6 unplanned changes of holder lately; an unplanned takeover \
                     waits for 4.0s of silence until 04:30:31 UTC unless the holder changes \
                     again";
        let joined = view.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(joined.contains(piece), "{piece:?} missing in\n{view}");
    }

    #[test]
    fn a_vip_whose_removal_fails_shows_as_maybe_still_here() {
        let mut status = fixture::status();
        status.releasing = true;
        status.vips[0].held_here = false;
        status.vips[0].removal_failures = 3;
        let view = render_status(&status, false, now());
        let piece = "removal failing (3 in a row), may still be here; trying again";
        assert!(view.contains(piece), "{piece:?} missing in\n{view}");
    }

    /// A standby's headline gives the reason it became standby and, when that
    /// does not say so, the peer that holds the VIPs now.
    #[test]
    fn a_standby_headline_says_who_is_active_now() {
        let mut status = fixture::status();
        status.state = Role::Standby.into();
        status.reason = "takeover held: VIP 198.18.0.10 still answered by another host".into();
        status.peers[0].state = PeerState::Active.into();
        status.peers[0].alive = true;
        let view = render_status(&status, false, now());
        let joined = view.split_whitespace().collect::<Vec<_>>().join(" ");
        assert!(
            joined.contains("still answered by another host; peer beta is active now"),
            "{view}"
        );
        status.reason = "peer beta is active".into();
        let view = render_status(&status, false, now());
        assert!(!view.contains("active now"), "{view}");
        status.peers[0].alive = false;
        status.reason = "operator asked this node to stand by".into();
        let view = render_status(&status, false, now());
        assert!(!view.contains("active now"), "{view}");
    }

    /// A standby that became so for a failure while active, cleared since, does
    /// not go on telling the operator to clear it.
    #[test]
    fn a_cleared_failure_is_not_asked_to_be_cleared_again() {
        let mut status = fixture::status();
        status.state = Role::Standby.into();
        status.reason = "check db failed while active: this node takes the VIPs back only \
                         if no other node can (failoverd clear db)"
            .into();
        status.reason_kind = "failed_while_active".into();
        let joined = |status: &Status| {
            let view = render_status(status, false, now());
            view.split_whitespace().collect::<Vec<_>>().join(" ")
        };
        assert!(!joined(&status).contains("cleared since"), "still failed");
        for check in &mut status.health.checks {
            check.failed = false;
        }
        assert!(
            joined(&status).contains("(failoverd clear db); cleared since"),
            "{}",
            joined(&status)
        );
    }

    /// While a takeover is held (perhaps because another host still answers for the
    /// VIP), a VIP no live node holds is not said to be nowhere.
    #[test]
    fn a_vip_behind_a_held_takeover_is_on_no_live_node() {
        let mut status = fixture::status();
        status.vips[0].held_here = false;
        status.vips[0].holder = None;
        status.takeover_held =
            Some("VIP 198.18.0.10 at 0a:15:f6:cd:1a:a2 still answered by another host".into());
        let view = render_status(&status, false, now());
        assert!(
            view.contains("198.18.0.10/24 on eth0 (eth0:vip)  on no live node (see TAKEOVER HELD)"),
            "{view}"
        );
        status.takeover_held = None;
        let view = render_status(&status, false, now());
        assert!(view.contains("(eth0:vip)  nowhere"), "{view}");
    }

    /// A peer whose heartbeats fail authentication looks silent to the election;
    /// its line says what the filter saw from its address.
    #[test]
    fn a_peer_whose_heartbeats_fail_authentication_says_so() {
        let mut status = fixture::status();
        let link = &mut status.peers[0].links[0];
        link.unauthentic = 217;
        link.last_unauthentic_ms = Some(850.0);
        let view = render_status(&status, false, now());
        // Long lines wrap: compared with the wrapping undone.
        let joined = view.split_whitespace().collect::<Vec<_>>().join(" ");
        for piece in [
            "its heartbeats FAIL AUTHENTICATION (key files differ?)",
            "ok, 217 refused for authentication, the last 850ms ago",
        ] {
            assert!(joined.contains(piece), "{piece:?} missing in\n{view}");
        }
        status.peers[0].links[0].last_unauthentic_ms = Some(UNAUTHENTIC_SHOWN_MS + 1.0);
        let view = render_status(&status, false, now());
        assert!(!view.contains("AUTHENTICATION"), "{view}");
    }

    /// A standby whose active-only check failed while it held the VIPs passes its
    /// checks as far as it runs them, and is still not "healthy".
    #[test]
    fn a_failure_while_active_is_not_healthy() {
        let mut status = fixture::status();
        status.health.failing = 0;
        for check in &mut status.health.checks {
            check.failed = check.name == "app";
        }
        assert!(status.health.checks.iter().any(|c| c.failed), "a check app");
        let view = render_status(&status, false, now());
        assert!(
            view.contains("this node: priority 200, checks pass, but app FAILED while active\n"),
            "{view}"
        );
    }

    #[test]
    fn a_node_without_checks_says_so() {
        let mut status = fixture::status();
        status.health.gateways.clear();
        status
            .health
            .checks
            .retain(|c| c.kind == "vip" || c.kind == "start-hook");
        status.health.failed = false;
        let view = render_status(&status, false, now());
        assert!(
            view.contains("this node: priority 200, healthy (no health checks)\n"),
            "{view}"
        );
        status.health.failing = UNFIT;
        let view = render_status(&status, false, now());
        assert!(
            view.contains("priority 200, a fatal check failing"),
            "{view}"
        );
    }

    #[test]
    fn colour_only_when_asked() {
        let mut status = fixture::status();
        status.maintenance.on = true;
        status.peers[0].fingerprint_match = Some(false);
        let plain = render_status(&status, false, now());
        let coloured = render_status(&status, true, now());
        assert!(!plain.contains('\x1b'));
        assert!(coloured.contains("\x1b[32mACTIVE\x1b[0m"), "{coloured}");
        assert!(coloured.contains("\x1b[33mSTANDBY\x1b[0m"));
        assert!(coloured.contains("\x1b[31mconfig MISMATCH\x1b[0m"));
        assert!(coloured.contains("\x1b[1;35mMAINTENANCE"));
        assert!(coloured.contains("\x1b[33mwarn \x1b[0m"));
        assert!(
            coloured.contains("\x1b[31mfailing\x1b[0m  http"),
            "{coloured}"
        );
        assert!(coloured.contains("\x1b[32mpassing\x1b[0m  tcp"));
        // Colour changes nothing else.
        let stripped: Vec<usize> = coloured.lines().map(visible_width).collect();
        let widths: Vec<usize> = plain.lines().map(|l| l.chars().count()).collect();
        assert_eq!(stripped, widths);
    }

    #[test]
    fn long_lines_wrap_within_the_width() {
        let mut status = fixture::status();
        status.reason = "word ".repeat(40);
        status.events.last_mut().unwrap().message = format!("path /{}", "x".repeat(250));
        for colour in [false, true] {
            let view = render_status(&status, colour, now());
            for line in view.lines() {
                assert!(visible_width(line) <= WIDTH, "{line:?}");
            }
            assert!(view.contains("\n    word word"), "{view}");
        }
        assert_eq!(wrap("short", 10), ["short"]);
        assert_eq!(wrap("  aaaa bbbb cccc", 12), ["  aaaa bbbb", "      cccc"]);
        assert_eq!(wrap("abcdefghijkl", 5), ["abcde", "  fgh", "  ijk", "  l"]);
    }

    #[test]
    fn times_and_ages() {
        let status = fixture::status();
        let days_later = now() + Duration::from_secs(3 * 86_400);
        let view = render_status(&status, false, days_later);
        assert!(
            view.starts_with(
                "cluster web: node alpha is ACTIVE since 2026-11-22 01:17:39 UTC (3d 3h ago)"
            ),
            "{view}"
        );
        assert_eq!(ago(850), "850ms");
        assert_eq!(ago(42_000), "42s");
        assert_eq!(ago(192_000), "3m 12s");
        assert_eq!(millis(0.412), "0.4ms");
        assert_eq!(millis(1_234.0), "1.2s");
        assert_eq!(clock("not a time"), "not a time");
        // A clock that went backwards shows no negative age.
        let view = render_status(&status, false, UNIX_EPOCH);
        assert!(view.contains("(0ms ago)"), "{view}");
    }

    #[test]
    fn events_render_on_one_line() {
        let status = fixture::status();
        let event = status.events.last().unwrap();
        assert_eq!(
            render_event(event, false),
            "2026-11-22T04:29:31.640Z  warn   heartbeats from beta on lan are late: none for 412ms"
        );
        assert!(render_event(event, true).contains("\x1b[33mwarn \x1b[0m"));
    }
}
