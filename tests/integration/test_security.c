/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The attacks of issue 15 through the exported API, one test each
 * (docs/SECURITY.md): the Tookan attacks (Bortolozzo, Centenaro, Focardi,
 * Steel, CCS 2010) on local keys and on the KMS envelope key, the
 * CKA_WRAP_WITH_TRUSTED bypass by C_CopyObject, the CKA_VALUE oracle, the
 * AES-CTR counter wrap, and revocation of running operations and of keys
 * derived from a KMS answer. Each fails on the module before the fix.
 */
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#include "harness.h"

static h_env env;
static CK_SESSION_HANDLE S;
static CK_BBOOL T = CK_TRUE, F = CK_FALSE;
static CK_OBJECT_CLASS SECRET = CKO_SECRET_KEY;
static CK_KEY_TYPE AES = CKK_AES;

/* The victim's value: known to the test, never to be seen through the API. */
static const uint8_t victim_value[32] = {0x56, 0x69, 0x63, 0x74, 0x69, 0x6d, 0x21, 0x07,
					 0x11, 0x22, 0x33, 0x44, 0x55, 0x66, 0x77, 0x88,
					 0x99, 0xaa, 0xbb, 0xcc, 0xdd, 0xee, 0xff, 0x01,
					 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08, 0x09};

static int setup_with(const char *login, const char *extra)
{
	h_env_new(&env, login, extra);
	assert_ok(h_initialize(&env));
	h_init_token(&env);
	S = h_user_session(&env);
	return 0;
}

static int setup(void **state)
{
	(void)state;
	return setup_with("required", "\"keys\": [{\"id\": \"master\", \"label\": \"kms-master\"}]");
}

static int setup_revocable(void **state)
{
	(void)state;
	return setup_with("optional", "\"revalidate_seconds\": 1, \"offline_grace_seconds\": 0, "
				      "\"keys\": [{\"id\": \"master\", \"label\": \"kms-master\"}]");
}

static int teardown(void **state)
{
	(void)state;
	p11->C_Finalize(NULL);
	h_env_free(&env);
	return 0;
}

/* A session AES key made by C_CreateObject from the template base + more. */
static CK_RV key_try(const uint8_t *v, const CK_ATTRIBUTE *more, CK_ULONG n,
		     CK_OBJECT_HANDLE *h)
{
	CK_ATTRIBUTE t[16] = {{CKA_CLASS, &SECRET, sizeof(SECRET)},
			      {CKA_KEY_TYPE, &AES, sizeof(AES)},
			      {CKA_VALUE, (void *)v, 32},
			      {CKA_TOKEN, &F, 1}};
	for (CK_ULONG i = 0; i < n; i++)
		t[4 + i] = more[i];
	return p11->C_CreateObject(S, t, 4 + n, h);
}

static CK_OBJECT_HANDLE key(const uint8_t *v, const CK_ATTRIBUTE *more, CK_ULONG n)
{
	CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
	assert_ok(key_try(v, more, n, &h));
	return h;
}

/* The victim: sensitive, and extractable (so it may be wrapped at all). */
static CK_OBJECT_HANDLE victim(void)
{
	CK_ATTRIBUTE a[] = {{CKA_SENSITIVE, &T, 1}, {CKA_EXTRACTABLE, &T, 1}};
	return key(victim_value, a, 2);
}

static bool reveals_victim(const uint8_t *p, CK_ULONG n)
{
	for (CK_ULONG i = 0; i + 32 <= n; i++)
		if (memcmp(p + i, victim_value, 32) == 0)
			return true;
	return false;
}

static CK_BBOOL get_bool(CK_OBJECT_HANDLE h, CK_ATTRIBUTE_TYPE t)
{
	CK_BBOOL b = 0xee;
	CK_ATTRIBUTE a = {t, &b, 1};
	assert_ok(p11->C_GetAttributeValue(S, h, &a, 1));
	return b;
}

/* --- A1: wrap, then decrypt the blob with the same key ----------------------- */

