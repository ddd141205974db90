/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The `local` provider: the KMS key is a 32-byte master key in a file, the
 * way a database keeps a local key file. The file must be a regular file
 * readable by its owner only; it is read at each seal or unseal and the
 * bytes are wiped right after, so the master key is not resident.
 *
 * Blob format (all sizes in bytes):
 *   "P1KL" | version 0x01 | key fingerprint (8) | nonce (12) | ct | tag (16)
 * The fingerprint names the key version that made the blob.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "common/crypto.h"
#include "common/log.h"
#include "common/secmem.h"
#include "providers/provider.h"

#define LOCAL_KEY_LEN 32
#define FP_LEN 8
#define MAGIC "P1KL"
#define HDR_LEN (4 + 1 + FP_LEN)

typedef struct local_state {
	char *key_file;
} local_state;

static const field_spec local_fields[] = {
	{"key_file", FT_STRING, true, 0, 0, NULL},
	{NULL, FT_STRING, false, 0, 0, NULL},
};

/* Check the file the way ssh checks a private key: regular, owner-only. */
static p11k_err check_key_file(int fd, const char *path, char *why, size_t wl)
{
	struct stat st;
	if (fstat(fd, &st) != 0) {
		snprintf(why, wl, "%s: cannot stat: %s", path, strerror(errno));
		return P11K_ERR_ACCESS_DENIED;
	}
	if (!S_ISREG(st.st_mode)) {
		snprintf(why, wl, "%s: not a regular file", path);
		return P11K_ERR_ACCESS_DENIED;
	}
	if (st.st_mode & 077) {
		snprintf(why, wl,
			 "%s: permissions %04o are too open: the key file must be "
			 "readable by its owner only (chmod 600)",
			 path, (unsigned)(st.st_mode & 07777));
		return P11K_ERR_ACCESS_DENIED;
	}
	if (st.st_size != LOCAL_KEY_LEN) {
		snprintf(why, wl, "%s: holds %lld bytes, a local key file holds %d",
			 path, (long long)st.st_size, LOCAL_KEY_LEN);
		return P11K_ERR_ACCESS_DENIED;
	}
	return P11K_OK;
}

static p11k_err open_key_file(const char *path, int *fd, char *why, size_t wl)
{
	*fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	if (*fd < 0) {
		snprintf(why, wl, "%s: cannot open: %s", path, strerror(errno));
		return errno == ENOENT ? P11K_ERR_KEY_NOT_FOUND : P11K_ERR_ACCESS_DENIED;
	}
	p11k_err e = check_key_file(*fd, path, why, wl);
	if (e != P11K_OK) {
		close(*fd);
		*fd = -1;
	}
	return e;
}

static p11k_err read_key(const local_state *s, uint8_t **key, provider_status *st)
{
	int fd;
	p11k_err e = open_key_file(s->key_file, &fd, st->message, sizeof(st->message));
	if (e != P11K_OK)
		return e;
	uint8_t *k = sec_alloc(LOCAL_KEY_LEN);
	size_t got = 0;
	ssize_t n;
	while (k && got < LOCAL_KEY_LEN &&
	       (n = read(fd, k + got, LOCAL_KEY_LEN - got)) > 0)
		got += (size_t)n;
	close(fd);
	if (!k)
		return P11K_ERR_NOMEM;
	if (got != LOCAL_KEY_LEN) {
		sec_free(k);
		snprintf(st->message, sizeof(st->message), "%s: short read",
			 s->key_file);
		return P11K_ERR_ACCESS_DENIED;
	}
	*key = k;
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
	for (; i < n && 2 * i + 2 < outlen; i++) {
		out[2 * i] = d[p[i] >> 4];
		out[2 * i + 1] = d[p[i] & 15];
	}
	out[2 * i] = 0;
}

static p11k_err local_create(const json_t *cfg, const char *cfg_path,
			     void **state, char *why, size_t wl)
{
	(void)cfg_path;
	const char *kf = json_string_value(json_object_get(cfg, "key_file"));
	int fd;
	p11k_err e = open_key_file(kf, &fd, why, wl);
	if (e != P11K_OK)
		return e;
	close(fd);
	local_state *s = calloc(1, sizeof(*s));
	if (!s || !(s->key_file = strdup(kf))) {
		free(s);
		return P11K_ERR_NOMEM;
	}
	*state = s;
	return P11K_OK;
}

static void local_destroy(void *state)
{
	local_state *s = state;
	if (s)
		free(s->key_file);
	free(s);
}

static const char *local_default_seal_key(void *state)
{
	return ((local_state *)state)->key_file;
}

