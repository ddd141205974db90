/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The Azure provider end to end, through the exported API, against the
 * project's KMS emulator over HTTPS (Key Vault, Managed HSM, Entra ID,
 * IMDS and App Service managed identity): a token sealed under the
 * vault's RSA key survives a restart with one unwrapKey to unseal; the
 * same on the Managed HSM AES key; blobs interoperate with the official
 * Azure SDK for Python both ways; disabling the key fails operations
 * within the revalidation interval and enabling it brings them back; a
 * new key version keeps old blobs working; 429/5xx are retried; the
 * bearer challenge is followed; every credential source works; and no
 * secret or token reaches the trace-level log.
 */
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdbool.h>
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

#define az(field) emu_str("azure", field)
#define emuctl(...) emu_ctl("emuctl_azure.py", __VA_ARGS__)

static long emu_count(const char *service, const char *op)
{
	return emu_ctl_long("emuctl_azure.py", "count %s %s", service, op);
}

static h_env env;
static CK_SESSION_HANDLE S;

#define RSA_KEY "p11kms-rsa"
#define AES_KEY "p11kms-aes"

static const char *const az_env_vars[] = {
	"AZURE_TENANT_ID", "AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET",
	"AZURE_CLIENT_CERTIFICATE_PATH", "AZURE_FEDERATED_TOKEN_FILE",
	"AZURE_AUTHORITY_HOST", "AZURE_POD_IDENTITY_AUTHORITY_HOST",
	"IDENTITY_ENDPOINT", "IDENTITY_HEADER",
};

static void clear_az_env(void)
{
	for (size_t i = 0; i < sizeof(az_env_vars) / sizeof(az_env_vars[0]); i++)
		unsetenv(az_env_vars[i]);
}

static int start_emulator(void **state)
{
	h_load();
	clear_az_env();
	if (emu_start("azemu") != 0)
		return -1;
	return 0;
}

static int stop_emulator(void **state)
{
	return emu_stop();
}

typedef enum auth_kind {
	AUTH_SECRET_FILE,
	AUTH_ENV_SECRET,
	AUTH_CERT,
	AUTH_WORKLOAD,
	AUTH_IMDS,
	AUTH_APP_SERVICE,
} auth_kind;

/* A token on the Azure provider: the emulator's vault (RSA) or Managed
 * HSM (AES) key seals it and shows as a KMS key object "az-key". */
