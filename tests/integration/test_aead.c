/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The PKCS #11 3.0 message-based AEAD API for AES-GCM, and the module's IV
 * generation: results equal single-part C_Encrypt, generated IVs keep the
 * fixed field, and no generated IV repeats, across restarts and processes.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

static h_env env;
static CK_SESSION_HANDLE S;
static CK_OBJECT_HANDLE K;

static int setup(void **state)
{
	h_env_new(&env, "required", "");
	assert_ok(h_initialize(&env));
	h_init_token(&env);
	S = h_user_session(&env);
	K = h_aes_key(S, 32, CK_TRUE, "aead-key");
	return 0;
}

static int teardown(void **state)
{
	p11->C_Finalize(NULL);
	h_env_free(&env);
	return 0;
}

static CK_MECHANISM gcm = {CKM_AES_GCM, NULL, 0};

static void test_matches_single_part(void **state)
{
	uint8_t iv[12] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12}, tag[16];
	const char *aad = "header", *msg = "the quick brown fox jumps";
	size_t ml = strlen(msg);
	uint8_t ct[64], ref[64 + 16], pt[64];
	CK_GCM_MESSAGE_PARAMS p = {iv, 12, 0, CKG_NO_GENERATE, tag, 128};
	assert_ok(p11->C_MessageEncryptInit(S, &gcm, K));
	CK_ULONG cl = 0;
	assert_ok(p11->C_EncryptMessage(S, &p, sizeof(p), (CK_BYTE_PTR)aad, 6,
					(CK_BYTE_PTR)msg, ml, NULL, &cl));
	assert_int_equal(cl, ml);
	cl = sizeof(ct);
	assert_ok(p11->C_EncryptMessage(S, &p, sizeof(p), (CK_BYTE_PTR)aad, 6,
					(CK_BYTE_PTR)msg, ml, ct, &cl));
	assert_ok(p11->C_MessageEncryptFinal(S));
	assert_rv(p11->C_MessageEncryptFinal(S), CKR_OPERATION_NOT_INITIALIZED);
	/* Same key, IV and AAD through C_Encrypt: same bytes. */
	CK_GCM_PARAMS gp = {iv, 12, 96, (CK_BYTE_PTR)aad, 6, 128};
	CK_MECHANISM m = {CKM_AES_GCM, &gp, sizeof(gp)};
	CK_ULONG rl = sizeof(ref);
	assert_ok(p11->C_EncryptInit(S, &m, K));
	assert_ok(p11->C_Encrypt(S, (CK_BYTE_PTR)msg, ml, ref, &rl));
	assert_int_equal(rl, ml + 16);
	assert_memory_equal(ct, ref, ml);
	assert_memory_equal(tag, ref + ml, 16);
	/* Decrypt, then a forged tag. */
	assert_ok(p11->C_MessageDecryptInit(S, &gcm, K));
	CK_ULONG pl = sizeof(pt);
	assert_ok(p11->C_DecryptMessage(S, &p, sizeof(p), (CK_BYTE_PTR)aad, 6, ct, ml,
					pt, &pl));
	assert_memory_equal(pt, msg, ml);
	tag[0] ^= 1;
	pl = sizeof(pt);
	assert_rv(p11->C_DecryptMessage(S, &p, sizeof(p), (CK_BYTE_PTR)aad, 6, ct, ml,
					pt, &pl),
		  CKR_ENCRYPTED_DATA_INVALID);
	/* Decryption never generates an IV. */
	p.ivGenerator = CKG_GENERATE_RANDOM;
	assert_rv(p11->C_DecryptMessage(S, &p, sizeof(p), NULL, 0, ct, ml, pt, &pl),
		  CKR_MECHANISM_PARAM_INVALID);
	assert_rv(p11->C_DecryptMessage(S, &p, 3, NULL, 0, ct, ml, pt, &pl),
		  CKR_MECHANISM_PARAM_INVALID);
	assert_ok(p11->C_MessageDecryptFinal(S));
}

