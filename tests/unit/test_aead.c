/* SPDX-License-Identifier: Apache-2.0 */
/*
 * module/aead.c through aead.h: the PKCS #11 3.0 message-based AES-GCM
 * operation. Known answers (the GCM specification's test case 4), tag
 * lengths, parameter checks, the length rules, IV generation (counter IVs
 * from a fake reservation callback, random IVs), multi-part messages, and
 * messages on a KMS key through a fake KMS port.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/crypto.h"
#include "common/secmem.h"
#include "unhex.h"
#include "module/aead.h"

static int group_setup(void **state)
{
	return crypto_init() ? 0 : -1;
}

static int group_teardown(void **state)
{
	crypto_fini();
	return 0;
}

/* GCM specification, test case 4 */
#define TC4_KEY "feffe9928665731c6d6a8f9467308308"
#define TC4_IV "cafebabefacedbaddecaf888"
#define TC4_AAD "feedfacedeadbeeffeedfacedeadbeefabaddad2"
#define TC4_PT                                                                 \
	"d9313225f88406e5a55909c5aff5269a 86a7a9531534f7da2e4c303d8a318a72"    \
	"1c3c0c95956809532fcf0e2449a6b525 b16aedf5aa0de657ba637b39"
#define TC4_CT                                                                 \
	"42831ec2217774244b7221b784d0d49c e3aa212f2c02a4e035c17e2329aca12e"    \
	"21d514b25466931c7d8f6a5aac84aa05 1ba30b396a0aac973d58e091"
#define TC4_TAG "5bc94fbc3221a5db94fae95ae7121a47"

typedef struct tc {
	uint8_t key[16], iv[12], aad[20], pt[60], ct[60], tag[16];
} tc;

static void tc4(tc *t)
{
	assert_int_equal(unhex(TC4_KEY, t->key, 16), 16);
	assert_int_equal(unhex(TC4_IV, t->iv, 12), 12);
	assert_int_equal(unhex(TC4_AAD, t->aad, 20), 20);
	assert_int_equal(unhex(TC4_PT, t->pt, 60), 60);
	assert_int_equal(unhex(TC4_CT, t->ct, 60), 60);
	assert_int_equal(unhex(TC4_TAG, t->tag, 16), 16);
}

static const CK_MECHANISM gcm = {CKM_AES_GCM, NULL, 0};

static CK_GCM_MESSAGE_PARAMS params(uint8_t *iv, CK_ULONG ivlen, CK_ULONG fixed,
				    CK_GENERATOR_FUNCTION gen, uint8_t *tag, CK_ULONG tagbits)
{
	return (CK_GCM_MESSAGE_PARAMS){.pIv = iv, .ulIvLen = ivlen, .ulIvFixedBits = fixed,
				       .ivGenerator = gen, .pTag = tag, .ulTagBits = tagbits};
}

/* --- a fake counter reservation -------------------------------------------- */

typedef struct reserve_log {
	int calls;
	uint8_t kid[KID_LEN];
	uint64_t count, first, start;
	CK_RV fail;
} reserve_log;

static CK_RV fake_reserve(void *arg, const uint8_t kid[KID_LEN], uint64_t count,
			  uint64_t *first, uint64_t *start)
{
	reserve_log *r = arg;
	r->calls++;
	memcpy(r->kid, kid, KID_LEN);
	r->count = count;
	if (r->fail)
		return r->fail;
	*first = r->first;
	*start = r->start;
	r->first += count;
	return CKR_OK;
}

/* --- tests ----------------------------------------------------------------- */

static void test_init(void **state)
{
	uint8_t key[16] = {0};
	msg_op op;
	CK_MECHANISM bad = {CKM_AES_GCM, NULL, 4};
	assert_int_equal(msg_op_init(&op, &bad, key, 16, true, NULL),
			 CKR_MECHANISM_PARAM_INVALID);
	assert_false(op.active);
	kms_port none = {0};
	assert_int_equal(msg_op_init_kms(&op, &bad, true, &none, 0, 256),
			 CKR_MECHANISM_PARAM_INVALID);
	assert_false(op.active);
	assert_int_equal(msg_op_init(&op, &gcm, key, 16, true, NULL), CKR_OK);
	assert_true(op.active);
	assert_false(op.has_kid);
	msg_op_free(&op);
	assert_false(op.active);
}

