//! Deterministic simulation of several election state machines over a simulated
//! lossy network, driven by a fake clock: no root, no sleeps, no sockets.
//!
//! The harness plays the shell's part: it delivers datagrams with delay and loss,
//! executes effects one at a time in order (as the daemon's executor does), keeps
//! the "kernel" view of which node really has each VIP, and feeds gateway probes.
//! Fault verbs: `crash`, `restart`, `shutdown`, `partition`, `heal`, `cut_link`,
//! `restore_link`, `gateway_down`, `gateway_up`. After every step it checks that no
//! two nodes hold the VIP unless they have recently been unable to hear each other.

#[path = "common/sample.rs"]
mod sample;

use std::collections::{BTreeMap, VecDeque};
use std::fs;
use std::net::IpAddr;
use std::os::unix::fs::PermissionsExt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime};

use failoverd::config::{Config, Failback, Key};
use failoverd::machine::health::Source;
use failoverd::machine::{
    Accepted, Action, ConfigChange, Effect, EffectId, Event, Hook, Input, Machine, Order, Outcome,
    Refusal, ReloadError, Role,
};
use sample::Sample;

const MS: Duration = Duration::from_millis(1);

fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// `nodes` nodes (alpha, beta, gamma, delta, with priorities 200, 150, 100, 50) on the
/// sample configuration with fast timers, parsed as a file is. What a file cannot say
/// is set afterwards: hooks that need not exist, and a key without a key file.
fn config(nodes: usize, failback: Failback) -> Config {
    static RUNS: AtomicUsize = AtomicUsize::new(0);
    assert!((2..=4).contains(&nodes), "the simulator runs 2 to 4 nodes");
    let mut sample = Sample::new()
        .set("cluster.name", "sim")
        .set("cluster.key_file", "authkey")
        .set("cluster.failback", failback)
        .set("cluster.failback_delay", "2s")
        .set("timing.interval", "100ms")
        .set("timing.warn", "300ms")
        .set("timing.dead", "500ms")
        .set("timing.init_dead", "1s")
        .set("node[1].priority", 150)
        .set("node[1].interfaces", "{}")
        .remove("vip[0].label")
        .set("health.interval", "100ms")
        .set("health.timeout", "100ms")
        .set("health.link_state", false)
        .remove("hooks.start")
        .remove("hooks.stop")
        .remove("hooks.fault")
        .set("hooks.timeout", "5s")
        .set("announce.interval", "100ms")
        .set("announce.refresh", "10s")
        .set("control.socket", "/nonexistent/failoverd.sock")
        .set("control.state_dir", "/nonexistent")
        .set("events.keep", 100);
    let names = ["alpha", "beta", "gamma", "delta"];
    for (i, name) in names.iter().enumerate().take(nodes).skip(2) {
        sample = sample.append(&format!(
            "[[node]]\nname = \"{name}\"\npriority = {}\n\
             addresses = {{ crossover = \"198.19.0.{}\", lan = \"198.18.0.{}\" }}",
            200 - 50 * i,
            i + 1,
            i + 11
        ));
    }
    let key = b"simulation-key-simulation-key";
    let dir = std::env::temp_dir().join(format!(
        "failoverd-sim-{}-{}",
        std::process::id(),
        RUNS.fetch_add(1, Ordering::Relaxed)
    ));
    fs::create_dir_all(&dir).expect("create a directory for the key");
    fs::write(dir.join("authkey"), key).expect("write the key");
    fs::set_permissions(dir.join("authkey"), fs::Permissions::from_mode(0o600))
        .expect("chmod the key");
    let parsed = Config::parse(&sample.to_string(), &dir);
    let _ = fs::remove_dir_all(&dir);
    let mut config = parsed.unwrap_or_else(|problems| panic!("the sample: {problems:#?}"));
    config.cluster.key_file = "/dev/null".into();
    config.hooks.start = Some("/start".into());
    config.hooks.stop = Some("/stop".into());
    config.hooks.fault = Some("/fault".into());
    config
}

/// A tiny deterministic generator; the seed is printed on failure to replay a run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    fn chance(&mut self, p: f64) -> bool {
        (self.next() % 1_000_000) as f64 / 1_000_000.0 < p
    }

    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
}

struct Packet {
    at: Instant,
    to: usize,
    link: usize,
    from: IpAddr,
    bytes: Vec<u8>,
}

struct SimNode {
    machine: Option<Machine>,
    /// Effects waiting, and the one running with its completion time.
    queue: VecDeque<(EffectId, Effect)>,
    running: Option<(Instant, EffectId, Outcome)>,
    /// What the kernel has: is VIP i on this node's interface.
    vips: Vec<bool>,
    hooks: Vec<(Hook, BTreeMap<String, String>)>,
    events: Vec<(Duration, Event)>,
    announces: Vec<Duration>,
    starts: u64,
    /// The node's links are down (a dead box, or a pulled cable).
    isolated: bool,
    /// SIGSTOP: the process does not run; datagrams wait in its socket buffer.
    paused: bool,
    gateway_up: bool,
}

struct Sim {
    base: Instant,
    now: Instant,
    config: Config,
    nodes: Vec<SimNode>,
    packets: Vec<Packet>,
    rng: Rng,
    loss: f64,
    delay: (u64, u64),
    /// `cut[link]`: the link is down for everyone.
    cut: Vec<bool>,
    /// Pairs that cannot hear each other at all.
    partitions: Vec<(usize, usize)>,
    /// Until when two holders are tolerated (the nodes could not hear each other).
    split_allowed_until: Instant,
    next_probe: Instant,
    hook_time: Duration,
    captured: Vec<Packet>,
    capture: bool,
    /// While capturing, keep the packets to node 1 from reaching it.
    withhold: bool,
    max_holders_seen: usize,
    seed: u64,
    /// The fault verbs applied, with their times, for the failure report.
    ops: Vec<(Duration, String)>,
    /// Consecutive losses per (from, to, link).
    loss_runs: BTreeMap<(usize, usize, usize), u32>,
}

impl Sim {
    fn new(config: Config, seed: u64) -> Sim {
        let base = Instant::now();
        let n = config.nodes.len();
        let vips = config.vips.len();
        let links = config.links.len();
        let mut sim = Sim {
            base,
            now: base,
            config,
            nodes: (0..n)
                .map(|_| SimNode {
                    machine: None,
                    queue: VecDeque::new(),
                    running: None,
                    vips: vec![false; vips],
                    hooks: Vec::new(),
                    events: Vec::new(),
                    announces: Vec::new(),
                    starts: 0,
                    isolated: false,
                    paused: false,
                    gateway_up: true,
                })
                .collect(),
            packets: Vec::new(),
            rng: Rng(seed.max(1)),
            loss: 0.0,
            delay: (1, 2),
            cut: vec![false; links],
            partitions: Vec::new(),
            split_allowed_until: base,
            next_probe: base,
            hook_time: ms(20),
            captured: Vec::new(),
            capture: false,
            withhold: false,
            max_holders_seen: 0,
            seed,
            ops: Vec::new(),
            loss_runs: BTreeMap::new(),
        };
        for i in 0..n {
            sim.start(i);
        }
        sim
    }

    fn t(&self) -> Duration {
        self.now - self.base
    }

