//! The shell's own paths, without root: a recording host instead of netlink and
//! processes, heartbeat sockets on loopback, the configuration in a temporary file.

use std::fs;
use std::net::IpAddr;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::SystemTime;

use super::executor::NOTICE_WAIT;
use super::hooks::{HookOutcome, HookStatus};
use super::*;
use crate::config::RunAs;
use crate::config::sample::Sample;
use crate::machine::{Hook, Role, Sighting, VipFailure, VipTarget};
use crate::wire::heartbeat::{Heartbeat, Signer, WireState};

/// How long a hook named `/slow` runs on a [`Recorder`].
/// Long enough that the stop is over before the hook ends, on a busy machine too.
const SLOW_HOOK: Duration = Duration::from_millis(1500);

/// Records what the shell asked of the host; every request succeeds, and every
/// interface is up but those named `down…`.
#[derive(Clone, Default)]
struct Recorder(Arc<Mutex<Vec<String>>>, Arc<Mutex<Option<RunAs>>>);

impl Recorder {
    fn calls(&self) -> Vec<String> {
        self.0.lock().unwrap().clone()
    }

    fn note(&self, call: String) {
        self.0.lock().unwrap().push(call);
    }

    /// The user hooks would run as, as last set.
    fn hook_user(&self) -> Option<String> {
        self.1.lock().unwrap().as_ref().map(ToString::to_string)
    }
}

impl Host for Recorder {
    fn set_hook_user(&self, run_as: Option<RunAs>) {
        *self.1.lock().unwrap() = run_as;
    }

    async fn add_vip(&self, vip: &VipTarget) -> Result<(), VipFailure> {
        self.note(format!("add {vip}"));
        Ok(())
    }

    async fn remove_vip(&self, vip: &VipTarget) -> Result<(), VipFailure> {
        self.note(format!("remove {vip}"));
        Ok(())
    }

    async fn vips_present(&self, vips: &[VipTarget]) -> Vec<Result<bool, VipFailure>> {
        for vip in vips {
            self.note(format!("has {vip}"));
        }
        vips.iter().map(|_| Ok(false)).collect()
    }

    /// One interface, eth0 on the sample's LAN.
    fn interfaces(&self) -> Option<Vec<Interface>> {
        Some(vec![Interface {
            name: "eth0".into(),
            addresses: vec![("198.18.0.11".parse().unwrap(), 24)],
        }])
    }

    async fn write_note(
        &self,
        _: &std::path::Path,
        name: &'static str,
        under_way: bool,
    ) -> std::io::Result<()> {
        let what = if name == control::RELEASE_NOTE {
            "release"
        } else {
            name
        };
        self.note(format!("note {what} {under_way}"));
        Ok(())
    }