static void test_known_answer(void **state)
{
	tc t;
	tc4(&t);
	uint8_t out[60], tag[16];
	msg_op enc, dec;
	assert_int_equal(msg_op_init(&enc, &gcm, t.key, 16, true, NULL), CKR_OK);
	CK_GCM_MESSAGE_PARAMS p = params(t.iv, 12, 0, CKG_NO_GENERATE, tag, 128);
	CK_ULONG n = sizeof(out);
	assert_int_equal(msg_oneshot(&enc, &p, sizeof(p), t.aad, 20, t.pt, 60, out, &n, NULL,
				     NULL),
			 CKR_OK);
	assert_int_equal(n, 60);
	assert_memory_equal(out, t.ct, 60);
	assert_memory_equal(tag, t.tag, 16);
	/* and back */
	assert_int_equal(msg_op_init(&dec, &gcm, t.key, 16, false, NULL), CKR_OK);
	uint8_t back[60];
	n = sizeof(back);
	assert_int_equal(msg_oneshot(&dec, &p, sizeof(p), t.aad, 20, out, 60, back, &n, NULL,
				     NULL),
			 CKR_OK);
	assert_memory_equal(back, t.pt, 60);
	/* one key, many messages: the same again */
	n = sizeof(out);
	assert_int_equal(msg_oneshot(&enc, &p, sizeof(p), t.aad, 20, t.pt, 60, out, &n, NULL,
				     NULL),
			 CKR_OK);
	assert_memory_equal(out, t.ct, 60);
	msg_op_free(&enc);
	msg_op_free(&dec);
}

static void test_tag_lengths(void **state)
{
	tc t;
	tc4(&t);
	static const CK_ULONG good[] = {32, 64, 96, 104, 112, 120, 128};
	msg_op enc, dec;
	assert_int_equal(msg_op_init(&enc, &gcm, t.key, 16, true, NULL), CKR_OK);
	assert_int_equal(msg_op_init(&dec, &gcm, t.key, 16, false, NULL), CKR_OK);
	for (size_t i = 0; i < sizeof(good) / sizeof(good[0]); i++) {
		uint8_t tag[16], out[60], back[60];
		memset(tag, 0xee, sizeof(tag));
		size_t tl = good[i] / 8;
		CK_GCM_MESSAGE_PARAMS p = params(t.iv, 12, 0, CKG_NO_GENERATE, tag, good[i]);
		CK_ULONG n = sizeof(out);
		assert_int_equal(msg_oneshot(&enc, &p, sizeof(p), t.aad, 20, t.pt, 60, out, &n,
					     NULL, NULL),
				 CKR_OK);
		/* a shorter tag is the prefix of the full one; nothing beyond it
		 * is written */
		assert_memory_equal(tag, t.tag, tl);
		for (size_t j = tl; j < sizeof(tag); j++)
			assert_int_equal(tag[j], 0xee);
		n = sizeof(back);
		assert_int_equal(msg_oneshot(&dec, &p, sizeof(p), t.aad, 20, out, 60, back, &n,
					     NULL, NULL),
				 CKR_OK);
		assert_memory_equal(back, t.pt, 60);
	}
	static const CK_ULONG bad[] = {0, 8, 100, 127, 136};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		uint8_t tag[32], out[60];
		CK_GCM_MESSAGE_PARAMS p = params(t.iv, 12, 0, CKG_NO_GENERATE, tag, bad[i]);
		CK_ULONG n = sizeof(out);
		assert_int_equal(msg_oneshot(&enc, &p, sizeof(p), t.aad, 20, t.pt, 60, out, &n,
					     NULL, NULL),
				 CKR_MECHANISM_PARAM_INVALID);
	}
	msg_op_free(&enc);
	msg_op_free(&dec);
}

