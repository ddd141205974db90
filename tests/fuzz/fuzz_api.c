/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The whole PKCS #11 API, as a caller might drive it: the input is a
 * program, a sequence of calls (each an opcode byte, then its arguments'
 * bytes) over every function of the 3.0 function list -- C_Initialize with
 * its argument variants to C_Finalize, sessions, login and PINs, objects
 * and templates, every cipher, digest and MAC function single- and
 * multi-part, key generation, wrap and unwrap, the message API -- with
 * handles from tables of real ones plus garbage, templates of any
 * attribute types and lengths, mechanism parameters of any size, and
 * output buffers of wrong lengths or NULL (api_args.h).
 *
 * After each call: the return value is one PKCS #11 defines, the
 * function's length outputs keep PKCS #11 5.2's rules (and a buffer as long
 * as a length query said is long enough), no buffer is written past the
 * length the caller gave, input data is not written, a key value comes out
 * only of a key that allows it, what encrypts (signs) with a key decrypts
 * (verifies) with it, a destroyed object, a closed session and a logout
 * leave nothing behind, and after C_Finalize no secret is left in secure
 * memory. CKR_GENERAL_ERROR and CKR_HOST_MEMORY are findings (api_rv). The
 * sanitizers see the rest: memory errors, leaks, undefined behaviour.
 * Two pseudo-calls move the module's clock and change the local
 * provider's key file, so revalidation and revocation run too.
 *
 * The module runs against two local-provider tokens on tmpfs that every
 * input starts from in the same state (api_env.h), so a run is fast (no
 * scrypt or KMS call per input) and each input replays alone.
 * docs/FUZZING.md has the whole design.
 */
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "api_env.h"
#include "common/log.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))
#define MAX_CALLS 64

typedef enum kind {
	K_INITIALIZE, K_FINALIZE, K_GETINFO, K_GETINFO_V2, K_SLOTLIST, K_SLOTINFO,
	K_TOKENINFO, K_MECHLIST, K_MECHINFO, K_INITTOKEN, K_INITPIN, K_SETPIN,
	K_OPEN, K_CLOSE, K_CLOSEALL, K_SESSINFO, K_SETOPSTATE, K_LOGIN, K_LOGINUSER,
	K_SESS,      /* f(session) */
	K_CREATE, K_COPY, K_DESTROY, K_DIGESTKEY, K_OBJSIZE, K_GETATTR, K_SETATTR,
	K_FINDINIT, K_FIND,
	K_OPINIT,    /* f(session, mechanism, key) */
	K_DIGESTINIT,
	K_INOUT,     /* f(session, in, inlen, out, &outlen) */
	K_OUT,       /* f(session, out, &outlen) */
	K_IN,        /* f(session, in, inlen) */
	K_VERIFY,    /* f(session, in, inlen, sig, siglen) */
	K_GENKEY, K_GENPAIR, K_WRAP, K_UNWRAP, K_DERIVE, K_RANDOM, K_WAITSLOT,
	K_MSG,       /* f(session, param, plen, aad, aadlen, in, inlen, out, &outlen) */
	K_MSGBEGIN,  /* f(session, param, plen, aad, aadlen) */
	K_MSGNEXT,   /* f(session, param, plen, in, inlen, out, &outlen, flags) */
	K_SIGNMSG,   /* f(session, param, plen, in, inlen, sig, &siglen) */
	K_VERIFYMSG, /* f(session, param, plen, in, inlen, sig, siglen) */
	K_PBEGIN,    /* f(session, param, plen) */
	K_CANCEL, K_INTERFACES, K_CRYPT_ROUNDTRIP, K_SIGN_ROUNDTRIP,
	K_QINOUT,    /* K_INOUT's length query, then a buffer of that length */
	K_QOUT,      /* the same for K_OUT */
	K_QWRAP,     /* the same for C_WrapKey */
	K_CLOCK,     /* not a call: the module's clock moves on */
	K_KEYFILE,   /* not a call: the local provider's key file changes */
} kind;

typedef struct op {
	const char *name;
	kind k;
	size_t off; /* the function's place in CK_FUNCTION_LIST_3_0 */
} op;

#define OP(k, fn) {#fn, k, offsetof(CK_FUNCTION_LIST_3_0, fn)}
/* The function of o, read as the (compatible) pointer type T. */
#define FN(T, o) (*(T *)((char *)api_f + (o)->off))

