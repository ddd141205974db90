/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The `local` provider: the KMS key is a 32-byte master key in a file, the
 * way a database keeps a local key file. Each file must be a regular file
 * readable by its owner only; it is read at each seal or unseal and the
 * bytes are wiped right after, so the master key is not resident.
 *
 * Rotation: "key_file" is the key that seals (and encrypts, and is the
 * key's primary version); "previous_key_files" lists older key files,
 * newest first, that still unseal. A blob names the key that made it by
 * fingerprint, and decryption picks the file with that fingerprint. The standard AES mechanisms name no key, so their
 * decryption tries the files in order. Key file formats: local.h.
 *
 * Blob format (all sizes in bytes):
 *   "P1KL" | version 0x01 | key fingerprint (8) | nonce (12) | ct | tag (16)
 * The fingerprint names the key version that made the blob.
 */
#include "local.h"
#include "local_sign.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "common/crypto.h"
#include "common/log.h"
#include "common/secmem.h"
#include "providers/common/versions.h"
#include "providers/provider.h"

#define FP_LEN 8
#define MAGIC "P1KL"
#define HDR_LEN (4 + 1 + FP_LEN)
#define MAX_KEY_FILES 16 /* key_file and up to 15 previous ones */

/* The 48-byte key file (local.h). */
#define KF_MAGIC "P1KK"
#define KF_VERSION 1
#define KF_HDR_LEN 16
#define KF_LEN (KF_HDR_LEN + LOCAL_KEY_LEN)

typedef struct local_state {
	char **files; /* key_file, then previous_key_files: files[0] seals */
	size_t nfiles;
} local_state;

static const field_spec local_fields[] = {
	{"key_file", FT_STRING, true, 0, 0, NULL},
	{"previous_key_files", FT_STRING_ARRAY, false, 0, 0, NULL},
	{NULL, FT_STRING, false, 0, 0, NULL},
};

/* One key file, read: the key (secure memory), its fingerprint and when it
 * was made. */
typedef struct key_read {
	uint8_t *key;
	uint8_t fp[FP_LEN];
	uint64_t created;
	bool recorded; /* created comes from the file, not its mtime */
} key_read;

static void key_read_clear(key_read *k)
{
	sec_free(k->key);
	*k = (key_read){0};
}

/* Check the file the way ssh checks a private key: regular, owner-only;
 * and of one of the two sizes. */
static p11k_err check_key_file(int fd, const char *path, struct stat *st, char *why,
			       size_t wl)
{
	if (fstat(fd, st) != 0) {
		snprintf(why, wl, "%s: cannot stat: %s", path, strerror(errno));
		return P11K_ERR_ACCESS_DENIED;
	}
	if (!S_ISREG(st->st_mode)) {
		snprintf(why, wl, "%s: not a regular file", path);
		return P11K_ERR_ACCESS_DENIED;
	}
	if (st->st_mode & 077) {
		snprintf(why, wl,
			 "%s: permissions %04o are too open: the key file must be "
			 "readable by its owner only (chmod 600)",
			 path, (unsigned)(st->st_mode & 07777));
		return P11K_ERR_ACCESS_DENIED;
	}
	if (st->st_size != LOCAL_KEY_LEN && st->st_size != KF_LEN) {
		snprintf(why, wl, "%s: holds %lld bytes, a local key file holds %d (the key) or "
				  "%d (made by p11kms create-key-file)",
			 path, (long long)st->st_size, LOCAL_KEY_LEN, KF_LEN);
		return P11K_ERR_ACCESS_DENIED;
	}
	return P11K_OK;
}

/* Fingerprint: SHA-256("p11kms local key fingerprint" || key)[0..8). */
static bool fingerprint(const uint8_t *key, uint8_t fp[FP_LEN])
{
	static const char label[] = "p11kms local key fingerprint";
	uint8_t md[32];
	unsigned int mdlen = 0;
	EVP_MD *sha = EVP_MD_fetch(crypto_libctx(), "SHA256", NULL);
	EVP_MD_CTX *ctx = EVP_MD_CTX_new();
	bool ok = sha && ctx && EVP_DigestInit_ex2(ctx, sha, NULL) == 1 &&
		  EVP_DigestUpdate(ctx, label, sizeof(label) - 1) == 1 &&
		  EVP_DigestUpdate(ctx, key, LOCAL_KEY_LEN) == 1 &&
		  EVP_DigestFinal_ex(ctx, md, &mdlen) == 1;
	EVP_MD_CTX_free(ctx);
	EVP_MD_free(sha);
	if (ok)
		memcpy(fp, md, FP_LEN);
	return ok;
}

static void hex(const uint8_t *p, size_t n, char *out, size_t outlen)
{
	static const char d[] = "0123456789abcdef";
	size_t i = 0;
	if (!out || !outlen)
		return;
	for (; i < n && 2 * i + 2 < outlen; i++) {
		out[2 * i] = d[p[i] >> 4];
		out[2 * i + 1] = d[p[i] & 15];
	}
	out[2 * i] = 0;
}

static uint64_t be64(const uint8_t *p)
{
	uint64_t v = 0;
	for (int i = 0; i < 8; i++)
		v = v << 8 | p[i];
	return v;
}

/* The 48-byte format's header: magic, version, zeros, a creation time. */
static bool header_ok(const uint8_t *b, uint64_t *created)
{
	static const uint8_t zero[3] = {0};
	*created = be64(b + 8);
	return memcmp(b, KF_MAGIC, 4) == 0 && b[4] == KF_VERSION &&
	       memcmp(b + 5, zero, 3) == 0 && *created != 0;
}

/* Read and check one key file. */
static p11k_err key_file_read(const char *path, key_read *out, char *why, size_t wl)
{
	struct stat sb;
	*out = (key_read){0};
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (fd < 0) {
		snprintf(why, wl, "%s: cannot open: %s", path, strerror(errno));
		return errno == ENOENT ? P11K_ERR_KEY_NOT_FOUND : P11K_ERR_ACCESS_DENIED;
	}
	p11k_err e = check_key_file(fd, path, &sb, why, wl);
	size_t want = e == P11K_OK ? (size_t)sb.st_size : 0, got = 0;
	uint8_t *buf = e == P11K_OK ? sec_alloc(KF_LEN) : NULL;
	if (e == P11K_OK && !buf)
		e = P11K_ERR_NOMEM;
	ssize_t n;
	while (e == P11K_OK && got < want && (n = read(fd, buf + got, want - got)) > 0)
		got += (size_t)n;
	close(fd);
	if (e == P11K_OK && got != want) {
		snprintf(why, wl, "%s: short read", path);
		e = P11K_ERR_ACCESS_DENIED;
	}
	const uint8_t *key = buf;
	if (e == P11K_OK && want == KF_LEN) {
		if (!header_ok(buf, &out->created)) {
			snprintf(why, wl, "%s: %d bytes but not a p11kms key file (bad header)",
				 path, KF_LEN);
			e = P11K_ERR_ACCESS_DENIED;
		}
		key = buf + KF_HDR_LEN;
		out->recorded = true;
	} else if (e == P11K_OK) {
		/* The old format records no creation: the file's mtime stands
		 * in (docs/CONFIGURATION.md says so). */
		out->created = sb.st_mtime > 0 ? (uint64_t)sb.st_mtime : 0;
	}
	if (e == P11K_OK && !(out->key = sec_alloc(LOCAL_KEY_LEN)))
		e = P11K_ERR_NOMEM;
	if (e == P11K_OK) {
		memcpy(out->key, key, LOCAL_KEY_LEN);
		if (!fingerprint(out->key, out->fp))
			e = P11K_ERR_INTERNAL;
	}
	sec_free(buf);
	if (e != P11K_OK)
		key_read_clear(out);
	return e;
}

/* files[i], read; failures into st. */
static p11k_err read_key(const local_state *s, size_t i, key_read *k, provider_status *st)
{
	p11k_err e = key_file_read(s->files[i], k, st->message, sizeof(st->message));
	st->err = e;
	return e;
}

/* The file whose key has fingerprint fp. Every file is looked at until one
 * matches: a file that cannot be read may be the one, so its failure is
 * the answer when none matches. */
static p11k_err read_key_by_fp(const local_state *s, const uint8_t fp[FP_LEN], key_read *k,
			       provider_status *st)
{
	p11k_err first_err = P11K_OK;
	char first_why[sizeof(st->message)] = "";
	for (size_t i = 0; i < s->nfiles; i++) {
		provider_status fs = {0};
		p11k_err e = read_key(s, i, k, &fs);
		if (e == P11K_OK && memcmp(k->fp, fp, FP_LEN) == 0)
			return P11K_OK;
		if (e == P11K_OK)
			key_read_clear(k);
		else if (first_err == P11K_OK) {
			first_err = e;
			memcpy(first_why, fs.message, sizeof(first_why));
		}
	}
	char want[2 * FP_LEN + 1];
	hex(fp, FP_LEN, want, sizeof(want));
	if (first_err != P11K_OK) {
		snprintf(st->message, sizeof(st->message),
			 "blob needs local key version %s, in no readable key file; %.150s", want,
			 first_why);
		return st->err = first_err;
	}
	snprintf(st->message, sizeof(st->message),
		 "blob needs local key version %s; none of the %zu key file%s (first %.120s) "
		 "holds it", want, s->nfiles, s->nfiles == 1 ? "" : "s", s->files[0]);
	return st->err = P11K_ERR_KEY_NOT_FOUND;
}

static void local_destroy(void *state)
{
	local_state *s = state;
	for (size_t i = 0; s && i < s->nfiles; i++)
		free(s->files[i]);
	if (s)
		free(s->files);
	free(s);
}

/* The configured paths, newest first: key_file, then previous_key_files. */
static p11k_err config_files(const json_t *cfg, local_state *s, char *why, size_t wl)
{
	json_t *prev = json_object_get(cfg, "previous_key_files");
	size_t n = 1 + json_array_size(prev);
	if (n > MAX_KEY_FILES) {
		snprintf(why, wl, "\"previous_key_files\" lists %zu files: at most %d", n - 1,
			 MAX_KEY_FILES - 1);
		return P11K_ERR_KEY_NOT_FOUND;
	}
	if (!(s->files = calloc(n, sizeof(*s->files))))
		return P11K_ERR_NOMEM;
	for (size_t i = 0; i < n; i++) {
		const char *p = json_string_value(i ? json_array_get(prev, i - 1)
						    : json_object_get(cfg, "key_file"));
		if (!p || !*p) {
			snprintf(why, wl, "%s is not a path",
				 i ? "an entry of \"previous_key_files\"" : "\"key_file\"");
			return P11K_ERR_KEY_NOT_FOUND;
		}
		if (!(s->files[i] = strdup(p)))
			return P11K_ERR_NOMEM;
		s->nfiles = i + 1;
	}
	return P11K_OK;
}

/* Every listed file must be a usable key file, and no key listed twice
 * (an old and a new copy of one key is no rotation). */
static p11k_err check_files(const local_state *s, char *why, size_t wl)
{
	uint8_t fps[MAX_KEY_FILES][FP_LEN];
	for (size_t i = 0; i < s->nfiles; i++) {
		key_read k;
		p11k_err e = key_file_read(s->files[i], &k, why, wl);
		if (e != P11K_OK)
			return e;
		memcpy(fps[i], k.fp, FP_LEN);
		key_read_clear(&k);
		for (size_t j = 0; j < i; j++)
			if (memcmp(fps[i], fps[j], FP_LEN) == 0) {
				snprintf(why, wl, "%s and %s hold the same key: list each key once",
					 s->files[j], s->files[i]);
				return P11K_ERR_ACCESS_DENIED;
			}
	}
	return P11K_OK;
}

static p11k_err local_create(const json_t *cfg, const char *cfg_path,
			     void **state, char *why, size_t wl)
{
	(void)cfg_path;
	local_state *s = calloc(1, sizeof(*s));
	if (!s)
		return P11K_ERR_NOMEM;
	p11k_err e = config_files(cfg, s, why, wl);
	if (e == P11K_OK)
		e = check_files(s, why, wl);
	if (e != P11K_OK) {
		local_destroy(s);
		return e;
	}
	*state = s;
	return P11K_OK;
}

static const char *local_default_seal_key(void *state)
{
	return ((local_state *)state)->files[0];
}

/* The key is the list of key files; key_id (the configured seal key or a
 * keys entry) names it, whatever its value: key_file is its
 * primary version, and when that file was made is the version's age. */
static p11k_err local_describe(void *state, const char *key_id, key_info *out,
			       provider_status *st)
{
	local_state *s = state;
	key_read k;
	(void)key_id;
	memset(out, 0, sizeof(*out));
	p11k_err e = read_key(s, 0, &k, st);
	if (e != P11K_OK)
		return e;
	out->state = KEY_STATE_ENABLED;
	snprintf(out->key_id, sizeof(out->key_id), "%s", s->files[0]);
	hex(k.fp, FP_LEN, out->primary_version, sizeof(out->primary_version));
	out->created_at = out->rotated_at = out->version_created_at = k.created;
	if (!k.recorded)
		log_debug("local", "%s records no creation time (a 32-byte key file): its "
				   "modification time stands in", s->files[0]);
	key_read_clear(&k);
	return P11K_OK;
}

static p11k_err local_encrypt(void *state, const char *key_id,
			      const uint8_t *pt, size_t ptlen, const uint8_t *aad,
			      size_t aadlen, uint8_t **blob, size_t *bloblen,
			      char *kv, size_t kvlen, provider_status *st)
{
	local_state *s = state;
	key_read k;
	uint8_t *ct = NULL, *out = NULL;
	size_t ctlen = 0;
	(void)key_id;
	p11k_err e = read_key(s, 0, &k, st);
	if (e == P11K_OK)
		e = gcm_seal(k.key, aad, aadlen, pt, ptlen, &ct, &ctlen);
	if (e == P11K_OK && !(out = malloc(HDR_LEN + ctlen)))
		e = P11K_ERR_NOMEM;
	if (e != P11K_OK) {
		key_read_clear(&k);
		free(ct);
		st->err = e;
		return e;
	}
	memcpy(out, MAGIC, 4);
	out[4] = 1;
	memcpy(out + 5, k.fp, FP_LEN);
	memcpy(out + HDR_LEN, ct, ctlen);
	free(ct);
	*blob = out;
	*bloblen = HDR_LEN + ctlen;
	hex(k.fp, FP_LEN, kv, kvlen);
	key_read_clear(&k);
	return P11K_OK;
}

static p11k_err local_decrypt(void *state, const char *key_id,
			      const uint8_t *blob, size_t bloblen,
			      const uint8_t *aad, size_t aadlen, uint8_t **pt,
			      size_t *ptlen, provider_status *st)
{
	local_state *s = state;
	key_read k;
	(void)key_id;
	if (bloblen < HDR_LEN || memcmp(blob, MAGIC, 4) != 0 || blob[4] != 1) {
		snprintf(st->message, sizeof(st->message),
			 "not a local-provider blob (bad header)");
		return st->err = P11K_ERR_INVALID_CIPHERTEXT;
	}
	p11k_err e = read_key_by_fp(s, blob + 5, &k, st);
	if (e != P11K_OK)
		return e;
	e = gcm_open(k.key, aad, aadlen, blob + HDR_LEN, bloblen - HDR_LEN, pt, ptlen);
	if (e == P11K_ERR_INVALID_CIPHERTEXT) {
		char v[2 * FP_LEN + 1];
		hex(k.fp, FP_LEN, v, sizeof(v));
		snprintf(st->message, sizeof(st->message),
			 "blob does not authenticate under local key version %s", v);
	}
	key_read_clear(&k);
	st->err = e;
	return e;
}

static size_t local_max_blob_len(void *state, size_t ptlen)
{
	(void)state;
	return HDR_LEN + GCM_NONCE_LEN + ptlen + GCM_TAG_LEN;
}

/* AES key wrap (RFC 3394 or 5649) with the master key. */
static p11k_err local_kw(const uint8_t key[LOCAL_KEY_LEN], bool pad, bool wrap,
			 const uint8_t *in, size_t inlen, uint8_t *out, size_t *outlen)
{
	EVP_CIPHER_CTX *ctx = EVP_CIPHER_CTX_new();
	const EVP_CIPHER *c = crypto_cipher(pad ? CIPH_AES_WRAP_PAD : CIPH_AES_WRAP, LOCAL_KEY_LEN);
	int n = 0, m = 0;
	bool ok = ctx && c && inlen <= INT_MAX / 2 &&
		  EVP_CipherInit_ex2(ctx, c, key, NULL, wrap, NULL) == 1 &&
		  EVP_CipherUpdate(ctx, out, &n, in, (int)inlen) == 1 &&
		  EVP_CipherFinal_ex(ctx, out + n, &m) == 1;
	EVP_CIPHER_CTX_free(ctx);
	*outlen = (size_t)n + (size_t)m;
	return ok ? P11K_OK : wrap ? P11K_ERR_INTERNAL : P11K_ERR_INVALID_CIPHERTEXT;
}

/* One standard AES operation with one master key. */
static p11k_err aes_op(const uint8_t key[LOCAL_KEY_LEN], remote_req *r, uint8_t **out,
		       size_t *outlen)
{
	uint8_t *res = NULL;
	size_t reslen = 0;
	p11k_err e = P11K_OK;
	if (r->alg == RALG_AES_GCM && r->encrypt) {
		uint8_t *sealed = NULL; /* nonce | ct | tag */
		size_t sl = 0;
		e = gcm_seal(key, r->aad, r->aadlen, r->in, r->inlen, &sealed, &sl);
		if (e == P11K_OK && !(res = sec_alloc(sl - GCM_NONCE_LEN)))
			e = P11K_ERR_NOMEM;
		if (e == P11K_OK) {
			memcpy(r->iv, sealed, GCM_NONCE_LEN);
			reslen = sl - GCM_NONCE_LEN;
			memcpy(res, sealed + GCM_NONCE_LEN, reslen);
		}
		free(sealed);
	} else if (r->alg == RALG_AES_GCM) {
		uint8_t *sealed = malloc(GCM_NONCE_LEN + r->inlen);
		if (!sealed) {
			e = P11K_ERR_NOMEM;
		} else {
			memcpy(sealed, r->iv, GCM_NONCE_LEN);
			memcpy(sealed + GCM_NONCE_LEN, r->in, r->inlen);
			e = gcm_open(key, r->aad, r->aadlen, sealed, GCM_NONCE_LEN + r->inlen, &res,
				     &reslen);
			free(sealed);
		}
	} else {
		if (!(res = sec_alloc(r->inlen + 16)))
			e = P11K_ERR_NOMEM;
		else
			e = local_kw(key, r->alg == RALG_AES_KWP, r->encrypt, r->in, r->inlen, res,
				     &reslen);
	}
	if (e != P11K_OK) {
		sec_free(res);
		return e;
	}
	*out = res;
	*outlen = reslen;
	return P11K_OK;
}

typedef struct aes_walk {
	const local_state *s;
	remote_req *r;
	uint8_t **out;
	size_t *outlen;
} aes_walk;

static p11k_err aes_attempt(void *arg, size_t i, provider_status *st)
{
	aes_walk *w = arg;
	key_read k;
	p11k_err e = read_key(w->s, i, &k, st);
	if (e == P11K_OK)
		e = aes_op(k.key, w->r, w->out, w->outlen);
	key_read_clear(&k);
	return e;
}

static bool aes_next(p11k_err e)
{
	return e == P11K_ERR_INVALID_CIPHERTEXT;
}

/* The master key as an AES-256 key for the standard AES mechanisms
 * (docs/REMOTE.md): key wrap, key wrap with padding, and GCM with a
 * random IV. There is no RSA key. The first key file encrypts; these
 * formats name no key, so decryption tries the files in order (each
 * authenticates what it opens). */
static p11k_err local_remote_crypt(void *state, const char *key_id, remote_req *r,
				   uint8_t **out, size_t *outlen, provider_status *st)
{
	local_state *s = state;
	(void)key_id;
	if (r->alg != RALG_AES_KW && r->alg != RALG_AES_KWP && r->alg != RALG_AES_GCM) {
		provider_status_set(st, P11K_ERR_KEY_TYPE,
				    "the local master key is an AES-256 key, not RSA");
		return P11K_ERR_KEY_TYPE;
	}
	if (r->key_bits && r->key_bits != LOCAL_KEY_LEN * 8) {
		provider_status_set(st, P11K_ERR_KEY_TYPE,
				    "the local master key has 256 bits, not %zu", r->key_bits);
		return P11K_ERR_KEY_TYPE;
	}
	aes_walk w = {s, r, out, outlen};
	version_walk vw = {.n = r->encrypt ? 1 : s->nfiles, .attempt = aes_attempt,
			   .next = aes_next, .arg = &w};
	size_t tried = 0;
	p11k_err e = versions_try(&vw, &tried, st);
	if (e == P11K_ERR_INVALID_CIPHERTEXT)
		provider_status_set(st, e, "input does not authenticate under the local key%s "
					   "(%zu tried)", tried == 1 ? "" : "s", tried);
	st->err = e;
	return e;
}

/* --- the key file writer (local.h) ------------------------------------------ */

p11k_err local_key_file_create(const char *path, uint64_t created,
			       char fp_hex[LOCAL_FP_HEX_LEN + 1], char *why, size_t wl)
{
	uint8_t *buf = sec_alloc(KF_LEN), fp[FP_LEN];
	if (!buf) {
		snprintf(why, wl, "out of memory");
		return P11K_ERR_NOMEM;
	}
	memcpy(buf, KF_MAGIC, 4);
	buf[4] = KF_VERSION;
	for (int i = 0; i < 8; i++)
		buf[8 + i] = (uint8_t)(created >> (56 - 8 * i));
	if (!created || !crypto_random(buf + KF_HDR_LEN, LOCAL_KEY_LEN) ||
	    !fingerprint(buf + KF_HDR_LEN, fp)) {
		sec_free(buf);
		snprintf(why, wl, created ? "no randomness available" : "no creation time");
		return P11K_ERR_INTERNAL;
	}
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOCTTY, 0600);
	if (fd < 0) {
		snprintf(why, wl, "%s: %s%s", path, strerror(errno),
			 errno == EEXIST ? " (refusing to overwrite a key file)" : "");
		sec_free(buf);
		return P11K_ERR_ACCESS_DENIED;
	}
	/* The umask may not narrow 0600 below what is asked; make it exact. */
	bool ok = fchmod(fd, 0600) == 0 && write(fd, buf, KF_LEN) == KF_LEN && fsync(fd) == 0;
	int saved = errno;
	sec_free(buf);
	if (close(fd) != 0 || !ok) {
		snprintf(why, wl, "%s: write failed: %s", path, strerror(ok ? errno : saved));
		unlink(path);
		return P11K_ERR_ACCESS_DENIED;
	}
	hex(fp, FP_LEN, fp_hex, LOCAL_FP_HEX_LEN + 1);
	return P11K_OK;
}

const provider_ops local_provider_ops = {
	.type = "local",
	.fields = local_fields,
	.create = local_create,
	.destroy = local_destroy,
	.default_seal_key = local_default_seal_key,
	.describe = local_describe,
	.encrypt = local_encrypt,
	.decrypt = local_decrypt,
	.max_blob_len = local_max_blob_len,
	.remote_crypt = local_remote_crypt,
	.public_key = local_public_key,
	.sign = local_sign,
};
