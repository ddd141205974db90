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

static int setup(void **state)
{
	(void)state;
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
		aws("alias"), KEYS);
	fclose(f);
	emuctl("clear-faults");
	emuctl("enable aws alias/std-dis");
	assert_ok(h_initialize(&env));
	h_init_token(&env);
	S = h_user_session(&env);
	return 0;
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
	CK_OBJECT_HANDLE env_obj = h_find_obj(S, CKO_SECRET_KEY, "kek");
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

/* The public numbers are the KMS key's (GetPublicKey), fetched once. */
static void test_rsa_public_attributes(void **state)
{
	(void)state;
	char line[2048];
	emu_ctl_line(line, sizeof(line), "emuctl.py", "pubkey alias/std-rsa");
	char nhex[1100], ehex[32], pad[1101];
	unsigned bits = 0;
	assert_int_equal(sscanf(line, "%1099s %31s %u", nhex, ehex, &bits), 3);
	assert_int_equal(bits, 2048);
	uint8_t nwant[512], ewant[8];
	snprintf(pad, sizeof(pad), "%s%s", strlen(nhex) % 2 ? "0" : "", nhex);
	size_t nl = h_unhex(pad, nwant, sizeof(nwant));
	snprintf(pad, sizeof(pad), "%s%s", strlen(ehex) % 2 ? "0" : "", ehex);
	size_t el = h_unhex(pad, ewant, sizeof(ewant));
	assert_int_equal(nl, 256);
	assert_int_equal(el, 3);

	emuctl("reset-counters");
	CK_OBJECT_HANDLE keys[] = {h_find_obj(S, CKO_PUBLIC_KEY, "kek"),
				   h_find_obj(S, CKO_PRIVATE_KEY, "kek")};
	for (int i = 0; i < 2; i++) {
		uint8_t n[512], e[8];
		CK_ULONG mb = 0;
		CK_ATTRIBUTE q[] = {{CKA_MODULUS, NULL, 0}, {CKA_PUBLIC_EXPONENT, NULL, 0}};
		assert_ok(p11->C_GetAttributeValue(S, keys[i], q, 2));
		assert_int_equal(q[0].ulValueLen, nl);
		assert_int_equal(q[1].ulValueLen, el);
		CK_ATTRIBUTE a[] = {{CKA_MODULUS, n, sizeof(n)},
				    {CKA_PUBLIC_EXPONENT, e, sizeof(e)},
				    {CKA_MODULUS_BITS, &mb, sizeof(mb)}};
		assert_ok(p11->C_GetAttributeValue(S, keys[i], a, i == 0 ? 3 : 2));
		assert_memory_equal(n, nwant, nl);
		assert_memory_equal(e, ewant, el);
		if (i == 0)
			assert_int_equal(mb, bits);
	}
	/* One GetPublicKey for all of it, nothing else. */
	assert_int_equal(count("GetPublicKey"), 1);
	assert_int_equal(count_all(), 1);

	/* A 3072-bit key: its size, and the length of what OAEP makes, with
	 * no Encrypt for the length query. */
	CK_OBJECT_HANDLE pub3 = h_find_obj(S, CKO_PUBLIC_KEY, "rsa3k");
	assert_int_equal(h_attr_ulong(S, pub3, CKA_MODULUS_BITS), 3072);
	CK_RSA_PKCS_OAEP_PARAMS p;
	CK_MECHANISM m = h_oaep(&p, true);
	CK_OBJECT_HANDLE local = h_aes_key(S, 32, CK_FALSE, "local");
	emuctl("reset-counters");
	CK_ULONG bl = 0;
	assert_ok(p11->C_WrapKey(S, &m, pub3, local, NULL, &bl));
	assert_int_equal(bl, 384);
	assert_int_equal(count_all(), 0);
}

/* C_WrapKey with the public key, C_UnwrapKey with the private key: the
 * same AES key comes back. The length query costs no KMS call. */
