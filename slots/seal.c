/* SPDX-License-Identifier: Apache-2.0 */
/* Seal, unseal and reseal of the token key (seal.h, docs/LIFECYCLE.md). */
#include "seal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/crypto.h"
#include "common/log.h"
#include "common/secmem.h"
#include "audit.h"
#include "pin.h"
#include "token.h"
#include "token_priv.h"

/* --- contexts (AAD) -------------------------------------------------------- */

static void aad_of(const char *pfx, const uint8_t uuid[16], uint8_t aad[96], size_t *len)
{
	size_t n = strlen(pfx);
	memcpy(aad, pfx, n);
	memcpy(aad + n, uuid, 16);
	*len = n + 16;
}

/* The KMS layer: what every KMS encrypts, bound to the token. */
static void ks_aad(const uint8_t uuid[16], uint8_t aad[96], size_t *len)
{
	aad_of("p11kms-ks:v2:", uuid, aad, len);
}

static void pin_aad(const uint8_t uuid[16], const char *role, uint8_t aad[96], size_t *len)
{
	char pfx[48];
	snprintf(pfx, sizeof(pfx), "p11kms-pin:v2:%s:", role);
	aad_of(pfx, uuid, aad, len);
}

/* --- targets --------------------------------------------------------------- */

bool seal_target_of(const token_t *t, size_t i, seal_target *out)
{
	if (i >= t->cfg->nseals || t->cfg->seals[i].provider >= slots.ntokens)
		return false;
	const token_t *o = &slots.tokens[t->cfg->seals[i].provider];
	out->cfg = o->cfg;
	out->prov = o->prov;
	out->key_id = t->cfg->seals[i].key_id;
	if (!out->key_id && o->cfg->ops->default_seal_key)
		out->key_id = o->cfg->ops->default_seal_key(o->prov);
	return out->prov && out->key_id;
}

/* The provider a stored row names, by its configured name. */
static bool row_target(const seal_rec *r, seal_target *out)
{
	for (size_t i = 0; i < slots.ntokens; i++)
		if (strcmp(slots.tokens[i].cfg->name, r->provider) == 0 && slots.tokens[i].prov) {
			out->cfg = slots.tokens[i].cfg;
			out->prov = slots.tokens[i].prov;
			out->key_id = r->key_id;
			return true;
		}
	return false;
}

static bool row_is(const seal_rec *r, const seal_target *tg)
{
	return strcmp(r->role, ROLE_KMS) == 0 && strcmp(r->provider, tg->cfg->name) == 0 &&
	       strcmp(r->key_id, tg->key_id) == 0;
}

/* --- the stored set ---------------------------------------------------------- */

CK_RV seal_set_load_inlock(token_t *t, seal_set *s)
{
	memset(s, 0, sizeof(*s));
	uint8_t *v = NULL;
	size_t n = 0;
	bool found = false;
	p11k_err e = store_meta_get(t->store, "seal_format", &v, &n, &found);
	s->v2 = e == P11K_OK && found && n == 1 && v[0] == SEAL_FORMAT[0];
	free(v);
	if (e == P11K_OK && !s->v2) {
		log_error("token", "slot %lu (%s): store %s was made by a development "
				   "version of p11kms (seal format 1), which this version "
				   "cannot open; the file is left as it is",
			  (unsigned long)t->slot_id, t->cfg->name, t->cfg->store);
		return CKR_DEVICE_ERROR;
	}
	if (e == P11K_OK)
		e = store_meta_get(t->store, "seal_policy", &v, &n, &found);
	if (e == P11K_OK) {
		s->policy = found && n == 3 && memcmp(v, "all", 3) == 0 ? SEAL_ALL : SEAL_ANY;
		free(v);
		e = store_meta_get(t->store, "tk_seal", &s->tk_seal, &s->tk_seal_len, &found);
	}
	if (e == P11K_OK)
		e = store_meta_get(t->store, "tk_seal_next", &s->tk_next, &s->tk_next_len, &found);
	if (e == P11K_OK)
		e = store_meta_get(t->store, "tk_gen", &v, &n, &found);
	if (e == P11K_OK) {
		s->tk_gen = found ? get_u32(v, n) : 0;
		free(v);
		e = store_seals_load(t->store, &s->rows, &s->nrows);
	}
	if (e != P11K_OK) {
		seal_set_free(s);
		return store_rv(t, e);
	}
	return CKR_OK;
}

void seal_set_free(seal_set *s)
{
	seal_recs_free(s->rows, s->nrows);
	free(s->tk_seal);
	free(s->tk_next);
	memset(s, 0, sizeof(*s));
}

const seal_rec *seal_pin_row(const seal_set *s, const char *role)
{
	char want[16];
	snprintf(want, sizeof(want), "pin-%s", role);
	for (size_t i = 0; i < s->nrows; i++)
		if (strcmp(s->rows[i].role, want) == 0)
			return &s->rows[i];
	return NULL;
}

/* --- the layers ---------------------------------------------------------------- */

/* ki: what describe said of the key just before, or NULL. A provider
 * whose encrypt names only the key (AWS's Encrypt answers the key ARN,
 * not the key material) gets the version describe called current. */
static p11k_err kms_seal_one(const seal_target *tg, const uint8_t uuid[16], const uint8_t *secret,
			     const key_info *ki, seal_rec *out, provider_status *st)
{
	uint8_t aad[96];
	size_t aadlen;
	char kv[128] = "";
	memset(out, 0, sizeof(*out));
	ks_aad(uuid, aad, &aadlen);
	p11k_err e = audit_encrypt(tg->cfg, tg->prov, tg->key_id, secret, KS_LEN, aad, aadlen,
				   &out->blob, &out->bloblen, kv, sizeof(kv), st);
	if (e != P11K_OK) {
		st->err = e;
		return e;
	}
	out->provider = strdup(tg->cfg->name);
	out->key_id = strdup(tg->key_id);
	if (ki && ki->primary_version[0] && (strcmp(kv, ki->key_id) == 0 || !kv[0])) {
		log_debug("token", "%s key %s: encrypt names no version; sealed at its "
				   "current version %s",
			  tg->cfg->name, tg->key_id, ki->primary_version);
		snprintf(kv, sizeof(kv), "%s", ki->primary_version);
	}
	out->key_version = strdup(kv);
	out->role = strdup(ROLE_KMS);
	out->created = clock_now_s();
	if (!out->provider || !out->key_id || !out->key_version || !out->role)
		return st->err = P11K_ERR_NOMEM;
	return P11K_OK;
}

