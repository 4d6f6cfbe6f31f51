//! What the shell does to the host, behind one small trait: VIPs and link facts
//! through netlink, announcements through a packet socket, hooks as processes.
//!
//! The daemon uses [`Kernel`]. Tests of the shell use a recorder instead, so that
//! carrying out actions, answering the control socket and reloading run without
//! root; the real netlink and packet paths are tested in network namespaces.

use std::collections::HashMap;
use std::fmt;
use std::future::Future;
use std::io;
use std::net::IpAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, OnceLock, RwLock};
use std::time::Duration;

use futures_util::{StreamExt, stream};
use nix::errno::Errno;
use tokio::sync::{mpsc, oneshot};

use super::announce::{self, AnnounceError};
use super::hooks::{self, HookOutcome};
use super::probe::{self, ProbeError};
use super::vip::{LinkInfo, Netlink, VipError};
use super::worker::Worker;
use crate::config::RunAs;
use crate::config::fit::Interface;
use crate::machine::{Hook, Sighting, VipFailure, VipFailureKind, VipTarget};

/// Most VIP requests a lot keeps in flight at once (see [`Host::add_vips`]).
const IN_FLIGHT: usize = 64;

/// The longest a release waits for its note in the state directory: a hung mount
/// must not hold up the stop hook and the removals queued behind the note.
pub const NOTE_TIMEOUT: Duration = Duration::from_secs(2);

/// The host's side of the effects the machine asks for.
pub trait Host: Clone + Send + Sync + 'static {
    /// Adds the VIP; already present counts as success.
    fn add_vip(&self, vip: &VipTarget) -> impl Future<Output = Result<(), VipFailure>> + Send;
    /// Removes the VIP; already gone counts as success.
    fn remove_vip(&self, vip: &VipTarget) -> impl Future<Output = Result<(), VipFailure>> + Send;
    /// Adds every VIP in `vips`, the requests in flight together rather than one
    /// after another, and returns each one's outcome in the same order, as
    /// `add_vip` would have. The requests go out in the order of `vips`; nothing
    /// waits for one before sending the next, so they may complete in any order.
    fn add_vips(
        &self,
        vips: &[VipTarget],
    ) -> impl Future<Output = Vec<Result<(), VipFailure>>> + Send {
        async move {
            // Collected first: a lazy iterator's closure held across the await
            // makes the future's Send bound unprovable.
            let adds: Vec<_> = vips.iter().map(|vip| self.add_vip(vip)).collect();
            stream::iter(adds).buffered(IN_FLIGHT).collect().await
        }
    }
    /// Removes every VIP in `vips` the way `add_vips` adds them.
    fn remove_vips(
        &self,
        vips: &[VipTarget],
    ) -> impl Future<Output = Vec<Result<(), VipFailure>>> + Send {
        async move {
            let removals: Vec<_> = vips.iter().map(|vip| self.remove_vip(vip)).collect();
            stream::iter(removals).buffered(IN_FLIGHT).collect().await
        }
    }
    /// Whether each of `vips` is on its interface, in the order of `vips`. A VIP
    /// whose interface does not exist is not there.
    fn vips_present(
        &self,
        vips: &[VipTarget],
    ) -> impl Future<Output = Vec<Result<bool, VipFailure>>> + Send;
    /// Notes in `state_dir`, in the file `name`, that a release or the start hook
    /// is under way, or that it is not (see `Machine::note_release` and
    /// `Machine::note_start`), within [`NOTE_TIMEOUT`].
    fn write_note(
        &self,
        state_dir: &Path,
        name: &'static str,
        under_way: bool,
    ) -> impl Future<Output = io::Result<()>> + Send;
    /// The interface's index, MAC and link state.
    fn link(&self, interface: &str) -> impl Future<Output = Result<LinkInfo, VipError>> + Send;
    /// One round of gratuitous ARP / unsolicited NA for `addresses` out of `link`.
    /// Never blocks.
    fn announce(&self, link: &LinkInfo, addresses: &[IpAddr]) -> Result<(), AnnounceError>;
    /// Asks the LAN whether another host answers for `vips` (see `probe`).
    /// Resolves with what answered from a MAC not this host's as soon as anything
    /// did, or with nothing once `window` has passed.
    fn probe(
        &self,
        vips: &[VipTarget],
        window: Duration,
    ) -> impl Future<Output = Result<Vec<Sighting>, ProbeError>> + Send;
    /// Watches the VIPs' interfaces for other hosts claiming them and sends each
    /// sighting on `tx` (at most one a second per VIP), until the future is
    /// dropped or `tx` closes.
    fn watch(
        &self,
        vips: Vec<VipTarget>,
        tx: mpsc::Sender<Sighting>,
    ) -> impl Future<Output = Result<(), ProbeError>> + Send;
    /// Who hooks run as from now on (`[hooks] user`): set at start and on every
    /// reload. A host that runs no processes ignores it.
    fn set_hook_user(&self, _run_as: Option<RunAs>) {}
    /// The host's interfaces and their addresses, which a reload's VIPs must fit
    /// (see `config::fit`); may block, so it is asked on the reload's thread. None
    /// when they cannot be listed: nothing is said of them then.
    fn interfaces(&self) -> Option<Vec<Interface>> {
        super::listen::local_interfaces().ok()
    }
    /// Runs a hook to completion or its timeout, as the user last set.
    fn run_hook(
        &self,
        hook: Hook,
        program: &Path,
        env: &[(String, String)],
        timeout: Duration,
    ) -> impl Future<Output = HookOutcome> + Send;
    /// The same host for the runtime this is awaited on, with whatever connection
    /// it keeps (netlink's) served there rather than by the heartbeat loop's
    /// runtime: for another thread's runtime, whose requests should not wake the
    /// loop. A host that keeps none returns a clone.
    fn served_here(&self) -> impl Future<Output = Self> + Send {
        let host = self.clone();
        async move { host }
    }
}

