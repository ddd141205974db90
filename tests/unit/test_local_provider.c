/* SPDX-License-Identifier: Apache-2.0 */
/*
 * providers/local: key files in both formats (the 32-byte key alone, whose
 * age is its mtime; the 48-byte file p11kms create-key-file writes, which
 * records its creation), the checks on them, and rotation through
 * "previous_key_files": key_file seals and is the primary version, every
 * listed file unseals, picked by the fingerprint the blob names; the
 * standard AES mechanisms try the files in order.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <fcntl.h>
#include <jansson.h>

#include "common/crypto.h"
#include "common/secmem.h"
#include "providers/local/local.h"
#include "providers/provider.h"

extern const provider_ops local_provider_ops;

static char dir[64];

static void path_of(char *out, size_t n, const char *name)
{
	snprintf(out, n, "%s/%s", dir, name);
}

/* A 32-byte key file (the old format) with the given bytes and mtime. */
static void legacy_file(const char *name, uint8_t fill, time_t mtime)
{
	char p[128];
	uint8_t key[LOCAL_KEY_LEN];
	memset(key, fill, sizeof(key));
	path_of(p, sizeof(p), name);
	int fd = open(p, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, key, sizeof(key)), sizeof(key));
	close(fd);
	struct timespec ts[2] = {{mtime, 0}, {mtime, 0}};
	assert_int_equal(utimensat(AT_FDCWD, p, ts, 0), 0);
}

/* A 48-byte key file made as the tool makes it; its version in fp. */
static void new_file(const char *name, uint64_t created, char fp[LOCAL_FP_HEX_LEN + 1])
{
	char p[128], why[256] = "";
	path_of(p, sizeof(p), name);
	if (local_key_file_create(p, created, fp, why, sizeof(why)) != P11K_OK)
		fail_msg("create %s: %s", p, why);
}

/* The provider for a configuration (a printf format). */
static p11k_err make(void **st, char *why, size_t wl, const char *json_fmt, ...)
	__attribute__((format(printf, 4, 5)));
static p11k_err make(void **st, char *why, size_t wl, const char *json_fmt, ...)
{
	char buf[1024];
	va_list ap;
	va_start(ap, json_fmt);
	vsnprintf(buf, sizeof(buf), json_fmt, ap);
	va_end(ap);
	json_error_t je;
	json_t *cfg = json_loads(buf, 0, &je);
	if (!cfg)
		fail_msg("bad test JSON %s: %s", buf, je.text);
	*st = NULL;
	why[0] = 0;
	p11k_err e = local_provider_ops.create(cfg, "test.json", st, why, wl);
	json_decref(cfg);
	return e;
}

static void *must(p11k_err e, void *st, const char *why)
{
	if (e != P11K_OK)
		fail_msg("create: %s", why);
	return st;
}

/* {"key_file": DIR/a} */
static void *make_one(const char *a)
{
	void *st;
	char why[256];
	p11k_err e = make(&st, why, sizeof(why), "{\"key_file\": \"%s/%s\"}", dir, a);
	return must(e, st, why);
}

/* {"key_file": DIR/a, "previous_key_files": [DIR/b]} */
static void *make_two(const char *a, const char *b)
{
	void *st;
	char why[256];
	p11k_err e = make(&st, why, sizeof(why), "{\"key_file\": \"%s/%s\", \"previous_key_files\": [\"%s/%s\"]}", dir,
			  a, dir, b);
	return must(e, st, why);
}

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/p11kms-local-XXXXXX");
	return mkdtemp(dir) ? 0 : -1;
}

