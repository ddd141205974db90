/* SPDX-License-Identifier: Apache-2.0 */
/*
 * C_WrapKey while other threads close its session and destroy its keys
 * (issue 14): the session a wrap looked up must not be read after the
 * module lock is released, for another thread may close it and free it
 * then. Wrapping threads open a session, publish its handle and wrap;
 * closing threads close whatever handle they find published; a destroying
 * thread makes and destroys the key being wrapped. Under AddressSanitizer
 * a read of a freed session fails the run. Every answer must be one the
 * race explains, and every successful wrap must give the right bytes
 * (AES key wrap is deterministic).
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "harness.h"

static h_env env;
static CK_SESSION_HANDLE keeper; /* holds the login and the keys */
static CK_OBJECT_HANDLE kek, stable;
static uint8_t want[40];

enum { WRAPPERS = 2, CLOSERS = 2, SECONDS = 3 };

static atomic_ulong published[WRAPPERS]; /* the wrappers' open sessions */
static atomic_ulong victim;              /* a key the destroyer replaces */
static atomic_bool stop;

typedef struct tally {
	unsigned long ok, closed, gone, bad;
	CK_RV bad_rv;
	char why[160];
} tally;

static CK_OBJECT_HANDLE make_key(CK_BBOOL wrap, const uint8_t *value)
{
	CK_OBJECT_CLASS c = CKO_SECRET_KEY;
	CK_KEY_TYPE kt = CKK_AES;
	CK_BBOOL f = CK_FALSE, t = CK_TRUE;
	CK_ATTRIBUTE tmpl[] = {
		{CKA_CLASS, &c, sizeof(c)},   {CKA_KEY_TYPE, &kt, sizeof(kt)},
		{CKA_VALUE, (void *)value, 32}, {CKA_TOKEN, &f, 1},
		{CKA_EXTRACTABLE, &t, 1},     {CKA_WRAP, &wrap, 1},
	};
	CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
	if (p11->C_CreateObject(keeper, tmpl, 6, &h) != CKR_OK)
		return CK_INVALID_HANDLE;
	return h;
}

static void *wrapper(void *arg)
{
	int id = (int)(intptr_t)arg;
	tally *t = calloc(1, sizeof(*t));
	CK_MECHANISM m = {CKM_AES_KEY_WRAP, NULL, 0};
	for (unsigned long i = 0; !atomic_load(&stop); i++) {
		CK_SESSION_HANDLE s;
		if (p11->C_OpenSession(env.slot, CKF_SERIAL_SESSION, NULL, NULL, &s) != CKR_OK) {
			t->bad++;
			snprintf(t->why, sizeof(t->why), "C_OpenSession failed");
			break;
		}
		atomic_store(&published[id], s);
		bool mine = i % 2 == 0;
		CK_OBJECT_HANDLE k = mine ? stable : (CK_OBJECT_HANDLE)atomic_load(&victim);
		uint8_t blob[64];
		CK_ULONG bl = sizeof(blob);
		CK_RV rv = p11->C_WrapKey(s, &m, kek, k, blob, &bl);
		if (rv == CKR_OK && mine && (bl != sizeof(want) || memcmp(blob, want, bl))) {
			t->bad++;
			snprintf(t->why, sizeof(t->why), "a wrap gave the wrong bytes");
		} else if (rv == CKR_OK) {
			t->ok++;
		} else if (rv == CKR_SESSION_HANDLE_INVALID || rv == CKR_SESSION_CLOSED) {
			t->closed++;
		} else if (rv == CKR_KEY_HANDLE_INVALID && !mine) {
			t->gone++;
		} else {
			t->bad++;
			t->bad_rv = rv;
			snprintf(t->why, sizeof(t->why), "C_WrapKey: 0x%lx", (unsigned long)rv);
		}
		atomic_store(&published[id], CK_INVALID_HANDLE);
		CK_RV crv = p11->C_CloseSession(s);
		if (crv != CKR_OK && crv != CKR_SESSION_HANDLE_INVALID) {
			t->bad++;
			snprintf(t->why, sizeof(t->why), "C_CloseSession: 0x%lx",
				 (unsigned long)crv);
		}
	}
	return t;
}

