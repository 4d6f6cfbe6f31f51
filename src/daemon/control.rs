//! The control socket server: accepts connections, reads one request each (bounded
//! in size and time), hands it to the main loop and writes the reply. Also keeps the
//! maintenance flag on disk so it survives a restart.

use std::fs;
use std::io;
use std::os::unix::fs::{PermissionsExt, chown};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};
use tokio::net::{UnixListener, UnixStream};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, warn};

use super::Pending;
use crate::config::Control;
use crate::control::{MAX_REQUEST, Response, parse_request};

/// How long a client may take to send its request.
const READ_TIMEOUT: Duration = Duration::from_secs(5);
/// How long a client may take to read its reply. Replies are small (an `events` reply
/// is one page, [`crate::control::EVENTS_PAGE`]), so a client that reads takes it in
/// a moment; one that never reads loses its connection after this, and its slot is
/// free again. With [`READ_TIMEOUT`] it keeps the wait for a slot, when every slot
/// is taken by such clients, within the command line's 10 s.
const WRITE_TIMEOUT: Duration = Duration::from_secs(4);
/// How long a client's request may wait for the loop's answer. The loop answers at
/// once, except a reload (answered once a thread has read the file) and `maintenance`
/// (once a thread has written the flag): a hung mount or NSS server holds those up
/// for as long as it hangs. Without a bound each such request would keep its slot
/// for good, and a few retries would take every slot, `status` included. The
/// command line gives up after 10 s anyway (`reload` after 15 s, so that it hears
/// this bound's answer rather than its own timeout).
pub const ANSWER_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections served at once; more wait in the kernel's backlog.
const MAX_CLIENTS: usize = 16;

#[derive(Debug, thiserror::Error)]
pub enum ControlError {
    #[error("another failoverd already answers on {socket}")]
    InUse { socket: PathBuf },
    #[error("cannot create the control socket {socket}: {source}")]
    Bind { socket: PathBuf, source: io::Error },
    #[error("cannot set the owner or mode of {socket}: {source}")]
    Permissions { socket: PathBuf, source: io::Error },
}

/// Binds the socket with mode 0660, owned by root and the configured group.
pub fn bind(control: &Control) -> Result<UnixListener, ControlError> {
    let socket = &control.socket;
    if socket.exists() {
        // A socket file left by a crash is removed; one that answers is not ours.
        if std::os::unix::net::UnixStream::connect(socket).is_ok() {
            return Err(ControlError::InUse {
                socket: socket.clone(),
            });
        }
        let _ = fs::remove_file(socket);
    }
    if let Some(dir) = socket.parent() {
        fs::create_dir_all(dir).map_err(|source| ControlError::Bind {
            socket: socket.clone(),
            source,
        })?;
    }
    let listener = UnixListener::bind(socket).map_err(|source| ControlError::Bind {
        socket: socket.clone(),
        source,
    })?;
    let permissions = |source| ControlError::Permissions {
        socket: socket.clone(),
        source,
    };
    let gid = control
        .group
        .as_deref()
        .and_then(|g| nix::unistd::Group::from_name(g).ok().flatten())
        .map(|g| g.gid.as_raw());
    chown(socket, None, gid).map_err(permissions)?;
    fs::set_permissions(socket, fs::Permissions::from_mode(0o660)).map_err(permissions)?;
    Ok(listener)
}

/// How long a client may take to send its request, and to take its reply; how long
/// the loop may take to answer.
#[derive(Debug, Clone, Copy)]
struct Timeouts {
    read: Duration,
    write: Duration,
    answer: Duration,
}

/// Accepts clients until the loop goes away.
pub async fn serve(listener: UnixListener, loop_tx: mpsc::Sender<Pending>) {
    let timeouts = Timeouts {
        read: READ_TIMEOUT,
        write: WRITE_TIMEOUT,
        answer: ANSWER_TIMEOUT,
    };
    serve_with(listener, loop_tx, timeouts).await;
}

