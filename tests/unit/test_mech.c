/* SPDX-License-Identifier: Apache-2.0 */
/*
 * module/mech.c, aes.c and remote.c through mech.h: the mechanism table
 * (every entry consistent with its flags and key sizes), the parameter
 * checks it names, the local AES mechanisms against published known
 * answers (NIST SP 800-38A, the GCM specification's test cases, RFC 3394,
 * RFC 5649) with the PKCS #11 5.2 length rules, and the remote operations
 * against a fake KMS port that counts its calls.
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

/* Fill buf, exactly, from hex. */
#define HEX(h, buf) assert_int_equal(unhex((h), (buf), sizeof(buf)), sizeof(buf))
#include "module/mech.h"

static int group_setup(void **state)
{
	return crypto_init() ? 0 : -1;
}

static int group_teardown(void **state)
{
	crypto_fini();
	return 0;
}

/* --- the table ------------------------------------------------------------ */

static void test_table_walk(void **state)
{
	size_t n = mech_count();
	assert_true(n > 10);
	assert_null(mech_at(n));
	for (size_t i = 0; i < n; i++) {
		const mech_info *m = mech_at(i);
		assert_non_null(m);
		assert_non_null(m->name);
		assert_non_null(m->check_param);
		/* one entry per type, found by lookup */
		assert_ptr_equal(mech_lookup(m->type), m);
		assert_true(m->min_key <= m->max_key);
		assert_true(m->flags != 0);
		bool ciphers = m->flags & (CKF_ENCRYPT | CKF_DECRYPT | CKF_WRAP | CKF_UNWRAP);
		bool macs = m->flags & (CKF_SIGN | CKF_VERIFY);
		bool digests = m->flags & CKF_DIGEST;
		bool gens = m->flags & CKF_GENERATE;
		/* exactly one kind of operation per entry */
		assert_int_equal(ciphers + macs + digests + gens, 1);
		if (ciphers) {
			assert_non_null(m->cipher);
			assert_non_null(m->cipher->oneshot);
			assert_non_null(m->cipher->update);
			assert_non_null(m->cipher->final);
			assert_int_equal(m->mac, MAC_NONE);
			/* encrypt goes with decrypt, wrap with unwrap */
			assert_int_equal(!(m->flags & CKF_ENCRYPT), !(m->flags & CKF_DECRYPT));
			assert_int_equal(!(m->flags & CKF_WRAP), !(m->flags & CKF_UNWRAP));
		} else {
			assert_null(m->cipher);
		}
		if (m->flags & (CKF_MESSAGE_ENCRYPT | CKF_MESSAGE_DECRYPT))
			assert_int_equal(m->type, CKM_AES_GCM);
		if (macs && m->mac == MAC_ASYM) {
			/* signing with KMS key pairs: the hashing ones name
			 * their algorithm, the raw ones learn it from the key */
			assert_true(m->kms_only);
			assert_true(m->key_type == CKK_RSA || m->key_type == CKK_EC);
			assert_int_equal(m->multipart, m->salg != 0);
			assert_true(mech_kms_capable(m));
		} else if (macs) {
			assert_true(m->mac == MAC_HMAC || m->mac == MAC_CMAC);
			assert_true(m->mac == MAC_CMAC ? m->key_type == CKK_AES
						       : m->md != NULL);
		}
		if (digests) {
			assert_int_equal(m->mac, MAC_DIGEST);
			assert_non_null(m->md);
			assert_int_equal(m->min_key, 0);
		}
		assert_int_equal(m->keygen, gens);
		if (m->remote) {
			assert_int_equal(m->key_type, CKK_P11KMS_KMS);
			assert_true(mech_key_ok(m, 0));
		}
		if (m->kms_only) {
			assert_true(m->key_type == CKK_RSA || m->key_type == CKK_EC);
			assert_true(mech_kms_capable(m));
		}
		/* key sizes: what is reported is what is accepted */
		if (m->key_type == CKK_AES && !digests) {
			assert_int_equal(m->min_key, 16);
			assert_int_equal(m->max_key, 32);
			assert_true(mech_key_ok(m, 16));
			assert_true(mech_key_ok(m, 24));
			assert_true(mech_key_ok(m, 32));
			assert_false(mech_key_ok(m, 15));
			assert_false(mech_key_ok(m, 20));
			assert_false(mech_key_ok(m, 33));
		} else if (m->key_type == CKK_GENERIC_SECRET && !digests) {
			assert_true(m->key_bits);
			assert_int_equal(m->min_key % 8, 0);
			assert_int_equal(m->max_key % 8, 0);
			assert_true(mech_key_ok(m, m->min_key / 8));
			assert_true(mech_key_ok(m, m->max_key / 8));
			assert_false(mech_key_ok(m, m->min_key / 8 - 1));
			assert_false(mech_key_ok(m, m->max_key / 8 + 1));
		}
	}
}

static void test_lookup_unknown(void **state)
{
	assert_null(mech_lookup(CKM_DES3_CBC));
	assert_null(mech_lookup(CKM_RSA_X_509)); /* no raw RSA */
	assert_null(mech_lookup(CKM_SHA1_RSA_PKCS)); /* no KMS signs SHA-1 */
	assert_non_null(mech_lookup(CKM_RSA_PKCS));   /* signing (docs/SIGNING.md) */
	assert_null(mech_lookup(CKM_VENDOR_DEFINED));
	assert_null(mech_lookup((CK_MECHANISM_TYPE)-1));
	assert_non_null(mech_lookup(CKM_AES_GCM));
}