static int teardown(void **state)
{
	(void)state;
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static key_info describe(void *st)
{
	key_info ki;
	provider_status ps = {0};
	p11k_err e = local_provider_ops.describe(st, "ignored", &ki, &ps);
	if (e != P11K_OK)
		fail_msg("describe: %s", ps.message);
	return ki;
}

/* --- the two formats ---------------------------------------------------------- */

static void test_new_format_records_creation(void **state)
{
	(void)state;
	char fp[LOCAL_FP_HEX_LEN + 1], p[128];
	new_file("a.key", 1700000000, fp);
	assert_int_equal(strlen(fp), LOCAL_FP_HEX_LEN);
	path_of(p, sizeof(p), "a.key");
	struct stat sb;
	assert_int_equal(stat(p, &sb), 0);
	assert_int_equal(sb.st_size, 48);
	assert_int_equal(sb.st_mode & 07777, 0600);
	/* Never overwritten. */
	char fp2[LOCAL_FP_HEX_LEN + 1], why[256] = "";
	assert_int_not_equal(local_key_file_create(p, 1, fp2, why, sizeof(why)), P11K_OK);
	assert_non_null(strstr(why, "refusing to overwrite"));
	void *st = make_one("a.key");
	key_info ki = describe(st);
	assert_int_equal(ki.state, KEY_STATE_ENABLED);
	assert_string_equal(ki.primary_version, fp);
	assert_string_equal(ki.key_id, p);
	assert_int_equal(ki.version_created_at, 1700000000);
	assert_int_equal(ki.created_at, 1700000000);
	/* Touching the file does not change its recorded age. */
	struct timespec ts[2] = {{1800000000, 0}, {1800000000, 0}};
	assert_int_equal(utimensat(AT_FDCWD, p, ts, 0), 0);
	assert_int_equal(describe(st).version_created_at, 1700000000);
	assert_string_equal(local_provider_ops.default_seal_key(st), p);
	local_provider_ops.destroy(st);
}

static void test_old_format_uses_mtime(void **state)
{
	(void)state;
	legacy_file("old.key", 0x42, 1600000000);
	void *st = make_one("old.key");
	key_info ki = describe(st);
	assert_int_equal(ki.version_created_at, 1600000000);
	assert_int_equal(strlen(ki.primary_version), LOCAL_FP_HEX_LEN);
	local_provider_ops.destroy(st);
}

/* The fingerprint is of the key alone: the same key in both formats is
 * one version. Listing it twice is refused. */
static void test_same_key_both_formats(void **state)
{
	(void)state;
	char fp[LOCAL_FP_HEX_LEN + 1], p[128], q[128];
	new_file("n.key", 1700000000, fp);
	path_of(p, sizeof(p), "n.key");
	path_of(q, sizeof(q), "n32.key");
	uint8_t buf[48];
	int fd = open(p, O_RDONLY);
	assert_int_equal(read(fd, buf, 48), 48);
	close(fd);
	fd = open(q, O_WRONLY | O_CREAT | O_EXCL, 0600);
	assert_int_equal(write(fd, buf + 16, 32), 32);
	close(fd);
	void *st = make_one("n32.key");
	assert_string_equal(describe(st).primary_version, fp);
	local_provider_ops.destroy(st);
	char why[256];
	assert_int_equal(make(&st, why, sizeof(why), "{\"key_file\": \"%s/n.key\", \"previous_key_files\": [\"%s/n32.key\"]}", dir, dir),
			 P11K_ERR_ACCESS_DENIED);
	assert_non_null(strstr(why, "hold the same key"));
	assert_null(st);
}

/* n bytes that start like the 48-byte format but are not one; its path
 * in p. */
static void junk_file(const char *name, size_t n, char *p, size_t pl)
{
	static const uint8_t junk[48] = {'P', '1', 'K', 'K', 2};
	path_of(p, pl, name);
	int fd = open(p, O_WRONLY | O_CREAT | O_EXCL, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, junk, n), (ssize_t)n);
	close(fd);
}

/* Files that are not key files, and configurations that name none or
 * too many, fail creation with a reason. */
