/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The AWS provider end to end, through the exported API, against the
 * project's KMS emulator over HTTPS (SigV4 verified by botocore's signer
 * on every request): a token sealed under an AWS key survives a restart
 * with one KMS call to unseal; blobs interoperate with boto3 both ways;
 * disabling the key fails operations within the revalidation interval and
 * enabling it brings them back; rotation keeps old blobs working; retries,
 * throttling and an unreachable KMS (grace, then fail closed); and no
 * secret reaches the trace-level log.
 */
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "emu.h"
#include "cloud_suite.h"
#include "harness.h"

#define aws(field) emu_str("aws", field)
#define emuctl(...) emu_ctl("emuctl.py", __VA_ARGS__)

static long emu_count(const char *service, const char *op)
{
	return emu_ctl_long("emuctl.py", "count %s %s", service, op);
}

static h_env env;
static CK_SESSION_HANDLE S;

static int start_emulator(void **state)
{
	h_load();
	if (emu_start("emu") != 0)
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

/* A token on the AWS provider: the emulator's key seals it and shows as a
 * KMS key object. */
static void aws_env(long grace)
{
	h_env_new(&env, "required", "");
	FILE *f = fopen(env.config, "w");
	assert_non_null(f);
	fprintf(f,
		"{ \"log\": {\"level\": \"trace\", \"destination\": \"%s\"},\n"
		"  \"providers\": [ { \"name\": \"test\", \"type\": \"aws\",\n"
		"    \"region\": \"%s\", \"endpoint\": \"%s\", \"ca_file\": \"%s\",\n"
		"    \"store\": \"%s\", \"seal_with\": \"%s\",\n"
		"    \"keys\": [ {\"id\": \"%s\", \"label\": \"aws-key\"} ],\n"
		"    \"revalidate_seconds\": 1, \"offline_grace_seconds\": %ld,\n"
		"    \"timeout_ms\": 1500 } ] }\n",
		env.log, aws("region"), aws("endpoint_url"),
		json_string_value(json_object_get(emu_info, "ca_bundle")), env.store,
		aws("alias"), aws("alias"), grace);
	fclose(f);
	emuctl("clear-faults");
	emuctl("enable aws %s", aws("alias"));
}

static int setup(void **state)
{
	aws_env(3600);
	assert_ok(h_initialize(&env));
	h_init_token(&env);
	S = h_user_session(&env);
	return 0;
}

static int setup_no_grace(void **state)
{
	aws_env(0);
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

static const cloud_e2e AWS_E2E = {&env, &S, "aws", "Encrypt", "Decrypt", "DescribeKey",
				  "\"kind\": \"reset\"", NULL, "aws-key"};

static void test_blobs_interoperate_with_boto3(void **state)
{
	CK_OBJECT_HANDLE kms = h_find_label(S, "aws-key");
	uint8_t key[32], key2[32], out[64];
	for (int i = 0; i < 32; i++) {
		key[i] = (uint8_t)i;
		key2[i] = (uint8_t)(0x80 + i);
	}
	CK_OBJECT_CLASS c = CKO_SECRET_KEY;
	CK_KEY_TYPE kt = CKK_AES;
	CK_BBOOL f = CK_FALSE, t = CK_TRUE;
	CK_ATTRIBUTE imp[] = {{CKA_CLASS, &c, sizeof(c)},   {CKA_KEY_TYPE, &kt, sizeof(kt)},
			      {CKA_VALUE, key, 32},         {CKA_SENSITIVE, &f, 1},
			      {CKA_EXTRACTABLE, &t, 1}};
	CK_OBJECT_HANDLE local;
	assert_ok(p11->C_CreateObject(S, imp, 5, &local));
	CK_P11KMS_KMS_PARAMS ctx = {(CK_BYTE_PTR) "tenant=1", 8};
	CK_MECHANISM m = {CKM_P11KMS_KMS_ENVELOPE, &ctx, sizeof(ctx)};
	uint8_t blob[2048];
	CK_ULONG bl = sizeof(blob);
	assert_ok(p11->C_WrapKey(S, &m, kms, local, blob, &bl));
	/* boto3 opens the module's blob with the same encryption context. */
	char bf[400], of[400], inf[400];
	snprintf(bf, sizeof(bf), "%s/blob.bin", env.dir);
	snprintf(of, sizeof(of), "%s/out.bin", env.dir);
	snprintf(inf, sizeof(inf), "%s/in.bin", env.dir);
	FILE *w = fopen(bf, "wb");
	fwrite(blob, 1, bl, w);
	fclose(w);
	emuctl("boto3-decrypt %s tenant=1 %s", bf, of);
	FILE *r = fopen(of, "rb");
	assert_int_equal(fread(out, 1, sizeof(out), r), 32);
	fclose(r);
	assert_memory_equal(out, key, 32);
	/* And the module opens a blob boto3 made. */
	w = fopen(inf, "wb");
	fwrite(key2, 1, 32, w);
	fclose(w);
	emuctl("boto3-encrypt %s tenant=1 %s", inf, bf);
	r = fopen(bf, "rb");
	bl = fread(blob, 1, sizeof(blob), r);
	fclose(r);
	CK_ATTRIBUTE ut[] = {{CKA_CLASS, &c, sizeof(c)},
			     {CKA_KEY_TYPE, &kt, sizeof(kt)},
			     {CKA_SENSITIVE, &f, 1},
			     {CKA_EXTRACTABLE, &t, 1}};
	CK_OBJECT_HANDLE back;
	assert_ok(p11->C_UnwrapKey(S, &m, kms, blob, bl, ut, 4, &back));
	CK_ATTRIBUTE v = {CKA_VALUE, out, sizeof(out)};
	assert_ok(p11->C_GetAttributeValue(S, back, &v, 1));
	assert_int_equal(v.ulValueLen, 32);
	assert_memory_equal(out, key2, 32);
	/* Another context does not open it: the service says invalid ciphertext. */
	CK_P11KMS_KMS_PARAMS other = {(CK_BYTE_PTR) "tenant=2", 8};
	CK_MECHANISM m2 = {CKM_P11KMS_KMS_ENVELOPE, &other, sizeof(other)};
	assert_rv(p11->C_UnwrapKey(S, &m2, kms, blob, bl, ut, 4, &back),
		  CKR_WRAPPED_KEY_INVALID);
}

/* A blob wrapped here unwraps in another process of the module. */
static void test_unwrap_in_another_process(void **state)
{
	CK_OBJECT_HANDLE kms = h_find_label(S, "aws-key");
	uint8_t key[32];
	for (int i = 0; i < 32; i++)
		key[i] = (uint8_t)(7 * i);
	CK_OBJECT_HANDLE dk = h_import_aes(S, key, 32);
	CK_MECHANISM m = {CKM_P11KMS_KMS_ENVELOPE, NULL, 0};
	uint8_t blob[2048], c1[32], c2[32];
	CK_ULONG bl = sizeof(blob), l1 = sizeof(c1), l2 = sizeof(c2);
	assert_ok(p11->C_WrapKey(S, &m, kms, dk, blob, &bl));
	assert_ok(h_encrypt_probe(S, dk, c1, &l1));
	assert_ok(p11->C_Finalize(NULL));
	int fds[2];
	assert_int_equal(pipe(fds), 0);
	pid_t pid = fork();
	if (pid == 0) {
		close(fds[0]);
		CK_SESSION_HANDLE s;
		if (h_initialize(&env) != CKR_OK ||
		    p11->C_OpenSession(env.slot, CKF_SERIAL_SESSION, NULL, NULL, &s) ||
		    p11->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)USER_PIN, 4))
			_exit(2);
		CK_ATTRIBUTE q = {CKA_LABEL, "aws-key", 7};
		CK_OBJECT_HANDLE k, back;
		CK_ULONG n = 0;
		p11->C_FindObjectsInit(s, &q, 1);
		p11->C_FindObjects(s, &k, 1, &n);
		p11->C_FindObjectsFinal(s);
		CK_OBJECT_CLASS c = CKO_SECRET_KEY;
		CK_KEY_TYPE kt = CKK_AES;
		CK_ATTRIBUTE t[] = {{CKA_CLASS, &c, sizeof(c)}, {CKA_KEY_TYPE, &kt, sizeof(kt)}};
		if (n != 1 || p11->C_UnwrapKey(s, &m, k, blob, bl, t, 2, &back) ||
		    h_encrypt_probe(s, back, c2, &l2) ||
		    write(fds[1], c2, l2) != (ssize_t)l2)
			_exit(3);
		p11->C_Finalize(NULL);
		_exit(0);
	}
	close(fds[1]);
	ssize_t got = read(fds[0], c2, sizeof(c2));
	close(fds[0]);
	int st;
	waitpid(pid, &st, 0);
	assert_int_equal(WEXITSTATUS(st), 0);
	assert_int_equal(got, (ssize_t)l1);
	assert_memory_equal(c1, c2, l1);
	assert_ok(h_initialize(&env));
}

