/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The Google Cloud KMS provider end to end, through the exported API,
 * against the project's KMS emulator over HTTPS (OAuth tokens from its
 * token endpoint or metadata server, CRC32C checked by both sides): a
 * token sealed under a CryptoKey survives a restart with one :decrypt to
 * unseal; blobs interoperate with @google-cloud/kms (REST fallback) both
 * ways; disabling or destroying the primary version fails operations
 * within the revalidation interval; rotation keeps old blobs working and
 * new wraps use the new primary; a corrupted CRC32C in a reply is refused;
 * 503/429 are retried; each credential source works; and no token, key or
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

#define gcp(field) emu_str("gcp", field)
#define emuctl(...) emu_ctl("emuctl_gcp.py", __VA_ARGS__)

static long emu_count(const char *service, const char *op)
{
	return emu_ctl_long("emuctl_gcp.py", "count %s %s", service, op);
}

static h_env env;
static CK_SESSION_HANDLE S;

static const char *sym_key(void)
{
	return json_string_value(
		json_object_get(json_object_get(json_object_get(emu_info, "gcp"), "keys"),
				"symmetric"));
}

/* One line of emuctl_gcp.py output into out. */

static int start_emulator(void **state)
{
	h_load();
	if (emu_start("emu") != 0)
		return -1;
	/* Only what each test's config names: no ambient Google credentials. */
	unsetenv("GOOGLE_APPLICATION_CREDENTIALS");
	unsetenv("CLOUDSDK_CONFIG");
	unsetenv("GCE_METADATA_HOST");
	return 0;
}

static int stop_emulator(void **state)
{
	return emu_stop();
}

/* A token on the gcp provider, sealed by seal, showing objkey as the
 * KMS key object "gcp-key". creds is the extra JSON naming the credential
 * source ("" for the ADC search). */
static void gcp_env_keys(long grace, const char *seal, const char *objkey, const char *creds)
{
	h_env_new(&env, "required", "");
	/* No gcloud file unless a test puts one there. */
	setenv("HOME", env.dir, 1);
	FILE *f = fopen(env.config, "w");
	assert_non_null(f);
	fprintf(f,
		"{ \"log\": {\"level\": \"trace\", \"destination\": \"%s\"},\n"
		"  \"providers\": [ { \"name\": \"test\", \"type\": \"gcp\",\n"
		"    \"endpoint\": \"%s\", \"ca_file\": \"%s\", %s\n"
		"    \"store\": \"%s\", \"seal_with\": \"%s\",\n"
		"    \"keys\": [ {\"id\": \"%s\", \"label\": \"gcp-key\"} ],\n"
		"    \"revalidate_seconds\": 1, \"offline_grace_seconds\": %ld } ] }\n",
		env.log, gcp("endpoint_url"),
		json_string_value(json_object_get(emu_info, "ca_bundle")), creds, env.store, seal,
		objkey, grace);
	fclose(f);
	emuctl("clear-faults");
	emuctl("enable %s", seal);
	emuctl("enable %s", objkey);
}

/* ... sealed by key, which is also the KMS key object. */
static void gcp_env_with(long grace, const char *key, const char *creds)
{
	gcp_env_keys(grace, key, key, creds);
}

static void gcp_env(long grace)
{
	char creds[600];
	snprintf(creds, sizeof(creds), "\"credentials_file\": \"%s\",",
		 gcp("service_account_file"));
	gcp_env_with(grace, sym_key(), creds);
}

static void open_token(void)
{
	assert_ok(h_initialize(&env));
	h_init_token(&env);
	S = h_user_session(&env);
}

static int setup(void **state)
{
	gcp_env(3600);
	open_token();
	return 0;
}

static int teardown(void **state)
{
	p11->C_Finalize(NULL);
	h_env_free(&env);
	return 0;
}

static CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
static CK_KEY_TYPE kt = CKK_AES;