    fn start(&mut self, i: usize) {
        let node = &mut self.nodes[i];
        node.starts += 1;
        node.queue.clear();
        node.running = None;
        // Incarnations grow across restarts, as the wall clock does.
        let incarnation = (self.now - self.base).as_micros() as u64 + node.starts;
        node.machine = Some(Machine::new(&self.config, i, incarnation, self.now));
        self.drain(i);
    }

    // --- fault verbs --------------------------------------------------------

    /// Power off: the daemon dies and the box with it (its VIPs go too).
    fn crash(&mut self, i: usize) {
        self.nodes[i].machine = None;
        self.nodes[i].queue.clear();
        self.nodes[i].running = None;
        self.nodes[i].vips.iter_mut().for_each(|v| *v = false);
    }

    /// SIGKILL of the daemon alone: the kernel keeps whatever VIPs it had.
    fn kill_daemon(&mut self, i: usize) {
        self.nodes[i].machine = None;
        self.nodes[i].queue.clear();
        self.nodes[i].running = None;
    }

    fn restart(&mut self, i: usize) {
        self.start(i);
    }

    fn order(&mut self, i: usize, order: Order) -> Result<Accepted, Refusal> {
        let now = self.now;
        let result = self.nodes[i]
            .machine
            .as_mut()
            .expect("a running node")
            .order(now, order);
        self.drain(i);
        result
    }

    fn shutdown(&mut self, i: usize) {
        self.input(i, Input::Shutdown);
    }

    fn partition(&mut self, a: usize, b: usize) {
        self.partitions.push((a, b));
        self.split_allowed_until = self.now + Duration::from_secs(1_000_000);
    }

    fn heal(&mut self) {
        self.partitions.clear();
        self.cut.iter_mut().for_each(|c| *c = false);
        self.nodes.iter_mut().for_each(|n| n.isolated = false);
        self.allow_split_after_rejoin();
    }

    fn cut_link(&mut self, link: usize) {
        self.note(format!("cut link {link}"));
        self.cut[link] = true;
        if self.cut.iter().all(|c| *c) {
            self.split_allowed_until = self.now + Duration::from_secs(1_000_000);
        }
    }

    fn restore_link(&mut self, link: usize) {
        self.note(format!("restore link {link}"));
        let was_separated = self.cut.iter().all(|c| *c);
        self.cut[link] = false;
        if was_separated && self.partitions.is_empty() {
            self.allow_split_after_rejoin();
        }
    }

    fn isolate(&mut self, i: usize) {
        self.nodes[i].isolated = true;
        self.split_allowed_until = self.now + Duration::from_secs(1_000_000);
    }

    /// After the network heals, the nodes first complete a handshake (a round trip:
    /// one interval, two if a packet is lost), then find each other active and the
    /// loser releases within an interval plus its stop hook and VIP removal.
    fn allow_split_after_rejoin(&mut self) {
        let t = &self.config.timing;
        self.split_allowed_until = self.now + t.interval * 5 + self.hook_time * 2 + ms(20);
    }

    fn gateway_down(&mut self, i: usize) {
        self.nodes[i].gateway_up = false;
    }

    fn gateway_up(&mut self, i: usize) {
        self.nodes[i].gateway_up = true;
    }

    // --- the loop -----------------------------------------------------------

    fn input(&mut self, i: usize, input: Input<'_>) {
        let now = self.now;
        if let Some(m) = self.nodes[i].machine.as_mut() {
            m.handle(now, input);
        }
        self.drain(i);
    }

    fn reachable(&self, from: usize, to: usize, link: usize) -> bool {
        !self.cut[link]
            && !self.nodes[from].isolated
            && !self.nodes[to].isolated
            && !self
                .partitions
                .iter()
                .any(|&(a, b)| (a, b) == (from, to) || (b, a) == (from, to))
    }

    fn drain(&mut self, i: usize) {
        while let Some(action) = self.nodes[i]
            .machine
            .as_mut()
            .and_then(Machine::poll_action)
        {
            match action {
                Action::Send { link, to, datagram } => {
                    let Some(dest) = self
                        .config
                        .nodes
                        .iter()
                        .position(|n| n.addresses[link] == to.ip())
                    else {
                        continue;
                    };
                    let packet = Packet {
                        at: self.now
                            + ms(self.delay.0 + self.rng.below(self.delay.1 - self.delay.0 + 1)),
                        to: dest,
                        link,
                        from: self.config.nodes[i].addresses[link],
                        bytes: datagram,
                    };
                    if self.capture {
                        self.captured.push(Packet {
                            bytes: packet.bytes.clone(),
                            ..packet
                        });
                        if self.withhold && dest == 1 {
                            continue;
                        }
                    }
                    if !self.reachable(i, dest, link) {
                        continue;
                    }
                    // Random loss, but never more than two in a row on one path: a
                    // longer run is a partition, and partitions are their own verb.
                    let run = self.loss_runs.entry((i, dest, link)).or_default();
                    if *run < 2 && self.rng.chance(self.loss) {
                        *run += 1;
                        continue;
                    }
                    *run = 0;
                    self.packets.push(packet);
                }
                Action::Effect { id, effect } => self.nodes[i].queue.push_back((id, effect)),
                Action::Announce { .. } => {
                    let t = self.t();
                    self.nodes[i].announces.push(t);
                }
                Action::Log(event) => {
                    let t = self.t();
                    self.nodes[i].events.push((t, event));
                }
                Action::Exit => {
                    self.nodes[i].machine = None;
                    self.nodes[i].queue.clear();
                }
            }
        }
        self.start_effect(i);
    }

    /// Starts the next queued effect if none is running; the kernel change it makes
    /// is applied when it completes.
    fn start_effect(&mut self, i: usize) {
        if self.nodes[i].running.is_some() {
            return;
        }
        let Some((id, effect)) = self.nodes[i].queue.pop_front() else {
            return;
        };
        let index = |address: IpAddr| {
            self.config
                .vips
                .iter()
                .position(|v| v.address == address)
                .expect("a configured VIP")
        };
        let (delay, outcome) = match effect {
            Effect::FindStale { vips } => {
                let node = &self.nodes[i];
                let found = (0..vips.len())
                    .filter(|&v| node.vips[index(vips[v].address)])
                    .collect();
                (MS, Outcome::Present(found))
            }
            Effect::AddVip(vip) => {
                // The address is usable when the kernel has it: mark it at once so
                // an overlap with the peer shows up in the invariant check.
                let v = index(vip.address);
                self.nodes[i].vips[v] = true;
                (MS, Outcome::Vip(Ok(())))
            }
            Effect::RemoveVip(vip) => {
                let v = index(vip.address);
                self.nodes[i].vips[v] = false;
                (MS, Outcome::Vip(Ok(())))
            }
            Effect::Announce { .. } => {
                let t = self.now - self.base;
                self.nodes[i].announces.push(t);
                (Duration::ZERO, Outcome::Done)
            }
            Effect::RunHook { hook, env, .. } => {
                self.nodes[i].hooks.push((hook, env.into_iter().collect()));
                (
                    self.hook_time,
                    Outcome::Hook {
                        success: true,
                        summary: "exited 0".into(),
                    },
                )
            }
        };
        self.nodes[i].running = Some((self.now + delay, id, outcome));
    }

