//! `failoverd import` as an administrator runs it: the built binary on the Heartbeat
//! and keepalived files in tests/fixtures/import/, its output checked by
//! `failoverd check` for each node, its notes read from stderr, and the hook it wrote
//! run with stub resource scripts. No root, no network; every run is bounded in time.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

/// No run of the binary or a hook in these tests should come near this.
#[path = "common/run.rs"]
mod run;

use run::run_bounded;

const RUN_LIMIT: Duration = Duration::from_secs(20);

fn fixtures(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/import")
        .join(name)
}

/// A fresh directory, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new() -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("failoverd-import-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }

    fn path(&self) -> &Path {
        &self.0
    }

    fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    fn arg(&self, name: &str) -> String {
        self.join(name).to_str().unwrap().to_string()
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// Runs a program to completion, killing it if it outlives [`RUN_LIMIT`].
fn run(command: Command) -> Output {
    run_bounded(command, RUN_LIMIT)
}

fn failoverd(args: &[&str]) -> Output {
    let mut command = Command::new(env!("CARGO_BIN_EXE_failoverd"));
    command.args(args);
    run(command)
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

/// `failoverd import ARGS --out OUT`, which must succeed.
fn import(args: &[&str], out: &TempDir) -> Output {
    let dir = out.arg("etc");
    let mut all = vec!["import"];
    all.extend(args);
    all.extend(["--out", &dir]);
    let output = failoverd(&all);
    assert_eq!(code(&output), 0, "{}", stderr(&output));
    output
}

/// `failoverd check` of the imported configuration as `node`.
fn check(out: &TempDir, node: &str) -> Output {
    let config = out.arg("etc/failoverd.toml");
    failoverd(&["check", "--config", &config, "--node", node])
}

const HEARTBEAT_FLAGS: [&str; 6] = [
    "--address",
    "osm1=198.18.0.1",
    "--address",
    "osm2:eth1=198.18.0.2",
    "--vip",
    "192.168.0.200/24/eth0",
];

fn import_heartbeat(out: &TempDir, dir: &Path, flags: &[&str]) -> Output {
    let dir = dir.to_str().unwrap();
    let mut args = vec!["heartbeat", dir];
    args.extend(flags);
    import(&args, out)
}

#[test]
fn heartbeat_import_with_the_addresses_passes_check_on_each_node() {
    let out = TempDir::new();
    import_heartbeat(&out, &fixtures("heartbeat"), &HEARTBEAT_FLAGS);
    for (node, priority) in [("osm1", 200), ("osm2", 100)] {
        let checked = check(&out, node);
        assert_eq!(code(&checked), 0, "{node}: {}", stderr(&checked));
        let text = stdout(&checked);
        assert!(
            text.contains(&format!("this node: {node} (priority {priority})")),
            "{text}"
        );
        assert!(
            text.contains("timing: interval 2s, warn 5s, dead 15s, init_dead 60s"),
            "{text}"
        );
        // Heartbeat's keepalive of 2 s is longer than the quiet standby's 1 s.
        assert!(
            text.contains("standby: heartbeats every interval (standby_interval = interval)"),
            "{text}"
        );
        assert!(text.contains("vip: 192.168.0.200/24 on eth0"), "{text}");
        assert!(
            text.contains("gateway-192.168.0.1: ping 192.168.0.1"),
            "{text}"
        );
        assert!(text.contains("failback: auto"), "{text}");
        assert!(
            text.contains("hook start: ") && text.contains("heartbeat-resources.sh"),
            "{text}"
        );
    }
    let mode = |name: &str| fs::metadata(out.join(name)).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode("etc/failoverd.toml"), 0o640);
    assert_eq!(mode("etc/authkey"), 0o600);
    assert_eq!(mode("etc/hooks/heartbeat-resources.sh"), 0o755);
}

#[test]
fn heartbeat_import_without_addresses_leaves_values_that_check_refuses() {
    let out = TempDir::new();
    let imported = import_heartbeat(&out, &fixtures("heartbeat"), &[]);
    assert!(
        stderr(&imported).contains("4 value(s) in failoverd.toml start with \"FILL-IN\""),
        "{}",
        stderr(&imported)
    );
    let checked = check(&out, "osm1");
    assert_eq!(code(&checked), 2, "{}", stdout(&checked));
    let text = stderr(&checked);
    for expected in [
        "node[0].addresses.eth1: \"FILL-IN: osm1's address on eth1 (pass --address \
         osm1:eth1=ADDRESS",
        "node[1].addresses.eth1: \"FILL-IN: osm2's address on eth1",
        "vip[0].address: \"FILL-IN: 192.168.0.200 and the prefix length of its network \
         (failoverd import --vip takes both)\"",
    ] {
        assert!(text.contains(expected), "{expected}\nin\n{text}");
    }

    // An interface left to fill in, once the rest is known.
    let input = heartbeat_dir("osm1 IPaddr::192.168.0.200/24 cron\n");
    let out = TempDir::new();
    import_heartbeat(&out, input.path(), &HEARTBEAT_FLAGS[..4]);
    let checked = check(&out, "osm1");
    assert_eq!(code(&checked), 2, "{}", stdout(&checked));
    let text = stderr(&checked);
    assert!(
        text.contains(
            "vip[0].interface: \"FILL-IN: the interface for 192.168.0.200 (or pass --vip \
             192.168.0.200/PREFIX/INTERFACE to failoverd import)\""
        ),
        "{text}"
    );
}

#[test]
fn heartbeat_import_lists_what_it_did_not_translate_with_its_line() {
    let out = TempDir::new();
    let imported = import_heartbeat(&out, &fixtures("heartbeat"), &HEARTBEAT_FLAGS);
    let text = stderr(&imported);
    let notes: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("failoverd: import: "))
        .collect();
    for (at, advice) in [
        ("ha.cf:2: debugfile /var/log/ha-debug", "journal"),
        ("ha.cf:3: logfile /var/log/ha-log", "journal"),
        ("ha.cf:4: logfacility local0", "journal"),
        ("ha.cf:14: bcast eth1", "unicast"),
        (
            "ha.cf:18: respawn hacluster /usr/lib/heartbeat/ipfail",
            "gateways",
        ),
        ("ha.cf:19: apiauth ipfail", "ignored"),
        ("authkeys:3: 1 sha1 ...", "shorter than the 16 bytes"),
    ] {
        let found = notes.iter().find(|n| n.starts_with(at));
        assert!(
            found.is_some_and(|n| n.contains(advice)),
            "{at} ({advice}) in\n{text}"
        );
    }
    // The notes come in reading order.
    let first = notes
        .iter()
        .position(|n| n.starts_with("ha.cf:2:"))
        .unwrap();
    let later = notes
        .iter()
        .position(|n| n.starts_with("ha.cf:19:"))
        .unwrap();
    assert!(first < later, "{text}");
    // Translated lines are not noted.
    for line in ["ha.cf:7:", "ha.cf:16:", "ha.cf:21:", "ha.cf:22:"] {
        assert!(!text.contains(line), "{line} in\n{text}");
    }
}