/* Wrap and unwrap one local key under the KMS key: the round trip works. */
static void wrap_roundtrip(void)
{
	CK_OBJECT_HANDLE kms = h_find_label(S, "gcp-key");
	CK_OBJECT_HANDLE dk = h_aes_key(S, 32, CK_FALSE, "dk");
	CK_MECHANISM m = {CKM_P11KMS_KMS_ENVELOPE, NULL, 0};
	uint8_t b[2048];
	CK_ULONG l = sizeof(b);
	CK_ATTRIBUTE t[] = {{CKA_CLASS, &cls, sizeof(cls)}, {CKA_KEY_TYPE, &kt, sizeof(kt)}};
	CK_OBJECT_HANDLE back;
	assert_ok(p11->C_WrapKey(S, &m, kms, dk, b, &l));
	assert_ok(p11->C_UnwrapKey(S, &m, kms, b, l, t, 2, &back));
}

/* The describe call answering 503 UNAVAILABLE is the service unreachable. */
static const cloud_e2e GCP_E2E = {&env, &S, "gcp", "Encrypt", "Decrypt", "GetCryptoKey",
				  "\"kind\": \"error\", \"status\": 503", "UNAVAILABLE",
				  "gcp-key"};

static void test_blobs_interoperate_with_sdk(void **state)
{
	CK_OBJECT_HANDLE kms = h_find_label(S, "gcp-key");
	uint8_t key[32], key2[32], out[64];
	for (int i = 0; i < 32; i++) {
		key[i] = (uint8_t)i;
		key2[i] = (uint8_t)(0x80 + i);
	}
	CK_BBOOL f = CK_FALSE, t = CK_TRUE;
	CK_ATTRIBUTE imp[] = {{CKA_CLASS, &cls, sizeof(cls)}, {CKA_KEY_TYPE, &kt, sizeof(kt)},
			      {CKA_VALUE, key, 32},            {CKA_SENSITIVE, &f, 1},
			      {CKA_EXTRACTABLE, &t, 1}};
	CK_OBJECT_HANDLE local;
	assert_ok(p11->C_CreateObject(S, imp, 5, &local));
	CK_P11KMS_KMS_PARAMS ctx = {(CK_BYTE_PTR) "tenant=1", 8};
	CK_MECHANISM m = {CKM_P11KMS_KMS_ENVELOPE, &ctx, sizeof(ctx)};
	uint8_t blob[2048];
	CK_ULONG bl = sizeof(blob);
	assert_ok(p11->C_WrapKey(S, &m, kms, local, blob, &bl));
	/* @google-cloud/kms opens the module's blob with the same AAD. */
	char bf[400], of[400], inf[400];
	snprintf(bf, sizeof(bf), "%s/blob.bin", env.dir);
	snprintf(of, sizeof(of), "%s/out.bin", env.dir);
	snprintf(inf, sizeof(inf), "%s/in.bin", env.dir);
	h_write_file(bf, blob, bl);
	emuctl("sdk-decrypt %s %s tenant=1 %s", sym_key(), bf, of);
	assert_int_equal(h_read_file(of, out, sizeof(out)), 32);
	assert_memory_equal(out, key, 32);
	/* And the module opens a blob the SDK made. */
	h_write_file(inf, key2, 32);
	emuctl("sdk-encrypt %s %s tenant=1 %s", sym_key(), inf, bf);
	bl = h_read_file(bf, blob, sizeof(blob));
	CK_ATTRIBUTE ut[] = {{CKA_CLASS, &cls, sizeof(cls)},
			     {CKA_KEY_TYPE, &kt, sizeof(kt)},
			     {CKA_SENSITIVE, &f, 1},
			     {CKA_EXTRACTABLE, &t, 1}};
	CK_OBJECT_HANDLE back;
	assert_ok(p11->C_UnwrapKey(S, &m, kms, blob, bl, ut, 4, &back));
	CK_ATTRIBUTE v = {CKA_VALUE, out, sizeof(out)};
	assert_ok(p11->C_GetAttributeValue(S, back, &v, 1));
	assert_int_equal(v.ulValueLen, 32);
	assert_memory_equal(out, key2, 32);
	/* Another AAD does not open it: the service says INVALID_ARGUMENT. */
	CK_P11KMS_KMS_PARAMS other = {(CK_BYTE_PTR) "tenant=2", 8};
	CK_MECHANISM m2 = {CKM_P11KMS_KMS_ENVELOPE, &other, sizeof(other)};
	assert_rv(p11->C_UnwrapKey(S, &m2, kms, blob, bl, ut, 4, &back),
		  CKR_WRAPPED_KEY_INVALID);
}

