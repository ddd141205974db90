# SPDX-License-Identifier: Apache-2.0
"""Google Cloud KMS v1 REST and the Google OAuth 2.0 token endpoint.

Paths, field names and enum values come from the KMS v1 protos
(vectors/gcp/kms-v1-protos, google.api.http options); JSON follows the proto3
mapping (Int64Value CRC32C as strings, bytes as base64, RFC 3339 times,
numeric enums when the request asks for `$alt=json;enum-encoding=int`).
Errors are google.rpc.Status bodies (PROTOCOLS.md §3.5).
"""

import json
import re
import secrets
import struct

import jwt
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from . import signing
from .crc32c import crc32c
from .httpbase import Response, Service, ServiceError
from .util import JWT_NO_TIME, b64, rfc3339, unb64

HTTP_OF = {"INVALID_ARGUMENT": 400, "FAILED_PRECONDITION": 400, "OUT_OF_RANGE": 400,
           "UNAUTHENTICATED": 401, "PERMISSION_DENIED": 403, "NOT_FOUND": 404, "ALREADY_EXISTS": 409,
           "ABORTED": 409, "RESOURCE_EXHAUSTED": 429, "INTERNAL": 500, "UNKNOWN": 500,
           "UNIMPLEMENTED": 501, "UNAVAILABLE": 503, "DEADLINE_EXCEEDED": 504}
ENUMS = {
    "state": {"CRYPTO_KEY_VERSION_STATE_UNSPECIFIED": 0, "ENABLED": 1, "DISABLED": 2, "DESTROYED": 3,
              "DESTROY_SCHEDULED": 4, "PENDING_GENERATION": 5},
    "purpose": {"ENCRYPT_DECRYPT": 1, "ASYMMETRIC_SIGN": 5, "ASYMMETRIC_DECRYPT": 6,
                "RAW_ENCRYPT_DECRYPT": 7},
    "protectionLevel": {"SOFTWARE": 1, "HSM": 2},
    "algorithm": {"GOOGLE_SYMMETRIC_ENCRYPTION": 1, "AES_256_GCM": 19, "AES_128_GCM": 41,
                  "AES_128_CBC": 42, "AES_256_CBC": 43, "AES_128_CTR": 44, "AES_256_CTR": 45,
                  "RSA_SIGN_PSS_2048_SHA256": 2, "RSA_SIGN_PSS_3072_SHA256": 3,
                  "RSA_SIGN_PSS_4096_SHA256": 4, "RSA_SIGN_PSS_4096_SHA512": 15,
                  "RSA_SIGN_PKCS1_2048_SHA256": 5, "RSA_SIGN_PKCS1_3072_SHA256": 6,
                  "RSA_SIGN_PKCS1_4096_SHA256": 7, "RSA_SIGN_PKCS1_4096_SHA512": 16,
                  "RSA_DECRYPT_OAEP_2048_SHA256": 8, "RSA_DECRYPT_OAEP_3072_SHA256": 9,
                  "RSA_DECRYPT_OAEP_4096_SHA256": 10, "RSA_DECRYPT_OAEP_4096_SHA512": 17,
                  "RSA_DECRYPT_OAEP_2048_SHA1": 37, "RSA_DECRYPT_OAEP_3072_SHA1": 38,
                  "RSA_DECRYPT_OAEP_4096_SHA1": 39, "EC_SIGN_P256_SHA256": 12,
                  "EC_SIGN_P384_SHA384": 13},
}
# CryptoKeyVersionAlgorithm [resources.proto] of the asymmetric purposes -> (purpose, key, scheme,
# hash): key is an RSA modulus size or an EC curve; RSA_SIGN_PSS_* use salt = hash length.
ASYM_ALGS = {}
for _bits in (2048, 3072, 4096):
    ASYM_ALGS["RSA_SIGN_PSS_%d_SHA256" % _bits] = ("ASYMMETRIC_SIGN", _bits, "pss", "sha256")
    ASYM_ALGS["RSA_SIGN_PKCS1_%d_SHA256" % _bits] = ("ASYMMETRIC_SIGN", _bits, "pkcs1", "sha256")
    ASYM_ALGS["RSA_DECRYPT_OAEP_%d_SHA256" % _bits] = ("ASYMMETRIC_DECRYPT", _bits, "oaep", "sha256")
    ASYM_ALGS["RSA_DECRYPT_OAEP_%d_SHA1" % _bits] = ("ASYMMETRIC_DECRYPT", _bits, "oaep", "sha1")
ASYM_ALGS.update({
    "RSA_SIGN_PSS_4096_SHA512": ("ASYMMETRIC_SIGN", 4096, "pss", "sha512"),
    "RSA_SIGN_PKCS1_4096_SHA512": ("ASYMMETRIC_SIGN", 4096, "pkcs1", "sha512"),
    "RSA_DECRYPT_OAEP_4096_SHA512": ("ASYMMETRIC_DECRYPT", 4096, "oaep", "sha512"),
    "EC_SIGN_P256_SHA256": ("ASYMMETRIC_SIGN", ec.SECP256R1, "ecdsa", "sha256"),
    "EC_SIGN_P384_SHA384": ("ASYMMETRIC_SIGN", ec.SECP384R1, "ecdsa", "sha384"),
})
OAEP_HASHES = {"sha1": hashes.SHA1, "sha256": hashes.SHA256, "sha512": hashes.SHA512}
ENUM_NAMES = {f: {v: k for k, v in m.items()} for f, m in ENUMS.items()}
RAW_ALGS = {"AES_256_GCM": ("gcm", 32), "AES_128_GCM": ("gcm", 16), "AES_128_CBC": ("cbc", 16),
            "AES_256_CBC": ("cbc", 32), "AES_128_CTR": ("ctr", 16), "AES_256_CTR": ("ctr", 32)}
