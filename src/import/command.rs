//! `failoverd import`: the arguments, reading the input files, and where the result
//! goes: stdout (the configuration alone) or an output directory (`--out`), with
//! every note on stderr. Exit 0 when translated (notes or not), 2 when the input
//! cannot be read or translated, 1 when the output cannot be written.

use std::fs;
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use super::{
    AddressFlag, CONFIG_FILE, ImportError, KEY_FILE, KeySource, Options, Translation, heartbeat,
    keepalived, output, parse_priority, placeholders,
};

const EXIT_OUTPUT: u8 = 1;
const EXIT_INPUT: u8 = 2;

#[derive(clap::Args)]
pub struct ImportArgs {
    #[command(subcommand)]
    pub from: From,
}

/// The configuration to translate.
#[derive(clap::Subcommand)]
pub enum From {
    /// Heartbeat v1: ha.cf, haresources and authkeys in DIR (usually /etc/ha.d).
    Heartbeat {
        /// The directory holding ha.cf, haresources and authkeys.
        dir: PathBuf,
        /// Completes a VIP that haresources gives without prefix or interface, e.g.
        /// 192.168.0.200/24/eth0 (repeatable).
        #[arg(long = "vip", value_name = "ADDRESS/PREFIX/INTERFACE")]
        vips: Vec<String>,
        /// The node this ha.cf is from: a single ucast address in it is then taken as
        /// the other node's.
        #[arg(long, value_name = "NAME")]
        this_node: Option<String>,
        #[command(flatten)]
        common: Common,
    },
    /// keepalived: one vrrp_instance of FILE (usually /etc/keepalived/keepalived.conf).
    Keepalived {
        /// The keepalived.conf to read.
        file: PathBuf,
        /// The vrrp_instance to translate [default: the first].
        #[arg(long, value_name = "NAME")]
        instance: Option<String>,
        /// This node's name (the host name of the node FILE is from) [default: node1].
        #[arg(long, value_name = "NAME")]
        this_node: Option<String>,
        /// A peer's name, in unicast_peer order (repeatable) [default: node2, ...].
        #[arg(long = "peer", value_name = "NAME")]
        peers: Vec<String>,
        #[command(flatten)]
        common: Common,
    },
}

#[derive(clap::Args)]
pub struct Common {
    /// Write failoverd.toml, the key and the hooks into DIR (created if missing)
    /// instead of printing the configuration.
    #[arg(long, value_name = "DIR")]
    out: Option<PathBuf>,
    /// Overwrite files that exist in the --out directory.
    #[arg(long, requires = "out")]
    force: bool,
    /// The cluster name [default: the node names (Heartbeat), the instance name
    /// (keepalived)].
    #[arg(long, value_name = "NAME")]
    cluster: Option<String>,
    /// A node's address on a link (a link is named after its interface), for what
    /// the input does not tell (repeatable).
    #[arg(long = "address", value_name = "NODE[:LINK]=ADDRESS")]
    addresses: Vec<AddressFlag>,
    /// A node's priority, for what the input does not tell (repeatable).
    #[arg(long = "priority", value_name = "NODE=N", value_parser = parse_priority)]
    priorities: Vec<(String, u16)>,
    /// Name this existing key file in the configuration instead of writing one,
    /// e.g. the one the first node's import wrote, copied over.
    #[arg(long, value_name = "PATH")]
    key_file: Option<String>,
}

impl Common {
    fn options(&self) -> Options {
        Options {
            cluster: self.cluster.clone(),
            addresses: self.addresses.clone(),
            priorities: self.priorities.clone(),
            key_file: self.key_file.clone(),
            ..Options::default()
        }
    }
}

/// Runs `failoverd import`.
pub fn run(args: ImportArgs) -> ExitCode {
    let (result, common) = match args.from {
        From::Heartbeat {
            dir,
            vips,
            this_node,
            common,
        } => {
            let options = Options {
                vips,
                this_node,
                ..common.options()
            };
            (heartbeat_files(&dir, &options), common)
        }
        From::Keepalived {
            file,
            instance,
            this_node,
            peers,
            common,
        } => {
            let options = Options {
                instance,
                this_node,
                peers,
                ..common.options()
            };
            let result = read(&file)
                .and_then(|text| keepalived::translate(&text, &options).map_err(|e| e.to_string()));
            (result, common)
        }
    };
    let translation = match result {
        Ok(translation) => translation,
        Err(message) => {
            eprintln!("failoverd: import: {message}");
            return ExitCode::from(EXIT_INPUT);
        }
    };
    finish(&translation, common.out.as_deref(), common.force)
}

fn read(path: &Path) -> Result<String, String> {
    fs::read_to_string(path).map_err(|e| format!("cannot read {}: {e}", path.display()))
}

fn heartbeat_files(dir: &Path, options: &Options) -> Result<Translation, String> {
    let optional = |name: &str| -> Result<Option<String>, String> {
        let path = dir.join(name);
        match fs::read_to_string(&path) {
            Ok(text) => Ok(Some(text)),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(format!("cannot read {}: {e}", path.display())),
        }
    };
    let ha_cf = read(&dir.join("ha.cf"))?;
    let haresources = optional("haresources")?;
    let authkeys = optional("authkeys")?;
    let inputs = heartbeat::Inputs {
        ha_cf: &ha_cf,
        haresources: haresources.as_deref(),
        authkeys: authkeys.as_deref(),
    };
    heartbeat::translate(&inputs, options).map_err(|e: ImportError| e.to_string())
}

/// Writes or prints the result, then every note on stderr, and what is left to do.
fn finish(t: &Translation, out: Option<&Path>, force: bool) -> ExitCode {
    let mut notes: Vec<String> = t.notes.iter().map(ToString::to_string).collect();
    match out {
        Some(dir) => match output::write(dir, t, force) {
            Ok(written) => {
                for path in written {
                    notes.push(format!("wrote {}", path.display()));
                }
                if t.key == KeySource::Generate {
                    notes.push(format!(
                        "{}: a new random key: copy this same file to every node (mode 0600)",
                        dir.join(KEY_FILE).display()
                    ));
                }
            }
            Err(err) => {
                eprintln!("failoverd: import: {err}");
                return ExitCode::from(EXIT_OUTPUT);
            }
        },
        None => {
            if !print(&t.config) {
                return ExitCode::from(EXIT_OUTPUT);
            }
            if t.key != KeySource::External || !t.hooks.is_empty() {
                notes.push(
                    "only the configuration was printed: pass --out DIR to write the key \
                     file and the hooks too"
                        .to_string(),
                );
            }
        }
    }
    let missing = placeholders(&t.config);
    if missing > 0 {
        notes.push(format!(
            "{missing} value(s) in {CONFIG_FILE} start with \"FILL-IN\": replace them (or \
             import again with the flags they name); `failoverd check` refuses them until then"
        ));
    }
    let mut err = io::stderr().lock();
    for note in notes {
        let _ = writeln!(err, "failoverd: import: {note}");
    }
    ExitCode::SUCCESS
}

/// Writes to stdout; false when it is gone.
fn print(text: &str) -> bool {
    let mut out = io::stdout().lock();
    out.write_all(text.as_bytes())
        .and_then(|()| out.flush())
        .is_ok()
}
