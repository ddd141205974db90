#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Key lifecycle steps for test_lifecycle.c: emuctl_life.py STATE_DIR COMMAND ARGS...

  create CLOUD NAME              a new key; prints the reference a config names it by
                                 (aws: alias/NAME; azure: NAME in the vault; gcp: its
                                 resource name)
  current CLOUD KEY              the key's current version as the cloud's own API
                                 reports it: AWS DescribeKey CurrentKeyMaterialId (SigV4
                                 by botocore), Key Vault GET /keys/KEY (the kid's
                                 version), Cloud KMS GET KEY (primary.name)
  version disable|enable CLOUD KEY VERSION
                                 one version (azure, gcp; AWS has no per-version state)
  clock SECONDS                  the emulator's clock offset (versions made meanwhile
                                 are dated then)
Rotation, whole-key disable/enable and faults are emuctl.py's.
"""
import json
import os
import ssl
import sys
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "kms-emulator"))
from kmsemu.harness import EmulatorHandle  # noqa: E402

AZ_API = "7.4"


def get_json(emu, url, headers, data=None):
    ctx = ssl.create_default_context(cafile=emu.ca_bundle)
    req = urllib.request.Request(url, data=data, headers=headers,
                                 method="POST" if data is not None else "GET")
    with urllib.request.urlopen(req, context=ctx, timeout=30) as r:
        return json.loads(r.read())


def current(emu, cloud, key):
    if cloud == "aws":
        from botocore.auth import SigV4Auth
        from botocore.awsrequest import AWSRequest
        from botocore.credentials import Credentials
        a = emu.info["aws"]
        body = json.dumps({"KeyId": key}).encode()
        req = AWSRequest(method="POST", url=a["endpoint_url"] + "/", data=body,
                         headers={"Content-Type": "application/x-amz-json-1.1",
                                  "X-Amz-Target": "TrentService.DescribeKey"})
        SigV4Auth(Credentials(a["access_key_id"], a["secret_access_key"]), "kms",
                  a["region"]).add_auth(req)
        md = get_json(emu, req.url, dict(req.headers.items()), body)["KeyMetadata"]
        return md["CurrentKeyMaterialId"]
    if cloud == "azure":
        tok = emu.issue("azure", "access-token", resource="https://vault.azure.net")["token"]
        r = get_json(emu, "%s/keys/%s?api-version=%s" % (emu.info["azure"]["vault_url"], key,
                                                          AZ_API),
                     {"Authorization": "Bearer " + tok})
        return r["key"]["kid"].rstrip("/").rsplit("/", 1)[1]
    if cloud == "gcp":
        tok = emu.issue("gcp", "access-token")["token"]
        r = get_json(emu, "%s/v1/%s" % (emu.info["gcp"]["endpoint_url"], key),
                     {"Authorization": "Bearer " + tok})
        return r["primary"]["name"]
    sys.exit("emuctl_life: no cloud " + cloud)


def create(emu, cloud, name):
    if cloud == "aws":
        emu.create_key("aws", None, alias="alias/" + name)
        return "alias/" + name
    if cloud == "azure":
        emu.create_key("azure", name, vault="vault", kty="RSA")
        return name
    if cloud == "gcp":
        return emu.create_key("gcp", name)["name"]
    sys.exit("emuctl_life: no cloud " + cloud)


def version(emu, action, cloud, key, ver):
    if cloud == "azure":
        emu.key_action("azure", action, key, vault="vault", version=ver)
    elif cloud == "gcp":
        if not ver.startswith(key + "/cryptoKeyVersions/"):
            sys.exit("emuctl_life: %s is not a version of %s" % (ver, key))
        emu.key_action("gcp", action, ver)
    else:
        sys.exit("emuctl_life: %s has no per-version state" % cloud)


def main(argv):
    state, cmd, args = argv[1], argv[2], argv[3:]
    with open(os.path.join(state, "emulator.json")) as f:
        emu = EmulatorHandle(json.load(f), None, state, False)
    if cmd == "create":
        print(create(emu, args[0], args[1]))
    elif cmd == "current":
        print(current(emu, args[0], args[1]))
    elif cmd == "version" and args[0] in ("disable", "enable"):
        version(emu, args[0], args[1], args[2], args[3])
    elif cmd == "clock":
        emu.set_clock_offset(float(args[0]))
    else:
        sys.exit("emuctl_life: unknown command " + cmd)


if __name__ == "__main__":
    main(sys.argv)