void seal_rec_clear(seal_rec *r)
{
	free(r->provider);
	free(r->key_id);
	free(r->key_version);
	free(r->role);
	free(r->blob);
	memset(r, 0, sizeof(*r));
}

static bool rec_copy(const seal_rec *a, seal_rec *b)
{
	memset(b, 0, sizeof(*b));
	b->provider = strdup(a->provider);
	b->key_id = strdup(a->key_id);
	b->key_version = strdup(a->key_version);
	b->role = strdup(a->role);
	b->blob = malloc(a->bloblen ? a->bloblen : 1);
	b->created = a->created;
	b->bloblen = a->bloblen;
	if (!b->provider || !b->key_id || !b->key_version || !b->role || !b->blob) {
		seal_rec_clear(b);
		return false;
	}
	memcpy(b->blob, a->blob, a->bloblen);
	return true;
}

/* Secret i of n for ks under policy: ks itself (any), or a share whose
 * XOR over all n is ks (all). shares holds n-1 random blocks. */
static void share_of(seal_policy pol, const uint8_t *ks, const uint8_t *shares, size_t i,
		     size_t n, uint8_t out[KS_LEN])
{
	if (pol == SEAL_ANY) {
		memcpy(out, ks, KS_LEN);
		return;
	}
	if (i + 1 < n) {
		memcpy(out, shares + i * KS_LEN, KS_LEN);
		return;
	}
	memcpy(out, ks, KS_LEN);
	for (size_t j = 0; j + 1 < n; j++)
		for (size_t b = 0; b < KS_LEN; b++)
			out[b] ^= shares[j * KS_LEN + b];
}

/* Rows for every configured key, policy pol, n encryptions; p (or NULL)
 * holds what describe said of each key. */
static p11k_err rows_make(token_t *t, const uint8_t uuid[16], const uint8_t *ks,
			  seal_policy pol, const reseal_plan *p, seal_rec **rows, size_t *nrows,
			  provider_status *st)
{
	size_t n = t->cfg->nseals;
	seal_rec *v = calloc(n, sizeof(*v));
	uint8_t *shares = sec_alloc(n * KS_LEN), *sec = sec_alloc(KS_LEN);
	p11k_err e = v && shares && sec ? P11K_OK : P11K_ERR_NOMEM;
	if (e == P11K_OK && pol == SEAL_ALL && n > 1 && !crypto_random(shares, (n - 1) * KS_LEN))
		e = P11K_ERR_INTERNAL;
	for (size_t i = 0; e == P11K_OK && i < n; i++) {
		seal_target tg;
		if (!seal_target_of(t, i, &tg)) {
			provider_status_set(st, P11K_ERR_KEY_NOT_FOUND,
					    "seal_with entry %zu names no key", i);
			e = P11K_ERR_KEY_NOT_FOUND;
			break;
		}
		share_of(pol, ks, shares, i, n, sec);
		const key_info *ki = p && i < p->nrefs && p->ref_err[i] == P11K_OK ? &p->ref_info[i]
									       : NULL;
		e = kms_seal_one(&tg, uuid, sec, ki, &v[i], st);
		if (e != P11K_OK)
			log_error("token", "slot %lu (%s): sealing under %s key %s failed",
				  (unsigned long)t->slot_id, t->cfg->name, tg.cfg->name, tg.key_id);
	}
	sec_free(shares);
	sec_free(sec);
	if (e != P11K_OK) {
		seal_recs_free(v, v ? n : 0);
		return e;
	}
	*rows = v;
	*nrows = n;
	return P11K_OK;
}

p11k_err seal_rows_make(token_t *t, const uint8_t uuid[16], const uint8_t *ks,
			seal_rec **rows, size_t *nrows, provider_status *st)
{
	/* Describe first: the versions the rows record, and the age warning. */
	seal_set none = {0};
	reseal_plan p;
	reseal_plan_make(t, uuid, &none, NULL, false, &p);
	p11k_err e = rows_make(t, uuid, ks, t->cfg->seal_policy, &p, rows, nrows, st);
	reseal_plan_free(&p);
	return e;
}

p11k_err tk_seal_make(const uint8_t uuid[16], const uint8_t *tk, const uint8_t *ks,
		      const uint8_t *x, uint8_t **blob, size_t *len)
{
	uint8_t aad[96];
	size_t aadlen;
	uint8_t *inner = NULL;
	size_t innerlen = TK_LEN;
	p11k_err e = P11K_OK;
	if (x) {
		aad_of("p11kms-tk-x:v2:", uuid, aad, &aadlen);
		e = gcm_seal(x, aad, aadlen, tk, TK_LEN, &inner, &innerlen);
	}
	if (e == P11K_OK) {
		aad_of("p11kms-tk:v2:", uuid, aad, &aadlen);
		e = gcm_seal(ks, aad, aadlen, x ? inner : tk, innerlen, blob, len);
	}
	free(inner);
	return e;
}

/* TK from the tk_seal with ks (and x). *tk is secure memory. */
static p11k_err tk_seal_open(const uint8_t uuid[16], const uint8_t *blob, size_t len,
			     const uint8_t *ks, const uint8_t *x, uint8_t **tk)
{
	uint8_t aad[96];
	size_t aadlen, innerlen = 0, tklen = 0;
	uint8_t *inner = NULL;
	aad_of("p11kms-tk:v2:", uuid, aad, &aadlen);
	p11k_err e = gcm_open(ks, aad, aadlen, blob, len, &inner, &innerlen);
	if (e == P11K_OK && x) {
		aad_of("p11kms-tk-x:v2:", uuid, aad, &aadlen);
		e = gcm_open(x, aad, aadlen, inner, innerlen, tk, &tklen);
		sec_free(inner);
	} else if (e == P11K_OK) {
		*tk = inner;
		tklen = innerlen;
	}
	if (e == P11K_OK && tklen != TK_LEN) {
		sec_free(*tk);
		*tk = NULL;
		e = P11K_ERR_BAD_REPLY;
	}
	return e;
}

