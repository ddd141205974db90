/* SPDX-License-Identifier: Apache-2.0 */
#include "aead.h"

#include <limits.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "cipher.h"
#include "common/crypto.h"
#include "common/log.h"
#include "mech.h"
#include "providers/provider.h"
#include "common/secmem.h"

#define COUNTER_BLOCK 65536 /* counter values reserved per store write */
#define MIN_RANDOM_BITS 64

void msg_op_free(msg_op *op)
{
	EVP_CIPHER_CTX_free(op->ctx);
	sec_free(op->key);
	OPENSSL_cleanse(op, sizeof(*op));
}

CK_RV msg_op_init(msg_op *op, const CK_MECHANISM *m, const uint8_t *key,
		  size_t keylen, bool encrypt, const uint8_t *kid)
{
	memset(op, 0, sizeof(*op));
	/* Parameters come with each message; none (or an empty one) here. */
	if (m->ulParameterLen && !m->pParameter)
		return CKR_MECHANISM_PARAM_INVALID;
	op->key = sec_dup(key, keylen);
	op->keylen = keylen;
	op->ctx = EVP_CIPHER_CTX_new();
	if (!op->key || !op->ctx ||
	    EVP_CipherInit_ex2(op->ctx, crypto_cipher(CIPH_AES_GCM, keylen), op->key,
			       NULL, encrypt, NULL) != 1) {
		msg_op_free(op);
		return CKR_HOST_MEMORY;
	}
	if (kid) {
		memcpy(op->kid, kid, KID_LEN);
		op->has_kid = true;
	}
	op->encrypt = encrypt;
	op->active = true;
	return CKR_OK;
}

CK_RV msg_op_init_kms(msg_op *op, const CK_MECHANISM *m, bool encrypt, const kms_port *port,
		      size_t idx, size_t key_bits)
{
	memset(op, 0, sizeof(*op));
	if (m->ulParameterLen && !m->pParameter)
		return CKR_MECHANISM_PARAM_INVALID;
	op->kms = *port;
	op->kms_idx = idx;
	op->kms_bits = key_bits;
	op->encrypt = encrypt;
	op->active = true;
	return CKR_OK;
}

static CK_RV check_params(const msg_op *op, void *param, CK_ULONG plen,
			  CK_GCM_MESSAGE_PARAMS **out)
{
	if (!param || plen != sizeof(CK_GCM_MESSAGE_PARAMS)) {
		log_info("aead", "a message takes a CK_GCM_MESSAGE_PARAMS of %zu bytes, "
				 "not %lu bytes%s",
			 sizeof(CK_GCM_MESSAGE_PARAMS), (unsigned long)plen,
			 param ? "" : " at NULL");
		return CKR_MECHANISM_PARAM_INVALID;
	}
	CK_GCM_MESSAGE_PARAMS *p = param;
	GUARD(gcm_iv_tag_check(p->pIv, p->ulIvLen, p->ulTagBits));
	const char *bad = !p->pTag				  ? "pTag is NULL"
			  : p->ulIvFixedBits > p->ulIvLen * 8	  ? "more fixed IV bits than bits"
			  : p->ivGenerator > CKG_GENERATE_RANDOM ? "an unknown IV generator"
			  /* Decryption takes the IV the encryption produced. */
			  : !op->encrypt && p->ivGenerator != CKG_NO_GENERATE
				  ? "an IV generator when decrypting"
				  : NULL;
	if (bad) {
		log_info("aead", "CK_GCM_MESSAGE_PARAMS: %s", bad);
		return CKR_MECHANISM_PARAM_INVALID;
	}
	*out = p;
	return CKR_OK;
}

