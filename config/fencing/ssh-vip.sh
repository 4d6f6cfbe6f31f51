#!/usr/bin/env bash
# failoverd fencing command for the case of a dead daemon on a live machine: logs in
# to the silent peer with ssh and removes every VIP from it, so that the VIPs can be
# taken over without being on both nodes.
#
# When failoverd on the active node dies (killed, crashed) while its machine runs
# on, the VIPs stay in that machine's kernel and keep answering; the standby sees
# the peer silent and the VIPs still answered, and waits ([split_brain] live_vip =
# "wait"). With this fence it removes them from the peer instead and takes over.
# It cannot help when the peer's machine is hung or unreachable: every address
# fails, the fence fails, and failoverd retries it (fencing.retry, doubled after each
# failure up to fencing.retry_max) while the peer still answers for the VIPs. For a
# hung machine use a power fence (ipmi.sh, libvirt.sh).
#
# Install it as /etc/failoverd/fencing/ssh-vip.sh on both nodes and name it in
# failoverd.toml:
#   [fencing]
#   command = "/etc/failoverd/fencing/ssh-vip.sh"
#   timeout = "30s"
# Each node must be able to log in to the other without a password or a question:
# a key of its own, without passphrase, whose public half is in the peer's
# /root/.ssh/authorized_keys (restrict it there with from="..." to the node's
# heartbeat addresses), and the peer's host key in known_hosts (BatchMode refuses
# to ask). The remote user must be allowed to run `ip addr del`: root, or a user
# with CAP_NET_ADMIN.
#
# The peer is reached at its heartbeat addresses, FAILOVERD_PEER_ADDRESSES, in link
# order: the first that takes the login does the work. On the peer each VIP of
# FAILOVERD_VIPS ("address/prefix", space separated) is looked up by its address on
# whatever interface holds it and deleted; a VIP that is not there counts as done.
# The peer then lists its addresses again, and the fence succeeds only when none of
# the VIPs is left.
#
# Settings, from failoverd's environment (/etc/failoverd/environment):
#   FENCE_SSH_USER     the user to log in as on the peer (default root)
#   FENCE_SSH_TIMEOUT  seconds to wait for each address to take the login
#                      (default 5); keep (addresses x this) below fencing.timeout
#   FENCE_SSH_OPTIONS  more ssh options, space separated, e.g.
#                      "-i /etc/failoverd/fence_key -o UserKnownHostsFile=/etc/failoverd/known_hosts"
#   SSH                the ssh program (default ssh)
#
# Exit codes:
#   0  every VIP is gone from the peer (or there were none): failoverd may take over
#   1  no address of the peer took the login, or a VIP is still on the peer
#   2  wrong use: not run by failoverd, not as fencing command, no peer address, or
#      a VIP that does not read as address/prefix
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
read -r -a addresses <<<"${FAILOVERD_PEER_ADDRESSES:-}"
[ "${#addresses[@]}" -gt 0 ] || fail_setup "FAILOVERD_PEER_ADDRESSES is empty: no address to reach $peer at"
read -r -a vips <<<"${FAILOVERD_VIPS:-}"
if [ "${#vips[@]}" -eq 0 ]; then
    echo "fencing $peer: no VIPs configured, nothing to remove"
    exit 0
fi
# The VIPs go into a command line run by the peer's shell: only hex digits, dots,
# colons, one slash and a prefix length may pass.
for vip in "${vips[@]}"; do
    [[ $vip =~ ^[0-9A-Fa-f.:]+/[0-9]+$ ]] || fail_setup "\"$vip\" in FAILOVERD_VIPS is not address/prefix"
done
user=${FENCE_SSH_USER:-root}
connect=${FENCE_SSH_TIMEOUT:-5}
case $connect in
'' | *[!0-9]* | 0) fail_setup "FENCE_SSH_TIMEOUT must be a positive number of seconds, not \"$connect\"" ;;
esac
read -r -a options <<<"${FENCE_SSH_OPTIONS:-}"
ssh=${SSH:-ssh}

# Run by the peer's shell (sh): for each VIP, the interface that holds its address,
# if any, then the delete; then a second look. Prints "gone" or "left" per VIP and
# exits 1 if any is left.
remote="left=0; for vip in ${vips[*]}; do
  address=\${vip%/*}
  dev=\$(ip -o addr show to \"\$address\" | awk '{ print \$2; exit }')
  [ -z \"\$dev\" ] || ip addr del \"\$vip\" dev \"\$dev\" || true
  if [ -n \"\$(ip -o addr show to \"\$address\")\" ]; then echo \"left \$vip\"; left=1; else echo \"gone \$vip\"; fi
done; exit \$left"

echo "fencing $peer: removing ${vips[*]} over ssh (${FAILOVERD_REASON:-no reason given};" \
    "still answered by ${FAILOVERD_ANSWERED_BY:-nobody})"
for address in "${addresses[@]}"; do
    status=0
    "$ssh" -o BatchMode=yes -o ConnectTimeout="$connect" "${options[@]}" \
        "$user@$address" "$remote" </dev/null || status=$?
    case $status in
    0)
        echo "fencing $peer: every VIP is gone from it (via $address)"
        exit 0
        ;;
    255)
        echo "fencing $peer: no login at $address (ssh failed)" >&2
        ;;
    *)
        # Logged in, but a VIP is still there: another address reaches the same
        # machine and will not do better, but costs little to try.
        echo "fencing $peer: a VIP is still on it after the delete (via $address, exit $status)" >&2
        ;;
    esac
done
echo "fencing $peer: failed on every address (${addresses[*]})" >&2
exit 1