static void az_env(bool hsm, auth_kind auth, long grace, const char *extra)
{
	h_env_new(&env, "required", "");
	clear_az_env();
	char creds[1200] = "", secret[400];
	snprintf(secret, sizeof(secret), "%s/client-secret", env.dir);
	switch (auth) {
	case AUTH_SECRET_FILE:
		emuctl("secret-file %s", secret);
		snprintf(creds, sizeof(creds),
			 "\"tenant_id\": \"%s\", \"client_id\": \"%s\", "
			 "\"client_secret_file\": \"%s\", \"authority_host\": \"%s\",",
			 az("tenant_id"), az("client_id"), secret, az("authority_host"));
		break;
	case AUTH_ENV_SECRET:
		setenv("AZURE_TENANT_ID", az("tenant_id"), 1);
		setenv("AZURE_CLIENT_ID", az("client_id"), 1);
		setenv("AZURE_CLIENT_SECRET", az("client_secret"), 1);
		setenv("AZURE_AUTHORITY_HOST", az("authority_host"), 1);
		break;
	case AUTH_CERT:
		snprintf(creds, sizeof(creds),
			 "\"tenant_id\": \"%s\", \"client_id\": \"%s\", "
			 "\"client_certificate_file\": \"%s\", \"authority_host\": \"%s\",",
			 az("tenant_id"), az("client_id"), az("client_certificate_path"),
			 az("authority_host"));
		break;
	case AUTH_WORKLOAD:
		/* The AKS webhook's variables. */
		setenv("AZURE_TENANT_ID", az("tenant_id"), 1);
		setenv("AZURE_CLIENT_ID", az("federated_client_id"), 1);
		setenv("AZURE_FEDERATED_TOKEN_FILE", az("federated_token_file"), 1);
		setenv("AZURE_AUTHORITY_HOST", az("authority_host"), 1);
		break;
	case AUTH_IMDS:
		setenv("AZURE_POD_IDENTITY_AUTHORITY_HOST", az("imds_endpoint"), 1);
		snprintf(creds, sizeof(creds), "\"managed_identity\": true, \"client_id\": \"%s\",",
			 az("managed_identity_client_id"));
		break;
	case AUTH_APP_SERVICE:
		setenv("IDENTITY_ENDPOINT", az("identity_endpoint"), 1);
		setenv("IDENTITY_HEADER", az("identity_header"), 1);
		snprintf(creds, sizeof(creds), "\"managed_identity\": true,");
		break;
	}
	const char *key = hsm ? AES_KEY : RSA_KEY;
	FILE *f = fopen(env.config, "w");
	assert_non_null(f);
	fprintf(f,
		"{ \"log\": {\"level\": \"trace\", \"destination\": \"%s\"},\n"
		"  \"providers\": [ { \"name\": \"test\", \"type\": \"azure\",\n"
		"    \"vault_url\": \"%s\", \"ca_file\": \"%s\", %s %s %s\n"
		"    \"store\": \"%s\", \"seal_with\": \"%s\",\n"
		"    \"keys\": [ {\"id\": \"%s\", \"label\": \"az-key\"} ],\n"
		"    \"revalidate_seconds\": 1, \"offline_grace_seconds\": %ld } ] }\n",
		env.log, az(hsm ? "managed_hsm_url" : "vault_url"),
		json_string_value(json_object_get(emu_info, "ca_bundle")), creds,
		/* 127.0.0.1 says nothing of the service: name the HSM's scope. */
		hsm ? "\"resource\": \"hsm\"," : "", extra ? extra : "",
		env.store, key, key, grace);
	fclose(f);
	emuctl("clear-faults");
	emuctl("enable %s %s", hsm ? "hsm" : "vault", key);
}

static int setup_env(bool hsm, auth_kind auth, long grace, const char *extra)
{
	az_env(hsm, auth, grace, extra);
	assert_ok(h_initialize(&env));
	h_init_token(&env);
	S = h_user_session(&env);
	return 0;
}

static int setup(void **state)
{
	return setup_env(false, AUTH_SECRET_FILE, 3600, NULL);
}

static int setup_hsm(void **state)
{
	return setup_env(true, AUTH_SECRET_FILE, 3600, NULL);
}

static int teardown(void **state)
{
	p11->C_Finalize(NULL);
	h_env_free(&env);
	clear_az_env();
	return 0;
}

static const cloud_e2e AZ_VAULT = {&env, &S, "azure-vault", "wrapKey", "unwrapKey", "GetKey",
				   "\"kind\": \"reset\"", NULL, "az-key"};
static const cloud_e2e AZ_HSM = {&env, &S, "azure-hsm", "wrapKey", "unwrapKey", "GetKey",
				 "\"kind\": \"reset\"", NULL, "az-key"};

/* CKM_P11KMS_KMS_ENVELOPE under the KMS key object; the official SDK opens
 * the module's blob and makes one the module opens. */
