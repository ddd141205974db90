/* SPDX-License-Identifier: Apache-2.0 */
/*
 * A session keeps its last local cipher operation's context for the next
 * (module/aes.c, cipher_keep): through the exported API, one session runs
 * a sequence that changes, from one operation to the next, the key, the
 * mechanism (CBC and CBC-PAD share a cipher, padding differs), the GCM IV
 * length, and ends operations every way (done, a failed tag check, a
 * single-part call after an update, C_SessionCancel); every result is
 * checked against OpenSSL run directly.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "harness.h"

static h_env env;
static CK_SESSION_HANDLE S;
static uint8_t ka[32], kb[32];
static CK_OBJECT_HANDLE A, B;

static CK_OBJECT_HANDLE import(const uint8_t *key)
{
	CK_OBJECT_CLASS c = CKO_SECRET_KEY;
	CK_KEY_TYPE kt = CKK_AES;
	CK_BBOOL t = CK_TRUE;
	CK_ATTRIBUTE tmpl[] = {{CKA_CLASS, &c, sizeof(c)}, {CKA_KEY_TYPE, &kt, sizeof(kt)},
			       {CKA_VALUE, (void *)key, 32}, {CKA_ENCRYPT, &t, 1},
			       {CKA_DECRYPT, &t, 1}};
	CK_OBJECT_HANDLE h;
	assert_ok(p11->C_CreateObject(S, tmpl, 5, &h));
	return h;
}

static int setup(void **state)
{
	h_env_new(&env, "required", "");
	assert_ok(h_initialize(&env));
	h_init_token(&env);
	S = h_user_session(&env);
	h_fill(ka, sizeof(ka), 1);
	h_fill(kb, sizeof(kb), 2);
	A = import(ka);
	B = import(kb);
	return 0;
}

static int teardown(void **state)
{
	p11->C_Finalize(NULL);
	h_env_free(&env);
	return 0;
}

/* OpenSSL's answer: encrypt (or decrypt) in with cipher c under key,
 * padding as given; GCM appends (or takes) a 16-byte tag. -1: refused. */
static int oracle(const EVP_CIPHER *c, const uint8_t *key, const uint8_t *iv, size_t ivlen,
		  bool pad, bool enc, const uint8_t *in, size_t inlen, uint8_t *out)
{
	EVP_CIPHER_CTX *x = EVP_CIPHER_CTX_new();
	bool gcm = EVP_CIPHER_get_mode(c) == EVP_CIPH_GCM_MODE;
	int n = 0, m = 0;
	size_t dlen = gcm && !enc ? inlen - 16 : inlen;
	bool ok = EVP_CipherInit_ex(x, c, NULL, NULL, NULL, enc) == 1 &&
		  (!gcm || EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_GCM_SET_IVLEN, (int)ivlen, NULL) == 1) &&
		  EVP_CipherInit_ex(x, NULL, NULL, key, iv, enc) == 1 &&
		  EVP_CIPHER_CTX_set_padding(x, pad) == 1 &&
		  (!gcm || enc ||
		   EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_GCM_SET_TAG, 16, (void *)(in + dlen)) == 1) &&
		  EVP_CipherUpdate(x, out, &n, in, (int)dlen) == 1 &&
		  EVP_CipherFinal_ex(x, out + n, &m) == 1 &&
		  (!gcm || !enc || EVP_CIPHER_CTX_ctrl(x, EVP_CTRL_GCM_GET_TAG, 16, out + n + m) == 1);
	EVP_CIPHER_CTX_free(x);
	return ok ? n + m + (gcm && enc ? 16 : 0) : -1;
}

/* One single-part operation through the API, checked against the oracle. */
static void same(CK_MECHANISM *m, CK_OBJECT_HANDLE k, const uint8_t *key, const EVP_CIPHER *c,
		 const uint8_t *iv, size_t ivlen, bool pad, bool enc, const uint8_t *in,
		 size_t inlen)
{
	uint8_t got[256], want[256];
	CK_ULONG gl = sizeof(got);
	int wl = oracle(c, key, iv, ivlen, pad, enc, in, inlen, want);
	assert_true(wl >= 0);
	if (enc) {
		assert_ok(p11->C_EncryptInit(S, m, k));
		assert_ok(p11->C_Encrypt(S, (CK_BYTE_PTR)in, inlen, got, &gl));
	} else {
		assert_ok(p11->C_DecryptInit(S, m, k));
		assert_ok(p11->C_Decrypt(S, (CK_BYTE_PTR)in, inlen, got, &gl));
	}
	assert_int_equal(gl, wl);
	assert_memory_equal(got, want, (size_t)wl);
}

