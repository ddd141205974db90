/* SPDX-License-Identifier: Apache-2.0 */
/*
 * KMS asymmetric keys ("type": "rsa" or "ec", docs/SIGNING.md): the public
 * half, read from the KMS once per process the first time anything needs
 * it (never at C_Initialize), the role the KMS's answer decides, signing
 * (each signature checked here against that public key before a caller
 * sees it) and verification, which never needs the KMS.
 */
#ifndef P11KMS_ASYM_H
#define P11KMS_ASYM_H

#include <openssl/evp.h>

#include "slots.h"

typedef struct kms_asym {
	bool known;          /* the KMS answered; the rest is valid */
	unsigned uses;       /* ASYM_USE_* as the KMS says */
	unsigned sign_algs;  /* SALG_BIT()s the KMS accepts */
	EVP_PKEY *pub;
	char version[512];   /* the version signatures are made with */
} kms_asym;

/* What a signing algorithm is made of. */
typedef struct salg_facts {
	const char *md;      /* OpenSSL digest name */
	size_t dlen;         /* digest bytes */
	bool pss, ecdsa;     /* else RSA PKCS #1 v1.5 */
	size_t ec_half;      /* ECDSA: bytes of r (and of s) */
} salg_facts;

/* NULL for an unknown algorithm. */
const salg_facts *salg_info(sign_alg a);

/* Check a signature over a digest (ECDSA: r||s); no KMS. */
bool asym_verify(EVP_PKEY *pk, sign_alg alg, const uint8_t *dg, size_t dlen,
		 const uint8_t *sig, size_t siglen);
/* CKM_RSA_PKCS: a PKCS #1 v1.5 signature block holding exactly in. */
bool asym_verify_pkcs1_raw(EVP_PKEY *pk, const uint8_t *in, size_t inlen,
			   const uint8_t *sig, size_t siglen);
/* Bytes of a signature of pk: RSA the modulus', ECDSA r||s. */
size_t asym_sig_len(EVP_PKEY *pk);

CK_RV token_kms_asym_init_inlock(token_t *t);
void token_kms_asym_free_inlock(token_t *t);
/* Ask the KMS for key idx's public half unless known; no lock held. Sets
 * the key objects' public attributes and, when the configuration left it
 * open, the role attributes (docs/SIGNING.md, "Which role"). */
CK_RV token_kms_asym_resolve(token_t *t, size_t idx);
bool token_kms_asym_known_inlock(const token_t *t, size_t idx);

/* The port's (kms_port.h). No lock held. */
CK_RV token_kms_sign(void *tok, size_t idx, sign_alg alg, const uint8_t *dg, size_t dlen,
		     uint8_t **sig, size_t *siglen);
CK_RV token_kms_pubkey(void *tok, size_t idx, EVP_PKEY **pk, unsigned *sign_algs);

#endif
