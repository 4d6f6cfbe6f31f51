//! The shipped systemd unit: systemd itself must accept every line of it.
//!
//! `systemd-analyze verify` parses the unit the way PID 1 would and checks that the
//! programs it runs exist; `systemd-analyze security --offline=true` rates its
//! sandbox, which must stay at an exposure of 5.0 or less. The test runs it on a copy whose ExecStart points at the
//! failoverd just built, since /usr/local/sbin/failoverd is not installed here. It
//! needs systemd-analyze (Debian package `systemd`; `.ci/run` installs it) and fails
//! without it rather than pass untested.

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::time::Duration;

use failoverd::daemon::executor::NOTICE_WAIT;

const UNIT: &str = "failoverd.service";
/// The drop-in for hooks that must do more than the sandbox allows, and its directory.
const DROP_IN_DIR: &str = "failoverd.service.d";
const HOOKS_AS_ROOT: &str = "hooks-as-root.conf";
/// The highest `systemd-analyze security` exposure the shipped unit may have.
const MAX_EXPOSURE: f64 = 5.0;
const INSTALLED_BINARY: &str = "/usr/local/sbin/failoverd";
/// What `hooks.timeout` defaults to, and how long an overrunning hook's process
/// group gets between SIGTERM and SIGKILL (see docs/checks-and-hooks.md, Hooks).
const DEFAULT_HOOK_TIMEOUT: Duration = Duration::from_secs(60);
const HOOK_KILL_GRACE: Duration = Duration::from_millis(1500);

fn shipped_unit() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("systemd")
        .join(UNIT);
    fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()))
}

/// The value of the one `key=` line in the unit.
fn setting<'a>(unit: &'a str, key: &str) -> &'a str {
    let prefix = format!("{key}=");
    let values: Vec<&str> = unit
        .lines()
        .filter_map(|line| line.strip_prefix(prefix.as_str()))
        .collect();
    match values[..] {
        [value] => value,
        _ => panic!("{UNIT}: expected one {key}= line, found {values:?}"),
    }
}

/// `path` as the first word of a systemd command line.
fn systemd_word(path: &Path) -> String {
    let path = path.to_str().expect("the test binary's path is UTF-8");
    let escaped = path
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('%', "%%")
        .replace('$', "$$");
    format!("\"{escaped}\"")
}

