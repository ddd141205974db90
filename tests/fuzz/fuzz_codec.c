/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The codecs (providers/common/codec.c) on arbitrary input:
 *  - both base64 decoders; whatever one accepts must re-encode to exactly
 *    the input (base64url: the input or the input without its padding),
 *    the strictness rule of codec.h;
 *  - the input as bytes through both encoders and back, unchanged;
 *  - hex and percent-encoding: lengths and alphabets.
 * The first byte picks secure-memory output for the decoders.
 */
#include <stdbool.h>
#include <stdint.h>

#include "fuzz_common.h"
#include "common/secmem.h"
#include "providers/common/codec.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void release(uint8_t *p, bool secret)
{
	if (secret)
		sec_free(p);
	else
		free(p);
}

static void check_decoder(const uint8_t *data, size_t size, bool url, bool secret)
{
	uint8_t *out = NULL;
	size_t n = 0;
	bool ok = url ? b64url_decode((const char *)data, size, secret, &out, &n)
		      : b64_decode((const char *)data, size, secret, &out, &n);
	if (!ok) {
		FUZZ_CHECK(out == NULL && n == 0);
		return;
	}
	FUZZ_CHECK(out != NULL);
	FUZZ_CHECK(n <= size / 4 * 3 + 2);
	char *e = url ? b64url_encode(out, n) : b64_encode(out, n);
	FUZZ_CHECK(e != NULL);
	size_t el = strlen(e);
	if (url && el < size) {
		/* Accepted with padding: the rest must be exactly that. */
		FUZZ_CHECK(size - el == (4 - el % 4) % 4);
		FUZZ_CHECK(memcmp(e, data, el) == 0);
		for (size_t i = el; i < size; i++)
			FUZZ_CHECK(data[i] == '=');
	} else {
		FUZZ_CHECK(el == size && memcmp(e, data, size) == 0);
	}
	free(e);
	release(out, secret);
}

static void check_round_trip(const uint8_t *data, size_t size, bool url, bool secret)
{
	char *e = url ? b64url_encode(data, size) : b64_encode(data, size);
	FUZZ_CHECK(e != NULL);
	uint8_t *out = NULL;
	size_t n = 0;
	bool ok = url ? b64url_decode(e, strlen(e), secret, &out, &n)
		      : b64_decode(e, strlen(e), secret, &out, &n);
	FUZZ_CHECK(ok);
	FUZZ_CHECK(n == size);
	FUZZ_CHECK(size == 0 || memcmp(out, data, size) == 0);
	release(out, secret);
	free(e);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	bool secret = size > 0 && (data[0] & 1);
	for (int url = 0; url < 2; url++) {
		check_decoder(data, size, url, secret);
		check_round_trip(data, size, url, secret);
	}

	char *hex = malloc(2 * size + 1);
	FUZZ_CHECK(hex != NULL);
	hex_encode(data, size, hex);
	FUZZ_CHECK(strlen(hex) == 2 * size);
	FUZZ_CHECK(strspn(hex, "0123456789abcdef") == 2 * size);
	free(hex);

	char *pct = pct_encode((const char *)data, size);
	FUZZ_CHECK(pct != NULL);
	size_t pl = strlen(pct);
	FUZZ_CHECK(pl >= size && pl <= 3 * size);
	FUZZ_CHECK(strspn(pct, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
			       "0123456789-._~%") == pl);
	free(pct);
	return 0;
}
