/* SPDX-License-Identifier: Apache-2.0 */
/*
 * slots/store.c: create and open, the schema version, meta, seals,
 * objects (insert, get, update, delete, find; every template shape of
 * C_FindObjects answered through an index, by EXPLAIN QUERY PLAN),
 * transactions, and the files it must refuse without touching: a newer
 * schema, a file that is not a database.
 */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "common/log.h"
#include "slots/records.h"
#include "slots/store.h"

static char tmpdir[] = "/tmp/p11kms-test-store-XXXXXX";
static int counter;

static int group_setup(void **state)
{
	/* Refusals log errors by design; keep the test output readable. */
	log_configure(-1, "/dev/null");
	return mkdtemp(tmpdir) ? 0 : -1;
}

static int group_teardown(void **state)
{
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	log_reset();
	return system(cmd) == 0 ? 0 : -1;
}

/* A fresh path for each test, in a sub-folder that does not exist yet. */
static const char *new_path(char *buf, size_t n)
{
	snprintf(buf, n, "%s/t%d/sub/store.db", tmpdir, ++counter);
	return buf;
}

static store_t *open_new(char *path, size_t n)
{
	store_t *s = NULL;
	assert_int_equal(store_open(new_path(path, n), true, &s), P11K_OK);
	assert_non_null(s);
	return s;
}

static int pragma_int(const char *path, const char *sql)
{
	sqlite3 *db;
	sqlite3_stmt *st;
	int v = -1;
	assert_int_equal(sqlite3_open_v2(path, &db, SQLITE_OPEN_READWRITE, NULL),
			 SQLITE_OK);
	assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
	if (sqlite3_step(st) == SQLITE_ROW)
		v = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	sqlite3_close(db);
	return v;
}

/* A fresh store, closed, with sql run on it by a plain connection. */
static void new_store_with(char *path, size_t n, const char *sql)
{
	store_t *s = open_new(path, n);
	store_close(s);
	sqlite3 *db;
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
}

static void test_create_open(void **state)
{
	char path[512];
	store_t *s = NULL;
	/* Without create, a missing store is an error and nothing appears. */
	new_path(path, sizeof(path));
	assert_false(store_exists(path));
	assert_int_equal(store_open(path, false, &s), P11K_ERR_STORE);
	assert_null(s);
	assert_false(store_exists(path));
	/* With create: folders made, file owner-only, schema current. */
	assert_int_equal(store_open(path, true, &s), P11K_OK);
	assert_true(store_exists(path));
	assert_string_equal(store_path(s), path);
	struct stat st;
	assert_int_equal(stat(path, &st), 0);
	assert_int_equal(st.st_mode & 0777, 0600);
	store_close(s);
	assert_int_equal(pragma_int(path, "PRAGMA user_version"), STORE_SCHEMA_VERSION);
	/* Reopen (no upgrade needed), with and without create. */
	assert_int_equal(store_open(path, false, &s), P11K_OK);
	store_close(s);
	assert_int_equal(store_open(path, true, &s), P11K_OK);
	store_close(s);
	store_close(NULL);
}

