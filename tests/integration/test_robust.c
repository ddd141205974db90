/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Robustness through the exported API: threads, fork, several processes on
 * one store, writers killed mid-way, damaged stores, bad configuration and
 * key files, and secrets kept out of logs and off disk.
 */
#include <errno.h>
#include <stdbool.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"

static h_env env;

static int setup(void **state)
{
	h_env_new(&env, "required", "");
	assert_ok(h_initialize(&env));
	h_init_token(&env);
	return 0;
}

static int teardown(void **state)
{
	p11->C_Finalize(NULL);
	h_env_free(&env);
	return 0;
}

static CK_ULONG count_label(CK_SESSION_HANDLE s, const char *label)
{
	CK_ATTRIBUTE q = {CKA_LABEL, (void *)label, strlen(label)};
	CK_OBJECT_HANDLE h[8];
	CK_ULONG n = 0;
	if (p11->C_FindObjectsInit(s, &q, 1) != CKR_OK)
		return (CK_ULONG)-1;
	p11->C_FindObjects(s, h, 8, &n);
	p11->C_FindObjectsFinal(s);
	return n;
}

/* --- threads ------------------------------------------------------------ */

typedef struct worker {
	int id;
	int failures;
	char why[200];
} worker;

static void *work(void *arg)
{
	worker *w = arg;
	CK_SESSION_HANDLE s;
#define WCHECK(expr)                                                           \
	do {                                                                   \
		CK_RV r_ = (expr);                                             \
		if (r_ != CKR_OK) {                                            \
			w->failures++;                                         \
			snprintf(w->why, sizeof(w->why), "%s -> 0x%lx", #expr, \
				 (unsigned long)r_);                           \
			return NULL;                                           \
		}                                                              \
	} while (0)
	WCHECK(p11->C_OpenSession(env.slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL,
				  NULL, &s));
	for (int i = 0; i < 40; i++) {
		CK_MECHANISM km = {CKM_AES_KEY_GEN, NULL, 0};
		CK_ULONG len = 32;
		CK_BBOOL token = (i % 8) == 0;
		char label[32];
		snprintf(label, sizeof(label), "t%d-%d", w->id, i);
		CK_ATTRIBUTE t[] = {{CKA_VALUE_LEN, &len, sizeof(len)},
				    {CKA_TOKEN, &token, 1},
				    {CKA_LABEL, label, strlen(label)}};
		CK_OBJECT_HANDLE k;
		WCHECK(p11->C_GenerateKey(s, &km, t, 3, &k));
		uint8_t iv[12] = {(uint8_t)w->id, (uint8_t)i}, pt[4096], ct[4096 + 16],
			back[4096];
		memset(pt, w->id, sizeof(pt));
		CK_GCM_PARAMS gp = {iv, 12, 96, NULL, 0, 128};
		CK_MECHANISM gm = {CKM_AES_GCM, &gp, sizeof(gp)};
		CK_ULONG ctl = sizeof(ct), bl = sizeof(back);
		WCHECK(p11->C_EncryptInit(s, &gm, k));
		WCHECK(p11->C_Encrypt(s, pt, sizeof(pt), ct, &ctl));
		WCHECK(p11->C_DecryptInit(s, &gm, k));
		WCHECK(p11->C_Decrypt(s, ct, ctl, back, &bl));
		if (bl != sizeof(pt) || memcmp(back, pt, bl) != 0) {
			w->failures++;
			snprintf(w->why, sizeof(w->why), "round trip mismatch");
			return NULL;
		}
		if (token && count_label(s, label) != 1) {
			w->failures++;
			snprintf(w->why, sizeof(w->why), "token key %s not found", label);
			return NULL;
		}
		if (!token)
			WCHECK(p11->C_DestroyObject(s, k));
	}
	WCHECK(p11->C_CloseSession(s));
	return NULL;
}

