/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Slots, tokens and sessions: slot and token information, the mechanism
 * list, C_InitToken and the PIN functions, sessions and their reference
 * counts, login and logout, the unseal at first need, the session's device
 * error, and C_SessionCancel. Every function goes through the gate
 * (gate.h).
 */
#include "gate.h"

session_t *session_inlock(CK_SESSION_HANDLE h)
{
	return hmap_get(&mod.sessions, h);
}

/* PKCS #11 5.1.7: the session's errors (5.1.2) outrank all others; then
 * the caller's pointers (docs/CONFORMANCE.md). */
CK_RV session_args_inlock(CK_SESSION_HANDLE h, bool args_ok, const char *what,
			  session_t **s)
{
	if (!(*s = session_inlock(h))) {
		log_info("api", "session %lu does not exist (never opened, or closed)",
			 (unsigned long)h);
		return CKR_SESSION_HANDLE_INVALID;
	}
	if (!args_ok) {
		log_info("api", "%s is NULL", what);
		return CKR_ARGUMENTS_BAD;
	}
	return CKR_OK;
}

CK_RV session_again_inlock(CK_SESSION_HANDLE h, session_t **s)
{
	if (!(*s = session_inlock(h))) {
		log_info("api", "session %lu was closed while the module lock was released",
			 (unsigned long)h);
		return CKR_SESSION_CLOSED;
	}
	return CKR_OK;
}

CK_RV api_refuse(CK_RV rv, const char *why)
{
	log_info("api", "%s", why);
	return rv;
}

/* PKCS #11 v2.40 5.6, C_Logout: "any of the application's handles to
 * private objects become invalid (even if a user is later logged back into
 * the token, those handles remain invalid)", and private session objects
 * are destroyed. A private token object stays in the store: a search
 * registers it again, under a new handle. Called wherever the
 * application's user stops being logged in. */
static void forget_private_inlock(token_t *t)
{
	token_forget_private_inlock(t);
}

static void session_free(session_t *s);

/* Sessions are reference counted: the session table holds one reference,
 * each call working on the session (with the module lock dropped) one
 * more. Taking one needs the lock (the lookup); dropping one does not. */
void sess_ref_inlock(session_t *s)
{
	__atomic_add_fetch(&s->refs, 1, __ATOMIC_RELAXED);
}

void sess_unref(session_t *s)
{
	if (__atomic_sub_fetch(&s->refs, 1, __ATOMIC_ACQ_REL) == 0)
		session_free(s);
}

static void session_free(session_t *s)
{
	cipher_op_free(&s->enc);
	cipher_op_free(&s->dec);
	dbuf_free(&s->spare);
	mac_op_free(&s->dig);
	mac_op_free(&s->sig);
	mac_op_free(&s->ver);
	msg_op_free(&s->menc);
	msg_op_free(&s->mdec);
	free(s->find.handles);
	pthread_mutex_destroy(&s->oplock);
	free(s);
}

/* Take a reference and the session's operation lock; the module lock is
 * released so bulk crypto runs unlocked. */
CK_RV op_begin(CK_SESSION_HANDLE h, session_t **out)
{
	GUARD(enter());
	session_t *s = session_inlock(h);
	if (!s) {
		UNLOCK();
		return CKR_SESSION_HANDLE_INVALID;
	}
	sess_ref_inlock(s);
	UNLOCK();
	pthread_mutex_lock(&s->oplock);
	*out = s;
	return CKR_OK;
}

void op_end(session_t *s)
{
	pthread_mutex_unlock(&s->oplock);
	sess_unref(s);
}

/* In login=optional mode the token key is unsealed at first need. The
 * KMS call releases the lock (gate.h), so the session is looked up again
 * after. */
