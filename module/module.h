/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The module context: initialization state, the configuration and the
 * session table. It is guarded by THE lock, slots.lock (slots/slots.h),
 * under the rule written there and in docs/ARCHITECTURE.md.
 */
#ifndef P11KMS_MODULE_H
#define P11KMS_MODULE_H

#include <pthread.h>
#include <sys/types.h>

#include "aead.h"
#include "mech.h"
#include "providers/provider.h"
#include "slots/slots.h"

#define P11KMS_VERSION_MAJOR 0
#define P11KMS_VERSION_MINOR 1

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
	bool deverr_revoked; /* deverr says the token is revoked: cleared when it recovers */
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
	bool initialized;
	pid_t pid;
	config_t *cfg;
	hmap_t sessions;          /* handle -> session_t */
	CK_ULONG next_session;
} module_t;

extern module_t mod;

#endif
