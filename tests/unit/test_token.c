/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The token model through its own interfaces (slots/token.h, seal.h,
 * records.h): seal and unseal of the token key, PIN records (verify,
 * wrong PIN counting, lock after PIN_MAX_TRIES), object records round
 * trip and tamper detection. A fake provider (a provider_ops table) stands
 * in for the KMS and a temporary store for the disk.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "common/crypto.h"
#include "common/log.h"
#include "common/secmem.h"
#include "p11kms/p11kms.h"
#include "slots/token.h"
#include "slots/token_priv.h"

#define SO "12345678"
#define USER "1234"

/* --- the fake KMS ----------------------------------------------------------
 * A "blob" is 0xB1 | version | aadlen(1) | aad | pt XOR 0x5c: decrypt
 * checks the AAD as a KMS checks the encryption context, and refuses a
 * blob whose version is disabled. Each provider state is one fake KMS
 * (fake, fake2) with its current version. */
typedef struct fake_kms {
	int encrypts, decrypts, describes;
	int version;       /* the current (primary) version, 1 when 0 */
	unsigned disabled; /* bit v: version v is disabled */
	p11k_err fail;     /* every call fails with this when set */
	long long born;    /* describe's version_created_at */
} fake_kms;
static fake_kms fake, fake2;

static int cur_version(const fake_kms *k)
{
	return k->version ? k->version : 1;
}

static const char *fake_default_key(void *st)
{
	(void)st;
	return "fake-key";
}

static p11k_err fake_encrypt(void *st, const char *key_id, const uint8_t *pt, size_t ptlen,
			     const uint8_t *aad, size_t aadlen, uint8_t **blob, size_t *bloblen,
			     char *kv, size_t kvlen, provider_status *s)
{
	fake_kms *k = st;
	(void)key_id;
	(void)s;
	k->encrypts++;
	if (k->fail)
		return k->fail;
	if (k->disabled & (1u << cur_version(k)))
		return P11K_ERR_KEY_DISABLED;
	uint8_t *b = malloc(3 + aadlen + ptlen);
	if (!b)
		return P11K_ERR_NOMEM;
	b[0] = 0xB1;
	b[1] = (uint8_t)cur_version(k);
	b[2] = (uint8_t)aadlen;
	memcpy(b + 3, aad, aadlen);
	for (size_t i = 0; i < ptlen; i++)
		b[3 + aadlen + i] = pt[i] ^ 0x5c;
	*blob = b;
	*bloblen = 3 + aadlen + ptlen;
	snprintf(kv, kvlen, "v%d", cur_version(k));
	return P11K_OK;
}

static p11k_err fake_decrypt(void *st, const char *key_id, const uint8_t *blob,
			     size_t bloblen, const uint8_t *aad, size_t aadlen, uint8_t **pt,
			     size_t *ptlen, provider_status *s)
{
	fake_kms *k = st;
	(void)key_id;
	(void)s;
	k->decrypts++;
	if (k->fail)
		return k->fail;
	if (bloblen < 3 || blob[0] != 0xB1 || blob[2] != aadlen || bloblen < 3 + aadlen ||
	    memcmp(blob + 3, aad, aadlen) != 0)
		return P11K_ERR_INVALID_CIPHERTEXT;
	if (blob[1] < 32 && (k->disabled & (1u << blob[1])))
		return P11K_ERR_KEY_DISABLED;
	size_t n = bloblen - 3 - aadlen;
	uint8_t *p = sec_alloc(n ? n : 1);
	if (!p)
		return P11K_ERR_NOMEM;
	for (size_t i = 0; i < n; i++)
		p[i] = blob[3 + aadlen + i] ^ 0x5c;
	*pt = p;
	*ptlen = n;
	return P11K_OK;
}

static p11k_err fake_describe(void *st, const char *key_id, key_info *out,
			      provider_status *s)
{
	fake_kms *k = st;
	(void)key_id;
	(void)s;
	k->describes++;
	memset(out, 0, sizeof(*out));
	out->state = k->disabled & (1u << cur_version(k)) ? KEY_STATE_DISABLED
							   : KEY_STATE_ENABLED;
	snprintf(out->primary_version, sizeof(out->primary_version), "v%d", cur_version(k));
	out->version_created_at = (uint64_t)k->born;
	return k->fail ? k->fail : P11K_OK;
}

static size_t fake_max(void *st, size_t n)
{
	(void)st;
	return n + 300;
}

static const provider_ops fake_ops = {
	.type = "fake",
	.default_seal_key = fake_default_key,
	.describe = fake_describe,
	.encrypt = fake_encrypt,
	.decrypt = fake_decrypt,
	.max_blob_len = fake_max,
};

/* --- a token on a temporary store ------------------------------------------ */

static char tmpdir[] = "/tmp/p11kms-test-token-XXXXXX";
static char logpath[300];
static int counter;

/* The token under test is slot 0 of a two-entry slot table; the second
 * token is only a provider (fake2) the first may seal with. */
typedef struct fixture {
	provider_cfg cfg, cfg2;
	seal_ref refs[2];
	token_t t;
	char path[300];
} fixture;

static token_t table[2];

