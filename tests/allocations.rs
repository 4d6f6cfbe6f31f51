//! The heartbeat path allocates nothing once a cluster has settled: at a 10 ms
//! interval every allocation per interval is hundreds a second per node, on the
//! loop that must stay on time. Two machines exchange heartbeats on both links, as
//! the daemon drives them, under an allocator that counts this thread's calls:
//! each datagram sent goes through the daemon's account of sends (`outbound`) and
//! each received through its link filter (`receive::Filter`), as the loop does.

#[path = "common/sample.rs"]
mod sample;

use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;
use std::net::IpAddr;
use std::time::{Duration, Instant};

use failoverd::daemon::outbound::Outbound;
use failoverd::daemon::receive::Filter;
use failoverd::machine::{Action, Input, Machine, Role};
use failoverd::wire::heartbeat::Packet;
use sample::Sample;

struct Counting;

thread_local! {
    // Only the thread under test counts, into its own count: the harness's
    // threads allocate too, and the tests run side by side.
    static COUNTING: Cell<bool> = const { Cell::new(false) };
    static ALLOCATIONS: Cell<u64> = const { Cell::new(0) };
}

fn count() {
    if COUNTING.with(Cell::get) {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
    }
}

// SAFETY: every call is passed on to the system allocator unchanged.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        count();
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        count();
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

#[test]
fn a_settled_interval_allocates_nothing() {
    // The sample's two nodes and links; no VIPs, gateways or hooks, whose effects
    // nobody here would carry out.
    let text = Sample::new()
        .set("cluster.name", "alloc")
        .set("cluster.key_file", "authkey")
        .set("timing.interval", "10ms")
        .set("timing.warn", "20ms")
        .set("timing.dead", "36ms")
        .set("timing.init_dead", "72ms")
        .remove("vip")
        .remove("health")
        .remove("hooks")
        .to_string();
    let dir = std::env::temp_dir().join(format!("failoverd-alloc-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let key = dir.join("authkey");
    std::fs::write(&key, "0123456789abcdef0123456789abcdef").expect("key");
    std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .expect("chmod");
    let config = failoverd::config::Config::parse(&text, &dir).expect("test config");
    let _ = std::fs::remove_dir_all(&dir);

    let start = Instant::now();
    let mut nodes = [
        Machine::new(&config, 0, 1, 1, start),
        Machine::new(&config, 1, 2, 2, start),
    ];
    let filters = [Filter::new(&config, 0), Filter::new(&config, 1)];
    let mut outbound = [
        Outbound::new(config.links.len()),
        Outbound::new(config.links.len()),
    ];
    let mut sent: Vec<(usize, usize, IpAddr, Packet)> = Vec::with_capacity(16);
    let mut interval = |nodes: &mut [Machine; 2], now: Instant| {
        for node in nodes.iter_mut() {
            node.handle_timeout(now);
        }
        for (from, node) in nodes.iter_mut().enumerate() {
            while let Some(action) = node.poll_action() {
                if let Action::Send { link, to, datagram } = action
                    && let Some(source) = config.nodes[from].addresses[link]
                {
                    let report = outbound[from].note(link, to, &Ok(()), || now);
                    assert!(report.is_none(), "nothing to say of sends that go out");
                    sent.push((1 - from, link, source, datagram));
                }
            }
        }
        for (to, link, from, datagram) in sent.drain(..) {
            let packet = filters[to]
                .check(link, from, &datagram[..])
                .expect("a peer's heartbeat passes the link's filter");
            nodes[to].handle(
                now,
                Input::Heartbeat {
                    link,
                    from,
                    packet: &packet,
                },
            );
        }
        for node in nodes.iter_mut() {
            while node.poll_action().is_some() {}
        }
    };
    let mut now = start;
    for _ in 0..200 {
        now += Duration::from_millis(10);
        interval(&mut nodes, now);
    }
    assert_eq!(nodes[0].role(), Role::Active, "alpha did not settle active");
    assert_eq!(
        nodes[1].role(),
        Role::Standby,
        "beta did not settle standby"
    );

    COUNTING.with(|c| c.set(true));
    for _ in 0..100 {
        now += Duration::from_millis(10);
        interval(&mut nodes, now);
    }
    COUNTING.with(|c| c.set(false));
    assert_eq!(nodes[0].role(), Role::Active);
    assert_eq!(
        ALLOCATIONS.with(Cell::get),
        0,
        "allocations in 100 settled intervals of two nodes"
    );
}

/// What the loop does with each heartbeat the machine hands it: a link's sender
/// puts it on the wire through the raw socket (IPv4, with CAP_NET_RAW: this test
/// needs root, as CI runs it), and through the UDP socket once a `CHECK_PERIOD`.
#[test]
fn sending_a_heartbeat_allocates_nothing() {
    use failoverd::daemon::send::{CHECK_PERIOD, Sender};
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    let _entered = runtime.enter();
    let receiver = std::net::UdpSocket::bind("127.0.0.1:0").expect("receiver");
    let (sockets, _) = failoverd::daemon::listen::link_sockets(
        "127.0.0.1:0".parse().unwrap(),
        &["127.0.0.1".parse().unwrap()],
    )
    .expect("the link's sockets");
    let mut sender = Sender::new(sockets.peers, true);
    assert!(
        sender.has_raw(),
        "no raw socket: this test must run as root"
    );
    let to = receiver.local_addr().expect("address");
    let heartbeat = [0x5au8; 95];
    let mut now = Instant::now();
    sender.send(&heartbeat, to, now).expect("the first send");

    let sends = 100;
    COUNTING.with(|c| c.set(true));
    for _ in 0..sends {
        now += Duration::from_millis(10);
        sender.send(&heartbeat, to, now).expect("sent");
    }
    COUNTING.with(|c| c.set(false));
    assert_eq!(
        ALLOCATIONS.with(Cell::get),
        0,
        "allocations in {sends} sends"
    );
    let checks =
        u64::try_from(Duration::from_millis(10 * sends).as_millis() / CHECK_PERIOD.as_millis())
            .expect("small");
    assert!(
        sender.sent_raw() >= sends - checks - 1 && sender.sent_raw() < sends,
        "{} of {sends} through the raw socket: both ways not taken",
        sender.sent_raw()
    );
}
