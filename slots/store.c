/* SPDX-License-Identifier: Apache-2.0 */
#include "store.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <sqlite3.h>

#include "common/log.h"

#define BUSY_TIMEOUT_MS 15000
#define MAX_BLOB (16 * 1024 * 1024)

/* The two copies of the WAL-index header at the start of the -shm file
 * (SQLite's file format, "the WAL-index format": 2 x 48 bytes); every
 * commit changes them, a read does not. */
#define WAL_HDR_WORDS (96 / 4)
#define WAL_INDEX_PGSZ 32768

/* store_obj_find's query shapes: which filter terms it has. */
enum {
	FIND_LABEL = 1,
	FIND_CKAID = 2,
	FIND_CLASS = 4,
	FIND_KEYS = 8,
	FIND_PUBLIC = 16,
	FIND_PRIVATE = 32,
	FIND_SHAPES = 64,
};

struct store {
	sqlite3 *db;
	char *path;
	pthread_mutex_t lock; /* recursive: held from begin to commit */
	sqlite3_stmt *st_get, *st_insert, *st_update, *st_delete, *st_dver;
	sqlite3_stmt *st_find[FIND_SHAPES]; /* store_obj_find's, prepared when first used */
	/* store_data_version's shortcut: SQLite's WAL-index header as it was
	 * at the last real look, and what data_version said then. */
	bool shm_ok;                 /* a live store (WAL): the shortcut may be used */
	const volatile uint32_t *shm; /* the header, mapped by SQLite; NULL: not yet */
	uint32_t shm_seen[WAL_HDR_WORDS];
	bool have_seen;
	uint64_t dver;
};

/* Ordered schema upgrade steps: step[i] takes version i to i + 1. */
static const char *const upgrade_steps[] = {
	/* 0 -> 1: the first schema. */
	"CREATE TABLE meta(name TEXT PRIMARY KEY, value BLOB NOT NULL);"
	"CREATE TABLE seals(id INTEGER PRIMARY KEY, provider TEXT NOT NULL,"
	" key_id TEXT NOT NULL, key_version TEXT NOT NULL, role TEXT NOT NULL,"
	" blob BLOB NOT NULL, created INTEGER NOT NULL);"
	"CREATE TABLE objects(id INTEGER PRIMARY KEY, uid BLOB NOT NULL UNIQUE,"
	" class INTEGER NOT NULL, private INTEGER NOT NULL, label BLOB,"
	" ckaid BLOB, pub BLOB NOT NULL, sec BLOB NOT NULL);"
	"CREATE INDEX objects_label ON objects(label);"
	"CREATE INDEX objects_ckaid ON objects(ckaid);"
	"CREATE INDEX objects_class ON objects(class);",
};

/* Indexes a store gets at open when it lacks them. They are not part of
 * the schema version: a store with or without them reads and writes the
 * same (an older module keeps them up to date like any index), so a
 * backup or an older module's store needs no upgrade for them. */
static const struct {
	const char *name, *sql;
} extra_indexes[] = {
	{"objects_private", "CREATE INDEX IF NOT EXISTS objects_private ON objects(private)"},
};

static p11k_err sql_err(store_t *s, int rc, const char *what)
{
	log_error("store", "%s: %s: %s (sqlite %d)", s->path, what,
		  sqlite3_errmsg(s->db), rc);
	return (rc == SQLITE_BUSY || rc == SQLITE_LOCKED) ? P11K_ERR_STORE_BUSY
							   : P11K_ERR_STORE;
}

static p11k_err exec(store_t *s, const char *sql)
{
	char *msg = NULL;
	int rc = sqlite3_exec(s->db, sql, NULL, NULL, &msg);
	if (rc != SQLITE_OK) {
		log_error("store", "%s: %s (sqlite %d)", s->path,
			  msg ? msg : sqlite3_errstr(rc), rc);
		sqlite3_free(msg);
		return (rc == SQLITE_BUSY || rc == SQLITE_LOCKED) ? P11K_ERR_STORE_BUSY
								   : P11K_ERR_STORE;
	}
	return P11K_OK;
}

bool store_exists(const char *path)
{
	struct stat st;
	return stat(path, &st) == 0;
}

static bool make_parent(const char *path)
{
	char dir[PATH_MAX];
	if (snprintf(dir, sizeof(dir), "%s", path) >= (int)sizeof(dir))
		return false;
	char *slash = strrchr(dir, '/');
	if (!slash || slash == dir)
		return true;
	*slash = 0;
	for (char *p = dir + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		if (mkdir(dir, 0700) != 0 && errno != EEXIST)
			return false;
		*p = '/';
	}
	return mkdir(dir, 0700) == 0 || errno == EEXIST;
}

static int schema_version(store_t *s)
{
	sqlite3_stmt *st;
	int v = -1;
	if (sqlite3_prepare_v2(s->db, "PRAGMA user_version", -1, &st, NULL) ==
	    SQLITE_OK) {
		if (sqlite3_step(st) == SQLITE_ROW)
			v = sqlite3_column_int(st, 0);
		sqlite3_finalize(st);
	}
	return v;
}

