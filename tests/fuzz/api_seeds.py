#!/usr/bin/python3
# SPDX-License-Identifier: Apache-2.0
"""Seeds for fuzz_api: small programs that each walk one part of the API
the way a real caller does (a GCM round trip, a wrap and unwrap through
the KMS, a login and a private key, the message API...), so the fuzzer
starts from calls that succeed and mutates from there.

The byte format is fuzz_api's (tests/fuzz/fuzz_api.c, api_args.c,
api_env.c): an opcode (an index into ops[]), then each argument's bytes.
Opcodes, mechanism and attribute indices are read from those sources, so
the seeds follow a reordering there; a change to how an argument is read
needs a change here. Check a seed with
    P11KMS_APIFUZZ_TRACE=1 build/tests/replay_fuzz_api FILE
(every call and its result), then write them all with
    tests/fuzz/api_seeds.py tests/fuzz/corpus/fuzz_api
"""
import os
import re
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def table(path, start, pattern):
    text = open(os.path.join(HERE, path)).read()
    body = text[text.index(start):]
    body = body[:body.index("};")]
    return re.findall(pattern, body)


OPS = table("fuzz_api.c", "static const op ops[]",
            r'OP\(K_\w+, (C_\w+)\)|\{"(C_[\w+]+|\([a-z ]+\))"')
OPS = [a or b for a, b in OPS]
MECHS = table("api_args.c", "mech_types[] = {", r"(CKM_\w+|0x\w+UL)")
ATTRS = table("api_args.c", "attr_types[] = {", r"\{(CKA_\w+), V_\w+\}")


def op(name, nth=0):
    """The opcode of name's nth entry in ops[] (the table repeats some)."""
    at = [i for i, n in enumerate(OPS) if n == name][nth]
    return bytes([at])


def queried(name):
    """The variant that asks for the length first (the last entry of name)."""
    return op(name, -1)


def b(*v):
    return bytes(v)


BOUNDARY = [0, 1, 2, 3, 4, 5, 7, 8, 9, 11, 12, 13, 15, 16, 17, 20, 23, 24, 25,
            28, 31, 32, 33, 40, 47, 48, 49, 63, 64, 65, 96, 100, 127, 128, 129,
            255, 256, 257, 511, 512, 513, 1023, 1024, 1025, 2048, 4095, 4096,
            4097, 8192, 16384, 65535, 65536, 65537]


HUGE = [0x7fffffff, 0x80000000, 0xffffffff, 0x100000000, 0x100000010,
        0x7fffffffffffffff, 2**64 - 1, 2**64 - 8, 2**64 - 16, 1 << 40]


def length(n):
    """The bytes ap_len reads as n."""
    if n < 0x80:
        return b(n)
    if n in BOUNDARY:  # boundary_lens[s % its length], s in 0x80..0xbf
        return b(next(s for s in range(0x80, 0xc0) if s % len(BOUNDARY) == BOUNDARY.index(n)))
    if n < 0x10000:
        return b(0xc0, n >> 8, n & 0xff)
    return b(next(s for s in range(0xe0, 0x100) if HUGE[s % len(HUGE)] == n))


# Handles: sessions[0] is R/W on opt, [1] R/W on req; slots 0 opt, 1 req.
OPT, REQ = 0, 1
# objects[]: as fuzz_api lists them with P11KMS_APIFUZZ_TRACE=1.
KMS_ENV, KMS_AES, KMS_AES128, TOK_AES, TOK_LOCKED, TOK_HMAC, TOK_DATA = range(7)
REQ_KMS_ENV, REQ_RSA, REQ_DATA = 8, 9, 12
NEW = 14  # the first object the input makes or finds


def data(p):
    """Input bytes (at most 512: longer ones would be read as a pattern)."""
    return b(1) + length(len(p)) + p


def data_null(n):
    return b(0) + length(n)


def data_big(n, fill=0x41):
    return b(7) + length(n) + b(fill)


def prev(k):
    """The k-th output kept by this input (0 first), as it was."""
    return b(5, k)


def prev_damaged(k, at=0):
    return b(6, k, 0, at)


GENEROUS = b(3)


def out_query(n=0):
    return b(0) + length(n)


def out_exact(n):
    return b(1) + length(n)


def out_canary(n):
    return b(2) + length(n)


def mech(name, param=b(4)):
    """A mechanism, with its parameter's bytes (default: none)."""
    return b(0, MECHS.index(name)) + param


