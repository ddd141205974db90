/* SPDX-License-Identifier: Apache-2.0 */
/*
 * KMS key objects and remote operations through the exported API, on the
 * local provider: the key shows as an object, wraps and unwraps local keys
 * with an encryption context, and its revocation (a key the provider can
 * no longer use) wipes the token key and KMS-derived keys until it is back.
 * The same key declared "type": "aes" runs the standard AES mechanisms
 * (key wrap, key wrap with padding, GCM with an IV the KMS makes), checked
 * against OpenSSL with the key file's bytes (docs/REMOTE.md).
 */
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "harness.h"

static h_env env;
static CK_SESSION_HANDLE S;

static int setup(void **state)
{
	h_env_new(&env, "required",
		  "\"keys\": [{\"id\": \"master\", \"label\": \"kms-master\"}, "
		  "{\"id\": \"master-aes\", \"label\": \"kms-aes\", \"type\": \"aes\"}, "
		  "{\"id\": \"master-data\", \"label\": \"kms-aes-data\", \"type\": \"aes\", "
		  "\"usage\": \"data\"}], "
		  "\"revalidate_seconds\": 1");
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

static CK_OBJECT_HANDLE kms_key(void)
{
	CK_ATTRIBUTE q = {CKA_LABEL, "kms-master", 10};
	CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
	CK_ULONG n = 0;
	assert_ok(p11->C_FindObjectsInit(S, &q, 1));
	assert_ok(p11->C_FindObjects(S, &h, 1, &n));
	assert_ok(p11->C_FindObjectsFinal(S));
	assert_int_equal(n, 1);
	return h;
}

static void test_kms_object(void **state)
{
	CK_OBJECT_HANDLE k = kms_key();
	CK_KEY_TYPE kt = 0;
	CK_BBOOL ext = CK_TRUE, neverx = CK_FALSE;
	char id[32];
	CK_ATTRIBUTE a[] = {{CKA_KEY_TYPE, &kt, sizeof(kt)},
			    {CKA_EXTRACTABLE, &ext, 1},
			    {CKA_NEVER_EXTRACTABLE, &neverx, 1},
			    {CKA_P11KMS_KMS_KEY_ID, id, sizeof(id)}};
	assert_ok(p11->C_GetAttributeValue(S, k, a, 4));
	assert_int_equal(kt, CKK_P11KMS_KMS);
	assert_false(ext);
	assert_true(neverx);
	assert_int_equal(a[3].ulValueLen, 6);
	assert_memory_equal(id, "master", 6);
	CK_ATTRIBUTE v = {CKA_VALUE, NULL, 0};
	assert_rv(p11->C_GetAttributeValue(S, k, &v, 1), CKR_ATTRIBUTE_SENSITIVE);
	assert_rv(p11->C_DestroyObject(S, k), CKR_ACTION_PROHIBITED);
	/* Local mechanisms cannot use it. */
	uint8_t iv[16] = {0};
	CK_MECHANISM cbc = {CKM_AES_CBC_PAD, iv, 16};
	assert_rv(p11->C_EncryptInit(S, &cbc, k), CKR_KEY_TYPE_INCONSISTENT);
	/* The vendor mechanism cannot use a local key. */
	CK_OBJECT_HANDLE local = h_aes_key(S, 32, CK_FALSE, "local");
	CK_MECHANISM env_m = {CKM_P11KMS_KMS_ENVELOPE, NULL, 0};
	assert_rv(p11->C_EncryptInit(S, &env_m, local), CKR_KEY_TYPE_INCONSISTENT);
}

static void test_wrap_unwrap_with_context(void **state)
{
	CK_OBJECT_HANDLE k = kms_key();
	CK_OBJECT_HANDLE dk = h_aes_key(S, 32, CK_FALSE, "data-key");
	CK_P11KMS_KMS_PARAMS ctx = {(CK_BYTE_PTR) "tenant=42", 9};
	CK_MECHANISM m = {CKM_P11KMS_KMS_ENVELOPE, &ctx, sizeof(ctx)};
	uint8_t blob[256];
	CK_ULONG bl = 0;
	assert_ok(p11->C_WrapKey(S, &m, k, dk, NULL, &bl));
	assert_true(bl >= 32 && bl <= sizeof(blob));
	assert_ok(p11->C_WrapKey(S, &m, k, dk, blob, &bl));
	CK_OBJECT_CLASS c = CKO_SECRET_KEY;
	CK_KEY_TYPE kt = CKK_AES;
	CK_ATTRIBUTE t[] = {{CKA_CLASS, &c, sizeof(c)}, {CKA_KEY_TYPE, &kt, sizeof(kt)}};
	CK_OBJECT_HANDLE back;
	assert_ok(p11->C_UnwrapKey(S, &m, k, blob, bl, t, 2, &back));
	/* Both keys encrypt alike. */
	uint8_t iv[16] = {7}, c1[32], c2[32];
	CK_ULONG l1 = sizeof(c1), l2 = sizeof(c2);
	CK_MECHANISM cbc = {CKM_AES_CBC_PAD, iv, 16};
	assert_ok(p11->C_EncryptInit(S, &cbc, dk));
	assert_ok(p11->C_Encrypt(S, (CK_BYTE_PTR) "payload", 7, c1, &l1));
	assert_ok(p11->C_EncryptInit(S, &cbc, back));
	assert_ok(p11->C_Encrypt(S, (CK_BYTE_PTR) "payload", 7, c2, &l2));
	assert_memory_equal(c1, c2, l1);
	/* Another context does not open the blob; neither does a damaged blob. */
	CK_P11KMS_KMS_PARAMS other = {(CK_BYTE_PTR) "tenant=43", 9};
	CK_MECHANISM m2 = {CKM_P11KMS_KMS_ENVELOPE, &other, sizeof(other)};
	assert_rv(p11->C_UnwrapKey(S, &m2, k, blob, bl, t, 2, &back),
		  CKR_WRAPPED_KEY_INVALID);
	blob[bl - 1] ^= 1;
	assert_rv(p11->C_UnwrapKey(S, &m, k, blob, bl, t, 2, &back), CKR_WRAPPED_KEY_INVALID);
	/* Small data through C_Encrypt / C_Decrypt. */
	uint8_t ct[256], pt[64];
	CK_ULONG cl = 0, pl = sizeof(pt);
	assert_ok(p11->C_EncryptInit(S, &m, k));
	assert_ok(p11->C_Encrypt(S, (CK_BYTE_PTR) "small secret", 12, NULL, &cl));
	assert_ok(p11->C_Encrypt(S, (CK_BYTE_PTR) "small secret", 12, ct, &cl));
	assert_ok(p11->C_DecryptInit(S, &m, k));
	assert_ok(p11->C_Decrypt(S, ct, cl, pt, &pl));
	assert_int_equal(pl, 12);
	assert_memory_equal(pt, "small secret", 12);
	/* Bad parameter. */
	CK_MECHANISM bad = {CKM_P11KMS_KMS_ENVELOPE, &ctx, 3};
	assert_rv(p11->C_EncryptInit(S, &bad, k), CKR_MECHANISM_PARAM_INVALID);
}

static void test_revocation_and_recovery(void **state)
{
	CK_OBJECT_HANDLE k = kms_key();
	CK_OBJECT_HANDLE tokkey = h_aes_key(S, 32, CK_TRUE, "protected");
	CK_OBJECT_HANDLE dk = h_aes_key(S, 32, CK_FALSE, "dk");
	CK_MECHANISM m = {CKM_P11KMS_KMS_ENVELOPE, NULL, 0};
	uint8_t blob[256];
	CK_ULONG bl = sizeof(blob);
	assert_ok(p11->C_WrapKey(S, &m, k, dk, blob, &bl));
	CK_OBJECT_CLASS c = CKO_SECRET_KEY;
	CK_KEY_TYPE kt = CKK_AES;
	CK_ATTRIBUTE t[] = {{CKA_CLASS, &c, sizeof(c)}, {CKA_KEY_TYPE, &kt, sizeof(kt)}};
	CK_OBJECT_HANDLE derived;
	assert_ok(p11->C_UnwrapKey(S, &m, k, blob, bl, t, 2, &derived));

	/* The customer takes the key away (here: the provider can no longer
	 * use its key file). */
	assert_int_equal(chmod(env.key_file, 0644), 0);
	sleep(2); /* past revalidate_seconds */
	uint8_t iv[16] = {0};
	CK_MECHANISM cbc = {CKM_AES_CBC_PAD, iv, 16};
	assert_rv(p11->C_EncryptInit(S, &cbc, tokkey), CKR_DEVICE_ERROR);
	CK_SESSION_INFO si;
	assert_ok(p11->C_GetSessionInfo(S, &si));
	assert_int_equal(si.ulDeviceError, P11KMS_DEVERR_ACCESS_DENIED);
	assert_true(h_log_contains(&env, "are wiped until the key is back"));
	/* Keys derived through the KMS are gone. */
	CK_ULONG size;
	assert_rv(p11->C_GetObjectSize(S, derived, &size), CKR_OBJECT_HANDLE_INVALID);
	/* Logging in again cannot unseal while the key is unusable. */
	assert_rv(p11->C_Login(S, CKU_USER, (CK_UTF8CHAR_PTR)USER_PIN, 4), CKR_DEVICE_ERROR);

	/* The key is back: after a new login everything works again. */
	assert_int_equal(chmod(env.key_file, 0600), 0);
	assert_ok(p11->C_Login(S, CKU_USER, (CK_UTF8CHAR_PTR)USER_PIN, 4));
	CK_ATTRIBUTE q = {CKA_LABEL, "protected", 9};
	CK_OBJECT_HANDLE h;
	CK_ULONG n;
	assert_ok(p11->C_FindObjectsInit(S, &q, 1));
	assert_ok(p11->C_FindObjects(S, &h, 1, &n));
	assert_ok(p11->C_FindObjectsFinal(S));
	assert_int_equal(n, 1);
	assert_ok(p11->C_EncryptInit(S, &cbc, h));
	uint8_t out[32];
	CK_ULONG ol = sizeof(out);
	assert_ok(p11->C_Encrypt(S, (CK_BYTE_PTR) "x", 1, out, &ol));
	assert_true(h_log_contains(&env, "logged in"));
}

/* The key file's bytes: the test checks the KMS's work with OpenSSL. */
static void master_key(uint8_t key[32])
{
	FILE *f = fopen(env.key_file, "rb");
	assert_non_null(f);
	assert_int_equal(fread(key, 1, 32, f), 32);
	fclose(f);
}

/* OpenSSL's AES-256 key unwrap (RFC 3394 or 5649) under the master key. */
static size_t ossl_unwrap(bool pad, const uint8_t *in, size_t inlen, uint8_t *out)
{
	uint8_t key[32];
	master_key(key);
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	int n = 0, m = 0;
	assert_int_equal(EVP_DecryptInit_ex(c, pad ? EVP_aes_256_wrap_pad() : EVP_aes_256_wrap(),
					    NULL, key, NULL), 1);
	assert_int_equal(EVP_DecryptUpdate(c, out, &n, in, (int)inlen), 1);
	assert_int_equal(EVP_DecryptFinal_ex(c, out + n, &m), 1);
	EVP_CIPHER_CTX_free(c);
	return (size_t)(n + m);
}

static void test_standard_aes_object(void **state)
{
	CK_OBJECT_HANDLE k = h_find_label(S, "kms-aes");
	CK_OBJECT_CLASS c = 0;
	CK_KEY_TYPE kt = 0;
	CK_ULONG vl = 0;
	CK_BBOOL wrap = CK_FALSE, ext = CK_TRUE;
	CK_ATTRIBUTE a[] = {{CKA_CLASS, &c, sizeof(c)}, {CKA_KEY_TYPE, &kt, sizeof(kt)},
			    {CKA_VALUE_LEN, &vl, sizeof(vl)}, {CKA_WRAP, &wrap, 1},
			    {CKA_EXTRACTABLE, &ext, 1}};
	assert_ok(p11->C_GetAttributeValue(S, k, a, 5));
	assert_int_equal(c, CKO_SECRET_KEY);
	assert_int_equal(kt, CKK_AES);
	assert_int_equal(vl, 32);
	assert_true(wrap);
	assert_false(ext);
	CK_ATTRIBUTE v = {CKA_VALUE, NULL, 0};
	assert_rv(p11->C_GetAttributeValue(S, k, &v, 1), CKR_ATTRIBUTE_SENSITIVE);
	/* No RSA key here: RSA-OAEP is not offered on this slot. */
	CK_MECHANISM_TYPE list[64];
	CK_ULONG n = 64;
	assert_ok(p11->C_GetMechanismList(env.slot, list, &n));
	for (CK_ULONG i = 0; i < n; i++)
		assert_int_not_equal(list[i], CKM_RSA_PKCS_OAEP);
	CK_MECHANISM_INFO mi;
	assert_rv(p11->C_GetMechanismInfo(env.slot, CKM_RSA_PKCS_OAEP, &mi),
		  CKR_MECHANISM_INVALID);
	CK_RSA_PKCS_OAEP_PARAMS op = {CKM_SHA256, CKG_MGF1_SHA256, CKZ_DATA_SPECIFIED, NULL, 0};
	CK_MECHANISM oaep = {CKM_RSA_PKCS_OAEP, &op, sizeof(op)};
	assert_rv(p11->C_EncryptInit(S, &oaep, k), CKR_MECHANISM_INVALID);
	/* One role per key ("usage", default "wrap"; docs/SECURITY.md): a
	 * key that wraps and decrypts reveals what it wrapped (Clulow; Tookan
	 * A1). The wrapping face neither encrypts nor decrypts... */
	CK_BBOOL enc = CK_TRUE, dec = CK_TRUE, unwrap = CK_FALSE;
	CK_ATTRIBUTE roles[] = {{CKA_ENCRYPT, &enc, 1}, {CKA_DECRYPT, &dec, 1},
				{CKA_UNWRAP, &unwrap, 1}, {CKA_WRAP, &wrap, 1}};
	assert_ok(p11->C_GetAttributeValue(S, k, roles, 4));
	assert_false(enc);
	assert_false(dec);
	assert_true(unwrap);
	CK_OBJECT_HANDLE victim = h_import_aes(S, (const uint8_t *)"0123456789abcdef", 16);
	CK_MECHANISM kwm = {CKM_AES_KEY_WRAP, NULL, 0};
	uint8_t wblob[64];
	CK_ULONG wl = sizeof(wblob);
	assert_ok(p11->C_WrapKey(S, &kwm, k, victim, wblob, &wl));
	assert_rv(p11->C_DecryptInit(S, &kwm, k), CKR_KEY_FUNCTION_NOT_PERMITTED);
	assert_rv(p11->C_EncryptInit(S, &kwm, k), CKR_KEY_FUNCTION_NOT_PERMITTED);
	/* ...and the data face wraps and unwraps nothing. */
	CK_OBJECT_HANDLE data = h_find_label(S, "kms-aes-data");
	assert_ok(p11->C_GetAttributeValue(S, data, roles, 4));
	assert_true(enc);
	assert_true(dec);
	assert_false(unwrap);
	assert_false(wrap);
	wl = sizeof(wblob);
	assert_rv(p11->C_WrapKey(S, &kwm, data, victim, wblob, &wl),
		  CKR_KEY_FUNCTION_NOT_PERMITTED);
	/* The envelope runs on the data face too. */
	k = data;
	CK_MECHANISM env_m = {CKM_P11KMS_KMS_ENVELOPE, NULL, 0};
	uint8_t blob[256], pt[32];
	CK_ULONG bl = sizeof(blob), pl = sizeof(pt);
	assert_ok(p11->C_EncryptInit(S, &env_m, k));
	assert_ok(p11->C_Encrypt(S, (CK_BYTE_PTR) "enveloped", 9, blob, &bl));
	assert_ok(p11->C_DecryptInit(S, &env_m, k));
	assert_ok(p11->C_Decrypt(S, blob, bl, pt, &pl));
	assert_int_equal(pl, 9);
	/* Too short a buffer: the exact length, then the kept result. */
	CK_ULONG shortl = 4;
	assert_ok(p11->C_DecryptInit(S, &env_m, k));
	assert_rv(p11->C_Decrypt(S, blob, bl, pt, &shortl), CKR_BUFFER_TOO_SMALL);
	assert_int_equal(shortl, 9);
	memset(pt, 0, sizeof(pt));
	assert_ok(p11->C_Decrypt(S, blob, bl, pt, &shortl));
	assert_int_equal(shortl, 9);
	assert_memory_equal(pt, "enveloped", 9);
}

static void test_standard_key_wrap(void **state)
{
	CK_OBJECT_HANDLE k = h_find_label(S, "kms-aes");
	static const uint8_t value[24] = "0123456789abcdefghijklm";
	CK_OBJECT_HANDLE dk = h_import_aes(S, value, 24);
	static const CK_MECHANISM_TYPE mechs[] = {CKM_AES_KEY_WRAP, CKM_AES_KEY_WRAP_KWP,
						  CKM_AES_KEY_WRAP_PAD};
	for (size_t i = 0; i < 3; i++) {
		CK_MECHANISM m = {mechs[i], NULL, 0};
		uint8_t blob[64], out[64];
		CK_ULONG bl = 0;
		assert_ok(p11->C_WrapKey(S, &m, k, dk, NULL, &bl));
		/* 24 bytes: 32 wrapped; PKCS #7 pads a full block, to 40. */
		assert_int_equal(bl, mechs[i] == CKM_AES_KEY_WRAP_PAD ? 40 : 32);
		CK_ULONG small = bl - 1;
		assert_rv(p11->C_WrapKey(S, &m, k, dk, blob, &small), CKR_BUFFER_TOO_SMALL);
		assert_ok(p11->C_WrapKey(S, &m, k, dk, blob, &bl));
		/* The standard format: OpenSSL opens it with the key file's bytes. */
		size_t ol = ossl_unwrap(mechs[i] == CKM_AES_KEY_WRAP_KWP, blob, bl, out);
		assert_int_equal(ol, mechs[i] == CKM_AES_KEY_WRAP_PAD ? 32 : 24);
		assert_memory_equal(out, value, 24);
		/* And the module unwraps it into a key that encrypts alike. */
		CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
		CK_KEY_TYPE kt = CKK_AES;
		CK_ATTRIBUTE t[] = {{CKA_CLASS, &cls, sizeof(cls)}, {CKA_KEY_TYPE, &kt, sizeof(kt)}};
		CK_OBJECT_HANDLE back;
		assert_ok(p11->C_UnwrapKey(S, &m, k, blob, bl, t, 2, &back));
		uint8_t c1[32], c2[32];
		CK_ULONG l1 = sizeof(c1), l2 = sizeof(c2);
		assert_ok(h_encrypt_probe(S, dk, c1, &l1));
		assert_ok(h_encrypt_probe(S, back, c2, &l2));
		assert_int_equal(l1, l2);
		assert_memory_equal(c1, c2, l1);
		blob[3] ^= 0x40;
		assert_rv(p11->C_UnwrapKey(S, &m, k, blob, bl, t, 2, &back),
			  CKR_WRAPPED_KEY_INVALID);
	}
	/* The key's bytes never reach the (trace-level) log; the detector
	 * does find bytes that are there (base64url of fb ef be ...). */
	assert_false(h_log_has_bytes(&env, value, sizeof(value)));
	static const uint8_t probe[12] = {0xfb, 0xef, 0xbe, 0xfb, 0xef, 0xbe,
					  0xfb, 0xef, 0xbe, 0xfb, 0xef, 0xbe};
	FILE *lf = fopen(env.log, "a");
	assert_non_null(lf);
	fputs("detector check ----------------\n", lf);
	fclose(lf);
	assert_true(h_log_has_bytes(&env, probe, sizeof(probe)));
	/* The KMS takes only the standard IV. */
	uint8_t other_iv[8] = {1, 2, 3, 4, 5, 6, 7, 8};
	CK_MECHANISM m = {CKM_AES_KEY_WRAP, other_iv, 8};
	CK_ULONG bl = 0;
	assert_rv(p11->C_WrapKey(S, &m, k, dk, NULL, &bl), CKR_MECHANISM_PARAM_INVALID);
	/* A length outside RFC 3394's: 24 is fine, 20 is not (on the data
	 * face: C_Encrypt). */
	CK_MECHANISM kw = {CKM_AES_KEY_WRAP, NULL, 0};
	uint8_t pt[20] = {0}, ct[64];
	CK_ULONG cl = sizeof(ct);
	assert_ok(p11->C_EncryptInit(S, &kw, h_find_label(S, "kms-aes-data")));
	assert_rv(p11->C_Encrypt(S, pt, 20, ct, &cl), CKR_DATA_LEN_RANGE);
}

static void test_standard_gcm(void **state)
{
	CK_OBJECT_HANDLE k = h_find_label(S, "kms-aes-data");
	uint8_t iv1[12] = {0}, iv2[12] = {0}, zero[12] = {0};
	CK_GCM_PARAMS p = {iv1, 12, 96, (CK_BYTE_PTR) "hdr", 3, 128};
	CK_MECHANISM m = {CKM_AES_GCM, &p, sizeof(p)};
	const char *msg = "column value 42";
	uint8_t c1[64], c2[64], pt[64];
	CK_ULONG l1 = 0, l2 = sizeof(c2), pl = sizeof(pt);
	assert_ok(p11->C_EncryptInit(S, &m, k));
	assert_ok(p11->C_Encrypt(S, (CK_BYTE_PTR)msg, 15, NULL, &l1));
	assert_int_equal(l1, 15 + 16);
	assert_ok(p11->C_Encrypt(S, (CK_BYTE_PTR)msg, 15, c1, &l1));
	assert_memory_not_equal(iv1, zero, 12); /* the KMS's IV came back */
	p.pIv = iv2;
	assert_ok(p11->C_EncryptInit(S, &m, k));
	assert_ok(p11->C_Encrypt(S, (CK_BYTE_PTR)msg, 15, c2, &l2));
	assert_memory_not_equal(iv1, iv2, 12);
	/* OpenSSL decrypts it with the key file's bytes. */
	uint8_t key[32], out[64];
	master_key(key);
	EVP_CIPHER_CTX *x = EVP_CIPHER_CTX_new();
	int n = 0, fin = 0;
	assert_int_equal(EVP_DecryptInit_ex(x, EVP_aes_256_gcm(), NULL, key, iv1), 1);
	assert_int_equal(EVP_DecryptUpdate(x, NULL, &n, (const uint8_t *)"hdr", 3), 1);
	assert_int_equal(EVP_DecryptUpdate(x, out, &n, c1, 15), 1);
	assert_int_equal(EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_GCM_SET_TAG, 16, c1 + 15), 1);
	assert_int_equal(EVP_DecryptFinal_ex(x, out + n, &fin), 1);
	EVP_CIPHER_CTX_free(x);
	assert_memory_equal(out, msg, 15);
	/* The module decrypts with the IV given back; a changed AAD fails. */
	p.pIv = iv1;
	assert_ok(p11->C_DecryptInit(S, &m, k));
	assert_ok(p11->C_Decrypt(S, c1, l1, pt, &pl));
	assert_int_equal(pl, 15);
	assert_memory_equal(pt, msg, 15);
	p.pAAD = (CK_BYTE_PTR) "HDR";
	pl = sizeof(pt);
	assert_ok(p11->C_DecryptInit(S, &m, k));
	assert_rv(p11->C_Decrypt(S, c1, l1, pt, &pl), CKR_ENCRYPTED_DATA_INVALID);
	/* The KMS makes 96-bit IVs and 128-bit tags only. */
	CK_GCM_PARAMS bad = {iv1, 16, 128, NULL, 0, 128};
	CK_MECHANISM mb = {CKM_AES_GCM, &bad, sizeof(bad)};
	assert_rv(p11->C_EncryptInit(S, &mb, k), CKR_MECHANISM_PARAM_INVALID);
	bad.ulIvLen = 12;
	bad.ulTagBits = 96;
	assert_rv(p11->C_EncryptInit(S, &mb, k), CKR_MECHANISM_PARAM_INVALID);
	/* Multi-part gathers and makes one KMS call at the end. */
	p.pAAD = (CK_BYTE_PTR) "hdr";
	uint8_t iv3[12] = {0}, c3[64];
	p.pIv = iv3;
	CK_ULONG part = sizeof(c3), fl = sizeof(c3);
	assert_ok(p11->C_EncryptInit(S, &m, k));
	assert_ok(p11->C_EncryptUpdate(S, (CK_BYTE_PTR)msg, 7, c3, &part));
	assert_int_equal(part, 0);
	assert_ok(p11->C_EncryptUpdate(S, (CK_BYTE_PTR)msg + 7, 8, c3, &part));
	assert_ok(p11->C_EncryptFinal(S, c3, &fl));
	assert_int_equal(fl, 31);
	pl = sizeof(pt);
	assert_ok(p11->C_DecryptInit(S, &m, k));
	assert_ok(p11->C_Decrypt(S, c3, fl, pt, &pl));
	assert_memory_equal(pt, msg, 15);
}