static void test_sequence(void **state)
{
	uint8_t iv[16], in[100], ct[256];
	h_fill(iv, sizeof(iv), 3);
	h_fill(in, sizeof(in), 4);
	CK_MECHANISM cbc = {CKM_AES_CBC, iv, 16}, cbcpad = {CKM_AES_CBC_PAD, iv, 16};
	CK_MECHANISM ecb = {CKM_AES_ECB, NULL, 0};
	CK_GCM_PARAMS g12 = {iv, 12, 96, NULL, 0, 128}, g16 = {iv, 16, 128, NULL, 0, 128};
	CK_MECHANISM gcm12 = {CKM_AES_GCM, &g12, sizeof(g12)},
		     gcm16 = {CKM_AES_GCM, &g16, sizeof(g16)};
	CK_AES_CTR_PARAMS cp = {.ulCounterBits = 32};
	memcpy(cp.cb, iv, 16);
	CK_MECHANISM ctr = {CKM_AES_CTR, &cp, sizeof(cp)};
	const EVP_CIPHER *c_cbc = EVP_aes_256_cbc(), *c_gcm = EVP_aes_256_gcm();

	/* CBC then CBC-PAD (one cipher, padding differs), then back. */
	same(&cbc, A, ka, c_cbc, iv, 16, false, true, in, 32);
	same(&cbcpad, A, ka, c_cbc, iv, 16, true, true, in, 5);
	same(&cbc, A, ka, c_cbc, iv, 16, false, true, in, 48);
	same(&cbcpad, A, ka, c_cbc, iv, 16, true, true, in, 16);
	/* another key, then the first again */
	same(&cbcpad, B, kb, c_cbc, iv, 16, true, true, in, 33);
	same(&cbcpad, A, ka, c_cbc, iv, 16, true, true, in, 33);
	same(&ecb, B, kb, EVP_aes_256_ecb(), NULL, 0, false, true, in, 32);
	same(&ctr, B, kb, EVP_aes_256_ctr(), iv, 16, false, true, in, 77);
	same(&ctr, A, ka, EVP_aes_256_ctr(), iv, 16, false, true, in, 77);
	/* GCM: the IV length changes */
	same(&gcm12, A, ka, c_gcm, iv, 12, false, true, in, 64);
	same(&gcm16, A, ka, c_gcm, iv, 16, false, true, in, 64);
	same(&gcm12, B, kb, c_gcm, iv, 12, false, true, in, 64);
	same(&gcm12, A, ka, c_gcm, iv, 12, false, true, in, 0);
	int cl;

	/* Key wrap: an explicit IV, then the default one (no IV given),
	 * in one session: the second must use RFC 3394's default IV, not the
	 * IV of the operation before (fuzz_api found it). */
	uint8_t kwiv[8] = {1, 2, 3, 4, 5, 6, 7, 8};
	CK_MECHANISM kw_iv = {CKM_AES_KEY_WRAP, kwiv, 8}, kw = {CKM_AES_KEY_WRAP, NULL, 0};
	const EVP_CIPHER *c_kw = EVP_aes_256_wrap();
	same(&kw_iv, A, ka, c_kw, kwiv, 8, false, true, in, 32);
	same(&kw, A, ka, c_kw, NULL, 0, false, true, in, 32);
	same(&kw_iv, A, ka, c_kw, kwiv, 8, false, true, in, 32);
	cl = oracle(c_kw, ka, NULL, 0, false, true, in, 32, ct);
	assert_int_equal(cl, 40);
	same(&kw, A, ka, c_kw, NULL, 0, false, false, ct, 40);

	/* Decryption: a forged tag fails, then a good one passes. */
	cl = oracle(c_gcm, ka, iv, 12, false, true, in, 64, ct);
	assert_int_equal(cl, 80);
	ct[70] ^= 1;
	uint8_t pt[128];
	CK_ULONG pl = sizeof(pt);
	assert_ok(p11->C_DecryptInit(S, &gcm12, A));
	assert_rv(p11->C_Decrypt(S, ct, 80, pt, &pl), CKR_ENCRYPTED_DATA_INVALID);
	ct[70] ^= 1;
	same(&gcm12, A, ka, c_gcm, iv, 12, false, false, ct, 80);
	assert_int_equal(oracle(c_gcm, kb, iv, 12, false, true, in, 64, ct), 80);
	same(&gcm12, B, kb, c_gcm, iv, 12, false, false, ct, 80);
}

static void test_ended_midway(void **state)
{
	uint8_t iv[16], in[64], out[256];
	h_fill(iv, sizeof(iv), 5);
	h_fill(in, sizeof(in), 6);
	CK_GCM_PARAMS g = {iv, 12, 96, NULL, 0, 128};
	CK_MECHANISM gcm = {CKM_AES_GCM, &g, sizeof(g)};
	CK_MECHANISM cbcpad = {CKM_AES_CBC_PAD, iv, 16};
	CK_ULONG ol = sizeof(out);
	/* A multi-part encryption ended by a single-part call after it. */
	assert_ok(p11->C_EncryptInit(S, &gcm, A));
	assert_ok(p11->C_EncryptUpdate(S, in, 20, out, &ol));
	ol = sizeof(out);
	assert_rv(p11->C_Encrypt(S, in, 20, out, &ol), CKR_OPERATION_ACTIVE);
	same(&gcm, A, ka, EVP_aes_256_gcm(), iv, 12, false, true, in, 64);
	/* One cancelled half-way (C_SessionCancel). */
	ol = sizeof(out);
	assert_ok(p11->C_EncryptInit(S, &cbcpad, B));
	assert_ok(p11->C_EncryptUpdate(S, in, 20, out, &ol));
	assert_ok(p11->C_SessionCancel(S, CKF_ENCRYPT));
	same(&cbcpad, A, ka, EVP_aes_256_cbc(), iv, 16, true, true, in, 64);
	same(&gcm, B, kb, EVP_aes_256_gcm(), iv, 12, false, true, in, 64);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sequence),
		cmocka_unit_test(test_ended_midway),
	};
	return cmocka_run_group_tests_name("kept_ctx", tests, setup, teardown);
}
