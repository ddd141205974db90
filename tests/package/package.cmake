# SPDX-License-Identifier: Apache-2.0
# The Debian package. Both tests use dist/, made by scripts/package.sh,
# which keeps a .deb newer than every source file: whichever runs first
# builds it, the other reuses it; they hold one lock. The package is built
# by dpkg-buildpackage from the sources, whatever this build tree is, so
# the tests are registered in the unsanitized trees only: the ASan tree
# would test the same .deb again.
if(NOT P11KMS_SANITIZE)
  p11kms_script_test(package ${CMAKE_SOURCE_DIR}/tests/package/package.sh)
  p11kms_script_test(package-readme ${CMAKE_SOURCE_DIR}/tests/package/readme.sh)
  set_tests_properties(package package-readme PROPERTIES TIMEOUT 900
    RESOURCE_LOCK p11kms-dist)
endif()