static p11k_err local_describe(void *state, const char *key_id, key_info *out,
			       provider_status *st)
{
	local_state *s = state;
	uint8_t *key = NULL, fp[FP_LEN];
	(void)key_id;
	memset(out, 0, sizeof(*out));
	p11k_err e = read_key(s, &key, st);
	if (e == P11K_OK && !fingerprint(key, fp))
		e = P11K_ERR_INTERNAL;
	sec_free(key);
	if (e != P11K_OK) {
		st->err = e;
		return e;
	}
	struct stat sb;
	out->state = KEY_STATE_ENABLED;
	snprintf(out->key_id, sizeof(out->key_id), "%s", s->key_file);
	hex(fp, FP_LEN, out->primary_version, sizeof(out->primary_version));
	if (stat(s->key_file, &sb) == 0)
		out->created_at = out->rotated_at = (uint64_t)sb.st_mtime;
	return P11K_OK;
}

static p11k_err local_encrypt(void *state, const char *key_id,
			      const uint8_t *pt, size_t ptlen, const uint8_t *aad,
			      size_t aadlen, uint8_t **blob, size_t *bloblen,
			      char *kv, size_t kvlen, provider_status *st)
{
	local_state *s = state;
	uint8_t *key = NULL, fp[FP_LEN], *ct = NULL, *out = NULL;
	size_t ctlen = 0;
	(void)key_id;
	p11k_err e = read_key(s, &key, st);
	if (e == P11K_OK && !fingerprint(key, fp))
		e = P11K_ERR_INTERNAL;
	if (e == P11K_OK)
		e = gcm_seal(key, aad, aadlen, pt, ptlen, &ct, &ctlen);
	sec_free(key);
	if (e == P11K_OK && !(out = malloc(HDR_LEN + ctlen)))
		e = P11K_ERR_NOMEM;
	if (e != P11K_OK) {
		free(ct);
		st->err = e;
		return e;
	}
	memcpy(out, MAGIC, 4);
	out[4] = 1;
	memcpy(out + 5, fp, FP_LEN);
	memcpy(out + HDR_LEN, ct, ctlen);
	free(ct);
	*blob = out;
	*bloblen = HDR_LEN + ctlen;
	hex(fp, FP_LEN, kv, kvlen);
	return P11K_OK;
}

static p11k_err local_decrypt(void *state, const char *key_id,
			      const uint8_t *blob, size_t bloblen,
			      const uint8_t *aad, size_t aadlen, uint8_t **pt,
			      size_t *ptlen, provider_status *st)
{
	local_state *s = state;
	uint8_t *key = NULL, fp[FP_LEN];
	(void)key_id;
	if (bloblen < HDR_LEN || memcmp(blob, MAGIC, 4) != 0 || blob[4] != 1) {
		snprintf(st->message, sizeof(st->message),
			 "not a local-provider blob (bad header)");
		return st->err = P11K_ERR_INVALID_CIPHERTEXT;
	}
	p11k_err e = read_key(s, &key, st);
	if (e == P11K_OK && !fingerprint(key, fp))
		e = P11K_ERR_INTERNAL;
	if (e == P11K_OK && memcmp(fp, blob + 5, FP_LEN) != 0) {
		char want[2 * FP_LEN + 1], have[2 * FP_LEN + 1];
		hex(blob + 5, FP_LEN, want, sizeof(want));
		hex(fp, FP_LEN, have, sizeof(have));
		snprintf(st->message, sizeof(st->message),
			 "blob needs local key version %s; %s holds version %s",
			 want, s->key_file, have);
		e = P11K_ERR_KEY_NOT_FOUND;
	}
	if (e == P11K_OK)
		e = gcm_open(key, aad, aadlen, blob + HDR_LEN, bloblen - HDR_LEN, pt,
			     ptlen);
	sec_free(key);
	if (e == P11K_ERR_INVALID_CIPHERTEXT)
		snprintf(st->message, sizeof(st->message),
			 "blob does not authenticate under %s", s->key_file);
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

/* The master key as an AES-256 key for the standard AES mechanisms
 * (docs/REMOTE.md): key wrap, key wrap with padding, and GCM with a
 * random IV. There is no RSA key. */
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
	uint8_t *key = NULL, *res = NULL;
	p11k_err e = read_key(s, &key, st);
	if (e != P11K_OK)
		return e;
	size_t reslen = 0;
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
	sec_free(key);
	if (e != P11K_OK) {
		sec_free(res);
		if (e == P11K_ERR_INVALID_CIPHERTEXT)
			provider_status_set(st, e, "input does not authenticate under %s",
					    s->key_file);
		st->err = e;
		return e;
	}
	*out = res;
	*outlen = reslen;
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
};