static void test_meta(void **state)
{
	char path[512];
	store_t *s = open_new(path, sizeof(path));
	uint8_t *v = (uint8_t *)"x";
	size_t n = 99;
	bool found = true;
	assert_int_equal(store_meta_get(s, "label", &v, &n, &found), P11K_OK);
	assert_false(found);
	assert_null(v);
	assert_int_equal(n, 0);
	assert_int_equal(store_meta_put(s, "label", "dev token", 9), P11K_OK);
	assert_int_equal(store_meta_get(s, "label", &v, &n, &found), P11K_OK);
	assert_true(found);
	assert_int_equal(n, 9);
	assert_memory_equal(v, "dev token", 9);
	free(v);
	/* Replace; binary values; empty values. */
	assert_int_equal(store_meta_put(s, "label", "\0\1\2", 3), P11K_OK);
	assert_int_equal(store_meta_get(s, "label", &v, &n, &found), P11K_OK);
	assert_int_equal(n, 3);
	assert_memory_equal(v, "\0\1\2", 3);
	free(v);
	assert_int_equal(store_meta_put(s, "empty", NULL, 0), P11K_OK);
	assert_int_equal(store_meta_get(s, "empty", &v, &n, &found), P11K_OK);
	assert_true(found);
	assert_int_equal(n, 0);
	free(v);
	assert_int_equal(store_meta_del(s, "label"), P11K_OK);
	assert_int_equal(store_meta_get(s, "label", &v, &n, &found), P11K_OK);
	assert_false(found);
	assert_int_equal(store_meta_del(s, "label"), P11K_OK); /* idempotent */
	/* Values persist across a reopen. */
	store_close(s);
	assert_int_equal(store_open(path, false, &s), P11K_OK);
	assert_int_equal(store_meta_get(s, "empty", &v, &n, &found), P11K_OK);
	assert_true(found);
	free(v);
	store_close(s);
}

static void test_seals(void **state)
{
	char path[512];
	store_t *s = open_new(path, sizeof(path));
	seal_rec *r = (seal_rec *)0x1;
	size_t n = 99;
	assert_int_equal(store_seals_load(s, &r, &n), P11K_OK);
	assert_int_equal(n, 0);
	seal_rec a = {.provider = "dev", .key_id = "/k/dev.key", .key_version = "v1",
		      .role = "token", .blob = (uint8_t *)"\x01\x00\x02", .bloblen = 3,
		      .created = 1700000000};
	seal_rec b = a;
	b.key_version = "v2";
	b.role = "backup";
	b.created = 1800000000;
	assert_int_equal(store_seal_add(s, &a), P11K_OK);
	assert_int_equal(store_seal_add(s, &b), P11K_OK);
	assert_int_equal(store_seals_load(s, &r, &n), P11K_OK);
	assert_int_equal(n, 2);
	assert_string_equal(r[0].provider, "dev");
	assert_string_equal(r[0].key_id, "/k/dev.key");
	assert_string_equal(r[0].key_version, "v1");
	assert_string_equal(r[0].role, "token");
	assert_int_equal(r[0].bloblen, 3);
	assert_memory_equal(r[0].blob, "\x01\x00\x02", 3);
	assert_int_equal(r[0].created, 1700000000);
	assert_string_equal(r[1].key_version, "v2");
	assert_string_equal(r[1].role, "backup");
	assert_int_equal(r[1].created, 1800000000);
	assert_true(r[0].id < r[1].id);
	seal_recs_free(r, n);
	assert_int_equal(store_seals_clear(s), P11K_OK);
	assert_int_equal(store_seals_load(s, &r, &n), P11K_OK);
	assert_int_equal(n, 0);
	seal_recs_free(r, n);
	store_close(s);
}

static obj_rec rec(uint8_t uidbyte, uint64_t cls, int priv, const char *label,
		   const char *ckaid, const char *pub, const char *sec)
{
	obj_rec r = {0};
	memset(r.uid, uidbyte, UID_LEN);
	r.cls = cls;
	r.priv = priv;
	r.label = (const uint8_t *)label;
	r.labellen = label ? strlen(label) : 0;
	r.ckaid = (const uint8_t *)ckaid;
	r.ckaidlen = ckaid ? strlen(ckaid) : 0;
	r.pub = (uint8_t *)pub;
	r.publen = strlen(pub);
	r.sec = (uint8_t *)sec;
	r.seclen = strlen(sec);
	return r;
}

typedef struct seen {
	int64_t rows[16];
	size_t n, stop_after;
} seen_t;

static bool collect(void *arg, const obj_rec *r)
{
	seen_t *s = arg;
	assert_true(s->n < 16);
	assert_non_null(r->pub);
	assert_true(r->sec || r->seclen == 0); /* a search loads sec too: records are checked whole */
	s->rows[s->n++] = r->rowid;
	return !s->stop_after || s->n < s->stop_after;
}