    async fn link(&self, interface: &str) -> Result<vip::LinkInfo, vip::VipError> {
        Ok(vip::LinkInfo {
            index: 7,
            mac: [2, 0, 0, 0, 0, 1],
            up: !interface.starts_with("down"),
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

    async fn probe(
        &self,
        vips: &[VipTarget],
        _window: Duration,
    ) -> Result<Vec<Sighting>, probe::ProbeError> {
        let vips: Vec<String> = vips.iter().map(ToString::to_string).collect();
        self.note(format!("probe {}", vips.join(" ")));
        Ok(Vec::new())
    }

    async fn watch(
        &self,
        vips: Vec<VipTarget>,
        _tx: mpsc::Sender<Sighting>,
    ) -> Result<(), probe::ProbeError> {
        let vips: Vec<String> = vips.iter().map(ToString::to_string).collect();
        self.note(format!("watch {}", vips.join(" ")));
        std::future::pending().await
    }

    async fn run_hook(
        &self,
        hook: Hook,
        program: &Path,
        env: &[(String, String)],
        _timeout: Duration,
    ) -> HookOutcome {
        let state = env
            .iter()
            .find(|(k, _)| k == "FAILOVERD_STATE")
            .map_or("", |(_, v)| v.as_str());
        self.note(format!("hook {} ({state})", hook.as_str()));
        if program == Path::new("/slow") {
            tokio::time::sleep(SLOW_HOOK).await;
        }
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
        self.write_with(priority, "");
    }

    /// Writes the sample configuration with this priority for alpha and `tables`
    /// (`[[check]]` tables) appended.
    fn write_with(&self, priority: u16, tables: &str) {
        self.write_edited(priority, |sample| sample.append(tables));
    }

    /// Writes the sample configuration with this priority for alpha, changed by
    /// `edit`.
    fn write_edited(&self, priority: u16, edit: impl FnOnce(Sample) -> Sample) {
        let dir = self.dir.display();
        let sample = Sample::new()
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
            .set("control.state_dir", format!("{dir}/state"));
        fs::write(self.path(), edit(sample).to_string()).unwrap();
    }

    async fn start(&self) -> (Shell<Recorder>, Machine, Inputs, Recorder) {
        let config = Config::load(&self.path()).expect("the test configuration is valid");
        // The port is the peer's: alpha sends from ephemeral ones.
        let bind = |address: &str| {
            let socket = std::net::UdpSocket::bind(address).unwrap();
            socket.set_nonblocking(true).unwrap();
            Some(listen::LinkSockets::single(
                listen::watch_for_reading(socket).unwrap(),
            ))
        };
        let crossover = bind("127.0.0.1:0");
        let lan = bind("127.0.0.3:0");
        let listeners = Listeners {
            links: vec![crossover, lan],
            control: None,
            http: None,
        };
        let host = Recorder::default();
        let (shell, machine, inputs) =
            Shell::start(config, self.path(), 0, listeners, host.clone()).unwrap();
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
            shell.exit(machine, &mut inputs.done).await;
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
            Some(report) = shell.checks.recv() => {
                let now = Instant::now().into_std();
                machine.handle(now, Input::Check { index: report.index, run: &report.run });
            }
            Some((id, result)) = inputs.probed.recv() => {
                machine.handle(Instant::now().into_std(), Input::Probed { id, result: &result });
            }
            () = tokio::time::sleep_until(deadline) => {
                machine.handle_timeout(Instant::now().into_std());
            }
        }
    }
}

/// Asks the loop's way: a reload is answered once the loader thread has read the
/// file and the loop has applied it.
async fn ask(
    shell: &mut Shell<Recorder>,
    machine: &mut Machine,
    inputs: &mut Inputs,
    command: Command,
) -> Response {
    let (reply, answer) = oneshot::channel();
    let reloading = matches!(command, Command::Reload);
    shell.answer(machine, Pending { command, reply });
    if reloading {
        let loaded = tokio::time::timeout(Duration::from_secs(5), inputs.loaded.recv())
            .await
            .expect("the file is read within 5 s")
            .expect("the loader is running");
        let _ = shell.finish_reload(machine, loaded);
    }
    answer.await.expect("an answer")
}

/// `maintenance on` (or `off`), answered.
async fn maintenance(
    shell: &mut Shell<Recorder>,
    machine: &mut Machine,
    inputs: &mut Inputs,
    on: bool,
) -> Response {
    ask(shell, machine, inputs, Command::Maintenance { on }).await
}

/// Reloads as SIGHUP does, and waits for the file to be read and applied.
async fn reload(
    shell: &mut Shell<Recorder>,
    machine: &mut Machine,
    inputs: &mut Inputs,
) -> Result<String, ReloadFailure> {
    shell.begin_reload(machine, None);
    let loaded = tokio::time::timeout(Duration::from_secs(5), inputs.loaded.recv())
        .await
        .expect("the file is read within 5 s")
        .expect("the loader is running");
    shell.finish_reload(machine, loaded)
}

/// A reload that adds a VIP on an interface this host does not have (a typo) is
/// refused: applied, the VIP's add and its link check would fail and hand every
/// VIP to the peer. One outside its interface's subnets is applied and told of.
/// A VIP the running file already has is not held against the reload.
#[tokio::test]
async fn a_reload_refuses_a_vip_this_host_cannot_hold_and_tells_of_one_off_its_subnets() {
    let lab = Lab::new("reload-fit");
    let (mut shell, mut machine, mut inputs, _host) = lab.start().await;
    let vip = |address: &str, interface: &str| {
        format!("[[vip]]\naddress = \"{address}\"\ninterface = \"{interface}\"\n")
    };
    lab.write_with(200, &vip("198.18.0.30/24", "eth9"));
    let refused = ask(&mut shell, &mut machine, &mut inputs, Command::Reload).await;
    assert!(!refused.ok, "{refused:?}");
    assert_eq!(
        refused.error.as_deref(),
        Some(
            "vip[1]: interface eth9 does not exist on this host: 198.18.0.30/24 cannot be \
             added here (correct vip[1].interface, or name this node's interface in \
             node[0].interfaces)"
        )
    );
    assert_eq!(shell.config.vips.len(), 1, "the running file stays");

    lab.write_with(200, &vip("198.18.5.10/24", "eth0"));
    let applied = ask(&mut shell, &mut machine, &mut inputs, Command::Reload).await;
    assert!(applied.ok, "{applied:?}");
    assert_eq!(
        applied.message.as_deref(),
        Some(
            "configuration reloaded: VIP 198.18.5.10/24 added; warning: vip[1]: \
             198.18.5.10/24 is in no subnet of eth0 (eth0 has 198.18.0.11/24): clients on \
             that link reach it only through a route to it (correct the VIP, or add an \
             address of its subnet to eth0)"
        )
    );

    // Nothing new: nothing to tell, whatever the old VIPs' fit.
    let again = ask(&mut shell, &mut machine, &mut inputs, Command::Reload).await;
    assert_eq!(
        again.message.as_deref(),
        Some("configuration reloaded: nothing changed")
    );

    // A file that puts beta first is refused for that, not for the VIPs of beta's
    // interfaces, which are not this node's.
    lab.write_edited(200, |sample| {
        (sample.set("node[0].name", "\"beta\""))
            .set("node[0].interfaces", r#"{ eth0 = "enp1s0" }"#)
            .set("node[1].name", "\"alpha\"")
    });
    let refused = ask(&mut shell, &mut machine, &mut inputs, Command::Reload).await;
    assert_eq!(
        refused.error.as_deref(),
        Some("the nodes changed: restart the daemons to apply"),
        "{refused:?}"
    );
}

/// A reload that moves a peer sorts the link's datagrams by the peer's new address:
/// the wiring from the reload to the sorting, which `listen` tests on its own.
#[tokio::test]
async fn a_reload_that_moves_a_peer_sorts_the_link_by_its_new_address() {
    let lab = Lab::new("resteer");
    lab.write(100);
    let config = Config::load(&lab.path()).expect("the test configuration is valid");
    let crossover = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    crossover.set_nonblocking(true).unwrap();
    let crossover = listen::LinkSockets::single(listen::watch_for_reading(crossover).unwrap());
    // The LAN is the second link; beta is at 127.0.0.4 on it.
    let (lan, unsorted) = listen::link_sockets(
        "127.0.0.3:0".parse().unwrap(),
        &listen::peers_on(&config, 0, 1),
    )
    .unwrap();
    assert!(unsorted.is_none(), "{unsorted:?}");
    let at = lan.peers.get_ref().local_addr().unwrap();
    // The same sockets, which the shell's receiving side sorts after the reload.
    let seen = lan.clone();
    let listeners = Listeners {
        links: vec![Some(crossover), Some(lan)],
        control: None,
        http: None,
    };
    let (mut shell, mut machine, mut inputs) =
        Shell::start(config, lab.path(), 0, listeners, Recorder::default()).unwrap();
    // Where a datagram from each of beta's old and new LAN addresses lands.
    let sorted = || ["127.0.0.4:0", "127.0.0.5:0"].map(|from| listen::landed(&seen, from, at));
    assert_eq!(sorted(), ["peers", "strangers"]);
    lab.write_edited(100, |sample| {
        sample.set(
            "node[1].addresses",
            r#"{ crossover = "127.0.0.2", lan = "127.0.0.5" }"#,
        )
    });
    reload(&mut shell, &mut machine, &mut inputs)
        .await
        .expect("a moved peer is reloaded");
    assert_eq!(sorted(), ["strangers", "peers"]);
}

/// A notification hook still running at the stop is waited for, and its outcome
/// logged, since the machine, exited, logs nothing more; the exit goes once it
/// ended, not at the end of the bound.
#[tokio::test]
async fn the_exit_waits_for_a_notification_still_running_and_logs_its_outcome() {
    let lab = Lab::new("exit-notice");
    let (mut shell, mut machine, mut inputs, _host) = lab.start().await;
    until_active(&mut shell, &mut machine, &mut inputs).await;
    // Given beside the machine, which therefore cannot name it.
    let slow = Effect::RunHook {
        hook: Hook::Standby,
        program: "/slow".into(),
        env: Vec::new(),
        timeout: Duration::from_secs(30),
    };
    assert!(shell.jobs.notify(EffectId(u64::MAX), slow));
    let began = Instant::now();
    stop(&mut shell, &mut machine, &mut inputs).await;
    let logged: Vec<String> = (shell.events.recent(5).into_iter())
        .map(|e| e.message)
        .collect();
    assert!(
        logged
            .iter()
            .any(|m| m == "unknown hook exited 0 after 1ms"),
        "the outcome is not logged: {logged:?}"
    );
    assert!(
        began.elapsed() < NOTICE_WAIT,
        "waited out the bound after the hook ended"
    );
}

/// Until this node holds its VIPs, alone: beta never answers.
/// SIGTERM, as the loop takes it, and the loop played until the machine exits.
async fn stop(shell: &mut Shell<Recorder>, machine: &mut Machine, inputs: &mut Inputs) {
    machine.handle(Instant::now().into_std(), Input::Shutdown);
    let never = |_: &Machine| false;
    assert_eq!(pump(shell, machine, inputs, never).await, Pumped::Exited);
}

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
        assert_eq!((&*hb.node, usize::from(hb.link)), ("alpha", link));
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
    // Nobody was heard: the LAN was asked first, and the held VIPs are watched.
    assert!(
        at("probe 198.18.0.10/24") < at("add 198.18.0.10/24"),
        "{calls:?}"
    );
    at("watch 198.18.0.10/24");
}

#[tokio::test]
async fn answers_status_and_orders_and_keeps_maintenance_on_disk() {
    let lab = Lab::new("answer");
    let (mut shell, mut machine, mut inputs, _host) = lab.start().await;
    let status = ask(&mut shell, &mut machine, &mut inputs, Command::Status).await;
    assert!(status.ok);
    let status = status.status.expect("a status document");
    assert_eq!(status.node, "alpha");
    assert_eq!(status.pid, std::process::id());
    assert_eq!(status.config, lab.path().display().to_string());

    let refused = ask(&mut shell, &mut machine, &mut inputs, Command::Takeover).await;
    assert!(!refused.ok);
    assert_eq!(
        refused.error.as_deref(),
        Some("this node is still starting")
    );

    let flag = lab.dir.join("state").join("maintenance");
    let on = maintenance(&mut shell, &mut machine, &mut inputs, true).await;
    assert!(on.ok, "{on:?}");
    // Written by the state thread, not the loop, before the answer.
    assert!(flag.exists(), "maintenance is kept on disk");
    let off = maintenance(&mut shell, &mut machine, &mut inputs, false).await;
    assert!(off.ok, "{off:?}");
    assert!(!flag.exists(), "and cleared");
}

/// A state directory that hangs (the flag's path a FIFO nobody reads: opening it
/// for writing waits for a reader, as a write to a hung mount does): the loop is
/// never held up by it, and `maintenance on` is in force and answered after
/// `PERSIST_WAIT`, with a word that a restart may not keep it.
#[tokio::test]
async fn maintenance_is_answered_when_the_state_directory_hangs() {
    let lab = Lab::new("maintenance-hang");
    let (mut shell, mut machine, mut inputs, _host) = lab.start().await;
    let state = lab.dir.join("state");
    fs::create_dir_all(&state).unwrap();
    let flag = state.join("maintenance");
    nix::unistd::mkfifo(&flag, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
    // The stuck write is let go once the test is done, or after 8 s should the
    // loop itself be stuck in it (then the answer comes late, and says nothing of
    // the state directory).
    let (done, release) = std::sync::mpsc::channel::<()>();
    let reader = {
        let flag = flag.clone();
        std::thread::spawn(move || {
            let _ = release.recv_timeout(Duration::from_secs(8));
            let mut written = String::new();
            std::io::Read::read_to_string(&mut fs::File::open(&flag).unwrap(), &mut written)
                .unwrap();
            written
        })
    };
    let asked = Instant::now();
    let on = maintenance(&mut shell, &mut machine, &mut inputs, true).await;
    assert!(on.ok, "{on:?}");
    assert!(machine.maintenance());
    assert!(
        asked.elapsed() < PERSIST_WAIT * 3,
        "answered after {:?}",
        asked.elapsed()
    );
    let said = on.message.unwrap_or_default();
    assert_eq!(
        said,
        "maintenance on: no automatic transitions until `maintenance off`; not saved in \
         the state directory: maintenance mode may not survive a restart (not written after \
         2s)"
    );
    done.send(()).unwrap();
    assert_eq!(
        reader.join().unwrap(),
        "on\n",
        "the write went through once let go"
    );
}

#[tokio::test]
async fn the_status_carries_the_history_of_roles_peers_and_maintenance() {
    let lab = Lab::new("history");
    let (mut shell, mut machine, mut inputs, _host) = lab.start().await;
    until_active(&mut shell, &mut machine, &mut inputs).await;
    let on = maintenance(&mut shell, &mut machine, &mut inputs, true).await;
    assert!(on.ok, "{on:?}");
    shell.look(&machine);
    let status = ask(&mut shell, &mut machine, &mut inputs, Command::Status)
        .await
        .status
        .expect("a status document");
    let history = status.history;
    let changes: Vec<_> = history
        .changes
        .iter()
        .map(|c| format!("{} {}->{}: {}", c.node, c.from, c.to, c.reason))
        .collect();
    assert_eq!(
        changes,
        ["alpha starting->active: no peer answered within init_dead"]
    );
    assert!(history.since_unix_ms > 0 && history.since_unix_ms <= history.changes[0].unix_ms);
    assert_eq!(history.maintenance.len(), 1);
    assert!(history.maintenance[0].on);
}

#[tokio::test]
async fn reload_applies_a_good_file_and_keeps_the_running_one_otherwise() {
    let lab = Lab::new("reload");
    let (mut shell, mut machine, mut inputs, _host) = lab.start().await;

    lab.write(150);
    let applied = ask(&mut shell, &mut machine, &mut inputs, Command::Reload).await;
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
    let broken = ask(&mut shell, &mut machine, &mut inputs, Command::Reload).await;
    assert!(!broken.ok);
    let error = broken.error.unwrap_or_default();
    // `failoverd reload` prints it after "reload refused: ": no second prefix.
    assert!(error.starts_with("line "), "{error}");
    assert!(error.contains("timing.interval"), "names the key: {error}");

    lab.write(120);
    let text = fs::read_to_string(lab.path())
        .unwrap()
        .replace(&format!("port = {}", lab.port()), "port = 1");
    fs::write(lab.path(), text).unwrap();
    let refused = reload(&mut shell, &mut machine, &mut inputs).await;
    let Err(ReloadFailure::Refused(err @ ReloadError::ClusterChanged { .. })) = refused else {
        panic!("{refused:?}");
    };
    assert_eq!(
        err.to_string(),
        format!(
            "the port ({} -> 1) changed: restart the daemons to apply",
            lab.port()
        )
    );

    let status = ask(&mut shell, &mut machine, &mut inputs, Command::Status)
        .await
        .status
        .unwrap();
    assert_eq!(status.priority, 150, "the last good file is still in force");
    assert_eq!(shell.config.cluster.port, lab.port());
}

/// Once asked to stop, the node only hands over: a reload would change the hooks,
/// VIPs or timers of the release under way, so it is refused and nothing is read.
#[tokio::test]
async fn a_reload_while_stopping_is_refused() {
    let lab = Lab::new("reload-stopping");
    let (mut shell, mut machine, mut inputs, _host) = lab.start().await;
    machine.handle(Instant::now().into_std(), Input::Shutdown);
    lab.write(150);
    let (reply, answer) = oneshot::channel();
    shell.answer(
        &mut machine,
        Pending {
            command: Command::Reload,
            reply,
        },
    );
    let answer = answer.await.expect("an answer at once");
    assert!(!answer.ok);
    assert_eq!(answer.error.as_deref(), Some("the daemon is stopping"));
    let read = tokio::time::timeout(Duration::from_millis(300), inputs.loaded.recv()).await;
    assert!(read.is_err(), "the file was read");
}

/// A stop that begins while the file is being read wins too: the file read for the
/// reload is not applied.
#[tokio::test]
async fn a_reload_under_way_when_the_stop_begins_is_not_applied() {
    let lab = Lab::new("reload-then-stop");
    let (mut shell, mut machine, mut inputs, _host) = lab.start().await;
    lab.write(150);
    shell.begin_reload(&machine, None);
    machine.handle(Instant::now().into_std(), Input::Shutdown);
    let loaded = tokio::time::timeout(Duration::from_secs(5), inputs.loaded.recv())
        .await
        .expect("the file is read within 5 s")
        .expect("the loader is running");
    let result = shell.finish_reload(&mut machine, loaded);
    assert!(matches!(result, Err(ReloadFailure::Stopping)), "{result:?}");
    let status = machine.status(Instant::now().into_std(), SystemTime::now());
    assert_eq!(status.priority, 200, "the file was applied while stopping");
}

/// A reload leaves the control socket and the status page where they are, and its
/// answer says when the file moved them; a path given on the command line is no
/// change of the file's.
#[tokio::test]
async fn a_reload_says_when_control_or_http_needs_a_restart() {
    let lab = Lab::new("reload-restart");
    let (mut shell, mut machine, mut inputs, _host) = lab.start().await;
    let running = shell.config.control.clone();

    lab.write_edited(200, |s| s.set("http.listen", "127.0.0.1:9469"));
    let answer = ask(&mut shell, &mut machine, &mut inputs, Command::Reload).await;
    assert_eq!(
        answer.message.as_deref(),
        Some("configuration reloaded; [http] changed in the file: restart the daemon to apply"),
        "{answer:?}"
    );
    assert_eq!(
        shell.config.http.listen, None,
        "the page is not listening yet"
    );

    lab.write_edited(150, |s| {
        s.set("http.listen", "127.0.0.1:9469").set(
            "control.socket",
            format!("{}/elsewhere.sock", lab.dir.display()),
        )
    });
    let answer = ask(&mut shell, &mut machine, &mut inputs, Command::Reload).await;
    assert_eq!(
        answer.message.as_deref(),
        Some(
            "configuration reloaded: priority 200 -> 150; [control] and [http] changed in \
             the file: restart the daemon to apply"
        ),
        "{answer:?}"
    );
    assert_eq!(shell.config.control, running);

    // Started with `--socket` elsewhere: the file's own path is no change.
    shell.overrides = ControlOverrides {
        socket: Some(lab.dir.join("override.sock")),
        state_dir: None,
    };
    shell.config = Arc::new(Config {
        control: shell.overrides.apply(shell.config.control.clone()),
        ..(*shell.config).clone()
    });
    lab.write(150);
    let answer = ask(&mut shell, &mut machine, &mut inputs, Command::Reload).await;
    assert_eq!(
        answer.message.as_deref(),
        Some("configuration reloaded: nothing changed"),
        "{answer:?}"
    );
    assert_eq!(shell.config.control.socket, lab.dir.join("override.sock"));
}

/// The answer names every change a reload applied, those the shell makes itself
/// (the key, `[events]`, `[scheduling]`, what only a check's runner uses) as well
/// as the machine's: "nothing changed" would send an operator looking for a typo
/// in a file that took.
#[tokio::test]
async fn a_reload_names_every_change_it_applies() {
    let lab = Lab::new("reload-named");
    let (mut shell, mut machine, mut inputs, _host) = lab.start().await;
    let check = |timeout: &str| {
        format!(
            "[[check]]\nname = \"app\"\nkind = \"exec\"\ncommand = [\"/bin/true\"]\n\
             interval = \"1s\"\ntimeout = \"{timeout}\"\n"
        )
    };
    let edits = |s: Sample| {
        s.set("events.keep", 300)
            .set("scheduling.lock_memory", false)
            .set("split_brain.live_vip", r#""take""#)
    };

    fs::write(
        lab.dir.join("authkey"),
        "shell-test-key-rotated-9876543210\n",
    )
    .unwrap();
    lab.write_edited(200, |s| edits(s).append(&check("1s")));
    let answer = ask(&mut shell, &mut machine, &mut inputs, Command::Reload).await;
    assert_eq!(
        answer.message.as_deref(),
        Some("configuration reloaded: health checks, split-brain guard, key, events, scheduling"),
        "{answer:?}"
    );
    assert_eq!(shell.config.events.keep, 300);

    // A peer's priority and address, and a check's timeout, which the machine's
    // view of the check leaves out.
    lab.write_edited(200, |s| {
        edits(s)
            .set("node[1].priority", 120)
            .set(
                "node[1].addresses",
                r#"{ crossover = "127.0.0.2", lan = "127.0.0.5" }"#,
            )
            .append(&check("500ms"))
    });
    let answer = ask(&mut shell, &mut machine, &mut inputs, Command::Reload).await;
    assert_eq!(
        answer.message.as_deref(),
        Some(
            "configuration reloaded: peer beta priority 100 -> 120 (in effect once beta runs \
             with it), peer beta addresses, health checks"
        ),
        "{answer:?}"
    );

    let answer = ask(&mut shell, &mut machine, &mut inputs, Command::Reload).await;
    assert_eq!(
        answer.message.as_deref(),
        Some("configuration reloaded: nothing changed"),
        "{answer:?}"
    );
}

/// `[scheduling] raw_send` reaches every link's sender at start and with every
/// reload. The raw sockets need root, as CI runs this test.
#[tokio::test]
async fn a_reload_turns_raw_sends_off_and_on_again() {
    let lab = Lab::new("reload-raw");
    let (mut shell, mut machine, mut inputs, _host) = lab.start().await;
    let raw = |shell: &Shell<Recorder>| -> Vec<bool> {
        (shell.senders.iter().flatten())
            .map(super::send::Sender::has_raw)
            .collect()
    };
    assert_eq!(
        raw(&shell),
        [true, true],
        "no raw sockets: this test must run as root"
    );
    lab.write_edited(200, |sample| sample.set("scheduling.raw_send", false));
    reload(&mut shell, &mut machine, &mut inputs)
        .await
        .expect("raw_send = false is reloaded");
    assert_eq!(raw(&shell), [false, false]);
    lab.write(200);
    reload(&mut shell, &mut machine, &mut inputs)
        .await
        .expect("the default is reloaded");
    assert_eq!(raw(&shell), [true, true]);
    // The status counts each link's raw sends under the link's name: three more on
    // the LAN (a UDP send first vouches for the destination), none that failed.
    let sent = |shell: &Shell<Recorder>| -> Vec<u64> {
        (shell.senders.iter().flatten())
            .map(super::send::Sender::sent_raw)
            .collect()
    };
    let before = sent(&shell);
    let to = std::net::SocketAddr::from(([127, 0, 0, 4], lab.port()));
    let now = std::time::Instant::now();
    let lan = shell.senders[1].as_mut().expect("alpha is on the LAN");
    for _ in 0..4 {
        lan.send(&[7u8; 64], to, now)
            .expect("sent to beta's LAN address");
    }
    let counted = sent(&shell);
    assert_eq!(counted, [before[0], before[1] + 3]);
    let counters = shell.status(&machine).counters;
    assert_eq!(
        counters.sent_raw,
        [
            ("crossover".to_string(), counted[0]),
            ("lan".to_string(), counted[1])
        ]
    );
    assert_eq!(
        counters.raw_failed,
        [("crossover".to_string(), 0), ("lan".to_string(), 0)]
    );
}

/// `[hooks] user` reaches the host at start and with every reload, so the next hook
/// runs as the file says without a restart.
#[tokio::test]
async fn a_reload_gives_the_host_the_new_hooks_user() {
    let lab = Lab::new("reload-user");
    let (mut shell, mut machine, mut inputs, host) = lab.start().await;
    assert_eq!(host.hook_user(), None);

    lab.write_edited(200, |sample| sample.set("hooks.user", "root"));
    let applied = ask(&mut shell, &mut machine, &mut inputs, Command::Reload).await;
    assert!(applied.ok, "{applied:?}");
    assert_eq!(host.hook_user().as_deref(), Some("root (uid 0, gid 0)"));

    lab.write(200);
    let applied = ask(&mut shell, &mut machine, &mut inputs, Command::Reload).await;
    assert!(applied.ok, "{applied:?}");
    assert_eq!(host.hook_user(), None);
}

/// A start that fails on a heartbeat port in use leaves no control socket file.
#[tokio::test]
async fn a_start_that_fails_to_bind_leaves_no_control_socket() {
    let lab = Lab::new("bind");
    let config = Config::load(&lab.path()).expect("the test configuration is valid");
    let taken = std::net::UdpSocket::bind(("127.0.0.3", lab.port())).unwrap();
    let err = match Listeners::bind(&config, 0).await {
        Ok(_) => panic!("bound a port in use"),
        Err(err) => err,
    };
    assert!(matches!(err, DaemonError::Bind { .. }), "{err}");
    assert!(
        !config.control.socket.exists(),
        "left {}",
        config.control.socket.display()
    );
    drop(taken);
}

/// A daemon that found the note of a killed release and is stopped before its
/// look for VIPs is answered does not know whether they are still there: it keeps
/// the note, for the next start to act on.
#[tokio::test]
async fn a_stop_before_the_vips_are_looked_up_keeps_a_release_note() {
    let lab = Lab::new("keep-note");
    let state = lab.dir.join("state");
    fs::create_dir_all(&state).unwrap();
    fs::write(state.join(control::RELEASE_NOTE), "on\n").unwrap();
    let (mut shell, mut machine, mut inputs, host) = lab.start().await;
    assert!(machine.release_noted());
    stop(&mut shell, &mut machine, &mut inputs).await;
    let calls = host.calls();
    assert!(
        !calls.iter().any(|c| c == "note release false"),
        "{calls:?}"
    );
}

#[tokio::test]
async fn a_graceful_stop_releases_through_the_host_then_exits() {
    let lab = Lab::new("stop");
    let (mut shell, mut machine, mut inputs, host) = lab.start().await;
    until_active(&mut shell, &mut machine, &mut inputs).await;
    stop(&mut shell, &mut machine, &mut inputs).await;
    let calls = host.calls();
    let last_add = calls.iter().rposition(|c| c.starts_with("add")).unwrap();
    let remove = calls.iter().rposition(|c| c.starts_with("remove")).unwrap();
    assert!(last_add < remove, "{calls:?}");
    // The release was noted before its removals, and the note is gone by the exit,
    // not left to the executor's queue, which the exit would race; so is the start
    // hook's, whose removal may wait in that queue behind the release.
    let noted = calls.iter().position(|c| c == "note release true");
    assert!(noted.is_some_and(|n| n < remove), "{calls:?}");
    assert_eq!(
        calls[calls.len().saturating_sub(2)..],
        ["note release false", "note starting false"],
        "{calls:?}"
    );
    assert_eq!(
        machine.poll_timeout(),
        None,
        "an exited machine sleeps for good"
    );
}

/// The runs of check `name` so far, as the machine counts them.
fn runs(machine: &Machine, name: &str) -> u64 {
    let status = machine.status(Instant::now().into_std(), SystemTime::now());
    let check = status.health.checks.iter().find(|c| c.name == name);
    check.unwrap_or_else(|| panic!("no check {name}")).runs
}

#[tokio::test]
async fn active_only_checks_run_once_the_service_is_up_and_exec_checks_see_the_role() {
    let lab = Lab::new("active-checks");
    let said = lab.dir.join("role");
    let script = lab.dir.join("role.sh");
    fs::write(
        &script,
        format!("#!/bin/sh\necho \"$FAILOVERD_ROLE\" > {}\n", said.display()),
    )
    .unwrap();
    fs::set_permissions(&script, fs::Permissions::from_mode(0o755)).unwrap();
    lab.write_with(
        200,
        &format!(
            "[[check]]\nname = \"role\"\nkind = \"exec\"\ncommand = [\"{}\"]\n\
             interval = \"100ms\"\n\n\
             [[check]]\nname = \"app\"\nkind = \"link\"\ninterface = \"app0\"\n\
             on = \"active\"\ninterval = \"20ms\"\n",
            script.display()
        ),
    );
    let (mut shell, mut machine, mut inputs, host) = lab.start().await;
    let ran = |m: &Machine| runs(m, "role") >= 1;
    assert_eq!(
        pump(&mut shell, &mut machine, &mut inputs, ran).await,
        Pumped::Done
    );
    assert_eq!(
        runs(&machine, "app"),
        0,
        "not active: the app is not checked"
    );

    until_active(&mut shell, &mut machine, &mut inputs).await;
    let started = |m: &Machine| {
        runs(m, "app") > 0 && host.calls().iter().any(|c| c.starts_with("hook start"))
    };
    assert_eq!(
        pump(&mut shell, &mut machine, &mut inputs, started).await,
        Pumped::Done
    );
    let told = |_: &Machine| fs::read_to_string(&said).is_ok_and(|r| r == "active\n");
    assert_eq!(
        pump(&mut shell, &mut machine, &mut inputs, told).await,
        Pumped::Done,
        "FAILOVERD_ROLE follows the machine"
    );

    machine.handle(Instant::now().into_std(), Input::Shutdown);
    let never = |_: &Machine| false;
    assert_eq!(
        pump(&mut shell, &mut machine, &mut inputs, never).await,
        Pumped::Exited
    );
    // Released: what is still queued may be the app's, nothing after it.
    let drained = Instant::now() + Duration::from_millis(150);
    while let Ok(Some(_)) = tokio::time::timeout_at(drained, shell.checks.recv()).await {}
    let until = Instant::now() + Duration::from_millis(200);
    while let Ok(Some(report)) = tokio::time::timeout_at(until, shell.checks.recv()).await {
        assert_eq!(
            report.index, 0,
            "only the role check runs after the release"
        );
    }
}

#[tokio::test]
async fn a_reload_that_changes_the_checks_renumbers_their_runs_too() {
    let lab = Lab::new("reload-checks");
    let check = |name: &str, interface: &str| {
        format!(
            "[[check]]\nname = \"{name}\"\nkind = \"link\"\ninterface = \"{interface}\"\n\
             interval = \"20ms\"\nrise = 1\nfall = 1\n"
        )
    };
    lab.write_with(200, &check("down", "down0"));
    let (mut shell, mut machine, mut inputs, _host) = lab.start().await;
    let failing = |m: &Machine| runs(m, "down") >= 2;
    assert_eq!(
        pump(&mut shell, &mut machine, &mut inputs, failing).await,
        Pumped::Done
    );
    lab.write_with(
        200,
        &format!("{}\n{}", check("up", "eth0"), check("down", "down0")),
    );
    let applied = ask(&mut shell, &mut machine, &mut inputs, Command::Reload).await;
    assert!(applied.ok, "{applied:?}");
    let before = runs(&machine, "down");
    let both = |m: &Machine| runs(m, "up") >= 3 && runs(m, "down") > before;
    assert_eq!(
        pump(&mut shell, &mut machine, &mut inputs, both).await,
        Pumped::Done
    );
    let status = machine.status(Instant::now().into_std(), SystemTime::now());
    let up = status
        .health
        .checks
        .iter()
        .find(|c| c.name == "up")
        .unwrap();
    // A run of the old check 0 under its new index would have failed "up".
    assert_eq!(up.consecutive_failures, 0, "{up:?}");
    assert_eq!(up.state, crate::status::CheckState::Passing);
}

/// A server that takes connections (so a client's request goes out) and never
/// answers. Each connection is held for a while, then dropped: by then its client
/// gave up.
struct Silent {
    address: SocketAddr,
    accepted: Arc<std::sync::atomic::AtomicUsize>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Silent {
    fn start(hold: Duration) -> Silent {
        use std::sync::atomic::Ordering;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let address = listener.local_addr().unwrap();
        let accepted = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (count, stopped) = (Arc::clone(&accepted), Arc::clone(&stop));
        let thread = std::thread::spawn(move || {
            let limit = std::time::Instant::now() + Duration::from_secs(60);
            let mut held = std::collections::VecDeque::new();
            while !stopped.load(Ordering::Relaxed) && std::time::Instant::now() < limit {
                match listener.accept() {
                    Ok((stream, _)) => {
                        held.push_back((std::time::Instant::now(), stream));
                        count.fetch_add(1, Ordering::Relaxed);
                        continue;
                    }
                    Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => {}
                    Err(_) => {}
                }
                while held.front().is_some_and(|(at, _)| at.elapsed() > hold) {
                    held.pop_front();
                }
                std::thread::sleep(Duration::from_millis(2));
            }
        });
        Silent {
            address,
            accepted,
            stop,
            thread: Some(thread),
        }
    }

    fn accepted(&self) -> usize {
        self.accepted.load(std::sync::atomic::Ordering::Relaxed)
    }
}

impl Drop for Silent {
    fn drop(&mut self) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Room for a few thousand sockets, whatever the soft limit this test started with.
fn raise_open_files(want: u64) {
    let mut limit = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit and setrlimit only read and write the struct given.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut limit) == 0 && limit.rlim_cur < want {
            limit.rlim_cur = want.min(limit.rlim_max);
            libc::setrlimit(libc::RLIMIT_NOFILE, &limit);
        }
    }
}

/// How late a heartbeat may be, beyond its interval, with a thousand checks
/// hanging: scheduling on a loaded two-core CI box, and the loop taking in a burst
/// of a thousand failed runs. A loop that waited on a check even once would be late
/// by the checks' timeout, 500 ms.
const HEARTBEAT_SLACK: Duration = Duration::from_millis(150);

/// The most of a stall of the whole host, as a thread that only sleeps (at the
/// loop's priority) sees it, that a heartbeat's bound takes in besides
/// [`HEARTBEAT_SLACK`]: enough for a host that stops everything for a moment, and
/// little enough that the interval, the slack and this stay below the checks'
/// 500 ms timeout, so a loop that waited on a check still fails.
const HOST_STALL_ALLOWANCE: Duration = Duration::from_millis(250);

/// The calling thread at the daemon's default realtime priority until dropped.
struct Realtime;

impl Realtime {
    fn enter() -> std::io::Result<Realtime> {
        super::scheduling::set_policy(0, crate::config::Scheduling::default().realtime_priority)
            .map(|()| Realtime)
    }
}

impl Drop for Realtime {
    fn drop(&mut self) {
        let _ = super::scheduling::set_policy(0, 0);
    }
}

/// The longest a thread that sleeps `step` at a time overslept, until `until`: what
/// the host's scheduling alone did to the test's threads meanwhile.
fn oversleep(step: Duration, until: std::time::Instant) -> Duration {
    let mut worst = Duration::ZERO;
    loop {
        let before = std::time::Instant::now();
        if before >= until {
            return worst;
        }
        std::thread::sleep(step);
        worst = worst.max(before.elapsed().saturating_sub(step));
    }
}

/// The issue's promise: checks never run on the thread that sends heartbeats and
/// never delay them. A thousand http checks hang on a server that takes their
/// connections and never answers, each until its timeout, run after run, and fail
/// (each failure an event and a heartbeat out of turn), while alpha sends a
/// heartbeat every 20 ms through the real loop; beta's socket sees no gap longer
/// than the interval and [`HEARTBEAT_SLACK`], and whatever stall of the host a
/// thread that only sleeps saw meanwhile, up to [`HOST_STALL_ALLOWANCE`].
#[tokio::test]
async fn a_thousand_hanging_checks_leave_the_heartbeats_on_time() {
    const CHECKS: usize = 1000;
    const RUN: Duration = Duration::from_secs(3);
    let interval = Duration::from_millis(20);
    raise_open_files(8192);
    let server = Silent::start(Duration::from_secs(1));
    let lab = Lab::new("thousand");
    let mut tables = String::new();
    for i in 0..CHECKS {
        tables.push_str(&format!(
            "[[check]]\nname = \"slow-{i}\"\nkind = \"http\"\nurl = \"http://{}/\"\n\
             interval = \"500ms\"\ntimeout = \"500ms\"\nfall = 1\nweight = 0\n\n",
            server.address
        ));
    }
    lab.write_with(200, &tables);
    let (shell, machine, inputs, _host) = lab.start().await;

    let peer = lab.peer[0].try_clone().unwrap();
    peer.set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    let started = std::time::Instant::now();
    let listen_until = started + RUN + Duration::from_secs(1);
    let listener = std::thread::spawn(move || {
        // Realtime too where it may be, so that the times are the datagrams' and not
        // a starved reader's.
        let _realtime = Realtime::enter();
        let mut arrivals = Vec::new();
        let mut buf = [0u8; 2048];
        while std::time::Instant::now() < listen_until {
            if peer.recv_from(&mut buf).is_ok() {
                arrivals.push(std::time::Instant::now());
            }
        }
        arrivals
    });
    // At the loop's priority too: a stall it sees is one the loop suffers as well,
    // not the checks' runner taking a core from a normal thread.
    let control = std::thread::spawn(move || {
        let _realtime = Realtime::enter();
        oversleep(interval, started + RUN)
    });
    // The daemon's heartbeat thread runs at realtime priority (`[scheduling]`), which
    // keeps it ahead of the check thread's bursts and of other tests' threads; so does
    // this one where the test may (as root, as CI runs it). Threads it starts from now
    // on start at normal priority, as the daemon's do.
    let realtime = Realtime::enter();
    let shutdown = tokio::time::sleep(RUN);
    tokio::time::timeout(
        Duration::from_secs(15),
        shell.run(machine, inputs, shutdown),
    )
    .await
    .expect("the shell hands over and exits");
    let arrivals = listener.join().unwrap();
    let stall = control.join().unwrap();

    let stop = started + RUN;
    let mut edges = vec![started];
    edges.extend(arrivals.iter().copied().filter(|at| *at <= stop));
    edges.push(stop);
    let worst = edges
        .windows(2)
        .map(|pair| pair[1] - pair[0])
        .max()
        .unwrap();
    eprintln!(
        "{} datagrams in {RUN:?}, the longest gap {worst:?}, a sleeping thread \
         overslept by {stall:?} at most, {} connections taken, the loop {}",
        arrivals.len(),
        server.accepted(),
        realtime.as_ref().map_or_else(
            |err| format!("at normal priority ({err})"),
            |_| "at realtime priority".to_string()
        )
    );
    let bound = interval + HEARTBEAT_SLACK + stall.min(HOST_STALL_ALLOWANCE);
    assert!(
        worst <= bound,
        "a heartbeat came {worst:?} after the one before (bound {bound:?}, a \
         sleeping thread overslept by {stall:?} at most)"
    );
    assert!(
        server.accepted() >= CHECKS,
        "every check hung on the server at least once: {} connections",
        server.accepted()
    );
}

/// The watchdog pings systemd has from the real loop over its first second, with a
/// heartbeat every `interval` and a ping wanted every 100 ms.
async fn watchdog_pings(name: &str, interval: &str) -> usize {
    const RUN: Duration = Duration::from_millis(1000);
    let lab = Lab::new(name);
    lab.write_edited(200, |sample| {
        // A dead time of three intervals, as the file asks, however long they are.
        let ms: u64 = interval.trim_end_matches("ms").parse().unwrap();
        sample
            .set("timing.interval", interval)
            .set("timing.warn", format!("{}ms", 2 * ms))
            .set("timing.dead", format!("{}ms", 3 * ms))
            .set("timing.init_dead", format!("{}ms", 5 * ms))
    });
    let (mut shell, machine, inputs, _host) = lab.start().await;
    let path = lab.dir.join("notify.sock");
    let systemd = std::os::unix::net::UnixDatagram::bind(&path).unwrap();
    systemd
        .set_read_timeout(Some(Duration::from_millis(50)))
        .unwrap();
    shell.systemd = notify::Notifier::for_socket(path.as_os_str());
    shell.watchdog = Some(Duration::from_millis(100));
    let started = std::time::Instant::now();
    let listen_until = started + RUN + Duration::from_millis(500);
    let listener = std::thread::spawn(move || {
        let mut pings = Vec::new();
        let mut buf = [0u8; 512];
        while std::time::Instant::now() < listen_until {
            if let Ok(n) = systemd.recv(&mut buf)
                && &buf[..n] == b"WATCHDOG=1"
            {
                pings.push(std::time::Instant::now());
            }
        }
        pings
    });
    tokio::time::timeout(
        Duration::from_secs(10),
        shell.run(machine, inputs, tokio::time::sleep(RUN)),
    )
    .await
    .expect("the shell hands over and exits");
    let pings = listener.join().unwrap();
    pings.iter().filter(|at| **at <= started + RUN).count()
}

/// The loop's chores ride on its turns (see `chore`): systemd's watchdog, wanted
/// every 100 ms, is pinged about that often through the real loop, neither on every
/// turn of a loop that beats every 20 ms nor only on the turns of one that beats
/// every 400 ms. Ten are due in the second; a loaded machine may lose a few.
#[tokio::test]
async fn the_real_loop_pings_the_watchdog_as_often_as_systemd_asks_and_no_more() {
    let often = watchdog_pings("watchdog-20", "20ms").await;
    assert!(
        (5..=12).contains(&often),
        "{often} pings at a 20 ms interval"
    );
    let seldom = watchdog_pings("watchdog-400", "400ms").await;
    assert!(
        (5..=12).contains(&seldom),
        "{seldom} pings at a 400 ms interval"
    );
}

/// A heartbeat of beta, active at priority 100, in the lab's cluster.
fn sample_heartbeat(link: u8, flags: u8, sequence: u64) -> Heartbeat<'static> {
    Heartbeat {
        link,
        state: WireState::Active,
        flags,
        health: 0,
        priority: 100,
        incarnation: 1,
        sequence,
        fingerprint: [0; 8],
        nonce: 1,
        echo: 0,
        votes: None,
        quiet: false,
        wake: false,
        cluster: "shell".into(),
        node: "beta".into(),
    }
}

/// Heartbeats from a peer's own address that fail authentication (the peer runs
/// with another key) are counted against that address, for the status to say so,
/// and logged with the peer's name, the link and what to compare; the same from
/// a stranger's address are not.
#[tokio::test]
async fn a_peer_whose_key_differs_is_named_where_its_heartbeats_are_refused() {
    let lab = Lab::new("unauthentic");
    let config = Config::load(&lab.path()).unwrap();
    let bind = |address: &str| {
        let socket = std::net::UdpSocket::bind(address).unwrap();
        socket.set_nonblocking(true).unwrap();
        Some(listen::LinkSockets::single(
            listen::watch_for_reading(socket).unwrap(),
        ))
    };
    let sockets = vec![bind("127.0.0.1:0"), bind("127.0.0.3:0")];
    let to = (sockets[0].as_ref().unwrap().peers.get_ref())
        .local_addr()
        .unwrap();
    let (mut intake, mut datagrams) = receive::start(&config, 0, &sockets);
    let theirs = Signer::new(b"beta's key, which is not alpha's");
    let mut bytes = Vec::new();
    sample_heartbeat(0, 0, 1).encode(&theirs, &mut bytes);
    lab.peer[0].send_to(&bytes, to).unwrap();
    let stranger = std::net::UdpSocket::bind("127.0.0.9:0").unwrap();
    stranger.send_to(&bytes, to).unwrap();
    // The first drop since the last report wakes the loop; the next is read on.
    let received = tokio::time::timeout(Duration::from_secs(5), datagrams.recv()).await;
    assert!(matches!(received, Ok(Some(Received::Dropped))));
    assert!(datagrams.try_recv().is_none());
    let beta: IpAddr = "127.0.0.2".parse().unwrap();
    let now = std::time::Instant::now();
    let (refused, ago) = intake.unauthentic("crossover", beta, now);
    assert_eq!(refused, 1);
    assert!(ago.is_some(), "when the last came");
    let stranger: IpAddr = "127.0.0.9".parse().unwrap();
    assert_eq!(intake.unauthentic("crossover", stranger, now), (0, None));
    let (logging, captured) = crate::testing::Captured::dispatch();
    tracing::dispatcher::with_default(&logging, || intake.report(now));
    let said = captured.lines_with("failed authentication");
    assert_eq!(said.len(), 1, "{}", captured.text());
    assert!(
        said[0].contains(
            "1 heartbeat from beta's address 127.0.0.2 failed authentication: if beta \
             runs, the two nodes' key files differ"
        ) && said[0].contains("link=crossover"),
        "{}",
        said[0]
    );
}

#[tokio::test]
async fn each_link_drops_what_the_machine_would_reject_whatever_its_state() {
    use crate::machine::Reject;
    use crate::wire::heartbeat::DecodeError;

    let lab = Lab::new("filter");
    let config = Config::load(&lab.path()).unwrap();
    let filter = receive::Filter::new(&config, 0);
    let key = fs::read(lab.dir.join("authkey")).unwrap();
    let beat = |signer: &Signer, cluster: &str, node: &str, link: u8| {
        let hb = Heartbeat {
            state: WireState::Standby,
            cluster: cluster.into(),
            node: node.into(),
            ..sample_heartbeat(link, 0, 1)
        };
        let mut bytes = Vec::new();
        hb.encode(signer, &mut bytes);
        bytes
    };
    let ours = Signer::new(key.trim_ascii());
    let theirs = Signer::new(b"somebody else's key entirely");
    let beta_crossover: IpAddr = "127.0.0.2".parse().unwrap();
    let beta_lan: IpAddr = "127.0.0.4".parse().unwrap();
    let stranger: IpAddr = "127.0.0.9".parse().unwrap();
    let good = beat(&ours, "shell", "beta", 0);
    assert_eq!(filter.check(0, beta_crossover, &good).map(|_| ()), Ok(()));
    let cases = [
        (
            0,
            beta_crossover,
            vec![0u8; 7],
            Reject::Decode(DecodeError::Length),
        ),
        (
            0,
            beta_crossover,
            beat(&theirs, "shell", "beta", 0),
            Reject::Decode(DecodeError::Tag),
        ),
        (
            0,
            beta_crossover,
            beat(&ours, "other", "beta", 0),
            Reject::ForeignCluster,
        ),
        (
            0,
            beta_crossover,
            beat(&ours, "shell", "alpha", 0),
            Reject::UnknownNode,
        ),
        // beta's crossover heartbeat, but from its LAN address or on the LAN link.
        (0, beta_lan, good.clone(), Reject::WrongSource),
        (1, beta_lan, good.clone(), Reject::WrongSource),
        (0, stranger, good.clone(), Reject::WrongSource),
    ];
    for (link, from, bytes, reject) in cases {
        assert_eq!(filter.check(link, from, &bytes), Err(reject), "{reject}");
    }
}

/// A quiet standby's routine heartbeats wait in their socket for the loop's next
/// wake-up and reach the machine dated by their arrival, in the order they
/// arrived; news from the same peer comes at once; a forgery in the routine socket
/// ends the sorting on that link; and once the node is no longer quiet the socket
/// is still read for the datagrams sorted to it before, and no more are.
#[tokio::test]
async fn routine_heartbeats_wait_for_the_next_wake_up_and_count_from_their_arrival() {
    use crate::wire::heartbeat::{FLAG_RELEASING, Standing};

    let lab = Lab::new("routine");
    let config = Config::load(&lab.path()).unwrap();
    let key = fs::read(lab.dir.join("authkey")).unwrap();
    let ours = Signer::new(key.trim_ascii());
    let theirs = Signer::new(b"somebody else's key entirely");
    let bind = |address: &str, link| {
        let address = address.parse().unwrap();
        let (sockets, unsorted) =
            listen::link_sockets(address, &listen::peers_on(&config, 0, link)).unwrap();
        assert!(unsorted.is_none(), "{unsorted:?}");
        assert!(sockets.routine.is_some(), "a routine socket");
        Some(sockets)
    };
    let sockets = vec![bind("127.0.0.1:0", 0), bind("127.0.0.3:0", 1)];
    let to: Vec<std::net::SocketAddr> = (sockets.iter().flatten())
        .map(|s| s.peers.get_ref().local_addr().unwrap())
        .collect();
    let (intake, mut datagrams) = receive::start(&config, 0, &sockets);
    let read_late = |intake: &receive::Intake| {
        let mut counters = crate::status::Counters::default();
        intake.count_into(&mut counters);
        counters.read_late
    };
    // beta, active, as alpha last heard it; its heartbeats go out from the lab's
    // sockets at its addresses.
    let standing = Standing {
        state: WireState::Active,
        flags: 0,
        health: 0,
        quiet: false,
        wake: false,
        priority: 100,
    };
    let beat = |link: u8, flags: u8, signer: &Signer, sequence: u64| {
        let mut bytes = Vec::new();
        sample_heartbeat(link, flags, sequence).encode(signer, &mut bytes);
        bytes
    };
    let send = |link: usize, bytes: Vec<u8>| {
        lab.peer[link].send_to(&bytes, to[link]).unwrap();
    };
    let take = |datagrams: &mut receive::Datagrams| {
        let now = std::time::Instant::now();
        let mut taken = Vec::new();
        datagrams.take_deferred(now, |d, heard| {
            taken.push((d.link, heard));
            false
        });
        (now, taken)
    };
    // The next datagram read from a watched socket, which must be from `link`.
    async fn at_once(datagrams: &mut receive::Datagrams, link: usize, why: &str) {
        let received = tokio::time::timeout(Duration::from_secs(1), datagrams.recv())
            .await
            .unwrap_or_else(|_| panic!("{why}"));
        assert!(
            matches!(received, Some(Received::Heartbeat(d)) if d.link == link),
            "{why}"
        );
    }
    datagrams.sort_routine(Some(("beta", standing)));
    assert!(datagrams.deferring());
    assert_eq!(intake.reading_late(), ["crossover", "lan"]);
    // The kernel stamps arrivals for the whole host from a moment after the first
    // socket asks (a static key switched on by a work queue); until then it stamps
    // a datagram when it is read. Wait until a heartbeat is stamped on arrival.
    for attempt in 1.. {
        send(0, beat(0, 0, &ours, 1));
        tokio::time::sleep(Duration::from_millis(30)).await;
        let (read, taken) = take(&mut datagrams);
        if taken
            .iter()
            .all(|(_, heard)| *heard + Duration::from_millis(20) <= read)
        {
            break;
        }
        assert!(attempt < 100, "the kernel never stamped arrivals");
    }
    let counted = read_late(&intake);

    let sent = std::time::Instant::now();
    send(1, beat(1, 0, &ours, 1));
    send(0, beat(0, 0, &ours, 1));
    tokio::time::sleep(Duration::from_millis(50)).await;
    assert!(
        datagrams.try_recv().is_none(),
        "routine heartbeats reached the watched sockets"
    );
    let (read, taken) = take(&mut datagrams);
    assert_eq!(
        taken.iter().map(|(link, _)| *link).collect::<Vec<_>>(),
        [1, 0],
        "in the order they arrived"
    );
    let more: Vec<_> = (read_late(&intake).into_iter().zip(counted))
        .map(|((link, now), (_, before))| (link, now - before))
        .collect();
    let each = [("crossover".to_string(), 1), ("lan".to_string(), 1)];
    assert_eq!(more, each, "counted for the status");
    for (link, heard) in &taken {
        assert!(
            *heard >= sent && *heard + Duration::from_millis(40) <= read,
            "link {link}: dated {:?} after the send, read {:?} after it",
            heard.duration_since(sent),
            read.duration_since(sent)
        );
    }

    // News from beta: read at once, from the watched socket.
    send(0, beat(0, FLAG_RELEASING, &ours, 2));
    at_once(&mut datagrams, 0, "news is read at once").await;

    // A forgery with beta's standing from its address: refused, and the crossover
    // reads everything at once from then on, while the LAN still defers. The log
    // says so once, however many forgeries follow.
    let (logging, captured) = crate::testing::Captured::dispatch();
    for sequence in [3, 4] {
        send(0, beat(0, 0, &theirs, sequence));
        tokio::time::sleep(Duration::from_millis(20)).await;
        let (_, taken) = tracing::dispatcher::with_default(&logging, || take(&mut datagrams));
        assert!(taken.is_empty(), "a forgery was taken: {taken:?}");
    }
    let said = captured.lines_with("read at once");
    assert_eq!(said.len(), 1, "{}", captured.text());
    assert!(
        said[0].contains("WARN")
            && said[0].contains("link=crossover")
            && said[0].contains("refused"),
        "{}",
        said[0]
    );
    datagrams.sort_routine(Some(("beta", standing)));
    assert_eq!(intake.reading_late(), ["lan"]);
    send(0, beat(0, 0, &ours, 5));
    at_once(
        &mut datagrams,
        0,
        "a distrusted link reads every heartbeat at once",
    )
    .await;
    send(1, beat(1, 0, &ours, 4));
    tokio::time::sleep(Duration::from_millis(20)).await;
    assert!(datagrams.try_recv().is_none(), "the LAN stopped deferring");

    // No longer quiet: what was sorted before is still read, for a while.
    datagrams.sort_routine(None);
    assert!(datagrams.deferring());
    let (_, taken) = take(&mut datagrams);
    assert_eq!(taken.len(), 1, "the LAN's last routine heartbeat");
    assert!(datagrams.deferring(), "read on for a while, for stragglers");
    send(1, beat(1, 0, &ours, 5));
    at_once(
        &mut datagrams,
        1,
        "routine heartbeats are read at once again",
    )
    .await;

    // Quiet again (the crossover still distrusted): a routine heartbeat that
    // passes the filter but that the machine refuses, a recording, ends the
    // sorting on its link as a forgery does.
    datagrams.sort_routine(Some(("beta", standing)));
    assert_eq!(intake.reading_late(), ["lan"]);
    send(1, beat(1, 0, &ours, 5));
    tokio::time::sleep(Duration::from_millis(20)).await;
    let (logging, captured) = crate::testing::Captured::dispatch();
    let mut refused = 0;
    tracing::dispatcher::with_default(&logging, || {
        datagrams.take_deferred(std::time::Instant::now(), |_, _| {
            refused += 1;
            true
        });
    });
    assert_eq!(refused, 1, "the recording reached the machine");
    let said = captured.lines_with("read at once");
    assert!(
        said.len() == 1 && said[0].contains("link=lan") && said[0].contains("refused"),
        "{}",
        captured.text()
    );
    datagrams.sort_routine(Some(("beta", standing)));
    assert!(intake.reading_late().is_empty(), "the LAN still sets aside");
}

/// A second daemon of the same file is refused at the control socket before it
/// binds a heartbeat port, where its sockets would join the running daemon's
/// SO_REUSEPORT group and take some of its heartbeats (see `listen::link_sockets`).
#[tokio::test]
async fn a_second_daemon_is_refused_before_it_touches_a_heartbeat_port() {
    let lab = Lab::new("second");
    // The running daemon holds alpha's crossover port, alone, so that a bind there
    // would fail on its own; the file names the port the kernel gave it.
    let held = std::net::UdpSocket::bind("127.0.0.1:0").expect("the first daemon's heartbeat port");
    let port = held.local_addr().unwrap().port();
    lab.write_edited(200, |sample| sample.set("cluster.port", port));
    let config = Config::load(&lab.path()).unwrap();
    assert_eq!(
        config.nodes[0].addresses[0],
        Some(held.local_addr().unwrap().ip())
    );
    // And its control socket answers.
    let _running = control::bind(&config.control).expect("the first daemon's control socket");
    let refused = Listeners::bind(&config, 0)
        .await
        .err()
        .expect("a second daemon is refused");
    assert!(
        matches!(
            refused,
            DaemonError::Control(control::ControlError::InUse { .. })
        ),
        "refused for another reason first: {refused}"
    );
}

/// The links' sockets sit behind a gate, polled only once one of them woke the
/// loop: a heartbeat that comes while the loop waits wakes it and is read, the
/// first time and after the loop took what was ready without waiting.
#[tokio::test]
async fn behind_their_gate_the_links_still_wake_the_loop_for_every_heartbeat() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::task::{Context, Poll, Wake, Waker};

    struct Count(AtomicUsize);
    impl Wake for Count {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::SeqCst);
        }
    }