    fn next_time(&self) -> Instant {
        let mut next = self.next_probe;
        for p in self.packets.iter().filter(|p| !self.nodes[p.to].paused) {
            next = next.min(p.at);
        }
        for node in self.nodes.iter().filter(|n| !n.paused) {
            if let Some((at, _, _)) = &node.running {
                next = next.min(*at);
            }
            if let Some(t) = node.machine.as_ref().and_then(Machine::poll_timeout) {
                next = next.min(t);
            }
        }
        next.max(self.now)
    }

    fn step(&mut self) {
        self.now = self.next_time();
        let now = self.now;
        // Datagrams due now.
        let mut due = Vec::new();
        let mut i = 0;
        while i < self.packets.len() {
            if self.packets[i].at <= now && !self.nodes[self.packets[i].to].paused {
                due.push(self.packets.swap_remove(i));
            } else {
                i += 1;
            }
        }
        due.sort_by_key(|p| p.at);
        for p in due {
            self.input(
                p.to,
                Input::Datagram {
                    link: p.link,
                    from: p.from,
                    bytes: &p.bytes,
                },
            );
        }
        // Effects completing now.
        let running: Vec<usize> = (0..self.nodes.len())
            .filter(|&i| !self.nodes[i].paused)
            .collect();
        for &i in &running {
            let done = matches!(&self.nodes[i].running, Some((at, _, _)) if *at <= now);
            if done {
                let (_, id, outcome) = self.nodes[i].running.take().unwrap();
                self.input(
                    i,
                    Input::Done {
                        id,
                        outcome: &outcome,
                    },
                );
                self.start_effect(i);
            }
        }
        // Gateway probes.
        if now >= self.next_probe {
            self.next_probe = now + self.config.health.interval;
            for &i in &running {
                let rtt = self.nodes[i].gateway_up.then_some(MS);
                self.input(
                    i,
                    Input::Probe {
                        source: Source::Gateway(0),
                        rtt,
                    },
                );
            }
        }
        // Timers.
        for i in 0..self.nodes.len() {
            let due = !self.nodes[i].paused
                && self.nodes[i]
                    .machine
                    .as_ref()
                    .and_then(Machine::poll_timeout)
                    .is_some_and(|t| t <= now);
            if due {
                if let Some(m) = self.nodes[i].machine.as_mut() {
                    m.handle_timeout(now);
                    // A timer still due right after it ran would spin the shell.
                    if let Some(t) = m.poll_timeout() {
                        assert!(t > now, "seed {}: node {i} timer stuck at {t:?}", self.seed);
                    }
                }
                self.drain(i);
            }
        }
        self.check_invariants();
    }

    fn check_invariants(&mut self) {
        let holders = self.holders();
        self.max_holders_seen = self.max_holders_seen.max(holders.len());
        if holders.len() > 1 && self.now > self.split_allowed_until {
            panic!(
                "seed {}: at {:?} the VIP is on nodes {:?}\n{}",
                self.seed,
                self.t(),
                holders,
                self.dump()
            );
        }
    }

    fn run_for(&mut self, d: Duration) {
        let end = self.now + d;
        while self.next_time() <= end {
            self.step();
        }
        self.now = end;
    }

    /// Runs until `cond` holds, at most `limit`; returns the time it took.
    fn run_until(&mut self, limit: Duration, mut cond: impl FnMut(&Sim) -> bool) -> Duration {
        let start = self.now;
        let end = self.now + limit;
        while !cond(self) {
            if self.next_time() > end {
                panic!(
                    "seed {}: condition not reached within {limit:?}\n{}",
                    self.seed,
                    self.dump()
                );
            }
            self.step();
        }
        self.now - start
    }

    // --- observations -------------------------------------------------------

    fn role(&self, i: usize) -> Option<Role> {
        self.nodes[i].machine.as_ref().map(Machine::role)
    }

    fn holders(&self) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|&i| self.nodes[i].vips[0] && !self.nodes[i].isolated)
            .collect()
    }

    fn active(&self) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|&i| self.role(i) == Some(Role::Active))
            .collect()
    }

    fn transitions(&self, i: usize) -> Vec<(Role, Role, String)> {
        self.nodes[i]
            .events
            .iter()
            .filter_map(|(_, e)| match e {
                Event::Transition { from, to, reason } => Some((*from, *to, reason.to_string())),
                _ => None,
            })
            .collect()
    }

    fn has_event(&self, i: usize, f: impl Fn(&Event) -> bool) -> bool {
        self.nodes[i].events.iter().any(|(_, e)| f(e))
    }

    fn note(&mut self, op: String) {
        let t = self.t();
        self.ops.push((t, op));
    }

    fn dump(&self) -> String {
        let mut out = String::new();
        for (t, op) in &self.ops {
            out.push_str(&format!("  {t:>10?} fault: {op}\n"));
        }
        for (i, node) in self.nodes.iter().enumerate() {
            out.push_str(&format!(
                "node {} role {:?} vips {:?} rejected {:?}\n",
                self.config.nodes[i].name,
                self.role(i),
                node.vips,
                node.machine.as_ref().map(|m| m.rejected().clone())
            ));
            if let Some(m) = &node.machine {
                out.push_str(&format!(
                    "  next timer in {:?}, sent {}, peers {:?}\n",
                    m.poll_timeout()
                        .map(|t| t.saturating_duration_since(self.now)),
                    m.heartbeats_sent(),
                    m.peers()
                        .iter()
                        .map(|p| (p.name.clone(), p.alive, p.heard_nonce, p.incarnation))
                        .collect::<Vec<_>>()
                ));
            }
            for (t, e) in node.events.iter().rev().take(60).rev() {
                out.push_str(&format!("  {t:>10?} {e}\n"));
            }
        }
        out
    }

    /// Settles a two-node cluster: alpha active, beta standby.
    fn settled(config: Config, seed: u64) -> Sim {
        let mut sim = Sim::new(config, seed);
        sim.run_until(ms(3000), |s| {
            s.role(0) == Some(Role::Active)
                && s.nodes[0].vips[0]
                && s.role(1) == Some(Role::Standby)
        });
        sim.run_for(ms(200));
        sim
    }
}

// --- start-up ----------------------------------------------------------------

#[test]
fn startup_the_preferred_node_takes_the_vip_and_only_it() {
    let mut sim = Sim::new(config(2, Failback::Auto), 1);
    sim.run_for(ms(3000));
    assert_eq!(sim.role(0), Some(Role::Active));
    assert_eq!(sim.role(1), Some(Role::Standby));
    assert_eq!(sim.holders(), vec![0]);
    assert_eq!(sim.max_holders_seen, 1);
    let beta = sim.transitions(1)[0].2.clone();
    assert!(
        beta == "no node active, peer alpha ranks first" || beta == "peer alpha is active",
        "{beta}"
    );
    // Both heard each other at once, so nobody waited for init_dead.
    let took = sim.nodes[0]
        .events
        .iter()
        .find_map(|(t, e)| {
            matches!(
                e,
                Event::Transition {
                    to: Role::Active,
                    ..
                }
            )
            .then_some(*t)
        })
        .unwrap();
    assert!(took < ms(1000), "took over at {took:?}");
}

