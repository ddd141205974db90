#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Java 17 SunPKCS11 against libp11kms.so: compiles java/P11Consumer.java
# into a scratch folder, initializes a token with pkcs11-tool, then runs the
# program twice (create, then reload in a new JVM). See P11Consumer.java for
# what is checked. The SunPKCS11 configuration uses `attributes(generate,
# CKO_SECRET_KEY, CKK_AES)` to make KeyGenerator keys token objects.
#
# Environment (set by ctest): P11KMS_MODULE, P11KMS_TOOL, P11KMS_SANITIZE.
set -euo pipefail

: "${P11KMS_MODULE:?P11KMS_MODULE must name libp11kms.so}"
: "${P11KMS_TOOL:?P11KMS_TOOL must name the p11kms tool}"
for c in java javac pkcs11-tool; do
  command -v $c >/dev/null || { echo "FAIL: $c is not installed" >&2; exit 1; }
done
src=$(cd "$(dirname "$0")" && pwd)/java

SAN_ENV=()
case "${P11KMS_SANITIZE:-}" in
  1 | ON | on | true | TRUE | yes)
    rt=$(clang -print-file-name=libclang_rt.asan-x86_64.so)
    [ -f "$rt" ] || { echo "FAIL: ASan runtime not found ($rt)" >&2; exit 1; }
    # The JVM handles SIGSEGV itself (safepoints, implicit null checks).
    SAN_ENV=(LD_PRELOAD="$rt"
      ASAN_OPTIONS="${ASAN_OPTIONS:+$ASAN_OPTIONS:}detect_leaks=0:handle_segv=0:allow_user_segv_handler=1")
    echo "== sanitizer build: preloading $rt" ;;
esac

work=$(mktemp -d /tmp/p11kms-java.XXXXXX)
trap 'rm -rf "$work"' EXIT
echo "== scratch folder: $work"
run() { env "${SAN_ENV[@]}" "$@"; }

run "$P11KMS_TOOL" create-key-file "$work/master.key" >/dev/null
cat >"$work/p11kms.json" <<JSON
{
  "log": { "level": "error" },
  "providers": [
    { "name": "java", "type": "local",
      "key_file": "$work/master.key", "store": "$work/java.db",
      "login": "required" }
  ]
}
JSON
# SunPKCS11 passes no init string: the configuration comes from the environment.
export P11KMS_CONFIG=$work/p11kms.json
echo "-- initialize the token with pkcs11-tool"
run pkcs11-tool --module "$P11KMS_MODULE" --init-token --label java-tok --so-pin 87654321 >/dev/null
run pkcs11-tool --module "$P11KMS_MODULE" --login --login-type so --so-pin 87654321 --init-pin --pin 123456 >/dev/null
echo "   ok: token java-tok with a user PIN"

cat >"$work/sunpkcs11.cfg" <<CFG
name = p11kms
library = $P11KMS_MODULE
slotListIndex = 0
attributes(generate, CKO_SECRET_KEY, CKK_AES) = {
  CKA_TOKEN = true
  CKA_SENSITIVE = true
  CKA_EXTRACTABLE = false
}
CFG
echo "-- compile java/P11Consumer.java"
javac -d "$work/classes" "$src/P11Consumer.java"

status=0
for phase in create reload; do
  echo "== JVM ($phase)"
  run timeout 120 java -cp "$work/classes" P11Consumer "$work/sunpkcs11.cfg" 123456 "$work" $phase || status=1
done
if [ $status -ne 0 ]; then
  echo "java: FAILED (see the FAIL lines above)" >&2
  exit 1
fi
echo "java: all checks passed"
