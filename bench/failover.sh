#!/usr/bin/env bash
# Failover benchmark: failoverd and keepalived side by side, on the namespace lab of
# scripts/lab.sh, configured as equivalently as the two allow.
#
# For every daemon, heartbeat interval, scenario and repetition it builds a fresh lab,
# starts the daemon on alpha (n1, priority 200) and beta (n2, priority 100), waits
# until alpha holds the VIP 198.18.0.10 and beta stands by, then has the client probe
# the VIP every 10 ms while one event happens (on alpha, but in paused-standby). Per
# run it records what the client saw (longest gap between answers, lost probes,
# changes of responder), the longest time both nodes held the VIP, and the daemons'
# logs.
#
# Scenarios (alpha is the active node):
#   node-death       daemon SIGKILLed, then alpha's eth0 and xo taken down
#   graceful         daemon SIGTERMed: a planned handover
#   crossover        alpha's xo taken down: nothing should move
#   gateway          blackhole route to the gateway inside alpha: the VIP should move
#   failback-auto    alpha stopped (SIGTERM), beta active, alpha started again: the
#                    VIP should come back after the failback delay (2 s)
#   failback-manual  the same with manual failback: nothing should move
#   pause            alpha's daemon SIGSTOPped for dead + 1 s, then SIGCONTed; its
#                    kernel and service go on answering for the VIP meanwhile, so,
#                    as in daemon-crash, nothing should move: a takeover would put
#                    the VIP on both nodes (failoverd's standby holds off while the
#                    VIP answers, [split_brain] live_vip). Reported in two rows,
#                    "pause: while stopped" and "pause: resumed" (from just before
#                    the resume). Runs recorded by this script before 2026-12-01
#                    21:00 have the rows "pause: takeover" and "pause: after
#                    resume" instead, judged as they were then (beta takes over,
#                    and keeps the VIP), an expectation from before the guard
#   service-death    an HTTP service on both nodes (netprobe http-serve), checked by
#                    each daemon every SERVICE_CHECK_S with SERVICE_FALL failures to
#                    fail it: failoverd with an http check, keepalived with a
#                    vrrp_script running curl; alpha's service is SIGKILLed, the VIP
#                    should move (the daemons stay up: the client's gap is the
#                    handover, "move after" is detection plus handover)
#   daemon-crash     alpha's daemon SIGKILLed (keepalived: both its processes), its
#                    namespace, links, VIP and responder left up: alpha's kernel goes
#                    on serving the VIP, so nothing should move and beta should never
#                    hold the VIP too (failoverd's standby probes the VIP and finds it
#                    answered; keepalived's backup takes it over beside alpha's)
#   crash-restart    the same, and the daemon started again 1 s later with the same
#                    command line: nothing should move and the client should see no
#                    gap (failoverd adopts the VIP it finds; keepalived's restarted
#                    instance removes it and adds it again, or beta took it meanwhile)
#   paused-standby   beta's daemon SIGSTOPped for 3 × dead, then SIGCONTed: beta
#                    should never hold the VIP, before or after the resume (a resumed
#                    keepalived backup may go master for a moment)
#   busy-host        both nodes settled, then BUSY_THREADS CPU-bound threads in each
#                    node's namespace (pressure spin, 64 in all) for BUSY_S seconds,
#                    the client's probe and the responders at SCHED_FIFO BUSY_RT so
#                    that only the daemons can be starved: nothing should move. Besides the usual columns, its own table
#                    gives, side by side, the client's changes of responder, the
#                    daemons' role changes (failoverd: "-> active" and "-> standby"
#                    lines; keepalived: its LAN instance's "Entering MASTER STATE" and
#                    "Entering BACKUP STATE" lines), probes answered by both nodes,
#                    and the scheduling classes of each daemon's threads. keepalived
#                    runs at its defaults, as Debian's package starts it (no
#                    vrrp_rt_priority, vrrp_priority or vrrp_no_swap); failoverd at its
#                    own ([scheduling] realtime_priority 10, lock_memory on)
#
# Usage, as root from anywhere:
#   bench/failover.sh
#   REPS=1 SCENARIOS="node-death graceful" INTERVALS=100 FAST=0 FOOTPRINT=0 bench/failover.sh
#
# Settings (environment):
#   REPS=3           repetitions of every (daemon, interval, scenario)
#   REPS_<SCENARIO>  repetitions of one scenario instead (REPS_NODE_DEATH,
#                    REPS_FAILBACK_AUTO, REPS_PAUSE, ...). REPS_NODE_DEATH is 10 when
#                    REPS is not set: node death is where the two daemons come
#                    closest, so its ratios need the most runs to tell apart from the
#                    noise (the 10 ms interval of FAST too). With REPS set, it follows
#                    REPS unless set itself.
#   SCENARIOS=...    space-separated subset of the scenarios above (default: all)
#   INTERVALS="1000 100"  heartbeat / advert intervals in ms
#   DAEMONS="failoverd keepalived"
#   VIPS="1"         VIP counts to run every scenario with, e.g. VIPS="1 200 1000" with
#                    SCENARIOS="graceful node-death": the client probes the first VIP,
#                    198.18.0.10/24, the others are /32s in 198.18.4.0/22 (at most
#                    1001 VIPs in all). Rows with more than one VIP are named
#                    "SCENARIO, N VIPs". keepalived sits out counts above 255, the
#                    most one VRRP instance carries (an advertisement counts its
#                    addresses in one byte)
#   PROBE_MS=10      the client's probe period in ms; downtimes are only as fine as
#                    this. PROBE_MS=2 for a finer look at short handovers
#   CLIENT_RT=0      N > 0: the client's probe and the responders at SCHED_FIFO N in
#                    every scenario but busy-host (which runs them at BUSY_RT), so that the lab's
#                    two shared cores, busy with a daemon's realtime thread adding
#                    or removing a thousand VIPs, do not stall the observer: on
#                    real machines the client and the service run on CPUs of
#                    their own
#   FAST=1           also node-death at a 10 ms interval (when node-death is selected)
#   KA_PATHS=2       keepalived heartbeats over the LAN and the crossover, as failoverd
#                    does (two VRRP instances in a sync group, see keepalived_conf);
#                    1: over the LAN only, as in the first published run; keepalived
#                    then sits out the crossover scenario, and its rows are "not
#                    comparable"
#   FOOTPRINT=1      idle RSS and CPU time of both daemons (FOOTPRINT_SLOW_SECS=30
#                    at 1 s, FOOTPRINT_SECS=20 at 100 ms, FOOTPRINT_FAST_SECS=10 at
#                    10 ms; 0 skips that one),
#                    both measured at the same time, each in its own lab,
#                    FOOTPRINT_REPS=3 times
#   FO_REALTIME=1    failoverd at its scheduling defaults (heartbeat thread at SCHED_RR
#                    10, memory locked); 0 turns both off ([scheduling]
#                    realtime_priority = 0, lock_memory = false), to see what they
#                    change, in busy-host above all
#   KA_REALTIME=0    keepalived at its defaults; 1 gives it failoverd's footing
#                    (vrrp_rt_priority 10: the VRRP process at SCHED_RR 10;
#                    vrrp_no_swap: its memory locked), to compare the two on the same
#                    scheduling, the idle footprint above all
#   RESULTS=bench/results  where the Markdown and JSON results go
#   KEEP_LOGS=1      keep the per-run logs (printed path); 0 deletes them at the end
#   REPORT_FROM=FILE.json  measure nothing: make the report again from the runs of an
#                    earlier result (as RESULTS/FILE.md and .json), with this script's
#                    rules for ok and noise; needs neither root nor a build
#
# The report (see "report" below) gives, per scenario and interval, each daemon's
# downtime as median [min-max], the failoverd/keepalived ratio of the medians with a
# 90 % bootstrap interval, and whether the ratio stands out of the noise of the runs
# ("ranges apart", "outside noise") or not ("within noise").
#
# Installs keepalived, iputils-ping, jq and python3 from Debian's packages when
# missing, and builds failoverd and netprobe in release mode. Every namespace it makes
# has a name unique to this run and is deleted on exit; nothing is added to the host's
# namespace.
set -uo pipefail
export LC_ALL=C
cd "$(dirname "$0")/.." || exit 1
repo=$PWD

if [ -z "${REPS:-}" ]; then
    REPS=3
    REPS_NODE_DEATH=${REPS_NODE_DEATH:-10}
fi
ALL_SCENARIOS="node-death graceful crossover gateway failback-auto failback-manual pause service-death daemon-crash crash-restart paused-standby busy-host"
SCENARIOS=${SCENARIOS:-$ALL_SCENARIOS}
INTERVALS=${INTERVALS:-"1000 100"}
VIPS=${VIPS:-1}
DAEMONS=${DAEMONS:-"failoverd keepalived"}
FAST=${FAST:-1}
KA_PATHS=${KA_PATHS:-2}
FOOTPRINT=${FOOTPRINT:-1}
FOOTPRINT_SLOW_SECS=${FOOTPRINT_SLOW_SECS:-30}
FOOTPRINT_SECS=${FOOTPRINT_SECS:-20}
FOOTPRINT_FAST_SECS=${FOOTPRINT_FAST_SECS:-10}
FOOTPRINT_REPS=${FOOTPRINT_REPS:-3}
RESULTS=${RESULTS:-bench/results}
KEEP_LOGS=${KEEP_LOGS:-1}
FO_REALTIME=${FO_REALTIME:-1}
KA_REALTIME=${KA_REALTIME:-0}

VIP=198.18.0.10
# keepalived's crossover instance (KA_PATHS=2) must have a VIP of its own; nothing
# uses it.
KA_XO_VIP=198.19.0.254
GATEWAY=198.18.0.1
PORT=9000
# The client's probe period; downtimes are only as fine as this. PROBE_MS=2 (or 1)
# for a finer look at short handovers, such as a planned one with many VIPs.
PROBE_MS=${PROBE_MS:-10}
# Time between the start of the probe and the event, so the old holder answers first;
# each run adds a random part below one interval, so that events fall at every phase
# of the heartbeat cadence rather than at one that the script's sleeps happen to pick.
PRE_BASE_MS=500
# Both daemons: one gateway ping a second (keepalived's vrrp_script interval is whole
# seconds, at least 1), 1 s timeout, 3 failures to lose it, 1 answer to restore it.
HEALTH_S=1
HEALTH_FAILURES=3
# service-death: the service's port, and both daemons' check of it: one run a second
# (keepalived's vrrp_script interval is whole seconds, at least 1), 1 s timeout,
# SERVICE_FALL failures to fail it, one pass to pass again.
SERVICE_PORT=8080
SERVICE_CHECK_S=1
SERVICE_FALL=2
# Failback delay (failoverd failback_delay, keepalived preempt_delay).
FAILBACK_S=2
# crash-restart: from the SIGKILL to the daemon's new start.
CRASH_RESTART_MS=1000
# Upper bound of the overlap poller's period. With many VIPs each sample reads a
# routing table of thousands of lines (about 2 ms a node with 1,000 VIPs), which at
# this period would take a core from the daemons being measured; those runs sample
# every POLL_MANY_S instead (the report gives the resolution achieved).
POLL_S=0.005
POLL_MANY_S=0.05
# busy-host: CPU-bound threads per node namespace and how long they spin, as
# tests/steadiness.rs loads its pair (64 threads on a 2-core host is a load average
# far above the core count, as a runaway job or a build makes it); then how long the
# client goes on probing after the load ends.
BUSY_THREADS=32
BUSY_S=15
BUSY_AFTER_MS=2000
# busy-host: the client's probe and the nodes' responders (netprobe serve) run at
# this SCHED_FIFO priority, so that neither the observer nor the answering service is
# starved: what the client loses, the VIP's moves lost, not a responder that the
# hogs kept off the CPU. Each handles one datagram every 10 ms and takes almost
# nothing from the daemons.
BUSY_RT=50
CLIENT_RT=${CLIENT_RT:-0}

