# shellcheck shell=bash
# The failoverd lab in bash, for scripts/demo.sh: the same layout as tests/common/mod.rs.
# Source it, then `lab_up PREFIX` ... `lab_down`. Needs root and iproute2.
#
#   PREFIX-lan: bridge br0 with one port per host (gw, cl, n1, n2)
#   PREFIX-gw   eth0 198.18.0.1/24    the gateway
#   PREFIX-cl   eth0 198.18.0.100/24  the client
#   PREFIX-n1   eth0 198.18.0.11/24,  xo 198.19.0.1/30  (node alpha)
#   PREFIX-n2   eth0 198.18.0.12/24,  xo 198.19.0.2/30  (node beta)
#
# Every link is created inside a namespace, never in the host's own, and nothing is
# connected to the host's network. lab_down deletes exactly the namespaces lab_up made.

LAB_HOSTS=(lan gw cl n1 n2)
LAB_PREFIX=""
# Namespaces made so far, so that a half-built lab is cleaned up too.
LAB_NAMESPACES=()

# lab_free_prefix BASE: prints BASE, or BASE-N, such that none of its namespaces exist.
lab_free_prefix() {
    local base=$1 prefix=$1 n=0 host taken
    while :; do
        taken=""
        for host in "${LAB_HOSTS[@]}"; do
            [ -e "/run/netns/$prefix-$host" ] && taken=1
        done
        [ -z "$taken" ] && break
        n=$((n + 1))
        prefix="$base-$n"
    done
    echo "$prefix"
}

# lab_ns HOST: the namespace name of HOST (lan, gw, cl, n1 or n2).
lab_ns() {
    echo "$LAB_PREFIX-$1"
}

# lab_up PREFIX: builds the topology; fails (returns non-zero) at the first error.
lab_up() {
    LAB_PREFIX=$1
    local host ns entry cidr
    for host in "${LAB_HOSTS[@]}"; do
        ns=$(lab_ns "$host")
        ip netns add "$ns" || return
        LAB_NAMESPACES+=("$ns")
        ip -n "$ns" link set lo up || return
    done
    local lan
    lan=$(lab_ns lan)
    ip -n "$lan" link add br0 type bridge || return
    ip -n "$lan" link set br0 up || return
    for entry in gw=198.18.0.1/24 cl=198.18.0.100/24 n1=198.18.0.11/24 n2=198.18.0.12/24; do
        host=${entry%%=*}
        cidr=${entry#*=}
        ns=$(lab_ns "$host")
        # Made inside the host's namespace with the peer put straight into the LAN's.
        ip -n "$ns" link add eth0 type veth peer name "$host" netns "$lan" || return
        ip -n "$lan" link set "$host" master br0 up || return
        ip -n "$ns" addr add "$cidr" dev eth0 || return
        ip -n "$ns" link set eth0 up || return
    done
    ip -n "$(lab_ns n1)" link add xo type veth peer name xo netns "$(lab_ns n2)" || return
    ip -n "$(lab_ns n1)" addr add 198.19.0.1/30 dev xo || return
    ip -n "$(lab_ns n2)" addr add 198.19.0.2/30 dev xo || return
    ip -n "$(lab_ns n1)" link set xo up || return
    ip -n "$(lab_ns n2)" link set xo up || return
    for host in cl n1 n2; do
        ip -n "$(lab_ns "$host")" route add default via 198.18.0.1 || return
    done
}

# lab_down: kills whatever still runs in the lab's namespaces (by PID) and deletes them.
lab_down() {
    local ns pid
    for ns in "${LAB_NAMESPACES[@]}"; do
        for pid in $(ip netns pids "$ns" 2>/dev/null); do
            kill -KILL "$pid" 2>/dev/null || true
        done
        ip netns del "$ns" || echo "lab: could not delete namespace $ns" >&2
    done
    LAB_NAMESPACES=()
}
