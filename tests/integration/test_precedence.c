/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The order in which a function reports what is wrong with a call, table
 * by table (docs/CONFORMANCE.md). PKCS #11 5.1.7: a session handle error
 * (5.1.2) outranks every other. Among the rest the module keeps one order:
 *   Init, GenerateKey, WrapKey, UnwrapKey: CKR_ARGUMENTS_BAD, then
 *     CKR_MECHANISM_INVALID, CKR_MECHANISM_PARAM_INVALID, the key's error,
 *     and CKR_OPERATION_ACTIVE last;
 *   calls on a running operation: CKR_OPERATION_NOT_INITIALIZED, then
 *     CKR_ARGUMENTS_BAD; an error ends a running encrypt, decrypt, digest,
 *     sign or verify operation (5.2), not a message-based one;
 *   object, session-information, login and PIN functions:
 *     CKR_ARGUMENTS_BAD, then the template, the state and the object
 *     (C_FindObjects, C_FindObjectsFinal: CKR_OPERATION_NOT_INITIALIZED
 *     first, as for any running operation), and each refusal logs a line
 *     saying what was wrong before "<function>: <CKR name>".
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "harness.h"

static h_env env;
static CK_SESSION_HANDLE S, closed_session;
static CK_OBJECT_HANDLE aes, aes2, kek, hmac; /* kek: wrap only (docs/SECURITY.md) */
static uint8_t blob[40];

#define NO_KEY ((CK_OBJECT_HANDLE)0x7ffff123)
#define ALL_OPS                                                                   \
	(CKF_ENCRYPT | CKF_DECRYPT | CKF_DIGEST | CKF_SIGN | CKF_VERIFY |         \
	 CKF_MESSAGE_ENCRYPT | CKF_MESSAGE_DECRYPT)

static uint8_t iv16[16], iv8[8], data[32], out[128], tag[16], gcm_iv[12];
static CK_GCM_MESSAGE_PARAMS mp = {gcm_iv, 12, 0, CKG_NO_GENERATE, tag, 128};

/* A session secret key of type kt with the usage attributes u[0..n) true. */
static CK_OBJECT_HANDLE make_key(CK_KEY_TYPE kt, const CK_ATTRIBUTE_TYPE *u, size_t n)
{
	CK_OBJECT_CLASS c = CKO_SECRET_KEY;
	CK_BBOOL t = CK_TRUE, f = CK_FALSE;
	uint8_t v[32];
	h_fill(v, sizeof(v), (uint8_t)kt);
	CK_ATTRIBUTE tmpl[9] = {
		{CKA_CLASS, &c, sizeof(c)}, {CKA_KEY_TYPE, &kt, sizeof(kt)},
		{CKA_VALUE, v, sizeof(v)},  {CKA_TOKEN, &f, 1},
		{CKA_EXTRACTABLE, &t, 1},
	};
	for (size_t i = 0; i < n; i++)
		tmpl[5 + i] = (CK_ATTRIBUTE){u[i], &t, 1};
	CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
	assert_ok(p11->C_CreateObject(S, tmpl, 5 + n, &h));
	return h;
}

static int setup(void **state)
{
	(void)state;
	h_env_new(&env, "required", "");
	assert_ok(h_initialize(&env));
	h_init_token(&env);
	S = h_user_session(&env);
	static const CK_ATTRIBUTE_TYPE ciph[] = {CKA_ENCRYPT, CKA_DECRYPT},
				       wrapping[] = {CKA_WRAP, CKA_UNWRAP},
				       mac[] = {CKA_SIGN, CKA_VERIFY};
	aes = make_key(CKK_AES, ciph, 2);
	aes2 = make_key(CKK_AES, ciph, 2);
	kek = make_key(CKK_AES, wrapping, 2);
	hmac = make_key(CKK_GENERIC_SECRET, mac, 2);
	CK_MECHANISM kw = {CKM_AES_KEY_WRAP, NULL, 0};
	CK_ULONG bl = sizeof(blob);
	assert_ok(p11->C_WrapKey(S, &kw, kek, aes2, blob, &bl));
	assert_ok(p11->C_OpenSession(env.slot, CKF_SERIAL_SESSION, NULL, NULL, &closed_session));
	assert_ok(p11->C_CloseSession(closed_session));
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	p11->C_Finalize(NULL);
	h_env_free(&env);
	return 0;
}

static const CK_SESSION_HANDLE bad_sessions[] = {CK_INVALID_HANDLE, 0x7ffffff0};

