/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Rules of PKCS #11 v3.0 that issue 14 found broken, through the exported
 * API (docs/CONFORMANCE.md):
 *  - a single-part call after an Update fails and ends the operation
 *    (5.8-5.13: it "cannot be used to terminate a multi-part operation",
 *    and every error but CKR_BUFFER_TOO_SMALL ends one), while a length
 *    query or a short buffer leaves the operation running (5.2);
 *  - C_DigestKey on a key whose value the module does not hold answers
 *    CKR_KEY_INDIGESTIBLE (5.12) and leaves the digest as it was;
 *  - AES-GCM parameters out of range answer CKR_MECHANISM_PARAM_INVALID,
 *    in the classic and in the message API; an IV up to 128 bytes works
 *    (checked against OpenSSL), a longer one is refused.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/evp.h>

#include "harness.h"

static h_env env;
static CK_SESSION_HANDLE S;
static CK_OBJECT_HANDLE aes, hmac;
static uint8_t aes_value[32];
static uint8_t iv16[16], data[48], buf[256], ct32[32]; /* ct32: 20 bytes of data, CBC-PAD */

#define ALL_OPS                                                                   \
	(CKF_ENCRYPT | CKF_DECRYPT | CKF_DIGEST | CKF_SIGN | CKF_VERIFY |         \
	 CKF_MESSAGE_ENCRYPT | CKF_MESSAGE_DECRYPT)

static CK_OBJECT_HANDLE make_key(CK_KEY_TYPE kt, const uint8_t *v, CK_BBOOL sensitive)
{
	CK_OBJECT_CLASS c = CKO_SECRET_KEY;
	CK_BBOOL t = CK_TRUE, f = CK_FALSE, ext = !sensitive;
	bool is_aes = kt == CKK_AES;
	CK_ATTRIBUTE tmpl[] = {
		{CKA_CLASS, &c, sizeof(c)},	{CKA_KEY_TYPE, &kt, sizeof(kt)},
		{CKA_VALUE, (void *)v, 32},	{CKA_TOKEN, &f, 1},
		{CKA_SENSITIVE, &sensitive, 1}, {CKA_EXTRACTABLE, &ext, 1},
		{is_aes ? CKA_ENCRYPT : CKA_SIGN, &t, 1},
		{is_aes ? CKA_DECRYPT : CKA_VERIFY, &t, 1},
	};
	/* A data key: it neither wraps nor unwraps (docs/SECURITY.md). */
	CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
	assert_ok(p11->C_CreateObject(S, tmpl, 8, &h));
	return h;
}

static int setup(void **state)
{
	(void)state;
	h_env_new(&env, "required",
		  "\"keys\": [{\"id\": \"master\", \"label\": \"kms-master\"}, "
		  "{\"id\": \"master-aes\", \"label\": \"kms-aes\", \"type\": \"aes\", \"usage\": \"data\"}]");
	assert_ok(h_initialize(&env));
	h_init_token(&env);
	S = h_user_session(&env);
	uint8_t hv[32];
	h_fill(aes_value, sizeof(aes_value), 0x21);
	h_fill(hv, sizeof(hv), 0x43);
	aes = make_key(CKK_AES, aes_value, CK_FALSE);
	hmac = make_key(CKK_GENERIC_SECRET, hv, CK_FALSE);
	CK_MECHANISM m = {CKM_AES_CBC_PAD, iv16, 16};
	CK_ULONG l = sizeof(ct32);
	assert_ok(p11->C_EncryptInit(S, &m, aes));
	assert_ok(p11->C_Encrypt(S, data, 20, ct32, &l));
	assert_int_equal(l, sizeof(ct32));
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	p11->C_Finalize(NULL);
	h_env_free(&env);
	return 0;
}

/* --- a single-part call after an Update ---------------------------------- */


typedef struct op_kind {
	const char *name;
	CK_RV (*init)(void);
	CK_RV (*update)(void);
	CK_RV (*oneshot)(uint8_t *out, CK_ULONG *len); /* out NULL: a length query */
	CK_RV (*final)(uint8_t *out, CK_ULONG *len);
} op_kind;