/* --- parameter checks ------------------------------------------------------ */

static CK_RV check(CK_MECHANISM_TYPE t, void *p, CK_ULONG len)
{
	const mech_info *mi = mech_lookup(t);
	assert_non_null(mi);
	CK_MECHANISM m = {t, p, len};
	return mi->check_param(&m);
}

static void test_params(void **state)
{
	uint8_t iv[17] = {0};
	/* no parameter where none is taken */
	assert_int_equal(check(CKM_AES_ECB, NULL, 0), CKR_OK);
	assert_int_equal(check(CKM_AES_ECB, iv, 16), CKR_MECHANISM_PARAM_INVALID);
	assert_int_equal(check(CKM_AES_KEY_GEN, iv, 1), CKR_MECHANISM_PARAM_INVALID);
	assert_int_equal(check(CKM_SHA256, iv, 4), CKR_MECHANISM_PARAM_INVALID);
	/* CBC: exactly one block of IV */
	assert_int_equal(check(CKM_AES_CBC, iv, 16), CKR_OK);
	assert_int_equal(check(CKM_AES_CBC, iv, 15), CKR_MECHANISM_PARAM_INVALID);
	assert_int_equal(check(CKM_AES_CBC_PAD, iv, 17), CKR_MECHANISM_PARAM_INVALID);
	assert_int_equal(check(CKM_AES_CBC, NULL, 16), CKR_MECHANISM_PARAM_INVALID);
	/* key wrap: no IV or an 8-byte one; KWP a 4-byte one */
	assert_int_equal(check(CKM_AES_KEY_WRAP, NULL, 0), CKR_OK);
	assert_int_equal(check(CKM_AES_KEY_WRAP, iv, 8), CKR_OK);
	assert_int_equal(check(CKM_AES_KEY_WRAP, iv, 7), CKR_MECHANISM_PARAM_INVALID);
	assert_int_equal(check(CKM_AES_KEY_WRAP_KWP, iv, 4), CKR_OK);
	assert_int_equal(check(CKM_AES_KEY_WRAP_KWP, iv, 8), CKR_MECHANISM_PARAM_INVALID);
	/* CTR: the structure, 1..128 counter bits */
	CK_AES_CTR_PARAMS ctr = {.ulCounterBits = 32};
	assert_int_equal(check(CKM_AES_CTR, &ctr, sizeof(ctr)), CKR_OK);
	assert_int_equal(check(CKM_AES_CTR, &ctr, sizeof(ctr) - 1), CKR_MECHANISM_PARAM_INVALID);
	ctr.ulCounterBits = 0;
	assert_int_equal(check(CKM_AES_CTR, &ctr, sizeof(ctr)), CKR_MECHANISM_PARAM_INVALID);
	ctr.ulCounterBits = 129;
	assert_int_equal(check(CKM_AES_CTR, &ctr, sizeof(ctr)), CKR_MECHANISM_PARAM_INVALID);
	/* GCM: IV 1..256 bytes, AAD with a pointer, SP 800-38D tag sizes */
	uint8_t giv[12] = {0}, aad[4] = {0};
	CK_GCM_PARAMS g = {giv, sizeof(giv), 96, aad, sizeof(aad), 128};
	assert_int_equal(check(CKM_AES_GCM, &g, sizeof(g)), CKR_OK);
	assert_int_equal(check(CKM_AES_GCM, &g, sizeof(g) + 1), CKR_MECHANISM_PARAM_INVALID);
	assert_int_equal(check(CKM_AES_GCM, NULL, sizeof(g)), CKR_MECHANISM_PARAM_INVALID);
	g.ulIvLen = 0;
	assert_int_equal(check(CKM_AES_GCM, &g, sizeof(g)), CKR_MECHANISM_PARAM_INVALID);
	g.ulIvLen = 257;
	assert_int_equal(check(CKM_AES_GCM, &g, sizeof(g)), CKR_MECHANISM_PARAM_INVALID);
	g.ulIvLen = 12;
	g.pAAD = NULL;
	assert_int_equal(check(CKM_AES_GCM, &g, sizeof(g)), CKR_MECHANISM_PARAM_INVALID);
	g.pAAD = aad;
	static const CK_ULONG good_tags[] = {32, 64, 96, 104, 112, 120, 128};
	for (size_t i = 0; i < ARRAY_SIZE(good_tags); i++) {
		g.ulTagBits = good_tags[i];
		assert_int_equal(check(CKM_AES_GCM, &g, sizeof(g)), CKR_OK);
	}
	static const CK_ULONG bad_tags[] = {0, 8, 31, 100, 127, 136};
	for (size_t i = 0; i < ARRAY_SIZE(bad_tags); i++) {
		g.ulTagBits = bad_tags[i];
		assert_int_equal(check(CKM_AES_GCM, &g, sizeof(g)), CKR_MECHANISM_PARAM_INVALID);
	}
	/* MACs: _GENERAL takes the output length */
	CK_MAC_GENERAL_PARAMS mg = 16;
	assert_int_equal(check(CKM_SHA256_HMAC_GENERAL, &mg, sizeof(mg)), CKR_OK);
	assert_int_equal(check(CKM_SHA256_HMAC_GENERAL, &mg, 4), CKR_MECHANISM_PARAM_INVALID);
	assert_int_equal(check(CKM_AES_CMAC, &mg, sizeof(mg)), CKR_MECHANISM_PARAM_INVALID);
	/* RSA-OAEP: SHA-1 or SHA-256 with the matching MGF, no label */
	CK_RSA_PKCS_OAEP_PARAMS o = {CKM_SHA256, CKG_MGF1_SHA256, CKZ_DATA_SPECIFIED, NULL, 0};
	assert_int_equal(check(CKM_RSA_PKCS_OAEP, &o, sizeof(o)), CKR_OK);
	assert_int_equal(check(CKM_RSA_PKCS_OAEP, &o, sizeof(o) - 1), CKR_MECHANISM_PARAM_INVALID);
	o.mgf = CKG_MGF1_SHA1;
	assert_int_equal(check(CKM_RSA_PKCS_OAEP, &o, sizeof(o)), CKR_MECHANISM_PARAM_INVALID);
	o.mgf = CKG_MGF1_SHA256;
	o.ulSourceDataLen = 1;
	o.pSourceData = iv;
	assert_int_equal(check(CKM_RSA_PKCS_OAEP, &o, sizeof(o)), CKR_MECHANISM_PARAM_INVALID);
	/* the envelope: an optional context of at most 4096 bytes */
	CK_P11KMS_KMS_PARAMS k = {iv, 4};
	assert_int_equal(check(CKM_P11KMS_KMS_ENVELOPE, NULL, 0), CKR_OK);
	assert_int_equal(check(CKM_P11KMS_KMS_ENVELOPE, &k, sizeof(k)), CKR_OK);
	assert_int_equal(check(CKM_P11KMS_KMS_ENVELOPE, &k, 3), CKR_MECHANISM_PARAM_INVALID);
	k.ulContextLen = 4097;
	assert_int_equal(check(CKM_P11KMS_KMS_ENVELOPE, &k, sizeof(k)),
			 CKR_MECHANISM_PARAM_INVALID);
}

