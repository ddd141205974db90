#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The audit log (docs/AUDIT.md) through the module, as pkcs11-tool loads
# it, and the real p11kms tool, on the local provider: one JSON line per
# KMS operation with the documented fields, the PKCS#11 function or the
# tool's command as its cause; never the PIN or key bytes; whole lines
# from processes writing at once; the file 0600 and a loose or foreign
# path refused at C_Initialize with file:line; p11kms audit's table,
# --json, --since, and bad lines reported by number and skipped.
set -uo pipefail
. "$(dirname "$0")/tool_lib.sh"
d=$(mktemp -d /tmp/p11kms-audit-XXXXXX)
trap 'rm -rf "$d"' EXIT
cd "$d" || exit 1
config() { # AUDIT_JSON_VALUE
  cat >"$d/c.json" <<JSON
{"log": {"destination": "$d/module.log",
         "audit": $1},
 "providers": [{"name": "dev", "type": "local", "key_file": "$d/k.key", "store": "$d/s.db",
   "pin_kdf_cost": 12}]}
JSON
}
p11() { env "${san_env[@]}" P11KMS_CONFIG="$d/c.json" pkcs11-tool --module "$module" "$@" >/dev/null 2>&1; }
# Every line follows the schema of docs/AUDIT.md; prints the line count.
schema_check() {
  $py - "$1" <<'PY'
import json, re, sys
n = 0
for raw in open(sys.argv[1], "rb"):
    assert raw.endswith(b"\n") and len(raw) < 4096, raw
    o = json.loads(raw)
    for k, t in (("time", str), ("pid", int), ("uid", int), ("exe", str), ("slot", str),
                 ("slot_id", int), ("provider", str), ("key_id", str), ("op", str),
                 ("result", str), ("latency_ms", (int, float))):
        assert isinstance(o[k], t), (k, o)
    for k in ("key_version", "function", "request_id"):
        assert o[k] is None or isinstance(o[k], str), (k, o)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z", o["time"]), o
    assert o["op"] in ("describe", "encrypt", "decrypt", "wrap", "unwrap", "public_key", "sign"), o
    assert o["result"] in ("ok", "nomem", "key_disabled", "key_not_found", "access_denied",
                           "unreachable", "tls", "throttled", "invalid_ciphertext", "bad_reply",
                           "key_type", "internal", "store", "store_busy"), o
    assert o["latency_ms"] >= 0
    n += 1
print(n)
PY
}

"$tool" create-key-file "$d/k.key" >/dev/null || exit 1
config "\"$d/audit.log\""
userpin=user-PIN-8231907 sopin=so-PIN-5550123
p11 --init-token --label aud --so-pin "$sopin" || bad "pkcs11-tool --init-token"
p11 --init-pin --so-pin "$sopin" --pin "$userpin" --login --login-type so || bad "pkcs11-tool --init-pin"
p11 --login --pin "$userpin" --list-objects || bad "pkcs11-tool --login"
[ "$(stat -c %a audit.log 2>/dev/null)" = 600 ] && ok "the audit log is made mode 0600" ||
  bad "audit log mode $(stat -c %a audit.log 2>&1)"
me=$(id -u)
$py - "$d/audit.log" "$me" <<'PY' && ok "pkcs11-tool's KMS calls: its name, pid, uid, the C_ function, slot, key, version" || bad "pkcs11-tool's lines"
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
p = [o for o in lines if o["exe"] == "pkcs11-tool"]
assert p, lines
fns = {(o["function"], o["op"]) for o in p}
assert ("C_InitToken", "encrypt") in fns, fns   # the new token is sealed
assert ("C_Login", "decrypt") in fns, fns       # the login unseals it
for o in p:
    assert o["uid"] == int(sys.argv[2]) and o["pid"] > 1 and o["slot"] == "dev" and o["provider"] == "local", o
    assert o["key_id"].endswith("/k.key") and o["key_version"] and o["result"] == "ok" and o["request_id"] is None, o
