//! Command line: parses arguments, sets up logging, and turns errors into one-line
//! messages and exit codes. `check` and `run` exit 0 when fine, 1 on a runtime failure
//! and 2 on an invalid configuration; the client commands (`status`, `takeover`, ...)
//! use the codes documented in [`failoverd::cli`], 3 meaning that no daemon runs.

use std::io::{self, IsTerminal, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::thread;
use std::time::{Duration, SystemTime};

use clap::{CommandFactory, Parser, Subcommand, ValueEnum};
use failoverd::cli::{
    EXIT_FAILED, EXIT_NOT_RUNNING, fetch_status, outcome_summary, status_exit_code, wait_for,
};
use failoverd::config::fit::{Interface, misfits};
use failoverd::config::{
    Check, Config, ConfigError, ControlOverrides, Probe, Scope, StartFailure, socket_path,
};
use failoverd::control::Command as Request;
use failoverd::control::client::{self, ClientError};
use failoverd::duration::{format_duration, parse_duration};
use failoverd::view::text::{render_event, render_status};
use tracing::error;
use tracing_subscriber::filter::LevelFilter;

/// The sample configuration, for the tests of what `check` prints.
#[cfg(test)]
#[path = "../tests/common/sample.rs"]
mod sample;

const EXIT_RUNTIME: u8 = 1;
const EXIT_CONFIG: u8 = 2;
const DEFAULT_CONFIG: &str = "/etc/failoverd/failoverd.toml";
/// How long one request to the daemon may take; it answers at once when it runs.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// How long `reload` waits: past the daemon's own bound on an answer, so that a
/// slow read of the file gets the daemon's word on it rather than a timeout here.
const RELOAD_TIMEOUT: Duration =
    failoverd::daemon::control::ANSWER_TIMEOUT.saturating_add(Duration::from_secs(5));
/// How often `events --follow` asks for new events.
const FOLLOW_INTERVAL: Duration = Duration::from_millis(500);

#[derive(Parser)]
#[command(
    name = "failoverd",
    version,
    about = "Two-node failover: heartbeats, election, virtual IP"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args)]
struct Common {
    /// Configuration file (the same on every node).
    #[arg(long, short, default_value = DEFAULT_CONFIG)]
    config: PathBuf,
    /// This node's name in the file (default: the host name).
    #[arg(long)]
    node: Option<String>,
}

/// Where the client commands find the daemon.
#[derive(clap::Args)]
struct Target {
    /// Configuration file; only its `[control] socket` is read (a reload reads the
    /// file the daemon runs with).
    #[arg(long, short, default_value = DEFAULT_CONFIG)]
    config: PathBuf,
    /// The daemon's control socket [default: `[control] socket` from the
    /// configuration, else /run/failoverd/failoverd.sock].
    #[arg(long)]
    socket: Option<PathBuf>,
}

impl Target {
    fn socket(&self) -> PathBuf {
        self.socket
            .clone()
            .unwrap_or_else(|| socket_path(&self.config))
    }
}

/// Whether and how long a command waits for its outcome.
#[derive(clap::Args)]
struct Wait {
    /// Return once the daemon has accepted the command.
    #[arg(long)]
    no_wait: bool,
    /// How long to wait for the outcome before giving up (exit 1).
    #[arg(long, default_value = "30s", value_parser = parse_duration)]
    timeout: Duration,
}

#[derive(Clone, Copy, ValueEnum)]
enum Switch {
    On,
    Off,
}

#[derive(Subcommand)]
enum Command {
    /// Validate the configuration and print what this node will do.
    Check {
        #[command(flatten)]
        common: Common,
    },
    /// Run the daemon in the foreground, logging to stderr.
    Run {
        #[command(flatten)]
        common: Common,
        /// error, warn, info, debug or trace.
        #[arg(long, default_value = "info")]
        log_level: LevelFilter,
        /// Control socket (overrides `[control] socket`; useful to run several
        /// nodes on one host, as the tests do).
        #[arg(long)]
        socket: Option<PathBuf>,
        /// Directory for state kept across restarts (overrides `[control] state_dir`).
        #[arg(long)]
        state_dir: Option<PathBuf>,
    },
    /// Show this node's view of the cluster.
    ///
    /// Exit code: 0 active or standby (also in maintenance), 1 fault, 3 not running,
    /// 4 starting.
    Status {
        #[command(flatten)]
        target: Target,
        /// Print the status document as JSON.
        #[arg(long)]
        json: bool,
        /// Show it again every --interval until interrupted.
        #[arg(long)]
        watch: bool,
        /// Time between two views with --watch.
        #[arg(long, default_value = "1s", value_parser = interval)]
        interval: Duration,
    },
    /// Make this node active now; a peer holding the VIPs releases them first.
    Takeover {
        #[command(flatten)]
        target: Target,
        #[command(flatten)]
        wait: Wait,
    },
    /// Hand the VIPs to a peer and stay standby while a peer can hold them.
    Standby {
        #[command(flatten)]
        target: Target,
        #[command(flatten)]
        wait: Wait,
    },
    /// Move the VIPs back to the preferred node (with failback = "manual").
    Failback {
        #[command(flatten)]
        target: Target,
        #[command(flatten)]
        wait: Wait,
    },
    /// Freeze (on) or thaw (off) automatic transitions; peers honour it too.
    Maintenance {
        #[arg(value_enum)]
        switch: Switch,
        #[command(flatten)]
        target: Target,
        #[command(flatten)]
        wait: Wait,
    },
    /// Make the daemon read its configuration file again.
    Reload {
        #[command(flatten)]
        target: Target,
        /// The daemon's process id, as systemd gives it ($MAINPID): when no daemon
        /// answers on the control socket the file names (the file moved the socket,
        /// or cannot be read), send this process SIGHUP instead. That reloads too,
        /// but with no answer, so the command then exits 1.
        #[arg(long, value_name = "PID", value_parser = clap::value_parser!(i32).range(2..))]
        main_pid: Option<i32>,
    },
    /// End the sticky failure of a check that failed while this node was active, so
    /// that it may take the VIPs again.
    Clear {
        /// The check's name, as `failoverd status` shows it.
        check: String,
        #[command(flatten)]
        target: Target,
    },
    /// Print the daemon's recent events, oldest first.
    Events {
        #[command(flatten)]
        target: Target,
        /// Keep printing new events as they happen.
        #[arg(long, short)]
        follow: bool,
        /// One JSON object per line.
        #[arg(long)]
        json: bool,
    },
    /// Translate a Heartbeat or keepalived configuration into a failoverd one.
    Import(failoverd::import::command::ImportArgs),
}