MAX_PLAINTEXT = 64 * 1024
MAX_CIPHERTEXT = 64 * 1024 + 800
CLOUD_PLATFORM = "https://www.googleapis.com/auth/cloud-platform"
KMS_SCOPES = (CLOUD_PLATFORM, "https://www.googleapis.com/auth/cloudkms")
_ID_RE = re.compile(r"^[a-zA-Z0-9_-]{1,63}$")
_DURATION_RE = re.compile(r"^(\d+)(\.\d+)?s$")


class GcpError(Exception):
    def __init__(self, status, message, reason=None, domain="cloudkms.googleapis.com"):
        super().__init__(message)
        self.status, self.message, self.reason, self.domain = status, message, reason, domain

    def response(self, headers=None):
        err = {"code": HTTP_OF[self.status], "message": self.message, "status": self.status}
        if self.reason:
            err["details"] = [{"@type": "type.googleapis.com/google.rpc.ErrorInfo",
                               "reason": self.reason, "domain": self.domain}]
        return Response(HTTP_OF[self.status], {"error": err}, "application/json; charset=UTF-8",
                        headers=headers)


def denied(permission, resource):
    return GcpError("PERMISSION_DENIED", "Permission '%s' denied on resource '%s' (or it may not exist)."
                    % (permission, resource), reason="IAM_PERMISSION_DENIED")


def invalid(message):
    return GcpError("INVALID_ARGUMENT", message)


class GcpVersion:
    def __init__(self, name, algorithm, now):
        self.name = name
        self.algorithm = algorithm
        self.state = "ENABLED"
        self.created = now
        self.destroy_time = None
        self.destroy_event_time = None
        if algorithm in ASYM_ALGS:     # a private key (python-cryptography)
            k = ASYM_ALGS[algorithm][1]
            self.material = (signing.new_rsa(k) if isinstance(k, int) else ec.generate_private_key(k()))
        else:
            size = 32 if algorithm == "GOOGLE_SYMMETRIC_ENCRYPTION" else RAW_ALGS[algorithm][1]
            self.material = secrets.token_bytes(size)

    def destroy_material(self):
        self.material = None if self.algorithm in ASYM_ALGS else b"\0" * len(self.material)


class GcpKey:
    def __init__(self, name, purpose, algorithm, now, rotation_period=None):
        self.name = name
        self.purpose = purpose
        self.algorithm = algorithm
        self.created = now
        self.versions = {}          # int id -> GcpVersion
        self.primary = None
        self.rotation_period = rotation_period
        self.labels = {}

    def add_version(self, now):
        n = max(self.versions, default=0) + 1
        self.versions[n] = GcpVersion("%s/cryptoKeyVersions/%d" % (self.name, n), self.algorithm, now)
        return n


