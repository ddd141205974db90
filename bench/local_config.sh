# SPDX-License-Identifier: Apache-2.0
# Sourced by the bench scripts. local_config NAME KEYFILE STORE: the
# configuration of one p11kms token on the local provider (login
# required, errors only in the log), on stdout.
local_config() {
  cat <<JSON
{
  "log": { "level": "error" },
  "providers": [
    { "name": "$1", "type": "local", "key_file": "$2",
      "store": "$3", "login": "required" }
  ]
}
JSON
}
