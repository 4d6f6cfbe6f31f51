//! The async shell around the [`Machine`]: it owns the sockets, the host (netlink,
//! packet sockets, hook processes) and the signals, turns what happens into inputs
//! and carries out the actions. It decides nothing.
//!
//! One loop reads the heartbeat links' sockets, in turn, and selects on them
//! together with the machine's next deadline and, behind a `gate` that keeps them
//! from being polled on every heartbeat, the channels that the other sources of
//! input feed (the effect executor, the control socket, the checks) and signals.
//! Its periodic chores (the status, systemd's watchdog) ride on the turns it takes
//! anyway (`chore`). The links are read with a budget each and junk is
//! dropped as it is read (`receive`), so a flood on one link never delays another's
//! heartbeats.
//! Slow effects run in the executor, one at a time and in order (but for the few
//! the machine asks for beside the order), so heartbeats keep flowing while a hook
//! runs or netlink is slow. The checks run on a thread of their own (`checks`) and
//! send their runs to the same loop, so that no check, however slow or many, holds
//! up a heartbeat. The loop makes no blocking call itself: the event file, the
//! maintenance flag, systemd's socket and the reading of the file on reload each
//! have a `worker` thread with a bounded queue.
//!
//! Everything the shell touches is given to it ([`Listeners`], a [`Host`]), so its
//! paths (carrying out actions, answering the control socket, reloading) are tested
//! without root against a recording host; see `mod tests`.

pub mod announce;
pub mod checks;
pub mod chore;
pub mod control;
pub mod deadline;
pub mod events;
pub mod executor;
pub mod gate;
pub mod gateway;
pub mod history;
pub mod hooks;
pub mod host;
pub mod http;
pub mod listen;
pub mod notify;
pub mod outbound;
pub mod probe;
pub mod process;
pub mod receive;
pub mod resident;
pub mod scheduling;
pub mod send;
pub mod stderr;
pub mod steer;
pub mod vip;
pub mod worker;

use std::future::Future;
use std::io;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::task::Poll;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::net::{TcpListener, UnixListener};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;
use tracing::{error, info, warn};

use crate::config::fit::{self, Interface, Misfit};
use crate::config::{Config, ConfigError, ControlOverrides};
use crate::control::{Command, Response};
use crate::duration::format_duration;
use crate::machine::{
    Action, ConfigChange, Effect, EffectId, Event, Input, Kept, Machine, Order, Outcome,
    ReloadError, Role, Severity, Sighting,
};
use crate::status::{HookRun, Status};
use checks::Checks;
use chore::Chore;
use control::{FlagJob, MaintenanceAsks};
use events::EventLog;
use executor::{Announcing, Executor, Jobs};
use history::HistoryLog;
pub use host::{Host, Kernel};
use listen::LinkSockets;
use receive::{Datagrams, Intake, Received};
use worker::Worker;

/// Why the daemon could not run.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// A heartbeat socket could not be bound: the port is taken. (An address not on
    /// this host yet is bound all the same; see `listen`.)
    #[error("cannot listen on {address} (link {link}): {source}")]
    Bind {
        link: String,
        address: SocketAddr,
        source: io::Error,
    },
    /// Netlink could not be opened (the daemon needs CAP_NET_ADMIN).
    #[error("{0}")]
    Netlink(#[from] vip::VipError),
    /// The control socket could not be set up.
    #[error("{0}")]
    Control(#[from] control::ControlError),
    /// The status page's address could not be bound (`[http] listen`).
    #[error("cannot listen for HTTP on {address}: {source}")]
    Http {
        address: SocketAddr,
        source: io::Error,
    },
    /// The thread that runs the checks could not be started (out of threads or
    /// memory).
    #[error("cannot start the check thread: {0}")]
    Checks(io::Error),
    /// A thread for blocking work could not be started (out of threads or memory).
    #[error("cannot start the {name} thread: {source}")]
    Worker {
        name: &'static str,
        source: io::Error,
    },
    /// The status page's thread could not be started (out of threads or memory).
    #[error("cannot start the status page's thread: {0}")]
    HttpThread(io::Error),
    /// No timerfd for the machine's deadline (out of descriptors or memory).
    #[error("cannot create the timerfd for the heartbeat deadline: {0}")]
    Deadline(io::Error),
    /// The kernel gave no random seed for the heartbeat nonces (getrandom(2)).
    #[error("cannot read a random seed for the heartbeat nonces (getrandom): {0}")]
    Seed(io::Error),
}

/// Why a reload was rejected; the running configuration stays in force.
#[derive(Debug, thiserror::Error)]
pub enum ReloadFailure {
    /// The file could not be read or holds problems.
    #[error("reload rejected: {}", one_line(.0))]
    Config(ConfigError),
    /// The file is valid but changes what only a restart can.
    #[error("reload rejected: {0}")]
    Refused(ReloadError),
    /// The daemon was asked to stop while the file was read: the release under way
    /// keeps the configuration it began with.
    #[error("reload refused: {STOPPING}")]
    Stopping,
    /// The file adds VIPs on interfaces this host does not have.
    #[error("reload rejected: {}", joined(.0))]
    NotHere(Vec<Misfit>),
}

impl ReloadFailure {
    /// What is wrong, for the operator's answer, which `failoverd reload` prints
    /// after `reload refused:`; the log has the whole line.
    fn problems(&self) -> String {
        match self {
            ReloadFailure::Config(err) => one_line(err),
            ReloadFailure::Refused(err) => err.to_string(),
            ReloadFailure::Stopping => STOPPING.to_string(),
            ReloadFailure::NotHere(misfits) => joined(misfits),
        }
    }
}

/// Misfits on one line.
fn joined(misfits: &[Misfit]) -> String {
    (misfits.iter().map(ToString::to_string))
        .collect::<Vec<_>>()
        .join("; ")
}

/// The VIPs of `new` that `old` does not have on the same interface of node `me`.
fn new_vips(old: &Config, new: &Config, me: usize) -> Vec<crate::config::Vip> {
    let on = |config: &Config, vip: &crate::config::Vip| {
        let interface = config
            .nodes
            .get(me)
            .map(|node| node.interface(&vip.interface));
        (vip.address, vip.prefix_len, interface.map(str::to_owned))
    };
    let had: Vec<_> = old.vips.iter().map(|vip| on(old, vip)).collect();
    (new.vips.iter())
        .filter(|vip| !had.contains(&on(new, vip)))
        .cloned()
        .collect()
}

/// Why a reload is refused once the daemon was asked to stop.
const STOPPING: &str = "the daemon is stopping";

/// A configuration error on one line, for the operator's one-line answer.
fn one_line(err: &ConfigError) -> String {
    match err {
        ConfigError::Invalid { problems, .. } => problems
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join("; "),
        ConfigError::Read { .. } => err.to_string(),
    }
}

/// A seed for the machine's freshness nonces, from the kernel's random pool: a
/// recording of this node's peers must never meet the same nonces again.
fn random_seed() -> io::Result<u64> {
    let mut bytes = [0u8; 8];
    let mut filled = 0;
    while filled < bytes.len() {
        let rest = &mut bytes[filled..];
        // SAFETY: the pointer and length describe `rest`, which lives across the call.
        let n = unsafe { libc::getrandom(rest.as_mut_ptr().cast(), rest.len(), 0) };
        match usize::try_from(n) {
            Ok(n) => filled += n,
            Err(_) => {
                let err = io::Error::last_os_error();
                if err.kind() != io::ErrorKind::Interrupted {
                    return Err(err);
                }
            }
        }
    }
    Ok(u64::from_ne_bytes(bytes))
}

/// A control request waiting for the loop's answer.
pub struct Pending {
    pub command: Command,
    pub reply: oneshot::Sender<Response>,
}

/// The configuration file as read for a reload, off the loop, and whom to answer.
pub struct Loaded {
    config: Result<Config, ConfigError>,
    /// The host's interfaces, listed with the file, for its VIPs to fit.
    interfaces: Option<Vec<Interface>>,
    reply: Option<oneshot::Sender<Response>>,
}

/// What a state directory that does not take the flag risks, by the state that
/// was to be written.
fn restart_risk(on: bool) -> &'static str {
    match on {
        true => "maintenance mode may not survive a restart",
        false => "maintenance mode may come back after a restart",
    }
}