/// A Heartbeat directory with the fixture's ha.cf and authkeys and this haresources.
fn heartbeat_dir(haresources: &str) -> TempDir {
    let dir = TempDir::new();
    for name in ["ha.cf", "authkeys"] {
        fs::copy(fixtures("heartbeat").join(name), dir.join(name)).unwrap();
    }
    fs::write(dir.join("haresources"), haresources).unwrap();
    dir
}

/// Stub resource scripts in `dir` that log their name and arguments to `dir/log`,
/// and fail when their name is in `failing`.
fn stub_resources(dir: &TempDir, names: &[&str], failing: &[&str]) {
    for name in names {
        let status = if failing.contains(name) { 1 } else { 0 };
        let path = dir.join(name);
        fs::write(
            &path,
            format!("#!/bin/sh\necho \"{name} $*\" >> \"$(dirname \"$0\")/log\"\nexit {status}\n"),
        )
        .unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    }
}

/// Runs the hook as failoverd would for `hook`, with resource scripts from `dirs`.
fn run_hook(hook: &Path, name: &str, dirs: &str) -> Output {
    let mut command = Command::new(hook);
    command
        .env("FAILOVERD_HOOK", name)
        .env("HA_RESOURCE_DIRS", dirs);
    run(command)
}

fn log_lines(dir: &TempDir) -> Vec<String> {
    fs::read_to_string(dir.join("log"))
        .unwrap_or_default()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn heartbeat_hook_starts_resources_in_order_and_stops_them_in_reverse() {
    let input = heartbeat_dir(
        "node1 IPaddr::10.0.0.10/24/eth0 drbddisk::r0 \\\n    \
         Filesystem::/dev/drbd0::/data::ext4 httpd 'odd name'\n",
    );
    fs::write(
        input.join("ha.cf"),
        "keepalive 2\ndeadtime 10\nbcast eth1\nnode node1 node2\n",
    )
    .unwrap();
    let out = TempDir::new();
    import_heartbeat(
        &out,
        input.path(),
        &[
            "--address",
            "node1=198.18.0.1",
            "--address",
            "node2=198.18.0.2",
        ],
    );
    let hook = out.join("etc/hooks/heartbeat-resources.sh");
    let syntax = run({
        let mut c = Command::new("bash");
        c.arg("-n").arg(&hook);
        c
    });
    assert_eq!(code(&syntax), 0, "{}", stderr(&syntax));

    // The scripts are looked up in the directories in order: the first holds
    // Filesystem, the second the rest (and a Filesystem that must not run).
    let first = TempDir::new();
    let second = TempDir::new();
    stub_resources(&first, &["Filesystem"], &[]);
    stub_resources(&second, &["drbddisk", "Filesystem", "httpd"], &[]);
    let dirs = format!("{} {}", first.path().display(), second.path().display());
    let started = run_hook(&hook, "start", &dirs);
    // 'odd name' was never a script: the start stops there, after the others ran.
    assert_eq!(code(&started), 127, "{}", stderr(&started));
    assert!(
        stderr(&started).contains("no executable 'odd"),
        "{}",
        stderr(&started)
    );
    assert_eq!(
        log_lines(&first),
        ["Filesystem /dev/drbd0 /data ext4 start"]
    );
    assert_eq!(log_lines(&second), ["drbddisk r0 start", "httpd start"]);

    fs::remove_file(first.join("log")).unwrap();
    fs::remove_file(second.join("log")).unwrap();
    let stopped = run_hook(&hook, "stop", &dirs);
    // The resource that cannot be found fails the stop, after every other stopped.
    assert_eq!(code(&stopped), 127, "{}", stderr(&stopped));
    assert_eq!(log_lines(&second), ["httpd stop", "drbddisk r0 stop"]);
    assert_eq!(log_lines(&first), ["Filesystem /dev/drbd0 /data ext4 stop"]);
}

#[test]
fn heartbeat_hook_stops_starting_at_a_failed_resource_and_stops_all() {
    let input = heartbeat_dir("osm1 192.168.0.200 cron osm-failover.sh mail\n");
    let out = TempDir::new();
    import_heartbeat(&out, input.path(), &HEARTBEAT_FLAGS);
    let hook = out.join("etc/hooks/heartbeat-resources.sh");
    let scripts = TempDir::new();
    let dirs = scripts.path().display().to_string();

    stub_resources(&scripts, &["cron", "osm-failover.sh", "mail"], &[]);
    let started = run_hook(&hook, "start", &dirs);
    assert_eq!(code(&started), 0, "{}", stderr(&started));
    assert_eq!(
        log_lines(&scripts),
        ["cron start", "osm-failover.sh start", "mail start"]
    );

    fs::remove_file(scripts.join("log")).unwrap();
    stub_resources(&scripts, &["osm-failover.sh"], &["osm-failover.sh"]);
    let started = run_hook(&hook, "start", &dirs);
    assert_eq!(code(&started), 1, "{}", stderr(&started));
    assert_eq!(log_lines(&scripts), ["cron start", "osm-failover.sh start"]);

    fs::remove_file(scripts.join("log")).unwrap();
    let stopped = run_hook(&hook, "stop", &dirs);
    assert_eq!(code(&stopped), 1, "{}", stderr(&stopped));
    assert_eq!(
        log_lines(&scripts),
        ["mail stop", "osm-failover.sh stop", "cron stop"]
    );

    let other = run_hook(&hook, "fault", &dirs);
    assert_eq!(code(&other), 2, "{}", stderr(&other));
}

#[test]
fn import_refuses_to_overwrite_without_force() {
    let out = TempDir::new();
    import_heartbeat(&out, &fixtures("heartbeat"), &HEARTBEAT_FLAGS);
    let key = fs::read_to_string(out.join("etc/authkey")).unwrap();
    let dir = out.arg("etc");
    let fixture = fixtures("heartbeat");
    let mut args = vec![
        "import",
        "heartbeat",
        fixture.to_str().unwrap(),
        "--out",
        &dir,
    ];
    let again = failoverd(&args);
    assert_eq!(code(&again), 1, "{}", stderr(&again));
    assert!(
        stderr(&again).contains("failoverd.toml exists; pass --force"),
        "{}",
        stderr(&again)
    );
    assert_eq!(fs::read_to_string(out.join("etc/authkey")).unwrap(), key);
    args.push("--force");
    let forced = failoverd(&args);
    assert_eq!(code(&forced), 0, "{}", stderr(&forced));
    assert_ne!(fs::read_to_string(out.join("etc/authkey")).unwrap(), key);
}

#[test]
fn the_output_directories_are_writable_by_their_owner_only_whatever_the_umask() {
    let out = TempDir::new();
    let dir = out.arg("etc");
    let fixture = fixtures("heartbeat");
    let mut command = Command::new("sh");
    command
        .arg("-c")
        .arg("umask 002 && exec \"$0\" \"$@\"")
        .arg(env!("CARGO_BIN_EXE_failoverd"))
        .args([
            "import",
            "heartbeat",
            fixture.to_str().unwrap(),
            "--out",
            &dir,
        ]);
    let imported = run(command);
    assert_eq!(code(&imported), 0, "{}", stderr(&imported));
    for name in ["etc", "etc/hooks"] {
        let mode = fs::metadata(out.join(name)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o755, "{name}: {mode:o}");
    }
}

#[test]
fn without_out_the_configuration_goes_to_stdout_and_the_notes_to_stderr() {
    let fixture = fixtures("heartbeat");
    let printed = failoverd(&["import", "heartbeat", fixture.to_str().unwrap()]);
    assert_eq!(code(&printed), 0, "{}", stderr(&printed));
    let config: toml::Table = stdout(&printed).parse().expect("TOML on stdout");
    assert_eq!(config["cluster"]["name"].as_str(), Some("osm1-osm2"));
    assert!(!stdout(&printed).contains("failoverd: import:"));
    assert!(
        stderr(&printed).contains("pass --out DIR to write the key file and the hooks"),
        "{}",
        stderr(&printed)
    );
}

#[test]
fn input_that_cannot_be_imported_exits_2_with_one_line() {
    let missing = TempDir::new();
    let out = failoverd(&["import", "heartbeat", missing.path().to_str().unwrap()]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).starts_with("failoverd: import: cannot read "),
        "{}",
        stderr(&out)
    );
    let fixture = fixtures("heartbeat");
    let out = failoverd(&[
        "import",
        "heartbeat",
        fixture.to_str().unwrap(),
        "--address",
        "osm3=198.18.0.3",
    ]);
    assert_eq!(code(&out), 2);
    assert!(
        stderr(&out).contains("no node osm3 (nodes: osm1, osm2)"),
        "{}",
        stderr(&out)
    );
    assert_eq!(stderr(&out).lines().count(), 1, "{}", stderr(&out));
}