static p11k_err schema_upgrade(store_t *s)
{
	sqlite3_stmt *st;
	int v = schema_version(s);
	/* The common case takes no write lock: other processes keep going. */
	if (v == (int)ARRAY_SIZE(upgrade_steps))
		return P11K_OK;
	p11k_err e = exec(s, "BEGIN IMMEDIATE");
	if (e != P11K_OK)
		return e;
	v = -1;
	if (sqlite3_prepare_v2(s->db, "PRAGMA user_version", -1, &st, NULL) ==
	    SQLITE_OK) {
		if (sqlite3_step(st) == SQLITE_ROW)
			v = sqlite3_column_int(st, 0);
		sqlite3_finalize(st);
	}
	if (v < 0) {
		e = sql_err(s, sqlite3_errcode(s->db), "reading schema version");
	} else if (v > (int)ARRAY_SIZE(upgrade_steps)) {
		log_error("store", "%s: schema version %d is newer than this module "
				   "knows (%zu); refusing to touch it",
			  s->path, v, ARRAY_SIZE(upgrade_steps));
		e = P11K_ERR_STORE;
	}
	for (int i = v; e == P11K_OK && i < (int)ARRAY_SIZE(upgrade_steps); i++) {
		char sql[64];
		log_info("store", "%s: upgrading schema %d -> %d", s->path, i, i + 1);
		e = exec(s, upgrade_steps[i]);
		snprintf(sql, sizeof(sql), "PRAGMA user_version=%d", i + 1);
		if (e == P11K_OK)
			e = exec(s, sql);
	}
	if (e == P11K_OK)
		return exec(s, "COMMIT");
	(void)exec(s, "ROLLBACK");
	return e;
}

static bool index_present(store_t *s, const char *name)
{
	sqlite3_stmt *st;
	bool found = false;
	if (sqlite3_prepare_v2(s->db, "SELECT 1 FROM sqlite_master WHERE type='index' AND name=?",
			       -1, &st, NULL) == SQLITE_OK) {
		sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
		found = sqlite3_step(st) == SQLITE_ROW;
		sqlite3_finalize(st);
	}
	return found;
}

/* The common case reads only: no write lock when every index is there. */
static p11k_err ensure_indexes(store_t *s)
{
	for (size_t i = 0; i < ARRAY_SIZE(extra_indexes); i++) {
		if (index_present(s, extra_indexes[i].name))
			continue;
		log_info("store", "%s: adding index %s", s->path, extra_indexes[i].name);
		p11k_err e = exec(s, "BEGIN IMMEDIATE");
		if (e == P11K_OK)
			e = exec(s, extra_indexes[i].sql);
		if (e == P11K_OK)
			e = exec(s, "COMMIT");
		else
			(void)exec(s, "ROLLBACK");
		if (e != P11K_OK)
			return e;
	}
	return P11K_OK;
}

/* Is the store in WAL mode? (A file system without shared memory keeps
 * it in rollback mode; store_data_version then always asks SQLite.) */
static bool wal_mode(store_t *s)
{
	sqlite3_stmt *st;
	bool wal = false;
	if (sqlite3_prepare_v2(s->db, "PRAGMA journal_mode", -1, &st, NULL) == SQLITE_OK) {
		if (sqlite3_step(st) == SQLITE_ROW) {
			const char *m = (const char *)sqlite3_column_text(st, 0);
			wal = m && strcmp(m, "wal") == 0;
		}
		sqlite3_finalize(st);
	}
	return wal;
}

static p11k_err prepare(store_t *s, const char *sql, sqlite3_stmt **st)
{
	int rc = sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, st,
				    NULL);
	return rc == SQLITE_OK ? P11K_OK : sql_err(s, rc, "prepare");
}

/* The store's lock: recursive, held from begin to commit. */
static void init_lock(pthread_mutex_t *m)
{
	pthread_mutexattr_t ma;
	pthread_mutexattr_init(&ma);
	pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_RECURSIVE);
	pthread_mutex_init(m, &ma);
	pthread_mutexattr_destroy(&ma);
}

