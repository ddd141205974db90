# SPDX-License-Identifier: Apache-2.0
"""Fidelity of the AWS KMS emulation, proven with botocore (Debian python3-botocore)."""


import pytest
from botocore.exceptions import ClientError, ConnectionClosedError, EndpointConnectionError, \
    ReadTimeoutError, SSLError

from awsutil import HAS_NEW_MODEL, kms_client
from kmsemu.harness import ControlAPIError


@pytest.fixture
def kms(emu):
    return kms_client(emu)


def _code(excinfo):
    return excinfo.value.response["Error"]["Code"]


def test_encrypt_decrypt_with_every_key_form(emu, kms):
    a = emu.info["aws"]
    for ref in (a["key_id"], a["key_arn"], a["alias"],
                "arn:aws:kms:%s:%s:%s" % (a["region"], a["account_id"], a["alias"])):
        r = kms.encrypt(KeyId=ref, Plaintext=b"hello world", EncryptionContext={"purpose": "demo"})
        assert r["KeyId"] == a["key_arn"]           # responses always name the key ARN
        assert r["EncryptionAlgorithm"] == "SYMMETRIC_DEFAULT"
        d = kms.decrypt(CiphertextBlob=r["CiphertextBlob"], EncryptionContext={"purpose": "demo"})
        assert d["Plaintext"] == b"hello world" and d["KeyId"] == a["key_arn"]


def test_encryption_context_is_bound(kms):
    blob = kms.encrypt(KeyId="alias/p11kms-test", Plaintext=b"x", EncryptionContext={"a": "1"})["CiphertextBlob"]
    for ctx in ({}, {"a": "2"}, {"a": "1", "b": "2"}):
        with pytest.raises(ClientError) as ei:
            kms.decrypt(CiphertextBlob=blob, EncryptionContext=ctx)
        assert _code(ei) == "InvalidCiphertextException"
    tampered = blob[:-1] + bytes([blob[-1] ^ 1])
    with pytest.raises(ClientError) as ei:
        kms.decrypt(CiphertextBlob=tampered, EncryptionContext={"a": "1"})
    assert _code(ei) == "InvalidCiphertextException"


def test_generate_data_key_and_reencrypt(kms):
    gdk = kms.generate_data_key(KeyId="alias/p11kms-test", KeySpec="AES_256")
    assert len(gdk["Plaintext"]) == 32
    assert kms.decrypt(CiphertextBlob=gdk["CiphertextBlob"])["Plaintext"] == gdk["Plaintext"]
    n = kms.generate_data_key(KeyId="alias/p11kms-test", NumberOfBytes=24)
    assert len(n["Plaintext"]) == 24
    wo = kms.generate_data_key_without_plaintext(KeyId="alias/p11kms-test", KeySpec="AES_128")
    assert "Plaintext" not in wo
    assert len(kms.decrypt(CiphertextBlob=wo["CiphertextBlob"])["Plaintext"]) == 16
    with pytest.raises(ClientError) as ei:
        kms.generate_data_key(KeyId="alias/p11kms-test", KeySpec="AES_256", NumberOfBytes=32)
    assert _code(ei) == "ValidationException"
    other = kms.create_key(Description="reencrypt target")["KeyMetadata"]
    re = kms.re_encrypt(CiphertextBlob=gdk["CiphertextBlob"], DestinationKeyId=other["KeyId"],
                        DestinationEncryptionContext={"k": "v"})
    assert re["KeyId"] == other["Arn"] and re["SourceKeyId"].endswith(gdk["KeyId"].split("/")[-1])
    assert kms.decrypt(CiphertextBlob=re["CiphertextBlob"], EncryptionContext={"k": "v"})["Plaintext"] \
        == gdk["Plaintext"]