static void oaep_roundtrip(bool sha256)
{
	CK_OBJECT_HANDLE pub = h_find_obj(S, CKO_PUBLIC_KEY, "kek");
	CK_OBJECT_HANDLE priv = h_find_obj(S, CKO_PRIVATE_KEY, "kek");
	CK_OBJECT_HANDLE local = h_aes_key(S, 32, CK_FALSE, "local");
	CK_RSA_PKCS_OAEP_PARAMS p;
	CK_MECHANISM m = h_oaep(&p, sha256);
	assert_int_equal(h_attr_ulong(S, pub, CKA_MODULUS_BITS), 2048);
	emuctl("reset-counters");
	uint8_t blob[512];
	CK_ULONG bl = 0;
	assert_ok(p11->C_WrapKey(S, &m, pub, local, NULL, &bl));
	assert_int_equal(bl, 256);
	assert_int_equal(count_all(), 0);
	bl = 10;
	assert_rv(p11->C_WrapKey(S, &m, pub, local, blob, &bl), CKR_BUFFER_TOO_SMALL);
	assert_int_equal(bl, 256);
	assert_int_equal(count_all(), 0);
	bl = sizeof(blob);
	assert_ok(p11->C_WrapKey(S, &m, pub, local, blob, &bl));
	assert_int_equal(bl, 256);
	assert_int_equal(count("Encrypt"), 1);
	CK_OBJECT_HANDLE back;
	assert_ok(h_unwrap_as(S, &m, priv, blob, bl, CKK_AES, &back));
	assert_int_equal(count("Decrypt"), 1);
	assert_int_equal(h_attr_ulong(S, back, CKA_VALUE_LEN), 32);
	h_same_aes_key(S, local, back);
	/* The other hash does not open it. */
	CK_RSA_PKCS_OAEP_PARAMS p2;
	CK_MECHANISM m2 = h_oaep(&p2, !sha256);
	assert_rv(h_unwrap_as(S, &m2, priv, blob, bl, CKK_AES, &back), CKR_WRAPPED_KEY_INVALID);
}

static void test_oaep_sha1_wrap_unwrap(void **state)
{
	(void)state;
	oaep_roundtrip(false);
}

static void test_oaep_sha256_wrap_unwrap(void **state)
{
	(void)state;
	oaep_roundtrip(true);
}

static void test_oaep_encrypt_decrypt(void **state)
{
	(void)state;
	CK_OBJECT_HANDLE pub = h_find_obj(S, CKO_PUBLIC_KEY, "kek");
	CK_OBJECT_HANDLE priv = h_find_obj(S, CKO_PRIVATE_KEY, "kek");
	for (int h = 0; h < 2; h++) {
		CK_RSA_PKCS_OAEP_PARAMS p;
		CK_MECHANISM m = h_oaep(&p, h == 1);
		uint8_t pt[40], ct[512], out[512];
		h_fill(pt, sizeof(pt), (uint8_t)(1 + h));
		assert_int_equal(h_attr_ulong(S, pub, CKA_MODULUS_BITS), 2048);
		emuctl("reset-counters");
		assert_ok(p11->C_EncryptInit(S, &m, pub));
		CK_ULONG cl = 0;
		assert_ok(p11->C_Encrypt(S, pt, sizeof(pt), NULL, &cl));
		assert_int_equal(cl, 256);
		assert_int_equal(count_all(), 0);
		cl = sizeof(ct);
		assert_ok(p11->C_Encrypt(S, pt, sizeof(pt), ct, &cl));
		assert_int_equal(cl, 256);
		assert_int_equal(count("Encrypt"), 1);
		assert_ok(p11->C_DecryptInit(S, &m, priv));
		CK_ULONG ol = sizeof(out);
		assert_ok(p11->C_Decrypt(S, ct, cl, out, &ol));
		assert_int_equal(ol, sizeof(pt));
		assert_memory_equal(out, pt, sizeof(pt));
		assert_int_equal(count("Decrypt"), 1);
	}
	/* The public key does not decrypt, the private key does not encrypt. */
	CK_RSA_PKCS_OAEP_PARAMS p;
	CK_MECHANISM m = h_oaep(&p, true);
	assert_rv(p11->C_DecryptInit(S, &m, pub), CKR_KEY_FUNCTION_NOT_PERMITTED);
	assert_rv(p11->C_EncryptInit(S, &m, priv), CKR_KEY_FUNCTION_NOT_PERMITTED);
}

