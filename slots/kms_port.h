/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The KMS port: what module/'s mechanisms call to run an operation in a
 * token's KMS. slots/ makes one per token (token_kms_port); the caller
 * passes it with every remote operation it starts, so "C_Encrypt on a KMS
 * key" reads entry -> mech -> port -> slots -> provider in the code, and a
 * unit test can hand the mechanisms a fake. Every function is called with
 * no lock held.
 */
#ifndef P11KMS_KMS_PORT_H
#define P11KMS_KMS_PORT_H

#include <openssl/evp.h>

#include "common/common.h"
#include "providers/provider.h"

typedef struct kms_port {
	void *tok; /* the token; NULL: no port (a local operation) */
	/* CKM_P11KMS_KMS_ENVELOPE on key_id: output in secure memory. */
	CK_RV (*call)(void *tok, bool encrypt, const char *key_id, const uint8_t *ctx,
		      size_t ctxlen, const uint8_t *in, size_t inlen, uint8_t **out,
		      size_t *outlen);
	/* The envelope's output bound for inlen bytes of plaintext. */
	size_t (*max)(void *tok, size_t inlen);
	/* A standard mechanism on configured key idx (docs/REMOTE.md). */
	CK_RV (*std)(void *tok, size_t idx, remote_req *r, uint8_t **out, size_t *outlen);
	/* The RSA modulus length of configured key idx, in bytes. */
	CK_RV (*modlen)(void *tok, size_t idx, size_t *modlen);
	/* Sign a digest with asymmetric key idx (slots/asym.h): *sig malloc'd,
	 * RSA the modulus' size, ECDSA r||s, checked against the public key. */
	CK_RV (*sign)(void *tok, size_t idx, sign_alg alg, const uint8_t *dg, size_t dlen,
		      uint8_t **sig, size_t *siglen);
	/* Key idx's public key (a reference: EVP_PKEY_free it) and the
	 * signing algorithms the KMS lets it run (0: it does not sign). */
	CK_RV (*pubkey)(void *tok, size_t idx, EVP_PKEY **pk, unsigned *sign_algs);
} kms_port;

#endif
