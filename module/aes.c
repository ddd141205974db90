/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The local AES mechanisms on OpenSSL EVP: ECB, CBC, CBC-PAD, CTR, GCM and
 * key wrap (RFC 3394, RFC 5649, RFC 3394 over PKCS #7), single- and
 * multi-part, and cipher_op_init, which starts one on a local key. The
 * table that offers them is in mech.c.
 */
#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "cipher.h"
#include "common/crypto.h"
#include "common/log.h"
#include "common/secmem.h"

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
	unsigned bits = (unsigned)p->ulCounterBits; /* 1..128 (param_ctr) */
	uint64_t hi = 0, lo = 0;
	for (int i = 0; i < 8; i++) {
		hi = hi << 8 | p->cb[i];
		lo = lo << 8 | p->cb[8 + i];
	}
	/* Blocks left, this one included: 2^bits - counter. It exceeds what
	 * any input can use (UINT64_MAX blocks) unless the counter's bits
	 * above the low 64 are all ones, i.e. 2^64 - lo or fewer remain.
	 * OpenSSL increments all 128 bits, so a wrap would carry into the
	 * nonce (bits < 128) or repeat the keystream (bits = 128). */
	if (bits < 64) {
		lo &= ((uint64_t)1 << bits) - 1;
		op->ctr_left = ((uint64_t)1 << bits) - lo;
		return CKR_OK;
	}
	unsigned hb = bits - 64; /* counter bits in hi: 0..64 */
	uint64_t himask = hb == 64 ? UINT64_MAX : ((uint64_t)1 << hb) - 1;
	bool top = (hi & himask) == himask;
	/* 2^64 - lo blocks when top (lo = 0: 2^64, more than any input). */
	op->ctr_left = top && lo ? (uint64_t)0 - lo : UINT64_MAX;
	return CKR_OK;
}