def test_describe_list_create_alias(kms):
    md = kms.create_key(Description="made by boto3")["KeyMetadata"]
    assert md["KeyState"] == "Enabled" and md["KeySpec"] == "SYMMETRIC_DEFAULT"
    assert md["Arn"].startswith("arn:aws:kms:us-east-1:111122223333:key/")
    kms.create_alias(AliasName="alias/boto3-made", TargetKeyId=md["KeyId"])
    with pytest.raises(ClientError) as ei:
        kms.create_alias(AliasName="alias/boto3-made", TargetKeyId=md["KeyId"])
    assert _code(ei) == "AlreadyExistsException"
    d = kms.describe_key(KeyId="alias/boto3-made")["KeyMetadata"]
    assert d["KeyId"] == md["KeyId"] and d["Description"] == "made by boto3"
    assert hasattr(d["CreationDate"], "year")          # epoch number parsed as a timestamp
    ids = [k["KeyId"] for page in kms.get_paginator("list_keys").paginate(PaginationConfig={"PageSize": 1})
           for k in page["Keys"]]
    assert md["KeyId"] in ids and len(ids) == len(set(ids))
    aliases = kms.list_aliases(KeyId=md["KeyId"])["Aliases"]
    assert [a["AliasName"] for a in aliases] == ["alias/boto3-made"]
    with pytest.raises(ClientError) as ei:
        kms.describe_key(KeyId="alias/does-not-exist")
    assert _code(ei) == "NotFoundException"
    with pytest.raises(ClientError) as ei:
        kms.describe_key(KeyId="00000000-0000-0000-0000-000000000000")
    assert _code(ei) == "NotFoundException"
    assert ei.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


def test_disable_enable_schedule_cancel(kms):
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    blob = kms.encrypt(KeyId=key, Plaintext=b"secret")["CiphertextBlob"]
    kms.disable_key(KeyId=key)
    assert kms.describe_key(KeyId=key)["KeyMetadata"]["KeyState"] == "Disabled"
    for call in (lambda: kms.encrypt(KeyId=key, Plaintext=b"x"), lambda: kms.decrypt(CiphertextBlob=blob)):
        with pytest.raises(ClientError) as ei:
            call()
        assert _code(ei) == "DisabledException"
        assert ei.value.response["Error"]["Message"].endswith("is disabled.")
    kms.enable_key(KeyId=key)
    assert kms.decrypt(CiphertextBlob=blob)["Plaintext"] == b"secret"
    r = kms.schedule_key_deletion(KeyId=key, PendingWindowInDays=7)
    assert r["KeyState"] == "PendingDeletion" and r["PendingWindowInDays"] == 7
    with pytest.raises(ClientError) as ei:
        kms.decrypt(CiphertextBlob=blob)
    assert _code(ei) == "KMSInvalidStateException"
    with pytest.raises(ClientError) as ei:
        kms.schedule_key_deletion(KeyId=key, PendingWindowInDays=3)
    assert _code(ei) == "ValidationException"
    kms.cancel_key_deletion(KeyId=key)
    assert kms.describe_key(KeyId=key)["KeyMetadata"]["KeyState"] == "Disabled"


def test_rotation_keeps_old_ciphertexts(emu, kms):
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    assert kms.get_key_rotation_status(KeyId=key)["KeyRotationEnabled"] is False
    kms.enable_key_rotation(KeyId=key)
    st = kms.get_key_rotation_status(KeyId=key)
    assert st["KeyRotationEnabled"] is True
    old = kms.encrypt(KeyId=key, Plaintext=b"v1")["CiphertextBlob"]
    if HAS_NEW_MODEL:
        assert kms.rotate_key_on_demand(KeyId=key)["KeyId"] == key
    else:
        emu.rotate_key("aws", key)
    new = kms.encrypt(KeyId=key, Plaintext=b"v2")["CiphertextBlob"]
    d_old, d_new = kms.decrypt(CiphertextBlob=old), kms.decrypt(CiphertextBlob=new)
    assert d_old["Plaintext"] == b"v1" and d_new["Plaintext"] == b"v2"
    if HAS_NEW_MODEL:
        # The blob names its backing key version: KeyMaterialId differs across the rotation.
        assert d_old["KeyMaterialId"] != d_new["KeyMaterialId"]
        assert "OnDemandRotationStartDate" in kms.get_key_rotation_status(KeyId=key)
    emu.rotate_key("aws", key)                          # control-API rotation as well
    assert kms.decrypt(CiphertextBlob=old)["Plaintext"] == b"v1"


