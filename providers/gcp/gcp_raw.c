/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Standard AES-GCM on RAW_ENCRYPT_DECRYPT keys (remote_crypt; docs/GCP.md
 * "Raw AES-GCM keys"): the keys' version lists and their cache, rawEncrypt
 * and rawDecrypt, and the newest-first version walk for decryption.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "gcp_impl.h"
#include "crc32c.h"
#include "common/log.h"
#include "common/secmem.h"
#include "providers/common/codec.h"
#include "providers/common/errmap.h"
#include "providers/common/util.h"
#include "providers/common/versions.h"

/* --- raw AES-GCM (RAW_ENCRYPT_DECRYPT keys) --------------------------------- */

static unsigned gcm_bits(const char *alg)
{
	if (alg && strcmp(alg, "AES_256_GCM") == 0)
		return 256;
	if (alg && strcmp(alg, "AES_128_GCM") == 0)
		return 128;
	return 0;
}

/* Keep v the newest RAW_MAX_VERSIONS ids, highest first. */
static void versions_add(raw_versions *v, unsigned long id, unsigned bits)
{
	size_t i = v->n;
	for (size_t j = 0; j < v->n; j++)
		if (v->id[j] == id)
			return; /* listed twice across pages */
	if (i == RAW_MAX_VERSIONS) {
		if (id < v->id[i - 1])
			return;
		i--;
	} else {
		v->n++;
	}
	for (; i > 0 && v->id[i - 1] < id; i--) {
		v->id[i] = v->id[i - 1];
		v->bits[i] = v->bits[i - 1];
	}
	v->id[i] = id;
	v->bits[i] = bits;
}

/* What a listing of a key's versions saw besides its enabled GCM ones. */
typedef struct list_seen {
	size_t total, disabled;
	char foreign_alg[48]; /* an enabled version's non-GCM algorithm */
} list_seen;

/* One bounded listing of key's versions (only the enabled ones when
 * filter; filtered here too, whatever the service did). */
static p11k_err list_once(gcp_state *s, const char *key, bool filter, raw_versions *v,
			  list_seen *seen, provider_status *st)
{
	char suffix[1024], prefix[GCP_NAME_MAX + 32];
	char *token = NULL;
	p11k_err e = P11K_OK;
	snprintf(prefix, sizeof(prefix), "%s" VERSION_SEP, key);
	size_t pl = strlen(prefix);
	for (int page = 0; e == P11K_OK && page < RAW_LIST_PAGES; page++) {
		json_t *reply = NULL;
		snprintf(suffix, sizeof(suffix), "/cryptoKeyVersions?pageSize=100%s%s%s",
			 filter ? "&filter=state%3DENABLED" : "", token ? "&pageToken=" : "",
			 token ? token : "");
		free(token);
		token = NULL;
		e = gcp_kms_call(s, "ListCryptoKeyVersions", key, suffix, NULL, CALL_PLAIN, &reply, st);
		if (e != P11K_OK)
			break;
		json_t *arr = json_object_get(reply, "cryptoKeyVersions");
		if (arr && !json_is_array(arr)) {
			snprintf(st->message, sizeof(st->message),
				 "ListCryptoKeyVersions: cryptoKeyVersions is not a list");
			e = st->err = P11K_ERR_BAD_REPLY;
		}
		size_t i;
		json_t *ver;
		json_array_foreach(arr, i, ver) {
			const char *name = json_string_value(json_object_get(ver, "name"));
			const char *state = json_string_value(json_object_get(ver, "state"));
			const char *alg = json_string_value(json_object_get(ver, "algorithm"));
			if (!name || strncmp(name, prefix, pl) != 0 || !name[pl] ||
			    strspn(name + pl, "0123456789") != strlen(name + pl) ||
			    strlen(name + pl) > 9)
				continue; /* not one of this key's versions */
			unsigned long id = strtoul(name + pl, NULL, 10);
			seen->total++;
			key_state ks = gcp_state_of(state);
			if (ks == KEY_STATE_DISABLED)
				seen->disabled++;
			if (ks != KEY_STATE_ENABLED)
				continue;
			if (!gcm_bits(alg)) {
				snprintf(seen->foreign_alg, sizeof(seen->foreign_alg), "%s",
					 alg ? alg : "?");
				continue;
			}
			versions_add(v, id, gcm_bits(alg));
		}
		const char *next = json_string_value(json_object_get(reply, "nextPageToken"));
		/* Percent-encoded, a token of up to 300 characters fits the URL. */
		if (e == P11K_OK && next && strlen(next) > 300)
			log_warn(COMP, "ListCryptoKeyVersions: page token too long; using the "
				 "versions listed so far");
		else if (e == P11K_OK && next && *next &&
			 !(token = pct_encode(next, strlen(next))))
			e = P11K_ERR_NOMEM;
		json_decref(reply);
		if (!token)
			break;
	}
	if (token) {
		log_warn(COMP, "ListCryptoKeyVersions: %s has more than %d pages of versions; "
			 "using the first ones", key, RAW_LIST_PAGES);
		free(token);
	}
	return e;
}

