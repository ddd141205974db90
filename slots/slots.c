/* SPDX-License-Identifier: Apache-2.0 */
/* The token table and THE lock (slots.h). */
#include "slots.h"

slot_table slots = {.lock = PTHREAD_MUTEX_INITIALIZER};

token_t *token_by_slot_inlock(CK_SLOT_ID id)
{
	for (size_t i = 0; i < slots.ntokens; i++)
		if (slots.tokens[i].slot_id == id)
			return &slots.tokens[i];
	return NULL;
}
