/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Base64 (RFC 4648 section 4, padded), base64url (section 5, unpadded on
 * output), hex and percent-encoding (RFC 3986 section 2.3); and the public
 * key and signature encodings of asymmetric KMS keys (DER SPKI from a JWK
 * or PEM, ECDSA DER <-> r||s), with OpenSSL in the module's library
 * context.
 *
 * Our own code rather than EVP_EncodeBlock/EVP_DecodeBlock: those skip
 * leading whitespace, keep padding bytes in the output length and know
 * nothing of the url alphabet, so each call would need the same fix-ups.
 *
 * The character mapping is branch-free and table-free: these functions
 * carry KMS plaintexts (data keys, token secrets), and a table indexed by
 * a secret byte leaks through the cache (the reason BoringSSL and
 * libsodium do the same). Only validity is decided by a branch, at the
 * end, and only the length (public) steers the loops.
 */
#include "codec.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/param_build.h>
#include <openssl/x509.h>

#include "common/crypto.h"
#include "common/secmem.h"

/* -1 (all ones) when lo < c < hi, else 0; c, lo, hi within 0..256. */
static inline int ct_between(int c, int lo, int hi)
{
	return ((lo - c) & (c - hi)) >> 8;
}

/* 6-bit value -> character. */
static inline char b64_chr(unsigned v, bool url)
{
	int x = (int)v, diff = 'A';
	diff += ((25 - x) >> 8) & ('a' - 26 - 'A');      /* 26..51 */
	diff -= ((51 - x) >> 8) & ('a' - 26 - ('0' - 52)); /* 52..61 */
	if (url) {
		diff -= ((61 - x) >> 8) & (('0' - 52) - ('-' - 62)); /* 62 */
		diff += ((62 - x) >> 8) & (('_' - 63) - ('-' - 62)); /* 63 */
	} else {
		diff -= ((61 - x) >> 8) & (('0' - 52) - ('+' - 62));
		diff += ((62 - x) >> 8) & (('/' - 63) - ('+' - 62));
	}
	return (char)(x + diff);
}

/* Character -> 6-bit value, or -1 when not in the alphabet. */
static inline int b64_val(uint8_t ch, bool url)
{
	int c = ch, v = -1;
	v += ct_between(c, 'A' - 1, 'Z' + 1) & (c - 'A' + 1);
	v += ct_between(c, 'a' - 1, 'z' + 1) & (c - 'a' + 26 + 1);
	v += ct_between(c, '0' - 1, '9' + 1) & (c - '0' + 52 + 1);
	if (url) {
		v += ct_between(c, '-' - 1, '-' + 1) & 63;
		v += ct_between(c, '_' - 1, '_' + 1) & 64;
	} else {
		v += ct_between(c, '+' - 1, '+' + 1) & 63;
		v += ct_between(c, '/' - 1, '/' + 1) & 64;
	}
	return v;
}

static char *encode(const uint8_t *p, size_t n, bool url)
{
	/* 4 characters per started group of 3, plus the NUL. */
	size_t groups = n / 3 + (n % 3 != 0), outlen;
	if (groups > (SIZE_MAX - 1) / 4)
		return NULL;
	outlen = groups * 4;
	char *out = malloc(outlen + 1);
	if (!out)
		return NULL;
	size_t i = 0, o = 0;
	for (; i + 3 <= n; i += 3) {
		uint32_t w = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
		out[o++] = b64_chr(w >> 18, url);
		out[o++] = b64_chr((w >> 12) & 63, url);
		out[o++] = b64_chr((w >> 6) & 63, url);
		out[o++] = b64_chr(w & 63, url);
	}
	if (n - i == 1) {
		uint32_t w = (uint32_t)p[i] << 16;
		out[o++] = b64_chr(w >> 18, url);
		out[o++] = b64_chr((w >> 12) & 63, url);
		if (!url) {
			out[o++] = '=';
			out[o++] = '=';
		}
	} else if (n - i == 2) {
		uint32_t w = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8;
		out[o++] = b64_chr(w >> 18, url);
		out[o++] = b64_chr((w >> 12) & 63, url);
		out[o++] = b64_chr((w >> 6) & 63, url);
		if (!url)
			out[o++] = '=';
	}
	out[o] = '\0';
	return out;
}

char *b64_encode(const uint8_t *p, size_t n)
{
	return encode(p, n, false);
}

