#!/usr/bin/env bash
# Shows failoverd at work on a lab network of namespaces (see scripts/lab.sh): alpha
# holds the VIP 198.18.0.10, a client probes it every 10 ms, alpha dies (SIGKILL and
# its links cut), beta takes the VIP over, and the client's downtime is compared with
# the configured dead time. Everything it creates is removed when it exits.
#
# Run as root from anywhere. FAILOVERD=/path/to/failoverd runs another build.
set -euo pipefail
cd "$(dirname "$0")/.."
repo=$PWD

# The dead time of the config below; the demo compares the client's downtime with it.
DEAD_MS=500
VIP=198.18.0.10
PORT=9000

say() { echo "[demo] $*"; }
fail() {
    echo "[demo] FAILED: $*" >&2
    exit 1
}

[ "$(id -u)" -eq 0 ] || fail "the demo builds network namespaces and needs root"
command -v ip >/dev/null || fail "the demo needs ip from iproute2 (apt-get install iproute2)"

FAILOVERD=${FAILOVERD:-$repo/target/release/failoverd}
NETPROBE=$repo/target/release/examples/netprobe
if command -v cargo >/dev/null; then
    say "building failoverd and netprobe (cargo build --release)"
    cargo build --release --quiet --examples --bins
elif [ -x "$FAILOVERD" ] && [ -x "$NETPROBE" ]; then
    # sudo's secure_path leaves out ~/.cargo/bin.
    say "cargo is not on root's PATH: running the binaries built before"
else
    fail "cargo is not on root's PATH (sudo resets it): run \
sudo env \"PATH=\$PATH\" scripts/demo.sh, or build first with \
cargo build --release --examples --bins"
fi

# shellcheck source=scripts/lab.sh
source "$repo/scripts/lab.sh"
# shellcheck source=scripts/sample.sh
source "$repo/scripts/sample.sh"

work=$(mktemp -d /tmp/failoverd-demo.XXXXXX)
pids=()

# Stops the processes this script started (by PID), deletes its namespaces and, when
# all went well, its temp dir; after a failure the logs stay for reading.
cleanup() {
    local status=$?
    set +e
    if [ "${#pids[@]}" -gt 0 ]; then
        kill -KILL "${pids[@]}" 2>/dev/null
        wait "${pids[@]}" 2>/dev/null
    fi
    lab_down
    if [ "$status" -eq 0 ]; then
        rm -rf "$work"
        say "cleaned up: processes stopped, namespaces $LAB_PREFIX-* deleted"
    else
        say "cleaned up processes and namespaces; logs kept in $work"
    fi
}
trap cleanup EXIT
# Turn Ctrl-C and kill into a normal exit, so the EXIT trap does the cleanup.
trap 'exit 130' INT
trap 'exit 143' TERM

# forget PID: drops a process that has been waited for from the cleanup list, so its
# PID, free for reuse now, is never signalled.
forget() {
    local pid kept=()
    for pid in "${pids[@]}"; do
        [ "$pid" = "$1" ] || kept+=("$pid")
    done
    pids=("${kept[@]}")
}

# json_field NAME < summary: the value of a top-level scalar field of netprobe's JSON,
# without quotes. netprobe puts each scalar key once, before any nested object.
json_field() {
    sed -n 's/.*"'"$1"'":\("[^"]*"\|[^,}]*\).*/\1/p' | tr -d '"'
}

# show_log NAME: the end of a log, to explain a failure.
show_log() {
    echo "--- last lines of $1.log" >&2
    tail -n 20 "$work/$1.log" >&2 || true
}

lab_up "$(lab_free_prefix "fod$$")"
n1=$(lab_ns n1)
n2=$(lab_ns n2)
cl=$(lab_ns cl)
say "lab $LAB_PREFIX: gateway 198.18.0.1, client 198.18.0.100," \
    "alpha 198.18.0.11 + xo 198.19.0.1, beta 198.18.0.12 + xo 198.19.0.2"

(
    umask 077
    head -c 32 /dev/urandom >"$work/authkey"
)
chmod 600 "$work/authkey"
# The sample configuration (config/failoverd.toml) on the lab: both nodes' LAN
# interface is eth0, and there are no hooks.
sample_config \
    cluster.name=demo \
    cluster.key_file="$work/authkey" \
    cluster.failback_delay=2s \
    timing.interval=100ms \
    timing.warn=300ms \
    timing.dead="${DEAD_MS}ms" \
    timing.init_dead=1s \
    'node[1].interfaces={}' \
    'vip[0].address='"$VIP/24" \
    health.interval=200ms \
    health.timeout=200ms \
    -hooks \
    announce.interval=100ms \
    >"$work/failoverd.toml" || fail "cannot render the configuration"
