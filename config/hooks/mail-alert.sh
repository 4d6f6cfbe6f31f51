#!/usr/bin/env bash
# failoverd hook: mails an alert when this node takes over (start hook) or enters
# fault (fault hook), through the local mail system's `sendmail -t`.
#
# Install it as /etc/failoverd/hooks/mail-alert.sh and name it as the start hook, the
# fault hook, or both. Only one program can be each hook: to also start a service,
# call this script from that hook (the environment passes on by itself). As the stop
# hook it sends nothing: the node that takes over sends the news, and a node that is
# failing may be unable to.
#
# Settings, from failoverd's environment (/etc/failoverd/environment):
#   MAILTO    recipients, comma-separated (default root)
#   SENDMAIL  the sendmail program of the local mail system (default /usr/sbin/sendmail)
set -eu

hook=${FAILOVERD_HOOK:?this script is meant to be run by failoverd}
case $hook in
start | fault) ;;
stop) exit 0 ;;
*)
    echo "unknown hook \"$hook\"" >&2
    exit 2
    ;;
esac

mailto=${MAILTO:-root}
sendmail=${SENDMAIL:-/usr/sbin/sendmail}

# One line each: a line break in a header would start a new header.
oneline() {
    printf '%s' "$*" | tr '\r\n' '  '
}

node=$(oneline "${FAILOVERD_NODE:-?}")
state=$(oneline "${FAILOVERD_STATE:-?}")
cluster=$(oneline "${FAILOVERD_CLUSTER:-?}")
host=$(uname -n)
now=$(date '+%Y-%m-%d %H:%M:%S %z')

echo "mailing $mailto: $node is now $state"
{
    echo "To: $(oneline "$mailto")"
    echo "Subject: [failoverd] $node is now $state ($cluster)"
    echo "Auto-Submitted: auto-generated"
    echo "MIME-Version: 1.0"
    echo "Content-Type: text/plain; charset=UTF-8"
    echo
    echo "failoverd ran its $hook hook on $node."
    echo
    echo "Node:    $node"
    echo "State:   ${FAILOVERD_PREVIOUS_STATE:-?} -> $state"
    echo "Reason:  ${FAILOVERD_REASON:-?}"
    echo "Peer:    ${FAILOVERD_PEER:-?}"
    echo "VIPs:    ${FAILOVERD_VIPS:-none}"
    echo "Cluster: $cluster"
    echo "Host:    $host"
    echo "Time:    $now"
} | "$sendmail" -oi -t
