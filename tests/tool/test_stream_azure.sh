#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# p11kms encrypt / decrypt against Azure Key Vault as the KMS emulator
# serves it (tests/kms-emulator), through the real tool: a file made before
# a rotation still decrypts after it; with the version that wrapped its data
# key disabled, decrypt refuses and names that version, and a file of the
# new version decrypts; re-enabled, the old file opens. The audit log
# (docs/AUDIT.md) records each KMS call with Azure's x-ms-request-id, the
# version and the refusal's class, and never the client secret or a token.
set -uo pipefail
. "$(dirname "$0")/stream_lib.sh"
src=${P11KMS_SRC:?P11KMS_SRC is set by ctest}
py=/usr/bin/python3
scratch=$(mktemp -d /tmp/p11kms-stream-az-XXXXXX)
emu_pid=
cleanup() { [ -n "$emu_pid" ] && kill "$emu_pid" && wait "$emu_pid" 2>/dev/null; rm -rf "$scratch"; }
trap cleanup EXIT
cd "$scratch" || exit 1
export HOME=$scratch
unset AZURE_CLIENT_ID AZURE_TENANT_ID AZURE_CLIENT_SECRET AZURE_FEDERATED_TOKEN_FILE IDENTITY_ENDPOINT

$py "$src/tests/kms-emulator/kmsemu.py" serve --state-dir "$scratch" --quiet >emu.log 2>&1 &
emu_pid=$!
for _ in $(seq 300); do [ -s emulator.json ] && break; sleep 0.1; done
[ -s emulator.json ] || { echo "the emulator did not start"; cat emu.log; exit 1; }
field() { $py -c "import json,sys; d=json.load(open('emulator.json')); print(eval('d' + sys.argv[1]))" "$1"; }
az() { $py "$src/tests/integration/emuctl_azure.py" "$scratch" "$@" >/dev/null; }
version() { $py "$src/tests/integration/emuctl_backup.py" "$scratch" azure-version "$@" >/dev/null; }
key=stream-$$
az create vault "$key" RSA 2048 || { echo "cannot create the key"; exit 1; }
az secret-file "$scratch/secret"
cat >c.json <<EOF
{"log": {"level": "info", "destination": "$scratch/module.log", "audit": "$scratch/audit.log"},
 "providers": [{"name": "az-prod", "type": "azure", "vault_url": "$(field '["azure"]["vault_url"]')",
   "tenant_id": "$(field '["azure"]["tenant_id"]')", "client_id": "$(field '["azure"]["client_id"]')",
   "client_secret_file": "$scratch/secret", "authority_host": "$(field '["azure"]["authority_host"]')",
   "ca_file": "$(field '["ca_bundle"]')", "store": "$scratch/t.db", "seal_with": "$key"}]}
EOF
# The version the last encrypt wrapped its data key under, from the audit log.
last_version() {
  $py -c 'import json,sys; print([o for o in map(json.loads, open(sys.argv[1])) if o["op"] == "encrypt"][-1]["key_version"])' audit.log
}

head -c 300000 /dev/urandom >data
round_trip "round trip" c.json az-prod data --segment-size 65536
"$tool" encrypt --config c.json --slot az-prod data v1.enc || exit 1
v1=$(last_version)
[ -n "$v1" ] && grep -aq "$v1" v1.enc && ok "the header names the version ($v1)" || not_ok "no version in the header"
az rotate vault "$key"
"$tool" encrypt --config c.json --slot az-prod data v2.enc || exit 1
v2=$(last_version)
[ "$v2" != "$v1" ] && grep -aq "$v2" v2.enc && ok "after rotation, new files name the new version" ||
  not_ok "the new file names $v2 (old $v1)"
"$tool" decrypt --config c.json v1.enc | cmp -s - data && ok "after rotation, the old file decrypts" ||
  not_ok "the old file does not decrypt after rotation"

version disable "$key" "$v1"
refused "version 1 disabled: the old file is refused, naming version 1" \
  "provider \"az-prod\" key $key version .*$v1.* is disabled.*needs that version enabled" c.json v1.enc
"$tool" decrypt --config c.json v1.enc >/dev/null 2>&1; rc=$?
[ $rc = 2 ] && ok "a KMS refusal exits 2" || not_ok "a KMS refusal exits $rc"
"$tool" decrypt --config c.json v2.enc | cmp -s - data && ok "version 1 disabled: the new file decrypts" ||
  not_ok "the new file does not decrypt"
version enable "$key" "$v1"
"$tool" decrypt --config c.json v1.enc | cmp -s - data && ok "version 1 re-enabled: the old file decrypts" ||
  not_ok "the old file does not decrypt after re-enabling"

