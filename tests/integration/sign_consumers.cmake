# SPDX-License-Identifier: Apache-2.0
# KMS signing keys (docs/SIGNING.md) through real consumers on the local
# provider: OpenSSL through libp11's engine (dgst, req -x509, s_server with
# TLS 1.3 and 1.2), pkcs11-tool --sign/--verify checked by openssl, Java 17
# SunPKCS11's KeyStore and Signature verified by Java's default providers.
set(P11KMS_SIGN_CONSUMERS ${CMAKE_CURRENT_LIST_DIR}/test_sign_consumers.sh)
foreach(part openssl pkcs11-tool java)
  p11kms_script_test(consumer_sign_${part} ${P11KMS_SIGN_CONSUMERS} ${part})
endforeach()
set_tests_properties(consumer_sign_openssl consumer_sign_pkcs11-tool consumer_sign_java
  PROPERTIES LABELS consumer TIMEOUT 300)
