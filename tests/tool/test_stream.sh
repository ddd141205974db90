#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# p11kms encrypt / decrypt on the local provider, through the real tool
# (docs/STREAM.md): round trips of every shape, and every kind of bad
# input refused with one line, exit >= 2 and nothing written.
set -uo pipefail
. "$(dirname "$0")/stream_lib.sh"
scratch=$(mktemp -d /tmp/p11kms-stream-XXXXXX)
trap 'rm -rf "$scratch"' EXIT
cd "$scratch" || exit 1

"$tool" create-key-file k1.key >/dev/null && "$tool" create-key-file k2.key >/dev/null || exit 1
conf() { # FILE KEYFILE [NAME]
  printf '{"log": {"level": "info", "destination": "%s/module.log"},\n "providers": [{"name": "%s", "type": "local", "key_file": "%s/%s", "store": "%s/t.db"}]}\n' \
    "$scratch" "${3:-dev}" "$scratch" "$2" "$scratch" >"$1"
}
conf c1.json k1.key
conf c2.json k2.key          # same provider name, another key file
conf c3.json k1.key other    # no provider "dev"

# --- round trips ---------------------------------------------------------
: >empty; printf x >one
head -c 4096 /dev/urandom >seg4k; head -c 4095 /dev/urandom >seg4k-1
head -c 4097 /dev/urandom >seg4k+1; head -c 100000 /dev/urandom >many
head -c 65536 /dev/urandom >seg64k
round_trip "0 bytes" c1.json dev empty
round_trip "1 byte" c1.json dev one
round_trip "exactly one segment (4096 of 4096)" c1.json dev seg4k --segment-size 4096
round_trip "one byte short of a segment" c1.json dev seg4k-1 --segment-size 4096
round_trip "one byte over a segment" c1.json dev seg4k+1 --segment-size 4096
round_trip "many segments (25 of 4096)" c1.json dev many --segment-size 4096
round_trip "exactly one default segment (64 KiB)" c1.json dev seg64k
round_trip "segment size 16, the smallest" c1.json dev many --segment-size 16
round_trip "by slot id" c1.json "$("$tool" status --config c1.json | sed -n 's/^slot \([0-9]*\):.*/\1/p')" one

# 100 MB through pipes (constant memory) and files.
head -c 100000000 /dev/urandom >big
round_trip "100 MB" c1.json dev big
big_sz=$(stat -c %s big)
"$tool" encrypt --config c1.json --slot dev big big.enc 2>/dev/null
segs=$(( (big_sz + 65535) / 65536 ))
want=$(( $(hdr_len big.enc) + big_sz + 16 * segs ))
[ "$(stat -c %s big.enc)" = "$want" ] && ok "100 MB: header + data + one tag per 64 KiB segment" ||
  not_ok "100 MB ciphertext is $(stat -c %s big.enc), want $want"
rss=$( { /usr/bin/time -f %M "$tool" decrypt --config c1.json big.enc >/dev/null; } 2>&1 | tail -1)
[ "${P11KMS_SANITIZE:-0}" = 1 ] || { [ "$rss" -lt 40000 ] && ok "decrypt of 100 MB in constant memory (${rss} KiB)" ||
  not_ok "decrypt of 100 MB used ${rss} KiB"; }
rm -f big big.enc

"$tool" encrypt --config c1.json --slot dev one a.enc && "$tool" encrypt --config c1.json --slot dev one b.enc
cmp -s a.enc b.enc && not_ok "two encryptions differ" || ok "two encryptions differ (fresh data key and nonce prefix)"
[ "$(stat -c %a a.enc)" = 600 ] && ok "output is mode 0600" || not_ok "output mode $(stat -c %a a.enc)"
grep -aq "k1.key" a.enc && ok "the header names the key" || not_ok "the header does not name the key"
"$tool" encrypt --config c1.json --slot dev one same.enc 2>/dev/null
"$tool" decrypt --config c1.json same.enc same.enc && [ "$(cat same.enc)" = x ] &&
  ok "decrypt onto its own input" || not_ok "decrypt onto its own input"

# docs/STREAM.md is enough to read a file: an independent reader (Python,
# the cryptography package) opens the local provider's blob with the key
# file (magic 4, version 1, fingerprint 8, then nonce | ciphertext | tag)
# and the segments with the data key.
if /usr/bin/python3 -c 'import cryptography' 2>/dev/null; then
  "$tool" encrypt --config c1.json --slot dev --segment-size 4096 many ref.enc
  if /usr/bin/python3 - "$scratch/k1.key" ref.enc many <<'EOF'; then
import struct, sys
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
kek = open(sys.argv[1], "rb").read()[-32:]  # the key is a key file's last 32 bytes
f = open(sys.argv[2], "rb").read()
assert f[:8] == b"p11kmsST" and f[8] == 1 and f[11] == 1
hl = struct.unpack(">H", f[9:11])[0]; hdr = f[:hl]
seg = struct.unpack(">I", f[12:16])[0]; prefix = f[16:23]
at = 23
def fld(n):
    global at
    l = int.from_bytes(f[at:at + n], "big"); v = f[at + n:at + n + l]; at += n + l; return v
