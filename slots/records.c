/* SPDX-License-Identifier: Apache-2.0 */
/* The object handle registry and token object records (records.h). */
#include "records.h"

#include "seal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/crypto.h"
#include "common/log.h"
#include "common/secmem.h"
#include "token.h"
#include "token_priv.h"

/* --- object handles ------------------------------------------------------ */

CK_RV object_register_inlock(object_t *o)
{
	o->handle = ++slots.next_object;
	if (!hmap_put(&slots.objects, o->handle, o))
		return CKR_HOST_MEMORY;
	token_t *t = o->tok;
	bool ok = o->session ? hmap_put(&t->session_objs, o->handle, o)
			     : hmap_put(&t->by_rowid, (uint64_t)o->rowid, o);
	if (!ok) {
		hmap_del(&slots.objects, o->handle);
		return CKR_HOST_MEMORY;
	}
	return CKR_OK;
}

void object_unregister_inlock(object_t *o)
{
	hmap_del(&slots.objects, o->handle);
	if (o->session)
		hmap_del(&o->tok->session_objs, o->handle);
	else
		hmap_del(&o->tok->by_rowid, (uint64_t)o->rowid);
}

void token_forget_objects_inlock(token_t *t)
{
	size_t it = 0;
	uint64_t k;
	void *v;
	while (hmap_next(&t->by_rowid, &it, &k, &v)) {
		object_t *o = v;
		hmap_del(&slots.objects, o->handle);
		obj_free(o);
	}
	hmap_free(&t->by_rowid);
	hmap_init(&t->by_rowid);
}

/* --- token object records ----------------------------------------------- */

bool record_aad(const uint8_t uid[16], const uint8_t *pub, size_t publen, dbuf_t *aad)
{
	static const char pfx[] = "p11kms-object:v1:";
	return dbuf_add(aad, pfx, sizeof(pfx) - 1) && dbuf_add(aad, uid, 16) &&
	       dbuf_add(aad, pub, publen);
}

static bool rec_aad(const object_t *o, const dbuf_t *pub, dbuf_t *aad)
{
	return record_aad(o->uid, pub->p, pub->len, aad);
}

static CK_RV seal_record(token_t *t, object_t *o, obj_rec *r, dbuf_t *pub)
{
	dbuf_t sec, aad;
	dbuf_init(&sec, 128u << 20, true);
	dbuf_init(&aad, 128u << 20, false);
	CK_RV rv = CKR_OK;
	if (!obj_serialize(o, false, pub) || !obj_serialize(o, true, &sec) ||
	    !rec_aad(o, pub, &aad))
		rv = CKR_HOST_MEMORY;
	if (rv == CKR_OK && gcm_seal(TK_WRITE(t->tk), aad.p, aad.len, sec.p, sec.len, &r->sec,
				     &r->seclen) != P11K_OK)
		rv = CKR_GENERAL_ERROR;
	dbuf_free(&sec);
	dbuf_free(&aad);
	if (rv != CKR_OK)
		return rv;
	memcpy(r->uid, o->uid, 16);
	r->cls = obj_ulong(o, CKA_CLASS, 0);
	r->priv = obj_is_private(o);
	const attr_t *l = obj_attr(o, CKA_LABEL), *id = obj_attr(o, CKA_ID);
	r->label = l ? l->val : NULL;
	r->labellen = l ? l->len : 0;
	r->ckaid = id ? id->val : NULL;
	r->ckaidlen = id ? id->len : 0;
	r->pub = pub->p;
	r->publen = pub->len;
	return CKR_OK;
}

p11k_err tk_gen_read(token_t *t, uint32_t *gen)
{
	uint8_t *v = NULL;
	size_t n = 0;
	bool found = false;
	p11k_err e = store_meta_get(t->store, "tk_gen", &v, &n, &found);
	*gen = e == P11K_OK && found ? get_u32(v, n) : 0;
	free(v);
	return e;
}

/* Seal o and insert it as a new row (insert) or over its row, with the
 * store held without waiting (slots.h, rule 3): a busy store is
 * SLOTS_RETRY (publish_rv), and nothing was written. */