static const op ops[] = {
	OP(K_INITIALIZE, C_Initialize), OP(K_FINALIZE, C_Finalize),
	OP(K_GETINFO, C_GetInfo), OP(K_GETINFO_V2, C_GetFunctionList),
	OP(K_SLOTLIST, C_GetSlotList), OP(K_SLOTINFO, C_GetSlotInfo),
	OP(K_TOKENINFO, C_GetTokenInfo), OP(K_MECHLIST, C_GetMechanismList),
	OP(K_MECHINFO, C_GetMechanismInfo), OP(K_INITTOKEN, C_InitToken),
	OP(K_INITPIN, C_InitPIN), OP(K_SETPIN, C_SetPIN),
	OP(K_OPEN, C_OpenSession), OP(K_OPEN, C_OpenSession),
	OP(K_CLOSE, C_CloseSession), OP(K_CLOSEALL, C_CloseAllSessions),
	OP(K_SESSINFO, C_GetSessionInfo), OP(K_OUT, C_GetOperationState),
	OP(K_SETOPSTATE, C_SetOperationState), OP(K_LOGIN, C_Login),
	OP(K_LOGINUSER, C_LoginUser), OP(K_SESS, C_Logout),
	OP(K_CREATE, C_CreateObject), OP(K_CREATE, C_CreateObject),
	OP(K_COPY, C_CopyObject), OP(K_DESTROY, C_DestroyObject),
	OP(K_OBJSIZE, C_GetObjectSize), OP(K_GETATTR, C_GetAttributeValue),
	OP(K_GETATTR, C_GetAttributeValue), OP(K_SETATTR, C_SetAttributeValue),
	OP(K_FINDINIT, C_FindObjectsInit), OP(K_FIND, C_FindObjects),
	OP(K_SESS, C_FindObjectsFinal),
	OP(K_OPINIT, C_EncryptInit), OP(K_OPINIT, C_EncryptInit),
	OP(K_INOUT, C_Encrypt), OP(K_INOUT, C_EncryptUpdate), OP(K_OUT, C_EncryptFinal),
	OP(K_OPINIT, C_DecryptInit), OP(K_OPINIT, C_DecryptInit),
	OP(K_INOUT, C_Decrypt), OP(K_INOUT, C_DecryptUpdate), OP(K_OUT, C_DecryptFinal),
	OP(K_DIGESTINIT, C_DigestInit), OP(K_INOUT, C_Digest), OP(K_IN, C_DigestUpdate),
	OP(K_DIGESTKEY, C_DigestKey), OP(K_OUT, C_DigestFinal),
	OP(K_OPINIT, C_SignInit), OP(K_INOUT, C_Sign), OP(K_IN, C_SignUpdate),
	OP(K_OUT, C_SignFinal), OP(K_OPINIT, C_SignRecoverInit),
	OP(K_INOUT, C_SignRecover), OP(K_OPINIT, C_VerifyInit),
	OP(K_VERIFY, C_Verify), OP(K_IN, C_VerifyUpdate), OP(K_IN, C_VerifyFinal),
	OP(K_OPINIT, C_VerifyRecoverInit), OP(K_INOUT, C_VerifyRecover),
	OP(K_INOUT, C_DigestEncryptUpdate), OP(K_INOUT, C_DecryptDigestUpdate),
	OP(K_INOUT, C_SignEncryptUpdate), OP(K_INOUT, C_DecryptVerifyUpdate),
	OP(K_GENKEY, C_GenerateKey), OP(K_GENKEY, C_GenerateKey),
	OP(K_GENPAIR, C_GenerateKeyPair), OP(K_WRAP, C_WrapKey), OP(K_WRAP, C_WrapKey),
	OP(K_UNWRAP, C_UnwrapKey), OP(K_UNWRAP, C_UnwrapKey), OP(K_DERIVE, C_DeriveKey),
	OP(K_IN, C_SeedRandom), OP(K_RANDOM, C_GenerateRandom),
	OP(K_SESS, C_GetFunctionStatus), OP(K_SESS, C_CancelFunction),
	OP(K_WAITSLOT, C_WaitForSlotEvent), OP(K_INTERFACES, C_GetInterface),
	OP(K_CANCEL, C_SessionCancel),
	OP(K_OPINIT, C_MessageEncryptInit), OP(K_MSG, C_EncryptMessage),
	OP(K_MSGBEGIN, C_EncryptMessageBegin), OP(K_MSGNEXT, C_EncryptMessageNext),
	OP(K_MSGNEXT, C_EncryptMessageNext), OP(K_SESS, C_MessageEncryptFinal),
	OP(K_OPINIT, C_MessageDecryptInit), OP(K_MSG, C_DecryptMessage),
	OP(K_MSGBEGIN, C_DecryptMessageBegin), OP(K_MSGNEXT, C_DecryptMessageNext),
	OP(K_MSGNEXT, C_DecryptMessageNext), OP(K_SESS, C_MessageDecryptFinal),
	OP(K_OPINIT, C_MessageSignInit), OP(K_SIGNMSG, C_SignMessage),
	OP(K_PBEGIN, C_SignMessageBegin), OP(K_SIGNMSG, C_SignMessageNext),
	OP(K_SESS, C_MessageSignFinal), OP(K_OPINIT, C_MessageVerifyInit),
	OP(K_VERIFYMSG, C_VerifyMessage), OP(K_PBEGIN, C_VerifyMessageBegin),
	OP(K_VERIFYMSG, C_VerifyMessageNext), OP(K_SESS, C_MessageVerifyFinal),
	{"C_Encrypt+C_Decrypt", K_CRYPT_ROUNDTRIP, 0},
	{"C_Encrypt+C_Decrypt", K_CRYPT_ROUNDTRIP, 0},
	{"C_Sign+C_Verify", K_SIGN_ROUNDTRIP, 0},
	/* appended, so that the opcodes above keep their meaning */
	OP(K_QINOUT, C_Encrypt), OP(K_QINOUT, C_Decrypt), OP(K_QINOUT, C_Sign),
	OP(K_QINOUT, C_Digest), OP(K_QINOUT, C_EncryptUpdate),
	OP(K_QINOUT, C_DecryptUpdate), OP(K_QOUT, C_EncryptFinal),
	OP(K_QOUT, C_DecryptFinal), OP(K_QOUT, C_SignFinal), OP(K_QOUT, C_DigestFinal),
	OP(K_QWRAP, C_WrapKey),
	{"(clock)", K_CLOCK, 0}, {"(key file)", K_KEYFILE, 0},
};

/* The message API's parameter of the last C_*MessageBegin, which
 * C_*MessageNext must be given again (PKCS #11 3.0 5.14). */
static void *msg_param;
static CK_ULONG msg_plen;

/* --- small argument helpers ---------------------------------------------- */

/* A structure the module fills: exact, or NULL. */
static void *out_struct(api_prog *r, size_t n)
{
	return ap_u8(r) % 16 ? arena_alloc(n) : NULL;
}

/* A PIN: the right ones, a wrong one, empty, NULL with a length, bytes. */
static void pin_arg(api_prog *r, CK_UTF8CHAR_PTR *p, CK_ULONG *len)
{
	static const char *const pins[] = {USER_PIN, SO_PIN, "0000", "", "123",
					   "12345678901234567890123456789012345"};
	uint8_t s = ap_u8(r) % 8;
	if (s < COUNT(pins)) {
		*len = strlen(pins[s]);
		*p = arena_alloc(*len);
		if (*p)
			memcpy(*p, pins[s], *len);
		else
			*len = 0;
		return;
	}
	api_in in;
	ap_in(r, &in);
	*p = in.p;
	*len = in.len;
}

/* A list of CK_ULONGs the module fills (slots, mechanisms, objects). */
typedef struct ulist {
	CK_ULONG *p;
	CK_ULONG n, claimed, size;
	CK_ULONG_PTR pn;
} ulist;

#define LIST_CANARY 0xa5a5a5a5a5a5a5a5UL

static void ulist_arg(api_prog *r, ulist *l)
{
	memset(l, 0, sizeof(*l));
	uint8_t s = ap_u8(r);
	l->pn = s % 16 ? &l->n : NULL;
	l->claimed = l->n = s & 0x80 ? ap_len(r) : (s >> 4) % 8 * 4 % 30;
	if (s % 4 == 0) /* a count query */
		return;
	CK_ULONG n = l->claimed > 64 ? l->claimed % 65 : l->claimed;
	l->claimed = l->n = n;
	l->size = n + 2;
	l->p = arena_alloc(l->size * sizeof(CK_ULONG));
	if (!l->p) {
		l->claimed = l->n = l->size = 0;
		return;
	}
	for (CK_ULONG i = 0; i < l->size; i++)
		l->p[i] = LIST_CANARY;
}

