/* SPDX-License-Identifier: Apache-2.0 */
/* KMS key objects and the KMS port (kms.h). */
#include "kms.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/rsa.h>

#include "common/crypto.h"
#include "common/log.h"
#include "common/secmem.h"
#include "asym.h"
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

/* The role attributes of a key pair's faces, when the role is known from
 * the configuration; otherwise the KMS's answer sets them (asym.c). */
static bool role_attrs_set(object_t *o, const kms_key_cfg *k, enum kms_role role)
{
	if (!k->usage_given)
		return true;
	bool pub = role == KMS_ROLE_PUBLIC;
	CK_BBOOL sign = k->usage == KMS_USAGE_SIGN, wrap = k->usage == KMS_USAGE_WRAP,
		 data = k->usage == KMS_USAGE_DATA;
	return obj_set(o, pub ? CKA_VERIFY : CKA_SIGN, &sign, 1) &&
	       obj_set(o, pub ? CKA_WRAP : CKA_UNWRAP, &wrap, 1) &&
	       obj_set(o, pub ? CKA_ENCRYPT : CKA_DECRYPT, &data, 1);
}

/* A stable identity: the same key gets the same CKA_UNIQUE_ID. */
static bool unique_id_set(object_t *o, const token_t *t, const kms_key_cfg *k,
			  const char *suffix)
{
	char uid[64];
	uint32_t h = 2166136261u;
	for (const char *p = k->id; *p; p++)
		h = (h ^ (unsigned char)*p) * 16777619u;
	snprintf(uid, sizeof(uid), "kms-%08x-%lu%s", h, (unsigned long)t->slot_id, suffix);
	return obj_set(o, CKA_UNIQUE_ID, uid, strlen(uid));
}

