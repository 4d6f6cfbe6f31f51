#!/usr/bin/env bash
# Example failoverd hook: starts and stops one systemd service with the VIP.
#
# Install it as /etc/failoverd/hooks/service.sh and name it as the start, stop and
# fault hook in failoverd.toml. The service is $SERVICE (default nginx); a hook sees
# the daemon's environment, so SERVICE can be set where failoverd is started.
#
# failoverd tells the hook what happened in FAILOVERD_* variables, logs its output
# and kills it after hooks.timeout. A non-zero exit is logged as an error; it does
# not undo the role change.
set -eu

service=${SERVICE:-nginx}
hook=${FAILOVERD_HOOK:?this script is meant to be run by failoverd}

log() {
    logger -t failoverd-hook -p daemon.notice -- "$*"
}

log "$hook: ${FAILOVERD_PREVIOUS_STATE:-?} -> ${FAILOVERD_STATE:-?}" \
    "(${FAILOVERD_REASON:-no reason given}); service $service"

case $hook in
start)
    systemctl start -- "$service"
    ;;
stop)
    systemctl stop -- "$service"
    ;;
fault)
    # The node holds nothing in fault; a stop hook already ran if it was active.
    ;;
*)
    log "unknown hook \"$hook\""
    exit 2
    ;;
esac
