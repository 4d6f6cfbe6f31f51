#!/usr/bin/env bash
# Writes packaging/hot-text.ld, the order in which the release build links the
# daemon's code (see docs/performance.md, "What stays resident"): first what a node
# runs once started, then what only start-up runs, then the rest.
#
# It runs beta of a lab pair (scripts/lab.sh) under callgrind: start-up, then, from
# the moment the daemon lets go of start-up's pages, a standby at 10 ms, the status
# over the control socket and the status page, a takeover with hooks, checks, the
# failback. Every function that part ran goes to .text.hot, which the daemon keeps
# locked in RAM; what only the status page's thread ran goes to .text.page, which
# it does not; the rest of what start-up, a reload and the stop ran goes to
# .text.warm. Names are written without what changes from build to build (crate
# hashes), so the file keeps working while the code changes, and each instance of
# a generic function by its own type arguments (v0 names, .cargo/config.toml);
# rerun it when a change moves the loop's code (the footprint in bench/failover.sh
# shows it).
#
# Run as root, after `cargo build --release`; needs valgrind and iproute2.
# FAILOVERD=/path/to/failoverd profiles another build.
set -euo pipefail
shopt -s extglob
cd "$(dirname "$0")/.."
repo=$PWD
# shellcheck source=scripts/lab.sh
source scripts/lab.sh
# shellcheck source=scripts/sample.sh
source scripts/sample.sh

fail() {
    echo "[hot-text] FAILED: $*" >&2
    exit 1
}
[ "$(id -u)" -eq 0 ] || fail "the profile runs in network namespaces and needs root"
command -v valgrind >/dev/null || fail "needs valgrind (apt-get install valgrind)"
FAILOVERD=${FAILOVERD:-$repo/target/release/failoverd}
[ -x "$FAILOVERD" ] || fail "no $FAILOVERD: run cargo build --release first"
OUT=$repo/packaging/hot-text.ld

work=$(mktemp -d /tmp/failoverd-hot-text.XXXXXX)
alpha=""
beta=""
cleanup() {
    set +e
    [ -n "$beta" ] && kill "$beta" 2>/dev/null
    [ -n "$alpha" ] && kill "$alpha" 2>/dev/null
    sleep 1
    lab_down
    [ -n "${KEEP:-}" ] || rm -rf "$work"
}
trap cleanup EXIT
lab_up "$(lab_free_prefix failoverd-hot)" || fail "cannot build the lab"

head -c 32 /dev/urandom >"$work/authkey"
chmod 600 "$work/authkey"
printf '#!/bin/sh\nexit 0\n' >"$work/hook"
chmod 755 "$work/hook"
sample_config cluster.name=hot cluster.key_file="$work/authkey" cluster.failback_delay=2s \
    timing.interval=10ms timing.warn=30ms timing.dead=300ms timing.init_dead=1s \
    'node[1].interfaces={}' hooks.start="\"$work/hook\"" hooks.stop="\"$work/hook\"" \
    hooks.fault="\"$work/hook\"" http.listen='"127.0.0.1:9469"' >"$work/failoverd.toml"
cat >>"$work/failoverd.toml" <<EOF

[[check]]
name = "exec"
kind = "exec"
command = ["$work/hook"]
interval = "1s"

[[check]]
name = "tcp"
kind = "tcp"
address = "127.0.0.1:9469"
interval = "1s"
EOF

on() { ip netns exec "$(lab_ns "$1")" "${@:2}"; }
start_alpha() {
    ip netns exec "$(lab_ns n1)" "$FAILOVERD" run --config "$work/failoverd.toml" --node alpha \
        --socket "$work/a.sock" --state-dir "$work/a" >"$work/a.log" 2>&1 &
    alpha=$!
}
# wait_for FILE PATTERN: up to 60 s.
wait_for() {
    local _
    for _ in $(seq 600); do
        grep -q "$2" "$1" && return 0
        sleep 0.1
    done
    fail "no '$2' in $1"
}

start_alpha
sleep 2
ip netns exec "$(lab_ns n2)" valgrind --tool=callgrind --demangle=no --compress-strings=no --compress-pos=no \
    --callgrind-out-file="$work/profile.%p" "$FAILOVERD" run --config "$work/failoverd.toml" \
    --node beta --socket "$work/b.sock" --state-dir "$work/b" --log-level debug \
    >"$work/b.log" 2>&1 &
beta=$!
# The release is logged at debug level: what runs before it is start-up.
wait_for "$work/b.log" "released .* of read-only pages"
callgrind_control --dump=start-up "$beta" >/dev/null
sleep 8
on n2 "$FAILOVERD" status --socket "$work/b.sock" >/dev/null
callgrind_control --dump=running "$beta" >/dev/null
# The status page's own code, apart: its thread renders the page, and nothing on
# the heartbeat thread waits for it, so it need not stay in RAM.
for path in / /status /metrics; do
    on n2 bash -c "exec 3<>/dev/tcp/127.0.0.1/9469; printf 'GET $path HTTP/1.0\r\n\r\n' >&3; cat <&3 >/dev/null"
done
callgrind_control --dump=page "$beta" >/dev/null
kill -KILL "$alpha"
wait "$alpha" 2>/dev/null || true
ip -n "$(lab_ns n1)" link set eth0 down
ip -n "$(lab_ns n1)" link set xo down
wait_for "$work/b.log" "standby -> active"
sleep 5
ip -n "$(lab_ns n1)" addr flush dev eth0 label 'eth0:*'
ip -n "$(lab_ns n1)" link set eth0 up
ip -n "$(lab_ns n1)" link set xo up
start_alpha
wait_for "$work/b.log" "active -> standby"
sleep 3
# A reload parses the file as start-up does, and is followed by a release too.
callgrind_control --dump=running "$beta" >/dev/null
kill -HUP "$beta"
sleep 3
kill -TERM "$beta"
wait "$beta" || true
beta=""