/* The enabled AES-GCM versions of a raw CryptoKey, from the service. */
static p11k_err list_versions(gcp_state *s, const char *key, raw_versions *v,
			      provider_status *st)
{
	list_seen seen = {0};
	memset(v, 0, sizeof(*v));
	p11k_err e = list_once(s, key, true, v, &seen, st);
	/* Nothing enabled: list everything, to say why. */
	if (e == P11K_OK && !v->n && !seen.total)
		e = list_once(s, key, false, v, &seen, st);
	if (e != P11K_OK || v->n)
		return e;
	if (seen.foreign_alg[0]) {
		snprintf(st->message, sizeof(st->message),
			 "%.120s: versions are %.40s, not AES_256_GCM/AES_128_GCM (AES-GCM needs "
			 "a RAW_ENCRYPT_DECRYPT key)", key, seen.foreign_alg);
		e = P11K_ERR_KEY_TYPE;
	} else if (seen.disabled) {
		snprintf(st->message, sizeof(st->message),
			 "%.120s: no enabled version (%zu disabled)", key, seen.disabled);
		e = P11K_ERR_KEY_DISABLED;
	} else {
		snprintf(st->message, sizeof(st->message),
			 "%.120s: no enabled version (%zu destroyed or unusable)", key, seen.total);
		e = P11K_ERR_KEY_NOT_FOUND;
	}
	return st->err = e;
}

/* The versions to use for key: cached for cache_ttl seconds unless fresh
 * is asked for. *cached says where they came from. */
static p11k_err raw_versions_of(gcp_state *s, const char *key, bool fresh, raw_versions *v,
				bool *cached, provider_status *st)
{
	uint64_t now = clock_now_s();
	*cached = false;
	if (s->lock_ok && !fresh && s->cache_ttl) {
		pthread_mutex_lock(&s->lock);
		for (size_t i = 0; i < RAW_CACHE_SLOTS; i++)
			if (strcmp(s->cache[i].key, key) == 0 && now >= s->cache[i].at &&
			    now - s->cache[i].at < s->cache_ttl) {
				*v = s->cache[i].v;
				*cached = true;
				break;
			}
		pthread_mutex_unlock(&s->lock);
		if (*cached)
			return P11K_OK;
	}
	p11k_err e = list_versions(s, key, v, st);
	if (s->lock_ok && s->cache_ttl) {
		pthread_mutex_lock(&s->lock);
		raw_cache *slot = NULL;
		for (size_t i = 0; i < RAW_CACHE_SLOTS && !slot; i++)
			if (strcmp(s->cache[i].key, key) == 0)
				slot = &s->cache[i];
		if (e != P11K_OK) {
			if (slot)
				slot->key[0] = 0; /* no stale list outlives a failure */
		} else {
			for (size_t i = 0; i < RAW_CACHE_SLOTS && !slot; i++)
				if (!s->cache[i].key[0])
					slot = &s->cache[i];
			if (!slot)
				slot = &s->cache[s->cache_next++ % RAW_CACHE_SLOTS];
			snprintf(slot->key, sizeof(slot->key), "%s", key);
			slot->at = now;
			slot->v = *v;
		}
		pthread_mutex_unlock(&s->lock);
	}
	return e;
}

static void raw_forget(gcp_state *s, const char *key)
{
	if (!s->lock_ok)
		return;
	pthread_mutex_lock(&s->lock);
	for (size_t i = 0; i < RAW_CACHE_SLOTS; i++)
		if (strcmp(s->cache[i].key, key) == 0)
			s->cache[i].key[0] = 0;
	pthread_mutex_unlock(&s->lock);
}

/* tagLength: an int32, absent meaning the default of 16 bytes. */
static bool tag_length_ok(const json_t *reply)
{
	json_t *t = json_object_get(reply, "tagLength");
	if (!t || json_is_null(t))
		return true;
	if (json_is_integer(t))
		return json_integer_value(t) == REMOTE_GCM_TAG_LEN;
	return json_is_string(t) && strcmp(json_string_value(t), "16") == 0;
}

