//! The example fencing commands in config/fencing, run the way failoverd runs a
//! fencing command, against fake `ipmitool`, `ssh`, `virsh` and `ip` programs.
//!
//! The fakes are shell scripts in a scratch directory, found through PATH. Each
//! appends how it was called to `<name>.calls` (one line per call) and plays its part
//! from a small state kept in files: the BMC's power, the hypervisor's domain state,
//! and for `ssh` the peer's address table, which the fake `ip` reads and changes when
//! the fake `ssh` runs the remote command (locally, with `sh -c`). So the remote
//! half of ssh-vip.sh runs for real, against a pretend peer;
//! tests/split_brain.rs runs it against a real kernel in the namespace lab. The
//! environment is built from nothing, so settings of the machine running the tests
//! cannot leak in. No root needed.

#[path = "common/fakes.rs"]
mod fakes;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use fakes::{Fakes, stderr, stdout};

const SCRIPTS: [&str; 3] = ["ipmi.sh", "ssh-vip.sh", "libvirt.sh"];

/// A BMC: "power off" succeeds unless $FAKE_OFF_EXIT is set; "power status" says on
/// for the first $FAKE_ON_FOR queries (default 0), then off.
const IPMITOOL: &str = r#"#!/bin/sh
printf '%s\n' "$*" >>"$FAKE_RECORDS/ipmitool.calls"
case "$*" in
*"chassis power off")
    if [ -n "${FAKE_OFF_EXIT:-}" ]; then
        echo "Error: Unable to establish IPMI v2 / RMCP+ session" >&2
        exit "$FAKE_OFF_EXIT"
    fi
    echo "Chassis Power Control: Down/Off"
    ;;
*"chassis power status")
    asked=$(grep -c 'power status' "$FAKE_RECORDS/ipmitool.calls")
    if [ "$asked" -le "${FAKE_ON_FOR:-0}" ]; then
        echo "Chassis Power is on"
    else
        echo "Chassis Power is off"
    fi
    ;;
*)
    echo "fake ipmitool: unexpected arguments $*" >&2
    exit 1
    ;;
esac
"#;

/// ssh: records the options and the destination, fails like ssh (255) for a host
/// in $FAKE_SSH_DOWN, and otherwise runs the remote command with `sh -c`.
const SSH: &str = r#"#!/bin/sh
login=""
while [ $# -gt 0 ]; do
    case $1 in
    -[oiplFJ]) login="$login$1 $2 "; shift 2 ;;
    -*) login="$login$1 "; shift ;;
    *) break ;;
    esac
done
destination=$1
shift
printf '%s\n' "$login$destination" >>"$FAKE_RECORDS/ssh.calls"
for down in ${FAKE_SSH_DOWN:-}; do
    if [ "${destination#*@}" = "$down" ]; then
        echo "ssh: connect to host $down port 22: No route to host" >&2
        exit 255
    fi
done
exec sh -c "$*"
"#;

/// The peer's `ip`, for the commands ssh-vip.sh runs there, over an address table
/// in the file `addrs` ("interface address/prefix" per line). $FAKE_IP_STUCK makes
/// every delete fail and keep the address.
const IP: &str = r#"#!/bin/sh
printf '%s\n' "$*" >>"$FAKE_RECORDS/ip.calls"
table="$FAKE_RECORDS/addrs"
touch "$table"
if [ "$1 $2 $3 $4" = "-o addr show to" ]; then
    while read -r dev cidr; do
        if [ "${cidr%/*}" = "$5" ]; then
            printf '2: %s    inet %s scope global %s\\       valid_lft forever preferred_lft forever\n' \
                "$dev" "$cidr" "$dev"
        fi
    done <"$table"
elif [ "$1 $2" = "addr del" ] && [ "$4" = dev ]; then
    if [ -n "${FAKE_IP_STUCK:-}" ]; then
        echo "RTNETLINK answers: Operation not permitted" >&2
        exit 2
    fi
    if ! grep -qx "$5 $3" "$table"; then
        echo "RTNETLINK answers: Cannot assign requested address" >&2
        exit 2
    fi
    grep -vx "$5 $3" "$table" >"$table.new" || true
    mv "$table.new" "$table"
