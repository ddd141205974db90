# SPDX-License-Identifier: Apache-2.0
"""AWS KMS (JSON 1.1, X-Amz-Target TrentService.*) and STS AssumeRoleWithWebIdentity.

Shapes and error types follow the botocore KMS model and PROTOCOLS.md §1. Both
services share one HTTPS port: a request with X-Amz-Target is KMS, a form POST
with Action= is STS (the real services differ by host name only).
"""

import hashlib
import json
import re
import secrets
import struct
import uuid
from xml.sax.saxutils import escape

import jwt
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from . import signing, sigv4
from .httpbase import Response, Service, ServiceError, new_request_id
from .util import JWT_NO_TIME, b64, iso8601, unb64

JSON_CT = "application/x-amz-json-1.1"
BLOB_MAGIC = 0x01
MAX_PLAINTEXT = 4096          # SYMMETRIC_DEFAULT limit [model doc on Encrypt]
MAX_CIPHERTEXT = 6144
KMS_OPS = ("Encrypt", "Decrypt", "GenerateDataKey", "GenerateDataKeyWithoutPlaintext", "ReEncrypt",
           "DescribeKey", "ListKeys", "ListAliases", "CreateKey", "CreateAlias", "EnableKey",
           "DisableKey", "ScheduleKeyDeletion", "CancelKeyDeletion", "EnableKeyRotation",
           "DisableKeyRotation", "GetKeyRotationStatus", "RotateKeyOnDemand", "ListKeyRotations",
           "GenerateRandom", "GetPublicKey", "Sign", "Verify")
# Asymmetric keys [model: KeySpec, KeyUsageType, EncryptionAlgorithmSpec]. RSA keys encrypt with
# RSAES-OAEP (MGF1 with the same hash, empty label) or sign; ECC keys only sign. Sign/Verify take a
# message (RAW, hashed here) or a digest (DIGEST); RSASSA-PSS uses a salt as long as the hash and
# MGF1 with the same hash [AWS KMS developer guide, asymmetric key specs]; ECDSA signatures are DER.
RSA_SPECS = {"RSA_2048": 2048, "RSA_3072": 3072, "RSA_4096": 4096}
ECC_SPECS = {"ECC_NIST_P256": ec.SECP256R1, "ECC_NIST_P384": ec.SECP384R1,
             "ECC_NIST_P521": ec.SECP521R1, "ECC_SECG_P256K1": ec.SECP256K1}
RSA_ENCRYPTION_ALGS = ["RSAES_OAEP_SHA_1", "RSAES_OAEP_SHA_256"]
ENCRYPTION_ALGS = ["SYMMETRIC_DEFAULT"] + RSA_ENCRYPTION_ALGS + ["SM2PKE"]
RSA_SIGNING_ALGS = ["RSASSA_PSS_SHA_256", "RSASSA_PSS_SHA_384", "RSASSA_PSS_SHA_512",
                    "RSASSA_PKCS1_V1_5_SHA_256", "RSASSA_PKCS1_V1_5_SHA_384", "RSASSA_PKCS1_V1_5_SHA_512"]
ECC_SIGNING_ALGS = {"ECC_NIST_P256": ["ECDSA_SHA_256"], "ECC_NIST_P384": ["ECDSA_SHA_384"],
                    "ECC_NIST_P521": ["ECDSA_SHA_512"], "ECC_SECG_P256K1": ["ECDSA_SHA_256"]}
SIGNING_SCHEMES = {   # SigningAlgorithmSpec -> (scheme, hash) for kmsemu.signing
    "RSASSA_PSS_SHA_256": ("pss", "sha256"), "RSASSA_PSS_SHA_384": ("pss", "sha384"),
    "RSASSA_PSS_SHA_512": ("pss", "sha512"), "RSASSA_PKCS1_V1_5_SHA_256": ("pkcs1", "sha256"),
    "RSASSA_PKCS1_V1_5_SHA_384": ("pkcs1", "sha384"), "RSASSA_PKCS1_V1_5_SHA_512": ("pkcs1", "sha512"),
    "ECDSA_SHA_256": ("ecdsa", "sha256"), "ECDSA_SHA_384": ("ecdsa", "sha384"),
    "ECDSA_SHA_512": ("ecdsa", "sha512")}
SIGNING_ALGS_ALL = ["RSASSA_PSS_SHA_256", "RSASSA_PSS_SHA_384", "RSASSA_PSS_SHA_512",
                    "RSASSA_PKCS1_V1_5_SHA_256", "RSASSA_PKCS1_V1_5_SHA_384", "RSASSA_PKCS1_V1_5_SHA_512",
                    "ECDSA_SHA_256", "ECDSA_SHA_384", "ECDSA_SHA_512", "SM2DSA", "ML_DSA_SHAKE_256",
                    "ED25519_SHA_512", "ED25519_PH_SHA_512"]      # the model's enum
MESSAGE_TYPES = ["RAW", "DIGEST", "EXTERNAL_MU"]
MAX_MESSAGE = 4096            # PlaintextType max [model]
KEY_SPECS = ["RSA_2048", "RSA_3072", "RSA_4096", "ECC_NIST_P256", "ECC_NIST_P384", "ECC_NIST_P521",
             "ECC_SECG_P256K1", "SYMMETRIC_DEFAULT", "HMAC_224", "HMAC_256", "HMAC_384", "HMAC_512",
             "SM2", "ML_DSA_44", "ML_DSA_65", "ML_DSA_87", "ECC_NIST_EDWARDS25519"]
KEY_USAGES = ["SIGN_VERIFY", "ENCRYPT_DECRYPT", "GENERATE_VERIFY_MAC", "KEY_AGREEMENT"]
_ALIAS_RE = re.compile(r"^alias/[a-zA-Z0-9:/_-]{1,250}$")


