# SPDX-License-Identifier: Apache-2.0
# The KMS emulator's own tests: wire protocols proven by the official SDKs.
if(NOT P11KMS_SANITIZE) # pure Python: nothing for the sanitizers to see
  p11kms_script_test(kms_emulator ${CMAKE_CURRENT_LIST_DIR}/run-tests.sh)
  set_tests_properties(kms_emulator PROPERTIES TIMEOUT 600)
endif()
