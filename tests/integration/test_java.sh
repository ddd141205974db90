#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# Java 17 SunPKCS11 against libp11kms.so: compiles java/P11Consumer.java
# into a scratch folder, initializes a token with pkcs11-tool, then runs the
# program twice (create, then reload in a new JVM). See P11Consumer.java for
# what is checked. The SunPKCS11 configuration uses `attributes(generate,
# CKO_SECRET_KEY, CKK_AES)` to make KeyGenerator keys token objects.
#
# Usage: test_java.sh [required|optional] (the token's login mode; default
# required). With login=optional CKF_LOGIN_REQUIRED is clear and SunPKCS11
# never calls C_Login: the program is handed a PIN that is not the user's,
# so a login would fail, and every check runs in a public session
# (docs/OBJECTS.md, "Login and private objects").
#
# Environment (set by ctest): P11KMS_MODULE, P11KMS_TOOL, P11KMS_SANITIZE.
set -euo pipefail
mode=${1:-required}

for c in java javac pkcs11-tool; do
  command -v $c >/dev/null || { echo "FAIL: $c is not installed" >&2; exit 1; }
done
src=$(cd "$(dirname "$0")" && pwd)/java

# The JVM handles SIGSEGV itself (safepoints, implicit null checks).
. "$(dirname "$0")/consumer_token.sh"
consumer_token java "$mode" handle_segv=0:allow_user_segv_handler=1

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
  run timeout 120 java -cp "$work/classes" P11Consumer "$work/sunpkcs11.cfg" $pin "$work" $phase || status=1
done
# SunPKCS11 logs in only where the token requires it.
consumer_login_ok "$mode" || status=1
# Its AES/GCM offers the v2.30 CK_GCM_PARAMS first (40 bytes on LP64, no
# ulIvBits): taken, so no refusal and no retry (module/mech.c).
if grep -q "CK_GCM_PARAMS of" "$work/module.log"; then
  grep "CK_GCM_PARAMS of" "$work/module.log" | head -3 >&2
  echo "FAIL: SunPKCS11's GCM parameters were refused" >&2
  status=1
else
  echo "   ok: SunPKCS11's first GCM parameters taken (no CKR_MECHANISM_PARAM_INVALID retry)"
fi
echo "   module log at info: $(grep -c . "$work/module.log") line(s)"
grep ' info api: ' "$work/module.log" | sed 's/^[^ ]* [^ ]* /   | /' | sort | uniq -c | sort -rn | head -5
if [ $status -ne 0 ]; then
  echo "java (login=$mode): FAILED (see the FAIL lines above)" >&2
  exit 1
fi
echo "java (login=$mode): all checks passed"
