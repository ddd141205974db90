/* SPDX-License-Identifier: Apache-2.0 */
/*
 * PKCS #11 entry points. Each C_* enters through one gate (initialized?
 * lock), finds its session under the lock, checks state, calls into
 * slots/ or the mechanism table, and leaves through one exit that logs
 * failures. Only C_GetFunctionList, C_GetInterfaceList and C_GetInterface
 * are exported (p11kms.map); everything else is reached through the
 * function lists.
 */
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "slots/config.h"
#include "common/crypto.h"
#include "common/log.h"
#include "module.h"
#include "common/secmem.h"
#include "slots/token.h"

#define EXPORT __attribute__((visibility("default")))

module_t mod;

#define LOCK() pthread_mutex_lock(&slots.lock)
#define UNLOCK() pthread_mutex_unlock(&slots.lock)

/* --- fork: a child starts uninitialized (PKCS #11 6.7.7) ---------------- */

static void fork_prepare(void)
{
	LOCK();
}
static void fork_parent(void)
{
	UNLOCK();
}
static void fork_child(void)
{
	/* The parent's sessions, stores and keys are not ours: forget them
	 * without touching them (SQLite handles must not cross a fork; key
	 * pages were wiped by MADV_WIPEONFORK). */
	pthread_mutex_init(&slots.lock, NULL);
	mod.initialized = false;
	mod.cfg = NULL;
	slots.tokens = NULL;
	slots.ntokens = 0;
	hmap_init(&mod.sessions);
	hmap_init(&slots.objects);
}
static pthread_once_t fork_once = PTHREAD_ONCE_INIT;
static void fork_register(void)
{
	pthread_atfork(fork_prepare, fork_parent, fork_child);
}

/* --- the gate ----------------------------------------------------------- */

static CK_RV enter(void)
{
	LOCK();
	/* A forked child is reset by fork_child(): no getpid() per call. */
	if (!mod.initialized) {
		UNLOCK();
		return CKR_CRYPTOKI_NOT_INITIALIZED;
	}
	return CKR_OK;
}

/* The one exit: failures are logged with the function's name. */
static CK_RV leave(const char *fn, CK_RV rv)
{
	if (rv != CKR_OK && rv != CKR_BUFFER_TOO_SMALL)
		log_info("api", "%s: %s", fn, ckr_name(rv));
	else
		log_trace("api", "%s: %s", fn, ckr_name(rv));
	return rv;
}
#define LEAVE(rv) leave(__func__ + 3, rv)

static session_t *session_inlock(CK_SESSION_HANDLE h)
{
	return hmap_get(&mod.sessions, h);
}

static void session_free(session_t *s);

/* Sessions are reference counted: the session table holds one reference,
 * each call working on the session (with the module lock dropped) one
 * more. Taking one needs the lock (the lookup); dropping one does not. */
static void sess_ref_inlock(session_t *s)
{
	__atomic_add_fetch(&s->refs, 1, __ATOMIC_RELAXED);
}

static void sess_unref(session_t *s)
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
static CK_RV op_begin(CK_SESSION_HANDLE h, session_t **out)
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

static void op_end(session_t *s)
{
	pthread_mutex_unlock(&s->oplock);
	sess_unref(s);
}

static bool user_visible(const session_t *s, const object_t *o)
{
	return !obj_is_private(o) || s->tok->login == CKU_USER;
}

/* Find an object the session may see. need_secret loads the secret
 * attributes of a token object (the token key must be present). */
static CK_RV object_inlock(session_t *s, CK_OBJECT_HANDLE h, bool need_secret,
			   object_t **out)
{
	object_t *o = hmap_get(&slots.objects, h);
	if (!o || o->tok != s->tok)
		return CKR_OBJECT_HANDLE_INVALID;
	if (!o->session && !o->kms) {
		CK_RV rv = token_obj_refresh_inlock(s->tok, o, false);
		if (rv == CKR_OBJECT_HANDLE_INVALID) {
			object_unregister_inlock(o);
			obj_free(o);
		}
		GUARD(rv);
	}
	if (!user_visible(s, o))
		return CKR_OBJECT_HANDLE_INVALID;
	if (need_secret && !o->session && !o->kms && !o->sec_loaded) {
		if (!s->tok->tk)
			return CKR_USER_NOT_LOGGED_IN;
		GUARD(token_obj_refresh_inlock(s->tok, o, true));
	}
	*out = o;
	return CKR_OK;
}

/* In login=optional mode the token key is unsealed at first need. The
 * KMS call drops the lock, so the session is looked up again after. */