assert len({o["pid"] for o in p}) == 3, p     # three processes
PY
head -c 5000 /dev/urandom >data
"$tool" encrypt --config c.json --slot dev data data.enc && "$tool" decrypt --config c.json data.enc data.dec ||
  bad "p11kms encrypt/decrypt"
expect_rc "p11kms status --check" 0 -- status --config c.json --check
$py - "$d/audit.log" <<'PY' && ok "the tool's lines name its command" || bad "the tool's lines name its command"
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
got = {(o["function"], o["op"]) for o in lines if o["exe"] == "p11kms"}
for want in (("p11kms encrypt", "encrypt"), ("p11kms decrypt", "decrypt"), ("p11kms status", "describe")):
    assert want in got, (want, got)
PY
# A refused operation is a line too: a file whose wrapped key is damaged.
$py - <<'PY'
b = bytearray(open("data.enc", "rb").read()); hl = b[9] * 256 + b[10]
b[hl - 3] ^= 1; open("bad.enc", "wb").write(b)
PY
"$tool" decrypt --config c.json bad.enc bad.out 2>/dev/null
tail -1 audit.log | grep -q '"op": "decrypt".*"result": "invalid_ciphertext"' && ok "a refusal is recorded with its class" ||
  { bad "a refusal is recorded with its class"; tail -1 audit.log; }

# The revalidation: a consumer (PyKCS11) logged in past revalidate_seconds;
# the sealing key's check is caused by "revalidation", not by a C_ function.
if /usr/bin/python3 -c 'import PyKCS11' 2>/dev/null; then
  sed 's/"pin_kdf_cost": 12/"pin_kdf_cost": 12, "revalidate_seconds": 1/' c.json >reval.json
  env "${san_env[@]}" P11KMS_CONFIG="$d/reval.json" $py - "$module" "$userpin" <<'PY' || bad "the PyKCS11 consumer"
import sys, time, PyKCS11
lib = PyKCS11.PyKCS11Lib(); lib.load(sys.argv[1])
s = lib.openSession(lib.getSlotList(tokenPresent=True)[0],
                    PyKCS11.CKF_SERIAL_SESSION | PyKCS11.CKF_RW_SESSION)
s.login(sys.argv[2])
aes = [(PyKCS11.CKA_CLASS, PyKCS11.CKO_SECRET_KEY), (PyKCS11.CKA_KEY_TYPE, PyKCS11.CKK_AES),
       (PyKCS11.CKA_VALUE_LEN, 32), (PyKCS11.CKA_TOKEN, False)]
for _ in range(6):          # a call that uses keys wakes a due check; the thread runs it
    time.sleep(0.6); s.generateKey(aes, PyKCS11.Mechanism(PyKCS11.CKM_AES_KEY_GEN))
s.logout(); s.closeSession()
PY
  $py - "$d/audit.log" <<'PY' && ok "the revalidation's KMS calls name it as their cause" || bad "no revalidation line"
import json, sys
lines = [json.loads(l) for l in open(sys.argv[1])]
r = [o for o in lines if o["function"] == "revalidation"]
assert r and all(o["op"] == "describe" and o["key_version"] and o["exe"].startswith("python") for o in r), r
assert any(o["function"] == "C_Login" and o["exe"].startswith("python") for o in lines)
PY
else
  echo "# PyKCS11 missing: the revalidation line is not checked"
fi

# Processes writing at once: every line whole.
before=$(wc -l <audit.log)
for w in 1 2 3 4 5 6; do
  ( for _ in 1 2 3 4 5; do "$tool" encrypt --config c.json --slot dev data >/dev/null || exit 1; done ) &
done
wait
n=$(schema_check audit.log) && ok "every line follows the schema ($n lines)" || bad "a line breaks the schema"
[ "$n" = $((before + 30)) ] && ok "30 concurrent encryptions: 30 whole lines" || bad "lines: $n, want $((before + 30))"