class KmsError(Exception):
    def __init__(self, error_type, message, status=400, capital_message=False):
        super().__init__(message)
        self.error_type, self.message, self.status = error_type, message, status
        self.capital_message = capital_message


class AwsMaterial:
    """One key material of a symmetric key: its id (64 hex digits, as BackingKeyIdType), the
    AES key, when it was made and how (None for the first material, else AUTOMATIC or
    ON_DEMAND: RotationsListEntry.RotationType)."""

    def __init__(self, now, rotation_type=None):
        self.key = secrets.token_bytes(32)
        self.id = hashlib.sha256(self.key + b"id").hexdigest()
        self.created = now
        self.rotation_type = rotation_type


class AwsKey:
    def __init__(self, account, region, key_id, now, description="", spec="SYMMETRIC_DEFAULT",
                 usage="ENCRYPT_DECRYPT"):
        self.key_id = key_id
        self.spec, self.usage = spec, usage
        self.private = None           # asymmetric keys: the private key (python-cryptography)
        if spec in RSA_SPECS:
            self.private = rsa.generate_private_key(public_exponent=65537, key_size=RSA_SPECS[spec])
        elif spec in ECC_SPECS:
            self.private = ec.generate_private_key(ECC_SPECS[spec]())
        self.arn = "arn:aws:kms:%s:%s:key/%s" % (region, account, key_id)
        self.created = now
        self.description = description
        self.state = "Enabled"
        self.deletion_date = None
        self.rotation_enabled = False
        self.rotation_period = 365
        self.on_demand_rotations = []
        self.versions = []            # AwsMaterial, oldest first; index = version; last = current
        self.add_version(now)

    @property
    def asymmetric(self):
        return self.private is not None

    def encryption_algorithms(self):
        if self.usage != "ENCRYPT_DECRYPT":
            return []
        return list(RSA_ENCRYPTION_ALGS) if self.spec in RSA_SPECS else ["SYMMETRIC_DEFAULT"]

    def public_der(self):
        return self.private.public_key().public_bytes(serialization.Encoding.DER,
                                                      serialization.PublicFormat.SubjectPublicKeyInfo)

    def add_version(self, now, rotation_type=None):
        self.versions.append(AwsMaterial(now, rotation_type))
        return len(self.versions) - 1

    def material(self, material_id=None):
        """The current key material, or the one with this id (None if there is none)."""
        if material_id is None:
            return self.versions[-1]
        return next((m for m in self.versions if m.id == material_id), None)

    def backdate(self, seconds, material_id=None):
        """Make a key material (the current one by default) `seconds` older; the key's
        CreationDate follows when the first material moves or one moves before it."""
        m = self.material(material_id)
        if m is None:
            raise KeyError("no key material %s" % material_id)
        m.created -= seconds
        if m is self.versions[0] or m.created < self.created:
            self.created = m.created
            self.versions[0].created = min(self.versions[0].created, m.created)
        return m


