//! The client commands as a user runs them: the built binary against a fake daemon,
//! a thread that answers the control protocol on a Unix socket in a temporary
//! directory. No root, no network; every run of the binary is bounded in time.

use std::io::{BufRead, BufReader, Write};
use std::os::unix::net::UnixListener;
use std::path::PathBuf;
use std::process::{Command as Process, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use failoverd::control::{Command, Response, parse_request};
use failoverd::machine::Role;
use failoverd::status::{EventRecord, PeerState, Status};

#[path = "common/run.rs"]
mod run;
#[path = "common/sample.rs"]
mod sample;

use run::run_bounded;

const FIXTURE: &str = include_str!("fixtures/status.json");
/// No run of the binary in these tests should come near this.
const RUN_LIMIT: Duration = Duration::from_secs(20);

fn fixture() -> Status {
    serde_json::from_str(FIXTURE).expect("the fixture is a status document")
}

/// The fixture after alpha handed the VIPs to beta.
fn standby_fixture() -> Status {
    let mut status = fixture();
    status.state = Role::Standby.into();
    status.reason = "failback to preferred node beta".to_string();
    status.peers[0].state = PeerState::Active.into();
    for vip in &mut status.vips {
        vip.held_here = false;
        vip.holder = Some("beta".to_string());
    }
    status
}

fn with_status(status: &Status) -> Response {
    Response {
        status: Some(Box::new(status.clone())),
        ..Response::done("status")
    }
}

/// A daemon stand-in: `answer` sees every request and returns the reply.
struct FakeDaemon {
    dir: PathBuf,
    socket: PathBuf,
    requests: Arc<Mutex<Vec<Command>>>,
}

impl FakeDaemon {
    fn start(answer: impl FnMut(&Command) -> Response + Send + 'static) -> Self {
        FakeDaemon::leaving_after(usize::MAX, answer)
    }

    /// A daemon that goes away after answering `requests` requests: it removes its
    /// socket and stops listening.
    fn leaving_after(
        requests: usize,
        mut answer: impl FnMut(&Command) -> Response + Send + 'static,
    ) -> Self {
        let dir = temp_dir();
        let socket = dir.join("failoverd.sock");
        let listener = UnixListener::bind(&socket).unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = Arc::clone(&seen);
        let path = socket.clone();
        thread::spawn(move || {
            for (n, stream) in listener.incoming().enumerate().take(requests) {
                let Ok(stream) = stream else { continue };
                let mut line = Vec::new();
                if BufReader::new(&stream)
                    .read_until(b'\n', &mut line)
                    .is_err()
                {
                    continue;
                }
                let reply = match parse_request(line.trim_ascii_end()) {
                    Ok(request) => {
                        log.lock().unwrap().push(request.command.clone());
                        answer(&request.command)
                    }
                    Err(reply) => reply,
                };
                if n + 1 == requests {
                    // Gone before the client can ask again, as a stopped daemon is.
                    let _ = std::fs::remove_file(&path);
                }
                let mut bytes = serde_json::to_vec(&reply).unwrap();
                bytes.push(b'\n');
                let _ = (&stream).write_all(&bytes);
            }
        });
        FakeDaemon {
            dir,
            socket,
            requests: seen,
        }
    }

    /// Answers `status` with `status` and every command with `reply`.
    fn steady(status: Status, reply: Response) -> Self {
        FakeDaemon::start(move |command| match command {
            Command::Status => with_status(&status),
            _ => reply.clone(),
        })
    }

    fn socket(&self) -> &str {
        self.socket.to_str().unwrap()
    }

    fn requests(&self) -> Vec<Command> {
        self.requests.lock().unwrap().clone()
    }
}

impl Drop for FakeDaemon {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn temp_dir() -> PathBuf {
    static NEXT: AtomicUsize = AtomicUsize::new(0);
    let n = NEXT.fetch_add(1, Ordering::Relaxed);
    let dir = std::env::temp_dir().join(format!("failoverd-cli-{}-{n}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

/// Runs the binary to completion, killing it if it outlives [`RUN_LIMIT`].
fn failoverd(args: &[&str]) -> Output {
    let mut command = Process::new(env!("CARGO_BIN_EXE_failoverd"));
    command.args(args).env_remove("NO_COLOR");
    run_bounded(command, RUN_LIMIT)
}

fn code(output: &Output) -> i32 {
    output.status.code().expect("exited, not killed")
}

fn stdout(output: &Output) -> String {
    String::from_utf8(output.stdout.clone()).unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8(output.stderr.clone()).unwrap()
}

#[test]
fn status_shows_node_and_state() {
    let daemon = FakeDaemon::steady(fixture(), Response::done("ok"));
    let out = failoverd(&["status", "--socket", daemon.socket()]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = stdout(&out);
    assert!(
        text.starts_with("cluster web: node alpha is ACTIVE since"),
        "{text}"
    );
    assert!(text.contains("peer beta: STANDBY"), "{text}");
    assert!(!text.contains('\x1b'), "no colour into a pipe:\n{text}");
    assert_eq!(daemon.requests(), [Command::Status]);
}

#[test]
fn status_json_parses_back() {
    let daemon = FakeDaemon::steady(fixture(), Response::done("ok"));
    let out = failoverd(&["status", "--json", "--socket", daemon.socket()]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let parsed: Status = serde_json::from_slice(&out.stdout).unwrap();
    assert_eq!(parsed, fixture());
}

#[test]
fn status_exit_code_follows_the_state() {
    // A state this client does not know, from a newer daemon, counts as a failure.
    for (state, expected) in [
        ("fault", 1),
        ("starting", 4),
        ("standby", 0),
        ("draining", 1),
    ] {
        let mut status = fixture();
        status.state = serde_json::from_value(state.into()).unwrap();
        let daemon = FakeDaemon::steady(status, Response::done("ok"));
        let out = failoverd(&["status", "--socket", daemon.socket()]);
        assert_eq!(code(&out), expected, "{state}: {}", stderr(&out));
        let upper = state.to_uppercase();
        assert!(stdout(&out).contains(&format!("is {upper}")), "{state}");
    }
}

#[test]
fn no_daemon_is_one_line_and_exit_3() {
    let dir = temp_dir();
    let socket = dir.join("absent.sock");
    for command in [
        &["status"][..],
        &["takeover"],
        &["maintenance", "on"],
        &["events"],
    ] {
        let mut args = command.to_vec();
        args.extend(["--socket", socket.to_str().unwrap()]);
        let out = failoverd(&args);
        assert_eq!(code(&out), 3, "{command:?}");
        assert_eq!(
            stderr(&out),
            format!(
                "failoverd: not running (no daemon at {})\n",
                socket.display()
            )
        );
        assert!(out.stdout.is_empty());
    }
    let _ = std::fs::remove_dir_all(dir);
}

/// Under systemd, `reload --main-pid $MAINPID` reaches a daemon that no longer
/// listens where the file says (the file moved its socket, or cannot be read) by
/// SIGHUP, and fails, since nobody answers whether the file was taken. Without a
/// pid it is the usual "not running". The stand-in for the daemon is a copy of
/// `sleep` named failoverd, which SIGHUP ends; a process of another name gets
/// nothing.
#[test]
fn reload_signals_the_main_pid_when_no_daemon_answers_on_the_socket() {
    use std::os::unix::process::ExitStatusExt;
    let dir = temp_dir();
    let socket = dir.join("moved.sock");
    let sleep = dir.join("failoverd");
    std::fs::copy("/bin/sleep", &sleep).expect("copy /bin/sleep");
    let mut other = std::process::Command::new("/bin/sleep")
        .arg("30")
        .spawn()
        .expect("start sleep");
    let out = failoverd(&[
        "reload",
        "--socket",
        socket.to_str().unwrap(),
        "--main-pid",
        &other.id().to_string(),
    ]);
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    assert!(
        stderr(&out).contains("does not run failoverd"),
        "{}",
        stderr(&out)
    );
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert_eq!(
        other.try_wait().expect("look at sleep"),
        None,
        "sleep got a signal"
    );
    other.kill().expect("stop sleep");
    other.wait().expect("wait for sleep");

    let mut daemon = std::process::Command::new(&sleep)
        .arg("30")
        .spawn()
        .expect("start the stand-in");
    let pid = daemon.id().to_string();
    let out = failoverd(&[
        "reload",
        "--socket",
        socket.to_str().unwrap(),
        "--main-pid",
        &pid,
    ]);
    let ended = daemon.wait().expect("wait for sleep");
    assert_eq!(code(&out), 1, "{}", stderr(&out));
    assert!(
        stderr(&out).contains(&format!("sent SIGHUP to pid {pid} instead")),
        "{}",
        stderr(&out)
    );
    assert_eq!(ended.signal(), Some(libc::SIGHUP), "{ended:?}");

    let out = failoverd(&["reload", "--socket", socket.to_str().unwrap()]);
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    // Never signal every process, or init.
    for pid in ["0", "1", "-1"] {
        let out = failoverd(&[
            "reload",
            "--socket",
            socket.to_str().unwrap(),
            "--main-pid",
            pid,
        ]);
        assert_eq!(code(&out), 2, "--main-pid {pid}: {}", stderr(&out));
    }
    let _ = std::fs::remove_dir_all(dir);
}

#[test]
fn the_socket_comes_from_the_configuration() {
    let daemon = FakeDaemon::steady(fixture(), Response::done("ok"));
    let config = daemon.dir.join("failoverd.toml");
    // Only [control] socket is read: the rest need not be valid, no key file needed.
    std::fs::write(
        &config,
        "[cluster]\nkey_file = \"missing\"\n[control]\nsocket = \"failoverd.sock\"\n",
    )
    .unwrap();
    let out = failoverd(&["status", "--config", config.to_str().unwrap()]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));

    // --socket wins over the file.
    let elsewhere = daemon.dir.join("elsewhere.sock");
    let out = failoverd(&[
        "status",
        "--config",
        config.to_str().unwrap(),
        "--socket",
        elsewhere.to_str().unwrap(),
    ]);
    assert_eq!(code(&out), 3);
}

#[test]
fn a_refused_takeover_says_why() {
    let daemon = FakeDaemon::steady(
        standby_fixture(),
        Response::error("maintenance is on (set by beta)"),
    );
    let out = failoverd(&["takeover", "--socket", daemon.socket()]);
    assert_eq!(code(&out), 1);
    assert_eq!(
        stderr(&out),
        "failoverd: takeover refused: maintenance is on (set by beta)\n"
    );
}

#[test]
fn takeover_waits_until_this_node_holds_the_vips() {
    let before = standby_fixture();
    let mut half_done = fixture();
    half_done.vips[1].held_here = false;
    let done = fixture();
    let mut polls_after_command = None;
    let daemon = FakeDaemon::start(move |command| {
        if *command == Command::Takeover {
            polls_after_command = Some(0);
            return Response::done("takeover requested");
        }
        let status = match polls_after_command {
            None => &before,
            Some(0) => &half_done,
            Some(_) => &done,
        };
        polls_after_command = polls_after_command.map(|n| n + 1);
        with_status(status)
    });
    let out = failoverd(&["takeover", "--socket", daemon.socket()]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "takeover requested\nalpha is active and holds 198.18.0.10/24, 2001:db8::10/64\n"
    );
    assert_eq!(
        daemon.requests(),
        [
            Command::Status,
            Command::Takeover,
            Command::Status,
            Command::Status
        ]
    );
}

#[test]
fn a_takeover_that_does_not_happen_times_out() {
    let daemon = FakeDaemon::steady(standby_fixture(), Response::done("takeover requested"));
    let started = Instant::now();
    let out = failoverd(&[
        "takeover",
        "--timeout",
        "300ms",
        "--socket",
        daemon.socket(),
    ]);
    assert_eq!(code(&out), 1);
    assert_eq!(
        stderr(&out),
        "failoverd: takeover not complete after 300ms: this node is standby (failback to \
         preferred node beta)\n"
    );
    assert!(started.elapsed() < Duration::from_secs(5));
}

#[test]
fn no_wait_returns_once_accepted() {
    let daemon = FakeDaemon::steady(standby_fixture(), Response::done("standby requested"));
    let out = failoverd(&["standby", "--no-wait", "--socket", daemon.socket()]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(stdout(&out), "standby requested\n");
    assert_eq!(daemon.requests(), [Command::Standby]);
}

#[test]
fn maintenance_on() {
    let mut status = fixture();
    let daemon = FakeDaemon::start(move |command| {
        if let Command::Maintenance { on } = command {
            status.maintenance.on = *on;
            status.maintenance.set_by = vec!["alpha".to_string()];
            return Response::done("maintenance on");
        }
        with_status(&status)
    });
    let out = failoverd(&["maintenance", "on", "--socket", daemon.socket()]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    assert_eq!(
        stdout(&out),
        "maintenance on\nmaintenance is on (set by alpha): automatic transitions are frozen\n"
    );
    assert!(
        daemon
            .requests()
            .contains(&Command::Maintenance { on: true })
    );
}

#[test]
fn reload_prints_the_answer() {
    let daemon = FakeDaemon::steady(fixture(), Response::error("line 3: cluster.name: missing"));
    let out = failoverd(&["reload", "--socket", daemon.socket()]);
    assert_eq!(code(&out), 1);
    assert_eq!(
        stderr(&out),
        "failoverd: reload refused: line 3: cluster.name: missing\n"
    );
}

/// The daemon reloads the file it runs with; a `--config` that names another one
/// (only to find the socket) is told so, after the answer.
#[test]
fn reload_says_which_file_the_daemon_read() {
    let mut status = fixture();
    status.config = "/srv/failoverd/cluster.toml".to_string();
    let daemon = FakeDaemon::steady(
        status,
        Response::done("configuration reloaded: nothing changed"),
    );
    let dir = temp_dir();
    let edited = dir.join("edited.toml");
    std::fs::write(&edited, "").unwrap();
    let edited = edited.to_str().unwrap();
    let out = failoverd(&["reload", "--socket", daemon.socket(), "--config", edited]);
    assert_eq!(code(&out), 0);
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "configuration reloaded: nothing changed\n"
    );
    assert_eq!(
        stderr(&out),
        format!(
            "failoverd: the daemon reads the file it runs with, /srv/failoverd/cluster.toml, \
             not {edited} (--config only says where its control socket is)\n"
        )
    );
    // The file the daemon runs with, by another name: nothing to say.
    let mut status = fixture();
    status.config = format!(
        "{}/../{}/edited.toml",
        dir.display(),
        dir.file_name().unwrap().to_str().unwrap()
    );
    let same = FakeDaemon::steady(
        status,
        Response::done("configuration reloaded: nothing changed"),
    );
    let out = failoverd(&["reload", "--socket", same.socket(), "--config", edited]);
    assert_eq!(stderr(&out), "");
    // A file that does not exist here (the default, on a host whose daemon runs
    // another file) is no file the operator edited: nothing is said.
    let absent = dir.join("absent.toml");
    let out = failoverd(&[
        "reload",
        "--socket",
        daemon.socket(),
        "--config",
        absent.to_str().unwrap(),
    ]);
    assert_eq!(stderr(&out), "");
}

fn events_reply(events: Vec<EventRecord>) -> Response {
    Response {
        events: Some(events),
        ..Response::done("events")
    }
}

#[test]
fn events_prints_one_line_each() {
    let events = fixture().events;
    let daemon = FakeDaemon::steady(fixture(), events_reply(events.clone()));
    let out = failoverd(&["events", "--socket", daemon.socket()]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let text = stdout(&out);
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), events.len());
    assert_eq!(
        lines[0],
        "2026-11-22T01:15:02.004Z  info   failoverd started"
    );
    assert_eq!(daemon.requests(), [Command::Events { after: None }]);

    let out = failoverd(&["events", "--json", "--socket", daemon.socket()]);
    let parsed: Vec<EventRecord> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(parsed, events);
}

/// A daemon with more events than fit in a reply sends them a page at a time; the
/// client asks for the next page at once, and prints every event once.
#[test]
fn events_asks_page_after_page_until_the_last() {
    let events = fixture().events;
    assert!(events.len() >= 5);
    let pages = events.clone();
    let daemon = FakeDaemon::start(move |command| {
        let Command::Events { after } = command else {
            return Response::error("not asked");
        };
        let rest: Vec<EventRecord> = pages
            .iter()
            .filter(|e| e.seq > after.unwrap_or(0))
            .take(2)
            .cloned()
            .collect();
        let more = rest
            .last()
            .is_some_and(|l| l.seq < pages.last().unwrap().seq);
        Response {
            more,
            ..events_reply(rest)
        }
    });
    let out = failoverd(&["events", "--json", "--socket", daemon.socket()]);
    assert_eq!(code(&out), 0, "{}", stderr(&out));
    let printed: Vec<EventRecord> = stdout(&out)
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(printed, events);
    let asked = daemon.requests();
    assert_eq!(asked.len(), events.len().div_ceil(2), "{asked:?}");
    assert_eq!(asked[0], Command::Events { after: None });
    assert_eq!(
        asked[1],
        Command::Events {
            after: Some(events[1].seq)
        }
    );
}

#[test]
fn events_follow_asks_for_what_is_new_until_the_daemon_leaves() {
    let events = fixture().events;
    let daemon = FakeDaemon::leaving_after(3, move |command| match command {
        Command::Events { after: None } => events_reply(events[..3].to_vec()),
        Command::Events { after: Some(3) } => events_reply(events[3..5].to_vec()),
        _ => events_reply(Vec::new()),
    });
    let out = failoverd(&["events", "-f", "--socket", daemon.socket()]);
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    assert_eq!(stdout(&out).lines().count(), 5);
    assert!(
        stderr(&out).starts_with("failoverd: not running"),
        "{}",
        stderr(&out)
    );
}

#[test]
fn watch_prints_views_until_the_daemon_leaves() {
    let status = fixture();
    let daemon = FakeDaemon::leaving_after(2, move |_| with_status(&status));
    let out = failoverd(&[
        "status",
        "--watch",
        "--interval",
        "100ms",
        "--socket",
        daemon.socket(),
    ]);
    assert_eq!(code(&out), 3, "{}", stderr(&out));
    let text = stdout(&out);
    let views: Vec<&str> = text.split("\n\n").collect();
    assert_eq!(views.len(), 2, "{text}");
    assert!(views.iter().all(|v| v.starts_with("cluster web:")));
    assert!(!text.contains("\x1b[2J"), "no screen clearing into a pipe");
    assert_eq!(
        stderr(&out),
        format!(
            "failoverd: not running (no daemon at {})\n",
            daemon.socket()
        )
    );
}

// --- check: the files failoverd reads and runs ---------------------------------------

/// A directory (mode 0755) holding a key (0600), a configuration (0644) and a
/// directory `hooks` (0755) with a start hook (0755), for `check --node alpha`.
struct Installed {
    dir: PathBuf,
    config: PathBuf,
    hooks: PathBuf,
    hook: PathBuf,
}

impl Installed {
    fn new() -> Installed {
        let dir = temp_dir();
        chmod(&dir, 0o755);
        let key = dir.join("authkey");
        std::fs::write(&key, "0123456789abcdef0123456789abcdef\n").unwrap();
        chmod(&key, 0o600);
        let hooks = dir.join("hooks");
        std::fs::create_dir(&hooks).unwrap();
        chmod(&hooks, 0o755);
        let hook = hooks.join("start.sh");
        std::fs::write(&hook, "#!/bin/sh\n").unwrap();
        chmod(&hook, 0o755);
        let text = sample::Sample::new()
            .set("cluster.key_file", key.display())
            .remove("hooks")
            .append(&format!("[hooks]\nstart = \"{}\"\n", hook.display()))
            .to_string();
        let config = dir.join("failoverd.toml");
        std::fs::write(&config, text).unwrap();
        chmod(&config, 0o644);
        Installed {
            dir,
            config,
            hooks,
            hook,
        }
    }

    fn check(&self) -> Output {
        let config = self.config.to_str().unwrap();
        failoverd(&["check", "--config", config, "--node", "alpha"])
    }
}

impl Drop for Installed {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn chmod(path: &std::path::Path, mode: u32) {
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

#[test]
fn check_accepts_files_only_root_can_change() {
    let installed = Installed::new();
    let output = installed.check();
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let stdout = stdout(&output);
    let files: Vec<&str> = stdout
        .lines()
        // What this host's interfaces lack is not the files' business.
        .filter(|l| {
            l.starts_with("warning:")
                && !l.contains(".addresses.")
                && !l.starts_with("warning: vip[")
        })
        .collect();
    assert_eq!(files, Vec::<&str>::new(), "{stdout}");
}

#[test]
fn check_refuses_a_hook_others_can_change_and_names_the_fix() {
    let installed = Installed::new();
    chmod(&installed.hook, 0o757);
    let output = installed.check();
    assert_eq!(code(&output), 2, "{}", stdout(&output));
    let stderr = stderr(&output);
    let hook = installed.hook.display();
    assert!(
        stderr.contains("hooks.start")
            && stderr.contains("has mode 0757")
            && stderr.contains(&format!("(chmod go-w {hook})")),
        "{stderr}"
    );
}

#[test]
fn check_refuses_a_hook_in_a_directory_anyone_can_write() {
    let installed = Installed::new();
    chmod(&installed.hooks, 0o777);
    let output = installed.check();
    assert_eq!(code(&output), 2, "{}", stdout(&output));
    let message = stderr(&output);
    let dir = installed.hooks.display();
    assert!(
        message.contains("hooks.start")
            && message.contains("anyone can replace")
            && message.contains(&format!("(chmod o-w {dir})")),
        "{message}"
    );
    // The sticky bit keeps others from replacing what they do not own, as in /tmp.
    chmod(&installed.hooks, 0o1777);
    let output = installed.check();
    assert_eq!(code(&output), 0, "{}", stderr(&output));
}

#[test]
fn check_warns_of_a_directory_its_group_can_write_and_names_the_fix() {
    let installed = Installed::new();
    chmod(&installed.dir, 0o775);
    let output = installed.check();
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    let stdout = stdout(&output);
    let dir = installed.dir.display();
    for key in ["(file)", "cluster.key_file", "hooks.start"] {
        assert!(
            stdout.lines().any(|l| l.starts_with("warning: ")
                && l.contains(key)
                && l.contains("members of group")
                && l.ends_with(&format!("(chmod g-w {dir})"))),
            "no warning for {key}: {stdout}"
        );
    }
}

#[test]
fn check_refuses_a_key_or_configuration_others_can_read_or_change() {
    let installed = Installed::new();
    let key = installed.dir.join("authkey");
    chmod(&key, 0o640);
    let output = installed.check();
    assert_eq!(code(&output), 2, "{}", stdout(&output));
    assert!(
        stderr(&output).contains(&format!("(chmod 600 {})", key.display())),
        "{}",
        stderr(&output)
    );
    chmod(&key, 0o600);
    chmod(&installed.config, 0o666);
    let output = installed.check();
    assert_eq!(code(&output), 2, "{}", stdout(&output));
    let config = installed.config.display();
    assert!(
        stderr(&output).contains(&format!("(chmod go-w {config})")),
        "{}",
        stderr(&output)
    );
}