p11k_err tk_keys_open(const uint8_t uuid[16], const seal_set *s, const uint8_t *ks,
		      const uint8_t *x, uint8_t *b)
{
	uint8_t *tk = NULL, *next = NULL;
	p11k_err e = tk_seal_open(uuid, s->tk_seal, s->tk_seal_len, ks, x, &tk);
	if (e == P11K_OK && s->tk_next)
		e = tk_seal_open(uuid, s->tk_next, s->tk_next_len, ks, x, &next);
	if (e == P11K_OK) {
		memcpy(b, tk, TK_LEN);
		memmove(TK_KS(b), ks, KS_LEN);
		if (x)
			memmove(TK_X(b), x, X_LEN);
		TK_HAS_NEXT(b) = next != NULL;
		if (next)
			memcpy(TK_NEXT(b), next, TK_LEN);
		else
			memset(TK_NEXT(b), 0, TK_LEN);
	}
	sec_free(tk);
	sec_free(next);
	return e;
}

void tk_keys_refresh_inlock(token_t *t)
{
	if (!t->tk || !t->store)
		return;
	seal_set s;
	uint8_t *b = NULL;
	if (seal_set_load_inlock(t, &s) != CKR_OK)
		return;
	if (s.tk_gen != t->tk_gen && (b = sec_alloc(TK_BLOCK_LEN))) {
		bool x = t->cfg->login == LOGIN_REQUIRED;
		if (tk_keys_open(t->uuid, &s, TK_KS(t->tk), x ? TK_X(t->tk) : NULL, b) ==
		    P11K_OK) {
			log_info("token", "slot %lu: token key %s (another process's rekey)",
				 (unsigned long)t->slot_id,
				 TK_HAS_NEXT(b) ? "and its successor reloaded" : "reloaded");
			/* The same token, the same objects: not a new tk_epoch
			 * (running operations on token keys go on). */
			sec_free(t->tk);
			t->tk = b;
			t->tk_gen = s.tk_gen;
			b = NULL;
		} else {
			log_error("token", "slot %lu: the token key seal changed and does not "
					   "open with the keys in memory",
				  (unsigned long)t->slot_id);
		}
	}
	sec_free(b);
	seal_set_free(&s);
}

CK_RV pin_row_make(const uint8_t uuid[16], const char *role, const uint8_t *kek,
		   const uint8_t *x, seal_rec *out)
{
	uint8_t aad[96];
	size_t aadlen;
	char name[16];
	memset(out, 0, sizeof(*out));
	snprintf(name, sizeof(name), "pin-%s", role);
	pin_aad(uuid, role, aad, &aadlen);
	if (gcm_seal(kek, aad, aadlen, x, X_LEN, &out->blob, &out->bloblen) != P11K_OK)
		return CKR_GENERAL_ERROR;
	out->provider = strdup("");
	out->key_id = strdup("");
	out->key_version = strdup("");
	out->role = strdup(name);
	out->created = clock_now_s();
	if (!out->provider || !out->key_id || !out->key_version || !out->role) {
		seal_rec_clear(out);
		return CKR_HOST_MEMORY;
	}
	return CKR_OK;
}

CK_RV pin_row_open(const uint8_t uuid[16], const char *role, const uint8_t *kek,
		   const seal_rec *row, uint8_t **x)
{
	uint8_t aad[96];
	size_t aadlen, xlen = 0;
	pin_aad(uuid, role, aad, &aadlen);
	if (!row || gcm_open(kek, aad, aadlen, row->blob, row->bloblen, x, &xlen) != P11K_OK ||
	    xlen != X_LEN) {
		if (row)
			sec_free(*x);
		*x = NULL;
		return CKR_DEVICE_ERROR;
	}
	return CKR_OK;
}

/* KS from the stored "kms" rows: configured keys first, in order; under
 * "any" the first that opens, under "all" every row. *ks secure. */
static p11k_err kms_open(token_t *t, const uint8_t uuid[16], const seal_set *s,
			 uint8_t **ks, provider_status *st)
{
	uint8_t aad[96];
	size_t aadlen;
	ks_aad(uuid, aad, &aadlen);
	size_t order[64], n = 0;
	bool taken[64] = {false};
	for (size_t i = 0; i < t->cfg->nseals; i++) {
		seal_target tg;
		if (!seal_target_of(t, i, &tg))
			continue;
		for (size_t j = 0; j < s->nrows && j < 64; j++)
			if (!taken[j] && row_is(&s->rows[j], &tg)) {
				taken[j] = true;
				order[n++] = j;
			}
	}
	for (size_t j = 0; j < s->nrows && j < 64; j++)
		if (!taken[j] && strcmp(s->rows[j].role, ROLE_KMS) == 0)
			order[n++] = j;
	if (n == 0) {
		provider_status_set(st, P11K_ERR_KEY_NOT_FOUND, "the store holds no KMS seal");
		return P11K_ERR_KEY_NOT_FOUND;
	}
	uint8_t *acc = sec_alloc(KS_LEN);
	if (!acc)
		return P11K_ERR_NOMEM;
	p11k_err first = P11K_OK;
	bool opened = false;
	for (size_t k = 0; k < n; k++) {
		const seal_rec *r = &s->rows[order[k]];
		seal_target tg;
		provider_status one = {0};
		uint8_t *pt = NULL;
		size_t ptlen = 0;
		p11k_err e;
		if (!row_target(r, &tg)) {
			provider_status_set(&one, P11K_ERR_KEY_NOT_FOUND,
					    "a seal names provider \"%.40s\", which is not "
					    "configured", r->provider);
			e = P11K_ERR_KEY_NOT_FOUND;
		} else {
			e = audit_decrypt(tg.cfg, tg.prov, r->key_id, r->key_version, r->blob,
					  r->bloblen, aad, aadlen, &pt, &ptlen, &one);
			if (e == P11K_OK && ptlen != KS_LEN)
				e = P11K_ERR_BAD_REPLY;
		}
		if (e == P11K_OK) {
			for (size_t b = 0; b < KS_LEN; b++)
				acc[b] = s->policy == SEAL_ANY ? pt[b] : acc[b] ^ pt[b];
			sec_free(pt);
			log_info("token", "slot %lu: KMS seal opened by %s key %s version %s",
				 (unsigned long)t->slot_id, r->provider, r->key_id, r->key_version);
			opened = true;
			if (s->policy == SEAL_ANY)
				break;
			continue;
		}
		sec_free(pt);
		one.err = e;
		log_warn("token", "slot %lu: the seal under %s key %s does not open: %s%s%s",
			 (unsigned long)t->slot_id, r->provider, r->key_id, p11k_err_name(e),
			 one.message[0] ? ": " : "", one.message);
		if (first == P11K_OK) {
			first = e;
			*st = one;
		}
		if (s->policy == SEAL_ALL) {
			opened = false;
			break;
		}
	}
	if (!opened) {
		sec_free(acc);
		return first != P11K_OK ? first : P11K_ERR_KEY_NOT_FOUND;
	}
	*ks = acc;
	return P11K_OK;
}