class AwsState:
    """Keys, aliases and credentials of the emulated AWS account."""

    def __init__(self, emu, account="111122223333", region="us-east-1"):
        self.emu = emu
        self.account, self.region = account, region
        self.keys = {}          # key id -> AwsKey
        self.aliases = {}       # alias name -> {"key": id, "created": t, "updated": t}
        # access key id -> {"secret", "session_token", "expires", "revoked", "principal"}
        self.creds = {}
        self.oidc_key = emu.oidc_key
        self.role_arn = "arn:aws:iam::%s:role/p11kms-emulator" % account
        self.imds_tokens = {}   # IMDSv2 session token -> expiry
        self.container_token = secrets.token_urlsafe(24)

    # --- credentials ---------------------------------------------------------------------
    def new_static_credentials(self, principal="user/p11kms-test"):
        akid = "AKIA" + secrets.token_hex(8).upper()
        self.creds[akid] = {"secret": secrets.token_urlsafe(30), "session_token": None,
                            "expires": None, "revoked": False, "principal": principal}
        return akid

    def new_session_credentials(self, principal, lifetime):
        akid = "ASIA" + secrets.token_hex(8).upper()
        rec = {"secret": secrets.token_urlsafe(30),
               "session_token": "IQoJb3JpZ2luX2VjE" + secrets.token_urlsafe(60),
               "expires": self.emu.now() + lifetime, "revoked": False, "principal": principal}
        self.creds[akid] = rec
        return akid, rec

    def lookup(self, akid):
        with self.emu.lock:
            rec = self.creds.get(akid)
            return dict(rec) if rec else None

    # --- keys ----------------------------------------------------------------------------
    def create_key(self, description="", alias=None, spec="SYMMETRIC_DEFAULT", usage="ENCRYPT_DECRYPT"):
        # Generate outside the lock: an RSA 4096 key takes a while.
        key = AwsKey(self.account, self.region, str(uuid.uuid4()), self.emu.now(), description,
                     spec, usage)
        with self.emu.lock:
            self.keys[key.key_id] = key
            if alias:
                self.set_alias(alias, key.key_id)
            return key

    def set_alias(self, alias, key_id):
        now = self.emu.now()
        self.aliases[alias] = {"key": key_id, "created": now, "updated": now}

    def alias_arn(self, alias):
        return "arn:aws:kms:%s:%s:%s" % (self.region, self.account, alias)

    def resolve(self, key_ref):
        """Key id, key ARN, alias name or alias ARN -> AwsKey (caller holds the lock)."""
        if not isinstance(key_ref, str) or not 1 <= len(key_ref) <= 2048:
            raise KmsError("ValidationException", "1 validation error detected: Value at 'keyId' "
                           "failed to satisfy constraint: Member must have length between 1 and 2048")
        ref = key_ref
        prefix = "arn:aws:kms:"
        if ref.startswith(prefix):
            parts = ref.split(":", 5)
            if len(parts) != 6 or parts[3] != self.region or parts[4] != self.account:
                raise KmsError("NotFoundException", "Invalid arn %s" % key_ref)
            ref = parts[5]
            if ref.startswith("key/"):
                ref = ref[4:]
            elif not ref.startswith("alias/"):
                raise KmsError("InvalidArnException", "Invalid arn %s" % key_ref)
        if ref.startswith("alias/"):
            a = self.aliases.get(ref)
            if a is None:
                raise KmsError("NotFoundException", "Alias %s is not found." % self.alias_arn(ref))
            ref = a["key"]
        key = self.keys.get(ref)
        if key is None:
            raise KmsError("NotFoundException", "Key '%s' does not exist"
                           % ("arn:aws:kms:%s:%s:key/%s" % (self.region, self.account, ref)))
        return key

    def usable(self, key):
        if key.state == "Disabled":
            raise KmsError("DisabledException", "%s is disabled." % key.arn)
        if key.state == "PendingDeletion":
            raise KmsError("KMSInvalidStateException", "%s is pending deletion." % key.arn)
        if key.state != "Enabled":
            raise KmsError("KMSInvalidStateException", "%s is %s." % (key.arn, key.state))

    def set_state(self, key, state):
        key.state = state
        if state != "PendingDeletion":
            key.deletion_date = None

    # --- ciphertext blobs ----------------------------------------------------------------
    # Layout (ours; real blobs are opaque to clients): magic | id length | key id | version
    # (u32 BE) | 12-byte nonce | AES-256-GCM ciphertext+tag. The header and the canonical
    # encryption context are the AAD, so neither can be edited without failing decryption.
    @staticmethod
    def _context_aad(ctx):
        return json.dumps(ctx or {}, sort_keys=True, separators=(",", ":")).encode()

    def seal(self, key, plaintext, context):
        version = len(key.versions) - 1
        kid = key.key_id.encode()
        header = bytes([BLOB_MAGIC, len(kid)]) + kid + struct.pack(">I", version)
        nonce = secrets.token_bytes(12)
        ct = AESGCM(key.versions[version].key).encrypt(nonce, plaintext,
                                                        header + self._context_aad(context))
        return header + nonce + ct, key.versions[version].id

    def open(self, blob, context):
        """-> (key, plaintext, material id); raises KmsError as the service does."""
        if len(blob) < 2 + 4 + 12 + 16 or blob[0] != BLOB_MAGIC:
            raise KmsError("InvalidCiphertextException", "")
        n = blob[1]
        if len(blob) < 2 + n + 4 + 12 + 16:
            raise KmsError("InvalidCiphertextException", "")
        key_id = blob[2:2 + n].decode("ascii", "replace")
        (version,) = struct.unpack(">I", blob[2 + n:6 + n])
        key = self.keys.get(key_id)
        if key is None:
            raise KmsError("AccessDeniedException",
                           "The ciphertext refers to a customer master key that does not exist, does "
                           "not exist in this region, or you are not allowed to access.",
                           capital_message=True)
        self.usable(key)
        if version >= len(key.versions):
            raise KmsError("InvalidCiphertextException", "")
        header = blob[:6 + n]
        nonce, ct = blob[6 + n:18 + n], blob[18 + n:]
        try:
            pt = AESGCM(key.versions[version].key).decrypt(nonce, ct, header + self._context_aad(context))
        except Exception:
            raise KmsError("InvalidCiphertextException", "")
        return key, pt, key.versions[version].id


def _get(body, name, typ, required=False, field=None):
    v = body.get(name)
    if v is None:
        if required:
            raise KmsError("ValidationException", "1 validation error detected: Value null at '%s' "
                           "failed to satisfy constraint: Member must not be null"
                           % (field or name[0].lower() + name[1:]))
        return None
    if not isinstance(v, typ) or (typ is int and isinstance(v, bool)):
        raise KmsError("SerializationException", "Start of structure or map found where not expected."
                       if isinstance(v, dict) else "STRING_VALUE can not be converted to %s" % typ.__name__)
    return v


def _blob(body, name, required=False, max_len=MAX_CIPHERTEXT):
    v = _get(body, name, str, required)
    if v is None:
        return None
    try:
        data = unb64(v, name)
    except ValueError:
        raise KmsError("SerializationException", "Could not parse %s as base64" % name)
    field = name[0].lower() + name[1:]
    if not 1 <= len(data) <= max_len:
        raise KmsError("ValidationException", "1 validation error detected: Value at '%s' failed to "
                       "satisfy constraint: Member must have length %s"
                       % (field, "greater than or equal to 1" if not data else
                          "less than or equal to %d" % max_len))
    return data


def _alg(body):
    """EncryptionAlgorithm, defaulting to SYMMETRIC_DEFAULT; an unknown name fails validation."""
    alg = _get(body, "EncryptionAlgorithm", str)
    if alg is None:
        return "SYMMETRIC_DEFAULT"
    if alg not in ENCRYPTION_ALGS:
        raise KmsError("ValidationException", "1 validation error detected: Value '%s' at "
                       "'encryptionAlgorithm' failed to satisfy constraint: Member must satisfy enum "
                       "value set: [%s]" % (alg, ", ".join(ENCRYPTION_ALGS)))
    return alg


def _context(body, name="EncryptionContext"):
    ctx = _get(body, name, dict)
    if ctx is not None and not all(isinstance(k, str) and isinstance(v, str) for k, v in ctx.items()):
        raise KmsError("SerializationException", "EncryptionContext values must be strings")
    return ctx


