#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The whole test suite: install, build (warnings are errors), run every
# test with ctest, then again under AddressSanitizer + UBSan.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh --test
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
