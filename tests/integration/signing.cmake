# SPDX-License-Identifier: Apache-2.0
# KMS signing keys (docs/SIGNING.md).
p11kms_api_test(test_sign_local ${CMAKE_CURRENT_LIST_DIR}/test_sign_local.c
  ${CMAKE_CURRENT_LIST_DIR}/sign_suite.c)
target_link_libraries(test_sign_local PRIVATE OpenSSL::Crypto)
# The three clouds against the emulator: one program, the cloud its
# argument (p11kms_api_test's build, three registrations).
add_executable(test_sign_cloud ${CMAKE_CURRENT_LIST_DIR}/test_sign_cloud.c
  ${CMAKE_CURRENT_LIST_DIR}/sign_suite.c ${CMAKE_CURRENT_LIST_DIR}/emu.c
  ${CMAKE_SOURCE_DIR}/tests/integration/harness.c)
target_include_directories(test_sign_cloud PRIVATE ${CMAKE_SOURCE_DIR}/include
  ${P11KIT_INCLUDE_DIRS} ${CMAKE_SOURCE_DIR}/tests/integration)
target_link_libraries(test_sign_cloud PRIVATE ${CMOCKA_LIB} ${CMAKE_DL_LIBS} Threads::Threads
  PkgConfig::JANSSON OpenSSL::Crypto)
add_dependencies(test_sign_cloud p11kms)
foreach(cloud aws azure gcp)
  add_test(NAME test_sign_${cloud} COMMAND test_sign_cloud ${cloud})
  set_tests_properties(test_sign_${cloud} PROPERTIES ENVIRONMENT "${P11KMS_TEST_ENV}"
    SKIP_RETURN_CODE 77 TIMEOUT 600)
endforeach()