/// How long `maintenance on|off` waits for the state directory before it answers
/// anyway: the machine froze or thawed at once, and an operator should not wait
/// on a hung mount to learn so, only be told the flag is not saved yet.
const PERSIST_WAIT: Duration = Duration::from_secs(2);

/// Longest the exit waits for the event file's writer.
const EXIT_FLUSH: Duration = Duration::from_secs(1);

/// How often the loop counts drops, notes the history and publishes the status.
const PUBLISH_EVERY: Duration = Duration::from_secs(1);

/// Heartbeats (and first drops) the loop takes from the links in one turn at most,
/// before it carries out their actions and sets its deadline. Junk read on the way
/// is bounded by each link's own budget (see `receive`).
const TAKEN_AT_ONCE: usize = 16;

/// Reloads whose file may wait to be read; one more is refused.
const RELOADS_WAITING: usize = 4;

/// Runs node `me` until `shutdown` resolves and the handover is done.
pub async fn run(
    config: Config,
    config_path: PathBuf,
    me: usize,
    overrides: ControlOverrides,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), DaemonError> {
    // As the status shows it and a reload reads it: whole, whatever the directory
    // the daemon was started from.
    let config_path = std::path::absolute(&config_path).unwrap_or(config_path);
    for warning in &config.warnings {
        warn!("{}: {warning}", config_path.display());
    }
    let listeners = Listeners::bind(&config, me).await?;
    let addresses = config.nodes[me]
        .link_addresses()
        .map(|(link, address)| (config.links[link].clone(), address))
        .collect();
    let missing = listen::report_missing(addresses);
    let host = Kernel::connect().await?;
    worker::start_closer().map_err(|source| DaemonError::Worker {
        name: "failoverd-close",
        source,
    })?;
    let (mut shell, machine, inputs) = Shell::start(config, config_path, me, listeners, host)?;
    shell.missing = missing;
    shell.overrides = overrides;
    // After the other threads have started, so that they keep normal priority.
    shell.scheduling.apply(&shell.config.scheduling);
    // A task rather than the future this one is polled in: tokio wakes the future
    // `block_on` drives through its driver (an eventfd write and one more round of
    // epoll_wait for every wake-up, a readable socket among them), where a task
    // woken on the same thread is only queued.
    if let Err(err) = tokio::spawn(shell.run(machine, inputs, shutdown)).await
        && err.is_panic()
    {
        std::panic::resume_unwind(err.into_panic());
    }
    Ok(())
}

/// What the daemon listens on, bound before anything starts, so that a port in use
/// fails the start with a clear message.
pub struct Listeners {
    /// The heartbeat sockets of each link, in the order of the configuration's
    /// links; none on a link this node has no address on (a witness off the
    /// crossover).
    pub links: Vec<Option<LinkSockets>>,
    pub control: Option<UnixListener>,
    pub http: Option<TcpListener>,
}

impl Listeners {
    pub async fn bind(config: &Config, me: usize) -> Result<Listeners, DaemonError> {
        // First: it refuses a second daemon of the same file before that one touches
        // a heartbeat port, where its sockets could join this one's pair (see
        // `listen::link_sockets`).
        let control = Some(control::bind(&config.control)?);
        // A start that fails from here on leaves no socket file of its own behind.
        Listeners::bind_rest(config, me, control)
            .await
            .inspect_err(|_| {
                let _ = std::fs::remove_file(&config.control.socket);
            })
    }

    /// The heartbeat sockets and the status page's, once the control socket is
    /// bound.
    async fn bind_rest(
        config: &Config,
        me: usize,
        control: Option<UnixListener>,
    ) -> Result<Listeners, DaemonError> {
        let mut links = Vec::new();
        for (link, address) in config.nodes[me].addresses.iter().enumerate() {
            let Some(address) = address else {
                links.push(None);
                continue;
            };
            let address = SocketAddr::new(*address, config.cluster.port);
            let peers = listen::peers_on(config, me, link);
            let (sockets, unsorted) =
                listen::link_sockets(address, &peers).map_err(|source| DaemonError::Bind {
                    link: config.links[link].clone(),
                    address,
                    source,
                })?;
            if let Some(err) = unsorted {
                warn!(
                    link = config.links[link].as_str(),
                    "the kernel cannot sort strangers' datagrams from the peers' on link {} \
                     ({err}): a flood from other addresses can crowd out its heartbeats",
                    config.links[link]
                );
            }
            links.push(Some(sockets));
        }
        let http = match config.http.listen {
            Some(address) => Some(
                TcpListener::bind(address)
                    .await
                    .map_err(|source| DaemonError::Http { address, source })?,
            ),
            None => None,
        };
        Ok(Listeners {
            links,
            control,
            http,
        })
    }
}

