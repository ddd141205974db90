/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Key Vault keys as the module's sealing keys (azure.c header): describe,
 * and the envelope encrypt/decrypt (remote wrapKey/unwrapKey with the
 * SHA-256(aad) prefix, the P1KA blob), with the key type cache.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "azure_impl.h"
#include "common/crypto.h"
#include "common/log.h"
#include "common/secmem.h"
#include "providers/common/codec.h"
#include "providers/common/errmap.h"
#include "providers/common/util.h"
#include "providers/common/versions.h"

/* --- key type cache --------------------------------------------------------------- */

static bool kty_is_oct(const char *kty)
{
	return kty && strncmp(kty, "oct", 3) == 0;
}

static void kty_put(az_state *s, const char *key_id, bool oct)
{
	pthread_mutex_lock(&s->lock);
	for (size_t i = 0; i < s->nkty; i++)
		if (strcmp(s->kty[i].key_id, key_id) == 0) {
			s->kty[i].oct = oct;
			pthread_mutex_unlock(&s->lock);
			return;
		}
	if (s->nkty < MAX_CACHED_KEYS) {
		char *d = strdup(key_id);
		if (d)
			s->kty[s->nkty++] = (kty_entry){.key_id = d, .oct = oct};
	}
	pthread_mutex_unlock(&s->lock);
}

static int kty_get(az_state *s, const char *key_id)
{
	int r = -1;
	pthread_mutex_lock(&s->lock);
	for (size_t i = 0; i < s->nkty; i++)
		if (strcmp(s->kty[i].key_id, key_id) == 0)
			r = s->kty[i].oct;
	pthread_mutex_unlock(&s->lock);
	return r;
}

static p11k_err key_path(const char *key_id, const char *suffix, char *path, size_t pl,
			 char *name, size_t nl, provider_status *st)
{
	char ver[128];
	if (!az_parse_key_id(key_id, name, nl, ver, sizeof(ver))) {
		snprintf(st->message, sizeof(st->message),
			 "key id '%.100s' is not NAME or NAME/VERSION", key_id);
		return st->err = P11K_ERR_KEY_NOT_FOUND;
	}
	snprintf(path, pl, "/keys/%s%s%s%s", name, ver[0] ? "/" : "", ver, suffix);
	return P11K_OK;
}

/* --- provider operations ---------------------------------------------------------- */

/* GetKey: the key bundle, checked to have kid, kty and attributes.enabled;
 * the key type is cached on the way. */
p11k_err az_get_key(az_state *s, const char *key_id, json_t **bundle, char *kv,
			size_t kvl, provider_status *st)
{
	char path[400], name[128], kn[128];
	*bundle = NULL;
	p11k_err e = key_path(key_id, "", path, sizeof(path), name, sizeof(name), st);
	json_t *reply = NULL;
	if (e == P11K_OK)
		e = az_vault_call(s, "GetKey", "GET", path, NULL, &reply, NULL, st);
	if (e != P11K_OK)
		return e;
	json_t *key = json_object_get(reply, "key");
	json_t *en = json_object_get(json_object_get(reply, "attributes"), "enabled");
	const char *kid = json_string_value(json_object_get(key, "kid"));
	const char *kty = json_string_value(json_object_get(key, "kty"));
	if (!json_is_boolean(en) || !kid || !kty || !az_parse_kid(kid, kn, sizeof(kn), kv, kvl)) {
		snprintf(st->message, sizeof(st->message), "GetKey: reply lacks kid, kty or "
							   "attributes.enabled");
		json_decref(reply);
		return st->err = P11K_ERR_BAD_REPLY;
	}
	kty_put(s, key_id, kty_is_oct(kty));
	*bundle = reply;
	return P11K_OK;
}

p11k_err az_describe(void *state, const char *key_id, key_info *out,
			    provider_status *st)
{
	az_state *s = state;
	char kv[128];
	memset(out, 0, sizeof(*out));
	json_t *reply = NULL;
	p11k_err e = az_get_key(s, key_id, &reply, kv, sizeof(kv), st);
	if (e != P11K_OK)
		return e;
	json_t *attrs = json_object_get(reply, "attributes");
	json_t *en = json_object_get(attrs, "enabled");
	const char *kid = json_string_value(json_object_get(json_object_get(reply, "key"), "kid"));
	out->state = json_is_true(en) ? KEY_STATE_ENABLED : KEY_STATE_DISABLED;
	snprintf(out->key_id, sizeof(out->key_id), "%s", kid);
	snprintf(out->primary_version, sizeof(out->primary_version), "%s", kv);
	/* GetKey without a version answers with the current version's bundle:
	 * its created is when the key material that encrypts now was made
	 * (the key's own creation would need the version list). */
	json_t *cr = json_object_get(attrs, "created");
	json_t *up = json_object_get(attrs, "updated");
	if (json_is_integer(cr) && json_integer_value(cr) > 0)
		out->created_at = out->version_created_at = (uint64_t)json_integer_value(cr);
	if (json_is_integer(up) && json_integer_value(up) > 0)
		out->rotated_at = (uint64_t)json_integer_value(up);
	json_decref(reply);
	return P11K_OK;
}

