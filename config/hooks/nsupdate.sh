#!/usr/bin/env bash
# failoverd hook: for clients that find the service by a virtual host name rather
# than a VIP. When this node becomes active, it points the name at this node's own
# address with a dynamic DNS update (RFC 2136, signed with a TSIG key).
#
# Install it as /etc/failoverd/hooks/nsupdate.sh and name it as the start hook (as
# the stop and fault hook it does nothing). The DNS server must allow the key to
# update the name, and DNS_ADDRESS differs between the nodes, so the settings belong
# in /etc/failoverd/environment on each node.
#
# Nothing is removed on stop, on purpose. A node that stops being active may be
# dead or cut off, so its stop hook cannot be what keeps the record right: the start
# hook of the node that takes over replaces the record in one atomic update. And
# deleting it on stop would leave the name without an address until then, an
# answer that resolvers cache (as a negative answer) for longer than DNS_TTL.
# Clients that cached the old address keep using it for up to DNS_TTL seconds.
#
# Settings, from failoverd's environment (/etc/failoverd/environment):
#   DNS_SERVER    the primary server to send the update to (required)
#   DNS_ZONE      the zone holding the name, e.g. example.org (required)
#   DNS_NAME      the fully qualified name, e.g. www.example.org (required)
#   DNS_ADDRESS   this node's address: an A record, or AAAA for IPv6 (required)
#   DNS_TTL       the record's time to live in seconds (default 60)
#   NSUPDATE_KEY  the TSIG key file, for `nsupdate -k` (required)
#   NSUPDATE      the nsupdate program (default nsupdate, from bind9-dnsutils)
set -eu

hook=${FAILOVERD_HOOK:?this script is meant to be run by failoverd}
case $hook in
start) ;;
stop | fault)
    echo "$hook: nothing to do; the node that takes over updates the name"
    exit 0
    ;;
*)
    echo "unknown hook \"$hook\"" >&2
    exit 2
    ;;
esac

server=${DNS_SERVER:?set DNS_SERVER to the DNS server that takes updates}
zone=${DNS_ZONE:?set DNS_ZONE to the zone of DNS_NAME}
name=${DNS_NAME:?set DNS_NAME to the name clients use}
address=${DNS_ADDRESS:?set DNS_ADDRESS to the address of this node}
key=${NSUPDATE_KEY:?set NSUPDATE_KEY to the TSIG key file}
ttl=${DNS_TTL:-60}
nsupdate=${NSUPDATE:-nsupdate}

case $address in
*:*) type=AAAA ;;
*) type=A ;;
esac

echo "pointing $name at $address ($type, TTL $ttl) on $server"
# -t: give up on a server that does not answer well before hooks.timeout (default 60s).
"$nsupdate" -k "$key" -t 20 <<END
server $server
zone $zone
update delete $name $type
update add $name $ttl $type $address
send
END
