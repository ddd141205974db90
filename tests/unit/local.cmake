# SPDX-License-Identifier: Apache-2.0
# The local provider: both key file formats, their checks, and rotation
# through "previous_key_files" (key_file seals, every one unseals).
p11kms_unit(test_local_provider ${CMAKE_CURRENT_LIST_DIR}/test_local_provider.c)
target_link_libraries(test_local_provider PRIVATE PkgConfig::JANSSON)