static void test_disable_then_enable(void **state)
{
	CK_OBJECT_HANDLE k = h_aes_key(S, 32, CK_TRUE, "guarded");
	uint8_t ct[32];
	CK_ULONG cl = sizeof(ct);
	assert_ok(h_encrypt_probe(S, k, ct, &cl));
	emuctl("disable aws %s", aws("alias"));
	sleep(2); /* past revalidate_seconds */
	cl = sizeof(ct);
	assert_rv(h_encrypt_probe(S, k, ct, &cl), CKR_DEVICE_ERROR);
	CK_SESSION_INFO si;
	assert_ok(p11->C_GetSessionInfo(S, &si));
	assert_int_equal(si.ulDeviceError, P11KMS_DEVERR_KEY_DISABLED);
	assert_true(h_log_contains(&env, "KMS key disabled"));
	assert_rv(p11->C_Login(S, CKU_USER, (CK_UTF8CHAR_PTR)USER_PIN, 4), CKR_DEVICE_ERROR);
	emuctl("enable aws %s", aws("alias"));
	assert_ok(p11->C_Login(S, CKU_USER, (CK_UTF8CHAR_PTR)USER_PIN, 4));
	k = h_find_label(S, "guarded");
	cl = sizeof(ct);
	assert_ok(h_encrypt_probe(S, k, ct, &cl));
}

