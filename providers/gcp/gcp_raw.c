/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Standard AES-GCM on RAW_ENCRYPT_DECRYPT keys (remote_crypt; docs/GCP.md
 * "Raw AES-GCM keys"): the keys' version lists and their cache, rawEncrypt
 * and rawDecrypt, and the newest-first version walk for decryption.
 * Asymmetric keys (ASYMMETRIC_SIGN, ASYMMETRIC_DECRYPT): getPublicKey,
 * asymmetricSign and asymmetricDecrypt (RSA-OAEP; encryption runs in the
 * module with the public key), on the same version lists.
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
static p11k_err list_once(gcp_state *s, const char *key, bool filter,
			  unsigned (*kind)(const char *alg), raw_versions *v, list_seen *seen,
			  provider_status *st)
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
			if (!kind(alg)) {
				snprintf(seen->foreign_alg, sizeof(seen->foreign_alg), "%s",
					 alg ? alg : "?");
				continue;
			}
			versions_add(v, id, kind(alg));
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

p11k_err gcp_list_newest(gcp_state *s, const char *key, unsigned (*kind)(const char *alg),
			 const char *wanted, raw_versions *v, provider_status *st)
{
	list_seen seen = {0};
	memset(v, 0, sizeof(*v));
	p11k_err e = list_once(s, key, true, kind, v, &seen, st);
	/* Nothing enabled: list everything, to say why. */
	if (e == P11K_OK && !v->n && !seen.total)
		e = list_once(s, key, false, kind, v, &seen, st);
	if (e != P11K_OK || v->n)
		return e;
	if (seen.foreign_alg[0]) {
		snprintf(st->message, sizeof(st->message), "%.80s: versions are %.40s, not %.110s",
			 key, seen.foreign_alg, wanted);
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
	p11k_err e = gcp_list_newest(s, key, gcm_bits,
				     "AES_256_GCM/AES_128_GCM (AES-GCM needs a RAW_ENCRYPT_DECRYPT "
				     "key)", v, st);
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
	/* One attempt on one version: raw_once, asym_decrypt_once. */
	p11k_err (*once)(gcp_state *s, const char *version, remote_req *r, uint8_t **out,
			 size_t *outlen, provider_status *st);
} raw_ctx;

static p11k_err raw_attempt(void *arg, size_t i, provider_status *st)
{
	raw_ctx *c = arg;
	char version[GCP_NAME_MAX + 32];
	snprintf(version, sizeof(version), "%s" VERSION_SEP "%lu", c->key_id, c->v->id[i]);
	p11k_err e = c->once(c->s, version, c->r, c->out, c->outlen, st);
	if (e == P11K_ERR_INVALID_CIPHERTEXT)
		log_debug(COMP, "%s does not open it", version);
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
	if (r->alg == RALG_RSA_OAEP_SHA1 || r->alg == RALG_RSA_OAEP_SHA256)
		return gcp_asym_decrypt(s, key_id, r, out, outlen, st);
	if (r->alg != RALG_AES_GCM) {
		snprintf(st->message, sizeof(st->message),
			 "Cloud KMS runs AES-GCM (rawEncrypt) and RSA-OAEP decryption on a key, "
			 "not %s", ralg_name(r->alg));
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
		raw_ctx rc = {s, key_id, &v, r, out, outlen, raw_once};
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


/* --- asymmetric keys (public_key, sign, RSA-OAEP decryption) ---------------------- */

/* CryptoKeyVersionAlgorithm names (resources.proto) the module uses. Not
 * offered: RSA_SIGN_RAW_PKCS1_* (no DigestInfo: another mechanism),
 * EC_SIGN_SECP256K1_SHA256, EC_SIGN_ED25519, the post-quantum and HMAC
 * ones; they are KEY_TYPE. */
typedef struct asym_alg {
	const char *name;
	unsigned uses;      /* ASYM_USE_* */
	sign_alg salg;      /* signing: the one algorithm the version runs */
	remote_alg oaep;    /* decryption: the OAEP hash */
	bool ec;
	unsigned bits;
} asym_alg;

static const asym_alg gcp_asym_algs[] = {
	{"RSA_SIGN_PSS_2048_SHA256", ASYM_USE_SIGN, SALG_RSA_PSS_SHA256, 0, false, 2048},
	{"RSA_SIGN_PSS_3072_SHA256", ASYM_USE_SIGN, SALG_RSA_PSS_SHA256, 0, false, 3072},
	{"RSA_SIGN_PSS_4096_SHA256", ASYM_USE_SIGN, SALG_RSA_PSS_SHA256, 0, false, 4096},
	{"RSA_SIGN_PSS_4096_SHA512", ASYM_USE_SIGN, SALG_RSA_PSS_SHA512, 0, false, 4096},
	{"RSA_SIGN_PKCS1_2048_SHA256", ASYM_USE_SIGN, SALG_RSA_PKCS1_SHA256, 0, false, 2048},
	{"RSA_SIGN_PKCS1_3072_SHA256", ASYM_USE_SIGN, SALG_RSA_PKCS1_SHA256, 0, false, 3072},
	{"RSA_SIGN_PKCS1_4096_SHA256", ASYM_USE_SIGN, SALG_RSA_PKCS1_SHA256, 0, false, 4096},
	{"RSA_SIGN_PKCS1_4096_SHA512", ASYM_USE_SIGN, SALG_RSA_PKCS1_SHA512, 0, false, 4096},
	{"EC_SIGN_P256_SHA256", ASYM_USE_SIGN, SALG_ECDSA_SHA256, 0, true, 256},
	{"EC_SIGN_P384_SHA384", ASYM_USE_SIGN, SALG_ECDSA_SHA384, 0, true, 384},
	{"RSA_DECRYPT_OAEP_2048_SHA256", ASYM_USE_DECRYPT, 0, RALG_RSA_OAEP_SHA256, false, 2048},
	{"RSA_DECRYPT_OAEP_3072_SHA256", ASYM_USE_DECRYPT, 0, RALG_RSA_OAEP_SHA256, false, 3072},
	{"RSA_DECRYPT_OAEP_4096_SHA256", ASYM_USE_DECRYPT, 0, RALG_RSA_OAEP_SHA256, false, 4096},
	{"RSA_DECRYPT_OAEP_2048_SHA1", ASYM_USE_DECRYPT, 0, RALG_RSA_OAEP_SHA1, false, 2048},
	{"RSA_DECRYPT_OAEP_3072_SHA1", ASYM_USE_DECRYPT, 0, RALG_RSA_OAEP_SHA1, false, 3072},
	{"RSA_DECRYPT_OAEP_4096_SHA1", ASYM_USE_DECRYPT, 0, RALG_RSA_OAEP_SHA1, false, 4096},
	/* RSA_DECRYPT_OAEP_4096_SHA512 has no remote_alg: not offered. */
};

/* The table index + 1 of alg, 0 when not offered (gcp_list_newest's kind). */
static unsigned asym_kind(const char *alg)
{
	for (size_t i = 0; alg && i < ARRAY_SIZE(gcp_asym_algs); i++)
		if (strcmp(alg, gcp_asym_algs[i].name) == 0)
			return (unsigned)i + 1;
	return 0;
}

#define ASYM_WANTED "an RSA or EC P-256/P-384 signing algorithm or RSA_DECRYPT_OAEP_* " \
		    "(SHA-1, SHA-256)"

static bool is_version_of(const char *version, const char *key)
{
	size_t kl = strlen(key), sl = strlen(VERSION_SEP);
	return strncmp(version, key, kl) == 0 && strncmp(version + kl, VERSION_SEP, sl) == 0 &&
	       version[kl + sl] && strspn(version + kl + sl, "0123456789") == strlen(version + kl + sl);
}

/* The version of key_id to use: the key id's own when it names one; for a
 * CryptoKey (asymmetric keys have no primary) the newest enabled version
 * of an algorithm offered here (the highest id: ids grow with creation).
 * *kind is its gcp_asym_algs index + 1, 0 when the id pinned it. */
static p11k_err asym_version(gcp_state *s, const char *key_id, char *ver, size_t vl,
			     unsigned *kind, provider_status *st)
{
	*kind = 0;
	if (strstr(key_id, VERSION_SEP)) {
		snprintf(ver, vl, "%s", key_id);
		return P11K_OK;
	}
	raw_versions v;
	p11k_err e = gcp_list_newest(s, key_id, asym_kind, ASYM_WANTED, &v, st);
	if (e != P11K_OK)
		return e;
	snprintf(ver, vl, "%s" VERSION_SEP "%lu", key_id, v.id[0]);
	*kind = v.bits[0];
	return P11K_OK;
}

/* GET {version}/publicKey: pem (its pemCrc32c checked), algorithm, name. */
p11k_err gcp_public_key(void *state, const char *key_id, asym_public *out, provider_status *st)
{
	gcp_state *s = state;
	const char *op = "GetPublicKey";
	char ver[GCP_NAME_MAX + 32], why[160] = "";
	unsigned kind;
	memset(out, 0, sizeof(*out));
	p11k_err e = asym_version(s, key_id, ver, sizeof(ver), &kind, st);
	if (e != P11K_OK)
		return e;
	json_t *reply = NULL;
	e = gcp_kms_call(s, op, ver, "/publicKey", NULL, CALL_ASYM, &reply, st);
	if (e != P11K_OK)
		return e;
	const char *name = json_str_field(reply, "name");
	const char *alg = json_str_field(reply, "algorithm");
	json_t *pem = json_object_get(reply, "pem");
	unsigned k = asym_kind(alg);
	const asym_alg *a = k ? &gcp_asym_algs[k - 1] : NULL;
	spki_desc d;
	if (!name || strcmp(name, ver) != 0) {
		snprintf(why, sizeof(why), "reply names %.100s", name ? name : "no version");
		e = P11K_ERR_BAD_REPLY;
	} else if (!alg) {
		snprintf(why, sizeof(why), "reply names no algorithm");
		e = P11K_ERR_BAD_REPLY;
	} else if (!a) {
		snprintf(why, sizeof(why), "the version is %.40s, not " ASYM_WANTED, alg);
		e = P11K_ERR_KEY_TYPE;
	} else if (kind && kind != k) {
		snprintf(why, sizeof(why), "the version is %.40s; its listing said %.40s", alg,
			 gcp_asym_algs[kind - 1].name);
		e = P11K_ERR_BAD_REPLY;
	} else if (!json_is_string(pem) || json_string_length(pem) > 4096) {
		snprintf(why, sizeof(why), "reply lacks pem");
		e = P11K_ERR_BAD_REPLY;
	}
	if (e == P11K_OK)
		e = gcp_check_crc(reply, op, "pemCrc32c", json_string_value(pem),
				  json_string_length(pem), st);
	if (e == P11K_OK &&
	    !pem_to_der(json_string_value(pem), json_string_length(pem), "PUBLIC KEY", &out->spki,
			&out->spkilen)) {
		snprintf(why, sizeof(why), "pem is not one PEM PUBLIC KEY block");
		e = P11K_ERR_BAD_REPLY;
	}
	if (e == P11K_OK && why[0] == 0 &&
	    (e = spki_check(out->spki, out->spkilen, &d, why, sizeof(why))) == P11K_OK &&
	    (d.ec != a->ec || d.bits != a->bits)) {
		snprintf(why, sizeof(why), "the public key is not the %.40s key its algorithm names",
			 alg);
		e = P11K_ERR_BAD_REPLY;
	}
	if (e == P11K_OK) {
		out->uses = a->uses;
		out->sign_algs = a->salg ? SALG_BIT(a->salg) : 0;
		/* asym_public.version holds 159 characters; resource names may
		 * be longer (gcp_name_ok allows 400). */
		size_t vl = strlen(ver);
		if (vl >= sizeof(out->version)) {
			snprintf(why, sizeof(why), "the version name is longer than %zu characters",
				 sizeof(out->version) - 1);
			e = P11K_ERR_INTERNAL;
		} else {
			memcpy(out->version, ver, vl + 1);
		}
	}
	if (e != P11K_OK) {
		asym_public_free(out);
		if (why[0])
			snprintf(st->message, sizeof(st->message), "%s: %.100s: %.120s", op, ver, why);
		st->err = e;
	}
	json_decref(reply);
	return e;
}

/* POST {version}:asymmetricSign {digest: {sha256|sha384|sha512}, digestCrc32c}:
 * the version is the one asked (of key_id), else the key id's own, else
 * the newest enabled one. The service signs with the version's algorithm,
 * whatever alg says: the module asks only for what public_key offered
 * (one algorithm per version); a listed version's algorithm is checked
 * here too. */
p11k_err gcp_sign(void *state, const char *key_id, const char *version, sign_alg alg,
		  const uint8_t *digest, size_t dlen, uint8_t **sig, size_t *siglen,
		  provider_status *st)
{
	gcp_state *s = state;
	const char *op = "AsymmetricSign";
	char ver[GCP_NAME_MAX + 32];
	unsigned kind = 0;
	*sig = NULL;
	*siglen = 0;
	size_t want = salg_digest_len(alg);
	bool vok = !version || !version[0] || strcmp(version, key_id) == 0 ||
		   is_version_of(version, key_id);
	if (!want || !digest || dlen != want || !vok) {
		snprintf(st->message, sizeof(st->message),
			 "%s: malformed request (algorithm %d, %zu-byte digest, version %.100s)", op,
			 (int)alg, dlen, version ? version : "");
		return st->err = P11K_ERR_INTERNAL;
	}
	p11k_err e = P11K_OK;
	if (version && version[0])
		snprintf(ver, sizeof(ver), "%s", version);
	else
		e = asym_version(s, key_id, ver, sizeof(ver), &kind, st);
	if (e != P11K_OK)
		return e;
	if (kind && gcp_asym_algs[kind - 1].salg != alg) {
		snprintf(st->message, sizeof(st->message), "%s: %.100s is %s: it does not sign with "
			 "algorithm %d", op, ver, gcp_asym_algs[kind - 1].name, (int)alg);
		return st->err = P11K_ERR_KEY_TYPE;
	}
	char crc[16];
	snprintf(crc, sizeof(crc), "%u", crc32c(digest, dlen));
	char *b64 = b64_encode(digest, dlen);
	json_t *req = b64 ? json_pack("{s:{s:s}, s:s}", "digest",
				      want == 32 ? "sha256" : want == 48 ? "sha384" : "sha512", b64,
				      "digestCrc32c", crc)
			  : NULL;
	free(b64);
	if (!req)
		return st->err = P11K_ERR_NOMEM;
	json_t *reply = NULL;
	e = gcp_kms_call(s, op, ver, ":asymmetricSign", req, CALL_ASYM, &reply, st);
	json_decref(req);
	if (e != P11K_OK)
		return e;
	const char *name = json_str_field(reply, "name");
	uint8_t *raw = NULL;
	size_t rawlen = 0;
	if (name && strcmp(name, ver) != 0) {
		snprintf(st->message, sizeof(st->message),
			 "%s: reply names version %.100s, not the one asked for", op, name);
		e = st->err = P11K_ERR_BAD_REPLY;
	}
	if (e == P11K_OK)
		e = gcp_check_verified(reply, op, "verifiedDigestCrc32c", st);
	json_t *sv = json_object_get(reply, "signature");
	if (e == P11K_OK && json_is_string(sv) && json_string_length(sv) > 1024) {
		snprintf(st->message, sizeof(st->message), "%s: signature too long", op);
		e = st->err = P11K_ERR_BAD_REPLY;
	}
	if (e == P11K_OK)
		e = gcp_get_bytes(reply, op, "signature", false, &raw, &rawlen, st);
	if (e == P11K_OK) {
		char why[120];
		e = sig_for_module(alg, true, &raw, rawlen, sig, siglen, why, sizeof(why));
		if (e != P11K_OK) {
			snprintf(st->message, sizeof(st->message), "%s: %s", op, why);
			st->err = e;
		}
	}
	free(raw);
	json_decref(reply);
	return e;
}

/* One asymmetricDecrypt on version: {ciphertext, ciphertextCrc32c} ->
 * plaintext (secure memory) checked against plaintextCrc32c, with
 * verifiedCiphertextCrc32c. */
static p11k_err asym_decrypt_once(gcp_state *s, const char *version, remote_req *r,
				  uint8_t **out, size_t *outlen, provider_status *st)
{
	const char *op = "AsymmetricDecrypt";
	json_t *req = json_object(), *reply = NULL;
	if (!req || !gcp_set_bytes(req, "ciphertext", r->in, r->inlen)) {
		json_decref(req);
		return st->err = P11K_ERR_NOMEM;
	}
	p11k_err e = gcp_kms_call(s, op, version, ":asymmetricDecrypt", req, CALL_ASYM_DECRYPT,
				  &reply, st);
	json_decref(req);
	if (e != P11K_OK)
		return e;
	e = gcp_check_verified(reply, op, "verifiedCiphertextCrc32c", st);
	if (e == P11K_OK)
		e = gcp_get_bytes(reply, op, "plaintext", true, out, outlen, st);
	if (e == P11K_OK && *outlen > 512) {
		sec_free(*out);
		*out = NULL;
		*outlen = 0;
		snprintf(st->message, sizeof(st->message), "%s: plaintext longer than a modulus", op);
		e = st->err = P11K_ERR_BAD_REPLY;
	}
	wipe_json_string(json_object_get(reply, "plaintext"));
	json_decref(reply);
	return e;
}

/* RSA-OAEP decryption on an ASYMMETRIC_DECRYPT key. A version name pins
 * the version. A CryptoKey decrypts with the newest enabled version of the
 * OAEP hash asked (the one public_key offers the module to encrypt with),
 * then the older enabled ones (up to RAW_MAX_VERSIONS), moving on only
 * when a version does not open the ciphertext: the ciphertext names no
 * version. Encryption is the module's, with the public key. */
p11k_err gcp_asym_decrypt(gcp_state *s, const char *key_id, remote_req *r, uint8_t **out,
			  size_t *outlen, provider_status *st)
{
	if (r->encrypt) {
		snprintf(st->message, sizeof(st->message),
			 "Cloud KMS has no RSA-OAEP encryption call: encrypt with the public key");
		return st->err = P11K_ERR_KEY_TYPE;
	}
	if (!r->in || !r->inlen || r->inlen > 512 || r->aadlen) {
		snprintf(st->message, sizeof(st->message), "AsymmetricDecrypt: malformed request");
		return st->err = P11K_ERR_INTERNAL;
	}
	if (strstr(key_id, VERSION_SEP))
		return asym_decrypt_once(s, key_id, r, out, outlen, st);
	raw_versions v, m = {0};
	p11k_err e = gcp_list_newest(s, key_id, asym_kind, ASYM_WANTED, &v, st);
	if (e != P11K_OK)
		return e;
	for (size_t i = 0; i < v.n; i++)
		if (gcp_asym_algs[v.bits[i] - 1].oaep == r->alg) {
			m.id[m.n] = v.id[i];
			m.bits[m.n++] = v.bits[i];
		}
	if (!m.n) {
		snprintf(st->message, sizeof(st->message),
			 "%.120s: no enabled version is RSA_DECRYPT_OAEP_*_%s (the newest is %s)",
			 key_id, r->alg == RALG_RSA_OAEP_SHA1 ? "SHA1" : "SHA256",
			 gcp_asym_algs[v.bits[0] - 1].name);
		return st->err = P11K_ERR_KEY_TYPE;
	}
	raw_ctx c = {s, key_id, &m, r, out, outlen, asym_decrypt_once};
	version_walk w = {.n = m.n, .attempt = raw_attempt, .next = raw_next, .arg = &c};
	return versions_try(&w, NULL, st);
}

