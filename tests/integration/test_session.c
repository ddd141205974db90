/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Slots, tokens, sessions, PINs and login through the exported API.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

static h_env env;

static int setup(void **state)
{
	h_env_new(&env, "required", "");
	assert_ok(h_initialize(&env));
	return 0;
}

static int setup_optional(void **state)
{
	h_env_new(&env, "optional", "");
	assert_ok(h_initialize(&env));
	return 0;
}

static int teardown(void **state)
{
	p11->C_Finalize(NULL);
	h_env_free(&env);
	return 0;
}

static void test_not_initialized(void **state)
{
	CK_ULONG n;
	CK_INFO info;
	assert_rv(p11->C_GetSlotList(CK_FALSE, NULL, &n), CKR_CRYPTOKI_NOT_INITIALIZED);
	assert_rv(p11->C_GetInfo(&info), CKR_CRYPTOKI_NOT_INITIALIZED);
	assert_rv(p11->C_Finalize(NULL), CKR_CRYPTOKI_NOT_INITIALIZED);
}

static void test_initialize_args(void **state)
{
	h_env e;
	h_env_new(&e, "required", "");
	CK_C_INITIALIZE_ARGS a = {0};
	a.CreateMutex = (CK_CREATEMUTEX)1; /* only one callback: inconsistent */
	a.pReserved = e.init_str;
	assert_rv(p11->C_Initialize(&a), CKR_ARGUMENTS_BAD);
	assert_ok(h_initialize(&e));
	assert_rv(h_initialize(&e), CKR_CRYPTOKI_ALREADY_INITIALIZED);
	assert_rv(p11->C_Finalize((void *)1), CKR_ARGUMENTS_BAD);
	assert_ok(p11->C_Finalize(NULL));
	h_env_free(&e);
}

static void test_info_and_slots(void **state)
{
	CK_INFO info;
	assert_ok(p11->C_GetInfo(&info));
	assert_int_equal(info.cryptokiVersion.major, 3);
	assert_rv(p11->C_GetInfo(NULL), CKR_ARGUMENTS_BAD);

	CK_ULONG n = 0;
	assert_ok(p11->C_GetSlotList(CK_TRUE, NULL, &n));
	assert_int_equal(n, 1);
	CK_SLOT_ID slots[4];
	CK_ULONG small = 0;
	assert_rv(p11->C_GetSlotList(CK_TRUE, slots, &small), CKR_BUFFER_TOO_SMALL);
	assert_int_equal(small, 1);
	n = 4;
	assert_ok(p11->C_GetSlotList(CK_TRUE, slots, &n));
	assert_int_equal(slots[0], env.slot);
	assert_rv(p11->C_GetSlotList(CK_TRUE, slots, NULL), CKR_ARGUMENTS_BAD);

	CK_SLOT_INFO si;
	assert_ok(p11->C_GetSlotInfo(env.slot, &si));
	assert_true(si.flags & CKF_TOKEN_PRESENT);
	assert_rv(p11->C_GetSlotInfo(env.slot + 1, &si), CKR_SLOT_ID_INVALID);

	CK_TOKEN_INFO ti;
	assert_ok(p11->C_GetTokenInfo(env.slot, &ti));
	assert_false(ti.flags & CKF_TOKEN_INITIALIZED);
	assert_true(ti.flags & CKF_LOGIN_REQUIRED);
	assert_true(ti.flags & CKF_RNG);
	assert_rv(p11->C_GetTokenInfo(env.slot + 1, &ti), CKR_SLOT_ID_INVALID);
	assert_rv(p11->C_GetTokenInfo(env.slot, NULL), CKR_ARGUMENTS_BAD);

	CK_MECHANISM_INFO mi;
	assert_rv(p11->C_GetMechanismInfo(env.slot, CKM_RSA_PKCS, &mi),
		  CKR_MECHANISM_INVALID);
	assert_ok(p11->C_GetMechanismInfo(env.slot, CKM_AES_GCM, &mi));
	assert_true(mi.flags & CKF_ENCRYPT);
}

