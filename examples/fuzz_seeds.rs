//! fuzz_seeds: writes starting inputs for the fuzz targets in fuzz/.
//!
//! `cargo run --example fuzz_seeds -- DIR` writes valid heartbeats, ARP and NA frames,
//! ICMP echo replies, configuration files and control requests into `DIR/<target>/`
//! (scripts/fuzz.sh passes fuzz/corpus). A fuzzer that starts from inputs which pass
//! the first checks reaches the deeper code much sooner than one that starts from
//! nothing. Existing files of the same name are overwritten; others are left alone.

#[path = "../tests/common/sample.rs"]
mod sample;

use std::fs;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use failoverd::control::{Command, Request};
use failoverd::wire::arp::{ArpOp, arp_probe, dad_solicitation, gratuitous_arp, unsolicited_na};
use failoverd::wire::heartbeat::{
    FLAG_LEAVING, FLAG_MAINTENANCE, FLAG_RELEASING, Heartbeat, Signer, Votes, WireState,
};
use failoverd::wire::icmp::{EchoId, checksum, echo_request_v4, echo_request_v6};
use sample::Sample;

/// The key the `heartbeat_decode` target decodes with (fuzz/fuzz_targets/heartbeat_decode.rs).
const HEARTBEAT_KEY: &[u8] = b"failoverd fuzzing key, not secret";

/// The one-link document with every optional key left out: it is about the defaults,
/// so it stays written out rather than cut down from the sample.
const SMALL_CONFIG: &str = r#"[cluster]
name = "web"
key_file = "authkey"

[[link]]
name = "lan"

[[node]]
name = "alpha"
priority = 200
addresses = { lan = "198.18.0.11" }

[[node]]
name = "beta"
priority = 100
addresses = { lan = "198.18.0.12" }
"#;

/// The sample as installed, comments and all, with the key file and hooks that the
/// `config_parse` target's base directory holds (fuzz/fuzz_targets/config_parse.rs).
fn example_config() -> Sample {
    Sample::new()
        .set("cluster.key_file", "authkey")
        .set("hooks.start", "hook")
        .set("hooks.stop", "hook")
        .set("hooks.fault", "hook")
}

/// The sample on IPv6 links with an IPv6 VIP besides the IPv4 one, and other values
/// than the example's wherever a value can vary, so the two seeds cover more ground.
fn ipv6_config() -> Sample {
    example_config()
        .without_comments()
        .set("cluster.name", "db")
        .set("cluster.port", 6940)
        .set("cluster.failback", "manual")
        .set("cluster.failback_delay", "1.5s")
        .set("timing.interval", "50ms")
        .set("timing.warn", "150ms")
        .set("timing.dead", "250ms")
        .set("timing.init_dead", "2s")
        .set("node[0].priority", 1)
        .set(
            "node[0].addresses",
            r#"{ crossover = "fd00:19::1", lan = "fd00:18::11" }"#,
        )
        .set("node[0].interfaces", r#"{ eth0 = "ens3" }"#)
        .set("node[1].priority", 2)
        .set(
            "node[1].addresses",
            r#"{ crossover = "fd00:19::2", lan = "fd00:18::12" }"#,
        )
        .set("vip[0].label", "eth0:db")
        .set("health.gateways", r#"["fd00:18::1", "198.18.0.1"]"#)
        .set("health.interval", "500ms")
        .set("health.timeout", "400ms")
        .set("health.failures", 2)
        .set("hooks.timeout", "10s")
        .set("announce.count", 5)
        .set("announce.interval", "100ms")
        .set("announce.refresh", "off")
        .set("control.socket", "failoverd.sock")
        .set("control.group", "root")
        .set("control.state_dir", "state")
        .set("events.file", "events.jsonl")
        .set("events.keep", 50)
        .set("http.listen", "127.0.0.1:9469")
        .append("[[vip]]\naddress = \"fd00:18::10/64\"\ninterface = \"eth0\"")
}

/// The example with a `[[check]]` of every kind and the `[hooks]` keys that came
/// with them; the exec check runs the target's `hook`.
fn checks_config() -> Sample {
    example_config()
        .set("hooks.standby", "hook")
        .set("hooks.start_failure", "ignore")
        .append(
            r#"[[check]]
name = "web"
kind = "http"
url = "http://127.0.0.1:8080/health"
expect_status = "200-399"
expect_body = "ok"

[[check]]
name = "db"
kind = "exec"
command = ["hook", "-q"]
interval = "5s"
timeout = "3s"
fall = 3
on = "active"
start_grace = "30s"
failure_timeout = "10m"

[[check]]
name = "db.port"
kind = "tcp"
address = "[::1]:5432"
weight = 2

[[check]]
name = "upstream"
kind = "ping"
target = "198.18.0.254"

[[check]]
name = "backend-nic"
kind = "link"
interface = "eth1"
fatal = true"#,
        )
}

fn main() -> ExitCode {
    let Some(dir) = std::env::args_os().nth(1).map(PathBuf::from) else {
        eprintln!("usage: fuzz_seeds DIR");
        return ExitCode::from(2);
    };
    match write_all(&dir) {
        Ok(count) => {
            println!("fuzz_seeds: wrote {count} seeds under {}", dir.display());
            ExitCode::SUCCESS
        }
        Err(err) => {
            eprintln!("fuzz_seeds: {err}");
            ExitCode::FAILURE
        }
    }
}

fn write_all(dir: &Path) -> std::io::Result<usize> {
    let mut seeds = Seeds { dir, count: 0 };

    let signer = Signer::new(HEARTBEAT_KEY);
    for (i, heartbeat) in heartbeats().iter().enumerate() {
        let mut packet = Vec::new();
        heartbeat.encode(&signer, &mut packet);
        seeds.write("heartbeat_decode", &format!("valid-{i}"), &packet)?;
    }

    let mac = [0x02, 0x11, 0x22, 0x33, 0x44, 0x55];
    let v4 = Ipv4Addr::new(198, 18, 0, 10);
    let v6 = Ipv6Addr::new(0xfd00, 0x18, 0, 0, 0, 0, 0, 0x10);
    seeds.write(
        "arp_parse",
        "arp-request",
        &gratuitous_arp(mac, v4, ArpOp::Request),
    )?;
    seeds.write(
        "arp_parse",
        "arp-reply",
        &gratuitous_arp(mac, v4, ArpOp::Reply),
    )?;
    seeds.write("arp_parse", "na", &unsolicited_na(mac, v6))?;
    seeds.write("arp_parse", "arp-probe", &arp_probe(mac, v4))?;
    seeds.write("arp_parse", "dad-ns", &dad_solicitation(mac, v6))?;

    let id = EchoId {
        ident: 0x1234,
        seq: 7,
    };
    for header_len in [20, 24] {
        let datagram = ipv4_echo_reply(id, b"failoverd", header_len);
        seeds.write("icmp_parse", &format!("v4-reply-{header_len}"), &datagram)?;
    }
    let mut reply = echo_request_v6(id, b"failoverd");
    reply[0] = 129;
    seeds.write("icmp_parse", "v6-reply", &reply)?;

    seeds.write(
        "config_parse",
        "example",
        example_config().to_string().as_bytes(),
    )?;
    seeds.write("config_parse", "small", SMALL_CONFIG.as_bytes())?;
    seeds.write("config_parse", "ipv6", ipv6_config().to_string().as_bytes())?;
    seeds.write(
        "config_parse",
        "checks",
        checks_config().to_string().as_bytes(),
    )?;

    for (i, command) in [
        Command::Status,
        Command::Takeover,
        Command::Standby,
        Command::Failback,
        Command::Maintenance { on: true },
        Command::Reload,
        Command::Events { after: None },
        Command::Events { after: Some(42) },
    ]
    .into_iter()
    .enumerate()
    {
        let name = format!("{i}-{}", command.name());
        let line = serde_json::to_vec(&Request::new(command))?;
        seeds.write("control_request", &name, &line)?;
    }
    Ok(seeds.count)
}

struct Seeds<'a> {
    dir: &'a Path,
    count: usize,
}

impl Seeds<'_> {
    fn write(&mut self, target: &str, name: &str, bytes: &[u8]) -> std::io::Result<()> {
        let dir = self.dir.join(target);
        fs::create_dir_all(&dir)?;
        fs::write(dir.join(format!("seed-{name}")), bytes)?;
        self.count += 1;
        Ok(())
    }
}