/// The channels the loop selects on, besides the checks' (whose channels a reload
/// replaces).
pub struct Inputs {
    datagrams: Datagrams,
    loaded: mpsc::UnboundedReceiver<Loaded>,
    done: mpsc::UnboundedReceiver<(EffectId, Outcome)>,
    requests: mpsc::Receiver<Pending>,
    probed: mpsc::UnboundedReceiver<(u64, Result<Vec<Sighting>, String>)>,
    conflicts: mpsc::Receiver<Sighting>,
    /// The machine's next deadline; see `deadline`.
    deadline: deadline::Deadline,
    /// Behind which the loop polls its seldom-ready sources; see `gate`.
    gate: gate::Gate,
}

/// One item of a source the loop polls behind its gate.
enum Seldom {
    /// A check's run the machine must hear of at once; the runs themselves are
    /// taken at the top of every turn (see `take_waiting`).
    CheckNews,
    Done((EffectId, Outcome)),
    Probed((u64, Result<Vec<Sighting>, String>)),
    Conflict(Sighting),
    Request(Pending),
    /// Boxed: a configuration is large, and every turn of the loop moves the
    /// item its sources gave.
    Loaded(Box<Loaded>),
    Hangup,
    Shutdown,
}

/// The sources the loop polls behind its gate, each giving a [`Seldom`].
#[derive(Clone, Copy)]
enum Source {
    Checks,
    Done,
    Probed,
    Conflicts,
    Requests,
    Loaded,
    Hangup,
    Shutdown,
}

impl Source {
    /// Every source, in the order the loop takes them. The loop's `match` names
    /// each variant, so a new one is polled once it is listed here.
    const ALL: [Source; 8] = [
        Source::Checks,
        Source::Done,
        Source::Probed,
        Source::Conflicts,
        Source::Requests,
        Source::Loaded,
        Source::Hangup,
        Source::Shutdown,
    ];
}

/// What the loop needs besides the machine.
pub struct Shell<H: Host> {
    config: Arc<Config>,
    config_path: PathBuf,
    me: usize,
    /// Each link's way out for heartbeats, through its peers' socket or beside it
    /// (the reading side of the link's sockets belongs to `receive`).
    senders: Vec<Option<send::Sender>>,
    /// Heartbeats the kernel would not send, reported per link and peer.
    outbound: outbound::Outbound,
    host: H,
    jobs: Jobs<H>,
    events: EventLog,
    /// Roles, peers and maintenance over time, for the status page's timeline.
    history: HistoryLog,
    hook_runs: Arc<Mutex<Vec<HookRun>>>,
    /// Hands each second's status to the status page, when it is on. The page's
    /// thread, at nice 10, reads the latest under a lock; the write goes through a
    /// helper so that a reader starved while holding it can never stall this loop.
    publisher: Option<Worker<Arc<Status>>>,
    announcing: Announcing,
    /// The check thread; see `checks`.
    checks: Checks,
    /// This node's role as of the last input, for the checks' `FAILOVERD_ROLE`.
    role: watch::Sender<Role>,
    /// The role last sent on `role`: compared on every turn without the
    /// channel's lock.
    role_sent: Role,
    systemd: Option<notify::Notifier>,
    /// How often systemd's watchdog wants a ping, if it does.
    watchdog: Option<Duration>,
    probed: mpsc::UnboundedSender<(u64, Result<Vec<Sighting>, String>)>,
    conflicts: mpsc::Sender<Sighting>,
    /// The task watching the VIPs for conflicts while this node holds them.
    watching: Option<tokio::task::JoinHandle<()>>,
    /// The heartbeat links' filter and what reading them dropped.
    intake: Intake,
    /// Writes the maintenance flag to the state directory, in order.
    state: Worker<FlagJob>,
    /// Numbers the commands' states for those writes, each of which takes the
    /// latest (see `MaintenanceWrites`).
    maintenance_asks: MaintenanceAsks,
    /// Reads the configuration file for a reload; see [`Loaded`].
    loader: Worker<Option<oneshot::Sender<Response>>>,
    /// Heartbeat addresses not on the host yet; see `listen`.
    missing: listen::Missing,
    /// `[control]` paths from the command line, applied to every reloaded file.
    overrides: ControlOverrides,
    /// The heartbeat thread's priority and the memory lock; see `scheduling`.
    scheduling: scheduling::Standing,
    /// Whether the code only start-up or a reload ran is still mapped: released
    /// on the first status chore once the node has left the starting role and
    /// settled the VIPs found at start, and on the first after each reload (see
    /// `resident`).
    release_due: bool,
}