/* A bad parameter starts nothing: the op is free for another init. */
static void test_init_bad_param(void **state)
{
	uint8_t key[16] = {0}, iv[8] = {0};
	cipher_op op;
	CK_MECHANISM m = {CKM_AES_CBC, iv, sizeof(iv)};
	assert_int_equal(cipher_op_init(&op, mech_lookup(CKM_AES_CBC), &m, key, 16, true),
			 CKR_MECHANISM_PARAM_INVALID);
	assert_false(cipher_op_active(&op));
	cipher_op_free(&op);
}

/* --- local AES against known answers ------------------------------------- */

#define SP_KEY "2b7e151628aed2a6abf7158809cf4f3c"
#define SP_PT                                                                  \
	"6bc1bee22e409f96e93d7e117393172a ae2d8a571e03ac9c9eb76fac45af8e51"    \
	"30c81c46a35ce411e5fbc1191a0a52ef f69f2445df4f9b17ad2b417be66c3710"

/* One-shot encrypt and decrypt of pt under m, against ct; the length
 * query and a short buffer first, each leaving the operation active. */
static void kat(CK_MECHANISM_TYPE t, void *param, CK_ULONG plen, const char *keyhex,
		const char *pthex, const char *cthex)
{
	uint8_t key[32], pt[128], ct[160], out[160];
	size_t keylen = unhex(keyhex, key, sizeof(key));
	size_t ptlen = unhex(pthex, pt, sizeof(pt));
	size_t ctlen = unhex(cthex, ct, sizeof(ct));
	assert_true(keylen <= sizeof(key) && ptlen <= sizeof(pt) && ctlen <= sizeof(ct));
	const mech_info *mi = mech_lookup(t);
	CK_MECHANISM m = {t, param, plen};
	for (int enc = 1; enc >= 0; enc--) {
		const uint8_t *in = enc ? pt : ct, *want = enc ? ct : pt;
		size_t inlen = enc ? ptlen : ctlen, wantlen = enc ? ctlen : ptlen;
		cipher_op op;
		assert_int_equal(cipher_op_init(&op, mi, &m, key, keylen, enc), CKR_OK);
		assert_true(cipher_op_active(&op));
		CK_ULONG n = 0;
		assert_int_equal(op.impl->oneshot(&op, in, inlen, NULL, &n), CKR_OK);
		assert_true(n >= wantlen); /* an unwrap may answer an upper bound */
		if (wantlen) {
			n = wantlen - 1;
			assert_int_equal(op.impl->oneshot(&op, in, inlen, out, &n),
					 CKR_BUFFER_TOO_SMALL);
			assert_int_equal(n, wantlen);
		}
		n = sizeof(out);
		assert_int_equal(op.impl->oneshot(&op, in, inlen, out, &n), CKR_OK);
		assert_int_equal(n, wantlen);
		assert_memory_equal(out, want, wantlen);
		cipher_op_free(&op);
		assert_false(cipher_op_active(&op));
	}
}

static void test_cbc_kat(void **state)
{
	/* NIST SP 800-38A F.2.1 / F.2.2, CBC-AES128 */
	uint8_t iv[16];
	HEX("000102030405060708090a0b0c0d0e0f", iv);
	kat(CKM_AES_CBC, iv, 16, SP_KEY, SP_PT,
	    "7649abac8119b246cee98e9b12e9197d 5086cb9b507219ee95db113a917678b2"
	    "73bed6b8e3c1743b7116e69e22229516 3ff1caa1681fac09120eca307586e1a7");
}

