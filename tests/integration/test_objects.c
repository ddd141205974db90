/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Objects through the exported API: create, copy, destroy, attributes,
 * search, persistence and visibility.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "harness.h"
#include "p11kms/p11kms.h"

static h_env env;
static CK_SESSION_HANDLE S;

static int setup(void **state)
{
	h_env_new(&env, "required", "");
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

static CK_ULONG find(CK_SESSION_HANDLE s, CK_ATTRIBUTE *t, CK_ULONG n,
		     CK_OBJECT_HANDLE *out, CK_ULONG max)
{
	CK_ULONG cnt = 0;
	assert_ok(p11->C_FindObjectsInit(s, t, n));
	assert_ok(p11->C_FindObjects(s, out, max, &cnt));
	assert_ok(p11->C_FindObjectsFinal(s));
	return cnt;
}

static CK_OBJECT_HANDLE data_object(CK_SESSION_HANDLE s, const char *label,
				    const char *value, CK_BBOOL token)
{
	CK_OBJECT_CLASS c = CKO_DATA;
	CK_BBOOL t = CK_TRUE;
	CK_ATTRIBUTE tmpl[] = {
		{CKA_CLASS, &c, sizeof(c)},
		{CKA_TOKEN, &token, 1},
		{CKA_PRIVATE, &t, 1},
		{CKA_LABEL, (void *)label, strlen(label)},
		{CKA_APPLICATION, "tde", 3},
		{CKA_VALUE, (void *)value, strlen(value)},
	};
	CK_OBJECT_HANDLE h;
	assert_ok(p11->C_CreateObject(s, tmpl, 6, &h));
	return h;
}

static void test_data_objects_persist(void **state)
{
	/* Oracle TDE keeps CKO_DATA objects next to its master key and finds
	 * them by label. */
	data_object(S, "ORACLE.TDE.HSM.MK.0123456789ABCDEF", "wrapped-mk-bytes", CK_TRUE);
	data_object(S, "session-only", "x", CK_FALSE);
	assert_ok(p11->C_Finalize(NULL));
	assert_ok(h_initialize(&env));
	S = h_user_session(&env);
	CK_ATTRIBUTE q = {CKA_LABEL, "ORACLE.TDE.HSM.MK.0123456789ABCDEF", 34};
	CK_OBJECT_HANDLE h[4];
	assert_int_equal(find(S, &q, 1, h, 4), 1);
	char buf[64];
	CK_ATTRIBUTE v = {CKA_VALUE, buf, sizeof(buf)};
	assert_ok(p11->C_GetAttributeValue(S, h[0], &v, 1));
	assert_int_equal(v.ulValueLen, 16);
	assert_memory_equal(buf, "wrapped-mk-bytes", 16);
	CK_ATTRIBUTE q2 = {CKA_LABEL, "session-only", 12};
	assert_int_equal(find(S, &q2, 1, h, 4), 0);
}

static void test_get_attribute_rules(void **state)
{
	CK_OBJECT_HANDLE k = h_aes_key(S, 32, CK_FALSE, "k");
	CK_ULONG vlen = 0;
	uint8_t small[2];
	CK_BBOOL sens;
	CK_ATTRIBUTE t[] = {
		{CKA_VALUE, NULL, 0},           /* sensitive */
		{CKA_VALUE_LEN, &vlen, sizeof(vlen)},
		{0x7fffff00UL, NULL, 0},        /* no such attribute */
		{CKA_LABEL, small, 0},          /* too small (needs 1) */
		{CKA_SENSITIVE, &sens, 1},
	};
	CK_RV rv = p11->C_GetAttributeValue(S, k, t, 5);
	/* Any of the errors met may be returned; every entry is processed. */
	assert_true(rv == CKR_ATTRIBUTE_SENSITIVE || rv == CKR_ATTRIBUTE_TYPE_INVALID ||
		    rv == CKR_BUFFER_TOO_SMALL);
	assert_int_equal(t[0].ulValueLen, CK_UNAVAILABLE_INFORMATION);
	assert_int_equal(vlen, 32);
	assert_int_equal(t[2].ulValueLen, CK_UNAVAILABLE_INFORMATION);
	assert_int_equal(t[3].ulValueLen, CK_UNAVAILABLE_INFORMATION);
	assert_true(sens);
	/* Length query. */
	CK_ATTRIBUTE l = {CKA_LABEL, NULL, 0};
	assert_ok(p11->C_GetAttributeValue(S, k, &l, 1));
	assert_int_equal(l.ulValueLen, 1);
	assert_rv(p11->C_GetAttributeValue(S, k, NULL, 1), CKR_ARGUMENTS_BAD);
	assert_rv(p11->C_GetAttributeValue(S, 999999, &l, 1), CKR_OBJECT_HANDLE_INVALID);
	assert_rv(p11->C_GetAttributeValue(S + 1000, k, &l, 1), CKR_SESSION_HANDLE_INVALID);
	/* A non-sensitive extractable key reveals its value. */
	uint8_t raw[16] = {1, 2, 3};
	CK_OBJECT_CLASS c = CKO_SECRET_KEY;
	CK_KEY_TYPE kt = CKK_AES;
	CK_BBOOL f = CK_FALSE, tr = CK_TRUE;
	CK_ATTRIBUTE mk[] = {{CKA_CLASS, &c, sizeof(c)},
			     {CKA_KEY_TYPE, &kt, sizeof(kt)},
			     {CKA_VALUE, raw, 16},
			     {CKA_SENSITIVE, &f, 1}};
	CK_OBJECT_HANDLE imp;
	assert_ok(p11->C_CreateObject(S, mk, 4, &imp));
	uint8_t out[16];
	CK_ATTRIBUTE val = {CKA_VALUE, out, 16};
	assert_ok(p11->C_GetAttributeValue(S, imp, &val, 1));
	assert_memory_equal(out, raw, 16);
	/* SENSITIVE may only go FALSE -> TRUE. */
	CK_ATTRIBUTE st = {CKA_SENSITIVE, &tr, 1};
	CK_ATTRIBUTE ns = {CKA_SENSITIVE, &f, 1};
	assert_ok(p11->C_SetAttributeValue(S, imp, &st, 1));
	assert_rv(p11->C_GetAttributeValue(S, imp, &val, 1), CKR_ATTRIBUTE_SENSITIVE);
	assert_rv(p11->C_SetAttributeValue(S, imp, &ns, 1), CKR_ATTRIBUTE_READ_ONLY);
	/* ALWAYS_SENSITIVE stays FALSE: the value was once readable. */
	CK_BBOOL as = CK_TRUE;
	CK_ATTRIBUTE asq = {CKA_ALWAYS_SENSITIVE, &as, 1};
	assert_ok(p11->C_GetAttributeValue(S, imp, &asq, 1));
	assert_false(as);
}

/* Token key objects name the KMS key and version that seal the token
 * (computed: they follow a reseal) and their creation time; all three are
 * the module's, never given. */
static void test_vendor_attributes(void **state)
{
	(void)state;
	time_t before = time(NULL);
	CK_OBJECT_HANDLE k = h_aes_key(S, 32, CK_TRUE, "vend");
	char id[512], ver[200];
	CK_ULONG born = 0;
	CK_ATTRIBUTE q[] = {{CKA_P11KMS_KMS_KEY_ID, id, sizeof(id)},
			    {CKA_P11KMS_KMS_KEY_VERSION, ver, sizeof(ver)},
			    {CKA_P11KMS_CREATED_AT, &born, sizeof(born)}};
	assert_ok(p11->C_GetAttributeValue(S, k, q, 3));
	/* The local provider seals with its key file; versions are the key's
	 * fingerprint (16 hex digits). */
	assert_int_equal(q[0].ulValueLen, strlen(env.key_file));
	assert_memory_equal(id, env.key_file, q[0].ulValueLen);
	assert_int_equal(q[1].ulValueLen, 16);
	assert_true(born >= (CK_ULONG)before && born <= (CK_ULONG)time(NULL));
	/* After C_Finalize (as a new process would) it reads the same. */
	assert_ok(p11->C_Finalize(NULL));
	assert_ok(h_initialize(&env));
	CK_SESSION_HANDLE ro = S = h_user_session(&env);
	CK_OBJECT_HANDLE again = 0;
	CK_ATTRIBUTE lab = {CKA_LABEL, "vend", 4};
	CK_ULONG n = find(ro, &lab, 1, &again, 1);
	assert_int_equal(n, 1);
	char ver2[200];
	CK_ULONG born2 = 0;
	CK_ATTRIBUTE q2[] = {{CKA_P11KMS_KMS_KEY_VERSION, ver2, sizeof(ver2)},
			     {CKA_P11KMS_CREATED_AT, &born2, sizeof(born2)}};
	assert_ok(p11->C_GetAttributeValue(ro, again, q2, 2));
	assert_int_equal(q2[0].ulValueLen, q[1].ulValueLen);
	assert_memory_equal(ver2, ver, q[1].ulValueLen);
	assert_int_equal(born2, born);
	/* Read-only, in a template or a change. */
	CK_OBJECT_CLASS c = CKO_SECRET_KEY;
	CK_KEY_TYPE kt = CKK_AES;
	CK_ULONG len = 16;
	CK_ATTRIBUTE gen[] = {{CKA_CLASS, &c, sizeof(c)}, {CKA_KEY_TYPE, &kt, sizeof(kt)},
			      {CKA_VALUE_LEN, &len, sizeof(len)},
			      {CKA_P11KMS_CREATED_AT, &born, sizeof(born)}};
	CK_MECHANISM m = {CKM_AES_KEY_GEN, NULL, 0};
	CK_OBJECT_HANDLE h;
	assert_int_equal(p11->C_GenerateKey(S, &m, gen, 4, &h), CKR_ATTRIBUTE_READ_ONLY);
	CK_ATTRIBUTE set = {CKA_P11KMS_KMS_KEY_VERSION, "v9", 2};
	assert_int_equal(p11->C_SetAttributeValue(S, again, &set, 1), CKR_ATTRIBUTE_READ_ONLY);
	/* Data objects have none of them. */
	CK_OBJECT_HANDLE d = data_object(S, "d", "x", CK_TRUE);
	CK_ATTRIBUTE dq = {CKA_P11KMS_KMS_KEY_VERSION, ver, sizeof(ver)};
	assert_int_equal(p11->C_GetAttributeValue(S, d, &dq, 1), CKR_ATTRIBUTE_TYPE_INVALID);
	assert_int_equal(dq.ulValueLen, CK_UNAVAILABLE_INFORMATION);
}

static void test_create_rules(void **state)
{
	CK_OBJECT_CLASS c = CKO_SECRET_KEY;
	CK_KEY_TYPE kt = CKK_AES;
	uint8_t key[32] = {0};
	CK_OBJECT_HANDLE h;
	CK_ATTRIBUTE missing_value[] = {{CKA_CLASS, &c, sizeof(c)},
					{CKA_KEY_TYPE, &kt, sizeof(kt)}};
	assert_rv(p11->C_CreateObject(S, missing_value, 2, &h), CKR_TEMPLATE_INCOMPLETE);
	CK_ATTRIBUTE bad_len[] = {{CKA_CLASS, &c, sizeof(c)},
				  {CKA_KEY_TYPE, &kt, sizeof(kt)},
				  {CKA_VALUE, key, 17}};
	assert_rv(p11->C_CreateObject(S, bad_len, 3, &h), CKR_ATTRIBUTE_VALUE_INVALID);
	CK_BBOOL local = CK_TRUE;
	CK_ATTRIBUTE ro[] = {{CKA_CLASS, &c, sizeof(c)},
			     {CKA_KEY_TYPE, &kt, sizeof(kt)},
			     {CKA_VALUE, key, 32},
			     {CKA_LOCAL, &local, 1}};
	assert_rv(p11->C_CreateObject(S, ro, 4, &h), CKR_ATTRIBUTE_READ_ONLY);
	CK_ATTRIBUTE dup[] = {{CKA_CLASS, &c, sizeof(c)},
			      {CKA_CLASS, &c, sizeof(c)},
			      {CKA_KEY_TYPE, &kt, sizeof(kt)},
			      {CKA_VALUE, key, 32}};
	assert_rv(p11->C_CreateObject(S, dup, 4, &h), CKR_TEMPLATE_INCONSISTENT);
	CK_BBOOL bad_bool = 7;
	CK_ATTRIBUTE badb[] = {{CKA_CLASS, &c, sizeof(c)},
			       {CKA_KEY_TYPE, &kt, sizeof(kt)},
			       {CKA_VALUE, key, 32},
			       {CKA_ENCRYPT, &bad_bool, 1}};
	assert_rv(p11->C_CreateObject(S, badb, 4, &h), CKR_ATTRIBUTE_VALUE_INVALID);
	/* private keys live only in a KMS; a certificate needs its value */
	CK_OBJECT_CLASS priv = CKO_PRIVATE_KEY, cert = CKO_CERTIFICATE;
	CK_ATTRIBUTE unsupported[] = {{CKA_CLASS, &priv, sizeof(priv)}};
	assert_rv(p11->C_CreateObject(S, unsupported, 1, &h), CKR_ATTRIBUTE_VALUE_INVALID);
	CK_ATTRIBUTE bare_cert[] = {{CKA_CLASS, &cert, sizeof(cert)}};
	assert_rv(p11->C_CreateObject(S, bare_cert, 1, &h), CKR_TEMPLATE_INCOMPLETE);
	CK_ATTRIBUTE none[] = {{CKA_LABEL, "x", 1}};
	assert_rv(p11->C_CreateObject(S, none, 1, &h), CKR_TEMPLATE_INCOMPLETE);
	assert_rv(p11->C_CreateObject(S, NULL, 1, &h), CKR_ARGUMENTS_BAD);
	/* A wrong CKA_CHECK_VALUE is refused. */
	uint8_t kcv[3] = {1, 2, 3};
	CK_ATTRIBUTE badkcv[] = {{CKA_CLASS, &c, sizeof(c)},
				 {CKA_KEY_TYPE, &kt, sizeof(kt)},
				 {CKA_VALUE, key, 32},
				 {CKA_CHECK_VALUE, kcv, 3}};
	assert_rv(p11->C_CreateObject(S, badkcv, 4, &h), CKR_ATTRIBUTE_VALUE_INVALID);
}

static void test_read_only_session(void **state)
{
	CK_SESSION_HANDLE ro;
	assert_ok(p11->C_OpenSession(env.slot, CKF_SERIAL_SESSION, NULL, NULL, &ro));
	CK_MECHANISM m = {CKM_AES_KEY_GEN, NULL, 0};
	CK_ULONG len = 32;
	CK_BBOOL t = CK_TRUE;
	CK_ATTRIBUTE tmpl[] = {{CKA_VALUE_LEN, &len, sizeof(len)}, {CKA_TOKEN, &t, 1}};
	CK_OBJECT_HANDLE k;
	assert_rv(p11->C_GenerateKey(ro, &m, tmpl, 2, &k), CKR_SESSION_READ_ONLY);
	/* Session objects are fine in a read-only session. */
	assert_ok(p11->C_GenerateKey(ro, &m, tmpl, 1, &k));
	CK_OBJECT_HANDLE tk = h_aes_key(S, 16, CK_TRUE, "tok");
	assert_rv(p11->C_DestroyObject(ro, tk), CKR_SESSION_READ_ONLY);
	CK_ATTRIBUTE lab = {CKA_LABEL, "new", 3};
	assert_rv(p11->C_SetAttributeValue(ro, tk, &lab, 1), CKR_SESSION_READ_ONLY);
	assert_ok(p11->C_CloseSession(ro));
}

static void test_copy_set_destroy(void **state)
{
	CK_OBJECT_HANDLE k = h_aes_key(S, 32, CK_TRUE, "orig");
	CK_OBJECT_HANDLE c;
	CK_BBOOL f = CK_FALSE;
	CK_ATTRIBUTE ct[] = {{CKA_LABEL, "copy", 4}, {CKA_TOKEN, &f, 1}};
	assert_ok(p11->C_CopyObject(S, k, ct, 2, &c));
	CK_ATTRIBUTE bad[] = {{CKA_LOCAL, &f, 1}};
	CK_OBJECT_HANDLE c2;
	assert_rv(p11->C_CopyObject(S, k, bad, 1, &c2), CKR_ATTRIBUTE_READ_ONLY);
	/* Encrypting with the copy equals encrypting with the original. */
	uint8_t iv[16] = {0}, a[32], b[32];
	CK_ULONG al = sizeof(a), bl = sizeof(b);
	CK_MECHANISM m = {CKM_AES_CBC_PAD, iv, 16};
	assert_ok(p11->C_EncryptInit(S, &m, k));
	assert_ok(p11->C_Encrypt(S, (CK_BYTE_PTR) "same", 4, a, &al));
	assert_ok(p11->C_EncryptInit(S, &m, c));
	assert_ok(p11->C_Encrypt(S, (CK_BYTE_PTR) "same", 4, b, &bl));
	assert_int_equal(al, bl);
	assert_memory_equal(a, b, al);
	/* Relabel the token key; it persists. */
	CK_ATTRIBUTE lab = {CKA_LABEL, "renamed", 7};
	assert_ok(p11->C_SetAttributeValue(S, k, &lab, 1));
	CK_ATTRIBUTE ro = {CKA_KEY_TYPE, &(CK_KEY_TYPE){CKK_GENERIC_SECRET},
			   sizeof(CK_KEY_TYPE)};
	assert_rv(p11->C_SetAttributeValue(S, k, &ro, 1), CKR_ATTRIBUTE_READ_ONLY);
	/* Not modifiable. */
	CK_ATTRIBUTE nm[] = {{CKA_MODIFIABLE, &f, 1}, {CKA_LABEL, "frozen", 6}};
	CK_OBJECT_HANDLE frozen;
	assert_ok(p11->C_CopyObject(S, k, nm, 2, &frozen));
	assert_rv(p11->C_SetAttributeValue(S, frozen, &lab, 1), CKR_ACTION_PROHIBITED);
	/* Not copyable, not destroyable. */
	CK_ATTRIBUTE nc = {CKA_COPYABLE, &f, 1};
	assert_ok(p11->C_SetAttributeValue(S, c, &nc, 1));
	assert_rv(p11->C_CopyObject(S, c, NULL, 0, &c2), CKR_ACTION_PROHIBITED);
	CK_ATTRIBUTE nd = {CKA_DESTROYABLE, &f, 1};
	assert_ok(p11->C_SetAttributeValue(S, c, &nd, 1));
	assert_rv(p11->C_DestroyObject(S, c), CKR_ACTION_PROHIBITED);

	assert_ok(p11->C_Finalize(NULL));
	assert_ok(h_initialize(&env));
	S = h_user_session(&env);
	CK_ATTRIBUTE q = {CKA_LABEL, "renamed", 7};
	CK_OBJECT_HANDLE h[4];
	assert_int_equal(find(S, &q, 1, h, 4), 1);
	assert_ok(p11->C_DestroyObject(S, h[0]));
	assert_rv(p11->C_DestroyObject(S, h[0]), CKR_OBJECT_HANDLE_INVALID);
	assert_int_equal(find(S, &q, 1, h, 4), 0);
	CK_ULONG size;
	assert_rv(p11->C_GetObjectSize(S, h[0], &size), CKR_OBJECT_HANDLE_INVALID);
}

/* A template value that is not there (NULL pValue with a length) cannot
 * be matched: CKR_ATTRIBUTE_VALUE_INVALID, no search begun, and the host
 * lives (the matchers used to copy it from NULL: SIGSEGV). A NULL pValue
 * of length 0 is an empty value, which matches empty labels. */
static void test_find_null_values(void **state)
{
	(void)state;
	h_aes_key(S, 16, CK_TRUE, "tok");
	static const CK_ATTRIBUTE_TYPE types[] = {CKA_TOKEN, CKA_CLASS, CKA_LABEL, CKA_ID,
						  CKA_KEY_TYPE, CKA_VALUE_LEN};
	static const CK_ULONG lens[] = {1, sizeof(CK_ULONG), 5, 3, sizeof(CK_ULONG),
					sizeof(CK_ULONG)};
	for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++) {
		CK_ATTRIBUTE q = {types[i], NULL, lens[i]};
		assert_rv(p11->C_FindObjectsInit(S, &q, 1), CKR_ATTRIBUTE_VALUE_INVALID);
		CK_OBJECT_HANDLE h;
		CK_ULONG n;
		assert_rv(p11->C_FindObjects(S, &h, 1, &n), CKR_OPERATION_NOT_INITIALIZED);
	}
	assert_true(h_log_contains(&env, "has a NULL pValue"));
	CK_ATTRIBUTE empty = {CKA_LABEL, NULL, 0};
	CK_OBJECT_HANDLE h[4];
	assert_int_equal(find(S, &empty, 1, h, 4), 0);
}

