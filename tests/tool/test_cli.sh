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
[ $fails = 0 ] || { echo "$fails failed"; exit 1; }
