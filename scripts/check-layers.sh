#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The layer rule of docs/ARCHITECTURE.md, checked from the includes:
#
#   tools, module  ->  slots  ->  providers  ->  common
#
# A source file may include its own folder and any folder below it, never
# one above. Prints every edge that breaks the rule (file:line and the
# include) and exits 1; prints the folder-level graph and exits 0 when the
# tree keeps it. Usage: scripts/check-layers.sh [-v]
set -euo pipefail
cd "$(dirname "$0")/.."
verbose=${1:-}

rank() {
	case "$1" in
	common) echo 0 ;;
	providers) echo 1 ;;
	slots) echo 2 ;;
	module) echo 3 ;;
	tools) echo 3 ;;
	*) echo -1 ;;
	esac
}

bad=0
declare -A edges=()
while IFS= read -r hit; do
	file=${hit%%:*}
	rest=${hit#*:}
	line=${rest%%:*}
	inc=$(sed -E 's/.*#include "([^"]+)".*/\1/' <<<"${rest#*:}")
	from=${file%%/*}
	# An include without a folder names a file beside the includer.
	case "$inc" in
	*/*) to=${inc%%/*} ;;
	*) to=$from ;;
	esac
	rf=$(rank "$from")
	rt=$(rank "$to")
	[ "$rt" -lt 0 ] && continue # include/, system-style headers
	[ "$from" != "$to" ] && edges["$from -> $to"]=1
	if [ "$rt" -gt "$rf" ]; then
		echo "layer violation: $file:$line: $from includes $inc (a layer above it)"
		bad=1
	elif [ "$from" = tools ] && [ "$to" = module ]; then
		: # the tool may use the module's configuration reader
	elif [ "$rt" -eq "$rf" ] && [ "$from" != "$to" ]; then
		echo "layer violation: $file:$line: $from includes $inc (a sibling layer)"
		bad=1
	fi
done < <(grep -n '^#include "' common/*.[ch] providers/*.[ch] providers/*/*.[ch] \
	slots/*.[ch] module/*.[ch] tools/*.c 2>/dev/null)

if [ "$verbose" = -v ] || [ $bad -ne 0 ]; then
	echo "folder-level include graph:"
	for e in "${!edges[@]}"; do echo "  $e"; done | sort
fi
if [ $bad -ne 0 ]; then
	echo "check-layers: FAILED (see docs/ARCHITECTURE.md, \"Layers\")" >&2
	exit 1
fi
echo "check-layers: ok (tools, module -> slots -> providers -> common; no cycle)"