static size_t find(store_t *s, const obj_filter *f, seen_t *out)
{
	memset(out, 0, sizeof(*out));
	assert_int_equal(store_obj_find(s, f, collect, out), P11K_OK);
	return out->n;
}

static void test_objects(void **state)
{
	char path[512];
	store_t *s = open_new(path, sizeof(path));
	obj_rec a = rec(1, CKO_SECRET_KEY, 1, "k1", "id1", "pubA", "secA");
	obj_rec b = rec(2, CKO_SECRET_KEY, 0, "k2", NULL, "pubB", "secB");
	obj_rec c = rec(3, CKO_DATA, 0, "k1", NULL, "pubC", "");
	assert_int_equal(store_obj_insert(s, &a), P11K_OK);
	assert_int_equal(store_obj_insert(s, &b), P11K_OK);
	assert_int_equal(store_obj_insert(s, &c), P11K_OK);
	assert_true(a.rowid > 0 && b.rowid > a.rowid && c.rowid > b.rowid);
	uint64_t count = 0;
	assert_int_equal(store_obj_count(s, &count), P11K_OK);
	assert_int_equal(count, 3);
	/* A uid is unique. */
	obj_rec dup = rec(1, CKO_DATA, 0, NULL, NULL, "p", "s");
	assert_int_equal(store_obj_insert(s, &dup), P11K_ERR_STORE);

	obj_rec got;
	bool found = false;
	assert_int_equal(store_obj_get(s, a.rowid, &got, &found), P11K_OK);
	assert_true(found);
	assert_int_equal(got.rowid, a.rowid);
	assert_memory_equal(got.uid, a.uid, UID_LEN);
	assert_int_equal(got.cls, CKO_SECRET_KEY);
	assert_int_equal(got.priv, 1);
	assert_int_equal(got.publen, 4);
	assert_memory_equal(got.pub, "pubA", 4);
	assert_int_equal(got.seclen, 4);
	assert_memory_equal(got.sec, "secA", 4);
	obj_rec_free(&got);
	assert_int_equal(store_obj_get(s, c.rowid, &got, &found), P11K_OK);
	assert_int_equal(got.seclen, 0);
	obj_rec_free(&got);
	assert_int_equal(store_obj_get(s, 9999, &got, &found), P11K_OK);
	assert_false(found);

	/* Find: everything, by label, by class, by CKA_ID, public only. */
	seen_t w;
	obj_filter all = {0};
	assert_int_equal(find(s, &all, &w), 3);
	assert_int_equal(w.rows[0], a.rowid);
	obj_filter by_label = {.label = (const uint8_t *)"k1", .labellen = 2};
	assert_int_equal(find(s, &by_label, &w), 2);
	assert_int_equal(w.rows[0], a.rowid);
	assert_int_equal(w.rows[1], c.rowid);
	uint64_t key = CKO_SECRET_KEY, data = CKO_DATA;
	obj_filter by_class = {.cls = &key};
	assert_int_equal(find(s, &by_class, &w), 2);
	obj_filter label_class = {.label = (const uint8_t *)"k1", .labellen = 2,
				  .cls = &data};
	assert_int_equal(find(s, &label_class, &w), 1);
	assert_int_equal(w.rows[0], c.rowid);
	obj_filter by_id = {.ckaid = (const uint8_t *)"id1", .ckaidlen = 3};
	assert_int_equal(find(s, &by_id, &w), 1);
	obj_filter pub_only = {.public_only = true};
	assert_int_equal(find(s, &pub_only, &w), 2);
	obj_filter none = {.label = (const uint8_t *)"zz", .labellen = 2};
	assert_int_equal(find(s, &none, &w), 0);
	/* An empty label is a value, not "any". */
	obj_filter empty = {.label = (const uint8_t *)"", .labellen = 0};
	assert_int_equal(find(s, &empty, &w), 0);
	/* The callback stops the walk. */
	memset(&w, 0, sizeof(w));
	w.stop_after = 1;
	assert_int_equal(store_obj_find(s, &all, collect, &w), P11K_OK);
	assert_int_equal(w.n, 1);

	/* Update. */
	obj_rec a2 = rec(1, CKO_SECRET_KEY, 0, "renamed", NULL, "pubA2", "secA2");
	a2.rowid = a.rowid;
	assert_int_equal(store_obj_update(s, &a2), P11K_OK);
	assert_int_equal(store_obj_get(s, a.rowid, &got, &found), P11K_OK);
	assert_int_equal(got.priv, 0);
	assert_int_equal(got.publen, 5);
	assert_memory_equal(got.pub, "pubA2", 5);
	assert_memory_equal(got.sec, "secA2", 5);
	obj_rec_free(&got);
	assert_int_equal(find(s, &by_label, &w), 1);
	obj_filter renamed = {.label = (const uint8_t *)"renamed", .labellen = 7};
	assert_int_equal(find(s, &renamed, &w), 1);
	a2.rowid = 9999;
	assert_int_equal(store_obj_update(s, &a2), P11K_ERR_STORE);

	/* Delete. */
	assert_int_equal(store_obj_delete(s, b.rowid, &found), P11K_OK);
	assert_true(found);
	assert_int_equal(store_obj_delete(s, b.rowid, &found), P11K_OK);
	assert_false(found);
	assert_int_equal(store_obj_get(s, b.rowid, &got, &found), P11K_OK);
	assert_false(found);
	assert_int_equal(store_obj_count(s, &count), P11K_OK);
	assert_int_equal(count, 2);
	assert_int_equal(store_obj_delete_all(s), P11K_OK);
	assert_int_equal(store_obj_count(s, &count), P11K_OK);
	assert_int_equal(count, 0);
	store_close(s);
}

