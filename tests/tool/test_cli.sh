#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The p11kms tool's help and usage contract (p11kms(1)): help to stdout
# with exit 0, usage errors to stderr with exit 2.
set -uo pipefail
tool=${P11KMS_TOOL:?P11KMS_TOOL is set by ctest}
fails=0
check() { # DESC WANT_RC WANT_STDOUT_RE WANT_STDERR_RE -- ARGS...
  local desc=$1 want=$2 out_re=$3 err_re=$4; shift 5
  local out err rc
  out=$("$tool" "$@" 2>/tmp/p11kms-cli-err.$$); rc=$?
  err=$(cat /tmp/p11kms-cli-err.$$); rm -f /tmp/p11kms-cli-err.$$
  local ok=1
  [ "$rc" = "$want" ] || ok=0
  if [ -n "$out_re" ]; then grep -Eq "$out_re" <<<"$out" || ok=0
  else [ -z "$out" ] || ok=0; fi
  if [ -n "$err_re" ]; then grep -Eq "$err_re" <<<"$err" || ok=0
  else [ -z "$err" ] || ok=0; fi
  if [ $ok = 1 ]; then echo "ok - $desc"
  else
    echo "not ok - $desc (exit $rc, want $want)"; echo "  stdout: $out"; echo "  stderr: $err"
    fails=$((fails + 1))
  fi
}
check "help lists every command" 0 'p11kms create-key-file PATH' '' -- help
check "--help is help" 0 'p11kms status \[--config PATH\]' '' -- --help
check "-h is help" 0 'p11kms version' '' -- -h
check "help of one command" 0 '^usage: p11kms status' '' -- help status
check "COMMAND --help" 0 '^usage: p11kms create-key-file PATH' '' -- create-key-file --help
check "status --help makes no status" 0 'seals' '' -- status --help
check "help of an unknown command" 2 '' 'no command "frobnicate"' -- help frobnicate
check "no arguments is a usage error" 2 '' '^usage:' --
check "an unknown command is a usage error" 2 '' '^usage:' -- frobnicate
check "version" 0 '^p11kms [0-9]+\.[0-9]+' '' -- version
check "help lists rewrap" 0 'p11kms rewrap \[--config PATH\] \[--slot ID\] \[--force\]' '' -- help
check "rewrap --help" 0 '^usage: p11kms rewrap' '' -- rewrap --help

# rewrap: no PIN is ever taken; exit 0 all current, 1 failure, 2 usage.
dir=$(mktemp -d /tmp/p11kms-cli-XXXXXX)
trap 'rm -rf "$dir"' EXIT
head -c 32 /dev/urandom >"$dir/k" && chmod 600 "$dir/k"
cat >"$dir/c.json" <<EOF
{"log": {"level": "error"}, "providers": [
  {"name": "dev", "type": "local", "key_file": "$dir/k", "store": "$dir/t.db"}]}
EOF
check "rewrap takes no PIN" 2 '' '^usage:' -- rewrap --config "$dir/c.json" --pin 1234
check "rewrap --slot needs a value" 2 '' '^usage:' -- rewrap --config "$dir/c.json" --slot
check "rewrap of an unknown slot" 2 '' 'no slot "nope"' -- rewrap --config "$dir/c.json" --slot nope
check "rewrap with no token yet" 0 'slot [0-9]+ \(dev\): not initialized' '' -- \
  rewrap --config "$dir/c.json" --slot dev
check "rewrap with a missing configuration" 1 '' 'does not start' -- \
  rewrap --config "$dir/none.json"
chmod 644 "$dir/k"
check "rewrap with a key file C_Initialize refuses" 1 '' 'too open' -- \
  rewrap --config "$dir/c.json"
[ $fails = 0 ] || { echo "$fails failed"; exit 1; }