static void fx_new(fixture *f, login_mode login)
{
	memset(f, 0, sizeof(*f));
	memset(&fake, 0, sizeof(fake));
	memset(&fake2, 0, sizeof(fake2));
	f->refs[0].provider = 0;
	f->cfg.seals = f->refs;
	f->cfg.nseals = 1;
	f->cfg.seal_policy = SEAL_ANY;
	f->cfg2.name = "fake2";
	f->cfg2.ops = &fake_ops;
	/* The slot table the seal looks providers up in: slot 0 is t. */
	memset(table, 0, sizeof(table));
	table[1].cfg = &f->cfg2;
	table[1].prov = &fake2;
	slots.tokens = table;
	slots.ntokens = 2;
	snprintf(f->path, sizeof(f->path), "%s/t%d.db", tmpdir, ++counter);
	f->cfg.name = "fake";
	f->cfg.ops = &fake_ops;
	f->cfg.store = f->path;
	f->cfg.login = login;
	f->cfg.pin_kdf_cost = 12; /* the least scrypt the config allows */
	f->cfg.revalidate_seconds = 3600;
	f->cfg.offline_grace_seconds = 3600;
	f->cfg.max_sessions = 16;
	f->t.cfg = &f->cfg;
	f->t.prov = &fake;
	table[0].cfg = &f->cfg;
	table[0].prov = &fake;
	f->t.slot_id = 1;
	f->t.login = NO_LOGIN;
	f->t.nsessions = 1; /* the session C_Login comes from */
	hmap_init(&f->t.by_rowid);
	hmap_init(&f->t.session_objs);
}

static void fx_free(fixture *f)
{
	token_forget_objects_inlock(&f->t);
	hmap_free(&f->t.by_rowid);
	hmap_free(&f->t.session_objs);
	sec_free(f->t.tk);
	store_close(f->t.store);
}

static CK_RV init_token(fixture *f)
{
	CK_UTF8CHAR label[32];
	CK_ULONG dev = 0;
	memset(label, ' ', sizeof(label));
	memcpy(label, "unit", 4);
	size_t open = f->t.nsessions;
	f->t.nsessions = 0; /* C_InitToken wants none */
	CK_RV rv = token_init(&f->t, (const CK_UTF8CHAR *)SO, 8, label, &dev);
	f->t.nsessions = open;
	return rv;
}

static CK_RV login(fixture *f, CK_USER_TYPE who, const char *pin)
{
	CK_ULONG dev = 0;
	return token_login(&f->t, who, (const CK_UTF8CHAR *)pin, strlen(pin), &dev);
}

/* An initialized token with a user PIN, nobody logged in. */
static void ready(fixture *f, login_mode mode)
{
	fx_new(f, mode);
	assert_int_equal(init_token(f), CKR_OK);
	assert_int_equal(login(f, CKU_SO, SO), CKR_OK);
	CK_ULONG dev = 0;
	assert_int_equal(token_init_pin(&f->t, (const CK_UTF8CHAR *)USER, 4, &dev), CKR_OK);
	assert_int_equal(token_logout_inlock(&f->t), CKR_OK);
}

static uint32_t stored_u32(fixture *f, const char *name)
{
	uint8_t *v = NULL;
	size_t n = 0;
	bool found = false;
	assert_int_equal(store_meta_get(f->t.store, name, &v, &n, &found), P11K_OK);
	uint32_t r = found && n == 4 ? (uint32_t)v[0] << 24 | (uint32_t)v[1] << 16 |
					       (uint32_t)v[2] << 8 | v[3]
				     : 0;
	free(v);
	return r;
}

/* --- seal / unseal ------------------------------------------------------------ */

/* login=required: the key exists only while someone is logged in, and both
 * roles' seals open to the same key. */
static void test_seal_required_roles_share_the_key(void **state)
{
	(void)state;
	fixture f;
	ready(&f, LOGIN_REQUIRED);
	assert_null(f.t.tk);
	assert_int_equal(login(&f, CKU_USER, USER), CKR_OK);
	assert_non_null(f.t.tk);
	uint8_t user_tk[TK_LEN];
	memcpy(user_tk, f.t.tk, TK_LEN);
	assert_int_equal(token_logout_inlock(&f.t), CKR_OK);
	assert_null(f.t.tk);
	assert_int_equal(login(&f, CKU_SO, SO), CKR_OK);
	assert_memory_equal(f.t.tk, user_tk, TK_LEN);
	assert_int_equal(f.t.unsealing, 0);
	fx_free(&f);
}

/* login=optional: one seal ("any"), unsealed at first need. */
static void test_seal_optional_unseals_on_need(void **state)
{
	(void)state;
	fixture f;
	fx_new(&f, LOGIN_OPTIONAL);
	assert_int_equal(init_token(&f), CKR_OK);
	assert_non_null(f.t.tk);
	uint8_t tk[TK_LEN];
	memcpy(tk, f.t.tk, TK_LEN);
	sec_free(f.t.tk);
	f.t.tk = NULL;
	int before = fake.decrypts;
	CK_ULONG dev = 0;
	assert_int_equal(token_ensure_tk(&f.t, &dev), CKR_OK);
	assert_int_equal(fake.decrypts, before + 1);
	assert_memory_equal(f.t.tk, tk, TK_LEN);
	/* Present: no second KMS call. */
	assert_int_equal(token_ensure_tk(&f.t, &dev), CKR_OK);
	assert_int_equal(fake.decrypts, before + 1);
	fx_free(&f);
}

