/* SPDX-License-Identifier: Apache-2.0 */
/*
 * KMS signing keys on AWS KMS, Azure Key Vault and Google Cloud KMS
 * (docs/SIGNING.md), end to end through the exported API against the KMS
 * emulator over HTTPS; the cloud is argv[1] (aws, azure, gcp). Keys are
 * made with the cloud's official SDK (emuctl_sign.py), and every signature
 * the module makes is checked by the SDK's own verify (AWS, Azure) and by
 * python3-cryptography against the public key the SDK reads, besides
 * sign_suite.c's checks (C_Verify, OpenSSL against CKA_PUBLIC_KEY_INFO):
 *
 *  - RSA 2048 (PKCS #1 v1.5 and PSS), EC P-256 and P-384 key pairs, each
 *    mechanism signing or refused as the KMS key's algorithms decide, one
 *    KMS call per signature and none for length queries;
 *  - the public key equals the SDK's, read once per process;
 *  - the role: a key the KMS says cannot sign, declared "sign", permits
 *    nothing; a signing key's role needs no declaration;
 *  - a disabled key (version): C_Sign answers CKR_DEVICE_ERROR with
 *    ulDeviceError P11KMS_DEVERR_KEY_DISABLED and a log line, verification
 *    goes on (it is local); enabled again, signing is back.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "emu.h"
#include "harness.h"
#include "sign_suite.h"

#define sign_ctl(...) emu_ctl("emuctl_sign.py", __VA_ARGS__)

static const char *cloud;
static h_env env;
static CK_SESSION_HANDLE S;

/* The keys, by label: the id the configuration names, and what the
 * cloud's key runs. */
typedef struct ckey {
	const char *label;
	char id[400];
	bool ec;
	unsigned algs;
} ckey;

static ckey keys[] = {
	{"rsa", "", false, SA_RSA_ALL},
	{"ec256", "", true, SA_ECDSA_256},
	{"ec384", "", true, SA_ECDSA_384},
	{"pss", "", false, SA_PSS_256}, /* GCP: one algorithm per key */
	{"dec", "", false, 0},          /* decrypts only, declared "sign" */
	{"dis", "", true, SA_ECDSA_256}, /* disabled and enabled again */
};
#define NKEYS (sizeof(keys) / sizeof(keys[0]))

static ckey *key(const char *label)
{
	for (size_t i = 0; i < NKEYS; i++)
		if (strcmp(keys[i].label, label) == 0)
			return &keys[i];
	fail_msg("no key %s", label);
	return NULL;
}

static bool is(const char *c)
{
	return strcmp(cloud, c) == 0;
}