static void test_find_and_visibility(void **state)
{
	for (int i = 0; i < 20; i++) {
		char l[16];
		snprintf(l, sizeof(l), "key-%02d", i);
		h_aes_key(S, 16, i % 2 ? CK_TRUE : CK_FALSE, l);
	}
	CK_OBJECT_CLASS c = CKO_SECRET_KEY;
	CK_ATTRIBUTE q = {CKA_CLASS, &c, sizeof(c)};
	CK_OBJECT_HANDLE h[64];
	assert_int_equal(find(S, &q, 1, h, 64), 20);
	/* In chunks. */
	CK_ULONG n, total = 0;
	assert_ok(p11->C_FindObjectsInit(S, &q, 1));
	assert_rv(p11->C_FindObjectsInit(S, &q, 1), CKR_OPERATION_ACTIVE);
	do {
		assert_ok(p11->C_FindObjects(S, h, 3, &n));
		total += n;
	} while (n);
	assert_ok(p11->C_FindObjectsFinal(S));
	assert_int_equal(total, 20);
	assert_rv(p11->C_FindObjects(S, h, 3, &n), CKR_OPERATION_NOT_INITIALIZED);
	assert_rv(p11->C_FindObjectsFinal(S), CKR_OPERATION_NOT_INITIALIZED);
	CK_BBOOL t = CK_TRUE;
	CK_ATTRIBUTE qt[] = {{CKA_CLASS, &c, sizeof(c)}, {CKA_TOKEN, &t, 1}};
	assert_int_equal(find(S, qt, 2, h, 64), 10);
	/* Private keys are invisible once logged out, and handles stop working. */
	CK_OBJECT_HANDLE any = h[0];
	assert_ok(p11->C_Logout(S));
	assert_int_equal(find(S, &q, 1, h, 64), 0);
	CK_ULONG size;
	assert_rv(p11->C_GetObjectSize(S, any, &size), CKR_OBJECT_HANDLE_INVALID);
	/* A public data object is visible without login (attributes only). */
	S = h_user_session(&env);
	CK_OBJECT_CLASS d = CKO_DATA;
	CK_BBOOL f = CK_FALSE;
	CK_ATTRIBUTE pub[] = {{CKA_CLASS, &d, sizeof(d)},
			      {CKA_TOKEN, &t, 1},
			      {CKA_PRIVATE, &f, 1},
			      {CKA_LABEL, "public", 6}};
	CK_OBJECT_HANDLE ph;
	assert_ok(p11->C_CreateObject(S, pub, 4, &ph));
	assert_ok(p11->C_Logout(S));
	CK_ATTRIBUTE ql = {CKA_LABEL, "public", 6};
	assert_int_equal(find(S, &ql, 1, h, 4), 1);
}

