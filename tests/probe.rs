//! The split-brain guard's packet side on real kernels: ARP probes and duplicate
//! address detection solicitations from n1, answered (or not) by n2's kernel across
//! the lab's bridge, and the watch on n1 seeing n2 claim a VIP.
//!
//! Each test builds its own lab (see tests/common) and runs the code under test on a
//! thread that has joined n1's namespace, so its netlink and packet sockets live
//! there. Frames "from another host" are sent by a thread in n2's namespace. Needs
//! root; as another user the tests fail and say so.

#![allow(
    clippy::zombie_processes,
    reason = "the Lab kills and reaps the processes it spawned when it is dropped"
)]

#[path = "common/capture.rs"]
mod capture;
mod common;

use std::fs::File;
use std::future::Future;
use std::mem::MaybeUninit;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::time::{Duration, Instant};

use capture::capture_socket;
use common::Lab;
use failoverd::daemon::announce::announce;
use failoverd::daemon::probe::{ProbeError, probe, watch};
use failoverd::daemon::vip::{self, VipError};
use failoverd::machine::{Sighting, VipTarget};
use failoverd::wire::arp::{parse_arp, parse_ns, solicited_node};
use nix::sched::{CloneFlags, setns};
use socket2::Socket;
use tokio::sync::mpsc;

/// The VIPs asked about; n1's and n2's LAN interface is eth0.
const V4: Ipv4Addr = Ipv4Addr::new(198, 18, 0, 10);
const V6: Ipv6Addr = Ipv6Addr::new(0xfd00, 0, 0, 0, 0, 0, 0, 0x10);
/// Upper bound for the code under test in any one call, so a probe or watch that
/// never ends fails the test instead of hanging the suite.
const CALL_TIMEOUT: Duration = Duration::from_secs(20);

fn vip(address: impl Into<IpAddr>) -> VipTarget {
    let address = address.into();
    VipTarget {
        address,
        prefix_len: if address.is_ipv4() { 24 } else { 64 },
        interface: "eth0".to_owned(),
        label: None,
    }
}

fn sighting(address: impl Into<IpAddr>, mac: [u8; 6]) -> Sighting {
    Sighting {
        address: address.into(),
        mac,
    }
}

/// Runs `task` to completion on a fresh thread that has joined `host`'s namespace,
/// on a current-thread runtime, so every socket it makes is made there.
fn run_in<T, F, Fut>(lab: &Lab, host: &str, task: F) -> T
where
    T: Send + 'static,
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = T>,
{
    let path = format!("/run/netns/{}", lab.ns(host));
    let thread = std::thread::spawn(move || {
        let ns = File::open(&path).unwrap_or_else(|e| panic!("open {path}: {e}"));
        setns(&ns, CloneFlags::CLONE_NEWNET).unwrap_or_else(|e| panic!("join {path}: {e}"));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("building the runtime");
        runtime.block_on(async move {
            tokio::time::timeout(CALL_TIMEOUT, task())
                .await
                .expect("the task did not finish in time")
        })
    });
    thread
        .join()
        .unwrap_or_else(|panic| std::panic::resume_unwind(panic))
}

/// The MAC address of `host`'s eth0.
fn mac_of(lab: &Lab, host: &str) -> [u8; 6] {
    run_in(lab, host, || async {
        let netlink = vip::connect().await.expect("netlink");
        netlink.link_info("eth0").await.expect("eth0").mac
    })
}

/// Sends one round of gratuitous ARP / unsolicited NA for `addresses` out of `host`'s
/// eth0, claiming them for `mac` (which need not be that host's own).
fn announce_from(lab: &Lab, host: &str, mac: [u8; 6], addresses: &[IpAddr]) {
    let addresses = addresses.to_vec();
    run_in(lab, host, move || async move {
        let netlink = vip::connect().await.expect("netlink");
        let link = netlink.link_info("eth0").await.expect("eth0");
        announce(link.index, mac, &addresses).expect("announce");
    });
}

/// A socket in `host`'s namespace that captures every frame on its eth0.
fn capture_in(lab: &Lab, host: &str) -> Socket {
    run_in(lab, host, || async {
        let index = nix::net::if_::if_nametoindex("eth0").expect("eth0");
        capture_socket(index, Duration::from_millis(20))
    })
}

/// Every frame `socket` receives until `until`, at most 1,000, each with the time it
/// was read.
fn capture(socket: &Socket, until: Instant) -> Vec<(Instant, Vec<u8>)> {
    let mut frames = Vec::new();
    let mut buf = [MaybeUninit::<u8>::uninit(); 2048];
    while Instant::now() < until && frames.len() < 1000 {
        match socket.recv(&mut buf) {
            Ok(len) => frames.push((
                Instant::now(),
                buf[..len]
                    .iter()
                    // SAFETY: recv initialised the first `len` bytes.
                    .map(|byte| unsafe { byte.assume_init() })
                    .collect(),
            )),
            Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(err) => panic!("capture: {err}"),
        }
    }
    frames
}