static void test_bad_params(void **state)
{
	tc t;
	tc4(&t);
	uint8_t tag[16], out[60];
	msg_op op, dec;
	assert_int_equal(msg_op_init(&op, &gcm, t.key, 16, true, NULL), CKR_OK);
	assert_int_equal(msg_op_init(&dec, &gcm, t.key, 16, false, NULL), CKR_OK);
	CK_GCM_MESSAGE_PARAMS p = params(t.iv, 12, 0, CKG_NO_GENERATE, tag, 128);
	CK_ULONG n = sizeof(out);
#define TRY(o, pp, plen) msg_oneshot(&(o), (pp), (plen), t.aad, 20, t.pt, 60, out, &n, NULL, NULL)
	assert_int_equal(TRY(op, NULL, sizeof(p)), CKR_MECHANISM_PARAM_INVALID);
	assert_int_equal(TRY(op, &p, sizeof(p) - 1), CKR_MECHANISM_PARAM_INVALID);
	CK_GCM_MESSAGE_PARAMS q = p;
	q.pIv = NULL;
	assert_int_equal(TRY(op, &q, sizeof(q)), CKR_MECHANISM_PARAM_INVALID);
	q = p;
	q.ulIvLen = 0;
	assert_int_equal(TRY(op, &q, sizeof(q)), CKR_MECHANISM_PARAM_INVALID);
	q = p;
	q.ulIvLen = 257;
	assert_int_equal(TRY(op, &q, sizeof(q)), CKR_MECHANISM_PARAM_INVALID);
	q = p;
	q.pTag = NULL;
	assert_int_equal(TRY(op, &q, sizeof(q)), CKR_MECHANISM_PARAM_INVALID);
	q = p;
	q.ulIvFixedBits = 97;
	assert_int_equal(TRY(op, &q, sizeof(q)), CKR_MECHANISM_PARAM_INVALID);
	q = p;
	q.ivGenerator = CKG_GENERATE_RANDOM + 1;
	assert_int_equal(TRY(op, &q, sizeof(q)), CKR_MECHANISM_PARAM_INVALID);
	/* decryption takes the IV it is given */
	q = p;
	q.ivGenerator = CKG_GENERATE_RANDOM;
	assert_int_equal(TRY(dec, &q, sizeof(q)), CKR_MECHANISM_PARAM_INVALID);
	/* arguments */
	assert_int_equal(msg_oneshot(&op, &p, sizeof(p), t.aad, 20, t.pt, 60, out, NULL, NULL,
				     NULL),
			 CKR_ARGUMENTS_BAD);
	assert_int_equal(msg_oneshot(&op, &p, sizeof(p), t.aad, 20, NULL, 60, out, &n, NULL,
				     NULL),
			 CKR_ARGUMENTS_BAD);
	n = sizeof(out);
	assert_int_equal(msg_oneshot(&op, &p, sizeof(p), NULL, 20, t.pt, 60, out, &n, NULL,
				     NULL),
			 CKR_ARGUMENTS_BAD);
	/* after all that the operation still works */
	n = sizeof(out);
	assert_int_equal(TRY(op, &p, sizeof(p)), CKR_OK);
	assert_memory_equal(out, t.ct, 60);
#undef TRY
	msg_op_free(&op);
	msg_op_free(&dec);
}

static void test_length_rules(void **state)
{
	tc t;
	tc4(&t);
	uint8_t tag[16], out[60];
	reserve_log r = {.first = 7};
	uint8_t kid[KID_LEN] = {1};
	msg_op op;
	assert_int_equal(msg_op_init(&op, &gcm, t.key, 16, true, kid), CKR_OK);
	uint8_t iv[12] = {0};
	CK_GCM_MESSAGE_PARAMS p = params(iv, 12, 0, CKG_GENERATE_COUNTER, tag, 128);
	CK_ULONG n = 0;
	assert_int_equal(msg_oneshot(&op, &p, sizeof(p), NULL, 0, t.pt, 60, NULL, &n,
				     fake_reserve, &r),
			 CKR_OK);
	assert_int_equal(n, 60);
	n = 59;
	assert_int_equal(msg_oneshot(&op, &p, sizeof(p), NULL, 0, t.pt, 60, out, &n,
				     fake_reserve, &r),
			 CKR_BUFFER_TOO_SMALL);
	assert_int_equal(n, 60);
	/* neither made an IV */
	assert_int_equal(r.calls, 0);
	n = sizeof(out);
	assert_int_equal(msg_oneshot(&op, &p, sizeof(p), NULL, 0, t.pt, 60, out, &n,
				     fake_reserve, &r),
			 CKR_OK);
	assert_int_equal(r.calls, 1);
	assert_int_equal(iv[11], 7);
	msg_op_free(&op);
}

