/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Writes the binary seed corpora from the module's own encoders, so the
 * seeds follow the formats when they change:
 *   gen_seeds tests/fuzz/corpus
 * fuzz_record: public and secret records of a key and a data object;
 * fuzz_local_blob: blobs sealed under the fuzz target's fixed key;
 * fuzz_store: a new store and one with meta, a seal and two objects;
 * fuzz_jsonpos: a path and a configuration text.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "common/crypto.h"
#include "common/log.h"
#include "providers/provider.h"
#include "slots/object.h"
#include "slots/store.h"

extern const provider_ops local_provider_ops;

static const char *outdir;

static void die(const char *what)
{
	fprintf(stderr, "gen_seeds: %s\n", what);
	exit(1);
}

static void put(const char *target, const char *name, const void *p, size_t n)
{
	char path[1024];
	snprintf(path, sizeof(path), "%s/%s", outdir, target);
	mkdir(path, 0755);
	snprintf(path, sizeof(path), "%s/%s/%s", outdir, target, name);
	FILE *f = fopen(path, "wb");
	if (!f || fwrite(p, 1, n, f) != n || fclose(f) != 0)
		die(path);
}

static object_t *aes_key(const char *label)
{
	CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
	CK_KEY_TYPE kt = CKK_AES;
	CK_BBOOL yes = CK_TRUE;
	CK_MECHANISM_TYPE mechs[2] = {CKM_AES_GCM, CKM_AES_CBC_PAD};
	static const uint8_t value[32] = {1, 2, 3, 4, 5, 6, 7, 8};
	CK_ATTRIBUTE t[] = {
		{CKA_CLASS, &cls, sizeof(cls)},
		{CKA_KEY_TYPE, &kt, sizeof(kt)},
		{CKA_TOKEN, &yes, sizeof(yes)},
		{CKA_LABEL, (void *)label, strlen(label)},
		{CKA_ID, "\x01\x02", 2},
		{CKA_ALLOWED_MECHANISMS, mechs, sizeof(mechs)},
		{CKA_VALUE, (void *)value, sizeof(value)},
	};
	object_t *o;
	if (obj_build(ORIGIN_CREATE, t, ARRAY_SIZE(t), NULL, 0, (obj_actor){0},
		      &o) != CKR_OK)
		die("obj_build key");
	return o;
}

static object_t *data_obj(void)
{
	CK_OBJECT_CLASS cls = CKO_DATA;
	CK_ATTRIBUTE t[] = {
		{CKA_CLASS, &cls, sizeof(cls)},
		{CKA_LABEL, "note", 4},
		{CKA_APPLICATION, "app", 3},
		{CKA_VALUE, "hello", 5},
	};
	object_t *o;
	if (obj_build(ORIGIN_CREATE, t, ARRAY_SIZE(t), NULL, 0, (obj_actor){0},
		      &o) != CKR_OK)
		die("obj_build data");
	return o;
}

static void ser(const object_t *o, bool secret, dbuf_t *b)
{
	dbuf_init(b, 1 << 20, false);
	if (!obj_serialize(o, secret, b))
		die("obj_serialize");
}

static void records(void)
{
	object_t *k = aes_key("k"), *d = data_obj();
	dbuf_t b;
	ser(k, false, &b);
	put("fuzz_record", "key-public", b.p, b.len);
	dbuf_free(&b);
	ser(k, true, &b);
	put("fuzz_record", "key-secret", b.p, b.len);
	dbuf_free(&b);
	ser(d, false, &b);
	put("fuzz_record", "data-public", b.p, b.len);
	dbuf_free(&b);
	ser(d, true, &b);
	put("fuzz_record", "data-secret", b.p, b.len);
	dbuf_free(&b);
	obj_free(k);
	obj_free(d);
}

static void blobs(const char *tmp)
{
	char path[512], why[256], kv[64];
	uint8_t key[32];
	void *state;
	for (int i = 0; i < 32; i++)
		key[i] = (uint8_t)(0xa0 + i); /* as fuzz_local_blob.c */
	snprintf(path, sizeof(path), "%s/local.key", tmp);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || write(fd, key, sizeof(key)) != (ssize_t)sizeof(key))
		die("key file");
	close(fd);
	json_t *cfg = json_pack("{s:s}", "key_file", path);
	if (local_provider_ops.create(cfg, "seed", &state, why, sizeof(why)) != P11K_OK)
		die(why);
	json_decref(cfg);
	static const struct {
		const char *name, *pt, *aad;
		uint8_t flags;
	} seeds[] = {
		{"token-key", "0123456789abcdef0123456789abcdef", "", 0},
		{"with-aad", "secret", "P1KO\x01", 0},
		{"roundtrip", "", "aad", 3},
	};
	for (size_t i = 0; i < ARRAY_SIZE(seeds); i++) {
		uint8_t *blob, buf[512];
		size_t bloblen, al = strlen(seeds[i].aad);
		provider_status st = {0};
		if (local_provider_ops.encrypt(state, NULL,
					       (const uint8_t *)seeds[i].pt,
					       strlen(seeds[i].pt),
					       (const uint8_t *)seeds[i].aad, al,
					       &blob, &bloblen, kv, sizeof(kv),
					       &st) != P11K_OK ||
		    2 + al + bloblen > sizeof(buf))
			die("encrypt");
		buf[0] = seeds[i].flags;
		buf[1] = (uint8_t)al;
		memcpy(buf + 2, seeds[i].aad, al);
		memcpy(buf + 2 + al, blob, bloblen);
		put("fuzz_local_blob", seeds[i].name, buf, 2 + al + bloblen);
		free(blob);
	}
	local_provider_ops.destroy(state);
	unlink(path);
}

