# SPDX-License-Identifier: Apache-2.0
"""Azure Key Vault / Managed HSM keys API and the Microsoft Entra ID token endpoint.

Wire behaviour follows PROTOCOLS.md §2: the 401 bearer challenge answered
before the body is read, base64url without padding, integer unix-time
attributes, KeyVaultError bodies, Throttled + Retry-After. The vault and the
HSM are two Service instances on their own ports (the real services differ by
host name and token audience only).
"""

import base64
import hashlib
import json
import re
import secrets
import time
import uuid

import jwt
from cryptography import x509
from cryptography.hazmat.primitives import hashes, padding as sympad, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.keywrap import (InvalidUnwrap, aes_key_unwrap,
                                                    aes_key_unwrap_with_padding, aes_key_wrap,
                                                    aes_key_wrap_with_padding)

from . import signing
from .httpbase import Response, Service, ServiceError, new_request_id
from .util import JWT_NO_TIME, b64url, unb64url

VAULT_RESOURCE = "https://vault.azure.net"
HSM_RESOURCE = "https://managedhsm.azure.net"
_NAME_RE = re.compile(r"^[0-9a-zA-Z-]{1,127}$")
_VERSION_RE = re.compile(r"^[0-9a-fA-F]{32}$")
_API_VERSION_RE = re.compile(r"^(7\.\d(-preview(\.\d+)?)?|20\d\d-\d\d-\d\d(-preview)?)$")
KEY_OPS_ALL = ["encrypt", "decrypt", "sign", "verify", "wrapKey", "unwrapKey"]
RSA_ALGS = {"RSA-OAEP": hashes.SHA1, "RSA-OAEP-256": hashes.SHA256, "RSA1_5": None}
AES_KW = {"A128KW": 16, "A192KW": 24, "A256KW": 32}
AES_GCM = {"A128GCM": 16, "A192GCM": 24, "A256GCM": 32}
AES_CBC = {"A128CBC": 16, "A192CBC": 24, "A256CBC": 32,
           "A128CBCPAD": 16, "A192CBCPAD": 24, "A256CBCPAD": 32}
OP_NAMES = {"encrypt": "encrypt", "decrypt": "decrypt", "wrapkey": "wrapKey", "unwrapkey": "unwrapKey",
            "sign": "sign", "verify": "verify"}
# JsonWebKeyCurveName [keys.json] -> curve; ES* algorithms -> (curve, hash) [RFC 7518 §3.4];
# RS*/PS* -> (scheme, hash), PS with salt = hash length [RFC 7518 §3.5].
EC_CURVES = {"P-256": ec.SECP256R1, "P-384": ec.SECP384R1, "P-521": ec.SECP521R1, "P-256K": ec.SECP256K1}
EC_SIGN_ALGS = {"ES256": ("P-256", "sha256"), "ES384": ("P-384", "sha384"), "ES512": ("P-521", "sha512"),
                "ES256K": ("P-256K", "sha256")}
RSA_SIGN_ALGS = {"RS256": ("pkcs1", "sha256"), "RS384": ("pkcs1", "sha384"), "RS512": ("pkcs1", "sha512"),
                 "PS256": ("pss", "sha256"), "PS384": ("pss", "sha384"), "PS512": ("pss", "sha512")}
EC_KEY_OPS = ["sign", "verify"]


class AzError(Exception):
    def __init__(self, status, code, message, inner=None, headers=None):
        super().__init__(message)
        self.status, self.code, self.message, self.inner = status, code, message, inner
        self.headers = headers or []

    def response(self):
        err = {"code": self.code, "message": self.message}
        if self.inner:
            err["innererror"] = {"code": self.inner}
        return Response(self.status, {"error": err}, "application/json; charset=utf-8",
                        headers=self.headers)


def not_found(name, version=None):
    what = name if not version else "%s/%s" % (name, version)
    return AzError(404, "KeyNotFound", "A key with (name/id) %s was not found in this key vault. If you "
                   "recently deleted this key you may be able to recover it using the correct recovery "
                   "command. For help resolving this issue, please see "
                   "https://go.microsoft.com/fwlink/?linkid=2125182" % what)


def bad(message):
    return AzError(400, "BadParameter", message)


class AzKeyVersion:
    def __init__(self, kty, material, key_ops, now, enabled=True):
        self.version = uuid.uuid4().hex
        self.kty = kty                  # RSA, RSA-HSM, EC, EC-HSM, oct-HSM
        self.material = material        # RSAPrivateKey, EllipticCurvePrivateKey or bytes
        self.key_ops = key_ops
        self.enabled = enabled
        self.created = self.updated = int(now)

    @property
    def crv(self):
        if not self.kty.startswith("EC"):
            return None
        return next(n for n, c in EC_CURVES.items() if isinstance(self.material.curve, c))


