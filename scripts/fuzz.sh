#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Build the libFuzzer targets (clang, ASan + UBSan) into build-fuzz/ and
# run each for N seconds (default 30), starting from its seed corpus in
# tests/fuzz/corpus/<target>/ (tests/vectors/aws/<ini|sts>/ for
# fuzz_aws_*). New inputs go to build-fuzz/corpus/<target>/ (the seeds
# are not modified); a crash is saved in
# build-fuzz/crashes/<target>/ -- copy it to tests/fuzz/crashes/ to keep it.
# fuzz_api (sequences of PKCS#11 calls, docs/FUZZING.md) runs with
# libFuzzer's -entropic_scale_per_exec_time=1: its inputs that run scrypt
# or restart the module take ~50 times longer than the rest.
#
# Usage: scripts/fuzz.sh [seconds] [target...]
#   P11KMS_FUZZ_JOBS=N        run N targets at a time (default 1)
#   P11KMS_FUZZ_KEEP_GOING=1  do not stop at the first crash or timeout
#                             (libFuzzer -fork=1 -ignore_crashes=1 ...):
#                             every finding is saved, the run goes on
#   P11KMS_FUZZ_ARGS="..."    more libFuzzer options, for every target
set -euo pipefail
cd "$(dirname "$0")/.."
secs=${1:-30}
shift || true
case "$secs" in ''|*[!0-9]*) echo "usage: $0 [seconds] [target...]" >&2; exit 2 ;; esac
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(fuzz_config fuzz_jsonpos fuzz_record
  fuzz_local_blob fuzz_store fuzz_codec fuzz_aws_ini fuzz_aws_sts fuzz_provider_reply fuzz_stream
  fuzz_audit
  fuzz_api)

dir=build-fuzz
cmake -S . -B "$dir" -DCMAKE_C_COMPILER=clang -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DP11KMS_FUZZ=ON -DBUILD_TESTING=OFF >/dev/null
cmake --build "$dir" -j"$(nproc)" --target "${targets[@]}" >/dev/null

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1:detect_odr_violation=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

run_one() {
  local t=$1 work="$dir/corpus/$1" crashes="$dir/crashes/$1"
  mkdir -p "$work" "$crashes"
  local log="$dir/$t.log"
  # -max_len: the store seeds are whole database files.
  local maxlen=4096 extra=()
  [ "$t" = fuzz_store ] && maxlen=65536
  [ "$t" = fuzz_api ] && extra+=(-entropic_scale_per_exec_time=1)
  [ "${P11KMS_FUZZ_KEEP_GOING:-0}" = 1 ] &&
    extra+=(-fork=1 -ignore_crashes=1 -ignore_timeouts=1 -ignore_ooms=1)
  # shellcheck disable=SC2206 # split on purpose: several options
  [ -n "${P11KMS_FUZZ_ARGS:-}" ] && extra+=(${P11KMS_FUZZ_ARGS})
  # The seeds: tests/fuzz/corpus/<target>/, except the AWS parsers, whose
  # seeds are the test fixtures in tests/vectors/aws/. A target without a
  # seed folder is an error, not a run of zero inputs.
  local seeds="tests/fuzz/corpus/$t"
  case "$t" in fuzz_aws_*) seeds="tests/vectors/aws/${t#fuzz_aws_}" ;; esac
  if [ ! -d "$seeds" ] || [ -z "$(ls -A "$seeds")" ]; then
    echo "$t: FAILED -- no seed corpus in $seeds" >&2
    return 1
  fi
  local rc=0
  "$dir/tests/fuzz/$t" "$work" "$seeds" \
    -max_total_time="$secs" -timeout=5 -rss_limit_mb=2048 \
    -max_len="$maxlen" -print_final_stats=1 "${extra[@]}" \
    -artifact_prefix="$crashes/" >"$log" 2>&1 || rc=$?
  local execs rate found
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  # fork mode prints no final stats: take the last status line
  [ -n "$execs" ] || execs=$(grep -o '^#[0-9]*' "$log" | tail -1 | tr -d '#')
  [ -n "$rate" ] || rate=$(grep -oE 'exec/s:? [0-9]+' "$log" | tail -1 | grep -oE '[0-9]+$')
  found=$(find "$crashes" -type f -newer "$stamp" | wc -l)
  echo "$t: ${execs:-?} runs in ${secs}s (${rate:-?} exec/s), $found new finding(s)"
  if [ "$rc" -ne 0 ] || [ "$found" -ne 0 ]; then
    echo "$t: FAILED -- see $log and $crashes/" >&2
    grep -m3 -E 'ERROR: |runtime error|fuzz check failed' "$log" >&2 || true
    return 1
  fi
}

stamp="$dir/.fuzz-start"
touch "$stamp"
status=0
jobs=${P11KMS_FUZZ_JOBS:-1}
if [ "$jobs" -le 1 ]; then
  for t in "${targets[@]}"; do run_one "$t" || status=1; done
else
  pids=()
  for t in "${targets[@]}"; do
    run_one "$t" & pids+=($!)
    while [ "$(jobs -rp | wc -l)" -ge "$jobs" ]; do sleep 1; done
  done
  for p in "${pids[@]}"; do wait "$p" || status=1; done
fi
exit $status