fn keepalived_conf() -> String {
    fixtures("keepalived/keepalived.conf")
        .to_str()
        .unwrap()
        .to_string()
}

const KEEPALIVED_FLAGS: [&str; 6] = [
    "--this-node",
    "lb1",
    "--peer",
    "lb2",
    "--priority",
    "lb2=100",
];

#[test]
fn keepalived_import_with_the_peers_priority_passes_check_on_each_node() {
    let out = TempDir::new();
    let conf = keepalived_conf();
    let mut args = vec!["keepalived", conf.as_str()];
    args.extend(KEEPALIVED_FLAGS);
    import(&args, &out);
    for (node, priority) in [("lb1", 150), ("lb2", 100)] {
        let checked = check(&out, node);
        assert_eq!(code(&checked), 0, "{node}: {}", stderr(&checked));
        let text = stdout(&checked);
        assert!(
            text.contains(&format!("this node: {node} (priority {priority})")),
            "{text}"
        );
        assert!(
            text.contains("vip: 192.168.10.100/24 on eth0 label eth0:web"),
            "{text}"
        );
        assert!(text.contains("vip: 192.168.10.101/24 on eth0"), "{text}");
        assert!(text.contains("failback: auto, after 60s"), "{text}");
        assert!(
            text.contains("chk_haproxy: exec /bin/sh -c \"killall -0 haproxy\", every 2s"),
            "{text}"
        );
        assert!(text.contains("track-eth1: link eth1"), "{text}");
        assert!(text.contains("start failure: ignore"), "{text}");
    }
    let lb1 = stdout(&check(&out, "lb1"));
    assert!(
        lb1.contains("heartbeats on eth0 to 192.168.10.12:694"),
        "{lb1}"
    );
    let hook = out.join("etc/hooks/keepalived-notify.sh");
    let syntax = run({
        let mut c = Command::new("bash");
        c.arg("-n").arg(&hook);
        c
    });
    assert_eq!(code(&syntax), 0, "{}", stderr(&syntax));
    let unknown = run_hook(&hook, "bogus", "");
    assert_eq!(code(&unknown), 2, "{}", stderr(&unknown));
}

