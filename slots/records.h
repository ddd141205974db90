/* SPDX-License-Identifier: Apache-2.0 */
/* Token object records (sealed under the token key) and the object
 * handle registry. */
#ifndef P11KMS_RECORDS_H
#define P11KMS_RECORDS_H

#include "slots.h"

/* Object handle registry (module-wide). */
CK_RV object_register_inlock(object_t *o);
void object_unregister_inlock(object_t *o);
/* Drop every token object of t from the handle registry. */
void token_forget_objects_inlock(token_t *t);

/* The application's user is no longer logged in (PKCS #11 5.6): every
 * handle of a private object becomes invalid for good and private session
 * objects are destroyed; private token objects stay in the store (a
 * search registers them again, under new handles). */
void token_forget_private_inlock(token_t *t);

/* Token objects. The writes (persist, update, delete) never wait for a
 * store another process is writing (slots.h, rule 3): they answer
 * SLOTS_RETRY having changed nothing, and the caller releases the lock,
 * waits with slots_busy_wait() and does its locked part again. */
CK_RV token_obj_persist_inlock(token_t *t, object_t *o);
CK_RV token_obj_update_inlock(token_t *t, object_t *o);
CK_RV token_obj_delete_inlock(token_t *t, object_t *o);
/* Bring o up to date with the store as token_sync_inlock, which the
 * caller ran in this call (once per call: it costs a look at the store,
 * and may forget o), last saw it; load its secret attributes when
 * need_secret. CKR_OBJECT_HANDLE_INVALID when it no longer exists. */
CK_RV token_obj_refresh_inlock(token_t *t, object_t *o, bool need_secret);
/* C_GetAttributeValue of o: token key objects also answer the vendor
 * attributes of the token's primary seal, CKA_P11KMS_KMS_KEY_ID and
 * CKA_P11KMS_KMS_KEY_VERSION (as they are now, after any reseal). */
CK_RV token_obj_get_attributes_inlock(token_t *t, const object_t *o, CK_ATTRIBUTE *tmpl,
				      CK_ULONG n);
/* The store filter for a search with tmpl: false when no token object
 * can match. Every template with CKA_CLASS, CKA_KEY_TYPE, CKA_LABEL,
 * CKA_ID or CKA_PRIVATE gives an indexed one (store.h); cls is its
 * storage for the class. need_secret: tmpl compares a secret attribute. */
bool token_find_filter(const CK_ATTRIBUTE *tmpl, CK_ULONG n, bool include_private,
		       obj_filter *f, uint64_t *cls, bool *need_secret);
/* Collect token objects matching tmpl into handles (appending). */
CK_RV token_obj_find_inlock(token_t *t, const CK_ATTRIBUTE *tmpl, CK_ULONG n,
			    bool include_private, CK_OBJECT_HANDLE **handles,
			    size_t *count);

#endif
