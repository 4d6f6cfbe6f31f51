//! Who can change the files failoverd reads and runs: the configuration, the key
//! file, hooks, `exec` check programs and the fencing command.
//!
//! Each file is opened first and the opened file is checked (fstat), so that what is
//! checked is what is read; the directories above it are checked by path, since
//! whoever can write one of them can put another file in its place. Whoever can
//! change one of these files decides what failoverd runs with its privileges, or
//! learns the key. What this module decides is what counts as an error that keeps the
//! file from being used, and what only as a warning:
//!
//! - errors: not a regular file; a program without an execute bit; a file writable
//!   by group or others; a key readable by group or others; a directory above it
//!   writable by others without the sticky bit (the sticky bit keeps others from
//!   replacing what they do not own, which is why /tmp above a root-owned directory
//!   is fine);
//! - warnings: a file or directory owned by someone other than root or the user
//!   failoverd runs as (that one account can change it: often a checkout of an
//!   administrator's, rarely an attack), and a directory writable by its group
//!   (Debian's /usr/local is writable by group staff on some systems).
//!
//! Every finding that a command can end names it: the chmod or chown.

use std::fs::{self, File, OpenOptions};
use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

/// What a file is to failoverd; it decides who may read it and the words used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Use {
    /// The configuration file.
    Config,
    /// The shared key (`cluster.key_file`): read, and secret.
    Key,
    /// A hook, an `exec` check's program or the fencing command: run.
    Program,
}

/// One thing wrong with a file or a directory above it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) struct Finding {
    /// An error keeps the file from being used; a warning is reported only.
    pub(super) fatal: bool,
    /// What is wrong and the command that fixes it.
    pub(super) message: String,
}

/// A file opened for use, and what was found about it. The file is open for reading
/// for [`Use::Config`] and [`Use::Key`], and only as a handle (`O_PATH`) for a
/// program, which failoverd does not need to read and may not be allowed to.
pub(super) struct Checked {
    pub(super) file: File,
    pub(super) findings: Vec<Finding>,
}

impl Checked {
    /// The error findings' messages, joined; None when there are none.
    pub(super) fn errors(&self) -> Option<String> {
        let errors: Vec<&str> = self
            .findings
            .iter()
            .filter(|f| f.fatal)
            .map(|f| f.message.as_str())
            .collect();
        (!errors.is_empty()).then(|| errors.join("; "))
    }

    /// The warning findings' messages.
    pub(super) fn warnings(&self) -> impl Iterator<Item = &str> {
        self.findings
            .iter()
            .filter(|f| !f.fatal)
            .map(|f| f.message.as_str())
    }
}

/// Opens `path` and checks the opened file and the directories above it. Fails only
/// when the file cannot be opened; everything else is a finding.
pub(super) fn open(path: &Path, usage: Use) -> std::io::Result<Checked> {
    let mut options = OpenOptions::new();
    options.read(true);
    options.custom_flags(match usage {
        Use::Program => libc::O_PATH,
        // A FIFO would block the open, and with it `check` and every reload: with
        // O_NONBLOCK it opens at once, and fstat then says it is no regular file.
        Use::Config | Use::Key => libc::O_NONBLOCK | libc::O_NOCTTY,
    });
    let file = options.open(path)?;
    let meta = file.metadata()?;
    let daemon = nix::unistd::geteuid().as_raw();
    if !meta.is_file() {
        let findings = vec![error(format!("{} is not a regular file", path.display()))];
        return Ok(Checked { file, findings });
    }
    let mut findings = check_file(path, usage, meta.mode(), meta.uid(), daemon);
    for dir in directories_above(path) {
        // The file was opened through it a moment ago: one that cannot be read now
        // was renamed in between, which the file's own checks do not need.
        if let Ok(meta) = fs::metadata(&dir) {
            findings.extend(check_directory(&dir, path, &meta, daemon));
        }
    }
    Ok(Checked { file, findings })
}

/// What is wrong with the regular file at `path`, of `mode` and owned by `uid`, for
/// a daemon running as `daemon`.
fn check_file(path: &Path, usage: Use, mode: u32, uid: u32, daemon: u32) -> Vec<Finding> {
    let shown = path.display();
    let mode = mode & 0o7777;
    let mut findings = Vec::new();
    if usage == Use::Program && mode & 0o111 == 0 {
        findings.push(error(format!(
            "{shown} is not executable (chmod 755 {shown})"
        )));
    }
    if usage == Use::Key && mode & 0o077 != 0 {
        findings.push(error(format!(
            "{shown} has mode {mode:04o}; it must not be readable by group or others \
             (chmod 600 {shown})"
        )));
    } else if mode & 0o022 != 0 {
        let why = match usage {
            Use::Config => "it says what failoverd runs",
            Use::Key | Use::Program => "failoverd runs it",
        };
        findings.push(error(format!(
            "{shown} has mode {mode:04o}: {why}, so it must not be writable by group or \
             others (chmod go-w {shown})"
        )));
    }
    if !trusted_owner(uid, daemon) {
        let owner = user_name(uid);
        findings.push(warning(format!(
            "{shown} is owned by {owner}, not root: {owner} can change it (chown root {shown})"
        )));
    }
    findings
}

