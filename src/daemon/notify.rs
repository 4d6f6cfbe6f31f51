//! systemd's service notification protocol, spoken by hand: each message is one
//! datagram of `KEY=value` lines sent to the Unix socket that `$NOTIFY_SOCKET` names.
//!
//! Owns that socket and the text of the messages. When the daemon is ready, when it
//! reloads and how often it pings the watchdog are the run loop's calls. The loop only
//! queues a message: a thread of its own (`failoverd-notify`) sends it, so a service
//! manager that stopped reading never holds up a heartbeat. Nothing here is fatal: a
//! message that cannot be sent (or queued) is logged at debug and dropped, because
//! holding the VIP matters more than what systemd thinks of us.

use std::ffi::OsStr;
use std::io;
use std::os::linux::net::SocketAddrExt;
use std::os::unix::ffi::OsStrExt;
use std::os::unix::net::{SocketAddr, UnixDatagram};
use std::time::Duration;

use tracing::debug;

use super::worker::Worker;

/// Longest a message may wait for room in systemd's queue. The socket is blocking so
/// that a burst is not lost to a momentarily full queue; the sending thread moves on
/// after this, so a stuck manager delays only the messages behind.
const SEND_TIMEOUT: Duration = Duration::from_millis(100);

/// Messages that may wait for the sending thread; more are dropped.
const BACKLOG: usize = 32;

/// A connection to the service manager's notification socket.
pub struct Notifier {
    sender: Worker<String>,
}

impl Notifier {
    /// The notifier systemd asked for in `$NOTIFY_SOCKET`, or None when the variable
    /// is unset, which means we do not run under systemd with `Type=notify` (or the
    /// name cannot be used; that is logged at debug).
    pub fn from_env() -> Option<Notifier> {
        let name = std::env::var_os("NOTIFY_SOCKET")?;
        Notifier::for_socket(&name)
    }

    /// The notifier for the socket `name`, written as in `$NOTIFY_SOCKET`: an
    /// absolute path, or `@` followed by the name of an abstract socket. Other forms
    /// (newer systemd also knows `vsock:`) are not supported and give None.
    pub fn for_socket(name: &OsStr) -> Option<Notifier> {
        let address = match address_of(name) {
            Ok(address) => address,
            Err(err) => {
                debug!(socket = ?name, "not notifying systemd: {err}");
                return None;
            }
        };
        let socket = UnixDatagram::unbound().and_then(|socket| {
            socket.set_write_timeout(Some(SEND_TIMEOUT))?;
            Ok(socket)
        });
        let sender = socket.and_then(|socket| {
            Worker::spawn("failoverd-notify", BACKLOG, move |message: String| {
                if let Err(err) = socket.send_to_addr(message.as_bytes(), &address) {
                    debug!(message, "systemd notification not sent: {err}");
                }
            })
        });
        match sender {
            Ok(sender) => Some(Notifier { sender }),
            Err(err) => {
                debug!(socket = ?name, "not notifying systemd: {err}");
                None
            }
        }
    }

    /// Start-up is complete. Also sent when a reload is done, to end `reloading`.
    pub fn ready(&self) {
        self.send("READY=1");
    }

    /// A reload has begun; send [`ready`](Notifier::ready) when it is done. Carries
    /// the time of the request on CLOCK_MONOTONIC, which systemd 253 and later match
    /// against the reload it asked for with `Type=notify-reload`.
    pub fn reloading(&self) {
        match monotonic_usec() {
            Some(usec) => self.send(&format!("RELOADING=1\nMONOTONIC_USEC={usec}")),
            None => self.send("RELOADING=1"),
        }
    }

    /// Shutdown has begun; the handover that follows may take a while.
    pub fn stopping(&self) {
        self.send("STOPPING=1");
    }

    /// A one-line status that `systemctl status` shows. Line breaks in `text` become
    /// spaces: each line of a message is a separate assignment to systemd.
    pub fn status(&self, text: &str) {
        let line: String = text
            .chars()
            .map(|c| {
                if matches!(c, '\n' | '\r' | '\0') {
                    ' '
                } else {
                    c
                }
            })
            .collect();
        self.send(&format!("STATUS={line}"));
    }

