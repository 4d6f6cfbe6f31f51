#!/usr/bin/env bash
# Writes the files made from others, which are committed so that a package can be
# built from the repository alone:
#   man/          a page in section 8 for failoverd and each of its commands (from
#                 their clap definitions in src/main.rs), and failoverd.toml(5)
#                 (from the configuration reference, $REFERENCE below);
#   completions/  bash, zsh and fish completions (from the clap definitions);
#   packaging/deb/failoverd.service
#                 systemd/failoverd.service with failoverd where the package puts it;
#   packaging/deb/copyright
#                 LICENSE in the machine-readable form Debian asks for.
# Run it after changing any of those sources. tests/generated.rs runs it into a
# scratch directory and fails when the committed files differ.
#
# Usage: scripts/generate.sh [DIR]   (default: the repository)
# FAILOVERD names the failoverd binary to run; by default it is built with cargo.
set -euo pipefail

out=$(realpath -m "${1:-$(dirname "$0")/..}")
cd "$(dirname "$0")/.."

# The configuration reference, source of failoverd.toml(5): the section under the
# heading "Configuration reference".
REFERENCE=docs/configuration.md

# ExecStart of the unit as installed by hand, and as the package installs it.
MANUAL_BINARY=/usr/local/sbin/failoverd
PACKAGE_BINARY=/usr/sbin/failoverd

if [ -n "${FAILOVERD:-}" ]; then
    failoverd=("$FAILOVERD")
else
    failoverd=(cargo run --quiet --bin failoverd --)
fi

rm -rf "$out/man" "$out/completions"
"${failoverd[@]}" generate-files --reference "$REFERENCE" "$out"

unit=systemd/failoverd.service
for key in ExecStart ExecReload; do
    if ! grep -q "^$key=$MANUAL_BINARY " "$unit"; then
        echo "scripts/generate.sh: $unit: no line $key=$MANUAL_BINARY ...;" \
            "update MANUAL_BINARY here" >&2
        exit 1
    fi
done
mkdir -p "$out/packaging/deb"
{
    echo "# Made by scripts/generate.sh from $unit: edit that one. The Debian"
    echo "# package installs this copy as /usr/lib/systemd/system/failoverd.service, and"
    echo "# failoverd as $PACKAGE_BINARY; what follows about installing by hand does not apply."
    echo "#"
    sed -e "s|^ExecStart=$MANUAL_BINARY |ExecStart=$PACKAGE_BINARY |" \
        -e "s|^ExecReload=$MANUAL_BINARY |ExecReload=$PACKAGE_BINARY |" "$unit"
} >"$out/packaging/deb/failoverd.service"

# DEP-5: the license text indented by one space, an empty line written as " .".
license=LICENSE
{
    echo "Format: https://www.debian.org/doc/packaging-manuals/copyright-format/1.0/"
    echo "Upstream-Name: failoverd"
    echo
    echo "Files: *"
    sed -n 's/^Copyright (c) /Copyright: /p' "$license"
    echo "License: $(head -n 1 "$license" | sed 's/ License$//')"
    sed '1,/^Copyright/d' "$license" | sed -e '1{/^$/d;}' -e 's/^$/./' -e 's/^/ /'
} >"$out/packaging/deb/copyright"
