#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Build p11kms. Usage: scripts/build.sh [release|asan] [target...]
# (default release, every target).
# release -> build/, asan -> build-asan/ (clang, AddressSanitizer + UBSan).
set -euo pipefail
cd "$(dirname "$0")/.."
kind=${1:-release}
shift || true
targets=()
for t in "$@"; do targets+=(--target "$t"); done
case "$kind" in
  release) dir=build; opts=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DP11KMS_WERROR=ON) ;;
  asan) dir=build-asan; opts=(-DCMAKE_BUILD_TYPE=Debug -DP11KMS_SANITIZE=ON
          -DP11KMS_WERROR=ON -DCMAKE_C_COMPILER=clang) ;;
  *) echo "usage: $0 [release|asan]" >&2; exit 2 ;;
esac
cmake -S . -B "$dir" "${opts[@]}" >/dev/null
cmake --build "$dir" -j"$(nproc)" "${targets[@]}" >/dev/null
echo "$dir"