static void test_a1_wrap_then_decrypt(void **state)
{
	(void)state;
	CK_MECHANISM kw = {CKM_AES_KEY_WRAP, NULL, 0};
	CK_OBJECT_HANDLE v = victim();
	/* A key made with the default template (C_GenerateKey, no usage). */
	CK_ULONG len = 32;
	CK_ATTRIBUTE gt[] = {{CKA_VALUE_LEN, &len, sizeof(len)}, {CKA_TOKEN, &F, 1}};
	CK_MECHANISM gen = {CKM_AES_KEY_GEN, NULL, 0};
	CK_OBJECT_HANDLE k;
	assert_ok(p11->C_GenerateKey(S, &gen, gt, 2, &k));
	uint8_t blob[64], out[64];
	CK_ULONG bl = sizeof(blob), ol = sizeof(out);
	CK_RV w = p11->C_WrapKey(S, &kw, k, v, blob, &bl);
	if (w == CKR_OK && p11->C_DecryptInit(S, &kw, k) == CKR_OK &&
	    p11->C_Decrypt(S, blob, bl, out, &ol) == CKR_OK && reveals_victim(out, ol))
		fail_msg("A1: a default key wrapped the victim and decrypted the blob");
	/* The default key is a data key: it does not wrap. */
	assert_rv(w, CKR_KEY_FUNCTION_NOT_PERMITTED);
	assert_int_equal(get_bool(k, CKA_WRAP), CK_FALSE);
	assert_int_equal(get_bool(k, CKA_DECRYPT), CK_TRUE);
	/* No template makes a key that both wraps and decrypts. */
	uint8_t kv[32];
	h_fill(kv, 32, 0x31);
	CK_ATTRIBUTE both[] = {{CKA_WRAP, &T, 1}, {CKA_DECRYPT, &T, 1}};
	CK_OBJECT_HANDLE h;
	assert_rv(key_try(kv, both, 2, &h), CKR_TEMPLATE_INCONSISTENT);
	CK_ATTRIBUTE gboth[] = {{CKA_VALUE_LEN, &len, sizeof(len)}, {CKA_TOKEN, &F, 1},
				{CKA_WRAP, &T, 1}, {CKA_DECRYPT, &T, 1}};
	assert_rv(p11->C_GenerateKey(S, &gen, gboth, 4, &h), CKR_TEMPLATE_INCONSISTENT);
	/* A wrapping key decrypts nothing, and cannot be made to. */
	CK_ATTRIBUTE wr[] = {{CKA_WRAP, &T, 1}, {CKA_UNWRAP, &T, 1}};
	CK_OBJECT_HANDLE kek = key(kv, wr, 2);
	assert_rv(p11->C_DecryptInit(S, &kw, kek), CKR_KEY_FUNCTION_NOT_PERMITTED);
	CK_ATTRIBUTE dec = {CKA_DECRYPT, &T, 1};
	assert_rv(p11->C_SetAttributeValue(S, kek, &dec, 1), CKR_ATTRIBUTE_READ_ONLY);
	assert_rv(p11->C_CopyObject(S, kek, &dec, 1, &h), CKR_ATTRIBUTE_READ_ONLY);
	/* Sticky roles (Tookan's attribute-change sequences): turning WRAP
	 * off does not let DECRYPT on. */
	CK_ATTRIBUTE off = {CKA_WRAP, &F, 1};
	assert_ok(p11->C_SetAttributeValue(S, kek, &off, 1));
	assert_rv(p11->C_SetAttributeValue(S, kek, &dec, 1), CKR_ATTRIBUTE_READ_ONLY);
	/* A sensitive key's default is not extractable. */
	CK_ATTRIBUTE st[] = {{CKA_SENSITIVE, &T, 1}};
	assert_int_equal(get_bool(key(kv, st, 1), CKA_EXTRACTABLE), CK_FALSE);
}

/* --- A2: encrypt a known key, unwrap it --------------------------------------- */

