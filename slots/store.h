/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The per-token store: one SQLite database (WAL, synchronous=FULL, mode
 * 0600) holding token metadata, the seals of the token key and the object
 * records. docs/STORE.md describes the format. Every write that creates,
 * changes or removes an object commits before the PKCS #11 call returns.
 * Several processes may share one store; SQLite's locking arbitrates and
 * data_version tells a process when another one wrote.
 *
 * The store knows nothing about encryption: records arrive sealed.
 */
#ifndef P11KMS_STORE_H
#define P11KMS_STORE_H

#include "common/common.h"
#include "common/err.h"

#define STORE_SCHEMA_VERSION 1
#define UID_LEN 16

typedef struct store store_t;

typedef struct seal_rec {
	int64_t id;
	char *provider, *key_id, *key_version, *role;
	uint8_t *blob;
	size_t bloblen;
	uint64_t created;
} seal_rec;

typedef struct obj_rec {
	int64_t rowid;
	uint8_t uid[UID_LEN];
	uint64_t cls;
	int priv;
	const uint8_t *label; /* indexed copy of CKA_LABEL, may be NULL */
	size_t labellen;
	const uint8_t *ckaid; /* indexed copy of CKA_ID, may be NULL */
	size_t ckaidlen;
	uint8_t *pub; /* serialized public attributes (AAD of sec) */
	size_t publen;
	uint8_t *sec; /* sealed secret attributes */
	size_t seclen;
} obj_rec;

/* Filter for store_obj_find: NULL (false) members match anything. Every
 * filter with one of label, ckaid, cls, keys_only, public_only or
 * private_only set is answered through an index (store_obj_find_plan). */
typedef struct obj_filter {
	const uint8_t *label;
	size_t labellen;
	const uint8_t *ckaid;
	size_t ckaidlen;
	const uint64_t *cls;
	bool keys_only;    /* class is CKO_PUBLIC_KEY, CKO_PRIVATE_KEY or CKO_SECRET_KEY */
	bool public_only;  /* private = 0 */
	bool private_only; /* private = 1 */
} obj_filter;

bool store_exists(const char *path);
/* create: make the file (and its folder) when missing. Schema upgrades run
 * here, in order, in one transaction. */
P11K_WUR p11k_err store_open(const char *path, bool create, store_t **out);
void store_close(store_t *s);
/* Forget the handle without touching SQLite (a forked child must not
 * use or close its parent's connections). */
void store_abandon(store_t *s);
/* fork (module/entry.c's pthread_atfork handler, with THE lock held): hold
 * the store's lock around fork, so no thread of the module is inside
 * SQLite (an IV counter reservation runs without THE lock) and the child
 * finds SQLite's own mutexes free; release it in the parent. */
void store_fork_hold(store_t *s);
void store_fork_release(store_t *s);
/* The same in the child, where the store is then left behind unused. */
void store_fork_child(store_t *s);
const char *store_path(const store_t *s);

/* Transactions: begin takes the store's lock until commit or rollback.
 * Writes outside a transaction commit on their own. */
P11K_WUR p11k_err store_begin(store_t *s);
P11K_WUR p11k_err store_commit(store_t *s);
void store_rollback(store_t *s);
/* Hold the store without waiting for anyone: P11K_ERR_STORE_BUSY at once
 * when another thread of this process is in a transaction; until leave,
 * every call fails with P11K_ERR_STORE_BUSY instead of waiting on
 * SQLite's busy handler. For work done under the module lock, which must
 * never wait on another process (slots.h, the lock rule). Nests inside
 * the store's own lock: begin/commit within are fine. */
P11K_WUR p11k_err store_nowait_enter(store_t *s);
void store_nowait_leave(store_t *s);
/* How long a waiting caller waits for the store in all (ms). */
unsigned store_busy_timeout_ms(void);
/* Changes whenever another connection committed a write. */
uint64_t store_data_version(store_t *s);

/* Meta: small named values. found=false when absent. */
P11K_WUR p11k_err store_meta_get(store_t *s, const char *name, uint8_t **val,
				 size_t *len, bool *found);
P11K_WUR p11k_err store_meta_put(store_t *s, const char *name,
				 const void *val, size_t len);
P11K_WUR p11k_err store_meta_del(store_t *s, const char *name);

P11K_WUR p11k_err store_seals_load(store_t *s, seal_rec **out, size_t *n);
void seal_recs_free(seal_rec *r, size_t n);
P11K_WUR p11k_err store_seal_add(store_t *s, const seal_rec *r);
P11K_WUR p11k_err store_seals_clear(store_t *s);
P11K_WUR p11k_err store_seals_delete_role(store_t *s, const char *role);

P11K_WUR p11k_err store_obj_insert(store_t *s, obj_rec *r);
P11K_WUR p11k_err store_obj_update(store_t *s, const obj_rec *r);
/* Replace only the sealed part of a row (a rekey). */
P11K_WUR p11k_err store_obj_set_sec(store_t *s, int64_t rowid, const uint8_t *sec,
				    size_t seclen);
/* found=false when the row is gone. */
P11K_WUR p11k_err store_obj_delete(store_t *s, int64_t rowid, bool *found);
P11K_WUR p11k_err store_obj_get(store_t *s, int64_t rowid, obj_rec *out,
				bool *found);
void obj_rec_free(obj_rec *r);
/* Calls fn for each matching record (pub and sec, valid during the
 * call). fn returning false stops the walk. */
P11K_WUR p11k_err store_obj_find(store_t *s, const obj_filter *f,
				 bool (*fn)(void *arg, const obj_rec *r),
				 void *arg);
/* SQLite's plan for the query store_obj_find runs for f (EXPLAIN QUERY
 * PLAN, its steps joined by "; "), for tests. */
P11K_WUR p11k_err store_obj_find_plan(store_t *s, const obj_filter *f, char *out,
				      size_t outlen);
P11K_WUR p11k_err store_obj_delete_all(store_t *s);
P11K_WUR p11k_err store_obj_count(store_t *s, uint64_t *n);

/* Backups (docs/BACKUP.md). annotate, when given, runs on the copy
 * before it is put in place (the backup's manifest); the copy has no
 * prepared statements: only meta and seal calls on it. */
typedef p11k_err (*store_annotate_fn)(store_t *copy, void *arg);
/* A consistent snapshot of s (SQLite's online backup API: one read
 * transaction, never a half-copied WAL) written to dest.tmp (mode 0600,
 * a self-contained rollback-journal file), fsynced, renamed to dest and
 * the folder fsynced. Nothing is left at dest.tmp on failure. */
P11K_WUR p11k_err store_backup_to(store_t *s, const char *dest, store_annotate_fn annotate,
				  void *arg);
/* Open a backup (or any store file) to read only: SQLite's immutable
 * mode, so nothing is written, locked or created beside it. The whole
 * file is checked (quick_check) and the schema version must be this
 * module's; why gets a one-line reason otherwise. Only reads (meta,
 * seals, store_obj_find/get) may be made on it. */
P11K_WUR p11k_err store_open_readonly(const char *path, store_t **out, char *why,
				      size_t whylen);
/* Replace live's content with src's in one write transaction (the
 * backup API into live): other connections and processes see the old
 * store or the new one, never a mix, and notice through data_version. */
P11K_WUR p11k_err store_replace_from(store_t *live, store_t *src);

#endif