/// Set, the binary parses its arguments and exits 0 without acting on them: how
/// tests/docs.rs holds every command line shown in the docs to the real parser.
const PARSE_ONLY: &str = "FAILOVERD_PARSE_ONLY";

fn main() -> ExitCode {
    #[cfg(debug_assertions)]
    if std::env::args_os()
        .nth(1)
        .is_some_and(|arg| arg == "generate-files")
    {
        return generate::run();
    }
    let cli = match Cli::try_parse() {
        Ok(cli) => cli,
        Err(err) => return argument_error(err),
    };
    if std::env::var_os(PARSE_ONLY).is_some() {
        return ExitCode::SUCCESS;
    }
    match cli.command {
        Command::Check { common } => check(&common),
        Command::Run {
            common,
            log_level,
            socket,
            state_dir,
        } => run(&common, log_level, socket, state_dir),
        Command::Status {
            target,
            json,
            watch,
            interval,
        } => status(&target.socket(), json, watch.then_some(interval)),
        Command::Takeover { target, wait } => operate(&target.socket(), Request::Takeover, &wait),
        Command::Standby { target, wait } => operate(&target.socket(), Request::Standby, &wait),
        Command::Failback { target, wait } => operate(&target.socket(), Request::Failback, &wait),
        Command::Maintenance {
            switch,
            target,
            wait,
        } => {
            let on = matches!(switch, Switch::On);
            operate(&target.socket(), Request::Maintenance { on }, &wait)
        }
        Command::Reload { target, main_pid } => reload(&target.socket(), main_pid, &target.config),
        Command::Clear { check, target } => clear(&target.socket(), check),
        Command::Events {
            target,
            follow,
            json,
        } => events(&target.socket(), follow, json),
        Command::Import(args) => failoverd::import::command::run(args),
    }
}

/// Loads the file and picks this node, printing problems the way `check` does.
fn load(common: &Common) -> Result<(Config, usize), ExitCode> {
    let config = match Config::load(&common.config) {
        Ok(config) => config,
        Err(err @ ConfigError::Read { .. }) => {
            eprintln!("failoverd: {err}");
            return Err(ExitCode::from(EXIT_CONFIG));
        }
        Err(err) => {
            eprintln!("failoverd: {err}");
            return Err(ExitCode::from(EXIT_CONFIG));
        }
    };
    let name = match &common.node {
        Some(name) => name.clone(),
        None => match nix::unistd::gethostname() {
            Ok(host) => host.to_string_lossy().into_owned(),
            Err(err) => {
                eprintln!("failoverd: cannot read the host name ({err}); pass --node NAME");
                return Err(ExitCode::from(EXIT_CONFIG));
            }
        },
    };
    let Some(me) = config.node_index(&name) else {
        let names: Vec<&str> = config.nodes.iter().map(|n| n.name.as_str()).collect();
        eprintln!(
            "failoverd: {}: no [[node]] is named \"{name}\" (nodes: {}); pass --node NAME",
            common.config.display(),
            names.join(", ")
        );
        return Err(ExitCode::from(EXIT_CONFIG));
    };
    Ok((config, me))
}

fn check(common: &Common) -> ExitCode {
    let (config, me) = match load(common) {
        Ok(loaded) => loaded,
        Err(code) => return code,
    };
    // Without the list of interfaces, nothing can be said about them; the rest stands.
    let local = failoverd::daemon::listen::local_interfaces().ok();
    print!(
        "{}",
        describe(&config, me, &common.config, local.as_deref())
    );
    ExitCode::SUCCESS
}

/// What `check` prints: this node's view of the cluster, then what may need fixing:
/// the configuration's warnings, and, compared with `local`, the host's interfaces
/// (when known), each heartbeat address of this node that is not on the host and
/// each VIP whose interface is not there or has no address of the VIP's subnet.
fn describe(config: &Config, me: usize, path: &Path, local: Option<&[Interface]>) -> String {
    let mut out = describe_node(config, me, path);
    for warning in &config.warnings {
        out.push_str(&format!("warning: {warning}\n"));
    }
    let Some(local) = local else {
        return out;
    };
    for misfit in misfits(config, me, local) {
        out.push_str(&format!("warning: {misfit}\n"));
    }
    out
}

