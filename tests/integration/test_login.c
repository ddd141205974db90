/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Login state and objects through the exported API (docs/OBJECTS.md,
 * "Login and private objects"):
 *   logout: PKCS #11 v2.40 5.6 C_Logout, "any of the application's handles
 *     to private objects become invalid (even if a user is later logged
 *     back into the token, those handles remain invalid)": after C_Logout,
 *     after the last session closes and after a revoked sealing key logged
 *     the user out; a search begun before returns no private handle after.
 *     Another process re-initializing the token logs this one out too,
 *     and every token object's handle goes (without a use after free).
 *   login=optional: CKF_LOGIN_REQUIRED is clear, and private objects need
 *     no login (SunPKCS11 and NSS never call C_Login there); the SO still
 *     sees only public objects.
 *   login=required: public token objects are listed and read before a
 *     login, but not made, changed or used (CKR_USER_NOT_LOGGED_IN): their
 *     records are sealed under the token key, which needs the PIN. A
 *     deviation from PKCS #11 5.6's R/W Public Session, documented.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

static h_env env;

static int setup_required(void **state)
{
	(void)state;
	h_env_new(&env, "required", "\"revalidate_seconds\": 1");
	assert_ok(h_initialize(&env));
	h_init_token(&env);
	return 0;
}

static int setup_optional(void **state)
{
	(void)state;
	h_env_new(&env, "optional", "");
	assert_ok(h_initialize(&env));
	h_init_token(&env);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	p11->C_Finalize(NULL);
	h_env_free(&env);
	return 0;
}

static CK_SESSION_HANDLE open_session(CK_FLAGS rw)
{
	CK_SESSION_HANDLE s;
	assert_ok(p11->C_OpenSession(env.slot, CKF_SERIAL_SESSION | rw, NULL, NULL, &s));
	return s;
}

static void login(CK_SESSION_HANDLE s)
{
	assert_ok(p11->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)USER_PIN, strlen(USER_PIN)));
}

/* A public token data object (CKA_PRIVATE FALSE). */
static CK_OBJECT_HANDLE public_data(CK_SESSION_HANDLE s, const char *label)
{
	CK_OBJECT_CLASS c = CKO_DATA;
	CK_BBOOL t = CK_TRUE, f = CK_FALSE;
	CK_ATTRIBUTE tmpl[] = {{CKA_CLASS, &c, sizeof(c)},
			       {CKA_TOKEN, &t, 1},
			       {CKA_PRIVATE, &f, 1},
			       {CKA_LABEL, (void *)label, strlen(label)},
			       {CKA_VALUE, "v", 1}};
	CK_OBJECT_HANDLE h;
	assert_ok(p11->C_CreateObject(s, tmpl, 5, &h));
	return h;
}

static bool handle_works(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE h)
{
	CK_ULONG size;
	CK_RV rv = p11->C_GetObjectSize(s, h, &size);
	if (rv != CKR_OK && rv != CKR_OBJECT_HANDLE_INVALID)
		fail_msg("C_GetObjectSize: 0x%lx", (unsigned long)rv);
	return rv == CKR_OK;
}

/* The rest of a running search, up to 64 handles. */
static CK_ULONG find_rest(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE *h)
{
	CK_ULONG n = 0, got;
	do {
		assert_ok(p11->C_FindObjects(s, h + n, 64 - n, &got));
		n += got;
	} while (got && n < 64);
	assert_ok(p11->C_FindObjectsFinal(s));
	return n;
}

static bool among(CK_OBJECT_HANDLE x, const CK_OBJECT_HANDLE *h, CK_ULONG n)
{
	for (CK_ULONG i = 0; i < n; i++)
		if (h[i] == x)
			return true;
	return false;
}

