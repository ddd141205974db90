# SPDX-License-Identifier: Apache-2.0
# p11kms backup / verify-backup / restore through the real binary, the
# token through the exported API, against the KMS emulator (docs/BACKUP.md).
p11kms_api_test(test_backup ${CMAKE_CURRENT_LIST_DIR}/test_backup.c ${CMAKE_CURRENT_LIST_DIR}/emu.c)
target_link_libraries(test_backup PRIVATE PkgConfig::JANSSON)
add_dependencies(test_backup p11kms-tool)
set_tests_properties(test_backup PROPERTIES TIMEOUT 600)
