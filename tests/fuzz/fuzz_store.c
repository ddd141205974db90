/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The SQLite store (slots/store.c) on an arbitrary file: the bytes are
 * written to a scratch file, opened with store_open (no create) and, if
 * that works, everything is read back: meta, seals, every object by
 * search and by row, counts, and each public record through the codec.
 * Whatever the file holds, every call must fail cleanly or succeed.
 */
#include <fcntl.h>
#include <stdint.h>

#include "fuzz_common.h"
#include "slots/object.h"
#include "slots/store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define MAX_ROWS 256

typedef struct walk {
	int64_t rows[MAX_ROWS];
	size_t n;
} walk_t;

static bool collect(void *arg, const obj_rec *r)
{
	walk_t *w = arg;
	FUZZ_CHECK(r->publen == 0 || r->pub != NULL);
	object_t *o = calloc(1, sizeof(*o));
	if (o) {
		if (obj_deserialize(o, r->pub, r->publen, false))
			FUZZ_CHECK(obj_attr(o, CKA_VALUE) == NULL); /* public form */
		obj_free(o);
	}
	if (w->n < MAX_ROWS)
		w->rows[w->n++] = r->rowid;
	return w->n < MAX_ROWS;
}

static void remove_files(const char *path)
{
	static const char *const sfx[] = {"", "-wal", "-shm", "-journal"};
	char p[600];
	for (size_t i = 0; i < ARRAY_SIZE(sfx); i++) {
		snprintf(p, sizeof(p), "%s%s", path, sfx[i]);
		unlink(p);
	}
}

/* The store only ever answers with these. */
static bool store_err(p11k_err e)
{
	return e == P11K_OK || e == P11K_ERR_STORE || e == P11K_ERR_STORE_BUSY ||
	       e == P11K_ERR_NOMEM;
}

static void read_all(store_t *s)
{
	static const char *const names[] = {"uuid", "label", "user_pin", "so_pin",
					    "user_fail", "so_fail", "token_key"};
	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		uint8_t *v = NULL;
		size_t n = 0;
		bool found = false;
		p11k_err e = store_meta_get(s, names[i], &v, &n, &found);
		FUZZ_CHECK(store_err(e));
		FUZZ_CHECK(e != P11K_OK || !found || v != NULL);
		free(v);
	}
	seal_rec *seals = NULL;
	size_t nseals = 0;
	if (store_seals_load(s, &seals, &nseals) == P11K_OK) {
		for (size_t i = 0; i < nseals; i++)
			FUZZ_CHECK(seals[i].provider && seals[i].key_id &&
				   seals[i].key_version && seals[i].role &&
				   (seals[i].bloblen == 0 || seals[i].blob));
		seal_recs_free(seals, nseals);
	} else {
		FUZZ_CHECK(seals == NULL && nseals == 0);
	}
	uint64_t count = 0;
	FUZZ_CHECK(store_err(store_obj_count(s, &count)));
	(void)store_data_version(s);

	walk_t w = {.n = 0};
	obj_filter all = {0};
	FUZZ_CHECK(store_err(store_obj_find(s, &all, collect, &w)));
	uint64_t cls = CKO_SECRET_KEY;
	obj_filter some = {.label = (const uint8_t *)"k", .labellen = 1,
			   .cls = &cls, .public_only = true};
	walk_t w2 = {.n = 0};
	FUZZ_CHECK(store_err(store_obj_find(s, &some, collect, &w2)));
	for (size_t i = 0; i < w.n; i++) {
		obj_rec r;
		bool found = false;
		if (store_obj_get(s, w.rows[i], &r, &found) == P11K_OK) {
			if (found)
				FUZZ_CHECK((r.publen == 0 || r.pub) &&
					   (r.seclen == 0 || r.sec));
			obj_rec_free(&r);
		}
	}
	obj_rec r;
	bool found = true;
	if (store_obj_get(s, -1, &r, &found) == P11K_OK)
		obj_rec_free(&r);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static char path[512];
	if (!path[0]) {
		fuzz_quiet_log();
		snprintf(path, sizeof(path), "%s/store.db", fuzz_tmpdir());
	}
	remove_files(path);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	FUZZ_CHECK(fd >= 0);
	FUZZ_CHECK(write(fd, data, size) == (ssize_t)size);
	close(fd);

	store_t *s = NULL;
	p11k_err e = store_open(path, false, &s);
	FUZZ_CHECK((e == P11K_OK) == (s != NULL));
	if (s) {
		read_all(s);
		store_close(s);
	}
	remove_files(path);
	return 0;
}
