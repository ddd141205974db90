# SPDX-License-Identifier: Apache-2.0
"""Fidelity of the Azure Key Vault / Managed HSM and Entra ID emulation, proven with the Azure SDK
for Python (Debian python3-azure: azure-keyvault-keys 4.8.0b3, azure-identity 1.13.0b2).

Two settings point the SDK at loopback: `verify_challenge_resource=False`, because the SDK
checks that the vault host ends with the challenge resource's domain (vault.azure.net) and
127.0.0.1 cannot; and `instance_discovery=False` on credentials, so MSAL does not ask
login.microsoftonline.com to validate the emulator's authority.
"""

import http.client
import json
import ssl
import time

import pytest
from azure.core.credentials import AccessToken
from azure.core.exceptions import ClientAuthenticationError, HttpResponseError, ResourceNotFoundError
from azure.identity import (CertificateCredential, ClientAssertionCredential, ClientSecretCredential,
                            ManagedIdentityCredential)
from azure.keyvault.keys import KeyClient
from azure.keyvault.keys.crypto import CryptographyClient, EncryptionAlgorithm, KeyWrapAlgorithm

from kmsemu.harness import ControlAPIError


class StaticToken:
    """A credential that hands out one fixed token (for expired/foreign token tests)."""

    def __init__(self, token):
        self.token = token

    def get_token(self, *scopes, **kwargs):
        return AccessToken(self.token, int(time.time()) + 3600)


def _secret_cred(emu, secret=None):
    z = emu.info["azure"]
    return ClientSecretCredential(z["tenant_id"], z["client_id"], secret or z["client_secret"],
                                  authority=z["authority_host"], connection_verify=emu.ca_bundle,
                                  instance_discovery=False)


def _kc(emu, cred, hsm=False, **kw):
    z = emu.info["azure"]
    return KeyClient(z["managed_hsm_url"] if hsm else z["vault_url"], cred, verify_challenge_resource=False,
                     connection_verify=emu.ca_bundle, **kw)


def _cc(emu, key, cred, **kw):
    return CryptographyClient(key, cred, verify_challenge_resource=False, connection_verify=emu.ca_bundle, **kw)


def _remote_cc(emu, key, cred, vault="azure-hsm"):
    """A CryptographyClient that performs every operation on the service.

    Built from the key id with keys/get answered 403 once, which is the SDK's own path for
    callers without get permission (PROTOCOLS.md §5.2). Needed for oct-HSM keys: the Debian
    SDK (4.8.0b3), handed a KeyVaultKey without 'k', wraps locally under a random key.
    """
    emu.fault(service=vault, op="GetKey", kind="error", status=403)
    cc = _cc(emu, key.id, cred)
    cc._initialize()
    assert cc._keys_get_forbidden
    return cc


@pytest.fixture
def cred(emu):
    return _secret_cred(emu)


def test_key_lifecycle_and_rsa_operations(emu, cred):
    kc = _kc(emu, cred)
    key = kc.create_rsa_key("sdk-rsa", size=2048, tags={"purpose": "test"})
    assert key.key_type == "RSA" and key.properties.version and len(key.properties.version) == 32
    assert key.id == "%s/keys/sdk-rsa/%s" % (emu.info["azure"]["vault_url"], key.properties.version)
    got = kc.get_key("sdk-rsa")
    assert got.id == key.id and got.properties.tags == {"purpose": "test"}
    assert isinstance(got.properties.created_on.year, int)           # integer unix time on the wire
    emu.reset_counters()
    cc = _cc(emu, key, cred)
    for alg in (KeyWrapAlgorithm.rsa_oaep, KeyWrapAlgorithm.rsa_oaep_256, KeyWrapAlgorithm.rsa1_5):
        w = cc.wrap_key(alg, b"\x11" * 32)
        assert cc.unwrap_key(alg, w.encrypted_key).key == b"\x11" * 32
    for alg in (EncryptionAlgorithm.rsa_oaep, EncryptionAlgorithm.rsa_oaep_256):
        e = cc.encrypt(alg, b"hello")
        assert cc.decrypt(alg, e.ciphertext).plaintext == b"hello"
    # The SDK does the public-key half locally; the private-key half must reach the service.
    assert emu.count("azure-vault", "unwrapKey") == 3 and emu.count("azure-vault", "decrypt") == 2


