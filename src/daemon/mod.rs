//! The async shell around the [`Machine`]: it owns the sockets, the netlink handle,
//! the hook processes and the signals, turns what happens into inputs and carries out
//! the actions. It decides nothing.
//!
//! One task per source of input (a receiver per heartbeat link, the gateway prober,
//! the effect executor, the control socket, signals) feeds channels that a single
//! loop selects on. Slow effects run in the executor, one at a time and in order, so
//! heartbeats keep flowing while a hook runs or netlink is slow.

pub mod announce;
pub mod control;
pub mod events;
pub mod executor;
pub mod gateway;
pub mod hooks;
pub mod http;
pub mod notify;
pub mod vip;

use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::net::UdpSocket;
use tokio::signal::unix::{SignalKind, signal};
use tokio::sync::{mpsc, oneshot, watch};
use tokio::time::Instant;
use tracing::{error, info, warn};

use crate::config::{Config, ConfigError};
use crate::control::{Command, Response};
use crate::machine::health::Source;
use crate::machine::{Action, Effect, EffectId, Event, Input, Machine, Order, Severity};
use crate::status::{HookRun, Status};
use crate::wire::heartbeat;
use events::EventLog;
use executor::Executor;

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
}

/// A datagram from one of the heartbeat sockets.
struct Datagram {
    link: usize,
    from: IpAddr,
    bytes: Vec<u8>,
}

/// A control request waiting for the loop's answer.
pub struct Pending {
    pub command: Command,
    pub reply: oneshot::Sender<Response>,
}

/// What the loop needs besides the machine.
struct Shell {
    config: Arc<Config>,
    config_path: PathBuf,
    sockets: Vec<Arc<UdpSocket>>,
    jobs: mpsc::UnboundedSender<(EffectId, Effect)>,
    netlink: vip::Netlink,
    events: EventLog,
    hook_runs: Arc<Mutex<Vec<HookRun>>>,
    status_tx: watch::Sender<Arc<Status>>,
    announcing: executor::Announcing,
}

