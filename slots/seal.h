/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The seal of the token key (TK): a KMS encryption of the TK under the
 * token's sealing key with the token's uuid as encryption context. In
 * login=required mode each seal is further wrapped (AES-256-GCM) by the
 * key derived from the user's or the SO's PIN, one row per role; in
 * login=optional mode there is one row with role "any".
 */
#ifndef P11KMS_SEAL_H
#define P11KMS_SEAL_H

#include "slots.h"

#define TK_LEN 32

void seal_aad(const token_t *t, uint8_t *aad, size_t *len);
void pin_aad(const token_t *t, const char *role, uint8_t *aad, size_t *len);
/* The configured sealing key, or the provider's default. */
const char *seal_key(const token_t *t);
/* KMS-encrypt tk. Called without the lock. */
CK_RV seal_tk(token_t *t, const uint8_t *tk, uint8_t **blob, size_t *bloblen,
	      char *kv, size_t kvlen, CK_ULONG *deverr);
CK_RV unseal_inlock(token_t *t, const char *role, const uint8_t *kek,
		    uint8_t **tk, CK_ULONG *deverr);
/* Build the seal row for role: the KMS blob, PIN-wrapped when kek. */
CK_RV make_seal(token_t *t, const char *role, const uint8_t *kek, uint8_t *kms,
		size_t kmslen, const char *kv, seal_rec *out);

/* The token key for object records. In login=optional mode the first
 * caller unseals it (one KMS call, lock dropped around it); in required
 * mode it is present only while a user or SO is logged in. */
CK_RV token_ensure_tk_inlock(token_t *t, CK_ULONG *deverr);

#endif
