/* SPDX-License-Identifier: Apache-2.0 */
/*
 * KMS key objects and remote operations through the exported API, on the
 * local provider: the key shows as an object, wraps and unwraps local keys
 * with an encryption context, and its revocation (a key the provider can
 * no longer use) wipes the token key and KMS-derived keys until it is back.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "harness.h"

static h_env env;
static CK_SESSION_HANDLE S;

static int setup(void **state)
{
	h_env_new(&env, "required",
		  "\"keys\": [{\"id\": \"master\", \"label\": \"kms-master\"}], "
		  "\"revalidate_seconds\": 1");
	assert_ok(h_initialize(&env));
	h_init_token(&env);
	S = h_user_session(&env);
	return 0;
}

static int teardown(void **state)
{
	p11->C_Finalize(NULL);
	h_env_free(&env);
	return 0;
}

static CK_OBJECT_HANDLE kms_key(void)
{
	CK_ATTRIBUTE q = {CKA_LABEL, "kms-master", 10};
	CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
	CK_ULONG n = 0;
	assert_ok(p11->C_FindObjectsInit(S, &q, 1));
	assert_ok(p11->C_FindObjects(S, &h, 1, &n));
	assert_ok(p11->C_FindObjectsFinal(S));
	assert_int_equal(n, 1);
	return h;
}

static void test_kms_object(void **state)
{
	CK_OBJECT_HANDLE k = kms_key();
	CK_KEY_TYPE kt = 0;
	CK_BBOOL ext = CK_TRUE, neverx = CK_FALSE;
	char id[32];
	CK_ATTRIBUTE a[] = {{CKA_KEY_TYPE, &kt, sizeof(kt)},
			    {CKA_EXTRACTABLE, &ext, 1},
			    {CKA_NEVER_EXTRACTABLE, &neverx, 1},
			    {CKA_P11KMS_KMS_KEY_ID, id, sizeof(id)}};
	assert_ok(p11->C_GetAttributeValue(S, k, a, 4));
	assert_int_equal(kt, CKK_P11KMS_KMS);
	assert_false(ext);
	assert_true(neverx);
	assert_int_equal(a[3].ulValueLen, 6);
	assert_memory_equal(id, "master", 6);
	CK_ATTRIBUTE v = {CKA_VALUE, NULL, 0};
	assert_rv(p11->C_GetAttributeValue(S, k, &v, 1), CKR_ATTRIBUTE_SENSITIVE);
	assert_rv(p11->C_DestroyObject(S, k), CKR_ACTION_PROHIBITED);
	/* Local mechanisms cannot use it. */
	uint8_t iv[16] = {0};
	CK_MECHANISM cbc = {CKM_AES_CBC_PAD, iv, 16};
	assert_rv(p11->C_EncryptInit(S, &cbc, k), CKR_KEY_TYPE_INCONSISTENT);
	/* The vendor mechanism cannot use a local key. */
	CK_OBJECT_HANDLE local = h_aes_key(S, 32, CK_FALSE, "local");
	CK_MECHANISM env_m = {CKM_P11KMS_KMS_ENVELOPE, NULL, 0};
	assert_rv(p11->C_EncryptInit(S, &env_m, local), CKR_KEY_TYPE_INCONSISTENT);
}

static void test_wrap_unwrap_with_context(void **state)
{
	CK_OBJECT_HANDLE k = kms_key();
	CK_OBJECT_HANDLE dk = h_aes_key(S, 32, CK_FALSE, "data-key");
	CK_P11KMS_KMS_PARAMS ctx = {(CK_BYTE_PTR) "tenant=42", 9};
	CK_MECHANISM m = {CKM_P11KMS_KMS_ENVELOPE, &ctx, sizeof(ctx)};
	uint8_t blob[256];
	CK_ULONG bl = 0;
	assert_ok(p11->C_WrapKey(S, &m, k, dk, NULL, &bl));
	assert_true(bl >= 32 && bl <= sizeof(blob));
	assert_ok(p11->C_WrapKey(S, &m, k, dk, blob, &bl));
	CK_OBJECT_CLASS c = CKO_SECRET_KEY;
	CK_KEY_TYPE kt = CKK_AES;
	CK_ATTRIBUTE t[] = {{CKA_CLASS, &c, sizeof(c)}, {CKA_KEY_TYPE, &kt, sizeof(kt)}};
	CK_OBJECT_HANDLE back;
	assert_ok(p11->C_UnwrapKey(S, &m, k, blob, bl, t, 2, &back));
	/* Both keys encrypt alike. */
	uint8_t iv[16] = {7}, c1[32], c2[32];
	CK_ULONG l1 = sizeof(c1), l2 = sizeof(c2);
	CK_MECHANISM cbc = {CKM_AES_CBC_PAD, iv, 16};
	assert_ok(p11->C_EncryptInit(S, &cbc, dk));
	assert_ok(p11->C_Encrypt(S, (CK_BYTE_PTR) "payload", 7, c1, &l1));
	assert_ok(p11->C_EncryptInit(S, &cbc, back));
	assert_ok(p11->C_Encrypt(S, (CK_BYTE_PTR) "payload", 7, c2, &l2));
	assert_memory_equal(c1, c2, l1);
	/* Another context does not open the blob; neither does a damaged blob. */
	CK_P11KMS_KMS_PARAMS other = {(CK_BYTE_PTR) "tenant=43", 9};
	CK_MECHANISM m2 = {CKM_P11KMS_KMS_ENVELOPE, &other, sizeof(other)};
	assert_rv(p11->C_UnwrapKey(S, &m2, k, blob, bl, t, 2, &back),
		  CKR_WRAPPED_KEY_INVALID);
	blob[bl - 1] ^= 1;
	assert_rv(p11->C_UnwrapKey(S, &m, k, blob, bl, t, 2, &back), CKR_WRAPPED_KEY_INVALID);
	/* Small data through C_Encrypt / C_Decrypt. */
	uint8_t ct[256], pt[64];
	CK_ULONG cl = 0, pl = sizeof(pt);
	assert_ok(p11->C_EncryptInit(S, &m, k));
	assert_ok(p11->C_Encrypt(S, (CK_BYTE_PTR) "small secret", 12, NULL, &cl));
	assert_ok(p11->C_Encrypt(S, (CK_BYTE_PTR) "small secret", 12, ct, &cl));
	assert_ok(p11->C_DecryptInit(S, &m, k));
	assert_ok(p11->C_Decrypt(S, ct, cl, pt, &pl));
	assert_int_equal(pl, 12);
	assert_memory_equal(pt, "small secret", 12);
	/* Bad parameter. */
	CK_MECHANISM bad = {CKM_P11KMS_KMS_ENVELOPE, &ctx, 3};
	assert_rv(p11->C_EncryptInit(S, &bad, k), CKR_MECHANISM_PARAM_INVALID);
}

