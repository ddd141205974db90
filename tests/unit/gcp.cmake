# SPDX-License-Identifier: Apache-2.0
# Google Cloud KMS provider pieces on a fake transport: CRC32C, the RS256
# JWT assertion, the token cache and sources, errors, reply integrity.
p11kms_unit(test_gcp_unit ${CMAKE_CURRENT_LIST_DIR}/test_gcp.c)
target_link_libraries(test_gcp_unit PRIVATE OpenSSL::Crypto PkgConfig::JANSSON)
set_tests_properties(test_gcp_unit PROPERTIES TIMEOUT 120)
