/* SPDX-License-Identifier: Apache-2.0 */
/*
 * p11kms backup / verify-backup / restore through the real binary
 * ($P11KMS_TOOL), with the token made and read through the exported
 * PKCS#11 API (docs/BACKUP.md):
 *
 * - the scenario on Google Cloud KMS, Azure Key Vault and AWS KMS
 *   (emulator): snapshot 1 under version 1, rotate, reseal (a login),
 *   snapshot 2 under version 2, disable version 1: verify-backup and
 *   restore of snapshot 1 refuse naming version 1 and change nothing;
 *   snapshot 2 restores with every object intact; version 1 enabled
 *   again: snapshot 1 restores. AWS has no per-version state: its
 *   manifests name two key materials, and disabling the key refuses both;
 * - bad input on a local token: truncated, a seal row or an object
 *   record tampered, a lying manifest, a newer schema, another token,
 *   usage errors: each one line on stderr, exit >= 2, nothing changed.
 */
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <jansson.h>

#include "emu.h"
#include "harness.h"

static h_env env;
static CK_SESSION_HANDLE S;
static char out[16384], err[8192];

static void slurp(const char *path, char *buf, size_t n)
{
	buf[0] = 0;
	FILE *f = fopen(path, "r");
	if (!f)
		return;
	size_t got = fread(buf, 1, n - 1, f);
	buf[got] = 0;
	fclose(f);
}

/* Run the tool with these arguments (a shell word list); its stdout and
 * stderr land in out and err; returns its exit status. */
__attribute__((format(printf, 1, 2))) static int tool(const char *fmt, ...)
{
	char args[2048], cmd[3072], o[320], e[320];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(args, sizeof(args), fmt, ap);
	va_end(ap);
	h_env_path(&env, "tool.out", o, sizeof(o));
	h_env_path(&env, "tool.err", e, sizeof(e));
	snprintf(cmd, sizeof(cmd), "\"$P11KMS_TOOL\" %s >%s 2>%s", args, o, e);
	int rc = system(cmd);
	slurp(o, out, sizeof(out));
	slurp(e, err, sizeof(err));
	rc = WIFEXITED(rc) ? WEXITSTATUS(rc) : 255;
	fprintf(stderr, "# p11kms %s -> %d\n%s%s", args, rc, out, err);
	return rc;
}

