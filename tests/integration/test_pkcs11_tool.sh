#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# pkcs11-tool (OpenSC), a real consumer, against libp11kms.so on the `local`
# provider: slots, token and PIN initialization, login, AES-256 and
# generic-secret key generation, AES-CBC-PAD (and AES-GCM where this
# pkcs11-tool can pass GCM parameters) checked byte for byte against
# openssl, objects seen from new processes, key wrap/unwrap (RFC 3394 and
# RFC 5649) checked against openssl, data objects written and read back,
# key wrap under a KMS key object of type "aes" (run by the provider),
# deletion, PIN change and wrong PINs; SHA-256 digest and HMAC-SHA256 against
# sha256sum/openssl when the module lists those mechanisms.
#
# Note: pkcs11-tool 0.23 picks the key for --encrypt/--decrypt by --id only
# (it ignores --label there), so keys are named by id below.
#
# Every check prints what it checks. A failed check is reported with the
# command's output and the script goes on, so one run shows every failure;
# the exit status is non-zero if any check failed.
#
# Environment (set by ctest): P11KMS_MODULE, P11KMS_TOOL, P11KMS_SANITIZE.
set -euo pipefail

: "${P11KMS_MODULE:?P11KMS_MODULE must name libp11kms.so}"
: "${P11KMS_TOOL:?P11KMS_TOOL must name the p11kms tool}"
command -v pkcs11-tool >/dev/null || { echo "FAIL: pkcs11-tool (opensc) is not installed" >&2; exit 1; }
command -v openssl >/dev/null || { echo "FAIL: openssl is not installed" >&2; exit 1; }

# Under the ASan build, uninstrumented consumers need the sanitizer runtime
# preloaded, and their own leaks must not count.
SAN_ENV=()
case "${P11KMS_SANITIZE:-}" in
  1 | ON | on | true | TRUE | yes)
    rt=$(clang -print-file-name=libclang_rt.asan-x86_64.so)
    [ -f "$rt" ] || { echo "FAIL: ASan runtime not found ($rt)" >&2; exit 1; }
    SAN_ENV=(LD_PRELOAD="$rt" ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0")
    echo "== sanitizer build: preloading $rt" ;;
esac

work=$(mktemp -d /tmp/p11kms-pkcs11-tool.XXXXXX)
trap 'rm -rf "$work"' EXIT
echo "== scratch folder: $work"

tool() { env "${SAN_ENV[@]}" "$P11KMS_TOOL" "$@"; }
tool create-key-file "$work/master.key" >/dev/null
cat >"$work/p11kms.json" <<JSON
{
  "log": { "level": "error" },
  "providers": [
    { "name": "consumer", "type": "local",
      "key_file": "$work/master.key", "store": "$work/consumer.db",
      "login": "required",
      "keys": [ { "id": "kms-kek", "label": "kms-kek", "type": "aes" } ] }
  ]
}
JSON
export P11KMS_CONFIG=$work/p11kms.json

SO_PIN=87654321 PIN=123456 NEW_PIN=24681357
failures=()
OUT="" RC=0

# p11 ARGS...: one pkcs11-tool process; output in $OUT, status in $RC.
p11() {
  set +e
  OUT=$(timeout 120 env "${SAN_ENV[@]}" pkcs11-tool --module "$P11KMS_MODULE" "$@" 2>&1)
  RC=$?
  set -e
  if grep -Eq 'ERROR: AddressSanitizer|runtime error:|ERROR: LeakSanitizer' <<<"$OUT"; then
    fail "sanitizer report in: pkcs11-tool $*" "$OUT"
    RC=99
  fi
}
fail() {
  echo "FAIL: $1" >&2
  [ -n "${2:-}" ] && printf '%s\n' "$2" | sed 's/^/      | /' >&2
  failures+=("$1")
}
die() { fail "$@"; echo "FATAL: cannot go on after this failure" >&2; exit 1; }
ok() { echo "   ok: $*"; }
check() { echo "-- $*"; }
# need_ok DESC: the last p11 call must have succeeded.
need_ok() { if [ "$RC" -ne 0 ]; then fail "$1 (exit $RC)" "$OUT"; return 1; fi; }
# need_out DESC REGEX: the last output must match (grep -E).
need_out() {
  if ! grep -Eq -- "$2" <<<"$OUT"; then fail "$1: output lacks /$2/" "$OUT"; return 1; fi
}
need_no_out() {
  if grep -Eq -- "$2" <<<"$OUT"; then fail "$1: output unexpectedly has /$2/" "$OUT"; return 1; fi
}
# need_err DESC REGEX: the last call must have failed with output matching.
need_err() {
  if [ "$RC" -eq 0 ]; then fail "$1: succeeded but should have failed" "$OUT"; return 1; fi
  need_out "$1" "$2"
}
# block_of LABEL: the lines of the listed object whose label is LABEL.
block_of() {
  awk -v l="$1" '/^(Secret Key|Data|Private Key|Public Key|Certificate) Object|^Data object/ {
      if (hit) print blk; blk=""; hit=0 }
    { blk = blk $0 "\n" } $0 ~ "label: +\x27?" l "\x27?$" { hit=1 } END { if (hit) print blk }'
}
hex() { od -An -v -tx1 "$1" | tr -d ' \n'; }