static bool sha256(const uint8_t *p, size_t n, uint8_t out[AAD_HASH_LEN])
{
	EVP_MD *md = EVP_MD_fetch(crypto_libctx(), "SHA256", NULL);
	unsigned int l = 0;
	bool ok = md && EVP_Digest(p, n, out, &l, md, NULL) == 1 && l == AAD_HASH_LEN;
	EVP_MD_free(md);
	return ok;
}

/* A 400 from a cryptographic call (BadParameter and its kin) is either
 * about the algorithm and the key (RSA-OAEP on an oct key, A128KW on a
 * 256-bit key, GCM on a vault) or about the data. The error codes came
 * first (map_error: a specific code or innererror code decides); the
 * service gives no code of its own to a key/algorithm mismatch, so what
 * remains is its message: one about the algorithm the request sent,
 * naming it ("Algorithm 'A128GCM' is not supported ..."), is a key type
 * mismatch, as are the phrasings below; "could not be decrypted with
 * RSA-OAEP-256" is about the data. The data's fault, on decryption, is a bad
 * ciphertext (wrong key, tampered, truncated). */
static p11k_err classify_400(p11k_err e, long vstatus, bool reverse, const char *alg,
			     provider_status *st)
{
	static const char *const key_type_words[] = {
		"not supported for key", "not supported by key", "not supported by this",
		"not valid for key", "key type", "key size", "needs a ", "invalid algorithm",
		"unsupported algorithm", "algorithm is not supported", "not compatible",
	};
	if (vstatus != 400 || !st->error_name[0] ||
	    (e != P11K_ERR_INTERNAL && e != P11K_ERR_BAD_REPLY))
		return e;
	/* The message after "op: HTTP 400 CODE: ", so the op's name (which
	 * no algorithm shares) cannot match. */
	const char *msg = strstr(st->message, ": HTTP ");
	msg = msg && (msg = strchr(msg + 7, ':')) ? msg : st->message;
	if (alg && *alg && strcasestr(msg, "algorithm") && strcasestr(msg, alg))
		return st->err = P11K_ERR_KEY_TYPE;
	for (size_t i = 0; i < ARRAY_SIZE(key_type_words); i++)
		if (strcasestr(msg, key_type_words[i]))
			return st->err = P11K_ERR_KEY_TYPE;
	return reverse ? (st->err = P11K_ERR_INVALID_CIPHERTEXT) : e;
}

void az_kv_crypt_free(kv_crypt *c)
{
	if (c->secret_out)
		sec_free(c->out);
	else
		free(c->out);
	free(c->riv);
	free(c->rtag);
	c->out = c->riv = c->rtag = NULL;
}

static bool put_b64(json_t *o, const char *name, const uint8_t *p, size_t n)
{
	char *v = b64url_encode(p, n);
	if (!v)
		return false;
	bool ok = json_object_set_new(o, name, json_string(v)) == 0;
	OPENSSL_cleanse(v, strlen(v));
	free(v);
	return ok;
}

bool az_get_b64(json_t *reply, const char *name, bool secret, uint8_t **out, size_t *len)
{
	json_t *v = json_object_get(reply, name);
	return json_is_string(v) &&
	       b64url_decode(json_string_value(v), json_string_length(v), secret, out, len);
}