/* Make the keys with the cloud's SDK. */
static void make_keys(void)
{
	if (is("aws")) {
		emu_ctl_line(key("rsa")->id, 400, "emuctl_sign.py", "create aws RSA_2048 alias/s-rsa");
		emu_ctl_line(key("ec256")->id, 400, "emuctl_sign.py",
			     "create aws ECC_NIST_P256 alias/s-ec256");
		emu_ctl_line(key("ec384")->id, 400, "emuctl_sign.py",
			     "create aws ECC_NIST_P384 alias/s-ec384");
		emu_ctl_line(key("pss")->id, 400, "emuctl_sign.py", "create aws RSA_3072 alias/s-pss");
		key("pss")->algs = SA_RSA_ALL;
		emu_ctl_line(key("dec")->id, 400, "emuctl.py",
			     "create-key RSA_2048 ENCRYPT_DECRYPT alias/s-dec");
		emu_ctl_line(key("dis")->id, 400, "emuctl_sign.py",
			     "create aws ECC_NIST_P256 alias/s-dis");
	} else if (is("azure")) {
		emu_ctl_line(key("rsa")->id, 400, "emuctl_sign.py", "create azure vault s-rsa RSA 2048");
		emu_ctl_line(key("ec256")->id, 400, "emuctl_sign.py",
			     "create azure vault s-ec256 EC P-256");
		emu_ctl_line(key("ec384")->id, 400, "emuctl_sign.py",
			     "create azure vault s-ec384 EC P-384");
		emu_ctl_line(key("pss")->id, 400, "emuctl_sign.py", "create azure vault s-pss RSA 3072");
		key("pss")->algs = SA_RSA_ALL;
		emu_ctl_line(key("dis")->id, 400, "emuctl_sign.py",
			     "create azure vault s-dis EC P-256");
	} else {
		emu_ctl_line(key("rsa")->id, 400, "emuctl_sign.py",
			     "create gcp s-rsa ASYMMETRIC_SIGN RSA_SIGN_PKCS1_2048_SHA256");
		key("rsa")->algs = SA_PKCS1_256;
		emu_ctl_line(key("ec256")->id, 400, "emuctl_sign.py",
			     "create gcp s-ec256 ASYMMETRIC_SIGN EC_SIGN_P256_SHA256");
		emu_ctl_line(key("ec384")->id, 400, "emuctl_sign.py",
			     "create gcp s-ec384 ASYMMETRIC_SIGN EC_SIGN_P384_SHA384");
		emu_ctl_line(key("pss")->id, 400, "emuctl_sign.py",
			     "create gcp s-pss ASYMMETRIC_SIGN RSA_SIGN_PSS_2048_SHA256");
		emu_ctl_line(key("dec")->id, 400, "emuctl_sign.py",
			     "create gcp s-dec ASYMMETRIC_DECRYPT RSA_DECRYPT_OAEP_2048_SHA256");
		emu_ctl_line(key("dis")->id, 400, "emuctl_sign.py",
			     "create gcp s-dis ASYMMETRIC_SIGN EC_SIGN_P256_SHA256");
	}
}

static int start_emulator(void **state)
{
	(void)state;
	h_load();
	static const char *const vars[] = {
		"AZURE_TENANT_ID", "AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET",
		"AZURE_CLIENT_CERTIFICATE_PATH", "AZURE_FEDERATED_TOKEN_FILE",
		"AZURE_AUTHORITY_HOST", "IDENTITY_ENDPOINT", "IDENTITY_HEADER",
		"GOOGLE_APPLICATION_CREDENTIALS", "CLOUDSDK_CONFIG", "GCE_METADATA_HOST",
		"AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_ENDPOINT_URL_KMS", "AWS_ENDPOINT_URL",
	};
	for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
		unsetenv(vars[i]);
	if (emu_start(cloud) != 0)
		return -1;
	if (is("aws")) {
		setenv("AWS_ACCESS_KEY_ID", emu_str("aws", "access_key_id"), 1);
		setenv("AWS_SECRET_ACCESS_KEY", emu_str("aws", "secret_access_key"), 1);
	}
	make_keys();
	return 0;
}

static int stop_emulator(void **state)
{
	(void)state;
	return emu_stop();
}

static const char *ca(void)
{
	return json_string_value(json_object_get(emu_info, "ca_bundle"));
}

