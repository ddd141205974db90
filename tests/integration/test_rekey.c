/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Rekey, through the real p11kms binary and the exported API: a token with
 * 10,000 objects is rekeyed while `p11kms rekey` is killed with SIGKILL at
 * 20 random moments; after every kill a new process logs in and finds
 * every object with its value intact; a last, uninterrupted rekey
 * finishes, the token key is new, and a consumer that stayed logged in
 * throughout keeps reading and writing (it reloads the key on its own).
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

#define N 10000
#define KILLS 20

static h_env env;

static void value_of(int i, char *out)
{
	snprintf(out, 32, "value-%05d-%08x", i, (unsigned)(i * 2654435761u));
}

static void make_objects(CK_SESSION_HANDLE s)
{
	CK_OBJECT_CLASS c = CKO_DATA;
	CK_BBOOL yes = CK_TRUE;
	for (int i = 0; i < N; i++) {
		char label[16], value[32];
		snprintf(label, sizeof(label), "o%05d", i);
		value_of(i, value);
		CK_ATTRIBUTE t[] = {{CKA_CLASS, &c, sizeof(c)}, {CKA_TOKEN, &yes, 1},
				    {CKA_PRIVATE, &yes, 1}, {CKA_LABEL, label, strlen(label)},
				    {CKA_VALUE, value, strlen(value)}};
		CK_OBJECT_HANDLE h;
		assert_ok(p11->C_CreateObject(s, t, 5, &h));
	}
}

/* Every object found, each value as written. */
static void check_all(CK_SESSION_HANDLE s, CK_ULONG expect)
{
	static CK_OBJECT_HANDLE hs[2 * N];
	CK_OBJECT_CLASS c = CKO_DATA;
	CK_BBOOL yes = CK_TRUE;
	CK_ATTRIBUTE q[] = {{CKA_CLASS, &c, sizeof(c)}, {CKA_PRIVATE, &yes, 1}};
	CK_ULONG n = 0;
	assert_ok(p11->C_FindObjectsInit(s, q, 2));
	assert_ok(p11->C_FindObjects(s, hs, 2 * N, &n));
	assert_ok(p11->C_FindObjectsFinal(s));
	assert_int_equal(n, expect);
	static bool seen[N];
	memset(seen, 0, sizeof(seen));
	for (CK_ULONG k = 0; k < n; k++) {
		char label[16] = {0}, value[32] = {0}, want[32];
		CK_ATTRIBUTE a[] = {{CKA_LABEL, label, sizeof(label) - 1},
				    {CKA_VALUE, value, sizeof(value) - 1}};
		assert_ok(p11->C_GetAttributeValue(s, hs[k], a, 2));
		if (label[0] != 'o')
			continue; /* written during the last rekey: checked by the caller */
		int i = atoi(label + 1);
		assert_true(i >= 0 && i < N && !seen[i]);
		seen[i] = true;
		value_of(i, want);
		assert_string_equal(value, want);
	}
}

static pid_t start_rekey(void)
{
	pid_t pid = fork();
	if (pid == 0) {
		int null = open("/dev/null", O_WRONLY);
		dup2(null, 1);
		dup2(null, 2);
		setenv("P11KMS_TEST_PIN", USER_PIN, 1);
		execl(getenv("P11KMS_TOOL"), "p11kms", "rekey", "--config", env.config, "--slot",
		      "test", "--pin-env", "P11KMS_TEST_PIN", (char *)NULL);
		_exit(127);
	}
	return pid;
}

static double now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec * 1e3 + ts.tv_nsec / 1e6;
}