class AwsService(Service):
    name = "aws"

    def __init__(self, emu):
        super().__init__(emu)
        self.state = emu.aws

    def route(self, req):
        if req.method != "POST" or req.raw_path != "/":
            raise ServiceError(self._error(KmsError("UnknownOperationException", "", status=404)))
        target = req.header("X-Amz-Target")
        if target is not None:
            prefix, _, op = target.partition(".")
            if prefix != "TrentService" or op not in KMS_OPS:
                raise ServiceError(self._error(KmsError("UnknownOperationException", "")))
            return op
        if (req.header("Content-Type") or "").startswith("application/x-www-form-urlencoded"):
            return "AssumeRoleWithWebIdentity"    # the only STS action served; checked in handle_sts
        raise ServiceError(self._error(KmsError("UnknownOperationException", "")))

    def response_headers(self, req):
        return [("x-amzn-RequestId", new_request_id())]

    def error_response(self, req, status, kind, message, retry_after=None):
        if req.op == "AssumeRoleWithWebIdentity":
            code = {"throttle": "Throttling", "unavailable": "ServiceUnavailable",
                    "too_large": "RequestEntityTooLarge"}.get(kind, "InternalFailure")
            resp = sts_error(code, message, status)
        else:
            etype = {"throttle": "ThrottlingException", "unavailable": "DependencyTimeoutException",
                     "internal": "KMSInternalException", "too_large": "ValidationException",
                     "bad_request": "SerializationException"}[kind]
            if kind == "throttle":
                # KMS throttles with HTTP 400 and this text [obs: aws-dynamodb-encryption-java#6]
                message = ("You have exceeded the rate at which you may call KMS. "
                           "Reduce the frequency of your calls.")
                status = status if status != 429 else 400
            resp = self._error(KmsError(etype, message, status))
        if retry_after is not None:
            resp.headers.append(("Retry-After", str(retry_after)))
        return resp

    @staticmethod
    def _error(e):
        body = {"__type": e.error_type, ("Message" if e.capital_message else "message"): e.message}
        if not e.message and e.error_type in ("InvalidCiphertextException", "KMSInvalidSignatureException"):
            body = {"__type": e.error_type}       # KMS sends no message here (local-kms, moto agree)
        return Response(e.status, json.dumps(body).encode(), JSON_CT)

    def handle(self, req):
        if req.op == "AssumeRoleWithWebIdentity":
            return handle_sts(self, req)
        try:
            cred = sigv4.verify(req.method, req.raw_path, req.raw_query, list(req.headers.items()),
                                req.body, self.state.lookup, self.emu.now(), "kms", self.state.region)
        except sigv4.SigV4Error as e:
            return self._error(KmsError(e.error_type, e.message, e.status))
        req.principal = cred["access_key"]
        try:
            try:
                body = req.json_body()
            except (ValueError, UnicodeDecodeError):
                raise KmsError("SerializationException",
                               "Start of structure or map found where not expected.")
            fn = getattr(self, "op_" + req.op)
            with self.emu.lock:
                out = fn(body)
        except KmsError as e:
            return self._error(e)
        return Response(200, json.dumps(out).encode(), JSON_CT)

    # --- operations (called with the state lock held) --------------------------------------
    def op_Encrypt(self, b):
        st = self.state
        alg = _alg(b)
        key = st.resolve(_get(b, "KeyId", str, True))
        pt = _blob(b, "Plaintext", True, MAX_PLAINTEXT)
        if key.asymmetric:
            return self._rsa_crypt(key, alg, pt, _context(b), True)
        self._check_alg(alg, key)
        st.usable(key)
        blob, mid = st.seal(key, pt, _context(b))
        return {"CiphertextBlob": b64(blob), "KeyId": key.arn, "EncryptionAlgorithm": "SYMMETRIC_DEFAULT"}

    def _rsa_crypt(self, key, alg, data, ctx, encrypt):
        """Encrypt/Decrypt with an asymmetric key: RSAES-OAEP, no context, no header."""
        op = "Encrypt" if encrypt else "Decrypt"
        self.state.usable(key)
        if key.usage != "ENCRYPT_DECRYPT":
            raise KmsError("InvalidKeyUsageException", "%s key usage is %s which is not valid for %s."
                           % (key.arn, key.usage, op))
        if alg not in key.encryption_algorithms():
            raise KmsError("InvalidKeyUsageException", "Algorithm %s is incompatible with key spec %s."
                           % (alg, key.spec))
        if ctx:
            raise KmsError("ValidationException", "EncryptionContext is not supported with "
                           "asymmetric KMS keys.")
        h = hashes.SHA1() if alg == "RSAES_OAEP_SHA_1" else hashes.SHA256()
        pad = padding.OAEP(mgf=padding.MGF1(algorithm=h), algorithm=h, label=None)
        nbytes = RSA_SPECS[key.spec] // 8
        if encrypt:
            limit = nbytes - 2 * h.digest_size - 2
            if len(data) > limit:
                raise KmsError("ValidationException", "Algorithm %s and key spec %s cannot encrypt "
                               "data larger than %d bytes." % (alg, key.spec, limit))
            out = key.private.public_key().encrypt(data, pad)
            return {"CiphertextBlob": b64(out), "KeyId": key.arn, "EncryptionAlgorithm": alg}
        if len(data) != nbytes:
            raise KmsError("InvalidCiphertextException", "")
        try:
            out = key.private.decrypt(data, pad)
        except ValueError:
            raise KmsError("InvalidCiphertextException", "")
        return {"KeyId": key.arn, "Plaintext": b64(out), "EncryptionAlgorithm": alg}

    def op_Decrypt(self, b):
        st = self.state
        alg = _alg(b)
        blob = _blob(b, "CiphertextBlob", True)
        want = _get(b, "KeyId", str)
        if want is not None:
            wkey = st.resolve(want)
            if wkey.asymmetric:
                # KMS finds no key in an asymmetric ciphertext: KeyId and the algorithm say it.
                return self._rsa_crypt(wkey, alg, blob, _context(b), False)
        if alg != "SYMMETRIC_DEFAULT":
            if want is None:
                # Without KeyId the blob is taken as a symmetric ciphertext, which it is not.
                raise KmsError("InvalidCiphertextException", "")
            self._check_alg(alg, wkey)
        key, pt, mid = st.open(blob, _context(b))
        if want is not None and st.resolve(want) is not key:
            raise KmsError("IncorrectKeyException", "The key ID in the request does not identify a "
                           "CMK that can perform this operation.")
        return {"KeyId": key.arn, "Plaintext": b64(pt), "EncryptionAlgorithm": "SYMMETRIC_DEFAULT",
                "KeyMaterialId": mid}

    def _data_key(self, b):
        st = self.state
        key = st.resolve(_get(b, "KeyId", str, True))
        if key.asymmetric:
            raise KmsError("InvalidKeyUsageException", "%s key usage is %s which is not valid for "
                           "GenerateDataKey." % (key.arn, key.usage) if key.usage != "ENCRYPT_DECRYPT"
                           else "Asymmetric KMS keys do not generate data keys: %s." % key.arn)
        spec, nbytes = _get(b, "KeySpec", str), _get(b, "NumberOfBytes", int)
        if (spec is None) == (nbytes is None):
            raise KmsError("ValidationException", "Please specify either number of bytes or key spec.")
        if spec is not None:
            if spec not in ("AES_256", "AES_128"):
                raise KmsError("ValidationException", "1 validation error detected: Value '%s' at "
                               "'keySpec' failed to satisfy constraint: Member must satisfy enum value "
                               "set: [AES_256, AES_128]" % spec)
            nbytes = 32 if spec == "AES_256" else 16
        if not 1 <= nbytes <= 1024:
            raise KmsError("ValidationException", "1 validation error detected: Value '%d' at "
                           "'numberOfBytes' failed to satisfy constraint: Member must have value less "
                           "than or equal to 1024" % nbytes)
        st.usable(key)
        pt = secrets.token_bytes(nbytes)
        blob, mid = st.seal(key, pt, _context(b))
        return key, pt, blob, mid

    def op_GenerateDataKey(self, b):
        key, pt, blob, mid = self._data_key(b)
        return {"CiphertextBlob": b64(blob), "Plaintext": b64(pt), "KeyId": key.arn, "KeyMaterialId": mid}

    def op_GenerateDataKeyWithoutPlaintext(self, b):
        key, pt, blob, mid = self._data_key(b)
        return {"CiphertextBlob": b64(blob), "KeyId": key.arn, "KeyMaterialId": mid}

    def op_ReEncrypt(self, b):
        st = self.state
        blob = _blob(b, "CiphertextBlob", True)
        dest = st.resolve(_get(b, "DestinationKeyId", str, True))
        src_want = _get(b, "SourceKeyId", str)
        if dest.asymmetric or (src_want is not None and st.resolve(src_want).asymmetric):
            raise KmsError("UnsupportedOperationException",
                           "The emulator re-encrypts with symmetric keys only.")
        src, pt, src_mid = st.open(blob, _context(b, "SourceEncryptionContext"))
        if src_want is not None and st.resolve(src_want) is not src:
            raise KmsError("IncorrectKeyException", "The key ID in the request does not identify a "
                           "CMK that can perform this operation.")
        st.usable(dest)
        new, mid = st.seal(dest, pt, _context(b, "DestinationEncryptionContext"))
        return {"CiphertextBlob": b64(new), "SourceKeyId": src.arn, "KeyId": dest.arn,
                "SourceEncryptionAlgorithm": "SYMMETRIC_DEFAULT",
                "DestinationEncryptionAlgorithm": "SYMMETRIC_DEFAULT",
                "SourceKeyMaterialId": src_mid, "DestinationKeyMaterialId": mid}

    def _metadata(self, key):
        md = {"AWSAccountId": self.state.account, "KeyId": key.key_id, "Arn": key.arn,
              "CreationDate": key.created, "Enabled": key.state == "Enabled",
              "Description": key.description, "KeyUsage": key.usage, "KeyState": key.state,
              "Origin": "AWS_KMS", "KeyManager": "CUSTOMER", "CustomerMasterKeySpec": key.spec,
              "KeySpec": key.spec, "MultiRegion": False}
        md.update(self._algorithms(key))
        if not key.asymmetric:
            md["CurrentKeyMaterialId"] = key.versions[-1].id
        if key.deletion_date is not None:
            md["DeletionDate"] = key.deletion_date
        return md

    def op_DescribeKey(self, b):
        return {"KeyMetadata": self._metadata(self.state.resolve(_get(b, "KeyId", str, True)))}

    @staticmethod
    def _page(items, b):
        limit = _get(b, "Limit", int) or 100
        if not 1 <= limit <= 1000:
            raise KmsError("ValidationException", "1 validation error detected: Value '%d' at 'limit' "
                           "failed to satisfy constraint: Member must have value between 1 and 1000" % limit)
        marker = _get(b, "Marker", str)
        start = 0
        if marker is not None:
            try:
                start = int(marker)
            except ValueError:
                raise KmsError("InvalidMarkerException", "Invalid marker")
        page = items[start:start + limit]
        out = {"Truncated": start + limit < len(items)}
        if out["Truncated"]:
            out["NextMarker"] = str(start + limit)
        return page, out

    def op_ListKeys(self, b):
        keys = sorted(self.state.keys.values(), key=lambda k: k.created)
        page, out = self._page(keys, b)
        out["Keys"] = [{"KeyId": k.key_id, "KeyArn": k.arn} for k in page]
        return out

    def op_ListAliases(self, b):
        st = self.state
        only = _get(b, "KeyId", str)
        only_key = st.resolve(only) if only is not None else None
        items = sorted(st.aliases.items())
        if only_key is not None:
            items = [i for i in items if i[1]["key"] == only_key.key_id]
        page, out = self._page(items, b)
        out["Aliases"] = [{"AliasName": n, "AliasArn": st.alias_arn(n), "TargetKeyId": a["key"],
                           "CreationDate": a["created"], "LastUpdatedDate": a["updated"]} for n, a in page]
        return out

    @staticmethod
    def _algorithms(key):
        if key.usage == "ENCRYPT_DECRYPT":
            return {"EncryptionAlgorithms": key.encryption_algorithms()}
        if key.spec in RSA_SPECS:
            return {"SigningAlgorithms": list(RSA_SIGNING_ALGS)}
        return {"SigningAlgorithms": list(ECC_SIGNING_ALGS[key.spec])}

    def op_CreateKey(self, b):
        spec = _get(b, "KeySpec", str) or _get(b, "CustomerMasterKeySpec", str) or "SYMMETRIC_DEFAULT"
        usage = _get(b, "KeyUsage", str) or "ENCRYPT_DECRYPT"
        for field, value, allowed in (("keySpec", spec, KEY_SPECS), ("keyUsage", usage, KEY_USAGES)):
            if value not in allowed:
                raise KmsError("ValidationException", "1 validation error detected: Value '%s' at '%s' "
                               "failed to satisfy constraint: Member must satisfy enum value set: [%s]"
                               % (value, field, ", ".join(allowed)))
        ok = ((spec == "SYMMETRIC_DEFAULT" and usage == "ENCRYPT_DECRYPT") or
              (spec in RSA_SPECS and usage in ("ENCRYPT_DECRYPT", "SIGN_VERIFY")) or
              (spec in ECC_SPECS and usage == "SIGN_VERIFY"))
        if not ok:
            if spec in RSA_SPECS or spec in ECC_SPECS or spec == "SYMMETRIC_DEFAULT":
                raise KmsError("ValidationException", "KeyUsage %s is not compatible with KeySpec %s"
                               % (usage, spec))
            raise KmsError("UnsupportedOperationException",
                           "The emulator creates SYMMETRIC_DEFAULT, RSA and ECC keys only.")
        key = self.state.create_key(_get(b, "Description", str) or "", spec=spec, usage=usage)
        return {"KeyMetadata": self._metadata(key)}

    def op_GetPublicKey(self, b):
        key = self.state.resolve(_get(b, "KeyId", str, True))
        if not key.asymmetric:
            raise KmsError("UnsupportedOperationException", "%s key usage is %s and key spec is %s: "
                           "GetPublicKey needs an asymmetric KMS key." % (key.arn, key.usage, key.spec))
        self.state.usable(key)
        out = {"KeyId": key.arn, "PublicKey": b64(key.public_der()), "CustomerMasterKeySpec": key.spec,
               "KeySpec": key.spec, "KeyUsage": key.usage}
        out.update(self._algorithms(key))
        return out

    def op_CreateAlias(self, b):
        st = self.state
        name = _get(b, "AliasName", str, True)
        if not _ALIAS_RE.match(name) or name.startswith("alias/aws/"):
            raise KmsError("InvalidAliasNameException" if not name.startswith("alias/aws/")
                           else "NotAuthorizedException", "Alias must start with the prefix \"alias/\". "
                           "Please see https://docs.aws.amazon.com/kms/latest/developerguide/kms-alias.html")
        if name in st.aliases:
            raise KmsError("AlreadyExistsException", "An alias with the name %s already exists"
                           % st.alias_arn(name))
        key = st.resolve(_get(b, "TargetKeyId", str, True))
        st.set_alias(name, key.key_id)
        return {}

    def _stateful(self, b):
        key = self.state.resolve(_get(b, "KeyId", str, True))
        if key.state == "PendingDeletion":
            raise KmsError("KMSInvalidStateException", "%s is pending deletion." % key.arn)
        return key

    def op_EnableKey(self, b):
        self.state.set_state(self._stateful(b), "Enabled")
        return {}

    def op_DisableKey(self, b):
        self.state.set_state(self._stateful(b), "Disabled")
        return {}

    def op_ScheduleKeyDeletion(self, b):
        # Input validation comes before any key lookup, as in the service.
        days = _get(b, "PendingWindowInDays", int) or 30
        if not 7 <= days <= 30:
            raise KmsError("ValidationException", "1 validation error detected: Value '%d' at "
                           "'pendingWindowInDays' failed to satisfy constraint: Member must have value "
                           "between 7 and 30" % days)
        key = self._stateful(b)
        key.state = "PendingDeletion"
        key.deletion_date = int(self.emu.now()) + days * 86400
        return {"KeyId": key.arn, "DeletionDate": key.deletion_date, "KeyState": key.state,
                "PendingWindowInDays": days}

    def op_CancelKeyDeletion(self, b):
        key = self.state.resolve(_get(b, "KeyId", str, True))
        if key.state != "PendingDeletion":
            raise KmsError("KMSInvalidStateException", "%s is not pending deletion." % key.arn)
        self.state.set_state(key, "Disabled")     # the service leaves a cancelled key disabled
        return {"KeyId": key.arn}

    @staticmethod
    def _no_asymmetric_rotation(key):
        if key.asymmetric:
            raise KmsError("UnsupportedOperationException", "%s key spec %s does not support automatic "
                           "or on-demand key rotation." % (key.arn, key.spec))

    def op_EnableKeyRotation(self, b):
        key = self._stateful(b)
        self.state.usable(key)
        self._no_asymmetric_rotation(key)
        period = _get(b, "RotationPeriodInDays", int)
        if period is not None and not 90 <= period <= 2560:
            raise KmsError("ValidationException", "1 validation error detected: Value '%d' at "
                           "'rotationPeriodInDays' failed to satisfy constraint: Member must have value "
                           "between 90 and 2560" % period)
        key.rotation_enabled = True
        key.rotation_period = period or key.rotation_period
        return {}

    def op_DisableKeyRotation(self, b):
        key = self._stateful(b)
        self.state.usable(key)
        key.rotation_enabled = False
        return {}

    def op_GetKeyRotationStatus(self, b):
        key = self.state.resolve(_get(b, "KeyId", str, True))
        out = {"KeyRotationEnabled": key.rotation_enabled, "KeyId": key.arn}
        if key.rotation_enabled:
            out["RotationPeriodInDays"] = key.rotation_period
            out["NextRotationDate"] = int(self.emu.now()) + key.rotation_period * 86400
        if key.on_demand_rotations:
            out["OnDemandRotationStartDate"] = key.on_demand_rotations[-1]
        return out

    def op_RotateKeyOnDemand(self, b):
        key = self._stateful(b)
        self.state.usable(key)
        self._no_asymmetric_rotation(key)
        key.add_version(self.emu.now(), "ON_DEMAND")
        key.on_demand_rotations.append(int(self.emu.now()))
        return {"KeyId": key.key_id}

    def op_ListKeyRotations(self, b):
        """The key's materials, oldest first [model: RotationsListEntry]: by default
        (ROTATIONS_ONLY) those made by rotation, with RotationDate and RotationType;
        ALL_KEY_MATERIAL adds the first material, which has neither."""
        ref = _get(b, "KeyId", str, True)
        if ref.startswith("alias/") or ref.startswith("arn:aws:kms:") and ":alias/" in ref:
            # "Specify the key ID or key ARN of the KMS key" [model doc]; wording ours.
            raise KmsError("NotFoundException", "Alias %s is not a key ID or key ARN." % ref)
        key = self.state.resolve(ref)
        which = _get(b, "IncludeKeyMaterial", str) or "ROTATIONS_ONLY"
        if which not in ("ROTATIONS_ONLY", "ALL_KEY_MATERIAL"):
            raise KmsError("ValidationException", "1 validation error detected: Value '%s' at "
                           "'includeKeyMaterial' failed to satisfy constraint: Member must satisfy "
                           "enum value set: [ALL_KEY_MATERIAL, ROTATIONS_ONLY]" % which)
        if key.asymmetric:
            raise KmsError("UnsupportedOperationException", "%s key spec %s does not support "
                           "automatic or on-demand key rotation." % (key.arn, key.spec))
        mats = key.versions if which == "ALL_KEY_MATERIAL" else key.versions[1:]
        page, out = self._page(mats, b)
        rows = []
        for m in page:
            row = {"KeyId": key.key_id, "KeyMaterialId": m.id,
                   "KeyMaterialState": "CURRENT" if m is key.versions[-1] else "NON_CURRENT"}
            if m.rotation_type is not None:
                row["RotationDate"] = m.created
                row["RotationType"] = m.rotation_type
            rows.append(row)
        out["Rotations"] = rows
        return out

    def _signing_request(self, b, op):
        """Validate a Sign/Verify request as the service does: the model's constraints, then the
        key (NotFound, state, usage, algorithm), then the digest length. -> (key, alg, digest)."""
        for name in ("KeyId", "Message", "SigningAlgorithm"):
            _get(b, name, str, True)
        alg = _get(b, "SigningAlgorithm", str)
        if alg not in SIGNING_ALGS_ALL:
            raise KmsError("ValidationException", "1 validation error detected: Value '%s' at "
                           "'signingAlgorithm' failed to satisfy constraint: Member must satisfy enum "
                           "value set: [%s]" % (alg, ", ".join(SIGNING_ALGS_ALL)))
        mtype = _get(b, "MessageType", str) or "RAW"
        if mtype not in MESSAGE_TYPES:
            raise KmsError("ValidationException", "1 validation error detected: Value '%s' at "
                           "'messageType' failed to satisfy constraint: Member must satisfy enum "
                           "value set: [%s]" % (mtype, ", ".join(MESSAGE_TYPES)))
        grants = _get(b, "GrantTokens", list)
        if grants is not None and (len(grants) > 10 or not all(isinstance(g, str) for g in grants)):
            raise KmsError("ValidationException", "1 validation error detected: Value at 'grantTokens' "
                           "failed to satisfy constraint: Member must have length less than or equal to 10")
        msg = _blob(b, "Message", True, MAX_MESSAGE)
        key = self.state.resolve(_get(b, "KeyId", str, True))
        self.state.usable(key)
        if key.usage != "SIGN_VERIFY":
            raise KmsError("InvalidKeyUsageException", "%s key usage is %s which is not valid for %s."
                           % (key.arn, key.usage, op))
        if alg not in self._algorithms(key)["SigningAlgorithms"]:
            raise KmsError("InvalidKeyUsageException", "Algorithm %s is incompatible with key spec %s."
                           % (alg, key.spec))
        scheme, hname = SIGNING_SCHEMES[alg]
        if mtype == "EXTERNAL_MU":
            raise KmsError("ValidationException", "MessageType EXTERNAL_MU is only valid with ML-DSA "
                           "key specs; %s is %s." % (key.arn, key.spec))
        if mtype == "RAW":
            h = hashlib.new(hname)
            h.update(msg)
            msg = h.digest()
        elif len(msg) != signing.digest_size(hname):
            raise KmsError("ValidationException", "Digest is invalid length for algorithm %s." % alg)
        if _get(b, "DryRun", bool):
            raise KmsError("DryRunOperationException", "The request would have succeeded, but the "
                           "DryRun option is set.", status=412)
        return key, alg, scheme, hname, msg

    def op_Sign(self, b):
        key, alg, scheme, hname, digest = self._signing_request(b, "Sign")
        sig = signing.sign_digest(key.private, scheme, hname, digest)
        return {"KeyId": key.arn, "Signature": b64(sig), "SigningAlgorithm": alg}

    def op_Verify(self, b):
        sig = _blob(b, "Signature", True)
        key, alg, scheme, hname, digest = self._signing_request(b, "Verify")
        if not signing.verify_digest(key.private.public_key(), scheme, hname, digest, sig):
            raise KmsError("KMSInvalidSignatureException", "")
        return {"KeyId": key.arn, "SignatureValid": True, "SigningAlgorithm": alg}

    def op_GenerateRandom(self, b):
        n = _get(b, "NumberOfBytes", int)
        if n is None or not 1 <= n <= 1024:
            raise KmsError("ValidationException", "NumberOfBytes must be between 1 and 1024")
        return {"Plaintext": b64(secrets.token_bytes(n))}

    @staticmethod
    def _check_alg(alg, key=None):
        """A symmetric key: only SYMMETRIC_DEFAULT."""
        if alg != "SYMMETRIC_DEFAULT":
            raise KmsError("InvalidKeyUsageException", "Algorithm %s is incompatible with key spec %s."
                           % (alg, key.spec if key is not None else "SYMMETRIC_DEFAULT"))


