# SPDX-License-Identifier: Apache-2.0
# AWS provider pieces: the SigV4 signer (official test suite) and the
# credential chain (fake transport and fake environment, plus the
# emulator over real HTTPS).
foreach(t test_sigv4 test_creds)
  p11kms_unit(${t} ${CMAKE_CURRENT_LIST_DIR}/${t}.c)
  set_tests_properties(${t} PROPERTIES TIMEOUT 120)
endforeach()

# The provider's standard mechanisms (remote_crypt, public_key, sign), error
# mapping and sealing-key choice, over a fake transport.
p11kms_unit(test_aws_provider ${CMAKE_CURRENT_LIST_DIR}/test_aws_provider.c)
set_tests_properties(test_aws_provider PROPERTIES TIMEOUT 120)

# Corpus replay of the AWS fuzz targets (tests/fuzz/fuzz_aws_*.c), built
# as plain programs with tests/fuzz/replay_main.c, like fuzz_replay.cmake.
# Their seeds are the test fixtures in tests/vectors/aws/. (The libFuzzer
# builds need the two names added to P11KMS_FUZZ_TARGETS in
# tests/fuzz/CMakeLists.txt and to scripts/fuzz.sh, owned elsewhere.)
foreach(t ini sts)
  add_executable(replay_fuzz_aws_${t} ${CMAKE_SOURCE_DIR}/tests/fuzz/fuzz_aws_${t}.c
    ${CMAKE_SOURCE_DIR}/tests/fuzz/replay_main.c)
  target_link_libraries(replay_fuzz_aws_${t} PRIVATE p11kms_core)
  add_test(NAME fuzz_replay_aws_${t}
    COMMAND replay_fuzz_aws_${t} ${CMAKE_SOURCE_DIR}/tests/vectors/aws/${t})
  set_tests_properties(fuzz_replay_aws_${t} PROPERTIES
    ENVIRONMENT "${P11KMS_TEST_ENV}" TIMEOUT 120)
endforeach()
