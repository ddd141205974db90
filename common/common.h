/* SPDX-License-Identifier: Apache-2.0 */
/* Small shared helpers: result macros, a u64-keyed hash map, a growable
 * byte buffer with a hard cap. */
#ifndef P11KMS_COMMON_H
#define P11KMS_COMMON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "p11kms/p11kms.h"

#define P11K_WUR __attribute__((warn_unused_result))
#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

/* Return early from a CK_RV function. Macros only return; none opens a
 * brace or jumps to a hidden label. */
#define GUARD(expr)                                                            \
	do {                                                                   \
		CK_RV guard_rv_ = (expr);                                      \
		if (guard_rv_ != CKR_OK)                                       \
			return guard_rv_;                                      \
	} while (0)

/* Overflow-safe size addition: false when a + b would wrap. */
static inline bool size_add(size_t a, size_t b, size_t *out)
{
	return !__builtin_add_overflow(a, b, out);
}

/* --- u64 -> pointer hash map (open addressing, linear probing) ------- */
typedef struct hmap {
	uint64_t *keys; /* 0 = empty, UINT64_MAX = tombstone */
	void **vals;
	size_t cap, used, live;
} hmap_t;

void hmap_init(hmap_t *m);
void hmap_free(hmap_t *m);
P11K_WUR bool hmap_put(hmap_t *m, uint64_t key, void *val);
void *hmap_get(const hmap_t *m, uint64_t key);
void *hmap_del(hmap_t *m, uint64_t key);
/* Iterate: for (size_t i = 0; hmap_next(m, &i, &k, &v);) */
bool hmap_next(const hmap_t *m, size_t *iter, uint64_t *key, void **val);

/* --- growable byte buffer with a hard cap ------------------------------ */
typedef struct dbuf {
	uint8_t *p;
	size_t len, cap, max;
	bool failed; /* sticky: once set every append fails */
	bool secret; /* storage is secure memory, wiped on growth and free */
} dbuf_t;

void dbuf_init(dbuf_t *b, size_t max, bool secret);
void dbuf_free(dbuf_t *b);
bool dbuf_add(dbuf_t *b, const void *data, size_t n);
bool dbuf_add_u8(dbuf_t *b, uint8_t v);
bool dbuf_add_u32(dbuf_t *b, uint32_t v);
bool dbuf_add_u64(dbuf_t *b, uint64_t v);

/* --- bounds-checked reader with a sticky failure flag ------------------ */
typedef struct rd {
	const uint8_t *p;
	size_t len, off;
	bool failed;
} rd_t;

static inline void rd_init(rd_t *r, const void *p, size_t len)
{
	r->p = p;
	r->len = len;
	r->off = 0;
	r->failed = false;
}
const uint8_t *rd_take(rd_t *r, size_t n);
uint8_t rd_u8(rd_t *r);
uint32_t rd_u32(rd_t *r);
uint64_t rd_u64(rd_t *r);
static inline bool rd_done(const rd_t *r)
{
	return !r->failed && r->off == r->len;
}

/* Copy a string into a fixed blank-padded PKCS #11 field. */
void pad_copy(CK_UTF8CHAR *dst, size_t dstlen, const char *src);

/* The wall clock and its test seam live in clock.h. */
#include "clock.h"

#endif