CK_RV unseal_if_needed(CK_SESSION_HANDLE h, bool needed)
{
	session_t *s = session_inlock(h);
	if (!s)
		return CKR_OK;
	token_t *t = s->tok;
	CK_ULONG dev = 0;
	/* A revoked sealing key logs the user out (login=required); that
	 * logout invalidates private handles as C_Logout's does, wherever the
	 * check ran (revalidate.c, revoke_inlock). */
	CK_RV rv = token_revalidate(t, &dev);
	if ((s = session_inlock(h)) && dev) {
		s->deverr = dev;
		s->deverr_revoked = rv != CKR_OK;
	} else if (s && rv == CKR_OK && s->deverr_revoked) {
		/* The token recovered: C_GetSessionInfo no longer names the
		 * revocation (the session's state says whether it is still
		 * logged in). */
		s->deverr = 0;
		s->deverr_revoked = false;
	}
	if (rv != CKR_OK || !needed || !s)
		return rv;
	GUARD(token_sync_inlock(t));
	if (t->tk || t->cfg->login == LOGIN_REQUIRED || !t->initialized)
		return CKR_OK;
	rv = token_ensure_tk(t, &dev);
	if ((s = session_inlock(h)) && dev)
		s->deverr = dev;
	return rv;
}

/* A KMS key pair whose role the configuration left to the KMS
 * (docs/SIGNING.md) learns it before its usage attributes are checked:
 * the KMS is asked, unlocked, once per process. */
static CK_RV kms_role_if_needed(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE key)
{
	session_t *s = session_inlock(h);
	object_t *o = hmap_get(&slots.objects, key);
	if (!s || !o || !o->kms || o->tok != s->tok ||
	    (o->kms_role != KMS_ROLE_PUBLIC && o->kms_role != KMS_ROLE_PRIVATE) ||
	    o->tok->cfg->keys[o->kms_index].usage_given ||
	    token_kms_asym_known_inlock(o->tok, o->kms_index))
		return CKR_OK;
	token_t *t = o->tok;
	size_t idx = o->kms_index;
	UNLOCK();
	CK_RV rv = token_kms_asym_resolve(t, idx);
	if (rv != CKR_OK)
		note_remote_failure(h);
	LOCK();
	return rv;
}

CK_RV unseal_for_key(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE key, bool needed)
{
	object_t *o = hmap_get(&slots.objects, key);
	bool kms = o && o->kms;
	CK_RV rv = unseal_if_needed(h, needed);
	/* Revoked means the token key is gone; a KMS key object never needed
	 * it and is refused by the KMS itself when its own key is disabled. */
	if (rv == CKR_DEVICE_ERROR && kms && !needed && session_inlock(h)) {
		log_debug("api", "the token is revoked; KMS key object %lu is used all the same",
			  (unsigned long)key);
		rv = CKR_OK;
	}
	if (rv == CKR_OK && kms)
		rv = kms_role_if_needed(h, key);
	return rv;
}

/* --- slots and tokens --------------------------------------------------- */

CK_RV ep_GetSlotList(CK_BBOOL tokenPresent, CK_SLOT_ID_PTR pSlotList,
		     CK_ULONG_PTR pulCount)
{
	(void)tokenPresent; /* every slot has its token */
	if (!pulCount)
		return LEAVE(CKR_ARGUMENTS_BAD);
	GUARD(enter());
	CK_RV rv = CKR_OK;
	if (pSlotList && *pulCount < slots.ntokens)
		rv = CKR_BUFFER_TOO_SMALL;
	else if (pSlotList)
		for (size_t i = 0; i < slots.ntokens; i++)
			pSlotList[i] = slots.tokens[i].slot_id;
	*pulCount = slots.ntokens;
	UNLOCK();
	return LEAVE(rv);
}

