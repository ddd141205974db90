#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# p11kms encrypt / decrypt against Google Cloud KMS as the KMS emulator
# serves it (tests/kms-emulator), through the real tool: a file made
# before a rotation still decrypts after it; with its key version
# disabled, decrypt refuses and names that version; re-enabled, it opens.
set -uo pipefail
. "$(dirname "$0")/stream_lib.sh"
src=${P11KMS_SRC:?P11KMS_SRC is set by ctest}
py=/usr/bin/python3
scratch=$(mktemp -d /tmp/p11kms-stream-gcp-XXXXXX)
emu_pid=
cleanup() { [ -n "$emu_pid" ] && kill "$emu_pid" && wait "$emu_pid" 2>/dev/null; rm -rf "$scratch"; }
trap cleanup EXIT
cd "$scratch" || exit 1
export HOME=$scratch   # no gcloud files of the user's
unset GOOGLE_APPLICATION_CREDENTIALS CLOUDSDK_CONFIG GCE_METADATA_HOST

$py "$src/tests/kms-emulator/kmsemu.py" serve --state-dir "$scratch" --quiet >emu.log 2>&1 &
emu_pid=$!
for _ in $(seq 300); do [ -s emulator.json ] && break; sleep 0.1; done
[ -s emulator.json ] || { echo "the emulator did not start"; cat emu.log; exit 1; }
field() { $py -c "import json,sys; d=json.load(open('emulator.json')); print(eval('d' + sys.argv[1]))" "$1"; }
emuctl() { $py "$src/tests/integration/emuctl_gcp.py" "$scratch" "$@" >/dev/null; }
key=$(field '["gcp"]["keys"]["symmetric"]')
cat >c.json <<EOF
{"log": {"level": "info", "destination": "$scratch/module.log"},
 "providers": [{"name": "gcp-prod", "type": "gcp", "endpoint": "$(field '["gcp"]["endpoint_url"]')",
   "ca_file": "$(field '["ca_bundle"]')", "credentials_file": "$(field '["gcp"]["service_account_file"]')",
   "store": "$scratch/t.db", "seal_with": "$key"}]}
EOF

head -c 3000000 /dev/urandom >data; : >empty
round_trip "round trip, 3 segments" c.json gcp-prod data
round_trip "round trip, 0 bytes" c.json gcp-prod empty
round_trip "round trip, many small segments" c.json gcp-prod data --segment-size 65536

"$tool" encrypt --config c.json --slot gcp-prod data v1.enc || exit 1
grep -aq "$key/cryptoKeyVersions/1" v1.enc && ok "the header names version 1" || not_ok "no version 1 in the header"
emuctl rotate "$key"
"$tool" encrypt --config c.json --slot gcp-prod data v2.enc || exit 1
grep -aq "$key/cryptoKeyVersions/2" v2.enc && ok "after rotation, new files name version 2" ||
  not_ok "no version 2 in the new header"
"$tool" decrypt --config c.json v1.enc | cmp -s - data && ok "after rotation, the old file decrypts" ||
  not_ok "the old file does not decrypt after rotation"

emuctl disable "$key/cryptoKeyVersions/1"
refused "version 1 disabled: the old file is refused, naming version 1" \
  "provider \"gcp-prod\" key .*/sym version .*/sym/cryptoKeyVersions/1 is disabled.*needs that version enabled" \
  c.json v1.enc
"$tool" decrypt --config c.json v1.enc >/dev/null 2>&1; rc=$?
[ $rc = 2 ] && ok "a KMS refusal exits 2" || not_ok "a KMS refusal exits $rc"
"$tool" decrypt --config c.json v2.enc | cmp -s - data && ok "version 1 disabled: the new file decrypts" ||
  not_ok "the new file does not decrypt"
emuctl enable "$key/cryptoKeyVersions/1"
"$tool" decrypt --config c.json v1.enc | cmp -s - data && ok "version 1 re-enabled: the old file decrypts" ||
  not_ok "the old file does not decrypt after re-enabling"

# The whole key disabled: encrypt cannot wrap, and says so.
emuctl disable "$key"
"$tool" encrypt --config c.json --slot gcp-prod data off.enc 2>e.err; rc=$?
[ $rc = 2 ] && [ ! -e off.enc ] && [ "$(wc -l <e.err)" = 1 ] && grep -q "cannot wrap the data key" e.err &&
  ok "encrypt under a disabled primary version: refused, nothing written" ||
  { not_ok "encrypt under a disabled key (exit $rc)"; cat e.err; }
emuctl enable "$key"

# Credentials revoked: access denied, naming the version.
emuctl revoke "$(field '["gcp"]["service_account_email"]')"
refused "credentials revoked: refused, naming the version" "version .*cryptoKeyVersions/2 is not accessible.*needs that version" \
  c.json v2.enc
emuctl restore "$(field '["gcp"]["service_account_email"]')"

# A file's header edited to name another key version: the KMS opens the
# data key (the version is in its own blob) but the first segment refuses.
/usr/bin/python3 - <<'EOF'
b = bytearray(open("v2.enc", "rb").read())
i = b.find(b"cryptoKeyVersions/2")
b[i + len("cryptoKeyVersions/")] = ord("1")
open("edited.enc", "wb").write(b)
EOF
refused "the header's key version edited" "first segment does not authenticate" c.json edited.enc

# The emulator unreachable: a clear refusal, not a hang.
kill "$emu_pid"; wait "$emu_pid" 2>/dev/null; emu_pid=
refused "the KMS unreachable" "cannot be reached" c.json v1.enc

echo "$passes passed, $fails failed"
[ $fails = 0 ]