# Functions of the executable that ran (self cost above zero), one per line. Found
# by name: once the daemon has released its pages, valgrind no longer knows which
# object the code it runs belongs to.
nm --defined-only "$FAILOVERD" | awk '$2 ~ /^[tTwW]$/ { print $3 }' | sort -u >"$work/symbols"
ran() {
    awk '
        /^fn=/ { fn = substr($0, 4); next }
        /^calls=/ { skip = 1; next }
        /^[0-9+*-]/ {
            if (skip) { skip = 0; next }
            if ($2 > 0) cost[fn] += $2
            next
        }
        END { for (f in cost) print cost[f], f }
    ' "$@" | sort -rn | cut -d' ' -f2- | sed -E "s/'[0-9]+$//" | awk '!seen[$0]++' |
        { grep -xF -f "$work/symbols" || [ $? -eq 1 ]; }
}
# A name without what changes with the build rather than the code: the crate
# disambiguators of a v0 name (the build names symbols in v0: .cargo/config.toml),
# the back references that count in characters past them, the hash of a legacy
# name (a precompiled library's).
STEM_SED=(-e 's/Cs[0-9A-Za-z]+_/Cs*_/g' -e 's/B[0-9A-Za-z]{0,3}_/B*_/g' -e 's/17h[0-9a-f]{16}E$/17h*/')
stem() {
    sed -E "${STEM_SED[@]}"
}
# The names as link patterns, by their stems, and only names a linker script reads
# unquoted. A stem may name more than one function: the same generic function
# instantiated with the same types in both of the package's crates (the library
# and the executable are both `failoverd`, told apart by their hashes alone), or
# a crate linked in two versions; the pattern takes them all, which costs a copy
# of a small function now and then, where naming them in full would tie the file
# to one build's hashes.
patterns() {
    stem | { grep -E '^[A-Za-z0-9_.$*]+$' || [ $? -eq 1 ]; } | awk '!seen[$0]++'
}
# The dumps: start-up's, the running node's (its standby, then, after the status
# page's, its takeover and failback), the status page's, and the last, from the
# reload to the exit, which has no number.
start_up=("$work"/profile.*.1)
running=("$work"/profile.*.2 "$work"/profile.*.4)
page=("$work"/profile.*.3)
stop=("$work"/profile.+([0-9]))
for dump in "${start_up[0]}" "${running[@]}" "${page[0]}" "${stop[0]}"; do
    [ -f "$dump" ] || fail "callgrind wrote no $dump"
done
ran "${running[@]}" | patterns >"$work/hot"
# Code valgrind's CPU never takes (SHA extensions), and the threads the runtime
# starts and ends as it goes, whichever the profile happened to catch: their
# functions and closures (`_RN`), not every instance of a generic function (`_RI`)
# that mentions them.
cat >>"$work/hot" <<'EOF'
_R*Cs*_4sha2*
_R*Cs*_4hmac*
_RN*Cs*_9failoverd6daemon10scheduling*
_RN*Cs*_9failoverd6daemon8resident*
_RN*Cs*_5tokio7runtime8blocking*
_RN*Cs*_3std6thread*
_RN*Cs*_3std3sys6thread*
_RN*Cs*_3std3sys3pal4unix6thread*
_RN*Cs*_3std3sys3pal4unix14stack_overflow*
EOF
awk '!seen[$0]++' "$work/hot" >"$work/hot.unique"
ran "${page[@]}" | patterns | { grep -vxF -f "$work/hot.unique" || [ $? -eq 1 ]; } >"$work/page"
cat "$work/hot.unique" "$work/page" >"$work/placed"
ran "${start_up[@]}" "${stop[@]}" | patterns | { grep -vxF -f "$work/placed" || [ $? -eq 1 ]; } >"$work/warm"
[ "$(wc -l <"$work/hot.unique")" -gt 100 ] || fail "the profile ran too little ($(wc -l <"$work/hot.unique") functions)"

# section NAME FILE [FIRST LAST]: an output section of the patterns in FILE, between
# the input sections FIRST and LAST.
section() {
    echo "  $1 :"
    echo "  {"
    [ -n "${3:-}" ] && echo "    *($3)"
    # Functions LLVM finds cold go to .text.unlikely.NAME; they are placed all the same.
    awk '{ printf "    *(.text.%s .text.unlikely.%s)\n", $0, $0 }' "$2"
    [ -n "${4:-}" ] && echo "    *($4)"
    echo "  }"
}
{
    echo "/* Written by scripts/hot-text.sh; see docs/performance.md. The daemon's code in"
    echo "   the order it runs: what a running node runs, then what only start-up runs."
    echo "   Functions not named here follow in .text, as the linker lays them out. */"
    echo "SECTIONS"
    echo "{"
    # The markers by which the daemon finds the section to lock it (src/daemon/resident.rs).
    section .text.hot "$work/hot.unique" .text.failoverd_hot_start .text.failoverd_hot_end
    section .text.page "$work/page"
    section .text.warm "$work/warm"
    echo "}"
    echo "INSERT BEFORE .text;"
} >"$OUT"
echo "[hot-text] $OUT: $(wc -l <"$work/hot.unique") hot patterns, $(wc -l <"$work/page") status page patterns, $(wc -l <"$work/warm") start-up patterns"
