/* SPDX-License-Identifier: Apache-2.0 */
#include "object.h"

#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

#include "common/crypto.h"
#include "common/clock.h"
#include "common/log.h"
#include "common/secmem.h"

/* --- the attribute rules: one table --------------------------------- */

typedef enum akind { K_BOOL, K_ULONG, K_BYTES, K_DATE, K_MECHS } akind;

#define CL_DATA 0x1u
#define CL_KEY 0x2u
#define CL_CERT 0x4u /* X.509 certificates (docs/SIGNING.md) */
#define CL_ANY (CL_DATA | CL_KEY | CL_CERT)

/* Rule flags; numbers refer to the footnotes of the PKCS #11 v3.0
 * attribute tables (section 4.2). */
#define R_CREATE_REQ 0x0001u  /* 1: required by C_CreateObject */
#define R_CREATE_NO 0x0002u   /* 2: must not be given to C_CreateObject */
#define R_GEN_REQ 0x0004u     /* 3: required by C_GenerateKey */
#define R_GEN_NO 0x0008u      /* 4: must not be given to C_GenerateKey */
#define R_UNWRAP_NO 0x0020u   /* 6: must not be given to C_UnwrapKey */
#define R_SENSITIVE 0x0040u   /* 7: hidden when sensitive/unextractable */
#define R_MODIFIABLE 0x0080u  /* 8: C_SetAttributeValue and C_CopyObject */
#define R_SO_TRUE 0x0200u     /* 10: only the SO may set it to TRUE */
#define R_ONLY_TRUE 0x0400u   /* 11: may change FALSE -> TRUE only */
#define R_ONLY_FALSE 0x0800u  /* may change TRUE -> FALSE only */
#define R_READONLY 0x1000u    /* computed by the module, never given */
#define R_COPY_MOD 0x2000u    /* may change while copying */
#define R_SECRET 0x4000u      /* stored sealed, kept in secure memory */

typedef struct attr_rule {
	CK_ATTRIBUTE_TYPE type;
	akind kind;
	unsigned classes;
	unsigned flags;
} attr_rule;

static const attr_rule attr_rules[] = {
	{CKA_CLASS, K_ULONG, CL_ANY, R_CREATE_REQ},
	{CKA_TOKEN, K_BOOL, CL_ANY, R_COPY_MOD},
	{CKA_PRIVATE, K_BOOL, CL_ANY, R_COPY_MOD},
	{CKA_MODIFIABLE, K_BOOL, CL_ANY, R_COPY_MOD | R_ONLY_FALSE},
	{CKA_COPYABLE, K_BOOL, CL_ANY, R_MODIFIABLE | R_ONLY_FALSE},
	{CKA_DESTROYABLE, K_BOOL, CL_ANY, R_MODIFIABLE | R_ONLY_FALSE},
	{CKA_LABEL, K_BYTES, CL_ANY, R_MODIFIABLE | R_COPY_MOD},
	{CKA_UNIQUE_ID, K_BYTES, CL_ANY, R_READONLY},
	{CKA_APPLICATION, K_BYTES, CL_DATA, R_MODIFIABLE},
	{CKA_OBJECT_ID, K_BYTES, CL_DATA, R_MODIFIABLE},
	{CKA_VALUE, K_BYTES, CL_DATA, R_MODIFIABLE | R_SECRET},
	{CKA_KEY_TYPE, K_ULONG, CL_KEY, R_CREATE_REQ},
	{CKA_ID, K_BYTES, CL_KEY, R_MODIFIABLE},
	{CKA_START_DATE, K_DATE, CL_KEY, R_MODIFIABLE},
	{CKA_END_DATE, K_DATE, CL_KEY, R_MODIFIABLE},
	{CKA_DERIVE, K_BOOL, CL_KEY, R_MODIFIABLE},
	{CKA_LOCAL, K_BOOL, CL_KEY, R_READONLY},
	{CKA_KEY_GEN_MECHANISM, K_ULONG, CL_KEY, R_READONLY},
	{CKA_ALLOWED_MECHANISMS, K_MECHS, CL_KEY, 0},
	{CKA_SENSITIVE, K_BOOL, CL_KEY, R_MODIFIABLE | R_ONLY_TRUE},
	{CKA_ENCRYPT, K_BOOL, CL_KEY, R_MODIFIABLE | R_ONLY_FALSE},
	{CKA_DECRYPT, K_BOOL, CL_KEY, R_MODIFIABLE | R_ONLY_FALSE},
	{CKA_SIGN, K_BOOL, CL_KEY, R_MODIFIABLE},
	{CKA_VERIFY, K_BOOL, CL_KEY, R_MODIFIABLE},
	{CKA_WRAP, K_BOOL, CL_KEY, R_MODIFIABLE | R_ONLY_FALSE},
	{CKA_UNWRAP, K_BOOL, CL_KEY, R_MODIFIABLE | R_ONLY_FALSE},
	{CKA_EXTRACTABLE, K_BOOL, CL_KEY, R_MODIFIABLE | R_ONLY_FALSE},
	{CKA_ALWAYS_SENSITIVE, K_BOOL, CL_KEY, R_READONLY},
	{CKA_NEVER_EXTRACTABLE, K_BOOL, CL_KEY, R_READONLY},
	{CKA_CHECK_VALUE, K_BYTES, CL_KEY, R_GEN_NO | R_UNWRAP_NO},
	{CKA_WRAP_WITH_TRUSTED, K_BOOL, CL_KEY, R_MODIFIABLE | R_ONLY_TRUE},
	{CKA_TRUSTED, K_BOOL, CL_KEY, R_MODIFIABLE | R_SO_TRUE},
	{CKA_VALUE, K_BYTES, CL_KEY,
	 R_CREATE_REQ | R_GEN_NO | R_UNWRAP_NO | R_SENSITIVE | R_SECRET},
	{CKA_VALUE_LEN, K_ULONG, CL_KEY, R_CREATE_NO | R_GEN_REQ},
	{CKA_P11KMS_KMS_KEY_ID, K_BYTES, CL_KEY, R_READONLY},
	{CKA_P11KMS_KMS_KEY_VERSION, K_BYTES, CL_KEY, R_READONLY},
	{CKA_P11KMS_CREATED_AT, K_ULONG, CL_KEY, R_READONLY},
	/* X.509 public key certificates (v3.0 4.6.3): public values */
	{CKA_CERTIFICATE_TYPE, K_ULONG, CL_CERT, R_CREATE_REQ},
	{CKA_TRUSTED, K_BOOL, CL_CERT, R_SO_TRUE},
	{CKA_CERTIFICATE_CATEGORY, K_ULONG, CL_CERT, 0},
	{CKA_CHECK_VALUE, K_BYTES, CL_CERT, 0},
	{CKA_START_DATE, K_DATE, CL_CERT, R_MODIFIABLE},
	{CKA_END_DATE, K_DATE, CL_CERT, R_MODIFIABLE},
	{CKA_PUBLIC_KEY_INFO, K_BYTES, CL_CERT, 0},
	{CKA_SUBJECT, K_BYTES, CL_CERT, R_CREATE_REQ},
	{CKA_ID, K_BYTES, CL_CERT, R_MODIFIABLE},
	{CKA_ISSUER, K_BYTES, CL_CERT, R_MODIFIABLE},
	{CKA_SERIAL_NUMBER, K_BYTES, CL_CERT, R_MODIFIABLE},
	{CKA_VALUE, K_BYTES, CL_CERT, R_CREATE_REQ},
	{CKA_URL, K_BYTES, CL_CERT, 0},
	{CKA_HASH_OF_SUBJECT_PUBLIC_KEY, K_BYTES, CL_CERT, 0},
	{CKA_HASH_OF_ISSUER_PUBLIC_KEY, K_BYTES, CL_CERT, 0},
	{CKA_JAVA_MIDP_SECURITY_DOMAIN, K_ULONG, CL_CERT, 0},
	{CKA_NAME_HASH_ALGORITHM, K_ULONG, CL_CERT, 0},
};

