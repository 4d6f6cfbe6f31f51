//! Arbitrary UTF-8 into `Config::parse`: it must never panic, and a refused document
//! always says why, on a line that exists.
//!
//! The base directory holds a valid key file (`authkey`, mode 0600) and an executable
//! hook (`hook`), so documents that name them get as far as the relation checks.
#![no_main]

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use failoverd::config::Config;
use libfuzzer_sys::{Corpus, fuzz_target};

fuzz_target!(|data: &[u8]| -> Corpus {
    let Ok(text) = std::str::from_utf8(data) else {
        return Corpus::Reject;
    };
    match Config::parse(text, base_dir()) {
        Ok(config) => {
            let _ = config.fingerprint();
            let _ = format!("{config:?}");
        }
        Err(problems) => {
            assert!(!problems.is_empty(), "refused without a reason");
            let lines = text.matches('\n').count() + 1;
            for problem in &problems {
                let _ = problem.to_string();
                if let Some(line) = problem.line {
                    assert!((1..=lines).contains(&line), "{problem} of {lines} lines");
                }
            }
        }
    }
    Corpus::Keep
});

/// Made once per process under the temporary directory; scripts/fuzz.sh points
/// TMPDIR at a directory it removes afterwards.
fn base_dir() -> &'static Path {
    static DIR: OnceLock<PathBuf> = OnceLock::new();
    DIR.get_or_init(|| {
        let dir = std::env::temp_dir().join(format!("failoverd-fuzz-{}", std::process::id()));
        fs::create_dir_all(&dir).expect("create the base directory");
        let key = dir.join("authkey");
        fs::write(&key, "0123456789abcdef0123456789abcdef\n").expect("write authkey");
        fs::set_permissions(&key, fs::Permissions::from_mode(0o600)).expect("chmod authkey");
        let hook = dir.join("hook");
        fs::write(&hook, "#!/bin/sh\n").expect("write hook");
        fs::set_permissions(&hook, fs::Permissions::from_mode(0o755)).expect("chmod hook");
        dir
    })
}