/* The KMS refusing: a device error that names why, nothing unsealed. */
static void test_unseal_refused(void **state)
{
	(void)state;
	fixture f;
	fx_new(&f, LOGIN_OPTIONAL);
	assert_int_equal(init_token(&f), CKR_OK);
	sec_free(f.t.tk);
	f.t.tk = NULL;
	fake.fail = P11K_ERR_ACCESS_DENIED;
	CK_ULONG dev = 0;
	assert_int_equal(token_ensure_tk(&f.t, &dev), CKR_DEVICE_ERROR);
	assert_int_not_equal(dev, 0);
	assert_null(f.t.tk);
	assert_int_equal(f.t.last.err, P11K_ERR_ACCESS_DENIED);
	assert_int_equal(f.t.unsealing, 0);
	fx_free(&f);
}

/* A seal bound to another token's uuid does not open (the context). */
static void test_seal_bound_to_uuid(void **state)
{
	(void)state;
	fixture f;
	fx_new(&f, LOGIN_OPTIONAL);
	assert_int_equal(init_token(&f), CKR_OK);
	sec_free(f.t.tk);
	f.t.tk = NULL;
	f.t.uuid[0] ^= 1;
	CK_ULONG dev = 0;
	assert_int_equal(token_ensure_tk(&f.t, &dev), CKR_DEVICE_ERROR);
	assert_null(f.t.tk);
	fx_free(&f);
}

/* The KMS refusing at C_InitToken leaves no token behind. */
static void test_init_seal_refused(void **state)
{
	(void)state;
	fixture f;
	fx_new(&f, LOGIN_REQUIRED);
	fake.fail = P11K_ERR_KEY_DISABLED;
	assert_int_equal(init_token(&f), CKR_DEVICE_ERROR);
	assert_false(f.t.initialized);
	fake.fail = P11K_OK;
	assert_int_equal(init_token(&f), CKR_OK);
	assert_true(f.t.initialized);
	fx_free(&f);
}

/* --- PIN records -------------------------------------------------------------- */

static void test_pin_wrong_is_counted_and_reset(void **state)
{
	(void)state;
	fixture f;
	ready(&f, LOGIN_REQUIRED);
	assert_int_equal(login(&f, CKU_USER, "9999"), CKR_PIN_INCORRECT);
	assert_int_equal(login(&f, CKU_USER, "99999"), CKR_PIN_INCORRECT);
	assert_int_equal(f.t.user_fail, 2);
	/* Shorter than any PIN: wrong, but no try spent. */
	assert_int_equal(login(&f, CKU_USER, "12"), CKR_PIN_INCORRECT);
	assert_int_equal(login(&f, CKU_USER, ""), CKR_PIN_INCORRECT);
	assert_int_equal(f.t.user_fail, 2);
	assert_int_equal(stored_u32(&f, "user_fail"), 2); /* other processes see it */
	assert_int_equal(f.t.login, NO_LOGIN);
	assert_null(f.t.tk);
	assert_int_equal(login(&f, CKU_USER, USER), CKR_OK);
	assert_int_equal(f.t.user_fail, 0);
	assert_int_equal(stored_u32(&f, "user_fail"), 0);
	fx_free(&f);
}

static void test_pin_locks_after_max_tries(void **state)
{
	(void)state;
	fixture f;
	ready(&f, LOGIN_REQUIRED);
	for (int i = 0; i < PIN_MAX_TRIES; i++)
		assert_int_equal(login(&f, CKU_USER, "0000"), CKR_PIN_INCORRECT);
	int decrypts = fake.decrypts;
	assert_int_equal(login(&f, CKU_USER, USER), CKR_PIN_LOCKED);
	assert_int_equal(fake.decrypts, decrypts); /* nothing asked of the KMS */
	assert_int_equal(f.t.login, NO_LOGIN);
	/* The SO is a separate count. */
	assert_int_equal(login(&f, CKU_SO, SO), CKR_OK);
	fx_free(&f);
}

static void test_pin_set_and_lengths(void **state)
{
	(void)state;
	fixture f;
	ready(&f, LOGIN_REQUIRED);
	assert_int_equal(token_set_pin(&f.t, CKU_USER, (const CK_UTF8CHAR *)USER, 4,
				       (const CK_UTF8CHAR *)"abc", 3),
			 CKR_PIN_LEN_RANGE);
	assert_int_equal(token_set_pin(&f.t, CKU_USER, (const CK_UTF8CHAR *)"nope", 4,
				       (const CK_UTF8CHAR *)"56789", 5),
			 CKR_PIN_INCORRECT);
	assert_int_equal(f.t.user_fail, 1);
	assert_int_equal(token_set_pin(&f.t, CKU_USER, (const CK_UTF8CHAR *)USER, 4,
				       (const CK_UTF8CHAR *)"56789", 5),
			 CKR_OK);
	assert_int_equal(login(&f, CKU_USER, USER), CKR_PIN_INCORRECT);
	/* The user's seal was re-wrapped under the new PIN: it unseals. */
	assert_int_equal(login(&f, CKU_USER, "56789"), CKR_OK);
	assert_non_null(f.t.tk);
	fx_free(&f);
}

