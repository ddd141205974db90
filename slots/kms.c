/* SPDX-License-Identifier: Apache-2.0 */
/* KMS key objects and the KMS port (kms.h). */
#include "kms.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "common/secmem.h"
#include "audit.h"
#include "token.h"
#include "token_priv.h"

/* --- KMS key objects ------------------------------------------------------ */

typedef struct kms_attr {
	CK_ATTRIBUTE_TYPE t;
	const void *v;
	size_t n;
} kms_attr;

static bool kms_attrs_set(object_t *o, const kms_attr *a, size_t n)
{
	bool ok = true;
	for (size_t j = 0; ok && j < n; j++)
		ok = obj_set(o, a[j].t, a[j].v, a[j].n);
	return ok;
}

/* One face of configured KMS key i (docs/REMOTE.md, "Objects"). */
static CK_RV kms_object_add_inlock(token_t *t, size_t i, enum kms_role role)
{
	const kms_key_cfg *k = &t->cfg->keys[i];
	object_t *o = calloc(1, sizeof(*o));
	if (!o)
		return CKR_HOST_MEMORY;
	static const CK_OBJECT_CLASS classes[] = {
		[KMS_ROLE_ENVELOPE] = CKO_SECRET_KEY, [KMS_ROLE_AES] = CKO_SECRET_KEY,
		[KMS_ROLE_RSA_PUBLIC] = CKO_PUBLIC_KEY, [KMS_ROLE_RSA_PRIVATE] = CKO_PRIVATE_KEY};
	static const CK_KEY_TYPE types[] = {
		[KMS_ROLE_ENVELOPE] = CKK_P11KMS_KMS, [KMS_ROLE_AES] = CKK_AES,
		[KMS_ROLE_RSA_PUBLIC] = CKK_RSA, [KMS_ROLE_RSA_PRIVATE] = CKK_RSA};
	CK_OBJECT_CLASS cls = classes[role];
	CK_KEY_TYPE kt = types[role];
	CK_BBOOL T = CK_TRUE, F = CK_FALSE;
	CK_BBOOL secret = role == KMS_ROLE_ENVELOPE || role == KMS_ROLE_AES;
	CK_BBOOL enc = secret || role == KMS_ROLE_RSA_PUBLIC;
	CK_BBOOL dec = secret || role == KMS_ROLE_RSA_PRIVATE;
	/* A typed face has one role, its "usage" (the envelope keeps both:
	 * the KMS separates them by context, module/remote.c). */
	bool typed = role != KMS_ROLE_ENVELOPE;
	CK_BBOOL wrap = enc && (!typed || k->usage == KMS_USAGE_WRAP);
	CK_BBOOL unwrap = dec && (!typed || k->usage == KMS_USAGE_WRAP);
	enc = enc && (!typed || k->usage == KMS_USAGE_DATA);
	dec = dec && (!typed || k->usage == KMS_USAGE_DATA);
	/* The envelope is a trusted wrapping key (docs/SECURITY.md): the
	 * administrator configured it, and what it wraps of a sensitive key
	 * the KMS opens only for C_UnwrapKey (module/remote.c, the protected
	 * domain), never for C_Decrypt. The standard faces have no such
	 * domain (RFC 3394 and OAEP carry no context), so they are not. */
	CK_BBOOL trusted = role == KMS_ROLE_ENVELOPE;
	CK_ULONG unavailable = CK_UNAVAILABLE_INFORMATION;
	CK_ULONG value_len = k->bits / 8;
	const kms_attr common[] = {
		{CKA_CLASS, &cls, sizeof(cls)}, {CKA_KEY_TYPE, &kt, sizeof(kt)},
		{CKA_TOKEN, &T, 1}, {CKA_PRIVATE, &F, 1}, {CKA_MODIFIABLE, &F, 1},
		{CKA_COPYABLE, &F, 1}, {CKA_DESTROYABLE, &F, 1},
		{CKA_LABEL, k->label, strlen(k->label)},
		{CKA_ID, k->id, strlen(k->id)},
		{CKA_P11KMS_KMS_KEY_ID, k->id, strlen(k->id)},
		{CKA_LOCAL, &F, 1}, {CKA_KEY_GEN_MECHANISM, &unavailable, sizeof(unavailable)},
		{CKA_DERIVE, &F, 1}, {CKA_START_DATE, "", 0}, {CKA_END_DATE, "", 0},
		{CKA_ALLOWED_MECHANISMS, "", 0},
	};
	/* Secret and private faces hold (remote) material: sensitive, and
	 * never extractable. */
	const kms_attr material[] = {
		{CKA_SENSITIVE, &T, 1}, {CKA_EXTRACTABLE, &F, 1},
		{CKA_ALWAYS_SENSITIVE, &T, 1}, {CKA_NEVER_EXTRACTABLE, &T, 1},
		{CKA_DECRYPT, &dec, 1}, {CKA_UNWRAP, &unwrap, 1}, {CKA_SIGN, &F, 1},
		{CKA_WRAP_WITH_TRUSTED, &F, 1},
	};
	const kms_attr encrypting[] = {
		{CKA_ENCRYPT, &enc, 1}, {CKA_WRAP, &wrap, 1}, {CKA_VERIFY, &F, 1},
		{CKA_TRUSTED, &trusted, 1},
	};
	const kms_attr aes[] = {{CKA_VALUE_LEN, &value_len, sizeof(value_len)}};
	const kms_attr rsa_public[] = {{CKA_SUBJECT, "", 0}, {CKA_VERIFY_RECOVER, &F, 1}};
	const kms_attr rsa_private[] = {{CKA_SUBJECT, "", 0}, {CKA_SIGN_RECOVER, &F, 1},
					{CKA_ALWAYS_AUTHENTICATE, &F, 1}};
	bool ok = kms_attrs_set(o, common, ARRAY_SIZE(common));
	if (role != KMS_ROLE_RSA_PUBLIC)
		ok = ok && kms_attrs_set(o, material, ARRAY_SIZE(material));
	if (role != KMS_ROLE_RSA_PRIVATE)
		ok = ok && kms_attrs_set(o, encrypting, ARRAY_SIZE(encrypting));
	if (role == KMS_ROLE_AES)
		ok = ok && kms_attrs_set(o, aes, ARRAY_SIZE(aes));
	if (role == KMS_ROLE_RSA_PUBLIC)
		ok = ok && kms_attrs_set(o, rsa_public, ARRAY_SIZE(rsa_public));
	if (role == KMS_ROLE_RSA_PRIVATE)
		ok = ok && kms_attrs_set(o, rsa_private, ARRAY_SIZE(rsa_private));
	char uid[48];
	/* A stable identity: the same key gets the same CKA_UNIQUE_ID. */
	uint32_t h = 2166136261u;
	for (const char *p = k->id; *p; p++)
		h = (h ^ (unsigned char)*p) * 16777619u;
	static const char *const suffix[] = {"", "", "-pub", "-priv"};
	snprintf(uid, sizeof(uid), "kms-%08x-%lu%s", h, (unsigned long)t->slot_id, suffix[role]);
	ok = ok && obj_set(o, CKA_UNIQUE_ID, uid, strlen(uid));
	o->tok = t;
	o->kms = true;
	o->kms_index = i;
	o->kms_role = (uint8_t)role;
	o->sec_loaded = true;
	o->handle = ++slots.next_object;
	if (!ok || !hmap_put(&slots.objects, o->handle, o)) {
		obj_free(o);
		return CKR_HOST_MEMORY;
	}
	t->kms_objs[t->nkms++] = o;
	return CKR_OK;
}

