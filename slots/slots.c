/* SPDX-License-Identifier: Apache-2.0 */
/* The token table and THE lock (slots.h). */
#include "slots.h"

#include <time.h>

#include "common/log.h"

slot_table slots = {.lock = PTHREAD_MUTEX_INITIALIZER};

token_t *token_by_slot_inlock(CK_SLOT_ID id)
{
	for (size_t i = 0; i < slots.ntokens; i++)
		if (slots.tokens[i].slot_id == id)
			return &slots.tokens[i];
	return NULL;
}

void slots_pause_ms(unsigned ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) != 0)
		;
}

p11k_err slots_store_try(store_t *s, p11k_err (*once)(store_t *s, void *arg), void *arg)
{
	p11k_err e;
	unsigned waited = 0, step = 1, limit = store_busy_timeout_ms();
	for (;;) {
		e = store_nowait_enter(s);
		if (e == P11K_OK) {
			e = once(s, arg);
			store_nowait_leave(s);
		}
		if (e != P11K_ERR_STORE_BUSY || waited >= limit)
			return e;
		slots_pause_ms(step);
		waited += step;
		step = step < 64 ? step * 2 : 64;
	}
}

CK_RV slots_run(token_t *t, const slots_job_ops *ops, void *job)
{
	CK_RV rv = ops->prepare(t, job);
	if (rv != CKR_OK)
		return rv;
	uint64_t gen = t->gen;
	if (ops->call) {
		pthread_mutex_unlock(&slots.lock);
		rv = ops->call(t, job);
		pthread_mutex_lock(&slots.lock);
	}
	/* Publish; when the store is busy, wait for it without the lock
	 * (1, 2, 4 .. 64 ms apart) for as long as SQLite's busy handler
	 * would have, then publish once more, which then waits on nothing. */
	unsigned waited = 0, step = 1, limit = store_busy_timeout_ms();
	for (;;) {
		store_t *s = ops->writes ? t->store : NULL;
		bool held = !s || store_nowait_enter(s) == P11K_OK;
		CK_RV prv = held ? ops->publish(t, job, rv, t->gen != gen) : SLOTS_RETRY;
		if (held && s)
			store_nowait_leave(s);
		if (prv != SLOTS_RETRY)
			return prv;
		if (waited >= limit) {
			log_error("token", "slot %lu: the store stayed busy for %u ms",
				  (unsigned long)t->slot_id, waited);
			t->last.err = P11K_ERR_STORE_BUSY;
			rv = p11k_err_to_ckr(P11K_ERR_STORE_BUSY);
			/* The last round: publish discards the result. */
			(void)ops->publish(t, job, rv, true);
			return rv;
		}
		pthread_mutex_unlock(&slots.lock);
		slots_pause_ms(step);
		pthread_mutex_lock(&slots.lock);
		waited += step;
		step = step < 64 ? step * 2 : 64;
	}
}

bool slots_busy_wait(CK_RV *rv, unsigned *waited)
{
	if (*rv != SLOTS_RETRY)
		return false;
	if (*waited >= store_busy_timeout_ms()) {
		log_error("token", "the store stayed busy for %u ms", *waited);
		*rv = p11k_err_to_ckr(P11K_ERR_STORE_BUSY);
		return false;
	}
	unsigned step = *waited < 1 ? 1 : *waited < 64 ? *waited : 64;
	slots_pause_ms(step);
	*waited += step;
	return true;
}
