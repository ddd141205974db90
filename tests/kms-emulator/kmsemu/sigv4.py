# SPDX-License-Identifier: Apache-2.0
"""Server-side AWS Signature Version 4 verification.

The signature is recomputed with botocore's own SigV4Auth (the reference
client signer) from the request exactly as received, over exactly the header
names the client listed in SignedHeaders (SDKs differ in which headers they
sign: PROTOCOLS.md §1.2). Error types and messages follow the AWS common
errors seen on the wire (PROTOCOLS.md §1.4, §1.7).
"""

import calendar
import hashlib
import hmac
import re
import time
from urllib.parse import unquote

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest, HTTPHeaders
from botocore.credentials import Credentials

MAX_SKEW = 300        # seconds, "(… - 5 min.)" in the service's message
_AMZ_DATE = re.compile(r"^\d{8}T\d{6}Z$")


class SigV4Error(Exception):
    def __init__(self, error_type, message, status=400):
        super().__init__(message)
        self.error_type = error_type
        self.message = message
        self.status = status


class _ReceivedRequestSigner(SigV4Auth):
    """SigV4Auth that signs exactly the header names the client said it signed."""

    def __init__(self, credentials, service, region, signed_names, header_items):
        super().__init__(credentials, service, region)
        self._signed_names = signed_names
        self._items = header_items

    def headers_to_sign(self, request):
        hm = HTTPHeaders()
        for name in self._signed_names:
            for k, v in self._items:
                if k.lower() == name:
                    hm[name] = v
        return hm


def parse_authorization(value):
    """Split 'AWS4-HMAC-SHA256 Credential=…, SignedHeaders=…, Signature=…'."""
    if not value.startswith("AWS4-HMAC-SHA256 "):
        raise SigV4Error("IncompleteSignatureException",
                         "Authorization header requires 'Credential' parameter. Authorization header "
                         "requires 'Signature' parameter. Authorization header requires "
                         "'SignedHeaders' parameter.")
    params = {}
    for part in value[len("AWS4-HMAC-SHA256 "):].split(","):
        k, sep, v = part.strip().partition("=")
        if sep:
            params[k] = v
    missing = [p for p in ("Credential", "SignedHeaders", "Signature") if p not in params]
    if missing:
        raise SigV4Error("IncompleteSignatureException",
                         " ".join("Authorization header requires '%s' parameter." % m for m in missing))
    scope = params["Credential"].split("/")
    if len(scope) != 5 or scope[4] != "aws4_request":
        raise SigV4Error("IncompleteSignatureException",
                         "Credential should have 5 parts separated by '/' ending in 'aws4_request'.")
    signed = params["SignedHeaders"].split(";")
    if signed != sorted(signed) or any(not s or s != s.lower() for s in signed):
        raise SigV4Error("InvalidSignatureException",
                         "SignedHeaders must be lower case and sorted: %s" % params["SignedHeaders"])
    if not re.fullmatch(r"[0-9a-f]{64}", params["Signature"]):
        raise SigV4Error("InvalidSignatureException", "Signature must be 64 lower-case hex digits.")
    return {"access_key": scope[0], "date": scope[1], "region": scope[2], "service": scope[3],
            "signed_headers": signed, "signature": params["Signature"]}


def _amz_epoch(amz_date):
    return calendar.timegm(time.strptime(amz_date, "%Y%m%dT%H%M%SZ"))


def _fmt(epoch):
    return time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(epoch))


def _query_pairs(raw_query):
    # Decode what the client sent, then let botocore re-encode canonically: the
    # service does the same, so clients that encode differently still verify.
    pairs = []
    if raw_query:
        for part in raw_query.split("&"):
            k, _, v = part.partition("=")
            pairs.append((unquote(k), unquote(v)))
    return pairs


def canonical_request(method, raw_path, raw_query, header_items, body, auth, amz_date):
    """The canonical request botocore builds for this received request (for tests and errors)."""
    signer, req = _build(method, raw_path, raw_query, header_items, body, auth, amz_date, "x")
    return signer.canonical_request(req)


def _build(method, raw_path, raw_query, header_items, body, auth, amz_date, secret, token=None):
    host = next((v for k, v in header_items if k.lower() == "host"), "")
    creds = Credentials(auth["access_key"], secret, token)
    signer = _ReceivedRequestSigner(creds, auth["service"], auth["region"],
                                    auth["signed_headers"], header_items)
    # The path goes in exactly as received; botocore normalises and encodes it
    # once more, which is what the client did when it signed.
    req = AWSRequest(method=method, url="https://%s%s" % (host, raw_path), data=body,
                     params=_query_pairs(raw_query),
                     headers={k: v for k, v in header_items if k.lower() in auth["signed_headers"]})
    req.context["timestamp"] = amz_date
    return signer, req


