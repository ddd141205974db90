#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Signing keys for the C tests, through the official SDKs: emuctl_sign.py STATE_DIR COMMAND ARGS...

  create aws SPEC ALIAS                 CreateKey KeySpec=SPEC KeyUsage=SIGN_VERIFY + CreateAlias
                                        (boto3); prints the key ARN
  create azure VAULT NAME KTY CRV|SIZE  KeyClient.create_ec_key / create_rsa_key in VAULT (vault or
                                        hsm), e.g. `vault ec256 EC P-256`, `hsm rsa2k RSA-HSM 2048`;
                                        prints the key id without version (https://HOST/keys/NAME)
  create gcp NAME PURPOSE ALGORITHM     createCryptoKey (@google-cloud/kms) in the emulator's key
                                        ring; prints the CryptoKey name (version 1 exists, ENABLED)
  pubkey CLOUD KEY OUT_PEM              the public key from the SDK (boto3 get_public_key, Azure
                                        get_key's JWK, GCP getPublicKey of KEY's newest ENABLED
                                        version or of the version KEY names), written as PEM
  verify CLOUD KEY ALG DIGEST_FILE SIG_FILE
                                        ALG: RSA_PKCS1_SHA256|384|512, RSA_PSS_SHA256|384|512,
                                        ECDSA_SHA256|384. DIGEST_FILE: the raw digest; SIG_FILE: the
                                        signature as PKCS#11 gives it (RSA raw, ECDSA r||s). Checked
                                        twice: the SDK's verify (boto3 verify MessageType=DIGEST;
                                        Azure CryptographyClient.verify on the service; GCP has no
                                        verify API) and python3-cryptography against the SDK's
                                        public key. Exit 0 valid, 1 invalid, 2 error; says which
                                        check failed
  version CLOUD KEY disable|enable      AWS DisableKey/EnableKey; Azure the current version's
                                        attributes (update_key_properties enabled=...); GCP the
                                        version KEY names, or version 1 of a CryptoKey
                                        (updateCryptoKeyVersion state)
  count SERVICE OP                      request count (control API); SERVICE aws, gcp,
                                        azure-vault, azure-hsm, or azure (both)