/* The module's results open with boto3 and boto3's in the module. */
static void test_oaep_boto3_interop(void **state)
{
	(void)state;
	CK_OBJECT_HANDLE pub = h_find_obj(S, CKO_PUBLIC_KEY, "kek");
	CK_OBJECT_HANDLE priv = h_find_obj(S, CKO_PRIVATE_KEY, "kek");
	static const struct {
		bool sha256;
		const char *alg;
	} hs[] = {{false, "RSAES_OAEP_SHA_1"}, {true, "RSAES_OAEP_SHA_256"}};
	for (int i = 0; i < 2; i++) {
		CK_RSA_PKCS_OAEP_PARAMS p;
		CK_MECHANISM m = h_oaep(&p, hs[i].sha256);
		uint8_t k1[32], k2[32], blob[512], out[512];
		h_fill(k1, 32, (uint8_t)(0x10 + i));
		h_fill(k2, 32, (uint8_t)(0x90 + i));
		CK_OBJECT_HANDLE local = h_import_key(S, CKK_AES, k1, 32);
		/* Module wraps, boto3 decrypts. */
		CK_ULONG bl = sizeof(blob);
		assert_ok(p11->C_WrapKey(S, &m, pub, local, blob, &bl));
		h_env_write(&env, "blob.bin", blob, bl);
		boto3("decrypt", "alias/std-rsa", hs[i].alg, "blob.bin", "out.bin");
		assert_int_equal(h_env_read(&env, "out.bin", out, sizeof(out)), 32);
		assert_memory_equal(out, k1, 32);
		/* boto3 encrypts a key, the module unwraps it. */
		h_env_write(&env, "k2.bin", k2, 32);
		boto3("encrypt", "alias/std-rsa", hs[i].alg, "k2.bin", "blob2.bin");
		bl = h_env_read(&env, "blob2.bin", blob, sizeof(blob));
		assert_int_equal(bl, 256);
		h_unwrap_expect(S, &m, priv, blob, bl, CKK_AES, k2, 32);
		/* Module encrypts, boto3 decrypts. */
		uint8_t pt[50], ct[512];
		h_fill(pt, sizeof(pt), (uint8_t)(0x50 + i));
		CK_ULONG cl = sizeof(ct);
		assert_ok(p11->C_EncryptInit(S, &m, pub));
		assert_ok(p11->C_Encrypt(S, pt, sizeof(pt), ct, &cl));
		h_env_write(&env, "ct.bin", ct, cl);
		boto3("decrypt", "alias/std-rsa", hs[i].alg, "ct.bin", "pt.bin");
		assert_int_equal(h_env_read(&env, "pt.bin", out, sizeof(out)), sizeof(pt));
		assert_memory_equal(out, pt, sizeof(pt));
		/* boto3 encrypts data, the module decrypts. */
		h_env_write(&env, "pt2.bin", k2, 20);
		boto3("encrypt", "alias/std-rsa", hs[i].alg, "pt2.bin", "ct2.bin");
		cl = h_env_read(&env, "ct2.bin", ct, sizeof(ct));
		CK_ULONG ol = sizeof(out);
		assert_ok(p11->C_DecryptInit(S, &m, priv));
		assert_ok(p11->C_Decrypt(S, ct, cl, out, &ol));
		assert_int_equal(ol, 20);
		assert_memory_equal(out, k2, 20);
	}
}