# The audit log of all this.
$py - audit.log "$key" "$v1" <<'PY' && ok "the audit log: Azure's request ids, versions, the refusal's class" || not_ok "the audit log"
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
key, v1 = sys.argv[2], sys.argv[3]
assert lines and all(o["provider"] == "azure" and o["slot"] == "az-prod" and o["key_id"] == key for o in lines), lines
assert all(o["request_id"] for o in lines if o["result"] == "ok"), [o for o in lines if not o["request_id"]]
assert len({o["request_id"] for o in lines}) == len(lines), "request ids repeat"
refused = [o for o in lines if o["op"] == "decrypt" and o["result"] != "ok"]
assert refused and all(o["result"] == "key_disabled" and o["key_version"] and v1 in o["key_version"] for o in refused), refused
assert {o["function"] for o in lines} == {"p11kms encrypt", "p11kms decrypt"}, {o["function"] for o in lines}
PY
$py - audit.log "$scratch/secret" <<'PY' && ok "no client secret and no token in the audit log" || not_ok "a secret in the audit log"
import sys
log = open(sys.argv[1]).read()
secret = open(sys.argv[2]).read().strip()
assert secret and secret not in log
assert "eyJ" not in log and "Bearer" not in log   # JWT access tokens
PY
"$tool" audit --config c.json >table 2>err && grep -q "key_disabled" table && [ ! -s err ] &&
  ok "p11kms audit shows it" || { not_ok "p11kms audit"; cat err; }

# A consumer (PyKCS11) runs the standard mechanisms on KMS RSA keys
# (docs/REMOTE.md; one wrapping pair, one "usage": "data" pair): each KMS
# call is a line naming the PKCS#11 function, also where the module makes
# it in a helper of that function.
module=${P11KMS_MODULE:?P11KMS_MODULE is set by ctest}
if $py -c 'import PyKCS11' 2>/dev/null; then
  az create vault "kek-$$" RSA 2048
  az create vault "kekd-$$" RSA 2048
  sed "s|\"seal_with\": \"$key\"|\"seal_with\": \"$key\", \"login\": \"optional\", \"keys\": [{\"id\": \"kek-$$\", \"label\": \"kek\", \"type\": \"rsa\"}, {\"id\": \"kekd-$$\", \"label\": \"kekd\", \"type\": \"rsa\", \"usage\": \"data\"}]|" c.json >keys.json
  : >audit.log
  pre=()
  case "${P11KMS_SANITIZE:-}" in
    1 | ON | on | true | TRUE | yes) pre=(LD_PRELOAD="$(clang -print-file-name=libclang_rt.asan-x86_64.so)"
                                      ASAN_OPTIONS=detect_leaks=0) ;;
  esac
  env "${pre[@]}" P11KMS_CONFIG="$scratch/keys.json" $py - "$module" <<'PY' || not_ok "the PyKCS11 consumer"
import sys
from PyKCS11 import *
lib = PyKCS11Lib(); lib.load(sys.argv[1])
s = lib.openSession(lib.getSlotList()[0], CKF_SERIAL_SESSION | CKF_RW_SESSION)
pub = s.findObjects([(CKA_CLASS, CKO_PUBLIC_KEY), (CKA_LABEL, "kek")])[0]
priv = s.findObjects([(CKA_CLASS, CKO_PRIVATE_KEY), (CKA_LABEL, "kek")])[0]
dpub = s.findObjects([(CKA_CLASS, CKO_PUBLIC_KEY), (CKA_LABEL, "kekd")])[0]
dpriv = s.findObjects([(CKA_CLASS, CKO_PRIVATE_KEY), (CKA_LABEL, "kekd")])[0]
m = RSAOAEPMechanism(CKM_SHA256, CKG_MGF1_SHA256)
assert bytes(s.decrypt(dpriv, s.encrypt(dpub, b"audit me", m), m)) == b"audit me"
aes = s.generateKey([(CKA_CLASS, CKO_SECRET_KEY), (CKA_KEY_TYPE, CKK_AES), (CKA_VALUE_LEN, 32),
                     (CKA_TOKEN, False), (CKA_EXTRACTABLE, True)], Mechanism(CKM_AES_KEY_GEN))
w = s.wrapKey(pub, aes, m)
s.unwrapKey(priv, w, [(CKA_CLASS, CKO_SECRET_KEY), (CKA_KEY_TYPE, CKK_AES), (CKA_TOKEN, False)], m)
PY
  $py - audit.log "kek-$$" "kekd-$$" <<'PY' && ok "standard mechanisms: public_key, encrypt, decrypt, wrap, unwrap, each with its C_ function" ||
import json, sys
got = [(o["key_id"], o["function"], o["op"], o.get("alg"))
       for o in map(json.loads, open(sys.argv[1])) if o["key_id"] in sys.argv[2:4]]
k, d = sys.argv[2], sys.argv[3]
want = [(d, "C_EncryptInit", "public_key", None), (d, "C_Encrypt", "encrypt", "rsa_oaep_sha256"),
        (d, "C_Decrypt", "decrypt", "rsa_oaep_sha256"), (k, "C_WrapKey", "public_key", None),
        (k, "C_WrapKey", "wrap", "rsa_oaep_sha256"), (k, "C_UnwrapKey", "unwrap", "rsa_oaep_sha256")]
assert got == want, got
PY
    { not_ok "the standard mechanisms' audit lines"; cat audit.log; }
else
  echo "# PyKCS11 missing: the standard mechanisms' lines are not checked"
fi

echo "$passes passed, $fails failed"
[ $fails = 0 ]
