#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Azure side of the C tests: emuctl_azure.py STATE_DIR COMMAND ARGS...

  disable|enable|rotate VAULT KEY            key state (control API); VAULT is vault or hsm
  count SERVICE OP                            print the request count
  count-all SERVICE                           print the request count of every op of SERVICE
  reset-counters | clear-faults
  fault JSON                                  add a fault rule
  revoke|restore CLIENT_ID                    an app or managed identity (control API)
  sdk-unwrap VAULT KEY BLOB_FILE AAD OUT_FILE the official SDK opens a module blob
  sdk-wrap VAULT KEY IN_FILE AAD OUT_FILE     the official SDK makes a blob for the module
  secret-file PATH                            write the app's client secret to PATH (0600)
  log-seq                                     print the last request-log sequence number
  max-overlap SINCE SERVICE OP                most requests of SERVICE/OP in flight at once
  create VAULT KEY KTY SIZE                   a new key (RSA, oct-HSM) through the control API
  pubkey VAULT KEY                            "N_HEX E_HEX BITS" of the key's current version (SDK)
  sdk VAULT KEY OP ALG IN_FILE OUT_FILE [AAD] the official SDK runs a standard algorithm: OP is
                                              wrap, unwrap, encrypt or decrypt; KEY a name (the
                                              current version) or a kid. AES-GCM: encrypt writes
                                              ciphertext||tag to OUT_FILE and the IV to
                                              OUT_FILE.iv; decrypt reads ciphertext||tag and
                                              IN_FILE.iv. Prints "ok" or "error: ...".