static CK_MECHANISM cbc = {CKM_AES_CBC_PAD, iv16, 16};
static CK_MECHANISM sha = {CKM_SHA256, NULL, 0};
static CK_MECHANISM hm = {CKM_SHA256_HMAC, NULL, 0};
static uint8_t sig[32];

static CK_RV enc_init(void)
{
	return p11->C_EncryptInit(S, &cbc, aes);
}
static CK_RV enc_update(void)
{
	CK_ULONG l = sizeof(buf);
	return p11->C_EncryptUpdate(S, data, 32, buf, &l);
}
static CK_RV enc_oneshot(uint8_t *out, CK_ULONG *len)
{
	return p11->C_Encrypt(S, data, 20, out, len);
}
static CK_RV enc_final(uint8_t *out, CK_ULONG *len)
{
	return p11->C_EncryptFinal(S, out, len);
}
static CK_RV dec_init(void)
{
	return p11->C_DecryptInit(S, &cbc, aes);
}
static CK_RV dec_update(void)
{
	CK_ULONG l = sizeof(buf);
	return p11->C_DecryptUpdate(S, ct32, 32, buf, &l);
}
static CK_RV dec_oneshot(uint8_t *out, CK_ULONG *len)
{
	return p11->C_Decrypt(S, ct32, 32, out, len);
}
static CK_RV dec_final(uint8_t *out, CK_ULONG *len)
{
	return p11->C_DecryptFinal(S, out, len);
}
static CK_RV dig_init(void)
{
	return p11->C_DigestInit(S, &sha);
}
static CK_RV dig_update(void)
{
	return p11->C_DigestUpdate(S, data, 3);
}
static CK_RV dig_key(void)
{
	return p11->C_DigestKey(S, aes);
}
static CK_RV dig_oneshot(uint8_t *out, CK_ULONG *len)
{
	return p11->C_Digest(S, data, 3, out, len);
}
static CK_RV dig_final(uint8_t *out, CK_ULONG *len)
{
	return p11->C_DigestFinal(S, out, len);
}
static CK_RV sig_init(void)
{
	return p11->C_SignInit(S, &hm, hmac);
}
static CK_RV sig_update(void)
{
	return p11->C_SignUpdate(S, data, 3);
}
static CK_RV sig_oneshot(uint8_t *out, CK_ULONG *len)
{
	return p11->C_Sign(S, data, 3, out, len);
}
static CK_RV sig_final(uint8_t *out, CK_ULONG *len)
{
	return p11->C_SignFinal(S, out, len);
}
static CK_RV ver_init(void)
{
	return p11->C_VerifyInit(S, &hm, hmac);
}
static CK_RV ver_update(void)
{
	return p11->C_VerifyUpdate(S, data, 3);
}
static CK_RV ver_oneshot(uint8_t *out, CK_ULONG *len)
{
	(void)out, (void)len;
	return p11->C_Verify(S, data, 3, sig, sizeof(sig));
}
static CK_RV ver_final(uint8_t *out, CK_ULONG *len)
{
	(void)out, (void)len;
	return p11->C_VerifyFinal(S, sig, sizeof(sig));
}

static const op_kind kinds[] = {
	{"encrypt", enc_init, enc_update, enc_oneshot, enc_final},
	{"decrypt", dec_init, dec_update, dec_oneshot, dec_final},
	{"digest", dig_init, dig_update, dig_oneshot, dig_final},
	{"digest (C_DigestKey)", dig_init, dig_key, dig_oneshot, dig_final},
	{"sign", sig_init, sig_update, sig_oneshot, sig_final},
	{"verify", ver_init, ver_update, ver_oneshot, ver_final},
};

