#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The whole test suite: install, build (warnings are errors), run every
# test with ctest, then again under AddressSanitizer + UBSan.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh --test
# The npm SDKs the emulator and provider tests use: installed once here, so
# tests running in parallel do not race to install them.
if [ ! -d tests/kms-emulator/sdk-js/node_modules ] && command -v npm >/dev/null; then
  (cd tests/kms-emulator/sdk-js && npm ci --no-audit --no-fund --loglevel=error) ||
    echo "p11kms: npm ci failed; the npm SDK proofs will say so" >&2
fi
status=0
for kind in release asan; do
  dir=$(scripts/build.sh "$kind")
  echo "== tests ($kind build)"
  if [ "$kind" = asan ]; then
    export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1:detect_odr_violation=0
    export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
  fi
  ctest --test-dir "$dir" --output-on-failure -j2 --timeout 900 || status=1
done
exit $status
