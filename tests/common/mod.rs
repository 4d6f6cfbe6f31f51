//! The end-to-end test lab: a small network of Linux network namespaces that stands in
//! for two servers, their gateway and a client, built fresh for each test.
//!
//! ```text
//!               <p>-lan: bridge br0 (ports gw, cl, n1, n2)
//!        ┌──────────────┬──────────┴────────┬──────────────────┐
//!   <p>-gw eth0     <p>-cl eth0        <p>-n1 eth0        <p>-n2 eth0
//!   198.18.0.1/24   198.18.0.100/24    198.18.0.11/24     198.18.0.12/24
//!   (gateway)       (client)           xo 198.19.0.1/30 ─ xo 198.19.0.2/30
//! ```
//!
//! The lab owns what it creates and nothing else: its namespaces (names unique to this
//! process and lab), the processes it spawned, and a temporary directory. Dropping the
//! lab, also while a test panics, kills those processes by PID and deletes exactly
//! those namespaces. It never adds an address, route or link to the host's own
//! namespace, and nothing in it is connected to the host's network.
//!
//! Hosts are named "lan", "gw", "cl", "n1" and "n2". `Lab::add_lan_host` adds more
//! hosts on the bridge alone (no crossover), such as a third node: `n3` at `N3_LAN`,
//! a witness in tests/witness.rs.
//!
//! Built on it: `cluster` (failoverd on the lab: its configuration, rendered by
//! `sample`, the daemons and the client commands), `vipwatch` (where the VIP is, from
//! the kernels' own notifications, in order) and `crossing` (`Cluster::across`, the
//! check of what the client and the kernels see across an event).

// Each test crate uses a different part of the lab.
#![allow(dead_code)]

pub mod cluster;
pub mod crossing;
pub mod sample;
pub mod vipwatch;

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::Read;
use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

use nix::sys::signal::{self, Signal};
use nix::sys::wait::{WaitPidFlag, WaitStatus, waitpid};
use nix::unistd::Pid;
use serde::Deserialize;

/// The hosts of the lab, in the order they are built.
pub const HOSTS: [&str; 5] = ["lan", "gw", "cl", "n1", "n2"];
/// The virtual IP that failoverd moves between the nodes.
pub const VIP: &str = "198.18.0.10";
pub const GATEWAY: &str = "198.18.0.1";
pub const CLIENT: &str = "198.18.0.100";
pub const N1_LAN: &str = "198.18.0.11";
pub const N2_LAN: &str = "198.18.0.12";
pub const N1_XO: &str = "198.19.0.1";
pub const N2_XO: &str = "198.19.0.2";
/// The LAN address tests give a third host added with `Lab::add_lan_host`.
pub const N3_LAN: &str = "198.18.0.13";
/// The UDP port `Lab::serve` listens on.
pub const PROBE_PORT: u16 = 9000;
/// The TCP port `Lab::serve_http` listens on.
pub const HTTP_PORT: u16 = 8080;

/// Hosts attached to the LAN bridge, with their eth0 address.
const LAN_HOSTS: [(&str, &str); 4] = [
    ("gw", "198.18.0.1/24"),
    ("cl", "198.18.0.100/24"),
    ("n1", "198.18.0.11/24"),
    ("n2", "198.18.0.12/24"),
];

/// Labs made by this process so far; with the PID it makes namespace names unique.
static LABS: AtomicU32 = AtomicU32::new(0);

/// A process the lab started, remembered so that Drop can stop it.
struct Spawned {
    pid: u32,
    log: PathBuf,
}

/// A lab network of namespaces; see the module docs for the layout.
pub struct Lab {
    prefix: String,
    tmpdir: PathBuf,
    /// Namespaces created so far, so a half-built lab is cleaned up too.
    namespaces: Vec<String>,
    /// Hosts added by `add_lan_host`, after `HOSTS`.
    extra_hosts: Vec<String>,
    spawned: Mutex<Vec<Spawned>>,
    logs: AtomicU32,
}