static void test_cbc_multipart(void **state)
{
	/* The same vector in parts of 16 and 48 bytes. */
	uint8_t key[16], iv[16], pt[64], ct[64], out[64];
	HEX(SP_KEY, key);
	HEX("000102030405060708090a0b0c0d0e0f", iv);
	HEX(SP_PT, pt);
	HEX("7649abac8119b246cee98e9b12e9197d 5086cb9b507219ee95db113a917678b2"
	    "73bed6b8e3c1743b7116e69e22229516 3ff1caa1681fac09120eca307586e1a7",
	    ct);
	CK_MECHANISM m = {CKM_AES_CBC, iv, 16};
	cipher_op op;
	assert_int_equal(cipher_op_init(&op, mech_lookup(CKM_AES_CBC), &m, key, 16, true),
			 CKR_OK);
	CK_ULONG n = 16, total = 0;
	assert_int_equal(op.impl->update(&op, pt, 16, out, &n), CKR_OK);
	op.multipart = true;
	total += n;
	n = sizeof(out) - total;
	assert_int_equal(op.impl->update(&op, pt + 16, 48, out + total, &n), CKR_OK);
	total += n;
	n = sizeof(out) - total;
	assert_int_equal(op.impl->final(&op, out + total, &n), CKR_OK);
	total += n;
	assert_int_equal(total, 64);
	assert_memory_equal(out, ct, 64);
	cipher_op_free(&op);
}

static void test_ctr_kat(void **state)
{
	/* NIST SP 800-38A F.5.1 / F.5.2, CTR-AES128 */
	CK_AES_CTR_PARAMS p = {.ulCounterBits = 128};
	HEX("f0f1f2f3f4f5f6f7f8f9fafbfcfdfeff", p.cb);
	kat(CKM_AES_CTR, &p, sizeof(p), SP_KEY, SP_PT,
	    "874d6191b620e3261bef6864990db6ce 9806f66b7970fdff8617187bb9fffdff"
	    "5ae4df3edbd5d35e5b4f09020db03eab 1e031dda2fbe03d1792170a0f3009cee");
}

static void test_gcm_kat(void **state)
{
	/* The GCM specification (McGrew and Viega), test case 2: ciphertext
	 * then the 128-bit tag, as PKCS #11 lays it out. */
	uint8_t iv[12] = {0};
	CK_GCM_PARAMS p = {iv, 12, 96, NULL, 0, 128};
	kat(CKM_AES_GCM, &p, sizeof(p), "00000000000000000000000000000000",
	    "00000000000000000000000000000000",
	    "0388dace60b6a392f328c2b971b2fe78 ab6e47d42cec13bdf53a67b21257bddf");
	/* test case 4: with AAD */
	uint8_t iv4[12], aad[20];
	HEX("cafebabefacedbaddecaf888", iv4);
	HEX("feedfacedeadbeeffeedfacedeadbeefabaddad2", aad);
	CK_GCM_PARAMS p4 = {iv4, 12, 96, aad, sizeof(aad), 128};
	kat(CKM_AES_GCM, &p4, sizeof(p4), "feffe9928665731c6d6a8f9467308308",
	    "d9313225f88406e5a55909c5aff5269a 86a7a9531534f7da2e4c303d8a318a72"
	    "1c3c0c95956809532fcf0e2449a6b525 b16aedf5aa0de657ba637b39",
	    "42831ec2217774244b7221b784d0d49c e3aa212f2c02a4e035c17e2329aca12e"
	    "21d514b25466931c7d8f6a5aac84aa05 1ba30b396a0aac973d58e091"
	    "5bc94fbc3221a5db94fae95ae7121a47");
	/* a shorter tag is the prefix of the full one */
	p4.ulTagBits = 96;
	kat(CKM_AES_GCM, &p4, sizeof(p4), "feffe9928665731c6d6a8f9467308308",
	    "d9313225f88406e5a55909c5aff5269a 86a7a9531534f7da2e4c303d8a318a72"
	    "1c3c0c95956809532fcf0e2449a6b525 b16aedf5aa0de657ba637b39",
	    "42831ec2217774244b7221b784d0d49c e3aa212f2c02a4e035c17e2329aca12e"
	    "21d514b25466931c7d8f6a5aac84aa05 1ba30b396a0aac973d58e091"
	    "5bc94fbc3221a5db94fae95a");
}

static void test_gcm_forgery(void **state)
{
	uint8_t key[16] = {0}, iv[12] = {0}, ct[32], out[16];
	HEX("0388dace60b6a392f328c2b971b2fe78 ab6e47d42cec13bdf53a67b21257bddf", ct);
	ct[31] ^= 1;
	CK_GCM_PARAMS p = {iv, 12, 96, NULL, 0, 128};
	CK_MECHANISM m = {CKM_AES_GCM, &p, sizeof(p)};
	cipher_op op;
	assert_int_equal(cipher_op_init(&op, mech_lookup(CKM_AES_GCM), &m, key, 16, false),
			 CKR_OK);
	CK_ULONG n = sizeof(out);
	assert_int_equal(op.impl->oneshot(&op, ct, sizeof(ct), out, &n),
			 CKR_ENCRYPTED_DATA_INVALID);
	/* less than a tag is not a ciphertext */
	n = sizeof(out);
	assert_int_equal(op.impl->oneshot(&op, ct, 15, out, &n), CKR_ENCRYPTED_DATA_LEN_RANGE);
	cipher_op_free(&op);
}