static unsigned class_bit(CK_OBJECT_CLASS c)
{
	return c == CKO_DATA	      ? CL_DATA
	       : c == CKO_SECRET_KEY  ? CL_KEY
	       : c == CKO_CERTIFICATE ? CL_CERT
				      : 0;
}

static const attr_rule *rule_for(CK_ATTRIBUTE_TYPE t, unsigned cls)
{
	for (size_t i = 0; i < ARRAY_SIZE(attr_rules); i++)
		if (attr_rules[i].type == t && (attr_rules[i].classes & cls))
			return &attr_rules[i];
	return NULL;
}

bool obj_is_secret_attr(CK_ATTRIBUTE_TYPE t)
{
	return t == CKA_VALUE;
}

/* Is this attribute of this object stored sealed? A key's value always;
 * a data object's value unless the object is public (CKA_PRIVATE FALSE),
 * which PKCS #11 lets any session read. */
bool obj_attr_sealed(const object_t *o, CK_ATTRIBUTE_TYPE t)
{
	if (!obj_is_secret_attr(t))
		return false;
	CK_OBJECT_CLASS c = obj_ulong(o, CKA_CLASS, 0);
	return !(c == CKO_CERTIFICATE || (c == CKO_DATA && !obj_bool(o, CKA_PRIVATE, true)));
}

/* --- attribute list helpers ----------------------------------------- */

void obj_drop_secrets(object_t *o)
{
	size_t j = 0;
	bool public_data = !obj_attr_sealed(o, CKA_VALUE);
	for (size_t i = 0; i < o->nattrs; i++) {
		if (obj_is_secret_attr(o->attrs[i].type) && !public_data) {
			sec_free(o->attrs[i].val);
			continue;
		}
		o->attrs[j++] = o->attrs[i];
	}
	o->nattrs = j;
	o->sec_loaded = public_data;
}

void obj_free(object_t *o)
{
	if (!o)
		return;
	for (size_t i = 0; i < o->nattrs; i++) {
		if (obj_is_secret_attr(o->attrs[i].type))
			sec_free(o->attrs[i].val);
		else
			free(o->attrs[i].val);
	}
	free(o->attrs);
	free(o);
}

/* The attributes are sorted by type (obj_set keeps them so, and every
 * list is built by it): a binary search. */
const attr_t *obj_attr(const object_t *o, CK_ATTRIBUTE_TYPE t)
{
	size_t lo = 0, hi = o->nattrs;
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;
		CK_ATTRIBUTE_TYPE m = o->attrs[mid].type;
		if (m == t)
			return &o->attrs[mid];
		if (m < t)
			lo = mid + 1;
		else
			hi = mid;
	}
	return NULL;
}

bool obj_bool(const object_t *o, CK_ATTRIBUTE_TYPE t, bool def)
{
	const attr_t *a = obj_attr(o, t);
	return a && a->len == sizeof(CK_BBOOL) ? *(CK_BBOOL *)a->val != CK_FALSE : def;
}

CK_ULONG obj_ulong(const object_t *o, CK_ATTRIBUTE_TYPE t, CK_ULONG def)
{
	const attr_t *a = obj_attr(o, t);
	CK_ULONG v;
	if (!a || a->len != sizeof(CK_ULONG))
		return def;
	memcpy(&v, a->val, sizeof(v));
	return v;
}

bool obj_is_token(const object_t *o)
{
	return obj_bool(o, CKA_TOKEN, false);
}

bool obj_is_private(const object_t *o)
{
	return obj_bool(o, CKA_PRIVATE, true);
}

bool obj_set(object_t *o, CK_ATTRIBUTE_TYPE t, const void *v, CK_ULONG len)
{
	bool secret = obj_is_secret_attr(t);
	uint8_t *copy = secret ? sec_alloc(len ? len : 1) : malloc(len ? len : 1);
	if (!copy)
		return false;
	if (len)
		memcpy(copy, v, len);
	attr_t *cur = (attr_t *)obj_attr(o, t);
	if (cur) {
		if (secret)
			sec_free(cur->val);
		else
			free(cur->val);
		cur->val = copy;
		cur->len = len;
		return true;
	}
	/* The array holds at least the next power of two of nattrs entries
	 * (every array is grown here): realloc only when that is full. */
	size_t n = o->nattrs, cap = 1;
	while (cap < n)
		cap *= 2;
	attr_t *na = n && n < cap ? o->attrs : realloc(o->attrs, (n ? 2 * cap : 1) * sizeof(*na));
	if (!na) {
		if (secret)
			sec_free(copy);
		else
			free(copy);
		return false;
	}
	o->attrs = na;
	/* keep sorted by type: serialization is then canonical */
	size_t pos = o->nattrs;
	while (pos > 0 && o->attrs[pos - 1].type > t) {
		o->attrs[pos] = o->attrs[pos - 1];
		pos--;
	}
	o->attrs[pos] = (attr_t){.type = t, .len = len, .val = copy};
	o->nattrs++;
	return true;
}

