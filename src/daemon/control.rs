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

/// Accepts clients until the loop goes away.
pub async fn serve(listener: UnixListener, loop_tx: mpsc::Sender<Pending>) {
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
            if let Err(err) = client(stream, loop_tx).await {
                debug!("control client: {err}");
            }
            drop(permit);
        });
    }
}

async fn client(stream: UnixStream, loop_tx: mpsc::Sender<Pending>) -> io::Result<()> {
    let (read, mut write) = stream.into_split();
    let mut reader = BufReader::new(read.take(MAX_REQUEST as u64 + 1));
    let mut line = Vec::new();
    let read = tokio::time::timeout(READ_TIMEOUT, reader.read_until(b'\n', &mut line)).await;
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
                    answer
                        .await
                        .unwrap_or_else(|_| Response::error("the daemon is shutting down"))
                }
            }
        },
    };
    let mut bytes = serde_json::to_vec(&response).map_err(io::Error::other)?;
    bytes.push(b'\n');
    write.write_all(&bytes).await?;
    write.shutdown().await
}

/// Whether maintenance was on when the daemon last stopped.
pub fn maintenance_flag(state_dir: &Path) -> bool {
    state_dir.join("maintenance").exists()
}

pub fn store_maintenance(state_dir: &Path, on: bool) -> io::Result<()> {
    let path = state_dir.join("maintenance");
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