static void ulist_check(const ulist *l, CK_RV rv, const char *fn)
{
	for (CK_ULONG i = l->claimed; l->p && i < l->size; i++)
		API_CHECK(l->p[i] == LIST_CANARY, fn,
			  "the module wrote past the list length the caller gave");
	if (!l->pn)
		return;
	if (rv == CKR_OK && l->p)
		API_CHECK(l->n <= l->claimed, fn, "CKR_OK with a count above the list's length");
	if (rv == CKR_BUFFER_TOO_SMALL)
		API_CHECK(l->p && l->n > l->claimed, fn,
			  "CKR_BUFFER_TOO_SMALL with no list or a count not above its length");
}

/* A fixed-length, blank-padded string of a CK_*_INFO (PKCS #11 3.2). */
static void padded_check(const CK_UTF8CHAR *s, size_t n, const char *fn)
{
	if (memchr(s, 0, n))
		api_finding(fn, "a fixed-length info string holds a NUL (PKCS #11 "
				"pads them with blanks)");
}

/* --- the checks with more than one call ------------------------------------ */

/* A key value came out: the key must allow it (PKCS #11 4.9, table 10:
 * CKA_VALUE of a sensitive or unextractable key is never revealed). */
static void value_allowed(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE h)
{
	CK_OBJECT_CLASS cls = 0;
	CK_BBOOL sens = CK_FALSE, extr = CK_TRUE;
	CK_ATTRIBUTE a[] = {{CKA_CLASS, &cls, sizeof(cls)},
			    {CKA_SENSITIVE, &sens, sizeof(sens)},
			    {CKA_EXTRACTABLE, &extr, sizeof(extr)}};
	CK_RV rv = api_f->C_GetAttributeValue(s, h, a, COUNT(a));
	if (rv != CKR_OK || cls != CKO_SECRET_KEY)
		return;
	API_CHECK(!sens && extr, "C_GetAttributeValue",
		  "CKA_VALUE of a sensitive or unextractable key was revealed");
}

static int by_value(const void *a, const void *b)
{
	CK_ULONG x = *(const CK_ULONG *)a, y = *(const CK_ULONG *)b;
	return x < y ? -1 : x > y;
}

/* Found objects into the table, in handle order: the module answers in
 * the order of its hash maps, which earlier inputs shaped; handles grow
 * with time, so their order is the same in every run. */
/* After a C_Logout: the session is public again, and no private object of
 * the table can be seen through it (PKCS #11 v2.40 5.6). */
static void after_logout(CK_SESSION_HANDLE s)
{
	CK_SESSION_INFO si;
	if (api_f->C_GetSessionInfo(s, &si) == CKR_OK &&
	    si.state != CKS_RO_PUBLIC_SESSION && si.state != CKS_RW_PUBLIC_SESSION)
		api_finding("C_Logout", "the session is not public after C_Logout");
	for (unsigned i = 0; i < API_OBJECTS; i++) {
		CK_BBOOL priv = CK_FALSE;
		CK_ATTRIBUTE a = {CKA_PRIVATE, &priv, sizeof(priv)};
		if (api_object_at(i) != CK_INVALID_HANDLE &&
		    api_f->C_GetAttributeValue(s, api_object_at(i), &a, 1) == CKR_OK && priv)
			api_finding("C_Logout", "a private object can be read after C_Logout");
	}
}

static void note_objects(const ulist *l, CK_RV rv)
{
	if (rv != CKR_OK || !l->p || !l->pn || l->n > l->claimed)
		return;
	CK_ULONG sorted[64];
	memcpy(sorted, l->p, l->n * sizeof(CK_ULONG));
	qsort(sorted, l->n, sizeof(CK_ULONG), by_value);
	for (CK_ULONG i = 0; i < l->n; i++)
		api_object_made(sorted[i]);
}

/* An operation's init and one single-part call, as a round trip's half. */
typedef struct half {
	const char *init_name, *call_name;
	size_t init, call; /* places in CK_FUNCTION_LIST_3_0 */
} half;

#define HALF(i, c) {#i, #c, offsetof(CK_FUNCTION_LIST_3_0, i), offsetof(CK_FUNCTION_LIST_3_0, c)}
static const half encrypt_half = HALF(C_EncryptInit, C_Encrypt);
static const half decrypt_half = HALF(C_DecryptInit, C_Decrypt);
static const half sign_half = HALF(C_SignInit, C_Sign);

/* Init with (m, k), then the call from in to a buffer of outlen bytes:
 * CKR_OK from the init, else what the init answered. */
static CK_RV run_half(const half *h, CK_SESSION_HANDLE s, CK_MECHANISM_PTR m,
		      CK_OBJECT_HANDLE k, const api_in *in, size_t outlen, api_out *out,
		      CK_RV *call_rv)
{
	CK_C_EncryptInit init = *(CK_C_EncryptInit *)((char *)api_f + h->init);
	CK_C_Encrypt call = *(CK_C_Encrypt *)((char *)api_f + h->call);
	CK_RV rv = init(s, m, k);
	api_rv(h->init_name, rv);
	if (rv != CKR_OK)
		return rv;
	ap_out_sized(out, outlen);
	*call_rv = call(s, in->p, in->len, out->p, out->plen);
	api_rv(h->call_name, *call_rv);
	ap_out_check(out, *call_rv, h->call_name);
	/* A failed single-part call ends the operation; a short buffer
	 * would not, and nothing here is short. */
	return CKR_OK;
}

/* Encrypt data, then decrypt it, with one key and one mechanism: when the
 * encryption and the decryption's init succeed, the decryption must, and
 * give the data back. */
static void crypt_roundtrip(api_prog *r)
{
	CK_SESSION_HANDLE s = api_session(r);
	CK_MECHANISM_PTR m = ap_mech(r);
	CK_OBJECT_HANDLE k = api_object(r);
	api_in in, ct;
	api_out c, p;
	CK_RV rv = CKR_GENERAL_ERROR;
	ap_in(r, &in);
	if (!in.p || in.len > 4096 ||
	    run_half(&encrypt_half, s, m, k, &in, in.len + 512, &c, &rv) != CKR_OK ||
	    rv != CKR_OK)
		return;
	ct.p = c.p;
	ct.len = c.len;
	if (run_half(&decrypt_half, s, m, k, &ct, c.len + 64, &p, &rv) != CKR_OK)
		return;
	/* Revoked between C_DecryptInit and C_Decrypt by the revalidation
	 * thread: the operation ends, as docs/SECURITY.md says it must. */
	if (rv == CKR_DEVICE_ERROR && api_env_touched())
		return;
	API_CHECK(rv == CKR_OK, "C_Decrypt",
		  "what C_Encrypt made does not decrypt with the same key and mechanism");
	API_CHECK(p.len == in.len && memcmp(p.p, in.p, in.len) == 0, "C_Decrypt",
		  "decryption does not give back what was encrypted");
}