static void test_init_token_and_pins(void **state)
{
	h_init_token(&env);
	CK_TOKEN_INFO ti;
	assert_ok(p11->C_GetTokenInfo(env.slot, &ti));
	assert_true(ti.flags & CKF_TOKEN_INITIALIZED);
	assert_true(ti.flags & CKF_USER_PIN_INITIALIZED);
	assert_memory_equal(ti.label, "test                            ", 32);

	CK_SESSION_HANDLE s;
	assert_ok(p11->C_OpenSession(env.slot, CKF_SERIAL_SESSION, NULL, NULL, &s));
	/* Re-initializing with sessions open is refused. */
	CK_UTF8CHAR label[32];
	memset(label, ' ', 32);
	assert_rv(p11->C_InitToken(env.slot, (CK_UTF8CHAR_PTR)SO_PIN, 8, label),
		  CKR_SESSION_EXISTS);
	/* SO login with a read-only session open is refused. */
	assert_rv(p11->C_Login(s, CKU_SO, (CK_UTF8CHAR_PTR)SO_PIN, 8),
		  CKR_SESSION_READ_ONLY_EXISTS);
	assert_rv(p11->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR) "9999", 4),
		  CKR_PIN_INCORRECT);
	assert_ok(p11->C_GetTokenInfo(env.slot, &ti));
	assert_true(ti.flags & CKF_USER_PIN_COUNT_LOW);
	assert_ok(p11->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)USER_PIN, 4));
	assert_ok(p11->C_GetTokenInfo(env.slot, &ti));
	assert_false(ti.flags & CKF_USER_PIN_COUNT_LOW);
	assert_rv(p11->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)USER_PIN, 4),
		  CKR_USER_ALREADY_LOGGED_IN);
	assert_rv(p11->C_Login(s, CKU_SO, (CK_UTF8CHAR_PTR)SO_PIN, 8),
		  CKR_USER_ANOTHER_ALREADY_LOGGED_IN);
	CK_SESSION_INFO si;
	assert_ok(p11->C_GetSessionInfo(s, &si));
	assert_int_equal(si.state, CKS_RO_USER_FUNCTIONS);
	/* C_SetPIN in a read-only session. */
	assert_rv(p11->C_SetPIN(s, (CK_UTF8CHAR_PTR)USER_PIN, 4,
				(CK_UTF8CHAR_PTR) "5678", 4),
		  CKR_SESSION_READ_ONLY);
	assert_ok(p11->C_Logout(s));
	assert_rv(p11->C_Logout(s), CKR_USER_NOT_LOGGED_IN);
	assert_ok(p11->C_CloseSession(s));

	/* Change the user PIN, then the old one fails and the new one works. */
	assert_ok(p11->C_OpenSession(env.slot, CKF_SERIAL_SESSION | CKF_RW_SESSION,
				     NULL, NULL, &s));
	assert_rv(p11->C_SetPIN(s, (CK_UTF8CHAR_PTR) "0000", 4,
				(CK_UTF8CHAR_PTR) "5678", 4),
		  CKR_PIN_INCORRECT);
	assert_rv(p11->C_SetPIN(s, (CK_UTF8CHAR_PTR)USER_PIN, 4,
				(CK_UTF8CHAR_PTR) "56", 2),
		  CKR_PIN_LEN_RANGE);
	assert_ok(p11->C_SetPIN(s, (CK_UTF8CHAR_PTR)USER_PIN, 4,
				(CK_UTF8CHAR_PTR) "5678", 4));
	assert_rv(p11->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)USER_PIN, 4),
		  CKR_PIN_INCORRECT);
	assert_ok(p11->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR) "5678", 4));
	/* The token key still opens after the PIN change: a token key works. */
	CK_OBJECT_HANDLE k = h_aes_key(s, 32, CK_TRUE, "after-pin-change");
	assert_int_not_equal(k, CK_INVALID_HANDLE);
	assert_ok(p11->C_CloseSession(s));

	/* Closing the last session logged the user out. */
	assert_ok(p11->C_OpenSession(env.slot, CKF_SERIAL_SESSION, NULL, NULL, &s));
	assert_ok(p11->C_GetSessionInfo(s, &si));
	assert_int_equal(si.state, CKS_RO_PUBLIC_SESSION);
	assert_ok(p11->C_CloseSession(s));
}

