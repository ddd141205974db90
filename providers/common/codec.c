/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Base64 (RFC 4648 section 4, padded), base64url (section 5, unpadded on
 * output), hex and percent-encoding (RFC 3986 section 2.3).
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

#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

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