static void envelope_and_sdk(const char *vault, const char *key)
{
	CK_OBJECT_HANDLE kms = h_find_label(S, "az-key");
	uint8_t k1[32], k2[32], out[64];
	for (int i = 0; i < 32; i++) {
		k1[i] = (uint8_t)i;
		k2[i] = (uint8_t)(0x80 + i);
	}
	CK_OBJECT_CLASS c = CKO_SECRET_KEY;
	CK_KEY_TYPE kt = CKK_AES;
	CK_BBOOL f = CK_FALSE, t = CK_TRUE;
	CK_ATTRIBUTE imp[] = {{CKA_CLASS, &c, sizeof(c)},   {CKA_KEY_TYPE, &kt, sizeof(kt)},
			      {CKA_VALUE, k1, 32},          {CKA_SENSITIVE, &f, 1},
			      {CKA_EXTRACTABLE, &t, 1}};
	CK_OBJECT_HANDLE local;
	assert_ok(p11->C_CreateObject(S, imp, 5, &local));
	CK_P11KMS_KMS_PARAMS ctx = {(CK_BYTE_PTR) "tenant=1", 8};
	CK_MECHANISM m = {CKM_P11KMS_KMS_ENVELOPE, &ctx, sizeof(ctx)};
	uint8_t blob[4096];
	CK_ULONG bl = 0;
	/* Length query, then the wrap. */
	assert_ok(p11->C_WrapKey(S, &m, kms, local, NULL, &bl));
	assert_true(bl <= sizeof(blob));
	bl = sizeof(blob);
	assert_ok(p11->C_WrapKey(S, &m, kms, local, blob, &bl));
	CK_ATTRIBUTE ut[] = {{CKA_CLASS, &c, sizeof(c)},
			     {CKA_KEY_TYPE, &kt, sizeof(kt)},
			     {CKA_SENSITIVE, &f, 1},
			     {CKA_EXTRACTABLE, &t, 1}};
	CK_OBJECT_HANDLE back;
	CK_ATTRIBUTE v = {CKA_VALUE, out, sizeof(out)};
	assert_ok(p11->C_UnwrapKey(S, &m, kms, blob, bl, ut, 4, &back));
	assert_ok(p11->C_GetAttributeValue(S, back, &v, 1));
	assert_int_equal(v.ulValueLen, 32);
	assert_memory_equal(out, k1, 32);

	char bf[400], of[400], inf[400];
	snprintf(bf, sizeof(bf), "%s/blob.bin", env.dir);
	snprintf(of, sizeof(of), "%s/out.bin", env.dir);
	snprintf(inf, sizeof(inf), "%s/in.bin", env.dir);
	FILE *w = fopen(bf, "wb");
	fwrite(blob, 1, bl, w);
	fclose(w);
	emuctl("sdk-unwrap %s %s %s tenant=1 %s", vault, key, bf, of);
	FILE *r = fopen(of, "rb");
	assert_int_equal(fread(out, 1, sizeof(out), r), 32);
	fclose(r);
	assert_memory_equal(out, k1, 32);

	w = fopen(inf, "wb");
	fwrite(k2, 1, 32, w);
	fclose(w);
	emuctl("sdk-wrap %s %s %s tenant=1 %s", vault, key, inf, bf);
	r = fopen(bf, "rb");
	bl = fread(blob, 1, sizeof(blob), r);
	fclose(r);
	assert_ok(p11->C_UnwrapKey(S, &m, kms, blob, bl, ut, 4, &back));
	v.ulValueLen = sizeof(out);
	assert_ok(p11->C_GetAttributeValue(S, back, &v, 1));
	assert_int_equal(v.ulValueLen, 32);
	assert_memory_equal(out, k2, 32);

	/* Another AAD does not open it. */
	CK_P11KMS_KMS_PARAMS other = {(CK_BYTE_PTR) "tenant=2", 8};
	CK_MECHANISM m2 = {CKM_P11KMS_KMS_ENVELOPE, &other, sizeof(other)};
	assert_rv(p11->C_UnwrapKey(S, &m2, kms, blob, bl, ut, 4, &back),
		  CKR_WRAPPED_KEY_INVALID);
	/* Nor does a damaged blob. */
	blob[bl - 3] ^= 0x40;
	assert_rv(p11->C_UnwrapKey(S, &m, kms, blob, bl, ut, 4, &back),
		  CKR_WRAPPED_KEY_INVALID);
}

static void test_envelope_rsa_and_sdk(void **state)
{
	envelope_and_sdk("vault", RSA_KEY);
}

static void test_envelope_hsm_aes_and_sdk(void **state)
{
	envelope_and_sdk("hsm", AES_KEY);
}