impl<H: Host> Shell<H> {
    /// Starts the tasks that feed the loop, the check thread, and the machine for
    /// node `me`.
    pub fn start(
        config: Config,
        config_path: PathBuf,
        me: usize,
        listeners: Listeners,
        host: H,
    ) -> Result<(Shell<H>, Machine, Inputs), DaemonError> {
        let seed = random_seed().map_err(DaemonError::Seed)?;
        let (intake, datagrams) = receive::start(&config, me, &listeners.links);
        host.set_hook_user(config.hooks.run_as.clone());
        let maintenance_asks = MaintenanceAsks::default();
        // The state directory stays where it is until a restart.
        let dir = config.control.state_dir.clone();
        let mut writes = maintenance_asks.writes(move |on| {
            let saved = control::store_maintenance(&dir, on);
            if let Err(err) = &saved {
                warn!("{}: {err}", restart_risk(on));
            }
            saved
        });
        let state = Worker::spawn("failoverd-state", 16, move |job: FlagJob| {
            // Its command was answered without it (see `PERSIST_WAIT`).
            if let Some(on) = writes.run(job) {
                let state = if on { "on" } else { "off" };
                info!("the state directory took the maintenance flag after all: {state}");
            }
        })
        .map_err(|source| DaemonError::Worker {
            name: "failoverd-state",
            source,
        })?;
        let (loaded_tx, loaded) = mpsc::unbounded_channel();
        let path = config_path.clone();
        let lister = host.clone();
        let loader = Worker::spawn(
            "failoverd-reload",
            RELOADS_WAITING,
            move |reply: Option<oneshot::Sender<Response>>| {
                // Config::load may block: a slow mount, NSS asked for group names.
                let config = Config::load(&path);
                let interfaces = config.as_ref().ok().and_then(|_| lister.interfaces());
                let _ = loaded_tx.send(Loaded {
                    config,
                    interfaces,
                    reply,
                });
            },
        )
        .map_err(|source| DaemonError::Worker {
            name: "failoverd-reload",
            source,
        })?;
        let (role, role_rx) = watch::channel(Role::Starting);
        let mut checks = Checks::start(host.clone(), role_rx).map_err(DaemonError::Checks)?;
        checks.run(config.checks_for(me), check_context(&config, me));
        let (done_tx, done) = mpsc::unbounded_channel();
        let executor = Executor::new(host.clone(), done_tx);
        let hook_runs = executor.hook_runs();
        let announcing = executor.announcing();
        let jobs = executor.spawn();
        let (control_tx, requests) = mpsc::channel::<Pending>(16);
        if let Some(listener) = listeners.control {
            tokio::spawn(control::serve(listener, control_tx));
        }

        let (probed_tx, probed) = mpsc::unbounded_channel();
        let (conflicts_tx, conflicts) = mpsc::channel(16);

        let kept = Kept {
            maintenance: control::maintenance_flag(&config.control.state_dir),
            releasing: control::release_flag(&config.control.state_dir),
            starting: control::start_flag(&config.control.state_dir),
        };
        let incarnation = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
        let now = Instant::now().into_std();
        let machine = Machine::with_kept(&config, me, incarnation, seed, kept, now);
        info!(
            node = %config.nodes[me].name,
            cluster = %config.cluster.name,
            incarnation,
            maintenance = kept.maintenance,
            release_unfinished = kept.releasing,
            start_unfinished = kept.starting,
            "failoverd started"
        );
        let mut publisher = None;
        if let Some(listener) = listeners.http {
            if let Ok(address) = listener.local_addr() {
                info!(%address, "status page and metrics at http://{address}/");
            }
            let (status_tx, status_rx) =
                watch::channel(Arc::new(machine.status(now, SystemTime::now())));
            http::spawn(listener, status_rx, config.http.hosts.clone())
                .map_err(DaemonError::HttpThread)?;
            publisher = Some(
                Worker::spawn("failoverd-publish", 2, move |status| {
                    status_tx.send_replace(status);
                })
                .map_err(|source| DaemonError::Worker {
                    name: "failoverd-publish",
                    source,
                })?,
            );
        }
        let raw = config.scheduling.raw_send;
        let shell = Shell {
            events: EventLog::new(config.events.keep, config.events.file.clone()),
            history: HistoryLog::new(&config.nodes[me].name, SystemTime::now(), kept.maintenance),
            config: Arc::new(config),
            config_path,
            me,
            outbound: outbound::Outbound::new(listeners.links.len()),
            senders: (listeners.links.iter())
                .map(|link| {
                    link.as_ref()
                        .map(|s| send::Sender::new(Arc::clone(&s.peers), raw))
                })
                .collect(),
            host,
            jobs,
            hook_runs,
            publisher,
            announcing,
            checks,
            role,
            role_sent: Role::Starting,
            systemd: notify::Notifier::from_env(),
            watchdog: notify::watchdog_interval(),
            probed: probed_tx,
            conflicts: conflicts_tx,
            watching: None,
            intake,
            state,
            maintenance_asks,
            loader,
            missing: listen::Missing::default(),
            overrides: ControlOverrides::default(),
            scheduling: scheduling::Standing::default(),
            release_due: true,
        };
        let inputs = Inputs {
            datagrams,
            loaded,
            done,
            requests,
            probed,
            conflicts,
            deadline: deadline::Deadline::new().map_err(DaemonError::Deadline)?,
            gate: gate::Gate::new(),
        };
        Ok((shell, machine, inputs))
    }