CK_RV token_kms_objects_create_inlock(token_t *t)
{
	if (!t->cfg->nkeys)
		return CKR_OK;
	t->kms_objs = calloc(t->cfg->nkeys * 3, sizeof(*t->kms_objs));
	if (!t->kms_objs)
		return CKR_HOST_MEMORY;
	for (size_t i = 0; i < t->cfg->nkeys; i++) {
		switch (t->cfg->keys[i].type) {
		case KMS_KEY_ENVELOPE:
			GUARD(kms_object_add_inlock(t, i, KMS_ROLE_ENVELOPE));
			break;
		case KMS_KEY_AES:
			GUARD(kms_object_add_inlock(t, i, KMS_ROLE_AES));
			break;
		case KMS_KEY_RSA:
			GUARD(kms_object_add_inlock(t, i, KMS_ROLE_ENVELOPE));
			GUARD(kms_object_add_inlock(t, i, KMS_ROLE_RSA_PUBLIC));
			GUARD(kms_object_add_inlock(t, i, KMS_ROLE_RSA_PRIVATE));
			break;
		}
	}
	return CKR_OK;
}

void token_kms_objects_free_inlock(token_t *t)
{
	for (size_t i = 0; i < t->nkms; i++) {
		hmap_del(&slots.objects, t->kms_objs[i]->handle);
		obj_free(t->kms_objs[i]);
	}
	free(t->kms_objs);
	t->kms_objs = NULL;
	t->nkms = 0;
}