static void test_threads(void **state)
{
	CK_SESSION_HANDLE keep = h_user_session(&env); /* holds the login */
	enum { N = 6 };
	pthread_t th[N];
	worker w[N];
	for (int i = 0; i < N; i++) {
		w[i] = (worker){.id = i};
		assert_int_equal(pthread_create(&th[i], NULL, work, &w[i]), 0);
	}
	for (int i = 0; i < N; i++) {
		pthread_join(th[i], NULL);
		if (w[i].failures)
			fail_msg("worker %d: %s", i, w[i].why);
	}
	CK_OBJECT_CLASS c = CKO_SECRET_KEY;
	CK_BBOOL t = CK_TRUE;
	CK_ATTRIBUTE q[] = {{CKA_CLASS, &c, sizeof(c)}, {CKA_TOKEN, &t, 1}};
	CK_OBJECT_HANDLE h[100];
	CK_ULONG n;
	assert_ok(p11->C_FindObjectsInit(keep, q, 2));
	assert_ok(p11->C_FindObjects(keep, h, 100, &n));
	assert_ok(p11->C_FindObjectsFinal(keep));
	assert_int_equal(n, N * 5);
	assert_ok(p11->C_CloseSession(keep));
}

/* --- fork ---------------------------------------------------------------- */

static void test_fork(void **state)
{
	CK_SESSION_HANDLE s = h_user_session(&env);
	h_aes_key(s, 32, CK_TRUE, "before-fork");
	pid_t pid = fork();
	if (pid == 0) {
		/* The child starts uninitialized, with no sessions. */
		CK_ULONG n;
		CK_SESSION_INFO si;
		int bad = 0;
		bad |= p11->C_GetSlotList(CK_TRUE, NULL, &n) != CKR_CRYPTOKI_NOT_INITIALIZED;
		bad |= p11->C_GetSessionInfo(s, &si) != CKR_CRYPTOKI_NOT_INITIALIZED;
		/* It may initialize and work on its own. */
		bad |= (h_initialize_child(&env) != CKR_OK) << 1;
		CK_SESSION_HANDLE cs;
		bad |= (p11->C_OpenSession(env.slot, CKF_SERIAL_SESSION | CKF_RW_SESSION,
					   NULL, NULL, &cs) != CKR_OK) << 2;
		bad |= (p11->C_Login(cs, CKU_USER, (CK_UTF8CHAR_PTR)USER_PIN, 4) != CKR_OK)
		       << 3;
		bad |= (count_label(cs, "before-fork") != 1) << 4;
		bad |= (p11->C_Finalize(NULL) != CKR_OK) << 5;
		_exit(bad);
	}
	int st;
	assert_int_equal(waitpid(pid, &st, 0), pid);
	assert_true(WIFEXITED(st));
	if (WEXITSTATUS(st))
		fail_msg("child failed with mask 0x%x", WEXITSTATUS(st));
	/* The parent is unaffected. */
	assert_int_equal(count_label(s, "before-fork"), 1);
	assert_ok(p11->C_CloseSession(s));
}

/* --- two processes on one store --------------------------------------- */

static void writer(const char *prefix, int count, bool ack)
{
	if (h_initialize_child(&env) != CKR_OK)
		_exit(10);
	CK_SESSION_HANDLE s;
	if (p11->C_OpenSession(env.slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL,
			       NULL, &s) != CKR_OK ||
	    p11->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)USER_PIN, 4) != CKR_OK)
		_exit(11);
	for (int i = 0; i < count; i++) {
		CK_OBJECT_CLASS c = CKO_DATA;
		CK_BBOOL t = CK_TRUE;
		char label[32];
		snprintf(label, sizeof(label), "%s-%d", prefix, i);
		CK_ATTRIBUTE tmpl[] = {{CKA_CLASS, &c, sizeof(c)},
				       {CKA_TOKEN, &t, 1},
				       {CKA_LABEL, label, strlen(label)},
				       {CKA_VALUE, label, strlen(label)}};
		CK_OBJECT_HANDLE h;
		if (p11->C_CreateObject(s, tmpl, 4, &h) != CKR_OK)
			_exit(12);
		if (ack) {
			printf("%s\n", label);
			fflush(stdout);
		}
	}
	p11->C_Finalize(NULL);
	_exit(0);
}

