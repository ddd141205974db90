#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The main job, end to end on the embedded `local` provider: install, build,
# make a key file and a configuration in a scratch folder, then use
# pkcs11-tool (OpenSC) against libp11kms.so to initialize the token, log
# in, generate a persistent AES-256 key, encrypt and decrypt a file, and
# show the key again from a new process.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/deps.sh --demo
build=$(scripts/build.sh release p11kms p11kms-tool)
MODULE=$PWD/$build/libp11kms.so
TOOL=$PWD/$build/p11kms
work=${P11KMS_DEMO_DIR:-$(mktemp -d /tmp/p11kms-demo.XXXXXX)}
mkdir -p "$work"
echo "== scratch folder: $work"

"$TOOL" create-key-file "$work/master.key"
cat >"$work/p11kms.json" <<JSON
{
  "log": { "level": "warn" },
  "providers": [
    { "name": "demo", "type": "local",
      "key_file": "$work/master.key", "store": "$work/demo.db",
      "login": "required" }
  ]
}
JSON
export P11KMS_CONFIG=$work/p11kms.json
# pkcs11-tool asks for attributes a key does not show and prints a warning
# for each answer it did not want; two of them are expected here, so they
# are shown with what they mean (anything else it prints is passed on).
explain() {
  sed -u \
    -e 's/^warning: PKCS11 function C_GetAttributeValue(VALUE) failed: rv = CKR_ATTRIBUTE_SENSITIVE.*/   (expected: pkcs11-tool asks for the key value, CKA_VALUE; a sensitive key never reveals it, so the module answers CKR_ATTRIBUTE_SENSITIVE)/' \
    -e 's/^warning: PKCS11 function C_GetAttributeValue(ALWAYS_AUTHENTICATE) failed: rv = CKR_ATTRIBUTE_TYPE_INVALID.*/   (expected: pkcs11-tool asks every key for CKA_ALWAYS_AUTHENTICATE, a private-key attribute; a secret key has none, so the module answers CKR_ATTRIBUTE_TYPE_INVALID)/' \
    -e '/^   (expected: /{n;/^$/d;}'
}
p11() { stdbuf -oL pkcs11-tool --module "$MODULE" "$@" 2>&1 | explain; }
SO_PIN=87654321 PIN=123456

echo "== slots"; p11 --list-slots
echo "== initialize the token"; p11 --init-token --label demo --so-pin $SO_PIN
p11 --login --login-type so --so-pin $SO_PIN --init-pin --pin $PIN
echo "== generate a persistent AES-256 key"
p11 --login --pin $PIN --keygen --key-type AES:32 --label tde-master --id 01
head -c 100000 /dev/urandom >"$work/plain.bin"
IV=000102030405060708090a0b0c0d0e0f
echo "== encrypt and decrypt a file (AES-CBC-PAD)"
p11 --login --pin $PIN --encrypt --id 01 -m AES-CBC-PAD --iv $IV \
  -i "$work/plain.bin" -o "$work/cipher.bin"
p11 --login --pin $PIN --decrypt --id 01 -m AES-CBC-PAD --iv $IV \
  -i "$work/cipher.bin" -o "$work/roundtrip.bin"
cmp "$work/plain.bin" "$work/roundtrip.bin"
! cmp -s "$work/plain.bin" "$work/cipher.bin"
echo "   $(stat -c %s "$work/plain.bin") bytes encrypted and decrypted back identically"
echo "== a new process still sees the key"
p11 --login --pin $PIN --list-objects --type secrkey
echo "== the store on disk holds no key in the clear (mode $(stat -c %a "$work/demo.db"))"
"$TOOL" status
echo "demo OK"