async fn serve_with(listener: UnixListener, loop_tx: mpsc::Sender<Pending>, timeouts: Timeouts) {
    let slots = std::sync::Arc::new(tokio::sync::Semaphore::new(MAX_CLIENTS));
    loop {
        let Ok(permit) = std::sync::Arc::clone(&slots).acquire_owned().await else {
            return;
        };
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(err) => {
                warn!("control socket: {err}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let loop_tx = loop_tx.clone();
        tokio::spawn(async move {
            if let Err(err) = client(stream, loop_tx, timeouts).await {
                debug!("control client: {err}");
            }
            drop(permit);
        });
    }
}

async fn client(
    stream: UnixStream,
    loop_tx: mpsc::Sender<Pending>,
    timeouts: Timeouts,
) -> io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read.take(MAX_REQUEST as u64 + 1));
    let mut line = Vec::new();
    let read = tokio::time::timeout(timeouts.read, reader.read_until(b'\n', &mut line)).await;
    let response = match read {
        Err(_) => Response::error("timed out waiting for the request"),
        Ok(Err(err)) => Response::error(format!("reading the request: {err}")),
        Ok(Ok(_)) => match parse_request(line.trim_ascii()) {
            Err(response) => response,
            Ok(request) => {
                let (reply, answer) = oneshot::channel();
                let pending = Pending {
                    command: request.command,
                    reply,
                };
                if loop_tx.send(pending).await.is_err() {
                    Response::error("the daemon is shutting down")
                } else {
                    match tokio::time::timeout(timeouts.answer, answer).await {
                        Ok(answered) => answered
                            .unwrap_or_else(|_| Response::error("the daemon is shutting down")),
                        Err(_) => Response::error(format!(
                            "no answer within {} s: the daemon is still reading its \
                             configuration (a hung mount?) or its loop is held up; the \
                             command may yet take effect",
                            timeouts.answer.as_secs()
                        )),
                    }
                }
            }
        },
    };
    let mut bytes = serde_json::to_vec(&response).map_err(io::Error::other)?;
    bytes.push(b'\n');
    let send = async {
        write.write_all(&bytes).await?;
        write.shutdown().await
    };
    tokio::time::timeout(timeouts.write, send)
        .await
        .map_err(|_| io::Error::new(io::ErrorKind::TimedOut, "the client took no reply"))?
}

/// Whether maintenance was on when the daemon last stopped.
pub fn maintenance_flag(state_dir: &Path) -> bool {
    state_dir.join(MAINTENANCE).exists()
}

pub fn store_maintenance(state_dir: &Path, on: bool) -> io::Result<()> {
    store_flag(state_dir, MAINTENANCE, on)
}

/// A write of the maintenance flag asked for: the request's number (see
/// [`MaintenanceWrites::ask`]), and where to say what was written and whether that
/// worked.
pub type FlagJob = (u64, oneshot::Sender<(bool, io::Result<()>)>);

/// The maintenance flag's writes to the state directory. Each write takes the state
/// asked for last, and answers every request made before it started: so requests
/// that piled up behind a hung directory end in the latest state, written once, and
/// only that write is reported when it goes through after all.
pub struct MaintenanceWrites<S> {
    /// The latest request's number and state, as `number << 1 | on`, one word so
    /// that the writer reads both at once.
    asked: Arc<AtomicU64>,
    store: S,
    last: Option<Written>,
}

/// A write of the flag, kept to answer the requests it stands for.
struct Written {
    /// The requests numbered up to this one were made before it started.
    answers: u64,
    on: bool,
    outcome: Result<(), (io::ErrorKind, String)>,
}

/// The loop's side of [`MaintenanceWrites`]: numbers the requests.
#[derive(Clone, Default)]
pub struct MaintenanceAsks {
    asked: Arc<AtomicU64>,
}

impl MaintenanceAsks {
    /// The writes for these requests, each through `store`.
    pub fn writes<S: FnMut(bool) -> io::Result<()>>(&self, store: S) -> MaintenanceWrites<S> {
        MaintenanceWrites {
            asked: Arc::clone(&self.asked),
            store,
            last: None,
        }
    }

    /// Asks for `on` to be written; the request's number, for its [`FlagJob`].
    /// Called from one thread only (the loop's).
    pub fn ask(&self, on: bool) -> u64 {
        let number = (self.asked.load(Ordering::Acquire) >> 1) + 1;
        self.asked
            .store(number << 1 | u64::from(on), Ordering::Release);
        number
    }
}