# Never a secret: the PINs, the key file's key in any spelling.
$py - "$d/audit.log" "$d/k.key" "$userpin" "$sopin" <<'PY' && ok "no PIN and no key bytes in the audit log" || bad "a secret in the audit log"
import base64, sys
log = open(sys.argv[1], "rb").read()
key = open(sys.argv[2], "rb").read()[-32:]
for s in (key, key.hex().encode(), key.hex().upper().encode(), base64.b64encode(key),
          base64.urlsafe_b64encode(key).rstrip(b"="), key[:8].hex().encode(),
          sys.argv[3].encode(), sys.argv[4].encode()):
    assert s not in log, s
PY

# p11kms audit.
expect_rc "p11kms audit" 0 -- audit --config c.json
[ "$(($(wc -l <out) - 1))" = "$n" ] && head -1 out | grep -q "^TIME" && grep -q "C_Login" out &&
  ok "the table: a header and one row per line" || bad "the table"
expect_rc "p11kms audit --json" 0 -- audit --config c.json --json
cmp -s out audit.log && ok "--json prints the lines" || bad "--json prints the lines"
expect_rc "--since 1h" 0 -- audit --config c.json --json --since 1h
[ "$(wc -l <out)" = "$n" ] && ok "--since 1h: every line" || bad "--since 1h"
expect_rc "--since a future time" 0 -- audit --config c.json --json --since 2099-01-01T00:00:00Z
[ ! -s out ] && ok "--since a future time: no line" || bad "--since a future time"
expect_rc "--since an offset time" 0 -- audit --json --since 2000-01-01T02:00:00.5+02:00 audit.log
[ "$(wc -l <out)" = "$n" ] && ok "--since with an offset, of a FILE" || bad "--since with an offset"
cp audit.log damaged.log
printf '{"time": "nope"}\nnot json\n' >>damaged.log
tail -1 audit.log >>damaged.log
expect_rc "bad lines: exit 1" 1 -- audit --json damaged.log
[ "$(wc -l <out)" = $((n + 1)) ] && grep -q "damaged.log:$((n + 1)): field \"pid\" is missing" err &&
  grep -q "damaged.log:$((n + 2)): not JSON" err && [ "$(wc -l <err)" = 2 ] &&
  ok "bad lines reported by number and skipped, the rest shown" || { bad "bad lines"; cat err; }
expect_rc "a bad --since" 3 -- audit --config c.json --since yesterday
expect_rc "an unknown option" 3 -- audit --bogus
chmod 000 damaged.log
if [ "$(id -u)" != 0 ]; then expect_rc "an unreadable log" 2 -- audit damaged.log; fi
expect_rc "a missing log" 2 -- audit "$d/none.log"

# Refused paths: the module does not start (C_Initialize, file:line).
refused() { # DESC AUDIT_JSON_VALUE WANT_RE
  config "$2"
  expect_rc "$1: a configuration error" 3 -- status --config c.json
  cat module.log err 2>/dev/null | grep -Eq "c.json:2: log.audit: (.* )?($3)" && ok "$1: the log says file:line and why" ||
    { bad "$1: the log says"; cat err; }
}
refused "a relative path" '"audit.log"' "must be an absolute path"
chmod 620 audit.log
refused "a group-writable log" "\"$d/audit.log\"" "group- or world-writable"
chmod 600 audit.log
mkdir adir
refused "a directory" "\"$d/adir\"" "cannot open .* for appending|not a regular file"
if [ "$(id -u)" = 0 ] && getent passwd nobody >/dev/null; then
  ln -s "$d/audit.log" foreign.log && chown -h nobody foreign.log
  refused "a symbolic link owned by another user" "\"$d/foreign.log\"" "symbolic link owned by uid"
fi
config "\"$d/audit.log\""
sz=$(stat -c %s audit.log)
config '"/nonexistent-dir/audit.log"'
expect_rc "a log in a missing directory: a configuration error" 3 -- status --config c.json
expect_rc "p11kms audit needs no write access: it reads log.audit" 2 -- audit --config c.json
config "\"$d/audit.log\""
[ "$(stat -c %s audit.log)" = "$sz" ] && ok "refusals wrote nothing to the log" || bad "refusals wrote to the log"
[ $fails = 0 ] && echo "all audit checks passed" || echo "$fails failed"
exit $((fails > 0))