static void test_disable_then_enable(void **state)
{
	CK_OBJECT_HANDLE k = h_aes_key(S, 32, CK_TRUE, "guarded");
	uint8_t ct[32];
	CK_ULONG cl = sizeof(ct);
	assert_ok(h_encrypt_probe(S, k, ct, &cl));
	emuctl("disable %s", sym_key());
	sleep(2); /* past revalidate_seconds */
	cl = sizeof(ct);
	assert_rv(h_encrypt_probe(S, k, ct, &cl), CKR_DEVICE_ERROR);
	CK_SESSION_INFO si;
	assert_ok(p11->C_GetSessionInfo(S, &si));
	assert_int_equal(si.ulDeviceError, P11KMS_DEVERR_KEY_DISABLED);
	assert_rv(p11->C_Login(S, CKU_USER, (CK_UTF8CHAR_PTR)USER_PIN, 4), CKR_DEVICE_ERROR);
	/* The service's FAILED_PRECONDITION reached the log. */
	assert_true(h_log_contains(&env, "FAILED_PRECONDITION"));
	emuctl("enable %s", sym_key());
	assert_ok(p11->C_Login(S, CKU_USER, (CK_UTF8CHAR_PTR)USER_PIN, 4));
	k = h_find_label(S, "guarded");
	cl = sizeof(ct);
	assert_ok(h_encrypt_probe(S, k, ct, &cl));
}


/* A token sealed by its own key, showing the shared key as a KMS key
 * object: the object follows its own key's state, not the sealing key's;
 * when the sealing key comes back, the session says what it is. */
static char own_seal[512];

static int setup_own_seal(void **state)
{
	char creds[600];
	emu_ctl_line(own_seal, sizeof(own_seal), "emuctl_gcp.py", "create seal-%d", (int)getpid());
	snprintf(creds, sizeof(creds), "\"credentials_file\": \"%s\",",
		 gcp("service_account_file"));
	gcp_env_keys(3600, own_seal, sym_key(), creds);
	open_token();
	return 0;
}

static void test_kms_object_follows_its_own_key(void **state)
{
	CK_OBJECT_HANDLE kms = h_find_label(S, "gcp-key");
	CK_OBJECT_HANDLE k = h_aes_key(S, 32, CK_TRUE, "guarded");
	CK_MECHANISM m = {CKM_P11KMS_KMS_ENVELOPE, NULL, 0};
	uint8_t ct[32], blob[2048], out[64];
	CK_ULONG cl = sizeof(ct), bl = sizeof(blob), ol = sizeof(out);
	emuctl("disable %s", own_seal);
	sleep(2); /* past revalidate_seconds */
	assert_rv(h_encrypt_probe(S, k, ct, &cl), CKR_DEVICE_ERROR);
	CK_SESSION_INFO si;
	assert_ok(p11->C_GetSessionInfo(S, &si));
	assert_int_equal(si.ulDeviceError, P11KMS_DEVERR_KEY_DISABLED);
	assert_int_equal(si.state, CKS_RW_PUBLIC_SESSION); /* logged out: the PIN is needed */
	/* The KMS key object's own key is enabled: it works on. */
	assert_ok(p11->C_EncryptInit(S, &m, kms));
	assert_ok(p11->C_Encrypt(S, (CK_BYTE_PTR)"sixteen byte msg", 16, blob, &bl));
	assert_ok(p11->C_DecryptInit(S, &m, kms));
	assert_ok(p11->C_Decrypt(S, blob, bl, out, &ol));
	assert_int_equal(ol, 16);
	/* ... until its own key is disabled. */
	emuctl("disable %s", sym_key());
	bl = sizeof(blob);
	CK_RV rv = p11->C_EncryptInit(S, &m, kms);
	if (rv == CKR_OK)
		rv = p11->C_Encrypt(S, (CK_BYTE_PTR)"sixteen byte msg", 16, blob, &bl);
	emuctl("enable %s", sym_key());
	assert_int_not_equal(rv, CKR_OK);
	/* The sealing key back: the session no longer names the revocation,
	 * says it is logged out, and a login works. */
	emuctl("enable %s", own_seal);
	sleep(2);
	bl = sizeof(blob);
	assert_ok(p11->C_EncryptInit(S, &m, kms));
	assert_ok(p11->C_Encrypt(S, (CK_BYTE_PTR)"sixteen byte msg", 16, blob, &bl));
	assert_ok(p11->C_GetSessionInfo(S, &si));
	assert_int_equal(si.ulDeviceError, 0);
	assert_int_equal(si.state, CKS_RW_PUBLIC_SESSION);
	assert_ok(p11->C_Login(S, CKU_USER, (CK_UTF8CHAR_PTR)USER_PIN, 4));
	k = h_find_label(S, "guarded");
	cl = sizeof(ct);
	assert_ok(h_encrypt_probe(S, k, ct, &cl));
}