/* --- functions that start something with a mechanism ------------------- */

static CK_RV encrypt_init(CK_SESSION_HANDLE s, CK_MECHANISM *m, CK_OBJECT_HANDLE k, bool null)
{
	(void)null;
	return p11->C_EncryptInit(s, m, k);
}
static CK_RV decrypt_init(CK_SESSION_HANDLE s, CK_MECHANISM *m, CK_OBJECT_HANDLE k, bool null)
{
	(void)null;
	return p11->C_DecryptInit(s, m, k);
}
static CK_RV sign_init(CK_SESSION_HANDLE s, CK_MECHANISM *m, CK_OBJECT_HANDLE k, bool null)
{
	(void)null;
	return p11->C_SignInit(s, m, k);
}
static CK_RV verify_init(CK_SESSION_HANDLE s, CK_MECHANISM *m, CK_OBJECT_HANDLE k, bool null)
{
	(void)null;
	return p11->C_VerifyInit(s, m, k);
}
static CK_RV digest_init(CK_SESSION_HANDLE s, CK_MECHANISM *m, CK_OBJECT_HANDLE k, bool null)
{
	(void)null, (void)k;
	return p11->C_DigestInit(s, m);
}
static CK_RV msg_enc_init(CK_SESSION_HANDLE s, CK_MECHANISM *m, CK_OBJECT_HANDLE k, bool null)
{
	(void)null;
	return p11->C_MessageEncryptInit(s, m, k);
}
static CK_RV msg_dec_init(CK_SESSION_HANDLE s, CK_MECHANISM *m, CK_OBJECT_HANDLE k, bool null)
{
	(void)null;
	return p11->C_MessageDecryptInit(s, m, k);
}
static CK_RV generate(CK_SESSION_HANDLE s, CK_MECHANISM *m, CK_OBJECT_HANDLE k, bool null)
{
	(void)k;
	CK_ULONG len = 32;
	CK_ATTRIBUTE t = {CKA_VALUE_LEN, &len, sizeof(len)};
	CK_OBJECT_HANDLE h;
	return p11->C_GenerateKey(s, m, &t, 1, null ? NULL : &h);
}
static CK_RV wrap(CK_SESSION_HANDLE s, CK_MECHANISM *m, CK_OBJECT_HANDLE k, bool null)
{
	CK_ULONG l = sizeof(out);
	return p11->C_WrapKey(s, m, k, aes2, out, null ? NULL : &l);
}
static CK_RV unwrap(CK_SESSION_HANDLE s, CK_MECHANISM *m, CK_OBJECT_HANDLE k, bool null)
{
	CK_OBJECT_CLASS c = CKO_SECRET_KEY;
	CK_KEY_TYPE kt = CKK_AES;
	CK_ATTRIBUTE t[] = {{CKA_CLASS, &c, sizeof(c)}, {CKA_KEY_TYPE, &kt, sizeof(kt)}};
	CK_OBJECT_HANDLE h;
	return p11->C_UnwrapKey(s, m, k, blob, sizeof(blob), t, 2, null ? NULL : &h);
}

typedef struct init_row {
	const char *name;
	CK_RV (*call)(CK_SESSION_HANDLE s, CK_MECHANISM *m, CK_OBJECT_HANDLE k, bool null);
	CK_MECHANISM good, bad_param, other_function;
	CK_OBJECT_HANDLE *key; /* NULL: the function takes none */
	CK_RV key_invalid;
	bool more_args;        /* pointers besides pMechanism */
	bool stays;            /* a good call leaves an operation active */
} init_row;

