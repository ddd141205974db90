#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# The backup semantics on the local provider (docs/BACKUP.md), through the
# real tool and the module as pkcs11-tool loads it, every result read from
# --json and checked against the documented schemas (p11kms-backup/1,
# -verify-backup/1, -restore/1, -rewrap/1, -rekey/1): snapshot 1 under key
# file version 1 -> rotate (a new key_file, the old one in
# previous_key_files) -> rewrap -> snapshot 2 under version 2 -> retire
# version 1 (no longer listed): verify-backup and restore of snapshot 1
# refuse naming version 1 and change nothing; snapshot 2 restores with
# every object intact; version 1 listed again: snapshot 1 restores. The
# same for files made by p11kms encrypt before and after the rotation.
set -uo pipefail
. "$(dirname "$0")/tool_lib.sh"
d=$(mktemp -d /tmp/p11kms-bklocal-XXXXXX)
trap 'rm -rf "$d"' EXIT
cd "$d" || exit 1
pin=pin-4455667788
export PIN=$pin WRONG_PIN=not-the-pin-0000
config() { # KEY_FILE [PREVIOUS]
  local prev=""
  [ -n "${2:-}" ] && prev=", \"previous_key_files\": [\"$2\"]"
  cat >"$d/c.json" <<JSON
{"log": {"destination": "$d/module.log"}, "providers": [{"name": "dev", "type": "local",
 "key_file": "$1"$prev, "store": "$d/s.db", "pin_kdf_cost": 12}]}
JSON
}
p11() { env "${san_env[@]}" P11KMS_CONFIG="$d/c.json" pkcs11-tool --module "$module" "$@" 2>&1; }
# schema FILE: the documented shape of each command's --json (docs/BACKUP.md,
# p11kms(1)); prints "status exit".
schema() {
  $py - "$1" <<'PY'
import json, sys
o = json.load(open(sys.argv[1]))
def t(obj, k, ty, null=False):
    v = obj[k]
    assert (null and v is None) or isinstance(v, ty), (k, v)
cmd = o["schema"].removeprefix("p11kms-").removesuffix("/1")
assert o["schema"] == "p11kms-%s/1" % cmd and cmd in ("backup", "verify-backup", "restore", "rewrap", "rekey"), o
assert (o["status"], o["exit"]) in (("ok", 0), ("warning", 1), ("failed", 2), ("usage_error", 3)), o
if cmd != "rewrap":
    t(o, "error", str, null=True)
    assert (o["error"] is None) == (o["exit"] < 2), o
if cmd == "backup" and o["exit"] < 3:
    t(o, "slot", str); t(o, "path", str)
    m = o["manifest"]
    if o["exit"] == 0:
        assert m["format"] == 1 and isinstance(m["made"], str) and isinstance(m["made_unix"], int)
        t(m, "slot", str); t(m, "slot_id", int); t(m, "objects", int)
        assert m["seal_policy"] in ("any", "all") and m["token"]["login"] in ("required", "optional")
        for k in ("uuid", "label"): t(m["token"], k, str)
        for s in m["seals"]:
            for k in ("provider", "key_id", "key_version"): t(s, k, str)
            t(s, "created", int)
    else:
        assert m is None
if cmd in ("verify-backup", "restore") and o["exit"] < 3:
    t(o, "path", str)
    for k in ("slot", "made", "uuid", "label", "seal_policy"): t(o, k, str, null=True)
    for k in ("manifest_matches", "kms_layer_opens", "token_key_seal_ok"): t(o, k, bool)
    for s in o["seals"]:
        for k in ("provider", "key_id", "key_version"): t(s, k, str)
        for k in ("configured", "accessible"): t(s, k, bool)
        t(s, "current", bool, null=True)
        assert s["state"] in (None, "enabled", "disabled", "pending_deletion", "destroyed", "unknown"), s
        for k in ("current_version", "describe_error", "error"): t(s, k, str, null=True)
        assert (s["error"] is None) == s["accessible"], s
    r = o["records"]
    assert r is None or (isinstance(r["total"], int) and isinstance(r["ok"], int)), r
    if cmd == "restore":
        t(o, "restored_to", str, null=True); t(o, "kept_as", str, null=True)
        assert (o["restored_to"] is not None) == (o["exit"] == 0), o
if cmd == "rewrap":
    for s in o["slots"]:
        t(s, "slot_id", int); t(s, "name", str)
        for k in ("initialized", "resealed", "current"): t(s, k, bool)
        for k in ("reason", "key_id", "key_version"): t(s, k, str, null=True)
        assert all(isinstance(e, str) for e in s["errors"]) and s["current"] == (not s["errors"]), s
if cmd == "rekey":
    t(o, "slot_id", int, null=True); t(o, "name", str); t(o, "rekeyed", bool)
    t(o, "records", int, null=True)
    assert o["rekeyed"] == (o["exit"] == 0)
print(o["status"], o["exit"])
PY
}
# j DESC WANT_EXIT -- ARGS: run with --json, check exit, schema and stderr.
j() {
  local desc=$1 want=$2; shift 3
  "$tool" "$@" --json >out.json 2>err; local rc=$?
  local got; got=$(schema out.json 2>&1)
  if [ "$rc" = "$want" ] && [ "${got##* }" = "$want" ] &&
     { [ "$rc" -lt 2 ] && [ ! -s err ] || [ "$(wc -l <err)" = 1 ]; }; then ok "$desc"
  else bad "$desc (exit $rc, want $want; schema: $got)"; sed 's/^/  /' out.json err; fi
}
q() { $py -c "import json,sys; o=json.load(open('out.json')); print(eval(sys.argv[1]))" "$1"; }
fp() { "$tool" status --config c.json --json | $py -c 'import json,sys; print(json.load(sys.stdin)["slots"][0]["seals"][0]["key_version"])'; }
labels() { p11 --login --pin "$pin" --list-objects --type secrkey | sed -n 's/^ *label: *//p' | sort | tr '\n' ' '; }

