/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The internal error vocabulary below the PKCS #11 layer (providers, the
 * store, sealing). Defined once; mapped to CKR codes and to the session's
 * ulDeviceError in one place (err.c), by switches without a default so
 * the compiler points at any gap.
 */
#ifndef P11KMS_ERR_H
#define P11KMS_ERR_H

#include "common.h"

typedef enum p11k_err {
	P11K_OK = 0,
	P11K_ERR_NOMEM,
	P11K_ERR_KEY_DISABLED,      /* KMS: key disabled, pending deletion */
	P11K_ERR_KEY_NOT_FOUND,     /* KMS: no such key / version destroyed */
	P11K_ERR_ACCESS_DENIED,     /* KMS: credentials refused, or a local
				     * key file we must not use */
	P11K_ERR_UNREACHABLE,       /* transport failure, timeout */
	P11K_ERR_TLS,               /* the server's certificate could not be
				     * verified (or the CA bundle not read):
				     * a configuration fault, never retried
				     * and never "unreachable" */
	P11K_ERR_THROTTLED,         /* rate limited after retries */
	P11K_ERR_INVALID_CIPHERTEXT,/* blob does not decrypt / authenticate */
	P11K_ERR_BAD_REPLY,         /* malformed or out-of-bounds response */
	P11K_ERR_KEY_TYPE,          /* the KMS key cannot run the algorithm */
	P11K_ERR_INTERNAL,          /* a bug or an OpenSSL failure */
	P11K_ERR_STORE,             /* store I/O, corruption, schema */
	P11K_ERR_STORE_BUSY,        /* store locked by another process too long */
} p11k_err;

CK_RV p11k_err_to_ckr(p11k_err e);
CK_ULONG p11k_err_to_deverr(p11k_err e);
const char *p11k_err_name(p11k_err e);

#endif
