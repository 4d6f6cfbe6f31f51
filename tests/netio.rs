//! What only the kernel can show: netlink address handling, announcements on
//! the wire and ICMP probes, each test in its own anonymous network namespace.
//!
//! These tests need root (CAP_SYS_ADMIN for the namespace, CAP_NET_ADMIN and
//! CAP_NET_RAW inside it) and fail, not skip, without it. They never touch
//! the host's namespace: every test thread unshares its own before creating
//! any socket, and only 198.18.0.0/15 and fd00::/8 addresses are used.

#[path = "common/capture.rs"]
mod capture;

use std::future::Future;
use std::mem::MaybeUninit;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use capture::capture_socket;

use failoverd::daemon::announce::{AnnounceError, announce};
use failoverd::daemon::executor::Executor;
use failoverd::daemon::gateway::{PingError, Pinger, ProbeResult, run_prober};
use failoverd::daemon::host::{Host, Kernel};
use failoverd::daemon::send::Sender;
use failoverd::daemon::vip::{self, AddOutcome, RemoveOutcome, VipError};
use failoverd::machine::{Effect, EffectId, Outcome, VipTarget};
use failoverd::wire::arp::{ArpOp, parse_arp, parse_na};
use futures_util::TryStreamExt;
use netlink_packet_route::address::{AddressAttribute, AddressFlags, AddressMessage};
use netlink_packet_route::route::RouteType;
use nix::sched::{CloneFlags, unshare};
use rtnetlink::{Handle, LinkUnspec, LinkVeth, RouteMessageBuilder};
use socket2::Socket;

/// Upper bound for any one test, so a kernel that never answers fails the
/// test instead of hanging the suite.
const TEST_TIMEOUT: Duration = Duration::from_secs(30);
/// Locally administered, so it cannot clash with real hardware.
const MAC: [u8; 6] = [0x02, 0xfa, 0x11, 0x0e, 0x00, 0x01];

/// Runs `test` on a fresh thread inside a private network namespace, on a
/// current-thread runtime so every task and socket stays on that thread.
fn in_netns<F, Fut>(test: F)
where
    F: FnOnce() -> Fut + Send + 'static,
    Fut: Future<Output = ()>,
{
    let thread = std::thread::spawn(move || {
        assert!(
            nix::unistd::geteuid().is_root(),
            "this test must run as root: it creates a private network namespace \
             and raw sockets (run `cargo test` as root)"
        );
        // Per thread: the rest of the test process stays where it was.
        unshare(CloneFlags::CLONE_NEWNET)
            .unwrap_or_else(|err| panic!("unshare(CLONE_NEWNET) failed: {err}"));
        let runtime = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .expect("building the test runtime");
        runtime.block_on(async move {
            tokio::time::timeout(TEST_TIMEOUT, test())
                .await
                .expect("test did not finish in time");
        });
    });
    if let Err(panic) = thread.join() {
        std::panic::resume_unwind(panic);
    }
}

/// A second netlink connection, for setting up links and for checking the
/// kernel's view independently of the code under test.
fn rtnl() -> Handle {
    let (connection, handle, _) = rtnetlink::new_connection().expect("netlink socket");
    tokio::spawn(connection);
    handle
}

async fn set_up(handle: &Handle, name: &str) {
    handle
        .link()
        .set(LinkUnspec::new_with_name(name).up().build())
        .execute()
        .await
        .unwrap_or_else(|err| panic!("setting {name} up: {err}"));
}

/// A veth pair with both ends up, so it has carrier, and `name` using `mac`.
///
/// Veth rather than dummy links: some kernels (this project's CI VM among
/// them) are built without the dummy driver, and veth also gives a far end
/// to capture on.
async fn add_veth(handle: &Handle, name: &str, peer: &str, mac: [u8; 6]) {
    handle
        .link()
        .add(LinkVeth::new(name, peer).address(mac.to_vec()).up().build())
        .execute()
        .await
        .unwrap_or_else(|err| panic!("adding veth {name}/{peer}: {err}"));
    set_up(handle, peer).await;
}

/// The kernel's record of `address`, if the namespace has it.
async fn find_address(handle: &Handle, address: IpAddr) -> Option<AddressMessage> {
    let mut stream = handle.address().get().set_address_filter(address).execute();
    let mut found = None;
    while let Some(message) = stream.try_next().await.expect("address dump") {
        found = Some(message);
    }
    found
}

fn flags_of(message: &AddressMessage) -> AddressFlags {
    message
        .attributes
        .iter()
        .find_map(|attribute| match attribute {
            AddressAttribute::Flags(flags) => Some(*flags),
            _ => None,
        })
        .unwrap_or(AddressFlags::empty())
}