static void test_two_processes(void **state)
{
	assert_ok(p11->C_Finalize(NULL));
	pid_t a = fork();
	if (a == 0)
		writer("A", 40, false);
	pid_t b = fork();
	if (b == 0)
		writer("B", 40, false);
	int st;
	assert_int_equal(waitpid(a, &st, 0), a);
	assert_int_equal(WEXITSTATUS(st), 0);
	assert_int_equal(waitpid(b, &st, 0), b);
	assert_int_equal(WEXITSTATUS(st), 0);
	assert_ok(h_initialize(&env));
	CK_SESSION_HANDLE s = h_user_session(&env);
	for (int i = 0; i < 40; i++) {
		char l[16];
		snprintf(l, sizeof(l), "A-%d", i);
		assert_int_equal(count_label(s, l), 1);
		snprintf(l, sizeof(l), "B-%d", i);
		assert_int_equal(count_label(s, l), 1);
	}
	/* An object made by another process while we run becomes visible. */
	pid_t c = fork();
	if (c == 0)
		writer("C", 1, false);
	assert_int_equal(waitpid(c, &st, 0), c);
	assert_int_equal(WEXITSTATUS(st), 0);
	assert_int_equal(count_label(s, "C-0"), 1);
	assert_ok(p11->C_CloseSession(s));
}

/* --- a writer killed mid-way, many times --------------------------------- */

static void test_kill_writer(void **state)
{
	assert_ok(p11->C_Finalize(NULL));
	char done_path[400];
	snprintf(done_path, sizeof(done_path), "%s/acknowledged.txt", env.dir);
	FILE *acks = fopen(done_path, "w");
	assert_non_null(acks);
	srand((unsigned)time(NULL));
	int rounds = 25;
	for (int r = 0; r < rounds; r++) {
		int fds[2];
		assert_int_equal(pipe(fds), 0);
		pid_t pid = fork();
		if (pid == 0) {
			close(fds[0]);
			dup2(fds[1], 1);
			char prefix[16];
			snprintf(prefix, sizeof(prefix), "r%d", r);
			writer(prefix, 1000, true);
		}
		close(fds[1]);
		/* Wait until it is writing (login takes a while on a loaded
		 * machine), then let it run a random while and kill it without
		 * warning, in the middle of whatever it is doing. */
		FILE *in = fdopen(fds[0], "r");
		char line[64];
		if (fgets(line, sizeof(line), in) && line[strlen(line) - 1] == '\n')
			fputs(line, acks);
		struct timespec ts = {0, (long)(rand() % 200) * 1000000L};
		nanosleep(&ts, NULL);
		kill(pid, SIGKILL);
		waitpid(pid, NULL, 0);
		/* Everything it acknowledged (CKR_OK returned) must be intact. */
		while (fgets(line, sizeof(line), in)) {
			if (line[strlen(line) - 1] == '\n') /* a whole line only */
				fputs(line, acks);
		}
		fclose(in);
	}
	fclose(acks);
	assert_ok(h_initialize(&env));
	CK_SESSION_HANDLE s = h_user_session(&env);
	acks = fopen(done_path, "r");
	char line[64];
	int checked = 0;
	while (fgets(line, sizeof(line), acks)) {
		line[strcspn(line, "\n")] = 0;
		CK_ATTRIBUTE q = {CKA_LABEL, line, strlen(line)};
		CK_OBJECT_HANDLE h;
		CK_ULONG n = 0;
		assert_ok(p11->C_FindObjectsInit(s, &q, 1));
		assert_ok(p11->C_FindObjects(s, &h, 1, &n));
		assert_ok(p11->C_FindObjectsFinal(s));
		if (n != 1)
			fail_msg("acknowledged object %s is missing", line);
		char v[64];
		CK_ATTRIBUTE va = {CKA_VALUE, v, sizeof(v)};
		assert_ok(p11->C_GetAttributeValue(s, h, &va, 1));
		assert_int_equal(va.ulValueLen, strlen(line));
		assert_memory_equal(v, line, va.ulValueLen);
		checked++;
	}
	fclose(acks);
	print_message("%d acknowledged objects intact after %d kills\n", checked, rounds);
	assert_true(checked > 0);
	assert_ok(p11->C_CloseSession(s));
}

/* --- damaged stores ------------------------------------------------------ */

static unsigned long file_sum(const char *path)
{
	FILE *f = fopen(path, "rb");
	unsigned long h = 5381;
	int c;
	if (!f)
		return 0;
	while ((c = fgetc(f)) != EOF)
		h = h * 33 + (unsigned)c;
	fclose(f);
	return h;
}

static void checkpoint_store(void)
{
	/* Fold the WAL into the main file so damage to it is damage to all. */
	char cmd[600];
	snprintf(cmd, sizeof(cmd), "sqlite3 '%s' 'PRAGMA wal_checkpoint(TRUNCATE);' >/dev/null",
		 env.store);
	assert_int_equal(system(cmd), 0);
}

