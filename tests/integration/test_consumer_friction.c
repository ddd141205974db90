/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What real consumers ran into, through the exported API:
 *  - Java's SunPKCS11 first offers CK_GCM_PARAMS in the v2.30 layout (40
 *    bytes on LP64, no ulIvBits): taken, on local and KMS AES keys, for
 *    C_Encrypt/C_Decrypt and C_WrapKey/C_UnwrapKey, and giving the bytes
 *    the v3.0 layout gives; a size of neither layout is refused;
 *  - consumer probing (attributes a class does not have, sensitive values,
 *    short buffers, mechanisms the slot does not offer, NSS's seed) writes
 *    nothing at log level info, while a real failure still does;
 *  - the vendor envelope is listed only on slots with KMS key objects.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

/* PKCS #11 v2.30's CK_GCM_PARAMS, as SunPKCS11 lays it out. */
typedef struct {
	CK_BYTE_PTR pIv;
	CK_ULONG ulIvLen;
	CK_BYTE_PTR pAAD;
	CK_ULONG ulAADLen;
	CK_ULONG ulTagBits;
} gcm_v230;

static h_env env;
static CK_SESSION_HANDLE S;

static int setup(void **state)
{
	(void)state;
	h_env_new(&env, "required",
		  "\"keys\": [{\"id\": \"master-aes\", \"label\": \"kms-aes\", \"type\": \"aes\", "
		  "\"usage\": \"data\"}]");
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
	return 0;
}

static CK_RV crypt(bool enc, CK_MECHANISM *m, CK_OBJECT_HANDLE k, const uint8_t *in,
		   CK_ULONG inlen, uint8_t *out, CK_ULONG *outlen)
{
	CK_RV rv = enc ? p11->C_EncryptInit(S, m, k) : p11->C_DecryptInit(S, m, k);
	if (rv != CKR_OK)
		return rv;
	return enc ? p11->C_Encrypt(S, (CK_BYTE_PTR)in, inlen, out, outlen)
		   : p11->C_Decrypt(S, (CK_BYTE_PTR)in, inlen, out, outlen);
}

static void test_v230_layout_local_key(void **state)
{
	(void)state;
	assert_int_not_equal(sizeof(gcm_v230), sizeof(CK_GCM_PARAMS));
	uint8_t iv[12], msg[37];
	h_fill(iv, sizeof(iv), 9);
	h_fill(msg, sizeof(msg), 5);
	CK_MECHANISM gen = {CKM_AES_KEY_GEN, NULL, 0};
	CK_ULONG len = 32;
	CK_BBOOL T = CK_TRUE;
	CK_ATTRIBUTE kt_[] = {{CKA_VALUE_LEN, &len, sizeof(len)}, {CKA_ENCRYPT, &T, 1},
			      {CKA_DECRYPT, &T, 1}};
	CK_OBJECT_HANDLE k = CK_INVALID_HANDLE, w = CK_INVALID_HANDLE;
	assert_ok(p11->C_GenerateKey(S, &gen, kt_, 3, &k));
	/* A key has one role (docs/OBJECTS.md): another one wraps. */
	kt_[1].type = CKA_WRAP;
	kt_[2].type = CKA_UNWRAP;
	assert_ok(p11->C_GenerateKey(S, &gen, kt_, 3, &w));
	/* A 96-bit tag and AAD: both must be read from their v2.30 places. */
	gcm_v230 old = {iv, 12, (CK_BYTE_PTR) "header", 6, 96};
	CK_GCM_PARAMS cur = {iv, 12, 96, (CK_BYTE_PTR) "header", 6, 96};
	CK_MECHANISM mo = {CKM_AES_GCM, &old, sizeof(old)};
	CK_MECHANISM mc = {CKM_AES_GCM, &cur, sizeof(cur)};
	uint8_t co[64], cc[64], pt[64];
	CK_ULONG lo = sizeof(co), lc = sizeof(cc), pl = sizeof(pt);
	assert_ok(crypt(true, &mo, k, msg, sizeof(msg), co, &lo));
	assert_int_equal(lo, sizeof(msg) + 12);
	assert_ok(crypt(true, &mc, k, msg, sizeof(msg), cc, &lc));
	assert_int_equal(lc, lo);
	assert_memory_equal(co, cc, lo);
	/* ulIvBits 0 ("do not use") gives the same too. */
	cur.ulIvBits = 0;
	lc = sizeof(cc);
	assert_ok(crypt(true, &mc, k, msg, sizeof(msg), cc, &lc));
	assert_memory_equal(co, cc, lo);
	/* Decrypted with the other layout; another AAD fails the tag. */
	assert_ok(crypt(false, &mo, k, cc, lc, pt, &pl));
	assert_int_equal(pl, sizeof(msg));
	assert_memory_equal(pt, msg, sizeof(msg));
	old.pAAD = (CK_BYTE_PTR) "HEADER";
	pl = sizeof(pt);
	assert_rv(crypt(false, &mo, k, cc, lc, pt, &pl), CKR_ENCRYPTED_DATA_INVALID);
	old.pAAD = (CK_BYTE_PTR) "header";
	/* Its values are checked as the v3.0 layout's are. */
	old.ulTagBits = 100;
	assert_rv(p11->C_EncryptInit(S, &mo, k), CKR_MECHANISM_PARAM_INVALID);
	old.ulTagBits = 96;
	old.ulIvLen = 0;
	assert_rv(p11->C_EncryptInit(S, &mo, k), CKR_MECHANISM_PARAM_INVALID);
	old.ulIvLen = 12;
	/* Wrap with one layout, unwrap with the other. */
	CK_OBJECT_HANDLE t = h_aes_key(S, 16, CK_FALSE, NULL);
	uint8_t blob[64];
	CK_ULONG bl = sizeof(blob);
	assert_ok(p11->C_WrapKey(S, &mo, w, t, blob, &bl));
	assert_int_equal(bl, 16 + 12);
	CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
	CK_KEY_TYPE kt = CKK_AES;
	CK_BBOOL F = CK_FALSE;
	CK_ATTRIBUTE tmpl[] = {{CKA_CLASS, &cls, sizeof(cls)},
			       {CKA_KEY_TYPE, &kt, sizeof(kt)},
			       {CKA_TOKEN, &F, 1}};
	CK_OBJECT_HANDLE u = CK_INVALID_HANDLE;
	assert_ok(p11->C_UnwrapKey(S, &mc, w, blob, bl, tmpl, 3, &u));
	h_same_aes_key(S, t, u);
}

static void test_neither_size_refused(void **state)
{
	(void)state;
	uint8_t kv[16], iv[12] = {0};
	h_fill(kv, sizeof(kv), 1);
	CK_OBJECT_HANDLE k = h_import_aes(S, kv, sizeof(kv));
	CK_GCM_PARAMS p[2] = {{iv, 12, 96, NULL, 0, 128}};
	CK_ULONG sizes[] = {0, sizeof(gcm_v230) - sizeof(CK_ULONG), sizeof(gcm_v230) + 4,
			    sizeof(CK_GCM_PARAMS) - 4, sizeof(CK_GCM_PARAMS) + sizeof(CK_ULONG)};
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		CK_MECHANISM m = {CKM_AES_GCM, p, sizes[i]};
		assert_rv(p11->C_EncryptInit(S, &m, k), CKR_MECHANISM_PARAM_INVALID);
		assert_rv(p11->C_DecryptInit(S, &m, k), CKR_MECHANISM_PARAM_INVALID);
	}
	CK_MECHANISM null40 = {CKM_AES_GCM, NULL, sizeof(gcm_v230)};
	assert_rv(p11->C_EncryptInit(S, &null40, k), CKR_MECHANISM_PARAM_INVALID);
	char want[128];
	snprintf(want, sizeof(want), "CK_GCM_PARAMS of %zu bytes (or %zu, the v2.30 layout)",
		 sizeof(CK_GCM_PARAMS), sizeof(gcm_v230));
	assert_true(h_log_contains(&env, want));
}

