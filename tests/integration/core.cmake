# SPDX-License-Identifier: Apache-2.0
p11kms_api_test(test_session ${CMAKE_CURRENT_LIST_DIR}/test_session.c)
p11kms_api_test(test_objects ${CMAKE_CURRENT_LIST_DIR}/test_objects.c)
p11kms_api_test(test_robust ${CMAKE_CURRENT_LIST_DIR}/test_robust.c)
p11kms_api_test(test_pin_race ${CMAKE_CURRENT_LIST_DIR}/test_pin_race.c)
p11kms_api_test(test_rekey ${CMAKE_CURRENT_LIST_DIR}/test_rekey.c)
set_tests_properties(test_rekey PROPERTIES TIMEOUT 900)
p11kms_api_test(test_mac ${CMAKE_CURRENT_LIST_DIR}/test_mac.c)
p11kms_api_test(test_aead ${CMAKE_CURRENT_LIST_DIR}/test_aead.c)
p11kms_api_test(test_kms ${CMAKE_CURRENT_LIST_DIR}/test_kms.c)
target_link_libraries(test_kms PRIVATE OpenSSL::Crypto)
p11kms_api_test(test_aws ${CMAKE_CURRENT_LIST_DIR}/test_aws.c
  ${CMAKE_CURRENT_LIST_DIR}/cloud_suite.c ${CMAKE_CURRENT_LIST_DIR}/emu.c)
target_link_libraries(test_aws PRIVATE PkgConfig::JANSSON)
set_tests_properties(test_aws PROPERTIES TIMEOUT 600)
p11kms_api_test(test_aws_std ${CMAKE_CURRENT_LIST_DIR}/test_aws_std.c
  ${CMAKE_CURRENT_LIST_DIR}/oaep_suite.c ${CMAKE_CURRENT_LIST_DIR}/emu.c)
target_link_libraries(test_aws_std PRIVATE PkgConfig::JANSSON)
set_tests_properties(test_aws_std PROPERTIES TIMEOUT 600)