static void damaged_store_common(void (*damage)(const char *))
{
	CK_SESSION_HANDLE s = h_user_session(&env);
	h_aes_key(s, 32, CK_TRUE, "precious");
	assert_ok(p11->C_Finalize(NULL));
	checkpoint_store();
	damage(env.store);
	unsigned long before = file_sum(env.store);
	assert_ok(h_initialize(&env)); /* other slots would keep working */
	CK_TOKEN_INFO ti;
	assert_rv(p11->C_GetTokenInfo(env.slot, &ti), CKR_DEVICE_ERROR);
	assert_rv(p11->C_OpenSession(env.slot, CKF_SERIAL_SESSION, NULL, NULL, &s),
		  CKR_DEVICE_ERROR);
	CK_UTF8CHAR label[32];
	memset(label, ' ', 32);
	assert_rv(p11->C_InitToken(env.slot, (CK_UTF8CHAR_PTR)SO_PIN, 8, label),
		  CKR_DEVICE_ERROR);
	assert_true(h_log_contains(&env, "store"));
	assert_true(h_log_contains(&env, env.store));
	/* Nothing was written over the damaged file. */
	assert_int_equal(file_sum(env.store), before);
}

static void garble_header(const char *path)
{
	int fd = open(path, O_WRONLY);
	assert_true(fd >= 0);
	assert_int_equal(pwrite(fd, "garbage garbage!", 16, 0), 16);
	close(fd);
}

static void truncate_half(const char *path)
{
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(truncate(path, st.st_size / 2), 0);
	/* page 1 intact: SQLite opens it, and meets the damage on reading */
}

static void test_corrupt_store(void **state)
{
	damaged_store_common(garble_header);
}

static void test_truncated_store(void **state)
{
	CK_SESSION_HANDLE s = h_user_session(&env);
	/* Enough rows that the tables span several pages. */
	for (int i = 0; i < 200; i++) {
		char l[16];
		snprintf(l, sizeof(l), "fill-%d", i);
		h_aes_key(s, 32, CK_TRUE, l);
	}
	assert_ok(p11->C_Finalize(NULL));
	checkpoint_store();
	truncate_half(env.store);
	unsigned long before = file_sum(env.store);
	assert_ok(h_initialize(&env));
	CK_RV rv = p11->C_OpenSession(env.slot, CKF_SERIAL_SESSION, NULL, NULL, &s);
	if (rv == CKR_OK) {
		/* The damage may sit in pages only a search reaches. */
		rv = p11->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)USER_PIN, 4);
		if (rv == CKR_OK) {
			CK_OBJECT_CLASS c = CKO_SECRET_KEY;
			CK_ATTRIBUTE q = {CKA_CLASS, &c, sizeof(c)};
			rv = p11->C_FindObjectsInit(s, &q, 1);
		}
	}
	assert_rv(rv, CKR_DEVICE_ERROR);
	assert_true(h_log_contains(&env, "store"));
	assert_int_equal(file_sum(env.store), before);
}


/* A public data object's value lives in the record's public part: a
 * forged value, or a private object's flag turned public, is refused
 * once the token key is at hand (the sealed part's tag covers it). */
static void test_forged_public_part(void **state)
{
	CK_SESSION_HANDLE s = h_user_session(&env);
	CK_OBJECT_CLASS c = CKO_DATA;
	CK_BBOOL yes = CK_TRUE, no = CK_FALSE;
	CK_ATTRIBUTE t[] = {{CKA_CLASS, &c, sizeof(c)}, {CKA_TOKEN, &yes, 1},
			    {CKA_PRIVATE, &no, 1}, {CKA_LABEL, "pubdata", 7},
			    {CKA_VALUE, "genuine-value", 13}};
	CK_OBJECT_HANDLE h;
	assert_ok(p11->C_CreateObject(s, t, 5, &h));
	assert_ok(p11->C_Finalize(NULL));
	char cmd[700];
	snprintf(cmd, sizeof(cmd),
		 "sqlite3 '%s' \"UPDATE objects SET pub = CAST(replace(CAST(pub AS TEXT), "
		 "'genuine', 'forgery') AS BLOB) WHERE label = CAST('pubdata' AS BLOB);\"",
		 env.store);
	assert_int_equal(system(cmd), 0);
	assert_ok(h_initialize(&env));
	s = h_user_session(&env);
	CK_ATTRIBUTE q = {CKA_LABEL, "pubdata", 7};
	CK_ULONG n = 9;
	assert_ok(p11->C_FindObjectsInit(s, &q, 1));
	assert_ok(p11->C_FindObjects(s, &h, 1, &n));
	assert_ok(p11->C_FindObjectsFinal(s));
	assert_int_equal(n, 0);
	assert_true(h_log_contains(&env, "does not authenticate"));
}

