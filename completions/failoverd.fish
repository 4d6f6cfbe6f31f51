# Print an optspec for argparse to handle cmd's options that are independent of any subcommand.
function __fish_failoverd_global_optspecs
    string join \n h/help V/version
end

function __fish_failoverd_needs_command
    # Figure out if the current invocation already has a command.
    set -l cmd (commandline -opc)
    set -e cmd[1]
    argparse -s (__fish_failoverd_global_optspecs) -- $cmd 2>/dev/null
    or return
    if set -q argv[1]
        # Also print the command, so this can be used to figure out what it is.
        echo $argv[1]
        return 1
    end
    return 0
end

function __fish_failoverd_using_subcommand
    set -l cmd (__fish_failoverd_needs_command)
    test -z "$cmd"
    and return 1
    contains -- $cmd[1] $argv
end

complete -c failoverd -n "__fish_failoverd_needs_command" -s h -l help -d 'Print help'
complete -c failoverd -n "__fish_failoverd_needs_command" -s V -l version -d 'Print version'
complete -c failoverd -n "__fish_failoverd_needs_command" -f -a "check" -d 'Validate the configuration and print what this node will do'
complete -c failoverd -n "__fish_failoverd_needs_command" -f -a "run" -d 'Run the daemon in the foreground, logging to stderr'
complete -c failoverd -n "__fish_failoverd_needs_command" -f -a "status" -d 'Show this node\'s view of the cluster'
complete -c failoverd -n "__fish_failoverd_needs_command" -f -a "takeover" -d 'Make this node active now; a peer holding the VIPs releases them first'
complete -c failoverd -n "__fish_failoverd_needs_command" -f -a "standby" -d 'Hand the VIPs to a peer and stay standby while a peer can hold them'
complete -c failoverd -n "__fish_failoverd_needs_command" -f -a "failback" -d 'Move the VIPs back to the preferred node (with failback = "manual")'
complete -c failoverd -n "__fish_failoverd_needs_command" -f -a "maintenance" -d 'Freeze (on) or thaw (off) automatic transitions; peers honour it too'
complete -c failoverd -n "__fish_failoverd_needs_command" -f -a "reload" -d 'Make the daemon read its configuration file again'
complete -c failoverd -n "__fish_failoverd_needs_command" -f -a "clear" -d 'End the sticky failure of a check that failed while this node was active, so that it may take the VIPs again'
complete -c failoverd -n "__fish_failoverd_needs_command" -f -a "events" -d 'Print the daemon\'s recent events, oldest first'
complete -c failoverd -n "__fish_failoverd_needs_command" -f -a "import" -d 'Translate a Heartbeat or keepalived configuration into a failoverd one'
complete -c failoverd -n "__fish_failoverd_using_subcommand check" -s c -l config -d 'Configuration file (the same on every node)' -r -F
complete -c failoverd -n "__fish_failoverd_using_subcommand check" -l node -d 'This node\'s name in the file (default: the host name)' -r
complete -c failoverd -n "__fish_failoverd_using_subcommand check" -s h -l help -d 'Print help'
complete -c failoverd -n "__fish_failoverd_using_subcommand run" -s c -l config -d 'Configuration file (the same on every node)' -r -F
complete -c failoverd -n "__fish_failoverd_using_subcommand run" -l node -d 'This node\'s name in the file (default: the host name)' -r
complete -c failoverd -n "__fish_failoverd_using_subcommand run" -l log-level -d 'error, warn, info, debug or trace' -r
complete -c failoverd -n "__fish_failoverd_using_subcommand run" -l socket -d 'Control socket (overrides `[control] socket`; useful to run several nodes on one host, as the tests do)' -r -F
complete -c failoverd -n "__fish_failoverd_using_subcommand run" -l state-dir -d 'Directory for state kept across restarts (overrides `[control] state_dir`)' -r -F
complete -c failoverd -n "__fish_failoverd_using_subcommand run" -s h -l help -d 'Print help'
complete -c failoverd -n "__fish_failoverd_using_subcommand status" -s c -l config -d 'Configuration file; only its `[control] socket` is read (a reload reads the file the daemon runs with)' -r -F
complete -c failoverd -n "__fish_failoverd_using_subcommand status" -l socket -d 'The daemon\'s control socket [default: `[control] socket` from the configuration, else /run/failoverd/failoverd.sock]' -r -F
complete -c failoverd -n "__fish_failoverd_using_subcommand status" -l interval -d 'Time between two views with --watch' -r
complete -c failoverd -n "__fish_failoverd_using_subcommand status" -l json -d 'Print the status document as JSON'
complete -c failoverd -n "__fish_failoverd_using_subcommand status" -l watch -d 'Show it again every --interval until interrupted'
complete -c failoverd -n "__fish_failoverd_using_subcommand status" -s h -l help -d 'Print help (see more with \'--help\')'
complete -c failoverd -n "__fish_failoverd_using_subcommand takeover" -s c -l config -d 'Configuration file; only its `[control] socket` is read (a reload reads the file the daemon runs with)' -r -F
complete -c failoverd -n "__fish_failoverd_using_subcommand takeover" -l socket -d 'The daemon\'s control socket [default: `[control] socket` from the configuration, else /run/failoverd/failoverd.sock]' -r -F
complete -c failoverd -n "__fish_failoverd_using_subcommand takeover" -l timeout -d 'How long to wait for the outcome before giving up (exit 1)' -r
complete -c failoverd -n "__fish_failoverd_using_subcommand takeover" -l no-wait -d 'Return once the daemon has accepted the command'
complete -c failoverd -n "__fish_failoverd_using_subcommand takeover" -s h -l help -d 'Print help'
complete -c failoverd -n "__fish_failoverd_using_subcommand standby" -s c -l config -d 'Configuration file; only its `[control] socket` is read (a reload reads the file the daemon runs with)' -r -F
complete -c failoverd -n "__fish_failoverd_using_subcommand standby" -l socket -d 'The daemon\'s control socket [default: `[control] socket` from the configuration, else /run/failoverd/failoverd.sock]' -r -F
complete -c failoverd -n "__fish_failoverd_using_subcommand standby" -l timeout -d 'How long to wait for the outcome before giving up (exit 1)' -r
complete -c failoverd -n "__fish_failoverd_using_subcommand standby" -l no-wait -d 'Return once the daemon has accepted the command'
complete -c failoverd -n "__fish_failoverd_using_subcommand standby" -s h -l help -d 'Print help'
complete -c failoverd -n "__fish_failoverd_using_subcommand failback" -s c -l config -d 'Configuration file; only its `[control] socket` is read (a reload reads the file the daemon runs with)' -r -F
complete -c failoverd -n "__fish_failoverd_using_subcommand failback" -l socket -d 'The daemon\'s control socket [default: `[control] socket` from the configuration, else /run/failoverd/failoverd.sock]' -r -F
complete -c failoverd -n "__fish_failoverd_using_subcommand failback" -l timeout -d 'How long to wait for the outcome before giving up (exit 1)' -r
complete -c failoverd -n "__fish_failoverd_using_subcommand failback" -l no-wait -d 'Return once the daemon has accepted the command'
complete -c failoverd -n "__fish_failoverd_using_subcommand failback" -s h -l help -d 'Print help'
complete -c failoverd -n "__fish_failoverd_using_subcommand maintenance" -s c -l config -d 'Configuration file; only its `[control] socket` is read (a reload reads the file the daemon runs with)' -r -F
complete -c failoverd -n "__fish_failoverd_using_subcommand maintenance" -l socket -d 'The daemon\'s control socket [default: `[control] socket` from the configuration, else /run/failoverd/failoverd.sock]' -r -F
complete -c failoverd -n "__fish_failoverd_using_subcommand maintenance" -l timeout -d 'How long to wait for the outcome before giving up (exit 1)' -r
complete -c failoverd -n "__fish_failoverd_using_subcommand maintenance" -l no-wait -d 'Return once the daemon has accepted the command'
complete -c failoverd -n "__fish_failoverd_using_subcommand maintenance" -s h -l help -d 'Print help'
complete -c failoverd -n "__fish_failoverd_using_subcommand reload" -s c -l config -d 'Configuration file; only its `[control] socket` is read (a reload reads the file the daemon runs with)' -r -F
complete -c failoverd -n "__fish_failoverd_using_subcommand reload" -l socket -d 'The daemon\'s control socket [default: `[control] socket` from the configuration, else /run/failoverd/failoverd.sock]' -r -F
complete -c failoverd -n "__fish_failoverd_using_subcommand reload" -l main-pid -d 'The daemon\'s process id, as systemd gives it ($MAINPID): when no daemon answers on the control socket the file names (the file moved the socket, or cannot be read), send this process SIGHUP instead. That reloads too, but with no answer, so the command then exits 1' -r
complete -c failoverd -n "__fish_failoverd_using_subcommand reload" -s h -l help -d 'Print help'
complete -c failoverd -n "__fish_failoverd_using_subcommand clear" -s c -l config -d 'Configuration file; only its `[control] socket` is read (a reload reads the file the daemon runs with)' -r -F
complete -c failoverd -n "__fish_failoverd_using_subcommand clear" -l socket -d 'The daemon\'s control socket [default: `[control] socket` from the configuration, else /run/failoverd/failoverd.sock]' -r -F
complete -c failoverd -n "__fish_failoverd_using_subcommand clear" -s h -l help -d 'Print help'
complete -c failoverd -n "__fish_failoverd_using_subcommand events" -s c -l config -d 'Configuration file; only its `[control] socket` is read (a reload reads the file the daemon runs with)' -r -F
complete -c failoverd -n "__fish_failoverd_using_subcommand events" -l socket -d 'The daemon\'s control socket [default: `[control] socket` from the configuration, else /run/failoverd/failoverd.sock]' -r -F
complete -c failoverd -n "__fish_failoverd_using_subcommand events" -s f -l follow -d 'Keep printing new events as they happen'
complete -c failoverd -n "__fish_failoverd_using_subcommand events" -l json -d 'One JSON object per line'
complete -c failoverd -n "__fish_failoverd_using_subcommand events" -s h -l help -d 'Print help'
complete -c failoverd -n "__fish_failoverd_using_subcommand import; and not __fish_seen_subcommand_from heartbeat keepalived" -s h -l help -d 'Print help'
complete -c failoverd -n "__fish_failoverd_using_subcommand import; and not __fish_seen_subcommand_from heartbeat keepalived" -f -a "heartbeat" -d 'Heartbeat v1: ha.cf, haresources and authkeys in DIR (usually /etc/ha.d)'
complete -c failoverd -n "__fish_failoverd_using_subcommand import; and not __fish_seen_subcommand_from heartbeat keepalived" -f -a "keepalived" -d 'keepalived: one vrrp_instance of FILE (usually /etc/keepalived/keepalived.conf)'
complete -c failoverd -n "__fish_failoverd_using_subcommand import; and __fish_seen_subcommand_from heartbeat" -l vip -d 'Completes a VIP that haresources gives without prefix or interface, e.g. 192.168.0.200/24/eth0 (repeatable)' -r
complete -c failoverd -n "__fish_failoverd_using_subcommand import; and __fish_seen_subcommand_from heartbeat" -l this-node -d 'The node this ha.cf is from: a single ucast address in it is then taken as the other node\'s' -r
complete -c failoverd -n "__fish_failoverd_using_subcommand import; and __fish_seen_subcommand_from heartbeat" -l out -d 'Write failoverd.toml, the key and the hooks into DIR (created if missing) instead of printing the configuration' -r -F
complete -c failoverd -n "__fish_failoverd_using_subcommand import; and __fish_seen_subcommand_from heartbeat" -l cluster -d 'The cluster name [default: the node names (Heartbeat), the instance name (keepalived)]' -r
complete -c failoverd -n "__fish_failoverd_using_subcommand import; and __fish_seen_subcommand_from heartbeat" -l address -d 'A node\'s address on a link (a link is named after its interface), for what the input does not tell (repeatable)' -r
complete -c failoverd -n "__fish_failoverd_using_subcommand import; and __fish_seen_subcommand_from heartbeat" -l priority -d 'A node\'s priority, for what the input does not tell (repeatable)' -r
complete -c failoverd -n "__fish_failoverd_using_subcommand import; and __fish_seen_subcommand_from heartbeat" -l key-file -d 'Name this existing key file in the configuration instead of writing one, e.g. the one the first node\'s import wrote, copied over' -r
complete -c failoverd -n "__fish_failoverd_using_subcommand import; and __fish_seen_subcommand_from heartbeat" -l force -d 'Overwrite files that exist in the --out directory'
complete -c failoverd -n "__fish_failoverd_using_subcommand import; and __fish_seen_subcommand_from heartbeat" -s h -l help -d 'Print help'
complete -c failoverd -n "__fish_failoverd_using_subcommand import; and __fish_seen_subcommand_from keepalived" -l instance -d 'The vrrp_instance to translate [default: the first]' -r
complete -c failoverd -n "__fish_failoverd_using_subcommand import; and __fish_seen_subcommand_from keepalived" -l this-node -d 'This node\'s name (the host name of the node FILE is from) [default: node1]' -r
complete -c failoverd -n "__fish_failoverd_using_subcommand import; and __fish_seen_subcommand_from keepalived" -l peer -d 'A peer\'s name, in unicast_peer order (repeatable) [default: node2, ...]' -r
complete -c failoverd -n "__fish_failoverd_using_subcommand import; and __fish_seen_subcommand_from keepalived" -l out -d 'Write failoverd.toml, the key and the hooks into DIR (created if missing) instead of printing the configuration' -r -F
complete -c failoverd -n "__fish_failoverd_using_subcommand import; and __fish_seen_subcommand_from keepalived" -l cluster -d 'The cluster name [default: the node names (Heartbeat), the instance name (keepalived)]' -r
complete -c failoverd -n "__fish_failoverd_using_subcommand import; and __fish_seen_subcommand_from keepalived" -l address -d 'A node\'s address on a link (a link is named after its interface), for what the input does not tell (repeatable)' -r
complete -c failoverd -n "__fish_failoverd_using_subcommand import; and __fish_seen_subcommand_from keepalived" -l priority -d 'A node\'s priority, for what the input does not tell (repeatable)' -r
complete -c failoverd -n "__fish_failoverd_using_subcommand import; and __fish_seen_subcommand_from keepalived" -l key-file -d 'Name this existing key file in the configuration instead of writing one, e.g. the one the first node\'s import wrote, copied over' -r
complete -c failoverd -n "__fish_failoverd_using_subcommand import; and __fish_seen_subcommand_from keepalived" -l force -d 'Overwrite files that exist in the --out directory'
complete -c failoverd -n "__fish_failoverd_using_subcommand import; and __fish_seen_subcommand_from keepalived" -s h -l help -d 'Print help'