impl Lab {
    /// Builds the whole topology. Panics with a clear message when not run as root or
    /// when `ip` (iproute2) is missing, and when any step fails.
    pub fn new() -> Lab {
        assert!(
            nix::unistd::geteuid().is_root(),
            "the end-to-end lab builds network namespaces and must run as root \
             (run scripts/test.sh as root)"
        );
        match Command::new("ip").arg("-V").output() {
            Ok(output) if output.status.success() => {}
            _ => panic!("the lab needs the `ip` command from iproute2 (apt-get install iproute2)"),
        }
        let prefix = loop {
            let n = LABS.fetch_add(1, Ordering::Relaxed);
            let prefix = format!("fo{}-{n}", std::process::id());
            // A namespace left behind by a killed run with the same PID would make
            // `ip netns add` fail; pass over such names instead of failing.
            if HOSTS.iter().all(|h| {
                !Path::new("/run/netns")
                    .join(format!("{prefix}-{h}"))
                    .exists()
            }) {
                break prefix;
            }
        };
        let tmpdir = std::env::temp_dir().join(format!("failoverd-lab-{prefix}"));
        let _ = fs::remove_dir_all(&tmpdir);
        fs::DirBuilder::new()
            .mode(0o700)
            .create(&tmpdir)
            .unwrap_or_else(|e| panic!("create {}: {e}", tmpdir.display()));
        // The lab exists from here on, so a failing step below still cleans up.
        let mut lab = Lab {
            prefix,
            tmpdir,
            namespaces: Vec::new(),
            extra_hosts: Vec::new(),
            spawned: Mutex::new(Vec::new()),
            logs: AtomicU32::new(0),
        };
        lab.build();
        lab
    }

    /// The namespace name of `host` ("lan", "gw", "cl", "n1", "n2", or one added with
    /// `add_lan_host`).
    pub fn ns(&self, host: &str) -> String {
        assert!(
            HOSTS.contains(&host) || self.extra_hosts.iter().any(|h| h == host),
            "unknown lab host {host:?}; hosts are {HOSTS:?} and {:?}",
            self.extra_hosts
        );
        format!("{}-{host}", self.prefix)
    }

    /// All namespaces of this lab.
    pub fn namespaces(&self) -> Vec<String> {
        HOSTS
            .iter()
            .copied()
            .chain(self.extra_hosts.iter().map(String::as_str))
            .map(|h| self.ns(h))
            .collect()
    }

    /// Adds a host named `host` on the LAN bridge alone, as the other hosts are: its
    /// eth0 at `address`/24 (in 198.18.0.0/24 and not used by the lab), a default
    /// route via the gateway, no crossover. For a third node, such as a witness that
    /// reaches both nodes over the LAN only. Dropping the lab deletes it with the rest.
    pub fn add_lan_host(&mut self, host: &str, address: &str) {
        let taken = HOSTS.contains(&host) || self.extra_hosts.iter().any(|h| h == host);
        // The host's name is also its port's name on the bridge: an interface name.
        assert!(
            !taken && host != "br0" && !host.is_empty() && host.len() <= 15,
            "cannot add a lab host named {host:?}: taken, or not a short interface name"
        );
        let ip: std::net::Ipv4Addr = address
            .parse()
            .unwrap_or_else(|e| panic!("{address:?} is not an IPv4 address: {e}"));
        let lan = ip.octets()[..3] == [198, 18, 0] && !matches!(ip.octets()[3], 0 | 255);
        let used = [VIP, GATEWAY, CLIENT, N1_LAN, N2_LAN];
        assert!(
            lan && !used.contains(&address),
            "{address} is not a free address of the lab's LAN (198.18.0.0/24)"
        );
        let ns = format!("{}-{host}", self.prefix);
        assert!(
            !Path::new("/run/netns").join(&ns).exists(),
            "namespace {ns} exists already: left behind by a killed run? \
             (delete it with `ip netns del {ns}`)"
        );
        run_ip(&["netns", "add", &ns]);
        self.namespaces.push(ns);
        self.extra_hosts.push(host.to_owned());
        self.ip(host, &["link", "set", "lo", "up"]);
        let lan = self.ns("lan");
        // As in `build`: the pair is made in the host's namespace with the peer placed
        // straight into the LAN's, so neither end exists in the host's namespace.
        self.ip(
            host,
            &[
                "link", "add", "eth0", "type", "veth", "peer", "name", host, "netns", &lan,
            ],
        );
        self.ip("lan", &["link", "set", host, "master", "br0", "up"]);
        self.ip(
            host,
            &["addr", "add", &format!("{address}/24"), "dev", "eth0"],
        );
        self.ip(host, &["link", "set", "eth0", "up"]);
        self.ip(host, &["route", "add", "default", "via", GATEWAY]);
    }