static void put_file(const char *target, const char *name, const char *path)
{
	FILE *f = fopen(path, "rb");
	static uint8_t buf[1 << 20];
	size_t n = f ? fread(buf, 1, sizeof(buf), f) : 0;
	if (!f || n == sizeof(buf))
		die(path);
	fclose(f);
	put(target, name, buf, n);
}

static void stores(const char *tmp)
{
	char path[512];
	store_t *s;
	snprintf(path, sizeof(path), "%s/empty.db", tmp);
	if (store_open(path, true, &s) != P11K_OK)
		die("store_open");
	store_close(s);
	put_file("fuzz_store", "new-store", path);
	unlink(path);

	snprintf(path, sizeof(path), "%s/full.db", tmp);
	if (store_open(path, true, &s) != P11K_OK)
		die("store_open");
	seal_rec seal = {.provider = "dev", .key_id = "/keys/dev.key",
			 .key_version = "0011223344556677", .role = "token",
			 .blob = (uint8_t *)"P1KLblob", .bloblen = 8, .created = 1};
	if (store_meta_put(s, "uuid", "0123456789abcdef", 16) != P11K_OK ||
	    store_meta_put(s, "label", "dev", 3) != P11K_OK ||
	    store_seal_add(s, &seal) != P11K_OK)
		die("store meta");
	object_t *objs[2] = {aes_key("k"), data_obj()};
	for (int i = 0; i < 2; i++) {
		dbuf_t pub;
		ser(objs[i], false, &pub);
		const attr_t *lab = obj_attr(objs[i], CKA_LABEL);
		const attr_t *id = obj_attr(objs[i], CKA_ID);
		obj_rec r = {.cls = obj_ulong(objs[i], CKA_CLASS, 0),
			     .priv = obj_is_private(objs[i]),
			     .label = lab ? lab->val : NULL,
			     .labellen = lab ? lab->len : 0,
			     .ckaid = id ? id->val : NULL,
			     .ckaidlen = id ? id->len : 0,
			     .pub = pub.p, .publen = pub.len,
			     .sec = (uint8_t *)"sealed", .seclen = 6};
		memcpy(r.uid, objs[i]->uid, UID_LEN);
		if (store_obj_insert(s, &r) != P11K_OK)
			die("store insert");
		dbuf_free(&pub);
		obj_free(objs[i]);
	}
	store_close(s);
	put_file("fuzz_store", "two-objects", path);
	unlink(path);
}

static void jsonpos_seeds(void)
{
	static const char text[] =
		"{\n  \"log\": {\"level\": \"info\"},\n  \"providers\": [\n"
		"    {\"name\": \"dev\", \"type\": \"local\",\n"
		"     \"key_file\": \"/k\", \"store\": \"/s\"}\n  ]\n}\n";
	uint8_t buf[512];
	size_t n = 0;
	buf[n++] = 3;
	buf[n++] = 9;
	memcpy(buf + n, "providers", 9);
	n += 9;
	buf[n++] = 0x80; /* [0] */
	buf[n++] = 8;
	memcpy(buf + n, "key_file", 8);
	n += 8;
	memcpy(buf + n, text, sizeof(text) - 1);
	n += sizeof(text) - 1;
	put("fuzz_jsonpos", "provider-field", buf, n);
	buf[0] = 2;
	n = 0;
	buf[n++] = 2;
	buf[n++] = 3;
	memcpy(buf + n, "log", 3);
	n += 3;
	buf[n++] = 5;
	memcpy(buf + n, "level", 5);
	n += 5;
	memcpy(buf + n, text, sizeof(text) - 1);
	n += sizeof(text) - 1;
	put("fuzz_jsonpos", "log-level", buf, n);
}

int main(int argc, char **argv)
{
	if (argc != 2)
		die("usage: gen_seeds CORPUS_DIR");
	outdir = argv[1];
	log_configure(LOG_ERROR, "stderr");
	if (!crypto_init())
		die("crypto_init");
	char tmp[] = "/tmp/p11kms-seeds-XXXXXX";
	if (!mkdtemp(tmp))
		die("mkdtemp");
	records();
	blobs(tmp);
	stores(tmp);
	jsonpos_seeds();
	rmdir(tmp);
	crypto_fini();
	return 0;
}
