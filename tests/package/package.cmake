# SPDX-License-Identifier: Apache-2.0
# The Debian package. Both tests use dist/ (package: rebuilt unless newer
# than every source file; readme: rebuilt by the README's own Install
# block), so they hold one lock.
p11kms_script_test(package ${CMAKE_SOURCE_DIR}/tests/package/package.sh)
p11kms_script_test(package-readme ${CMAKE_SOURCE_DIR}/tests/package/readme.sh)
set_tests_properties(package package-readme PROPERTIES TIMEOUT 600
  RESOURCE_LOCK p11kms-dist)
