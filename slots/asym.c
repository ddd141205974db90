/* SPDX-License-Identifier: Apache-2.0 */
/* KMS asymmetric keys: the public half, the role, signing (asym.h). */
#include "asym.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "common/crypto.h"
#include "common/log.h"
#include "audit.h"
#include "kms.h"
#include "store.h"
#include "token_priv.h"

static const salg_facts salgs[SALG_COUNT_] = {
	[SALG_RSA_PKCS1_SHA256] = {"SHA256", 32, false, false, 0},
	[SALG_RSA_PKCS1_SHA384] = {"SHA384", 48, false, false, 0},
	[SALG_RSA_PKCS1_SHA512] = {"SHA512", 64, false, false, 0},
	[SALG_RSA_PSS_SHA256] = {"SHA256", 32, true, false, 0},
	[SALG_RSA_PSS_SHA384] = {"SHA384", 48, true, false, 0},
	[SALG_RSA_PSS_SHA512] = {"SHA512", 64, true, false, 0},
	[SALG_ECDSA_SHA256] = {"SHA256", 32, false, true, 32},
	[SALG_ECDSA_SHA384] = {"SHA384", 48, false, true, 48},
};

const salg_facts *salg_info(sign_alg a)
{
	return a > 0 && a < SALG_COUNT_ ? &salgs[a] : NULL;
}

/* --- verification (no KMS) ----------------------------------------------------- */

static EVP_PKEY_CTX *verify_ctx(EVP_PKEY *pk)
{
	EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_pkey(crypto_libctx(), pk, NULL);
	if (c && EVP_PKEY_verify_init(c) == 1)
		return c;
	EVP_PKEY_CTX_free(c);
	return NULL;
}

bool asym_verify(EVP_PKEY *pk, sign_alg alg, const uint8_t *dg, size_t dlen,
		 const uint8_t *sig, size_t siglen)
{
	const salg_facts *f = salg_info(alg);
	if (!pk || !f || dlen != f->dlen)
		return false;
	EVP_PKEY_CTX *c = verify_ctx(pk);
	bool is_ec = EVP_PKEY_is_a(pk, "EC");
	if (!c || is_ec != f->ecdsa) {
		EVP_PKEY_CTX_free(c);
		return false;
	}
	bool ok;
	if (f->ecdsa) {
		size_t derlen = 0;
		uint8_t *der = NULL;
		ok = siglen == 2 * f->ec_half && ecdsa_rs_to_der(sig, f->ec_half, &der, &derlen) &&
		     EVP_PKEY_verify(c, der, derlen, dg, dlen) == 1;
		free(der);
	} else {
		EVP_MD *md = EVP_MD_fetch(crypto_libctx(), f->md, NULL);
		ok = md && EVP_PKEY_CTX_set_signature_md(c, md) == 1 &&
		     EVP_PKEY_CTX_set_rsa_padding(c, f->pss ? RSA_PKCS1_PSS_PADDING
							    : RSA_PKCS1_PADDING) == 1;
		if (ok && f->pss)
			ok = EVP_PKEY_CTX_set_rsa_mgf1_md(c, md) == 1 &&
			     EVP_PKEY_CTX_set_rsa_pss_saltlen(c, (int)f->dlen) == 1;
		ok = ok && EVP_PKEY_verify(c, sig, siglen, dg, dlen) == 1;
		EVP_MD_free(md);
	}
	EVP_PKEY_CTX_free(c);
	return ok;
}

bool asym_verify_pkcs1_raw(EVP_PKEY *pk, const uint8_t *in, size_t inlen,
			   const uint8_t *sig, size_t siglen)
{
	EVP_PKEY_CTX *c = EVP_PKEY_is_a(pk, "RSA") ? verify_ctx(pk) : NULL;
	bool ok = c && EVP_PKEY_CTX_set_rsa_padding(c, RSA_PKCS1_PADDING) == 1 &&
		  EVP_PKEY_verify(c, sig, siglen, in, inlen) == 1;
	EVP_PKEY_CTX_free(c);
	return ok;
}

size_t asym_sig_len(EVP_PKEY *pk)
{
	if (EVP_PKEY_is_a(pk, "EC"))
		return (size_t)(EVP_PKEY_get_bits(pk) + 7) / 8 * 2;
	return (size_t)EVP_PKEY_get_size(pk);
}

/* --- the public half ----------------------------------------------------------- */

CK_RV token_kms_asym_init_inlock(token_t *t)
{
	if (!t->cfg->nkeys)
		return CKR_OK;
	t->kms_asym = calloc(t->cfg->nkeys, sizeof(*t->kms_asym));
	return t->kms_asym ? CKR_OK : CKR_HOST_MEMORY;
}