CK_RV token_kms_call(void *tok, bool encrypt, const char *key_id,
		     const uint8_t *ctx, size_t ctxlen, const uint8_t *in,
		     size_t inlen, uint8_t **out, size_t *outlen)
{
	token_t *t = tok;
	provider_status st = {0};
	uint8_t *res = NULL;
	size_t reslen = 0;
	p11k_err e;
	if (encrypt) {
		/* No version asked: the blob names it, and AWS would spend a
		 * Decrypt to learn it (provider.h). */
		e = audit_encrypt(t->cfg, t->prov, key_id, in, inlen, ctx, ctxlen, &res,
				  &reslen, NULL, 0, &st);
		if (e == P11K_OK) {
			uint8_t *sec = sec_dup(res, reslen);
			free(res);
			res = sec;
			if (!res)
				e = P11K_ERR_NOMEM;
		}
	} else {
		e = audit_decrypt(t->cfg, t->prov, key_id, NULL, in, inlen, ctx, ctxlen, &res,
				  &reslen, &st);
	}
	if (e != P11K_OK) {
		st.err = e;
		pthread_mutex_lock(&slots.lock);
		note_provider_error(t, &st, encrypt ? "KMS encrypt" : "KMS decrypt");
		pthread_mutex_unlock(&slots.lock);
		return p11k_err_to_ckr(e);
	}
	*out = res;
	*outlen = reslen;
	return CKR_OK;
}

size_t token_kms_max(void *tok, size_t inlen)
{
	token_t *t = tok;
	return t->cfg->ops->max_blob_len(t->prov, inlen);
}

/* A standard algorithm on configured KMS key idx (docs/REMOTE.md). Called
 * without the module lock. */
CK_RV token_kms_std(void *tok, size_t idx, remote_req *r, uint8_t **out, size_t *outlen)
{
	token_t *t = tok;
	provider_status st = {0};
	const kms_key_cfg *k = &t->cfg->keys[idx];
	p11k_err e = P11K_ERR_KEY_TYPE;
	if (t->cfg->ops->remote_crypt)
		e = audit_remote_crypt(t->cfg, t->prov, k->id, r, out, outlen, &st);
	else
		provider_status_set(&st, e, "the %s provider runs no standard algorithm",
				    t->cfg->ops->type);
	if (e == P11K_OK)
		return CKR_OK;
	st.err = e;
	pthread_mutex_lock(&slots.lock);
	note_provider_error(t, &st, r->encrypt ? "KMS encrypt (standard mechanism)"
					       : "KMS decrypt (standard mechanism)");
	pthread_mutex_unlock(&slots.lock);
	return p11k_err_to_ckr(e);
}

