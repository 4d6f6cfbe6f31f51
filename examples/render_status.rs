//! render_status: writes the status page of a made-up two-node cluster to a file.
//!
//! Not a tool for users: `scripts/check-status-page.sh` opens its output in headless
//! Chromium to check that the page renders and to take the screenshot in the docs.
//!
//! Usage: `render_status OUT.html [--maintenance] [--metrics OUT.txt]`

use std::process::ExitCode;
use std::time::{Duration, SystemTime};

use failoverd::daemon::http::{render_metrics, render_page};
use failoverd::machine::event::EventKind;
use failoverd::machine::{LinkState, Role, Severity};
use failoverd::status::{
    Counters, EventRecord, Failback, GatewayStatus, HealthStatus, HookRun, LinkStatus, Maintenance,
    PeerState, PeerStatus, Status, TransitionCount, VERSION, VipStatus, rfc3339, unix_ms,
};

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let Some(out) = args.first().filter(|a| !a.starts_with("--")) else {
        eprintln!("usage: render_status OUT.html [--maintenance] [--metrics OUT.txt]");
        return ExitCode::from(2);
    };
    let mut status = sample(SystemTime::now());
    status.maintenance = if args.iter().any(|a| a == "--maintenance") {
        Maintenance {
            on: true,
            set_by: vec!["alpha".into()],
        }
    } else {
        Maintenance::default()
    };
    if let Err(err) = std::fs::write(out, render_page(&status)) {
        eprintln!("render_status: cannot write {out}: {err}");
        return ExitCode::FAILURE;
    }
    if let Some(i) = args.iter().position(|a| a == "--metrics") {
        let Some(path) = args.get(i + 1) else {
            eprintln!("render_status: --metrics needs a file");
            return ExitCode::from(2);
        };
        if let Err(err) = std::fs::write(path, render_metrics(&status)) {
            eprintln!("render_status: cannot write {path}: {err}");
            return ExitCode::FAILURE;
        }
    }
    ExitCode::SUCCESS
}

/// Node alpha of cluster shop, active for a little over an hour after beta died and
/// came back; beta is standby and heard on both links.
fn sample(now: SystemTime) -> Status {
    let ago = |secs: f64| now - Duration::from_secs_f64(secs);
    let since = ago(3_725.0);
    let events = [
        (
            3_900.0,
            Severity::Info,
            EventKind::Transition,
            "starting -> standby: peer beta is active",
        ),
        (
            3_731.2,
            Severity::Warn,
            EventKind::Peer,
            "peer beta late: no heartbeat on any link for 300ms",
        ),
        (
            3_730.9,
            Severity::Error,
            EventKind::Peer,
            "peer beta dead: silent on all links",
        ),
        (
            3_725.0,
            Severity::Info,
            EventKind::Transition,
            "standby -> active: peer beta dead on all links",
        ),
        (
            3_724.7,
            Severity::Info,
            EventKind::Hook,
            "start hook exited 0 after 412ms",
        ),
        (
            912.4,
            Severity::Info,
            EventKind::Peer,
            "peer beta up (first heard on lan)",
        ),
        (
            908.0,
            Severity::Warn,
            EventKind::Link,
            "late heartbeat from beta on crossover: 340ms since the last one",
        ),
        (
            907.6,
            Severity::Info,
            EventKind::Link,
            "link crossover to beta up again",
        ),
        (
            61.0,
            Severity::Warn,
            EventKind::Health,
            "gateway 198.18.0.1 lost after 3 failed probes",
        ),
        (
            58.5,
            Severity::Info,
            EventKind::Health,
            "gateway 198.18.0.1 reachable",
        ),
    ];
    Status {
        version: VERSION,
        cluster: "shop".into(),
        node: "alpha".into(),
        priority: 200,
        pid: 4242,
        daemon_version: env!("CARGO_PKG_VERSION").into(),
        config: "/etc/failoverd/failoverd.toml".into(),
        fingerprint: "9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08".into(),
        state: Role::Active.into(),
        since: rfc3339(since),
        since_unix_ms: unix_ms(since),
        reason: "peer beta dead on all links".into(),
        releasing: false,
        maintenance: Maintenance::default(),
        standby_requested: false,
        failback: Failback::Manual.into(),
        failback_delay_ms: 30_000,
        preferred: Some("alpha".into()),
        health: HealthStatus {
            failing: 0,
            interfaces: Vec::new(),
            gateways: vec![GatewayStatus {
                address: "198.18.0.1".into(),
                reachable: true,
                rtt_ms: Some(0.412),
                consecutive_failures: 0,
                probes: 7_452,
            }],
        },
        vips: vec![
            VipStatus {
                address: "198.18.0.10/24".into(),
                interface: "eth0".into(),
                label: Some("eth0:web".into()),
                held_here: true,
                holder: Some("alpha".into()),
            },
            VipStatus {
                address: "2001:db8::10/64".into(),
                interface: "eth0".into(),
                label: None,
                held_here: true,
                holder: Some("alpha".into()),
            },
        ],
        peers: vec![PeerStatus {
            name: "beta".into(),
            state: PeerState::Standby.into(),
            alive: true,
            priority: 100,
            health_failing: 0,
            maintenance: false,
            standby_requested: false,
            fingerprint_match: Some(true),
            links: vec![
                LinkStatus {
                    name: "crossover".into(),
                    address: "198.19.0.2".into(),
                    state: LinkState::Up.into(),
                    last_heartbeat_ms: Some(42.7),
                    received: 9_104,
                },
                LinkStatus {
                    name: "lan".into(),
                    address: "198.18.0.3".into(),
                    state: LinkState::Late.into(),
                    last_heartbeat_ms: Some(318.0),
                    received: 9_087,
                },
            ],
        }],
        counters: Counters {
            heartbeats_sent: 37_402,
            heartbeats_received: vec![("crossover".into(), 9_104), ("lan".into(), 9_087)],
            rejected: vec![("replayed or duplicate".into(), 3)],
            transitions: vec![
                TransitionCount {
                    to: Role::Standby.into(),
                    reason: "peer_active".into(),
                    count: 1,
                },
                TransitionCount {
                    to: Role::Active.into(),
                    reason: "peer_dead".into(),
                    count: 1,
                },
            ],
        },
        hooks: vec![HookRun {
            hook: "start".into(),
            started: rfc3339(ago(3_724.7)),
            duration_ms: 412.3,
            outcome: "exited 0 after 412ms".into(),
            success: true,
        }],
        events: events
            .iter()
            .enumerate()
            .map(|(i, (secs, severity, kind, message))| {
                let t = ago(*secs);
                EventRecord {
                    seq: i as u64 + 1,
                    time: rfc3339(t),
                    unix_ms: unix_ms(t),
                    severity: (*severity).into(),
                    kind: (*kind).into(),
                    message: (*message).into(),
                }
            })
            .collect(),
        last_takeover_ms: Some(187.4),
    }
}