#define M(t, p, l) {t, p, l}
static const init_row init_rows[] = {
	{"C_EncryptInit", encrypt_init, M(CKM_AES_CBC_PAD, iv16, 16),
	 M(CKM_AES_CBC_PAD, iv8, 8), M(CKM_SHA256, NULL, 0), &aes, CKR_KEY_HANDLE_INVALID,
	 false, true},
	{"C_DecryptInit", decrypt_init, M(CKM_AES_CBC_PAD, iv16, 16),
	 M(CKM_AES_CBC_PAD, NULL, 16), M(CKM_SHA256_HMAC, NULL, 0), &aes,
	 CKR_KEY_HANDLE_INVALID, false, true},
	{"C_SignInit", sign_init, M(CKM_SHA256_HMAC, NULL, 0), M(CKM_SHA256_HMAC, iv8, 8),
	 M(CKM_AES_CBC, iv16, 16), &hmac, CKR_KEY_HANDLE_INVALID, false, true},
	{"C_VerifyInit", verify_init, M(CKM_SHA256_HMAC, NULL, 0),
	 M(CKM_SHA256_HMAC_GENERAL, NULL, 0), M(CKM_SHA256, NULL, 0), &hmac,
	 CKR_KEY_HANDLE_INVALID, false, true},
	{"C_DigestInit", digest_init, M(CKM_SHA256, NULL, 0), M(CKM_SHA256, iv8, 8),
	 M(CKM_AES_ECB, NULL, 0), NULL, CKR_OK, false, true},
	{"C_MessageEncryptInit", msg_enc_init, M(CKM_AES_GCM, NULL, 0), M(CKM_AES_GCM, NULL, 8),
	 M(CKM_AES_CBC_PAD, iv16, 16), &aes, CKR_KEY_HANDLE_INVALID, false, true},
	{"C_MessageDecryptInit", msg_dec_init, M(CKM_AES_GCM, NULL, 0), M(CKM_AES_GCM, NULL, 8),
	 M(CKM_SHA256, NULL, 0), &aes, CKR_KEY_HANDLE_INVALID, false, true},
	{"C_GenerateKey", generate, M(CKM_AES_KEY_GEN, NULL, 0), M(CKM_AES_KEY_GEN, iv8, 8),
	 M(CKM_AES_ECB, NULL, 0), NULL, CKR_OK, true, false},
	{"C_WrapKey", wrap, M(CKM_AES_KEY_WRAP, NULL, 0), M(CKM_AES_KEY_WRAP, iv16, 16),
	 M(CKM_AES_ECB, NULL, 0), &kek, CKR_WRAPPING_KEY_HANDLE_INVALID, true, false},
	{"C_UnwrapKey", unwrap, M(CKM_AES_KEY_WRAP, NULL, 0), M(CKM_AES_KEY_WRAP, iv8, 4),
	 M(CKM_SHA256, NULL, 0), &kek, CKR_UNWRAPPING_KEY_HANDLE_INVALID, true, false},
};

static unsigned fails;

static void expect(const char *fn, const char *what, CK_RV got, CK_RV want)
{
	if (got == want)
		return;
	print_message("%s, %s: got 0x%lx, want 0x%lx\n", fn, what, (unsigned long)got,
		      (unsigned long)want);
	fails++;
}

static void test_init_precedence(void **state)
{
	(void)state;
	CK_MECHANISM unknown = {CKM_MD5, NULL, 0}; /* in no table of this module */
	fails = 0;
	for (size_t i = 0; i < sizeof(init_rows) / sizeof(init_rows[0]); i++) {
		const init_row *r = &init_rows[i];
		CK_MECHANISM good = r->good, bad_param = r->bad_param, other = r->other_function;
		CK_OBJECT_HANDLE key = r->key ? *r->key : CK_INVALID_HANDLE;
		/* A session error outranks everything. */
		for (size_t b = 0; b < 2; b++) {
			expect(r->name, "no session, NULL pointers",
			       r->call(bad_sessions[b], NULL, NO_KEY, true),
			       CKR_SESSION_HANDLE_INVALID);
			expect(r->name, "no session, unknown mechanism",
			       r->call(bad_sessions[b], &unknown, NO_KEY, false),
			       CKR_SESSION_HANDLE_INVALID);
			expect(r->name, "no session, bad parameter",
			       r->call(bad_sessions[b], &bad_param, key, false),
			       CKR_SESSION_HANDLE_INVALID);
		}
		expect(r->name, "closed session, unknown mechanism",
		       r->call(closed_session, &unknown, NO_KEY, false),
		       CKR_SESSION_HANDLE_INVALID);
		/* Then the caller's pointers, the mechanism, its parameter, the key. */
		expect(r->name, "NULL pMechanism", r->call(S, NULL, NO_KEY, false),
		       CKR_ARGUMENTS_BAD);
		if (r->more_args)
			expect(r->name, "NULL out pointer, unknown mechanism",
			       r->call(S, &unknown, NO_KEY, true), CKR_ARGUMENTS_BAD);
		expect(r->name, "unknown mechanism, no key", r->call(S, &unknown, NO_KEY, false),
		       CKR_MECHANISM_INVALID);
		expect(r->name, "a mechanism of another function",
		       r->call(S, &other, NO_KEY, false), CKR_MECHANISM_INVALID);
		expect(r->name, "bad parameter, no key", r->call(S, &bad_param, NO_KEY, false),
		       CKR_MECHANISM_PARAM_INVALID);
		if (r->key)
			expect(r->name, "no key", r->call(S, &good, NO_KEY, false),
			       r->key_invalid);
		/* CKR_OPERATION_ACTIVE only for a call that is right otherwise. */
		expect(r->name, "a good call", r->call(S, &good, key, false), CKR_OK);
		if (r->stays) {
			expect(r->name, "again", r->call(S, &good, key, false),
			       CKR_OPERATION_ACTIVE);
			expect(r->name, "again, unknown mechanism",
			       r->call(S, &unknown, key, false), CKR_MECHANISM_INVALID);
			assert_ok(p11->C_SessionCancel(S, ALL_OPS));
		}
	}
	if (fails)
		fail_msg("%u answers out of order", fails);
	/* A failing call says what was wrong before naming its code. */
	assert_true(h_log_contains(&env, "mechanism 0x210 is not offered for this function"));
}

