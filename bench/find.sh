#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# C_FindObjects by template shape among 100, 10,000 (and, with --large,
# 100,000) token keys, and C_Initialize / C_Login with those stores: one
# Markdown table. Each object is a token AES key with its own CKA_LABEL
# and CKA_ID, so every shape names one object.
#
# Usage: bench/find.sh [--large] [--work DIR] [--module SO] [--time SEC]
#   --large     also 100,000 objects (populating them takes a few minutes:
#               C_CreateObject commits each object)
#   --work DIR  scratch folder (default: a new one under /tmp, removed at the
#               end); populated stores in DIR are reused by the next run
#   --module SO the module to measure (default: build/libp11kms.so, built)
#   --time SEC  time box per measurement (default 2)
set -euo pipefail
cd "$(dirname "$0")/.."
src=$PWD
. bench/local_config.sh
large=0 work="" module="" tbox=2
while [ $# -gt 0 ]; do
  case "$1" in
    --large) large=1 ;;
    --work) work=$2; shift ;;
    --module) module=$2; shift ;;
    --time) tbox=$2; shift ;;
    *) sed -n '2,16p' "$0" >&2; exit 2 ;;
  esac
  shift
done
if [ -z "$work" ]; then
  work=$(mktemp -d /tmp/p11find.XXXXXX)
  trap 'rm -rf "$work"' EXIT
fi
mkdir -p "$work"
if [ -z "$module" ]; then
  build=$(scripts/build.sh release p11kms p11kms-tool)
  module=$src/$build/libp11kms.so
fi
BENCH=$work/p11bench
# shellcheck disable=SC2046
gcc -O2 -Wall -Wextra -o "$BENCH" bench/p11bench.c $(pkg-config --cflags p11-kit-1) \
  -ldl -lcrypto -lpthread
PIN=123456 SO_PIN=12345678
[ -f "$work/master.key" ] || (umask 077; head -c 32 /dev/urandom >"$work/master.key")
sizes=(100 10000)
[ $large = 1 ] && sizes+=(100000)
cfg() { echo "$work/o$1.json"; }
run() { # N ARGS...
  local n=$1; shift
  P11KMS_CONFIG=$(cfg "$n") "$BENCH" --module "$module" --impl p11kms --pin $PIN "$@"
}
for n in "${sizes[@]}"; do
  [ -f "$work/o$n.done" ] && continue
  rm -f "$work/o$n.db" "$work/o$n.db-wal" "$work/o$n.db-shm"
  local_config "o$n" "$work/master.key" "$work/o$n.db" >"$(cfg "$n")"
  run "$n" --token "o$n" --so-pin $SO_PIN init-token >/dev/null
  echo "== populating $n token keys ..." >&2
  # One writer: each C_CreateObject commits (synchronous=FULL), a few
  # hundred a second here; two writers contend for the store's lock.
  run "$n" --time 86400 --count "$n" populate >"$work/pop$n.tsv"
  got=$(sqlite3 -readonly "$work/o$n.db" 'SELECT count(*) FROM objects' 2>/dev/null || echo "?")
  [ "$got" = "$n" ] || { echo "populating o$n: $got objects, not $n" >&2; exit 1; }
  touch "$work/o$n.done"
done

shapes=(label id class+label class+id class+keytype+label token+class+label private+id
        label+id all6)
load0=$(cut -d' ' -f1-3 /proc/loadavg)
res=$work/find.tsv
: >"$res"
for sh in "${shapes[@]}"; do
  for n in "${sizes[@]}"; do
    run "$n" --time "$tbox" --count "$n" --shape "$sh" find | sed "s/^/$sh\t/" >>"$res"
    run "$n" --time "$tbox" --count "$n" --hot 100 --shape "$sh" find | sed "s/^/hot:$sh\t/" >>"$res"
  done
done
for n in "${sizes[@]}"; do
  run "$n" --count "$n" --cycles 7 lifecycle | sed "s/^/lifecycle\t/" >>"$res"
done
load1=$(cut -d' ' -f1-3 /proc/loadavg)
/usr/bin/python3 - "$res" "$load0" "$load1" "${sizes[@]}" <<'PY'
import sys
res, load0, load1, *sizes = sys.argv[1:]
rows, life = {}, {}
for line in open(res):
    f = line.rstrip('\n').split('\t')
    if f[0] == 'lifecycle':
        life[f[3]] = dict(kv.split('=') for kv in f[8].split() if '=' in kv)
    else:
        rows.setdefault(f[0], {})[f[3]] = f[5]
head = ' | '.join(f'{int(n):,} objects' for n in sizes)
num = lambda v: v.replace('.', '', 1).isdigit()
for hot, title in ((False, 'Each find names an object picked at random among all of them '
                    '(among many, most finds load their object: read, authenticate, register):'),
                   (True, 'Each find names one of the first 100 objects (loaded after the '
                    'first hundred finds: the index and the search itself):')):
    print(title)
    print()
    print(f'| template | {head} | rate at {int(sizes[-1]):,} / at {int(sizes[0]):,} |')
    print('| --- |' + ' ---: |' * (len(sizes) + 1))
    for sh, r in rows.items():
        if sh.startswith('hot:') != hot:
            continue
        cells = [f'{float(r[n]):,.0f}/s' if num(r.get(n, '')) else r.get(n, 'ERR')
                 for n in sizes]
        a, b = r.get(sizes[0], ''), r.get(sizes[-1], '')
        ratio = f'{float(b) / float(a):.2f}' if num(a) and num(b) else '—'
        print(f'| {sh.removeprefix("hot:")} | ' + ' | '.join(cells) + f' | {ratio} |')
    print()
print('| objects | C_Initialize (median ms) | C_Login (median ms) |')
print('| ---: | ---: | ---: |')
for n in sizes:
    d = life.get(n, {})
    print(f"| {int(n):,} | {d.get('median_ms_initialize', 'ERR')} | {d.get('median_ms_login', 'ERR')} |")
print()
print(f'load average before/after: {load0} / {load1}')
PY