/* Set the generated bits of the IV after its ulIvFixedBits leading bits. */
static void put_bits(uint8_t *iv, size_t ivlen, size_t fixed_bits,
		     const uint8_t *src, size_t src_len)
{
	/* src is big-endian and fills the low (ivlen*8 - fixed_bits) bits. */
	size_t total = ivlen * 8;
	for (size_t bit = fixed_bits; bit < total; bit++) {
		size_t from_end = total - 1 - bit; /* bit index from the LSB */
		size_t sbyte = src_len - 1 - from_end / 8;
		int sbit = (src[sbyte] >> (from_end % 8)) & 1;
		uint8_t mask = (uint8_t)(0x80 >> (bit % 8));
		iv[bit / 8] = sbit ? (uint8_t)(iv[bit / 8] | mask)
				   : (uint8_t)(iv[bit / 8] & ~mask);
	}
}

static CK_RV make_iv(msg_op *op, CK_GCM_MESSAGE_PARAMS *p,
		     counter_reserve_fn reserve, void *rarg)
{
	size_t free_bits = p->ulIvLen * 8 - p->ulIvFixedBits;
	if (p->ivGenerator == CKG_NO_GENERATE)
		return CKR_OK;
	if (p->ivGenerator == CKG_GENERATE_RANDOM || p->ivGenerator == CKG_GENERATE) {
		if (free_bits < MIN_RANDOM_BITS) {
			log_info("aead", "a random IV needs at least %d free bits, not %zu",
				 MIN_RANDOM_BITS, free_bits);
			return CKR_MECHANISM_PARAM_INVALID;
		}
		uint8_t rnd[256];
		size_t n = (free_bits + 7) / 8;
		if (!crypto_random(rnd, n))
			return CKR_FUNCTION_FAILED;
		put_bits(p->pIv, p->ulIvLen, p->ulIvFixedBits, rnd, n);
		return CKR_OK;
	}
	/* CKG_GENERATE_COUNTER */
	if (!op->has_kid || !reserve) {
		log_info("aead", "counter IVs need a key on an initialized, unlocked token");
		return CKR_USER_NOT_LOGGED_IN;
	}
	if (free_bits < 32) {
		log_info("aead", "a counter IV needs at least 32 free bits, not %zu",
			 free_bits);
		return CKR_MECHANISM_PARAM_INVALID;
	}
	if (op->ctr_next == op->ctr_end) {
		GUARD(reserve(rarg, op->kid, COUNTER_BLOCK, &op->ctr_next, &op->ctr_start));
		op->ctr_end = op->ctr_next + COUNTER_BLOCK;
	}
	/* The IV's free bits take the counter's low bits; it is exhausted
	 * when it went round them once since its start. */
	uint64_t c = op->ctr_next++;
	if (free_bits < 64 && (c - op->ctr_start) >> free_bits) {
		log_error("aead", "IV counter exhausted for this key: rotate the key");
		return CKR_FUNCTION_FAILED;
	}
	uint8_t be[8];
	for (int i = 0; i < 8; i++)
		be[i] = (uint8_t)(c >> (56 - 8 * i));
	if (free_bits <= 64) {
		put_bits(p->pIv, p->ulIvLen, p->ulIvFixedBits, be, 8);
	} else {
		/* Zero-extend the counter over a wider field. */
		uint8_t wide[256] = {0};
		size_t n = (free_bits + 7) / 8;
		memcpy(wide + n - 8, be, 8);
		put_bits(p->pIv, p->ulIvLen, p->ulIvFixedBits, wide, n);
	}
	return CKR_OK;
}

static CK_RV start(msg_op *op, CK_GCM_MESSAGE_PARAMS *p, const uint8_t *aad,
		   CK_ULONG aadlen)
{
	int n;
	if (EVP_CipherInit_ex2(op->ctx, NULL, NULL, NULL, op->encrypt, NULL) != 1 ||
	    EVP_CIPHER_CTX_ctrl(op->ctx, EVP_CTRL_GCM_SET_IVLEN, (int)p->ulIvLen, NULL) != 1 ||
	    EVP_CipherInit_ex2(op->ctx, NULL, NULL, p->pIv, op->encrypt, NULL) != 1 ||
	    (aadlen && EVP_CipherUpdate(op->ctx, NULL, &n, aad, (int)aadlen) != 1))
		return CKR_GENERAL_ERROR;
	op->taglen = p->ulTagBits / 8;
	if (!op->encrypt &&
	    EVP_CIPHER_CTX_ctrl(op->ctx, EVP_CTRL_GCM_SET_TAG, (int)op->taglen, p->pTag) != 1)
		return CKR_GENERAL_ERROR;
	return CKR_OK;
}

