/* SPDX-License-Identifier: Apache-2.0 */
/*
 * providers/common/codec.c: RFC 4648 section 10 vectors in both alphabets,
 * every byte value against OpenSSL's encoder, strict rejection (alphabet,
 * whitespace, padding, non-zero trailing bits), the rule that a string is
 * accepted exactly when it is the canonical encoding of its bytes, random
 * round trips, secure-memory output, hex and RFC 3986 percent-encoding;
 * the asymmetric-key encodings: SPKI checks (sizes, curves, other key
 * kinds, trailing bytes), SPKI from RSA numbers and EC coordinates equal
 * to OpenSSL's own DER, PEM blocks, strict ECDSA DER <-> r||s, and the
 * signature forms sign returns.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <openssl/evp.h>

#include "asym_fixture.h"
#include "common/crypto.h"
#include "common/secmem.h"
#include "providers/common/codec.h"

static void free_out(uint8_t *p, bool secret)
{
	if (secret)
		sec_free(p);
	else
		free(p);
}

/* Decode s (whole string) and compare with want. */
static void check_decode(bool url, const char *s, const char *want)
{
	uint8_t *out = NULL;
	size_t n = 99;
	bool ok = url ? b64url_decode(s, strlen(s), false, &out, &n)
		      : b64_decode(s, strlen(s), false, &out, &n);
	if (!ok)
		fail_msg("%s decode of \"%s\" refused", url ? "b64url" : "b64", s);
	assert_non_null(out);
	assert_int_equal(n, strlen(want));
	assert_memory_equal(out, want, n);
	free(out);
}

static void check_reject(bool url, const char *s, size_t len)
{
	uint8_t *out = (uint8_t *)1;
	size_t n = 99;
	bool ok = url ? b64url_decode(s, len, false, &out, &n)
		      : b64_decode(s, len, false, &out, &n);
	if (ok)
		fail_msg("%s decode of \"%.*s\" accepted", url ? "b64url" : "b64",
			 (int)len, s);
	assert_null(out);
	assert_int_equal(n, 0);
}

/* RFC 4648 section 10. */
static const struct {
	const char *in, *std, *url;
} rfc_vectors[] = {
	{"", "", ""},
	{"f", "Zg==", "Zg"},
	{"fo", "Zm8=", "Zm8"},
	{"foo", "Zm9v", "Zm9v"},
	{"foob", "Zm9vYg==", "Zm9vYg"},
	{"fooba", "Zm9vYmE=", "Zm9vYmE"},
	{"foobar", "Zm9vYmFy", "Zm9vYmFy"},
};

static void test_rfc4648_vectors(void **state)
{
	for (size_t i = 0; i < sizeof(rfc_vectors) / sizeof(rfc_vectors[0]); i++) {
		const uint8_t *in = (const uint8_t *)rfc_vectors[i].in;
		size_t n = strlen(rfc_vectors[i].in);
		char *s = b64_encode(in, n), *u = b64url_encode(in, n);
		assert_string_equal(s, rfc_vectors[i].std);
		assert_string_equal(u, rfc_vectors[i].url);
		free(s);
		free(u);
		check_decode(false, rfc_vectors[i].std, rfc_vectors[i].in);
		check_decode(true, rfc_vectors[i].url, rfc_vectors[i].in);
		/* base64url takes complete padding too (PROTOCOLS.md 2.3). */
		check_decode(true, rfc_vectors[i].std, rfc_vectors[i].in);
	}
	/* NULL with length 0 is the empty string. */
	char *e = b64_encode(NULL, 0);
	assert_string_equal(e, "");
	free(e);
}