static void test_oneshot_after_update(void **state)
{
	(void)state;
	unsigned fails = 0;
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		const op_kind *k = &kinds[i];
		/* with an output buffer, and as a length query: both end it */
		for (int query = 0; query < 2; query++) {
			assert_ok(k->init());
			assert_ok(k->update());
			CK_ULONG l = sizeof(buf);
			CK_RV rv = k->oneshot(query ? NULL : buf, &l);
			CK_RV fin = k->final(buf, &(CK_ULONG){sizeof(buf)});
			CK_RV again = k->init();
			if (rv != CKR_OPERATION_ACTIVE || fin != CKR_OPERATION_NOT_INITIALIZED ||
			    again != CKR_OK) {
				print_message("%s%s: one-shot after update 0x%lx (want "
					      "CKR_OPERATION_ACTIVE), then final 0x%lx (want "
					      "CKR_OPERATION_NOT_INITIALIZED), init 0x%lx\n",
					      k->name, query ? ", length query" : "",
					      (unsigned long)rv, (unsigned long)fin,
					      (unsigned long)again);
				fails++;
			}
			assert_ok(p11->C_SessionCancel(S, ALL_OPS));
		}
	}
	if (fails)
		fail_msg("%u kinds of operation went on after a refused one-shot call", fails);
	assert_true(h_log_contains(&env, "a single-part call after an Update"));
}

/* A length query or a short buffer leaves the operation running, one-shot
 * and final alike (5.2); the answer after them is the right one. */
static void test_length_query_keeps_operation(void **state)
{
	(void)state;
	for (size_t i = 0; i < sizeof(kinds) / sizeof(kinds[0]); i++) {
		const op_kind *k = &kinds[i];
		if (k->oneshot == ver_oneshot || k->update == dig_key)
			continue; /* verify has no output; C_DigestKey is covered by digest */
		uint8_t want[256];
		CK_ULONG wl = sizeof(want), l = 0;
		assert_ok(k->init());
		assert_ok(k->oneshot(want, &wl));
		assert_ok(k->init());
		assert_ok(k->oneshot(NULL, &l));
		assert_true(l >= wl);
		l = wl - 1;
		assert_rv(k->oneshot(buf, &l), CKR_BUFFER_TOO_SMALL);
		assert_true(l >= wl);
		l = sizeof(buf);
		assert_ok(k->oneshot(buf, &l));
		assert_int_equal(l, wl);
		assert_memory_equal(buf, want, wl);
		/* and it ended there */
		assert_rv(k->final(buf, &(CK_ULONG){sizeof(buf)}), CKR_OPERATION_NOT_INITIALIZED);
		/* the same at Final */
		assert_ok(k->init());
		assert_ok(k->update());
		l = 0;
		assert_ok(k->final(NULL, &l));
		CK_ULONG need = l;
		if (need) {
			l = 0;
			assert_rv(k->final(buf, &l), CKR_BUFFER_TOO_SMALL);
		}
		l = sizeof(buf);
		assert_ok(k->final(buf, &l));
		assert_true(l <= need);
		assert_rv(k->final(buf, &(CK_ULONG){sizeof(buf)}), CKR_OPERATION_NOT_INITIALIZED);
	}
}

/* --- C_DigestKey --------------------------------------------------------- */

static void sha256_of(const uint8_t *p, size_t n, uint8_t out[32])
{
	unsigned int l = 32;
	assert_int_equal(EVP_Digest(p, n, out, &l, EVP_sha256(), NULL), 1);
}

