//! The Debian package, as `cargo deb` builds it from `[package.metadata.deb]`:
//! unpacked with `dpkg-deb`, it holds what an installation needs with the modes it
//! needs, configures nothing that would start failoverd, and its unit passes
//! `systemd-analyze verify` with the binary it ships.
//!
//! The package is built once per run around the failoverd this test was built with
//! (`cargo deb --no-build`), not a release build, which would take minutes: what is
//! checked here is where files go, not how fast the binary is. Needs cargo-deb,
//! dpkg-deb and systemd-analyze (`.ci/run` installs them) and fails without them
//! rather than pass untested.

use std::collections::BTreeMap;
use std::fs;
use std::io::ErrorKind;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;

/// Where the package puts failoverd, and what its unit runs.
const BINARY: &str = "usr/sbin/failoverd";
const UNIT: &str = "usr/lib/systemd/system/failoverd.service";
const EXAMPLES: &str = "usr/share/doc/failoverd/examples";
/// The one file the package puts under /etc: dpkg keeps an administrator's edits.
const CONFFILES: &[&str] = &["/etc/logrotate.d/failoverd"];
const CARGO_DEB_INSTALL: &str = "cargo install cargo-deb --locked --version 3.8.0";

fn repository() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The package, unpacked: `root` holds its files, `control` its control files.
struct Package {
    deb: PathBuf,
    root: PathBuf,
    control: PathBuf,
    /// `dpkg-deb --contents`: path (without the leading "./") to "owner/group".
    owners: BTreeMap<String, String>,
}

/// Runs `program` with `args`; fails the test with `install` as the remedy when the
/// program is missing, and with its output when it fails.
fn run(
    program: &str,
    args: &[&str],
    install: &str,
    configure: impl FnOnce(&mut Command),
) -> Output {
    let mut command = Command::new(program);
    command.args(args);
    configure(&mut command);
    let output = match command.output() {
        Ok(output) => output,
        Err(err) if err.kind() == ErrorKind::NotFound => {
            panic!("{program} is not installed, so the package cannot be checked: {install}")
        }
        Err(err) => panic!("cannot run {program}: {err}"),
    };
    assert!(
        output.status.success(),
        "{program} {args:?} failed ({}):\n{}{}",
        output.status,
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    output
}

fn package() -> &'static Package {
    static PACKAGE: OnceLock<Package> = OnceLock::new();
    PACKAGE.get_or_init(build)
}

fn build() -> Package {
    let cargo = env!("CARGO");
    let version = Command::new(cargo).args(["deb", "--version"]).output();
    if !version.is_ok_and(|output| output.status.success()) {
        panic!(
            "cargo-deb is not installed, so the package cannot be built: \
             {CARGO_DEB_INSTALL} (.ci/run does this)"
        );
    }

    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("package");
    let _ = fs::remove_dir_all(&dir);
    // cargo deb takes the binary from <target dir>/release: give it this build's.
    let release = dir.join("target/release");
    fs::create_dir_all(&release).unwrap();
    fs::copy(env!("CARGO_BIN_EXE_failoverd"), release.join("failoverd")).unwrap();
    let deb = dir.join("failoverd.deb");
    let deb_arg = deb.to_str().expect("a UTF-8 path");
    run(
        cargo,
        &["deb", "--no-build", "--fast", "--output", deb_arg],
        CARGO_DEB_INSTALL,
        |command| {
            command
                .current_dir(repository())
                .env("CARGO_TARGET_DIR", dir.join("target"));
        },
    );

    let dpkg = "apt-get install dpkg";
    let root = dir.join("root");
    let control = dir.join("control");
    for (option, into) in [("--extract", &root), ("--control", &control)] {
        run(
            "dpkg-deb",
            &[option, deb_arg, into.to_str().unwrap()],
            dpkg,
            |_| {},
        );
    }
    let contents = run("dpkg-deb", &["--contents", deb_arg], dpkg, |_| {});
    // -rwxr-xr-x 0/0    15321336 2026-11-30 00:00 ./usr/sbin/failoverd
    let owners = String::from_utf8_lossy(&contents.stdout)
        .lines()
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let path = fields
                .get(5)?
                .trim_start_matches("./")
                .trim_end_matches('/');
            Some((path.to_string(), fields.get(1)?.to_string()))
        })
        .collect();
    Package {
        deb,
        root,
        control,
        owners,
    }
}