static void test_a2_encrypt_then_unwrap(void **state)
{
	(void)state;
	CK_MECHANISM kw = {CKM_AES_KEY_WRAP, NULL, 0};
	uint8_t kv[32], known[32], blob[64];
	h_fill(kv, 32, 0x41);
	h_fill(known, 32, 0x42);
	CK_OBJECT_HANDLE k = key(kv, NULL, 0); /* the default: a data key */
	CK_ULONG bl = sizeof(blob);
	assert_ok(p11->C_EncryptInit(S, &kw, k));
	assert_ok(p11->C_Encrypt(S, known, 32, blob, &bl));
	CK_ATTRIBUTE ut[] = {{CKA_CLASS, &SECRET, sizeof(SECRET)},
			     {CKA_KEY_TYPE, &AES, sizeof(AES)},
			     {CKA_TOKEN, &F, 1},
			     {CKA_WRAP, &T, 1}};
	CK_OBJECT_HANDLE imported;
	/* Would give a wrapping key whose value the attacker knows. */
	assert_rv(p11->C_UnwrapKey(S, &kw, k, blob, bl, ut, 4, &imported),
		  CKR_KEY_FUNCTION_NOT_PERMITTED);
	CK_ATTRIBUTE both[] = {{CKA_UNWRAP, &T, 1}, {CKA_ENCRYPT, &T, 1}};
	CK_OBJECT_HANDLE h;
	assert_rv(key_try(kv, both, 2, &h), CKR_TEMPLATE_INCONSISTENT);
	/* Nor does an unwrap make a key of two roles. */
	CK_ATTRIBUTE wr[] = {{CKA_WRAP, &T, 1}, {CKA_UNWRAP, &T, 1}};
	CK_OBJECT_HANDLE kek = key(kv, wr, 2);
	CK_ATTRIBUTE ext[] = {{CKA_EXTRACTABLE, &T, 1}};
	bl = sizeof(blob);
	assert_ok(p11->C_WrapKey(S, &kw, kek, key(known, ext, 1), blob, &bl));
	CK_ATTRIBUTE ut2[] = {{CKA_CLASS, &SECRET, sizeof(SECRET)},
			      {CKA_KEY_TYPE, &AES, sizeof(AES)},
			      {CKA_TOKEN, &F, 1},
			      {CKA_WRAP, &T, 1},
			      {CKA_DECRYPT, &T, 1}};
	assert_rv(p11->C_UnwrapKey(S, &kw, kek, blob, bl, ut2, 5, &h),
		  CKR_TEMPLATE_INCONSISTENT);
}

/* --- re-import as a weaker key, under a trusted key ------------------------------- */

/* The SO's trusted wrapping key (public, so the user sees it). */
static CK_OBJECT_HANDLE trusted_kek(const CK_ATTRIBUTE *more, CK_ULONG n)
{
	assert_ok(p11->C_Logout(S));
	assert_ok(p11->C_Login(S, CKU_SO, (CK_UTF8CHAR_PTR)SO_PIN, 8));
	uint8_t kv[32];
	h_fill(kv, 32, 0x51);
	CK_ATTRIBUTE a[8] = {{CKA_TRUSTED, &T, 1}, {CKA_PRIVATE, &F, 1}};
	for (CK_ULONG i = 0; i < n; i++)
		a[2 + i] = more[i];
	CK_OBJECT_HANDLE h = key(kv, a, 2 + n);
	assert_ok(p11->C_Logout(S));
	assert_ok(p11->C_Login(S, CKU_USER, (CK_UTF8CHAR_PTR)USER_PIN, 4));
	return h;
}

static void test_unwrap_weaker_under_trusted(void **state)
{
	(void)state;
	CK_ATTRIBUTE wr[] = {{CKA_WRAP, &T, 1}, {CKA_UNWRAP, &T, 1}};
	CK_OBJECT_HANDLE tk = trusted_kek(wr, 2);
	CK_ATTRIBUTE g[] = {{CKA_SENSITIVE, &T, 1}, {CKA_EXTRACTABLE, &T, 1},
			    {CKA_WRAP_WITH_TRUSTED, &T, 1}};
	CK_OBJECT_HANDLE v = key(victim_value, g, 3);
	CK_MECHANISM kw = {CKM_AES_KEY_WRAP, NULL, 0};
	uint8_t blob[64], out[64];
	CK_ULONG bl = sizeof(blob);
	assert_ok(p11->C_WrapKey(S, &kw, tk, v, blob, &bl));
	/* Unwrapped as not sensitive, or extractable under any key: refused. */
	CK_ATTRIBUTE weak[][5] = {
		{{CKA_CLASS, &SECRET, sizeof(SECRET)}, {CKA_KEY_TYPE, &AES, sizeof(AES)},
		 {CKA_TOKEN, &F, 1}, {CKA_SENSITIVE, &F, 1}, {CKA_EXTRACTABLE, &T, 1}},
		{{CKA_CLASS, &SECRET, sizeof(SECRET)}, {CKA_KEY_TYPE, &AES, sizeof(AES)},
		 {CKA_TOKEN, &F, 1}, {CKA_EXTRACTABLE, &T, 1}, {CKA_WRAP_WITH_TRUSTED, &F, 1}},
	};
	for (size_t i = 0; i < 2; i++) {
		CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
		CK_RV rv = p11->C_UnwrapKey(S, &kw, tk, blob, bl, weak[i], 5, &h);
		CK_ATTRIBUTE val = {CKA_VALUE, out, sizeof(out)};
		if (rv == CKR_OK && p11->C_GetAttributeValue(S, h, &val, 1) == CKR_OK &&
		    reveals_victim(out, val.ulValueLen))
			fail_msg("re-import: the victim unwrapped as readable");
		assert_rv(rv, CKR_TEMPLATE_INCONSISTENT);
	}
	/* As protected as it was: fine. */
	CK_ATTRIBUTE ok[] = {{CKA_CLASS, &SECRET, sizeof(SECRET)},
			     {CKA_KEY_TYPE, &AES, sizeof(AES)},
			     {CKA_TOKEN, &F, 1}};
	CK_OBJECT_HANDLE h;
	assert_ok(p11->C_UnwrapKey(S, &kw, tk, blob, bl, ok, 3, &h));
	assert_int_equal(get_bool(h, CKA_SENSITIVE), CK_TRUE);
	assert_int_equal(get_bool(h, CKA_EXTRACTABLE), CK_FALSE);
}

