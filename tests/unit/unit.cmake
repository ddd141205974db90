# SPDX-License-Identifier: Apache-2.0
# cmocka unit tests, one per source file (tests/unit/test_<file>.c).
foreach(t test_common test_secmem test_jsonpos test_config test_object
    test_store)
  p11kms_unit(${t} ${CMAKE_CURRENT_LIST_DIR}/${t}.c)
  set_tests_properties(${t} PROPERTIES TIMEOUT 300)
endforeach()
# The token model (slots/token.c, pin.c, seal.c, records.c) with a fake
# provider and a temporary store.
p11kms_unit(test_token ${CMAKE_CURRENT_LIST_DIR}/test_token.c)
set_tests_properties(test_token PROPERTIES TIMEOUT 300)
