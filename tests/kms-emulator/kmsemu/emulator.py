# SPDX-License-Identifier: Apache-2.0
"""The emulator process: state of the three clouds, servers, faults, counters, log.

Every time check (token expiry, SigV4 skew, JWT iat/nbf/exp) uses Emulator.now(), so a test
can move the emulator clock through the control API instead of sleeping.
"""

import collections
import datetime
import json
import os
import secrets
import threading
import time

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID

from . import tlsutil
from .aws import AwsService, AwsState
from .azure import LoginService, VaultService, AzureState
from .control import ControlService
from .gcp import GcpService, GcpState, service_account_file
from .httpbase import HANDSHAKE_OP, EmuServer, ServerThread, redact_query
from .metadata import MetadataService
from .util import WORKLOAD_SUBJECT

FAULT_KINDS = ("latency", "error", "throttle", "reset", "drop", "tls", "slow_body", "corrupt_crc32c")
LOG_SIZE = 5000
OIDC_ISSUER = "https://127.0.0.1/kmsemu-oidc"


class Faults:
    """Rules matched in insertion order; each applies to `count` requests (0 = until cleared)."""

    def __init__(self):
        self._lock = threading.Lock()
        self._rules = []
        self._next = 1

    def add(self, rule):
        if not isinstance(rule, dict):
            raise ValueError("fault must be a JSON object")
        kind = rule.get("kind")
        if kind not in FAULT_KINDS:
            raise ValueError("kind must be one of %s" % ", ".join(FAULT_KINDS))
        for field in ("service", "op"):
            if not isinstance(rule.get(field, "*"), str):
                raise ValueError("%s must be a string" % field)
        count = rule.get("count", 1)
        if not isinstance(count, int) or count < 0:
            raise ValueError("count must be a non-negative integer")
        for field in ("delay_ms", "status", "retry_after"):
            if field in rule and (not isinstance(rule[field], int) or rule[field] < 0):
                raise ValueError("%s must be a non-negative integer" % field)
        if "status" in rule and not 400 <= rule["status"] <= 599:
            raise ValueError("status must be 4xx or 5xx")
        with self._lock:
            r = dict(rule, id=self._next, service=rule.get("service", "*"), op=rule.get("op", "*"),
                     count=count, remaining=count)
            self._next += 1
            self._rules.append(r)
            return r["id"]

    def take(self, service, op, exact=False):
        """The first rule matching service and op (exact: no '*' op wildcard), consumed once."""
        with self._lock:
            for r in self._rules:
                if r["service"] in ("*", service) and (r["op"] == op or (r["op"] == "*" and not exact)):
                    if r["count"]:
                        r["remaining"] -= 1
                        if r["remaining"] == 0:
                            self._rules.remove(r)
                    return dict(r)
        return None

    def list(self):
        with self._lock:
            return [dict(r) for r in self._rules]

    def clear(self):
        with self._lock:
            self._rules.clear()


def _self_signed_cert(cn):
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=30))
            .sign(key, hashes.SHA256()))
    return key, cert


def _write_secret(path, data):
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


