# SPDX-License-Identifier: Apache-2.0
"""Google Cloud KMS and Google OAuth emulation at the wire level (no Google SDK for Python is
packaged by Debian; the npm @google-cloud/kms proof is test_node_sdks.py). Requests here are
built the way google-auth-library and gax build them (PROTOCOLS.md §3)."""

import base64
import http.client
import json
import ssl
import time
import urllib.parse

import jwt
import pytest
from cryptography.hazmat.primitives import serialization

from kmsemu.crc32c import crc32c
from kmsemu.harness import ControlAPIError


class Gcp:
    def __init__(self, emu):
        self.emu = emu
        self.g = emu.info["gcp"]
        self.ctx = ssl.create_default_context(cafile=emu.ca_bundle)
        with open(self.g["service_account_file"]) as f:
            self.sa = json.load(f)
        self._token = None

    def conn(self):
        return http.client.HTTPSConnection("127.0.0.1", self.emu.info["ports"]["gcp"], context=self.ctx, timeout=10)

    def raw(self, method, path, body=None, headers=None, token=True):
        h = {"Content-Type": "application/json"}
        if token:
            h["Authorization"] = "Bearer " + (token if isinstance(token, str) else self.token())
        h.update(headers or {})
        c = self.conn()
        data = body if isinstance(body, (bytes, type(None))) else json.dumps(body).encode()
        c.request(method, path, body=data, headers=h)
        r = c.getresponse()
        out = r.status, dict(r.getheaders()), r.read()
        c.close()
        return out

    def call(self, method, path, body=None, **kw):
        status, headers, data = self.raw(method, path, body, **kw)
        return status, json.loads(data) if data else None

    def assertion(self, **claims):
        now = int(time.time())
        base = {"iss": self.sa["client_email"], "scope": "https://www.googleapis.com/auth/cloud-platform",
                "aud": self.sa["token_uri"], "iat": now, "exp": now + 3600}
        base.update(claims)
        key = serialization.load_pem_private_key(self.sa["private_key"].encode(), None)
        return jwt.encode(base, key, algorithm="RS256", headers={"kid": self.sa["private_key_id"]})

    def token_request(self, form):
        c = self.conn()
        c.request("POST", "/token", body=urllib.parse.urlencode(form),
                  headers={"Content-Type": "application/x-www-form-urlencoded"})
        r = c.getresponse()
        out = r.status, json.loads(r.read())
        c.close()
        return out

    def token(self):
        if self._token is None:
            status, body = self.token_request({"grant_type": "urn:ietf:params:oauth:grant-type:jwt-bearer",
                                               "assertion": self.assertion()})
            assert status == 200, body
            self._token = body["access_token"]
        return self._token


@pytest.fixture
def gcp(emu):
    return Gcp(emu)


def b64(data):
    return base64.b64encode(data).decode()


def test_crc32c_check_values():
    assert crc32c(b"123456789") == 0xE3069283
    assert crc32c(b"hello world") == 3381945770 and crc32c(b"aad-1") == 899476416


def test_encrypt_decrypt_and_crc_fields(gcp):
    key = gcp.g["keys"]["symmetric"]
    status, r = gcp.call("POST", "/v1/%s:encrypt" % key, {
        "plaintext": b64(b"hello world"), "plaintextCrc32c": "3381945770",
        "additionalAuthenticatedData": b64(b"aad-1"), "additionalAuthenticatedDataCrc32c": 899476416})
    assert status == 200, r
    assert r["name"] == key + "/cryptoKeyVersions/1" and r["protectionLevel"] == "SOFTWARE"
    assert r["verifiedPlaintextCrc32c"] is True and r["verifiedAdditionalAuthenticatedDataCrc32c"] is True
    ct = base64.b64decode(r["ciphertext"])
    assert r["ciphertextCrc32c"] == str(crc32c(ct))          # Int64Value as a JSON string
    status, d = gcp.call("POST", "/v1/%s:decrypt" % key, {
        "ciphertext": r["ciphertext"], "ciphertextCrc32c": r["ciphertextCrc32c"],
        "additionalAuthenticatedData": b64(b"aad-1")})
    assert status == 200 and base64.b64decode(d["plaintext"]) == b"hello world"
    assert d["plaintextCrc32c"] == "3381945770" and d["usedPrimary"] is True
    # No CRC sent: no verified* fields (proto3 omits false).
    status, r2 = gcp.call("POST", "/v1/%s:encrypt" % key, {"plaintext": b64(b"x")})
    assert "verifiedPlaintextCrc32c" not in r2