static void test_logout_invalidates_private_handles(void **state)
{
	(void)state;
	CK_SESSION_HANDLE s = open_session(CKF_RW_SESSION);
	login(s);
	CK_SESSION_HANDLE ro = open_session(0);
	CK_OBJECT_HANDLE tok = h_aes_key(s, 32, CK_TRUE, "private-token"); /* private */
	CK_OBJECT_HANDLE ses = h_aes_key(s, 32, CK_FALSE, "private-session");
	CK_OBJECT_HANDLE pub = public_data(s, "public");
	uint8_t before[32], after[32];
	CK_ULONG bl = sizeof(before), al = sizeof(after);
	assert_ok(h_encrypt_probe(s, tok, before, &bl));

	/* Two searches of everything begun while logged in, one per session. */
	CK_OBJECT_HANDLE h[64];
	assert_ok(p11->C_FindObjectsInit(ro, NULL, 0));
	assert_ok(p11->C_FindObjectsInit(s, NULL, 0));
	assert_ok(p11->C_Logout(s));

	/* Logged out: private handles are invalid, public ones work. */
	assert_false(handle_works(s, tok));
	assert_false(handle_works(ro, ses));
	assert_true(handle_works(ro, pub));
	CK_ULONG n = find_rest(ro, h);
	assert_false(among(tok, h, n) || among(ses, h, n));
	assert_true(among(pub, h, n));

	/* Logged in again: the old private handles stay invalid (5.6), and a
	 * search begun before the logout still does not return them. */
	login(s);
	n = find_rest(s, h);
	assert_false(among(tok, h, n) || among(ses, h, n));
	assert_true(among(pub, h, n));
	assert_false(handle_works(s, tok));
	uint8_t iv[16] = {0};
	CK_MECHANISM cbc = {CKM_AES_CBC_PAD, iv, 16};
	assert_rv(p11->C_EncryptInit(s, &cbc, tok), CKR_KEY_HANDLE_INVALID);
	assert_true(h_log_contains(&env, "no such object on this session's token"));
	assert_true(handle_works(s, pub));
	/* The object itself is still there, under a new handle: the same key. */
	CK_OBJECT_HANDLE tok2 = h_find_label(s, "private-token");
	assert_int_not_equal(tok2, tok);
	assert_ok(h_encrypt_probe(s, tok2, after, &al));
	assert_int_equal(al, bl);
	assert_memory_equal(before, after, bl);
	/* The private session object was destroyed (5.6). */
	CK_ATTRIBUTE q = {CKA_LABEL, "private-session", 15};
	assert_ok(p11->C_FindObjectsInit(s, &q, 1));
	assert_int_equal(find_rest(s, h), 0);

	/* Closing the application's last session logs it out: the same. */
	assert_ok(p11->C_CloseSession(ro));
	assert_ok(p11->C_CloseSession(s));
	s = open_session(CKF_RW_SESSION);
	login(s);
	assert_false(handle_works(s, tok2));
	assert_true(handle_works(s, pub));
	assert_int_not_equal(h_find_label(s, "private-token"), tok2);
	assert_ok(p11->C_CloseSession(s));
}

/* A revoked sealing key logs the user out (login=required): a logout like
 * C_Logout's, whose private handles stay invalid after the next login. */
static void test_revocation_logout_invalidates_private_handles(void **state)
{
	(void)state;
	CK_SESSION_HANDLE s = open_session(CKF_RW_SESSION);
	login(s);
	CK_OBJECT_HANDLE tok = h_aes_key(s, 32, CK_TRUE, "private-token");
	CK_OBJECT_HANDLE pub = public_data(s, "public");
	assert_int_equal(chmod(env.key_file, 0644), 0); /* the local KMS refuses it */
	sleep(2);                                        /* past revalidate_seconds */
	uint8_t out[32];
	CK_ULONG ol = sizeof(out);
	assert_rv(h_encrypt_probe(s, tok, out, &ol), CKR_DEVICE_ERROR);
	CK_SESSION_INFO si;
	assert_ok(p11->C_GetSessionInfo(s, &si));
	assert_int_equal(si.state, CKS_RW_PUBLIC_SESSION);
	assert_int_equal(chmod(env.key_file, 0600), 0);
	login(s);
	assert_false(handle_works(s, tok));
	assert_true(handle_works(s, pub));
	CK_OBJECT_HANDLE tok2 = h_find_label(s, "private-token");
	assert_int_not_equal(tok2, tok);
	assert_ok(h_encrypt_probe(s, tok2, out, &ol));
	assert_ok(p11->C_CloseSession(s));
}

/* Another process runs C_InitToken on the token (slots/token.c load_meta:
 * this process then forgets every token object and logs out). The handles
 * held here must answer CKR_OBJECT_HANDLE_INVALID, not be read after they
 * were freed (ASan, before the fix: heap-use-after-free in
 * token_obj_refresh_inlock under object_inlock). */
