/* SPDX-License-Identifier: Apache-2.0 */
#include "mech.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "common/crypto.h"
#include "common/log.h"
#include "providers/provider.h"
#include "common/secmem.h"

#define AES_BLOCK 16
#define KW_SEMI 8
#define GCM_MAX_IV 256
#define GCM_MAX_AAD (16u * 1024 * 1024)
#define HOLD_MAX ((size_t)256 * 1024 * 1024) /* data held between parts */

/* PKCS #11 5.2 length convention. True when the caller must return *rv:
 * a length query (out == NULL) or a short buffer, both of which leave the
 * operation active. */
static bool len_rule(CK_ULONG need, const uint8_t *out, CK_ULONG *outlen,
		     CK_RV *rv)
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

/* EVP takes int lengths: feed large inputs in chunks. */
static bool evp_update(EVP_CIPHER_CTX *ctx, uint8_t *out, size_t *outlen,
		       const uint8_t *in, size_t inlen)
{
	size_t done = 0, produced = 0;
	do {
		size_t chunk = inlen - done > (1u << 30) ? (1u << 30) : inlen - done;
		int n = 0;
		if (EVP_CipherUpdate(ctx, out ? out + produced : NULL, &n,
				     in + done, (int)chunk) != 1)
			return false;
		done += chunk;
		produced += (size_t)n;
	} while (done < inlen);
	*outlen = produced;
	return true;
}

static CK_RV rekey(cipher_op *op)
{
	if (op->ctx_fresh)
		return CKR_OK;
	const uint8_t *iv = op->gcm_iv ? op->gcm_iv : op->ivlen ? op->iv : NULL;
	/* The key schedule is kept: only the IV and state are reset. */
	if (EVP_CipherInit_ex2(op->ctx, NULL, NULL, iv, op->encrypt, NULL) != 1)
		return CKR_GENERAL_ERROR;
	if (op->mech->type == CKM_AES_ECB || op->mech->type == CKM_AES_CBC)
		EVP_CIPHER_CTX_set_padding(op->ctx, 0);
	if (op->aadlen) {
		size_t n;
		if (!evp_update(op->ctx, NULL, &n, op->aad, op->aadlen))
			return CKR_GENERAL_ERROR;
	}
	op->ctx_fresh = true;
	return CKR_OK;
}

/* Feed input to the running context, output to out (lengths checked). */
static CK_RV feed(cipher_op *op, const uint8_t *in, size_t inlen, uint8_t *out,
		  CK_ULONG *outlen)
{
	size_t n;
	op->ctx_fresh = false;
	if (!evp_update(op->ctx, out, &n, in, inlen))
		return CKR_GENERAL_ERROR;
	*outlen = n;
	return CKR_OK;
}

/* Multi-part: the context is reset only before the first part; later
 * parts continue the stream. */