static void test_tampered_record(void **state)
{
	CK_SESSION_HANDLE s = h_user_session(&env);
	h_aes_key(s, 32, CK_TRUE, "victim");
	h_aes_key(s, 32, CK_TRUE, "bystander");
	assert_ok(p11->C_Finalize(NULL));
	/* Flip a byte of one record's sealed part. */
	char cmd[700];
	snprintf(cmd, sizeof(cmd),
		 "sqlite3 '%s' \"UPDATE objects SET sec = (CASE WHEN substr(sec, 1, 1) "
		 "= X'00' THEN X'01' ELSE X'00' END) || substr(sec, 2) "
		 "WHERE label = CAST('victim' AS BLOB);\"",
		 env.store);
	assert_int_equal(system(cmd), 0);
	assert_ok(h_initialize(&env));
	s = h_user_session(&env);
	CK_ATTRIBUTE q = {CKA_LABEL, "victim", 6};
	CK_OBJECT_HANDLE h;
	CK_ULONG n;
	/* Not served: with the token key at hand every record is checked
	 * whole when it is read, and one that does not authenticate is
	 * skipped with a log line. */
	assert_ok(p11->C_FindObjectsInit(s, &q, 1));
	assert_ok(p11->C_FindObjects(s, &h, 1, &n));
	assert_ok(p11->C_FindObjectsFinal(s));
	assert_int_equal(n, 0);
	uint8_t iv[16] = {0}, ct[32];
	CK_ULONG cl = sizeof(ct);
	CK_MECHANISM m = {CKM_AES_CBC_PAD, iv, 16};
	assert_true(h_log_contains(&env, "does not authenticate"));
	/* The other object is untouched. */
	CK_ATTRIBUTE q2 = {CKA_LABEL, "bystander", 9};
	assert_ok(p11->C_FindObjectsInit(s, &q2, 1));
	assert_ok(p11->C_FindObjects(s, &h, 1, &n));
	assert_ok(p11->C_FindObjectsFinal(s));
	assert_ok(p11->C_EncryptInit(s, &m, h));
	assert_ok(p11->C_Encrypt(s, (CK_BYTE_PTR) "x", 1, ct, &cl));
}

/* --- configuration and key file errors --------------------------------- */

static void write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static int stderr_log_contains(const char *path, const char *s)
{
	FILE *f = fopen(path, "r");
	char line[4096];
	int found = 0;
	while (f && !found && fgets(line, sizeof(line), f))
		found = strstr(line, s) != NULL;
	if (f)
		fclose(f);
	return found;
}

static void test_bad_config(void **state)
{
	h_env e;
	h_env_new(&e, "required", "");
	char logp[400];
	snprintf(logp, sizeof(logp), "%s/early.log", e.dir);
	setenv("P11KMS_LOG_FILE", logp, 1);
	write_text(e.config, "{\n  \"providers\": [\n    { \"name\": \"a\",\n"
			     "      \"type\": \"local\",\n      \"stroe\": \"/x\" }\n  ]\n}\n");
	assert_rv(h_initialize(&e), CKR_FUNCTION_FAILED);
	assert_true(stderr_log_contains(logp, ":5: providers[0].stroe: unknown field"));
	write_text(e.config, "{ \"providers\": [ { \"name\": 7, \"type\": \"local\" } ] }");
	assert_rv(h_initialize(&e), CKR_FUNCTION_FAILED);
	assert_true(stderr_log_contains(logp, "providers[0].name: must be a string"));
	write_text(e.config, "{ \"providers\": [ { \"name\": \"x\", \"type\": \"local\", "
			     "\"store\": \"/tmp/x\" } ] }");
	assert_rv(h_initialize(&e), CKR_FUNCTION_FAILED);
	assert_true(stderr_log_contains(logp, "missing required field \"key_file\""));
	write_text(e.config, "{ \"providers\": [ ");
	assert_rv(h_initialize(&e), CKR_FUNCTION_FAILED);
	assert_true(stderr_log_contains(logp, e.config));
	unsetenv("P11KMS_LOG_FILE");
	h_env_free(&e);
}