def verify(method, raw_path, raw_query, header_items, body, lookup, now,
           service, region=None, max_skew=MAX_SKEW):
    """Verify a SigV4 Authorization header; returns the credential record from lookup().

    lookup(access_key_id) returns None or a dict with 'secret', optional 'session_token',
    'expires' (epoch) and 'revoked'. Raises SigV4Error with the service's error type.
    """
    headers = {}
    for k, v in header_items:
        headers.setdefault(k.lower(), v)
    authz = headers.get("authorization")
    authz = authz.strip() if authz is not None else None
    if authz is None:
        raise SigV4Error("MissingAuthenticationTokenException", "Missing Authentication Token")
    auth = parse_authorization(authz)
    if "host" not in auth["signed_headers"]:
        raise SigV4Error("InvalidSignatureException",
                         "'Host' or ':authority' must be a 'SignedHeader' in the AWS Authorization.")
    amz_date = headers.get("x-amz-date")
    if amz_date is None:
        raise SigV4Error("IncompleteSignatureException",
                         "Authorization header requires existence of either a 'X-Amz-Date' or a "
                         "'Date' header. Authorization=%s" % authz.split(",")[0])
    if "x-amz-date" not in auth["signed_headers"] or not _AMZ_DATE.match(amz_date):
        raise SigV4Error("IncompleteSignatureException",
                         "'X-Amz-Date' must be a signed header in ISO-8601 basic format.")
    if auth["date"] != amz_date[:8]:
        raise SigV4Error("InvalidSignatureException",
                         "Date in Credential scope does not match YYYYMMDD from ISO-8601 version of "
                         "date from HTTP: '%s' != '%s', from '%s'." % (auth["date"], amz_date[:8], amz_date))
    if auth["service"] != service:
        raise SigV4Error("InvalidSignatureException",
                         "Credential should be scoped to correct service: '%s'. " % service)
    if region is not None and auth["region"] != region:
        raise SigV4Error("InvalidSignatureException",
                         "Credential should be scoped to a valid region. ")
    t = _amz_epoch(amz_date)
    if t < now - max_skew:
        raise SigV4Error("InvalidSignatureException",
                         "Signature expired: %s is now earlier than %s (%s - 5 min.)"
                         % (amz_date, _fmt(now - max_skew), _fmt(now)))
    if t > now + max_skew:
        raise SigV4Error("InvalidSignatureException",
                         "Signature not yet current: %s is still later than %s (%s + 5 min.)"
                         % (amz_date, _fmt(now + max_skew), _fmt(now)))

    cred = lookup(auth["access_key"])
    if cred is None or cred.get("revoked"):
        raise SigV4Error("UnrecognizedClientException",
                         "The security token included in the request is invalid.")
    sent_token = headers.get("x-amz-security-token")
    if cred.get("session_token") is not None:
        if sent_token is None or not hmac.compare_digest(sent_token, cred["session_token"]):
            raise SigV4Error("UnrecognizedClientException",
                             "The security token included in the request is invalid.")
        if cred.get("expires") is not None and now >= cred["expires"]:
            raise SigV4Error("ExpiredTokenException",
                             "The security token included in the request is expired")
    elif sent_token is not None:
        raise SigV4Error("UnrecognizedClientException",
                         "The security token included in the request is invalid.")

    content_sha = headers.get("x-amz-content-sha256")
    if content_sha is not None and content_sha != "UNSIGNED-PAYLOAD" \
            and content_sha != hashlib.sha256(body).hexdigest():
        raise SigV4Error("InvalidSignatureException",
                         "The provided 'x-amz-content-sha256' header does not match what was computed.")

    signer, req = _build(method, raw_path, raw_query, header_items, body, auth, amz_date,
                         cred["secret"], cred.get("session_token"))
    creq = signer.canonical_request(req)
    sts = signer.string_to_sign(req, creq)
    expected = signer.signature(sts, req)
    if not hmac.compare_digest(expected, auth["signature"]):
        raise SigV4Error("InvalidSignatureException",
                         "The request signature we calculated does not match the signature you "
                         "provided. Check your AWS Secret Access Key and signing method. Consult the "
                         "service documentation for details.")
    return dict(cred, access_key=auth["access_key"], region=auth["region"])