/// Every file (not directory) under `dir`, relative to `base`, with its mode bits.
fn files(base: &Path, dir: &Path, found: &mut BTreeMap<String, u32>) {
    for entry in fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let metadata = fs::symlink_metadata(&path).unwrap();
        if metadata.is_dir() {
            files(base, &path, found);
        } else {
            let relative = path
                .strip_prefix(base)
                .unwrap()
                .to_string_lossy()
                .into_owned();
            found.insert(relative, metadata.permissions().mode() & 0o7777);
        }
    }
}

/// The names of the files in the repository directory `dir`.
fn names(dir: &str) -> Vec<String> {
    let mut names: Vec<String> = fs::read_dir(repository().join(dir))
        .unwrap()
        .map(|entry| entry.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    names
}

/// What the package must hold, from the repository: each path with its mode.
fn expected_files() -> BTreeMap<String, u32> {
    let mut expected: BTreeMap<String, u32> = [
        (BINARY, 0o755),
        (UNIT, 0o644),
        ("etc/logrotate.d/failoverd", 0o644),
        ("usr/share/doc/failoverd/copyright", 0o644),
        ("usr/share/bash-completion/completions/failoverd", 0o644),
        ("usr/share/zsh/vendor-completions/_failoverd", 0o644),
        ("usr/share/fish/vendor_completions.d/failoverd.fish", 0o644),
    ]
    .into_iter()
    .map(|(path, mode)| (path.to_string(), mode))
    .collect();
    expected.insert(format!("{EXAMPLES}/failoverd.toml"), 0o644);
    expected.insert(
        format!("{EXAMPLES}/failoverd.service.d/hooks-as-root.conf"),
        0o644,
    );
    for dir in ["hooks", "fencing"] {
        for name in names(&format!("config/{dir}")) {
            expected.insert(format!("{EXAMPLES}/{dir}/{name}"), 0o755);
        }
    }
    for page in names("man") {
        let section = page.rsplit('.').next().unwrap();
        expected.insert(format!("usr/share/man/man{section}/{page}.gz"), 0o644);
    }
    expected
}

#[test]
fn the_package_holds_each_file_with_its_mode_owned_by_root() {
    let package = package();
    let mut found = BTreeMap::new();
    files(&package.root, &package.root, &mut found);
    let expected = expected_files();

    let mut problems = Vec::new();
    for (path, mode) in &expected {
        match found.get(path) {
            None => problems.push(format!("missing: {path}")),
            Some(actual) if actual != mode => {
                problems.push(format!("{path}: mode {actual:04o}, expected {mode:04o}"))
            }
            Some(_) => {}
        }
    }
    for path in found.keys().filter(|path| !expected.contains_key(*path)) {
        problems.push(format!("unexpected: {path}"));
    }
    for (path, owner) in &package.owners {
        if owner != "0/0" && owner != "root/root" {
            problems.push(format!("{path}: owned by {owner}, not root"));
        }
    }
    assert!(
        problems.is_empty(),
        "{}: [package.metadata.deb] in Cargo.toml and this test disagree:\n{}",
        package.deb.display(),
        problems.join("\n")
    );
}

/// The only file under /etc is the log rotation rules: an active
/// /etc/failoverd/failoverd.toml would let failoverd start with the example's
/// addresses; it is an example under /usr/share/doc instead.
#[test]
fn the_package_brings_no_configuration_only_an_example() {
    let package = package();
    let conffiles = fs::read_to_string(package.control.join("conffiles")).unwrap_or_default();
    let conffiles: Vec<&str> = conffiles.lines().collect();
    assert_eq!(conffiles, CONFFILES, "conffiles of the package");
    let mut under_etc = BTreeMap::new();
    files(&package.root, &package.root.join("etc"), &mut under_etc);
    let under_etc: Vec<String> = under_etc
        .into_keys()
        .map(|path| format!("/{path}"))
        .collect();
    assert_eq!(under_etc, CONFFILES, "files under /etc in the package");
    let example = fs::read(package.root.join(EXAMPLES).join("failoverd.toml")).unwrap();
    assert_eq!(
        example,
        fs::read(repository().join("config/failoverd.toml")).unwrap()
    );
}

#[test]
fn the_packaged_manual_pages_are_the_generated_ones() {
    let package = package();
    for page in names("man") {
        let section = page.rsplit('.').next().unwrap();
        let packaged = package
            .root
            .join(format!("usr/share/man/man{section}/{page}.gz"));
        let output = run(
            "gzip",
            &["--decompress", "--stdout", packaged.to_str().unwrap()],
            "apt-get install gzip",
            |_| {},
        );
        let generated = fs::read(repository().join("man").join(&page)).unwrap();
        assert!(
            output.stdout == generated,
            "{page} in the package is not man/{page}"
        );
    }
}

/// Debian's copyright file is LICENSE in DEP-5 form (packaging/deb/copyright), not
/// the stub cargo-deb writes when it finds none.
#[test]
fn the_packaged_copyright_file_carries_the_license() {
    let packaged = fs::read(package().root.join("usr/share/doc/failoverd/copyright")).unwrap();
    let written = fs::read(repository().join("packaging/deb/copyright")).unwrap();
    assert!(
        packaged == written,
        "usr/share/doc/failoverd/copyright is not packaging/deb/copyright:\n{}",
        String::from_utf8_lossy(&packaged)
    );
}

#[test]
fn the_packaged_binary_runs() {
    let binary = package().root.join(BINARY);
    let output = run(binary.to_str().unwrap(), &["--version"], "", |_| {});
    assert_eq!(
        String::from_utf8_lossy(&output.stdout).trim(),
        concat!("failoverd ", env!("CARGO_PKG_VERSION"))
    );
}

/// `path` as the first word of a systemd command line.
fn systemd_word(path: &Path) -> String {
    let path = path.to_str().expect("a UTF-8 path");
    let escaped = path
        .replace('\\', "\\\\")
        .replace('"', "\\\"")
        .replace('%', "%%")
        .replace('$', "$$");
    format!("\"{escaped}\"")
}

/// The packaged unit runs the packaged binary, and systemd accepts it: verified with
/// ExecStart pointing at the binary unpacked from the same package.
#[test]
fn systemd_analyze_verify_accepts_the_packaged_unit() {
    let package = package();
    let unit = fs::read_to_string(package.root.join(UNIT)).unwrap();
    let starts: Vec<&str> = unit
        .lines()
        .filter_map(|line| line.strip_prefix("ExecStart="))
        .collect();
    let program = format!("/{BINARY}");
    assert_eq!(
        starts,
        [format!(
            "{program} run --config /etc/failoverd/failoverd.toml"
        )],
        "ExecStart of the packaged unit"
    );
    let reloads: Vec<&str> = unit
        .lines()
        .filter_map(|line| line.strip_prefix("ExecReload="))
        .collect();
    assert_eq!(
        reloads,
        [format!(
            "{program} reload --config /etc/failoverd/failoverd.toml --main-pid $MAINPID"
        )],
        "ExecReload of the packaged unit"
    );
    for setting in ["WantedBy=multi-user.target", "Type=notify"] {
        assert!(
            unit.lines().any(|line| line == setting),
            "no {setting} in the packaged unit"
        );
    }

    let dir = package.root.parent().unwrap().join("verify");
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir).unwrap();
    let unpacked = systemd_word(&package.root.join(BINARY));
    let runnable = unit
        .replace(
            &format!("ExecStart={program} "),
            &format!("ExecStart={unpacked} "),
        )
        .replace(
            &format!("ExecReload={program} "),
            &format!("ExecReload={unpacked} "),
        );
    let path = dir.join("failoverd.service");
    fs::write(&path, runnable).unwrap();
    let output = Command::new("systemd-analyze")
        .arg("verify")
        .arg(&path)
        .env("SYSTEMD_COLORS", "0")
        .output();
    let output = match output {
        Ok(output) => output,
        Err(err) if err.kind() == ErrorKind::NotFound => panic!(
            "systemd-analyze is not installed, so the unit cannot be checked: install it \
             (Debian: apt-get install systemd; .ci/run does this)"
        ),
        Err(err) => panic!("cannot run systemd-analyze: {err}"),
    };
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    // Lines about other units (their own quirks on this machine) are not ours.
    let ours: Vec<&str> = stdout
        .lines()
        .chain(stderr.lines())
        .filter(|line| line.contains("failoverd"))
        .collect();
    assert!(
        ours.is_empty() && output.status.success(),
        "systemd-analyze verify on the packaged unit ({}):\n{}",
        output.status,
        ours.join("\n")
    );
}