static void test_kw_kat(void **state)
{
	/* RFC 3394 4.1: 128-bit KEK, 128 bits of key data */
	kat(CKM_AES_KEY_WRAP, NULL, 0, "000102030405060708090A0B0C0D0E0F",
	    "00112233445566778899AABBCCDDEEFF",
	    "1FA68B0A8112B447 AEF34BD8FB5A7B82 9D3E862371D2CFE5");
	/* RFC 3394 4.6: 256-bit KEK, 256 bits of key data */
	kat(CKM_AES_KEY_WRAP, NULL, 0,
	    "000102030405060708090A0B0C0D0E0F101112131415161718191A1B1C1D1E1F",
	    "00112233445566778899AABBCCDDEEFF000102030405060708090A0B0C0D0E0F",
	    "28C9F404C4B810F4 CBCCB35CFB87F826 3F5786E2D80ED326 CBC7F0E71A99F43B"
	    "FB988B9B7A02DD21");
	/* the default IV given explicitly is the same */
	uint8_t iv[8];
	HEX("A6A6A6A6A6A6A6A6", iv);
	kat(CKM_AES_KEY_WRAP, iv, 8, "000102030405060708090A0B0C0D0E0F",
	    "00112233445566778899AABBCCDDEEFF",
	    "1FA68B0A8112B447 AEF34BD8FB5A7B82 9D3E862371D2CFE5");
	/* RFC 5649 6: 192-bit KEK, 20 and 7 octets of key */
	kat(CKM_AES_KEY_WRAP_KWP, NULL, 0, "5840df6e29b02af1 ab493b705bf16ea1 ae8338f4dcc176a8",
	    "c37b7e6492584340 bed1220780894115 5068f738",
	    "138bdeaa9b8fa7fc 61f97742e72248ee 5ae6ae5360d1ae6a 5f54f373fa543b6a");
	kat(CKM_AES_KEY_WRAP_KWP, NULL, 0, "5840df6e29b02af1 ab493b705bf16ea1 ae8338f4dcc176a8",
	    "466f7250617369", "afbeb0f07dfbf541 9200f2ccb50bb24f");
}

static void test_kw_integrity(void **state)
{
	uint8_t kek[16], ct[24], out[24];
	HEX("000102030405060708090A0B0C0D0E0F", kek);
	HEX("1FA68B0A8112B447 AEF34BD8FB5A7B82 9D3E862371D2CFE5", ct);
	ct[5] ^= 0x80;
	CK_MECHANISM m = {CKM_AES_KEY_WRAP, NULL, 0};
	cipher_op op;
	assert_int_equal(cipher_op_init(&op, mech_lookup(CKM_AES_KEY_WRAP), &m, kek, 16, false),
			 CKR_OK);
	CK_ULONG n = sizeof(out);
	assert_int_equal(op.impl->oneshot(&op, ct, sizeof(ct), out, &n),
			 CKR_ENCRYPTED_DATA_INVALID);
	/* not a multiple of 8, or too short */
	n = sizeof(out);
	assert_int_equal(op.impl->oneshot(&op, ct, 23, out, &n), CKR_ENCRYPTED_DATA_LEN_RANGE);
	n = sizeof(out);
	assert_int_equal(op.impl->oneshot(&op, ct, 16, out, &n), CKR_ENCRYPTED_DATA_LEN_RANGE);
	cipher_op_free(&op);
	/* wrapping needs at least two semiblocks, in semiblocks */
	assert_int_equal(cipher_op_init(&op, mech_lookup(CKM_AES_KEY_WRAP), &m, kek, 16, true),
			 CKR_OK);
	n = sizeof(out);
	assert_int_equal(op.impl->oneshot(&op, ct, 12, out, &n), CKR_DATA_LEN_RANGE);
	n = sizeof(out);
	assert_int_equal(op.impl->oneshot(&op, ct, 8, out, &n), CKR_DATA_LEN_RANGE);
	cipher_op_free(&op);
}

/* CKM_AES_KEY_WRAP_PAD: RFC 3394 over PKCS #7 padding (always 1..8 bytes
 * of it). Expected values are RFC 3394 wraps of the padded data. */
static void test_kw_pad(void **state)
{
	kat(CKM_AES_KEY_WRAP_PAD, NULL, 0, "000102030405060708090A0B0C0D0E0F",
	    "00112233445566778899AABBCCDDEEFF",
	    "b05471fa00ab70570ea62b3cfc244f1001af95366e5fe1f430ed8ac55b16c5da");
	kat(CKM_AES_KEY_WRAP_PAD, NULL, 0, "000102030405060708090A0B0C0D0E0F",
	    "00112233445566778899aabbcc", "9f7aa87e643dc9da6155981efc31995386d80c891c4573e7");
	/* a wrap whose plaintext ends in a bad pad (...08 09) */
	uint8_t kek[16], ct[32], out[32];
	HEX("000102030405060708090A0B0C0D0E0F", kek);
	HEX("2a47e3dd72cad4db88e8c566ffa8b8d40ce846e8152ca39e824023a4267f96c2", ct);
	CK_MECHANISM m = {CKM_AES_KEY_WRAP_PAD, NULL, 0};
	cipher_op op;
	assert_int_equal(cipher_op_init(&op, mech_lookup(CKM_AES_KEY_WRAP_PAD), &m, kek, 16,
					false),
			 CKR_OK);
	CK_ULONG n = sizeof(out);
	assert_int_equal(op.impl->oneshot(&op, ct, sizeof(ct), out, &n),
			 CKR_ENCRYPTED_DATA_INVALID);
	cipher_op_free(&op);
}