def test_rsa_public_key_operations_on_the_service(emu, cred):
    """encrypt/wrapKey with RSA, forced remote (the SDK would do them locally)."""
    key = _kc(emu, cred).get_key(emu.info["azure"]["keys"]["vault_rsa"])
    emu.reset_counters()
    cc = _remote_cc(emu, key, cred, vault="azure-vault")
    w = cc.wrap_key(KeyWrapAlgorithm.rsa_oaep_256, b"\x22" * 32)
    e = cc.encrypt(EncryptionAlgorithm.rsa_oaep, b"remote")
    assert w.key_id == key.id and len(w.encrypted_key) == 256
    local = _cc(emu, key, cred)
    assert local.unwrap_key(KeyWrapAlgorithm.rsa_oaep_256, w.encrypted_key).key == b"\x22" * 32
    assert local.decrypt(EncryptionAlgorithm.rsa_oaep, e.ciphertext).plaintext == b"remote"
    assert emu.count("azure-vault", "wrapKey") == 1 and emu.count("azure-vault", "encrypt") == 1


def test_versions_rotation_and_disable(emu, cred):
    kc = _kc(emu, cred)
    v1 = kc.create_rsa_key("sdk-rot")
    cc1 = _cc(emu, v1, cred)
    wrapped = cc1.wrap_key(KeyWrapAlgorithm.rsa_oaep_256, b"k" * 32).encrypted_key
    emu.rotate_key("azure", "sdk-rot")
    versions = [p.version for p in kc.list_properties_of_key_versions("sdk-rot")]
    assert len(versions) == 2 and v1.properties.version in versions
    v2 = kc.get_key("sdk-rot")
    assert v2.properties.version != v1.properties.version
    # The old version still unwraps what it wrapped (kid names the version).
    assert cc1.unwrap_key(KeyWrapAlgorithm.rsa_oaep_256, wrapped).key == b"k" * 32
    kc.update_key_properties("sdk-rot", v1.properties.version, enabled=False)
    assert kc.get_key("sdk-rot", v1.properties.version).properties.enabled is False
    with pytest.raises(HttpResponseError) as ei:
        cc1.unwrap_key(KeyWrapAlgorithm.rsa_oaep_256, wrapped)
    assert ei.value.status_code == 403 and ei.value.error.code == "Forbidden"
    assert ei.value.error.innererror["code"] == "KeyDisabled"
    assert "not allowed on a disabled key" in ei.value.error.message
    kc.update_key_properties("sdk-rot", v1.properties.version, enabled=True)
    assert cc1.unwrap_key(KeyWrapAlgorithm.rsa_oaep_256, wrapped).key == b"k" * 32


def test_backdate_version(emu, cred):
    """The control API ages a version's attributes.created (the current version by default)."""
    kc = _kc(emu, cred)
    v1 = kc.create_rsa_key("sdk-aged")
    made = v1.properties.created_on.timestamp()
    out = emu.key_action("azure", "backdate", "sdk-aged", seconds=100 * 86400)
    assert out["version"] == v1.properties.version
    got = kc.get_key("sdk-aged").properties
    assert abs((made - got.created_on.timestamp()) - 100 * 86400) < 2
    assert got.updated_on.timestamp() <= made - 100 * 86400 + 1
    emu.rotate_key("azure", "sdk-aged")
    assert time.time() - kc.get_key("sdk-aged").properties.created_on.timestamp() < 60
    emu.key_action("azure", "backdate", "sdk-aged", seconds=5, version=v1.properties.version)
    old = kc.get_key("sdk-aged", v1.properties.version).properties.created_on.timestamp()
    assert abs(old - (made - 100 * 86400 - 5)) < 2
    with pytest.raises(ControlAPIError) as ei:
        emu.key_action("azure", "backdate", "sdk-aged", seconds=1, version="0" * 32)
    assert ei.value.status == 404