static void test_reinit_elsewhere_invalidates_handles(void **state)
{
	(void)state;
	CK_SESSION_HANDLE s = open_session(CKF_RW_SESSION);
	login(s);
	CK_OBJECT_HANDLE tok = h_aes_key(s, 32, CK_TRUE, "private-token");
	CK_OBJECT_HANDLE pub = public_data(s, "public");
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) { /* the child starts uninitialized (PKCS #11 6.7.7) */
		CK_UTF8CHAR label[32];
		memset(label, ' ', sizeof(label));
		_exit(h_initialize_child(&env) != CKR_OK ? 2
		      : p11->C_InitToken(env.slot, (CK_UTF8CHAR_PTR)SO_PIN, strlen(SO_PIN),
					 label) != CKR_OK ? 3
		      : p11->C_Finalize(NULL) != CKR_OK ? 4
							 : 0);
	}
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	assert_int_equal(WEXITSTATUS(st), 0);
	assert_false(handle_works(s, tok));
	assert_false(handle_works(s, pub));
	CK_SESSION_INFO si;
	assert_ok(p11->C_GetSessionInfo(s, &si));
	assert_int_equal(si.state, CKS_RW_PUBLIC_SESSION);
	assert_ok(p11->C_CloseSession(s));
}

static CK_BBOOL attr_bool(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE h, CK_ATTRIBUTE_TYPE t)
{
	CK_BBOOL v = 2;
	CK_ATTRIBUTE a = {t, &v, sizeof(v)};
	assert_ok(p11->C_GetAttributeValue(s, h, &a, 1));
	return v;
}

/* How many objects have this label. */
static CK_ULONG count_label(CK_SESSION_HANDLE s, const char *label)
{
	CK_ATTRIBUTE q = {CKA_LABEL, (void *)label, strlen(label)};
	CK_OBJECT_HANDLE h[64];
	assert_ok(p11->C_FindObjectsInit(s, &q, 1));
	return find_rest(s, h);
}

