/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Private to module/: what the files of the PKCS #11 face share. Every C_*
 * goes through one gate (entry.c: enter() takes THE lock, slots.lock, and
 * refuses an uninitialized module; LEAVE logs the result), finds its
 * session under that lock (session.c), and calls into slots/ or the
 * mechanism table. Functions named *_inlock expect the lock held.
 *
 *   entry.c    the gate, fork handling, C_Initialize/C_Finalize/C_GetInfo,
 *              the function lists and interfaces, functions not offered
 *   session.c  slot and token info, mechanism lists, sessions, login and
 *              PINs, unseal at first need, the session's device error
 *   objects.c  object functions (create, copy, destroy, attributes, find)
 *   keys.c     the key of an operation; generate, wrap, unwrap, random
 *   crypt.c    encrypt, decrypt, digest, sign, verify
 *   msg.c      the PKCS #11 3.0 message-based AEAD functions
 *
 * No variables are defined here.
 */
#ifndef P11KMS_GATE_H
#define P11KMS_GATE_H

#include <stdlib.h>
#include <string.h>

#include "common/crypto.h"
#include "common/log.h"
#include "common/secmem.h"
#include "module.h"
#include "slots/asym.h"
#include "slots/audit.h"
#include "slots/config.h"
#include "slots/token.h"

#define LOCK() pthread_mutex_lock(&slots.lock)
#define UNLOCK() pthread_mutex_unlock(&slots.lock)

/* --- the gate (entry.c) --------------------------------------------------- */

/* Take the lock; CKR_CRYPTOKI_NOT_INITIALIZED (lock not held) if the
 * module is not initialized. */
CK_RV enter(void);
/* ... having named the calling function, for the audit log's "function"
 * (a thread-local, slots/audit.h). */
#define enter() (audit_caller_set(__func__), (enter)())
/* The one exit: failures are logged with the function's name. */
CK_RV leave(const char *fn, CK_RV rv);
#define LEAVE(rv) leave(__func__ + 3, rv)

/* --- sessions (session.c) --------------------------------------------------- */

session_t *session_inlock(CK_SESSION_HANDLE h);
/* The first checks of a call on session h, in the order of PKCS #11 5.1.7
 * (docs/CONFORMANCE.md): the session (CKR_SESSION_HANDLE_INVALID), then
 * the caller's pointers (args_ok, else CKR_ARGUMENTS_BAD: "<what> is
 * NULL"). Each refusal is logged. */
CK_RV session_args_inlock(CK_SESSION_HANDLE h, bool args_ok, const char *what,
			  session_t **s);
/* Session h looked up again after the lock was released (a KMS call, an
 * unseal): CKR_SESSION_CLOSED, logged, when it went meanwhile. */
CK_RV session_again_inlock(CK_SESSION_HANDLE h, session_t **s);
/* Log why (what was wrong), then answer rv. */
CK_RV api_refuse(CK_RV rv, const char *why);
void sess_ref_inlock(session_t *s);
void sess_unref(session_t *s);
/* Take a reference and the session's operation lock, the module lock
 * released; op_end gives both back. */
CK_RV op_begin(CK_SESSION_HANDLE h, session_t **out);
void op_end(session_t *s);
/* Read the token's revalidation verdict (waking the revalidation thread
 * when a check is due), and unseal the token key at first need
 * (login=optional). Called with the lock held and returns with it held,
 * but may release it while the KMS is asked (the unseal; a due check in
 * the no-thread fallback): look the session (and anything found through
 * it) up again afterwards. Not an _inlock function, by the lock rule
 * (docs/ARCHITECTURE.md). */
CK_RV unseal_if_needed(CK_SESSION_HANDLE h, bool needed);
/* The same for an operation on key: a KMS key object (config "keys") is
 * not stopped by a revoked sealing key, its own key's state decides (the
 * KMS refuses a disabled key). */
CK_RV unseal_for_key(CK_SESSION_HANDLE h, CK_OBJECT_HANDLE key, bool needed);
bool mech_offered_inlock(const token_t *t, const mech_info *m);
/* A remote operation failed: give the session the provider's reason. */
void note_remote_failure(CK_SESSION_HANDLE h);
/* The KMS refused the key after the operation began: report it as. */
CK_RV kms_key_refused(CK_RV rv, CK_RV as);

/* --- objects (objects.c) ---------------------------------------------------- */

