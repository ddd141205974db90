/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The hammer (issue 14): many sessions doing every kind of call while other
 * threads close them one by one, close them all (C_CloseAllSessions, which
 * also logs the token out) and fork. Run in the release, ASan/UBSan and
 * TSan builds: nothing may crash, hang, leak or race, and every answer must
 * be one the race explains (a session or handle that just went away, the
 * login it took with it). A worker that loses its session opens another
 * and logs in again; its keys are session objects, gone with the session,
 * so it makes new ones. At the end every worker must have completed real
 * round trips, and a last one must give the right bytes.
 *
 * C_Finalize racing with calls in other threads is left out: PKCS #11
 * leaves it undefined and docs/ARCHITECTURE.md says the module does too.
 */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

enum { WORKERS = 4, SECONDS = 4, FORK_EVERY_MS = 150, CHILD_ALARM_S = 60 };

static h_env env;
static atomic_ulong published[WORKERS]; /* each worker's open session */
static atomic_int stop;

typedef struct worker {
	int id;
	unsigned long rounds, lost;
	char why[200];
} worker;

/* The answers a vanished session, handle or login explains. */
static bool race_explains(CK_RV rv)
{
	return rv == CKR_SESSION_HANDLE_INVALID || rv == CKR_SESSION_CLOSED ||
	       rv == CKR_KEY_HANDLE_INVALID || rv == CKR_OBJECT_HANDLE_INVALID ||
	       rv == CKR_OPERATION_NOT_INITIALIZED || rv == CKR_USER_NOT_LOGGED_IN;
}

static void sleep_ms(long ms)
{
	struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
	nanosleep(&ts, NULL);
}

/* One round of work on s: a session AES key and an HMAC key, GCM both
 * ways, a multi-part digest, an HMAC, a find. CKR_OK, an answer the race
 * explains, or a failure recorded in w. */
static CK_RV round_trip(worker *w, CK_SESSION_HANDLE s, unsigned long i)
{
	CK_RV rv;
#define STEP(expr)                                                                         \
	do {                                                                               \
		rv = (expr);                                                               \
		if (rv != CKR_OK) {                                                        \
			if (!race_explains(rv))                                            \
				snprintf(w->why, sizeof(w->why), "%s -> 0x%lx", #expr,      \
					 (unsigned long)rv);                               \
			return rv;                                                         \
		}                                                                          \
	} while (0)
	CK_MECHANISM km = {CKM_AES_KEY_GEN, NULL, 0};
	CK_ULONG len = 32;
	CK_ATTRIBUTE t[] = {{CKA_VALUE_LEN, &len, sizeof(len)}};
	CK_OBJECT_HANDLE k, hk;
	STEP(p11->C_GenerateKey(s, &km, t, 1, &k));
	CK_MECHANISM hkm = {CKM_GENERIC_SECRET_KEY_GEN, NULL, 0};
	STEP(p11->C_GenerateKey(s, &hkm, t, 1, &hk));
	uint8_t iv[12] = {(uint8_t)w->id, (uint8_t)i, (uint8_t)(i >> 8), (uint8_t)(i >> 16)};
	uint8_t pt[512], ct[512 + 16], back[512], md[64];
	memset(pt, w->id + 1, sizeof(pt));
	CK_GCM_PARAMS gp = {iv, 12, 96, NULL, 0, 128};
	CK_MECHANISM gm = {CKM_AES_GCM, &gp, sizeof(gp)};
	CK_ULONG cl = sizeof(ct), bl = sizeof(back), ml = sizeof(md);
	STEP(p11->C_EncryptInit(s, &gm, k));
	STEP(p11->C_Encrypt(s, pt, sizeof(pt), ct, &cl));
	STEP(p11->C_DecryptInit(s, &gm, k));
	STEP(p11->C_Decrypt(s, ct, cl, back, &bl));
	if (bl != sizeof(pt) || memcmp(back, pt, bl) != 0) {
		snprintf(w->why, sizeof(w->why), "GCM round trip gave other bytes");
		return CKR_GENERAL_ERROR;
	}
	CK_MECHANISM dm = {CKM_SHA256, NULL, 0};
	STEP(p11->C_DigestInit(s, &dm));
	STEP(p11->C_DigestUpdate(s, pt, 100));
	STEP(p11->C_DigestUpdate(s, pt + 100, sizeof(pt) - 100));
	STEP(p11->C_DigestFinal(s, md, &ml));
	CK_MECHANISM hm = {CKM_SHA256_HMAC, NULL, 0};
	ml = sizeof(md);
	STEP(p11->C_SignInit(s, &hm, hk));
	STEP(p11->C_Sign(s, pt, sizeof(pt), md, &ml));
	CK_OBJECT_CLASS c = CKO_SECRET_KEY;
	CK_ATTRIBUTE q[] = {{CKA_CLASS, &c, sizeof(c)}};
	CK_OBJECT_HANDLE found[4];
	CK_ULONG n;
	STEP(p11->C_FindObjectsInit(s, q, 1));
	STEP(p11->C_FindObjects(s, found, 4, &n));
	STEP(p11->C_FindObjectsFinal(s));
	STEP(p11->C_DestroyObject(s, k));
	STEP(p11->C_DestroyObject(s, hk));
#undef STEP
	return CKR_OK;
}