/* --- CKA_WRAP_WITH_TRUSTED bypass through C_CopyObject ----------------------------- */

static void test_trusted_copy_bypass(void **state)
{
	(void)state;
	/* The SO's trusted, wrap-only, non-modifiable key. */
	CK_ATTRIBUTE wo[] = {{CKA_WRAP, &T, 1},	   {CKA_DECRYPT, &F, 1},
			     {CKA_UNWRAP, &F, 1},	   {CKA_ENCRYPT, &F, 1},
			     {CKA_MODIFIABLE, &F, 1}};
	CK_OBJECT_HANDLE tk = trusted_kek(wo, 5);
	CK_ATTRIBUTE g[] = {{CKA_SENSITIVE, &T, 1}, {CKA_EXTRACTABLE, &T, 1},
			    {CKA_WRAP_WITH_TRUSTED, &T, 1}};
	CK_OBJECT_HANDLE v = key(victim_value, g, 3);
	CK_ATTRIBUTE dec[] = {{CKA_DECRYPT, &T, 1}};
	CK_OBJECT_HANDLE copy = CK_INVALID_HANDLE;
	CK_RV rv = p11->C_CopyObject(S, tk, dec, 1, &copy);
	if (rv == CKR_OK) {
		CK_MECHANISM kw = {CKM_AES_KEY_WRAP, NULL, 0};
		uint8_t blob[64], out[64];
		CK_ULONG bl = sizeof(blob), ol = sizeof(out);
		if (p11->C_WrapKey(S, &kw, copy, v, blob, &bl) == CKR_OK &&
		    p11->C_DecryptInit(S, &kw, copy) == CKR_OK &&
		    p11->C_Decrypt(S, blob, bl, out, &ol) == CKR_OK && reveals_victim(out, ol))
			fail_msg("a user's copy of the trusted key decrypted the victim's blob");
		fail_msg("a user copied the trusted key with CKA_DECRYPT TRUE");
	}
	/* Only the SO makes a trusted object, copies included (v3.0 4.10). */
	assert_rv(rv, CKR_ACTION_PROHIBITED);
	assert_rv(p11->C_CopyObject(S, tk, NULL, 0, &copy), CKR_ACTION_PROHIBITED);
	/* A non-modifiable key's usage does not change on copy either (5.7). */
	uint8_t kv[32];
	h_fill(kv, 32, 0x61);
	CK_ATTRIBUTE nm[] = {{CKA_MODIFIABLE, &F, 1}, {CKA_ENCRYPT, &T, 1}};
	CK_OBJECT_HANDLE k = key(kv, nm, 2);
	CK_ATTRIBUTE enc_off = {CKA_ENCRYPT, &F, 1};
	assert_rv(p11->C_CopyObject(S, k, &enc_off, 1, &copy), CKR_ATTRIBUTE_READ_ONLY);
	CK_ATTRIBUTE lab = {CKA_LABEL, "copy", 4};
	assert_ok(p11->C_CopyObject(S, k, &lab, 1, &copy));
}

/* --- the CKA_VALUE oracle ---------------------------------------------------------- */