void token_kms_asym_free_inlock(token_t *t)
{
	for (size_t i = 0; t->kms_asym && i < t->cfg->nkeys; i++)
		EVP_PKEY_free(t->kms_asym[i].pub);
	free(t->kms_asym);
	t->kms_asym = NULL;
}

bool token_kms_asym_known_inlock(const token_t *t, size_t idx)
{
	return t->kms_asym && t->kms_asym[idx].known;
}

/* The DER of a named curve's OID (CKA_EC_PARAMS), for the two curves the
 * KMSs sign with. */
static const uint8_t oid_p256[] = {0x06, 0x08, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07};
static const uint8_t oid_p384[] = {0x06, 0x05, 0x2B, 0x81, 0x04, 0x00, 0x22};

/* The attributes a public key gives both faces. */
typedef struct pub_attrs {
	uint8_t *n, *e;      /* RSA */
	size_t nlen, elen;
	CK_ULONG bits;
	const uint8_t *oid;  /* EC */
	size_t oidlen;
	uint8_t point[2 + 1 + 2 * 66]; /* EC: DER OCTET STRING of the point */
	size_t pointlen;
} pub_attrs;

static void pub_attrs_free(pub_attrs *a)
{
	free(a->n);
	free(a->e);
}

static uint8_t *bn_param(EVP_PKEY *pk, const char *name, size_t *len)
{
	BIGNUM *bn = NULL;
	uint8_t *out = NULL;
	if (EVP_PKEY_get_bn_param(pk, name, &bn) == 1 && BN_num_bytes(bn) > 0 &&
	    (out = malloc((size_t)BN_num_bytes(bn))))
		*len = (size_t)BN_bn2bin(bn, out);
	BN_free(bn);
	return out;
}

/* Check the KMS's key against the configuration and the curves and sizes
 * the KMSs offer; fill a. */
static p11k_err pub_check(EVP_PKEY *pk, kms_key_type want, pub_attrs *a, provider_status *st)
{
	memset(a, 0, sizeof(*a));
	if (EVP_PKEY_is_a(pk, "RSA")) {
		if (want != KMS_KEY_RSA)
			goto type;
		a->n = bn_param(pk, OSSL_PKEY_PARAM_RSA_N, &a->nlen);
		a->e = bn_param(pk, OSSL_PKEY_PARAM_RSA_E, &a->elen);
		a->bits = (CK_ULONG)EVP_PKEY_get_bits(pk);
		if (!a->n || !a->e || a->bits < 2048 || a->bits > 4096 || a->elen > 8) {
			provider_status_set(st, P11K_ERR_BAD_REPLY,
					    "RSA public key of %lu bits is out of range (2048 to 4096)",
					    (unsigned long)a->bits);
			return P11K_ERR_BAD_REPLY;
		}
		return P11K_OK;
	}
	if (!EVP_PKEY_is_a(pk, "EC"))
		goto type;
	if (want != KMS_KEY_EC)
		goto type;
	char curve[32] = "";
	size_t cl = 0;
	if (EVP_PKEY_get_utf8_string_param(pk, OSSL_PKEY_PARAM_GROUP_NAME, curve, sizeof(curve),
					   &cl) != 1)
		curve[0] = 0;
	if (strcmp(curve, "prime256v1") == 0 || strcmp(curve, "P-256") == 0) {
		a->oid = oid_p256;
		a->oidlen = sizeof(oid_p256);
	} else if (strcmp(curve, "secp384r1") == 0 || strcmp(curve, "P-384") == 0) {
		a->oid = oid_p384;
		a->oidlen = sizeof(oid_p384);
	} else {
		provider_status_set(st, P11K_ERR_KEY_TYPE,
				    "EC key on curve %.31s: only P-256 and P-384 sign here", curve);
		return P11K_ERR_KEY_TYPE;
	}
	/* get1_encoded_public_key, not the octet-string parameter: in a host
	 * that made an engine the default (openssl -engine pkcs11), the key
	 * decoded here is a legacy one, which has no such parameter. */
	unsigned char *enc = NULL;
	size_t plen = EVP_PKEY_get1_encoded_public_key(pk, &enc);
	bool ok = enc && plen && plen <= 127 && plen <= sizeof(a->point) - 2 && enc[0] == 0x04;
	if (ok)
		memcpy(a->point + 2, enc, plen);
	OPENSSL_free(enc);
	if (!ok) {
		provider_status_set(st, P11K_ERR_BAD_REPLY, "EC public point unreadable");
		return P11K_ERR_BAD_REPLY;
	}
	a->point[0] = 0x04; /* OCTET STRING */
	a->point[1] = (uint8_t)plen;
	a->pointlen = plen + 2;
	a->bits = (CK_ULONG)EVP_PKEY_get_bits(pk);
	return P11K_OK;
type:
	provider_status_set(st, P11K_ERR_KEY_TYPE, "the KMS key is %s, configured as \"%s\"",
			    EVP_PKEY_is_a(pk, "RSA") ? "RSA" : EVP_PKEY_is_a(pk, "EC") ? "EC"
											: "of another type",
			    want == KMS_KEY_EC ? "ec" : "rsa");
	return P11K_ERR_KEY_TYPE;
}