KEY: aws a key id, ARN or alias; azure a key id URL with or without version; gcp a CryptoKey
or CryptoKeyVersion name.
"""
import json
import os
import shutil
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
SDK_DIR = os.path.join(HERE, "..", "kms-emulator", "sdk-js")
sys.path.insert(0, os.path.join(HERE, "..", "kms-emulator"))
from emuctl import kms  # noqa: E402
from emuctl_azure import credential  # noqa: E402
from kmsemu.harness import EmulatorHandle  # noqa: E402

# PKCS#11-side name -> (scheme, hash, AWS SigningAlgorithm, Key Vault alg)
ALGS = {"RSA_PKCS1_SHA256": ("pkcs1", "sha256", "RSASSA_PKCS1_V1_5_SHA_256", "RS256"),
        "RSA_PKCS1_SHA384": ("pkcs1", "sha384", "RSASSA_PKCS1_V1_5_SHA_384", "RS384"),
        "RSA_PKCS1_SHA512": ("pkcs1", "sha512", "RSASSA_PKCS1_V1_5_SHA_512", "RS512"),
        "RSA_PSS_SHA256": ("pss", "sha256", "RSASSA_PSS_SHA_256", "PS256"),
        "RSA_PSS_SHA384": ("pss", "sha384", "RSASSA_PSS_SHA_384", "PS384"),
        "RSA_PSS_SHA512": ("pss", "sha512", "RSASSA_PSS_SHA_512", "PS512"),
        "ECDSA_SHA256": ("ecdsa", "sha256", "ECDSA_SHA_256", "ES256"),
        "ECDSA_SHA384": ("ecdsa", "sha384", "ECDSA_SHA_384", "ES384")}


class Fail(Exception):
    """An error (exit 2): the check could not be made."""


# --- Google: @google-cloud/kms through sdk-js/gcp_sign.js -------------------------------------
def gcp_sdk(emu, *args):
    node = shutil.which("node")
    if node is None or not os.path.isdir(os.path.join(SDK_DIR, "node_modules", "@google-cloud", "kms")):
        raise Fail("node or @google-cloud/kms (tests/kms-emulator/sdk-js, npm ci) is not installed")
    env = dict(os.environ, KMSEMU_INFO=os.path.join(emu.state_dir, "emulator.json"),
               NODE_EXTRA_CA_CERTS=emu.ca_bundle, NODE_NO_WARNINGS="1")
    env.pop("GOOGLE_APPLICATION_CREDENTIALS", None)
    p = subprocess.run([node, os.path.join(SDK_DIR, "gcp_sign.js")] + list(args), env=env,
                       capture_output=True, text=True, timeout=120)
    lines = p.stdout.strip().splitlines()
    out = json.loads(lines[-1]) if lines else {"error": "NO_OUTPUT", "message": p.stderr.strip()[-300:]}
    if p.returncode != 0:
        raise Fail("@google-cloud/kms %s: %s: %s" % (args[0], out.get("error"), out.get("message")))
    return out


# --- Azure: KeyClient / CryptographyClient ---------------------------------------------------
def az_vault_url(emu, vault_or_kid):
    z = emu.info["azure"]
    if vault_or_kid in ("vault", "hsm"):
        return z["managed_hsm_url"] if vault_or_kid == "hsm" else z["vault_url"]
    for url in (z["vault_url"], z["managed_hsm_url"]):
        if vault_or_kid.startswith(url + "/keys/"):
            return url
    raise Fail("%s is not a key id of the emulator's vault or HSM" % vault_or_kid)


def az_key(emu, kid):
    """-> (KeyClient, KeyVaultKey) for a key id with or without version."""
    from azure.keyvault.keys import KeyClient
    url = az_vault_url(emu, kid)
    parts = kid[len(url + "/keys/"):].strip("/").split("/")
    kc = KeyClient(url, credential(emu), verify_challenge_resource=False, connection_verify=emu.ca_bundle)
    return kc, kc.get_key(parts[0], parts[1] if len(parts) > 1 else None)


def az_public(jwk):
    from cryptography.hazmat.primitives.asymmetric import ec, rsa
    if str(jwk.kty).startswith("EC"):
        curve = {"P-256": ec.SECP256R1, "P-384": ec.SECP384R1, "P-521": ec.SECP521R1}[str(jwk.crv)]()
        return ec.EllipticCurvePublicNumbers(int.from_bytes(jwk.x, "big"), int.from_bytes(jwk.y, "big"),
                                             curve).public_key()
    return rsa.RSAPublicNumbers(int.from_bytes(jwk.e, "big"), int.from_bytes(jwk.n, "big")).public_key()


def az_remote_verify(emu, key, alg, digest, sig):
    """CryptographyClient.verify answered by the service: the client is built from the kid
    with keys/get refused once, the SDK's path for callers without get permission (as
    emuctl_azure.py does for the HSM), so it cannot verify locally."""
    from azure.keyvault.keys.crypto import CryptographyClient, SignatureAlgorithm
    svc = "azure-hsm" if az_vault_url(emu, key.id) == emu.info["azure"]["managed_hsm_url"] else "azure-vault"
    emu.fault(service=svc, op="GetKey", kind="error", status=403)
    try:
        cc = CryptographyClient(key.id, credential(emu), verify_challenge_resource=False,
                                connection_verify=emu.ca_bundle)
        return cc.verify(SignatureAlgorithm(alg), digest, sig).is_valid
    except Exception:
        emu.clear_faults()          # the refusal may not have been taken
        raise


# --- commands ----------------------------------------------------------------------------------
def create(emu, cloud, args):
    if cloud == "aws":
        spec, alias = args
        c = kms(emu)
        md = c.create_key(KeySpec=spec, KeyUsage="SIGN_VERIFY")["KeyMetadata"]
        c.create_alias(AliasName=alias, TargetKeyId=md["KeyId"])
        return md["Arn"]
    if cloud == "azure":
        vault, name, kty, param = args
        from azure.keyvault.keys import KeyClient
        kc = KeyClient(az_vault_url(emu, vault), credential(emu), verify_challenge_resource=False,
                       connection_verify=emu.ca_bundle)
        hsm = kty.endswith("-HSM")
        if kty in ("EC", "EC-HSM"):
            key = kc.create_ec_key(name, curve=param, hardware_protected=hsm)
        elif kty in ("RSA", "RSA-HSM"):
            key = kc.create_rsa_key(name, size=int(param), hardware_protected=hsm)
        else:
            raise Fail("kty must be EC, EC-HSM, RSA or RSA-HSM")
        return key.id.rsplit("/", 1)[0]
    if cloud == "gcp":
        name, purpose, alg = args
        return gcp_sdk(emu, "create", name, purpose, alg)["name"]
    raise Fail("no cloud " + cloud)


def public_key(emu, cloud, key):
    """-> (public key object, extra) where extra is the AWS/Azure/GCP key record."""
    from cryptography.hazmat.primitives import serialization
    if cloud == "aws":
        r = kms(emu).get_public_key(KeyId=key)
        return serialization.load_der_public_key(r["PublicKey"]), r
    if cloud == "azure":
        _, k = az_key(emu, key)
        return az_public(k.key), k
    if cloud == "gcp":
        version = gcp_sdk(emu, "resolve", key)["name"]
        pk = gcp_sdk(emu, "pubkey", version)
        return serialization.load_pem_public_key(pk["pem"].encode()), pk
    raise Fail("no cloud " + cloud)


def local_verify(pub, scheme, hname, digest, sig):
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec, padding, utils
    h = {"sha256": hashes.SHA256, "sha384": hashes.SHA384, "sha512": hashes.SHA512}[hname]()
    try:
        if scheme == "ecdsa":
            pub.verify(sig, digest, ec.ECDSA(utils.Prehashed(h)))
        elif scheme == "pss":
            pub.verify(sig, digest, padding.PSS(padding.MGF1(h), h.digest_size), utils.Prehashed(h))
        else:
            pub.verify(sig, digest, padding.PKCS1v15(), utils.Prehashed(h))
        return True
    except InvalidSignature:
        return False


def raw_to_der(pub, sig):
    from cryptography.hazmat.primitives.asymmetric import utils
    n = (pub.curve.key_size + 7) // 8
    if len(sig) != 2 * n:
        return None
    return utils.encode_dss_signature(int.from_bytes(sig[:n], "big"), int.from_bytes(sig[n:], "big"))


def verify(emu, cloud, key, alg, digest_file, sig_file):
    """-> list of (check, valid)."""
    if alg not in ALGS:
        raise Fail("ALG must be one of " + ", ".join(ALGS))
    scheme, hname, aws_alg, az_alg = ALGS[alg]
    digest = open(digest_file, "rb").read()
    sig = open(sig_file, "rb").read()
    pub, rec = public_key(emu, cloud, key)
    der = raw_to_der(pub, sig) if scheme == "ecdsa" else sig
    checks = []
    if cloud == "aws":
        from botocore.exceptions import ClientError
        try:
            ok = kms(emu).verify(KeyId=key, Message=digest, MessageType="DIGEST", Signature=der or b"\0",
                                 SigningAlgorithm=aws_alg)["SignatureValid"]
        except ClientError as e:
            if e.response["Error"]["Code"] != "KMSInvalidSignatureException":
                raise Fail("boto3 verify: %s: %s" % (e.response["Error"]["Code"], e.response["Error"]["Message"]))
            ok = False
        checks.append(("boto3 verify", ok))
    elif cloud == "azure":
        checks.append(("azure CryptographyClient.verify", az_remote_verify(emu, rec, az_alg, digest, sig)))
    checks.append(("python3-cryptography against the %s public key" % cloud,
                   der is not None and local_verify(pub, scheme, hname, digest, der)))
    return checks


def version(emu, cloud, key, action):
    if action not in ("disable", "enable"):
        raise Fail("version action must be disable or enable")
    if cloud == "aws":
        c = kms(emu)
        (c.disable_key if action == "disable" else c.enable_key)(KeyId=key)
    elif cloud == "azure":
        kc, k = az_key(emu, key)
        kc.update_key_properties(k.name, k.properties.version, enabled=action == "enable")
    elif cloud == "gcp":
        name = key if "/cryptoKeyVersions/" in key else key + "/cryptoKeyVersions/1"
        gcp_sdk(emu, "state", name, "ENABLED" if action == "enable" else "DISABLED")
    else:
        raise Fail("no cloud " + cloud)


def main(argv):
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    state, cmd, args = argv[1], argv[2], argv[3:]
    with open(os.path.join(state, "emulator.json")) as f:
        emu = EmulatorHandle(json.load(f), None, state, False)
    try:
        if cmd == "create" and len(args) >= 1:
            print(create(emu, args[0], args[1:]))
        elif cmd == "pubkey" and len(args) == 3:
            from cryptography.hazmat.primitives import serialization
            pub, _ = public_key(emu, args[0], args[1])
            with open(args[2], "wb") as f:
                f.write(pub.public_bytes(serialization.Encoding.PEM,
                                         serialization.PublicFormat.SubjectPublicKeyInfo))
        elif cmd == "verify" and len(args) == 5:
            checks = verify(emu, *args)
            bad = [name for name, ok in checks if not ok]
            for name, ok in checks:
                print("%s: %s" % (name, "valid" if ok else "INVALID"))
            return 1 if bad else 0
        elif cmd == "version" and len(args) == 3:
            version(emu, *args)
        elif cmd == "count" and len(args) == 2:
            services = ["azure-vault", "azure-hsm"] if args[0] == "azure" else [args[0]]
            print(sum(emu.count(s, args[1]) for s in services))
        else:
            print("emuctl_sign: bad command line: %s\n%s" % (" ".join(argv[2:]), __doc__), file=sys.stderr)
            return 2
    except Fail as e:
        print("emuctl_sign: error: %s" % e, file=sys.stderr)
        return 2
    except Exception as e:  # an SDK or I/O error: the check could not be made
        print("emuctl_sign: error: %s: %s" % (type(e).__name__, str(e).splitlines()[0] if str(e) else ""),
              file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
