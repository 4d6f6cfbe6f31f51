//! The committed files that scripts/generate.sh makes from others (the manual pages,
//! the shell completions, the package's unit and copyright file) are what it makes
//! now: a changed option, configuration reference or unit fails here until they are
//! generated again. And every manual page is one that groff reads without a warning.
//!
//! Needs bash and groff (Debian: groff-base, which `.ci/run` installs when missing);
//! fails without them rather than pass untested.

use std::fs;
use std::io::ErrorKind;
use std::path::{Path, PathBuf};
use std::process::Command;

/// The directories whose every file is generated.
const GENERATED_DIRS: &[&str] = &["man", "completions"];
/// Generated files that share a directory with files written by hand.
const GENERATED_FILES: &[&str] = &["packaging/deb/failoverd.service", "packaging/deb/copyright"];

fn repository() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// A scratch directory removed on drop.
struct Scratch(PathBuf);

impl Scratch {
    fn new(test: &str) -> Scratch {
        let dir =
            std::env::temp_dir().join(format!("failoverd-generated-{test}-{}", std::process::id()));
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

/// The relative paths of the files under `dir`, sorted; none when it is missing.
fn files(dir: &Path) -> Vec<String> {
    let Ok(entries) = fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// What differs between the committed file `relative` and the one just generated
/// under `fresh`, as a line for the failure message.
fn difference(fresh: &Path, relative: &str) -> Option<String> {
    let committed = fs::read(repository().join(relative));
    let generated = fs::read(fresh.join(relative));
    match (committed, generated) {
        (Ok(committed), Ok(generated)) if committed == generated => None,
        (Ok(_), Ok(_)) => Some(format!("{relative}: differs")),
        (Err(_), Ok(_)) => Some(format!("{relative}: not committed")),
        (Ok(_), Err(_)) => Some(format!("{relative}: no longer generated")),
        (Err(e), Err(_)) => Some(format!("{relative}: neither committed nor generated ({e})")),
    }
}

#[test]
fn the_committed_generated_files_are_up_to_date() {
    let scratch = Scratch::new("compare");
    let output = Command::new("bash")
        .arg(repository().join("scripts/generate.sh"))
        .arg(&scratch.0)
        .env("FAILOVERD", env!("CARGO_BIN_EXE_failoverd"))
        .output()
        .expect("run bash scripts/generate.sh");
    assert!(
        output.status.success(),
        "scripts/generate.sh failed ({}):\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );

    let mut relatives: Vec<String> = GENERATED_FILES.iter().map(|f| f.to_string()).collect();
    for dir in GENERATED_DIRS {
        let mut names = files(&scratch.0.join(dir));
        assert!(
            !names.is_empty(),
            "scripts/generate.sh wrote nothing into {dir}/"
        );
        names.extend(files(&repository().join(dir)));
        names.sort();
        names.dedup();
        relatives.extend(names.iter().map(|name| format!("{dir}/{name}")));
    }
    let stale: Vec<String> = relatives
        .iter()
        .filter_map(|relative| difference(&scratch.0, relative))
        .collect();
    assert!(
        stale.is_empty(),
        "generated files are out of date; run scripts/generate.sh and commit the result:\n{}",
        stale.join("\n")
    );
}

#[test]
fn groff_reads_every_manual_page_without_a_warning() {
    let pages: Vec<PathBuf> = files(&repository().join("man"))
        .iter()
        .map(|name| repository().join("man").join(name))
        .collect();
    // failoverd.8, failoverd.toml.5 and one page for each command.
    assert!(pages.len() >= 10, "only {} pages in man/", pages.len());
    for page in &pages {
        // -ww: all warnings; -z: format, print nothing.
        let output = match Command::new("groff")
            .args(["-man", "-Tutf8", "-ww", "-z"])
            .arg(page)
            .output()
        {
            Ok(output) => output,
            Err(err) if err.kind() == ErrorKind::NotFound => panic!(
                "groff is not installed, so the manual pages cannot be checked: install it \
                 (Debian: apt-get install groff-base; .ci/run does this)"
            ),
            Err(err) => panic!("cannot run groff: {err}"),
        };
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            output.status.success() && stderr.is_empty(),
            "groff on {}: {}\n{stderr}",
            page.display(),
            output.status
        );
    }
}

/// The configuration page has a section for every table of the reference, and keeps
/// the keys readable as typed (a key with `_` or `-` is easy to mangle).
#[test]
fn the_configuration_page_renders_the_reference() {
    // Plain text (-P-cbu: no escape sequences, no overstrikes), in lines long enough
    // that nothing looked for is broken across two.
    let output = Command::new("groff")
        .args(["-man", "-Tutf8", "-P-cbu", "-rLL=200n"])
        .arg(repository().join("man/failoverd.toml.5"))
        .output()
        .expect("groff runs (see groff_reads_every_manual_page_without_a_warning)");
    let plain = String::from_utf8_lossy(&output.stdout);
    for needle in [
        "NAME",
        "failoverd.toml - configuration file of failoverd",
        "[cluster] (required)",
        "[timing]",
        "[[check]] (zero or more)",
        "[http]",
        "failback_delay",
        "Type: duration. Default: \"30s\".",
        "failoverd(8)",
    ] {
        assert!(
            plain.contains(needle),
            "failoverd.toml(5) as rendered lacks {needle:?}:\n{plain}"
        );
    }
}

#[test]
fn bash_completes_the_commands() {
    let script = repository().join("completions/failoverd.bash");
    // Source the completion, then ask it what follows "failoverd st".
    let probe = format!(
        "source {}; COMP_WORDS=(failoverd st); COMP_CWORD=1; COMP_LINE='failoverd st'; \
         COMP_POINT=${{#COMP_LINE}}; _failoverd failoverd st failoverd; \
         printf '%s\\n' \"${{COMPREPLY[@]}}\"",
        script.display()
    );
    let output = Command::new("bash")
        .args(["--norc", "--noprofile", "-c", &probe])
        .output()
        .expect("run bash");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let mut words: Vec<&str> = stdout.lines().collect();
    words.sort();
    assert_eq!(
        words,
        ["standby", "status"],
        "bash completion of \"failoverd st\"; stderr:\n{}",
        String::from_utf8_lossy(&output.stderr)
    );
}