impl<S: FnMut(bool) -> io::Result<()>> MaintenanceWrites<S> {
    /// Writes the latest state for `job`, or answers it with the write that already
    /// did. Returns the state written when it was written for nobody: its request
    /// was answered without it, for the caller to report that it went through.
    pub fn run(&mut self, (number, reply): FlagJob) -> Option<bool> {
        if let Some(last) = &self.last
            && number <= last.answers
        {
            let outcome = (last.outcome.clone()).map_err(|(kind, why)| io::Error::new(kind, why));
            let _ = reply.send((last.on, outcome));
            return None;
        }
        let word = self.asked.load(Ordering::Acquire);
        let (answers, on) = (word >> 1, word & 1 == 1);
        let outcome = (self.store)(on);
        let written = outcome.is_ok();
        self.last = Some(Written {
            answers,
            on,
            outcome: (outcome.as_ref())
                .map(|_| ())
                .map_err(|err| (err.kind(), err.to_string())),
        });
        (reply.send((on, outcome)).is_err() && written).then_some(on)
    }
}

/// Whether the state directory says a release was under way when the daemon
/// stopped (see `Machine::note_release`).
pub fn release_flag(state_dir: &Path) -> bool {
    state_dir.join(RELEASE_NOTE).exists()
}

pub fn store_release(state_dir: &Path, under_way: bool) -> io::Result<()> {
    store_flag(state_dir, RELEASE_NOTE, under_way)
}

/// Whether the state directory says the start hook ran when the daemon stopped
/// (see `Machine::note_start`).
pub fn start_flag(state_dir: &Path) -> bool {
    state_dir.join(START_NOTE).exists()
}

/// The state directory's flags: a file that is there or not.
const MAINTENANCE: &str = "maintenance";
/// The note of a release under way (see `Machine::note_release`).
pub const RELEASE_NOTE: &str = "releasing";
/// The note of a start hook running (see `Machine::note_start`).
pub const START_NOTE: &str = "starting";