char *b64url_encode(const uint8_t *p, size_t n)
{
	return encode(p, n, true);
}

/*
 * Strict: only the alphabet, no whitespace; padding exactly as RFC 4648
 * section 4 places it (required for base64; base64url accepts it complete
 * or absent, PROTOCOLS.md 2.3); the unused bits of the last character zero
 * (section 3.5), so every value has one encoding.
 */
static bool decode(const char *s, size_t len, bool secret, bool url,
		   uint8_t **out, size_t *outlen)
{
	const uint8_t *in = (const uint8_t *)s;
	*out = NULL;
	*outlen = 0;
	if (len && !s)
		return false;
	/* Strip the padding (public: it depends on the length only). */
	size_t pad = 0;
	if (len % 4 == 0 && len >= 4) {
		if (in[len - 1] == '=')
			pad = in[len - 2] == '=' ? 2 : 1;
	}
	if (!url && len % 4 != 0)
		return false;
	size_t data = len - pad;
	/* A final group of 1 character carries no whole byte. */
	if (data % 4 == 1)
		return false;
	size_t n = data / 4 * 3 + (data % 4 ? data % 4 - 1 : 0);

	uint8_t *buf = secret ? sec_alloc(n ? n : 1) : malloc(n ? n : 1);
	if (!buf)
		return false;
	int bad = 0;
	size_t i = 0, o = 0;
	for (; i + 4 <= data; i += 4) {
		int a = b64_val(in[i], url), b = b64_val(in[i + 1], url);
		int c = b64_val(in[i + 2], url), d = b64_val(in[i + 3], url);
		bad |= a | b | c | d;
		uint32_t w = (uint32_t)(a & 63) << 18 | (uint32_t)(b & 63) << 12 |
			     (uint32_t)(c & 63) << 6 | (uint32_t)(d & 63);
		buf[o++] = (uint8_t)(w >> 16);
		buf[o++] = (uint8_t)(w >> 8);
		buf[o++] = (uint8_t)w;
	}
	if (data - i == 2) {
		int a = b64_val(in[i], url), b = b64_val(in[i + 1], url);
		bad |= a | b | -((b & 15) != 0);
		buf[o++] = (uint8_t)(((a & 63) << 2) | ((b & 63) >> 4));
	} else if (data - i == 3) {
		int a = b64_val(in[i], url), b = b64_val(in[i + 1], url);
		int c = b64_val(in[i + 2], url);
		bad |= a | b | c | -((c & 3) != 0);
		buf[o++] = (uint8_t)(((a & 63) << 2) | ((b & 63) >> 4));
		buf[o++] = (uint8_t)(((b & 15) << 4) | ((c & 63) >> 2));
	}
	if (bad < 0) {
		if (secret) {
			sec_free(buf);
		} else {
			OPENSSL_cleanse(buf, n ? n : 1);
			free(buf);
		}
		return false;
	}
	*out = buf;
	*outlen = o;
	return true;
}

bool b64_decode(const char *s, size_t len, bool secret, uint8_t **out,
		size_t *outlen)
{
	return decode(s, len, secret, false, out, outlen);
}

bool b64url_decode(const char *s, size_t len, bool secret, uint8_t **out,
		   size_t *outlen)
{
	return decode(s, len, secret, true, out, outlen);
}

void hex_encode(const uint8_t *p, size_t n, char *out)
{
	/* Lower case: what SigV4 hashes and the KMS APIs expect. */
	for (size_t i = 0; i < n; i++) {
		int hi = p[i] >> 4, lo = p[i] & 15;
		/* Branch-free, as above: digests of secrets pass through. */
		out[2 * i] = (char)(hi + '0' + (((9 - hi) >> 8) & ('a' - '0' - 10)));
		out[2 * i + 1] = (char)(lo + '0' + (((9 - lo) >> 8) & ('a' - '0' - 10)));
	}
	out[2 * n] = '\0';
}

static bool unreserved(unsigned char c)
{
	return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
	       (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' ||
	       c == '~';
}

char *pct_encode(const char *s, size_t n)
{
	static const char hex[] = "0123456789ABCDEF";
	if (n && !s)
		return NULL;
	if (n > (SIZE_MAX - 1) / 3)
		return NULL;
	char *out = malloc(n * 3 + 1);
	if (!out)
		return NULL;
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (unreserved(c)) {
			out[o++] = (char)c;
		} else {
			out[o++] = '%';
			out[o++] = hex[c >> 4];
			out[o++] = hex[c & 15];
		}
	}
	out[o] = '\0';
	return out;
}

