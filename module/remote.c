/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Cipher operations on KMS key objects, run by the KMS through the token's
 * KMS port (slots/kms_port.h) with no lock held: the provider's envelope
 * (CKM_P11KMS_KMS_ENVELOPE) and the standard mechanisms on typed KMS keys
 * (docs/REMOTE.md). Parameters and lengths are checked here, so a bad call
 * or a length query costs no round trip.
 */
#include <stdlib.h>
#include <string.h>

#include "cipher.h"
#include "common/log.h"
#include "common/secmem.h"

/* --- remote: the provider's envelope encryption on a KMS key ----------- */

#define KMS_MAX_DATA 4096 /* what the KMSs accept as plaintext */

/* A KMS result kept after CKR_BUFFER_TOO_SMALL answers the retry with the
 * same input, without a second round trip. */
static bool kept_result(cipher_op *op, const uint8_t *in, size_t inlen, uint8_t **res,
			size_t *reslen)
{
	if (!op->kms_res || op->kms_inlen != inlen || memcmp(op->kms_in, in, inlen) != 0)
		return false;
	*res = op->kms_res;
	*reslen = op->kms_reslen;
	op->kms_res = NULL;
	return true;
}

/* PKCS #11 5.2 for a KMS operation: an encryption's length is known
 * before the call; a decryption's is an upper bound until the KMS has
 * answered, so only a length query is answered from it. */
static bool kms_len_rule(const cipher_op *op, size_t need, const uint8_t *out,
			 CK_ULONG *outlen, CK_RV *rv)
{
	if (op->encrypt)
		return len_rule(need, out, outlen, rv);
	if (out)
		return false;
	*outlen = need;
	*rv = CKR_OK;
	return true;
}

/* Copy a KMS result (secure memory, consumed) of exactly (or at most)
 * due bytes to the caller, or keep it and say CKR_BUFFER_TOO_SMALL with
 * its exact length. */
static CK_RV deliver(cipher_op *op, const uint8_t *in, size_t inlen, uint8_t *res,
		     size_t reslen, bool exact, size_t due, uint8_t *out, CK_ULONG *outlen)
{
	if (exact ? reslen != due : reslen > due) {
		log_error("mech", "the KMS returned %zu bytes where %s%zu were due", reslen,
			  exact ? "" : "at most ", due);
		sec_free(res);
		return CKR_DEVICE_ERROR;
	}
	if (*outlen < reslen) {
		sec_free(op->kms_res);
		sec_free(op->kms_in);
		op->kms_res = NULL;
		/* Only decryptions get here (encryption lengths are exact), but
		 * the input is kept as carefully as the result. */
		op->kms_in = inlen ? sec_dup(in, inlen) : sec_alloc(1);
		if (!op->kms_in) {
			sec_free(res);
			return CKR_HOST_MEMORY;
		}
		op->kms_inlen = inlen;
		op->kms_res = res;
		op->kms_reslen = reslen;
		*outlen = reslen;
		return CKR_BUFFER_TOO_SMALL;
	}
	memcpy(out, res, reslen);
	*outlen = reslen;
	sec_free(res);
	return CKR_OK;
}

static CK_RV remote_oneshot(cipher_op *op, const uint8_t *in, size_t inlen,
			    uint8_t *out, CK_ULONG *outlen)
{
	CK_RV rv;
	if (inlen > (op->encrypt ? KMS_MAX_DATA : KMS_MAX_DATA * 4) || (op->encrypt && !inlen))
		return op->encrypt ? CKR_DATA_LEN_RANGE : CKR_ENCRYPTED_DATA_LEN_RANGE;
	/* Upper bounds answer length queries without a KMS round trip. A
	 * decryption into a buffer shorter than the bound asks the KMS: the
	 * plaintext may fit. */
	size_t bound = op->encrypt ? op->kms.max(op->kms.tok, inlen) : inlen;
	if (kms_len_rule(op, bound, out, outlen, &rv))
		return rv;
	uint8_t *res = NULL;
	size_t reslen = 0;
	if (!kept_result(op, in, inlen, &res, &reslen))
		GUARD(op->kms.call(op->kms.tok, op->encrypt, op->kms_key_id, op->kms_ctx,
			       op->kms_ctxlen, in, inlen, &res, &reslen));
	return deliver(op, in, inlen, res, reslen, false, bound, out, outlen);
}