#[test]
fn start_hook_runs_after_the_vip_with_the_documented_environment() {
    let sim = Sim::settled(config(2, Failback::Auto), 2);
    let (hook, env) = sim.nodes[0]
        .hooks
        .iter()
        .find(|(h, _)| *h == Hook::Start)
        .expect("start hook ran");
    assert_eq!(*hook, Hook::Start);
    assert_eq!(env["FAILOVERD_STATE"], "active");
    assert_eq!(env["FAILOVERD_NODE"], "alpha");
    assert_eq!(env["FAILOVERD_PEER"], "beta");
    assert_eq!(env["FAILOVERD_VIPS"], "198.18.0.10/24");
    assert_eq!(env["FAILOVERD_CLUSTER"], "sim");
    assert!(!env["FAILOVERD_REASON"].is_empty());
    assert!(sim.nodes[1].hooks.iter().all(|(h, _)| *h != Hook::Start));
}

#[test]
fn a_node_alone_waits_init_dead_then_takes_over() {
    let mut sim = Sim::new(config(2, Failback::Auto), 3);
    sim.crash(0);
    sim.packets.clear();
    let took = sim.run_until(ms(3000), |s| s.role(1) == Some(Role::Active));
    assert!(took >= ms(1000), "claimed before init_dead: {took:?}");
    let reason = sim.transitions(1)[0].2.clone();
    assert!(reason.contains("init_dead"), "{reason}");
}

#[test]
fn a_restarting_node_does_not_grab_the_vip_from_an_active_peer() {
    let mut sim = Sim::settled(config(2, Failback::Manual), 4);
    sim.crash(0);
    sim.run_until(ms(2000), |s| s.role(1) == Some(Role::Active));
    sim.restart(0);
    sim.run_for(ms(5000));
    assert_eq!(sim.role(0), Some(Role::Standby));
    assert_eq!(sim.holders(), vec![1]);
    let reason = sim.transitions(0).last().unwrap().2.clone();
    assert_eq!(reason, "peer beta is active");
}

// --- node death ---------------------------------------------------------------

#[test]
fn primary_death_the_standby_takes_over_after_dead() {
    let mut sim = Sim::settled(config(2, Failback::Auto), 5);
    sim.crash(0);
    let took = sim.run_until(ms(3000), |s| s.holders() == vec![1]);
    let t = &sim.config.timing;
    assert!(took >= t.dead - t.interval, "took over too early: {took:?}");
    assert!(
        took <= t.dead + t.interval + sim.hook_time,
        "took over too late: {took:?}"
    );
    let (from, to, reason) = sim.transitions(1).last().unwrap().clone();
    assert_eq!((from, to), (Role::Standby, Role::Active));
    assert_eq!(reason, "peer alpha dead on all links");
}

#[test]
fn crossover_cut_with_lan_alive_moves_nothing() {
    let mut sim = Sim::settled(config(2, Failback::Auto), 6);
    let before = (sim.transitions(0).len(), sim.transitions(1).len());
    sim.cut_link(0);
    sim.run_for(ms(10_000));
    assert_eq!((sim.transitions(0).len(), sim.transitions(1).len()), before);
    assert_eq!(sim.holders(), vec![0]);
    assert!(sim.has_event(
        1,
        |e| matches!(e, Event::LinkDown { link, .. } if link == "crossover")
    ));
    assert!(!sim.has_event(1, |e| matches!(e, Event::PeerDead { .. })));
    // The link heals: logged, and still nothing moves.
    sim.restore_link(0);
    sim.run_for(ms(1000));
    assert!(sim.has_event(
        1,
        |e| matches!(e, Event::LinkUp { link, .. } if link == "crossover")
    ));
    assert_eq!(sim.holders(), vec![0]);
}

// --- health -------------------------------------------------------------------

#[test]
fn gateway_loss_on_the_active_node_moves_the_vip_without_overlap() {
    let mut sim = Sim::settled(config(2, Failback::Auto), 7);
    sim.gateway_down(0);
    sim.run_until(ms(2000), |s| s.holders() == vec![1]);
    sim.run_for(ms(500));
    assert_eq!(sim.role(0), Some(Role::Fault));
    assert_eq!(sim.role(1), Some(Role::Active));
    assert_eq!(sim.max_holders_seen, 1);
    assert!(sim.nodes[0].hooks.iter().any(|(h, _)| *h == Hook::Fault));
    let reason = sim.transitions(0).last().unwrap().2.clone();
    assert!(reason.contains("health checks failing"), "{reason}");
    // Planned move: beta took over on alpha's heartbeat, not after `dead`.
    let (_, _, why) = sim.transitions(1).last().unwrap().clone();
    assert_eq!(why, "planned handover from alpha");
}

#[test]
fn gateway_lost_for_everyone_moves_nothing() {
    let mut sim = Sim::settled(config(2, Failback::Auto), 8);
    let before = sim.transitions(0).len();
    sim.gateway_down(0);
    sim.gateway_down(1);
    sim.run_for(ms(5000));
    assert_eq!(sim.transitions(0).len(), before);
    assert_eq!(sim.holders(), vec![0]);
}

#[test]
fn standby_losing_its_gateway_goes_to_fault_and_back() {
    let mut sim = Sim::settled(config(2, Failback::Auto), 9);
    sim.gateway_down(1);
    sim.run_until(ms(2000), |s| s.role(1) == Some(Role::Fault));
    sim.gateway_up(1);
    sim.run_until(ms(2000), |s| s.role(1) == Some(Role::Standby));
    assert_eq!(sim.holders(), vec![0]);
}

#[test]
fn a_node_alone_takes_the_vip_even_with_its_gateway_down() {
    let mut sim = Sim::settled(config(2, Failback::Auto), 10);
    sim.gateway_down(1);
    sim.run_until(ms(2000), |s| s.role(1) == Some(Role::Fault));
    sim.crash(0);
    sim.run_until(ms(3000), |s| s.holders() == vec![1]);
}

#[test]
fn the_faulty_node_gets_the_vip_back_only_by_failback_rules() {
    let mut sim = Sim::settled(config(2, Failback::Auto), 11);
    sim.gateway_down(0);
    sim.run_until(ms(2000), |s| s.holders() == vec![1]);
    sim.gateway_up(0);
    // Healthy again and preferred: failback after failback_delay, never overlapping.
    let took = sim.run_until(ms(5000), |s| s.holders() == vec![0]);
    assert!(took >= sim.config.cluster.failback_delay, "{took:?}");
    assert_eq!(sim.max_holders_seen, 1);
}

// --- partitions -----------------------------------------------------------------

#[test]
fn partition_then_heal_leaves_one_active_within_an_interval() {
    let mut sim = Sim::settled(config(2, Failback::Manual), 12);
    sim.partition(0, 1);
    sim.run_until(ms(3000), |s| s.active() == vec![0, 1]);
    sim.run_for(ms(500));
    let announces_before = sim.nodes[0].announces.len();
    let loser_announces = sim.nodes[1].announces.len();
    sim.heal();
    // The check in `step` fails the test if both still hold after the slack.
    sim.run_until(ms(1000), |s| {
        s.holders() == vec![0] && s.active() == vec![0]
    });
    assert_eq!(sim.role(1), Some(Role::Standby));
    let reason = sim.transitions(1).last().unwrap().2.clone();
    assert!(reason.contains("ranks higher"), "{reason}");
    // The winner re-announces so switches learn its MAC again; the loser, which
    // heard the winner come back in the step it decided to release, does not.
    sim.run_for(ms(300));
    assert!(sim.nodes[0].announces.len() > announces_before);
    assert_eq!(sim.nodes[1].announces.len(), loser_announces);
}

