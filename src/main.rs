//! Command line: parses arguments, sets up logging, and turns errors into one-line
//! messages and exit codes (0 fine, 1 runtime failure, 2 invalid configuration).

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use failoverd::config::{Config, ConfigError, format_duration};
use tracing::error;
use tracing_subscriber::filter::LevelFilter;

const EXIT_RUNTIME: u8 = 1;
const EXIT_CONFIG: u8 = 2;
const DEFAULT_CONFIG: &str = "/etc/failoverd/failoverd.toml";

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
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Check { common } => check(&common),
        Command::Run {
            common,
            log_level,
            socket,
            state_dir,
        } => run(&common, log_level, socket, state_dir),
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
    print!("{}", describe(&config, me, &common.config));
    ExitCode::SUCCESS
}

/// What `check` prints: this node's view of the cluster.
fn describe(config: &Config, me: usize, path: &Path) -> String {
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
        "this node: {} (priority {})",
        node.name, node.priority
    ));
    for (link, address) in config.links.iter().zip(&node.addresses) {
        line(format!("  listens on {link}: {address}:{}", c.port));
    }
    for (i, peer) in config.nodes.iter().enumerate() {
        if i == me {
            continue;
        }
        line(format!("peer: {} (priority {})", peer.name, peer.priority));
        for (link, address) in config.links.iter().zip(&peer.addresses) {
            line(format!("  heartbeats on {link} to {address}:{}", c.port));
        }
    }
    for vip in &config.vips {
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
    line(match c.failback {
        failoverd::config::Failback::Auto => format!(
            "failback: auto, after {} of health",
            format_duration(c.failback_delay)
        ),
        failoverd::config::Failback::Manual => "failback: manual".to_string(),
    });
    let h = &config.health;
    if h.gateways.is_empty() {
        line("health: no gateway checks".to_string());
    } else {
        let gateways: Vec<String> = h.gateways.iter().map(ToString::to_string).collect();
        line(format!(
            "health: ping {} every {} (timeout {}), lost after {} failures",
            gateways.join(", "),
            format_duration(h.interval),
            format_duration(h.timeout),
            h.failures
        ));
    }
    let hooks = &config.hooks;
    for (name, path) in [
        ("start", &hooks.start),
        ("stop", &hooks.stop),
        ("fault", &hooks.fault),
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
    let a = &config.announce;
    line(format!(
        "announce: {} rounds {} apart, refresh {}",
        a.count,
        format_duration(a.interval),
        a.refresh.map_or("off".to_string(), format_duration)
    ));
    out
}

fn run(
    common: &Common,
    level: LevelFilter,
    socket: Option<PathBuf>,
    state_dir: Option<PathBuf>,
) -> ExitCode {
    tracing_subscriber::fmt()
        .with_max_level(level)
        .with_writer(std::io::stderr)
        .with_target(false)
        .init();
    let (mut config, me) = match load(common) {
        Ok(loaded) => loaded,
        Err(code) => return code,
    };
    if let Some(socket) = socket {
        config.control.socket = socket;
    }
    if let Some(dir) = state_dir {
        config.control.state_dir = dir;
    }
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
        failoverd::daemon::run(config, common.config.clone(), me, shutdown).await
    });
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => {
            error!("{err}");
            ExitCode::from(EXIT_RUNTIME)
        }
    }
}
