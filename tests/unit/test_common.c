/* SPDX-License-Identifier: Apache-2.0 */
/*
 * common/common.c: the u64 hash map (tombstones, growth, 100k keys), the
 * capped byte buffer with its sticky failure, the bounded reader.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/common.h"
#include "common/secmem.h"

#define V(k) ((void *)(uintptr_t)((k) * 2 + 1))

/* --- hmap ----------------------------------------------------------- */

static void test_hmap_basic(void **state)
{
	hmap_t m;
	hmap_init(&m);
	/* Empty map: lookups and deletes find nothing. */
	assert_null(hmap_get(&m, 1));
	assert_null(hmap_del(&m, 1));
	size_t it = 0;
	uint64_t k;
	void *v;
	assert_false(hmap_next(&m, &it, &k, &v));
	/* The two reserved keys are refused. */
	assert_false(hmap_put(&m, 0, V(0)));
	assert_false(hmap_put(&m, UINT64_MAX, V(0)));
	assert_null(hmap_get(&m, 0));
	assert_null(hmap_get(&m, UINT64_MAX));

	assert_true(hmap_put(&m, 7, V(7)));
	assert_ptr_equal(hmap_get(&m, 7), V(7));
	assert_int_equal(m.live, 1);
	/* Replacing keeps one entry. */
	assert_true(hmap_put(&m, 7, V(8)));
	assert_ptr_equal(hmap_get(&m, 7), V(8));
	assert_int_equal(m.live, 1);
	assert_ptr_equal(hmap_del(&m, 7), V(8));
	assert_null(hmap_get(&m, 7));
	assert_null(hmap_del(&m, 7));
	assert_int_equal(m.live, 0);
	/* A NULL value is a value. */
	assert_true(hmap_put(&m, 9, NULL));
	assert_int_equal(m.live, 1);
	hmap_free(&m);
	assert_int_equal(m.cap, 0);
	hmap_free(&m); /* twice is fine */
}

static void test_hmap_tombstones(void **state)
{
	hmap_t m;
	hmap_init(&m);
	/* Keys that collide walk past tombstones: insert a run, delete the
	 * middle, the ones behind it stay reachable. */
	for (uint64_t k = 1; k <= 40; k++)
		assert_true(hmap_put(&m, k, V(k)));
	for (uint64_t k = 1; k <= 40; k += 2)
		assert_ptr_equal(hmap_del(&m, k), V(k));
	for (uint64_t k = 1; k <= 40; k++)
		assert_ptr_equal(hmap_get(&m, k), k % 2 ? NULL : V(k));
	/* Re-inserting an existing key past a tombstone updates it, not a
	 * second copy. */
	for (uint64_t k = 2; k <= 40; k += 2)
		assert_true(hmap_put(&m, k, V(k + 1)));
	assert_int_equal(m.live, 20);
	size_t it = 0, n = 0;
	uint64_t k;
	void *v;
	while (hmap_next(&m, &it, &k, &v)) {
		assert_true(k % 2 == 0);
		assert_ptr_equal(v, V(k + 1));
		n++;
	}
	assert_int_equal(n, 20);
	/* Put/delete churn of distinct keys with few live ones must not grow
	 * the table without bound, nor fill it with tombstones (a lookup
	 * of a missing key must still end). */
	size_t cap0 = m.cap;
	for (uint64_t i = 1000; i < 200000; i++) {
		assert_true(hmap_put(&m, i, V(i)));
		assert_ptr_equal(hmap_del(&m, i), V(i));
	}
	assert_true(m.cap <= 2 * cap0);
	assert_int_equal(m.live, 20);
	assert_null(hmap_get(&m, 5));
	assert_ptr_equal(hmap_get(&m, 40), V(41));
	hmap_free(&m);
}

