#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# p11kms encrypt / decrypt throughput (docs/STREAM.md) on one core, beside
# `openssl speed -evp aes-256-gcm -bytes 16384` on the same core in the
# same run. The input is read from the page cache and the output goes to
# /dev/null, so the figure is the tool's CPU cost, not the disk's.
#
# Usage: bench/stream.sh [--size MIB] [--segment-size N]... [--reps N] [--core C]
#   --size MIB          input size (default 1024: 1 GiB)
#   --segment-size N    segment size(s) to measure (default 65536; repeat
#                       the option for several)
#   --reps N            runs of each, the best kept (default 3)
#   --core C            the CPU to pin to with taskset (default 0)
# Prints a Markdown table and the load average at start and end. The
# ratio is by CPU time, as openssl speed measures by default (its user
# time), so that other load on the machine does not skew it; elapsed-time
# figures, against openssl speed -elapsed, are printed beside it.
set -euo pipefail
cd "$(dirname "$0")/.."
size=1024 reps=3 core=0 segs=()
while [ $# -gt 0 ]; do
  case "$1" in
    --size) size=$2; shift ;;
    --segment-size) segs+=("$2"); shift ;;
    --reps) reps=$2; shift ;;
    --core) core=$2; shift ;;
    *) sed -n '2,14p' "$0" >&2; exit 2 ;;
  esac
  shift
done
[ ${#segs[@]} -gt 0 ] || segs=(65536)
tool=$(pwd)/$(scripts/build.sh release p11kms-tool)/p11kms
work=$(mktemp -d /tmp/p11stream.XXXXXX)
trap 'rm -rf "$work"' EXIT
pin=(taskset -c "$core")
"$tool" create-key-file "$work/k.key" >/dev/null
printf '{"log": {"level": "warn", "destination": "%s/log"}, "providers": [{"name": "bench", "type": "local", "key_file": "%s/k.key", "store": "%s/t.db"}]}\n' \
  "$work" "$work" "$work" >"$work/c.json"
bytes=$((size * 1048576))
head -c "$bytes" /dev/urandom >"$work/in"
cat "$work/in" >/dev/null
load0=$(cut -d' ' -f1-3 /proc/loadavg)

mbps() { awk -v b="$bytes" -v t="$1" 'BEGIN { printf "%.0f", (t > 0 ? b / 1e6 / t : 0) }'; }
# best COMMAND...: "CPU WALL", the best MB/s of reps runs by CPU time (user
# + system, as openssl speed counts its user time) and by elapsed time.
best() {
  local bc=0 bw=0 e u s c w
  for ((i = 0; i < reps; i++)); do
    read -r e u s < <( { /usr/bin/time -f "%e %U %S" "$@" >/dev/null; } 2>&1 | tail -1)
    c=$(mbps "$(awk -v u="$u" -v s="$s" 'BEGIN { print u + s }')"); w=$(mbps "$e")
    [ "$c" -gt "$bc" ] && bc=$c
    [ "$w" -gt "$bw" ] && bw=$w
  done
  echo "$bc $bw"
}
# openssl speed's last column is 1000s of bytes per second at 16384 bytes;
# by default it counts user CPU time, with -elapsed wall time.
ossl() {
  "${pin[@]}" openssl speed "$@" -evp aes-256-gcm -bytes 16384 -seconds 3 2>/dev/null |
    awk '/^(AES-256-GCM|aes-256-gcm)/ { v = $NF; sub(/k$/, "", v); printf "%.0f", v / 1000 }'
}
oc=$(ossl) ow=$(ossl -elapsed)
echo "| segment | encrypt MB/s (CPU time) | decrypt MB/s (CPU time) | openssl speed 16 KiB (user time) | encrypt / openssl | decrypt / openssl | encrypt, decrypt MB/s (elapsed) | openssl speed -elapsed |"
echo "| --- | --- | --- | --- | --- | --- | --- | --- |"
for s in "${segs[@]}"; do
  "$tool" encrypt --quiet --config "$work/c.json" --slot bench --segment-size "$s" "$work/in" "$work/enc"
  read -r ec ew < <(best "${pin[@]}" "$tool" encrypt --quiet --config "$work/c.json" --slot bench \
    --segment-size "$s" "$work/in")
  read -r dc dw < <(best "${pin[@]}" "$tool" decrypt --quiet --config "$work/c.json" "$work/enc")
  "${pin[@]}" "$tool" decrypt --quiet --config "$work/c.json" "$work/enc" | cmp -s - "$work/in" ||
    { echo "decrypt did not give the input back" >&2; exit 1; }
  rm -f "$work/enc"
  o=$(ossl); [ "$o" -gt "$oc" ] && oc=$o
  o=$(ossl -elapsed); [ "$o" -gt "$ow" ] && ow=$o
  awk -v s="$s" -v ec="$ec" -v dc="$dc" -v o="$oc" -v ew="$ew" -v dw="$dw" -v ow="$ow" 'BEGIN {
    printf "| %d KiB | %d | %d | %d | %.2f× | %.2f× | %d, %d | %d |\n", s / 1024, ec, dc, o, ec / o, dc / o, ew, dw, ow }'
done
echo
echo "input $size MiB from the page cache, output to /dev/null, pinned to CPU $core" \
  "(taskset), best of $reps; openssl speed best of $((${#segs[@]} + 1)) runs of 3 s each way"
echo "AES-256-GCM: OpenSSL $(openssl version | cut -d' ' -f2) EVP in the module's private" \
  "library context (default provider); $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //')"
echo "load average: $load0 at start, $(cut -d' ' -f1-3 /proc/loadavg) at end ($(nproc) CPUs)"