bool user_visible(const session_t *s, const object_t *o);
CK_RV object_inlock(session_t *s, CK_OBJECT_HANDLE h, bool need_secret, object_t **out);
bool handle_needs_tk_inlock(CK_OBJECT_HANDLE h);
/* Make o visible, persisting a token object first. Takes o. */
CK_RV publish_inlock(session_t *s, object_t *o, CK_OBJECT_HANDLE *ph);
bool tmpl_says_token(const CK_ATTRIBUTE *tmpl, CK_ULONG n);

/* --- the key of an operation (keys.c) ---------------------------------------- */

typedef struct key_errs {
	CK_RV handle_invalid, type_inconsistent, size_range;
} key_errs;

/* The errors for an ordinary operation's key (the wrap functions have
 * their own, private to keys.c). */
extern const key_errs plain_key;

/* The key of an operation: a local key's value, or a KMS key object. */
typedef struct op_key {
	uint8_t *key; /* local keys: a secure copy of CKA_VALUE */
	size_t keylen;
	bool kms;
	const char *kid; /* KMS keys: the configured key */
	size_t idx, bits, modlen;
} op_key;

CK_RV op_key_inlock(session_t *s, CK_OBJECT_HANDLE h, const mech_info *mi,
		    CK_ATTRIBUTE_TYPE usage, const key_errs *errs, uint8_t **key,
		    size_t *keylen);
CK_RV key_for_op_inlock(session_t *s, CK_OBJECT_HANDLE h, const mech_info *mi,
			CK_ATTRIBUTE_TYPE usage, const key_errs *errs, op_key *k);
/* Start a cipher operation on k, no lock held (a KMS key may need the
 * KMS): locally, or through the token's KMS port. */
CK_RV op_start(cipher_op *op, const mech_info *mi, CK_MECHANISM_PTR m, token_t *tok,
	       const op_key *k, bool encrypt, bool key_op);
/* The first checks of a function that runs mechanism m, needing flag
 * need, in the order of PKCS #11 5.1.7 (docs/CONFORMANCE.md): session h
 * (CKR_SESSION_HANDLE_INVALID), the caller's pointers (m and args_ok, else
 * CKR_ARGUMENTS_BAD), the mechanism (CKR_MECHANISM_INVALID) and, but for
 * the message API, its parameter (CKR_MECHANISM_PARAM_INVALID). */
CK_RV session_mech_inlock(CK_SESSION_HANDLE h, CK_MECHANISM_PTR m, CK_FLAGS need,
			  bool args_ok, session_t **s, const mech_info **out);

/* --- operations (crypt.c) --------------------------------------------------- */

/* End a cipher operation, keeping a plain hold buffer for the session. */
void end_cipher_op(session_t *s, cipher_op *op);

/* Revocation of running operations (docs/SECURITY.md). op_live_of, under
 * the lock, after the key was found: what an operation on key h
 * remembers. op_live_now, with the lock NOT held, before op_begin: the
 * token's state now, revalidating it when due (the KMS is asked with the
 * lock released). op_revoked, under the session's oplock: does the
 * operation end with CKR_DEVICE_ERROR? (logged) */
typedef struct op_live_snap {
	CK_RV rv;       /* unseal_if_needed's: CKR_DEVICE_ERROR when revoked */
	uint64_t epoch; /* the token's tk_epoch */
} op_live_snap;
op_live op_live_of_inlock(const session_t *s, CK_OBJECT_HANDLE h, bool kms);
op_live_snap op_live_now(CK_SESSION_HANDLE h);
bool op_revoked(const op_live *l, op_live_snap now);

/* --- the entry points, gathered into the function lists by entry.c ------ */

/* session.c */
CK_RV ep_GetSlotList(CK_BBOOL tokenPresent, CK_SLOT_ID_PTR pSlotList,
		     CK_ULONG_PTR pulCount);
CK_RV ep_GetSlotInfo(CK_SLOT_ID slotID, CK_SLOT_INFO_PTR pInfo);
CK_RV ep_GetTokenInfo(CK_SLOT_ID slotID, CK_TOKEN_INFO_PTR pInfo);
CK_RV ep_GetMechanismList(CK_SLOT_ID slotID, CK_MECHANISM_TYPE_PTR pList,
			  CK_ULONG_PTR pulCount);
CK_RV ep_GetMechanismInfo(CK_SLOT_ID slotID, CK_MECHANISM_TYPE type,
			  CK_MECHANISM_INFO_PTR pInfo);
CK_RV ep_InitToken(CK_SLOT_ID slotID, CK_UTF8CHAR_PTR pPin, CK_ULONG ulPinLen,
		   CK_UTF8CHAR_PTR pLabel);