class GcpState:
    def __init__(self, emu, project="p11kms-emu"):
        self.emu = emu
        self.project = project
        self.key_rings = {}        # name -> create time
        self.keys = {}             # crypto key name -> GcpKey
        self.service_accounts = {}  # email -> {"public_key", "key_id"}
        self.users = {}            # client id -> {"secret", "refresh_token"}
        self.tokens = {}           # opaque access token -> {"principal", "expires"}

    def add_service_account(self, name="p11kms-test"):
        email = "%s@%s.iam.gserviceaccount.com" % (name, self.project)
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        key_id = secrets.token_hex(20)
        self.service_accounts[email] = {"public_key": key.public_key(), "key_id": key_id}
        return email, key, key_id

    def add_user(self):
        client_id = "%d-%s.apps.googleusercontent.com" % (secrets.randbelow(10 ** 12), secrets.token_hex(8))
        rec = {"secret": secrets.token_urlsafe(24), "refresh_token": "1//" + secrets.token_urlsafe(48)}
        self.users[client_id] = rec
        return client_id, rec

    def issue_token(self, principal, lifetime=3600):
        tok = "ya29.c." + secrets.token_urlsafe(60)
        with self.emu.lock:
            self.tokens[tok] = {"principal": principal, "expires": self.emu.now() + lifetime}
        return tok

    def create_key_ring(self, parent, ring_id):
        name = "%s/keyRings/%s" % (parent, ring_id)
        with self.emu.lock:
            if name in self.key_rings:
                raise GcpError("ALREADY_EXISTS", "KeyRing %s already exists." % name)
            self.key_rings[name] = self.emu.now()
        return name

    def create_key(self, ring, key_id, purpose="ENCRYPT_DECRYPT", algorithm=None, rotation_period=None,
                   initial_version=True):
        if purpose not in ("ENCRYPT_DECRYPT", "RAW_ENCRYPT_DECRYPT", "ASYMMETRIC_SIGN",
                           "ASYMMETRIC_DECRYPT"):
            raise invalid("The emulator supports purpose ENCRYPT_DECRYPT, RAW_ENCRYPT_DECRYPT, "
                          "ASYMMETRIC_SIGN and ASYMMETRIC_DECRYPT only.")
        if purpose.startswith("ASYMMETRIC_"):
            if algorithm is None:
                raise invalid("version_template.algorithm: must be specified for purpose %s." % purpose)
            if ASYM_ALGS.get(algorithm, ("",))[0] != purpose:
                raise invalid("Algorithm %s is not compatible with purpose %s." % (algorithm, purpose))
        elif algorithm is None:
            algorithm = "GOOGLE_SYMMETRIC_ENCRYPTION" if purpose == "ENCRYPT_DECRYPT" else "AES_256_GCM"
        if not purpose.startswith("ASYMMETRIC_") and \
                (purpose == "ENCRYPT_DECRYPT") != (algorithm == "GOOGLE_SYMMETRIC_ENCRYPTION") or \
                (purpose == "RAW_ENCRYPT_DECRYPT" and algorithm not in RAW_ALGS):
            raise invalid("Algorithm %s is not compatible with purpose %s." % (algorithm, purpose))
        if not _ID_RE.match(key_id or ""):
            raise invalid("Invalid crypto key id: %r" % key_id)
        name = "%s/cryptoKeys/%s" % (ring, key_id)
        with self.emu.lock:
            if ring not in self.key_rings:
                raise GcpError("NOT_FOUND", "KeyRing %s not found." % ring)
            if name in self.keys:
                raise GcpError("ALREADY_EXISTS", "CryptoKey %s already exists." % name)
            key = GcpKey(name, purpose, algorithm, self.emu.now(), rotation_period)
            if initial_version:
                n = key.add_version(self.emu.now())
                if purpose == "ENCRYPT_DECRYPT":
                    key.primary = n
            self.keys[name] = key
            return key

    def authenticate(self, authz):
        """Bearer token -> principal; opaque tokens we issued or self-signed SA JWTs."""
        if not authz or not authz.startswith("Bearer "):
            raise GcpError("UNAUTHENTICATED", "Request is missing required authentication credential. "
                           "Expected OAuth 2 access token, login cookie or other valid authentication "
                           "credential. See "
                           "https://developers.google.com/identity/sign-in/web/devconsole-project.",
                           reason="CREDENTIALS_MISSING", domain="googleapis.com")
        tok = authz[7:].strip()
        bad = GcpError("UNAUTHENTICATED", "Request had invalid authentication credentials. Expected "
                       "OAuth 2 access token, login cookie or other valid authentication credential. See "
                       "https://developers.google.com/identity/sign-in/web/devconsole-project.",
                       reason="ACCESS_TOKEN_TYPE_UNSUPPORTED" if tok.count(".") != 2 else
                       "ACCESS_TOKEN_EXPIRED", domain="googleapis.com")
        now = self.emu.now()
        with self.emu.lock:
            rec = self.tokens.get(tok)
        if rec is not None:
            if rec["expires"] <= now or self.emu.is_revoked("gcp", rec["principal"]):
                raise bad
            return rec["principal"]
        if tok.count(".") == 2 and not tok.startswith("ya29."):
            return self._self_signed(tok, now, bad)
        raise bad

    def _self_signed(self, tok, now, bad):
        # google-auth-library's self-signed JWT access: iss = sub = client_email, signed with
        # the service-account key; scope claim or aud = "https://cloudkms.googleapis.com/".
        try:
            claims = jwt.decode(tok, options={"verify_signature": False})
            sa = self.service_accounts.get(claims.get("iss"))
            if sa is None or claims.get("sub") != claims.get("iss"):
                raise bad
            claims = jwt.decode(tok, sa["public_key"], algorithms=["RS256"],
                                options=dict(JWT_NO_TIME, verify_aud=False, require=["exp", "iat", "iss"]))
        except jwt.InvalidTokenError:
            raise bad
        if not claims["iat"] - 300 <= now < claims["exp"] or claims["exp"] - claims["iat"] > 3600 + 300:
            raise bad
        scopes = str(claims.get("scope", "")).split()
        aud = claims.get("aud")
        if not (set(scopes) & set(KMS_SCOPES)) and aud not in ("https://cloudkms.googleapis.com/",
                                                                "https://cloudkms.googleapis.com"):
            raise bad
        if self.emu.is_revoked("gcp", claims["iss"]):
            raise bad
        return claims["iss"]


def _enum_ints(obj):
    """Rewrite enum names as numbers, as the service does for `$alt=json;enum-encoding=int`."""
    if isinstance(obj, dict):
        return {k: (ENUMS[k][v] if k in ENUMS and isinstance(v, str) else _enum_ints(v))
                for k, v in obj.items()}
    if isinstance(obj, list):
        return [_enum_ints(v) for v in obj]
    return obj


def _bytes(body, field, required=False, limit=MAX_PLAINTEXT):
    v = body.get(field)
    if v is None or v == "":
        if required:
            raise invalid("%s: must be non-empty." % field)
        return None
    try:
        data = unb64(v, field)
    except ValueError:
        raise invalid("Invalid value at '%s' (TYPE_BYTES), Base64 decoding failed for \"%s\""
                      % (field, str(v)[:40]))
    if len(data) > limit:
        raise invalid("%s: must be at most %d bytes." % (field, limit))
    return data


def _mode(mode, iv):
    return modes.CBC(iv) if mode == "cbc" else modes.CTR(iv)


def _crc(body, field, data, snake):
    """Verify an optional request CRC32C; returns True when one was given and matched."""
    v = body.get(field)
    if v is None:
        return False
    try:
        n = int(v)
    except (TypeError, ValueError):
        raise invalid("Invalid value at '%s' (TYPE_INT64), \"%s\"" % (field, v))
    if crc32c(data or b"") != n:
        raise invalid("The checksum in field %s did not match the data in field %s."
                      % (snake + "_crc32c", snake))
    return True