static void test_hmap_100k(void **state)
{
	hmap_t m;
	hmap_init(&m);
	const uint64_t n = 100000;
	/* Spread keys (like handles mixed with random bits) and dense ones. */
	for (uint64_t i = 1; i <= n; i++) {
		uint64_t key = i % 2 ? i : i * 0x9e3779b97f4a7c15ULL;
		assert_true(hmap_put(&m, key, V(i)));
	}
	assert_int_equal(m.live, n);
	/* Load stays under 3/4 and the table is a power of two. */
	assert_true(m.used * 4 < m.cap * 3);
	assert_int_equal(m.cap & (m.cap - 1), 0);
	for (uint64_t i = 1; i <= n; i++) {
		uint64_t key = i % 2 ? i : i * 0x9e3779b97f4a7c15ULL;
		assert_ptr_equal(hmap_get(&m, key), V(i));
	}
	for (uint64_t i = 1; i <= n; i += 3) {
		uint64_t key = i % 2 ? i : i * 0x9e3779b97f4a7c15ULL;
		assert_ptr_equal(hmap_del(&m, key), V(i));
	}
	size_t live = 0, it = 0;
	uint64_t k;
	void *v;
	while (hmap_next(&m, &it, &k, &v))
		live++;
	assert_int_equal(live, m.live);
	assert_int_equal(live, n - (n + 2) / 3);
	for (uint64_t i = 1; i <= n; i++) {
		uint64_t key = i % 2 ? i : i * 0x9e3779b97f4a7c15ULL;
		assert_ptr_equal(hmap_get(&m, key), (i - 1) % 3 == 0 ? NULL : V(i));
	}
	/* Put everything back: tombstones are reused. */
	for (uint64_t i = 1; i <= n; i += 3) {
		uint64_t key = i % 2 ? i : i * 0x9e3779b97f4a7c15ULL;
		assert_true(hmap_put(&m, key, V(i)));
	}
	assert_int_equal(m.live, n);
	hmap_free(&m);
}

/* --- dbuf ----------------------------------------------------------- */

static void test_dbuf_cap_and_sticky(void **state)
{
	dbuf_t b;
	dbuf_init(&b, 100, false);
	uint8_t x[100];
	memset(x, 0x5a, sizeof(x));
	assert_true(dbuf_add(&b, x, 60));
	assert_false(dbuf_add(&b, x, 41)); /* 101 > 100 */
	assert_true(b.failed);
	assert_int_equal(b.len, 60);
	/* Sticky: even what would fit now fails. */
	assert_false(dbuf_add(&b, x, 1));
	assert_false(dbuf_add_u8(&b, 1));
	assert_int_equal(b.len, 60);
	dbuf_free(&b);

	dbuf_init(&b, 100, false);
	assert_true(dbuf_add(&b, x, 100)); /* exactly the cap */
	assert_true(dbuf_add(&b, NULL, 0));
	assert_false(dbuf_add(&b, x, 1));
	assert_memory_equal(b.p, x, 100);
	dbuf_free(&b);
	assert_null(b.p);
	assert_int_equal(b.len, 0);

	/* Sizes that would wrap. */
	dbuf_init(&b, SIZE_MAX, false);
	assert_true(dbuf_add(&b, x, 10));
	assert_false(dbuf_add(&b, x, SIZE_MAX - 5));
	assert_true(b.failed);
	dbuf_free(&b);

	/* Byte at a time up to an odd cap: never over it. */
	dbuf_init(&b, 1000, false);
	for (int i = 0; i < 1000; i++)
		assert_true(dbuf_add_u8(&b, (uint8_t)i));
	assert_false(dbuf_add_u8(&b, 0));
	for (int i = 0; i < 1000; i++)
		assert_int_equal(b.p[i], (uint8_t)i);
	dbuf_free(&b);
}

static void test_dbuf_integers(void **state)
{
	dbuf_t b;
	dbuf_init(&b, 64, false);
	assert_true(dbuf_add_u8(&b, 0xab));
	assert_true(dbuf_add_u32(&b, 0x01020304));
	assert_true(dbuf_add_u64(&b, 0x1112131415161718ULL));
	assert_int_equal(b.len, 13);
	assert_memory_equal(b.p, "\xab\x01\x02\x03\x04\x11\x12\x13\x14\x15\x16\x17\x18",
			    13);
	/* A u64 that does not fit in full fails (no half-written value
	 * counts as success). */
	dbuf_t c;
	dbuf_init(&c, 12, false);
	assert_true(dbuf_add_u64(&c, 1));
	assert_false(dbuf_add_u64(&c, 2));
	assert_true(c.failed);
	dbuf_free(&c);
	dbuf_free(&b);
}