provider, typ, key_id = fld(1), fld(1), fld(2)
aad = b"p11kms-stream:v1:" + f[11:at]
version, blob = fld(1), fld(2)
assert at == hl and typ == b"local"
dk = AESGCM(kek).decrypt(blob[13:25], blob[25:], aad)
body, out, i = f[hl:], b"", 0
while body:
    chunk, body = body[:seg + 16], body[seg + 16:]
    out += AESGCM(dk).decrypt(prefix + struct.pack(">I", i) + bytes([0 if body else 1]), chunk, hdr)
    i += 1
assert out == open(sys.argv[3], "rb").read()
EOF
    ok "an independent reader of docs/STREAM.md decrypts the file"
  else
    not_ok "an independent reader of docs/STREAM.md does not decrypt the file"
  fi
fi

# --- bad input -------------------------------------------------------------
# A stream of 6 segments of 64 bytes and a short final one.
head -c 400 /dev/urandom >small
"$tool" encrypt --config c1.json --slot dev --segment-size 64 small s.enc || exit 1
"$tool" encrypt --config c1.json --slot dev --segment-size 64 small s2.enc || exit 1
H=$(hdr_len s.enc); S=$((64 + 16)); size=$(stat -c %s s.enc)
seg() { tail -c +$((H + 1 + $1 * S)) s.enc | head -c "$S"; } # segment N of s.enc

# Truncated at every length: each segment boundary, mid-segment, mid-header.
bad_cut=0
for ((L = 0; L < size; L++)); do
  head -c "$L" s.enc >cut
  out=$("$tool" decrypt --config c1.json cut cut.out 2>&1); rc=$?
  if [ $rc -lt 2 ] || [ -e cut.out ] || [ "$(wc -l <<<"$out")" != 1 ]; then
    bad_cut=$((bad_cut + 1)); echo "  cut at $L: exit $rc: $out"
  fi
done
[ $bad_cut = 0 ] && ok "truncated at each of $size lengths: refused" || not_ok "$bad_cut truncations accepted"
head -c $((H + 3 * S)) s.enc >cut3
refused "truncated at a segment boundary names it" "ends after segment 2, without its final segment" c1.json cut3
head -c $((H + 3 * S + 40)) s.enc >cutmid
refused "truncated mid-segment" "segment 3 does not authenticate: the file is truncated" c1.json cutmid
head -c "$H" s.enc >hdronly
refused "header alone" "truncated after its header" c1.json hdronly
head -c 20 s.enc >hdrcut
refused "truncated in the header" "truncated in its header" c1.json hdrcut

# A flipped bit in every byte (bit i % 8 of byte i).
bad_flip=0
mkdir flips
/usr/bin/python3 -c "
b = open('s.enc', 'rb').read()
for i in range(len(b)):
    f = bytearray(b); f[i] ^= 1 << (i % 8); open('flips/%d' % i, 'wb').write(f)"
for ((i = 0; i < size; i++)); do
  out=$("$tool" decrypt --config c1.json "flips/$i" flip.out 2>&1); rc=$?
  if [ $rc -lt 2 ] || [ -e flip.out ] || [ "$(wc -l <<<"$out")" != 1 ]; then
    bad_flip=$((bad_flip + 1)); echo "  flip in byte $i: exit $rc: $out"
  fi
done
[ $bad_flip = 0 ] && ok "a flipped bit in each of $size bytes: refused" || not_ok "$bad_flip flipped bits accepted"

{ head -c "$H" s.enc; seg 0; seg 2; seg 1; seg 3; seg 4; seg 5; seg 6; } >reord
refused "segments reordered" "segment 1 does not authenticate" c1.json reord
{ head -c "$H" s.enc; seg 0; seg 1; seg 1; seg 2; seg 3; seg 4; seg 5; seg 6; } >dup
refused "a segment duplicated" "segment 2 does not authenticate" c1.json dup
{ head -c "$H" s.enc; seg 0; seg 2; seg 3; seg 4; seg 5; seg 6; } >drop
refused "a segment dropped" "segment 1 does not authenticate" c1.json drop
{ head -c "$H" s.enc; seg 0; seg 1; seg 6; } >dropmid
refused "the final segment moved up" "segment 2 does not authenticate" c1.json dropmid
{ head -c "$H" s2.enc; tail -c +$((H + 1)) s.enc; } >swaphdr
refused "a header from another file" "first segment does not authenticate.*header is from another file" c1.json swaphdr
{ cat s.enc; printf 'more'; } >append
refused "data appended" "does not authenticate|after the final segment" c1.json append
head -c 384 /dev/urandom >full6   # 6 full segments: the final one is full
"$tool" encrypt --config c1.json --slot dev --segment-size 64 full6 f6.enc || exit 1
{ cat f6.enc; seg 0; } >append2
refused "a whole segment appended after a full final one" "data after the final segment \(5\)" c1.json append2
{ cat s.enc; seg 0; } >append3
refused "a whole segment appended" "segment 6 does not authenticate" c1.json append3
cat s.enc s2.enc >concat
refused "two files concatenated" "does not authenticate|after the final segment" c1.json concat
head -c 3000 /dev/urandom >random
refused "not a stream" "not a p11kms encrypted file" c1.json random
refused "empty input" "empty input" c1.json empty
/usr/bin/python3 -c "b=bytearray(open('s.enc','rb').read()); b[8]=2; open('v2','wb').write(b)"
refused "a newer format version" "format version 2 is not supported" c1.json v2

