#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The p11kms tool's help and usage contract (p11kms(1), "EXIT STATUS"):
# help to stdout with exit 0; one exit convention for every command: 0 ok,
# 1 warning, 2 failure, 3 usage or configuration error (synopses or a
# one-line reason on stderr).
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
check "help states the exit convention" 0 '0 ok, 1 warning, 2 failure or critical, 3 usage' '' -- help
check "help of one command" 0 '^usage: p11kms status' '' -- help status
check "COMMAND --help" 0 '^usage: p11kms create-key-file PATH' '' -- create-key-file --help
check "status --help makes no status" 0 'seals' '' -- status --help
check "help of an unknown command" 3 '' 'no command "frobnicate"' -- help frobnicate
check "no arguments is a usage error" 3 '' '^usage:' --
check "an unknown command is a usage error" 3 '' '^usage:' -- frobnicate
check "version" 0 '^p11kms [0-9]+\.[0-9]+' '' -- version
check "help lists rewrap" 0 'p11kms rewrap \[--config PATH\] \[--slot ID\] \[--force\]' '' -- help
check "rewrap --help" 0 '^usage: p11kms rewrap' '' -- rewrap --help

# Every command: --help on stdout with 0, help CMD the same, an unknown
# option 3 with the reason on stderr and nothing on stdout.
for c in create-key-file status rewrap rekey backup verify-backup restore encrypt decrypt audit; do
  check "$c --help" 0 "^usage: p11kms $c" '' -- "$c" --help
  check "help $c" 0 "^usage: p11kms $c" '' -- help "$c"
  check "$c with an unknown option: usage error" 3 '' 'usage' -- "$c" --frobnicate x
done
check "create-key-file without a path" 3 '' '^usage:' -- create-key-file
check "rekey without --slot" 3 '' '^usage:' -- rekey

# rewrap: no PIN is ever taken; exit 0 all current, 2 failure, 3 usage or configuration.
dir=$(mktemp -d /tmp/p11kms-cli-XXXXXX)
trap 'rm -rf "$dir"' EXIT
head -c 32 /dev/urandom >"$dir/k" && chmod 600 "$dir/k"
cat >"$dir/c.json" <<EOF
{"log": {"level": "error"}, "providers": [
  {"name": "dev", "type": "local", "key_file": "$dir/k", "store": "$dir/t.db"}]}
EOF
check "rewrap takes no PIN" 3 '' '^usage:' -- rewrap --config "$dir/c.json" --pin 1234
check "rewrap --slot needs a value" 3 '' '^usage:' -- rewrap --config "$dir/c.json" --slot
check "rewrap of an unknown slot" 3 '' 'no slot "nope"' -- rewrap --config "$dir/c.json" --slot nope
check "rewrap with no token yet" 0 'slot [0-9]+ \(dev\): not initialized' '' -- \
  rewrap --config "$dir/c.json" --slot dev
check "rewrap with a missing configuration" 3 '' 'none.json.*cannot open' -- \
  rewrap --config "$dir/none.json"
check "create-key-file onto an existing file: a failure" 2 '' 'exists' -- create-key-file "$dir/k"
chmod 644 "$dir/k"
check "rewrap with a key file C_Initialize refuses" 3 '' 'too open' -- \
  rewrap --config "$dir/c.json"
# A configuration error is one line, whatever the command.
for c in "status" "rewrap" "rekey --slot dev" "backup --slot dev $dir/b.db" "verify-backup $dir/b.db" \
         "encrypt --slot dev $dir/k" "decrypt $dir/k"; do
  # shellcheck disable=SC2086
  "$tool" $c --config "$dir/none.json" >/dev/null 2>"$dir/err"; rc=$?
  if [ $rc = 3 ] && [ "$(wc -l <"$dir/err")" = 1 ]; then echo "ok - $c: a missing configuration is one line, exit 3"
  else echo "not ok - $c: a missing configuration (exit $rc)"; cat "$dir/err"; fails=$((fails + 1)); fi
done
[ $fails = 0 ] || { echo "$fails failed"; exit 1; }
