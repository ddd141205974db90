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

/* Load the cached meta of t. */
CK_RV load_meta(token_t *t)
{
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

/* --- C_InitToken ------------------------------------------------------- */

CK_RV token_init(token_t *t, const CK_UTF8CHAR *so_pin, CK_ULONG so_len,
		 const CK_UTF8CHAR *label, CK_ULONG *deverr)
{
	/* Called with the lock held (entry checked: no sessions open). */
	GUARD(check_pin_len(so_len));
	CK_RV rv = token_sync_inlock(t);
	if (rv != CKR_OK)
		return rv;
	if (t->initialized) {
		rv = verify_pin_inlock(t, CKU_SO, so_pin, so_len, NULL);
		if (rv != CKR_OK)
			return rv;
	}
	uint8_t *tk = sec_alloc(TK_LEN), *kek = NULL, *kms = NULL;
	uint8_t rec[PINREC_LEN], newuuid[16], olduuid[16];
	size_t kmslen = 0;
	char kv[128] = "";
	seal_rec seal = {0};
	if (!tk)
		return CKR_HOST_MEMORY;
	memcpy(olduuid, t->uuid, 16);
	if (!crypto_random(tk, TK_LEN) || !crypto_random(newuuid, 16)) {
		sec_free(tk);
		return CKR_GENERAL_ERROR;
	}
	/* The uuid is part of the seal's context: set it for the seal, and
	 * restore the old one if anything fails. */
	memcpy(t->uuid, newuuid, 16);
	bool required = t->cfg->login == LOGIN_REQUIRED;
	pthread_mutex_unlock(&slots.lock);
	rv = seal_tk(t, tk, &kms, &kmslen, kv, sizeof(kv), deverr);
	if (rv == CKR_OK && !pin_record_new(t, so_pin, so_len, rec, &kek))
		rv = CKR_GENERAL_ERROR;
	if (rv == CKR_OK)
		rv = make_seal(t, required ? "so" : "any", required ? kek : NULL, kms,
			       kmslen, kv, &seal);
	pthread_mutex_lock(&slots.lock);

	p11k_err e = P11K_OK;
	if (rv == CKR_OK && !t->store) {
		e = store_open(t->cfg->store, true, &t->store);
		if (e != P11K_OK)
			t->store_broken = e != P11K_ERR_STORE_BUSY;
	}
	if (rv == CKR_OK && e == P11K_OK)
		e = store_begin(t->store);
	const char *mode = required ? "required" : "optional";
	if (rv == CKR_OK && e == P11K_OK) {
		char lab[33];
		memcpy(lab, label, 32);
		lab[32] = 0;
		for (int i = 31; i >= 0 && lab[i] == ' '; i--)
			lab[i] = 0;
		e = store_obj_delete_all(t->store);
		if (e == P11K_OK)
			e = store_seals_clear(t->store);
		if (e == P11K_OK)
			e = store_seal_add(t->store, &seal);
		if (e == P11K_OK)
			e = store_meta_put(t->store, "uuid", newuuid, 16);
		if (e == P11K_OK)
			e = store_meta_put(t->store, "label", lab, strlen(lab));
		if (e == P11K_OK)
			e = store_meta_put(t->store, "so_pin", rec, PINREC_LEN);
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
	}
	if (rv == CKR_OK && e != P11K_OK)
		rv = store_rv(t, e);
	if (seal.blob != kms)
		free(seal.blob);
	free(kms);
	sec_free(kek);
	if (rv != CKR_OK) {
		memcpy(t->uuid, olduuid, 16);
		sec_free(tk);
		return rv;
	}
	token_lock_inlock(t);
	t->login = NO_LOGIN;
	token_forget_objects_inlock(t);
	set_tk_inlock(t, required ? NULL : tk);
	if (required)
		sec_free(tk);
	t->seen_version = store_data_version(t->store);
	rv = load_meta(t);
	t->user_pin_set = false;
	log_info("token", "slot %lu (%s): token initialized", (unsigned long)t->slot_id,
		 t->cfg->name);
	return rv;
}

/* --- login / logout ------------------------------------------------------ */

CK_RV token_login_inlock(token_t *t, CK_USER_TYPE who, const CK_UTF8CHAR *pin,
			 CK_ULONG len, CK_ULONG *deverr)
{
	GUARD(token_sync_inlock(t));
	if (!t->initialized)
		return CKR_USER_PIN_NOT_INITIALIZED;
	if (who == CKU_USER && !t->user_pin_set)
		return CKR_USER_PIN_NOT_INITIALIZED;
	if (len > PIN_MAX)
		return CKR_PIN_LEN_RANGE;
	bool required = t->cfg->login == LOGIN_REQUIRED;
	uint8_t *kek = NULL, *tk = NULL;
	CK_RV rv = verify_pin_inlock(t, who, pin, len, required ? &kek : NULL);
	if (rv == CKR_OK && t->login != NO_LOGIN)
		rv = t->login == who ? CKR_USER_ALREADY_LOGGED_IN
				     : CKR_USER_ANOTHER_ALREADY_LOGGED_IN;
	if (rv == CKR_OK && required && !t->tk) {
		rv = unseal_inlock(t, role_name(who), kek, &tk, deverr);
		if (rv == CKR_OK && t->login != NO_LOGIN) {
			sec_free(tk);
			rv = t->login == who ? CKR_USER_ALREADY_LOGGED_IN
					     : CKR_USER_ANOTHER_ALREADY_LOGGED_IN;
		} else if (rv == CKR_OK) {
			set_tk_inlock(t, tk);
		}
	}
	sec_free(kek);
	if (rv == CKR_OK) {
		t->login = who;
		log_info("token", "slot %lu: %s logged in", (unsigned long)t->slot_id,
			 role_name(who));
	}
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

/* --- C_InitPIN / C_SetPIN ------------------------------------------------ */

CK_RV token_init_pin_inlock(token_t *t, const CK_UTF8CHAR *pin, CK_ULONG len,
			    CK_ULONG *deverr)
{
	GUARD(check_pin_len(len));
	GUARD(token_sync_inlock(t));
	GUARD(token_ensure_tk_inlock(t, deverr));
	bool required = t->cfg->login == LOGIN_REQUIRED;
	uint8_t *tk = sec_dup(t->tk, TK_LEN), *kek = NULL, *kms = NULL;
	uint8_t rec[PINREC_LEN];
	size_t kmslen = 0;
	char kv[128] = "";
	seal_rec seal = {0};
	if (!tk)
		return CKR_HOST_MEMORY;
	pthread_mutex_unlock(&slots.lock);
	CK_RV rv = pin_record_new(t, pin, len, rec, &kek) ? CKR_OK : CKR_GENERAL_ERROR;
	/* A fresh KMS encryption for the user's seal: the SO's seal stays
	 * wrapped under the SO's PIN. */
	if (rv == CKR_OK && required)
		rv = seal_tk(t, tk, &kms, &kmslen, kv, sizeof(kv), deverr);
	if (rv == CKR_OK && required)
		rv = make_seal(t, "user", kek, kms, kmslen, kv, &seal);
	sec_free(tk);
	pthread_mutex_lock(&slots.lock);
	p11k_err e = P11K_OK;
	if (rv == CKR_OK)
		e = store_begin(t->store);
	if (rv == CKR_OK && e == P11K_OK) {
		if (required) {
			/* Replace any previous user seal. */
			seal_rec *all = NULL;
			size_t n = 0;
			e = store_seals_load(t->store, &all, &n);
			if (e == P11K_OK)
				e = store_seals_clear(t->store);
			for (size_t i = 0; e == P11K_OK && i < n; i++)
				if (strcmp(all[i].role, "user") != 0)
					e = store_seal_add(t->store, &all[i]);
			seal_recs_free(all, n);
			if (e == P11K_OK)
				e = store_seal_add(t->store, &seal);
		}
		if (e == P11K_OK)
			e = store_meta_put(t->store, "user_pin", rec, PINREC_LEN);
		if (e == P11K_OK)
			e = put_u32(t->store, "user_fail", 0);
		if (e == P11K_OK)
			e = store_commit(t->store);
		else
			store_rollback(t->store);
	}
	if (rv == CKR_OK)
		rv = store_rv(t, e);
	free(seal.blob);
	free(kms);
	sec_free(kek);
	if (rv == CKR_OK) {
		t->user_pin_set = true;
		t->user_fail = 0;
		log_info("token", "slot %lu: user PIN initialized",
			 (unsigned long)t->slot_id);
	}
	return rv;
}

CK_RV token_set_pin_inlock(token_t *t, CK_USER_TYPE who, const CK_UTF8CHAR *old,
			   CK_ULONG oldlen, const CK_UTF8CHAR *new_pin,
			   CK_ULONG newlen)
{
	GUARD(check_pin_len(newlen));
	GUARD(token_sync_inlock(t));
	if (!t->initialized || (who == CKU_USER && !t->user_pin_set))
		return CKR_USER_PIN_NOT_INITIALIZED;
	if (oldlen > PIN_MAX)
		return CKR_PIN_LEN_RANGE;
	bool required = t->cfg->login == LOGIN_REQUIRED;
	const char *role = role_name(who);
	uint8_t *oldkek = NULL, *newkek = NULL, rec[PINREC_LEN];
	CK_RV rv = verify_pin_inlock(t, who, old, oldlen, required ? &oldkek : NULL);
	if (rv != CKR_OK)
		return rv;
	seal_rec *all = NULL;
	size_t n = 0;
	p11k_err e = store_seals_load(t->store, &all, &n);
	if (e != P11K_OK) {
		sec_free(oldkek);
		return store_rv(t, e);
	}
	pthread_mutex_unlock(&slots.lock);
	if (!pin_record_new(t, new_pin, newlen, rec, &newkek))
		rv = CKR_GENERAL_ERROR;
	/* Re-wrap this role's seals under the new PIN: no KMS call. */
	uint8_t paad[64];
	size_t paadlen;
	pin_aad(t, role, paad, &paadlen);
	for (size_t i = 0; rv == CKR_OK && required && i < n; i++) {
		if (strcmp(all[i].role, role) != 0)
			continue;
		uint8_t *kms = NULL, *nb = NULL;
		size_t kmslen = 0, nblen = 0;
		if (gcm_open(oldkek, paad, paadlen, all[i].blob, all[i].bloblen, &kms,
			     &kmslen) != P11K_OK ||
		    gcm_seal(newkek, paad, paadlen, kms, kmslen, &nb, &nblen) != P11K_OK)
			rv = CKR_DEVICE_ERROR;
		sec_free(kms);
		if (rv == CKR_OK) {
			free(all[i].blob);
			all[i].blob = nb;
			all[i].bloblen = nblen;
		}
	}
	pthread_mutex_lock(&slots.lock);
	if (rv == CKR_OK)
		e = store_begin(t->store);
	if (rv == CKR_OK && e == P11K_OK) {
		if (required)
			e = store_seals_clear(t->store);
		for (size_t i = 0; required && e == P11K_OK && i < n; i++)
			e = store_seal_add(t->store, &all[i]);
		if (e == P11K_OK)
			e = store_meta_put(t->store, who == CKU_SO ? "so_pin" : "user_pin",
					   rec, PINREC_LEN);
		if (e == P11K_OK)
			e = store_commit(t->store);
		else
			store_rollback(t->store);
		rv = store_rv(t, e);
	}
	seal_recs_free(all, n);
	sec_free(oldkek);
	sec_free(newkek);
	if (rv == CKR_OK)
		log_info("token", "slot %lu: %s PIN changed", (unsigned long)t->slot_id,
			 role);
	return rv;
}
