# SPDX-License-Identifier: Apache-2.0
"""Asymmetric signatures shared by the three clouds: sign and verify a digest with RSA
PKCS#1 v1.5, RSA-PSS (salt = hash length, MGF1 with the same hash) or ECDSA, and the two
ECDSA encodings (DER for AWS KMS and Cloud KMS, fixed-width r||s for Key Vault's JWS)."""

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa, utils

HASHES = {"sha256": hashes.SHA256, "sha384": hashes.SHA384, "sha512": hashes.SHA512}


def digest_size(hash_name):
    return HASHES[hash_name].digest_size


def _pad(scheme, h):
    if scheme == "pss":
        return padding.PSS(mgf=padding.MGF1(h), salt_length=h.digest_size)
    return padding.PKCS1v15()


def sign_digest(private, scheme, hash_name, digest):
    """scheme: pkcs1, pss or ecdsa; ECDSA signatures come back DER-encoded."""
    h = HASHES[hash_name]()
    pre = utils.Prehashed(h)
    if isinstance(private, ec.EllipticCurvePrivateKey):
        return private.sign(digest, ec.ECDSA(pre))
    return private.sign(digest, _pad(scheme, h), pre)


def verify_digest(public, scheme, hash_name, digest, signature):
    """True when `signature` (DER for ECDSA) is valid for `digest`."""
    h = HASHES[hash_name]()
    pre = utils.Prehashed(h)
    try:
        if isinstance(public, ec.EllipticCurvePublicKey):
            public.verify(signature, digest, ec.ECDSA(pre))
        else:
            public.verify(signature, digest, _pad(scheme, h), pre)
        return True
    except (InvalidSignature, ValueError):
        return False


def curve_bytes(key):
    return (key.curve.key_size + 7) // 8


def der_to_raw(der, key):
    r, s = utils.decode_dss_signature(der)
    n = curve_bytes(key)
    return r.to_bytes(n, "big") + s.to_bytes(n, "big")


def raw_to_der(raw, key):
    """None when `raw` is not 2 * the curve's size."""
    n = curve_bytes(key)
    if len(raw) != 2 * n:
        return None
    return utils.encode_dss_signature(int.from_bytes(raw[:n], "big"), int.from_bytes(raw[n:], "big"))


def new_rsa(bits):
    return rsa.generate_private_key(public_exponent=65537, key_size=bits)