    /// The loop: until `shutdown` resolves and the machine has handed over.
    pub async fn run(
        mut self,
        mut machine: Machine,
        mut inputs: Inputs,
        shutdown: impl Future<Output = ()>,
    ) {
        let mut ready = false;
        // When the role shown to systemd began: the line is made again only when
        // it changes, not on every wake-up of the heartbeat loop.
        let mut shown: Option<std::time::Instant> = None;
        // Done in the loop's own turns (see `chore`). The watchdog is pinged from
        // this loop, so a wedged loop stops the pings and systemd restarts us.
        let started = Instant::now().into_std();
        let mut publish = Chore::new(PUBLISH_EVERY, started);
        let mut watchdog = self
            .watchdog
            .filter(|_| self.systemd.is_some())
            .map(|every| Chore::new(every, started));
        let mut hangup = signal(SignalKind::hangup()).ok();
        tokio::pin!(shutdown);
        let mut shutdown_requested = false;
        // The source behind the gate polled first on the next turn: each in turn
        // goes first, so that none waits while another has items.
        let mut first = 0;
        loop {
            if !self.perform(&mut machine) {
                self.exit(&mut machine, &mut inputs.done).await;
                return;
            }
            // After the turn's heartbeats have gone out, never between the machine
            // asking for them and their sending: the status is built here.
            let now = Instant::now().into_std();
            if publish.take(now) {
                self.every_second(&machine, &mut inputs.datagrams);
            }
            // There is a watchdog chore only with a notifier to ping it through.
            if let Some(watchdog) = &mut watchdog
                && watchdog.take(now)
                && let Some(systemd) = &self.systemd
            {
                systemd.watchdog();
            }
            if let Some(systemd) = &self.systemd {
                if !ready && machine.reconciled() {
                    systemd.ready();
                    ready = true;
                }
                let (since, reason) = machine.since();
                if shown != Some(since) {
                    systemd.status(&format!("{}: {reason}", machine.role()));
                    shown = Some(since);
                }
            }
            // A quiet standby has the kernel put its active peer's routine
            // heartbeats aside, to be read at the next wake-up (see `receive`).
            let quiet_toward = machine
                .quiet_toward()
                .map(|peer| (peer.name.as_str(), peer.standing()));
            inputs.datagrams.sort_routine(quiet_toward);
            // The machine's deadline as a timerfd: see `deadline` for why not a
            // tokio timer. Neither call fails on a descriptor that was created.
            let wake_by = chore::wake_by(machine.poll_timeout(), &[Some(publish), watchdog]);
            if let Err(err) = inputs.deadline.set(wake_by) {
                error!("cannot arm the heartbeat deadline, exiting: {err}");
                return;
            }
            // The heartbeats and the deadline, which wake the loop every interval,
            // are polled on every turn; everything else only once it has woken
            // (see `gate`).
            let checks = &mut self.checks;
            let seldom = std::future::poll_fn(|cx| {
                inputs.gate.poll(cx, |cx| {
                    let sources = Source::ALL.len();
                    for k in 0..sources {
                        let at = (first + k) % sources;
                        let polled = match Source::ALL[at] {
                            Source::Checks => {
                                checks.poll_news(cx).map(|r| r.map(|()| Seldom::CheckNews))
                            }
                            Source::Done => inputs.done.poll_recv(cx).map(|r| r.map(Seldom::Done)),
                            Source::Probed => {
                                inputs.probed.poll_recv(cx).map(|r| r.map(Seldom::Probed))
                            }
                            Source::Conflicts => inputs
                                .conflicts
                                .poll_recv(cx)
                                .map(|r| r.map(Seldom::Conflict)),
                            Source::Requests => inputs
                                .requests
                                .poll_recv(cx)
                                .map(|r| r.map(Seldom::Request)),
                            Source::Loaded => inputs
                                .loaded
                                .poll_recv(cx)
                                .map(|r| r.map(|loaded| Seldom::Loaded(Box::new(loaded)))),
                            Source::Hangup => match hangup.as_mut() {
                                Some(h) => h.poll_recv(cx).map(|r| r.map(|()| Seldom::Hangup)),
                                None => Poll::Pending,
                            },
                            // A completed future must not be polled again.
                            Source::Shutdown if shutdown_requested => Poll::Pending,
                            Source::Shutdown => {
                                shutdown.as_mut().poll(cx).map(|()| Some(Seldom::Shutdown))
                            }
                        };
                        // A closed channel gives nothing, and never wakes the gate.
                        if let Poll::Ready(Some(item)) = polled {
                            first = at + 1;
                            return Poll::Ready(item);
                        }
                    }
                    Poll::Pending
                })
            });
            tokio::select! {
                Some(received) = inputs.datagrams.recv() => {
                    take_waiting(&mut machine, &mut inputs.datagrams, &mut self.checks);
                    // What arrived together (a heartbeat on each link) is taken in
                    // one turn: one deadline to set and one wait, not one per link.
                    let mut next = Some(received);
                    let mut taken = 0;
                    while let Some(received) = next {
                        match received {
                            Received::Heartbeat(d) => {
                                let now = Instant::now().into_std();
                                machine.handle(now, Input::Heartbeat { link: d.link, from: d.from, packet: &d.packet });
                            }
                            Received::Dropped => self.report_drops(),
                        }
                        taken += 1;
                        next = if taken < TAKEN_AT_ONCE { inputs.datagrams.try_recv() } else { None };
                    }
                }
                fired = inputs.deadline.fired() => {
                    // Only a runtime going away fails a wait on a descriptor: without
                    // timeouts the machine would neither beat nor judge, so stop,
                    // and let systemd start the daemon again.
                    if let Err(err) = fired {
                        error!("waiting for the heartbeat deadline failed, exiting: {err}");
                        return;
                    }
                    take_waiting(&mut machine, &mut inputs.datagrams, &mut self.checks);
                    // Read the clock on waking rather than trusting the deadline.
                    machine.handle_timeout(Instant::now().into_std());
                }
                item = seldom => {
                    take_waiting(&mut machine, &mut inputs.datagrams, &mut self.checks);
                    match item {
                    // Taken above, with the runs that did not ring.
                    Seldom::CheckNews => {}
                    Seldom::Done((id, outcome)) => {
                        let now = Instant::now().into_std();
                        machine.handle(now, Input::Done { id, outcome: &outcome });
                        // A lot of VIPs reports a thousand outcomes at once: taken in
                        // one wake-up, the release heartbeat that waits on the last
                        // goes out without a loop turn per outcome before it.
                        while let Ok((id, outcome)) = inputs.done.try_recv() {
                            machine.handle(now, Input::Done { id, outcome: &outcome });
                        }
                    }
                    Seldom::Probed((id, result)) => {
                        let now = Instant::now().into_std();
                        machine.handle(now, Input::Probed { id, result: &result });
                    }
                    Seldom::Conflict(sighting) => {
                        let now = Instant::now().into_std();
                        machine.handle(now, Input::Conflict(sighting));
                    }
                    Seldom::Request(pending) => self.answer(&mut machine, pending),
                    Seldom::Loaded(loaded) => {
                        let _ = self.finish_reload(&mut machine, *loaded);
                        // A new set of checks rings on a new channel, which holds
                        // no waker until it is polled. The gate, open after an
                        // item, polls it on the next turn; opened here as well, so
                        // that this does not rest on that.
                        inputs.gate.open();
                    }
                    Seldom::Hangup => {
                        info!("SIGHUP: reloading the configuration");
                        // The outcome is logged; there is nobody to answer.
                        self.begin_reload(&machine, None);
                    }
                    Seldom::Shutdown => {
                        shutdown_requested = true;
                        info!("shutdown requested: handing over");
                        if let Some(systemd) = &self.systemd {
                            systemd.stopping();
                        }
                        machine.handle(Instant::now().into_std(), Input::Shutdown);
                    }
                    }
                }
            }
        }
    }

    /// The handover is complete and the daemon exits, holding nothing and letting
    /// nothing go: the release note goes, unless the machine still needs it
    /// (`release_noted`: a daemon stopped before it learnt whether the VIPs a
    /// killed release left are still there); the executor's own removal, queued
    /// last, would race the exit. The notification hooks still open get a last
    /// wait. Then the last events go to the file.
    async fn exit(
        &mut self,
        // Mutable only so that the future is Send: the machine is not Sync.
        machine: &mut Machine,
        done: &mut mpsc::UnboundedReceiver<(EffectId, Outcome)>,
    ) {
        info!("handover complete, exiting");
        let state_dir = &self.config.control.state_dir;
        let cleared = match machine.release_noted() {
            true => Ok(()),
            false => {
                (self.host)
                    .write_note(state_dir, control::RELEASE_NOTE, false)
                    .await
            }
        };
        if let Err(err) = cleared {
            let note = state_dir.join(control::RELEASE_NOTE);
            warn!(
                "cannot remove {}: {err}; the next start removes the VIPs it finds \
                 rather than adopting them",
                note.display()
            );
        }
        // The same for the start hook's note, whose removal the handover's effects
        // may have queued behind the stop hook, and the exit dropped.
        if !machine.start_noted()
            && let Err(err) = (self.host)
                .write_note(state_dir, control::START_NOTE, false)
                .await
        {
            let note = state_dir.join(control::START_NOTE);
            warn!(
                "cannot remove {}: {err}; the next start that adopts the VIPs runs the \
                 start hook again",
                note.display()
            );
        }
        // A fault or standby hook given just before the stop still tells its
        // story, if it can within the bound, and its outcome is logged as any
        // other's (the machine, exited, takes no more inputs); what the runtime's
        // end would cut short in silence is named instead.
        let settle = self.jobs.settle_notices();
        tokio::pin!(settle);
        let cut = loop {
            tokio::select! {
                Some((id, outcome)) = done.recv() => self.log_late_outcome(machine, id, &outcome),
                cut = &mut settle => break cut,
            }
        };
        while let Ok((id, outcome)) = done.try_recv() {
            self.log_late_outcome(machine, id, &outcome);
        }
        if !cut.is_empty() {
            let hooks: Vec<&str> = cut.iter().map(|hook| hook.as_str()).collect();
            warn!(
                "exiting with notification hooks unfinished {} after the handover (those \
                 running are killed, those waiting never run): {}",
                format_duration(self.jobs.notice_wait()),
                hooks.join(", ")
            );
        }
        // The last events are the shutdown's: give the writer a moment to put them
        // in the file, but never hang the exit on a stuck one.
        if !self.events.flush(EXIT_FLUSH) {
            warn!("the event file did not take the last events in time");
        }
    }