p11k_err store_open(const char *path, bool create, store_t **out)
{
	*out = NULL;
	if (create && !store_exists(path)) {
		if (!make_parent(path)) {
			log_error("store", "%s: cannot create its folder: %s", path,
				  strerror(errno));
			return P11K_ERR_STORE;
		}
		int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
		if (fd < 0 && errno != EEXIST) {
			log_error("store", "%s: cannot create: %s", path, strerror(errno));
			return P11K_ERR_STORE;
		}
		if (fd >= 0)
			close(fd);
	}
	store_t *s = calloc(1, sizeof(*s));
	if (!s || !(s->path = strdup(path))) {
		free(s);
		return P11K_ERR_NOMEM;
	}
	init_lock(&s->lock);

	int rc = sqlite3_open_v2(path, &s->db,
				 SQLITE_OPEN_READWRITE | SQLITE_OPEN_NOMUTEX |
					 SQLITE_OPEN_PRIVATECACHE,
				 NULL);
	p11k_err e = rc == SQLITE_OK ? P11K_OK : P11K_ERR_STORE;
	if (e != P11K_OK)
		log_error("store", "%s: cannot open: %s", path,
			  s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
	if (e == P11K_OK) {
		sqlite3_busy_timeout(s->db, BUSY_TIMEOUT_MS);
		sqlite3_extended_result_codes(s->db, 0);
		/* The first read of the header detects a file that is not a
		 * database (corrupt, truncated, foreign) before anything writes. */
		e = exec(s, "PRAGMA journal_mode=WAL");
	}
	if (e == P11K_OK)
		e = exec(s, "PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;"
			    "PRAGMA secure_delete=ON");
	if (e == P11K_OK)
		e = schema_upgrade(s);
	if (e == P11K_OK)
		e = ensure_indexes(s);
	if (e == P11K_OK)
		e = prepare(s, "SELECT uid, class, private, pub, sec FROM objects "
			       "WHERE id=?",
			    &s->st_get);
	if (e == P11K_OK)
		e = prepare(s, "INSERT INTO objects(uid, class, private, label, ckaid,"
			       " pub, sec) VALUES(?,?,?,?,?,?,?)",
			    &s->st_insert);
	if (e == P11K_OK)
		e = prepare(s, "UPDATE objects SET class=?, private=?, label=?, "
			       "ckaid=?, pub=?, sec=? WHERE id=?",
			    &s->st_update);
	if (e == P11K_OK)
		e = prepare(s, "DELETE FROM objects WHERE id=?", &s->st_delete);
	if (e == P11K_OK)
		e = prepare(s, "PRAGMA data_version", &s->st_dver);
	s->shm_ok = e == P11K_OK && wal_mode(s);
	if (e != P11K_OK) {
		log_error("store", "%s: the store cannot be used; it was left as it is "
				   "(move it aside to start over, or restore a backup)",
			  path);
		store_close(s);
		return e;
	}
	*out = s;
	return P11K_OK;
}

void store_close(store_t *s)
{
	if (!s)
		return;
	sqlite3_finalize(s->st_get);
	sqlite3_finalize(s->st_insert);
	sqlite3_finalize(s->st_update);
	sqlite3_finalize(s->st_delete);
	sqlite3_finalize(s->st_dver);
	for (size_t i = 0; i < FIND_SHAPES; i++)
		sqlite3_finalize(s->st_find[i]);
	sqlite3_close(s->db);
	pthread_mutex_destroy(&s->lock);
	free(s->path);
	free(s);
}

void store_abandon(store_t *s)
{
	(void)s; /* deliberately leaked in the forked child */
}

void store_fork_hold(store_t *s)
{
	pthread_mutex_lock(&s->lock);
}

void store_fork_release(store_t *s)
{
	pthread_mutex_unlock(&s->lock);
}

void store_fork_child(store_t *s)
{
	/* A recursive mutex records its owner's thread id, which the child's
	 * thread no longer has: the unlock fails (EPERM) and only tells
	 * thread checkers that the lock is released; making it anew is what
	 * releases it (no other thread exists to hold it). The store itself
	 * is left behind untouched, like every SQLite handle of the parent. */
	(void)pthread_mutex_unlock(&s->lock);
	init_lock(&s->lock);
}

const char *store_path(const store_t *s)
{
	return s->path;
}

p11k_err store_begin(store_t *s)
{
	pthread_mutex_lock(&s->lock);
	p11k_err e = exec(s, "BEGIN IMMEDIATE");
	if (e != P11K_OK)
		pthread_mutex_unlock(&s->lock);
	return e;
}

p11k_err store_commit(store_t *s)
{
	p11k_err e = exec(s, "COMMIT");
	if (e != P11K_OK)
		(void)exec(s, "ROLLBACK");
	pthread_mutex_unlock(&s->lock);
	return e;
}

void store_rollback(store_t *s)
{
	(void)exec(s, "ROLLBACK");
	pthread_mutex_unlock(&s->lock);
}

p11k_err store_nowait_enter(store_t *s)
{
	if (pthread_mutex_trylock(&s->lock) != 0)
		return P11K_ERR_STORE_BUSY; /* another thread is in a transaction */
	/* The store's lock is held until leave: no other thread uses the
	 * connection meanwhile, so the timeout change is ours alone. */
	sqlite3_busy_timeout(s->db, 0);
	return P11K_OK;
}

void store_nowait_leave(store_t *s)
{
	sqlite3_busy_timeout(s->db, BUSY_TIMEOUT_MS);
	pthread_mutex_unlock(&s->lock);
}

unsigned store_busy_timeout_ms(void)
{
	return BUSY_TIMEOUT_MS;
}

/* SQLite's mapping of the WAL index's first page (the unix VFS's xShmMap,
 * which answers the mapping it already has), or NULL. */
static const volatile uint32_t *shm_header(store_t *s)
{
	sqlite3_file *f = NULL;
	void volatile *p = NULL;
	if (sqlite3_file_control(s->db, "main", SQLITE_FCNTL_FILE_POINTER, &f) != SQLITE_OK ||
	    !f || !f->pMethods || f->pMethods->iVersion < 2 || !f->pMethods->xShmMap ||
	    f->pMethods->xShmMap(f, 0, WAL_INDEX_PGSZ, 0, &p) != SQLITE_OK)
		return NULL;
	return (const volatile uint32_t *)p;
}

static bool shm_unchanged(const store_t *s)
{
	uint32_t d = 0;
	for (size_t i = 0; i < WAL_HDR_WORDS; i++)
		d |= __atomic_load_n(&s->shm[i], __ATOMIC_ACQUIRE) ^ s->shm_seen[i];
	return d == 0;
}

/* PRAGMA data_version starts a read transaction (file locks, several
 * system calls: microseconds), which every call that looks at a token
 * object makes. When the WAL-index header is as it was at the last look,
 * no connection committed since and the answer is the last one. The
 * header is copied before the pragma runs: a commit that lands between
 * the two shows as a change next time. */
uint64_t store_data_version(store_t *s)
{
	uint64_t v = 0;
	sqlite3_stmt *st;
	pthread_mutex_lock(&s->lock);
	if (s->shm && s->have_seen && shm_unchanged(s)) {
		v = s->dver;
		pthread_mutex_unlock(&s->lock);
		return v;
	}
	if (s->shm) {
		/* Acquire loads: none moves after the pragma's reads. */
		for (size_t i = 0; i < WAL_HDR_WORDS; i++)
			s->shm_seen[i] = __atomic_load_n(&s->shm[i], __ATOMIC_ACQUIRE);
	}
	/* The pragma starts a read, so it sees other processes' commits. */
	st = s->st_dver;
	bool ok = st && sqlite3_step(st) == SQLITE_ROW;
	if (ok)
		v = (uint64_t)sqlite3_column_int64(st, 0);
	if (st)
		sqlite3_reset(st);
	s->have_seen = ok && s->shm;
	s->dver = v;
	/* After a read the first page of the WAL index is mapped. */
	if (ok && s->shm_ok && !s->shm)
		s->shm = shm_header(s);
	pthread_mutex_unlock(&s->lock);
	return v;
}

static bool col_blob(sqlite3_stmt *st, int col, uint8_t **out, size_t *len)
{
	int n = sqlite3_column_bytes(st, col);
	const void *p = sqlite3_column_blob(st, col);
	if (n < 0 || n > MAX_BLOB)
		return false;
	*out = malloc(n ? (size_t)n : 1);
	if (!*out)
		return false;
	if (n)
		memcpy(*out, p, (size_t)n);
	*len = (size_t)n;
	return true;
}

p11k_err store_meta_get(store_t *s, const char *name, uint8_t **val,
			size_t *len, bool *found)
{
	sqlite3_stmt *st;
	p11k_err e = P11K_OK;
	*found = false;
	*val = NULL;
	*len = 0;
	pthread_mutex_lock(&s->lock);
	int rc = sqlite3_prepare_v2(s->db, "SELECT value FROM meta WHERE name=?", -1,
				    &st, NULL);
	if (rc != SQLITE_OK) {
		e = sql_err(s, rc, "meta read");
	} else {
		sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
		rc = sqlite3_step(st);
		if (rc == SQLITE_ROW) {
			*found = true;
			if (!col_blob(st, 0, val, len))
				e = P11K_ERR_STORE;
		} else if (rc != SQLITE_DONE) {
			e = sql_err(s, rc, "meta read");
		}
		sqlite3_finalize(st);
	}
	pthread_mutex_unlock(&s->lock);
	return e;
}

p11k_err store_meta_put(store_t *s, const char *name, const void *val, size_t len)
{
	sqlite3_stmt *st;
	p11k_err e = P11K_OK;
	pthread_mutex_lock(&s->lock);
	int rc = sqlite3_prepare_v2(
		s->db, "INSERT OR REPLACE INTO meta(name, value) VALUES(?, ?)", -1,
		&st, NULL);
	if (rc == SQLITE_OK) {
		sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
		sqlite3_bind_blob(st, 2, val ? val : "", (int)len, SQLITE_STATIC);
		rc = sqlite3_step(st);
		sqlite3_finalize(st);
	}
	if (rc != SQLITE_DONE && rc != SQLITE_OK)
		e = sql_err(s, rc, "meta write");
	pthread_mutex_unlock(&s->lock);
	return e;
}

p11k_err store_meta_del(store_t *s, const char *name)
{
	sqlite3_stmt *st;
	pthread_mutex_lock(&s->lock);
	int rc = sqlite3_prepare_v2(s->db, "DELETE FROM meta WHERE name=?", -1, &st,
				    NULL);
	if (rc == SQLITE_OK) {
		sqlite3_bind_text(st, 1, name, -1, SQLITE_STATIC);
		rc = sqlite3_step(st);
		sqlite3_finalize(st);
	}
	p11k_err e = rc == SQLITE_DONE ? P11K_OK : sql_err(s, rc, "meta delete");
	pthread_mutex_unlock(&s->lock);
	return e;
}

static char *col_text(sqlite3_stmt *st, int col)
{
	const unsigned char *t = sqlite3_column_text(st, col);
	return strdup(t ? (const char *)t : "");
}

p11k_err store_seals_load(store_t *s, seal_rec **out, size_t *n)
{
	sqlite3_stmt *st;
	p11k_err e = P11K_OK;
	seal_rec *v = NULL;
	size_t cnt = 0;
	*out = NULL;
	*n = 0;
	pthread_mutex_lock(&s->lock);
	int rc = sqlite3_prepare_v2(s->db,
				    "SELECT id, provider, key_id, key_version, role, "
				    "blob, created FROM seals ORDER BY id",
				    -1, &st, NULL);
	if (rc != SQLITE_OK)
		e = sql_err(s, rc, "seal read");
	while (e == P11K_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		seal_rec *nv = cnt < 64 ? realloc(v, (cnt + 1) * sizeof(*v)) : NULL;
		if (!nv) {
			e = cnt < 64 ? P11K_ERR_NOMEM : P11K_ERR_STORE;
			break;
		}
		v = nv;
		seal_rec *r = &v[cnt++];
		memset(r, 0, sizeof(*r));
		r->id = sqlite3_column_int64(st, 0);
		r->provider = col_text(st, 1);
		r->key_id = col_text(st, 2);
		r->key_version = col_text(st, 3);
		r->role = col_text(st, 4);
		r->created = (uint64_t)sqlite3_column_int64(st, 6);
		if (!r->provider || !r->key_id || !r->key_version || !r->role ||
		    !col_blob(st, 5, &r->blob, &r->bloblen))
			e = P11K_ERR_NOMEM;
	}
	if (e == P11K_OK && rc != SQLITE_DONE)
		e = sql_err(s, rc, "seal read");
	sqlite3_finalize(st);
	pthread_mutex_unlock(&s->lock);
	if (e != P11K_OK) {
		seal_recs_free(v, cnt);
		return e;
	}
	*out = v;
	*n = cnt;
	return P11K_OK;
}

void seal_recs_free(seal_rec *r, size_t n)
{
	for (size_t i = 0; r && i < n; i++) {
		free(r[i].provider);
		free(r[i].key_id);
		free(r[i].key_version);
		free(r[i].role);
		free(r[i].blob);
	}
	free(r);
}

p11k_err store_seal_add(store_t *s, const seal_rec *r)
{
	sqlite3_stmt *st;
	pthread_mutex_lock(&s->lock);
	int rc = sqlite3_prepare_v2(s->db,
				    "INSERT INTO seals(provider, key_id, key_version, "
				    "role, blob, created) VALUES(?,?,?,?,?,?)",
				    -1, &st, NULL);
	if (rc == SQLITE_OK) {
		sqlite3_bind_text(st, 1, r->provider, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 2, r->key_id, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 3, r->key_version, -1, SQLITE_STATIC);
		sqlite3_bind_text(st, 4, r->role, -1, SQLITE_STATIC);
		sqlite3_bind_blob(st, 5, r->blob, (int)r->bloblen, SQLITE_STATIC);
		sqlite3_bind_int64(st, 6, (sqlite3_int64)r->created);
		rc = sqlite3_step(st);
		sqlite3_finalize(st);
	}
	p11k_err e = rc == SQLITE_DONE ? P11K_OK : sql_err(s, rc, "seal write");
	pthread_mutex_unlock(&s->lock);
	return e;
}

p11k_err store_seals_clear(store_t *s)
{
	pthread_mutex_lock(&s->lock);
	p11k_err e = exec(s, "DELETE FROM seals");
	pthread_mutex_unlock(&s->lock);
	return e;
}

p11k_err store_seals_delete_role(store_t *s, const char *role)
{
	sqlite3_stmt *st;
	pthread_mutex_lock(&s->lock);
	int rc = sqlite3_prepare_v2(s->db, "DELETE FROM seals WHERE role = ?", -1, &st, NULL);
	if (rc == SQLITE_OK) {
		sqlite3_bind_text(st, 1, role, -1, SQLITE_STATIC);
		rc = sqlite3_step(st);
		sqlite3_finalize(st);
	}
	p11k_err e = rc == SQLITE_DONE ? P11K_OK : sql_err(s, rc, "seal delete");
	pthread_mutex_unlock(&s->lock);
	return e;
}

static void bind_opt_blob(sqlite3_stmt *st, int i, const uint8_t *p, size_t n)
{
	if (p)
		sqlite3_bind_blob(st, i, n ? (const void *)p : "", (int)n,
				  SQLITE_STATIC);
	else
		sqlite3_bind_null(st, i);
}

p11k_err store_obj_insert(store_t *s, obj_rec *r)
{
	if (r->publen > MAX_BLOB || r->seclen > MAX_BLOB)
		return P11K_ERR_STORE;
	pthread_mutex_lock(&s->lock);
	sqlite3_stmt *st = s->st_insert;
	sqlite3_bind_blob(st, 1, r->uid, UID_LEN, SQLITE_STATIC);
	sqlite3_bind_int64(st, 2, (sqlite3_int64)r->cls);
	sqlite3_bind_int(st, 3, r->priv);
	bind_opt_blob(st, 4, r->label, r->labellen);
	bind_opt_blob(st, 5, r->ckaid, r->ckaidlen);
	sqlite3_bind_blob(st, 6, r->pub, (int)r->publen, SQLITE_STATIC);
	sqlite3_bind_blob(st, 7, r->sec, (int)r->seclen, SQLITE_STATIC);
	int rc = sqlite3_step(st);
	p11k_err e = rc == SQLITE_DONE ? P11K_OK : sql_err(s, rc, "object insert");
	if (e == P11K_OK)
		r->rowid = sqlite3_last_insert_rowid(s->db);
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	pthread_mutex_unlock(&s->lock);
	return e;
}

p11k_err store_obj_update(store_t *s, const obj_rec *r)
{
	if (r->publen > MAX_BLOB || r->seclen > MAX_BLOB)
		return P11K_ERR_STORE;
	pthread_mutex_lock(&s->lock);
	sqlite3_stmt *st = s->st_update;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)r->cls);
	sqlite3_bind_int(st, 2, r->priv);
	bind_opt_blob(st, 3, r->label, r->labellen);
	bind_opt_blob(st, 4, r->ckaid, r->ckaidlen);
	sqlite3_bind_blob(st, 5, r->pub, (int)r->publen, SQLITE_STATIC);
	sqlite3_bind_blob(st, 6, r->sec, (int)r->seclen, SQLITE_STATIC);
	sqlite3_bind_int64(st, 7, r->rowid);
	int rc = sqlite3_step(st);
	p11k_err e = rc == SQLITE_DONE ? P11K_OK : sql_err(s, rc, "object update");
	if (e == P11K_OK && sqlite3_changes(s->db) != 1)
		e = P11K_ERR_STORE;
	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	pthread_mutex_unlock(&s->lock);
	return e;
}