CK_RV init_gcm(cipher_op *op, const CK_MECHANISM *m)
{
	gcm_params p;
	GUARD(gcm_params_read(m, &p));
	op->gcm_ivlen = p.ivlen;
	op->aadlen = p.aadlen;
	op->taglen = p.tagbits / 8;
	/* The usual short IV and AAD need no allocation. */
	op->gcm_iv = op->gcm_ivlen <= sizeof(op->gcm_ivbuf) ? op->gcm_ivbuf
						     : malloc(op->gcm_ivlen);
	op->aad = !op->aadlen			       ? NULL
		  : op->aadlen <= sizeof(op->aadbuf) ? op->aadbuf
						      : malloc(op->aadlen);
	if (!op->gcm_iv || (op->aadlen && !op->aad))
		return CKR_HOST_MEMORY;
	memcpy(op->gcm_iv, p.iv, op->gcm_ivlen);
	if (op->aadlen)
		memcpy(op->aad, p.aad, op->aadlen);
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
	size_t got = 0;
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
	if (rv == CKR_OK && pad7 && !kw_pad7_strip(tmp, &got)) {
		log_info("mech", "AES key wrap pad: bad PKCS #7 padding");
		rv = CKR_ENCRYPTED_DATA_INVALID;
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

/* --- the implementations the table names ------------------------------- */

const cipher_impl aes_gcm_impl = {init_gcm, gcm_oneshot, gcm_update, gcm_final};
const cipher_impl aes_ecb_impl = {NULL, block_oneshot, block_update, block_final};
const cipher_impl aes_cbc_impl = {init_iv, block_oneshot, block_update, block_final};
const cipher_impl aes_cbcpad_impl = {init_iv, cbcpad_oneshot, cbcpad_update,
				      cbcpad_final};
const cipher_impl aes_kw_impl = {init_iv, kw_oneshot, hold_update, hold_final};
const cipher_impl aes_ctr_impl = {init_ctr, ctr_oneshot, ctr_update, ctr_final};

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

CK_RV cipher_op_init_kept(cipher_op *op, cipher_keep *keep, const mech_info *mi,
			  const CK_MECHANISM *m, const uint8_t *key, size_t keylen,
			  bool encrypt)
{
	memset(op, 0, sizeof(*op));
	CK_RV rv = mi->check_param(m);
	if (rv != CKR_OK) {
		/* Nothing was started: the session stays free for another init. */
		log_info("mech", "%s: bad mechanism parameter", mi->name);
		if (keep)
			cipher_keep_free(keep);
		return rv;
	}
	op->mech = mi;
	op->impl = mi->cipher;
	op->encrypt = encrypt;
	/* What GCM decryption holds back is ciphertext: ordinary memory, which
	 * grows without mapping locked pages. Key wrap holds key bytes. */
	dbuf_init(&op->buf, HOLD_MAX, mi->type != CKM_AES_GCM);
	cipher_id cid = cipher_for(mi->type);
	const EVP_CIPHER *c = crypto_cipher(cid, keylen);
	/* Not for key wrap: its default IV is "none given" at init, and a
	 * kept context given none keeps the IV of the operation before (an
	 * explicit CKM_AES_KEY_WRAP IV), so the result would not unwrap. */
	bool wrap = cid == CIPH_AES_WRAP || cid == CIPH_AES_WRAP_PAD;
	bool reuse = keep && keep->ctx && c && !wrap && keep->cipher == c &&
		     keep->encrypt == encrypt;
	size_t set_ivlen = 0; /* the IV length the kept context is set to */
	if (reuse) {
		op->ctx = keep->ctx;
		set_ivlen = keep->gcm_ivlen;
		memset(keep, 0, sizeof(*keep));
	} else {
		if (keep)
			cipher_keep_free(keep);
		op->ctx = EVP_CIPHER_CTX_new();
	}
	op->keylen = keylen;
	op->evp = c;
	if (!op->ctx) {
		cipher_op_free(op);
		return CKR_HOST_MEMORY;
	}
	if (mi->cipher->init && (rv = mi->cipher->init(op, m)) != CKR_OK) {
		cipher_op_free(op);
		return rv;
	}
	bool ok = c && (reuse || EVP_CipherInit_ex2(op->ctx, c, NULL, NULL, encrypt, NULL) == 1);
	if (ok && op->gcm_iv && op->gcm_ivlen != set_ivlen)
		ok = EVP_CIPHER_CTX_ctrl(op->ctx, EVP_CTRL_GCM_SET_IVLEN,
					 (int)op->gcm_ivlen, NULL) == 1;
	const uint8_t *iv = op->gcm_iv ? op->gcm_iv : op->ivlen ? op->iv : NULL;
	if (ok)
		ok = EVP_CipherInit_ex2(op->ctx, NULL, key, iv, encrypt, NULL) == 1;
	/* CBC and CBC-PAD share a cipher, so a kept context may come from
	 * either: its padding is set each time. */
	if (ok && (mi->type == CKM_AES_ECB || mi->type == CKM_AES_CBC ||
		   mi->type == CKM_AES_CBC_PAD))
		EVP_CIPHER_CTX_set_padding(op->ctx, mi->type == CKM_AES_CBC_PAD);
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

CK_RV cipher_op_init(cipher_op *op, const mech_info *mi, const CK_MECHANISM *m,
		     const uint8_t *key, size_t keylen, bool encrypt)
{
	return cipher_op_init_kept(op, NULL, mi, m, key, keylen, encrypt);
}

void cipher_op_end_keep(cipher_op *op)
{
	static const uint8_t zero_key[32];
	cipher_keep k = {0};
	/* A local operation's context: keyed anew with an all-zero key, which
	 * overwrites the key schedule (and GCM's hash key) in place. */
	if (!op->kms.tok && op->ctx && op->evp && op->keylen <= sizeof(zero_key) &&
	    EVP_CipherInit_ex2(op->ctx, NULL, zero_key, NULL, op->encrypt, NULL) == 1) {
		k = (cipher_keep){.ctx = op->ctx, .cipher = op->evp, .encrypt = op->encrypt,
				  .gcm_ivlen = op->gcm_iv ? op->gcm_ivlen : 0};
		op->ctx = NULL;
	}
	cipher_op_free(op);
	op->keep = k;
}