def test_managed_hsm_symmetric(emu, cred):
    hc = _kc(emu, cred, hsm=True)
    key = hc.get_key(emu.info["azure"]["keys"]["hsm_aes"])
    assert key.key_type == "oct-HSM" and key.key.k is None       # no symmetric material released
    emu.reset_counters()
    cc = _remote_cc(emu, key, cred)
    for alg, data in ((KeyWrapAlgorithm.aes_256, b"\x02" * 32), ("CKM_AES_KEY_WRAP", b"\x03" * 32),
                      ("CKM_AES_KEY_WRAP_PAD", b"\x04" * 20)):
        w = cc.wrap_key(alg, data)
        assert len(w.encrypted_key) == (len(data) + 7) // 8 * 8 + 8
        assert cc.unwrap_key(alg, w.encrypted_key).key == data
    e = cc.encrypt(EncryptionAlgorithm.a256_gcm, b"gcm data", additional_authenticated_data=b"aad")
    assert len(e.iv) == 12 and len(e.tag) == 16                  # the service generated the IV
    d = cc.decrypt(EncryptionAlgorithm.a256_gcm, e.ciphertext, iv=e.iv, authentication_tag=e.tag,
                   additional_authenticated_data=b"aad")
    assert d.plaintext == b"gcm data"
    with pytest.raises(HttpResponseError) as ei:
        cc.decrypt(EncryptionAlgorithm.a256_gcm, e.ciphertext, iv=e.iv, authentication_tag=e.tag,
                   additional_authenticated_data=b"other")
    assert ei.value.status_code == 400 and ei.value.error.code == "BadParameter"
    iv = b"\x05" * 16
    e = cc.encrypt(EncryptionAlgorithm.a256_cbcpad, b"padded", iv=iv)
    assert cc.decrypt(EncryptionAlgorithm.a256_cbcpad, e.ciphertext, iv=iv).plaintext == b"padded"
    assert emu.count("azure-hsm", "wrapKey") == 3 and emu.count("azure-hsm", "unwrapKey") == 3
    created = hc.create_oct_key("sdk-aes128", size=128, hardware_protected=True)
    with pytest.raises(HttpResponseError) as ei:
        _remote_cc(emu, created, cred).wrap_key(KeyWrapAlgorithm.aes_256, b"\x00" * 32)
    assert ei.value.error.code == "BadParameter"
    emu.disable_key("azure", "sdk-aes128", vault="hsm")
    with pytest.raises(HttpResponseError) as ei:
        _remote_cc(emu, created, cred).wrap_key(KeyWrapAlgorithm.aes_128, b"\x00" * 16)
    assert ei.value.status_code == 403


def test_key_not_found(emu, cred):
    with pytest.raises(ResourceNotFoundError) as ei:
        _kc(emu, cred).get_key("no-such-key")
    assert ei.value.error.code == "KeyNotFound"
    assert "A key with (name/id) no-such-key was not found" in ei.value.error.message


def test_certificate_credential(emu):
    z = emu.info["azure"]
    c = CertificateCredential(z["tenant_id"], z["client_id"], z["client_certificate_path"],
                              authority=z["authority_host"], connection_verify=emu.ca_bundle,
                              instance_discovery=False)
    assert _kc(emu, c).get_key("p11kms-rsa").key_type == "RSA"


def test_certificate_assertion_signature_is_verified(emu, tmp_path):
    """A certificate the app did not register is refused even with a well-formed assertion."""
    from kmsemu.emulator import _self_signed_cert
    from cryptography.hazmat.primitives import serialization
    key, cert = _self_signed_cert("intruder")
    pem = tmp_path / "other.pem"
    pem.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()) + cert.public_bytes(serialization.Encoding.PEM))
    z = emu.info["azure"]
    c = CertificateCredential(z["tenant_id"], z["client_id"], str(pem), authority=z["authority_host"],
                              connection_verify=emu.ca_bundle, instance_discovery=False)
    with pytest.raises(ClientAuthenticationError) as ei:
        c.get_token("https://vault.azure.net/.default")
    assert "AADSTS700027" in str(ei.value)


def test_workload_identity_federated_assertion(emu, monkeypatch):
    # This azure-identity beta passes every keyword on to object.__init__, so the authority and
    # CA bundle come from the environment, as on AKS (AZURE_AUTHORITY_HOST).
    z = emu.info["azure"]
    monkeypatch.setenv("AZURE_AUTHORITY_HOST", z["authority_host"])
    monkeypatch.setenv("REQUESTS_CA_BUNDLE", emu.ca_bundle)

    def assertion():
        with open(z["federated_token_file"]) as f:
            return f.read()
    c = ClientAssertionCredential(z["tenant_id"], z["federated_client_id"], assertion)
    assert _kc(emu, c).get_key("p11kms-rsa")
    other = emu.issue("azure", "federated", subject="system:serviceaccount:x:y")["token"]
    wrong = ClientAssertionCredential(z["tenant_id"], z["federated_client_id"], lambda: other)
    with pytest.raises(ClientAuthenticationError) as ei:
        wrong.get_token("https://vault.azure.net/.default")
    assert "AADSTS70021" in str(ei.value)


def test_managed_identity_imds(emu, monkeypatch):
    monkeypatch.setenv("AZURE_POD_IDENTITY_AUTHORITY_HOST", emu.info["azure"]["imds_endpoint"])
    c = ManagedIdentityCredential()
    assert _kc(emu, c).get_key("p11kms-rsa")
    log = [e for e in emu.log() if e["op"] == "AzureImdsToken"]
    assert log and log[-1]["status"] == 200 and log[-1]["headers"]["Metadata"] == "true"