static void disable_enable(bool hsm, const char *key)
{
	CK_OBJECT_HANDLE k = h_aes_key(S, 32, CK_TRUE, "guarded");
	uint8_t ct[32];
	CK_ULONG cl = sizeof(ct);
	assert_ok(h_encrypt_probe(S, k, ct, &cl));
	emuctl("disable %s %s", hsm ? "hsm" : "vault", key);
	sleep(2); /* past revalidate_seconds */
	cl = sizeof(ct);
	assert_rv(h_encrypt_probe(S, k, ct, &cl), CKR_DEVICE_ERROR);
	CK_SESSION_INFO si;
	assert_ok(p11->C_GetSessionInfo(S, &si));
	assert_int_equal(si.ulDeviceError, P11KMS_DEVERR_KEY_DISABLED);
	assert_rv(p11->C_Login(S, CKU_USER, (CK_UTF8CHAR_PTR)USER_PIN, 4), CKR_DEVICE_ERROR);
	emuctl("enable %s %s", hsm ? "hsm" : "vault", key);
	assert_ok(p11->C_Login(S, CKU_USER, (CK_UTF8CHAR_PTR)USER_PIN, 4));
	k = h_find_label(S, "guarded");
	cl = sizeof(ct);
	assert_ok(h_encrypt_probe(S, k, ct, &cl));
}

static void test_disable_then_enable(void **state)
{
	disable_enable(false, RSA_KEY);
}

static void test_hsm_disable_then_enable(void **state)
{
	disable_enable(true, AES_KEY);
}

static void test_new_version_keeps_old_blobs(void **state)
{
	CK_OBJECT_HANDLE kms = h_find_label(S, "az-key");
	CK_OBJECT_HANDLE dk = h_aes_key(S, 32, CK_FALSE, "dk");
	CK_MECHANISM m = {CKM_P11KMS_KMS_ENVELOPE, NULL, 0};
	uint8_t b1[4096], b2[4096];
	CK_ULONG l1 = sizeof(b1), l2 = sizeof(b2);
	assert_ok(p11->C_WrapKey(S, &m, kms, dk, b1, &l1));
	emuctl("rotate vault %s", RSA_KEY);
	assert_ok(p11->C_WrapKey(S, &m, kms, dk, b2, &l2));
	/* The blobs name different versions. */
	assert_false(l1 == l2 && memcmp(b1, b2, 80) == 0);
	CK_OBJECT_CLASS c = CKO_SECRET_KEY;
	CK_KEY_TYPE kt = CKK_AES;
	CK_ATTRIBUTE t[] = {{CKA_CLASS, &c, sizeof(c)}, {CKA_KEY_TYPE, &kt, sizeof(kt)}};
	CK_OBJECT_HANDLE a, b;
	assert_ok(p11->C_UnwrapKey(S, &m, kms, b1, l1, t, 2, &a));
	assert_ok(p11->C_UnwrapKey(S, &m, kms, b2, l2, t, 2, &b));
	/* The token's seal (made under the old version) still opens too. */
	assert_ok(p11->C_Logout(S));
	assert_ok(p11->C_Login(S, CKU_USER, (CK_UTF8CHAR_PTR)USER_PIN, 4));
}

static void test_retries_and_throttling(void **state)
{
	CK_OBJECT_HANDLE kms = h_find_label(S, "az-key");
	CK_OBJECT_HANDLE dk = h_aes_key(S, 32, CK_FALSE, "dk");
	CK_MECHANISM m = {CKM_P11KMS_KMS_ENVELOPE, NULL, 0};
	uint8_t b[4096];
	CK_ULONG l = sizeof(b);
	/* Warm: the key type is known, the token cached. */
	assert_ok(p11->C_WrapKey(S, &m, kms, dk, b, &l));
	emuctl("reset-counters");
	emuctl("fault '{\"service\": \"azure-vault\", \"op\": \"wrapKey\", \"kind\": \"error\", "
	       "\"status\": 503, \"retry_after\": 1, \"count\": 2}'");
	l = sizeof(b);
	assert_ok(p11->C_WrapKey(S, &m, kms, dk, b, &l));
	assert_int_equal(emu_count("azure-vault", "wrapKey"), 3);
	emuctl("fault '{\"service\": \"azure-vault\", \"op\": \"wrapKey\", \"kind\": \"throttle\", "
	       "\"retry_after\": 1, \"count\": 1}'");
	l = sizeof(b);
	assert_ok(p11->C_WrapKey(S, &m, kms, dk, b, &l));
	emuctl("fault '{\"service\": \"azure-vault\", \"op\": \"unwrapKey\", \"kind\": \"reset\", "
	       "\"count\": 1}'");
	CK_OBJECT_CLASS c = CKO_SECRET_KEY;
	CK_KEY_TYPE kt = CKK_AES;
	CK_ATTRIBUTE t[] = {{CKA_CLASS, &c, sizeof(c)}, {CKA_KEY_TYPE, &kt, sizeof(kt)}};
	CK_OBJECT_HANDLE back;
	assert_ok(p11->C_UnwrapKey(S, &m, kms, b, l, t, 2, &back));
	/* Beyond the retries: the call fails. */
	emuctl("fault '{\"service\": \"azure-vault\", \"op\": \"wrapKey\", \"kind\": \"error\", "
	       "\"status\": 500, \"count\": 5}'");
	l = sizeof(b);
	assert_rv(p11->C_WrapKey(S, &m, kms, dk, b, &l), CKR_DEVICE_ERROR);
	assert_true(h_log_contains(&env, "InternalServerError"));
	emuctl("clear-faults");
}