static int setup(void **state)
{
	(void)state;
	h_env_new(&env, "required", "");
	char list[4096];
	size_t off = 0;
	for (size_t i = 0; i < NKEYS; i++) {
		if (!keys[i].id[0])
			continue;
		/* "dec" is declared "sign"; the others leave the role to the
		 * KMS, except Azure's RSA keys, which allow every operation
		 * and so need it said. */
		bool say = strcmp(keys[i].label, "dec") == 0 || (is("azure") && !keys[i].ec);
		/* Azure keys are configured by name (the vault is the
		 * provider's); the SDK driver takes the whole URL. */
		const char *id = keys[i].id;
		if (is("azure") && strstr(id, "/keys/"))
			id = strstr(id, "/keys/") + 6;
		off += (size_t)snprintf(list + off, sizeof(list) - off,
					"%s{\"id\": \"%s\", \"label\": \"%s\", \"type\": \"%s\"%s}",
					off ? ", " : "[", id, keys[i].label,
					keys[i].ec ? "ec" : "rsa", say ? ", \"usage\": \"sign\"" : "");
	}
	snprintf(list + off, sizeof(list) - off, "]");
	FILE *f = fopen(env.config, "w");
	assert_non_null(f);
	fprintf(f, "{ \"log\": {\"level\": \"trace\", \"destination\": \"%s\"},\n"
		   "  \"providers\": [ { \"name\": \"test\", \"type\": \"%s\",\n",
		env.log, cloud);
	if (is("aws")) {
		fprintf(f, "    \"region\": \"%s\", \"endpoint\": \"%s\", \"seal_with\": \"%s\",\n",
			emu_str("aws", "region"), emu_str("aws", "endpoint_url"),
			emu_str("aws", "alias"));
	} else if (is("azure")) {
		char secret[400];
		snprintf(secret, sizeof(secret), "%s/client-secret", env.dir);
		emu_ctl("emuctl_azure.py", "secret-file %s", secret);
		fprintf(f,
			"    \"vault_url\": \"%s\", \"tenant_id\": \"%s\", \"client_id\": \"%s\",\n"
			"    \"client_secret_file\": \"%s\", \"authority_host\": \"%s\",\n"
			"    \"seal_with\": \"p11kms-rsa\",\n",
			emu_str("azure", "vault_url"), emu_str("azure", "tenant_id"),
			emu_str("azure", "client_id"), secret, emu_str("azure", "authority_host"));
	} else {
		fprintf(f, "    \"endpoint\": \"%s\", \"credentials_file\": \"%s\",\n"
			   "    \"seal_with\": \"%s\",\n",
			emu_str("gcp", "endpoint_url"), emu_str("gcp", "service_account_file"),
			json_string_value(json_object_get(
				json_object_get(json_object_get(emu_info, "gcp"), "keys"),
				"symmetric")));
	}
	fprintf(f, "    \"ca_file\": \"%s\", \"store\": \"%s\", \"keys\": %s,\n"
		   "    \"revalidate_seconds\": 3600, \"offline_grace_seconds\": 3600 } ] }\n",
		ca(), env.store, list);
	fclose(f);
	emu_ctl("emuctl.py", "clear-faults");
	assert_ok(h_initialize(&env));
	h_init_token(&env);
	S = h_user_session(&env);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	if (getenv("P11KMS_TEST_DUMP_LOG"))
		h_dump_log(&env);
	p11->C_Finalize(NULL);
	h_env_free(&env);
	return 0;
}

/* --- the SDK's checks ------------------------------------------------------------ */

static const char *service(void)
{
	return is("azure") ? "azure-vault" : cloud;
}

static long sign_calls(void *arg)
{
	(void)arg;
	const char *op = is("aws") ? "Sign" : is("azure") ? "sign" : "AsymmetricSign";
	return emu_ctl_long("emuctl_sign.py", "count %s %s", service(), op);
}

/* emuctl_sign.py verify: the SDK and python3-cryptography, both. */
static bool sdk_check(void *arg, const char *alg, const uint8_t *dg, size_t dlen,
		      const uint8_t *sig, size_t siglen)
{
	const ckey *k = arg;
	char dp[400], sp[400], cmd[2048];
	h_env_path(&env, "digest.bin", dp, sizeof(dp));
	h_env_path(&env, "sig.bin", sp, sizeof(sp));
	h_write_file(dp, dg, dlen);
	h_write_file(sp, sig, siglen);
	snprintf(cmd, sizeof(cmd),
		 "/usr/bin/python3 %s/tests/integration/emuctl_sign.py %s verify %s '%s' %s %s %s",
		 getenv("P11KMS_SRC"), emu_dir, cloud, k->id, alg, dp, sp);
	int rc = system(cmd);
	if (rc == -1 || !WIFEXITED(rc) || WEXITSTATUS(rc) > 1)
		fail_msg("emuctl_sign.py verify could not check (status %d)", rc);
	return WEXITSTATUS(rc) == 0;
}