else
    echo "fake ip: unexpected arguments $*" >&2
    exit 1
fi
"#;

/// A hypervisor with one domain, whose state is in the file `domstate` (from
/// $FAKE_DOMSTATE at first, default "running"). $FAKE_DESTROY_FAILS makes destroy
/// fail and leave the domain as it is; $FAKE_UNREACHABLE fails every call.
const VIRSH: &str = r#"#!/bin/sh
printf '%s\n' "$*" >>"$FAKE_RECORDS/virsh.calls"
state_file="$FAKE_RECORDS/domstate"
[ -e "$state_file" ] || printf '%s\n' "${FAKE_DOMSTATE:-running}" >"$state_file"
if [ -n "${FAKE_UNREACHABLE:-}" ]; then
    echo "error: failed to connect to the hypervisor" >&2
    exit 1
fi
case $3 in
destroy)
    if [ -n "${FAKE_DESTROY_FAILS:-}" ]; then
        echo "error: Failed to destroy domain '$4'" >&2
        exit 1
    fi
    if [ "$(cat "$state_file")" = "shut off" ]; then
        echo "error: Requested operation is not valid: domain is not running" >&2
        exit 1
    fi
    echo "shut off" >"$state_file"
    echo "Domain '$4' destroyed"
    ;;
domstate)
    cat "$state_file"
    echo
    ;;
*)
    echo "fake virsh: unexpected arguments $*" >&2
    exit 1
    ;;
esac
"#;

const FAKES: [(&str, &str); 4] = [
    ("ipmitool", IPMITOOL),
    ("ssh", SSH),
    ("ip", IP),
    ("virsh", VIRSH),
];

/// alpha fences beta, whose heartbeat addresses are these, in link order.
const PEER_ADDRESSES: &str = "198.19.0.2 198.18.0.12";
const VIPS: &str = "198.18.0.10/24 198.18.0.20/24";
const ANSWERED_BY: &str = "52:54:00:12:34:56";

fn fencing_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("config/fencing")
}

/// The fakes, and node alpha's fencing commands run against them.
struct Bench {
    fakes: Fakes,
}

impl Bench {
    fn new(test: &str) -> Bench {
        Bench {
            fakes: Fakes::new(&format!("fencing-{test}"), &FAKES),
        }
    }

    /// A file in the scratch directory, e.g. a password file.
    fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.fakes.dir().join(name);
        fs::write(&path, text).unwrap();
        path
    }

    /// The peer's address table for the fake `ip`.
    fn peer_addresses(&self, lines: &[&str]) {
        let mut text = lines.join("\n");
        text.push('\n');
        fs::write(self.fakes.record("addrs"), text).unwrap();
    }

    fn peer_table(&self) -> Vec<String> {
        fs::read_to_string(self.fakes.record("addrs"))
            .unwrap_or_default()
            .lines()
            .map(str::to_string)
            .collect()
    }

    /// Runs config/fencing/`script` as node alpha fencing beta, with `env` added to
    /// (or replacing) the FAILOVERD_* variables failoverd gives a fencing command.
    fn run(&self, script: &str, env: &[(&str, &str)]) -> Output {
        let mut all = vec![
            ("FAILOVERD_HOOK", "fence"),
            ("FAILOVERD_NODE", "alpha"),
            ("FAILOVERD_CLUSTER", "web"),
            ("FAILOVERD_PEER", "beta"),
            ("FAILOVERD_PEER_ADDRESSES", PEER_ADDRESSES),
            ("FAILOVERD_VIPS", VIPS),
            ("FAILOVERD_REASON", "peer beta dead on all links"),
            ("FAILOVERD_ANSWERED_BY", ANSWERED_BY),
        ];
        all.extend_from_slice(env);
        self.fakes.run(&fencing_dir().join(script), &all)
    }

    fn calls(&self, name: &str) -> Vec<String> {
        self.fakes.calls(name)
    }

    fn no_calls(&self) {
        for (name, _) in FAKES {
            assert_eq!(self.calls(name), Vec::<String>::new(), "{name} was called");
        }
    }
}

