//! The control socket's protocol: one JSON request per connection, one JSON reply.
//!
//! A request is a single line such as `{"version":1,"command":"status"}`; the reply is
//! a single line `{"version":1,"ok":true,...}` or `{"version":1,"ok":false,"error":"..."}`.
//! Who may ask is decided by the socket's permissions alone (mode 0660, root and the
//! configured group). This module is pure: the server lives in the daemon, the client
//! in [`client`].
//!
//! Replies stay small whatever `[events] keep` is: `events` answers with one page of
//! at most [`EVENTS_PAGE`] bytes and says whether more follow (`"more":true`); the
//! client asks again after the last one it got. A reply small enough for the socket's
//! buffer is written at once, so even a client that never reads costs the daemon
//! nothing but a connection until the write timeout.

pub mod client;

use serde::{Deserialize, Serialize};

use crate::status::{EventRecord, Status, VERSION};

/// Requests larger than this are refused without being parsed.
pub const MAX_REQUEST: usize = 64 * 1024;
/// The most event bytes one `events` reply carries (as JSON, about), unless a single
/// event is larger. Below the default buffer of a Unix socket (208 KiB), so that a
/// page is written in one go; and a page costs the daemon's loop well under a
/// millisecond to gather, so that a client paging through 100000 events never delays
/// a heartbeat.
pub const EVENTS_PAGE: usize = 128 * 1024;
/// What an event adds to a reply besides its message and time: the field names,
/// the numbers, severity and kind.
const EVENT_OVERHEAD: usize = 96;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "command", rename_all = "snake_case")]
pub enum Command {
    /// The full status document.
    Status,
    /// Make this node active now; the peer releases first.
    Takeover,
    /// Hand the VIPs to a peer and stay standby while a peer can hold them.
    Standby,
    /// With `failback = "manual"`: move the VIPs back to the preferred node.
    Failback,
    /// Freeze (or thaw) automatic transitions.
    Maintenance { on: bool },
    /// Re-read the configuration file.
    Reload,
    /// End a check's sticky failure, so this node may take the VIPs again.
    Clear { check: String },
    /// Events with a sequence number above `after` (all kept events if absent), the
    /// oldest first, one page at a time ([`Response::more`]).
    Events {
        #[serde(default)]
        after: Option<u64>,
    },
}

