/* SPDX-License-Identifier: Apache-2.0 */
/* Token sync, metadata and login state; the drivers of C_InitToken,
 * C_Login, C_InitPIN and C_SetPIN (token.h). */
#include "token.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/crypto.h"
#include "common/log.h"
#include "common/secmem.h"
#include "pin.h"
#include "token_priv.h"

/* --- store metadata --------------------------------------------------- */

uint32_t get_u32(const uint8_t *p, size_t n)
{
	return n == 4 ? ((uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
			 (uint32_t)p[2] << 8 | p[3])
		      : 0;
}

p11k_err put_u32(store_t *s, const char *name, uint32_t v)
{
	uint8_t b[4] = {v >> 24, v >> 16, v >> 8, v};
	return store_meta_put(s, name, b, 4);
}

CK_RV store_rv(token_t *t, p11k_err e)
{
	if (e == P11K_OK)
		return CKR_OK;
	t->last.err = e;
	return p11k_err_to_ckr(e);
}

CK_RV publish_rv(token_t *t, p11k_err e)
{
	return e == P11K_ERR_STORE_BUSY ? SLOTS_RETRY : store_rv(t, e);
}

/* Load the cached meta of t. */
CK_RV load_meta(token_t *t)
{
	/* The primary seal may have moved (another process resealed): read
	 * again at the next need (records.c, seal_primary_inlock). */
	t->seal_key_id[0] = 0;
	uint8_t *v = NULL;
	size_t n = 0;
	bool found;
	p11k_err e = store_meta_get(t->store, "uuid", &v, &n, &found);
	if (e != P11K_OK)
		return store_rv(t, e);
	bool was = t->initialized;
	uint8_t olduuid[16];
	memcpy(olduuid, t->uuid, 16);
	t->initialized = found && n == 16;
	if (t->initialized)
		memcpy(t->uuid, v, 16);
	free(v);
	if (was && (!t->initialized || memcmp(olduuid, t->uuid, 16) != 0)) {
		/* Re-initialized by another process: nothing we hold is valid. */
		log_warn("token", "slot %lu: the token was re-initialized by another "
				  "process; logging out",
			 (unsigned long)t->slot_id);
		token_lock_inlock(t);
		t->login = NO_LOGIN;
		token_forget_objects_inlock(t);
		t->gen++; /* work prepared for the old token is void */
	}
	if (!t->initialized)
		return CKR_OK;
	for (int i = 0; i < 8; i++)
		snprintf(t->serial + 2 * i, 3, "%02x", t->uuid[i]);
	e = store_meta_get(t->store, "label", &v, &n, &found);
	if (e == P11K_OK) {
		size_t l = found ? (n < 32 ? n : 32) : 0;
		memset(t->label, 0, sizeof(t->label));
		if (l)
			memcpy(t->label, v, l);
		free(v);
		e = store_meta_get(t->store, "user_pin", &v, &n, &found);
	}
	if (e == P11K_OK) {
		t->user_pin_set = found;
		free(v);
		e = store_meta_get(t->store, "user_fail", &v, &n, &found);
	}
	if (e == P11K_OK) {
		t->user_fail = found ? get_u32(v, n) : 0;
		free(v);
		e = store_meta_get(t->store, "so_fail", &v, &n, &found);
	}
	if (e == P11K_OK) {
		t->so_fail = found ? get_u32(v, n) : 0;
		free(v);
	}
	/* Another process's rekey may have moved the token key on. */
	if (e == P11K_OK && t->tk)
		tk_keys_refresh_inlock(t);
	return store_rv(t, e);
}

CK_RV token_sync_inlock(token_t *t)
{
	if (t->store_broken)
		return CKR_DEVICE_ERROR;
	if (!t->store) {
		if (!store_exists(t->cfg->store)) {
			t->initialized = false;
			return CKR_OK;
		}
		p11k_err e = store_open(t->cfg->store, false, &t->store);
		if (e != P11K_OK) {
			t->store_broken = e != P11K_ERR_STORE_BUSY;
			log_error("token", "slot %lu (%s): store %s is unusable: %s",
				  (unsigned long)t->slot_id, t->cfg->name,
				  t->cfg->store, p11k_err_name(e));
			return store_rv(t, e);
		}
		t->seen_version = store_data_version(t->store);
		return load_meta(t);
	}
	uint64_t v = store_data_version(t->store);
	if (v == t->seen_version)
		return CKR_OK;
	t->seen_version = v;
	size_t it = 0;
	uint64_t k;
	void *val;
	while (hmap_next(&t->by_rowid, &it, &k, &val))
		((object_t *)val)->stale = true;
	return load_meta(t);
}

void note_provider_error(token_t *t, const provider_status *st,
				const char *what)
{
	t->last = *st;
	char http[24] = "";
	if (st->http_status)
		snprintf(http, sizeof(http), " HTTP %ld", st->http_status);
	log_error("token", "slot %lu (%s): %s failed: %s%s%s%s%s%s%s%s%s",
		  (unsigned long)t->slot_id, t->cfg->name, what,
		  p11k_err_name(st->err), st->message[0] ? ": " : "", st->message,
		  st->error_name[0] ? " [" : "", st->error_name,
		  st->error_name[0] ? "]" : "", http,
		  st->request_id[0] ? " request-id " : "", st->request_id);
}

void set_tk_inlock(token_t *t, uint8_t *tk)
{
	sec_free(t->tk);
	t->tk = tk;
	t->tk_epoch++;
}

/* --- C_InitToken ----------------------------------------------------------
 * A job (slots.h): prepare makes the new keys and uuid and copies the SO's
 * PIN record; the call checks the old SO PIN, seals KS under every
 * configured key and opens (creates) the store; publish writes the new
 * token in one transaction. */

typedef struct init_job {
	const CK_UTF8CHAR *so_pin;
	CK_ULONG so_len;
	const CK_UTF8CHAR *label;
	CK_ULONG *deverr;
	bool required;
	uint8_t *oldrec; /* the SO's record when re-initializing */
	size_t oldreclen;
	CK_RV pin_rv;
	uint32_t tries;
	uint8_t *keys, *kek; /* TK | KS | X; the SO's PIN key */
	uint8_t rec[PINREC_LEN], uuid[16];
	seal_rec *rows;     /* the "kms" rows */
	size_t nrows;
	seal_rec pinrow;    /* "pin-so" (required mode) */
	uint8_t *tk_seal;
	size_t tk_seal_len;
	provider_status st;
	bool need_store; /* t had no store at prepare: the call opens one */
	store_t *store;
	p11k_err open_err;
} init_job;

static CK_RV init_prepare(token_t *t, void *arg)
{
	init_job *j = arg;
	GUARD(check_pin_len(j->so_len));
	GUARD(token_sync_inlock(t));
	if (t->initialized)
		GUARD(pin_record_copy_inlock(t, CKU_SO, &j->oldrec, &j->oldreclen));
	j->required = t->cfg->login == LOGIN_REQUIRED;
	j->need_store = !t->store;
	if (!(j->keys = sec_alloc(TK_BLOCK_LEN)))
		return CKR_HOST_MEMORY;
	if (!crypto_random(j->keys, j->required ? TK_BLOCK_LEN : TK_LEN + KS_LEN) ||
	    !crypto_random(j->uuid, 16))
		return CKR_GENERAL_ERROR;
	return CKR_OK;
}

static CK_RV init_call(token_t *t, void *arg)
{
	init_job *j = arg;
	if (j->oldrec) {
		j->pin_rv = pin_try(t, CKU_SO, j->so_pin, j->so_len, j->oldrec, j->oldreclen, NULL,
				    &j->tries);
		if (j->pin_rv != CKR_OK)
			return j->pin_rv;
	}
	const uint8_t *x = j->required ? TK_X(j->keys) : NULL;
	CK_RV rv = seal_rv(seal_rows_make(t, j->uuid, TK_KS(j->keys), &j->rows, &j->nrows,
					  &j->st),
			   j->deverr);
	if (rv == CKR_OK && !pin_record_new(t, j->so_pin, j->so_len, j->rec, &j->kek))
		rv = CKR_GENERAL_ERROR;
	if (rv == CKR_OK && j->required)
		rv = pin_row_make(j->uuid, "so", j->kek, x, &j->pinrow);
	if (rv == CKR_OK && tk_seal_make(j->uuid, j->keys, TK_KS(j->keys), x, &j->tk_seal,
					 &j->tk_seal_len) != P11K_OK)
		rv = CKR_GENERAL_ERROR;
	/* Creating the store waits on SQLite: here, unlocked. */
	if (rv == CKR_OK && j->need_store) {
		j->open_err = store_open(t->cfg->store, true, &j->store);
		if (j->open_err != P11K_OK)
			rv = p11k_err_to_ckr(j->open_err);
	}
	return rv;
}

/* The new token's rows, in one transaction (the store held without
 * waiting). */
static p11k_err init_write(token_t *t, init_job *j)
{
	const char *mode = j->required ? "required" : "optional";
	const char *pol = t->cfg->seal_policy == SEAL_ALL ? "all" : "any";
	char lab[33];
	memcpy(lab, j->label, 32);
	lab[32] = 0;
	for (int i = 31; i >= 0 && lab[i] == ' '; i--)
		lab[i] = 0;
	p11k_err e = store_begin(t->store);
	if (e != P11K_OK)
		return e;
	e = store_obj_delete_all(t->store);
	if (e == P11K_OK)
		e = store_seals_clear(t->store);
	for (size_t i = 0; e == P11K_OK && i < j->nrows; i++)
		e = store_seal_add(t->store, &j->rows[i]);
	if (e == P11K_OK && j->required)
		e = store_seal_add(t->store, &j->pinrow);
	if (e == P11K_OK)
		e = store_meta_put(t->store, "seal_format", SEAL_FORMAT, 1);
	if (e == P11K_OK)
		e = store_meta_put(t->store, "seal_policy", pol, strlen(pol));
	if (e == P11K_OK)
		e = store_meta_put(t->store, "tk_seal", j->tk_seal, j->tk_seal_len);
	if (e == P11K_OK)
		e = store_meta_del(t->store, "tk_seal_next");
	if (e == P11K_OK)
		e = put_u32(t->store, "tk_gen", 0);
	if (e == P11K_OK)
		e = store_meta_put(t->store, "uuid", j->uuid, 16);
	if (e == P11K_OK)
		e = store_meta_put(t->store, "label", lab, strlen(lab));
	if (e == P11K_OK)
		e = store_meta_put(t->store, "so_pin", j->rec, PINREC_LEN);
	if (e == P11K_OK)
		e = store_meta_del(t->store, "user_pin");
	if (e == P11K_OK)
		e = put_u32(t->store, "so_fail", 0);
	if (e == P11K_OK)
		e = put_u32(t->store, "user_fail", 0);
	if (e == P11K_OK)
		e = store_meta_put(t->store, "login_mode", mode, strlen(mode));
	if (e == P11K_OK)
		e = store_commit(t->store);
	else
		store_rollback(t->store);
	return e;
}

static CK_RV init_publish(token_t *t, void *arg, CK_RV rv, bool stale)
{
	init_job *j = arg;
	if (j->open_err != P11K_OK) {
		t->store_broken = j->open_err != P11K_ERR_STORE_BUSY;
		t->last.err = j->open_err;
		j->open_err = P11K_OK;
	}
	if (j->st.err != P11K_OK)
		note_provider_error(t, &j->st, "sealing the token key");
	j->st.err = P11K_OK; /* noted once, even if publish runs again */
	if (stale)
		return rv == CKR_OK ? CKR_FUNCTION_FAILED : rv;
	if (j->oldrec && (j->pin_rv == CKR_PIN_INCORRECT || j->pin_rv == CKR_PIN_LOCKED))
		return pin_publish_inlock(t, CKU_SO, j->pin_rv, j->tries);
	if (rv != CKR_OK)
		return rv;
	/* A session opened meanwhile: C_InitToken needs none (PKCS #11 5.5). */
	if (t->nsessions)
		return CKR_SESSION_EXISTS;
	/* A store opened by the call is adopted unless another thread opened
	 * one meanwhile (the driver closes ours then). slots_run held only
	 * the store t had: hold an adopted one here. */
	bool hold = false;
	if (j->store && !t->store) {
		t->store = j->store;
		j->store = NULL;
		hold = true;
	}
	if (!t->store)
		return CKR_DEVICE_ERROR;
	if (hold && store_nowait_enter(t->store) != P11K_OK)
		return SLOTS_RETRY; /* the adoption is harmless: sync would have */
	p11k_err e = init_write(t, j);
	if (hold)
		store_nowait_leave(t->store);
	if (e != P11K_OK)
		return publish_rv(t, e);
	token_lock_inlock(t);
	t->login = NO_LOGIN;
	token_forget_objects_inlock(t);
	/* The uuid is the seal's context: take it before load_meta, which
	 * would see another token otherwise. */
	memcpy(t->uuid, j->uuid, 16);
	set_tk_inlock(t, j->required ? NULL : j->keys);
	t->tk_gen = 0;
	if (!j->required)
		j->keys = NULL;
	t->gen++;
	t->seen_version = store_data_version(t->store);
	snprintf(t->seal_key_id, sizeof(t->seal_key_id), "%s", j->rows[0].key_id);
	snprintf(t->seal_key_version, sizeof(t->seal_key_version), "%s",
		 j->rows[0].key_version);
	rv = load_meta(t);
	t->user_pin_set = false;
	log_info("token", "slot %lu (%s): token initialized, sealed under %zu key(s)",
		 (unsigned long)t->slot_id, t->cfg->name, j->nrows);
	return rv;
}

static const slots_job_ops init_ops = {init_prepare, init_call, init_publish, true};

CK_RV token_init(token_t *t, const CK_UTF8CHAR *so_pin, CK_ULONG so_len,
		 const CK_UTF8CHAR *label, CK_ULONG *deverr)
{
	init_job j = {.so_pin = so_pin, .so_len = so_len, .label = label, .deverr = deverr};
	CK_RV rv = slots_run(t, &init_ops, &j);
	seal_recs_free(j.rows, j.nrows);
	seal_rec_clear(&j.pinrow);
	free(j.tk_seal);
	free(j.oldrec);
	sec_free(j.kek);
	sec_free(j.keys);
	store_close(j.store);
	return rv;
}

/* --- login / logout ------------------------------------------------------ */

typedef struct login_job {
	CK_USER_TYPE who;
	const CK_UTF8CHAR *pin;
	CK_ULONG len;
	CK_ULONG *deverr;
	uint8_t *rec;
	size_t reclen;
	bool unseal; /* required mode with no token key: unseal it too */
	unseal_job u;
	CK_RV pin_rv;
	uint32_t tries;
} login_job;

static CK_RV login_prepare(token_t *t, void *arg)
{
	login_job *j = arg;
	GUARD(token_sync_inlock(t));
	if (!t->initialized)
		return CKR_USER_PIN_NOT_INITIALIZED;
	if (j->who == CKU_USER && !t->user_pin_set)
		return CKR_USER_PIN_NOT_INITIALIZED;
	if (j->len > PIN_MAX)
		return CKR_PIN_LEN_RANGE;
	if (j->len < PIN_MIN) {
		/* No PIN this short was ever set: wrong, but it costs no try. */
		log_info("token", "slot %lu: %s PIN of %lu bytes is shorter than any PIN "
				  "(%d); not counted as a try",
			 (unsigned long)t->slot_id, role_name(j->who), (unsigned long)j->len,
			 PIN_MIN);
		return CKR_PIN_INCORRECT;
	}
	GUARD(pin_record_copy_inlock(t, j->who, &j->rec, &j->reclen));
	j->unseal = t->cfg->login == LOGIN_REQUIRED && !t->tk;
	if (j->unseal)
		GUARD(unseal_prepare_inlock(t, role_name(j->who), &j->u));
	return CKR_OK;
}

static CK_RV login_call(token_t *t, void *arg)
{
	login_job *j = arg;
	uint8_t *kek = NULL;
	j->pin_rv = pin_try(t, j->who, j->pin, j->len, j->rec, j->reclen, j->unseal ? &kek : NULL,
			    &j->tries);
	CK_RV rv = j->pin_rv;
	if (rv == CKR_OK && j->unseal)
		rv = unseal_call(t, &j->u, kek);
	sec_free(kek);
	return rv;
}

static CK_RV login_publish(token_t *t, void *arg, CK_RV rv, bool stale)
{
	login_job *j = arg;
	if (!stale) {
		/* Store first: a busy store retries with nothing changed. */
		CK_RV prv = pin_publish_inlock(t, j->who, j->pin_rv, j->tries);
		if (prv == SLOTS_RETRY)
			return prv;
		/* The count's answer for a wrong PIN; a failed reset fails the
		 * login as before. */
		if (j->pin_rv != CKR_OK || prv != CKR_OK)
			rv = prv;
	}
	unseal_publish_inlock(t, &j->u, j->deverr);
	if (stale)
		return rv == CKR_OK ? CKR_FUNCTION_FAILED : rv;
	if (rv == CKR_OK && t->nsessions == 0)
		/* Every session was closed meanwhile, which logged the
		 * application out (5.6): the login would outlive them. */
		rv = CKR_SESSION_CLOSED;
	if (rv == CKR_OK && t->login != NO_LOGIN)
		rv = t->login == j->who ? CKR_USER_ALREADY_LOGGED_IN
					: CKR_USER_ANOTHER_ALREADY_LOGGED_IN;
	if (rv != CKR_OK)
		return rv;
	if (j->u.keys && !t->tk) {
		set_tk_inlock(t, j->u.keys);
		t->tk_gen = j->u.set.tk_gen;
		j->u.keys = NULL;
	}
	t->login = j->who;
	log_info("token", "slot %lu: %s logged in", (unsigned long)t->slot_id,
		 role_name(j->who));
	return CKR_OK;
}

static const slots_job_ops login_ops = {login_prepare, login_call, login_publish, true};

CK_RV token_login(token_t *t, CK_USER_TYPE who, const CK_UTF8CHAR *pin, CK_ULONG len,
		  CK_ULONG *deverr)
{
	login_job j = {.who = who, .pin = pin, .len = len, .deverr = deverr};
	CK_RV rv = slots_run(t, &login_ops, &j);
	free(j.rec);
	unseal_job_free(&j.u);
	return rv;
}

void token_lock_inlock(token_t *t)
{
	if (t->cfg->login == LOGIN_REQUIRED && t->tk)
		set_tk_inlock(t, NULL);
	if (t->cfg->login == LOGIN_REQUIRED) {
		size_t it = 0;
		uint64_t k;
		void *v;
		while (hmap_next(&t->by_rowid, &it, &k, &v))
			obj_drop_secrets(v);
	}
}

CK_RV token_logout_inlock(token_t *t)
{
	if (t->login == NO_LOGIN)
		return CKR_USER_NOT_LOGGED_IN;
	token_lock_inlock(t);
	t->login = NO_LOGIN;
	return CKR_OK;
}

/* --- C_InitPIN ------------------------------------------------------------
 * No KMS call: the SO is logged in, so X is in memory; the user's row
 * wraps it under the new PIN's key. */

typedef struct initpin_job {
	const CK_UTF8CHAR *pin;
	CK_ULONG len;
	bool required;
	uint8_t uuid[16];
	uint8_t *x, *kek;
	uint8_t rec[PINREC_LEN];
	seal_rec row;
} initpin_job;

static CK_RV initpin_prepare(token_t *t, void *arg)
{
	initpin_job *j = arg;
	GUARD(token_sync_inlock(t));
	if (t->login != CKU_SO)
		return CKR_USER_NOT_LOGGED_IN; /* logged out while unsealing */
	if (!t->tk)
		return t->cfg->login == LOGIN_REQUIRED ? CKR_USER_NOT_LOGGED_IN
						       : CKR_DEVICE_ERROR;
	j->required = t->cfg->login == LOGIN_REQUIRED;
	memcpy(j->uuid, t->uuid, 16);
	if (j->required && !(j->x = sec_dup(TK_X(t->tk), X_LEN)))
		return CKR_HOST_MEMORY;
	return CKR_OK;
}

static CK_RV initpin_call(token_t *t, void *arg)
{
	initpin_job *j = arg;
	CK_RV rv = pin_record_new(t, j->pin, j->len, j->rec, &j->kek) ? CKR_OK
								       : CKR_GENERAL_ERROR;
	if (rv == CKR_OK && j->required)
		rv = pin_row_make(j->uuid, "user", j->kek, j->x, &j->row);
	return rv;
}

static p11k_err initpin_write(token_t *t, initpin_job *j)
{
	p11k_err e = store_begin(t->store);
	if (e != P11K_OK)
		return e;
	if (j->required)
		e = store_seals_delete_role(t->store, "pin-user");
	if (e == P11K_OK && j->required)
		e = store_seal_add(t->store, &j->row);
	if (e == P11K_OK)
		e = store_meta_put(t->store, "user_pin", j->rec, PINREC_LEN);
	if (e == P11K_OK)
		e = put_u32(t->store, "user_fail", 0);
	if (e == P11K_OK)
		e = store_commit(t->store);
	else
		store_rollback(t->store);
	return e;
}

static CK_RV initpin_publish(token_t *t, void *arg, CK_RV rv, bool stale)
{
	initpin_job *j = arg;
	if (stale)
		return rv == CKR_OK ? CKR_FUNCTION_FAILED : rv;
	if (rv != CKR_OK)
		return rv;
	if (t->login != CKU_SO)
		return CKR_USER_NOT_LOGGED_IN;
	p11k_err e = initpin_write(t, j);
	if (e != P11K_OK)
		return publish_rv(t, e);
	t->user_pin_set = true;
	t->user_fail = 0;
	log_info("token", "slot %lu: user PIN initialized", (unsigned long)t->slot_id);
	return CKR_OK;
}

static const slots_job_ops initpin_ops = {initpin_prepare, initpin_call, initpin_publish,
					  true};

CK_RV token_init_pin(token_t *t, const CK_UTF8CHAR *pin, CK_ULONG len, CK_ULONG *deverr)
{
	GUARD(check_pin_len(len));
	GUARD(token_sync_inlock(t));
	GUARD(token_ensure_tk(t, deverr));
	initpin_job j = {.pin = pin, .len = len};
	CK_RV rv = slots_run(t, &initpin_ops, &j);
	seal_rec_clear(&j.row);
	sec_free(j.kek);
	sec_free(j.x);
	return rv;
}

/* --- C_SetPIN -------------------------------------------------------------
 * Rewraps this role's X under the new PIN's key: no KMS call. */

typedef struct setpin_job {
	CK_USER_TYPE who;
	const CK_UTF8CHAR *old, *new_pin;
	CK_ULONG oldlen, newlen;
	bool required;
	uint8_t uuid[16];
	uint8_t *oldrec;
	size_t oldreclen;
	seal_set set;
	seal_rec row;
	uint8_t rec[PINREC_LEN];
	CK_RV pin_rv;
	uint32_t tries;
} setpin_job;

static CK_RV setpin_prepare(token_t *t, void *arg)
{
	setpin_job *j = arg;
	GUARD(check_pin_len(j->newlen));
	GUARD(token_sync_inlock(t));
	if (!t->initialized || (j->who == CKU_USER && !t->user_pin_set))
		return CKR_USER_PIN_NOT_INITIALIZED;
	if (j->oldlen > PIN_MAX)
		return CKR_PIN_LEN_RANGE;
	j->required = t->cfg->login == LOGIN_REQUIRED;
	memcpy(j->uuid, t->uuid, 16);
	GUARD(pin_record_copy_inlock(t, j->who, &j->oldrec, &j->oldreclen));
	return j->required ? seal_set_load_inlock(t, &j->set) : CKR_OK;
}

static CK_RV setpin_call(token_t *t, void *arg)
{
	setpin_job *j = arg;
	uint8_t *oldkek = NULL, *newkek = NULL, *x = NULL;
	const char *role = role_name(j->who);
	j->pin_rv = pin_try(t, j->who, j->old, j->oldlen, j->oldrec, j->oldreclen,
			    j->required ? &oldkek : NULL, &j->tries);
	CK_RV rv = j->pin_rv;
	if (rv == CKR_OK && !pin_record_new(t, j->new_pin, j->newlen, j->rec, &newkek))
		rv = CKR_GENERAL_ERROR;
	if (rv == CKR_OK && j->required) {
		rv = pin_row_open(j->uuid, role, oldkek, seal_pin_row(&j->set, role), &x);
		if (rv != CKR_OK)
			log_error("token", "slot %lu: the %s PIN seal does not open with "
					   "this PIN's key (store damaged?)",
				  (unsigned long)t->slot_id, role);
	}
	if (rv == CKR_OK && j->required)
		rv = pin_row_make(j->uuid, role, newkek, x, &j->row);
	sec_free(x);
	sec_free(oldkek);
	sec_free(newkek);
	return rv;
}

static p11k_err setpin_write(token_t *t, setpin_job *j)
{
	p11k_err e = store_begin(t->store);
	if (e != P11K_OK)
		return e;
	if (j->required)
		e = store_seals_delete_role(t->store, j->row.role);
	if (e == P11K_OK && j->required)
		e = store_seal_add(t->store, &j->row);
	if (e == P11K_OK)
		e = store_meta_put(t->store, j->who == CKU_SO ? "so_pin" : "user_pin", j->rec,
				   PINREC_LEN);
	if (e == P11K_OK)
		e = store_commit(t->store);
	else
		store_rollback(t->store);
	return e;
}

static CK_RV setpin_publish(token_t *t, void *arg, CK_RV rv, bool stale)
{
	setpin_job *j = arg;
	if (stale)
		return rv == CKR_OK ? CKR_FUNCTION_FAILED : rv;
	CK_RV prv = pin_publish_inlock(t, j->who, j->pin_rv, j->tries);
	if (prv == SLOTS_RETRY || j->pin_rv != CKR_OK)
		return prv;
	if (prv != CKR_OK || rv != CKR_OK)
		return prv != CKR_OK ? prv : rv;
	p11k_err e = setpin_write(t, j);
	if (e != P11K_OK)
		return publish_rv(t, e);
	log_info("token", "slot %lu: %s PIN changed", (unsigned long)t->slot_id,
		 role_name(j->who));
	return CKR_OK;
}

static const slots_job_ops setpin_ops = {setpin_prepare, setpin_call, setpin_publish, true};

CK_RV token_set_pin(token_t *t, CK_USER_TYPE who, const CK_UTF8CHAR *old, CK_ULONG oldlen,
		    const CK_UTF8CHAR *new_pin, CK_ULONG newlen)
{
	setpin_job j = {.who = who, .old = old, .oldlen = oldlen, .new_pin = new_pin,
			.newlen = newlen};
	CK_RV rv = slots_run(t, &setpin_ops, &j);
	free(j.oldrec);
	seal_set_free(&j.set);
	seal_rec_clear(&j.row);
	return rv;
}
