# SPDX-License-Identifier: Apache-2.0
# Corpus replay of the cloud providers' reply-parser fuzz target (the
# libFuzzer build lists it in tests/fuzz/CMakeLists.txt).
add_executable(replay_fuzz_provider_reply
  ${CMAKE_SOURCE_DIR}/tests/fuzz/fuzz_provider_reply.c
  ${CMAKE_SOURCE_DIR}/tests/fuzz/replay_main.c)
target_link_libraries(replay_fuzz_provider_reply PRIVATE p11kms_core)
add_test(NAME fuzz_replay_provider_reply
  COMMAND replay_fuzz_provider_reply ${CMAKE_SOURCE_DIR}/tests/fuzz/corpus/fuzz_provider_reply)
set_tests_properties(fuzz_replay_provider_reply PROPERTIES
  ENVIRONMENT "${P11KMS_TEST_ENV}" TIMEOUT 120)
