/* SPDX-License-Identifier: Apache-2.0 */
/* The revalidation thread (revalthread.h, docs/REVALIDATION.md). */
#include "revalthread.h"

#include <errno.h>
#include <signal.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "revalidate.h"

/* The longest sleep between two looks at the tokens: a wall clock stepped
 * forward is noticed within it (a caller also wakes the thread then). */
#define WAIT_CAP_S 60

/* All of it guarded by THE lock. */
static struct reval_thread {
	bool may_create;   /* C_Initialize allowed threads */
	bool failed;       /* pthread_create failed: callers check themselves */
	bool running;      /* the thread exists */
	bool stop;         /* C_Finalize asked it to end */
	bool busy;         /* it is in a check (the lock released) */
	bool cond_ready;
	pthread_t tid;
	pthread_cond_t cond; /* on CLOCK_MONOTONIC, waited on with THE lock */
} rt;

/* Sleep until the wall clock's second now+wait begins (clock_now_s()
 * counts whole seconds, so that is when a check becomes due), or until
 * woken. Monotonic, so a clock step does not stretch the sleep. */
static void sleep_inlock(uint64_t wait)
{
	struct timespec wall, at;
	clock_gettime(CLOCK_REALTIME, &wall);
	clock_gettime(CLOCK_MONOTONIC, &at);
	long long ns = (long long)wait * 1000000000LL - wall.tv_nsec + 1000000LL;
	at.tv_sec += (time_t)(ns / 1000000000LL);
	at.tv_nsec += (long)(ns % 1000000000LL);
	if (at.tv_nsec >= 1000000000L) {
		at.tv_sec++;
		at.tv_nsec -= 1000000000L;
	}
	(void)pthread_cond_timedwait(&rt.cond, &slots.lock, &at);
}

static void *reval_main(void *arg)
{
	(void)arg;
	pthread_mutex_lock(&slots.lock);
	while (!rt.stop) {
		uint64_t now = clock_now_s(), wait = WAIT_CAP_S;
		token_t *due = NULL;
		for (size_t i = 0; i < slots.ntokens && !due; i++) {
			uint64_t in = token_reval_due_in_inlock(&slots.tokens[i], now);
			if (in == 0)
				due = &slots.tokens[i];
			else if (in < wait)
				wait = in;
		}
		if (!due) {
			sleep_inlock(wait);
			continue;
		}
		/* One check at a time: its prepare moves the token's
		 * last_check, so the next look finds the next due token. */
		CK_ULONG deverr = 0;
		log_debug("token", "slot %lu (%s): revalidating the sealing key",
			  (unsigned long)due->slot_id, due->cfg->name);
		rt.busy = true;
		(void)token_reval_run(due, now, &deverr);
		rt.busy = false;
	}
	pthread_mutex_unlock(&slots.lock);
	return NULL;
}

static bool start_inlock(void)
{
	if (!rt.may_create || rt.failed)
		return false;
	if (!rt.cond_ready) {
		pthread_condattr_t ca;
		pthread_condattr_init(&ca);
		pthread_condattr_setclock(&ca, CLOCK_MONOTONIC);
		pthread_cond_init(&rt.cond, &ca);
		pthread_condattr_destroy(&ca);
		rt.cond_ready = true;
	}
	/* The host's signals are not for this thread (a host that waits for
	 * them with sigwait expects every other thread to block them); the
	 * synchronous ones stay open, so a fault is reported as usual. */
	sigset_t all, old;
	sigfillset(&all);
	static const int sync_signals[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGSYS};
	for (size_t i = 0; i < ARRAY_SIZE(sync_signals); i++)
		sigdelset(&all, sync_signals[i]);
	pthread_sigmask(SIG_SETMASK, &all, &old);
	int e = pthread_create(&rt.tid, NULL, reval_main, NULL);
	pthread_sigmask(SIG_SETMASK, &old, NULL);
	if (e != 0) {
		rt.failed = true;
		log_warn("token", "cannot start the revalidation thread (%s): the sealing "
				  "keys are checked in the callers' threads",
			 strerror(e));
		return false;
	}
	(void)pthread_setname_np(rt.tid, "p11kms-reval");
	rt.running = true;
	log_debug("token", "revalidation thread started");
	return true;
}

void revalthread_configure_inlock(bool may_create)
{
	rt.may_create = may_create;
	rt.failed = false;
}

bool revalthread_kick_inlock(bool due)
{
	if (!rt.running && !start_inlock())
		return false;
	if (due)
		pthread_cond_signal(&rt.cond);
	return true;
}

void revalthread_stop(void)
{
	rt.may_create = false;
	if (rt.running) {
		if (rt.busy)
			log_info("token", "C_Finalize waits for a KMS check in flight (at most "
					  "its provider's timeouts and retries)");
		rt.stop = true;
		pthread_cond_broadcast(&rt.cond);
		pthread_t tid = rt.tid;
		pthread_mutex_unlock(&slots.lock);
		pthread_join(tid, NULL);
		pthread_mutex_lock(&slots.lock);
		rt.running = rt.stop = false;
		log_debug("token", "revalidation thread stopped");
	}
	if (rt.cond_ready)
		pthread_cond_destroy(&rt.cond);
	rt.cond_ready = false;
	rt.failed = false;
}

void revalthread_fork_child(void)
{
	/* The condition variable is initialized again at the next start. */
	memset(&rt, 0, sizeof(rt));
}