/* --- reseal ---------------------------------------------------------------------- */

static void age_warning(const token_t *t, const seal_target *tg, const key_info *ki)
{
	uint64_t now = clock_now_s(), born = ki->version_created_at;
	uint64_t limit = t->cfg->rotation_age_days * 86400ULL;
	if (!born || born > now || now - born <= limit)
		return;
	log_warn("token", "slot %lu (%s): rotation due: sealing key %s of %s is at version "
			  "%s, made %llu days ago, more than rotation_age_days (%llu); "
			  "rotate it in the KMS (docs/LIFECYCLE.md)",
		 (unsigned long)t->slot_id, t->cfg->name, tg->key_id, tg->cfg->name,
		 ki->primary_version[0] ? ki->primary_version : "(unknown)",
		 (unsigned long long)((now - born) / 86400),
		 (unsigned long long)t->cfg->rotation_age_days);
}

__attribute__((format(printf, 2, 3))) static void why_add(reseal_plan *p, const char *fmt,
								 ...)
{
	size_t n = strlen(p->why);
	if (n + 4 >= sizeof(p->why))
		return;
	if (n) {
		memcpy(p->why + n, "; ", 3);
		n += 2;
	}
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(p->why + n, sizeof(p->why) - n, fmt, ap);
	va_end(ap);
}

void reseal_plan_make(token_t *t, const uint8_t uuid[16], const seal_set *have,
		      const uint8_t *ks, bool force, reseal_plan *p)
{
	memset(p, 0, sizeof(*p));
	size_t n = t->cfg->nseals;
	p->nrefs = n;
	long cur[SEAL_MAX_REFS];
	bool used[64] = {false};
	bool stale = force;
	if (force)
		why_add(p, "asked to reseal");
	if (have->policy != t->cfg->seal_policy) {
		stale = true;
		why_add(p, "policy is now \"%s\"", t->cfg->seal_policy == SEAL_ALL ? "all" : "any");
	}
	for (size_t i = 0; i < n; i++) {
		seal_target tg;
		cur[i] = -1;
		if (!seal_target_of(t, i, &tg)) {
			p->ref_err[i] = P11K_ERR_KEY_NOT_FOUND;
			continue;
		}
		p->ref_err[i] = audit_describe(tg.cfg, tg.prov, tg.key_id, &p->ref_info[i],
					       &p->ref_st[i]);
		const key_info *ki = &p->ref_info[i];
		if (p->ref_err[i] == P11K_OK)
			age_warning(t, &tg, ki);
		for (size_t j = 0; j < have->nrows && j < 64; j++)
			if (!used[j] && row_is(&have->rows[j], &tg)) {
				used[j] = true;
				cur[i] = (long)j;
				break;
			}
		if (cur[i] < 0) {
			stale = true;
			why_add(p, "no seal under %s key %s", tg.cfg->name, tg.key_id);
		} else if (p->ref_err[i] == P11K_OK && ki->primary_version[0] &&
			   strcmp(have->rows[cur[i]].key_version, ki->primary_version) != 0) {
			stale = true;
			why_add(p, "%s is now at version %s", tg.key_id, ki->primary_version);
		}
	}
	for (size_t j = 0; j < have->nrows && j < 64; j++)
		if (!used[j] && strcmp(have->rows[j].role, ROLE_KMS) == 0) {
			stale = true;
			why_add(p, "the seal under %s key %s is no longer configured",
				have->rows[j].provider, have->rows[j].key_id);
		}
	/* The primary seal as it stands. */
	if (n && cur[0] >= 0) {
		snprintf(p->key_id, sizeof(p->key_id), "%s", have->rows[cur[0]].key_id);
		snprintf(p->key_version, sizeof(p->key_version), "%s",
			 have->rows[cur[0]].key_version);
	}
	if (!ks || !stale)
		return;

	provider_status st = {0};
	if (t->cfg->seal_policy == SEAL_ALL) {
		/* Fresh shares under every key, or nothing. */
		if (rows_make(t, uuid, ks, SEAL_ALL, p, &p->rows, &p->nrows, &st) != P11K_OK) {
			log_warn("token", "slot %lu (%s): reseal postponed (%s): %s",
				 (unsigned long)t->slot_id, t->cfg->name, p->why,
				 p11k_err_name(st.err));
			p->incomplete = true;
			p->fail = st;
			return;
		}
	} else {
		/* Keep each current seal, make the others; a key that cannot
		 * seal now keeps its old row. */
		p->rows = calloc(n + have->nrows, sizeof(*p->rows));
		if (!p->rows)
			return;
		bool complete = true;
		size_t made = 0;
		for (size_t i = 0; i < n; i++) {
			seal_target tg;
			bool current = cur[i] >= 0 && !force && have->policy == SEAL_ANY &&
				       (p->ref_err[i] != P11K_OK || !p->ref_info[i].primary_version[0] ||
					strcmp(have->rows[cur[i]].key_version,
					       p->ref_info[i].primary_version) == 0);
			p11k_err e = P11K_ERR_KEY_NOT_FOUND;
			if (!current && seal_target_of(t, i, &tg) &&
			    (p->ref_err[i] != P11K_OK || p->ref_info[i].state == KEY_STATE_ENABLED)) {
				provider_status one = {0};
				e = kms_seal_one(&tg, uuid, ks,
						 p->ref_err[i] == P11K_OK ? &p->ref_info[i] : NULL,
						 &p->rows[p->nrows], &one);
				if (e == P11K_OK) {
					p->nrows++;
					made++;
				}
				else {
					seal_rec_clear(&p->rows[p->nrows]);
					if (p->fail.err == P11K_OK) {
						p->fail = one;
						p->fail.err = e;
					}
					log_warn("token", "slot %lu (%s): cannot reseal under %s "
							  "key %s now: %s",
						 (unsigned long)t->slot_id, t->cfg->name,
						 tg.cfg->name, tg.key_id, p11k_err_name(e));
				}
			}
			if (e == P11K_OK)
				continue;
			if (have->policy != SEAL_ANY) {
				/* The stored rows are shares, not KS: none may be kept
				 * under "any". All new, or nothing. */
				log_warn("token", "slot %lu (%s): reseal postponed (%s): not every "
						  "key can seal now",
					 (unsigned long)t->slot_id, t->cfg->name, p->why);
				seal_recs_free(p->rows, p->nrows);
				p->rows = NULL;
				p->nrows = 0;
				p->incomplete = true;
				return;
			}
			if (cur[i] >= 0 && rec_copy(&have->rows[cur[i]], &p->rows[p->nrows]))
				p->nrows++;
			else
				complete = false;
			if (!current)
				complete = false;
		}
		/* Seals of keys no longer listed go only once every listed key
		 * has its current seal: a reseal never makes the token harder
		 * to open. */
		size_t dropped = 0;
		for (size_t j = 0; j < have->nrows && j < 64; j++)
			if (!used[j] && strcmp(have->rows[j].role, ROLE_KMS) == 0) {
				if (complete)
					dropped++;
				else if (rec_copy(&have->rows[j], &p->rows[p->nrows]))
					p->nrows++;
			}
		p->incomplete = !complete;
		if (p->nrows == 0 || (made == 0 && dropped == 0 && have->policy == SEAL_ANY)) {
			/* Nothing new to write: every key that needs a new seal
			 * cannot make one now. */
			if (made == 0 && dropped == 0)
				log_warn("token", "slot %lu (%s): reseal postponed (%s): no key "
						  "that needs a new seal can make one now",
					 (unsigned long)t->slot_id, t->cfg->name, p->why);
			seal_recs_free(p->rows, p->nrows);
			p->rows = NULL;
			p->nrows = 0;
			return;
		}
	}
	p->write = true;
	if (p->nrows && n) {
		snprintf(p->key_id, sizeof(p->key_id), "%s", p->rows[0].key_id);
		snprintf(p->key_version, sizeof(p->key_version), "%s", p->rows[0].key_version);
	}
}

