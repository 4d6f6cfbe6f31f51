//! The simulated world: nodes running election state machines, a network that
//! delays, loses and blocks datagrams, an executor per node that performs effects one
//! at a time in order (as the daemon's does), the kernel's VIPs, gateways, hook
//! programs, and a fake clock. It plays the shell's part and decides nothing.
//!
//! Fault verbs, each written to the trace with its time: `crash` (power off: the VIPs
//! go with the box), `kill_daemon` (SIGKILL: the kernel keeps the VIPs), `restart`,
//! `shutdown` (SIGTERM), `pause`/`resume` (SIGSTOP/SIGCONT), `partition`, `one_way`,
//! `cut_path`, `cut_link`/`restore_link`, `isolate`, `burst` (a path that drops
//! everything for a while), `heal`, `gateway_down`/`gateway_up`, `hooks` (hook programs
//! that fail, or hang until `hooks.timeout`), `vip_adds_fail`, `vip_removes_fail`,
//! operator orders, `reload`, and an attacker on the LAN that records a node's
//! heartbeats to a peer and replays them later (`record`, `replay`). After every step
//! the [`Watch`] checks the invariants; a failure
//! prints the seed, how to replay it and the trace.

use std::collections::{BTreeMap, VecDeque};
use std::fs;
use std::net::IpAddr;
use std::os::unix::fs::PermissionsExt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use failoverd::config::{Check, Config, Failback, Probe, Scope};
use failoverd::daemon::executor::NOTICE_WAIT;
use failoverd::machine::health::Run;
use failoverd::machine::{
    Accepted, Action, ConfigChange, Effect, EffectId, Event, Hook, Input, Kept, Machine, Order,
    Outcome, Refusal, ReloadError, Role, Sighting, VipFailure, VipFailureKind, VipTarget,
};
use failoverd::wire::heartbeat::{HEADER_LEN, Heartbeat, QUIET, Signer};

use crate::invariants::Watch;
use crate::sample::Sample;

pub const MS: Duration = Duration::from_millis(1);

pub fn ms(n: u64) -> Duration {
    Duration::from_millis(n)
}

/// A failed VIP addition is tried again after this long: `VIP_RETRY` in
/// src/machine/election.rs, "tried again every second" in docs/election.md.
pub const VIP_RETRY: Duration = Duration::from_secs(1);

/// The node names, in configuration order.
pub const NAMES: [&str; 4] = ["alpha", "beta", "gamma", "delta"];

/// `nodes` nodes (alpha, beta, gamma, delta, with priorities 200, 150, 100, 50) on the
/// sample configuration with fast timers, parsed as a file is. What a file cannot say
/// is set afterwards: hooks that need not exist, and a key without a key file.
///
/// The timers suit the majority rule too (three voters or more): `dead` is 5 ×
/// `interval`, and the loader wants at least 3 × (see [`Sim::new`]).
pub fn config(nodes: usize, failback: Failback) -> Config {
    build_config(nodes, false, failback)
}

/// [`config`] with one more node, a witness named `witness` after the others: it
/// votes and holds nothing, and it is on the LAN only (198.18.0.x), not on the
/// crossover cable, as a third machine would be.
pub fn witness_config(nodes: usize, failback: Failback) -> Config {
    build_config(nodes, true, failback)
}

