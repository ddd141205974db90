# SPDX-License-Identifier: Apache-2.0
"""Asymmetric signing on the three clouds (issue 18), proven with the official SDKs where
Debian packages one (boto3/botocore, azure-keyvault-keys) and at the wire level for Google
(the npm @google-cloud/kms proof is test_signing_node.py). Every signature is also checked
by python3-cryptography against the public key the cloud hands out."""

import base64
import hashlib
import json
import os
import sys

import pytest
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, utils

from awsutil import kms_client
from conftest import REPO
from kmsemu.crc32c import crc32c
from azure.keyvault.keys.crypto import SignatureAlgorithm

from test_azure import _cc, _kc, _remote_cc, _secret_cred
from test_gcp import Gcp

# python3-cryptography's verdict, as the C tests' driver gives it (ECDSA signatures DER): kept
# apart from the emulator's own kmsemu.signing so that the check is independent of it.
sys.path.insert(0, os.path.join(REPO, "tests", "integration"))
from emuctl_sign import local_verify  # noqa: E402


def flip(b):
    return b[:-1] + bytes([b[-1] ^ 1])


# --- AWS KMS -------------------------------------------------------------------------------
AWS_CASES = [("RSA_2048", "RSASSA_PKCS1_V1_5_SHA_256", "pkcs1", "sha256"),
             ("RSA_3072", "RSASSA_PKCS1_V1_5_SHA_384", "pkcs1", "sha384"),
             ("RSA_2048", "RSASSA_PKCS1_V1_5_SHA_512", "pkcs1", "sha512"),
             ("RSA_2048", "RSASSA_PSS_SHA_256", "pss", "sha256"),
             ("RSA_3072", "RSASSA_PSS_SHA_384", "pss", "sha384"),
             ("RSA_2048", "RSASSA_PSS_SHA_512", "pss", "sha512"),
             ("ECC_NIST_P256", "ECDSA_SHA_256", "ecdsa", "sha256"),
             ("ECC_NIST_P384", "ECDSA_SHA_384", "ecdsa", "sha384")]


@pytest.fixture(scope="module")
def aws_keys(emu):
    kms = kms_client(emu)
    return {spec: kms.create_key(KeySpec=spec, KeyUsage="SIGN_VERIFY")["KeyMetadata"]
            for spec in ("RSA_2048", "RSA_3072", "ECC_NIST_P256", "ECC_NIST_P384")}


@pytest.mark.parametrize("spec,alg,scheme,hname", AWS_CASES)
def test_aws_sign_verify(emu, aws_keys, spec, alg, scheme, hname):
    kms = kms_client(emu)
    md = aws_keys[spec]
    pk = kms.get_public_key(KeyId=md["KeyId"])
    assert pk["KeyUsage"] == "SIGN_VERIFY" and pk["KeySpec"] == spec and alg in pk["SigningAlgorithms"]
    pub = serialization.load_der_public_key(pk["PublicKey"])
    msg = b"issue 18: sign me"
    digest = hashlib.new(hname, msg).digest()
    r = kms.sign(KeyId=md["KeyId"], Message=digest, MessageType="DIGEST", SigningAlgorithm=alg,
                 GrantTokens=["grant-token-1"])
    assert r["KeyId"] == md["Arn"] and r["SigningAlgorithm"] == alg
    assert local_verify(pub, scheme, hname, digest, r["Signature"])
    if scheme == "ecdsa":
        utils.decode_dss_signature(r["Signature"])                       # DER
    else:
        assert len(r["Signature"]) == pub.key_size // 8                  # raw, modulus-sized
    raw = kms.sign(KeyId=md["KeyId"], Message=msg, MessageType="RAW", SigningAlgorithm=alg)["Signature"]
    assert local_verify(pub, scheme, hname, digest, raw)                 # RAW is hashed by KMS
    # The service's Verify, both message types, and a flipped bit.
    v = kms.verify(KeyId=md["KeyId"], Message=digest, MessageType="DIGEST", Signature=r["Signature"],
                   SigningAlgorithm=alg)
    assert v == {**v, "KeyId": md["Arn"], "SignatureValid": True, "SigningAlgorithm": alg}
    assert kms.verify(KeyId=md["KeyId"], Message=msg, Signature=raw, SigningAlgorithm=alg)["SignatureValid"]
    with pytest.raises(ClientError) as e:
        kms.verify(KeyId=md["KeyId"], Message=digest, MessageType="DIGEST", Signature=flip(r["Signature"]),
                   SigningAlgorithm=alg)
    assert e.value.response["Error"]["Code"] == "KMSInvalidSignatureException"


