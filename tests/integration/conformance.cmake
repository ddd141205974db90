# SPDX-License-Identifier: Apache-2.0
# The spec's rules through the exported API (docs/CONFORMANCE.md), and the
# C_WrapKey race of issue 14.
p11kms_api_test(test_wrap_race ${CMAKE_CURRENT_LIST_DIR}/test_wrap_race.c)
set_tests_properties(test_wrap_race PROPERTIES TIMEOUT 120)
p11kms_api_test(test_precedence ${CMAKE_CURRENT_LIST_DIR}/test_precedence.c)
p11kms_api_test(test_conformance ${CMAKE_CURRENT_LIST_DIR}/test_conformance.c)
# libcrypto only as an independent oracle (SHA-256, AES-GCM with long IVs).
target_link_libraries(test_conformance PRIVATE OpenSSL::Crypto)
# Login state and objects: logout, and the two login modes (docs/OBJECTS.md).
p11kms_api_test(test_login ${CMAKE_CURRENT_LIST_DIR}/test_login.c)
# The AES-GCM bounds docs/OBJECTS.md and docs/CONFORMANCE.md state, tried
# through the API (reads the docs from P11KMS_SRC).
p11kms_api_test(test_doc_gcm ${CMAKE_CURRENT_LIST_DIR}/test_doc_gcm.c)