/* --- remote operations through a fake KMS port ----------------------------- */

typedef struct fake_kms {
	int calls, maxes, stds, modlens;
	bool last_encrypt;
	const char *last_key;
	size_t last_ctxlen;
	size_t last_idx;
	remote_req last;
	CK_RV fail;   /* returned by call/std when set */
	uint8_t fill; /* the bytes of std's output (0: 0xc3) */
} fake_kms;

/* The envelope: encryption prefixes "ENC:" (and the context length), decryption
 * strips it. */
static CK_RV fake_call(void *tok, bool encrypt, const char *key_id, const uint8_t *ctx,
		       size_t ctxlen, const uint8_t *in, size_t inlen, uint8_t **out,
		       size_t *outlen)
{
	fake_kms *f = tok;
	f->calls++;
	f->last_encrypt = encrypt;
	f->last_key = key_id;
	f->last_ctxlen = ctxlen;
	if (f->fail)
		return f->fail;
	if (encrypt) {
		*out = sec_alloc(inlen + 4);
		memcpy(*out, "ENC:", 4);
		memcpy(*out + 4, in, inlen);
		*outlen = inlen + 4;
	} else {
		assert_true(inlen >= 4);
		*out = sec_alloc(inlen - 4 ? inlen - 4 : 1);
		memcpy(*out, in + 4, inlen - 4);
		*outlen = inlen - 4;
	}
	return CKR_OK;
}

static size_t fake_max(void *tok, size_t inlen)
{
	((fake_kms *)tok)->maxes++;
	return inlen + 64;
}

/* Standard mechanisms: output of the exact length due, a fixed IV. */
static CK_RV fake_std(void *tok, size_t idx, remote_req *r, uint8_t **out, size_t *outlen)
{
	fake_kms *f = tok;
	f->stds++;
	f->last_idx = idx;
	f->last = *r;
	if (f->fail)
		return f->fail;
	size_t n = r->inlen;
	switch (r->alg) {
	case RALG_AES_KW:
	case RALG_AES_KWP:
		n = r->encrypt ? (r->inlen + 7) / 8 * 8 + 8 : r->inlen - 8;
		break;
	case RALG_AES_GCM:
		n = r->encrypt ? r->inlen + REMOTE_GCM_TAG_LEN : r->inlen - REMOTE_GCM_TAG_LEN;
		if (r->encrypt)
			memset(r->iv, 0x5a, REMOTE_GCM_IV_LEN);
		break;
	default:
		n = r->encrypt ? 256 : 32;
	}
	*out = sec_alloc(n ? n : 1);
	memset(*out, f->fill ? f->fill : 0xc3, n);
	*outlen = n;
	return CKR_OK;
}

static CK_RV fake_modlen(void *tok, size_t idx, size_t *modlen)
{
	((fake_kms *)tok)->modlens++;
	*modlen = 256;
	return CKR_OK;
}

static kms_port port_of(fake_kms *f)
{
	return (kms_port){.tok = f, .call = fake_call, .max = fake_max, .std = fake_std,
			  .modlen = fake_modlen};
}

static void test_remote_envelope(void **state)
{
	fake_kms f = {0};
	kms_port port = port_of(&f);
	const mech_info *mi = mech_lookup(CKM_P11KMS_KMS_ENVELOPE);
	uint8_t ctxb[3] = {1, 2, 3};
	CK_P11KMS_KMS_PARAMS kp = {ctxb, sizeof(ctxb)};
	CK_MECHANISM m = {CKM_P11KMS_KMS_ENVELOPE, &kp, sizeof(kp)};
	cipher_op op;
	assert_int_equal(cipher_op_init_remote(&op, mi, &m, &port, "key-1", true), CKR_OK);
	const uint8_t pt[] = {'h', 'e', 'l', 'l', 'o'};
	uint8_t out[128];
	/* the length query and a short buffer: answered here, no KMS call */
	CK_ULONG n = 0;
	assert_int_equal(op.impl->oneshot(&op, pt, 5, NULL, &n), CKR_OK);
	assert_int_equal(n, 5 + 64);
	n = 10;
	assert_int_equal(op.impl->oneshot(&op, pt, 5, out, &n), CKR_BUFFER_TOO_SMALL);
	assert_int_equal(n, 5 + 64);
	assert_int_equal(f.calls, 0);
	/* the call: through the port, with the key and context */
	n = sizeof(out);
	assert_int_equal(op.impl->oneshot(&op, pt, 5, out, &n), CKR_OK);
	assert_int_equal(f.calls, 1);
	assert_true(f.last_encrypt);
	assert_string_equal(f.last_key, "key-1");
	assert_int_equal(f.last_ctxlen, 3);
	assert_int_equal(n, 9);
	assert_memory_equal(out, "ENC:hello", 9);
	cipher_op_free(&op);

	/* Decryption: the length query is the input length, no call; a
	 * short buffer asks the KMS once and keeps the result for the retry. */
	assert_int_equal(cipher_op_init_remote(&op, mi, &m, &port, "key-1", false), CKR_OK);
	const uint8_t ct[] = {'E', 'N', 'C', ':', 'h', 'e', 'l', 'l', 'o'};
	n = 0;
	assert_int_equal(op.impl->oneshot(&op, ct, 9, NULL, &n), CKR_OK);
	assert_int_equal(n, 9);
	assert_int_equal(f.calls, 1);
	n = 2;
	assert_int_equal(op.impl->oneshot(&op, ct, 9, out, &n), CKR_BUFFER_TOO_SMALL);
	assert_int_equal(n, 5);
	assert_int_equal(f.calls, 2);
	n = 5;
	assert_int_equal(op.impl->oneshot(&op, ct, 9, out, &n), CKR_OK);
	assert_int_equal(f.calls, 2); /* the kept result */
	assert_memory_equal(out, "hello", 5);
	cipher_op_free(&op);

	/* a KMS failure is the caller's result */
	f.fail = CKR_DEVICE_ERROR;
	assert_int_equal(cipher_op_init_remote(&op, mi, &m, &port, "key-1", true), CKR_OK);
	n = sizeof(out);
	assert_int_equal(op.impl->oneshot(&op, pt, 5, out, &n), CKR_DEVICE_ERROR);
	assert_int_equal(f.calls, 3);
	cipher_op_free(&op);
}