/// The real host: netlink in the daemon's network namespace, packet sockets, and
/// processes.
#[derive(Debug, Clone)]
pub struct Kernel {
    netlink: Netlink,
    announcer: Arc<announce::Announcer>,
    /// Shared by the clones the executor and the loop hold, so a reload reaches
    /// the next hook wherever it runs.
    hook_user: Arc<RwLock<Option<RunAs>>>,
    notes: Notes,
}

/// Writes the notes of a release or a start under way (see `Machine::note_release`)
/// on one thread of its own,
/// in the order the notes come, each answered within [`NOTE_TIMEOUT`]. While a
/// write is stuck (a hung mount), later notes fail at once rather than wait again,
/// and none lands after one that came later.
#[derive(Clone, Default)]
struct Notes {
    writer: Arc<OnceLock<Option<Worker<Note>>>>,
    /// The notes are numbered from 1: the last one given out, the latest the
    /// writer finished, and the latest whose answer came too late. A later note is
    /// refused while the one that came too late is not finished: counters rather
    /// than a flag, so that a write that ends just as its wait gives up, or an
    /// older one ending while a newer one hangs, cannot leave it wrong.
    given: Arc<AtomicU64>,
    finished: Arc<AtomicU64>,
    late: Arc<AtomicU64>,
}

struct Note {
    number: u64,
    state_dir: PathBuf,
    name: &'static str,
    under_way: bool,
    answer: oneshot::Sender<io::Result<()>>,
}

impl fmt::Debug for Notes {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Notes")
            .field("stuck", &self.stuck())
            .finish_non_exhaustive()
    }
}

impl Notes {
    /// Whether a note whose answer came too late is still being written.
    fn stuck(&self) -> bool {
        self.late.load(Ordering::Acquire) > self.finished.load(Ordering::Acquire)
    }

    async fn write(&self, state_dir: &Path, name: &'static str, under_way: bool) -> io::Result<()> {
        if self.stuck() {
            return Err(io::Error::new(
                io::ErrorKind::TimedOut,
                "an earlier note is still being written: the state directory does not answer",
            ));
        }
        let writer = self.writer.get_or_init(|| {
            let finished = Arc::clone(&self.finished);
            Worker::spawn("failoverd-note", 4, move |note: Note| {
                let result = super::control::store_flag(&note.state_dir, note.name, note.under_way);
                finished.fetch_max(note.number, Ordering::AcqRel);
                let _ = note.answer.send(result);
            })
            .ok()
        });
        let Some(writer) = writer else {
            return Err(io::Error::other(
                "cannot start the thread that writes the note",
            ));
        };
        let (answer, answered) = oneshot::channel();
        let number = self.given.fetch_add(1, Ordering::AcqRel) + 1;
        let note = Note {
            number,
            state_dir: state_dir.to_path_buf(),
            name,
            under_way,
            answer,
        };
        if writer.submit(note).is_err() {
            return Err(io::Error::other(
                "the thread that writes the note is behind",
            ));
        }
        match tokio::time::timeout(NOTE_TIMEOUT, answered).await {
            Ok(Ok(result)) => result,
            Ok(Err(_)) => Err(io::Error::other(
                "the writing thread ended without an answer",
            )),
            Err(_) => {
                self.late.fetch_max(number, Ordering::AcqRel);
                Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!(
                        "no answer from the file system within {}",
                        crate::duration::format_duration(NOTE_TIMEOUT)
                    ),
                ))
            }
        }
    }
}

