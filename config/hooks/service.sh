#!/usr/bin/env bash
# failoverd hook: starts systemd services when this node becomes active and stops
# them when it stops being active.
#
# Install it as /etc/failoverd/hooks/service.sh and name it as the start, stop and
# fault hook in failoverd.toml. The services are $SERVICE: one unit name, or several
# separated by spaces (default nginx). Hooks see failoverd's environment, so set
# SERVICE in /etc/failoverd/environment (the unit's EnvironmentFile).
#
# failoverd tells the hook what happened in FAILOVERD_* variables, logs each line
# the hook prints and kills it after hooks.timeout. A non-zero exit is logged as an
# error; it does not undo the role change.
set -eu

hook=${FAILOVERD_HOOK:?this script is meant to be run by failoverd}
read -r -a services <<<"${SERVICE:-nginx}"
if [ "${#services[@]}" -eq 0 ]; then
    echo "SERVICE names no unit" >&2
    exit 2
fi

# failoverd logs what a hook prints, with the hook's name: no logger needed.
echo "$hook: ${FAILOVERD_PREVIOUS_STATE:-?} -> ${FAILOVERD_STATE:-?}" \
    "(${FAILOVERD_REASON:-no reason given}); services: ${services[*]}"

case $hook in
start)
    systemctl start -- "${services[@]}"
    ;;
stop)
    # Also runs at start-up when failoverd finds a VIP left over from a crash, so the
    # services may already be stopped; stopping them again is harmless.
    systemctl stop -- "${services[@]}"
    ;;
fault)
    # This node holds nothing in fault: if it was active, the stop hook already
    # stopped the services.
    ;;
*)
    echo "unknown hook \"$hook\"" >&2
    exit 2
    ;;
esac
