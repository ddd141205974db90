# SPDX-License-Identifier: Apache-2.0
# KMS signing keys (docs/SIGNING.md).
p11kms_api_test(test_sign_local ${CMAKE_CURRENT_LIST_DIR}/test_sign_local.c
  ${CMAKE_CURRENT_LIST_DIR}/sign_suite.c)
target_link_libraries(test_sign_local PRIVATE OpenSSL::Crypto)
