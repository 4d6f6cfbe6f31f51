#!/usr/bin/env bash
# Fuzzes failoverd's parsers with cargo fuzz (libFuzzer): every target in fuzz/, or
# only those named as arguments, for FUZZ_SECONDS each (default 20). Exits non-zero
# if any target crashes; the input that did it is kept in fuzz/artifacts/<target>/
# and the fuzzer's output in fuzz/logs/<target>.log.
#
#   scripts/fuzz.sh                          every target, 20 s each
#   FUZZ_SECONDS=600 scripts/fuzz.sh         every target, 10 min each
#   FUZZ_SECONDS=3600 scripts/fuzz.sh config_parse
#
# Installs cargo-fuzz when it is missing. cargo fuzz passes flags that only nightly
# compilers accept (-Z sanitizer=address); RUSTC_BOOTSTRAP=1 makes the stable
# toolchain accept them too, so no nightly toolchain is needed. FUZZ_SANITIZER=none
# builds without AddressSanitizer (faster; Rust code needs it only around unsafe).
set -euo pipefail
cd "$(dirname "$0")/.."

seconds="${FUZZ_SECONDS:-20}"
sanitizer="${FUZZ_SANITIZER:-address}"
export RUSTC_BOOTSTRAP=1

# rustup puts cargo in ~/.cargo/bin, which a non-login shell may not have on PATH.
if ! command -v cargo >/dev/null && [ -x "$HOME/.cargo/bin/cargo" ]; then
    export PATH="$HOME/.cargo/bin:$PATH"
fi
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "scripts/fuzz.sh: installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi

if [ "$#" -gt 0 ]; then
    targets=("$@")
else
    mapfile -t targets < <(cargo fuzz list)
fi

# Seeds are generated from the current code rather than kept in git, so they always
# match the formats; the fuzzers add what they find next to them.
cargo run --quiet --example fuzz_seeds -- fuzz/corpus

# config_parse makes its key file under TMPDIR: give it a directory that goes away.
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT

# One build for all targets, so each run below starts at once.
cargo fuzz build --sanitizer "$sanitizer"

mkdir -p fuzz/logs
failed=()
for target in "${targets[@]}"; do
    log="fuzz/logs/$target.log"
    echo "scripts/fuzz.sh: $target for ${seconds}s"
    # -timeout: an input that takes this long is reported as a hang, not waited for.
    if TMPDIR="$scratch" cargo fuzz run --sanitizer "$sanitizer" "$target" \
        -- -max_total_time="$seconds" -timeout=20 >"$log" 2>&1; then
        grep -E '^Done [0-9]+ runs' "$log" | sed "s/^/  /" || true
    else
        failed+=("$target")
        tail -n 40 "$log"
        echo "scripts/fuzz.sh: $target FAILED; full output in $log"
    fi
done

passed=$((${#targets[@]} - ${#failed[@]}))
echo "fuzz: ${#targets[@]} targets run, $passed without a crash"
if [ "${#failed[@]}" -gt 0 ]; then
    echo "scripts/fuzz.sh: failing targets: ${failed[*]}; inputs in fuzz/artifacts/" >&2
    exit 1
fi
