//! What the client commands wait for and what they conclude: the exit code of
//! `failoverd status`, the outcome a command waits for in the status, and the wait
//! itself. Only [`fetch_status`] and [`wait_for`] talk to the daemon, through
//! [`crate::control::client`]; how a status looks is [`crate::view::text`]'s job.
//! Argument parsing and printing stay in `main.rs`.
//!
//! Exit codes of the client commands:
//! - [`EXIT_OK`] (0): this node is healthy (active or standby, in maintenance too), or
//!   a command reached its outcome.
//! - [`EXIT_FAILED`] (1): this node is in fault, or a command was refused or did not
//!   reach its outcome in time, or another runtime failure.
//! - [`EXIT_USAGE`] (2): bad arguments or an invalid configuration.
//! - [`EXIT_NOT_RUNNING`] (3): no daemon answers on the control socket.
//! - [`EXIT_STARTING`] (4): the daemon is still starting (listening for peers).

use std::path::Path;
use std::thread;
use std::time::{Duration, Instant};

use crate::control::Command;
use crate::control::client::{self, ClientError};
use crate::duration::format_duration;
use crate::machine::event::Role;
use crate::status::{PeerState, PeerStatus, Status};

pub const EXIT_OK: u8 = 0;
pub const EXIT_FAILED: u8 = 1;
pub const EXIT_USAGE: u8 = 2;
pub const EXIT_NOT_RUNNING: u8 = 3;
pub const EXIT_STARTING: u8 = 4;

/// How often [`wait_for`] asks for the status.
const POLL: Duration = Duration::from_millis(100);
/// Longest single status request while waiting; the overall timeout still applies.
const POLL_TIMEOUT: Duration = Duration::from_secs(5);

/// The exit code of `failoverd status` for this node's state; see the module docs.
/// A state this client does not know counts as a failure.
pub fn status_exit_code(status: &Status) -> u8 {
    match status.state.known() {
        Some(Role::Active | Role::Standby | Role::Witness) => EXIT_OK,
        Some(Role::Starting) => EXIT_STARTING,
        Some(Role::Fault) | None => EXIT_FAILED,
    }
}

/// Asks the daemon for its status document.
pub fn fetch_status(socket: &Path, timeout: Duration) -> Result<Status, ClientError> {
    let reply = client::request(socket, Command::Status, timeout)?;
    let bad = |reason: String| ClientError::BadReply {
        socket: socket.to_path_buf(),
        reason,
    };
    if !reply.ok {
        return Err(bad(format!(
            "status refused: {}",
            reply.error.as_deref().unwrap_or("no reason given")
        )));
    }
    match reply.status {
        Some(status) => Ok(*status),
        None => Err(bad("the reply holds no status".to_string())),
    }
}

/// Whether the outcome that `command` asks for shows in `status`: `Ok` when it does,
/// otherwise what is seen instead, as a phrase.
///
/// - takeover: this node is active, not releasing, and holds every VIP;
/// - standby: this node is standby and a peer is active (or holds every VIP);
/// - failback: the preferred node ([`Status::preferred`], this node when the daemon
///   does not say) holds the VIPs, as for takeover when that is this node, else as
///   for standby with that peer active;
/// - maintenance on: maintenance is on; off: this node no longer asks for it (a peer
///   may still keep it on);
/// - anything else has nothing to wait for.
pub fn outcome(command: &Command, status: &Status) -> Result<(), String> {
    match command {
        Command::Takeover => holds_everything(status),
        Command::Standby => stands_by(status, None),
        Command::Failback => {
            let preferred = status.preferred.as_deref().unwrap_or(&status.node);
            if preferred == status.node {
                holds_everything(status)
                    .map_err(|seen| format!("this node is the preferred node; {seen}"))
            } else {
                stands_by(status, Some(preferred))
                    .map_err(|seen| format!("the preferred node is {preferred}; {seen}"))
            }
        }
        Command::Maintenance { on: true } if !status.maintenance.on => {
            Err("maintenance is off".to_string())
        }
        Command::Maintenance { on: false } if status.maintenance.set_by.contains(&status.node) => {
            Err("this node still asks for maintenance".to_string())
        }
        Command::Maintenance { .. } => Ok(()),
        Command::Status | Command::Reload | Command::Clear { .. } | Command::Events { .. } => {
            Ok(())
        }
    }
}

