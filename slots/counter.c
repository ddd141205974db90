/* SPDX-License-Identifier: Apache-2.0 */
/* GCM IV counters (counter.h). */
#include "counter.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/crypto.h"
#include "common/log.h"
#include "token.h"

/* --- GCM IV counters -------------------------------------------------------- */

static uint64_t be64(rd_t *r)
{
	return rd_u64(r);
}

static void put64(uint8_t *b, uint64_t v)
{
	for (int i = 0; i < 8; i++)
		b[i] = (uint8_t)(v >> (56 - 8 * i));
}

/* One try, with the store held without waiting (busy: try again). The
 * value is start(8) | next(8); an old 8-byte value is next, start 0. */
typedef struct reserve_arg {
	const char *name;
	uint64_t count, *first, *start;
} reserve_arg;

static p11k_err reserve_once(store_t *s, void *arg)
{
	const reserve_arg *a = arg;
	const char *name = a->name;
	uint64_t count = a->count;
	uint8_t *v = NULL;
	size_t n = 0;
	bool found = false;
	p11k_err e = store_begin(s);
	if (e != P11K_OK)
		return e;
	e = store_meta_get(s, name, &v, &n, &found);
	uint64_t next = 0, st = 0;
	if (e == P11K_OK && found) {
		rd_t r;
		rd_init(&r, v, n);
		if (n == 16)
			st = be64(&r);
		next = be64(&r);
		if (!rd_done(&r))
			e = P11K_ERR_STORE;
	} else if (e == P11K_OK) {
		uint8_t rnd[8];
		if (!crypto_random(rnd, sizeof(rnd)))
			e = P11K_ERR_INTERNAL;
		for (int i = 0; e == P11K_OK && i < 8; i++)
			st = st << 8 | rnd[i];
		st >>= 1; /* 63 bits: room to count */
		next = st;
	}
	free(v);
	if (e == P11K_OK && next > UINT64_MAX - count)
		e = P11K_ERR_INTERNAL;
	if (e == P11K_OK) {
		uint8_t b[16];
		put64(b, st);
		put64(b + 8, next + count);
		e = store_meta_put(s, name, b, 16);
	}
	if (e == P11K_OK)
		e = store_commit(s);
	else
		store_rollback(s);
	if (e == P11K_OK) {
		*a->first = next;
		*a->start = st;
	}
	return e;
}

CK_RV token_reserve_counter(void *arg, const uint8_t kid[32], uint64_t count,
			    uint64_t *first, uint64_t *start)
{
	token_t *t = arg;
	char name[48] = "ivctr:";
	for (int i = 0; i < 16; i++)
		snprintf(name + 6 + 2 * i, 3, "%02x", kid[i]);
	store_t *s = t->store;
	if (!s)
		return CKR_USER_NOT_LOGGED_IN;
	/* Called without the module lock (slots_store_try). */
	reserve_arg a = {name, count, first, start};
	p11k_err e = slots_store_try(s, reserve_once, &a);
	if (e != P11K_OK) {
		log_error("token", "slot %lu: cannot reserve IV counters: %s",
			  (unsigned long)t->slot_id, p11k_err_name(e));
		return p11k_err_to_ckr(e);
	}
	return CKR_OK;
}