static p11k_err raw_encrypt(gcp_state *s, const char *version, remote_req *r, uint8_t **out,
			    size_t *outlen, provider_status *st)
{
	const char *op = "RawEncrypt";
	json_t *req = json_object();
	if (!req || !gcp_set_bytes(req, "plaintext", r->in, r->inlen) ||
	    !gcp_set_aad(req, r->aad, r->aadlen)) {
		wipe_json_string(json_object_get(req, "plaintext"));
		json_decref(req);
		return P11K_ERR_NOMEM;
	}
	json_t *reply = NULL;
	p11k_err e = gcp_kms_call(s, op, version, ":rawEncrypt", req, CALL_RAW_ENCRYPT, &reply, st);
	wipe_json_string(json_object_get(req, "plaintext"));
	json_decref(req);
	if (e != P11K_OK)
		return e;
	uint8_t *iv = NULL;
	size_t ivlen = 0;
	const char *ver = json_string_value(json_object_get(reply, "name"));
	if (ver && strcmp(ver, version) != 0) {
		snprintf(st->message, sizeof(st->message),
			 "%s: reply names version %.100s, not the one asked for", op, ver);
		e = st->err = P11K_ERR_BAD_REPLY;
	}
	if (e == P11K_OK)
		e = gcp_check_verified(reply, op, "verifiedPlaintextCrc32c", st);
	if (e == P11K_OK && r->aadlen)
		e = gcp_check_verified(reply, op, "verifiedAdditionalAuthenticatedDataCrc32c", st);
	if (e == P11K_OK)
		e = gcp_get_bytes(reply, op, "ciphertext", true, out, outlen, st);
	if (e == P11K_OK)
		e = gcp_get_bytes(reply, op, "initializationVector", false, &iv, &ivlen, st);
	if (e == P11K_OK && ivlen != REMOTE_GCM_IV_LEN) {
		snprintf(st->message, sizeof(st->message),
			 "%s: initializationVector is %zu bytes, not %d", op, ivlen,
			 REMOTE_GCM_IV_LEN);
		e = st->err = P11K_ERR_BAD_REPLY;
	}
	if (e == P11K_OK && !tag_length_ok(reply)) {
		snprintf(st->message, sizeof(st->message), "%s: tagLength is not %d", op,
			 REMOTE_GCM_TAG_LEN);
		e = st->err = P11K_ERR_BAD_REPLY;
	}
	if (e == P11K_OK && *outlen != r->inlen + REMOTE_GCM_TAG_LEN) {
		snprintf(st->message, sizeof(st->message),
			 "%s: ciphertext is %zu bytes for %zu of plaintext", op, *outlen, r->inlen);
		e = st->err = P11K_ERR_BAD_REPLY;
	}
	if (e == P11K_OK) {
		memcpy(r->iv, iv, REMOTE_GCM_IV_LEN);
	} else {
		sec_free(*out);
		*out = NULL;
		*outlen = 0;
	}
	free(iv);
	json_decref(reply);
	return e;
}

static p11k_err raw_decrypt(gcp_state *s, const char *version, remote_req *r, uint8_t **out,
			    size_t *outlen, provider_status *st)
{
	const char *op = "RawDecrypt";
	json_t *req = json_object();
	if (!req || !gcp_set_bytes(req, "ciphertext", r->in, r->inlen) ||
	    !gcp_set_bytes(req, "initializationVector", r->iv, REMOTE_GCM_IV_LEN) ||
	    !gcp_set_aad(req, r->aad, r->aadlen) ||
	    json_object_set_new(req, "tagLength", json_integer(REMOTE_GCM_TAG_LEN)) != 0) {
		json_decref(req);
		return P11K_ERR_NOMEM;
	}
	json_t *reply = NULL;
	p11k_err e = gcp_kms_call(s, op, version, ":rawDecrypt", req, CALL_RAW_DECRYPT, &reply, st);
	json_decref(req);
	if (e != P11K_OK)
		return e;
	e = gcp_get_bytes(reply, op, "plaintext", true, out, outlen, st);
	if (e == P11K_OK)
		e = gcp_check_verified(reply, op, "verifiedCiphertextCrc32c", st);
	if (e == P11K_OK)
		e = gcp_check_verified(reply, op, "verifiedInitializationVectorCrc32c", st);
	if (e == P11K_OK && r->aadlen)
		e = gcp_check_verified(reply, op, "verifiedAdditionalAuthenticatedDataCrc32c", st);
	if (e == P11K_OK && *outlen != r->inlen - REMOTE_GCM_TAG_LEN) {
		snprintf(st->message, sizeof(st->message),
			 "%s: plaintext is %zu bytes for %zu of ciphertext", op, *outlen, r->inlen);
		e = st->err = P11K_ERR_BAD_REPLY;
	}
	if (e != P11K_OK) {
		sec_free(*out);
		*out = NULL;
		*outlen = 0;
	}
	json_decref(reply);
	return e;
}