p11k_err reseal_write(token_t *t, const reseal_plan *p)
{
	const char *pol = t->cfg->seal_policy == SEAL_ALL ? "all" : "any";
	p11k_err e = store_begin(t->store);
	if (e != P11K_OK)
		return e;
	e = store_seals_delete_role(t->store, ROLE_KMS);
	for (size_t i = 0; e == P11K_OK && i < p->nrows; i++)
		e = store_seal_add(t->store, &p->rows[i]);
	if (e == P11K_OK)
		e = store_meta_put(t->store, "seal_policy", pol, strlen(pol));
	if (e == P11K_OK)
		e = store_commit(t->store);
	else
		store_rollback(t->store);
	return e;
}

void reseal_plan_free(reseal_plan *p)
{
	seal_recs_free(p->rows, p->nrows);
	p->rows = NULL;
	p->nrows = 0;
	p->write = false;
}

void reseal_publish_inlock(token_t *t, reseal_plan *p)
{
	if (p->write && t->store) {
		p11k_err e = reseal_write(t, p);
		if (e == P11K_OK) {
			log_warn("token", "slot %lu (%s): token resealed (%s): primary seal now %s "
					  "version %s",
				 (unsigned long)t->slot_id, t->cfg->name, p->why, p->key_id,
				 p->key_version);
			t->seen_version = store_data_version(t->store);
		} else {
			log_warn("token", "slot %lu (%s): reseal (%s) not written: %s; it is "
					  "tried again at the next check",
				 (unsigned long)t->slot_id, t->cfg->name, p->why, p11k_err_name(e));
			p->key_id[0] = 0;
		}
		p->write = false;
	}
	if (p->key_id[0]) {
		snprintf(t->seal_key_id, sizeof(t->seal_key_id), "%s", p->key_id);
		snprintf(t->seal_key_version, sizeof(t->seal_key_version), "%s", p->key_version);
	}
}

CK_RV seal_rv(p11k_err e, CK_ULONG *deverr)
{
	if (e == P11K_OK)
		return CKR_OK;
	*deverr = p11k_err_to_deverr(e);
	/* C_InitToken, C_InitPIN and C_Login have neither of these: the KMS
	 * refusing is a device error (ulDeviceError says why). */
	CK_RV rv = p11k_err_to_ckr(e);
	return rv == CKR_ENCRYPTED_DATA_INVALID || rv == CKR_KEY_TYPE_INCONSISTENT
		       ? CKR_DEVICE_ERROR
		       : rv;
}

/* --- unseal ------------------------------------------------------------------------ */

CK_RV unseal_prepare_inlock(token_t *t, const char *role, unseal_job *u)
{
	memset(u, 0, sizeof(*u));
	u->role = role;
	memcpy(u->uuid, t->uuid, 16);
	GUARD(seal_set_load_inlock(t, &u->set));
	t->unsealing++;
	u->marked = true;
	return CKR_OK;
}