static void test_session_objects_die_with_session(void **state)
{
	CK_SESSION_HANDLE s2;
	assert_ok(p11->C_OpenSession(env.slot, CKF_SERIAL_SESSION | CKF_RW_SESSION,
				     NULL, NULL, &s2));
	CK_OBJECT_HANDLE k = h_aes_key(s2, 16, CK_FALSE, "ephemeral");
	/* Visible from the other session of the application. */
	CK_ULONG size;
	assert_ok(p11->C_GetObjectSize(S, k, &size));
	assert_ok(p11->C_CloseSession(s2));
	assert_rv(p11->C_GetObjectSize(S, k, &size), CKR_OBJECT_HANDLE_INVALID);
}

static void test_many_token_objects(void **state)
{
	/* Enough objects to exercise the store index and handle tables. */
	for (int i = 0; i < 300; i++) {
		char l[16];
		snprintf(l, sizeof(l), "bulk-%03d", i);
		data_object(S, l, "v", CK_TRUE);
	}
	assert_ok(p11->C_Finalize(NULL));
	assert_ok(h_initialize(&env));
	S = h_user_session(&env);
	CK_ATTRIBUTE q = {CKA_LABEL, "bulk-123", 8};
	CK_OBJECT_HANDLE h[4];
	assert_int_equal(find(S, &q, 1, h, 4), 1);
	CK_OBJECT_CLASS d = CKO_DATA;
	CK_ATTRIBUTE qc = {CKA_CLASS, &d, sizeof(d)};
	CK_OBJECT_HANDLE all[400];
	assert_int_equal(find(S, &qc, 1, all, 400), 300);
}

int main(void)
{
	h_load();
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_data_objects_persist, setup, teardown),
		cmocka_unit_test_setup_teardown(test_get_attribute_rules, setup, teardown),
		cmocka_unit_test_setup_teardown(test_create_rules, setup, teardown),
		cmocka_unit_test_setup_teardown(test_vendor_attributes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_read_only_session, setup, teardown),
		cmocka_unit_test_setup_teardown(test_copy_set_destroy, setup, teardown),
		cmocka_unit_test_setup_teardown(test_find_and_visibility, setup, teardown),
		cmocka_unit_test_setup_teardown(test_find_null_values, setup, teardown),
		cmocka_unit_test_setup_teardown(test_session_objects_die_with_session,
						setup, teardown),
		cmocka_unit_test_setup_teardown(test_many_token_objects, setup, teardown),
	};
	return cmocka_run_group_tests_name("objects", tests, NULL, NULL);
}
