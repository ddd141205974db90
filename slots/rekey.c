/* SPDX-License-Identifier: Apache-2.0 */
/* Rekey of a token (rekey.h). */
#include "rekey.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/crypto.h"
#include "common/log.h"
#include "common/secmem.h"
#include "seal.h"
#include "token.h"
#include "token_priv.h"

#define REKEY_BATCH 256

typedef struct rekey_ctx {
	token_t *t;
	store_t *st;
	uint8_t uuid[16];
	uint8_t *keys;  /* TK | KS | X | TK' (secure) */
	bool x;         /* login=required: X takes part */
	int64_t *rows;  /* every record's rowid */
	size_t nrows, cap;
	uint64_t moved, damaged;
} rekey_ctx;

static bool collect(void *arg, const obj_rec *r)
{
	rekey_ctx *c = arg;
	if (c->nrows == c->cap) {
		size_t cap = c->cap ? c->cap * 2 : 1024;
		int64_t *n = realloc(c->rows, cap * sizeof(*n));
		if (!n)
			return false;
		c->rows = n;
		c->cap = cap;
	}
	c->rows[c->nrows++] = r->rowid;
	return true;
}

/* The store is still this token's (not re-initialized meanwhile). */
static p11k_err same_token(rekey_ctx *c)
{
	uint8_t *v = NULL;
	size_t n = 0;
	bool found = false;
	p11k_err e = store_meta_get(c->st, "uuid", &v, &n, &found);
	if (e == P11K_OK && (!found || n != 16 || memcmp(v, c->uuid, 16) != 0))
		e = P11K_ERR_STORE;
	free(v);
	return e;
}

/* Step 1: TK' in "tk_seal_next" (kept if a rekey was cut short before). */
static p11k_err step_next(rekey_ctx *c)
{
	seal_set s = {0};
	p11k_err e = store_begin(c->st);
	if (e != P11K_OK)
		return e;
	e = same_token(c);
	if (e == P11K_OK)
		e = store_meta_get(c->st, "tk_seal_next", &s.tk_next, &s.tk_next_len,
				   &(bool){false});
	uint32_t gen = 0;
	if (e == P11K_OK)
		e = tk_gen_read(c->t, &gen);
	if (e == P11K_OK && s.tk_next) {
		/* Resume: the same TK' (records may be under it already). */
		seal_set only = {.tk_seal = s.tk_next, .tk_seal_len = s.tk_next_len};
		uint8_t *b = sec_alloc(TK_BLOCK_LEN);
		e = b ? tk_keys_open(c->uuid, &only, TK_KS(c->keys), c->x ? TK_X(c->keys) : NULL,
				     b)
		      : P11K_ERR_NOMEM;
		if (e == P11K_OK)
			memcpy(TK_NEXT(c->keys), b, TK_LEN);
		sec_free(b);
		log_info("token", "slot %lu: resuming a rekey that was cut short",
			 (unsigned long)c->t->slot_id);
	} else if (e == P11K_OK) {
		uint8_t *blob = NULL;
		size_t len = 0;
		if (!crypto_random(TK_NEXT(c->keys), TK_LEN))
			e = P11K_ERR_INTERNAL;
		if (e == P11K_OK)
			e = tk_seal_make(c->uuid, TK_NEXT(c->keys), TK_KS(c->keys),
					 c->x ? TK_X(c->keys) : NULL, &blob, &len);
		if (e == P11K_OK)
			e = store_meta_put(c->st, "tk_seal_next", blob, len);
		if (e == P11K_OK)
			e = put_u32(c->st, "tk_gen", gen + 1);
		free(blob);
	}
	free(s.tk_next);
	if (e == P11K_OK)
		e = store_commit(c->st);
	else
		store_rollback(c->st);
	TK_HAS_NEXT(c->keys) = e == P11K_OK;
	return e;
}

/* Move one record to TK' (a record already under it is left alone). */
static p11k_err move_one(rekey_ctx *c, int64_t rowid)
{
	obj_rec r;
	bool found = false;
	p11k_err e = store_obj_get(c->st, rowid, &r, &found);
	if (e != P11K_OK || !found)
		return e; /* deleted meanwhile: nothing to move */
	dbuf_t aad;
	dbuf_init(&aad, 128u << 20, false);
	uint8_t *pt = NULL, *sec = NULL;
	size_t ptlen = 0, seclen = 0;
	if (!record_aad(r.uid, r.pub, r.publen, &aad)) {
		e = P11K_ERR_NOMEM;
	} else if (gcm_open(TK_NEXT(c->keys), aad.p, aad.len, r.sec, r.seclen, &pt, &ptlen) ==
		   P11K_OK) {
		/* already moved */
	} else if (gcm_open(c->keys, aad.p, aad.len, r.sec, r.seclen, &pt, &ptlen) == P11K_OK) {
		e = gcm_seal(TK_NEXT(c->keys), aad.p, aad.len, pt, ptlen, &sec, &seclen);
		if (e == P11K_OK)
			e = store_obj_set_sec(c->st, rowid, sec, seclen);
		if (e == P11K_OK)
			c->moved++;
	} else {
		/* Damaged or tampered already: no key opens it; it stays as it is. */
		log_error("token", "slot %lu: object record %lld opens under neither token "
				   "key; left as it is",
			  (unsigned long)c->t->slot_id, (long long)rowid);
		c->damaged++;
	}
	sec_free(pt);
	free(sec);
	dbuf_free(&aad);
	obj_rec_free(&r);
	return e;
}

