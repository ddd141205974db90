/* SPDX-License-Identifier: Apache-2.0 */
/* GCM IV counters, reserved persistently in the store. */
#ifndef P11KMS_COUNTER_H
#define P11KMS_COUNTER_H

#include "slots.h"

/* Reserve count GCM IV counter values for a key identity, persistently:
 * no process or restart gets the same range. A key's counter begins at a
 * random 63-bit *start when the token first counts for it, so the same
 * key in another token, or after C_InitToken, counts elsewhere. Callable
 * without the module lock (the store has its own). */
CK_RV token_reserve_counter(void *tok, const uint8_t kid[32], uint64_t count,
			    uint64_t *first, uint64_t *start);

#endif