static void test_counter_iv(void **state)
{
	tc t;
	tc4(&t);
	uint8_t kid[KID_LEN];
	for (int i = 0; i < KID_LEN; i++)
		kid[i] = (uint8_t)(0xa0 + i);
	reserve_log r = {.first = 1000};
	msg_op enc, dec;
	assert_int_equal(msg_op_init(&enc, &gcm, t.key, 16, true, kid), CKR_OK);
	assert_true(enc.has_kid);
	assert_int_equal(msg_op_init(&dec, &gcm, t.key, 16, false, NULL), CKR_OK);
	for (uint64_t k = 0; k < 3; k++) {
		/* 32 fixed bits the caller chose, then the counter */
		uint8_t iv[12] = {0xde, 0xad, 0xbe, 0xef}, tag[16], out[60], back[60];
		CK_GCM_MESSAGE_PARAMS p = params(iv, 12, 32, CKG_GENERATE_COUNTER, tag, 128);
		CK_ULONG n = sizeof(out);
		assert_int_equal(msg_oneshot(&enc, &p, sizeof(p), t.aad, 20, t.pt, 60, out, &n,
					     fake_reserve, &r),
				 CKR_OK);
		uint8_t want[12] = {0xde, 0xad, 0xbe, 0xef};
		uint64_t c = 1000 + k;
		for (int i = 0; i < 8; i++)
			want[4 + i] = (uint8_t)(c >> (56 - 8 * i));
		assert_memory_equal(iv, want, 12);
		/* the generated IV decrypts */
		p.ivGenerator = CKG_NO_GENERATE;
		n = sizeof(back);
		assert_int_equal(msg_oneshot(&dec, &p, sizeof(p), t.aad, 20, out, 60, back, &n,
					     NULL, NULL),
				 CKR_OK);
		assert_memory_equal(back, t.pt, 60);
	}
	/* one reservation of a block for the key's identity */
	assert_int_equal(r.calls, 1);
	assert_memory_equal(r.kid, kid, KID_LEN);
	assert_true(r.count >= 3);
	msg_op_free(&enc);
	msg_op_free(&dec);
}

static void test_counter_refusals(void **state)
{
	tc t;
	tc4(&t);
	uint8_t kid[KID_LEN] = {9}, iv[12] = {0}, tag[16], out[60];
	CK_ULONG n;
	msg_op op;
	reserve_log r = {0};
	CK_GCM_MESSAGE_PARAMS p = params(iv, 12, 32, CKG_GENERATE_COUNTER, tag, 128);
#define ENC(reserve) (n = sizeof(out), msg_oneshot(&op, &p, sizeof(p), NULL, 0, t.pt, 60, \
						  out, &n, (reserve), &r))
	/* no key identity (the token key is not at hand) */
	assert_int_equal(msg_op_init(&op, &gcm, t.key, 16, true, NULL), CKR_OK);
	assert_int_equal(ENC(fake_reserve), CKR_USER_NOT_LOGGED_IN);
	assert_int_equal(r.calls, 0);
	msg_op_free(&op);
	/* no reservation callback */
	assert_int_equal(msg_op_init(&op, &gcm, t.key, 16, true, kid), CKR_OK);
	assert_int_equal(ENC(NULL), CKR_USER_NOT_LOGGED_IN);
	/* fewer than 32 counter bits */
	p.ulIvFixedBits = 65;
	assert_int_equal(ENC(fake_reserve), CKR_MECHANISM_PARAM_INVALID);
	assert_int_equal(r.calls, 0);
	/* the store refuses the reservation */
	p.ulIvFixedBits = 64;
	r.fail = CKR_DEVICE_ERROR;
	assert_int_equal(ENC(fake_reserve), CKR_DEVICE_ERROR);
	assert_int_equal(r.calls, 1);
	msg_op_free(&op);
	/* the counter does not wrap past its field: 32 free bits */
	r = (reserve_log){.first = 0xffffffffu};
	assert_int_equal(msg_op_init(&op, &gcm, t.key, 16, true, kid), CKR_OK);
	assert_int_equal(ENC(fake_reserve), CKR_OK);
	assert_int_equal(iv[8] & iv[9] & iv[10] & iv[11], 0xff);
	assert_int_equal(ENC(fake_reserve), CKR_FUNCTION_FAILED);
	msg_op_free(&op);
	/* A counter that began at a random start takes the field's low bits
	 * and is exhausted after one round of them from its start. */
	r = (reserve_log){.start = (1ULL << 40) + 5, .first = (1ULL << 40) + 5 + 0xfffffffeu};
	assert_int_equal(msg_op_init(&op, &gcm, t.key, 16, true, kid), CKR_OK);
	assert_int_equal(ENC(fake_reserve), CKR_OK);
	assert_int_equal(iv[8] << 24 | iv[9] << 16 | iv[10] << 8 | iv[11], 3);
	assert_int_equal(ENC(fake_reserve), CKR_OK);
	assert_int_equal(ENC(fake_reserve), CKR_FUNCTION_FAILED);