/// What is wrong with `dir`, a directory above `path`, given who may write it.
fn check_directory(dir: &Path, path: &Path, meta: &fs::Metadata, daemon: u32) -> Vec<Finding> {
    let (shown, file) = (dir.display(), path.display());
    let mode = meta.mode() & 0o7777;
    let sticky = mode & 0o1000 != 0;
    let mut findings = Vec::new();
    if !trusted_owner(meta.uid(), daemon) {
        let owner = user_name(meta.uid());
        findings.push(warning(format!(
            "{shown} is owned by {owner}, not root: {owner} can replace {file} \
             (chown root {shown})"
        )));
    }
    if sticky {
        return findings;
    }
    if mode & 0o002 != 0 {
        findings.push(error(format!(
            "{shown} has mode {mode:04o}: anyone can replace {file} (chmod o-w {shown})"
        )));
    } else if mode & 0o020 != 0 {
        let group = group_name(meta.gid());
        findings.push(warning(format!(
            "{shown} has mode {mode:04o}: members of group {group} can replace {file} \
             (chmod g-w {shown})"
        )));
    }
    findings
}

/// Every directory above `path`, up to `/`: those of the path as written and, when
/// a symbolic link leads elsewhere, those of where it leads.
fn directories_above(path: &Path) -> Vec<PathBuf> {
    let absolute = if path.is_absolute() {
        path.to_path_buf()
    } else {
        match std::env::current_dir() {
            Ok(cwd) => cwd.join(path),
            Err(_) => path.to_path_buf(),
        }
    };
    let resolved = fs::canonicalize(&absolute).ok();
    let mut dirs: Vec<PathBuf> = Vec::new();
    for path in std::iter::once(&absolute).chain(resolved.as_ref()) {
        for dir in path.ancestors().skip(1) {
            if dir.as_os_str().is_empty() || dirs.iter().any(|d| d == dir) {
                continue;
            }
            dirs.push(dir.to_path_buf());
        }
    }
    dirs
}

/// Root, or the user failoverd runs as (who can change what it runs anyway).
fn trusted_owner(uid: u32, daemon: u32) -> bool {
    uid == 0 || uid == daemon
}

fn user_name(uid: u32) -> String {
    match nix::unistd::User::from_uid(nix::unistd::Uid::from_raw(uid)) {
        Ok(Some(user)) => format!("{} (uid {uid})", user.name),
        _ => format!("uid {uid}"),
    }
}

fn group_name(gid: u32) -> String {
    match nix::unistd::Group::from_gid(nix::unistd::Gid::from_raw(gid)) {
        Ok(Some(group)) => format!("{} (gid {gid})", group.name),
        _ => format!("gid {gid}"),
    }
}

fn error(message: String) -> Finding {
    Finding {
        fatal: true,
        message,
    }
}

fn warning(message: String) -> Finding {
    Finding {
        fatal: false,
        message,
    }
}

#[cfg(test)]
mod tests {
    use std::os::unix::fs::PermissionsExt;

    use super::*;
    use crate::scratch::Scratch;

    fn chmod(path: &Path, mode: u32) {
        fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
    }

    /// A scratch directory (mode 0755) holding `name` with `mode`.
    fn file(name: &str, mode: u32) -> (Scratch, PathBuf) {
        let dir = Scratch::new("files");
        chmod(dir.path(), 0o755);
        let path = dir.join(name);
        fs::write(&path, "#!/bin/sh\n").unwrap();
        chmod(&path, mode);
        (dir, path)
    }

    fn messages(checked: &Checked, fatal: bool) -> Vec<String> {
        checked
            .findings
            .iter()
            .filter(|f| f.fatal == fatal)
            .map(|f| f.message.clone())
            .collect()
    }

    #[test]
    fn a_file_of_ours_in_a_temp_dir_is_fine() {
        // The scratch directory sits in /tmp: sticky and writable by all, as
        // nearly every test's files do.
        let (_dir, path) = file("hook", 0o755);
        let checked = open(&path, Use::Program).unwrap();
        assert_eq!(checked.findings, [], "{:?}", checked.findings);
        let (_dir, path) = file("authkey", 0o600);
        assert_eq!(open(&path, Use::Key).unwrap().findings, []);
    }

