//! A scratch directory of fake programs for running the example scripts the way
//! failoverd runs them, without root: the fakes in `bin/` (first on PATH), what they
//! record and keep as state in `records/` ($FAKE_RECORDS). The environment is built
//! from nothing, so settings of the machine running the tests cannot leak in.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

/// Removed on drop.
pub struct Fakes {
    dir: PathBuf,
}

impl Fakes {
    /// A fresh scratch directory named after `test`, with each (name, script) of
    /// `fakes` installed as an executable in `bin/`.
    pub fn new(test: &str, fakes: &[(&str, &str)]) -> Fakes {
        let dir = std::env::temp_dir().join(format!("failoverd-{test}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(dir.join("bin")).unwrap();
        fs::create_dir_all(dir.join("records")).unwrap();
        for (name, text) in fakes {
            let path = dir.join("bin").join(name);
            fs::write(&path, text).unwrap();
            fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
        }
        Fakes { dir }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// A record or state file of the fakes.
    pub fn record(&self, name: &str) -> PathBuf {
        self.dir.join("records").join(name)
    }

    /// Runs `program` with only PATH (the fakes first), $FAKE_RECORDS and `env`,
    /// stdin closed; prints what it said, for a failing test's output.
    pub fn run(&self, program: &Path, env: &[(&str, &str)]) -> Output {
        let path = format!(
            "{}:/usr/local/bin:/usr/bin:/bin",
            self.dir.join("bin").display()
        );
        let output = Command::new(program)
            .env_clear()
            .env("PATH", path)
            .env("FAKE_RECORDS", self.dir.join("records"))
            .envs(env.iter().copied())
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("run {}: {e}", program.display()));
        eprintln!(
            "{} {env:?}: {}\nstdout: {}stderr: {}",
            program.display(),
            output.status,
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        );
        output
    }

    /// The arguments of every call of the fake `name`, one entry per call.
    pub fn calls(&self, name: &str) -> Vec<String> {
        match fs::read_to_string(self.record(&format!("{name}.calls"))) {
            Ok(text) => text.lines().map(str::to_string).collect(),
            Err(_) => Vec::new(),
        }
    }
}

impl Drop for Fakes {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

pub fn stdout(output: &Output) -> String {
    String::from_utf8_lossy(&output.stdout).into_owned()
}

pub fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}
