# SPDX-License-Identifier: Apache-2.0
# The Debian package: built by scripts/package.sh (or dist/ reused when it
# is newer than every source file), unpacked into a scratch root with
# dpkg -x, then used from the unpacked files alone.
p11kms_script_test(package ${CMAKE_SOURCE_DIR}/tests/package/package.sh)
set_tests_properties(package PROPERTIES TIMEOUT 600 RUN_SERIAL FALSE)
