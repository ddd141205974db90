/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Rekey: a new token key (TK') for a token, every object record
 * re-encrypted under it, the old key wiped (docs/LIFECYCLE.md, "Rekey").
 *
 * Crash-safe by steps, each one committed: (1) "tk_seal_next" (TK' under
 * KS and X, like tk_seal) and "tk_gen" + 1; (2) the records, in batches,
 * each batch one transaction; (3) in one transaction: every record checked
 * (and re-encrypted if another process wrote one under TK meanwhile),
 * tk_seal := tk_seal_next, "tk_gen" + 1. Between the steps a record is
 * under TK or TK', and the store holds both: a kill at any moment leaves a
 * store that opens, nothing lost; the next rekey resumes with the same TK'.
 *
 * Other processes keep working: they reload the keys when "tk_gen" moves
 * (they hold KS and X, so no KMS call), read records under either key and
 * write new ones under the newest, checking "tk_gen" in the same
 * transaction (records.c).
 */
#ifndef P11KMS_REKEY_H
#define P11KMS_REKEY_H

#include "slots.h"

/* done of total records re-encrypted so far. */
typedef void (*rekey_progress_fn)(void *arg, uint64_t done, uint64_t total);

/* Rekey t, whose token key must be in memory (a logged-in user or SO in
 * login=required mode; unsealed in optional mode). Called with the lock
 * held; returns with it held; releases it while it works (look the
 * session up again afterwards). No KMS call. CKR_USER_NOT_LOGGED_IN
 * without the key; CKR_FUNCTION_FAILED when another rekey of this process
 * runs. */
CK_RV token_rekey(token_t *t, rekey_progress_fn progress, void *arg, CK_ULONG *deverr);

#endif
