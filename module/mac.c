/* SPDX-License-Identifier: Apache-2.0 */
/* Digests, HMAC and CMAC for C_Digest*, C_Sign* and C_Verify*, from the
 * mechanism table, on the module's private OpenSSL library context. */
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/params.h>

#include "common/crypto.h"
#include "common/log.h"
#include "mech.h"

bool mac_op_active(const mac_op *op)
{
	return op->mech != NULL;
}

static bool asym(const mac_op *op)
{
	return op->mech && op->mech->mac == MAC_ASYM;
}

void mac_op_free(mac_op *op)
{
	EVP_MD_CTX_free(op->md);
	EVP_MAC_CTX_free(op->mac);
	EVP_PKEY_free(op->pub);
	dbuf_free(&op->held);
	memset(op, 0, sizeof(*op));
}

CK_RV mac_op_init(mac_op *op, const mech_info *mi, const CK_MECHANISM *m,
		  const uint8_t *key, size_t keylen)
{
	memset(op, 0, sizeof(*op));
	CK_RV rv = mi->check_param(m);
	if (rv != CKR_OK) {
		log_info("mech", "%s: bad mechanism parameter", mi->name);
		return rv;
	}
	OSSL_LIB_CTX *lc = crypto_libctx();
	bool ok = false;
	size_t full = 0;
	if (mi->mac == MAC_DIGEST) {
		EVP_MD *md = EVP_MD_fetch(lc, mi->md, NULL);
		op->md = EVP_MD_CTX_new();
		ok = md && op->md && EVP_DigestInit_ex2(op->md, md, NULL) == 1;
		full = md ? (size_t)EVP_MD_get_size(md) : 0;
		EVP_MD_free(md);
	} else {
		EVP_MAC *mac = EVP_MAC_fetch(lc, mi->mac == MAC_HMAC ? "HMAC" : "CMAC", NULL);
		op->mac = mac ? EVP_MAC_CTX_new(mac) : NULL;
		EVP_MAC_free(mac);
		const char *cipher = keylen == 16   ? "AES-128-CBC"
				     : keylen == 24 ? "AES-192-CBC"
						    : "AES-256-CBC";
		OSSL_PARAM params[2];
		params[0] = mi->mac == MAC_HMAC
				    ? OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_DIGEST,
								       (char *)mi->md, 0)
				    : OSSL_PARAM_construct_utf8_string(OSSL_MAC_PARAM_CIPHER,
								       (char *)cipher, 0);
		params[1] = OSSL_PARAM_construct_end();
		ok = op->mac && EVP_MAC_init(op->mac, key, keylen, params) == 1;
		if (ok)
			full = EVP_MAC_CTX_get_mac_size(op->mac);
	}
	if (!ok) {
		mac_op_free(op);
		return CKR_GENERAL_ERROR;
	}
	op->outlen = full;
	if (mi->general) {
		CK_MAC_GENERAL_PARAMS want = *(CK_MAC_GENERAL_PARAMS *)m->pParameter;
		/* A MAC shorter than this is not worth having (HMAC: RFC 2104 §5
		 * advises at least half; CMAC: SP 800-38B allows 64 bits). */
		size_t min = mi->mac == MAC_CMAC ? 8 : full / 2;
		if (want > full || want < min) {
			log_info("mech", "%s: output length %lu outside %zu..%zu",
				 mi->name, (unsigned long)want, min, full);
			mac_op_free(op);
			return CKR_MECHANISM_PARAM_INVALID;
		}
		op->outlen = want;
	}
	op->mech = mi;
	return CKR_OK;
}

CK_RV mac_update(mac_op *op, const uint8_t *in, size_t inlen)
{
	if (asym(op))
		return sign_update(op, in, inlen);
	bool ok = op->md ? EVP_DigestUpdate(op->md, in, inlen) == 1
			 : EVP_MAC_update(op->mac, in, inlen) == 1;
	return ok ? CKR_OK : CKR_GENERAL_ERROR;
}

static CK_RV compute(mac_op *op, uint8_t *full, size_t *n)
{
	unsigned int u = 0;
	bool ok = op->md ? EVP_DigestFinal_ex(op->md, full, &u) == 1
			 : EVP_MAC_final(op->mac, full, n, EVP_MAX_MD_SIZE) == 1;
	if (op->md)
		*n = u;
	return ok ? CKR_OK : CKR_GENERAL_ERROR;
}

CK_RV mac_final(mac_op *op, uint8_t *out, CK_ULONG *outlen)
{
	if (asym(op))
		return sign_final(op, out, outlen);
	if (!out) {
		*outlen = op->outlen;
		return CKR_OK;
	}
	if (*outlen < op->outlen) {
		*outlen = op->outlen;
		return CKR_BUFFER_TOO_SMALL;
	}
	uint8_t full[EVP_MAX_MD_SIZE];
	size_t n = 0;
	GUARD(compute(op, full, &n));
	memcpy(out, full, op->outlen);
	*outlen = op->outlen;
	OPENSSL_cleanse(full, sizeof(full));
	return CKR_OK;
}

CK_RV mac_oneshot(mac_op *op, const uint8_t *in, size_t inlen, uint8_t *out,
		  CK_ULONG *outlen)
{
	if (asym(op))
		return sign_oneshot(op, in, inlen, out, outlen);
	if (!out || *outlen < op->outlen)
		return mac_final(op, out, outlen); /* length rules only */
	GUARD(mac_update(op, in, inlen));
	return mac_final(op, out, outlen);
}

CK_RV mac_verify_final(mac_op *op, const uint8_t *sig, size_t siglen)
{
	if (asym(op))
		return sign_verify_final(op, sig, siglen);
	if (siglen != op->outlen)
		return CKR_SIGNATURE_LEN_RANGE;
	uint8_t full[EVP_MAX_MD_SIZE];
	size_t n = 0;
	GUARD(compute(op, full, &n));
	CK_RV rv = CRYPTO_memcmp(full, sig, siglen) == 0 ? CKR_OK : CKR_SIGNATURE_INVALID;
	OPENSSL_cleanse(full, sizeof(full));
	return rv;
}
