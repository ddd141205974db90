# SPDX-License-Identifier: Apache-2.0
"""Asymmetric AWS KMS keys in the emulator (RSA ENCRYPT_DECRYPT: CreateKey, GetPublicKey,
Encrypt/Decrypt with RSAES_OAEP_SHA_1/256), proven with botocore and python-cryptography as the
independent OAEP implementation."""

import pytest
from botocore.exceptions import ClientError
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from awsutil import kms_client

ALGS = {"RSAES_OAEP_SHA_1": hashes.SHA1, "RSAES_OAEP_SHA_256": hashes.SHA256}


@pytest.fixture
def kms(emu):
    return kms_client(emu)


@pytest.fixture(scope="module")
def rsa_key(emu):
    md = kms_client(emu).create_key(KeySpec="RSA_2048", KeyUsage="ENCRYPT_DECRYPT",
                                    Description="rsa test")["KeyMetadata"]
    return md


def _code(excinfo):
    return excinfo.value.response["Error"]["Code"]


def _oaep(alg):
    h = ALGS[alg]()
    return padding.OAEP(mgf=padding.MGF1(algorithm=h), algorithm=h, label=None)


def _pub(kms, key_id):
    return serialization.load_der_public_key(kms.get_public_key(KeyId=key_id)["PublicKey"])


def test_create_and_describe_rsa_key(kms, rsa_key):
    assert rsa_key["KeySpec"] == "RSA_2048" and rsa_key["CustomerMasterKeySpec"] == "RSA_2048"
    assert rsa_key["KeyUsage"] == "ENCRYPT_DECRYPT"
    assert rsa_key["EncryptionAlgorithms"] == ["RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256"]
    assert "CurrentKeyMaterialId" not in rsa_key
    md = kms.describe_key(KeyId=rsa_key["Arn"])["KeyMetadata"]
    assert md["KeySpec"] == "RSA_2048" and md["EncryptionAlgorithms"] == rsa_key["EncryptionAlgorithms"]
    for spec, usage in (("RSA_2048", "KEY_AGREEMENT"), ("ECC_NIST_P256", "ENCRYPT_DECRYPT"),
                        ("SYMMETRIC_DEFAULT", "SIGN_VERIFY")):
        with pytest.raises(ClientError) as ei:
            kms.create_key(KeySpec=spec, KeyUsage=usage)
        assert _code(ei) == "ValidationException"


def test_get_public_key(kms, rsa_key):
    r = kms.get_public_key(KeyId=rsa_key["KeyId"])
    assert r["KeyId"] == rsa_key["Arn"]
    assert r["KeySpec"] == "RSA_2048" and r["KeyUsage"] == "ENCRYPT_DECRYPT"
    assert r["EncryptionAlgorithms"] == ["RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256"]
    assert "SigningAlgorithms" not in r
    pub = serialization.load_der_public_key(r["PublicKey"])      # DER SubjectPublicKeyInfo
    assert isinstance(pub, rsa.RSAPublicKey) and pub.key_size == 2048
    assert pub.public_numbers().e == 65537
    # The symmetric key has no public key.
    with pytest.raises(ClientError) as ei:
        kms.get_public_key(KeyId="alias/p11kms-test")
    assert _code(ei) == "UnsupportedOperationException"
    # A signing key: its public key says so.
    sig = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]
    r = kms.get_public_key(KeyId=sig["KeyId"])
    assert r["KeyUsage"] == "SIGN_VERIFY" and r["SigningAlgorithms"] == ["ECDSA_SHA_256"]
    assert "EncryptionAlgorithms" not in r
    assert isinstance(serialization.load_der_public_key(r["PublicKey"]), ec.EllipticCurvePublicKey)


@pytest.mark.parametrize("alg", sorted(ALGS))
def test_oaep_interop(kms, rsa_key, alg):
    pub = _pub(kms, rsa_key["KeyId"])
    # KMS encrypts, decrypts; the result is plain OAEP of the public key's size.
    r = kms.encrypt(KeyId=rsa_key["Arn"], Plaintext=b"secret key bytes", EncryptionAlgorithm=alg)
    assert r["EncryptionAlgorithm"] == alg and r["KeyId"] == rsa_key["Arn"]
    assert len(r["CiphertextBlob"]) == 256
    d = kms.decrypt(CiphertextBlob=r["CiphertextBlob"], KeyId=rsa_key["KeyId"], EncryptionAlgorithm=alg)
    assert d["Plaintext"] == b"secret key bytes"
    assert d["EncryptionAlgorithm"] == alg and d["KeyId"] == rsa_key["Arn"]
    # Encrypted outside KMS with the public key: KMS decrypts it.
    ct = pub.encrypt(b"from outside", _oaep(alg))
    assert kms.decrypt(CiphertextBlob=ct, KeyId=rsa_key["Arn"],
                       EncryptionAlgorithm=alg)["Plaintext"] == b"from outside"
    # The other hash does not open it.
    other = [a for a in ALGS if a != alg][0]
    with pytest.raises(ClientError) as ei:
        kms.decrypt(CiphertextBlob=ct, KeyId=rsa_key["Arn"], EncryptionAlgorithm=other)
    assert _code(ei) == "InvalidCiphertextException"