/// Heartbeats in every state, with short, long and multi-byte names.
fn heartbeats() -> Vec<Heartbeat<'static>> {
    let base = Heartbeat {
        link: 0,
        state: WireState::Starting,
        flags: 0,
        health: 0,
        priority: 100,
        incarnation: 1_700_000_000_000_000,
        sequence: 1,
        fingerprint: [1, 2, 3, 4, 5, 6, 7, 8],
        nonce: 0x0102_0304_0506_0708,
        echo: 0,
        votes: None,
        quiet: false,
        wake: false,
        cluster: "web".into(),
        node: "alpha".into(),
    };
    vec![
        base.clone(),
        // A cluster of three: version 2, with votes.
        Heartbeat {
            state: WireState::Standby,
            votes: Some(Votes {
                ack: 41,
                heard: 0b101,
                held: true,
            }),
            ..base.clone()
        },
        Heartbeat {
            link: 1,
            state: WireState::Active,
            flags: FLAG_RELEASING | FLAG_LEAVING,
            sequence: u64::MAX,
            echo: 0x1122_3344_5566_7788,
            ..base.clone()
        },
        Heartbeat {
            state: WireState::Standby,
            flags: FLAG_MAINTENANCE,
            health: 2,
            cluster: "c".into(),
            node: "n".into(),
            ..base.clone()
        },
        Heartbeat {
            state: WireState::Fault,
            priority: u16::MAX,
            cluster: "x".repeat(64).into(),
            node: "y".repeat(64).into(),
            ..base.clone()
        },
        Heartbeat {
            cluster: "grün".into(),
            node: "節点".into(),
            ..base
        },
    ]
}

/// An ICMPv4 echo reply behind an IPv4 header of `header_len` bytes, as a raw socket
/// hands it over.
fn ipv4_echo_reply(id: EchoId, payload: &[u8], header_len: usize) -> Vec<u8> {
    let mut reply = echo_request_v4(id, payload);
    reply[0] = 0;
    reply[2..4].fill(0);
    let sum = checksum(&[&reply]);
    reply[2..4].copy_from_slice(&sum.to_be_bytes());
    let mut datagram = vec![0u8; header_len];
    // header_len is 20 or 24, so the length in 32-bit words fits the low nibble.
    datagram[0] = 0x40 | (header_len / 4) as u8;
    datagram[8] = 64;
    datagram[9] = 1;
    datagram.extend_from_slice(&reply);
    datagram
}