/// Whether the daemon's host finds `vip` on its interface.
async fn present(vip: &VipTarget) -> bool {
    let host = Kernel::connect().await.expect("netlink");
    let mut answers = host.vips_present(std::slice::from_ref(vip)).await;
    answers.pop().expect("one answer").expect("looked up")
}

fn spec(address: &str, prefix_len: u8, interface: &str, label: Option<&str>) -> VipTarget {
    VipTarget {
        address: address.parse().expect("test address"),
        prefix_len,
        interface: interface.to_owned(),
        label: label.map(str::to_owned),
    }
}

#[test]
fn vip_add_remove_is_idempotent_and_sets_label() {
    in_netns(|| async {
        let handle = rtnl();
        add_veth(&handle, "vip0", "peer0", MAC).await;
        let netlink = vip::connect().await.expect("netlink");
        let vip = spec("198.18.0.10", 24, "vip0", Some("vip0:ha"));

        assert!(!present(&vip).await);
        assert_eq!(netlink.add(&vip).await.unwrap(), AddOutcome::Added);
        assert!(present(&vip).await);

        let message = find_address(&handle, vip.address)
            .await
            .expect("kernel lists the vip");
        assert_eq!(message.header.prefix_len, 24);
        assert!(
            message
                .attributes
                .contains(&AddressAttribute::Label("vip0:ha".to_owned())),
            "label missing: {:?}",
            message.attributes
        );

        assert_eq!(netlink.add(&vip).await.unwrap(), AddOutcome::AlreadyPresent);
        assert_eq!(netlink.remove(&vip).await.unwrap(), RemoveOutcome::Removed);
        assert!(!present(&vip).await);
        assert!(find_address(&handle, vip.address).await.is_none());
        assert_eq!(netlink.remove(&vip).await.unwrap(), RemoveOutcome::Absent);
    });
}

/// At start the daemon looks for every configured VIP at once. One list of the
/// host's addresses answers for all of them: lookups of their own, in flight
/// together on the one netlink socket, were refused by the kernel (EBUSY, one
/// dump at a time per socket), and each refused lookup counted as a VIP found.
#[test]
fn the_vips_at_start_are_found_exactly_however_many() {
    in_netns(|| async {
        let handle = rtnl();
        add_veth(&handle, "vip0", "peer0", MAC).await;
        let netlink = vip::connect().await.expect("netlink");
        let mut vips: Vec<VipTarget> = (1..=200)
            .map(|i| {
                spec(
                    &format!("198.18.{}.{}", i / 100, 1 + i % 100),
                    16,
                    "vip0",
                    None,
                )
            })
            .collect();
        for vip in vips.iter().step_by(3) {
            assert_eq!(netlink.add(vip).await.unwrap(), AddOutcome::Added);
        }
        let mut expected: Vec<usize> = (0..vips.len()).step_by(3).collect();
        // The same address with another prefix length is another VIP, not there.
        let mut other_length = vips[0].clone();
        other_length.prefix_len = 24;
        vips.push(other_length);
        // An IPv6 VIP is found in the same list.
        let v6 = spec("fd00::10", 64, "vip0", None);
        assert_eq!(netlink.add(&v6).await.unwrap(), AddOutcome::Added);
        expected.push(vips.len());
        vips.push(v6);
        // Nothing is on an interface that does not exist.
        vips.push(spec("198.18.3.1", 24, "nosuch0", None));

        let (done, mut outcomes) = tokio::sync::mpsc::unbounded_channel();
        let host = Kernel::connect().await.expect("netlink");
        let jobs = Executor::new(host, done).spawn();
        assert!(jobs.queue(EffectId(1), Effect::FindStale { vips }));
        let (id, outcome) = outcomes.recv().await.expect("an outcome");
        assert_eq!(id, EffectId(1));
        assert_eq!(outcome, Outcome::Present(expected));
    });
}

