# SPDX-License-Identifier: Apache-2.0
# The tree's shape: the folder-level include graph keeps the layer rule
# of docs/ARCHITECTURE.md (tools, module -> slots -> providers -> common).
p11kms_script_test(check_layers ${CMAKE_SOURCE_DIR}/scripts/check-layers.sh)