static CK_RV write_record(token_t *t, object_t *o, bool insert)
{
	if (!t->tk)
		return CKR_USER_NOT_LOGGED_IN;
	obj_rec r = {0};
	dbuf_t pub;
	dbuf_init(&pub, 64u << 20, false);
	CK_RV rv = CKR_OK;
	p11k_err e = store_nowait_enter(t->store);
	/* In one transaction with a look at "tk_gen": a record is written
	 * under the newest token key, even when another process's rekey
	 * moved it on just now (slots/rekey.h). */
	bool held = e == P11K_OK;
	if (held)
		e = store_begin(t->store);
	if (e == P11K_OK) {
		uint32_t gen = 0;
		e = tk_gen_read(t, &gen);
		if (e == P11K_OK && gen != t->tk_gen)
			tk_keys_refresh_inlock(t);
		if (e == P11K_OK && gen != t->tk_gen) {
			log_error("token", "slot %lu: the token key moved on and cannot be "
					   "reloaded; not writing",
				  (unsigned long)t->slot_id);
			rv = CKR_DEVICE_ERROR;
		}
		if (e == P11K_OK && rv == CKR_OK)
			rv = seal_record(t, o, &r, &pub);
		r.rowid = insert ? 0 : o->rowid;
		if (e == P11K_OK && rv == CKR_OK)
			e = insert ? store_obj_insert(t->store, &r) : store_obj_update(t->store, &r);
		if (e == P11K_OK && rv == CKR_OK)
			e = store_commit(t->store);
		else
			store_rollback(t->store);
	}
	if (held)
		store_nowait_leave(t->store);
	if (rv == CKR_OK)
		rv = publish_rv(t, e);
	if (rv == CKR_OK && insert) {
		o->rowid = r.rowid;
		o->loaded_version = t->seen_version;
	}
	free(r.sec);
	dbuf_free(&pub);
	return rv;
}

CK_RV token_obj_persist_inlock(token_t *t, object_t *o)
{
	return write_record(t, o, true);
}

CK_RV token_obj_update_inlock(token_t *t, object_t *o)
{
	return write_record(t, o, false);
}

CK_RV token_obj_delete_inlock(token_t *t, object_t *o)
{
	bool found = false;
	p11k_err e = store_nowait_enter(t->store);
	if (e == P11K_OK) {
		e = store_obj_delete(t->store, o->rowid, &found);
		store_nowait_leave(t->store);
	}
	if (e != P11K_OK)
		return publish_rv(t, e);
	return found ? CKR_OK : CKR_OBJECT_HANDLE_INVALID;
}

static CK_RV load_secret(token_t *t, object_t *o, const obj_rec *r)
{
	if (!t->tk)
		return CKR_USER_NOT_LOGGED_IN;
	dbuf_t pub, aad;
	dbuf_init(&pub, 64u << 20, false);
	dbuf_init(&aad, 128u << 20, false);
	uint8_t *pt = NULL;
	size_t ptlen = 0;
	CK_RV rv = CKR_OK;
	if (!dbuf_add(&pub, r->pub, r->publen) || !rec_aad(o, &pub, &aad))
		rv = CKR_HOST_MEMORY;
	/* Under TK, or under TK' while a rekey is under way. */
	if (rv == CKR_OK &&
	    gcm_open(t->tk, aad.p, aad.len, r->sec, r->seclen, &pt, &ptlen) != P11K_OK &&
	    (!TK_HAS_NEXT(t->tk) || gcm_open(TK_NEXT(t->tk), aad.p, aad.len, r->sec, r->seclen,
					     &pt, &ptlen) != P11K_OK)) {
		log_error("token", "slot %lu: object record %lld does not authenticate "
				   "under the token key (tampered, swapped or damaged)",
			  (unsigned long)t->slot_id, (long long)r->rowid);
		t->last.err = P11K_ERR_STORE;
		rv = CKR_DEVICE_ERROR;
	}
	if (rv == CKR_OK) {
		obj_drop_secrets(o);
		if (!obj_deserialize(o, pt, ptlen, true)) {
			log_error("token", "slot %lu: object record %lld is malformed",
				  (unsigned long)t->slot_id, (long long)r->rowid);
			rv = CKR_DEVICE_ERROR;
		} else {
			o->sec_loaded = true;
		}
	}
	sec_free(pt);
	dbuf_free(&pub);
	dbuf_free(&aad);
	return rv;
}