/* The RSA key pair objects of configured key idx. */
static void rsa_faces_inlock(token_t *t, size_t idx, object_t **pub, object_t **priv)
{
	*pub = *priv = NULL;
	for (size_t i = 0; i < t->nkms; i++) {
		object_t *o = t->kms_objs[i];
		if (o->kms_index != idx)
			continue;
		if (o->kms_role == KMS_ROLE_RSA_PUBLIC)
			*pub = o;
		else if (o->kms_role == KMS_ROLE_RSA_PRIVATE)
			*priv = o;
	}
}

static size_t modulus_len_inlock(token_t *t, size_t idx)
{
	object_t *pub, *priv;
	rsa_faces_inlock(t, idx, &pub, &priv);
	const attr_t *n = pub ? obj_attr(pub, CKA_MODULUS) : NULL;
	return n ? n->len : 0;
}

/* The modulus length of RSA key idx, asking the KMS for the public key
 * the first time and keeping it on both key objects. Called without the
 * module lock. */
CK_RV token_kms_rsa_modlen(void *tok, size_t idx, size_t *modlen)
{
	token_t *t = tok;
	pthread_mutex_lock(&slots.lock);
	*modlen = modulus_len_inlock(t, idx);
	pthread_mutex_unlock(&slots.lock);
	if (*modlen)
		return CKR_OK;
	provider_status st = {0};
	uint8_t *n = NULL, *e = NULL;
	size_t nlen = 0, elen = 0;
	p11k_err err = P11K_ERR_KEY_TYPE;
	if (t->cfg->ops->rsa_public)
		err = audit_rsa_public(t->cfg, t->prov, t->cfg->keys[idx].id, &n, &nlen, &e,
				       &elen, &st);
	else
		provider_status_set(&st, err, "the %s provider has no RSA keys",
				    t->cfg->ops->type);
	/* RSA keys the KMSs offer: 2048 to 4096 bits (docs/REMOTE.md). */
	if (err == P11K_OK && (nlen < 256 || nlen > 512 || !n[0] || !elen || elen > 8)) {
		err = P11K_ERR_BAD_REPLY;
		provider_status_set(&st, err, "RSA public key of %zu bytes is out of range",
				    nlen);
	}
	CK_RV rv = CKR_OK;
	pthread_mutex_lock(&slots.lock);
	if (err != P11K_OK) {
		st.err = err;
		note_provider_error(t, &st, "reading the RSA public key");
		rv = p11k_err_to_ckr(err);
		if (rv == CKR_ENCRYPTED_DATA_INVALID)
			rv = CKR_DEVICE_ERROR;
	} else {
		object_t *faces[2];
		rsa_faces_inlock(t, idx, &faces[0], &faces[1]);
		CK_ULONG bits = nlen * 8;
		for (int b = 7; b >= 0 && !(n[0] & (1u << b)); b--)
			bits--;
		for (int f = 0; f < 2; f++)
			if (faces[f] && !obj_attr(faces[f], CKA_MODULUS) &&
			    !(obj_set(faces[f], CKA_MODULUS, n, nlen) &&
			      obj_set(faces[f], CKA_PUBLIC_EXPONENT, e, elen) &&
			      obj_set(faces[f], CKA_MODULUS_BITS, &bits, sizeof(bits))))
				rv = CKR_HOST_MEMORY;
		*modlen = rv == CKR_OK ? modulus_len_inlock(t, idx) : 0;
	}
	pthread_mutex_unlock(&slots.lock);
	free(n);
	free(e);
	return rv;
}

kms_port token_kms_port(token_t *t)
{
	return (kms_port){.tok = t, .call = token_kms_call, .max = token_kms_max,
			  .std = token_kms_std, .modlen = token_kms_rsa_modlen};
}