/* --- asymmetric keys (codec.h) ---------------------------------------------- */

#define SPKI_MAX_DER 2048  /* an RSA-4096 SPKI is 550 bytes */
#define PEM_MAX 4096

size_t salg_digest_len(sign_alg a)
{
	switch (a) {
	case SALG_RSA_PKCS1_SHA256:
	case SALG_RSA_PSS_SHA256:
	case SALG_ECDSA_SHA256:
		return 32;
	case SALG_RSA_PKCS1_SHA384:
	case SALG_RSA_PSS_SHA384:
	case SALG_ECDSA_SHA384:
		return 48;
	case SALG_RSA_PKCS1_SHA512:
	case SALG_RSA_PSS_SHA512:
		return 64;
	case SALG_COUNT_:
		break;
	}
	return 0;
}

size_t salg_ec_half(sign_alg a)
{
	return a == SALG_ECDSA_SHA256 ? 32 : a == SALG_ECDSA_SHA384 ? 48 : 0;
}

static p11k_err why_set(char *why, size_t wl, p11k_err e, const char *msg)
{
	if (why && wl)
		snprintf(why, wl, "%s", msg);
	return e;
}

p11k_err spki_check(const uint8_t *der, size_t len, spki_desc *d, char *why, size_t wl)
{
	memset(d, 0, sizeof(*d));
	if (!der || len == 0 || len > SPKI_MAX_DER)
		return why_set(why, wl, P11K_ERR_BAD_REPLY, "the public key is empty or too long");
	const unsigned char *q = der;
	EVP_PKEY *pk = d2i_PUBKEY_ex(NULL, &q, (long)len, crypto_libctx(), NULL);
	p11k_err e = P11K_OK;
	if (!pk || q != der + len) {
		e = why_set(why, wl, P11K_ERR_BAD_REPLY,
			    "the public key is not one DER SubjectPublicKeyInfo");
	} else if (EVP_PKEY_is_a(pk, "RSA")) {
		BIGNUM *ex = NULL;
		int bits = EVP_PKEY_get_bits(pk);
		if (bits < 2048 || bits > 4096) {
			snprintf(why, wl, "an RSA-%d key: only 2048 to 4096 bits are offered", bits);
			e = P11K_ERR_KEY_TYPE;
		} else if (!EVP_PKEY_get_bn_param(pk, OSSL_PKEY_PARAM_RSA_E, &ex) ||
			   !BN_is_odd(ex) || BN_is_one(ex) || BN_num_bits(ex) > 64) {
			e = why_set(why, wl, P11K_ERR_BAD_REPLY, "the RSA public exponent is bad");
		} else {
			d->bits = (unsigned)bits;
		}
		BN_free(ex);
	} else if (EVP_PKEY_is_a(pk, "EC")) {
		char grp[64] = "";
		size_t gl = 0;
		if (!EVP_PKEY_get_utf8_string_param(pk, OSSL_PKEY_PARAM_GROUP_NAME, grp, sizeof(grp),
						    &gl))
			grp[0] = 0;
		if (strcmp(grp, "prime256v1") == 0 || strcmp(grp, "P-256") == 0)
			d->bits = 256;
		else if (strcmp(grp, "secp384r1") == 0 || strcmp(grp, "P-384") == 0)
			d->bits = 384;
		d->ec = true;
		if (!d->bits) {
			snprintf(why, wl, "an EC key on curve %.40s: only P-256 and P-384 are offered",
				 grp[0] ? grp : "(explicit parameters)");
			e = P11K_ERR_KEY_TYPE;
		} else {
			/* d2i checked the point is on the curve; the public check
			 * also refuses the point at infinity. */
			EVP_PKEY_CTX *c = EVP_PKEY_CTX_new_from_pkey(crypto_libctx(), pk, NULL);
			if (!c || EVP_PKEY_public_check(c) != 1)
				e = why_set(why, wl, P11K_ERR_BAD_REPLY,
					    "the EC public point is not valid");
			EVP_PKEY_CTX_free(c);
		}
	} else {
		e = why_set(why, wl, P11K_ERR_KEY_TYPE,
			    "the public key is neither RSA nor EC (P-256, P-384)");
	}
	EVP_PKEY_free(pk);
	if (e != P11K_OK)
		memset(d, 0, sizeof(*d));
	return e;
}