/// One line saying what a command achieved, for when [`outcome`] is reached.
pub fn outcome_summary(command: &Command, status: &Status) -> String {
    let vips = || {
        let list: Vec<&str> = status.vips.iter().map(|v| v.address.as_str()).collect();
        if list.is_empty() {
            "no VIPs (none configured)".to_string()
        } else {
            list.join(", ")
        }
    };
    let holder = || {
        status
            .vips
            .iter()
            .find_map(|v| v.holder.clone())
            .or_else(|| active_peer(status).map(|p| p.name.clone()))
            .unwrap_or_else(|| "no node".to_string())
    };
    match command {
        Command::Takeover => format!("{} is active and holds {}", status.node, vips()),
        Command::Standby | Command::Failback if status.state != Role::Active => {
            format!(
                "{} is {}; {} holds {}",
                status.node,
                status.state,
                holder(),
                vips()
            )
        }
        Command::Failback => format!("{} is active and holds {}", status.node, vips()),
        Command::Maintenance { .. } if status.maintenance.on => format!(
            "maintenance is on (set by {}): automatic transitions are frozen",
            status.maintenance.set_by.join(", ")
        ),
        Command::Maintenance { .. } => "maintenance is off".to_string(),
        other => format!("{} done", other.name()),
    }
}

/// Polls the status every 100 ms until the outcome of `command` shows (see
/// [`outcome`]) and returns that status. `before` is the status from before the
/// command was sent: a different daemon pid means the daemon restarted and the
/// command is forgotten. Gives up, with a sentence saying what was last seen, when
/// `timeout` passes, the daemon goes away, or it restarts.
pub fn wait_for(
    command: &Command,
    before: &Status,
    socket: &Path,
    timeout: Duration,
) -> Result<Status, String> {
    let deadline = Instant::now() + timeout;
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let seen = match fetch_status(socket, left.clamp(POLL, POLL_TIMEOUT)) {
            Ok(status) if status.pid != before.pid => {
                return Err(format!(
                    "the daemon restarted (pid {} is now {}) before {} completed",
                    before.pid,
                    status.pid,
                    command.name()
                ));
            }
            Ok(status) => match outcome(command, &status) {
                Ok(()) => return Ok(status),
                Err(_) if dropped(command, before, &status) => {
                    return Err(format!(
                        "{} not complete: this node is active and keeps the VIPs, the \
                         handover did not go through (`failoverd events` says why)",
                        command.name()
                    ));
                }
                Err(seen) => seen,
            },
            Err(err @ (ClientError::NotRunning { .. } | ClientError::PermissionDenied { .. })) => {
                return Err(format!("while waiting for {}: {err}", command.name()));
            }
            Err(err) => err.to_string(),
        };
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(format!(
                "{} not complete after {}: {seen}",
                command.name(),
                format_duration(timeout)
            ));
        }
        thread::sleep(left.min(POLL));
    }
}

/// Whether a handover ordered on the active node (`standby`, or `failback` to a
/// peer) has ended with this node still active: neither releasing nor waiting for
/// its standby any more, so nothing further will come of it.
fn dropped(command: &Command, before: &Status, status: &Status) -> bool {
    let hands_over = match command {
        Command::Standby => true,
        Command::Failback => before
            .preferred
            .as_deref()
            .is_some_and(|p| p != before.node),
        _ => false,
    };
    hands_over
        && before.state == Role::Active
        && status.state == Role::Active
        && !status.releasing
        && !status.handing_over
}

