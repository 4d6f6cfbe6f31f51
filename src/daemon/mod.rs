//! The async shell around the [`Machine`]: it owns the sockets, the host (netlink,
//! packet sockets, hook processes) and the signals, turns what happens into inputs
//! and carries out the actions. It decides nothing.
//!
//! One task per source of input (a receiver per heartbeat link, the effect executor,
//! the control socket) feeds channels that a single loop selects on, together with
//! signals and the machine's next deadline. Slow effects run in the executor, one at
//! a time and in order, so heartbeats keep flowing while a hook runs or netlink is
//! slow. The checks run on a thread of their own (`checks`) and send their runs to
//! the same loop, so that no check, however slow or many, holds up a heartbeat.
//!
//! Everything the shell touches is given to it ([`Listeners`], a [`Host`]), so its
//! paths (carrying out actions, answering the control socket, reloading) are tested
//! without root against a recording host; see `mod tests`.

pub mod announce;
pub mod checks;
pub mod control;
pub mod events;
pub mod executor;
pub mod gateway;
pub mod hooks;
pub mod host;
pub mod http;
pub mod notify;
pub mod probe;
pub mod process;
pub mod vip;

use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::net::{TcpListener, UdpSocket, UnixListener};
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;
use tracing::{error, info, warn};

use crate::config::{Config, ConfigError};
use crate::control::{Command, Response};
use crate::machine::{
    Action, Effect, EffectId, Event, Input, Machine, Order, Outcome, ReloadError, Role, Severity,
    Sighting,
};
use crate::status::{HookRun, Status};
use crate::wire::heartbeat;
use checks::Checks;
use events::EventLog;
use executor::{Announcing, Executor};
pub use host::{Host, Kernel};

/// Why the daemon could not run.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// A heartbeat socket could not be bound: the address is not on this host, or
    /// the port is taken.
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
}

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

/// Runs node `me` until `shutdown` resolves and the handover is done.
pub async fn run(
    config: Config,
    config_path: PathBuf,
    me: usize,
    shutdown: impl Future<Output = ()>,
) -> Result<(), DaemonError> {
    let listeners = Listeners::bind(&config, me).await?;
    let host = Kernel::connect().await?;
    let (shell, machine, inputs) = Shell::start(config, config_path, me, listeners, host)?;
    shell.run(machine, inputs, shutdown).await;
    Ok(())
}

/// What the daemon listens on, bound before anything starts, so that an address
/// not on this host or a port in use fails the start with a clear message.
pub struct Listeners {
    /// One heartbeat socket per link, in the order of the configuration's links;
    /// none on a link this node has no address on (a witness off the crossover).
    pub links: Vec<Option<Arc<UdpSocket>>>,
    pub control: Option<UnixListener>,
    pub http: Option<TcpListener>,
}