/// A scratch directory removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(test: &str) -> Scratch {
        let dir =
            std::env::temp_dir().join(format!("failoverd-systemd-{test}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        Scratch(dir)
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

/// The shipped unit as it would run here: ExecStart (and ExecReload, when its program
/// is missing) point at programs that exist; everything else as shipped.
fn runnable_unit() -> String {
    let shipped = shipped_unit();
    let built = Path::new(env!("CARGO_BIN_EXE_failoverd"));
    let start = setting(&shipped, "ExecStart");
    let Some(arguments) = start.strip_prefix(INSTALLED_BINARY) else {
        panic!("{UNIT}: ExecStart={start} does not run {INSTALLED_BINARY}");
    };
    let reload = setting(&shipped, "ExecReload");
    let (reload_program, reload_arguments) = reload.split_once(' ').unwrap_or((reload, ""));
    let reload = if Path::new(reload_program).exists() {
        reload.to_string()
    } else {
        eprintln!("{reload_program} is missing here; verifying ExecReload with {built:?}");
        format!("{} {reload_arguments}", systemd_word(built))
    };
    shipped
        .lines()
        .map(|line| {
            if line.starts_with("ExecStart=") {
                format!("ExecStart={}{arguments}\n", systemd_word(built))
            } else if line.starts_with("ExecReload=") {
                format!("ExecReload={reload}\n")
            } else {
                format!("{line}\n")
            }
        })
        .collect()
}

/// Writes the runnable unit into `scratch`, with the shipped drop-ins beside it when
/// `drop_ins` is set (systemd-analyze reads `<unit>.d/` next to a unit it is given).
fn install(scratch: &Scratch, drop_ins: bool) -> PathBuf {
    let path = scratch.0.join(UNIT);
    fs::write(&path, runnable_unit()).unwrap();
    if drop_ins {
        let from = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("systemd")
            .join(DROP_IN_DIR);
        let to = scratch.0.join(DROP_IN_DIR);
        fs::create_dir_all(&to).unwrap();
        fs::copy(from.join(HOOKS_AS_ROOT), to.join(HOOKS_AS_ROOT))
            .unwrap_or_else(|e| panic!("copy {HOOKS_AS_ROOT}: {e}"));
    }
    path
}

/// Runs `systemd-analyze ARGS PATH`; fails the test when the tool is missing.
fn systemd_analyze(args: &[&str], path: &Path) -> Output {
    match Command::new("systemd-analyze")
        .args(args)
        .arg(path)
        .env("SYSTEMD_COLORS", "0")
        .output()
    {
        Ok(output) => output,
        Err(err) if err.kind() == ErrorKind::NotFound => panic!(
            "systemd-analyze is not installed, so the unit cannot be checked: install it \
             (Debian: apt-get install systemd; .ci/run does this)"
        ),
        Err(err) => panic!("cannot run systemd-analyze: {err}"),
    }
}

/// `systemd-analyze verify` has nothing to say about the unit at `path`.
fn assert_verified(path: &Path) {
    let output = systemd_analyze(&["verify"], path);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);

    // Lines about other units (their own quirks on this machine) are shown, not held
    // against ours.
    let ours: Vec<&str> = stdout
        .lines()
        .chain(stderr.lines())
        .filter(|line| {
            line.contains(UNIT)
                || line.contains(HOOKS_AS_ROOT)
                || line.contains(&*path.to_string_lossy())
        })
        .collect();
    if ours.len() < stdout.lines().count() + stderr.lines().count() {
        eprintln!("systemd-analyze verify also said:\n{stdout}{stderr}");
    }
    assert!(
        ours.is_empty(),
        "systemd-analyze verify complains about {UNIT}:\n{}",
        ours.join("\n")
    );
    assert!(
        output.status.success(),
        "systemd-analyze verify failed ({}):\n{stdout}{stderr}",
        output.status
    );
}

/// The overall exposure `systemd-analyze security --offline=true` gives the unit at
/// `path`, from its last line: "→ Overall exposure level for failoverd.service: 3.1 OK".
fn exposure(path: &Path) -> f64 {
    let output = systemd_analyze(&["security", "--offline=true", "--no-pager"], path);
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let line = stdout
        .lines()
        .find(|line| line.contains("Overall exposure level"))
        .unwrap_or_else(|| panic!("no overall exposure in:\n{stdout}{stderr}"));
    line.rsplit_once(": ")
        .and_then(|(_, rest)| rest.split_whitespace().next())
        .and_then(|score| score.parse().ok())
        .unwrap_or_else(|| panic!("no score in {line:?}"))
}

#[test]
fn systemd_analyze_verify_accepts_the_unit() {
    let scratch = Scratch::new("verify");
    assert_verified(&install(&scratch, false));
}

#[test]
fn systemd_analyze_verify_accepts_the_unit_with_the_hooks_as_root_drop_in() {
    let scratch = Scratch::new("verify-drop-in");
    assert_verified(&install(&scratch, true));
}

/// The sandbox is the unit's to keep: Debian's keepalived and heartbeat units score
/// 9.6, and this one scored 8.1 before it named its capabilities and filtered its
/// system calls.
#[test]
fn the_unit_is_sandboxed_to_an_exposure_of_5_or_less() {
    let scratch = Scratch::new("security");
    let score = exposure(&install(&scratch, false));
    assert!(
        score <= MAX_EXPOSURE,
        "systemd-analyze security rates {UNIT} {score}, above {MAX_EXPOSURE}: run \
         `systemd-analyze security --offline=true systemd/{UNIT}` to see which setting \
         loosened it"
    );
}

/// The drop-in must loosen what it says it does, or it is no answer for the hooks
/// that need it.
#[test]
fn the_hooks_as_root_drop_in_lifts_the_sandbox() {
    let tight = exposure(&install(&Scratch::new("security-tight"), false));
    let loose = exposure(&install(&Scratch::new("security-loose"), true));
    assert!(
        loose > tight + 2.0,
        "with {HOOKS_AS_ROOT}, the exposure is {loose}, against {tight} without: it lifts \
         less than it says"
    );
}

/// The configuration file a `failoverd` command line names (`--config` or `-c`).
fn config_of<'a>(words: &[&'a str]) -> Option<&'a str> {
    words
        .windows(2)
        .find(|pair| pair[0] == "--config" || pair[0] == "-c")
        .map(|pair| pair[1])
}

/// `systemctl reload` must fail when the daemon rejects the new file. A signal
/// carries no answer back; `failoverd reload` waits for the daemon's and exits 1 on
/// a refusal (tests/cli.rs, tests/e2e.rs). It finds the control socket in the file,
/// so it must name the one the daemon runs with.
#[test]
fn reload_waits_for_the_daemons_answer_on_the_daemons_socket() {
    let unit = shipped_unit();
    let start: Vec<&str> = setting(&unit, "ExecStart").split_whitespace().collect();
    let reload: Vec<&str> = setting(&unit, "ExecReload").split_whitespace().collect();
    assert_eq!(
        reload.get(..2),
        Some(&[INSTALLED_BINARY, "reload"][..]),
        "{UNIT}: ExecReload= should run `{INSTALLED_BINARY} reload`, which reports a \
         rejected file; it runs {reload:?}"
    );
    assert!(
        reload
            .windows(2)
            .any(|pair| pair == ["--main-pid", "$MAINPID"]),
        "{UNIT}: ExecReload= should pass --main-pid $MAINPID, so that a daemon that no \
         longer listens where the file says still gets the reload; it runs {reload:?}"
    );
    assert!(
        config_of(&start).is_some(),
        "{UNIT}: ExecStart= names no --config"
    );
    assert_eq!(
        config_of(&reload),
        config_of(&start),
        "{UNIT}: ExecReload= and ExecStart= name different configuration files, so the \
         reload would look for another control socket"
    );
}

#[test]
fn stop_timeout_leaves_room_for_the_stop_hook() {
    let unit = shipped_unit();
    let value = setting(&unit, "TimeoutStopSec");
    let seconds: u64 = value
        .strip_suffix('s')
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("TimeoutStopSec={value}: expected whole seconds"));
    // After the stop hook come the VIP removals, the last wait for notification
    // hooks and the exit; keep some margin.
    let needed = DEFAULT_HOOK_TIMEOUT + HOOK_KILL_GRACE + NOTICE_WAIT + Duration::from_secs(10);
    assert!(
        Duration::from_secs(seconds) >= needed,
        "TimeoutStopSec={value} is shorter than {needed:?}: systemd would SIGKILL a \
         handover whose stop hook uses its whole timeout"
    );
}
