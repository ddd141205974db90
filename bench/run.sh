#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The benchmark: libp11kms.so (local provider) against SoftHSM2 and raw
# OpenSSL EVP, on this machine, in one run, interleaved (for each workload:
# p11kms, SoftHSM2, OpenSSL, then the three again; the better of the two
# runs is kept), then a Markdown table with the ratios.
#
# Usage: bench/run.sh [--quick] [--work DIR] [--keep] [--reps N] [--time SEC]
#   --quick     smoke test: short time boxes, one round, 50 objects instead
#               of 10,000/100,000. Checks only that every workload produced
#               a number or n/a (never a timing).
#   --work DIR  scratch folder (default: a new one under /tmp, removed at
#               the end unless --keep). Populated tokens in DIR are reused.
#   --reps N    rounds per workload (default 2; --quick 1)
#   --time SEC  time box per measurement (default 1; --quick 0.05)
# Environment: P11KMS_MODULE / P11KMS_TOOL (set by ctest: use these and do
# not build), SOFTHSM2_MODULE (default /usr/lib/softhsm/libsofthsm2.so),
# P11BENCH_SOFTHSM_POPULATE_LIMIT (seconds SoftHSM2 may take to populate
# 100,000 objects, estimated from its 10,000 rate; default 1800).
# Raw results (TSV, one line per run) are kept in WORK/results.tsv.
set -euo pipefail
cd "$(dirname "$0")/.."
src=$PWD
. bench/local_config.sh

quick=0 work="" keep=0 reps="" tbox=""
while [ $# -gt 0 ]; do
  case "$1" in
    --quick) quick=1 ;;
    --work) work=$2; shift ;;
    --keep) keep=1 ;;
    --reps) reps=$2; shift ;;
    --time) tbox=$2; shift ;;
    *) sed -n '2,22p' "$0" >&2; exit 2 ;;
  esac
  shift
done
if [ $quick = 1 ]; then
  reps=${reps:-1} tbox=${tbox:-0.05} N_SMALL=50 N_LARGE=0 CYCLES=3
else
  reps=${reps:-2} tbox=${tbox:-1} N_SMALL=10000 N_LARGE=100000 CYCLES=7
fi

# --- build ---------------------------------------------------------------
if [ -z "$work" ]; then
  work=$(mktemp -d /tmp/p11bench.XXXXXX)
  [ $keep = 1 ] || trap 'rm -rf "$work"' EXIT
fi
mkdir -p "$work"
if [ -n "${P11KMS_MODULE:-}" ]; then
  MODULE=$P11KMS_MODULE
  TOOL=${P11KMS_TOOL:-}
  BENCH=$work/p11bench
else
  build=$(scripts/build.sh release p11kms p11kms-tool)
  MODULE=$src/$build/libp11kms.so
  TOOL=$src/$build/p11kms
  mkdir -p "$build/bench"
  BENCH=$src/$build/bench/p11bench
fi
# shellcheck disable=SC2046
gcc -O2 -Wall -Wextra -o "$BENCH" bench/p11bench.c $(pkg-config --cflags p11-kit-1) \
  -ldl -lcrypto -lpthread
# Measure a snapshot: other builds may rewrite build/ while this runs.
cp "$MODULE" "$work/libp11kms.so"
MODULE=$work/libp11kms.so
commit=$(git -C "$src" rev-parse --short HEAD 2>/dev/null || echo unknown)
dirty=""
[ -n "$(git -C "$src" status --porcelain 2>/dev/null)" ] && dirty=" (with uncommitted changes)"
SOFTHSM=${SOFTHSM2_MODULE:-/usr/lib/softhsm/libsofthsm2.so}
have_softhsm=1
[ -f "$SOFTHSM" ] && command -v softhsm2-util >/dev/null || have_softhsm=0

