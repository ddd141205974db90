/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The seal of the token key (TK): a KMS encryption of the TK under the
 * token's sealing key with the token's uuid as encryption context. In
 * login=required mode each seal is further wrapped (AES-256-GCM) by the
 * key derived from the user's or the SO's PIN, one row per role; in
 * login=optional mode there is one row with role "any".
 *
 * Unsealing is the three steps of a job (slots.h): prepare copies the
 * seals, the call opens them and asks the KMS, publish notes the outcome.
 */
#ifndef P11KMS_SEAL_H
#define P11KMS_SEAL_H

#include "slots.h"

#define TK_LEN 32

void seal_aad(const uint8_t uuid[16], uint8_t *aad, size_t *len);
void pin_aad(const uint8_t uuid[16], const char *role, uint8_t *aad, size_t *len);
/* The configured sealing key, or the provider's default. */
const char *seal_key(const token_t *t);
/* KMS-encrypt tk for the token uuid. No lock: st says why it failed. */
P11K_WUR p11k_err seal_tk(token_t *t, const uint8_t uuid[16], const uint8_t *tk,
			  uint8_t **blob, size_t *bloblen, char *kv, size_t kvlen,
			  provider_status *st);
/* The CKR of a failed seal_tk for C_InitToken/C_InitPIN; sets *deverr. */
CK_RV seal_rv(p11k_err e, CK_ULONG *deverr);
/* Build the seal row for role: the KMS blob, PIN-wrapped when kek. No
 * lock needed. */
CK_RV make_seal(token_t *t, const uint8_t uuid[16], const char *role, const uint8_t *kek,
		uint8_t *kms, size_t kmslen, const char *kv, seal_rec *out);

typedef struct unseal_job {
	const char *role;
	uint8_t uuid[16];
	seal_rec *seals;
	size_t nseals;
	bool marked;         /* t->unsealing counts this job */
	bool called;         /* unseal_call ran (the PIN was right) */
	bool any, failed;    /* a seal of role was found / the KMS refused */
	provider_status st;  /* the last refusal */
	CK_ULONG deverr;
	uint8_t *tk;         /* the result, secure memory */
} unseal_job;

/* Copy the seals of role (marks t->unsealing). Lock held. */
CK_RV unseal_prepare_inlock(token_t *t, const char *role, unseal_job *u);
/* Open the PIN layer (kek NULL for role "any") and ask the KMS. No lock. */
CK_RV unseal_call(token_t *t, unseal_job *u, const uint8_t *kek);
/* Note the outcome (unmarks t->unsealing; once). Lock held. */
void unseal_publish_inlock(token_t *t, unseal_job *u, CK_ULONG *deverr);
void unseal_job_free(unseal_job *u);

/* The token key for object records. In login=optional mode the first
 * caller unseals it: one KMS call, a job (slots.h). Called with the lock
 * held, returns with it held, releases it for the KMS call: look the
 * session up again afterwards. In required mode the key is present only
 * while a user or SO is logged in. */
CK_RV token_ensure_tk(token_t *t, CK_ULONG *deverr);

#endif
