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
