/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Tokens: store access, PINs, the sealed token key (TK), login state and
 * token objects. Functions ending in _inlock expect the module lock held;
 * those that may call the KMS say so and drop the lock around the call.
 * docs/ARCHITECTURE.md explains the seal and what each login mode
 * protects against.
 */
#ifndef P11KMS_TOKEN_H
#define P11KMS_TOKEN_H

#include "counter.h"
#include "kms.h"
#include "records.h"
#include "revalidate.h"
#include "seal.h"
#include "slots.h"

/* Open the store if it exists, reload cached metadata when another
 * process wrote. CKR_DEVICE_ERROR for an unusable store. */
CK_RV token_sync_inlock(token_t *t);

CK_RV token_init(token_t *t, const CK_UTF8CHAR *so_pin, CK_ULONG so_len,
		 const CK_UTF8CHAR *label, CK_ULONG *deverr);
CK_RV token_login_inlock(token_t *t, CK_USER_TYPE who, const CK_UTF8CHAR *pin,
			 CK_ULONG len, CK_ULONG *deverr);
CK_RV token_logout_inlock(token_t *t);
CK_RV token_init_pin_inlock(token_t *t, const CK_UTF8CHAR *pin, CK_ULONG len,
			    CK_ULONG *deverr);
CK_RV token_set_pin_inlock(token_t *t, CK_USER_TYPE who, const CK_UTF8CHAR *old,
			   CK_ULONG oldlen, const CK_UTF8CHAR *new_pin,
			   CK_ULONG newlen);
/* Forget login, wipe the key (required mode) and secrets of token objects. */
void token_lock_inlock(token_t *t);

#endif
