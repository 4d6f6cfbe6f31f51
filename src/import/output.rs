//! Where an import goes: the files of a [`Translation`] written into a directory
//! laid out like /etc/failoverd (the configuration, the key, `hooks/`), each with the
//! mode failoverd requires of it. Nothing is overwritten unless asked, and nothing is
//! written when one file already exists, so a refused run leaves no half import.

use std::fs::{self, OpenOptions};
use std::io::{self, Read, Write};
use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::{CONFIG_FILE, HOOK_DIR, KEY_FILE, KeySource, Translation};

/// The configuration holds no secret; the key is readable by root alone.
const CONFIG_MODE: u32 = 0o640;
const KEY_MODE: u32 = 0o600;
const HOOK_MODE: u32 = 0o755;
const DIR_MODE: u32 = 0o755;
/// Random bytes in a new key (written as hex, twice as many characters).
const KEY_BYTES: usize = 32;

/// Why the files could not be written.
#[derive(Debug, thiserror::Error)]
pub enum OutputError {
    /// A file is there already and `--force` was not given.
    #[error("{} exists; pass --force to overwrite it", .path.display())]
    Exists { path: PathBuf },
    /// Creating or writing a file or directory failed.
    #[error("cannot write {}: {source}", .path.display())]
    Write { path: PathBuf, source: io::Error },
    /// No random bytes for a new key.
    #[error("cannot read random bytes for a new key from /dev/urandom: {source}")]
    Random { source: io::Error },
}

/// One file to write.
struct File {
    path: PathBuf,
    text: String,
    mode: u32,
}

/// Writes the configuration, the key (unless it is external) and the hooks into
/// `dir`, creating it; returns the paths written, in order.
pub fn write(dir: &Path, t: &Translation, force: bool) -> Result<Vec<PathBuf>, OutputError> {
    let mut files = vec![File {
        path: dir.join(CONFIG_FILE),
        text: t.config.clone(),
        mode: CONFIG_MODE,
    }];
    let key = match &t.key {
        KeySource::Secret(secret) => Some(format!("{secret}\n")),
        KeySource::Generate => Some(format!("{}\n", random_key()?)),
        KeySource::External => None,
    };
    if let Some(text) = key {
        files.push(File {
            path: dir.join(KEY_FILE),
            text,
            mode: KEY_MODE,
        });
    }
    for hook in &t.hooks {
        files.push(File {
            path: dir.join(HOOK_DIR).join(&hook.name),
            text: hook.text.clone(),
            mode: HOOK_MODE,
        });
    }
    let existing = files.iter().find(|f| f.path.symlink_metadata().is_ok());
    if let Some(file) = existing.filter(|_| !force) {
        return Err(OutputError::Exists {
            path: file.path.clone(),
        });
    }
    let mut written = Vec::new();
    for file in &files {
        let write_err = |source| OutputError::Write {
            path: file.path.clone(),
            source,
        };
        if let Some(parent) = file.path.parent() {
            // failoverd refuses a hook in a directory others may write, and warns of
            // one its group may write: whatever the umask, only the owner writes here.
            fs::DirBuilder::new()
                .recursive(true)
                .mode(DIR_MODE)
                .create(parent)
                .map_err(|source| OutputError::Write {
                    path: parent.to_path_buf(),
                    source,
                })?;
        }
        // Created with its mode so the key is never readable by others, and set again
        // for a file that was there before.
        let mut out = OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(file.mode)
            .open(&file.path)
            .map_err(write_err)?;
        out.set_permissions(fs::Permissions::from_mode(file.mode))
            .map_err(write_err)?;
        out.write_all(file.text.as_bytes()).map_err(write_err)?;
        written.push(file.path.clone());
    }
    Ok(written)
}

/// A new shared key: random bytes from the kernel, as hex.
fn random_key() -> Result<String, OutputError> {
    let mut bytes = [0u8; KEY_BYTES];
    fs::File::open("/dev/urandom")
        .and_then(|mut f| f.read_exact(&mut bytes))
        .map_err(|source| OutputError::Random { source })?;
    Ok(bytes.iter().map(|b| format!("{b:02x}")).collect())
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::MetadataExt;

    use super::super::Hook;
    use super::*;

    fn translation(key: KeySource) -> Translation {
        Translation {
            config: "[cluster]\n".to_string(),
            key,
            hooks: vec![Hook {
                name: "h.sh".to_string(),
                text: "#!/bin/sh\n".to_string(),
            }],
            notes: Vec::new(),
        }
    }

    fn temp(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!(
            "failoverd-import-out-{name}-{}",
            std::process::id()
        ));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    #[test]
    fn files_get_their_modes_and_existing_ones_are_kept_without_force() {
        let dir = temp("modes");
        let written = write(&dir, &translation(KeySource::Generate), false).unwrap();
        assert_eq!(written.len(), 3);
        let mode = |p: &str| fs::metadata(dir.join(p)).unwrap().mode() & 0o777;
        assert_eq!(mode("failoverd.toml"), 0o640);
        assert_eq!(mode("authkey"), 0o600);
        assert_eq!(mode("hooks/h.sh"), 0o755);
        let key = fs::read_to_string(dir.join("authkey")).unwrap();
        assert_eq!(key.trim().len(), 64, "{key}");
        let err = write(&dir, &translation(KeySource::Secret("s".repeat(20))), false);
        assert!(matches!(err, Err(OutputError::Exists { .. })), "{err:?}");
        assert_eq!(fs::read_to_string(dir.join("authkey")).unwrap(), key);
        write(&dir, &translation(KeySource::Secret("s".repeat(20))), true).unwrap();
        assert_eq!(
            fs::read_to_string(dir.join("authkey")).unwrap(),
            format!("{}\n", "s".repeat(20))
        );
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn an_external_key_is_not_written() {
        let dir = temp("external");
        let written = write(&dir, &translation(KeySource::External), false).unwrap();
        assert_eq!(written.len(), 2);
        assert!(!dir.join("authkey").exists());
        fs::remove_dir_all(&dir).unwrap();
    }
}