/* Destroying the primary version is final: a dedicated key, so the
 * emulator's shared key stays usable for the other tests. */
static int setup_destroy(void **state)
{
	char name[512], creds[600];
	emu_ctl_line(name, sizeof(name), "emuctl_gcp.py", "create doomed-%d", (int)getpid());
	snprintf(creds, sizeof(creds), "\"credentials_file\": \"%s\",",
		 gcp("service_account_file"));
	gcp_env_with(3600, name, creds);
	open_token();
	return 0;
}

static void test_destroy_fails(void **state)
{
	CK_OBJECT_HANDLE k = h_aes_key(S, 32, CK_TRUE, "doomed-data");
	uint8_t ct[32];
	CK_ULONG cl = sizeof(ct);
	assert_ok(h_encrypt_probe(S, k, ct, &cl));
	char key[512];
	FILE *f = fopen(env.config, "r");
	assert_non_null(f);
	json_error_t je;
	json_t *cfg = json_loadf(f, 0, &je);
	fclose(f);
	snprintf(key, sizeof(key), "%s",
		 json_string_value(json_object_get(
			 json_array_get(json_object_get(cfg, "providers"), 0), "seal_with")));
	json_decref(cfg);
	emuctl("destroy %s", key);
	sleep(2);
	cl = sizeof(ct);
	assert_rv(h_encrypt_probe(S, k, ct, &cl), CKR_DEVICE_ERROR);
	CK_SESSION_INFO si;
	assert_ok(p11->C_GetSessionInfo(S, &si));
	assert_int_equal(si.ulDeviceError, P11KMS_DEVERR_KEY_NOT_FOUND);
	assert_rv(p11->C_Login(S, CKU_USER, (CK_UTF8CHAR_PTR)USER_PIN, 4), CKR_DEVICE_ERROR);
}

/* The emulator's ciphertext layout (kmsemu/gcp.py): 'K', version (u32 BE). */
static unsigned blob_version(const uint8_t *b)
{
	return (unsigned)b[1] << 24 | (unsigned)b[2] << 16 | (unsigned)b[3] << 8 | b[4];
}