static void sh(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void sh(const char *fmt, ...)
{
	char cmd[4096];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	if (system(cmd) != 0)
		fail_msg("command failed: %s", cmd);
}

/* A refusal is exactly one line on stderr. */
static void one_line_error(void)
{
	size_t n = strlen(err);
	assert_true(n > 0);
	assert_int_equal(strchr(err, '\n') - err, (long)n - 1);
}

static void path_of(const char *name, char *p, size_t n)
{
	h_env_path(&env, name, p, n);
}

/* The file's bytes, hashed: "nothing changed" is the same digest. */
static unsigned long file_sum(const char *path)
{
	FILE *f = fopen(path, "rb");
	unsigned long h = 1469598103UL;
	int c;
	if (!f)
		return 0;
	while ((c = fgetc(f)) != EOF)
		h = (h ^ (unsigned long)c) * 1099511628211UL;
	fclose(f);
	return h;
}

/* A live store's content (its WAL included), hashed: a checkpoint moves
 * bytes from the WAL into the file without changing what it holds. */
static unsigned long live_sum(const char *path)
{
	char cmd[800], line[64];
	snprintf(cmd, sizeof(cmd),
		 "/usr/bin/python3 -c 'import sqlite3, sys, zlib; c = sqlite3.connect(sys.argv[1]); "
		 "print(zlib.crc32(\"\\n\".join(c.iterdump()).encode()))' %s",
		 path);
	FILE *p = popen(cmd, "r");
	unsigned long v = 0;
	if (p && fgets(line, sizeof(line), p))
		v = strtoul(line, NULL, 10);
	if (p)
		pclose(p);
	assert_true(v != 0);
	return v;
}

static int count_files(const char *dir, const char *contains)
{
	char cmd[600], line[64];
	snprintf(cmd, sizeof(cmd), "ls -a %s | grep -c -- '%s'", dir, contains);
	FILE *p = popen(cmd, "r");
	int n = 0;
	if (p && fgets(line, sizeof(line), p))
		n = (int)strtol(line, NULL, 10);
	if (p)
		pclose(p);
	return n;
}

static void login(void)
{
	assert_ok(h_initialize(&env));
	S = h_user_session(&env);
}

static void logout_finalize(void)
{
	p11->C_Finalize(NULL);
}

/* The three objects the tests follow, and the probe of each key. */
static const char *const LABELS[] = {"bk-one", "bk-two", "bk-three"};
static uint8_t probe[3][64];
static CK_ULONG probelen[3];

static void make_key(int i)
{
	CK_OBJECT_HANDLE k = h_aes_key(S, 32, CK_TRUE, LABELS[i]);
	probelen[i] = sizeof(probe[i]);
	assert_ok(h_encrypt_probe(S, k, probe[i], &probelen[i]));
}

/* Present with the same key bytes (the probe), or absent. */
static void expect_key(int i, bool present)
{
	CK_ATTRIBUTE t[] = {{CKA_LABEL, (void *)LABELS[i], strlen(LABELS[i])}};
	CK_OBJECT_HANDLE h[2];
	CK_ULONG n = 0;
	assert_ok(p11->C_FindObjectsInit(S, t, 1));
	assert_ok(p11->C_FindObjects(S, h, 2, &n));
	assert_ok(p11->C_FindObjectsFinal(S));
	assert_int_equal(n, present ? 1 : 0);
	if (!present)
		return;
	uint8_t got[64];
	CK_ULONG gl = sizeof(got);
	assert_ok(h_encrypt_probe(S, h[0], got, &gl));
	assert_int_equal(gl, probelen[i]);
	assert_memory_equal(got, probe[i], gl);
}

/* --- the scenario, per cloud ------------------------------------------------------ */

#define gcp(field) emu_str("gcp", field)
#define az(field) emu_str("azure", field)
#define aws(field) emu_str("aws", field)

/* One cloud: its key of this test alone (rotated and disabled here),
 * the provider's JSON fields, and its key actions. */
typedef struct cloud {
	const char *name;
	void (*make_key)(char *key, size_t n);
	void (*fields)(FILE *f);
	void (*rotate)(const char *key);
	/* Disable (enabled=false) or enable one version; NULL when the KMS
	 * has no per-version state (AWS): the whole key then. */
	void (*set_version)(const char *key, const char *version, bool enabled);
	void (*set_key)(const char *key, bool enabled);
} cloud;

static void gcp_key(char *key, size_t n)
{
	emu_ctl_line(key, n, "emuctl_gcp.py", "create backup-%d", (int)getpid());
}
static void gcp_fields(FILE *f)
{
	fprintf(f, "\"endpoint\": \"%s\", \"credentials_file\": \"%s\",", gcp("endpoint_url"),
		gcp("service_account_file"));
}
static void gcp_rotate(const char *key)
{
	emu_ctl("emuctl_gcp.py", "rotate %s", key);
}
static void gcp_version(const char *key, const char *version, bool enabled)
{
	(void)key;
	emu_ctl("emuctl_gcp.py", "%s %s", enabled ? "enable" : "disable", version);
}

static void az_key(char *key, size_t n)
{
	snprintf(key, n, "backup-%d", (int)getpid());
	emu_ctl("emuctl_azure.py", "create vault %s RSA 2048", key);
}
static void az_fields(FILE *f)
{
	char secret[400];
	h_env_path(&env, "client-secret", secret, sizeof(secret));
	emu_ctl("emuctl_azure.py", "secret-file %s", secret);
	fprintf(f,
		"\"vault_url\": \"%s\", \"tenant_id\": \"%s\", \"client_id\": \"%s\", "
		"\"client_secret_file\": \"%s\", \"authority_host\": \"%s\",",
		az("vault_url"), az("tenant_id"), az("client_id"), secret, az("authority_host"));
}
static void az_rotate(const char *key)
{
	emu_ctl("emuctl_azure.py", "rotate vault %s", key);
}
static void az_version(const char *key, const char *version, bool enabled)
{
	emu_ctl("emuctl_backup.py", "azure-version %s %s %s", enabled ? "enable" : "disable",
		key, version);
}

static void aws_key(char *key, size_t n)
{
	char id[128];
	snprintf(key, n, "alias/backup-%d", (int)getpid());
	emu_ctl_line(id, sizeof(id), "emuctl.py", "create-key SYMMETRIC_DEFAULT ENCRYPT_DECRYPT %s",
		     key);
}
static void aws_fields(FILE *f)
{
	setenv("AWS_ACCESS_KEY_ID", aws("access_key_id"), 1);
	setenv("AWS_SECRET_ACCESS_KEY", aws("secret_access_key"), 1);
	unsetenv("AWS_SESSION_TOKEN");
	unsetenv("AWS_PROFILE");
	fprintf(f, "\"region\": \"%s\", \"endpoint\": \"%s\",", aws("region"), aws("endpoint_url"));
}
static void aws_rotate(const char *key)
{
	emu_ctl("emuctl.py", "rotate aws %s", key);
}
static void aws_set_key(const char *key, bool enabled)
{
	emu_ctl("emuctl.py", "%s aws %s", enabled ? "enable" : "disable", key);
}

static const cloud GCP = {"gcp", gcp_key, gcp_fields, gcp_rotate, gcp_version, NULL};
static const cloud AZURE = {"azure", az_key, az_fields, az_rotate, az_version, NULL};
static const cloud AWS = {"aws", aws_key, aws_fields, aws_rotate, NULL, aws_set_key};

static int cloud_setup(void **state)
{
	const cloud *c = *state;
	char key[512];
	h_env_new(&env, "required", "");
	unsetenv("GOOGLE_APPLICATION_CREDENTIALS");
	setenv("HOME", env.dir, 1);
	c->make_key(key, sizeof(key));
	FILE *f = fopen(env.config, "w");
	assert_non_null(f);
	fprintf(f,
		"{ \"log\": {\"level\": \"debug\", \"destination\": \"%s\"},\n"
		"  \"providers\": [ { \"name\": \"test\", \"type\": \"%s\", \"ca_file\": \"%s\",\n"
		"    ",
		env.log, c->name, json_string_value(json_object_get(emu_info, "ca_bundle")));
	c->fields(f);
	fprintf(f, "\n    \"store\": \"%s\", \"seal_with\": \"%s\" } ] }\n", env.store, key);
	fclose(f);
	h_env_write(&env, "key", key, strlen(key));
	return 0;
}

static int env_teardown(void **state)
{
	(void)state;
	p11->C_Finalize(NULL);
	h_env_free(&env);
	return 0;
}

static void manifest_version(const char *backup, char *v, size_t n)
{
	emu_ctl_line(v, n, "emuctl_backup.py", "manifest-version %s", backup);
	assert_true(v[0] != 0);
}

/* Snapshot 1 under version 1 -> rotate -> reseal -> snapshot 2 under
 * version 2 -> retire version 1 (AWS: disable the key): snapshot 1 is
 * refused naming version 1, snapshot 2 restores intact (AWS: refused as
 * well, naming its version, until the key is back) -> version 1 back:
 * snapshot 1 restores. */
static void test_versions(void **state)
{
	const cloud *c = *state;
	char key[512] = "", v1[600], v2[600], snap1[320], snap2[320], cfg[400];
	char tmp[340];
	h_env_read(&env, "key", key, sizeof(key) - 1);
	path_of("snap1.db", snap1, sizeof(snap1));
	path_of("snap2.db", snap2, sizeof(snap2));
	snprintf(cfg, sizeof(cfg), "--config %s", env.config);
	setenv("BK_PIN", USER_PIN, 1);

	assert_ok(h_initialize(&env));
	h_init_token(&env);
	S = h_user_session(&env);
	make_key(0);
	make_key(1);
	/* Snapshot 1, of the live store in use (this process has it open). */
	assert_int_equal(tool("backup %s --slot test %s", cfg, snap1), 0);
	struct stat st;
	assert_int_equal(stat(snap1, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	snprintf(tmp, sizeof(tmp), "%s.tmp", snap1);
	assert_int_not_equal(access(tmp, F_OK), 0);
	manifest_version(snap1, v1, sizeof(v1));
	assert_int_equal(tool("verify-backup %s %s", cfg, snap1), 0);
	assert_non_null(strstr(out, v1));

	/* Rotate; the next login reseals under version 2. */
	c->rotate(key);
	assert_ok(p11->C_Logout(S));
	assert_ok(p11->C_Login(S, CKU_USER, (CK_UTF8CHAR_PTR)USER_PIN, strlen(USER_PIN)));
	make_key(2);
	assert_int_equal(tool("backup %s --slot test %s", cfg, snap2), 0);
	manifest_version(snap2, v2, sizeof(v2));
	assert_string_not_equal(v1, v2);
	assert_int_equal(tool("verify-backup %s --pin-env BK_PIN %s", cfg, snap2), 0);
	assert_non_null(strstr(out, v2));
	assert_non_null(strstr(out, "3 of 3 open"));
	/* Snapshot 1 still opens, but needs a version no longer current. */
	assert_int_equal(tool("verify-backup %s %s", cfg, snap1), 1);
	assert_non_null(strstr(out, "not the current version"));

	/* Retire version 1 (AWS: no version to retire; the key goes). */
	if (c->set_version)
		c->set_version(key, v1, false);
	else
		c->set_key(key, false);
	unsigned long s1 = file_sum(snap1), live = live_sum(env.store);
	assert_int_equal(tool("verify-backup %s %s", cfg, snap1), 2);
	assert_non_null(strstr(err, v1));
	one_line_error();
	assert_int_equal(tool("restore %s --force %s --slot test", cfg, snap1), 2);
	assert_non_null(strstr(err, v1));
	one_line_error();
	assert_int_equal(file_sum(snap1), s1);
	assert_int_equal(live_sum(env.store), live);
	assert_int_equal(count_files(env.dir, "replaced"), 0);
	assert_int_equal(count_files(env.dir, "snap1.db-"), 0); /* no journal beside it */
	if (!c->set_version) {
		/* One key, every version with it: snapshot 2 is refused too. */
		assert_int_equal(tool("verify-backup %s %s", cfg, snap2), 2);
		assert_non_null(strstr(err, v2));
		c->set_key(key, true);
	}

	/* Lose an object, then restore snapshot 2: everything is back. */
	CK_OBJECT_HANDLE gone = h_find_label(S, LABELS[0]);
	assert_ok(p11->C_DestroyObject(S, gone));
	logout_finalize();
	assert_int_equal(tool("restore %s %s --slot test", cfg, snap2), 2); /* no --force */
	assert_non_null(strstr(err, "--force"));
	one_line_error();
	assert_int_equal(tool("restore %s --pin-env BK_PIN --force %s --slot test", cfg, snap2), 0);
	assert_int_equal(count_files(env.dir, "token.db.replaced-"), 1);
	login();
	expect_key(0, true);
	expect_key(1, true);
	expect_key(2, true);
	logout_finalize();

	/* Version 1 back: snapshot 1 restores (and the login reseals it). */
	if (c->set_version)
		c->set_version(key, v1, true);
	sleep(1); /* a second .replaced-<time> name */
	assert_int_equal(tool("restore %s --force %s --slot test", cfg, snap1), 0);
	login();
	expect_key(0, true);
	expect_key(1, true);
	expect_key(2, false);
	logout_finalize();
	assert_true(h_log_contains(&env, "token resealed"));
}

static void test_gcp_versions(void **state)
{
	test_versions(state);
}

static void test_azure_versions(void **state)
{
	test_versions(state);
}

static void test_aws_versions(void **state)
{
	test_versions(state);
}

/* --- bad input, on a local token ------------------------------------------------- */

static char cfg[400], good[320], bad[320];

static int local_setup(void **state)
{
	h_env_new(&env, *state ? (const char *)*state : "required", "");
	assert_ok(h_initialize(&env));
	h_init_token(&env);
	S = h_user_session(&env);
	make_key(0);
	make_key(1);
	snprintf(cfg, sizeof(cfg), "--config %s", env.config);
	path_of("good.db", good, sizeof(good));
	path_of("bad.db", bad, sizeof(bad));
	assert_int_equal(tool("backup %s --slot test %s", cfg, good), 0);
	setenv("BK_PIN", USER_PIN, 1);
	return 0;
}

/* bad.db: good.db changed by this Python (c: a sqlite3 connection). */
static void tamper(const char *py)
{
	char script[320], body[2048];
	int n = snprintf(body, sizeof(body),
			 "import json, shutil, sqlite3, sys\n"
			 "shutil.copy(sys.argv[1], sys.argv[2])\n"
			 "c = sqlite3.connect(sys.argv[2])\n"
			 "def flip(table, col, where, at):\n"
			 "    v = bytearray(c.execute('SELECT %%s FROM %%s WHERE %%s' %% (col, table, "
			 "where)).fetchone()[0])\n"
			 "    v[at] ^= 1\n"
			 "    c.execute('UPDATE %%s SET %%s = ? WHERE %%s' %% (table, col, where), "
			 "(bytes(v),))\n"
			 "%s\n"
			 "c.commit()\n",
			 py);
	h_env_write(&env, "tamper.py", body, (size_t)n);
	path_of("tamper.py", script, sizeof(script));
	sh("/usr/bin/python3 %s %s %s", script, good, bad);
}

/* verify-backup and restore --force refuse bad.db with a line matching
 * want, and change neither it nor the live store. */
static void refused(const char *want, const char *pin)
{
	unsigned long b = file_sum(bad), live = live_sum(env.store);
	assert_int_equal(tool("verify-backup %s %s %s", cfg, pin, bad), 2);
	one_line_error();
	assert_non_null(strstr(err, want));
	assert_int_equal(tool("restore %s %s --force %s --slot test", cfg, pin, bad), 2);
	one_line_error();
	assert_non_null(strstr(err, want));
	assert_int_equal(file_sum(bad), b);
	assert_int_equal(live_sum(env.store), live);
	assert_int_equal(count_files(env.dir, "replaced"), 0);
}

static void test_good_local(void **state)
{
	(void)state;
	assert_int_equal(tool("verify-backup %s --pin-env BK_PIN %s", cfg, good), 0);
	assert_non_null(strstr(out, "2 of 2 open"));
	assert_non_null(strstr(out, "manifest: matches"));
	/* A wrong PIN is a refusal, not a pass. */
	setenv("BK_BAD", "9999", 1);
	assert_int_equal(tool("verify-backup %s --pin-env BK_BAD %s", cfg, good), 2);
	one_line_error();
	assert_int_equal(tool("verify-backup %s --pin-env BK_UNSET_VAR %s", cfg, good), 2);
}

/* login=optional: the KMS alone opens the token key, so every record is
 * read without a PIN. */
static void test_optional_reads_records(void **state)
{
	(void)state;
	assert_int_equal(tool("verify-backup %s %s", cfg, good), 0);
	assert_non_null(strstr(out, "login optional"));
	assert_non_null(strstr(out, "2 of 2 open"));
	tamper("flip('objects', 'sec', 'id = (SELECT max(id) FROM objects)', 40)");
	refused("object record", "");
}

static void test_truncated(void **state)
{
	(void)state;
	struct stat st;
	assert_int_equal(stat(good, &st), 0);
	sh("head -c %lld %s > %s", (long long)st.st_size / 2, good, bad);
	refused("truncated or damaged", "");
	sh("head -c 100 %s > %s", good, bad);
	refused(bad, "");
}

static void test_seal_row_flipped(void **state)
{
	(void)state;
	tamper("flip('seals', 'blob', \"role = 'kms'\", 30)");
	refused("does not open", "");
}

static void test_record_flipped(void **state)
{
	(void)state;
	/* The sealed part of one record, one bit: only reading it shows it. */
	tamper("flip('objects', 'sec', 'id = (SELECT min(id) FROM objects)', 30)");
	refused("object record", "--pin-env BK_PIN");
}

static void test_manifest_lies(void **state)
{
	(void)state;
	tamper("m = json.loads(c.execute(\"SELECT value FROM meta WHERE name = "
	       "'backup_manifest'\").fetchone()[0])\n"
	       "m['seals'][0]['key_version'] += 'x'\n"
	       "c.execute(\"UPDATE meta SET value = ? WHERE name = 'backup_manifest'\", "
	       "(json.dumps(m).encode(),))");
	refused("manifest", "");
}

static void test_newer_schema(void **state)
{
	(void)state;
	tamper("c.execute('PRAGMA user_version = 99')");
	refused("newer", "");
}

static void test_another_token(void **state)
{
	(void)state;
	/* The slot's token made again: the backup is another token's now. */
	logout_finalize();
	assert_ok(h_initialize(&env));
	h_init_token(&env);
	S = h_user_session(&env);
	unsigned long live = live_sum(env.store);
	assert_int_equal(tool("restore %s %s --slot test", cfg, good), 2);
	one_line_error();
	assert_non_null(strstr(err, "another token"));
	assert_int_equal(live_sum(env.store), live);
	logout_finalize();
	assert_int_equal(tool("restore %s --force %s --slot test", cfg, good), 0);
	assert_non_null(strstr(out, "another token"));
	login();
	expect_key(0, true);
	expect_key(1, true);
}

/* A writer commits token objects while backups are taken: each backup
 * is one consistent snapshot, every record of it opens. */
static volatile int writer_stop;
static int writer_made, writer_failed;

static void *writer(void *arg)
{
	(void)arg;
	CK_SESSION_HANDLE ws;
	if (p11->C_OpenSession(env.slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &ws) !=
	    CKR_OK) {
		writer_failed++;
		return NULL;
	}
	CK_MECHANISM m = {CKM_AES_KEY_GEN, NULL, 0};
	CK_ULONG len = 32;
	CK_BBOOL t = CK_TRUE;
	while (!writer_stop) {
		char label[32];
		snprintf(label, sizeof(label), "w-%d", writer_made);
		CK_ATTRIBUTE tmpl[] = {{CKA_VALUE_LEN, &len, sizeof(len)},
				       {CKA_TOKEN, &t, sizeof(t)},
				       {CKA_LABEL, label, strlen(label)}};
		CK_OBJECT_HANDLE k;
		if (p11->C_GenerateKey(ws, &m, tmpl, 3, &k) == CKR_OK)
			writer_made++;
		else
			writer_failed++;
	}
	p11->C_CloseSession(ws);
	return NULL;
}

static void test_backup_while_writing(void **state)
{
	(void)state;
	pthread_t th;
	writer_stop = 0;
	writer_made = writer_failed = 0;
	assert_int_equal(pthread_create(&th, NULL, writer, NULL), 0);
	int before = 0;
	for (int i = 0; i < 3; i++) {
		while (writer_made < before + 5 && !writer_failed)
			usleep(1000);
		before = writer_made;
		assert_int_equal(tool("backup %s --slot test %s", cfg, bad), 0);
		assert_int_equal(tool("verify-backup %s --pin-env BK_PIN %s", cfg, bad), 0);
	}
	writer_stop = 1;
	pthread_join(th, NULL);
	assert_int_equal(writer_failed, 0);
	assert_true(writer_made >= 15);
}

/* A consumer keeps its session across the restore: the replacement is a
 * commit like any other process's, and it sees the restored objects. */
static void test_restore_while_open(void **state)
{
	(void)state;
	assert_ok(p11->C_DestroyObject(S, h_find_label(S, LABELS[0])));
	expect_key(0, false);
	assert_int_equal(tool("restore %s --force %s --slot test", cfg, good), 0);
	expect_key(0, true);
	expect_key(1, true);
}

static void test_usage(void **state)
{
	(void)state;
	assert_int_equal(tool("backup %s %s", cfg, bad), 3); /* no --slot */
	assert_int_equal(tool("restore %s %s", cfg, good), 3);
	assert_int_equal(tool("verify-backup %s", cfg), 3);
	assert_int_equal(tool("verify-backup %s --frobnicate %s", cfg, good), 3);
	assert_int_equal(tool("backup %s --slot nosuch %s", cfg, bad), 3);
	assert_int_equal(access(bad, F_OK), -1);
	assert_int_equal(tool("verify-backup --config /nonexistent/p11kms.json %s", good), 3);
	assert_int_equal(tool("help restore"), 0);
	assert_non_null(strstr(out, "usage: p11kms restore"));
}

static int emu_group_setup(void **state)
{
	(void)state;
	h_load();
	return emu_start("backup");
}

static int emu_group_teardown(void **state)
{
	(void)state;
	return emu_stop();
}

int main(void)
{
	if (!getenv("P11KMS_TOOL")) {
		fprintf(stderr, "P11KMS_TOOL is not set (ctest sets it)\n");
		return SKIP_RETURN_CODE;
	}
	const struct CMUnitTest local[] = {
		cmocka_unit_test_setup_teardown(test_good_local, local_setup, env_teardown),
		cmocka_unit_test_setup_teardown(test_truncated, local_setup, env_teardown),
		cmocka_unit_test_setup_teardown(test_seal_row_flipped, local_setup, env_teardown),
		cmocka_unit_test_setup_teardown(test_record_flipped, local_setup, env_teardown),
		cmocka_unit_test_setup_teardown(test_manifest_lies, local_setup, env_teardown),
		cmocka_unit_test_setup_teardown(test_newer_schema, local_setup, env_teardown),
		cmocka_unit_test_setup_teardown(test_another_token, local_setup, env_teardown),
		cmocka_unit_test_setup_teardown(test_restore_while_open, local_setup, env_teardown),
		cmocka_unit_test_setup_teardown(test_backup_while_writing, local_setup, env_teardown),
		cmocka_unit_test_setup_teardown(test_usage, local_setup, env_teardown),
		H_TEST_STATE(test_optional_reads_records, local_setup, env_teardown, "optional"),
	};
	const struct CMUnitTest clouds[] = {
		H_TEST_STATE(test_gcp_versions, cloud_setup, env_teardown, &GCP),
		H_TEST_STATE(test_azure_versions, cloud_setup, env_teardown, &AZURE),
		H_TEST_STATE(test_aws_versions, cloud_setup, env_teardown, &AWS),
	};
	int fails = cmocka_run_group_tests_name("backup_local", local, NULL, NULL);
	fails += cmocka_run_group_tests_name("backup_clouds", clouds, emu_group_setup,
					     emu_group_teardown);
	return fails ? 1 : 0;
}