static void test_digest_key(void **state)
{
	(void)state;
	uint8_t got[32], want[32];
	CK_ULONG gl = sizeof(got);
	/* Nothing to digest into: that first, whatever the key. */
	assert_rv(p11->C_DigestKey(S, 0x7ffff123), CKR_OPERATION_NOT_INITIALIZED);
	assert_rv(p11->C_DigestKey(0x7ffffff0, aes), CKR_SESSION_HANDLE_INVALID);
	/* KMS key objects: their value never leaves the KMS. */
	const char *kms[] = {"kms-master", "kms-aes"};
	for (int i = 0; i < 2; i++) {
		assert_ok(p11->C_DigestInit(S, &sha));
		assert_ok(p11->C_DigestUpdate(S, (CK_BYTE_PTR) "abc", 3));
		assert_rv(p11->C_DigestKey(S, h_find_label(S, kms[i])), CKR_KEY_INDIGESTIBLE);
		/* the digest goes on, as it was before the refused key */
		gl = sizeof(got);
		assert_ok(p11->C_DigestFinal(S, got, &gl));
		sha256_of((const uint8_t *)"abc", 3, want);
		assert_memory_equal(got, want, 32);
	}
	assert_true(h_log_contains(&env, "a KMS key object's value never leaves the KMS"));
	/* Not a key. */
	CK_OBJECT_CLASS dc = CKO_DATA;
	CK_BBOOL f = CK_FALSE;
	CK_ATTRIBUTE dt[] = {{CKA_CLASS, &dc, sizeof(dc)}, {CKA_TOKEN, &f, 1},
			     {CKA_VALUE, "data", 4}};
	CK_OBJECT_HANDLE d;
	assert_ok(p11->C_CreateObject(S, dt, 3, &d));
	assert_ok(p11->C_DigestInit(S, &sha));
	assert_rv(p11->C_DigestKey(S, d), CKR_KEY_INDIGESTIBLE);
	assert_ok(p11->C_SessionCancel(S, CKF_DIGEST));
	/* A sensitive, unextractable local key: the module holds its value and
	 * SHA-2 does not give it away, so it is digested (5.12 allows it). */
	uint8_t v[32];
	h_fill(v, sizeof(v), 0x65);
	CK_OBJECT_HANDLE sk = make_key(CKK_AES, v, CK_TRUE);
	assert_ok(p11->C_DigestInit(S, &sha));
	assert_ok(p11->C_DigestKey(S, sk));
	gl = sizeof(got);
	assert_ok(p11->C_DigestFinal(S, got, &gl));
	sha256_of(v, sizeof(v), want);
	assert_memory_equal(got, want, 32);
}

/* --- AES-GCM parameters ------------------------------------------------- */

static uint8_t giv[300], gct[256], gpt[256];

static CK_GCM_PARAMS gcm(CK_ULONG ivlen, CK_ULONG tagbits)
{
	for (size_t i = 0; i < sizeof(giv); i++)
		giv[i] = (uint8_t)(i * 13 + 1);
	return (CK_GCM_PARAMS){giv, ivlen, ivlen * 8, (CK_BYTE_PTR) "aad", 3, tagbits};
}

/* AES-256-GCM by OpenSSL, for the module's answer to be checked. */
static void openssl_gcm(const uint8_t *key, const uint8_t *iv, size_t ivlen,
			const uint8_t *pt, size_t n, uint8_t *ct_tag)
{
	EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
	int l;
	assert_int_equal(EVP_EncryptInit_ex(c, EVP_aes_256_gcm(), NULL, NULL, NULL), 1);
	assert_int_equal(EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_SET_IVLEN, (int)ivlen, NULL), 1);
	assert_int_equal(EVP_EncryptInit_ex(c, NULL, NULL, key, iv), 1);
	assert_int_equal(EVP_EncryptUpdate(c, NULL, &l, (const uint8_t *)"aad", 3), 1);
	assert_int_equal(EVP_EncryptUpdate(c, ct_tag, &l, pt, (int)n), 1);
	assert_int_equal(EVP_EncryptFinal_ex(c, ct_tag + l, &l), 1);
	assert_int_equal(EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_GCM_GET_TAG, 16, ct_tag + n), 1);
	EVP_CIPHER_CTX_free(c);
}

static void expect_refused(const char *what, CK_GCM_PARAMS p, CK_OBJECT_HANDLE k)
{
	CK_MECHANISM m = {CKM_AES_GCM, &p, sizeof(p)};
	CK_RV e = p11->C_EncryptInit(S, &m, k), d = p11->C_DecryptInit(S, &m, k);
	CK_ULONG l = sizeof(gct);
	CK_RV w = p11->C_WrapKey(S, &m, k, aes, gct, &l);
	if (e != CKR_MECHANISM_PARAM_INVALID || d != CKR_MECHANISM_PARAM_INVALID ||
	    (k == aes && w != CKR_MECHANISM_PARAM_INVALID))
		fail_msg("GCM %s: C_EncryptInit 0x%lx, C_DecryptInit 0x%lx, C_WrapKey 0x%lx, "
			 "want CKR_MECHANISM_PARAM_INVALID",
			 what, (unsigned long)e, (unsigned long)d, (unsigned long)w);
	/* and nothing was started */
	assert_rv(p11->C_EncryptFinal(S, gct, &l), CKR_OPERATION_NOT_INITIALIZED);
	assert_rv(p11->C_DecryptFinal(S, gct, &l), CKR_OPERATION_NOT_INITIALIZED);
}