p11k_err store_obj_set_sec(store_t *s, int64_t rowid, const uint8_t *sec, size_t seclen)
{
	if (seclen > MAX_BLOB)
		return P11K_ERR_STORE;
	sqlite3_stmt *st;
	pthread_mutex_lock(&s->lock);
	int rc = sqlite3_prepare_v2(s->db, "UPDATE objects SET sec = ? WHERE id = ?", -1, &st,
				    NULL);
	if (rc == SQLITE_OK) {
		sqlite3_bind_blob(st, 1, sec, (int)seclen, SQLITE_STATIC);
		sqlite3_bind_int64(st, 2, rowid);
		rc = sqlite3_step(st);
		sqlite3_finalize(st);
	}
	p11k_err e = rc == SQLITE_DONE ? P11K_OK : sql_err(s, rc, "object update");
	pthread_mutex_unlock(&s->lock);
	return e;
}

p11k_err store_obj_delete(store_t *s, int64_t rowid, bool *found)
{
	pthread_mutex_lock(&s->lock);
	sqlite3_stmt *st = s->st_delete;
	sqlite3_bind_int64(st, 1, rowid);
	int rc = sqlite3_step(st);
	p11k_err e = rc == SQLITE_DONE ? P11K_OK : sql_err(s, rc, "object delete");
	*found = e == P11K_OK && sqlite3_changes(s->db) == 1;
	sqlite3_reset(st);
	pthread_mutex_unlock(&s->lock);
	return e;
}