static void test_refusals(void **state)
{
	(void)state;
	char p[128], why[256];
	void *st;
	legacy_file("ok.key", 1, 1600000000);
	/* 48 bytes without the header; 40 bytes; too open. */
	junk_file("junk48.key", 48, p, sizeof(p));
	assert_int_equal(make(&st, why, sizeof(why), "{\"key_file\": \"%s/junk48.key\"}", dir),
			 P11K_ERR_ACCESS_DENIED);
	assert_non_null(strstr(why, "bad header"));
	junk_file("short.key", 40, p, sizeof(p));
	assert_int_equal(make(&st, why, sizeof(why), "{\"key_file\": \"%s/short.key\"}", dir),
			 P11K_ERR_ACCESS_DENIED);
	assert_non_null(strstr(why, "holds 40 bytes"));
	junk_file("open.key", 32, p, sizeof(p));
	assert_int_equal(chmod(p, 0640), 0);
	/* Any listed file is checked, not only the first. */
	assert_int_equal(make(&st, why, sizeof(why), "{\"key_file\": \"%s/ok.key\", \"previous_key_files\": [\"%s/open.key\"]}", dir, dir),
			 P11K_ERR_ACCESS_DENIED);
	assert_non_null(strstr(why, "too open"));
	assert_int_equal(make(&st, why, sizeof(why), "{\"key_file\": \"%s/ok.key\", \"previous_key_files\": [\"%s/missing.key\"]}", dir, dir),
			 P11K_ERR_KEY_NOT_FOUND);
	assert_non_null(strstr(why, "missing.key"));
	/* No key_file (the configuration reader asks for it; the provider
	 * too), and too many previous files. An empty list is no list. */
	assert_int_equal(make(&st, why, sizeof(why), "{}"), P11K_ERR_KEY_NOT_FOUND);
	assert_non_null(strstr(why, "\"key_file\" is not a path"));
	void *ok = NULL;
	assert_int_equal(make(&ok, why, sizeof(why),
			      "{\"key_file\": \"%s/ok.key\", \"previous_key_files\": []}", dir),
			 P11K_OK);
	local_provider_ops.destroy(ok);
	char many[2048] = "";
	snprintf(many, sizeof(many), "{\"key_file\": \"%s/ok.key\", \"previous_key_files\": [",
		 dir);
	for (int i = 0; i < 16; i++)
		snprintf(many + strlen(many), sizeof(many) - strlen(many), "%s\"%s/ok.key\"",
			 i ? ", " : "", dir);
	strcat(many, "]}");
	assert_int_equal(make(&st, why, sizeof(why), "%s", many), P11K_ERR_KEY_NOT_FOUND);
	assert_non_null(strstr(why, "16 files: at most 15"));
}

/* --- rotation ---------------------------------------------------------------- */

static p11k_err seal(void *st, uint8_t **blob, size_t *bl, char *kv, size_t kvlen)
{
	provider_status ps = {0};
	return local_provider_ops.encrypt(st, NULL, (const uint8_t *)"token key bytes!", 16,
					  (const uint8_t *)"aad", 3, blob, bl, kv, kvlen, &ps);
}

static p11k_err unseal(void *st, const uint8_t *blob, size_t bl, provider_status *ps)
{
	uint8_t *pt = NULL;
	size_t pl = 0;
	memset(ps, 0, sizeof(*ps));
	p11k_err e = local_provider_ops.decrypt(st, NULL, blob, bl, (const uint8_t *)"aad", 3,
						&pt, &pl, ps);
	if (e == P11K_OK) {
		assert_int_equal(pl, 16);
		assert_memory_equal(pt, "token key bytes!", 16);
	}
	sec_free(pt);
	return e;
}

/* Sealed under A; the configuration becomes [B, A]: A's blob still opens,
 * new blobs are B's, B is the primary version with B's age. Without A in
 * the list, A's blob names a version no file holds. */