static void test_gcm_params(void **state)
{
	(void)state;
	/* IVs the module takes, up to 128 bytes, give OpenSSL's answer. */
	static const CK_ULONG ok_lens[] = {1, 12, 16, 100, 128};
	for (size_t i = 0; i < sizeof(ok_lens) / sizeof(ok_lens[0]); i++) {
		CK_GCM_PARAMS p = gcm(ok_lens[i], 128);
		CK_MECHANISM m = {CKM_AES_GCM, &p, sizeof(p)};
		uint8_t want[64];
		openssl_gcm(aes_value, giv, ok_lens[i], data, 40, want);
		CK_ULONG cl = sizeof(gct), pl = sizeof(gpt);
		assert_ok(p11->C_EncryptInit(S, &m, aes));
		assert_ok(p11->C_Encrypt(S, data, 40, gct, &cl));
		assert_int_equal(cl, 56);
		assert_memory_equal(gct, want, 56);
		assert_ok(p11->C_DecryptInit(S, &m, aes));
		assert_ok(p11->C_Decrypt(S, gct, cl, gpt, &pl));
		assert_int_equal(pl, 40);
		assert_memory_equal(gpt, data, 40);
	}
	/* Longer IVs, and other parameters out of range, are refused. */
	static const CK_ULONG bad_lens[] = {0, 129, 200, 256, 4096};
	for (size_t i = 0; i < sizeof(bad_lens) / sizeof(bad_lens[0]); i++) {
		char what[40];
		snprintf(what, sizeof(what), "IV of %lu bytes", (unsigned long)bad_lens[i]);
		expect_refused(what, gcm(bad_lens[i], 128), aes);
	}
	assert_true(h_log_contains(&env, "AES-GCM IV length 129 is out of range 1..128"));
	CK_GCM_PARAMS p = gcm(12, 128);
	p.pIv = NULL;
	expect_refused("NULL pIv", p, aes);
	static const CK_ULONG bad_tags[] = {0, 8, 40, 127, 136};
	for (size_t i = 0; i < sizeof(bad_tags) / sizeof(bad_tags[0]); i++)
		expect_refused("tag length", gcm(12, bad_tags[i]), aes);
	p = gcm(12, 128);
	p.ulIvBits = 95;
	expect_refused("ulIvBits 95 for a 12-byte IV", p, aes);
	assert_true(h_log_contains(&env, "ulIvBits 95 disagrees with ulIvLen 12"));
	p = gcm(12, 128);
	p.pAAD = NULL;
	expect_refused("NULL pAAD", p, aes);
	/* ulIvBits 0: "do not use ulIvBits" (v3.0), so 0 is fine. */
	p = gcm(12, 96);
	p.ulIvBits = 0;
	CK_MECHANISM m = {CKM_AES_GCM, &p, sizeof(p)};
	CK_ULONG cl = sizeof(gct);
	assert_ok(p11->C_EncryptInit(S, &m, aes));
	assert_ok(p11->C_Encrypt(S, data, 16, gct, &cl));
	assert_int_equal(cl, 16 + 12);
	/* A KMS AES key: the same rules, before what the KMS allows. */
	expect_refused("IV of 129 bytes, KMS key", gcm(129, 128), h_find_label(S, "kms-aes"));
}

static CK_GCM_MESSAGE_PARAMS msg_params(CK_ULONG ivlen, CK_GENERATOR_FUNCTION gen,
					uint8_t *tag, CK_ULONG tagbits)
{
	for (size_t i = 0; i < sizeof(giv); i++)
		giv[i] = (uint8_t)(i * 7 + 3);
	return (CK_GCM_MESSAGE_PARAMS){giv, ivlen, 0, gen, tag, tagbits};
}

static CK_RV encrypt_message(CK_GCM_MESSAGE_PARAMS *p)
{
	CK_ULONG l = sizeof(gct);
	return p11->C_EncryptMessage(S, p, sizeof(*p), (CK_BYTE_PTR) "aad", 3, data, 40, gct, &l);
}