static CK_RV kms_object_register_inlock(token_t *t, object_t *o, size_t i, enum kms_role role,
					bool ok)
{
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

/* One face of configured KMS key i (docs/REMOTE.md, "Objects"). */
static CK_RV kms_object_add_inlock(token_t *t, size_t i, enum kms_role role)
{
	const kms_key_cfg *k = &t->cfg->keys[i];
	object_t *o = calloc(1, sizeof(*o));
	if (!o)
		return CKR_HOST_MEMORY;
	static const CK_OBJECT_CLASS classes[] = {
		[KMS_ROLE_ENVELOPE] = CKO_SECRET_KEY, [KMS_ROLE_AES] = CKO_SECRET_KEY,
		[KMS_ROLE_PUBLIC] = CKO_PUBLIC_KEY, [KMS_ROLE_PRIVATE] = CKO_PRIVATE_KEY};
	CK_OBJECT_CLASS cls = classes[role];
	CK_KEY_TYPE kt = role == KMS_ROLE_ENVELOPE ? CKK_P11KMS_KMS
			 : role == KMS_ROLE_AES	   ? CKK_AES
			 : k->type == KMS_KEY_EC   ? CKK_EC
						   : CKK_RSA;
	CK_BBOOL T = CK_TRUE, F = CK_FALSE;
	bool secret = role == KMS_ROLE_ENVELOPE || role == KMS_ROLE_AES;
	/* A secret face has one role, its "usage" (the envelope keeps both:
	 * the KMS separates them by context, module/remote.c); a key pair's
	 * faces take theirs in role_attrs_set. */
	bool typed = role != KMS_ROLE_ENVELOPE;
	CK_BBOOL wrap = !typed || k->usage == KMS_USAGE_WRAP;
	CK_BBOOL data = !typed || k->usage == KMS_USAGE_DATA;
	/* The envelope is a trusted wrapping key (docs/SECURITY.md): the
	 * administrator configured it, and what it wraps of a sensitive key
	 * the KMS opens only for C_UnwrapKey (module/remote.c, the protected
	 * domain), never for C_Decrypt. The standard faces have no such
	 * domain (RFC 3394 and OAEP carry no context), so they are not. */
	CK_BBOOL trusted = role == KMS_ROLE_ENVELOPE;
	CK_ULONG unavailable = CK_UNAVAILABLE_INFORMATION;
	CK_ULONG value_len = k->bits / 8;
	/* An RSA key's envelope object has a label of its own: SunPKCS11's
	 * KeyStore refuses a token where a secret key shares its label with
	 * another object (the key pair). */
	char label[300];
	snprintf(label, sizeof(label),
		 role == KMS_ROLE_ENVELOPE && k->type == KMS_KEY_RSA ? "%s-envelope" : "%s",
		 k->label);
	const kms_attr common[] = {
		{CKA_CLASS, &cls, sizeof(cls)}, {CKA_KEY_TYPE, &kt, sizeof(kt)},
		{CKA_TOKEN, &T, 1}, {CKA_PRIVATE, &F, 1}, {CKA_MODIFIABLE, &F, 1},
		{CKA_COPYABLE, &F, 1}, {CKA_DESTROYABLE, &F, 1},
		{CKA_LABEL, label, strlen(label)},
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
		{CKA_WRAP_WITH_TRUSTED, &F, 1},
	};
	const kms_attr secret_roles[] = {
		{CKA_ENCRYPT, &data, 1}, {CKA_DECRYPT, &data, 1}, {CKA_WRAP, &wrap, 1},
		{CKA_UNWRAP, &wrap, 1}, {CKA_SIGN, &F, 1}, {CKA_VERIFY, &F, 1},
	};
	const kms_attr aes[] = {{CKA_VALUE_LEN, &value_len, sizeof(value_len)}};
	/* CKA_SUBJECT: the subject of the key's own certificate. */
	size_t sublen = k->ncerts ? k->certs[0].subjlen : 0;
	const void *subject = k->ncerts ? (const void *)k->certs[0].subject : "";
	const kms_attr pub_only[] = {{CKA_SUBJECT, subject, sublen},
				     {CKA_VERIFY_RECOVER, &F, 1}, {CKA_TRUSTED, &F, 1}};
	const kms_attr priv_only[] = {{CKA_SUBJECT, subject, sublen},
				      {CKA_SIGN_RECOVER, &F, 1},
				      {CKA_ALWAYS_AUTHENTICATE, &F, 1}};
	bool ok = kms_attrs_set(o, common, ARRAY_SIZE(common));
	if (role != KMS_ROLE_PUBLIC)
		ok = ok && kms_attrs_set(o, material, ARRAY_SIZE(material));
	if (secret)
		ok = ok && kms_attrs_set(o, secret_roles, ARRAY_SIZE(secret_roles)) &&
		     obj_set(o, CKA_TRUSTED, &trusted, 1);
	else
		ok = ok && role_attrs_set(o, k, role);
	if (role == KMS_ROLE_AES)
		ok = ok && kms_attrs_set(o, aes, ARRAY_SIZE(aes));
	if (role == KMS_ROLE_PUBLIC)
		ok = ok && kms_attrs_set(o, pub_only, ARRAY_SIZE(pub_only));
	if (role == KMS_ROLE_PRIVATE)
		ok = ok && kms_attrs_set(o, priv_only, ARRAY_SIZE(priv_only));
	static const char *const suffix[] = {"", "", "-pub", "-priv"};
	ok = ok && unique_id_set(o, t, k, suffix[role]);
	return kms_object_register_inlock(t, o, i, role, ok);
}

/* Certificate c of key i: X.509, its attributes read from the DER the
 * configuration loaded (PKCS #11 v3.0 4.6.3). */
static CK_RV kms_cert_add_inlock(token_t *t, size_t i, size_t c)
{
	const kms_key_cfg *k = &t->cfg->keys[i];
	const kms_cert *kc = &k->certs[c];
	object_t *o = calloc(1, sizeof(*o));
	if (!o)
		return CKR_HOST_MEMORY;
	CK_OBJECT_CLASS cls = CKO_CERTIFICATE;
	CK_CERTIFICATE_TYPE ct = CKC_X_509;
	/* The key's own certificate is a token user's; the rest of the file
	 * is its chain: authorities. */
	CK_ULONG category = c == 0 ? 1 : 2, midp = 0, namehash = CKM_SHA_1;
	CK_BBOOL T = CK_TRUE, F = CK_FALSE;
	char label[300];
	if (c == 0)
		snprintf(label, sizeof(label), "%s", k->label);
	else
		snprintf(label, sizeof(label), "%s chain %zu", k->label, c);
	const kms_attr attrs[] = {
		{CKA_CLASS, &cls, sizeof(cls)}, {CKA_CERTIFICATE_TYPE, &ct, sizeof(ct)},
		{CKA_TOKEN, &T, 1}, {CKA_PRIVATE, &F, 1}, {CKA_MODIFIABLE, &F, 1},
		{CKA_COPYABLE, &F, 1}, {CKA_DESTROYABLE, &F, 1}, {CKA_TRUSTED, &F, 1},
		{CKA_LABEL, label, strlen(label)},
		{CKA_ID, c == 0 ? k->id : "", c == 0 ? strlen(k->id) : 0},
		{CKA_CERTIFICATE_CATEGORY, &category, sizeof(category)},
		{CKA_CHECK_VALUE, kc->check, sizeof(kc->check)},
		{CKA_START_DATE, &kc->start, sizeof(kc->start)},
		{CKA_END_DATE, &kc->end, sizeof(kc->end)},
		{CKA_PUBLIC_KEY_INFO, kc->spki, kc->spkilen},
		{CKA_SUBJECT, kc->subject, kc->subjlen}, {CKA_ISSUER, kc->issuer, kc->isslen},
		{CKA_SERIAL_NUMBER, kc->serial, kc->serlen}, {CKA_VALUE, kc->der, kc->len},
		{CKA_URL, "", 0},
		{CKA_HASH_OF_SUBJECT_PUBLIC_KEY, kc->spki_sha1, sizeof(kc->spki_sha1)},
		{CKA_HASH_OF_ISSUER_PUBLIC_KEY, "", 0},
		{CKA_JAVA_MIDP_SECURITY_DOMAIN, &midp, sizeof(midp)},
		{CKA_NAME_HASH_ALGORITHM, &namehash, sizeof(namehash)},
	};
	bool ok = kms_attrs_set(o, attrs, ARRAY_SIZE(attrs));
	char suffix[32];
	snprintf(suffix, sizeof(suffix), "-cert%zu", c);
	ok = ok && unique_id_set(o, t, k, suffix);
	return kms_object_register_inlock(t, o, i, KMS_ROLE_CERT, ok);
}

CK_RV token_kms_objects_create_inlock(token_t *t)
{
	if (!t->cfg->nkeys)
		return CKR_OK;
	size_t n = t->cfg->nkeys * 3;
	for (size_t i = 0; i < t->cfg->nkeys; i++)
		n += t->cfg->keys[i].ncerts;
	t->kms_objs = calloc(n, sizeof(*t->kms_objs));
	if (!t->kms_objs)
		return CKR_HOST_MEMORY;
	GUARD(token_kms_asym_init_inlock(t));
	for (size_t i = 0; i < t->cfg->nkeys; i++) {
		switch (t->cfg->keys[i].type) {
		case KMS_KEY_ENVELOPE:
			GUARD(kms_object_add_inlock(t, i, KMS_ROLE_ENVELOPE));
			break;
		case KMS_KEY_AES:
			GUARD(kms_object_add_inlock(t, i, KMS_ROLE_AES));
			break;
		case KMS_KEY_RSA:
		case KMS_KEY_EC:
			/* An RSA key also keeps its envelope face (docs/REMOTE.md),
			 * unless it signs: a signing key encrypts nothing. */
			if (t->cfg->keys[i].type == KMS_KEY_RSA &&
			    !(t->cfg->keys[i].usage_given &&
			      t->cfg->keys[i].usage == KMS_USAGE_SIGN))
				GUARD(kms_object_add_inlock(t, i, KMS_ROLE_ENVELOPE));
			GUARD(kms_object_add_inlock(t, i, KMS_ROLE_PUBLIC));
			GUARD(kms_object_add_inlock(t, i, KMS_ROLE_PRIVATE));
			break;
		}
		for (size_t c = 0; c < t->cfg->keys[i].ncerts; c++)
			GUARD(kms_cert_add_inlock(t, i, c));
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
	token_kms_asym_free_inlock(t);
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

/* RSA-OAEP encryption with key idx's public key (the KMS described it as
 * a decryption key): *out in secure memory, as remote_crypt's. */
static CK_RV oaep_encrypt_local(token_t *t, size_t idx, const remote_req *r, uint8_t **out,
				size_t *outlen)
{
	EVP_PKEY *pk = NULL;
	if (token_kms_pubkey(t, idx, &pk, NULL) != CKR_OK)
		return CKR_GENERAL_ERROR;
	pthread_mutex_lock(&slots.lock);
	bool decrypts = (t->kms_asym[idx].uses & ASYM_USE_DECRYPT) != 0;
	pthread_mutex_unlock(&slots.lock);
	EVP_PKEY_CTX *c = decrypts && EVP_PKEY_is_a(pk, "RSA")
				  ? EVP_PKEY_CTX_new_from_pkey(crypto_libctx(), pk, NULL)
				  : NULL;
	EVP_MD *md = c ? EVP_MD_fetch(crypto_libctx(),
				      r->alg == RALG_RSA_OAEP_SHA1 ? "SHA1" : "SHA256", NULL)
		       : NULL;
	size_t n = 0;
	uint8_t *o = NULL;
	bool ok = md && EVP_PKEY_encrypt_init(c) == 1 &&
		  EVP_PKEY_CTX_set_rsa_padding(c, RSA_PKCS1_OAEP_PADDING) == 1 &&
		  EVP_PKEY_CTX_set_rsa_oaep_md(c, md) == 1 &&
		  EVP_PKEY_CTX_set_rsa_mgf1_md(c, md) == 1 &&
		  EVP_PKEY_encrypt(c, NULL, &n, r->in, r->inlen) == 1 && (o = sec_alloc(n)) &&
		  EVP_PKEY_encrypt(c, o, &n, r->in, r->inlen) == 1;
	EVP_MD_free(md);
	EVP_PKEY_CTX_free(c);
	EVP_PKEY_free(pk);
	if (!ok) {
		sec_free(o);
		return CKR_GENERAL_ERROR;
	}
	log_debug("kms", "key \"%s\": the KMS does not encrypt with it; its public key did",
		  t->cfg->keys[idx].label);
	*out = o;
	*outlen = n;
	return CKR_OK;
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
	/* A KMS that only decrypts with its RSA keys (Cloud KMS
	 * ASYMMETRIC_DECRYPT): the public key it gave encrypts. */
	if (e == P11K_ERR_KEY_TYPE && r->encrypt &&
	    (r->alg == RALG_RSA_OAEP_SHA1 || r->alg == RALG_RSA_OAEP_SHA256) &&
	    oaep_encrypt_local(t, idx, r, out, outlen) == CKR_OK)
		return CKR_OK;
	if (e == P11K_OK)
		return CKR_OK;
	st.err = e;
	pthread_mutex_lock(&slots.lock);
	note_provider_error(t, &st, r->encrypt ? "KMS encrypt (standard mechanism)"
					       : "KMS decrypt (standard mechanism)");
	pthread_mutex_unlock(&slots.lock);
	return p11k_err_to_ckr(e);
}

/* The modulus length of RSA key idx, asking the KMS for the public key
 * the first time (asym.c). Called without the module lock. */
CK_RV token_kms_rsa_modlen(void *tok, size_t idx, size_t *modlen)
{
	token_t *t = tok;
	*modlen = 0;
	GUARD(token_kms_asym_resolve(t, idx));
	pthread_mutex_lock(&slots.lock);
	EVP_PKEY *pk = t->kms_asym[idx].pub;
	if (pk && EVP_PKEY_is_a(pk, "RSA"))
		*modlen = (size_t)EVP_PKEY_get_size(pk);
	pthread_mutex_unlock(&slots.lock);
	return *modlen ? CKR_OK : CKR_KEY_TYPE_INCONSISTENT;
}

kms_port token_kms_port(token_t *t)
{
	return (kms_port){.tok = t, .call = token_kms_call, .max = token_kms_max,
			  .std = token_kms_std, .modlen = token_kms_rsa_modlen,
			  .sign = token_kms_sign, .pubkey = token_kms_pubkey};
}
