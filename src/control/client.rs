//! The client side of the control socket, used by the command line.
//!
//! Synchronous on purpose: one request, one reply, then the connection is closed, so a
//! blocking [`UnixStream`] with a deadline is all it takes. This module moves bytes and
//! sorts failures into the cases a user acts on differently; what a reply means is up
//! to the caller.

use std::io::{self, ErrorKind, Read, Write};
use std::net::Shutdown;
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use super::{Command, Request, Response};
use crate::duration::format_duration;
use crate::status::VERSION;

/// Replies larger than this are not read to the end: a status document with a full
/// event log is a few hundred kilobytes at most.
pub const MAX_REPLY: usize = 8 * 1024 * 1024;

/// Why a request got no usable reply.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Nothing listens on the socket: it does not exist, or the daemon that made it
    /// is gone.
    #[error("failoverd is not running (no daemon at {})", .socket.display())]
    NotRunning { socket: PathBuf },
    /// The socket is there but this user may not use it.
    #[error(
        "permission denied on {}: ask root or a member of the control group ([control] group)",
        .socket.display()
    )]
    PermissionDenied { socket: PathBuf },
    /// The daemon did not answer in time.
    #[error("no reply from the daemon at {} within {}", .socket.display(), format_duration(*.after))]
    TimedOut { socket: PathBuf, after: Duration },
    /// Connecting, sending or receiving failed otherwise.
    #[error("{}: {source}", .socket.display())]
    Io { socket: PathBuf, source: io::Error },
    /// The daemon answered with something that is not a reply of this protocol.
    #[error("bad reply from the daemon at {}: {reason}", .socket.display())]
    BadReply { socket: PathBuf, reason: String },
}

/// Sends `command` to the daemon listening on `socket` and returns its reply, refused
/// or not. `timeout` bounds the whole exchange, connection included.
pub fn request(
    socket: &Path,
    command: Command,
    timeout: Duration,
) -> Result<Response, ClientError> {
    let deadline = Instant::now() + timeout;
    let io_error = |source: io::Error| match source.kind() {
        ErrorKind::NotFound | ErrorKind::ConnectionRefused => ClientError::NotRunning {
            socket: socket.to_path_buf(),
        },
        ErrorKind::PermissionDenied => ClientError::PermissionDenied {
            socket: socket.to_path_buf(),
        },
        ErrorKind::WouldBlock | ErrorKind::TimedOut => ClientError::TimedOut {
            socket: socket.to_path_buf(),
            after: timeout,
        },
        _ => ClientError::Io {
            socket: socket.to_path_buf(),
            source,
        },
    };
    let mut stream = UnixStream::connect(socket).map_err(io_error)?;
    let mut line = serde_json::to_vec(&Request::new(command))
        .expect("a request always serialises: it holds no maps with non-string keys");
    line.push(b'\n');
    stream
        .set_write_timeout(Some(remaining(deadline, timeout, socket)?))
        .map_err(io_error)?;
    stream.write_all(&line).map_err(io_error)?;
    // Closing our half tells the daemon the request is complete.
    stream.shutdown(Shutdown::Write).map_err(io_error)?;

    let mut reply = Vec::new();
    let mut chunk = [0u8; 16 * 1024];
    while !reply.contains(&b'\n') {
        stream
            .set_read_timeout(Some(remaining(deadline, timeout, socket)?))
            .map_err(io_error)?;
        let n = match stream.read(&mut chunk) {
            Ok(n) => n,
            Err(err) if err.kind() == ErrorKind::Interrupted => continue,
            Err(err) => return Err(io_error(err)),
        };
        if n == 0 {
            break;
        }
        reply.extend_from_slice(&chunk[..n]);
        if reply.len() > MAX_REPLY {
            return Err(bad_reply(socket, format!("longer than {MAX_REPLY} bytes")));
        }
    }
    parse_reply(&reply).map_err(|reason| bad_reply(socket, reason))
}

/// Time left before `deadline`, never zero (a zero timeout means "none" to the socket).
fn remaining(deadline: Instant, timeout: Duration, socket: &Path) -> Result<Duration, ClientError> {
    let left = deadline.saturating_duration_since(Instant::now());
    if left.is_zero() {
        return Err(ClientError::TimedOut {
            socket: socket.to_path_buf(),
            after: timeout,
        });
    }
    Ok(left)
}