static void test_gcm_message_params(void **state)
{
	(void)state;
	CK_MECHANISM m = {CKM_AES_GCM, NULL, 0};
	uint8_t tag[16];
	assert_ok(p11->C_MessageEncryptInit(S, &m, aes));
	assert_ok(p11->C_MessageDecryptInit(S, &m, aes));
	/* 128 bytes: OpenSSL's answer, and back. */
	CK_GCM_MESSAGE_PARAMS p = msg_params(128, CKG_NO_GENERATE, tag, 128);
	uint8_t want[64];
	openssl_gcm(aes_value, giv, 128, data, 40, want);
	assert_ok(encrypt_message(&p));
	assert_memory_equal(gct, want, 40);
	assert_memory_equal(tag, want + 40, 16);
	CK_ULONG pl = sizeof(gpt);
	assert_ok(p11->C_DecryptMessage(S, &p, sizeof(p), (CK_BYTE_PTR) "aad", 3, gct, 40, gpt,
					&pl));
	assert_memory_equal(gpt, data, 40);
	/* Refused, and the message-based operations go on. */
	struct {
		const char *what;
		CK_GCM_MESSAGE_PARAMS p;
	} bad[] = {
		{"IV of 129 bytes", msg_params(129, CKG_NO_GENERATE, tag, 128)},
		{"IV of 256 bytes", msg_params(256, CKG_NO_GENERATE, tag, 128)},
		{"random IV of 129 bytes", msg_params(129, CKG_GENERATE_RANDOM, tag, 128)},
		{"IV of 0 bytes", msg_params(0, CKG_NO_GENERATE, tag, 128)},
		{"tag of 40 bits", msg_params(12, CKG_NO_GENERATE, tag, 40)},
		{"NULL pTag", msg_params(12, CKG_NO_GENERATE, NULL, 128)},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		CK_GCM_MESSAGE_PARAMS q = bad[i].p;
		CK_RV e = encrypt_message(&q);
		CK_RV b = p11->C_EncryptMessageBegin(S, &q, sizeof(q), NULL, 0);
		q = bad[i].p;
		q.ivGenerator = CKG_NO_GENERATE;
		pl = sizeof(gpt);
		CK_RV d = p11->C_DecryptMessage(S, &q, sizeof(q), NULL, 0, gct, 40, gpt, &pl);
		if (e != CKR_MECHANISM_PARAM_INVALID || b != CKR_MECHANISM_PARAM_INVALID ||
		    d != CKR_MECHANISM_PARAM_INVALID)
			fail_msg("%s: C_EncryptMessage 0x%lx, C_EncryptMessageBegin 0x%lx, "
				 "C_DecryptMessage 0x%lx, want CKR_MECHANISM_PARAM_INVALID",
				 bad[i].what, (unsigned long)e, (unsigned long)b,
				 (unsigned long)d);
	}
	p = msg_params(12, CKG_GENERATE_RANDOM, tag, 128);
	assert_ok(encrypt_message(&p));
	assert_ok(p11->C_MessageEncryptFinal(S));
	assert_ok(p11->C_MessageDecryptFinal(S));
	/* A KMS AES key refuses the long IV as a parameter, not the KMS. */
	assert_ok(p11->C_MessageEncryptInit(S, &m, h_find_label(S, "kms-aes")));
	p = msg_params(129, CKG_GENERATE_RANDOM, tag, 128);
	assert_rv(encrypt_message(&p), CKR_MECHANISM_PARAM_INVALID);
	assert_ok(p11->C_MessageEncryptFinal(S));
}

int main(void)
{
	h_load();
	h_fill(data, sizeof(data), 0x70);
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_oneshot_after_update, setup, teardown),
		cmocka_unit_test_setup_teardown(test_length_query_keeps_operation, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_digest_key, setup, teardown),
		cmocka_unit_test_setup_teardown(test_gcm_params, setup, teardown),
		cmocka_unit_test_setup_teardown(test_gcm_message_params, setup, teardown),
	};
	return cmocka_run_group_tests_name("conformance", tests, NULL, NULL);
}
