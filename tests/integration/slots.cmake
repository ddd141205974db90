# SPDX-License-Identifier: Apache-2.0
# The lock rule of slots/slots.h through the exported API (threads).
p11kms_api_test(test_token_threads ${CMAKE_CURRENT_LIST_DIR}/test_token_threads.c)
target_link_libraries(test_token_threads PRIVATE PkgConfig::SQLITE)
set_tests_properties(test_token_threads PROPERTIES TIMEOUT 300)