/* --- calls on a running operation -------------------------------------- */

static CK_RV cipher_start(CK_SESSION_HANDLE s, bool enc)
{
	CK_MECHANISM m = {CKM_AES_CBC_PAD, iv16, 16};
	return enc ? p11->C_EncryptInit(s, &m, aes) : p11->C_DecryptInit(s, &m, aes);
}
static CK_RV enc_start(CK_SESSION_HANDLE s)
{
	return cipher_start(s, true);
}
static CK_RV dec_start(CK_SESSION_HANDLE s)
{
	return cipher_start(s, false);
}
static CK_RV dig_start(CK_SESSION_HANDLE s)
{
	CK_MECHANISM m = {CKM_SHA256, NULL, 0};
	return p11->C_DigestInit(s, &m);
}
static CK_RV sig_start(CK_SESSION_HANDLE s)
{
	CK_MECHANISM m = {CKM_SHA256_HMAC, NULL, 0};
	return p11->C_SignInit(s, &m, hmac);
}
static CK_RV ver_start(CK_SESSION_HANDLE s)
{
	CK_MECHANISM m = {CKM_SHA256_HMAC, NULL, 0};
	return p11->C_VerifyInit(s, &m, hmac);
}
static CK_RV menc_start(CK_SESSION_HANDLE s)
{
	CK_MECHANISM m = {CKM_AES_GCM, NULL, 0};
	return p11->C_MessageEncryptInit(s, &m, aes);
}
static CK_RV mdec_start(CK_SESSION_HANDLE s)
{
	CK_MECHANISM m = {CKM_AES_GCM, NULL, 0};
	return p11->C_MessageDecryptInit(s, &m, aes);
}
static CK_RV menc_begun(CK_SESSION_HANDLE s)
{
	CK_RV rv = menc_start(s);
	return rv ? rv : p11->C_EncryptMessageBegin(s, &mp, sizeof(mp), NULL, 0);
}
static CK_RV mdec_begun(CK_SESSION_HANDLE s)
{
	CK_RV rv = mdec_start(s);
	return rv ? rv : p11->C_DecryptMessageBegin(s, &mp, sizeof(mp), NULL, 0);
}

static CK_ULONG olen;
#define OUTLEN (olen = sizeof(out), null ? NULL : &olen)
#define DATA (null ? NULL : data)

