//! Links the daemon's code in the order it runs (packaging/hot-text.ld, from
//! scripts/hot-text.sh): what a running node runs first, then what only start-up
//! runs. The kernel maps code in large folios around each page run; with the loop's
//! code together, a node keeps about 1.5 MB of code resident instead of 3.7 MB (see
//! docs/performance.md). The script only adds sections before .text, which GNU ld
//! and lld both read. Debug builds get it too, so that the tests link with it
//! (tests/package.rs checks where the loop's code lies). FAILOVERD_HOT_TEXT=0
//! builds without it, for a linker that reads no scripts.

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
    }
}
