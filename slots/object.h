/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The object model: an object is a sorted list of attributes. Which
 * attributes exist, what they may hold and who may set them is data, in
 * one table (object.c, attr_rules), following PKCS #11 v3.0 section 4
 * and the footnotes of its attribute tables.
 */
#ifndef P11KMS_OBJECT_H
#define P11KMS_OBJECT_H

#include "common/common.h"
#include "common/err.h"

struct token;

typedef struct attr {
	CK_ATTRIBUTE_TYPE type;
	CK_ULONG len;
	uint8_t *val; /* secure memory when the attribute is secret */
} attr_t;

typedef struct object {
	CK_OBJECT_HANDLE handle;
	struct token *tok;
	CK_SESSION_HANDLE session; /* owning session; 0 for token objects */
	int64_t rowid;             /* token objects: row in the store */
	uint8_t uid[16];
	attr_t *attrs;
	size_t nattrs;
	bool kms;         /* a KMS key object (from the configuration) */
	size_t kms_index; /* its index in the provider's "keys" */
	uint8_t kms_role; /* kms_role: which face of the KMS key this is */
	bool kms_derived; /* unwrapped by a KMS key: wiped on revocation */
	bool sec_loaded;  /* token objects: secret attributes present */
	bool stale;       /* token objects: reload from the store */
	uint64_t loaded_version;
} object_t;

/* A configured KMS key shows as one to three objects and its certificates
 * (docs/REMOTE.md, docs/SIGNING.md). */
enum kms_role {
	KMS_ROLE_ENVELOPE,    /* CKK_P11KMS_KMS: the vendor envelope */
	KMS_ROLE_AES,         /* CKK_AES: standard AES mechanisms and the envelope */
	KMS_ROLE_PUBLIC,      /* CKK_RSA / CKK_EC public key: OAEP encrypt / wrap, verify */
	KMS_ROLE_PRIVATE,     /* CKK_RSA / CKK_EC private key: OAEP decrypt / unwrap, sign */
	KMS_ROLE_CERT,        /* CKO_CERTIFICATE from the key's "certificate" */
};

typedef enum obj_origin {
	ORIGIN_CREATE,
	ORIGIN_GENERATE,
	ORIGIN_UNWRAP,
} obj_origin;

/* What the caller is (for SO-only rules). */
typedef struct obj_actor {
	bool so;
	/* C_UnwrapKey under a trusted key (or the KMS envelope's protected
	 * domain): the key made must be obj_protected. */
	bool protect;
} obj_actor;

void obj_free(object_t *o);
const attr_t *obj_attr(const object_t *o, CK_ATTRIBUTE_TYPE t);
bool obj_bool(const object_t *o, CK_ATTRIBUTE_TYPE t, bool def);
CK_ULONG obj_ulong(const object_t *o, CK_ATTRIBUTE_TYPE t, CK_ULONG def);
bool obj_is_token(const object_t *o);
bool obj_is_private(const object_t *o);
/* Set or replace an attribute (copies the value). */
P11K_WUR bool obj_set(object_t *o, CK_ATTRIBUTE_TYPE t, const void *v,
		      CK_ULONG len);
bool obj_is_secret_attr(CK_ATTRIBUTE_TYPE t);
/* The key policy (docs/SECURITY.md). A key that wraps or unwraps and
 * also encrypts or decrypts: never made now, refused for wrapping if an
 * older store holds one. */
bool obj_roles_conflict(const object_t *o);
/* Sensitive, and extractable (if at all) only under trusted keys. */
bool obj_protected(const object_t *o);
/* Would obj_build make a protected key of this template? */
bool tmpl_protected(const CK_ATTRIBUTE *tmpl, CK_ULONG n);
bool obj_attr_sealed(const object_t *o, CK_ATTRIBUTE_TYPE t);

/* Build a new object from a caller's template. extra: attributes the
 * module supplies (CKA_VALUE of a generated or unwrapped key), applied
 * after checks. */
P11K_WUR CK_RV obj_build(obj_origin origin, const CK_ATTRIBUTE *tmpl,
			 CK_ULONG n, const CK_ATTRIBUTE *extra, CK_ULONG nextra,
			 obj_actor actor, object_t **out);
/* Check a template only (duplicates, types, value shapes). */
P11K_WUR CK_RV tmpl_check(const CK_ATTRIBUTE *tmpl, CK_ULONG n);
/* Find a template entry. */
const CK_ATTRIBUTE *tmpl_find(const CK_ATTRIBUTE *tmpl, CK_ULONG n,
			      CK_ATTRIBUTE_TYPE t);

/* C_GetAttributeValue over every template entry (PKCS #11 5.7). */
CK_RV obj_get_attributes(const object_t *o, CK_ATTRIBUTE *tmpl, CK_ULONG n);
/* C_SetAttributeValue / C_CopyObject rules: apply tmpl to o in place;
 * nothing changes unless every entry is acceptable. */
P11K_WUR CK_RV obj_modify(object_t *o, const CK_ATTRIBUTE *tmpl, CK_ULONG n,
			  bool copying, obj_actor actor);
P11K_WUR object_t *obj_clone(const object_t *o);
/* Does o match every entry of tmpl? Sensitive values never match. */
bool obj_match(const object_t *o, const CK_ATTRIBUTE *tmpl, CK_ULONG n);
/* Approximate size for C_GetObjectSize. */
CK_ULONG obj_size(const object_t *o);

/* Record codec: public attributes serialize in the clear (and serve as
 * AAD); secret attributes separately (to be sealed). Parsing is bounded
 * and rejects anything malformed. */
P11K_WUR bool obj_serialize(const object_t *o, bool secret, dbuf_t *out);
P11K_WUR bool obj_deserialize(object_t *o, const uint8_t *p, size_t len,
			      bool secret);
/* Drop secret attributes (wiping them). */
void obj_drop_secrets(object_t *o);

/* AES check value (first 3 bytes of AES-ECB(0^16)) or, for a generic
 * secret, of SHA-1(value). */
P11K_WUR bool key_check_value(CK_KEY_TYPE kt, const uint8_t *key, size_t len,
			      uint8_t out[3]);

#endif