/* The six attributes, bit i of a mask taking attribute i. */
static CK_OBJECT_CLASS cls_v = CKO_SECRET_KEY;
static CK_KEY_TYPE kt_v = CKK_AES;
static CK_BBOOL true_v = CK_TRUE;

static CK_ULONG tmpl_of(unsigned mask, CK_ATTRIBUTE *t)
{
	const CK_ATTRIBUTE all[] = {
		{CKA_CLASS, &cls_v, sizeof(cls_v)},   {CKA_KEY_TYPE, &kt_v, sizeof(kt_v)},
		{CKA_LABEL, "some label", 10},	      {CKA_ID, "an id", 5},
		{CKA_TOKEN, &true_v, sizeof(true_v)}, {CKA_PRIVATE, &true_v, sizeof(true_v)},
	};
	CK_ULONG n = 0;
	for (unsigned i = 0; i < 6; i++)
		if (mask & (1u << i))
			t[n++] = all[i];
	return n;
}

static void test_every_shape_uses_an_index(void **state)
{
	char path[512];
	store_t *s = open_new(path, sizeof(path));
	/* Some rows: the plan must not depend on an empty table. */
	for (uint8_t i = 1; i <= 20; i++) {
		char l[8], id[8];
		snprintf(l, sizeof(l), "l%u", i);
		snprintf(id, sizeof(id), "i%u", i);
		obj_rec r = rec(i, i % 3 ? CKO_SECRET_KEY : CKO_DATA, i % 2, l, id, "pub", "sec");
		assert_int_equal(store_obj_insert(s, &r), P11K_OK);
	}
	unsigned checked = 0;
	for (unsigned mask = 1; mask < 64; mask++) {
		for (int priv = 0; priv < 2; priv++) {
			CK_ATTRIBUTE t[6];
			CK_ULONG n = tmpl_of(mask, t);
			obj_filter f;
			uint64_t cls;
			bool secret;
			bool any = token_find_filter(t, n, priv, &f, &cls, &secret);
			assert_false(secret);
			if (!any) {
				/* CKA_PRIVATE TRUE with private objects out of sight. */
				assert_true((mask & 32) && !priv);
				continue;
			}
			char plan[512];
			assert_int_equal(store_obj_find_plan(s, &f, plan, sizeof(plan)), P11K_OK);
			/* A template of CKA_TOKEN TRUE alone, with private
			 * objects visible, selects every token object: a walk of
			 * the table is the answer itself. */
			if (mask == 16 && priv) {
				assert_non_null(strstr(plan, "SCAN"));
				continue;
			}
			if (strstr(plan, "SCAN") || !strstr(plan, "USING") ||
			    !strstr(plan, "INDEX"))
				fail_msg("template mask 0x%x (private %s): plan \"%s\"", mask,
					 priv ? "visible" : "hidden", plan);
			/* The most selective attribute leads. */
			const char *want = (mask & 4)		? "objects_label"
					   : (mask & 8)		? "objects_ckaid"
					   : (mask & 3)		? "objects_class"
								: "objects_private";
			if (!strstr(plan, want))
				fail_msg("template mask 0x%x: plan \"%s\" does not use %s", mask,
					 plan, want);
			checked++;
		}
	}
	/* 63 masks x 2, less CKA_TOKEN alone (visible) and the 32 masks
	 * with CKA_PRIVATE TRUE while private objects are hidden. */
	assert_int_equal(checked, 126 - 1 - 32);
	store_close(s);
}

