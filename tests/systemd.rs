//! The shipped systemd unit: systemd itself must accept every line of it.
//!
//! `systemd-analyze verify` parses the unit the way PID 1 would and checks that the
//! programs it runs exist. The test runs it on a copy whose ExecStart points at the
//! failoverd just built, since /usr/local/sbin/failoverd is not installed here. It
//! needs systemd-analyze (Debian package `systemd`; `.ci/run` installs it) and fails
//! without it rather than pass untested.

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

const UNIT: &str = "failoverd.service";
const INSTALLED_BINARY: &str = "/usr/local/sbin/failoverd";
/// What `hooks.timeout` defaults to, and how long an overrunning hook's process
/// group gets between SIGTERM and SIGKILL (see README, Hooks).
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

#[test]
fn systemd_analyze_verify_accepts_the_unit() {
    let shipped = shipped_unit();
    let built = Path::new(env!("CARGO_BIN_EXE_failoverd"));

    // Point the copy at programs that exist here; keep everything else as shipped.
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
    let copy: String = shipped
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
        .collect();

    let scratch = Scratch::new("verify");
    let path = scratch.0.join(UNIT);
    fs::write(&path, copy).unwrap();

    let output = match Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .env("SYSTEMD_COLORS", "0")
        .output()
    {
        Ok(output) => output,
        Err(err) if err.kind() == ErrorKind::NotFound => panic!(
            "systemd-analyze is not installed, so the unit cannot be checked: install it \
             (Debian: apt-get install systemd; .ci/run does this)"
        ),
        Err(err) => panic!("cannot run systemd-analyze: {err}"),
    };
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);

    // Lines about other units (their own quirks on this machine) are shown, not held
    // against ours.
    let ours: Vec<&str> = stdout
        .lines()
        .chain(stderr.lines())
        .filter(|line| line.contains(UNIT) || line.contains(&*path.to_string_lossy()))
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

#[test]
fn stop_timeout_leaves_room_for_the_stop_hook() {
    let unit = shipped_unit();
    let value = setting(&unit, "TimeoutStopSec");
    let seconds: u64 = value
        .strip_suffix('s')
        .and_then(|n| n.parse().ok())
        .unwrap_or_else(|| panic!("TimeoutStopSec={value}: expected whole seconds"));
    // After the stop hook come the VIP removals and the exit; keep some margin.
    let needed = DEFAULT_HOOK_TIMEOUT + HOOK_KILL_GRACE + Duration::from_secs(10);
    assert!(
        Duration::from_secs(seconds) >= needed,
        "TimeoutStopSec={value} is shorter than {needed:?}: systemd would SIGKILL a \
         handover whose stop hook uses its whole timeout"
    );
}