p11k_err az_kv_crypt_call(az_state *s, kv_crypt *c, provider_status *st)
{
	c->out = c->riv = c->rtag = NULL;
	c->outlen = c->rivlen = c->rtaglen = 0;
	c->kid[0] = 0;
	json_t *req = json_object();
	bool ok = req && json_object_set_new(req, "alg", json_string(c->alg)) == 0 &&
		  put_b64(req, "value", c->in, c->inlen) &&
		  (!c->iv || put_b64(req, "iv", c->iv, c->ivlen)) &&
		  (!c->tag || put_b64(req, "tag", c->tag, c->taglen)) &&
		  (!c->aad || put_b64(req, "aad", c->aad, c->aadlen));
	if (!ok) {
		if (req)
			wipe_json_string(json_object_get(req, "value"));
		json_decref(req);
		return st->err = P11K_ERR_NOMEM;
	}
	json_t *reply = NULL;
	long vstatus = 0;
	p11k_err e = az_vault_call(s, c->op, "POST", c->path, req, &reply, &vstatus, st);
	wipe_json_string(json_object_get(req, "value"));
	json_decref(req);
	if (e != P11K_OK)
		return classify_400(e, vstatus, c->reverse, c->alg, st);
	const char *k = json_string_value(json_object_get(reply, "kid"));
	if (!k || strlen(k) >= sizeof(c->kid) ||
	    !az_get_b64(reply, "value", c->secret_out, &c->out, &c->outlen)) {
		snprintf(st->message, sizeof(st->message), "%s: reply lacks kid or value", c->op);
		e = st->err = P11K_ERR_BAD_REPLY;
	} else if (c->want_iv_tag && (!az_get_b64(reply, "iv", false, &c->riv, &c->rivlen) ||
				      !az_get_b64(reply, "tag", false, &c->rtag, &c->rtaglen))) {
		snprintf(st->message, sizeof(st->message), "%s: reply lacks iv or tag", c->op);
		e = st->err = P11K_ERR_BAD_REPLY;
	} else {
		snprintf(c->kid, sizeof(c->kid), "%s", k);
	}
	wipe_json_string(json_object_get(reply, "value"));
	json_decref(reply);
	if (e != P11K_OK)
		az_kv_crypt_free(c);
	return e;
}

p11k_err az_encrypt(void *state, const char *key_id, const uint8_t *pt, size_t ptlen,
			   const uint8_t *aad, size_t aadlen, uint8_t **blob, size_t *bloblen,
			   char *kvout, size_t kvlen, provider_status *st)
{
	az_state *s = state;
	char path[400], name[128], kid[MAX_KID];
	p11k_err e = key_path(key_id, "/wrapkey", path, sizeof(path), name, sizeof(name), st);
	if (e != P11K_OK)
		return e;
	int oct = kty_get(s, key_id);
	if (oct < 0) {
		/* The algorithm follows the key type: one GetKey per key id. */
		key_info ki;
		if ((e = az_describe(s, key_id, &ki, st)) != P11K_OK)
			return e;
		oct = kty_get(s, key_id);
		if (oct < 0)
			return st->err = P11K_ERR_NOMEM;
	}
	const char *alg = oct ? "CKM_AES_KEY_WRAP_PAD" : "RSA-OAEP-256";
	uint8_t *in = sec_alloc(AAD_HASH_LEN + ptlen);
	if (!in)
		return st->err = P11K_ERR_NOMEM;
	if (!sha256(aad, aadlen, in)) {
		sec_free(in);
		return st->err = P11K_ERR_INTERNAL;
	}
	memcpy(in + AAD_HASH_LEN, pt, ptlen);
	kv_crypt c = {.op = "wrapKey", .path = path, .alg = alg, .in = in,
		      .inlen = AAD_HASH_LEN + ptlen};
	e = az_kv_crypt_call(s, &c, st);
	sec_free(in);
	if (e != P11K_OK)
		return e;
	uint8_t *w = c.out;
	size_t wl = c.outlen;
	snprintf(kid, sizeof(kid), "%s", c.kid);
	char kn[128], kv[128];
	if (!az_parse_kid(kid, kn, sizeof(kn), kv, sizeof(kv)) || strcasecmp(kn, name) != 0) {
		snprintf(st->message, sizeof(st->message), "wrapKey: reply names another key");
		free(w);
		return st->err = P11K_ERR_BAD_REPLY;
	}
	size_t al = strlen(alg), kl = strlen(kid);
	size_t n = 4 + 1 + 1 + al + 2 + kl + wl;
	uint8_t *b = malloc(n), *p = b;
	if (!b) {
		free(w);
		return st->err = P11K_ERR_NOMEM;
	}
	memcpy(p, BLOB_MAGIC, 4);
	p += 4;
	*p++ = BLOB_VERSION;
	*p++ = (uint8_t)al;
	memcpy(p, alg, al);
	p += al;
	*p++ = (uint8_t)(kl >> 8);
	*p++ = (uint8_t)kl;
	memcpy(p, kid, kl);
	p += kl;
	memcpy(p, w, wl);
	free(w);
	*blob = b;
	*bloblen = n;
	snprintf(kvout, kvlen, "%s", kv);
	return P11K_OK;
}