def _aws_err(fn, **kw):
    with pytest.raises(ClientError) as e:
        fn(**kw)
    return e.value.response["Error"]["Code"], e.value.response["Error"]["Message"]


def test_aws_sign_errors(emu, aws_keys):
    kms = kms_client(emu)
    ec_key = aws_keys["ECC_NIST_P256"]["KeyId"]
    d32 = hashlib.sha256(b"m").digest()
    code, msg = _aws_err(kms.sign, KeyId=ec_key, Message=d32[:31], MessageType="DIGEST",
                         SigningAlgorithm="ECDSA_SHA_256")
    assert (code, msg) == ("ValidationException", "Digest is invalid length for algorithm ECDSA_SHA_256.")
    code, msg = _aws_err(kms.sign, KeyId=ec_key, Message=d32, MessageType="DIGEST",
                         SigningAlgorithm="RSASSA_PSS_SHA_256")
    assert code == "InvalidKeyUsageException" and "incompatible with key spec ECC_NIST_P256" in msg
    code, _ = _aws_err(kms.sign, KeyId=aws_keys["RSA_2048"]["KeyId"], Message=d32, MessageType="DIGEST",
                       SigningAlgorithm="ECDSA_SHA_256")
    assert code == "InvalidKeyUsageException"
    code, msg = _aws_err(kms.sign, KeyId=emu.info["aws"]["alias"], Message=d32, MessageType="DIGEST",
                         SigningAlgorithm="ECDSA_SHA_256")
    assert code == "InvalidKeyUsageException" and "ENCRYPT_DECRYPT which is not valid for Sign" in msg
    code, msg = _aws_err(kms.sign, KeyId=ec_key, Message=b"x" * 4097, SigningAlgorithm="ECDSA_SHA_256")
    assert code == "ValidationException" and "4096" in msg
    code, _ = _aws_err(kms.sign, KeyId="alias/no-such-signing-key", Message=d32,
                       SigningAlgorithm="ECDSA_SHA_256")
    assert code == "NotFoundException"
    # A disabled key: DisabledException for Sign and Verify; enabled again, it signs.
    md = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]
    kms.disable_key(KeyId=md["KeyId"])
    for fn, extra in ((kms.sign, {}), (kms.verify, {"Signature": b"\x30\x00"})):
        code, msg = _aws_err(fn, KeyId=md["KeyId"], Message=d32, MessageType="DIGEST",
                             SigningAlgorithm="ECDSA_SHA_256", **extra)
        assert (code, msg) == ("DisabledException", "%s is disabled." % md["Arn"])
    kms.enable_key(KeyId=md["KeyId"])
    kms.sign(KeyId=md["KeyId"], Message=d32, MessageType="DIGEST", SigningAlgorithm="ECDSA_SHA_256")


def test_aws_sign_is_counted_and_faultable(emu, aws_keys):
    kms = kms_client(emu, retries=0)
    key = aws_keys["ECC_NIST_P256"]["KeyId"]
    before = emu.count("aws", "Sign")
    emu.fault(service="aws", op="Sign", kind="error", status=500)
    code, _ = _aws_err(kms.sign, KeyId=key, Message=b"m", SigningAlgorithm="ECDSA_SHA_256")
    assert code == "KMSInternalException"
    kms.sign(KeyId=key, Message=b"m", SigningAlgorithm="ECDSA_SHA_256")
    kms.verify(KeyId=key, Message=b"m", SigningAlgorithm="ECDSA_SHA_256",
               Signature=kms.sign(KeyId=key, Message=b"m", SigningAlgorithm="ECDSA_SHA_256")["Signature"])
    assert emu.count("aws", "Sign") == before + 3
    assert emu.count("aws", "Verify") >= 1