CK_RV ep_GetSlotInfo(CK_SLOT_ID slotID, CK_SLOT_INFO_PTR pInfo)
{
	if (!pInfo)
		return LEAVE(CKR_ARGUMENTS_BAD);
	GUARD(enter());
	token_t *t = token_by_slot_inlock(slotID);
	if (t) {
		char desc[80];
		snprintf(desc, sizeof(desc), "p11kms %s provider \"%s\"",
			 t->cfg->ops->type, t->cfg->name);
		memset(pInfo, 0, sizeof(*pInfo));
		pad_copy(pInfo->slotDescription, sizeof(pInfo->slotDescription), desc);
		pad_copy(pInfo->manufacturerID, sizeof(pInfo->manufacturerID),
			 "p11kms project");
		pInfo->flags = CKF_TOKEN_PRESENT;
		pInfo->hardwareVersion.major = P11KMS_VERSION_MAJOR;
		pInfo->hardwareVersion.minor = P11KMS_VERSION_MINOR;
		pInfo->firmwareVersion = pInfo->hardwareVersion;
	}
	UNLOCK();
	return LEAVE(t ? CKR_OK : CKR_SLOT_ID_INVALID);
}

static CK_FLAGS pin_flags(uint32_t fails, CK_FLAGS low, CK_FLAGS final,
			  CK_FLAGS locked)
{
	if (fails >= PIN_MAX_TRIES)
		return locked;
	if (fails == PIN_MAX_TRIES - 1)
		return low | final;
	return fails ? low : 0;
}

CK_RV ep_GetTokenInfo(CK_SLOT_ID slotID, CK_TOKEN_INFO_PTR pInfo)
{
	if (!pInfo)
		return LEAVE(CKR_ARGUMENTS_BAD);
	GUARD(enter());
	token_t *t = token_by_slot_inlock(slotID);
	CK_RV rv = t ? token_sync_inlock(t) : CKR_SLOT_ID_INVALID;
	if (rv == CKR_OK) {
		memset(pInfo, 0, sizeof(*pInfo));
		pad_copy(pInfo->label, sizeof(pInfo->label),
			 t->initialized ? t->label : "");
		pad_copy(pInfo->manufacturerID, sizeof(pInfo->manufacturerID),
			 "p11kms project");
		pad_copy(pInfo->model, sizeof(pInfo->model), t->cfg->ops->type);
		pad_copy(pInfo->serialNumber, sizeof(pInfo->serialNumber),
			 t->initialized ? t->serial : "");
		pInfo->flags = CKF_RNG;
		if (t->cfg->login == LOGIN_REQUIRED)
			pInfo->flags |= CKF_LOGIN_REQUIRED;
		if (t->initialized)
			pInfo->flags |= CKF_TOKEN_INITIALIZED;
		if (t->user_pin_set)
			pInfo->flags |= CKF_USER_PIN_INITIALIZED;
		pInfo->flags |= pin_flags(t->user_fail, CKF_USER_PIN_COUNT_LOW,
					  CKF_USER_PIN_FINAL_TRY, CKF_USER_PIN_LOCKED);
		pInfo->flags |= pin_flags(t->so_fail, CKF_SO_PIN_COUNT_LOW,
					  CKF_SO_PIN_FINAL_TRY, CKF_SO_PIN_LOCKED);
		pInfo->ulMaxSessionCount = t->cfg->max_sessions;
		pInfo->ulSessionCount = t->nsessions;
		pInfo->ulMaxRwSessionCount = t->cfg->max_sessions;
		pInfo->ulRwSessionCount = t->nrw;
		pInfo->ulMaxPinLen = PIN_MAX;
		pInfo->ulMinPinLen = PIN_MIN;
		pInfo->ulTotalPublicMemory = CK_UNAVAILABLE_INFORMATION;
		pInfo->ulFreePublicMemory = CK_UNAVAILABLE_INFORMATION;
		pInfo->ulTotalPrivateMemory = CK_UNAVAILABLE_INFORMATION;
		pInfo->ulFreePrivateMemory = CK_UNAVAILABLE_INFORMATION;
		pInfo->hardwareVersion.major = P11KMS_VERSION_MAJOR;
		pInfo->hardwareVersion.minor = P11KMS_VERSION_MINOR;
		pInfo->firmwareVersion = pInfo->hardwareVersion;
		memset(pInfo->utcTime, ' ', sizeof(pInfo->utcTime));
	}
	UNLOCK();
	return LEAVE(rv);
}