/// What postinst runs, with every command it could use to change the system
/// replaced by one that records its arguments: `install` and the systemd tools.
/// `upgrade_from` is the version an upgrade replaces; none for a first install.
fn run_postinst(upgrade_from: Option<&str>) -> (Vec<String>, String) {
    let package = package();
    let dir = package
        .root
        .parent()
        .unwrap()
        .join(format!("postinst-{}", upgrade_from.unwrap_or("install")));
    let _ = fs::remove_dir_all(&dir);
    let stubs = dir.join("bin");
    fs::create_dir_all(&stubs).unwrap();
    let log = dir.join("calls");
    // deb-systemd-helper answers as on a first install (installed by no package yet;
    // was-enabled is true when nothing is known); systemctl says that failoverd runs.
    let stub = |name: &str, status: &str| {
        let path = stubs.join(name);
        fs::write(
            &path,
            format!(
                "#!/bin/sh\necho \"{name} $*\" >>'{}'\n{status}\n",
                log.display()
            ),
        )
        .unwrap();
        fs::set_permissions(&path, fs::Permissions::from_mode(0o755)).unwrap();
    };
    stub("install", "exit 0");
    stub("systemctl", "exit 0");
    stub("deb-systemd-invoke", "exit 0");
    stub(
        "deb-systemd-helper",
        "case \"$1\" in debian-installed) exit 1;; esac; exit 0",
    );

    let postinst = package.control.join("postinst");
    let mut args = vec![postinst.to_str().expect("a UTF-8 path"), "configure"];
    args.extend(upgrade_from);
    let path = format!(
        "{}:{}",
        stubs.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let output = run("sh", &args, "", |command| {
        command.env("PATH", path);
    });
    let calls = fs::read_to_string(&log).unwrap_or_default();
    let _ = fs::remove_dir_all(&dir);
    (
        calls.lines().map(str::to_string).collect(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
    )
}

/// A first install creates /etc/failoverd for root alone and neither enables nor
/// starts failoverd; an upgrade does not restart it, since a restart hands the
/// VIPs over, but says that the old version still runs.
#[test]
fn postinst_creates_etc_failoverd_and_starts_nothing() {
    // What runs only where systemd runs, which the stubs below cannot show here.
    let postinst = fs::read_to_string(package().control.join("postinst")).unwrap();
    assert!(
        !postinst.contains("deb-systemd-invoke"),
        "postinst starts or restarts a unit:\n{postinst}"
    );
    let (calls, _) = run_postinst(None);
    // Where /etc/failoverd exists, postinst leaves it as it is.
    if !Path::new("/etc/failoverd").is_dir() {
        assert!(
            calls.contains(&"install -d -m 0750 -o root -g root /etc/failoverd".to_string()),
            "postinst did not create /etc/failoverd 0750 root:root; it ran:\n{}",
            calls.join("\n")
        );
    }
    let (upgrade_calls, said) = run_postinst(Some("0.0.1"));
    for call in calls.iter().chain(&upgrade_calls) {
        let words: Vec<&str> = call.split_whitespace().collect();
        let changes_a_service = words.iter().any(|word| {
            matches!(
                *word,
                "start" | "restart" | "try-restart" | "reload-or-restart" | "enable"
            )
        });
        assert!(
            !changes_a_service,
            "postinst ran `{call}`: the package must not start or enable failoverd"
        );
    }
    // postinst asks systemd only where systemd runs.
    if Path::new("/run/systemd/system").is_dir() {
        assert!(
            said.contains("systemctl restart failoverd"),
            "an upgrade with failoverd running says nothing about restarting it: {said:?}"
        );
    }
}

/// prerm stops failoverd when the package is removed, not when it is upgraded.
#[test]
fn prerm_stops_failoverd_only_on_removal() {
    let prerm = fs::read_to_string(package().control.join("prerm")).unwrap();
    let stop = prerm
        .lines()
        .position(|line| line.contains("deb-systemd-invoke stop"))
        .expect("prerm stops failoverd");
    let guard = prerm
        .lines()
        .take(stop)
        .any(|line| line.contains("\"$1\" = remove"));
    assert!(guard, "prerm stops failoverd on upgrades too:\n{prerm}");
}

/// What binutils' `tool` prints for `args`.
fn binutils(tool: &str, args: &[&str]) -> String {
    let output = run(tool, args, "apt-get install binutils", |_| {});
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// The address ranges of the sections `names` in the executable at `binary`, from
/// `readelf -SW`.
fn sections(binary: &str, names: &[&str]) -> Vec<std::ops::Range<u64>> {
    let listing = binutils("readelf", &["-SW", binary]);
    names
        .iter()
        .map(|name| {
            let fields: Vec<&str> = listing
                .lines()
                .filter_map(|line| line.split_once(']'))
                .map(|(_, rest)| rest.split_whitespace().collect::<Vec<_>>())
                .find(|fields| fields.first() == Some(name))
                .unwrap_or_else(|| {
                    panic!(
                        "{binary} has no {name} section (built with FAILOVERD_HOT_TEXT=0, or \
                         a linker that ignored packaging/hot-text.ld):\n{listing}"
                    )
                });
            let hex = |field: &str| u64::from_str_radix(field, 16).unwrap();
            let (start, size) = (hex(fields[2]), hex(fields[4]));
            start..start + size
        })
        .collect()
}

/// packaging/hot-text.ld names functions without what changes from one build of the
/// same code to the next (a crate disambiguator `Cs<hash>_` in a v0 name, the hash
/// `17h<hash>E` of a legacy one): a name with one would place its function in one
/// build and in no other, with nothing to say so.
#[test]
fn the_order_of_the_code_names_no_build_s_hash() {
    let path = concat!(env!("CARGO_MANIFEST_DIR"), "/packaging/hot-text.ld");
    let script = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let hashed: Vec<&str> = script
        .lines()
        .filter(|line| has_crate_hash(line) || has_legacy_hash(line))
        .collect();
    assert!(
        hashed.is_empty(),
        "{path} names {} functions with a build's hash in them (scripts/hot-text.sh \
         writes stems), among them:\n{}",
        hashed.len(),
        hashed
            .iter()
            .take(5)
            .copied()
            .collect::<Vec<_>>()
            .join("\n")
    );
    assert!(
        script.contains("Cs*_9failoverd"),
        "{path} names none of failoverd's functions"
    );
}

/// Whether `text` holds `Cs`, base-62 digits and `_`: a v0 crate disambiguator.
fn has_crate_hash(text: &str) -> bool {
    text.match_indices("Cs").any(|(at, _)| {
        let rest = &text[at + 2..];
        let digits = rest.bytes().take_while(u8::is_ascii_alphanumeric).count();
        digits > 0 && rest.as_bytes().get(digits) == Some(&b'_')
    })
}

/// Whether `text` holds `17h`, sixteen hex digits and `E`: a legacy name's hash.
fn has_legacy_hash(text: &str) -> bool {
    text.match_indices("17h").any(|(at, _)| {
        let rest = &text.as_bytes()[at + 3..];
        rest.len() > 16 && rest[..16].iter().all(u8::is_ascii_hexdigit) && rest[16] == b'E'
    })
}

/// The release build links what a running node runs first, the status page's own
/// code next and what only start-up runs after it (packaging/hot-text.ld, through
/// build.rs); so does the build under test, so that a script the linker refuses, or
/// one whose names the code no longer has, fails here rather than in a release. Its
/// names carry no crate hashes, which differ between this build and a release one,
/// so finding its functions here also shows that the names hold across builds.
#[test]
fn the_code_a_running_node_runs_is_linked_together() {
    let binary = env!("CARGO_BIN_EXE_failoverd");
    let ranges = sections(binary, &[".text.hot", ".text.page", ".text.warm"]);
    let (hot, page, warm) = (&ranges[0], &ranges[1], &ranges[2]);
    let listing = binutils("nm", &["--defined-only", "--demangle", binary]);
    // (address, demangled name) of every symbol.
    let symbols: Vec<(u64, &str)> = listing
        .lines()
        .filter_map(|line| {
            let mut fields = line.splitn(3, ' ');
            let address = u64::from_str_radix(fields.next()?, 16).ok()?;
            Some((address, fields.nth(1)?))
        })
        .collect();
    let address = |function: &str| {
        symbols
            .iter()
            .find(|(_, name)| *name == function)
            .map(|(address, _)| *address)
            .unwrap_or_else(|| panic!("{binary} has no function {function}"))
    };
    for (function, section, range) in [
        ("<failoverd::machine::Machine>::dispatch", ".text.hot", hot),
        (
            "<failoverd::wire::heartbeat::Heartbeat>::parse",
            ".text.hot",
            hot,
        ),
        ("failoverd::daemon::receive::poll_links", ".text.hot", hot),
        ("failoverd::view::metrics::families", ".text.page", page),
        ("failoverd::config::files::open", ".text.warm", warm),
    ] {
        let at = address(function);
        assert!(
            range.contains(&at),
            "{function} is at {at:#x}, outside {section} ({range:x?})"
        );
    }
    // The instances of one generic function are told apart by their type
    // arguments: the file's deserializers, which start-up and a reload run, lie
    // outside the code that stays locked, though the control socket's requests,
    // deserialized by the same generic functions, lie in it.
    let deserializers: Vec<(u64, &str)> = symbols
        .iter()
        .filter(|(_, name)| name.contains("::deserialize::<") && name.contains("toml::"))
        .copied()
        .collect();
    let in_hot: Vec<&str> = deserializers
        .iter()
        .filter(|(at, _)| hot.contains(at))
        .map(|(_, name)| *name)
        .collect();
    assert!(
        in_hot.is_empty(),
        "the configuration's deserializers lie in .text.hot: {in_hot:#?}"
    );
    assert!(
        deserializers.iter().any(|(at, _)| warm.contains(at)),
        "none of the configuration's {} deserializers lies in .text.warm",
        deserializers.len()
    );
    // The daemon finds the section to lock by the two functions around it.
    let start = address("failoverd::daemon::resident::hot_start");
    let end = address("failoverd::daemon::resident::hot_end");
    assert_eq!(start, hot.start, "hot_start is not the first of .text.hot");
    assert!(
        hot.contains(&end) && hot.end - end <= 64,
        "hot_end at {end:#x} is not the last of .text.hot ({hot:x?})"
    );
}