# --- Azure Key Vault / Managed HSM --------------------------------------------------------------
AZ_CASES = [("EC", "P-256", "ES256", "ecdsa", "sha256"), ("EC", "P-384", "ES384", "ecdsa", "sha384"),
            ("RSA", 2048, "PS256", "pss", "sha256"), ("RSA", 2048, "RS256", "pkcs1", "sha256"),
            ("RSA", 3072, "RS384", "pkcs1", "sha384"), ("RSA", 2048, "PS512", "pss", "sha512")]


def _az_public(jwk):
    if jwk.kty.startswith("EC"):
        curve = {"P-256": ec.SECP256R1, "P-384": ec.SECP384R1}[jwk.crv]()
        width = (curve.key_size + 7) // 8
        assert len(jwk.x) == len(jwk.y) == width                        # fixed width
        return ec.EllipticCurvePublicNumbers(int.from_bytes(jwk.x, "big"), int.from_bytes(jwk.y, "big"),
                                             curve).public_key()
    from cryptography.hazmat.primitives.asymmetric import rsa
    return rsa.RSAPublicNumbers(int.from_bytes(jwk.e, "big"), int.from_bytes(jwk.n, "big")).public_key()


@pytest.mark.parametrize("hsm", [False, True], ids=["vault", "hsm"])
@pytest.mark.parametrize("kty,size,alg,scheme,hname", AZ_CASES)
def test_azure_sign_verify(emu, hsm, kty, size, alg, scheme, hname):
    cred = _secret_cred(emu)
    kc = _kc(emu, cred, hsm=hsm)
    name = "sig-%s-%s-%s" % (kty, size, alg)
    if kty == "EC":
        key = kc.create_ec_key(name, curve=size, hardware_protected=hsm)
        assert key.key.crv == size and key.key_type == ("EC-HSM" if hsm else "EC")
        assert sorted(key.key_operations) == ["sign", "verify"]
    else:
        key = kc.create_rsa_key(name, size=size, hardware_protected=hsm)
    pub = _az_public(key.key)
    digest = hashlib.new(hname, b"azure signs this").digest()
    svc = "azure-hsm" if hsm else "azure-vault"
    alg = SignatureAlgorithm(alg)               # the SDK's enum: its local provider needs it
    before = emu.count(svc, "sign"), emu.count(svc, "verify")
    r = _cc(emu, key, cred).sign(alg, digest)
    assert r.key_id == key.id and r.algorithm == alg
    der = r.signature
    if scheme == "ecdsa":
        n = len(key.key.x)
        assert len(r.signature) == 2 * n                                 # JWS r||s
        der = utils.encode_dss_signature(int.from_bytes(r.signature[:n], "big"),
                                         int.from_bytes(r.signature[n:], "big"))
    assert local_verify(pub, scheme, hname, digest, der)
    # The SDK's local verify (from the JWK) and the service's verify.
    assert _cc(emu, key, cred).verify(alg, digest, r.signature).is_valid
    remote = _remote_cc(emu, key, cred, vault=svc)
    assert remote.verify(alg, digest, r.signature).is_valid
    assert not remote.verify(alg, digest, flip(r.signature)).is_valid
    assert (emu.count(svc, "sign"), emu.count(svc, "verify")) == (before[0] + 1, before[1] + 2)