static void test_first_seals_all_unseal(void **state)
{
	(void)state;
	char fa[LOCAL_FP_HEX_LEN + 1], fb[LOCAL_FP_HEX_LEN + 1], kv[128];
	new_file("A.key", 1600000000, fa);
	new_file("B.key", 1700000000, fb);
	void *a = make_one("A.key");
	uint8_t *blob_a = NULL, *blob_b = NULL;
	size_t la = 0, lb = 0;
	assert_int_equal(seal(a, &blob_a, &la, kv, sizeof(kv)), P11K_OK);
	assert_string_equal(kv, fa);
	local_provider_ops.destroy(a);

	void *ba = make_two("B.key", "A.key");
	key_info ki = describe(ba);
	assert_string_equal(ki.primary_version, fb);
	assert_int_equal(ki.version_created_at, 1700000000);
	char pb[128];
	path_of(pb, sizeof(pb), "B.key");
	assert_string_equal(local_provider_ops.default_seal_key(ba), pb);
	provider_status ps;
	assert_int_equal(unseal(ba, blob_a, la, &ps), P11K_OK);
	assert_int_equal(seal(ba, &blob_b, &lb, kv, sizeof(kv)), P11K_OK);
	assert_string_equal(kv, fb);
	assert_int_equal(unseal(ba, blob_b, lb, &ps), P11K_OK);
	/* No key version buffer: fine too. */
	uint8_t *blob_c = NULL;
	size_t lc = 0;
	assert_int_equal(seal(ba, &blob_c, &lc, NULL, 0), P11K_OK);
	free(blob_c);
	local_provider_ops.destroy(ba);

	void *b = make_one("B.key");
	assert_int_equal(unseal(b, blob_b, lb, &ps), P11K_OK);
	assert_int_equal(unseal(b, blob_a, la, &ps), P11K_ERR_KEY_NOT_FOUND);
	assert_non_null(strstr(ps.message, fa));
	/* A blob that names a listed key but does not authenticate. */
	blob_b[lb - 1] ^= 1;
	assert_int_equal(unseal(b, blob_b, lb, &ps), P11K_ERR_INVALID_CIPHERTEXT);
	assert_non_null(strstr(ps.message, fb));
	local_provider_ops.destroy(b);

	/* An old file that became unreadable after start: its blob cannot
	 * open, and the reason is the file's. */
	ba = make_two("B.key", "A.key");
	char pa[128];
	path_of(pa, sizeof(pa), "A.key");
	assert_int_equal(chmod(pa, 0644), 0);
	assert_int_equal(unseal(ba, blob_a, la, &ps), P11K_ERR_ACCESS_DENIED);
	assert_non_null(strstr(ps.message, "too open"));
	assert_int_equal(chmod(pa, 0600), 0);
	/* key_file gone: describe says so (a revocation). */
	assert_int_equal(unlink(pb), 0);
	key_info k2;
	provider_status ds = {0};
	assert_int_equal(local_provider_ops.describe(ba, NULL, &k2, &ds), P11K_ERR_KEY_NOT_FOUND);
	local_provider_ops.destroy(ba);
	free(blob_a);
	free(blob_b);
}

/* The standard AES mechanisms name no key: unwrapping tries every file,
 * the first first. */
static void test_remote_crypt_tries_every_file(void **state)
{
	(void)state;
	char fa[LOCAL_FP_HEX_LEN + 1], fb[LOCAL_FP_HEX_LEN + 1];
	new_file("RA.key", 1600000000, fa);
	new_file("RB.key", 1700000000, fb);
	void *a = make_one("RA.key");
	uint8_t in[32];
	memset(in, 0x77, sizeof(in));
	static const remote_alg algs[] = {RALG_AES_KW, RALG_AES_KWP, RALG_AES_GCM};
	for (size_t i = 0; i < 3; i++) {
		provider_status ps = {0};
		remote_req w = {.alg = algs[i], .encrypt = true, .key_op = true, .key_bits = 256,
				.in = in, .inlen = sizeof(in)};
		uint8_t *wrapped = NULL, *back = NULL;
		size_t wl = 0, bl = 0;
		assert_int_equal(local_provider_ops.remote_crypt(a, "k", &w, &wrapped, &wl, &ps),
				 P11K_OK);
		void *ba = make_two("RB.key", "RA.key");
		remote_req u = {.alg = algs[i], .encrypt = false, .key_op = true, .key_bits = 256,
				.in = wrapped, .inlen = wl};
		memcpy(u.iv, w.iv, sizeof(u.iv));
		assert_int_equal(local_provider_ops.remote_crypt(ba, "k", &u, &back, &bl, &ps),
				 P11K_OK);
		assert_int_equal(bl, sizeof(in));
		assert_memory_equal(back, in, bl);
		sec_free(back);
		local_provider_ops.destroy(ba);
		/* B alone cannot. */
		void *b = make_one("RB.key");
		back = NULL;
		assert_int_equal(local_provider_ops.remote_crypt(b, "k", &u, &back, &bl, &ps),
				 P11K_ERR_INVALID_CIPHERTEXT);
		assert_null(back);
		local_provider_ops.destroy(b);
		sec_free(wrapped);
	}
	local_provider_ops.destroy(a);
}

int main(void)
{
	if (!crypto_init())
		return 1;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_new_format_records_creation, setup, teardown),
		cmocka_unit_test_setup_teardown(test_old_format_uses_mtime, setup, teardown),
		cmocka_unit_test_setup_teardown(test_same_key_both_formats, setup, teardown),
		cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
		cmocka_unit_test_setup_teardown(test_first_seals_all_unseal, setup, teardown),
		cmocka_unit_test_setup_teardown(test_remote_crypt_tries_every_file, setup,
						teardown),
	};
	return cmocka_run_group_tests_name("local_provider", tests, NULL, NULL);
}