/// What `failoverd check` compares VIPs with: every interface by name, with its
/// addresses and their prefix lengths, one without any address too.
#[test]
fn the_hosts_interfaces_are_listed_with_their_prefixes() {
    in_netns(|| async {
        let handle = rtnl();
        add_veth(&handle, "vip0", "peer0", MAC).await;
        let netlink = vip::connect().await.expect("netlink");
        for vip in [
            spec("198.18.0.11", 24, "vip0", None),
            spec("198.19.0.1", 30, "vip0", None),
        ] {
            assert_eq!(netlink.add(&vip).await.unwrap(), AddOutcome::Added);
        }
        assert_eq!(
            netlink
                .add(&spec("fd00::11", 64, "vip0", None))
                .await
                .unwrap(),
            AddOutcome::Added
        );
        let interfaces = failoverd::daemon::listen::local_interfaces().expect("getifaddrs");
        let vip0 = interfaces
            .iter()
            .find(|i| i.name == "vip0")
            .expect("vip0 listed");
        for (address, len) in [("198.18.0.11", 24), ("198.19.0.1", 30), ("fd00::11", 64)] {
            let address: IpAddr = address.parse().unwrap();
            assert!(
                vip0.addresses.contains(&(address, len)),
                "{address}/{len} in {vip0:?}"
            );
        }
        let peer0 = interfaces.iter().find(|i| i.name == "peer0");
        assert!(
            peer0.is_some_and(|p| p.addresses.iter().all(|(a, _)| a.is_ipv6())),
            "peer0, which has no IPv4 address, is listed too: {interfaces:?}"
        );
    });
}

#[test]
fn vip_errors_name_interface_and_label() {
    in_netns(|| async {
        let handle = rtnl();
        add_veth(&handle, "vip0", "peer0", MAC).await;
        let netlink = vip::connect().await.expect("netlink");

        let missing = spec("198.18.0.10", 24, "nosuch0", None);
        let err = netlink.add(&missing).await.unwrap_err();
        assert!(
            matches!(&err, VipError::InterfaceNotFound { interface } if interface == "nosuch0"),
            "{err:?}"
        );
        assert_eq!(err.to_string(), "interface nosuch0 not found");
        // Nothing can be held on a link that does not exist.
        assert!(!present(&missing).await);
        assert_eq!(
            netlink.remove(&missing).await.unwrap(),
            RemoveOutcome::Absent
        );

        let bad_label = spec("198.18.0.10", 24, "vip0", Some("eth0:ha"));
        let err = netlink.add(&bad_label).await.unwrap_err();
        assert!(matches!(err, VipError::InvalidLabel { .. }), "{err:?}");
        assert!(find_address(&handle, bad_label.address).await.is_none());
    });
}

#[test]
fn ipv6_vip_is_usable_at_once() {
    in_netns(|| async {
        let handle = rtnl();
        // A link with carrier and ARP runs duplicate address detection,
        // which is what the VIP must skip.
        add_veth(&handle, "va", "vb", MAC).await;
        let netlink = vip::connect().await.expect("netlink");
        let vip = spec("fd00::10", 64, "va", None);

        assert_eq!(netlink.add(&vip).await.unwrap(), AddOutcome::Added);
        let message = find_address(&handle, vip.address).await.expect("listed");
        let flags = flags_of(&message);
        assert!(!flags.contains(AddressFlags::Tentative), "{flags:?}");
        assert!(flags.contains(AddressFlags::Nodad), "{flags:?}");
        // Binding fails with EADDRNOTAVAIL while an address is tentative.
        UdpSocket::bind(SocketAddr::new(vip.address, 0)).expect("bind to the new vip");

        // The control: the same kind of address added without NODAD is
        // still tentative, so the checks above are not vacuous.
        let plain: Ipv6Addr = "fd00::11".parse().unwrap();
        let index = netlink.link_info("va").await.unwrap().index;
        handle
            .address()
            .add(index, plain.into(), 64)
            .execute()
            .await
            .expect("plain add");
        let message = find_address(&handle, plain.into()).await.expect("listed");
        assert!(flags_of(&message).contains(AddressFlags::Tentative));

        assert_eq!(netlink.add(&vip).await.unwrap(), AddOutcome::AlreadyPresent);
        assert_eq!(netlink.remove(&vip).await.unwrap(), RemoveOutcome::Removed);
        assert_eq!(netlink.remove(&vip).await.unwrap(), RemoveOutcome::Absent);
    });
}

#[test]
fn link_info_reports_index_mac_and_state() {
    in_netns(|| async {
        let handle = rtnl();
        let mac = [0x02, 0x00, 0x5e, 0x10, 0x20, 0x30];
        add_veth(&handle, "vip0", "peer0", mac).await;
        let netlink = vip::connect().await.expect("netlink");

        let info = netlink.link_info("vip0").await.expect("link info");
        let index = nix::net::if_::if_nametoindex("vip0").expect("if_nametoindex");
        assert_eq!(info.index, index);
        assert_eq!(info.mac, mac);
        assert!(info.up);

        handle
            .link()
            .set(LinkUnspec::new_with_name("vip0").down().build())
            .execute()
            .await
            .expect("set down");
        assert!(!netlink.link_info("vip0").await.unwrap().up);

        let err = netlink.link_info("nosuch0").await.unwrap_err();
        assert!(matches!(err, VipError::InterfaceNotFound { .. }), "{err:?}");
    });
}