/* The role of key idx once the KMS has said what it can do. */
static kms_key_usage role_of(const kms_key_cfg *kc, unsigned uses)
{
	if (kc->usage_given)
		return kc->usage;
	return (uses & ASYM_USE_SIGN) && !(uses & ASYM_USE_DECRYPT) ? KMS_USAGE_SIGN
								    : KMS_USAGE_WRAP;
}

/* Publish what the KMS said on the faces of key idx. */
static CK_RV asym_publish_inlock(token_t *t, size_t idx, const asym_public *ap, EVP_PKEY *pk,
				const pub_attrs *a)
{
	const kms_key_cfg *kc = &t->cfg->keys[idx];
	kms_asym *ka = &t->kms_asym[idx];
	if (ka->known)
		return CKR_OK; /* another thread was first */
	kms_key_usage role = role_of(kc, ap->uses);
	bool permitted = role == KMS_USAGE_SIGN ? (ap->uses & ASYM_USE_SIGN) != 0
						: (ap->uses & ASYM_USE_DECRYPT) != 0;
	if (!permitted)
		log_warn("kms", "key \"%s\": the KMS says it cannot %s; its objects permit "
				"nothing (docs/SIGNING.md)",
			 kc->label, role == KMS_USAGE_SIGN ? "sign" : "decrypt");
	CK_BBOOL sign = permitted && role == KMS_USAGE_SIGN;
	CK_BBOOL wrap = permitted && role == KMS_USAGE_WRAP;
	CK_BBOOL data = permitted && role == KMS_USAGE_DATA;
	bool ok = true;
	for (size_t i = 0; ok && i < t->nkms; i++) {
		object_t *o = t->kms_objs[i];
		if (o->kms_index != idx ||
		    (o->kms_role != KMS_ROLE_PUBLIC && o->kms_role != KMS_ROLE_PRIVATE))
			continue;
		bool pub = o->kms_role == KMS_ROLE_PUBLIC;
		ok = obj_set(o, CKA_PUBLIC_KEY_INFO, ap->spki, ap->spkilen) &&
		     obj_set(o, CKA_P11KMS_KMS_KEY_VERSION, ap->version, strlen(ap->version));
		if (a->n)
			ok = ok && obj_set(o, CKA_MODULUS, a->n, a->nlen) &&
			     obj_set(o, CKA_PUBLIC_EXPONENT, a->e, a->elen) &&
			     obj_set(o, CKA_MODULUS_BITS, &a->bits, sizeof(a->bits));
		else
			ok = ok && obj_set(o, CKA_EC_PARAMS, a->oid, a->oidlen) &&
			     obj_set(o, CKA_EC_POINT, a->point, a->pointlen);
		if (!kc->usage_given)
			ok = ok && obj_set(o, pub ? CKA_VERIFY : CKA_SIGN, &sign, 1) &&
			     obj_set(o, pub ? CKA_WRAP : CKA_UNWRAP, &wrap, 1) &&
			     obj_set(o, pub ? CKA_ENCRYPT : CKA_DECRYPT, &data, 1);
		else if (!permitted)
			ok = ok && obj_set(o, pub ? CKA_VERIFY : CKA_SIGN, &sign, 1) &&
			     obj_set(o, pub ? CKA_WRAP : CKA_UNWRAP, &wrap, 1) &&
			     obj_set(o, pub ? CKA_ENCRYPT : CKA_DECRYPT, &data, 1);
	}
	if (!ok)
		return CKR_HOST_MEMORY;
	/* The certificate names the key it certifies: say when it is not
	 * this one (the objects stay; the administrator's file is wrong). */
	if (kc->ncerts && (kc->certs[0].spkilen != ap->spkilen ||
			   memcmp(kc->certs[0].spki, ap->spki, ap->spkilen) != 0))
		log_error("kms", "key \"%s\": the certificate in %s is not of this KMS key's "
				 "public key",
			  kc->label, kc->cert_path);
	if (!EVP_PKEY_up_ref(pk))
		return CKR_HOST_MEMORY;
	ka->pub = pk;
	ka->uses = ap->uses;
	ka->sign_algs = permitted && role == KMS_USAGE_SIGN ? ap->sign_algs : 0;
	snprintf(ka->version, sizeof(ka->version), "%s", ap->version);
	ka->known = true;
	return CKR_OK;
}