static void test_value_oracle(void **state)
{
	(void)state;
	uint8_t kv[32], wrong[32];
	h_fill(kv, 32, 0x71);
	h_fill(wrong, 32, 0x72);
	CK_ATTRIBUTE st[] = {{CKA_SENSITIVE, &T, 1}};
	CK_OBJECT_HANDLE k = key(kv, st, 1);
	CK_ATTRIBUTE right = {CKA_VALUE, kv, 32}, guess = {CKA_VALUE, wrong, 32};
	CK_RV r1 = p11->C_SetAttributeValue(S, k, &right, 1);
	CK_RV r2 = p11->C_SetAttributeValue(S, k, &guess, 1);
	if (r1 != r2)
		fail_msg("C_SetAttributeValue answers 0x%lx for the right value and 0x%lx "
			 "for a wrong one",
			 (unsigned long)r1, (unsigned long)r2);
	assert_rv(r1, CKR_ATTRIBUTE_READ_ONLY);
	CK_OBJECT_HANDLE c;
	r1 = p11->C_CopyObject(S, k, &right, 1, &c);
	r2 = p11->C_CopyObject(S, k, &guess, 1, &c);
	if (r1 != r2)
		fail_msg("C_CopyObject answers 0x%lx for the right value and 0x%lx for a "
			 "wrong one",
			 (unsigned long)r1, (unsigned long)r2);
	assert_rv(r1, CKR_ATTRIBUTE_READ_ONLY);
	/* C_FindObjects never matches a hidden value. */
	CK_ATTRIBUTE q[] = {{CKA_VALUE, kv, 32}};
	CK_OBJECT_HANDLE found[4];
	CK_ULONG n = 9;
	assert_ok(p11->C_FindObjectsInit(S, q, 1));
	assert_ok(p11->C_FindObjects(S, found, 4, &n));
	assert_ok(p11->C_FindObjectsFinal(S));
	assert_int_equal(n, 0);
}

/* --- the KMS envelope key: wrap, then decrypt ----------------------------------------- */

static void test_envelope_wrap_then_decrypt(void **state)
{
	(void)state;
	CK_OBJECT_HANDLE kms = h_find_label(S, "kms-master");
	CK_OBJECT_HANDLE v = victim();
	CK_P11KMS_KMS_PARAMS ctx = {(CK_BYTE_PTR) "tenant=1", 8};
	CK_MECHANISM m = {CKM_P11KMS_KMS_ENVELOPE, &ctx, sizeof(ctx)};
	uint8_t blob[1024], out[1024];
	CK_ULONG bl = sizeof(blob), ol = sizeof(out);
	assert_ok(p11->C_WrapKey(S, &m, kms, v, blob, &bl));
	/* C_Decrypt with the caller's context does not open it. */
	assert_ok(p11->C_DecryptInit(S, &m, kms));
	CK_RV rv = p11->C_Decrypt(S, blob, bl, out, &ol);
	if (rv == CKR_OK && reveals_victim(out, ol))
		fail_msg("the envelope key decrypted the blob of a wrapped sensitive key");
	assert_rv(rv, CKR_ENCRYPTED_DATA_INVALID);
	/* Nor with the wrap domain named: no caller may. */
	CK_P11KMS_KMS_PARAMS named = {(CK_BYTE_PTR) "p11kms-wrap:v1:tenant=1", 23};
	CK_MECHANISM mn = {CKM_P11KMS_KMS_ENVELOPE, &named, sizeof(named)};
	assert_rv(p11->C_DecryptInit(S, &mn, kms), CKR_MECHANISM_PARAM_INVALID);
	/* Unwrapped as a readable key: no. */
	CK_ATTRIBUTE weak[] = {{CKA_CLASS, &SECRET, sizeof(SECRET)},
			       {CKA_KEY_TYPE, &AES, sizeof(AES)},
			       {CKA_TOKEN, &F, 1},
			       {CKA_SENSITIVE, &F, 1},
			       {CKA_EXTRACTABLE, &T, 1}};
	CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
	rv = p11->C_UnwrapKey(S, &m, kms, blob, bl, weak, 5, &h);
	CK_ATTRIBUTE val = {CKA_VALUE, out, sizeof(out)};
	if (rv == CKR_OK && p11->C_GetAttributeValue(S, h, &val, 1) == CKR_OK &&
	    reveals_victim(out, val.ulValueLen))
		fail_msg("the envelope key unwrapped a sensitive key as readable");
	assert_rv(rv, CKR_WRAPPED_KEY_INVALID);
	/* As a sensitive key it unwraps, the same key. */
	assert_ok(p11->C_UnwrapKey(S, &m, kms, blob, bl, weak, 3, &h));
	h_same_aes_key(S, v, h);
	/* A non-sensitive key's blob keeps the caller's context, as an SDK's
	 * blob does: interoperable, and the value was readable anyway. */
	CK_ATTRIBUTE clear[] = {{CKA_SENSITIVE, &F, 1}, {CKA_EXTRACTABLE, &T, 1}};
	uint8_t cv[32];
	h_fill(cv, 32, 0x81);
	CK_OBJECT_HANDLE c = key(cv, clear, 2);
	bl = sizeof(blob);
	ol = sizeof(out);
	assert_ok(p11->C_WrapKey(S, &m, kms, c, blob, &bl));
	assert_ok(p11->C_DecryptInit(S, &m, kms));
	assert_ok(p11->C_Decrypt(S, blob, bl, out, &ol));
	assert_int_equal(ol, 32);
	assert_memory_equal(out, cv, 32);
	/* The envelope is a trusted wrapping key: it wraps keys that only
	 * trusted keys may wrap. */
	assert_int_equal(get_bool(kms, CKA_TRUSTED), CK_TRUE);
}