def test_managed_identity_app_service(emu, monkeypatch):
    z = emu.info["azure"]
    monkeypatch.setenv("IDENTITY_ENDPOINT", z["identity_endpoint"])
    monkeypatch.setenv("IDENTITY_HEADER", z["identity_header"])
    assert _kc(emu, ManagedIdentityCredential()).get_key("p11kms-rsa")
    assert all(e["headers"].get("X-IDENTITY-HEADER") in (None, "<redacted>") for e in emu.log())


def test_wrong_secret_and_revoked_app(emu):
    with pytest.raises(ClientAuthenticationError) as ei:
        _secret_cred(emu, secret="wrong").get_token("https://vault.azure.net/.default")
    assert "AADSTS7000215" in str(ei.value)
    z = emu.info["azure"]
    emu.revoke("azure", z["client_id"])
    try:
        with pytest.raises(ClientAuthenticationError):
            _secret_cred(emu).get_token("https://vault.azure.net/.default")
    finally:
        emu.restore("azure", z["client_id"])


def test_expired_and_foreign_tokens(emu):
    expired = emu.issue("azure", "access-token", lifetime=-60)["token"]
    with pytest.raises(ClientAuthenticationError) as ei:
        _kc(emu, StaticToken(expired)).get_key("p11kms-rsa")
    assert ei.value.status_code == 401
    hsm_token = emu.issue("azure", "access-token", resource="https://managedhsm.azure.net")["token"]
    with pytest.raises(ClientAuthenticationError) as ei:
        _kc(emu, StaticToken(hsm_token)).get_key("p11kms-rsa")
    assert "AKV10022" in str(ei.value)
    with pytest.raises(ClientAuthenticationError):
        _kc(emu, StaticToken("eyJhbGciOiJub25lIn0.eyJhdWQiOiJ4In0.")).get_key("p11kms-rsa")


def test_bearer_challenge_before_body(emu):
    """401 with WWW-Authenticate, decided before the body is parsed (a broken body still gets 401)."""
    ctx = ssl.create_default_context(cafile=emu.ca_bundle)
    conn = http.client.HTTPSConnection("127.0.0.1", emu.info["ports"]["azure-vault"], context=ctx)
    conn.request("POST", "/keys/p11kms-rsa//wrapkey?api-version=7.4", body=b"{not json",
                 headers={"Content-Type": "application/json"})
    r = conn.getresponse()
    body = json.loads(r.read())
    assert r.status == 401 and body["error"]["code"] == "Unauthorized"
    challenge = r.getheader("WWW-Authenticate")
    assert challenge.startswith('Bearer authorization="https://127.0.0.1:') and \
        'resource="https://vault.azure.net"' in challenge
    tok = emu.issue("azure", "access-token")["token"]
    # Same connection (keep-alive survives the unread body), now authorised: padded base64 is refused.
    conn.request("POST", "/KEYS/p11kms-rsa/WrapKey?api-version=7.4",
                 body=json.dumps({"alg": "RSA-OAEP", "value": "AAAA+/=="}),
                 headers={"Authorization": "Bearer " + tok, "Content-Type": "application/json"})
    r = conn.getresponse()
    body = json.loads(r.read())
    assert r.status == 400 and body["error"]["code"] == "BadParameter"
    assert "not base64url" in body["error"]["message"]
    conn.request("GET", "/keys/p11kms-rsa/?api-version=2025-07-01", headers={"Authorization": "Bearer " + tok})
    r = conn.getresponse()
    body = json.loads(r.read())
    assert r.status == 200 and "=" not in body["key"]["n"] and isinstance(body["attributes"]["created"], int)
    conn.close()


def test_throttling_honours_retry_after(emu, cred):
    kc = _kc(emu, cred)
    kc.get_key("p11kms-rsa")                              # warm up the challenge and token
    emu.reset_counters()
    emu.fault(service="azure-vault", op="GetKey", kind="throttle", status=429, retry_after=1)
    t = time.monotonic()
    assert kc.get_key("p11kms-rsa")
    assert time.monotonic() - t >= 0.9                    # the SDK waited Retry-After
    c = emu.counters()["azure-vault/GetKey"]
    assert c["by_status"] == {"429": 1, "200": 1}
    emu.fault(service="azure-vault", op="GetKey", kind="error", status=503, count=0)
    with pytest.raises(HttpResponseError) as ei:
        _kc(emu, cred, retry_total=0).get_key("p11kms-rsa")
    assert ei.value.status_code == 503


def test_connection_reset_is_retried(emu, cred):
    kc = _kc(emu, cred)
    kc.get_key("p11kms-rsa")
    emu.fault(service="azure-vault", op="GetKey", kind="reset")
    assert kc.get_key("p11kms-rsa")
    c = emu.counters()["azure-vault/GetKey"]
    assert c["faults"] >= 1