void obj_rec_free(obj_rec *r)
{
	free(r->pub);
	free(r->sec);
	r->pub = r->sec = NULL;
}

p11k_err store_obj_get(store_t *s, int64_t rowid, obj_rec *out, bool *found)
{
	memset(out, 0, sizeof(*out));
	*found = false;
	pthread_mutex_lock(&s->lock);
	sqlite3_stmt *st = s->st_get;
	sqlite3_bind_int64(st, 1, rowid);
	int rc = sqlite3_step(st);
	p11k_err e = P11K_OK;
	if (rc == SQLITE_ROW) {
		*found = true;
		out->rowid = rowid;
		if (sqlite3_column_bytes(st, 0) != UID_LEN) {
			log_error("store", "%s: object %lld has a malformed uid",
				  s->path, (long long)rowid);
			e = P11K_ERR_STORE;
		} else {
			memcpy(out->uid, sqlite3_column_blob(st, 0), UID_LEN);
		}
		out->cls = (uint64_t)sqlite3_column_int64(st, 1);
		out->priv = sqlite3_column_int(st, 2);
		if (e == P11K_OK && (!col_blob(st, 3, &out->pub, &out->publen) ||
				     !col_blob(st, 4, &out->sec, &out->seclen)))
			e = P11K_ERR_STORE;
	} else if (rc != SQLITE_DONE) {
		e = sql_err(s, rc, "object read");
	}
	sqlite3_reset(st);
	pthread_mutex_unlock(&s->lock);
	if (e != P11K_OK)
		obj_rec_free(out);
	return e;
}