/* The DER SubjectPublicKeyInfo of an algorithm (nid, its parameter) and
 * the key's bytes, then the same checks as any reply's. Built as ASN.1,
 * with no EVP_PKEY: a host that made an engine the default for RSA or EC
 * (openssl -engine pkcs11) has no provider key to build one from. key is
 * OPENSSL_malloc'd and taken. */
static p11k_err spki_encode(int nid, int ptype, void *pval, unsigned char *key, size_t keylen,
			    uint8_t **der, size_t *derlen, char *why, size_t wl)
{
	X509_PUBKEY *pub = X509_PUBKEY_new();
	unsigned char *p = NULL;
	int n = -1;
	if (pub && X509_PUBKEY_set0_param(pub, OBJ_nid2obj(nid), ptype, pval, key,
					  (int)keylen) == 1)
		n = i2d_X509_PUBKEY(pub, &p);
	else
		OPENSSL_free(key);
	X509_PUBKEY_free(pub);
	p11k_err e = P11K_OK;
	if (n <= 0) {
		e = why_set(why, wl, P11K_ERR_BAD_REPLY, "the key's public numbers are not a key");
	} else {
		spki_desc d;
		e = spki_check(p, (size_t)n, &d, why, wl);
		if (e == P11K_OK && (*der = malloc((size_t)n))) {
			memcpy(*der, p, (size_t)n);
			*derlen = (size_t)n;
		} else if (e == P11K_OK) {
			e = P11K_ERR_NOMEM;
		}
	}
	OPENSSL_free(p);
	return e;
}

/* A DER length and an unsigned INTEGER (leading zeros dropped, a zero
 * byte added when the top bit is set) at b; the bytes written. */
static size_t der_len(uint8_t *b, size_t n)
{
	if (n < 128) {
		b[0] = (uint8_t)n;
		return 1;
	}
	b[0] = 0x82;
	b[1] = (uint8_t)(n >> 8);
	b[2] = (uint8_t)n;
	return 3;
}

static size_t der_uint(uint8_t *b, const uint8_t *v, size_t n)
{
	while (n > 1 && v[0] == 0) {
		v++;
		n--;
	}
	bool pad = v[0] & 0x80;
	size_t o = 0;
	b[o++] = 0x02;
	o += der_len(b + o, n + pad);
	if (pad)
		b[o++] = 0;
	memcpy(b + o, v, n);
	return o + n;
}

p11k_err spki_from_rsa(const uint8_t *n, size_t nlen, const uint8_t *e, size_t elen,
		       uint8_t **der, size_t *derlen, char *why, size_t wl)
{
	*der = NULL;
	*derlen = 0;
	if (!n || !e || nlen == 0 || nlen > 1024 || elen == 0 || elen > 64)
		return why_set(why, wl, P11K_ERR_BAD_REPLY, "the RSA numbers are empty or too long");
	/* RSAPublicKey ::= SEQUENCE { modulus INTEGER, publicExponent INTEGER } */
	uint8_t ints[2 * 8 + 1024 + 64];
	size_t il = der_uint(ints, n, nlen);
	il += der_uint(ints + il, e, elen);
	unsigned char *key = OPENSSL_malloc(il + 4);
	if (!key)
		return P11K_ERR_NOMEM;
	size_t kl = 0;
	key[kl++] = 0x30;
	kl += der_len(key + kl, il);
	memcpy(key + kl, ints, il);
	return spki_encode(NID_rsaEncryption, V_ASN1_NULL, NULL, key, kl + il, der, derlen, why,
			   wl);
}

