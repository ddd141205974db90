/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Digests, HMAC, CMAC and AES-CTR through the exported API, against
 * published known-answer vectors: FIPS 180-4 examples (SHA-2), RFC 4231
 * (HMAC-SHA-2), RFC 4493 (AES-CMAC), NIST SP 800-38A F.5 (AES-CTR).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

static h_env env;
static CK_SESSION_HANDLE S;

static int setup(void **state)
{
	h_env_new(&env, "required", "");
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

static CK_OBJECT_HANDLE import(CK_KEY_TYPE kt, const uint8_t *key, CK_ULONG len,
			       CK_BBOOL token)
{
	CK_OBJECT_CLASS c = CKO_SECRET_KEY;
	CK_BBOOL t = CK_TRUE;
	CK_ATTRIBUTE tmpl[] = {{CKA_CLASS, &c, sizeof(c)},   {CKA_KEY_TYPE, &kt, sizeof(kt)},
			       {CKA_VALUE, (void *)key, len}, {CKA_TOKEN, &token, 1},
			       {CKA_SIGN, &t, 1},             {CKA_VERIFY, &t, 1}};
	CK_OBJECT_HANDLE h;
	assert_ok(p11->C_CreateObject(S, tmpl, 6, &h));
	return h;
}

static void check_digest(CK_MECHANISM_TYPE mt, const char *msg, const char *want_hex)
{
	uint8_t want[64], got[64];
	size_t wl = h_unhex(want_hex, want, sizeof(want));
	CK_MECHANISM m = {mt, NULL, 0};
	CK_ULONG gl = 0;
	assert_ok(p11->C_DigestInit(S, &m));
	assert_ok(p11->C_Digest(S, (CK_BYTE_PTR)msg, strlen(msg), NULL, &gl));
	assert_int_equal(gl, wl);
	gl = 1;
	assert_rv(p11->C_Digest(S, (CK_BYTE_PTR)msg, strlen(msg), got, &gl),
		  CKR_BUFFER_TOO_SMALL);
	gl = sizeof(got);
	assert_ok(p11->C_Digest(S, (CK_BYTE_PTR)msg, strlen(msg), got, &gl));
	assert_memory_equal(got, want, wl);
	/* multi-part, byte by byte */
	assert_ok(p11->C_DigestInit(S, &m));
	for (size_t i = 0; i < strlen(msg); i++)
		assert_ok(p11->C_DigestUpdate(S, (CK_BYTE_PTR)msg + i, 1));
	gl = sizeof(got);
	assert_ok(p11->C_DigestFinal(S, got, &gl));
	assert_memory_equal(got, want, wl);
	assert_rv(p11->C_DigestFinal(S, got, &gl), CKR_OPERATION_NOT_INITIALIZED);
}

static void test_digests(void **state)
{
	check_digest(CKM_SHA256, "abc",
		     "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
	check_digest(CKM_SHA384, "abc",
		     "cb00753f45a35e8bb5a03d699ac65007272c32ab0eded1631a8b605a43ff5bed"
		     "8086072ba1e7cc2358baeca134c825a7");
	check_digest(CKM_SHA512, "abc",
		     "ddaf35a193617abacc417349ae20413112e6fa4e89a97ea20a9eeee64b55d39a"
		     "2192992a274fc1a836ba3c23a3feebbd454d4423643ce80e2a9ac94fa54ca49f");
	CK_MECHANISM bad = {CKM_SHA256, "x", 1};
	assert_rv(p11->C_DigestInit(S, &bad), CKR_MECHANISM_PARAM_INVALID);
	CK_MECHANISM m = {CKM_SHA256, NULL, 0};
	assert_ok(p11->C_DigestInit(S, &m));
	assert_rv(p11->C_DigestInit(S, &m), CKR_OPERATION_ACTIVE);
	/* C_DigestKey hashes the key's value. */
	uint8_t kv[3] = {'a', 'b', 'c'};
	CK_OBJECT_HANDLE k = import(CKK_GENERIC_SECRET, kv, 3, CK_FALSE);
	assert_ok(p11->C_DigestKey(S, k));
	uint8_t got[32];
	CK_ULONG gl = sizeof(got);
	assert_ok(p11->C_DigestFinal(S, got, &gl));
	uint8_t want[32];
	h_unhex("ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad", want, 32);
	assert_memory_equal(got, want, 32);
	assert_ok(p11->C_DigestInit(S, &m));
	assert_rv(p11->C_DigestKey(S, 424242), CKR_KEY_HANDLE_INVALID);
}

static void sign_verify(CK_MECHANISM *m, CK_OBJECT_HANDLE k, const uint8_t *msg,
			size_t ml, const uint8_t *want, size_t wl)
{
	uint8_t sig[64];
	CK_ULONG sl = 0;
	assert_ok(p11->C_SignInit(S, m, k));
	assert_ok(p11->C_Sign(S, (CK_BYTE_PTR)msg, ml, NULL, &sl));
	assert_int_equal(sl, wl);
	sl = sizeof(sig);
	assert_ok(p11->C_Sign(S, (CK_BYTE_PTR)msg, ml, sig, &sl));
	assert_int_equal(sl, wl);
	assert_memory_equal(sig, want, wl);
	/* multi-part in two halves */
	assert_ok(p11->C_SignInit(S, m, k));
	assert_ok(p11->C_SignUpdate(S, (CK_BYTE_PTR)msg, ml / 2));
	assert_ok(p11->C_SignUpdate(S, (CK_BYTE_PTR)msg + ml / 2, ml - ml / 2));
	sl = sizeof(sig);
	assert_ok(p11->C_SignFinal(S, sig, &sl));
	assert_memory_equal(sig, want, wl);
	assert_ok(p11->C_VerifyInit(S, m, k));
	assert_ok(p11->C_Verify(S, (CK_BYTE_PTR)msg, ml, (CK_BYTE_PTR)want, wl));
	uint8_t bad[64];
	memcpy(bad, want, wl);
	bad[0] ^= 1;
	assert_ok(p11->C_VerifyInit(S, m, k));
	assert_rv(p11->C_Verify(S, (CK_BYTE_PTR)msg, ml, bad, wl), CKR_SIGNATURE_INVALID);
	assert_ok(p11->C_VerifyInit(S, m, k));
	assert_rv(p11->C_Verify(S, (CK_BYTE_PTR)msg, ml, (CK_BYTE_PTR)want, wl - 1),
		  CKR_SIGNATURE_LEN_RANGE);
	assert_ok(p11->C_VerifyInit(S, m, k));
	assert_ok(p11->C_VerifyUpdate(S, (CK_BYTE_PTR)msg, ml));
	assert_ok(p11->C_VerifyFinal(S, (CK_BYTE_PTR)want, wl));
}

static void test_hmac_rfc4231(void **state)
{
	/* RFC 4231 test case 2: key "Jefe". */
	const char *msg = "what do ya want for nothing?";
	CK_OBJECT_HANDLE k = import(CKK_GENERIC_SECRET, (const uint8_t *)"Jefe", 4, CK_TRUE);
	uint8_t w256[32], w384[48], w512[64];
	h_unhex("5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843", w256, 32);
	h_unhex("af45d2e376484031617f78d2b58a6b1b9c7ef464f5a01b47e42ec3736322445e"
		"8e2240ca5e69e2c78b3239ecfab21649", w384, 48);
	h_unhex("164b7a7bfcf819e2e395fbe73b56e0a387bd64222e831fd610270cd7ea250554"
		"9758bf75c05a994a6d034f65f8f0e6fdcaeab1a34d4a6b4b636e070a38bce737", w512, 64);
	CK_MECHANISM m256 = {CKM_SHA256_HMAC, NULL, 0};
	CK_MECHANISM m384 = {CKM_SHA384_HMAC, NULL, 0};
	CK_MECHANISM m512 = {CKM_SHA512_HMAC, NULL, 0};
	sign_verify(&m256, k, (const uint8_t *)msg, strlen(msg), w256, 32);
	sign_verify(&m384, k, (const uint8_t *)msg, strlen(msg), w384, 48);
	sign_verify(&m512, k, (const uint8_t *)msg, strlen(msg), w512, 64);
	/* _GENERAL: truncated output (RFC 4231 allows truncation). */
	CK_MAC_GENERAL_PARAMS len = 16;
	CK_MECHANISM g = {CKM_SHA256_HMAC_GENERAL, &len, sizeof(len)};
	sign_verify(&g, k, (const uint8_t *)msg, strlen(msg), w256, 16);
	len = 33;
	assert_rv(p11->C_SignInit(S, &g, k), CKR_MECHANISM_PARAM_INVALID);
	/* An AES key is the wrong type for HMAC. */
	uint8_t aes[16] = {0};
	CK_OBJECT_HANDLE a = import(CKK_AES, aes, 16, CK_FALSE);
	assert_rv(p11->C_SignInit(S, &m256, a), CKR_KEY_TYPE_INCONSISTENT);
	/* A key that may not sign. */
	CK_BBOOL f = CK_FALSE;
	CK_ATTRIBUTE ns = {CKA_SIGN, &f, 1};
	assert_ok(p11->C_SetAttributeValue(S, k, &ns, 1));
	assert_rv(p11->C_SignInit(S, &m256, k), CKR_KEY_FUNCTION_NOT_PERMITTED);
}

static void test_cmac_rfc4493(void **state)
{
	uint8_t key[16], msg[64], t0[16], t16[16], t40[16], t64[16];
	h_unhex("2b7e151628aed2a6abf7158809cf4f3c", key, 16);
	h_unhex("6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51"
		"30c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710", msg, 64);
	h_unhex("bb1d6929e95937287fa37d129b756746", t0, 16);
	h_unhex("070a16b46b4d4144f79bdd9dd04a287c", t16, 16);
	h_unhex("dfa66747de9ae63030ca32611497c827", t40, 16);
	h_unhex("51f0bebf7e3b9d92fc49741779363cfe", t64, 16);
	CK_OBJECT_HANDLE k = import(CKK_AES, key, 16, CK_FALSE);
	CK_MECHANISM m = {CKM_AES_CMAC, NULL, 0};
	sign_verify(&m, k, msg, 0, t0, 16);
	sign_verify(&m, k, msg, 16, t16, 16);
	sign_verify(&m, k, msg, 40, t40, 16);
	sign_verify(&m, k, msg, 64, t64, 16);
	CK_MAC_GENERAL_PARAMS len = 8;
	CK_MECHANISM g = {CKM_AES_CMAC_GENERAL, &len, sizeof(len)};
	sign_verify(&g, k, msg, 40, t40, 8);
}

static void test_ctr_sp800_38a(void **state)
{
	uint8_t key[16], pt[64], ct[64], out[64];
	h_unhex("2b7e151628aed2a6abf7158809cf4f3c", key, 16);
	h_unhex("6bc1bee22e409f96e93d7e117393172aae2d8a571e03ac9c9eb76fac45af8e51"
		"30c81c46a35ce411e5fbc1191a0a52eff69f2445df4f9b17ad2b417be66c3710", pt, 64);
	h_unhex("874d6191b620e3261bef6864990db6ce9806f66b7970fdff8617187bb9fffdff"
		"5ae4df3edbd5d35e5b4f09020db03eab1e031dda2fbe03d1792170a0f3009cee", ct, 64);
	CK_OBJECT_HANDLE k = import(CKK_AES, key, 16, CK_FALSE);
	CK_AES_CTR_PARAMS p = {.ulCounterBits = 128};
	h_unhex("f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff", p.cb, 16);
	CK_MECHANISM m = {CKM_AES_CTR, &p, sizeof(p)};
	CK_ULONG ol = sizeof(out);
	assert_ok(p11->C_EncryptInit(S, &m, k));
	assert_ok(p11->C_Encrypt(S, pt, 64, out, &ol));
	assert_memory_equal(out, ct, 64);
	/* multi-part with odd splits */
	CK_ULONG a = 64, b = 64;
	assert_ok(p11->C_DecryptInit(S, &m, k));
	assert_ok(p11->C_DecryptUpdate(S, ct, 7, out, &a));
	assert_int_equal(a, 7);
	assert_ok(p11->C_DecryptUpdate(S, ct + 7, 57, out + 7, &b));
	assert_int_equal(b, 57);
	CK_ULONG f = 0;
	assert_ok(p11->C_DecryptFinal(S, out, &f));
	assert_memory_equal(out, pt, 64);
	/* A 2-bit counter starting at 3 allows one block only: no wrap. */
	p.ulCounterBits = 2;
	memset(p.cb, 0, 16);
	p.cb[15] = 3;
	assert_ok(p11->C_EncryptInit(S, &m, k));
	ol = sizeof(out);
	assert_rv(p11->C_Encrypt(S, pt, 17, out, &ol), CKR_DATA_LEN_RANGE);
	assert_ok(p11->C_EncryptInit(S, &m, k));
	ol = sizeof(out);
	assert_ok(p11->C_Encrypt(S, pt, 16, out, &ol));
	p.ulCounterBits = 0;
	assert_rv(p11->C_EncryptInit(S, &m, k), CKR_MECHANISM_PARAM_INVALID);
}

int main(void)
{
	h_load();
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_digests, setup, teardown),
		cmocka_unit_test_setup_teardown(test_hmac_rfc4231, setup, teardown),
		cmocka_unit_test_setup_teardown(test_cmac_rfc4493, setup, teardown),
		cmocka_unit_test_setup_teardown(test_ctr_sp800_38a, setup, teardown),
	};
	return cmocka_run_group_tests_name("mac", tests, NULL, NULL);
}