/* The envelope's domains (docs/SECURITY.md): C_WrapKey of a sensitive key
 * asks the KMS with this prefix before the caller's context, and no
 * caller's context may begin with it. So C_Decrypt (whose context is the
 * caller's) never opens such a blob, nor does an unwrap that would make a
 * weaker key; blobs of non-sensitive keys, and blobs an SDK made, keep the
 * caller's context as it is (interoperable). */
static const char wrap_domain[] = "p11kms-wrap:v1:";
#define WRAP_DOMAIN_LEN (sizeof(wrap_domain) - 1)

static CK_RV init_remote(cipher_op *op, const mech_info *mi, const CK_MECHANISM *m,
			 const kms_port *port, const char *key_id, bool encrypt,
			 bool protected_domain)
{
	memset(op, 0, sizeof(*op));
	dbuf_init(&op->buf, KMS_MAX_DATA * 4, true);
	GUARD(mi->check_param(m));
	if (!port || !port->tok || !port->call || !port->max)
		return CKR_GENERAL_ERROR;
	const CK_P11KMS_KMS_PARAMS *p = m->pParameter;
	size_t ulen = p ? p->ulContextLen : 0;
	if (ulen >= WRAP_DOMAIN_LEN && memcmp(p->pContext, wrap_domain, WRAP_DOMAIN_LEN) == 0) {
		log_info("mech", "an envelope context may not begin with \"%s\" (reserved for "
				 "wrapped sensitive keys)",
			 wrap_domain);
		return CKR_MECHANISM_PARAM_INVALID;
	}
	size_t dl = protected_domain ? WRAP_DOMAIN_LEN : 0;
	if (ulen + dl) {
		if (!(op->kms_ctx = malloc(ulen + dl)))
			return CKR_HOST_MEMORY;
		memcpy(op->kms_ctx, wrap_domain, dl);
		if (ulen)
			memcpy(op->kms_ctx + dl, p->pContext, ulen);
		op->kms_ctxlen = ulen + dl;
	}
	op->mech = mi;
	op->impl = mi->cipher;
	op->encrypt = encrypt;
	op->kms = *port;
	op->kms_key_id = key_id;
	return CKR_OK;
}

CK_RV cipher_op_init_remote(cipher_op *op, const mech_info *mi, const CK_MECHANISM *m,
			    const kms_port *port, const char *key_id, bool encrypt)
{
	return init_remote(op, mi, m, port, key_id, encrypt, false);
}

CK_RV cipher_op_init_remote_key(cipher_op *op, const mech_info *mi, const CK_MECHANISM *m,
				const kms_port *port, const char *key_id, bool encrypt,
				bool protected_domain)
{
	return init_remote(op, mi, m, port, key_id, encrypt, protected_domain);
}

/* --- standard mechanisms run by the KMS on typed KMS keys ---------------- */
/* The key stays in the KMS; the algorithm and its output format are the
 * standard ones (docs/REMOTE.md). The module checks parameters and lengths
 * here so that a bad call costs no round trip. */

#define KMS_STD_MAX (64u * 1024) /* input the KMSs accept for these */

/* A key wrap parameter, if any, must be the standard IV: the KMS takes
 * no other. */
static CK_RV kms_kw_iv(const CK_MECHANISM *m, const uint8_t *def, size_t n)
{
	if (!m->pParameter && !m->ulParameterLen)
		return CKR_OK;
	if (m->pParameter && m->ulParameterLen == n && memcmp(m->pParameter, def, n) == 0)
		return CKR_OK;
	log_info("mech", "AES key wrap on a KMS key: only the default IV is possible");
	return CKR_MECHANISM_PARAM_INVALID;
}

