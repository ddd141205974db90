# SPDX-License-Identifier: Apache-2.0
"""tests/integration/emuctl_sign.py, the C tests' signing driver: keys it creates sign through
the SDKs, its `verify` accepts those signatures in the PKCS#11 form (RSA raw, ECDSA r||s) and
refuses a flipped bit with exit 1; pubkey, version and count do what they say."""

import hashlib
import os
import subprocess

import pytest
from azure.keyvault.keys.crypto import SignatureAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import utils

from awsutil import kms_client
from conftest import REPO
from test_azure import _cc, _secret_cred
from test_node_sdks import NODE, SDK_DIR
from test_signing_node import node  # noqa: F401  (the @google-cloud/kms fixture)

SCRIPT = os.path.join(REPO, "tests", "integration", "emuctl_sign.py")
HAS_NODE = NODE is not None and os.path.isdir(os.path.join(SDK_DIR, "node_modules"))


def run(emu, *args):
    p = subprocess.run(["/usr/bin/python3", SCRIPT, emu.state_dir] + list(args), capture_output=True,
                       text=True, timeout=180, env=dict(os.environ, PYTHONDONTWRITEBYTECODE="1"))
    return p.returncode, p.stdout.strip(), p.stderr.strip()


def ok(emu, *args):
    rc, out, err = run(emu, *args)
    assert rc == 0, (rc, out, err)
    return out


def to_raw(der, pub):
    r, s = utils.decode_dss_signature(der)
    n = (pub.curve.key_size + 7) // 8
    return r.to_bytes(n, "big") + s.to_bytes(n, "big")


def check_verify(emu, tmp_path, cloud, key, alg, digest, sig):
    (tmp_path / "d").write_bytes(digest)
    (tmp_path / "s").write_bytes(sig)
    out = ok(emu, "verify", cloud, key, alg, str(tmp_path / "d"), str(tmp_path / "s"))
    assert "INVALID" not in out and out.count(": valid") == (1 if cloud == "gcp" else 2), out
    (tmp_path / "s").write_bytes(sig[:-1] + bytes([sig[-1] ^ 1]))
    rc, out, err = run(emu, "verify", cloud, key, alg, str(tmp_path / "d"), str(tmp_path / "s"))
    assert rc == 1 and "INVALID" in out, (rc, out, err)


def pem_key(emu, tmp_path, cloud, key):
    ok(emu, "pubkey", cloud, key, str(tmp_path / "pub.pem"))
    return serialization.load_pem_public_key((tmp_path / "pub.pem").read_bytes())


@pytest.mark.parametrize("spec,alg,aws_alg,hname", [
    ("ECC_NIST_P256", "ECDSA_SHA256", "ECDSA_SHA_256", "sha256"),
    ("ECC_NIST_P384", "ECDSA_SHA384", "ECDSA_SHA_384", "sha384"),
    ("RSA_2048", "RSA_PKCS1_SHA256", "RSASSA_PKCS1_V1_5_SHA_256", "sha256"),
    ("RSA_2048", "RSA_PSS_SHA384", "RSASSA_PSS_SHA_384", "sha384")])
def test_driver_aws(emu, tmp_path, spec, alg, aws_alg, hname):
    arn = ok(emu, "create", "aws", spec, "alias/drv-" + alg.lower().replace("_", "-"))
    assert arn.startswith("arn:aws:kms:%s:%s:key/" % (emu.info["aws"]["region"], emu.info["aws"]["account_id"]))
    pub = pem_key(emu, tmp_path, "aws", arn)
    digest = hashlib.new(hname, b"driver").digest()
    sig = kms_client(emu).sign(KeyId=arn, Message=digest, MessageType="DIGEST", SigningAlgorithm=aws_alg)["Signature"]
    check_verify(emu, tmp_path, "aws", arn, alg, digest, to_raw(sig, pub) if spec.startswith("ECC") else sig)
    before = int(ok(emu, "count", "aws", "Sign"))
    ok(emu, "version", "aws", arn, "disable")
    with pytest.raises(Exception, match="DisabledException"):
        kms_client(emu).sign(KeyId=arn, Message=digest, MessageType="DIGEST", SigningAlgorithm=aws_alg)
    ok(emu, "version", "aws", arn, "enable")
    assert int(ok(emu, "count", "aws", "Sign")) == before + 1