#undef ENC
	msg_op_free(&op);
}

static void test_random_iv(void **state)
{
	tc t;
	tc4(&t);
	uint8_t tag[16], out[60], ivs[2][12];
	msg_op op;
	assert_int_equal(msg_op_init(&op, &gcm, t.key, 16, true, NULL), CKR_OK);
	for (int k = 0; k < 2; k++) {
		memset(ivs[k], 0, 12);
		ivs[k][0] = 0x11;
		ivs[k][1] = 0x22;
		ivs[k][2] = 0x33;
		ivs[k][3] = 0x44;
		CK_GCM_MESSAGE_PARAMS p =
			params(ivs[k], 12, 32, k ? CKG_GENERATE : CKG_GENERATE_RANDOM, tag, 128);
		CK_ULONG n = sizeof(out);
		assert_int_equal(msg_oneshot(&op, &p, sizeof(p), NULL, 0, t.pt, 60, out, &n,
					     NULL, NULL),
				 CKR_OK);
		assert_memory_equal(ivs[k], "\x11\x22\x33\x44", 4);
	}
	assert_memory_not_equal(ivs[0] + 4, ivs[1] + 4, 8);
	/* at least 64 random bits */
	uint8_t iv[12] = {0};
	CK_GCM_MESSAGE_PARAMS p = params(iv, 12, 33, CKG_GENERATE_RANDOM, tag, 128);
	CK_ULONG n = sizeof(out);
	assert_int_equal(msg_oneshot(&op, &p, sizeof(p), NULL, 0, t.pt, 60, out, &n, NULL, NULL),
			 CKR_MECHANISM_PARAM_INVALID);
	msg_op_free(&op);
}

static void test_forgery(void **state)
{
	tc t;
	tc4(&t);
	uint8_t out[60];
	msg_op dec;
	assert_int_equal(msg_op_init(&dec, &gcm, t.key, 16, false, NULL), CKR_OK);
	t.tag[0] ^= 1;
	CK_GCM_MESSAGE_PARAMS p = params(t.iv, 12, 0, CKG_NO_GENERATE, t.tag, 128);
	CK_ULONG n = sizeof(out);
	assert_int_equal(msg_oneshot(&dec, &p, sizeof(p), t.aad, 20, t.ct, 60, out, &n, NULL,
				     NULL),
			 CKR_ENCRYPTED_DATA_INVALID);
	/* nothing of a forgery is released */
	static const uint8_t zero[60];
	assert_memory_equal(out, zero, 60);
	/* other AAD fails the same way */
	t.tag[0] ^= 1;
	t.aad[0] ^= 1;
	n = sizeof(out);
	assert_int_equal(msg_oneshot(&dec, &p, sizeof(p), t.aad, 20, t.ct, 60, out, &n, NULL,
				     NULL),
			 CKR_ENCRYPTED_DATA_INVALID);
	msg_op_free(&dec);
}

static void test_multipart(void **state)
{
	tc t;
	tc4(&t);
	uint8_t tag[16], out[60];
	msg_op op;
	assert_int_equal(msg_op_init(&op, &gcm, t.key, 16, true, NULL), CKR_OK);
	CK_GCM_MESSAGE_PARAMS p = params(t.iv, 12, 0, CKG_NO_GENERATE, tag, 128);
	CK_ULONG n = 0;
	assert_int_equal(msg_next(&op, &p, sizeof(p), t.pt, 10, out, &n, 0),
			 CKR_OPERATION_NOT_INITIALIZED);
	assert_int_equal(msg_begin(&op, &p, sizeof(p), t.aad, 20, NULL, NULL), CKR_OK);
	/* one message at a time */
	n = sizeof(out);
	assert_int_equal(msg_oneshot(&op, &p, sizeof(p), NULL, 0, t.pt, 60, out, &n, NULL, NULL),
			 CKR_OPERATION_ACTIVE);
	assert_int_equal(msg_begin(&op, &p, sizeof(p), t.aad, 20, NULL, NULL),
			 CKR_OPERATION_ACTIVE);
	/* the parameters of the message begun */
	CK_GCM_MESSAGE_PARAMS other = p;
	n = sizeof(out);
	assert_int_equal(msg_next(&op, &other, sizeof(other), t.pt, 10, out, &n, 0),
			 CKR_MECHANISM_PARAM_INVALID);
	CK_ULONG done = 0;
	n = sizeof(out);
	assert_int_equal(msg_next(&op, &p, sizeof(p), t.pt, 25, out, &n, 0), CKR_OK);
	done += n;
	n = sizeof(out) - done;
	assert_int_equal(msg_next(&op, &p, sizeof(p), t.pt + 25, 35, out + done, &n,
				  CKF_END_OF_MESSAGE),
			 CKR_OK);
	done += n;
	assert_int_equal(done, 60);
	assert_memory_equal(out, t.ct, 60);
	assert_memory_equal(tag, t.tag, 16);
	assert_false(op.in_message);
	msg_op_free(&op);
}