/// This node's view of the cluster, as `check` prints it first.
fn describe_node(config: &Config, me: usize, path: &Path) -> String {
    let node = &config.nodes[me];
    let t = &config.timing;
    let c = &config.cluster;
    let mut out = String::new();
    let mut line = |s: String| {
        out.push_str(&s);
        out.push('\n');
    };
    line(format!("{}: valid", path.display()));
    line(format!(
        "cluster {} (port {}, fingerprint {})",
        c.name,
        c.port,
        config
            .fingerprint()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    ));
    line(format!(
        "key {}: check {} (the same on every node when the key files match)",
        c.key_file.display(),
        config
            .key
            .check()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    ));
    let role = |n: &failoverd::config::Node| {
        if n.witness {
            "witness, holds nothing".to_string()
        } else {
            format!("priority {}", n.priority)
        }
    };
    line(format!("this node: {} ({})", node.name, role(node)));
    for (link, address) in node.link_addresses() {
        line(format!(
            "  listens on {}: {address}:{}",
            config.links[link], c.port
        ));
    }
    for (i, peer) in config.nodes.iter().enumerate() {
        if i == me {
            continue;
        }
        line(format!("peer: {} ({})", peer.name, role(peer)));
        for (link, address) in peer.link_addresses() {
            // Only the links both nodes are on carry heartbeats between them.
            if node.addresses[link].is_some() {
                line(format!(
                    "  heartbeats on {} to {address}:{}",
                    config.links[link], c.port
                ));
            }
        }
    }
    if config.majority_rule() {
        line(format!(
            "majority rule: {} voters, taking or keeping the VIPs needs {}",
            config.voters(),
            config.majority()
        ));
    }
    for vip in config.vips.iter().filter(|_| !node.witness) {
        let label = vip
            .label_on(node)
            .map(|l| format!(" label {l}"))
            .unwrap_or_default();
        line(format!(
            "vip: {vip} on {}{label}",
            node.interface(&vip.interface)
        ));
    }
    line(format!(
        "timing: interval {}, warn {}, dead {}, init_dead {}",
        format_duration(t.interval),
        format_duration(t.warn),
        format_duration(t.dead),
        format_duration(t.init_dead)
    ));
    if config.majority_rule() {
        line("standby: heartbeats every interval (the majority rule needs them all)".to_string());
    } else if t.standby_interval > t.interval {
        line(format!(
            "standby: heartbeats every {} while it hears the active node (standby_interval)",
            format_duration(t.standby_interval)
        ));
    } else {
        line("standby: heartbeats every interval (standby_interval = interval)".to_string());
    }
    if node.witness {
        line("a witness holds nothing: no VIPs, checks or hooks".to_string());
        return out;
    }
    line(match c.failback {
        failoverd::config::Failback::Auto => format!(
            "failback: auto, after {} of health",
            format_duration(c.failback_delay)
        ),
        failoverd::config::Failback::Manual => "failback: manual".to_string(),
    });
    let checks = config.checks_for(me);
    if checks.is_empty() {
        line("checks: none".to_string());
    } else {
        line("checks:".to_string());
    }
    for check in &checks {
        line(format!("  {}: {}", check.name, describe_check(check)));
    }
    let hooks = &config.hooks;
    for (name, path) in [
        ("start", &hooks.start),
        ("stop", &hooks.stop),
        ("fault", &hooks.fault),
        ("standby", &hooks.standby),
    ] {
        match path {
            Some(path) => line(format!(
                "hook {name}: {} (timeout {})",
                path.display(),
                format_duration(hooks.timeout)
            )),
            None => line(format!("hook {name}: none")),
        }
    }
    line(match &hooks.run_as {
        // Only leaving uid 0 empties the capability sets: root keeps failoverd's.
        Some(run_as) if run_as.uid == 0 => format!(
            "hooks, exec checks and the fencing command run as {run_as}, with failoverd's \
             capabilities"
        ),
        Some(run_as) => format!(
            "hooks, exec checks and the fencing command run as {run_as}, without capabilities"
        ),
        None => {
            "hooks, exec checks and the fencing command run as failoverd's own user".to_string()
        }
    });
    line(
        match hooks.start_failure {
            StartFailure::Release => {
                "start failure: release (a failing start hook hands the VIPs to a healthy peer)"
            }
            StartFailure::Ignore => "start failure: ignore (a failing start hook is logged only)",
        }
        .to_string(),
    );
    let a = &config.announce;
    line(format!(
        "announce: {} rounds {} apart, refresh {}",
        a.count,
        format_duration(a.interval),
        a.refresh.map_or("off".to_string(), format_duration)
    ));
    out
}

/// One check as `check` lists it: what it looks at, how often, what it takes to
/// change its mind, what it counts and when it runs.
fn describe_check(check: &Check) -> String {
    let mut out = check.probe.to_string();
    if let Probe::Http { status, body, .. } = &check.probe {
        if status.start() == status.end() {
            out.push_str(&format!(", status {}", status.start()));
        } else {
            out.push_str(&format!(", status {}-{}", status.start(), status.end()));
        }
        if let Some(body) = body {
            out.push_str(&format!(", body contains {body:?}"));
        }
    }
    out.push_str(&format!(
        ", every {} (timeout {}), rise {}, fall {}",
        format_duration(check.interval),
        format_duration(check.timeout),
        check.rise,
        check.fall
    ));
    if check.fatal {
        out.push_str(", fatal");
    } else {
        out.push_str(&format!(", weight {}", check.weight));
    }
    match check.on {
        Scope::Both => out.push_str(", on both"),
        Scope::Active => out.push_str(&format!(
            ", on active (start grace {}, failure timeout {})",
            format_duration(check.start_grace),
            check.failure_timeout.map_or_else(
                || "never: until `failoverd clear`".to_string(),
                format_duration
            )
        )),
    }
    out
}