    /// Logs the outcome of a hook that ended after the machine exited, in the
    /// machine's words.
    fn log_late_outcome(&mut self, machine: &Machine, id: EffectId, outcome: &Outcome) {
        if let Some(event) = machine.late_outcome(id, outcome) {
            self.log(&event);
        }
    }

    /// The once-a-second chore: the kernel's drops counted and logged, the history
    /// and the status page brought up to date, start-up's pages let go once settled.
    fn every_second(&mut self, machine: &Machine, datagrams: &mut Datagrams) {
        datagrams.learn_drops();
        self.report_drops();
        self.look(machine);
        self.publish(machine);
        self.scheduling.poll_released();
        if self.release_due && machine.role() != Role::Starting && machine.reconciled() {
            self.release_due = false;
            self.scheduling.release();
        }
    }

    /// Logs what `outbound` says of the sends on `link`.
    fn report_unsent(&self, link: usize, to: SocketAddr, report: outbound::Report) {
        let name = self.config.links.get(link).map_or("?", String::as_str);
        match report {
            outbound::Report::Failing { error, earlier: 0 } => {
                warn!(link = %name, %to, "heartbeats cannot be sent: {error}");
            }
            outbound::Report::Failing { error, earlier } => warn!(
                link = %name,
                %to,
                "heartbeats cannot be sent: {error} ({earlier} more failed since the last report)"
            ),
            outbound::Report::StillFailing {
                error,
                failed,
                lasted,
            } => warn!(
                link = %name,
                %to,
                "heartbeats still cannot be sent: {failed} failed in {:.1} s, the last: {error}",
                lasted.as_secs_f64()
            ),
            outbound::Report::Recovered { failed, lasted } => info!(
                link = %name,
                %to,
                "heartbeats go out again, after {failed} failed in {:.1} s",
                lasted.as_secs_f64()
            ),
        }
    }

    /// Carries out the pending actions; returns false once the machine asked to exit.
    fn perform(&mut self, machine: &mut Machine) -> bool {
        // Read for the first heartbeat of the turn, and only then.
        let mut now = None;
        while let Some(action) = machine.poll_action() {
            match action {
                Action::Send { link, to, datagram } => {
                    // Never wait on a full socket buffer: a heartbeat that cannot go
                    // now is worth less than the next one. The socket is
                    // non-blocking, and the runtime does not watch it for room.
                    if let Some(Some(sender)) = self.senders.get_mut(link) {
                        let at = *now.get_or_insert_with(std::time::Instant::now);
                        let sent = sender.send(&datagram, to, at);
                        if let Err(err) = &sent {
                            tracing::debug!(%to, "heartbeat not sent: {err}");
                        }
                        // The turn's clock, read for the sender already.
                        if let Some(report) = self.outbound.note(link, to, &sent, || at) {
                            self.report_unsent(link, to, report);
                        }
                    }
                }
                Action::Effect { id, effect } => {
                    if !self.jobs.queue(id, effect) {
                        error!("effect executor stopped");
                    }
                }
                Action::Withdraw { id, vip } => self.jobs.beside(id, Effect::RemoveVip(vip)),
                Action::Notify { id, effect } => {
                    if !self.jobs.notify(id, effect) {
                        error!("notification hook runner stopped");
                    }
                }
                Action::Announce {
                    vips,
                    rounds,
                    interval,
                } => executor::spawn_announce(
                    self.host.clone(),
                    executor::Rounds {
                        vips,
                        rounds,
                        interval,
                        delay: Duration::ZERO,
                    },
                    self.announcing.clone(),
                ),
                Action::Probe { id, vips, window } => {
                    let (host, tx) = (self.host.clone(), self.probed.clone());
                    tokio::spawn(async move {
                        let result = host.probe(&vips, window).await.map_err(|e| e.to_string());
                        let _ = tx.send((id, result));
                    });
                }
                Action::Watch(vips) => {
                    if let Some(task) = self.watching.take() {
                        task.abort();
                    }
                    if !vips.is_empty() {
                        let (host, tx) = (self.host.clone(), self.conflicts.clone());
                        self.watching = Some(tokio::spawn(async move {
                            if let Err(err) = host.watch(vips, tx).await {
                                warn!("cannot watch the VIPs for conflicts: {err}");
                            }
                        }));
                    }
                }
                Action::Log(event) => self.log(&event),
                Action::ActiveChecks(on) => self.checks.set_active(on),
                Action::Exit => return false,
            }
        }
        let role = machine.role();
        // The write lock only when the role changed: the check thread reads it, and a
        // lock it holds while starved would stall this loop (priority inversion).
        if self.role_sent != role {
            self.role_sent = role;
            self.role.send_replace(role);
        }
        true
    }

    fn status(&self, machine: &Machine) -> Status {
        let mut status = machine.status(Instant::now().into_std(), SystemTime::now());
        status.pid = std::process::id();
        status.daemon_version = env!("CARGO_PKG_VERSION").to_string();
        status.config = self.config_path.display().to_string();
        status.hooks = self.hook_runs.lock().map(|r| r.clone()).unwrap_or_default();
        status.events = self.events.recent(50);
        status.history = self.history.snapshot();
        self.intake.count_into(&mut status.counters);
        let now = std::time::Instant::now();
        for link in status
            .peers
            .iter_mut()
            .flat_map(|peer| peer.links.iter_mut())
        {
            let Ok(address) = link.address.parse() else {
                continue;
            };
            let (refused, ago) = self.intake.unauthentic(&link.name, address, now);
            link.unauthentic = refused;
            link.last_unauthentic_ms = ago.map(|ago| ago.as_secs_f64() * 1000.0);
        }
        status.reading_late = self.intake.reading_late();
        for (link, sender) in self.senders.iter().enumerate() {
            let (Some(sender), Some(name)) = (sender, self.config.links.get(link)) else {
                continue;
            };
            status
                .counters
                .sent_raw
                .push((name.clone(), sender.sent_raw()));
            status
                .counters
                .raw_failed
                .push((name.clone(), sender.failed_raw()));
        }
        status.scheduling = self.scheduling.status().clone();
        if let Ok(missing) = self.missing.lock() {
            status.addresses_missing = missing
                .iter()
                .map(|(link, address)| (link.clone(), address.to_string()))
                .collect();
        }
        status
    }

