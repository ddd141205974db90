/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The revalidation thread: it runs the periodic checks of the sealing keys
 * (revalidate.c judges them), so that no PKCS #11 call waits for a KMS
 * answer it does not need itself (docs/REVALIDATION.md).
 *
 * One thread per initialization of the module, started at first need
 * (the first time a token has a key in memory or is revoked), never when
 * C_Initialize said CKF_LIBRARY_CANT_CREATE_OS_THREADS: callers then run
 * a due check themselves, as they did before the thread. It sleeps on a
 * condition variable with THE lock (slots.lock) until the earliest check
 * is due or a caller wakes it, and runs each due token's check as a job
 * (slots.h): the lock is released for the KMS call. C_Finalize stops and
 * joins it; a forked child has no thread and starts a new one after its
 * own C_Initialize.
 *
 * Every function here is called with THE lock held.
 */
#ifndef P11KMS_REVALTHREAD_H
#define P11KMS_REVALTHREAD_H

#include "slots.h"

/* C_Initialize: may the module create threads (CKF_LIBRARY_CANT_CREATE_OS_THREADS
 * clear)? */
void revalthread_configure_inlock(bool may_create);
/* A token has a key in memory or is revoked: make sure the thread runs,
 * and when due, wake it for a check. false: there is no thread (not
 * allowed, or it could not be created): the caller runs a due check. */
bool revalthread_kick_inlock(bool due);
/* C_Finalize: stop the thread and join it. Returns with the lock held but
 * releases it while the thread ends: a check in flight ends first, within
 * its provider's request budget (attempts x timeout plus backoff). */
void revalthread_stop(void);
/* pthread_atfork child: the thread does not exist here. Forget it, without
 * touching its condition variable (a waiter that is gone may show in it). */
void revalthread_fork_child(void);

#endif