/* pReserved must be NULL (PKCS #11 5.4) but carries p11-kit's init string
 * by convention. Anything else is refused with CKR_ARGUMENTS_BAD and a log
 * line, never a crash: a pointer to nothing, a string running into an
 * unmapped page, binary bytes, a string without an end in 4 KiB. */
static void test_init_reserved_garbage(void **state)
{
	h_env e;
	h_env_new(&e, "required", "");
	char logp[400];
	snprintf(logp, sizeof(logp), "%s/early.log", e.dir);
	setenv("P11KMS_LOG_FILE", logp, 1);
	CK_C_INITIALIZE_ARGS args = {.flags = CKF_OS_LOCKING_OK};
	args.pReserved = (void *)1;
	assert_rv(p11->C_Initialize(&args), CKR_ARGUMENTS_BAD);
	assert_true(stderr_log_contains(logp, "pReserved is neither NULL nor a readable"));
	/* Two pages, the second unmapped: "config=..." runs into it. */
	long pg = sysconf(_SC_PAGESIZE);
	char *m = mmap(NULL, 2 * pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(m != MAP_FAILED);
	assert_int_equal(munmap(m + pg, pg), 0);
	memset(m, 'a', pg);
	memcpy(m + pg - 16, "config=/x/y.json", 16); /* no NUL before the hole */
	args.pReserved = m + pg - 16;
	assert_rv(p11->C_Initialize(&args), CKR_ARGUMENTS_BAD);
	args.pReserved = m; /* a page of 'a' and then nothing */
	assert_rv(p11->C_Initialize(&args), CKR_ARGUMENTS_BAD);
	memcpy(m, "\x01\x02\x03", 4);
	args.pReserved = m; /* binary */
	assert_rv(p11->C_Initialize(&args), CKR_ARGUMENTS_BAD);
	munmap(m, pg);
	/* A real init string still works, at the end of a mapping too. */
	char *q = mmap(NULL, pg, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	assert_true(q != MAP_FAILED);
	size_t n = strlen(e.init_str) + 1;
	memcpy(q + pg - n, e.init_str, n);
	args.pReserved = q + pg - n;
	assert_ok(p11->C_Initialize(&args));
	assert_ok(p11->C_Finalize(NULL));
	munmap(q, pg);
	unsetenv("P11KMS_LOG_FILE");
	h_env_free(&e);
}

static void test_key_file_permissions(void **state)
{
	h_env e;
	h_env_new(&e, "required", "");
	char logp[400];
	snprintf(logp, sizeof(logp), "%s/early.log", e.dir);
	setenv("P11KMS_LOG_FILE", logp, 1);
	chmod(e.key_file, 0644);
	assert_rv(h_initialize(&e), CKR_FUNCTION_FAILED);
	assert_true(stderr_log_contains(logp, "are too open"));
	chmod(e.key_file, 0600);
	assert_ok(h_initialize(&e));
	assert_ok(p11->C_Finalize(NULL));
	unsetenv("P11KMS_LOG_FILE");
	h_env_free(&e);
}

/* --- secrets stay out of logs and off disk --------------------------- */

static int file_contains_bytes(const char *path, const uint8_t *needle, size_t n)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return 0;
	static uint8_t buf[8 << 20];
	size_t len = fread(buf, 1, sizeof(buf), f);
	fclose(f);
	for (size_t i = 0; i + n <= len; i++)
		if (memcmp(buf + i, needle, n) == 0)
			return 1;
	return 0;
}

static void test_secrets_not_leaked(void **state)
{
	/* The env logs at trace level: the most verbose. */
	CK_SESSION_HANDLE s;
	assert_ok(p11->C_OpenSession(env.slot, CKF_SERIAL_SESSION | CKF_RW_SESSION,
				     NULL, NULL, &s));
	const char *pin = "SeCrEtPiN-7781";
	assert_ok(p11->C_Login(s, CKU_SO, (CK_UTF8CHAR_PTR)SO_PIN, 8));
	assert_ok(p11->C_InitPIN(s, (CK_UTF8CHAR_PTR)pin, strlen(pin)));
	assert_ok(p11->C_Logout(s));
	assert_rv(p11->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR) "WrOnGpIn-99", 11),
		  CKR_PIN_INCORRECT);
	assert_ok(p11->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)pin, strlen(pin)));
	uint8_t key[32];
	for (int i = 0; i < 32; i++)
		key[i] = (uint8_t)(0xA0 + i);
	CK_OBJECT_CLASS c = CKO_SECRET_KEY;
	CK_KEY_TYPE kt = CKK_AES;
	CK_BBOOL t = CK_TRUE;
	CK_ATTRIBUTE tmpl[] = {{CKA_CLASS, &c, sizeof(c)},
			       {CKA_KEY_TYPE, &kt, sizeof(kt)},
			       {CKA_VALUE, key, 32},
			       {CKA_TOKEN, &t, 1},
			       {CKA_LABEL, "imported", 8}};
	CK_OBJECT_HANDLE h;
	assert_ok(p11->C_CreateObject(s, tmpl, 5, &h));
	assert_ok(p11->C_Finalize(NULL));
	char hex[65];
	for (int i = 0; i < 32; i++)
		snprintf(hex + 2 * i, 3, "%02x", key[i]);
	assert_true(h_log_contains(&env, "logged in")); /* the log is written */
	assert_false(h_log_contains(&env, pin));
	assert_false(h_log_contains(&env, "WrOnGpIn-99"));
	assert_false(h_log_contains(&env, SO_PIN));
	assert_false(h_log_contains(&env, hex));
	assert_false(file_contains_bytes(env.log, key, 8));
	/* On disk: neither the key nor the PIN, in the store or its WAL. */
	char wal[400];
	snprintf(wal, sizeof(wal), "%s-wal", env.store);
	assert_false(file_contains_bytes(env.store, key, 8));
	assert_false(file_contains_bytes(wal, key, 8));
	assert_false(file_contains_bytes(env.store, (const uint8_t *)pin, strlen(pin)));
	assert_false(file_contains_bytes(wal, (const uint8_t *)pin, strlen(pin)));
	/* The store is private to its owner. */
	struct stat st;
	assert_int_equal(stat(env.store, &st), 0);
	assert_int_equal(st.st_mode & 077, 0);
	assert_ok(h_initialize(&env));
}

