//! The control socket server: accepts connections, reads one request each (bounded
//! in size and time), hands it to the main loop and writes the reply. Also keeps the
//! maintenance flag on disk so it survives a restart.

use std::fs;
use std::io;
use std::os::unix::fs::{PermissionsExt, chown};
use std::path::{Path, PathBuf};
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

/// Whether the state directory says a release was under way when the daemon
/// stopped (see `Machine::note_release`).
pub fn release_flag(state_dir: &Path) -> bool {
    state_dir.join(RELEASE_NOTE).exists()
}

pub fn store_release(state_dir: &Path, under_way: bool) -> io::Result<()> {
    store_flag(state_dir, RELEASE_NOTE, under_way)
}

/// The state directory's flags: a file that is there or not.
const MAINTENANCE: &str = "maintenance";
/// The note of a release under way (see `Machine::note_release`).
pub const RELEASE_NOTE: &str = "releasing";

fn store_flag(state_dir: &Path, name: &str, on: bool) -> io::Result<()> {
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