static void test_standard_gcm_messages(void **state)
{
	CK_OBJECT_HANDLE k = h_find_label(S, "kms-aes-data");
	CK_MECHANISM m = {CKM_AES_GCM, NULL, 0};
	uint8_t iv[12] = {0}, tag[16], ct[32], pt[32], zero[12] = {0};
	CK_GCM_MESSAGE_PARAMS mp = {iv, 12, 0, CKG_GENERATE_RANDOM, tag, 128};
	CK_ULONG cl = sizeof(ct), pl = sizeof(pt);
	assert_ok(p11->C_MessageEncryptInit(S, &m, k));
	assert_ok(p11->C_EncryptMessage(S, &mp, sizeof(mp), (CK_BYTE_PTR) "aad", 3,
					(CK_BYTE_PTR) "row 7", 5, ct, &cl));
	assert_int_equal(cl, 5);
	assert_memory_not_equal(iv, zero, 12);
	/* The caller cannot choose the IV of a KMS key. */
	CK_GCM_MESSAGE_PARAMS own = {iv, 12, 0, CKG_NO_GENERATE, tag, 128};
	cl = sizeof(ct);
	assert_rv(p11->C_EncryptMessage(S, &own, sizeof(own), NULL, 0, (CK_BYTE_PTR) "x", 1, ct,
					&cl),
		  CKR_MECHANISM_PARAM_INVALID);
	assert_rv(p11->C_EncryptMessageBegin(S, &mp, sizeof(mp), NULL, 0),
		  CKR_FUNCTION_NOT_SUPPORTED);
	assert_ok(p11->C_MessageEncryptFinal(S));
	/* Decrypt with the IV and tag given back. */
	CK_GCM_MESSAGE_PARAMS dp = {iv, 12, 0, CKG_NO_GENERATE, tag, 128};
	assert_ok(p11->C_MessageDecryptInit(S, &m, k));
	assert_ok(p11->C_DecryptMessage(S, &dp, sizeof(dp), (CK_BYTE_PTR) "aad", 3, ct, 5, pt,
					&pl));
	assert_int_equal(pl, 5);
	assert_memory_equal(pt, "row 7", 5);
	tag[0] ^= 1;
	pl = sizeof(pt);
	assert_rv(p11->C_DecryptMessage(S, &dp, sizeof(dp), (CK_BYTE_PTR) "aad", 3, ct, 5, pt,
					&pl),
		  CKR_ENCRYPTED_DATA_INVALID);
	assert_ok(p11->C_MessageDecryptFinal(S));
}