static void test_pin_lockout(void **state)
{
	h_init_token(&env);
	CK_SESSION_HANDLE s;
	CK_TOKEN_INFO ti;
	assert_ok(p11->C_OpenSession(env.slot, CKF_SERIAL_SESSION, NULL, NULL, &s));
	for (int i = 0; i < 9; i++)
		assert_rv(p11->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR) "0000", 4),
			  CKR_PIN_INCORRECT);
	assert_ok(p11->C_GetTokenInfo(env.slot, &ti));
	assert_true(ti.flags & CKF_USER_PIN_FINAL_TRY);
	assert_rv(p11->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR) "0000", 4),
		  CKR_PIN_INCORRECT);
	assert_ok(p11->C_GetTokenInfo(env.slot, &ti));
	assert_true(ti.flags & CKF_USER_PIN_LOCKED);
	/* Locked: even the right PIN is refused. */
	assert_rv(p11->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)USER_PIN, 4),
		  CKR_PIN_LOCKED);
	assert_ok(p11->C_CloseSession(s));
	/* The SO unlocks by setting a new user PIN. */
	assert_ok(p11->C_OpenSession(env.slot, CKF_SERIAL_SESSION | CKF_RW_SESSION,
				     NULL, NULL, &s));
	assert_ok(p11->C_Login(s, CKU_SO, (CK_UTF8CHAR_PTR)SO_PIN, 8));
	assert_ok(p11->C_InitPIN(s, (CK_UTF8CHAR_PTR) "4321", 4));
	assert_ok(p11->C_Logout(s));
	assert_ok(p11->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR) "4321", 4));
	assert_ok(p11->C_CloseSession(s));
	/* The counter lives in the store: it survives a restart. */
	assert_ok(p11->C_Finalize(NULL));
	assert_ok(h_initialize(&env));
	assert_ok(p11->C_GetTokenInfo(env.slot, &ti));
	assert_false(ti.flags & CKF_USER_PIN_LOCKED);
}

static void test_session_rules(void **state)
{
	CK_SESSION_HANDLE s, s2;
	assert_rv(p11->C_OpenSession(env.slot, 0, NULL, NULL, &s),
		  CKR_SESSION_PARALLEL_NOT_SUPPORTED);
	assert_rv(p11->C_OpenSession(env.slot, CKF_SERIAL_SESSION, NULL, NULL, NULL),
		  CKR_ARGUMENTS_BAD);
	assert_rv(p11->C_OpenSession(env.slot + 1, CKF_SERIAL_SESSION, NULL, NULL, &s),
		  CKR_SLOT_ID_INVALID);
	h_init_token(&env);
	assert_ok(p11->C_OpenSession(env.slot, CKF_SERIAL_SESSION | CKF_RW_SESSION,
				     NULL, NULL, &s));
	assert_ok(p11->C_Login(s, CKU_SO, (CK_UTF8CHAR_PTR)SO_PIN, 8));
	CK_SESSION_INFO si;
	assert_ok(p11->C_GetSessionInfo(s, &si));
	assert_int_equal(si.state, CKS_RW_SO_FUNCTIONS);
	assert_int_equal(si.ulDeviceError, 0);
	assert_rv(p11->C_OpenSession(env.slot, CKF_SERIAL_SESSION, NULL, NULL, &s2),
		  CKR_SESSION_READ_WRITE_SO_EXISTS);
	assert_ok(p11->C_Logout(s));
	assert_rv(p11->C_Login(s, 42, (CK_UTF8CHAR_PTR)SO_PIN, 8), CKR_USER_TYPE_INVALID);
	assert_rv(p11->C_Login(s, CKU_USER, NULL, 4), CKR_ARGUMENTS_BAD);
	assert_ok(p11->C_OpenSession(env.slot, CKF_SERIAL_SESSION, NULL, NULL, &s2));
	assert_ok(p11->C_CloseAllSessions(env.slot));
	assert_rv(p11->C_CloseSession(s), CKR_SESSION_HANDLE_INVALID);
	assert_rv(p11->C_CloseSession(s2), CKR_SESSION_HANDLE_INVALID);
	assert_rv(p11->C_GetSessionInfo(s, &si), CKR_SESSION_HANDLE_INVALID);
	assert_rv(p11->C_CloseAllSessions(env.slot + 1), CKR_SLOT_ID_INVALID);
	/* InitPIN needs the SO. */
	assert_ok(p11->C_OpenSession(env.slot, CKF_SERIAL_SESSION | CKF_RW_SESSION,
				     NULL, NULL, &s));
	assert_rv(p11->C_InitPIN(s, (CK_UTF8CHAR_PTR) "1111", 4), CKR_USER_NOT_LOGGED_IN);
	assert_ok(p11->C_CloseSession(s));
}