    let lab = Lab::new("gated");
    let config = Config::load(&lab.path()).unwrap();
    let key = fs::read(lab.dir.join("authkey")).unwrap();
    let signer = Signer::new(key.trim_ascii());
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.set_nonblocking(true).unwrap();
    let to = socket.local_addr().unwrap();
    let sockets = vec![
        Some(listen::LinkSockets::single(
            listen::watch_for_reading(socket).unwrap(),
        )),
        None,
    ];
    let (_intake, mut datagrams) = receive::start(&config, 0, &sockets);
    let count = Arc::new(Count(AtomicUsize::new(0)));
    let waker = Waker::from(Arc::clone(&count));
    // One poll of `recv` as the loop's select makes it, with the loop's waker.
    let poll_once = |datagrams: &mut receive::Datagrams| {
        let mut recv = std::pin::pin!(datagrams.recv());
        match recv.as_mut().poll(&mut Context::from_waker(&waker)) {
            Poll::Ready(received) => Some(received),
            Poll::Pending => None,
        }
    };
    // Waits, with the runtime turning, until the loop's waker has been woken.
    async fn woken(count: &Count, times: usize, why: &str) {
        for _ in 0..200 {
            if count.0.load(Ordering::SeqCst) >= times {
                return;
            }
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        panic!("{why}");
    }
    let send = |sequence: u64| {
        let mut bytes = Vec::new();
        sample_heartbeat(0, 0, sequence).encode(&signer, &mut bytes);
        lab.peer[0].send_to(&bytes, to).unwrap();
    };

    assert!(poll_once(&mut datagrams).is_none(), "nothing has come yet");
    // The gate is shut now. What the loop takes without waiting must leave the
    // sockets holding a waker that opens it.
    assert!(datagrams.try_recv().is_none());
    send(1);
    woken(&count, 1, "the first heartbeat did not wake the loop").await;
    let first = poll_once(&mut datagrams);
    assert!(
        matches!(first, Some(Some(Received::Heartbeat(_)))),
        "the first heartbeat was not read"
    );
    // What the loop takes without waiting, after a heartbeat: nothing more here.
    assert!(datagrams.try_recv().is_none());
    assert!(poll_once(&mut datagrams).is_none(), "nothing more has come");
    send(2);
    woken(
        &count,
        2,
        "a heartbeat after the loop took what was ready did not wake it",
    )
    .await;
    let second = poll_once(&mut datagrams);
    assert!(
        matches!(second, Some(Some(Received::Heartbeat(_)))),
        "the second heartbeat was not read"
    );
}

/// A heartbeat the kernel refuses to send is counted and told of (see
/// `outbound`): here the peer's crossover address is the loopback's broadcast one,
/// which a socket without SO_BROADCAST may not send to (EACCES). One line for a
/// run of failures, on the crossover alone.
#[tokio::test]
async fn heartbeats_the_kernel_will_not_send_are_told_of_once_on_their_link() {
    let broadcast = "127.255.255.255";
    let plain = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    assert!(
        plain.send_to(b"x", (broadcast, 9)).is_err(),
        "this host lets a plain socket send to {broadcast}, so the test cannot make a send fail"
    );
    let lab = Lab::new("unsent");
    lab.write_edited(200, |sample| {
        sample.set(
            "node[1].addresses",
            format!(r#"{{ crossover = "{broadcast}", lan = "127.0.0.4" }}"#),
        )
    });
    let (logging, captured) = crate::testing::Captured::dispatch();
    let _logging = tracing::dispatcher::set_default(&logging);
    let (mut shell, mut machine, mut inputs, _host) = lab.start().await;
    let done = pump(&mut shell, &mut machine, &mut inputs, |m| {
        m.role() == Role::Active
    })
    .await;
    assert_eq!(done, Pumped::Done);
    let to: std::net::SocketAddr = format!("{broadcast}:{}", lab.port()).parse().unwrap();
    assert!(shell.outbound.failing(0, to) > 1, "no failed sends counted");
    let said = captured.lines_with("heartbeats cannot be sent");
    assert_eq!(said.len(), 1, "{}", captured.text());
    assert!(
        said[0].contains("WARN")
            && said[0].contains("link=crossover")
            && said[0].contains(&format!("to={to}")),
        "{}",
        said[0]
    );
}
