#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Drive a running KMS emulator from C tests: emuctl.py STATE_DIR COMMAND ARGS...

  disable|enable|rotate|destroy CLOUD KEY    key state (control API)
  key CLOUD ACTION KEY [JSON [FIELD]]         any key action of any cloud, JSON its extra
                                              fields; prints the reply's FIELD when asked
                                              (key gcp backdate NAME '{"seconds": 8640000}')
  count SERVICE OP                            print the request count (OP handshake: the
                                              failed TLS handshakes)
  count-all SERVICE                           print the request count of every op of SERVICE
  reset-counters | clear-faults
  fault JSON                                  add a fault rule
  boto3-decrypt BLOB_FILE CONTEXT OUT_FILE    the official SDK opens a module blob
  boto3-encrypt IN_FILE CONTEXT OUT_FILE      the official SDK makes a blob for the module
  create-key SPEC USAGE ALIAS                 CreateKey (e.g. RSA_2048 ENCRYPT_DECRYPT) and
                                              CreateAlias through boto3; prints the key id
  pubkey KEY                                  "N_HEX E_HEX BITS" of an RSA key (GetPublicKey)
  boto3-rsa-decrypt KEY ALG IN_FILE OUT_FILE  boto3 Decrypt with KeyId and EncryptionAlgorithm
  boto3-rsa-encrypt KEY ALG IN_FILE OUT_FILE  boto3 Encrypt with KeyId and EncryptionAlgorithm
                                              (ALG: RSAES_OAEP_SHA_1 or RSAES_OAEP_SHA_256)
  log-seq                                     print the last request-log sequence number
  max-overlap SINCE SERVICE OP                most requests of SERVICE/OP in flight at once
                                              (from the request log after SINCE)
  faults-pending                              print how many fault rules are still to apply
                                              (a count-1 rule goes when a request takes it)
  answered SINCE SERVICE OP [FAULT]           print how many SERVICE/OP requests (that met
                                              FAULT, e.g. latency) were answered after SINCE
                                              (the log has a request once it is answered)
CONTEXT is the module's AAD; p11kms sends it as {"p11kms": base64url(AAD)}.
"""
import base64
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "kms-emulator"))
from kmsemu.harness import EmulatorHandle  # noqa: E402


def context(aad):
    if not aad:
        return {}
    return {"p11kms": base64.urlsafe_b64encode(aad.encode()).decode().rstrip("=")}


def kms(emu):
    import boto3
    a = emu.info["aws"]
    return boto3.client("kms", region_name=a["region"], endpoint_url=a["endpoint_url"],
                        verify=emu.ca_bundle, aws_access_key_id=a["access_key_id"],
                        aws_secret_access_key=a["secret_access_key"])


def main(argv):
    state, cmd, args = argv[1], argv[2], argv[3:]
    with open(os.path.join(state, "emulator.json")) as f:
        emu = EmulatorHandle(json.load(f), None, state, False)
    if cmd in ("disable", "enable", "rotate", "destroy"):
        emu.key_action(args[0], cmd, args[1])
    elif cmd == "key":
        out = emu.key_action(args[0], args[1], args[2], **(json.loads(args[3]) if len(args) > 3 else {}))
        if len(args) > 4:
            print(out[args[4]])
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
    elif cmd == "boto3-decrypt":
        blob = open(args[0], "rb").read()
        r = kms(emu).decrypt(CiphertextBlob=blob, EncryptionContext=context(args[1]))
        open(args[2], "wb").write(r["Plaintext"])
    elif cmd == "boto3-encrypt":
        pt = open(args[0], "rb").read()
        r = kms(emu).encrypt(KeyId=emu.info["aws"]["alias"], Plaintext=pt,
                             EncryptionContext=context(args[1]))
        open(args[2], "wb").write(r["CiphertextBlob"])
    elif cmd == "create-key":
        c = kms(emu)
        md = c.create_key(KeySpec=args[0], KeyUsage=args[1])["KeyMetadata"]
        c.create_alias(AliasName=args[2], TargetKeyId=md["KeyId"])
        print(md["KeyId"])
    elif cmd == "pubkey":
        from cryptography.hazmat.primitives import serialization
        der = kms(emu).get_public_key(KeyId=args[0])["PublicKey"]
        nums = serialization.load_der_public_key(der).public_numbers()
        print("%x %x %d" % (nums.n, nums.e, nums.n.bit_length()))
    elif cmd == "boto3-rsa-decrypt":
        r = kms(emu).decrypt(KeyId=args[0], EncryptionAlgorithm=args[1],
                             CiphertextBlob=open(args[2], "rb").read())
        open(args[3], "wb").write(r["Plaintext"])
    elif cmd == "boto3-rsa-encrypt":
        r = kms(emu).encrypt(KeyId=args[0], EncryptionAlgorithm=args[1],
                             Plaintext=open(args[2], "rb").read())
        open(args[3], "wb").write(r["CiphertextBlob"])
    elif cmd == "log-seq":
        entries = emu.log()
        print(max([e["seq"] for e in entries], default=0))
    elif cmd == "max-overlap":
        since, service, op = int(args[0]), args[1], args[2]
        spans = []
        for e in emu.log(since):
            if e["service"] == service and e["op"] == op and e["duration_ms"] is not None:
                end = e["time"]
                spans.append((end - e["duration_ms"] / 1000.0, end))
        events = sorted([(a, 1) for a, _ in spans] + [(b, -1) for _, b in spans])
        cur = best = 0
        for _, d in events:
            cur += d
            best = max(best, cur)
        print(best)
    elif cmd == "faults-pending":
        print(len(emu.call("GET", "/v1/faults")["faults"]))
    elif cmd == "answered":
        since, service, op = int(args[0]), args[1], args[2]
        fault = args[3] if len(args) > 3 else None
        print(sum(1 for e in emu.log(since) if e["service"] == service and e["op"] == op
                  and (fault is None or e["fault"] == fault)))
    else:
        sys.exit("emuctl: unknown command " + cmd)


if __name__ == "__main__":
    main(sys.argv)