/* Sign, then verify, with one key and one mechanism. */
static void sign_roundtrip(api_prog *r)
{
	CK_SESSION_HANDLE s = api_session(r);
	CK_MECHANISM_PTR m = ap_mech(r);
	CK_OBJECT_HANDLE k = api_object(r);
	api_in in;
	api_out sig;
	CK_RV rv = CKR_GENERAL_ERROR;
	ap_in(r, &in);
	if (run_half(&sign_half, s, m, k, &in, 512, &sig, &rv) != CKR_OK || rv != CKR_OK)
		return;
	rv = api_f->C_VerifyInit(s, m, k);
	api_rv("C_VerifyInit", rv);
	if (rv != CKR_OK)
		return;
	rv = api_f->C_Verify(s, in.p, in.len, sig.p, sig.len);
	api_rv("C_Verify", rv);
	if (rv == CKR_DEVICE_ERROR && api_env_touched())
		return; /* revoked meanwhile, as in crypt_roundtrip */
	API_CHECK(rv == CKR_OK, "C_Verify", "a signature made by C_Sign does not verify");
}

/* PKCS #11 5.2 as a caller follows it: ask for the length (a NULL
 * buffer), then call with a buffer of exactly that length, which must not
 * be too small (the query may answer more than is written). */
static CK_RV queried(api_prog *r, const op *o)
{
	CK_SESSION_HANDLE s = api_session(r);
	CK_MECHANISM_PTR m = NULL;
	CK_OBJECT_HANDLE wk = CK_INVALID_HANDLE, k = CK_INVALID_HANDLE;
	api_in in = {0};
	api_out out;
	CK_ULONG len = 0;
	CK_RV rv;
	if (o->k == K_QWRAP) {
		m = ap_mech(r);
		wk = api_object(r);
		k = api_object(r);
		rv = api_f->C_WrapKey(s, m, wk, k, NULL, &len);
	} else if (o->k == K_QINOUT) {
		ap_in(r, &in);
		rv = FN(CK_C_Encrypt, o)(s, in.p, in.len, NULL, &len);
	} else {
		rv = FN(CK_C_EncryptFinal, o)(s, NULL, &len);
	}
	api_rv(o->name, rv);
	if (rv != CKR_OK || len > AP_REAL_MAX + 64)
		return rv;
	ap_out_sized(&out, len);
	if (o->k == K_QWRAP)
		rv = api_f->C_WrapKey(s, m, wk, k, out.p, out.plen);
	else if (o->k == K_QINOUT)
		rv = FN(CK_C_Encrypt, o)(s, in.p, in.len, out.p, out.plen);
	else
		rv = FN(CK_C_EncryptFinal, o)(s, out.p, out.plen);
	ap_in_check(&in, o->name);
	ap_out_check(&out, rv, o->name);
	API_CHECK(rv != CKR_BUFFER_TOO_SMALL, o->name,
		  "CKR_BUFFER_TOO_SMALL for a buffer as long as its own length query said");
	return rv;
}

/* --- C_Initialize's argument variants ----------------------------------------- */

static CK_RV mutex_create(CK_VOID_PTR_PTR m)
{
	static int token;
	*m = &token;
	return CKR_OK;
}
static CK_RV mutex_other(CK_VOID_PTR m)
{
	(void)m;
	return CKR_OK;
}

/* pReserved: an init string, or what PKCS #11 forbids there. */
static void *reserved_arg(api_prog *r)
{
	static const char *const texts[] = {"", "config=/nonexistent/p11kms.json",
					    "config=", "config=\x01\x02", "garbage"};
	uint8_t s = ap_u8(r) % 8;
	if (s < COUNT(texts))
		return (void *)texts[s];
	if (s == 5) { /* text with no NUL in reach */
		size_t n = 1 + ap_len(r) % 6000;
		char *p = arena_alloc(n);
		if (p)
			memset(p, 'a', n);
		return p;
	}
	if (s == 6)
		return (void *)(uintptr_t)(ap_u8(r) % 2 ? 1 : 0x1000);
	return (void *)api_init_string();
}

static CK_RV call_initialize(api_prog *r)
{
	CK_C_INITIALIZE_ARGS *a = arena_alloc(sizeof(*a));
	if (!a)
		return CKR_OK;
	memset(a, 0, sizeof(*a));
	a->flags = CKF_OS_LOCKING_OK;
	a->pReserved = (void *)api_init_string();
	uint8_t mode = ap_u8(r) % 8;
	switch (mode) {
	case 0:
		a = NULL; /* $P11KMS_CONFIG names the same configuration */
		break;
	case 1:
		a->pReserved = NULL;
		a->flags = 0;
		break;
	case 2:
		a->pReserved = reserved_arg(r);
		break;
	case 3: /* caller mutexes, with and without OS locking */
	case 4: {
		uint8_t given = mode == 3 ? 0xf : ap_u8(r) & 0xf;
		a->flags = ap_u8(r) & 1 ? CKF_OS_LOCKING_OK : 0;
		a->CreateMutex = given & 1 ? mutex_create : NULL;
		a->DestroyMutex = given & 2 ? mutex_other : NULL;
		a->LockMutex = given & 4 ? mutex_other : NULL;
		a->UnlockMutex = given & 8 ? mutex_other : NULL;
		break;
	}
	case 5:
		a->flags = ap_ulong(r);
		break;
	default:
		break;
	}
	return api_f->C_Initialize(a);
}

/* --- one call ------------------------------------------------------------------ */

static CK_RV notify_cb(CK_SESSION_HANDLE h, CK_NOTIFICATION ev, CK_VOID_PTR app)
{
	(void)h;
	(void)ev;
	(void)app;
	return CKR_OK;
}

