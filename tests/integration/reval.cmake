# SPDX-License-Identifier: Apache-2.0
# Revalidation in the background and fork safety (docs/REVALIDATION.md).
p11kms_api_test(test_reval ${CMAKE_CURRENT_LIST_DIR}/test_reval.c ${CMAKE_CURRENT_LIST_DIR}/proc.c
  ${CMAKE_CURRENT_LIST_DIR}/emu.c)
target_link_libraries(test_reval PRIVATE PkgConfig::JANSSON)
set_tests_properties(test_reval PROPERTIES TIMEOUT 300)
p11kms_api_test(test_fork ${CMAKE_CURRENT_LIST_DIR}/test_fork.c ${CMAKE_CURRENT_LIST_DIR}/proc.c)
set_tests_properties(test_fork PROPERTIES TIMEOUT 900)
