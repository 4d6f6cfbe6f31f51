//! Micro-benchmarks of the heartbeat hot path: what every node does per interval
//! and per link, so a change that makes it slower shows up here. `cargo bench`.

#[path = "../tests/common/sample.rs"]
mod sample;

use std::hint::black_box;
use std::time::{Duration, Instant};

use criterion::{Criterion, criterion_group, criterion_main};
use failoverd::wire::heartbeat::{Heartbeat, Signer, WireState};
use sample::Sample;

fn sample() -> Heartbeat<'static> {
    Heartbeat {
        link: 1,
        state: WireState::Active,
        flags: 0,
        health: 0,
        priority: 200,
        incarnation: 1_795_000_000_000_000,
        sequence: 42,
        fingerprint: [7; 8],
        nonce: 99,
        echo: 77,
        votes: None,
        quiet: false,
        wake: false,
        cluster: "web".into(),
        node: "alpha".into(),
    }
}

fn codec(c: &mut Criterion) {
    let signer = Signer::new(b"0123456789abcdef0123456789abcdef");
    let hb = sample();
    let mut out = Vec::with_capacity(128);
    c.bench_function("heartbeat encode+sign", |b| {
        b.iter(|| {
            out.clear();
            black_box(&hb).encode(&signer, &mut out);
            black_box(out.len())
        })
    });
    let mut bytes = Vec::new();
    hb.encode(&signer, &mut bytes);
    c.bench_function("heartbeat decode+verify", |b| {
        b.iter(|| Heartbeat::decode(black_box(&bytes), &signer).map(|h| h.sequence))
    });
}

/// One interval of a settled two-node cluster: alpha's timer fires (heartbeats on
/// both links) and beta handles them. The two machines talk only to each other.
fn machine_step(c: &mut Criterion) {
    // The sample's two nodes and links with fast timers; no VIPs, gateways or hooks,
    // whose effects nobody here would carry out.
    let text = Sample::new()
        .set("cluster.name", "bench")
        .set("cluster.key_file", "authkey")
        .set("timing.interval", "100ms")
        .set("timing.warn", "300ms")
        .set("timing.dead", "500ms")
        .set("timing.init_dead", "1s")
        .remove("vip")
        .remove("health")
        .remove("hooks")
        .to_string();
    let dir = std::env::temp_dir().join(format!("failoverd-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).expect("temp dir");
    let key = dir.join("authkey");
    std::fs::write(&key, "0123456789abcdef0123456789abcdef").expect("key");
    std::fs::set_permissions(&key, std::os::unix::fs::PermissionsExt::from_mode(0o600))
        .expect("chmod");
    let config = failoverd::config::Config::parse(&text, &dir).expect("bench config");
    let start = Instant::now();
    let mut alpha = failoverd::machine::Machine::new(&config, 0, 1, 1, start);
    let mut beta = failoverd::machine::Machine::new(&config, 1, 2, 2, start);
    let mut now = start;
    let mut datagrams = Vec::new();
    let exchange = |alpha: &mut failoverd::machine::Machine,
                    beta: &mut failoverd::machine::Machine,
                    now: Instant,
                    datagrams: &mut Vec<(usize, std::net::IpAddr, Vec<u8>)>| {
        alpha.handle_timeout(now);
        beta.handle_timeout(now);
        for (from, to) in [(&mut *alpha, 0usize), (&mut *beta, 1usize)] {
            while let Some(action) = from.poll_action() {
                if let failoverd::machine::Action::Send { link, datagram, .. } = action {
                    // Both sample nodes are on every link.
                    if let Some(source) = config.nodes[to].addresses[link] {
                        datagrams.push((link, source, datagram.to_vec()));
                    }
                }
            }
        }
        for (link, source, bytes) in datagrams.drain(..) {
            let target = if config.nodes[0].addresses[link] == Some(source) {
                &mut *beta
            } else {
                &mut *alpha
            };
            target.handle(
                now,
                failoverd::machine::Input::Datagram {
                    link,
                    from: source,
                    bytes: &bytes,
                },
            );
        }
        while alpha.poll_action().is_some() {}
        while beta.poll_action().is_some() {}
    };
    // Settle first: handshakes, election.
    for _ in 0..50 {
        now += Duration::from_millis(100);
        exchange(&mut alpha, &mut beta, now, &mut datagrams);
    }
    assert_eq!(
        alpha.role(),
        failoverd::machine::Role::Active,
        "not settled"
    );
    assert!(beta.peers()[0].alive, "beta does not hear alpha");
    c.bench_function("machine: one interval, two nodes, two links", |b| {
        b.iter(|| {
            now += Duration::from_millis(100);
            exchange(&mut alpha, &mut beta, now, &mut datagrams);
        })
    });
    let _ = std::fs::remove_dir_all(&dir);
}

criterion_group!(benches, codec, machine_step);
criterion_main!(benches);
