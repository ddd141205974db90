# SPDX-License-Identifier: Apache-2.0
# The local provider's key rotation through the exported API: a token under
# key file A keeps working with key_file B and previous_key_files [A]; B
# encrypts.
p11kms_api_test(test_local_rotation ${CMAKE_CURRENT_LIST_DIR}/test_local_rotation.c)
target_link_libraries(test_local_rotation PRIVATE OpenSSL::Crypto)
add_dependencies(test_local_rotation p11kms-tool)