/// Probes `vips` from n1 and returns what answered and how long the call took.
fn probe_from_n1(
    lab: &Lab,
    vips: Vec<VipTarget>,
    window: Duration,
) -> (Result<Vec<Sighting>, ProbeError>, Duration) {
    run_in(lab, "n1", move || async move {
        let netlink = vip::connect().await.expect("netlink");
        let started = Instant::now();
        let result = probe(&netlink, &vips, window).await;
        (result, started.elapsed())
    })
}

/// RFC 5227 and RFC 4862: a host that has the address answers a probe, with a reply
/// from its own MAC. The probe returns on the first answer, not at the window's end.
#[test]
fn probe_finds_a_vip_that_another_host_has() {
    let lab = Lab::new();
    lab.exec_ok(
        "n2",
        &["ip", "addr", "add", "198.18.0.10/24", "dev", "eth0"],
    );
    // Without DAD, so that n2 holds it at once, as failoverd adds VIPs.
    lab.exec_ok(
        "n2",
        &["ip", "addr", "add", "fd00::10/64", "dev", "eth0", "nodad"],
    );
    let n2 = mac_of(&lab, "n2");
    let window = Duration::from_secs(2);

    for address in [IpAddr::from(V4), IpAddr::from(V6)] {
        let (result, took) = probe_from_n1(&lab, vec![vip(address)], window);
        let found = result.unwrap_or_else(|err| panic!("probing {address}: {err}"));
        assert_eq!(found, vec![sighting(address, n2)], "{address}");
        assert!(took < window / 2, "{address}: answered only after {took:?}");
    }

    // Both at once: whatever has answered when the first answer is in, all from n2.
    let (result, _) = probe_from_n1(&lab, vec![vip(V4), vip(V6)], window);
    let found = result.expect("probing both");
    assert!(!found.is_empty());
    for seen in &found {
        assert!([IpAddr::from(V4), IpAddr::from(V6)].contains(&seen.address));
        assert_eq!(seen.mac, n2, "{seen}");
    }
}

/// Nobody has the VIPs: three probes each, spread over the window, and nothing found
/// when the window ends, not much later. The probes are what the RFCs describe, as
/// captured on the far side.
#[test]
fn probe_of_an_absent_vip_ends_with_the_window() {
    let lab = Lab::new();
    let n1 = mac_of(&lab, "n1");
    let window = Duration::from_millis(300);
    let socket = capture_in(&lab, "n2");
    let capturing =
        std::thread::spawn(move || capture(&socket, Instant::now() + Duration::from_millis(1500)));

    let (result, took) = probe_from_n1(&lab, vec![vip(V4), vip(V6)], window);
    assert_eq!(result.expect("probe"), vec![]);
    assert!(
        took >= window && took < window + Duration::from_millis(200),
        "a probe with a {window:?} window took {took:?}"
    );

    let frames = capturing.join().expect("capture thread");
    let arp_probes: Vec<Instant> = frames
        .iter()
        .filter(|(_, frame)| {
            parse_arp(frame).is_some_and(|arp| {
                arp.target_ip == V4
                    && arp.sender_ip == Ipv4Addr::UNSPECIFIED
                    && arp.sender_mac == n1
                    && arp.target_mac == [0; 6]
                    && arp.eth_dst == [0xff; 6]
            })
        })
        .map(|(at, _)| *at)
        .collect();
    // parse_ns checked the checksum and the rules for a source of ::.
    let solicitations: Vec<Instant> = frames
        .iter()
        .filter(|(_, frame)| {
            parse_ns(frame).is_some_and(|ns| {
                ns.target == V6
                    && ns.src_ip.is_unspecified()
                    && ns.dst_ip == solicited_node(V6)
                    && ns.eth_src == n1
                    && ns.eth_dst == [0x33, 0x33, 0xff, 0, 0, 0x10]
            })
        })
        .map(|(at, _)| *at)
        .collect();
    for (kind, sent) in [
        ("ARP probes", &arp_probes),
        ("solicitations", &solicitations),
    ] {
        assert_eq!(sent.len(), 3, "{kind} seen: {sent:?}");
        // Two thirds of the window from first to last; a burst would be far shorter.
        let spread = sent[2] - sent[0];
        assert!(
            spread >= window / 2 && spread <= window + Duration::from_millis(100),
            "{kind} spread over {spread:?} of a {window:?} window"
        );
    }
}