CK_RV unseal_call(token_t *t, unseal_job *u, const uint8_t *kek)
{
	u->called = true;
	uint8_t *x = NULL, *ks = NULL;
	if (kek && pin_row_open(u->uuid, u->role, kek, seal_pin_row(&u->set, u->role), &x) !=
			   CKR_OK) {
		log_error("token", "slot %lu: the %s PIN seal %s (store damaged?)",
			  (unsigned long)t->slot_id, u->role,
			  seal_pin_row(&u->set, u->role) ? "does not open with this PIN's key"
							 : "is missing");
		return CKR_DEVICE_ERROR;
	}
	provider_status st = {0};
	p11k_err e = kms_open(t, u->uuid, &u->set, &ks, &st);
	if (e != P11K_OK) {
		st.err = e;
		u->st = st; /* published with the lock: note_provider_error */
		u->deverr = p11k_err_to_deverr(e);
		u->failed = true;
		sec_free(x);
		return CKR_DEVICE_ERROR;
	}
	u->keys = sec_alloc(TK_BLOCK_LEN);
	e = u->keys ? tk_keys_open(u->uuid, &u->set, ks, x, u->keys) : P11K_ERR_NOMEM;
	sec_free(x);
	sec_free(ks);
	if (e != P11K_OK) {
		if (u->keys)
			log_error("token", "slot %lu: the token key seal does not open (store "
					   "damaged?)",
				  (unsigned long)t->slot_id);
		sec_free(u->keys);
		u->keys = NULL;
		return e == P11K_ERR_NOMEM ? CKR_HOST_MEMORY : CKR_DEVICE_ERROR;
	}
	log_info("token", "slot %lu: token key unsealed (%s)", (unsigned long)t->slot_id,
		 u->role);
	/* The KMS answered: move the seals to each key's current version
	 * while we hold KS. Describing is best effort: it never fails the
	 * unseal. */
	reseal_plan_make(t, u->uuid, &u->set, TK_KS(u->keys), false, &u->plan);
	return CKR_OK;
}

void unseal_publish_inlock(token_t *t, unseal_job *u, CK_ULONG *deverr)
{
	if (!u->marked)
		return;
	u->marked = false;
	t->unsealing--;
	if (u->failed) {
		note_provider_error(t, &u->st, "unsealing the token key");
		*deverr = u->deverr;
	}
	if (u->keys) {
		/* A successful unseal is an answer from the KMS: the key is usable. */
		t->last_check = t->last_ok = clock_now_s();
		t->revoked = false;
		if (memcmp(u->uuid, t->uuid, 16) != 0)
			u->plan.write = false; /* rows of a token since re-initialized */
		reseal_publish_inlock(t, &u->plan);
	}
}

void unseal_job_free(unseal_job *u)
{
	seal_set_free(&u->set);
	reseal_plan_free(&u->plan);
	sec_free(u->keys);
	u->keys = NULL;
}

/* --- ensure_tk: the login=optional unseal at first need ----------------- */

typedef struct ensure_job {
	unseal_job u;
	CK_ULONG *deverr;
} ensure_job;

static CK_RV ensure_prepare(token_t *t, void *arg)
{
	ensure_job *j = arg;
	return unseal_prepare_inlock(t, "any", &j->u);
}

static CK_RV ensure_call(token_t *t, void *arg)
{
	ensure_job *j = arg;
	return unseal_call(t, &j->u, NULL);
}

static CK_RV ensure_publish(token_t *t, void *arg, CK_RV rv, bool stale)
{
	ensure_job *j = arg;
	unseal_publish_inlock(t, &j->u, j->deverr);
	if (stale)
		return rv == CKR_OK ? CKR_FUNCTION_FAILED : rv;
	if (rv != CKR_OK)
		return rv;
	if (!t->tk) {
		set_tk_inlock(t, j->u.keys);
		t->tk_gen = j->u.set.tk_gen;
		j->u.keys = NULL;
	}
	return CKR_OK;
}

static const slots_job_ops ensure_ops = {ensure_prepare, ensure_call, ensure_publish, true};

CK_RV token_ensure_tk(token_t *t, CK_ULONG *deverr)
{
	if (t->tk)
		return CKR_OK;
	if (!t->initialized)
		return CKR_USER_PIN_NOT_INITIALIZED;
	if (t->cfg->login == LOGIN_REQUIRED)
		return CKR_USER_NOT_LOGGED_IN;
	ensure_job j = {.deverr = deverr};
	CK_RV rv = slots_run(t, &ensure_ops, &j);
	unseal_job_free(&j.u);
	return rv;
}

/* --- the operator's reseal -------------------------------------------------------- */

typedef struct reseal_job {
	bool force;
	uint8_t uuid[16];
	seal_set set;
	uint8_t *ks;          /* a copy of the KS in memory, or NULL */
	provider_status st;
	p11k_err e;
	reseal_plan plan;
	bool written, noted;
} reseal_job;

static CK_RV reseal_prepare(token_t *t, void *arg)
{
	reseal_job *j = arg;
	GUARD(token_sync_inlock(t));
	if (!t->initialized)
		return CKR_TOKEN_NOT_RECOGNIZED;
	memcpy(j->uuid, t->uuid, 16);
	GUARD(seal_set_load_inlock(t, &j->set));
	if (t->tk && !(j->ks = sec_dup(TK_KS(t->tk), KS_LEN)))
		return CKR_HOST_MEMORY;
	return CKR_OK;
}

static CK_RV reseal_call(token_t *t, void *arg)
{
	reseal_job *j = arg;
	if (!j->ks) {
		j->e = kms_open(t, j->uuid, &j->set, &j->ks, &j->st);
		if (j->e != P11K_OK)
			return CKR_DEVICE_ERROR;
	}
	reseal_plan_make(t, j->uuid, &j->set, j->ks, j->force, &j->plan);
	return CKR_OK;
}

static CK_RV reseal_publish(token_t *t, void *arg, CK_RV rv, bool stale)
{
	reseal_job *j = arg;
	if (j->e != P11K_OK) {
		j->st.err = j->e;
		note_provider_error(t, &j->st, "opening the seal to reseal it");
		j->e = P11K_OK;
	}
	if (stale)
		return rv == CKR_OK ? CKR_FUNCTION_FAILED : rv;
	if (rv != CKR_OK)
		return rv;
	/* Some key that needs a new seal could not make one: the operator
	 * hears it (what was written stays written). */
	CK_RV done = j->plan.incomplete ? CKR_DEVICE_ERROR : CKR_OK;
	if (j->plan.incomplete && j->plan.fail.err != P11K_OK && !j->noted) {
		note_provider_error(t, &j->plan.fail, "resealing");
		j->noted = true;
	}
	if (!j->plan.write) {
		reseal_publish_inlock(t, &j->plan);
		return done;
	}
	p11k_err e = reseal_write(t, &j->plan);
	if (e != P11K_OK)
		return publish_rv(t, e);
	j->written = true;
	j->plan.write = false;
	t->seen_version = store_data_version(t->store);
	log_warn("token", "slot %lu (%s): token resealed (%s): primary seal now %s version %s",
		 (unsigned long)t->slot_id, t->cfg->name, j->plan.why, j->plan.key_id,
		 j->plan.key_version);
	reseal_publish_inlock(t, &j->plan);
	return done;
}