    /// A directory for configs, keys and logs, private to this lab; removed on Drop
    /// unless the test failed.
    pub fn tmpdir(&self) -> &Path {
        &self.tmpdir
    }

    /// Runs `args` (program first) inside `host` and waits for it. Does not judge the
    /// exit status; see `exec_ok`.
    pub fn exec(&self, host: &str, args: &[&str]) -> Output {
        let ns = self.ns(host);
        Command::new("ip")
            .args(["netns", "exec", &ns])
            .args(args)
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("run ip netns exec {ns} {args:?}: {e}"))
    }

    /// Like `exec`, but panics unless the command succeeds; returns its stdout.
    pub fn exec_ok(&self, host: &str, args: &[&str]) -> String {
        let output = self.exec(host, args);
        assert!(
            output.status.success(),
            "in {host}: {args:?} failed ({}): {}",
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Starts `program` inside `host` with stdout and stderr going to a log file in
    /// `tmpdir()` (see `log_path`). If it still runs when the lab is dropped, the lab
    /// kills and reaps it; waiting on the `Child` after that fails.
    pub fn spawn(&self, host: &str, program: impl AsRef<Path>, args: &[&str]) -> Child {
        let program = program.as_ref();
        let ns = self.ns(host);
        let name = program
            .file_name()
            .map_or("prog".into(), |n| n.to_string_lossy());
        let n = self.logs.fetch_add(1, Ordering::Relaxed);
        let log = self.tmpdir.join(format!("{n:02}-{host}-{name}.log"));
        let out = File::create(&log).unwrap_or_else(|e| panic!("create {}: {e}", log.display()));
        let err = out.try_clone().expect("clone a file handle");
        // `ip netns exec` enters the namespace and then execs the program, so the child's
        // PID is the program's own.
        let child = Command::new("ip")
            .args(["netns", "exec", &ns])
            .arg(program)
            .args(args)
            .stdin(Stdio::null())
            .stdout(out)
            .stderr(err)
            .spawn()
            .unwrap_or_else(|e| panic!("spawn {} in {host}: {e}", program.display()));
        self.spawned
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(Spawned {
                pid: child.id(),
                log,
            });
        child
    }

    /// The log file of a process started with `spawn`.
    pub fn log_path(&self, process: &impl ProcessId) -> PathBuf {
        let pid = process.pid();
        let spawned = self.spawned.lock().unwrap_or_else(|e| e.into_inner());
        spawned
            .iter()
            .find(|s| s.pid == pid)
            .map(|s| s.log.clone())
            .unwrap_or_else(|| panic!("process {pid} was not spawned by this lab"))
    }

    /// The log of a process started with `spawn`, as far as it is written.
    pub fn log(&self, process: &impl ProcessId) -> String {
        fs::read_to_string(self.log_path(process)).unwrap_or_default()
    }

    /// Sends `signal` to a process by PID.
    pub fn kill(&self, process: &impl ProcessId, signal: Signal) -> nix::Result<()> {
        signal::kill(Pid::from_raw(process.pid() as i32), signal)
    }

    pub fn link_down(&self, host: &str, ifname: &str) {
        self.ip(host, &["link", "set", ifname, "down"]);
    }

    pub fn link_up(&self, host: &str, ifname: &str) {
        self.ip(host, &["link", "set", ifname, "up"]);
    }

    /// Drops everything `host` sends to `addr`, e.g. to cut a node off its gateway
    /// while its links stay up.
    pub fn blackhole(&self, host: &str, addr: &str) {
        self.ip(host, &["route", "add", "blackhole", &format!("{addr}/32")]);
    }

    pub fn unblackhole(&self, host: &str, addr: &str) {
        self.ip(host, &["route", "del", "blackhole", &format!("{addr}/32")]);
    }

    /// The IPv4 and IPv6 addresses of `ifname` in `host`, as "198.18.0.11/24".
    pub fn addresses(&self, host: &str, ifname: &str) -> Vec<String> {
        let listing = self.ip(host, &["-o", "addr", "show", "dev", ifname]);
        let mut addresses = Vec::new();
        for line in listing.lines() {
            let mut words = line.split_whitespace();
            while let Some(word) = words.next() {
                if word == "inet" || word == "inet6" {
                    addresses.extend(words.next().map(str::to_owned));
                }
            }
        }
        addresses
    }

    /// Starts `netprobe serve --name NAME` on `PROBE_PORT` in `host` and waits until it
    /// listens. It stops by itself after two minutes at the latest.
    pub fn serve(&self, host: &str, name: &str) -> Child {
        let port = PROBE_PORT.to_string();
        let netprobe = netprobe();
        let priority = OBSERVER_PRIORITY.to_string();
        let args = [
            "-f",
            &priority,
            netprobe.to_str().expect("UTF-8 path"),
            "serve",
            "--port",
            &port,
            "--name",
            name,
            "--duration",
            "120s",
        ];
        let mut child = self.spawn(host, "chrt", &args);
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if self.log(&child).contains("serving udp") {
                return child;
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "netprobe serve in {host} exited ({status}): {}",
                    self.log(&child)
                );
            }
            assert!(
                Instant::now() < deadline,
                "netprobe serve in {host} did not start listening within 5s"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Starts `netprobe http-serve` on `HTTP_PORT` in `host`, answering every request
    /// with status 200 and the body "ok", and waits until it listens: the service a
    /// test checks with an `http` check and kills (by PID) to make it fail. It stops
    /// by itself after two minutes at the latest.
    pub fn serve_http(&self, host: &str) -> Child {
        let port = HTTP_PORT.to_string();
        let args = [
            "http-serve",
            "--port",
            &port,
            "--body",
            "ok",
            "--duration",
            "120s",
        ];
        let mut child = self.spawn(host, netprobe(), &args);
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            if self.log(&child).contains("serving http") {
                return child;
            }
            if let Ok(Some(status)) = child.try_wait() {
                panic!(
                    "netprobe http-serve in {host} exited ({status}): {}",
                    self.log(&child)
                );
            }
            assert!(
                Instant::now() < deadline,
                "netprobe http-serve in {host} did not start listening within 5s"
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// Runs `probe` from the client and returns its summary.
    pub fn probe(&self, probe: &Probe) -> ProbeSummary {
        self.probe_from("cl", probe)
    }

    /// Runs `probe` from `host` and returns its summary.
    pub fn probe_from(&self, host: &str, probe: &Probe) -> ProbeSummary {
        let netprobe = netprobe();
        let mut args = vec![
            "chrt".to_owned(),
            "-f".to_owned(),
            OBSERVER_PRIORITY.to_string(),
            netprobe.to_str().expect("UTF-8 path").to_owned(),
            "probe".into(),
            "--target".into(),
            probe.target.clone(),
            "--count".into(),
            probe.count.to_string(),
            "--interval".into(),
            format!("{}us", probe.interval.as_micros()),
            "--timeout".into(),
            format!("{}us", probe.timeout.as_micros()),
        ];
        if let Some((name, settle)) = &probe.stop_after {
            args.extend(["--stop-after-responder".into(), name.clone()]);
            args.extend(["--settle".into(), settle.to_string()]);
        }
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let stdout = self.exec_ok(host, &args);
        ProbeSummary::parse(stdout.trim())
            .unwrap_or_else(|e| panic!("netprobe printed {stdout:?}, which is not a summary: {e}"))
    }

    /// Starts `probe` from the client in the background; `RunningProbe::finish` ends it
    /// and returns its summary. Its count bounds it in any case.
    pub fn start_probe(&self, probe: &Probe) -> RunningProbe<'_> {
        let interval = format!("{}us", probe.interval.as_micros());
        let timeout = format!("{}us", probe.timeout.as_micros());
        let count = probe.count.to_string();
        let netprobe = netprobe();
        let priority = OBSERVER_PRIORITY.to_string();
        let args = [
            "-f",
            &priority,
            netprobe.to_str().expect("UTF-8 path"),
            "probe",
            "--target",
            &probe.target,
            "--count",
            &count,
            "--interval",
            &interval,
            "--timeout",
            &timeout,
        ];
        RunningProbe {
            lab: self,
            child: self.spawn("cl", "chrt", &args),
            timeout: probe.timeout,
        }
    }

    /// Writes a random 32-byte key with mode 0600 into `tmpdir()` and returns its path.
    pub fn write_key(&self) -> PathBuf {
        let mut key = [0u8; 32];
        File::open("/dev/urandom")
            .and_then(|mut f| f.read_exact(&mut key))
            .expect("read /dev/urandom");
        let path = self.tmpdir.join("authkey");
        fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
            .and_then(|mut f| std::io::Write::write_all(&mut f, &key))
            .unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        path
    }

    /// Writes `contents` to `name` in `tmpdir()` and returns the path.
    pub fn write_file(&self, name: &str, contents: &str) -> PathBuf {
        let path = self.tmpdir.join(name);
        fs::write(&path, contents).unwrap_or_else(|e| panic!("write {}: {e}", path.display()));
        path
    }

    fn build(&mut self) {
        for host in HOSTS {
            let ns = self.ns(host);
            run_ip(&["netns", "add", &ns]);
            self.namespaces.push(ns);
            self.ip(host, &["link", "set", "lo", "up"]);
        }
        let lan = self.ns("lan");
        self.ip("lan", &["link", "add", "br0", "type", "bridge"]);
        self.ip("lan", &["link", "set", "br0", "up"]);
        for (host, cidr) in LAN_HOSTS {
            // Created inside the host's namespace with the peer placed straight into
            // the LAN namespace: neither end ever exists in the host's namespace.
            self.ip(
                host,
                &[
                    "link", "add", "eth0", "type", "veth", "peer", "name", host, "netns", &lan,
                ],
            );
            self.ip("lan", &["link", "set", host, "master", "br0", "up"]);
            self.ip(host, &["addr", "add", cidr, "dev", "eth0"]);
            self.ip(host, &["link", "set", "eth0", "up"]);
        }
        let n2 = self.ns("n2");
        self.ip(
            "n1",
            &[
                "link", "add", "xo", "type", "veth", "peer", "name", "xo", "netns", &n2,
            ],
        );
        self.ip("n1", &["addr", "add", "198.19.0.1/30", "dev", "xo"]);
        self.ip("n2", &["addr", "add", "198.19.0.2/30", "dev", "xo"]);
        for host in ["n1", "n2"] {
            self.ip(host, &["link", "set", "xo", "up"]);
        }
        for host in ["cl", "n1", "n2"] {
            self.ip(host, &["route", "add", "default", "via", GATEWAY]);
        }
    }

    /// Runs `ip -n <ns of host> args...`, panicking on failure; returns stdout.
    fn ip(&self, host: &str, args: &[&str]) -> String {
        let ns = self.ns(host);
        let mut full = vec!["-n", ns.as_str()];
        full.extend_from_slice(args);
        run_ip(&full)
    }

    /// Kills a process this lab spawned, if it still is our child and still in one of
    /// our namespaces. A PID that the test already reaped may belong to someone else by
    /// now; both checks keep us from killing a stranger.
    fn kill_spawned(&self, pid: u32) {
        let Ok(stat) = fs::read_to_string(format!("/proc/{pid}/stat")) else {
            return;
        };
        // Field 4 of /proc/PID/stat, after the parenthesised command name.
        let ppid = stat
            .rsplit_once(')')
            .and_then(|(_, rest)| rest.split_whitespace().nth(1))
            .and_then(|p| p.parse::<u32>().ok());
        if ppid != Some(std::process::id()) || !self.owns_process(pid) {
            return;
        }
        let pid = Pid::from_raw(pid as i32);
        let _ = signal::kill(pid, Signal::SIGKILL);
        // Reap it, so no zombie is left and the PID cannot be reused while anyone
        // still thinks it is ours. SIGKILL is final; two seconds is plenty.
        let deadline = Instant::now() + Duration::from_secs(2);
        while Instant::now() < deadline {
            match waitpid(pid, Some(WaitPidFlag::WNOHANG)) {
                Ok(WaitStatus::StillAlive) => std::thread::sleep(Duration::from_millis(5)),
                _ => break,
            }
        }
    }

    /// Whether process `pid` lives in one of this lab's namespaces.
    fn owns_process(&self, pid: u32) -> bool {
        let Ok(its) = fs::metadata(format!("/proc/{pid}/ns/net")) else {
            return false;
        };
        self.namespaces.iter().any(|ns| {
            fs::metadata(Path::new("/run/netns").join(ns))
                .is_ok_and(|m| m.ino() == its.ino() && m.dev() == its.dev())
        })
    }

    /// Prints the tail of every log, to explain a failed test.
    fn dump_logs(&self, spawned: &[Spawned]) {
        eprintln!(
            "lab {}: logs kept in {}",
            self.prefix,
            self.tmpdir.display()
        );
        for s in spawned {
            let text = fs::read_to_string(&s.log).unwrap_or_default();
            let lines: Vec<&str> = text.lines().collect();
            let tail = &lines[lines.len().saturating_sub(40)..];
            eprintln!(
                "--- {} (pid {}), last {} lines",
                s.log.display(),
                s.pid,
                tail.len()
            );
            for line in tail {
                eprintln!("{line}");
            }
        }
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let spawned = std::mem::take(&mut *self.spawned.lock().unwrap_or_else(|e| e.into_inner()));
        for s in &spawned {
            self.kill_spawned(s.pid);
        }
        // Anything else still in our namespaces was started from our processes (a hook
        // run by the daemon, say); by construction nothing else can be in there.
        for ns in &self.namespaces {
            let Ok(pids) = Command::new("ip").args(["netns", "pids", ns]).output() else {
                continue;
            };
            for pid in String::from_utf8_lossy(&pids.stdout).split_whitespace() {
                if let Ok(pid) = pid.parse::<i32>() {
                    let _ = signal::kill(Pid::from_raw(pid), Signal::SIGKILL);
                }
            }
        }
        // Deleting LAN first takes the bridge and all its veth peers with it.
        for ns in &self.namespaces {
            let deleted = Command::new("ip").args(["netns", "del", ns]).output();
            match deleted {
                Ok(output) if output.status.success() => {}
                Ok(output) => eprintln!(
                    "lab: ip netns del {ns} failed: {}",
                    String::from_utf8_lossy(&output.stderr).trim()
                ),
                Err(e) => eprintln!("lab: ip netns del {ns}: {e}"),
            }
        }
        // A failed test keeps its logs to look at; with nothing spawned there are none.
        if std::thread::panicking() && !spawned.is_empty() {
            self.dump_logs(&spawned);
        } else {
            let _ = fs::remove_dir_all(&self.tmpdir);
        }
    }
}

/// Runs `ip args...` and panics with its stderr when it fails; returns stdout.
fn run_ip(args: &[&str]) -> String {
    let output = Command::new("ip")
        .args(args)
        .output()
        .unwrap_or_else(|e| panic!("run ip {}: {e}", args.join(" ")));
    assert!(
        output.status.success(),
        "ip {} failed: {}",
        args.join(" "),
        String::from_utf8_lossy(&output.stderr).trim()
    );
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The failoverd binary under test.
pub fn failoverd() -> PathBuf {
    PathBuf::from(env!("CARGO_BIN_EXE_failoverd"))
}

/// The netprobe example, built next to this test executable:
/// .../target/debug/deps/lab-1234 -> .../target/debug/examples/netprobe.
pub fn netprobe() -> PathBuf {
    let exe = std::env::current_exe().expect("path of the test executable");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("test executable lives in target/<profile>/deps");
    let path = profile_dir.join("examples").join("netprobe");
    assert!(
        path.is_file(),
        "{} is missing: build it first with `cargo build --examples` (scripts/test.sh does)",
        path.display()
    );
    path
}

/// Anything with a process ID: a `Child`, or a PID.
pub trait ProcessId {
    fn pid(&self) -> u32;
}

impl ProcessId for Child {
    fn pid(&self) -> u32 {
        self.id()
    }
}

impl ProcessId for u32 {
    fn pid(&self) -> u32 {
        *self
    }
}

/// The realtime priority (SCHED_FIFO) of the client's probes and of the service
/// that answers them, above the daemons' (10): the daemons run at realtime priority,
/// and an observer or a service that they (or a parallel test's) could hold off the
/// CPU for a moment would be measured instead of the VIP. Both are light: a
/// datagram every few milliseconds.
const OBSERVER_PRIORITY: u8 = 50;

/// What `Lab::probe` should send; built with `Probe::new(target)` and the setters.
#[derive(Debug, Clone)]
pub struct Probe {
    /// "198.18.0.10:9000"; an address without a port gets `PROBE_PORT`.
    pub target: String,
    pub count: u64,
    pub interval: Duration,
    pub timeout: Duration,
    /// Stop this many probes after the first answer from this responder.
    pub stop_after: Option<(String, u64)>,
}

impl Probe {
    /// 100 probes 10 ms apart, each given 200 ms to be answered.
    pub fn new(target: &str) -> Probe {
        let target = if target.contains(':') {
            target.to_owned()
        } else {
            format!("{target}:{PROBE_PORT}")
        };
        Probe {
            target,
            count: 100,
            interval: Duration::from_millis(10),
            timeout: Duration::from_millis(200),
            stop_after: None,
        }
    }

    pub fn count(mut self, count: u64) -> Probe {
        self.count = count;
        self
    }

    pub fn interval(mut self, interval: Duration) -> Probe {
        self.interval = interval;
        self
    }

    pub fn timeout(mut self, timeout: Duration) -> Probe {
        self.timeout = timeout;
        self
    }

    pub fn stop_after(mut self, responder: &str, settle: u64) -> Probe {
        self.stop_after = Some((responder.to_owned(), settle));
        self
    }
}

/// A probe run in the background, from `Lab::start_probe`.
pub struct RunningProbe<'a> {
    lab: &'a Lab,
    child: Child,
    timeout: Duration,
}

impl RunningProbe<'_> {
    /// Ends the run (SIGUSR1: netprobe sends no more probes, waits `timeout` for the
    /// answers on their way and prints its summary) and returns the summary.
    pub fn finish(mut self) -> ProbeSummary {
        self.lab
            .kill(&self.child, Signal::SIGUSR1)
            .expect("send SIGUSR1 to netprobe");
        let limit = self.timeout + Duration::from_secs(5);
        let deadline = Instant::now() + limit;
        let status = loop {
            if let Some(status) = self.child.try_wait().expect("wait for netprobe") {
                break status;
            }
            assert!(
                Instant::now() < deadline,
                "netprobe did not end within {limit:?} of SIGUSR1"
            );
            std::thread::sleep(Duration::from_millis(5));
        };
        let output = self.lab.log(&self.child);
        assert!(status.success(), "netprobe probe: {status}: {output}");
        let line = output
            .lines()
            .rfind(|l| l.starts_with('{'))
            .unwrap_or_else(|| panic!("netprobe printed no summary: {output}"));
        ProbeSummary::parse(line)
            .unwrap_or_else(|e| panic!("netprobe printed {line:?}, which is not a summary: {e}"))
    }
}

/// A responder change seen by the client, in probe order.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ResponderChange {
    /// Number of the first probe answered by `to`.
    pub seq: u64,
    /// Send time of that probe, in ms after the first probe.
    pub at_ms: f64,
    pub from: String,
    pub to: String,
}

/// netprobe's JSON summary; `netprobe probe --help` documents each field.
#[derive(Debug, Clone, PartialEq, Deserialize)]
pub struct ProbeSummary {
    pub sent: u64,
    pub answered: u64,
    pub lost: u64,
    pub late: u64,
    pub duplicates: u64,
    pub foreign: u64,
    pub send_errors: u64,
    pub elapsed_ms: f64,
    /// Longest send-time distance between two consecutive answered probes; None with
    /// fewer than two answers.
    pub longest_gap_ms: Option<f64>,
    pub lost_at_start: u64,
    pub lost_at_end: u64,
    pub first_responder: Option<String>,
    pub last_responder: Option<String>,
    pub stopped_early: bool,
    /// Answers per responder.
    pub responders: BTreeMap<String, u64>,
    pub changes: Vec<ResponderChange>,
    /// The JSON line itself, for assertion messages.
    #[serde(skip)]
    pub raw: String,
}

impl ProbeSummary {
    pub fn parse(line: &str) -> Result<ProbeSummary, String> {
        let summary: ProbeSummary = serde_json::from_str(line).map_err(|e| e.to_string())?;
        Ok(ProbeSummary {
            raw: line.to_owned(),
            ..summary
        })
    }

    /// How many probes `name` answered.
    pub fn answers_from(&self, name: &str) -> u64 {
        self.responders.get(name).copied().unwrap_or(0)
    }
}

/// Fails the test, with what to install, unless `nft` runs in the lab: the tests
/// that cut heartbeats do it with nftables rules inside the nodes' namespaces.
pub fn require_nft(lab: &Lab) {
    let works = Command::new("nft").arg("--version").output();
    assert!(
        works.is_ok_and(|o| o.status.success()),
        "this test cuts heartbeats with nftables, and `nft` is missing: install it \
         (apt-get install nftables); .ci/run does"
    );
    lab.exec_ok("n1", &["nft", "list", "ruleset"]);
}
