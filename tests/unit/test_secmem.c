/* SPDX-License-Identifier: Apache-2.0 */
/*
 * common/secmem.c: every size class and the big mappings (> 4 KiB) give
 * zero-filled, fully usable memory of the size asked; sec_size and
 * sec_in_use account for it; freed memory comes back wiped.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "common/secmem.h"

static const size_t sizes[] = {0,    1,    15,   16,   17,   31,   32,
			       33,   100,  240,  496,  1000, 2032, 4079,
			       4080, 4081, 4096, 5000, 8192, 65536, 1 << 20};

static void check_zero(const uint8_t *p, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (p[i])
			fail_msg("byte %zu of %zu is not zero", i, n);
}

static void test_sizes(void **state)
{
	size_t base = sec_in_use();
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		size_t n = sizes[i];
		uint8_t *p = sec_alloc(n);
		if (!p)
			fail_msg("sec_alloc(%zu) failed", n);
		assert_int_equal((uintptr_t)p % 16, 0);
		assert_int_equal(sec_size(p), n);
		assert_int_equal(sec_in_use(), base + n);
		check_zero(p, n);
		memset(p, 0xa5, n); /* usable to the last byte (ASan checks) */
		sec_free(p);
		assert_int_equal(sec_in_use(), base);
	}
	assert_int_equal(sec_size(NULL), 0);
	sec_free(NULL);
}

static void test_reuse_is_wiped(void **state)
{
	/* A freed block comes back zero-filled, whatever it held. */
	for (size_t i = 0; i < sizeof(sizes) / sizeof(sizes[0]); i++) {
		size_t n = sizes[i];
		uint8_t *p = sec_alloc(n);
		assert_non_null(p);
		memset(p, 0xff, n);
		sec_free(p);
		uint8_t *q = sec_alloc(n);
		assert_non_null(q);
		check_zero(q, n);
		sec_free(q);
	}
}

static void test_many_live(void **state)
{
	/* More than one 64 KiB chunk per class, all distinct and intact. */
	enum { N = 3000 };
	static uint8_t *p[N];
	size_t base = sec_in_use(), total = 0;
	for (size_t i = 0; i < N; i++) {
		size_t n = 1 + (i * 37) % 300;
		if (i % 500 == 0)
			n = 4097 + i; /* some big ones among them */
		p[i] = sec_alloc(n);
		assert_non_null(p[i]);
		memset(p[i], (int)(i & 0xff), n);
		total += n;
	}
	assert_int_equal(sec_in_use(), base + total);
	for (size_t i = 0; i < N; i++) {
		size_t n = sec_size(p[i]);
		for (size_t j = 0; j < n; j++)
			if (p[i][j] != (uint8_t)(i & 0xff))
				fail_msg("allocation %zu overwritten at %zu", i, j);
	}
	for (size_t i = 0; i < N; i += 2)
		sec_free(p[i]);
	for (size_t i = 1; i < N; i += 2)
		sec_free(p[i]);
	assert_int_equal(sec_in_use(), base);
}

static void test_dup_and_failure(void **state)
{
	size_t base = sec_in_use();
	uint8_t *d = sec_dup("secret", 6);
	assert_non_null(d);
	assert_memory_equal(d, "secret", 6);
	assert_int_equal(sec_size(d), 6);
	sec_free(d);
	d = sec_dup(NULL, 0);
	assert_non_null(d);
	sec_free(d);
	/* Sizes that overflow the header or cannot be mapped. */
	assert_null(sec_alloc(SIZE_MAX));
	assert_null(sec_alloc(SIZE_MAX - 8));
	assert_null(sec_alloc((size_t)1 << 60));
	assert_int_equal(sec_in_use(), base);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_sizes),
		cmocka_unit_test(test_reuse_is_wiped),
		cmocka_unit_test(test_many_live),
		cmocka_unit_test(test_dup_and_failure),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
