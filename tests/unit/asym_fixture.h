/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the providers' signing-key tests share (test_aws_provider.c,
 * test_azure.c, test_gcp.c): key pairs made with OpenSSL, their DER SPKI,
 * PEM and public numbers, and ECDSA signatures in DER whose r and s take
 * the awkward shapes (a high bit that needs a leading 0x00, fewer bytes
 * than the curve) the r||s conversion must get right. Include after
 * <cmocka.h>.
 */
#ifndef P11KMS_TEST_ASYM_FIXTURE_H
#define P11KMS_TEST_ASYM_FIXTURE_H

#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

/* DER SubjectPublicKeyInfo of k, malloc'd. */
static inline uint8_t *fx_spki(EVP_PKEY *k, size_t *len)
{
	unsigned char *p = NULL;
	int n = i2d_PUBKEY(k, &p);
	assert_true(n > 0);
	uint8_t *d = malloc((size_t)n);
	assert_non_null(d);
	memcpy(d, p, (size_t)n);
	OPENSSL_free(p);
	*len = (size_t)n;
	return d;
}

/* PEM "PUBLIC KEY" of k, malloc'd, NUL-terminated. */
static inline char *fx_pem(EVP_PKEY *k)
{
	BIO *b = BIO_new(BIO_s_mem());
	assert_non_null(b);
	assert_int_equal(PEM_write_bio_PUBKEY(b, k), 1);
	char *p = NULL;
	long n = BIO_get_mem_data(b, &p);
	char *s = malloc((size_t)n + 1);
	assert_non_null(s);
	memcpy(s, p, (size_t)n);
	s[n] = 0;
	BIO_free(b);
	return s;
}

/* A BIGNUM parameter of k, big-endian, padded to pad bytes when pad. */
static inline size_t fx_bn(EVP_PKEY *k, const char *name, uint8_t *out, size_t pad)
{
	BIGNUM *bn = NULL;
	assert_true(EVP_PKEY_get_bn_param(k, name, &bn));
	int n = pad ? BN_bn2binpad(bn, out, (int)pad) : BN_bn2bin(bn, out);
	BN_free(bn);
	assert_true(n > 0);
	return (size_t)n;
}

/* An ECDSA-Sig-Value for r||s (half bytes each) written by hand, so the
 * test of the decoder does not lean on the encoder under test. */
static inline size_t fx_int_der(const uint8_t *v, size_t n, uint8_t *out)
{
	size_t z = 0;
	while (z + 1 < n && v[z] == 0)
		z++;
	bool pad = v[z] & 0x80;
	size_t len = n - z + pad, o = 0;
	out[o++] = 0x02;
	out[o++] = (uint8_t)len;
	if (pad)
		out[o++] = 0;
	memcpy(out + o, v + z, n - z);
	return o + n - z;
}

static inline size_t fx_ecdsa_der(const uint8_t *rs, size_t half, uint8_t *out)
{
	uint8_t body[2 * (3 + 48)];
	size_t n = fx_int_der(rs, half, body);
	n += fx_int_der(rs + half, half, body + n);
	size_t o = 0;
	out[o++] = 0x30;
	if (n >= 0x80)
		out[o++] = 0x81;
	out[o++] = (uint8_t)n;
	memcpy(out + o, body, n);
	return o + n;
}

/* r with its high bit set (DER adds 0x00), s three bytes short. */
static inline void fx_awkward_rs(uint8_t *rs, size_t half)
{
	for (size_t i = 0; i < half; i++) {
		rs[i] = (uint8_t)(0x80 + i);
		rs[half + i] = i < 3 ? 0 : (uint8_t)(i * 7 + 1);
	}
}

#endif