static unsigned find_shape(const obj_filter *f)
{
	return (f->label ? FIND_LABEL : 0) | (f->ckaid ? FIND_CKAID : 0) |
	       (f->cls ? FIND_CLASS : 0) | (f->keys_only && !f->cls ? FIND_KEYS : 0) |
	       (f->public_only ? FIND_PUBLIC : 0) | (f->private_only ? FIND_PRIVATE : 0);
}

/* The query for a shape. One term leads, in the order of selectivity a
 * token's objects have (a label or an id names one object or a few, a
 * class or privacy most of them), and is the only one SQLite may take an
 * index for; the others are written "+column", which SQLite never answers
 * with an index, so it cannot pick the class index (every key matches it)
 * over the label's. The leading term keeps the rows in id order, but for
 * the key classes' IN, which sorts. */
static void find_sql(unsigned shape, char *sql, size_t n)
{
	static const struct {
		unsigned bit;
		const char *term;
	} terms[] = {
		{FIND_LABEL, "label=?1"},	  {FIND_CKAID, "ckaid=?2"},
		{FIND_CLASS, "class=?3"},	  {FIND_KEYS, "class IN (?4, ?5, ?6)"},
		{FIND_PUBLIC, "private=0"}, {FIND_PRIVATE, "private=1"},
	};
	size_t o = (size_t)snprintf(sql, n, "SELECT id, uid, class, private, pub, sec FROM "
					    "objects WHERE 1");
	bool led = false;
	for (size_t i = 0; i < ARRAY_SIZE(terms); i++) {
		if (!(shape & terms[i].bit))
			continue;
		o += (size_t)snprintf(sql + o, n - o, " AND %s%s", led ? "+" : "", terms[i].term);
		led = true;
	}
	snprintf(sql + o, n - o, " ORDER BY id");
}

/* The shape's statement, bound to f: the cached one, or (when a walk of
 * that shape is running further up this thread's stack) a fresh one,
 * *own then set. */
static p11k_err find_stmt(store_t *s, const obj_filter *f, sqlite3_stmt **out, bool *own)
{
	unsigned shape = find_shape(f);
	sqlite3_stmt *st = s->st_find[shape];
	*own = st && sqlite3_stmt_busy(st);
	if (!st || *own) {
		char sql[256];
		find_sql(shape, sql, sizeof(sql));
		int rc = *own ? sqlite3_prepare_v2(s->db, sql, -1, &st, NULL)
			      : sqlite3_prepare_v3(s->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st,
						   NULL);
		if (rc != SQLITE_OK)
			return sql_err(s, rc, "object search");
		if (!*own)
			s->st_find[shape] = st;
	}
	if (f->label)
		sqlite3_bind_blob(st, 1, f->labellen ? (const void *)f->label : "",
				  (int)f->labellen, SQLITE_STATIC);
	if (f->ckaid)
		sqlite3_bind_blob(st, 2, f->ckaidlen ? (const void *)f->ckaid : "",
				  (int)f->ckaidlen, SQLITE_STATIC);
	if (f->cls)
		sqlite3_bind_int64(st, 3, (sqlite3_int64)*f->cls);
	if (shape & FIND_KEYS) {
		sqlite3_bind_int64(st, 4, CKO_PUBLIC_KEY);
		sqlite3_bind_int64(st, 5, CKO_PRIVATE_KEY);
		sqlite3_bind_int64(st, 6, CKO_SECRET_KEY);
	}
	*out = st;
	return P11K_OK;
}

static void find_done(sqlite3_stmt *st, bool own)
{
	if (own) {
		sqlite3_finalize(st);
	} else {
		sqlite3_reset(st);
		sqlite3_clear_bindings(st);
	}
}

p11k_err store_obj_find(store_t *s, const obj_filter *f,
			bool (*fn)(void *arg, const obj_rec *r), void *arg)
{
	sqlite3_stmt *st;
	bool own;
	pthread_mutex_lock(&s->lock);
	p11k_err e = find_stmt(s, f, &st, &own);
	if (e != P11K_OK) {
		pthread_mutex_unlock(&s->lock);
		return e;
	}
	int rc;
	while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
		obj_rec r = {0};
		r.rowid = sqlite3_column_int64(st, 0);
		if (sqlite3_column_bytes(st, 1) != UID_LEN)
			continue;
		memcpy(r.uid, sqlite3_column_blob(st, 1), UID_LEN);
		r.cls = (uint64_t)sqlite3_column_int64(st, 2);
		r.priv = sqlite3_column_int(st, 3);
		r.pub = (uint8_t *)sqlite3_column_blob(st, 4);
		r.publen = (size_t)sqlite3_column_bytes(st, 4);
		r.sec = (uint8_t *)sqlite3_column_blob(st, 5);
		r.seclen = (size_t)sqlite3_column_bytes(st, 5);
		if (!fn(arg, &r)) {
			rc = SQLITE_DONE;
			break;
		}
	}
	if (rc != SQLITE_DONE)
		e = sql_err(s, rc, "object search");
	find_done(st, own);
	pthread_mutex_unlock(&s->lock);
	return e;
}

