#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Build p11kms. Usage: scripts/build.sh [release|asan|tsan] [target...]
# (default release, every target).
# release -> build/, asan -> build-asan/ (clang, AddressSanitizer + UBSan),
# tsan -> build-tsan/ (gcc, ThreadSanitizer: gcc links libtsan into the
# shared module too, which clang does not; run the threaded tests there,
# e.g. ctest --test-dir build-tsan -R 'test_fork|test_token_threads|test_robust').
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
  tsan) dir=build-tsan; tsan="-fsanitize=thread -fno-omit-frame-pointer"
        opts=(-DCMAKE_BUILD_TYPE=RelWithDebInfo -DP11KMS_WERROR=ON -DCMAKE_C_COMPILER=gcc
          "-DCMAKE_C_FLAGS=$tsan" "-DCMAKE_EXE_LINKER_FLAGS=$tsan"
          "-DCMAKE_SHARED_LINKER_FLAGS=$tsan") ;;
  *) echo "usage: $0 [release|asan|tsan]" >&2; exit 2 ;;
esac
cmake -S . -B "$dir" "${opts[@]}" >/dev/null
cmake --build "$dir" -j"$(nproc)" "${targets[@]}" >/dev/null
echo "$dir"
