# SPDX-License-Identifier: Apache-2.0
# The attacks of issue 15, one test each (docs/SECURITY.md).
p11kms_api_test(test_security ${CMAKE_CURRENT_LIST_DIR}/test_security.c)