#[test]
fn an_isolated_active_node_is_replaced_and_yields_on_return() {
    let mut sim = Sim::settled(config(2, Failback::Auto), 13);
    sim.isolate(0);
    sim.run_until(ms(3000), |s| s.role(1) == Some(Role::Active));
    sim.heal();
    sim.run_until(ms(1000), |s| s.active().len() == 1);
    // alpha outranks beta, so beta released; with failback auto alpha keeps it.
    assert_eq!(sim.active(), vec![0]);
}

// --- failback --------------------------------------------------------------------

#[test]
fn failback_auto_returns_the_vip_after_the_delay_without_overlap() {
    let mut sim = Sim::settled(config(2, Failback::Auto), 14);
    sim.crash(0);
    sim.run_until(ms(2000), |s| s.holders() == vec![1]);
    sim.restart(0);
    sim.run_until(ms(2000), |s| s.role(0) == Some(Role::Standby));
    let took = sim.run_until(ms(5000), |s| s.holders() == vec![0]);
    assert!(
        took + ms(300) >= sim.config.cluster.failback_delay,
        "{took:?}"
    );
    assert_eq!(sim.max_holders_seen, 1);
    let (_, _, reason) = sim.transitions(1).last().unwrap().clone();
    assert_eq!(reason, "failback to preferred node alpha");
    let (_, _, reason) = sim.transitions(0).last().unwrap().clone();
    assert_eq!(reason, "planned handover from beta");
}

#[test]
fn failback_manual_keeps_the_vip_where_it_is() {
    let mut sim = Sim::settled(config(2, Failback::Manual), 15);
    sim.crash(0);
    sim.run_until(ms(2000), |s| s.holders() == vec![1]);
    sim.restart(0);
    sim.run_for(ms(10_000));
    assert_eq!(sim.holders(), vec![1]);
    assert_eq!(sim.role(0), Some(Role::Standby));
}

#[test]
fn a_primary_that_keeps_restarting_never_pulls_the_vip() {
    let mut sim = Sim::settled(config(2, Failback::Auto), 16);
    sim.crash(0);
    sim.run_until(ms(2000), |s| s.holders() == vec![1]);
    for _ in 0..6 {
        sim.restart(0);
        sim.run_for(sim.config.cluster.failback_delay / 2 + ms(400));
        sim.kill_daemon(0);
        sim.run_for(ms(200));
    }
    assert_eq!(sim.holders(), vec![1]);
    let moves = sim
        .transitions(1)
        .iter()
        .filter(|(_, to, _)| *to == Role::Active)
        .count();
    assert_eq!(moves, 1, "{:?}", sim.transitions(1));
}

// --- planned moves ---------------------------------------------------------------

#[test]
fn graceful_shutdown_hands_over_at_once_and_never_overlaps() {
    let mut sim = Sim::settled(config(2, Failback::Auto), 17);
    sim.shutdown(0);
    let took = sim.run_until(ms(2000), |s| s.holders() == vec![1]);
    assert!(took < sim.config.timing.dead, "waited for dead: {took:?}");
    assert_eq!(sim.max_holders_seen, 1);
    assert!(sim.nodes[0].machine.is_none(), "alpha exited");
    let stop = sim.nodes[0]
        .hooks
        .iter()
        .find(|(h, _)| *h == Hook::Stop)
        .unwrap();
    assert_eq!(stop.1["FAILOVERD_STATE"], "stopped");
    let (_, _, reason) = sim.transitions(1).last().unwrap().clone();
    assert_eq!(reason, "peer alpha shut down");
}

#[test]
fn graceful_shutdown_of_the_standby_moves_nothing() {
    let mut sim = Sim::settled(config(2, Failback::Auto), 18);
    sim.shutdown(1);
    sim.run_for(ms(2000));
    assert!(sim.nodes[1].machine.is_none());
    assert_eq!(sim.holders(), vec![0]);
    assert!(sim.has_event(0, |e| matches!(e, Event::PeerLeaving { .. })));
    assert!(!sim.has_event(0, |e| matches!(e, Event::PeerDead { .. })));
}

#[test]
fn handover_waits_for_a_slow_stop_hook() {
    let mut sim = Sim::settled(config(2, Failback::Auto), 19);
    sim.hook_time = ms(2000);
    sim.shutdown(0);
    sim.run_for(ms(1500));
    // The stop hook still runs: beta must not have taken the VIP.
    assert_eq!(sim.holders(), vec![0]);
    sim.run_until(ms(2000), |s| s.holders() == vec![1]);
    assert_eq!(sim.max_holders_seen, 1);
}

// --- crash leftovers and hostile packets -----------------------------------------

#[test]
fn a_stale_vip_found_at_start_is_removed() {
    let mut sim = Sim::settled(config(2, Failback::Manual), 20);
    sim.kill_daemon(0);
    // Beta takes over while alpha's kernel keeps the VIP: only alpha's restart can
    // clean that up, so the overlap is tolerated until then.
    sim.split_allowed_until = sim.now + ms(10_000);
    sim.run_until(ms(2000), |s| s.role(1) == Some(Role::Active));
    sim.split_allowed_until = sim.now + ms(100);
    sim.restart(0);
    sim.run_for(ms(100));
    assert_eq!(sim.holders(), vec![1]);
    assert!(sim.has_event(0, |e| matches!(e, Event::StaleVip { .. })));
    assert!(sim.nodes[0].hooks.iter().any(|(h, _)| *h == Hook::Stop));
}

#[test]
fn replayed_heartbeats_never_revive_a_dead_peer() {
    let mut sim = Sim::settled(config(2, Failback::Auto), 21);
    // Record what alpha sends for a while, as an attacker on the LAN would.
    sim.capture = true;
    sim.run_for(ms(300));
    sim.capture = false;
    let captured = std::mem::take(&mut sim.captured);
    assert!(!captured.is_empty());
    sim.crash(0);
    sim.run_until(ms(2000), |s| s.role(1) == Some(Role::Active));
    for p in captured.into_iter().filter(|p| p.to == 1) {
        sim.input(
            1,
            Input::Datagram {
                link: p.link,
                from: p.from,
                bytes: &p.bytes,
            },
        );
        sim.run_for(ms(10));
    }
    let beta = sim.nodes[1].machine.as_ref().unwrap();
    assert!(!beta.peers()[0].alive, "a replay revived alpha");
    assert!(
        beta.rejected()
            .get("replayed or duplicate")
            .copied()
            .unwrap_or(0)
            > 0
    );
    assert_eq!(sim.role(1), Some(Role::Active));
}