static CK_RV call_info(api_prog *r, const op *o)
{
	CK_INFO *info = out_struct(r, sizeof(*info));
	CK_FUNCTION_LIST_PTR v2 = NULL;
	CK_RV rv;
	if (o->k == K_GETINFO_V2) {
		rv = api_f->C_GetFunctionList(ap_u8(r) % 8 ? &v2 : NULL);
		api_rv(o->name, rv);
		if (rv != CKR_OK)
			return rv;
		API_CHECK(v2 && v2->version.major == 2, o->name, "not a 2.x function list");
		rv = v2->C_GetInfo(info);
	} else {
		rv = api_f->C_GetInfo(info);
	}
	if (rv == CKR_OK && info) {
		padded_check(info->manufacturerID, sizeof(info->manufacturerID), "C_GetInfo");
		padded_check(info->libraryDescription, sizeof(info->libraryDescription),
			     "C_GetInfo");
		API_CHECK(info->cryptokiVersion.major == (v2 ? 2 : 3), "C_GetInfo",
			  "the version is not the function list's");
	}
	return rv;
}

static CK_RV call_token_info(api_prog *r)
{
	CK_SLOT_ID slot = api_slot(r);
	CK_TOKEN_INFO *ti = out_struct(r, sizeof(*ti));
	CK_RV rv = api_f->C_GetTokenInfo(slot, ti);
	if (rv != CKR_OK || !ti)
		return rv;
	padded_check(ti->label, sizeof(ti->label), "C_GetTokenInfo");
	padded_check(ti->manufacturerID, sizeof(ti->manufacturerID), "C_GetTokenInfo");
	padded_check(ti->model, sizeof(ti->model), "C_GetTokenInfo");
	padded_check(ti->serialNumber, sizeof(ti->serialNumber), "C_GetTokenInfo");
	if (ti->ulMaxSessionCount != CK_EFFECTIVELY_INFINITE &&
	    ti->ulMaxSessionCount != CK_UNAVAILABLE_INFORMATION &&
	    ti->ulSessionCount != CK_UNAVAILABLE_INFORMATION &&
	    ti->ulSessionCount > ti->ulMaxSessionCount)
		api_finding("C_GetTokenInfo", "more sessions than ulMaxSessionCount");
	if (ti->ulSessionCount != CK_UNAVAILABLE_INFORMATION &&
	    ti->ulRwSessionCount != CK_UNAVAILABLE_INFORMATION &&
	    ti->ulRwSessionCount > ti->ulSessionCount)
		api_finding("C_GetTokenInfo", "more R/W sessions than sessions");
	if (ti->ulMinPinLen > ti->ulMaxPinLen)
		api_finding("C_GetTokenInfo", "ulMinPinLen above ulMaxPinLen");
	return rv;
}

static CK_RV call_lists(api_prog *r, const op *o)
{
	ulist l;
	CK_RV rv;
	if (o->k == K_SLOTLIST) {
		CK_BBOOL present = ap_u8(r) & 1;
		ulist_arg(r, &l);
		rv = api_f->C_GetSlotList(present, l.p, l.pn);
		for (CK_ULONG i = 0; rv == CKR_OK && l.p && l.pn && i < l.n; i++)
			API_CHECK(api_slot_known(l.p[i]), o->name, "a slot that is not configured");
	} else if (o->k == K_MECHLIST) {
		CK_SLOT_ID slot = api_slot(r);
		ulist_arg(r, &l);
		rv = api_f->C_GetMechanismList(slot, l.p, l.pn);
	} else {
		CK_SESSION_HANDLE s = api_session(r);
		ulist_arg(r, &l);
		rv = api_f->C_FindObjects(s, l.p, l.claimed, l.pn);
		/* FindObjects answers a count, never CKR_BUFFER_TOO_SMALL. */
		if (rv == CKR_OK && l.pn)
			API_CHECK(l.n <= l.claimed, o->name, "more objects than ulMaxObjectCount");
		note_objects(&l, rv); /* NULL with a count of 0 is let through */
		return rv;
	}
	ulist_check(&l, rv, o->name);
	return rv;
}

static CK_RV call_session(api_prog *r, const op *o)
{
	CK_RV rv;
	switch (o->k) {
	case K_OPEN: {
		static const CK_FLAGS flags[] = {CKF_SERIAL_SESSION | CKF_RW_SESSION,
						 CKF_SERIAL_SESSION, CKF_RW_SESSION, 0};
		CK_SLOT_ID slot = api_slot(r);
		CK_FLAGS fl = ap_pick(r, flags, COUNT(flags));
		uint8_t s = ap_u8(r);
		CK_SESSION_HANDLE *ph = s % 16 ? arena_alloc(sizeof(*ph)) : NULL;
		rv = api_f->C_OpenSession(slot, fl, s & 0x10 ? (void *)0x1234 : NULL,
					  s & 0x20 ? notify_cb : NULL, ph);
		if (rv == CKR_OK && ph) {
			API_CHECK(*ph != CK_INVALID_HANDLE, o->name,
				  "CKR_OK with CK_INVALID_HANDLE as the session");
			api_session_opened(*ph);
		}
		return rv;
	}
	case K_CLOSE: {
		CK_SESSION_HANDLE s = api_session(r);
		rv = api_f->C_CloseSession(s);
		if (rv == CKR_OK) {
			CK_SESSION_INFO si;
			api_session_closed(s);
			API_CHECK(api_f->C_GetSessionInfo(s, &si) == CKR_SESSION_HANDLE_INVALID,
				  o->name, "a closed session still answers");
		}
		return rv;
	}
	case K_CLOSEALL:
		return api_f->C_CloseAllSessions(api_slot(r));
	case K_SESSINFO: {
		CK_SESSION_HANDLE s = api_session(r);
		CK_SESSION_INFO *si = out_struct(r, sizeof(*si));
		rv = api_f->C_GetSessionInfo(s, si);
		if (rv == CKR_OK && si) {
			API_CHECK(api_slot_known(si->slotID), o->name, "an unknown slot");
			API_CHECK(si->state <= CKS_RW_SO_FUNCTIONS, o->name, "an unknown state");
		}
		return rv;
	}
	case K_SESS: {
		CK_SESSION_HANDLE s = api_session(r);
		rv = FN(CK_C_CloseSession, o)(s);
		if (rv == CKR_OK && o->off == offsetof(CK_FUNCTION_LIST_3_0, C_Logout))
			after_logout(s);
		return rv;
	}
	case K_CANCEL: {
		static const CK_FLAGS flags[] = {CKF_ENCRYPT, CKF_DECRYPT, CKF_DIGEST,
						 CKF_SIGN, CKF_VERIFY, CKF_MESSAGE_ENCRYPT,
						 CKF_MESSAGE_DECRYPT, CKF_FIND_OBJECTS, ~0UL, 0};
		CK_SESSION_HANDLE s = api_session(r);
		return api_f->C_SessionCancel(s, ap_pick(r, flags, COUNT(flags)));
	}
	default:
		return CKR_OK;
	}
}

