# SPDX-License-Identifier: Apache-2.0
"""The control API, the harness, the command line, body limits, and the request log's redaction."""

import http.client
import json
import os
import ssl
import subprocess
import sys
import time

import pytest

from botocore.config import Config

from awsutil import kms_client, session
from conftest import EMU_DIR
from kmsemu.harness import ControlAPIError, start

sys.path.insert(0, EMU_DIR)
import bench  # noqa: E402


def test_fault_validation(emu):
    for bad in ({"kind": "nope"}, {"kind": "error", "status": 200}, {"kind": "latency", "delay_ms": -1},
                {"kind": "error", "count": "x"}):
        with pytest.raises(ControlAPIError) as ei:
            emu.fault(**bad)
        assert ei.value.status == 400
    emu.fault(kind="reset", count=0)            # "*"/"*" never reaches the control API itself
    assert len(emu.call("GET", "/v1/faults")["faults"]) == 1
    emu.clear_faults()
    fid = emu.fault(service="gcp", op="Encrypt", kind="latency", delay_ms=1, count=0)
    assert [f["id"] for f in emu.call("GET", "/v1/faults")["faults"]] == [fid]
    emu.clear_faults()
    assert emu.call("GET", "/v1/faults")["faults"] == []
    with pytest.raises(ControlAPIError) as ei:
        emu.call("GET", "/v1/nothing")
    assert ei.value.status == 404


def test_log_never_holds_secrets(emu):
    """Drive every credential path, then search the whole log for any secret value."""
    a, z = emu.info["aws"], emu.info["azure"]
    kms_client(emu).list_keys()
    emu.issue("azure", "access-token")
    secrets = [a["secret_access_key"], a["container_authorization_token"], z["client_secret"], z["identity_header"]]
    with open(a["web_identity_token_file"]) as f:
        secrets.append(f.read())
    blob = json.dumps(emu.log())
    assert emu.log(), "log is empty"
    for s in secrets:
        assert s not in blob
    entries = [e for e in emu.log() if e["service"] == "aws"]
    assert entries and all(e["headers"].get("Authorization") == "<redacted>" for e in entries
                           if "Authorization" in e["headers"])


@pytest.mark.parametrize("service,path,field", [
    ("aws", "/", "__type"), ("azure-vault", "/keys/x/create?api-version=7.4", "error"),
    ("gcp", "/v1/projects/p/locations/global/keyRings/r/cryptoKeys/k:encrypt", "error")])
def test_oversized_bodies_are_refused(emu, service, path, field):
    ctx = ssl.create_default_context(cafile=emu.ca_bundle)
    c = http.client.HTTPSConnection("127.0.0.1", emu.info["ports"][service], context=ctx, timeout=10)
    c.putrequest("POST", path)
    c.putheader("X-Amz-Target", "TrentService.ListKeys")
    tok = emu.issue("azure", "access-token")["token"] if service == "azure-vault" else None
    if tok:
        c.putheader("Authorization", "Bearer " + tok)
    c.putheader("Content-Length", str(5 << 20))
    c.endheaders()
    r = c.getresponse()
    body = json.loads(r.read())
    assert r.status == 413 and field in body
    c.close()


def test_malformed_json_gets_service_error_shapes(emu):
    ctx = ssl.create_default_context(cafile=emu.ca_bundle)
    tok = emu.issue("azure", "access-token")["token"]
    c = http.client.HTTPSConnection("127.0.0.1", emu.info["ports"]["azure-vault"], context=ctx, timeout=10)
    c.request("POST", "/keys/p11kms-rsa/encrypt?api-version=7.4", body=b"[1,2",
              headers={"Authorization": "Bearer " + tok, "Content-Type": "application/json"})
    r = c.getresponse()
    assert r.status == 400 and json.loads(r.read())["error"]["code"] == "BadParameter"
    # AWS: a signed request whose body is not JSON -> SerializationException.
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest
    from botocore.credentials import Credentials
    a = emu.info["aws"]
    req = AWSRequest("POST", a["endpoint_url"] + "/", data=b"{not json",
                     headers={"X-Amz-Target": "TrentService.Encrypt", "Content-Type": "application/x-amz-json-1.1"})
    SigV4Auth(Credentials(a["access_key_id"], a["secret_access_key"]), "kms", a["region"]).add_auth(req)
    c = http.client.HTTPSConnection("127.0.0.1", emu.info["ports"]["aws"], context=ctx, timeout=10)
    c.request("POST", "/", body=req.body, headers=dict(req.headers))
    r = c.getresponse()
    assert r.status == 400 and json.loads(r.read())["__type"] == "SerializationException"