/// This node active, not releasing, every VIP on it.
fn holds_everything(status: &Status) -> Result<(), String> {
    if status.state != Role::Active {
        // Why it is where it is, and what holds the takeover back, if anything: a
        // takeover that went to fault, or that the split-brain guard holds.
        let held = status
            .takeover_held
            .as_deref()
            .map(|hold| format!("; takeover held: {hold}"))
            .unwrap_or_default();
        return Err(format!(
            "this node is {} ({}){held}",
            status.state, status.reason
        ));
    }
    if status.releasing {
        return Err("this node is active but releasing".to_string());
    }
    if status.handing_over {
        return Err("this node is active but handing the VIPs over".to_string());
    }
    match status.vips.iter().find(|v| !v.held_here) {
        Some(vip) => Err(format!(
            "this node is active but VIP {} is not in place yet",
            vip.address
        )),
        None => Ok(()),
    }
}

/// This node standby, and a peer (`peer` if given) active or holding every VIP.
fn stands_by(status: &Status, peer: Option<&str>) -> Result<(), String> {
    if status.state != Role::Standby || status.releasing {
        let doing = if status.releasing {
            ", releasing"
        } else if status.handing_over {
            ", waiting for its quiet standby to answer before releasing"
        } else {
            ""
        };
        return Err(format!("this node is {}{doing}", status.state));
    }
    let wanted = |name: &str| peer.is_none_or(|p| p == name) && name != status.node;
    let peer_active = status
        .peers
        .iter()
        .any(|p| p.alive && p.state == PeerState::Active && wanted(&p.name));
    let vips_on_peer = !status.vips.is_empty()
        && status
            .vips
            .iter()
            .all(|v| v.holder.as_deref().is_some_and(wanted));
    if peer_active || vips_on_peer {
        return Ok(());
    }
    Err(match peer {
        Some(peer) => format!("this node is standby but {peer} does not hold the VIPs yet"),
        None => "this node is standby but no peer holds the VIPs yet".to_string(),
    })
}