/* Does r's sealed part open under the token key (or its successor)? */
static bool record_authentic(token_t *t, const obj_rec *r)
{
	dbuf_t aad;
	dbuf_init(&aad, 128u << 20, false);
	uint8_t *pt = NULL;
	size_t ptlen = 0;
	bool ok = record_aad(r->uid, r->pub, r->publen, &aad) &&
		  (gcm_open(t->tk, aad.p, aad.len, r->sec, r->seclen, &pt, &ptlen) == P11K_OK ||
		   (TK_HAS_NEXT(t->tk) && gcm_open(TK_NEXT(t->tk), aad.p, aad.len, r->sec,
						   r->seclen, &pt, &ptlen) == P11K_OK));
	sec_free(pt);
	dbuf_free(&aad);
	return ok;
}

/* Build an object (public part) from a record. */
static object_t *obj_from_rec(token_t *t, const obj_rec *r)
{
	object_t *o = calloc(1, sizeof(*o));
	if (!o)
		return NULL;
	o->tok = t;
	o->rowid = r->rowid;
	memcpy(o->uid, r->uid, 16);
	if (!obj_deserialize(o, r->pub, r->publen, false) ||
	    obj_ulong(o, CKA_CLASS, (CK_ULONG)-1) != r->cls ||
	    obj_is_private(o) != (r->priv != 0)) {
		log_error("token", "slot %lu: object record %lld has a malformed or "
				   "inconsistent public part; skipped",
			  (unsigned long)t->slot_id, (long long)r->rowid);
		obj_free(o);
		return NULL;
	}
	o->loaded_version = t->seen_version;
	/* A public data object has nothing sealed: it is complete already. */
	o->sec_loaded = !obj_attr_sealed(o, CKA_VALUE);
	/* With the token key at hand every record is checked whole: its
	 * sealed part's tag covers the uid and the public part (with the
	 * class and CKA_PRIVATE the indexed columns copy), so a forged value
	 * or privacy flag is refused, not served. */
	if (t->tk && r->sec && !record_authentic(t, r)) {
		log_error("token", "slot %lu: object record %lld does not authenticate under "
				   "the token key (tampered, swapped or damaged); skipped",
			  (unsigned long)t->slot_id, (long long)r->rowid);
		t->last.err = P11K_ERR_STORE;
		obj_free(o);
		return NULL;
	}
	return o;
}

/* Bring o up to date from r, its row as read now. */
static CK_RV refresh_from_rec(token_t *t, object_t *o, const obj_rec *r, bool need_secret)
{
	if (o->stale) {
		object_t *fresh = obj_from_rec(t, r);
		if (!fresh || memcmp(fresh->uid, o->uid, 16) != 0) {
			obj_free(fresh);
			return CKR_OBJECT_HANDLE_INVALID;
		}
		/* Swap in the new attributes, keep handle and identity. */
		attr_t *oa = o->attrs;
		size_t on = o->nattrs;
		o->attrs = fresh->attrs;
		o->nattrs = fresh->nattrs;
		fresh->attrs = oa;
		fresh->nattrs = on;
		obj_free(fresh);
		o->sec_loaded = !obj_attr_sealed(o, CKA_VALUE);
		o->stale = false;
	}
	return need_secret && !o->sec_loaded ? load_secret(t, o, r) : CKR_OK;
}

