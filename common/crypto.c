/* SPDX-License-Identifier: Apache-2.0 */
#include "crypto.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/ec.h>
#include <openssl/provider.h>
#include <openssl/x509.h>
#include <openssl/rand.h>

#include "log.h"
#include "secmem.h"

static OSSL_LIB_CTX *libctx;
static OSSL_PROVIDER *defprov;
static EVP_CIPHER *ciphers[CIPH__COUNT][3];

static const char *const cipher_names[CIPH__COUNT][3] = {
	[CIPH_AES_GCM] = {"AES-128-GCM", "AES-192-GCM", "AES-256-GCM"},
	[CIPH_AES_CBC] = {"AES-128-CBC", "AES-192-CBC", "AES-256-CBC"},
	[CIPH_AES_ECB] = {"AES-128-ECB", "AES-192-ECB", "AES-256-ECB"},
	[CIPH_AES_CTR] = {"AES-128-CTR", "AES-192-CTR", "AES-256-CTR"},
	[CIPH_AES_WRAP] = {"AES-128-WRAP", "AES-192-WRAP", "AES-256-WRAP"},
	[CIPH_AES_WRAP_PAD] = {"AES-128-WRAP-PAD", "AES-192-WRAP-PAD",
			       "AES-256-WRAP-PAD"},
};

bool crypto_init(void)
{
	if (libctx)
		return true;
	libctx = OSSL_LIB_CTX_new();
	if (!libctx)
		return false;
	defprov = OSSL_PROVIDER_load(libctx, "default");
	bool ok = defprov != NULL;
	for (int i = 0; ok && i < CIPH__COUNT; i++)
		for (int k = 0; ok && k < 3; k++) {
			ciphers[i][k] = EVP_CIPHER_fetch(libctx, cipher_names[i][k], NULL);
			if (!ciphers[i][k]) {
				log_error("crypto", "OpenSSL has no %s", cipher_names[i][k]);
				ok = false;
			}
		}
	if (!ok)
		crypto_fini();
	return ok;
}

void crypto_fini(void)
{
	for (int i = 0; i < CIPH__COUNT; i++)
		for (int k = 0; k < 3; k++) {
			EVP_CIPHER_free(ciphers[i][k]);
			ciphers[i][k] = NULL;
		}
	if (defprov)
		OSSL_PROVIDER_unload(defprov);
	defprov = NULL;
	OSSL_LIB_CTX_free(libctx);
	libctx = NULL;
}

void crypto_fork_child(void)
{
	/* A thread that is gone in the child may have held the context's
	 * locks (its DRBG's, its method store's): the child would hang in
	 * them. Leak the parent's context; crypto_init builds another. */
	libctx = NULL;
	defprov = NULL;
	memset(ciphers, 0, sizeof(ciphers));
}

OSSL_LIB_CTX *crypto_libctx(void)
{
	return libctx;
}

const EVP_CIPHER *crypto_cipher(cipher_id id, size_t keylen)
{
	int k = keylen == 16 ? 0 : keylen == 24 ? 1 : keylen == 32 ? 2 : -1;
	return k < 0 ? NULL : ciphers[id][k];
}

bool crypto_random(void *p, size_t n)
{
	return n == 0 || RAND_bytes_ex(libctx, p, n, 0) == 1;
}

p11k_err gcm_seal(const uint8_t key[32], const uint8_t *aad, size_t aadlen,
		  const uint8_t *pt, size_t ptlen, uint8_t **out, size_t *outlen)
{
	size_t total;
	if (ptlen > INT32_MAX || aadlen > INT32_MAX ||
	    !size_add(ptlen, GCM_NONCE_LEN + GCM_TAG_LEN, &total))
		return P11K_ERR_INTERNAL;
	uint8_t *buf = malloc(total);
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	p11k_err e = (buf && ctx) ? P11K_OK : P11K_ERR_NOMEM;
	int n = 0;
	if (e == P11K_OK && !crypto_random(buf, GCM_NONCE_LEN))
		e = P11K_ERR_INTERNAL;
	if (e == P11K_OK &&
	    (EVP_EncryptInit_ex2(ctx, crypto_cipher(CIPH_AES_GCM, 32), key, buf,
				 NULL) != 1 ||
	     (aadlen && EVP_EncryptUpdate(ctx, NULL, &n, aad, (int)aadlen) != 1) ||
	     EVP_EncryptUpdate(ctx, buf + GCM_NONCE_LEN, &n, pt, (int)ptlen) != 1 ||
	     EVP_EncryptFinal_ex(ctx, buf + GCM_NONCE_LEN + n, &n) != 1 ||
	     EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_GET_TAG, GCM_TAG_LEN,
				 buf + GCM_NONCE_LEN + ptlen) != 1))
		e = P11K_ERR_INTERNAL;
	EVP_CIPHER_CTX_free(ctx);
	if (e != P11K_OK) {
		free(buf);
		return e;
	}
	*out = buf;
	*outlen = total;
	return P11K_OK;
}

