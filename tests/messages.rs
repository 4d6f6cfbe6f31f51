//! What a user reads when something is wrong: broken configurations run through the
//! built binary's `check`, and bad command lines, each compared with the exact message
//! expected. Every failure is one `failoverd: ` line (a configuration with several
//! problems: a count, then one line each, in file order) and exit code 2. No root, no
//! network; every run of the binary is bounded in time.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

#[path = "common/run.rs"]
mod run;
#[path = "common/sample.rs"]
mod sample;

use run::run_bounded;
use sample::Sample;

/// No run of the binary in these tests should come near this.
const RUN_LIMIT: Duration = Duration::from_secs(20);

/// Runs the binary to completion, killing it if it outlives [`RUN_LIMIT`].
fn failoverd(args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_failoverd"));
    command.args(args);
    run_bounded(command, RUN_LIMIT)
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// A directory with a key file (0600), removed on drop.
struct Dir(PathBuf);

impl Dir {
    fn new() -> Dir {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("failoverd-msg-{}-{n}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        chmod(&dir, 0o755);
        let key = dir.join("authkey");
        std::fs::write(&key, "0123456789abcdef0123456789abcdef\n").unwrap();
        chmod(&key, 0o600);
        Dir(dir)
    }

    /// Writes `bytes` as failoverd.toml (0644) and runs `check` on it as alpha.
    fn check(&self, bytes: &[u8]) -> Output {
        let config = self.0.join("failoverd.toml");
        std::fs::write(&config, bytes).unwrap();
        chmod(&config, 0o644);
        failoverd(&[
            "check",
            "--config",
            config.to_str().unwrap(),
            "--node",
            "alpha",
        ])
    }
}

impl Drop for Dir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

/// The installed example with its key file next to it and no hooks (they would have
/// to exist): a file `check` accepts.
fn sample() -> Sample {
    Sample::new()
        .set("cluster.key_file", "authkey")
        .remove("hooks")
}

/// The 1-based line of the `n`th line (from 0) of `text` that contains `needle`.
fn nth_line(text: &str, needle: &str, n: usize) -> usize {
    let mut found = text.lines().enumerate().filter(|(_, l)| l.contains(needle));
    match found.nth(n) {
        Some((i, _)) => i + 1,
        None => panic!("no line {n} with {needle:?} in\n{text}"),
    }
}

fn line(text: &str, needle: &str) -> usize {
    nth_line(text, needle, 0)
}

/// One broken configuration and what `check` must say about it, with the file's path
/// written as FILE.
struct Case {
    what: &'static str,
    text: String,
    expected: String,
}

/// A case with one problem: `expected` is `line N: KEY: MESSAGE`.
fn one(what: &'static str, text: String, expected: String) -> Case {
    Case {
        what,
        text,
        expected: format!("failoverd: FILE: {expected}\n"),
    }
}

/// A case with several problems, given in the order they must be printed.
fn several(what: &'static str, text: String, problems: &[String]) -> Case {
    let mut expected = format!("failoverd: FILE has {} problems:\n", problems.len());
    for problem in problems {
        expected.push_str(&format!("  {problem}\n"));
    }
    Case {
        what,
        text,
        expected,
    }
}

fn cases() -> Vec<Case> {
    let mut cases = Vec::new();

    // Integers, booleans, durations, addresses and paths in words, not Rust types.
    let t = sample().set("cluster.port", 70000).to_string();
    cases.push(one(
        "a port out of range",
        t.clone(),
        format!(
            "line {}: cluster.port: out of range: found 70000, expected a number from 0 to 65535",
            line(&t, "port = 70000")
        ),
    ));
    let t = sample().set("cluster.port", "\"x\"").to_string();
    cases.push(one(
        "a port that is a string",
        t.clone(),
        format!(
            "line {}: cluster.port: wrong type: found string \"x\", expected a number from 0 to 65535",
            line(&t, "port = \"x\"")
        ),
    ));
    let t = sample().set("node[0].priority", -1).to_string();
    cases.push(one(
        "a negative priority",
        t.clone(),
        format!(
            "line {}: node[0].priority: out of range: found -1, expected a number from 0 to 65535",
            line(&t, "priority = -1")
        ),
    ));
    let t = sample().set("health.failures", -2).to_string();
    cases.push(one(
        "a negative count",
        t.clone(),
        format!(
            "line {}: health.failures: out of range: found -2, expected a number from 0 to 4294967295",
            line(&t, "failures = -2")
        ),
    ));
    let t = sample().set("events.keep", "\"many\"").to_string();
    cases.push(one(
        "a count that is a string",
        t.clone(),
        format!(
            "line {}: events.keep: wrong type: found string \"many\", expected a number from 0 to 4294967295",
            line(&t, "keep = \"many\"")
        ),
    ));
    let t = sample().set("health.link_state", "\"yes\"").to_string();
    cases.push(one(
        "a boolean that is a string",
        t.clone(),
        format!(
            "line {}: health.link_state: wrong type: found string \"yes\", expected true or false",
            line(&t, "link_state = \"yes\"")
        ),
    ));
    let t = sample().set("timing.dead", 1).to_string();
    cases.push(one(
        "a duration without quotes",
        t.clone(),
        format!(
            "line {}: timing.dead: wrong type: found integer `1`, expected a duration such as \"200ms\" or \"2s\"",
            line(&t, "dead = 1")
        ),
    ));
    let t = sample()
        .set(
            "node[1].addresses",
            r#"{ crossover = "198.19.0.2", lan = 12 }"#,
        )
        .to_string();
    cases.push(one(
        "a heartbeat address that is a number",
        t.clone(),
        format!(
            "line {}: node[1].addresses.lan: wrong type: found integer `12`, expected an IP address such as \"198.18.0.11\"",
            line(&t, "lan = 12")
        ),
    ));
    let t = sample().set("vip[0].address", 10).to_string();
    cases.push(one(
        "a VIP that is a number",
        t.clone(),
        format!(
            "line {}: vip[0].address: wrong type: found integer `10`, expected an address and prefix length such as \"198.18.0.10/24\"",
            line(&t, "address = 10")
        ),
    ));
    let t = sample().set("health.gateways", "[1]").to_string();
    cases.push(one(
        "a gateway that is a number",
        t.clone(),
        format!(
            "line {}: health.gateways[0]: wrong type: found integer `1`, expected an IP address such as \"198.18.0.11\"",
            line(&t, "gateways = [1]")
        ),
    ));
    let t = sample()
        .set("health.gateways", "\"198.18.0.1\"")
        .to_string();
    cases.push(one(
        "a gateway list that is a string",
        t.clone(),
        format!(
            "line {}: health.gateways: wrong type: found string \"198.18.0.1\", expected an array",
            line(&t, "gateways = \"198.18.0.1\"")
        ),
    ));
    let t = sample().set("http.listen", 9469).to_string();
    cases.push(one(
        "a listen address that is a port",
        t.clone(),
        format!(
            "line {}: http.listen: wrong type: found integer `9469`, expected an address:port such as \"127.0.0.1:9469\"",
            line(&t, "listen = 9469")
        ),
    ));
    let t = sample().set("cluster.key_file", 5).to_string();
    cases.push(one(
        "a path that is a number",
        t.clone(),
        format!(
            "line {}: cluster.key_file: wrong type: found integer `5`, expected a path (a string)",
            line(&t, "key_file = 5")
        ),
    ));

    // A key of the wrong type is reported once, not as missing or empty besides.
    let t = sample().set("node[0].name", 5).to_string();
    cases.push(one(
        "a node name that is a number",
        t.clone(),
        format!(
            "line {}: node[0].name: wrong type: found integer `5`, expected a string",
            line(&t, "name = 5")
        ),
    ));
    let t = sample().set("link[0].name", 5).to_string();
    cases.push(one(
        "a link name that is a number",
        t.clone(),
        format!(
            "line {}: link[0].name: wrong type: found integer `5`, expected a string",
            line(&t, "name = 5")
        ),
    ));
    let t = sample().set("node[1].addresses", 5).to_string();
    cases.push(one(
        "addresses that are a number",
        t.clone(),
        format!(
            "line {}: node[1].addresses: wrong type: found integer `5`, expected a table such as {{ lan = \"198.18.0.11\" }}",
            line(&t, "addresses = 5")
        ),
    ));
    let t = format!("cluster = 5\n{}", sample().remove("cluster"));
    cases.push(one(
        "a [cluster] that is a number",
        t.clone(),
        "line 1: cluster: wrong type: found integer `5`, expected a table".to_string(),
    ));
    let t = format!("link = 5\n{}", sample().remove("link"));
    cases.push(one(
        "a [[link]] that is a number",
        t.clone(),
        "line 1: link: wrong type: found integer `5`, expected an array".to_string(),
    ));

    // A duplicated key or table is named, with where it was first set.
    let t = sample()
        .to_string()
        .replace("name = \"web\"\n", "name = \"web\"\nname = \"db\"\n");
    cases.push(one(
        "a key set twice",
        t.clone(),
        format!(
            "line {}: cluster.name: is set twice (first on line {})",
            line(&t, "name = \"db\""),
            line(&t, "name = \"web\"")
        ),
    ));
    let t = format!("{}\n[events]\nkeep = 5\n", sample());
    cases.push(one(
        "a table declared twice",
        t.clone(),
        format!(
            "line {}: events: the table [events] is declared twice (first on line {})",
            nth_line(&t, "[events]", 1),
            line(&t, "[events]")
        ),
    ));
    let t = sample()
        .set(
            "node[0].addresses",
            r#"{ lan = "198.18.0.11", lan = "198.18.0.12" }"#,
        )
        .to_string();
    cases.push(one(
        "a key set twice in an inline table",
        t.clone(),
        format!(
            "line {}: node[0].addresses.lan: is set twice",
            line(&t, "lan = \"198.18.0.11\", lan")
        ),
    ));

    // Problems in file order, whichever pass found them.
    let t = sample()
        .set("announce.count", 0)
        .set("timing.interval", 200)
        .set("events.keep", -1)
        .to_string();
    cases.push(several(
        "problems of both passes",
        t.clone(),
        &[
            format!(
                "line {}: timing.interval: wrong type: found integer `200`, expected a duration such as \"200ms\" or \"2s\"",
                line(&t, "interval = 200")
            ),
            format!(
                "line {}: announce.count: must be between 1 and 100",
                line(&t, "count = 0")
            ),
            format!(
                "line {}: events.keep: out of range: found -1, expected a number from 0 to 4294967295",
                line(&t, "keep = -1")
            ),
        ],
    ));

    // An interface name: why it is refused, once.
    let t = sample()
        .set(
            "node[1].interfaces",
            r#"{ eth0 = "enp1s0-very-long-name" }"#,
        )
        .to_string();
    cases.push(one(
        "a node's interface name over 15 bytes",
        t.clone(),
        format!(
            "line {}: node[1].interfaces.eth0: \"enp1s0-very-long-name\" is 21 bytes long; \
             Linux allows at most 15 in an interface name",
            line(&t, "enp1s0-very-long-name")
        ),
    ));
    let t = sample()
        .set("vip[0].interface", "bond0.1234567890")
        .remove("vip[0].label")
        .to_string();
    cases.push(one(
        "a VIP's interface name over 15 bytes on every node",
        t.clone(),
        format!(
            "line {}: vip[0].interface: \"bond0.1234567890\" is 16 bytes long; \
             Linux allows at most 15 in an interface name",
            line(&t, "bond0.1234567890")
        ),
    ));
    let t = sample()
        .set("vip[0].interface", "bond0.1234567890")
        .remove("vip[0].label")
        .set("node[1].interfaces", r#"{ "bond0.1234567890" = "bond0" }"#)
        .to_string();
    cases.push(one(
        "a VIP's interface name over 15 bytes on one node",
        t.clone(),
        format!(
            "line {}: vip[0].interface: \"bond0.1234567890\" is 16 bytes long; \
             Linux allows at most 15 in an interface name (on node \"alpha\")",
            line(&t, "interface = \"bond0.1234567890\"")
        ),
    ));
    let t = sample()
        .set("node[0].interfaces", r#"{ eth0 = "eth 0" }"#)
        .to_string();
    cases.push(one(
        "an interface name with a space",
        t.clone(),
        format!(
            "line {}: node[0].interfaces.eth0: \"eth 0\" holds a space or a control \
             character; Linux does not allow one in an interface name",
            line(&t, "\"eth 0\"")
        ),
    ));

    // A link that mixes IPv4 and IPv6: the address that differs, on its line.
    let t = sample()
        .set(
            "node[1].addresses",
            r#"{ crossover = "198.19.0.2", lan = "2001:db8::12" }"#,
        )
        .to_string();
    cases.push(one(
        "a link with an IPv4 and an IPv6 address",
        t.clone(),
        format!(
            "line {}: node[1].addresses.lan: 2001:db8::12 is an IPv6 address, but node \"alpha\" \
             has an IPv4 address on link \"lan\" (198.18.0.11); all addresses on a link must be \
             of one family",
            line(&t, "2001:db8::12")
        ),
    ));

    // Addresses that contradict each other.
    let t = sample()
        .set("health.gateways", r#"["198.18.0.10"]"#)
        .to_string();
    cases.push(one(
        "a gateway that is the VIP",
        t.clone(),
        format!(
            "line {}: health.gateways[0]: 198.18.0.10 is the address of vip[0]: the node \
             that holds it would ping itself; name a router on the LAN",
            line(&t, "gateways = [")
        ),
    ));
    let t = sample()
        .set("health.gateways", r#"["198.18.0.12"]"#)
        .to_string();
    cases.push(one(
        "a gateway that is a node",
        t.clone(),
        format!(
            "line {}: health.gateways[0]: 198.18.0.12 is node \"beta\"'s address on link \
             \"lan\": that node would ping itself; name a router on the LAN",
            line(&t, "gateways = [")
        ),
    ));
    let t = sample()
        .append("[[check]]\nname = \"router\"\nkind = \"ping\"\ntarget = \"198.18.0.10\"")
        .to_string();
    cases.push(one(
        "a ping check of the VIP",
        t.clone(),
        format!(
            "line {}: check[0].target: 198.18.0.10 is the address of vip[0]: the node \
             that holds it would ping itself; name a router on the LAN",
            line(&t, "target = \"198.18.0.10\"")
        ),
    ));
    let t = sample()
        .set("vip[0].address", "198.18.0.255/24")
        .to_string();
    cases.push(one(
        "a VIP that is its subnet's broadcast address",
        t.clone(),
        format!(
            "line {}: vip[0].address: 198.18.0.255 is the broadcast address of 198.18.0.0/24; \
             a VIP is one of its hosts",
            line(&t, "198.18.0.255/24")
        ),
    ));
    let t = sample()
        .set("health.gateways", r#"["127.0.0.1"]"#)
        .to_string();
    cases.push(one(
        "a gateway that is the host itself",
        t.clone(),
        format!(
            "line {}: health.gateways[0]: 127.0.0.1 is this host itself: every node would \
             ping itself; name a router on the LAN",
            line(&t, "gateways = [")
        ),
    ));
    let t = sample().set("vip[0].address", "198.18.0.11/24").to_string();
    cases.push(one(
        "a VIP that is a node's own address",
        t.clone(),
        format!(
            "line {}: vip[0].address: 198.18.0.11 is node \"alpha\"'s own address, not a virtual one",
            line(&t, "198.18.0.11/24")
        ),
    ));

    cases
}

#[test]
fn each_broken_configuration_gets_the_message_a_person_can_act_on() {
    let dir = Dir::new();
    let mut wrong = Vec::new();
    let all = cases();
    for case in &all {
        let output = dir.check(case.text.as_bytes());
        let path = dir.0.join("failoverd.toml");
        let stderr = text(&output.stderr).replace(path.to_str().unwrap(), "FILE");
        if output.status.code() != Some(2) || stderr != case.expected {
            wrong.push(format!(
                "{}: exit {:?}\n  got:      {stderr:?}\n  expected: {:?}",
                case.what,
                output.status.code(),
                case.expected
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {} cases wrong:\n{}",
        wrong.len(),
        all.len(),
        wrong.join("\n")
    );
}

#[test]
fn invalid_utf8_is_located_by_line_and_byte() {
    let dir = Dir::new();
    let mut bytes = sample().to_string().into_bytes();
    let at = String::from_utf8_lossy(&bytes).find("\"web\"").unwrap() + 2;
    bytes[at] = 0xff;
    let before = &bytes[..at];
    let line = before.iter().filter(|&&b| b == b'\n').count() + 1;
    let column = at
        - before
            .iter()
            .rposition(|&b| b == b'\n')
            .map_or(0, |i| i + 1)
        + 1;
    let output = dir.check(&bytes);
    let path = dir.0.join("failoverd.toml");
    let stderr = text(&output.stderr).replace(path.to_str().unwrap(), "FILE");
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert_eq!(
        stderr,
        format!(
            "failoverd: FILE: line {line}: (document): byte {at} (column {column}) is not UTF-8 \
             (0xff); the file must be UTF-8 text\n"
        )
    );
}

// --- the command line ----------------------------------------------------------------

const STATUS_USAGE: &str = "failoverd status [--config <CONFIG>] [--socket <SOCKET>] [--json] [--watch] [--interval <INTERVAL>]";
const MAINTENANCE_USAGE: &str = "failoverd maintenance [--config <CONFIG>] [--socket <SOCKET>] \
                                 [--no-wait] [--timeout <TIMEOUT>] <SWITCH>";

#[test]
fn bad_arguments_are_one_line_and_exit_2() {
    let cases: &[(&[&str], String)] = &[
        (
            &["status", "--foo"],
            format!("unexpected argument '--foo' found (usage: {STATUS_USAGE})"),
        ),
        // An option that was given is still shown as the option it is.
        (
            &["status", "-c", "x.toml", "--foo"],
            format!("unexpected argument '--foo' found (usage: {STATUS_USAGE})"),
        ),
        (
            &["status", "--interval", "5ms"],
            format!(
                "invalid value '5ms' for '--interval <INTERVAL>': 5ms is too short: at least \
                 100ms (usage: {STATUS_USAGE})"
            ),
        ),
        (
            &["status", "--config"],
            format!(
                "a value is required for '--config <CONFIG>' but none was supplied \
                 (usage: {STATUS_USAGE})"
            ),
        ),
        (
            &["maintenance", "-c", "x.toml"],
            format!(
                "the following required arguments were not provided: <SWITCH> \
                 (usage: {MAINTENANCE_USAGE})"
            ),
        ),
        (
            &["maintenance", "sometimes"],
            format!(
                "invalid value 'sometimes' for '<SWITCH>'; possible values: on, off \
                 (usage: {MAINTENANCE_USAGE})"
            ),
        ),
        (
            &["statu"],
            "unrecognized subcommand 'statu'; tip: a similar subcommand exists: 'status' \
             (usage: failoverd <COMMAND>; failoverd --help lists the commands)"
                .to_string(),
        ),
        (
            &[],
            "no command given (usage: failoverd <COMMAND>; failoverd --help lists the commands)"
                .to_string(),
        ),
    ];
    let mut wrong = Vec::new();
    for (args, expected) in cases {
        let output = failoverd(args);
        let stderr = text(&output.stderr);
        let expected = format!("failoverd: {expected}\n");
        if output.status.code() != Some(2) || stderr != expected || !output.stdout.is_empty() {
            wrong.push(format!(
                "{args:?}: exit {:?}\n  got:      {stderr:?}\n  expected: {expected:?}",
                output.status.code()
            ));
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn help_and_version_still_print_and_exit_0() {
    for args in [
        &["--help"][..],
        &["-h"],
        &["help"],
        &["help", "status"],
        &["status", "--help"],
        &["--version"],
        &["-V"],
    ] {
        let output = failoverd(args);
        let stdout = text(&output.stdout);
        assert_eq!(
            output.status.code(),
            Some(0),
            "{args:?}: {}",
            text(&output.stderr)
        );
        assert!(
            output.stderr.is_empty(),
            "{args:?}: {}",
            text(&output.stderr)
        );
        assert!(
            stdout.starts_with("failoverd ") || stdout.contains("Usage: failoverd"),
            "{args:?}: {stdout}"
        );
    }
}

// --- how the documentation says to create the key ------------------------------------

/// The command after `#   ` on the line of config/failoverd.toml that creates the key.
fn key_command_of_the_example() -> String {
    let example = include_str!("../config/failoverd.toml");
    let line = example
        .lines()
        .find(|l| l.contains("/dev/urandom"))
        .expect("the example says how to create the key");
    line.trim_start_matches('#').trim().to_string()
}

/// Runs `command` with /etc/failoverd/authkey replaced by a file in a fresh directory,
/// under umask 022, and returns the mode of the file it made.
fn mode_made_by(command: &str) -> u32 {
    let dir = Dir::new();
    let key = dir.0.join("new-key");
    let command = command.replace("/etc/failoverd/authkey", key.to_str().unwrap());
    let status = Command::new("/bin/sh")
        .arg("-c")
        .arg(format!("umask 022; {command}"))
        .status()
        .unwrap();
    assert!(status.success(), "{command}");
    let mode = std::fs::metadata(&key).unwrap().permissions().mode() & 0o7777;
    assert!(std::fs::read(&key).unwrap().len() > 16, "{command}");
    mode
}

#[test]
fn the_example_creates_a_key_only_root_can_read() {
    let command = key_command_of_the_example();
    assert_eq!(mode_made_by(&command), 0o600, "{command}");
}

#[test]
fn the_hint_for_a_short_key_creates_a_key_only_root_can_read() {
    let dir = Dir::new();
    std::fs::write(dir.0.join("authkey"), "short\n").unwrap();
    let output = dir.check(sample().to_string().as_bytes());
    let stderr = text(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    let key = dir.0.join("authkey");
    let key = key.to_str().unwrap();
    let (_, hint) = stderr
        .split_once("create one with: ")
        .unwrap_or_else(|| panic!("no command in {stderr}"));
    let command = hint.trim_end().replace(key, "/etc/failoverd/authkey");
    assert_eq!(mode_made_by(&command), 0o600, "{command}");
}
