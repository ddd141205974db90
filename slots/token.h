/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Tokens: store access, PINs, the sealed token key (TK), login state and
 * token objects. Functions ending in _inlock expect the module lock held;
 * those that may call the KMS say so and drop the lock around the call.
 * docs/ARCHITECTURE.md explains the seal and what each login mode
 * protects against.
 */
#ifndef P11KMS_TOKEN_H
#define P11KMS_TOKEN_H

#include "kms_port.h"
#include "slots.h"

#define TK_LEN 32

/* Open the store if it exists, reload cached metadata when another
 * process wrote. CKR_DEVICE_ERROR for an unusable store. */
CK_RV token_sync_inlock(token_t *t);

/* The token key for object records. In login=optional mode the first
 * caller unseals it (one KMS call, lock dropped around it); in required
 * mode it is present only while a user or SO is logged in. */
CK_RV token_ensure_tk_inlock(token_t *t, CK_ULONG *deverr);

CK_RV token_init(token_t *t, const CK_UTF8CHAR *so_pin, CK_ULONG so_len,
		 const CK_UTF8CHAR *label, CK_ULONG *deverr);
CK_RV token_login_inlock(token_t *t, CK_USER_TYPE who, const CK_UTF8CHAR *pin,
			 CK_ULONG len, CK_ULONG *deverr);
CK_RV token_logout_inlock(token_t *t);
CK_RV token_init_pin_inlock(token_t *t, const CK_UTF8CHAR *pin, CK_ULONG len,
			    CK_ULONG *deverr);
CK_RV token_set_pin_inlock(token_t *t, CK_USER_TYPE who, const CK_UTF8CHAR *old,
			   CK_ULONG oldlen, const CK_UTF8CHAR *new_pin,
			   CK_ULONG newlen);
/* Forget login, wipe the key (required mode) and secrets of token objects. */
void token_lock_inlock(token_t *t);

/* Token objects. */
CK_RV token_obj_persist_inlock(token_t *t, object_t *o);
CK_RV token_obj_update_inlock(token_t *t, object_t *o);
CK_RV token_obj_delete_inlock(token_t *t, object_t *o);
/* Bring o up to date with the store; load its secret attributes when
 * need_secret. CKR_OBJECT_HANDLE_INVALID when it no longer exists. */
CK_RV token_obj_refresh_inlock(token_t *t, object_t *o, bool need_secret);
/* Collect token objects matching tmpl into handles (appending). */
CK_RV token_obj_find_inlock(token_t *t, const CK_ATTRIBUTE *tmpl, CK_ULONG n,
			    bool include_private, CK_OBJECT_HANDLE **handles,
			    size_t *count);

/* Reserve count GCM IV counter values for a key identity, persistently:
 * no process or restart gets the same range. Callable without the module
 * lock (the store has its own). */
CK_RV token_reserve_counter(void *tok, const uint8_t kid[32], uint64_t count,
			    uint64_t *first);

/* KMS key objects: built from the configuration at C_Initialize. */
CK_RV token_kms_objects_create_inlock(token_t *t);
void token_kms_objects_free_inlock(token_t *t);
/* The KMS port of t (kms_port.h): the four functions below, bound to t. */
kms_port token_kms_port(token_t *t);
/* The remote call behind CKM_P11KMS_KMS_ENVELOPE (no lock held): output in
 * secure memory. */
CK_RV token_kms_call(void *tok, bool encrypt, const char *key_id,
		     const uint8_t *ctx, size_t ctxlen, const uint8_t *in,
		     size_t inlen, uint8_t **out, size_t *outlen);
size_t token_kms_max(void *tok, size_t inlen);
/* Standard mechanisms on typed KMS keys (docs/REMOTE.md); no lock held. */
CK_RV token_kms_std(void *tok, size_t idx, remote_req *r, uint8_t **out, size_t *outlen);
CK_RV token_kms_rsa_modlen(void *tok, size_t idx, size_t *modlen);

/* Revalidation: every revalidate_seconds, while the token key is in use,
 * ask the KMS about the sealing key (lock dropped around the call). A key
 * disabled, destroyed or denied wipes the token key and every key derived
 * through the KMS; an unreachable KMS is tolerated for
 * offline_grace_seconds, then the same. CKR_DEVICE_ERROR while revoked. */
CK_RV token_revalidate_inlock(token_t *t, CK_ULONG *deverr);

/* Object handle registry (module-wide). */
CK_RV object_register_inlock(object_t *o);
void object_unregister_inlock(object_t *o);
/* Drop every token object of t from the handle registry. */
void token_forget_objects_inlock(token_t *t);

#endif