static p11k_err list_rows(rekey_ctx *c)
{
	c->nrows = 0;
	obj_filter all = {0};
	p11k_err e = store_obj_find(c->st, &all, collect, c);
	return e == P11K_OK && c->nrows && !c->rows ? P11K_ERR_NOMEM : e;
}

/* Step 2: the records, REKEY_BATCH per transaction. */
static p11k_err step_records(rekey_ctx *c, rekey_progress_fn progress, void *arg)
{
	p11k_err e = list_rows(c);
	for (size_t i = 0; e == P11K_OK && i < c->nrows; i += REKEY_BATCH) {
		e = store_begin(c->st);
		if (e != P11K_OK)
			break;
		e = same_token(c);
		for (size_t k = i; e == P11K_OK && k < c->nrows && k < i + REKEY_BATCH; k++)
			e = move_one(c, c->rows[k]);
		if (e == P11K_OK)
			e = store_commit(c->st);
		else
			store_rollback(c->st);
		size_t done = i + REKEY_BATCH < c->nrows ? i + REKEY_BATCH : c->nrows;
		if (e == P11K_OK && progress)
			progress(arg, done, c->nrows);
	}
	return e;
}

/* Step 3, one transaction: every record under TK' (one written under TK
 * meanwhile is moved now), then TK' becomes the token key. */
static p11k_err step_swap(rekey_ctx *c)
{
	p11k_err e = store_begin(c->st);
	if (e != P11K_OK)
		return e;
	e = same_token(c);
	if (e == P11K_OK)
		e = list_rows(c);
	for (size_t k = 0; e == P11K_OK && k < c->nrows; k++)
		e = move_one(c, c->rows[k]);
	uint8_t *next = NULL;
	size_t len = 0;
	uint32_t gen = 0;
	if (e == P11K_OK)
		e = store_meta_get(c->st, "tk_seal_next", &next, &len, &(bool){false});
	if (e == P11K_OK && !next)
		e = P11K_ERR_STORE; /* another process finished it: nothing to swap */
	if (e == P11K_OK)
		e = tk_gen_read(c->t, &gen);
	if (e == P11K_OK)
		e = store_meta_put(c->st, "tk_seal", next, len);
	if (e == P11K_OK)
		e = store_meta_del(c->st, "tk_seal_next");
	if (e == P11K_OK)
		e = put_u32(c->st, "tk_gen", gen + 1);
	free(next);
	if (e == P11K_OK)
		e = store_commit(c->st);
	else
		store_rollback(c->st);
	return e;
}

CK_RV token_rekey(token_t *t, rekey_progress_fn progress, void *arg, CK_ULONG *deverr)
{
	GUARD(token_sync_inlock(t));
	if (!t->tk) {
		log_info("token", "slot %lu: rekey needs the token key: log in first",
			 (unsigned long)t->slot_id);
		return CKR_USER_NOT_LOGGED_IN;
	}
	if (t->rekeying) {
		log_error("token", "slot %lu: a rekey is already under way in this process",
			  (unsigned long)t->slot_id);
		return CKR_FUNCTION_FAILED;
	}
	rekey_ctx c = {.t = t, .st = t->store, .x = t->cfg->login == LOGIN_REQUIRED};
	memcpy(c.uuid, t->uuid, 16);
	if (!(c.keys = sec_dup(t->tk, TK_BLOCK_LEN)))
		return CKR_HOST_MEMORY;
	t->rekeying = true;
	uint64_t gen = t->gen;
	log_info("token", "slot %lu (%s): rekey started", (unsigned long)t->slot_id,
		 t->cfg->name);
	/* The store serializes the steps against every process; the module
	 * lock is not needed and other threads go on meanwhile. */
	pthread_mutex_unlock(&slots.lock);
	p11k_err e = step_next(&c);
	if (e == P11K_OK) {
		/* From now on this process writes new records under TK' too. */
		pthread_mutex_lock(&slots.lock);
		if (t->gen == gen)
			tk_keys_refresh_inlock(t);
		pthread_mutex_unlock(&slots.lock);
		e = step_records(&c, progress, arg);
	}
	if (e == P11K_OK)
		e = step_swap(&c);
	pthread_mutex_lock(&slots.lock);
	t->rekeying = false;
	if (e == P11K_OK && t->gen == gen) {
		tk_keys_refresh_inlock(t); /* TK := TK', the old key wiped */
		t->seen_version = store_data_version(t->store);
	}
	if (e == P11K_OK)
		log_warn("token", "slot %lu (%s): rekeyed: %llu records re-encrypted under a "
				  "new token key%s; the old key is gone",
			 (unsigned long)t->slot_id, t->cfg->name, (unsigned long long)c.moved,
			 c.damaged ? " (some damaged records left as they were)" : "");
	else
		log_error("token", "slot %lu (%s): rekey stopped: %s; the store opens as it "
				   "is and a new rekey resumes",
			  (unsigned long)t->slot_id, t->cfg->name, p11k_err_name(e));
	sec_free(c.keys);
	free(c.rows);
	if (e != P11K_OK) {
		t->last.err = e;
		*deverr = p11k_err_to_deverr(e);
		return p11k_err_to_ckr(e);
	}
	return CKR_OK;
}
