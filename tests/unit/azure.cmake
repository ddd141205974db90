# SPDX-License-Identifier: Apache-2.0
# Azure provider pieces: Entra ID token flows, the bearer challenge, the
# error table and the blob format, over a fake transport.
p11kms_unit(test_azure_unit ${CMAKE_CURRENT_LIST_DIR}/test_azure.c)
set_tests_properties(test_azure_unit PROPERTIES TIMEOUT 120)