/* Re-initializing needs the SO PIN, counts a wrong one, and wipes
 * everything of the old token. */
static void test_reinit_needs_so_pin(void **state)
{
	(void)state;
	fixture f;
	ready(&f, LOGIN_REQUIRED);
	uint8_t uuid[16];
	memcpy(uuid, f.t.uuid, 16);
	CK_UTF8CHAR label[32];
	CK_ULONG dev = 0;
	memset(label, ' ', sizeof(label));
	f.t.nsessions = 0;
	assert_int_equal(token_init(&f.t, (const CK_UTF8CHAR *)"87654321", 8, label, &dev),
			 CKR_PIN_INCORRECT);
	f.t.nsessions = 1;
	assert_int_equal(f.t.so_fail, 1);
	assert_memory_equal(f.t.uuid, uuid, 16);
	uint64_t gen = f.t.gen;
	assert_int_equal(init_token(&f), CKR_OK);
	assert_memory_not_equal(f.t.uuid, uuid, 16);
	assert_true(f.t.gen > gen);
	assert_false(f.t.user_pin_set);
	assert_int_equal(f.t.so_fail, 0);
	fx_free(&f);
}

/* Every session closed during the login: it does not take effect. */
static void test_login_without_sessions(void **state)
{
	(void)state;
	fixture f;
	ready(&f, LOGIN_REQUIRED);
	f.t.nsessions = 0;
	assert_int_equal(login(&f, CKU_USER, USER), CKR_SESSION_CLOSED);
	assert_int_equal(f.t.login, NO_LOGIN);
	assert_null(f.t.tk);
	fx_free(&f);
}

/* --- object records ---------------------------------------------------------- */

static object_t *secret_key(token_t *t, const uint8_t *val, size_t len)
{
	object_t *o = calloc(1, sizeof(*o));
	assert_non_null(o);
	CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
	CK_KEY_TYPE kt = CKK_AES;
	CK_BBOOL yes = CK_TRUE;
	assert_true(obj_set(o, CKA_CLASS, &cls, sizeof(cls)));
	assert_true(obj_set(o, CKA_KEY_TYPE, &kt, sizeof(kt)));
	assert_true(obj_set(o, CKA_TOKEN, &yes, 1));
	assert_true(obj_set(o, CKA_PRIVATE, &yes, 1));
	assert_true(obj_set(o, CKA_SENSITIVE, &yes, 1));
	assert_true(obj_set(o, CKA_LABEL, "rec", 3));
	assert_true(obj_set(o, CKA_VALUE, val, len));
	assert_true(crypto_random(o->uid, 16));
	o->tok = t;
	o->sec_loaded = true;
	return o;
}

static void test_records_round_trip(void **state)
{
	(void)state;
	fixture f;
	ready(&f, LOGIN_REQUIRED);
	uint8_t val[32];
	assert_true(crypto_random(val, sizeof(val)));
	object_t *o = secret_key(&f.t, val, sizeof(val));
	/* No token key, no record. */
	assert_int_equal(token_obj_persist_inlock(&f.t, o), CKR_USER_NOT_LOGGED_IN);
	assert_int_equal(login(&f, CKU_USER, USER), CKR_OK);
	assert_int_equal(token_obj_persist_inlock(&f.t, o), CKR_OK);
	assert_true(o->rowid > 0);
	/* The secret is not in the store in the clear. */
	obj_rec r;
	bool found = false;
	assert_int_equal(store_obj_get(f.t.store, o->rowid, &r, &found), P11K_OK);
	assert_true(found);
	assert_null(memmem(r.sec, r.seclen, val, sizeof(val)));
	assert_null(memmem(r.pub, r.publen, val, sizeof(val)));
	obj_rec_free(&r);
	/* Dropped and loaded again from the record. */
	obj_drop_secrets(o);
	assert_false(o->sec_loaded);
	assert_int_equal(token_obj_refresh_inlock(&f.t, o, true), CKR_OK);
	const attr_t *v = obj_attr(o, CKA_VALUE);
	assert_non_null(v);
	assert_int_equal(v->len, sizeof(val));
	assert_memory_equal(v->val, val, sizeof(val));
	/* An update is read back too. */
	assert_true(obj_set(o, CKA_LABEL, "rec2", 4));
	assert_int_equal(token_obj_update_inlock(&f.t, o), CKR_OK);
	/* Found through the store, registered with a handle. */
	CK_ATTRIBUTE q = {CKA_LABEL, "rec2", 4};
	CK_OBJECT_HANDLE *h = NULL;
	size_t n = 0;
	assert_int_equal(token_obj_find_inlock(&f.t, &q, 1, true, &h, &n), CKR_OK);
	assert_int_equal(n, 1);
	object_t *fo = hmap_get(&slots.objects, h[0]);
	assert_non_null(fo);
	assert_memory_equal(fo->uid, o->uid, 16);
	free(h);
	assert_int_equal(token_obj_delete_inlock(&f.t, o), CKR_OK);
	assert_int_equal(token_obj_delete_inlock(&f.t, o), CKR_OBJECT_HANDLE_INVALID);
	obj_free(o);
	fx_free(&f);
}

