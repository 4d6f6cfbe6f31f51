//! The control socket's protocol: one JSON request per connection, one JSON reply.
//!
//! A request is a single line such as `{"version":1,"command":"status"}`; the reply is
//! a single line `{"version":1,"ok":true,...}` or `{"version":1,"ok":false,"error":"..."}`.
//! Who may ask is decided by the socket's permissions alone (mode 0660, root and the
//! configured group). This module is pure: the server lives in the daemon, the client
//! in [`client`].

pub mod client;

use serde::{Deserialize, Serialize};

use crate::status::{EventRecord, Status, VERSION};

/// Requests larger than this are refused without being parsed.
pub const MAX_REQUEST: usize = 64 * 1024;

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
    /// Events with a sequence number above `after` (all kept events if absent).
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
        }
    }
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
}
