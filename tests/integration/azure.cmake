# SPDX-License-Identifier: Apache-2.0
# The Azure Key Vault / Managed HSM provider end to end against the KMS
# emulator (its Entra ID, IMDS and App Service endpoints included), with
# the Azure SDK for Python as the independent client.
p11kms_api_test(test_azure ${CMAKE_CURRENT_LIST_DIR}/test_azure.c
  ${CMAKE_CURRENT_LIST_DIR}/cloud_suite.c ${CMAKE_CURRENT_LIST_DIR}/emu.c)
target_link_libraries(test_azure PRIVATE PkgConfig::JANSSON)
set_tests_properties(test_azure PROPERTIES TIMEOUT 600)
# Standard mechanisms (RSA-OAEP, AES key wrap, AES-GCM) on typed Azure keys.
p11kms_api_test(test_azure_std ${CMAKE_CURRENT_LIST_DIR}/test_azure_std.c
  ${CMAKE_CURRENT_LIST_DIR}/oaep_suite.c ${CMAKE_CURRENT_LIST_DIR}/emu.c)
target_link_libraries(test_azure_std PRIVATE PkgConfig::JANSSON)
set_tests_properties(test_azure_std PROPERTIES TIMEOUT 600)
