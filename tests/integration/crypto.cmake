# SPDX-License-Identifier: Apache-2.0
p11kms_api_test(test_crypto ${CMAKE_CURRENT_LIST_DIR}/test_crypto.c)
# libcrypto only as an independent oracle (CBC-PAD, key wrap pad, check values).
target_link_libraries(test_crypto PRIVATE OpenSSL::Crypto)