@pytest.mark.parametrize("field,value", [("plaintextCrc32c", "1"), ("additionalAuthenticatedDataCrc32c", "2")])
def test_tampered_request_crc(gcp, field, value):
    body = {"plaintext": b64(b"data"), "additionalAuthenticatedData": b64(b"aad"), field: value}
    status, r = gcp.call("POST", "/v1/%s:encrypt" % gcp.g["keys"]["symmetric"], body)
    assert status == 400 and r["error"]["status"] == "INVALID_ARGUMENT" and r["error"]["code"] == 400
    assert "checksum" in r["error"]["message"]


def test_corrupted_response_crc_fault(emu, gcp):
    key = gcp.g["keys"]["symmetric"]
    _, r = gcp.call("POST", "/v1/%s:encrypt" % key, {"plaintext": b64(b"p")})
    emu.fault(service="gcp", op="Decrypt", kind="corrupt_crc32c")
    _, d = gcp.call("POST", "/v1/%s:decrypt" % key, {"ciphertext": r["ciphertext"]})
    assert d["plaintextCrc32c"] != str(crc32c(base64.b64decode(d["plaintext"])))


def test_numeric_enums_when_asked(gcp):
    key = gcp.g["keys"]["symmetric"]
    _, by_name = gcp.call("GET", "/v1/" + key)
    assert by_name["purpose"] == "ENCRYPT_DECRYPT" and by_name["primary"]["state"] == "ENABLED"
    _, by_int = gcp.call("GET", "/v1/%s?$alt=json%%3Benum-encoding=int" % key)
    assert by_int["purpose"] == 1 and by_int["primary"]["state"] == 1 and by_int["primary"]["algorithm"] == 1
    assert by_name["createTime"].endswith("Z") and "T" in by_name["createTime"]


def test_versions_disable_destroy(emu, gcp):
    ring = gcp.g["key_ring"]
    status, key = gcp.call("POST", "/v1/%s/cryptoKeys?cryptoKeyId=py-key" % ring,
                           {"purpose": "ENCRYPT_DECRYPT", "rotationPeriod": "7776000s"})
    assert status == 200 and key["rotationPeriod"] == "7776000s"
    name = key["name"]
    _, old = gcp.call("POST", "/v1/%s:encrypt" % name, {"plaintext": b64(b"v1")})
    emu.rotate_key("gcp", name)                                   # control API: new primary version
    _, k = gcp.call("GET", "/v1/" + name)
    assert k["primary"]["name"].endswith("/cryptoKeyVersions/2")
    _, d = gcp.call("POST", "/v1/%s:decrypt" % name, {"ciphertext": old["ciphertext"]})
    assert base64.b64decode(d["plaintext"]) == b"v1" and "usedPrimary" not in d
    v1 = name + "/cryptoKeyVersions/1"
    status, v = gcp.call("PATCH", "/v1/%s?updateMask=state" % v1, {"state": "DISABLED"})
    assert status == 200 and v["state"] == "DISABLED"
    status, err = gcp.call("POST", "/v1/%s:decrypt" % name, {"ciphertext": old["ciphertext"]})
    assert status == 400 and err["error"]["status"] == "FAILED_PRECONDITION"
    assert err["error"]["message"] == "%s is not enabled, current state is: DISABLED." % v1
    emu.destroy_key("gcp", v1)
    _, v = gcp.call("GET", "/v1/" + v1)
    assert v["state"] == "DESTROYED" and "destroyEventTime" in v
    status, err = gcp.call("PATCH", "/v1/%s?updateMask=state" % v1, {"state": "ENABLED"})
    assert status == 400 and err["error"]["status"] == "FAILED_PRECONDITION"


def _rfc3339_seconds(t):
    import datetime
    return datetime.datetime.strptime(t[:19], "%Y-%m-%dT%H:%M:%S").replace(
        tzinfo=datetime.timezone.utc).timestamp()