static void *closer(void *arg)
{
	int id = (int)(intptr_t)arg;
	while (!atomic_load(&stop)) {
		CK_SESSION_HANDLE s = atomic_load(&published[id % WRAPPERS]);
		if (s != CK_INVALID_HANDLE)
			(void)p11->C_CloseSession(s);
		id++;
	}
	return NULL;
}

static void *destroyer(void *arg)
{
	(void)arg;
	uint8_t v[32];
	h_fill(v, sizeof(v), 0x51);
	while (!atomic_load(&stop)) {
		CK_OBJECT_HANDLE h = make_key(CK_FALSE, v);
		if (h == CK_INVALID_HANDLE)
			return (void *)1;
		atomic_store(&victim, h);
		if (p11->C_DestroyObject(keeper, h) != CKR_OK)
			return (void *)1;
	}
	return NULL;
}

static void test_wrap_while_closing(void **state)
{
	(void)state;
	/* Failing calls are the point here: keep the log to errors, or writing
	 * it is all the run does. */
	setenv("P11KMS_LOG_LEVEL", "error", 1);
	h_env_new(&env, "required", "");
	assert_ok(h_initialize(&env));
	h_init_token(&env);
	keeper = h_user_session(&env);
	uint8_t kv[32], sv[32];
	h_fill(kv, sizeof(kv), 0x17);
	h_fill(sv, sizeof(sv), 0x29);
	kek = make_key(CK_TRUE, kv);
	stable = make_key(CK_FALSE, sv);
	assert_true(kek != CK_INVALID_HANDLE && stable != CK_INVALID_HANDLE);
	CK_MECHANISM m = {CKM_AES_KEY_WRAP, NULL, 0};
	CK_ULONG wl = sizeof(want);
	assert_ok(p11->C_WrapKey(keeper, &m, kek, stable, want, &wl));
	assert_int_equal(wl, sizeof(want));
	atomic_store(&victim, stable);

	pthread_t w[WRAPPERS], c[CLOSERS], d;
	for (int i = 0; i < WRAPPERS; i++)
		assert_int_equal(pthread_create(&w[i], NULL, wrapper, (void *)(intptr_t)i), 0);
	for (int i = 0; i < CLOSERS; i++)
		assert_int_equal(pthread_create(&c[i], NULL, closer, (void *)(intptr_t)i), 0);
	assert_int_equal(pthread_create(&d, NULL, destroyer, NULL), 0);
	struct timespec nap = {SECONDS, 0};
	nanosleep(&nap, NULL);
	atomic_store(&stop, true);
	tally all = {0};
	for (int i = 0; i < WRAPPERS; i++) {
		tally *t;
		pthread_join(w[i], (void **)&t);
		all.ok += t->ok, all.closed += t->closed, all.gone += t->gone;
		all.bad += t->bad;
		if (t->bad)
			memcpy(all.why, t->why, sizeof(all.why));
		free(t);
	}
	for (int i = 0; i < CLOSERS; i++)
		pthread_join(c[i], NULL);
	void *dr;
	pthread_join(d, &dr);
	print_message("wraps: %lu right, %lu on a closed session, %lu of a destroyed key\n",
		      all.ok, all.closed, all.gone);
	if (all.bad)
		fail_msg("%lu unexplained answers, e.g. %s", all.bad, all.why);
	assert_null(dr);
	/* The race was run: some wraps finished, some lost their session. */
	assert_true(all.ok > 0);
	assert_true(all.closed > 0);
	assert_ok(p11->C_CloseSession(keeper));
	p11->C_Finalize(NULL);
	h_env_free(&env);
}

int main(void)
{
	h_load();
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_wrap_while_closing),
	};
	return cmocka_run_group_tests_name("wrap_race", tests, NULL, NULL);
}