/// Frames read from `socket` until `done` says enough, at most 2 s or 500
/// frames, whichever comes first.
fn capture_until(socket: &Socket, done: impl Fn(&[Vec<u8>]) -> bool) -> Vec<Vec<u8>> {
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut frames = Vec::new();
    let mut buf = [MaybeUninit::<u8>::uninit(); 2048];
    while Instant::now() < deadline && frames.len() < 500 && !done(&frames) {
        match socket.recv(&mut buf) {
            Ok(len) => frames.push(
                buf[..len]
                    .iter()
                    // SAFETY: recv initialised the first `len` bytes.
                    .map(|byte| unsafe { byte.assume_init() })
                    .collect(),
            ),
            Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => {}
            Err(err) => panic!("capture: {err}"),
        }
    }
    frames
}

#[test]
fn announce_sends_arp_both_ways_and_na() {
    in_netns(|| async {
        let handle = rtnl();
        add_veth(&handle, "va", "vb", MAC).await;
        let netlink = vip::connect().await.expect("netlink");
        let sender = netlink.link_info("va").await.expect("va");
        let receiver = netlink.link_info("vb").await.expect("vb");
        let capture = capture_socket(receiver.index, Duration::from_millis(50));
        let v4: Ipv4Addr = "198.18.0.10".parse().unwrap();
        let v6: Ipv6Addr = "fd00::10".parse().unwrap();

        announce(sender.index, sender.mac, &[v4.into(), v6.into()]).expect("announce");

        // The kernel's own IPv6 chatter (router and neighbour solicitations,
        // MLD) may be on the wire too; only frames from our announcement
        // count.
        let ours = |frames: &[Vec<u8>]| {
            let arps: Vec<_> = frames
                .iter()
                .filter_map(|frame| parse_arp(frame))
                .filter(|arp| arp.sender_ip == v4)
                .collect();
            let nas: Vec<_> = frames
                .iter()
                .filter_map(|frame| parse_na(frame))
                .filter(|na| na.target == v6)
                .collect();
            (arps, nas)
        };
        let frames = capture_until(&capture, |frames| {
            let (arps, nas) = ours(frames);
            arps.len() >= 2 && !nas.is_empty()
        });
        let (arps, nas) = ours(&frames);

        assert_eq!(arps.len(), 2, "arp frames: {arps:?}");
        assert!(arps.iter().any(|arp| arp.op == ArpOp::Request));
        assert!(arps.iter().any(|arp| arp.op == ArpOp::Reply));
        for arp in &arps {
            assert_eq!(arp.eth_dst, [0xff; 6]);
            assert_eq!((arp.eth_src, arp.sender_mac), (MAC, MAC));
            assert_eq!(arp.target_ip, v4);
        }

        // parse_na checked the ICMPv6 checksum as received.
        assert_eq!(nas.len(), 1, "neighbour advertisements: {nas:?}");
        let na = nas[0];
        assert_eq!(na.eth_src, MAC);
        assert_eq!(na.target_mac, Some(MAC));
        assert_eq!(na.src_ip, v6);
        assert_eq!(na.dst_ip, "ff02::1".parse::<Ipv6Addr>().unwrap());
        assert!(na.override_flag && !na.solicited && !na.router);
    });
}

#[test]
fn announce_on_missing_interface_names_the_address() {
    in_netns(|| async {
        let address: IpAddr = "198.18.0.10".parse().unwrap();
        let err = announce(4242, MAC, &[address]).unwrap_err();
        let AnnounceError::Send {
            ifindex: 4242,
            address: failed,
            ..
        } = err
        else {
            panic!("expected a send error, got {err:?}");
        };
        assert_eq!(failed, address);
    });
}

/// Loopback up and a veth end holding 198.18.0.1/24 and fd00::1/64, which
/// the kernel answers pings for. Anything else in those prefixes is routed
/// out of the veth and answered by nobody.
async fn ping_setup() {
    let handle = rtnl();
    set_up(&handle, "lo").await;
    add_veth(&handle, "gw0", "gw1", MAC).await;
    let netlink = vip::connect().await.expect("netlink");
    for vip in [
        spec("198.18.0.1", 24, "gw0", None),
        spec("fd00::1", 64, "gw0", None),
    ] {
        netlink.add(&vip).await.expect("address for ping tests");
        wait_for_local_route(&handle, vip.address).await;
    }
}