class AzKey:
    def __init__(self, name):
        self.name = name
        self.versions = []              # oldest first; the last is the current version
        self.tags = {}


class AzureState:
    """Tenant, app registrations, managed identity and the keys of the vault and the HSM."""

    def __init__(self, emu):
        self.emu = emu
        self.tenant = str(uuid.uuid4())
        self.apps = {}                   # client id -> {"secret", "cert", "federated", "name"}
        self.vaults = {"vault": {}, "hsm": {}}
        self.signing_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.signing_kid = secrets.token_hex(8)
        self.mi_client_id = str(uuid.uuid4())
        self.identity_header = secrets.token_urlsafe(24)

    def register_app(self, secret=True, cert=None, federated=None):
        client_id = str(uuid.uuid4())
        self.apps[client_id] = {"secret": secrets.token_urlsafe(30) if secret else None,
                                "cert": cert, "federated": list(federated or [])}
        return client_id

    def issue_token(self, client_id, resource, lifetime=3600, now=None):
        now = int(self.emu.now() if now is None else now)
        claims = {"aud": resource, "iss": "https://sts.windows.net/%s/" % self.tenant,
                  "iat": now, "nbf": now, "exp": now + lifetime, "appid": client_id,
                  "oid": client_id, "sub": client_id, "tid": self.tenant, "ver": "1.0"}
        return jwt.encode(claims, self.signing_key, algorithm="RS256",
                          headers={"kid": self.signing_kid, "typ": "JWT"}), now + lifetime

    def create_key(self, vault, name, kty, size=None, key_ops=None, enabled=True, crv=None):
        if not _NAME_RE.match(name or ""):
            raise bad("The request URI contains an invalid name: %s" % name)
        default_ops = KEY_OPS_ALL
        if kty in ("EC", "EC-HSM"):
            crv = crv or "P-256"
            if crv not in EC_CURVES:
                raise bad("Invalid curve name %s for key type %s." % (crv, kty))
            material = ec.generate_private_key(EC_CURVES[crv]())
            default_ops = EC_KEY_OPS
        elif kty in ("RSA", "RSA-HSM"):
            size = size or 2048
            if size not in (2048, 3072, 4096):
                raise bad("Invalid key size %s for key type %s." % (size, kty))
            material = rsa.generate_private_key(public_exponent=65537, key_size=size)
        elif kty in ("oct", "oct-HSM"):
            if vault != "hsm":
                raise bad("Key type %s is not supported by this vault; symmetric keys need a Managed HSM."
                          % kty)
            size = size or 256
            if size not in (128, 192, 256):
                raise bad("Invalid key size %s for key type %s." % (size, kty))
            material = secrets.token_bytes(size // 8)
            kty = "oct-HSM"
        else:
            raise bad("Key type %r is not supported." % kty)
        with self.emu.lock:
            key = self.vaults[vault].setdefault(name.lower(), AzKey(name))
            v = AzKeyVersion(kty, material, list(key_ops or default_ops), self.emu.now(), enabled)
            key.versions.append(v)
            return key, v


class VaultService(Service):
    """Key Vault (vault='vault') or Managed HSM (vault='hsm') data plane, keys only."""

    def __init__(self, emu, vault):
        super().__init__(emu)
        self.vault = vault
        self.name = "azure-" + vault
        self.state = emu.azure
        self.resource = VAULT_RESOURCE if vault == "vault" else HSM_RESOURCE

    def response_headers(self, req):
        return [("x-ms-request-id", new_request_id()),
                ("x-ms-keyvault-service-version", "1.9.0.0"),
                ("x-ms-keyvault-region", "emulator")] + (
            [("x-ms-client-request-id", req.header("x-ms-client-request-id"))]
            if req.header("x-ms-client-request-id") else [])

    def error_response(self, req, status, kind, message, retry_after=None):
        code = {"throttle": "Throttled", "unavailable": "ServiceUnavailable",
                "internal": "InternalServerError", "too_large": "BadParameter",
                "bad_request": "BadParameter"}[kind]
        code = {400: "BadParameter", 401: "Unauthorized", 403: "Forbidden", 404: "KeyNotFound",
                429: "Throttled"}.get(status, code)
        if kind == "throttle":
            message = ("Request was not processed because too many requests were received. "
                       "Reason: VaultRequestTypeLimitReached")
        headers = [("Retry-After", str(retry_after))] if retry_after is not None else []
        return AzError(status, code, message, headers=headers).response()

    # --- routing --------------------------------------------------------------------------
    def route(self, req):
        # Segments are matched case-insensitively and empty segments dropped, because SDKs
        # send /keys/k//wrapkey, /keys/k/wrapKey and /keys/k/ (PROTOCOLS.md §2.1).
        segs = [s for s in req.path.split("/") if s]
        low = [s.lower() for s in segs]
        m = req.method
        req.az = segs
        if not low or low[0] != "keys":
            raise ServiceError(bad("The request URI is not recognised: %s" % req.path).response())
        n = len(segs)
        if n == 1 and m == "GET":
            return "GetKeys"
        if n == 3 and low[2] == "create" and m == "POST":
            return "CreateKey"
        if n == 3 and low[2] == "versions" and m == "GET":
            return "GetKeyVersions"
        if n in (2, 3) and m == "GET":
            return "GetKey"
        if n in (2, 3) and m == "PATCH":
            return "UpdateKey"
        if n in (3, 4) and low[-1] in OP_NAMES and m == "POST":
            # ops counted by the REST names: sign, verify, encrypt, ... (wrapKey, unwrapKey)
            return OP_NAMES[low[-1]]
        raise ServiceError(bad("The request URI is not recognised: %s %s" % (m, req.path)).response())

    def _challenge_headers(self):
        login = self.emu.services["azure-login"].base_url
        return [("WWW-Authenticate", 'Bearer authorization="%s/%s", resource="%s"'
                 % (login, self.state.tenant, self.resource))]

    def pre_body(self, req):
        """The bearer challenge: authentication is decided before the body is looked at."""
        api = req.query.get("api-version")
        authz = req.header("Authorization")
        if authz is None or not authz.startswith("Bearer "):
            return AzError(401, "Unauthorized", "AKV10000: Request is missing a Bearer or PoP token.",
                           headers=self._challenge_headers()).response()
        try:
            claims = jwt.decode(authz[7:].strip(), self.state.signing_key.public_key(),
                                algorithms=["RS256"],
                                options=dict(JWT_NO_TIME, verify_aud=False, require=["exp", "aud", "appid"]))
        except jwt.InvalidTokenError:
            return AzError(401, "Unauthorized", "AKV10032: Invalid issuer. Expected one of "
                           "https://sts.windows.net/%s/, found token not issued by this tenant."
                           % self.state.tenant, headers=self._challenge_headers()).response()
        if claims["aud"].rstrip("/") != self.resource or claims["aud"].endswith("/"):
            return AzError(401, "Unauthorized", "AKV10022: Invalid audience. Expected %s, found: %s."
                           % (self.resource, claims["aud"]), headers=self._challenge_headers()).response()
        if claims["exp"] <= self.emu.now():
            return AzError(401, "Unauthorized", "AKV10012: Token has expired.",
                           headers=self._challenge_headers()).response()
        if self.emu.is_revoked("azure", claims["appid"]):
            return AzError(401, "Unauthorized", "AKV10046: The client application has been disabled.",
                           headers=self._challenge_headers()).response()
        req.principal = claims["appid"]
        if api is None:
            return bad("The 'api-version' query parameter is required.").response()
        if not _API_VERSION_RE.match(api):
            return bad("The specified version (%s) is not recognized. Consider using the latest "
                       "supported version (7.6)." % api).response()
        return None

    # --- handlers -------------------------------------------------------------------------
    def handle(self, req):
        try:
            body = {}
            if req.method in ("POST", "PATCH", "PUT"):
                try:
                    body = req.json_body()
                except (ValueError, UnicodeDecodeError):
                    raise bad("The request body is not valid JSON.")
            with self.emu.lock:
                out = getattr(self, "op_" + req.op)(req, body)
            return Response(200, out, "application/json; charset=utf-8")
        except AzError as e:
            return e.response()

    def _kid(self, key, v=None):
        base = "%s/keys/%s" % (self.base_url, key.name)
        return base + "/" + v.version if v is not None else base

    def _lookup(self, name, version=None):
        key = self.state.vaults[self.vault].get(name.lower())
        if key is None or not key.versions:
            raise not_found(name, version)
        if not version:
            return key, key.versions[-1]
        for v in key.versions:
            if v.version == version.lower():
                return key, v
        raise not_found(name, version)

    def _attributes(self, v):
        return {"enabled": v.enabled, "created": v.created, "updated": v.updated,
                "recoveryLevel": "Recoverable+Purgeable", "recoverableDays": 90, "exportable": False}

    def _bundle(self, key, v):
        jwk = {"kid": self._kid(key, v), "kty": v.kty, "key_ops": v.key_ops}
        if v.kty.startswith("RSA"):
            nums = v.material.public_key().public_numbers()
            jwk["n"] = b64url(nums.n.to_bytes((nums.n.bit_length() + 7) // 8, "big"))
            jwk["e"] = b64url(nums.e.to_bytes((nums.e.bit_length() + 7) // 8, "big"))
        elif v.kty.startswith("EC"):
            nums = v.material.public_key().public_numbers()
            width = signing.curve_bytes(v.material)        # fixed width, leading zeros kept
            jwk.update(crv=v.crv, x=b64url(nums.x.to_bytes(width, "big")),
                       y=b64url(nums.y.to_bytes(width, "big")))
        # Symmetric key material is never released by GetKey (keys.json).
        out = {"key": jwk, "attributes": self._attributes(v)}
        if key.tags:
            out["tags"] = key.tags
        return out

    def op_GetKeys(self, req, body):
        keys = sorted(self.state.vaults[self.vault].values(), key=lambda k: k.name.lower())
        return {"value": [{"kid": self._kid(k), "attributes": self._attributes(k.versions[-1])}
                          for k in keys if k.versions], "nextLink": None}

    def op_GetKeyVersions(self, req, body):
        key, _ = self._lookup(req.az[1])
        return {"value": [{"kid": self._kid(key, v), "attributes": self._attributes(v)}
                          for v in key.versions], "nextLink": None}

    def op_GetKey(self, req, body):
        return self._bundle(*self._lookup(req.az[1], req.az[2] if len(req.az) > 2 else None))

    def op_CreateKey(self, req, body):
        kty = body.get("kty")
        if not isinstance(kty, str):
            raise bad("Property 'kty' is required.")
        size = body.get("key_size")
        if size is not None and (not isinstance(size, int) or isinstance(size, bool)):
            raise bad("Property 'key_size' must be an integer.")
        ops = body.get("key_ops")
        if ops is not None and (not isinstance(ops, list) or not all(o in KEY_OPS_ALL for o in ops)):
            raise bad("Property 'key_ops' has an invalid value.")
        crv = body.get("crv")
        if crv is not None and not isinstance(crv, str):
            raise bad("Property 'crv' must be a string.")
        attrs = body.get("attributes") or {}
        if not isinstance(attrs, dict):
            raise bad("Property 'attributes' must be an object.")
        key, v = self.state.create_key(self.vault, req.az[1], kty, size, ops,
                                       enabled=attrs.get("enabled", True) is not False, crv=crv)
        tags = body.get("tags")
        if isinstance(tags, dict):
            key.tags = {str(k): str(t) for k, t in tags.items()}
        return self._bundle(key, v)

    def op_UpdateKey(self, req, body):
        key, v = self._lookup(req.az[1], req.az[2] if len(req.az) > 2 else None)
        attrs = body.get("attributes") or {}
        if not isinstance(attrs, dict):
            raise bad("Property 'attributes' must be an object.")
        if "enabled" in attrs:
            if not isinstance(attrs["enabled"], bool):
                raise bad("Property 'attributes.enabled' must be a boolean.")
            v.enabled = attrs["enabled"]
        if isinstance(body.get("key_ops"), list):
            v.key_ops = [o for o in body["key_ops"] if o in KEY_OPS_ALL]
        if isinstance(body.get("tags"), dict):
            key.tags = {str(k): str(t) for k, t in body["tags"].items()}
        v.updated = int(self.emu.now())
        return self._bundle(key, v)

    # --- cryptographic operations -----------------------------------------------------------
    def _crypto(self, req, body, op):
        key, v = self._lookup(req.az[1], req.az[2] if len(req.az) > 3 else None)
        alg, value = body.get("alg"), body.get("value")
        if not isinstance(alg, str):
            raise bad("Property 'alg' is required.")
        if not isinstance(value, str):
            raise bad("Property 'value' is required.")
        try:
            data = unb64url(value)
        except ValueError:
            raise bad("Content of 'value' is not base64url.\r\n")
        # verify (like encrypt and wrapKey, public-key operations) works on a disabled key
        # [PROTOCOLS.md §2.4, azure-sdk-for-python#45342].
        if not v.enabled and op != "verify":
            raise AzError(403, "Forbidden", "Operation %s is not allowed on a disabled key." % op,
                          inner="KeyDisabled")
        if op not in v.key_ops:
            # Observed: 403 {"code":"Forbidden","message":"Operation decrypt is not permitted on
            # this key.","innererror":{"code":"KeyOperationForbidden"}} (azure-sdk-for-net#11518).
            raise AzError(403, "Forbidden", "Operation %s is not permitted on this key." % op,
                          inner="KeyOperationForbidden")
        if v.kty.startswith("EC") and op not in ("sign", "verify"):
            raise bad("Algorithm %s is not supported for key type %s." % (alg, v.kty))
        return key, v, alg, data

    def _rsa(self, v, alg, data, encrypt):
        if not v.kty.startswith("RSA") or alg not in RSA_ALGS:
            raise bad("Algorithm %s is not supported for key type %s." % (alg, v.kty))
        h = RSA_ALGS[alg]
        pad = padding.PKCS1v15() if h is None else padding.OAEP(mgf=padding.MGF1(h()), algorithm=h(),
                                                                label=None)
        try:
            if encrypt:
                return v.material.public_key().encrypt(data, pad)
            return v.material.decrypt(data, pad)
        except ValueError:
            raise bad("Invalid %s: the value could not be %s with %s."
                      % ("plaintext" if encrypt else "ciphertext",
                         "encrypted" if encrypt else "decrypted", alg))

    def _opt_b64(self, body, name):
        if body.get(name) is None:
            return None
        try:
            return unb64url(body[name])
        except ValueError:
            raise bad("Content of '%s' is not base64url.\r\n" % name)

    def op_wrapKey(self, req, body):
        return self._wrap(req, body, True)

    def op_unwrapKey(self, req, body):
        return self._wrap(req, body, False)

    def _wrap(self, req, body, wrap):
        key, v, alg, data = self._crypto(req, body, "wrapKey" if wrap else "unwrapKey")
        if v.kty.startswith("RSA"):
            out = self._rsa(v, alg, data, wrap)
        else:
            kek = v.material
            if alg in AES_KW and AES_KW[alg] != len(kek):
                raise bad("Algorithm %s needs a %d-bit key; key %s is %d-bit."
                          % (alg, AES_KW[alg] * 8, key.name, len(kek) * 8))
            try:
                if alg in AES_KW or alg == "CKM_AES_KEY_WRAP":            # RFC 3394
                    out = aes_key_wrap(kek, data) if wrap else aes_key_unwrap(kek, data)
                elif alg == "CKM_AES_KEY_WRAP_PAD":                       # RFC 5649
                    out = (aes_key_wrap_with_padding(kek, data) if wrap
                           else aes_key_unwrap_with_padding(kek, data))
                else:
                    raise bad("Algorithm %s is not supported for key type %s." % (alg, v.kty))
            except (InvalidUnwrap, ValueError):
                raise bad("The value could not be %s with %s." % ("wrapped" if wrap else "unwrapped", alg))
        return {"kid": self._kid(key, v), "value": b64url(out)}

    def op_encrypt(self, req, body):
        return self._cipher(req, body, True)

    def op_decrypt(self, req, body):
        return self._cipher(req, body, False)

    def _cipher(self, req, body, enc):
        key, v, alg, data = self._crypto(req, body, "encrypt" if enc else "decrypt")
        out = {"kid": self._kid(key, v)}
        if v.kty.startswith("RSA"):
            out["value"] = b64url(self._rsa(v, alg, data, enc))
            return out
        iv, aad, tag = (self._opt_b64(body, n) for n in ("iv", "aad", "tag"))
        if alg in AES_GCM:
            self._size(alg, AES_GCM[alg], v)
            if enc:
                if iv is not None:
                    raise bad("The 'iv' parameter is generated by the service for %s." % alg)
                iv = secrets.token_bytes(12)       # the service generates GCM IVs
                ct = AESGCM(v.material).encrypt(iv, data, aad)
                out.update(value=b64url(ct[:-16]), iv=b64url(iv), tag=b64url(ct[-16:]))
                if aad is not None:
                    out["aad"] = b64url(aad)
            else:
                if iv is None or tag is None:
                    raise bad("Properties 'iv' and 'tag' are required for %s decryption." % alg)
                try:
                    out["value"] = b64url(AESGCM(v.material).decrypt(iv, data + tag, aad))
                except Exception:
                    raise bad("Decryption failed: the authentication tag does not match.")
            return out
        if alg in AES_CBC:
            self._size(alg, AES_CBC[alg], v)
            if iv is None or len(iv) != 16:
                raise bad("Property 'iv' (16 bytes) is required for %s." % alg)
            cipher = Cipher(algorithms.AES(v.material), modes.CBC(iv))
            padded = alg.endswith("PAD")
            try:
                if enc:
                    if padded:
                        p = sympad.PKCS7(128).padder()
                        data = p.update(data) + p.finalize()
                    elif len(data) % 16:
                        raise bad("Plaintext length must be a multiple of 16 for %s." % alg)
                    e = cipher.encryptor()
                    res = e.update(data) + e.finalize()
                else:
                    if len(data) % 16:
                        raise bad("Ciphertext length must be a multiple of 16 for %s." % alg)
                    d = cipher.decryptor()
                    res = d.update(data) + d.finalize()
                    if padded:
                        u = sympad.PKCS7(128).unpadder()
                        res = u.update(res) + u.finalize()
            except ValueError:
                raise bad("Decryption failed: bad padding.")
            out.update(value=b64url(res), iv=b64url(iv))
            return out
        raise bad("Algorithm %s is not supported for key type %s." % (alg, v.kty))

    def _sign_scheme(self, v, alg):
        """alg for this key -> (scheme, hash); 400 BadParameter for the wrong key type or curve."""
        if alg in RSA_SIGN_ALGS and v.kty.startswith("RSA"):
            return RSA_SIGN_ALGS[alg]
        if alg in EC_SIGN_ALGS and v.kty.startswith("EC"):
            crv, hname = EC_SIGN_ALGS[alg]
            if crv != v.crv:
                raise bad("Algorithm %s requires curve %s; key curve is %s." % (alg, crv, v.crv))
            return "ecdsa", hname
        if alg in RSA_SIGN_ALGS or alg in EC_SIGN_ALGS:
            raise bad("Algorithm %s is not supported for key type %s." % (alg, v.kty))
        raise bad("Invalid algorithm %s: JsonWebKeySignatureAlgorithm is one of %s."
                  % (alg, ", ".join(list(RSA_SIGN_ALGS) + list(EC_SIGN_ALGS))))

    @staticmethod
    def _digest_length(field, alg, hname, digest):
        # Observed text: "Invalid length of 'value': 43 bytes. ES256 requires 32 bytes, encoded
        # with base64url." (Azure/azure-cli#28027, azure-sdk-for-js#12654), 400 BadParameter.
        n = signing.digest_size(hname)
        if len(digest) != n:
            raise bad("Invalid length of '%s': %d bytes. %s requires %d bytes, encoded with base64url."
                      % (field, len(digest), alg, n))

    def op_sign(self, req, body):
        key, v, alg, digest = self._crypto(req, body, "sign")
        scheme, hname = self._sign_scheme(v, alg)
        self._digest_length("value", alg, hname, digest)
        sig = signing.sign_digest(v.material, scheme, hname, digest)
        if scheme == "ecdsa":
            sig = signing.der_to_raw(sig, v.material)      # JWS: r||s, each the curve's width
        return {"kid": self._kid(key, v), "value": b64url(sig)}

    def op_verify(self, req, body):
        if not isinstance(body.get("digest"), str):
            raise bad("Property 'digest' is required.")
        key, v, alg, sig = self._crypto(req, body, "verify")
        digest = self._opt_b64(body, "digest")
        scheme, hname = self._sign_scheme(v, alg)
        self._digest_length("digest", alg, hname, digest)
        pub = v.material.public_key()
        if scheme == "ecdsa":
            sig = signing.raw_to_der(sig, v.material)
        ok = sig is not None and signing.verify_digest(pub, scheme, hname, digest, sig)
        return {"value": ok}

    @staticmethod
    def _size(alg, nbytes, v):
        if len(v.material) != nbytes:
            raise bad("Algorithm %s needs a %d-bit key." % (alg, nbytes * 8))


# --- Microsoft Entra ID ---------------------------------------------------------------------
def _aad_error(status, error, code, text):
    now = time.strftime("%Y-%m-%d %H:%M:%SZ", time.gmtime())
    trace, corr = str(uuid.uuid4()), str(uuid.uuid4())
    return Response(status, {
        "error": error,
        "error_description": "AADSTS%d: %s\r\nTrace ID: %s\r\nCorrelation ID: %s\r\nTimestamp: %s"
                             % (code, text, trace, corr, now),
        "error_codes": [code], "timestamp": now, "trace_id": trace, "correlation_id": corr,
        "error_uri": "https://login.microsoftonline.com/error?code=%d" % code},
        "application/json; charset=utf-8")


def _thumbprints(cert_obj):
    der = cert_obj.public_bytes(serialization.Encoding.DER)
    return (base64.urlsafe_b64encode(hashlib.sha1(der).digest()).rstrip(b"=").decode(),
            base64.urlsafe_b64encode(hashlib.sha256(der).digest()).rstrip(b"=").decode())


class LoginService(Service):
    """login.microsoftonline.com: OpenID configuration, instance discovery, v2.0 token endpoint."""

    name = "azure-login"

    def __init__(self, emu):
        super().__init__(emu)
        self.state = emu.azure

    def error_response(self, req, status, kind, message, retry_after=None):
        resp = _aad_error(status, "temporarily_unavailable" if status >= 500 else "invalid_request",
                          50196 if kind == "throttle" else 90033, message)
        if retry_after is not None:
            resp.headers.append(("Retry-After", str(retry_after)))
        return resp

    def route(self, req):
        segs = [s for s in req.path.split("/") if s]
        req.az = segs
        if req.method == "GET" and segs[-3:] == ["v2.0", ".well-known", "openid-configuration"]:
            return "OpenIdConfiguration"
        if req.method == "GET" and segs == ["common", "discovery", "instance"]:
            return "InstanceDiscovery"
        if req.method == "GET" and segs[1:] == ["discovery", "v2.0", "keys"]:
            return "Keys"
        if req.method == "POST" and segs[1:] == ["oauth2", "v2.0", "token"]:
            return "Token"
        raise ServiceError(_aad_error(404, "invalid_request", 900561,
                                      "The endpoint only accepts known paths."))

    def _tenant_urls(self, tenant):
        base = "%s/%s" % (self.base_url, tenant)
        return {"token_endpoint": base + "/oauth2/v2.0/token",
                "authorization_endpoint": base + "/oauth2/v2.0/authorize",
                "issuer": "%s/%s/v2.0" % (self.base_url, self.state.tenant),
                "jwks_uri": base + "/discovery/v2.0/keys",
                "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt",
                                                          "client_secret_basic"],
                "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
                "subject_types_supported": ["pairwise"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "tenant_region_scope": "EU", "cloud_instance_name": "microsoftonline.com"}

    def handle(self, req):
        tenant = req.az[0]
        if req.op == "InstanceDiscovery":
            return Response(200, {"tenant_discovery_endpoint": "%s/%s/v2.0/.well-known/openid-configuration"
                                  % (self.base_url, self.state.tenant), "api-version": "1.1",
                                  "metadata": [{"preferred_network": "127.0.0.1",
                                                "preferred_cache": "127.0.0.1",
                                                "aliases": ["127.0.0.1"]}]})
        if tenant not in (self.state.tenant, "organizations", "common"):
            return _aad_error(400, "invalid_request", 90002, "Tenant '%s' not found. Check to make sure you "
                              "have the correct tenant ID and are signing into the correct cloud." % tenant)
        if req.op == "OpenIdConfiguration":
            return Response(200, self._tenant_urls(tenant))
        if req.op == "Keys":
            from jwt.algorithms import RSAAlgorithm
            jwk = json.loads(RSAAlgorithm.to_jwk(self.state.signing_key.public_key()))
            jwk.update(kid=self.state.signing_kid, use="sig")
            return Response(200, {"keys": [jwk]})
        return self._token(req, tenant)

    def _token(self, req, tenant):
        try:
            form = req.form_body()
        except UnicodeDecodeError:
            return _aad_error(400, "invalid_request", 900144, "The request body must contain the "
                              "following parameter: 'grant_type'.")
        if form.get("grant_type") != "client_credentials":
            return _aad_error(400, "unsupported_grant_type", 70003,
                              "The app requested an unsupported grant type.")
        client_id = form.get("client_id", "")
        app = self.state.apps.get(client_id)
        if app is None:
            return _aad_error(400, "unauthorized_client", 700016, "Application with identifier '%s' was "
                              "not found in the directory '%s'." % (client_id, self.state.tenant))
        if self.emu.is_revoked("azure", client_id):
            return _aad_error(401, "invalid_client", 7000112, "Application '%s' is disabled." % client_id)
        scope = form.get("scope", "")
        resources = [s[:-len("/.default")] for s in scope.split() if s.endswith("/.default")]
        if len(resources) != 1:
            return _aad_error(400, "invalid_scope", 1002012, "The provided value for scope %s is not "
                              "valid. Client credential flows must have a scope value with /.default "
                              "suffixed to the resource identifier (application ID URI)." % scope)
        if "client_secret" in form:
            if app["secret"] is None or not secrets.compare_digest(form["client_secret"], app["secret"]):
                return _aad_error(401, "invalid_client", 7000215, "Invalid client secret provided. "
                                  "Ensure the secret being sent in the request is the client secret "
                                  "value, not the client secret ID, for a secret added to app '%s'."
                                  % client_id)
        elif form.get("client_assertion_type") == "urn:ietf:params:oauth:client-assertion-type:jwt-bearer":
            err = self._check_assertion(app, client_id, form.get("client_assertion", ""), tenant)
            if err is not None:
                return err
        else:
            return _aad_error(401, "invalid_client", 7000218, "The request body must contain the "
                              "following parameter: 'client_assertion' or 'client_secret'.")
        req.principal = client_id
        token, _ = self.state.issue_token(client_id, resources[0])
        return Response(200, {"token_type": "Bearer", "expires_in": 3599, "ext_expires_in": 3599,
                              "access_token": token})

    def _check_assertion(self, app, client_id, assertion, tenant):
        try:
            header = jwt.get_unverified_header(assertion)
        except jwt.InvalidTokenError:
            return _aad_error(400, "invalid_client", 50027, "JWT token is invalid or malformed.")
        emu = self.emu
        now = emu.now()
        if header.get("kid") == emu.oidc_kid:
            # Workload identity: a token from a federated issuer (the emulator's OIDC issuer
            # plays the Kubernetes service-account issuer).
            try:
                claims = jwt.decode(assertion, emu.oidc_key.public_key(), algorithms=["RS256"],
                                    audience="api://AzureADTokenExchange", issuer=emu.oidc_issuer,
                                    options=dict(JWT_NO_TIME, require=["exp", "sub"]))
            except jwt.InvalidTokenError as e:
                return _aad_error(400, "invalid_client", 700211, "No matching federated identity record "
                                  "found for presented assertion issuer. (%s)" % e)
            if claims["exp"] <= now:
                return _aad_error(400, "invalid_client", 700024, "Client assertion is not within its "
                                  "valid time range.")
            if (emu.oidc_issuer, claims["sub"]) not in [tuple(f) for f in app["federated"]]:
                return _aad_error(400, "invalid_client", 70021, "No matching federated identity record "
                                  "found for presented assertion. Assertion Issuer: '%s'. Assertion "
                                  "Subject: '%s'." % (emu.oidc_issuer, claims["sub"]))
            return None
        cert = app["cert"]
        if cert is None:
            return _aad_error(401, "invalid_client", 700027, "Client assertion failed signature "
                              "validation: no certificate is registered for this application.")
        sha1, sha256 = _thumbprints(cert)
        # MSAL sends x5t base64url-encoded with its '=' padding; compare without it.
        x5t256 = (header.get("x5t#S256") or "").rstrip("=") or None
        x5t = (header.get("x5t") or "").rstrip("=") or None
        if x5t256 not in (None, sha256) or x5t not in (None, sha1) or (x5t256 is None and x5t is None):
            return _aad_error(401, "invalid_client", 700027, "Client assertion contains an invalid "
                              "signature. [Reason - The key was not found.]")
        aud = "%s/%s/oauth2/v2.0/token" % (self.base_url, tenant)
        try:
            claims = jwt.decode(assertion, cert.public_key(), algorithms=["RS256", "PS256"],
                                audience=[aud, "%s/%s/oauth2/v2.0/token"
                                          % (self.base_url, self.state.tenant)],
                                options=dict(JWT_NO_TIME, require=["exp", "iss", "sub", "aud"]))
        except jwt.InvalidAudienceError:
            return _aad_error(400, "invalid_client", 700212, "No matching federated identity record "
                              "found for presented assertion audience.")
        except jwt.InvalidSignatureError:
            return _aad_error(401, "invalid_client", 700027, "Client assertion contains an invalid "
                              "signature. [Reason - The provided signature value did not match the "
                              "expected signature value.]")
        except jwt.InvalidTokenError as e:
            return _aad_error(400, "invalid_client", 50027, "JWT token is invalid or malformed (%s)." % e)
        if claims["iss"] != client_id or claims["sub"] != client_id:
            return _aad_error(400, "invalid_client", 700021, "Client assertion application identifier "
                              "doesn't match 'client_id' parameter.")
        if not claims.get("nbf", 0) - 300 <= now < claims["exp"]:
            return _aad_error(400, "invalid_client", 700024, "Client assertion is not within its valid "
                              "time range.")
        return None


def load_cert(pem):
    return x509.load_pem_x509_certificate(pem)
