# SPDX-License-Identifier: Apache-2.0
# The benchmark still runs: bench/run.sh --quick drives libp11kms.so,
# SoftHSM2 and raw OpenSSL through every workload with short time boxes and
# fails only if a workload produced neither a number nor "n/a" (a failed
# call, a crash). No timing is asserted.
p11kms_script_test(bench_smoke ${CMAKE_SOURCE_DIR}/bench/run.sh --quick)
set_tests_properties(bench_smoke PROPERTIES LABELS bench TIMEOUT 600)