#[test]
fn keepalived_import_without_the_peers_priority_leaves_it_for_check_to_refuse() {
    let out = TempDir::new();
    let conf = keepalived_conf();
    import(&["keepalived", &conf], &out);
    let checked = check(&out, "node1");
    assert_eq!(code(&checked), 2, "{}", stdout(&checked));
    // The problem names the key and quotes the placeholder, which says what to do.
    let text = stderr(&checked);
    let line = text
        .lines()
        .find(|l| l.contains("node[1].priority: "))
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        line.contains(
            "\"FILL-IN: node2's priority, the `priority` in its keepalived.conf (pass \
             --priority node2=N to failoverd import)\""
        ),
        "{text}"
    );
}

#[test]
fn keepalived_import_lists_other_instances_and_untranslated_keys_with_their_line() {
    let out = TempDir::new();
    let conf = keepalived_conf();
    let mut args = vec!["keepalived", conf.as_str()];
    args.extend(KEEPALIVED_FLAGS);
    let text = stderr(&import(&args, &out));
    for (at, advice) in [
        ("keepalived.conf:3: notification_email", "mail-alert.sh"),
        ("keepalived.conf:8: router_id lb1", "[[node]]"),
        ("keepalived.conf:22: vrrp_script chk_disk", "not tracked"),
        ("keepalived.conf:28: state MASTER", "priority"),
        ("keepalived.conf:34: authentication", "HMAC-SHA256"),
        ("keepalived.conf:55: smtp_alert", "mail-alert.sh"),
        (
            "keepalived.conf:58: vrrp_instance VI_DB",
            "no VIP groups yet",
        ),
    ] {
        let found = text
            .lines()
            .find(|l| l.starts_with(&format!("failoverd: import: {at}")));
        assert!(
            found.is_some_and(|n| n.contains(advice)),
            "{at} ({advice}) in\n{text}"
        );
    }
    assert!(text.contains("--instance VI_DB"), "{text}");
}