CK_RV token_obj_refresh_inlock(token_t *t, object_t *o, bool need_secret)
{
	if (!o->stale && (o->sec_loaded || !need_secret))
		return CKR_OK;
	obj_rec r;
	bool found;
	p11k_err e = store_obj_get(t->store, o->rowid, &r, &found);
	if (e != P11K_OK)
		return store_rv(t, e);
	if (!found)
		return CKR_OBJECT_HANDLE_INVALID;
	CK_RV rv = refresh_from_rec(t, o, &r, need_secret);
	obj_rec_free(&r);
	return rv;
}

typedef struct find_ctx {
	token_t *t;
	const CK_ATTRIBUTE *tmpl;
	CK_ULONG n;
	bool need_secret;
	CK_OBJECT_HANDLE *h;
	size_t cnt, cap;
	CK_RV rv;
} find_ctx;

static bool find_cb(void *arg, const obj_rec *r)
{
	find_ctx *c = arg;
	object_t *o = hmap_get(&c->t->by_rowid, (uint64_t)r->rowid);
	bool fresh = false;
	/* The row at hand brings a cached object up to date: no second read. */
	if (o && o->stale && refresh_from_rec(c->t, o, r, false) != CKR_OK)
		return true;
	if (!o) {
		o = obj_from_rec(c->t, r);
		if (!o)
			return true; /* logged, skipped: one bad record hides nothing else */
		fresh = true;
	}
	if (c->need_secret && !o->sec_loaded)
		(void)load_secret(c->t, o, r);
	if (!obj_match(o, c->tmpl, c->n)) {
		if (fresh)
			obj_free(o);
		return true;
	}
	if (fresh && (c->rv = object_register_inlock(o)) != CKR_OK) {
		obj_free(o);
		return false;
	}
	if (c->cnt == c->cap) {
		size_t ncap = c->cap ? c->cap * 2 : 16;
		CK_OBJECT_HANDLE *nh = realloc(c->h, ncap * sizeof(*nh));
		if (!nh) {
			c->rv = CKR_HOST_MEMORY;
			return false;
		}
		c->h = nh;
		c->cap = ncap;
	}
	c->h[c->cnt++] = o->handle;
	return true;
}

static bool tmpl_bool(const CK_ATTRIBUTE *a, bool *v)
{
	if (a->ulValueLen != sizeof(CK_BBOOL) || !a->pValue)
		return false;
	*v = *(const CK_BBOOL *)a->pValue != CK_FALSE;
	return true;
}

bool token_find_filter(const CK_ATTRIBUTE *tmpl, CK_ULONG n, bool include_private,
		       obj_filter *f, uint64_t *cls, bool *need_secret)
{
	*f = (obj_filter){.public_only = !include_private};
	*need_secret = false;
	bool b;
	for (CK_ULONG i = 0; i < n; i++) {
		const CK_ATTRIBUTE *a = &tmpl[i];
		if (a->type == CKA_LABEL) {
			f->label = a->ulValueLen ? a->pValue : (const uint8_t *)"";
			f->labellen = a->ulValueLen;
		} else if (a->type == CKA_ID) {
			f->ckaid = a->ulValueLen ? a->pValue : (const uint8_t *)"";
			f->ckaidlen = a->ulValueLen;
		} else if (a->type == CKA_CLASS && a->ulValueLen == sizeof(CK_ULONG) && a->pValue) {
			CK_ULONG v;
			memcpy(&v, a->pValue, sizeof(v));
			*cls = v;
			f->cls = cls;
		} else if (a->type == CKA_KEY_TYPE) {
			f->keys_only = true; /* only keys have a key type */
		} else if (a->type == CKA_TOKEN && tmpl_bool(a, &b) && !b) {
			return false; /* session objects only */
		} else if (a->type == CKA_PRIVATE && tmpl_bool(a, &b)) {
			if (b && !include_private)
				return false;
			f->private_only = b;
			f->public_only = !b;
		} else if (obj_is_secret_attr(a->type)) {
			*need_secret = true;
		}
	}
	return true;
}