fn build_config(nodes: usize, witness: bool, failback: Failback) -> Config {
    static RUNS: AtomicUsize = AtomicUsize::new(0);
    assert!((2..=4).contains(&nodes), "the simulator runs 2 to 4 nodes");
    assert!(
        nodes < 4 || !witness,
        "the simulator runs at most 4 nodes and a witness"
    );
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
    for (i, name) in NAMES.iter().enumerate().take(nodes).skip(2) {
        sample = sample.append(&format!(
            "[[node]]\nname = \"{name}\"\npriority = {}\n\
             addresses = {{ crossover = \"198.19.0.{}\", lan = \"198.18.0.{}\" }}",
            200 - 50 * i,
            i + 1,
            i + 11
        ));
    }
    if witness {
        sample = sample.append(&format!(
            "[[node]]\nname = \"witness\"\nwitness = true\n\
             addresses = {{ lan = \"198.18.0.{}\" }}",
            nodes + 11
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

/// A service check as `[[check]]` would give it, run every `health.interval` (the
/// simulator runs every check on the gateway probes' tick): rise 2, fall 2, weight 1,
/// on every node. Tests change what they need.
pub fn service_check(config: &Config, name: &str) -> Check {
    Check {
        name: name.into(),
        probe: Probe::Tcp {
            address: "127.0.0.1:80".parse().expect("an address"),
        },
        interval: config.health.interval,
        timeout: config.health.timeout,
        rise: 2,
        fall: 2,
        weight: 1,
        fatal: false,
        on: Scope::Both,
        start_grace: Duration::ZERO,
        failure_timeout: None,
    }
}

/// Adds a second VIP on the same interface, as a reload or a bigger file would.
pub fn add_vip(config: &mut Config) {
    config.vips.push(failoverd::config::Vip {
        address: "198.18.0.20".parse().expect("an address"),
        prefix_len: 24,
        interface: "eth0".into(),
        label: None,
    });
}

/// A small deterministic generator; the seed is printed on failure to replay a run.
pub struct Rng(u64);

impl Rng {
    /// Scrambles the seed (splitmix64) so that neighbouring seeds make unrelated runs.
    pub fn new(seed: u64) -> Rng {
        let mut z = seed.wrapping_add(0x9e37_79b9_7f4a_7c15);
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        Rng((z ^ (z >> 31)).max(1))
    }

    pub fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }

    pub fn chance(&mut self, p: f64) -> bool {
        (self.next() % 1_000_000) as f64 / 1_000_000.0 < p
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    /// A duration between `lo` and `hi` milliseconds, both included.
    pub fn millis(&mut self, lo: u64, hi: u64) -> Duration {
        ms(lo + self.below(hi - lo + 1))
    }

    pub fn pick<T: Copy>(&mut self, from: &[T]) -> T {
        from[self.below(from.len() as u64) as usize]
    }
}

/// A datagram on its way.
pub struct Packet {
    pub at: Instant,
    /// The order in which the network took the datagrams, over every sender.
    pub sent: u64,
    pub sender: usize,
    pub to: usize,
    pub link: usize,
    pub from: IpAddr,
    pub bytes: Vec<u8>,
}

/// What the node's hook programs do when run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookBehaviour {
    /// Exit 0 after `hook_time`.
    Succeed,
    /// Exit 1 after `hook_time`.
    Fail,
    /// Never exit: killed at `hooks.timeout`, which the shell reports as a failure.
    Hang,
}

/// One hook run, with its environment and when it started.
pub struct HookRun {
    pub hook: Hook,
    pub env: BTreeMap<String, String>,
    pub at: Duration,
}

/// One attempt to remove a VIP: when, which, beside the queue or in it, and whether
/// the kernel took it.
pub struct RemoveAttempt {
    pub at: Duration,
    pub vip: usize,
    pub beside: bool,
    pub ok: bool,
}

/// One attempt to add a VIP, and whether the kernel took it.
pub struct AddAttempt {
    pub at: Duration,
    pub vip: usize,
    pub ok: bool,
}

pub struct SimNode {
    pub machine: Option<Machine>,
    /// Effects waiting, and the one running with its completion time.
    queue: VecDeque<(EffectId, Effect)>,
    running: Option<(Instant, EffectId, Outcome)>,
    /// Effects run beside the queue (`Action::Withdraw`, `Action::Notify`), each
    /// with its completion time and outcome.
    beside: Vec<(Instant, EffectId, Outcome)>,
    /// When the next notification (`Action::Notify`) may start: the last one's end,
    /// or [`NOTICE_WAIT`] after its start if it runs longer.
    notices_free: Option<Instant>,
    /// What the kernel has: is VIP i on this node's interface.
    pub vips: Vec<bool>,
    pub hooks: Vec<HookRun>,
    pub adds: Vec<AddAttempt>,
    pub events: Vec<(Duration, Event)>,
    pub announces: Vec<Duration>,
    pub starts: u64,
    /// The node's links are down (a pulled cable).
    pub isolated: bool,
    /// SIGSTOP: the process does not run; datagrams wait in its socket buffer.
    pub paused: bool,
    pub gateway_up: bool,
    /// Services whose checks fail on this node, by check name.
    pub services_down: Vec<String>,
    pub hook_behaviour: HookBehaviour,
    /// The kernel refuses to add VIPs on this node.
    pub vip_adds_fail: bool,
    /// The kernel refuses to remove VIPs on this node (netlink errors, timeouts).
    pub vip_removes_fail: bool,
    /// The release note in the node's state directory (`Effect::NoteRelease`):
    /// kept across restarts of its daemon, as the disk keeps it.
    pub release_noted: bool,
    /// The start note (`Effect::NoteStart`), kept as the release note is.
    pub start_noted: bool,
    /// Removals tried, queued or beside: when, which VIP, beside the queue, whether
    /// the kernel took it.
    pub removes: Vec<RemoveAttempt>,
    /// SIGTERM was sent to the daemon that runs now.
    pub stopping: bool,
    /// Since when the daemon has run without a break (its start, or its resume).
    pub awake_since: Instant,
    /// A daemon was killed while the kernel had VIPs: until a later daemon has removed
    /// (or, in its own maintenance, adopted) them, the kernel holds VIPs that no
    /// running election knows of.
    pub stale_kernel: bool,
    /// When this daemon last sent a datagram to (peer, link).
    pub last_sent: BTreeMap<(usize, usize), Instant>,
    /// Whether that heartbeat said the next may take `standby_interval`.
    pub sent_quiet: BTreeMap<(usize, usize), bool>,
    /// The priority the running daemon read at its start or its last reload.
    pub priority: u16,
    /// The daemon asked for its active-only checks to run.
    pub active_checks: bool,
    /// The last SIGSTOP and the SIGCONT that ended it.
    pub last_pause: Option<(Instant, Instant)>,
    paused_at: Instant,
    /// Probes of the VIPs on their way: id, when sent, when the window ends.
    probes: Vec<(u64, Instant, Instant)>,
    /// The daemon watches its VIPs for conflicts.
    pub watching: bool,
    /// Probes asked for, over the node's life.
    pub probes_sent: u64,
    /// Probes cannot be made (no CAP_NET_RAW, say): each answers with an error.
    pub probes_fail: bool,
    /// VIP additions that succeeded while another node's kernel, reachable on the
    /// LAN and with no daemon running to release it, still had the VIP.
    pub stolen: Vec<String>,
    /// Drops heartbeats that say "quiet" on arrival, as a version before the quiet
    /// standby refuses them.
    pub refuses_quiet: bool,
    /// Routine heartbeats of the active peer this node is quiet toward, put aside
    /// on arrival as the shell's kernel sorting puts them, and given to the machine
    /// at the node's next input or timeout, each at its arrival.
    pub deferred: Vec<Packet>,
    /// Heartbeats the node read late that way, over its life.
    pub read_late: u64,
}

impl SimNode {
    /// What a daemon that ends leaves undone: its effects, queued, running or
    /// beside the queue, and its notifications' order.
    fn drop_effects(&mut self) {
        self.queue.clear();
        self.running = None;
        self.beside.clear();
        self.notices_free = None;
    }
}

/// The MAC address of node `i`'s VIP interface.
pub fn mac(i: usize) -> [u8; 6] {
    [2, 0, 0, 0, 0, i as u8 + 1]
}

/// A path that drops every datagram: from one node to another, on one link or all,
/// until a time (a loss burst) or until `heal`.
#[derive(Debug, Clone, Copy)]
struct Block {
    from: usize,
    to: usize,
    link: Option<usize>,
    until: Option<Instant>,
}

/// A fault that ends by itself.
#[derive(Debug, Clone, Copy)]
enum Timed {
    Resume(usize),
    HooksSucceed(usize),
    VipAddsWork(usize),
    VipRemovesWork(usize),
    MaintenanceOff(usize),
}

/// Someone on the LAN who records the heartbeats one node sends another, on every
/// link, and replays them later, one every `every`, oldest first and round again.
/// Replays reach the victim's daemon like any datagram; they are never contact
/// (`Sim::last_rx`).
pub struct Replayer {
    pub from: usize,
    pub to: usize,
    pub recorded: Vec<Packet>,
    recording: bool,
    /// Replaying, one every `every`.
    every: Option<Duration>,
    next: Instant,
    cursor: usize,
    pub replayed: u64,
}

/// Decides, for a heartbeat from one node to another, whether the network loses it.
pub type DropRule = Box<dyn FnMut(usize, usize, &Heartbeat) -> bool>;

pub struct Sim {
    pub base: Instant,
    pub now: Instant,
    pub config: Config,
    pub nodes: Vec<SimNode>,
    pub packets: Vec<Packet>,
    pub rng: Rng,
    /// Random loss on every path, per datagram.
    pub loss: f64,
    /// Network delay, in whole milliseconds, both included.
    pub delay: (u64, u64),
    /// `cut[link]`: the link is down for everyone.
    pub cut: Vec<bool>,
    blocks: Vec<Block>,
    timed: Vec<(Instant, Timed)>,
    next_probe: Instant,
    pub hook_time: Duration,
    /// Until when a hook that hung may still be running: the bounds allow for
    /// `hooks.timeout` where a window overlaps this.
    pub hang_possible_until: Option<Instant>,
    pub captured: Vec<Packet>,
    pub capture: bool,
    /// A quiet standby reads its active peer's routine heartbeats late, at its next
    /// wake-up, dated by their arrival, as the daemon does (on unless a test turns
    /// it off).
    pub defer: bool,
    /// While capturing, keep the packets to node 1 from reaching it.
    pub withhold: bool,
    /// Drops chosen heartbeats (decoded) on every path.
    pub drop_rule: Option<DropRule>,
    pub dropped_by_rule: u64,
    signer: Signer,
    /// The most nodes that held one VIP at once.
    pub max_holders_seen: usize,
    pub seed: u64,
    /// How to replay this run, for the failure report.
    pub replay: Option<String>,
    /// What the run is made of (nodes, loss, hooks...), for the failure report.
    pub about: String,
    /// The verbs applied, with their times, for the failure report.
    pub ops: Vec<(Duration, String)>,
    /// `last_rx[a][b]`: when a datagram from node a that was news to node b (sent after
    /// every one delivered before it on that link) was last delivered to b's daemon.
    pub last_rx: Vec<Vec<Option<Instant>>>,
    /// The latest-sent datagram delivered on each (sender, receiver, link).
    newest_delivered: BTreeMap<(usize, usize, usize), u64>,
    sends: u64,
    /// When each node last ran a live daemon with maintenance on: its peers may go on
    /// seeing it for up to `dead` after it died or turned it off.
    pub maintenance_seen: Vec<Option<Instant>>,
    pub watch: Watch,
    pub replayer: Option<Replayer>,
}

impl Sim {
    pub fn new(config: Config, seed: u64) -> Sim {
        // The loader refuses a shorter `dead` with three voters or more: the holder's
        // lease (see src/machine/quorum.rs) needs an interval of margin. Configs built
        // here skip the loader's check, so it is made here.
        let t = &config.timing;
        assert!(
            !config.majority_rule() || t.dead >= t.interval * 3,
            "with {} voters, dead ({:?}) must be at least 3 x interval ({:?})",
            config.voters(),
            t.dead,
            t.interval
        );
        let base = Instant::now();
        let n = config.nodes.len();
        let vips = config.vips.len();
        let links = config.links.len();
        let signer = Signer::new(config.key.as_bytes());
        let mut sim = Sim {
            base,
            now: base,
            config,
            nodes: (0..n)
                .map(|_| SimNode {
                    machine: None,
                    queue: VecDeque::new(),
                    running: None,
                    beside: Vec::new(),
                    notices_free: None,
                    vips: vec![false; vips],
                    hooks: Vec::new(),
                    adds: Vec::new(),
                    events: Vec::new(),
                    announces: Vec::new(),
                    starts: 0,
                    isolated: false,
                    paused: false,
                    gateway_up: true,
                    services_down: Vec::new(),
                    hook_behaviour: HookBehaviour::Succeed,
                    vip_adds_fail: false,
                    vip_removes_fail: false,
                    release_noted: false,
                    start_noted: false,
                    removes: Vec::new(),
                    stopping: false,
                    awake_since: base,
                    stale_kernel: false,
                    last_sent: BTreeMap::new(),
                    sent_quiet: BTreeMap::new(),
                    active_checks: false,
                    last_pause: None,
                    paused_at: base,
                    priority: 0,
                    probes: Vec::new(),
                    watching: false,
                    probes_sent: 0,
                    probes_fail: false,
                    stolen: Vec::new(),
                    refuses_quiet: false,
                    deferred: Vec::new(),
                    read_late: 0,
                })
                .collect(),
            packets: Vec::new(),
            rng: Rng::new(seed),
            loss: 0.0,
            delay: (1, 2),
            cut: vec![false; links],
            blocks: Vec::new(),
            timed: Vec::new(),
            next_probe: base,
            hook_time: ms(20),
            hang_possible_until: None,
            captured: Vec::new(),
            capture: false,
            defer: true,
            withhold: false,
            drop_rule: None,
            dropped_by_rule: 0,
            signer,
            max_holders_seen: 0,
            seed,
            replay: None,
            about: String::new(),
            ops: Vec::new(),
            last_rx: vec![vec![None; n]; n],
            newest_delivered: BTreeMap::new(),
            sends: 0,
            maintenance_seen: vec![None; n],
            watch: Watch::default(),
            replayer: None,
        };
        for i in 0..n {
            sim.start(i);
        }
        sim
    }

    /// Settles a two-node cluster: alpha active, beta standby.
    pub fn settled(config: Config, seed: u64) -> Sim {
        let mut sim = Sim::new(config, seed);
        sim.run_until(ms(3000), |s| {
            s.role(0) == Some(Role::Active)
                && s.nodes[0].vips.iter().all(|v| *v)
                && s.role(1) == Some(Role::Standby)
        });
        sim.run_for(ms(200));
        sim
    }

    pub fn t(&self) -> Duration {
        self.now - self.base
    }

    pub fn name(&self, i: usize) -> &str {
        &self.config.nodes[i].name
    }

    fn start(&mut self, i: usize) {
        self.start_daemon(i, false);
    }

    /// Starts node i's daemon; `maintenance` as if its state file said so.
    fn start_daemon(&mut self, i: usize, maintenance: bool) {
        let now = self.now;
        let node = &mut self.nodes[i];
        node.starts += 1;
        node.drop_effects();
        node.stopping = false;
        node.awake_since = now;
        node.active_checks = false;
        node.last_sent.clear();
        node.sent_quiet.clear();
        node.probes.clear();
        node.watching = false;
        node.priority = self.config.nodes[i].priority;
        // Incarnations grow across restarts, as the wall clock does.
        let incarnation = (now - self.base).as_micros() as u64 + node.starts;
        // A seed of its own for every daemon, as getrandom gives, drawn apart from the
        // run's generator so that the network's draws stay what they were.
        let seed = Rng::new(self.seed ^ ((i as u64) << 56) ^ node.starts).next();
        let kept = Kept {
            maintenance,
            releasing: node.release_noted,
            starting: node.start_noted,
        };
        node.machine = Some(Machine::with_kept(
            &self.config,
            i,
            incarnation,
            seed,
            kept,
            now,
        ));
        self.drain(i);
    }

    // --- fault verbs --------------------------------------------------------

    /// Power off: the daemon dies and the box with it (its VIPs go too).
    pub fn crash(&mut self, i: usize) {
        self.note(format!("crash {}", self.name(i)));
        let node = &mut self.nodes[i];
        node.machine = None;
        node.drop_effects();
        node.deferred.clear();
        node.paused = false;
        node.stopping = false;
        node.probes.clear();
        node.watching = false;
        node.stale_kernel = false;
        node.vips.iter_mut().for_each(|v| *v = false);
    }

    /// SIGKILL of the daemon alone: the kernel keeps whatever VIPs it had.
    pub fn kill_daemon(&mut self, i: usize) {
        self.note(format!("kill the daemon on {}", self.name(i)));
        let node = &mut self.nodes[i];
        if node.machine.is_some() && node.vips.iter().any(|v| *v) {
            node.stale_kernel = true;
        }
        node.machine = None;
        node.drop_effects();
        node.deferred.clear();
        node.paused = false;
        node.stopping = false;
        node.probes.clear();
        node.watching = false;
    }

    /// SIGCONT, as the shell may see it: the timers that came due during the pause
    /// run before the datagrams that queued up meanwhile are read (all but the
    /// routine heartbeats put aside, which the loop reads first at every wake-up).
    pub fn resume_timers_first(&mut self, i: usize) {
        self.resume(i);
        let now = self.now;
        self.take_deferred(i);
        if let Some(m) = self.nodes[i].machine.as_mut() {
            m.handle_timeout(now);
        }
        self.drain(i);
    }

    /// Node i's timeouts now, as its loop runs them once its deadline has passed.
    pub fn timeout(&mut self, i: usize) {
        let now = self.now;
        self.take_deferred(i);
        if let Some(m) = self.nodes[i].machine.as_mut() {
            let _ = m.poll_timeout();
            m.handle_timeout(now);
        }
        self.drain(i);
    }

    pub fn restart(&mut self, i: usize) {
        self.note(format!("start the daemon on {}", self.name(i)));
        self.nodes[i].paused = false;
        self.start(i);
    }

    /// Restarts node i's daemon with maintenance on, as its state file would have it.
    pub fn restart_in_maintenance(&mut self, i: usize) {
        self.note(format!(
            "start the daemon on {} in maintenance",
            self.name(i)
        ));
        self.nodes[i].paused = false;
        self.start_daemon(i, true);
    }

    pub fn shutdown(&mut self, i: usize) {
        self.note(format!("SIGTERM to {}", self.name(i)));
        if self.nodes[i].machine.is_some() {
            self.nodes[i].stopping = true;
        }
        self.input(i, Input::Shutdown);
    }

    /// SIGSTOP: nothing runs on the node; the kernel keeps its VIPs and buffers what
    /// arrives. `for_` schedules the SIGCONT.
    pub fn pause(&mut self, i: usize, for_: Option<Duration>) {
        self.note(format!(
            "SIGSTOP to {}{}",
            self.name(i),
            for_.map_or(String::new(), |d| format!(" for {d:?}"))
        ));
        if !self.nodes[i].paused {
            self.nodes[i].paused_at = self.now;
        }
        self.nodes[i].paused = true;
        if let Some(d) = for_ {
            self.timed.push((self.now + d, Timed::Resume(i)));
        }
    }

    pub fn resume(&mut self, i: usize) {
        if !self.nodes[i].paused {
            return;
        }
        self.note(format!("SIGCONT to {}", self.name(i)));
        self.nodes[i].paused = false;
        self.nodes[i].awake_since = self.now;
        self.nodes[i].last_pause = Some((self.nodes[i].paused_at, self.now));
        self.timed
            .retain(|(_, t)| !matches!(t, Timed::Resume(n) if *n == i));
    }

    pub fn order(&mut self, i: usize, order: Order) -> Result<Accepted, Refusal> {
        self.note(format!("order {order:?} on {}", self.name(i)));
        let now = self.now;
        let result = self.nodes[i]
            .machine
            .as_mut()
            .expect("a running node")
            .order(now, order);
        self.note(format!("  answer: {result:?}"));
        self.drain(i);
        result
    }

    /// Reloads `next` on every running daemon that is not paused, as `scp` then
    /// `failoverd reload` would; a daemon started later reads it too.
    pub fn reload(&mut self, next: Config) -> Vec<(usize, Result<Vec<ConfigChange>, ReloadError>)> {
        let priorities: Vec<u16> = next.nodes.iter().map(|n| n.priority).collect();
        self.note(format!("reload: priorities {priorities:?}"));
        self.config = next;
        let vips = self.config.vips.len();
        for node in &mut self.nodes {
            node.vips.resize(vips, false);
        }
        let mut answers = Vec::new();
        for i in 0..self.nodes.len() {
            if self.nodes[i].paused {
                continue;
            }
            let now = self.now;
            let Some(machine) = self.nodes[i].machine.as_mut() else {
                continue;
            };
            let answer = machine.reconfigure(now, &self.config);
            if answer.is_ok() {
                self.nodes[i].priority = self.config.nodes[i].priority;
            }
            answers.push((i, answer));
            self.drain(i);
        }
        answers
    }

    /// Both ways, every link.
    pub fn partition(&mut self, a: usize, b: usize) {
        self.note(format!("partition {} | {}", self.name(a), self.name(b)));
        self.block(a, b, None, None);
        self.block(b, a, None, None);
    }

    /// Every datagram from `a` to `b` is lost; the other way works.
    pub fn one_way(&mut self, a: usize, b: usize) {
        self.note(format!("cut {} -> {}", self.name(a), self.name(b)));
        self.block(a, b, None, None);
    }

    /// Datagrams from `a` to `b` on `link` are lost.
    pub fn cut_path(&mut self, a: usize, b: usize, link: usize) {
        self.note(format!(
            "cut {} -> {} on link {link}",
            self.name(a),
            self.name(b)
        ));
        self.block(a, b, Some(link), None);
    }

    /// Everything from `a` to `b` (and back, with `both`) is lost for `d`.
    pub fn burst(&mut self, a: usize, b: usize, both: bool, d: Duration) {
        let arrow = if both { "<->" } else { "->" };
        self.note(format!(
            "loss burst {} {arrow} {} for {d:?}",
            self.name(a),
            self.name(b)
        ));
        let until = Some(self.now + d);
        self.block(a, b, None, until);
        if both {
            self.block(b, a, None, until);
        }
    }

    fn block(&mut self, from: usize, to: usize, link: Option<usize>, until: Option<Instant>) {
        self.blocks.push(Block {
            from,
            to,
            link,
            until,
        });
    }

    /// Every path works again: links restored, cables back, partitions and bursts over.
    /// Paused, stopped and unhealthy nodes stay as they are.
    pub fn heal(&mut self) {
        self.note("heal the network".into());
        self.blocks.clear();
        self.cut.iter_mut().for_each(|c| *c = false);
        self.nodes.iter_mut().for_each(|n| n.isolated = false);
    }

    pub fn cut_link(&mut self, link: usize) {
        self.note(format!("cut link {}", self.config.links[link]));
        self.cut[link] = true;
    }

    pub fn restore_link(&mut self, link: usize) {
        self.note(format!("restore link {}", self.config.links[link]));
        self.cut[link] = false;
    }

    pub fn isolate(&mut self, i: usize) {
        self.note(format!("isolate {}", self.name(i)));
        self.nodes[i].isolated = true;
    }

    /// Someone on the LAN starts recording what `from` sends `to` (see [`Replayer`]).
    pub fn record(&mut self, from: usize, to: usize) {
        self.note(format!(
            "record what {} sends {}",
            self.name(from),
            self.name(to)
        ));
        self.replayer = Some(Replayer {
            from,
            to,
            recorded: Vec::new(),
            recording: true,
            every: None,
            next: self.now,
            cursor: 0,
            replayed: 0,
        });
    }

    /// The recorder stops recording and keeps what it has.
    pub fn stop_recording(&mut self) {
        self.note("stop recording".into());
        if let Some(r) = self.replayer.as_mut() {
            r.recording = false;
        }
    }

    /// The recorder stops recording and replays what it has, one every `every`,
    /// from now on.
    pub fn replay(&mut self, every: Duration) {
        let Some(r) = self.replayer.as_mut() else {
            return;
        };
        r.recording = false;
        r.every = Some(every);
        r.next = self.now;
        let (n, to) = (r.recorded.len(), r.to);
        self.note(format!(
            "replay {n} recorded heartbeats to {}, one every {every:?}",
            self.name(to)
        ));
    }

    pub fn gateway_down(&mut self, i: usize) {
        self.note(format!("gateway down for {}", self.name(i)));
        self.nodes[i].gateway_up = false;
    }

    pub fn gateway_up(&mut self, i: usize) {
        self.note(format!("gateway up for {}", self.name(i)));
        self.nodes[i].gateway_up = true;
    }

    /// The service that check `name` looks at stops answering on node i.
    pub fn service_down(&mut self, i: usize, name: &str) {
        self.note(format!("service {name} down on {}", self.name(i)));
        if !self.nodes[i].services_down.iter().any(|s| s == name) {
            self.nodes[i].services_down.push(name.to_string());
        }
    }

    pub fn service_up(&mut self, i: usize, name: &str) {
        self.note(format!("service {name} up on {}", self.name(i)));
        self.nodes[i].services_down.retain(|s| s != name);
    }

    /// Node i's hook programs behave so, for `for_` (then succeed again) or for good.
    pub fn hooks(&mut self, i: usize, behaviour: HookBehaviour, for_: Option<Duration>) {
        self.note(format!(
            "hooks on {}: {behaviour:?}{}",
            self.name(i),
            for_.map_or(String::new(), |d| format!(" for {d:?}"))
        ));
        if behaviour == HookBehaviour::Hang || self.nodes[i].hook_behaviour == HookBehaviour::Hang {
            self.hang_possible_until = Some(self.now + self.config.hooks.timeout);
        }
        self.nodes[i].hook_behaviour = behaviour;
        self.timed
            .retain(|(_, t)| !matches!(t, Timed::HooksSucceed(n) if *n == i));
        if let Some(d) = for_ {
            self.timed.push((self.now + d, Timed::HooksSucceed(i)));
        }
    }

    /// The kernel refuses VIP additions on node i, for `for_` or until told otherwise.
    pub fn vip_adds_fail(&mut self, i: usize, fail: bool, for_: Option<Duration>) {
        self.note(format!(
            "VIP adds on {} {}{}",
            self.name(i),
            if fail { "fail" } else { "work" },
            for_.map_or(String::new(), |d| format!(" for {d:?}"))
        ));
        self.nodes[i].vip_adds_fail = fail;
        self.timed
            .retain(|(_, t)| !matches!(t, Timed::VipAddsWork(n) if *n == i));
        if let Some(d) = for_ {
            self.timed.push((self.now + d, Timed::VipAddsWork(i)));
        }
    }

    /// The kernel refuses VIP removals on node i (netlink failing or timing out),
    /// for `for_` or until told otherwise.
    pub fn vip_removes_fail(&mut self, i: usize, fail: bool, for_: Option<Duration>) {
        self.note(format!(
            "VIP removals on {} {}{}",
            self.name(i),
            if fail { "fail" } else { "work" },
            for_.map_or(String::new(), |d| format!(" for {d:?}"))
        ));
        self.nodes[i].vip_removes_fail = fail;
        self.timed
            .retain(|(_, t)| !matches!(t, Timed::VipRemovesWork(n) if *n == i));
        if let Some(d) = for_ {
            self.timed.push((self.now + d, Timed::VipRemovesWork(i)));
        }
    }

    /// Turns node i's maintenance off after `d`, if it is still on then.
    pub fn maintenance_off_after(&mut self, i: usize, d: Duration) {
        self.timed.push((self.now + d, Timed::MaintenanceOff(i)));
    }

    fn run_timed(&mut self) {
        let now = self.now;
        let mut due: Vec<(Instant, Timed)> = Vec::new();
        self.timed.retain(|&(at, t)| {
            if at <= now {
                due.push((at, t));
                false
            } else {
                true
            }
        });
        due.sort_by_key(|(at, _)| *at);
        for (_, t) in due {
            match t {
                Timed::Resume(i) => self.resume(i),
                Timed::HooksSucceed(i) => self.hooks(i, HookBehaviour::Succeed, None),
                Timed::VipAddsWork(i) => self.vip_adds_fail(i, false, None),
                Timed::VipRemovesWork(i) => self.vip_removes_fail(i, false, None),
                Timed::MaintenanceOff(i) => {
                    let on = !self.nodes[i].paused
                        && self.nodes[i]
                            .machine
                            .as_ref()
                            .is_some_and(Machine::maintenance);
                    if on {
                        let answer = self.order(i, Order::Maintenance(false));
                        assert_eq!(
                            answer,
                            Ok(Accepted::Maintenance { on: false }),
                            "maintenance off where it is on"
                        );
                    }
                }
            }
        }
    }

    // --- the loop -----------------------------------------------------------

    pub fn input(&mut self, i: usize, input: Input<'_>) {
        let now = self.now;
        self.take_deferred(i);
        if let Some(m) = self.nodes[i].machine.as_mut() {
            m.handle(now, input);
        }
        self.drain(i);
    }

    /// Whether node `p.to` puts `p` aside: it is quiet toward the sender, and the
    /// datagram repeats the sender's standing on its link, as the daemon has the
    /// kernel sort it (`daemon::steer`).
    fn defers(&self, p: &Packet) -> bool {
        let Some(m) = self.nodes[p.to].machine.as_ref().filter(|_| self.defer) else {
            return false;
        };
        let Some(peer) = m.quiet_toward() else {
            return false;
        };
        let Ok(link) = u8::try_from(p.link) else {
            return false;
        };
        peer.name == self.name(p.sender)
            && p.bytes.get(..HEADER_LEN) == Some(&peer.standing().header(link)[..])
    }

    /// Gives node i's machine the heartbeats it put aside, each at its arrival, as
    /// the daemon's loop does at every wake-up before anything else.
    fn take_deferred(&mut self, i: usize) {
        let deferred = std::mem::take(&mut self.nodes[i].deferred);
        if deferred.is_empty() {
            return;
        }
        self.nodes[i].read_late += deferred.len() as u64;
        if let Some(m) = self.nodes[i].machine.as_mut() {
            for p in &deferred {
                m.handle_arrived(
                    p.at,
                    Input::Datagram {
                        link: p.link,
                        from: p.from,
                        bytes: &p.bytes,
                    },
                );
            }
        }
        self.drain(i);
    }

    /// Whether the network carries a datagram from `from` to `to` on `link` now (before
    /// random loss).
    pub fn reachable(&self, from: usize, to: usize, link: usize) -> bool {
        let now = self.now;
        !self.cut[link]
            && !self.nodes[from].isolated
            && !self.nodes[to].isolated
            && !self.blocks.iter().any(|b| {
                b.from == from
                    && b.to == to
                    && b.link.is_none_or(|l| l == link)
                    && b.until.is_none_or(|u| now < u)
            })
    }

    /// Some link that both nodes are on carries datagrams from `from` to `to` now (a
    /// witness is on the LAN only).
    pub fn path_open(&self, from: usize, to: usize) -> bool {
        (0..self.cut.len())
            .any(|link| self.on_link(from, to, link) && self.reachable(from, to, link))
    }

    /// Both nodes have an address on `link`.
    pub fn on_link(&self, a: usize, b: usize, link: usize) -> bool {
        let nodes = &self.config.nodes;
        nodes[a].addresses[link].is_some() && nodes[b].addresses[link].is_some()
    }

    /// Node i is a witness: it votes and never holds the VIPs.
    pub fn witness(&self, i: usize) -> bool {
        self.config.nodes[i].witness
    }

    /// How long ago a datagram from `from` was last delivered to `to`.
    pub fn gap(&self, from: usize, to: usize) -> Duration {
        self.last_rx[from][to].map_or(Duration::MAX, |t| self.now - t)
    }

    pub fn drain(&mut self, i: usize) {
        while let Some(action) = self.nodes[i]
            .machine
            .as_mut()
            .and_then(Machine::poll_action)
        {
            match action {
                Action::Send { link, to, datagram } => {
                    self.send(i, link, to.ip(), datagram.to_vec())
                }
                Action::Effect { id, effect } => self.nodes[i].queue.push_back((id, effect)),
                Action::Withdraw { id, vip } => {
                    // Like a queued removal, applied to the kernel at once.
                    let outcome = self.remove(i, &vip, true);
                    let at = self.now + MS;
                    self.nodes[i].beside.push((at, id, outcome));
                }
                Action::Notify { id, effect } => {
                    let Effect::RunHook {
                        hook, env, timeout, ..
                    } = effect
                    else {
                        panic!("only hooks are notified: {effect:?}");
                    };
                    // One at a time in the order given, each waiting up to
                    // NOTICE_WAIT for the one before, as the daemon's executor runs
                    // them.
                    let start = self.nodes[i]
                        .notices_free
                        .map_or(self.now, |free| free.max(self.now));
                    let (delay, outcome) = self.run_hook(i, hook, env, timeout);
                    let node = &mut self.nodes[i];
                    if let Some(run) = node.hooks.last_mut() {
                        run.at += start - self.now;
                    }
                    node.notices_free = Some(start + delay.min(NOTICE_WAIT));
                    node.beside.push((start + delay, id, outcome));
                }
                Action::Announce { .. } => {
                    let t = self.t();
                    self.nodes[i].announces.push(t);
                    self.conflicts_from(i);
                }
                Action::Probe { id, window, .. } => {
                    let now = self.now;
                    self.nodes[i].probes.push((id, now, now + window));
                    self.nodes[i].probes_sent += 1;
                }
                Action::Watch(vips) => self.nodes[i].watching = !vips.is_empty(),
                Action::Log(event) => {
                    let t = self.t();
                    self.nodes[i].events.push((t, event));
                }
                Action::ActiveChecks(on) => self.nodes[i].active_checks = on,
                Action::Exit => {
                    let vips = self.nodes[i].vips.clone();
                    assert!(
                        vips.iter().all(|v| !v),
                        "{} exited with VIPs {vips:?} still in its kernel",
                        self.name(i)
                    );
                    let t = self.t();
                    self.ops.push((t, format!("{} exited", self.name(i))));
                    let node = &mut self.nodes[i];
                    // The shell removes the release note on the way out, unless the
                    // machine still needs it; the effects queued are dropped.
                    if node.machine.as_ref().is_some_and(|m| !m.release_noted()) {
                        node.release_noted = false;
                    }
                    if node.machine.as_ref().is_some_and(|m| !m.start_noted()) {
                        node.start_noted = false;
                    }
                    node.machine = None;
                    node.drop_effects();
                    node.stopping = false;
                }
            }
        }
        self.start_effect(i);
    }

    fn send(&mut self, i: usize, link: usize, to: IpAddr, bytes: Vec<u8>) {
        let Some(dest) = self
            .config
            .nodes
            .iter()
            .position(|n| n.addresses[link] == Some(to))
        else {
            return;
        };
        let Some(from) = self.config.nodes[i].addresses[link] else {
            return;
        };
        self.nodes[i].last_sent.insert((dest, link), self.now);
        let quiet = bytes.get(9).is_some_and(|b| b & QUIET != 0);
        self.nodes[i].sent_quiet.insert((dest, link), quiet);
        if quiet && self.nodes[dest].refuses_quiet {
            return;
        }
        self.sends += 1;
        if let Some(r) = self.replayer.as_mut()
            && r.recording
            && (r.from, r.to) == (i, dest)
        {
            r.recorded.push(Packet {
                at: self.now,
                sent: 0,
                sender: i,
                to: dest,
                link,
                from,
                bytes: bytes.clone(),
            });
        }
        let packet = Packet {
            at: self.now + ms(self.delay.0 + self.rng.below(self.delay.1 - self.delay.0 + 1)),
            sent: self.sends,
            sender: i,
            to: dest,
            link,
            from,
            bytes,
        };
        if self.capture {
            self.captured.push(Packet {
                bytes: packet.bytes.clone(),
                ..packet
            });
            if self.withhold && dest == 1 {
                return;
            }
        }
        if let Some(rule) = self.drop_rule.as_mut()
            && let Ok(hb) = Heartbeat::decode(&packet.bytes, &self.signer)
            && rule(i, dest, &hb)
        {
            self.dropped_by_rule += 1;
            return;
        }
        if !self.reachable(i, dest, link) || self.rng.chance(self.loss) {
            return;
        }
        self.packets.push(packet);
    }

    /// Starts the next queued effect if none is running; the kernel change it makes
    /// is applied when it starts, so an overlap shows up at once.
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
        let t = self.t();
        let (delay, outcome) = match effect {
            Effect::FindStale { vips } => {
                let node = &self.nodes[i];
                let found = (0..vips.len())
                    .filter(|&v| node.vips[index(vips[v].address)])
                    .collect();
                (MS, Outcome::Present(found))
            }
            Effect::AddVip { vip, announce } => {
                let v = index(vip.address);
                let ok = !self.nodes[i].vip_adds_fail;
                self.nodes[i].adds.push(AddAttempt { at: t, vip: v, ok });
                // The guard is for unplanned takeovers: a planned one trusts the
                // holder that released, and a second copy left by an earlier split
                // is not its to find.
                let planned = self.nodes[i].machine.as_ref().is_some_and(|m| {
                    matches!(
                        m.since().1.kind(),
                        "planned_handover" | "peer_left" | "operator_takeover"
                    )
                });
                // Adding a VIP the node's kernel already has changes nothing (an
                // adoption adds what it found again): it steals nothing either.
                let already = self.nodes[i].vips[v];
                if ok
                    && !planned
                    && !already
                    && let Some(j) = self.left_behind(i, v)
                {
                    let theft = format!(
                        "{:?}: {} added VIP {v} while {}'s kernel still answered for it",
                        t,
                        self.name(i),
                        self.name(j)
                    );
                    self.nodes[i].stolen.push(theft);
                }
                if ok {
                    self.nodes[i].vips[v] = true;
                    // The shell announces a VIP that asks for it as the add is
                    // acknowledged.
                    if announce {
                        self.nodes[i].announces.push(t);
                        self.conflicts_from(i);
                    }
                    (MS, Outcome::Vip(Ok(())))
                } else {
                    let kind = self.rng.pick(&[
                        VipFailureKind::NoInterface,
                        VipFailureKind::Refused,
                        VipFailureKind::Transient,
                    ]);
                    let message = format!("adding {vip}: {kind:?} (simulated)");
                    (MS, Outcome::Vip(Err(VipFailure { kind, message })))
                }
            }
            Effect::RemoveVip(vip) => (MS, self.remove(i, &vip, false)),
            Effect::Announce { .. } => {
                self.nodes[i].announces.push(t);
                self.conflicts_from(i);
                (Duration::ZERO, Outcome::Done)
            }
            Effect::RunHook {
                hook, env, timeout, ..
            } => self.run_hook(i, hook, env, timeout),
            Effect::NoteRelease { under_way, .. } => {
                self.nodes[i].release_noted = under_way;
                (MS, Outcome::Done)
            }
            Effect::NoteStart { under_way, .. } => {
                self.nodes[i].start_noted = under_way;
                (MS, Outcome::Done)
            }
        };
        self.nodes[i].running = Some((self.now + delay, id, outcome));
    }

    /// Removes a VIP from node i's kernel, unless its removals fail.
    fn remove(&mut self, i: usize, vip: &VipTarget, beside: bool) -> Outcome {
        let v = self
            .config
            .vips
            .iter()
            .position(|c| c.address == vip.address)
            .expect("a configured VIP");
        let ok = !self.nodes[i].vip_removes_fail;
        let t = self.t();
        self.nodes[i].removes.push(RemoveAttempt {
            at: t,
            vip: v,
            beside,
            ok,
        });
        if !ok {
            let message = format!("removing {vip}: no answer from netlink (simulated)");
            return Outcome::Vip(Err(VipFailure {
                kind: VipFailureKind::Transient,
                message,
            }));
        }
        self.nodes[i].vips[v] = false;
        Outcome::Vip(Ok(()))
    }

    /// Runs a hook on node i: how long it takes and how it ends.
    fn run_hook(
        &mut self,
        i: usize,
        hook: Hook,
        env: Vec<(String, String)>,
        timeout: Duration,
    ) -> (Duration, Outcome) {
        let t = self.t();
        // A fence that works powers the peer off, as IPMI would.
        if hook == Hook::Fence && self.nodes[i].hook_behaviour == HookBehaviour::Succeed {
            let peer = env.iter().find(|(k, _)| k == "FAILOVERD_PEER");
            if let Some(j) =
                peer.and_then(|(_, name)| self.config.nodes.iter().position(|n| n.name == *name))
            {
                self.crash(j);
            }
        }
        self.nodes[i].hooks.push(HookRun {
            hook,
            env: env.into_iter().collect(),
            at: t,
        });
        let hook_time = self.hook_time;
        let (delay, success, summary) = match self.nodes[i].hook_behaviour {
            HookBehaviour::Succeed => (hook_time, true, format!("exited 0 after {hook_time:?}")),
            HookBehaviour::Fail => (hook_time, false, format!("exited 1 after {hook_time:?}")),
            HookBehaviour::Hang => (timeout, false, format!("timed out after {timeout:?}")),
        };
        (delay, Outcome::Hook { success, summary })
    }

    /// What node `i`'s probe sees now: the VIPs that another node's kernel has, on
    /// a LAN both reach.
    fn sightings(&self, i: usize) -> Vec<Sighting> {
        let mut seen = Vec::new();
        for (j, node) in self.nodes.iter().enumerate() {
            if j == i || node.isolated || self.nodes[i].isolated {
                continue;
            }
            for (v, &on) in node.vips.iter().enumerate() {
                if on {
                    seen.push(Sighting {
                        address: self.config.vips[v].address,
                        mac: mac(j),
                    });
                }
            }
        }
        seen
    }

    /// A node whose kernel has VIP `v` with no running daemon to release it (killed,
    /// or paused), that node `i` could ask on the LAN.
    pub fn left_behind(&self, i: usize, v: usize) -> Option<usize> {
        (0..self.nodes.len()).find(|&j| {
            let node = &self.nodes[j];
            j != i
                && node.vips[v]
                && !node.isolated
                && !self.nodes[i].isolated
                && (node.machine.is_none() || node.paused)
        })
    }

    /// Node `i` announced its VIPs: every other node that watches and holds one of
    /// them hears of the conflict.
    fn conflicts_from(&mut self, i: usize) {
        if self.nodes[i].isolated {
            return;
        }
        for j in 0..self.nodes.len() {
            if j == i || !self.nodes[j].watching || self.nodes[j].paused || self.nodes[j].isolated {
                continue;
            }
            for v in 0..self.config.vips.len() {
                if self.nodes[i].vips[v] && self.nodes[j].vips[v] {
                    let sighting = Sighting {
                        address: self.config.vips[v].address,
                        mac: mac(i),
                    };
                    self.input(j, Input::Conflict(sighting));
                }
            }
        }
    }

    /// Answers the probes due now: at once (a millisecond) when a VIP answers, at
    /// the end of the window otherwise.
    fn answer_probes(&mut self, awake: &[usize]) {
        let now = self.now;
        for &i in awake {
            let probes = std::mem::take(&mut self.nodes[i].probes);
            let mut waiting = Vec::new();
            for (id, sent, end) in probes {
                let seen = self.sightings(i);
                let answered = !seen.is_empty() && now >= sent + MS;
                if self.nodes[i].probes_fail && now >= sent + MS {
                    let result = Err("cannot open a packet socket (simulated)".to_string());
                    self.input(
                        i,
                        Input::Probed {
                            id,
                            result: &result,
                        },
                    );
                } else if answered || now >= end {
                    let result = Ok(if answered { seen } else { Vec::new() });
                    self.input(
                        i,
                        Input::Probed {
                            id,
                            result: &result,
                        },
                    );
                } else {
                    waiting.push((id, sent, end));
                }
            }
            self.nodes[i].probes.extend(waiting);
        }
    }

    pub fn next_time(&self) -> Instant {
        let mut next = self.next_probe;
        for node in self.nodes.iter().filter(|n| !n.paused) {
            for &(_, sent, end) in &node.probes {
                let first = sent + MS;
                next = next.min(if self.now < first { first } else { end });
            }
        }
        for (at, _) in &self.timed {
            next = next.min(*at);
        }
        if let Some(r) = &self.replayer
            && r.every.is_some()
            && !r.recorded.is_empty()
        {
            next = next.min(r.next);
        }
        for p in self.packets.iter().filter(|p| !self.nodes[p.to].paused) {
            next = next.min(p.at);
        }
        for node in self.nodes.iter().filter(|n| !n.paused) {
            if let Some((at, _, _)) = &node.running {
                next = next.min(*at);
            }
            for (at, _, _) in &node.beside {
                next = next.min(*at);
            }
            if let Some(t) = node.machine.as_ref().and_then(Machine::poll_timeout) {
                next = next.min(t);
            }
        }
        next.max(self.now)
    }

    pub fn step(&mut self) {
        self.now = self.next_time();
        let now = self.now;
        self.run_timed();
        // Datagrams due now, in the order they arrive.
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
        self.replay_due();
        for p in due {
            // A datagram overtaken on its link by a later one is old news: the
            // receiver drops it as a duplicate, so it shows no contact.
            let newest = self
                .newest_delivered
                .entry((p.sender, p.to, p.link))
                .or_default();
            if self.nodes[p.to].machine.is_some() && p.sent > *newest {
                *newest = p.sent;
                self.last_rx[p.sender][p.to] = Some(now);
            }
            if self.defers(&p) {
                self.nodes[p.to].deferred.push(p);
                continue;
            }
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
        let awake: Vec<usize> = (0..self.nodes.len())
            .filter(|&i| !self.nodes[i].paused)
            .collect();
        for &i in &awake {
            let (due, later): (Vec<_>, Vec<_>) = std::mem::take(&mut self.nodes[i].beside)
                .into_iter()
                .partition(|(at, _, _)| *at <= now);
            self.nodes[i].beside = later;
            for (_, id, outcome) in due {
                self.input(
                    i,
                    Input::Done {
                        id,
                        outcome: &outcome,
                    },
                );
            }
            let done = matches!(&self.nodes[i].running, Some((at, _, _)) if *at <= now);
            if done {
                let Some((_, id, outcome)) = self.nodes[i].running.take() else {
                    continue;
                };
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
        self.answer_probes(&awake);
        // Checks: the gateway pings and the services, every `health.interval`; a
        // check that runs only on the active node, only when its daemon asked.
        if now >= self.next_probe {
            self.next_probe = now + self.config.health.interval;
            for &i in &awake {
                for (index, check) in self.config.checks_for(i).iter().enumerate() {
                    let passed = match &check.probe {
                        Probe::Ping { .. } => self.nodes[i].gateway_up,
                        Probe::Link { .. } => continue,
                        _ if check.on == Scope::Active && !self.nodes[i].active_checks => continue,
                        _ => !self.nodes[i].services_down.contains(&check.name),
                    };
                    let run = Run {
                        passed,
                        took: MS,
                        detail: if passed {
                            String::new()
                        } else {
                            "failed".into()
                        },
                    };
                    self.input(i, Input::Check { index, run: &run });
                }
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
                self.take_deferred(i);
                if let Some(m) = self.nodes[i].machine.as_mut() {
                    m.handle_timeout(now);
                    // A timer still due right after it ran would spin the shell.
                    if let Some(t) = m.poll_timeout() {
                        assert!(t > now, "{}: a timer stuck at {t:?}", self.name(i));
                    }
                }
                self.drain(i);
            }
        }
        self.check_invariants();
    }

    /// The recorder's next replay, if it is due: the victim's daemon reads it if
    /// it runs, and its LAN and the link work.
    fn replay_due(&mut self) {
        let now = self.now;
        let Some(r) = self.replayer.as_mut() else {
            return;
        };
        let Some(every) = r.every else { return };
        if r.recorded.is_empty() || r.next > now {
            return;
        }
        r.next = now + every;
        let p = &r.recorded[r.cursor % r.recorded.len()];
        r.cursor += 1;
        let (to, link, from, bytes) = (p.to, p.link, p.from, p.bytes.clone());
        if self.cut[link] || self.nodes[to].isolated || self.nodes[to].paused {
            return;
        }
        if let Some(r) = self.replayer.as_mut() {
            r.replayed += 1;
        }
        self.input(
            to,
            Input::Datagram {
                link,
                from,
                bytes: &bytes,
            },
        );
    }

    fn check_invariants(&mut self) {
        for (i, node) in self.nodes.iter_mut().enumerate() {
            let Some(m) = &node.machine else { continue };
            if !node.paused && m.maintenance() {
                self.maintenance_seen[i] = Some(self.now);
            }
            // A later daemon removed the VIPs a killed one left, or adopted them.
            if node.stale_kernel {
                let held = m.held_vips();
                let accounted = self
                    .config
                    .vips
                    .iter()
                    .zip(&node.vips)
                    .all(|(vip, &on)| !on || held.iter().any(|h| h.address == vip.address));
                if accounted {
                    node.stale_kernel = false;
                }
            }
        }
        for node in &mut self.nodes {
            if node.stale_kernel && node.vips.iter().all(|v| !v) {
                node.stale_kernel = false;
            }
        }
        for v in 0..self.config.vips.len() {
            self.max_holders_seen = self.max_holders_seen.max(self.holders_of(v).len());
        }
        if self
            .nodes
            .iter()
            .any(|n| n.hook_behaviour == HookBehaviour::Hang)
        {
            self.hang_possible_until = Some(self.now + self.config.hooks.timeout);
        }
        let mut watch = std::mem::take(&mut self.watch);
        let verdict = watch.check(self);
        self.watch = watch;
        if let Err(broken) = verdict {
            panic!("seed {}: at {:?}: {broken}", self.seed, self.t());
        }
    }

    pub fn run_for(&mut self, d: Duration) {
        let end = self.now + d;
        while self.next_time() <= end {
            self.step();
        }
        self.now = end;
    }

    /// Runs until `cond` holds, at most `limit`; returns the time it took.
    pub fn run_until(&mut self, limit: Duration, mut cond: impl FnMut(&Sim) -> bool) -> Duration {
        let start = self.now;
        let end = self.now + limit;
        while !cond(self) {
            if self.next_time() > end {
                panic!("seed {}: condition not reached within {limit:?}", self.seed);
            }
            self.step();
        }
        self.now - start
    }

    // --- observations -------------------------------------------------------

    pub fn role(&self, i: usize) -> Option<Role> {
        self.nodes[i].machine.as_ref().map(Machine::role)
    }

    pub fn machine(&self, i: usize) -> &Machine {
        self.nodes[i].machine.as_ref().expect("a running daemon")
    }

    /// The nodes whose kernel has the first VIP.
    pub fn holders(&self) -> Vec<usize> {
        self.holders_of(0)
    }

    /// The nodes whose kernel has VIP `v`.
    pub fn holders_of(&self, v: usize) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|&i| self.nodes[i].vips.get(v).copied().unwrap_or(false))
            .collect()
    }

    /// A node with a running daemon, not paused, whose kernel has every VIP.
    pub fn holder_of_every_vip(&self) -> Option<usize> {
        (0..self.nodes.len()).find(|&i| {
            let node = &self.nodes[i];
            node.machine.is_some() && !node.paused && node.vips.iter().all(|v| *v)
        })
    }

    pub fn active(&self) -> Vec<usize> {
        (0..self.nodes.len())
            .filter(|&i| self.role(i) == Some(Role::Active))
            .collect()
    }

    /// A daemon runs on node i and is not paused.
    pub fn live(&self, i: usize) -> bool {
        self.nodes[i].machine.is_some() && !self.nodes[i].paused
    }

    pub fn transitions(&self, i: usize) -> Vec<(Role, Role, String)> {
        self.nodes[i]
            .events
            .iter()
            .filter_map(|(_, e)| match e {
                Event::Transition { from, to, reason } => Some((*from, *to, reason.to_string())),
                _ => None,
            })
            .collect()
    }

    /// When node i last became `to`.
    pub fn became(&self, i: usize, to: Role) -> Option<Duration> {
        self.nodes[i].events.iter().rev().find_map(|(t, e)| {
            matches!(e, Event::Transition { to: r, .. } if *r == to).then_some(*t)
        })
    }

    pub fn has_event(&self, i: usize, f: impl Fn(&Event) -> bool) -> bool {
        self.nodes[i].events.iter().any(|(_, e)| f(e))
    }

    /// The events of node i from its `from`-th on that `f` picks, with their times.
    pub fn events_since(
        &self,
        i: usize,
        from: usize,
        f: impl Fn(&Event) -> bool,
    ) -> Vec<&(Duration, Event)> {
        let events = self.nodes[i].events.get(from..).unwrap_or_default();
        events.iter().filter(|(_, e)| f(e)).collect()
    }

    /// When node i first logged an event that `f` picks.
    pub fn event_time(&self, i: usize, f: impl Fn(&Event) -> bool) -> Option<Duration> {
        self.nodes[i]
            .events
            .iter()
            .find_map(|(t, e)| f(e).then_some(*t))
    }

    pub fn hook_runs(&self, i: usize, hook: Hook) -> Vec<&HookRun> {
        self.nodes[i]
            .hooks
            .iter()
            .filter(|h| h.hook == hook)
            .collect()
    }

    pub fn note(&mut self, op: String) {
        let t = self.t();
        self.ops.push((t, op));
    }

    /// The failure report: the seed, how to replay, the trace of verbs, what the
    /// invariants were watching, and the last events of every node.
    pub fn report(&self) -> String {
        let mut out = format!("--- simulation seed {} {}\n", self.seed, self.about);
        if let Some(replay) = &self.replay {
            out.push_str(&format!("replay: {replay}\n"));
        }
        out.push_str("trace:\n");
        for (t, op) in &self.ops {
            out.push_str(&format!("  {t:>12?}  {op}\n"));
        }
        out.push_str(&self.watch.describe(self));
        for (i, node) in self.nodes.iter().enumerate() {
            out.push_str(&format!(
                "node {} role {:?}{} vips {:?} gateway {} hooks {:?} adds fail {}\n",
                self.name(i),
                self.role(i),
                if node.paused { " (paused)" } else { "" },
                node.vips,
                if node.gateway_up { "up" } else { "down" },
                node.hook_behaviour,
                node.vip_adds_fail,
            ));
            if let Some(m) = &node.machine {
                out.push_str(&format!(
                    "  maintenance {}, releasing {}, next timer in {:?}, rejected {:?}\n  \
                     peers (name, alive, role, takeover, incarnation) {:?}\n",
                    m.maintenance(),
                    m.releasing(),
                    m.poll_timeout()
                        .map(|t| t.saturating_duration_since(self.now)),
                    m.rejected(),
                    m.peers()
                        .iter()
                        .map(|p| (p.name.clone(), p.alive, p.role, p.takeover, p.incarnation))
                        .collect::<Vec<_>>()
                ));
            }
            for (t, e) in node.events.iter().rev().take(60).rev() {
                out.push_str(&format!("  {t:>12?}  {e}\n"));
            }
        }
        out
    }
}

/// Full reports printed so far; a long run prints the first few in full.
static REPORTS: AtomicUsize = AtomicUsize::new(0);
const FULL_REPORTS: usize = 3;

impl Drop for Sim {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            return;
        }
        if REPORTS.fetch_add(1, Ordering::Relaxed) < FULL_REPORTS {
            eprintln!("{}", self.report());
        } else {
            eprintln!(
                "--- simulation seed {}: report left out{}",
                self.seed,
                self.replay
                    .as_ref()
                    .map_or(String::new(), |r| format!("; replay: {r}"))
            );
        }
    }
}