static void test_revocation_and_recovery(void **state)
{
	CK_OBJECT_HANDLE k = kms_key();
	CK_OBJECT_HANDLE tokkey = h_aes_key(S, 32, CK_TRUE, "protected");
	CK_OBJECT_HANDLE dk = h_aes_key(S, 32, CK_FALSE, "dk");
	CK_MECHANISM m = {CKM_P11KMS_KMS_ENVELOPE, NULL, 0};
	uint8_t blob[256];
	CK_ULONG bl = sizeof(blob);
	assert_ok(p11->C_WrapKey(S, &m, k, dk, blob, &bl));
	CK_OBJECT_CLASS c = CKO_SECRET_KEY;
	CK_KEY_TYPE kt = CKK_AES;
	CK_ATTRIBUTE t[] = {{CKA_CLASS, &c, sizeof(c)}, {CKA_KEY_TYPE, &kt, sizeof(kt)}};
	CK_OBJECT_HANDLE derived;
	assert_ok(p11->C_UnwrapKey(S, &m, k, blob, bl, t, 2, &derived));

	/* The customer takes the key away (here: the provider can no longer
	 * use its key file). */
	assert_int_equal(chmod(env.key_file, 0644), 0);
	sleep(2); /* past revalidate_seconds */
	uint8_t iv[16] = {0};
	CK_MECHANISM cbc = {CKM_AES_CBC_PAD, iv, 16};
	assert_rv(p11->C_EncryptInit(S, &cbc, tokkey), CKR_DEVICE_ERROR);
	CK_SESSION_INFO si;
	assert_ok(p11->C_GetSessionInfo(S, &si));
	assert_int_equal(si.ulDeviceError, P11KMS_DEVERR_ACCESS_DENIED);
	assert_true(h_log_contains(&env, "are wiped until the key is back"));
	/* Keys derived through the KMS are gone. */
	CK_ULONG size;
	assert_rv(p11->C_GetObjectSize(S, derived, &size), CKR_OBJECT_HANDLE_INVALID);
	/* Logging in again cannot unseal while the key is unusable. */
	assert_rv(p11->C_Login(S, CKU_USER, (CK_UTF8CHAR_PTR)USER_PIN, 4), CKR_DEVICE_ERROR);

	/* The key is back: after a new login everything works again. */
	assert_int_equal(chmod(env.key_file, 0600), 0);
	assert_ok(p11->C_Login(S, CKU_USER, (CK_UTF8CHAR_PTR)USER_PIN, 4));
	CK_ATTRIBUTE q = {CKA_LABEL, "protected", 9};
	CK_OBJECT_HANDLE h;
	CK_ULONG n;
	assert_ok(p11->C_FindObjectsInit(S, &q, 1));
	assert_ok(p11->C_FindObjects(S, &h, 1, &n));
	assert_ok(p11->C_FindObjectsFinal(S));
	assert_int_equal(n, 1);
	assert_ok(p11->C_EncryptInit(S, &cbc, h));
	uint8_t out[32];
	CK_ULONG ol = sizeof(out);
	assert_ok(p11->C_Encrypt(S, (CK_BYTE_PTR) "x", 1, out, &ol));
	assert_true(h_log_contains(&env, "logged in"));
}

int main(void)
{
	h_load();
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_kms_object, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wrap_unwrap_with_context, setup, teardown),
		cmocka_unit_test_setup_teardown(test_revocation_and_recovery, setup, teardown),
	};
	return cmocka_run_group_tests_name("kms", tests, NULL, NULL);
}