/* A record changed on disk (a flipped byte of the sealed part, or of the
 * public part that is its AAD) no longer authenticates. */
static void tamper(fixture *f, int64_t rowid, const char *column)
{
	sqlite3 *db;
	char sql[200];
	assert_int_equal(sqlite3_open(f->path, &db), SQLITE_OK);
	snprintf(sql, sizeof(sql),
		 "UPDATE objects SET %s = (CASE WHEN substr(%s, -1) = x'00' THEN "
		 "substr(%s, 1, length(%s) - 1) || x'01' ELSE substr(%s, 1, "
		 "length(%s) - 1) || x'00' END) WHERE id = %lld",
		 column, column, column, column, column, column, (long long)rowid);
	assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
	sqlite3_close(db);
}

static void test_records_tamper_detected(void **state)
{
	(void)state;
	fixture f;
	ready(&f, LOGIN_REQUIRED);
	assert_int_equal(login(&f, CKU_USER, USER), CKR_OK);
	uint8_t val[16] = {7};
	object_t *o = secret_key(&f.t, val, sizeof(val));
	assert_int_equal(token_obj_persist_inlock(&f.t, o), CKR_OK);
	tamper(&f, o->rowid, "sec");
	obj_drop_secrets(o);
	assert_int_equal(token_obj_refresh_inlock(&f.t, o, true), CKR_DEVICE_ERROR);
	assert_null(obj_attr(o, CKA_VALUE));
	obj_free(o);

	/* The public part is the AAD: changing it breaks the seal as well. */
	o = secret_key(&f.t, val, sizeof(val));
	assert_int_equal(token_obj_persist_inlock(&f.t, o), CKR_OK);
	obj_rec r;
	bool found;
	assert_int_equal(store_obj_get(f.t.store, o->rowid, &r, &found), P11K_OK);
	obj_rec_free(&r);
	tamper(&f, o->rowid, "pub");
	obj_drop_secrets(o);
	o->stale = true; /* as sync marks it after another writer */
	CK_RV rv = token_obj_refresh_inlock(&f.t, o, true);
	assert_true(rv == CKR_DEVICE_ERROR || rv == CKR_OBJECT_HANDLE_INVALID);
	assert_null(obj_attr(o, CKA_VALUE));
	obj_free(o);
	fx_free(&f);
}


/* --- the key lifecycle (seal format 2) --------------------------------------- */

/* The version of the stored "kms" row of provider prov ("" if none). */
static const char *row_version(fixture *f, const char *prov)
{
	static char v[64];
	seal_rec *r = NULL;
	size_t n = 0;
	v[0] = 0;
	assert_int_equal(store_seals_load(f->t.store, &r, &n), P11K_OK);
	for (size_t i = 0; i < n; i++)
		if (strcmp(r[i].role, "kms") == 0 && strcmp(r[i].provider, prov) == 0)
			snprintf(v, sizeof(v), "%s", r[i].key_version);
	seal_recs_free(r, n);
	return v;
}

static size_t kms_rows(fixture *f)
{
	seal_rec *r = NULL;
	size_t n = 0, k = 0;
	assert_int_equal(store_seals_load(f->t.store, &r, &n), P11K_OK);
	for (size_t i = 0; i < n; i++)
		k += strcmp(r[i].role, "kms") == 0;
	seal_recs_free(r, n);
	return k;
}

/* The log written since the last call. */
static const char *new_log(void)
{
	static char buf[16384];
	static long seen;
	FILE *fp = fopen(logpath, "r");
	size_t n = 0;
	if (fp) {
		fseek(fp, seen, SEEK_SET);
		n = fread(buf, 1, sizeof(buf) - 1, fp);
		seen = ftell(fp);
		fclose(fp);
	}
	buf[n] = 0;
	return buf;
}

/* Rotate, log in (which reseals), retire the old version: both roles
 * still log in and the primary seal names the new version. */
static void test_rotation_reseals_at_login(void **state)
{
	(void)state;
	fixture f;
	ready(&f, LOGIN_REQUIRED);
	assert_string_equal(row_version(&f, "fake"), "v1");
	fake.version = 2;
	assert_int_equal(login(&f, CKU_USER, USER), CKR_OK);
	assert_string_equal(row_version(&f, "fake"), "v2");
	assert_string_equal(f.t.seal_key_version, "v2");
	assert_int_equal(token_logout_inlock(&f.t), CKR_OK);
	fake.disabled = 1u << 1;
	assert_int_equal(login(&f, CKU_USER, USER), CKR_OK);
	assert_int_equal(token_logout_inlock(&f.t), CKR_OK);
	assert_int_equal(login(&f, CKU_SO, SO), CKR_OK);
	fx_free(&f);
}

/* Without the reseal, retiring the old version locks the token out;
 * the operator's reseal needs no PIN, only the KMS. */