/* --- tests ----------------------------------------------------------------------- */

static void run_suite(const char *label)
{
	ckey *k = key(label);
	sign_key sk = {.label = label, .ec = k->ec, .algs = k->algs, .check = sdk_check,
		       .arg = k, .sign_calls = sign_calls};
	sign_suite_run(S, &sk);
}

static void test_rsa(void **state)
{
	(void)state;
	run_suite("rsa");
	run_suite("pss");
}

static void test_ec(void **state)
{
	(void)state;
	run_suite("ec256");
	run_suite("ec384");
}

/* The public key is the SDK's, and read once. */
static void test_public_key(void **state)
{
	(void)state;
	const char *op = is("aws") ? "GetPublicKey" : is("azure") ? "GetKey" : "GetPublicKey";
	for (size_t i = 0; i < 3; i++) {
		char pem[400];
		h_env_path(&env, "pub.pem", pem, sizeof(pem));
		sign_ctl("pubkey %s '%s' %s", cloud, keys[i].id, pem);
		FILE *f = fopen(pem, "r");
		assert_non_null(f);
		EVP_PKEY *want = PEM_read_PUBKEY(f, NULL, NULL, NULL);
		fclose(f);
		assert_non_null(want);
		CK_OBJECT_HANDLE priv, pub;
		sign_key_pair(S, keys[i].label, &priv, &pub);
		uint8_t spki[2048];
		CK_ATTRIBUTE a = {CKA_PUBLIC_KEY_INFO, spki, sizeof(spki)};
		long before = emu_ctl_long("emuctl_sign.py", "count %s %s", service(), op);
		assert_ok(p11->C_GetAttributeValue(S, pub, &a, 1));
		assert_ok(p11->C_GetAttributeValue(S, priv, &a, 1));
		/* known already (the suites ran) or read now: at most once */
		assert_true(emu_ctl_long("emuctl_sign.py", "count %s %s", service(), op) -
				    before <=
			    1);
		const unsigned char *p = spki;
		EVP_PKEY *got = d2i_PUBKEY(NULL, &p, (long)a.ulValueLen);
		assert_non_null(got);
		assert_int_equal(EVP_PKEY_eq(got, want), 1);
		EVP_PKEY_free(got);
		EVP_PKEY_free(want);
	}
}

/* A key that decrypts, declared "sign": the KMS's word wins. */
static void test_role_from_kms(void **state)
{
	(void)state;
	if (!key("dec")->id[0])
		return; /* Azure RSA keys allow both: no such key there */
	CK_OBJECT_HANDLE priv, pub;
	sign_key_pair(S, "dec", &priv, &pub);
	/* declared: shows until the KMS is asked, here for the modulus */
	assert_true(h_attr_ulong(S, pub, CKA_MODULUS_BITS) >= 2048);
	assert_false(h_attr_bool(S, priv, CKA_SIGN));
	CK_MECHANISM m = {CKM_SHA256_RSA_PKCS, NULL, 0};
	assert_rv(p11->C_SignInit(S, &m, priv), CKR_KEY_FUNCTION_NOT_PERMITTED);
	assert_true(h_log_contains(&env, "the KMS says it cannot sign"));
}