fn run(
    common: &Common,
    level: LevelFilter,
    socket: Option<PathBuf>,
    state_dir: Option<PathBuf>,
) -> ExitCode {
    // Colour only on a terminal: journald and log files want plain text. Lines go
    // out through a thread of their own, so a log reader that stops reading never
    // holds up the heartbeats; `_flush` writes what is left when `run` returns.
    let ansi = std::io::stderr().is_terminal();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(level)
        .with_ansi(ansi)
        .with_target(false);
    let _flush = match failoverd::daemon::stderr::Stderr::spawn(std::io::stderr()) {
        Ok((stderr, flush)) => {
            subscriber.with_writer(stderr).init();
            Some(flush)
        }
        Err(err) => {
            // Without a thread to spare, log straight to stderr as before.
            subscriber.with_writer(std::io::stderr).init();
            tracing::warn!("cannot start the log thread, logging directly: {err}");
            None
        }
    };
    let (mut config, me) = match load(common) {
        Ok(loaded) => loaded,
        Err(code) => return code,
    };
    let overrides = ControlOverrides { socket, state_dir };
    config.control = overrides.apply(config.control);
    // One thread is plenty: the work is a few packets per interval, and a single
    // thread keeps the timers of the heartbeat path free of cross-core wake-ups.
    let runtime = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(runtime) => runtime,
        Err(err) => {
            eprintln!("failoverd: cannot start the runtime: {err}");
            return ExitCode::from(EXIT_RUNTIME);
        }
    };
    let result = runtime.block_on(async move {
        let shutdown = async {
            let mut term =
                tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()).ok();
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                Some(()) = async { match term.as_mut() { Some(t) => t.recv().await, None => None } } => {}
            }
        };
        failoverd::daemon::run(config, common.config.clone(), me, overrides, shutdown).await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            error!("{err}");
            ExitCode::from(EXIT_RUNTIME)
        }
    }
}

/// `status`: one view, or with `watch` one view per interval until interrupted or
/// until the daemon goes away.
fn status(socket: &Path, json: bool, watch: Option<Duration>) -> ExitCode {
    let terminal = io::stdout().is_terminal();
    let colour = colour();
    let mut first = true;
    loop {
        let status = match fetch_status(socket, REQUEST_TIMEOUT) {
            Ok(status) => status,
            Err(err) => return client_failure(&err),
        };
        let view = if json {
            let mut text = serde_json::to_string_pretty(&status)
                .expect("a status always serialises: it holds no maps with non-string keys");
            text.push('\n');
            text
        } else {
            render_status(&status, colour, SystemTime::now())
        };
        let Some(interval) = watch else {
            if !print(&view) {
                return ExitCode::from(EXIT_RUNTIME);
            }
            return ExitCode::from(status_exit_code(&status));
        };
        // A terminal gets the view redrawn in place; a pipe or file gets every view,
        // a blank line between two.
        let text = match (terminal, first) {
            (true, _) => format!("\x1b[H\x1b[2J{view}"),
            (false, true) => view,
            (false, false) => format!("\n{view}"),
        };
        if !print(&text) {
            return ExitCode::from(EXIT_RUNTIME);
        }
        first = false;
        thread::sleep(interval);
    }
}

/// `takeover`, `standby`, `failback`, `maintenance`: send the command, then unless
/// told not to, wait until its outcome shows in the status.
fn operate(socket: &Path, command: Request, wait: &Wait) -> ExitCode {
    let what = match &command {
        Request::Maintenance { on: true } => "maintenance on".to_string(),
        Request::Maintenance { on: false } => "maintenance off".to_string(),
        other => other.name().to_string(),
    };
    // The status before the command lets the wait notice a daemon restart.
    let before = if wait.no_wait {
        None
    } else {
        match fetch_status(socket, REQUEST_TIMEOUT) {
            Ok(status) => Some(status),
            Err(err) => return client_failure(&err),
        }
    };
    if let Err(code) = send(socket, command.clone(), &what) {
        return code;
    }
    let Some(before) = before else {
        return ExitCode::SUCCESS;
    };
    match wait_for(&command, &before, socket, wait.timeout) {
        Ok(status) => {
            print(&format!("{}\n", outcome_summary(&command, &status)));
            ExitCode::SUCCESS
        }
        Err(sentence) => {
            eprintln!("failoverd: {sentence}");
            ExitCode::from(EXIT_FAILED)
        }
    }
}

/// `clear`: nothing to wait for; the election decides what follows.
fn clear(socket: &Path, check: String) -> ExitCode {
    match send(socket, Request::Clear { check }, "clear") {
        Ok(()) => ExitCode::SUCCESS,
        Err(code) => code,
    }
}

/// `reload`: nothing to wait for; the reply says what changed or what is wrong.
/// With `main_pid`, a daemon that does not answer on `socket` gets SIGHUP.
fn reload(socket: &Path, main_pid: Option<i32>, config: &Path) -> ExitCode {
    let reply = match (
        client::request(socket, Request::Reload, RELOAD_TIMEOUT),
        main_pid,
    ) {
        (Err(ClientError::NotRunning { .. }), Some(pid)) => return reload_by_signal(socket, pid),
        (reply, _) => reply,
    };
    let answered = reply.is_ok();
    let code = match answer(reply, "reload") {
        Ok(()) => ExitCode::SUCCESS,
        Err(code) => code,
    };
    if answered {
        say_which_file(socket, config);
    }
    code
}

/// The daemon reads the file it runs with, whatever `--config` names here (only
/// its socket): an operator who edited another file is told which one was read.
/// Said only of a file that exists here, compared as the file system resolves
/// both names.
fn say_which_file(socket: &Path, config: &Path) {
    let Ok(given) = std::fs::canonicalize(config) else {
        return;
    };
    let status = client::request(socket, Request::Status, REQUEST_TIMEOUT);
    let Some(status) = status.ok().and_then(|reply| reply.status) else {
        return;
    };
    let read = Path::new(&status.config);
    if status.config.is_empty() || std::fs::canonicalize(read).is_ok_and(|read| read == given) {
        return;
    }
    eprintln!(
        "failoverd: the daemon reads the file it runs with, {}, not {} (--config only says \
         where its control socket is)",
        status.config,
        config.display()
    );
}