@pytest.mark.parametrize("vault,name,kty,param,alg,az_alg,hname", [
    ("vault", "drv-ec256", "EC", "P-256", "ECDSA_SHA256", "ES256", "sha256"),
    ("hsm", "drv-ec384", "EC-HSM", "P-384", "ECDSA_SHA384", "ES384", "sha384"),
    ("hsm", "drv-rsa2k", "RSA-HSM", "2048", "RSA_PSS_SHA256", "PS256", "sha256"),
    ("vault", "drv-rsa3k", "RSA", "3072", "RSA_PKCS1_SHA512", "RS512", "sha512")])
def test_driver_azure(emu, tmp_path, vault, name, kty, param, alg, az_alg, hname):
    kid = ok(emu, "create", "azure", vault, name, kty, param)
    base = emu.info["azure"]["managed_hsm_url" if vault == "hsm" else "vault_url"]
    assert kid == "%s/keys/%s" % (base, name)
    pub = pem_key(emu, tmp_path, "azure", kid)
    digest = hashlib.new(hname, b"driver").digest()
    cred = _secret_cred(emu)
    from test_signing import _kc
    key = _kc(emu, cred, hsm=vault == "hsm").get_key(name)
    sig = _cc(emu, key, cred).sign(SignatureAlgorithm(az_alg), digest).signature     # r||s for ES*
    check_verify(emu, tmp_path, "azure", kid, alg, digest, sig)
    check_verify(emu, tmp_path, "azure", key.id, alg, digest, sig)                  # versioned id
    assert pub.public_numbers() == pem_key(emu, tmp_path, "azure", key.id).public_numbers()
    svc = "azure-" + vault
    before = emu.count(svc, "sign")
    ok(emu, "version", "azure", kid, "disable")
    with pytest.raises(Exception, match="disabled key"):
        _cc(emu, key, cred).sign(SignatureAlgorithm(az_alg), digest)
    ok(emu, "version", "azure", kid, "enable")
    _cc(emu, key, cred).sign(SignatureAlgorithm(az_alg), digest)
    assert int(ok(emu, "count", "azure", "sign")) >= before + 2


@pytest.mark.skipif(not HAS_NODE, reason="node or sdk-js/node_modules not installed (npm ci in sdk-js/)")
@pytest.mark.parametrize("alg,gcp_alg,hname", [("ECDSA_SHA256", "EC_SIGN_P256_SHA256", "sha256"),
                                               ("RSA_PSS_SHA256", "RSA_SIGN_PSS_2048_SHA256", "sha256")])
def test_driver_gcp(emu, node, tmp_path, alg, gcp_alg, hname):
    name = ok(emu, "create", "gcp", "drv-" + gcp_alg.lower().replace("_", "-"), "ASYMMETRIC_SIGN", gcp_alg)
    assert name == "%s/cryptoKeys/drv-%s" % (emu.info["gcp"]["key_ring"], gcp_alg.lower().replace("_", "-"))
    pub = pem_key(emu, tmp_path, "gcp", name)
    digest = hashlib.new(hname, b"driver").digest()
    v1 = emu.emulator.gcp.keys[name].versions[1]
    der = bytes.fromhex(node("sign", v1.name, hname, digest.hex())["signature"])     # the SDK signs
    scheme = "ecdsa" if gcp_alg.startswith("EC") else "pss"
    check_verify(emu, tmp_path, "gcp", name, alg, digest, to_raw(der, pub) if scheme == "ecdsa" else der)
    ok(emu, "version", "gcp", name, "disable")
    assert v1.state == "DISABLED"
    rc, out, err = run(emu, "pubkey", "gcp", name, str(tmp_path / "x.pem"))
    assert rc == 2 and "no ENABLED version" in err, (rc, out, err)
    ok(emu, "version", "gcp", name + "/cryptoKeyVersions/1", "enable")
    assert v1.state == "ENABLED"
    assert int(ok(emu, "count", "gcp", "GetPublicKey")) >= 1


def test_driver_errors(emu, tmp_path):
    rc, _, err = run(emu, "verify", "aws", "alias/none", "RSA_FOO", "/dev/null", "/dev/null")
    assert rc == 2 and "ALG must be one of" in err
    rc, _, err = run(emu, "pubkey", "aws", "alias/does-not-exist", str(tmp_path / "p.pem"))
    assert rc == 2 and "NotFoundException" in err
    rc, _, _ = run(emu, "frobnicate")
    assert rc == 2