/// Runs node `me` until `shutdown` resolves and the handover is done.
pub async fn run(
    config: Config,
    config_path: PathBuf,
    me: usize,
    shutdown: impl Future<Output = ()>,
) -> Result<(), DaemonError> {
    let config = Arc::new(config);
    let node = &config.nodes[me];

    let mut sockets = Vec::new();
    for (link, address) in node.addresses.iter().enumerate() {
        let address = SocketAddr::new(*address, config.cluster.port);
        let socket = UdpSocket::bind(address)
            .await
            .map_err(|source| DaemonError::Bind {
                link: config.links[link].clone(),
                address,
                source,
            })?;
        sockets.push(Arc::new(socket));
    }
    let (datagram_tx, mut datagrams) = mpsc::channel::<Datagram>(256);
    for (link, socket) in sockets.iter().enumerate() {
        tokio::spawn(receive(link, Arc::clone(socket), datagram_tx.clone()));
    }
    drop(datagram_tx);

    let (mut probes, mut prober) = start_prober(&config);

    let netlink = vip::connect().await?;
    let (mut links, mut link_monitor) = start_link_monitor(&config, me, netlink.clone());
    let (done_tx, mut done) = mpsc::unbounded_channel();
    let executor = Executor::new(netlink.clone(), done_tx);
    let hook_runs = executor.hook_runs();
    let announcing = executor.announcing();
    let jobs = executor.spawn();

    let (control_tx, mut requests) = mpsc::channel::<Pending>(16);
    let listener = control::bind(&config.control)?;
    tokio::spawn(control::serve(listener, control_tx));

    let maintenance = control::maintenance_flag(&config.control.state_dir);
    let incarnation = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
    let mut machine = Machine::with_maintenance(
        &config,
        me,
        incarnation,
        maintenance,
        Instant::now().into_std(),
    );
    info!(
        node = %node.name,
        cluster = %config.cluster.name,
        incarnation,
        maintenance,
        "failoverd started"
    );

    let (status_tx, status_rx) = watch::channel(Arc::new(
        machine.status(Instant::now().into_std(), SystemTime::now()),
    ));
    if let Some(address) = config.http.listen {
        let listener = tokio::net::TcpListener::bind(address)
            .await
            .map_err(|source| DaemonError::Http { address, source })?;
        info!(%address, "status page and metrics at http://{address}/");
        tokio::spawn(http::serve(listener, status_rx));
    } else {
        drop(status_rx);
    }
    let mut shell = Shell {
        events: EventLog::new(config.events.keep, config.events.file.clone()),
        config,
        config_path,
        sockets,
        jobs,
        netlink,
        hook_runs,
        status_tx,
        announcing,
    };

    let systemd = notify::Notifier::from_env();
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
        if !shell.perform(&mut machine) {
            info!("handover complete, exiting");
            return Ok(());
        }
        if let Some(systemd) = &systemd {
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
            Some(d) = datagrams.recv() => {
                let now = Instant::now().into_std();
                machine.handle(now, Input::Datagram { link: d.link, from: d.from, bytes: &d.bytes });
            }
            Some(p) = probes.recv() => {
                let p: gateway::ProbeResult = p;
                let rtt = p.outcome.ok();
                let now = Instant::now().into_std();
                machine.handle(now, Input::Probe { source: Source::Gateway(p.target_index), rtt });
            }
            Some((index, up)) = links.recv() => {
                let now = Instant::now().into_std();
                let rtt = up.then_some(Duration::ZERO);
                machine.handle(now, Input::Probe { source: Source::Interface(index), rtt });
            }
            Some((id, outcome)) = done.recv() => {
                let now = Instant::now().into_std();
                machine.handle(now, Input::Done { id, outcome: &outcome });
            }
            Some(pending) = requests.recv() => {
                let response = shell.answer(&mut machine, &pending.command, &mut prober, &mut probes);
                if matches!(pending.command, Command::Reload) && response.ok {
                    restart_link_monitor(&shell, me, &mut link_monitor, &mut links);
                }
                let _ = pending.reply.send(response);
            }
            Some(()) = async { match hangup.as_mut() { Some(h) => h.recv().await, None => None } } => {
                info!("SIGHUP: reloading the configuration");
                if let Some(systemd) = &systemd {
                    systemd.reloading();
                }
                shell.events.reopen();
                if shell.reload(&mut machine, &mut prober, &mut probes).is_ok() {
                    restart_link_monitor(&shell, me, &mut link_monitor, &mut links);
                }
                if let Some(systemd) = &systemd {
                    systemd.ready();
                }
            }
            _ = publish.tick() => shell.publish(&machine),
            _ = watchdog.tick() => {
                if let Some(systemd) = &systemd {
                    systemd.watchdog();
                }
            }
            () = &mut shutdown, if !shutdown_requested => {
                shutdown_requested = true;
                info!("shutdown requested: handing over");
                if let Some(systemd) = &systemd {
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

type Probes = mpsc::Receiver<gateway::ProbeResult>;
type LinkStates = mpsc::Receiver<(usize, bool)>;

/// Polls the link state (up and running) of the interfaces that carry VIPs, every
/// health interval. A missing interface counts as down.
fn start_link_monitor(
    config: &Config,
    me: usize,
    netlink: vip::Netlink,
) -> (LinkStates, Option<tokio::task::JoinHandle<()>>) {
    let (tx, rx) = mpsc::channel(16);
    let interfaces = crate::machine::checked_interfaces(config, me);
    if interfaces.is_empty() {
        return (rx, None);
    }
    let interval = config.health.interval;
    let handle = tokio::spawn(async move {
        let mut ticks = tokio::time::interval(interval);
        loop {
            ticks.tick().await;
            for (i, name) in interfaces.iter().enumerate() {
                let up = netlink.link_info(name).await.is_ok_and(|info| info.up);
                if tx.send((i, up)).await.is_err() {
                    return;
                }
            }
        }
    });
    (rx, Some(handle))
}

fn restart_link_monitor(
    shell: &Shell,
    me: usize,
    handle: &mut Option<tokio::task::JoinHandle<()>>,
    links: &mut LinkStates,
) {
    if let Some(handle) = handle.take() {
        handle.abort();
    }
    let (rx, next) = start_link_monitor(&shell.config, me, shell.netlink.clone());
    *links = rx;
    *handle = next;
}

/// Starts the gateway prober; the handle stops it on reload.
fn start_prober(config: &Config) -> (Probes, Option<tokio::task::JoinHandle<()>>) {
    let (tx, rx) = mpsc::channel(64);
    if config.health.gateways.is_empty() {
        return (rx, None);
    }
    let handle = tokio::spawn(gateway::run_prober(
        config.health.gateways.clone(),
        config.health.interval,
        config.health.timeout,
        tx,
    ));
    (rx, Some(handle))
}

impl Shell {
    /// Carries out the pending actions; returns false once the machine asked to exit.
    fn perform(&mut self, machine: &mut Machine) -> bool {
        while let Some(action) = machine.poll_action() {
            match action {
                Action::Send { link, to, datagram } => {
                    // Never wait on a full socket buffer: a heartbeat that cannot go
                    // now is worth less than the next one. Sent straight on the
                    // non-blocking socket: tokio's try_send_to refuses until the
                    // runtime has seen the socket writable, which lost the first one.
                    if let Some(socket) = self.sockets.get(link)
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
                Action::Announce {
                    vips,
                    rounds,
                    interval,
                } => executor::spawn_announce(
                    self.netlink.clone(),
                    vips,
                    rounds,
                    interval,
                    self.announcing.clone(),
                ),
                Action::Log(event) => {
                    log_event(&event);
                    self.events.record(&event);
                }
                Action::Exit => return false,
            }
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
        status
    }

    fn publish(&self, machine: &Machine) {
        if self.status_tx.receiver_count() > 0 {
            self.status_tx.send_replace(Arc::new(self.status(machine)));
        }
    }

    fn answer(
        &mut self,
        machine: &mut Machine,
        command: &Command,
        prober: &mut Option<tokio::task::JoinHandle<()>>,
        probes: &mut Probes,
    ) -> Response {
        let now = Instant::now().into_std();
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
                return match self.reload(machine, prober, probes) {
                    Ok(message) => Response::done(message),
                    Err(message) => Response::error(message),
                };
            }
            Command::Takeover => Order::Takeover,
            Command::Standby => Order::Standby,
            Command::Failback => Order::Failback,
            Command::Maintenance { on } => Order::Maintenance(*on),
        };
        let result = machine.order(now, order);
        info!(
            command = command.name(),
            "operator: {}",
            match &result {
                Ok(message) => message.clone(),
                Err(reason) => format!("refused: {reason}"),
            }
        );
        if let (Order::Maintenance(_), Ok(_)) = (order, &result)
            && let Err(err) =
                control::store_maintenance(&self.config.control.state_dir, machine.maintenance())
        {
            warn!("maintenance mode will not survive a restart: {err}");
        }
        self.publish(machine);
        match result {
            Ok(message) => Response::done(message),
            Err(reason) => Response::error(reason),
        }
    }

    /// Re-reads the file; a broken one is rejected and the running one kept.
    fn reload(
        &mut self,
        machine: &mut Machine,
        prober: &mut Option<tokio::task::JoinHandle<()>>,
        probes: &mut Probes,
    ) -> Result<String, String> {
        let mut config = match Config::load(&self.config_path) {
            Ok(config) => config,
            Err(err) => {
                let message = match &err {
                    ConfigError::Invalid { problems, .. } => problems
                        .iter()
                        .map(ToString::to_string)
                        .collect::<Vec<_>>()
                        .join("; "),
                    ConfigError::Read { .. } => err.to_string(),
                };
                error!("reload rejected, keeping the running configuration: {err}");
                return Err(format!("reload rejected: {message}"));
            }
        };
        // The socket stays bound where it is; command-line overrides stay too.
        config.control = self.config.control.clone();
        let changes = match machine.reconfigure(Instant::now().into_std(), &config) {
            Ok(changes) => changes,
            Err(reason) => {
                error!("reload rejected, keeping the running configuration: {reason}");
                return Err(format!("reload rejected: {reason}"));
            }
        };
        if config.health != self.config.health {
            if let Some(handle) = prober.take() {
                handle.abort();
            }
            let (rx, handle) = start_prober(&config);
            *probes = rx;
            *prober = handle;
        }
        self.events
            .configure(config.events.keep, config.events.file.clone());
        self.config = Arc::new(config);
        let summary = if changes.is_empty() {
            "configuration reloaded: nothing changed".to_string()
        } else {
            format!("configuration reloaded: {}", changes.join(", "))
        };
        info!("{summary}");
        Ok(summary)
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
