/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A certificate the module cannot verify is its own failure class, through
 * the exported API: a token sealed under the emulator's AWS key, opened
 * again with the configuration's ca_file forgotten, or with the endpoint
 * presenting a certificate from a CA nobody trusts. C_Login fails with
 * CKR_DEVICE_ERROR after one TLS handshake (no retry, no backoff),
 * C_GetSessionInfo's ulDeviceError says P11KMS_DEVERR_TLS (not
 * UNREACHABLE), and the log says the certificate could not be verified and
 * to check ca_file. With the trust fixed, the same login works.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "emu.h"
#include "harness.h"

#define aws(field) emu_str("aws", field)
#define emuctl(...) emu_ctl("emuctl.py", __VA_ARGS__)

static h_env env;

/* The failed handshakes the emulator saw. Its side of a handshake ends in
 * its own thread, maybe after the module gave up: wait for the first. */
static long handshakes_failed(void)
{
	long n = 0;
	for (int i = 0; i < 50 && (n = emu_ctl_long("emuctl.py", "count aws handshake")) < 1; i++)
		usleep(100000);
	return n;
}

static void write_config(bool with_ca)
{
	char ca[400] = "";
	if (with_ca)
		snprintf(ca, sizeof(ca), "\"ca_file\": \"%s\",",
			 json_string_value(json_object_get(emu_info, "ca_bundle")));
	FILE *f = fopen(env.config, "w");
	assert_non_null(f);
	fprintf(f,
		"{ \"log\": {\"level\": \"debug\", \"destination\": \"%s\"},\n"
		"  \"providers\": [ { \"name\": \"test\", \"type\": \"aws\",\n"
		"    \"region\": \"%s\", \"endpoint\": \"%s\", %s\n"
		"    \"store\": \"%s\", \"seal_with\": \"%s\", \"timeout_ms\": 3000 } ] }\n",
		env.log, aws("region"), aws("endpoint_url"), ca, env.store, aws("alias"));
	fclose(f);
}

static int group_setup(void **state)
{
	(void)state;
	h_load();
	if (emu_start("tls") != 0)
		return -1;
	setenv("AWS_ACCESS_KEY_ID", aws("access_key_id"), 1);
	setenv("AWS_SECRET_ACCESS_KEY", aws("secret_access_key"), 1);
	unsetenv("AWS_SESSION_TOKEN");
	unsetenv("AWS_PROFILE");
	unsetenv("AWS_ENDPOINT_URL_KMS");
	unsetenv("AWS_ENDPOINT_URL");
	unsetenv("AWS_CA_BUNDLE");
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	return emu_stop();
}

/* A token sealed with the right CA; then finalized. */
static int setup(void **state)
{
	(void)state;
	h_env_new(&env, "required", "");
	write_config(true);
	emuctl("clear-faults");
	assert_ok(h_initialize(&env));
	h_init_token(&env);
	assert_ok(p11->C_Finalize(NULL));
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	p11->C_Finalize(NULL);
	emuctl("clear-faults");
	h_env_free(&env);
	return 0;
}

/* C_Login fails as a TLS failure, after exactly one handshake. */
static void login_fails_as_tls(CK_SESSION_HANDLE s)
{
	emuctl("reset-counters");
	assert_rv(p11->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)USER_PIN, 4), CKR_DEVICE_ERROR);
	CK_ULONG dev = h_deverr(s);
	if (dev != P11KMS_DEVERR_TLS) {
		h_dump_log(&env);
		fail_msg("ulDeviceError %lu, want P11KMS_DEVERR_TLS (%lu)", (unsigned long)dev,
			 (unsigned long)P11KMS_DEVERR_TLS);
	}
	assert_int_equal(handshakes_failed(), 1);
	assert_int_equal(emu_ctl_long("emuctl.py", "count aws Decrypt"), 0);
	assert_true(h_log_contains(&env, "certificate could not be verified"));
	assert_true(h_log_contains(&env, "check ca_file"));
	assert_false(h_log_contains(&env, "retrying"));
	assert_false(h_log_contains(&env, "gave up after"));
}

static void test_forgotten_ca_file(void **state)
{
	(void)state;
	write_config(false);
	assert_ok(h_initialize(&env));
	CK_SESSION_HANDLE s;
	assert_ok(p11->C_OpenSession(env.slot, CKF_SERIAL_SESSION, NULL, NULL, &s));
	login_fails_as_tls(s);
	/* Asked again: again one handshake, still a TLS failure. */
	login_fails_as_tls(s);
	assert_ok(p11->C_Finalize(NULL));
	/* ca_file back: the same token opens. */
	write_config(true);
	assert_ok(h_initialize(&env));
	assert_ok(p11->C_OpenSession(env.slot, CKF_SERIAL_SESSION, NULL, NULL, &s));
	assert_ok(p11->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)USER_PIN, 4));
}

/* The endpoint presents a certificate from a CA that is not ca_file's
 * (the emulator's handshake fault): the same. */
static void test_untrusted_certificate(void **state)
{
	(void)state;
	assert_ok(h_initialize(&env));
	CK_SESSION_HANDLE s;
	assert_ok(p11->C_OpenSession(env.slot, CKF_SERIAL_SESSION, NULL, NULL, &s));
	/* Three bad handshakes on offer: a retry would take a second one. */
	emuctl("fault '{\"service\": \"aws\", \"op\": \"handshake\", \"kind\": \"tls\", "
	       "\"count\": 3}'");
	login_fails_as_tls(s);
	emuctl("clear-faults");
	assert_ok(p11->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)USER_PIN, 4));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_forgotten_ca_file, setup, teardown),
		cmocka_unit_test_setup_teardown(test_untrusted_certificate, setup, teardown),
	};
	return cmocka_run_group_tests_name("tls", tests, group_setup, group_teardown);
}
