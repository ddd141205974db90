/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fork() while other threads work (docs/REVALIDATION.md, "Processes,
 * threads, fork"), through the exported API: worker threads hold the
 * module's lock, allocate secret memory under it (HMAC init, key
 * generation), write the store (token objects) and reserve IV counters
 * (SQLite without the module's lock), draw random bytes from the module's
 * OpenSSL context and log every call (level trace), while the revalidation
 * thread checks the sealing key every second; the main thread forks again
 * and again. Neither side may hang: each child finds the module
 * uninitialized and no revalidation thread, initializes, does real work of
 * every kind (which starts its own revalidation thread) and finalizes
 * (which stops it). A watchdog fails the test if the parent hangs, and a
 * child that hangs is killed by its alarm and fails it too.
 */
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "proc.h"

/* Under ThreadSanitizer the child starts no revalidation thread
 * (h_initialize_child); everything else runs the same. */
#define CHILD_THREADS (!h_tsan)

enum { WORKERS = 4, FORKS = 40, CHILD_ALARM_S = 60, PARENT_LIMIT_S = 600 };

static h_env env;
static CK_OBJECT_HANDLE token_key;
static int stop_workers; /* __atomic */
static int test_done;    /* __atomic */

static int setup(void **state)
{
	h_env_new(&env, "required", "\"revalidate_seconds\": 1");
	assert_ok(h_initialize(&env));
	h_init_token(&env);
	CK_SESSION_HANDLE s = h_user_session(&env);
	token_key = h_aes_key(s, 32, CK_TRUE, "fork-key");
	return 0;
}

static int teardown(void **state)
{
	p11->C_Finalize(NULL);
	h_env_free(&env);
	return 0;
}

/* Threads of this process named like the module's revalidation thread. */
static int reval_threads(void)
{
	return proc_threads_named("p11kms-reval");
}

/* Does this process hold a POSIX lock on the store file (/proc/locks)?
 * SQLite keeps a shared lock on a WAL database while a connection is open:
 * a connection of the child's own must take it, not count on the one its
 * parent's connection holds. */
static bool holds_store_lock(void)
{
	struct stat st;
	FILE *f = fopen("/proc/locks", "r");
	if (!f || stat(env.store, &st) != 0) {
		if (f)
			fclose(f);
		return false;
	}
	char line[256], me[16], ino[32];
	snprintf(me, sizeof(me), "%d", (int)getpid());
	snprintf(ino, sizeof(ino), ":%lu", (unsigned long)st.st_ino);
	bool found = false;
	while (!found && fgets(line, sizeof(line), f)) {
		char kind[16], pid[16], dev[64];
		if (sscanf(line, "%*s %15s %*s %*s %15s %63s", kind, pid, dev) == 3 &&
		    strcmp(kind, "POSIX") == 0 && strcmp(pid, me) == 0) {
			size_t dl = strlen(dev), il = strlen(ino);
			found = dl >= il && strcmp(dev + dl - il, ino) == 0;
		}
	}
	fclose(f);
	return found;
}

/* --- the work, in parent threads and in children ------------------------- */

/* HMAC init copies the key into secret memory under the module's lock. */
static CK_RV work_hmac(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE mac_key)
{
	CK_MECHANISM m = {CKM_SHA256_HMAC, NULL, 0};
	uint8_t out[32];
	CK_ULONG ol = sizeof(out);
	CK_RV rv = p11->C_SignInit(s, &m, mac_key);
	return rv ? rv : p11->C_Sign(s, (CK_BYTE_PTR) "data", 4, out, &ol);
}

/* A session key made and dropped: secret memory, the object registry. */
static CK_RV work_keygen(CK_SESSION_HANDLE s)
{
	CK_OBJECT_CLASS c = CKO_SECRET_KEY;
	CK_KEY_TYPE kt = CKK_AES;
	CK_ULONG len = 32;
	CK_BBOOL f = CK_FALSE;
	CK_ATTRIBUTE t[] = {{CKA_CLASS, &c, sizeof(c)}, {CKA_KEY_TYPE, &kt, sizeof(kt)},
			    {CKA_VALUE_LEN, &len, sizeof(len)}, {CKA_TOKEN, &f, 1}};
	CK_MECHANISM m = {CKM_AES_KEY_GEN, NULL, 0};
	CK_OBJECT_HANDLE h;
	CK_RV rv = p11->C_GenerateKey(s, &m, t, 4, &h);
	return rv ? rv : p11->C_DestroyObject(s, h);
}

/* A token object written and removed: the store, under the module lock. */
static CK_RV work_store(CK_SESSION_HANDLE s, int id)
{
	CK_OBJECT_CLASS c = CKO_DATA;
	CK_BBOOL t = CK_TRUE;
	char label[32];
	snprintf(label, sizeof(label), "fork-data-%d", id);
	CK_ATTRIBUTE tmpl[] = {{CKA_CLASS, &c, sizeof(c)},
			       {CKA_TOKEN, &t, 1},
			       {CKA_LABEL, label, strlen(label)},
			       {CKA_VALUE, label, strlen(label)}};
	CK_OBJECT_HANDLE h;
	CK_RV rv = p11->C_CreateObject(s, tmpl, 4, &h);
	return rv ? rv : p11->C_DestroyObject(s, h);
}

/* Counter IVs: each message operation reserves a block of counters in the
 * store, with SQLite and without the module's lock. */
static CK_RV work_counter(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE k)
{
	CK_MECHANISM gcm = {CKM_AES_GCM, NULL, 0};
	uint8_t iv[12] = {0x11, 0x22, 0x33, 0x44}, tag[16], ct[4];
	CK_GCM_MESSAGE_PARAMS p = {iv, 12, 32, CKG_GENERATE_COUNTER, tag, 128};
	CK_ULONG l = sizeof(ct);
	CK_RV rv = p11->C_MessageEncryptInit(s, &gcm, k);
	if (rv)
		return rv;
	rv = p11->C_EncryptMessage(s, &p, sizeof(p), NULL, 0, (CK_BYTE_PTR) "abcd", 4, ct, &l);
	CK_RV rv2 = p11->C_MessageEncryptFinal(s);
	return rv ? rv : rv2;
}

/* Random bytes and local AES: the module's OpenSSL context. */
static CK_RV work_crypto(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE k)
{
	uint8_t rnd[64], out[64];
	CK_RV rv = p11->C_GenerateRandom(s, rnd, sizeof(rnd));
	if (rv)
		return rv;
	CK_ULONG ol = sizeof(out);
	return h_encrypt_probe(s, k, out, &ol);
}

/* A token object key of the session's view (each process finds its own
 * handle for the same token key). */
static CK_OBJECT_HANDLE find_token_key(CK_SESSION_HANDLE s)
{
	return h_find_label(s, "fork-key");
}

static CK_OBJECT_HANDLE mac_key_in(CK_SESSION_HANDLE s)
{
	static const uint8_t v[32] = {1, 2, 3, 4, 5, 6, 7, 8, 9};
	return h_import_key(s, CKK_GENERIC_SECRET, v, sizeof(v));
}

typedef struct worker {
	int id;
	long rounds;
	CK_RV failed; /* the first failure, or CKR_OK */
	const char *what;
} worker;

static void *worker_main(void *arg)
{
	worker *w = arg;
	CK_SESSION_HANDLE s;
	if (p11->C_OpenSession(env.slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s)) {
		w->failed = CKR_GENERAL_ERROR;
		w->what = "C_OpenSession";
		return NULL;
	}
	CK_OBJECT_HANDLE mac = mac_key_in(s);
	while (!__atomic_load_n(&stop_workers, __ATOMIC_RELAXED) && !w->failed) {
		CK_RV rv;
		const char *what;
		switch ((w->id + w->rounds) % 5) {
		case 0:
			what = "hmac", rv = work_hmac(s, mac);
			break;
		case 1:
			what = "keygen", rv = work_keygen(s);
			break;
		case 2:
			what = "store", rv = work_store(s, w->id);
			break;
		case 3:
			what = "counter", rv = work_counter(s, token_key);
			break;
		default:
			what = "crypto", rv = work_crypto(s, token_key);
			break;
		}
		if (rv != CKR_OK) {
			w->failed = rv;
			w->what = what;
		}
		w->rounds++;
	}
	p11->C_CloseSession(s);
	return NULL;
}

/* The child: exit status 0, or the number of the step that failed. */
static int child_main(void)
{
	alarm(CHILD_ALARM_S);
	CK_ULONG n;
	if (p11->C_GetSlotList(CK_TRUE, NULL, &n) != CKR_CRYPTOKI_NOT_INITIALIZED)
		return 10;
	if (reval_threads() != 0)
		return 11; /* the parent's thread does not exist here */
	if (h_initialize_child(&env) != CKR_OK)
		return 12;
	CK_SESSION_HANDLE s;
	if (p11->C_OpenSession(env.slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s) ||
	    p11->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)USER_PIN, strlen(USER_PIN)))
		return 13;
	CK_OBJECT_HANDLE k = find_token_key(s), mac = mac_key_in(s);
	if (work_crypto(s, k))
		return 14;
	if (work_hmac(s, mac))
		return 15;
	if (work_keygen(s))
		return 16;
	if (work_store(s, 1000 + (int)getpid() % 1000))
		return 17;
	if (work_counter(s, k))
		return 18;
	if (!holds_store_lock())
		return 22; /* its store connection shares the parent's locks */
	if (reval_threads() != CHILD_THREADS)
		return 19; /* started by the first use of the token key */
	if (p11->C_Finalize(NULL) != CKR_OK)
		return 20;
	if (reval_threads() != 0)
		return 21;
	return 0;
}

