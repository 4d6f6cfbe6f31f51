//! Properties of the pure parsers and codecs, checked on generated inputs.
//!
//! The fuzz targets in fuzz/ search the same ground for minutes with coverage
//! guidance; these run in every `cargo test`, a few hundred cases each, so a
//! regression shows up without a fuzzing run. A failure prints the smallest input
//! proptest could shrink it to.

#[path = "common/sample.rs"]
mod sample;

use std::fs;
use std::net::{Ipv4Addr, Ipv6Addr};
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use failoverd::config::Config;
use failoverd::duration::{format_duration, parse_duration};
use failoverd::wire::arp::{ArpOp, gratuitous_arp, parse_arp, parse_na, unsolicited_na};
use failoverd::wire::heartbeat::{
    DecodeError, Heartbeat, MAGIC, MAX_LEN, Signer, TAG_LEN, VERSION, Votes, WireState,
};
use hmac::{Hmac, KeyInit, Mac};
use proptest::collection::vec;
use proptest::prelude::*;
use proptest::sample::{Index, select};
use proptest::test_runner::{Config as ProptestConfig, TestRunner};
use sample::Sample;
use sha2::Sha256;

/// Cases per property: enough to shake out a broken rule, few enough that the whole
/// file runs in a few seconds.
const CASES: u32 = 256;
/// Configuration cases touch the file system, so fewer of them.
const CONFIG_CASES: u32 = 64;

/// `default` cases, or as many as PROPTEST_CASES says, for a longer hunt:
/// `PROPTEST_CASES=100000 cargo test --release --test properties`.
fn cases(default: u32) -> ProptestConfig {
    let cases = std::env::var("PROPTEST_CASES")
        .ok()
        .and_then(|n| n.parse().ok())
        .unwrap_or(default);
    ProptestConfig::with_cases(cases)
}

/// Offset of the heartbeat's reserved byte: 0 in version 1, anything else refused.
const RESERVED: usize = 9;

// ---------------------------------------------------------------------------
// Heartbeat

/// A name of 1 to 64 bytes (the configuration's limit) of any characters: the codec
/// carries bytes and must not care what they spell.
fn name() -> impl Strategy<Value = String> {
    vec(any::<char>(), 1..=64).prop_map(|chars| {
        let mut name = String::new();
        for c in chars {
            if name.len() + c.len_utf8() > 64 {
                break;
            }
            name.push(c);
        }
        name
    })
}

fn wire_state() -> impl Strategy<Value = WireState> {
    select(vec![
        WireState::Starting,
        WireState::Standby,
        WireState::Active,
        WireState::Fault,
    ])
}

fn heartbeat() -> impl Strategy<Value = Heartbeat<'static>> {
    (
        (any::<u8>(), wire_state(), any::<u8>(), any::<u8>()),
        (any::<u16>(), any::<u64>(), any::<u64>(), any::<[u8; 8]>()),
        (any::<u64>(), any::<u64>(), name(), name()),
        proptest::option::of((any::<u64>(), any::<u32>(), any::<bool>())),
    )
        .prop_map(
            |(
                (link, state, flags, health),
                (priority, incarnation, sequence, fingerprint),
                (nonce, echo, cluster, node),
                votes,
            )| Heartbeat {
                link,
                state,
                flags,
                health,
                priority,
                incarnation,
                sequence,
                fingerprint,
                nonce,
                echo,
                votes: votes.map(|(ack, heard, held)| Votes { ack, heard, held }),
                quiet: false,
                wake: false,
                cluster: cluster.into(),
                node: node.into(),
            },
        )
}

fn key() -> impl Strategy<Value = Vec<u8>> {
    vec(any::<u8>(), 0..80)
}

fn encode(heartbeat: &Heartbeat, signer: &Signer) -> Vec<u8> {
    let mut packet = Vec::new();
    heartbeat.encode(signer, &mut packet);
    packet
}

/// `body` followed by its HMAC under `key`: a packet that passes the tag check
/// whatever the body holds.
fn signed(body: &[u8], key: &[u8]) -> Vec<u8> {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key).expect("any key length");
    mac.update(body);
    let mut packet = body.to_vec();
    packet.extend_from_slice(&mac.finalize().into_bytes());
    packet
}

