//! The async shell around the [`Machine`]: it owns the sockets, the netlink handle,
//! the hook processes and the signals, turns what happens into inputs and carries out
//! the actions. It decides nothing.
//!
//! One task per source of input (a receiver per heartbeat link, the gateway prober,
//! the effect executor, signals) feeds channels that a single loop selects on. Slow
//! effects run in the executor, one at a time and in order, so heartbeats keep
//! flowing while a hook runs or netlink is slow.

pub mod announce;
pub mod executor;
pub mod gateway;
pub mod hooks;
pub mod http;
pub mod vip;

use std::future::Future;
use std::io;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;
use std::time::{SystemTime, UNIX_EPOCH};

use tokio::net::UdpSocket;
use tokio::sync::mpsc;
use tokio::time::Instant;
use tracing::{error, info, warn};

use crate::config::Config;
use crate::machine::health::Source;
use crate::machine::{Action, Effect, EffectId, Event, Input, Machine, Severity};
use crate::wire::heartbeat;
use executor::{Announcer, Executor};

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
}

/// A datagram from one of the heartbeat sockets.
struct Datagram {
    link: usize,
    from: IpAddr,
    bytes: Vec<u8>,
}

/// Runs node `me` until `shutdown` resolves and the handover is done.
pub async fn run(
    config: Config,
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

    let (probe_tx, mut probes) = mpsc::channel(64);
    if !config.health.gateways.is_empty() {
        tokio::spawn(gateway::run_prober(
            config.health.gateways.clone(),
            config.health.interval,
            config.health.timeout,
            probe_tx,
        ));
    } else {
        drop(probe_tx);
    }

    let netlink = vip::connect().await?;
    let (done_tx, mut done) = mpsc::unbounded_channel();
    let executor = Executor::new(Arc::clone(&config), me, netlink, done_tx);
    let announcer = executor.announcer();
    let jobs = executor.spawn();

    let incarnation = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_micros()).unwrap_or(u64::MAX));
    let mut machine = Machine::new(&config, me, incarnation, Instant::now().into_std());
    info!(
        node = %node.name,
        cluster = %config.cluster.name,
        incarnation,
        "failoverd started"
    );

    tokio::pin!(shutdown);
    let mut shutdown_requested = false;
    loop {
        if !perform(&mut machine, &sockets, &jobs, &announcer) {
            info!("handover complete, exiting");
            return Ok(());
        }
        let deadline = machine
            .poll_timeout()
            .map(Instant::from_std)
            .unwrap_or_else(|| Instant::now() + std::time::Duration::from_secs(3600));
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
            Some((id, outcome)) = done.recv() => {
                let now = Instant::now().into_std();
                machine.handle(now, Input::Done { id, outcome: &outcome });
            }
            () = &mut shutdown, if !shutdown_requested => {
                shutdown_requested = true;
                info!("shutdown requested: handing over");
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
fn perform(
    machine: &mut Machine,
    sockets: &[Arc<UdpSocket>],
    jobs: &mpsc::UnboundedSender<(EffectId, Effect)>,
    announcer: &Announcer,
) -> bool {
    while let Some(action) = machine.poll_action() {
        match action {
            Action::Send { link, to, datagram } => {
                // Never wait on a full socket buffer: a heartbeat that cannot go now
                // is worth less than the next one.
                if let Some(socket) = sockets.get(link)
                    && let Err(err) = socket.try_send_to(&datagram, to)
                {
                    tracing::debug!(%to, "heartbeat not sent: {err}");
                }
            }
            Action::Effect { id, effect } => {
                if jobs.send((id, effect)).is_err() {
                    error!("effect executor stopped");
                }
            }
            Action::Announce { rounds } => announcer.spawn(rounds),
            Action::Log(event) => log_event(&event),
            Action::Exit => return false,
        }
    }
    true
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
    // Twice the largest valid packet: anything longer is junk and is cut, then
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
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
}