/// This host's own frames are no conflict: with the VIPs on n1's own eth0, and
/// frames from n1's MAC arriving from the LAN (as a loop or a second NIC of ours
/// would show them), nothing is found. The control: the same frames from n2's MAC
/// are.
#[test]
fn probe_ignores_the_vip_on_our_own_interface() {
    let lab = Lab::new();
    lab.exec_ok(
        "n1",
        &["ip", "addr", "add", "198.18.0.10/24", "dev", "eth0"],
    );
    lab.exec_ok(
        "n1",
        &["ip", "addr", "add", "fd00::10/64", "dev", "eth0", "nodad"],
    );
    let (n1, n2) = (mac_of(&lab, "n1"), mac_of(&lab, "n2"));
    let window = Duration::from_millis(600);
    let addresses = [IpAddr::from(V4), IpAddr::from(V6)];

    let claims_from = |mac: [u8; 6]| {
        let ns = format!("/run/netns/{}", lab.ns("n2"));
        // Announcements every 100 ms through the window, from n2's namespace.
        std::thread::spawn(move || {
            let file = File::open(&ns).unwrap_or_else(|e| panic!("open {ns}: {e}"));
            setns(&file, CloneFlags::CLONE_NEWNET).expect("join n2");
            let index = nix::net::if_::if_nametoindex("eth0").expect("eth0");
            for _ in 0..6 {
                announce(index, mac, &addresses).expect("announce");
                std::thread::sleep(Duration::from_millis(100));
            }
        })
    };

    let sender = claims_from(n1);
    let (result, took) = probe_from_n1(&lab, vec![vip(V4), vip(V6)], window);
    sender.join().expect("sender thread");
    assert_eq!(result.expect("probe"), vec![], "after {took:?}");

    let sender = claims_from(n2);
    let (result, _) = probe_from_n1(&lab, vec![vip(V4), vip(V6)], window);
    sender.join().expect("sender thread");
    let found = result.expect("probe");
    assert!(!found.is_empty(), "n2's claims went unseen");
    assert!(found.iter().all(|seen| seen.mac == n2), "{found:?}");
}

#[test]
fn probe_and_watch_name_a_missing_interface() {
    let lab = Lab::new();
    let missing = VipTarget {
        interface: "nosuch0".to_owned(),
        ..vip(V4)
    };
    let (result, _) = probe_from_n1(
        &lab,
        vec![vip(V6), missing.clone()],
        Duration::from_millis(100),
    );
    let err = result.unwrap_err();
    assert!(
        matches!(&err, ProbeError::Link(VipError::InterfaceNotFound { interface }) if interface == "nosuch0"),
        "{err:?}"
    );
    assert_eq!(err.to_string(), "interface nosuch0 not found");

    let err = run_in(&lab, "n1", move || async move {
        let netlink = vip::connect().await.expect("netlink");
        let (tx, _rx) = mpsc::channel(1);
        watch(&netlink, vec![missing], tx).await.unwrap_err()
    });
    assert!(matches!(err, ProbeError::Link(_)), "{err:?}");
}

/// While n1 holds the VIPs, n2 announcing them is reported, once a second at most;
/// n1's own announcements, and frames with n1's MAC, are not. Dropping the receiver
/// ends the watch.
#[test]
fn watch_reports_another_hosts_claim_but_not_our_own() {
    let lab = Lab::new();
    let (n1, n2) = (mac_of(&lab, "n1"), mac_of(&lab, "n2"));
    let lab = &lab;
    // The watch runs on n1's thread; the announcements come from threads of their
    // own, joined while the watch's frames wait in its sockets.
    std::thread::scope(|scope| {
        let (tx, mut rx) = mpsc::channel(16);
        let watcher = scope.spawn(move || {
            run_in(lab, "n1", move || async move {
                let netlink = vip::connect().await.expect("netlink");
                watch(&netlink, vec![vip(V4), vip(V6)], tx).await
            })
        });
        let next = |rx: &mut mpsc::Receiver<Sighting>, wait: Duration| {
            let deadline = Instant::now() + wait;
            loop {
                match rx.try_recv() {
                    Ok(seen) => return Some(seen),
                    Err(mpsc::error::TryRecvError::Empty) if Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(5));
                    }
                    Err(_) => return None,
                }
            }
        };

        // The watch opens its sockets after a netlink lookup: announce until it
        // reports, so everything after this knows it listens.
        let first = (0..30)
            .find_map(|_| {
                announce_from(lab, "n2", n2, &[V6.into()]);
                next(&mut rx, Duration::from_millis(100))
            })
            .expect("the watch reports n2's advertisement within 3 s");
        assert_eq!(first, sighting(V6, n2));

        announce_from(lab, "n1", n1, &[V4.into()]);
        announce_from(lab, "n2", n1, &[V4.into()]);
        assert_eq!(
            next(&mut rx, Duration::from_millis(300)),
            None,
            "our own MAC"
        );

        // Two announcements, four ARP frames: one report.
        announce_from(lab, "n2", n2, &[V4.into()]);
        announce_from(lab, "n2", n2, &[V4.into()]);
        let reported = Instant::now();
        assert_eq!(
            next(&mut rx, Duration::from_secs(2)),
            Some(sighting(V4, n2))
        );
        assert_eq!(
            next(&mut rx, Duration::from_millis(300)),
            None,
            "rate limit"
        );

        // A second later the same claim is news again.
        std::thread::sleep(Duration::from_millis(1100).saturating_sub(reported.elapsed()));
        announce_from(lab, "n2", n2, &[V4.into()]);
        assert_eq!(
            next(&mut rx, Duration::from_secs(2)),
            Some(sighting(V4, n2))
        );

        drop(rx);
        let ended = watcher.join().expect("watcher thread");
        assert!(
            matches!(ended, Ok(())),
            "the watch ends once its receiver is gone: {ended:?}"
        );
    });
}
