/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The lock rule of slots/slots.h, through the exported API: a thread in
 * C_Login (scrypt, the KMS, a store another process holds) never stalls
 * other threads' calls, and what it publishes afterwards is re-validated
 * against what happened meanwhile.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <sqlite3.h>

#include "harness.h"

static h_env env;

/* Calls on another session must come back well before the store's busy
 * timeout (15 s) or a slow KDF would let them. */
#define PROMPT_MS 1000

static uint64_t now_ms(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
}

static void sleep_ms(unsigned ms)
{
	struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

static int teardown(void **state)
{
	(void)state;
	p11->C_Finalize(NULL);
	h_env_free(&env);
	return 0;
}

typedef struct login_job {
	CK_SESSION_HANDLE s;
	const char *pin;
	CK_RV rv;
	int done;
} login_job;

static void *login_thread(void *arg)
{
	login_job *j = arg;
	j->rv = p11->C_Login(j->s, CKU_USER, (CK_UTF8CHAR_PTR)j->pin, strlen(j->pin));
	__atomic_store_n(&j->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

/* Another process's writer: holds the store's SQLite write lock for
 * hold_ms, as a second connection (SQLite arbitrates connections of one
 * process exactly as it does processes). */
typedef struct writer {
	const char *path;
	unsigned hold_ms;
	int locked;
} writer;

static void *writer_thread(void *arg)
{
	writer *w = arg;
	sqlite3 *db = NULL;
	if (sqlite3_open(w->path, &db) == SQLITE_OK &&
	    sqlite3_exec(db, "BEGIN IMMEDIATE", NULL, NULL, NULL) == SQLITE_OK) {
		__atomic_store_n(&w->locked, 1, __ATOMIC_RELEASE);
		sleep_ms(w->hold_ms);
		sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
	} else {
		__atomic_store_n(&w->locked, -1, __ATOMIC_RELEASE);
	}
	sqlite3_close(db);
	return NULL;
}

/* A public session AES key: usable without a login. */
static CK_OBJECT_HANDLE public_aes(CK_SESSION_HANDLE s)
{
	static const uint8_t v[16] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16};
	CK_OBJECT_CLASS c = CKO_SECRET_KEY;
	CK_KEY_TYPE kt = CKK_AES;
	CK_BBOOL f = CK_FALSE, t = CK_TRUE;
	CK_ATTRIBUTE tmpl[] = {
		{CKA_CLASS, &c, sizeof(c)}, {CKA_KEY_TYPE, &kt, sizeof(kt)},
		{CKA_VALUE, (void *)v, sizeof(v)}, {CKA_TOKEN, &f, 1},
		{CKA_PRIVATE, &f, 1}, {CKA_ENCRYPT, &t, 1},
	};
	CK_OBJECT_HANDLE k = CK_INVALID_HANDLE;
	assert_ok(p11->C_CreateObject(s, tmpl, 6, &k));
	return k;
}

/* A token in login=optional mode with a read-write session *a and a
 * read-only session *b, which holds a public session AES key (returned). */
static CK_OBJECT_HANDLE two_sessions(CK_SESSION_HANDLE *a, CK_SESSION_HANDLE *b)
{
	h_env_new(&env, "optional", "\"pin_kdf_cost\": 12");
	assert_ok(h_initialize(&env));
	h_init_token(&env);
	assert_ok(p11->C_OpenSession(env.slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL,
				     NULL, a));
	assert_ok(p11->C_OpenSession(env.slot, CKF_SERIAL_SESSION, NULL, NULL, b));
	return public_aes(*b);
}

/* Start w's thread and return once it holds the store's write lock. */
static void hold_store(writer *w, pthread_t *wt)
{
	assert_int_equal(pthread_create(wt, NULL, writer_thread, w), 0);
	while (!__atomic_load_n(&w->locked, __ATOMIC_ACQUIRE))
		sleep_ms(5);
	assert_int_equal(w->locked, 1);
}

/* Time the calls of an unrelated session: info, token info, a local
 * encryption. */
static uint64_t other_session_ms(CK_SESSION_HANDLE b, CK_OBJECT_HANDLE key)
{
	uint64_t t0 = now_ms();
	CK_SESSION_INFO si;
	CK_TOKEN_INFO ti;
	uint8_t out[64];
	CK_ULONG ol = sizeof(out);
	assert_ok(p11->C_GetSessionInfo(b, &si));
	assert_ok(p11->C_GetTokenInfo(env.slot, &ti));
	assert_ok(h_encrypt_probe(b, key, out, &ol));
	return now_ms() - t0;
}

/* A wrong PIN is counted in the store. While another process holds the
 * store's write lock, that count must wait for it without the module lock:
 * other sessions go on, and the count lands once the writer is done. */
static void test_store_writer_stalls_no_one(void **state)
{
	(void)state;
	CK_SESSION_HANDLE a, b;
	CK_OBJECT_HANDLE key = two_sessions(&a, &b);

	writer w = {.path = env.store, .hold_ms = 4000};
	pthread_t wt, lt;
	hold_store(&w, &wt);

	login_job j = {.s = a, .pin = "wrong-pin"};
	assert_int_equal(pthread_create(&lt, NULL, login_thread, &j), 0);
	sleep_ms(500); /* the login is now waiting for the store */
	assert_false(__atomic_load_n(&j.done, __ATOMIC_ACQUIRE));
	uint64_t ms = other_session_ms(b, key);
	pthread_join(lt, NULL);
	pthread_join(wt, NULL);
	if (ms > PROMPT_MS)
		fail_msg("calls on another session took %llu ms while a login waited "
			 "for the store's write lock",
			 (unsigned long long)ms);
	/* The failure was counted once the writer let go. */
	assert_rv(j.rv, CKR_PIN_INCORRECT);
	CK_TOKEN_INFO ti;
	assert_ok(p11->C_GetTokenInfo(env.slot, &ti));
	assert_true(ti.flags & CKF_USER_PIN_COUNT_LOW);
	/* And the right PIN still works. */
	assert_ok(p11->C_Login(a, CKU_USER, (CK_UTF8CHAR_PTR)USER_PIN, strlen(USER_PIN)));
}

/* The application closes its only session while C_Login runs scrypt: the
 * login must not outlive the sessions (PKCS #11 5.6: closing the last
 * session logs the application out), and other sessions are never held
 * up by the KDF. */
static void test_close_during_login(void **state)
{
	(void)state;
	h_env_new(&env, "required", "\"pin_kdf_cost\": 17");
	assert_ok(h_initialize(&env));
	h_init_token(&env);
	CK_SESSION_HANDLE a;
	assert_ok(p11->C_OpenSession(env.slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL,
				     NULL, &a));
	login_job j = {.s = a, .pin = USER_PIN};
	pthread_t lt;
	uint64_t t0 = now_ms();
	assert_int_equal(pthread_create(&lt, NULL, login_thread, &j), 0);
	sleep_ms(20);
	assert_ok(p11->C_CloseSession(a));
	bool during = !__atomic_load_n(&j.done, __ATOMIC_ACQUIRE);
	uint64_t close_ms = now_ms() - t0;
	pthread_join(lt, NULL);
	if (!during)
		skip(); /* scrypt was faster than this machine's scheduler */
	if (close_ms > PROMPT_MS)
		fail_msg("C_CloseSession took %llu ms during a login",
			 (unsigned long long)close_ms);
	assert_rv(j.rv, CKR_SESSION_CLOSED);
	/* Nobody is logged in: a new session is public. */
	CK_SESSION_HANDLE b;
	CK_SESSION_INFO si;
	assert_ok(p11->C_OpenSession(env.slot, CKF_SERIAL_SESSION, NULL, NULL, &b));
	assert_ok(p11->C_GetSessionInfo(b, &si));
	assert_int_equal(si.state, CKS_RO_PUBLIC_SESSION);
	assert_ok(p11->C_Login(b, CKU_USER, (CK_UTF8CHAR_PTR)USER_PIN, strlen(USER_PIN)));
}

/* Token object writes (create, set attribute, destroy) that find the
 * store held by another process's writer wait for it without the module
 * lock, and land once it lets go. */
typedef struct obj_job {
	CK_SESSION_HANDLE s;
	int what; /* 0 create, 1 set label, 2 destroy */
	CK_OBJECT_HANDLE h;
	CK_RV rv;
	int done;
} obj_job;

static void *obj_thread(void *arg)
{
	obj_job *j = arg;
	CK_OBJECT_CLASS c = CKO_DATA;
	CK_BBOOL t = CK_TRUE, f = CK_FALSE;
	CK_ATTRIBUTE tmpl[] = {{CKA_CLASS, &c, sizeof(c)}, {CKA_TOKEN, &t, 1},
			       {CKA_PRIVATE, &f, 1}, {CKA_LABEL, "waits", 5},
			       {CKA_VALUE, "data", 4}};
	CK_ATTRIBUTE lbl = {CKA_LABEL, "relabelled", 10};
	if (j->what == 0)
		j->rv = p11->C_CreateObject(j->s, tmpl, 5, &j->h);
	else if (j->what == 1)
		j->rv = p11->C_SetAttributeValue(j->s, j->h, &lbl, 1);
	else
		j->rv = p11->C_DestroyObject(j->s, j->h);
	__atomic_store_n(&j->done, 1, __ATOMIC_RELEASE);
	return NULL;
}

static void test_object_write_stalls_no_one(void **state)
{
	(void)state;
	CK_SESSION_HANDLE a, b;
	CK_OBJECT_HANDLE key = two_sessions(&a, &b);
	obj_job j = {.s = a};
	for (int what = 0; what < 3; what++) {
		j.what = what;
		j.done = 0;
		writer w = {.path = env.store, .hold_ms = 2500};
		pthread_t wt, ot;
		hold_store(&w, &wt);
		assert_int_equal(pthread_create(&ot, NULL, obj_thread, &j), 0);
		sleep_ms(400); /* the write now waits for the store */
		bool waiting = !__atomic_load_n(&j.done, __ATOMIC_ACQUIRE);
		uint64_t ms = other_session_ms(b, key);
		pthread_join(ot, NULL);
		pthread_join(wt, NULL);
		assert_true(waiting);
		if (ms > PROMPT_MS)
			fail_msg("calls on another session took %llu ms while a token object "
				 "write (%d) waited for the store's write lock",
				 (unsigned long long)ms, what);
		assert_rv(j.rv, CKR_OK);
	}
	/* It landed: a new process (a fresh C_Initialize) finds nothing left. */
	assert_ok(p11->C_Finalize(NULL));
	assert_ok(h_initialize(&env));
	CK_SESSION_HANDLE c;
	assert_ok(p11->C_OpenSession(env.slot, CKF_SERIAL_SESSION, NULL, NULL, &c));
	CK_OBJECT_CLASS dc = CKO_DATA;
	CK_ATTRIBUTE f1 = {CKA_CLASS, &dc, sizeof(dc)};
	CK_OBJECT_HANDLE found[4];
	CK_ULONG n = 0;
	assert_ok(p11->C_FindObjectsInit(c, &f1, 1));
	assert_ok(p11->C_FindObjects(c, found, 4, &n));
	assert_ok(p11->C_FindObjectsFinal(c));
	assert_int_equal(n, 0);
}

int main(void)
{
	h_load();
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_teardown(test_store_writer_stalls_no_one, teardown),
		cmocka_unit_test_teardown(test_close_during_login, teardown),
		cmocka_unit_test_teardown(test_object_write_stalls_no_one, teardown),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