static void test_rotation_keeps_old_blobs(void **state)
{
	CK_OBJECT_HANDLE kms = h_find_label(S, "gcp-key");
	CK_OBJECT_HANDLE dk = h_aes_key(S, 32, CK_FALSE, "dk");
	CK_MECHANISM m = {CKM_P11KMS_KMS_ENVELOPE, NULL, 0};
	uint8_t b1[2048], b2[2048];
	CK_ULONG l1 = sizeof(b1), l2 = sizeof(b2);
	assert_ok(p11->C_WrapKey(S, &m, kms, dk, b1, &l1));
	emuctl("rotate %s", sym_key());
	assert_ok(p11->C_WrapKey(S, &m, kms, dk, b2, &l2));
	/* The new wrap names the new primary version. */
	assert_int_equal(blob_version(b2), blob_version(b1) + 1);
	CK_ATTRIBUTE t[] = {{CKA_CLASS, &cls, sizeof(cls)}, {CKA_KEY_TYPE, &kt, sizeof(kt)}};
	CK_OBJECT_HANDLE a, b;
	assert_ok(p11->C_UnwrapKey(S, &m, kms, b1, l1, t, 2, &a));
	assert_ok(p11->C_UnwrapKey(S, &m, kms, b2, l2, t, 2, &b));
	/* The token's seal (made before the rotation) still opens too. */
	assert_ok(p11->C_Logout(S));
	assert_ok(p11->C_Login(S, CKU_USER, (CK_UTF8CHAR_PTR)USER_PIN, 4));
}

static void test_corrupt_crc32c_refused(void **state)
{
	CK_OBJECT_HANDLE kms = h_find_label(S, "gcp-key");
	CK_OBJECT_HANDLE dk = h_aes_key(S, 32, CK_FALSE, "dk");
	CK_MECHANISM m = {CKM_P11KMS_KMS_ENVELOPE, NULL, 0};
	uint8_t b[2048];
	CK_ULONG l = sizeof(b);
	/* Encrypt: the reply's ciphertextCrc32c is off by one. */
	emuctl("fault '{\"service\": \"gcp\", \"op\": \"Encrypt\", \"kind\": \"corrupt_crc32c\"}'");
	assert_rv(p11->C_WrapKey(S, &m, kms, dk, b, &l), CKR_DEVICE_ERROR);
	assert_true(h_log_contains(&env, "CRC32C mismatch: ciphertextCrc32c"));
	/* Decrypt: the reply's plaintextCrc32c is off by one. */
	l = sizeof(b);
	assert_ok(p11->C_WrapKey(S, &m, kms, dk, b, &l));
	emuctl("fault '{\"service\": \"gcp\", \"op\": \"Decrypt\", \"kind\": \"corrupt_crc32c\"}'");
	CK_ATTRIBUTE t[] = {{CKA_CLASS, &cls, sizeof(cls)}, {CKA_KEY_TYPE, &kt, sizeof(kt)}};
	CK_OBJECT_HANDLE back;
	assert_rv(p11->C_UnwrapKey(S, &m, kms, b, l, t, 2, &back), CKR_DEVICE_ERROR);
	assert_true(h_log_contains(&env, "CRC32C mismatch: plaintextCrc32c"));
	/* Without the fault the same blob opens. */
	assert_ok(p11->C_UnwrapKey(S, &m, kms, b, l, t, 2, &back));
}

static void test_retries_and_throttling(void **state)
{
	CK_OBJECT_HANDLE kms = h_find_label(S, "gcp-key");
	CK_OBJECT_HANDLE dk = h_aes_key(S, 32, CK_FALSE, "dk");
	CK_MECHANISM m = {CKM_P11KMS_KMS_ENVELOPE, NULL, 0};
	uint8_t b[2048];
	CK_ULONG l = sizeof(b);
	emuctl("reset-counters");
	emuctl("fault '{\"service\": \"gcp\", \"op\": \"Encrypt\", \"kind\": \"error\", "
	       "\"status\": 503, \"retry_after\": 1, \"count\": 2}'");
	assert_ok(p11->C_WrapKey(S, &m, kms, dk, b, &l));
	assert_int_equal(emu_count("gcp", "Encrypt"), 3);
	emuctl("fault '{\"service\": \"gcp\", \"op\": \"Encrypt\", \"kind\": \"throttle\", "
	       "\"count\": 1}'");
	l = sizeof(b);
	assert_ok(p11->C_WrapKey(S, &m, kms, dk, b, &l));
	assert_int_equal(emu_count("gcp", "Encrypt"), 5);
	/* Beyond the retries: the call fails, with the cause in the log. */
	emuctl("fault '{\"service\": \"gcp\", \"op\": \"Encrypt\", \"kind\": \"error\", "
	       "\"status\": 500, \"count\": 5}'");
	l = sizeof(b);
	assert_rv(p11->C_WrapKey(S, &m, kms, dk, b, &l), CKR_DEVICE_ERROR);
	assert_true(h_log_contains(&env, "INTERNAL"));
	emuctl("clear-faults");
}

