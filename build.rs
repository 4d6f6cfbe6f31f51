//! Links the daemon's code in the order it runs (packaging/hot-text.ld, from
//! scripts/hot-text.sh): what a running node runs first, then what only the status
//! page's thread runs, then what only start-up runs. The kernel maps code in large
//! folios around each page run; once the daemon has let go of start-up's pages
//! (src/daemon/resident.rs), only the folios of the code it runs come back, and with
//! that code together a node keeps about 1.4 MB of code resident instead of 3.7 MB
//! (see docs/performance.md). The first section's first and last functions are
//! markers by which the daemon finds it to lock it whole. The script names
//! functions by their v0 symbols (.cargo/config.toml), without crate hashes; a
//! build with other flags from the environment gets a warning.
//!
//! The script only adds sections before .text, which GNU ld and lld both read.
//! Debug builds get it too, so that the tests link with it (tests/package.rs checks
//! where the loop's code lies). FAILOVERD_HOT_TEXT=0 builds without it, for a
//! linker that reads no scripts: the daemon then locks no code whole, and
//! tests/package.rs fails. A path with a comma cannot be passed through -Wl: build
//! from a directory without one.

use std::env;
use std::path::Path;

fn main() {
    let script = Path::new("packaging/hot-text.ld");
    println!("cargo:rerun-if-changed={}", script.display());
    println!("cargo:rerun-if-env-changed=FAILOVERD_HOT_TEXT");
    let elf = env::var("CARGO_CFG_TARGET_OS").is_ok_and(|os| os == "linux");
    let wanted = !matches!(env::var("FAILOVERD_HOT_TEXT").as_deref(), Ok("0"));
    if elf && wanted && script.exists() {
        let path = Path::new(&env::var("CARGO_MANIFEST_DIR").unwrap_or_default()).join(script);
        println!("cargo:rustc-link-arg-bins=-Wl,-T,{}", path.display());
        // Flags from the environment replace .cargo/config.toml's, and with them
        // the v0 names the script is written in. (The fuzz targets set their own
        // and link no daemon.)
        let flags = env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default();
        let fuzzing = env::var_os("CARGO_CFG_FUZZING").is_some();
        if !fuzzing && !flags.contains("symbol-mangling-version=v0") {
            println!(
                "cargo:warning=built without -C symbol-mangling-version=v0 (RUSTFLAGS \
                 replaces .cargo/config.toml): packaging/hot-text.ld names none of this \
                 build's functions, so a running node's code is neither linked together \
                 nor locked whole (docs/packaging.md); add the flag to RUSTFLAGS"
            );
        }
    }
}