/// The reload of a daemon that no longer listens where the file says: SIGHUP, and
/// exit 1 since nobody can say whether the file was taken.
fn reload_by_signal(socket: &Path, pid: i32) -> ExitCode {
    use nix::sys::signal::{Signal, kill};
    use nix::unistd::Pid;
    if !runs_failoverd(pid) {
        eprintln!(
            "failoverd: not running (no daemon at {}), and pid {pid} does not run failoverd: \
             no signal sent",
            socket.display()
        );
        return ExitCode::from(EXIT_NOT_RUNNING);
    }
    if let Err(err) = kill(Pid::from_raw(pid), Signal::SIGHUP) {
        eprintln!(
            "failoverd: not running (no daemon at {}), and SIGHUP to pid {pid} failed: {err}",
            socket.display()
        );
        return ExitCode::from(EXIT_NOT_RUNNING);
    }
    eprintln!(
        "failoverd: no daemon answers at {}, the control socket the file names (a [control] \
         socket changed in the file takes a restart, and a file that cannot be read names \
         the default one): sent SIGHUP to pid {pid} instead, which reloads without an \
         answer; its log says whether it took the file",
        socket.display()
    );
    ExitCode::from(EXIT_FAILED)
}

/// Whether process `pid` runs a program of this one's file name, so that a
/// mistyped `--main-pid` signals nothing else. A daemon whose file an upgrade
/// replaced still counts (its link reads "... (deleted)").
fn runs_failoverd(pid: i32) -> bool {
    let name = |link: &str| {
        let target = std::fs::read_link(link).ok()?;
        let target = target.to_string_lossy();
        let path = target.strip_suffix(" (deleted)").unwrap_or(&target);
        Path::new(path)
            .file_name()
            .map(std::ffi::OsStr::to_os_string)
    };
    match (name(&format!("/proc/{pid}/exe")), name("/proc/self/exe")) {
        (Some(theirs), Some(ours)) => theirs == ours,
        _ => false,
    }
}

/// Sends `command` and prints the daemon's answer: its message when accepted, one
/// line with the reason when refused.
fn send(socket: &Path, command: Request, what: &str) -> Result<(), ExitCode> {
    answer(client::request(socket, command, REQUEST_TIMEOUT), what)
}

/// Prints a daemon's answer to `what`: its message when accepted, one line with the
/// reason when refused.
fn answer(
    reply: Result<failoverd::control::Response, ClientError>,
    what: &str,
) -> Result<(), ExitCode> {
    let reply = reply.map_err(|e| client_failure(&e))?;
    if !reply.ok {
        let reason = reply.error.as_deref().unwrap_or("no reason given");
        eprintln!("failoverd: {what} refused: {reason}");
        return Err(ExitCode::from(EXIT_FAILED));
    }
    if let Some(message) = &reply.message {
        print(&format!("{message}\n"));
    }
    Ok(())
}

/// `events`: the kept events, then with `follow` new ones as they come. The daemon
/// answers a page at a time; a reply that says more follow is followed at once by a
/// request for the events after its last one, so that every kept event is printed,
/// whatever `[events] keep` is, while no reply grows with it.
fn events(socket: &Path, follow: bool, json: bool) -> ExitCode {
    let colour = colour();
    let mut after = None;
    loop {
        let reply = match client::request(socket, Request::Events { after }, REQUEST_TIMEOUT) {
            Ok(reply) => reply,
            Err(err) => return client_failure(&err),
        };
        if !reply.ok {
            let reason = reply.error.as_deref().unwrap_or("no reason given");
            eprintln!("failoverd: events refused: {reason}");
            return ExitCode::from(EXIT_FAILED);
        }
        let Some(events) = reply.events else {
            let err = ClientError::BadReply {
                socket: socket.to_path_buf(),
                reason: "the reply holds no events".to_string(),
            };
            return client_failure(&err);
        };
        // A daemon that sends back what was already printed does not get it printed twice.
        let fresh: Vec<_> = events
            .iter()
            .filter(|e| after.is_none_or(|a| e.seq > a))
            .collect();
        let mut text = String::new();
        for event in &fresh {
            if json {
                text.push_str(
                    &serde_json::to_string(event)
                        .expect("an event always serialises: it holds plain fields"),
                );
            } else {
                text.push_str(&render_event(event, colour));
            }
            text.push('\n');
        }
        after = fresh.iter().map(|e| e.seq).max().or(after);
        if !print(&text) {
            return ExitCode::from(EXIT_RUNTIME);
        }
        // A page that brought nothing new cannot be paged past: wait as for new events.
        if reply.more && !fresh.is_empty() {
            continue;
        }
        if !follow {
            return ExitCode::SUCCESS;
        }
        thread::sleep(FOLLOW_INTERVAL);
    }
}

/// One line for a failed exchange with the daemon; exit 3 when none runs.
fn client_failure(err: &ClientError) -> ExitCode {
    if let ClientError::NotRunning { socket } = err {
        eprintln!("failoverd: not running (no daemon at {})", socket.display());
        return ExitCode::from(EXIT_NOT_RUNNING);
    }
    eprintln!("failoverd: {err}");
    ExitCode::from(EXIT_FAILED)
}

/// Colour for people at a terminal, unless they set NO_COLOR.
fn colour() -> bool {
    io::stdout().is_terminal() && std::env::var_os("NO_COLOR").is_none()
}