static void test_reinit_wipes_objects(void **state)
{
	h_init_token(&env);
	CK_SESSION_HANDLE s = h_user_session(&env);
	h_aes_key(s, 32, CK_TRUE, "old");
	assert_ok(p11->C_CloseSession(s));
	/* Wrong SO PIN: nothing changes. */
	CK_UTF8CHAR label[32];
	memset(label, ' ', 32);
	memcpy(label, "again", 5);
	assert_rv(p11->C_InitToken(env.slot, (CK_UTF8CHAR_PTR) "00000000", 8, label),
		  CKR_PIN_INCORRECT);
	assert_ok(p11->C_InitToken(env.slot, (CK_UTF8CHAR_PTR)SO_PIN, 8, label));
	CK_TOKEN_INFO ti;
	assert_ok(p11->C_GetTokenInfo(env.slot, &ti));
	assert_false(ti.flags & CKF_USER_PIN_INITIALIZED);
	assert_memory_equal(ti.label, "again", 5);
	assert_ok(p11->C_OpenSession(env.slot, CKF_SERIAL_SESSION | CKF_RW_SESSION,
				     NULL, NULL, &s));
	assert_rv(p11->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)USER_PIN, 4),
		  CKR_USER_PIN_NOT_INITIALIZED);
	assert_ok(p11->C_Login(s, CKU_SO, (CK_UTF8CHAR_PTR)SO_PIN, 8));
	CK_OBJECT_CLASS c = CKO_SECRET_KEY;
	CK_ATTRIBUTE t = {CKA_CLASS, &c, sizeof(c)};
	CK_OBJECT_HANDLE h[4];
	CK_ULONG n;
	assert_ok(p11->C_FindObjectsInit(s, &t, 1));
	assert_ok(p11->C_FindObjects(s, h, 4, &n));
	assert_int_equal(n, 0);
	assert_ok(p11->C_FindObjectsFinal(s));
	assert_ok(p11->C_CloseSession(s));
}

static void test_optional_login(void **state)
{
	h_init_token(&env);
	CK_TOKEN_INFO ti;
	assert_ok(p11->C_GetTokenInfo(env.slot, &ti));
	assert_false(ti.flags & CKF_LOGIN_REQUIRED);
	CK_SESSION_HANDLE s;
	assert_ok(p11->C_OpenSession(env.slot, CKF_SERIAL_SESSION | CKF_RW_SESSION,
				     NULL, NULL, &s));
	/* A public token key works without login: the KMS alone guards it. */
	CK_MECHANISM m = {CKM_AES_KEY_GEN, NULL, 0};
	CK_ULONG len = 32;
	CK_BBOOL t = CK_TRUE, f = CK_FALSE;
	CK_ATTRIBUTE tmpl[] = {{CKA_VALUE_LEN, &len, sizeof(len)},
			       {CKA_TOKEN, &t, 1},
			       {CKA_PRIVATE, &f, 1},
			       {CKA_LABEL, "pub", 3}};
	CK_OBJECT_HANDLE k;
	assert_ok(p11->C_GenerateKey(s, &m, tmpl, 4, &k));
	/* So does a private one: no login is required for anything in this
	 * mode (docs/OBJECTS.md; test_login has the rest). */
	tmpl[2].pValue = &t;
	tmpl[3] = (CK_ATTRIBUTE){CKA_LABEL, "priv", 4};
	assert_ok(p11->C_GenerateKey(s, &m, tmpl, 4, &k));
	assert_ok(p11->C_CloseSession(s));
	assert_ok(p11->C_Finalize(NULL));
	assert_ok(h_initialize(&env));
	assert_ok(p11->C_OpenSession(env.slot, CKF_SERIAL_SESSION, NULL, NULL, &s));
	CK_ATTRIBUTE q = {CKA_LABEL, "pub", 3};
	CK_OBJECT_HANDLE h[2];
	CK_ULONG n;
	assert_ok(p11->C_FindObjectsInit(s, &q, 1));
	assert_ok(p11->C_FindObjects(s, h, 2, &n));
	assert_ok(p11->C_FindObjectsFinal(s));
	assert_int_equal(n, 1);
	uint8_t iv[16] = {0}, ct[32];
	CK_ULONG ctlen = sizeof(ct);
	CK_MECHANISM cbc = {CKM_AES_CBC_PAD, iv, 16};
	assert_ok(p11->C_EncryptInit(s, &cbc, h[0]));
	assert_ok(p11->C_Encrypt(s, (CK_BYTE_PTR) "hello", 5, ct, &ctlen));
	assert_int_equal(ctlen, 16);
	assert_ok(p11->C_CloseSession(s));
}

int main(void)
{
	h_load();
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_not_initialized),
		cmocka_unit_test(test_initialize_args),
		cmocka_unit_test_setup_teardown(test_info_and_slots, setup, teardown),
		cmocka_unit_test_setup_teardown(test_init_token_and_pins, setup, teardown),
		cmocka_unit_test_setup_teardown(test_pin_lockout, setup, teardown),
		cmocka_unit_test_setup_teardown(test_session_rules, setup, teardown),
		cmocka_unit_test_setup_teardown(test_reinit_wipes_objects, setup, teardown),
		cmocka_unit_test_setup_teardown(test_optional_login, setup_optional,
						teardown),
	};
	return cmocka_run_group_tests_name("session", tests, NULL, NULL);
}