/* On a KMS AES key the KMS makes the IV: it comes back in the v2.30
 * layout's pIv as in the v3.0 one's. */
static void test_v230_layout_kms_key(void **state)
{
	(void)state;
	CK_OBJECT_HANDLE k = h_find_label(S, "kms-aes");
	uint8_t iv[12] = {0}, zero[12] = {0}, c[64], pt[64];
	gcm_v230 old = {iv, 12, (CK_BYTE_PTR) "row 7", 5, 128};
	CK_MECHANISM mo = {CKM_AES_GCM, &old, sizeof(old)};
	const char *msg = "column value";
	CK_ULONG cl = sizeof(c), pl = sizeof(pt);
	assert_ok(crypt(true, &mo, k, (const uint8_t *)msg, 12, c, &cl));
	assert_int_equal(cl, 12 + 16);
	assert_memory_not_equal(iv, zero, 12);
	CK_GCM_PARAMS cur = {iv, 12, 0, (CK_BYTE_PTR) "row 7", 5, 128};
	CK_MECHANISM mc = {CKM_AES_GCM, &cur, sizeof(cur)};
	assert_ok(crypt(false, &mc, k, c, cl, pt, &pl));
	assert_int_equal(pl, 12);
	assert_memory_equal(pt, msg, 12);
	old.ulTagBits = 96; /* the KMS's rule still applies */
	assert_rv(p11->C_EncryptInit(S, &mo, k), CKR_MECHANISM_PARAM_INVALID);
}