impl Command {
    pub fn name(&self) -> &'static str {
        match self {
            Command::Status => "status",
            Command::Takeover => "takeover",
            Command::Standby => "standby",
            Command::Failback => "failback",
            Command::Maintenance { .. } => "maintenance",
            Command::Reload => "reload",
            Command::Clear { .. } => "clear",
            Command::Events { .. } => "events",
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Request {
    pub version: u32,
    #[serde(flatten)]
    pub command: Command,
}

impl Request {
    pub fn new(command: Command) -> Request {
        Request {
            version: VERSION,
            command,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Response {
    pub version: u32,
    pub ok: bool,
    /// Why the request was refused or failed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
    /// What was done, in a sentence.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub message: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<Box<Status>>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub events: Option<Vec<EventRecord>>,
    /// With `events`: events after the last one of this reply were left out of it; ask
    /// again after that one. Absent (false) from the last page, and from daemons that
    /// send every event at once.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub more: bool,
}

impl Response {
    pub fn error(message: impl Into<String>) -> Response {
        Response {
            version: VERSION,
            ok: false,
            error: Some(message.into()),
            message: None,
            status: None,
            events: None,
            more: false,
        }
    }

    pub fn done(message: impl Into<String>) -> Response {
        Response {
            version: VERSION,
            ok: true,
            error: None,
            message: Some(message.into()),
            status: None,
            events: None,
            more: false,
        }
    }
}

/// The first of `events` (oldest first) that fit in one reply of about
/// [`EVENTS_PAGE`] bytes, at least one; and whether any were left out.
pub fn page<'a>(events: impl IntoIterator<Item = &'a EventRecord>) -> (Vec<EventRecord>, bool) {
    let mut page = Vec::new();
    let mut bytes = 0;
    for event in events {
        bytes += event.message.len() + event.time.len() + EVENT_OVERHEAD;
        if bytes > EVENTS_PAGE && !page.is_empty() {
            return (page, true);
        }
        page.push(event.clone());
    }
    (page, false)
}

/// Parses one request line; every failure is a reply to send back, never a panic.
pub fn parse_request(bytes: &[u8]) -> Result<Request, Response> {
    if bytes.len() > MAX_REQUEST {
        return Err(Response::error(format!(
            "request too large: {} bytes, at most {MAX_REQUEST}",
            bytes.len()
        )));
    }
    let request: Request = serde_json::from_slice(bytes)
        .map_err(|err| Response::error(format!("malformed request: {err}")))?;
    if request.version != VERSION {
        return Err(Response::error(format!(
            "unsupported protocol version {} (this daemon speaks {VERSION})",
            request.version
        )));
    }
    Ok(request)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_round_trip() {
        for command in [
            Command::Status,
            Command::Takeover,
            Command::Maintenance { on: true },
            Command::Events { after: Some(7) },
        ] {
            let line = serde_json::to_vec(&Request::new(command.clone())).unwrap();
            assert_eq!(parse_request(&line).unwrap().command, command);
        }
        let line = br#"{"version":1,"command":"maintenance","on":false}"#;
        assert_eq!(
            parse_request(line).unwrap().command,
            Command::Maintenance { on: false }
        );
    }

    #[test]
    fn bad_requests_get_an_error_reply() {
        for bad in [
            &b"not json"[..],
            br#"{"version":1,"command":"reboot"}"#,
            br#"{"version":2,"command":"status"}"#,
            br#"{"command":"status"}"#,
            br#"{"version":1,"command":"maintenance"}"#,
        ] {
            let reply = parse_request(bad).unwrap_err();
            assert!(!reply.ok);
            assert!(reply.error.is_some());
        }
        let huge = vec![b' '; MAX_REQUEST + 1];
        assert!(
            parse_request(&huge)
                .unwrap_err()
                .error
                .unwrap()
                .contains("too large")
        );
    }

    fn event(seq: u64, message_len: usize) -> EventRecord {
        EventRecord {
            seq,
            time: "2026-11-22T01:17:39.421Z".to_string(),
            unix_ms: 1_795_310_259_421,
            severity: crate::machine::Severity::Info.into(),
            kind: crate::machine::event::EventKind::Health.into(),
            message: "x".repeat(message_len),
        }
    }

    #[test]
    fn events_come_in_pages_that_fit_a_reply() {
        let events: Vec<EventRecord> = (1..=5000).map(|seq| event(seq, 200)).collect();
        let mut after = 0;
        let mut seen = Vec::new();
        let mut pages = 0;
        loop {
            let rest = events.iter().filter(|e| e.seq > after);
            let (page, more) = page(rest);
            pages += 1;
            let mut reply = Response::done("events");
            reply.events = Some(page.clone());
            reply.more = more;
            let json = serde_json::to_vec(&reply).unwrap();
            assert!(json.len() <= EVENTS_PAGE + 1024, "{} bytes", json.len());
            let back: Response = serde_json::from_slice(&json).unwrap();
            assert_eq!(back.more, more);
            seen.extend(page.iter().map(|e| e.seq));
            after = page.last().unwrap().seq;
            if !more {
                break;
            }
        }
        assert_eq!(seen, (1..=5000).collect::<Vec<_>>());
        assert!(pages > 5, "{pages} pages");
    }

    #[test]
    fn a_page_holds_at_least_one_event_and_the_last_says_so() {
        let huge = [event(1, EVENTS_PAGE * 2), event(2, 10)];
        let (first, more) = page(&huge);
        assert_eq!(first.len(), 1);
        assert!(more);
        let (second, more) = page(&huge[1..]);
        assert_eq!(second[0].seq, 2);
        assert!(!more);
        assert_eq!(page([]), (Vec::new(), false));
        // The last page does not say "more", for older clients too.
        let json = serde_json::to_string(&Response::done("events")).unwrap();
        assert!(!json.contains("more"), "{json}");
    }
}
