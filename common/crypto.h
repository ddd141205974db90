/* SPDX-License-Identifier: Apache-2.0 */
/*
 * OpenSSL in a private library context holding only the default provider
 * (DESIGN.md section 7): a host that loads this module through OpenSSL
 * (libp11, pkcs11-provider) is never re-entered by the module's own AES.
 * Ciphers are fetched once at initialization.
 */
#ifndef P11KMS_CRYPTO_H
#define P11KMS_CRYPTO_H

#include <openssl/evp.h>

#include "common.h"
#include "err.h"

typedef enum cipher_id {
	CIPH_AES_GCM,
	CIPH_AES_CBC,
	CIPH_AES_ECB,
	CIPH_AES_CTR,
	CIPH_AES_WRAP,
	CIPH_AES_WRAP_PAD,
	CIPH__COUNT
} cipher_id;

#define GCM_NONCE_LEN 12
#define GCM_TAG_LEN 16

P11K_WUR bool crypto_init(void);
void crypto_fini(void);
/* pthread_atfork child (module/entry.c): abandon the parent's context
 * without touching it, so crypto_init makes a new one. */
void crypto_fork_child(void);
OSSL_LIB_CTX *crypto_libctx(void);
/* The cipher for a mode and a key length of 16, 24 or 32 bytes. */
const EVP_CIPHER *crypto_cipher(cipher_id id, size_t keylen);
P11K_WUR bool crypto_random(void *p, size_t n);

/* AES-256-GCM for records and seals: out = nonce | ciphertext | tag,
 * malloc'd. The plaintext of open is secure memory. */
P11K_WUR p11k_err gcm_seal(const uint8_t key[32], const uint8_t *aad,
			   size_t aadlen, const uint8_t *pt, size_t ptlen,
			   uint8_t **out, size_t *outlen);
P11K_WUR p11k_err gcm_open(const uint8_t key[32], const uint8_t *aad,
			   size_t aadlen, const uint8_t *in, size_t inlen,
			   uint8_t **pt, size_t *ptlen);

/* An ECDSA-Sig-Value (SEQUENCE {r, s}, strict DER) -> r||s, each half
 * bytes big-endian, left-padded; false when it is not one or r or s is 0
 * or wider than half. */
P11K_WUR bool ecdsa_der_to_rs(const uint8_t *der, size_t len, size_t half, uint8_t *rs);
/* r||s (2*half bytes) -> DER, malloc'd; for tests and verifiers. */
P11K_WUR bool ecdsa_rs_to_der(const uint8_t *rs, size_t half, uint8_t **der, size_t *derlen);
/* A public key from DER SubjectPublicKeyInfo, in the module's context. */
EVP_PKEY *crypto_pubkey_from_spki(const uint8_t *spki, size_t len);

#endif