static void test_session_only_templates(void **state)
{
	CK_BBOOL f_v = CK_FALSE;
	CK_ATTRIBUTE t[] = {{CKA_LABEL, "x", 1}, {CKA_TOKEN, &f_v, sizeof(f_v)}};
	obj_filter f;
	uint64_t cls;
	bool secret;
	assert_false(token_find_filter(t, 2, true, &f, &cls, &secret));
	CK_ATTRIBUTE v[] = {{CKA_VALUE, "k", 1}};
	assert_true(token_find_filter(v, 1, true, &f, &cls, &secret));
	assert_true(secret);
}

/* A store without the index on private (an older module's, or restored
 * from its backup) gets it at open; the plans then use it. */
static void test_missing_index_added(void **state)
{
	char path[512];
	store_t *s;
	new_store_with(path, sizeof(path), "DROP INDEX objects_private");
	assert_int_equal(pragma_int(path, "SELECT count(*) FROM sqlite_master WHERE "
					  "name='objects_private'"),
			 0);
	assert_int_equal(store_open(path, false, &s), P11K_OK);
	assert_int_equal(pragma_int(path, "SELECT count(*) FROM sqlite_master WHERE "
					  "name='objects_private'"),
			 1);
	assert_int_equal(pragma_int(path, "PRAGMA user_version"), STORE_SCHEMA_VERSION);
	char plan[256];
	obj_filter priv = {.private_only = true};
	assert_int_equal(store_obj_find_plan(s, &priv, plan, sizeof(plan)), P11K_OK);
	assert_non_null(strstr(plan, "objects_private"));
	store_close(s);
}

/* data_version answers from SQLite's WAL-index header while it is
 * unchanged: every commit of another connection still shows, at once,
 * and this connection's own commits do not (PRAGMA data_version's rule). */
static void test_data_version_shortcut(void **state)
{
	char path[512];
	store_t *a = open_new(path, sizeof(path)), *b = NULL;
	assert_int_equal(store_open(path, false, &b), P11K_OK);
	uint64_t v = store_data_version(a);
	for (int i = 0; i < 3; i++)
		assert_int_equal(store_data_version(a), v);
	for (uint8_t i = 1; i <= 5; i++) {
		obj_rec r = rec(i, CKO_DATA, 0, "x", NULL, "p", "s");
		assert_int_equal(store_obj_insert(b, &r), P11K_OK);
		uint64_t w = store_data_version(a);
		assert_true(w != v);
		assert_int_equal(store_data_version(a), w);
		v = w;
		/* a's own write: not a change for a */
		obj_rec own = rec((uint8_t)(100 + i), CKO_DATA, 0, "y", NULL, "p", "s");
		assert_int_equal(store_obj_insert(a, &own), P11K_OK);
		assert_int_equal(store_data_version(a), v);
	}
	/* A plain SQLite connection (another program) writing. */
	sqlite3 *db;
	assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "DELETE FROM objects WHERE label=X'78'", NULL, NULL,
				      NULL),
			 SQLITE_OK);
	assert_true(store_data_version(a) != v);
	v = store_data_version(a);
	/* A checkpoint that restarts the WAL, then a write into it again. */
	assert_int_equal(sqlite3_exec(db, "PRAGMA wal_checkpoint(TRUNCATE)", NULL, NULL, NULL),
			 SQLITE_OK);
	assert_int_equal(sqlite3_exec(db, "DELETE FROM objects", NULL, NULL, NULL), SQLITE_OK);
	assert_true(store_data_version(a) != v);
	sqlite3_close(db);
	store_close(b);
	store_close(a);
}