pub fn store_flag(state_dir: &Path, name: &str, on: bool) -> io::Result<()> {
    let path = state_dir.join(name);
    if on {
        fs::create_dir_all(state_dir)?;
        fs::write(path, b"on\n")
    } else {
        match fs::remove_file(path) {
            Err(err) if err.kind() != io::ErrorKind::NotFound => Err(err),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use tokio::io::AsyncReadExt;

    use super::*;
    use crate::scratch::Scratch;

    const STATUS: &[u8] = b"{\"version\":1,\"command\":\"status\"}\n";
    /// Bytes of a reply: several times a Unix socket's buffer (208 KiB).
    const REPLY: usize = 768 * 1024;

    /// Requests that piled up behind a hung state directory are answered by the
    /// first write that goes through, which takes the latest state; the write is
    /// reported once, not once per request. A request made after it starts is
    /// written again (the file may have gone meanwhile), and a failure answers the
    /// requests it covers with the same error.
    #[test]
    fn the_writes_waiting_for_the_state_directory_end_in_one() {
        let asks = MaintenanceAsks::default();
        let stored = std::cell::RefCell::new(Vec::new());
        let failing = std::cell::Cell::new(false);
        let mut writes = asks.writes(|on| {
            stored.borrow_mut().push(on);
            match failing.get() {
                true => Err(io::Error::new(io::ErrorKind::PermissionDenied, "read-only")),
                false => Ok(()),
            }
        });
        let job = |on: bool| {
            let (reply, answer) = oneshot::channel();
            ((asks.ask(on), reply), answer)
        };
        // Three commands while the directory hangs; the first two gave up waiting.
        let (first, gave_up) = job(true);
        let (second, gave_up_too) = job(false);
        let (third, mut waits) = job(true);
        drop((gave_up, gave_up_too));
        assert_eq!(writes.run(first), Some(true), "reported: nobody waited");
        assert_eq!(writes.run(second), None, "answered by the write before");
        assert_eq!(writes.run(third), None);
        assert_eq!(*stored.borrow(), [true], "one write");
        assert!(matches!(waits.try_recv(), Ok((true, Ok(())))));

        // Asked after that write: written again.
        let (fourth, mut waits) = job(false);
        assert_eq!(writes.run(fourth), None, "its command got the answer");
        assert_eq!(*stored.borrow(), [true, false]);
        assert!(matches!(waits.try_recv(), Ok((false, Ok(())))));

        // A failed write answers what it covers with its error, and is no report.
        failing.set(true);
        let (fifth, gave_up) = job(true);
        let (sixth, mut waits) = job(true);
        drop(gave_up);
        assert_eq!(writes.run(fifth), None);
        assert_eq!(writes.run(sixth), None);
        assert_eq!(*stored.borrow(), [true, false, true]);
        let Ok((true, Err(err))) = waits.try_recv() else {
            panic!("the write's error");
        };
        assert_eq!(err.to_string(), "read-only");
    }

    /// Clients that ask for a reply far larger than a socket's buffer and never read
    /// it take every slot; they are dropped after the write timeout, and the next
    /// client is served. The daemon's loop answered each at once and never waited.
    #[tokio::test]
    async fn clients_that_never_read_are_dropped_and_the_next_is_served() {
        let dir = Scratch::new("control");
        let socket = dir.join("ctl.sock");
        let listener = UnixListener::bind(&socket).unwrap();
        let (loop_tx, mut requests) = mpsc::channel::<Pending>(16);
        let timeouts = Timeouts {
            read: READ_TIMEOUT,
            write: Duration::from_millis(300),
            answer: ANSWER_TIMEOUT,
        };
        tokio::spawn(serve_with(listener, loop_tx, timeouts));
        tokio::spawn(async move {
            while let Some(pending) = requests.recv().await {
                let _ = pending.reply.send(Response::done("x".repeat(REPLY)));
            }
        });
        let started = tokio::time::Instant::now();
        let mut stuck = Vec::new();
        for _ in 0..MAX_CLIENTS {
            let mut stream = UnixStream::connect(&socket).await.unwrap();
            stream.write_all(STATUS).await.unwrap();
            stuck.push(stream);
        }
        let mut reply = Vec::new();
        let served = async {
            let mut stream = UnixStream::connect(&socket).await.unwrap();
            stream.write_all(STATUS).await.unwrap();
            stream.shutdown().await.unwrap();
            stream.read_to_end(&mut reply).await.unwrap();
        };
        tokio::time::timeout(Duration::from_secs(20), served)
            .await
            .expect("every slot still taken by the clients that never read");
        assert!(reply.len() > REPLY, "{} bytes", reply.len());
        assert!(reply.ends_with(b"\"}\n"));
        assert!(
            started.elapsed() >= timeouts.write,
            "{:?}",
            started.elapsed()
        );
        // The ones that never read got a part of their reply, then the end. (Their
        // timeouts start when their replies are ready, one after the other: wait
        // for the last.)
        tokio::time::sleep(Duration::from_secs(2)).await;
        for mut stream in stuck {
            let mut part = Vec::new();
            stream.read_to_end(&mut part).await.unwrap();
            assert!(part.len() < REPLY, "{} bytes", part.len());
        }
    }

    /// Requests the loop never answers (a reload whose file read hangs) get an
    /// error after the answer
    /// timeout and give their slot back: more of them than there are slots do not
    /// lock out the next client.
    #[tokio::test]
    async fn requests_the_loop_never_answers_give_their_slots_back() {
        let dir = Scratch::new("control-unanswered");
        let socket = dir.join("ctl.sock");
        let listener = UnixListener::bind(&socket).unwrap();
        let (loop_tx, mut requests) = mpsc::channel::<Pending>(64);
        let timeouts = Timeouts {
            read: READ_TIMEOUT,
            write: WRITE_TIMEOUT,
            answer: Duration::from_millis(300),
        };
        tokio::spawn(serve_with(listener, loop_tx, timeouts));
        // Takes every request and keeps it, unanswered, for as long as the test runs.
        let (kept_tx, kept) = oneshot::channel::<Vec<Pending>>();
        tokio::spawn(async move {
            let mut kept = Vec::new();
            while kept.len() < MAX_CLIENTS + 1 {
                match requests.recv().await {
                    Some(pending) => kept.push(pending),
                    None => break,
                }
            }
            let _ = kept_tx.send(kept);
            std::future::pending::<()>().await;
        });
        let ask = |socket: PathBuf| async move {
            let mut stream = UnixStream::connect(&socket).await.unwrap();
            stream.write_all(STATUS).await.unwrap();
            stream.shutdown().await.unwrap();
            let mut reply = Vec::new();
            stream.read_to_end(&mut reply).await.unwrap();
            String::from_utf8(reply).unwrap()
        };
        let unanswered: Vec<_> = (0..MAX_CLIENTS)
            .map(|_| tokio::spawn(ask(socket.clone())))
            .collect();
        let next = tokio::time::timeout(Duration::from_secs(10), ask(socket.clone()))
            .await
            .expect("every slot still held by a request the loop never answered");
        assert!(next.contains("no answer within"), "{next}");
        for reply in unanswered {
            let reply = reply.await.unwrap();
            assert!(reply.contains("\"ok\":false"), "{reply}");
        }
        assert_eq!(kept.await.unwrap().len(), MAX_CLIENTS + 1);
    }
}