def _az_raw(emu, path, body, vault="vault"):
    """A REST call with a token from the control API: error bodies as the service sends them."""
    import http.client
    import ssl
    tok = emu.issue("azure", "access-token", resource="https://vault.azure.net" if vault == "vault"
                    else "https://managedhsm.azure.net")["token"]
    c = http.client.HTTPSConnection("127.0.0.1", emu.info["ports"]["azure-" + vault],
                                    context=ssl.create_default_context(cafile=emu.ca_bundle), timeout=10)
    c.request("POST", path + "?api-version=7.4", body=json.dumps(body),
              headers={"Authorization": "Bearer " + tok, "Content-Type": "application/json"})
    r = c.getresponse()
    out = r.status, json.loads(r.read())
    c.close()
    return out


def b64u(b):
    return base64.urlsafe_b64encode(b).rstrip(b"=").decode()


def test_azure_sign_errors(emu):
    cred = _secret_cred(emu)
    kc = _kc(emu, cred)
    key = kc.create_ec_key("sig-errors", curve="P-256")
    version = key.properties.version
    d32 = hashlib.sha256(b"x").digest()
    path = "/keys/sig-errors/%s/sign" % version
    st, body = _az_raw(emu, path, {"alg": "ES256", "value": b64u(d32[:20])})
    assert st == 400 and body["error"] == {"code": "BadParameter", "message": "Invalid length of 'value': "
                                           "20 bytes. ES256 requires 32 bytes, encoded with base64url."}
    st, body = _az_raw(emu, path, {"alg": "RS256", "value": b64u(d32)})
    assert st == 400 and body["error"]["code"] == "BadParameter"
    st, body = _az_raw(emu, path, {"alg": "ES384", "value": b64u(hashlib.sha384(b"x").digest())})
    assert st == 400 and body["error"]["code"] == "BadParameter"
    # No version in the path: the current version signs.
    st, body = _az_raw(emu, "/keys/sig-errors/sign", {"alg": "ES256", "value": b64u(d32)})
    assert st == 200 and body["kid"].endswith("/keys/sig-errors/" + version)
    # key_ops without sign.
    kc.create_ec_key("sig-verify-only", curve="P-256", key_operations=["verify"])
    st, body = _az_raw(emu, "/keys/sig-verify-only/sign", {"alg": "ES256", "value": b64u(d32)})
    assert st == 403 and body["error"] == {"code": "Forbidden", "innererror": {"code": "KeyOperationForbidden"},
                                           "message": "Operation sign is not permitted on this key."}
    # A disabled version refuses sign (403 KeyDisabled) but still verifies.
    sig = _az_raw(emu, path, {"alg": "ES256", "value": b64u(d32)})[1]["value"]
    kc.update_key_properties("sig-errors", version, enabled=False)
    st, body = _az_raw(emu, path, {"alg": "ES256", "value": b64u(d32)})
    assert st == 403 and body["error"] == {"code": "Forbidden", "innererror": {"code": "KeyDisabled"},
                                           "message": "Operation sign is not allowed on a disabled key."}
    st, body = _az_raw(emu, "/keys/sig-errors/%s/verify" % version,
                       {"alg": "ES256", "digest": b64u(d32), "value": sig})
    assert st == 200 and body == {"value": True}
    # A new version (rotation) signs while the old one stays disabled.
    emu.rotate_key("azure", "sig-errors", vault="vault")
    new = kc.get_key("sig-errors")
    assert new.properties.version != version and new.key.crv == "P-256" and new.key.x != key.key.x
    st, body = _az_raw(emu, "/keys/sig-errors/sign", {"alg": "ES256", "value": b64u(d32)})
    assert st == 200 and body["kid"] == new.id
    kc.update_key_properties("sig-errors", version, enabled=True)
    assert _az_raw(emu, path, {"alg": "ES256", "value": b64u(d32)})[0] == 200


def test_azure_ec_key_rest_create(emu):
    st, body = _az_raw(emu, "/keys/sig-rest-p384/create", {"kty": "EC-HSM", "crv": "P-384",
                                                           "key_ops": ["sign", "verify"]}, vault="hsm")
    assert st == 200
    k = body["key"]
    assert k["kty"] == "EC-HSM" and k["crv"] == "P-384" and k["key_ops"] == ["sign", "verify"]
    assert len(base64.urlsafe_b64decode(k["x"] + "==")) == 48 and "d" not in k
    st, body = _az_raw(emu, "/keys/sig-rest-bad/create", {"kty": "EC", "crv": "P-999"})
    assert st == 400 and body["error"]["code"] == "BadParameter"