/* The configured scope is the HSM's, the vault's challenge names its own
 * resource: the provider follows the challenge and gets a vault token. */
static void test_bearer_challenge(void **state)
{
	az_env(false, AUTH_SECRET_FILE, 3600, "\"resource\": \"hsm\",");
	assert_ok(h_initialize(&env));
	h_init_token(&env);
	S = h_user_session(&env);
	CK_OBJECT_HANDLE k = h_aes_key(S, 32, CK_TRUE, "k");
	uint8_t ct[32];
	CK_ULONG cl = sizeof(ct);
	assert_ok(h_encrypt_probe(S, k, ct, &cl));
	assert_true(h_log_contains(&env, "bearer challenge"));
}

/* Each credential source seals a token, wraps and unwraps. */
static void auth_roundtrip(auth_kind a, const char *service, const char *op)
{
	az_env(false, a, 3600, NULL);
	emuctl("reset-counters");
	assert_ok(h_initialize(&env));
	h_init_token(&env);
	S = h_user_session(&env);
	CK_OBJECT_HANDLE kms = h_find_label(S, "az-key");
	CK_OBJECT_HANDLE dk = h_aes_key(S, 32, CK_FALSE, "dk");
	CK_MECHANISM m = {CKM_P11KMS_KMS_ENVELOPE, NULL, 0};
	uint8_t b[4096];
	CK_ULONG l = sizeof(b);
	assert_ok(p11->C_WrapKey(S, &m, kms, dk, b, &l));
	CK_OBJECT_CLASS c = CKO_SECRET_KEY;
	CK_KEY_TYPE kt = CKK_AES;
	CK_ATTRIBUTE t[] = {{CKA_CLASS, &c, sizeof(c)}, {CKA_KEY_TYPE, &kt, sizeof(kt)}};
	CK_OBJECT_HANDLE back;
	assert_ok(p11->C_UnwrapKey(S, &m, kms, b, l, t, 2, &back));
	/* One token fetch serves every call (cached). */
	assert_int_equal(emu_count(service, op), 1);
	/* Nothing secret in the trace log: tokens, assertions and federated
	 * tokens are JWTs ("eyJ..."), the secret, the App Service header. */
	assert_true(h_log_contains(&env, "credential"));
	assert_false(h_log_contains(&env, "eyJ"));
	assert_false(h_log_contains(&env, az("client_secret")));
	assert_false(h_log_contains(&env, az("identity_header")));
	assert_false(h_log_contains(&env, "Bearer "));
}

static void test_auth_client_secret_env(void **state)
{
	auth_roundtrip(AUTH_ENV_SECRET, "azure-login", "Token");
}

static void test_auth_client_certificate(void **state)
{
	auth_roundtrip(AUTH_CERT, "azure-login", "Token");
}

static void test_auth_workload_identity(void **state)
{
	auth_roundtrip(AUTH_WORKLOAD, "azure-login", "Token");
}

static void test_auth_imds(void **state)
{
	auth_roundtrip(AUTH_IMDS, "metadata", "AzureImdsToken");
}

static void test_auth_app_service(void **state)
{
	auth_roundtrip(AUTH_APP_SERVICE, "metadata", "AppServiceToken");
}

/* A revoked application: the token endpoint refuses, the module fails
 * closed with access denied. */
