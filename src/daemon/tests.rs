//! The shell's own paths, without root: a recording host instead of netlink and
//! processes, heartbeat sockets on loopback, the configuration in a temporary file.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use super::hooks::{HookOutcome, HookStatus};
use super::*;
use crate::config::sample::Sample;
use crate::machine::{Hook, Role, VipFailure, VipTarget};
use crate::wire::heartbeat::{Heartbeat, Signer, WireState};

/// Records what the shell asked of the host; every request succeeds.
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<String>>>);

impl Recorder {
    fn calls(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }

    fn note(&self, call: String) {
        self.0.lock().unwrap().push(call);
    }
}

impl Host for Recorder {
    async fn add_vip(&self, vip: &VipTarget) -> Result<(), VipFailure> {
        self.note(format!("add {vip}"));
        Ok(())
    }

    async fn remove_vip(&self, vip: &VipTarget) -> Result<(), VipFailure> {
        self.note(format!("remove {vip}"));
        Ok(())
    }

    async fn has_vip(&self, vip: &VipTarget) -> Result<bool, VipFailure> {
        self.note(format!("has {vip}"));
        Ok(false)
    }

    async fn link(&self, interface: &str) -> Result<vip::LinkInfo, vip::VipError> {
        Ok(vip::LinkInfo {
            index: 7,
            mac: [2, 0, 0, 0, 0, 1],
            up: !interface.is_empty(),
        })
    }

    fn announce(
        &self,
        link: &vip::LinkInfo,
        addresses: &[IpAddr],
    ) -> Result<(), announce::AnnounceError> {
        self.note(format!("announce {addresses:?} on {}", link.index));
        Ok(())
    }

    async fn run_hook(
        &self,
        hook: Hook,
        _program: &Path,
        env: &[(String, String)],
        _timeout: Duration,
    ) -> HookOutcome {
        let state = env
            .iter()
            .find(|(k, _)| k == "FAILOVERD_STATE")
            .map_or("", |(_, v)| v.as_str());
        self.note(format!("hook {} ({state})", hook.as_str()));
        HookOutcome {
            status: HookStatus::Exited(0),
            duration: Duration::from_millis(1),
        }
    }
}

/// A directory for one test's configuration, key and state, removed on drop.
struct Lab {
    dir: PathBuf,
    /// Where the peer, beta, listens on the crossover and on the LAN; it never
    /// answers.
    peer: [std::net::UdpSocket; 2],
}