#[test]
fn keepalived_import_of_a_named_instance() {
    let out = TempDir::new();
    let conf = keepalived_conf();
    let mut args = vec!["keepalived", conf.as_str(), "--instance", "VI_DB"];
    args.extend([
        "--this-node",
        "lb1",
        "--peer",
        "lb2",
        "--priority",
        "lb2=150",
    ]);
    args.extend([
        "--address",
        "lb1=198.18.0.11",
        "--address",
        "lb2=198.18.0.12",
    ]);
    let text = stderr(&import(&args, &out));
    assert!(
        text.contains("keepalived.conf:27: vrrp_instance VI_WEB: not translated"),
        "{text}"
    );
    // chk_disk's program is not on this machine: check names it, and nothing else.
    let checked = check(&out, "lb2");
    assert_eq!(code(&checked), 2, "{}", stdout(&checked));
    let refused = stderr(&checked);
    assert!(
        refused.contains("check[0].command[0]: /usr/local/bin/check-disk: No such file"),
        "{refused}"
    );
    assert_eq!(refused.lines().count(), 1, "{refused}");
    let config: toml::Table = fs::read_to_string(out.join("etc/failoverd.toml"))
        .unwrap()
        .parse()
        .unwrap();
    assert_eq!(config["cluster"]["name"].as_str(), Some("VI_DB"));
    assert_eq!(config["cluster"]["failback"].as_str(), Some("manual"));
    assert_eq!(
        config["vip"][0]["address"].as_str(),
        Some("192.168.10.200/24")
    );
    assert_eq!(config["check"][0]["name"].as_str(), Some("chk_disk"));
    assert_eq!(config["check"][0]["fatal"].as_bool(), Some(true));
    assert_eq!(
        config["node"][1]["addresses"]["eth0"].as_str(),
        Some("198.18.0.12")
    );
}
