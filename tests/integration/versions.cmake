# SPDX-License-Identifier: Apache-2.0
# The cloud providers' key versions and their ages against the KMS emulator
# over HTTPS, below the PKCS #11 layer (linked with the core library), and
# P11K_ERR_TLS after one handshake without a CA bundle.
p11kms_unit(test_provider_versions ${CMAKE_CURRENT_LIST_DIR}/test_provider_versions.c
  ${CMAKE_CURRENT_LIST_DIR}/emu.c)
target_include_directories(test_provider_versions PRIVATE ${CMAKE_CURRENT_LIST_DIR})
target_link_libraries(test_provider_versions PRIVATE PkgConfig::JANSSON)
set_tests_properties(test_provider_versions PROPERTIES TIMEOUT 600)

# A certificate the module cannot verify, through the exported API:
# C_Login's ulDeviceError is P11KMS_DEVERR_TLS after one handshake.
p11kms_api_test(test_tls ${CMAKE_CURRENT_LIST_DIR}/test_tls.c ${CMAKE_CURRENT_LIST_DIR}/emu.c)
target_link_libraries(test_tls PRIVATE PkgConfig::JANSSON)
set_tests_properties(test_tls PROPERTIES TIMEOUT 600)