static bool set_bool(object_t *o, CK_ATTRIBUTE_TYPE t, bool v)
{
	CK_BBOOL b = v ? CK_TRUE : CK_FALSE;
	return obj_set(o, t, &b, sizeof(b));
}

static bool set_ulong(object_t *o, CK_ATTRIBUTE_TYPE t, CK_ULONG v)
{
	return obj_set(o, t, &v, sizeof(v));
}

/* --- templates ------------------------------------------------------ */

const CK_ATTRIBUTE *tmpl_find(const CK_ATTRIBUTE *tmpl, CK_ULONG n,
			      CK_ATTRIBUTE_TYPE t)
{
	for (CK_ULONG i = 0; i < n; i++)
		if (tmpl[i].type == t)
			return &tmpl[i];
	return NULL;
}

static CK_RV value_shape(const attr_rule *r, const CK_ATTRIBUTE *a)
{
	if (a->ulValueLen && !a->pValue)
		return CKR_ATTRIBUTE_VALUE_INVALID;
	switch (r->kind) {
	case K_BOOL:
		if (a->ulValueLen != sizeof(CK_BBOOL) ||
		    *(CK_BBOOL *)a->pValue > CK_TRUE)
			return CKR_ATTRIBUTE_VALUE_INVALID;
		return CKR_OK;
	case K_ULONG:
		return a->ulValueLen == sizeof(CK_ULONG) ? CKR_OK
							 : CKR_ATTRIBUTE_VALUE_INVALID;
	case K_DATE:
		return (a->ulValueLen == 0 || a->ulValueLen == sizeof(CK_DATE))
			       ? CKR_OK
			       : CKR_ATTRIBUTE_VALUE_INVALID;
	case K_MECHS:
		return a->ulValueLen % sizeof(CK_MECHANISM_TYPE) == 0
			       ? CKR_OK
			       : CKR_ATTRIBUTE_VALUE_INVALID;
	case K_BYTES:
		return a->ulValueLen <= 64 * 1024 * 1024 ? CKR_OK
							 : CKR_ATTRIBUTE_VALUE_INVALID;
	}
	return CKR_GENERAL_ERROR;
}

CK_RV tmpl_check(const CK_ATTRIBUTE *tmpl, CK_ULONG n)
{
	if (n && !tmpl)
		return CKR_ARGUMENTS_BAD;
	for (CK_ULONG i = 0; i < n; i++) {
		const attr_rule *r = rule_for(tmpl[i].type, CL_ANY);
		if (!r) {
			log_info("object", "attribute 0x%lx is not supported",
				 (unsigned long)tmpl[i].type);
			return CKR_ATTRIBUTE_TYPE_INVALID;
		}
		/* Shape check against any class that has the attribute; the
		 * class-specific check happens when the class is known. */
		CK_RV rv = value_shape(r, &tmpl[i]);
		if (rv != CKR_OK) {
			log_info("object", "attribute 0x%lx: malformed value (%lu bytes)",
				 (unsigned long)tmpl[i].type,
				 (unsigned long)tmpl[i].ulValueLen);
			return rv;
		}
		for (CK_ULONG j = 0; j < i; j++)
			if (tmpl[j].type == tmpl[i].type) {
				log_info("object", "attribute 0x%lx appears twice",
					 (unsigned long)tmpl[i].type);
				return CKR_TEMPLATE_INCONSISTENT;
			}
	}
	return CKR_OK;
}

static bool tmpl_ulong(const CK_ATTRIBUTE *tmpl, CK_ULONG n,
		       CK_ATTRIBUTE_TYPE t, CK_ULONG *v)
{
	const CK_ATTRIBUTE *a = tmpl_find(tmpl, n, t);
	if (!a || a->ulValueLen != sizeof(CK_ULONG))
		return false;
	memcpy(v, a->pValue, sizeof(*v));
	return true;
}

/* --- check values ---------------------------------------------------- */

bool key_check_value(CK_KEY_TYPE kt, const uint8_t *key, size_t len,
		     uint8_t out[3])
{
	uint8_t buf[32];
	bool ok = false;
	if (kt == CKK_AES) {
		static const uint8_t zero[16];
		const EVP_CIPHER *c = crypto_cipher(CIPH_AES_ECB, len);
		EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
		int n = 0;
		ok = c && ctx && EVP_EncryptInit_ex2(ctx, c, key, NULL, NULL) == 1 &&
		     EVP_CIPHER_CTX_set_padding(ctx, 0) == 1 &&
		     EVP_EncryptUpdate(ctx, buf, &n, zero, 16) == 1 && n == 16;
		EVP_CIPHER_CTX_free(ctx);
	} else {
		EVP_MD *sha1 = EVP_MD_fetch(crypto_libctx(), "SHA1", NULL);
		unsigned int n = 0;
		ok = sha1 && EVP_Digest(key, len, buf, &n, sha1, NULL) == 1;
		EVP_MD_free(sha1);
	}
	if (ok)
		memcpy(out, buf, 3);
	OPENSSL_cleanse(buf, sizeof(buf));
	return ok;
}

/* --- building objects ---------------------------------------------- */

