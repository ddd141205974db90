# SPDX-License-Identifier: Apache-2.0
# The p11kms command-line tool, through the real binary.
p11kms_script_test(test_tool_cli ${CMAKE_CURRENT_LIST_DIR}/test_cli.sh)
p11kms_script_test(test_tool_status ${CMAKE_CURRENT_LIST_DIR}/test_status.sh)
# p11kms encrypt / decrypt (docs/STREAM.md) on the local provider.
p11kms_script_test(test_tool_stream ${CMAKE_CURRENT_LIST_DIR}/test_stream.sh)
set_tests_properties(test_tool_stream PROPERTIES TIMEOUT 900)
# ... and against Google Cloud KMS in the emulator: rotation, a disabled version.
p11kms_script_test(test_tool_stream_gcp ${CMAKE_CURRENT_LIST_DIR}/test_stream_gcp.sh)
set_tests_properties(test_tool_stream_gcp PROPERTIES TIMEOUT 600)
# The audit log (docs/AUDIT.md): the module through pkcs11-tool and the tool.
p11kms_script_test(test_tool_audit ${CMAKE_CURRENT_LIST_DIR}/test_audit.sh)
set_tests_properties(test_tool_audit PROPERTIES TIMEOUT 300)
# Backups on the local provider (docs/BACKUP.md) and every --json result's schema.
p11kms_script_test(test_tool_backup_local ${CMAKE_CURRENT_LIST_DIR}/test_backup_local.sh)
set_tests_properties(test_tool_backup_local PROPERTIES TIMEOUT 300)
# ... and against Azure Key Vault in the emulator: a disabled version, the audit log's request ids.
p11kms_script_test(test_tool_stream_azure ${CMAKE_CURRENT_LIST_DIR}/test_stream_azure.sh)
set_tests_properties(test_tool_stream_azure PROPERTIES TIMEOUT 600)
