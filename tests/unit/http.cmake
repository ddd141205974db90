# SPDX-License-Identifier: Apache-2.0
# providers/common: the HTTP client and the codecs.
p11kms_unit(test_http ${CMAKE_CURRENT_LIST_DIR}/test_http.c)
# Starts local Python HTTPS/HTTP servers; TLS handshakes under ASan are slow.
set_tests_properties(test_http PROPERTIES TIMEOUT 300)
p11kms_unit(test_codec ${CMAKE_CURRENT_LIST_DIR}/test_codec.c)

# The codec fuzz target's corpus replayed as a plain program, as
# fuzz_replay.cmake does for the others (that list is another area's file).
add_executable(replay_fuzz_codec ${CMAKE_SOURCE_DIR}/tests/fuzz/fuzz_codec.c
  ${CMAKE_SOURCE_DIR}/tests/fuzz/replay_main.c)
target_link_libraries(replay_fuzz_codec PRIVATE p11kms_core)
add_test(NAME fuzz_replay_codec
  COMMAND replay_fuzz_codec ${CMAKE_SOURCE_DIR}/tests/fuzz/corpus/fuzz_codec)
set_tests_properties(fuzz_replay_codec PROPERTIES
  ENVIRONMENT "${P11KMS_TEST_ENV}" TIMEOUT 120)