static CK_RV kms_init(cipher_op *op, const mech_info *mi, const CK_MECHANISM *m,
		      const kms_port *port, size_t idx, size_t key_bits, size_t modlen,
		      bool encrypt, bool key_op)
{
	static const uint8_t kw_iv[8] = {0xA6, 0xA6, 0xA6, 0xA6, 0xA6, 0xA6, 0xA6, 0xA6};
	static const uint8_t kwp_iv[4] = {0xA6, 0x59, 0x59, 0xA6};
	memset(op, 0, sizeof(*op));
	dbuf_init(&op->buf, KMS_STD_MAX, true);
	if (!port || !port->tok || !port->std || !port->modlen)
		return CKR_GENERAL_ERROR;
	switch (mi->type) {
	case CKM_RSA_PKCS_OAEP: {
		GUARD(param_oaep(m));
		const CK_RSA_PKCS_OAEP_PARAMS *p = m->pParameter;
		bool sha1 = p->hashAlg == CKM_SHA_1;
		op->kms_alg = sha1 ? RALG_RSA_OAEP_SHA1 : RALG_RSA_OAEP_SHA256;
		op->kms_hlen = sha1 ? 20 : 32;
		if (!modlen)
			GUARD(port->modlen(port->tok, idx, &modlen));
		break;
	}
	case CKM_AES_KEY_WRAP:
	case CKM_AES_KEY_WRAP_PAD:
		GUARD(kms_kw_iv(m, kw_iv, sizeof(kw_iv)));
		op->kms_alg = RALG_AES_KW;
		op->kms_pad7 = mi->type == CKM_AES_KEY_WRAP_PAD;
		break;
	case CKM_AES_KEY_WRAP_KWP:
		GUARD(kms_kw_iv(m, kwp_iv, sizeof(kwp_iv)));
		op->kms_alg = RALG_AES_KWP;
		break;
	case CKM_AES_GCM: {
		GUARD(param_gcm(m));
		gcm_params p;
		GUARD(gcm_params_read(m, &p));
		if (p.ivlen != REMOTE_GCM_IV_LEN || p.tagbits != REMOTE_GCM_TAG_LEN * 8) {
			log_info("mech", "AES-GCM on a KMS key: the KMS makes 96-bit IVs and "
					 "128-bit tags (ulIvLen %lu, ulTagBits %lu given)",
				 (unsigned long)p.ivlen, (unsigned long)p.tagbits);
			return CKR_MECHANISM_PARAM_INVALID;
		}
		GUARD(init_gcm(op, m));
		if (encrypt)
			op->kms_iv_out = p.iv; /* receives the KMS's IV */
		op->kms_alg = RALG_AES_GCM;
		break;
	}
	default:
		return CKR_MECHANISM_INVALID;
	}
	op->mech = mi;
	op->impl = &remote_std_impl;
	op->encrypt = encrypt;
	op->kms = *port;
	op->kms_index = idx;
	op->kms_key_op = key_op;
	op->kms_bits = key_bits;
	op->kms_modlen = modlen;
	return CKR_OK;
}

CK_RV cipher_op_init_kms(cipher_op *op, const mech_info *mi, const CK_MECHANISM *m,
			 const kms_port *port, size_t idx, size_t key_bits, size_t modlen,
			 bool encrypt, bool key_op)
{
	CK_RV rv = kms_init(op, mi, m, port, idx, key_bits, modlen, encrypt, key_op);
	if (rv != CKR_OK)
		cipher_op_free(op);
	return rv;
}

/* Output length for inlen bytes of input: exact when encrypting, an upper
 * bound when decrypting. 0 with *rv set when the length is out of range. */
static size_t kms_std_len(const cipher_op *op, size_t inlen, CK_RV *rv)
{
	CK_RV enc_bad = CKR_DATA_LEN_RANGE, dec_bad = CKR_ENCRYPTED_DATA_LEN_RANGE;
	*rv = op->encrypt ? enc_bad : dec_bad;
	if (inlen > KMS_STD_MAX)
		return 0;
	size_t k = op->kms_modlen, h = op->kms_hlen;
	switch (op->kms_alg) {
	case RALG_RSA_OAEP_SHA1:
	case RALG_RSA_OAEP_SHA256:
		if (op->encrypt)
			return inlen + 2 * h + 2 <= k ? (*rv = CKR_OK, k) : 0;
		return inlen == k ? (*rv = CKR_OK, k - 2 * h - 2) : 0;
	case RALG_AES_KW:
		if (op->encrypt) {
			size_t plen = op->kms_pad7 ? inlen - inlen % KW_SEMI + KW_SEMI : inlen;
			return plen % KW_SEMI || plen < 2 * KW_SEMI ? 0
								    : (*rv = CKR_OK, plen + KW_SEMI);
		}
		return inlen % KW_SEMI || inlen < 3 * KW_SEMI ? 0 : (*rv = CKR_OK, inlen - KW_SEMI);
	case RALG_AES_KWP:
		if (op->encrypt)
			return inlen ? (*rv = CKR_OK, (inlen + 7) / 8 * 8 + KW_SEMI) : 0;
		return inlen % KW_SEMI || inlen < 2 * KW_SEMI ? 0 : (*rv = CKR_OK, inlen - KW_SEMI);
	case RALG_AES_GCM:
		if (op->encrypt)
			return *rv = CKR_OK, inlen + REMOTE_GCM_TAG_LEN;
		return inlen < REMOTE_GCM_TAG_LEN ? 0 : (*rv = CKR_OK, inlen - REMOTE_GCM_TAG_LEN);
	}
	*rv = CKR_GENERAL_ERROR;
	return 0;
}