/* --- AES-CTR: the counter must not wrap ---------------------------------------------- */

static CK_RV ctr_encrypt(CK_OBJECT_HANDLE k, const uint8_t cb[16], CK_ULONG bits,
			 CK_ULONG len, uint8_t *out)
{
	static uint8_t in[64];
	CK_AES_CTR_PARAMS p = {bits, {0}};
	memcpy(p.cb, cb, 16);
	CK_MECHANISM m = {CKM_AES_CTR, &p, sizeof(p)};
	CK_ULONG ol = 64;
	CK_RV rv = p11->C_EncryptInit(S, &m, k);
	return rv == CKR_OK ? p11->C_Encrypt(S, in, len, out, &ol) : rv;
}

static void test_ctr_counter_wrap(void **state)
{
	(void)state;
	uint8_t kv[32], out[64], cb[16];
	h_fill(kv, 32, 0x91);
	CK_OBJECT_HANDLE k = key(kv, NULL, 0);
	/* 64 counter bits at 2^64 - 1: one block left. */
	memset(cb, 0xa5, 8);
	memset(cb + 8, 0xff, 8);
	assert_ok(ctr_encrypt(k, cb, 64, 16, out));
	assert_rv(ctr_encrypt(k, cb, 64, 32, out), CKR_DATA_LEN_RANGE);
	assert_rv(ctr_encrypt(k, cb, 64, 17, out), CKR_DATA_LEN_RANGE);
	/* and in parts: the second block would wrap */
	CK_AES_CTR_PARAMS p = {64, {0}};
	memcpy(p.cb, cb, 16);
	CK_MECHANISM m = {CKM_AES_CTR, &p, sizeof(p)};
	CK_ULONG ol = sizeof(out);
	assert_ok(p11->C_EncryptInit(S, &m, k));
	assert_ok(p11->C_EncryptUpdate(S, kv, 16, out, &ol));
	ol = sizeof(out);
	assert_rv(p11->C_EncryptUpdate(S, kv, 1, out, &ol), CKR_DATA_LEN_RANGE);
	/* 2^64 - 2: two blocks */
	cb[15] = 0xfe;
	assert_ok(ctr_encrypt(k, cb, 64, 32, out));
	assert_rv(ctr_encrypt(k, cb, 64, 33, out), CKR_DATA_LEN_RANGE);
	/* 128 bits at 2^128 - 1: one block; below it, plenty */
	memset(cb, 0xff, 16);
	assert_ok(ctr_encrypt(k, cb, 128, 16, out));
	assert_rv(ctr_encrypt(k, cb, 128, 32, out), CKR_DATA_LEN_RANGE);
	cb[0] = 0xfe;
	assert_ok(ctr_encrypt(k, cb, 128, 64, out));
	/* 65 bits: the 65th is bit 0 of byte 7 */
	memset(cb, 0, 16);
	cb[7] = 0x01;
	memset(cb + 8, 0xff, 8);
	assert_ok(ctr_encrypt(k, cb, 65, 16, out));
	assert_rv(ctr_encrypt(k, cb, 65, 32, out), CKR_DATA_LEN_RANGE);
	cb[7] = 0x02; /* above the counter: the counter is 2^64 - 1 of 2^65 */
	assert_ok(ctr_encrypt(k, cb, 65, 64, out));
}

/* --- revocation ----------------------------------------------------------------------- */

static char moved[400];

/* The local provider's key is gone: the next check revokes the token. */
static void kms_key_gone(void)
{
	snprintf(moved, sizeof(moved), "%s.away", env.key_file);
	assert_int_equal(rename(env.key_file, moved), 0);
	sleep(2); /* past revalidate_seconds */
}

static void kms_key_back(void)
{
	assert_int_equal(rename(moved, env.key_file), 0);
	sleep(2);
	/* Any call that uses keys checks again and lifts the revocation. */
	CK_ULONG len = 32;
	CK_ATTRIBUTE gt[] = {{CKA_VALUE_LEN, &len, sizeof(len)}, {CKA_TOKEN, &F, 1}};
	CK_MECHANISM gen = {CKM_AES_KEY_GEN, NULL, 0};
	CK_OBJECT_HANDLE h;
	assert_ok(p11->C_GenerateKey(S, &gen, gt, 2, &h));
}