impl Listeners {
    pub async fn bind(config: &Config, me: usize) -> Result<Listeners, DaemonError> {
        let mut links = Vec::new();
        for (link, address) in config.nodes[me].addresses.iter().enumerate() {
            let Some(address) = address else {
                links.push(None);
                continue;
            };
            let address = SocketAddr::new(*address, config.cluster.port);
            let socket = UdpSocket::bind(address)
                .await
                .map_err(|source| DaemonError::Bind {
                    link: config.links[link].clone(),
                    address,
                    source,
                })?;
            links.push(Some(Arc::new(socket)));
        }
        let control = Some(control::bind(&config.control)?);
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

/// A datagram from one of the heartbeat sockets.
struct Datagram {
    link: usize,
    from: IpAddr,
    bytes: Vec<u8>,
}

/// The channels the loop selects on, besides the checks' results, whose channel
/// a reload replaces.
pub struct Inputs {
    datagrams: mpsc::Receiver<Datagram>,
    done: mpsc::UnboundedReceiver<(EffectId, Outcome)>,
    requests: mpsc::Receiver<Pending>,
    probed: mpsc::UnboundedReceiver<(u64, Result<Vec<Sighting>, String>)>,
    conflicts: mpsc::Receiver<Sighting>,
}

/// What the loop needs besides the machine.
pub struct Shell<H: Host> {
    config: Arc<Config>,
    config_path: PathBuf,
    me: usize,
    sockets: Vec<Option<Arc<UdpSocket>>>,
    host: H,
    jobs: mpsc::UnboundedSender<(EffectId, Effect)>,
    events: EventLog,
    hook_runs: Arc<Mutex<Vec<HookRun>>>,
    status_tx: watch::Sender<Arc<Status>>,
    announcing: Announcing,
    /// Where a removal made beside the effect queue reports (see `Action::Withdraw`).
    done_now: mpsc::UnboundedSender<(EffectId, Outcome)>,
    /// The check thread; see `checks`.
    checks: Checks,
    /// This node's role as of the last input, for the checks' `FAILOVERD_ROLE`.
    role: watch::Sender<Role>,
    systemd: Option<notify::Notifier>,
    probed: mpsc::UnboundedSender<(u64, Result<Vec<Sighting>, String>)>,
    conflicts: mpsc::Sender<Sighting>,
    /// The task watching the VIPs for conflicts while this node holds them.
    watching: Option<tokio::task::JoinHandle<()>>,
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
        let (datagram_tx, datagrams) = mpsc::channel::<Datagram>(256);
        for (link, socket) in listeners.links.iter().enumerate() {
            let Some(socket) = socket else { continue };
            tokio::spawn(receive(link, Arc::clone(socket), datagram_tx.clone()));
        }
        let (role, role_rx) = watch::channel(Role::Starting);
        let mut checks = Checks::start(host.clone(), role_rx).map_err(DaemonError::Checks)?;
        checks.run(config.checks_for(me), check_context(&config, me));
        let (done_tx, done) = mpsc::unbounded_channel();
        let done_now = done_tx.clone();
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

        let maintenance = control::maintenance_flag(&config.control.state_dir);
        let incarnation = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
        let now = Instant::now().into_std();
        let machine = Machine::with_maintenance(&config, me, incarnation, seed, maintenance, now);
        info!(
            node = %config.nodes[me].name,
            cluster = %config.cluster.name,
            incarnation,
            maintenance,
            "failoverd started"
        );
        let (status_tx, status_rx) =
            watch::channel(Arc::new(machine.status(now, SystemTime::now())));
        if let Some(listener) = listeners.http {
            if let Ok(address) = listener.local_addr() {
                info!(%address, "status page and metrics at http://{address}/");
            }
            tokio::spawn(http::serve(listener, status_rx));
        }
        let shell = Shell {
            events: EventLog::new(config.events.keep, config.events.file.clone()),
            config: Arc::new(config),
            config_path,
            me,
            sockets: listeners.links,
            host,
            jobs,
            hook_runs,
            status_tx,
            announcing,
            done_now,
            checks,
            role,
            systemd: notify::Notifier::from_env(),
            probed: probed_tx,
            conflicts: conflicts_tx,
            watching: None,
        };
        let inputs = Inputs {
            datagrams,
            done,
            requests,
            probed,
            conflicts,
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
        let mut shown = String::new();
        // Sent from this loop, so a wedged loop stops the pings and systemd restarts us.
        let mut watchdog =
            tokio::time::interval(notify::watchdog_interval().unwrap_or(Duration::from_secs(3600)));
        let mut hangup = signal(SignalKind::hangup()).ok();
        let mut publish = tokio::time::interval(Duration::from_secs(1));
        tokio::pin!(shutdown);
        let mut shutdown_requested = false;
        loop {
            if !self.perform(&mut machine) {
                info!("handover complete, exiting");
                return;
            }
            if let Some(systemd) = &self.systemd {
                if !ready && machine.reconciled() {
                    systemd.ready();
                    ready = true;
                }
                let (_, reason) = machine.since();
                let line = format!("{}: {reason}", machine.role());
                if line != shown {
                    systemd.status(&line);
                    shown = line;
                }
            }
            let deadline = machine
                .poll_timeout()
                .map(Instant::from_std)
                .unwrap_or_else(|| Instant::now() + Duration::from_secs(3600));
            tokio::select! {
                Some(d) = inputs.datagrams.recv() => {
                    let now = Instant::now().into_std();
                    machine.handle(now, Input::Datagram { link: d.link, from: d.from, bytes: &d.bytes });
                }
                Some(report) = self.checks.recv() => {
                    let now = Instant::now().into_std();
                    machine.handle(now, Input::Check { index: report.index, run: &report.run });
                }
                Some((id, outcome)) = inputs.done.recv() => {
                    let now = Instant::now().into_std();
                    machine.handle(now, Input::Done { id, outcome: &outcome });
                }
                Some((id, result)) = inputs.probed.recv() => {
                    let now = Instant::now().into_std();
                    machine.handle(now, Input::Probed { id, result: &result });
                }
                Some(sighting) = inputs.conflicts.recv() => {
                    let now = Instant::now().into_std();
                    machine.handle(now, Input::Conflict(sighting));
                }
                Some(pending) = inputs.requests.recv() => {
                    let response = self.answer(&mut machine, &pending.command);
                    let _ = pending.reply.send(response);
                }
                Some(()) = async { match hangup.as_mut() { Some(h) => h.recv().await, None => None } } => {
                    info!("SIGHUP: reloading the configuration");
                    // The outcome is logged; there is nobody to answer.
                    let _ = self.reload(&mut machine);
                }
                _ = publish.tick() => self.publish(&machine),
                _ = watchdog.tick() => {
                    if let Some(systemd) = &self.systemd {
                        systemd.watchdog();
                    }
                }
                () = &mut shutdown, if !shutdown_requested => {
                    shutdown_requested = true;
                    info!("shutdown requested: handing over");
                    if let Some(systemd) = &self.systemd {
                        systemd.stopping();
                    }
                    machine.handle(Instant::now().into_std(), Input::Shutdown);
                }
                () = tokio::time::sleep_until(deadline) => {
                    // Read the clock on waking rather than trusting the deadline.
                    machine.handle_timeout(Instant::now().into_std());
                }
            }
        }
    }

    /// Carries out the pending actions; returns false once the machine asked to exit.
    fn perform(&mut self, machine: &mut Machine) -> bool {
        while let Some(action) = machine.poll_action() {
            match action {
                Action::Send { link, to, datagram } => {
                    // Never wait on a full socket buffer: a heartbeat that cannot go
                    // now is worth less than the next one. Sent straight on the
                    // non-blocking socket: tokio's try_send_to refuses until the
                    // runtime has seen the socket writable, which lost the first one.
                    if let Some(Some(socket)) = self.sockets.get(link)
                        && let Err(err) =
                            socket2::SockRef::from(socket.as_ref()).send_to(&datagram, &to.into())
                    {
                        tracing::debug!(%to, "heartbeat not sent: {err}");
                    }
                }
                Action::Effect { id, effect } => {
                    if self.jobs.send((id, effect)).is_err() {
                        error!("effect executor stopped");
                    }
                }
                Action::Withdraw { id, vip } => {
                    self.announcing.cancel();
                    let (host, done) = (self.host.clone(), self.done_now.clone());
                    tokio::spawn(async move {
                        let result = host.remove_vip(&vip).await;
                        tracing::debug!(vip = %vip, ?result, "withdrawn");
                        let _ = done.send((id, Outcome::Vip(result)));
                    });
                }
                Action::Announce {
                    vips,
                    rounds,
                    interval,
                } => executor::spawn_announce(
                    self.host.clone(),
                    vips,
                    rounds,
                    interval,
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
                Action::Log(event) => {
                    log_event(&event);
                    self.events.record(&event);
                }
                Action::ActiveChecks(on) => self.checks.set_active(on),
                Action::Exit => return false,
            }
        }
        let role = machine.role();
        self.role
            .send_if_modified(|shown| std::mem::replace(shown, role) != role);
        true
    }

    fn status(&self, machine: &Machine) -> Status {
        let mut status = machine.status(Instant::now().into_std(), SystemTime::now());
        status.pid = std::process::id();
        status.daemon_version = env!("CARGO_PKG_VERSION").to_string();
        status.config = self.config_path.display().to_string();
        status.hooks = self.hook_runs.lock().map(|r| r.clone()).unwrap_or_default();
        status.events = self.events.recent(50);
        status
    }

    fn publish(&self, machine: &Machine) {
        if self.status_tx.receiver_count() > 0 {
            self.status_tx.send_replace(Arc::new(self.status(machine)));
        }
    }

    fn answer(&mut self, machine: &mut Machine, command: &Command) -> Response {
        let order = match command {
            Command::Status => {
                let mut response = Response::done("status");
                response.status = Some(Box::new(self.status(machine)));
                return response;
            }
            Command::Events { after } => {
                let mut response = Response::done("events");
                response.events = Some(self.events.after(*after));
                return response;
            }
            Command::Reload => {
                return match self.reload(machine) {
                    Ok(summary) => Response::done(summary),
                    Err(failure) => Response::error(failure.to_string()),
                };
            }
            Command::Takeover => Order::Takeover,
            Command::Standby => Order::Standby,
            Command::Failback => Order::Failback,
            Command::Maintenance { on } => Order::Maintenance(*on),
            Command::Clear { check } => Order::Clear(check.clone()),
        };
        let maintenance = matches!(order, Order::Maintenance(_));
        let result = machine.order(Instant::now().into_std(), order);
        match &result {
            Ok(accepted) => info!(command = command.name(), "operator: {accepted}"),
            Err(refusal) => info!(command = command.name(), "operator: refused: {refusal}"),
        }
        if maintenance
            && result.is_ok()
            && let Err(err) =
                control::store_maintenance(&self.config.control.state_dir, machine.maintenance())
        {
            warn!("maintenance mode will not survive a restart: {err}");
        }
        self.publish(machine);
        match result {
            Ok(accepted) => Response::done(accepted.to_string()),
            Err(refusal) => Response::error(refusal.to_string()),
        }
    }

    /// Re-reads the file and applies it; a broken one is rejected and the running
    /// one kept. SIGHUP and the control socket's `reload` both come here, so both do
    /// the same: reopen the event file (log rotation), reload, tell systemd.
    fn reload(&mut self, machine: &mut Machine) -> Result<String, ReloadFailure> {
        if let Some(systemd) = &self.systemd {
            systemd.reloading();
        }
        self.events.reopen();
        let result = self.apply(machine);
        match &result {
            Ok(summary) => info!("{summary}"),
            Err(failure) => error!("{failure}; keeping the running configuration"),
        }
        if let Some(systemd) = &self.systemd {
            systemd.ready();
        }
        result
    }

    fn apply(&mut self, machine: &mut Machine) -> Result<String, ReloadFailure> {
        let mut config = Config::load(&self.config_path).map_err(ReloadFailure::Config)?;
        // The socket stays bound where it is; command-line overrides stay too.
        config.control = self.config.control.clone();
        let changes = machine
            .reconfigure(Instant::now().into_std(), &config)
            .map_err(ReloadFailure::Refused)?;
        // The machine numbers the checks anew; so do the runners, and no run of an
        // old one reaches the machine after this.
        if config.checks_for(self.me) != self.config.checks_for(self.me) {
            self.checks
                .run(config.checks_for(self.me), check_context(&config, self.me));
        }
        self.events
            .configure(config.events.keep, config.events.file.clone());
        self.config = Arc::new(config);
        Ok(if changes.is_empty() {
            "configuration reloaded: nothing changed".to_string()
        } else {
            let changes: Vec<String> = changes.iter().map(ToString::to_string).collect();
            format!("configuration reloaded: {}", changes.join(", "))
        })
    }
}

/// What every check run may want to know about node `me`.
fn check_context(config: &Config, me: usize) -> checks::Context {
    checks::Context {
        node: config.nodes[me].name.clone(),
        cluster: config.cluster.name.clone(),
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

async fn receive(link: usize, socket: Arc<UdpSocket>, tx: mpsc::Sender<Datagram>) {
    // Longer than any valid packet: anything longer is junk, cut here and then
    // rejected by the decoder for its length.
    let mut buf = vec![0u8; heartbeat::MAX_LEN * 2 + 1];
    loop {
        match socket.recv_from(&mut buf).await {
            Ok((n, from)) => {
                let datagram = Datagram {
                    link,
                    from: from.ip(),
                    bytes: buf[..n].to_vec(),
                };
                // A full channel means the loop is behind: drop rather than queue
                // without bound under a flood.
                match tx.try_send(datagram) {
                    Ok(()) | Err(mpsc::error::TrySendError::Full(_)) => {}
                    Err(mpsc::error::TrySendError::Closed(_)) => return,
                }
            }
            Err(err) => {
                warn!(link, "heartbeat receive failed: {err}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

#[cfg(test)]
mod tests;