# Under the ASan build the uninstrumented p11bench needs the runtime
# preloaded to load libp11kms.so (p11kms runs only).
SAN_ENV=()
case "${P11KMS_SANITIZE:-}" in
  1 | ON | on | true | TRUE | yes)
    rt=$(clang -print-file-name=libclang_rt.asan-x86_64.so)
    SAN_ENV=(LD_PRELOAD="$rt" ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0") ;;
esac

# --- tokens ----------------------------------------------------------------
PIN=123456 SO_PIN=12345678
if [ ! -f "$work/master.key" ]; then
  if [ -n "$TOOL" ]; then
    env "${SAN_ENV[@]}" "$TOOL" create-key-file "$work/master.key" >/dev/null
  else
    (umask 077; head -c 32 /dev/urandom >"$work/master.key")
  fi
fi
# p11kms tokens: bench (crypto), o<N> (populated objects); one config each
p11cfg() { echo "$work/p11kms-$1.json"; }
p11kms_token() { # NAME
  local cfg; cfg=$(p11cfg "$1")
  [ -f "$cfg" ] && return 0
  local_config "$1" "$work/master.key" "$work/p11kms-$1.db" >"$cfg"
  P11KMS_CONFIG=$cfg env "${SAN_ENV[@]}" "$BENCH" --module "$MODULE" --impl p11kms \
    --token "$1" --pin $PIN --so-pin $SO_PIN init-token >/dev/null
}
# SoftHSM2 tokens: one folder and conf each (it loads every token in its folder)
shcfg() { echo "$work/softhsm-$1.conf"; }
softhsm_token() { # NAME
  local conf; conf=$(shcfg "$1")
  [ -f "$conf" ] && return 0
  mkdir -p "$work/softhsm-$1"
  printf 'directories.tokendir = %s\nobjectstore.backend = file\nlog.level = ERROR\n' \
    "$work/softhsm-$1" >"$conf"
  SOFTHSM2_CONF=$conf softhsm2-util --init-token --free --label "$1" \
    --so-pin $SO_PIN --pin $PIN >/dev/null
}

# run IMPL TOKEN ARGS...: one p11bench process, its TSV line(s) to stdout.
run() {
  local impl=$1 tok=$2; shift 2
  case $impl in
    p11kms) P11KMS_CONFIG=$(p11cfg "$tok") env "${SAN_ENV[@]}" "$BENCH" --module "$MODULE" \
              --impl p11kms --pin $PIN --time "$tbox" "$@" ;;
    softhsm) if [ $have_softhsm = 1 ]; then
               SOFTHSM2_CONF=$(shcfg "$tok") "$BENCH" --module "$SOFTHSM" --impl softhsm \
                 --token "$tok" --pin $PIN --time "$tbox" "$@"
             else
               printf 'softhsm\t%s\t0\t1\tn/a\t-\t0\tSoftHSM2 not installed\n' "${*: -1}"
             fi ;;
    openssl) "$BENCH" --module openssl --impl openssl --time "$tbox" "$@" ;;
  esac
}

p11kms_token bench
[ $have_softhsm = 1 ] && softhsm_token bench
mechs_p=$(run p11kms bench mechs | awk -F'\t' '$5=="yes"{print $8}' | tr '\n' ' ')
mechs_s=""
[ $have_softhsm = 1 ] && mechs_s=$(run softhsm bench mechs | awk -F'\t' '$5=="yes"{print $8}' | tr '\n' ' ')