/* Search [len] bytes of the stopped process pid's memory at addr for key. */
static bool mem_has_key(int memfd, unsigned long lo, unsigned long hi, const uint8_t *key)
{
	static uint8_t buf[1 << 20];
	size_t keep = 0;
	for (unsigned long at = lo; at < hi;) {
		size_t want = sizeof(buf) - keep;
		if (want > hi - at)
			want = hi - at;
		ssize_t n = pread(memfd, buf + keep, want, (off_t)at);
		if (n <= 0)
			return false; /* unreadable (e.g. a guard page): not in a core either */
		at += (unsigned long)n;
		size_t len = keep + (size_t)n;
		for (size_t i = 0; i + 32 <= len; i++)
			if (memcmp(buf + i, key, 32) == 0)
				return true;
		keep = len < 31 ? len : 31;
		memmove(buf, buf + len - keep, keep);
	}
	return false;
}

/* Key bytes live only in pages excluded from core dumps: a process with a
 * key imported and in use holds no copy in any page a core dump would
 * contain (a superset of it: every readable mapping the kernel may
 * write, whatever coredump_filter says). The check does not depend on where this host sends cores
 * (core_pattern piped to systemd-coredump or apport, or none at all): the
 * child stops, and the test reads every mapping the kernel would dump --
 * the readable ones not marked "dd" (MADV_DONTDUMP) in /proc/PID/smaps --
 * through /proc/PID/mem, as the kernel's ELF core writer would. */
