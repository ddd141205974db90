/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Tokens: store access, PINs, the sealed token key (TK), login state and
 * token objects. Functions ending in _inlock are called with the lock
 * held and never release it. token_init, token_login, token_init_pin and
 * token_set_pin run scrypt and the KMS as jobs (slots.h): called with the
 * lock held, they return with it held and release it in between, so the
 * caller looks its session up again afterwards.
 * docs/ARCHITECTURE.md explains the seal and what each login mode
 * protects against.
 */
#ifndef P11KMS_TOKEN_H
#define P11KMS_TOKEN_H

#include "counter.h"
#include "kms.h"
#include "records.h"
#include "rekey.h"
#include "revalidate.h"
#include "seal.h"
#include "slots.h"

/* Open the store if it exists, reload cached metadata when another
 * process wrote. CKR_DEVICE_ERROR for an unusable store. */
CK_RV token_sync_inlock(token_t *t);

/* C_InitToken (the caller checked that no session is open; publish checks
 * again). */
CK_RV token_init(token_t *t, const CK_UTF8CHAR *so_pin, CK_ULONG so_len,
		 const CK_UTF8CHAR *label, CK_ULONG *deverr);
/* C_Login: CKR_SESSION_CLOSED when every session closed meanwhile. */
CK_RV token_login(token_t *t, CK_USER_TYPE who, const CK_UTF8CHAR *pin, CK_ULONG len,
		  CK_ULONG *deverr);
CK_RV token_logout_inlock(token_t *t);
/* C_InitPIN; may unseal first (token_ensure_tk). */
CK_RV token_init_pin(token_t *t, const CK_UTF8CHAR *pin, CK_ULONG len, CK_ULONG *deverr);
CK_RV token_set_pin(token_t *t, CK_USER_TYPE who, const CK_UTF8CHAR *old, CK_ULONG oldlen,
		    const CK_UTF8CHAR *new_pin, CK_ULONG newlen);
/* Forget login, wipe the key (required mode) and secrets of token objects. */
void token_lock_inlock(token_t *t);

#endif