/* No credentials file anywhere: the metadata server (GCE_METADATA_HOST). */
static int setup_metadata(void **state)
{
	setenv("GCE_METADATA_HOST", gcp("metadata_host"), 1);
	gcp_env_with(3600, sym_key(), "");
	emuctl("reset-counters");
	open_token();
	return 0;
}

static int teardown_metadata(void **state)
{
	unsetenv("GCE_METADATA_HOST");
	return teardown(state);
}

static void test_metadata_server_credentials(void **state)
{
	wrap_roundtrip();
	assert_true(emu_count("metadata", "GceToken") >= 1);
	assert_int_equal(emu_count("gcp", "Token"), 0);
	assert_true(h_log_contains(&env, "access token from metadata"));
}

/* The metadata host from the config, with no environment variable. */
static int setup_metadata_config(void **state)
{
	char creds[300];
	snprintf(creds, sizeof(creds), "\"metadata_host\": \"%s\",", gcp("metadata_host"));
	gcp_env_with(3600, sym_key(), creds);
	open_token();
	return 0;
}

static void test_metadata_host_from_config(void **state)
{
	wrap_roundtrip();
	assert_true(h_log_contains(&env, "access token from metadata"));
}

static int setup_authorized_user(void **state)
{
	char creds[600];
	/* Like gcloud's files, the emulator's has no token_uri: the config
	 * points the module at the emulator's token endpoint. */
	snprintf(creds, sizeof(creds), "\"credentials_file\": \"%s\", \"token_uri\": \"%s\",",
		 gcp("authorized_user_file"), gcp("token_uri"));
	gcp_env_with(3600, sym_key(), creds);
	emuctl("reset-counters");
	open_token();
	return 0;
}

static void test_authorized_user_credentials(void **state)
{
	wrap_roundtrip();
	assert_true(emu_count("gcp", "Token") >= 1);
	assert_true(h_log_contains(&env, "access token from authorized-user"));
}

/* The gcloud well-known file under $HOME (gcp_env_with points HOME at the
 * scratch folder), holding the authorized-user credentials. */
static int setup_gcloud_file(void **state)
{
	char creds[400];
	snprintf(creds, sizeof(creds), "\"token_uri\": \"%s\",", gcp("token_uri"));
	gcp_env_with(3600, sym_key(), creds);
	char d[400], cmd[1200];
	snprintf(d, sizeof(d), "%s/.config/gcloud", env.dir);
	snprintf(cmd, sizeof(cmd), "mkdir -p '%s' && cp '%s' '%s/application_default_credentials.json'",
		 d, gcp("authorized_user_file"), d);
	assert_int_equal(system(cmd), 0);
	emuctl("reset-counters");
	open_token();
	return 0;
}

static void test_gcloud_well_known_file(void **state)
{
	wrap_roundtrip();
	assert_true(emu_count("gcp", "Token") >= 1);
	assert_int_equal(emu_count("metadata", "GceToken"), 0);
	assert_true(h_log_contains(&env, "access token from authorized-user"));
}

/* Self-signed JWT access: the service-account key signs the bearer token
 * itself, no token endpoint. */
static int setup_self_signed(void **state)
{
	char creds[600];
	snprintf(creds, sizeof(creds), "\"credentials_file\": \"%s\", \"self_signed_jwt\": true,",
		 gcp("service_account_file"));
	gcp_env_with(3600, sym_key(), creds);
	emuctl("reset-counters");
	open_token();
	return 0;
}