static CK_RV apply_template(object_t *o, unsigned cls, obj_origin origin,
			    const CK_ATTRIBUTE *tmpl, CK_ULONG n, obj_actor actor)
{
	for (CK_ULONG i = 0; i < n; i++) {
		const attr_rule *r = rule_for(tmpl[i].type, cls);
		if (!r) {
			log_info("object", "attribute 0x%lx does not apply to this class",
				 (unsigned long)tmpl[i].type);
			return CKR_ATTRIBUTE_TYPE_INVALID;
		}
		if (r->flags & R_READONLY) {
			log_info("object", "attribute 0x%lx is set by the module only",
				 (unsigned long)tmpl[i].type);
			return CKR_ATTRIBUTE_READ_ONLY;
		}
		unsigned forbid = origin == ORIGIN_CREATE     ? R_CREATE_NO
				  : origin == ORIGIN_GENERATE ? R_GEN_NO
							      : R_UNWRAP_NO;
		/* CKA_VALUE_LEN on create is tolerated when it agrees with the
		 * value (checked later): many applications send it. */
		if ((r->flags & forbid) && tmpl[i].type != CKA_VALUE_LEN) {
			log_info("object", "attribute 0x%lx may not be given here",
				 (unsigned long)tmpl[i].type);
			return CKR_TEMPLATE_INCONSISTENT;
		}
		GUARD(value_shape(r, &tmpl[i]));
		if ((r->flags & R_SO_TRUE) && !actor.so && tmpl[i].ulValueLen &&
		    *(CK_BBOOL *)tmpl[i].pValue) {
			log_info("object", "only the SO may set CKA_TRUSTED");
			return CKR_ATTRIBUTE_READ_ONLY;
		}
		if (!obj_set(o, tmpl[i].type, tmpl[i].pValue, tmpl[i].ulValueLen))
			return CKR_HOST_MEMORY;
	}
	return CKR_OK;
}

static bool tmpl_true(const CK_ATTRIBUTE *tmpl, CK_ULONG n, CK_ATTRIBUTE_TYPE t)
{
	const CK_ATTRIBUTE *a = tmpl_find(tmpl, n, t);
	return a && a->ulValueLen == sizeof(CK_BBOOL) && *(CK_BBOOL *)a->pValue;
}

bool obj_roles_conflict(const object_t *o)
{
	return (obj_bool(o, CKA_WRAP, false) || obj_bool(o, CKA_UNWRAP, false)) &&
	       (obj_bool(o, CKA_ENCRYPT, false) || obj_bool(o, CKA_DECRYPT, false));
}

bool obj_protected(const object_t *o)
{
	return obj_bool(o, CKA_SENSITIVE, true) &&
	       (!obj_bool(o, CKA_EXTRACTABLE, false) ||
		obj_bool(o, CKA_WRAP_WITH_TRUSTED, false));
}

bool tmpl_protected(const CK_ATTRIBUTE *tmpl, CK_ULONG n)
{
	/* obj_build's defaults: sensitive; extractable only if not sensitive. */
	const CK_ATTRIBUTE *a = tmpl_find(tmpl, n, CKA_SENSITIVE);
	bool sensitive = !a || tmpl_true(tmpl, n, CKA_SENSITIVE);
	a = tmpl_find(tmpl, n, CKA_EXTRACTABLE);
	bool extractable = a ? tmpl_true(tmpl, n, CKA_EXTRACTABLE) : !sensitive;
	return sensitive && (!extractable || tmpl_true(tmpl, n, CKA_WRAP_WITH_TRUSTED));
}

/* The key policy (docs/SECURITY.md) on a key about to be made: one role
 * (a key that wraps or unwraps neither encrypts nor decrypts: Clulow's
 * wrap/decrypt and the Tookan encrypt/unwrap attacks), and an unwrap
 * under a trusted key gives no weaker key than such keys may hold. */
static CK_RV key_policy_checks(const object_t *o, obj_origin origin, obj_actor actor)
{
	if (obj_roles_conflict(o)) {
		log_info("object", "a key that wraps or unwraps may not encrypt or decrypt "
				   "(CKA_WRAP/CKA_UNWRAP with CKA_ENCRYPT/CKA_DECRYPT)");
		return CKR_TEMPLATE_INCONSISTENT;
	}
	if (origin == ORIGIN_UNWRAP && actor.protect && !obj_protected(o)) {
		log_info("object", "a key unwrapped under a trusted key stays sensitive, and "
				   "extractable only with CKA_WRAP_WITH_TRUSTED");
		return CKR_TEMPLATE_INCONSISTENT;
	}
	return CKR_OK;
}

static CK_RV check_required(const CK_ATTRIBUTE *tmpl, CK_ULONG n, unsigned cls,
			    obj_origin origin)
{
	unsigned need = origin == ORIGIN_CREATE ? R_CREATE_REQ
			: origin == ORIGIN_GENERATE ? R_GEN_REQ
						    : 0;
	for (size_t i = 0; need && i < ARRAY_SIZE(attr_rules); i++) {
		const attr_rule *r = &attr_rules[i];
		if ((r->classes & cls) && (r->flags & need) &&
		    !tmpl_find(tmpl, n, r->type)) {
			log_info("object", "template lacks required attribute 0x%lx",
				 (unsigned long)r->type);
			return CKR_TEMPLATE_INCOMPLETE;
		}
	}
	return CKR_OK;
}

/* An X.509 certificate's value must be one (DER); the module fills what
 * the template left out of what it says: CKA_CHECK_VALUE,
 * CKA_PUBLIC_KEY_INFO, CKA_HASH_OF_SUBJECT_PUBLIC_KEY, the issuer, the
 * serial number and the dates. */
