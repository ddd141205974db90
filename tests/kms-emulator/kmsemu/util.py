# SPDX-License-Identifier: Apache-2.0
"""Small helpers shared by the service modules."""

import base64
import binascii
import secrets
import time


# Time claims (exp, iat, nbf) are checked by the services against the emulator's clock
# (Emulator.now(), movable by tests), so PyJWT's own wall-clock checks are turned off.
JWT_NO_TIME = {"verify_exp": False, "verify_iat": False, "verify_nbf": False}

# Subject of the emulator's workload-identity tokens (a Kubernetes service account).
WORKLOAD_SUBJECT = "system:serviceaccount:p11kms:test"


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def unb64(text, field="value"):
    """Strict standard base64 (AWS blobs, Google bytes also accept URL-safe)."""
    if not isinstance(text, str):
        raise ValueError("%s is not a string" % field)
    t = text.replace("-", "+").replace("_", "/")
    t += "=" * (-len(t) % 4)
    try:
        return base64.b64decode(t, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("%s is not valid base64" % field)


def b64url(data: bytes) -> str:
    """RFC 4648 §5 without padding, as Key Vault sends (PROTOCOLS.md §2.3)."""
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64url(text):
    """Key Vault accepts base64url with or without padding; anything else is BadParameter."""
    if not isinstance(text, str) or any(c in text for c in "+/"):
        raise ValueError("not base64url")
    t = text.rstrip("=")
    if len(t) % 4 == 1:
        raise ValueError("not base64url")
    try:
        return base64.urlsafe_b64decode(t + "=" * (-len(t) % 4))
    except (binascii.Error, ValueError):
        raise ValueError("not base64url")


def rfc3339(epoch, frac=True):
    base = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch))
    if frac:
        return "%s.%06dZ" % (base, int((epoch % 1) * 1e6))
    return base + "Z"


def iso8601(epoch):
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(epoch))


def token(prefix="", n=32):
    return prefix + secrets.token_urlsafe(n)
