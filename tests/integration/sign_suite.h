/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The signing checks every KMS key pair must pass, whatever the provider
 * (docs/SIGNING.md): each signing mechanism on the key either signs (the
 * signature verifies with C_Verify, with OpenSSL against the key's
 * CKA_PUBLIC_KEY_INFO, and with the provider's own check) or, when the
 * KMS key does not run that algorithm, is refused with the code PKCS #11
 * names; length queries and short buffers cost no KMS call; multi-part
 * signing equals single-part; tampered data and signatures fail.
 */
#ifndef P11KMS_TEST_SIGN_SUITE_H
#define P11KMS_TEST_SIGN_SUITE_H

#include "harness.h"

/* The neutral algorithm names (emuctl_sign.py's): RSA_PKCS1_SHA256,
 * RSA_PKCS1_SHA384, RSA_PKCS1_SHA512, RSA_PSS_SHA256, RSA_PSS_SHA384,
 * RSA_PSS_SHA512, ECDSA_SHA256, ECDSA_SHA384. */
#define SA_PKCS1_256 0x01u
#define SA_PKCS1_384 0x02u
#define SA_PKCS1_512 0x04u
#define SA_PSS_256 0x08u
#define SA_PSS_384 0x10u
#define SA_PSS_512 0x20u
#define SA_ECDSA_256 0x40u
#define SA_ECDSA_384 0x80u
#define SA_RSA_ALL 0x3fu

/* The provider's own check of a signature over a digest (the cloud's SDK
 * or its public key); NULL: none beyond OpenSSL's. Returns true when it
 * verifies. */
typedef bool (*sign_check_fn)(void *arg, const char *alg, const uint8_t *dg, size_t dlen,
			      const uint8_t *sig, size_t siglen);

typedef struct sign_key {
	const char *label;  /* CKA_LABEL of the key pair */
	bool ec;
	unsigned algs;      /* SA_* the KMS key runs */
	sign_check_fn check;
	void *arg;
	/* KMS sign calls so far, or NULL: the suite checks that length
	 * queries and short buffers make none, and a signature one. */
	long (*sign_calls)(void *arg);
} sign_key;

/* Run every check on k through session s (logged in if the token wants). */
void sign_suite_run(CK_SESSION_HANDLE s, const sign_key *k);
/* The key pair's handles. */
void sign_key_pair(CK_SESSION_HANDLE s, const char *label, CK_OBJECT_HANDLE *priv,
		   CK_OBJECT_HANDLE *pub);

#endif