static void test_begin_next(void **state)
{
	uint8_t iv[12] = {9}, tag[16], tag2[16], ct[100], ct2[100], pt[100];
	uint8_t msg[100];
	memset(msg, 'm', sizeof(msg));
	CK_GCM_MESSAGE_PARAMS p = {iv, 12, 0, CKG_NO_GENERATE, tag, 128};
	assert_ok(p11->C_MessageEncryptInit(S, &gcm, K));
	CK_ULONG a = sizeof(ct), b = sizeof(ct) - 33;
	assert_ok(p11->C_EncryptMessageBegin(S, &p, sizeof(p), (CK_BYTE_PTR) "A", 1));
	assert_ok(p11->C_EncryptMessageNext(S, &p, sizeof(p), msg, 33, ct, &a, 0));
	assert_ok(p11->C_EncryptMessageNext(S, &p, sizeof(p), msg + 33, 67, ct + a, &b,
					    CKF_END_OF_MESSAGE));
	assert_int_equal(a + b, 100);
	CK_GCM_MESSAGE_PARAMS p2 = {iv, 12, 0, CKG_NO_GENERATE, tag2, 128};
	CK_ULONG l = sizeof(ct2);
	assert_ok(p11->C_EncryptMessage(S, &p2, sizeof(p2), (CK_BYTE_PTR) "A", 1, msg, 100,
					ct2, &l));
	assert_memory_equal(ct, ct2, 100);
	assert_memory_equal(tag, tag2, 16);
	assert_ok(p11->C_MessageEncryptFinal(S));
	assert_ok(p11->C_MessageDecryptInit(S, &gcm, K));
	a = sizeof(pt);
	assert_ok(p11->C_DecryptMessageBegin(S, &p, sizeof(p), (CK_BYTE_PTR) "A", 1));
	assert_ok(p11->C_DecryptMessageNext(S, &p, sizeof(p), ct, 100, pt, &a,
					    CKF_END_OF_MESSAGE));
	assert_memory_equal(pt, msg, 100);
	assert_ok(p11->C_MessageDecryptFinal(S));
}

static void test_random_ivs(void **state)
{
	enum { N = 500 };
	static uint8_t ivs[N][12];
	uint8_t tag[16], ct[8];
	assert_ok(p11->C_MessageEncryptInit(S, &gcm, K));
	for (int i = 0; i < N; i++) {
		memcpy(ivs[i], "\xAA\xBB\xCC\xDD", 4); /* fixed field */
		CK_GCM_MESSAGE_PARAMS p = {ivs[i], 12, 32, CKG_GENERATE_RANDOM, tag, 128};
		CK_ULONG l = sizeof(ct);
		assert_ok(p11->C_EncryptMessage(S, &p, sizeof(p), NULL, 0,
						(CK_BYTE_PTR) "12345678", 8, ct, &l));
		assert_memory_equal(ivs[i], "\xAA\xBB\xCC\xDD", 4);
		for (int j = 0; j < i; j++)
			assert_memory_not_equal(ivs[i], ivs[j], 12);
	}
	/* Too few free bits for a random IV. */
	uint8_t iv[12] = {0};
	CK_GCM_MESSAGE_PARAMS p = {iv, 12, 64, CKG_GENERATE_RANDOM, tag, 128};
	CK_ULONG l = sizeof(ct);
	assert_rv(p11->C_EncryptMessage(S, &p, sizeof(p), NULL, 0, (CK_BYTE_PTR) "x", 1,
					ct, &l),
		  CKR_MECHANISM_PARAM_INVALID);
	assert_ok(p11->C_MessageEncryptFinal(S));
}

static uint64_t counter_of(const uint8_t iv[12])
{
	uint64_t c = 0;
	for (int i = 4; i < 12; i++)
		c = c << 8 | iv[i];
	return c;
}

/* Encrypt n messages with counter IVs; write the counters to fd. */
static void counter_run(CK_SESSION_HANDLE s, int n, uint64_t *out)
{
	uint8_t tag[16], ct[4];
	assert_ok(p11->C_MessageEncryptInit(s, &gcm, K));
	for (int i = 0; i < n; i++) {
		uint8_t iv[12] = {0x11, 0x22, 0x33, 0x44};
		CK_GCM_MESSAGE_PARAMS p = {iv, 12, 32, CKG_GENERATE_COUNTER, tag, 128};
		CK_ULONG l = sizeof(ct);
		assert_ok(p11->C_EncryptMessage(s, &p, sizeof(p), NULL, 0,
						(CK_BYTE_PTR) "abcd", 4, ct, &l));
		assert_memory_equal(iv, "\x11\x22\x33\x44", 4);
		out[i] = counter_of(iv);
	}
	assert_ok(p11->C_MessageEncryptFinal(s));
}