A module blob is "P1KA" | 0x01 | len(alg) | alg | len(kid) (2, big-endian) | kid |
the wrapped value, and what is wrapped is SHA-256(AAD) || key: the module binds its
AAD that way because RSA-OAEP and AES key wrap carry none. The SDK does the same here.
"""
import hashlib
import json
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "kms-emulator"))
from kmsemu.harness import EmulatorHandle  # noqa: E402


def credential(emu):
    from azure.identity import ClientSecretCredential
    z = emu.info["azure"]
    return ClientSecretCredential(z["tenant_id"], z["client_id"], z["client_secret"],
                                  authority=z["authority_host"], connection_verify=emu.ca_bundle,
                                  instance_discovery=False)


def crypto_client(emu, vault, key_or_kid):
    """A CryptographyClient for KEY (latest version) or a full kid."""
    from azure.keyvault.keys import KeyClient
    from azure.keyvault.keys.crypto import CryptographyClient
    z = emu.info["azure"]
    url = z["managed_hsm_url"] if vault == "hsm" else z["vault_url"]
    cred = credential(emu)
    kc = KeyClient(url, cred, verify_challenge_resource=False, connection_verify=emu.ca_bundle)
    kid = key_or_kid if "/keys/" in key_or_kid else kc.get_key(key_or_kid).id  # versioned
    if vault == "hsm":
        # Remote-only client (the Debian SDK wraps oct-HSM keys locally under a random
        # key otherwise, docs/kms-emulator.md): built from the id with keys/get denied once.
        emu.fault(service="azure-hsm", op="GetKey", kind="error", status=403)
        return CryptographyClient(kid, cred, verify_challenge_resource=False,
                                  connection_verify=emu.ca_bundle)
    parts = kid.split("/keys/")[1].split("/")
    k = kc.get_key(parts[0], parts[1] if len(parts) > 1 else None)
    return CryptographyClient(k, cred, verify_challenge_resource=False,
                              connection_verify=emu.ca_bundle)


def alg_for(vault):
    from azure.keyvault.keys.crypto import KeyWrapAlgorithm
    # Debian's SDK (4.8.0b3) predates KeyWrapAlgorithm.ckm_aes_key_wrap_pad; the service's
    # alg is an open string set, so the name is passed as is.
    return "CKM_AES_KEY_WRAP_PAD" if vault == "hsm" else KeyWrapAlgorithm.rsa_oaep_256


def parse_blob(b):
    assert b[:4] == b"P1KA" and b[4] == 1, "not a module blob"
    al = b[5]
    alg = b[6:6 + al].decode()
    off = 6 + al
    (kl,) = struct.unpack(">H", b[off:off + 2])
    kid = b[off + 2:off + 2 + kl].decode()
    return alg, kid, b[off + 2 + kl:]


def main(argv):
    state, cmd, args = argv[1], argv[2], argv[3:]
    with open(os.path.join(state, "emulator.json")) as f:
        emu = EmulatorHandle(json.load(f), None, state, False)
    if cmd in ("disable", "enable", "rotate"):
        emu.key_action("azure", cmd, args[1], vault=args[0])
    elif cmd == "count":
        print(emu.count(args[0], args[1]))
    elif cmd == "count-all":
        print(sum(c.get("requests", 0) for k, c in emu.counters().items()
                  if k.startswith(args[0] + "/")))
    elif cmd == "reset-counters":
        emu.reset_counters()
    elif cmd == "clear-faults":
        emu.clear_faults()
    elif cmd == "fault":
        emu.fault(**json.loads(args[0]))
    elif cmd in ("revoke", "restore"):
        getattr(emu, cmd)("azure", args[0])
    elif cmd == "secret-file":
        fd = os.open(args[0], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        os.write(fd, emu.info["azure"]["client_secret"].encode() + b"\n")
        os.close(fd)
    elif cmd == "sdk-unwrap":
        vault, key, blob_file, aad, out = args
        alg, kid, wrapped = parse_blob(open(blob_file, "rb").read())
        assert "/keys/%s/" % key in kid, kid
        cc = crypto_client(emu, vault, kid)  # the version the blob names
        r = cc.unwrap_key(alg, wrapped)
        h = hashlib.sha256(aad.encode()).digest()
        assert r.key[:32] == h, "AAD binding does not match"
        open(out, "wb").write(r.key[32:])
    elif cmd == "sdk-wrap":
        vault, key, in_file, aad, out = args
        cc = crypto_client(emu, vault, key)
        pt = hashlib.sha256(aad.encode()).digest() + open(in_file, "rb").read()
        alg = alg_for(vault)
        r = cc.wrap_key(alg, pt)
        kid = r.key_id.encode()
        a = str(alg.value if hasattr(alg, "value") else alg).encode()
        blob = b"P1KA" + bytes([1, len(a)]) + a + struct.pack(">H", len(kid)) + kid + r.encrypted_key
        open(out, "wb").write(blob)
    elif cmd == "log-seq":
        print(max([e["seq"] for e in emu.log()], default=0))
    elif cmd == "max-overlap":
        since, service, op = int(args[0]), args[1], args[2]
        spans = [(e["time"] - e["duration_ms"] / 1000.0, e["time"]) for e in emu.log(since)
                 if e["service"] == service and e["op"] == op and e["duration_ms"] is not None]
        events = sorted([(a, 1) for a, _ in spans] + [(b, -1) for _, b in spans])
        cur = best = 0
        for _, d in events:
            cur += d
            best = max(best, cur)
        print(best)
    elif cmd == "create":
        vault, key, kty, size = args
        emu.create_key("azure", key, vault=vault, kty=kty, size=int(size))
    elif cmd == "pubkey":
        from azure.keyvault.keys import KeyClient
        z = emu.info["azure"]
        kc = KeyClient(z["managed_hsm_url"] if args[0] == "hsm" else z["vault_url"], credential(emu),
                       verify_challenge_resource=False, connection_verify=emu.ca_bundle)
        jwk = kc.get_key(args[1]).key
        n = int.from_bytes(jwk.n, "big")
        print("%x %x %d" % (n, int.from_bytes(jwk.e, "big"), n.bit_length()))
    elif cmd == "sdk":
        print(sdk_std(emu, *args))
    else:
        sys.exit("emuctl_azure: unknown command " + cmd)


def sdk_std(emu, vault, key, op, alg, in_file, out_file, aad=None):
    """The SDK's own run of a standard algorithm, for the module's standard mechanisms."""
    from azure.keyvault.keys.crypto import EncryptionAlgorithm, KeyWrapAlgorithm
    data = open(in_file, "rb").read()
    aad = aad.encode() if aad else None
    # The SDK's enum where it has one (its local RSA provider needs it); else the service's
    # name as is (CKM_AES_KEY_WRAP_PAD postdates Debian's SDK).
    enum = KeyWrapAlgorithm if op in ("wrap", "unwrap") else EncryptionAlgorithm
    alg = next((a for a in enum if a.value == alg), alg)
    try:
        cc = crypto_client(emu, vault, key)
        if op == "wrap":
            out = cc.wrap_key(alg, data).encrypted_key
        elif op == "unwrap":
            out = cc.unwrap_key(alg, data).key
        elif op == "encrypt" and "GCM" in alg:
            kw = {"additional_authenticated_data": aad} if aad else {}
            r = cc.encrypt(alg, data, **kw)
            if r.iv is None or r.tag is None or len(r.tag) != 16:
                return "error: the service returned no IV or no 16-byte tag"
            out = r.ciphertext + r.tag
            open(out_file + ".iv", "wb").write(r.iv)
        elif op == "decrypt" and "GCM" in alg:
            kw = {"additional_authenticated_data": aad} if aad else {}
            iv = open(in_file + ".iv", "rb").read()
            out = cc.decrypt(alg, data[:-16], iv=iv, authentication_tag=data[-16:], **kw).plaintext
        elif op == "encrypt":
            out = cc.encrypt(alg, data).ciphertext
        elif op == "decrypt":
            out = cc.decrypt(alg, data).plaintext
        else:
            return "error: unknown operation " + op
    except Exception as e:  # the test decides; say why
        emu.clear_faults()
        return "error: %s: %s" % (type(e).__name__, str(e).splitlines()[0] if str(e) else "")
    open(out_file, "wb").write(out)
    return "ok"


if __name__ == "__main__":
    main(sys.argv)