static CK_RV cert_value_checks(object_t *o)
{
	if (obj_ulong(o, CKA_CERTIFICATE_TYPE, CK_UNAVAILABLE_INFORMATION) != CKC_X_509) {
		log_info("object", "certificate type 0x%lx is not supported (CKC_X_509 only)",
			 (unsigned long)obj_ulong(o, CKA_CERTIFICATE_TYPE, 0));
		return CKR_ATTRIBUTE_VALUE_INVALID;
	}
	const attr_t *v = obj_attr(o, CKA_VALUE);
	X509 *x = X509_new_ex(crypto_libctx(), NULL);
	const unsigned char *p = v ? v->val : NULL;
	if (!x || !v || v->len > 65536 || !d2i_X509(&x, &p, (long)v->len) ||
	    p != v->val + v->len) {
		X509_free(x);
		log_info("object", "CKA_VALUE is not one DER X.509 certificate");
		return CKR_ATTRIBUTE_VALUE_INVALID;
	}
	unsigned char *part[3] = {NULL};
	int n[3];
	n[0] = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &part[0]);
	n[1] = i2d_X509_NAME(X509_get_issuer_name(x), &part[1]);
	n[2] = i2d_ASN1_INTEGER(X509_get_serialNumber(x), &part[2]);
	uint8_t sha1[20], hk[20];
	unsigned sl = 0;
	EVP_MD *md = EVP_MD_fetch(crypto_libctx(), "SHA1", NULL);
	bool ok = md && n[0] > 0 && n[1] > 0 && n[2] > 0 &&
		  EVP_Digest(v->val, v->len, sha1, &sl, md, NULL) == 1 &&
		  EVP_Digest(part[0], (size_t)n[0], hk, &sl, md, NULL) == 1;
	EVP_MD_free(md);
	X509_free(x);
	const attr_t *given = obj_attr(o, CKA_CHECK_VALUE);
	CK_RV rv = ok ? CKR_OK : CKR_ATTRIBUTE_VALUE_INVALID;
	if (rv == CKR_OK && given && given->len &&
	    (given->len != 3 || memcmp(given->val, sha1, 3) != 0)) {
		log_info("object", "CKA_CHECK_VALUE does not match the certificate");
		rv = CKR_ATTRIBUTE_VALUE_INVALID;
	}
	struct {
		CK_ATTRIBUTE_TYPE t;
		const void *v;
		size_t n;
	} fill[] = {
		{CKA_CHECK_VALUE, sha1, 3},
		{CKA_PUBLIC_KEY_INFO, part[0], (size_t)n[0]},
		{CKA_HASH_OF_SUBJECT_PUBLIC_KEY, hk, sizeof(hk)},
		{CKA_ISSUER, part[1], (size_t)n[1]},
		{CKA_SERIAL_NUMBER, part[2], (size_t)n[2]},
	};
	for (size_t i = 0; rv == CKR_OK && i < ARRAY_SIZE(fill); i++) {
		const attr_t *a = obj_attr(o, fill[i].t);
		if ((!a || !a->len) && !obj_set(o, fill[i].t, fill[i].v, fill[i].n))
			rv = CKR_HOST_MEMORY;
	}
	for (int i = 0; i < 3; i++)
		OPENSSL_free(part[i]);
	return rv;
}

static CK_RV key_value_checks(object_t *o, obj_origin origin,
			      const CK_ATTRIBUTE *tmpl, CK_ULONG n)
{
	CK_KEY_TYPE kt = obj_ulong(o, CKA_KEY_TYPE, CK_UNAVAILABLE_INFORMATION);
	const attr_t *v = obj_attr(o, CKA_VALUE);
	if (!obj_attr(o, CKA_KEY_TYPE)) {
		log_info("object", "template lacks CKA_KEY_TYPE");
		return CKR_TEMPLATE_INCOMPLETE;
	}
	if (kt != CKK_AES && kt != CKK_GENERIC_SECRET) {
		log_info("object", "key type 0x%lx is not supported", (unsigned long)kt);
		return CKR_ATTRIBUTE_VALUE_INVALID;
	}
	if (!v)
		return CKR_TEMPLATE_INCOMPLETE;
	if (kt == CKK_AES && v->len != 16 && v->len != 24 && v->len != 32) {
		log_info("object", "an AES key is 16, 24 or 32 bytes, not %lu",
			 (unsigned long)v->len);
		return origin == ORIGIN_UNWRAP ? CKR_WRAPPED_KEY_LEN_RANGE
					       : CKR_ATTRIBUTE_VALUE_INVALID;
	}
	if (kt == CKK_GENERIC_SECRET && (v->len < 1 || v->len > 512)) {
		log_info("object", "a generic secret is 1 to 512 bytes, not %lu",
			 (unsigned long)v->len);
		return CKR_ATTRIBUTE_VALUE_INVALID;
	}
	CK_ULONG vl;
	if (tmpl_ulong(tmpl, n, CKA_VALUE_LEN, &vl) && vl != v->len) {
		log_info("object", "CKA_VALUE_LEN %lu disagrees with the value (%lu)",
			 (unsigned long)vl, (unsigned long)v->len);
		return CKR_TEMPLATE_INCONSISTENT;
	}
	/* obj_set may move the attribute array: keep the value itself. */
	const uint8_t *val = v->val;
	CK_ULONG vlen = v->len;
	if (!set_ulong(o, CKA_VALUE_LEN, vlen))
		return CKR_HOST_MEMORY;
	uint8_t kcv[3];
	if (!key_check_value(kt, val, vlen, kcv))
		return CKR_GENERAL_ERROR;
	const attr_t *given = obj_attr(o, CKA_CHECK_VALUE);
	if (given && given->len != 0 &&
	    (given->len != 3 || memcmp(given->val, kcv, 3) != 0)) {
		log_info("object", "CKA_CHECK_VALUE does not match the key");
		return CKR_ATTRIBUTE_VALUE_INVALID;
	}
	/* An empty CKA_CHECK_VALUE in the template asks for none (v3.0 4.10). */
	if (!given && !obj_set(o, CKA_CHECK_VALUE, kcv, 3))
		return CKR_HOST_MEMORY;
	return CKR_OK;
}