/* Several threads, each with its own session, run the standard
 * mechanisms on the KMS key at once; every result must round-trip. */
typedef struct std_job {
	CK_SLOT_ID slot;
	CK_OBJECT_HANDLE kms;
	int failures;
} std_job;

static void *std_thread(void *arg)
{
	std_job *j = arg;
	CK_SESSION_HANDLE s;
	if (p11->C_OpenSession(j->slot, CKF_SERIAL_SESSION, NULL, NULL, &s) != CKR_OK) {
		j->failures++;
		return NULL;
	}
	for (int i = 0; i < 40; i++) {
		uint8_t msg[48], ct[64], pt[64], iv[12];
		for (size_t b = 0; b < sizeof(msg); b++)
			msg[b] = (uint8_t)(i * 7 + b);
		CK_GCM_PARAMS p = {iv, 12, 96, NULL, 0, 128};
		CK_MECHANISM gcm = {CKM_AES_GCM, &p, sizeof(p)};
		CK_MECHANISM kw = {i % 2 ? CKM_AES_KEY_WRAP : CKM_AES_KEY_WRAP_KWP, NULL, 0};
		CK_MECHANISM *m = i % 3 ? &gcm : &kw;
		CK_ULONG cl = sizeof(ct), pl = sizeof(pt);
		bool ok = p11->C_EncryptInit(s, m, j->kms) == CKR_OK &&
			  p11->C_Encrypt(s, msg, sizeof(msg), ct, &cl) == CKR_OK &&
			  p11->C_DecryptInit(s, m, j->kms) == CKR_OK &&
			  p11->C_Decrypt(s, ct, cl, pt, &pl) == CKR_OK && pl == sizeof(msg) &&
			  memcmp(pt, msg, pl) == 0;
		j->failures += !ok;
	}
	p11->C_CloseSession(s);
	return NULL;
}