/* A search of one shape from inside another walk. */
typedef struct nest {
	seen_t outer;
	store_t *s;
	const obj_filter *inner;
	size_t inner_n;
} nest_t;

static bool nested(void *arg, const obj_rec *r)
{
	nest_t *w = arg;
	seen_t in;
	w->inner_n += find(w->s, w->inner, &in);
	return collect(&w->outer, r);
}

/* The filter terms a template adds (token_find_filter): key classes,
 * private only, several terms with one index; rows in id order. */
static void test_filter_terms(void **state)
{
	char path[512];
	store_t *s = open_new(path, sizeof(path));
	/* a private key, a public key, a public and a private data object */
	obj_rec r[] = {
		rec(1, CKO_SECRET_KEY, 1, "k", "1", "p", "s"),
		rec(2, CKO_SECRET_KEY, 0, "k", "2", "p", "s"),
		rec(3, CKO_DATA, 0, "k", NULL, "p", "s"),
		rec(4, CKO_DATA, 1, "d", NULL, "p", "s"),
	};
	for (size_t i = 0; i < 4; i++)
		assert_int_equal(store_obj_insert(s, &r[i]), P11K_OK);
	seen_t w;
	obj_filter keys = {.keys_only = true};
	assert_int_equal(find(s, &keys, &w), 2);
	assert_true(w.rows[0] == r[0].rowid && w.rows[1] == r[1].rowid);
	obj_filter priv = {.private_only = true};
	assert_int_equal(find(s, &priv, &w), 2);
	obj_filter pub = {.public_only = true};
	assert_int_equal(find(s, &pub, &w), 2);
	uint64_t data = CKO_DATA;
	/* The class given wins over keys_only (obj_match checks the rest). */
	obj_filter data_keys = {.cls = &data, .keys_only = true};
	assert_int_equal(find(s, &data_keys, &w), 2);
	obj_filter label_priv = {.label = (const uint8_t *)"k", .labellen = 1,
				 .private_only = true};
	assert_int_equal(find(s, &label_priv, &w), 1);
	obj_filter label_keys_pub = {.label = (const uint8_t *)"k", .labellen = 1,
				     .keys_only = true, .public_only = true};
	assert_int_equal(find(s, &label_keys_pub, &w), 1);
	assert_int_equal(w.rows[0], r[1].rowid);

	/* From inside a walk, a search of the same shape (its statement is
	 * in use) and of another: both complete, and the shape's statement
	 * serves again after. */
	obj_filter by_label = {.label = (const uint8_t *)"k", .labellen = 1};
	nest_t n = {.s = s, .inner = &by_label};
	assert_int_equal(store_obj_find(s, &by_label, nested, &n), P11K_OK);
	assert_int_equal(n.outer.n, 3);
	assert_int_equal(n.inner_n, 9);
	n = (nest_t){.s = s, .inner = &keys};
	assert_int_equal(store_obj_find(s, &by_label, nested, &n), P11K_OK);
	assert_int_equal(n.outer.n, 3);
	assert_int_equal(n.inner_n, 6);
	assert_int_equal(find(s, &by_label, &w), 3);
	store_close(s);
}