CK_RV ep_InitPIN(CK_SESSION_HANDLE hSession, CK_UTF8CHAR_PTR pPin, CK_ULONG ulPinLen);
CK_RV ep_SetPIN(CK_SESSION_HANDLE hSession, CK_UTF8CHAR_PTR pOldPin, CK_ULONG ulOldLen,
		CK_UTF8CHAR_PTR pNewPin, CK_ULONG ulNewLen);
CK_RV ep_OpenSession(CK_SLOT_ID slotID, CK_FLAGS flags, CK_VOID_PTR pApplication,
		     CK_NOTIFY Notify, CK_SESSION_HANDLE_PTR phSession);
CK_RV ep_CloseSession(CK_SESSION_HANDLE hSession);
CK_RV ep_CloseAllSessions(CK_SLOT_ID slotID);
CK_RV ep_GetSessionInfo(CK_SESSION_HANDLE hSession, CK_SESSION_INFO_PTR pInfo);
CK_RV ep_Login(CK_SESSION_HANDLE hSession, CK_USER_TYPE userType, CK_UTF8CHAR_PTR pPin,
	       CK_ULONG ulPinLen);
CK_RV ep_Logout(CK_SESSION_HANDLE hSession);
CK_RV ep_WaitForSlotEvent(CK_FLAGS flags, CK_SLOT_ID_PTR pSlot, CK_VOID_PTR pRes);
CK_RV ep_SessionCancel(CK_SESSION_HANDLE hSession, CK_FLAGS flags);

/* objects.c */
CK_RV ep_CreateObject(CK_SESSION_HANDLE hSession, CK_ATTRIBUTE_PTR pTemplate,
		      CK_ULONG ulCount, CK_OBJECT_HANDLE_PTR phObject);
CK_RV ep_CopyObject(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject,
		    CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulCount,
		    CK_OBJECT_HANDLE_PTR phNewObject);
CK_RV ep_DestroyObject(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject);
CK_RV ep_GetObjectSize(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject,
		       CK_ULONG_PTR pulSize);
CK_RV ep_GetAttributeValue(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject,
			   CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulCount);
CK_RV ep_SetAttributeValue(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hObject,
			   CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulCount);
CK_RV ep_FindObjectsInit(CK_SESSION_HANDLE hSession, CK_ATTRIBUTE_PTR pTemplate,
			 CK_ULONG ulCount);
CK_RV ep_FindObjects(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE_PTR phObject,
		     CK_ULONG ulMaxObjectCount, CK_ULONG_PTR pulObjectCount);
CK_RV ep_FindObjectsFinal(CK_SESSION_HANDLE hSession);

/* keys.c */
CK_RV ep_GenerateKey(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism,
		     CK_ATTRIBUTE_PTR pTemplate, CK_ULONG ulCount, CK_OBJECT_HANDLE_PTR phKey);
CK_RV ep_WrapKey(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism,
		 CK_OBJECT_HANDLE hWrappingKey, CK_OBJECT_HANDLE hKey,
		 CK_BYTE_PTR pWrappedKey, CK_ULONG_PTR pulWrappedKeyLen);
CK_RV ep_UnwrapKey(CK_SESSION_HANDLE hSession, CK_MECHANISM_PTR pMechanism,
		   CK_OBJECT_HANDLE hUnwrappingKey, CK_BYTE_PTR pWrappedKey,
		   CK_ULONG ulWrappedKeyLen, CK_ATTRIBUTE_PTR pTemplate,
		   CK_ULONG ulAttributeCount, CK_OBJECT_HANDLE_PTR phKey);
CK_RV ep_SeedRandom(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pSeed, CK_ULONG ulSeedLen);
CK_RV ep_GenerateRandom(CK_SESSION_HANDLE hSession, CK_BYTE_PTR pRandomData,
			CK_ULONG ulRandomLen);

/* crypt.c */
CK_RV ep_EncryptInit(CK_SESSION_HANDLE h, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE k);
CK_RV ep_Encrypt(CK_SESSION_HANDLE h, CK_BYTE_PTR in, CK_ULONG inlen, CK_BYTE_PTR out,
		 CK_ULONG_PTR outlen);
CK_RV ep_EncryptUpdate(CK_SESSION_HANDLE h, CK_BYTE_PTR in, CK_ULONG inlen,
		       CK_BYTE_PTR out, CK_ULONG_PTR outlen);
CK_RV ep_EncryptFinal(CK_SESSION_HANDLE h, CK_BYTE_PTR out, CK_ULONG_PTR outlen);
CK_RV ep_DecryptInit(CK_SESSION_HANDLE h, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE k);
CK_RV ep_Decrypt(CK_SESSION_HANDLE h, CK_BYTE_PTR in, CK_ULONG inlen, CK_BYTE_PTR out,
		 CK_ULONG_PTR outlen);