static void test_rotation_keeps_old_blobs(void **state)
{
	CK_OBJECT_HANDLE kms = h_find_label(S, "aws-key");
	CK_OBJECT_HANDLE dk = h_aes_key(S, 32, CK_FALSE, "dk");
	CK_MECHANISM m = {CKM_P11KMS_KMS_ENVELOPE, NULL, 0};
	uint8_t b1[2048], b2[2048];
	CK_ULONG l1 = sizeof(b1), l2 = sizeof(b2);
	assert_ok(p11->C_WrapKey(S, &m, kms, dk, b1, &l1));
	emuctl("rotate aws %s", aws("alias"));
	assert_ok(p11->C_WrapKey(S, &m, kms, dk, b2, &l2));
	assert_false(l1 == l2 && memcmp(b1, b2, l1) == 0);
	CK_OBJECT_CLASS c = CKO_SECRET_KEY;
	CK_KEY_TYPE kt = CKK_AES;
	CK_ATTRIBUTE t[] = {{CKA_CLASS, &c, sizeof(c)}, {CKA_KEY_TYPE, &kt, sizeof(kt)}};
	CK_OBJECT_HANDLE a, b;
	assert_ok(p11->C_UnwrapKey(S, &m, kms, b1, l1, t, 2, &a));
	assert_ok(p11->C_UnwrapKey(S, &m, kms, b2, l2, t, 2, &b));
	/* The token's seal (made before the rotation) still opens too. */
	assert_ok(p11->C_Logout(S));
	assert_ok(p11->C_Login(S, CKU_USER, (CK_UTF8CHAR_PTR)USER_PIN, 4));
}

static void test_retries_and_throttling(void **state)
{
	CK_OBJECT_HANDLE kms = h_find_label(S, "aws-key");
	CK_OBJECT_HANDLE dk = h_aes_key(S, 32, CK_FALSE, "dk");
	CK_MECHANISM m = {CKM_P11KMS_KMS_ENVELOPE, NULL, 0};
	uint8_t b[2048];
	CK_ULONG l = sizeof(b);
	emuctl("reset-counters");
	emuctl("fault '{\"service\": \"aws\", \"op\": \"Encrypt\", \"kind\": \"error\", "
	       "\"status\": 503, \"retry_after\": 1, \"count\": 2}'");
	assert_ok(p11->C_WrapKey(S, &m, kms, dk, b, &l));
	assert_int_equal(emu_count("aws", "Encrypt"), 3);
	emuctl("fault '{\"service\": \"aws\", \"op\": \"Encrypt\", \"kind\": \"throttle\", "
	       "\"count\": 1}'");
	l = sizeof(b);
	assert_ok(p11->C_WrapKey(S, &m, kms, dk, b, &l));
	/* A reply slower than timeout_ms is abandoned and the call retried: no
	 * hang, and the retry succeeds. */
	emuctl("reset-counters");
	emuctl("fault '{\"service\": \"aws\", \"op\": \"Encrypt\", \"kind\": \"latency\", "
	       "\"delay_ms\": 4000, \"count\": 1}'");
	l = sizeof(b);
	assert_ok(p11->C_WrapKey(S, &m, kms, dk, b, &l));
	sleep(3); /* the emulator counts the abandoned request when it ends */
	assert_int_equal(emu_count("aws", "Encrypt"), 2);
	/* Beyond the retries: the call fails, with the cause in the log. */
	emuctl("fault '{\"service\": \"aws\", \"op\": \"Encrypt\", \"kind\": \"error\", "
	       "\"status\": 500, \"count\": 5}'");
	l = sizeof(b);
	assert_rv(p11->C_WrapKey(S, &m, kms, dk, b, &l), CKR_DEVICE_ERROR);
	CK_SESSION_INFO si;
	assert_ok(p11->C_GetSessionInfo(S, &si));
	assert_int_equal(si.ulDeviceError, P11KMS_DEVERR_UNREACHABLE);
	assert_true(h_log_contains(&env, "KMSInternalException"));
	emuctl("clear-faults");
}

