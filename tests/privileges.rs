//! End-to-end tests of what failoverd needs from its host and gives its children: a
//! heartbeat address that appears after the daemon started (a NIC that comes up late
//! at boot), and hooks and check programs run as `[hooks] user` without capabilities.
//! They need root, like the lab itself.

#![allow(
    clippy::zombie_processes,
    reason = "the Lab kills and reaps the processes it spawned when it is dropped"
)]

mod common;

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::time::Duration;

use common::cluster::*;
use common::{Lab, N1_XO};
use failoverd::machine::LinkState;
use nix::unistd::User;

/// n1's crossover address as the lab configures it.
const N1_XO_CIDR: &str = "198.19.0.1/30";

/// At boot the crossover NIC of n1 comes up two seconds after failoverd: the daemon
/// must neither exit (systemd would soon stop restarting it) nor need a restart once
/// the address is there. `check` says what is missing meanwhile.
#[test]
fn a_heartbeat_address_that_comes_up_late_is_listened_on_once_it_appears() {
    let lab = Lab::new();
    lab.exec_ok("n1", &["ip", "addr", "del", N1_XO_CIDR, "dev", "xo"]);
    let mut cluster = Cluster::launch_with(&lab, |sample| sample);

    let output = check(&lab, &cluster.config);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert_eq!(output.status.code(), Some(0), "{}", describe(&output));
    assert!(
        stdout.contains(&format!(
            "warning: node[0].addresses.crossover: {N1_XO} is not configured on this host"
        )),
        "check does not say the crossover address is missing: {}",
        describe(&output)
    );

    std::thread::sleep(Duration::from_secs(2));
    if let Some(exit) = cluster.alpha.try_wait().expect("poll alpha") {
        panic!(
            "alpha exited ({exit}) while its crossover address was missing\n{}",
            cluster.logs()
        );
    }
    cluster.assert_log_contains("alpha", "is not on this host yet");
    let missing =
        |node: &str| try_status_of(&lab, node).map(|status| status.addresses_missing.clone());
    assert_eq!(
        missing("alpha"),
        Some(vec![("crossover".to_string(), N1_XO.to_string())]),
        "alpha's status does not list its missing crossover address"
    );
    let crossover_up = |node: &str| {
        try_status_of(&lab, node).is_some_and(|status| {
            status.peers.first().is_some_and(|peer| {
                peer.links
                    .iter()
                    .any(|link| link.name == "crossover" && link.state == LinkState::Up)
            })
        })
    };
    assert!(
        !crossover_up("beta"),
        "beta hears alpha on the crossover before alpha has the address\n{}",
        cluster.logs()
    );

    lab.exec_ok("n1", &["ip", "addr", "add", N1_XO_CIDR, "dev", "xo"]);
    cluster.wait_for("heartbeats both ways on the crossover", || {
        crossover_up("alpha") && crossover_up("beta")
    });
    cluster.assert_log_contains(
        "alpha",
        &format!("{N1_XO} (link crossover) is on this host now"),
    );
    assert_eq!(
        missing("alpha"),
        Some(Vec::new()),
        "the address is still listed"
    );
    assert!(
        cluster.alpha.try_wait().expect("poll alpha").is_none(),
        "alpha exited\n{}",
        cluster.logs()
    );
}

/// What a child of the daemon writes about itself: who it runs as, in which groups,
/// with which capabilities, and the user variables it was given.
const WHO_AM_I: &str = r#"{ echo "uid=$(id -u) gid=$(id -g) groups=$(id -G)"; grep CapEff /proc/self/status; grep CapPrm /proc/self/status; grep CapAmb /proc/self/status; echo "USER=$USER HOME=$HOME"; }"#;

fn chmod(path: &Path, mode: u32) {
    fs::set_permissions(path, fs::Permissions::from_mode(mode))
        .unwrap_or_else(|e| panic!("chmod {}: {e}", path.display()));
}

/// With `[hooks] user = "nobody"`, the start hook and an exec check run as nobody,
/// in nobody's groups, with no capability at all, though the daemon is root.
#[test]
fn hooks_and_check_programs_run_as_the_hooks_user_without_capabilities() {
    let lab = Lab::new();
    let nobody = User::from_name("nobody")
        .expect("look up nobody")
        .expect("this test runs hooks as the user nobody, which this host lacks");
    // nobody must reach the scripts through the lab's directory (root's, 0700), and
    // write what it finds in a directory of its own.
    chmod(lab.tmpdir(), 0o711);
    let out = lab.tmpdir().join("out");
    fs::create_dir(&out).expect("create out");
    std::os::unix::fs::chown(&out, Some(nobody.uid.as_raw()), Some(nobody.gid.as_raw()))
        .expect("chown out");
    let hook = lab.write_file(
        "as-user.sh",
        &format!(
            "#!/bin/sh\n{WHO_AM_I} > \"{}/$FAILOVERD_HOOK-$FAILOVERD_NODE\"\n",
            out.display()
        ),
    );
    chmod(&hook, 0o755);
    let probe = lab.write_file(
        "probe.sh",
        &format!(
            "#!/bin/sh\n{WHO_AM_I} > \"{}/check-$FAILOVERD_NODE\"\n",
            out.display()
        ),
    );
    chmod(&probe, 0o755);
    let check_table = format!(
        "[[check]]\nname = \"who\"\nkind = \"exec\"\ncommand = [\"{}\"]\n",
        probe.display()
    );
    let cluster = Cluster::start_with(&lab, |sample| {
        sample
            .set("hooks.start", hook.display())
            .set("hooks.stop", hook.display())
            .set("hooks.fault", hook.display())
            .set("hooks.user", "nobody")
            .append(&check_table)
    });

    let expected_ids = format!(
        "uid={} gid={} groups={}",
        nobody.uid, nobody.gid, nobody.gid
    );
    for file in ["start-alpha", "check-alpha", "check-beta"] {
        let path = out.join(file);
        let mut seen = String::new();
        cluster.wait_for(&format!("{file} written"), || {
            seen = fs::read_to_string(&path).unwrap_or_default();
            seen.contains("HOME=")
        });
        let lines: Vec<&str> = seen.lines().collect();
        assert_eq!(lines[0], expected_ids, "{file}: {seen}");
        for set in ["CapEff", "CapPrm", "CapAmb"] {
            assert!(
                lines.contains(&format!("{set}:\t0000000000000000").as_str()),
                "{file}: {set} not empty: {seen}"
            );
        }
        assert_eq!(
            lines.last().copied(),
            Some(format!("USER=nobody HOME={}", nobody.dir.display()).as_str()),
            "{file}: {seen}"
        );
    }
    let output = check(&lab, &cluster.config);
    let stdout = String::from_utf8_lossy(&output.stdout);
    assert!(
        stdout.contains(&format!(
            "hooks, exec checks and the fencing command run as nobody (uid {}, gid {}), \
             without capabilities",
            nobody.uid, nobody.gid
        )),
        "{}",
        describe(&output)
    );
}