/* --- the public key, pinned --------------------------------------------------- */

typedef struct pin_arg {
	const char *name;
	const uint8_t *h;
	bool changed;
} pin_arg;

static p11k_err pin_once(store_t *s, void *arg)
{
	pin_arg *a = arg;
	uint8_t *v = NULL;
	size_t n = 0;
	bool found = false;
	p11k_err e = store_begin(s);
	if (e != P11K_OK)
		return e;
	e = store_meta_get(s, a->name, &v, &n, &found);
	if (e == P11K_OK && found)
		a->changed = n != 32 || memcmp(v, a->h, 32) != 0;
	else if (e == P11K_OK)
		e = store_meta_put(s, a->name, a->h, 32);
	free(v);
	if (e == P11K_OK)
		e = store_commit(s);
	else
		store_rollback(s);
	return e;
}

/* A named version's public key never changes: the first one a token's
 * store saw is pinned there (a hash), and a KMS that later answers with
 * another key for that version is refused, in every process. Without a
 * version (AWS: one per key) there is nothing to pin. Called without the
 * module lock (slots_store_try). */
static p11k_err pin_check(token_t *t, const kms_key_cfg *kc, const asym_public *ap,
			  provider_status *st)
{
	store_t *s = t->store;
	uint8_t id[32], h[32];
	unsigned hl = 0;
	if (!ap->version[0])
		return P11K_OK;
	if (!s) {
		log_debug("kms", "key \"%s\": no store open yet, its public key is not pinned",
			  kc->label);
		return P11K_OK;
	}
	EVP_MD *md = EVP_MD_fetch(crypto_libctx(), "SHA256", NULL);
	EVP_MD_CTX *c = EVP_MD_CTX_new();
	bool ok = md && c && EVP_DigestInit_ex2(c, md, NULL) == 1 &&
		  EVP_DigestUpdate(c, kc->id, strlen(kc->id) + 1) == 1 &&
		  EVP_DigestUpdate(c, ap->version, strlen(ap->version)) == 1 &&
		  EVP_DigestFinal_ex(c, id, &hl) == 1 &&
		  EVP_Digest(ap->spki, ap->spkilen, h, &hl, md, NULL) == 1;
	EVP_MD_CTX_free(c);
	EVP_MD_free(md);
	if (!ok) {
		provider_status_set(st, P11K_ERR_INTERNAL, "cannot hash the public key");
		return P11K_ERR_INTERNAL;
	}
	char name[48] = "kmspub:";
	for (int i = 0; i < 16; i++)
		snprintf(name + 7 + 2 * i, 3, "%02x", id[i]);
	pin_arg pa = {name, h, false};
	p11k_err e = slots_store_try(s, pin_once, &pa);
	bool changed = pa.changed;
	if (e != P11K_OK) {
		/* The pin protects; the store failing is no reason to stop. */
		log_warn("kms", "key \"%s\": its public key could not be pinned: %s", kc->label,
			 p11k_err_name(e));
		return P11K_OK;
	}
	if (changed) {
		provider_status_set(st, P11K_ERR_BAD_REPLY,
				    "the KMS's public key of \"%.80s\" version %.80s is not the one "
				    "it gave before (pinned in the token's store): a KMS answering "
				    "for another key",
				    kc->label, ap->version);
		return P11K_ERR_BAD_REPLY;
	}
	return P11K_OK;
}