/* Mechanisms with no local key type (RSA-OAEP) are offered only where a
 * KMS key of their type is configured; the vendor envelope only where
 * there is a KMS key object at all. */
bool mech_offered_inlock(const token_t *t, const mech_info *m)
{
	if (m->remote)
		return t->nkms > 0;
	if (!m->kms_only)
		return true;
	for (size_t i = 0; i < t->nkms; i++)
		if (obj_ulong(t->kms_objs[i], CKA_KEY_TYPE, 0) == m->key_type)
			return true;
	return false;
}

CK_RV ep_GetMechanismList(CK_SLOT_ID slotID, CK_MECHANISM_TYPE_PTR pList,
			  CK_ULONG_PTR pulCount)
{
	if (!pulCount)
		return LEAVE(CKR_ARGUMENTS_BAD);
	GUARD(enter());
	token_t *t = token_by_slot_inlock(slotID);
	CK_RV rv = t ? CKR_OK : CKR_SLOT_ID_INVALID;
	CK_ULONG n = 0;
	for (size_t i = 0; t && i < mech_count(); i++)
		n += mech_offered_inlock(t, mech_at(i));
	if (rv == CKR_OK && pList && *pulCount < n)
		rv = CKR_BUFFER_TOO_SMALL;
	else if (rv == CKR_OK && pList)
		for (size_t i = 0, j = 0; i < mech_count(); i++)
			if (mech_offered_inlock(t, mech_at(i)))
				pList[j++] = mech_at(i)->type;
	if (rv == CKR_OK || rv == CKR_BUFFER_TOO_SMALL)
		*pulCount = n;
	UNLOCK();
	return LEAVE(rv);
}

CK_RV ep_GetMechanismInfo(CK_SLOT_ID slotID, CK_MECHANISM_TYPE type,
			  CK_MECHANISM_INFO_PTR pInfo)
{
	if (!pInfo)
		return LEAVE(CKR_ARGUMENTS_BAD);
	GUARD(enter());
	token_t *t = token_by_slot_inlock(slotID);
	CK_RV rv = t ? CKR_OK : CKR_SLOT_ID_INVALID;
	const mech_info *m = mech_lookup(type);
	if (rv == CKR_OK && (!m || !mech_offered_inlock(t, m)))
		rv = CKR_MECHANISM_INVALID;
	UNLOCK();
	if (rv == CKR_OK) {
		pInfo->ulMinKeySize = m->min_key;
		pInfo->ulMaxKeySize = m->max_key;
		pInfo->flags = m->flags;
	}
	return LEAVE(rv);
}

CK_RV ep_InitToken(CK_SLOT_ID slotID, CK_UTF8CHAR_PTR pPin,
		   CK_ULONG ulPinLen, CK_UTF8CHAR_PTR pLabel)
{
	if (!pPin || !pLabel)
		return LEAVE(CKR_ARGUMENTS_BAD);
	GUARD(enter());
	token_t *t = token_by_slot_inlock(slotID);
	CK_RV rv = CKR_OK;
	CK_ULONG dev = 0;
	if (!t)
		rv = CKR_SLOT_ID_INVALID;
	else if (t->nsessions)
		rv = CKR_SESSION_EXISTS;
	else if (t->unsealing)
		rv = CKR_FUNCTION_FAILED;
	if (rv == CKR_OK)
		rv = token_init(t, pPin, ulPinLen, pLabel, &dev);
	UNLOCK();
	return LEAVE(rv);
}

/* No protected authentication path: a PIN must be given, even of length 0. */
#define NO_PROTECTED_PATH "(no protected authentication path: a PIN must be given)"