@pytest.mark.skipif(not HAS_NEW_MODEL, reason="Debian's botocore 1.29 has no ListKeyRotations")
def test_list_key_rotations(emu, kms):
    md = kms.create_key()["KeyMetadata"]
    key, first = md["KeyId"], md["CurrentKeyMaterialId"]
    # Never rotated: no rotations; ALL_KEY_MATERIAL shows the first material, undated.
    assert kms.list_key_rotations(KeyId=key)["Rotations"] == []
    allm = kms.list_key_rotations(KeyId=md["Arn"], IncludeKeyMaterial="ALL_KEY_MATERIAL")
    assert allm["Truncated"] is False
    assert allm["Rotations"] == [{"KeyId": key, "KeyMaterialId": first, "KeyMaterialState": "CURRENT"}]
    t0 = emu.emulator.now()
    kms.rotate_key_on_demand(KeyId=key)
    emu.rotate_key("aws", key)                              # a scheduled rotation
    rot = kms.list_key_rotations(KeyId=key)["Rotations"]
    cur = kms.describe_key(KeyId=key)["KeyMetadata"]["CurrentKeyMaterialId"]
    assert [r["RotationType"] for r in rot] == ["ON_DEMAND", "AUTOMATIC"]
    assert [r["KeyMaterialState"] for r in rot] == ["NON_CURRENT", "CURRENT"]
    assert rot[-1]["KeyMaterialId"] == cur and cur != first
    assert all(r["RotationDate"].timestamp() >= t0 - 1 for r in rot)   # botocore parses epoch numbers
    # The newest material seals: Decrypt names it.
    blob = kms.encrypt(KeyId=key, Plaintext=b"x")["CiphertextBlob"]
    assert kms.decrypt(CiphertextBlob=blob)["KeyMaterialId"] == cur
    # Paging with Limit/Marker.
    p1 = kms.list_key_rotations(KeyId=key, Limit=1)
    assert p1["Truncated"] is True and len(p1["Rotations"]) == 1
    p2 = kms.list_key_rotations(KeyId=key, Limit=1, Marker=p1["NextMarker"])
    assert p2["Truncated"] is False and p2["Rotations"][0]["KeyMaterialId"] == cur
    # An alias is not a key id or key ARN; an asymmetric key has no rotations.
    kms.create_alias(AliasName="alias/rot-list", TargetKeyId=key)
    with pytest.raises(ClientError) as ei:
        kms.list_key_rotations(KeyId="alias/rot-list")
    assert _code(ei) == "NotFoundException"
    rsa = kms.create_key(KeySpec="RSA_2048", KeyUsage="ENCRYPT_DECRYPT")["KeyMetadata"]["KeyId"]
    with pytest.raises(ClientError) as ei:
        kms.list_key_rotations(KeyId=rsa)
    assert _code(ei) == "UnsupportedOperationException"
    with pytest.raises(ClientError) as ei:
        kms.list_key_rotations(KeyId=key, IncludeKeyMaterial="SOME")
    assert _code(ei) == "ValidationException"


def test_backdate_key_material(emu, kms):
    """The control API ages the current material (RotationDate) or, never rotated, the key."""
    md = kms.create_key()["KeyMetadata"]
    key, created = md["KeyId"], md["CreationDate"].timestamp()
    out = emu.key_action("aws", "backdate", key, seconds=100 * 86400)
    assert out["version"] == md["CurrentKeyMaterialId"]
    aged = kms.describe_key(KeyId=key)["KeyMetadata"]["CreationDate"].timestamp()
    assert abs((created - aged) - 100 * 86400) < 2
    emu.rotate_key("aws", key)
    new = kms.describe_key(KeyId=key)["KeyMetadata"]["CurrentKeyMaterialId"]
    emu.key_action("aws", "backdate", key, seconds=91 * 86400)
    if HAS_NEW_MODEL:
        rot = kms.list_key_rotations(KeyId=key)["Rotations"]
        assert rot[0]["KeyMaterialId"] == new
        assert emu.emulator.now() - rot[0]["RotationDate"].timestamp() > 90 * 86400
    # The key is older than its newest material, still.
    assert kms.describe_key(KeyId=key)["KeyMetadata"]["CreationDate"].timestamp() == aged
    # Naming a material; nonsense refused.
    emu.key_action("aws", "backdate", key, seconds=1, version=md["CurrentKeyMaterialId"])
    for bad in ({"seconds": -1}, {"seconds": "x"}, {}, {"seconds": 1, "version": "nope"}):
        with pytest.raises(ControlAPIError) as ei:
            emu.key_action("aws", "backdate", key, **bad)
        assert ei.value.status == 400