static void test_transactions(void **state)
{
	char path[512];
	store_t *s = open_new(path, sizeof(path));
	store_t *other = NULL;
	assert_int_equal(store_open(path, false, &other), P11K_OK);
	uint64_t v0 = store_data_version(other);
	obj_rec a = rec(1, CKO_DATA, 0, NULL, NULL, "p", "s");
	assert_int_equal(store_begin(s), P11K_OK);
	assert_int_equal(store_obj_insert(s, &a), P11K_OK);
	store_rollback(s);
	uint64_t count = 9;
	assert_int_equal(store_obj_count(s, &count), P11K_OK);
	assert_int_equal(count, 0);
	assert_int_equal(store_begin(s), P11K_OK);
	assert_int_equal(store_obj_insert(s, &a), P11K_OK);
	assert_int_equal(store_meta_put(s, "x", "1", 1), P11K_OK);
	assert_int_equal(store_commit(s), P11K_OK);
	/* Another connection sees the commit and its data version moves. */
	assert_int_equal(store_obj_count(other, &count), P11K_OK);
	assert_int_equal(count, 1);
	assert_true(store_data_version(other) != v0);
	store_close(other);
	store_close(s);
}

static void test_newer_schema_refused(void **state)
{
	char path[512];
	store_t *s;
	new_store_with(path, sizeof(path), "PRAGMA user_version=2");
	s = (store_t *)0x1;
	assert_int_equal(store_open(path, false, &s), P11K_ERR_STORE);
	assert_null(s);
	assert_int_equal(store_open(path, true, &s), P11K_ERR_STORE);
	/* Untouched: the version is still the newer one. */
	assert_int_equal(pragma_int(path, "PRAGMA user_version"), 2);
}

static void test_not_a_database_untouched(void **state)
{
	char path[512], wal[520], shm[520];
	uint8_t junk[8192], back[8192 + 1];
	for (size_t i = 0; i < sizeof(junk); i++)
		junk[i] = (uint8_t)("this is not a database "[i % 23] ^ (i >> 8));
	new_path(path, sizeof(path));
	/* The folder, then the foreign file. */
	store_t *s = NULL;
	assert_int_equal(store_open(path, true, &s), P11K_OK);
	store_close(s);
	unlink(path);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0640);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, junk, sizeof(junk)), (ssize_t)sizeof(junk));
	close(fd);
	struct stat before, after;
	assert_int_equal(stat(path, &before), 0);

	for (int create = 0; create < 2; create++) {
		s = (store_t *)0x1;
		assert_int_equal(store_open(path, create, &s), P11K_ERR_STORE);
		assert_null(s);
	}
	fd = open(path, O_RDONLY);
	assert_true(fd >= 0);
	ssize_t n = read(fd, back, sizeof(back));
	close(fd);
	assert_int_equal(n, (ssize_t)sizeof(junk));
	assert_memory_equal(back, junk, sizeof(junk));
	assert_int_equal(stat(path, &after), 0);
	assert_int_equal(after.st_mode, before.st_mode);
	assert_int_equal(after.st_mtime, before.st_mtime);
	/* No journal files left beside it. */
	snprintf(wal, sizeof(wal), "%s-wal", path);
	snprintf(shm, sizeof(shm), "%s-shm", path);
	assert_false(store_exists(wal));
	assert_false(store_exists(shm));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_create_open),
		cmocka_unit_test(test_meta),
		cmocka_unit_test(test_seals),
		cmocka_unit_test(test_objects),
		cmocka_unit_test(test_every_shape_uses_an_index),
		cmocka_unit_test(test_session_only_templates),
		cmocka_unit_test(test_filter_terms),
		cmocka_unit_test(test_missing_index_added),
		cmocka_unit_test(test_data_version_shortcut),
		cmocka_unit_test(test_transactions),
		cmocka_unit_test(test_newer_schema_refused),
		cmocka_unit_test(test_not_a_database_untouched),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