impl Lab {
    fn new(name: &str) -> Lab {
        let dir =
            std::env::temp_dir().join(format!("failoverd-shell-{}-{name}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        let key = dir.join("authkey");
        fs::write(&key, "shell-test-key-0123456789\n").unwrap();
        fs::set_permissions(&key, fs::Permissions::from_mode(0o600)).unwrap();
        let start = dir.join("start");
        fs::write(&start, "#!/bin/sh\n").unwrap();
        fs::set_permissions(&start, fs::Permissions::from_mode(0o755)).unwrap();
        let crossover = std::net::UdpSocket::bind("127.0.0.2:0").unwrap();
        let port = crossover.local_addr().unwrap().port();
        let lan = std::net::UdpSocket::bind(("127.0.0.4", port)).unwrap();
        let peer = [crossover, lan];
        let lab = Lab { dir, peer };
        lab.write(200);
        lab
    }

    fn path(&self) -> PathBuf {
        self.dir.join("failoverd.toml")
    }

    fn port(&self) -> u16 {
        self.peer[0].local_addr().unwrap().port()
    }

    /// Writes the sample configuration for this lab, with this priority for alpha.
    fn write(&self, priority: u16) {
        let dir = self.dir.display();
        let text = Sample::new()
            .set("cluster.name", "shell")
            .set("cluster.key_file", "authkey")
            .set("cluster.port", self.port())
            .set("timing.interval", "20ms")
            .set("timing.warn", "40ms")
            .set("timing.dead", "60ms")
            .set("timing.init_dead", "100ms")
            .set("node[0].priority", priority)
            .set(
                "node[0].addresses",
                r#"{ crossover = "127.0.0.1", lan = "127.0.0.3" }"#,
            )
            .set(
                "node[1].addresses",
                r#"{ crossover = "127.0.0.2", lan = "127.0.0.4" }"#,
            )
            // No pings from the host's own namespace.
            .set("health.gateways", "[]")
            .set("health.link_state", false)
            .set("hooks.start", format!("{dir}/start"))
            .remove("hooks.stop")
            .remove("hooks.fault")
            .set("control.socket", format!("{dir}/failoverd.sock"))
            .set("control.state_dir", format!("{dir}/state"))
            .to_string();
        fs::write(self.path(), text).unwrap();
    }

    async fn start(&self) -> (Shell<Recorder>, Machine, Inputs, Recorder) {
        let config = Config::load(&self.path()).expect("the test configuration is valid");
        // The port is the peer's: alpha sends from ephemeral ones.
        let crossover = UdpSocket::bind("127.0.0.1:0").await.unwrap();
        let lan = UdpSocket::bind("127.0.0.3:0").await.unwrap();
        let listeners = Listeners {
            links: vec![Arc::new(crossover), Arc::new(lan)],
            control: None,
            http: None,
        };
        let host = Recorder::default();
        let (shell, machine, inputs) =
            Shell::start(config, self.path(), 0, listeners, host.clone());
        (shell, machine, inputs, host)
    }
}

impl Drop for Lab {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// How a run of [`pump`] ended.
#[derive(Debug, PartialEq)]
enum Pumped {
    /// The condition holds.
    Done,
    /// The machine asked to exit.
    Exited,
}

/// Plays the loop without signals or a control socket until `done` holds or the
/// machine exits, for at most two seconds.
async fn pump(
    shell: &mut Shell<Recorder>,
    machine: &mut Machine,
    inputs: &mut Inputs,
    done: impl Fn(&Machine) -> bool,
) -> Pumped {
    let limit = Instant::now() + Duration::from_secs(2);
    loop {
        if !shell.perform(machine) {
            return Pumped::Exited;
        }
        if done(machine) {
            return Pumped::Done;
        }
        assert!(
            Instant::now() < limit,
            "gave up waiting; role {}",
            machine.role()
        );
        let deadline = machine
            .poll_timeout()
            .map_or(limit, Instant::from_std)
            .min(limit);
        tokio::select! {
            Some((id, outcome)) = inputs.done.recv() => {
                machine.handle(Instant::now().into_std(), Input::Done { id, outcome: &outcome });
            }
            () = tokio::time::sleep_until(deadline) => {
                machine.handle_timeout(Instant::now().into_std());
            }
        }
    }
}

/// Until this node holds its VIPs, alone: beta never answers.
async fn until_active(shell: &mut Shell<Recorder>, machine: &mut Machine, inputs: &mut Inputs) {
    let active = |m: &Machine| m.role() == Role::Active && !m.held_vips().is_empty();
    assert_eq!(pump(shell, machine, inputs, active).await, Pumped::Done);
}

#[tokio::test]
async fn heartbeats_go_to_every_peer_as_soon_as_the_shell_performs() {
    let lab = Lab::new("send");
    let (mut shell, mut machine, _inputs, _host) = lab.start().await;
    assert!(shell.perform(&mut machine));
    let key = fs::read(lab.dir.join("authkey")).unwrap();
    let signer = Signer::new(key.trim_ascii());
    for (link, (socket, from)) in lab.peer.iter().zip(["127.0.0.1", "127.0.0.3"]).enumerate() {
        let mut buf = [0u8; 512];
        socket
            .set_read_timeout(Some(Duration::from_secs(2)))
            .unwrap();
        let (n, sender) = socket
            .recv_from(&mut buf)
            .expect("a heartbeat on every link");
        assert_eq!(sender.ip(), from.parse::<IpAddr>().unwrap());
        let hb = Heartbeat::decode(&buf[..n], &signer).expect("signed with the cluster key");
        assert_eq!((hb.node.as_str(), usize::from(hb.link)), ("alpha", link));
        assert_eq!(hb.state, WireState::Starting);
    }
}

#[tokio::test]
async fn effects_reach_the_host_in_the_order_the_machine_asked() {
    let lab = Lab::new("effects");
    let (mut shell, mut machine, mut inputs, host) = lab.start().await;
    // Beta never answers: after init_dead alpha takes over on its own.
    until_active(&mut shell, &mut machine, &mut inputs).await;
    let started = |_: &Machine| host.calls().iter().any(|c| c.starts_with("hook start"));
    assert_eq!(
        pump(&mut shell, &mut machine, &mut inputs, started).await,
        Pumped::Done
    );
    let calls = host.calls();
    let at = |prefix: &str| {
        calls
            .iter()
            .position(|c| c.starts_with(prefix))
            .unwrap_or_else(|| panic!("no {prefix:?} in {calls:?}"))
    };
    assert!(
        at("has 198.18.0.10/24") < at("add 198.18.0.10/24"),
        "{calls:?}"
    );
    assert!(
        at("add 198.18.0.10/24") < at("hook start (active)"),
        "{calls:?}"
    );
    assert!(at("add 198.18.0.10/24") < at("announce"), "{calls:?}");
}

#[tokio::test]
async fn answers_status_and_orders_and_keeps_maintenance_on_disk() {
    let lab = Lab::new("answer");
    let (mut shell, mut machine, _inputs, _host) = lab.start().await;
    let status = shell.answer(&mut machine, &Command::Status);
    assert!(status.ok);
    let status = status.status.expect("a status document");
    assert_eq!(status.node, "alpha");
    assert_eq!(status.pid, std::process::id());
    assert_eq!(status.config, lab.path().display().to_string());

    let refused = shell.answer(&mut machine, &Command::Takeover);
    assert!(!refused.ok);
    assert_eq!(
        refused.error.as_deref(),
        Some("this node is still starting")
    );

    let flag = lab.dir.join("state").join("maintenance");
    let on = shell.answer(&mut machine, &Command::Maintenance { on: true });
    assert!(on.ok, "{on:?}");
    assert!(flag.exists(), "maintenance is kept on disk");
    let off = shell.answer(&mut machine, &Command::Maintenance { on: false });
    assert!(off.ok, "{off:?}");
    assert!(!flag.exists(), "and cleared");
}

#[tokio::test]
async fn reload_applies_a_good_file_and_keeps_the_running_one_otherwise() {
    let lab = Lab::new("reload");
    let (mut shell, mut machine, _inputs, _host) = lab.start().await;

    lab.write(150);
    let applied = shell.answer(&mut machine, &Command::Reload);
    assert!(applied.ok, "{applied:?}");
    assert_eq!(
        applied.message.as_deref(),
        Some("configuration reloaded: priority 200 -> 150")
    );

    lab.write(120);
    let text = fs::read_to_string(lab.path()).unwrap();
    fs::write(
        lab.path(),
        text.replace("interval = \"20ms\"", "interval = \"fast\""),
    )
    .unwrap();
    let broken = shell.answer(&mut machine, &Command::Reload);
    assert!(!broken.ok);
    let error = broken.error.unwrap_or_default();
    assert!(error.starts_with("reload rejected: "), "{error}");
    assert!(error.contains("timing.interval"), "names the key: {error}");

    lab.write(120);
    let text = fs::read_to_string(lab.path())
        .unwrap()
        .replace(&format!("port = {}", lab.port()), "port = 1");
    fs::write(lab.path(), text).unwrap();
    let refused = shell.reload(&mut machine);
    assert!(
        matches!(
            refused,
            Err(ReloadFailure::Refused(ReloadError::ClusterChanged))
        ),
        "{refused:?}"
    );

    let status = shell.answer(&mut machine, &Command::Status).status.unwrap();
    assert_eq!(status.priority, 150, "the last good file is still in force");
    assert_eq!(shell.config.cluster.port, lab.port());
}

#[tokio::test]
async fn a_graceful_stop_releases_through_the_host_then_exits() {
    let lab = Lab::new("stop");
    let (mut shell, mut machine, mut inputs, host) = lab.start().await;
    until_active(&mut shell, &mut machine, &mut inputs).await;
    machine.handle(Instant::now().into_std(), Input::Shutdown);
    let never = |_: &Machine| false;
    assert_eq!(
        pump(&mut shell, &mut machine, &mut inputs, never).await,
        Pumped::Exited
    );
    let calls = host.calls();
    let last_add = calls.iter().rposition(|c| c.starts_with("add")).unwrap();
    let remove = calls.iter().rposition(|c| c.starts_with("remove")).unwrap();
    assert!(last_add < remove, "{calls:?}");
    assert_eq!(
        machine.poll_timeout(),
        None,
        "an exited machine sleeps for good"
    );
}