static CK_RV encrypt(CK_SESSION_HANDLE s, bool null)
{
	return p11->C_Encrypt(s, data, 16, out, OUTLEN);
}
static CK_RV encrypt_update(CK_SESSION_HANDLE s, bool null)
{
	return p11->C_EncryptUpdate(s, DATA, 16, out, OUTLEN);
}
static CK_RV encrypt_final(CK_SESSION_HANDLE s, bool null)
{
	return p11->C_EncryptFinal(s, out, OUTLEN);
}
static CK_RV decrypt(CK_SESSION_HANDLE s, bool null)
{
	return p11->C_Decrypt(s, data, 16, out, OUTLEN);
}
static CK_RV decrypt_update(CK_SESSION_HANDLE s, bool null)
{
	return p11->C_DecryptUpdate(s, DATA, 16, out, OUTLEN);
}
static CK_RV decrypt_final(CK_SESSION_HANDLE s, bool null)
{
	return p11->C_DecryptFinal(s, out, OUTLEN);
}
static CK_RV digest(CK_SESSION_HANDLE s, bool null)
{
	return p11->C_Digest(s, data, 3, out, OUTLEN);
}
static CK_RV digest_update(CK_SESSION_HANDLE s, bool null)
{
	return p11->C_DigestUpdate(s, DATA, 3);
}
static CK_RV digest_key(CK_SESSION_HANDLE s, bool null)
{
	return p11->C_DigestKey(s, null ? NO_KEY : aes);
}
static CK_RV digest_final(CK_SESSION_HANDLE s, bool null)
{
	return p11->C_DigestFinal(s, out, OUTLEN);
}
static CK_RV sign(CK_SESSION_HANDLE s, bool null)
{
	return p11->C_Sign(s, data, 3, out, OUTLEN);
}
static CK_RV sign_update(CK_SESSION_HANDLE s, bool null)
{
	return p11->C_SignUpdate(s, DATA, 3);
}
static CK_RV sign_final(CK_SESSION_HANDLE s, bool null)
{
	return p11->C_SignFinal(s, out, OUTLEN);
}
static CK_RV verify(CK_SESSION_HANDLE s, bool null)
{
	return p11->C_Verify(s, data, 3, null ? NULL : out, 32);
}
static CK_RV verify_update(CK_SESSION_HANDLE s, bool null)
{
	return p11->C_VerifyUpdate(s, DATA, 3);
}
static CK_RV verify_final(CK_SESSION_HANDLE s, bool null)
{
	return p11->C_VerifyFinal(s, null ? NULL : out, 32);
}
static CK_RV encrypt_message(CK_SESSION_HANDLE s, bool null)
{
	return p11->C_EncryptMessage(s, &mp, sizeof(mp), NULL, 0, data, 16, out, OUTLEN);
}
static CK_RV encrypt_message_begin(CK_SESSION_HANDLE s, bool null)
{
	return p11->C_EncryptMessageBegin(s, &mp, sizeof(mp), DATA, 3);
}
static CK_RV encrypt_message_next(CK_SESSION_HANDLE s, bool null)
{
	return p11->C_EncryptMessageNext(s, &mp, sizeof(mp), data, 16, out, OUTLEN, 0);
}
static CK_RV message_encrypt_final(CK_SESSION_HANDLE s, bool null)
{
	(void)null;
	return p11->C_MessageEncryptFinal(s);
}
static CK_RV decrypt_message(CK_SESSION_HANDLE s, bool null)
{
	return p11->C_DecryptMessage(s, &mp, sizeof(mp), NULL, 0, data, 16, out, OUTLEN);
}
static CK_RV decrypt_message_begin(CK_SESSION_HANDLE s, bool null)
{
	return p11->C_DecryptMessageBegin(s, &mp, sizeof(mp), DATA, 3);
}
static CK_RV decrypt_message_next(CK_SESSION_HANDLE s, bool null)
{
	return p11->C_DecryptMessageNext(s, &mp, sizeof(mp), data, 16, out, OUTLEN, 0);
}
static CK_RV message_decrypt_final(CK_SESSION_HANDLE s, bool null)
{
	(void)null;
	return p11->C_MessageDecryptFinal(s);
}

typedef struct run_row {
	const char *name;
	CK_RV (*start)(CK_SESSION_HANDLE s); /* the state the call needs */
	CK_RV (*call)(CK_SESSION_HANDLE s, bool null);
	CK_RV bad;      /* the answer for the bad argument (CKR_OK: none) */
	bool ends;      /* that error ends the operation */
} run_row;