/// The reply line, up to its newline (a daemon that closes without one still counts).
fn parse_reply(bytes: &[u8]) -> Result<Response, String> {
    let line = match bytes.iter().position(|&b| b == b'\n') {
        Some(end) => &bytes[..end],
        None => bytes,
    };
    if line.trim_ascii().is_empty() {
        return Err("the connection closed without a reply".to_string());
    }
    let response: Response =
        serde_json::from_slice(line).map_err(|err| format!("not a control reply: {err}"))?;
    if response.version != VERSION {
        return Err(format!(
            "protocol version {} (this client speaks {VERSION})",
            response.version
        ));
    }
    Ok(response)
}

fn bad_reply(socket: &Path, reason: String) -> ClientError {
    ClientError::BadReply {
        socket: socket.to_path_buf(),
        reason,
    }
}

#[cfg(test)]
mod tests {
    use std::io::BufRead;
    use std::os::unix::net::UnixListener;
    use std::thread;

    use super::*;
    use crate::control::parse_request;
    use crate::scratch::Scratch;

    /// Serves one connection: reads the request line, answers with `reply(request)`.
    fn serve_once(
        socket: &Path,
        reply: impl FnOnce(&[u8]) -> Vec<u8> + Send + 'static,
    ) -> thread::JoinHandle<()> {
        let listener = UnixListener::bind(socket).unwrap();
        thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            let mut reader = io::BufReader::new(&stream);
            let mut line = Vec::new();
            reader.read_until(b'\n', &mut line).unwrap();
            (&stream).write_all(&reply(&line)).unwrap();
        })
    }

    const TIMEOUT: Duration = Duration::from_secs(5);

    #[test]
    fn a_reply_comes_back() {
        let dir = Scratch::new("client");
        let socket = dir.join("ctl.sock");
        let server = serve_once(&socket, |line| {
            let request = parse_request(line.trim_ascii_end()).unwrap();
            assert_eq!(request.command, Command::Maintenance { on: true });
            let mut reply = serde_json::to_vec(&Response::done("maintenance on")).unwrap();
            reply.push(b'\n');
            reply
        });
        let reply = request(&socket, Command::Maintenance { on: true }, TIMEOUT).unwrap();
        server.join().unwrap();
        assert!(reply.ok);
        assert_eq!(reply.message.as_deref(), Some("maintenance on"));
    }

    #[test]
    fn a_refusal_is_a_reply_not_an_error() {
        let dir = Scratch::new("client");
        let socket = dir.join("ctl.sock");
        let server = serve_once(&socket, |_| {
            serde_json::to_vec(&Response::error("peer beta is releasing")).unwrap()
        });
        let reply = request(&socket, Command::Takeover, TIMEOUT).unwrap();
        server.join().unwrap();
        assert!(!reply.ok);
        assert_eq!(reply.error.as_deref(), Some("peer beta is releasing"));
    }

    #[test]
    fn no_daemon_is_not_running() {
        let dir = Scratch::new("client");
        let socket = dir.join("absent.sock");
        let err = request(&socket, Command::Status, TIMEOUT).unwrap_err();
        assert!(matches!(err, ClientError::NotRunning { .. }), "{err:?}");
        assert_eq!(
            err.to_string(),
            format!(
                "failoverd is not running (no daemon at {})",
                socket.display()
            )
        );

        // A socket file left behind by a daemon that is gone refuses connections.
        let stale = dir.join("stale.sock");
        drop(UnixListener::bind(&stale).unwrap());
        let err = request(&stale, Command::Status, TIMEOUT).unwrap_err();
        assert!(matches!(err, ClientError::NotRunning { .. }), "{err:?}");
    }

    #[test]
    fn garbage_is_a_bad_reply() {
        for garbage in [
            &b"HTTP/1.1 400 Bad Request\r\n"[..],
            b"",
            b"{\"version\":1}\n",
            b"{\"version\":9,\"ok\":true}\n",
        ] {
            let dir = Scratch::new("client");
            let socket = dir.join("ctl.sock");
            let server = serve_once(&socket, move |_| garbage.to_vec());
            let err = request(&socket, Command::Status, TIMEOUT).unwrap_err();
            server.join().unwrap();
            assert!(
                matches!(err, ClientError::BadReply { .. }),
                "{garbage:?}: {err:?}"
            );
        }
    }

    #[test]
    fn a_silent_daemon_times_out() {
        let dir = Scratch::new("client");
        let socket = dir.join("ctl.sock");
        let listener = UnixListener::bind(&socket).unwrap();
        let server = thread::spawn(move || {
            let (stream, _) = listener.accept().unwrap();
            thread::sleep(Duration::from_millis(500));
            drop(stream);
        });
        let err = request(&socket, Command::Status, Duration::from_millis(100)).unwrap_err();
        server.join().unwrap();
        assert!(matches!(err, ClientError::TimedOut { .. }), "{err:?}");
    }
}
