/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Helpers shared by the files of the token model (token.c, pin.c, seal.c,
 * records.c, kms.c, revalidate.c). Not for module/: it goes through
 * token.h.
 */
#ifndef P11KMS_TOKEN_PRIV_H
#define P11KMS_TOKEN_PRIV_H

#include "slots.h"

/* A store error: remembered as t's last failure, mapped to a CKR. */
CK_RV store_rv(token_t *t, p11k_err e);
/* The same in a job's publish: a busy store is SLOTS_RETRY. */
CK_RV publish_rv(token_t *t, p11k_err e);
/* Big-endian u32 meta values (the PIN failure counters). */
uint32_t get_u32(const uint8_t *p, size_t n);
P11K_WUR p11k_err put_u32(store_t *s, const char *name, uint32_t v);
/* The AAD of an object record's sealed part: its uid and public part. */
bool record_aad(const uint8_t uid[16], const uint8_t *pub, size_t publen, dbuf_t *aad);
/* The store's "tk_gen" (0 when absent). */
P11K_WUR p11k_err tk_gen_read(token_t *t, uint32_t *gen);
/* Reload t's cached metadata from the store. */
CK_RV load_meta(token_t *t);
/* Remember and log a provider failure; needs the lock (t->last). */
void note_provider_error(token_t *t, const provider_status *st, const char *what);
/* Replace the token key (takes tk, may be NULL) and bump tk_epoch. */
void set_tk_inlock(token_t *t, uint8_t *tk);

#endif
