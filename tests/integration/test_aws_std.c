/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Standard PKCS #11 mechanisms on AWS KMS keys (docs/REMOTE.md, docs/AWS.md),
 * end to end through the exported API against the KMS emulator over HTTPS,
 * with boto3 as the independent client:
 *
 *  - an asymmetric RSA ENCRYPT_DECRYPT key declared "rsa" shows as a KMS
 *    key object plus an RSA key pair; CKM_RSA_PKCS_OAEP (SHA-1 and SHA-256)
 *    wraps a local key with the public key and unwraps it with the private
 *    key, encrypts and decrypts, and interoperates with boto3 (Encrypt and
 *    Decrypt with EncryptionAlgorithm) both ways; CKA_MODULUS,
 *    CKA_PUBLIC_EXPONENT and CKA_MODULUS_BITS are the KMS key's;
 *  - tampered input, a disabled key, a symmetric key declared "rsa", the
 *    envelope mechanism on an RSA key, and length queries that cost no KMS
 *    call.
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

#include "emu.h"
#include "harness.h"
#include "oaep_suite.h"

#define aws(field) emu_str("aws", field)
#define emuctl(...) emu_ctl("emuctl.py", __VA_ARGS__)

static h_env env;
static CK_SESSION_HANDLE S;

/* RSA keys made for this test (aliases), and the emulator's symmetric key
 * declared "rsa" (it also seals the token). */
#define KEYS                                                                           \
	"[ {\"id\": \"alias/std-rsa\", \"label\": \"kek\", \"type\": \"rsa\"},\n"      \
	"  {\"id\": \"alias/std-rsa3k\", \"label\": \"rsa3k\", \"type\": \"rsa\"},\n"  \
	"  {\"id\": \"alias/std-dis\", \"label\": \"dis\", \"type\": \"rsa\"},\n"      \
	"  {\"id\": \"alias/p11kms-test\", \"label\": \"sym-said-rsa\", \"type\": \"rsa\"} ]"

static int start_emulator(void **state)
{
	(void)state;
	h_load();
	if (emu_start("awsstd") != 0)
		return -1;
	setenv("AWS_ACCESS_KEY_ID", aws("access_key_id"), 1);
	setenv("AWS_SECRET_ACCESS_KEY", aws("secret_access_key"), 1);
	unsetenv("AWS_SESSION_TOKEN");
	unsetenv("AWS_PROFILE");
	unsetenv("AWS_ENDPOINT_URL_KMS");
	unsetenv("AWS_ENDPOINT_URL");
	emuctl("create-key RSA_2048 ENCRYPT_DECRYPT alias/std-rsa");
	emuctl("create-key RSA_3072 ENCRYPT_DECRYPT alias/std-rsa3k");
	emuctl("create-key RSA_2048 ENCRYPT_DECRYPT alias/std-dis");
	return 0;
}

static int stop_emulator(void **state)
{
	(void)state;
	return emu_stop();
}

static int setup_keys(const char *keys)
{
	h_env_new(&env, "required", "");
	FILE *f = fopen(env.config, "w");
	assert_non_null(f);
	fprintf(f,
		"{ \"log\": {\"level\": \"trace\", \"destination\": \"%s\"},\n"
		"  \"providers\": [ { \"name\": \"test\", \"type\": \"aws\",\n"
		"    \"region\": \"%s\", \"endpoint\": \"%s\", \"ca_file\": \"%s\",\n"
		"    \"store\": \"%s\", \"seal_with\": \"%s\",\n"
		"    \"keys\": %s,\n"
		"    \"revalidate_seconds\": 3600, \"offline_grace_seconds\": 3600 } ] }\n",
		env.log, aws("region"), aws("endpoint_url"),
		json_string_value(json_object_get(emu_info, "ca_bundle")), env.store,
		aws("alias"), keys);
	fclose(f);
	emuctl("clear-faults");
	emuctl("enable aws alias/std-dis");
	assert_ok(h_initialize(&env));
	h_init_token(&env);
	S = h_user_session(&env);
	return 0;
}

static int setup(void **state)
{
	(void)state;
	return setup_keys(KEYS);
}

/* The same keys in the data role ("usage": "data"). */
static int setup_data(void **state)
{
	(void)state;
	return setup_keys(h_usage_data(KEYS));
}

static int teardown(void **state)
{
	(void)state;
	p11->C_Finalize(NULL);
	h_env_free(&env);
	S = 0;
	return 0;
}