def test_backdate_version(emu, gcp):
    """The control API ages a version's createTime (the primary's by default)."""
    ring = gcp.g["key_ring"]
    _, key = gcp.call("POST", "/v1/%s/cryptoKeys?cryptoKeyId=py-aged" % ring, {"purpose": "ENCRYPT_DECRYPT"})
    name = key["name"]
    before = _rfc3339_seconds(key["primary"]["createTime"])
    emu.key_action("gcp", "backdate", name, seconds=100 * 86400)
    _, k = gcp.call("GET", "/v1/" + name)
    aged = _rfc3339_seconds(k["primary"]["createTime"])
    assert abs((before - aged) - 100 * 86400) < 2
    assert _rfc3339_seconds(k["createTime"]) <= aged          # the key is no younger than its version
    emu.rotate_key("gcp", name)
    _, k = gcp.call("GET", "/v1/" + name)
    assert time.time() - _rfc3339_seconds(k["primary"]["createTime"]) < 60
    emu.key_action("gcp", "backdate", name + "/cryptoKeyVersions/1", seconds=1)
    _, v1 = gcp.call("GET", "/v1/%s/cryptoKeyVersions/1" % name)
    assert abs(_rfc3339_seconds(v1["createTime"]) - (aged - 1)) < 2
    with pytest.raises(ControlAPIError) as ei:
        emu.key_action("gcp", "backdate", name, seconds=-5)
    assert ei.value.status == 400


def test_wrong_key_and_unknown_key(gcp):
    ring = gcp.g["key_ring"]
    gcp.call("POST", "/v1/%s/cryptoKeys?cryptoKeyId=py-other" % ring, {"purpose": "ENCRYPT_DECRYPT"})
    _, r = gcp.call("POST", "/v1/%s:encrypt" % gcp.g["keys"]["symmetric"], {"plaintext": b64(b"x")})
    status, err = gcp.call("POST", "/v1/%s/cryptoKeys/py-other:decrypt" % ring, {"ciphertext": r["ciphertext"]})
    assert status == 400 and err["error"]["message"] == \
        "Decryption failed: verify that 'name' refers to the correct CryptoKey."
    status, err = gcp.call("POST", "/v1/%s/cryptoKeys/nope:encrypt" % ring, {"plaintext": b64(b"x")})
    assert status == 403 and err["error"]["status"] == "PERMISSION_DENIED"
    assert "cloudkms.cryptoKeyVersions.useToEncrypt" in err["error"]["message"]
    status, err = gcp.call("POST", "/v1/%s:encrypt" % gcp.g["keys"]["symmetric"], b"{broken")
    assert status == 400 and err["error"]["status"] == "INVALID_ARGUMENT"


def test_raw_encrypt_decrypt(gcp):
    name = gcp.g["keys"]["raw_aes_gcm"] + "/cryptoKeyVersions/1"
    status, e = gcp.call("POST", "/v1/%s:rawEncrypt" % name, {
        "plaintext": b64(b"raw"), "additionalAuthenticatedData": b64(b"aad"),
        "plaintextCrc32c": str(crc32c(b"raw"))})
    assert status == 200 and e["tagLength"] == 16 and e["verifiedPlaintextCrc32c"] is True
    iv = base64.b64decode(e["initializationVector"])
    assert len(iv) == 12 and e["initializationVectorCrc32c"] == str(crc32c(iv))
    status, d = gcp.call("POST", "/v1/%s:rawDecrypt" % name, {
        "ciphertext": e["ciphertext"], "additionalAuthenticatedData": b64(b"aad"),
        "initializationVector": e["initializationVector"], "initializationVectorCrc32c": e["initializationVectorCrc32c"]})
    assert status == 200 and base64.b64decode(d["plaintext"]) == b"raw"
    assert d["verifiedInitializationVectorCrc32c"] is True
    status, err = gcp.call("POST", "/v1/%s:rawDecrypt" % name, {
        "ciphertext": e["ciphertext"], "initializationVector": e["initializationVector"]})
    assert status == 400 and err["error"]["status"] == "INVALID_ARGUMENT"