static void test_reseal_without_pin(void **state)
{
	(void)state;
	fixture f;
	ready(&f, LOGIN_REQUIRED);
	fake.version = 2;
	bool changed = false;
	CK_ULONG dev = 0;
	int enc = fake.encrypts;
	assert_null(f.t.tk);
	assert_int_equal(token_reseal(&f.t, false, &changed, &dev), CKR_OK);
	assert_true(changed);
	assert_int_equal(fake.encrypts, enc + 1);
	assert_null(f.t.tk); /* nobody logged in: the token key stayed sealed */
	assert_string_equal(row_version(&f, "fake"), "v2");
	/* Current: nothing to do. */
	assert_int_equal(token_reseal(&f.t, false, &changed, &dev), CKR_OK);
	assert_false(changed);
	fake.disabled = 1u << 1;
	assert_int_equal(login(&f, CKU_USER, USER), CKR_OK);
	assert_int_equal(token_logout_inlock(&f.t), CKR_OK);
	assert_int_equal(login(&f, CKU_SO, SO), CKR_OK);
	fx_free(&f);
}

/* The same rotation when the old version is disabled first: the token
 * cannot be opened, and says why. */
static void test_retired_before_reseal(void **state)
{
	(void)state;
	fixture f;
	ready(&f, LOGIN_REQUIRED);
	fake.version = 2;
	fake.disabled = 1u << 1;
	CK_ULONG dev = 0;
	assert_int_equal(token_login(&f.t, CKU_USER, (const CK_UTF8CHAR *)USER, 4, &dev),
			 CKR_DEVICE_ERROR);
	assert_int_equal(dev, P11KMS_DEVERR_KEY_DISABLED);
	bool changed = true;
	assert_int_equal(token_reseal(&f.t, false, &changed, &dev), CKR_DEVICE_ERROR);
	assert_false(changed);
	fx_free(&f);
}

static void two_seals(fixture *f, seal_policy pol)
{
	f->refs[1].provider = 1;
	f->cfg.nseals = 2;
	f->cfg.seal_policy = pol;
}

/* "any": either KMS alone opens the token. */
static void test_two_seals_any(void **state)
{
	(void)state;
	fixture f;
	fx_new(&f, LOGIN_REQUIRED);
	two_seals(&f, SEAL_ANY);
	assert_int_equal(init_token(&f), CKR_OK);
	assert_int_equal(kms_rows(&f), 2);
	assert_int_equal(login(&f, CKU_SO, SO), CKR_OK);
	assert_int_equal(token_logout_inlock(&f.t), CKR_OK);
	fake.fail = P11K_ERR_UNREACHABLE;
	assert_int_equal(login(&f, CKU_SO, SO), CKR_OK);
	assert_int_equal(token_logout_inlock(&f.t), CKR_OK);
	fake.fail = P11K_OK;
	fake2.fail = P11K_ERR_KEY_DISABLED;
	assert_int_equal(login(&f, CKU_SO, SO), CKR_OK);
	assert_int_equal(token_logout_inlock(&f.t), CKR_OK);
	/* A failed reseal never drops a seal. */
	assert_int_equal(kms_rows(&f), 2);
	fake.fail = P11K_ERR_UNREACHABLE;
	assert_int_equal(login(&f, CKU_SO, SO), CKR_DEVICE_ERROR);
	assert_null(f.t.tk);
	fx_free(&f);
}

/* "all": every KMS must answer; each row alone is only a share. */
static void test_two_seals_all(void **state)
{
	(void)state;
	fixture f;
	fx_new(&f, LOGIN_OPTIONAL);
	two_seals(&f, SEAL_ALL);
	assert_int_equal(init_token(&f), CKR_OK);
	uint8_t tk[TK_LEN];
	memcpy(tk, f.t.tk, TK_LEN);
	sec_free(f.t.tk);
	f.t.tk = NULL;
	CK_ULONG dev = 0;
	fake2.fail = P11K_ERR_KEY_DISABLED;
	assert_int_equal(token_ensure_tk(&f.t, &dev), CKR_DEVICE_ERROR);
	assert_int_equal(dev, P11KMS_DEVERR_KEY_DISABLED);
	assert_null(f.t.tk);
	fake2.fail = P11K_OK;
	assert_int_equal(token_ensure_tk(&f.t, &dev), CKR_OK);
	assert_memory_equal(f.t.tk, tk, TK_LEN);
	fx_free(&f);
}

/* Changing the policy or the key list reseals at the next unseal; a key
 * no longer listed loses its seal once the listed ones have theirs. */
static void test_policy_and_list_change(void **state)
{
	(void)state;
	fixture f;
	fx_new(&f, LOGIN_OPTIONAL);
	two_seals(&f, SEAL_ANY);
	assert_int_equal(init_token(&f), CKR_OK);
	sec_free(f.t.tk);
	f.t.tk = NULL;
	f.cfg.seal_policy = SEAL_ALL;
	CK_ULONG dev = 0;
	assert_int_equal(token_ensure_tk(&f.t, &dev), CKR_OK);
	sec_free(f.t.tk);
	f.t.tk = NULL;
	fake2.fail = P11K_ERR_UNREACHABLE; /* "all" now: one KMS is not enough */
	assert_int_equal(token_ensure_tk(&f.t, &dev), CKR_DEVICE_ERROR);
	fake2.fail = P11K_OK;
	/* Only fake2 listed now. */
	f.refs[0].provider = 1;
	f.cfg.nseals = 1;
	f.cfg.seal_policy = SEAL_ANY;
	assert_int_equal(token_ensure_tk(&f.t, &dev), CKR_OK);
	assert_int_equal(kms_rows(&f), 1);
	assert_string_equal(row_version(&f, "fake"), "");
	sec_free(f.t.tk);
	f.t.tk = NULL;
	fake.fail = P11K_ERR_KEY_NOT_FOUND; /* the old key is gone: no matter */
	assert_int_equal(token_ensure_tk(&f.t, &dev), CKR_OK);
	fx_free(&f);
}