#[test]
fn recordings_replayed_to_a_restarted_node_change_nothing() {
    let mut sim = Sim::settled(config(2, Failback::Auto), 25);
    sim.capture = true;
    sim.run_for(ms(300));
    sim.capture = false;
    let captured = std::mem::take(&mut sim.captured);
    sim.crash(0);
    sim.run_until(ms(2000), |s| s.role(1) == Some(Role::Active));
    // Beta restarts: it remembers nothing, so only the echo can tell the recording
    // from a live alpha.
    sim.crash(1);
    sim.packets.clear();
    sim.restart(1);
    for p in captured.iter().filter(|p| p.to == 1) {
        sim.input(
            1,
            Input::Datagram {
                link: p.link,
                from: p.from,
                bytes: &p.bytes,
            },
        );
        sim.run_for(ms(5));
    }
    sim.run_until(ms(3000), |s| s.role(1) == Some(Role::Active));
    let beta = sim.nodes[1].machine.as_ref().unwrap();
    assert!(!beta.peers()[0].alive, "a recording revived alpha");
    let reason = sim.transitions(1).last().unwrap().2.clone();
    assert_eq!(reason, "no peer answered within init_dead");
}

#[test]
fn withheld_packets_replayed_later_are_stale() {
    let mut sim = Sim::settled(config(2, Failback::Auto), 26);
    // An attacker on the path keeps alpha's packets from beta and replays them once
    // alpha is gone: they were never seen, so only their age betrays them.
    sim.capture = true;
    sim.withhold = true;
    sim.run_for(ms(150));
    sim.capture = false;
    let withheld = std::mem::take(&mut sim.captured);
    sim.crash(0);
    sim.run_until(ms(2000), |s| s.role(1) == Some(Role::Active));
    sim.run_for(sim.config.timing.dead * 2);
    for p in withheld.iter().filter(|p| p.to == 1) {
        sim.input(
            1,
            Input::Datagram {
                link: p.link,
                from: p.from,
                bytes: &p.bytes,
            },
        );
    }
    sim.run_for(ms(100));
    let beta = sim.nodes[1].machine.as_ref().unwrap();
    assert!(!beta.peers()[0].alive);
    assert!(beta.rejected()["stale (not echoing a recent nonce)"] > 0);
}

#[test]
fn packets_from_another_cluster_or_key_are_counted_and_ignored() {
    let mut sim = Sim::settled(config(2, Failback::Auto), 22);
    let mut foreign = config(2, Failback::Auto);
    foreign.cluster.name = "other".into();
    let mut wrong_key = config(2, Failback::Auto);
    wrong_key.key = Key::new(b"not-the-cluster-key-at-all".to_vec());
    let now = sim.now;
    for cfg in [foreign, wrong_key] {
        // An impostor claiming to be alpha, active, on beta's links.
        let mut impostor = Machine::new(&cfg, 0, u64::MAX / 2, now);
        impostor.handle_timeout(now);
        while let Some(action) = impostor.poll_action() {
            if let Action::Send { link, to, datagram } = action
                && to.ip() == sim.config.nodes[1].addresses[link]
            {
                let from = sim.config.nodes[0].addresses[link];
                sim.input(
                    1,
                    Input::Datagram {
                        link,
                        from,
                        bytes: &datagram,
                    },
                );
            }
        }
    }
    sim.crash(0);
    sim.run_until(ms(2000), |s| s.role(1) == Some(Role::Active));
    let beta = sim.nodes[1].machine.as_ref().unwrap();
    assert!(beta.rejected()["other cluster"] > 0);
    assert!(beta.rejected()["authentication failed"] > 0);
    assert!(sim.has_event(1, |e| matches!(e, Event::Rejected { .. })));
}

#[test]
fn a_different_configuration_on_the_peer_is_reported() {
    let mut other = config(2, Failback::Auto);
    other.timing.dead = ms(800);
    let mut sim = Sim::new(config(2, Failback::Auto), 23);
    sim.nodes[1].machine = Some(Machine::new(&other, 1, 99, sim.now));
    sim.run_for(ms(1500));
    assert!(sim.has_event(0, |e| matches!(e, Event::FingerprintMismatch { .. })));
    assert!(sim.has_event(1, |e| matches!(e, Event::FingerprintMismatch { .. })));
}

// --- more than two nodes ----------------------------------------------------------

#[test]
fn three_nodes_elect_one_and_fail_over_in_priority_order() {
    let mut sim = Sim::new(config(3, Failback::Manual), 24);
    sim.run_until(ms(3000), |s| s.holders() == vec![0]);
    sim.crash(0);
    sim.run_until(ms(3000), |s| s.holders() == vec![1]);
    sim.crash(1);
    sim.run_until(ms(3000), |s| s.holders() == vec![2]);
    assert_eq!(sim.max_holders_seen, 1);
}

// --- seeded randomized runs ----------------------------------------------------------