static void test_revoke_running_operations(void **state)
{
	(void)state;
	/* A token key (its value sealed by the token key) and a session key. */
	CK_ULONG len = 32;
	CK_ATTRIBUTE gt[] = {{CKA_VALUE_LEN, &len, sizeof(len)}, {CKA_TOKEN, &T, 1}};
	CK_MECHANISM gen = {CKM_AES_KEY_GEN, NULL, 0};
	CK_OBJECT_HANDLE tok, ses = key(victim_value, NULL, 0);
	assert_ok(p11->C_GenerateKey(S, &gen, gt, 2, &tok));
	CK_SESSION_HANDLE s2, s3;
	assert_ok(p11->C_OpenSession(env.slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL,
				     &s2));
	assert_ok(p11->C_OpenSession(env.slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL,
				     &s3));
	uint8_t iv[16] = {0}, in[32] = {0}, out[64], tag[16], giv[12] = {1};
	CK_MECHANISM cbc = {CKM_AES_CBC, iv, 16};
	CK_ULONG ol = sizeof(out);
	assert_ok(p11->C_EncryptInit(S, &cbc, tok));
	assert_ok(p11->C_EncryptUpdate(S, in, 16, out, &ol));
	assert_ok(p11->C_DecryptInit(S, &cbc, tok));
	ol = sizeof(out);
	assert_ok(p11->C_DecryptUpdate(S, in, 16, out, &ol));
	assert_ok(p11->C_EncryptInit(s2, &cbc, ses));
	CK_MECHANISM gcm = {CKM_AES_GCM, NULL, 0};
	CK_GCM_MESSAGE_PARAMS mp = {giv, 12, 0, CKG_NO_GENERATE, tag, 128};
	assert_ok(p11->C_MessageEncryptInit(s3, &gcm, tok));
	ol = sizeof(out);
	assert_ok(p11->C_EncryptMessage(s3, &mp, sizeof(mp), NULL, 0, in, 16, out, &ol));
	/* Signing and verifying with a token HMAC key, and a digest, each
	 * begun in s3 (each has its own slot in a session). */
	CK_MECHANISM hgen = {CKM_GENERIC_SECRET_KEY_GEN, NULL, 0};
	CK_OBJECT_HANDLE hk;
	assert_ok(p11->C_GenerateKey(S, &hgen, gt, 2, &hk));
	CK_MECHANISM hmac = {CKM_SHA256_HMAC, NULL, 0}, sha = {CKM_SHA256, NULL, 0};
	assert_ok(p11->C_SignInit(s3, &hmac, hk));
	assert_ok(p11->C_SignUpdate(s3, in, 16));
	assert_ok(p11->C_VerifyInit(s3, &hmac, hk));
	assert_ok(p11->C_VerifyUpdate(s3, in, 16));
	assert_ok(p11->C_DigestInit(s3, &sha));
	assert_ok(p11->C_DigestUpdate(s3, in, 16));

	kms_key_gone();
	assert_rv(p11->C_SignUpdate(s3, in, 16), CKR_DEVICE_ERROR);
	assert_rv(p11->C_VerifyUpdate(s3, in, 16), CKR_DEVICE_ERROR);
	assert_rv(p11->C_DigestUpdate(s3, in, 16), CKR_DEVICE_ERROR);
	ol = sizeof(out);
	assert_rv(p11->C_SignFinal(s3, out, &ol), CKR_OPERATION_NOT_INITIALIZED);
	assert_rv(p11->C_VerifyFinal(s3, out, 32), CKR_OPERATION_NOT_INITIALIZED);
	ol = sizeof(out);
	assert_rv(p11->C_DigestFinal(s3, out, &ol), CKR_OPERATION_NOT_INITIALIZED);
	ol = sizeof(out);
	assert_rv(p11->C_EncryptUpdate(S, in, 16, out, &ol), CKR_DEVICE_ERROR);
	ol = sizeof(out);
	assert_rv(p11->C_DecryptUpdate(S, in, 16, out, &ol), CKR_DEVICE_ERROR);
	ol = sizeof(out);
	assert_rv(p11->C_EncryptUpdate(s2, in, 16, out, &ol), CKR_DEVICE_ERROR);
	giv[0] = 2;
	ol = sizeof(out);
	assert_rv(p11->C_EncryptMessage(s3, &mp, sizeof(mp), NULL, 0, in, 16, out, &ol),
		  CKR_DEVICE_ERROR);
	/* The operations ended. */
	ol = sizeof(out);
	assert_rv(p11->C_EncryptFinal(S, out, &ol), CKR_OPERATION_NOT_INITIALIZED);
	assert_rv(p11->C_MessageEncryptFinal(s3), CKR_OPERATION_NOT_INITIALIZED);

	/* Back: operations begun before the revocation stay ended (the token
	 * key they were loaded under was wiped), new ones work. */
	kms_key_back();
	assert_ok(p11->C_EncryptInit(S, &cbc, tok));
	ol = sizeof(out);
	assert_ok(p11->C_Encrypt(S, in, 32, out, &ol));
	assert_ok(p11->C_CloseSession(s2));
	assert_ok(p11->C_CloseSession(s3));
}