class Emulator:
    def __init__(self, state_dir):
        self.state_dir = os.path.abspath(state_dir)
        os.makedirs(self.state_dir, mode=0o700, exist_ok=True)
        self.lock = threading.RLock()
        self.clock_offset = 0.0
        self.faults = Faults()
        self._stats_lock = threading.Lock()
        self.counters = {}
        self.log = collections.deque(maxlen=LOG_SIZE)
        self.seq = 0
        self.internal_errors = []
        self.revoked = set()
        # One OIDC issuer plays both the EKS/Kubernetes service-account token issuer
        # (AWS web identity) and the federated issuer of Azure workload identity.
        self.oidc_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.oidc_kid = secrets.token_hex(8)
        self.oidc_issuer = OIDC_ISSUER
        self.aws = AwsState(self)
        self.azure = AzureState(self)
        self.gcp = GcpState(self)
        self.gce_service_account = "emu-compute@%s.iam.gserviceaccount.com" % self.gcp.project
        self.services = {}
        self._threads = []
        self.info = None

    # --- clock, revocation, bookkeeping -------------------------------------------------------
    def now(self):
        return time.time() + self.clock_offset

    def is_revoked(self, cloud, ident):
        return (cloud, ident) in self.revoked

    def revoke(self, cloud, ident, revoked=True):
        with self.lock:
            if revoked:
                self.revoked.add((cloud, ident))
            else:
                self.revoked.discard((cloud, ident))
            if cloud == "aws" and ident in self.aws.creds:
                self.aws.creds[ident]["revoked"] = revoked

    def record(self, service, req, status, fault=None, started=None):
        """Count the request and append a log entry; secrets never enter the log."""
        headers = {}
        for k, v in req.headers.items():
            lk = k.lower()
            if lk in ("authorization", "x-amz-security-token", "x-aws-ec2-metadata-token",
                      "x-identity-header", "cookie", "proxy-authorization", "secret"):
                v = "<redacted>"
            headers[k] = v
        entry = {"time": round(self.now(), 3), "service": service, "op": req.op,
                 "method": req.method, "path": req.raw_path, "query": redact_query(req.raw_query),
                 "status": status, "principal": req.principal, "fault": fault, "headers": headers,
                 "duration_ms": round((time.monotonic() - started) * 1000, 2) if started else None}
        with self._stats_lock:
            self.seq += 1
            entry["seq"] = self.seq
            self.log.append(entry)
            c = self.counters.setdefault("%s/%s" % (service, req.op),
                                         {"service": service, "op": req.op, "requests": 0,
                                          "faults": 0, "by_status": {}})
            c["requests"] += 1
            if fault:
                c["faults"] += 1
            key = str(status) if status is not None else "none"
            c["by_status"][key] = c["by_status"].get(key, 0) + 1

    def count_failed_handshake(self, service):
        """A TLS handshake that did not complete: counters["<service>/handshake"]."""
        with self._stats_lock:
            c = self.counters.setdefault("%s/%s" % (service, HANDSHAKE_OP),
                                         {"service": service, "op": HANDSHAKE_OP, "requests": 0,
                                          "faults": 0, "by_status": {}})
            c["requests"] += 1
            c["by_status"]["failed"] = c["by_status"].get("failed", 0) + 1

    def note_internal_error(self, service, op, exc):
        with self._stats_lock:
            self.internal_errors.append("%s/%s: %r" % (service, op, exc))

    # --- tokens the tests hand to clients ---------------------------------------------------------
    def oidc_token(self, audience, subject=WORKLOAD_SUBJECT, lifetime=86400):
        now = int(self.now())
        return jwt.encode({"iss": self.oidc_issuer, "sub": subject, "aud": audience, "iat": now,
                           "nbf": now, "exp": now + lifetime}, self.oidc_key, algorithm="RS256",
                          headers={"kid": self.oidc_kid})

    # --- start / stop ---------------------------------------------------------------------------
    def start(self):
        pki = tlsutil.make_pki(self.state_dir)
        ctx = tlsutil.server_context(pki)
        self.untrusted_ssl_ctx = tlsutil.server_context(
            tlsutil.make_pki(os.path.join(self.state_dir, "untrusted-pki")))
        for svc in (AwsService(self), MetadataService(self), VaultService(self, "vault"),
                    VaultService(self, "hsm"), LoginService(self), GcpService(self), ControlService(self)):
            server = EmuServer(self, svc, ctx if svc.tls else None)
            self.services[svc.name] = svc
            t = ServerThread(server)
            t.start()
            self._threads.append(t)
        self._seed(pki)
        return self.info

    def stop(self):
        for t in self._threads:
            t.stop()
        self._threads = []

    def _seed(self, pki):
        d = self.state_dir
        s = self.services
        meta = s["metadata"].base_url
        # AWS
        aws = self.aws
        akid = aws.new_static_credentials()
        key = aws.create_key("p11kms emulator default key", alias="alias/p11kms-test")
        wi_file = os.path.join(d, "aws-web-identity-token")
        _write_secret(wi_file, self.oidc_token("sts.amazonaws.com"))
        # Azure
        az = self.azure
        cert_key, cert = _self_signed_cert("p11kms-emulator-client")
        client_id = az.register_app(secret=True, cert=cert)
        fed_id = az.register_app(secret=False, federated=[(self.oidc_issuer, WORKLOAD_SUBJECT)])
        cert_file = os.path.join(d, "azure-client-cert.pem")
        _write_secret(cert_file, cert_key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption()) + cert.public_bytes(serialization.Encoding.PEM))
        fed_file = os.path.join(d, "azure-federated-token")
        _write_secret(fed_file, self.oidc_token("api://AzureADTokenExchange"))
        az.create_key("vault", "p11kms-rsa", "RSA", 2048)
        az.create_key("hsm", "p11kms-aes", "oct-HSM", 256)
        az.create_key("hsm", "p11kms-rsa", "RSA-HSM", 2048)
        # Google
        g = self.gcp
        gsvc = s["gcp"]
        email, sa_key, sa_key_id = g.add_service_account()
        sa_file = os.path.join(d, "gcp-service-account.json")
        _write_secret(sa_file, json.dumps(service_account_file(g, email, sa_key, sa_key_id,
                                                               gsvc.base_url + "/token"), indent=2))
        user_id, user = g.add_user()
        user_file = os.path.join(d, "gcp-authorized-user.json")
        _write_secret(user_file, json.dumps({"type": "authorized_user", "client_id": user_id,
                                             "client_secret": user["secret"],
                                             "refresh_token": user["refresh_token"]}, indent=2))
        ring = g.create_key_ring("projects/%s/locations/global" % g.project, "p11kms")
        g.create_key(ring, "sym")
        g.create_key(ring, "raw-gcm", "RAW_ENCRYPT_DECRYPT", "AES_256_GCM")

        self.info = {
            "pid": os.getpid(),
            "state_dir": d,
            "ca_bundle": pki["ca"],
            "ports": {name: svc.port for name, svc in s.items()},
            "control_url": s["control"].base_url,
            "aws": {
                "endpoint_url": s["aws"].base_url, "sts_endpoint_url": s["aws"].base_url,
                "region": aws.region, "account_id": aws.account,
                "access_key_id": akid, "secret_access_key": aws.creds[akid]["secret"],
                "key_id": key.key_id, "key_arn": key.arn, "alias": "alias/p11kms-test",
                "role_arn": aws.role_arn, "web_identity_token_file": wi_file,
                "imds_endpoint": meta + "/",
                "container_credentials_full_uri": meta + "/ecs/credentials",
                "container_authorization_token": aws.container_token,
            },
            "azure": {
                "vault_url": s["azure-vault"].base_url, "managed_hsm_url": s["azure-hsm"].base_url,
                "authority_host": s["azure-login"].base_url, "tenant_id": az.tenant,
                "client_id": client_id, "client_secret": az.apps[client_id]["secret"],
                "client_certificate_path": cert_file,
                "federated_client_id": fed_id, "federated_token_file": fed_file,
                "managed_identity_client_id": az.mi_client_id,
                "imds_endpoint": meta, "identity_endpoint": meta + "/msi/token",
                "identity_header": az.identity_header,
                "keys": {"vault_rsa": "p11kms-rsa", "hsm_aes": "p11kms-aes", "hsm_rsa": "p11kms-rsa"},
            },
            "gcp": {
                "endpoint_url": gsvc.base_url, "api_endpoint": "127.0.0.1:%d" % gsvc.port,
                "token_uri": gsvc.base_url + "/token", "project": g.project,
                "service_account_email": email, "service_account_file": sa_file,
                "authorized_user_file": user_file, "metadata_host": "127.0.0.1:%d" % s["metadata"].port,
                "compute_service_account": self.gce_service_account, "key_ring": ring,
                "keys": {"symmetric": ring + "/cryptoKeys/sym", "raw_aes_gcm": ring + "/cryptoKeys/raw-gcm"},
            },
        }
        _write_secret(os.path.join(d, "emulator.json"), json.dumps(self.info, indent=2))