check "list slots: one slot for the provider, token not yet initialized"
p11 --list-slots
need_ok "list slots" || die "pkcs11-tool cannot load the module" "$OUT"
need_out "slot description" 'p11kms local provider "consumer"' &&
  need_out "uninitialized token state" 'token state: +uninitialized' && ok "slot listed, token uninitialized"

check "module info and mechanism list"
p11 --show-info
need_ok "show info" && need_out "Cryptoki version" 'Cryptoki version 3\.0' && ok "Cryptoki 3.0"
p11 --list-mechanisms
if need_ok "list mechanisms"; then
  for m in AES-KEY-GEN GENERIC-SECRET-KEY-GEN AES-ECB AES-CBC AES-CBC-PAD AES-GCM AES-KEY-WRAP; do
    need_out "mechanism $m" "^ *$m, keySize=\{16,32\}|^ *$m, keySize=\{8,4096\}" || true
  done
  need_out "CKM_AES_KEY_WRAP_KWP (0x210B)" '0x210B' && ok "AES mechanisms listed, with 0x210B (KWP)"
fi
HAVE_SHA256=0 HAVE_HMAC=0
grep -Eq '^ *SHA256, .*digest' <<<"$OUT" && HAVE_SHA256=1
grep -Eq '^ *SHA256-HMAC, .*sign' <<<"$OUT" && HAVE_HMAC=1

check "initialize the token and the user PIN"
p11 --init-token --label consumer-tok --so-pin $SO_PIN
need_ok "init token" || die "C_InitToken failed" "$OUT"
p11 --login --login-type so --so-pin $SO_PIN --init-pin --pin $PIN
need_ok "init PIN" || die "C_InitPIN failed" "$OUT"
p11 --list-token-slots
need_out "token label after init" 'token label +: consumer-tok' &&
  need_out "flags after init" 'token initialized' &&
  need_out "flags after init" 'PIN initialized' &&
  need_out "flags after init" 'login required' && ok "token 'consumer-tok' initialized, PIN set"

check "generate a persistent AES-256 key (label tde-master, id 01)"
p11 --login --pin $PIN --keygen --key-type AES:32 --label tde-master --id 01
need_ok "keygen AES:32" && need_out "key type" 'Secret Key Object; AES length 32' &&
  need_out "label" 'label: +tde-master' && need_out "id" 'ID: +01' && ok "AES-256 token key generated"
