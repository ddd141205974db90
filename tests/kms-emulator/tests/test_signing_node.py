# SPDX-License-Identifier: Apache-2.0
"""@google-cloud/kms 5.7.0 (sdk-js/gcp_sign.js) against the emulator's asymmetric keys:
createCryptoKey, getPublicKey, asymmetricSign, updateCryptoKeyVersion, asymmetricDecrypt; each
signature is verified by python3-cryptography against the PEM the SDK returned.

Skipped when node or sdk-js/node_modules is missing; run-tests.sh installs them with `npm ci`."""

import hashlib
import json
import os
import subprocess

import pytest
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding

from test_node_sdks import NODE, SDK_DIR, pytestmark  # noqa: F401  (the same skip)
from test_signing import flip, local_verify


@pytest.fixture(scope="module")
def node(emu, tmp_path_factory):
    path = tmp_path_factory.mktemp("node-sign") / "emulator.json"
    path.write_text(json.dumps(emu.info))
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": os.environ.get("HOME", "/tmp"),
           "KMSEMU_INFO": str(path), "NODE_EXTRA_CA_CERTS": emu.ca_bundle, "NODE_NO_WARNINGS": "1"}

    def run(*args, ok=True):
        p = subprocess.run([NODE, "gcp_sign.js"] + list(args), cwd=SDK_DIR, env=env, capture_output=True,
                           text=True, timeout=120)
        out = json.loads(p.stdout.strip().splitlines()[-1]) if p.stdout.strip() else {}
        assert (p.returncode == 0) == ok, p.stdout + p.stderr
        return out
    return run


@pytest.mark.parametrize("alg,scheme,hname", [("EC_SIGN_P256_SHA256", "ecdsa", "sha256"),
                                              ("EC_SIGN_P384_SHA384", "ecdsa", "sha384"),
                                              ("RSA_SIGN_PKCS1_2048_SHA256", "pkcs1", "sha256"),
                                              ("RSA_SIGN_PSS_2048_SHA256", "pss", "sha256"),
                                              ("RSA_SIGN_PSS_4096_SHA512", "pss", "sha512")])
def test_node_asymmetric_sign(emu, node, alg, scheme, hname):
    key = node("create", "node-" + alg.lower().replace("_", "-"), "ASYMMETRIC_SIGN", alg)
    assert key["purpose"] == "ASYMMETRIC_SIGN" and key["algorithm"] == alg and key["primary"] is None
    v1 = node("resolve", key["name"])["name"]
    assert v1 == key["name"] + "/cryptoKeyVersions/1"
    pk = node("pubkey", v1)
    assert pk["algorithm"] == alg and pk["name"] == v1 and pk["protectionLevel"] == "SOFTWARE"
    pub = serialization.load_pem_public_key(pk["pem"].encode())
    digest = hashlib.new(hname, b"node signs").digest()
    before = emu.count("gcp", "AsymmetricSign")
    sig = bytes.fromhex(node("sign", v1, hname, digest.hex())["signature"])
    assert emu.count("gcp", "AsymmetricSign") == before + 1
    assert local_verify(pub, scheme, hname, digest, sig)
    assert not local_verify(pub, scheme, hname, digest, flip(sig))


def test_node_version_states_and_errors(node):
    key = node("create", "node-sig-states", "ASYMMETRIC_SIGN", "EC_SIGN_P256_SHA256")
    v1 = key["name"] + "/cryptoKeyVersions/1"
    v2 = node("add-version", key["name"])
    assert v2["name"] == key["name"] + "/cryptoKeyVersions/2" and v2["state"] == "ENABLED"
    assert node("resolve", key["name"])["name"] == v2["name"]          # the newest enabled
    assert node("state", v2["name"], "DISABLED")["state"] == "DISABLED"
    assert node("resolve", key["name"])["name"] == v1
    d = hashlib.sha256(b"x").digest()
    err = node("sign", v2["name"], "sha256", d.hex(), ok=False)
    assert err["error"] == "FAILED_PRECONDITION" and "current state is: DISABLED" in err["message"]
    err = node("sign", v1, "sha384", hashlib.sha384(b"x").digest().hex(), ok=False)
    assert err["error"] == "INVALID_ARGUMENT"
    assert node("state", v2["name"], "ENABLED")["state"] == "ENABLED"
    node("sign", v2["name"], "sha256", d.hex())


def test_node_asymmetric_decrypt(node):
    key = node("create", "node-dec", "ASYMMETRIC_DECRYPT", "RSA_DECRYPT_OAEP_3072_SHA256")
    v1 = key["name"] + "/cryptoKeyVersions/1"
    pub = serialization.load_pem_public_key(node("pubkey", v1)["pem"].encode())
    ct = pub.encrypt(b"node decrypts", padding.OAEP(padding.MGF1(hashes.SHA256()), hashes.SHA256(), None))
    assert bytes.fromhex(node("decrypt", v1, ct.hex())["plaintext"]) == b"node decrypts"
