/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Revalidation off the caller's path (docs/REVALIDATION.md), through the
 * exported API against the KMS emulator (AWS, DescribeKey is the check):
 *
 * - a logged-in token keeps serving local C_Encrypt while the check hangs
 *   in the KMS: the calls complete after the emulator took the delayed
 *   DescribeKey and before it answered it (ordering from the emulator's
 *   request log, which has a request once it is answered; not wall time);
 * - the thread revokes an idle token, no PKCS #11 call needed, and lifts
 *   the revocation when the key is back;
 * - with CKF_LIBRARY_CANT_CREATE_OS_THREADS no thread exists and the caller
 *   runs a due check itself: its call returns after the answer;
 * - C_Finalize with a check in flight returns and stops the thread, and a
 *   new C_Initialize starts a new one.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "emu.h"
#include "harness.h"
#include "proc.h"

#define aws(field) emu_str("aws", field)
#define emuctl(...) emu_ctl("emuctl.py", __VA_ARGS__)

static h_env env;
static CK_SESSION_HANDLE S;

static int start_emulator(void **state)
{
	h_load();
	if (emu_start("reval") != 0)
		return -1;
	setenv("AWS_ACCESS_KEY_ID", aws("access_key_id"), 1);
	setenv("AWS_SECRET_ACCESS_KEY", aws("secret_access_key"), 1);
	unsetenv("AWS_SESSION_TOKEN");
	unsetenv("AWS_PROFILE");
	unsetenv("AWS_ENDPOINT_URL_KMS");
	return 0;
}

static int stop_emulator(void **state)
{
	return emu_stop();
}

/* An AWS token checked every second; the client's default timeouts (10 s
 * a try, three tries), so a 15 s delay outlasts a try. */
static void write_config(void)
{
	h_env_new(&env, "required", "");
	FILE *f = fopen(env.config, "w");
	assert_non_null(f);
	fprintf(f,
		"{ \"log\": {\"level\": \"trace\", \"destination\": \"%s\"},\n"
		"  \"providers\": [ { \"name\": \"test\", \"type\": \"aws\",\n"
		"    \"region\": \"%s\", \"endpoint\": \"%s\", \"ca_file\": \"%s\",\n"
		"    \"store\": \"%s\", \"seal_with\": \"%s\",\n"
		"    \"revalidate_seconds\": 1, \"offline_grace_seconds\": 3600 } ] }\n",
		env.log, aws("region"), aws("endpoint_url"),
		json_string_value(json_object_get(emu_info, "ca_bundle")), env.store,
		aws("alias"));
	fclose(f);
	emuctl("clear-faults");
	emuctl("enable aws %s", aws("alias"));
}

static int setup(void **state)
{
	write_config();
	assert_ok(h_initialize(&env));
	h_init_token(&env);
	S = h_user_session(&env);
	return 0;
}

static int teardown(void **state)
{
	emuctl("clear-faults");
	p11->C_Finalize(NULL);
	h_env_free(&env);
	return 0;
}

/* Threads of this process named like the module's revalidation thread. */
static int reval_threads(void)
{
	return proc_threads_named("p11kms-reval");
}

static long log_seq(void)
{
	return emu_ctl_long("emuctl.py", "log-seq");
}

/* Delayed DescribeKey requests the emulator answered after log entry since. */
static long answered(long since)
{
	return emu_ctl_long("emuctl.py", "answered %ld aws DescribeKey latency", since);
}

static long faults_pending(void)
{
	return emu_ctl_long("emuctl.py", "faults-pending");
}

/* One local C_EncryptInit + C_Encrypt of 64 bytes (AES-CBC-PAD). */
static CK_RV encrypt64(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE k)
{
	uint8_t iv[16] = {0}, in[64] = {1}, out[96];
	CK_ULONG ol = sizeof(out);
	CK_MECHANISM m = {CKM_AES_CBC_PAD, iv, sizeof(iv)};
	CK_RV rv = p11->C_EncryptInit(s, &m, k);
	return rv != CKR_OK ? rv : p11->C_Encrypt(s, in, sizeof(in), out, &ol);
}

/* Delay every DescribeKey by delay_ms, the first through a rule of its own
 * (the emulator drops a count-1 rule when a request takes it, so its
 * going says that request has arrived); then call C_Encrypt until a check
 * has sent that first request (at most about 20 s). */
static void delay_checks(CK_OBJECT_HANDLE k, long delay_ms)
{
	for (int rule = 0; rule < 2; rule++)
		emuctl("fault '{\"service\": \"aws\", \"op\": \"DescribeKey\", "
		       "\"kind\": \"latency\", \"delay_ms\": %ld, \"count\": %d}'",
		       delay_ms, rule == 0 ? 1 : 0);
	for (int i = 0; i < 100 && faults_pending() != 1; i++) {
		assert_ok(encrypt64(S, k));
		usleep(100000);
	}
	assert_int_equal(faults_pending(), 1);
}