check "generate an extractable, non-sensitive AES-256 key (id 11) to check ciphertexts with openssl"
p11 --login --pin $PIN --keygen --key-type AES:32 --label clear-aes --id 11 --extractable
need_ok "keygen extractable AES:32"
CLEAR_KEY=$(sed -n 's/^ *VALUE: *\([0-9a-f]*\)$/\1/p' <<<"$OUT" | head -1)
[ ${#CLEAR_KEY} -eq 64 ] && ok "its CKA_VALUE is readable (${#CLEAR_KEY} hex digits)" ||
  fail "extractable non-sensitive key should show its 32-byte VALUE" "$OUT"

check "AES-CBC-PAD: encrypt and decrypt a 100000-byte file with the token key"
head -c 100000 /dev/urandom >"$work/plain.bin"
IV=000102030405060708090a0b0c0d0e0f
p11 --login --pin $PIN --encrypt --id 01 -m AES-CBC-PAD --iv $IV \
  -i "$work/plain.bin" -o "$work/cbc.bin"
if need_ok "encrypt AES-CBC-PAD"; then
  size=$(stat -c %s "$work/cbc.bin")
  [ "$size" -eq 100016 ] && ok "ciphertext is 100016 bytes (one padding block)" ||
    fail "AES-CBC-PAD ciphertext of 100000 bytes should be 100016, is $size"
  cmp -s "$work/plain.bin" "$work/cbc.bin" && fail "ciphertext equals plaintext"
  p11 --login --pin $PIN --decrypt --id 01 -m AES-CBC-PAD --iv $IV \
    -i "$work/cbc.bin" -o "$work/cbc.out"
  need_ok "decrypt AES-CBC-PAD" && { cmp -s "$work/plain.bin" "$work/cbc.out" &&
    ok "decrypted file is identical" || fail "AES-CBC-PAD round trip differs"; }
fi

if [ ${#CLEAR_KEY} -eq 64 ]; then
  check "AES-CBC-PAD ciphertext is byte-identical to openssl's"
  p11 --login --pin $PIN --encrypt --id 11 -m AES-CBC-PAD --iv $IV -i "$work/plain.bin" -o "$work/cbc11.bin"
  need_ok "encrypt with id 11" &&
    openssl enc -aes-256-cbc -K "$CLEAR_KEY" -iv $IV -in "$work/plain.bin" -out "$work/cbc11.ossl" &&
    { cmp -s "$work/cbc11.bin" "$work/cbc11.ossl" && ok "identical to openssl enc -aes-256-cbc" ||
      fail "AES-CBC-PAD output differs from openssl enc -aes-256-cbc"; }
  check "AES-CBC (no padding) and AES-ECB on a block-aligned file match openssl"
  head -c 4096 /dev/urandom >"$work/aligned.bin"
  p11 --login --pin $PIN --encrypt --id 11 -m AES-CBC --iv $IV -i "$work/aligned.bin" -o "$work/cbcnp.bin"
  need_ok "encrypt AES-CBC" &&
    openssl enc -aes-256-cbc -nopad -K "$CLEAR_KEY" -iv $IV -in "$work/aligned.bin" -out "$work/cbcnp.ossl" &&
    { cmp -s "$work/cbcnp.bin" "$work/cbcnp.ossl" && ok "AES-CBC identical" || fail "AES-CBC output differs from openssl"; }
  p11 --login --pin $PIN --encrypt --id 11 -m AES-ECB -i "$work/aligned.bin" -o "$work/ecb.bin"
  need_ok "encrypt AES-ECB" &&
    openssl enc -aes-256-ecb -nopad -K "$CLEAR_KEY" -in "$work/aligned.bin" -out "$work/ecb.ossl" &&
    { cmp -s "$work/ecb.bin" "$work/ecb.ossl" && ok "AES-ECB identical" || fail "AES-ECB output differs from openssl"; }
fi

check "AES-GCM through pkcs11-tool"
set +e; help=$(pkcs11-tool --help 2>&1); set -e
if grep -q -- '--aad' <<<"$help" && grep -q -- '--tag-bits-len' <<<"$help"; then
  printf 'additional data' >"$work/aad.bin"
  GIV=000102030405060708090a0b
  p11 --login --pin $PIN --encrypt --id 01 -m AES-GCM --iv $GIV --aad 6164 --tag-bits-len 128 \
    -i "$work/plain.bin" -o "$work/gcm.bin"
  if need_ok "encrypt AES-GCM"; then
    size=$(stat -c %s "$work/gcm.bin")
    [ "$size" -eq 100016 ] || fail "AES-GCM output should be 100000 + 16-byte tag, is $size"
    p11 --login --pin $PIN --decrypt --id 01 -m AES-GCM --iv $GIV --aad 6164 --tag-bits-len 128 \
      -i "$work/gcm.bin" -o "$work/gcm.out"
    need_ok "decrypt AES-GCM" && { cmp -s "$work/plain.bin" "$work/gcm.out" && ok "AES-GCM round trip" ||
      fail "AES-GCM round trip differs"; }
  fi
else
  echo "   SKIP: this pkcs11-tool has no --aad/--tag-bits-len, so it cannot pass CK_GCM_PARAMS" \
    "(OpenSC >= 0.24 can); AES-GCM is covered by test_pykcs11.py"
fi

check "a new process lists the token keys after login"
p11 --login --pin $PIN --list-objects --type secrkey
need_ok "list objects" && need_out "tde-master listed" 'label: +tde-master' &&
  need_out "id 01 listed" 'ID: +01' && need_out "never extractable" 'never extractable' &&
  { ! block_of tde-master <<<"$OUT" | grep -q 'VALUE:' || { fail "tde-master's VALUE is shown" "$OUT"; false; }; } &&
  ok "tde-master is there, sensitive and never extractable"
# pkcs11-tool 0.23 generates secret keys with CKA_PRIVATE=FALSE (spy-checked),
# so they are public objects: listed without login, value still hidden.
p11 --list-objects --type secrkey
need_ok "list objects without login" && need_out "public key listed before login" 'label: +tde-master' &&
  { ! block_of tde-master <<<"$OUT" | grep -q 'VALUE:' || { fail "tde-master's VALUE is shown" "$OUT"; false; }; } &&
  ok "public (CKA_PRIVATE=FALSE) keys listed without login, sensitive value hidden"

check "a generic-secret key (GENERIC:32)"
p11 --login --pin $PIN --keygen --key-type GENERIC:32 --label gen-secret --id 03
need_ok "keygen GENERIC:32" && need_out "generic secret" 'Secret Key Object; Generic secret length 32' &&
  need_out "label" 'label: +gen-secret' && ok "generic secret generated"
p11 --login --pin $PIN --encrypt --id 03 -m AES-CBC-PAD --iv $IV -i "$work/plain.bin" -o "$work/x.bin"
need_err "AES-CBC-PAD with a generic secret key" 'CKR_KEY_TYPE_INCONSISTENT' &&
  ok "AES-CBC-PAD refuses a generic secret key with CKR_KEY_TYPE_INCONSISTENT"

check "wrap and unwrap (AES-KEY-WRAP, RFC 3394) checked against openssl"
p11 --login --pin $PIN --keygen --key-type AES:32 --label kek --id 02 --extractable --usage-wrap
need_ok "keygen kek"
KEK=$(sed -n 's/^ *VALUE: *\([0-9a-f]*\)$/\1/p' <<<"$OUT" | head -1)
p11 --login --pin $PIN --keygen --key-type AES:32 --label payload --id 04 --extractable
need_ok "keygen payload"
PAYLOAD=$(sed -n 's/^ *VALUE: *\([0-9a-f]*\)$/\1/p' <<<"$OUT" | head -1)
p11 --login --pin $PIN --wrap --id 02 --application-id 04 -m AES-KEY-WRAP -o "$work/wrapped.bin"
if need_ok "wrap with AES-KEY-WRAP"; then
  size=$(stat -c %s "$work/wrapped.bin")
  [ "$size" -eq 40 ] && ok "wrapped 32-byte key is 40 bytes" || fail "RFC 3394 wrap of 32 bytes should be 40, is $size"
  if [ ${#KEK} -eq 64 ] && [ ${#PAYLOAD} -eq 64 ]; then
    want=$(printf '%s' "$PAYLOAD" | xxd -r -p | openssl enc -id-aes256-wrap -K "$KEK" -iv A6A6A6A6A6A6A6A6 | od -An -v -tx1 | tr -d ' \n')
    [ "$(hex "$work/wrapped.bin")" = "$want" ] && ok "identical to openssl id-aes256-wrap" ||
      fail "RFC 3394 wrap differs from openssl" "module:  $(hex "$work/wrapped.bin")"$'\n'"openssl: $want"
  fi
  p11 --login --pin $PIN --unwrap --id 02 -m AES-KEY-WRAP -i "$work/wrapped.bin" --key-type AES: \
    --application-id 05 --application-label unwrapped --extractable
  need_ok "unwrap with AES-KEY-WRAP" && need_out "unwrapped key" 'label: +unwrapped' &&
    need_out "unwrapped value equals the payload" "VALUE: +$PAYLOAD" && ok "unwrapped key has the payload's value"
fi
p11 --login --pin $PIN --wrap --id 02 --application-id 01 -m AES-KEY-WRAP -o "$work/nope.bin"
need_err "wrapping a non-extractable key" 'CKR_KEY_UNEXTRACTABLE' &&
  ok "wrapping the never-extractable tde-master is refused with CKR_KEY_UNEXTRACTABLE"

check "wrap and unwrap with CKM_AES_KEY_WRAP_KWP (0x210B, RFC 5649) checked against openssl"
p11 --login --pin $PIN --wrap --id 02 --application-id 04 -m 0x210B -o "$work/kwp.bin"
if need_ok "wrap with 0x210B"; then
  if [ ${#KEK} -eq 64 ] && [ ${#PAYLOAD} -eq 64 ]; then
    want=$(printf '%s' "$PAYLOAD" | xxd -r -p | openssl enc -id-aes256-wrap-pad -K "$KEK" -iv A65959A6 | od -An -v -tx1 | tr -d ' \n')
    [ "$(hex "$work/kwp.bin")" = "$want" ] && ok "identical to openssl id-aes256-wrap-pad (RFC 5649)" ||
      fail "RFC 5649 wrap differs from openssl" "module:  $(hex "$work/kwp.bin")"$'\n'"openssl: $want"
  fi
  p11 --login --pin $PIN --unwrap --id 02 -m 0x210B -i "$work/kwp.bin" --key-type AES: \
    --application-id 06 --application-label unwrapped-kwp --extractable
  need_ok "unwrap with 0x210B" && need_out "unwrapped value" "VALUE: +$PAYLOAD" && ok "KWP round trip"
fi

check "wrap and unwrap under the KMS key (type aes): RFC 3394 by the KMS, checked against openssl"
KMS_ID=$(printf 'kms-kek' | od -An -v -tx1 | tr -d ' \n')
# The key is the file's last 32 bytes (create-key-file writes a 16-byte
# header before it; a 32-byte key file is the key alone).
MASTER=$(tail -c 32 "$work/master.key" | od -An -v -tx1 | tr -d ' \n')
p11 --login --pin $PIN --wrap --id "$KMS_ID" --application-id 04 -m AES-KEY-WRAP -o "$work/kms-wrapped.bin"
if need_ok "wrap with the KMS key"; then
  want=$(printf '%s' "$PAYLOAD" | xxd -r -p | openssl enc -id-aes256-wrap -K "$MASTER" -iv A6A6A6A6A6A6A6A6 | od -An -v -tx1 | tr -d ' \n')
  [ "$(hex "$work/kms-wrapped.bin")" = "$want" ] && ok "identical to openssl id-aes256-wrap under the key file" ||
    fail "KMS RFC 3394 wrap differs from openssl" "module:  $(hex "$work/kms-wrapped.bin")"$'\n'"openssl: $want"
  p11 --login --pin $PIN --unwrap --id "$KMS_ID" -m AES-KEY-WRAP -i "$work/kms-wrapped.bin" --key-type AES: \
    --application-id 07 --application-label unwrapped-kms --extractable
  need_ok "unwrap with the KMS key" && need_out "unwrapped value" "VALUE: +$PAYLOAD" && ok "KMS key wrap round trip"
fi

check "a data object: write it, read it back from a new process"
printf 'ORACLE TDE style data object\n%s\n' "$(head -c 48 /dev/urandom | od -An -tx1 | tr -d ' \n')" >"$work/data.in"
p11 --login --pin $PIN --write-object "$work/data.in" --type data --label tde-data --application-label p11kms-test
need_ok "write data object" && need_out "created" 'Created Data Object' && need_out "label" "label: +'tde-data'" &&
  ok "data object created"
p11 --login --pin $PIN --read-object --type data --label tde-data -o "$work/data.out"
need_ok "read data object after login" && { cmp -s "$work/data.in" "$work/data.out" &&
  ok "read back identical (logged in)" || fail "data object read back differs"; }
p11 --list-objects --type data
need_ok "list data objects without login" && need_out "public data object visible without login" "label: +'tde-data'" &&
  ok "public data object listed without login"
# PKCS #11: a public object's attributes are readable in a public session;
# C_GetAttributeValue has no CKR_USER_NOT_LOGGED_IN among its return values.
rm -f "$work/data.pub"
p11 --read-object --type data --label tde-data -o "$work/data.pub"
if need_ok "read a PUBLIC data object's CKA_VALUE without login"; then
  cmp -s "$work/data.in" "$work/data.pub" && ok "read back identical (public session)" ||
    fail "public data object read without login differs"
fi

check "delete an object"
p11 --login --pin $PIN --delete-object --type secrkey --id 05
need_ok "delete secret key id 05"
p11 --login --pin $PIN --list-objects --type secrkey
need_ok "list after delete" && need_no_out "deleted key gone" "label: +unwrapped\$" &&
  need_out "other keys still there" 'label: +tde-master' && ok "key 'unwrapped' deleted, others kept"
p11 --login --pin $PIN --delete-object --type data --label tde-data
need_ok "delete data object"
p11 --list-objects --type data
need_no_out "deleted data object gone" "tde-data" && ok "data object deleted"

check "digest (pkcs11-tool --hash -m SHA256) matches sha256sum"
if [ $HAVE_SHA256 = 1 ]; then
  p11 --hash -m SHA256 -i "$work/plain.bin" -o "$work/plain.sha256"
  need_ok "hash SHA256" && { [ "$(hex "$work/plain.sha256")" = "$(sha256sum "$work/plain.bin" | cut -d' ' -f1)" ] &&
    ok "C_Digest SHA-256 of 100000 bytes == sha256sum" || fail "SHA-256 digest differs from sha256sum"; }
else
  echo "   SKIP: CKM_SHA256 is not listed (digests not implemented in this module build)"
fi

check "HMAC (pkcs11-tool --sign/--verify -m SHA256-HMAC) matches openssl"
if [ $HAVE_HMAC = 1 ]; then
  p11 --login --pin $PIN --keygen --key-type GENERIC:32 --label hmac-key --id 13 --extractable
  need_ok "keygen GENERIC:32 for HMAC"
  HKEY=$(sed -n 's/^ *VALUE: *\([0-9a-f]*\)$/\1/p' <<<"$OUT" | head -1)
  p11 --login --pin $PIN --sign -m SHA256-HMAC --id 13 -i "$work/plain.bin" -o "$work/plain.mac"
  if need_ok "sign SHA256-HMAC" && [ ${#HKEY} -eq 64 ]; then
    want=$(openssl dgst -sha256 -mac HMAC -macopt "hexkey:$HKEY" -r "$work/plain.bin" | cut -d' ' -f1)
    [ "$(hex "$work/plain.mac")" = "$want" ] && ok "C_Sign HMAC-SHA256 == openssl" ||
      fail "HMAC-SHA256 differs from openssl" "module:  $(hex "$work/plain.mac")"$'\n'"openssl: $want"
  fi
  p11 --login --pin $PIN --verify -m SHA256-HMAC --id 13 -i "$work/plain.bin" --signature-file "$work/plain.mac"
  need_ok "verify SHA256-HMAC" && need_out "valid" 'Signature is valid' && ok "C_Verify accepts it"
  printf 'x' >>"$work/plain.mac"
  p11 --login --pin $PIN --verify -m SHA256-HMAC --id 13 -i "$work/plain.bin" --signature-file "$work/plain.mac"
  need_err "verify a wrong-length MAC" 'CKR_SIGNATURE_(INVALID|LEN_RANGE)|[Ii]nvalid' && ok "a bad MAC is refused"
else
  echo "   SKIP: CKM_SHA256_HMAC is not listed (C_Sign/C_Verify not implemented in this module build)"
fi

check "random numbers"
p11 --generate-random 64 -o "$work/rand.bin"
need_ok "generate random" && { [ "$(stat -c %s "$work/rand.bin")" -eq 64 ] && ok "64 random bytes" ||
  fail "generate-random 64 wrote $(stat -c %s "$work/rand.bin") bytes"; }

check "a wrong user PIN fails with CKR_PIN_INCORRECT and sets CKF_USER_PIN_COUNT_LOW"
p11 --login --pin 999999 --list-objects
need_err "login with a wrong PIN" 'CKR_PIN_INCORRECT' && ok "wrong PIN refused"
p11 --list-token-slots
need_out "user PIN count low after a wrong PIN" 'user PIN count low' && ok "flags show user PIN count low"

check "change the user PIN"
p11 --login --pin $PIN --change-pin --new-pin $NEW_PIN
need_ok "change PIN" && need_out "changed" 'PIN successfully changed' && ok "PIN changed"
p11 --login --pin $PIN --list-objects --type secrkey
need_err "old PIN after change" 'CKR_PIN_INCORRECT' && ok "old PIN no longer works"
p11 --login --pin $NEW_PIN --list-objects --type secrkey
need_ok "new PIN" && need_out "keys readable with the new PIN" 'label: +tde-master' && ok "new PIN opens the token"
p11 --list-token-slots
need_no_out "count low cleared by a successful login" 'user PIN count low' && ok "PIN count low cleared"

check "the key still encrypts to the same ciphertext after the PIN change (the token key survived re-sealing)"
p11 --login --pin $NEW_PIN --encrypt --id 01 -m AES-CBC-PAD --iv $IV -i "$work/plain.bin" -o "$work/cbc2.bin"
need_ok "encrypt after PIN change" && { cmp -s "$work/cbc.bin" "$work/cbc2.bin" && ok "same ciphertext" ||
  fail "tde-master encrypts differently after the PIN change"; }

echo
if [ ${#failures[@]} -gt 0 ]; then
  echo "pkcs11-tool: ${#failures[@]} check(s) FAILED:" >&2
  printf '  - %s\n' "${failures[@]}" >&2
  exit 1
fi
echo "pkcs11-tool: all checks passed"