CK_RV ep_InitPIN(CK_SESSION_HANDLE hSession, CK_UTF8CHAR_PTR pPin,
		 CK_ULONG ulPinLen)
{
	GUARD(enter());
	session_t *s;
	CK_RV rv = session_args_inlock(hSession, pPin != NULL, "pPin " NO_PROTECTED_PATH, &s);
	if (rv == CKR_OK && s->tok->login != CKU_SO)
		rv = api_refuse(CKR_USER_NOT_LOGGED_IN, "C_InitPIN needs the SO logged in");
	else if (rv == CKR_OK && !(s->flags & CKF_RW_SESSION))
		rv = api_refuse(CKR_SESSION_READ_ONLY, "C_InitPIN needs a read/write session");
	if (rv == CKR_OK) {
		CK_ULONG dev = 0;
		sess_ref_inlock(s);
		rv = token_init_pin(s->tok, pPin, ulPinLen, &dev);
		session_t *again = session_inlock(hSession); /* the lock was released */
		if (dev && again)
			again->deverr = dev;
		sess_unref(s);
	}
	UNLOCK();
	return LEAVE(rv);
}

CK_RV ep_SetPIN(CK_SESSION_HANDLE hSession, CK_UTF8CHAR_PTR pOldPin,
		CK_ULONG ulOldLen, CK_UTF8CHAR_PTR pNewPin, CK_ULONG ulNewLen)
{
	GUARD(enter());
	session_t *s;
	CK_RV rv = session_args_inlock(hSession, pOldPin && pNewPin,
				       "pOldPin or pNewPin " NO_PROTECTED_PATH, &s);
	if (rv == CKR_OK && !(s->flags & CKF_RW_SESSION))
		rv = api_refuse(CKR_SESSION_READ_ONLY, "C_SetPIN needs a read/write session");
	if (rv == CKR_OK) {
		sess_ref_inlock(s);
		rv = token_set_pin(s->tok, s->tok->login == CKU_SO ? CKU_SO : CKU_USER, pOldPin,
				   ulOldLen, pNewPin, ulNewLen);
		sess_unref(s);
	}
	UNLOCK();
	return LEAVE(rv);
}

/* --- sessions ------------------------------------------------------------ */

CK_RV ep_OpenSession(CK_SLOT_ID slotID, CK_FLAGS flags,
		     CK_VOID_PTR pApplication, CK_NOTIFY Notify,
		     CK_SESSION_HANDLE_PTR phSession)
{
	(void)pApplication;
	(void)Notify; /* no callbacks are ever made */
	if (!phSession)
		return LEAVE(CKR_ARGUMENTS_BAD);
	if (!(flags & CKF_SERIAL_SESSION))
		return LEAVE(CKR_SESSION_PARALLEL_NOT_SUPPORTED);
	GUARD(enter());
	token_t *t = token_by_slot_inlock(slotID);
	CK_RV rv = t ? token_sync_inlock(t) : CKR_SLOT_ID_INVALID;
	session_t *s = NULL;
	if (rv == CKR_OK && !(flags & CKF_RW_SESSION) && t->login == CKU_SO)
		rv = CKR_SESSION_READ_WRITE_SO_EXISTS;
	if (rv == CKR_OK && t->nsessions >= t->cfg->max_sessions)
		rv = CKR_SESSION_COUNT;
	if (rv == CKR_OK && !(s = calloc(1, sizeof(*s))))
		rv = CKR_HOST_MEMORY;
	if (rv == CKR_OK) {
		s->handle = ++mod.next_session;
		s->refs = 1; /* held by the session table */
		s->tok = t;
		s->flags = flags & (CKF_SERIAL_SESSION | CKF_RW_SESSION);
		pthread_mutex_init(&s->oplock, NULL);
		if (!hmap_put(&mod.sessions, s->handle, s)) {
			pthread_mutex_destroy(&s->oplock);
			free(s);
			rv = CKR_HOST_MEMORY;
		}
	}
	if (rv == CKR_OK) {
		t->nsessions++;
		if (flags & CKF_RW_SESSION)
			t->nrw++;
		*phSession = s->handle;
	}
	UNLOCK();
	return LEAVE(rv);
}