def test_decrypt_after_key_destroyed(emu, kms):
    key = kms.create_key()["KeyMetadata"]["KeyId"]
    blob = kms.encrypt(KeyId=key, Plaintext=b"gone")["CiphertextBlob"]
    emu.destroy_key("aws", key)
    with pytest.raises(ClientError) as ei:
        kms.decrypt(CiphertextBlob=blob)
    assert _code(ei) == "AccessDeniedException"
    assert "does not exist" in ei.value.response["Error"]["Message"]     # capital-M "Message" on the wire


def test_incorrect_key_and_validation(kms):
    other = kms.create_key()["KeyMetadata"]["KeyId"]
    blob = kms.encrypt(KeyId="alias/p11kms-test", Plaintext=b"x")["CiphertextBlob"]
    with pytest.raises(ClientError) as ei:
        kms.decrypt(CiphertextBlob=blob, KeyId=other)
    assert _code(ei) == "IncorrectKeyException"
    with pytest.raises(ClientError) as ei:
        kms.encrypt(KeyId="alias/p11kms-test", Plaintext=b"x" * 4097)
    assert _code(ei) == "ValidationException"


def test_wrong_signature_is_rejected(emu):
    bad = kms_client(emu, secret=emu.info["aws"]["secret_access_key"] + "x")
    with pytest.raises(ClientError) as ei:
        bad.list_keys()
    assert _code(ei) == "InvalidSignatureException"
    assert "does not match the signature you provided" in ei.value.response["Error"]["Message"]
    unknown = kms_client(emu, access_key="AKIAUNKNOWNUNKNOWN00")
    with pytest.raises(ClientError) as ei:
        unknown.list_keys()
    assert _code(ei) == "UnrecognizedClientException"


def test_clock_skew_is_rejected(emu, kms):
    emu.set_clock_offset(600)        # the emulator's clock runs 10 minutes ahead of the client's
    with pytest.raises(ClientError) as ei:
        kms.list_keys()
    assert _code(ei) == "InvalidSignatureException"
    assert ei.value.response["Error"]["Message"].startswith("Signature expired: ")
    emu.set_clock_offset(-600)
    with pytest.raises(ClientError) as ei:
        kms.list_keys()
    assert ei.value.response["Error"]["Message"].startswith("Signature not yet current: ")


def test_session_tokens(emu):
    s = emu.issue("aws", "session", lifetime=60)
    good = kms_client(emu, s["access_key_id"], s["secret_access_key"], s["session_token"])
    good.list_keys()
    forged = kms_client(emu, s["access_key_id"], s["secret_access_key"], s["session_token"] + "x")
    with pytest.raises(ClientError) as ei:
        forged.list_keys()
    assert _code(ei) == "UnrecognizedClientException"
    missing = kms_client(emu, s["access_key_id"], s["secret_access_key"])
    with pytest.raises(ClientError) as ei:
        missing.list_keys()
    assert _code(ei) == "UnrecognizedClientException"
    emu.set_clock_offset(120)
    with pytest.raises(ClientError) as ei:
        # botocore signs with its own clock, so only the emulator sees the token as expired
        good.list_keys()
    assert _code(ei) == "ExpiredTokenException"


def test_revoked_access_key(emu):
    c = emu.issue("aws", "static")
    client = kms_client(emu, c["access_key_id"], c["secret_access_key"])
    client.list_keys()
    emu.revoke("aws", c["access_key_id"])
    with pytest.raises(ClientError) as ei:
        client.list_keys()
    assert _code(ei) == "UnrecognizedClientException"


# --- faults seen through the SDK ------------------------------------------------------------------
def test_throttling_is_retried_by_the_sdk(emu):
    kms = kms_client(emu, retries=2)
    emu.reset_counters()
    emu.fault(service="aws", op="GenerateDataKey", kind="throttle", count=2)
    r = kms.generate_data_key(KeyId="alias/p11kms-test", KeySpec="AES_256")
    assert r["ResponseMetadata"]["RetryAttempts"] == 2
    c = emu.counters()["aws/GenerateDataKey"]
    assert c["requests"] == 3 and c["faults"] == 2 and c["by_status"]["400"] == 2