# --- Google Cloud KMS (wire level; the npm SDK proof is test_signing_node.py) ---------------------
GCP_CASES = [("RSA_SIGN_PKCS1_2048_SHA256", "pkcs1", "sha256"), ("RSA_SIGN_PSS_2048_SHA256", "pss", "sha256"),
             ("RSA_SIGN_PKCS1_3072_SHA256", "pkcs1", "sha256"), ("RSA_SIGN_PSS_3072_SHA256", "pss", "sha256"),
             ("RSA_SIGN_PKCS1_4096_SHA512", "pkcs1", "sha512"), ("EC_SIGN_P256_SHA256", "ecdsa", "sha256"),
             ("EC_SIGN_P384_SHA384", "ecdsa", "sha384")]


def _b64(b):
    return base64.b64encode(b).decode()


def _gcp_create(gcp, key_id, purpose, alg):
    ring = gcp.emu.info["gcp"]["key_ring"]
    st, body = gcp.call("POST", "/v1/%s/cryptoKeys?cryptoKeyId=%s" % (ring, key_id),
                        {"purpose": purpose, "versionTemplate": {"algorithm": alg}})
    assert st == 200, body
    return body


@pytest.mark.parametrize("alg,scheme,hname", GCP_CASES)
def test_gcp_asymmetric_sign(emu, alg, scheme, hname):
    gcp = Gcp(emu)
    key = _gcp_create(gcp, "sig-" + alg.lower().replace("_", "-"), "ASYMMETRIC_SIGN", alg)
    assert key["purpose"] == "ASYMMETRIC_SIGN" and "primary" not in key
    assert key["versionTemplate"]["algorithm"] == alg
    v1 = key["name"] + "/cryptoKeyVersions/1"
    st, versions = gcp.call("GET", "/v1/%s/cryptoKeyVersions" % key["name"])
    assert [(v["name"], v["state"], v["algorithm"]) for v in versions["cryptoKeyVersions"]] == \
        [(v1, "ENABLED", alg)]
    st, pk = gcp.call("GET", "/v1/%s/publicKey" % v1)
    assert st == 200 and pk["algorithm"] == alg and pk["name"] == v1 and pk["protectionLevel"] == "SOFTWARE"
    assert pk["pemCrc32c"] == str(crc32c(pk["pem"].encode()))
    pub = serialization.load_pem_public_key(pk["pem"].encode())
    digest = hashlib.new(hname, b"google signs this").digest()
    st, r = gcp.call("POST", "/v1/%s:asymmetricSign" % v1,
                     {"digest": {hname: _b64(digest)}, "digestCrc32c": str(crc32c(digest))})
    assert st == 200, r
    sig = base64.b64decode(r["signature"])
    assert r["name"] == v1 and r["verifiedDigestCrc32c"] is True and r["signatureCrc32c"] == str(crc32c(sig))
    assert local_verify(pub, scheme, hname, digest, sig)
    assert not local_verify(pub, scheme, hname, digest, flip(sig))
    # data instead of digest: the service hashes.
    st, r = gcp.call("POST", "/v1/%s:asymmetricSign" % v1, {"data": _b64(b"google signs this")})
    assert st == 200 and local_verify(pub, scheme, hname, digest, base64.b64decode(r["signature"]))


