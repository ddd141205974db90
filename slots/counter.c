/* SPDX-License-Identifier: Apache-2.0 */
/* GCM IV counters (counter.h). */
#include "counter.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "token.h"

/* --- GCM IV counters -------------------------------------------------------- */

CK_RV token_reserve_counter(void *arg, const uint8_t kid[32], uint64_t count,
			    uint64_t *first)
{
	token_t *t = arg;
	char name[48] = "ivctr:";
	for (int i = 0; i < 16; i++)
		snprintf(name + 6 + 2 * i, 3, "%02x", kid[i]);
	if (!t->store)
		return CKR_USER_NOT_LOGGED_IN;
	uint8_t *v = NULL;
	size_t n = 0;
	bool found = false;
	p11k_err e = store_begin(t->store);
	if (e == P11K_OK)
		e = store_meta_get(t->store, name, &v, &n, &found);
	uint64_t next = 0;
	if (e == P11K_OK && found) {
		rd_t r;
		rd_init(&r, v, n);
		next = rd_u64(&r);
		if (!rd_done(&r))
			e = P11K_ERR_STORE;
	}
	free(v);
	if (e == P11K_OK && next > UINT64_MAX - count)
		e = P11K_ERR_INTERNAL;
	if (e == P11K_OK) {
		uint8_t b[8];
		for (int i = 0; i < 8; i++)
			b[i] = (uint8_t)((next + count) >> (56 - 8 * i));
		e = store_meta_put(t->store, name, b, 8);
	}
	if (e == P11K_OK)
		e = store_commit(t->store);
	else if (e != P11K_ERR_STORE_BUSY)
		store_rollback(t->store);
	if (e != P11K_OK) {
		log_error("token", "slot %lu: cannot reserve IV counters: %s",
			  (unsigned long)t->slot_id, p11k_err_name(e));
		return p11k_err_to_ckr(e);
	}
	*first = next;
	return CKR_OK;
}
