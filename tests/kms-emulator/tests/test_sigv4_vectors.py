# SPDX-License-Identifier: Apache-2.0
"""The emulator's SigV4 verifier against the official AWS SigV4 test suite (shared/vectors/sigv4).

Each case's signed request (.sreq, Authorization from .authz) must verify with the suite's
credentials at the suite's time, the canonical request we rebuild must equal the suite's
.creq, and a one-character change to the signature must be rejected.
"""

import os

import pytest

from conftest import VECTORS
from kmsemu import sigv4

SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
NOW = 1440938160           # 20150830T123600Z
# The 2015 originals of these carry errors that AWS later corrected (PROTOCOLS.md §1.8).
KNOWN_BAD_ORIGINALS = {"post-x-www-form-urlencoded", "post-x-www-form-urlencoded-parameters",
                       "get-header-value-multiline"}


def _cases(suite):
    root = os.path.join(VECTORS, "sigv4", suite)
    if not os.path.isdir(root):
        return []
    out = []
    for dirpath, _, files in os.walk(root):
        for f in files:
            if f.endswith(".authz"):
                out.append(os.path.join(dirpath, f[:-6]))
    return sorted(out)


def _parse(path):
    """Parse a .req/.sreq file: request line, headers (with continuation lines), blank line, body."""
    with open(path, "rb") as f:
        raw = f.read().decode("utf-8")
    head, sep, body = raw.partition("\n\n")
    lines = head.split("\n")
    method, rest = lines[0].split(" ", 1)
    target = rest.rsplit(" ", 1)[0]
    headers = []
    for line in lines[1:]:
        if line[:1] in (" ", "\t") and headers:
            k, v = headers[-1]
            headers[-1] = (k, v + " " + line.strip())
            continue
        k, _, v = line.partition(":")
        headers.append((k, v.strip(" \t")))
    raw_path, _, raw_query = target.partition("?")
    return method, raw_path, raw_query, headers, body.encode()


def _lookup_for(headers):
    """Credentials of the suite; a signed X-Amz-Security-Token makes them session credentials."""
    tok = dict((k.lower(), v) for k, v in headers).get("x-amz-security-token")

    def lookup(akid):
        if akid != "AKIDEXAMPLE":
            return None
        return {"secret": SECRET, "session_token": tok}
    return lookup


def _params(suite):
    cases = _cases(suite)
    if not cases:
        return [pytest.param(None, marks=pytest.mark.skip(reason="vectors not found at %s" % VECTORS))]
    return [pytest.param(c, id=os.path.relpath(c, os.path.join(VECTORS, "sigv4", suite)))
            for c in cases]


def _check(case):
    # The signed request (.sreq) with its Authorization taken from .authz: botocore's
    # get-vanilla-with-session-token.sreq carries a placeholder signature, its .authz the real one.
    method, raw_path, raw_query, headers, body = _parse(case + ".sreq")
    headers = [(k, v) for k, v in headers if k.lower() != "authorization"]
    with open(case + ".authz", encoding="utf-8") as f:
        headers.append(("Authorization", f.read().strip()))
    lookup = _lookup_for(headers)
    auth = sigv4.parse_authorization(dict((k.lower(), v) for k, v in headers)["authorization"])
    with open(case + ".creq", encoding="utf-8") as f:
        expected_creq = f.read()
    amz_date = dict((k.lower(), v) for k, v in headers)["x-amz-date"]
    creq = sigv4.canonical_request(method, raw_path, raw_query, headers, body, auth, amz_date)
    assert creq == expected_creq
    rec = sigv4.verify(method, raw_path, raw_query, headers, body, lookup, NOW, "service", "us-east-1")
    assert rec["access_key"] == "AKIDEXAMPLE"
    # Flip one hex digit of the signature: must be InvalidSignatureException.
    bad = []
    for k, v in headers:
        if k.lower() == "authorization":
            v = v[:-1] + ("0" if v[-1] != "0" else "1")
        bad.append((k, v))
    with pytest.raises(sigv4.SigV4Error) as ei:
        sigv4.verify(method, raw_path, raw_query, bad, body, lookup, NOW, "service", "us-east-1")
    assert ei.value.error_type == "InvalidSignatureException"


@pytest.mark.parametrize("case", _params("botocore-aws4_testsuite"))
def test_botocore_copy(case):
    _check(case)


@pytest.mark.parametrize("case", _params("aws-sig-v4-test-suite"))
def test_original_suite(case):
    if os.path.basename(case) in KNOWN_BAD_ORIGINALS:
        pytest.skip("known error in the 2015 original (fixed in the botocore copy)")
    _check(case)


def test_protocols_md_kms_example():
    """The complete KMS request of PROTOCOLS.md §1.2 (verified there against botocore)."""
    body = b'{"KeyId":"alias/test-key","Plaintext":"aGVsbG8gd29ybGQ=","EncryptionContext":{"purpose":"demo"}}'
    headers = [("Host", "kms.us-east-1.amazonaws.com"), ("Content-Type", "application/x-amz-json-1.1"),
               ("X-Amz-Target", "TrentService.Encrypt"), ("X-Amz-Date", "20240101T000000Z"),
               ("Content-Length", "96"),
               ("Authorization", "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240101/us-east-1/kms/aws4_request, "
                "SignedHeaders=content-type;host;x-amz-date;x-amz-target, "
                "Signature=5b3c62f11614641f76d460a976d8c8abc2bb1109694cab4ae7c9b69da03d27bc")]
    now = 1704067200
    _lookup = _lookup_for(headers)
    assert sigv4.verify("POST", "/", "", headers, body, _lookup, now, "kms", "us-east-1")
    with pytest.raises(sigv4.SigV4Error) as ei:
        sigv4.verify("POST", "/", "", headers, body + b" ", _lookup, now, "kms", "us-east-1")
    assert ei.value.error_type == "InvalidSignatureException"
    with pytest.raises(sigv4.SigV4Error) as ei:
        sigv4.verify("POST", "/", "", headers, body, _lookup, now + 301, "kms", "us-east-1")
    assert ei.value.message.startswith("Signature expired: 20240101T000000Z is now earlier than")
    with pytest.raises(sigv4.SigV4Error) as ei:
        sigv4.verify("POST", "/", "", headers, body, _lookup, now, "kms", "eu-west-1")
    assert ei.value.error_type == "InvalidSignatureException"