/* --- a KMS key: each message is one call through the port ------------------ */

typedef struct fake_kms {
	int stds;
	remote_req last;
} fake_kms;

static CK_RV fake_std(void *tok, size_t idx, remote_req *r, uint8_t **out, size_t *outlen)
{
	fake_kms *f = tok;
	f->stds++;
	f->last = *r;
	size_t n = r->encrypt ? r->inlen + REMOTE_GCM_TAG_LEN : r->inlen - REMOTE_GCM_TAG_LEN;
	*out = sec_alloc(n ? n : 1);
	memset(*out, 0x77, n);
	*outlen = n;
	if (r->encrypt)
		memset(r->iv, 0x5a, REMOTE_GCM_IV_LEN);
	return CKR_OK;
}

static void test_kms_messages(void **state)
{
	fake_kms f = {0};
	kms_port port = {.tok = &f, .std = fake_std};
	msg_op op;
	assert_int_equal(msg_op_init_kms(&op, &gcm, true, &port, 2, 256), CKR_OK);
	uint8_t iv[12] = {0}, tag[16] = {0}, in[8] = {'m', 'e', 's', 's', 'a', 'g', 'e', 's'}, out[8];
	CK_GCM_MESSAGE_PARAMS p = params(iv, 12, 0, CKG_GENERATE_RANDOM, tag, 128);
	CK_ULONG n = 0;
	assert_int_equal(msg_oneshot(&op, &p, sizeof(p), NULL, 0, in, 8, NULL, &n, NULL, NULL),
			 CKR_OK);
	assert_int_equal(n, 8);
	assert_int_equal(f.stds, 0);
	n = sizeof(out);
	assert_int_equal(msg_oneshot(&op, &p, sizeof(p), NULL, 0, in, 8, out, &n, NULL, NULL),
			 CKR_OK);
	assert_int_equal(f.stds, 1);
	assert_int_equal(f.last.alg, RALG_AES_GCM);
	assert_int_equal(f.last.key_bits, 256);
	assert_int_equal(iv[0], 0x5a);  /* the KMS's IV */
	assert_int_equal(tag[0], 0x77); /* the tag after the ciphertext */
	/* the KMS makes the whole IV, with 128-bit tags */
	CK_GCM_MESSAGE_PARAMS q = params(iv, 12, 0, CKG_NO_GENERATE, tag, 128);
	n = sizeof(out);
	assert_int_equal(msg_oneshot(&op, &q, sizeof(q), NULL, 0, in, 8, out, &n, NULL, NULL),
			 CKR_MECHANISM_PARAM_INVALID);
	q = params(iv, 12, 0, CKG_GENERATE_RANDOM, tag, 96);
	assert_int_equal(msg_oneshot(&op, &q, sizeof(q), NULL, 0, in, 8, out, &n, NULL, NULL),
			 CKR_MECHANISM_PARAM_INVALID);
	/* no multi-part messages on a KMS key */
	assert_int_equal(msg_begin(&op, &p, sizeof(p), NULL, 0, NULL, NULL),
			 CKR_FUNCTION_NOT_SUPPORTED);
	assert_int_equal(f.stds, 1);
	msg_op_free(&op);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_init),
		cmocka_unit_test(test_known_answer),
		cmocka_unit_test(test_tag_lengths),
		cmocka_unit_test(test_bad_params),
		cmocka_unit_test(test_length_rules),
		cmocka_unit_test(test_counter_iv),
		cmocka_unit_test(test_counter_refusals),
		cmocka_unit_test(test_random_iv),
		cmocka_unit_test(test_forgery),
		cmocka_unit_test(test_multipart),
		cmocka_unit_test(test_kms_messages),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