impl Kernel {
    /// Opens the netlink connection (the daemon needs CAP_NET_ADMIN).
    pub async fn connect() -> Result<Kernel, VipError> {
        Ok(Kernel {
            netlink: super::vip::connect().await?,
            announcer: Arc::default(),
            hook_user: Arc::default(),
            notes: Notes::default(),
        })
    }
}

impl Host for Kernel {
    async fn served_here(&self) -> Kernel {
        match super::vip::connect().await {
            Ok(netlink) => Kernel {
                netlink,
                ..self.clone()
            },
            Err(err) => {
                tracing::warn!(
                    "cannot open a netlink connection for this thread ({err}): its \
                     requests go through the heartbeat loop's"
                );
                self.clone()
            }
        }
    }

    async fn add_vip(&self, vip: &VipTarget) -> Result<(), VipFailure> {
        self.netlink.add(vip).await.map(|_| ()).map_err(failure)
    }

    async fn remove_vip(&self, vip: &VipTarget) -> Result<(), VipFailure> {
        self.netlink.remove(vip).await.map(|_| ()).map_err(failure)
    }

    async fn add_vips(&self, vips: &[VipTarget]) -> Vec<Result<(), VipFailure>> {
        let outcomes = self.netlink.add_all(vips).await;
        outcomes
            .into_iter()
            .map(|outcome| outcome.map(|_| ()).map_err(failure))
            .collect()
    }

    async fn remove_vips(&self, vips: &[VipTarget]) -> Vec<Result<(), VipFailure>> {
        let outcomes = self.netlink.remove_all(vips).await;
        outcomes
            .into_iter()
            .map(|outcome| outcome.map(|_| ()).map_err(failure))
            .collect()
    }

    async fn vips_present(&self, vips: &[VipTarget]) -> Vec<Result<bool, VipFailure>> {
        // Each interface looked up once, then one list of every address for all.
        // Netlink that did not answer one request in time is not asked the rest one
        // by one, each with its own bound: the effects queue waits for this.
        let mut wedged: Option<VipFailure> = None;
        let mut indexes: HashMap<&str, Result<Option<u32>, VipFailure>> = HashMap::new();
        for vip in vips {
            let interface = vip.interface.as_str();
            if indexes.contains_key(interface) {
                continue;
            }
            let index = match &wedged {
                Some(failed) => Err(VipFailure {
                    kind: failed.kind,
                    message: format!("interface {interface} not looked up: {}", failed.message),
                }),
                None => self.netlink.index_of(interface).await.map_err(|err| {
                    let timed_out = matches!(err, VipError::Timeout { .. });
                    let failed = failure(err);
                    if timed_out {
                        wedged = Some(failed.clone());
                    }
                    failed
                }),
            };
            indexes.insert(interface, index);
        }
        let listed = match &wedged {
            Some(failed) => Err(failed.clone()),
            None => self.netlink.addresses().await.map_err(failure),
        };
        vips.iter()
            .map(|vip| {
                let Some(index) = indexes[vip.interface.as_str()].clone()? else {
                    return Ok(false);
                };
                let listed = listed.as_ref().map_err(Clone::clone)?;
                Ok(listed.contains(&(index, vip.address, vip.prefix_len)))
            })
            .collect()
    }

    async fn write_note(
        &self,
        state_dir: &Path,
        name: &'static str,
        under_way: bool,
    ) -> io::Result<()> {
        self.notes.write(state_dir, name, under_way).await
    }

    async fn link(&self, interface: &str) -> Result<LinkInfo, VipError> {
        self.netlink.link_info(interface).await
    }

    fn announce(&self, link: &LinkInfo, addresses: &[IpAddr]) -> Result<(), AnnounceError> {
        self.announcer.announce(link.index, link.mac, addresses)
    }

    async fn probe(
        &self,
        vips: &[VipTarget],
        window: Duration,
    ) -> Result<Vec<Sighting>, ProbeError> {
        probe::probe(&self.netlink, vips, window).await
    }

    async fn watch(
        &self,
        vips: Vec<VipTarget>,
        tx: mpsc::Sender<Sighting>,
    ) -> Result<(), ProbeError> {
        probe::watch(&self.netlink, vips, tx).await
    }

    fn set_hook_user(&self, run_as: Option<RunAs>) {
        if let Ok(mut user) = self.hook_user.write() {
            *user = run_as;
        }
    }

    async fn run_hook(
        &self,
        hook: Hook,
        program: &Path,
        env: &[(String, String)],
        timeout: Duration,
    ) -> HookOutcome {
        // Cloned out, so that no lock is held across the hook's run.
        let run_as = self
            .hook_user
            .read()
            .map(|user| user.clone())
            .unwrap_or_default();
        hooks::run_hook(hook.as_str(), program, env, timeout, run_as.as_ref()).await
    }
}