static const slots_job_ops reseal_ops = {reseal_prepare, reseal_call, reseal_publish, true};

CK_RV token_reseal(token_t *t, bool force, bool *changed, CK_ULONG *deverr)
{
	reseal_job j = {.force = force};
	CK_RV rv = slots_run(t, &reseal_ops, &j);
	if (j.st.err != P11K_OK)
		*deverr = p11k_err_to_deverr(j.st.err);
	else if (j.plan.incomplete && j.plan.fail.err != P11K_OK)
		*deverr = p11k_err_to_deverr(j.plan.fail.err);
	*changed = j.written;
	seal_set_free(&j.set);
	reseal_plan_free(&j.plan);
	sec_free(j.ks);
	return rv;
}

/* --- backups: does a copy of a store open now? (docs/BACKUP.md) ------------- */

__attribute__((format(printf, 2, 3))) static void report_why(verify_report *r, const char *fmt,
								 ...)
{
	if (r->why[0])
		return; /* the first failure is the one to tell */
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(r->why, sizeof(r->why), fmt, ap);
	va_end(ap);
}

/* The seal rows and token key meta of a backup: seal_set_load_inlock's
 * reads, from a store that is not the token's. */
static bool backup_set_load(store_t *b, verify_report *r, seal_set *s)
{
	uint8_t *v = NULL;
	size_t n = 0;
	bool found = false, ok = true;
	memset(s, 0, sizeof(*s));
	if (store_meta_get(b, "uuid", &v, &n, &found) != P11K_OK || !found || n != 16) {
		report_why(r, "it holds no initialized token");
		ok = false;
	} else {
		memcpy(r->uuid, v, 16);
	}
	free(v);
	if (ok && (store_meta_get(b, "seal_format", &v, &n, &found) != P11K_OK || !found ||
		   n != 1 || v[0] != SEAL_FORMAT[0])) {
		report_why(r, "its seal format is not %s (made by another version of p11kms)",
			   SEAL_FORMAT);
		ok = false;
	}
	if (ok)
		free(v);
	if (ok && store_meta_get(b, "login_mode", &v, &n, &found) == P11K_OK) {
		r->login_required = !(found && n == 8 && memcmp(v, "optional", 8) == 0);
		free(v);
	}
	if (ok && store_meta_get(b, "seal_policy", &v, &n, &found) == P11K_OK) {
		s->policy = found && n == 3 && memcmp(v, "all", 3) == 0 ? SEAL_ALL : SEAL_ANY;
		r->policy = s->policy;
		free(v);
	}
	if (ok && (store_meta_get(b, "tk_seal", &s->tk_seal, &s->tk_seal_len, &found) !=
			   P11K_OK ||
		   !found)) {
		report_why(r, "it holds no token key seal (tk_seal)");
		ok = false;
	}
	if (ok && store_meta_get(b, "tk_seal_next", &s->tk_next, &s->tk_next_len, &found) !=
			  P11K_OK)
		ok = false;
	if (ok && store_seals_load(b, &s->rows, &s->nrows) != P11K_OK) {
		report_why(r, "its seal rows cannot be read");
		ok = false;
	}
	s->v2 = ok;
	return ok;
}

/* One "kms" row alone: its provider's describe, then its KMS decrypt
 * (kms_open on a set of that row only). *secret: KS or a share. */
static void verify_one_seal(token_t *t, const uint8_t uuid[16], const seal_rec *row,
			    verify_seal *v, uint8_t **secret)
{
	seal_target tg;
	snprintf(v->provider, sizeof(v->provider), "%s", row->provider);
	snprintf(v->key_id, sizeof(v->key_id), "%s", row->key_id);
	snprintf(v->key_version, sizeof(v->key_version), "%s", row->key_version);
	v->configured = row_target(row, &tg);
	if (!v->configured) {
		v->describe_err = v->open_err = P11K_ERR_KEY_NOT_FOUND;
		provider_status_set(&v->open_st, P11K_ERR_KEY_NOT_FOUND,
				    "no provider \"%.40s\" is configured", row->provider);
		return;
	}
	v->describe_err = audit_describe(tg.cfg, tg.prov, row->key_id, &v->info, &v->describe_st);
	seal_set one = {.rows = (seal_rec *)row, .nrows = 1, .policy = SEAL_ANY, .v2 = true};
	v->open_err = kms_open(t, uuid, &one, secret, &v->open_st);
}

/* With the PIN: X from the user's (else the SO's) PIN row. */
static bool verify_pin(store_t *b, const seal_set *s, const uint8_t uuid[16], const char *pin,
		       size_t pinlen, uint8_t **x)
{
	static const char *const roles[] = {"user", "so"};
	for (size_t i = 0; i < ARRAY_SIZE(roles); i++) {
		char name[16];
		uint8_t *rec = NULL, *kek = NULL;
		size_t reclen = 0;
		bool found = false;
		snprintf(name, sizeof(name), "%s_pin", roles[i]);
		if (store_meta_get(b, name, &rec, &reclen, &found) != P11K_OK || !found) {
			free(rec);
			continue;
		}
		CK_RV rv = pin_check((const CK_UTF8CHAR *)pin, pinlen, rec, reclen, &kek);
		free(rec);
		if (rv == CKR_OK)
			rv = pin_row_open(uuid, roles[i], kek, seal_pin_row(s, roles[i]), x);
		sec_free(kek);
		if (rv == CKR_OK)
			return true;
	}
	return false;
}

typedef struct rowids {
	int64_t *v;
	size_t n, cap;
	bool nomem;
} rowids;

static bool rowid_collect(void *arg, const obj_rec *r)
{
	rowids *ids = arg;
	if (ids->n == ids->cap) {
		size_t cap = ids->cap ? ids->cap * 2 : 64;
		int64_t *nv = realloc(ids->v, cap * sizeof(*nv));
		if (!nv) {
			ids->nomem = true;
			return false;
		}
		ids->v = nv;
		ids->cap = cap;
	}
	ids->v[ids->n++] = r->rowid;
	return true;
}