say() { echo "[bench] $*" >&2; }
fail() {
    echo "[bench] FAILED: $*" >&2
    exit 1
}
now_us() { echo "${EPOCHREALTIME/./}"; }
sleep_ms() { sleep "$(awk -v m="$1" 'BEGIN { printf "%.3f", m / 1000 }')"; }

for s in $SCENARIOS; do
    [[ " $ALL_SCENARIOS " == *" $s "* ]] || fail "unknown scenario $s (known: $ALL_SCENARIOS)"
done
for d in $DAEMONS; do
    [[ $d == failoverd || $d == keepalived ]] || fail "unknown daemon $d"
done
# reps_var SCENARIO: the name of its repetitions setting, REPS_NODE_DEATH and the like.
reps_var() {
    local var=REPS_${1//-/_}
    echo "${var^^}"
}
# reps_for SCENARIO: the repetitions of SCENARIO, REPS_<SCENARIO> or else REPS.
reps_for() {
    local var
    var=$(reps_var "$1")
    echo "${!var:-$REPS}"
}
[[ $REPS =~ ^[1-9][0-9]*$ ]] || fail "REPS must be a positive number"
for s in $ALL_SCENARIOS; do
    [[ $(reps_for "$s") =~ ^[1-9][0-9]*$ ]] || fail "$(reps_var "$s") must be a positive number"
done
[[ $KA_PATHS == 1 || $KA_PATHS == 2 ]] || fail "KA_PATHS must be 1 or 2"
[[ $FO_REALTIME == 0 || $FO_REALTIME == 1 ]] || fail "FO_REALTIME must be 0 or 1"
[[ $KA_REALTIME == 0 || $KA_REALTIME == 1 ]] || fail "KA_REALTIME must be 0 or 1"
[[ $PROBE_MS =~ ^([1-9]|[1-9][0-9]|1[0-9][0-9])$ ]] ||
    fail "PROBE_MS must be a whole number of milliseconds, 1 to 199 (below the probe's 200 ms timeout)"
[[ $CLIENT_RT =~ ^(0|[1-9][0-9]?)$ ]] || fail "CLIENT_RT must be 0 (off) or a SCHED_FIFO priority, 1 to 99"
for n in $VIPS; do
    [[ $n =~ ^[1-9][0-9]*$ ]] && ((n <= 1001)) || fail "VIPS: $n is not a count from 1 to 1001"
done
# The VIPs' count of the runs being made (one of VIPS).
NVIPS=1
# --- report ------------------------------------------------------------------------
#
# A run writes its raw record (machine, settings, runs, footprint) and then the
# report: `summarize` judges every row (JQ_JUDGE), groups the rows by (row,
# interval), and adds each ratio with its noise verdict; `render` writes the
# Markdown. REPORT_FROM=FILE.json does only these two steps, on the runs of an
# earlier result, so a new report format or new rules apply to measured data.

# The bootstrap of the ratios: resamples per row, and the seed (a run's report can be
# made again, with the same intervals, from its JSON).
BOOT_RESAMPLES=1000
BOOT_SEED=1

# The outcome each result row expects, and the verdict on a row: one jq program for
# the run log and the report. For each row, `from` answers the client before the
# event and `to` should answer at the end; from == to means nothing should move. A row
# is ok when
#   - a move is expected: the client saw `from` first and `to` last;
#   - nothing should move: the client saw `from` alone (no change of responder), and
#     the VIP was never on both nodes (overlap 0) nor ever added on the other node
#     (stray adds 0: the address events catch a hold too brief for the poller),
#     except in the rows of a pause recorded before 2026-12-01 21:00 ("pause: after
#     resume"), which expected a takeover and where the resumed node held the VIP by
#     construction until it let go. Records from before the address events have no
#     stray adds (null), and only the overlap counts there.
# Downtime is the longest gap the client saw; in a move that did not happen
# correctly it measures nothing and is left out (null), in a no-move row it stays,
# since a move that should not have happened is downtime like any other.
# shellcheck disable=SC2016 # jq's $variables, not the shell's
JQ_JUDGE='
def expectation:
    {
        "node-death": {from: "alpha", to: "beta"},
        "graceful": {from: "alpha", to: "beta"},
        "gateway": {from: "alpha", to: "beta"},
        "failback-auto": {from: "beta", to: "alpha"},
        "crossover": {from: "alpha", to: "alpha"},
        "failback-manual": {from: "beta", to: "beta"},
        "pause: while stopped": {from: "alpha", to: "alpha"},
        "pause: resumed": {from: "alpha", to: "alpha"},
        "pause: takeover": {from: "alpha", to: "beta"},
        "pause: after resume": {from: "beta", to: "beta", overlap_allowed: true},
        "service-death": {from: "alpha", to: "beta"},
        "daemon-crash": {from: "alpha", to: "alpha"},
        "crash-restart": {from: "alpha", to: "alpha"},
        "paused-standby": {from: "alpha", to: "alpha"},
        "busy-host": {from: "alpha", to: "alpha"}
    }[.row | sub(", [0-9]+ VIPs$"; "")] // error("no expectation for row \(.row)");
def judged:
    expectation as $e
    | ($e.from != $e.to) as $move
    | (.probe.changes | length) as $n
    | (if $move or ($e.overlap_allowed // false) or .vip_adds == null then null
       else .vip_adds[if $e.to == "alpha" then "beta" else "alpha" end] end) as $stray
    | (if $move then
           .probe.first_responder == $e.from and .probe.last_responder == $e.to
       else
           $n == 0 and .probe.first_responder == $e.from and .probe.last_responder == $e.to
           and (($e.overlap_allowed // false) or (.overlap_ms // 0) == 0)
           and ($stray // 0) == 0
       end) as $ok
    | . + {
        ok: $ok,
        move_expected: $move,
        changes: $n,
        expected_changes: (if $move then 1 else 0 end),
        unnecessary_moves: ([$n - (if $move then 1 else 0 end), 0] | max),
        stray_adds: $stray,
        downtime_ms: (if ($ok or ($move | not)) and .probe.answered > 1 then .probe.longest_gap_ms else null end)
      };
'

# summarize RAW_JSON OUT_JSON: the raw record with the summary added.
summarize() {
    jq --arg order "$ALL_SCENARIOS" "$JQ_JUDGE"'
    def median: map(select(. != null)) | sort
        | if length == 0 then null
          elif length % 2 == 1 then .[length / 2 | floor]
          else (.[length / 2 - 1] + .[length / 2]) / 2 end;
    def stats: {
        runs: length,
        ok: map(select(.ok)) | length,
        downtime_ms: map(.downtime_ms),
        downtime_median: map(.downtime_ms) | median,
        lost_median: map(.lost) | median,
        overlap_max: (map(.overlap_ms) | map(select(. != null)) | max),
        overlap_worst: (map(select(.overlap_ms != null)) | if length == 0 then null
            else max_by(.overlap_ms) | {upper: .overlap_ms, lower: .overlap_low_ms} end),
        overlap_open: any(.overlap_open),
        unnecessary_moves: map(.unnecessary_moves) | add,
        stray_adds: (map(.stray_adds) | map(select(. != null)) | if length == 0 then null else add end),
        move_median: map(.move_ms) | median,
        # busy-host: per run, the changes of responder the client saw, the role
        # changes both nodes logged, and probes answered by both nodes.
        switches_runs: map(.changes),
        role_changes_runs: map(.role_changes | if . == null then null else .alpha + .beta end),
        duplicates_runs: map(.probe.duplicates // 0),
        scheduling: (map(.scheduling | select(. != null)) | unique)
    };
    ($order | split(" ")) as $order
    | (.ka_paths // 1) as $ka_paths
    | .runs |= map(.rows |= map(judged))
    | [.runs[] | . as $r | .rows[] | . + {daemon: $r.daemon, interval_ms: $r.interval_ms, dead_ms: $r.dead_ms, scenario: $r.scenario, vips: ($r.vips // 1)}] as $rows
    # The summary before the footprint and the runs, for a reader of the file.
    | {footprint, runs} as $data
    | del(.footprint, .runs) + {
        summary: (
            $rows | group_by([.row, .interval_ms])
            | map({
                row: .[0].row, scenario: .[0].scenario, vips: .[0].vips, interval_ms: .[0].interval_ms, dead_ms: .[0].dead_ms,
                comparable: (.[0].scenario != "crossover" or $ka_paths == 2),
                failoverd: (map(select(.daemon == "failoverd")) | stats),
                keepalived: (map(select(.daemon == "keepalived")) | stats)
              })
            | sort_by([(.scenario as $s | $order | index($s)), .vips,
                       (.row | if test("^pause: (while stopped|takeover)") then 0 else 1 end), .row, -.interval_ms])
        ),
        poll_longest_gap_ms: ([$rows[] | .poll_longest_gap_ms | select(. != null)] | max),
        setup_failures: [$data.runs[] | select(.setup_ok | not) | {daemon, interval_ms, scenario, rep, note, logs}]
      } + $data' "$1" >"$2.tmp" || return 1
    # Each ratio against the noise, by a bootstrap over the repetitions.
    python3 - "$2.tmp" "$2" "$BOOT_RESAMPLES" "$BOOT_SEED" <<'PY' || return 1
import json, random, sys

src, dst, resamples, seed = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]

def median(xs):
    xs = sorted(xs)
    n = len(xs)
    return xs[n // 2] if n % 2 else (xs[n // 2 - 1] + xs[n // 2]) / 2

with open(src) as f:
    report = json.load(f)
for row in report["summary"]:
    fo = [x for x in row["failoverd"]["downtime_ms"] if x is not None]
    ka = [x for x in row["keepalived"]["downtime_ms"] if x is not None]
    ratio, interval, noise = None, None, None
    if fo and ka and median(ka) > 0:
        ratio = median(fo) / median(ka)
    if not row["comparable"]:
        ratio, noise = None, "not comparable"
    elif ratio is not None and min(len(fo), len(ka)) < 2:
        noise = "too few runs"
    elif ratio is not None:
        # Each daemon's runs resampled with replacement, as many as it has; the ratio
        # of the two medians; the 5th to the 95th percentile of those ratios. A seed
        # per row, so adding a scenario does not move the other rows' intervals.
        rng = random.Random(f"{seed}:{row['row']}:{row['interval_ms']}")
        ratios = sorted(
            median(rng.choices(fo, k=len(fo))) / median(rng.choices(ka, k=len(ka)))
            for _ in range(resamples)
        )
        interval = [ratios[int(0.05 * resamples)], ratios[int(0.95 * resamples) - 1]]
        if max(fo) < min(ka) or max(ka) < min(fo):
            noise = "ranges apart"
        elif interval[0] > 1 or interval[1] < 1:
            noise = "outside noise"
        else:
            noise = "within noise"
    row["downtime_ratio"] = ratio
    row["ratio_interval90"] = interval
    row["noise"] = noise
report["settings"]["noise"] = (
    f"{resamples} times, each daemon's downtimes resampled with replacement (as many as "
    f"it has runs) and the ratio of the two medians taken; the interval runs from the 5th "
    f"to the 95th percentile of those ratios (seeded with {seed}, the row and the "
    f"interval: the same runs give the same interval)"
)
with open(dst, "w") as f:
    json.dump(report, f, indent=2, ensure_ascii=False)
    f.write("\n")
PY
    rm -f "$2.tmp"
}

# render JSON: the Markdown report of a summarized record, on stdout.
render() {
    jq -r '
    def f: if . == null then "–" else (. * 10 | round / 10 | tostring) end;
    def i: if . == null then "–" else (. | round | tostring) end;
    def r2: if . == null then "–" else (. * 100 | round / 100 | tostring) end;
    def median(xs): xs | sort | if length % 2 == 1 then .[length / 2 | floor] else (.[length / 2 - 1] + .[length / 2]) / 2 end;
    def range: map(select(. != null)) | if length == 0 then "" else " [\(min | i)–\(max | i)]" end;
    def pair(a; b): "\(a) / \(b)";
    def ov($s): (if $s.overlap_worst == null then "–"
        elif $s.overlap_worst.upper == 0 then "0"
        else (if $s.overlap_open then "≥" else "" end) + "\($s.overlap_worst.lower | f)–\($s.overlap_worst.upper | f)" end)
        + (if ($s.stray_adds // 0) > 0 then " (\($s.stray_adds) stray add\(if $s.stray_adds > 1 then "s" else "" end))" else "" end);
    def ratio: if .downtime_ratio == null then "–"
        elif .ratio_interval90 == null then (.downtime_ratio | r2)
        else "\(.downtime_ratio | r2) (\(.ratio_interval90[0] | r2)–\(.ratio_interval90[1] | r2))" end;
    def okcell($s): if $s.runs == 0 then "–" else "\($s.ok)/\($s.runs)" end;
    (.ka_paths // 1) as $ka_paths
    | "## Failover: failoverd and keepalived \(.versions.keepalived) side by side",
    "",
    "Run \(.date) on \(.machine.nproc) × \(.machine.cpu), Linux \(.machine.kernel); failoverd \(.versions.failoverd_commit); \(if (.reps | type) == "number" then "\(.reps) repetition(s) per cell" else "repetitions per cell: \(.reps | to_entries | map("\(.key) \(.value)") | join(", "))" end); \(.elapsed_s) s in all.",
    "Command: `\(.command)`\(if .machine.loadavg_before then "; load average (1, 5, 15 min) \(.machine.loadavg_before) before, \(.machine.loadavg_after) after" else "" end).",
    (if .rerendered then "Report made again on \(.rerendered.date) by bench/failover.sh of failoverd \(.rerendered.commit) (REPORT_FROM), from the runs as measured: the rules for ok and the noise columns are the newer ones." else empty end),
    "",
    (if $ka_paths == 2 then
        "keepalived heartbeats over both links, as failoverd does: one VRRP instance per link (LAN, crossover) in a sync group, which goes master only when both instances want to, i.e. when the peer is silent on both links."
     else
        "keepalived heartbeats over the LAN only (one VRRP instance), failoverd over the LAN and the crossover: a cut crossover does not reach keepalived, so the crossover rows are not comparable and have no ratio."
     end),
    "",
    "Downtime: the longest silence the client saw, probing the VIP every \(.settings.probe_interval_ms // 10) ms (\(.settings.probe_interval_ms // 10) means nothing was lost); median [min–max] over the runs. Left out of a row where a move was expected but did not happen as expected.",
    (if (.settings.client_rt // 0) > 0 then "The client\u0027s probe and the responders ran at SCHED_FIFO \(.settings.client_rt) in every scenario but busy-host (CLIENT_RT), so that the daemons\u0027 realtime threads could not stall them on the lab\u0027s shared cores." else empty end),
    "Ratio: failoverd median / keepalived median; in parentheses its 90 % bootstrap interval: \(.settings.noise // "").",
    "Noise: ranges apart: no run of one daemon lies within the other\u0027s [min–max]; outside noise: the ranges overlap, but the interval excludes 1; within noise: the interval contains 1, so these runs cannot tell the two daemons apart, whatever the ratio; too few runs: fewer than two on a side, no interval; not comparable: keepalived could not take part in the same event, so no ratio. Downtimes lie on the \(.settings.probe_interval_ms // 10) ms probe grid: a difference below one probe interval means little even outside the noise.",
    (if [.runs[] | select((.vips // 1) > 1)] | length > 0 then
        "\"SCENARIO, N VIPs\": the nodes hold N VIPs, the client probes the first, 198.18.0.10/24, the others are /32s in 198.18.4.0/22; the same VIPs for both daemons. keepalived sits out counts above 255, the most one VRRP instance carries."
     else empty end),
    "Lost: median lost probes. Overlap: the longest time both nodes held the VIP, worst run, as the bounds the sampling allows (\(.poll_longest_gap_ms | i) ms at worst between two samples in this run; ≥ when it lasted to the end of the window); where nothing should move, \"stray adds\" counts, over the runs, the times the VIP was added on the node that should not hold it, from that node\u0027s address events, which catch a hold too brief for the sampling. Unnecessary moves: responder changes beyond the expected ones, summed over the runs. Move after: median time from the event to the first answer from the new holder.",
    "OK: runs that went as expected. Where a move is expected, the client heard the old holder first and the new one last. Where nothing should move (crossover, failback-manual, pause: while stopped, pause: resumed, daemon-crash, crash-restart, paused-standby, busy-host), the client heard the holder alone and the VIP was never on both nodes nor added on the other one (while the paused daemon is stopped, its VIP is on alpha by construction, and a change of responder or an add on beta counts; in the rows of runs recorded before 2026-12-01 21:00, \"pause: takeover\" expects beta to take over and \"pause: after resume\" beta to keep the VIP, where the resumed node held it by construction, so there only a change of responder counted).",
    "",
    "| scenario | interval (dead) | downtime ms failoverd | downtime ms keepalived | ratio (90 % interval) | noise | lost fo / ka | overlap ms fo / ka | unnecessary moves fo / ka | move after ms fo / ka | ok fo / ka |",
    "|---|---|---|---|---|---|---|---|---|---|---|",
    (.summary[] |
        "| \(.row) | \(.interval_ms) ms (\(.dead_ms)) | \(.failoverd.downtime_median | i)\(.failoverd.downtime_ms | range) | \(.keepalived.downtime_median | i)\(.keepalived.downtime_ms | range) | \(ratio) | \(.noise // "–") | \(pair(.failoverd.lost_median | i; .keepalived.lost_median | i)) | \(pair(ov(.failoverd); ov(.keepalived))) | \(pair(.failoverd.unnecessary_moves // "–"; .keepalived.unnecessary_moves // "–")) | \(pair(.failoverd.move_median | i; .keepalived.move_median | i)) | \(pair(okcell(.failoverd); okcell(.keepalived))) |"),
    "",
    (if [.summary[] | select(.scenario == "busy-host")] | length > 0 then
        "### Busy host: \(.settings.busy_host // "CPU-bound threads in both nodes")",
        "",
        "Side by side in the same run, per repetition (comma-separated): switches are the changes of responder the client saw probing the VIP every \(.settings.probe_interval_ms // 10) ms (the probe and the responders at SCHED_FIFO \(.settings.busy_rt // .settings.busy_probe_rt // 50), so that they are not starved themselves); role changes are the ones both nodes logged (failoverd \"-> active\" and \"-> standby\", keepalived \"(bench) Entering MASTER STATE\" and \"Entering BACKUP STATE\"), two per move; both: probes answered by both nodes; lost: probes not answered within 200 ms. Fewer or more: the switches of failoverd against those of keepalived, summed over the runs. Scheduling: the classes of the daemon threads on alpha (TS: normal; RR and FF: realtime, with their priority). failoverd: \(.settings.failoverd_scheduling // "defaults"); keepalived: \(.settings.keepalived_scheduling // "defaults").",
        "",
        "| interval (dead) | switches fo / ka | failoverd switches | role changes fo / ka | both fo / ka | lost fo / ka | longest gap ms fo / ka | scheduling fo / ka |",
        "|---|---|---|---|---|---|---|---|",
        (.summary[] | select(.scenario == "busy-host") |
            def runs: map(if . == null then "–" else tostring end) | join(",") | if . == "" then "–" else . end;
            def total: map(select(. != null)) | add // 0;
            "| \(.interval_ms) ms (\(.dead_ms)) | \(pair(.failoverd.switches_runs | runs; .keepalived.switches_runs | runs)) | \(if .failoverd.runs == 0 or .keepalived.runs == 0 then "–" else (.failoverd.switches_runs | total) as $f | (.keepalived.switches_runs | total) as $k | if $f < $k then "fewer (\($f) vs \($k))" elif $f > $k then "more (\($f) vs \($k))" else "as many (\($f))" end end) | \(pair(.failoverd.role_changes_runs | runs; .keepalived.role_changes_runs | runs)) | \(pair(.failoverd.duplicates_runs | runs; .keepalived.duplicates_runs | runs)) | \(pair(.failoverd.lost_median | i; .keepalived.lost_median | i)) | \(pair(.failoverd.downtime_median | i; .keepalived.downtime_median | i)) | \(pair(.failoverd.scheduling | join("; ") | if . == "" then "–" else . end; .keepalived.scheduling | join("; ") | if . == "" then "–" else . end)) |"),
        ""
     else empty end),
    (if (.setup_failures | length) > 0 then
        "Runs that never reached the event: " + (.setup_failures | map("\(.daemon) \(.interval_ms) ms \(.scenario) #\(.rep): \(.note)") | join("; ")), ""
     else empty end),
    (if (.footprint | length) > 0 then
        "### Idle footprint (alpha active, beta standby, no client traffic)",
        "",
        "CPU: time used over the idle period, per second; \"checks\" is the CPU of reaped child processes (keepalived runs `ping` as its gateway check, failoverd pings from its own raw socket). keepalived is two processes (parent and VRRP child): RSS is their sum, PSS shares their common pages out.\(if $ka_paths == 2 then " keepalived runs two VRRP instances, one per link." else "" end) Scheduling: failoverd \(.settings.failoverd_scheduling // "defaults"); keepalived \(.settings.keepalived_scheduling // "defaults").",
        "",
        (if any(.footprint[]; .rep != null) and ([.footprint[].daemon] | unique | length) == 2 then
            "Both daemons ran at the same time, each in its own lab, over the same seconds, up to \(.footprint | map(.rep) | max) times: the ratio is the CPU of failoverd over that of keepalived with its checks, measured together in each run; the cells give median [min–max] over the runs, and runs counts those in which both were measured (a daemon whose lab did not settle sits that run out). CPU time: \(.settings.footprint_cpu // "in clock ticks (10 ms)").",
            "",
            "| interval | node | failoverd CPU ms/s | keepalived CPU ms/s, with checks | ratio | runs | failoverd VmRSS KiB | keepalived VmRSS KiB |",
            "|---|---|---|---|---|---|---|---|",
            (.footprint | group_by([.interval_ms, .node])[] as $cell
                | ($cell | map(select(.daemon == "failoverd"))) as $fo
                | ($cell | map(select(.daemon == "keepalived"))) as $ka
                | [$fo[] as $a | $ka[] | select(.rep == $a.rep and .cpu_ms_per_s > 0) | $a.cpu_ms_per_s / .cpu_ms_per_s] as $ratios
                | def cell(xs; fmt): if (xs | length) == 0 then "–" else "\(median(xs) | fmt) [\(xs | min | fmt)–\(xs | max | fmt)]" end;
                "| \($cell[0].interval_ms) ms | \($cell[0].node) (\($cell[0].role)) | \(cell($fo | map(.cpu_ms_per_s); f)) | \(cell($ka | map(.cpu_ms_per_s); f)) | \(cell($ratios; r2)) | \($ratios | length) | \(cell($fo | map(.vmrss_kib); i)) | \(cell($ka | map(.vmrss_kib); i)) |"),
            "",
            "Every run:",
            ""
         else empty end),
        "| daemon | interval | node | run | processes | VmRSS KiB | PSS KiB | CPU ms/s self | CPU ms/s checks | seconds |",
        "|---|---|---|---|---|---|---|---|---|---|",
        (.footprint | sort_by(.interval_ms, .rep // 0) | .[] | "| \(.daemon) | \(.interval_ms) ms | \(.node) (\(.role)) | \(.rep // "–") | \(.processes) | \(.vmrss_kib) | \(.pss_kib) | \(.cpu_ms_self / .seconds | f) | \(.cpu_ms_children / .seconds | f) | \(.seconds) |"),
        ""
     else empty end)
    ' "$1"
}

# report RAW_JSON STEM: STEM.json and STEM.md from a raw record; prints the Markdown.
report() {
    mkdir -p "$(dirname "$2")"
    summarize "$1" "$2.json" || fail "could not write $2.json"
    render "$2.json" >"$2.md" || fail "could not write $2.md"
    cat "$2.md"
}

if [ -n "${REPORT_FROM:-}" ]; then
    if ! command -v jq >/dev/null || ! command -v python3 >/dev/null; then
        fail "REPORT_FROM needs jq and python3"
    fi
    [ -s "$REPORT_FROM" ] || fail "REPORT_FROM: no such file $REPORT_FROM"
    raw=$(mktemp /tmp/failover-report.XXXXXX) || exit 1
    trap 'rm -f "$raw"' EXIT
    # Runs before KA_PATHS was recorded had keepalived on the LAN only.
    jq --arg date "$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
        --arg commit "$(git -C "$repo" describe --always --dirty 2>/dev/null || echo unknown)" '
        del(.summary, .poll_longest_gap_ms, .setup_failures)
        | .ka_paths = (.ka_paths // 1)
        | .rerendered = {date: $date, commit: $commit}' "$REPORT_FROM" >"$raw" ||
        fail "REPORT_FROM: cannot read $REPORT_FROM"
    stem=$RESULTS/$(basename "$REPORT_FROM" .json)
    report "$raw" "$stem"
    say "report made again from $REPORT_FROM: $stem.md and $stem.json"
    exit 0
fi

[ "$(id -u)" -eq 0 ] || fail "the benchmark builds network namespaces and needs root"

# --- tools -------------------------------------------------------------------------

missing=()
command -v ip >/dev/null || missing+=(iproute2)
command -v keepalived >/dev/null || missing+=(keepalived)
command -v ping >/dev/null || missing+=(iputils-ping)
command -v jq >/dev/null || missing+=(jq)
command -v python3 >/dev/null || missing+=(python3)
command -v curl >/dev/null || missing+=(curl)
if [ "${#missing[@]}" -gt 0 ]; then
    say "installing ${missing[*]} from Debian's packages"
    apt-get update -qq >/dev/null || fail "apt-get update failed"
    DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends "${missing[@]}" \
        >/dev/null || fail "apt-get install ${missing[*]} failed"
fi
PING=$(command -v ping)
CURL=$(command -v curl)
KEEPALIVED=$(command -v keepalived)
KA_VERSION=$("$KEEPALIVED" --version 2>&1 | sed -n 's/^Keepalived v\([^ ]*\).*/\1/p' | head -n1)

say "building failoverd and netprobe (cargo build --release)"
cargo build --release --quiet --examples --bins || fail "cargo build failed"
FAILOVERD=$repo/target/release/failoverd
NETPROBE=$repo/target/release/examples/netprobe
PRESSURE=$repo/target/release/examples/pressure

# shellcheck source=scripts/lab.sh
source "$repo/scripts/lab.sh"
# shellcheck source=scripts/sample.sh
source "$repo/scripts/sample.sh"

work=$(mktemp -d /tmp/failover-bench.XXXXXX)
pids=()
run_number=0

# Stops what this script started (by PID) and deletes the current lab's namespaces.
cleanup() {
    local status=$?
    set +e
    if [ "${#pids[@]}" -gt 0 ]; then
        kill -KILL "${pids[@]}" 2>/dev/null
        wait "${pids[@]}" 2>/dev/null
    fi
    lab_down
    if [ "$status" -ne 0 ] || [ "$KEEP_LOGS" = 1 ]; then
        say "logs kept in $work"
    else
        rm -rf "$work"
    fi
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# forget PID...: drops waited-for processes from the cleanup list, so a reused PID is
# never signalled.
forget() {
    local pid gone kept=()
    for pid in "${pids[@]}"; do
        for gone in "$@"; do
            [ "$pid" = "$gone" ] && continue 2
        done
        kept+=("$pid")
    done
    pids=("${kept[@]}")
}

# stamp: copies stdin to stdout with the wall clock (µs) in front of every line, so
# daemon logs line up with the event times this script records.
stamp() {
    local line
    while IFS= read -r line; do
        printf '%s %s\n' "${EPOCHREALTIME/./}" "$line"
    done
}

# wait_exit TIMEOUT_MS PID...: waits (bounded) for processes to exit; 1 if one lives on.
wait_exit() {
    local deadline=$(($(now_us) + $1 * 1000)) pid
    shift
    for pid in "$@"; do
        while kill -0 "$pid" 2>/dev/null; do
            (($(now_us) < deadline)) || return 1
            sleep 0.02
        done
    done
    return 0
}

# wait_log FILE PATTERN TIMEOUT_MS: waits (bounded) for a line matching PATTERN.
wait_log() {
    local deadline=$(($(now_us) + $3 * 1000))
    while (($(now_us) < deadline)); do
        grep -q -- "$2" "$1" 2>/dev/null && return 0
        sleep 0.05
    done
    return 1
}

# --- timing derived from one interval ----------------------------------------------

# set_timing INTERVAL_MS: the same nominal timers for both daemons. keepalived's
# master down interval is 3 × advert_int + skew, skew = (256 − priority) / 256 ×
# advert_int; for the standby (priority 100) that is 3.609 × advert_int, and failoverd
# gets the same dead time.
set_timing() {
    I=$1
    D=$(((924 * I + 128) / 256))
    WARN=$((2 * I))
    INIT_DEAD=$((2 * D))
    ADV=$(awk -v i="$I" 'BEGIN { printf "%g", i / 1000 }')
    PAUSE_MS=$((D + 1000))
    STANDBY_PAUSE_MS=$((3 * D))
}

# --- configurations ----------------------------------------------------------------

# extra_vips: the VIPs beside the first one, NVIPS − 1 of them, one a line:
# 198.18.4.1 to .250, then 198.18.5.1 and on.
extra_vips() {
    local k
    for ((k = 0; k < NVIPS - 1; k++)); do
        echo "198.18.$((4 + k / 250)).$((1 + k % 250))"
    done
}

# failoverd_conf DIR MODE [SERVICE]: one file for both nodes; with SERVICE (1), an
# http check of the node's own service, as keepalived's vrrp_script `service`.
failoverd_conf() {
    local dir=$1 mode=$2 service=${3:-0} scheduling=()
    [ "$FO_REALTIME" = 0 ] && scheduling=(scheduling.realtime_priority=0 scheduling.lock_memory=false)
    (
        umask 077
        head -c 32 /dev/urandom | base64 >"$dir/authkey"
    )
    # The sample configuration (config/failoverd.toml) on the lab: both nodes' LAN
    # interface is eth0, and there are no hooks.
    sample_config \
        cluster.name=bench \
        cluster.key_file="$dir/authkey" \
        cluster.failback="$mode" \
        cluster.failback_delay="${FAILBACK_S}s" \
        timing.interval="${I}ms" \
        timing.warn="${WARN}ms" \
        timing.dead="${D}ms" \
        timing.init_dead="${INIT_DEAD}ms" \
        'node[1].interfaces={}' \
        'vip[0].address='"$VIP/24" \
        health.gateways="[\"$GATEWAY\"]" \
        health.interval="${HEALTH_S}s" \
        health.timeout="${HEALTH_S}s" \
        health.failures="$HEALTH_FAILURES" \
        -hooks \
        announce.interval=100ms \
        "${scheduling[@]}" \
        >"$dir/failoverd.toml" || fail "cannot render the failoverd configuration"
    local extra
    for extra in $(extra_vips); do
        printf '\n[[vip]]\naddress = "%s/32"\ninterface = "eth0"\n' "$extra"
    done >>"$dir/failoverd.toml"
    [ "$service" = 1 ] || return 0
    cat >>"$dir/failoverd.toml" <<EOF

[[check]]
name = "service"
kind = "http"
url = "http://127.0.0.1:$SERVICE_PORT/health"
expect_body = "ok"
interval = "${SERVICE_CHECK_S}s"
timeout = "${SERVICE_CHECK_S}s"
fall = $SERVICE_FALL
rise = 1
EOF
}

# keepalived_conf FILE NODE PRIORITY OWN PEER OWN_XO PEER_XO MODE [SERVICE]: VRRPv3 unicast; both
# start as BACKUP (required by nopreempt and preempt_delay). GARP: 3 messages 100 ms
# apart on becoming master, no second burst, a refresh every 60 s, like failoverd's
# [announce] above.
#
# Two paths (KA_PATHS=2, the default), as failoverd has. One VRRP instance talks over
# one link only: its sockets are bound to its `interface` (SO_BINDTODEVICE) and to its
# one unicast_src_ip, and unicast_peer lists addresses, not links. So each link gets
# an instance, and a vrrp_sync_group joins them: the group goes MASTER only when every
# member wants to (vrrp_sync_can_goto_master, "prefer backup state to avoid
# thrashing"), so the standby takes over when the peer is silent on both links, and a
# cut crossover moves nothing. A FAULT of either member faults the group and the
# holder lets go, so the crossover instance does not track its link
# (dont_track_primary; failoverd does not fault on a heartbeat link either), while
# the LAN instance does, like failoverd's link_state check of the VIP's interface.
# The VIP belongs to the LAN instance; the gateway script sits on the group,
# unweighted, as sync groups require. KA_PATHS=1 is the LAN instance alone, as the first runs had it; a cut
# crossover does not reach it, so its crossover rows compare nothing.
#
# With SERVICE (1, the service-death scenario) a second script, `service`, runs curl
# against the node's own HTTP service with failoverd's check's interval, timeout, fall
# and rise, tracked unweighted beside the gateway script: when it fails, the node's
# instances go to FAULT, the master lets go (a priority 0 advertisement) and the
# backup takes over, as failoverd's holder goes to fault and hands over. Weighted
# tracking cannot do it here: keepalived zeroes the weights of a sync group's members.
keepalived_conf() {
    local file=$1 node=$2 prio=$3 own=$4 peer=$5 own_xo=$6 peer_xo=$7 mode=$8 service=${9:-0}
    local preempt track extra service_script="" service_track=""
    if [ "$mode" = manual ]; then
        preempt="nopreempt"
    else
        preempt="preempt_delay $FAILBACK_S"
    fi
    if [ "$service" = 1 ]; then
        service_script="
vrrp_script service {
    script \"$CURL -fsS -o /dev/null --max-time $SERVICE_CHECK_S http://127.0.0.1:$SERVICE_PORT/health\"
    interval $SERVICE_CHECK_S
    timeout $SERVICE_CHECK_S
    fall $SERVICE_FALL
    rise 1
}"
        service_track="
        service"
    fi
    track="    track_script {
        gateway$service_track
    }"
    cat >"$file" <<EOF
global_defs {
    router_id $node
    script_user root
    enable_script_security
    vrrp_version 3
    vrrp_garp_master_delay 0
    vrrp_garp_master_repeat 3
    vrrp_garp_interval 0.1
    vrrp_garp_master_refresh 60
    vrrp_garp_master_refresh_repeat 1
$([ "$KA_REALTIME" = 1 ] && printf '    vrrp_rt_priority 10\n    vrrp_no_swap')
}

vrrp_script gateway {
    script "$PING -c1 -W$HEALTH_S $GATEWAY"
    interval $HEALTH_S
    timeout $HEALTH_S
    fall $HEALTH_FAILURES
    rise 1
}
$service_script

vrrp_instance bench {
    state BACKUP
    interface eth0
    virtual_router_id 51
    priority $prio
    advert_int $ADV
    $preempt
    unicast_src_ip $own
    unicast_peer {
        $peer
    }
    virtual_ipaddress {
        $VIP/24 dev eth0 label eth0:vip
$(for extra in $(extra_vips); do echo "        $extra/32 dev eth0"; done)
    }
$([ "$KA_PATHS" = 1 ] && echo "$track")
}
EOF
    [ "$KA_PATHS" = 1 ] && return
    cat >>"$file" <<EOF

vrrp_instance bench_xo {
    state BACKUP
    interface xo
    virtual_router_id 52
    priority $prio
    advert_int $ADV
    $preempt
    unicast_src_ip $own_xo
    unicast_peer {
        $peer_xo
    }
    # A crossover down is silence on one path, not a fault: without this the group
    # faults on either side of a cut cable and nobody holds the VIP.
    dont_track_primary
    # VRRPv3 wants a VIP in every instance; this one only marks the crossover holder.
    virtual_ipaddress {
        $KA_XO_VIP/32 dev xo
    }
}

vrrp_sync_group bench_paths {
    group {
        bench
        bench_xo
    }
$track
}
EOF
}

# keepalived_confs DIR MODE [SERVICE]: alpha's and beta's configurations, DIR/NODE.conf.
keepalived_confs() {
    keepalived_conf "$1/alpha.conf" alpha 200 198.18.0.11 198.18.0.12 198.19.0.1 198.19.0.2 "$2" "${3:-0}"
    keepalived_conf "$1/beta.conf" beta 100 198.18.0.12 198.18.0.11 198.19.0.2 198.19.0.1 "$2" "${3:-0}"
}

# --- daemons -----------------------------------------------------------------------

# Per node (alpha, beta): the PIDs of its daemon's processes. keepalived runs a parent
# and a VRRP child; signals that must reach the VRRP logic go to both.
declare -A DPIDS
# The idle footprint's daemon PIDs, by "DAEMON NODE" (see footprint_up).
declare -A FP_PIDS

# start_daemon NODE: starts the current DAEMON on NODE, logging to $rundir/NODE.log.
start_daemon() {
    local node=$1 ns pid vpid
    ns=$n1
    [ "$node" = beta ] && ns=$n2
    case $DAEMON in
    failoverd)
        NO_COLOR=1 ip netns exec "$ns" "$FAILOVERD" run --config "$rundir/failoverd.toml" --node "$node" \
            --socket "$rundir/$node.sock" --state-dir "$rundir/state-$node" \
            > >(stamp >>"$rundir/$node.log") 2>&1 &
        pid=$!
        pids+=("$pid")
        DPIDS[$node]=$pid
        ;;
    keepalived)
        rm -f "$rundir/$node.pid" "$rundir/$node.vrrp.pid"
        ip netns exec "$ns" "$KEEPALIVED" --dont-fork --log-console --log-detail --no-syslog \
            --vrrp --use-file "$rundir/$node.conf" --pid "$rundir/$node.pid" \
            --vrrp_pid "$rundir/$node.vrrp.pid" \
            > >(stamp >>"$rundir/$node.log") 2>&1 &
        pid=$!
        pids+=("$pid")
        DPIDS[$node]=$pid
        local deadline=$(($(now_us) + 5000000))
        while [ ! -s "$rundir/$node.vrrp.pid" ] && (($(now_us) < deadline)); do
            sleep 0.02
        done
        vpid=$(cat "$rundir/$node.vrrp.pid" 2>/dev/null) || true
        [[ $vpid =~ ^[0-9]+$ ]] || {
            echo "keepalived on $node started no VRRP process" >"$rundir/error"
            return 1
        }
        # The VRRP child first, so it never outlives the parent in a signal's order.
        DPIDS[$node]="$vpid $pid"
        ;;
    esac
}

# signal_daemon SIGNAL NODE: SIGTERM goes to the main process only (keepalived's
# parent passes it on); every other signal goes to all the node's daemon processes.
signal_daemon() {
    local sig=$1 node=$2 all
    read -r -a all <<<"${DPIDS[$node]}"
    if [ "$sig" = TERM ]; then
        kill -TERM "${all[-1]}" 2>/dev/null
    else
        kill "-$sig" "${all[@]}" 2>/dev/null
    fi
    if [ "$sig" = KILL ]; then
        # Reaped here, or bash reports the killed job at some later, unrelated line.
        { wait "${all[-1]}"; } 2>/dev/null
        forget "${all[-1]}"
        DPIDS[$node]=""
    fi
}

# reap_daemon NODE TIMEOUT_MS: waits for NODE's daemon to exit and forgets its PIDs.
reap_daemon() {
    local node=$1 all main
    read -r -a all <<<"${DPIDS[$node]}"
    main=${all[-1]}
    wait_exit "$2" "${all[@]}" || return 1
    wait "$main" 2>/dev/null
    forget "$main"
    DPIDS[$node]=""
}

# The log line that says a node became the standby.
standby_pattern() {
    if [ "$DAEMON" = failoverd ]; then echo " -> standby"; else echo "Entering BACKUP STATE"; fi
}

# holds NS: whether the VIP is on NS's eth0 right now.
holds() {
    ip -n "$1" -br -4 addr show dev eth0 2>/dev/null | grep -q " $VIP/"
}

# probe_until NAME MAX_MS: probes every 20 ms until NAME answers on the VIP (bounded).
probe_until() {
    local out=$rundir/until-$1.json
    ip netns exec "$cl" "$NETPROBE" probe --target "$VIP:$PORT" --interval 20ms \
        --count $(($2 / 20)) --timeout 100ms --stop-after-responder "$1" --settle 0 \
        >"$out" 2>>"$rundir/probe.err" || return 1
    [ "$(jq -r .last_responder "$out")" = "$1" ]
}

# steady: starts both daemons and waits until alpha holds the VIP and answers on it,
# and beta stands by. keepalived's alpha starts alone first: both start as BACKUP, and
# with nopreempt whoever becomes master first stays master, so a start race could
# leave beta active. failoverd starts both together: its election is deterministic.
steady() {
    local bound=$((INIT_DEAD + 4 * D + 5000))
    if [ "$DAEMON" = keepalived ]; then
        start_daemon alpha || return 1
        wait_log "$rundir/alpha.log" "Entering MASTER STATE" "$bound" || {
            echo "alpha never became master" >"$rundir/error"
            return 1
        }
        start_daemon beta || return 1
    else
        start_daemon alpha || return 1
        start_daemon beta || return 1
    fi
    probe_until alpha "$bound" || {
        echo "alpha did not answer on the VIP" >"$rundir/error"
        return 1
    }
    wait_log "$rundir/beta.log" "$(standby_pattern)" "$bound" || {
        echo "beta never stood by" >"$rundir/error"
        return 1
    }
    # Another heartbeat both ways, so that each side counts the other as alive.
    sleep_ms $((I + 300))
    if holds "$n2" || ! holds "$n1"; then
        echo "the VIP is not on alpha alone after start" >"$rundir/error"
        return 1
    fi
}

# --- measurement -------------------------------------------------------------------

# poll_vip OUT DEADLINE_US STOP_FILE PID1 PID2: samples, every few ms until the
# deadline or the stop file, whether alpha and beta hold the VIP, and writes a line
# "time_us alpha beta" (1 = holds) for each change, for the sample just before each
# change, and for the last sample, which also carries the number of samples and the
# longest time between two of them (the resolution actually achieved). It reads
# /proc/PID/net/fib_trie of a process in each node's namespace instead of running ip:
# a node holds the VIP while the VIP's local route is there and eth0 is up (the /24
# connected route is there). No fork per sample, so the period stays near POLL_S.
poll_vip() {
    local out=$1 deadline=$2 stop=$3 p1=$4 p2=$5
    local fd buf t a b last="" last_t=0 samples=0 gap max_gap=0 period=$POLL_S
    ((NVIPS > 1)) && period=$POLL_MANY_S
    local vip_re="-- ${VIP//./\\.}"$'\n'" +/32 host LOCAL"
    exec {fd}<> <(:)
    while :; do
        t=${EPOCHREALTIME/./}
        buf=""
        read -r -d '' buf <"/proc/$p1/net/fib_trie" || true
        a=0
        [[ $buf =~ $vip_re && $buf == *"/24 link UNICAST"* ]] && a=1
        buf=""
        read -r -d '' buf <"/proc/$p2/net/fib_trie" || true
        b=0
        [[ $buf =~ $vip_re && $buf == *"/24 link UNICAST"* ]] && b=1
        samples=$((samples + 1))
        gap=$((t - last_t))
        ((samples > 1 && gap > max_gap)) && max_gap=$gap
        if [ "$a$b" != "$last" ]; then
            # The last sample of the old state bounds how long that state lasted.
            [ -n "$last" ] && echo "$last_t ${last:0:1} ${last:1:1}" >>"$out"
            echo "$t $a $b" >>"$out"
            last=$a$b
        fi
        last_t=$t
        if ((t >= deadline)) || [[ -e $stop ]]; then
            echo "$t $a $b end $samples $max_gap" >>"$out"
            break
        fi
        read -r -t "$period" -u "$fd" _ || true
    done
}

# overlap OUT FLOOR_US: the longest time both held the VIP after FLOOR_US, in ms, as
# "upper lower open period max_gap": upper runs from the first sample that saw both to
# the first that did not, lower to the last that did; open = 1 when both still held it
# when polling ended; period and max_gap are the mean and longest sampling intervals.
overlap() {
    awk -v floor="$2" '
        function close_run(end_t,   st) {
            st = (s < floor) ? floor : s
            if (end_t - st > best) { best = end_t - st; best_low = (lb > st) ? lb - st : 0 }
            s = ""
        }
        NR == 1 { first_t = $1 }
        { t = $1; both = ($2 == 1 && $3 == 1) }
        both { if (s == "") s = t; lb = t }
        !both && s != "" { close_run(t) }
        { last = t }
        $4 == "end" { samples = $5; max_gap = $6 }
        END {
            open = 0
            if (s != "") { close_run(last); open = 1 }
            period = (samples > 1) ? (last - first_t) / (samples - 1) / 1000 : 0
            printf "%.1f %.1f %d %.2f %.1f\n", best / 1000, best_low / 1000, open, period, max_gap / 1000
        }' "$1"
}

# vip_adds LOG FLOOR_US: how often the VIP was added in a node's address events
# (stamped `ip monitor address`) from FLOOR_US on.
vip_adds() {
    awk -v floor="$2" -v vip=" inet $VIP/" '
        $1 >= floor && $2 != "Deleted" && index($0, vip) { n++ }
        END { print n + 0 }' "$1" 2>/dev/null || echo 0
}

# role_changes NODE FROM_BYTE: how many role changes NODE's daemon logged after the
# first FROM_BYTE bytes of its log. failoverd: "-> active" and "-> standby";
# keepalived: the LAN instance's (the VIP's) "Entering MASTER STATE" and "Entering
# BACKUP STATE", so that the crossover instance, which follows it in the sync group,
# does not count each change twice.
role_changes() {
    local pattern
    if [ "$DAEMON" = failoverd ]; then
        pattern=' -> (active|standby)'
    else
        pattern='\(bench\) Entering (MASTER|BACKUP) STATE'
    fi
    tail -c +$(($2 + 1)) "$rundir/$1.log" 2>/dev/null | grep -c -E -- "$pattern"
}

# log_size NODE: the bytes of NODE's daemon log so far.
log_size() {
    stat -c %s "$rundir/$1.log" 2>/dev/null || echo 0
}

# scheduling NODE: the scheduling classes of NODE's daemon threads, counted, e.g.
# "RR 10 ×1, TS ×5" (ps: TS normal, RR and FF realtime with their priority).
scheduling() {
    local list
    list=$(echo "${DPIDS[$1]}" | tr ' ' ',')
    [ -n "$list" ] || return 0
    ps -L -o cls=,rtprio= -p "$list" 2>/dev/null |
        awk '{ k = $1; if ($2 != "-") k = k " " $2; n[k]++ }
            END { for (k in n) print k " ×" n[k] }' | sort | paste -sd, - | sed 's/,/, /g'
}

# start_probe OUT COUNT [RESPONDER SETTLE]: the client's probe every PROBE_MS in the background,
# under `probe_prefix` (busy-host: a realtime priority); its PID goes to `probes`.
start_probe() {
    local out=$1 count=$2 extra=()
    [ $# -ge 4 ] && extra=(--stop-after-responder "$3" --settle "$4")
    ip netns exec "$cl" "${probe_prefix[@]}" "$NETPROBE" probe --target "$VIP:$PORT" --interval "${PROBE_MS}ms" \
        --count "$count" --timeout 200ms "${extra[@]}" >"$out" 2>>"$rundir/probe.err" &
    probes+=("$!")
    pids+=("$!")
}

# row_json NAME PROBE_JSON MOVE_FROM_MS OVERLAP_MS OVERLAP_OPEN [OVERLAP_LOW_MS
#   POLL_MAX_GAP_MS VIP_ADDS EXTRA]: one result row of a run, from a netprobe summary,
#   judged. VIP_ADDS: {"alpha": N, "beta": N}, the VIP's adds on each node after the
#   event. EXTRA: an object of scenario-specific fields added to the row.
row_json() {
    jq -c --arg row "$1" --argjson move_from "$3" --argjson overlap "$4" --argjson open "$5" \
        --argjson overlap_low "${6:-null}" --argjson poll_gap "${7:-null}" \
        --argjson vip_adds "${8:-null}" --argjson extra "${9:-"{}"}" "$JQ_JUDGE"'
        {row: $row, probe: .} | expectation as $e
        | ([.probe.changes[] | select(.to == $e.to)][0].at_ms) as $moved_at
        | {
            row: $row,
            lost: .probe.lost,
            overlap_ms: $overlap,
            overlap_low_ms: $overlap_low,
            overlap_open: ($open == 1),
            poll_longest_gap_ms: $poll_gap,
            vip_adds: $vip_adds,
            move_ms: (if $e.from != $e.to and $moved_at != null then ([$moved_at - $move_from, 0] | max) else null end),
            probe: .probe
          } + $extra
        | judged' "$2"
}

# --- one run -----------------------------------------------------------------------

# takes_part SCENARIO: whether the current DAEMON runs SCENARIO. keepalived on the LAN
# alone (KA_PATHS=1) does not: a cut crossover does not reach it, so its run would
# only measure the client's probe. Nor does keepalived with more than 255 VIPs.
takes_part() {
    [ "$DAEMON" = keepalived ] && [ "$KA_PATHS" = 1 ] && [ "$1" = crossover ] && return 1
    [ "$DAEMON" = keepalived ] && ((NVIPS > 255)) && return 1
    return 0
}

# run_one SCENARIO REP: one fresh lab, one event; appends a JSON object to runs.jsonl.
run_one() {
    local scenario=$1 rep=$2 mode=manual t_start service=0 probe_prefix=() serve_prefix=()
    t_start=$(now_us)
    [ "$scenario" = failback-auto ] && mode=auto
    [ "$scenario" = service-death ] && service=1
    run_number=$((run_number + 1))
    rundir=$work/$(printf '%03d' "$run_number")-$DAEMON-${I}ms-$scenario-${NVIPS}vips-$rep
    mkdir -p "$rundir"
    DPIDS=([alpha]="" [beta]="")

    if ! lab_up "$(lab_free_prefix "fb$$-$run_number")" >"$rundir/lab.log" 2>&1; then
        lab_down
        fail "could not build the lab (see $rundir/lab.log)"
    fi
    n1=$(lab_ns n1)
    n2=$(lab_ns n2)
    cl=$(lab_ns cl)

    if [ "$DAEMON" = failoverd ]; then
        failoverd_conf "$rundir" "$mode" "$service"
    else
        keepalived_confs "$rundir" "$mode" "$service"
    fi
    [ "$scenario" = busy-host ] && serve_prefix=(chrt -f "$BUSY_RT")
    if [ "$CLIENT_RT" -gt 0 ] && [ "$scenario" != busy-host ]; then
        probe_prefix=(chrt -f "$CLIENT_RT")
        serve_prefix=(chrt -f "$CLIENT_RT")
    fi
    ip netns exec "$n1" "${serve_prefix[@]}" "$NETPROBE" serve --port "$PORT" --name alpha --duration 300s \
        >"$rundir/serve-alpha.log" 2>&1 &
    local serve1=$!
    pids+=("$serve1")
    ip netns exec "$n2" "${serve_prefix[@]}" "$NETPROBE" serve --port "$PORT" --name beta --duration 300s \
        >"$rundir/serve-beta.log" 2>&1 &
    local serve2=$!
    pids+=("$serve2")
    # The checked service, up before the daemons so that their checks pass from the
    # start; alpha's is the one the event kills.
    local http1=""
    if [ "$service" = 1 ]; then
        ip netns exec "$n1" "$NETPROBE" http-serve --port "$SERVICE_PORT" --body ok \
            --duration 300s >"$rundir/http-alpha.log" 2>&1 &
        http1=$!
        pids+=("$http1")
        ip netns exec "$n2" "$NETPROBE" http-serve --port "$SERVICE_PORT" --body ok \
            --duration 300s >"$rundir/http-beta.log" 2>&1 &
        pids+=("$!")
        wait_log "$rundir/http-alpha.log" "serving http" 5000
        wait_log "$rundir/http-beta.log" "serving http" 5000
    fi

    local rows="" note="" ok=1
    if ! steady; then
        ok=0
        note="setup: $(cat "$rundir/error" 2>/dev/null)"
    fi

    if [ "$ok" = 1 ] && [[ $scenario == failback-* ]]; then
        # Alpha leaves cleanly, beta takes over; the event is alpha's return.
        signal_daemon TERM alpha
        if ! reap_daemon alpha 15000 || ! probe_until beta $((D + 5000)); then
            ok=0
            note="setup: alpha did not hand over to beta before the failback test"
        else
            sleep_ms $((I + 300))
        fi
    fi

    if [ "$ok" = 1 ]; then
        local poll_out=$rundir/vip-poll.txt stop=$rundir/poll.stop window count t_probe t_event
        local floor probes=() PRE_MS=$((PRE_BASE_MS + RANDOM % I)) busy_sched=""
        local -A busy_from=()
        case $scenario in
        node-death | graceful) window=$((PRE_MS + D + 3000)) ;;
        crossover) window=$((PRE_MS + D + 2000)) ;;
        gateway) window=$((PRE_MS + HEALTH_FAILURES * HEALTH_S * 1000 + HEALTH_S * 1000 + 2 * I + D + 4000)) ;;
        # Longer than either daemon takes to fail back (failback delay, plus keepalived's
        # master down interval), so that "no move" with manual failback means something.
        failback-*) window=$((PRE_MS + FAILBACK_S * 1000 + D + 3000)) ;;
        pause) window=$((PRE_MS + PAUSE_MS + 1000 + D + 1000)) ;;
        # Detection within fall + 1 check intervals, then the handover.
        service-death) window=$((PRE_MS + (SERVICE_FALL + 1) * SERVICE_CHECK_S * 1000 + D + 3000)) ;;
        # Past the standby's dead time twice over: time to probe the VIP, and to take it
        # over if it is going to.
        daemon-crash) window=$((PRE_MS + 2 * D + 3000)) ;;
        # The restarted daemon's start (init_dead at most), then a dead time more.
        crash-restart) window=$((PRE_MS + CRASH_RESTART_MS + INIT_DEAD + D + 3000)) ;;
        # The pause, then a dead time and more for whatever the resumed standby does.
        paused-standby) window=$((PRE_MS + STANDBY_PAUSE_MS + D + 3000)) ;;
        # The load, then time for whatever it held back to come out.
        busy-host) window=$((PRE_MS + BUSY_S * 1000 + BUSY_AFTER_MS)) ;;
        esac
        count=$((window / PROBE_MS))
        poll_vip "$poll_out" $(($(now_us) + (window + 2000) * 1000)) "$stop" "$serve1" "$serve2" &
        local poller=$!
        pids+=("$poller")

        # The client's ARP entry for the VIP, as it changes: which node it sends to.
        ip -n "$cl" link show eth0 >/dev/null 2>&1 &&
            for host in n1 n2; do
                echo "$host $(ip -n "$(lab_ns "$host")" -br link show dev eth0 | awk '{ print $3 }')"
            done >"$rundir/macs.txt"
        local monitors=() m
        ip -n "$cl" monitor neigh > >(stamp >"$rundir/client-neigh.log") 2>&1 &
        monitors+=("$!")
        # Each node's address events: an add of the VIP shows here however briefly it
        # stayed, where the poller samples only every few ms.
        # Only the lines of the first VIP, which vip_adds counts: with a thousand VIPs,
        # stamping every line in bash would compete with the daemons for the CPU.
        ip -n "$n1" monitor address > >(grep --line-buffered -F " $VIP/" | stamp >"$rundir/addr-alpha.log") 2>&1 &
        monitors+=("$!")
        ip -n "$n2" monitor address > >(grep --line-buffered -F " $VIP/" | stamp >"$rundir/addr-beta.log") 2>&1 &
        monitors+=("$!")
        pids+=("${monitors[@]}")

        t_probe=$(now_us)
        case $scenario in
        node-death | graceful | gateway | service-death) start_probe "$rundir/probe.json" "$count" beta 100 ;;
        failback-auto) start_probe "$rundir/probe.json" "$count" alpha 100 ;;
        crossover | failback-manual | daemon-crash | crash-restart | paused-standby)
            start_probe "$rundir/probe.json" "$count"
            ;;
        busy-host)
            probe_prefix=(chrt -f "$BUSY_RT")
            start_probe "$rundir/probe.json" "$count"
            ;;
        pause) start_probe "$rundir/probe.json" $(((PRE_MS + PAUSE_MS - 100) / PROBE_MS)) ;;
        esac
        sleep_ms "$PRE_MS"

        t_event=$(now_us)
        floor=$t_event
        case $scenario in
        node-death)
            signal_daemon KILL alpha
            ip -n "$n1" link set eth0 down
            ip -n "$n1" link set xo down
            ;;
        graceful) signal_daemon TERM alpha ;;
        crossover) ip -n "$n1" link set xo down ;;
        gateway) ip -n "$n1" route add blackhole "$GATEWAY/32" ;;
        service-death)
            kill -KILL "$http1" 2>/dev/null
            { wait "$http1"; } 2>/dev/null
            forget "$http1"
            ;;
        failback-*) start_daemon alpha || note="alpha did not start again" ;;
        daemon-crash) signal_daemon KILL alpha ;;
        crash-restart)
            signal_daemon KILL alpha
            sleep_ms "$CRASH_RESTART_MS"
            start_daemon alpha || note="alpha did not start again"
            ;;
        paused-standby)
            signal_daemon STOP beta
            sleep_ms "$STANDBY_PAUSE_MS"
            signal_daemon CONT beta
            ;;
        pause)
            signal_daemon STOP alpha
            sleep_ms $((PAUSE_MS - 300))
            # A second probe from just before the resume isolates what the resume does.
            start_probe "$rundir/probe-resume.json" $(((300 + 1000 + D + 1000) / PROBE_MS))
            sleep 0.3
            floor=$(now_us)
            signal_daemon CONT alpha
            echo "$floor" >"$rundir/t_resume"
            ;;
        busy-host)
            # Where the daemons' logs stood before the load: role changes count from
            # here. The scheduling classes are read while the nodes are settled.
            busy_from=([alpha]=$(log_size alpha) [beta]=$(log_size beta))
            busy_sched=$(scheduling alpha)
            local hogs=() h
            ip netns exec "$n1" "$PRESSURE" spin --threads "$BUSY_THREADS" --seconds "$BUSY_S" \
                >"$rundir/hogs-alpha.log" 2>&1 &
            hogs+=("$!")
            ip netns exec "$n2" "$PRESSURE" spin --threads "$BUSY_THREADS" --seconds "$BUSY_S" \
                >"$rundir/hogs-beta.log" 2>&1 &
            hogs+=("$!")
            pids+=("${hogs[@]}")
            # The hogs stop by themselves after BUSY_S; by PID if they overstay.
            if ! wait_exit $(((BUSY_S + 15) * 1000)) "${hogs[@]}"; then
                kill -KILL "${hogs[@]}" 2>/dev/null
                note="${note:+$note; }the load did not stop by itself"
            fi
            for h in "${hogs[@]}"; do
                wait "$h" 2>/dev/null || note="${note:+$note; }a load process failed"
            done
            forget "${hogs[@]}"
            ;;
        esac
        echo "$t_event" >"$rundir/t_event"

        # Each probe is bounded by its count; then the poller is told to stop.
        local p
        for p in "${probes[@]}"; do
            wait "$p" 2>/dev/null || note="${note:+$note; }a probe failed"
            forget "$p"
        done
        touch "$stop"
        wait "$poller" 2>/dev/null
        forget "$poller"
        kill -TERM "${monitors[@]}" 2>/dev/null
        for m in "${monitors[@]}"; do
            { wait "$m"; } 2>/dev/null
        done
        forget "${monitors[@]}"

        local move_from=$(((t_event - t_probe) / 1000)) ov ov_low open period max_gap
        read -r ov ov_low open period max_gap < <(overlap "$poll_out" "$floor")
        local adds
        adds=$(printf '{"alpha": %d, "beta": %d}' "$(vip_adds "$rundir/addr-alpha.log" "$floor")" \
            "$(vip_adds "$rundir/addr-beta.log" "$floor")")
        echo "mean $period ms, longest $max_gap ms" >"$rundir/poll-period"
        if [ ! -s "$rundir/probe.json" ]; then
            ok=0
            note="${note:+$note; }the probe printed nothing"
        else
            # The row's expectation (JQ_JUDGE) says who should answer before and after.
            if [ "$scenario" = pause ]; then
                # While alpha is stopped, its VIP is on alpha by construction: a
                # change of responder or an add on beta shows a takeover (the adds
                # from the event up to just before the resume). From there on, the
                # overlap counts too.
                local suffix="" stopped_adds
                ((NVIPS > 1)) && suffix=", $NVIPS VIPs"
                stopped_adds=$(printf '{"alpha": %d, "beta": %d}' \
                    $(($(vip_adds "$rundir/addr-alpha.log" "$t_event") - $(vip_adds "$rundir/addr-alpha.log" "$floor"))) \
                    $(($(vip_adds "$rundir/addr-beta.log" "$t_event") - $(vip_adds "$rundir/addr-beta.log" "$floor"))))
                rows=$(row_json "pause: while stopped$suffix" "$rundir/probe.json" "$move_from" null 0 null null "$stopped_adds")
                if [ -s "$rundir/probe-resume.json" ]; then
                    rows+=$'\n'$(row_json "pause: resumed$suffix" "$rundir/probe-resume.json" 0 "$ov" "$open" "$ov_low" "$max_gap" "$adds")
                fi
            else
                local row=$scenario row_extra="{}"
                ((NVIPS > 1)) && row="$scenario, $NVIPS VIPs"
                if [ "$scenario" = busy-host ]; then
                    row_extra=$(jq -n -c --argjson a "$(role_changes alpha "${busy_from[alpha]}")" \
                        --argjson b "$(role_changes beta "${busy_from[beta]}")" \
                        --arg sched "$busy_sched" \
                        '{role_changes: {alpha: $a, beta: $b}, scheduling: $sched}')
                fi
                rows=$(row_json "$row" "$rundir/probe.json" "$move_from" "$ov" "$open" "$ov_low" "$max_gap" "$adds" "$row_extra")
            fi
        fi
    fi

    # Stop everything of this run by PID, then delete its namespaces.
    if [ "${#pids[@]}" -gt 0 ]; then
        kill -KILL "${pids[@]}" 2>/dev/null
        wait "${pids[@]}" 2>/dev/null
        pids=()
    fi
    lab_down

    local rows_json
    rows_json=$(printf '%s\n' "$rows" | jq -s -c '.')
    jq -n -c --arg daemon "$DAEMON" --argjson interval "$I" --argjson dead "$D" \
        --arg scenario "$scenario" --argjson rep "$rep" --arg dir "$rundir" \
        --arg note "$note" --argjson rows "$rows_json" --argjson setup_ok "$ok" \
        --argjson pre "${PRE_MS:-null}" --argjson ms $((($(now_us) - t_start) / 1000)) \
        --argjson vips "$NVIPS" '
        {daemon: $daemon, interval_ms: $interval, dead_ms: $dead, scenario: $scenario,
         vips: $vips, rep: $rep, setup_ok: ($setup_ok == 1), note: $note, pre_event_ms: $pre, logs: $dir,
         run_ms: $ms, rows: $rows}' \
        >>"$work/runs.jsonl"
    local summary
    summary=$(printf '%s\n' "$rows" | jq -r -s 'map("\(.row): gap \(.downtime_ms // "-") ms, lost \(.lost), overlap \(.overlap_ms // "-") ms, changes \(.changes)/\(.expected_changes)\(if (.stray_adds // 0) > 0 then ", stray adds \(.stray_adds)" else "" end)\(if .ok then "" else " NOT OK" end)") | join("; ")')
    local what=$scenario
    ((NVIPS > 1)) && what+=", $NVIPS VIPs"
    [ "$scenario" = busy-host ] && summary+=$(printf '%s\n' "$rows" | jq -r -s 'map(select(.role_changes != null) | ", role changes \(.role_changes.alpha + .role_changes.beta), \(.scheduling)") | join("")')
    say "  $DAEMON ${I}ms $what #$rep: ${summary:-no result} ${note:+($note)}"
}