static CK_RV finish(msg_op *op, CK_GCM_MESSAGE_PARAMS *p, uint8_t *out, size_t done)
{
	uint8_t tail[16];
	int m = 0;
	if (EVP_CipherFinal_ex(op->ctx, tail, &m) != 1) {
		if (out && done)
			OPENSSL_cleanse(out, done);
		log_info("aead", "AES-GCM tag check failed");
		return CKR_ENCRYPTED_DATA_INVALID;
	}
	if (op->encrypt &&
	    EVP_CIPHER_CTX_ctrl(op->ctx, EVP_CTRL_GCM_GET_TAG, (int)op->taglen, p->pTag) != 1)
		return CKR_GENERAL_ERROR;
	return CKR_OK;
}

/* One message through the KMS: ciphertext to out, tag to pTag, and when
 * encrypting the KMS's IV to pIv. */
static CK_RV kms_message(msg_op *op, CK_GCM_MESSAGE_PARAMS *p, const uint8_t *aad,
			 CK_ULONG aadlen, const uint8_t *in, CK_ULONG inlen, uint8_t *out,
			 CK_ULONG *outlen)
{
	uint8_t iv[REMOTE_GCM_IV_LEN];
	uint8_t *res = NULL, *ct = NULL;
	size_t reslen = 0;
	CK_RV rv;
	if (op->encrypt) {
		rv = mech_kms_gcm(&op->kms, op->kms_idx, op->kms_bits, true, aad, aadlen, in,
				  inlen, iv, &res, &reslen);
	} else {
		if (!(ct = malloc(inlen + REMOTE_GCM_TAG_LEN)))
			return CKR_HOST_MEMORY;
		if (inlen)
			memcpy(ct, in, inlen);
		memcpy(ct + inlen, p->pTag, REMOTE_GCM_TAG_LEN);
		memcpy(iv, p->pIv, REMOTE_GCM_IV_LEN);
		rv = mech_kms_gcm(&op->kms, op->kms_idx, op->kms_bits, false, aad, aadlen, ct,
				  inlen + REMOTE_GCM_TAG_LEN, iv, &res, &reslen);
		free(ct);
	}
	if (rv != CKR_OK)
		return rv;
	if (inlen)
		memcpy(out, res, inlen);
	if (op->encrypt) {
		memcpy(p->pTag, res + inlen, REMOTE_GCM_TAG_LEN);
		memcpy(p->pIv, iv, REMOTE_GCM_IV_LEN);
	}
	*outlen = inlen;
	sec_free(res);
	return CKR_OK;
}

/* A single-part message, or a new one, while a multi-part message is
 * under way: refused, the message under way goes on (3.0 5.14). */
static CK_RV not_in_message(const msg_op *op)
{
	if (!op->in_message)
		return CKR_OK;
	log_info("aead", "a multi-part message is under way: finish it with "
			 "CKF_END_OF_MESSAGE first");
	return CKR_OPERATION_ACTIVE;
}

/* The pointer and length arguments of a message call. */
static CK_RV message_args(bool outlen_ok, const uint8_t *aad, CK_ULONG aadlen,
			  const uint8_t *in, CK_ULONG inlen)
{
	const char *bad = !outlen_ok		  ? "the output length pointer is NULL"
			  : aadlen && !aad	  ? "pAssociatedData is NULL"
			  : inlen && !in	  ? "the input is NULL"
			  : aadlen > INT_MAX || inlen > INT_MAX ? "a length is over 2 GiB"
								: NULL;
	if (!bad)
		return CKR_OK;
	log_info("aead", "%s", bad);
	return CKR_ARGUMENTS_BAD;
}