p11k_err gcm_open(const uint8_t key[32], const uint8_t *aad, size_t aadlen,
		  const uint8_t *in, size_t inlen, uint8_t **pt, size_t *ptlen)
{
	if (inlen < GCM_NONCE_LEN + GCM_TAG_LEN || inlen > INT32_MAX ||
	    aadlen > INT32_MAX)
		return P11K_ERR_INVALID_CIPHERTEXT;
	size_t clen = inlen - GCM_NONCE_LEN - GCM_TAG_LEN;
	uint8_t *buf = sec_alloc(clen ? clen : 1);
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	p11k_err e = (buf && ctx) ? P11K_OK : P11K_ERR_NOMEM;
	int n = 0, m = 0;
	if (e == P11K_OK &&
	    (EVP_DecryptInit_ex2(ctx, crypto_cipher(CIPH_AES_GCM, 32), key, in,
				 NULL) != 1 ||
	     (aadlen && EVP_DecryptUpdate(ctx, NULL, &n, aad, (int)aadlen) != 1) ||
	     EVP_DecryptUpdate(ctx, buf, &n, in + GCM_NONCE_LEN, (int)clen) != 1 ||
	     EVP_CIPHER_CTX_ctrl(ctx, EVP_CTRL_GCM_SET_TAG, GCM_TAG_LEN,
				 (void *)(in + inlen - GCM_TAG_LEN)) != 1))
		e = P11K_ERR_INTERNAL;
	if (e == P11K_OK && EVP_DecryptFinal_ex(ctx, buf + n, &m) != 1)
		e = P11K_ERR_INVALID_CIPHERTEXT;
	EVP_CIPHER_CTX_free(ctx);
	if (e != P11K_OK) {
		sec_free(buf);
		return e;
	}
	*pt = buf;
	*ptlen = clen;
	return P11K_OK;
}

bool ecdsa_der_to_rs(const uint8_t *der, size_t len, size_t half, uint8_t *rs)
{
	if (!der || len == 0 || len > 2 * half + 16 || half == 0 || half > 66)
		return false;
	const unsigned char *q = der;
	ECDSA_SIG *sig = d2i_ECDSA_SIG(NULL, &q, (long)len);
	bool ok = sig && q == der + len;
	unsigned char *back = NULL;
	/* Strict DER: what we read re-encodes to the same bytes (no
	 * non-minimal lengths or integers). */
	int bn = ok ? i2d_ECDSA_SIG(sig, &back) : 0;
	ok = ok && bn > 0 && (size_t)bn == len && memcmp(back, der, len) == 0;
	OPENSSL_free(back);
	const BIGNUM *r = NULL, *s = NULL;
	if (ok)
		ECDSA_SIG_get0(sig, &r, &s);
	ok = ok && !BN_is_zero(r) && !BN_is_zero(s) && !BN_is_negative(r) && !BN_is_negative(s) &&
	     BN_bn2binpad(r, rs, (int)half) == (int)half &&
	     BN_bn2binpad(s, rs + half, (int)half) == (int)half;
	ECDSA_SIG_free(sig);
	return ok;
}

bool ecdsa_rs_to_der(const uint8_t *rs, size_t half, uint8_t **der, size_t *derlen)
{
	*der = NULL;
	*derlen = 0;
	ECDSA_SIG *sig = ECDSA_SIG_new();
	BIGNUM *r = BN_bin2bn(rs, (int)half, NULL), *s = BN_bin2bn(rs + half, (int)half, NULL);
	bool ok = sig && r && s && ECDSA_SIG_set0(sig, r, s) == 1;
	if (!ok) {
		BN_free(r);
		BN_free(s);
	}
	unsigned char *p = NULL;
	int n = ok ? i2d_ECDSA_SIG(sig, &p) : 0;
	ok = n > 0 && (*der = malloc((size_t)n));
	if (ok) {
		memcpy(*der, p, (size_t)n);
		*derlen = (size_t)n;
	}
	OPENSSL_free(p);
	ECDSA_SIG_free(sig);
	return ok;
}

EVP_PKEY *crypto_pubkey_from_spki(const uint8_t *spki, size_t len)
{
	const unsigned char *p = spki;
	if (!spki || !len || len > 4096)
		return NULL;
	EVP_PKEY *pk = d2i_PUBKEY_ex(NULL, &p, (long)len, crypto_libctx(), NULL);
	if (pk && (size_t)(p - spki) != len) {
		EVP_PKEY_free(pk);
		pk = NULL;
	}
	return pk;
}