/* Credentials from a container credentials server (or IMDS) on plain
 * http to loopback, as aws-vault's --ecs-server and Greengrass serve them:
 * the SDKs accept 127.0.0.0/8, localhost and [::1]; the module too. */
static void creds_from_loopback(const char *var, const char *url)
{
	p11->C_Finalize(NULL);
	unsetenv("AWS_ACCESS_KEY_ID");
	unsetenv("AWS_SECRET_ACCESS_KEY");
	setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent", 1);
	setenv("AWS_CONFIG_FILE", "/nonexistent", 1);
	setenv(var, url, 1);
	emuctl("reset-counters");
	assert_ok(h_initialize(&env));
	CK_SESSION_HANDLE s = h_user_session(&env);
	CK_OBJECT_HANDLE k = h_aes_key(s, 32, CK_TRUE, "k");
	uint8_t ct[32];
	CK_ULONG cl = sizeof(ct);
	assert_ok(h_encrypt_probe(s, k, ct, &cl)); /* the unseal ran on these credentials */
	assert_false(h_log_contains(&env, "plain http"));
	assert_false(h_log_contains(&env, aws("container_authorization_token")));
	unsetenv(var);
	unsetenv("AWS_CONTAINER_AUTHORIZATION_TOKEN");
	unsetenv("AWS_SHARED_CREDENTIALS_FILE");
	unsetenv("AWS_CONFIG_FILE");
	setenv("AWS_ACCESS_KEY_ID", aws("access_key_id"), 1);
	setenv("AWS_SECRET_ACCESS_KEY", aws("secret_access_key"), 1);
}

static void test_container_credentials_on_loopback(void **state)
{
	setenv("AWS_CONTAINER_AUTHORIZATION_TOKEN", aws("container_authorization_token"), 1);
	creds_from_loopback("AWS_CONTAINER_CREDENTIALS_FULL_URI",
			    aws("container_credentials_full_uri"));
	assert_true(emu_count("metadata", "EcsCredentials") >= 1);
}

static void test_imds_on_loopback(void **state)
{
	creds_from_loopback("AWS_EC2_METADATA_SERVICE_ENDPOINT", aws("imds_endpoint"));
	assert_true(emu_count("metadata", "ImdsCredentials") >= 1);
}

static void test_no_secret_in_log(void **state)
{
	CK_OBJECT_HANDLE k = h_aes_key(S, 32, CK_TRUE, "k");
	uint8_t ct[32];
	CK_ULONG cl = sizeof(ct);
	assert_ok(h_encrypt_probe(S, k, ct, &cl));
	assert_ok(p11->C_Finalize(NULL));
	assert_true(h_log_contains(&env, "unsealed"));
	assert_false(h_log_contains(&env, aws("secret_access_key")));
	assert_false(h_log_contains(&env, "Credential=")); /* no Authorization header */
	assert_false(h_log_contains(&env, USER_PIN "\n"));
	assert_ok(h_initialize(&env));
}

int main(void)
{
	if (access("/usr/bin/python3", X_OK) != 0) {
		printf("1..0 # SKIP /usr/bin/python3 is needed for the emulator\n");
		return SKIP_RETURN_CODE;
	}
	const struct CMUnitTest tests[] = {
		H_TEST_STATE(cloud_token_survives_restart, setup, teardown, &AWS_E2E),
		cmocka_unit_test_setup_teardown(test_blobs_interoperate_with_boto3, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unwrap_in_another_process, setup, teardown),
		cmocka_unit_test_setup_teardown(test_disable_then_enable, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rotation_keeps_old_blobs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_retries_and_throttling, setup, teardown),
		H_TEST_STATE(cloud_threads_do_not_serialize, setup, teardown, &AWS_E2E),
		H_TEST_STATE(cloud_unreachable_within_grace, setup, teardown, &AWS_E2E),
		H_TEST_STATE(cloud_unreachable_fails_closed, setup_no_grace, teardown, &AWS_E2E),
		cmocka_unit_test_setup_teardown(test_container_credentials_on_loopback, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_imds_on_loopback, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_secret_in_log, setup, teardown),
	};
	return cmocka_run_group_tests_name("aws", tests, start_emulator, stop_emulator);
}
