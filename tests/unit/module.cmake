# SPDX-License-Identifier: Apache-2.0
# module/ through its own interfaces: the mechanism table, the local AES
# mechanisms against known answers and the remote ones on a fake KMS port
# (test_mech.c); the PKCS #11 3.0 message AEAD with a fake counter
# reservation (test_aead.c; the name test_aead is the API-level test's).
p11kms_unit(test_mech ${CMAKE_CURRENT_LIST_DIR}/test_mech.c ${CMAKE_CURRENT_LIST_DIR}/unhex.c)
p11kms_unit(test_aead_unit ${CMAKE_CURRENT_LIST_DIR}/test_aead.c
  ${CMAKE_CURRENT_LIST_DIR}/unhex.c)
set_tests_properties(test_mech test_aead_unit PROPERTIES TIMEOUT 120)
# A session's kept cipher context (module/aes.c, cipher_keep), through the
# exported API, against OpenSSL.
p11kms_api_test(test_kept_ctx ${CMAKE_CURRENT_LIST_DIR}/test_kept_ctx.c)
target_link_libraries(test_kept_ctx PRIVATE OpenSSL::Crypto)
