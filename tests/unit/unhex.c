/* SPDX-License-Identifier: Apache-2.0 */
#include "unhex.h"

static int digit(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

size_t unhex(const char *hex, uint8_t *out, size_t cap)
{
	size_t n = 0;
	int hi = -1;
	for (; *hex; hex++) {
		if (*hex == ' ')
			continue;
		int v = digit(*hex);
		if (v < 0)
			return (size_t)-1;
		if (hi < 0) {
			hi = v;
			continue;
		}
		if (n == cap)
			return (size_t)-1;
		out[n++] = (uint8_t)(hi << 4 | v);
		hi = -1;
	}
	return hi < 0 ? n : (size_t)-1;
}
