/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Encrypt, decrypt (PKCS #11 5.8, 5.9), digest (5.10), sign and verify
 * (5.11, 5.13): one operation per kind per session, run with the module
 * lock released and the session's operation lock held. The mechanisms
 * themselves are in mech.c (the table), aes.c, remote.c and mac.c.
 */
#include "gate.h"

/* --- encrypt / decrypt -------------------------------------------------- */

/* End an operation. A plain (non-secret) hold buffer, the ciphertext
 * multi-part GCM decryption gathers, is kept for the session's next
 * operation: growing a fresh one each message costs page faults and
 * copies that dwarf the decryption itself. So is a local operation's
 * cipher context, its key schedule scrubbed (cipher_keep): the next
 * operation keys it without allocating one. */
#define SPARE_MAX (16u * 1024 * 1024)
void end_cipher_op(session_t *s, cipher_op *op)
{
	if (op->buf.p && !op->buf.secret && op->buf.cap <= SPARE_MAX && !s->spare.p) {
		s->spare = op->buf;
		s->spare.len = 0;
		s->spare.failed = false;
		memset(&op->buf, 0, sizeof(op->buf));
	}
	cipher_op_end_keep(op);
}

/* Lend the spare buffer to a new operation that holds plain data. */
static void lend_spare(session_t *s, cipher_op *op)
{
	if (!s->spare.p || op->buf.secret || op->buf.p)
		return;
	size_t max = op->buf.max;
	op->buf = s->spare;
	op->buf.max = max;
	memset(&s->spare, 0, sizeof(s->spare));
}

/* --- revocation of running operations ---------------------------------- */

op_live op_live_of_inlock(const session_t *s, CK_OBJECT_HANDLE h, bool kms)
{
	/* A KMS key object is not stopped by a revoked sealing key (its own
	 * key's state decides, in the KMS: unseal_for_key). A session key
	 * unwrapped through the KMS is destroyed at revocation, and every
	 * local operation fails while the token is revoked. */
	const object_t *o = hmap_get(&slots.objects, h);
	return (op_live){.local = !kms, .tk = o && !o->kms && !o->session,
			 .epoch = s->tok->tk_epoch};
}

op_live_snap op_live_now(CK_SESSION_HANDLE h)
{
	op_live_snap now = {CKR_OK, 0};
	if (enter() != CKR_OK)
		return now; /* op_begin answers */
	now.rv = unseal_if_needed(h, false);
	session_t *s = session_inlock(h);
	if (s)
		now.epoch = s->tok->tk_epoch;
	UNLOCK();
	return now;
}

/* op_live_now and op_begin in one hold of the module lock: the per-call
 * path of the cipher functions takes it once. */
static CK_RV op_begin_live(CK_SESSION_HANDLE h, session_t **out, op_live_snap *now)
{
	*now = (op_live_snap){CKR_OK, 0};
	GUARD(enter());
	now->rv = unseal_if_needed(h, false);
	session_t *s = session_inlock(h);
	if (!s) {
		UNLOCK();
		return CKR_SESSION_HANDLE_INVALID;
	}
	now->epoch = s->tok->tk_epoch;
	sess_ref_inlock(s);
	UNLOCK();
	pthread_mutex_lock(&s->oplock);
	*out = s;
	return CKR_OK;
}

bool op_revoked(const op_live *l, op_live_snap now)
{
	if (!l->local)
		return false;
	if (now.rv == CKR_DEVICE_ERROR) {
		log_info("api", "the token was revoked: the operation is ended");
		return true;
	}
	if (l->tk && now.epoch != l->epoch) {
		log_info("api", "the token key the operation's key was loaded under is gone "
				"(revoked, logged out or rekeyed): the operation is ended");
		return true;
	}
	return false;
}

static CK_RV crypt_init(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism,
			CK_OBJECT_HANDLE hKey, bool enc)
{
	const mech_info *mi = NULL;
	session_t *s;
	op_key k = {0};
	GUARD(enter());
	CK_RV rv = session_mech_inlock(hSession, pMechanism, enc ? CKF_ENCRYPT : CKF_DECRYPT,
				       true, &s, &mi);
	if (rv == CKR_OK)
		rv = unseal_for_key(hSession, hKey, handle_needs_tk_inlock(hKey));
	if (rv == CKR_OK && !(s = session_inlock(hSession)))
		rv = CKR_SESSION_CLOSED; /* while the lock was released */
	if (rv == CKR_OK)
		rv = key_for_op_inlock(s, hKey, mi, enc ? CKA_ENCRYPT : CKA_DECRYPT, &plain_key,
				       &k);
	if (rv != CKR_OK) {
		UNLOCK();
		return rv;
	}
	op_live live = op_live_of_inlock(s, hKey, k.kms);
	sess_ref_inlock(s);
	UNLOCK();
	/* The operation's state is the session's, under its operation lock:
	 * checked last (docs/CONFORMANCE.md). */
	pthread_mutex_lock(&s->oplock);
	cipher_op *op = enc ? &s->enc : &s->dec;
	if (cipher_op_active(op)) {
		log_info("api", "an %s operation is already active in this session",
			 enc ? "encryption" : "decryption");
		rv = CKR_OPERATION_ACTIVE;
	} else if (k.kms) {
		cipher_keep_free(&op->keep);
		rv = op_start(op, mi, pMechanism, s->tok, &k, enc, false);
	} else {
		cipher_keep keep = op->keep;
		memset(&op->keep, 0, sizeof(op->keep));
		rv = cipher_op_init_kept(op, &keep, mi, pMechanism, k.key, k.keylen, enc);
	}
	if (rv == CKR_OK)
		op->live = live;
	if (rv == CKR_OK && !k.kms)
		lend_spare(s, op);
	sec_free(k.key);
	op_end(s);
	if (rv != CKR_OK && rv != CKR_OPERATION_ACTIVE && k.kms &&
	    rv != CKR_MECHANISM_PARAM_INVALID)
		note_remote_failure(hSession);
	return rv;
}

/* Does this result end the operation? (PKCS #11 5.2) */
static bool op_continues(CK_RV rv, const void *out)
{
	return rv == CKR_BUFFER_TOO_SMALL || (rv == CKR_OK && !out);
}

/* The state and argument checks every call on a running operation makes,
 * in this order (docs/CONFORMANCE.md): none active, a single-part call
 * after an Update, a NULL pointer the call needs. */
static CK_RV op_state(bool active, bool oneshot_after_update, bool args_ok, const char *what)
{
	if (!active) {
		log_info("api", "no %s operation is active in this session", what);
		return CKR_OPERATION_NOT_INITIALIZED;
	}
	if (oneshot_after_update) {
		/* v3.0 5.8-5.13: the single-part call "cannot be used to
		 * terminate a multi-part operation"; as any error but
		 * CKR_BUFFER_TOO_SMALL, it ends the operation. */
		log_info("api", "a single-part call after an Update: the %s operation "
				"is ended", what);
		return CKR_OPERATION_ACTIVE;
	}
	if (!args_ok) {
		log_info("api", "a required argument is NULL");
		return CKR_ARGUMENTS_BAD;
	}
	return CKR_OK;
}

static CK_RV crypt_oneshot(CK_SESSION_HANDLE hSession, bool enc, CK_BYTE_PTR in,
			   CK_ULONG inlen, CK_BYTE_PTR out, CK_ULONG_PTR outlen)
{
	session_t *s;
	op_live_snap now;
	GUARD(op_begin_live(hSession, &s, &now));
	cipher_op *op = enc ? &s->enc : &s->dec;
	bool active = cipher_op_active(op);
	CK_RV rv = op_state(active, active && op->multipart, (in || !inlen) && outlen,
			    enc ? "encryption" : "decryption");
	if (rv == CKR_OK && op_revoked(&op->live, now))
		rv = CKR_DEVICE_ERROR;
	bool ran = rv == CKR_OK;
	if (ran)
		rv = op->impl->oneshot(op, in ? in : (CK_BYTE_PTR) "", inlen, out, outlen);
	bool remote_failed = ran && op->kms.tok && rv != CKR_OK && rv != CKR_BUFFER_TOO_SMALL;
	if (active && !op_continues(rv, out))
		end_cipher_op(s, op);
	op_end(s);
	if (remote_failed)
		note_remote_failure(hSession);
	return remote_failed ? kms_key_refused(rv, CKR_DEVICE_ERROR) : rv;
}

static CK_RV crypt_update(CK_SESSION_HANDLE hSession, bool enc, CK_BYTE_PTR in,
			  CK_ULONG inlen, CK_BYTE_PTR out, CK_ULONG_PTR outlen)
{
	session_t *s;
	op_live_snap now;
	GUARD(op_begin_live(hSession, &s, &now));
	cipher_op *op = enc ? &s->enc : &s->dec;
	bool active = cipher_op_active(op);
	CK_RV rv = op_state(active, false, (in || !inlen) && outlen,
			    enc ? "encryption" : "decryption");
	if (rv == CKR_OK && op_revoked(&op->live, now))
		rv = CKR_DEVICE_ERROR;
	if (rv == CKR_OK)
		rv = op->impl->update(op, in ? in : (CK_BYTE_PTR) "", inlen, out, outlen);
	if (rv == CKR_OK && out)
		op->multipart = true;
	if (active && !op_continues(rv, out) && rv != CKR_OK)
		end_cipher_op(s, op);
	op_end(s);
	return rv;
}

static CK_RV crypt_final(CK_SESSION_HANDLE hSession, bool enc, CK_BYTE_PTR out,
			 CK_ULONG_PTR outlen)
{
	session_t *s;
	op_live_snap now;
	GUARD(op_begin_live(hSession, &s, &now));
	cipher_op *op = enc ? &s->enc : &s->dec;
	bool active = cipher_op_active(op);
	CK_RV rv = op_state(active, false, outlen != NULL, enc ? "encryption" : "decryption");
	if (rv == CKR_OK && op_revoked(&op->live, now))
		rv = CKR_DEVICE_ERROR;
	bool ran = rv == CKR_OK;
	if (ran)
		rv = op->impl->final(op, out, outlen);
	bool remote_failed = ran && op->kms.tok && rv != CKR_OK && rv != CKR_BUFFER_TOO_SMALL;
	if (active && !op_continues(rv, out))
		end_cipher_op(s, op);
	op_end(s);
	if (remote_failed)
		note_remote_failure(hSession);
	return remote_failed ? kms_key_refused(rv, CKR_DEVICE_ERROR) : rv;
}

CK_RV ep_EncryptInit(CK_SESSION_HANDLE h, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE k)
{
	return LEAVE(crypt_init(h, m, k, true));
}
CK_RV ep_Encrypt(CK_SESSION_HANDLE h, CK_BYTE_PTR in, CK_ULONG inlen,
		 CK_BYTE_PTR out, CK_ULONG_PTR outlen)
{
	return LEAVE(crypt_oneshot(h, true, in, inlen, out, outlen));
}
CK_RV ep_EncryptUpdate(CK_SESSION_HANDLE h, CK_BYTE_PTR in, CK_ULONG inlen,
		       CK_BYTE_PTR out, CK_ULONG_PTR outlen)
{
	return LEAVE(crypt_update(h, true, in, inlen, out, outlen));
}
CK_RV ep_EncryptFinal(CK_SESSION_HANDLE h, CK_BYTE_PTR out, CK_ULONG_PTR outlen)
{
	return LEAVE(crypt_final(h, true, out, outlen));
}
CK_RV ep_DecryptInit(CK_SESSION_HANDLE h, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE k)
{
	return LEAVE(crypt_init(h, m, k, false));
}
CK_RV ep_Decrypt(CK_SESSION_HANDLE h, CK_BYTE_PTR in, CK_ULONG inlen,
		 CK_BYTE_PTR out, CK_ULONG_PTR outlen)
{
	return LEAVE(crypt_oneshot(h, false, in, inlen, out, outlen));
}
CK_RV ep_DecryptUpdate(CK_SESSION_HANDLE h, CK_BYTE_PTR in, CK_ULONG inlen,
		       CK_BYTE_PTR out, CK_ULONG_PTR outlen)
{
	return LEAVE(crypt_update(h, false, in, inlen, out, outlen));
}
CK_RV ep_DecryptFinal(CK_SESSION_HANDLE h, CK_BYTE_PTR out, CK_ULONG_PTR outlen)
{
	return LEAVE(crypt_final(h, false, out, outlen));
}

/* --- digest, sign, verify -------------------------------------------- */

typedef enum mac_which { MW_DIGEST, MW_SIGN, MW_VERIFY } mac_which;

static mac_op *mac_slot(session_t *s, mac_which w)
{
	return w == MW_DIGEST ? &s->dig : w == MW_SIGN ? &s->sig : &s->ver;
}

static const char *mac_what(mac_which w)
{
	return w == MW_DIGEST ? "digest" : w == MW_SIGN ? "signing" : "verification";
}

static CK_RV mac_init(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism,
		      CK_OBJECT_HANDLE hKey, mac_which w)
{
	const mech_info *mi = NULL;
	session_t *s;
	uint8_t *key = NULL;
	size_t keylen = 0;
	op_key k = {0};
	CK_FLAGS need = w == MW_DIGEST ? CKF_DIGEST : w == MW_SIGN ? CKF_SIGN : CKF_VERIFY;
	GUARD(enter());
	CK_RV rv = session_mech_inlock(hSession, pMechanism, need, true, &s, &mi);
	if (rv == CKR_OK && w != MW_DIGEST) {
		rv = unseal_for_key(hSession, hKey, handle_needs_tk_inlock(hKey));
		if (rv == CKR_OK && !(s = session_inlock(hSession)))
			rv = CKR_SESSION_CLOSED; /* while the lock was released */
		CK_ATTRIBUTE_TYPE usage = w == MW_SIGN ? CKA_SIGN : CKA_VERIFY;
		/* A KMS key pair signs in the KMS (module/sign.c). */
		if (rv == CKR_OK && mi->mac == MAC_ASYM)
			rv = key_for_op_inlock(s, hKey, mi, usage, &plain_key, &k);
		else if (rv == CKR_OK)
			rv = op_key_inlock(s, hKey, mi, usage, &plain_key, &key, &keylen);
	}
	if (rv != CKR_OK) {
		UNLOCK();
		return rv;
	}
	/* A digest has no key, but is a local operation all the same: it
	 * ends, as every other, when the token is revoked. */
	op_live live = op_live_of_inlock(s, hKey, false);
	sess_ref_inlock(s);
	UNLOCK();
	pthread_mutex_lock(&s->oplock);
	mac_op *op = mac_slot(s, w);
	if (mac_op_active(op)) {
		log_info("api", "a %s operation is already active in this session", mac_what(w));
		rv = CKR_OPERATION_ACTIVE;
	} else if (mi->mac == MAC_ASYM) {
		kms_port port = token_kms_port(s->tok);
		rv = sign_op_init(op, mi, pMechanism, &port, k.idx, w == MW_VERIFY);
		op->live = live;
	} else {
		rv = mac_op_init(op, mi, pMechanism, key, keylen);
		op->live = live;
	}
	sec_free(key);
	op_end(s);
	if (rv != CKR_OK && rv != CKR_OPERATION_ACTIVE && mi->mac == MAC_ASYM)
		note_remote_failure(hSession);
	return rv;
}

/* Digest, sign and verify calls on a running operation. For C_Verify and
 * C_VerifyFinal, out/outlen carry the signature (*outlen its length). */
static CK_RV mac_run(CK_SESSION_HANDLE hSession, mac_which w, CK_BYTE_PTR in,
		     CK_ULONG inlen, CK_BYTE_PTR out, CK_ULONG_PTR outlen, bool update,
		     bool final)
{
	session_t *s;
	op_live_snap now;
	GUARD(op_begin_live(hSession, &s, &now));
	mac_op *op = mac_slot(s, w);
	bool active = mac_op_active(op);
	bool oneshot = !update && !final;
	bool args_ok = (in || !inlen) &&
		       (update || (w == MW_VERIFY ? out || !*outlen : outlen != NULL));
	CK_RV rv = op_state(active, active && oneshot && op->multipart, args_ok, mac_what(w));
	if (rv == CKR_OK && op_revoked(&op->live, now))
		rv = CKR_DEVICE_ERROR;
	bool keep = false; /* every error but a short buffer ends the operation */
	bool asym = active && op->mech->mac == MAC_ASYM;
	if (rv == CKR_OK && update && asym && !op->mech->multipart) {
		log_info("api", "%s is single-part: no %s", op->mech->name,
			 w == MW_SIGN ? "C_SignUpdate" : "C_VerifyUpdate");
		rv = CKR_FUNCTION_NOT_SUPPORTED;
	}
	if (rv == CKR_OK && update) {
		rv = mac_update(op, in ? in : (CK_BYTE_PTR) "", inlen);
		op->multipart = true;
		keep = rv == CKR_OK;
	} else if (rv == CKR_OK && w == MW_VERIFY) {
		/* C_Verify and C_VerifyFinal always end the operation. */
		if (oneshot)
			rv = mac_update(op, in ? in : (CK_BYTE_PTR) "", inlen);
		if (rv == CKR_OK)
			rv = mac_verify_final(op, out, *outlen);
	} else if (rv == CKR_OK && final) {
		rv = mac_final(op, out, outlen);
		keep = op_continues(rv, out);
	} else if (rv == CKR_OK) {
		rv = mac_oneshot(op, in ? in : (CK_BYTE_PTR) "", inlen, out, outlen);
		keep = op_continues(rv, out);
	}
	if (active && !keep)
		mac_op_free(op);
	op_end(s);
	/* The KMS refused a signature: C_Sign has no key type error, and
	 * ulDeviceError says why. */
	bool refused = asym && w == MW_SIGN &&
		       (rv == CKR_DEVICE_ERROR || rv == CKR_KEY_TYPE_INCONSISTENT);
	if (refused)
		note_remote_failure(hSession);
	return refused ? kms_key_refused(rv, CKR_DEVICE_ERROR) : rv;
}

CK_RV ep_DigestInit(CK_SESSION_HANDLE h, CK_MECHANISM_PTR m)
{
	return LEAVE(mac_init(h, m, CK_INVALID_HANDLE, MW_DIGEST));
}
CK_RV ep_Digest(CK_SESSION_HANDLE h, CK_BYTE_PTR in, CK_ULONG inlen,
		CK_BYTE_PTR out, CK_ULONG_PTR outlen)
{
	return LEAVE(mac_run(h, MW_DIGEST, in, inlen, out, outlen, false, false));
}
CK_RV ep_DigestUpdate(CK_SESSION_HANDLE h, CK_BYTE_PTR in, CK_ULONG inlen)
{
	return LEAVE(mac_run(h, MW_DIGEST, in, inlen, NULL, NULL, true, false));
}
CK_RV ep_DigestFinal(CK_SESSION_HANDLE h, CK_BYTE_PTR out, CK_ULONG_PTR outlen)
{
	return LEAVE(mac_run(h, MW_DIGEST, NULL, 0, out, outlen, false, true));
}

/* C_DigestKey: feed a secret key's value into the digest (v3.0 5.12). The
 * digest must be running (checked first, as for every call on a running
 * operation), and the module must hold the value: a KMS key object's
 * never leaves the KMS. SHA-2 is one-way, so a sensitive key may be
 * digested, as the spec allows. A refused key leaves the digest as it
 * was: the spec ends a digest on a failed C_DigestUpdate only. */
CK_RV ep_DigestKey(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hKey)
{
	session_t *s;
	GUARD(LEAVE(op_begin(hSession, &s)));
	CK_RV rv = op_state(mac_op_active(&s->dig), false, true, "digest");
	op_end(s);
	GUARD(LEAVE(rv));
	GUARD(enter());
	object_t *o = NULL;
	uint8_t *val = NULL;
	size_t vlen = 0;
	rv = unseal_if_needed(hSession, handle_needs_tk_inlock(hKey));
	if (rv == CKR_OK && !(s = session_inlock(hSession)))
		rv = CKR_SESSION_CLOSED; /* while the lock was released */
	if (rv == CKR_OK)
		rv = object_inlock(s, hKey, true, &o);
	if (rv == CKR_OBJECT_HANDLE_INVALID)
		rv = CKR_KEY_HANDLE_INVALID;
	const attr_t *v = rv == CKR_OK ? obj_attr(o, CKA_VALUE) : NULL;
	if (rv == CKR_OK && (obj_ulong(o, CKA_CLASS, 0) != CKO_SECRET_KEY || o->kms || !v)) {
		log_info("api", "%s", o->kms ? "a KMS key object's value never leaves the KMS"
				   : !v	  ? "the key has no value to digest"
					  : "only secret keys can be digested");
		rv = CKR_KEY_INDIGESTIBLE;
	}
	if (rv == CKR_OK) {
		vlen = v->len;
		if (!(val = sec_dup(v->val, vlen ? vlen : 1)))
			rv = CKR_HOST_MEMORY;
	}
	UNLOCK();
	if (rv == CKR_OK)
		rv = mac_run(hSession, MW_DIGEST, val, vlen, NULL, NULL, true, false);
	sec_free(val);
	return LEAVE(rv);
}

CK_RV ep_SignInit(CK_SESSION_HANDLE h, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE k)
{
	return LEAVE(mac_init(h, m, k, MW_SIGN));
}
CK_RV ep_Sign(CK_SESSION_HANDLE h, CK_BYTE_PTR in, CK_ULONG inlen,
	      CK_BYTE_PTR out, CK_ULONG_PTR outlen)
{
	return LEAVE(mac_run(h, MW_SIGN, in, inlen, out, outlen, false, false));
}
CK_RV ep_SignUpdate(CK_SESSION_HANDLE h, CK_BYTE_PTR in, CK_ULONG inlen)
{
	return LEAVE(mac_run(h, MW_SIGN, in, inlen, NULL, NULL, true, false));
}
CK_RV ep_SignFinal(CK_SESSION_HANDLE h, CK_BYTE_PTR out, CK_ULONG_PTR outlen)
{
	return LEAVE(mac_run(h, MW_SIGN, NULL, 0, out, outlen, false, true));
}
CK_RV ep_VerifyInit(CK_SESSION_HANDLE h, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE k)
{
	return LEAVE(mac_init(h, m, k, MW_VERIFY));
}
CK_RV ep_Verify(CK_SESSION_HANDLE h, CK_BYTE_PTR in, CK_ULONG inlen,
		CK_BYTE_PTR sig, CK_ULONG siglen)
{
	return LEAVE(mac_run(h, MW_VERIFY, in, inlen, sig, &siglen, false, false));
}
CK_RV ep_VerifyUpdate(CK_SESSION_HANDLE h, CK_BYTE_PTR in, CK_ULONG inlen)
{
	return LEAVE(mac_run(h, MW_VERIFY, in, inlen, NULL, NULL, true, false));
}
CK_RV ep_VerifyFinal(CK_SESSION_HANDLE h, CK_BYTE_PTR sig, CK_ULONG siglen)
{
	return LEAVE(mac_run(h, MW_VERIFY, NULL, 0, sig, &siglen, false, true));
}