CK_RV token_kms_asym_resolve(token_t *t, size_t idx)
{
	pthread_mutex_lock(&slots.lock);
	bool known = token_kms_asym_known_inlock(t, idx);
	pthread_mutex_unlock(&slots.lock);
	if (known)
		return CKR_OK;
	const kms_key_cfg *kc = &t->cfg->keys[idx];
	provider_status st = {0};
	asym_public ap = {0};
	pub_attrs a = {0};
	EVP_PKEY *pk = NULL;
	p11k_err err = P11K_ERR_KEY_TYPE;
	if (t->cfg->ops->public_key)
		err = audit_public_key(t->cfg, t->prov, kc->id, &ap, &st);
	else
		provider_status_set(&st, err, "the %s provider has no asymmetric keys",
				    t->cfg->ops->type);
	if (err == P11K_OK && !(pk = crypto_pubkey_from_spki(ap.spki, ap.spkilen))) {
		err = P11K_ERR_BAD_REPLY;
		provider_status_set(&st, err, "the public key is not a SubjectPublicKeyInfo");
	}
	if (err == P11K_OK)
		err = pub_check(pk, kc->type, &a, &st);
	if (err == P11K_OK)
		err = pin_check(t, kc, &ap, &st);
	CK_RV rv = CKR_OK;
	pthread_mutex_lock(&slots.lock);
	if (err != P11K_OK) {
		st.err = err;
		note_provider_error(t, &st, "reading the public key");
		rv = p11k_err_to_ckr(err);
		if (rv == CKR_ENCRYPTED_DATA_INVALID)
			rv = CKR_DEVICE_ERROR;
	} else {
		rv = asym_publish_inlock(t, idx, &ap, pk, &a);
	}
	pthread_mutex_unlock(&slots.lock);
	EVP_PKEY_free(pk);
	pub_attrs_free(&a);
	asym_public_free(&ap);
	return rv;
}

CK_RV token_kms_pubkey(void *tok, size_t idx, EVP_PKEY **pk, unsigned *sign_algs)
{
	token_t *t = tok;
	*pk = NULL;
	GUARD(token_kms_asym_resolve(t, idx));
	pthread_mutex_lock(&slots.lock);
	kms_asym *ka = &t->kms_asym[idx];
	if (EVP_PKEY_up_ref(ka->pub))
		*pk = ka->pub;
	if (sign_algs)
		*sign_algs = ka->sign_algs;
	pthread_mutex_unlock(&slots.lock);
	return *pk ? CKR_OK : CKR_HOST_MEMORY;
}

/* --- signing ------------------------------------------------------------------- */

CK_RV token_kms_sign(void *tok, size_t idx, sign_alg alg, const uint8_t *dg, size_t dlen,
		     uint8_t **sig, size_t *siglen)
{
	token_t *t = tok;
	const kms_key_cfg *kc = &t->cfg->keys[idx];
	const salg_facts *f = salg_info(alg);
	EVP_PKEY *pk = NULL;
	unsigned algs = 0;
	*sig = NULL;
	GUARD(token_kms_pubkey(t, idx, &pk, &algs));
	char version[512];
	pthread_mutex_lock(&slots.lock);
	snprintf(version, sizeof(version), "%s", t->kms_asym[idx].version);
	pthread_mutex_unlock(&slots.lock);
	provider_status st = {0};
	p11k_err err = P11K_ERR_KEY_TYPE;
	uint8_t *out = NULL;
	size_t outlen = 0, want = asym_sig_len(pk);
	if (!f || dlen != f->dlen || !(algs & SALG_BIT(alg)))
		provider_status_set(&st, err, "key \"%s\" does not sign with this algorithm",
				    kc->label);
	else if (!t->cfg->ops->sign)
		provider_status_set(&st, err, "the %s provider does not sign", t->cfg->ops->type);
	else
		err = audit_sign(t->cfg, t->prov, kc->id, version, alg, dg, dlen, &out, &outlen,
				 &st);
	/* An RSA signature is the modulus' size; a KMS may drop leading
	 * zero bytes. */
	if (err == P11K_OK && !f->ecdsa && outlen < want && outlen > want - 8) {
		uint8_t *pad = calloc(1, want);
		if (pad)
			memcpy(pad + want - outlen, out, outlen);
		free(out);
		out = pad;
		outlen = want;
		if (!out)
			err = P11K_ERR_NOMEM;
	}
	/* The KMS's signature must verify under the public key the objects
	 * show: a KMS that signed with another key (or version) is caught
	 * here, not by whoever checks the signature later. */
	if (err == P11K_OK && (outlen != want || !asym_verify(pk, alg, dg, dlen, out, outlen))) {
		err = P11K_ERR_BAD_REPLY;
		provider_status_set(&st, err, "the KMS's signature does not verify under key "
					      "\"%.80s\"'s public key (version %.80s)",
				    kc->label, version[0] ? version : "current");
	}
	EVP_PKEY_free(pk);
	if (err != P11K_OK) {
		free(out);
		st.err = err;
		pthread_mutex_lock(&slots.lock);
		note_provider_error(t, &st, "KMS sign");
		pthread_mutex_unlock(&slots.lock);
		CK_RV rv = p11k_err_to_ckr(err);
		return rv == CKR_ENCRYPTED_DATA_INVALID ? CKR_DEVICE_ERROR : rv;
	}
	*sig = out;
	*siglen = outlen;
	return CKR_OK;
}