def test_throttling_surfaces_when_retries_run_out(emu):
    kms = kms_client(emu, retries=0)
    emu.fault(service="aws", op="Encrypt", kind="throttle")
    with pytest.raises(ClientError) as ei:
        kms.encrypt(KeyId="alias/p11kms-test", Plaintext=b"x")
    assert _code(ei) == "ThrottlingException"
    assert ei.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400


@pytest.mark.parametrize("status,code", [(500, "KMSInternalException"), (503, "DependencyTimeoutException")])
def test_server_errors(emu, status, code):
    kms = kms_client(emu, retries=0)
    emu.fault(service="aws", op="Decrypt", kind="error", status=status, retry_after=1)
    blob = kms.encrypt(KeyId="alias/p11kms-test", Plaintext=b"x")["CiphertextBlob"]
    with pytest.raises(ClientError) as ei:
        kms.decrypt(CiphertextBlob=blob)
    assert _code(ei) == code
    assert ei.value.response["ResponseMetadata"]["HTTPStatusCode"] == status
    assert ei.value.response["ResponseMetadata"]["HTTPHeaders"]["retry-after"] == "1"


def test_connection_reset_then_retry(emu):
    kms = kms_client(emu, retries=1)
    emu.fault(service="aws", op="DescribeKey", kind="reset")
    r = kms.describe_key(KeyId="alias/p11kms-test")
    assert r["ResponseMetadata"]["RetryAttempts"] == 1
    emu.fault(service="aws", op="DescribeKey", kind="reset")
    with pytest.raises((ConnectionClosedError, EndpointConnectionError)):
        kms_client(emu, retries=0).describe_key(KeyId="alias/p11kms-test")


def test_tls_failure(emu):
    emu.fault(service="aws", op="ListKeys", kind="tls")
    with pytest.raises((SSLError, ConnectionClosedError, EndpointConnectionError)):
        kms_client(emu, retries=0).list_keys()


def test_latency_and_slow_body_hit_read_timeout(emu):
    kms = kms_client(emu, retries=0, read_timeout=0.5, connect_timeout=2)
    emu.fault(service="aws", op="ListAliases", kind="latency", delay_ms=1500)
    with pytest.raises(ReadTimeoutError):      # the 0.5 s read timeout fired before the 1.5 s reply
        kms.list_aliases()
    emu.fault(service="aws", op="ListAliases", kind="latency", delay_ms=200)
    assert "Aliases" in kms.list_aliases()
    # The body comes in 8 pieces, delay_ms / 8 apart: 1 s gaps, twice the
    # read timeout (4000 ms made 0.5 s gaps, the timeout itself: a race).
    emu.fault(service="aws", op="ListKeys", kind="slow_body", delay_ms=8000)
    with pytest.raises((ReadTimeoutError, ConnectionClosedError)):
        kms.list_keys()


def test_wire_details(emu):
    """Raw request checks: content type, request id header, error shapes, body limits."""
    import http.client
    import json
    import ssl
    ctx = ssl.create_default_context(cafile=emu.ca_bundle)
    conn = http.client.HTTPSConnection("127.0.0.1", emu.info["ports"]["aws"], context=ctx)
    conn.request("POST", "/", body=b"{}", headers={"X-Amz-Target": "TrentService.ListKeys",
                                                  "Content-Type": "application/x-amz-json-1.1"})
    r = conn.getresponse()
    body = json.loads(r.read())
    assert r.status == 400 and body["__type"] == "MissingAuthenticationTokenException"
    assert r.getheader("Content-Type") == "application/x-amz-json-1.1" and r.getheader("x-amzn-RequestId")
    # An oversized body is refused from its Content-Length, before it is read.
    conn.putrequest("POST", "/")
    conn.putheader("X-Amz-Target", "TrentService.ListKeys")
    conn.putheader("Content-Length", str(2 << 20))
    conn.endheaders()
    r = conn.getresponse()
    assert r.status == 413 and json.loads(r.read())["__type"] == "ValidationException"
    conn.close()