static CK_RV call_pin(api_prog *r, const op *o)
{
	static const CK_ULONG users[] = {CKU_USER, CKU_SO, CKU_CONTEXT_SPECIFIC, 3, ~0UL};
	CK_UTF8CHAR_PTR p1, p2;
	CK_ULONG l1, l2;
	if (!api_spend_pin())
		return CKR_OK;
	switch (o->k) {
	case K_INITTOKEN: {
		CK_SLOT_ID slot = api_slot(r);
		pin_arg(r, &p1, &l1);
		uint8_t s = ap_u8(r);
		CK_UTF8CHAR *label = s % 8 ? arena_alloc(32) : NULL;
		if (label) /* always 32 bytes: blank padded, or anything */
			s & 8 ? ap_fill(r, label, 32) : (void)memset(label, ' ', 32);
		return api_f->C_InitToken(slot, p1, l1, label);
	}
	case K_INITPIN: {
		CK_SESSION_HANDLE s = api_session(r);
		pin_arg(r, &p1, &l1);
		return api_f->C_InitPIN(s, p1, l1);
	}
	case K_SETPIN: {
		CK_SESSION_HANDLE s = api_session(r);
		pin_arg(r, &p1, &l1);
		pin_arg(r, &p2, &l2);
		return api_f->C_SetPIN(s, p1, l1, p2, l2);
	}
	case K_LOGIN: {
		CK_SESSION_HANDLE s = api_session(r);
		CK_USER_TYPE u = ap_pick(r, users, COUNT(users));
		pin_arg(r, &p1, &l1);
		CK_RV rv = api_f->C_Login(s, u, p1, l1);
		CK_SESSION_INFO si;
		if (rv == CKR_OK && api_f->C_GetSessionInfo(s, &si) == CKR_OK &&
		    !(u == CKU_SO ? si.state == CKS_RW_SO_FUNCTIONS
				  : si.state == CKS_RO_USER_FUNCTIONS ||
					    si.state == CKS_RW_USER_FUNCTIONS))
			api_finding("C_Login", "the session's state is not the one logged in");
		return rv;
	}
	default: { /* K_LOGINUSER */
		CK_SESSION_HANDLE s = api_session(r);
		CK_USER_TYPE u = ap_pick(r, users, COUNT(users));
		pin_arg(r, &p1, &l1);
		pin_arg(r, &p2, &l2);
		return api_f->C_LoginUser(s, u, p1, l1, p2, l2);
	}
	}
}

static CK_OBJECT_HANDLE *handle_out(api_prog *r)
{
	CK_OBJECT_HANDLE *ph = ap_u8(r) % 16 ? arena_alloc(sizeof(*ph)) : NULL;
	if (ph)
		*ph = CK_INVALID_HANDLE;
	return ph;
}

static void made(const char *fn, CK_RV rv, const CK_OBJECT_HANDLE *ph)
{
	if (rv != CKR_OK || !ph)
		return;
	API_CHECK(*ph != CK_INVALID_HANDLE, fn, "CKR_OK with CK_INVALID_HANDLE as the object");
	api_object_made(*ph);
}

static CK_RV call_object(api_prog *r, const op *o)
{
	CK_SESSION_HANDLE s = api_session(r);
	api_tmpl t;
	CK_RV rv;
	switch (o->k) {
	case K_CREATE: {
		ap_tmpl(r, &t, false);
		CK_OBJECT_HANDLE *ph = handle_out(r);
		rv = api_f->C_CreateObject(s, t.p, t.n, ph);
		made(o->name, rv, ph);
		return rv;
	}
	case K_COPY: {
		CK_OBJECT_HANDLE h = api_object(r);
		ap_tmpl(r, &t, false);
		CK_OBJECT_HANDLE *ph = handle_out(r);
		rv = api_f->C_CopyObject(s, h, t.p, t.n, ph);
		made(o->name, rv, ph);
		return rv;
	}
	case K_DESTROY: {
		CK_OBJECT_HANDLE h = api_object(r);
		rv = api_f->C_DestroyObject(s, h);
		if (rv == CKR_OK) {
			api_object_gone(h);
			CK_OBJECT_CLASS c;
			CK_ATTRIBUTE a = {CKA_CLASS, &c, sizeof(c)};
			API_CHECK(api_f->C_GetAttributeValue(s, h, &a, 1) != CKR_OK, o->name,
				  "a destroyed object can still be read");
		}
		return rv;
	}
	case K_DIGESTKEY:
		return api_f->C_DigestKey(s, api_object(r));
	case K_OBJSIZE: {
		CK_OBJECT_HANDLE h = api_object(r);
		return api_f->C_GetObjectSize(s, h, out_struct(r, sizeof(CK_ULONG)));
	}
	case K_GETATTR: {
		CK_OBJECT_HANDLE h = api_object(r);
		ap_tmpl(r, &t, true);
		rv = api_f->C_GetAttributeValue(s, h, t.p, t.n);
		ap_tmpl_check_get(&t, rv);
		if (ap_tmpl_got(&t, CKA_VALUE))
			value_allowed(s, h);
		return rv;
	}
	case K_SETATTR: {
		CK_OBJECT_HANDLE h = api_object(r);
		ap_tmpl(r, &t, false);
		return api_f->C_SetAttributeValue(s, h, t.p, t.n);
	}
	case K_FINDINIT:
		ap_tmpl(r, &t, false);
		return api_f->C_FindObjectsInit(s, t.p, t.n);
	default:
		return CKR_OK;
	}
}

