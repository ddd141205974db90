# SPDX-License-Identifier: Apache-2.0
# The key lifecycle end to end (issue 12): rotation and reseal by login,
# revalidation and `p11kms rewrap`, the rotation-age warning, a token sealed
# under two clouds, the local provider's key file rotated and its seal moved
# to another provider. Against the KMS emulator, one per group.
p11kms_api_test(test_lifecycle ${CMAKE_CURRENT_LIST_DIR}/test_lifecycle.c
  ${CMAKE_CURRENT_LIST_DIR}/emu.c)
target_link_libraries(test_lifecycle PRIVATE PkgConfig::JANSSON)
add_dependencies(test_lifecycle p11kms-tool)
set_tests_properties(test_lifecycle PROPERTIES TIMEOUT 900)
# `test_lifecycle reseal`: a reseal that cannot happen now writes nothing
# and says so (CKR_DEVICE_ERROR from the operator's rewrap); the vendor
# key-version attribute follows another process's reseal.
add_test(NAME test_lifecycle_reseal COMMAND test_lifecycle reseal)
set_tests_properties(test_lifecycle_reseal PROPERTIES ENVIRONMENT "${P11KMS_TEST_ENV}"
  SKIP_RETURN_CODE 77 TIMEOUT 600)