static void close_session_inlock(session_t *s)
{
	token_t *t = s->tok;
	hmap_del(&mod.sessions, s->handle);
	/* Session objects die with the session that made them. */
	size_t it = 0;
	uint64_t k;
	void *v;
	while (hmap_next(&t->session_objs, &it, &k, &v)) {
		object_t *o = v;
		if (o->session == s->handle) {
			object_unregister_inlock(o);
			obj_free(o);
		}
	}
	t->nsessions--;
	if (s->flags & CKF_RW_SESSION)
		t->nrw--;
	/* Closing the last session logs the application out (5.6), and its
	 * private handles go as at C_Logout. */
	if (t->nsessions == 0 && t->login != NO_LOGIN) {
		(void)token_logout_inlock(t);
		forget_private_inlock(t);
	}
	s->closed = true;
	sess_unref(s); /* the table's reference; calls in flight hold theirs */
}

CK_RV ep_CloseSession(CK_SESSION_HANDLE hSession)
{
	GUARD(enter());
	session_t *s;
	CK_RV rv = session_args_inlock(hSession, true, NULL, &s);
	if (rv == CKR_OK)
		close_session_inlock(s);
	UNLOCK();
	return LEAVE(rv);
}

CK_RV ep_CloseAllSessions(CK_SLOT_ID slotID)
{
	GUARD(enter());
	token_t *t = token_by_slot_inlock(slotID);
	if (t) {
		size_t it = 0;
		uint64_t k;
		void *v;
		while (hmap_next(&mod.sessions, &it, &k, &v))
			if (((session_t *)v)->tok == t)
				close_session_inlock(v);
	}
	UNLOCK();
	if (!t)
		log_info("api", "no slot %lu", (unsigned long)slotID);
	return LEAVE(t ? CKR_OK : CKR_SLOT_ID_INVALID);
}

CK_RV ep_GetSessionInfo(CK_SESSION_HANDLE hSession, CK_SESSION_INFO_PTR pInfo)
{
	GUARD(enter());
	session_t *s;
	CK_RV rv = session_args_inlock(hSession, pInfo != NULL, "pInfo", &s);
	if (rv == CKR_OK) {
		bool rw = s->flags & CKF_RW_SESSION;
		pInfo->slotID = s->tok->slot_id;
		pInfo->flags = s->flags;
		pInfo->ulDeviceError = s->deverr;
		switch (s->tok->login) {
		case CKU_SO:
			pInfo->state = CKS_RW_SO_FUNCTIONS;
			break;
		case CKU_USER:
			pInfo->state = rw ? CKS_RW_USER_FUNCTIONS : CKS_RO_USER_FUNCTIONS;
			break;
		default:
			pInfo->state = rw ? CKS_RW_PUBLIC_SESSION : CKS_RO_PUBLIC_SESSION;
		}
	}
	UNLOCK();
	return LEAVE(rv);
}

/* May who log in now? (the login state; PKCS #11 5.6, C_Login) */
static CK_RV login_refusal(const session_t *s, CK_USER_TYPE who)
{
	CK_USER_TYPE now = s->tok->login;
	if (who != CKU_SO && who != CKU_USER && who != CKU_CONTEXT_SPECIFIC)
		return api_refuse(CKR_USER_TYPE_INVALID, "no such user type");
	if (who == CKU_CONTEXT_SPECIFIC)
		return now == NO_LOGIN
			       ? api_refuse(CKR_USER_NOT_LOGGED_IN, "nobody is logged in")
			       : api_refuse(CKR_OPERATION_NOT_INITIALIZED,
					    "no operation asks for a context-specific login");
	if (now == who)
		return api_refuse(CKR_USER_ALREADY_LOGGED_IN, "that user is logged in already");
	if (now != NO_LOGIN)
		return api_refuse(CKR_USER_ANOTHER_ALREADY_LOGGED_IN,
				  "the other user is logged in");
	if (who == CKU_SO && s->tok->nrw < s->tok->nsessions)
		return api_refuse(CKR_SESSION_READ_ONLY_EXISTS,
				  "the SO logs in only while every session is read/write");
	return CKR_OK;
}