static const run_row run_rows[] = {
	{"C_Encrypt", enc_start, encrypt, CKR_ARGUMENTS_BAD, true},
	{"C_EncryptUpdate", enc_start, encrypt_update, CKR_ARGUMENTS_BAD, true},
	{"C_EncryptFinal", enc_start, encrypt_final, CKR_ARGUMENTS_BAD, true},
	{"C_Decrypt", dec_start, decrypt, CKR_ARGUMENTS_BAD, true},
	{"C_DecryptUpdate", dec_start, decrypt_update, CKR_ARGUMENTS_BAD, true},
	{"C_DecryptFinal", dec_start, decrypt_final, CKR_ARGUMENTS_BAD, true},
	{"C_Digest", dig_start, digest, CKR_ARGUMENTS_BAD, true},
	{"C_DigestUpdate", dig_start, digest_update, CKR_ARGUMENTS_BAD, true},
	/* a key refused leaves the digest as it was */
	{"C_DigestKey", dig_start, digest_key, CKR_KEY_HANDLE_INVALID, false},
	{"C_DigestFinal", dig_start, digest_final, CKR_ARGUMENTS_BAD, true},
	{"C_Sign", sig_start, sign, CKR_ARGUMENTS_BAD, true},
	{"C_SignUpdate", sig_start, sign_update, CKR_ARGUMENTS_BAD, true},
	{"C_SignFinal", sig_start, sign_final, CKR_ARGUMENTS_BAD, true},
	{"C_Verify", ver_start, verify, CKR_ARGUMENTS_BAD, true},
	{"C_VerifyUpdate", ver_start, verify_update, CKR_ARGUMENTS_BAD, true},
	{"C_VerifyFinal", ver_start, verify_final, CKR_ARGUMENTS_BAD, true},
	/* a failed message leaves the message-based operation active */
	{"C_EncryptMessage", menc_start, encrypt_message, CKR_ARGUMENTS_BAD, false},
	{"C_EncryptMessageBegin", menc_start, encrypt_message_begin, CKR_ARGUMENTS_BAD, false},
	{"C_EncryptMessageNext", menc_begun, encrypt_message_next, CKR_ARGUMENTS_BAD, false},
	{"C_MessageEncryptFinal", menc_start, message_encrypt_final, CKR_OK, false},
	{"C_DecryptMessage", mdec_start, decrypt_message, CKR_ARGUMENTS_BAD, false},
	{"C_DecryptMessageBegin", mdec_start, decrypt_message_begin, CKR_ARGUMENTS_BAD, false},
	{"C_DecryptMessageNext", mdec_begun, decrypt_message_next, CKR_ARGUMENTS_BAD, false},
	{"C_MessageDecryptFinal", mdec_start, message_decrypt_final, CKR_OK, false},
};

static void test_running_precedence(void **state)
{
	(void)state;
	fails = 0;
	for (size_t i = 0; i < sizeof(run_rows) / sizeof(run_rows[0]); i++) {
		const run_row *r = &run_rows[i];
		for (size_t b = 0; b < 2; b++)
			expect(r->name, "no session, bad argument", r->call(bad_sessions[b], true),
			       CKR_SESSION_HANDLE_INVALID);
		expect(r->name, "closed session", r->call(closed_session, true),
		       CKR_SESSION_HANDLE_INVALID);
		/* No operation: that is what is wrong, whatever the arguments. */
		expect(r->name, "no operation, bad argument", r->call(S, true),
		       CKR_OPERATION_NOT_INITIALIZED);
		if (r->bad != CKR_OK) {
			assert_ok(r->start(S));
			expect(r->name, "bad argument", r->call(S, true), r->bad);
			expect(r->name, "bad argument, again", r->call(S, true),
			       r->ends ? CKR_OPERATION_NOT_INITIALIZED : r->bad);
		}
		assert_ok(p11->C_SessionCancel(S, ALL_OPS));
	}
	if (fails)
		fail_msg("%u answers out of order", fails);
	assert_true(h_log_contains(&env, "no encryption operation is active in this session"));
}

/* C_SeedRandom and C_GenerateRandom: the session, then the pointers. */
static void test_random_precedence(void **state)
{
	(void)state;
	for (size_t b = 0; b < 2; b++) {
		assert_rv(p11->C_GenerateRandom(bad_sessions[b], NULL, 8),
			  CKR_SESSION_HANDLE_INVALID);
		assert_rv(p11->C_SeedRandom(bad_sessions[b], NULL, 8), CKR_SESSION_HANDLE_INVALID);
	}
	assert_rv(p11->C_GenerateRandom(S, NULL, 8), CKR_ARGUMENTS_BAD);
	assert_rv(p11->C_SeedRandom(S, NULL, 8), CKR_ARGUMENTS_BAD);
	assert_rv(p11->C_SeedRandom(S, data, 8), CKR_RANDOM_SEED_NOT_SUPPORTED);
	assert_ok(p11->C_GenerateRandom(S, out, 8));
}

/* --- object, session information, login and PIN functions ------------- */

static CK_OBJECT_HANDLE ph;
static CK_ULONG cnt;
static CK_ATTRIBUTE label_tmpl[] = {{CKA_LABEL, "x", 1}};
#define TMPL (null ? NULL : label_tmpl)
#define PH (null ? NULL : &ph)
#define PIN (null ? NULL : (CK_UTF8CHAR_PTR)USER_PIN)

