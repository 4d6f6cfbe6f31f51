#!/usr/bin/env bash
# Checks the status page in a real browser: renders the page of the sample status,
# tests/fixtures/status.json (examples/render_status.rs), has headless Chromium load
# it, and checks that the DOM shows the node, its state and the timeline of roles
# (and the maintenance banner when it is on) and that a screenshot is a real
# picture rather than a blank page.
#
#   scripts/check-status-page.sh            check only
#   scripts/check-status-page.sh --update   also replace docs/status-page.png
#
# Installs Debian's chromium when it is missing, which needs root (CI runs as root).
# Every browser run is bounded by `timeout 60`.
set -euo pipefail
cd "$(dirname "$0")/.."
export DEBIAN_FRONTEND=noninteractive

update=false
case "${1:-}" in
    "") ;;
    --update) update=true ;;
    *)
        echo "usage: scripts/check-status-page.sh [--update]" >&2
        exit 2
        ;;
esac

if ! command -v chromium >/dev/null; then
    if [ "$(id -u)" -ne 0 ]; then
        echo "check-status-page: chromium is missing; run as root to install it" >&2
        exit 1
    fi
    echo "check-status-page: installing chromium"
    apt-get update -q </dev/null
    # DejaVu: without any font the page would render as empty boxes.
    apt-get install -y -q --no-install-recommends chromium fonts-dejavu-core </dev/null
fi

work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

cargo build -q --example render_status
render=target/debug/examples/render_status
"$render" "$work/page.html"
"$render" "$work/maintenance.html" --maintenance

# Chromium as root needs --no-sandbox; the rest keeps it from reaching out to the
# network or doing anything but load the file.
browser() {
    timeout 60 chromium --headless --no-sandbox --disable-gpu --disable-quic \
        --no-first-run --disable-background-networking --disable-component-update \
        --disable-sync --user-data-dir="$work/profile" "$@" 2>>"$work/chromium.log"
}

fail() {
    echo "check-status-page: $*" >&2
    echo "--- chromium's messages:" >&2
    tail -n 20 "$work/chromium.log" >&2 || true
    exit 1
}

browser --dump-dom "file://$work/page.html" >"$work/page.dom" || fail "--dump-dom failed"
# The timeline: the sample's history draws alpha's takeover and beta's outage.
for expected in '<h1>alpha</h1>' 'class="badge b-active">active</span>' '198.18.0.10/24' \
    '<svg class="timeline"' '<rect class="tl-active"' '<rect class="tl-dead"'; do
    grep -qF "$expected" "$work/page.dom" || fail "the page's DOM lacks $expected"
done
if grep -qF 'MAINTENANCE MODE' "$work/page.dom"; then
    fail "the maintenance banner shows while maintenance is off"
fi

browser --dump-dom "file://$work/maintenance.html" >"$work/maintenance.dom" ||
    fail "--dump-dom failed on the maintenance page"
grep -qF 'MAINTENANCE MODE' "$work/maintenance.dom" || fail "no maintenance banner"

browser --screenshot="$work/page.png" --window-size=1200,900 "file://$work/page.html" ||
    fail "--screenshot failed"
[ -f "$work/page.png" ] || fail "no screenshot was written"
size=$(stat -c %s "$work/page.png")
# A blank 1200x900 PNG takes a few kilobytes; the page with its text and colours
# takes about a hundred.
[ "$size" -gt 10240 ] || fail "the screenshot is only $size bytes: a blank page?"

if $update; then
    mkdir -p docs
    cp "$work/page.png" docs/status-page.png
    echo "check-status-page: wrote docs/status-page.png"
fi
echo "check-status-page: the status page renders (screenshot $size bytes)"