    fn log(&mut self, event: &Event) {
        log_event(event);
        self.events.record(event);
        self.history.record(event, SystemTime::now());
    }

    /// Logs what reading the links dropped, at most every ten seconds.
    fn report_drops(&mut self) {
        if let Some(event) = self.intake.report(std::time::Instant::now()) {
            self.log(&event);
        }
    }

    /// Notes in the history what changed since the last second: peers' states and
    /// maintenance. Allocates nothing unless something did.
    fn look(&mut self, machine: &Machine) {
        let frozen = machine.frozen();
        self.history
            .observe(machine.peer_states(), frozen, SystemTime::now());
    }

    fn publish(&self, machine: &Machine) {
        if let Some(publisher) = &self.publisher {
            // A page still behind on the last one skips this one.
            let _ = publisher.submit(Arc::new(self.status(machine)));
        }
    }

    /// Answers a control request; a reload is answered once its file has been read
    /// (see [`Shell::finish_reload`]).
    fn answer(&mut self, machine: &mut Machine, pending: Pending) {
        let Pending { command, reply } = pending;
        if let Command::Reload = command {
            self.begin_reload(machine, Some(reply));
            return;
        }
        let response = self.respond(machine, &command);
        if !(matches!(command, Command::Maintenance { .. }) && response.ok) {
            let _ = reply.send(response);
            return;
        }
        let on = machine.maintenance();
        let asked = self.maintenance_asks.ask(on);
        let (saved, written) = oneshot::channel();
        if self.state.submit((asked, saved)).is_err() {
            // The writes already waiting take this state with them.
            let why = "earlier writes still wait for it";
            warn!(
                "{}: the state directory is not written: {why}",
                restart_risk(on)
            );
            let _ = reply.send(unsaved(response, on, why));
            return;
        }
        // Answered once the flag is written, or after PERSIST_WAIT without it.
        tokio::spawn(async move {
            let response = match tokio::time::timeout(PERSIST_WAIT, written).await {
                // A later command's state written in this one's place: this
                // one's is not what a restart finds.
                Ok(Ok((wrote, Ok(())))) if wrote == on => response,
                Ok(Ok((_, Ok(())))) => unsaved(response, on, "a later command's state was written"),
                Ok(Ok((_, Err(err)))) => unsaved(response, on, &err.to_string()),
                Ok(Err(_)) => unsaved(response, on, "its writer is gone"),
                Err(_) => {
                    let why = format!("not written after {}", format_duration(PERSIST_WAIT));
                    warn!("{}: the state directory is {why}", restart_risk(on));
                    unsaved(response, on, &why)
                }
            };
            let _ = reply.send(response);
        });
    }

    fn respond(&mut self, machine: &mut Machine, command: &Command) -> Response {
        let order = match command {
            Command::Status => {
                let mut response = Response::done("status");
                response.status = Some(Box::new(self.status(machine)));
                return response;
            }
            Command::Events { after } => {
                let (events, more) = crate::control::page(self.events.since(after.unwrap_or(0)));
                let mut response = Response::done("events");
                response.events = Some(events);
                response.more = more;
                return response;
            }
            // Never reached: `answer` hands a reload to `begin_reload`.
            Command::Reload => {
                return Response::error("a reload is answered once the file is read");
            }
            Command::Takeover => Order::Takeover,
            Command::Standby => Order::Standby,
            Command::Failback => Order::Failback,
            Command::Maintenance { on } => Order::Maintenance(*on),
            Command::Clear { check } => Order::Clear(check.clone()),
        };
        let result = machine.order(Instant::now().into_std(), order);
        match &result {
            Ok(accepted) => info!(command = command.name(), "operator: {accepted}"),
            Err(refusal) => info!(command = command.name(), "operator: refused: {refusal}"),
        }
        self.publish(machine);
        match result {
            Ok(accepted) => Response::done(accepted.to_string()),
            Err(refusal) => Response::error(refusal.to_string()),
        }
    }

    /// Starts a reload: tells systemd, reopens the event file (log rotation) and has
    /// the file read off the loop; [`Shell::finish_reload`] applies it when it comes
    /// back. SIGHUP and the control socket's `reload` both come here, so both do the
    /// same. `reply` is answered when the reload is done.
    fn begin_reload(&mut self, machine: &Machine, reply: Option<oneshot::Sender<Response>>) {
        // Stopping, the node only hands over: a new file would change the hooks,
        // the VIPs or the timers of a release under way.
        if machine.stopping() {
            warn!("{}", ReloadFailure::Stopping);
            if let Some(reply) = reply {
                let _ = reply.send(Response::error(ReloadFailure::Stopping.problems()));
            }
            return;
        }
        if let Some(systemd) = &self.systemd {
            systemd.reloading();
        }
        self.events.reopen();
        if let Err(reply) = self.loader.submit(reply) {
            let refusal = "earlier ones are still reading the file";
            error!("reload refused: {refusal}");
            if let Some(reply) = reply {
                let _ = reply.send(Response::error(refusal));
            }
            if let Some(systemd) = &self.systemd {
                systemd.ready();
            }
        }
    }

    /// Applies a file read for a reload; a broken one is rejected and the running
    /// one kept.
    fn finish_reload(
        &mut self,
        machine: &mut Machine,
        loaded: Loaded,
    ) -> Result<String, ReloadFailure> {
        // A stop that began while the file was read wins, as it does over a
        // reload asked for after it (see `begin_reload`).
        let stopping = machine.stopping();
        let result = if stopping {
            Err(ReloadFailure::Stopping)
        } else {
            let interfaces = loaded.interfaces.as_deref();
            (loaded.config)
                .map_err(ReloadFailure::Config)
                .and_then(|config| self.apply(machine, config, interfaces))
        };
        match &result {
            Ok(summary) => info!("{summary}"),
            Err(ReloadFailure::Stopping) => warn!("{}", ReloadFailure::Stopping),
            Err(failure) => error!("{failure}; keeping the running configuration"),
        }
        // The file was parsed either way, by code the loop never runs.
        self.release_due = true;
        // Once stopping, systemd has been told so; READY=1 would say otherwise.
        if let Some(systemd) = self.systemd.as_ref().filter(|_| !stopping) {
            systemd.ready();
        }
        if let Some(reply) = loaded.reply {
            let _ = reply.send(match &result {
                Ok(summary) => Response::done(summary.clone()),
                Err(failure) => Response::error(failure.problems()),
            });
        }
        self.publish(machine);
        result
    }

