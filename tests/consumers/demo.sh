#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The README's first command, scripts/demo.sh, runs to "demo OK", and a new
# user reads no bare warning: each of pkcs11-tool's expected probing
# warnings is shown with why it is expected.
set -euo pipefail
src=${P11KMS_SRC:-$(cd "$(dirname "$0")/../.." && pwd)}
work=$(mktemp -d /tmp/p11kms-demo-test.XXXXXX)
trap 'rm -rf "$work"' EXIT
rc=0
P11KMS_DEMO_DIR=$work/demo "$src/scripts/demo.sh" >"$work/out.txt" 2>&1 || rc=$?
cat "$work/out.txt"
fail() { echo "FAIL: $*" >&2; exit 1; }
[ $rc = 0 ] || fail "scripts/demo.sh exited $rc"
grep -qx 'demo OK' "$work/out.txt" || fail "no \"demo OK\""
! grep -n '^warning:' "$work/out.txt" || fail "the demo prints a warning without saying why"
grep -q '(expected: pkcs11-tool asks for the key value' "$work/out.txt" ||
  fail "the CKA_VALUE probe is not explained"
grep -q '(expected: pkcs11-tool asks every key for CKA_ALWAYS_AUTHENTICATE' "$work/out.txt" ||
  fail "the CKA_ALWAYS_AUTHENTICATE probe is not explained"
echo "demo test OK"
