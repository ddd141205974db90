/* SPDX-License-Identifier: Apache-2.0 */
/*
 * common/jsonpos.c: the line of a value by its path, and 0 for anything
 * it cannot find or that is malformed, without reading past len.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdlib.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>

#include "common/jsonpos.h"

#define K(k) {(k), 0}
#define I(i) {NULL, (i)}

static const char doc[] =
	"{\n"                                              /* 1 */
	"  \"log\": {\"level\": \"info\"},\n"              /* 2 */
	"  \"providers\": [\n"                             /* 3 */
	"    {\"name\": \"a\", \"type\": \"local\",\n"     /* 4 */
	"     \"names\": \"x\", \"store\": \"/s\"},\n"     /* 5 */
	"    {\n"                                          /* 6 */
	"      \"nested\": {\"deep\": [1, [2, {\"k\": \"}]{[\"}], 3]},\n" /* 7 */
	"      \"name\":\n"                                /* 8 */
	"        \"b\"\n"                                  /* 9 */
	"    }\n"                                          /* 10 */
	"  ],\n"                                           /* 11 */
	"  \"last\": true\n"                               /* 12 */
	"}\n";

/* The text in a buffer of exactly len bytes, so ASan sees overreads. */
static unsigned line_of(const char *text, size_t len, const jpath_elem *p,
			size_t depth)
{
	char *copy = malloc(len ? len : 1);
	assert_non_null(copy);
	memcpy(copy, text, len);
	unsigned l = jsonpos_line(copy, len, p, depth);
	free(copy);
	return l;
}

#define LINE(text, ...)                                                        \
	({                                                                     \
		const jpath_elem p_[] = {__VA_ARGS__};                         \
		line_of((text), strlen(text), p_, ARRAY_N(p_));                \
	})
#define ARRAY_N(a) (sizeof(a) / sizeof((a)[0]))

static void test_found(void **state)
{
	assert_int_equal(line_of(doc, strlen(doc), NULL, 0), 1);
	assert_int_equal(LINE(doc, K("log")), 2);
	assert_int_equal(LINE(doc, K("log"), K("level")), 2);
	assert_int_equal(LINE(doc, K("providers")), 3);
	assert_int_equal(LINE(doc, K("providers"), I(0)), 4);
	assert_int_equal(LINE(doc, K("providers"), I(0), K("store")), 5);
	assert_int_equal(LINE(doc, K("providers"), I(1)), 6);
	/* The value's line, not the key's. */
	assert_int_equal(LINE(doc, K("providers"), I(1), K("name")), 9);
	assert_int_equal(LINE(doc, K("providers"), I(1), K("nested"), K("deep"),
			      I(1), I(1), K("k")),
			 7);
	/* Skipping over strings with brackets and nested containers. */
	assert_int_equal(LINE(doc, K("last")), 12);
	/* Leading blank lines count. */
	assert_int_equal(LINE("\n\n\r\n  {\"a\":\n\n 1}", K("a")), 6);
}

static void test_names_match_exactly(void **state)
{
	/* "name" is not "names", and the first "name" is the one found. */
	assert_int_equal(LINE(doc, K("providers"), I(0), K("name")), 4);
	assert_int_equal(LINE(doc, K("providers"), I(0), K("names")), 5);
	assert_int_equal(LINE(doc, K("providers"), I(0), K("nam")), 0);
	assert_int_equal(LINE(doc, K("providers"), I(0), K("namesx")), 0);
	/* Escaped names never match (documented). */
	assert_int_equal(LINE("{\"a\\u0062\": 1}", K("ab")), 0);
}

static void test_not_found(void **state)
{
	assert_int_equal(LINE(doc, K("nothing")), 0);
	assert_int_equal(LINE(doc, K("providers"), I(2)), 0);
	/* Wrong container kind for the path element. */
	assert_int_equal(LINE(doc, I(0)), 0);
	assert_int_equal(LINE(doc, K("providers"), K("name")), 0);
	assert_int_equal(LINE(doc, K("last"), K("x")), 0);
	assert_int_equal(LINE("", K("a")), 0);
	assert_int_equal(line_of("", 0, NULL, 0), 1);
}

