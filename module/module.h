/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The module context: one structure, one lock (p11-kit's habit). Helpers
 * that expect the lock held end in _inlock. Nothing holds the lock across
 * a KMS call or bulk crypto: copy under the lock, unlock, call, relock to
 * publish.
 */
#ifndef P11KMS_MODULE_H
#define P11KMS_MODULE_H

#include <pthread.h>
#include <sys/types.h>

#include "aead.h"
#include "config.h"
#include "mech.h"
#include "providers/provider.h"
#include "slots/object.h"
#include "slots/store.h"

#define P11KMS_VERSION_MAJOR 0
#define P11KMS_VERSION_MINOR 1
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

typedef struct find_state {
	bool active;
	CK_OBJECT_HANDLE *handles;
	size_t n, pos;
} find_state;

typedef struct session {
	CK_SESSION_HANDLE handle;
	token_t *tok;
	CK_FLAGS flags;
	CK_ULONG deverr;
	pthread_mutex_t oplock;   /* serializes operations on this session */
	unsigned refs;            /* atomic; the session table holds one */
	bool closed;
	cipher_op enc, dec;
	dbuf_t spare;             /* a hold buffer kept between operations */
	mac_op dig, sig, ver;
	msg_op menc, mdec;
	find_state find;
} session_t;

typedef struct module {
	pthread_mutex_t lock;
	bool initialized;
	pid_t pid;
	config_t *cfg;
	token_t *tokens;
	size_t ntokens;
	hmap_t sessions;          /* handle -> session_t */
	hmap_t objects;           /* handle -> object_t */
	CK_ULONG next_session, next_object;
} module_t;

extern module_t mod;

token_t *token_by_slot_inlock(CK_SLOT_ID id);

#endif