static CK_RV stream_start(cipher_op *op)
{
	return op->multipart ? CKR_OK : rekey(op);
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

static CK_RV param_gcm(const CK_MECHANISM *m)
{
	if (!m->pParameter || m->ulParameterLen != sizeof(CK_GCM_PARAMS))
		return CKR_MECHANISM_PARAM_INVALID;
	const CK_GCM_PARAMS *p = m->pParameter;
	if (!p->pIv || p->ulIvLen == 0 || p->ulIvLen > GCM_MAX_IV) {
		log_info("mech", "AES-GCM IV length %lu is out of range 1..%d",
			 (unsigned long)p->ulIvLen, GCM_MAX_IV);
		return CKR_MECHANISM_PARAM_INVALID;
	}
	if ((p->ulAADLen && !p->pAAD) || p->ulAADLen > GCM_MAX_AAD)
		return CKR_MECHANISM_PARAM_INVALID;
	switch (p->ulTagBits) {
	case 32: case 64: case 96: case 104: case 112: case 120: case 128:
		return CKR_OK;
	default:
		log_info("mech", "AES-GCM tag of %lu bits is not allowed "
				 "(SP 800-38D: 32, 64, 96..128)",
			 (unsigned long)p->ulTagBits);
		return CKR_MECHANISM_PARAM_INVALID;
	}
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

/* --- init ---------------------------------------------------------------- */

static CK_RV init_iv(cipher_op *op, const CK_MECHANISM *m)
{
	op->ivlen = m->ulParameterLen;
	if (op->ivlen)
		memcpy(op->iv, m->pParameter, op->ivlen);
	return CKR_OK;
}

/* CTR: the counter is the low ulCounterBits bits of the block and must
 * not wrap (PKCS #11 v3.0 2.10.4): remember how many blocks remain. */
static CK_RV init_ctr(cipher_op *op, const CK_MECHANISM *m)
{
	const CK_AES_CTR_PARAMS *p = m->pParameter;
	memcpy(op->iv, p->cb, 16);
	op->ivlen = 16;
	unsigned bits = (unsigned)p->ulCounterBits;
	if (bits >= 64) {
		op->ctr_left = UINT64_MAX; /* more than any input can use */
		return CKR_OK;
	}
	uint64_t ctr = 0;
	for (int i = 8; i < 16; i++)
		ctr = ctr << 8 | p->cb[i];
	ctr &= ((uint64_t)1 << bits) - 1;
	op->ctr_left = ((uint64_t)1 << bits) - ctr; /* blocks, this one included */
	return CKR_OK;
}

static CK_RV init_gcm(cipher_op *op, const CK_MECHANISM *m)
{
	const CK_GCM_PARAMS *p = m->pParameter;
	op->gcm_ivlen = p->ulIvLen;
	op->aadlen = p->ulAADLen;
	op->taglen = p->ulTagBits / 8;
	op->gcm_iv = malloc(op->gcm_ivlen);
	op->aad = op->aadlen ? malloc(op->aadlen) : NULL;
	if (!op->gcm_iv || (op->aadlen && !op->aad))
		return CKR_HOST_MEMORY;
	memcpy(op->gcm_iv, p->pIv, op->gcm_ivlen);
	if (op->aadlen)
		memcpy(op->aad, p->pAAD, op->aadlen);
	return CKR_OK;
}

/* --- AES-GCM ------------------------------------------------------------- */

static CK_RV gcm_finish(cipher_op *op, const uint8_t *in, size_t inlen,
			uint8_t *out, CK_ULONG *outlen)
{
	size_t n = 0;
	int m = 0;
	GUARD(rekey(op));
	op->ctx_fresh = false;
	if (op->encrypt) {
		if (!evp_update(op->ctx, out, &n, in, inlen) ||
		    EVP_CipherFinal_ex(op->ctx, out + n, &m) != 1 ||
		    EVP_CIPHER_CTX_ctrl(op->ctx, EVP_CTRL_GCM_GET_TAG, (int)op->taglen,
					out + inlen) != 1)
			return CKR_GENERAL_ERROR;
		*outlen = inlen + op->taglen;
		return CKR_OK;
	}
	size_t clen = inlen - op->taglen;
	if (EVP_CIPHER_CTX_ctrl(op->ctx, EVP_CTRL_GCM_SET_TAG, (int)op->taglen,
				(void *)(in + clen)) != 1 ||
	    !evp_update(op->ctx, out, &n, in, clen))
		return CKR_GENERAL_ERROR;
	if (EVP_CipherFinal_ex(op->ctx, out + n, &m) != 1) {
		/* Release nothing of a forgery. */
		OPENSSL_cleanse(out, clen);
		log_info("mech", "AES-GCM tag check failed");
		return CKR_ENCRYPTED_DATA_INVALID;
	}
	*outlen = clen;
	return CKR_OK;
}

static CK_RV gcm_oneshot(cipher_op *op, const uint8_t *in, size_t inlen,
			 uint8_t *out, CK_ULONG *outlen)
{
	CK_RV rv;
	if (!op->encrypt && inlen < op->taglen)
		return CKR_ENCRYPTED_DATA_LEN_RANGE;
	CK_ULONG need = op->encrypt ? inlen + op->taglen : inlen - op->taglen;
	if (len_rule(need, out, outlen, &rv))
		return rv;
	return gcm_finish(op, in, inlen, out, outlen);
}

static CK_RV gcm_update(cipher_op *op, const uint8_t *in, size_t inlen,
			uint8_t *out, CK_ULONG *outlen)
{
	CK_RV rv;
	if (!op->encrypt) {
		/* The tag is checked before any plaintext is released: hold the
		 * ciphertext until C_DecryptFinal. */
		if (len_rule(0, out, outlen, &rv))
			return rv;
		if (!dbuf_add(&op->buf, in, inlen))
			return op->buf.len + inlen > HOLD_MAX ? CKR_ENCRYPTED_DATA_LEN_RANGE
							       : CKR_HOST_MEMORY;
		*outlen = 0;
		return CKR_OK;
	}
	if (len_rule(inlen, out, outlen, &rv))
		return rv;
	GUARD(stream_start(op));
	return feed(op, in, inlen, out, outlen);
}

static CK_RV gcm_final(cipher_op *op, uint8_t *out, CK_ULONG *outlen)
{
	CK_RV rv;
	if (!op->encrypt) {
		if (op->buf.len < op->taglen)
			return CKR_ENCRYPTED_DATA_LEN_RANGE;
		if (len_rule(op->buf.len - op->taglen, out, outlen, &rv))
			return rv;
		return gcm_finish(op, op->buf.p ? op->buf.p : (uint8_t *)"",
				  op->buf.len, out, outlen);
	}
	if (len_rule(op->taglen, out, outlen, &rv))
		return rv;
	GUARD(stream_start(op));
	int m = 0;
	uint8_t tail[AES_BLOCK];
	if (EVP_CipherFinal_ex(op->ctx, tail, &m) != 1 ||
	    EVP_CIPHER_CTX_ctrl(op->ctx, EVP_CTRL_GCM_GET_TAG, (int)op->taglen,
				out) != 1)
		return CKR_GENERAL_ERROR;
	*outlen = op->taglen;
	return CKR_OK;
}

/* --- AES-CTR ------------------------------------------------------------- */

static CK_RV ctr_consume(cipher_op *op, size_t inlen)
{
	/* Partial blocks in multi-part use share a counter value: count the
	 * bytes, round up once. */
	uint64_t total = op->ctr_bytes + inlen;
	uint64_t blocks = total / AES_BLOCK + (total % AES_BLOCK != 0);
	if (blocks > op->ctr_left) {
		log_info("mech", "AES-CTR: the data would wrap the counter");
		return op->encrypt ? CKR_DATA_LEN_RANGE : CKR_ENCRYPTED_DATA_LEN_RANGE;
	}
	op->ctr_bytes = total;
	return CKR_OK;
}

static CK_RV ctr_oneshot(cipher_op *op, const uint8_t *in, size_t inlen,
			 uint8_t *out, CK_ULONG *outlen)
{
	CK_RV rv;
	if (len_rule(inlen, out, outlen, &rv))
		return rv;
	op->ctr_bytes = 0;
	GUARD(ctr_consume(op, inlen));
	GUARD(rekey(op));
	return feed(op, in, inlen, out, outlen);
}

static CK_RV ctr_update(cipher_op *op, const uint8_t *in, size_t inlen,
			uint8_t *out, CK_ULONG *outlen)
{
	CK_RV rv;
	if (len_rule(inlen, out, outlen, &rv))
		return rv;
	GUARD(stream_start(op));
	GUARD(ctr_consume(op, inlen));
	return feed(op, in, inlen, out, outlen);
}

static CK_RV ctr_final(cipher_op *op, uint8_t *out, CK_ULONG *outlen)
{
	CK_RV rv;
	if (len_rule(0, out, outlen, &rv))
		return rv;
	*outlen = 0;
	return CKR_OK;
}

/* --- AES-ECB / AES-CBC (no padding) --------------------------------------- */

static CK_RV block_oneshot(cipher_op *op, const uint8_t *in, size_t inlen,
			   uint8_t *out, CK_ULONG *outlen)
{
	CK_RV rv;
	if (inlen % AES_BLOCK)
		return op->encrypt ? CKR_DATA_LEN_RANGE : CKR_ENCRYPTED_DATA_LEN_RANGE;
	if (len_rule(inlen, out, outlen, &rv))
		return rv;
	GUARD(rekey(op));
	return feed(op, in, inlen, out, outlen);
}

static CK_RV block_update(cipher_op *op, const uint8_t *in, size_t inlen,
			  uint8_t *out, CK_ULONG *outlen)
{
	CK_RV rv;
	size_t total;
	if (!size_add(op->buf.len, inlen, &total))
		return CKR_DATA_LEN_RANGE;
	/* buf.len tracks how many bytes EVP holds (no data is copied). */
	CK_ULONG need = total - total % AES_BLOCK;
	if (len_rule(need, out, outlen, &rv))
		return rv;
	GUARD(stream_start(op));
	op->ctx_fresh = false;
	size_t n;
	if (!evp_update(op->ctx, out, &n, in, inlen))
		return CKR_GENERAL_ERROR;
	op->buf.len = total % AES_BLOCK;
	*outlen = n;
	return CKR_OK;
}

static CK_RV block_final(cipher_op *op, uint8_t *out, CK_ULONG *outlen)
{
	CK_RV rv;
	if (op->buf.len)
		return op->encrypt ? CKR_DATA_LEN_RANGE : CKR_ENCRYPTED_DATA_LEN_RANGE;
	if (len_rule(0, out, outlen, &rv))
		return rv;
	*outlen = 0;
	return CKR_OK;
}

/* --- AES-CBC with PKCS #7 padding ----------------------------------------- */

static CK_RV cbcpad_run(cipher_op *op, const uint8_t *in, size_t inlen,
			uint8_t *out, size_t *outlen)
{
	size_t n;
	int m = 0;
	GUARD(rekey(op));
	op->ctx_fresh = false;
	if (!evp_update(op->ctx, out, &n, in, inlen))
		return CKR_GENERAL_ERROR;
	if (EVP_CipherFinal_ex(op->ctx, out + n, &m) != 1) {
		log_info("mech", "AES-CBC-PAD: bad padding");
		return CKR_ENCRYPTED_DATA_INVALID;
	}
	*outlen = n + (size_t)m;
	return CKR_OK;
}

static CK_RV cbcpad_oneshot(cipher_op *op, const uint8_t *in, size_t inlen,
			    uint8_t *out, CK_ULONG *outlen)
{
	CK_RV rv;
	size_t got;
	if (op->encrypt) {
		if (len_rule(inlen - inlen % AES_BLOCK + AES_BLOCK, out, outlen, &rv))
			return rv;
		GUARD(cbcpad_run(op, in, inlen, out, &got));
		*outlen = got;
		return CKR_OK;
	}
	if (inlen == 0 || inlen % AES_BLOCK)
		return CKR_ENCRYPTED_DATA_LEN_RANGE;
	/* The exact length is known only after decryption: a query gets
	 * the upper bound (PKCS #11 5.2 allows "somewhat larger"). */
	if (!out) {
		*outlen = inlen;
		return CKR_OK;
	}
	if (*outlen >= inlen) {
		rv = cbcpad_run(op, in, inlen, out, &got);
		if (rv != CKR_OK)
			OPENSSL_cleanse(out, inlen);
		else
			*outlen = got;
		return rv;
	}
	uint8_t *tmp = sec_alloc(inlen);
	if (!tmp)
		return CKR_HOST_MEMORY;
	rv = cbcpad_run(op, in, inlen, tmp, &got);
	if (rv == CKR_OK && *outlen < got) {
		op->ctx_fresh = false; /* the retry re-runs from the start */
		rv = CKR_BUFFER_TOO_SMALL;
	} else if (rv == CKR_OK) {
		memcpy(out, tmp, got);
	}
	*outlen = got;
	sec_free(tmp);
	return rv;
}

static CK_RV cbcpad_update(cipher_op *op, const uint8_t *in, size_t inlen,
			   uint8_t *out, CK_ULONG *outlen)
{
	CK_RV rv;
	size_t t;
	if (!size_add(op->buf.len, inlen, &t))
		return CKR_DATA_LEN_RANGE;
	size_t need = t - t % AES_BLOCK;
	/* Decryption keeps the last whole block back: it may be padding. */
	if (!op->encrypt && t && t % AES_BLOCK == 0)
		need = t - AES_BLOCK;
	if (len_rule(need, out, outlen, &rv))
		return rv;
	GUARD(stream_start(op));
	op->ctx_fresh = false;
	size_t n;
	if (!evp_update(op->ctx, out, &n, in, inlen))
		return CKR_GENERAL_ERROR;
	op->buf.len = t - n;
	*outlen = n;
	return CKR_OK;
}

static CK_RV cbcpad_final(cipher_op *op, uint8_t *out, CK_ULONG *outlen)
{
	CK_RV rv;
	int m = 0;
	uint8_t tail[AES_BLOCK];
	if (op->encrypt) {
		if (len_rule(AES_BLOCK, out, outlen, &rv))
			return rv;
		GUARD(stream_start(op));
		if (EVP_CipherFinal_ex(op->ctx, out, &m) != 1)
			return CKR_GENERAL_ERROR;
		*outlen = (CK_ULONG)m;
		return CKR_OK;
	}
	if (op->buf.len != AES_BLOCK)
		return CKR_ENCRYPTED_DATA_LEN_RANGE;
	/* Decrypt the held block once, into a private buffer, then answer
	 * length queries exactly. */
	if (!op->tail_done) {
		GUARD(stream_start(op));
		if (EVP_CipherFinal_ex(op->ctx, tail, &m) != 1) {
			OPENSSL_cleanse(tail, sizeof(tail));
			log_info("mech", "AES-CBC-PAD: bad padding");
			return CKR_ENCRYPTED_DATA_INVALID;
		}
		memcpy(op->tail, tail, (size_t)m);
		OPENSSL_cleanse(tail, sizeof(tail));
		op->tail_len = (size_t)m;
		op->tail_done = true;
	}
	if (len_rule(op->tail_len, out, outlen, &rv))
		return rv;
	memcpy(out, op->tail, op->tail_len);
	*outlen = op->tail_len;
	return CKR_OK;
}

/* --- AES key wrap: RFC 3394, RFC 5649, and RFC 3394 over PKCS #7 -------- */

static bool is_kw(const cipher_op *op)
{
	return op->mech->type == CKM_AES_KEY_WRAP;
}
static bool is_kwp(const cipher_op *op)
{
	return op->mech->type == CKM_AES_KEY_WRAP_KWP;
}

static CK_RV kw_run(cipher_op *op, const uint8_t *in, size_t inlen,
		    uint8_t *out, size_t *outlen)
{
	size_t n;
	int m = 0;
	GUARD(rekey(op));
	op->ctx_fresh = false;
	if (inlen > INT_MAX / 2)
		return op->encrypt ? CKR_DATA_LEN_RANGE : CKR_ENCRYPTED_DATA_LEN_RANGE;
	if (!evp_update(op->ctx, out, &n, in, inlen) ||
	    EVP_CipherFinal_ex(op->ctx, out + n, &m) != 1) {
		if (op->encrypt)
			return CKR_GENERAL_ERROR;
		log_info("mech", "AES key unwrap: integrity check failed");
		return CKR_ENCRYPTED_DATA_INVALID;
	}
	*outlen = n + (size_t)m;
	return CKR_OK;
}

static CK_RV kw_oneshot(cipher_op *op, const uint8_t *in, size_t inlen,
			uint8_t *out, CK_ULONG *outlen)
{
	CK_RV rv;
	size_t got;
	bool pad7 = !is_kw(op) && !is_kwp(op);
	if (op->encrypt) {
		size_t plen = inlen;
		if (pad7)
			plen = inlen - inlen % KW_SEMI + KW_SEMI;
		if (is_kwp(op) ? inlen == 0 : (plen % KW_SEMI || plen < 2 * KW_SEMI))
			return CKR_DATA_LEN_RANGE;
		size_t need = (plen + KW_SEMI - 1) / KW_SEMI * KW_SEMI + KW_SEMI;
		if (len_rule(need, out, outlen, &rv))
			return rv;
		if (!pad7) {
			GUARD(kw_run(op, in, inlen, out, &got));
		} else {
			uint8_t *tmp = sec_alloc(plen);
			if (!tmp)
				return CKR_HOST_MEMORY;
			memcpy(tmp, in, inlen);
			memset(tmp + inlen, (int)(plen - inlen), plen - inlen);
			rv = kw_run(op, tmp, plen, out, &got);
			sec_free(tmp);
			GUARD(rv);
		}
		*outlen = got;
		return CKR_OK;
	}
	if (inlen % KW_SEMI || inlen < (is_kwp(op) ? 2 : 3) * KW_SEMI)
		return CKR_ENCRYPTED_DATA_LEN_RANGE;
	size_t upper = inlen - KW_SEMI;
	if (!out) {
		*outlen = upper;
		return CKR_OK;
	}
	uint8_t *tmp = sec_alloc(upper);
	if (!tmp)
		return CKR_HOST_MEMORY;
	rv = kw_run(op, in, inlen, tmp, &got);
	if (rv == CKR_OK && pad7) {
		uint8_t pv = got ? tmp[got - 1] : 0;
		bool okpad = pv >= 1 && pv <= KW_SEMI && pv <= got;
		for (size_t i = 0; okpad && i < pv; i++)
			okpad = tmp[got - 1 - i] == pv;
		if (!okpad) {
			log_info("mech", "AES key wrap pad: bad PKCS #7 padding");
			rv = CKR_ENCRYPTED_DATA_INVALID;
		} else {
			got -= pv;
		}
	}
	if (rv == CKR_OK && *outlen < got) {
		rv = CKR_BUFFER_TOO_SMALL;
		*outlen = got;
	} else if (rv == CKR_OK) {
		memcpy(out, tmp, got);
		*outlen = got;
	}
	sec_free(tmp);
	return rv;
}

/* Key wrap is single-part by nature: parts are gathered and processed at
 * Final, so multi-part callers still work. */
static CK_RV hold_update(cipher_op *op, const uint8_t *in, size_t inlen,
			 uint8_t *out, CK_ULONG *outlen)
{
	CK_RV rv;
	if (len_rule(0, out, outlen, &rv))
		return rv;
	if (!dbuf_add(&op->buf, in, inlen))
		return op->buf.failed && op->buf.len + inlen > HOLD_MAX
			       ? (op->encrypt ? CKR_DATA_LEN_RANGE
					      : CKR_ENCRYPTED_DATA_LEN_RANGE)
			       : CKR_HOST_MEMORY;
	*outlen = 0;
	return CKR_OK;
}

static CK_RV hold_final(cipher_op *op, uint8_t *out, CK_ULONG *outlen)
{
	return op->impl->oneshot(op, op->buf.p ? op->buf.p : (uint8_t *)"",
					 op->buf.len, out, outlen);
}

/* --- remote: the provider's envelope encryption on a KMS key ----------- */

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

CK_RV cipher_op_init_remote(cipher_op *op, const mech_info *mi,
			    const CK_MECHANISM *m, const kms_port *port, const char *key_id,
			    bool encrypt)
{
	memset(op, 0, sizeof(*op));
	dbuf_init(&op->buf, KMS_MAX_DATA * 4, true);
	GUARD(mi->check_param(m));
	if (!port || !port->tok || !port->call || !port->max)
		return CKR_GENERAL_ERROR;
	const CK_P11KMS_KMS_PARAMS *p = m->pParameter;
	if (p && p->ulContextLen) {
		if (!(op->kms_ctx = malloc(p->ulContextLen)))
			return CKR_HOST_MEMORY;
		memcpy(op->kms_ctx, p->pContext, p->ulContextLen);
		op->kms_ctxlen = p->ulContextLen;
	}
	op->mech = mi;
	op->impl = mi->cipher;
	op->encrypt = encrypt;
	op->kms = *port;
	op->kms_key_id = key_id;
	return CKR_OK;
}

/* --- standard mechanisms run by the KMS on typed KMS keys ---------------- */
/* The key stays in the KMS; the algorithm and its output format are the
 * standard ones (docs/REMOTE.md). The module checks parameters and lengths
 * here so that a bad call costs no round trip. */

#define KMS_STD_MAX (64u * 1024) /* input the KMSs accept for these */

static const cipher_impl kmsstd_impl;

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

static CK_RV param_oaep(const CK_MECHANISM *m)
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
		const CK_GCM_PARAMS *p = m->pParameter;
		if (p->ulIvLen != REMOTE_GCM_IV_LEN || p->ulTagBits != REMOTE_GCM_TAG_LEN * 8) {
			log_info("mech", "AES-GCM on a KMS key: the KMS makes 96-bit IVs and "
					 "128-bit tags (ulIvLen %lu, ulTagBits %lu given)",
				 (unsigned long)p->ulIvLen, (unsigned long)p->ulTagBits);
			return CKR_MECHANISM_PARAM_INVALID;
		}
		GUARD(init_gcm(op, m));
		if (encrypt)
			op->kms_iv_out = p->pIv; /* receives the KMS's IV */
		op->kms_alg = RALG_AES_GCM;
		break;
	}
	default:
		return CKR_MECHANISM_INVALID;
	}
	op->mech = mi;
	op->impl = &kmsstd_impl;
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
	if (rv == CKR_OK && op->kms_pad7 && !op->encrypt) {
		uint8_t *p = *res;
		size_t got = *reslen;
		uint8_t pv = got ? p[got - 1] : 0;
		bool okpad = pv >= 1 && pv <= KW_SEMI && pv <= got;
		for (size_t i = 0; okpad && i < pv; i++)
			okpad = p[got - 1 - i] == pv;
		if (!okpad) {
			log_info("mech", "AES key wrap pad: bad PKCS #7 padding");
			sec_free(*res);
			*res = NULL;
			return CKR_ENCRYPTED_DATA_INVALID;
		}
		*reslen = got - pv;
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

/* --- the table ------------------------------------------------------------ */

static const cipher_impl gcm_impl = {init_gcm, gcm_oneshot, gcm_update, gcm_final};
static const cipher_impl ecb_impl = {NULL, block_oneshot, block_update, block_final};
static const cipher_impl cbc_impl = {init_iv, block_oneshot, block_update, block_final};
static const cipher_impl cbcpad_impl = {init_iv, cbcpad_oneshot, cbcpad_update,
					cbcpad_final};
static const cipher_impl kw_impl = {init_iv, kw_oneshot, hold_update, hold_final};
static const cipher_impl ctr_impl = {init_ctr, ctr_oneshot, ctr_update, ctr_final};
static const cipher_impl remote_impl = {NULL, remote_oneshot, hold_update, hold_final};
static const cipher_impl kmsstd_impl = {NULL, kmsstd_oneshot, hold_update, hold_final};

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
#define DIGEST(t, digest)                                                      \
	{.type = t, .name = #t, .flags = CKF_DIGEST, .check_param = param_none, \
	 .mac = MAC_DIGEST, .md = digest}

static const mech_info mech_table[] = {
	KEYGEN(CKM_AES_KEY_GEN, 16, 32, CKK_AES, false),
	KEYGEN(CKM_GENERIC_SECRET_KEY_GEN, 8, 4096, CKK_GENERIC_SECRET, true),
	CIPHER(CKM_AES_ECB, ENC_DEC, param_none, &ecb_impl),
	CIPHER(CKM_AES_CBC, ENC_DEC | WRAPS, param_iv16, &cbc_impl),
	CIPHER(CKM_AES_CBC_PAD, ENC_DEC | WRAPS, param_iv16, &cbcpad_impl),
	CIPHER(CKM_AES_CTR, ENC_DEC, param_ctr, &ctr_impl),
	CIPHER(CKM_AES_GCM,
	       ENC_DEC | WRAPS | CKF_MESSAGE_ENCRYPT | CKF_MESSAGE_DECRYPT |
		       CKF_MULTI_MESSAGE,
	       param_gcm, &gcm_impl),
	CIPHER(CKM_AES_KEY_WRAP, ENC_DEC | WRAPS, param_kw, &kw_impl),
	CIPHER(CKM_AES_KEY_WRAP_PAD, ENC_DEC | WRAPS, param_kw, &kw_impl),
	CIPHER(CKM_AES_KEY_WRAP_KWP, ENC_DEC | WRAPS, param_kwp, &kw_impl),
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
	 .check_param = param_oaep, .cipher = &kmsstd_impl, .kms_only = true,
	 .key_bits = true},
	{.type = CKM_P11KMS_KMS_ENVELOPE, .name = "CKM_P11KMS_KMS_ENVELOPE",
	 .flags = ENC_DEC | WRAPS, .key_type = CKK_P11KMS_KMS,
	 .check_param = param_kms, .cipher = &remote_impl, .remote = true},
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

static cipher_id cipher_for(CK_MECHANISM_TYPE t)
{
	switch (t) {
	case CKM_AES_ECB:
		return CIPH_AES_ECB;
	case CKM_AES_CBC:
	case CKM_AES_CBC_PAD:
		return CIPH_AES_CBC;
	case CKM_AES_GCM:
		return CIPH_AES_GCM;
	case CKM_AES_KEY_WRAP_KWP:
		return CIPH_AES_WRAP_PAD;
	case CKM_AES_CTR:
		return CIPH_AES_CTR;
	default:
		return CIPH_AES_WRAP;
	}
}

CK_RV cipher_op_init(cipher_op *op, const mech_info *mi, const CK_MECHANISM *m,
		     const uint8_t *key, size_t keylen, bool encrypt)
{
	memset(op, 0, sizeof(*op));
	CK_RV rv = mi->check_param(m);
	if (rv != CKR_OK) {
		/* Nothing was started: the session stays free for another init. */
		log_info("mech", "%s: bad mechanism parameter", mi->name);
		return rv;
	}
	op->mech = mi;
	op->impl = mi->cipher;
	op->encrypt = encrypt;
	/* What GCM decryption holds back is ciphertext: ordinary memory, which
	 * grows without mapping locked pages. Key wrap holds key bytes. */
	dbuf_init(&op->buf, HOLD_MAX, mi->type != CKM_AES_GCM);
	op->key = sec_dup(key, keylen);
	op->keylen = keylen;
	op->ctx = EVP_CIPHER_CTX_new();
	if (!op->key || !op->ctx) {
		cipher_op_free(op);
		return CKR_HOST_MEMORY;
	}
	if (mi->cipher->init && (rv = mi->cipher->init(op, m)) != CKR_OK) {
		cipher_op_free(op);
		return rv;
	}
	const EVP_CIPHER *c = crypto_cipher(cipher_for(mi->type), keylen);
	bool ok = c && EVP_CipherInit_ex2(op->ctx, c, NULL, NULL, encrypt, NULL) == 1;
	if (ok && op->gcm_iv)
		ok = EVP_CIPHER_CTX_ctrl(op->ctx, EVP_CTRL_GCM_SET_IVLEN,
					 (int)op->gcm_ivlen, NULL) == 1;
	const uint8_t *iv = op->gcm_iv ? op->gcm_iv : op->ivlen ? op->iv : NULL;
	if (ok)
		ok = EVP_CipherInit_ex2(op->ctx, NULL, op->key, iv, encrypt, NULL) == 1;
	if (ok && (mi->type == CKM_AES_ECB || mi->type == CKM_AES_CBC))
		EVP_CIPHER_CTX_set_padding(op->ctx, 0);
	size_t n;
	if (ok && op->aadlen)
		ok = evp_update(op->ctx, NULL, &n, op->aad, op->aadlen);
	if (!ok) {
		cipher_op_free(op);
		return CKR_GENERAL_ERROR;
	}
	op->ctx_fresh = true;
	return CKR_OK;
}

void cipher_op_free(cipher_op *op)
{
	EVP_CIPHER_CTX_free(op->ctx);
	sec_free(op->key);
	free(op->gcm_iv);
	free(op->aad);
	free(op->kms_ctx);
	sec_free(op->kms_in);
	sec_free(op->kms_res);
	dbuf_free(&op->buf);
	OPENSSL_cleanse(op, sizeof(*op));
}

bool cipher_op_active(const cipher_op *op)
{
	return op->mech != NULL;
}