# --- configuration and KMS --------------------------------------------------
refused "the wrong key file: names the version the file needs" \
  "provider \"dev\" key .*k1.key version [0-9a-f]+ .*needs that version" c2.json s.enc
refused "a configuration without the provider" "needs provider \"dev\" \(local\)" c3.json s.enc
refused "a missing configuration" "nope.json.*cannot open" "$scratch/nope.json" s.enc
printf '{"providers": [ {"name": "dev", "type": "local", "frob": 1} ]}' >badconf.json
refused "a configuration with an error" "badconf.json:1" badconf.json s.enc
chmod 644 k1.key
refused "a key file the module refuses (mode 0644)" "." c1.json s.enc
chmod 600 k1.key

# Local key rotation: a new key_file, the old one in previous_key_files.
"$tool" create-key-file k3.key >/dev/null
printf '{"log": {"level": "info", "destination": "%s/module.log"},\n "providers": [{"name": "dev", "type": "local", "key_file": "%s/k3.key", "previous_key_files": ["%s/k1.key"], "store": "%s/t.db"}]}\n' \
  "$scratch" "$scratch" "$scratch" "$scratch" >rot.json
"$tool" decrypt --config rot.json s.enc | cmp -s - small && ok "after a local key rotation, the old file decrypts" ||
  not_ok "the old file does not decrypt after a local key rotation"
"$tool" encrypt --config rot.json --slot dev small new.enc && grep -aq k3.key new.enc &&
  cmp -s <("$tool" decrypt --config rot.json new.enc) small && ! "$tool" decrypt --config c1.json new.enc >/dev/null 2>&1 &&
  ok "after a local key rotation, new files need the new key" || not_ok "new files do not need the new key"

# --- encrypt's own errors ---------------------------------------------------
enc_refused() { # DESC WANT_RE WANT_RC ARGS...
  local desc=$1 want=$2 wrc=$3; shift 3
  "$tool" encrypt "$@" >/dev/null 2>e.err; local rc=$?
  if [ $rc = "$wrc" ] && [ "$(wc -l <e.err)" = 1 ] && grep -Eq -- "$want" e.err &&
     [ ! -e nodir/x.enc ] && [ -z "$(find . -name '*.tmp.*')" ]; then ok "$desc"
  else not_ok "$desc (exit $rc)"; sed 's/^/  /' e.err; fi
}
enc_refused "encrypt without --slot" "--slot NAME is required; usage: p11kms encrypt" 3 --config c1.json one
enc_refused "an unknown option" "unknown option --frob; usage" 3 --config c1.json --slot dev --frob one
enc_refused "too many arguments" "too many arguments at c; usage" 3 --config c1.json --slot dev a b c
enc_refused "encrypt to an unknown slot" "no slot \"nope\"" 3 --config c1.json --slot nope one x.enc
enc_refused "encrypt of a missing input" "missing: No such file" 2 --config c1.json --slot dev missing x.enc
enc_refused "encrypt into a missing folder" "cannot create" 2 --config c1.json --slot dev one nodir/x.enc
enc_refused "a segment size out of range" "--segment-size" 3 --config c1.json --slot dev --segment-size 15 one
enc_refused "encrypt with a missing configuration" "cannot open" 3 --config nope.json --slot dev one x.enc
[ ! -e x.enc ] && ok "no output after refusals" || not_ok "x.enc was written"

# --- help and progress --------------------------------------------------------
"$tool" encrypt --help | grep -q '^usage: p11kms encrypt --slot NAME' && ok "encrypt --help" || not_ok "encrypt --help"
"$tool" help decrypt | grep -q 'key version' && ok "help decrypt" || not_ok "help decrypt"
head -c 20000000 /dev/zero >zeros
/usr/bin/python3 - "$tool" <<'EOF' && ok "progress on a terminal" || not_ok "no progress on a terminal"
import os, pty, subprocess, sys
m, s = pty.openpty()
p = subprocess.run([sys.argv[1], "encrypt", "--config", "c1.json", "--slot", "dev", "zeros", "z.enc"],
                   stderr=s, stdout=subprocess.DEVNULL)
os.close(s)
out = b""
try:
    while True:
        d = os.read(m, 4096)
        if not d:
            break
        out += d
except OSError:
    pass
sys.exit(0 if p.returncode == 0 and b"MiB" in out else 1)
EOF
"$tool" decrypt --config c1.json z.enc 2>p.err | cmp -s - zeros && [ ! -s p.err ] &&
  ok "no progress when stderr is not a terminal" || not_ok "progress written to a non-terminal"

echo "$passes passed, $fails failed"
[ $fails = 0 ]