static bool lists(CK_SLOT_ID slot, CK_MECHANISM_TYPE t)
{
	CK_MECHANISM_TYPE list[64];
	CK_ULONG n = 64;
	assert_ok(p11->C_GetMechanismList(slot, list, &n));
	for (CK_ULONG i = 0; i < n; i++)
		if (list[i] == t)
			return true;
	return false;
}

static void test_envelope_only_with_kms_keys(void **state)
{
	(void)state;
	CK_MECHANISM_INFO mi;
	assert_true(lists(env.slot, CKM_P11KMS_KMS_ENVELOPE));
	assert_ok(p11->C_GetMechanismInfo(env.slot, CKM_P11KMS_KMS_ENVELOPE, &mi));
	/* A slot with no KMS key objects. */
	h_env plain;
	h_env_new(&plain, "required", "");
	CK_C_INITIALIZE_ARGS a = {.flags = CKF_OS_LOCKING_OK, .pReserved = plain.init_str};
	assert_ok(p11->C_Finalize(NULL));
	assert_ok(p11->C_Initialize(&a));
	assert_false(lists(plain.slot, CKM_P11KMS_KMS_ENVELOPE));
	assert_true(lists(plain.slot, CKM_AES_GCM));
	assert_rv(p11->C_GetMechanismInfo(plain.slot, CKM_P11KMS_KMS_ENVELOPE, &mi),
		  CKR_MECHANISM_INVALID);
	h_init_token(&plain);
	CK_SESSION_HANDLE s = h_user_session(&plain);
	uint8_t kv[16];
	h_fill(kv, sizeof(kv), 2);
	CK_OBJECT_HANDLE k = h_import_aes(s, kv, sizeof(kv));
	CK_MECHANISM env_m = {CKM_P11KMS_KMS_ENVELOPE, NULL, 0};
	assert_rv(p11->C_EncryptInit(s, &env_m, k), CKR_MECHANISM_INVALID);
	assert_ok(p11->C_Finalize(NULL));
	h_env_free(&plain);
	/* Back to the slot with KMS keys for the tests after this one. */
	assert_ok(h_initialize(&env));
	S = h_user_session(&env);
}