/// Writes to stdout; false when it is gone (a closed pipe), which ends the command
/// quietly instead of panicking as `print!` would.
fn print(text: &str) -> bool {
    let mut out = io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .is_ok()
}

/// `--interval`: a duration, at least 100 ms so that a watch cannot busy the daemon.
fn interval(text: &str) -> Result<Duration, String> {
    let d = parse_duration(text)?;
    if d < Duration::from_millis(100) {
        return Err(format!(
            "{} is too short: at least 100ms",
            format_duration(d)
        ));
    }
    Ok(d)
}

/// Bad arguments as every other failure is told: one `failoverd: ` line, exit 2,
/// with clap's message, its tips, and the usage of the command at hand. Help and
/// version are no failures: clap prints them as usual.
fn argument_error(err: clap::Error) -> ExitCode {
    use clap::error::ErrorKind;
    if matches!(
        err.kind(),
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion
    ) {
        err.exit();
    }
    let message = match err.kind() {
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand | ErrorKind::MissingSubcommand => {
            "no command given".to_string()
        }
        // clap's text without "error: ", its usage and its pointer to --help: the
        // first paragraph, a list in it (missing arguments, possible values) joined
        // into the sentence, then the tips.
        _ => {
            let text = err.render().to_string();
            let mut parts = Vec::new();
            for (i, paragraph) in text.split("\n\n").enumerate() {
                let mut lines = paragraph.lines().map(str::trim).filter(|l| !l.is_empty());
                if i > 0 {
                    parts.extend(lines.filter(|l| l.starts_with("tip: ")).map(String::from));
                    continue;
                }
                let first = lines.next().unwrap_or_default();
                let mut sentence = first.strip_prefix("error: ").unwrap_or(first).to_string();
                for line in lines {
                    match line.strip_prefix('[').and_then(|l| l.strip_suffix(']')) {
                        Some(list) => sentence.push_str(&format!("; {list}")),
                        None => sentence.push_str(&format!(" {line}")),
                    }
                }
                parts.push(sentence);
            }
            parts.join("; ")
        }
    };
    eprintln!("failoverd: {message} (usage: {})", usage_of_the_arguments());
    ExitCode::from(EXIT_CONFIG)
}

/// The usage of the deepest subcommand the arguments name, each option that may be
/// left out in brackets: clap's own usage line after an error writes an option that
/// was given, `--config <CONFIG>`, as if it were required.
fn usage_of_the_arguments() -> String {
    let mut command = Cli::command();
    command.build();
    let mut words = vec![command.get_name().to_string()];
    let mut at = &command;
    for arg in std::env::args_os().skip(1) {
        // `help nosuch` is about the commands of failoverd itself.
        let sub = arg.to_str().filter(|a| *a != "help");
        if let Some(sub) = sub.and_then(|arg| at.find_subcommand(arg)) {
            words.push(sub.get_name().to_string());
            at = sub;
        }
    }
    if at.has_subcommands() {
        let path = words.join(" ");
        return format!("{path} <COMMAND>; {path} --help lists the commands");
    }
    let (positional, options): (Vec<&clap::Arg>, Vec<&clap::Arg>) = at
        .get_arguments()
        .filter(|a| !a.is_hide_set() && !matches!(a.get_id().as_str(), "help" | "version"))
        .partition(|a| a.is_positional());
    for arg in options.into_iter().chain(positional) {
        let value = arg
            .get_value_names()
            .and_then(|names| names.first())
            .map_or_else(|| arg.get_id().as_str().to_uppercase(), |n| n.to_string());
        let word = match arg.get_long() {
            Some(long) if arg.get_action().takes_values() => format!("--{long} <{value}>"),
            Some(long) => format!("--{long}"),
            None if arg.is_required_set() => format!("<{value}>"),
            None => value,
        };
        words.push(if arg.is_required_set() {
            word
        } else {
            format!("[{word}]")
        });
    }
    words.join(" ")
}

/// `failoverd generate-files`: writes the manual pages and shell completions from the
/// definitions of `Cli` (scripts/generate.sh runs it). Kept out of `Cli`, so that
/// neither `--help` nor the pages and completions it writes list it. Only in debug
/// builds: the release binary, which the package ships, then carries no code it
/// never runs (clap_mangen and clap_complete made it 280 KB, 5%, larger).
#[cfg(debug_assertions)]
mod generate {
    use std::fs;
    use std::path::PathBuf;
    use std::process::ExitCode;

    use clap::{CommandFactory, Parser};

    use super::{Cli, EXIT_RUNTIME};