static void test_rekey_survives_kills(void **state)
{
	(void)state;
	if (!getenv("P11KMS_TOOL"))
		skip();
	/* The store on tmpfs: 10,000 committed creates stay quick. */
	char cfg[1024];
	h_env_new(&env, "required", "\"pin_kdf_cost\": 12");
	snprintf(env.store, sizeof(env.store), "/dev/shm/p11kms-rekey-%d.db", (int)getpid());
	int n = snprintf(cfg, sizeof(cfg),
			 "{ \"log\": {\"level\": \"info\", \"destination\": \"%s\"},\n"
			 "  \"providers\": [ {\"name\": \"test\", \"type\": \"local\",\n"
			 "   \"key_file\": \"%s\", \"store\": \"%s\", \"pin_kdf_cost\": 12} ] }\n",
			 env.log, env.key_file, env.store);
	h_write_file(env.config, cfg, (size_t)n);
	assert_ok(h_initialize(&env));
	h_init_token(&env);
	CK_SESSION_HANDLE s = h_user_session(&env);
	make_objects(s);
	/* How long one whole rekey takes here, to kill within it. */
	double t0 = now_ms();
	pid_t pid = start_rekey();
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	double whole = now_ms() - t0;
	fprintf(stderr, "one rekey of %d records: %.0f ms\n", N, whole);
	srand((unsigned)time(NULL));
	int killed_early = 0;
	for (int k = 0; k < KILLS; k++) {
		pid = start_rekey();
		/* Within the first half of a whole rekey's time: a rekey that
		 * runs faster than the measured one (the machine's load falls)
		 * is still killed while running. */
		useconds_t at = (useconds_t)((double)rand() / RAND_MAX * whole * 500.0);
		usleep(at);
		kill(pid, SIGKILL);
		assert_int_equal(waitpid(pid, &st, 0), pid);
		if (WIFSIGNALED(st))
			killed_early++; /* killed before it finished */
		else
			assert_int_equal(WEXITSTATUS(st), 0);
		/* The session that stayed logged in reads and writes on. */
		check_all(s, N);
		/* A new process logs in and finds everything. */
		pid_t chk = fork();
		if (chk == 0) {
			/* A forked child starts afresh (the module forgot its state). */
			if (h_initialize_child(&env) != CKR_OK)
				_exit(2);
			CK_SESSION_HANDLE cs;
			if (p11->C_OpenSession(env.slot, CKF_SERIAL_SESSION, NULL, NULL, &cs) ||
			    p11->C_Login(cs, CKU_USER, (CK_UTF8CHAR_PTR)USER_PIN, 4))
				_exit(3);
			check_all(cs, N);
			_exit(0);
		}
		assert_int_equal(waitpid(chk, &st, 0), chk);
		assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
	fprintf(stderr, "%d of %d rekeys killed while running\n", killed_early, KILLS);
	/* Most kills must land inside a rekey, or the test proves little. */
	assert_true(killed_early >= KILLS / 2);
	assert_true(h_log_contains(&env, "resuming a rekey"));
	/* A last rekey finishes what the killed ones began, while this
	 * process writes new objects: each lands under a key that stays. */
	pid = start_rekey();
	int live = 0;
	CK_OBJECT_CLASS dc = CKO_DATA;
	CK_BBOOL yes = CK_TRUE;
	pid_t r;
	while ((r = waitpid(pid, &st, WNOHANG)) == 0 && live < N) {
		char label[16];
		snprintf(label, sizeof(label), "live%d", live++);
		CK_ATTRIBUTE t[] = {{CKA_CLASS, &dc, sizeof(dc)}, {CKA_TOKEN, &yes, 1},
				    {CKA_PRIVATE, &yes, 1}, {CKA_LABEL, label, strlen(label)},
				    {CKA_VALUE, label, strlen(label)}};
		CK_OBJECT_HANDLE lh;
		assert_ok(p11->C_CreateObject(s, t, 5, &lh));
	}
	if (r == 0)
		assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	fprintf(stderr, "%d objects written during the last rekey\n", live);
	/* A new object written now opens in another process. */
	CK_OBJECT_HANDLE h = h_aes_key(s, 16, CK_TRUE, "after");
	(void)h;
	assert_ok(p11->C_Finalize(NULL));
	assert_ok(h_initialize(&env));
	s = h_user_session(&env);
	for (int i = 0; i < live; i++) {
		char label[16], value[16] = {0};
		snprintf(label, sizeof(label), "live%d", i);
		CK_ATTRIBUTE v = {CKA_VALUE, value, sizeof(value) - 1};
		assert_ok(p11->C_GetAttributeValue(s, h_find_label(s, label), &v, 1));
		assert_string_equal(value, label);
	}
	check_all(s, N + (CK_ULONG)live);
	uint8_t ct[32];
	CK_ULONG cl = sizeof(ct);
	assert_ok(h_encrypt_probe(s, h_find_label(s, "after"), ct, &cl));
	assert_ok(p11->C_Finalize(NULL));
	unlink(env.store);
	char side[400];
	snprintf(side, sizeof(side), "%s-wal", env.store);
	unlink(side);
	snprintf(side, sizeof(side), "%s-shm", env.store);
	unlink(side);
	h_env_free(&env);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rekey_survives_kills),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
