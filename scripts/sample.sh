# shellcheck shell=bash
# The sample cluster configuration for scripts/demo.sh and bench/failover.sh:
# config/failoverd.toml, the example that is installed, with the values a script needs
# set by key. tests/common/sample.rs renders the same file by the same rules for the
# tests, so the shape of the sample changes in config/failoverd.toml alone. Source it,
# then for example
#
#   sample_config cluster.key_file="$dir/authkey" timing.dead=500ms -hooks >"$dir/failoverd.toml"
#
# Each argument is one edit, applied in order:
#   KEY=VALUE  sets KEY, named as `failoverd check` names it (timing.dead,
#              node[1].priority), adding it after the last key of its table when the
#              table does not have it. VALUE is written as it is when it reads as TOML
#              (an integer, true, false, an array, an inline table or a quoted string)
#              and as a string otherwise: timing.dead=500ms, health.failures=3.
#   -KEY       removes KEY, or every line of a table (-hooks, -node[1], -vip).
# Fails, printing nothing, on a table or key that the sample does not have. Quote
# edits with brackets or braces ('node[1].interfaces={}') to keep them from the shell.

SAMPLE_CONFIG_FILE="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)/config/failoverd.toml"

# One edit (SAMPLE_EDIT in the environment) applied to the document on stdin. Every line first gets its table
# (cluster, node[1]) and the dotted key it sets, if any, as in tests/common/sample.rs.
SAMPLE_CONFIG_AWK='
{ line[NR] = $0 }
END {
    edit = ENVIRON["SAMPLE_EDIT"]
    table = ""
    for (i = 1; i <= NR; i++) {
        l = line[i]
        sub(/^[ \t]+/, "", l)
        sub(/[ \t]+$/, "", l)
        header[i] = 0
        key[i] = ""
        if (l ~ /^\[\[.*\]\]$/) {
            name = substr(l, 3, length(l) - 4)
            gsub(/[ \t]/, "", name)
            table = name "[" (count[name] + 0) "]"
            count[name]++
            header[i] = 1
        } else if (l ~ /^\[.*\]$/) {
            table = substr(l, 2, length(l) - 2)
            gsub(/[ \t]/, "", table)
            header[i] = 1
        } else if (l !~ /^#/ && index(l, "=") > 0) {
            name = substr(l, 1, index(l, "=") - 1)
            gsub(/[ \t]/, "", name)
            key[i] = (table == "" ? name : table "." name)
        }
        tbl[i] = table
    }
    if (substr(edit, 1, 1) == "-") {
        target = substr(edit, 2)
        for (i = 1; i <= NR; i++) {
            if (tbl[i] == target || index(tbl[i], target "[") == 1 || key[i] == target) {
                gone[i] = 1
                found = 1
            }
        }
        if (!found) {
            print "sample_config: the sample has no key or table " target > "/dev/stderr"
            exit 1
        }
        for (i = 1; i <= NR; i++) if (!gone[i]) print line[i]
        exit 0
    }
    eq = index(edit, "=")
    if (eq == 0) {
        print "sample_config: " edit ": expected KEY=VALUE or -KEY" > "/dev/stderr"
        exit 1
    }
    k = substr(edit, 1, eq - 1)
    v = substr(edit, eq + 1)
    if (!(v ~ /^-?[0-9]+$/ || v == "true" || v == "false" || v ~ /^[[{"]/)) v = "\"" v "\""
    n = split(k, part, ".")
    leaf = part[n]
    tname = (n == 1 ? "" : substr(k, 1, length(k) - length(leaf) - 1))
    at = 0
    last = 0
    for (i = 1; i <= NR; i++) {
        if (key[i] == k && !at) at = i
        if (tbl[i] == tname && (header[i] || key[i] != "")) last = i
    }
    if (!at && !last) {
        print "sample_config: the sample has no table \"" tname "\" to set " k " in" > "/dev/stderr"
        exit 1
    }
    for (i = 1; i <= NR; i++) {
        if (i == at) {
            print leaf " = " v
            continue
        }
        print line[i]
        if (!at && i == last) print leaf " = " v
    }
}
'

# sample_config EDIT...: prints the sample with every EDIT applied (see above).
sample_config() {
    local text edit
    text=$(<"$SAMPLE_CONFIG_FILE") || return 1
    for edit in "$@"; do
        text=$(SAMPLE_EDIT=$edit awk "$SAMPLE_CONFIG_AWK" <<<"$text") || return 1
    done
    printf '%s\n' "$text"
}
