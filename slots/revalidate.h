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
/* Called with the lock held, returns with it held, releases it for the
 * KMS call when one is due: look the session up again afterwards. */
CK_RV token_revalidate(token_t *t, CK_ULONG *deverr);

#endif