p11k_err store_obj_find_plan(store_t *s, const obj_filter *f, char *out, size_t outlen)
{
	char sql[256], eqp[300];
	find_sql(find_shape(f), sql, sizeof(sql));
	snprintf(eqp, sizeof(eqp), "EXPLAIN QUERY PLAN %s", sql);
	if (outlen)
		out[0] = 0;
	sqlite3_stmt *st;
	pthread_mutex_lock(&s->lock);
	int rc = sqlite3_prepare_v2(s->db, eqp, -1, &st, NULL);
	p11k_err e = rc == SQLITE_OK ? P11K_OK : sql_err(s, rc, "object search plan");
	size_t o = 0;
	while (e == P11K_OK && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		const char *d = (const char *)sqlite3_column_text(st, 3);
		int w = snprintf(out + o, outlen - o, "%s%s", o ? "; " : "", d ? d : "");
		if (w < 0 || (size_t)w >= outlen - o)
			e = P11K_ERR_NOMEM;
		else
			o += (size_t)w;
	}
	if (e == P11K_OK && rc != SQLITE_DONE)
		e = sql_err(s, rc, "object search plan");
	sqlite3_finalize(st);
	pthread_mutex_unlock(&s->lock);
	return e;
}

p11k_err store_obj_delete_all(store_t *s)
{
	pthread_mutex_lock(&s->lock);
	p11k_err e = exec(s, "DELETE FROM objects");
	pthread_mutex_unlock(&s->lock);
	return e;
}

p11k_err store_obj_count(store_t *s, uint64_t *n)
{
	sqlite3_stmt *st;
	p11k_err e = P11K_OK;
	*n = 0;
	pthread_mutex_lock(&s->lock);
	int rc = sqlite3_prepare_v2(s->db, "SELECT count(*) FROM objects", -1, &st,
				    NULL);
	if (rc == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW)
		*n = (uint64_t)sqlite3_column_int64(st, 0);
	else
		e = sql_err(s, rc, "object count");
	sqlite3_finalize(st);
	pthread_mutex_unlock(&s->lock);
	return e;
}

/* --- backups (docs/BACKUP.md) ------------------------------------------------ */

/* Copy every page of src's main database into dst with SQLite's online
 * backup API, in one step: one read transaction on src (a consistent
 * snapshot, whatever WAL frames other processes are adding) and one write
 * transaction on dst (other connections of dst see all of it or none).
 * Both stores' locks are held by the caller. */
static p11k_err backup_pages(store_t *src, store_t *dst)
{
	sqlite3_backup *b = sqlite3_backup_init(dst->db, "main", src->db, "main");
	if (!b)
		return sql_err(dst, sqlite3_errcode(dst->db), "backup start");
	int rc;
	unsigned waited = 0;
	while ((rc = sqlite3_backup_step(b, -1)) == SQLITE_BUSY || rc == SQLITE_LOCKED) {
		if (waited >= BUSY_TIMEOUT_MS)
			break;
		sqlite3_sleep(20);
		waited += 20;
	}
	int fin = sqlite3_backup_finish(b);
	if (rc != SQLITE_DONE)
		return sql_err(dst, rc, "backup copy");
	return fin == SQLITE_OK ? P11K_OK : sql_err(dst, fin, "backup finish");
}

/* A handle on db for the backup functions: no prepared statements but
 * the data_version one (none of the object writers may be used). */
static p11k_err handle_new(const char *path, const char *uri, int flags, store_t **out)
{
	store_t *s = calloc(1, sizeof(*s));
	*out = NULL;
	if (!s || !(s->path = strdup(path))) {
		free(s);
		return P11K_ERR_NOMEM;
	}
	pthread_mutexattr_t ma;
	pthread_mutexattr_init(&ma);
	pthread_mutexattr_settype(&ma, PTHREAD_MUTEX_RECURSIVE);
	pthread_mutex_init(&s->lock, &ma);
	pthread_mutexattr_destroy(&ma);
	int rc = sqlite3_open_v2(uri, &s->db, flags | SQLITE_OPEN_NOMUTEX | SQLITE_OPEN_PRIVATECACHE,
				 NULL);
	if (rc != SQLITE_OK) {
		log_error("store", "%s: cannot open: %s", path,
			  s->db ? sqlite3_errmsg(s->db) : sqlite3_errstr(rc));
		store_close(s);
		return P11K_ERR_STORE;
	}
	sqlite3_busy_timeout(s->db, BUSY_TIMEOUT_MS);
	sqlite3_extended_result_codes(s->db, 0);
	*out = s;
	return P11K_OK;
}

