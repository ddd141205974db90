#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Drive a running KMS emulator's Google side from C tests:
emuctl_gcp.py STATE_DIR COMMAND ARGS...

  disable|enable|rotate|destroy KEY           version state of KEY's primary (or the
                                              version KEY names), control API
  create KEY_ID                               a new ENCRYPT_DECRYPT CryptoKey; prints its name
  create-raw KEY_ID [ALGORITHM]               a new RAW_ENCRYPT_DECRYPT CryptoKey (default
                                              AES_256_GCM) with version 1; prints its name
  add-version KEY                             a new version of KEY (raw keys have no
                                              primary); prints its name
  last-path SERVICE OP                        the path of the last SERVICE/OP request
                                              (request log)
  primary KEY                                 print the primary version's name (GetCryptoKey
                                              through the control API's view of the state)
  count SERVICE OP                            print the request count
  reset-counters | clear-faults
  fault JSON                                  add a fault rule
  revoke|restore PRINCIPAL                    credential revocation
  sdk-decrypt KEY BLOB_FILE AAD OUT_FILE      @google-cloud/kms opens a module blob
  sdk-encrypt KEY IN_FILE AAD OUT_FILE        @google-cloud/kms makes a blob for the module
  sdk-raw-encrypt VERSION IN_FILE AAD OUT_FILE IV_FILE
                                              @google-cloud/kms rawEncrypt (AES-GCM):
                                              ciphertext||tag and the IV it got
  sdk-raw-decrypt VERSION IN_FILE AAD OUT_FILE IV_FILE
                                              @google-cloud/kms rawDecrypt of ciphertext||tag
AAD is the module's AAD (CK_P11KMS_KMS_PARAMS context, or the GCM AAD); "-" for none.
"""
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
SDK_DIR = os.path.join(HERE, "..", "kms-emulator", "sdk-js")
sys.path.insert(0, os.path.join(HERE, "..", "kms-emulator"))
from kmsemu.harness import EmulatorHandle  # noqa: E402


def sdk(state, emu, args):
    if not os.path.isdir(os.path.join(SDK_DIR, "node_modules", "@google-cloud", "kms")):
        subprocess.run(["npm", "ci", "--no-audit", "--no-fund"], cwd=SDK_DIR, check=True,
                       stdout=subprocess.DEVNULL)
    env = dict(os.environ, KMSEMU_INFO=os.path.join(state, "emulator.json"),
               NODE_EXTRA_CA_CERTS=emu.ca_bundle)
    env.pop("GOOGLE_APPLICATION_CREDENTIALS", None)
    subprocess.run(["node", os.path.join(HERE, "gcp_sdk.js")] + args, env=env, check=True)


def main(argv):
    state, cmd, args = argv[1], argv[2], argv[3:]
    with open(os.path.join(state, "emulator.json")) as f:
        emu = EmulatorHandle(json.load(f), None, state, False)
    if cmd in ("disable", "enable", "rotate", "destroy"):
        emu.key_action("gcp", cmd, args[0])
    elif cmd == "create":
        print(emu.create_key("gcp", args[0])["name"])
    elif cmd == "create-raw":
        print(emu.create_key("gcp", args[0], purpose="RAW_ENCRYPT_DECRYPT",
                             algorithm=args[1] if len(args) > 1 else "AES_256_GCM")["name"])
    elif cmd == "add-version":
        print(emu.key_action("gcp", "rotate", args[0])["name"])
    elif cmd == "last-path":
        paths = [e["path"] for e in emu.log() if e["service"] == args[0] and e["op"] == args[1]]
        print(paths[-1] if paths else "")
    elif cmd == "count":
        print(emu.count(args[0], args[1]))
    elif cmd == "reset-counters":
        emu.reset_counters()
    elif cmd == "clear-faults":
        emu.clear_faults()
    elif cmd == "fault":
        emu.fault(**json.loads(args[0]))
    elif cmd == "revoke":
        emu.revoke("gcp", args[0])
    elif cmd == "restore":
        emu.restore("gcp", args[0])
    elif cmd in ("sdk-decrypt", "sdk-encrypt", "sdk-raw-decrypt", "sdk-raw-encrypt"):
        sdk(state, emu, [cmd[4:]] + args)
    else:
        sys.exit("emuctl_gcp: unknown command " + cmd)


if __name__ == "__main__":
    main(sys.argv)