/* --- helpers ------------------------------------------------------------------ */

static long count(const char *op)
{
	return emu_ctl_long("emuctl.py", "count aws %s", op);
}

static long count_all(void)
{
	return emu_ctl_long("emuctl.py", "count-all aws");
}

/* boto3 Encrypt/Decrypt (OP "encrypt" or "decrypt") with KeyId KEY and
 * EncryptionAlgorithm ALG, from file IN to file OUT in the env's folder. */
static void boto3(const char *op, const char *key, const char *alg, const char *in,
		  const char *out)
{
	char ip[400], opath[400];
	h_env_path(&env, in, ip, sizeof(ip));
	h_env_path(&env, out, opath, sizeof(opath));
	emuctl("boto3-rsa-%s %s %s %s %s", op, key, alg, ip, opath);
}

/* --- objects -------------------------------------------------------------------- */

static void test_objects(void **state)
{
	(void)state;
	emuctl("reset-counters");
	CK_OBJECT_HANDLE env_obj = h_find_obj(S, CKO_SECRET_KEY, "kek-envelope");
	CK_OBJECT_HANDLE pub = h_find_obj(S, CKO_PUBLIC_KEY, "kek");
	CK_OBJECT_HANDLE priv = h_find_obj(S, CKO_PRIVATE_KEY, "kek");
	assert_int_equal(h_attr_ulong(S, env_obj, CKA_KEY_TYPE), CKK_P11KMS_KMS);
	assert_int_equal(h_attr_ulong(S, pub, CKA_KEY_TYPE), CKK_RSA);
	assert_int_equal(h_attr_ulong(S, priv, CKA_KEY_TYPE), CKK_RSA);
	CK_BBOOL b = CK_TRUE;
	CK_ATTRIBUTE ex = {CKA_EXTRACTABLE, &b, 1};
	assert_ok(p11->C_GetAttributeValue(S, priv, &ex, 1));
	assert_false(b);
	/* OAEP is offered on the AWS slot. */
	CK_MECHANISM_TYPE list[256];
	CK_ULONG n = 256;
	bool found = false;
	assert_ok(p11->C_GetMechanismList(env.slot, list, &n));
	for (CK_ULONG i = 0; i < n; i++)
		found |= list[i] == CKM_RSA_PKCS_OAEP;
	assert_true(found);
	/* None of this asked the KMS anything. */
	assert_int_equal(count_all(), 0);
}

/* --- RSA-OAEP --------------------------------------------------------------------- */

static long aws_count(const char *kind)
{
	static const char *const ops[][2] = {{"public", "GetPublicKey"}, {"wrap", "Encrypt"},
					     {"unwrap", "Decrypt"}, {"encrypt", "Encrypt"},
					     {"decrypt", "Decrypt"}};
	if (!kind)
		return count_all();
	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
		if (strcmp(kind, ops[i][0]) == 0)
			return count(ops[i][1]);
	fail_msg("unknown call kind %s", kind);
	return -1;
}

static void aws_reset(void)
{
	emuctl("reset-counters");
}

static void aws_pubkey(char *line, size_t n)
{
	emu_ctl_line(line, n, "emuctl.py", "pubkey alias/std-rsa");
}

/* AWS has Encrypt and Decrypt only: a wrapped key is encrypted data. */
static void aws_sdk(const char *op, bool sha256, const char *in, const char *out)
{
	bool enc = strcmp(op, "wrap") == 0 || strcmp(op, "encrypt") == 0;
	boto3(enc ? "encrypt" : "decrypt", "alias/std-rsa",
	      sha256 ? "RSAES_OAEP_SHA_256" : "RSAES_OAEP_SHA_1", in, out);
}

static void aws_set_enabled(bool enabled)
{
	if (enabled)
		emuctl("enable aws alias/std-dis");
	else
		emuctl("disable aws alias/std-dis");
}

static const oaep_cloud AWS = {&env, &S, aws_count, aws_reset, aws_pubkey, aws_sdk,
				aws_set_enabled};

/* The emulator's symmetric key declared "rsa": it has no public key and
 * runs no OAEP; the module says the key type is wrong. */