say "config $work/failoverd.toml, key $work/authkey (mode 0600)"

for node in alpha beta; do
    ns=$n1
    [ "$node" = beta ] && ns=$n2
    if ! ip netns exec "$ns" "$FAILOVERD" check --config "$work/failoverd.toml" --node "$node" \
        >"$work/check-$node.log" 2>&1; then
        show_log "check-$node"
        fail "failoverd check rejected the config for $node"
    fi
done

# Each node runs the service the VIP stands for: a netprobe server named after it.
# Started before the daemons, so the first answer on the VIP tells who holds it.
ip netns exec "$n1" "$NETPROBE" serve --port "$PORT" --name alpha --duration 300s \
    >"$work/serve-alpha.log" 2>&1 &
pids+=("$!")
ip netns exec "$n2" "$NETPROBE" serve --port "$PORT" --name beta --duration 300s \
    >"$work/serve-beta.log" 2>&1 &
pids+=("$!")

# Both daemons share this host's file system, so each gets its own control socket
# and state directory (on real nodes the defaults under /run and /var/lib do).
ip netns exec "$n1" "$FAILOVERD" run --config "$work/failoverd.toml" --node alpha \
    --socket "$work/alpha.sock" --state-dir "$work/state-alpha" \
    >"$work/alpha.log" 2>&1 &
alpha_pid=$!
pids+=("$alpha_pid")
ip netns exec "$n2" "$FAILOVERD" run --config "$work/failoverd.toml" --node beta \
    --socket "$work/beta.sock" --state-dir "$work/state-beta" \
    >"$work/beta.log" 2>&1 &
pids+=("$!")
say "started failoverd alpha (pid $alpha_pid) in $n1 and beta (pid $!) in $n2; logs in $work"

say "waiting (at most 10 s) for alpha to answer on the VIP $VIP"
ip netns exec "$cl" "$NETPROBE" probe --target "$VIP:$PORT" --interval 20ms --count 500 \
    --timeout 100ms --stop-after-responder alpha --settle 0 >"$work/wait.json"
if [ "$(json_field last_responder <"$work/wait.json")" != alpha ]; then
    show_log alpha
    show_log beta
    kill -0 "$alpha_pid" 2>/dev/null || say "failoverd alpha is no longer running"
    fail "alpha did not answer on $VIP: $(cat "$work/wait.json")"
fi
say "alpha answers on $VIP after $(json_field sent <"$work/wait.json") probes"
say "n1: $(ip -n "$n1" -br addr show eth0)"

# 1000 probes 10 ms apart at most; it stops 1 s after beta's first answer.
say "probing $VIP from the client every 10 ms (at most 10 s)"
ip netns exec "$cl" "$NETPROBE" probe --target "$VIP:$PORT" --interval 10ms --count 1000 \
    --timeout 200ms --stop-after-responder beta --settle 100 >"$work/failover.json" &
probe_pid=$!
pids+=("$probe_pid")
sleep 1

say "killing alpha's failoverd (SIGKILL, pid $alpha_pid) and taking n1's eth0 and xo down"
kill -KILL "$alpha_pid"
wait "$alpha_pid" 2>/dev/null || true
forget "$alpha_pid"
ip -n "$n1" link set eth0 down
ip -n "$n1" link set xo down

wait "$probe_pid" || fail "the probe failed"
forget "$probe_pid"
summary=$(cat "$work/failover.json")
last=$(json_field last_responder <<<"$summary")
gap=$(json_field longest_gap_ms <<<"$summary")
say "probe: sent $(json_field sent <<<"$summary"), answered $(json_field answered <<<"$summary")," \
    "answers per responder $(sed -n 's/.*"responders":\({[^}]*}\).*/\1/p' <<<"$summary")"
say "responder changes: $(sed -n 's/.*"changes":\(\[.*\]\)}$/\1/p' <<<"$summary")"
if [ "$last" != beta ]; then
    show_log beta
    fail "beta did not take over: the last answer came from ${last:-nobody}"
fi
say "beta now answers on $VIP"
say "n1 (cut off): $(ip -n "$n1" -br addr show eth0)"
say "n2:           $(ip -n "$n2" -br addr show eth0)"
say "client-observed downtime: ${gap} ms (longest gap between answered probes," \
    "10 ms when none is lost); configured dead time: ${DEAD_MS} ms"
