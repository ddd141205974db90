/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The PIN lockout holds under concurrency: 4 processes x 4 threads guess
 * wrong PINs at once, and exactly PIN_MAX_TRIES (10) guesses are ever
 * evaluated (answered CKR_PIN_INCORRECT); every other try answers
 * CKR_PIN_LOCKED, and so does the right PIN afterwards. A try is counted
 * in the store before scrypt runs, so no thread or process evaluates a
 * guess the count did not allow.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"

#define PROCS 4
#define THREADS 4
#define MAX_TRIES 10

static h_env env;

typedef struct counts {
	int incorrect, locked, other;
} counts;

static void *guesser(void *arg)
{
	counts *c = arg;
	CK_SESSION_HANDLE s;
	if (p11->C_OpenSession(env.slot, CKF_SERIAL_SESSION, NULL, NULL, &s) != CKR_OK) {
		c->other++;
		return NULL;
	}
	for (int i = 0; i < 40; i++) {
		CK_RV rv = p11->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR) "0000", 4);
		if (rv == CKR_PIN_INCORRECT)
			c->incorrect++;
		else if (rv == CKR_PIN_LOCKED) {
			c->locked++;
			break;
		} else
			c->other++;
	}
	p11->C_CloseSession(s);
	return NULL;
}

static void test_lockout_is_exact(void **state)
{
	(void)state;
	h_env_new(&env, "required", "\"pin_kdf_cost\": 12");
	assert_ok(h_initialize(&env));
	h_init_token(&env);
	assert_ok(p11->C_Finalize(NULL));
	counts *shared = mmap(NULL, sizeof(counts) * PROCS * THREADS, PROT_READ | PROT_WRITE,
			      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	assert_true(shared != MAP_FAILED);
	memset(shared, 0, sizeof(counts) * PROCS * THREADS);
	pid_t pids[PROCS];
	for (int p = 0; p < PROCS; p++) {
		pids[p] = fork();
		assert_true(pids[p] >= 0);
		if (pids[p] == 0) {
			if (h_initialize_child(&env) != CKR_OK)
				_exit(2);
			pthread_t th[THREADS];
			for (int i = 0; i < THREADS; i++)
				pthread_create(&th[i], NULL, guesser, &shared[p * THREADS + i]);
			for (int i = 0; i < THREADS; i++)
				pthread_join(th[i], NULL);
			p11->C_Finalize(NULL);
			_exit(0);
		}
	}
	for (int p = 0; p < PROCS; p++) {
		int st;
		assert_int_equal(waitpid(pids[p], &st, 0), pids[p]);
		assert_true(WIFEXITED(st) && WEXITSTATUS(st) == 0);
	}
	int incorrect = 0, locked = 0, other = 0;
	for (int i = 0; i < PROCS * THREADS; i++) {
		incorrect += shared[i].incorrect;
		locked += shared[i].locked;
		other += shared[i].other;
	}
	fprintf(stderr, "%d wrong PINs evaluated, %d locked answers, %d others\n", incorrect,
		locked, other);
	assert_int_equal(other, 0);
	assert_int_equal(incorrect, MAX_TRIES);
	assert_int_equal(locked, PROCS * THREADS);
	/* Locked for the right PIN too, in a new process. */
	assert_ok(h_initialize(&env));
	CK_SESSION_HANDLE s;
	assert_ok(p11->C_OpenSession(env.slot, CKF_SERIAL_SESSION, NULL, NULL, &s));
	assert_rv(p11->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)USER_PIN, strlen(USER_PIN)),
		  CKR_PIN_LOCKED);
	CK_TOKEN_INFO ti;
	assert_ok(p11->C_GetTokenInfo(env.slot, &ti));
	assert_true(ti.flags & CKF_USER_PIN_LOCKED);
	assert_ok(p11->C_Finalize(NULL));
	munmap(shared, sizeof(counts) * PROCS * THREADS);
	h_env_free(&env);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_lockout_is_exact),
	};
	return cmocka_run_group_tests(tests, NULL, NULL);
}
