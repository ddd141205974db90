/* SPDX-License-Identifier: Apache-2.0 */
/* GCM IV counters (counter.h). */
#include "counter.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "token.h"

/* --- GCM IV counters -------------------------------------------------------- */

/* One try, with the store held without waiting (busy: try again). */
static p11k_err reserve_once(store_t *s, const char *name, uint64_t count, uint64_t *first)
{
	uint8_t *v = NULL;
	size_t n = 0;
	bool found = false;
	p11k_err e = store_begin(s);
	if (e != P11K_OK)
		return e;
	e = store_meta_get(s, name, &v, &n, &found);
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
		e = store_meta_put(s, name, b, 8);
	}
	if (e == P11K_OK)
		e = store_commit(s);
	else
		store_rollback(s);
	if (e == P11K_OK)
		*first = next;
	return e;
}

CK_RV token_reserve_counter(void *arg, const uint8_t kid[32], uint64_t count,
			    uint64_t *first)
{
	token_t *t = arg;
	char name[48] = "ivctr:";
	for (int i = 0; i < 16; i++)
		snprintf(name + 6 + 2 * i, 3, "%02x", kid[i]);
	store_t *s = t->store;
	if (!s)
		return CKR_USER_NOT_LOGGED_IN;
	/* Called without the module lock, but a wait on SQLite here would
	 * hold the store's own lock, which module-lock holders need: wait
	 * between tries instead, holding nothing (slots.h, the lock rule). */
	p11k_err e;
	unsigned waited = 0, step = 1, limit = store_busy_timeout_ms();
	for (;;) {
		e = store_nowait_enter(s);
		if (e == P11K_OK) {
			e = reserve_once(s, name, count, first);
			store_nowait_leave(s);
		}
		if (e != P11K_ERR_STORE_BUSY || waited >= limit)
			break;
		slots_pause_ms(step);
		waited += step;
		step = step < 64 ? step * 2 : 64;
	}
	if (e != P11K_OK) {
		log_error("token", "slot %lu: cannot reserve IV counters: %s",
			  (unsigned long)t->slot_id, p11k_err_name(e));
		return p11k_err_to_ckr(e);
	}
	return CKR_OK;
}