/// Random faults over a lossy network. Invariants checked after every step: never two
/// holders unless the nodes could not hear each other (or only just could again).
/// After the faults stop and everything heals, exactly one node holds the VIP and it
/// is the one the machines agree is active.
#[test]
fn randomized_runs_keep_the_invariants() {
    if let Some(seed) = std::env::var("SIM_SEED").ok().and_then(|s| s.parse().ok()) {
        return random_run(seed);
    }
    let seeds: u64 = std::env::var("SIM_SEEDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200);
    for seed in 1..=seeds {
        random_run(seed * 7919);
    }
}

fn random_run(seed: u64) {
    let failback = if seed.is_multiple_of(2) {
        Failback::Auto
    } else {
        Failback::Manual
    };
    let nodes = if seed.is_multiple_of(5) { 3 } else { 2 };
    let mut sim = Sim::new(config(nodes, failback), seed);
    sim.loss = 0.05;
    sim.delay = (1, 5);
    for _ in 0..25 {
        let n = sim.rng.below(nodes as u64) as usize;
        let verb = sim.rng.below(10);
        sim.note(format!("verb {verb} on node {n}"));
        match verb {
            0 => sim.crash(n),
            1 | 2 => {
                if sim.nodes[n].machine.is_none() {
                    sim.restart(n);
                }
            }
            3 => sim.shutdown(n),
            4 => sim.gateway_down(n),
            5 => sim.gateway_up(n),
            6 => {
                let link = sim.rng.below(2) as usize;
                sim.cut_link(link);
            }
            7 => {
                let link = sim.rng.below(2) as usize;
                sim.restore_link(link);
            }
            8 => {
                let m = (n + 1) % nodes;
                sim.partition(n, m);
            }
            _ => sim.heal(),
        }
        let d = ms(100 + sim.rng.below(2500));
        sim.run_for(d);
    }
    sim.heal();
    for n in 0..nodes {
        sim.gateway_up(n);
        if sim.nodes[n].machine.is_none() {
            sim.crash(n);
            sim.restart(n);
        }
    }
    sim.run_for(ms(8000));
    let holders = sim.holders();
    assert_eq!(
        holders.len(),
        1,
        "seed {seed}: holders {holders:?}\n{}",
        sim.dump()
    );
    assert_eq!(sim.active(), holders, "seed {seed}\n{}", sim.dump());
}

// --- operator orders -------------------------------------------------------------

#[test]
fn takeover_moves_the_vip_to_the_asking_node_without_overlap() {
    let mut sim = Sim::settled(config(2, Failback::Auto), 30);
    let accepted = sim.order(1, Order::Takeover).unwrap();
    assert_eq!(
        accepted,
        Accepted::TakingOver {
            holder: Some("alpha".into())
        }
    );
    sim.run_until(ms(2000), |s| s.holders() == vec![1]);
    assert_eq!(sim.max_holders_seen, 1);
    assert_eq!(sim.transitions(1).last().unwrap().2, "operator takeover");
    assert_eq!(
        sim.transitions(0).last().unwrap().2,
        "operator asked beta to take over"
    );
    // The operator's choice stands: no automatic failback undoes it.
    sim.run_for(sim.config.cluster.failback_delay * 3);
    assert_eq!(sim.holders(), vec![1]);
}

#[test]
fn takeover_is_refused_when_it_cannot_be_done() {
    let mut sim = Sim::settled(config(2, Failback::Auto), 31);
    assert_eq!(
        sim.order(0, Order::Takeover).unwrap_err(),
        Refusal::AlreadyActive
    );
    sim.gateway_down(1);
    sim.run_until(ms(2000), |s| s.role(1) == Some(Role::Fault));
    assert_eq!(
        sim.order(1, Order::Takeover).unwrap_err(),
        Refusal::Unhealthy { failing: 1 }
    );
}

#[test]
fn standby_hands_over_and_stays_out_of_the_way() {
    let mut sim = Sim::settled(config(2, Failback::Auto), 32);
    sim.order(0, Order::Standby).unwrap();
    sim.run_until(ms(2000), |s| s.holders() == vec![1]);
    assert_eq!(sim.max_holders_seen, 1);
    // alpha outranks beta, yet neither failback nor the election bring it back.
    sim.run_for(sim.config.cluster.failback_delay * 3);
    assert_eq!(sim.holders(), vec![1]);
    assert_eq!(sim.role(0), Some(Role::Standby));
    // Still a standby in the HA sense: beta dies, alpha takes over.
    sim.crash(1);
    sim.run_until(ms(2000), |s| s.holders() == vec![0]);
}

#[test]
fn standby_is_refused_without_a_live_peer() {
    let mut sim = Sim::settled(config(2, Failback::Auto), 33);
    sim.crash(1);
    sim.run_until(ms(2000), |s| {
        s.nodes[0]
            .machine
            .as_ref()
            .is_some_and(|m| !m.peers()[0].alive)
    });
    assert_eq!(
        sim.order(0, Order::Standby).unwrap_err(),
        Refusal::NoLivePeer
    );
}

#[test]
fn manual_failback_returns_the_vip_to_the_preferred_node() {
    let mut sim = Sim::settled(config(2, Failback::Manual), 34);
    sim.crash(0);
    sim.run_until(ms(2000), |s| s.holders() == vec![1]);
    sim.restart(0);
    sim.run_for(ms(3000));
    assert_eq!(sim.holders(), vec![1]);
    // Either node can ask; here the holder does.
    sim.order(1, Order::Failback).unwrap();
    sim.run_until(ms(2000), |s| s.holders() == vec![0]);
    assert_eq!(sim.max_holders_seen, 1);
    assert_eq!(
        sim.order(0, Order::Failback).unwrap_err(),
        Refusal::AlreadyPreferred {
            node: "alpha".into()
        }
    );
}

/// The node `failoverd failback` moves the VIPs to, as node `i` names it in its status.
fn preferred(sim: &Sim, i: usize) -> String {
    let machine = sim.nodes[i].machine.as_ref().expect("a running node");
    let status = machine.status(sim.now, SystemTime::now());
    let preferred = machine.preferred_node();
    assert_eq!(status.preferred.as_ref(), Some(&preferred));
    preferred
}

#[test]
fn the_preferred_node_is_the_first_ranked_live_one_that_may_hold_the_vips() {
    // alpha (priority 200), beta (150), gamma (100).
    let mut sim = Sim::new(config(3, Failback::Manual), 43);
    sim.run_until(ms(3000), |s| s.holders() == vec![0]);
    sim.run_for(ms(300));
    for i in 0..3 {
        assert_eq!(
            preferred(&sim, i),
            "alpha",
            "higher priority first, on node {i}"
        );
    }
    // Fewer failing checks come before priority; a node in fault is never preferred.
    sim.gateway_down(0);
    sim.run_until(ms(3000), |s| {
        s.role(0) == Some(Role::Fault) && s.holders() == vec![1]
    });
    for i in 0..3 {
        assert_eq!(
            preferred(&sim, i),
            "beta",
            "alpha fails a check, on node {i}"
        );
    }
    // A node asked to stand by comes after its equals.
    sim.order(1, Order::Standby).unwrap();
    sim.run_until(ms(3000), |s| s.holders() == vec![2]);
    for i in 0..3 {
        assert_eq!(preferred(&sim, i), "gamma", "beta stands by, on node {i}");
    }
    // A dead peer is not preferred: beta, alone with alpha in fault, names itself.
    sim.crash(2);
    sim.run_until(ms(3000), |s| s.holders() == vec![1]);
    assert_eq!(preferred(&sim, 1), "beta");
}

#[test]
fn maintenance_freezes_automatic_moves_until_turned_off() {
    let mut sim = Sim::settled(config(2, Failback::Auto), 35);
    sim.order(1, Order::Maintenance(true)).unwrap();
    sim.run_for(ms(300));
    // Alpha loses its gateway: normally a move, now nothing happens.
    sim.gateway_down(0);
    sim.run_for(ms(3000));
    assert_eq!(sim.holders(), vec![0]);
    assert_eq!(sim.role(0), Some(Role::Active));
    assert_eq!(
        sim.order(1, Order::Takeover).unwrap_err(),
        Refusal::Frozen { by: "beta".into() }
    );
    assert_eq!(
        sim.order(0, Order::Maintenance(false)).unwrap_err(),
        Refusal::MaintenanceElsewhere { by: "beta".into() }
    );
    sim.order(1, Order::Maintenance(false)).unwrap();
    sim.run_until(ms(3000), |s| s.holders() == vec![1]);
    assert_eq!(sim.max_holders_seen, 1);
}

#[test]
fn maintenance_on_a_node_that_dies_no_longer_freezes_its_peer() {
    let mut sim = Sim::settled(config(2, Failback::Auto), 36);
    sim.order(0, Order::Maintenance(true)).unwrap();
    sim.run_for(ms(300));
    sim.crash(0);
    sim.run_until(ms(2000), |s| s.holders() == vec![1]);
}

#[test]
fn maintenance_survives_a_restart_and_keeps_the_vip_in_place() {
    let mut sim = Sim::settled(config(2, Failback::Auto), 37);
    sim.order(0, Order::Maintenance(true)).unwrap();
    sim.run_for(ms(300));
    // The daemon restarts (an upgrade, say) while the kernel keeps the VIP.
    sim.kill_daemon(0);
    let now = sim.now;
    sim.nodes[0].machine = Some(Machine::with_maintenance(&sim.config, 0, 777, true, now));
    sim.drain(0);
    sim.run_for(ms(3000));
    assert_eq!(sim.holders(), vec![0]);
    assert_eq!(sim.role(0), Some(Role::Active));
    assert_eq!(sim.role(1), Some(Role::Standby));
    assert!(
        sim.nodes[0]
            .hooks
            .iter()
            .filter(|(h, _)| *h == Hook::Stop)
            .count()
            == 0
    );
}

// --- reload ----------------------------------------------------------------------

#[test]
fn reload_applies_priority_and_a_new_vip_without_dropping_the_old_one() {
    let mut sim = Sim::settled(config(2, Failback::Auto), 38);
    let mut next = sim.config.clone();
    next.vips.push(failoverd::config::Vip {
        address: "198.18.0.20".parse().unwrap(),
        prefix_len: 24,
        interface: "eth0".into(),
        label: None,
    });
    next.nodes[1].priority = 250;
    // Both nodes get the new file, as `scp` then `failoverd reload` would do.
    sim.config = next.clone();
    for node in &mut sim.nodes {
        node.vips.resize(2, false);
    }
    for i in 0..2 {
        let now = sim.now;
        let changes = sim.nodes[i]
            .machine
            .as_mut()
            .unwrap()
            .reconfigure(now, &next)
            .unwrap();
        assert!(
            changes.contains(&ConfigChange::VipAdded("198.18.0.20/24".into())),
            "{changes:?}"
        );
        sim.drain(i);
    }
    sim.run_for(ms(200));
    assert!(sim.nodes[0].vips[0], "the existing VIP stayed");
    assert!(sim.nodes[0].vips[1], "the new VIP was added");
    let removed = sim.nodes[0].events.iter().any(|(_, e)| {
        matches!(
            e,
            Event::Transition {
                to: Role::Standby,
                ..
            }
        )
    });
    assert!(!removed, "alpha dropped the VIPs on reload");
    // Beta now ranks first: with failback auto it gets the VIPs after the delay.
    sim.run_until(ms(5000), |s| s.nodes[1].vips == vec![true, true]);
    assert_eq!(sim.max_holders_seen, 1);
}

#[test]
fn reload_refuses_changes_that_need_a_restart() {
    let mut sim = Sim::settled(config(2, Failback::Auto), 39);
    let mut next = sim.config.clone();
    next.links.push("backup".into());
    for node in &mut next.nodes {
        node.addresses.push("198.18.1.1".parse().unwrap());
    }
    let now = sim.now;
    let err = sim.nodes[0]
        .machine
        .as_mut()
        .unwrap()
        .reconfigure(now, &next)
        .unwrap_err();
    assert_eq!(err, ReloadError::ClusterChanged);
}

// --- stalls ----------------------------------------------------------------------

#[test]
fn an_active_node_paused_past_dead_yields_on_resume() {
    let mut sim = Sim::settled(config(2, Failback::Manual), 40);
    // SIGSTOP: alpha keeps its VIP in the kernel but sends nothing.
    sim.nodes[0].paused = true;
    sim.split_allowed_until = sim.now + ms(100_000);
    sim.run_until(ms(3000), |s| {
        s.role(1) == Some(Role::Active) && s.nodes[1].vips[0]
    });
    sim.run_for(ms(500));
    // SIGCONT: alpha finds beta active and backs off within about one interval
    // plus its stop hook; beta keeps the VIP (no second move).
    sim.nodes[0].paused = false;
    sim.split_allowed_until = sim.now + sim.config.timing.interval * 2 + sim.hook_time * 2;
    sim.run_until(ms(1000), |s| s.holders() == vec![1]);
    sim.run_for(ms(3000));
    assert_eq!(sim.holders(), vec![1]);
    assert_eq!(sim.active(), vec![1]);
    assert!(sim.has_event(0, |e| matches!(e, Event::Stalled { .. })));
    let reason = sim.transitions(0).last().unwrap().2.clone();
    assert_eq!(
        reason,
        "resumed after a stall, peer beta took over meanwhile"
    );
    assert_eq!(sim.transitions(1).last().unwrap().1, Role::Active);
}

#[test]
fn two_holders_are_resolved_even_in_maintenance() {
    let mut sim = Sim::settled(config(2, Failback::Manual), 41);
    sim.order(0, Order::Maintenance(true)).unwrap();
    sim.run_for(ms(300));
    sim.partition(0, 1);
    // Alpha's maintenance is invisible to beta across the partition: beta takes over.
    sim.run_until(ms(3000), |s| s.active() == vec![0, 1]);
    sim.heal();
    sim.run_until(ms(1000), |s| s.holders() == vec![0]);
    sim.run_for(ms(50));
    assert_eq!(sim.role(1), Some(Role::Standby));
    assert_eq!(sim.active(), vec![0]);
}

#[test]
fn a_node_asked_to_stand_by_still_takes_over_from_a_failing_holder() {
    let mut sim = Sim::settled(config(2, Failback::Auto), 42);
    sim.order(0, Order::Standby).unwrap();
    sim.run_until(ms(2000), |s| s.holders() == vec![1]);
    sim.gateway_down(1);
    sim.run_until(ms(3000), |s| s.holders() == vec![0]);
    assert_eq!(sim.role(1), Some(Role::Fault));
    assert_eq!(sim.max_holders_seen, 1);
}

#[test]
fn maintenance_on_the_standby_still_answers_a_graceful_stop_of_the_holder() {
    let mut sim = Sim::settled(config(2, Failback::Auto), 43);
    sim.order(1, Order::Maintenance(true)).unwrap();
    sim.run_for(ms(300));
    sim.shutdown(0);
    sim.run_until(ms(2000), |s| s.holders() == vec![1]);
    assert_eq!(sim.transitions(1).last().unwrap().2, "peer alpha shut down");
    // The stopping node logged its last transition before exiting.
    let (_, to, reason) = sim.transitions(0).last().unwrap().clone();
    assert_eq!((to, reason.as_str()), (Role::Standby, "shutdown"));
}

#[test]
fn extra_heartbeats_never_delay_the_regular_ones() {
    let mut sim = Sim::settled(config(2, Failback::Auto), 44);
    // Each toggle sends a heartbeat out of turn; ten of them within one interval
    // once pushed the next regular heartbeat a whole second away.
    for i in 0..10 {
        sim.order(1, Order::Maintenance(i % 2 == 0)).unwrap();
    }
    sim.run_for(ms(1500));
    assert!(!sim.has_event(0, |e| matches!(e, Event::PeerLate { .. })));
    assert!(!sim.has_event(0, |e| matches!(e, Event::LinkLate { .. })));
}

// --- announcements ---------------------------------------------------------------

#[test]
fn the_holder_refreshes_its_announcements_unless_turned_off() {
    let mut on = config(2, Failback::Auto);
    on.announce.refresh = Some(ms(1000));
    let mut sim = Sim::settled(on, 45);
    let before = sim.nodes[0].announces.len();
    sim.run_for(ms(3500));
    assert!(
        sim.nodes[0].announces.len() >= before + 3,
        "no periodic refresh"
    );
    assert!(sim.nodes[1].announces.is_empty(), "the standby announced");

    let mut off = config(2, Failback::Auto);
    off.announce.refresh = None;
    let mut sim = Sim::settled(off, 46);
    let before = sim.nodes[0].announces.len();
    sim.run_for(ms(3500));
    assert_eq!(sim.nodes[0].announces.len(), before, "refresh turned off");
}

#[test]
fn the_holder_announces_again_when_a_link_heals() {
    let mut sim = Sim::settled(config(2, Failback::Auto), 47);
    sim.cut_link(1);
    sim.run_until(ms(2000), |s| {
        s.has_event(
            0,
            |e| matches!(e, Event::LinkDown { link, .. } if link == "lan"),
        )
    });
    let before = sim.nodes[0].announces.len();
    sim.restore_link(1);
    sim.run_for(ms(300));
    assert!(
        sim.nodes[0].announces.len() > before,
        "no announcement on link heal"
    );
    assert_eq!(sim.holders(), vec![0]);
}