#[test]
fn every_fencing_example_is_executable_bash_that_parses_and_documents_itself() {
    let mut found: Vec<String> = fs::read_dir(fencing_dir())
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".sh"))
        .collect();
    found.sort();
    let mut expected = SCRIPTS.map(String::from).to_vec();
    expected.sort();
    assert_eq!(found, expected, "the scripts in config/fencing");
    for script in SCRIPTS {
        let path = fencing_dir().join(script);
        let mode = fs::metadata(&path).unwrap().permissions().mode();
        assert_eq!(mode & 0o111, 0o111, "{script} is not executable ({mode:o})");
        let text = fs::read_to_string(&path).unwrap();
        assert!(
            text.starts_with("#!/usr/bin/env bash\n") && text.contains("\nset -eu\n"),
            "{script}: expected a bash shebang and set -eu"
        );
        // The header says how to install it and what each exit code means.
        for needle in [
            "[fencing]",
            "command = \"/etc/failoverd/fencing/",
            "Exit codes:",
            "#   0  ",
            "#   1  ",
            "#   2  ",
        ] {
            assert!(text.contains(needle), "{script}'s header lacks {needle:?}");
        }
        let output = Command::new("bash").arg("-n").arg(&path).output().unwrap();
        assert!(
            output.status.success(),
            "bash -n {script}: {}",
            stderr(&output)
        );
    }
}

#[test]
fn fencing_examples_refuse_to_run_outside_failoverd_or_as_a_hook() {
    for script in SCRIPTS {
        let bench = Bench::new("refuse");
        let output = bench.run(script, &[("FAILOVERD_HOOK", "")]);
        assert_eq!(
            output.status.code(),
            Some(2),
            "{script} without FAILOVERD_HOOK"
        );
        assert!(stderr(&output).contains("run by failoverd"), "{script}");

        let output = bench.run(script, &[("FAILOVERD_HOOK", "start")]);
        assert_eq!(output.status.code(), Some(2), "{script} as a start hook");
        assert!(stderr(&output).contains("unknown hook"), "{script}");

        let output = bench.run(script, &[("FAILOVERD_PEER", "")]);
        assert_eq!(output.status.code(), Some(2), "{script} without a peer");
        assert!(stderr(&output).contains("FAILOVERD_PEER"), "{script}");
        bench.no_calls();
    }
}

// --- ipmi.sh ---------------------------------------------------------------------

/// BMC settings for beta, the password in a file.
fn ipmi_env(bench: &Bench) -> Vec<(&'static str, String)> {
    let password = bench.write("ipmi-password", "s3cret-bmc-password\n");
    vec![
        ("IPMI_HOST_BETA", "10.0.9.12".into()),
        ("IPMI_USER", "failoverd".into()),
        ("IPMI_PASSWORD_FILE", password.display().to_string()),
        ("IPMI_CONFIRM", "0".into()),
    ]
}