CK_RV msg_oneshot(msg_op *op, void *param, CK_ULONG plen, const uint8_t *aad,
		  CK_ULONG aadlen, const uint8_t *in, CK_ULONG inlen, uint8_t *out,
		  CK_ULONG *outlen, counter_reserve_fn reserve, void *rarg)
{
	CK_GCM_MESSAGE_PARAMS *p;
	GUARD(not_in_message(op));
	GUARD(message_args(outlen != NULL, aad, aadlen, in, inlen));
	GUARD(check_params(op, param, plen, &p));
	if (op->kms.tok && (p->ulIvLen != REMOTE_GCM_IV_LEN || p->ulTagBits != 128 ||
			    (op->encrypt && (p->ivGenerator == CKG_NO_GENERATE ||
					     p->ulIvFixedBits != 0)))) {
		log_info("aead", "AES-GCM on a KMS key: the KMS generates the whole 96-bit "
				 "IV (CKG_GENERATE_RANDOM, no fixed bits) and 128-bit tags");
		return CKR_MECHANISM_PARAM_INVALID;
	}
	/* GCM output is as long as the input; the tag goes to pTag. */
	if (!out) {
		*outlen = inlen;
		return CKR_OK;
	}
	if (*outlen < inlen) {
		*outlen = inlen;
		return CKR_BUFFER_TOO_SMALL;
	}
	if (op->kms.tok)
		return kms_message(op, p, aad, aadlen, in, inlen, out, outlen);
	GUARD(make_iv(op, p, reserve, rarg));
	GUARD(start(op, p, aad, aadlen));
	int n = 0;
	if (inlen && EVP_CipherUpdate(op->ctx, out, &n, in, (int)inlen) != 1)
		return CKR_GENERAL_ERROR;
	GUARD(finish(op, p, out, inlen));
	*outlen = inlen;
	return CKR_OK;
}

CK_RV msg_begin(msg_op *op, void *param, CK_ULONG plen, const uint8_t *aad,
		CK_ULONG aadlen, counter_reserve_fn reserve, void *rarg)
{
	CK_GCM_MESSAGE_PARAMS *p;
	GUARD(not_in_message(op));
	if (op->kms.tok) {
		log_info("aead", "multi-part messages are not offered on KMS keys: each "
				 "message is one KMS call (use C_EncryptMessage)");
		return CKR_FUNCTION_NOT_SUPPORTED;
	}
	GUARD(message_args(true, aad, aadlen, NULL, 0));
	GUARD(check_params(op, param, plen, &p));
	GUARD(make_iv(op, p, reserve, rarg));
	GUARD(start(op, p, aad, aadlen));
	op->cur = p;
	op->in_message = true;
	return CKR_OK;
}

CK_RV msg_next(msg_op *op, void *param, CK_ULONG plen, const uint8_t *in,
	       CK_ULONG inlen, uint8_t *out, CK_ULONG *outlen, CK_FLAGS flags)
{
	if (!op->in_message) {
		log_info("aead", "no multi-part message is begun (C_*MessageBegin)");
		return CKR_OPERATION_NOT_INITIALIZED;
	}
	GUARD(message_args(outlen != NULL, NULL, 0, in, inlen));
	if (param != op->cur || plen != sizeof(CK_GCM_MESSAGE_PARAMS)) {
		log_info("aead", "C_*MessageNext takes the parameter C_*MessageBegin had");
		return CKR_MECHANISM_PARAM_INVALID;
	}
	if (!out) {
		*outlen = inlen;
		return CKR_OK;
	}
	if (*outlen < inlen) {
		*outlen = inlen;
		return CKR_BUFFER_TOO_SMALL;
	}
	int n = 0;
	if (inlen && EVP_CipherUpdate(op->ctx, out, &n, in, (int)inlen) != 1)
		return CKR_GENERAL_ERROR;
	*outlen = (CK_ULONG)n;
	if (!(flags & CKF_END_OF_MESSAGE))
		return CKR_OK;
	op->in_message = false;
	op->cur = NULL;
	/* Decryption: a multi-part message releases its parts before the tag
	 * check (the API's design); a failed check is reported here. */
	return finish(op, param, NULL, 0);
}