CK_RV obj_build(obj_origin origin, const CK_ATTRIBUTE *tmpl, CK_ULONG n,
		const CK_ATTRIBUTE *extra, CK_ULONG nextra, obj_actor actor,
		object_t **out)
{
	*out = NULL;
	GUARD(tmpl_check(tmpl, n));
	CK_OBJECT_CLASS cls;
	if (!tmpl_ulong(tmpl, n, CKA_CLASS, &cls) &&
	    !tmpl_ulong(extra, nextra, CKA_CLASS, &cls)) {
		log_info("object", "template lacks CKA_CLASS");
		return CKR_TEMPLATE_INCOMPLETE;
	}
	unsigned cb = class_bit(cls);
	if (!cb) {
		log_info("object", "object class 0x%lx is not supported",
			 (unsigned long)cls);
		return CKR_ATTRIBUTE_VALUE_INVALID;
	}
	if (origin != ORIGIN_CREATE && cls != CKO_SECRET_KEY)
		return CKR_TEMPLATE_INCONSISTENT;
	GUARD(check_required(tmpl, n, cb, origin));

	object_t *o = calloc(1, sizeof(*o));
	if (!o)
		return CKR_HOST_MEMORY;
	CK_RV rv = CKR_OK;
	bool key = cls == CKO_SECRET_KEY;
	/* Defaults (the "token-specific" ones are documented in
	 * docs/OBJECTS.md and docs/SECURITY.md): keys are private and
	 * sensitive, and have one role: a key the template makes a wrapping
	 * key (CKA_WRAP or CKA_UNWRAP true) wraps and unwraps only, any other
	 * encrypts, decrypts, signs and verifies. A sensitive key is not
	 * extractable unless the template says so. Data objects are public. */
	bool wraps = tmpl_true(tmpl, n, CKA_WRAP) || tmpl_true(tmpl, n, CKA_UNWRAP);
	bool ok = set_ulong(o, CKA_CLASS, cls) && set_bool(o, CKA_TOKEN, false) &&
		  set_bool(o, CKA_PRIVATE, key) && set_bool(o, CKA_MODIFIABLE, true) &&
		  set_bool(o, CKA_COPYABLE, true) &&
		  set_bool(o, CKA_DESTROYABLE, true) && obj_set(o, CKA_LABEL, "", 0);
	bool cert = cls == CKO_CERTIFICATE;
	if (ok && cls == CKO_DATA)
		ok = obj_set(o, CKA_APPLICATION, "", 0) &&
		     obj_set(o, CKA_OBJECT_ID, "", 0) && obj_set(o, CKA_VALUE, "", 0);
	if (ok && cert)
		ok = obj_set(o, CKA_ID, "", 0) && obj_set(o, CKA_ISSUER, "", 0) &&
		     obj_set(o, CKA_SERIAL_NUMBER, "", 0) && set_bool(o, CKA_TRUSTED, false) &&
		     set_ulong(o, CKA_CERTIFICATE_CATEGORY, 0) &&
		     obj_set(o, CKA_START_DATE, "", 0) && obj_set(o, CKA_END_DATE, "", 0) &&
		     obj_set(o, CKA_URL, "", 0) &&
		     obj_set(o, CKA_HASH_OF_ISSUER_PUBLIC_KEY, "", 0) &&
		     set_ulong(o, CKA_JAVA_MIDP_SECURITY_DOMAIN, 0) &&
		     set_ulong(o, CKA_NAME_HASH_ALGORITHM, CKM_SHA_1);
	if (ok && key)
		ok = obj_set(o, CKA_ID, "", 0) && obj_set(o, CKA_START_DATE, "", 0) &&
		     obj_set(o, CKA_END_DATE, "", 0) && set_bool(o, CKA_DERIVE, false) &&
		     set_bool(o, CKA_SENSITIVE, true) && set_bool(o, CKA_ENCRYPT, !wraps) &&
		     set_bool(o, CKA_DECRYPT, !wraps) && set_bool(o, CKA_SIGN, !wraps) &&
		     set_bool(o, CKA_VERIFY, !wraps) && set_bool(o, CKA_WRAP, false) &&
		     set_bool(o, CKA_UNWRAP, false) &&
		     set_bool(o, CKA_WRAP_WITH_TRUSTED, false) &&
		     set_bool(o, CKA_TRUSTED, false) &&
		     obj_set(o, CKA_ALLOWED_MECHANISMS, "", 0);
	if (!ok)
		rv = CKR_HOST_MEMORY;
	if (rv == CKR_OK)
		rv = apply_template(o, cb, origin, tmpl, n, actor);
	for (CK_ULONG i = 0; rv == CKR_OK && i < nextra; i++)
		if (!obj_set(o, extra[i].type, extra[i].pValue, extra[i].ulValueLen))
			rv = CKR_HOST_MEMORY;
	if (rv == CKR_OK && key && !tmpl_find(tmpl, n, CKA_EXTRACTABLE) &&
	    !set_bool(o, CKA_EXTRACTABLE, !obj_bool(o, CKA_SENSITIVE, true)))
		rv = CKR_HOST_MEMORY;
	if (rv == CKR_OK && key)
		rv = key_policy_checks(o, origin, actor);
	if (rv == CKR_OK && cert)
		rv = cert_value_checks(o);
	if (rv == CKR_OK && key) {
		bool gen = origin == ORIGIN_GENERATE;
		ok = set_bool(o, CKA_LOCAL, gen) &&
		     set_bool(o, CKA_ALWAYS_SENSITIVE,
			      gen && obj_bool(o, CKA_SENSITIVE, false)) &&
		     set_bool(o, CKA_NEVER_EXTRACTABLE,
			      gen && !obj_bool(o, CKA_EXTRACTABLE, true));
		if (ok && !gen)
			ok = set_ulong(o, CKA_KEY_GEN_MECHANISM,
				       CK_UNAVAILABLE_INFORMATION);
		if (ok)
			ok = set_ulong(o, CKA_P11KMS_CREATED_AT, (CK_ULONG)clock_now_s());
		rv = ok ? key_value_checks(o, origin, tmpl, n) : CKR_HOST_MEMORY;
	}
	if (rv == CKR_OK && (!crypto_random(o->uid, sizeof(o->uid))))
		rv = CKR_GENERAL_ERROR;
	if (rv == CKR_OK) {
		char hexid[33];
		for (int i = 0; i < 16; i++)
			snprintf(hexid + 2 * i, 3, "%02x", o->uid[i]);
		if (!obj_set(o, CKA_UNIQUE_ID, hexid, 32))
			rv = CKR_HOST_MEMORY;
	}
	if (rv != CKR_OK) {
		obj_free(o);
		return rv;
	}
	o->sec_loaded = true;
	*out = o;
	return CKR_OK;
}

/* --- reading attributes -------------------------------------------- */