    fn apply(
        &mut self,
        machine: &mut Machine,
        mut config: Config,
        interfaces: Option<&[Interface]>,
    ) -> Result<String, ReloadFailure> {
        // A VIP the reload brings that this host cannot hold would fail its add and
        // its interface's link check, and so move every VIP to a peer that may not
        // even know it: a mistyped interface would be an unplanned failover. The
        // rest of what does not fit is told.
        // Only where this node is where it was: a file that moves or drops it is
        // the machine's to refuse, below, and its VIPs are another node's to fit.
        let name = &self.config.nodes[self.me].name;
        let here = config.node_index(name) == Some(self.me);
        let added = new_vips(&self.config, &config, self.me);
        let (unholdable, misfits): (Vec<Misfit>, Vec<Misfit>) = (interfaces.iter())
            .filter(|_| here)
            .flat_map(|local| fit::misfits(&config, self.me, local))
            .filter(|misfit| misfit.vip().is_some_and(|vip| added.contains(vip)))
            .partition(Misfit::unholdable);
        if !unholdable.is_empty() {
            return Err(ReloadFailure::NotHere(unholdable));
        }
        for warning in &config.warnings {
            warn!("{}: {warning}", self.config_path.display());
        }
        for misfit in &misfits {
            warn!("{}: {misfit}", self.config_path.display());
        }
        // The control socket and the status page stay where they are until a
        // restart; the answer says so when the file moved them.
        let mut restart = Vec::new();
        if self.overrides.apply(config.control.clone()) != self.config.control {
            restart.push("[control]");
        }
        if config.http != self.config.http {
            restart.push("[http]");
        }
        config.control = self.config.control.clone();
        config.http = self.config.http.clone();
        let changes = machine
            .reconfigure(Instant::now().into_std(), &config)
            .map_err(ReloadFailure::Refused)?;
        // What the shell applies itself, which the machine's list cannot name: the
        // machine's view of a check leaves out what only its runner uses (the
        // timeout, how it probes).
        let old = &self.config;
        let checks = config.checks_for(self.me) != old.checks_for(self.me);
        let hook_user = config.hooks.run_as != old.hooks.run_as;
        let shell_changes = [
            (
                checks && !changes.contains(&ConfigChange::HealthChecks),
                "health checks",
            ),
            (config.key != old.key, "key"),
            (hook_user, "hook user"),
            (config.events != old.events, "events"),
            (config.scheduling != old.scheduling, "scheduling"),
        ];
        // The machine numbers the checks anew; so do the runners, and no run of an
        // old one reaches the machine after this. A new [hooks] user restarts them
        // too: it is theirs as well.
        self.host.set_hook_user(config.hooks.run_as.clone());
        if checks || hook_user {
            self.checks
                .run(config.checks_for(self.me), check_context(&config, self.me));
        }
        self.events
            .configure(config.events.keep, config.events.file.clone());
        self.intake.refilter(&config, self.me);
        self.scheduling.reload(&config.scheduling);
        for sender in self.senders.iter_mut().flatten() {
            sender.set_raw(config.scheduling.raw_send);
        }
        let applied: Vec<String> = (changes.iter().map(ToString::to_string))
            .chain(
                (shell_changes.iter())
                    .filter(|(changed, _)| *changed)
                    .map(|(_, what)| (*what).to_string()),
            )
            .collect();
        self.config = Arc::new(config);
        let mut summary = match (applied.is_empty(), restart.is_empty()) {
            (true, true) => "configuration reloaded: nothing changed".to_string(),
            (true, false) => "configuration reloaded".to_string(),
            (false, _) => format!("configuration reloaded: {}", applied.join(", ")),
        };
        if !restart.is_empty() {
            let sections = restart.join(" and ");
            summary.push_str(&format!(
                "; {sections} changed in the file: restart the daemon to apply"
            ));
        }
        for misfit in &misfits {
            summary.push_str(&format!("; warning: {misfit}"));
        }
        Ok(summary)
    }
}

/// A maintenance answer whose flag is not (yet) in the state directory: the
/// machine is frozen or thawed all the same, and a restart may undo that.
fn unsaved(mut response: Response, on: bool, why: &str) -> Response {
    let said = response.message.take().unwrap_or_default();
    let risk = restart_risk(on);
    response.message = Some(format!(
        "{said}; not saved in the state directory: {risk} ({why})"
    ));
    response
}

/// What every check run may want to know about node `me`.
fn check_context(config: &Config, me: usize) -> checks::Context {
    checks::Context {
        node: config.nodes[me].name.clone(),
        cluster: config.cluster.name.clone(),
        run_as: config.hooks.run_as.clone(),
    }
}

fn log_event(event: &Event) {
    match (event, event.severity()) {
        (Event::Transition { from, to, reason }, _) => {
            info!(from = from.as_str(), to = to.as_str(), reason = %reason, "{event}")
        }
        (_, Severity::Info) => info!("{event}"),
        (_, Severity::Warn) => warn!("{event}"),
        (_, Severity::Error) => error!("{event}"),
    }
}

/// Gives the machine what waited for this wake-up, before anything that woke the
/// loop, since it came first: the routine heartbeats, each at its arrival (see
/// `receive`), then the checks' runs that did not ring, and the one that did
/// (see `checks`), so that a status asked for now shows every run so far.
fn take_waiting(machine: &mut Machine, datagrams: &mut Datagrams, checks: &mut Checks) {
    if datagrams.deferring() {
        datagrams.take_deferred(std::time::Instant::now(), |d, heard| {
            let input = Input::Heartbeat {
                link: d.link,
                from: d.from,
                packet: &d.packet,
            };
            let refused = machine.refused();
            machine.handle_arrived(heard, input);
            machine.refused() > refused
        });
    }
    checks.take(|report| {
        let now = std::time::Instant::now();
        machine.handle(
            now,
            Input::Check {
                index: report.index,
                run: &report.run,
            },
        );
    });
}

#[cfg(test)]
mod tests;