# --- footprint ---------------------------------------------------------------------

CLK_TCK=$(getconf CLK_TCK)

# proc_stat PID: "cpu_self_us cpu_children_us rss_kib pss_kib" of one process. Its
# own CPU time is the sum of its threads' run time, which the kernel keeps in
# nanoseconds (schedstat; a thread that ends takes its time with it, and the
# daemons' threads live as long as they do): /proc/PID/stat counts in clock ticks of
# 10 ms, a handful a cell at 100 ms. Its reaped children's (keepalived's checks)
# exists in ticks only.
proc_stat() {
    local pid=$1 stat fields rss pss task run self=0
    stat=$(cat "/proc/$pid/stat" 2>/dev/null) || return 1
    # Fields after "(comm) ": state is field 3, so field N is fields[N-3].
    read -r -a fields <<<"${stat##*) }"
    for task in /proc/"$pid"/task/*/schedstat; do
        { read -r run _ <"$task"; } 2>/dev/null || continue
        self=$((self + run / 1000))
    done
    rss=$(awk '/^VmRSS:/ { print $2 }' "/proc/$pid/status")
    pss=$(awk '/^Pss:/ { print $2 }' "/proc/$pid/smaps_rollup" 2>/dev/null)
    echo "$self $(((fields[13] + fields[14]) * 1000000 / CLK_TCK)) ${rss:-0} ${pss:-0}"
}

# pids_stat PIDS: proc_stat summed over the processes PIDS (one daemon's, on a node),
# plus their count.
pids_stat() {
    local pid self=0 children=0 rss=0 pss=0 n=0 a b c d
    for pid in $1; do
        read -r a b c d < <(proc_stat "$pid") || continue
        self=$((self + a))
        children=$((children + b))
        rss=$((rss + c))
        pss=$((pss + d))
        n=$((n + 1))
    done
    echo "$self $children $rss $pss $n"
}

# footprint_up REP: builds a lab for DAEMON and starts it, alpha active and beta
# standing by; the daemons' PIDs go to FP_PIDS["DAEMON alpha"] and ["DAEMON beta"].
# The lab stays up (LAB_NAMESPACES gathers every lab's namespaces) until footprint
# takes them all down.
footprint_up() {
    rundir=$work/footprint-$DAEMON-${I}ms-$1
    mkdir -p "$rundir"
    DPIDS=([alpha]="" [beta]="")
    lab_up "$(lab_free_prefix "fb$$-fp$I-$DAEMON")" >"$rundir/lab.log" 2>&1 ||
        fail "could not build the lab (see $rundir/lab.log)"
    n1=$(lab_ns n1)
    n2=$(lab_ns n2)
    cl=$(lab_ns cl)
    if [ "$DAEMON" = failoverd ]; then
        failoverd_conf "$rundir" manual
    else
        keepalived_confs "$rundir" manual
    fi
    ip netns exec "$n1" "$NETPROBE" serve --port "$PORT" --name alpha --duration 300s \
        >"$rundir/serve-alpha.log" 2>&1 &
    pids+=("$!")
    ip netns exec "$n2" "$NETPROBE" serve --port "$PORT" --name beta --duration 300s \
        >"$rundir/serve-beta.log" 2>&1 &
    pids+=("$!")
    if ! steady; then
        say "  footprint $DAEMON ${I}ms #$1: setup failed: $(cat "$rundir/error" 2>/dev/null)"
        return 1
    fi
    FP_PIDS["$DAEMON alpha"]=${DPIDS[alpha]}
    FP_PIDS["$DAEMON beta"]=${DPIDS[beta]}
}

# footprint SECS REP: the daemons' idle cost at the current interval, all of them
# at once, each in its own lab: RSS and CPU time over the same SECS seconds with
# alpha active, beta standing by and no client traffic. Measured together, the
# daemons share whatever else the host does meanwhile; measured one after the
# other, minutes apart, the same daemon's figure moved by up to three quarters between runs.
footprint() {
    local secs=$1 rep=$2 node key s0 c0 s1 c1 rss pss n measured=()
    local -A before=() after=()
    FP_PIDS=()
    for DAEMON in $DAEMONS; do
        footprint_up "$rep" && measured+=("$DAEMON")
    done
    if [ "${#measured[@]}" -gt 0 ]; then
        sleep 1
        for DAEMON in "${measured[@]}"; do
            for node in alpha beta; do
                before["$DAEMON $node"]=$(pids_stat "${FP_PIDS["$DAEMON $node"]}")
            done
        done
        sleep "$secs"
        # Every reading first, then the records: each daemon's window as long as
        # the others'.
        for key in "${!before[@]}"; do
            after[$key]=$(pids_stat "${FP_PIDS[$key]}")
        done
        for DAEMON in "${measured[@]}"; do
            for node in alpha beta; do
                key="$DAEMON $node"
                read -r s0 c0 _ <<<"${before[$key]}"
                read -r s1 c1 rss pss n <<<"${after[$key]}"
                jq -n -c --arg daemon "$DAEMON" --argjson interval "$I" --arg node "$node" \
                    --arg role "$([ "$node" = alpha ] && echo active || echo standby)" \
                    --argjson rep "$rep" \
                    --argjson secs "$secs" --argjson procs "$n" --argjson rss "$rss" \
                    --argjson pss "$pss" \
                    --argjson self_us "$((s1 - s0))" \
                    --argjson children_us "$((c1 - c0))" '
                    ($self_us / 1000) as $self | ($children_us / 1000) as $children
                    | {daemon: $daemon, interval_ms: $interval, node: $node, role: $role,
                       rep: $rep, seconds: $secs, processes: $procs, vmrss_kib: $rss,
                       pss_kib: $pss, cpu_ms_self: $self, cpu_ms_children: $children,
                       cpu_ms_per_s: (($self + $children) / $secs)}' >>"$work/footprint.jsonl"
            done
            say "  footprint $DAEMON ${I}ms #$rep: $(jq -r --arg d "$DAEMON" --argjson i "$I" --argjson r "$rep" \
                'select(.daemon == $d and .interval_ms == $i and .rep == $r) | "\(.node) \(.vmrss_kib) KiB, \(.cpu_ms_self | round)+\(.cpu_ms_children | round) ms CPU"' \
                "$work/footprint.jsonl" | paste -sd ';' -)"
        done
    fi
    if [ "${#pids[@]}" -gt 0 ]; then
        kill -KILL "${pids[@]}" 2>/dev/null
        wait "${pids[@]}" 2>/dev/null
        pids=()
    fi
    lab_down
}

# --- the runs ----------------------------------------------------------------------

started=$(now_us)
load_before=$(cut -d' ' -f1-3 /proc/loadavg)
: >"$work/runs.jsonl"
: >"$work/footprint.jsonl"
say "work directory (logs of every run): $work"
reps_summary=$(for s in $SCENARIOS; do echo "$s $(reps_for "$s")"; done | paste -sd, - | sed 's/,/, /g')
say "daemons: $DAEMONS; intervals: $INTERVALS ms; repetitions: $reps_summary"
[ "$KA_PATHS" = 1 ] && [[ " $DAEMONS " == *" keepalived "* ]] &&
    say "keepalived on the LAN only (KA_PATHS=1): it sits out the crossover scenario"

for interval in $INTERVALS; do
    set_timing "$interval"
    say "interval ${I} ms: dead ${D} ms, keepalived advert_int $ADV"
    for NVIPS in $VIPS; do
        for scenario in $SCENARIOS; do
            for rep in $(seq 1 "$(reps_for "$scenario")"); do
                for DAEMON in $DAEMONS; do
                    takes_part "$scenario" && run_one "$scenario" "$rep"
                done
            done
        done
    done
done
NVIPS=1
if [ "$FAST" = 1 ] && [[ " $SCENARIOS " == *" node-death "* ]]; then
    set_timing 10
    say "interval ${I} ms: dead ${D} ms, keepalived advert_int $ADV (node death only)"
    for rep in $(seq 1 "$(reps_for node-death)"); do
        for DAEMON in $DAEMONS; do
            run_one node-death "$rep"
        done
    done
fi
if [ "$FOOTPRINT" = 1 ]; then
    for spec in "1000 $FOOTPRINT_SLOW_SECS" "100 $FOOTPRINT_SECS" "10 $FOOTPRINT_FAST_SECS"; do
        read -r interval secs <<<"$spec"
        [ "$secs" -gt 0 ] || continue
        set_timing "$interval"
        for rep in $(seq 1 "$FOOTPRINT_REPS"); do
            footprint "$secs" "$rep"
        done
    done
fi
elapsed_s=$((($(now_us) - started) / 1000000))
load_after=$(cut -d' ' -f1-3 /proc/loadavg)

# --- results -----------------------------------------------------------------------

command_line="REPS=$REPS"
for s in $ALL_SCENARIOS; do
    var=$(reps_var "$s")
    [ -n "${!var:-}" ] && command_line+=" $var=${!var}"
done
[ "$KA_PATHS" != 2 ] && command_line+=" KA_PATHS=$KA_PATHS"
[ "$SCENARIOS" != "$ALL_SCENARIOS" ] && command_line+=" SCENARIOS=\"$SCENARIOS\""
[ "$INTERVALS" != "1000 100" ] && command_line+=" INTERVALS=\"$INTERVALS\""
[ "$VIPS" != 1 ] && command_line+=" VIPS=\"$VIPS\""
[ "$DAEMONS" != "failoverd keepalived" ] && command_line+=" DAEMONS=\"$DAEMONS\""
[ "$FAST" != 1 ] && command_line+=" FAST=$FAST"
[ "$FOOTPRINT" != 1 ] && command_line+=" FOOTPRINT=$FOOTPRINT"
if [ "$FOOTPRINT" = 1 ]; then
    [ "$FOOTPRINT_SLOW_SECS" != 30 ] && command_line+=" FOOTPRINT_SLOW_SECS=$FOOTPRINT_SLOW_SECS"
    [ "$FOOTPRINT_SECS" != 20 ] && command_line+=" FOOTPRINT_SECS=$FOOTPRINT_SECS"
    [ "$FOOTPRINT_FAST_SECS" != 10 ] && command_line+=" FOOTPRINT_FAST_SECS=$FOOTPRINT_FAST_SECS"
    [ "$FOOTPRINT_REPS" != 3 ] && command_line+=" FOOTPRINT_REPS=$FOOTPRINT_REPS"
fi
[ "$FO_REALTIME" != 1 ] && command_line+=" FO_REALTIME=$FO_REALTIME"
[ "$KA_REALTIME" != 0 ] && command_line+=" KA_REALTIME=$KA_REALTIME"
[ "$PROBE_MS" != 10 ] && command_line+=" PROBE_MS=$PROBE_MS"
[ "$CLIENT_RT" != 0 ] && command_line+=" CLIENT_RT=$CLIENT_RT"
command_line+=" sudo bench/failover.sh"

jq -n \
    --slurpfile runs "$work/runs.jsonl" \
    --slurpfile footprint "$work/footprint.jsonl" \
    --arg date "$(date -u +%Y-%m-%dT%H:%M:%SZ)" \
    --arg nproc "$(nproc)" \
    --arg cpu "$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo | head -n1)" \
    --arg kernel "$(uname -r)" \
    --arg load_before "$load_before" --arg load_after "$load_after" \
    --arg keepalived "$KA_VERSION" \
    --arg commit "$(git -C "$repo" describe --always --dirty 2>/dev/null || echo unknown)" \
    --arg command "$command_line" \
    --argjson elapsed "$elapsed_s" \
    --argjson reps "$(for s in $SCENARIOS; do echo "$s $(reps_for "$s")"; done |
        jq -R -n '[inputs | split(" ") | {key: .[0], value: (.[1] | tonumber)}] | from_entries')" \
    --argjson busy_threads "$BUSY_THREADS" --argjson busy_s "$BUSY_S" \
    --argjson busy_after_ms "$BUSY_AFTER_MS" --argjson busy_rt "$BUSY_RT" \
    --argjson fo_realtime "$FO_REALTIME" \
    --argjson ka_realtime "$KA_REALTIME" \
    --argjson ka_paths "$KA_PATHS" \
    --argjson probe_ms "$PROBE_MS" --argjson client_rt "$CLIENT_RT" '
    {
        machine: {nproc: ($nproc | tonumber), cpu: $cpu, kernel: $kernel,
                  loadavg_before: $load_before, loadavg_after: $load_after},
        date: $date, elapsed_s: $elapsed, command: $command, reps: $reps, ka_paths: $ka_paths,
        versions: {failoverd_commit: $commit, keepalived: $keepalived},
        settings: {
            probe_interval_ms: $probe_ms, probe_timeout_ms: 200, client_rt: $client_rt,
            dead: "3 × interval + (256 − 100) / 256 × interval (keepalived master down interval of the priority-100 standby)",
            warn: "2 × interval", init_dead: "2 × dead",
            health: "gateway ping every 1 s, 1 s timeout, 3 failures, 1 success (keepalived vrrp_script interval is whole seconds)",
            failback_delay_s: 2,
            busy_host: "\($busy_threads) CPU-bound threads in each node namespace (pressure spin) for \($busy_s) s, the client probing until \($busy_after_ms) ms after",
            busy_rt: $busy_rt,
            failoverd_scheduling: (if $fo_realtime == 1
                then "defaults: heartbeat thread at SCHED_RR 10, memory locked"
                else "realtime_priority = 0, lock_memory = false" end),
            keepalived_scheduling: (if $ka_realtime == 1
                then "vrrp_rt_priority 10 (the VRRP process at SCHED_RR 10), vrrp_no_swap (memory locked), like failoverd at its defaults"
                else "defaults, as the Debian package starts it: no vrrp_rt_priority, vrrp_priority or vrrp_no_swap" end),
            announce: "3 GARPs 100 ms apart on takeover, refresh every 60 s",
            footprint_cpu: "the daemon\u0027s own in nanoseconds (its threads\u0027 run time, schedstat), its checks\u0027 in clock ticks (10 ms)",
            keepalived_paths: (if $ka_paths == 2
                then "LAN and crossover: one VRRP instance per link in a sync group, the crossover instance with dont_track_primary"
                else "LAN only: one VRRP instance" end)
        },
        footprint: $footprint,
        runs: $runs
    }' >"$work/raw.json" || fail "could not collect the runs"

stem=$RESULTS/$(date -u +%Y-%m-%d-%H%M)
report "$work/raw.json" "$stem"
say "results: $stem.md and $stem.json (runs took ${elapsed_s} s)"