static bool value_hidden(const object_t *o, const attr_rule *r)
{
	return (r->flags & R_SENSITIVE) &&
	       (obj_bool(o, CKA_SENSITIVE, true) ||
		!obj_bool(o, CKA_EXTRACTABLE, false));
}

/* The private numbers of an RSA private key: the only private keys are
 * KMS keys, whose private part never leaves the KMS (sensitive, 5.7). */
static bool private_part(const object_t *o, CK_ATTRIBUTE_TYPE t)
{
	return obj_ulong(o, CKA_CLASS, 0) == CKO_PRIVATE_KEY &&
	       (t == CKA_PRIVATE_EXPONENT || t == CKA_PRIME_1 || t == CKA_PRIME_2 ||
		t == CKA_EXPONENT_1 || t == CKA_EXPONENT_2 || t == CKA_COEFFICIENT);
}

CK_RV obj_get_attributes(const object_t *o, CK_ATTRIBUTE *tmpl, CK_ULONG n)
{
	CK_RV rv = CKR_OK;
	unsigned cb = class_bit(obj_ulong(o, CKA_CLASS, 0));
	/* PKCS #11 5.7: process every entry; report one of the errors met. */
	for (CK_ULONG i = 0; i < n; i++) {
		CK_ATTRIBUTE *t = &tmpl[i];
		const attr_rule *r = rule_for(t->type, cb);
		const attr_t *a = obj_attr(o, t->type);
		if ((r && value_hidden(o, r)) ||
		    (r && !o->sec_loaded && obj_attr_sealed(o, t->type)) ||
		    private_part(o, t->type)) {
			/* Hidden, or sealed and the token key is not at hand
			 * (not logged in): it cannot be revealed now. */
			t->ulValueLen = CK_UNAVAILABLE_INFORMATION;
			rv = CKR_ATTRIBUTE_SENSITIVE;
		} else if (!a) {
			t->ulValueLen = CK_UNAVAILABLE_INFORMATION;
			rv = CKR_ATTRIBUTE_TYPE_INVALID;
		} else if (!t->pValue) {
			t->ulValueLen = a->len;
		} else if (t->ulValueLen < a->len) {
			t->ulValueLen = CK_UNAVAILABLE_INFORMATION;
			rv = CKR_BUFFER_TOO_SMALL;
		} else {
			if (a->len)
				memcpy(t->pValue, a->val, a->len);
			t->ulValueLen = a->len;
		}
	}
	return rv;
}

/* --- modifying ------------------------------------------------------ */

CK_RV obj_modify(object_t *o, const CK_ATTRIBUTE *tmpl, CK_ULONG n,
		 bool copying, obj_actor actor)
{
	GUARD(tmpl_check(tmpl, n));
	unsigned cb = class_bit(obj_ulong(o, CKA_CLASS, 0));
	if (!copying && !obj_bool(o, CKA_MODIFIABLE, true)) {
		log_info("object", "object is not modifiable (CKA_MODIFIABLE false)");
		return CKR_ACTION_PROHIBITED;
	}
	/* v3.0 4.10: only the SO makes an object with CKA_TRUSTED TRUE, and a
	 * copy is one. */
	if (copying && !actor.so && obj_bool(o, CKA_TRUSTED, false)) {
		const CK_ATTRIBUTE *tr = tmpl_find(tmpl, n, CKA_TRUSTED);
		if (!tr || tr->ulValueLen != sizeof(CK_BBOOL) || *(CK_BBOOL *)tr->pValue ||
		    !obj_bool(o, CKA_MODIFIABLE, true)) {
			log_info("object", "only the SO may copy a trusted key "
					   "(CKA_TRUSTED TRUE)");
			return CKR_ACTION_PROHIBITED;
		}
	}
	/* v3.0 5.7: a copy may change only what can ordinarily be modified,
	 * so a non-modifiable object's attributes (its usage above all) stay
	 * as they are, but for those every copy may set (CKA_TOKEN,
	 * CKA_PRIVATE, CKA_MODIFIABLE). */
	bool modifiable = obj_bool(o, CKA_MODIFIABLE, true);
	/* Check everything first: a rejected template changes nothing. */
	for (CK_ULONG i = 0; i < n; i++) {
		const CK_ATTRIBUTE *t = &tmpl[i];
		const attr_rule *r = rule_for(t->type, cb);
		if (!r)
			return CKR_ATTRIBUTE_TYPE_INVALID;
		GUARD(value_shape(r, t));
		/* A secret or sensitive value is never compared with a guess:
		 * the answer would tell whether the guess was right. */
		bool secret = (r->flags & (R_SECRET | R_SENSITIVE)) != 0;
		const attr_t *cur = obj_attr(o, t->type);
		bool same = !secret && cur && cur->len == t->ulValueLen &&
			    (!cur->len || memcmp(cur->val, t->pValue, cur->len) == 0);
		bool allowed = ((r->flags & R_MODIFIABLE) && modifiable) ||
			       (copying && (r->flags & R_COPY_MOD));
		if (!allowed && !same) {
			log_info("object", "attribute 0x%lx cannot be changed",
				 (unsigned long)t->type);
			return CKR_ATTRIBUTE_READ_ONLY;
		}
		if (r->kind == K_BOOL && !same) {
			bool nv = *(CK_BBOOL *)t->pValue;
			if ((r->flags & R_ONLY_TRUE) && !nv)
				return CKR_ATTRIBUTE_READ_ONLY;
			if ((r->flags & R_ONLY_FALSE) && nv)
				return CKR_ATTRIBUTE_READ_ONLY;
			if ((r->flags & R_SO_TRUE) && nv && !actor.so)
				return CKR_ATTRIBUTE_READ_ONLY;
		}
	}
	for (CK_ULONG i = 0; i < n; i++)
		if (!obj_set(o, tmpl[i].type, tmpl[i].pValue, tmpl[i].ulValueLen))
			return CKR_HOST_MEMORY;
	return CKR_OK;
}