CK_RV token_obj_find_inlock(token_t *t, const CK_ATTRIBUTE *tmpl, CK_ULONG n,
			    bool include_private, CK_OBJECT_HANDLE **handles,
			    size_t *count)
{
	GUARD(token_sync_inlock(t));
	if (!t->store || !t->initialized)
		return CKR_OK;
	find_ctx c = {.t = t, .tmpl = tmpl, .n = n, .h = *handles, .cnt = *count,
		      .cap = *count, .rv = CKR_OK};
	obj_filter f;
	uint64_t cls;
	if (!token_find_filter(tmpl, n, include_private, &f, &cls, &c.need_secret))
		return CKR_OK;
	p11k_err e = store_obj_find(t->store, &f, find_cb, &c);
	*handles = c.h;
	*count = c.cnt;
	if (e != P11K_OK)
		return store_rv(t, e);
	return c.rv;
}

/* The primary seal's key and version, read from the store when this
 * process has not seen the seals yet. */
static void seal_primary_inlock(token_t *t)
{
	if (t->seal_key_id[0] || !t->store)
		return;
	seal_set set;
	if (seal_set_load_inlock(t, &set) != CKR_OK)
		return;
	seal_target tg;
	for (size_t i = 0; i < set.nrows && seal_target_of(t, 0, &tg); i++) {
		const seal_rec *r = &set.rows[i];
		if (strcmp(r->role, ROLE_KMS) == 0 && strcmp(r->provider, tg.cfg->name) == 0 &&
		    strcmp(r->key_id, tg.key_id) == 0) {
			snprintf(t->seal_key_id, sizeof(t->seal_key_id), "%s", r->key_id);
			snprintf(t->seal_key_version, sizeof(t->seal_key_version), "%s",
				 r->key_version);
		}
	}
	seal_set_free(&set);
}

static CK_RV string_attr(CK_ATTRIBUTE *a, const char *v)
{
	size_t len = strlen(v);
	if (!len) {
		a->ulValueLen = CK_UNAVAILABLE_INFORMATION;
		return CKR_ATTRIBUTE_TYPE_INVALID;
	}
	if (a->pValue && a->ulValueLen < len) {
		a->ulValueLen = CK_UNAVAILABLE_INFORMATION;
		return CKR_BUFFER_TOO_SMALL;
	}
	if (a->pValue)
		memcpy(a->pValue, v, len);
	a->ulValueLen = len;
	return CKR_OK;
}

CK_RV token_obj_get_attributes_inlock(token_t *t, const object_t *o, CK_ATTRIBUTE *tmpl,
				      CK_ULONG n)
{
	bool sealed_key = obj_is_token(o) && !o->kms &&
			  obj_ulong(o, CKA_CLASS, CKO_DATA) == CKO_SECRET_KEY;
	if (!sealed_key)
		return obj_get_attributes(o, tmpl, n);
	seal_primary_inlock(t);
	/* PKCS #11 5.7: every entry is processed; one of the errors is told. */
	CK_RV rv = CKR_OK;
	for (CK_ULONG i = 0; i < n; i++) {
		CK_RV one = tmpl[i].type == CKA_P11KMS_KMS_KEY_ID
				    ? string_attr(&tmpl[i], t->seal_key_id)
			    : tmpl[i].type == CKA_P11KMS_KMS_KEY_VERSION
				    ? string_attr(&tmpl[i], t->seal_key_version)
				    : obj_get_attributes(o, &tmpl[i], 1);
		if (one != CKR_OK)
			rv = one;
	}
	return rv;
}

void token_forget_private_inlock(token_t *t)
{
	size_t it = 0, n = 0;
	uint64_t k;
	void *v;
	while (hmap_next(&t->session_objs, &it, &k, &v)) {
		object_t *o = v;
		if (obj_is_private(o)) {
			object_unregister_inlock(o);
			obj_free(o);
			n++;
		}
	}
	for (it = 0; hmap_next(&t->by_rowid, &it, &k, &v);) {
		object_t *o = v;
		if (obj_is_private(o)) {
			object_unregister_inlock(o);
			obj_free(o);
			n++;
		}
	}
	log_debug("token", "slot %lu: logged out: %zu private object handle(s) invalidated",
		  (unsigned long)t->slot_id, n);
}