# --- STS (awsQuery protocol, XML replies) ----------------------------------------------------
STS_NS = "https://sts.amazonaws.com/doc/2011-06-15/"


def sts_error(code, message, status=400):
    sender = "Sender" if status < 500 else "Receiver"
    xml = ('<ErrorResponse xmlns="%s">\n  <Error>\n    <Type>%s</Type>\n    <Code>%s</Code>\n'
           '    <Message>%s</Message>\n  </Error>\n  <RequestId>%s</RequestId>\n</ErrorResponse>\n'
           % (STS_NS, sender, code, escape(message), new_request_id()))
    return Response(status, xml.encode(), "text/xml")


def handle_sts(svc, req):
    """AssumeRoleWithWebIdentity: unsigned, the web identity JWT is the credential."""
    emu, st = svc.emu, svc.state
    try:
        form = req.form_body()
    except UnicodeDecodeError:
        return sts_error("MalformedInput", "Request body is not UTF-8.")
    action = form.get("Action")
    if action != "AssumeRoleWithWebIdentity":
        return sts_error("InvalidAction", "Could not find operation %s for version %s"
                         % (action, form.get("Version")))
    if form.get("Version") != "2011-06-15":
        return sts_error("InvalidAction", "Could not find operation %s for version %s"
                         % (action, form.get("Version")))
    for field in ("RoleArn", "RoleSessionName", "WebIdentityToken"):
        if not form.get(field):
            return sts_error("ValidationError", "1 validation error detected: Value null at '%s' "
                             "failed to satisfy constraint: Member must not be null"
                             % (field[0].lower() + field[1:]))
    duration = form.get("DurationSeconds", "3600")
    if not duration.isdigit() or not 900 <= int(duration) <= 43200:
        return sts_error("ValidationError", "1 validation error detected: Value '%s' at "
                         "'durationSeconds' failed to satisfy constraint: Member must have value "
                         "between 900 and 43200" % duration)
    try:
        claims = jwt.decode(form["WebIdentityToken"], emu.oidc_key.public_key(), algorithms=["RS256"],
                            audience="sts.amazonaws.com", issuer=emu.oidc_issuer,
                            options=dict(JWT_NO_TIME, require=["exp", "iat", "sub"]))
    except jwt.InvalidTokenError as e:
        return sts_error("InvalidIdentityToken", "Couldn't verify the web identity token: %s" % e)
    if claims["exp"] <= emu.now():
        return sts_error("ExpiredTokenException", "Token expired: current date/time %d must be before "
                         "the expiration date/time%d" % (int(emu.now()), claims["exp"]))
    if form["RoleArn"] != st.role_arn:
        return sts_error("AccessDenied", "Not authorized to perform sts:AssumeRoleWithWebIdentity", 403)
    if emu.is_revoked("aws", claims["sub"]):
        return sts_error("AccessDenied", "Not authorized to perform sts:AssumeRoleWithWebIdentity", 403)
    session = form["RoleSessionName"]
    with emu.lock:
        akid, rec = st.new_session_credentials("assumed-role/%s" % session, int(duration))
    req.principal = "web-identity:" + claims["sub"]
    xml = ('<AssumeRoleWithWebIdentityResponse xmlns="{ns}">\n'
           '  <AssumeRoleWithWebIdentityResult>\n'
           '    <Credentials>\n      <AccessKeyId>{akid}</AccessKeyId>\n'
           '      <SecretAccessKey>{secret}</SecretAccessKey>\n      <SessionToken>{tok}</SessionToken>\n'
           '      <Expiration>{exp}</Expiration>\n    </Credentials>\n'
           '    <SubjectFromWebIdentityToken>{sub}</SubjectFromWebIdentityToken>\n'
           '    <AssumedRoleUser>\n      <Arn>arn:aws:sts::{acct}:assumed-role/p11kms-emulator/{sess}</Arn>\n'
           '      <AssumedRoleId>AROA{rid}:{sess}</AssumedRoleId>\n    </AssumedRoleUser>\n'
           '    <Audience>sts.amazonaws.com</Audience>\n    <Provider>{iss}</Provider>\n'
           '  </AssumeRoleWithWebIdentityResult>\n'
           '  <ResponseMetadata>\n    <RequestId>{rq}</RequestId>\n  </ResponseMetadata>\n'
           '</AssumeRoleWithWebIdentityResponse>\n').format(
        ns=STS_NS, akid=akid, secret=escape(rec["secret"]), tok=escape(rec["session_token"]),
        exp=iso8601(rec["expires"]), sub=escape(claims["sub"]), acct=st.account,
        sess=escape(session), rid=secrets.token_hex(8).upper(), iss=escape(emu.oidc_issuer),
        rq=new_request_id())
    return Response(200, xml.encode(), "text/xml")