def test_oauth_token_endpoint(emu, gcp):
    grant = "urn:ietf:params:oauth:grant-type:jwt-bearer"
    status, r = gcp.token_request({"grant_type": grant, "assertion": gcp.assertion()})
    assert status == 200 and r["token_type"] == "Bearer" and r["access_token"].startswith("ya29.")
    # gtoken always uses Google's URL as audience; that is accepted too.
    status, _ = gcp.token_request({"grant_type": grant,
                                   "assertion": gcp.assertion(aud="https://oauth2.googleapis.com/token")})
    assert status == 200
    forged = gcp.assertion()[:-4] + "AAAA"
    status, r = gcp.token_request({"grant_type": grant, "assertion": forged})
    assert status == 400 and r == {"error": "invalid_grant", "error_description": "Invalid JWT Signature."}
    now = int(time.time())
    status, r = gcp.token_request({"grant_type": grant, "assertion": gcp.assertion(iat=now - 7200, exp=now - 3600)})
    assert status == 400 and r["error"] == "invalid_grant"
    with open(gcp.g["authorized_user_file"]) as f:
        user = json.load(f)
    status, r = gcp.token_request({"grant_type": "refresh_token", "client_id": user["client_id"],
                                   "client_secret": user["client_secret"], "refresh_token": user["refresh_token"]})
    assert status == 200
    assert gcp.call("GET", "/v1/" + gcp.g["keys"]["symmetric"], token=r["access_token"])[0] == 200
    status, r = gcp.token_request({"grant_type": "refresh_token", "client_id": user["client_id"],
                                   "client_secret": user["client_secret"], "refresh_token": "1//bad"})
    assert status == 400 and r["error"] == "invalid_grant"


def test_self_signed_jwt_access(emu, gcp):
    key = gcp.g["keys"]["symmetric"]
    sa = gcp.sa["client_email"]
    tok = gcp.assertion(sub=sa, aud="https://cloudkms.googleapis.com/", scope=None)
    assert gcp.call("GET", "/v1/" + key, token=tok)[0] == 200
    tok = gcp.assertion(sub=sa, aud=None)                           # scope claim instead of aud
    assert gcp.call("GET", "/v1/" + key, token=tok)[0] == 200
    wrong_aud = gcp.assertion(sub=sa, aud="https://storage.googleapis.com/", scope=None)
    status, err = gcp.call("GET", "/v1/" + key, token=wrong_aud)
    assert status == 401 and err["error"]["status"] == "UNAUTHENTICATED"


def test_unauthenticated_and_revoked(emu, gcp):
    key = gcp.g["keys"]["symmetric"]
    status, err = gcp.call("GET", "/v1/" + key, token=False)
    assert status == 401 and err["error"]["details"][0]["reason"] == "CREDENTIALS_MISSING"
    expired = emu.issue("gcp", "access-token", lifetime=-1)["token"]
    assert gcp.call("GET", "/v1/" + key, token=expired)[0] == 401
    t = emu.issue("gcp", "access-token", principal="revoke-me@x.iam.gserviceaccount.com")["token"]
    assert gcp.call("GET", "/v1/" + key, token=t)[0] == 200
    emu.revoke("gcp", "revoke-me@x.iam.gserviceaccount.com")
    assert gcp.call("GET", "/v1/" + key, token=t)[0] == 401


def test_metadata_server(emu):
    port = emu.info["ports"]["metadata"]
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
    c.request("GET", "/computeMetadata/v1/instance/service-accounts/default/token")
    r = c.getresponse()
    r.read()
    assert r.status == 403 and r.getheader("Metadata-Flavor") == "Google"
    c.request("GET", "/computeMetadata/v1/instance/service-accounts/default/token",
              headers={"Metadata-Flavor": "Google"})
    r = c.getresponse()
    tok = json.loads(r.read())
    assert r.status == 200 and r.getheader("Metadata-Flavor") == "Google" and tok["token_type"] == "Bearer"
    c.request("GET", "/computeMetadata/v1/project/project-id", headers={"Metadata-Flavor": "Google"})
    r = c.getresponse()
    assert r.read().decode() == emu.info["gcp"]["project"]
    g = Gcp(emu)
    assert g.call("GET", "/v1/" + g.g["keys"]["symmetric"], token=tok["access_token"])[0] == 200


def test_throttle_fault_shape(emu, gcp):
    emu.fault(service="gcp", op="Encrypt", kind="throttle", retry_after=2)
    status, headers, body = gcp.raw("POST", "/v1/%s:encrypt" % gcp.g["keys"]["symmetric"], {"plaintext": b64(b"x")})
    err = json.loads(body)["error"]
    assert status == 429 and err["status"] == "RESOURCE_EXHAUSTED" and headers["Retry-After"] == "2"