static void test_self_signed_jwt(void **state)
{
	wrap_roundtrip();
	assert_int_equal(emu_count("gcp", "Token"), 0);
	assert_true(h_log_contains(&env, "self-signed JWT access"));
	assert_false(h_log_contains(&env, "Bearer"));
	assert_false(h_log_contains(&env, "eyJhbGci")); /* base64url of {"alg" */
}

/* GOOGLE_APPLICATION_CREDENTIALS naming the service-account file. */
static int setup_adc_env(void **state)
{
	setenv("GOOGLE_APPLICATION_CREDENTIALS", gcp("service_account_file"), 1);
	gcp_env_with(3600, sym_key(), "");
	open_token();
	return 0;
}

static int teardown_adc_env(void **state)
{
	unsetenv("GOOGLE_APPLICATION_CREDENTIALS");
	return teardown(state);
}

static void test_adc_environment_variable(void **state)
{
	wrap_roundtrip();
	assert_true(h_log_contains(&env, "access token from service-account"));
}

/* A revoked service account: the token endpoint refuses, the module says
 * access denied. */
static void test_revoked_credentials(void **state)
{
	assert_ok(p11->C_Finalize(NULL));
	emuctl("revoke %s", gcp("service_account_email"));
	CK_RV rv = h_initialize(&env);
	CK_SESSION_HANDLE s;
	if (rv == CKR_OK)
		rv = p11->C_OpenSession(env.slot, CKF_SERIAL_SESSION, NULL, NULL, &s);
	if (rv == CKR_OK)
		rv = p11->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)USER_PIN, 4);
	emuctl("restore %s", gcp("service_account_email"));
	assert_rv(rv, CKR_DEVICE_ERROR);
	assert_true(h_log_contains(&env, "invalid_grant"));
}

static int setup_no_grace(void **state)
{
	gcp_env(0);
	open_token();
	return 0;
}

/* The service account revoked while the token is in use: the cached
 * access token is refused (401), a new one cannot be had (invalid_grant),
 * and revalidation fails the token with access denied. */
static void test_revoked_while_in_use(void **state)
{
	CK_OBJECT_HANDLE k = h_aes_key(S, 32, CK_TRUE, "k");
	uint8_t ct[32];
	CK_ULONG cl = sizeof(ct);
	assert_ok(h_encrypt_probe(S, k, ct, &cl));
	emuctl("revoke %s", gcp("service_account_email"));
	sleep(2);
	cl = sizeof(ct);
	CK_RV rv = h_encrypt_probe(S, k, ct, &cl);
	CK_SESSION_INFO si;
	CK_RV rv2 = p11->C_GetSessionInfo(S, &si);
	emuctl("restore %s", gcp("service_account_email"));
	assert_rv(rv, CKR_DEVICE_ERROR);
	assert_ok(rv2);
	assert_int_equal(si.ulDeviceError, P11KMS_DEVERR_ACCESS_DENIED);
	assert_true(h_log_contains(&env, "invalid_grant"));
}

static char *file_field(const char *path, const char *field)
{
	json_error_t je;
	json_t *j = json_load_file(path, 0, &je);
	const char *v = json_string_value(json_object_get(j, field));
	char *out = v ? strdup(v) : NULL;
	json_decref(j);
	return out;
}

