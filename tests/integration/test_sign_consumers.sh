#!/usr/bin/env bash
# SPDX-License-Identifier: Apache-2.0
# KMS signing keys (docs/SIGNING.md) through real PKCS#11 consumers, on the
# `local` provider: an RSA 2048 and an EC P-256 PEM key file configured as
# "rsa" and "ec" keys, each with a "certificate" (made by plain openssl from
# the key file). Every signature made through the module is verified by
# software that never sees the module (plain openssl with the key file's
# public key, or Java's default providers), and a tampered message or
# signature must fail.
#
# Usage: test_sign_consumers.sh openssl|pkcs11-tool|java
#   openssl      libp11's engine: dgst -sign (RSA, EC), the public key the
#                module exports equals the key file's, req -x509 makes a
#                self-signed certificate that verifies, s_server serves TLS
#                1.3 and TLS 1.2 (RSA-PSS, RSA PKCS #1 v1.5 with a DigestInfo,
#                ECDSA) to s_client -verify_return_error.
#   pkcs11-tool  OpenSC: --list-objects shows the private key, public key and
#                certificate of each; --sign/--verify with SHA256-RSA-PKCS-PSS,
#                RSA-PKCS-PSS, SHA256-RSA-PKCS, ECDSA-SHA256 and ECDSA (a
#                32-byte digest), each also verified by openssl.
#   java         Java 17 SunPKCS11 (java/SignConsumer.java): the KeyStore's
#                PrivateKeyEntry of each alias signs SHA256withRSA, RSASSA-PSS
#                and SHA256withECDSA; the default providers verify.
#
# Environment (set by ctest): P11KMS_MODULE, P11KMS_TOOL, P11KMS_SANITIZE.
set -euo pipefail
part=${1:?usage: test_sign_consumers.sh openssl|pkcs11-tool|java}

need=(openssl pkcs11-tool)
case "$part" in
  openssl) ;;
  pkcs11-tool) need+=(/usr/bin/python3) ;;
  java) need+=(java javac) ;;
  *) echo "usage: $0 openssl|pkcs11-tool|java" >&2; exit 2 ;;
esac
for c in "${need[@]}"; do
  command -v "$c" >/dev/null || { echo "SKIP: $c is not installed" >&2; exit 77; }
done
engine_dir=$(openssl version -e | sed -n 's/^ENGINESDIR: "\(.*\)"$/\1/p')
if [ "$part" = openssl ] && [ ! -e "$engine_dir/pkcs11.so" ]; then
  echo "SKIP: libp11's engine ($engine_dir/pkcs11.so, libengine-pkcs11-openssl) is not installed" >&2
  exit 77
fi

here=$(cd "$(dirname "$0")" && pwd)
# The JVM handles SIGSEGV itself (safepoints, implicit null checks).
. "$here/consumer_token.sh"
consumer_token sign required handle_segv=0:allow_user_segv_handler=1
TOK=sign-tok

failures=()
fail() {
  echo "FAIL: $1" >&2
  [ -n "${2:-}" ] && printf '%s\n' "$2" | sed 's/^/      | /' >&2
  failures+=("$1")
}
ok() { echo "   ok: $*"; }
check() { echo "-- $*"; }
# q CMD...: run a consumer (bounded); output in $OUT, status in $RC.
q() {
  set +e
  OUT=$(timeout 120 env "${SAN_ENV[@]}" "$@" 2>&1)
  RC=$?
  set -e
  if grep -Eq 'ERROR: AddressSanitizer|runtime error:' <<<"$OUT"; then
    fail "sanitizer report in: $*" "$OUT"
    RC=99
  fi
}
need_ok() { [ "$RC" -eq 0 ] || { fail "$1 (exit $RC)" "$OUT"; return 1; }; }
need_out() { grep -Eq -- "$2" <<<"$OUT" || { fail "$1: output lacks /$2/" "$OUT"; return 1; }; }
need_err() { [ "$RC" -ne 0 ] || { fail "$1: succeeded but should have failed" "$OUT"; return 1; }; }
hexid() { printf '%s' "$1" | od -An -v -tx1 | tr -d ' \n'; }
# flip FILE OUT: OUT is FILE with one bit of its middle byte flipped.
flip() {
  /usr/bin/python3 -c 'import sys; b = bytearray(open(sys.argv[1], "rb").read()); b[len(b) // 2] ^= 1
open(sys.argv[2], "wb").write(b)' "$1" "$2"
}

