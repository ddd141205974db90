/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The token model's table: one token per configured provider entry, the
 * object handle registry, and THE lock (p11-kit's habit: one structure,
 * one lock). The lock guards the token table, each token's login state,
 * the object handle registry and module/'s session table.
 *
 * The lock rule (docs/ARCHITECTURE.md, "The lock"): a function ending in
 * _inlock is called with the lock held and returns with it held, never
 * having released it. Work that must call a KMS, run scrypt or wait for
 * SQLite is split into prepare (under the lock) -> the call (unlocked) ->
 * publish (under the lock, re-validated), and those functions say so in
 * their names (no _inlock) and in their comments.
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
	uint8_t *tk;              /* the token key (32 bytes, secure) or NULL */
	uint64_t tk_epoch;        /* bumps whenever tk changes */
	bool unsealing;           /* a thread is asking the KMS */
	hmap_t by_rowid;          /* rowid -> object_t (token objects) */
	hmap_t session_objs;      /* handle -> object_t */
	size_t nsessions, nrw;
	provider_status last;     /* last provider failure */
	object_t **kms_objs;      /* KMS key objects from the configuration */
	size_t nkms;
	/* revalidation of the sealing key (DESIGN.md section 3) */
	uint64_t last_check;      /* last time the KMS was asked */
	uint64_t last_ok;         /* last time it answered "enabled" */
	bool checking;            /* a thread is asking now */
	bool revoked;             /* key disabled / gone / denied, or offline too long */
	p11k_err revoked_why;
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

#endif
