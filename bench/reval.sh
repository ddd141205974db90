#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The latency a hanging KMS adds to local C_Encrypt: two builds of
# libp11kms.so (e.g. before and after moving the sealing key's periodic
# check off the caller's path) on a token of the AWS provider against the
# project's KMS emulator (tests/kms-emulator), revalidate_seconds 1, the
# client's default timeouts (10 s a try, three tries).
#
# Usage: bench/reval.sh BEFORE.so AFTER.so [--latency-ms N] [--time SEC] [--rounds N]
#   --latency-ms N  the emulator holds every DescribeKey this long while the
#                   KMS "hangs" (default 15000)
#   --time SEC      time box per measurement (default 10); an operation that
#                   overruns it is timed in full
#   --rounds N      rounds (default 1); each: both builds quiet, then both
#                   while the KMS hangs; the worst figure over rounds is kept
# For each build and phase: operations (C_EncryptInit + C_Encrypt of 64
# bytes under a token AES key, one thread), median, p99, p99.9 and worst
# latency; "added" is the worst while hanging minus the worst while quiet;
# C_Finalize's time right after the hang (a check may be in flight). Prints
# a Markdown table and the load average at start and end; raw TSV to stderr.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 2 ] || { sed -n '2,21p' "$0" >&2; exit 2; }
before=$(realpath "$1") after=$(realpath "$2")
shift 2
latency=15000 tbox=10 rounds=1
while [ $# -gt 0 ]; do
  case "$1" in
    --latency-ms) latency=$2; shift ;;
    --time) tbox=$2; shift ;;
    --rounds) rounds=$2; shift ;;
    *) sed -n '2,21p' "$0" >&2; exit 2 ;;
  esac
  shift
done
PY=/usr/bin/python3
work=$(mktemp -d /tmp/p11reval.XXXXXX)
emu_pid=""
cleanup() { [ -n "$emu_pid" ] && kill "$emu_pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$work"; }
trap cleanup EXIT
BENCH=$work/revalbench
# shellcheck disable=SC2046
gcc -O2 -Wall -Wextra -o "$BENCH" bench/revalbench.c $(pkg-config --cflags p11-kit-1) -ldl
cp "$before" "$work/before.so"
cp "$after" "$work/after.so"

# --- the emulator ------------------------------------------------------------
mkdir -p "$work/emu"
"$PY" tests/kms-emulator/kmsemu.py serve --state-dir "$work/emu" >"$work/emu.log" 2>&1 &
emu_pid=$!
for _ in $(seq 600); do [ -s "$work/emu/emulator.json" ] && break; sleep 0.1; done
[ -s "$work/emu/emulator.json" ] || { echo "the emulator did not start" >&2; exit 1; }
ctl() { "$PY" tests/integration/emuctl.py "$work/emu" "$@" >/dev/null; }
field() { "$PY" -c 'import json,sys; d=json.load(open(sys.argv[1]))
for k in sys.argv[2:]: d=d[k]
print(d)' "$work/emu/emulator.json" "$@"; }
export AWS_ACCESS_KEY_ID AWS_SECRET_ACCESS_KEY
AWS_ACCESS_KEY_ID=$(field aws access_key_id)
AWS_SECRET_ACCESS_KEY=$(field aws secret_access_key)
unset AWS_SESSION_TOKEN AWS_PROFILE AWS_ENDPOINT_URL_KMS

cfg() { # IMPL
  local f="$work/$1.json"
  [ -f "$f" ] || cat >"$f" <<JSON
{ "log": { "level": "error", "destination": "$work/$1.log" },
  "providers": [ { "name": "bench", "type": "aws", "region": "$(field aws region)",
    "endpoint": "$(field aws endpoint_url)", "ca_file": "$(field ca_bundle)",
    "store": "$work/$1.db", "seal_with": "$(field aws alias)",
    "revalidate_seconds": 1, "offline_grace_seconds": 3600 } ] }
JSON
  echo "$f"
}
run() { # IMPL PHASE ARGS...
  local impl=$1 phase=$2; shift 2
  P11KMS_CONFIG=$(cfg "$impl") "$BENCH" --module "$work/$impl.so" --impl "$impl" \
    --phase "$phase" --time "$tbox" "$@"
}
for i in before after; do run "$i" init init; done

load0=$(cut -d' ' -f1-3 /proc/loadavg)
res=$work/res.tsv
: >"$res"
for ((r = 1; r <= rounds; r++)); do
  ctl clear-faults
  for i in before after; do run "$i" quiet run | tee -a "$res" >&2; done
  for i in before after; do
    ctl fault "{\"service\": \"aws\", \"op\": \"DescribeKey\", \"kind\": \"latency\", \"delay_ms\": $latency, \"count\": 0}"
    run "$i" hang --finalize run | tee -a "$res" >&2
    ctl clear-faults
    sleep $(( (latency + 999) / 1000 )) # let the emulator finish the held requests
  done
done
load1=$(cut -d' ' -f1-3 /proc/loadavg)

echo "| build | phase | ops | p50 µs | p99 µs | p99.9 µs | worst ms | added ms | C_Finalize ms |"
echo "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
awk -F'\t' '
  { k = $1 SUBSEP $2
    if (!(k in seen)) { seen[k] = 1; order[++n] = k }
    ops[k] += $3
    if ($4 > p50[k]) p50[k] = $4
    if ($5 > p99[k]) p99[k] = $5
    if ($6 > p999[k]) p999[k] = $6
    if ($7 > worst[k]) worst[k] = $7
    if ($8 != "-" && $8 + 0 > fin[k]) fin[k] = $8 + 0 }
  END { for (i = 1; i <= n; i++) { k = order[i]; split(k, a, SUBSEP)
          q = a[1] SUBSEP "quiet"
          added = a[2] == "hang" ? sprintf("%.1f", worst[k] - worst[q]) : "-"
          printf "| %s | %s | %d | %.1f | %.1f | %.1f | %.1f | %s | %s |\n", a[1], a[2], ops[k],
                 p50[k], p99[k], p999[k], worst[k], added, (k in fin) ? fin[k] : "-" } }' "$res"
echo
echo "KMS hang: every DescribeKey held ${latency} ms; ${tbox}s per measurement, $rounds round(s), worst kept;" \
  "load average at start: $load0; at end: $load1; $(nproc) CPUs"