static void test_symmetric_declared_rsa(void **state)
{
	(void)state;
	CK_OBJECT_HANDLE pub = h_find_obj(S, CKO_PUBLIC_KEY, "sym-said-rsa");
	CK_OBJECT_HANDLE priv = h_find_obj(S, CKO_PRIVATE_KEY, "sym-said-rsa");
	CK_OBJECT_HANDLE local = h_aes_key(S, 32, CK_FALSE, "local");
	CK_RSA_PKCS_OAEP_PARAMS p;
	CK_MECHANISM m = h_oaep(&p, true);
	uint8_t blob[512];
	CK_ULONG bl = sizeof(blob);
	assert_rv(p11->C_WrapKey(S, &m, pub, local, blob, &bl), CKR_WRAPPING_KEY_TYPE_INCONSISTENT);
	assert_int_equal(h_deverr(S), P11KMS_DEVERR_KEY_TYPE);
	CK_OBJECT_HANDLE back;
	memset(blob, 1, 256);
	assert_rv(h_unwrap_as(S, &m, priv, blob, 256, CKK_AES, &back),
		  CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT);
	assert_int_equal(h_deverr(S), P11KMS_DEVERR_KEY_TYPE);
	CK_ULONG bits = 0;
	CK_ATTRIBUTE a = {CKA_MODULUS_BITS, &bits, sizeof(bits)};
	assert_rv(p11->C_GetAttributeValue(S, pub, &a, 1), CKR_DEVICE_ERROR);
	assert_int_equal(h_deverr(S), P11KMS_DEVERR_KEY_TYPE);
	assert_true(h_log_contains(&env, "UnsupportedOperationException"));
	/* Its envelope object still works: it is a symmetric key. */
	CK_OBJECT_HANDLE kms = h_find_obj(S, CKO_SECRET_KEY, "sym-said-rsa-envelope");
	CK_MECHANISM env_m = {CKM_P11KMS_KMS_ENVELOPE, NULL, 0};
	uint8_t eblob[4096];
	CK_ULONG el = sizeof(eblob);
	assert_ok(p11->C_WrapKey(S, &env_m, kms, local, eblob, &el));
}

/* The envelope object of an RSA key: AWS cannot run SYMMETRIC_DEFAULT on
 * it; a key type mismatch, not a denial. */
static void test_envelope_on_rsa_key(void **state)
{
	(void)state;
	CK_OBJECT_HANDLE kms = h_find_obj(S, CKO_SECRET_KEY, "kek-envelope");
	CK_OBJECT_HANDLE local = h_aes_key(S, 32, CK_FALSE, "local");
	CK_MECHANISM m = {CKM_P11KMS_KMS_ENVELOPE, NULL, 0};
	uint8_t blob[4096];
	CK_ULONG bl = sizeof(blob);
	assert_rv(p11->C_WrapKey(S, &m, kms, local, blob, &bl), CKR_WRAPPING_KEY_TYPE_INCONSISTENT);
	assert_int_equal(h_deverr(S), P11KMS_DEVERR_KEY_TYPE);
	assert_true(h_log_contains(&env, "InvalidKeyUsageException"));
}

int main(void)
{
	if (access("/usr/bin/python3", X_OK) != 0) {
		printf("1..0 # SKIP /usr/bin/python3 is needed for the emulator\n");
		return SKIP_RETURN_CODE;
	}
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_objects, setup, teardown),
		H_TEST_STATE(oaep_public_attributes, setup, teardown, &AWS),
		H_TEST_STATE(oaep_sha1_wrap_unwrap, setup, teardown, &AWS),
		H_TEST_STATE(oaep_sha256_wrap_unwrap, setup, teardown, &AWS),
		H_TEST_STATE(oaep_encrypt_decrypt, setup_data, teardown, &AWS),
		H_TEST_STATE(oaep_sdk_interop, setup, teardown, &AWS),
		H_TEST_STATE(oaep_sdk_interop, setup_data, teardown, &AWS),
		H_TEST_STATE(oaep_tampered, setup, teardown, &AWS),
		H_TEST_STATE(oaep_tampered, setup_data, teardown, &AWS),
		H_TEST_STATE(oaep_one_role, setup, teardown, &AWS),
		H_TEST_STATE(oaep_one_role, setup_data, teardown, &AWS),
		H_TEST_STATE(oaep_disabled, setup, teardown, &AWS),
		H_TEST_STATE(oaep_disabled, setup_data, teardown, &AWS),
		cmocka_unit_test_setup_teardown(test_symmetric_declared_rsa, setup, teardown),
		cmocka_unit_test_setup_teardown(test_envelope_on_rsa_key, setup, teardown),
	};
	return cmocka_run_group_tests_name("aws_std", tests, start_emulator, stop_emulator);
}