CK_RV ep_DecryptUpdate(CK_SESSION_HANDLE h, CK_BYTE_PTR in, CK_ULONG inlen,
		       CK_BYTE_PTR out, CK_ULONG_PTR outlen);
CK_RV ep_DecryptFinal(CK_SESSION_HANDLE h, CK_BYTE_PTR out, CK_ULONG_PTR outlen);
CK_RV ep_DigestInit(CK_SESSION_HANDLE h, CK_MECHANISM_PTR m);
CK_RV ep_Digest(CK_SESSION_HANDLE h, CK_BYTE_PTR in, CK_ULONG inlen, CK_BYTE_PTR out,
		CK_ULONG_PTR outlen);
CK_RV ep_DigestUpdate(CK_SESSION_HANDLE h, CK_BYTE_PTR in, CK_ULONG inlen);
CK_RV ep_DigestFinal(CK_SESSION_HANDLE h, CK_BYTE_PTR out, CK_ULONG_PTR outlen);
CK_RV ep_DigestKey(CK_SESSION_HANDLE hSession, CK_OBJECT_HANDLE hKey);
CK_RV ep_SignInit(CK_SESSION_HANDLE h, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE k);
CK_RV ep_Sign(CK_SESSION_HANDLE h, CK_BYTE_PTR in, CK_ULONG inlen, CK_BYTE_PTR out,
	      CK_ULONG_PTR outlen);
CK_RV ep_SignUpdate(CK_SESSION_HANDLE h, CK_BYTE_PTR in, CK_ULONG inlen);
CK_RV ep_SignFinal(CK_SESSION_HANDLE h, CK_BYTE_PTR out, CK_ULONG_PTR outlen);
CK_RV ep_VerifyInit(CK_SESSION_HANDLE h, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE k);
CK_RV ep_Verify(CK_SESSION_HANDLE h, CK_BYTE_PTR in, CK_ULONG inlen, CK_BYTE_PTR sig,
		CK_ULONG siglen);
CK_RV ep_VerifyUpdate(CK_SESSION_HANDLE h, CK_BYTE_PTR in, CK_ULONG inlen);
CK_RV ep_VerifyFinal(CK_SESSION_HANDLE h, CK_BYTE_PTR sig, CK_ULONG siglen);

/* msg.c */
CK_RV ep_MessageEncryptInit(CK_SESSION_HANDLE h, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE k);
CK_RV ep_MessageDecryptInit(CK_SESSION_HANDLE h, CK_MECHANISM_PTR m, CK_OBJECT_HANDLE k);
CK_RV ep_EncryptMessage(CK_SESSION_HANDLE h, CK_VOID_PTR param, CK_ULONG plen,
			CK_BYTE_PTR aad, CK_ULONG aadlen, CK_BYTE_PTR in, CK_ULONG inlen,
			CK_BYTE_PTR out, CK_ULONG_PTR outlen);
CK_RV ep_DecryptMessage(CK_SESSION_HANDLE h, CK_VOID_PTR param, CK_ULONG plen,
			CK_BYTE_PTR aad, CK_ULONG aadlen, CK_BYTE_PTR in, CK_ULONG inlen,
			CK_BYTE_PTR out, CK_ULONG_PTR outlen);
CK_RV ep_EncryptMessageBegin(CK_SESSION_HANDLE h, CK_VOID_PTR param, CK_ULONG plen,
			     CK_BYTE_PTR aad, CK_ULONG aadlen);
CK_RV ep_DecryptMessageBegin(CK_SESSION_HANDLE h, CK_VOID_PTR param, CK_ULONG plen,
			     CK_BYTE_PTR aad, CK_ULONG aadlen);
CK_RV ep_EncryptMessageNext(CK_SESSION_HANDLE h, CK_VOID_PTR param, CK_ULONG plen,
			    CK_BYTE_PTR in, CK_ULONG inlen, CK_BYTE_PTR out,
			    CK_ULONG_PTR outlen, CK_FLAGS flags);
CK_RV ep_DecryptMessageNext(CK_SESSION_HANDLE h, CK_VOID_PTR param, CK_ULONG plen,
			    CK_BYTE_PTR in, CK_ULONG inlen, CK_BYTE_PTR out,
			    CK_ULONG_PTR outlen, CK_FLAGS flags);
CK_RV ep_MessageEncryptFinal(CK_SESSION_HANDLE h);
CK_RV ep_MessageDecryptFinal(CK_SESSION_HANDLE h);

#endif