static void test_remote_bad_calls(void **state)
{
	fake_kms f = {0};
	kms_port port = port_of(&f), none = {0};
	const mech_info *mi = mech_lookup(CKM_P11KMS_KMS_ENVELOPE);
	CK_MECHANISM m = {CKM_P11KMS_KMS_ENVELOPE, NULL, 0};
	cipher_op op;
	/* no port */
	assert_int_equal(cipher_op_init_remote(&op, mi, &m, &none, "k", true),
			 CKR_GENERAL_ERROR);
	cipher_op_free(&op);
	/* a bad parameter */
	CK_MECHANISM bad = {CKM_P11KMS_KMS_ENVELOPE, &f, 1};
	assert_int_equal(cipher_op_init_remote(&op, mi, &bad, &port, "k", true),
			 CKR_MECHANISM_PARAM_INVALID);
	cipher_op_free(&op);
	/* empty or over-long plaintext: no call */
	assert_int_equal(cipher_op_init_remote(&op, mi, &m, &port, "k", true), CKR_OK);
	static uint8_t big[4097];
	uint8_t out[16];
	CK_ULONG n = sizeof(out);
	assert_int_equal(op.impl->oneshot(&op, big, 0, out, &n), CKR_DATA_LEN_RANGE);
	n = sizeof(out);
	assert_int_equal(op.impl->oneshot(&op, big, sizeof(big), out, &n), CKR_DATA_LEN_RANGE);
	assert_int_equal(f.calls, 0);
	cipher_op_free(&op);
	/* standard mechanisms: a key wrap IV the KMS does not take */
	uint8_t iv[8] = {0};
	CK_MECHANISM kw = {CKM_AES_KEY_WRAP, iv, 8};
	assert_int_equal(cipher_op_init_kms(&op, mech_lookup(CKM_AES_KEY_WRAP), &kw, &port, 0,
					    256, 0, true, true),
			 CKR_MECHANISM_PARAM_INVALID);
	assert_false(cipher_op_active(&op));
	/* GCM on a KMS key: 96-bit IVs and 128-bit tags only */
	uint8_t giv[16] = {0};
	CK_GCM_PARAMS g = {giv, 16, 128, NULL, 0, 128};
	CK_MECHANISM gm = {CKM_AES_GCM, &g, sizeof(g)};
	assert_int_equal(cipher_op_init_kms(&op, mech_lookup(CKM_AES_GCM), &gm, &port, 0, 256,
					    0, true, false),
			 CKR_MECHANISM_PARAM_INVALID);
	/* a mechanism the KMS does not run */
	CK_MECHANISM cbc = {CKM_AES_CBC, giv, 16};
	assert_false(mech_kms_capable(mech_lookup(CKM_AES_CBC)));
	assert_int_equal(cipher_op_init_kms(&op, mech_lookup(CKM_AES_CBC), &cbc, &port, 0, 256,
					    0, true, false),
			 CKR_MECHANISM_INVALID);
	assert_int_equal(f.stds + f.modlens, 0);
}