proptest! {
    #![proptest_config(cases(CASES))]

    #[test]
    fn decode_never_panics_on_arbitrary_bytes(
        bytes in vec(any::<u8>(), 0..=MAX_LEN + 16),
        key in key(),
    ) {
        let _ = Heartbeat::decode(&bytes, &Signer::new(&key));
    }

    /// Past the tag check: a signed body of any content either decodes to a heartbeat
    /// that encodes back to the same packet, or is refused as malformed.
    #[test]
    fn signed_junk_is_parsed_exactly_or_refused(
        junk in vec(any::<u8>(), 0..=MAX_LEN - TAG_LEN - 5),
        key in key(),
    ) {
        let mut body = MAGIC.to_vec();
        body.push(VERSION);
        body.extend_from_slice(&junk);
        let packet = signed(&body, &key);
        let signer = Signer::new(&key);
        match Heartbeat::decode(&packet, &signer) {
            Ok(heartbeat) => {
                prop_assert_eq!(packet[RESERVED], 0, "a non-zero reserved byte was accepted");
                prop_assert_eq!(encode(&heartbeat, &signer), packet);
            }
            Err(err) => prop_assert!(
                matches!(err, DecodeError::Length | DecodeError::Malformed),
                "{err:?}"
            ),
        }
    }

    #[test]
    fn encode_then_decode_is_the_identity(heartbeat in heartbeat(), key in key()) {
        let signer = Signer::new(&key);
        let packet = encode(&heartbeat, &signer);
        prop_assert_eq!(Heartbeat::decode(&packet, &signer), Ok(heartbeat));
    }

    /// Names longer than one packet can carry are refused whole, never cut short.
    #[test]
    fn names_too_long_for_a_packet_are_refused(
        heartbeat in heartbeat(),
        extra in 1usize..200,
        key in key(),
    ) {
        let mut heartbeat = heartbeat;
        let room = MAX_LEN - encode(&heartbeat, &Signer::new(b"")).len();
        heartbeat.node.to_mut().push_str(&"n".repeat(room + extra));
        let signer = Signer::new(&key);
        let packet = encode(&heartbeat, &signer);
        prop_assert_eq!(Heartbeat::decode(&packet, &signer), Err(DecodeError::Length));
    }

    #[test]
    fn any_single_flipped_bit_is_refused(
        heartbeat in heartbeat(),
        key in key(),
        bit in any::<Index>(),
    ) {
        let signer = Signer::new(&key);
        let mut packet = encode(&heartbeat, &signer);
        let bit = bit.index(packet.len() * 8);
        packet[bit / 8] ^= 1 << (bit % 8);
        prop_assert!(Heartbeat::decode(&packet, &signer).is_err(), "bit {}", bit);
    }
}

// ---------------------------------------------------------------------------
// ARP and Neighbor Advertisement

proptest! {
    #![proptest_config(cases(CASES))]

    #[test]
    fn arp_build_then_parse_round_trips(
        mac in any::<[u8; 6]>(),
        ip in any::<Ipv4Addr>(),
        reply in any::<bool>(),
    ) {
        let op = if reply { ArpOp::Reply } else { ArpOp::Request };
        let arp = parse_arp(&gratuitous_arp(mac, ip, op));
        prop_assert!(arp.is_some());
        let arp = arp.unwrap();
        prop_assert_eq!(arp.op, op);
        prop_assert_eq!((arp.eth_dst, arp.eth_src, arp.sender_mac), ([0xff; 6], mac, mac));
        prop_assert_eq!((arp.sender_ip, arp.target_ip), (ip, ip));
        prop_assert_eq!(arp.target_mac, if reply { mac } else { [0; 6] });
    }

    #[test]
    fn na_build_then_parse_round_trips(mac in any::<[u8; 6]>(), ip in any::<Ipv6Addr>()) {
        let na = parse_na(&unsolicited_na(mac, ip));
        prop_assert!(na.is_some());
        let na = na.unwrap();
        prop_assert_eq!((na.eth_src, na.src_ip, na.target), (mac, ip, ip));
        prop_assert_eq!(na.dst_ip, Ipv6Addr::new(0xff02, 0, 0, 0, 0, 0, 0, 1));
        prop_assert_eq!(na.target_mac, Some(mac));
        prop_assert!(na.override_flag && !na.solicited && !na.router);
    }

    #[test]
    fn frame_parsers_never_panic(bytes in vec(any::<u8>(), 0..128)) {
        let _ = parse_arp(&bytes);
        let _ = parse_na(&bytes);
    }
}

// ---------------------------------------------------------------------------
// Durations

/// Whole milliseconds up to the largest duration the file accepts (1e9 s), with
/// as many small values as large ones: timers live at the small end.
fn whole_milliseconds() -> impl Strategy<Value = Duration> {
    prop_oneof![0u64..10_000, 0u64..100_000_000, 0u64..=1_000_000_000_000,]
        .prop_map(Duration::from_millis)
}

proptest! {
    #![proptest_config(cases(CASES))]

    #[test]
    fn parse_duration_reads_back_format_duration(d in whole_milliseconds()) {
        let text = format_duration(d);
        prop_assert_eq!(parse_duration(&text), Ok(d), "{}", text);
    }

    #[test]
    fn parse_duration_never_panics(text in "[0-9.]{0,24}(us|µs|ms|s|m|min|h|x|)") {
        let _ = parse_duration(&text);
    }
}