/// What a netlink error means to the core: a missing interface, a refusal that
/// the same request would meet again, or a failure on the way.
fn failure(err: VipError) -> VipFailure {
    let refused = |source: &io::Error| {
        matches!(
            source.raw_os_error().map(Errno::from_raw),
            Some(Errno::EPERM | Errno::EACCES | Errno::EINVAL | Errno::EOPNOTSUPP)
        )
    };
    let kind = match &err {
        VipError::InterfaceNotFound { .. } => VipFailureKind::NoInterface,
        VipError::InvalidLabel { .. } | VipError::NotEthernet { .. } => VipFailureKind::Refused,
        VipError::Add { source, .. } | VipError::Remove { source, .. } if refused(source) => {
            VipFailureKind::Refused
        }
        VipError::Connect(_)
        | VipError::Link { .. }
        | VipError::Add { .. }
        | VipError::Remove { .. }
        | VipError::List { .. }
        | VipError::Timeout { .. } => VipFailureKind::Transient,
    };
    VipFailure {
        kind,
        message: err.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::super::control::RELEASE_NOTE;
    use super::*;
    use crate::scratch::Scratch;

    /// A note whose write hangs (here a FIFO nobody reads, as a hung mount would)
    /// is answered after the bound; the notes after it fail at once while it
    /// hangs, rather than each waiting out the bound again behind it; once it ends,
    /// notes are written again, in order.
    #[tokio::test]
    async fn a_hung_note_costs_one_bound_and_later_ones_fail_at_once() {
        let dir = Scratch::new("notes");
        let fifo = dir.path().join(super::super::control::RELEASE_NOTE);
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::from_bits_truncate(0o600))
            .expect("mkfifo");
        let notes = Notes::default();
        let started = std::time::Instant::now();
        let err = notes
            .write(dir.path(), RELEASE_NOTE, true)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut, "{err}");
        assert!(started.elapsed() >= NOTE_TIMEOUT);
        let again = std::time::Instant::now();
        let err = notes
            .write(dir.path(), RELEASE_NOTE, false)
            .await
            .unwrap_err();
        assert_eq!(err.kind(), io::ErrorKind::TimedOut, "{err}");
        assert!(again.elapsed() < Duration::from_millis(100), "waited again");
        // A reader lets the hung write end; then the next note goes through.
        let read = std::fs::read(&fifo).expect("read the FIFO");
        assert_eq!(read, b"on\n");
        let deadline = std::time::Instant::now() + Duration::from_secs(2);
        while notes.stuck() {
            assert!(std::time::Instant::now() < deadline, "still stuck");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        notes
            .write(dir.path(), RELEASE_NOTE, false)
            .await
            .expect("removed");
        assert!(!fifo.exists());
        notes
            .write(dir.path(), RELEASE_NOTE, true)
            .await
            .expect("written");
        assert!(super::super::control::release_flag(dir.path()));
    }

    #[test]
    fn netlink_errors_map_to_the_kind_the_core_decides_on() {
        let missing = VipError::InterfaceNotFound {
            interface: "eth9".into(),
        };
        let denied = VipError::Add {
            address: "198.18.0.10".parse().unwrap(),
            interface: "eth0".into(),
            source: io::Error::from_raw_os_error(Errno::EPERM as i32),
        };
        let busy = VipError::Add {
            address: "198.18.0.10".parse().unwrap(),
            interface: "eth0".into(),
            source: io::Error::from_raw_os_error(Errno::ENOBUFS as i32),
        };
        assert_eq!(failure(missing).kind, VipFailureKind::NoInterface);
        let denied = failure(denied);
        assert_eq!(denied.kind, VipFailureKind::Refused);
        assert!(denied.message.contains("198.18.0.10"), "{}", denied.message);
        assert_eq!(failure(busy).kind, VipFailureKind::Transient);
    }

    /// A host served on another thread's runtime answers there while the runtime
    /// it was opened on does not run: the check thread's link checks never wait
    /// for the heartbeat loop's thread, nor wake it.
    #[test]
    fn a_host_served_here_answers_while_the_runtime_it_came_from_does_not_run() {
        let runtime = || {
            tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("a runtime")
        };
        let opened = runtime();
        let kernel = opened
            .block_on(Kernel::connect())
            .expect("a netlink connection");
        // `opened` is not entered again, so its connection task does not run.
        runtime().block_on(async {
            let waiting = tokio::time::timeout(Duration::from_millis(300), kernel.link("lo")).await;
            assert!(
                waiting.is_err(),
                "answered without the runtime its connection runs on"
            );
            let here = kernel.served_here().await;
            let lo = tokio::time::timeout(Duration::from_secs(5), here.link("lo"))
                .await
                .expect("answered on this runtime")
                .expect("the loopback link");
            assert!(lo.up, "{lo:?}");
        });
    }
}