static void test_remote_std(void **state)
{
	fake_kms f = {0};
	kms_port port = port_of(&f);
	cipher_op op;
	uint8_t key[24] = {0}, out[64];
	/* key wrap on configured key 3 */
	CK_MECHANISM kw = {CKM_AES_KEY_WRAP, NULL, 0};
	assert_int_equal(cipher_op_init_kms(&op, mech_lookup(CKM_AES_KEY_WRAP), &kw, &port, 3,
					    256, 0, true, true),
			 CKR_OK);
	CK_ULONG n = 0;
	assert_int_equal(op.impl->oneshot(&op, key, 24, NULL, &n), CKR_OK);
	assert_int_equal(n, 32);
	n = 31;
	assert_int_equal(op.impl->oneshot(&op, key, 24, out, &n), CKR_BUFFER_TOO_SMALL);
	assert_int_equal(n, 32);
	n = sizeof(out);
	assert_int_equal(op.impl->oneshot(&op, key, 20, out, &n), CKR_DATA_LEN_RANGE);
	assert_int_equal(f.stds, 0);
	n = sizeof(out);
	assert_int_equal(op.impl->oneshot(&op, key, 24, out, &n), CKR_OK);
	assert_int_equal(n, 32);
	assert_int_equal(f.stds, 1);
	assert_int_equal(f.last_idx, 3);
	assert_int_equal(f.last.alg, RALG_AES_KW);
	assert_true(f.last.encrypt);
	assert_true(f.last.key_op);
	assert_int_equal(f.last.key_bits, 256);
	assert_int_equal(f.last.inlen, 24);
	cipher_op_free(&op);

	/* key wrap with PKCS #7 padding: padded here, RFC 3394 in the KMS */
	CK_MECHANISM kwp = {CKM_AES_KEY_WRAP_PAD, NULL, 0};
	const mech_info *pad = mech_lookup(CKM_AES_KEY_WRAP_PAD);
	assert_int_equal(cipher_op_init_kms(&op, pad, &kwp, &port, 3, 256, 0, true, true),
			 CKR_OK);
	n = sizeof(out);
	assert_int_equal(op.impl->oneshot(&op, key, 16, out, &n), CKR_OK);
	assert_int_equal(n, 32);
	assert_int_equal(f.last.alg, RALG_AES_KW);
	assert_int_equal(f.last.inlen, 24);
	cipher_op_free(&op);
	assert_int_equal(cipher_op_init_kms(&op, pad, &kwp, &port, 3, 256, 0, false, true),
			 CKR_OK);
	f.fill = 0x08; /* a good pad: 8 bytes of 8 */
	n = sizeof(out);
	assert_int_equal(op.impl->oneshot(&op, out, 32, out, &n), CKR_OK);
	assert_int_equal(n, 16);
	f.fill = 0x09; /* a bad one */
	n = sizeof(out);
	assert_int_equal(op.impl->oneshot(&op, out, 32, out, &n), CKR_ENCRYPTED_DATA_INVALID);
	f.fill = 0;
	cipher_op_free(&op);
	assert_int_equal(f.stds, 4);

	/* GCM encrypt: the KMS's IV lands in the caller's pIv */
	uint8_t iv[12] = {0};
	CK_GCM_PARAMS g = {iv, 12, 96, NULL, 0, 128};
	CK_MECHANISM gm = {CKM_AES_GCM, &g, sizeof(g)};
	assert_int_equal(cipher_op_init_kms(&op, mech_lookup(CKM_AES_GCM), &gm, &port, 1, 128,
					    0, true, false),
			 CKR_OK);
	n = 0;
	assert_int_equal(op.impl->oneshot(&op, key, 10, NULL, &n), CKR_OK);
	assert_int_equal(n, 10 + 16);
	assert_int_equal(f.stds, 4);
	n = sizeof(out);
	assert_int_equal(op.impl->oneshot(&op, key, 10, out, &n), CKR_OK);
	assert_int_equal(n, 26);
	assert_int_equal(f.stds, 5);
	assert_int_equal(f.last.alg, RALG_AES_GCM);
	assert_false(f.last.key_op);
	for (int i = 0; i < 12; i++)
		assert_int_equal(iv[i], 0x5a);
	cipher_op_free(&op);

	/* RSA-OAEP without a known modulus asks the port once, at init */
	CK_RSA_PKCS_OAEP_PARAMS o = {CKM_SHA256, CKG_MGF1_SHA256, CKZ_DATA_SPECIFIED, NULL, 0};
	CK_MECHANISM om = {CKM_RSA_PKCS_OAEP, &o, sizeof(o)};
	assert_int_equal(cipher_op_init_kms(&op, mech_lookup(CKM_RSA_PKCS_OAEP), &om, &port, 2,
					    0, 0, true, false),
			 CKR_OK);
	assert_int_equal(f.modlens, 1);
	n = 0;
	assert_int_equal(op.impl->oneshot(&op, key, 24, NULL, &n), CKR_OK);
	assert_int_equal(n, 256);
	assert_int_equal(f.stds, 5);
	cipher_op_free(&op);

	/* mech_kms_gcm, as the message API calls it */
	uint8_t *res = NULL;
	size_t reslen = 0;
	uint8_t miv[12] = {0};
	assert_int_equal(mech_kms_gcm(&port, 4, 256, true, NULL, 0, key, 8, miv, &res, &reslen),
			 CKR_OK);
	assert_int_equal(f.stds, 6);
	assert_int_equal(f.last_idx, 4);
	assert_int_equal(reslen, 8 + 16);
	assert_int_equal(miv[0], 0x5a);
	sec_free(res);
	assert_int_equal(mech_kms_gcm(&port, 4, 256, false, NULL, 0, key, 15, miv, &res,
				      &reslen),
			 CKR_ENCRYPTED_DATA_LEN_RANGE);
	assert_int_equal(f.stds, 6);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_table_walk),
		cmocka_unit_test(test_lookup_unknown),
		cmocka_unit_test(test_params),
		cmocka_unit_test(test_init_bad_param),
		cmocka_unit_test(test_cbc_kat),
		cmocka_unit_test(test_cbc_multipart),
		cmocka_unit_test(test_ctr_kat),
		cmocka_unit_test(test_gcm_kat),
		cmocka_unit_test(test_gcm_forgery),
		cmocka_unit_test(test_kw_kat),
		cmocka_unit_test(test_kw_integrity),
		cmocka_unit_test(test_kw_pad),
		cmocka_unit_test(test_remote_envelope),
		cmocka_unit_test(test_remote_bad_calls),
		cmocka_unit_test(test_remote_std),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
