//! The example hooks in config/hooks, run the way failoverd runs them, against fake
//! `systemctl`, `sendmail` and `nsupdate` programs that record how they were called.
//!
//! Each fake is a small shell script in a scratch directory that appends its
//! arguments to `<name>.calls` (one line per call) and its stdin to `<name>.stdin`.
//! The hooks find them through PATH, or through SENDMAIL and NSUPDATE. The hook
//! environment is built from nothing, so settings of the machine running the tests
//! cannot leak in. No root needed.

#[path = "common/fakes.rs"]
mod fakes;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use fakes::{Fakes, stderr, stdout};

const FAKES: [&str; 3] = ["systemctl", "sendmail", "nsupdate"];

/// Records the call, then exits with $FAKE_EXIT (default 0).
const FAKE: &str = r#"#!/bin/sh
name=$(basename "$0")
printf '%s\n' "$*" >>"$FAKE_RECORDS/$name.calls"
cat >>"$FAKE_RECORDS/$name.stdin"
exit "${FAKE_EXIT:-0}"
"#;

fn hooks_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("config/hooks")
}

/// The fakes, and node alpha's hooks run against them.
struct Bench {
    fakes: Fakes,
}

impl Bench {
    fn new(test: &str) -> Bench {
        let fakes: Vec<(&str, &str)> = FAKES.iter().map(|name| (*name, FAKE)).collect();
        Bench {
            fakes: Fakes::new(&format!("hooks-{test}"), &fakes),
        }
    }

    fn fake(&self, name: &str) -> PathBuf {
        self.fakes.dir().join("bin").join(name)
    }

    /// Runs config/hooks/`script` as the `hook` hook of node alpha, with `env` added
    /// to (or replacing) the usual FAILOVERD_* variables.
    fn run(&self, script: &str, hook: &str, env: &[(&str, &str)]) -> Output {
        let (previous, state) = match hook {
            "start" => ("standby", "active"),
            "stop" => ("active", "standby"),
            "fault" => ("standby", "fault"),
            _ => ("standby", "standby"),
        };
        let mut all = vec![
            ("FAILOVERD_HOOK", hook),
            ("FAILOVERD_STATE", state),
            ("FAILOVERD_PREVIOUS_STATE", previous),
            ("FAILOVERD_REASON", "peer beta dead on all links"),
            ("FAILOVERD_NODE", "alpha"),
            ("FAILOVERD_PEER", "beta"),
            ("FAILOVERD_CLUSTER", "web"),
            ("FAILOVERD_VIPS", "198.18.0.10/24 198.18.0.20/24"),
        ];
        all.extend_from_slice(env);
        self.fakes.run(&hooks_dir().join(script), &all)
    }

    fn calls(&self, name: &str) -> Vec<String> {
        self.fakes.calls(name)
    }

    /// Everything the fake `name` read on stdin, over all calls.
    fn stdin(&self, name: &str) -> String {
        fs::read_to_string(self.fakes.record(&format!("{name}.stdin"))).unwrap_or_default()
    }

    fn no_calls(&self) {
        for name in FAKES {
            assert_eq!(self.calls(name), Vec::<String>::new(), "{name} was called");
        }
    }
}

/// The header lines and the body of a message.
fn split_mail(message: &str) -> (Vec<&str>, &str) {
    let (head, body) = message
        .split_once("\n\n")
        .unwrap_or_else(|| panic!("no blank line after the headers:\n{message}"));
    (head.lines().collect(), body)
}