def test_subprocess_mode_and_cli_env(tmp_path):
    with start(mode="subprocess", state_dir=str(tmp_path / "state")) as h:
        assert h.process.poll() is None
        assert os.path.exists(h.ca_bundle)
        kms_client(h).describe_key(KeyId=h.info["aws"]["alias"])
        out = subprocess.run(["/usr/bin/python3", os.path.join(EMU_DIR, "kmsemu.py"), "env",
                              "--state-dir", h.state_dir, "aws"], capture_output=True, text=True, check=True)
        assert "export AWS_ENDPOINT_URL_KMS=%s" % h.info["aws"]["endpoint_url"] in out.stdout
        assert oct(os.stat(os.path.join(h.state_dir, "emulator.json")).st_mode & 0o777) == "0o600"
        proc = h.process
    assert proc.poll() is not None


def test_keep_alive_without_nagle_stall(emu):
    """Guards against the Nagle/delayed-ACK stall (DESIGN.md §9), which caps boto3 near
    25 requests/s. Checked structurally, not by timing (machines are shared and noisy):
    every handler disables Nagle, and keep-alive connections are reused. The rate is
    printed for information; bench.py measures it properly."""
    from kmsemu import httpbase
    handlers = [c for c in vars(httpbase).values()
                if isinstance(c, type) and issubclass(c, httpbase.http.server.BaseHTTPRequestHandler)]
    assert handlers and all(c.disable_nagle_algorithm for c in handlers)
    assert all(c.protocol_version == "HTTP/1.1" for c in handlers)
    rps = bench.measure(emu, n=50)
    print("boto3 DescribeKey over keep-alive: %.0f requests/s (informational)" % rps)


def test_handshake_with_untrusted_certificate(emu):
    from botocore.exceptions import SSLError
    emu.fault(service="aws", op="handshake", kind="tls")
    fresh = kms_client(emu)                    # a new client: a new connection and handshake
    with pytest.raises(SSLError) as ei:
        fresh.list_keys()
    assert "CERTIFICATE_VERIFY_FAILED" in str(ei.value)
    fresh.list_keys()                          # the fault was consumed; the next handshake is fine


def test_failed_handshakes_are_counted(emu):
    """A client that refuses the certificate sends no request: the handshake counter shows how
    often it tried."""
    from botocore.exceptions import SSLError
    emu.reset_counters()
    a = emu.info["aws"]
    untrusting = session().create_client(
        "kms", region_name=a["region"], endpoint_url=a["endpoint_url"], verify=True,
        aws_access_key_id=a["access_key_id"], aws_secret_access_key=a["secret_access_key"],
        config=Config(retries={"mode": "standard", "total_max_attempts": 1}))
    with pytest.raises(SSLError):
        untrusting.list_keys()
    # The server's side of the handshake ends in its own thread, maybe after the client gave up.
    deadline = time.monotonic() + 10
    while emu.count("aws", "handshake") < 1 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert emu.count("aws", "handshake") == 1
    assert emu.counters()["aws/handshake"]["by_status"] == {"failed": 1}
    assert emu.count("aws", "ListKeys") == 0
    kms_client(emu).list_keys()                # a trusting client's handshake is not counted
    assert emu.count("aws", "handshake") == 1


def test_malformed_framing(emu):
    ctx = ssl.create_default_context(cafile=emu.ca_bundle)
    port = emu.info["ports"]["gcp"]
    for headers, body in (({"Content-Length": "-5"}, b""), ({"Transfer-Encoding": "chunked"}, b"zz\r\n")):
        c = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=10)
        c.putrequest("POST", "/v1/projects/p/locations/global/keyRings/r/cryptoKeys/k:encrypt",
                     skip_accept_encoding=True)
        for k, v in headers.items():
            c.putheader(k, v)
        c.endheaders(body)
        r = c.getresponse()
        assert r.status == 400 and json.loads(r.read())["error"]["status"] == "INVALID_ARGUMENT"
        assert r.getheader("Connection") == "close"
        c.close()
    # A chunked body is accepted (within the cap) and deeply nested JSON is a client error.
    tok = emu.issue("gcp", "access-token")["token"]
    c = http.client.HTTPSConnection("127.0.0.1", port, context=ctx, timeout=10)
    c.request("POST", "/v1/%s:encrypt" % emu.info["gcp"]["keys"]["symmetric"], body=iter([b"[" * 5000, b"]" * 5000]),
              headers={"Authorization": "Bearer " + tok, "Transfer-Encoding": "chunked"}, encode_chunked=True)
    r = c.getresponse()
    assert r.status == 400 and "nested" in json.loads(r.read())["error"]["message"]