static void test_no_key_in_core_dump(void **state)
{
	/* Random, so that no copy of it is in the program's own image. */
	uint8_t key[32];
	assert_int_equal(getrandom(key, sizeof(key), 0), (ssize_t)sizeof(key));
	pid_t pid = fork();
	if (pid == 0) {
		CK_SESSION_HANDLE s;
		if (h_initialize_child(&env) != CKR_OK ||
		    p11->C_OpenSession(env.slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL,
				       NULL, &s) ||
		    p11->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)USER_PIN, 4))
			_exit(3);
		/* The only copy outside the module is this heap buffer, wiped
		 * once the module has taken the key. */
		uint8_t *mine = malloc(32);
		memcpy(mine, key, 32);
		CK_OBJECT_CLASS c = CKO_SECRET_KEY;
		CK_KEY_TYPE kt = CKK_AES;
		CK_BBOOL t = CK_TRUE;
		CK_ATTRIBUTE tmpl[] = {{CKA_CLASS, &c, sizeof(c)},
				       {CKA_KEY_TYPE, &kt, sizeof(kt)},
				       {CKA_VALUE, mine, 32},
				       {CKA_TOKEN, &t, 1}};
		CK_OBJECT_HANDLE h;
		if (p11->C_CreateObject(s, tmpl, 4, &h))
			_exit(4);
		explicit_bzero(mine, 32);
		explicit_bzero(key, sizeof(key));
		free(mine);
		/* Use it, so the module holds it (and a key schedule) now. */
		uint8_t iv[16] = {0}, ct[32];
		CK_ULONG cl = sizeof(ct);
		CK_MECHANISM m = {CKM_AES_CBC_PAD, iv, 16};
		if (p11->C_EncryptInit(s, &m, h) || p11->C_Encrypt(s, (CK_BYTE_PTR) "x", 1, ct, &cl))
			_exit(5);
		raise(SIGSTOP);
		_exit(0);
	}
	int st;
	assert_int_equal(waitpid(pid, &st, WUNTRACED), pid);
	if (!WIFSTOPPED(st)) {
		print_message("the child ended before stopping (status %#x)\n", st);
		fail();
	}
	char path[64];
	snprintf(path, sizeof(path), "/proc/%d/smaps", (int)pid);
	FILE *maps = fopen(path, "r");
	assert_non_null(maps);
	snprintf(path, sizeof(path), "/proc/%d/mem", (int)pid);
	int memfd = open(path, O_RDONLY);
	assert_true(memfd >= 0);
	char line[512];
	unsigned long lo = 0, hi = 0;
	char perms[8] = "";
	int found = 0, dumped = 0, excluded = 0;
	while (fgets(line, sizeof(line), maps)) {
		unsigned long a, b;
		char p[8];
		if (sscanf(line, "%lx-%lx %7s", &a, &b, p) == 3 && strchr(line, ' ')) {
			lo = a, hi = b;
			memcpy(perms, p, sizeof(perms));
			continue;
		}
		if (strncmp(line, "VmFlags:", 8) != 0)
			continue;
		/* the last field of a mapping's block: decide on it now */
		bool dd = strstr(line, " dd") != NULL;
		if (perms[0] != 'r' || dd) {
			excluded += dd;
			continue;
		}
		dumped++;
		if (mem_has_key(memfd, lo, hi, key)) {
			print_message("the key is in %lx-%lx (%s), which a core dump holds\n", lo,
				      hi, perms);
			found++;
		}
	}
	fclose(maps);
	close(memfd);
	kill(pid, SIGKILL);
	waitpid(pid, &st, 0);
	assert_true(dumped > 0);
	/* secmem's pages are there and marked: the check saw them excluded */
	assert_true(excluded > 0);
	assert_int_equal(found, 0);
}

int main(void)
{
	h_load();
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_threads, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fork, setup, teardown),
		cmocka_unit_test_setup_teardown(test_two_processes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_kill_writer, setup, teardown),
		cmocka_unit_test_setup_teardown(test_corrupt_store, setup, teardown),
		cmocka_unit_test_setup_teardown(test_truncated_store, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tampered_record, setup, teardown),
		cmocka_unit_test_setup_teardown(test_forged_public_part, setup, teardown),
		cmocka_unit_test(test_bad_config),
		cmocka_unit_test(test_init_reserved_garbage),
		cmocka_unit_test(test_key_file_permissions),
		cmocka_unit_test_setup_teardown(test_secrets_not_leaked, setup, teardown),
		cmocka_unit_test_setup_teardown(test_no_key_in_core_dump, setup, teardown),
	};
	return cmocka_run_group_tests_name("robust", tests, NULL, NULL);
}