static void test_revoke_kms_derived(void **state)
{
	(void)state;
	CK_OBJECT_HANDLE kms = h_find_label(S, "kms-master");
	CK_MECHANISM env_m = {CKM_P11KMS_KMS_ENVELOPE, NULL, 0};
	uint8_t kv[32], blob[1024];
	h_fill(kv, 32, 0xa1);
	CK_ATTRIBUTE ext[] = {{CKA_EXTRACTABLE, &T, 1}};
	CK_OBJECT_HANDLE dk = key(kv, ext, 1);
	CK_ULONG bl = sizeof(blob);
	assert_ok(p11->C_WrapKey(S, &env_m, kms, dk, blob, &bl));
	/* K1 from the KMS (a wrapping key), a copy of it, and K3 unwrapped
	 * under K1. */
	CK_ATTRIBUTE ut[] = {{CKA_CLASS, &SECRET, sizeof(SECRET)},
			     {CKA_KEY_TYPE, &AES, sizeof(AES)},
			     {CKA_TOKEN, &F, 1},
			     {CKA_WRAP, &T, 1},
			     {CKA_UNWRAP, &T, 1}};
	CK_OBJECT_HANDLE k1, k2, k3;
	assert_ok(p11->C_UnwrapKey(S, &env_m, kms, blob, bl, ut, 5, &k1));
	assert_ok(p11->C_CopyObject(S, k1, NULL, 0, &k2));
	CK_MECHANISM kw = {CKM_AES_KEY_WRAP, NULL, 0};
	uint8_t b2[64];
	CK_ULONG l2 = sizeof(b2);
	assert_ok(p11->C_WrapKey(S, &kw, k1, dk, b2, &l2));
	assert_ok(p11->C_UnwrapKey(S, &kw, k1, b2, l2, ut, 3, &k3));

	kms_key_gone();
	/* The first call that uses keys finds the key gone. */
	CK_ULONG len = 32;
	CK_ATTRIBUTE gt[] = {{CKA_VALUE_LEN, &len, sizeof(len)}, {CKA_TOKEN, &F, 1}};
	CK_MECHANISM gen = {CKM_AES_KEY_GEN, NULL, 0};
	CK_OBJECT_HANDLE h;
	assert_rv(p11->C_GenerateKey(S, &gen, gt, 2, &h), CKR_DEVICE_ERROR);
	kms_key_back();
	CK_ATTRIBUTE lab = {CKA_LABEL, NULL, 0};
	CK_OBJECT_HANDLE each[] = {k1, k2, k3};
	const char *what[] = {"the unwrapped key", "its copy", "a key unwrapped under it"};
	for (int i = 0; i < 3; i++)
		if (p11->C_GetAttributeValue(S, each[i], &lab, 1) != CKR_OBJECT_HANDLE_INVALID)
			fail_msg("%s survived the revocation", what[i]);
	/* A key of the caller's own is not the KMS's: it stays. */
	assert_ok(p11->C_GetAttributeValue(S, dk, &lab, 1));
}

int main(void)
{
	h_load();
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_a1_wrap_then_decrypt, setup, teardown),
		cmocka_unit_test_setup_teardown(test_a2_encrypt_then_unwrap, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unwrap_weaker_under_trusted, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_trusted_copy_bypass, setup, teardown),
		cmocka_unit_test_setup_teardown(test_value_oracle, setup, teardown),
		cmocka_unit_test_setup_teardown(test_envelope_wrap_then_decrypt, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_ctr_counter_wrap, setup, teardown),
		cmocka_unit_test_setup_teardown(test_revoke_running_operations,
						setup_revocable, teardown),
		cmocka_unit_test_setup_teardown(test_revoke_kms_derived, setup_revocable,
						teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