// ---------------------------------------------------------------------------
// Configuration

/// A `[[check]]` of every kind, each with other keys set than the defaults, for
/// [`valid`]; the exec check runs the `BaseDir`'s hook.
const CHECKS: &str = r#"[[check]]
name = "web"
kind = "http"
url = "http://[::1]:8080/health?full=1"
expect_status = "200-299"
expect_body = "ok"
weight = 5

[[check]]
name = "db"
kind = "exec"
command = ["hook", "-q"]
interval = "2s"
timeout = "500ms"
on = "active"
start_grace = "30s"
failure_timeout = "10m"

[[check]]
name = "db.port"
kind = "tcp"
address = "127.0.0.1:5432"
rise = 1
fall = 3

[[check]]
name = "upstream"
kind = "ping"
target = "fd00::1"
fatal = true

[[check]]
name = "backend-nic"
kind = "link"
interface = "eth1"
on = "active"
failure_timeout = "never"
"#;

/// A document that uses every section and passes every check: the sample relative to
/// a `BaseDir`, with an IPv6 VIP and gateway and a check of every kind besides, and
/// without comments, so that most mutations land on keys and values.
fn valid() -> String {
    Sample::new()
        .without_comments()
        .set("cluster.key_file", "authkey")
        .set("cluster.failback", "manual")
        .set("health.gateways", r#"["198.18.0.1", "fd00::1"]"#)
        .set("hooks.start", "hook")
        .set("hooks.stop", "hook")
        .remove("hooks.fault")
        .set("hooks.standby", "hook")
        .set("hooks.start_failure", "ignore")
        .set("announce.refresh", "off")
        .set("control.socket", "failoverd.sock")
        .set("control.state_dir", "state")
        .set("events.file", "events.jsonl")
        .set("http.listen", "127.0.0.1:9469")
        .append("[[vip]]\naddress = \"fd00::10/64\"\ninterface = \"eth0\"")
        .append(CHECKS)
        .to_string()
}

/// Pieces of TOML and of the values the checks look at, for mutations that get past
/// the syntax more often than random characters do.
const TOKENS: &[&str] = &[
    "\"",
    "'",
    "[",
    "]",
    "[[",
    "]]",
    "{",
    "}",
    "=",
    ",",
    ".",
    "\n",
    "#",
    " ",
    "\\",
    "\"\"\"",
    "0",
    "-1",
    "65536",
    "1e400",
    "nan",
    "inf",
    "true",
    "[]",
    "{}",
    "1979-05-27T07:32:00Z",
    "\"\"",
    "\"0ms\"",
    "\"1e9s\"",
    "\"999999999s\"",
    "\"1000000001s\"",
    "\"0.0000000001s\"",
    "\"18446744073709551615ms\"",
    "\"5 min\"",
    "\"1.5.5s\"",
    "\"..s\"",
    "\"µs\"",
    "\"off\"",
    "\"::\"",
    "\"0.0.0.0/0\"",
    "\"::/129\"",
    "\"fe80::1\"",
    "\"198.18.0.11\"",
    "\"a b\"",
    "\"é\"",
    "\"\\u0000\"",
    "[cluster]",
    "[[node]]",
    "[[link]]",
    "[[vip]]",
    "[timing]",
    "name",
    "addresses",
    "interfaces",
    "label",
    "key_file = \"authkey\"",
    "key_file = \"/\"",
    "group = \"root\"",
    "group = \"no such group\"",
    "listen = \"[::1]:0\"",
    "[[check]]",
    "kind",
    "\"exec\"",
    "\"http\"",
    "\"active\"",
    "\"never\"",
    "\"200-399\"",
    "\"http://[::1]:80/\"",
    "\"https://x/\"",
    "\"hook\"",
    "[\"hook\"]",
    "name = \"vip\"",
    "name = \"gateway-198.18.0.1\"",
];

#[derive(Debug, Clone)]
enum Edit {
    Insert(Index, &'static str),
    Delete(Index, usize),
    /// Replaces what follows the `=` on a line.
    SetValue(Index, &'static str),
    DuplicateLine(Index),
    DeleteLine(Index),
    SwapLines(Index, Index),
}

fn edit() -> impl Strategy<Value = Edit> {
    let token = || select(TOKENS);
    prop_oneof![
        (any::<Index>(), token()).prop_map(|(at, token)| Edit::Insert(at, token)),
        (any::<Index>(), 1usize..24).prop_map(|(at, len)| Edit::Delete(at, len)),
        (any::<Index>(), token()).prop_map(|(line, token)| Edit::SetValue(line, token)),
        any::<Index>().prop_map(Edit::DuplicateLine),
        any::<Index>().prop_map(Edit::DeleteLine),
        (any::<Index>(), any::<Index>()).prop_map(|(a, b)| Edit::SwapLines(a, b)),
    ]
}

fn apply(text: &str, edit: &Edit) -> String {
    let boundary = |at: &Index| {
        let mut at = at.index(text.len() + 1);
        while !text.is_char_boundary(at) {
            at -= 1;
        }
        at
    };
    let mut lines: Vec<&str> = text.split('\n').collect();
    match edit {
        Edit::Insert(at, token) => {
            let at = boundary(at);
            return format!("{}{token}{}", &text[..at], &text[at..]);
        }
        Edit::Delete(at, len) => {
            let start = boundary(at);
            let mut end = (start + len).min(text.len());
            while !text.is_char_boundary(end) {
                end += 1;
            }
            return format!("{}{}", &text[..start], &text[end..]);
        }
        Edit::SetValue(line, token) => {
            let i = line.index(lines.len());
            let Some((key, _)) = lines[i].split_once('=') else {
                return text.to_string();
            };
            let new = format!("{key}= {token}");
            lines[i] = &new;
            return lines.join("\n");
        }
        Edit::DuplicateLine(line) => {
            let i = line.index(lines.len());
            lines.insert(i, lines[i]);
        }
        Edit::DeleteLine(line) => {
            lines.remove(line.index(lines.len()));
        }
        Edit::SwapLines(a, b) => {
            let n = lines.len();
            lines.swap(a.index(n), b.index(n));
        }
    }
    lines.join("\n")
}

/// A directory with a valid key file and an executable hook, removed on drop.
struct BaseDir(PathBuf);

impl BaseDir {
    fn new(name: &str) -> BaseDir {
        let dir = std::env::temp_dir().join(format!(
            "failoverd-properties-{}-{name}",
            std::process::id()
        ));
        fs::create_dir_all(&dir).unwrap();
        let key = dir.join("authkey");
        fs::write(&key, "0123456789abcdef0123456789abcdef\n").unwrap();
        fs::set_permissions(&key, fs::Permissions::from_mode(0o600)).unwrap();
        let hook = dir.join("hook");
        fs::write(&hook, "#!/bin/sh\n").unwrap();
        fs::set_permissions(&hook, fs::Permissions::from_mode(0o755)).unwrap();
        BaseDir(dir)
    }

    fn path(&self) -> &Path {
        &self.0
    }
}

impl Drop for BaseDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Parses `text` and checks what every outcome owes its reader: a refusal has at
/// least one problem, and each line it names is in the document.
fn parse_checked(text: &str, base: &Path) -> Result<(), TestCaseError> {
    match Config::parse(text, base) {
        Ok(config) => {
            let _ = config.fingerprint();
        }
        Err(problems) => {
            prop_assert!(!problems.is_empty(), "refused without a reason");
            let lines = text.matches('\n').count() + 1;
            for problem in &problems {
                if let Some(line) = problem.line {
                    prop_assert!((1..=lines).contains(&line), "{} of {}", problem, lines);
                }
            }
        }
    }
    Ok(())
}

fn run_config_property<S: Strategy<Value = String>>(name: &str, strategy: S) {
    let base = BaseDir::new(name);
    let mut runner = TestRunner::new(cases(CONFIG_CASES));
    if let Err(err) = runner.run(&strategy, |text| parse_checked(&text, base.path())) {
        panic!("{err}");
    }
}

#[test]
fn the_valid_document_is_valid() {
    let base = BaseDir::new("valid");
    if let Err(problems) = Config::parse(&valid(), base.path()) {
        panic!("{problems:#?}");
    }
}

#[test]
fn config_parse_never_panics_on_arbitrary_strings() {
    run_config_property("arbitrary", any::<String>());
}

/// One line of something like TOML: a key and a value or the start of one, a table
/// header, a comment or nothing.
const TOML_LINE: &str = "([a-z_]{1,10} = (\"[ -~]{0,12}\"|[0-9.e+-]{1,6}|\\[|\\{|true)|\\[{1,2}[a-z_.]{0,8}\\]{0,2}|#[ -~]*)?\n";

#[test]
fn config_parse_never_panics_on_toml_like_strings() {
    run_config_property(
        "toml-like",
        vec(TOML_LINE, 0..24).prop_map(|lines| lines.concat()),
    );
}

#[test]
fn config_parse_never_panics_on_mutated_valid_documents() {
    let valid = valid();
    run_config_property(
        "mutated",
        vec(edit(), 1..8).prop_map(move |edits| {
            edits
                .iter()
                .fold(valid.clone(), |text, edit| apply(&text, edit))
        }),
    );
}