# --- populate (untimed phase; rates recorded) --------------------------------
RES=$work/results.tsv
POP=$work/populate.tsv
: >"$RES"
[ -f "$POP" ] || : >"$POP"
populate() { # IMPL N: token o<N> with N key objects, labels bench-obj-0000000..
  local impl=$1 n=$2 tok="o$2" mark="$work/$1-o$2.done"
  [ -f "$mark" ] && return 0
  if [ "$impl" = p11kms ]; then p11kms_token "$tok"; else softhsm_token "$tok"; fi
  if run "$impl" "$tok" --time 86400 --count "$n" populate >>"$POP"; then touch "$mark"; fi
}
[ $quick = 1 ] || echo "== populating token objects (p11kms: $N_SMALL and $N_LARGE; SoftHSM2: $N_SMALL) ..." >&2
pids=()
populate p11kms "$N_SMALL" & pids+=($!)
[ "$N_LARGE" -gt 0 ] && { populate p11kms "$N_LARGE" & pids+=($!); }
[ $have_softhsm = 1 ] && { populate softhsm "$N_SMALL" & pids+=($!); }
for p in "${pids[@]}"; do wait "$p" || true; done
softhsm_large=0 softhsm_large_note=""
if [ "$N_LARGE" -gt 0 ] && [ $have_softhsm = 1 ]; then
  rate=$(awk -F'\t' '$1=="softhsm" && $2=="populate" {r=$5} END {print r+0}' "$POP")
  limit=${P11BENCH_SOFTHSM_POPULATE_LIMIT:-1800}
  est=$(awk -v r="$rate" -v n="$N_LARGE" 'BEGIN { if (r > 0) printf "%d", n / r; else print 999999 }')
  if [ "$est" -le "$limit" ]; then
    populate softhsm "$N_LARGE"
    softhsm_large=1
  else
    softhsm_large_note="not populated: at its measured $rate objects/s SoftHSM2 would need ~$((est / 60)) min for $N_LARGE objects (limit ${limit}s)"
    echo "== SoftHSM2: $softhsm_large_note" >&2
  fi
fi

# --- measurements, interleaved ---------------------------------------------------
# one line per workload: KEY|TOKEN|p11bench args
W=()
for s in 64 4096 16384 1048576; do W+=("gcm-enc:$s|bench|--size $s gcm-enc"); done
for s in 64 4096 16384 1048576; do W+=("gcm-dec:$s|bench|--size $s gcm-dec"); done
W+=("gcm-enc-mp:1048576|bench|--size 1048576 --part 65536 gcm-enc-mp"
    "gcm-dec-mp:1048576|bench|--size 1048576 --part 65536 gcm-dec-mp"
    "cbcpad-enc:4096|bench|--size 4096 cbcpad-enc"
    "cbcpad-dec:4096|bench|--size 4096 cbcpad-dec"
    "ctr-enc:4096|bench|--size 4096 ctr-enc"
    "hmac:4096|bench|--size 4096 hmac"
    "keygen-session|bench|keygen-session"
    "keygen-token|bench|keygen-token"
    "wrap|bench|wrap" "unwrap|bench|unwrap"
    "find:$N_SMALL|o$N_SMALL|--count $N_SMALL find"
    "find-cl:$N_SMALL|o$N_SMALL|--count $N_SMALL --shape class+label find")
[ "$N_LARGE" -gt 0 ] && W+=("find:$N_LARGE|o$N_LARGE|--count $N_LARGE find"
                            "find-cl:$N_LARGE|o$N_LARGE|--count $N_LARGE --shape class+label find")
W+=("lifecycle:$N_SMALL|o$N_SMALL|--count $N_SMALL --cycles $CYCLES lifecycle")
[ "$N_LARGE" -gt 0 ] && W+=("lifecycle:$N_LARGE|o$N_LARGE|--count $N_LARGE --cycles $CYCLES lifecycle")
for t in 1 2 4; do W+=("threads:$t|bench|--size 4096 --threads $t gcm-enc"); done

load0=$(cut -d' ' -f1-3 /proc/loadavg)
[ $quick = 1 ] || echo "== measuring ${#W[@]} workloads x 3 implementations x $reps rounds ..." >&2
for w in "${W[@]}"; do
  IFS='|' read -r key tok args <<<"$w"
  for ((r = 1; r <= reps; r++)); do
    for impl in p11kms softhsm openssl; do
      if [ "$impl" = softhsm ] && [ "$tok" = "o$N_LARGE" ] && [ $softhsm_large = 0 ]; then
        printf 'softhsm\t%s\t%s\t1\tnot-run\t-\t0\t%s\n' "${args##* }" "$N_LARGE" \
          "${softhsm_large_note:-not populated}" | sed "s/^/$key\t/" >>"$RES"
        continue
      fi
      # shellcheck disable=SC2086 # $args is a word list
      out=$(run "$impl" "$tok" $args 2>"$work/stderr.txt") || true
      if [ -z "$out" ]; then
        out=$(printf '%s\t%s\t0\t1\tERR\t-\t0\tno result: %s' "$impl" "${args##* }" \
          "$(tr '\n' ' ' <"$work/stderr.txt" | cut -c1-200)")
      fi
      printf '%s\n' "$out" | sed "s/^/$key\t/" >>"$RES"
    done
  done