static CK_RV unseal_if_needed_inlock(CK_SESSION_HANDLE h, bool needed)
{
	session_t *s = session_inlock(h);
	if (!s)
		return CKR_OK;
	token_t *t = s->tok;
	CK_ULONG dev = 0;
	CK_RV rv = token_revalidate(t, &dev);
	if ((s = session_inlock(h)) && dev)
		s->deverr = dev;
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

static bool handle_needs_tk_inlock(CK_OBJECT_HANDLE h)
{
	object_t *o = hmap_get(&slots.objects, h);
	return o && !o->session && !o->kms && !o->sec_loaded;
}

/* --- general purpose ----------------------------------------------------- */

static void tokens_free(void)
{
	for (size_t i = 0; i < slots.ntokens; i++) {
		token_t *t = &slots.tokens[i];
		token_forget_objects_inlock(t);
		token_kms_objects_free_inlock(t);
		size_t it = 0;
		uint64_t k;
		void *v;
		while (hmap_next(&t->session_objs, &it, &k, &v))
			obj_free(v);
		hmap_free(&t->session_objs);
		hmap_free(&t->by_rowid);
		sec_free(t->tk);
		store_close(t->store);
		if (t->prov)
			t->cfg->ops->destroy(t->prov);
	}
	free(slots.tokens);
	slots.tokens = NULL;
	slots.ntokens = 0;
}

static CK_RV check_init_args(CK_VOID_PTR p, const char **reserved)
{
	*reserved = NULL;
	if (!p)
		return CKR_OK;
	CK_C_INITIALIZE_ARGS *a = p;
	int given = !!a->CreateMutex + !!a->DestroyMutex + !!a->LockMutex +
		    !!a->UnlockMutex;
	if (given != 0 && given != 4) {
		log_error("api", "C_Initialize: mutex callbacks must be given all or none");
		return CKR_ARGUMENTS_BAD;
	}
	/* The module locks with pthreads; it cannot use only the caller's. */
	if (given == 4 && !(a->flags & CKF_OS_LOCKING_OK)) {
		log_error("api", "C_Initialize: only OS locking is supported");
		return CKR_CANT_LOCK;
	}
	/* p11-kit passes the module's x-init-reserved string here. */
	*reserved = a->pReserved;
	return CKR_OK;
}

static CK_RV ep_Initialize(CK_VOID_PTR pInitArgs)
{
	const char *reserved;
	pthread_once(&fork_once, fork_register);
	CK_RV rv = check_init_args(pInitArgs, &reserved);
	if (rv != CKR_OK)
		return LEAVE(rv);
	LOCK();
	if (mod.initialized && mod.pid == getpid()) {
		UNLOCK();
		return LEAVE(CKR_CRYPTOKI_ALREADY_INITIALIZED);
	}
	log_apply_env();
	hmap_init(&mod.sessions);
	hmap_init(&slots.objects);
	mod.next_session = slots.next_object = 0;
	config_t *cfg = NULL;
	rv = config_load(reserved, &cfg);
	if (rv == CKR_OK) {
		log_configure(cfg->log_level, cfg->log_dest);
		log_apply_env();
		if (!crypto_init())
			rv = CKR_GENERAL_ERROR;
	}
	if (rv == CKR_OK && cfg->nproviders &&
	    !(slots.tokens = calloc(cfg->nproviders, sizeof(token_t))))
		rv = CKR_HOST_MEMORY;
	for (size_t i = 0; rv == CKR_OK && i < cfg->nproviders; i++) {
		token_t *t = &slots.tokens[i];
		char why[512] = "";
		t->cfg = &cfg->providers[i];
		t->slot_id = t->cfg->slot_id;
		t->login = NO_LOGIN;
		hmap_init(&t->by_rowid);
		hmap_init(&t->session_objs);
		slots.ntokens = i + 1;
		p11k_err e = t->cfg->ops->create(t->cfg->obj, cfg->path, &t->prov, why,
						 sizeof(why));
		if (e != P11K_OK) {
			log_error("config", "%s: provider \"%s\": %s", cfg->path,
				  t->cfg->name, why[0] ? why : p11k_err_name(e));
			rv = CKR_FUNCTION_FAILED;
		}
		if (rv == CKR_OK)
			rv = token_kms_objects_create_inlock(t);
	}
	if (rv != CKR_OK) {
		tokens_free();
		config_free(cfg);
		hmap_free(&slots.objects);
		UNLOCK();
		return LEAVE(rv);
	}
	mod.cfg = cfg;
	mod.pid = getpid();
	mod.initialized = true;
	log_info("api", "initialized from %s: %zu slot(s)", cfg->path, slots.ntokens);
	UNLOCK();
	return LEAVE(CKR_OK);
}

static CK_RV ep_Finalize(CK_VOID_PTR pReserved)
{
	if (pReserved)
		return LEAVE(CKR_ARGUMENTS_BAD);
	GUARD(enter());
	size_t it = 0;
	uint64_t k;
	void *v;
	while (hmap_next(&mod.sessions, &it, &k, &v)) {
		session_t *s = v;
		s->closed = true;
		sess_unref(s); /* the table's reference */
	}
	hmap_free(&mod.sessions);
	hmap_free(&slots.objects);
	tokens_free();
	config_free(mod.cfg);
	mod.cfg = NULL;
	mod.initialized = false;
	crypto_fini();
	UNLOCK();
	log_reset();
	return CKR_OK;
}

static void fill_info(CK_INFO_PTR p, CK_BYTE major, CK_BYTE minor)
{
	memset(p, 0, sizeof(*p));
	p->cryptokiVersion.major = major;
	p->cryptokiVersion.minor = minor;
	pad_copy(p->manufacturerID, sizeof(p->manufacturerID), "p11kms project");
	pad_copy(p->libraryDescription, sizeof(p->libraryDescription),
		 "p11kms: cloud KMS keys over PKCS#11");
	p->libraryVersion.major = P11KMS_VERSION_MAJOR;
	p->libraryVersion.minor = P11KMS_VERSION_MINOR;
}

static CK_RV ep_GetInfo(CK_INFO_PTR pInfo)
{
	if (!pInfo)
		return LEAVE(CKR_ARGUMENTS_BAD);
	GUARD(enter());
	UNLOCK();
	fill_info(pInfo, 2, 40);
	return CKR_OK;
}

static CK_RV ep_GetInfo3(CK_INFO_PTR pInfo)
{
	if (!pInfo)
		return LEAVE(CKR_ARGUMENTS_BAD);
	GUARD(enter());
	UNLOCK();
	fill_info(pInfo, 3, 0);
	return CKR_OK;
}

/* --- slots and tokens --------------------------------------------------- */

static CK_RV ep_GetSlotList(CK_BBOOL tokenPresent, CK_SLOT_ID_PTR pSlotList,
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

static CK_RV ep_GetSlotInfo(CK_SLOT_ID slotID, CK_SLOT_INFO_PTR pInfo)
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

static CK_RV ep_GetTokenInfo(CK_SLOT_ID slotID, CK_TOKEN_INFO_PTR pInfo)
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
 * KMS key of their type is configured. */
static bool mech_offered_inlock(const token_t *t, const mech_info *m)
{
	if (!m->kms_only)
		return true;
	for (size_t i = 0; i < t->nkms; i++)
		if (obj_ulong(t->kms_objs[i], CKA_KEY_TYPE, 0) == m->key_type)
			return true;
	return false;
}

static CK_RV ep_GetMechanismList(CK_SLOT_ID slotID, CK_MECHANISM_TYPE_PTR pList,
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

static CK_RV ep_GetMechanismInfo(CK_SLOT_ID slotID, CK_MECHANISM_TYPE type,
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

static CK_RV ep_InitToken(CK_SLOT_ID slotID, CK_UTF8CHAR_PTR pPin,
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

static CK_RV pin_args(CK_UTF8CHAR_PTR p, CK_ULONG len)
{
	/* No protected authentication path: a PIN must be given. */
	return (!p && len) || !p ? CKR_ARGUMENTS_BAD : CKR_OK;
}

static CK_RV ep_InitPIN(CK_SESSION_HANDLE hSession, CK_UTF8CHAR_PTR pPin,
			CK_ULONG ulPinLen)
{
	GUARD(pin_args(pPin, ulPinLen));
	GUARD(enter());
	session_t *s = session_inlock(hSession);
	CK_RV rv = CKR_OK;
	if (!s)
		rv = CKR_SESSION_HANDLE_INVALID;
	else if (s->tok->login != CKU_SO)
		rv = CKR_USER_NOT_LOGGED_IN;
	else if (!(s->flags & CKF_RW_SESSION))
		rv = CKR_SESSION_READ_ONLY;
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

static CK_RV ep_SetPIN(CK_SESSION_HANDLE hSession, CK_UTF8CHAR_PTR pOldPin,
		       CK_ULONG ulOldLen, CK_UTF8CHAR_PTR pNewPin, CK_ULONG ulNewLen)
{
	GUARD(pin_args(pOldPin, ulOldLen));
	GUARD(pin_args(pNewPin, ulNewLen));
	GUARD(enter());
	session_t *s = session_inlock(hSession);
	CK_RV rv = CKR_OK;
	if (!s)
		rv = CKR_SESSION_HANDLE_INVALID;
	else if (!(s->flags & CKF_RW_SESSION))
		rv = CKR_SESSION_READ_ONLY;
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

static CK_RV ep_OpenSession(CK_SLOT_ID slotID, CK_FLAGS flags,
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
	/* Closing the last session logs the application out (5.6). */
	if (t->nsessions == 0 && t->login != NO_LOGIN)
		(void)token_logout_inlock(t);
	s->closed = true;
	sess_unref(s); /* the table's reference; calls in flight hold theirs */
}

static CK_RV ep_CloseSession(CK_SESSION_HANDLE hSession)
{
	GUARD(enter());
	session_t *s = session_inlock(hSession);
	if (s)
		close_session_inlock(s);
	UNLOCK();
	return LEAVE(s ? CKR_OK : CKR_SESSION_HANDLE_INVALID);
}

static CK_RV ep_CloseAllSessions(CK_SLOT_ID slotID)
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
	return LEAVE(t ? CKR_OK : CKR_SLOT_ID_INVALID);
}

static CK_RV ep_GetSessionInfo(CK_SESSION_HANDLE hSession, CK_SESSION_INFO_PTR pInfo)
{
	if (!pInfo)
		return LEAVE(CKR_ARGUMENTS_BAD);
	GUARD(enter());
	session_t *s = session_inlock(hSession);
	if (s) {
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
	return LEAVE(s ? CKR_OK : CKR_SESSION_HANDLE_INVALID);
}

static CK_RV ep_Login(CK_SESSION_HANDLE hSession, CK_USER_TYPE userType,
		      CK_UTF8CHAR_PTR pPin, CK_ULONG ulPinLen)
{
	GUARD(enter());
	session_t *s = session_inlock(hSession);
	CK_RV rv = CKR_OK;
	if (!s)
		rv = CKR_SESSION_HANDLE_INVALID;
	else if (userType != CKU_SO && userType != CKU_USER &&
		 userType != CKU_CONTEXT_SPECIFIC)
		rv = CKR_USER_TYPE_INVALID;
	else if (userType == CKU_CONTEXT_SPECIFIC)
		rv = s->tok->login == NO_LOGIN ? CKR_USER_NOT_LOGGED_IN
					       : CKR_OPERATION_NOT_INITIALIZED;
	else if (s->tok->login == userType)
		rv = CKR_USER_ALREADY_LOGGED_IN;
	else if (s->tok->login != NO_LOGIN)
		rv = CKR_USER_ANOTHER_ALREADY_LOGGED_IN;
	else if (pin_args(pPin, ulPinLen) != CKR_OK)
		rv = CKR_ARGUMENTS_BAD;
	if (rv == CKR_OK && userType == CKU_SO && s->tok->nrw < s->tok->nsessions)
		rv = CKR_SESSION_READ_ONLY_EXISTS;
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

static CK_RV ep_Logout(CK_SESSION_HANDLE hSession)
{
	GUARD(enter());
	session_t *s = session_inlock(hSession);
	CK_RV rv = s ? token_logout_inlock(s->tok) : CKR_SESSION_HANDLE_INVALID;
	if (rv == CKR_OK) {
		/* Private session objects are destroyed at logout (5.6). */
		size_t it = 0;
		uint64_t k;
		void *v;
		while (hmap_next(&s->tok->session_objs, &it, &k, &v)) {
			object_t *o = v;
			if (obj_is_private(o)) {
				object_unregister_inlock(o);
				obj_free(o);
			}
		}
	}
	UNLOCK();
	return LEAVE(rv);
}

/* --- objects ------------------------------------------------------------- */

/* Make o visible: persist it first when it is a token object. Takes o. */
static CK_RV publish_inlock(session_t *s, object_t *o, CK_OBJECT_HANDLE *ph)
{
	token_t *t = s->tok;
	CK_RV rv = CKR_OK;
	o->tok = t;
	if (obj_is_token(o) && !(s->flags & CKF_RW_SESSION))
		rv = CKR_SESSION_READ_ONLY;
	else if (obj_is_private(o) && t->login != CKU_USER)
		rv = CKR_USER_NOT_LOGGED_IN;
	if (rv == CKR_OK && obj_is_token(o)) {
		rv = token_sync_inlock(t);
		if (rv == CKR_OK && !t->initialized)
			rv = CKR_USER_NOT_LOGGED_IN;
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

static bool tmpl_says_token(const CK_ATTRIBUTE *tmpl, CK_ULONG n)
{
	const CK_ATTRIBUTE *a = tmpl_find(tmpl, n, CKA_TOKEN);
	return a && a->ulValueLen == sizeof(CK_BBOOL) && a->pValue &&
	       *(CK_BBOOL *)a->pValue;
}

static CK_RV ep_CreateObject(CK_SESSION_HANDLE hSession, CK_ATTRIBUTE_PTR pTemplate,
			     CK_ULONG ulCount, CK_OBJECT_HANDLE_PTR phObject)
{
	if ((!pTemplate && ulCount) || !phObject)
		return LEAVE(CKR_ARGUMENTS_BAD);
	GUARD(enter());
	CK_RV rv = unseal_if_needed_inlock(hSession, tmpl_says_token(pTemplate, ulCount));
	session_t *s = session_inlock(hSession);
	object_t *o = NULL;
	if (rv == CKR_OK && !s)
		rv = CKR_SESSION_HANDLE_INVALID;
	if (rv == CKR_OK)
		rv = obj_build(ORIGIN_CREATE, pTemplate, ulCount, NULL, 0,
			       (obj_actor){.so = s->tok->login == CKU_SO}, &o);
	if (rv == CKR_OK)
		rv = publish_inlock(s, o, phObject);
	UNLOCK();
	return LEAVE(rv);
}

static CK_RV ep_CopyObject(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject,
			   CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulCount,
			   CK_OBJECT_HANDLE_PTR phNewObject)
{
	if ((!pTemplate && ulCount) || !phNewObject)
		return LEAVE(CKR_ARGUMENTS_BAD);
	GUARD(enter());
	CK_RV rv = unseal_if_needed_inlock(hSession,
					   handle_needs_tk_inlock(hObject) ||
						   tmpl_says_token(pTemplate, ulCount));
	session_t *s = session_inlock(hSession);
	object_t *src = NULL, *o = NULL;
	if (rv == CKR_OK && !s)
		rv = CKR_SESSION_HANDLE_INVALID;
	if (rv == CKR_OK)
		rv = object_inlock(s, hObject, true, &src);
	if (rv == CKR_OK && !obj_bool(src, CKA_COPYABLE, true))
		rv = CKR_ACTION_PROHIBITED;
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
	return LEAVE(rv);
}

static CK_RV ep_DestroyObject(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject)
{
	GUARD(enter());
	session_t *s = session_inlock(hSession);
	object_t *o = NULL;
	CK_RV rv = s ? object_inlock(s, hObject, false, &o) : CKR_SESSION_HANDLE_INVALID;
	if (rv == CKR_OK && !obj_bool(o, CKA_DESTROYABLE, true))
		rv = CKR_ACTION_PROHIBITED;
	if (rv == CKR_OK && !o->session && !(s->flags & CKF_RW_SESSION))
		rv = CKR_SESSION_READ_ONLY;
	if (rv == CKR_OK && !o->session) {
		rv = token_obj_delete_inlock(s->tok, o);
		if (rv == CKR_OBJECT_HANDLE_INVALID) { /* already gone elsewhere */
			object_unregister_inlock(o);
			obj_free(o);
		}
	}
	if (rv == CKR_OK) {
		object_unregister_inlock(o);
		obj_free(o);
	}
	UNLOCK();
	return LEAVE(rv);
}

static CK_RV ep_GetObjectSize(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject,
			      CK_ULONG_PTR pulSize)
{
	if (!pulSize)
		return LEAVE(CKR_ARGUMENTS_BAD);
	GUARD(enter());
	session_t *s = session_inlock(hSession);
	object_t *o = NULL;
	CK_RV rv = s ? object_inlock(s, hObject, false, &o) : CKR_SESSION_HANDLE_INVALID;
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

/* A remote operation failed: give the session the provider's reason. */
static void note_remote_failure(CK_SESSION_HANDLE h)
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
static CK_RV kms_key_refused(CK_RV rv, CK_RV as)
{
	return rv == CKR_KEY_TYPE_INCONSISTENT ? as : rv;
}

/* An RSA KMS key's public numbers come from the KMS the first time they
 * are asked for (docs/REMOTE.md), without the module lock. */
static CK_RV rsa_public_if_needed(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject,
				  const CK_ATTRIBUTE *tmpl, CK_ULONG n)
{
	bool wants = false;
	for (CK_ULONG i = 0; i < n; i++)
		wants |= tmpl[i].type == CKA_MODULUS || tmpl[i].type == CKA_MODULUS_BITS ||
			 tmpl[i].type == CKA_PUBLIC_EXPONENT;
	if (!wants)
		return CKR_OK;
	GUARD(enter());
	session_t *s = session_inlock(hSession);
	object_t *o = NULL;
	if (!s || object_inlock(s, hObject, false, &o) != CKR_OK || !o->kms ||
	    (o->kms_role != KMS_ROLE_RSA_PUBLIC && o->kms_role != KMS_ROLE_RSA_PRIVATE) ||
	    obj_attr(o, CKA_MODULUS)) {
		UNLOCK(); /* nothing to fetch; the caller reports any error */
		return CKR_OK;
	}
	token_t *tok = s->tok;
	size_t idx = o->kms_index;
	UNLOCK();
	size_t modlen;
	CK_RV rv = token_kms_rsa_modlen(tok, idx, &modlen);
	if (rv != CKR_OK)
		note_remote_failure(hSession);
	/* C_GetAttributeValue has no CKR_KEY_TYPE_INCONSISTENT: the KMS's
	 * refusal is a device error here, ulDeviceError says which. */
	return rv == CKR_OK || rv == CKR_HOST_MEMORY ? rv : CKR_DEVICE_ERROR;
}

static CK_RV ep_GetAttributeValue(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject,
				  CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulCount)
{
	if (!pTemplate && ulCount)
		return LEAVE(CKR_ARGUMENTS_BAD);
	GUARD(LEAVE(rsa_public_if_needed(hSession, hObject, pTemplate, ulCount)));
	GUARD(enter());
	bool secret = tmpl_wants_secret(pTemplate, ulCount);
	CK_RV rv = unseal_if_needed_inlock(hSession,
					   secret && handle_needs_tk_inlock(hObject));
	session_t *s = session_inlock(hSession);
	object_t *o = NULL;
	if (rv == CKR_OK)
		rv = s ? object_inlock(s, hObject, false, &o) : CKR_SESSION_HANDLE_INVALID;
	/* Load the value only when it could be revealed and the token key is
	 * at hand; otherwise it is reported as sensitive. */
	if (rv == CKR_OK && secret && !o->session && !o->kms && !o->sec_loaded &&
	    s->tok->tk &&
	    (obj_ulong(o, CKA_CLASS, 0) == CKO_DATA ||
	     (!obj_bool(o, CKA_SENSITIVE, true) && obj_bool(o, CKA_EXTRACTABLE, false))))
		rv = object_inlock(s, hObject, true, &o);
	if (rv == CKR_OK)
		rv = obj_get_attributes(o, pTemplate, ulCount);
	UNLOCK();
	return LEAVE(rv);
}

static CK_RV ep_SetAttributeValue(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject,
				  CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulCount)
{
	if (!pTemplate && ulCount)
		return LEAVE(CKR_ARGUMENTS_BAD);
	GUARD(enter());
	CK_RV rv = unseal_if_needed_inlock(hSession, handle_needs_tk_inlock(hObject));
	session_t *s = session_inlock(hSession);
	object_t *o = NULL, *n = NULL;
	if (rv == CKR_OK)
		rv = s ? object_inlock(s, hObject, true, &o) : CKR_SESSION_HANDLE_INVALID;
	if (rv == CKR_OK && !o->session && !(s->flags & CKF_RW_SESSION))
		rv = CKR_SESSION_READ_ONLY;
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
	return LEAVE(rv);
}

static CK_RV ep_FindObjectsInit(CK_SESSION_HANDLE hSession, CK_ATTRIBUTE_PTR pTemplate,
				CK_ULONG ulCount)
{
	if (!pTemplate && ulCount)
		return LEAVE(CKR_ARGUMENTS_BAD);
	GUARD(enter());
	CK_RV rv = unseal_if_needed_inlock(hSession, tmpl_wants_secret(pTemplate, ulCount));
	session_t *s = session_inlock(hSession);
	if (rv == CKR_OK && !s)
		rv = CKR_SESSION_HANDLE_INVALID;
	if (rv == CKR_OK && s->find.active)
		rv = CKR_OPERATION_ACTIVE;
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
		rv = token_obj_find_inlock(s->tok, pTemplate, ulCount,
					   s->tok->login == CKU_USER, &h, &cnt);
	if (rv == CKR_OK) {
		s->find = (find_state){.active = true, .handles = h, .n = cnt};
	} else {
		free(h);
	}
	UNLOCK();
	return LEAVE(rv);
}

static CK_RV ep_FindObjects(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE_PTR phObject,
			    CK_ULONG ulMaxObjectCount, CK_ULONG_PTR pulObjectCount)
{
	if ((!phObject && ulMaxObjectCount) || !pulObjectCount)
		return LEAVE(CKR_ARGUMENTS_BAD);
	GUARD(enter());
	session_t *s = session_inlock(hSession);
	CK_RV rv = !s ? CKR_SESSION_HANDLE_INVALID
		      : !s->find.active ? CKR_OPERATION_NOT_INITIALIZED
					: CKR_OK;
	if (rv == CKR_OK) {
		CK_ULONG n = 0;
		while (n < ulMaxObjectCount && s->find.pos < s->find.n) {
			CK_OBJECT_HANDLE h = s->find.handles[s->find.pos++];
			/* skip objects destroyed since the search began */
			if (hmap_get(&slots.objects, h))
				phObject[n++] = h;
		}
		*pulObjectCount = n;
	}
	UNLOCK();
	return LEAVE(rv);
}

static CK_RV ep_FindObjectsFinal(CK_SESSION_HANDLE hSession)
{
	GUARD(enter());
	session_t *s = session_inlock(hSession);
	CK_RV rv = !s ? CKR_SESSION_HANDLE_INVALID
		      : !s->find.active ? CKR_OPERATION_NOT_INITIALIZED
					: CKR_OK;
	if (rv == CKR_OK) {
		free(s->find.handles);
		memset(&s->find, 0, sizeof(s->find));
	}
	UNLOCK();
	return LEAVE(rv);
}

/* --- keys for operations ------------------------------------------------- */

typedef struct key_errs {
	CK_RV handle_invalid, type_inconsistent, size_range;
} key_errs;

static const key_errs plain_key = {CKR_KEY_HANDLE_INVALID, CKR_KEY_TYPE_INCONSISTENT,
				   CKR_KEY_SIZE_RANGE};
static const key_errs wrapping_key = {CKR_WRAPPING_KEY_HANDLE_INVALID,
				      CKR_WRAPPING_KEY_TYPE_INCONSISTENT,
				      CKR_WRAPPING_KEY_SIZE_RANGE};
static const key_errs unwrapping_key = {CKR_UNWRAPPING_KEY_HANDLE_INVALID,
					CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT,
					CKR_UNWRAPPING_KEY_SIZE_RANGE};

/* Check that local key o may run mechanism mi for usage; copy its value. */
static CK_RV local_key_inlock(const object_t *o, const mech_info *mi, CK_ATTRIBUTE_TYPE usage,
			      const key_errs *errs, uint8_t **key, size_t *keylen)
{
	if (obj_ulong(o, CKA_CLASS, 0) != CKO_SECRET_KEY ||
	    obj_ulong(o, CKA_KEY_TYPE, 0) != mi->key_type) {
		log_info("api", "%s needs a key of type 0x%lx", mi->name,
			 (unsigned long)mi->key_type);
		return errs->type_inconsistent;
	}
	if (!obj_bool(o, usage, false)) {
		log_info("api", "key usage attribute 0x%lx is false", (unsigned long)usage);
		return CKR_KEY_FUNCTION_NOT_PERMITTED;
	}
	const attr_t *allowed = obj_attr(o, CKA_ALLOWED_MECHANISMS);
	if (allowed && allowed->len) {
		bool ok = false;
		for (size_t i = 0; i + sizeof(CK_ULONG) <= allowed->len; i += sizeof(CK_ULONG)) {
			CK_ULONG m;
			memcpy(&m, allowed->val + i, sizeof(m));
			ok |= m == mi->type;
		}
		if (!ok) {
			log_info("api", "%s is not in the key's CKA_ALLOWED_MECHANISMS",
				 mi->name);
			return CKR_MECHANISM_INVALID;
		}
	}
	const attr_t *v = obj_attr(o, CKA_VALUE);
	if (!v)
		return CKR_GENERAL_ERROR;
	if (!mech_key_ok(mi, v->len))
		return errs->size_range;
	*key = sec_dup(v->val, v->len);
	*keylen = v->len;
	return *key ? CKR_OK : CKR_HOST_MEMORY;
}

/* The same for key handle h (secrets loaded). */
static CK_RV op_key_inlock(session_t *s, CK_OBJECT_HANDLE h, const mech_info *mi,
			   CK_ATTRIBUTE_TYPE usage, const key_errs *errs,
			   uint8_t **key, size_t *keylen)
{
	object_t *o;
	CK_RV rv = object_inlock(s, h, true, &o);
	if (rv == CKR_OBJECT_HANDLE_INVALID)
		return errs->handle_invalid;
	GUARD(rv);
	return local_key_inlock(o, mi, usage, errs, key, keylen);
}

/* The key of an operation: a local key's value, or a KMS key object. */
typedef struct op_key {
	uint8_t *key; /* local keys: a secure copy of CKA_VALUE */
	size_t keylen;
	bool kms;
	const char *kid; /* KMS keys: the configured key */
	size_t idx, bits, modlen;
} op_key;

static CK_RV key_for_op_inlock(session_t *s, CK_OBJECT_HANDLE h, const mech_info *mi,
			       CK_ATTRIBUTE_TYPE usage, const key_errs *errs, op_key *k)
{
	memset(k, 0, sizeof(*k));
	if (!mech_offered_inlock(s->tok, mi)) {
		log_info("api", "%s is offered only on slots with a KMS key of its type",
			 mi->name);
		return CKR_MECHANISM_INVALID;
	}
	object_t *o;
	CK_RV rv = object_inlock(s, h, true, &o); /* KMS objects load nothing */
	if (rv == CKR_OBJECT_HANDLE_INVALID)
		return errs->handle_invalid;
	GUARD(rv);
	if (!o->kms) {
		if (mi->remote || mi->kms_only) {
			log_info("api", "%s needs a KMS key object", mi->name);
			return errs->type_inconsistent;
		}
		return local_key_inlock(o, mi, usage, errs, &k->key, &k->keylen);
	}
	/* The envelope runs on the secret faces; a standard mechanism on the
	 * face of its key type (docs/REMOTE.md). */
	bool fits = mi->remote ? o->kms_role == KMS_ROLE_ENVELOPE || o->kms_role == KMS_ROLE_AES
			       : mech_kms_capable(mi) &&
					 obj_ulong(o, CKA_KEY_TYPE, 0) == mi->key_type;
	if (!fits) {
		log_info("api", "%s cannot run on KMS key object \"%s\" (key type 0x%lx)",
			 mi->name, s->tok->cfg->keys[o->kms_index].label,
			 (unsigned long)obj_ulong(o, CKA_KEY_TYPE, 0));
		return errs->type_inconsistent;
	}
	if (!obj_bool(o, usage, false)) {
		log_info("api", "key usage attribute 0x%lx is false", (unsigned long)usage);
		return CKR_KEY_FUNCTION_NOT_PERMITTED;
	}
	if (s->tok->revoked)
		return CKR_DEVICE_ERROR;
	const kms_key_cfg *kc = &s->tok->cfg->keys[o->kms_index];
	const attr_t *n = obj_attr(o, CKA_MODULUS);
	k->kms = true;
	k->kid = kc->id;
	k->idx = o->kms_index;
	k->bits = kc->bits;
	k->modlen = n ? n->len : 0;
	return CKR_OK;
}

/* Start a cipher operation on k. No lock held: a KMS key may need the KMS. */
static CK_RV op_start(cipher_op *op, const mech_info *mi, CK_MECHANISM_PTR m, token_t *tok,
		      const op_key *k, bool encrypt, bool key_op)
{
	if (!k->kms)
		return cipher_op_init(op, mi, m, k->key, k->keylen, encrypt);
	kms_port port = token_kms_port(tok);
	if (mi->remote)
		return cipher_op_init_remote(op, mi, m, &port, k->kid, encrypt);
	return cipher_op_init_kms(op, mi, m, &port, k->idx, k->bits, k->modlen, encrypt, key_op);
}

static CK_RV mech_for(CK_MECHANISM_PTR m, CK_FLAGS need, const mech_info **out)
{
	if (!m)
		return CKR_ARGUMENTS_BAD;
	const mech_info *mi = mech_lookup(m->mechanism);
	if (!mi || !(mi->flags & need)) {
		log_info("api", "mechanism 0x%lx is not offered for this function",
			 (unsigned long)m->mechanism);
		return CKR_MECHANISM_INVALID;
	}
	*out = mi;
	return CKR_OK;
}

/* --- encrypt / decrypt -------------------------------------------------- */

/* End an operation. A plain (non-secret) hold buffer, the ciphertext
 * multi-part GCM decryption gathers, is kept for the session's next
 * operation: growing a fresh one each message costs page faults and
 * copies that dwarf the decryption itself. */
#define SPARE_MAX (16u * 1024 * 1024)
static void end_cipher_op(session_t *s, cipher_op *op)
{
	if (op->buf.p && !op->buf.secret && op->buf.cap <= SPARE_MAX && !s->spare.p) {
		s->spare = op->buf;
		s->spare.len = 0;
		s->spare.failed = false;
		memset(&op->buf, 0, sizeof(op->buf));
	}
	cipher_op_free(op);
}

/* Lend the spare buffer to a new operation that holds plain data. */
static void lend_spare(session_t *s, cipher_op *op)
{
	if (!s->spare.p || op->buf.secret || op->buf.p)
		return;
	size_t max = op->buf.max;
	op->buf = s->spare;
	op->buf.max = max;
	memset(&s->spare, 0, sizeof(s->spare));
}

static CK_RV crypt_init(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism,
			CK_OBJECT_HANDLE hKey, bool enc)
{
	const mech_info *mi;
	GUARD(mech_for(pMechanism, enc ? CKF_ENCRYPT : CKF_DECRYPT, &mi));
	GUARD(enter());
	op_key k = {0};
	CK_RV rv = unseal_if_needed_inlock(hSession, handle_needs_tk_inlock(hKey));
	session_t *s = session_inlock(hSession);
	if (rv == CKR_OK && !s)
		rv = CKR_SESSION_HANDLE_INVALID;
	if (rv == CKR_OK)
		rv = key_for_op_inlock(s, hKey, mi, enc ? CKA_ENCRYPT : CKA_DECRYPT, &plain_key,
				       &k);
	if (rv != CKR_OK) {
		UNLOCK();
		return rv;
	}
	sess_ref_inlock(s);
	UNLOCK();
	pthread_mutex_lock(&s->oplock);
	cipher_op *op = enc ? &s->enc : &s->dec;
	if (cipher_op_active(op))
		rv = CKR_OPERATION_ACTIVE;
	else
		rv = op_start(op, mi, pMechanism, s->tok, &k, enc, false);
	if (rv == CKR_OK && !k.kms)
		lend_spare(s, op);
	sec_free(k.key);
	op_end(s);
	if (rv != CKR_OK && k.kms && rv != CKR_MECHANISM_PARAM_INVALID)
		note_remote_failure(hSession);
	return rv;
}

/* Does this result end the operation? (PKCS #11 5.2) */
static bool op_continues(CK_RV rv, const void *out)
{
	return rv == CKR_BUFFER_TOO_SMALL || (rv == CKR_OK && !out);
}

static CK_RV crypt_oneshot(CK_SESSION_HANDLE hSession, bool enc, CK_BYTE_PTR in,
			   CK_ULONG inlen, CK_BYTE_PTR out, CK_ULONG_PTR outlen)
{
	session_t *s;
	GUARD(op_begin(hSession, &s));
	cipher_op *op = enc ? &s->enc : &s->dec;
	CK_RV rv;
	if (!cipher_op_active(op))
		rv = CKR_OPERATION_NOT_INITIALIZED;
	else if (op->multipart)
		rv = CKR_OPERATION_ACTIVE;
	else if ((!in && inlen) || !outlen)
		rv = CKR_ARGUMENTS_BAD;
	else
		rv = op->impl->oneshot(op, in ? in : (CK_BYTE_PTR) "", inlen, out,
					       outlen);
	bool remote_failed = cipher_op_active(op) && op->kms.tok && rv != CKR_OK &&
			     rv != CKR_BUFFER_TOO_SMALL;
	if (cipher_op_active(op) && rv != CKR_OPERATION_ACTIVE && !op_continues(rv, out))
		end_cipher_op(s, op);
	op_end(s);
	if (remote_failed)
		note_remote_failure(hSession);
	return remote_failed ? kms_key_refused(rv, CKR_DEVICE_ERROR) : rv;
}

static CK_RV crypt_update(CK_SESSION_HANDLE hSession, bool enc, CK_BYTE_PTR in,
			  CK_ULONG inlen, CK_BYTE_PTR out, CK_ULONG_PTR outlen)
{
	session_t *s;
	GUARD(op_begin(hSession, &s));
	cipher_op *op = enc ? &s->enc : &s->dec;
	CK_RV rv;
	if (!cipher_op_active(op))
		rv = CKR_OPERATION_NOT_INITIALIZED;
	else if ((!in && inlen) || !outlen)
		rv = CKR_ARGUMENTS_BAD;
	else
		rv = op->impl->update(op, in ? in : (CK_BYTE_PTR) "", inlen, out,
					      outlen);
	if (rv == CKR_OK && out)
		op->multipart = true;
	if (cipher_op_active(op) && !op_continues(rv, out))
		if (rv != CKR_OK)
			end_cipher_op(s, op);
	op_end(s);
	return rv;
}

static CK_RV crypt_final(CK_SESSION_HANDLE hSession, bool enc, CK_BYTE_PTR out,
			 CK_ULONG_PTR outlen)
{
	session_t *s;
	GUARD(op_begin(hSession, &s));
	cipher_op *op = enc ? &s->enc : &s->dec;
	CK_RV rv;
	if (!cipher_op_active(op))
		rv = CKR_OPERATION_NOT_INITIALIZED;
	else if (!outlen)
		rv = CKR_ARGUMENTS_BAD;
	else
		rv = op->impl->final(op, out, outlen);
	bool remote_failed = cipher_op_active(op) && op->kms.tok && rv != CKR_OK &&
			     rv != CKR_BUFFER_TOO_SMALL;
	if (cipher_op_active(op) && !op_continues(rv, out))
		end_cipher_op(s, op);
	op_end(s);
	if (remote_failed)
		note_remote_failure(hSession);
	return remote_failed ? kms_key_refused(rv, CKR_DEVICE_ERROR) : rv;
}

static CK_RV ep_EncryptInit(CK_SESSION_HANDLE h, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE k)
{
	return LEAVE(crypt_init(h, m, k, true));
}
static CK_RV ep_Encrypt(CK_SESSION_HANDLE h, CK_BYTE_PTR in, CK_ULONG inlen,
			CK_BYTE_PTR out, CK_ULONG_PTR outlen)
{
	return LEAVE(crypt_oneshot(h, true, in, inlen, out, outlen));
}
static CK_RV ep_EncryptUpdate(CK_SESSION_HANDLE h, CK_BYTE_PTR in, CK_ULONG inlen,
			      CK_BYTE_PTR out, CK_ULONG_PTR outlen)
{
	return LEAVE(crypt_update(h, true, in, inlen, out, outlen));
}
static CK_RV ep_EncryptFinal(CK_SESSION_HANDLE h, CK_BYTE_PTR out, CK_ULONG_PTR outlen)
{
	return LEAVE(crypt_final(h, true, out, outlen));
}
static CK_RV ep_DecryptInit(CK_SESSION_HANDLE h, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE k)
{
	return LEAVE(crypt_init(h, m, k, false));
}
static CK_RV ep_Decrypt(CK_SESSION_HANDLE h, CK_BYTE_PTR in, CK_ULONG inlen,
			CK_BYTE_PTR out, CK_ULONG_PTR outlen)
{
	return LEAVE(crypt_oneshot(h, false, in, inlen, out, outlen));
}
static CK_RV ep_DecryptUpdate(CK_SESSION_HANDLE h, CK_BYTE_PTR in, CK_ULONG inlen,
			      CK_BYTE_PTR out, CK_ULONG_PTR outlen)
{
	return LEAVE(crypt_update(h, false, in, inlen, out, outlen));
}
static CK_RV ep_DecryptFinal(CK_SESSION_HANDLE h, CK_BYTE_PTR out, CK_ULONG_PTR outlen)
{
	return LEAVE(crypt_final(h, false, out, outlen));
}

/* --- digest, sign, verify -------------------------------------------- */

typedef enum mac_which { MW_DIGEST, MW_SIGN, MW_VERIFY } mac_which;

static mac_op *mac_slot(session_t *s, mac_which w)
{
	return w == MW_DIGEST ? &s->dig : w == MW_SIGN ? &s->sig : &s->ver;
}

static CK_RV mac_init(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism,
		      CK_OBJECT_HANDLE hKey, mac_which w)
{
	const mech_info *mi;
	CK_FLAGS need = w == MW_DIGEST ? CKF_DIGEST : w == MW_SIGN ? CKF_SIGN : CKF_VERIFY;
	GUARD(mech_for(pMechanism, need, &mi));
	GUARD(enter());
	uint8_t *key = NULL;
	size_t keylen = 0;
	CK_RV rv = w == MW_DIGEST ? CKR_OK
				  : unseal_if_needed_inlock(hSession, handle_needs_tk_inlock(hKey));
	session_t *s = session_inlock(hSession);
	if (rv == CKR_OK && !s)
		rv = CKR_SESSION_HANDLE_INVALID;
	if (rv == CKR_OK && w != MW_DIGEST)
		rv = op_key_inlock(s, hKey, mi, w == MW_SIGN ? CKA_SIGN : CKA_VERIFY,
				   &plain_key, &key, &keylen);
	if (rv != CKR_OK) {
		UNLOCK();
		return rv;
	}
	sess_ref_inlock(s);
	UNLOCK();
	pthread_mutex_lock(&s->oplock);
	mac_op *op = mac_slot(s, w);
	if (mac_op_active(op))
		rv = CKR_OPERATION_ACTIVE;
	else
		rv = mac_op_init(op, mi, pMechanism, key, keylen);
	sec_free(key);
	op_end(s);
	return rv;
}

static CK_RV mac_run(CK_SESSION_HANDLE hSession, mac_which w, CK_BYTE_PTR in,
		     CK_ULONG inlen, CK_BYTE_PTR out, CK_ULONG_PTR outlen, bool update,
		     bool final)
{
	session_t *s;
	GUARD(op_begin(hSession, &s));
	mac_op *op = mac_slot(s, w);
	CK_RV rv = CKR_OK;
	bool keep = false;
	if (!mac_op_active(op)) {
		op_end(s);
		return CKR_OPERATION_NOT_INITIALIZED;
	}
	if ((!in && inlen) || (w != MW_VERIFY && (update ? false : !outlen)) ||
	    (w == MW_VERIFY && !update && !out && *outlen)) {
		rv = CKR_ARGUMENTS_BAD;
	} else if (update) {
		rv = mac_update(op, in ? in : (CK_BYTE_PTR) "", inlen);
		op->multipart = true;
		keep = rv == CKR_OK;
	} else if (w == MW_VERIFY) {
		/* out/outlen carry the signature: *outlen is its length. */
		if (!final && op->multipart)
			rv = CKR_OPERATION_ACTIVE, keep = true;
		else if (!final)
			rv = mac_update(op, in ? in : (CK_BYTE_PTR) "", inlen);
		if (rv == CKR_OK)
			rv = mac_verify_final(op, out, *outlen);
	} else if (final) {
		rv = mac_final(op, out, outlen);
		keep = op_continues(rv, out);
	} else if (op->multipart) {
		rv = CKR_OPERATION_ACTIVE;
		keep = true;
	} else {
		rv = mac_oneshot(op, in ? in : (CK_BYTE_PTR) "", inlen, out, outlen);
		keep = op_continues(rv, out);
	}
	if (!keep)
		mac_op_free(op);
	op_end(s);
	return rv;
}

static CK_RV ep_DigestInit(CK_SESSION_HANDLE h, CK_MECHANISM_PTR m)
{
	return LEAVE(mac_init(h, m, CK_INVALID_HANDLE, MW_DIGEST));
}
static CK_RV ep_Digest(CK_SESSION_HANDLE h, CK_BYTE_PTR in, CK_ULONG inlen,
		       CK_BYTE_PTR out, CK_ULONG_PTR outlen)
{
	return LEAVE(mac_run(h, MW_DIGEST, in, inlen, out, outlen, false, false));
}
static CK_RV ep_DigestUpdate(CK_SESSION_HANDLE h, CK_BYTE_PTR in, CK_ULONG inlen)
{
	return LEAVE(mac_run(h, MW_DIGEST, in, inlen, NULL, NULL, true, false));
}
static CK_RV ep_DigestFinal(CK_SESSION_HANDLE h, CK_BYTE_PTR out, CK_ULONG_PTR outlen)
{
	return LEAVE(mac_run(h, MW_DIGEST, NULL, 0, out, outlen, false, true));
}

/* C_DigestKey: feed a secret key's value into the digest (v3.0 5.12). */
static CK_RV ep_DigestKey(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hKey)
{
	GUARD(enter());
	CK_RV rv = unseal_if_needed_inlock(hSession, handle_needs_tk_inlock(hKey));
	session_t *s = session_inlock(hSession);
	object_t *o = NULL;
	uint8_t *val = NULL;
	size_t vlen = 0;
	if (rv == CKR_OK && !s)
		rv = CKR_SESSION_HANDLE_INVALID;
	if (rv == CKR_OK)
		rv = object_inlock(s, hKey, true, &o);
	if (rv == CKR_OBJECT_HANDLE_INVALID)
		rv = CKR_KEY_HANDLE_INVALID;
	if (rv == CKR_OK && obj_ulong(o, CKA_CLASS, 0) != CKO_SECRET_KEY)
		rv = CKR_KEY_INDIGESTIBLE;
	if (rv == CKR_OK) {
		const attr_t *v = obj_attr(o, CKA_VALUE);
		vlen = v ? v->len : 0;
		if (!v || !(val = sec_dup(v->val, vlen ? vlen : 1)))
			rv = CKR_HOST_MEMORY;
	}
	UNLOCK();
	if (rv == CKR_OK)
		rv = mac_run(hSession, MW_DIGEST, val, vlen, NULL, NULL, true, false);
	sec_free(val);
	return LEAVE(rv);
}

static CK_RV ep_SignInit(CK_SESSION_HANDLE h, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE k)
{
	return LEAVE(mac_init(h, m, k, MW_SIGN));
}
static CK_RV ep_Sign(CK_SESSION_HANDLE h, CK_BYTE_PTR in, CK_ULONG inlen,
		     CK_BYTE_PTR out, CK_ULONG_PTR outlen)
{
	return LEAVE(mac_run(h, MW_SIGN, in, inlen, out, outlen, false, false));
}
static CK_RV ep_SignUpdate(CK_SESSION_HANDLE h, CK_BYTE_PTR in, CK_ULONG inlen)
{
	return LEAVE(mac_run(h, MW_SIGN, in, inlen, NULL, NULL, true, false));
}
static CK_RV ep_SignFinal(CK_SESSION_HANDLE h, CK_BYTE_PTR out, CK_ULONG_PTR outlen)
{
	return LEAVE(mac_run(h, MW_SIGN, NULL, 0, out, outlen, false, true));
}
static CK_RV ep_VerifyInit(CK_SESSION_HANDLE h, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE k)
{
	return LEAVE(mac_init(h, m, k, MW_VERIFY));
}
static CK_RV ep_Verify(CK_SESSION_HANDLE h, CK_BYTE_PTR in, CK_ULONG inlen,
		       CK_BYTE_PTR sig, CK_ULONG siglen)
{
	return LEAVE(mac_run(h, MW_VERIFY, in, inlen, sig, &siglen, false, false));
}
static CK_RV ep_VerifyUpdate(CK_SESSION_HANDLE h, CK_BYTE_PTR in, CK_ULONG inlen)
{
	return LEAVE(mac_run(h, MW_VERIFY, in, inlen, NULL, NULL, true, false));
}
static CK_RV ep_VerifyFinal(CK_SESSION_HANDLE h, CK_BYTE_PTR sig, CK_ULONG siglen)
{
	return LEAVE(mac_run(h, MW_VERIFY, NULL, 0, sig, &siglen, false, true));
}

/* --- key management ---------------------------------------------------- */

static CK_RV ep_GenerateKey(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism,
			    CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulCount,
			    CK_OBJECT_HANDLE_PTR phKey)
{
	const mech_info *mi;
	if ((!pTemplate && ulCount) || !phKey)
		return LEAVE(CKR_ARGUMENTS_BAD);
	GUARD(LEAVE(mech_for(pMechanism, CKF_GENERATE, &mi)));
	if (mi->check_param(pMechanism) != CKR_OK)
		return LEAVE(CKR_MECHANISM_PARAM_INVALID);
	GUARD(LEAVE(tmpl_check(pTemplate, ulCount)));
	const CK_ATTRIBUTE *a = tmpl_find(pTemplate, ulCount, CKA_CLASS);
	CK_ULONG v;
	if (a && (memcpy(&v, a->pValue, sizeof(v)), v != CKO_SECRET_KEY))
		return LEAVE(CKR_TEMPLATE_INCONSISTENT);
	a = tmpl_find(pTemplate, ulCount, CKA_KEY_TYPE);
	if (a && (memcpy(&v, a->pValue, sizeof(v)), v != mi->key_type))
		return LEAVE(CKR_TEMPLATE_INCONSISTENT);
	a = tmpl_find(pTemplate, ulCount, CKA_VALUE_LEN);
	if (!a)
		return LEAVE(CKR_TEMPLATE_INCOMPLETE);
	memcpy(&v, a->pValue, sizeof(v));
	if (!mech_key_ok(mi, v) || v > 512) {
		log_info("api", "%s: CKA_VALUE_LEN %lu is not a valid key length",
			 mi->name, (unsigned long)v);
		return LEAVE(CKR_ATTRIBUTE_VALUE_INVALID);
	}
	uint8_t *key = sec_alloc(v);
	if (!key)
		return LEAVE(CKR_HOST_MEMORY);
	if (!crypto_random(key, v)) {
		sec_free(key);
		return LEAVE(CKR_FUNCTION_FAILED);
	}
	CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
	CK_KEY_TYPE kt = mi->key_type;
	CK_MECHANISM_TYPE gm = mi->type;
	CK_ATTRIBUTE extra[] = {
		{CKA_VALUE, key, v},
		{CKA_CLASS, &cls, sizeof(cls)},
		{CKA_KEY_TYPE, &kt, sizeof(kt)},
		{CKA_KEY_GEN_MECHANISM, &gm, sizeof(gm)},
	};
	CK_RV rv = enter();
	if (rv != CKR_OK) {
		sec_free(key);
		return rv;
	}
	rv = unseal_if_needed_inlock(hSession, tmpl_says_token(pTemplate, ulCount));
	session_t *s = session_inlock(hSession);
	object_t *o = NULL;
	if (rv == CKR_OK && !s)
		rv = CKR_SESSION_HANDLE_INVALID;
	if (rv == CKR_OK)
		rv = obj_build(ORIGIN_GENERATE, pTemplate, ulCount, extra, ARRAY_SIZE(extra),
			       (obj_actor){.so = s->tok->login == CKU_SO}, &o);
	if (rv == CKR_OK)
		rv = publish_inlock(s, o, phKey);
	UNLOCK();
	sec_free(key);
	return LEAVE(rv);
}

static CK_RV ep_WrapKey(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism,
			CK_OBJECT_HANDLE hWrappingKey, CK_OBJECT_HANDLE hKey,
			CK_BYTE_PTR pWrappedKey, CK_ULONG_PTR pulWrappedKeyLen)
{
	const mech_info *mi;
	if (!pulWrappedKeyLen)
		return LEAVE(CKR_ARGUMENTS_BAD);
	GUARD(LEAVE(mech_for(pMechanism, CKF_WRAP, &mi)));
	GUARD(enter());
	uint8_t *kv = NULL;
	size_t kvlen = 0;
	op_key k = {0};
	CK_RV rv = unseal_if_needed_inlock(hSession, handle_needs_tk_inlock(hWrappingKey) ||
							     handle_needs_tk_inlock(hKey));
	session_t *s = session_inlock(hSession);
	object_t *o = NULL, *w = NULL;
	if (rv == CKR_OK && !s)
		rv = CKR_SESSION_HANDLE_INVALID;
	if (rv == CKR_OK)
		rv = key_for_op_inlock(s, hWrappingKey, mi, CKA_WRAP, &wrapping_key, &k);
	if (rv == CKR_OK)
		rv = object_inlock(s, hKey, true, &o);
	if (rv == CKR_OBJECT_HANDLE_INVALID)
		rv = CKR_KEY_HANDLE_INVALID;
	if (rv == CKR_OK && obj_ulong(o, CKA_CLASS, 0) != CKO_SECRET_KEY)
		rv = CKR_KEY_NOT_WRAPPABLE;
	if (rv == CKR_OK && !obj_bool(o, CKA_EXTRACTABLE, false))
		rv = CKR_KEY_UNEXTRACTABLE;
	if (rv == CKR_OK && obj_bool(o, CKA_WRAP_WITH_TRUSTED, false)) {
		(void)object_inlock(s, hWrappingKey, false, &w);
		if (!w || !obj_bool(w, CKA_TRUSTED, false))
			rv = CKR_KEY_NOT_WRAPPABLE;
	}
	if (rv == CKR_OK) {
		const attr_t *v = obj_attr(o, CKA_VALUE);
		kv = v ? sec_dup(v->val, v->len) : NULL;
		kvlen = v ? v->len : 0;
		if (!kv)
			rv = CKR_HOST_MEMORY;
	}
	UNLOCK();
	token_t *tok = s ? s->tok : NULL;
	if (rv == CKR_OK) {
		cipher_op op;
		rv = op_start(&op, mi, pMechanism, tok, &k, true, true);
		if (rv == CKR_OK)
			rv = op.impl->oneshot(&op, kv, kvlen, pWrappedKey, pulWrappedKeyLen);
		cipher_op_free(&op);
		if (rv == CKR_DATA_LEN_RANGE)
			rv = CKR_KEY_SIZE_RANGE;
		rv = kms_key_refused(rv, CKR_WRAPPING_KEY_TYPE_INCONSISTENT);
		if (rv != CKR_OK && rv != CKR_BUFFER_TOO_SMALL && k.kms &&
		    rv != CKR_MECHANISM_PARAM_INVALID)
			note_remote_failure(hSession);
	}
	sec_free(k.key);
	sec_free(kv);
	return LEAVE(rv);
}

static CK_RV ep_UnwrapKey(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism,
			  CK_OBJECT_HANDLE hUnwrappingKey, CK_BYTE_PTR pWrappedKey,
			  CK_ULONG ulWrappedKeyLen, CK_ATTRIBUTE_PTR pTemplate,
			  CK_ULONG ulAttributeCount, CK_OBJECT_HANDLE_PTR phKey)
{
	const mech_info *mi;
	if ((!pTemplate && ulAttributeCount) || !phKey || !pWrappedKey)
		return LEAVE(CKR_ARGUMENTS_BAD);
	GUARD(LEAVE(mech_for(pMechanism, CKF_UNWRAP, &mi)));
	GUARD(LEAVE(tmpl_check(pTemplate, ulAttributeCount)));
	GUARD(enter());
	op_key k = {0};
	CK_RV rv = unseal_if_needed_inlock(hSession,
					   handle_needs_tk_inlock(hUnwrappingKey) ||
						   tmpl_says_token(pTemplate, ulAttributeCount));
	session_t *s = session_inlock(hSession);
	if (rv == CKR_OK && !s)
		rv = CKR_SESSION_HANDLE_INVALID;
	if (rv == CKR_OK)
		rv = key_for_op_inlock(s, hUnwrappingKey, mi, CKA_UNWRAP, &unwrapping_key, &k);
	token_t *tok = s ? s->tok : NULL;
	UNLOCK();
	uint8_t *val = NULL;
	CK_ULONG vlen = ulWrappedKeyLen;
	if (rv == CKR_OK) {
		cipher_op op;
		rv = op_start(&op, mi, pMechanism, tok, &k, false, true);
		if (rv == CKR_OK && !(val = sec_alloc(vlen ? vlen : 1)))
			rv = CKR_HOST_MEMORY;
		if (rv == CKR_OK)
			rv = op.impl->oneshot(&op, pWrappedKey, ulWrappedKeyLen, val, &vlen);
		cipher_op_free(&op); /* every init starts from a zeroed op */
		if (rv != CKR_OK && k.kms && rv != CKR_MECHANISM_PARAM_INVALID)
			note_remote_failure(hSession);
		rv = kms_key_refused(rv, CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT);
		if (rv == CKR_ENCRYPTED_DATA_INVALID)
			rv = CKR_WRAPPED_KEY_INVALID;
		else if (rv == CKR_ENCRYPTED_DATA_LEN_RANGE || rv == CKR_BUFFER_TOO_SMALL)
			rv = CKR_WRAPPED_KEY_LEN_RANGE;
	}
	sec_free(k.key);
	if (rv != CKR_OK) {
		sec_free(val);
		return LEAVE(rv);
	}
	CK_ATTRIBUTE extra[] = {{CKA_VALUE, val, vlen}};
	rv = enter();
	if (rv != CKR_OK) {
		sec_free(val);
		return rv;
	}
	s = session_inlock(hSession);
	object_t *o = NULL;
	if (!s)
		rv = CKR_SESSION_HANDLE_INVALID;
	if (rv == CKR_OK) {
		rv = obj_build(ORIGIN_UNWRAP, pTemplate, ulAttributeCount, extra, 1,
			       (obj_actor){.so = s->tok->login == CKU_SO}, &o);
		if (rv == CKR_ATTRIBUTE_VALUE_INVALID &&
		    !tmpl_find(pTemplate, ulAttributeCount, CKA_CLASS))
			rv = CKR_TEMPLATE_INCOMPLETE;
	}
	if (rv == CKR_OK) {
		/* Wiped if the KMS key is revoked. */
		o->kms_derived = k.kms;
		rv = publish_inlock(s, o, phKey);
	}
	UNLOCK();
	sec_free(val);
	return LEAVE(rv);
}

/* --- random -------------------------------------------------------------- */

static CK_RV ep_SeedRandom(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pSeed, CK_ULONG ulSeedLen)
{
	if (!pSeed && ulSeedLen)
		return LEAVE(CKR_ARGUMENTS_BAD);
	GUARD(enter());
	CK_RV rv = session_inlock(hSession) ? CKR_RANDOM_SEED_NOT_SUPPORTED
					    : CKR_SESSION_HANDLE_INVALID;
	UNLOCK();
	return LEAVE(rv);
}

static CK_RV ep_GenerateRandom(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pRandomData,
			       CK_ULONG ulRandomLen)
{
	if (!pRandomData && ulRandomLen)
		return LEAVE(CKR_ARGUMENTS_BAD);
	GUARD(enter());
	CK_RV rv = session_inlock(hSession) ? CKR_OK : CKR_SESSION_HANDLE_INVALID;
	UNLOCK();
	if (rv == CKR_OK && !crypto_random(pRandomData, ulRandomLen))
		rv = CKR_FUNCTION_FAILED;
	return LEAVE(rv);
}

/* --- message-based AEAD (PKCS #11 3.0 5.14, 5.15) ------------------------- */

static CK_RV kid_of(const uint8_t *tk, const uint8_t *key, size_t keylen, uint8_t *kid)
{
	/* The key's identity for IV counters: keyed by the token key, so the
	 * store reveals nothing about the key itself. */
	static const char label[] = "p11kms-gcm-iv-counter:v1:";
	mac_op m;
	CK_MECHANISM mech = {CKM_SHA256_HMAC, NULL, 0};
	CK_ULONG n = KID_LEN;
	GUARD(mac_op_init(&m, mech_lookup(CKM_SHA256_HMAC), &mech, tk, 32));
	CK_RV rv = mac_update(&m, (const uint8_t *)label, sizeof(label) - 1);
	if (rv == CKR_OK)
		rv = mac_update(&m, key, keylen);
	if (rv == CKR_OK)
		rv = mac_final(&m, kid, &n);
	mac_op_free(&m);
	return rv;
}

static CK_RV message_init(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism,
			  CK_OBJECT_HANDLE hKey, bool enc)
{
	const mech_info *mi;
	GUARD(mech_for(pMechanism, enc ? CKF_MESSAGE_ENCRYPT : CKF_MESSAGE_DECRYPT, &mi));
	GUARD(enter());
	uint8_t *tk = NULL;
	op_key k = {0};
	CK_RV rv = unseal_if_needed_inlock(hSession, true);
	session_t *s = session_inlock(hSession);
	if (!s)
		rv = CKR_SESSION_HANDLE_INVALID;
	else if (rv == CKR_USER_NOT_LOGGED_IN || rv == CKR_USER_PIN_NOT_INITIALIZED)
		rv = CKR_OK; /* without the token key, counter IVs are refused later */
	if (rv == CKR_OK)
		rv = key_for_op_inlock(s, hKey, mi, enc ? CKA_ENCRYPT : CKA_DECRYPT, &plain_key,
				       &k);
	if (rv == CKR_OK && !k.kms && s->tok->tk && !(tk = sec_dup(s->tok->tk, 32)))
		rv = CKR_HOST_MEMORY;
	if (rv != CKR_OK) {
		UNLOCK();
		sec_free(k.key);
		return rv;
	}
	sess_ref_inlock(s);
	UNLOCK();
	uint8_t kid[KID_LEN];
	if (tk)
		rv = kid_of(tk, k.key, k.keylen, kid);
	sec_free(tk);
	kms_port port = token_kms_port(s->tok);
	pthread_mutex_lock(&s->oplock);
	msg_op *op = enc ? &s->menc : &s->mdec;
	if (rv == CKR_OK && op->active)
		rv = CKR_OPERATION_ACTIVE;
	else if (rv == CKR_OK && k.kms)
		rv = msg_op_init_kms(op, pMechanism, enc, &port, k.idx, k.bits);
	else if (rv == CKR_OK)
		rv = msg_op_init(op, pMechanism, k.key, k.keylen, enc, tk ? kid : NULL);
	sec_free(k.key);
	op_end(s);
	return rv;
}

static CK_RV ep_MessageEncryptInit(CK_SESSION_HANDLE h, CK_MECHANISM_PTR m,
				   CK_OBJECT_HANDLE k)
{
	return LEAVE(message_init(h, m, k, true));
}

static CK_RV ep_MessageDecryptInit(CK_SESSION_HANDLE h, CK_MECHANISM_PTR m,
				   CK_OBJECT_HANDLE k)
{
	return LEAVE(message_init(h, m, k, false));
}

static CK_RV message_oneshot(CK_SESSION_HANDLE h, bool enc, CK_VOID_PTR param,
			     CK_ULONG plen, CK_BYTE_PTR aad, CK_ULONG aadlen,
			     CK_BYTE_PTR in, CK_ULONG inlen, CK_BYTE_PTR out,
			     CK_ULONG_PTR outlen)
{
	session_t *s;
	GUARD(op_begin(h, &s));
	msg_op *op = enc ? &s->menc : &s->mdec;
	CK_RV rv = op->active ? msg_oneshot(op, param, plen, aad, aadlen, in, inlen, out,
					    outlen, token_reserve_counter, s->tok)
			      : CKR_OPERATION_NOT_INITIALIZED;
	bool remote_failed = op->kms.tok && rv != CKR_OK && rv != CKR_BUFFER_TOO_SMALL &&
			     rv != CKR_MECHANISM_PARAM_INVALID;
	op_end(s); /* a failed message leaves the operation active */
	if (remote_failed)
		note_remote_failure(h);
	return remote_failed ? kms_key_refused(rv, CKR_DEVICE_ERROR) : rv;
}

static CK_RV ep_EncryptMessage(CK_SESSION_HANDLE h, CK_VOID_PTR param, CK_ULONG plen,
			       CK_BYTE_PTR aad, CK_ULONG aadlen, CK_BYTE_PTR in,
			       CK_ULONG inlen, CK_BYTE_PTR out, CK_ULONG_PTR outlen)
{
	return LEAVE(message_oneshot(h, true, param, plen, aad, aadlen, in, inlen, out, outlen));
}

static CK_RV ep_DecryptMessage(CK_SESSION_HANDLE h, CK_VOID_PTR param, CK_ULONG plen,
			       CK_BYTE_PTR aad, CK_ULONG aadlen, CK_BYTE_PTR in,
			       CK_ULONG inlen, CK_BYTE_PTR out, CK_ULONG_PTR outlen)
{
	return LEAVE(message_oneshot(h, false, param, plen, aad, aadlen, in, inlen, out, outlen));
}

static CK_RV message_begin(CK_SESSION_HANDLE h, bool enc, CK_VOID_PTR param,
			   CK_ULONG plen, CK_BYTE_PTR aad, CK_ULONG aadlen)
{
	session_t *s;
	GUARD(op_begin(h, &s));
	msg_op *op = enc ? &s->menc : &s->mdec;
	CK_RV rv = op->active ? msg_begin(op, param, plen, aad, aadlen,
					  token_reserve_counter, s->tok)
			      : CKR_OPERATION_NOT_INITIALIZED;
	op_end(s);
	return rv;
}

static CK_RV ep_EncryptMessageBegin(CK_SESSION_HANDLE h, CK_VOID_PTR param,
				    CK_ULONG plen, CK_BYTE_PTR aad, CK_ULONG aadlen)
{
	return LEAVE(message_begin(h, true, param, plen, aad, aadlen));
}

static CK_RV ep_DecryptMessageBegin(CK_SESSION_HANDLE h, CK_VOID_PTR param,
				    CK_ULONG plen, CK_BYTE_PTR aad, CK_ULONG aadlen)
{
	return LEAVE(message_begin(h, false, param, plen, aad, aadlen));
}

static CK_RV message_next(CK_SESSION_HANDLE h, bool enc, CK_VOID_PTR param,
			  CK_ULONG plen, CK_BYTE_PTR in, CK_ULONG inlen, CK_BYTE_PTR out,
			  CK_ULONG_PTR outlen, CK_FLAGS flags)
{
	session_t *s;
	GUARD(op_begin(h, &s));
	msg_op *op = enc ? &s->menc : &s->mdec;
	CK_RV rv = op->active ? msg_next(op, param, plen, in, inlen, out, outlen, flags)
			      : CKR_OPERATION_NOT_INITIALIZED;
	op_end(s);
	return rv;
}

static CK_RV ep_EncryptMessageNext(CK_SESSION_HANDLE h, CK_VOID_PTR param,
				   CK_ULONG plen, CK_BYTE_PTR in, CK_ULONG inlen,
				   CK_BYTE_PTR out, CK_ULONG_PTR outlen, CK_FLAGS flags)
{
	return LEAVE(message_next(h, true, param, plen, in, inlen, out, outlen, flags));
}

static CK_RV ep_DecryptMessageNext(CK_SESSION_HANDLE h, CK_VOID_PTR param,
				   CK_ULONG plen, CK_BYTE_PTR in, CK_ULONG inlen,
				   CK_BYTE_PTR out, CK_ULONG_PTR outlen, CK_FLAGS flags)
{
	return LEAVE(message_next(h, false, param, plen, in, inlen, out, outlen, flags));
}

static CK_RV message_final(CK_SESSION_HANDLE h, bool enc)
{
	session_t *s;
	GUARD(op_begin(h, &s));
	msg_op *op = enc ? &s->menc : &s->mdec;
	CK_RV rv = op->active ? CKR_OK : CKR_OPERATION_NOT_INITIALIZED;
	if (op->active)
		msg_op_free(op);
	op_end(s);
	return rv;
}

static CK_RV ep_MessageEncryptFinal(CK_SESSION_HANDLE h)
{
	return LEAVE(message_final(h, true));
}

static CK_RV ep_MessageDecryptFinal(CK_SESSION_HANDLE h)
{
	return LEAVE(message_final(h, false));
}

/* --- functions not offered ---------------------------------------------- */

#define NOT_SUPPORTED(name, ...)                                               \
	static CK_RV name(__VA_ARGS__)                                         \
	{                                                                      \
		return CKR_FUNCTION_NOT_SUPPORTED;                             \
	}

NOT_SUPPORTED(ep_GetOperationState, CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG_PTR c)
NOT_SUPPORTED(ep_SetOperationState, CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c,
	      CK_OBJECT_HANDLE d, CK_OBJECT_HANDLE e)
NOT_SUPPORTED(ep_SignRecoverInit, CK_SESSION_HANDLE a, CK_MECHANISM_PTR b,
	      CK_OBJECT_HANDLE c)
NOT_SUPPORTED(ep_SignRecover, CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c,
	      CK_BYTE_PTR d, CK_ULONG_PTR e)
NOT_SUPPORTED(ep_VerifyRecoverInit, CK_SESSION_HANDLE a, CK_MECHANISM_PTR b,
	      CK_OBJECT_HANDLE c)
NOT_SUPPORTED(ep_VerifyRecover, CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c,
	      CK_BYTE_PTR d, CK_ULONG_PTR e)
NOT_SUPPORTED(ep_DigestEncryptUpdate, CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c,
	      CK_BYTE_PTR d, CK_ULONG_PTR e)
NOT_SUPPORTED(ep_DecryptDigestUpdate, CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c,
	      CK_BYTE_PTR d, CK_ULONG_PTR e)
NOT_SUPPORTED(ep_SignEncryptUpdate, CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c,
	      CK_BYTE_PTR d, CK_ULONG_PTR e)
NOT_SUPPORTED(ep_DecryptVerifyUpdate, CK_SESSION_HANDLE a, CK_BYTE_PTR b, CK_ULONG c,
	      CK_BYTE_PTR d, CK_ULONG_PTR e)
NOT_SUPPORTED(ep_GenerateKeyPair, CK_SESSION_HANDLE a, CK_MECHANISM_PTR b,
	      CK_ATTRIBUTE_PTR c, CK_ULONG d, CK_ATTRIBUTE_PTR e, CK_ULONG f,
	      CK_OBJECT_HANDLE_PTR g, CK_OBJECT_HANDLE_PTR h)
NOT_SUPPORTED(ep_DeriveKey, CK_SESSION_HANDLE a, CK_MECHANISM_PTR b, CK_OBJECT_HANDLE c,
	      CK_ATTRIBUTE_PTR d, CK_ULONG e, CK_OBJECT_HANDLE_PTR f)
NOT_SUPPORTED(ep_LoginUser, CK_SESSION_HANDLE a, CK_USER_TYPE b, CK_UTF8CHAR_PTR c,
	      CK_ULONG d, CK_UTF8CHAR_PTR e, CK_ULONG f)
NOT_SUPPORTED(ep_MessageSignInit, CK_SESSION_HANDLE a, CK_MECHANISM_PTR b,
	      CK_OBJECT_HANDLE c)
NOT_SUPPORTED(ep_MessageSignVerifyFinal, CK_SESSION_HANDLE a)
NOT_SUPPORTED(ep_SignMessage, CK_SESSION_HANDLE a, CK_VOID_PTR b, CK_ULONG c,
	      CK_BYTE_PTR d, CK_ULONG e, CK_BYTE_PTR f, CK_ULONG_PTR g)
NOT_SUPPORTED(ep_SignMessageBegin, CK_SESSION_HANDLE a, CK_VOID_PTR b, CK_ULONG c)
NOT_SUPPORTED(ep_SignMessageNext, CK_SESSION_HANDLE a, CK_VOID_PTR b, CK_ULONG c,
	      CK_BYTE_PTR d, CK_ULONG e, CK_BYTE_PTR f, CK_ULONG_PTR g)
NOT_SUPPORTED(ep_VerifyMessage, CK_SESSION_HANDLE a, CK_VOID_PTR b, CK_ULONG c,
	      CK_BYTE_PTR d, CK_ULONG e, CK_BYTE_PTR f, CK_ULONG g)
NOT_SUPPORTED(ep_VerifyMessageBegin, CK_SESSION_HANDLE a, CK_VOID_PTR b, CK_ULONG c)
NOT_SUPPORTED(ep_VerifyMessageNext, CK_SESSION_HANDLE a, CK_VOID_PTR b, CK_ULONG c,
	      CK_BYTE_PTR d, CK_ULONG e, CK_BYTE_PTR f, CK_ULONG g)

static CK_RV ep_GetFunctionStatus(CK_SESSION_HANDLE h)
{
	(void)h;
	return CKR_FUNCTION_NOT_PARALLEL;
}

static CK_RV ep_CancelFunction(CK_SESSION_HANDLE h)
{
	(void)h;
	return CKR_FUNCTION_NOT_PARALLEL;
}

static CK_RV ep_WaitForSlotEvent(CK_FLAGS flags, CK_SLOT_ID_PTR pSlot, CK_VOID_PTR pRes)
{
	(void)pSlot;
	(void)pRes;
	GUARD(enter());
	UNLOCK();
	/* Tokens are never inserted or removed. */
	return (flags & CKF_DONT_BLOCK) ? CKR_NO_EVENT : CKR_FUNCTION_NOT_SUPPORTED;
}

static CK_RV ep_SessionCancel(CK_SESSION_HANDLE hSession, CK_FLAGS flags)
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

/* --- function lists and interfaces ---------------------------------------- */

static CK_RV ep_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR pp);
static CK_RV ep_GetInterfaceList(CK_INTERFACE_PTR p, CK_ULONG_PTR n);
static CK_RV ep_GetInterface(CK_UTF8CHAR_PTR name, CK_VERSION_PTR v,
			     CK_INTERFACE_PTR_PTR pp, CK_FLAGS flags);

#define COMMON_FUNCTIONS                                                        \
	ep_Initialize, ep_Finalize, GETINFO, ep_GetFunctionList, ep_GetSlotList,    \
		ep_GetSlotInfo, ep_GetTokenInfo, ep_GetMechanismList,               \
		ep_GetMechanismInfo, ep_InitToken, ep_InitPIN, ep_SetPIN,           \
		ep_OpenSession, ep_CloseSession, ep_CloseAllSessions,               \
		ep_GetSessionInfo, ep_GetOperationState, ep_SetOperationState,      \
		ep_Login, ep_Logout, ep_CreateObject, ep_CopyObject,                \
		ep_DestroyObject, ep_GetObjectSize, ep_GetAttributeValue,           \
		ep_SetAttributeValue, ep_FindObjectsInit, ep_FindObjects,           \
		ep_FindObjectsFinal, ep_EncryptInit, ep_Encrypt, ep_EncryptUpdate,  \
		ep_EncryptFinal, ep_DecryptInit, ep_Decrypt, ep_DecryptUpdate,      \
		ep_DecryptFinal, ep_DigestInit, ep_Digest, ep_DigestUpdate,         \
		ep_DigestKey, ep_DigestFinal, ep_SignInit, ep_Sign, ep_SignUpdate,  \
		ep_SignFinal, ep_SignRecoverInit, ep_SignRecover, ep_VerifyInit,    \
		ep_Verify, ep_VerifyUpdate, ep_VerifyFinal, ep_VerifyRecoverInit,   \
		ep_VerifyRecover, ep_DigestEncryptUpdate, ep_DecryptDigestUpdate,   \
		ep_SignEncryptUpdate, ep_DecryptVerifyUpdate, ep_GenerateKey,       \
		ep_GenerateKeyPair, ep_WrapKey, ep_UnwrapKey, ep_DeriveKey,         \
		ep_SeedRandom, ep_GenerateRandom, ep_GetFunctionStatus,             \
		ep_CancelFunction, ep_WaitForSlotEvent

#define GETINFO ep_GetInfo
static CK_FUNCTION_LIST functions_v2 = {{2, 40}, COMMON_FUNCTIONS};
#undef GETINFO
#define GETINFO ep_GetInfo3
static CK_FUNCTION_LIST_3_0 functions_v3 = {
	{3, 0}, COMMON_FUNCTIONS, ep_GetInterfaceList, ep_GetInterface, ep_LoginUser,
	ep_SessionCancel, ep_MessageEncryptInit, ep_EncryptMessage,
	ep_EncryptMessageBegin, ep_EncryptMessageNext, ep_MessageEncryptFinal,
	ep_MessageDecryptInit, ep_DecryptMessage, ep_DecryptMessageBegin,
	ep_DecryptMessageNext, ep_MessageDecryptFinal, ep_MessageSignInit,
	ep_SignMessage, ep_SignMessageBegin, ep_SignMessageNext,
	ep_MessageSignVerifyFinal, ep_MessageSignInit, ep_VerifyMessage,
	ep_VerifyMessageBegin, ep_VerifyMessageNext, ep_MessageSignVerifyFinal};
#undef GETINFO

static CK_INTERFACE interfaces[] = {
	{(CK_CHAR *)"PKCS 11", &functions_v3, 0},
	{(CK_CHAR *)"PKCS 11", &functions_v2, 0},
};

static CK_RV ep_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR pp)
{
	if (!pp)
		return CKR_ARGUMENTS_BAD;
	*pp = &functions_v2;
	return CKR_OK;
}

static CK_RV ep_GetInterfaceList(CK_INTERFACE_PTR p, CK_ULONG_PTR n)
{
	if (!n)
		return CKR_ARGUMENTS_BAD;
	CK_RV rv = CKR_OK;
	if (p && *n < ARRAY_SIZE(interfaces))
		rv = CKR_BUFFER_TOO_SMALL;
	else if (p)
		memcpy(p, interfaces, sizeof(interfaces));
	*n = ARRAY_SIZE(interfaces);
	return rv;
}

static CK_RV ep_GetInterface(CK_UTF8CHAR_PTR name, CK_VERSION_PTR v,
			     CK_INTERFACE_PTR_PTR pp, CK_FLAGS flags)
{
	if (!pp)
		return CKR_ARGUMENTS_BAD;
	for (size_t i = 0; i < ARRAY_SIZE(interfaces); i++) {
		CK_INTERFACE *it = &interfaces[i];
		const CK_VERSION *iv = it->pFunctionList;
		if (name && strcmp((const char *)name, (const char *)it->pInterfaceName))
			continue;
		if (v && (v->major != iv->major || v->minor != iv->minor))
			continue;
		if ((it->flags & flags) != flags)
			continue;
		*pp = it;
		return CKR_OK;
	}
	return CKR_ARGUMENTS_BAD;
}

EXPORT CK_RV C_GetFunctionList(CK_FUNCTION_LIST_PTR_PTR ppFunctionList)
{
	return ep_GetFunctionList(ppFunctionList);
}

EXPORT CK_RV C_GetInterfaceList(CK_INTERFACE_PTR pInterfacesList, CK_ULONG_PTR pulCount)
{
	return ep_GetInterfaceList(pInterfacesList, pulCount);
}

EXPORT CK_RV C_GetInterface(CK_UTF8CHAR_PTR pInterfaceName, CK_VERSION_PTR pVersion,
			    CK_INTERFACE_PTR_PTR ppInterface, CK_FLAGS flags)
{
	return ep_GetInterface(pInterfaceName, pVersion, ppInterface, flags);
}