static void test_optional_private_objects_need_no_login(void **state)
{
	(void)state;
	CK_TOKEN_INFO ti;
	assert_ok(p11->C_GetTokenInfo(env.slot, &ti));
	assert_false(ti.flags & CKF_LOGIN_REQUIRED);
	CK_SESSION_HANDLE s = open_session(CKF_RW_SESSION), ro = open_session(0);
	CK_SESSION_INFO si;
	assert_ok(p11->C_GetSessionInfo(ro, &si));
	assert_int_equal(si.state, CKS_RO_PUBLIC_SESSION);

	/* Nobody logged in: a private token key (the default), a private
	 * session key and a private token data object are made ... */
	CK_OBJECT_HANDLE tok = h_aes_key(s, 32, CK_TRUE, "private-token");
	assert_int_equal(attr_bool(s, tok, CKA_PRIVATE), CK_TRUE);
	CK_OBJECT_HANDLE ses = h_aes_key(s, 16, CK_FALSE, "private-session");
	CK_OBJECT_CLASS dc = CKO_DATA;
	CK_BBOOL t = CK_TRUE, f = CK_FALSE;
	CK_ATTRIBUTE data[] = {{CKA_CLASS, &dc, sizeof(dc)},
			       {CKA_TOKEN, &t, 1},
			       {CKA_PRIVATE, &t, 1},
			       {CKA_LABEL, "private-data", 12},
			       {CKA_VALUE, "secret-data", 11}};
	CK_OBJECT_HANDLE dh;
	assert_ok(p11->C_CreateObject(s, data, 5, &dh));
	/* ... and seen, used, read and changed from public sessions. */
	assert_int_equal(h_find_label(ro, "private-token"), tok);
	assert_int_equal(h_find_label(ro, "private-session"), ses);
	uint8_t c1[32], c2[32], v[32];
	CK_ULONG l1 = sizeof(c1), l2 = sizeof(c2);
	assert_ok(h_encrypt_probe(ro, tok, c1, &l1));
	CK_ATTRIBUTE va = {CKA_VALUE, v, sizeof(v)};
	assert_ok(p11->C_GetAttributeValue(ro, h_find_label(ro, "private-data"), &va, 1));
	assert_int_equal(va.ulValueLen, 11);
	assert_memory_equal(v, "secret-data", 11);
	CK_ATTRIBUTE rename = {CKA_LABEL, "renamed", 7};
	assert_ok(p11->C_SetAttributeValue(s, tok, &rename, 1));
	CK_ATTRIBUTE session_copy = {CKA_TOKEN, &f, 1};
	CK_OBJECT_HANDLE copy;
	assert_ok(p11->C_CopyObject(s, tok, &session_copy, 1, &copy));
	assert_int_equal(attr_bool(ro, copy, CKA_PRIVATE), CK_TRUE);
	/* Still read/write sessions for token objects. */
	CK_ULONG len = 16;
	CK_MECHANISM gen = {CKM_AES_KEY_GEN, NULL, 0};
	CK_ATTRIBUTE tt[] = {{CKA_VALUE_LEN, &len, sizeof(len)}, {CKA_TOKEN, &t, 1}};
	CK_OBJECT_HANDLE k;
	assert_rv(p11->C_GenerateKey(ro, &gen, tt, 2, &k), CKR_SESSION_READ_ONLY);

	/* Another process (here: the module initialized again) finds the
	 * private key without a login, and it is the same key. */
	assert_ok(p11->C_Finalize(NULL));
	assert_ok(h_initialize(&env));
	s = open_session(CKF_RW_SESSION);
	CK_OBJECT_HANDLE again = h_find_label(s, "renamed");
	assert_ok(h_encrypt_probe(s, again, c2, &l2));
	assert_int_equal(l1, l2);
	assert_memory_equal(c1, c2, l1);

	/* The SO sees public objects only (PKCS #11 5.6) and makes no private
	 * ones; its logout invalidates the private handles held before. */
	assert_ok(p11->C_Login(s, CKU_SO, (CK_UTF8CHAR_PTR)SO_PIN, strlen(SO_PIN)));
	assert_int_equal(count_label(s, "renamed"), 0);
	assert_false(handle_works(s, again));
	CK_ATTRIBUTE st = {CKA_VALUE_LEN, &len, sizeof(len)};
	assert_rv(p11->C_GenerateKey(s, &gen, &st, 1, &k), CKR_USER_NOT_LOGGED_IN);
	assert_ok(p11->C_Logout(s));
	assert_false(handle_works(s, again));
	CK_OBJECT_HANDLE found = h_find_label(s, "renamed");
	assert_int_not_equal(found, again);
	assert_true(handle_works(s, found));

	/* A user login changes nothing for private objects; its logout
	 * invalidates their handles like any logout. */
	login(s);
	assert_true(handle_works(s, found));
	assert_ok(p11->C_Logout(s));
	assert_false(handle_works(s, found));
	assert_int_equal(count_label(s, "renamed"), 1);
	assert_ok(p11->C_CloseSession(s));
}

/* A public AES token key whose value may be read. */
static CK_OBJECT_HANDLE public_key(CK_SESSION_HANDLE s, const char *label)
{
	CK_MECHANISM m = {CKM_AES_KEY_GEN, NULL, 0};
	CK_ULONG len = 32;
	CK_BBOOL t = CK_TRUE, f = CK_FALSE;
	CK_ATTRIBUTE tmpl[] = {{CKA_VALUE_LEN, &len, sizeof(len)},
			       {CKA_TOKEN, &t, 1},
			       {CKA_PRIVATE, &f, 1},
			       {CKA_SENSITIVE, &f, 1},
			       {CKA_LABEL, (void *)label, strlen(label)}};
	CK_OBJECT_HANDLE k;
	CK_RV rv = p11->C_GenerateKey(s, &m, tmpl, 5, &k);
	return rv == CKR_OK ? k : CK_INVALID_HANDLE;
}