def test_gcp_sign_errors_and_versions(emu):
    gcp = Gcp(emu)
    key = _gcp_create(gcp, "sig-errors", "ASYMMETRIC_SIGN", "EC_SIGN_P256_SHA256")
    v1 = key["name"] + "/cryptoKeyVersions/1"
    d = hashlib.sha256(b"x").digest()

    def sign(name, body):
        return gcp.call("POST", "/v1/%s:asymmetricSign" % name, body)
    st, r = sign(v1, {"digest": {"sha256": _b64(d)}, "digestCrc32c": str(crc32c(d) ^ 1)})
    assert st == 400 and r["error"]["status"] == "INVALID_ARGUMENT" and \
        r["error"]["message"] == "The checksum in field digest_crc32c did not match the data in field digest."
    st, r = sign(v1, {"digest": {"sha384": _b64(hashlib.sha384(b"x").digest())}})
    assert st == 400 and r["error"]["status"] == "INVALID_ARGUMENT"
    st, r = sign(v1, {"digest": {"sha256": _b64(d[:31])}})
    assert st == 400 and r["error"]["status"] == "INVALID_ARGUMENT"
    st, r = sign(emu.info["gcp"]["keys"]["symmetric"] + "/cryptoKeyVersions/1", {"digest": {"sha256": _b64(d)}})
    assert st == 400 and r["error"]["status"] == "INVALID_ARGUMENT"
    st, r = sign(key["name"] + "/cryptoKeyVersions/9", {"digest": {"sha256": _b64(d)}})
    assert st == 403 and r["error"]["status"] == "PERMISSION_DENIED"
    # Versions: a second one, disable/enable, destroy.
    st, v2 = gcp.call("POST", "/v1/%s/cryptoKeyVersions" % key["name"], {})
    assert st == 200 and v2["algorithm"] == "EC_SIGN_P256_SHA256" and v2["state"] == "ENABLED"
    st, r = gcp.call("PATCH", "/v1/%s?updateMask=state" % v1, {"state": "DISABLED"})
    assert st == 200 and r["state"] == "DISABLED"
    st, r = sign(v1, {"digest": {"sha256": _b64(d)}})
    assert st == 400 and r["error"] == {"code": 400, "status": "FAILED_PRECONDITION",
                                        "message": "%s is not enabled, current state is: DISABLED." % v1}
    st, r = gcp.call("GET", "/v1/%s/publicKey" % v1)
    assert st == 400 and r["error"]["status"] == "FAILED_PRECONDITION"
    assert sign(v2["name"], {"digest": {"sha256": _b64(d)}})[0] == 200
    st, r = gcp.call("PATCH", "/v1/%s?updateMask=state" % v1, {"state": "ENABLED"})
    assert sign(v1, {"digest": {"sha256": _b64(d)}})[0] == 200
    emu.destroy_key("gcp", v1)
    st, r = sign(v1, {"digest": {"sha256": _b64(d)}})
    assert st == 400 and r["error"]["message"].endswith("current state is: DESTROYED.")
    st, k = gcp.call("GET", "/v1/" + key["name"])
    assert st == 200 and k["purpose"] == "ASYMMETRIC_SIGN" and "primary" not in k
    # Numeric enums, as the Node REST client asks.
    st, k = gcp.call("GET", "/v1/%s?$alt=json;enum-encoding=int" % key["name"])
    assert k["purpose"] == 5 and k["versionTemplate"]["algorithm"] == 12
    st, r = gcp.call("POST", "/v1/%s/cryptoKeys?cryptoKeyId=sig-bad" % emu.info["gcp"]["key_ring"],
                     {"purpose": "ASYMMETRIC_SIGN", "versionTemplate": {"algorithm": "RSA_DECRYPT_OAEP_2048_SHA256"}})
    assert st == 400 and r["error"]["status"] == "INVALID_ARGUMENT"


@pytest.mark.parametrize("alg,h", [("RSA_DECRYPT_OAEP_2048_SHA256", hashes.SHA256),
                                   ("RSA_DECRYPT_OAEP_2048_SHA1", hashes.SHA1),
                                   ("RSA_DECRYPT_OAEP_4096_SHA512", hashes.SHA512)])