/* One object record: it authenticates under TK (or TK' mid-rekey), and
 * both parts parse, consistent with the indexed columns. */
static bool verify_record(store_t *b, const uint8_t *keys, int64_t rowid)
{
	obj_rec rec;
	bool found = false, ok = false;
	if (store_obj_get(b, rowid, &rec, &found) != P11K_OK || !found)
		return false;
	dbuf_t aad;
	dbuf_init(&aad, 128u << 20, false);
	uint8_t *pt = NULL;
	size_t ptlen = 0;
	object_t *o = calloc(1, sizeof(*o));
	if (o && record_aad(rec.uid, rec.pub, rec.publen, &aad) &&
	    (gcm_open(keys, aad.p, aad.len, rec.sec, rec.seclen, &pt, &ptlen) == P11K_OK ||
	     (TK_HAS_NEXT(keys) && gcm_open(TK_NEXT(keys), aad.p, aad.len, rec.sec, rec.seclen,
					    &pt, &ptlen) == P11K_OK)))
		ok = obj_deserialize(o, rec.pub, rec.publen, false) &&
		     obj_ulong(o, CKA_CLASS, (CK_ULONG)-1) == rec.cls &&
		     obj_is_private(o) == (rec.priv != 0) && obj_deserialize(o, pt, ptlen, true);
	if (o)
		obj_free(o);
	sec_free(pt);
	dbuf_free(&aad);
	obj_rec_free(&rec);
	return ok;
}

static void verify_records(store_t *b, const uint8_t *keys, verify_report *r)
{
	rowids ids = {0};
	obj_filter all = {0};
	if (store_obj_find(b, &all, rowid_collect, &ids) != P11K_OK || ids.nomem) {
		report_why(r, "its object records cannot be listed");
		free(ids.v);
		return;
	}
	r->nrecords = ids.n;
	for (size_t i = 0; i < ids.n; i++) {
		if (verify_record(b, keys, ids.v[i])) {
			r->records_ok++;
			continue;
		}
		if (!r->bad_record)
			r->bad_record = ids.v[i];
		report_why(r, "object record %lld does not open under the token key (tampered "
			      "or damaged)",
			   (long long)ids.v[i]);
	}
	free(ids.v);
}

/* tk_seal's outer layer under KS: proves KS right without the PIN. */
static bool tk_outer_opens(const uint8_t uuid[16], const uint8_t *blob, size_t len,
			   const uint8_t *ks)
{
	uint8_t aad[96];
	size_t aadlen, innerlen = 0;
	uint8_t *inner = NULL;
	aad_of("p11kms-tk:v2:", uuid, aad, &aadlen);
	p11k_err e = gcm_open(ks, aad, aadlen, blob, len, &inner, &innerlen);
	sec_free(inner);
	return e == P11K_OK;
}

p11k_err seal_verify_backup(token_t *t, store_t *b, const char *pin, size_t pinlen,
			    verify_report *r)
{
	memset(r, 0, sizeof(*r));
	seal_set s;
	if (!backup_set_load(b, r, &s)) {
		seal_set_free(&s);
		return P11K_ERR_STORE;
	}
	size_t nk = 0;
	for (size_t i = 0; i < s.nrows; i++)
		nk += strcmp(s.rows[i].role, ROLE_KMS) == 0;
	uint8_t *acc = sec_alloc(KS_LEN), *keys = sec_alloc(TK_BLOCK_LEN), *x = NULL;
	if (!acc || !keys) {
		sec_free(acc);
		sec_free(keys);
		seal_set_free(&s);
		return P11K_ERR_NOMEM;
	}
	size_t opened = 0;
	for (size_t i = 0; i < s.nrows && r->nseals < VERIFY_MAX_SEALS; i++) {
		if (strcmp(s.rows[i].role, ROLE_KMS) != 0)
			continue;
		verify_seal *v = &r->seals[r->nseals++];
		uint8_t *secret = NULL;
		verify_one_seal(t, r->uuid, &s.rows[i], v, &secret);
		if (v->open_err != P11K_OK) {
			report_why(r, "the seal under %s key %s version %s does not open: %s%s%s",
				   v->provider, v->key_id, v->key_version,
				   p11k_err_name(v->open_err), v->open_st.message[0] ? ": " : "",
				   v->open_st.message);
			continue;
		}
		/* any: each row holds KS; all: KS is the XOR of every share. */
		for (size_t k = 0; k < KS_LEN; k++)
			acc[k] = s.policy == SEAL_ANY ? secret[k] : (uint8_t)(acc[k] ^ secret[k]);
		sec_free(secret);
		opened++;
	}
	if (nk == 0)
		report_why(r, "it holds no KMS seal");
	r->ks_open = nk > 0 && (s.policy == SEAL_ANY ? opened > 0 : opened == nk);
	if (r->ks_open) {
		/* Under "any" a row that fails while another opens is a finding
		 * of that row (r->seals), not why the backup fails. */
		r->why[0] = 0;
		r->tk_outer = tk_outer_opens(r->uuid, s.tk_seal, s.tk_seal_len, acc) &&
			      (!s.tk_next || tk_outer_opens(r->uuid, s.tk_next, s.tk_next_len, acc));
		if (!r->tk_outer)
			report_why(r, "the token key seal does not authenticate under the key "
				      "the KMS gave (tampered, or the seals of another token)");
	}
	/* The token key itself: needs X (a PIN) in login=required mode. */
	if (r->tk_outer && r->login_required && pin) {
		r->pin_tried = true;
		r->pin_ok = verify_pin(b, &s, r->uuid, pin, pinlen, &x);
		if (!r->pin_ok)
			report_why(r, "the PIN given opens neither the user's nor the SO's seal");
	}
	if (r->tk_outer && (!r->login_required || r->pin_ok)) {
		r->tk_open = tk_keys_open(r->uuid, &s, acc, x, keys) == P11K_OK;
		if (r->tk_open)
			verify_records(b, keys, r);
		else
			report_why(r, "the token key seal does not open");
	}
	sec_free(x);
	sec_free(acc);
	sec_free(keys);
	seal_set_free(&s);
	return P11K_OK;
}
