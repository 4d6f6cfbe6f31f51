//! A scratch directory for unit tests: unique to the test process and call, removed
//! on drop, without a tempfile dependency. Test builds only.

use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

pub(crate) struct Scratch(PathBuf);

impl Scratch {
    /// A new, empty directory; `what` names it for whoever finds one left behind.
    pub(crate) fn new(what: &str) -> Scratch {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let n = NEXT.fetch_add(1, Ordering::Relaxed);
        let dir = std::env::temp_dir().join(format!("failoverd-{what}-{}-{n}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("create a scratch directory");
        Scratch(dir)
    }

    pub(crate) fn path(&self) -> &Path {
        &self.0
    }

    pub(crate) fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }

    /// An executable `/bin/sh` script `name` with `body`.
    pub(crate) fn script(&self, name: &str, body: &str) -> PathBuf {
        let path = self.join(name);
        fs::write(&path, format!("#!/bin/sh\n{body}\n")).expect("write a script");
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).expect("chmod a script");
        path
    }
}

impl Drop for Scratch {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}