class GcpService(Service):
    name = "gcp"

    def __init__(self, emu):
        super().__init__(emu)
        self.state = emu.gcp

    def error_response(self, req, status, kind, message, retry_after=None):
        code = {"throttle": "RESOURCE_EXHAUSTED", "unavailable": "UNAVAILABLE", "internal": "INTERNAL",
                "too_large": "INVALID_ARGUMENT", "bad_request": "INVALID_ARGUMENT"}[kind]
        if status in (500, 503, 504, 429, 400):
            code = {500: "INTERNAL", 503: "UNAVAILABLE", 504: "DEADLINE_EXCEEDED",
                    429: "RESOURCE_EXHAUSTED"}.get(status, code)
        if req.op == "Token":
            resp = Response(status, {"error": "internal_failure" if status >= 500 else "rate_limit_exceeded",
                                     "error_description": message})
        else:
            # The HTTP status is the one asked for (413 for an oversized body comes from
            # Google's front end, not from KMS); the body keeps the google.rpc.Status shape.
            resp = Response(status, {"error": {"code": status, "message": message, "status": code}},
                            "application/json; charset=UTF-8")
        if retry_after is not None:
            resp.headers.append(("Retry-After", str(retry_after)))
        return resp

    def corrupt_crc32c(self, resp):
        if resp.json is None:
            return resp
        obj = dict(resp.json)
        for f in ("ciphertextCrc32c", "plaintextCrc32c", "initializationVectorCrc32c",
                  "signatureCrc32c", "pemCrc32c"):
            if f in obj:
                obj[f] = str((int(obj[f]) + 1) & 0xFFFFFFFF)
        new = Response(resp.status, json.dumps(obj).encode(), headers=resp.headers)
        new.json = obj
        return new

    # --- routing ------------------------------------------------------------------------------
    def route(self, req):
        p = req.path
        if p == "/token" and req.method == "POST":
            return "Token"
        if not p.startswith("/v1/"):
            raise ServiceError(GcpError("NOT_FOUND", "The requested URL %s was not found on this server."
                                        % p).response())
        rest = p[4:]
        name, _, verb = rest.rpartition(":") if ":" in rest.rsplit("/", 1)[-1] else (rest, "", "")
        segs = name.split("/")
        req.gname, req.gverb, req.gsegs = name, verb, segs
        n = len(segs)
        m = req.method
        ok_prefix = n >= 4 and segs[0] == "projects" and segs[2] == "locations"
        if not ok_prefix:
            raise ServiceError(GcpError("NOT_FOUND", "The requested URL %s was not found on this server."
                                        % p).response())
        table = {
            (5, "keyRings", "POST", ""): "CreateKeyRing",
            (6, "keyRings", "GET", ""): "GetKeyRing",
            (7, "cryptoKeys", "POST", ""): "CreateCryptoKey",
            (7, "cryptoKeys", "GET", ""): "ListCryptoKeys",
            (8, "cryptoKeys", "GET", ""): "GetCryptoKey",
            (8, "cryptoKeys", "POST", "encrypt"): "Encrypt",
            (8, "cryptoKeys", "POST", "decrypt"): "Decrypt",
            (8, "cryptoKeys", "POST", "updatePrimaryVersion"): "UpdateCryptoKeyPrimaryVersion",
            (8, "cryptoKeys", "PATCH", ""): "UpdateCryptoKey",
            (9, "cryptoKeyVersions", "GET", ""): "ListCryptoKeyVersions",
            (9, "cryptoKeyVersions", "POST", ""): "CreateCryptoKeyVersion",
            (10, "cryptoKeyVersions", "GET", ""): "GetCryptoKeyVersion",
            (10, "cryptoKeyVersions", "PATCH", ""): "UpdateCryptoKeyVersion",
            (10, "cryptoKeyVersions", "POST", "destroy"): "DestroyCryptoKeyVersion",
            (10, "cryptoKeyVersions", "POST", "restore"): "RestoreCryptoKeyVersion",
            (10, "cryptoKeyVersions", "POST", "encrypt"): "Encrypt",
            (10, "cryptoKeyVersions", "POST", "rawEncrypt"): "RawEncrypt",
            (10, "cryptoKeyVersions", "POST", "rawDecrypt"): "RawDecrypt",
            (10, "cryptoKeyVersions", "POST", "asymmetricSign"): "AsymmetricSign",
            (10, "cryptoKeyVersions", "POST", "asymmetricDecrypt"): "AsymmetricDecrypt",
            (11, "publicKey", "GET", ""): "GetPublicKey",
        }
        kind = segs[-1] if n % 2 == 1 else segs[-2]
        op = table.get((n, kind, m, verb))
        if op is None:
            raise ServiceError(GcpError("NOT_FOUND", "The requested URL %s was not found on this server."
                                        % p).response())
        return op

    def handle(self, req):
        if req.op == "Token":
            return self._token(req)
        try:
            req.principal = self.state.authenticate(req.header("Authorization"))
            try:
                # An empty body message arrives as `""` from gax 5.0.8 (CreateCryptoKeyVersion
                # with an empty version, observed); proto3 JSON also allows null for it.
                body = {} if req.body.strip() in (b"null", b'""') else (
                    req.json_body() if req.method in ("POST", "PATCH") else {})
            except (ValueError, UnicodeDecodeError) as e:
                raise invalid("Invalid JSON payload received. %s" % e)
            with self.emu.lock:
                out = getattr(self, "op_" + req.op)(req, body)
        except GcpError as e:
            return e.response()
        if "enum-encoding=int" in req.raw_query.replace("%3B", ";").replace("%3b", ";") or \
                "enum-encoding=int" in (req.query.get("$alt") or ""):
            out = _enum_ints(out)
        resp = Response(200, out, "application/json; charset=UTF-8")
        resp.json = out
        return resp

    # --- resources ----------------------------------------------------------------------------
    def _key(self, name, permission):
        key = self.state.keys.get(name)
        if key is None:
            raise denied(permission, name)
        return key

    def _version(self, name, permission):
        kname, _, vid = name.rpartition("/cryptoKeyVersions/")
        key = self._key(kname, permission)
        v = key.versions.get(int(vid)) if vid.isdigit() else None
        if v is None:
            raise denied(permission, name)
        return key, int(vid), v

    def _version_json(self, key, v):
        out = {"name": v.name, "state": v.state, "createTime": rfc3339(v.created),
               "generateTime": rfc3339(v.created), "protectionLevel": "SOFTWARE",
               "algorithm": v.algorithm}
        if v.destroy_time is not None:
            out["destroyTime"] = rfc3339(v.destroy_time)
        if v.destroy_event_time is not None:
            out["destroyEventTime"] = rfc3339(v.destroy_event_time)
        return out

    def _key_json(self, key):
        out = {"name": key.name, "purpose": key.purpose, "createTime": rfc3339(key.created),
               "versionTemplate": {"protectionLevel": "SOFTWARE", "algorithm": key.algorithm},
               "destroyScheduledDuration": "86400s"}
        if key.primary is not None:
            out["primary"] = self._version_json(key, key.versions[key.primary])
        if key.rotation_period:
            out["rotationPeriod"] = "%ds" % key.rotation_period
            out["nextRotationTime"] = rfc3339(self.emu.now() + key.rotation_period, frac=False)
        if key.labels:
            out["labels"] = key.labels
        return out

    @staticmethod
    def _check_enabled(v):
        if v.state != "ENABLED":
            raise GcpError("FAILED_PRECONDITION", "%s is not enabled, current state is: %s."
                           % (v.name, v.state))

    def op_CreateKeyRing(self, req, body):
        ring_id = req.query.get("keyRingId", "")
        if not _ID_RE.match(ring_id):
            raise invalid("Invalid key ring id: %r" % ring_id)
        name = self.state.create_key_ring(req.gname.rsplit("/", 1)[0], ring_id)
        return {"name": name, "createTime": rfc3339(self.state.key_rings[name])}

    def op_GetKeyRing(self, req, body):
        t = self.state.key_rings.get(req.gname)
        if t is None:
            raise denied("cloudkms.keyRings.get", req.gname)
        return {"name": req.gname, "createTime": rfc3339(t)}

    def op_CreateCryptoKey(self, req, body):
        tmpl = body.get("versionTemplate") or {}
        purpose = body.get("purpose", "ENCRYPT_DECRYPT")
        alg = tmpl.get("algorithm") if isinstance(tmpl, dict) else None
        purpose = ENUM_NAMES["purpose"].get(purpose, purpose)
        alg = ENUM_NAMES["algorithm"].get(alg, alg)
        period = body.get("rotationPeriod")
        secs = None
        if period is not None:
            m = _DURATION_RE.match(str(period))
            if not m or int(m.group(1)) < 86400:
                raise invalid("rotation_period must be at least 24 hours.")
            secs = int(m.group(1))
        skip = req.query.get("skipInitialVersionCreation", "false").lower() == "true"
        key = self.state.create_key(req.gname.rsplit("/", 1)[0], req.query.get("cryptoKeyId", ""),
                                    purpose, alg, secs, initial_version=not skip)
        if isinstance(body.get("labels"), dict):
            key.labels = {str(k): str(v) for k, v in body["labels"].items()}
        return self._key_json(key)

    def op_ListCryptoKeys(self, req, body):
        ring = req.gname.rsplit("/", 1)[0]
        if ring not in self.state.key_rings:
            raise denied("cloudkms.cryptoKeys.list", ring)
        keys = [self._key_json(k) for n, k in sorted(self.state.keys.items())
                if n.startswith(ring + "/cryptoKeys/")]
        return {"cryptoKeys": keys, "totalSize": len(keys)}

    def op_GetCryptoKey(self, req, body):
        return self._key_json(self._key(req.gname, "cloudkms.cryptoKeys.get"))

    def op_UpdateCryptoKey(self, req, body):
        key = self._key(req.gname, "cloudkms.cryptoKeys.update")
        mask = [f for f in req.query.get("updateMask", "").split(",") if f]
        if not mask:
            raise invalid("update_mask: must be set.")
        for f in mask:
            if f == "labels" and isinstance(body.get("labels"), dict):
                key.labels = {str(k): str(v) for k, v in body["labels"].items()}
            elif f in ("rotationPeriod", "rotation_period"):
                m = _DURATION_RE.match(str(body.get("rotationPeriod", "")))
                key.rotation_period = int(m.group(1)) if m else None
            elif f not in ("nextRotationTime", "next_rotation_time"):
                raise invalid("update_mask: field %s cannot be updated." % f)
        return self._key_json(key)

    def op_ListCryptoKeyVersions(self, req, body):
        key = self._key(req.gname.rsplit("/", 1)[0], "cloudkms.cryptoKeyVersions.list")
        vs = [self._version_json(key, v) for _, v in sorted(key.versions.items())]
        return {"cryptoKeyVersions": vs, "totalSize": len(vs)}

    def op_CreateCryptoKeyVersion(self, req, body):
        key = self._key(req.gname.rsplit("/", 1)[0], "cloudkms.cryptoKeyVersions.create")
        n = key.add_version(self.emu.now())
        return self._version_json(key, key.versions[n])

    def op_GetCryptoKeyVersion(self, req, body):
        key, _, v = self._version(req.gname, "cloudkms.cryptoKeyVersions.get")
        return self._version_json(key, v)

    def op_UpdateCryptoKeyVersion(self, req, body):
        key, _, v = self._version(req.gname, "cloudkms.cryptoKeyVersions.update")
        if req.query.get("updateMask") != "state":
            raise invalid("update_mask: only 'state' can be updated.")
        state = ENUM_NAMES["state"].get(body.get("state"), body.get("state"))
        if state not in ("ENABLED", "DISABLED"):
            raise invalid("state: must be ENABLED or DISABLED.")
        if v.state not in ("ENABLED", "DISABLED"):
            raise GcpError("FAILED_PRECONDITION", "%s is not enabled or disabled, current state is: %s."
                           % (v.name, v.state))
        v.state = state
        return self._version_json(key, v)

    def op_DestroyCryptoKeyVersion(self, req, body):
        key, _, v = self._version(req.gname, "cloudkms.cryptoKeyVersions.destroy")
        if v.state not in ("ENABLED", "DISABLED"):
            raise GcpError("FAILED_PRECONDITION", "%s is not enabled or disabled, current state is: %s."
                           % (v.name, v.state))
        v.state = "DESTROY_SCHEDULED"
        v.destroy_time = self.emu.now() + 86400
        return self._version_json(key, v)

    def op_RestoreCryptoKeyVersion(self, req, body):
        key, _, v = self._version(req.gname, "cloudkms.cryptoKeyVersions.restore")
        if v.state != "DESTROY_SCHEDULED":
            raise GcpError("FAILED_PRECONDITION", "%s is not scheduled for destruction, current state "
                           "is: %s." % (v.name, v.state))
        v.state, v.destroy_time = "DISABLED", None
        return self._version_json(key, v)

    def op_UpdateCryptoKeyPrimaryVersion(self, req, body):
        key = self._key(req.gname, "cloudkms.cryptoKeys.update")
        vid = str(body.get("cryptoKeyVersionId", ""))
        if key.purpose != "ENCRYPT_DECRYPT":
            raise GcpError("FAILED_PRECONDITION", "%s does not have purpose ENCRYPT_DECRYPT." % key.name)
        if not vid.isdigit() or int(vid) not in key.versions:
            raise GcpError("NOT_FOUND", "CryptoKeyVersion %s/cryptoKeyVersions/%s not found."
                           % (key.name, vid))
        self._check_enabled(key.versions[int(vid)])
        key.primary = int(vid)
        return self._key_json(key)

    # --- Encrypt/Decrypt (GOOGLE_SYMMETRIC_ENCRYPTION) -------------------------------------------
    # Ciphertext layout (ours; opaque to clients): 'K' | version (u32 BE) | 12-byte nonce |
    # AES-256-GCM ciphertext+tag, with the CryptoKey name bound into the AAD so a ciphertext
    # presented to another key fails as the service fails it.
    def op_Encrypt(self, req, body):
        if req.gname.count("/") == 7:
            key = self._key(req.gname, "cloudkms.cryptoKeyVersions.useToEncrypt")
            if key.primary is None:
                raise GcpError("FAILED_PRECONDITION", "%s has no primary version." % key.name)
            vid, v = key.primary, key.versions[key.primary]
        else:
            key, vid, v = self._version(req.gname, "cloudkms.cryptoKeyVersions.useToEncrypt")
        if key.purpose != "ENCRYPT_DECRYPT":
            raise GcpError("FAILED_PRECONDITION", "%s does not have purpose ENCRYPT_DECRYPT." % key.name)
        pt = _bytes(body, "plaintext", True)
        aad = _bytes(body, "additionalAuthenticatedData")
        vp = _crc(body, "plaintextCrc32c", pt, "plaintext")
        va = _crc(body, "additionalAuthenticatedDataCrc32c", aad, "additional_authenticated_data")
        self._check_enabled(v)
        nonce = secrets.token_bytes(12)
        ct = b"K" + struct.pack(">I", vid) + nonce + AESGCM(v.material).encrypt(
            nonce, pt, key.name.encode() + b"\0" + (aad or b""))
        out = {"name": v.name, "ciphertext": b64(ct), "ciphertextCrc32c": str(crc32c(ct)),
               "protectionLevel": "SOFTWARE"}
        if vp:
            out["verifiedPlaintextCrc32c"] = True
        if va:
            out["verifiedAdditionalAuthenticatedDataCrc32c"] = True
        return out

    def op_Decrypt(self, req, body):
        key = self._key(req.gname, "cloudkms.cryptoKeyVersions.useToDecrypt")
        if key.purpose != "ENCRYPT_DECRYPT":
            raise GcpError("FAILED_PRECONDITION", "%s does not have purpose ENCRYPT_DECRYPT." % key.name)
        ct = _bytes(body, "ciphertext", True, MAX_CIPHERTEXT)
        aad = _bytes(body, "additionalAuthenticatedData")
        _crc(body, "ciphertextCrc32c", ct, "ciphertext")
        _crc(body, "additionalAuthenticatedDataCrc32c", aad, "additional_authenticated_data")
        wrong = invalid("Decryption failed: verify that 'name' refers to the correct CryptoKey.")
        if len(ct) < 1 + 4 + 12 + 16 or ct[:1] != b"K":
            raise wrong
        (vid,) = struct.unpack(">I", ct[1:5])
        v = key.versions.get(vid)
        if v is None:
            raise wrong
        self._check_enabled(v)
        try:
            pt = AESGCM(v.material).decrypt(ct[5:17], ct[17:], key.name.encode() + b"\0" + (aad or b""))
        except Exception:
            raise wrong
        out = {"plaintext": b64(pt), "plaintextCrc32c": str(crc32c(pt)), "protectionLevel": "SOFTWARE"}
        if vid == key.primary:
            out["usedPrimary"] = True
        return out

    # --- RawEncrypt/RawDecrypt (RAW_ENCRYPT_DECRYPT) ------------------------------------------------
    def _raw_version(self, req, permission):
        key, vid, v = self._version(req.gname, permission)
        if key.purpose != "RAW_ENCRYPT_DECRYPT":
            raise invalid("%s is not a RAW_ENCRYPT_DECRYPT key." % key.name)
        self._check_enabled(v)
        return key, v

    def op_RawEncrypt(self, req, body):
        key, v = self._raw_version(req, "cloudkms.cryptoKeyVersions.useToEncrypt")
        mode, _ = RAW_ALGS[v.algorithm]
        pt = _bytes(body, "plaintext", True)
        aad = _bytes(body, "additionalAuthenticatedData")
        iv = _bytes(body, "initializationVector")
        out = {"name": v.name, "protectionLevel": "SOFTWARE"}
        if _crc(body, "plaintextCrc32c", pt, "plaintext"):
            out["verifiedPlaintextCrc32c"] = True
        if _crc(body, "additionalAuthenticatedDataCrc32c", aad, "additional_authenticated_data"):
            out["verifiedAdditionalAuthenticatedDataCrc32c"] = True
        if _crc(body, "initializationVectorCrc32c", iv, "initialization_vector"):
            out["verifiedInitializationVectorCrc32c"] = True
        if mode == "gcm":
            if iv is not None:
                raise invalid("initialization_vector: must not be set for AES-GCM; the service "
                              "generates it.")
            iv = secrets.token_bytes(12)
            ct = AESGCM(v.material).encrypt(iv, pt, aad)
            out["tagLength"] = 16
        else:
            if aad is not None:
                raise invalid("additional_authenticated_data: not supported for %s." % v.algorithm)
            iv = iv if iv is not None else secrets.token_bytes(16)
            if len(iv) != 16:
                raise invalid("initialization_vector: must be 16 bytes for %s." % v.algorithm)
            if mode == "cbc" and len(pt) % 16:
                raise invalid("plaintext: length must be a multiple of 16 bytes for %s." % v.algorithm)
            e = Cipher(algorithms.AES(v.material), _mode(mode, iv)).encryptor()
            ct = e.update(pt) + e.finalize()
        out.update(ciphertext=b64(ct), ciphertextCrc32c=str(crc32c(ct)),
                   initializationVector=b64(iv), initializationVectorCrc32c=str(crc32c(iv)))
        return out

    def op_RawDecrypt(self, req, body):
        key, v = self._raw_version(req, "cloudkms.cryptoKeyVersions.useToDecrypt")
        mode, _ = RAW_ALGS[v.algorithm]
        ct = _bytes(body, "ciphertext", True, MAX_CIPHERTEXT)
        aad = _bytes(body, "additionalAuthenticatedData")
        iv = _bytes(body, "initializationVector")
        if iv is None:
            raise invalid("initialization_vector: must be set.")
        out = {"protectionLevel": "SOFTWARE"}
        if _crc(body, "ciphertextCrc32c", ct, "ciphertext"):
            out["verifiedCiphertextCrc32c"] = True
        if _crc(body, "additionalAuthenticatedDataCrc32c", aad, "additional_authenticated_data"):
            out["verifiedAdditionalAuthenticatedDataCrc32c"] = True
        if _crc(body, "initializationVectorCrc32c", iv, "initialization_vector"):
            out["verifiedInitializationVectorCrc32c"] = True
        tag_len = int(body.get("tagLength") or 16)
        try:
            if mode == "gcm":
                if tag_len != 16 or len(iv) != 12:
                    raise invalid("Decryption failed: unsupported tag length or IV size.")
                pt = AESGCM(v.material).decrypt(iv, ct, aad)
            else:
                d = Cipher(algorithms.AES(v.material), _mode(mode, iv)).decryptor()
                pt = d.update(ct) + d.finalize()
        except GcpError:
            raise
        except Exception:
            raise invalid("Decryption failed: the ciphertext is invalid.")
        out.update(plaintext=b64(pt), plaintextCrc32c=str(crc32c(pt)))
        return out

    # --- asymmetric keys: GetPublicKey, AsymmetricSign, AsymmetricDecrypt -----------------------
    def _asym_version(self, name, permission, purpose):
        key, vid, v = self._version(name, permission)
        if key.purpose != purpose and not (purpose is None and key.purpose.startswith("ASYMMETRIC_")):
            raise invalid("%s has purpose %s; this operation needs %s." % (
                key.name, key.purpose, purpose or "ASYMMETRIC_SIGN or ASYMMETRIC_DECRYPT"))
        return key, v

    def op_GetPublicKey(self, req, body):
        key, v = self._asym_version(req.gname[:-len("/publicKey")], "cloudkms.cryptoKeyVersions.viewPublicKey",
                                    None)
        fmt = req.query.get("publicKeyFormat", "PEM")
        if fmt not in ("PEM", "1", "PUBLIC_KEY_FORMAT_UNSPECIFIED", "0"):
            raise invalid("public_key_format: %s is only valid for post-quantum keys." % fmt)
        self._check_enabled(v)
        pem = v.material.public_key().public_bytes(serialization.Encoding.PEM,
                                                   serialization.PublicFormat.SubjectPublicKeyInfo)
        return {"pem": pem.decode(), "algorithm": v.algorithm, "pemCrc32c": str(crc32c(pem)),
                "name": v.name, "protectionLevel": "SOFTWARE"}

    def op_AsymmetricSign(self, req, body):
        key, v = self._asym_version(req.gname, "cloudkms.cryptoKeyVersions.useToSign", "ASYMMETRIC_SIGN")
        _, _, scheme, hname = ASYM_ALGS[v.algorithm]
        digest_obj = body.get("digest")
        data = _bytes(body, "data")
        out = {"name": v.name, "protectionLevel": "SOFTWARE"}
        if digest_obj is not None and data is not None:
            raise invalid("Only one of digest or data may be set.")
        if data is not None:
            if _crc(body, "dataCrc32c", data, "data"):
                out["verifiedDataCrc32c"] = True
            h = hashes.Hash(signing.HASHES[hname]())
            h.update(data)
            digest = h.finalize()
        else:
            if not isinstance(digest_obj, dict) or len(digest_obj) != 1:
                raise invalid("digest: exactly one of sha256, sha384 or sha512 must be set.")
            (field, value), = digest_obj.items()
            if field not in signing.HASHES:
                raise invalid("Invalid JSON payload received. Unknown name \"%s\" at 'digest'." % field)
            digest = _bytes(digest_obj, field, True)
            if field != hname:
                raise invalid("The requested digest type %s does not match the digest type %s of "
                              "algorithm %s." % (field.upper(), hname.upper(), v.algorithm))
            if len(digest) != signing.digest_size(hname):
                raise invalid("digest.%s: must be %d bytes, got %d." % (field, signing.digest_size(hname),
                                                                       len(digest)))
            if _crc(body, "digestCrc32c", digest, "digest"):
                out["verifiedDigestCrc32c"] = True
        self._check_enabled(v)
        sig = signing.sign_digest(v.material, scheme, hname, digest)     # ECDSA: DER
        out.update(signature=b64(sig), signatureCrc32c=str(crc32c(sig)))
        return out

    def op_AsymmetricDecrypt(self, req, body):
        key, v = self._asym_version(req.gname, "cloudkms.cryptoKeyVersions.useToDecrypt",
                                    "ASYMMETRIC_DECRYPT")
        ct = _bytes(body, "ciphertext", True, MAX_CIPHERTEXT)
        out = {"protectionLevel": "SOFTWARE"}
        if _crc(body, "ciphertextCrc32c", ct, "ciphertext"):
            out["verifiedCiphertextCrc32c"] = True
        self._check_enabled(v)
        h = OAEP_HASHES[ASYM_ALGS[v.algorithm][3]]
        try:
            pt = v.material.decrypt(ct, padding.OAEP(mgf=padding.MGF1(h()), algorithm=h(), label=None))
        except ValueError:
            raise invalid("Decryption failed: the ciphertext is invalid.")
        out.update(plaintext=b64(pt), plaintextCrc32c=str(crc32c(pt)))
        return out

    # --- OAuth 2.0 token endpoint -------------------------------------------------------------------
    def _token(self, req):
        def oauth_err(error, desc, status=400):
            return Response(status, {"error": error, "error_description": desc})
        try:
            form = req.form_body()
        except UnicodeDecodeError:
            return oauth_err("invalid_request", "Request body is not UTF-8.")
        grant = form.get("grant_type")
        st = self.state
        now = self.emu.now()
        if grant == "urn:ietf:params:oauth:grant-type:jwt-bearer":
            assertion = form.get("assertion", "")
            try:
                iss = jwt.decode(assertion, options={"verify_signature": False}).get("iss")
                sa = st.service_accounts.get(iss)
                if sa is None:
                    return oauth_err("invalid_grant", "Invalid grant: account not found")
                claims = jwt.decode(assertion, sa["public_key"], algorithms=["RS256"],
                                    options=dict(JWT_NO_TIME, verify_aud=False,
                                                 require=["exp", "iat", "aud", "iss"]))
            except jwt.InvalidTokenError:
                return oauth_err("invalid_grant", "Invalid JWT Signature.")
            if claims["aud"] not in ("https://oauth2.googleapis.com/token", self.base_url + "/token",
                                     "https://www.googleapis.com/oauth2/v4/token"):
                return oauth_err("invalid_grant", "Invalid JWT: Invalid audience %s" % claims["aud"])
            if not claims["iat"] - 300 <= now < claims["exp"] or claims["exp"] - claims["iat"] > 3600:
                return oauth_err("invalid_grant", "Invalid JWT: Token must be a short-lived token (60 "
                                 "minutes) and in a reasonable timeframe. Check your iat and exp values "
                                 "in the JWT claim.")
            if self.emu.is_revoked("gcp", iss):
                return oauth_err("invalid_grant", "Invalid grant: account not found")
            principal = iss
        elif grant == "refresh_token":
            user = st.users.get(form.get("client_id", ""))
            if user is None or not secrets.compare_digest(form.get("client_secret", ""), user["secret"]):
                return oauth_err("invalid_client", "The OAuth client was not found.", 401)
            if not secrets.compare_digest(form.get("refresh_token", ""), user["refresh_token"]) or \
                    self.emu.is_revoked("gcp", form["client_id"]):
                return oauth_err("invalid_grant", "Token has been expired or revoked.")
            principal = form["client_id"]
        else:
            return oauth_err("unsupported_grant_type", "Invalid grant_type: %s" % grant)
        req.principal = principal
        tok = st.issue_token(principal)
        return Response(200, {"access_token": tok, "expires_in": 3599, "token_type": "Bearer"},
                        "application/json; charset=utf-8")


def service_account_file(state, email, key, key_id, token_uri):
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    return {"type": "service_account", "project_id": state.project, "private_key_id": key_id,
            "private_key": pem, "client_email": email, "client_id": str(secrets.randbelow(10 ** 20)),
            "auth_uri": "https://accounts.google.com/o/oauth2/auth", "token_uri": token_uri,
            "auth_provider_x509_cert_url": "https://www.googleapis.com/oauth2/v1/certs",
            "client_x509_cert_url": "https://www.googleapis.com/robot/v1/metadata/x509/" + email,
            "universe_domain": "googleapis.com"}