CK_RV ep_Login(CK_SESSION_HANDLE hSession, CK_USER_TYPE userType,
	       CK_UTF8CHAR_PTR pPin, CK_ULONG ulPinLen)
{
	GUARD(enter());
	session_t *s;
	CK_RV rv = session_args_inlock(hSession, pPin != NULL, "pPin " NO_PROTECTED_PATH, &s);
	if (rv == CKR_OK)
		rv = login_refusal(s, userType);
	if (rv == CKR_OK) {
		CK_ULONG dev = 0;
		sess_ref_inlock(s);
		rv = token_login(s->tok, userType, pPin, ulPinLen, &dev);
		session_t *again = session_inlock(hSession); /* the lock was released */
		if (dev && again)
			again->deverr = dev;
		sess_unref(s);
	}
	UNLOCK();
	return LEAVE(rv);
}

CK_RV ep_Logout(CK_SESSION_HANDLE hSession)
{
	GUARD(enter());
	session_t *s;
	CK_RV rv = session_args_inlock(hSession, true, NULL, &s);
	if (rv == CKR_OK && (rv = token_logout_inlock(s->tok)) != CKR_OK)
		log_info("api", "nobody is logged in");
	if (rv == CKR_OK)
		forget_private_inlock(s->tok);
	UNLOCK();
	return LEAVE(rv);
}

/* A remote operation failed: give the session the provider's reason. */
void note_remote_failure(CK_SESSION_HANDLE h)
{
	LOCK();
	session_t *s = session_inlock(h);
	if (s && s->tok->last.err != P11K_OK)
		s->deverr = p11k_err_to_deverr(s->tok->last.err);
	UNLOCK();
}

/* The KMS refused the key (its declared type is wrong) after the operation
 * began: C_Encrypt and friends have no CKR_KEY_TYPE_INCONSISTENT, and the
 * wrap functions name the wrapping key. ulDeviceError says KEY_TYPE. */
CK_RV kms_key_refused(CK_RV rv, CK_RV as)
{
	return rv == CKR_KEY_TYPE_INCONSISTENT ? as : rv;
}

CK_RV ep_WaitForSlotEvent(CK_FLAGS flags, CK_SLOT_ID_PTR pSlot, CK_VOID_PTR pRes)
{
	(void)pSlot;
	(void)pRes;
	GUARD(enter());
	UNLOCK();
	/* Tokens are never inserted or removed. */
	return (flags & CKF_DONT_BLOCK) ? CKR_NO_EVENT : CKR_FUNCTION_NOT_SUPPORTED;
}

CK_RV ep_SessionCancel(CK_SESSION_HANDLE hSession, CK_FLAGS flags)
{
	session_t *s;
	GUARD(op_begin(hSession, &s));
	if ((flags & CKF_ENCRYPT) && cipher_op_active(&s->enc))
		end_cipher_op(s, &s->enc);
	if ((flags & CKF_DECRYPT) && cipher_op_active(&s->dec))
		end_cipher_op(s, &s->dec);
	if ((flags & CKF_DIGEST) && mac_op_active(&s->dig))
		mac_op_free(&s->dig);
	if ((flags & CKF_SIGN) && mac_op_active(&s->sig))
		mac_op_free(&s->sig);
	if ((flags & CKF_VERIFY) && mac_op_active(&s->ver))
		mac_op_free(&s->ver);
	if ((flags & CKF_MESSAGE_ENCRYPT) && s->menc.active)
		msg_op_free(&s->menc);
	if ((flags & CKF_MESSAGE_DECRYPT) && s->mdec.active)
		msg_op_free(&s->mdec);
	op_end(s);
	if (flags & CKF_FIND_OBJECTS) {
		LOCK();
		if ((s = session_inlock(hSession)) && s->find.active) {
			free(s->find.handles);
			memset(&s->find, 0, sizeof(s->find));
		}
		UNLOCK();
	}
	return CKR_OK;
}