"$tool" create-key-file k1.key >/dev/null && "$tool" create-key-file k2.key >/dev/null || exit 1
config "$d/k1.key"
p11 --init-token --label bk --so-pin 12345678 >/dev/null || bad "init-token"
p11 --init-pin --so-pin 12345678 --pin "$pin" --login --login-type so >/dev/null || bad "init-pin"
for l in one two; do p11 --login --pin "$pin" --keygen --key-type AES:32 --label "$l" >/dev/null || bad "keygen $l"; done
v1=$(fp)
head -c 70000 /dev/urandom >data
"$tool" encrypt --config c.json --slot dev data f1.enc || bad "encrypt under version 1"

j "backup: snapshot 1" 0 -- backup --config c.json --slot dev snap1.db
[ "$(q 'o["manifest"]["seals"][0]["key_version"]')" = "$v1" ] && [ "$(q 'o["manifest"]["objects"]')" = 2 ] &&
  ok "snapshot 1's manifest names version 1 and 2 objects" || bad "snapshot 1's manifest"
[ "$(stat -c %a snap1.db)" = 600 ] && ok "the backup is mode 0600" || bad "backup mode"
j "verify-backup of snapshot 1 with the PIN" 0 -- verify-backup --config c.json --pin-env PIN snap1.db
[ "$(q 'o["records"]["ok"]')" = 2 ] && [ "$(q 'o["seals"][0]["current"]')" = True ] &&
  ok "every record opens; version 1 is current" || bad "verify-backup's findings"

# Rotate, then rewrap: the seals move to version 2.
config "$d/k2.key" "$d/k1.key"
p11 --login --pin "$pin" --keygen --key-type AES:32 --label three >/dev/null || bad "keygen three"
j "rewrap after the rotation" 0 -- rewrap --config c.json
v2=$(fp)
[ "$v2" != "$v1" ] && [ "$(q 'o["slots"][0]["key_version"]')" = "$v2" ] &&
  ok "rewrap's result names version 2" || bad "rewrap did not move to version 2 ($v1 -> $v2)"
j "rewrap again: already current" 0 -- rewrap --config c.json --slot dev
[ "$(q 'o["slots"][0]["resealed"]')" = False ] && ok "nothing more to reseal" || bad "resealed twice"
"$tool" encrypt --config c.json --slot dev data f2.enc || bad "encrypt under version 2"
grep -aq "$v2" f2.enc && ok "the new file names version 2" || bad "the new file does not name version 2"
j "backup: snapshot 2" 0 -- backup --config c.json --slot dev snap2.db
[ "$(q 'o["manifest"]["seals"][0]["key_version"]')" = "$v2" ] && ok "snapshot 2's manifest names version 2" ||
  bad "snapshot 2's manifest"
