# SPDX-License-Identifier: Apache-2.0
p11kms_api_test(test_session ${CMAKE_CURRENT_LIST_DIR}/test_session.c)
p11kms_api_test(test_objects ${CMAKE_CURRENT_LIST_DIR}/test_objects.c)
p11kms_api_test(test_robust ${CMAKE_CURRENT_LIST_DIR}/test_robust.c)
p11kms_api_test(test_mac ${CMAKE_CURRENT_LIST_DIR}/test_mac.c)
p11kms_api_test(test_aead ${CMAKE_CURRENT_LIST_DIR}/test_aead.c)
p11kms_api_test(test_kms ${CMAKE_CURRENT_LIST_DIR}/test_kms.c)
