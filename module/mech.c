/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The one mechanism table (mech.h) and what every cipher operation shares:
 * the parameter checks the table names, the PKCS #11 5.2 length rule, the
 * gather-until-Final buffer of single-part mechanisms, and an operation's
 * end. The cipher implementations are in aes.c (local, OpenSSL) and
 * remote.c (run by the KMS through the token's KMS port); MACs and
 * digests in mac.c.
 */
#include "mech.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "cipher.h"
#include "common/crypto.h"
#include "common/log.h"
#include "common/secmem.h"

/* PKCS #11 5.2 length convention. True when the caller must return *rv:
 * a length query (out == NULL) or a short buffer, both of which leave the
 * operation active. */
bool len_rule(CK_ULONG need, const uint8_t *out, CK_ULONG *outlen, CK_RV *rv)
{
	if (!out) {
		*outlen = need;
		*rv = CKR_OK;
		return true;
	}
	if (*outlen < need) {
		*outlen = need;
		*rv = CKR_BUFFER_TOO_SMALL;
		return true;
	}
	return false;
}

/* --- parameter checks --------------------------------------------------- */

static CK_RV param_none(const CK_MECHANISM *m)
{
	return (m->pParameter || m->ulParameterLen) ? CKR_MECHANISM_PARAM_INVALID
						    : CKR_OK;
}

static CK_RV param_iv16(const CK_MECHANISM *m)
{
	return (m->pParameter && m->ulParameterLen == AES_BLOCK)
		       ? CKR_OK
		       : CKR_MECHANISM_PARAM_INVALID;
}

/* PKCS #11 v3.0 lets ulIvLen be anything from 1 to 2^32 - 1; OpenSSL's GCM
 * takes at most GCM_MAX_IV bytes, so a longer IV is refused here, where
 * the caller learns why, and not inside EVP as CKR_GENERAL_ERROR. */
CK_RV gcm_iv_tag_check(const void *iv, CK_ULONG ivlen, CK_ULONG tagbits)
{
	if (ivlen == 0 || ivlen > GCM_MAX_IV) {
		log_info("mech", "AES-GCM IV length %lu is out of range 1..%d",
			 (unsigned long)ivlen, GCM_MAX_IV);
		return CKR_MECHANISM_PARAM_INVALID;
	}
	if (!iv) {
		log_info("mech", "AES-GCM: pIv is NULL with an IV length of %lu",
			 (unsigned long)ivlen);
		return CKR_MECHANISM_PARAM_INVALID;
	}
	switch (tagbits) {
	case 32: case 64: case 96: case 104: case 112: case 120: case 128:
		return CKR_OK;
	default:
		log_info("mech", "AES-GCM tag of %lu bits is not allowed "
				 "(SP 800-38D: 32, 64, 96..128)",
			 (unsigned long)tagbits);
		return CKR_MECHANISM_PARAM_INVALID;
	}
}

/* PKCS #11 v2.30's CK_GCM_PARAMS: v2.40 added ulIvBits after ulIvLen. */
typedef struct {
	CK_BYTE_PTR pIv;
	CK_ULONG ulIvLen;
	CK_BYTE_PTR pAAD;
	CK_ULONG ulAADLen;
	CK_ULONG ulTagBits;
} gcm_params_v230;
_Static_assert(sizeof(gcm_params_v230) != sizeof(CK_GCM_PARAMS),
	       "the two CK_GCM_PARAMS layouts are told apart by size");

CK_RV gcm_params_read(const CK_MECHANISM *m, gcm_params *g)
{
	if (m->pParameter && m->ulParameterLen == sizeof(CK_GCM_PARAMS)) {
		const CK_GCM_PARAMS *p = m->pParameter;
		*g = (gcm_params){p->pIv, p->ulIvLen, p->ulIvBits, p->pAAD, p->ulAADLen,
				  p->ulTagBits};
		return CKR_OK;
	}
	if (m->pParameter && m->ulParameterLen == sizeof(gcm_params_v230)) {
		const gcm_params_v230 *p = m->pParameter;
		*g = (gcm_params){p->pIv, p->ulIvLen, 0, p->pAAD, p->ulAADLen, p->ulTagBits};
		return CKR_OK;
	}
	log_info("mech", "AES-GCM takes a CK_GCM_PARAMS of %zu bytes (or %zu, the v2.30 "
			 "layout), not %lu bytes%s",
		 sizeof(CK_GCM_PARAMS), sizeof(gcm_params_v230), (unsigned long)m->ulParameterLen,
		 m->pParameter ? "" : " at NULL");
	return CKR_MECHANISM_PARAM_INVALID;
}

CK_RV param_gcm(const CK_MECHANISM *m)
{
	gcm_params p;
	GUARD(gcm_params_read(m, &p));
	GUARD(gcm_iv_tag_check(p.iv, p.ivlen, p.tagbits));
	/* v3.0: "Do not use ulIvBits"; callers set it to 0 or to ulIvLen * 8.
	 * Anything else says the caller meant another IV than it gave. */
	if (p.ivbits && p.ivbits != p.ivlen * 8) {
		log_info("mech", "AES-GCM: ulIvBits %lu disagrees with ulIvLen %lu",
			 (unsigned long)p.ivbits, (unsigned long)p.ivlen);
		return CKR_MECHANISM_PARAM_INVALID;
	}
	if ((p.aadlen && !p.aad) || p.aadlen > GCM_MAX_AAD) {
		log_info("mech", "AES-GCM: %lu bytes of AAD %s", (unsigned long)p.aadlen,
			 p.aad ? "is more than the module takes" : "at NULL");
		return CKR_MECHANISM_PARAM_INVALID;
	}
	return CKR_OK;
}

static CK_RV param_kw(const CK_MECHANISM *m)
{
	if (!m->pParameter && !m->ulParameterLen)
		return CKR_OK;
	return (m->pParameter && m->ulParameterLen == KW_SEMI)
		       ? CKR_OK
		       : CKR_MECHANISM_PARAM_INVALID;
}

static CK_RV param_kwp(const CK_MECHANISM *m)
{
	if (!m->pParameter && !m->ulParameterLen)
		return CKR_OK;
	return (m->pParameter && m->ulParameterLen == 4)
		       ? CKR_OK
		       : CKR_MECHANISM_PARAM_INVALID;
}

static CK_RV param_ctr(const CK_MECHANISM *m)
{
	if (!m->pParameter || m->ulParameterLen != sizeof(CK_AES_CTR_PARAMS))
		return CKR_MECHANISM_PARAM_INVALID;
	const CK_AES_CTR_PARAMS *p = m->pParameter;
	if (p->ulCounterBits == 0 || p->ulCounterBits > 128) {
		log_info("mech", "AES-CTR counter of %lu bits is out of range 1..128",
			 (unsigned long)p->ulCounterBits);
		return CKR_MECHANISM_PARAM_INVALID;
	}
	return CKR_OK;
}

static CK_RV param_mac_general(const CK_MECHANISM *m)
{
	if (!m->pParameter || m->ulParameterLen != sizeof(CK_MAC_GENERAL_PARAMS))
		return CKR_MECHANISM_PARAM_INVALID;
	return CKR_OK;
}

static CK_RV param_kms(const CK_MECHANISM *m)
{
	if (!m->pParameter && !m->ulParameterLen)
		return CKR_OK;
	if (!m->pParameter || m->ulParameterLen != sizeof(CK_P11KMS_KMS_PARAMS))
		return CKR_MECHANISM_PARAM_INVALID;
	const CK_P11KMS_KMS_PARAMS *p = m->pParameter;
	if ((p->ulContextLen && !p->pContext) || p->ulContextLen > 4096)
		return CKR_MECHANISM_PARAM_INVALID;
	return CKR_OK;
}

CK_RV param_oaep(const CK_MECHANISM *m)
{
	if (!m->pParameter || m->ulParameterLen != sizeof(CK_RSA_PKCS_OAEP_PARAMS))
		return CKR_MECHANISM_PARAM_INVALID;
	const CK_RSA_PKCS_OAEP_PARAMS *p = m->pParameter;
	bool sha1 = p->hashAlg == CKM_SHA_1 && p->mgf == CKG_MGF1_SHA1;
	bool sha256 = p->hashAlg == CKM_SHA256 && p->mgf == CKG_MGF1_SHA256;
	if (!sha1 && !sha256) {
		log_info("mech", "RSA-OAEP: hash 0x%lx with MGF 0x%lx is not offered "
				 "(SHA-1/MGF1-SHA1 or SHA-256/MGF1-SHA256)",
			 (unsigned long)p->hashAlg, (unsigned long)p->mgf);
		return CKR_MECHANISM_PARAM_INVALID;
	}
	if ((p->source != CKZ_DATA_SPECIFIED && p->source != 0) || p->ulSourceDataLen) {
		log_info("mech", "RSA-OAEP: the KMS takes no label (encoding parameter)");
		return CKR_MECHANISM_PARAM_INVALID;
	}
	return CKR_OK;
}

/* --- shared by the cipher implementations --------------------------------- */

/* Key wrap is single-part by nature: parts are gathered and processed at
 * Final, so multi-part callers still work. */
CK_RV hold_update(cipher_op *op, const uint8_t *in, size_t inlen, uint8_t *out,
		  CK_ULONG *outlen)
{
	CK_RV rv;
	if (len_rule(0, out, outlen, &rv))
		return rv;
	/* Past the operation's own limit (op->buf.max: HOLD_MAX for local
	 * key wrap, what the KMS accepts for the remote ones) the data is out
	 * of range; only a failed allocation below it is CKR_HOST_MEMORY. */
	if (!dbuf_add(&op->buf, in, inlen))
		return inlen > op->buf.max - op->buf.len
			       ? (op->encrypt ? CKR_DATA_LEN_RANGE
					      : CKR_ENCRYPTED_DATA_LEN_RANGE)
			       : CKR_HOST_MEMORY;
	*outlen = 0;
	return CKR_OK;
}

CK_RV hold_final(cipher_op *op, uint8_t *out, CK_ULONG *outlen)
{
	return op->impl->oneshot(op, op->buf.p ? op->buf.p : (uint8_t *)"",
				 op->buf.len, out, outlen);
}

bool kw_pad7_strip(const uint8_t *p, size_t *len)
{
	size_t got = *len;
	uint8_t pv = got ? p[got - 1] : 0;
	bool okpad = pv >= 1 && pv <= KW_SEMI && pv <= got;
	for (size_t i = 0; okpad && i < pv; i++)
		okpad = p[got - 1 - i] == pv;
	if (okpad)
		*len = got - pv;
	return okpad;
}

/* --- the table ------------------------------------------------------------ */

#define ENC_DEC (CKF_ENCRYPT | CKF_DECRYPT)
#define WRAPS (CKF_WRAP | CKF_UNWRAP)
#define SIGNS (CKF_SIGN | CKF_VERIFY)

/* Sizes: bytes, except where key_bits says bits (as PKCS #11 reports them). */
#define KEYGEN(t, lo, hi, kt, bits)                                            \
	{.type = t, .name = #t, .min_key = lo, .max_key = hi,                  \
	 .flags = CKF_GENERATE, .key_type = kt, .check_param = param_none,     \
	 .keygen = true, .key_bits = bits}
#define CIPHER(t, fl, pc, impl)                                                \
	{.type = t, .name = #t, .min_key = 16, .max_key = 32, .flags = fl,     \
	 .key_type = CKK_AES, .check_param = pc, .cipher = impl}
#define MAC(t, kind, kt, lo, hi, digest, gen)                                  \
	{.type = t, .name = #t, .min_key = lo, .max_key = hi, .flags = SIGNS,  \
	 .key_type = kt, .check_param = gen ? param_mac_general : param_none,  \
	 .mac = kind, .md = digest, .general = gen,                            \
	 .key_bits = kt == CKK_GENERIC_SECRET}
/* Signing with a KMS asymmetric key (module/sign.c); sizes in bits. */
#define EC_FLAGS (CKF_EC_F_P | CKF_EC_NAMEDCURVE | CKF_EC_UNCOMPRESS)
#define ASYM_SIGN(t, kt, pc, sa, hashes)                                       \
	{.type = t, .name = #t, .min_key = kt == CKK_EC ? 256 : 2048,          \
	 .max_key = kt == CKK_EC ? 384 : 4096,                                 \
	 .flags = SIGNS | (kt == CKK_EC ? EC_FLAGS : 0), .key_type = kt,       \
	 .check_param = pc, .mac = MAC_ASYM, .kms_only = true, .key_bits = true, \
	 .salg = sa, .multipart = hashes}
#define DIGEST(t, digest)                                                      \
	{.type = t, .name = #t, .flags = CKF_DIGEST, .check_param = param_none, \
	 .mac = MAC_DIGEST, .md = digest}

static const mech_info mech_table[] = {
	KEYGEN(CKM_AES_KEY_GEN, 16, 32, CKK_AES, false),
	KEYGEN(CKM_GENERIC_SECRET_KEY_GEN, 8, 4096, CKK_GENERIC_SECRET, true),
	CIPHER(CKM_AES_ECB, ENC_DEC, param_none, &aes_ecb_impl),
	CIPHER(CKM_AES_CBC, ENC_DEC | WRAPS, param_iv16, &aes_cbc_impl),
	CIPHER(CKM_AES_CBC_PAD, ENC_DEC | WRAPS, param_iv16, &aes_cbcpad_impl),
	CIPHER(CKM_AES_CTR, ENC_DEC, param_ctr, &aes_ctr_impl),
	CIPHER(CKM_AES_GCM,
	       ENC_DEC | WRAPS | CKF_MESSAGE_ENCRYPT | CKF_MESSAGE_DECRYPT |
		       CKF_MULTI_MESSAGE,
	       param_gcm, &aes_gcm_impl),
	CIPHER(CKM_AES_KEY_WRAP, ENC_DEC | WRAPS, param_kw, &aes_kw_impl),
	CIPHER(CKM_AES_KEY_WRAP_PAD, ENC_DEC | WRAPS, param_kw, &aes_kw_impl),
	CIPHER(CKM_AES_KEY_WRAP_KWP, ENC_DEC | WRAPS, param_kwp, &aes_kw_impl),
	MAC(CKM_AES_CMAC, MAC_CMAC, CKK_AES, 16, 32, NULL, false),
	MAC(CKM_AES_CMAC_GENERAL, MAC_CMAC, CKK_AES, 16, 32, NULL, true),
	/* HMAC keys are generic secrets, sized in bits like their generator. */
	MAC(CKM_SHA256_HMAC, MAC_HMAC, CKK_GENERIC_SECRET, 8, 4096, "SHA256", false),
	MAC(CKM_SHA256_HMAC_GENERAL, MAC_HMAC, CKK_GENERIC_SECRET, 8, 4096, "SHA256", true),
	MAC(CKM_SHA384_HMAC, MAC_HMAC, CKK_GENERIC_SECRET, 8, 4096, "SHA384", false),
	MAC(CKM_SHA384_HMAC_GENERAL, MAC_HMAC, CKK_GENERIC_SECRET, 8, 4096, "SHA384", true),
	MAC(CKM_SHA512_HMAC, MAC_HMAC, CKK_GENERIC_SECRET, 8, 4096, "SHA512", false),
	MAC(CKM_SHA512_HMAC_GENERAL, MAC_HMAC, CKK_GENERIC_SECRET, 8, 4096, "SHA512", true),
	DIGEST(CKM_SHA256, "SHA256"),
	DIGEST(CKM_SHA384, "SHA384"),
	DIGEST(CKM_SHA512, "SHA512"),
	/* RSA keys live only in a KMS (docs/REMOTE.md); sizes in bits. */
	{.type = CKM_RSA_PKCS_OAEP, .name = "CKM_RSA_PKCS_OAEP", .min_key = 2048,
	 .max_key = 4096, .flags = ENC_DEC | WRAPS, .key_type = CKK_RSA,
	 .check_param = param_oaep, .cipher = &remote_std_impl, .kms_only = true,
	 .key_bits = true},
	ASYM_SIGN(CKM_RSA_PKCS, CKK_RSA, param_none, 0, false),
	ASYM_SIGN(CKM_SHA256_RSA_PKCS, CKK_RSA, param_none, SALG_RSA_PKCS1_SHA256, true),
	ASYM_SIGN(CKM_SHA384_RSA_PKCS, CKK_RSA, param_none, SALG_RSA_PKCS1_SHA384, true),
	ASYM_SIGN(CKM_SHA512_RSA_PKCS, CKK_RSA, param_none, SALG_RSA_PKCS1_SHA512, true),
	ASYM_SIGN(CKM_RSA_PKCS_PSS, CKK_RSA, param_pss, 0, false),
	ASYM_SIGN(CKM_SHA256_RSA_PKCS_PSS, CKK_RSA, param_pss, SALG_RSA_PSS_SHA256, true),
	ASYM_SIGN(CKM_SHA384_RSA_PKCS_PSS, CKK_RSA, param_pss, SALG_RSA_PSS_SHA384, true),
	ASYM_SIGN(CKM_SHA512_RSA_PKCS_PSS, CKK_RSA, param_pss, SALG_RSA_PSS_SHA512, true),
	ASYM_SIGN(CKM_ECDSA, CKK_EC, param_none, 0, false),
	ASYM_SIGN(CKM_ECDSA_SHA256, CKK_EC, param_none, SALG_ECDSA_SHA256, true),
	ASYM_SIGN(CKM_ECDSA_SHA384, CKK_EC, param_none, SALG_ECDSA_SHA384, true),
	{.type = CKM_P11KMS_KMS_ENVELOPE, .name = "CKM_P11KMS_KMS_ENVELOPE",
	 .flags = ENC_DEC | WRAPS, .key_type = CKK_P11KMS_KMS,
	 .check_param = param_kms, .cipher = &remote_envelope_impl, .remote = true},
};

const mech_info *mech_lookup(CK_MECHANISM_TYPE t)
{
	for (size_t i = 0; i < ARRAY_SIZE(mech_table); i++)
		if (mech_table[i].type == t)
			return &mech_table[i];
	return NULL;
}

size_t mech_count(void)
{
	return ARRAY_SIZE(mech_table);
}

const mech_info *mech_at(size_t i)
{
	return i < ARRAY_SIZE(mech_table) ? &mech_table[i] : NULL;
}

bool mech_key_ok(const mech_info *m, size_t keylen)
{
	if (m->remote)
		return true;
	if (m->key_type == CKK_AES)
		return keylen == 16 || keylen == 24 || keylen == 32;
	size_t units = m->key_bits ? keylen * 8 : keylen;
	return units >= m->min_key && units <= m->max_key;
}

/* Can mi run on a KMS key? (the envelope, or a standard one in the KMS) */
bool mech_kms_capable(const mech_info *mi)
{
	switch (mi->type) {
	case CKM_AES_KEY_WRAP:
	case CKM_AES_KEY_WRAP_PAD:
	case CKM_AES_KEY_WRAP_KWP:
	case CKM_AES_GCM:
		return true;
	default:
		return mi->remote || mi->kms_only;
	}
}

void cipher_keep_free(cipher_keep *k)
{
	EVP_CIPHER_CTX_free(k->ctx);
	memset(k, 0, sizeof(*k));
}

void cipher_op_free(cipher_op *op)
{
	EVP_CIPHER_CTX_free(op->ctx);
	cipher_keep_free(&op->keep);
	if (op->gcm_iv != op->gcm_ivbuf)
		free(op->gcm_iv);
	if (op->aad != op->aadbuf)
		free(op->aad);
	free(op->kms_ctx);
	sec_free(op->kms_in);
	sec_free(op->kms_res);
	dbuf_free(&op->buf);
	/* What op itself holds of a secret: a CBC-PAD decryption's last
	 * plaintext block (EVP_CIPHER_CTX_free wipes the key schedule). */
	OPENSSL_cleanse(op->tail, sizeof(op->tail));
	memset(op, 0, sizeof(*op));
}

bool cipher_op_active(const cipher_op *op)
{
	return op->mech != NULL;
}
