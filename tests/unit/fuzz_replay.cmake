# SPDX-License-Identifier: Apache-2.0
# Corpus replay: each fuzz target's source built as a plain program
# (tests/fuzz/replay_main.c feeds it every file of its seed corpus), so
# the normal suite (gcc release, clang ASan) runs the saved inputs without
# libFuzzer. The fuzzing itself is scripts/fuzz.sh.
set(P11KMS_FUZZ_DIR ${CMAKE_SOURCE_DIR}/tests/fuzz)
foreach(t config jsonpos record local_blob store audit)
  add_executable(replay_fuzz_${t} ${P11KMS_FUZZ_DIR}/fuzz_${t}.c
    ${P11KMS_FUZZ_DIR}/replay_main.c)
  target_link_libraries(replay_fuzz_${t} PRIVATE p11kms_core)
  add_test(NAME fuzz_replay_${t}
    COMMAND replay_fuzz_${t} ${P11KMS_FUZZ_DIR}/corpus/fuzz_${t})
  set_tests_properties(fuzz_replay_${t} PROPERTIES
    ENVIRONMENT "${P11KMS_TEST_ENV}" TIMEOUT 120)
endforeach()

# p11kms encrypt/decrypt's parser (tools/stream.c is the tool's, not the
# core's); seeds from tests/fuzz/gen_stream_seeds.py.
add_executable(replay_fuzz_stream ${P11KMS_FUZZ_DIR}/fuzz_stream.c
  ${CMAKE_SOURCE_DIR}/tools/stream.c ${CMAKE_SOURCE_DIR}/tools/tool.c
  ${P11KMS_FUZZ_DIR}/replay_main.c)
target_link_libraries(replay_fuzz_stream PRIVATE p11kms_core)
add_test(NAME fuzz_replay_stream
  COMMAND replay_fuzz_stream ${P11KMS_FUZZ_DIR}/corpus/fuzz_stream)
set_tests_properties(fuzz_replay_stream PROPERTIES
  ENVIRONMENT "${P11KMS_TEST_ENV}" TIMEOUT 120)
# The API-sequence target drives the module through its function list, on
# tokens of its own (tests/fuzz/api_env.h). Strict: a finding such as
# CKR_GENERAL_ERROR fails the replay, so a fixed finding stays fixed (open
# ones wait in tests/fuzz/crashes/fuzz_api/).
add_executable(replay_fuzz_api ${P11KMS_FUZZ_DIR}/fuzz_api.c
  ${P11KMS_FUZZ_DIR}/api_args.c ${P11KMS_FUZZ_DIR}/api_env.c
  ${P11KMS_FUZZ_DIR}/replay_main.c)
target_link_libraries(replay_fuzz_api PRIVATE p11kms_core)
add_test(NAME fuzz_replay_api
  COMMAND replay_fuzz_api ${P11KMS_FUZZ_DIR}/corpus/fuzz_api)
set_tests_properties(fuzz_replay_api PROPERTIES
  ENVIRONMENT "${P11KMS_TEST_ENV};P11KMS_APIFUZZ_STRICT=1" TIMEOUT 300)