static CK_RV create_object(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o, bool null)
{
	(void)o;
	/* The template lacks CKA_CLASS: an error after the pointers'. */
	return p11->C_CreateObject(s, TMPL, 1, PH);
}
static CK_RV copy_object(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o, bool null)
{
	return p11->C_CopyObject(s, o, TMPL, 1, PH);
}
static CK_RV destroy_object(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o, bool null)
{
	(void)null;
	return p11->C_DestroyObject(s, o);
}
static CK_RV get_object_size(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o, bool null)
{
	return p11->C_GetObjectSize(s, o, null ? NULL : &cnt);
}
static CK_RV get_attribute_value(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o, bool null)
{
	CK_ATTRIBUTE a = {CKA_LABEL, NULL, 0};
	return p11->C_GetAttributeValue(s, o, null ? NULL : &a, 1);
}
static CK_RV set_attribute_value(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o, bool null)
{
	return p11->C_SetAttributeValue(s, o, TMPL, 1);
}
static CK_RV find_objects_init(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o, bool null)
{
	(void)o;
	return p11->C_FindObjectsInit(s, TMPL, 1);
}
static CK_RV find_objects(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o, bool null)
{
	(void)o;
	return p11->C_FindObjects(s, null ? NULL : &ph, 1, null ? NULL : &cnt);
}
static CK_RV find_objects_final(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o, bool null)
{
	(void)o, (void)null;
	return p11->C_FindObjectsFinal(s);
}
static CK_RV get_session_info(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o, bool null)
{
	(void)o;
	CK_SESSION_INFO si;
	return p11->C_GetSessionInfo(s, null ? NULL : &si);
}
static CK_RV login(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o, bool null)
{
	(void)o;
	return p11->C_Login(s, CKU_USER, PIN, 4); /* S is logged in already */
}
static CK_RV init_pin(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o, bool null)
{
	(void)o;
	return p11->C_InitPIN(s, PIN, 4); /* needs the SO, not S's user */
}
static CK_RV set_pin(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o, bool null)
{
	(void)o;
	return p11->C_SetPIN(s, PIN, 4, PIN, 4); /* on a read-only session */
}
static CK_RV logout(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o, bool null)
{
	(void)o, (void)null;
	return p11->C_Logout(s);
}
static CK_RV start_find(CK_SESSION_HANDLE s)
{
	return p11->C_FindObjectsInit(s, NULL, 0);
}

typedef struct obj_row {
	const char *name, *logged; /* the function, and its name in the log */
	CK_RV (*call)(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE o, bool null);
	CK_RV null_rv; /* NULL pointers on a good session (CKR_OK: it takes none) */
	CK_RV good_rv; /* good pointers, no such object or the wrong state */
	CK_RV (*start)(CK_SESSION_HANDLE s); /* the search it needs */
	bool read_only;                      /* called on a read-only session */
} obj_row;

static const obj_row obj_rows[] = {
	{"C_CreateObject", "CreateObject", create_object, CKR_ARGUMENTS_BAD,
	 CKR_TEMPLATE_INCOMPLETE, NULL, false},
	{"C_CopyObject", "CopyObject", copy_object, CKR_ARGUMENTS_BAD,
	 CKR_OBJECT_HANDLE_INVALID, NULL, false},
	{"C_DestroyObject", "DestroyObject", destroy_object, CKR_OK,
	 CKR_OBJECT_HANDLE_INVALID, NULL, false},
	{"C_GetObjectSize", "GetObjectSize", get_object_size, CKR_ARGUMENTS_BAD,
	 CKR_OBJECT_HANDLE_INVALID, NULL, false},
	{"C_GetAttributeValue", "GetAttributeValue", get_attribute_value, CKR_ARGUMENTS_BAD,
	 CKR_OBJECT_HANDLE_INVALID, NULL, false},
	{"C_SetAttributeValue", "SetAttributeValue", set_attribute_value, CKR_ARGUMENTS_BAD,
	 CKR_OBJECT_HANDLE_INVALID, NULL, false},
	/* CKR_OPERATION_ACTIVE last, as for every function that starts one */
	{"C_FindObjectsInit", "FindObjectsInit", find_objects_init, CKR_ARGUMENTS_BAD,
	 CKR_OPERATION_ACTIVE, start_find, false},
	{"C_FindObjects", "FindObjects", find_objects, CKR_ARGUMENTS_BAD, CKR_OK, start_find,
	 false},
	{"C_FindObjectsFinal", "FindObjectsFinal", find_objects_final, CKR_OK, CKR_OK,
	 start_find, false},
	{"C_GetSessionInfo", "GetSessionInfo", get_session_info, CKR_ARGUMENTS_BAD, CKR_OK,
	 NULL, false},
	{"C_Login", "Login", login, CKR_ARGUMENTS_BAD, CKR_USER_ALREADY_LOGGED_IN, NULL, false},
	{"C_InitPIN", "InitPIN", init_pin, CKR_ARGUMENTS_BAD, CKR_USER_NOT_LOGGED_IN, NULL,
	 false},
	{"C_SetPIN", "SetPIN", set_pin, CKR_ARGUMENTS_BAD, CKR_SESSION_READ_ONLY, NULL, true},
	{"C_Logout", "Logout", logout, CKR_OK, CKR_OK, NULL, false}, /* the last row */
};