static void test_disabled(void **state)
{
	(void)state;
	CK_OBJECT_HANDLE priv, pub;
	sign_key_pair(S, "dis", &priv, &pub);
	CK_MECHANISM m = {CKM_ECDSA_SHA256, NULL, 0};
	uint8_t sig[128];
	CK_ULONG sl = sizeof(sig);
	assert_ok(p11->C_SignInit(S, &m, priv));
	assert_ok(p11->C_Sign(S, (CK_BYTE_PTR) "before", 6, sig, &sl));
	sign_ctl("version %s '%s' disable", cloud, key("dis")->id);
	uint8_t sig2[128];
	CK_ULONG sl2 = sizeof(sig2);
	assert_ok(p11->C_SignInit(S, &m, priv));
	assert_rv(p11->C_Sign(S, (CK_BYTE_PTR) "after", 5, sig2, &sl2), CKR_DEVICE_ERROR);
	assert_int_equal(h_deverr(S), P11KMS_DEVERR_KEY_DISABLED);
	assert_true(h_log_contains(&env, "KMS sign failed"));
	/* verification is local: it goes on */
	assert_ok(p11->C_VerifyInit(S, &m, pub));
	assert_ok(p11->C_Verify(S, (CK_BYTE_PTR) "before", 6, sig, sl));
	sign_ctl("version %s '%s' enable", cloud, key("dis")->id);
	sl2 = sizeof(sig2);
	assert_ok(p11->C_SignInit(S, &m, priv));
	assert_ok(p11->C_Sign(S, (CK_BYTE_PTR) "after", 5, sig2, &sl2));
}

/* A named version's public key is pinned in the token's store: a KMS
 * that later answers with another key for it is refused, in a new process
 * too. The pin is made to disagree here, as a KMS answering for another key
 * would. (AWS keys name no version: nothing is pinned there.) */
static void test_public_key_pinned(void **state)
{
	(void)state;
	CK_OBJECT_HANDLE priv, pub;
	sign_key_pair(S, "ec256", &priv, &pub);
	uint8_t spki[1024];
	CK_ATTRIBUTE a = {CKA_PUBLIC_KEY_INFO, spki, sizeof(spki)};
	assert_ok(p11->C_GetAttributeValue(S, pub, &a, 1));
	p11->C_Finalize(NULL);
	char cmd[1024];
	snprintf(cmd, sizeof(cmd),
		 "/usr/bin/python3 -c 'import sqlite3, sys; c = sqlite3.connect(sys.argv[1]); "
		 "n = c.execute(\"update meta set value = zeroblob(32) where name like "
		 "?\", (\"kmspub:%%\",)).rowcount; c.commit(); sys.exit(0 if n >= 1 else 1)' %s",
		 env.store);
	assert_int_equal(system(cmd), 0);
	assert_ok(h_initialize(&env));
	S = h_user_session(&env);
	sign_key_pair(S, "ec256", &priv, &pub);
	a.ulValueLen = sizeof(spki);
	assert_rv(p11->C_GetAttributeValue(S, pub, &a, 1), CKR_DEVICE_ERROR);
	assert_true(h_log_contains(&env, "is not the one it gave before"));
	CK_MECHANISM m = {CKM_ECDSA_SHA256, NULL, 0};
	assert_rv(p11->C_SignInit(S, &m, priv), CKR_DEVICE_ERROR);
}

int main(int argc, char **argv)
{
	if (argc != 2 || (strcmp(argv[1], "aws") && strcmp(argv[1], "azure") &&
			  strcmp(argv[1], "gcp"))) {
		fprintf(stderr, "usage: %s aws|azure|gcp\n", argv[0]);
		return 2;
	}
	cloud = argv[1];
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_rsa, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ec, setup, teardown),
		cmocka_unit_test_setup_teardown(test_public_key, setup, teardown),
		cmocka_unit_test_setup_teardown(test_role_from_kms, setup, teardown),
		cmocka_unit_test_setup_teardown(test_disabled, setup, teardown),
		cmocka_unit_test_setup_teardown(test_public_key_pinned, setup, teardown),
	};
	/* the last one pins versions, which AWS keys do not have */
	size_t n = sizeof(tests) / sizeof(tests[0]) - (is("aws") ? 1 : 0);
	return _cmocka_run_group_tests(cloud, tests, n, start_emulator, stop_emulator);
}
