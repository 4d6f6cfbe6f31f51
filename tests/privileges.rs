//! End-to-end tests of what failoverd needs from its host and gives its children: a
//! heartbeat address that appears after the daemon started (a NIC that comes up late
//! at boot), and hooks and check programs run as `[hooks] user` without capabilities.
//! They need root, like the lab itself.

#![allow(
    clippy::zombie_processes,
    reason = "the Lab kills and reaps the processes it spawned when it is dropped"
)]

mod common;

use std::time::Duration;

use common::cluster::*;
use common::{Lab, N1_XO};
use failoverd::machine::LinkState;

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
    assert!(
        cluster.alpha.try_wait().expect("poll alpha").is_none(),
        "alpha exited\n{}",
        cluster.logs()
    );
}