/* Multi-part input past what the KMS takes (KMS_MAX_DATA * 4 for the
 * envelope, 64 KiB for the standard mechanisms) is out of range, named as
 * such, and ends the operation: not CKR_HOST_MEMORY, which would send a
 * caller looking for a memory problem. */
static void over_limit(CK_MECHANISM *m, CK_OBJECT_HANDLE k, bool encrypt, size_t limit)
{
	static uint8_t chunk[4096];
	uint8_t out[64];
	CK_ULONG ol;
	CK_RV rv = CKR_OK;
	size_t sent = 0;
	assert_ok(encrypt ? p11->C_EncryptInit(S, m, k) : p11->C_DecryptInit(S, m, k));
	while (rv == CKR_OK && sent <= limit) {
		ol = sizeof(out);
		rv = encrypt ? p11->C_EncryptUpdate(S, chunk, sizeof(chunk), out, &ol)
			     : p11->C_DecryptUpdate(S, chunk, sizeof(chunk), out, &ol);
		sent += sizeof(chunk);
	}
	assert_rv(rv, encrypt ? CKR_DATA_LEN_RANGE : CKR_ENCRYPTED_DATA_LEN_RANGE);
	assert_true(sent > limit);
	ol = sizeof(out);
	assert_rv(encrypt ? p11->C_EncryptUpdate(S, chunk, 1, out, &ol)
			  : p11->C_DecryptUpdate(S, chunk, 1, out, &ol),
		  CKR_OPERATION_NOT_INITIALIZED);
}