def proper(*parts):
    return b(0) + b"".join(parts)


def gcm(iv=b"\x11" * 12, aad=b"", tag_pick=0):
    """CK_GCM_PARAMS: IV, ulIvBits 0, AAD, ulTagBits (tag_bits[tag_pick])."""
    ivpart = b(7) + length(len(iv)) + iv
    aadpart = b(7) + length(len(aad)) + aad if aad else b(0, 0)
    return proper(ivpart, b(0), aadpart, b(tag_pick))


def cbc_iv(iv=b"\x22" * 16):
    return proper(iv)


def ctr(bits_pick=0, cb=b"\x33" * 16):
    return proper(b(bits_pick), cb, b(0))


def kms_ctx(ctx=b"tenant=a"):
    return proper(b(1), b(7) + length(len(ctx)) + ctx)


def mac_len(pick=0):
    return proper(b(pick))


BOOL = {True: 0, False: 1}
CLASS = {"secret": 0, "data": 1}
KEYTYPE = {"aes": 0, "generic": 1}
VALUE_LEN = {16: 0, 32: 2}


def attr_bool(t, v):
    return b(ATTRS.index(t), 0, BOOL[v])


def attr_ulong(t, pick):
    return b(ATTRS.index(t), 0, pick)


def attr_bytes(t, p):
    """Bytes of one of the lengths fuzz_api picks from (16, 32, 24, 0, 1, 4, 8, 12)."""
    lens = [16, 32, 24, 0, 1, 4, 8, 12]
    return b(ATTRS.index(t), 0, lens.index(len(p))) + p


def attr_null(t, n):
    return b(ATTRS.index(t), 4) + length(n)


def attr_odd(t, p):
    odd = [0, 1, 2, 3, 4, 5, 7, 9, 12, 15, 16, 17, 33]
    return b(ATTRS.index(t), 5, odd.index(len(p))) + p


def tmpl(*attrs):
    return b(len(attrs)) + b"".join(attrs)


GET_LENS = [0, 1, 2, 4, 7, 8, 9, 16, 31, 32, 33, 64, 256]


def get(t, n=None, canary=False):
    """An output entry: NULL (n None: a length query) or a buffer of n."""
    if n is None:
        return b(ATTRS.index(t), 0, 0, 0)
    return b(ATTRS.index(t), 2 if canary else 1, GET_LENS.index(n))


def handle():
    return b(1)


def aes_key(label=b"k" * 16, token=False, value=None):
    """C_CreateObject of an AES key (a session object unless token)."""
    value = value or bytes(range(32))
    return op("C_CreateObject") + b(OPT) + tmpl(
        attr_ulong("CKA_CLASS", CLASS["secret"]),
        attr_ulong("CKA_KEY_TYPE", KEYTYPE["aes"]),
        attr_bytes("CKA_VALUE", value),
        attr_bool("CKA_TOKEN", token),
        attr_bool("CKA_PRIVATE", False),
        attr_bool("CKA_EXTRACTABLE", True),
        attr_bytes("CKA_LABEL", label)) + handle()


def gen_aes(sess=OPT, token=False, size=32):
    return op("C_GenerateKey") + b(sess) + mech("CKM_AES_KEY_GEN") + tmpl(
        attr_ulong("CKA_VALUE_LEN", VALUE_LEN[size]),
        attr_bool("CKA_TOKEN", token),
        attr_bool("CKA_PRIVATE", False),
        attr_bool("CKA_SENSITIVE", False),
        attr_bool("CKA_EXTRACTABLE", True)) + handle()


def login(sess, user=0, pin=0):
    """C_Login: user 0 CKU_USER, 1 CKU_SO; pin 0 the user's, 1 the SO's."""
    return op("C_Login") + b(sess, user, pin)


def crypt(init, call, sess, m, key, inp, out=GENEROUS):
    return op(init) + b(sess) + m + b(key) + op(call) + b(sess) + inp + out


def find_private(sess):
    """The private objects the session sees, into the table from NEW on."""
    return (op("C_FindObjectsInit") + b(sess) + tmpl(attr_bool("CKA_PRIVATE", True))
            + op("C_FindObjects") + b(sess, 0x21) + op("C_FindObjectsFinal") + b(sess))


def roundtrip(m, key, p=b"sixteen byte msg" * 2):
    return op("C_Encrypt+C_Decrypt") + b(OPT) + m + b(key) + data(p)