/* Every byte value in every position of a group, against OpenSSL. */
static void test_all_bytes_match_openssl(void **state)
{
	uint8_t in[256 + 2];
	for (int i = 0; i < 256 + 2; i++)
		in[i] = (uint8_t)(i * 7 + (i >> 8));
	for (size_t off = 0; off < 3; off++) {
		for (size_t n = 256 - 2; n <= 256; n++) {
			unsigned char ref[400];
			int rl = EVP_EncodeBlock(ref, in + off, (int)n);
			char *s = b64_encode(in + off, n);
			assert_int_equal(strlen(s), (size_t)rl);
			assert_memory_equal(s, ref, (size_t)rl);
			/* url = std with - _ and no padding */
			char *u = b64url_encode(in + off, n);
			for (int k = 0; k < rl; k++)
				ref[k] = ref[k] == '+' ? '-' : ref[k] == '/' ? '_' : ref[k];
			while (rl > 0 && ref[rl - 1] == '=')
				rl--;
			assert_int_equal(strlen(u), (size_t)rl);
			assert_memory_equal(u, ref, (size_t)rl);
			uint8_t *d;
			size_t dn;
			assert_true(b64_decode(s, strlen(s), false, &d, &dn));
			assert_int_equal(dn, n);
			assert_memory_equal(d, in + off, n);
			free(d);
			assert_true(b64url_decode(u, strlen(u), true, &d, &dn));
			assert_int_equal(dn, n);
			assert_memory_equal(d, in + off, n);
			sec_free(d);
			free(s);
			free(u);
		}
	}
}

/* The 32-byte Azure example of PROTOCOLS.md 2.3. */
static void test_azure_example(void **state)
{
	const char *v = "ovQIlbB0DgWhZA7sgkPxbg9H-Ly-VlNGPSgGrrZvlIo";
	uint8_t *d;
	size_t n;
	assert_true(b64url_decode(v, strlen(v), false, &d, &n));
	assert_int_equal(n, 32);
	char *again = b64url_encode(d, n);
	assert_string_equal(again, v);
	free(again);
	free(d);
	/* The same value in the standard alphabet is refused by each other. */
	check_reject(false, v, strlen(v));
}

