#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Before/after: two builds of libp11kms.so (e.g. the commit before a change
# and the change) and SoftHSM2, side by side in one run, interleaved (for
# each workload and round: before, after, SoftHSM2), best round kept. For
# changes that should not move performance (a move-and-split, a lock
# rule), where bench/run.sh's 20-minute population is more than needed.
#
# Usage: bench/compare.sh BEFORE.so AFTER.so [--reps N] [--time SEC] [--count N]
#   --reps N    rounds per workload (default 3)
#   --time SEC  time box per measurement (default 1)
#   --count N   objects populated for find / lifecycle (default 2000)
# Prints a Markdown table: ops/s of each and after/before, after/SoftHSM2;
# the load average at start and end. Raw TSV lines go to stderr.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 2 ] || { sed -n '2,14p' "$0" >&2; exit 2; }
before=$(realpath "$1") after=$(realpath "$2")
shift 2
reps=3 tbox=1 count=2000
while [ $# -gt 0 ]; do
  case "$1" in
    --reps) reps=$2; shift ;;
    --time) tbox=$2; shift ;;
    --count) count=$2; shift ;;
    *) sed -n '2,14p' "$0" >&2; exit 2 ;;
  esac
  shift
done
work=$(mktemp -d /tmp/p11compare.XXXXXX)
trap 'rm -rf "$work"' EXIT
BENCH=$work/p11bench
# shellcheck disable=SC2046
gcc -O2 -Wall -Wextra -o "$BENCH" bench/p11bench.c $(pkg-config --cflags p11-kit-1) \
  -ldl -lcrypto -lpthread
# snapshots: a rebuild during the run must not change what is measured
cp "$before" "$work/before.so"
cp "$after" "$work/after.so"
SOFTHSM=${SOFTHSM2_MODULE:-/usr/lib/softhsm/libsofthsm2.so}
PIN=123456 SO_PIN=12345678
(umask 077; head -c 32 /dev/urandom >"$work/master.key")

cfg() { # IMPL TOKEN
  local f="$work/$1-$2.json"
  [ -f "$f" ] || cat >"$f" <<JSON
{ "log": { "level": "error" },
  "providers": [ { "name": "$2", "type": "local", "key_file": "$work/master.key",
                   "store": "$work/$1-$2.db", "login": "required" } ] }
JSON
  echo "$f"
}
run() { # IMPL TOKEN ARGS...
  local impl=$1 tok=$2; shift 2
  case $impl in
    before | after)
      P11KMS_CONFIG=$(cfg "$impl" "$tok") "$BENCH" --module "$work/$impl.so" --impl "$impl" \
        --pin $PIN --so-pin $SO_PIN --time "$tbox" "$@" ;;
    softhsm)
      mkdir -p "$work/sh-$tok"
      local conf=$work/sh-$tok.conf
      if [ ! -f "$conf" ]; then
        printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n' \
          "$work/sh-$tok" >"$conf"
        SOFTHSM2_CONF=$conf softhsm2-util --init-token --free --label "$tok" \
          --so-pin $SO_PIN --pin $PIN >/dev/null
      fi
      SOFTHSM2_CONF=$conf "$BENCH" --module "$SOFTHSM" --impl softhsm --token "$tok" \
        --pin $PIN --time "$tbox" "$@" ;;
  esac
}
impls=(before after)
[ -f "$SOFTHSM" ] && command -v softhsm2-util >/dev/null && impls+=(softhsm)
for i in "${impls[@]}"; do
  case $i in
    before | after)
      run "$i" bench init-token >/dev/null
      run "$i" objs init-token >/dev/null ;;
  esac
  run "$i" objs --time 86400 --count "$count" populate >/dev/null
done

W=("--size 64 gcm-enc" "--size 16384 gcm-enc" "--size 16384 gcm-dec"
   "--size 1048576 --part 65536 gcm-enc-mp" "--size 4096 cbcpad-enc"
   "--size 4096 hmac" "keygen-session" "keygen-token" "wrap" "unwrap"
   "--count $count find" "--count $count --cycles 5 lifecycle"
   "--size 4096 --threads 2 gcm-enc")
load0=$(cut -d' ' -f1-3 /proc/loadavg)
res=$work/res.tsv
: >"$res"
for w in "${W[@]}"; do
  tok=bench
  case "$w" in *find | *lifecycle) tok=objs ;; esac
  for ((r = 1; r <= reps; r++)); do
    for i in "${impls[@]}"; do
      # shellcheck disable=SC2086
      line=$(run "$i" "$tok" $w | tail -1) || true
      echo "$line" >&2
      printf '%s\t%s\n' "$w" "$line" >>"$res"
    done
  done
done
load1=$(cut -d' ' -f1-3 /proc/loadavg)
echo "| workload | before ops/s | after ops/s | SoftHSM2 ops/s | after / before | after / SoftHSM2 |"
echo "| --- | ---: | ---: | ---: | ---: | ---: |"
awk -F'\t' '
  { w = $1; impl = $2; v = $6 + 0
    if (!(w in seen)) { seen[w] = 1; order[++n] = w }
    if (v > best[w, impl]) best[w, impl] = v }
  function r(a, b) { return (a > 0 && b > 0) ? sprintf("%.2f", a / b) : "n/a" }
  END { for (k = 1; k <= n; k++) { w = order[k]
          b = best[w, "before"]; a = best[w, "after"]; s = best[w, "softhsm"]
          printf "| %s | %.0f | %.0f | %.0f | %s | %s |\n", w, b, a, s, r(a, b), r(a, s) } }' "$res"
echo
echo "load average at start: $load0; at end: $load1; $reps rounds, best kept, ${tbox}s per measurement; $(nproc) CPUs"