def msg_params(gen_pick=0, iv=b"\x44" * 12):
    """CK_GCM_MESSAGE_PARAMS: IV, no fixed bits, generator (generators[gen_pick]),
    128-bit tag with a tag buffer."""
    return b(0) + b(7) + length(len(iv)) + iv + b(0, gen_pick, 0, 1) + b"\x00" * 16


SEEDS = {
    "info": op("C_GetInfo") + b(1) + op("C_GetFunctionList") + b(1, 1)
    + op("C_GetSlotList") + b(1, 0x04) + op("C_GetSlotList") + b(1, 0x25)
    + op("C_GetSlotInfo") + b(OPT, 1) + op("C_GetTokenInfo") + b(OPT, 1)
    + op("C_GetTokenInfo") + b(REQ, 1) + op("C_GetMechanismList") + b(OPT, 0x51)
    + op("C_GetMechanismInfo") + b(OPT, MECHS.index("CKM_AES_GCM"), 1)
    + op("C_GetSessionInfo") + b(REQ, 1) + op("C_GetInterface") + b(0)
    + op("C_GetInterface") + b(0x15),
    "gcm-oneshot": crypt("C_EncryptInit", "C_Encrypt", OPT, mech("CKM_AES_GCM", gcm(aad=b"hdr")),
                         TOK_AES, data(b"attack at dawn"))
    + op("C_DecryptInit") + b(OPT) + mech("CKM_AES_GCM", gcm(aad=b"hdr")) + b(TOK_AES)
    + op("C_Decrypt") + b(OPT) + prev(0) + GENEROUS,
    "gcm-multipart": op("C_EncryptInit") + b(OPT) + mech("CKM_AES_GCM", gcm()) + b(TOK_AES)
    + op("C_EncryptUpdate") + b(OPT) + data(b"part one,") + GENEROUS
    + op("C_EncryptUpdate") + b(OPT) + data(b"part two") + out_query()
    + op("C_EncryptUpdate") + b(OPT) + data(b"part two") + GENEROUS
    + op("C_EncryptFinal") + b(OPT) + out_exact(1) + op("C_EncryptFinal") + b(OPT) + GENEROUS,
    "cbc-pad": op("C_EncryptInit") + b(OPT) + mech("CKM_AES_CBC_PAD", cbc_iv()) + b(TOK_AES)
    + op("C_Encrypt") + b(OPT) + data(b"0123456789abcdef0123") + out_query()
    + op("C_Encrypt") + b(OPT) + data(b"0123456789abcdef0123") + out_canary(31)
    + op("C_Encrypt") + b(OPT) + data(b"0123456789abcdef0123") + out_exact(32)
    + op("C_DecryptInit") + b(OPT) + mech("CKM_AES_CBC_PAD", cbc_iv()) + b(TOK_AES)
    + op("C_DecryptUpdate") + b(OPT) + prev(0) + GENEROUS
    + op("C_DecryptFinal") + b(OPT) + GENEROUS,
    "ctr-ecb": roundtrip(mech("CKM_AES_CTR", ctr()), TOK_AES)
    + roundtrip(mech("CKM_AES_CTR", ctr(bits_pick=5)), TOK_AES, b"x" * 300)
    + roundtrip(mech("CKM_AES_ECB"), TOK_AES)
    + roundtrip(mech("CKM_AES_CBC", cbc_iv()), TOK_AES)
    + crypt("C_EncryptInit", "C_Encrypt", OPT, mech("CKM_AES_ECB"), TOK_AES, data(b"short")),
    "wrap-local": op("C_WrapKey") + b(OPT) + mech("CKM_AES_KEY_WRAP_KWP") + b(TOK_AES, TOK_HMAC)
    + GENEROUS + op("C_UnwrapKey") + b(OPT) + mech("CKM_AES_KEY_WRAP_KWP") + b(TOK_AES)
    + prev(0) + tmpl(attr_ulong("CKA_CLASS", CLASS["secret"]),
                     attr_ulong("CKA_KEY_TYPE", KEYTYPE["generic"]),
                     attr_bool("CKA_EXTRACTABLE", True)) + handle()
    + op("C_WrapKey") + b(OPT) + mech("CKM_AES_KEY_WRAP") + b(TOK_AES, TOK_LOCKED) + GENEROUS
    + op("C_WrapKey") + b(OPT) + mech("CKM_AES_GCM", gcm()) + b(TOK_AES, TOK_HMAC) + out_query()
    + op("C_WrapKey") + b(OPT) + mech("CKM_AES_CBC_PAD", cbc_iv()) + b(TOK_AES, TOK_HMAC)
    + GENEROUS,
    "envelope": crypt("C_EncryptInit", "C_Encrypt", OPT, mech("CKM_P11KMS_KMS_ENVELOPE", kms_ctx()),
                      KMS_ENV, data(b"small secret"))
    + op("C_DecryptInit") + b(OPT) + mech("CKM_P11KMS_KMS_ENVELOPE", kms_ctx()) + b(KMS_ENV)
    + op("C_Decrypt") + b(OPT) + prev(0) + GENEROUS
    + op("C_WrapKey") + b(OPT) + mech("CKM_P11KMS_KMS_ENVELOPE") + b(KMS_ENV, TOK_AES)
    + out_query() + op("C_WrapKey") + b(OPT) + mech("CKM_P11KMS_KMS_ENVELOPE")
    + b(KMS_ENV, TOK_AES) + GENEROUS
    + op("C_UnwrapKey") + b(OPT) + mech("CKM_P11KMS_KMS_ENVELOPE") + b(KMS_ENV) + prev(2)
    + tmpl(attr_ulong("CKA_CLASS", CLASS["secret"]), attr_ulong("CKA_KEY_TYPE", KEYTYPE["aes"]),
           attr_bool("CKA_PRIVATE", False)) + handle()
    + op("C_UnwrapKey") + b(OPT) + mech("CKM_P11KMS_KMS_ENVELOPE") + b(KMS_ENV)
    + prev_damaged(2, 5) + tmpl(attr_ulong("CKA_CLASS", CLASS["secret"]),
                                attr_ulong("CKA_KEY_TYPE", KEYTYPE["aes"])) + handle(),
    "kms-aes": op("C_WrapKey") + b(OPT) + mech("CKM_AES_KEY_WRAP_KWP") + b(KMS_AES, TOK_AES)
    + GENEROUS + op("C_UnwrapKey") + b(OPT) + mech("CKM_AES_KEY_WRAP_KWP") + b(KMS_AES) + prev(0)
    + tmpl(attr_ulong("CKA_CLASS", CLASS["secret"]), attr_ulong("CKA_KEY_TYPE", KEYTYPE["aes"]),
           attr_bool("CKA_PRIVATE", False)) + handle()
    + roundtrip(mech("CKM_AES_GCM", gcm()), KMS_AES)
    + op("C_WrapKey") + b(OPT) + mech("CKM_AES_KEY_WRAP") + b(KMS_AES128, TOK_AES) + GENEROUS
    + crypt("C_EncryptInit", "C_Encrypt", REQ, mech("CKM_RSA_PKCS_OAEP", proper(b(0, 0, 0, 0, 0))),
            REQ_RSA, data(b"to rsa")),
    "mac-digest": crypt("C_SignInit", "C_Sign", OPT, mech("CKM_SHA256_HMAC"), TOK_HMAC, data(b"m"))
    + op("C_VerifyInit") + b(OPT) + mech("CKM_SHA256_HMAC") + b(TOK_HMAC)
    + op("C_Verify") + b(OPT) + data(b"m") + prev(0)
    + op("C_SignInit") + b(OPT) + mech("CKM_SHA384_HMAC_GENERAL", mac_len(0)) + b(TOK_HMAC)
    + op("C_SignUpdate") + b(OPT) + data(b"part") + op("C_SignFinal") + b(OPT) + out_exact(8)
    + op("C_SignFinal") + b(OPT) + GENEROUS
    + op("C_Sign+C_Verify") + b(OPT) + mech("CKM_AES_CMAC") + b(TOK_AES) + data(b"cmac me")
    + op("C_Sign+C_Verify") + b(OPT) + mech("CKM_SHA512_HMAC") + b(TOK_HMAC) + data(b"")
    + op("C_DigestInit") + b(OPT) + mech("CKM_SHA256") + op("C_DigestUpdate") + b(OPT)
    + data(b"abc") + op("C_DigestKey") + b(OPT, TOK_AES) + op("C_DigestFinal") + b(OPT)
    + out_query() + op("C_DigestFinal") + b(OPT) + GENEROUS
    + op("C_DigestInit") + b(OPT) + mech("CKM_SHA512") + op("C_Digest") + b(OPT)
    + data_big(5000) + out_exact(64),
    "objects": aes_key() + op("C_GetAttributeValue") + b(OPT, NEW) + tmpl(
        get("CKA_VALUE"), get("CKA_LABEL", 4), get("CKA_CLASS", 8), get("CKA_TOKEN", 1),
        get("CKA_VALUE_LEN", 7, canary=True), get("CKA_UNIQUE_ID", 64))
    + op("C_GetAttributeValue") + b(OPT, NEW) + tmpl(get("CKA_VALUE", 32, canary=True))
    + op("C_GetAttributeValue") + b(OPT, TOK_LOCKED) + tmpl(get("CKA_VALUE", 32),
                                                            get("CKA_SENSITIVE", 1))
    + op("C_SetAttributeValue") + b(OPT, NEW) + tmpl(attr_bytes("CKA_LABEL", b"renamed!"),
                                                     attr_odd("CKA_ENCRYPT", b"\x01\x00"))
    + op("C_SetAttributeValue") + b(OPT, NEW) + tmpl(attr_bytes("CKA_LABEL", b"renamed!"))
    + op("C_CopyObject") + b(OPT, NEW) + tmpl(attr_bool("CKA_EXTRACTABLE", False)) + handle()
    + op("C_GetObjectSize") + b(OPT, NEW, 1) + op("C_DestroyObject") + b(OPT, NEW)
    + op("C_GetAttributeValue") + b(OPT, 0xe0, 1) + tmpl(get("CKA_LABEL", 16)),
    "templates-odd": op("C_CreateObject") + b(OPT) + tmpl(
        attr_odd("CKA_CLASS", b"\x04\x00\x00"), attr_ulong("CKA_KEY_TYPE", 0),
        attr_bytes("CKA_VALUE", bytes(16))) + handle()
    + op("C_CreateObject") + b(OPT) + tmpl(
        attr_ulong("CKA_CLASS", CLASS["secret"]), attr_ulong("CKA_KEY_TYPE", 0),
        attr_null("CKA_VALUE", 0x7fffffff)) + handle()
    + op("C_CreateObject") + b(OPT) + tmpl(
        attr_ulong("CKA_CLASS", CLASS["data"]), attr_odd("CKA_TOKEN", b"\x01\x01"),
        attr_null("CKA_LABEL", 16)) + handle()
    + op("C_CreateObject") + b(OPT) + b(0xf1, 5) + handle()
    + op("C_GenerateKey") + b(OPT) + mech("CKM_AES_KEY_GEN") + tmpl(
        attr_odd("CKA_VALUE_LEN", b"\x20\x00\x00\x00")) + handle(),
    "token-objects": aes_key(token=True)
    + op("C_CreateObject") + b(OPT) + tmpl(
        attr_ulong("CKA_CLASS", CLASS["data"]), attr_bool("CKA_TOKEN", True),
        attr_bool("CKA_PRIVATE", False), attr_bytes("CKA_LABEL", b"ORACLE.TDE.HSM.M"),
        attr_bytes("CKA_VALUE", b"mk-bytes")) + handle()
    + gen_aes(token=True) + op("C_DestroyObject") + b(OPT, TOK_DATA)
    + op("C_SetAttributeValue") + b(OPT, TOK_AES) + tmpl(attr_bytes("CKA_LABEL", b"moved!!!")),
    "generate": gen_aes() + gen_aes(size=16) + op("C_GenerateKey") + b(OPT)
    + mech("CKM_GENERIC_SECRET_KEY_GEN") + tmpl(attr_ulong("CKA_VALUE_LEN", VALUE_LEN[32]))
    + handle() + roundtrip(mech("CKM_AES_GCM", gcm()), NEW)
    + op("C_GenerateRandom") + b(OPT) + out_canary(33) + op("C_GenerateRandom") + b(OPT)
    + out_query(5) + op("C_SeedRandom") + b(OPT) + data(b"seed"),
    "find": op("C_FindObjectsInit") + b(OPT) + tmpl(attr_ulong("CKA_CLASS", CLASS["secret"]))
    + op("C_FindObjects") + b(OPT, 0x21) + op("C_FindObjects") + b(OPT, 0x71)
    + op("C_FindObjectsFinal") + b(OPT) + op("C_FindObjects") + b(OPT, 0x71)
    + op("C_FindObjectsInit") + b(REQ) + tmpl() + op("C_FindObjects") + b(REQ, 0x71)
    + op("C_FindObjectsInit") + b(REQ) + tmpl(attr_bytes("CKA_LABEL", b"req-data")),
    "login-opt": login(OPT) + find_private(OPT) + op("C_GetAttributeValue") + b(OPT, NEW)
    + tmpl(get("CKA_LABEL", 16), get("CKA_PRIVATE", 1))
    + roundtrip(mech("CKM_AES_CBC_PAD", cbc_iv()), NEW) + op("C_Logout") + b(OPT)
    + op("C_GetAttributeValue") + b(OPT, NEW) + tmpl(get("CKA_LABEL", 16)),
    "login-req": find_private(REQ) + login(REQ) + find_private(REQ)
    + op("C_GetAttributeValue") + b(REQ, NEW) + tmpl(get("CKA_LABEL", 16))
    + crypt("C_EncryptInit", "C_Encrypt", REQ, mech("CKM_AES_GCM", gcm()), NEW, data(b"a"))
    + crypt("C_EncryptInit", "C_Encrypt", REQ, mech("CKM_AES_GCM", gcm()), NEW + 1, data(b"a"))
    + op("C_SignInit") + b(REQ) + mech("CKM_SHA256_HMAC") + b(NEW + 1)
    + op("C_SignInit") + b(REQ) + mech("CKM_SHA256_HMAC") + b(NEW + 2)
    + op("C_GetSessionInfo") + b(REQ, 1) + op("C_CloseAllSessions") + b(REQ)
    + op("C_SignUpdate") + b(REQ) + data(b"x"),
    "login-wrong": login(REQ, 0, 2) + op("C_GetTokenInfo") + b(REQ, 1),
    "pin-init": login(OPT, 1, 1) + op("C_InitPIN") + b(OPT, 6) + data(b"567890")
    + op("C_Logout") + b(OPT),
    "pin-set": login(REQ) + op("C_SetPIN") + b(REQ, 0, 6) + data(b"99999"),
    "message": op("C_MessageEncryptInit") + b(OPT) + mech("CKM_AES_GCM", gcm()) + b(TOK_AES)
    + op("C_EncryptMessage") + b(OPT) + msg_params(0) + data(b"aad") + data(b"msg one")
    + GENEROUS
    + op("C_EncryptMessage") + b(OPT) + msg_params(1) + data(b"") + data(b"msg two") + out_query()
    + op("C_EncryptMessageBegin") + b(OPT) + msg_params(1) + data(b"aad")
    + op("C_EncryptMessageNext") + b(OPT, 1) + data(b"part") + GENEROUS + b(0)
    + op("C_EncryptMessageNext") + b(OPT, 1) + data(b"end") + GENEROUS + b(1)
    + op("C_MessageEncryptFinal") + b(OPT)
    + op("C_MessageDecryptInit") + b(OPT) + mech("CKM_AES_GCM", gcm()) + b(TOK_AES)
    + op("C_DecryptMessage") + b(OPT) + msg_params(1) + data(b"aad") + prev(0) + GENEROUS
    + op("C_DecryptMessageBegin") + b(OPT) + msg_params(1) + data(b"")
    + op("C_DecryptMessageNext") + b(OPT, 1) + prev(0) + GENEROUS + b(1)
    + op("C_SessionCancel") + b(OPT, 6),
    "message-kms": op("C_MessageEncryptInit") + b(OPT) + mech("CKM_AES_GCM", gcm()) + b(KMS_AES)
    + op("C_EncryptMessage") + b(OPT) + msg_params(0) + data(b"aad") + data(b"to the kms")
    + GENEROUS + op("C_MessageDecryptInit") + b(OPT) + mech("CKM_AES_GCM", gcm()) + b(KMS_AES)
    + op("C_DecryptMessage") + b(OPT) + msg_params(1) + data(b"aad") + prev(0) + GENEROUS,
    "sessions": op("C_OpenSession") + b(OPT, 1, 1) + op("C_OpenSession") + b(OPT, 0, 0x31)
    + op("C_OpenSession") + b(OPT, 2, 1) + op("C_OpenSession") + b(REQ, 1, 1)
    + op("C_GetSessionInfo") + b(2, 1) + op("C_CloseSession") + b(2)
    + op("C_GetSessionInfo") + b(0xe3, 0, 1) + op("C_CloseAllSessions") + b(OPT)
    + op("C_GetSessionInfo") + b(OPT, 1) + op("C_Login") + b(3, 1, 1)
    + op("C_CloseSession") + b(0xe1, 0),
    "initialize-args": op("C_Finalize") + b(0) + op("C_GetInfo") + b(1)
    + op("C_Initialize") + b(2, 6, 1) + op("C_Initialize") + b(4, 5, 1)
    + op("C_Initialize") + b(7) + op("C_GetSlotList") + b(1, 0x25)
    + op("C_OpenSession") + b(OPT, 0, 1) + op("C_Initialize") + b(0),
    "initialize-reserved": op("C_Finalize") + b(0) + op("C_Initialize") + b(2, 3)
    + op("C_Initialize") + b(2, 5, 0x7f) + op("C_Initialize") + b(2, 1),
    "initialize-mutexes": op("C_Finalize") + b(0) + op("C_Initialize") + b(3, 0)
    + op("C_Initialize") + b(3, 1) + op("C_GetTokenInfo") + b(REQ, 1),
    "initialize-null": op("C_Finalize") + b(0) + op("C_Initialize") + b(0)
    + op("C_OpenSession") + b(OPT, 0, 1) + op("C_Finalize") + b(1),
    "inittoken": op("C_CloseAllSessions") + b(OPT) + op("C_InitToken") + b(OPT, 1, 1)
    + op("C_OpenSession") + b(OPT, 0, 1) + op("C_GetTokenInfo") + b(OPT, 1),
    "misc": op("C_GetOperationState") + b(OPT) + out_query()
    + op("C_SetOperationState") + b(OPT) + data(b"state") + b(TOK_AES, 0)
    + op("C_WaitForSlotEvent") + b(1, 0) + op("C_GetFunctionStatus") + b(OPT)
    + op("C_CancelFunction") + b(OPT) + op("C_LoginUser") + b(OPT, 0, 0, 0)
    + op("C_DeriveKey") + b(OPT) + mech("CKM_SHA256_KEY_DERIVATION") + b(TOK_AES) + tmpl()
    + handle() + op("C_GenerateKeyPair") + b(OPT) + mech("CKM_RSA_PKCS_KEY_PAIR_GEN")
    + tmpl() + tmpl() + handle() + handle()
    + op("C_SignMessage") + b(OPT) + b(6, 0) + data(b"x") + GENEROUS
    + op("C_DigestEncryptUpdate") + b(OPT) + data(b"x") + GENEROUS,
    "mechparams": crypt("C_EncryptInit", "C_Encrypt", OPT, mech("CKM_AES_GCM", b(5) + length(48)),
                        TOK_AES, data(b"x"))
    + op("C_EncryptInit") + b(OPT) + mech("CKM_AES_GCM", b(7) + gcm()[1:] + b(1)) + b(TOK_AES)
    + op("C_EncryptInit") + b(OPT) + mech("CKM_AES_GCM", gcm(iv=b"\x01" * 129)) + b(TOK_AES)
    + op("C_EncryptInit") + b(OPT) + mech("CKM_AES_CBC", b(6) + length(15) + b"\x00" * 15)
    + b(TOK_AES)
    + op("C_EncryptInit") + b(OPT) + mech("CKM_AES_CTR", ctr(bits_pick=3)) + b(TOK_AES)
    + op("C_EncryptInit") + b(OPT) + mech("CKM_P11KMS_KMS_ENVELOPE", proper(b(1), b(0, 1)))
    + b(KMS_ENV),
    "queried": op("C_EncryptInit") + b(OPT) + mech("CKM_AES_CBC_PAD", cbc_iv()) + b(TOK_AES)
    + queried("C_Encrypt") + b(OPT) + data(b"0123456789abcdef0")
    + op("C_EncryptInit") + b(OPT) + mech("CKM_AES_GCM", gcm()) + b(TOK_AES)
    + queried("C_EncryptUpdate") + b(OPT) + data(b"part") + queried("C_EncryptFinal") + b(OPT)
    + op("C_DecryptInit") + b(OPT) + mech("CKM_P11KMS_KMS_ENVELOPE") + b(KMS_ENV)
    + queried("C_Decrypt") + b(OPT) + data(b"not a blob")
    + op("C_DigestInit") + b(OPT) + mech("CKM_SHA384") + queried("C_Digest") + b(OPT)
    + data(b"abc") + op("C_SignInit") + b(OPT) + mech("CKM_SHA512_HMAC") + b(TOK_HMAC)
    + op("C_SignUpdate") + b(OPT) + data(b"x") + queried("C_SignFinal") + b(OPT)
    + queried("C_WrapKey") + b(OPT) + mech("CKM_P11KMS_KMS_ENVELOPE") + b(KMS_ENV, TOK_AES)
    + queried("C_WrapKey") + b(OPT) + mech("CKM_AES_KEY_WRAP_PAD") + b(TOK_AES, TOK_HMAC),
    "revoke": crypt("C_EncryptInit", "C_Encrypt", OPT, mech("CKM_AES_ECB"), TOK_AES,
                    data(b"0123456789abcdef"))
    + op("(key file)") + b(0, 0) + op("(clock)") + b(0, 0)
    + crypt("C_EncryptInit", "C_Encrypt", OPT, mech("CKM_AES_ECB"), TOK_AES,
            data(b"0123456789abcdef"))
    + op("C_GetSessionInfo") + b(OPT, 1) + op("(key file)") + b(0, 4) + op("(clock)") + b(0, 0)
    + crypt("C_EncryptInit", "C_Encrypt", OPT, mech("CKM_AES_ECB"), TOK_AES,
            data(b"0123456789abcdef")) + op("C_GetSessionInfo") + b(OPT, 1),
    "rotate": op("C_WrapKey") + b(OPT) + mech("CKM_P11KMS_KMS_ENVELOPE") + b(KMS_ENV, TOK_AES)
    + GENEROUS + op("(key file)") + b(0, 3) + op("(clock)") + b(0, 0)
    + op("C_UnwrapKey") + b(OPT) + mech("CKM_P11KMS_KMS_ENVELOPE") + b(KMS_ENV) + prev(0)
    + tmpl(attr_ulong("CKA_CLASS", CLASS["secret"]), attr_ulong("CKA_KEY_TYPE", KEYTYPE["aes"]),
           attr_bool("CKA_PRIVATE", False)) + handle()
    + roundtrip(mech("CKM_AES_GCM", gcm()), TOK_AES) + op("(key file)") + b(0, 1)
    + op("(clock)") + b(0, 3) + roundtrip(mech("CKM_AES_GCM", gcm()), TOK_AES)
    + login(REQ) + op("(key file)") + b(0, 2),
    "kms-wrap-pad": op("C_WrapKey") + b(OPT) + mech("CKM_AES_KEY_WRAP_PAD") + b(KMS_AES, TOK_HMAC)
    + GENEROUS + op("C_UnwrapKey") + b(OPT) + mech("CKM_AES_KEY_WRAP_PAD") + b(KMS_AES)
    + prev(0) + tmpl(attr_ulong("CKA_CLASS", CLASS["secret"]),
                     attr_ulong("CKA_KEY_TYPE", KEYTYPE["generic"]),
                     attr_bool("CKA_PRIVATE", False)) + handle()
    + roundtrip(mech("CKM_AES_KEY_WRAP_PAD"), KMS_AES, b"x" * 20)
    + roundtrip(mech("CKM_AES_KEY_WRAP"), KMS_AES, b"y" * 24),
    "one-shot-after-update": op("C_DigestInit") + b(OPT) + mech("CKM_SHA256")
    + op("C_DigestUpdate") + b(OPT) + data(b"abc") + op("C_Digest") + b(OPT) + data(b"abc")
    + GENEROUS + op("C_DigestFinal") + b(OPT) + GENEROUS
    + op("C_EncryptInit") + b(OPT) + mech("CKM_AES_ECB") + b(TOK_AES)
    + op("C_EncryptUpdate") + b(OPT) + data(b"0123456789abcdef") + GENEROUS
    + op("C_Encrypt") + b(OPT) + data(b"0123456789abcdef") + GENEROUS
    + op("C_EncryptFinal") + b(OPT) + GENEROUS,
}


def main():
    out = sys.argv[1] if len(sys.argv) > 1 else os.path.join(HERE, "corpus", "fuzz_api")
    os.makedirs(out, exist_ok=True)
    for name, prog in SEEDS.items():
        with open(os.path.join(out, name), "wb") as f:
            f.write(prog)
    print(f"wrote {len(SEEDS)} seeds to {out}")


if __name__ == "__main__":
    main()
