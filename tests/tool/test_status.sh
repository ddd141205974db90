#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# p11kms status through the real binary on the local provider: the checks
# C_Initialize makes (a key file with loose permissions is a configuration
# error, exit 3), the --json schema "p11kms-status/1", and --check's exit
# codes: 0 fine, 1 when rotation is due (a key file back-dated 100 days)
# or a reseal is pending (a new key_file, the old one previous), 0 again
# after p11kms rewrap.
set -uo pipefail
. "$(dirname "$0")/tool_lib.sh"
d=$(mktemp -d /tmp/p11kms-status-XXXXXX)
trap 'rm -rf "$d"' EXIT
config() { # KEY_FILE [PREVIOUS]
  local prev=""
  [ -n "${2:-}" ] && prev=", \"previous_key_files\": [\"$2\"]"
  cat >"$d/c.json" <<JSON
{"log": {"destination": "$d/log"}, "providers": [{"name": "dev", "type": "local",
 "key_file": "$1"$prev, "store": "$d/s.db", "pin_kdf_cost": 12, "rotation_age_days": 90}]}
JSON
}
# A 48-byte key file made DAYS ago (the format p11kms create-key-file writes).
old_key_file() { # PATH DAYS
  $py - "$1" "$2" <<'PY'
import os, struct, sys, time
path, days = sys.argv[1], int(sys.argv[2])
body = b"P1KK" + bytes([1, 0, 0, 0]) + struct.pack(">Q", int(time.time()) - days * 86400) + os.urandom(32)
fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
os.write(fd, body); os.close(fd)
PY
}
schema_check() { # FILE: the documented shape, field by field
  $py - "$1" <<'PY'
import json, sys
o = json.load(open(sys.argv[1]))
assert o["schema"] == "p11kms-status/1", o
assert o["status"] in ("ok", "warning", "critical", "usage_error")
assert isinstance(o["exit"], int) and isinstance(o["checked"], bool) and isinstance(o["config"], str)
for s in o["slots"]:
    for k, t in (("slot_id", int), ("name", str), ("type", str), ("login", str), ("store", str), ("status", str)):
        assert isinstance(s[k], t), (k, s)
    assert s["login"] in ("required", "optional") and s["status"] in ("ok", "warning", "critical")
    if s.get("initialized"):
        assert s["seal_policy"] in ("any", "all")
        assert isinstance(s["objects"], int) and isinstance(s["label"], str)
        for r in s["seals"]:
            for k, t in (("provider", str), ("key_id", str), ("key_version", str), ("created", str), ("age_days", int)):
                assert isinstance(r[k], t), (k, r)
        assert all(p in ("so", "user") for p in s["pin_roles"])
        for k in s.get("keys", []):
            assert k["state"] in ("enabled", "disabled", "pending_deletion", "destroyed", "unknown", "error")
            assert isinstance(k["rotation_due"], bool) and isinstance(k["reseal_pending"], bool)
            assert ("current_version" in k) != ("error" in k), k
print(json.dumps([s["status"] for s in o["slots"]]))
PY
}

old_key_file "$d/k1" 100
config "$d/k1"
expect_rc "no token yet: fine" 0 -- status --config "$d/c.json" --check
env "${san_env[@]}" P11KMS_CONFIG="$d/c.json" pkcs11-tool --module "$module" --init-token --label lab \
  --so-pin 12345678 >/dev/null 2>&1 || bad "pkcs11-tool --init-token"
expect_rc "offline status of a token" 0 -- status --config "$d/c.json"
grep -q 'kms seal: provider "dev"' "$d/out" && ok "the seal is shown" || bad "the seal is shown"
expect_rc "a 100-day-old key: rotation due" 1 -- status --config "$d/c.json" --check --json
if schema_check "$d/out" >/dev/null; then ok "--json follows the schema"; else bad "--json follows the schema"; cat "$d/out"; fi
$py -c 'import json,sys; o=json.load(open(sys.argv[1])); k=o["slots"][0]["keys"][0]; assert k["rotation_due"] and not k["reseal_pending"] and o["exit"]==1' "$d/out" \
  && ok "rotation_due names the key" || bad "rotation_due names the key"

# Rotate: a fresh key file first, the old one previous: a reseal is pending.
"$tool" create-key-file "$d/k2" >/dev/null
config "$d/k2" "$d/k1"
expect_rc "after a rotation: reseal pending" 1 -- status --config "$d/c.json" --check --json
$py -c 'import json,sys; k=json.load(open(sys.argv[1]))["slots"][0]["keys"][0]; assert k["reseal_pending"] and not k["rotation_due"], k' "$d/out" \
  && ok "reseal_pending, and the new key is not due" || bad "reseal_pending, and the new key is not due"
expect_rc "rewrap" 0 -- rewrap --config "$d/c.json"
expect_rc "after rewrap: fine" 0 -- status --config "$d/c.json" --check
grep -q "status: ok" "$d/out" && ok "the slot says ok" || bad "the slot says ok"

# What C_Initialize refuses, status refuses: a key file readable by others.
chmod 0644 "$d/k2"
expect_rc "a loose key file is a configuration error" 3 -- status --config "$d/c.json" --check
grep -q "does not start with this configuration" "$d/err" && ok "and says so" || bad "and says so"
chmod 0600 "$d/k2"
expect_rc "an unknown slot is a usage error" 3 -- status --config "$d/c.json" --slot nope
expect_rc "an unknown option is a usage error" 3 -- status --bogus
[ $fails = 0 ] && echo "all status checks passed" || echo "$fails failed"
exit $((fails > 0))
