/* SPDX-License-Identifier: Apache-2.0 */
#include <pthread.h>

#include "crc32c.h"

static uint32_t table[256];
static pthread_once_t table_once = PTHREAD_ONCE_INIT;

/* Built once rather than written out: 256 literals are harder to review
 * than the eight-step loop that defines them. */
static void table_init(void)
{
	for (uint32_t n = 0; n < 256; n++) {
		uint32_t c = n;
		for (int k = 0; k < 8; k++)
			c = (c & 1) ? (c >> 1) ^ 0x82F63B78u : c >> 1;
		table[n] = c;
	}
}

uint32_t crc32c_update(uint32_t crc, const uint8_t *p, size_t n)
{
	pthread_once(&table_once, table_init);
	uint32_t c = ~crc;
	for (size_t i = 0; i < n; i++)
		c = table[(c ^ p[i]) & 0xff] ^ (c >> 8);
	return ~c;
}

uint32_t crc32c(const uint8_t *p, size_t n)
{
	return crc32c_update(0, p, n);
}