    /// The arguments of `failoverd generate-files`.
    #[derive(Parser)]
    #[command(
        name = "failoverd generate-files",
        bin_name = "failoverd generate-files",
        about = "Write the manual pages and shell completions (for packaging)"
    )]
    struct GenerateFiles {
        /// The configuration reference (Markdown), source of failoverd.toml(5).
        #[arg(long)]
        reference: PathBuf,
        /// The directory that receives man/ and completions/.
        dir: PathBuf,
    }

    pub fn run() -> ExitCode {
        match write_files(&GenerateFiles::parse_from(std::env::args_os().skip(1))) {
            Ok(()) => ExitCode::SUCCESS,
            Err(message) => {
                eprintln!("failoverd: generate-files: {message}");
                ExitCode::from(EXIT_RUNTIME)
            }
        }
    }

    /// One page in section 8 for failoverd and each of its commands, failoverd.toml(5)
    /// from the reference, and completions for bash, zsh and fish.
    fn write_files(args: &GenerateFiles) -> Result<(), String> {
        // The one input that can be wrong, read before anything is written.
        let reference = &args.reference;
        let markdown = fs::read_to_string(reference)
            .map_err(|e| format!("read {}: {e}", reference.display()))?;
        let configuration_page =
            failoverd::manual::configuration_page(&markdown, env!("CARGO_PKG_VERSION"))
                .map_err(|e| format!("{}: {e}", reference.display()))?;

        let man = args.dir.join("man");
        let completions = args.dir.join("completions");
        for dir in [&man, &completions] {
            fs::create_dir_all(dir).map_err(|e| format!("create {}: {e}", dir.display()))?;
        }
        let write = |path: PathBuf, contents: &[u8]| {
            fs::write(&path, contents).map_err(|e| format!("write {}: {e}", path.display()))
        };

        let mut cli = Cli::command().disable_help_subcommand(true);
        cli.build();
        // failoverd, then its commands, then theirs (import heartbeat), and so on.
        let mut commands = vec![cli.clone()];
        let mut next = 0;
        while let Some(command) = commands.get(next) {
            let nested: Vec<_> = command
                .get_subcommands()
                .filter(|sub| !sub.is_hide_set())
                .cloned()
                .collect();
            commands.extend(nested);
            next += 1;
        }
        for command in commands {
            let see_also = if command.get_name() == cli.get_name() {
                ".SH \"SEE ALSO\"\n\\fBfailoverd.toml\\fP(5)\n"
            } else {
                ".SH \"SEE ALSO\"\n\\fBfailoverd\\fP(8), \\fBfailoverd.toml\\fP(5)\n"
            };
            let page = clap_mangen::Man::new(command)
                .section("8")
                .source(concat!("failoverd ", env!("CARGO_PKG_VERSION")));
            let mut roff = Vec::new();
            page.render(&mut roff)
                .map_err(|e| format!("render {}: {e}", page.get_filename()))?;
            roff.extend_from_slice(see_also.as_bytes());
            write(man.join(page.get_filename()), &roff)?;
        }

        write(man.join("failoverd.toml.5"), configuration_page.as_bytes())?;

        let shells = [
            (clap_complete::Shell::Bash, "failoverd.bash"),
            (clap_complete::Shell::Zsh, "_failoverd"),
            (clap_complete::Shell::Fish, "failoverd.fish"),
        ];
        for (shell, file) in shells {
            let mut script = Vec::new();
            clap_complete::generate(shell, &mut cli.clone(), "failoverd", &mut script);
            write(completions.join(file), &script)?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use std::fs;
    use std::net::IpAddr;
    use std::os::unix::fs::PermissionsExt;

    use super::sample::Sample;
    use super::*;

    /// The sample with a `[[check]]` of each scope and the new `[hooks]` keys, parsed
    /// in a fresh directory that holds its key file and a check program.
    fn config_with_checks(dir: &Path) -> Config {
        fs::create_dir_all(dir).unwrap();
        let key = dir.join("authkey");
        fs::write(&key, "0123456789abcdef0123456789abcdef\n").unwrap();
        fs::set_permissions(&key, fs::Permissions::from_mode(0o600)).unwrap();
        let probe = dir.join("probe");
        fs::write(&probe, "#!/bin/sh\n").unwrap();
        fs::set_permissions(&probe, fs::Permissions::from_mode(0o755)).unwrap();
        let text = Sample::new()
            .set("cluster.key_file", "authkey")
            .remove("hooks")
            .append(
                r#"[hooks]
standby = "/bin/true"
start_failure = "ignore"

[[check]]
name = "web"
kind = "http"
url = "http://127.0.0.1:8080/health"
expect_status = 200
expect_body = "ok"
weight = 3

[[check]]
name = "db"
kind = "exec"
command = ["probe", "-q", "a b"]
interval = "5s"
timeout = "2s"
fall = 3
fatal = true
on = "active"
failure_timeout = "never"

[[check]]
name = "nic"
kind = "link"
interface = "eth1"
on = "active"
start_grace = "30s"
failure_timeout = "10s"
"#,
            )
            .to_string();
        Config::parse(&text, dir).unwrap_or_else(|problems| panic!("{problems:#?}"))
    }

    #[test]
    fn check_lists_every_check_this_node_runs_and_the_new_hooks() {
        let dir = std::env::temp_dir().join(format!("failoverd-main-{}", std::process::id()));
        let config = config_with_checks(&dir);
        let text = describe(&config, 1, Path::new("failoverd.toml"), None);
        let _ = fs::remove_dir_all(&dir);
        let probe = dir.join("probe");
        let expected = [
            "checks:".to_string(),
            "  gateway-198.18.0.1: ping 198.18.0.1, every 1s (timeout 1s), rise 1, fall 3, \
             weight 1, on both"
                .to_string(),
            "  link-enp1s0: link enp1s0, every 1s (timeout 1s), rise 1, fall 1, weight 1, on both"
                .to_string(),
            "  web: http http://127.0.0.1:8080/health, status 200, body contains \"ok\", every \
             1s (timeout 1s), rise 2, fall 2, weight 3, on both"
                .to_string(),
            format!(
                "  db: exec {} -q \"a b\", every 5s (timeout 2s), rise 2, fall 3, fatal, on \
                 active (start grace 10s, failure timeout never: until `failoverd clear`)",
                probe.display()
            ),
            "  nic: link eth1, every 1s (timeout 1s), rise 2, fall 2, weight 1, on active \
             (start grace 30s, failure timeout 10s)"
                .to_string(),
        ];
        let lines: Vec<&str> = text.lines().collect();
        let at = lines.iter().position(|l| *l == "checks:").expect(&text);
        assert_eq!(lines[at..at + expected.len()], expected, "{text}");
        assert!(
            text.contains("hook standby: /bin/true (timeout 60s)\n"),
            "{text}"
        );
        assert!(text.contains("\nstart failure: ignore"), "{text}");
    }

    #[test]
    fn check_says_when_there_is_nothing_to_check() {
        let dir = std::env::temp_dir().join(format!("failoverd-main-none-{}", std::process::id()));
        let mut config = config_with_checks(&dir);
        let _ = fs::remove_dir_all(&dir);
        config.checks.clear();
        config.health.gateways.clear();
        config.health.link_state = false;
        let text = describe(&config, 0, Path::new("failoverd.toml"), None);
        assert!(text.contains("\nchecks: none\n"), "{text}");
        assert!(text.contains("start failure: ignore"), "{text}");
    }

    #[test]
    fn check_says_a_hooks_user_of_uid_0_keeps_the_capabilities() {
        let dir = std::env::temp_dir().join(format!("failoverd-main-root-{}", std::process::id()));
        let mut config = config_with_checks(&dir);
        let _ = fs::remove_dir_all(&dir);
        let run_as = |user: &str, uid| failoverd::config::RunAs {
            user: user.to_string(),
            uid,
            gid: uid,
            groups: vec![uid],
            home: PathBuf::from("/"),
        };
        config.hooks.run_as = Some(run_as("root", 0));
        let text = describe(&config, 0, Path::new("failoverd.toml"), None);
        assert!(
            text.contains("run as root (uid 0, gid 0), with failoverd's capabilities"),
            "{text}"
        );
        config.hooks.run_as = Some(run_as("hooks", 990));
        let text = describe(&config, 0, Path::new("failoverd.toml"), None);
        assert!(
            text.contains("run as hooks (uid 990, gid 990), without capabilities"),
            "{text}"
        );
    }

    fn interface(name: &str, addresses: &[&str]) -> Interface {
        Interface {
            name: name.to_owned(),
            addresses: addresses
                .iter()
                .map(|a| {
                    let (address, len) = a.split_once('/').unwrap();
                    (address.parse().unwrap(), len.parse().unwrap())
                })
                .collect(),
        }
    }

    #[test]
    fn check_warns_of_a_heartbeat_address_not_on_this_host() {
        let dir = std::env::temp_dir().join(format!("failoverd-main-addr-{}", std::process::id()));
        let config = config_with_checks(&dir);
        let _ = fs::remove_dir_all(&dir);
        let crossover: IpAddr = "198.19.0.1".parse().unwrap();
        let lan: IpAddr = "198.18.0.11".parse().unwrap();
        assert_eq!(config.nodes[0].addresses, [Some(crossover), Some(lan)]);
        let path = Path::new("failoverd.toml");
        let eth0 = interface("eth0", &["198.18.0.11/24"]);
        let text = describe(&config, 0, path, Some(std::slice::from_ref(&eth0)));
        let warnings: Vec<&str> = text.lines().filter(|l| l.starts_with("warning:")).collect();
        assert_eq!(warnings.len(), 1, "{text}");
        assert!(
            warnings[0].starts_with(
                "warning: node[0].addresses.crossover: 198.19.0.1 is not configured on this host"
            ),
            "{text}"
        );
        let eth1 = interface("eth1", &["198.19.0.1/30", "fe80::1/64"]);
        let text = describe(&config, 0, path, Some(&[eth0, eth1]));
        assert!(!text.contains("warning:"), "{text}");
        let text = describe(&config, 0, path, None);
        assert!(!text.contains("warning:"), "{text}");
    }

    /// A VIP's interface that the host lacks (a name from another node, a typo) or
    /// that has no address of the VIP's subnet is told of, with its fix.
    #[test]
    fn check_warns_of_a_vip_whose_interface_is_missing_or_on_another_subnet() {
        let dir = std::env::temp_dir().join(format!("failoverd-main-vip-{}", std::process::id()));
        let config = config_with_checks(&dir);
        let _ = fs::remove_dir_all(&dir);
        let path = Path::new("failoverd.toml");
        let xo = interface("eth1", &["198.19.0.1/30"]);
        let warnings = |local: &[Interface]| {
            let text = describe(&config, 0, path, Some(local));
            text.lines()
                .filter(|l| l.starts_with("warning:"))
                .map(str::to_owned)
                .collect::<Vec<_>>()
        };
        let vip = &config.vips[0];
        assert_eq!(vip.to_string(), "198.18.0.10/24");
        assert_eq!(
            warnings(&[xo.clone(), interface("enp1s0", &["198.18.0.11/24"])]),
            [
                "warning: vip[0]: interface eth0 does not exist on this host: 198.18.0.10/24 \
                 cannot be added here (correct vip[0].interface, or name this node's \
                 interface in node[0].interfaces)"
            ]
        );
        assert_eq!(
            warnings(&[
                xo.clone(),
                interface("eth0", &["198.18.0.11/24", "10.0.0.11/8"])
            ]),
            Vec::<String>::new()
        );
        assert_eq!(
            warnings(&[
                xo.clone(),
                interface("eth0", &["198.18.1.11/24", "198.18.0.11/32"])
            ]),
            [
                "warning: vip[0]: 198.18.0.10/24 is in no subnet of eth0 (eth0 has \
                 198.18.1.11/24, 198.18.0.11/32): clients on that link reach it only through \
                 a route to it (correct the VIP, or add an address of its subnet to eth0)"
            ]
        );
        let elsewhere = interface("eth9", &["198.18.0.11/24"]);
        let no_v4 = warnings(&[xo, elsewhere, interface("eth0", &["fe80::1/64"])]);
        assert_eq!(no_v4.len(), 1, "{no_v4:?}");
        assert!(no_v4[0].contains("(eth0 has no IPv4 address)"), "{no_v4:?}");
    }
}
