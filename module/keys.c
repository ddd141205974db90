/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Keys: the key of an operation (a local key's value, or a KMS key object
 * reached through the token's KMS port), and the key management
 * functions: C_GenerateKey, C_WrapKey, C_UnwrapKey, and random numbers.
 */
#include "gate.h"

/* --- keys for operations ------------------------------------------------- */

const key_errs plain_key = {CKR_KEY_HANDLE_INVALID, CKR_KEY_TYPE_INCONSISTENT,
			    CKR_KEY_SIZE_RANGE};
static const key_errs wrapping_key = {CKR_WRAPPING_KEY_HANDLE_INVALID,
				      CKR_WRAPPING_KEY_TYPE_INCONSISTENT,
				      CKR_WRAPPING_KEY_SIZE_RANGE};
static const key_errs unwrapping_key = {CKR_UNWRAPPING_KEY_HANDLE_INVALID,
					CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT,
					CKR_UNWRAPPING_KEY_SIZE_RANGE};

/* Check that local key o may run mechanism mi for usage; copy its value. */
static CK_RV local_key_inlock(const object_t *o, const mech_info *mi, CK_ATTRIBUTE_TYPE usage,
			      const key_errs *errs, uint8_t **key, size_t *keylen)
{
	if (obj_ulong(o, CKA_CLASS, 0) != CKO_SECRET_KEY ||
	    obj_ulong(o, CKA_KEY_TYPE, 0) != mi->key_type) {
		log_info("api", "%s needs a key of type 0x%lx", mi->name,
			 (unsigned long)mi->key_type);
		return errs->type_inconsistent;
	}
	if (!obj_bool(o, usage, false)) {
		log_info("api", "key usage attribute 0x%lx is false", (unsigned long)usage);
		return CKR_KEY_FUNCTION_NOT_PERMITTED;
	}
	/* A key from an older store may still both wrap and decrypt (the old
	 * defaults): it keeps its data role and wraps nothing
	 * (docs/SECURITY.md). */
	if ((usage == CKA_WRAP || usage == CKA_UNWRAP) && obj_roles_conflict(o)) {
		log_info("api", "a key that also encrypts or decrypts may not wrap or unwrap");
		return CKR_KEY_FUNCTION_NOT_PERMITTED;
	}
	const attr_t *allowed = obj_attr(o, CKA_ALLOWED_MECHANISMS);
	if (allowed && allowed->len) {
		bool ok = false;
		for (size_t i = 0; i + sizeof(CK_ULONG) <= allowed->len; i += sizeof(CK_ULONG)) {
			CK_ULONG m;
			memcpy(&m, allowed->val + i, sizeof(m));
			ok |= m == mi->type;
		}
		if (!ok) {
			log_info("api", "%s is not in the key's CKA_ALLOWED_MECHANISMS",
				 mi->name);
			return CKR_MECHANISM_INVALID;
		}
	}
	const attr_t *v = obj_attr(o, CKA_VALUE);
	if (!v)
		return CKR_GENERAL_ERROR;
	if (!mech_key_ok(mi, v->len))
		return errs->size_range;
	*key = sec_dup(v->val, v->len);
	*keylen = v->len;
	return *key ? CKR_OK : CKR_HOST_MEMORY;
}

/* The same for key handle h (secrets loaded). */
CK_RV op_key_inlock(session_t *s, CK_OBJECT_HANDLE h, const mech_info *mi,
		    CK_ATTRIBUTE_TYPE usage, const key_errs *errs,
		    uint8_t **key, size_t *keylen)
{
	object_t *o;
	CK_RV rv = object_inlock(s, h, true, &o);
	if (rv == CKR_OBJECT_HANDLE_INVALID)
		return errs->handle_invalid;
	GUARD(rv);
	return local_key_inlock(o, mi, usage, errs, key, keylen);
}

CK_RV key_for_op_inlock(session_t *s, CK_OBJECT_HANDLE h, const mech_info *mi,
			CK_ATTRIBUTE_TYPE usage, const key_errs *errs, op_key *k)
{
	memset(k, 0, sizeof(*k));
	object_t *o;
	CK_RV rv = object_inlock(s, h, true, &o); /* KMS objects load nothing */
	if (rv == CKR_OBJECT_HANDLE_INVALID)
		return errs->handle_invalid;
	GUARD(rv);
	if (!o->kms) {
		if (mi->remote || mi->kms_only) {
			log_info("api", "%s needs a KMS key object", mi->name);
			return errs->type_inconsistent;
		}
		return local_key_inlock(o, mi, usage, errs, &k->key, &k->keylen);
	}
	/* The envelope runs on the secret faces; a standard mechanism on the
	 * face of its key type (docs/REMOTE.md). */
	bool fits = mi->remote ? o->kms_role == KMS_ROLE_ENVELOPE || o->kms_role == KMS_ROLE_AES
			       : mech_kms_capable(mi) &&
					 obj_ulong(o, CKA_KEY_TYPE, 0) == mi->key_type;
	if (!fits) {
		log_info("api", "%s cannot run on KMS key object \"%s\" (key type 0x%lx)",
			 mi->name, s->tok->cfg->keys[o->kms_index].label,
			 (unsigned long)obj_ulong(o, CKA_KEY_TYPE, 0));
		return errs->type_inconsistent;
	}
	if (!obj_bool(o, usage, false)) {
		log_info("api", "key usage attribute 0x%lx is false", (unsigned long)usage);
		return CKR_KEY_FUNCTION_NOT_PERMITTED;
	}
	/* No check of the sealing key's state: the KMS answers for this key
	 * (unseal_for_key). */
	const kms_key_cfg *kc = &s->tok->cfg->keys[o->kms_index];
	const attr_t *n = obj_attr(o, CKA_MODULUS);
	k->kms = true;
	k->kid = kc->id;
	k->idx = o->kms_index;
	k->bits = kc->bits;
	k->modlen = n ? n->len : 0;
	return CKR_OK;
}

/* Start a cipher operation on k. No lock held: a KMS key may need the KMS. */
CK_RV op_start(cipher_op *op, const mech_info *mi, CK_MECHANISM_PTR m, token_t *tok,
	       const op_key *k, bool encrypt, bool key_op)
{
	if (!k->kms)
		return cipher_op_init(op, mi, m, k->key, k->keylen, encrypt);
	kms_port port = token_kms_port(tok);
	if (mi->remote)
		return cipher_op_init_remote(op, mi, m, &port, k->kid, encrypt);
	return cipher_op_init_kms(op, mi, m, &port, k->idx, k->bits, k->modlen, encrypt, key_op);
}

/* The same for C_WrapKey / C_UnwrapKey: the envelope asks the KMS in the
 * protected domain for sensitive keys (docs/SECURITY.md). */
static CK_RV key_op_start(cipher_op *op, const mech_info *mi, CK_MECHANISM_PTR m,
			  token_t *tok, const op_key *k, bool encrypt, bool protected_domain)
{
	if (!k->kms || !mi->remote)
		return op_start(op, mi, m, tok, k, encrypt, true);
	kms_port port = token_kms_port(tok);
	return cipher_op_init_remote_key(op, mi, m, &port, k->kid, encrypt, protected_domain);
}

/* PKCS #11 5.1.7: the session's errors (5.1.2) outrank all others; among
 * the rest this module answers in one order (docs/CONFORMANCE.md): the
 * caller's pointers, the mechanism, its parameter, then the key. */
CK_RV session_mech_inlock(CK_SESSION_HANDLE h, CK_MECHANISM_PTR m, CK_FLAGS need,
			  bool args_ok, session_t **s, const mech_info **out)
{
	if (!(*s = session_inlock(h)))
		return CKR_SESSION_HANDLE_INVALID;
	if (!m || !args_ok) {
		log_info("api", "%s", m ? "a required argument is NULL" : "pMechanism is NULL");
		return CKR_ARGUMENTS_BAD;
	}
	const mech_info *mi = mech_lookup(m->mechanism);
	if (!mi || !(mi->flags & need)) {
		log_info("api", "mechanism 0x%lx is not offered for this function",
			 (unsigned long)m->mechanism);
		return CKR_MECHANISM_INVALID;
	}
	if (!mech_offered_inlock((*s)->tok, mi)) {
		log_info("api", "%s is offered only on slots with a KMS key of its type",
			 mi->name);
		return CKR_MECHANISM_INVALID;
	}
	/* The message API's parameters come with each message (3.0 5.14):
	 * here only the pointer is checked. */
	CK_RV rv = !(need & (CKF_MESSAGE_ENCRYPT | CKF_MESSAGE_DECRYPT)) ? mi->check_param(m)
		   : m->ulParameterLen && !m->pParameter		 ? CKR_MECHANISM_PARAM_INVALID
									 : CKR_OK;
	if (rv != CKR_OK) {
		log_info("api", "%s: bad mechanism parameter", mi->name);
		return rv;
	}
	*out = mi;
	return CKR_OK;
}

/* --- key management ---------------------------------------------------- */

CK_RV ep_GenerateKey(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism,
		     CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulCount,
		     CK_OBJECT_HANDLE_PTR phKey)
{
	const mech_info *mi = NULL;
	session_t *s;
	GUARD(enter());
	CK_RV rv = session_mech_inlock(hSession, pMechanism, CKF_GENERATE,
				       phKey && (pTemplate || !ulCount), &s, &mi);
	UNLOCK();
	GUARD(LEAVE(rv));
	GUARD(LEAVE(tmpl_check(pTemplate, ulCount)));
	const CK_ATTRIBUTE *a = tmpl_find(pTemplate, ulCount, CKA_CLASS);
	CK_ULONG v;
	if (a && (memcpy(&v, a->pValue, sizeof(v)), v != CKO_SECRET_KEY))
		return LEAVE(CKR_TEMPLATE_INCONSISTENT);
	a = tmpl_find(pTemplate, ulCount, CKA_KEY_TYPE);
	if (a && (memcpy(&v, a->pValue, sizeof(v)), v != mi->key_type))
		return LEAVE(CKR_TEMPLATE_INCONSISTENT);
	a = tmpl_find(pTemplate, ulCount, CKA_VALUE_LEN);
	if (!a)
		return LEAVE(CKR_TEMPLATE_INCOMPLETE);
	memcpy(&v, a->pValue, sizeof(v));
	if (!mech_key_ok(mi, v) || v > 512) {
		log_info("api", "%s: CKA_VALUE_LEN %lu is not a valid key length",
			 mi->name, (unsigned long)v);
		return LEAVE(CKR_ATTRIBUTE_VALUE_INVALID);
	}
	uint8_t *key = sec_alloc(v);
	if (!key)
		return LEAVE(CKR_HOST_MEMORY);
	if (!crypto_random(key, v)) {
		sec_free(key);
		return LEAVE(CKR_FUNCTION_FAILED);
	}
	CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
	CK_KEY_TYPE kt = mi->key_type;
	CK_MECHANISM_TYPE gm = mi->type;
	CK_ATTRIBUTE extra[] = {
		{CKA_VALUE, key, v},
		{CKA_CLASS, &cls, sizeof(cls)},
		{CKA_KEY_TYPE, &kt, sizeof(kt)},
		{CKA_KEY_GEN_MECHANISM, &gm, sizeof(gm)},
	};
	unsigned waited = 0;
	do { /* again while the store is busy (slots_busy_wait) */
		rv = enter();
		if (rv != CKR_OK) {
			sec_free(key);
			return rv;
		}
		rv = unseal_if_needed(hSession, tmpl_says_token(pTemplate, ulCount));
		s = session_inlock(hSession);
		object_t *o = NULL;
		if (rv == CKR_OK && !s)
			rv = CKR_SESSION_CLOSED; /* while the lock was released */
		if (rv == CKR_OK)
			rv = obj_build(ORIGIN_GENERATE, pTemplate, ulCount, extra,
				       ARRAY_SIZE(extra), (obj_actor){.so = s->tok->login == CKU_SO},
				       &o);
		if (rv == CKR_OK)
			rv = publish_inlock(s, o, phKey);
		UNLOCK();
	} while (slots_busy_wait(&rv, &waited));
	sec_free(key);
	return LEAVE(rv);
}

CK_RV ep_WrapKey(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism,
		 CK_OBJECT_HANDLE hWrappingKey, CK_OBJECT_HANDLE hKey,
		 CK_BYTE_PTR pWrappedKey, CK_ULONG_PTR pulWrappedKeyLen)
{
	const mech_info *mi = NULL;
	session_t *s;
	uint8_t *kv = NULL;
	size_t kvlen = 0;
	op_key k = {0};
	object_t *o = NULL, *w = NULL;
	GUARD(enter());
	CK_RV rv = session_mech_inlock(hSession, pMechanism, CKF_WRAP, pulWrappedKeyLen != NULL,
				       &s, &mi);
	if (rv == CKR_OK)
		rv = unseal_for_key(hSession, hWrappingKey,
				    handle_needs_tk_inlock(hWrappingKey) ||
					    handle_needs_tk_inlock(hKey));
	/* the KMS said the key is not what it was declared (unseal_for_key
	 * asks it for a key pair's role) */
	rv = kms_key_refused(rv, wrapping_key.type_inconsistent);
	if (rv == CKR_OK && !(s = session_inlock(hSession)))
		rv = CKR_SESSION_CLOSED; /* while the lock was released */
	if (rv == CKR_OK)
		rv = key_for_op_inlock(s, hWrappingKey, mi, CKA_WRAP, &wrapping_key, &k);
	if (rv == CKR_OK)
		rv = object_inlock(s, hKey, true, &o);
	if (rv == CKR_OBJECT_HANDLE_INVALID)
		rv = CKR_KEY_HANDLE_INVALID;
	if (rv == CKR_OK && obj_ulong(o, CKA_CLASS, 0) != CKO_SECRET_KEY)
		rv = CKR_KEY_NOT_WRAPPABLE;
	if (rv == CKR_OK && !obj_bool(o, CKA_EXTRACTABLE, false))
		rv = CKR_KEY_UNEXTRACTABLE;
	if (rv == CKR_OK && obj_bool(o, CKA_WRAP_WITH_TRUSTED, false)) {
		(void)object_inlock(s, hWrappingKey, false, &w);
		if (!w || !obj_bool(w, CKA_TRUSTED, false))
			rv = CKR_KEY_NOT_WRAPPABLE;
	}
	if (rv == CKR_OK) {
		const attr_t *v = obj_attr(o, CKA_VALUE);
		kv = v ? sec_dup(v->val, v->len) : NULL;
		kvlen = v ? v->len : 0;
		if (!kv)
			rv = CKR_HOST_MEMORY;
	}
	/* Read under the lock: once it is released another thread may close
	 * the session and free it. The token itself lives as long as the
	 * module. */
	token_t *tok = rv == CKR_OK ? s->tok : NULL;
	/* A sensitive key goes into the envelope's protected domain. */
	bool protected_domain = rv == CKR_OK && obj_bool(o, CKA_SENSITIVE, true);
	UNLOCK();
	if (rv == CKR_OK) {
		cipher_op op;
		rv = key_op_start(&op, mi, pMechanism, tok, &k, true, protected_domain);
		if (rv == CKR_OK)
			rv = op.impl->oneshot(&op, kv, kvlen, pWrappedKey, pulWrappedKeyLen);
		cipher_op_free(&op);
		if (rv == CKR_DATA_LEN_RANGE)
			rv = CKR_KEY_SIZE_RANGE;
		rv = kms_key_refused(rv, CKR_WRAPPING_KEY_TYPE_INCONSISTENT);
		if (rv != CKR_OK && rv != CKR_BUFFER_TOO_SMALL && k.kms &&
		    rv != CKR_MECHANISM_PARAM_INVALID)
			note_remote_failure(hSession);
	}
	sec_free(k.key);
	sec_free(kv);
	return LEAVE(rv);
}

CK_RV ep_UnwrapKey(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism,
		   CK_OBJECT_HANDLE hUnwrappingKey, CK_BYTE_PTR pWrappedKey,
		   CK_ULONG ulWrappedKeyLen, CK_ATTRIBUTE_PTR pTemplate,
		   CK_ULONG ulAttributeCount, CK_OBJECT_HANDLE_PTR phKey)
{
	const mech_info *mi = NULL;
	session_t *s;
	op_key k = {0};
	GUARD(enter());
	CK_RV rv = session_mech_inlock(hSession, pMechanism, CKF_UNWRAP,
				       phKey && pWrappedKey && (pTemplate || !ulAttributeCount),
				       &s, &mi);
	if (rv == CKR_OK)
		rv = tmpl_check(pTemplate, ulAttributeCount);
	if (rv == CKR_OK)
		rv = unseal_for_key(hSession, hUnwrappingKey,
				    handle_needs_tk_inlock(hUnwrappingKey) ||
					    tmpl_says_token(pTemplate, ulAttributeCount));
	rv = kms_key_refused(rv, unwrapping_key.type_inconsistent);
	if (rv == CKR_OK && !(s = session_inlock(hSession)))
		rv = CKR_SESSION_CLOSED; /* while the lock was released */
	if (rv == CKR_OK)
		rv = key_for_op_inlock(s, hUnwrappingKey, mi, CKA_UNWRAP, &unwrapping_key, &k);
	/* What a trusted key unwraps may hold keys that only trusted keys may
	 * wrap: the result must be as protected (docs/SECURITY.md). */
	object_t *uw = NULL;
	if (rv == CKR_OK)
		(void)object_inlock(s, hUnwrappingKey, false, &uw);
	bool want_protected = rv == CKR_OK && tmpl_protected(pTemplate, ulAttributeCount);
	bool protect = uw && !uw->kms && obj_bool(uw, CKA_TRUSTED, false);
	bool uw_derived = uw && uw->kms_derived;
	bool envelope = rv == CKR_OK && k.kms && mi->remote;
	token_t *tok = rv == CKR_OK ? s->tok : NULL;
	UNLOCK();
	uint8_t *val = NULL;
	CK_ULONG vlen = ulWrappedKeyLen;
	if (rv == CKR_OK && !(val = sec_alloc(vlen ? vlen : 1)))
		rv = CKR_HOST_MEMORY;
	bool ran = rv == CKR_OK;
	/* The envelope: a protected key comes from the protected domain, or
	 * else from a blob of the caller's own context (an SDK's, or a
	 * non-sensitive key's); a weaker key only from the latter. */
	for (int pass = envelope && want_protected ? 0 : 1; rv == CKR_OK && pass < 2; pass++) {
		cipher_op op;
		vlen = ulWrappedKeyLen;
		rv = key_op_start(&op, mi, pMechanism, tok, &k, false, pass == 0);
		if (rv == CKR_OK)
			rv = op.impl->oneshot(&op, pWrappedKey, ulWrappedKeyLen, val, &vlen);
		cipher_op_free(&op); /* every init starts from a zeroed op */
		protect |= envelope && pass == 0 && rv == CKR_OK;
		if (pass == 0 && rv == CKR_ENCRYPTED_DATA_INVALID)
			rv = CKR_OK; /* not of the protected domain: try the caller's */
		else
			break;
	}
	if (ran) {
		if (rv != CKR_OK && k.kms && rv != CKR_MECHANISM_PARAM_INVALID)
			note_remote_failure(hSession);
		rv = kms_key_refused(rv, CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT);
		if (rv == CKR_ENCRYPTED_DATA_INVALID)
			rv = CKR_WRAPPED_KEY_INVALID;
		else if (rv == CKR_ENCRYPTED_DATA_LEN_RANGE || rv == CKR_BUFFER_TOO_SMALL)
			rv = CKR_WRAPPED_KEY_LEN_RANGE;
	}
	sec_free(k.key);
	if (rv != CKR_OK) {
		sec_free(val);
		return LEAVE(rv);
	}
	CK_ATTRIBUTE extra[] = {{CKA_VALUE, val, vlen}};
	unsigned waited = 0;
	do { /* again while the store is busy (slots_busy_wait); the KMS is not asked again */
		rv = enter();
		if (rv != CKR_OK) {
			sec_free(val);
			return rv;
		}
		s = session_inlock(hSession);
		object_t *o = NULL;
		if (!s)
			rv = CKR_SESSION_CLOSED; /* while the KMS was asked */
		if (rv == CKR_OK) {
			rv = obj_build(ORIGIN_UNWRAP, pTemplate, ulAttributeCount, extra, 1,
				       (obj_actor){.so = s->tok->login == CKU_SO,
						   .protect = protect},
				       &o);
			if (rv == CKR_ATTRIBUTE_VALUE_INVALID &&
			    !tmpl_find(pTemplate, ulAttributeCount, CKA_CLASS))
				rv = CKR_TEMPLATE_INCOMPLETE;
		}
		if (rv == CKR_OK) {
			/* Wiped if the KMS key is revoked; so is a key
			 * unwrapped under such a key. */
			o->kms_derived = k.kms || uw_derived;
			rv = publish_inlock(s, o, phKey);
		}
		UNLOCK();
	} while (slots_busy_wait(&rv, &waited));
	sec_free(val);
	return LEAVE(rv);
}

/* --- random -------------------------------------------------------------- */

CK_RV ep_SeedRandom(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pSeed, CK_ULONG ulSeedLen)
{
	GUARD(enter());
	CK_RV rv = !session_inlock(hSession) ? CKR_SESSION_HANDLE_INVALID
		   : !pSeed && ulSeedLen    ? CKR_ARGUMENTS_BAD
					    : CKR_RANDOM_SEED_NOT_SUPPORTED;
	UNLOCK();
	if (rv == CKR_RANDOM_SEED_NOT_SUPPORTED) /* NSS seeds every token: expected */
		log_debug("api", "the module's generator takes no seed (OpenSSL seeds it)");
	return LEAVE(rv);
}

CK_RV ep_GenerateRandom(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pRandomData,
			CK_ULONG ulRandomLen)
{
	GUARD(enter());
	CK_RV rv = !session_inlock(hSession)	? CKR_SESSION_HANDLE_INVALID
		   : !pRandomData && ulRandomLen ? CKR_ARGUMENTS_BAD
						 : CKR_OK;
	UNLOCK();
	if (rv == CKR_OK && !crypto_random(pRandomData, ulRandomLen))
		rv = CKR_FUNCTION_FAILED;
	return LEAVE(rv);
}