static CK_RV call_crypt(api_prog *r, const op *o)
{
	CK_SESSION_HANDLE s = api_session(r);
	api_in in, sig;
	api_out out;
	CK_RV rv;
	switch (o->k) {
	case K_OPINIT: {
		CK_MECHANISM_PTR m = ap_mech(r);
		return FN(CK_C_EncryptInit, o)(s, m, api_object(r));
	}
	case K_DIGESTINIT:
		return api_f->C_DigestInit(s, ap_mech(r));
	case K_INOUT:
		ap_in(r, &in);
		ap_out(r, &out);
		rv = FN(CK_C_Encrypt, o)(s, in.p, in.len, out.p, out.plen);
		ap_in_check(&in, o->name);
		ap_out_check(&out, rv, o->name);
		return rv;
	case K_OUT:
		ap_out(r, &out);
		rv = FN(CK_C_EncryptFinal, o)(s, out.p, out.plen);
		ap_out_check(&out, rv, o->name);
		return rv;
	case K_IN:
		ap_in(r, &in);
		rv = FN(CK_C_DigestUpdate, o)(s, in.p, in.len);
		ap_in_check(&in, o->name);
		return rv;
	case K_VERIFY:
		ap_in(r, &in);
		ap_in(r, &sig);
		rv = api_f->C_Verify(s, in.p, in.len, sig.p, sig.len);
		ap_in_check(&in, o->name);
		ap_in_check(&sig, o->name);
		return rv;
	case K_RANDOM:
		ap_out(r, &out);
		rv = api_f->C_GenerateRandom(s, out.p, out.claimed);
		ap_out_canary(&out, o->name);
		return rv;
	case K_SETOPSTATE:
		ap_in(r, &in);
		return api_f->C_SetOperationState(s, in.p, in.len, api_object(r), api_object(r));
	default:
		return CKR_OK;
	}
}

static CK_RV call_keys(api_prog *r, const op *o)
{
	CK_SESSION_HANDLE s = api_session(r);
	CK_MECHANISM_PTR m = ap_mech(r);
	api_tmpl t, t2;
	CK_RV rv;
	switch (o->k) {
	case K_GENKEY: {
		ap_tmpl(r, &t, false);
		CK_OBJECT_HANDLE *ph = handle_out(r);
		rv = api_f->C_GenerateKey(s, m, t.p, t.n, ph);
		made(o->name, rv, ph);
		return rv;
	}
	case K_GENPAIR: {
		ap_tmpl(r, &t, false);
		ap_tmpl(r, &t2, false);
		CK_OBJECT_HANDLE *pub = handle_out(r), *priv = handle_out(r);
		rv = api_f->C_GenerateKeyPair(s, m, t.p, t.n, t2.p, t2.n, pub, priv);
		made(o->name, rv, pub);
		made(o->name, rv, priv);
		return rv;
	}
	case K_WRAP: {
		CK_OBJECT_HANDLE wk = api_object(r), k = api_object(r);
		api_out out;
		ap_out(r, &out);
		rv = api_f->C_WrapKey(s, m, wk, k, out.p, out.plen);
		ap_out_check(&out, rv, o->name);
		return rv;
	}
	case K_UNWRAP: {
		CK_OBJECT_HANDLE uk = api_object(r);
		api_in in;
		ap_in(r, &in);
		ap_tmpl(r, &t, false);
		CK_OBJECT_HANDLE *ph = handle_out(r);
		rv = api_f->C_UnwrapKey(s, m, uk, in.p, in.len, t.p, t.n, ph);
		ap_in_check(&in, o->name);
		made(o->name, rv, ph);
		return rv;
	}
	default: { /* K_DERIVE */
		CK_OBJECT_HANDLE k = api_object(r);
		ap_tmpl(r, &t, false);
		CK_OBJECT_HANDLE *ph = handle_out(r);
		rv = api_f->C_DeriveKey(s, m, k, t.p, t.n, ph);
		made(o->name, rv, ph);
		return rv;
	}
	}
}

/* The parameter of a C_*MessageNext: mostly the one its Begin had. */
static void *next_param(api_prog *r, CK_ULONG *plen)
{
	if (ap_u8(r) % 4) {
		*plen = msg_plen;
		return msg_param;
	}
	return ap_msg_param(r, plen);
}

static CK_RV call_message(api_prog *r, const op *o)
{
	static const CK_FLAGS next_flags[] = {0, CKF_END_OF_MESSAGE, 0, 2, ~0UL};
	CK_SESSION_HANDLE s = api_session(r);
	CK_ULONG plen;
	void *param = o->k == K_MSGNEXT ? next_param(r, &plen) : ap_msg_param(r, &plen);
	api_in aad, in;
	api_out out;
	CK_RV rv;
	switch (o->k) {
	case K_MSG:
		ap_in(r, &aad);
		ap_in(r, &in);
		ap_out(r, &out);
		rv = FN(CK_C_MessageOneShot, o)(s, param, plen, aad.p, aad.len, in.p, in.len,
						out.p, out.plen);
		ap_in_check(&aad, o->name);
		ap_in_check(&in, o->name);
		ap_out_check(&out, rv, o->name);
		return rv;
	case K_MSGBEGIN:
		ap_in(r, &aad);
		msg_param = param;
		msg_plen = plen;
		rv = FN(CK_C_MessageBegin, o)(s, param, plen, aad.p, aad.len);
		ap_in_check(&aad, o->name);
		return rv;
	case K_MSGNEXT: {
		ap_in(r, &in);
		ap_out(r, &out);
		CK_FLAGS fl = ap_pick(r, next_flags, COUNT(next_flags));
		rv = FN(CK_C_MessageNext, o)(s, param, plen, in.p, in.len, out.p, out.plen, fl);
		ap_in_check(&in, o->name);
		ap_out_check(&out, rv, o->name);
		return rv;
	}
	case K_SIGNMSG:
		ap_in(r, &in);
		ap_out(r, &out);
		rv = FN(CK_C_SignMessage, o)(s, param, plen, in.p, in.len, out.p, out.plen);
		ap_out_check(&out, rv, o->name);
		return rv;
	case K_VERIFYMSG:
		ap_in(r, &in);
		ap_in(r, &aad);
		return FN(CK_C_VerifyMessage, o)(s, param, plen, in.p, in.len, aad.p, aad.len);
	default: /* K_PBEGIN */
		return FN(CK_C_SignMessageBegin, o)(s, param, plen);
	}
}

static CK_RV call_interfaces(api_prog *r)
{
	static const char *const names[] = {"PKCS 11", NULL, "PKCS 11 ", "Vendor"};
	static const CK_VERSION versions[] = {{3, 0}, {2, 40}, {2, 20}, {3, 1}};
	uint8_t s = ap_u8(r);
	if (s & 1) {
		CK_ULONG n = (s >> 1) % 4, cnt = n;
		CK_INTERFACE *list = s & 0x10 ? arena_alloc(n * sizeof(*list)) : NULL;
		CK_RV rv = api_f->C_GetInterfaceList(list, s & 0x20 ? NULL : &cnt);
		if (rv == CKR_OK && list && !(s & 0x20))
			API_CHECK(cnt <= n, "C_GetInterfaceList", "a count above the list's length");
		return rv;
	}
	CK_VERSION *v = arena_alloc(sizeof(*v));
	if (v)
		*v = versions[(s >> 1) % COUNT(versions)];
	CK_INTERFACE_PTR pi = NULL;
	return api_f->C_GetInterface((CK_UTF8CHAR_PTR)names[(s >> 3) % COUNT(names)],
				     s & 0x20 ? NULL : v, s & 0x40 ? NULL : &pi,
				     s & 0x80 ? CKF_INTERFACE_FORK_SAFE : 0);
}