    /// The daemon is alive; systemd restarts it when these stop for `WatchdogSec`.
    /// Send one every [`watchdog_interval`].
    pub fn watchdog(&self) {
        self.send("WATCHDOG=1");
    }

    fn send(&self, message: &str) {
        if let Err(message) = self.sender.submit(message.to_owned()) {
            debug!(
                message,
                "systemd notification dropped: the sender is behind"
            );
        }
    }
}

/// How often to call [`Notifier::watchdog`]: half of `$WATCHDOG_USEC`, which leaves
/// a whole interval of slack before systemd gives up on us. None when systemd set no
/// watchdog, or set it for another process (`$WATCHDOG_PID` is someone else's pid,
/// as a hook would see it).
pub fn watchdog_interval() -> Option<Duration> {
    let usec = std::env::var_os("WATCHDOG_USEC")?;
    let pid = std::env::var_os("WATCHDOG_PID");
    parse_watchdog(&usec, pid.as_deref(), std::process::id())
}

/// [`watchdog_interval`] for the given variables and our own pid.
fn parse_watchdog(usec: &OsStr, pid: Option<&OsStr>, own_pid: u32) -> Option<Duration> {
    if let Some(pid) = pid {
        let Some(pid) = pid.to_str().and_then(|pid| pid.parse::<u32>().ok()) else {
            debug!(?pid, "watchdog ignored: WATCHDOG_PID is not a pid");
            return None;
        };
        if pid != own_pid {
            return None;
        }
    }
    let Some(usec) = usec.to_str().and_then(|usec| usec.parse::<u64>().ok()) else {
        debug!(?usec, "watchdog ignored: WATCHDOG_USEC is not a number");
        return None;
    };
    if usec == 0 {
        return None;
    }
    Some(Duration::from_micros(usec / 2).max(Duration::from_micros(1)))
}

fn address_of(name: &OsStr) -> io::Result<SocketAddr> {
    let bytes = name.as_bytes();
    match bytes.first() {
        Some(b'@') => SocketAddr::from_abstract_name(&bytes[1..]),
        Some(b'/') => SocketAddr::from_pathname(name),
        _ => Err(io::Error::new(
            io::ErrorKind::InvalidInput,
            "neither an absolute path nor an abstract socket name",
        )),
    }
}

/// Now on CLOCK_MONOTONIC in microseconds, the clock systemd compares reloads with.
/// std's Instant reads the same clock but does not reveal its value.
fn monotonic_usec() -> Option<u64> {
    let mut now = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: clock_gettime writes only into the timespec it is given, which lives
    // on this stack frame for the whole call.
    if unsafe { libc::clock_gettime(libc::CLOCK_MONOTONIC, &mut now) } != 0 {
        return None;
    }
    let seconds = u64::try_from(now.tv_sec).ok()?;
    let nanos = u64::try_from(now.tv_nsec).ok()?;
    Some(seconds * 1_000_000 + nanos / 1_000)
}

#[cfg(test)]
mod tests {
    use std::ffi::OsString;
    use std::fs;
    use std::path::PathBuf;

    use super::*;

    /// A datagram socket in a scratch directory, standing in for systemd's; the
    /// directory is removed on drop.
    struct Manager {
        dir: PathBuf,
        socket: UnixDatagram,
    }

    impl Manager {
        fn new(test: &str) -> Manager {
            let dir = std::env::temp_dir()
                .join(format!("failoverd-notify-{test}-{}", std::process::id()));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).unwrap();
            let socket = UnixDatagram::bind(dir.join("notify")).unwrap();
            Manager { dir, socket }
        }

        fn notifier(&self) -> Notifier {
            Notifier::for_socket(self.dir.join("notify").as_os_str()).unwrap()
        }