check "key files (mode 0600) and certificates made by openssl from them"
K=$work/keys
mkdir -m 0700 "$K"
openssl genpkey -algorithm RSA -pkeyopt rsa_keygen_bits:2048 -out "$K/rsa.pem" 2>/dev/null
openssl genpkey -algorithm EC -pkeyopt ec_paramgen_curve:P-256 -out "$K/ec.pem" 2>/dev/null
chmod 600 "$K/rsa.pem" "$K/ec.pem"
for k in rsa ec; do
  openssl pkey -in "$K/$k.pem" -pubout -out "$K/$k.pub"
  openssl req -new -x509 -key "$K/$k.pem" -subj "/CN=p11kms $k signer" -days 30 -sha256 \
    -out "$K/$k.crt" 2>/dev/null
done
/usr/bin/python3 - "$P11KMS_CONFIG" "$K" <<'PY'
import json, sys
path, k = sys.argv[1], sys.argv[2]
cfg = json.load(open(path))
cfg["providers"][0]["keys"] = [
    {"id": k + "/rsa.pem", "label": "rsa", "type": "rsa", "certificate": k + "/rsa.crt"},
    {"id": k + "/ec.pem", "label": "ec", "type": "ec", "certificate": k + "/ec.crt"}]
json.dump(cfg, open(path, "w"), indent=1)
PY
ok "rsa (2048) and ec (P-256) configured, each with its certificate"
RSA_ID=$(hexid "$K/rsa.pem") EC_ID=$(hexid "$K/ec.pem")
head -c 10000 /dev/urandom >"$work/msg"
openssl dgst -sha256 -binary "$work/msg" >"$work/msg.sha256"
flip "$work/msg" "$work/msg.bad"