static void test_required_public_token_objects_need_a_login(void **state)
{
	(void)state;
	CK_SESSION_HANDLE s = open_session(CKF_RW_SESSION);
	login(s);
	CK_OBJECT_HANDLE key = public_key(s, "public-key");
	assert_int_not_equal(key, CK_INVALID_HANDLE);
	CK_OBJECT_HANDLE data = public_data(s, "public-data");
	uint8_t c1[32], c2[32];
	CK_ULONG l1 = sizeof(c1), l2 = sizeof(c2);
	assert_ok(h_encrypt_probe(s, key, c1, &l1));
	assert_ok(p11->C_Logout(s));
	CK_SESSION_INFO si;
	assert_ok(p11->C_GetSessionInfo(s, &si));
	assert_int_equal(si.state, CKS_RW_PUBLIC_SESSION);

	/* Listed, their public attributes and a public data object's value
	 * read, as PKCS #11 5.6 says. */
	assert_int_equal(h_find_label(s, "public-key"), key);
	assert_int_equal(h_find_label(s, "public-data"), data);
	uint8_t v[40];
	CK_ATTRIBUTE va = {CKA_VALUE, v, sizeof(v)};
	assert_ok(p11->C_GetAttributeValue(s, data, &va, 1));
	assert_int_equal(va.ulValueLen, 1);
	/* A key's value is sealed: C_GetAttributeValue has no
	 * CKR_USER_NOT_LOGGED_IN, so it is reported as sensitive. */
	va.ulValueLen = sizeof(v);
	assert_rv(p11->C_GetAttributeValue(s, key, &va, 1), CKR_ATTRIBUTE_SENSITIVE);
	assert_int_equal(va.ulValueLen, CK_UNAVAILABLE_INFORMATION);

	/* The deviation: used, changed, copied or made, a public token object
	 * needs the token key, so a login: CKR_USER_NOT_LOGGED_IN, with a log
	 * line saying why. */
	assert_rv(h_encrypt_probe(s, key, c2, &l2), CKR_USER_NOT_LOGGED_IN);
	assert_true(h_log_contains(&env, "needs the token key, which needs a login with "
					 "login=required, even for a public object"));
	CK_ATTRIBUTE rename = {CKA_LABEL, "renamed", 7};
	assert_rv(p11->C_SetAttributeValue(s, data, &rename, 1), CKR_USER_NOT_LOGGED_IN);
	assert_true(h_log_contains(&env, "changing a token object needs the token key"));
	CK_BBOOL f = CK_FALSE;
	CK_ATTRIBUTE to_session = {CKA_TOKEN, &f, 1};
	CK_OBJECT_HANDLE copy;
	assert_rv(p11->C_CopyObject(s, key, &to_session, 1, &copy), CKR_USER_NOT_LOGGED_IN);
	CK_MECHANISM gen = {CKM_AES_KEY_GEN, NULL, 0};
	CK_ULONG len = 16;
	CK_BBOOL t = CK_TRUE;
	CK_ATTRIBUTE pub_tok[] = {{CKA_VALUE_LEN, &len, sizeof(len)},
				  {CKA_TOKEN, &t, 1},
				  {CKA_PRIVATE, &f, 1}};
	CK_OBJECT_HANDLE k;
	assert_rv(p11->C_GenerateKey(s, &gen, pub_tok, 3, &k), CKR_USER_NOT_LOGGED_IN);
	CK_OBJECT_CLASS dc = CKO_DATA;
	CK_ATTRIBUTE pub_data[] = {{CKA_CLASS, &dc, sizeof(dc)},
				   {CKA_TOKEN, &t, 1},
				   {CKA_PRIVATE, &f, 1}};
	assert_rv(p11->C_CreateObject(s, pub_data, 3, &k), CKR_USER_NOT_LOGGED_IN);
	/* Destroying one needs no key. */
	assert_ok(p11->C_DestroyObject(s, data));
	assert_int_equal(count_label(s, "public-data"), 0);

	/* Public session objects work before a login, as the spec says. */
	pub_tok[1].pValue = &f;
	assert_ok(p11->C_GenerateKey(s, &gen, pub_tok, 3, &k));
	assert_ok(h_encrypt_probe(s, k, c2, &l2));
	assert_ok(p11->C_CreateObject(s, pub_data, 1, &k));

	/* After a login the same key works, with the same handle. */
	login(s);
	l2 = sizeof(c2);
	assert_ok(h_encrypt_probe(s, key, c2, &l2));
	assert_memory_equal(c1, c2, l1);
	assert_ok(p11->C_CloseSession(s));
}

int main(void)
{
	h_load();
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_logout_invalidates_private_handles,
						setup_required, teardown),
		cmocka_unit_test_setup_teardown(test_revocation_logout_invalidates_private_handles,
						setup_required, teardown),
		cmocka_unit_test_setup_teardown(test_reinit_elsewhere_invalidates_handles,
						setup_required, teardown),
		cmocka_unit_test_setup_teardown(test_optional_private_objects_need_no_login,
						setup_optional, teardown),
		cmocka_unit_test_setup_teardown(test_required_public_token_objects_need_a_login,
						setup_required, teardown),
	};
	return cmocka_run_group_tests_name("login", tests, NULL, NULL);
}