j "snapshot 1 while version 1 is still listed: a warning" 1 -- verify-backup --config c.json snap1.db
[ "$(q 'o["seals"][0]["current"]')" = False ] && ok "version 1 is not current" || bad "version 1 is current?"

# Retire version 1.
config "$d/k2.key"
sum1=$(sha256sum snap1.db | cut -c1-64); live=$(sha256sum s.db | cut -c1-64)
j "version 1 retired: verify-backup of snapshot 1 refuses" 2 -- verify-backup --config c.json snap1.db
grep -q "$v1" err && ok "and names version 1" || { bad "the refusal names version 1"; cat err; }
[ "$(q 'o["seals"][0]["accessible"]')" = False ] && ok "the seal is not accessible" || bad "accessible?"
j "version 1 retired: restore of snapshot 1 refuses" 2 -- restore --config c.json --force snap1.db --slot dev
grep -q "$v1" err && [ "$(q 'o["restored_to"]')" = None ] && ok "naming version 1, restoring nothing" ||
  { bad "restore's refusal"; cat err; }
[ "$(sha256sum snap1.db | cut -c1-64)" = "$sum1" ] && [ "$(sha256sum s.db | cut -c1-64)" = "$live" ] &&
  ! ls s.db.replaced-* >/dev/null 2>&1 && ok "neither file changed" || bad "a refused restore changed something"
"$tool" decrypt --config c.json f1.enc f1.out 2>err; rc=$?
[ $rc = 2 ] && grep -q "$v1" err && [ ! -e f1.out ] && ok "the file made under version 1 is refused, naming it" ||
  { bad "decrypt of the version 1 file (exit $rc)"; cat err; }
"$tool" decrypt --config c.json f2.enc | cmp -s - data && ok "the file made under version 2 decrypts" ||
  bad "the version 2 file"

# Snapshot 2 restores, every object intact.
p11 --login --pin "$pin" --keygen --key-type AES:32 --label after-snap2 >/dev/null
j "restore of snapshot 2" 0 -- restore --config c.json --force --pin-env PIN snap2.db --slot dev
kept=$(q 'o["kept_as"]')
[ -f "$kept" ] && [ "$(q 'o["restored_to"]')" = "$d/s.db" ] && ok "restored; the old store kept as $(basename "$kept")" ||
  bad "restore's result"
[ "$(labels)" = "one three two " ] && ok "every object of snapshot 2, none after it" || bad "objects: $(labels)"

# Version 1 listed again: snapshot 1 restores (and the old file decrypts).
config "$d/k2.key" "$d/k1.key"
j "version 1 back: verify-backup of snapshot 1" 1 -- verify-backup --config c.json --pin-env PIN snap1.db
j "version 1 back: restore of snapshot 1" 0 -- restore --config c.json --force snap1.db --slot dev
[ "$(labels)" = "one two " ] && ok "snapshot 1's objects" || bad "objects: $(labels)"
"$tool" decrypt --config c.json f1.enc | cmp -s - data && ok "the version 1 file decrypts again" ||
  bad "the version 1 file after re-listing"

# rekey, and the JSON of failures.
j "rekey" 0 -- rekey --config c.json --slot dev --pin-env PIN
[ "$(labels)" = "one two " ] && ok "after rekey every object opens" || bad "objects after rekey: $(labels)"
j "rekey of an unknown slot" 3 -- rekey --config c.json --slot nope --pin-env PIN
j "rekey with a wrong PIN" 2 -- rekey --config c.json --slot dev --pin-env WRONG_PIN
j "backup of an unknown slot" 3 -- backup --config c.json --slot nope x.db
j "verify-backup of a file that is no backup" 2 -- verify-backup --config c.json data
j "restore onto the live store" 2 -- restore --config c.json s.db --slot dev
j "rewrap with a missing configuration" 3 -- rewrap --config none.json
[ ! -e x.db ] && ok "no file written by the refusals" || bad "x.db written"
[ $fails = 0 ] && echo "all local backup checks passed" || echo "$fails failed"
exit $((fails > 0))
