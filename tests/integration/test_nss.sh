#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# NSS against libp11kms.so, with the NSS tools (libnss3-tools): modutil
# registers the module in a scratch NSS database, symkeyutil generates AES
# token keys (PK11_TokenKeyGen: CKA_TOKEN and CKA_PRIVATE TRUE), lists
# them from new processes, imports a known key (login=optional) and deletes
# one.
#
# Usage: test_nss.sh [required|optional] (the token's login mode; default
# required). NSS logs in only when the token says CKF_LOGIN_REQUIRED: with
# login=optional the tools are given a password that is not the user's PIN,
# so a login would fail, and the module log must show none
# (docs/OBJECTS.md, "Login and private objects").
#
# Environment (set by ctest): P11KMS_MODULE, P11KMS_TOOL, P11KMS_SANITIZE.
set -euo pipefail

mode=${1:-required}
for c in modutil certutil symkeyutil pkcs11-tool; do
  command -v $c >/dev/null || { echo "FAIL: $c is not installed" >&2; exit 1; }
done

. "$(dirname "$0")/consumer_token.sh"
consumer_token nss "$mode"
failures=0
ok() { echo "   ok: $*"; }
fail() { echo "FAIL: $*"; failures=$((failures + 1)); }

echo "-- an NSS database with the module (modutil)"
db="sql:$work/nssdb"
mkdir "$work/nssdb"
run certutil -N -d "$db" --empty-password
echo | run modutil -dbdir "$db" -add p11kms -libfile "$P11KMS_MODULE" -force >/dev/null 2>&1
list=$(run modutil -dbdir "$db" -list p11kms 2>&1)
if grep -q "Token Name: nss-tok" <<<"$list"; then ok "modutil lists the token"; else fail "modutil -list: $list"; fi
want="Login required"
[ "$mode" = optional ] && want="Public (no login required)"
if grep -q "Login Type: $want" <<<"$list"; then ok "Login Type: $want"; else fail "modutil: not \"Login Type: $want\""; fi

echo "$pin" >"$work/pw"
sym() { run symkeyutil -d "$db" -h nss-tok -f "$work/pw" "$@"; }
echo "-- symkeyutil: token keys"
if sym -K -n nss-kek -t aes -s 32 >/dev/null; then ok "generated AES-256 token key nss-kek (C_GenerateKey, CKA_PRIVATE TRUE)"; else fail "symkeyutil -K nss-kek"; fi
if sym -K -n nss-data -t aes -s 16 >/dev/null; then ok "generated AES-128 token key nss-data"; else fail "symkeyutil -K nss-data"; fi
keys=$(sym -L 2>&1 || true)
if grep -q "^nss-kek  *32 " <<<"$keys" && grep -q "^nss-data  *16 " <<<"$keys"; then
  ok "a new process lists both keys with their lengths"
else
  fail "symkeyutil -L: $keys"
fi
# symkeyutil -I makes a session key (C_CreateObject, CKA_PRIVATE TRUE by the
# module's default) and NSS does not log in for it: with login=required
# PKCS #11 refuses that (CKR_USER_NOT_LOGGED_IN), so it runs only here.
if [ "$mode" = optional ]; then
  head -c 32 /dev/urandom >"$work/known.key"
  if sym -I -n nss-imported -t aes -k "$work/known.key" >/dev/null; then ok "imported a known AES key (C_CreateObject)"; else fail "symkeyutil -I"; fi
fi
if sym -D -n nss-data >/dev/null; then ok "deleted nss-data (C_DestroyObject)"; else fail "symkeyutil -D nss-data"; fi
keys=$(sym -L 2>&1 || true)
if grep -q "^nss-kek " <<<"$keys" && ! grep -q "^nss-data " <<<"$keys"; then
  ok "nss-kek is still there, nss-data is gone"
else
  fail "after the delete, symkeyutil -L: $keys"
fi

# NSS logs in only where the token requires it.
consumer_login_ok "$mode" || failures=$((failures + 1))
if [ $failures -ne 0 ]; then
  echo "--- module log (info) ---" >&2
  grep -v " trace " "$work/module.log" | tail -20 >&2
  echo "nss (login=$mode): $failures check(s) FAILED" >&2
  exit 1
fi
echo "nss (login=$mode): all checks passed"