/* One KMS call. *res is secure memory. */
static CK_RV kms_std_call(cipher_op *op, const uint8_t *in, size_t inlen, uint8_t **res,
			  size_t *reslen)
{
	remote_req r = {.alg = (remote_alg)op->kms_alg, .encrypt = op->encrypt,
			.key_op = op->kms_key_op, .key_bits = op->kms_bits,
			.in = in, .inlen = inlen, .aad = op->aad, .aadlen = op->aadlen};
	if (op->kms_alg == RALG_AES_GCM && !op->encrypt) {
		/* the caller's IV; ulIvLen was checked to be 12 */
		memcpy(r.iv, op->gcm_iv, REMOTE_GCM_IV_LEN);
	}
	uint8_t *padded = NULL;
	if (op->kms_pad7 && op->encrypt) {
		size_t plen = inlen - inlen % KW_SEMI + KW_SEMI;
		if (!(padded = sec_alloc(plen)))
			return CKR_HOST_MEMORY;
		memcpy(padded, in, inlen);
		memset(padded + inlen, (int)(plen - inlen), plen - inlen);
		r.in = padded;
		r.inlen = plen;
	}
	CK_RV rv = op->kms.std(op->kms.tok, op->kms_index, &r, res, reslen);
	sec_free(padded);
	if (rv == CKR_OK && op->kms_alg == RALG_AES_GCM && op->encrypt)
		memcpy(op->kms_iv_out, r.iv, REMOTE_GCM_IV_LEN);
	if (rv == CKR_OK && op->kms_pad7 && !op->encrypt && !kw_pad7_strip(*res, reslen)) {
		log_info("mech", "AES key wrap pad: bad PKCS #7 padding");
		sec_free(*res);
		*res = NULL;
		return CKR_ENCRYPTED_DATA_INVALID;
	}
	return rv;
}

CK_RV mech_kms_gcm(const kms_port *port, size_t idx, size_t key_bits, bool encrypt, const uint8_t *aad,
		   size_t aadlen, const uint8_t *in, size_t inlen,
		   uint8_t iv[REMOTE_GCM_IV_LEN], uint8_t **res, size_t *reslen)
{
	if (!port || !port->tok || !port->std)
		return CKR_GENERAL_ERROR;
	if (inlen > KMS_STD_MAX || (!encrypt && inlen < REMOTE_GCM_TAG_LEN))
		return encrypt ? CKR_DATA_LEN_RANGE : CKR_ENCRYPTED_DATA_LEN_RANGE;
	remote_req r = {.alg = RALG_AES_GCM, .encrypt = encrypt, .key_bits = key_bits,
			.in = in, .inlen = inlen, .aad = aad, .aadlen = aadlen};
	if (!encrypt)
		memcpy(r.iv, iv, REMOTE_GCM_IV_LEN);
	GUARD(port->std(port->tok, idx, &r, res, reslen));
	size_t due = encrypt ? inlen + REMOTE_GCM_TAG_LEN : inlen - REMOTE_GCM_TAG_LEN;
	if (*reslen != due) {
		log_error("mech", "the KMS returned %zu bytes where %zu were due", *reslen, due);
		sec_free(*res);
		*res = NULL;
		return CKR_DEVICE_ERROR;
	}
	if (encrypt)
		memcpy(iv, r.iv, REMOTE_GCM_IV_LEN);
	return CKR_OK;
}

static CK_RV kmsstd_oneshot(cipher_op *op, const uint8_t *in, size_t inlen, uint8_t *out,
			    CK_ULONG *outlen)
{
	CK_RV rv;
	size_t need = kms_std_len(op, inlen, &rv);
	GUARD(rv);
	if (kms_len_rule(op, need, out, outlen, &rv))
		return rv;
	uint8_t *res = NULL;
	size_t reslen = 0;
	if (!kept_result(op, in, inlen, &res, &reslen))
		GUARD(kms_std_call(op, in, inlen, &res, &reslen));
	return deliver(op, in, inlen, res, reslen, op->encrypt, need, out, outlen);
}

const cipher_impl remote_envelope_impl = {NULL, remote_oneshot, hold_update, hold_final};
const cipher_impl remote_std_impl = {NULL, kmsstd_oneshot, hold_update, hold_final};