static void test_malformed(void **state)
{
	assert_int_equal(LINE("{\"a", K("a")), 0);
	assert_int_equal(LINE("{\"a\"", K("a")), 0);
	assert_int_equal(LINE("{\"a\" 1}", K("a")), 0);
	assert_int_equal(LINE("{\"x\": \"unterminated, \"a\": 1", K("a")), 0);
	assert_int_equal(LINE("{\"x\": [1, 2, \"a\": 1", K("a")), 0);
	assert_int_equal(LINE("{\"x\": \"\\", K("a")), 0);
	assert_int_equal(LINE("[1, 2", I(5)), 0);
}

static void test_bounded_by_len(void **state)
{
	/* The key lies past len: not found, and nothing read beyond. */
	static const char t[] = "{\"x\": 1, \"a\": 2}";
	const jpath_elem p[] = {K("a")};
	for (size_t len = 0; len < strlen(t); len++) {
		unsigned l = line_of(t, len, p, 1);
		assert_true(l == 0 || len >= 13);
	}
	assert_int_equal(line_of(t, strlen(t), p, 1), 1);
}

static void test_deep_nesting(void **state)
{
	/* 40 levels inside a value that must be skipped: refused, no crash. */
	char t[200];
	size_t n = 0;
	n += (size_t)snprintf(t + n, sizeof(t) - n, "{\"x\": ");
	for (int i = 0; i < 40; i++)
		t[n++] = '[';
	for (int i = 0; i < 40; i++)
		t[n++] = ']';
	n += (size_t)snprintf(t + n, sizeof(t) - n, ", \"a\": 1}");
	t[n] = 0;
	assert_int_equal(LINE(t, K("a")), 0);
	/* Ten levels are fine. */
	assert_int_equal(LINE("{\"x\": [[[[[[[[[[]]]]]]]]]], \"a\":\n 1}", K("a")),
			 2);
}

/* jsonpos_line(text, K(key)) in a child: its answer (0..254), or -1 when
 * it does not finish within two seconds. */
static int line_in_child(const char *text, const char *key)
{
	pid_t pid = fork();
	assert_true(pid >= 0);
	if (pid == 0) {
		const jpath_elem p[] = {K(key)};
		_exit((int)jsonpos_line(text, strlen(text), p, 1) & 0xff);
	}
	int status = 0;
	for (int i = 0; i < 200; i++) {
		if (waitpid(pid, &status, WNOHANG) == pid)
			return WIFEXITED(status) ? WEXITSTATUS(status) : -2;
		nanosleep(&(struct timespec){0, 10 * 1000 * 1000}, NULL);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	return -1;
}

static void test_mismatched_brackets(void **state)
{
	/* Malformed: a '}' closing an array, a ']' closing an object.
	 * jsonpos.h promises to give up (0) on anything malformed. Found by
	 * fuzz_jsonpos: skip_value consumes nothing at a stray closer, so
	 * skip_container spins forever (-1 here). */
	assert_int_equal(line_in_child("{\"x\": [}], \"a\": 1}", "a"), 0);
	assert_int_equal(line_in_child("{\"x\": {]}, \"a\": 1}", "a"), 0);
	assert_int_equal(line_in_child("{\"x\": [1, 2], \"a\": 1}", "a"), 1);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_found),
		cmocka_unit_test(test_names_match_exactly),
		cmocka_unit_test(test_not_found),
		cmocka_unit_test(test_malformed),
		cmocka_unit_test(test_bounded_by_len),
		cmocka_unit_test(test_deep_nesting),
		cmocka_unit_test(test_mismatched_brackets),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