#[test]
fn every_example_is_executable_bash_that_parses() {
    let mut scripts: Vec<PathBuf> = fs::read_dir(hooks_dir())
        .unwrap()
        .map(|entry| entry.unwrap().path())
        .filter(|path| path.extension().is_some_and(|ext| ext == "sh"))
        .collect();
    scripts.sort();
    let names: Vec<String> = scripts
        .iter()
        .map(|path| path.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    for expected in ["mail-alert.sh", "nsupdate.sh", "service.sh"] {
        assert!(
            names.iter().any(|name| name == expected),
            "{expected} missing: {names:?}"
        );
    }
    for script in &scripts {
        let mode = fs::metadata(script).unwrap().permissions().mode();
        assert_eq!(
            mode & 0o111,
            0o111,
            "{} is not executable ({mode:o})",
            script.display()
        );
        let text = fs::read_to_string(script).unwrap();
        assert!(
            text.starts_with("#!/usr/bin/env bash\n") && text.contains("\nset -eu\n"),
            "{}: expected a bash shebang and set -eu",
            script.display()
        );
        let output = Command::new("bash").arg("-n").arg(script).output().unwrap();
        assert!(
            output.status.success(),
            "bash -n {}: {}",
            script.display(),
            stderr(&output)
        );
    }
}

#[test]
fn service_start_hook_starts_nginx_by_default() {
    let bench = Bench::new("service-start");
    let output = bench.run("service.sh", "start", &[]);
    assert!(output.status.success());
    assert_eq!(bench.calls("systemctl"), ["start -- nginx"]);
    assert!(
        stdout(&output).contains("start: standby -> active (peer beta dead on all links)"),
        "the hook says what happened, for failoverd to log"
    );
}

#[test]
fn service_stop_hook_stops_every_service_named() {
    let bench = Bench::new("service-stop");
    let output = bench.run("service.sh", "stop", &[("SERVICE", "haproxy  php8.2-fpm")]);
    assert!(output.status.success());
    assert_eq!(bench.calls("systemctl"), ["stop -- haproxy php8.2-fpm"]);
}

#[test]
fn service_fault_hook_only_logs() {
    let bench = Bench::new("service-fault");
    let output = bench.run("service.sh", "fault", &[]);
    assert!(output.status.success());
    assert!(stdout(&output).contains("fault: standby -> fault"));
    bench.no_calls();
}

#[test]
fn service_hook_reports_a_failed_start() {
    let bench = Bench::new("service-fail");
    let output = bench.run("service.sh", "start", &[("FAKE_EXIT", "5")]);
    assert_eq!(
        output.status.code(),
        Some(5),
        "systemctl's exit code, for failoverd to log"
    );
}

#[test]
fn examples_refuse_to_run_outside_failoverd_or_for_unknown_hooks() {
    for script in ["service.sh", "mail-alert.sh", "nsupdate.sh"] {
        let bench = Bench::new("refuse");
        let unknown = bench.run(script, "restart", &[]);
        assert_eq!(unknown.status.code(), Some(2), "{script} restart");
        assert!(stderr(&unknown).contains("unknown hook"), "{script}");

        let output = bench.run(script, "start", &[("FAILOVERD_HOOK", "")]);
        assert!(!output.status.success(), "{script} without FAILOVERD_HOOK");
        assert!(stderr(&output).contains("run by failoverd"), "{script}");
        bench.no_calls();
    }
}

#[test]
fn mail_alert_on_takeover() {
    let bench = Bench::new("mail-start");
    let sendmail = bench.fake("sendmail");
    let output = bench.run(
        "mail-alert.sh",
        "start",
        &[("SENDMAIL", sendmail.to_str().unwrap())],
    );
    assert!(output.status.success());
    assert_eq!(bench.calls("sendmail"), ["-oi -t"]);

    let message = bench.stdin("sendmail");
    let (headers, body) = split_mail(&message);
    assert!(headers.contains(&"To: root"), "{headers:?}");
    assert!(
        headers.contains(&"Subject: [failoverd] alpha is now active (web)"),
        "{headers:?}"
    );
    for line in [
        "State:   standby -> active",
        "Reason:  peer beta dead on all links",
        "Peer:    beta",
        "VIPs:    198.18.0.10/24 198.18.0.20/24",
        "Cluster: web",
    ] {
        assert!(
            body.lines().any(|l| l == line),
            "{line:?} missing from:\n{body}"
        );
    }
    let host = String::from_utf8(Command::new("uname").arg("-n").output().unwrap().stdout).unwrap();
    assert!(
        body.contains(&format!("Host:    {}", host.trim())),
        "{body}"
    );
    assert!(body.contains("Time:    20"), "{body}");
}

#[test]
fn mail_alert_on_fault_goes_to_mailto() {
    let bench = Bench::new("mail-fault");
    let sendmail = bench.fake("sendmail");
    let output = bench.run(
        "mail-alert.sh",
        "fault",
        &[
            ("SENDMAIL", sendmail.to_str().unwrap()),
            ("MAILTO", "ops@example.org, oncall@example.org"),
            (
                "FAILOVERD_REASON",
                "health checks failing, peer beta is healthier",
            ),
        ],
    );
    assert!(output.status.success());
    let message = bench.stdin("sendmail");
    let (headers, body) = split_mail(&message);
    assert!(
        headers.contains(&"To: ops@example.org, oncall@example.org"),
        "{headers:?}"
    );
    assert!(
        headers.contains(&"Subject: [failoverd] alpha is now fault (web)"),
        "{headers:?}"
    );
    assert!(body.contains("Reason:  health checks failing, peer beta is healthier"));
}

#[test]
fn mail_alert_keeps_headers_on_one_line() {
    let bench = Bench::new("mail-header");
    let sendmail = bench.fake("sendmail");
    let output = bench.run(
        "mail-alert.sh",
        "start",
        &[
            ("SENDMAIL", sendmail.to_str().unwrap()),
            ("FAILOVERD_NODE", "alpha\nBcc: someone@example.org"),
        ],
    );
    assert!(output.status.success());
    let message = bench.stdin("sendmail");
    let (headers, _) = split_mail(&message);
    assert!(
        !headers.iter().any(|h| h.starts_with("Bcc:")),
        "a line break in a value became a header: {headers:?}"
    );
}

#[test]
fn mail_alert_sends_nothing_on_stop() {
    let bench = Bench::new("mail-stop");
    let sendmail = bench.fake("sendmail");
    let output = bench.run(
        "mail-alert.sh",
        "stop",
        &[("SENDMAIL", sendmail.to_str().unwrap())],
    );
    assert!(output.status.success());
    bench.no_calls();
}

#[test]
fn mail_alert_reports_a_failed_sendmail() {
    let bench = Bench::new("mail-fail");
    let sendmail = bench.fake("sendmail");
    let output = bench.run(
        "mail-alert.sh",
        "start",
        &[
            ("SENDMAIL", sendmail.to_str().unwrap()),
            ("FAKE_EXIT", "75"),
        ],
    );
    assert_eq!(output.status.code(), Some(75));
}

const DNS: [(&str, &str); 5] = [
    ("DNS_SERVER", "198.18.0.53"),
    ("DNS_ZONE", "example.org"),
    ("DNS_NAME", "www.example.org"),
    ("DNS_ADDRESS", "198.18.0.11"),
    ("NSUPDATE_KEY", "/etc/failoverd/dns.key"),
];

#[test]
fn nsupdate_start_hook_replaces_the_record() {
    let bench = Bench::new("nsupdate-start");
    // NSUPDATE unset: nsupdate is found on PATH.
    let output = bench.run("nsupdate.sh", "start", &DNS);
    assert!(output.status.success());
    assert_eq!(bench.calls("nsupdate"), ["-k /etc/failoverd/dns.key -t 20"]);
    let input = bench.stdin("nsupdate");
    let lines: Vec<&str> = input.lines().collect();
    assert_eq!(
        lines,
        [
            "server 198.18.0.53",
            "zone example.org",
            "update delete www.example.org A",
            "update add www.example.org 60 A 198.18.0.11",
            "send",
        ]
    );
}

#[test]
fn nsupdate_uses_the_ttl_program_and_record_type_given() {
    let bench = Bench::new("nsupdate-aaaa");
    let nsupdate = bench.fake("nsupdate");
    let mut env = DNS.to_vec();
    env.extend([
        ("DNS_ADDRESS", "fd00::11"),
        ("DNS_TTL", "30"),
        ("NSUPDATE", nsupdate.to_str().unwrap()),
        // The program in NSUPDATE is used even when PATH has none.
        ("PATH", "/usr/bin:/bin"),
    ]);
    let output = bench.run("nsupdate.sh", "start", &env);
    assert!(output.status.success());
    let input = bench.stdin("nsupdate");
    assert!(
        input.contains("update delete www.example.org AAAA\n"),
        "{input}"
    );
    assert!(
        input.contains("update add www.example.org 30 AAAA fd00::11\n"),
        "{input}"
    );
    assert!(input.ends_with("send\n"), "{input}");
}

#[test]
fn nsupdate_does_nothing_on_stop_or_fault() {
    for hook in ["stop", "fault"] {
        let bench = Bench::new("nsupdate-stop");
        let output = bench.run("nsupdate.sh", hook, &DNS);
        assert!(output.status.success(), "{hook}");
        bench.no_calls();
    }
}

#[test]
fn nsupdate_refuses_to_run_without_its_settings() {
    for missing in [
        "DNS_SERVER",
        "DNS_ZONE",
        "DNS_NAME",
        "DNS_ADDRESS",
        "NSUPDATE_KEY",
    ] {
        let bench = Bench::new("nsupdate-missing");
        let env: Vec<(&str, &str)> = DNS.iter().copied().filter(|(k, _)| *k != missing).collect();
        let output = bench.run("nsupdate.sh", "start", &env);
        assert!(!output.status.success(), "without {missing}");
        assert!(
            stderr(&output).contains(missing),
            "{missing}: {}",
            stderr(&output)
        );
        bench.no_calls();
    }
}

#[test]
fn nsupdate_reports_a_failed_update() {
    let bench = Bench::new("nsupdate-fail");
    let mut env = DNS.to_vec();
    env.push(("FAKE_EXIT", "2"));
    let output = bench.run("nsupdate.sh", "start", &env);
    assert_eq!(output.status.code(), Some(2));
}
