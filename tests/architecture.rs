//! The core stays pure: nothing in `src/machine/` reads the clock, opens a socket,
//! touches files or spawns a task. That is what lets the simulation run it with a
//! fake clock, and it is easy to lose one convenient import at a time. The same
//! holds, for the same reason, for the translators of `failoverd import`.

use std::fs;
use std::path::Path;

/// What only the shell may use, with the reason it does not belong in the core.
const FORBIDDEN: &[(&str, &str)] = &[
    ("tokio", "the async runtime"),
    ("Instant::now", "the clock (time comes with each input)"),
    (
        "SystemTime::now",
        "the wall clock (the shell passes it to status)",
    ),
    ("std::net::UdpSocket", "sockets"),
    ("socket2", "sockets"),
    ("rtnetlink", "netlink"),
    ("std::fs", "files"),
    ("std::thread", "threads"),
    ("std::process", "processes"),
    ("rand::", "randomness (seeds are injected)"),
    ("getrandom", "randomness (seeds are injected)"),
];

#[test]
fn the_election_core_imports_no_io_clock_or_runtime() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/machine");
    let mut checked = 0;
    let mut found = Vec::new();
    for entry in fs::read_dir(&dir).expect("src/machine exists") {
        let path = entry.expect("a directory entry").path();
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let text = fs::read_to_string(&path).expect("readable source");
        // Unit tests may use whatever they like.
        let code = text.split("#[cfg(test)]").next().unwrap_or_default();
        for (line_no, line) in code.lines().enumerate() {
            let line = line.split("//").next().unwrap_or_default();
            for (needle, what) in FORBIDDEN {
                if line.contains(needle) {
                    found.push(format!(
                        "{}:{}: {needle} ({what})",
                        path.display(),
                        line_no + 1
                    ));
                }
            }
        }
        checked += 1;
    }
    assert!(checked >= 8, "only {checked} files in {}", dir.display());
    assert!(
        found.is_empty(),
        "the core must stay pure:\n{}",
        found.join("\n")
    );
}

/// The import translators are text in, text out: the command and the output writer
/// beside them do the file work, so each construct can be tested without files.
#[test]
fn the_import_translators_touch_no_files_clock_or_randomness() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("src/import");
    let mut found = Vec::new();
    for name in ["mod.rs", "heartbeat.rs", "keepalived.rs"] {
        let path = dir.join(name);
        let text = fs::read_to_string(&path).expect("readable source");
        let code = text.split("#[cfg(test)]").next().unwrap_or_default();
        for (line_no, line) in code.lines().enumerate() {
            let line = line.split("//").next().unwrap_or_default();
            for needle in [
                "std::fs",
                "std::process",
                "std::io",
                "Instant::now",
                "SystemTime::now",
                "rand::",
                "getrandom",
                "/dev/urandom",
            ] {
                if line.contains(needle) {
                    found.push(format!("{}:{}: {needle}", path.display(), line_no + 1));
                }
            }
        }
    }
    assert!(
        found.is_empty(),
        "the translators must stay pure:\n{}",
        found.join("\n")
    );
}