static void test_no_secret_in_log(void **state)
{
	CK_OBJECT_HANDLE k = h_aes_key(S, 32, CK_TRUE, "k");
	uint8_t ct[32];
	CK_ULONG cl = sizeof(ct);
	assert_ok(h_encrypt_probe(S, k, ct, &cl));
	wrap_roundtrip();
	assert_ok(p11->C_Finalize(NULL));
	assert_true(h_log_contains(&env, "unsealed"));
	assert_true(h_log_contains(&env, "access token from service-account"));
	assert_false(h_log_contains(&env, "ya29.")); /* the emulator's access tokens */
	assert_false(h_log_contains(&env, "Bearer"));
	assert_false(h_log_contains(&env, "assertion="));
	assert_false(h_log_contains(&env, "eyJhbGci")); /* a JWT: base64url of {"alg" */
	assert_false(h_log_contains(&env, "PRIVATE KEY"));
	char *pk = file_field(gcp("service_account_file"), "private_key");
	assert_non_null(pk);
	char chunk[41];
	snprintf(chunk, sizeof(chunk), "%s", pk + 100); /* inside the key's base64 */
	assert_false(h_log_contains(&env, chunk));
	free(pk);
	char *rt = file_field(gcp("authorized_user_file"), "refresh_token");
	char *cs = file_field(gcp("authorized_user_file"), "client_secret");
	assert_false(h_log_contains(&env, rt));
	assert_false(h_log_contains(&env, cs));
	free(rt);
	free(cs);
	assert_false(h_log_contains(&env, USER_PIN "\n"));
	assert_ok(h_initialize(&env));
}

/* The same for the other sources, in one log. */
static void test_no_secret_in_log_user_and_metadata(void **state)
{
	wrap_roundtrip();
	assert_ok(p11->C_Finalize(NULL));
	char *rt = file_field(gcp("authorized_user_file"), "refresh_token");
	char *cs = file_field(gcp("authorized_user_file"), "client_secret");
	assert_false(h_log_contains(&env, rt));
	assert_false(h_log_contains(&env, cs));
	assert_false(h_log_contains(&env, "ya29."));
	assert_false(h_log_contains(&env, "Bearer"));
	free(rt);
	free(cs);
	assert_ok(h_initialize(&env));
}

int main(void)
{
	if (access("/usr/bin/python3", X_OK) != 0) {
		printf("1..0 # SKIP /usr/bin/python3 is needed for the emulator\n");
		return SKIP_RETURN_CODE;
	}
	const struct CMUnitTest tests[] = {
		H_TEST_STATE(cloud_token_survives_restart, setup, teardown, &GCP_E2E),
		cmocka_unit_test_setup_teardown(test_blobs_interoperate_with_sdk, setup, teardown),
		cmocka_unit_test_setup_teardown(test_disable_then_enable, setup, teardown),
		cmocka_unit_test_setup_teardown(test_kms_object_follows_its_own_key, setup_own_seal,
						teardown),
		cmocka_unit_test_setup_teardown(test_destroy_fails, setup_destroy, teardown),
		cmocka_unit_test_setup_teardown(test_rotation_keeps_old_blobs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_corrupt_crc32c_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_retries_and_throttling, setup, teardown),
		H_TEST_STATE(cloud_threads_do_not_serialize, setup, teardown, &GCP_E2E),
		cmocka_unit_test_setup_teardown(test_metadata_server_credentials, setup_metadata,
						teardown_metadata),
		cmocka_unit_test_setup_teardown(test_metadata_host_from_config,
						setup_metadata_config, teardown),
		cmocka_unit_test_setup_teardown(test_authorized_user_credentials,
						setup_authorized_user, teardown),
		cmocka_unit_test_setup_teardown(test_gcloud_well_known_file, setup_gcloud_file,
						teardown),
		cmocka_unit_test_setup_teardown(test_self_signed_jwt, setup_self_signed, teardown),
		cmocka_unit_test_setup_teardown(test_adc_environment_variable, setup_adc_env,
						teardown_adc_env),
		cmocka_unit_test_setup_teardown(test_revoked_credentials, setup, teardown),
		H_TEST_STATE(cloud_unreachable_within_grace, setup, teardown, &GCP_E2E),
		H_TEST_STATE(cloud_unreachable_fails_closed, setup_no_grace, teardown, &GCP_E2E),
		cmocka_unit_test_setup_teardown(test_revoked_while_in_use, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_secret_in_log, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_secret_in_log_user_and_metadata,
						setup_gcloud_file, teardown),
	};
	return cmocka_run_group_tests_name("gcp", tests, start_emulator, stop_emulator);
}