def test_gcp_asymmetric_decrypt(emu, alg, h):
    gcp = Gcp(emu)
    key = _gcp_create(gcp, "dec-" + alg.lower().replace("_", "-"), "ASYMMETRIC_DECRYPT", alg)
    v1 = key["name"] + "/cryptoKeyVersions/1"
    st, pk = gcp.call("GET", "/v1/%s/publicKey" % v1)
    pub = serialization.load_pem_public_key(pk["pem"].encode())
    ct = pub.encrypt(b"secret 18", padding.OAEP(padding.MGF1(h()), h(), None))
    st, r = gcp.call("POST", "/v1/%s:asymmetricDecrypt" % v1, {"ciphertext": _b64(ct),
                                                                "ciphertextCrc32c": str(crc32c(ct))})
    assert st == 200 and base64.b64decode(r["plaintext"]) == b"secret 18"
    assert r["verifiedCiphertextCrc32c"] is True and r["plaintextCrc32c"] == str(crc32c(b"secret 18"))
    st, r = gcp.call("POST", "/v1/%s:asymmetricDecrypt" % v1, {"ciphertext": _b64(flip(ct))})
    assert st == 400 and r["error"]["status"] == "INVALID_ARGUMENT"
    st, r = gcp.call("POST", "/v1/%s:asymmetricSign" % v1, {"digest": {"sha256": _b64(b"\0" * 32)}})
    assert st == 400 and r["error"]["status"] == "INVALID_ARGUMENT"


def test_control_api_creates_signing_keys(emu):
    """The control API's create and rotate for EC and asymmetric Google keys."""
    out = emu.create_key("azure", "ctl-ec384", vault="hsm", kty="EC-HSM", crv="P-384")
    cred = _secret_cred(emu)
    kc = _kc(emu, cred, hsm=True)
    k = kc.get_key("ctl-ec384")
    assert k.properties.version == out["version"] and k.key.crv == "P-384" and len(k.key.x) == 48
    emu.rotate_key("azure", "ctl-ec384", vault="hsm")
    k2 = kc.get_key("ctl-ec384")
    assert k2.properties.version != out["version"] and k2.key.crv == "P-384"
    name = emu.create_key("gcp", "ctl-sign", purpose="ASYMMETRIC_SIGN", algorithm="EC_SIGN_P384_SHA384")["name"]
    gcp = Gcp(emu)
    st, k = gcp.call("GET", "/v1/" + name)
    assert st == 200 and k["purpose"] == "ASYMMETRIC_SIGN" and "primary" not in k
    v2 = emu.rotate_key("gcp", name)["name"]
    assert v2 == name + "/cryptoKeyVersions/2"
    st, pk = gcp.call("GET", "/v1/%s/publicKey" % v2)
    assert st == 200 and pk["algorithm"] == "EC_SIGN_P384_SHA384"
    assert emu.disable_key("gcp", v2)["state"] == "DISABLED"


def test_gcp_corrupted_signature_crc_fault(emu):
    gcp = Gcp(emu)
    v1 = _gcp_create(gcp, "sig-crc-fault", "ASYMMETRIC_SIGN", "EC_SIGN_P256_SHA256")["name"] + "/cryptoKeyVersions/1"
    d = hashlib.sha256(b"crc").digest()
    st, r = gcp.call("POST", "/v1/%s:asymmetricSign" % v1, {"digest": {"sha256": _b64(d)}})
    assert st == 200 and "verifiedDigestCrc32c" not in r       # no request CRC, no acknowledgement
    emu.fault(service="gcp", op="AsymmetricSign", kind="corrupt_crc32c")
    st, r = gcp.call("POST", "/v1/%s:asymmetricSign" % v1, {"digest": {"sha256": _b64(d)}})
    assert st == 200 and r["signatureCrc32c"] != str(crc32c(base64.b64decode(r["signature"])))
    emu.fault(service="gcp", op="GetPublicKey", kind="corrupt_crc32c")
    st, pk = gcp.call("GET", "/v1/%s/publicKey" % v1)
    assert pk["pemCrc32c"] != str(crc32c(pk["pem"].encode()))