static void test_reject_std(void **state)
{
	static const char *bad[] = {
		"Zg=",      /* length not a multiple of 4 */
		"Zg",       /* padding required */
		"Zm9",      /* likewise */
		"Z",        /* one character carries no byte */
		"Z===",     /* too much padding */
		"====",     /* nothing but padding */
		"Zg==Zg==", /* padding in the middle */
		"Zm=v",     /* likewise */
		"=Zm9",     /* and at the start */
		"Zh==",     /* non-zero trailing bits (RFC 4648 3.5) */
		"Zm9=",     /* likewise, two-byte group */
		" Zm9v",    /* whitespace anywhere */
		"Zm9v ",
		"Zm9v\n",
		"Zm 9v",
		"Zm9v\r\n",
		"Zm-v",     /* url alphabet */
		"Zm_v",
		"Zm9v====", /* a whole group of padding */
		"Zm9v=",
		"Zm.v",
		"Zm9\xc3",  /* non-ASCII */
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		check_reject(false, bad[i], strlen(bad[i]));
	/* A NUL inside the given length. */
	check_reject(false, "Zm\0v", 4);
	/* NULL with a length. */
	check_reject(false, NULL, 4);
}

static void test_reject_url(void **state)
{
	static const char *bad[] = {
		"Zm9vY",    /* 1 character left over */
		"Z",
		"Zm9vYg=",  /* incomplete padding */
		"Zm9vYg=A",
		"Zg=",
		"Zh",       /* non-zero trailing bits */
		"Zm9",
		"Zm+v",     /* standard alphabet */
		"Zm/v",
		"Zm9v Zm9v",
		"Zm9v\n",
		"=Zm9",
		"Zg==Zg",
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		check_reject(true, bad[i], strlen(bad[i]));
	check_reject(true, "Zm\0v", 4);
}

/* Only the given length is read: the characters after it do not count. */
static void test_length_bound(void **state)
{
	uint8_t *d;
	size_t n;
	assert_true(b64_decode("Zm9vYmFy!!!", 8, false, &d, &n));
	assert_int_equal(n, 6);
	assert_memory_equal(d, "foobar", 6);
	free(d);
	assert_true(b64url_decode("Zm9vYg+/", 6, false, &d, &n));
	assert_int_equal(n, 4);
	free(d);
	/* Empty input decodes to an empty, freeable buffer. */
	assert_true(b64_decode("", 0, false, &d, &n));
	assert_non_null(d);
	assert_int_equal(n, 0);
	free(d);
	assert_true(b64url_decode(NULL, 0, true, &d, &n));
	assert_non_null(d);
	assert_int_equal(n, 0);
	sec_free(d);
}

/* Strictness as one property: a random string is accepted exactly when it
 * is the canonical encoding of what it decodes to. */
static void test_accepts_only_canonical(void **state)
{
	static const char alpha[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
		"+/-_=== \n.";
	srand(12345);
	size_t accepted[2] = {0, 0};
	for (int iter = 0; iter < 200000; iter++) {
		char s[16];
		size_t len = (size_t)rand() % 13;
		for (size_t i = 0; i < len; i++)
			s[i] = alpha[(size_t)rand() % (sizeof(alpha) - 1)];
		s[len] = '\0';
		for (int url = 0; url < 2; url++) {
			uint8_t *d;
			size_t n;
			bool ok = url ? b64url_decode(s, len, false, &d, &n)
				      : b64_decode(s, len, false, &d, &n);
			if (!ok)
				continue;
			accepted[url]++;
			char *e = url ? b64url_encode(d, n) : b64_encode(d, n);
			if (url) {
				/* Padded input: compare with the padding added. */
				size_t el = strlen(e);
				char padded[24];
				snprintf(padded, sizeof(padded), "%s%.*s", e,
					 (int)((4 - el % 4) % 4), "==");
				if (strcmp(e, s) != 0 && strcmp(padded, s) != 0)
					fail_msg("b64url accepted non-canonical \"%s\"", s);
			} else if (strcmp(e, s) != 0) {
				fail_msg("b64 accepted non-canonical \"%s\"", s);
			}
			free(e);
			free(d);
		}
	}
	/* The property was exercised, not vacuous. */
	assert_true(accepted[0] > 1000);
	assert_true(accepted[1] > 1000);
}

static void test_random_round_trips(void **state)
{
	uint8_t buf[600];
	srand(777);
	for (size_t len = 0; len < sizeof(buf); len += 1 + len / 8) {
		for (int rep = 0; rep < 4; rep++) {
			for (size_t i = 0; i < len; i++)
				buf[i] = (uint8_t)rand();
			for (int url = 0; url < 2; url++) {
				for (int secret = 0; secret < 2; secret++) {
					char *e = url ? b64url_encode(buf, len)
						      : b64_encode(buf, len);
					assert_non_null(e);
					uint8_t *d;
					size_t n;
					bool ok = url ? b64url_decode(e, strlen(e), secret, &d, &n)
						      : b64_decode(e, strlen(e), secret, &d, &n);
					assert_true(ok);
					assert_int_equal(n, len);
					assert_memory_equal(d, buf, len);
					free_out(d, secret);
					free(e);
				}
			}
		}
	}
}

/* secret = true: the output is secure memory (sec_free'd, counted). */
static void test_secret_output(void **state)
{
	size_t before = sec_in_use();
	uint8_t *d;
	size_t n;
	assert_true(b64_decode("Zm9vYmFy", 8, true, &d, &n));
	assert_true(sec_in_use() > before);
	assert_int_equal(sec_size(d), 6);
	sec_free(d);
	assert_int_equal(sec_in_use(), before);
	/* A refusal leaves nothing behind. */
	assert_false(b64_decode("Zm9vYmF!", 8, true, &d, &n));
	assert_int_equal(sec_in_use(), before);
}

static void test_hex(void **state)
{
	const uint8_t in[] = {0x00, 0x01, 0x09, 0x0a, 0x0f, 0x10, 0x7f, 0x80,
			      0x9a, 0xa9, 0xf0, 0xff};
	char out[2 * sizeof(in) + 1];
	hex_encode(in, sizeof(in), out);
	assert_string_equal(out, "0001090a0f107f809aa9f0ff");
	char e[1] = {'x'};
	hex_encode(NULL, 0, e);
	assert_string_equal(e, "");
	/* every byte */
	char all[513];
	uint8_t b[256];
	for (int i = 0; i < 256; i++)
		b[i] = (uint8_t)i;
	hex_encode(b, 256, all);
	for (int i = 0; i < 256; i++) {
		char want[3];
		snprintf(want, sizeof(want), "%02x", i);
		assert_memory_equal(all + 2 * i, want, 2);
	}
}

static void test_pct(void **state)
{
	char *p = pct_encode("AZaz09-._~", 10);
	assert_string_equal(p, "AZaz09-._~");
	free(p);
	const char *s = "a b/c?d=e&f+g%h\xc3\xa9:@!*'()";
	p = pct_encode(s, strlen(s));
	assert_string_equal(p, "a%20b%2Fc%3Fd%3De%26f%2Bg%25h%C3%A9%3A%40%21%2A%27%28%29");
	free(p);
	/* NUL bytes inside the length are encoded, not a terminator. */
	p = pct_encode("a\0b", 3);
	assert_string_equal(p, "a%00b");
	free(p);
	p = pct_encode("", 0);
	assert_string_equal(p, "");
	free(p);
	/* Every byte: unreserved kept, the rest %XX upper case. */
	char all[256];
	for (int i = 0; i < 256; i++)
		all[i] = (char)i;
	p = pct_encode(all, 256);
	size_t o = 0;
	for (int i = 0; i < 256; i++) {
		bool keep = (i >= 'A' && i <= 'Z') || (i >= 'a' && i <= 'z') ||
			    (i >= '0' && i <= '9') || i == '-' || i == '.' ||
			    i == '_' || i == '~';
		if (keep) {
			assert_int_equal((unsigned char)p[o], i);
			o++;
		} else {
			char want[4];
			snprintf(want, sizeof(want), "%%%02X", i);
			assert_memory_equal(p + o, want, 3);
			o += 3;
		}
	}
	assert_int_equal(strlen(p), o);
	free(p);
}

/* --- asymmetric keys ---------------------------------------------------------------- */

static EVP_PKEY *keygen(const char *type, const char *curve, size_t bits)
{
	EVP_PKEY *k = curve ? EVP_PKEY_Q_keygen(NULL, NULL, type, curve)
			    : EVP_PKEY_Q_keygen(NULL, NULL, type, bits);
	assert_non_null(k);
	return k;
}

static p11k_err check_key(EVP_PKEY *k, spki_desc *d)
{
	size_t n;
	uint8_t *der = fx_spki(k, &n);
	char why[160] = "";
	p11k_err e = spki_check(der, n, d, why, sizeof(why));
	if (e != P11K_OK)
		assert_true(why[0]);
	free(der);
	return e;
}

static void test_spki_check(void **state)
{
	(void)state;
	spki_desc d;
	EVP_PKEY *rsa = keygen("RSA", NULL, 2048), *p256 = keygen("EC", "P-256", 0),
		 *p384 = keygen("EC", "P-384", 0), *small = keygen("RSA", NULL, 1024),
		 *p521 = keygen("EC", "P-521", 0), *k1 = keygen("EC", "secp256k1", 0),
		 *ed = keygen("ED25519", NULL, 0);
	assert_int_equal(check_key(rsa, &d), P11K_OK);
	assert_false(d.ec);
	assert_int_equal(d.bits, 2048);
	assert_int_equal(check_key(p256, &d), P11K_OK);
	assert_true(d.ec);
	assert_int_equal(d.bits, 256);
	assert_int_equal(check_key(p384, &d), P11K_OK);
	assert_int_equal(d.bits, 384);
	assert_int_equal(check_key(small, &d), P11K_ERR_KEY_TYPE);
	assert_int_equal(check_key(p521, &d), P11K_ERR_KEY_TYPE);
	assert_int_equal(check_key(k1, &d), P11K_ERR_KEY_TYPE);
	assert_int_equal(check_key(ed, &d), P11K_ERR_KEY_TYPE);
	/* Not one SPKI: truncated, trailing byte, garbage, empty, huge. */
	size_t n;
	uint8_t *der = fx_spki(p256, &n), big[4096] = {0x30};
	uint8_t *longer = malloc(n + 1);
	memcpy(longer, der, n);
	longer[n] = 0;
	char why[160];
	assert_int_equal(spki_check(der, n - 1, &d, why, sizeof(why)), P11K_ERR_BAD_REPLY);
	assert_int_equal(spki_check(longer, n + 1, &d, why, sizeof(why)), P11K_ERR_BAD_REPLY);
	assert_int_equal(spki_check((const uint8_t *)"hello", 5, &d, why, sizeof(why)),
			 P11K_ERR_BAD_REPLY);
	assert_int_equal(spki_check(der, 0, &d, why, sizeof(why)), P11K_ERR_BAD_REPLY);
	assert_int_equal(spki_check(big, sizeof(big), &d, why, sizeof(why)), P11K_ERR_BAD_REPLY);
	/* A point off the curve: the last byte of y changed. */
	der[n - 1] ^= 1;
	assert_int_equal(spki_check(der, n, &d, why, sizeof(why)), P11K_ERR_BAD_REPLY);
	free(der);
	free(longer);
	EVP_PKEY *all[] = {rsa, p256, p384, small, p521, k1, ed};
	for (size_t i = 0; i < ARRAY_SIZE(all); i++)
		EVP_PKEY_free(all[i]);
}

static void test_spki_build(void **state)
{
	(void)state;
	char why[160];
	EVP_PKEY *rsa = keygen("RSA", NULL, 2048);
	uint8_t n[600], e[16], *der = NULL, x[48], y[48];
	size_t nl = fx_bn(rsa, OSSL_PKEY_PARAM_RSA_N, n + 1, 0) + 1, el, wl, dl;
	n[0] = 0; /* a leading zero, as JWKs may carry */
	el = fx_bn(rsa, OSSL_PKEY_PARAM_RSA_E, e, 0);
	uint8_t *want = fx_spki(rsa, &wl);
	assert_int_equal(spki_from_rsa(n, nl, e, el, &der, &dl, why, sizeof(why)), P11K_OK);
	assert_int_equal(dl, wl);
	assert_memory_equal(der, want, wl);
	free(der);
	free(want);
	/* An even exponent, a short modulus. */
	uint8_t two = 2;
	assert_int_equal(spki_from_rsa(n, nl, &two, 1, &der, &dl, why, sizeof(why)),
			 P11K_ERR_BAD_REPLY);
	assert_int_equal(spki_from_rsa(n, 128, e, el, &der, &dl, why, sizeof(why)),
			 P11K_ERR_KEY_TYPE);
	assert_null(der);
	EVP_PKEY_free(rsa);
	const char *crvs[] = {"P-256", "P-384"};
	for (size_t i = 0; i < 2; i++) {
		size_t half = i ? 48 : 32;
		EVP_PKEY *k = keygen("EC", crvs[i], 0);
		fx_bn(k, OSSL_PKEY_PARAM_EC_PUB_X, x, half);
		fx_bn(k, OSSL_PKEY_PARAM_EC_PUB_Y, y, half);
		want = fx_spki(k, &wl);
		assert_int_equal(spki_from_ec(crvs[i], x, half, y, half, &der, &dl, why, sizeof(why)),
				 P11K_OK);
		assert_int_equal(dl, wl);
		assert_memory_equal(der, want, wl);
		free(der);
		/* A sign byte in front is the same number. */
		uint8_t x1[49] = {0};
		memcpy(x1 + 1, x, half);
		assert_int_equal(spki_from_ec(crvs[i], x1, half + 1, y, half, &der, &dl, why,
					      sizeof(why)),
				 P11K_OK);
		assert_memory_equal(der, want, wl);
		free(der);
		free(want);
		/* A byte too many that is not zero, none at all. */
		x1[0] = 1;
		assert_int_equal(spki_from_ec(crvs[i], x1, half + 1, y, half, &der, &dl, why,
					      sizeof(why)),
				 P11K_ERR_BAD_REPLY);
		assert_int_equal(spki_from_ec(crvs[i], x, 0, y, half, &der, &dl, why, sizeof(why)),
				 P11K_ERR_BAD_REPLY);
		y[0] ^= 0x40;
		assert_int_equal(spki_from_ec(crvs[i], x, half, y, half, &der, &dl, why, sizeof(why)),
				 P11K_ERR_BAD_REPLY);
		EVP_PKEY_free(k);
	}
	/* A coordinate written without its leading zero byte: a P-256 key
	 * whose x has one (about one in 256). */
	EVP_PKEY *k = NULL;
	for (int tries = 0; tries < 20000; tries++) {
		EVP_PKEY_free(k);
		k = keygen("EC", "P-256", 0);
		fx_bn(k, OSSL_PKEY_PARAM_EC_PUB_X, x, 32);
		if (x[0] == 0)
			break;
	}
	assert_int_equal(x[0], 0);
	fx_bn(k, OSSL_PKEY_PARAM_EC_PUB_Y, y, 32);
	want = fx_spki(k, &wl);
	assert_int_equal(spki_from_ec("P-256", x + 1, 31, y, 32, &der, &dl, why, sizeof(why)),
			 P11K_OK);
	assert_int_equal(dl, wl);
	assert_memory_equal(der, want, wl);
	free(der);
	free(want);
	EVP_PKEY_free(k);
	assert_int_equal(spki_from_ec("P-521", x, 32, y, 32, &der, &dl, why, sizeof(why)),
			 P11K_ERR_KEY_TYPE);
	assert_int_equal(spki_from_ec(NULL, x, 32, y, 32, &der, &dl, why, sizeof(why)),
			 P11K_ERR_KEY_TYPE);
}

static void test_pem(void **state)
{
	(void)state;
	EVP_PKEY *k = keygen("EC", "P-256", 0);
	char *pem = fx_pem(k), buf[2048];
	size_t wl, dl;
	uint8_t *want = fx_spki(k, &wl), *der = NULL;
	assert_true(pem_to_der(pem, strlen(pem), "PUBLIC KEY", &der, &dl));
	assert_int_equal(dl, wl);
	assert_memory_equal(der, want, wl);
	free(der);
	/* CRLF lines and surrounding whitespace are fine. */
	size_t o = 0;
	o += (size_t)snprintf(buf + o, sizeof(buf) - o, "\r\n ");
	for (const char *p = pem; *p; p++) {
		if (*p == '\n')
			buf[o++] = '\r';
		buf[o++] = *p;
	}
	buf[o] = 0;
	assert_true(pem_to_der(buf, o, "PUBLIC KEY", &der, &dl));
	assert_memory_equal(der, want, wl);
	free(der);
	/* Another label, text after the block, a missing end, nothing inside,
	 * a NUL inside. */
	assert_false(pem_to_der(pem, strlen(pem), "CERTIFICATE", &der, &dl));
	snprintf(buf, sizeof(buf), "%sjunk", pem);
	assert_false(pem_to_der(buf, strlen(buf), "PUBLIC KEY", &der, &dl));
	assert_false(pem_to_der(pem, strlen(pem) - 10, "PUBLIC KEY", &der, &dl));
	const char *empty = "-----BEGIN PUBLIC KEY-----\n-----END PUBLIC KEY-----\n";
	assert_false(pem_to_der(empty, strlen(empty), "PUBLIC KEY", &der, &dl));
	assert_false(pem_to_der(pem, strlen(pem) + 1, "PUBLIC KEY", &der, &dl));
	assert_null(der);
	free(pem);
	free(want);
	EVP_PKEY_free(k);
}

static void test_ecdsa_rs(void **state)
{
	(void)state;
	for (size_t half = 32; half <= 48; half += 16) {
		uint8_t rs[96], der[120], back[96], *enc = NULL;
		size_t el;
		fx_awkward_rs(rs, half);
		size_t n = fx_ecdsa_der(rs, half, der);
		assert_true(ecdsa_der_to_rs(der, n, half, back));
		assert_memory_equal(back, rs, 2 * half);
		assert_true(ecdsa_rs_to_der(rs, half, &enc, &el));
		assert_int_equal(el, n);
		assert_memory_equal(enc, der, n);
		free(enc);
		/* Wrong width, truncated, trailing byte. */
		assert_false(ecdsa_der_to_rs(der, n, half - 16, back));
		assert_false(ecdsa_der_to_rs(der, n - 1, half, back));
		der[n] = 0;
		der[1]++;
		assert_false(ecdsa_der_to_rs(der, n + 1, half, back));
	}
	/* r = 1, s = 1: left-padded to the curve's width. */
	static const uint8_t one[] = {0x30, 0x06, 0x02, 0x01, 0x01, 0x02, 0x01, 0x01};
	uint8_t rs[64], want[64] = {0};
	want[31] = want[63] = 1;
	assert_true(ecdsa_der_to_rs(one, sizeof(one), 32, rs));
	assert_memory_equal(rs, want, 64);
}

static void test_signature_forms(void **state)
{
	(void)state;
	assert_int_equal(salg_digest_len(SALG_RSA_PKCS1_SHA256), 32);
	assert_int_equal(salg_digest_len(SALG_RSA_PSS_SHA384), 48);
	assert_int_equal(salg_digest_len(SALG_RSA_PKCS1_SHA512), 64);
	assert_int_equal(salg_digest_len(SALG_ECDSA_SHA384), 48);
	assert_int_equal(salg_digest_len((sign_alg)0), 0);
	assert_int_equal(salg_digest_len(SALG_COUNT_), 0);
	assert_int_equal(salg_ec_half(SALG_ECDSA_SHA256), 32);
	assert_int_equal(salg_ec_half(SALG_ECDSA_SHA384), 48);
	assert_int_equal(salg_ec_half(SALG_RSA_PSS_SHA256), 0);
	char why[120];
	uint8_t *sig, *raw;
	size_t sl;
	const struct {
		sign_alg a;
		bool der;
		size_t len;
		p11k_err want;
	} cases[] = {
		{SALG_RSA_PSS_SHA256, false, 256, P11K_OK},
		{SALG_RSA_PSS_SHA256, true, 512, P11K_OK},
		{SALG_RSA_PSS_SHA256, true, 255, P11K_ERR_BAD_REPLY},
		{SALG_RSA_PSS_SHA256, true, 513, P11K_ERR_BAD_REPLY},
		{SALG_ECDSA_SHA256, false, 64, P11K_OK},
		{SALG_ECDSA_SHA256, false, 65, P11K_ERR_BAD_REPLY},
		{SALG_ECDSA_SHA384, false, 64, P11K_ERR_BAD_REPLY},
		{SALG_ECDSA_SHA256, true, 64, P11K_ERR_BAD_REPLY}, /* not DER */
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		raw = malloc(cases[i].len);
		memset(raw, 0x33, cases[i].len);
		p11k_err e = sig_for_module(cases[i].a, cases[i].der, &raw, cases[i].len, &sig, &sl,
					    why, sizeof(why));
		assert_int_equal(e, cases[i].want);
		assert_null(raw);
		if (e == P11K_OK)
			assert_int_equal(sl, cases[i].len);
		else
			assert_null(sig);
		free(sig);
	}
	uint8_t rs[64], der[80];
	fx_awkward_rs(rs, 32);
	size_t n = fx_ecdsa_der(rs, 32, der);
	raw = malloc(n);
	memcpy(raw, der, n);
	assert_int_equal(sig_for_module(SALG_ECDSA_SHA256, true, &raw, n, &sig, &sl, why,
					sizeof(why)),
			 P11K_OK);
	assert_int_equal(sl, 64);
	assert_memory_equal(sig, rs, 64);
	free(sig);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rfc4648_vectors),
		cmocka_unit_test(test_all_bytes_match_openssl),
		cmocka_unit_test(test_azure_example),
		cmocka_unit_test(test_reject_std),
		cmocka_unit_test(test_reject_url),
		cmocka_unit_test(test_length_bound),
		cmocka_unit_test(test_accepts_only_canonical),
		cmocka_unit_test(test_random_round_trips),
		cmocka_unit_test(test_secret_output),
		cmocka_unit_test(test_hex),
		cmocka_unit_test(test_pct),
		cmocka_unit_test(test_spki_check),
		cmocka_unit_test(test_spki_build),
		cmocka_unit_test(test_pem),
		cmocka_unit_test(test_ecdsa_rs),
		cmocka_unit_test(test_signature_forms),
	};
	if (!crypto_init())
		return 1;
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	crypto_fini();
	return rc;
}
