/* SPDX-License-Identifier: Apache-2.0 */
/* Revalidation of the sealing key (DESIGN.md section 3). */
#ifndef P11KMS_REVALIDATE_H
#define P11KMS_REVALIDATE_H

#include "slots.h"

/* Revalidation: every revalidate_seconds, while the token key is in use,
 * ask the KMS about the sealing key (a job, slots.h). A key
 * disabled, destroyed or denied wipes the token key and every key derived
 * through the KMS; an unreachable KMS is tolerated for
 * offline_grace_seconds, then the same. CKR_DEVICE_ERROR while revoked. */
/* The checks run in the revalidation thread (revalthread.h): a caller
 * reads the verdict so far and, when a check is due, wakes the thread.
 * Without the thread (CKF_LIBRARY_CANT_CREATE_OS_THREADS) a due check runs
 * in the caller. Called with the lock held, returns with it held; releases
 * it for the KMS call when the caller runs the check itself: look the
 * session up again afterwards. docs/REVALIDATION.md. */
CK_RV token_revalidate(token_t *t, CK_ULONG *deverr);

/* For the revalidation thread. Seconds until t's next check: 0 when one is
 * due now, REVAL_NONE when t needs none (no token key in memory and not
 * revoked) or one is running. */
#define REVAL_NONE UINT64_MAX
uint64_t token_reval_due_in_inlock(const token_t *t, uint64_t now);
/* Run t's check now: a job (slots.h), the lock released for the KMS call. */
CK_RV token_reval_run(token_t *t, uint64_t now, CK_ULONG *deverr);

#endif