        fn receive(&self) -> String {
            receive(&self.socket)
        }
    }

    impl Drop for Manager {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.dir);
        }
    }

    fn receive(socket: &UnixDatagram) -> String {
        socket
            .set_read_timeout(Some(Duration::from_secs(5)))
            .unwrap();
        let mut buf = [0u8; 4096];
        let n = socket.recv(&mut buf).expect("no notification within 5 s");
        String::from_utf8(buf[..n].to_vec()).unwrap()
    }

    #[test]
    fn each_message_is_one_datagram() {
        let manager = Manager::new("messages");
        let notifier = manager.notifier();
        type Send = fn(&Notifier);
        let cases: [(Send, &str); 3] = [
            (Notifier::ready, "READY=1"),
            (Notifier::stopping, "STOPPING=1"),
            (Notifier::watchdog, "WATCHDOG=1"),
        ];
        for (send, expected) in cases {
            send(&notifier);
            assert_eq!(manager.receive(), expected);
        }
    }

    #[test]
    fn status_is_a_single_line() {
        let manager = Manager::new("status");
        let notifier = manager.notifier();
        notifier.status("active, holding 198.18.0.10/24");
        assert_eq!(manager.receive(), "STATUS=active, holding 198.18.0.10/24");
        notifier.status("standby\npeer beta active\r\nREADY=1");
        assert_eq!(
            manager.receive(),
            "STATUS=standby peer beta active  READY=1"
        );
    }

    #[test]
    fn reloading_carries_the_monotonic_clock() {
        let manager = Manager::new("reloading");
        let notifier = manager.notifier();
        let before = monotonic_usec().unwrap();
        notifier.reloading();
        let after = monotonic_usec().unwrap();
        let message = manager.receive();
        let lines: Vec<&str> = message.lines().collect();
        assert_eq!(lines.len(), 2, "{message:?}");
        assert_eq!(lines[0], "RELOADING=1");
        let usec: u64 = lines[1]
            .strip_prefix("MONOTONIC_USEC=")
            .unwrap_or_else(|| panic!("second line {:?}", lines[1]))
            .parse()
            .unwrap();
        assert!(
            before <= usec && usec <= after,
            "{before} <= {usec} <= {after}"
        );
    }

    #[test]
    fn a_manager_that_stopped_reading_never_holds_up_the_sender() {
        let manager = Manager::new("stuck");
        let notifier = manager.notifier();
        // Far more than the socket's queue holds: the old blocking send waited its
        // 100 ms timeout for each one past the queue's length, minutes in all.
        let started = std::time::Instant::now();
        for _ in 0..5_000 {
            notifier.watchdog();
        }
        let took = started.elapsed();
        assert!(took < Duration::from_secs(5), "5000 messages took {took:?}");
        assert_eq!(manager.receive(), "WATCHDOG=1");
    }

    #[test]
    fn abstract_sockets_are_named_with_an_at_sign() {
        let name = format!("failoverd-notify-test-{}", std::process::id());
        let address = SocketAddr::from_abstract_name(name.as_bytes()).unwrap();
        let socket = UnixDatagram::bind_addr(&address).unwrap();
        let notifier = Notifier::for_socket(OsStr::new(&format!("@{name}"))).unwrap();
        notifier.ready();
        assert_eq!(receive(&socket), "READY=1");
    }

    #[test]
    fn unusable_names_give_no_notifier() {
        let too_long = format!("/{}", "x".repeat(200));
        for name in [
            "",
            "notify",
            "run/notify",
            "vsock:2:1234",
            too_long.as_str(),
        ] {
            assert!(Notifier::for_socket(OsStr::new(name)).is_none(), "{name:?}");
        }
    }

    #[test]
    fn a_socket_nobody_listens_on_is_not_fatal() {
        let manager = Manager::new("gone");
        let notifier = manager.notifier();
        drop(manager);
        notifier.ready();
        notifier.status("still here");
    }

    #[test]
    fn watchdog_interval_is_half_the_timeout_for_us_only() {
        let us = 4242;
        let cases: [(&str, Option<&str>, Option<Duration>); 9] = [
            ("10000000", None, Some(Duration::from_secs(5))),
            ("10000000", Some("4242"), Some(Duration::from_secs(5))),
            ("10000000", Some("1"), None),
            ("10000000", Some("pid"), None),
            ("10000000", Some(""), None),
            ("3", None, Some(Duration::from_micros(1))),
            ("1", None, Some(Duration::from_micros(1))),
            ("0", None, None),
            ("10s", None, None),
        ];
        for (usec, pid, expected) in cases {
            let pid = pid.map(OsString::from);
            assert_eq!(
                parse_watchdog(OsStr::new(usec), pid.as_deref(), us),
                expected,
                "WATCHDOG_USEC={usec} WATCHDOG_PID={pid:?}"
            );
        }
    }
}
