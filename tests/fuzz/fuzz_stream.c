/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The decrypt side of p11kms encrypt/decrypt (tools/stream.c,
 * docs/STREAM.md): the header parser and the segment reader, with a fixed
 * data key in place of the KMS. Input layout: the first byte selects
 *   bit 0 clear: the rest is a stream file, decrypted with the fixed key
 *     (the seeds in corpus/fuzz_stream are valid streams under it, made
 *     by tests/fuzz/gen_stream_seeds.py from the documented format).
 *     A header that parses is built again from its fields, byte for byte.
 *   bit 0 set: byte 1 picks a segment size (16 + byte), byte 2 a position;
 *     the rest is plaintext: encrypt, decrypt and compare, then the stream
 *     with the bit at that position flipped, and cut at that position,
 *     must both be refused.
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif
#include <stdint.h>
#include <sys/mman.h>

#include "fuzz_common.h"
#include "common/crypto.h"
#include "common/secmem.h"
#include "tools/stream.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static bool ready;
static int in_fd = -1, out_fd = -1;
static const uint8_t fixed_key[STREAM_KEY_LEN] = {
	0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42,
	0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42,
	0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42, 0x42};

static int fixed_open(void *arg, const stream_hdr *h, uint8_t *key)
{
	(void)arg;
	FUZZ_CHECK(h->wrapped_len >= 1 && h->wrapped >= h->raw &&
		   h->wrapped + h->wrapped_len <= h->raw + h->len);
	memcpy(key, fixed_key, STREAM_KEY_LEN);
	return STREAM_EXIT_OK;
}

static void setup(void)
{
	fuzz_quiet_log();
	FUZZ_CHECK(crypto_init());
	in_fd = memfd_create("fuzz-stream-in", 0);
	out_fd = memfd_create("fuzz-stream-out", 0);
	FUZZ_CHECK(in_fd >= 0 && out_fd >= 0);
	ready = true;
}

static void load(int fd, const uint8_t *p, size_t n)
{
	FUZZ_CHECK(ftruncate(fd, 0) == 0 && lseek(fd, 0, SEEK_SET) == 0);
	FUZZ_CHECK(n == 0 || write(fd, p, n) == (ssize_t)n);
	FUZZ_CHECK(lseek(fd, 0, SEEK_SET) == 0);
}

/* The contents of fd, malloc'd. */
static uint8_t *contents(int fd, size_t *n)
{
	off_t end = lseek(fd, 0, SEEK_END);
	FUZZ_CHECK(end >= 0);
	uint8_t *p = malloc((size_t)end + 1);
	FUZZ_CHECK(p && pread(fd, p, (size_t)end, 0) == end);
	*n = (size_t)end;
	return p;
}

static int decrypt(const uint8_t *p, size_t n)
{
	load(in_fd, p, n);
	load(out_fd, NULL, 0);
	int rc = stream_decrypt_fd(in_fd, out_fd, "fuzz", fixed_open, NULL, false);
	FUZZ_CHECK(rc == STREAM_EXIT_OK || rc == STREAM_EXIT_INPUT);
	return rc;
}

static void parse_and_decrypt(const uint8_t *p, size_t n)
{
	static stream_hdr h, again;
	char why[200];
	size_t hl = n >= 11 ? (size_t)(p[9] << 8 | p[10]) : 0;
	if (hl && hl <= n && stream_hdr_parse(p, hl, &h, why, sizeof(why))) {
		/* The encoding is canonical: the fields build the same bytes. */
		memset(&again, 0, sizeof(again));
		again.seg_size = h.seg_size;
		memcpy(again.prefix, h.prefix, STREAM_PREFIX_LEN);
		memcpy(again.provider, h.provider, sizeof(h.provider));
		memcpy(again.type, h.type, sizeof(h.type));
		memcpy(again.key_id, h.key_id, sizeof(h.key_id));
		memcpy(again.key_version, h.key_version, sizeof(h.key_version));
		FUZZ_CHECK(stream_hdr_build(&again, h.wrapped, h.wrapped_len));
		FUZZ_CHECK(again.len == h.len && memcmp(again.raw, p, hl) == 0);
	}
	if (decrypt(p, n) == STREAM_EXIT_OK) {
		/* Only a stream of whole segments with a valid header opens. */
		size_t outlen;
		free(contents(out_fd, &outlen));
		FUZZ_CHECK(hl && stream_hdr_parse(p, hl, &h, why, sizeof(why)));
		size_t segs = outlen ? (outlen + h.seg_size - 1) / h.seg_size : 1;
		FUZZ_CHECK(n == hl + outlen + segs * STREAM_TAG_LEN);
	}
}

static void round_trip(uint32_t seg, size_t at, const uint8_t *pt, size_t n)
{
	static stream_hdr h;
	memset(&h, 0, sizeof(h));
	h.seg_size = seg;
	memcpy(h.prefix, "fuzzpfx", STREAM_PREFIX_LEN);
	strcpy(h.provider, "dev");
	strcpy(h.type, "local");
	strcpy(h.key_id, "/fuzz/k.key");
	strcpy(h.key_version, "0011223344556677");
	FUZZ_CHECK(stream_hdr_build(&h, (const uint8_t *)"wrapped", 7));
	load(in_fd, pt, n);
	load(out_fd, NULL, 0);
	FUZZ_CHECK(stream_encrypt_fd(in_fd, out_fd, &h, fixed_key, false) == STREAM_EXIT_OK);
	size_t clen, dlen;
	uint8_t *ct = contents(out_fd, &clen);
	FUZZ_CHECK(decrypt(ct, clen) == STREAM_EXIT_OK);
	uint8_t *back = contents(out_fd, &dlen);
	FUZZ_CHECK(dlen == n && (n == 0 || memcmp(back, pt, n) == 0));
	free(back);
	size_t pos = at % clen;
	ct[pos] ^= (uint8_t)(1u << (at % 8));
	FUZZ_CHECK(decrypt(ct, clen) == STREAM_EXIT_INPUT);
	ct[pos] ^= (uint8_t)(1u << (at % 8));
	FUZZ_CHECK(decrypt(ct, pos) == STREAM_EXIT_INPUT);
	free(ct);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!ready)
		setup();
	if (size < 1)
		return 0;
	size_t before = sec_in_use();
	if (!(data[0] & 1))
		parse_and_decrypt(data + 1, size - 1);
	else if (size >= 3)
		round_trip(STREAM_SEG_MIN + data[1], data[2], data + 3, size - 3);
	FUZZ_CHECK(sec_in_use() == before); /* the data key is wiped and freed */
	return 0;
}
