# SPDX-License-Identifier: Apache-2.0
# Real consumer programs against the module: pkcs11-tool (OpenSC), PyKCS11
# (with a SoftHSM2 cross-check), p11-kit and GnuTLS's p11tool through a
# p11-kit module registration, Java 17 SunPKCS11 and NSS (modutil,
# symkeyutil), the last two in both login modes. Each script makes its
# own scratch folder and configuration.
set(P11KMS_CONSUMERS_DIR ${CMAKE_CURRENT_LIST_DIR})
p11kms_script_test(consumer_pkcs11_tool ${P11KMS_CONSUMERS_DIR}/test_pkcs11_tool.sh)
p11kms_script_test(consumer_pykcs11 ${P11KMS_PYTHON} ${P11KMS_CONSUMERS_DIR}/test_pykcs11.py -v)
p11kms_script_test(consumer_p11kit ${P11KMS_CONSUMERS_DIR}/test_p11kit.sh)
p11kms_script_test(consumer_java ${P11KMS_CONSUMERS_DIR}/test_java.sh)
# login=optional: SunPKCS11 and NSS never log in (CKF_LOGIN_REQUIRED is clear).
p11kms_script_test(consumer_java_optional ${P11KMS_CONSUMERS_DIR}/test_java.sh optional)
p11kms_script_test(consumer_nss ${P11KMS_CONSUMERS_DIR}/test_nss.sh)
p11kms_script_test(consumer_nss_optional ${P11KMS_CONSUMERS_DIR}/test_nss.sh optional)
# What those consumers ran into, through the exported API: Java's v2.30
# CK_GCM_PARAMS, probing that logs nothing at info, the envelope's listing.
p11kms_api_test(test_consumer_friction ${P11KMS_CONSUMERS_DIR}/test_consumer_friction.c)
set_tests_properties(consumer_pkcs11_tool consumer_pykcs11 consumer_p11kit consumer_java
  consumer_java_optional consumer_nss consumer_nss_optional
  PROPERTIES LABELS consumer TIMEOUT 300)