/* Lines in the log file. */
static size_t log_lines(const h_env *e)
{
	FILE *f = fopen(e->log, "r");
	if (!f)
		return 0;
	size_t n = 0;
	int c;
	while ((c = fgetc(f)) != EOF)
		n += c == '\n';
	fclose(f);
	return n;
}

static void test_probing_is_quiet_at_info(void **state)
{
	(void)state;
	h_env q;
	h_env_new(&q, "required", "");
	/* The harness logs at trace; this configuration at info. */
	char cfg[4096];
	size_t n = h_read_file(q.config, cfg, sizeof(cfg) - 1);
	cfg[n] = 0;
	char *lvl = strstr(cfg, "\"trace\"");
	assert_non_null(lvl);
	memcpy(lvl, "\"info\" ", 7);
	h_write_file(q.config, cfg, n);
	CK_C_INITIALIZE_ARGS a = {.flags = CKF_OS_LOCKING_OK, .pReserved = q.init_str};
	assert_ok(p11->C_Finalize(NULL));
	assert_ok(p11->C_Initialize(&a));
	h_init_token(&q);
	CK_SESSION_HANDLE s = h_user_session(&q);
	CK_OBJECT_HANDLE k = h_aes_key(s, 32, CK_TRUE, "probe-me");
	size_t before = log_lines(&q);
	/* What pkcs11-tool, PyKCS11, SunPKCS11 and NSS ask. */
	uint8_t buf[512];
	CK_ATTRIBUTE value = {CKA_VALUE, buf, sizeof(buf)};
	assert_rv(p11->C_GetAttributeValue(s, k, &value, 1), CKR_ATTRIBUTE_SENSITIVE);
	CK_ATTRIBUTE mod = {CKA_MODULUS, buf, sizeof(buf)};
	assert_rv(p11->C_GetAttributeValue(s, k, &mod, 1), CKR_ATTRIBUTE_TYPE_INVALID);
	CK_ATTRIBUTE aa = {CKA_ALWAYS_AUTHENTICATE, buf, 1};
	assert_rv(p11->C_GetAttributeValue(s, k, &aa, 1), CKR_ATTRIBUTE_TYPE_INVALID);
	CK_ATTRIBUTE label = {CKA_LABEL, buf, 2};
	assert_rv(p11->C_GetAttributeValue(s, k, &label, 1), CKR_BUFFER_TOO_SMALL);
	CK_MECHANISM_INFO mi;
	assert_rv(p11->C_GetMechanismInfo(q.slot, CKM_RSA_PKCS, &mi), CKR_MECHANISM_INVALID);
	assert_rv(p11->C_GetMechanismInfo(q.slot, CKM_P11KMS_KMS_ENVELOPE, &mi),
		  CKR_MECHANISM_INVALID);
	/* NSS offers every token a seed. */
	assert_rv(p11->C_SeedRandom(s, buf, 16), CKR_RANDOM_SEED_NOT_SUPPORTED);
	CK_MECHANISM_TYPE one;
	CK_ULONG cnt = 1;
	assert_rv(p11->C_GetMechanismList(q.slot, &one, &cnt), CKR_BUFFER_TOO_SMALL);
	size_t after = log_lines(&q);
	if (after != before) {
		h_dump_log(&q);
		fail_msg("probing wrote %zu log line(s) at info", after - before);
	}
	/* What an operator should read still comes: a wrong PIN. */
	assert_ok(p11->C_Logout(s));
	assert_rv(p11->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR) "9999", 4), CKR_PIN_INCORRECT);
	assert_true(log_lines(&q) > after);
	assert_true(h_log_contains(&q, "CKR_PIN_INCORRECT"));
	assert_ok(p11->C_Finalize(NULL));
	h_env_free(&q);
	assert_ok(h_initialize(&env));
	S = h_user_session(&env);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_v230_layout_local_key),
		cmocka_unit_test(test_neither_size_refused),
		cmocka_unit_test(test_v230_layout_kms_key),
		cmocka_unit_test(test_envelope_only_with_kms_keys),
		cmocka_unit_test(test_probing_is_quiet_at_info),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