object_t *obj_clone(const object_t *src)
{
	object_t *o = calloc(1, sizeof(*o));
	if (!o)
		return NULL;
	for (size_t i = 0; i < src->nattrs; i++)
		if (!obj_set(o, src->attrs[i].type, src->attrs[i].val,
			     src->attrs[i].len)) {
			obj_free(o);
			return NULL;
		}
	o->sec_loaded = src->sec_loaded;
	/* A copy of a key the KMS gave is revoked with it. */
	o->kms_derived = src->kms_derived;
	char hexid[33];
	if (!crypto_random(o->uid, sizeof(o->uid))) {
		obj_free(o);
		return NULL;
	}
	for (int i = 0; i < 16; i++)
		snprintf(hexid + 2 * i, 3, "%02x", o->uid[i]);
	if (!obj_set(o, CKA_UNIQUE_ID, hexid, 32)) {
		obj_free(o);
		return NULL;
	}
	return o;
}

bool obj_match(const object_t *o, const CK_ATTRIBUTE *tmpl, CK_ULONG n)
{
	unsigned cb = class_bit(obj_ulong(o, CKA_CLASS, 0));
	for (CK_ULONG i = 0; i < n; i++) {
		const attr_t *a = obj_attr(o, tmpl[i].type);
		const attr_rule *r = rule_for(tmpl[i].type, cb);
		/* KMS key objects are built by the module, not from templates:
		 * their public and private key faces have attributes outside
		 * the rules table, and all of them are matchable. */
		if (!a || (!r && !o->kms) || (r && value_hidden(o, r)) ||
		    a->len != tmpl[i].ulValueLen)
			return false;
		if (a->len && (!tmpl[i].pValue || memcmp(a->val, tmpl[i].pValue, a->len)))
			return false;
	}
	return true;
}

CK_ULONG obj_size(const object_t *o)
{
	CK_ULONG sz = 0;
	for (size_t i = 0; i < o->nattrs; i++)
		sz += 12 + o->attrs[i].len;
	return sz;
}

/* --- record codec --------------------------------------------------- */
/*
 * Record: "P1KO" | version 0x01 | count u32 | count x (type u64 | kind u8 |
 * len u32 | value). Integers are big-endian; CK_ULONG values and
 * mechanism lists are written as u64 each, so a store moves between
 * architectures.
 */
#define REC_MAGIC "P1KO"
#define REC_MAX_ATTRS 256
#define REC_MAX_VALUE (64 * 1024 * 1024)

static bool ser_attr(dbuf_t *b, const attr_t *a)
{
	const attr_rule *r = rule_for(a->type, CL_ANY);
	akind k = r ? r->kind : K_BYTES;
	if (!dbuf_add_u64(b, a->type) || !dbuf_add_u8(b, (uint8_t)k))
		return false;
	if (k == K_ULONG || k == K_MECHS) {
		size_t cnt = a->len / sizeof(CK_ULONG);
		if (!dbuf_add_u32(b, (uint32_t)(cnt * 8)))
			return false;
		for (size_t i = 0; i < cnt; i++) {
			CK_ULONG v;
			memcpy(&v, a->val + i * sizeof(CK_ULONG), sizeof(v));
			if (!dbuf_add_u64(b, v))
				return false;
		}
		return true;
	}
	return dbuf_add_u32(b, (uint32_t)a->len) && dbuf_add(b, a->val, a->len);
}

bool obj_serialize(const object_t *o, bool secret, dbuf_t *out)
{
	uint32_t cnt = 0;
	for (size_t i = 0; i < o->nattrs; i++)
		if (obj_attr_sealed(o, o->attrs[i].type) == secret)
			cnt++;
	if (!dbuf_add(out, REC_MAGIC, 4) || !dbuf_add_u8(out, 1) ||
	    !dbuf_add_u32(out, cnt))
		return false;
	for (size_t i = 0; i < o->nattrs; i++)
		if (obj_attr_sealed(o, o->attrs[i].type) == secret &&
		    !ser_attr(out, &o->attrs[i]))
			return false;
	return !out->failed;
}

bool obj_deserialize(object_t *o, const uint8_t *p, size_t len, bool secret)
{
	rd_t r;
	rd_init(&r, p, len);
	const uint8_t *magic = rd_take(&r, 4);
	if (!magic || memcmp(magic, REC_MAGIC, 4) != 0 || rd_u8(&r) != 1)
		return false;
	uint32_t cnt = rd_u32(&r);
	if (r.failed || cnt > REC_MAX_ATTRS)
		return false;
	for (uint32_t i = 0; i < cnt; i++) {
		uint64_t type = rd_u64(&r);
		uint8_t kind = rd_u8(&r);
		uint32_t vlen = rd_u32(&r);
		if (r.failed || vlen > REC_MAX_VALUE || kind > K_MECHS)
			return false;
		const uint8_t *v = rd_take(&r, vlen);
		const attr_rule *rule = rule_for((CK_ATTRIBUTE_TYPE)type, CL_ANY);
		/* The record must say what the table says: kind and shape. */
		if (!v || !rule || rule->kind != kind || obj_attr(o, type) ||
		    (secret && !obj_is_secret_attr((CK_ATTRIBUTE_TYPE)type)))
			return false;
		if (kind != K_ULONG && kind != K_MECHS) {
			CK_ATTRIBUTE probe = {(CK_ATTRIBUTE_TYPE)type, (void *)v, vlen};
			if (value_shape(rule, &probe) != CKR_OK)
				return false;
		}
		if (kind == K_ULONG || kind == K_MECHS) {
			if (vlen % 8 || (kind == K_ULONG && vlen != 8))
				return false;
			size_t cntv = vlen / 8;
			CK_ULONG *tmp = malloc(cntv ? cntv * sizeof(CK_ULONG) : 1);
			if (!tmp)
				return false;
			rd_t vr;
			rd_init(&vr, v, vlen);
			for (size_t j = 0; j < cntv; j++)
				tmp[j] = (CK_ULONG)rd_u64(&vr);
			bool ok = obj_set(o, type, tmp, cntv * sizeof(CK_ULONG));
			free(tmp);
			if (!ok)
				return false;
		} else if (!obj_set(o, type, v, vlen)) {
			return false;
		}
	}
	if (!rd_done(&r))
		return false;
	/* A value in the clear part only for a public data object. */
	for (size_t i = 0; !secret && i < o->nattrs; i++)
		if (obj_attr_sealed(o, o->attrs[i].type))
			return false;
	return true;
}
