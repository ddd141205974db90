/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The PKCS #11 3.0 message-based encryption functions (5.14, 5.15) over
 * aead.c: the key identity for counter IVs, and the session plumbing.
 */
#include "gate.h"

/* --- message-based AEAD (PKCS #11 3.0 5.14, 5.15) ------------------------- */

static CK_RV kid_of(const uint8_t *tk, const uint8_t *key, size_t keylen, uint8_t *kid)
{
	/* The key's identity for IV counters: keyed by the token key, so the
	 * store reveals nothing about the key itself. */
	static const char label[] = "p11kms-gcm-iv-counter:v1:";
	mac_op m;
	CK_MECHANISM mech = {CKM_SHA256_HMAC, NULL, 0};
	CK_ULONG n = KID_LEN;
	GUARD(mac_op_init(&m, mech_lookup(CKM_SHA256_HMAC), &mech, tk, 32));
	CK_RV rv = mac_update(&m, (const uint8_t *)label, sizeof(label) - 1);
	if (rv == CKR_OK)
		rv = mac_update(&m, key, keylen);
	if (rv == CKR_OK)
		rv = mac_final(&m, kid, &n);
	mac_op_free(&m);
	return rv;
}

/* A message-based operation on a revoked token ends (docs/SECURITY.md):
 * unlike a refused message, which leaves it active (3.0 5.14). */
static bool msg_revoked(msg_op *op, op_live_snap now)
{
	if (!op->active || !op_revoked(&op->live, now))
		return false;
	msg_op_free(op);
	return true;
}

/* A message call with no message-based operation initialized. */
static CK_RV inactive(bool enc)
{
	log_info("api", "no message-based %s is active in this session",
		 enc ? "encryption" : "decryption");
	return CKR_OPERATION_NOT_INITIALIZED;
}

static CK_RV message_init(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism,
			  CK_OBJECT_HANDLE hKey, bool enc)
{
	const mech_info *mi = NULL;
	session_t *s;
	uint8_t *tk = NULL;
	op_key k = {0};
	GUARD(enter());
	CK_RV rv = session_mech_inlock(hSession, pMechanism,
				       enc ? CKF_MESSAGE_ENCRYPT : CKF_MESSAGE_DECRYPT, true, &s, &mi);
	if (rv == CKR_OK) {
		rv = unseal_if_needed(hSession, true);
		if (!(s = session_inlock(hSession)))
			rv = CKR_SESSION_CLOSED; /* while the lock was released */
		else if (rv == CKR_USER_NOT_LOGGED_IN || rv == CKR_USER_PIN_NOT_INITIALIZED)
			rv = CKR_OK; /* without the token key, counter IVs are refused later */
	}
	if (rv == CKR_OK)
		rv = key_for_op_inlock(s, hKey, mi, enc ? CKA_ENCRYPT : CKA_DECRYPT, &plain_key,
				       &k);
	if (rv == CKR_OK && !k.kms && s->tok->tk && !(tk = sec_dup(s->tok->tk, 32)))
		rv = CKR_HOST_MEMORY;
	if (rv != CKR_OK) {
		UNLOCK();
		sec_free(k.key);
		return rv;
	}
	op_live live = op_live_of_inlock(s, hKey, k.kms);
	sess_ref_inlock(s);
	UNLOCK();
	uint8_t kid[KID_LEN];
	if (tk)
		rv = kid_of(tk, k.key, k.keylen, kid);
	sec_free(tk);
	kms_port port = token_kms_port(s->tok);
	pthread_mutex_lock(&s->oplock);
	msg_op *op = enc ? &s->menc : &s->mdec;
	if (rv == CKR_OK && op->active) {
		log_info("api", "a message-based %s is already active in this session",
			 enc ? "encryption" : "decryption");
		rv = CKR_OPERATION_ACTIVE;
	} else if (rv == CKR_OK && k.kms)
		rv = msg_op_init_kms(op, pMechanism, enc, &port, k.idx, k.bits);
	else if (rv == CKR_OK)
		rv = msg_op_init(op, pMechanism, k.key, k.keylen, enc, tk ? kid : NULL);
	if (rv == CKR_OK)
		op->live = live;
	sec_free(k.key);
	op_end(s);
	return rv;
}

CK_RV ep_MessageEncryptInit(CK_SESSION_HANDLE h, CK_MECHANISM_PTR m,
			    CK_OBJECT_HANDLE k)
{
	return LEAVE(message_init(h, m, k, true));
}

CK_RV ep_MessageDecryptInit(CK_SESSION_HANDLE h, CK_MECHANISM_PTR m,
			    CK_OBJECT_HANDLE k)
{
	return LEAVE(message_init(h, m, k, false));
}

