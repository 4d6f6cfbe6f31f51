#!/usr/bin/env bash
# failoverd fencing command for nodes that are virtual machines: asks the peer's
# hypervisor to stop the peer's domain at once (`virsh destroy`, a pulled plug) and
# exits 0 only once the hypervisor reports the domain shut off.
#
# Before an unplanned takeover (the peer silent on every link) failoverd runs the
# fencing command once per silent peer and takes the VIPs only after it exits 0. A
# destroyed domain holds no VIP and runs no service, whatever its daemon or kernel
# were doing: this fences a peer that hangs or is paused as well as one whose daemon
# died.
#
# Install it as /etc/failoverd/fencing/libvirt.sh on both nodes and name it in
# failoverd.toml:
#   [fencing]
#   command = "/etc/failoverd/fencing/libvirt.sh"
#   timeout = "30s"
# It needs virsh (Debian: libvirt-clients) and a libvirt connection that may
# destroy the peer's domain: for qemu+ssh:// a key for the hypervisor's login, with
# the hypervisor's host key in known_hosts; better still a libvirt account limited
# to these domains. The nodes should not run on the same hypervisor, or one host
# failure takes both.
#
# Settings are per peer: <PEER> is the peer's node name in capitals, with every
# character other than a letter or digit replaced by "_" (node "db-2" is DB_2).
# Put them in /etc/failoverd/environment (the unit's EnvironmentFile).
#   LIBVIRT_DOMAIN_<PEER>  the peer's domain: its name or UUID on the hypervisor
#                          (required)
#   LIBVIRT_URI_<PEER>     the hypervisor that runs it, e.g.
#                          qemu+ssh://fence@hv2.example.org/system (required, or
#                          LIBVIRT_URI for every peer)
#   VIRSH                  the virsh program (default virsh)
# Example for alpha, whose peer is beta:
#   LIBVIRT_DOMAIN_BETA=web-beta
#   LIBVIRT_URI_BETA=qemu+ssh://fence@hv2.example.org/system
#
# Exit codes:
#   0  the domain is shut off (destroyed now, or already): failoverd may take over
#   1  the hypervisor could not be reached, or the domain is not shut off
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

key=$(printf '%s' "$peer" | tr -c 'A-Za-z0-9' '_' | tr '[:lower:]' '[:upper:]')
domain_var=LIBVIRT_DOMAIN_$key
uri_var=LIBVIRT_URI_$key
domain=${!domain_var:-}
uri=${!uri_var:-${LIBVIRT_URI:-}}
[ -n "$domain" ] || fail_setup "set $domain_var to the libvirt domain of $peer"
[ -n "$uri" ] || fail_setup "set $uri_var (or LIBVIRT_URI) to the hypervisor that runs $peer"
virsh=${VIRSH:-virsh}

echo "fencing $peer: destroying domain $domain on $uri (${FAILOVERD_REASON:-no reason given};" \
    "VIPs ${FAILOVERD_VIPS:-none}, still answered by ${FAILOVERD_ANSWERED_BY:-nobody})"

# destroy fails on a domain that is already off: what counts is the state after it.
destroyed=0
"$virsh" -c "$uri" destroy "$domain" || destroyed=$?
if ! state=$("$virsh" -c "$uri" domstate "$domain"); then
    echo "fencing $peer: cannot read the state of $domain on $uri (destroy exited $destroyed)" >&2
    exit 1
fi
state=$(printf '%s' "$state" | tr -s '[:space:]' ' ' | sed 's/^ //; s/ $//')
if [ "$state" = "shut off" ]; then
    echo "fencing $peer: domain $domain is shut off"
    exit 0
fi
echo "fencing $peer: domain $domain is still \"$state\" (destroy exited $destroyed)" >&2
exit 1