p11k_err spki_from_ec(const char *crv, const uint8_t *x, size_t xlen, const uint8_t *y,
		      size_t ylen, uint8_t **der, size_t *derlen, char *why, size_t wl)
{
	uint8_t pt[1 + 2 * 48];
	size_t half = 0;
	const char *group = NULL;
	*der = NULL;
	*derlen = 0;
	if (crv && strcmp(crv, "P-256") == 0) {
		half = 32;
		group = "prime256v1";
	} else if (crv && strcmp(crv, "P-384") == 0) {
		half = 48;
		group = "secp384r1";
	}
	if (!group) {
		snprintf(why, wl, "an EC key on curve %.30s: only P-256 and P-384 are offered",
			 crv ? crv : "(none)");
		return P11K_ERR_KEY_TYPE;
	}
	/* RFC 7518 section 6.2.1.2 wants each coordinate at the curve's full
	 * size; encoders that go through a signed big integer drop leading
	 * zero bytes or add a sign byte, so each is taken as the unsigned
	 * number it is, at most the curve's size (the point check decides). */
	const uint8_t *c[2] = {x, y};
	size_t cl[2] = {xlen, ylen};
	pt[0] = 4; /* uncompressed (SEC 1 section 2.3.3) */
	for (int i = 0; i < 2; i++) {
		while (c[i] && cl[i] > half && c[i][0] == 0) {
			c[i]++;
			cl[i]--;
		}
		if (!c[i] || cl[i] == 0 || cl[i] > half)
			return why_set(why, wl, P11K_ERR_BAD_REPLY,
				       "the EC coordinates are not of the curve's size");
		memset(pt + 1 + i * half, 0, half - cl[i]);
		memcpy(pt + 1 + i * half + half - cl[i], c[i], cl[i]);
	}
	unsigned char *key = OPENSSL_malloc(1 + 2 * half);
	if (!key)
		return P11K_ERR_NOMEM;
	memcpy(key, pt, 1 + 2 * half);
	int curve = half == 32 ? NID_X9_62_prime256v1 : NID_secp384r1;
	return spki_encode(NID_X9_62_id_ecPublicKey, V_ASN1_OBJECT, OBJ_nid2obj(curve), key,
			   1 + 2 * half, der, derlen, why, wl);
}

bool pem_to_der(const char *pem, size_t len, const char *label, uint8_t **der, size_t *derlen)
{
	char begin[64], end[64];
	*der = NULL;
	*derlen = 0;
	if (!pem || len > PEM_MAX || memchr(pem, 0, len))
		return false;
	int bl = snprintf(begin, sizeof(begin), "-----BEGIN %s-----", label);
	int el = snprintf(end, sizeof(end), "-----END %s-----", label);
	if (bl <= 0 || (size_t)bl >= sizeof(begin) || el <= 0 || (size_t)el >= sizeof(end))
		return false;
	size_t i = 0;
	while (i < len && strchr(" \t\r\n", pem[i]))
		i++;
	if (len - i < (size_t)bl || memcmp(pem + i, begin, (size_t)bl) != 0)
		return false;
	i += (size_t)bl;
	size_t j = len;
	while (j > i && strchr(" \t\r\n", pem[j - 1]))
		j--;
	if (j - i < (size_t)el || memcmp(pem + j - el, end, (size_t)el) != 0)
		return false;
	j -= (size_t)el;
	/* The base64 lines, whitespace dropped; no headers (RFC 7468 section 2
	 * has none for public keys). */
	char *b = malloc(j - i + 1);
	size_t n = 0;
	if (!b)
		return false;
	for (size_t k = i; k < j; k++)
		if (!strchr(" \t\r\n", pem[k]))
			b[n++] = pem[k];
	bool ok = n > 0 && b64_decode(b, n, false, der, derlen);
	free(b);
	return ok;
}

p11k_err sig_for_module(sign_alg a, bool der, uint8_t **raw, size_t rawlen, uint8_t **sig,
			size_t *siglen, char *why, size_t wl)
{
	size_t half = salg_ec_half(a);
	p11k_err e = P11K_OK;
	*sig = NULL;
	*siglen = 0;
	if (half && der) {
		uint8_t *rs = malloc(2 * half);
		if (!rs) {
			e = P11K_ERR_NOMEM;
		} else if (!ecdsa_der_to_rs(*raw, rawlen, half, rs)) {
			free(rs);
			snprintf(why, wl, "the signature is not a DER ECDSA signature of a %zu-bit "
				 "curve", half * 8);
			e = P11K_ERR_BAD_REPLY;
		} else {
			*sig = rs;
			*siglen = 2 * half;
		}
		free(*raw);
	} else if (half ? rawlen != 2 * half : (rawlen < 256 || rawlen > 512)) {
		snprintf(why, wl, "a %zu-byte %s signature", rawlen, half ? "ECDSA" : "RSA");
		e = P11K_ERR_BAD_REPLY;
		free(*raw);
	} else {
		*sig = *raw;
		*siglen = rawlen;
	}
	*raw = NULL;
	return e;
}