static void test_multipart_past_the_kms_limit(void **state)
{
	(void)state;
	CK_MECHANISM env_m = {CKM_P11KMS_KMS_ENVELOPE, NULL, 0};
	CK_OBJECT_HANDLE master = h_find_label(S, "kms-master");
	over_limit(&env_m, master, true, 4 * 4096);
	over_limit(&env_m, master, false, 4 * 4096);
	CK_MECHANISM kw = {CKM_AES_KEY_WRAP, NULL, 0};
	CK_OBJECT_HANDLE aes = h_find_label(S, "kms-aes-data");
	over_limit(&kw, aes, true, 64 * 1024);
	over_limit(&kw, aes, false, 64 * 1024);
	assert_false(h_log_contains(&env, "CKR_HOST_MEMORY"));
}

static void test_standard_in_threads(void **state)
{
	CK_OBJECT_HANDLE k = h_find_label(S, "kms-aes-data");
	pthread_t th[6];
	std_job jobs[6];
	for (int i = 0; i < 6; i++) {
		jobs[i] = (std_job){.slot = env.slot, .kms = k};
		assert_int_equal(pthread_create(&th[i], NULL, std_thread, &jobs[i]), 0);
	}
	for (int i = 0; i < 6; i++) {
		pthread_join(th[i], NULL);
		assert_int_equal(jobs[i].failures, 0);
	}
}

int main(void)
{
	h_load();
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_kms_object, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wrap_unwrap_with_context, setup, teardown),
		cmocka_unit_test_setup_teardown(test_revocation_and_recovery, setup, teardown),
		cmocka_unit_test_setup_teardown(test_standard_aes_object, setup, teardown),
		cmocka_unit_test_setup_teardown(test_standard_key_wrap, setup, teardown),
		cmocka_unit_test_setup_teardown(test_standard_gcm, setup, teardown),
		cmocka_unit_test_setup_teardown(test_standard_gcm_messages, setup, teardown),
		cmocka_unit_test_setup_teardown(test_standard_in_threads, setup, teardown),
		cmocka_unit_test_setup_teardown(test_multipart_past_the_kms_limit, setup, teardown),
	};
	return cmocka_run_group_tests_name("kms", tests, NULL, NULL);
}