static void test_counter_ivs_never_repeat(void **state)
{
	uint64_t a[100], b[100], c[100];
	counter_run(S, 100, a);
	for (int i = 1; i < 100; i++)
		assert_int_equal(a[i], a[i - 1] + 1); /* a counter, in order */
	/* After a restart the counter continues past everything handed out. */
	assert_ok(p11->C_Finalize(NULL));
	assert_ok(h_initialize(&env));
	S = h_user_session(&env);
	CK_ATTRIBUTE q = {CKA_LABEL, "aead-key", 8};
	CK_ULONG n;
	assert_ok(p11->C_FindObjectsInit(S, &q, 1));
	assert_ok(p11->C_FindObjects(S, &K, 1, &n));
	assert_ok(p11->C_FindObjectsFinal(S));
	counter_run(S, 100, b);
	assert_true(b[0] > a[99]);
	/* Another process reserves its own range. */
	int fds[2];
	assert_int_equal(pipe(fds), 0);
	pid_t pid = fork();
	if (pid == 0) {
		close(fds[0]);
		h_initialize_child(&env);
		CK_SESSION_HANDLE cs = h_user_session(&env);
		p11->C_FindObjectsInit(cs, &q, 1);
		p11->C_FindObjects(cs, &K, 1, &n);
		p11->C_FindObjectsFinal(cs);
		uint64_t v[100];
		counter_run(cs, 100, v);
		if (write(fds[1], v, sizeof(v)) != sizeof(v))
			_exit(1);
		_exit(0);
	}
	close(fds[1]);
	assert_int_equal(read(fds[0], c, sizeof(c)), sizeof(c));
	int st;
	waitpid(pid, &st, 0);
	assert_int_equal(WEXITSTATUS(st), 0);
	for (int i = 0; i < 100; i++)
		for (int j = 0; j < 100; j++) {
			assert_int_not_equal(c[i], a[j]);
			assert_int_not_equal(c[i], b[j]);
		}
}

/* One key value imported into two tokens of one process, and into one
 * token again after C_InitToken: their counter IVs never meet (each
 * key's counter begins at a random 63-bit start). */
static void counters_of_import(CK_SESSION_HANDLE s, const uint8_t *key, uint64_t *out)
{
	K = h_import_aes(s, key, 32);
	counter_run(s, 50, out);
}

static void no_common(const uint64_t *a, const uint64_t *b)
{
	for (int i = 0; i < 50; i++)
		for (int j = 0; j < 50; j++)
			assert_int_not_equal(a[i], b[j]);
}

static void test_counter_ivs_differ_across_tokens(void **state)
{
	(void)state;
	/* A second slot, "two", beside the harness's "test". */
	char store2[320], cfg[2048];
	h_env_path(&env, "two.db", store2, sizeof(store2));
	int n = snprintf(cfg, sizeof(cfg),
			 "{ \"providers\": [\n"
			 "  {\"name\": \"test\", \"type\": \"local\", \"key_file\": \"%s\",\n"
			 "   \"store\": \"%s\", \"pin_kdf_cost\": 12},\n"
			 "  {\"name\": \"two\", \"type\": \"local\", \"key_file\": \"%s\",\n"
			 "   \"store\": \"%s\", \"slot_id\": 77, \"pin_kdf_cost\": 12} ] }\n",
			 env.key_file, env.store, env.key_file, store2);
	assert_ok(p11->C_Finalize(NULL));
	h_write_file(env.config, cfg, (size_t)n);
	assert_ok(h_initialize(&env));
	h_env two = env;
	two.slot = 77;
	h_init_token(&two);
	uint8_t key[32];
	for (int i = 0; i < 32; i++)
		key[i] = (uint8_t)(7 * i + 1);
	uint64_t a[50], b[50], c[50];
	counters_of_import(h_user_session(&env), key, a);
	counters_of_import(h_user_session(&two), key, b);
	no_common(a, b);
	/* The first token again, re-initialized: a new counter, elsewhere. */
	assert_ok(p11->C_CloseAllSessions(env.slot));
	h_init_token(&env);
	counters_of_import(h_user_session(&env), key, c);
	no_common(a, c);
	no_common(b, c);
}

int main(void)
{
	h_load();
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_matches_single_part, setup, teardown),
		cmocka_unit_test_setup_teardown(test_begin_next, setup, teardown),
		cmocka_unit_test_setup_teardown(test_random_ivs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_counter_ivs_never_repeat, setup, teardown),
		cmocka_unit_test_setup_teardown(test_counter_ivs_differ_across_tokens, setup,
						teardown),
	};
	return cmocka_run_group_tests_name("aead", tests, NULL, NULL);
}
