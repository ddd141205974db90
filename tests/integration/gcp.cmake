# SPDX-License-Identifier: Apache-2.0
# The Google Cloud KMS provider end to end against the KMS emulator
# (@google-cloud/kms from tests/kms-emulator/sdk-js for the interop proof).
p11kms_api_test(test_gcp ${CMAKE_CURRENT_LIST_DIR}/test_gcp.c
  ${CMAKE_CURRENT_LIST_DIR}/cloud_suite.c ${CMAKE_CURRENT_LIST_DIR}/emu.c)
target_link_libraries(test_gcp PRIVATE PkgConfig::JANSSON)
set_tests_properties(test_gcp PROPERTIES TIMEOUT 600)
p11kms_api_test(test_gcp_std ${CMAKE_CURRENT_LIST_DIR}/test_gcp_std.c ${CMAKE_CURRENT_LIST_DIR}/emu.c)
target_link_libraries(test_gcp_std PRIVATE PkgConfig::JANSSON)
set_tests_properties(test_gcp_std PROPERTIES TIMEOUT 600)