def test_oaep_errors(kms, rsa_key):
    kid = rsa_key["KeyId"]
    ct = kms.encrypt(KeyId=kid, Plaintext=b"x", EncryptionAlgorithm="RSAES_OAEP_SHA_256")["CiphertextBlob"]
    cases = [
        # The asymmetric key needs its algorithm named.
        (lambda: kms.encrypt(KeyId=kid, Plaintext=b"x"), "InvalidKeyUsageException"),
        (lambda: kms.encrypt(KeyId=kid, Plaintext=b"x", EncryptionAlgorithm="SYMMETRIC_DEFAULT"),
         "InvalidKeyUsageException"),
        (lambda: kms.decrypt(CiphertextBlob=ct, KeyId=kid), "InvalidKeyUsageException"),
        # No KeyId: nothing in the ciphertext names the key.
        (lambda: kms.decrypt(CiphertextBlob=ct, EncryptionAlgorithm="RSAES_OAEP_SHA_256"),
         "InvalidCiphertextException"),
        (lambda: kms.decrypt(CiphertextBlob=ct), "InvalidCiphertextException"),
        # Tampered and short ciphertexts.
        (lambda: kms.decrypt(CiphertextBlob=ct[:-1] + bytes([ct[-1] ^ 1]), KeyId=kid,
                             EncryptionAlgorithm="RSAES_OAEP_SHA_256"), "InvalidCiphertextException"),
        (lambda: kms.decrypt(CiphertextBlob=ct[:100], KeyId=kid,
                             EncryptionAlgorithm="RSAES_OAEP_SHA_256"), "InvalidCiphertextException"),
        # OAEP limits: 190 bytes with SHA-256 and 214 with SHA-1 for RSA_2048.
        (lambda: kms.encrypt(KeyId=kid, Plaintext=b"a" * 191, EncryptionAlgorithm="RSAES_OAEP_SHA_256"),
         "ValidationException"),
        (lambda: kms.encrypt(KeyId=kid, Plaintext=b"a" * 215, EncryptionAlgorithm="RSAES_OAEP_SHA_1"),
         "ValidationException"),
        # No encryption context with asymmetric keys.
        (lambda: kms.encrypt(KeyId=kid, Plaintext=b"x", EncryptionAlgorithm="RSAES_OAEP_SHA_1",
                             EncryptionContext={"a": "b"}), "ValidationException"),
        (lambda: kms.decrypt(CiphertextBlob=ct, KeyId=kid, EncryptionAlgorithm="RSAES_OAEP_SHA_256",
                             EncryptionContext={"a": "b"}), "ValidationException"),
        # The symmetric key runs no OAEP; an RSA ciphertext is not its.
        (lambda: kms.encrypt(KeyId="alias/p11kms-test", Plaintext=b"x",
                             EncryptionAlgorithm="RSAES_OAEP_SHA_256"), "InvalidKeyUsageException"),
        (lambda: kms.decrypt(CiphertextBlob=ct, KeyId="alias/p11kms-test",
                             EncryptionAlgorithm="RSAES_OAEP_SHA_256"), "InvalidKeyUsageException"),
        (lambda: kms.decrypt(CiphertextBlob=ct, KeyId="alias/p11kms-test"), "InvalidCiphertextException"),
        # Asymmetric keys make no data keys and do not rotate.
        (lambda: kms.generate_data_key(KeyId=kid, KeySpec="AES_256"), "InvalidKeyUsageException"),
        (lambda: kms.enable_key_rotation(KeyId=kid), "UnsupportedOperationException"),
    ]
    for i, (call, code) in enumerate(cases):
        with pytest.raises(ClientError) as ei:
            call()
        assert _code(ei) == code, (i, ei.value.response["Error"])
    # At the limits it works.
    assert len(kms.encrypt(KeyId=kid, Plaintext=b"a" * 190,
                           EncryptionAlgorithm="RSAES_OAEP_SHA_256")["CiphertextBlob"]) == 256
    assert len(kms.encrypt(KeyId=kid, Plaintext=b"a" * 214,
                           EncryptionAlgorithm="RSAES_OAEP_SHA_1")["CiphertextBlob"]) == 256


def test_signing_key_does_not_encrypt(kms):
    sig = kms.create_key(KeySpec="RSA_2048", KeyUsage="SIGN_VERIFY")["KeyMetadata"]
    assert "EncryptionAlgorithms" not in sig and "RSASSA_PSS_SHA_256" in sig["SigningAlgorithms"]
    with pytest.raises(ClientError) as ei:
        kms.encrypt(KeyId=sig["KeyId"], Plaintext=b"x", EncryptionAlgorithm="RSAES_OAEP_SHA_256")
    assert _code(ei) == "InvalidKeyUsageException"


def test_disabled_rsa_key(emu, kms):
    md = kms.create_key(KeySpec="RSA_3072", KeyUsage="ENCRYPT_DECRYPT")["KeyMetadata"]
    kid = md["KeyId"]
    ct = kms.encrypt(KeyId=kid, Plaintext=b"x" * 318, EncryptionAlgorithm="RSAES_OAEP_SHA_256")["CiphertextBlob"]
    assert len(ct) == 384
    kms.disable_key(KeyId=kid)
    for call in (lambda: kms.encrypt(KeyId=kid, Plaintext=b"x", EncryptionAlgorithm="RSAES_OAEP_SHA_1"),
                 lambda: kms.decrypt(CiphertextBlob=ct, KeyId=kid, EncryptionAlgorithm="RSAES_OAEP_SHA_256"),
                 lambda: kms.get_public_key(KeyId=kid)):
        with pytest.raises(ClientError) as ei:
            call()
        assert _code(ei) == "DisabledException"
    emu.enable_key("aws", kid)
    assert kms.decrypt(CiphertextBlob=ct, KeyId=kid,
                       EncryptionAlgorithm="RSAES_OAEP_SHA_256")["Plaintext"] == b"x" * 318


def test_unknown_algorithm_fails_validation(kms, rsa_key):
    # botocore checks enums on the client side only for documented values; send one by hand.
    with pytest.raises(ClientError) as ei:
        kms.encrypt(KeyId=rsa_key["KeyId"], Plaintext=b"x", EncryptionAlgorithm="RSAES_PKCS1_V1_5")
    assert _code(ei) == "ValidationException"