static const char *ralg_name(remote_alg a)
{
	switch (a) {
	case RALG_RSA_OAEP_SHA1: return "RSA-OAEP (SHA-1)";
	case RALG_RSA_OAEP_SHA256: return "RSA-OAEP (SHA-256)";
	case RALG_AES_KW: return "AES key wrap";
	case RALG_AES_KWP: return "AES key wrap with padding";
	case RALG_AES_GCM: return "AES-GCM";
	}
	return "?";
}

static p11k_err raw_once(gcp_state *s, const char *version, remote_req *r, uint8_t **out,
			 size_t *outlen, provider_status *st)
{
	p11k_err e = r->encrypt ? raw_encrypt(s, version, r, out, outlen, st)
				: raw_decrypt(s, version, r, out, outlen, st);
	return st->err = e;
}

typedef struct raw_ctx {
	gcp_state *s;
	const char *key_id;
	const raw_versions *v;
	remote_req *r;
	uint8_t **out;
	size_t *outlen;
} raw_ctx;

static p11k_err raw_attempt(void *arg, size_t i, provider_status *st)
{
	raw_ctx *c = arg;
	char version[GCP_NAME_MAX + 32];
	snprintf(version, sizeof(version), "%s" VERSION_SEP "%lu", c->key_id, c->v->id[i]);
	p11k_err e = raw_once(c->s, version, c->r, c->out, c->outlen, st);
	if (e == P11K_ERR_INVALID_CIPHERTEXT)
		log_debug(COMP, "RawDecrypt: %s does not open it", version);
	return e;
}

/* Only a version that does not open the ciphertext sends the walk on. */
static bool raw_next(p11k_err e)
{
	return e == P11K_ERR_INVALID_CIPHERTEXT;
}

/* Standard AES-GCM on a RAW_ENCRYPT_DECRYPT key. A version name pins the
 * version; a CryptoKey (which has no primary when raw) encrypts with its
 * newest enabled version and decrypts with the newest enabled ones in
 * turn, moving on only when a version does not open the ciphertext. */
p11k_err gcp_remote_crypt(void *state, const char *key_id, remote_req *r,
				 uint8_t **out, size_t *outlen, provider_status *st)
{
	gcp_state *s = state;
	*out = NULL;
	*outlen = 0;
	if (r->alg != RALG_AES_GCM) {
		snprintf(st->message, sizeof(st->message),
			 "Cloud KMS runs only AES-GCM (rawEncrypt) on a key, not %s",
			 ralg_name(r->alg));
		return st->err = P11K_ERR_KEY_TYPE;
	}
	if (!r->encrypt && r->inlen < REMOTE_GCM_TAG_LEN) {
		snprintf(st->message, sizeof(st->message),
			 "RawDecrypt: %zu bytes is shorter than the tag", r->inlen);
		return st->err = P11K_ERR_INVALID_CIPHERTEXT;
	}
	if (strstr(key_id, VERSION_SEP))
		return raw_once(s, key_id, r, out, outlen, st);
	p11k_err e = P11K_OK;
	for (int pass = 0; pass < 2; pass++) {
		raw_versions v;
		bool cached;
		e = raw_versions_of(s, key_id, pass > 0, &v, &cached, st);
		if (e != P11K_OK)
			return e;
		if (r->key_bits && v.bits[0] != r->key_bits) {
			snprintf(st->message, sizeof(st->message),
				 "%.120s is AES_%u_GCM; the configuration declares %zu bits", key_id,
				 v.bits[0], r->key_bits);
			return st->err = P11K_ERR_KEY_TYPE;
		}
		raw_ctx rc = {s, key_id, &v, r, out, outlen};
		version_walk w = {.n = r->encrypt ? 1 : v.n, .attempt = raw_attempt,
				  .next = raw_next, .arg = &rc};
		e = versions_try(&w, NULL, st);
		/* A version disabled or destroyed since the listing: list
		 * again, once. */
		if (cached && (e == P11K_ERR_KEY_DISABLED || e == P11K_ERR_KEY_NOT_FOUND)) {
			log_info(COMP, "%s: %s; listing its versions again", key_id, st->message);
			raw_forget(s, key_id);
			continue;
		}
		break;
	}
	return e;
}

size_t gcp_max_blob_len(void *state, size_t ptlen)
{
	(void)state;
	/* Google's symmetric ciphertexts add a header, IV and tag of well
	 * under 512 bytes to the plaintext (at most 64 KiB). */
	return ptlen + 512;
}