static bool fsync_path(const char *path, bool dir)
{
	int fd = open(path, (dir ? O_DIRECTORY : 0) | O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return false;
	bool ok = fsync(fd) == 0;
	close(fd);
	return ok;
}

static bool fsync_parent(const char *path)
{
	char dir[PATH_MAX];
	if (snprintf(dir, sizeof(dir), "%s", path) >= (int)sizeof(dir))
		return false;
	char *slash = strrchr(dir, '/');
	if (!slash)
		return fsync_path(".", true);
	if (slash == dir)
		slash[1] = 0;
	else
		*slash = 0;
	return fsync_path(dir, true);
}

static void unlink_with_journals(const char *path)
{
	static const char *const sfx[] = {"", "-journal", "-wal", "-shm"};
	char p[PATH_MAX + 16];
	for (size_t i = 0; i < ARRAY_SIZE(sfx); i++)
		if (snprintf(p, sizeof(p), "%s%s", path, sfx[i]) < (int)sizeof(p))
			unlink(p);
}

p11k_err store_backup_to(store_t *s, const char *dest, store_annotate_fn annotate, void *arg)
{
	char tmp[PATH_MAX];
	if (snprintf(tmp, sizeof(tmp), "%s.tmp", dest) >= (int)sizeof(tmp))
		return P11K_ERR_STORE;
	/* A temp file left by a backup that died is ours to replace; O_EXCL
	 * then makes sure we write a file we created (not a planted link). */
	unlink_with_journals(tmp);
	int fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
	if (fd < 0) {
		log_error("store", "%s: cannot create: %s", tmp, strerror(errno));
		return P11K_ERR_STORE;
	}
	bool mode_ok = fchmod(fd, 0600) == 0;
	close(fd);
	store_t *c = NULL;
	p11k_err e = mode_ok ? handle_new(tmp, tmp, SQLITE_OPEN_READWRITE, &c) : P11K_ERR_STORE;
	if (e == P11K_OK) {
		pthread_mutex_lock(&s->lock);
		e = backup_pages(s, c);
		pthread_mutex_unlock(&s->lock);
	}
	/* A backup is one self-contained file: no WAL beside it (the pages
	 * came with the live store's WAL flag; this clears it). */
	if (e == P11K_OK)
		e = exec(c, "PRAGMA journal_mode=DELETE; PRAGMA synchronous=FULL");
	if (e == P11K_OK && annotate)
		e = annotate(c, arg);
	store_close(c);
	if (e == P11K_OK && !fsync_path(tmp, false))
		e = P11K_ERR_STORE;
	if (e == P11K_OK && rename(tmp, dest) != 0) {
		log_error("store", "%s: cannot rename to %s: %s", tmp, dest, strerror(errno));
		e = P11K_ERR_STORE;
	}
	if (e == P11K_OK && !fsync_parent(dest))
		e = P11K_ERR_STORE;
	if (e != P11K_OK)
		unlink_with_journals(tmp);
	return e;
}

/* "file:" URI of path with everything but unreserved characters and '/'
 * percent-encoded (a path may hold '?', '#' or '%'). */
static bool file_uri(const char *path, const char *query, char *out, size_t n)
{
	size_t o = 0;
	int w = snprintf(out, n, "file:");
	if (w < 0 || (size_t)w >= n)
		return false;
	o = (size_t)w;
	for (const unsigned char *p = (const unsigned char *)path; *p; p++) {
		bool plain = (*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
			     (*p >= '0' && *p <= '9') || strchr("-._~/", *p);
		w = plain ? snprintf(out + o, n - o, "%c", *p) : snprintf(out + o, n - o, "%%%02X", *p);
		if (w < 0 || (size_t)w >= n - o)
			return false;
		o += (size_t)w;
	}
	w = snprintf(out + o, n - o, "?%s", query);
	return w >= 0 && (size_t)w < n - o;
}

p11k_err store_open_readonly(const char *path, store_t **out, char *why, size_t whylen)
{
	char uri[PATH_MAX * 3 + 64];
	struct stat st;
	*out = NULL;
	snprintf(why, whylen, "unusable");
	if (stat(path, &st) != 0 || !S_ISREG(st.st_mode)) {
		snprintf(why, whylen, "%s", stat(path, &st) != 0 ? strerror(errno) : "not a file");
		return P11K_ERR_STORE;
	}
	/* immutable: SQLite takes no lock and writes nothing, not even a
	 * -shm or -journal file beside it; the file is only read. */
	if (!file_uri(path, "mode=ro&immutable=1", uri, sizeof(uri)))
		return P11K_ERR_STORE;
	store_t *s = NULL;
	p11k_err e = handle_new(path, uri, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, &s);
	sqlite3_stmt *q = NULL;
	int rc = SQLITE_OK;
	/* The whole file, page by page: a truncated or damaged file fails
	 * here rather than half-way through a restore. */
	if (e == P11K_OK) {
		rc = sqlite3_prepare_v2(s->db, "PRAGMA quick_check", -1, &q, NULL);
		if (rc == SQLITE_OK)
			rc = sqlite3_step(q);
		if (rc != SQLITE_ROW) {
			snprintf(why, whylen, "not a readable SQLite database (%s): truncated or "
					     "damaged",
				sqlite3_errmsg(s->db));
			e = P11K_ERR_STORE;
		} else if (strcmp((const char *)sqlite3_column_text(q, 0), "ok") != 0) {
			snprintf(why, whylen, "damaged: %.120s",
				(const char *)sqlite3_column_text(q, 0));
			e = P11K_ERR_STORE;
		}
		sqlite3_finalize(q);
	}
	if (e == P11K_OK) {
		int v = schema_version(s);
		if (v > (int)ARRAY_SIZE(upgrade_steps)) {
			snprintf(why, whylen, "schema version %d is newer than this p11kms knows "
					     "(%zu)",
				v, ARRAY_SIZE(upgrade_steps));
			e = P11K_ERR_STORE;
		} else if (v != (int)ARRAY_SIZE(upgrade_steps)) {
			snprintf(why, whylen, "not a p11kms store (schema version %d)", v);
			e = P11K_ERR_STORE;
		}
	}
	if (e == P11K_OK)
		e = prepare(s, "SELECT uid, class, private, pub, sec FROM objects WHERE id=?",
			    &s->st_get);
	if (e != P11K_OK) {
		store_close(s);
		return e;
	}
	*out = s;
	return P11K_OK;
}

p11k_err store_replace_from(store_t *live, store_t *src)
{
	pthread_mutex_lock(&live->lock);
	pthread_mutex_lock(&src->lock);
	p11k_err e = backup_pages(src, live);
	pthread_mutex_unlock(&src->lock);
	pthread_mutex_unlock(&live->lock);
	return e;
}
