/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Object functions (PKCS #11 5.7): create, copy, destroy, size,
 * attributes and search, and the lookups the other entry points use to
 * find an object a session may see. The attribute rules themselves are
 * data in slots/object.c. Each function checks in the order of
 * docs/CONFORMANCE.md (the session, the caller's pointers, then the rest)
 * and logs what was wrong with a call it refuses.
 */
#include "gate.h"

/* May the application use t's private objects now? PKCS #11 5.6: with the
 * user logged in, never as the SO. In login=optional mode also before any
 * login: CKF_LOGIN_REQUIRED is clear, so consumers that trust it
 * (SunPKCS11, NSS) never log in, and a login adds no protection there: the
 * KMS alone unseals the token key (docs/OBJECTS.md). */
static bool private_ok(const token_t *t)
{
	return t->login == CKU_USER ||
	       (t->cfg->login == LOGIN_OPTIONAL && t->login == NO_LOGIN);
}

bool user_visible(const session_t *s, const object_t *o)
{
	return !obj_is_private(o) || private_ok(s->tok);
}

/* A token object's record cannot be read or written without the token key.
 * With login=required it needs a PIN, for public objects too: a deviation
 * from the session table of PKCS #11 5.6 (docs/OBJECTS.md). */
static CK_RV no_token_key(const token_t *t, const char *what)
{
	if (t->cfg->login == LOGIN_REQUIRED)
		log_info("api", "%s needs the token key, which needs a login with "
				"login=required, even for a public object",
			 what);
	else
		log_info("api", "%s needs the token key, which is not in memory", what);
	return CKR_USER_NOT_LOGGED_IN;
}

/* Find an object the session may see. need_secret loads the secret
 * attributes of a token object (the token key must be present). */
CK_RV object_inlock(session_t *s, CK_OBJECT_HANDLE h, bool need_secret,
		    object_t **out)
{
	object_t *o = hmap_get(&slots.objects, h);
	if (o && o->tok == s->tok && !o->session && !o->kms) {
		/* Sync first, then look again: a token another process has
		 * re-initialized forgets (frees) its token objects, this one
		 * too (slots/token.c, load_meta), and the refresh below, which
		 * syncs, would read it after. */
		GUARD(token_sync_inlock(s->tok));
		o = hmap_get(&slots.objects, h);
	}
	if (!o || o->tok != s->tok) {
		/* Never issued, destroyed, another token's, or a private
		 * object's handle from before a logout (PKCS #11 5.6), or any
		 * token object's after a re-initialization. */
		log_info("api", "object %lu: no such object on this session's token",
			 (unsigned long)h);
		return CKR_OBJECT_HANDLE_INVALID;
	}
	if (!o->session && !o->kms) {
		CK_RV rv = token_obj_refresh_inlock(s->tok, o, false);
		if (rv == CKR_OBJECT_HANDLE_INVALID) {
			log_info("api", "object %lu: destroyed by another process",
				 (unsigned long)h);
			object_unregister_inlock(o);
			obj_free(o);
		}
		GUARD(rv);
	}
	if (!user_visible(s, o)) {
		log_info("api", "object %lu is private and %s", (unsigned long)h,
			 s->tok->login == CKU_SO ? "the SO is logged in"
						 : "the user is not logged in");
		return CKR_OBJECT_HANDLE_INVALID;
	}
	if (need_secret && !o->session && !o->kms && !o->sec_loaded) {
		if (!s->tok->tk)
			return no_token_key(s->tok, "the object's value");
		GUARD(token_obj_refresh_inlock(s->tok, o, true));
	}
	*out = o;
	return CKR_OK;
}
bool handle_needs_tk_inlock(CK_OBJECT_HANDLE h)
{
	object_t *o = hmap_get(&slots.objects, h);
	return o && !o->session && !o->kms && !o->sec_loaded;
}

/* --- objects ------------------------------------------------------------- */

/* Make o visible: persist it first when it is a token object. Takes o. */
CK_RV publish_inlock(session_t *s, object_t *o, CK_OBJECT_HANDLE *ph)
{
	token_t *t = s->tok;
	CK_RV rv = CKR_OK;
	o->tok = t;
	if (obj_is_token(o) && !(s->flags & CKF_RW_SESSION))
		rv = api_refuse(CKR_SESSION_READ_ONLY, "a token object needs a read/write session");
	else if (obj_is_private(o) && !private_ok(t))
		rv = api_refuse(CKR_USER_NOT_LOGGED_IN,
				t->login == CKU_SO ? "the SO cannot make private objects"
						   : "a private object needs the user logged in");
	if (rv == CKR_OK && obj_is_token(o)) {
		rv = token_sync_inlock(t);
		if (rv == CKR_OK && !t->initialized)
			rv = api_refuse(CKR_USER_NOT_LOGGED_IN,
					"the token is not initialized (C_InitToken)");
		if (rv == CKR_OK && !t->tk)
			rv = no_token_key(t, "a token object's record");
		if (rv == CKR_OK)
			rv = token_obj_persist_inlock(t, o);
	} else {
		o->session = s->handle;
	}
	if (rv == CKR_OK)
		rv = object_register_inlock(o);
	if (rv != CKR_OK) {
		obj_free(o);
		return rv;
	}
	*ph = o->handle;
	return CKR_OK;
}

bool tmpl_says_token(const CK_ATTRIBUTE *tmpl, CK_ULONG n)
{
	const CK_ATTRIBUTE *a = tmpl_find(tmpl, n, CKA_TOKEN);
	return a && a->ulValueLen == sizeof(CK_BBOOL) && a->pValue &&
	       *(CK_BBOOL *)a->pValue;
}

/* A template the caller passed can be read: a pointer for its entries. */
#define TMPL_OK(p, n) ((p) || !(n))

CK_RV ep_CreateObject(CK_SESSION_HANDLE hSession, CK_ATTRIBUTE_PTR pTemplate,
		      CK_ULONG ulCount, CK_OBJECT_HANDLE_PTR phObject)
{
	CK_RV rv;
	unsigned waited = 0;
	do { /* again while the store is busy (slots_busy_wait) */
		GUARD(enter());
		session_t *s;
		object_t *o = NULL;
		rv = session_args_inlock(hSession, phObject && TMPL_OK(pTemplate, ulCount),
					 "phObject or pTemplate", &s);
		/* The template's errors, then the token key (as C_GenerateKey). */
		if (rv == CKR_OK)
			rv = obj_build(ORIGIN_CREATE, pTemplate, ulCount, NULL, 0,
				       (obj_actor){.so = s->tok->login == CKU_SO}, &o);
		if (rv == CKR_OK)
			rv = unseal_if_needed(hSession, obj_is_token(o));
		if (rv == CKR_OK)
			rv = session_again_inlock(hSession, &s);
		if (rv == CKR_OK) {
			rv = publish_inlock(s, o, phObject);
			o = NULL; /* taken */
		}
		obj_free(o);
		UNLOCK();
	} while (slots_busy_wait(&rv, &waited));
	return LEAVE(rv);
}

CK_RV ep_CopyObject(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject,
		    CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulCount,
		    CK_OBJECT_HANDLE_PTR phNewObject)
{
	CK_RV rv;
	unsigned waited = 0;
	do { /* again while the store is busy (slots_busy_wait) */
		GUARD(enter());
		session_t *s;
		object_t *src = NULL, *o = NULL;
		rv = session_args_inlock(hSession, phNewObject && TMPL_OK(pTemplate, ulCount),
					 "phNewObject or pTemplate", &s);
		if (rv == CKR_OK)
			rv = unseal_if_needed(hSession, handle_needs_tk_inlock(hObject) ||
								tmpl_says_token(pTemplate, ulCount));
		if (rv == CKR_OK)
			rv = session_again_inlock(hSession, &s);
		if (rv == CKR_OK)
			rv = object_inlock(s, hObject, true, &src);
		if (rv == CKR_OK && !obj_bool(src, CKA_COPYABLE, true))
			rv = api_refuse(CKR_ACTION_PROHIBITED, "the object's CKA_COPYABLE is FALSE");
		if (rv == CKR_OK && !(o = obj_clone(src)))
			rv = CKR_HOST_MEMORY;
		if (rv == CKR_OK) {
			rv = obj_modify(o, pTemplate, ulCount, true,
					(obj_actor){.so = s->tok->login == CKU_SO});
			if (rv == CKR_OK)
				rv = publish_inlock(s, o, phNewObject);
			else
				obj_free(o);
		}
		UNLOCK();
	} while (slots_busy_wait(&rv, &waited));
	return LEAVE(rv);
}

CK_RV ep_DestroyObject(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject)
{
	CK_RV rv;
	unsigned waited = 0;
	do { /* again while the store is busy (slots_busy_wait) */
		GUARD(enter());
		session_t *s;
		object_t *o = NULL;
		rv = session_args_inlock(hSession, true, NULL, &s);
		if (rv == CKR_OK)
			rv = object_inlock(s, hObject, false, &o);
		if (rv == CKR_OK && !obj_bool(o, CKA_DESTROYABLE, true))
			rv = api_refuse(CKR_ACTION_PROHIBITED,
					o->kms ? "a KMS key object is not destroyable"
					       : "the object's CKA_DESTROYABLE is FALSE");
		if (rv == CKR_OK && !o->session && !(s->flags & CKF_RW_SESSION))
			rv = api_refuse(CKR_SESSION_READ_ONLY,
					"destroying a token object needs a read/write session");
		if (rv == CKR_OK && !o->session) {
			rv = token_obj_delete_inlock(s->tok, o);
			if (rv == CKR_OBJECT_HANDLE_INVALID) { /* already gone elsewhere */
				log_info("api", "object %lu: destroyed by another process",
					 (unsigned long)hObject);
				object_unregister_inlock(o);
				obj_free(o);
			}
		}
		if (rv == CKR_OK) {
			object_unregister_inlock(o);
			obj_free(o);
		}
		UNLOCK();
	} while (slots_busy_wait(&rv, &waited));
	return LEAVE(rv);
}

CK_RV ep_GetObjectSize(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject,
		       CK_ULONG_PTR pulSize)
{
	GUARD(enter());
	session_t *s;
	object_t *o = NULL;
	CK_RV rv = session_args_inlock(hSession, pulSize != NULL, "pulSize", &s);
	if (rv == CKR_OK)
		rv = object_inlock(s, hObject, false, &o);
	if (rv == CKR_OK)
		*pulSize = obj_size(o);
	UNLOCK();
	return LEAVE(rv);
}

static bool tmpl_wants_secret(const CK_ATTRIBUTE *tmpl, CK_ULONG n)
{
	for (CK_ULONG i = 0; i < n; i++)
		if (obj_is_secret_attr(tmpl[i].type))
			return true;
	return false;
}
/* The attributes of a KMS key pair that come from the KMS (docs/SIGNING.md):
 * the public key's, and the role attributes when the configuration left
 * the role to the KMS. */
static bool kms_learned_attr(CK_ATTRIBUTE_TYPE t, bool role_open)
{
	switch (t) {
	case CKA_MODULUS:
	case CKA_MODULUS_BITS:
	case CKA_PUBLIC_EXPONENT:
	case CKA_EC_PARAMS:
	case CKA_EC_POINT:
	case CKA_PUBLIC_KEY_INFO:
	case CKA_P11KMS_KMS_KEY_VERSION:
		return true;
	case CKA_SIGN:
	case CKA_VERIFY:
	case CKA_ENCRYPT:
	case CKA_DECRYPT:
	case CKA_WRAP:
	case CKA_UNWRAP:
		return role_open;
	default:
		return false;
	}
}

static bool tmpl_wants_learned(const CK_ATTRIBUTE *tmpl, CK_ULONG n, bool role_open)
{
	for (CK_ULONG i = 0; i < n; i++)
		if (kms_learned_attr(tmpl[i].type, role_open))
			return true;
	return false;
}

/* Is o a KMS key pair face that has not heard from the KMS yet? */
static bool kms_unlearned_inlock(const object_t *o)
{
	return o->kms && (o->kms_role == KMS_ROLE_PUBLIC || o->kms_role == KMS_ROLE_PRIVATE) &&
	       !token_kms_asym_known_inlock(o->tok, o->kms_index);
}

/* A KMS key pair's public key (and, if the configuration left it, its
 * role) comes from the KMS the first time it is asked for
 * (docs/SIGNING.md), without the module lock. */
static CK_RV kms_public_if_needed(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject,
				  const CK_ATTRIBUTE *tmpl, CK_ULONG n)
{
	GUARD(enter());
	session_t *s = session_inlock(hSession);
	/* Not object_inlock: what is wrong with the handle is the caller's to
	 * report and log, once. KMS key objects are public. */
	object_t *o = hmap_get(&slots.objects, hObject);
	if (!s || !o || o->tok != s->tok || !kms_unlearned_inlock(o) ||
	    !tmpl_wants_learned(tmpl, n, !o->tok->cfg->keys[o->kms_index].usage_given)) {
		UNLOCK(); /* nothing to fetch */
		return CKR_OK;
	}
	token_t *tok = s->tok;
	size_t idx = o->kms_index;
	UNLOCK();
	CK_RV rv = token_kms_asym_resolve(tok, idx);
	if (rv != CKR_OK)
		note_remote_failure(hSession);
	/* C_GetAttributeValue has no CKR_KEY_TYPE_INCONSISTENT: the KMS's
	 * refusal is a device error here, ulDeviceError says which. */
	return rv == CKR_OK || rv == CKR_HOST_MEMORY ? rv : CKR_DEVICE_ERROR;
}

/* C_FindObjectsInit with a template that names what only the KMS knows
 * of a key pair: ask it first, for each such key of the session's token
 * (once per process). A key the KMS cannot describe now matches nothing
 * it would have to tell; the log says so. */
static void kms_public_for_find(CK_SESSION_HANDLE hSession, const CK_ATTRIBUTE *tmpl,
				CK_ULONG n)
{
	size_t next = 0, failed = SIZE_MAX;
	/* most searches name nothing only a KMS knows: no lock taken */
	if (!tmpl || !tmpl_wants_learned(tmpl, n, true))
		return;
	for (;;) {
		if (enter() != CKR_OK)
			return;
		session_t *s = session_inlock(hSession);
		token_t *tok = s ? s->tok : NULL;
		bool ask = false;
		size_t idx = 0;
		while (tok && next < tok->nkms && !ask) {
			object_t *o = tok->kms_objs[next++];
			idx = o->kms_index;
			ask = idx != failed && kms_unlearned_inlock(o) &&
			      tmpl_wants_learned(tmpl, n, !tok->cfg->keys[idx].usage_given);
		}
		UNLOCK();
		if (!ask)
			return;
		if (token_kms_asym_resolve(tok, idx) != CKR_OK) {
			log_warn("api", "C_FindObjectsInit: KMS key \"%s\" could not be described; "
					"it matches no attribute only the KMS knows",
				 tok->cfg->keys[idx].label);
			failed = idx;
		}
	}
}

/* Say which entries were not given (PKCS #11 5.7 marks each
 * CK_UNAVAILABLE_INFORMATION). */
static void log_unavailable(const CK_ATTRIBUTE *tmpl, CK_ULONG n)
{
	for (CK_ULONG i = 0; i < n; i++)
		if (tmpl[i].ulValueLen == CK_UNAVAILABLE_INFORMATION)
			log_debug("api", "attribute 0x%lx (entry %lu) not given: sensitive, "
					"not an attribute of this object, or its buffer too small",
				 (unsigned long)tmpl[i].type, (unsigned long)i);
}

CK_RV ep_GetAttributeValue(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject,
			   CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulCount)
{
	GUARD(enter());
	session_t *s;
	CK_RV rv = session_args_inlock(hSession, TMPL_OK(pTemplate, ulCount), "pTemplate", &s);
	UNLOCK();
	GUARD(LEAVE(rv));
	GUARD(LEAVE(kms_public_if_needed(hSession, hObject, pTemplate, ulCount)));
	GUARD(enter());
	bool secret = tmpl_wants_secret(pTemplate, ulCount);
	object_t *o = NULL;
	rv = session_again_inlock(hSession, &s);
	if (rv == CKR_OK)
		rv = unseal_if_needed(hSession, secret && handle_needs_tk_inlock(hObject));
	if (rv == CKR_OK)
		rv = session_again_inlock(hSession, &s);
	if (rv == CKR_OK)
		rv = object_inlock(s, hObject, false, &o);
	/* Load the value only when it could be revealed and the token key is
	 * at hand; otherwise it is reported as sensitive. */
	if (rv == CKR_OK && secret && !o->session && !o->kms && !o->sec_loaded &&
	    s->tok->tk &&
	    (obj_ulong(o, CKA_CLASS, 0) == CKO_DATA ||
	     (!obj_bool(o, CKA_SENSITIVE, true) && obj_bool(o, CKA_EXTRACTABLE, false))))
		rv = object_inlock(s, hObject, true, &o);
	if (rv == CKR_OK) {
		rv = token_obj_get_attributes_inlock(s->tok, o, pTemplate, ulCount);
		if (rv != CKR_OK && rv != CKR_BUFFER_TOO_SMALL) /* not a refusal (leave) */
			log_unavailable(pTemplate, ulCount);
	}
	UNLOCK();
	return LEAVE(rv);
}

CK_RV ep_SetAttributeValue(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject,
			   CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulCount)
{
	CK_RV rv;
	unsigned waited = 0;
	do { /* again while the store is busy (slots_busy_wait) */
		GUARD(enter());
		session_t *s;
		object_t *o = NULL, *n = NULL;
		rv = session_args_inlock(hSession, TMPL_OK(pTemplate, ulCount), "pTemplate", &s);
		if (rv == CKR_OK)
			rv = unseal_if_needed(hSession, handle_needs_tk_inlock(hObject));
		if (rv == CKR_OK)
			rv = session_again_inlock(hSession, &s);
		if (rv == CKR_OK)
			rv = object_inlock(s, hObject, true, &o);
		if (rv == CKR_OK && !o->session && !(s->flags & CKF_RW_SESSION))
			rv = api_refuse(CKR_SESSION_READ_ONLY,
					"changing a token object needs a read/write session");
		/* Change a copy, store it, then swap: a failure changes nothing. */
		if (rv == CKR_OK && !(n = obj_clone(o)))
			rv = CKR_HOST_MEMORY;
		if (rv == CKR_OK) {
			memcpy(n->uid, o->uid, 16);
			rv = obj_modify(n, pTemplate, ulCount, false,
					(obj_actor){.so = s->tok->login == CKU_SO});
			/* keep the identity: the clone got a fresh CKA_UNIQUE_ID */
			const attr_t *uid = obj_attr(o, CKA_UNIQUE_ID);
			if (rv == CKR_OK && uid && !obj_set(n, CKA_UNIQUE_ID, uid->val, uid->len))
				rv = CKR_HOST_MEMORY;
		}
		if (rv == CKR_OK && !o->session && !s->tok->tk)
			rv = no_token_key(s->tok, "changing a token object");
		if (rv == CKR_OK && !o->session) {
			n->rowid = o->rowid;
			rv = token_obj_update_inlock(s->tok, n);
		}
		if (rv == CKR_OK) {
			attr_t *tmp = o->attrs;
			size_t tn = o->nattrs;
			o->attrs = n->attrs;
			o->nattrs = n->nattrs;
			n->attrs = tmp;
			n->nattrs = tn;
		}
		obj_free(n);
		UNLOCK();
	} while (slots_busy_wait(&rv, &waited));
	return LEAVE(rv);
}

CK_RV ep_FindObjectsInit(CK_SESSION_HANDLE hSession, CK_ATTRIBUTE_PTR pTemplate,
			 CK_ULONG ulCount)
{
	kms_public_for_find(hSession, pTemplate, ulCount);
	GUARD(enter());
	session_t *s;
	CK_RV rv = session_args_inlock(hSession, TMPL_OK(pTemplate, ulCount), "pTemplate", &s);
	/* A value to match that is not there: nothing can be compared with
	 * it (and the matchers would read from NULL). */
	for (CK_ULONG i = 0; rv == CKR_OK && i < ulCount; i++)
		if (!pTemplate[i].pValue && pTemplate[i].ulValueLen) {
			log_info("api", "C_FindObjectsInit: pTemplate[%lu] (attribute 0x%lx) has "
					"a NULL pValue and ulValueLen %lu",
				 (unsigned long)i, (unsigned long)pTemplate[i].type,
				 (unsigned long)pTemplate[i].ulValueLen);
			rv = CKR_ATTRIBUTE_VALUE_INVALID;
		}
	if (rv == CKR_OK)
		rv = unseal_if_needed(hSession, tmpl_wants_secret(pTemplate, ulCount));
	if (rv == CKR_OK)
		rv = session_again_inlock(hSession, &s);
	/* CKR_OPERATION_ACTIVE last, as for every function that starts one. */
	if (rv == CKR_OK && s->find.active)
		rv = api_refuse(CKR_OPERATION_ACTIVE, "a search is active in this session");
	CK_OBJECT_HANDLE *h = NULL;
	size_t cnt = 0, cap = 0;
	if (rv == CKR_OK) {
		size_t it = 0;
		uint64_t k;
		void *v;
		while (rv == CKR_OK && hmap_next(&s->tok->session_objs, &it, &k, &v)) {
			object_t *o = v;
			if (!user_visible(s, o) || !obj_match(o, pTemplate, ulCount))
				continue;
			if (cnt == cap) {
				cap = cap ? cap * 2 : 16;
				CK_OBJECT_HANDLE *nh = realloc(h, cap * sizeof(*nh));
				if (!nh) {
					rv = CKR_HOST_MEMORY;
					break;
				}
				h = nh;
			}
			h[cnt++] = o->handle;
		}
	}
	for (size_t i = 0; rv == CKR_OK && i < s->tok->nkms; i++) {
		object_t *o = s->tok->kms_objs[i];
		if (!user_visible(s, o) || !obj_match(o, pTemplate, ulCount))
			continue;
		CK_OBJECT_HANDLE *nh = realloc(h, (cnt + 1) * sizeof(*nh));
		if (!nh) {
			rv = CKR_HOST_MEMORY;
			break;
		}
		h = nh;
		h[cnt++] = o->handle;
		cap = cnt;
	}
	if (rv == CKR_OK)
		rv = token_obj_find_inlock(s->tok, pTemplate, ulCount, private_ok(s->tok), &h,
					   &cnt);
	if (rv == CKR_OK) {
		s->find = (find_state){.active = true, .handles = h, .n = cnt};
	} else {
		free(h);
	}
	UNLOCK();
	return LEAVE(rv);
}

/* Session h with a search running: checked before the arguments, as for
 * every call on a running operation (docs/CONFORMANCE.md). */
static CK_RV find_session_inlock(CK_SESSION_HANDLE h, session_t **s)
{
	GUARD(session_args_inlock(h, true, NULL, s));
	if (!(*s)->find.active)
		return api_refuse(CKR_OPERATION_NOT_INITIALIZED,
				  "no search is active in this session");
	return CKR_OK;
}

CK_RV ep_FindObjects(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE_PTR phObject,
		     CK_ULONG ulMaxObjectCount, CK_ULONG_PTR pulObjectCount)
{
	GUARD(enter());
	session_t *s;
	CK_RV rv = find_session_inlock(hSession, &s);
	if (rv == CKR_OK && ((!phObject && ulMaxObjectCount) || !pulObjectCount))
		rv = api_refuse(CKR_ARGUMENTS_BAD, "phObject or pulObjectCount is NULL");
	if (rv == CKR_OK) {
		CK_ULONG n = 0;
		while (n < ulMaxObjectCount && s->find.pos < s->find.n) {
			CK_OBJECT_HANDLE h = s->find.handles[s->find.pos++];
			/* Skip objects destroyed since the search began, and
			 * private ones after a logout (PKCS #11 5.6): their
			 * handles are gone, or no longer visible. */
			object_t *o = hmap_get(&slots.objects, h);
			if (o && user_visible(s, o))
				phObject[n++] = h;
		}
		*pulObjectCount = n;
	}
	UNLOCK();
	return LEAVE(rv);
}

CK_RV ep_FindObjectsFinal(CK_SESSION_HANDLE hSession)
{
	GUARD(enter());
	session_t *s;
	CK_RV rv = find_session_inlock(hSession, &s);
	if (rv == CKR_OK) {
		free(s->find.handles);
		memset(&s->find, 0, sizeof(s->find));
	}
	UNLOCK();
	return LEAVE(rv);
}
