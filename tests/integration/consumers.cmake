# SPDX-License-Identifier: Apache-2.0
# Real consumer programs against the module: pkcs11-tool (OpenSC), PyKCS11
# (with a SoftHSM2 cross-check), p11-kit and GnuTLS's p11tool through a
# p11-kit module registration, and Java 17 SunPKCS11. Each script makes its
# own scratch folder and configuration.
set(P11KMS_CONSUMERS_DIR ${CMAKE_CURRENT_LIST_DIR})
p11kms_script_test(consumer_pkcs11_tool ${P11KMS_CONSUMERS_DIR}/test_pkcs11_tool.sh)
p11kms_script_test(consumer_pykcs11 ${P11KMS_PYTHON} ${P11KMS_CONSUMERS_DIR}/test_pykcs11.py -v)
p11kms_script_test(consumer_p11kit ${P11KMS_CONSUMERS_DIR}/test_p11kit.sh)
p11kms_script_test(consumer_java ${P11KMS_CONSUMERS_DIR}/test_java.sh)
set_tests_properties(consumer_pkcs11_tool consumer_pykcs11 consumer_p11kit consumer_java
  PROPERTIES LABELS consumer TIMEOUT 300)