static void test_oaep_tampered(void **state)
{
	(void)state;
	CK_OBJECT_HANDLE pub = h_find_obj(S, CKO_PUBLIC_KEY, "kek");
	CK_OBJECT_HANDLE priv = h_find_obj(S, CKO_PRIVATE_KEY, "kek");
	CK_RSA_PKCS_OAEP_PARAMS p;
	CK_MECHANISM m = h_oaep(&p, true);
	CK_OBJECT_HANDLE local = h_aes_key(S, 32, CK_FALSE, "local");
	uint8_t blob[512], ct[512], out[512];
	CK_ULONG bl = sizeof(blob), cl = sizeof(ct), ol = sizeof(out);
	assert_ok(p11->C_WrapKey(S, &m, pub, local, blob, &bl));
	blob[100] ^= 0x01;
	CK_OBJECT_HANDLE back;
	assert_rv(h_unwrap_as(S, &m, priv, blob, bl, CKK_AES, &back), CKR_WRAPPED_KEY_INVALID);
	assert_int_equal(h_deverr(S), P11KMS_DEVERR_INVALID_CIPHERTEXT);
	assert_ok(p11->C_EncryptInit(S, &m, pub));
	assert_ok(p11->C_Encrypt(S, (CK_BYTE_PTR) "data", 4, ct, &cl));
	ct[cl - 1] ^= 0x80;
	assert_ok(p11->C_DecryptInit(S, &m, priv));
	assert_rv(p11->C_Decrypt(S, ct, cl, out, &ol), CKR_ENCRYPTED_DATA_INVALID);
	assert_int_equal(h_deverr(S), P11KMS_DEVERR_INVALID_CIPHERTEXT);
}

/* A disabled key: the KMS refuses, the session says why. */
static void test_oaep_disabled(void **state)
{
	(void)state;
	CK_OBJECT_HANDLE pub = h_find_obj(S, CKO_PUBLIC_KEY, "dis");
	CK_OBJECT_HANDLE priv = h_find_obj(S, CKO_PRIVATE_KEY, "dis");
	CK_RSA_PKCS_OAEP_PARAMS p;
	CK_MECHANISM m = h_oaep(&p, false);
	CK_OBJECT_HANDLE local = h_aes_key(S, 32, CK_FALSE, "local");
	uint8_t blob[512];
	CK_ULONG bl = sizeof(blob);
	assert_ok(p11->C_WrapKey(S, &m, pub, local, blob, &bl));
	emuctl("disable aws alias/std-dis");
	uint8_t b2[512];
	CK_ULONG l2 = sizeof(b2);
	assert_rv(p11->C_WrapKey(S, &m, pub, local, b2, &l2), CKR_DEVICE_ERROR);
	assert_int_equal(h_deverr(S), P11KMS_DEVERR_KEY_DISABLED);
	CK_OBJECT_HANDLE back;
	assert_rv(h_unwrap_as(S, &m, priv, blob, bl, CKK_AES, &back), CKR_DEVICE_ERROR);
	assert_int_equal(h_deverr(S), P11KMS_DEVERR_KEY_DISABLED);
	uint8_t ct[512];
	CK_ULONG cl = sizeof(ct);
	assert_ok(p11->C_EncryptInit(S, &m, pub));
	assert_rv(p11->C_Encrypt(S, (CK_BYTE_PTR) "x", 1, ct, &cl), CKR_DEVICE_ERROR);
	assert_int_equal(h_deverr(S), P11KMS_DEVERR_KEY_DISABLED);
	emuctl("enable aws alias/std-dis");
	assert_ok(h_unwrap_as(S, &m, priv, blob, bl, CKK_AES, &back));
	h_same_aes_key(S, local, back);
}

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
	CK_OBJECT_HANDLE kms = h_find_obj(S, CKO_SECRET_KEY, "sym-said-rsa");
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
	CK_OBJECT_HANDLE kms = h_find_obj(S, CKO_SECRET_KEY, "kek");
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
		return 0;
	}
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_objects, setup, teardown),
		cmocka_unit_test_setup_teardown(test_rsa_public_attributes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_oaep_sha1_wrap_unwrap, setup, teardown),
		cmocka_unit_test_setup_teardown(test_oaep_sha256_wrap_unwrap, setup, teardown),
		cmocka_unit_test_setup_teardown(test_oaep_encrypt_decrypt, setup, teardown),
		cmocka_unit_test_setup_teardown(test_oaep_boto3_interop, setup, teardown),
		cmocka_unit_test_setup_teardown(test_oaep_tampered, setup, teardown),
		cmocka_unit_test_setup_teardown(test_oaep_disabled, setup, teardown),
		cmocka_unit_test_setup_teardown(test_symmetric_declared_rsa, setup, teardown),
		cmocka_unit_test_setup_teardown(test_envelope_on_rsa_key, setup, teardown),
	};
	return cmocka_run_group_tests_name("aws_std", tests, start_emulator, stop_emulator);
}