fn borrowed<'a>(env: &'a [(&'static str, String)]) -> Vec<(&'static str, &'a str)> {
    env.iter().map(|(k, v)| (*k, v.as_str())).collect()
}

#[test]
fn ipmi_powers_the_peer_off_and_confirms_it() {
    let bench = Bench::new("ipmi-off");
    let env = ipmi_env(&bench);
    let output = bench.run("ipmi.sh", &borrowed(&env));
    assert_eq!(output.status.code(), Some(0));
    let file = bench
        .fakes
        .dir()
        .join("ipmi-password")
        .display()
        .to_string();
    let login = format!("-I lanplus -H 10.0.9.12 -U failoverd -f {file}");
    assert_eq!(
        bench.calls("ipmitool"),
        [
            format!("{login} chassis power off"),
            format!("{login} chassis power status")
        ]
    );
    let out = stdout(&output);
    assert!(
        out.contains("fencing beta: power off through its BMC 10.0.9.12"),
        "{out}"
    );
    assert!(
        out.contains(&format!("still answered by {ANSWERED_BY}")),
        "{out}"
    );
    assert!(out.contains("powered off (Chassis Power is off)"), "{out}");
}

#[test]
fn ipmi_takes_the_peers_own_settings_by_its_mangled_name() {
    let bench = Bench::new("ipmi-names");
    let mut env = ipmi_env(&bench);
    let own = bench
        .write("db-2-password", "other\n")
        .display()
        .to_string();
    env.extend([
        ("FAILOVERD_PEER", "db-2.site".into()),
        ("IPMI_HOST_DB_2_SITE", "bmc-db-2".into()),
        ("IPMI_USER_DB_2_SITE", "admin".into()),
        ("IPMI_PASSWORD_FILE_DB_2_SITE", own.clone()),
        ("IPMI_INTERFACE", "lan".into()),
    ]);
    let output = bench.run("ipmi.sh", &borrowed(&env));
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(
        bench.calls("ipmitool")[0],
        format!("-I lan -H bmc-db-2 -U admin -f {own} chassis power off")
    );
}

#[test]
fn ipmi_waits_for_the_bmc_to_report_the_power_off() {
    let bench = Bench::new("ipmi-wait");
    let mut env = ipmi_env(&bench);
    env.extend([("IPMI_CONFIRM", "10".into()), ("FAKE_ON_FOR", "1".into())]);
    let output = bench.run("ipmi.sh", &borrowed(&env));
    assert_eq!(output.status.code(), Some(0));
    let statuses = bench
        .calls("ipmitool")
        .iter()
        .filter(|c| c.ends_with("power status"))
        .count();
    assert_eq!(statuses, 2, "asked once while on, once more when off");
}

#[test]
fn ipmi_fails_when_the_power_is_not_reported_off_in_time() {
    let bench = Bench::new("ipmi-on");
    let mut env = ipmi_env(&bench);
    env.push(("FAKE_ON_FOR", "1000".into()));
    let output = bench.run("ipmi.sh", &borrowed(&env));
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("did not report the power off within 0s"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn ipmi_fails_when_the_bmc_refuses_the_power_off() {
    let bench = Bench::new("ipmi-refused");
    let mut env = ipmi_env(&bench);
    env.push(("FAKE_OFF_EXIT", "1".into()));
    let output = bench.run("ipmi.sh", &borrowed(&env));
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("refused or did not answer the power off"));
    // No status is believed after a failed power off.
    assert_eq!(bench.calls("ipmitool").len(), 1);
}

#[test]
fn ipmi_refuses_to_run_without_its_settings() {
    for (missing, named) in [
        ("IPMI_HOST_BETA", "IPMI_HOST_BETA"),
        ("IPMI_USER", "IPMI_USER_BETA"),
        ("IPMI_PASSWORD_FILE", "IPMI_PASSWORD_FILE_BETA"),
    ] {
        let bench = Bench::new("ipmi-missing");
        let env: Vec<_> = ipmi_env(&bench)
            .into_iter()
            .filter(|(k, _)| *k != missing)
            .collect();
        let output = bench.run("ipmi.sh", &borrowed(&env));
        assert_eq!(output.status.code(), Some(2), "without {missing}");
        assert!(
            stderr(&output).contains(named),
            "{missing}: {}",
            stderr(&output)
        );
        bench.no_calls();
    }
    let bench = Bench::new("ipmi-no-file");
    let mut env = ipmi_env(&bench);
    env.push(("IPMI_PASSWORD_FILE", "/nonexistent/password".into()));
    let output = bench.run("ipmi.sh", &borrowed(&env));
    assert_eq!(output.status.code(), Some(2));
    assert!(stderr(&output).contains("/nonexistent/password"));
    bench.no_calls();
}

// --- ssh-vip.sh ------------------------------------------------------------------

/// beta's address table: both VIPs (one on another interface, with a label) and
/// its own LAN address, which must stay.
const BETA_TABLE: [&str; 3] = [
    "eth0 198.18.0.12/24",
    "eth0 198.18.0.10/24",
    "enp2s0 198.18.0.20/24",
];

#[test]
fn ssh_vip_removes_every_vip_from_the_peer_at_its_first_address() {
    let bench = Bench::new("ssh-vip");
    bench.peer_addresses(&BETA_TABLE);
    let output = bench.run("ssh-vip.sh", &[]);
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(
        bench.calls("ssh"),
        ["-o BatchMode=yes -o ConnectTimeout=5 root@198.19.0.2"]
    );
    assert_eq!(bench.peer_table(), ["eth0 198.18.0.12/24"]);
    let deletes: Vec<String> = bench
        .calls("ip")
        .into_iter()
        .filter(|c| c.starts_with("addr del"))
        .collect();
    assert_eq!(
        deletes,
        [
            "addr del 198.18.0.10/24 dev eth0",
            "addr del 198.18.0.20/24 dev enp2s0"
        ]
    );
    let out = stdout(&output);
    assert!(
        out.contains("gone 198.18.0.10/24") && out.contains("gone 198.18.0.20/24"),
        "{out}"
    );
    assert!(
        out.contains("every VIP is gone from it (via 198.19.0.2)"),
        "{out}"
    );
}

#[test]
fn ssh_vip_counts_a_vip_already_gone_as_removed() {
    let bench = Bench::new("ssh-vip-gone");
    bench.peer_addresses(&["eth0 198.18.0.12/24", "eth0 198.18.0.10/24"]);
    let output = bench.run("ssh-vip.sh", &[]);
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(bench.peer_table(), ["eth0 198.18.0.12/24"]);
}

#[test]
fn ssh_vip_tries_the_peers_addresses_in_link_order() {
    let bench = Bench::new("ssh-vip-second");
    bench.peer_addresses(&BETA_TABLE);
    let output = bench.run("ssh-vip.sh", &[("FAKE_SSH_DOWN", "198.19.0.2")]);
    assert_eq!(output.status.code(), Some(0));
    let hosts: Vec<String> = bench
        .calls("ssh")
        .iter()
        .map(|c| c.rsplit(' ').next().unwrap().to_string())
        .collect();
    assert_eq!(hosts, ["root@198.19.0.2", "root@198.18.0.12"]);
    assert!(stderr(&output).contains("no login at 198.19.0.2"));
    assert_eq!(bench.peer_table(), ["eth0 198.18.0.12/24"]);
}

#[test]
fn ssh_vip_fails_when_no_address_takes_the_login() {
    let bench = Bench::new("ssh-vip-down");
    bench.peer_addresses(&BETA_TABLE);
    let output = bench.run("ssh-vip.sh", &[("FAKE_SSH_DOWN", PEER_ADDRESSES)]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("failed on every address (198.19.0.2 198.18.0.12)"),
        "{}",
        stderr(&output)
    );
    assert_eq!(bench.calls("ssh").len(), 2);
    assert_eq!(bench.peer_table(), BETA_TABLE);
}

#[test]
fn ssh_vip_fails_while_a_vip_stays_on_the_peer() {
    let bench = Bench::new("ssh-vip-stuck");
    bench.peer_addresses(&BETA_TABLE);
    let output = bench.run("ssh-vip.sh", &[("FAKE_IP_STUCK", "1")]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stdout(&output).contains("left 198.18.0.10/24"),
        "{}",
        stdout(&output)
    );
    assert!(stderr(&output).contains("a VIP is still on it after the delete"));
    assert_eq!(bench.peer_table(), BETA_TABLE);
}

#[test]
fn ssh_vip_logs_in_as_the_user_with_the_options_given() {
    let bench = Bench::new("ssh-vip-options");
    bench.peer_addresses(&BETA_TABLE);
    let output = bench.run(
        "ssh-vip.sh",
        &[
            ("FENCE_SSH_USER", "fence"),
            ("FENCE_SSH_TIMEOUT", "2"),
            ("FENCE_SSH_OPTIONS", "-i /etc/failoverd/fence_key  -p 2222"),
        ],
    );
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(
        bench.calls("ssh"),
        [
            "-o BatchMode=yes -o ConnectTimeout=2 -i /etc/failoverd/fence_key -p 2222 fence@198.19.0.2"
        ]
    );
}

#[test]
fn ssh_vip_sends_nothing_but_addresses_to_the_peers_shell() {
    for (key, value, named) in [
        (
            "FAILOVERD_VIPS",
            "198.18.0.10/24;reboot",
            "is not address/prefix",
        ),
        ("FAILOVERD_VIPS", "$(reboot)/24", "is not address/prefix"),
        ("FAILOVERD_PEER_ADDRESSES", "", "FAILOVERD_PEER_ADDRESSES"),
        ("FENCE_SSH_TIMEOUT", "soon", "FENCE_SSH_TIMEOUT"),
    ] {
        let bench = Bench::new("ssh-vip-refuse");
        let output = bench.run("ssh-vip.sh", &[(key, value)]);
        assert_eq!(output.status.code(), Some(2), "{key}={value}");
        assert!(
            stderr(&output).contains(named),
            "{key}: {}",
            stderr(&output)
        );
        bench.no_calls();
    }
}

#[test]
fn ssh_vip_with_no_vips_has_nothing_to_do() {
    let bench = Bench::new("ssh-vip-none");
    let output = bench.run("ssh-vip.sh", &[("FAILOVERD_VIPS", "")]);
    assert_eq!(output.status.code(), Some(0));
    bench.no_calls();
}

// --- libvirt.sh ------------------------------------------------------------------

const URI: &str = "qemu+ssh://fence@hv2.example.org/system";

#[test]
fn libvirt_destroys_the_peers_domain_and_confirms_it_is_off() {
    let bench = Bench::new("libvirt");
    let output = bench.run(
        "libvirt.sh",
        &[("LIBVIRT_DOMAIN_BETA", "web-beta"), ("LIBVIRT_URI", URI)],
    );
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(
        bench.calls("virsh"),
        [
            format!("-c {URI} destroy web-beta"),
            format!("-c {URI} domstate web-beta")
        ]
    );
    assert!(stdout(&output).contains("domain web-beta is shut off"));
}

#[test]
fn libvirt_takes_the_peers_own_hypervisor_first() {
    let bench = Bench::new("libvirt-own");
    let output = bench.run(
        "libvirt.sh",
        &[
            ("FAILOVERD_PEER", "db-2"),
            ("LIBVIRT_DOMAIN_DB_2", "db2"),
            ("LIBVIRT_URI_DB_2", "qemu+ssh://hv3/system"),
            ("LIBVIRT_URI", URI),
        ],
    );
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(
        bench.calls("virsh")[0],
        "-c qemu+ssh://hv3/system destroy db2"
    );
}

#[test]
fn libvirt_counts_a_domain_already_off_as_fenced() {
    let bench = Bench::new("libvirt-off");
    let output = bench.run(
        "libvirt.sh",
        &[
            ("LIBVIRT_DOMAIN_BETA", "web-beta"),
            ("LIBVIRT_URI", URI),
            ("FAKE_DOMSTATE", "shut off"),
        ],
    );
    assert_eq!(output.status.code(), Some(0));
    assert_eq!(bench.calls("virsh").len(), 2);
}

#[test]
fn libvirt_fails_while_the_domain_runs_or_the_hypervisor_is_unreachable() {
    for (fault, said) in [
        ("FAKE_DESTROY_FAILS", "domain web-beta is still \"running\""),
        ("FAKE_UNREACHABLE", "cannot read the state of web-beta"),
    ] {
        let bench = Bench::new("libvirt-fail");
        let output = bench.run(
            "libvirt.sh",
            &[
                ("LIBVIRT_DOMAIN_BETA", "web-beta"),
                ("LIBVIRT_URI", URI),
                (fault, "1"),
            ],
        );
        assert_eq!(output.status.code(), Some(1), "{fault}");
        assert!(
            stderr(&output).contains(said),
            "{fault}: {}",
            stderr(&output)
        );
    }
}

#[test]
fn libvirt_refuses_to_run_without_its_settings() {
    for (env, named) in [
        (vec![("LIBVIRT_URI", URI)], "LIBVIRT_DOMAIN_BETA"),
        (
            vec![("LIBVIRT_DOMAIN_BETA", "web-beta")],
            "LIBVIRT_URI_BETA",
        ),
    ] {
        let bench = Bench::new("libvirt-missing");
        let output = bench.run("libvirt.sh", &env);
        assert_eq!(output.status.code(), Some(2), "{env:?}");
        assert!(stderr(&output).contains(named), "{}", stderr(&output));
        bench.no_calls();
    }
}
