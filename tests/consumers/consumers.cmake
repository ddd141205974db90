# SPDX-License-Identifier: Apache-2.0
# Each consumer guide (docs/consumers/*.md) run as typed by recipe.sh, and
# the README's first command, scripts/demo.sh.
set(P11KMS_RECIPES_DIR ${CMAKE_CURRENT_LIST_DIR})
foreach(guide pkcs11-tool p11-kit gnutls java nss python tde signing)
  p11kms_script_test(recipe_${guide} ${P11KMS_RECIPES_DIR}/recipe.sh ${guide})
  set_tests_properties(recipe_${guide} PROPERTIES LABELS consumer TIMEOUT 300)
endforeach()
# libp11's engine with a KMS RSA key: on the emulator's Azure vault.
p11kms_script_test(recipe_openssl ${P11KMS_RECIPES_DIR}/recipe.sh openssl --emulator)
set_tests_properties(recipe_openssl PROPERTIES LABELS consumer TIMEOUT 300)
# It builds the release tree itself (scripts/build.sh release), up to date
# after scripts/test.sh's first build.
p11kms_script_test(demo ${P11KMS_RECIPES_DIR}/demo.sh)
set_tests_properties(demo PROPERTIES TIMEOUT 900)