    #[test]
    fn a_writable_file_is_an_error_with_its_fix() {
        for (mode, usage) in [
            (0o775, Use::Program),
            (0o757, Use::Program),
            (0o664, Use::Config),
            (0o602, Use::Key),
        ] {
            let (_dir, path) = file("f", mode);
            let checked = open(&path, usage).unwrap();
            let errors = checked.errors().unwrap_or_default();
            let fix = if usage == Use::Key {
                format!("chmod 600 {}", path.display())
            } else {
                format!("chmod go-w {}", path.display())
            };
            assert!(
                errors.contains(&format!("{mode:04o}")) && errors.contains(&fix),
                "{mode:o} {usage:?}: {errors}"
            );
        }
    }

    #[test]
    fn a_key_readable_by_others_is_an_error_and_a_readable_program_is_not() {
        let (_dir, path) = file("authkey", 0o644);
        assert!(open(&path, Use::Key).unwrap().errors().is_some());
        let (_dir, path) = file("hook", 0o755);
        assert_eq!(open(&path, Use::Program).unwrap().errors(), None);
    }

    #[test]
    fn a_program_must_be_an_executable_regular_file() {
        let (_dir, path) = file("plain", 0o644);
        let errors = open(&path, Use::Program).unwrap().errors().unwrap();
        assert!(errors.contains("is not executable"), "{errors}");
        let dir = Scratch::new("files");
        let errors = open(dir.path(), Use::Program).unwrap().errors().unwrap();
        assert!(errors.contains("is not a regular file"), "{errors}");
        assert!(open(&dir.join("absent"), Use::Program).is_err());
    }

    #[test]
    fn a_fifo_is_refused_without_blocking() {
        let dir = Scratch::new("files");
        let path = dir.join("fifo");
        nix::unistd::mkfifo(&path, nix::sys::stat::Mode::from_bits_truncate(0o600)).unwrap();
        let errors = open(&path, Use::Key).unwrap().errors().unwrap();
        assert!(errors.contains("is not a regular file"), "{errors}");
    }

    #[test]
    fn a_directory_above_writable_by_others_is_an_error_unless_sticky() {
        let (dir, path) = file("hook", 0o755);
        chmod(dir.path(), 0o777);
        let checked = open(&path, Use::Program).unwrap();
        let errors = messages(&checked, true).join("; ");
        assert!(
            errors.contains("anyone can replace")
                && errors.contains(&format!("chmod o-w {}", dir.path().display())),
            "{errors}"
        );
        chmod(dir.path(), 0o1777);
        assert_eq!(open(&path, Use::Program).unwrap().findings, []);
    }

    #[test]
    fn a_directory_above_writable_by_its_group_is_a_warning() {
        let (dir, path) = file("hook", 0o755);
        chmod(dir.path(), 0o775);
        let checked = open(&path, Use::Program).unwrap();
        assert_eq!(checked.errors(), None);
        let warnings: Vec<&str> = checked.warnings().collect();
        assert_eq!(warnings.len(), 1, "{warnings:?}");
        assert!(
            warnings[0].contains("members of group")
                && warnings[0].contains(&format!("chmod g-w {}", dir.path().display())),
            "{warnings:?}"
        );
    }

    #[test]
    fn the_directories_above_a_symbolic_link_and_its_target_are_both_checked() {
        let (target_dir, target) = file("hook", 0o755);
        let (link_dir, _) = file("other", 0o755);
        let link = link_dir.join("hook");
        std::os::unix::fs::symlink(&target, &link).unwrap();
        chmod(target_dir.path(), 0o777);
        let errors = open(&link, Use::Program).unwrap().errors().unwrap();
        assert!(
            errors.contains(&target_dir.path().display().to_string()),
            "{errors}"
        );
    }

    #[test]
    fn a_file_owned_by_another_user_is_a_warning() {
        let path = Path::new("/etc/failoverd/hooks/start");
        // Owned by nobody, read by a daemon running as root.
        let findings = check_file(path, Use::Program, 0o755, 65534, 0);
        assert!(
            findings.len() == 1
                && !findings[0].fatal
                && findings[0].message.contains("uid 65534")
                && findings[0]
                    .message
                    .contains("chown root /etc/failoverd/hooks/start"),
            "{findings:?}"
        );
        // Owned by the user the daemon runs as: that user can change it anyway.
        assert_eq!(check_file(path, Use::Program, 0o755, 1000, 1000), []);
        assert_eq!(check_file(path, Use::Program, 0o755, 0, 1000), []);
    }
}