static void *watchdog(void *arg)
{
	(void)arg;
	for (int i = 0; i < PARENT_LIMIT_S * 10 && !__atomic_load_n(&test_done, __ATOMIC_RELAXED);
	     i++)
		usleep(100000);
	if (!__atomic_load_n(&test_done, __ATOMIC_RELAXED)) {
		fprintf(stderr, "test_fork: the parent hung for %d s\n", PARENT_LIMIT_S);
		_exit(3);
	}
	return NULL;
}

static void test_fork_while_threads_work(void **state)
{
	pthread_t dog;
	assert_int_equal(pthread_create(&dog, NULL, watchdog, NULL), 0);
	worker w[WORKERS];
	pthread_t th[WORKERS];
	__atomic_store_n(&stop_workers, 0, __ATOMIC_RELAXED);
	for (int i = 0; i < WORKERS; i++) {
		w[i] = (worker){.id = i};
		assert_int_equal(pthread_create(&th[i], NULL, worker_main, &w[i]), 0);
	}
	int hung = 0, failed = 0, first_fail = 0;
	for (int r = 0; r < FORKS; r++) {
		struct timespec ts = {0, (long)(rand() % 20) * 1000000L};
		nanosleep(&ts, NULL);
		pid_t pid = fork();
		if (pid == 0)
			_exit(child_main());
		assert_true(pid > 0);
		int st;
		assert_int_equal(waitpid(pid, &st, 0), pid);
		if (WIFSIGNALED(st) && WTERMSIG(st) == SIGALRM)
			hung++;
		else if (!WIFEXITED(st) || WEXITSTATUS(st) != 0) {
			failed++;
			if (!first_fail)
				first_fail = WIFEXITED(st) ? WEXITSTATUS(st) : 1000 + WTERMSIG(st);
		}
	}
	__atomic_store_n(&stop_workers, 1, __ATOMIC_RELAXED);
	long rounds = 0;
	for (int i = 0; i < WORKERS; i++) {
		pthread_join(th[i], NULL);
		rounds += w[i].rounds;
		if (w[i].failed)
			fail_msg("worker %d: %s failed with 0x%lx", i, w[i].what,
				 (unsigned long)w[i].failed);
	}
	__atomic_store_n(&test_done, 1, __ATOMIC_RELAXED);
	pthread_join(dog, NULL);
	print_message("%d forks while %d threads worked (%ld calls): %d children hung, "
		      "%d failed (first at step %d)\n",
		      FORKS, WORKERS, rounds, hung, failed, first_fail);
	assert_int_equal(hung, 0);
	assert_int_equal(failed, 0);
	/* The parent goes on working after all of it. */
	CK_SESSION_HANDLE s = h_user_session(&env);
	assert_ok(work_crypto(s, find_token_key(s)));
	assert_int_equal(reval_threads(), 1);
	assert_ok(p11->C_Finalize(NULL));
	assert_int_equal(reval_threads(), 0);
	assert_ok(h_initialize(&env));
}

int main(void)
{
	srand((unsigned)time(NULL));
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_fork_while_threads_work, setup, teardown),
	};
	return cmocka_run_group_tests_name("fork", tests, NULL, NULL);
}