static void test_dbuf_secret(void **state)
{
	size_t before = sec_in_use();
	dbuf_t b;
	dbuf_init(&b, 1 << 20, true);
	uint8_t x[5000];
	memset(x, 0x77, sizeof(x));
	for (int i = 0; i < 20; i++)
		assert_true(dbuf_add(&b, x, sizeof(x)));
	assert_int_equal(b.len, 100000);
	assert_true(sec_in_use() > before);
	assert_int_equal(sec_size(b.p), b.cap);
	for (size_t i = 0; i < b.len; i++)
		assert_int_equal(b.p[i], 0x77);
	dbuf_free(&b);
	assert_int_equal(sec_in_use(), before);
}

/* --- rd ------------------------------------------------------------- */

static void test_rd_bounds(void **state)
{
	static const uint8_t d[] = {0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07,
				    0x08, 0x09, 0x0a, 0x0b, 0x0c, 0x0d};
	rd_t r;
	rd_init(&r, d, sizeof(d));
	assert_int_equal(rd_u8(&r), 0x01);
	assert_int_equal(rd_u32(&r), 0x02030405);
	assert_int_equal(rd_u64(&r), 0x060708090a0b0c0dULL);
	assert_true(rd_done(&r));
	/* Zero bytes at the end is fine; one more is not. */
	assert_non_null(rd_take(&r, 0));
	assert_true(rd_done(&r));
	assert_null(rd_take(&r, 1));
	assert_true(r.failed);
	assert_false(rd_done(&r));

	/* Sticky: after a failed read nothing more is returned. */
	rd_init(&r, d, sizeof(d));
	assert_null(rd_take(&r, 14));
	assert_int_equal(r.off, 0);
	assert_null(rd_take(&r, 1));
	assert_int_equal(rd_u8(&r), 0);
	assert_int_equal(rd_u32(&r), 0);
	assert_int_equal(rd_u64(&r), 0);

	/* Lengths that would wrap the offset. */
	rd_init(&r, d, sizeof(d));
	assert_non_null(rd_take(&r, 3));
	assert_null(rd_take(&r, SIZE_MAX));
	rd_init(&r, d, sizeof(d));
	assert_non_null(rd_take(&r, 3));
	assert_null(rd_take(&r, SIZE_MAX - 1));

	/* A short integer fails as a whole. */
	rd_init(&r, d, 3);
	assert_int_equal(rd_u32(&r), 0);
	assert_true(r.failed);
	rd_init(&r, d, 7);
	assert_int_equal(rd_u64(&r), 0x01020304ULL << 32);
	assert_true(r.failed);
	assert_false(rd_done(&r));

	/* Empty input. */
	rd_init(&r, NULL, 0);
	assert_true(rd_done(&r));
	assert_int_equal(rd_u8(&r), 0);
	assert_false(rd_done(&r));

	/* Not at the end is not done. */
	rd_init(&r, d, sizeof(d));
	assert_int_equal(rd_u8(&r), 1);
	assert_false(rd_done(&r));
}

static void test_pad_copy_and_size_add(void **state)
{
	CK_UTF8CHAR f[8];
	pad_copy(f, sizeof(f), "abc");
	assert_memory_equal(f, "abc     ", 8);
	pad_copy(f, sizeof(f), "0123456789");
	assert_memory_equal(f, "01234567", 8);
	pad_copy(f, sizeof(f), NULL);
	assert_memory_equal(f, "        ", 8);
	size_t s;
	assert_true(size_add(1, 2, &s));
	assert_int_equal(s, 3);
	assert_false(size_add(SIZE_MAX, 1, &s));
	assert_true(size_add(SIZE_MAX - 1, 1, &s));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_hmap_basic),
		cmocka_unit_test(test_hmap_tombstones),
		cmocka_unit_test(test_hmap_100k),
		cmocka_unit_test(test_dbuf_cap_and_sticky),
		cmocka_unit_test(test_dbuf_integers),
		cmocka_unit_test(test_dbuf_secret),
		cmocka_unit_test(test_rd_bounds),
		cmocka_unit_test(test_pad_copy_and_size_add),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
