/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The token model's table: one token per configured provider entry, the
 * object handle registry, and THE lock (p11-kit's habit: one structure,
 * one lock). The lock guards the token table, each token's login state,
 * the object handle registry and module/'s session table.
 *
 * The lock rule (docs/ARCHITECTURE.md, "The lock"):
 *
 * 1. A function ending in _inlock is called with the lock held and returns
 *    with it held, never having released it. So a caller may keep any
 *    pointer it found under the lock (session, object, token) across it.
 *
 * 2. Work that must run scrypt or call a KMS is a job (slots_job below):
 *    prepare (under the lock: check state, copy what the call needs) ->
 *    the call (unlocked: touches only the job's copies and the token's
 *    immutable parts, cfg and prov) -> publish (under the lock: re-validate
 *    and make the result visible). slots_run() drives every job, so the
 *    unlock/relock is in one place. Publish re-validates twice: against
 *    t->gen, which bumps whenever the token is (re-)initialized (the
 *    prepared PIN record, seals and uuid then belong to another token),
 *    and against the state it changes itself (login state, t->tk,
 *    t->nsessions). The functions that run a job are not named _inlock;
 *    each says in its header that it is called with the lock held,
 *    returns with it held and releases it in between, so its caller must
 *    look its session up again afterwards.
 *
 * 3. Nothing waits on SQLite's busy handler (15 s) with the lock held
 *    where a job writes: publish runs with the store held by
 *    store_nowait_enter(), so a store another process is writing answers
 *    "busy" at once; publish then changes nothing and says SLOTS_RETRY,
 *    and slots_run() waits unlocked (a short backoff, up to the store's
 *    busy timeout in all) and publishes again, re-validating again.
 *    The IV counters (counter.c, no module lock) try the same way, so no
 *    thread sleeps in SQLite's busy handler holding the store's own lock
 *    either. Token object writes (records.h) answer SLOTS_RETRY too; the
 *    entry points that make them (module/) then release the lock, wait
 *    with slots_busy_wait() and do their locked part again.
 *
 * C_Finalize while other threads are in calls is undefined behaviour
 * (PKCS #11 v2.40 5.4): a job's call may use its token until it returns.
 * The module's own thread, which runs the revalidation jobs
 * (revalthread.h), is stopped and joined before anything is freed.
 */
#ifndef P11KMS_SLOTS_H
#define P11KMS_SLOTS_H

#include <pthread.h>

#include "common/common.h"
#include "config.h"
#include "object.h"
#include "providers/provider.h"
#include "store.h"

#define NO_LOGIN ((CK_USER_TYPE)-1)
#define PIN_MIN 4
#define PIN_MAX 256
#define PIN_MAX_TRIES 10

typedef struct token {
	CK_SLOT_ID slot_id;
	const provider_cfg *cfg;
	void *prov;               /* provider state */
	store_t *store;           /* NULL until first use */
	bool store_broken;        /* open failed: reported, never rewritten */
	/* cached from the store's meta table */
	bool initialized;
	char label[33];
	char serial[17];
	uint8_t uuid[16];
	bool user_pin_set;
	uint32_t user_fail, so_fail;
	uint64_t seen_version;    /* store data_version last synced */
	/* login state, shared by every session of this application */
	CK_USER_TYPE login;
	/* The token key and the keys of its seal (seal.h: TK | KS | X,
	 * TK_BLOCK_LEN bytes of secure memory) or NULL. */
	uint8_t *tk;
	uint64_t tk_epoch;        /* bumps whenever tk changes */
	uint32_t tk_gen;          /* the store's "tk_gen" the keys in tk match */
	bool rekeying;            /* a rekey of this process is under way */
	unsigned unsealing;       /* threads asking the KMS for the token key */
	uint64_t gen;             /* bumps when the token is (re-)initialized */
	hmap_t by_rowid;          /* rowid -> object_t (token objects) */
	hmap_t session_objs;      /* handle -> object_t */
	size_t nsessions, nrw;
	provider_status last;     /* last provider failure */
	object_t **kms_objs;      /* KMS key objects from the configuration */
	size_t nkms;
	struct kms_asym *kms_asym; /* per configured key: its public half (asym.h) */
	/* revalidation of the sealing key (DESIGN.md section 3) */
	uint64_t last_check;      /* last time the KMS was asked */
	uint64_t last_ok;         /* last time it answered "enabled" */
	bool checking;            /* a thread is asking now */
	bool revoked;             /* key disabled / gone / denied, or offline too long */
	p11k_err revoked_why;
	/* The primary seal, as last read or written: CKA_P11KMS_KMS_KEY_ID
	 * and CKA_P11KMS_KMS_KEY_VERSION of token key objects. */
	char seal_key_id[256];
	char seal_key_version[128];
} token_t;

typedef struct slot_table {
	pthread_mutex_t lock;     /* THE lock */
	token_t *tokens;
	size_t ntokens;
	hmap_t objects;           /* handle -> object_t, every token's */
	CK_ULONG next_object;
} slot_table;

extern slot_table slots;

token_t *token_by_slot_inlock(CK_SLOT_ID id);

/* Publish's answer when the store was busy and nothing was changed:
 * slots_run() waits unlocked and publishes again. Never leaves slots/. */
#define SLOTS_RETRY (CKR_VENDOR_DEFINED | 0x51000001UL)

/* A job (the lock rule above). job is the caller's state. */
typedef struct slots_job_ops {
	/* Under the lock. CKR_OK: go on to call; anything else is the
	 * result, and neither call nor publish runs. */
	CK_RV (*prepare)(token_t *t, void *job);
	/* Without the lock. Its result is handed to publish. */
	CK_RV (*call)(token_t *t, void *job);
	/* Under the lock. stale: t->gen moved since prepare, or the store
	 * stayed busy too long: undo what prepare marked (never
	 * SLOTS_RETRY), publish nothing. It may answer SLOTS_RETRY only
	 * having changed nothing; it runs again then, else exactly once. */
	CK_RV (*publish)(token_t *t, void *job, CK_RV rv, bool stale);
	/* Publish writes the store: hold it with store_nowait_enter(). */
	bool writes;
} slots_job_ops;

/* Run a job. Called with the lock held; returns with it held; releases
 * it for the call and while waiting for a busy store. */
CK_RV slots_run(token_t *t, const slots_job_ops *ops, void *job);
/* Sleep ms milliseconds (the backoff between tries of a busy store);
 * never with the lock held. */
void slots_pause_ms(unsigned ms);
/* For work on the store WITHOUT the module lock (IV counters, PIN tries,
 * public key pins): run once(s, arg) holding the store without waiting on
 * SQLite; when it answers P11K_ERR_STORE_BUSY, wait holding nothing (1, 2,
 * 4 .. 64 ms apart) and try again, up to the store's busy timeout. A wait
 * on SQLite would hold the store's own lock, which lock holders need. */
P11K_WUR p11k_err slots_store_try(store_t *s, p11k_err (*once)(store_t *s, void *arg),
				  void *arg);
/* For a caller whose locked part answered SLOTS_RETRY (a token object
 * write found the store busy): called WITHOUT the lock. Waits (1, 2, 4 ..
 * 64 ms apart; *waited, starting at 0, counts) and says true: do the
 * locked part again. false when *rv is not SLOTS_RETRY, or when the store
 * stayed busy as long as SQLite's busy handler would have waited: *rv is
 * then the busy store's CKR. */
bool slots_busy_wait(CK_RV *rv, unsigned *waited);

#endif