/* C_SetPIN and C_InitPIN touch only the PIN layer: no KMS call. */
static void test_pin_changes_need_no_kms(void **state)
{
	(void)state;
	fixture f;
	ready(&f, LOGIN_REQUIRED);
	int enc = fake.encrypts, dec = fake.decrypts;
	assert_int_equal(token_set_pin(&f.t, CKU_USER, (const CK_UTF8CHAR *)USER, 4,
				       (const CK_UTF8CHAR *)"4321", 4),
			 CKR_OK);
	assert_int_equal(fake.encrypts, enc);
	assert_int_equal(fake.decrypts, dec);
	assert_int_equal(login(&f, CKU_USER, "4321"), CKR_OK);
	assert_int_equal(token_logout_inlock(&f.t), CKR_OK);
	assert_int_equal(login(&f, CKU_SO, SO), CKR_OK);
	enc = fake.encrypts;
	dec = fake.decrypts;
	CK_ULONG dev = 0;
	assert_int_equal(token_init_pin(&f.t, (const CK_UTF8CHAR *)"5555", 4, &dev), CKR_OK);
	assert_int_equal(fake.encrypts, enc);
	assert_int_equal(fake.decrypts, dec);
	assert_int_equal(token_logout_inlock(&f.t), CKR_OK);
	assert_int_equal(login(&f, CKU_USER, "5555"), CKR_OK);
	fx_free(&f);
}

/* A version older than rotation_age_days is named in a warning at each
 * login; a fresh one is not. */
static void test_rotation_age_warning(void **state)
{
	(void)state;
	fixture f;
	ready(&f, LOGIN_REQUIRED);
	f.cfg.rotation_age_days = 90;
	fake.born = (long long)time(NULL) - 100LL * 86400;
	(void)new_log();
	assert_int_equal(login(&f, CKU_USER, USER), CKR_OK);
	const char *log = new_log();
	if (!strstr(log, "rotation due") || !strstr(log, "100 days ago"))
		fail_msg("no rotation warning in: %s", log);
	assert_int_equal(token_logout_inlock(&f.t), CKR_OK);
	fake.born = (long long)time(NULL) - 89LL * 86400;
	assert_int_equal(login(&f, CKU_USER, USER), CKR_OK);
	assert_null(strstr(new_log(), "rotation due"));
	fx_free(&f);
}

/* Revalidation reseals too, and under "any" revokes only when no key
 * is usable. */
static void test_revalidation_reseals_and_judges(void **state)
{
	(void)state;
	fixture f;
	fx_new(&f, LOGIN_OPTIONAL);
	two_seals(&f, SEAL_ANY);
	f.cfg.revalidate_seconds = 1;
	assert_int_equal(init_token(&f), CKR_OK);
	fake.version = 2;
	CK_ULONG dev = 0;
	f.t.last_check = 0;
	assert_int_equal(token_revalidate(&f.t, &dev), CKR_OK);
	assert_string_equal(row_version(&f, "fake"), "v2");
	assert_string_equal(row_version(&f, "fake2"), "v1");
	fake.disabled = 1u << 2; /* the current version of one key */
	f.t.last_check = 0;
	assert_int_equal(token_revalidate(&f.t, &dev), CKR_OK);
	assert_false(f.t.revoked);
	fake2.disabled = 1u << 1;
	f.t.last_check = 0;
	assert_int_equal(token_revalidate(&f.t, &dev), CKR_DEVICE_ERROR);
	assert_true(f.t.revoked);
	assert_null(f.t.tk);
	assert_int_equal(dev, P11KMS_DEVERR_KEY_DISABLED);
	fake2.disabled = 0;
	f.t.last_check = 0;
	assert_int_equal(token_revalidate(&f.t, &dev), CKR_OK);
	assert_false(f.t.revoked);
	fx_free(&f);
}

static void count_progress(void *arg, uint64_t done, uint64_t total)
{
	uint64_t *last = arg;
	assert_true(done <= total);
	assert_true(done >= last[0]);
	last[0] = done;
	last[1] = total;
}

/* Rekey: a new token key, every record moved to it, the old one gone;
 * no KMS call; the records read back, also after a new login. */