static CK_RV call(api_prog *r, const op *o)
{
	switch (o->k) {
	case K_INITIALIZE:
		return api_spend_init() ? call_initialize(r) : CKR_OK;
	case K_FINALIZE: {
		if (!api_spend_finalize())
			return CKR_OK;
		/* One in 64 really stops the module, and the input's end starts
		 * it again: with ASan, C_Finalize and C_Initialize take ~6 ms
		 * (OpenSSL's library context torn down and built again), most
		 * inputs ~0.2 ms; a profile of a run at one in 16 found 70% of
		 * the time there. The rest test pReserved. */
		CK_RV rv = api_f->C_Finalize(ap_u8(r) % 64 ? (void *)0x10 : NULL);
		if (rv == CKR_OK)
			api_module_finalized();
		return rv;
	}
	case K_GETINFO:
	case K_GETINFO_V2:
		return call_info(r, o);
	case K_SLOTLIST:
	case K_MECHLIST:
	case K_FIND:
		return call_lists(r, o);
	case K_SLOTINFO: {
		CK_SLOT_ID slot = api_slot(r);
		CK_SLOT_INFO *si = out_struct(r, sizeof(*si));
		CK_RV rv = api_f->C_GetSlotInfo(slot, si);
		if (rv == CKR_OK && si)
			padded_check(si->slotDescription, sizeof(si->slotDescription), o->name);
		return rv;
	}
	case K_TOKENINFO:
		return call_token_info(r);
	case K_MECHINFO: {
		CK_SLOT_ID slot = api_slot(r);
		CK_MECHANISM_TYPE t = ap_mech_type(r);
		CK_MECHANISM_INFO *mi = out_struct(r, sizeof(*mi));
		CK_RV rv = api_f->C_GetMechanismInfo(slot, t, mi);
		if (rv == CKR_OK && mi && mi->ulMinKeySize > mi->ulMaxKeySize)
			api_finding(o->name, "ulMinKeySize above ulMaxKeySize");
		return rv;
	}
	case K_INITTOKEN:
	case K_INITPIN:
	case K_SETPIN:
	case K_LOGIN:
	case K_LOGINUSER:
		return call_pin(r, o);
	case K_OPEN:
	case K_CLOSE:
	case K_CLOSEALL:
	case K_SESSINFO:
	case K_SESS:
	case K_CANCEL:
		return call_session(r, o);
	case K_CREATE:
	case K_COPY:
	case K_DESTROY:
	case K_DIGESTKEY:
	case K_OBJSIZE:
	case K_GETATTR:
	case K_SETATTR:
	case K_FINDINIT:
		return call_object(r, o);
	case K_OPINIT:
	case K_DIGESTINIT:
	case K_INOUT:
	case K_OUT:
	case K_IN:
	case K_VERIFY:
	case K_RANDOM:
	case K_SETOPSTATE:
		return call_crypt(r, o);
	case K_GENKEY:
	case K_GENPAIR:
	case K_WRAP:
	case K_UNWRAP:
	case K_DERIVE:
		return call_keys(r, o);
	case K_WAITSLOT: {
		CK_SLOT_ID *ps = out_struct(r, sizeof(*ps));
		uint8_t s = ap_u8(r);
		/* Without CKF_DONT_BLOCK the call may block: a module that
		 * blocks with no token ever inserted is a hang libFuzzer
		 * reports as a timeout. */
		return api_f->C_WaitForSlotEvent(s & 1 ? 0 : CKF_DONT_BLOCK, ps,
						 s & 2 ? (void *)0x10 : NULL);
	}
	case K_MSG:
	case K_MSGBEGIN:
	case K_MSGNEXT:
	case K_SIGNMSG:
	case K_VERIFYMSG:
	case K_PBEGIN:
		return call_message(r, o);
	case K_INTERFACES:
		return call_interfaces(r);
	case K_CRYPT_ROUNDTRIP:
		crypt_roundtrip(r);
		return CKR_OK;
	case K_SIGN_ROUNDTRIP:
		sign_roundtrip(r);
		return CKR_OK;
	case K_QINOUT:
	case K_QOUT:
	case K_QWRAP:
		return queried(r, o);
	case K_CLOCK: {
		/* past revalidate_seconds (60), just before it, past the
		 * rotation age (90 days). Like a C_Finalize, each costs the
		 * input a restart: only one in 16 acts. */
		static const CK_ULONG steps[] = {61, 59, 3600, 91 * 86400UL, 1};
		if (ap_u8(r) % 16 == 0)
			api_clock_advance(ap_pick(r, steps, COUNT(steps)) % (400 * 86400UL));
		return CKR_OK;
	}
	case K_KEYFILE:
		if (ap_u8(r) % 16 == 0)
			api_keyfile(ap_u8(r));
		return CKR_OK;
	}
	return CKR_OK;
}

/* P11KMS_APIFUZZ_TRACE=1: each call and its result on stderr, to read
 * what an input does (writing seeds, minimizing a finding). */
static bool trace(void)
{
	static int t = -1;
	if (t < 0)
		t = getenv("P11KMS_APIFUZZ_TRACE") != NULL;
	return t;
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
	(void)argc;
	(void)argv;
	api_env_init();
	return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	api_env_init(); /* the replay program calls no LLVMFuzzerInitialize */
	api_prog r = {.p = data, .n = size, .pos = 0, .end = false};
	msg_param = NULL;
	msg_plen = 0;
	api_input_begin();
	for (int i = 0; i < MAX_CALLS; i++) {
		uint8_t code = ap_u8(&r);
		if (r.end)
			break;
		const op *o = &ops[code % COUNT(ops)];
		size_t at = r.pos - 1;
		CK_RV rv = call(&r, o);
		if (trace())
			fprintf(stderr, "fuzz_api: [%zu] %s: %s\n", at, o->name, ckr_name(rv));
		api_rv(o->name, rv);
	}
	api_input_end();
	arena_free_all();
	return 0;
}