/// Waits (at most 2 s) until the kernel routes `address` to this host.
///
/// An IPv6 address is usable the moment the add returns, but its local
/// route is installed by a kernel work item a moment later; a ping sent in
/// between follows the prefix route out of the link and is never answered.
async fn wait_for_local_route(handle: &Handle, address: IpAddr) {
    let deadline = Instant::now() + Duration::from_secs(2);
    let host_prefix = if address.is_ipv4() { 32 } else { 128 };
    loop {
        let query = RouteMessageBuilder::<IpAddr>::new()
            .destination_prefix(address, host_prefix)
            .expect("valid prefix")
            .build();
        let route = handle
            .route()
            .get(query)
            .execute()
            .try_next()
            .await
            .expect("route lookup");
        if route.is_some_and(|route| route.header.kind == RouteType::Local) {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "no local route for {address} after 2 s"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

fn ip(text: &str) -> IpAddr {
    text.parse().expect("test address")
}

/// The round-trip time is that of this echo: more than zero, no longer than the call
/// itself, and short, as the kernel answers a local address at once. 100 ms leaves a
/// loaded machine room and is far below the 2 s timeout, so a pinger that reported its
/// timeout, or timed from an earlier send, fails.
#[test]
fn ping_gets_replies_from_a_local_address_and_times_the_round_trip() {
    in_netns(|| async {
        ping_setup().await;
        let pinger = Pinger::new();
        for target in [ip("198.18.0.1"), ip("fd00::1")] {
            let started = Instant::now();
            let rtt = pinger
                .ping(target, Duration::from_secs(2))
                .await
                .unwrap_or_else(|err| panic!("{err}"));
            let took = started.elapsed();
            assert!(
                rtt > Duration::ZERO && rtt <= took && rtt < Duration::from_millis(100),
                "{target}: rtt {rtt:?} for a call of {took:?}"
            );
        }
    });
}

/// A ping nobody answers fails at its timeout: not before (it waited), and not much
/// after (it gave up then, not at some other limit).
#[test]
fn ping_times_out_when_nobody_answers() {
    in_netns(|| async {
        ping_setup().await;
        let pinger = Pinger::new();
        for target in [ip("198.18.0.99"), ip("fd00::99")] {
            let started = Instant::now();
            let err = pinger
                .ping(target, Duration::from_millis(300))
                .await
                .unwrap_err();
            assert!(
                matches!(err, PingError::Timeout { target: t } if t == target),
                "{err:?}"
            );
            let took = started.elapsed();
            assert!(
                took >= Duration::from_millis(300) && took < Duration::from_millis(500),
                "{target}: a ping with a 300 ms timeout gave up after {took:?}"
            );
        }
    });
}

#[test]
fn ping_without_route_is_a_send_error() {
    in_netns(|| async {
        ping_setup().await;
        // In 198.18.0.0/15 but outside the only route.
        let target = ip("198.19.0.1");
        let err = Pinger::new()
            .ping(target, Duration::from_secs(1))
            .await
            .unwrap_err();
        assert!(matches!(err, PingError::Send { .. }), "{err:?}");
        assert!(
            err.to_string()
                .starts_with("sending echo request to 198.19.0.1: ")
        );
    });
}

#[test]
fn concurrent_pings_get_their_own_replies() {
    in_netns(|| async {
        ping_setup().await;
        let pinger = std::rc::Rc::new(Pinger::new());
        let targets = [
            ip("198.18.0.1"),
            ip("198.18.0.99"),
            ip("198.18.0.1"),
            ip("fd00::1"),
            ip("198.18.0.1"),
        ];
        // Spawned tasks on one thread: the pings really interleave.
        let local = tokio::task::LocalSet::new();
        let results = local
            .run_until(async {
                let tasks: Vec<_> = targets
                    .iter()
                    .map(|&target| {
                        let pinger = pinger.clone();
                        tokio::task::spawn_local(async move {
                            pinger.ping(target, Duration::from_millis(500)).await
                        })
                    })
                    .collect();
                let mut results = Vec::new();
                for task in tasks {
                    results.push(task.await.expect("ping task"));
                }
                results
            })
            .await;
        for (target, result) in targets.iter().zip(&results) {
            if *target == ip("198.18.0.99") {
                assert!(
                    matches!(result, Err(PingError::Timeout { .. })),
                    "{result:?}"
                );
            } else {
                assert!(result.is_ok(), "{target}: {result:?}");
            }
        }
    });
}

#[test]
fn prober_reports_every_target_each_round_and_stops_with_receiver() {
    in_netns(|| async {
        ping_setup().await;
        let targets = vec![ip("198.18.0.1"), ip("198.18.0.99")];
        let (tx, mut rx) = tokio::sync::mpsc::channel(8);
        let prober = tokio::spawn(run_prober(
            targets.clone(),
            Duration::from_millis(200),
            Duration::from_millis(100),
            tx,
        ));

        let mut results: Vec<ProbeResult> = Vec::new();
        while results.len() < 6 {
            let result = tokio::time::timeout(Duration::from_secs(2), rx.recv())
                .await
                .expect("a probe result within 2 s")
                .expect("prober still running");
            results.push(result);
        }
        for result in &results {
            assert_eq!(result.target, targets[result.target_index]);
            match result.target_index {
                0 => assert!(result.outcome.is_ok(), "{result:?}"),
                _ => assert!(
                    matches!(result.outcome, Err(PingError::Timeout { .. })),
                    "{result:?}"
                ),
            }
        }
        let answered = results.iter().filter(|r| r.target_index == 0).count();
        assert_eq!(answered, 3, "three rounds, one result per target each");

        drop(rx);
        tokio::time::timeout(Duration::from_secs(2), prober)
            .await
            .expect("prober ends once the receiver is gone")
            .expect("prober task");
    });
}

/// Runs `ip` with `args` in the calling thread's namespace (a child inherits it).
fn ip_cmd(args: &[&str]) {
    let out = std::process::Command::new("ip")
        .args(args)
        .output()
        .expect("running ip");
    assert!(
        out.status.success(),
        "ip {}: {}",
        args.join(" "),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Sends what goes to `address` out of `hb0`, to a MAC of no one's, without asking
/// ARP: the capture on `hb1` sees every frame.
fn on_the_wire(address: &str) {
    ip_cmd(&[
        "neigh",
        "replace",
        address,
        "lladdr",
        "02:fa:11:0e:00:01",
        "dev",
        "hb0",
        "nud",
        "permanent",
    ]);
}

/// A link socket at 198.18.0.11:694 on veth `hb0`, heartbeats to 198.18.0.12 put
/// on the wire there (see `on_the_wire`). Returns the link's sender and `hb1`'s
/// index.
async fn heartbeat_link() -> (Sender, u32) {
    let handle = rtnl();
    set_up(&handle, "lo").await;
    add_veth(&handle, "hb0", "hb1", [0x02, 0xfa, 0x11, 0x0e, 0x00, 0x02]).await;
    ip_cmd(&["addr", "add", "198.18.0.11/24", "dev", "hb0"]);
    on_the_wire("198.18.0.12");
    // The link's sockets as the daemon makes them.
    let (sockets, _) = failoverd::daemon::listen::link_sockets(
        "198.18.0.11:694".parse().unwrap(),
        &["198.18.0.12".parse().unwrap()],
    )
    .expect("the link's sockets");
    let sender = Sender::new(sockets.peers, true);
    assert!(sender.has_raw(), "no raw socket");
    let far = nix::net::if_::if_nametoindex("hb1").expect("hb1's index");
    (sender, far)
}

/// The IPv4 UDP datagrams to `to` among captured Ethernet frames, IP header on.
fn udp_to(frames: &[Vec<u8>], to: [u8; 4]) -> Vec<Vec<u8>> {
    frames
        .iter()
        .filter(|f| f.len() > 14 + 28 && f[12..14] == [0x08, 0x00] && f[14 + 9] == 17)
        .filter(|f| f[14 + 16..14 + 20] == to)
        .map(|f| f[14..].to_vec())
        .collect()
}

/// The one's-complement sum of `parts`, folded, not inverted: 0xffff for a span
/// whose checksum field is right. Written apart from the daemon's own.
fn ones_sum(parts: &[&[u8]]) -> u16 {
    let bytes: Vec<u8> = parts.concat();
    let mut sum: u32 = bytes
        .chunks(2)
        .map(|c| u32::from(u16::from_be_bytes([c[0], *c.get(1).unwrap_or(&0)])))
        .sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    u16::try_from(sum).expect("folded")
}

/// A heartbeat sent through the raw socket is, on the wire, the datagram the UDP
/// socket sends: the same IPv4 header (Don't Fragment, ID 0, the host's TTL), the
/// same ports and bytes, and checksums a receiver's NIC accepts (veth marks
/// datagrams sent without a checksum as checked, so only a capture shows one wrong).
#[test]
fn heartbeats_through_the_raw_socket_are_the_datagrams_the_udp_socket_sends() {
    in_netns(|| async {
        let (mut sender, far) = heartbeat_link().await;
        let capture = capture_socket(far, Duration::from_millis(200));
        let to: SocketAddr = "198.18.0.12:694".parse().unwrap();
        let payload: Vec<u8> = (0..95).collect();
        let now = Instant::now();
        // The first goes through the UDP socket, which vouches for the address.
        sender
            .send(&payload, to, now)
            .expect("through the UDP socket");
        assert_eq!(sender.sent_raw(), 0);
        sender
            .send(&payload, to, now + Duration::from_millis(10))
            .expect("through the raw socket");
        assert_eq!(
            sender.sent_raw(),
            1,
            "the second did not go through the raw socket"
        );
        let frames = capture_until(&capture, |frames| {
            udp_to(frames, [198, 18, 0, 12]).len() >= 2
        });
        let datagrams = udp_to(&frames, [198, 18, 0, 12]);
        assert_eq!(datagrams.len(), 2, "{datagrams:?}");
        let (udp, raw) = (&datagrams[0], &datagrams[1]);
        assert_eq!(raw.len(), 28 + payload.len());
        // Everything but the UDP checksum, which the UDP socket leaves to the NIC
        // (a partial sum on veth).
        assert_eq!(udp[..26], raw[..26], "IPv4 header and UDP ports and length");
        assert_eq!(udp[28..], raw[28..], "payload");
        assert_eq!(raw[4..8], [0, 0, 0x40, 0], "ID 0, Don't Fragment");
        assert_eq!(ones_sum(&[&raw[..20]]), 0xffff, "IPv4 header checksum");
        let pseudo = [&raw[12..20], &[0, 17], &raw[24..26]].concat();
        assert_eq!(ones_sum(&[&pseudo, &raw[20..]]), 0xffff, "UDP checksum");
    });
}

/// Only a UDP socket refuses a source that is not on the host: a raw one sends the
/// link's heartbeats from its removed address by any other route (here the
/// default route, through another interface). A heartbeat goes through the raw
/// socket only within `CHECK_PERIOD` of one the UDP socket sent, so the refusal
/// comes, and is reported, at most that long after the address went; from then
/// on every heartbeat goes through the UDP socket until the address is back.
#[test]
fn a_removed_address_is_refused_within_a_check_period_and_raw_sends_stop() {
    use failoverd::daemon::send::CHECK_PERIOD;
    in_netns(|| async {
        let (mut sender, _) = heartbeat_link().await;
        // Another interface with a default route, which outlives the link's
        // address (the last address of an interface takes its routes with it).
        add_veth(&rtnl(), "ln0", "ln1", [0x02, 0xfa, 0x11, 0x0e, 0x00, 0x03]).await;
        ip_cmd(&["addr", "add", "198.18.1.11/24", "dev", "ln0"]);
        ip_cmd(&["route", "add", "default", "dev", "ln0"]);
        let to: SocketAddr = "198.18.0.12:694".parse().unwrap();
        let start = Instant::now();
        let at = |ms: u64| start + Duration::from_millis(ms);
        sender
            .send(b"heartbeat", to, at(0))
            .expect("vouched by UDP");
        ip_cmd(&["addr", "del", "198.18.0.11/24", "dev", "hb0"]);
        // Within the period the raw socket sends from the gone address: the
        // window this design accepts, and proof that the route is there.
        sender
            .send(b"heartbeat", to, at(10))
            .expect("a raw send by the default route");
        assert_eq!(sender.sent_raw(), 1);
        let due = u64::try_from(CHECK_PERIOD.as_millis()).unwrap();
        let refused = sender.send(b"heartbeat", to, at(due));
        assert!(
            refused.is_err(),
            "a heartbeat from an address no longer on the host went out {due} ms on"
        );
        for ms in (due + 10..due * 4).step_by(10) {
            assert!(
                sender.send(b"heartbeat", to, at(ms)).is_err(),
                "sent at {ms} ms"
            );
        }
        assert_eq!(sender.sent_raw(), 1, "raw sends after the refusal");
        ip_cmd(&["addr", "add", "198.18.0.11/24", "dev", "hb0"]);
        sender
            .send(b"heartbeat", to, at(due * 4))
            .expect("the address is back");
        sender
            .send(b"heartbeat", to, at(due * 4 + 10))
            .expect("through the raw socket again");
        assert_eq!(sender.sent_raw(), 2, "the raw socket not taken up again");
    });
}

/// A raw send that fails goes out through the UDP socket, which alone carries the
/// destination's heartbeats for the next `CHECK_PERIOD`. Here a routing rule for
/// UDP only (`ip rule ipproto udp`), which the kernel's lookup for a raw datagram
/// does not match: the raw socket finds no route, the UDP socket does, and every
/// heartbeat reaches the wire.
#[test]
fn a_heartbeat_the_raw_socket_cannot_send_goes_through_the_udp_socket() {
    in_netns(|| async {
        let (mut sender, far) = heartbeat_link().await;
        ip_cmd(&[
            "route",
            "add",
            "198.19.5.0/24",
            "dev",
            "hb0",
            "table",
            "100",
        ]);
        ip_cmd(&["rule", "add", "ipproto", "udp", "lookup", "100"]);
        on_the_wire("198.19.5.5");
        let capture = capture_socket(far, Duration::from_millis(200));
        let to: SocketAddr = "198.19.5.5:694".parse().unwrap();
        let start = Instant::now();
        for ms in (0..300).step_by(10) {
            sender
                .send(b"heartbeat", to, start + Duration::from_millis(ms))
                .unwrap_or_else(|err| panic!("at {ms} ms: {err}"));
        }
        assert_eq!(sender.sent_raw(), 0);
        // Tried at 10 ms (after the first, through the UDP socket, at 0), then
        // once each 100 ms: at 110 and 210.
        assert_eq!(sender.failed_raw(), 3, "raw sends tried");
        let frames = capture_until(&capture, |frames| {
            udp_to(frames, [198, 19, 5, 5]).len() >= 30
        });
        assert_eq!(udp_to(&frames, [198, 19, 5, 5]).len(), 30);
    });
}

/// Where an IPv4 link's peer listens in these tests: a plain socket on the
/// link's address (read by nobody; the kernel keeps what fits).
fn receiver4(sockets: &failoverd::daemon::listen::LinkSockets) -> SocketAddr {
    let at = sockets.peers.get_ref().local_addr().expect("bound");
    let peer = UdpSocket::bind((at.ip(), 0)).expect("receiver");
    let to = peer.local_addr().expect("bound");
    // Open for the test's life: a closed port would answer with ICMP errors.
    std::mem::forget(peer);
    to
}

/// Over IPv6 every heartbeat goes through the UDP socket, and so does every one
/// with `[scheduling] raw_send = false`, until a reload turns it on.
#[test]
fn without_ipv4_or_with_raw_send_off_heartbeats_go_through_the_udp_socket() {
    in_netns(|| async {
        set_up(&rtnl(), "lo").await;
        let receiver = UdpSocket::bind("[::1]:0").expect("receiver");
        let socket = UdpSocket::bind("[::1]:0").expect("link socket");
        socket.set_nonblocking(true).expect("non-blocking");
        let watched = failoverd::daemon::listen::watch_for_reading(socket).expect("register");
        let mut sender = Sender::new(std::sync::Arc::new(watched), true);
        assert!(!sender.has_raw());
        let to = receiver.local_addr().unwrap();
        let now = Instant::now();
        for ms in 0..3 {
            sender
                .send(b"heartbeat", to, now + Duration::from_millis(ms))
                .expect("sent");
        }
        assert_eq!(sender.sent_raw(), 0);
        receiver
            .set_read_timeout(Some(Duration::from_secs(1)))
            .unwrap();
        let mut buf = [0u8; 32];
        for _ in 0..3 {
            let (len, _) = receiver.recv_from(&mut buf).expect("received");
            assert_eq!(&buf[..len], b"heartbeat");
        }

        let (sockets, _) = failoverd::daemon::listen::link_sockets(
            "127.0.0.1:0".parse().unwrap(),
            &["127.0.0.1".parse().unwrap()],
        )
        .expect("the link's sockets");
        let to = receiver4(&sockets);
        let mut sender = Sender::new(sockets.peers, false);
        assert!(!sender.has_raw(), "raw_send = false, but a raw socket");
        for ms in 0..3 {
            sender
                .send(b"heartbeat", to, now + Duration::from_millis(ms))
                .expect("sent");
        }
        assert_eq!(sender.sent_raw(), 0);
        sender.set_raw(true);
        assert!(sender.has_raw(), "no raw socket once turned on");
        for ms in 3..6 {
            sender
                .send(b"heartbeat", to, now + Duration::from_millis(ms))
                .expect("sent");
        }
        assert_eq!(
            sender.sent_raw(),
            2,
            "after a check, through the raw socket"
        );
        sender.set_raw(false);
        assert!(!sender.has_raw());
    });
}