static void test_encrypt_while_check_hangs(void **state)
{
	/* A token key made in the token: its secret needs the token key. */
	CK_OBJECT_HANDLE k = h_aes_key(S, 32, CK_TRUE, "db-master");
	assert_ok(encrypt64(S, k));
	assert_int_equal(reval_threads(), 1);
	long since = log_seq();
	delay_checks(k, 15000);
	/* The emulator holds that DescribeKey (and any retry) for 15 s; the
	 * client gives a try 10 s. Had a call of ours run the check, it would
	 * have returned only after its three tries, by when the first was
	 * answered. It was not: the check is in flight. Meanwhile: */
	assert_int_equal(answered(since), 0);
	int served = 0;
	for (int i = 0; i < 200; i++)
		if (encrypt64(S, k) == CKR_OK)
			served++;
	CK_SESSION_INFO si;
	assert_ok(p11->C_GetSessionInfo(S, &si));
	/* ... and only now look at the log again: still no delayed request
	 * answered, so every one of those calls completed while the check
	 * was in flight. */
	long done = answered(since);
	emuctl("clear-faults"); /* the next try is answered at once */
	print_message("%d local C_Encrypt served while the check was in flight "
		      "(delayed DescribeKey answered: %ld)\n",
		      served, done);
	assert_int_equal(done, 0);
	assert_int_equal(served, 200);
	assert_int_equal(si.state, CKS_RW_USER_FUNCTIONS);
	assert_true(h_log_contains(&env, "revalidating the sealing key"));
	/* C_Finalize stops the thread with the check in flight (it waits
	 * for the try's own timeout), and a new initialization works and
	 * starts a new thread at first need. */
	assert_ok(p11->C_Finalize(NULL));
	assert_int_equal(reval_threads(), 0);
	assert_true(h_log_contains(&env, "C_Finalize waits for a KMS check in flight"));
	assert_ok(h_initialize(&env));
	assert_int_equal(reval_threads(), 0);
	S = h_user_session(&env);
	assert_int_equal(reval_threads(), 0);
	k = h_find_label(S, "db-master");
	assert_ok(encrypt64(S, k));
	assert_int_equal(reval_threads(), 1);
	/* The emulator still holds the abandoned delayed request; wait until
	 * it is answered, so it is not counted by a later test's log. */
	for (int i = 0; i < 200 && answered(since) == 0; i++)
		usleep(100000);
	assert_int_equal(answered(since), 1);
}

/* Wait (bounded) for s in the module's log, making no PKCS #11 call. */
static bool wait_log(const char *s)
{
	for (int i = 0; i < 300 && !h_log_contains(&env, s); i++)
		usleep(100000);
	return h_log_contains(&env, s);
}

static void test_idle_token_revoked(void **state)
{
	CK_OBJECT_HANDLE k = h_aes_key(S, 32, CK_TRUE, "idle");
	assert_ok(encrypt64(S, k));
	emuctl("disable aws %s", aws("alias"));
	/* No call is made: the thread alone wipes the token key. */
	assert_true(wait_log("are wiped until the key is back"));
	assert_rv(encrypt64(S, k), CKR_DEVICE_ERROR);
	assert_int_equal(h_deverr(S), P11KMS_DEVERR_KEY_DISABLED);
	/* The revoked token is still checked; the key back lifts it. */
	emuctl("enable aws %s", aws("alias"));
	assert_true(wait_log("is usable again"));
	assert_ok(p11->C_Login(S, CKU_USER, (CK_UTF8CHAR_PTR)USER_PIN, 4));
	assert_ok(encrypt64(S, h_find_label(S, "idle")));
}

static int setup_no_threads(void **state)
{
	write_config();
	CK_C_INITIALIZE_ARGS a = {0};
	a.flags = CKF_OS_LOCKING_OK | CKF_LIBRARY_CANT_CREATE_OS_THREADS;
	a.pReserved = env.init_str;
	assert_ok(p11->C_Initialize(&a));
	h_init_token(&env);
	S = h_user_session(&env);
	return 0;
}

/* The documented fallback: the call that finds a check due runs it, so
 * by the time that call returns the emulator has answered it. */
static void test_no_threads_caller_checks(void **state)
{
	CK_OBJECT_HANDLE k = h_aes_key(S, 32, CK_TRUE, "k");
	long since = log_seq();
	emuctl("fault '{\"service\": \"aws\", \"op\": \"DescribeKey\", \"kind\": \"latency\", "
	       "\"delay_ms\": 1500, \"count\": 1}'");
	int calls = 0;
	while (calls < 100 && faults_pending() != 0) {
		assert_ok(encrypt64(S, k));
		calls++;
		/* Had a call taken the fault, it returned after the answer. */
		if (faults_pending() == 0)
			break;
		usleep(100000);
	}
	assert_int_equal(faults_pending(), 0);
	assert_int_equal(answered(since), 1);
	assert_int_equal(reval_threads(), 0);
	assert_true(h_log_contains(&env, "checked in the callers' threads"));
}

int main(void)
{
	if (access("/usr/bin/python3", X_OK) != 0) {
		printf("1..0 # SKIP /usr/bin/python3 is needed for the emulator\n");
		return SKIP_RETURN_CODE;
	}
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_encrypt_while_check_hangs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_idle_token_revoked, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_threads_caller_checks, setup_no_threads,
						teardown),
	};
	return cmocka_run_group_tests_name("reval", tests, start_emulator, stop_emulator);
}