fn active_peer(status: &Status) -> Option<&PeerStatus> {
    status
        .peers
        .iter()
        .find(|p| p.alive && p.state == PeerState::Active)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::status::fixture;

    #[test]
    fn exit_codes_follow_the_state() {
        let mut status = fixture::status();
        for (state, code) in [
            ("active", 0),
            ("standby", 0),
            ("fault", 1),
            ("starting", 4),
            ("confused", 1),
        ] {
            status.state = serde_json::from_value(state.into()).unwrap();
            assert_eq!(status_exit_code(&status), code, "{state}");
        }
        status.state = Role::Standby.into();
        status.maintenance.on = true;
        assert_eq!(status_exit_code(&status), EXIT_OK, "maintenance is healthy");
    }

    #[test]
    fn takeover_needs_every_vip_here() {
        let mut status = fixture::status();
        assert_eq!(outcome(&Command::Takeover, &status), Ok(()));
        status.vips[1].held_here = false;
        assert!(
            outcome(&Command::Takeover, &status)
                .unwrap_err()
                .contains("2001:db8::10/64 is not in place")
        );
        status.vips[1].held_here = true;
        status.releasing = true;
        assert!(outcome(&Command::Takeover, &status).is_err());
        status.state = Role::Standby.into();
        status.reason = "start hook failed".to_string();
        assert_eq!(
            outcome(&Command::Takeover, &status),
            Err("this node is standby (start hook failed)".to_string())
        );
        status.takeover_held = Some("VIP 198.18.0.10 still answered by another host".into());
        assert_eq!(
            outcome(&Command::Takeover, &status),
            Err(
                "this node is standby (start hook failed); takeover held: VIP 198.18.0.10 \
                 still answered by another host"
                    .to_string()
            )
        );
    }

    /// A handover ordered on the active node that left it active, neither
    /// releasing nor waiting for its standby, has been dropped: the wait ends.
    #[test]
    fn a_dropped_handover_ends_the_wait() {
        let before = fixture::status();
        assert_eq!(before.state, Role::Active);
        let mut status = before.clone();
        assert!(dropped(&Command::Standby, &before, &status));
        assert!(!dropped(&Command::Takeover, &before, &status));
        status.handing_over = true;
        assert!(!dropped(&Command::Standby, &before, &status));
        assert_eq!(
            outcome(&Command::Standby, &status),
            Err(
                "this node is active, waiting for its quiet standby to answer before releasing"
                    .to_string()
            )
        );
        status.handing_over = false;
        status.releasing = true;
        assert!(!dropped(&Command::Standby, &before, &status));
        assert!(!dropped(
            &Command::Standby,
            &before,
            &handed_to_beta(before.clone())
        ));
        // A failback hands over only when the preferred node is a peer.
        let mut failback = before.clone();
        failback.preferred = Some(before.node.clone());
        assert!(!dropped(&Command::Failback, &failback, &before));
        failback.preferred = Some("beta".to_string());
        assert!(dropped(&Command::Failback, &failback, &before));
        // A standby before the order never counts as dropped.
        let standby = handed_to_beta(before.clone());
        assert!(!dropped(&Command::Standby, &standby, &before));
    }

    fn handed_to_beta(mut status: Status) -> Status {
        status.state = Role::Standby.into();
        status.peers[0].state = PeerState::Active.into();
        for vip in &mut status.vips {
            vip.held_here = false;
            vip.holder = Some("beta".to_string());
        }
        status
    }

    #[test]
    fn standby_needs_a_peer_holding_the_vips() {
        let status = fixture::status();
        assert_eq!(
            outcome(&Command::Standby, &status),
            Err("this node is active".to_string())
        );
        let mut handed = handed_to_beta(status);
        assert_eq!(outcome(&Command::Standby, &handed), Ok(()));
        handed.peers[0].state = PeerState::Starting.into();
        assert_eq!(outcome(&Command::Standby, &handed), Ok(()), "VIPs on beta");
        for vip in &mut handed.vips {
            vip.holder = None;
        }
        assert!(outcome(&Command::Standby, &handed).is_err());
    }

    #[test]
    fn failback_waits_for_the_node_the_daemon_prefers() {
        // The daemon names alpha: failback means alpha holds everything.
        let status = fixture::status();
        assert_eq!(status.preferred.as_deref(), Some("alpha"));
        assert_eq!(outcome(&Command::Failback, &status), Ok(()));
        let handed = handed_to_beta(status.clone());
        assert!(
            outcome(&Command::Failback, &handed)
                .unwrap_err()
                .starts_with("this node is the preferred node")
        );

        // The daemon names beta: failback means beta active, this node standby.
        let mut status = status;
        status.preferred = Some("beta".to_string());
        assert_eq!(
            outcome(&Command::Failback, &status),
            Err("the preferred node is beta; this node is active".to_string())
        );
        assert_eq!(
            outcome(&Command::Failback, &handed_to_beta(status.clone())),
            Ok(())
        );

        // An older daemon does not say: this node is taken for the preferred one.
        status.preferred = None;
        assert_eq!(outcome(&Command::Failback, &status), Ok(()));
        assert!(outcome(&Command::Failback, &handed_to_beta(status)).is_err());
    }

    #[test]
    fn maintenance_outcomes() {
        let mut status = fixture::status();
        let on = Command::Maintenance { on: true };
        let off = Command::Maintenance { on: false };
        assert!(outcome(&on, &status).is_err());
        assert_eq!(outcome(&off, &status), Ok(()));
        status.maintenance.on = true;
        status.maintenance.set_by = vec!["alpha".to_string(), "beta".to_string()];
        assert_eq!(outcome(&on, &status), Ok(()));
        assert!(outcome(&off, &status).is_err());
        status.maintenance.set_by = vec!["beta".to_string()];
        assert_eq!(outcome(&off, &status), Ok(()), "a peer may keep it on");
        assert_eq!(
            outcome_summary(&off, &status),
            "maintenance is on (set by beta): automatic transitions are frozen"
        );
    }

    #[test]
    fn summaries() {
        let status = fixture::status();
        assert_eq!(
            outcome_summary(&Command::Takeover, &status),
            "alpha is active and holds 198.18.0.10/24, 2001:db8::10/64"
        );
        assert_eq!(
            outcome_summary(&Command::Standby, &handed_to_beta(status)),
            "alpha is standby; beta holds 198.18.0.10/24, 2001:db8::10/64"
        );
    }
}