static void *work(void *arg)
{
	worker *w = arg;
	CK_SESSION_HANDLE s = CK_INVALID_HANDLE;
	for (unsigned long i = 0; !atomic_load(&stop) && !w->why[0]; i++) {
		if (s == CK_INVALID_HANDLE) {
			CK_RV rv = p11->C_OpenSession(env.slot, CKF_SERIAL_SESSION | CKF_RW_SESSION,
						      NULL, NULL, &s);
			if (rv != CKR_OK) {
				snprintf(w->why, sizeof(w->why), "C_OpenSession -> 0x%lx",
					 (unsigned long)rv);
				break;
			}
			atomic_store(&published[w->id], s);
			rv = p11->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)USER_PIN, strlen(USER_PIN));
			if (rv != CKR_OK && rv != CKR_USER_ALREADY_LOGGED_IN && !race_explains(rv)) {
				snprintf(w->why, sizeof(w->why), "C_Login -> 0x%lx",
					 (unsigned long)rv);
				break;
			}
		}
		CK_RV rv = round_trip(w, s, i);
		if (rv == CKR_OK) {
			w->rounds++;
			continue;
		}
		if (w->why[0])
			break;
		/* Lost to the race: start again on a new session (a close of
		 * one already closed by a closer is part of the race too). */
		w->lost++;
		rv = p11->C_CloseSession(s);
		if (rv != CKR_OK && rv != CKR_SESSION_HANDLE_INVALID) {
			snprintf(w->why, sizeof(w->why), "C_CloseSession -> 0x%lx",
				 (unsigned long)rv);
			break;
		}
		s = CK_INVALID_HANDLE;
	}
	if (s != CK_INVALID_HANDLE)
		p11->C_CloseSession(s);
	return NULL;
}

static void *closer(void *arg)
{
	char *why = arg;
	unsigned seed = 7;
	for (int i = 0; !atomic_load(&stop); i++) {
		sleep_ms(20 + rand_r(&seed) % 40);
		CK_RV rv;
		if (i % 20 == 19) {
			rv = p11->C_CloseAllSessions(env.slot);
		} else {
			CK_SESSION_HANDLE s = atomic_load(&published[rand_r(&seed) % WORKERS]);
			rv = p11->C_CloseSession(s);
			if (rv == CKR_SESSION_HANDLE_INVALID)
				rv = CKR_OK; /* closed already */
		}
		if (rv != CKR_OK) {
			snprintf(why, 200, "closer: 0x%lx", (unsigned long)rv);
			break;
		}
	}
	return NULL;
}

/* A child of the threaded parent: it works on its own. */
static int child_main(void)
{
	alarm(CHILD_ALARM_S);
	if (h_initialize_child(&env) != CKR_OK)
		return 2;
	CK_SESSION_HANDLE s;
	if (p11->C_OpenSession(env.slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s) ||
	    p11->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)USER_PIN, strlen(USER_PIN)))
		return 3;
	worker w = {.id = 0};
	if (round_trip(&w, s, 1) != CKR_OK)
		return 4;
	return p11->C_Finalize(NULL) == CKR_OK ? 0 : 5;
}

static void test_hammer(void **state)
{
	(void)state;
	pthread_t th[WORKERS], ct;
	worker w[WORKERS];
	char closer_why[200] = "";
	atomic_store(&stop, 0);
	for (int i = 0; i < WORKERS; i++) {
		w[i] = (worker){.id = i};
		assert_int_equal(pthread_create(&th[i], NULL, work, &w[i]), 0);
	}
	assert_int_equal(pthread_create(&ct, NULL, closer, closer_why), 0);
	int forks = 0, bad_children = 0;
	struct timespec t0, now;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	do {
		sleep_ms(FORK_EVERY_MS);
		pid_t pid = fork();
		if (pid == 0)
			_exit(child_main());
		assert_true(pid > 0);
		int st;
		assert_int_equal(waitpid(pid, &st, 0), pid);
		forks++;
		if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
			fprintf(stderr, "fork %d: child %s %d\n", forks,
				WIFEXITED(st) ? "exited" : "killed by signal",
				WIFEXITED(st) ? WEXITSTATUS(st) : WTERMSIG(st));
			bad_children++;
		}
		clock_gettime(CLOCK_MONOTONIC, &now);
	} while (now.tv_sec - t0.tv_sec < SECONDS);
	atomic_store(&stop, 1);
	pthread_join(ct, NULL);
	unsigned long rounds = 0, lost = 0;
	for (int i = 0; i < WORKERS; i++) {
		pthread_join(th[i], NULL);
		if (w[i].why[0])
			fail_msg("worker %d: %s", i, w[i].why);
		fprintf(stderr, "# worker %d: %lu rounds, %lu lost\n", i, w[i].rounds, w[i].lost);
		assert_true(w[i].rounds > 0);
		rounds += w[i].rounds;
		lost += w[i].lost;
	}
	if (closer_why[0])
		fail_msg("%s", closer_why);
	assert_int_equal(bad_children, 0);
	fprintf(stderr, "# %lu rounds, %lu lost to the race, %d forks\n", rounds, lost, forks);
	assert_true(lost > 0); /* the closers did reach the workers */
	/* The module is whole: a last round trip on a fresh session. */
	CK_SESSION_HANDLE s = h_user_session(&env);
	worker last = {.id = 9};
	assert_int_equal(round_trip(&last, s, 1), CKR_OK);
	assert_ok(p11->C_CloseSession(s));
}

static int setup(void **state)
{
	(void)state;
	h_env_new(&env, "required", "\"revalidate_seconds\": 1");
	assert_ok(h_initialize(&env));
	h_init_token(&env);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	p11->C_Finalize(NULL);
	h_env_free(&env);
	return 0;
}

int main(void)
{
	h_load();
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_hammer, setup, teardown),
	};
	return cmocka_run_group_tests_name("hammer", tests, NULL, NULL);
}
