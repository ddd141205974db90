/* SPDX-License-Identifier: Apache-2.0 */
/*
 * jsonpos_line on arbitrary text and paths. Input layout:
 *   depth (1 byte, mod 10: deeper than the 8 a config uses, on purpose)
 *   per element: 1 byte; high bit set -> array index (low 7 bits),
 *   else a key of (low 4 bits) bytes that follow
 *   the rest: the JSON text
 * The line reported is 0 or within the text's lines; never a read past len.
 */
#include <stdbool.h>
#include <stdint.h>

#include "fuzz_common.h"
#include "common/jsonpos.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAXD 10


int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	jpath_elem path[MAXD];
	char keys[MAXD][16];
	size_t off = 0, depth;
	if (size < 1)
		return 0;
	depth = data[off++] % MAXD;
	for (size_t i = 0; i < depth; i++) {
		if (off >= size)
			return 0;
		uint8_t b = data[off++];
		if (b & 0x80) {
			path[i].key = NULL;
			path[i].index = b & 0x7f;
			continue;
		}
		size_t kl = b & 0x0f;
		if (kl > size - off)
			return 0;
		memcpy(keys[i], data + off, kl);
		keys[i][kl] = 0;
		off += kl;
		path[i].key = keys[i];
		path[i].index = 0;
	}
	size_t len = size - off;
	char *text = malloc(len ? len : 1);
	if (!text)
		return 0;
	memcpy(text, data + off, len);
	unsigned line = jsonpos_line(text, len, path, depth);
	FUZZ_CHECK(line <= fuzz_count_lines(text, len));
	/* When the whole path resolves, every prefix does too, at the same
	 * line or an earlier one: the scan only moves forward. */
	for (size_t d = 0; d < depth; d++) {
		unsigned pl = jsonpos_line(text, len, path, d);
		FUZZ_CHECK(pl <= fuzz_count_lines(text, len));
		if (line)
			FUZZ_CHECK(pl >= 1 && pl <= line);
	}
	free(text);
	return 0;
}