static void test_rekey(void **state)
{
	(void)state;
	fixture f;
	ready(&f, LOGIN_REQUIRED);
	assert_int_equal(login(&f, CKU_USER, USER), CKR_OK);
	enum { N = 600 };
	static uint8_t vals[N][16];
	static int64_t rows[N];
	for (int i = 0; i < N; i++) {
		assert_true(crypto_random(vals[i], 16));
		object_t *o = secret_key(&f.t, vals[i], 16);
		assert_int_equal(token_obj_persist_inlock(&f.t, o), CKR_OK);
		rows[i] = o->rowid;
		obj_free(o);
	}
	uint8_t old[TK_LEN];
	memcpy(old, f.t.tk, TK_LEN);
	int enc = fake.encrypts, dec = fake.decrypts;
	uint64_t prog[2] = {0, 0};
	CK_ULONG dev = 0;
	assert_int_equal(token_rekey(&f.t, count_progress, prog, &dev), CKR_OK);
	assert_int_equal(prog[0], N);
	assert_int_equal(prog[1], N);
	assert_int_equal(fake.encrypts, enc);
	assert_int_equal(fake.decrypts, dec);
	assert_memory_not_equal(f.t.tk, old, TK_LEN);
	assert_false(TK_HAS_NEXT(f.t.tk));
	/* Every record opens under the new key only. */
	for (int i = 0; i < N; i += 37) {
		obj_rec r;
		bool found = false;
		assert_int_equal(store_obj_get(f.t.store, rows[i], &r, &found), P11K_OK);
		assert_true(found);
		dbuf_t aad;
		dbuf_init(&aad, 1u << 20, false);
		assert_true(record_aad(r.uid, r.pub, r.publen, &aad));
		uint8_t *pt = NULL;
		size_t ptlen = 0;
		assert_int_not_equal(gcm_open(old, aad.p, aad.len, r.sec, r.seclen, &pt, &ptlen),
				     P11K_OK);
		assert_int_equal(gcm_open(f.t.tk, aad.p, aad.len, r.sec, r.seclen, &pt, &ptlen),
				 P11K_OK);
		sec_free(pt);
		dbuf_free(&aad);
		obj_rec_free(&r);
	}
	/* A new login finds the new key; objects read back. */
	assert_int_equal(token_logout_inlock(&f.t), CKR_OK);
	assert_int_equal(login(&f, CKU_SO, SO), CKR_OK);
	CK_ATTRIBUTE q = {CKA_LABEL, "rec", 3};
	CK_OBJECT_HANDLE *h = NULL;
	size_t n = 0;
	assert_int_equal(token_obj_find_inlock(&f.t, &q, 0, true, &h, &n), CKR_OK);
	assert_int_equal(n, N);
	for (size_t i = 0; i < n; i += 53) {
		object_t *o = hmap_get(&slots.objects, h[i]);
		assert_int_equal(token_obj_refresh_inlock(&f.t, o, true), CKR_OK);
		assert_non_null(obj_attr(o, CKA_VALUE));
	}
	free(h);
	/* A second rekey works the same; none while logged out. */
	assert_int_equal(token_rekey(&f.t, NULL, NULL, &dev), CKR_OK);
	assert_int_equal(token_logout_inlock(&f.t), CKR_OK);
	assert_int_equal(token_rekey(&f.t, NULL, NULL, &dev), CKR_USER_NOT_LOGGED_IN);
	fx_free(&f);
}

static int group_setup(void **state)
{
	(void)state;
	if (!mkdtemp(tmpdir))
		return -1;
	/* Refusals log errors by design; the lifecycle tests read the log. */
	snprintf(logpath, sizeof(logpath), "%s/log", tmpdir);
	log_configure(LOG_WARN, logpath);
	hmap_init(&slots.objects);
	/* The token functions expect THE lock held: this one thread holds
	 * it throughout (jobs release and retake it). */
	pthread_mutex_lock(&slots.lock);
	return crypto_init() ? 0 : -1;
}

static int group_teardown(void **state)
{
	(void)state;
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir);
	hmap_free(&slots.objects);
	pthread_mutex_unlock(&slots.lock);
	crypto_fini();
	log_reset();
	return system(cmd) == 0 ? 0 : -1;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_seal_required_roles_share_the_key),
		cmocka_unit_test(test_seal_optional_unseals_on_need),
		cmocka_unit_test(test_unseal_refused),
		cmocka_unit_test(test_seal_bound_to_uuid),
		cmocka_unit_test(test_init_seal_refused),
		cmocka_unit_test(test_pin_wrong_is_counted_and_reset),
		cmocka_unit_test(test_pin_locks_after_max_tries),
		cmocka_unit_test(test_pin_set_and_lengths),
		cmocka_unit_test(test_reinit_needs_so_pin),
		cmocka_unit_test(test_login_without_sessions),
		cmocka_unit_test(test_records_round_trip),
		cmocka_unit_test(test_records_tamper_detected),
		cmocka_unit_test(test_rotation_reseals_at_login),
		cmocka_unit_test(test_reseal_without_pin),
		cmocka_unit_test(test_retired_before_reseal),
		cmocka_unit_test(test_two_seals_any),
		cmocka_unit_test(test_two_seals_all),
		cmocka_unit_test(test_policy_and_list_change),
		cmocka_unit_test(test_pin_changes_need_no_kms),
		cmocka_unit_test(test_rotation_age_warning),
		cmocka_unit_test(test_revalidation_reseals_and_judges),
		cmocka_unit_test(test_rekey),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
