#!/usr/bin/env bash
# Runs every test of failoverd: unit tests, integration tests and the end-to-end tests
# that build network namespaces. Extra arguments go to `cargo test`.
#
# The end-to-end tests run netprobe from target/<profile>/examples, so the examples are
# built first; `cargo test` alone builds them only as test harnesses.
set -euo pipefail
cd "$(dirname "$0")/.."

if [ "$(id -u)" -ne 0 ]; then
    echo "scripts/test.sh: the end-to-end tests build network namespaces and need root;" \
        "run this as root" >&2
    exit 1
fi

if ! command -v cargo >/dev/null; then
    # sudo's secure_path leaves out ~/.cargo/bin.
    echo "scripts/test.sh: cargo is not on root's PATH (sudo resets it): run" \
        "sudo env \"PATH=\$PATH\" scripts/test.sh" >&2
    exit 1
fi

cargo build --examples
# The examples' and benches' harnesses first (netprobe's unit tests; a quick run of
# each micro-benchmark), then the library, binary and integration tests, so the
# closing summary is that of a real test suite.
cargo test --examples --benches "$@"
cargo test --lib --bins --tests "$@"