p11k_err az_decrypt(void *state, const char *key_id, const uint8_t *blob,
			   size_t bloblen, const uint8_t *aad, size_t aadlen, uint8_t **pt,
			   size_t *ptlen, provider_status *st)
{
	az_state *s = state;
	char name[128], ver[128], alg[MAX_ALG + 1], kid[MAX_KID], kn[128], kv[128];
	*pt = NULL;
	*ptlen = 0;
	if (!az_parse_key_id(key_id, name, sizeof(name), ver, sizeof(ver))) {
		snprintf(st->message, sizeof(st->message), "key id '%.100s' is malformed", key_id);
		return st->err = P11K_ERR_KEY_NOT_FOUND;
	}
	/* Parse the header; every length is checked against what is left. */
	size_t off = 0, al, kl;
	bool ok = bloblen > 6 && memcmp(blob, BLOB_MAGIC, 4) == 0 && blob[4] == BLOB_VERSION;
	if (ok) {
		al = blob[5];
		off = 6;
		ok = al > 0 && al <= MAX_ALG && bloblen > off + al + 2;
	}
	if (ok) {
		memcpy(alg, blob + off, al);
		alg[al] = 0;
		off += al;
		kl = ((size_t)blob[off] << 8) | blob[off + 1];
		off += 2;
		ok = kl > 0 && kl < MAX_KID && bloblen > off + kl;
	}
	if (ok) {
		memcpy(kid, blob + off, kl);
		kid[kl] = 0;
		off += kl;
		ok = memchr(kid, 0, kl) == NULL && az_parse_kid(kid, kn, sizeof(kn), kv, sizeof(kv)) &&
		     (strcmp(alg, "RSA-OAEP-256") == 0 || strcmp(alg, "RSA-OAEP") == 0 ||
		      strcmp(alg, "CKM_AES_KEY_WRAP_PAD") == 0 ||
		      strcmp(alg, "CKM_AES_KEY_WRAP") == 0 || strcmp(alg, "A256KW") == 0);
	}
	if (!ok) {
		snprintf(st->message, sizeof(st->message), "not an Azure key blob");
		return st->err = P11K_ERR_INVALID_CIPHERTEXT;
	}
	if (strcasecmp(kn, name) != 0) {
		snprintf(st->message, sizeof(st->message),
			 "blob was made by key %.60s, not %.60s", kn, name);
		return st->err = P11K_ERR_INVALID_CIPHERTEXT;
	}
	char path[400];
	snprintf(path, sizeof(path), "/keys/%s/%s/unwrapkey", kn, kv);
	/* A 400 about the data (BadParameter): the service could not unwrap
	 * the value, a damaged blob. */
	kv_crypt c = {.op = "unwrapKey", .path = path, .alg = alg, .in = blob + off,
		      .inlen = bloblen - off, .reverse = true, .secret_out = true};
	p11k_err e = az_kv_crypt_call(s, &c, st);
	if (e != P11K_OK)
		return e;
	uint8_t *out = c.out;
	size_t outlen = c.outlen;
	uint8_t h[AAD_HASH_LEN];
	if (!sha256(aad, aadlen, h)) {
		sec_free(out);
		return st->err = P11K_ERR_INTERNAL;
	}
	if (outlen < AAD_HASH_LEN || CRYPTO_memcmp(out, h, AAD_HASH_LEN) != 0) {
		sec_free(out);
		snprintf(st->message, sizeof(st->message), "the blob is bound to other AAD");
		return st->err = P11K_ERR_INVALID_CIPHERTEXT;
	}
	uint8_t *r = sec_alloc(outlen - AAD_HASH_LEN ? outlen - AAD_HASH_LEN : 1);
	if (!r) {
		sec_free(out);
		return st->err = P11K_ERR_NOMEM;
	}
	memcpy(r, out + AAD_HASH_LEN, outlen - AAD_HASH_LEN);
	*pt = r;
	*ptlen = outlen - AAD_HASH_LEN;
	sec_free(out);
	return P11K_OK;
}

size_t az_max_blob_len(void *state, size_t ptlen)
{
	(void)state;
	/* Header, the longest kid, then the larger of an RSA-4096 block and
	 * an RFC 5649 wrap of hash + plaintext (8-byte ICV, padded to 8). */
	size_t w = AAD_HASH_LEN + ptlen + 16;
	if (w < 512)
		w = 512;
	return 4 + 1 + 1 + MAX_ALG + 2 + MAX_KID + w;
}