/* The module log's size now: what a call adds is read from there on. */
static long log_mark(void)
{
	struct stat st;
	return stat(env.log, &st) == 0 ? (long)st.st_size : 0;
}

/* Did the lines logged since mark say what was wrong, besides naming the
 * code ("info api: <logged>: CKR_...")? */
static bool refusal_explained(long mark, const char *logged)
{
	FILE *f = fopen(env.log, "r");
	if (!f)
		return false;
	char line[2048], code[128];
	snprintf(code, sizeof(code), " %s: CKR_", logged);
	unsigned said = 0;
	bool named = false;
	if (fseek(f, mark, SEEK_SET) == 0)
		while (fgets(line, sizeof(line), f)) {
			if (strstr(line, " trace "))
				continue;
			if (strstr(line, code))
				named = true;
			else
				said++;
		}
	fclose(f);
	return named && said > 0;
}

static void expect_logged(const obj_row *r, const char *what, CK_SESSION_HANDLE s,
			  CK_OBJECT_HANDLE o, bool null, CK_RV want)
{
	long mark = log_mark();
	CK_RV got = r->call(s, o, null);
	expect(r->name, what, got, want);
	if (got == want && want != CKR_OK && !refusal_explained(mark, r->logged)) {
		print_message("%s, %s: no log line says what was wrong\n", r->name, what);
		fails++;
	}
}

static void test_object_precedence(void **state)
{
	(void)state;
	fails = 0;
	CK_SESSION_HANDLE ro;
	assert_ok(p11->C_OpenSession(env.slot, CKF_SERIAL_SESSION, NULL, NULL, &ro));
	size_t nrows = sizeof(obj_rows) / sizeof(obj_rows[0]);
	for (size_t i = 0; i < nrows; i++) {
		const obj_row *r = &obj_rows[i];
		CK_SESSION_HANDLE s = r->read_only ? ro : S;
		/* A session error outranks everything, NULL pointers included. */
		for (size_t b = 0; b < 2; b++)
			expect_logged(r, "no session, NULL pointers", bad_sessions[b], NO_KEY,
				      true, CKR_SESSION_HANDLE_INVALID);
		expect_logged(r, "closed session, NULL pointers", closed_session, NO_KEY, true,
			      CKR_SESSION_HANDLE_INVALID);
		if (r->start) {
			/* No search: that is what is wrong, whatever the arguments. */
			if (r->good_rv != CKR_OPERATION_ACTIVE)
				expect_logged(r, "no search, NULL pointers", s, NO_KEY, true,
					      CKR_OPERATION_NOT_INITIALIZED);
			assert_ok(r->start(s));
		}
		/* Then the pointers, before the object, the template and the state. */
		if (r->null_rv != CKR_OK)
			expect_logged(r, "NULL pointers, no object", s, NO_KEY, true, r->null_rv);
		if (r->good_rv != CKR_OK)
			expect_logged(r, "no object, a bad template or the wrong state", s, NO_KEY,
				      false, r->good_rv);
		assert_ok(p11->C_SessionCancel(s, CKF_FIND_OBJECTS));
	}
	/* C_Logout with nobody logged in. */
	assert_ok(p11->C_Logout(S));
	expect_logged(&obj_rows[nrows - 1], "nobody logged in", S, NO_KEY, false,
		      CKR_USER_NOT_LOGGED_IN);
	assert_ok(p11->C_CloseSession(ro));
	if (fails)
		fail_msg("%u answers out of order or unexplained", fails);
}

int main(void)
{
	h_load();
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_init_precedence, setup, teardown),
		cmocka_unit_test_setup_teardown(test_running_precedence, setup, teardown),
		cmocka_unit_test_setup_teardown(test_random_precedence, setup, teardown),
		cmocka_unit_test_setup_teardown(test_object_precedence, setup, teardown),
	};
	return cmocka_run_group_tests_name("precedence", tests, NULL, NULL);
}