static CK_RV message_oneshot(CK_SESSION_HANDLE h, bool enc, CK_VOID_PTR param,
			     CK_ULONG plen, CK_BYTE_PTR aad, CK_ULONG aadlen,
			     CK_BYTE_PTR in, CK_ULONG inlen, CK_BYTE_PTR out,
			     CK_ULONG_PTR outlen)
{
	session_t *s;
	op_live_snap now = op_live_now(h);
	GUARD(op_begin(h, &s));
	msg_op *op = enc ? &s->menc : &s->mdec;
	if (msg_revoked(op, now)) {
		op_end(s);
		return CKR_DEVICE_ERROR;
	}
	CK_RV rv = op->active ? msg_oneshot(op, param, plen, aad, aadlen, in, inlen, out,
					    outlen, token_reserve_counter, s->tok)
			      : inactive(enc);
	/* Refused before the KMS was asked: no device error to give. */
	bool remote_failed = op->kms.tok && rv != CKR_OK && rv != CKR_BUFFER_TOO_SMALL &&
			     rv != CKR_MECHANISM_PARAM_INVALID && rv != CKR_ARGUMENTS_BAD &&
			     rv != CKR_OPERATION_ACTIVE;
	op_end(s); /* a failed message leaves the operation active */
	if (remote_failed)
		note_remote_failure(h);
	return remote_failed ? kms_key_refused(rv, CKR_DEVICE_ERROR) : rv;
}

CK_RV ep_EncryptMessage(CK_SESSION_HANDLE h, CK_VOID_PTR param, CK_ULONG plen,
			CK_BYTE_PTR aad, CK_ULONG aadlen, CK_BYTE_PTR in,
			CK_ULONG inlen, CK_BYTE_PTR out, CK_ULONG_PTR outlen)
{
	return LEAVE(message_oneshot(h, true, param, plen, aad, aadlen, in, inlen, out, outlen));
}

CK_RV ep_DecryptMessage(CK_SESSION_HANDLE h, CK_VOID_PTR param, CK_ULONG plen,
			CK_BYTE_PTR aad, CK_ULONG aadlen, CK_BYTE_PTR in,
			CK_ULONG inlen, CK_BYTE_PTR out, CK_ULONG_PTR outlen)
{
	return LEAVE(message_oneshot(h, false, param, plen, aad, aadlen, in, inlen, out, outlen));
}

static CK_RV message_begin(CK_SESSION_HANDLE h, bool enc, CK_VOID_PTR param,
			   CK_ULONG plen, CK_BYTE_PTR aad, CK_ULONG aadlen)
{
	session_t *s;
	op_live_snap now = op_live_now(h);
	GUARD(op_begin(h, &s));
	msg_op *op = enc ? &s->menc : &s->mdec;
	if (msg_revoked(op, now)) {
		op_end(s);
		return CKR_DEVICE_ERROR;
	}
	CK_RV rv = op->active ? msg_begin(op, param, plen, aad, aadlen,
					  token_reserve_counter, s->tok)
			      : inactive(enc);
	op_end(s);
	return rv;
}

CK_RV ep_EncryptMessageBegin(CK_SESSION_HANDLE h, CK_VOID_PTR param,
			     CK_ULONG plen, CK_BYTE_PTR aad, CK_ULONG aadlen)
{
	return LEAVE(message_begin(h, true, param, plen, aad, aadlen));
}

CK_RV ep_DecryptMessageBegin(CK_SESSION_HANDLE h, CK_VOID_PTR param,
			     CK_ULONG plen, CK_BYTE_PTR aad, CK_ULONG aadlen)
{
	return LEAVE(message_begin(h, false, param, plen, aad, aadlen));
}

static CK_RV message_next(CK_SESSION_HANDLE h, bool enc, CK_VOID_PTR param,
			  CK_ULONG plen, CK_BYTE_PTR in, CK_ULONG inlen, CK_BYTE_PTR out,
			  CK_ULONG_PTR outlen, CK_FLAGS flags)
{
	session_t *s;
	op_live_snap now = op_live_now(h);
	GUARD(op_begin(h, &s));
	msg_op *op = enc ? &s->menc : &s->mdec;
	if (msg_revoked(op, now)) {
		op_end(s);
		return CKR_DEVICE_ERROR;
	}
	CK_RV rv = op->active ? msg_next(op, param, plen, in, inlen, out, outlen, flags)
			      : inactive(enc);
	op_end(s);
	return rv;
}

CK_RV ep_EncryptMessageNext(CK_SESSION_HANDLE h, CK_VOID_PTR param,
			    CK_ULONG plen, CK_BYTE_PTR in, CK_ULONG inlen,
			    CK_BYTE_PTR out, CK_ULONG_PTR outlen, CK_FLAGS flags)
{
	return LEAVE(message_next(h, true, param, plen, in, inlen, out, outlen, flags));
}

CK_RV ep_DecryptMessageNext(CK_SESSION_HANDLE h, CK_VOID_PTR param,
			    CK_ULONG plen, CK_BYTE_PTR in, CK_ULONG inlen,
			    CK_BYTE_PTR out, CK_ULONG_PTR outlen, CK_FLAGS flags)
{
	return LEAVE(message_next(h, false, param, plen, in, inlen, out, outlen, flags));
}

static CK_RV message_final(CK_SESSION_HANDLE h, bool enc)
{
	session_t *s;
	GUARD(op_begin(h, &s));
	msg_op *op = enc ? &s->menc : &s->mdec;
	CK_RV rv = op->active ? CKR_OK : inactive(enc);
	if (op->active)
		msg_op_free(op);
	op_end(s);
	return rv;
}

CK_RV ep_MessageEncryptFinal(CK_SESSION_HANDLE h)
{
	return LEAVE(message_final(h, true));
}

CK_RV ep_MessageDecryptFinal(CK_SESSION_HANDLE h)
{
	return LEAVE(message_final(h, false));
}