static void test_revoked_app(void **state)
{
	emuctl("revoke %s", az("client_id"));
	p11->C_Finalize(NULL); /* drop the cached token */
	assert_ok(h_initialize(&env));
	CK_SESSION_HANDLE s;
	assert_ok(p11->C_OpenSession(env.slot, CKF_SERIAL_SESSION, NULL, NULL, &s));
	CK_RV rv = p11->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)USER_PIN, 4);
	emuctl("restore %s", az("client_id"));
	assert_rv(rv, CKR_DEVICE_ERROR);
	CK_SESSION_INFO si;
	assert_ok(p11->C_GetSessionInfo(s, &si));
	assert_int_equal(si.ulDeviceError, P11KMS_DEVERR_ACCESS_DENIED);
	assert_true(h_log_contains(&env, "invalid_client"));
}

static int setup_no_grace(void **state)
{
	return setup_env(false, AUTH_SECRET_FILE, 0, NULL);
}

/* Latency below the client's timeouts is only slow. */
static void test_latency(void **state)
{
	CK_OBJECT_HANDLE kms = h_find_label(S, "az-key");
	CK_OBJECT_HANDLE dk = h_aes_key(S, 32, CK_FALSE, "dk");
	CK_MECHANISM m = {CKM_P11KMS_KMS_ENVELOPE, NULL, 0};
	uint8_t b[4096];
	CK_ULONG l = sizeof(b);
	emuctl("fault '{\"service\": \"azure-vault\", \"op\": \"wrapKey\", \"kind\": \"latency\", "
	       "\"delay_ms\": 1500, \"count\": 1}'");
	assert_ok(p11->C_WrapKey(S, &m, kms, dk, b, &l));
	emuctl("clear-faults");
}

static void test_no_secret_in_log(void **state)
{
	CK_OBJECT_HANDLE k = h_aes_key(S, 32, CK_TRUE, "k");
	uint8_t ct[32];
	CK_ULONG cl = sizeof(ct);
	assert_ok(h_encrypt_probe(S, k, ct, &cl));
	assert_ok(p11->C_Finalize(NULL));
	assert_true(h_log_contains(&env, "unsealed"));
	assert_false(h_log_contains(&env, az("client_secret")));
	assert_false(h_log_contains(&env, "eyJ"));    /* no JWT: token or assertion */
	assert_false(h_log_contains(&env, "Bearer ")); /* no Authorization header */
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
		H_TEST_STATE(cloud_token_survives_restart, setup, teardown, &AZ_VAULT),
		H_TEST_STATE(cloud_token_survives_restart, setup_hsm, teardown, &AZ_HSM),
		cmocka_unit_test_setup_teardown(test_envelope_rsa_and_sdk, setup, teardown),
		cmocka_unit_test_setup_teardown(test_envelope_hsm_aes_and_sdk, setup_hsm, teardown),
		cmocka_unit_test_setup_teardown(test_disable_then_enable, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hsm_disable_then_enable, setup_hsm, teardown),
		cmocka_unit_test_setup_teardown(test_new_version_keeps_old_blobs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_retries_and_throttling, setup, teardown),
		cmocka_unit_test_setup_teardown(test_latency, setup, teardown),
		H_TEST_STATE(cloud_threads_do_not_serialize, setup, teardown, &AZ_VAULT),
		H_TEST_STATE(cloud_unreachable_within_grace, setup, teardown, &AZ_VAULT),
		H_TEST_STATE(cloud_unreachable_fails_closed, setup_no_grace, teardown, &AZ_VAULT),
		cmocka_unit_test_teardown(test_bearer_challenge, teardown),
		cmocka_unit_test_teardown(test_auth_client_secret_env, teardown),
		cmocka_unit_test_teardown(test_auth_client_certificate, teardown),
		cmocka_unit_test_teardown(test_auth_workload_identity, teardown),
		cmocka_unit_test_teardown(test_auth_imds, teardown),
		cmocka_unit_test_teardown(test_auth_app_service, teardown),
		cmocka_unit_test_setup_teardown(test_revoked_app, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_secret_in_log, setup, teardown),
	};
	return cmocka_run_group_tests_name("azure", tests, start_emulator, stop_emulator);
}
