#!/usr/bin/env bash
# failoverd fencing command: powers the silent peer off through its BMC (IPMI over
# LAN, with ipmitool) and exits 0 only once the BMC reports the power off.
#
# Before an unplanned takeover (the peer silent on every link) failoverd runs the
# fencing command once per silent peer and takes the VIPs only after it exits 0. A
# machine that is powered off holds no VIP and runs no service, whatever its daemon
# or kernel were doing: this is the fence for a peer that hangs, or that is cut off
# from the heartbeat links but not from the clients.
#
# Install it as /etc/failoverd/fencing/ipmi.sh on both nodes and name it in
# failoverd.toml:
#   [fencing]
#   command = "/etc/failoverd/fencing/ipmi.sh"
#   timeout = "60s"   # power off plus IPMI_CONFIRM seconds, with room to spare
# Each node needs the BMC of the other one, so the settings differ per node: put
# them in /etc/failoverd/environment (the unit's EnvironmentFile). The BMC must be
# reachable on a network that does not share a failure with the heartbeat links.
#
# Settings are per peer: <PEER> is the peer's node name in capitals, with every
# character other than a letter or digit replaced by "_" (node "db-2" is DB_2).
# The variables without a suffix apply to every peer that has no own value.
#   IPMI_HOST_<PEER>           the peer's BMC, a host name or address (required)
#   IPMI_USER_<PEER>           the BMC user (required, or IPMI_USER)
#   IPMI_PASSWORD_FILE_<PEER>  a file holding the BMC password, mode 600 (required,
#                              or IPMI_PASSWORD_FILE); ipmitool -f reads it, so the
#                              password is never on a command line
#   IPMI_INTERFACE             ipmitool's interface (default lanplus)
#   IPMI_CONFIRM               seconds to wait for the BMC to report the power
#                              off (default 20); asked once a second
#   IPMITOOL                   the ipmitool program (default ipmitool)
# Example for alpha, whose peer is beta:
#   IPMI_HOST_BETA=10.0.9.12
#   IPMI_USER=failoverd
#   IPMI_PASSWORD_FILE=/etc/failoverd/ipmi-password
#
# failoverd passes the peer in FAILOVERD_PEER (and FAILOVERD_PEER_ADDRESSES,
# FAILOVERD_VIPS, FAILOVERD_REASON, FAILOVERD_ANSWERED_BY, which this script only
# logs), logs each line it prints, kills it after fencing.timeout and retries a
# failure with a growing wait (fencing.retry, up to fencing.retry_max).
#
# Exit codes:
#   0  the BMC reports the peer's power off: failoverd may take over
#   1  the power off failed, or the power was not reported off within IPMI_CONFIRM
#   2  wrong use or settings: not run by failoverd, not as fencing command, or a
#      required variable missing (fix the settings; retrying will not help)
set -eu

fail_setup() {
    echo "$1" >&2
    exit 2
}

hook=${FAILOVERD_HOOK:-}
[ -n "$hook" ] || fail_setup "this script is meant to be run by failoverd as [fencing] command"
[ "$hook" = fence ] || fail_setup "unknown hook \"$hook\": this script is a fencing command"
peer=${FAILOVERD_PEER:-}
[ -n "$peer" ] || fail_setup "FAILOVERD_PEER is empty: no peer to fence"

# The peer's own value of a setting, or the one without a suffix.
key=$(printf '%s' "$peer" | tr -c 'A-Za-z0-9' '_' | tr '[:lower:]' '[:upper:]')
setting() {
    local own="$1_$key"
    if [ -n "${!own:-}" ]; then
        printf '%s' "${!own}"
    elif [ "$2" = shared ] && [ -n "${!1:-}" ]; then
        printf '%s' "${!1}"
    fi
}
host=$(setting IPMI_HOST own)
user=$(setting IPMI_USER shared)
password_file=$(setting IPMI_PASSWORD_FILE shared)
[ -n "$host" ] || fail_setup "set IPMI_HOST_$key to the BMC of $peer"
[ -n "$user" ] || fail_setup "set IPMI_USER_$key (or IPMI_USER) to the BMC user for $peer"
[ -n "$password_file" ] ||
    fail_setup "set IPMI_PASSWORD_FILE_$key (or IPMI_PASSWORD_FILE) to the BMC password file for $peer"
[ -r "$password_file" ] || fail_setup "cannot read the BMC password file $password_file"
confirm=${IPMI_CONFIRM:-20}
case $confirm in
'' | *[!0-9]*) fail_setup "IPMI_CONFIRM must be a number of seconds, not \"$confirm\"" ;;
esac
ipmitool=${IPMITOOL:-ipmitool}
bmc=("$ipmitool" -I "${IPMI_INTERFACE:-lanplus}" -H "$host" -U "$user" -f "$password_file")

echo "fencing $peer: power off through its BMC $host (${FAILOVERD_REASON:-no reason given};" \
    "VIPs ${FAILOVERD_VIPS:-none}, still answered by ${FAILOVERD_ANSWERED_BY:-nobody})"

# "power off" is a hard power off, at once: not "soft", which asks the peer's
# operating system to shut down, the very system that no longer answers.
if ! "${bmc[@]}" chassis power off; then
    echo "fencing $peer: the BMC at $host refused or did not answer the power off" >&2
    exit 1
fi

# A BMC may accept the command before the power is off: believe its status only.
deadline=$((SECONDS + confirm))
while :; do
    if status=$("${bmc[@]}" chassis power status) && [[ $status == *"Power is off"* ]]; then
        echo "fencing $peer: powered off ($status)"
        exit 0
    fi
    if [ "$SECONDS" -ge "$deadline" ]; then
        echo "fencing $peer: the BMC at $host did not report the power off within" \
            "${confirm}s (last status: ${status:-none})" >&2
        exit 1
    fi
    sleep 1
done