done
load1=$(cut -d' ' -f1-3 /proc/loadavg)

# --- the table --------------------------------------------------------------------
cpu=$(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')
softhsm_ver=$(dpkg-query -W -f='${Version}' softhsm2 2>/dev/null || echo unknown)
MACHINE="$(nproc) CPUs, $cpu; Linux $(uname -r); $(openssl version 2>/dev/null | cut -d' ' -f1-2); SoftHSM2 $softhsm_ver; p11kms $commit$dirty; load average before/after: $load0 / $load1; $(date -u '+%Y-%m-%d %H:%M UTC')"
python3 - "$RES" "$POP" "$quick" "$MACHINE" "$reps" "$tbox" "$mechs_p" "$mechs_s" <<'PY'
import sys, collections
res, pop, quick, machine, reps, tbox, mechs_p, mechs_s = sys.argv[1:]
rows = collections.OrderedDict()
for line in open(res):
    f = line.rstrip('\n').split('\t')
    if len(f) < 9:
        continue
    key, impl, wl, size, thr, ops, mbs, rss, note = f[:9]
    rows.setdefault(key, {}).setdefault(impl, []).append((ops, mbs, rss, note))

def best(runs):
    """the better run; an ERR anywhere wins (it must be seen)"""
    errs = [r for r in runs if r[0] == 'ERR']
    if errs:
        return errs[0]
    nums = [r for r in runs if r[0] not in ('n/a', 'not-run')]
    if nums:
        return max(nums, key=lambda r: float(r[0]))
    return runs[0]

names = {
    'gcm-enc': 'AES-256-GCM encrypt {s}', 'gcm-dec': 'AES-256-GCM decrypt {s}',
    'gcm-enc-mp': 'AES-256-GCM encrypt {s}, 64 KiB parts',
    'gcm-dec-mp': 'AES-256-GCM decrypt {s}, 64 KiB parts',
    'cbcpad-enc': 'AES-256-CBC-PAD encrypt {s}', 'cbcpad-dec': 'AES-256-CBC-PAD decrypt {s}',
    'ctr-enc': 'AES-256-CTR encrypt {s}', 'hmac': 'HMAC-SHA-256 sign {s}', 'keygen-session': 'C_GenerateKey AES-256 session key',
    'keygen-token': 'C_GenerateKey AES-256 token key', 'wrap': 'C_WrapKey AES-256 key, KWP',
    'unwrap': 'C_UnwrapKey AES-256 key, KWP', 'find': 'C_FindObjects by label among {n} token keys',
    'find-cl': 'C_FindObjects by class and label among {n} token keys',
    'lifecycle': 'C_Initialize+OpenSession+Login+Finalize, {n} token keys (median ms)',
    'threads': 'AES-256-GCM encrypt 4 KiB, {n} thread(s)',
}
def human(s):
    s = int(s)
    return f'{s // 1048576} MiB' if s >= 1048576 else f'{s // 1024} KiB' if s >= 1024 else f'{s} B'

def cell(r, key):
    ops, mbs, rss, note = r
    if ops == 'ERR':
        return 'ERR: ' + note
    if ops == 'not-run':
        return 'not run'
    if ops == 'n/a':
        return 'n/a'
    if key.startswith('lifecycle'):
        return [x.split('=')[1] for x in note.split() if x.startswith('median_ms=')][0] + ' ms'
    v = float(ops)
    txt = f'{v:,.0f}/s'
    if mbs != '-' and not key.startswith('threads') and key.split(':')[1] not in ('64',):
        txt = f'{float(mbs):,.0f} MB/s'
    elif key.startswith('threads'):
        txt = f'{v:,.0f}/s ({float(mbs):,.0f} MB/s)'
    return txt

def ratio(a, b, key):
    if a[0] in ('n/a', 'ERR', 'not-run') or b[0] in ('n/a', 'ERR', 'not-run'):
        return '—'
    x, y = float(a[0]), float(b[0])
    return f'{x / y:.2f}×' if y > 0 else '—'

out = []
out.append('| workload | p11kms | SoftHSM2 | OpenSSL EVP | p11kms / SoftHSM2 | p11kms / OpenSSL |')
out.append('| --- | ---: | ---: | ---: | ---: | ---: |')
bad = []
rss = collections.defaultdict(dict)
for key, impls in rows.items():
    wl, _, arg = key.partition(':')
    label = names.get(wl, wl).format(s=human(arg) if arg else '', n=f'{int(arg):,}' if arg else '')
    b = {i: best(impls.get(i, [('ERR', '-', '0', 'no result line')])) for i in ('p11kms', 'softhsm', 'openssl')}
    for i, r in b.items():
        if r[0] not in ('n/a', 'not-run'):
            try:
                float(r[0])
            except ValueError:
                bad.append(f'{i} {key}: {r[0]} {r[3]}')
        rss[i][key] = int(r[2])
    extra = ''
    if wl in ('wrap', 'unwrap'):
        mech = {i: b[i][3].split(';')[0] for i in ('p11kms', 'softhsm') if b[i][0] not in ('n/a', 'ERR', 'not-run')}
        extra = ' (' + '; '.join(f'{i}: {m}' for i, m in mech.items()) + ')' if mech else ''
    out.append(f'| {label}{extra} | {cell(b["p11kms"], key)} | {cell(b["softhsm"], key)} | '
               f'{cell(b["openssl"], key)} | {ratio(b["p11kms"], b["softhsm"], key)} | '
               f'{ratio(b["p11kms"], b["openssl"], key)} |')
print('\n'.join(out))
print()
print('Ratios are speed ratios (> 1: p11kms faster); for the C_Initialize..C_Finalize rows they are '
      'inverse time ratios. Each cell is the better of %s interleaved runs of %s s each.' % (reps, tbox))
print()
print('Peak RSS (ru_maxrss, KiB), largest over the runs of each group:')
print()
print('| implementation | cipher, MAC, wrap workloads | C_GenerateKey (keys kept until the end) | C_FindObjects / lifecycle |')
print('| --- | ---: | ---: | ---: |')
groups = (lambda k: not k.startswith(('find', 'lifecycle', 'keygen')),
          lambda k: k.startswith('keygen'), lambda k: k.startswith(('find', 'lifecycle')))
for i, nm in (('p11kms', 'p11kms'), ('softhsm', 'SoftHSM2'), ('openssl', 'OpenSSL EVP')):
    v = [max([x for k, x in rss[i].items() if g(k)] or [0]) for g in groups]
    print('| ' + nm + ' | ' + ' | '.join(f'{x:,}' if x else '—' for x in v) + ' |')
print()
pops = [l.rstrip('\n').split('\t') for l in open(pop) if l.strip()]
if pops:
    print('Population (untimed phase, C_CreateObject of token AES keys, run concurrently): ' +
          '; '.join(f'{p[0]} {int(p[2]):,} objects at {float(p[4]):,.0f}/s' for p in pops if len(p) > 4 and p[4] not in ('ERR', 'n/a')))
    print()
print('Mechanisms offered (C_GetMechanismList): p11kms: %s; SoftHSM2: %s' % (mechs_p.strip() or '—', mechs_s.strip() or '—'))
print()
print('Machine: ' + machine)
if bad:
    print()
    print('FAILURES:')
    for b_ in bad:
        print('  ' + b_)
    sys.exit(1)
PY