part_openssl() {
  cat >"$work/openssl.cnf" <<CNF
openssl_conf = openssl_init
[openssl_init]
engines = engine_section
[engine_section]
pkcs11 = pkcs11_section
[pkcs11_section]
engine_id = pkcs11
MODULE_PATH = $P11KMS_MODULE
init = 0
CNF
  export OPENSSL_CONF=$work/openssl.cnf
  local k uri pub ps v sig port srv
  for k in rsa ec; do
    uri="pkcs11:token=$TOK;object=$k"
    pub=$work/$k.p11.pub
    check "$k: the public key the engine exports equals the key file's"
    q openssl pkey -engine pkcs11 -inform engine -pubin -in "$uri;type=public" -pubout -out "$pub"
    need_ok "$k: openssl pkey -engine pkcs11 -pubin" &&
      { cmp -s "$pub" "$K/$k.pub" && ok "identical to openssl pkey -pubout of the key file" ||
        fail "$k: the module's public key differs from the key file's" "$(cat "$pub")"; }

    check "$k: openssl dgst -sha256 -sign through the engine, verified by plain openssl"
    rm -f "$work/$k.sig"
    q openssl dgst -sha256 -sign "$uri;type=private;pin-value=$pin" -engine pkcs11 -keyform engine \
      -out "$work/$k.sig" "$work/msg"
    if need_ok "$k: openssl dgst -sign through the engine"; then
      q openssl dgst -sha256 -verify "$K/$k.pub" -signature "$work/$k.sig" "$work/msg"
      need_ok "$k: verify with the key file's public key" && need_out "$k: verify" '^Verified OK' &&
        ok "Verified OK with the key file's public key"
      if [ -s "$pub" ]; then
        q openssl dgst -sha256 -verify "$pub" -signature "$work/$k.sig" "$work/msg"
        need_ok "$k: verify with the exported public key" && ok "Verified OK with the exported public key"
      fi
      q openssl dgst -sha256 -verify "$K/$k.pub" -signature "$work/$k.sig" "$work/msg.bad"
      need_err "$k: a tampered message verifies" && need_out "$k: tampered" 'Verification failure' &&
        ok "a message with one bit flipped fails to verify"
    fi

    check "$k: openssl req -new -x509 through the engine: a self-signed certificate"
    rm -f "$work/$k.engine.crt"
    q openssl req -new -x509 -engine pkcs11 -keyform engine -key "$uri;type=private;pin-value=$pin" \
      -subj "/CN=$k.p11kms.test" -days 30 -sha256 -out "$work/$k.engine.crt"
    if need_ok "$k: openssl req -x509 through the engine"; then
      q openssl verify -CAfile "$work/$k.engine.crt" "$work/$k.engine.crt"
      need_ok "$k: openssl verify" && need_out "$k: verify" ': OK$' && ok "openssl verify: OK"
      q openssl x509 -in "$work/$k.engine.crt" -noout -pubkey
      [ "$OUT" = "$(cat "$K/$k.pub")" ] && ok "the certificate's public key is the key file's" ||
        fail "$k: the certificate's public key is not the key file's" "$OUT"
    fi

    check "$k: openssl s_server with the engine key, s_client verifies the handshake"
    if [ -s "$work/$k.engine.crt" ]; then
      # -accept 0: the kernel picks a free port, which s_server prints.
      # Three handshakes: TLS 1.3, TLS 1.2 with each signature scheme below.
      srv=$work/$k.s_server.out
      env "${SAN_ENV[@]}" timeout 120 openssl s_server -engine pkcs11 -keyform engine \
        -key "$uri;type=private;pin-value=$pin" -cert "$work/$k.engine.crt" \
        -accept 0 -naccept 3 -www >"$srv" 2>&1 &
      local spid=$!
      port=
      for _ in $(seq 1 100); do
        port=$(sed -n 's/^ACCEPT .*:\([0-9][0-9]*\)$/\1/p' "$srv")
        [ -n "$port" ] && break
        kill -0 $spid 2>/dev/null || break
        sleep 0.1
      done
      if [ -z "$port" ]; then
        fail "$k: s_server did not start" "$(cat "$srv")"
      else
        if [ $k = rsa ]; then
          ps="RSA-PSS:TLSv1.3:" # TLS 1.3 signs with RSA-PSS: CKM_RSA_PKCS_PSS
          ps+=" RSA-PSS:TLSv1.2:rsa_pss_rsae_sha256"
          ps+=" RSA:TLSv1.2:rsa_pkcs1_sha256" # PKCS #1 v1.5: CKM_RSA_PKCS with a DigestInfo
        else
          ps="ECDSA:TLSv1.3: ECDSA:TLSv1.2:ecdsa_secp256r1_sha256"
        fi
        for v in $ps; do
          local want=${v%%:*} rest=${v#*:} proto sigalgs
          proto=${rest%%:*} sigalgs=${rest#*:}
          local args=(-connect "127.0.0.1:$port" -verify_return_error -CAfile "$work/$k.engine.crt")
          [ "$proto" = TLSv1.2 ] && args+=(-tls1_2) || args+=(-tls1_3)
          [ -n "$sigalgs" ] && args+=(-sigalgs "$sigalgs")
          set +e
          OUT=$(echo | timeout 60 env "${SAN_ENV[@]}" openssl s_client "${args[@]}" 2>&1)
          RC=$?
          set -e
          need_ok "$k: s_client $proto ${sigalgs:-}" &&
            need_out "$k: $proto handshake" "^New, $proto, Cipher is" &&
            need_out "$k: verify" 'Verify return code: 0 \(ok\)' &&
            need_out "$k: peer signature" "^Peer signature type: $want\$" &&
            ok "$proto ${sigalgs:+($sigalgs) }handshake, peer signature $want, Verify return code: 0 (ok)"
        done
      fi
      kill $spid 2>/dev/null || true
      wait $spid 2>/dev/null || true
    else
      fail "$k: no certificate from the engine, so no TLS server"
    fi
  done
}

part_pkcs11_tool() {
  local p11=(pkcs11-tool --module "$P11KMS_MODULE")
  check "--list-objects: private key, public key and certificate of each key"
  q "${p11[@]}" --list-objects
  if need_ok "list objects"; then
    local k t blk
    for k in rsa ec; do
      for t in "Private Key Object" "Public Key Object" "Certificate Object"; do
        blk=$(awk -v t="$t" -v l="$k" '/Object/ { hit = index($0, t) == 1 } hit && $0 ~ "label: +" l "$" { n++ }
          END { print n + 0 }' <<<"$OUT")
        [ "$blk" = 1 ] && ok "$k: one $t" || fail "$k: $blk ${t}s labelled $k" "$OUT"
      done
    done
    need_out "RSA private key type" 'Private Key Object; RSA' && need_out "EC private key type" 'Private Key Object; EC'
  fi

  # pkcs11-tool 0.23 picks the key to --sign/--verify by --id only (it
  # ignores --label there): the keys are named by id.
  local PSS=(--hash-algorithm SHA256 --mgf MGF1-SHA256 --salt-len 32)
  local cases=(
    "rsa|SHA256-RSA-PKCS-PSS|msg||-sha256 -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:32"
    "rsa|RSA-PKCS-PSS|msg.sha256|pss|-sha256 -sigopt rsa_padding_mode:pss -sigopt rsa_pss_saltlen:32"
    "rsa|SHA256-RSA-PKCS|msg||-sha256"
    "ec|ECDSA-SHA256|msg||-sha256"
    "ec|ECDSA|msg.sha256||")
  local c k m in opts vopts id sig extra
  for c in "${cases[@]}"; do
    IFS='|' read -r k m in opts vopts <<<"$c"
    id=$RSA_ID
    [ $k = ec ] && id=$EC_ID
    extra=()
    [ "$opts" = pss ] && extra=("${PSS[@]}")
    sig=$work/$m.sig
    check "$k: pkcs11-tool --sign/--verify -m $m${extra:+ ${extra[*]}} (input: $in)"
    rm -f "$sig"
    q "${p11[@]}" --login --pin "$pin" --sign --id "$id" -m "$m" "${extra[@]}" -i "$work/$in" -o "$sig"
    need_ok "$k: sign -m $m" || continue
    q "${p11[@]}" --login --pin "$pin" --verify --id "$id" -m "$m" "${extra[@]}" -i "$work/$in" \
      --signature-file "$sig"
    need_ok "$k: verify -m $m" && need_out "$k: verify -m $m" 'Signature is valid' &&
      ok "pkcs11-tool --verify: Signature is valid"
    flip "$sig" "$sig.bad"
    q "${p11[@]}" --login --pin "$pin" --verify --id "$id" -m "$m" "${extra[@]}" -i "$work/$in" \
      --signature-file "$sig.bad"
    # pkcs11-tool 0.23 exits 0 after "Invalid signature": the output says.
    if grep -q 'Signature is valid' <<<"$OUT" || ! grep -Eq 'Invalid signature|CKR_SIGNATURE_(INVALID|LEN_RANGE)' <<<"$OUT"; then
      fail "$k: a signature with a bit flipped is not refused (-m $m)" "$OUT"
    else
      ok "a flipped bit is refused (C_Verify: CKR_SIGNATURE_INVALID)"
    fi
    if [ $k = ec ]; then
      # PKCS #11's r || s to DER, which openssl reads.
      /usr/bin/python3 -c 'import sys
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
b = open(sys.argv[1], "rb").read(); n = len(b) // 2
assert len(b) == 64, "r||s of P-256 is 64 bytes, not %d" % len(b)
open(sys.argv[2], "wb").write(encode_dss_signature(int.from_bytes(b[:n], "big"), int.from_bytes(b[n:], "big")))' \
        "$sig" "$sig.der" || { fail "$k: -m $m's signature is not 64-byte r||s"; continue; }
      sig=$sig.der
    fi
    if [ "$in" = msg ]; then
      q openssl dgst $vopts -verify "$K/$k.pub" -signature "$sig" "$work/msg"
    else # a digest: pkeyutl verifies it as given
      q openssl pkeyutl -verify -pubin -inkey "$K/$k.pub" -in "$work/msg.sha256" -sigfile "$sig" \
        -pkeyopt digest:sha256 ${vopts:+-pkeyopt rsa_padding_mode:pss -pkeyopt rsa_pss_saltlen:32}
    fi
    need_ok "$k: openssl verifies -m $m with the key file's public key" &&
      ok "openssl verifies it with the key file's public key"
  done

  check "ec: --signature-format openssl gives DER that openssl verifies"
  rm -f "$work/ecdsa.der"
  q "${p11[@]}" --login --pin "$pin" --sign --id "$EC_ID" -m ECDSA-SHA256 --signature-format openssl \
    -i "$work/msg" -o "$work/ecdsa.der"
  if need_ok "ec: sign ECDSA-SHA256 --signature-format openssl"; then
    q openssl dgst -sha256 -verify "$K/ec.pub" -signature "$work/ecdsa.der" "$work/msg"
    need_ok "ec: openssl verifies the DER signature" && ok "Verified OK"
    q openssl dgst -sha256 -verify "$K/ec.pub" -signature "$work/ecdsa.der" "$work/msg.bad"
    need_err "ec: a tampered message verifies" && ok "a tampered message fails"
  fi
}

part_java() {
  cat >"$work/sunpkcs11.cfg" <<CFG
name = p11kms
library = $P11KMS_MODULE
slotListIndex = 0
CFG
  cp "$P11KMS_CONFIG" "$work/both.json"
  echo "-- compile java/SignConsumer.java"
  javac -d "$work/classes" "$here/java/SignConsumer.java" "$here/java/P11Consumer.java"
  # One JVM per key, the module configured with that key alone: the
  # KeyStore loads all of a token's objects or none, so one key's trouble
  # does not hide the other's result.
  local k
  for k in ec rsa; do
    /usr/bin/python3 - "$work/both.json" "$k" "$P11KMS_CONFIG" <<'PY'
import json, sys
cfg = json.load(open(sys.argv[1]))
p = cfg["providers"][0]
p["keys"] = [x for x in p["keys"] if x["label"] == sys.argv[2]]
json.dump(cfg, open(sys.argv[3], "w"), indent=1)
PY
    echo "== JVM: the $k key"
    run timeout 120 java -cp "$work/classes" SignConsumer "$work/sunpkcs11.cfg" "$pin" \
      "$k=$K/$k.crt" || fail "$k: java/SignConsumer.java (see its FAIL lines)"
  done
  consumer_login_ok required || fail "SunPKCS11 did not log in"
}

case "$part" in
  openssl) part_openssl ;;
  pkcs11-tool) part_pkcs11_tool ;;
  java) part_java ;;
esac

echo
if [ ${#failures[@]} -gt 0 ]; then
  echo "signing with $part: ${#failures[@]} check(s) FAILED:" >&2
  printf '  - %s\n' "${failures[@]}" >&2
  echo "   module log (errors):" >&2
  grep -E ' (error|warn) ' "$work/module.log" | sed 's/^/      | /' | head -20 >&2 || true
  exit 1
fi
echo "signing with $part: all checks passed"
