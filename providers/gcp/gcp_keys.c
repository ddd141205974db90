/* SPDX-License-Identifier: Apache-2.0 */
/*
 * CryptoKeys as the module's sealing keys (gcp.c header): describe, and
 * envelope encrypt/decrypt with the AAD as additionalAuthenticatedData.
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

/* --- provider operations ------------------------------------------------ */

/* RFC 3339 "2024-01-01T00:00:00.123456Z" -> seconds; 0 when unparsable. */
static uint64_t rfc3339(const char *s)
{
	struct tm tm = {0};
	int n = 0;
	if (!s || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
			 &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &n) != 6)
		return 0;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	time_t t = timegm(&tm);
	return t > 0 ? (uint64_t)t : 0;
}

key_state gcp_state_of(const char *v)
{
	if (!v)
		return KEY_STATE_UNKNOWN;
	if (strcmp(v, "ENABLED") == 0)
		return KEY_STATE_ENABLED;
	if (strcmp(v, "DESTROYED") == 0 || strcmp(v, "DESTROY_SCHEDULED") == 0 ||
	    strcmp(v, "PENDING_EXTERNAL_DESTRUCTION") == 0)
		return KEY_STATE_DESTROYED;
	/* DISABLED, and versions not (yet) usable: PENDING_GENERATION,
	 * PENDING_IMPORT, IMPORT_FAILED, GENERATION_FAILED, ... */
	return KEY_STATE_DISABLED;
}

p11k_err gcp_describe(void *state, const char *key_id, key_info *out,
			     provider_status *st)
{
	gcp_state *s = state;
	json_t *reply = NULL;
	bool version = strstr(key_id, VERSION_SEP) != NULL;
	memset(out, 0, sizeof(*out));
	p11k_err e = gcp_kms_call(s, version ? "GetCryptoKeyVersion" : "GetCryptoKey", key_id, "",
			      NULL, CALL_PLAIN, &reply, st);
	if (e != P11K_OK)
		return e;
	/* A key's state is its primary version's; a version names itself. */
	json_t *v = version ? reply : json_object_get(reply, "primary");
	const char *name = json_string_value(json_object_get(reply, "name"));
	if (!json_is_object(v)) {
		/* No primary: nothing can encrypt (a key whose versions are
		 * all gone, or not of purpose ENCRYPT_DECRYPT). */
		const char *purpose = json_string_value(json_object_get(reply, "purpose"));
		snprintf(st->message, sizeof(st->message), "GetCryptoKey: %.100s has no primary "
			 "version (purpose %.30s)", key_id, purpose ? purpose : "?");
		log_warn(COMP, "%s", st->message);
		out->state = KEY_STATE_DISABLED;
	} else {
		out->state = gcp_state_of(json_string_value(json_object_get(v, "state")));
		snprintf(out->primary_version, sizeof(out->primary_version), "%s",
			 json_string_value(json_object_get(v, "name"))
				 ? json_string_value(json_object_get(v, "name"))
				 : "");
		/* The primary's creation is the last rotation, and the age of
		 * the material that encrypts now (a pinned version's own). */
		out->rotated_at = rfc3339(json_string_value(json_object_get(v, "createTime")));
		out->version_created_at = out->rotated_at;
	}
	snprintf(out->key_id, sizeof(out->key_id), "%s", name ? name : key_id);
	out->created_at = rfc3339(json_string_value(json_object_get(reply, "createTime")));
	if (out->state == KEY_STATE_UNKNOWN) {
		snprintf(st->message, sizeof(st->message), "GetCryptoKey: no version state");
		e = st->err = P11K_ERR_BAD_REPLY;
	}
	json_decref(reply);
	return e;
}

/* The CryptoKey of a key id that may name a version. */
static const char *crypto_key_of(const char *key_id, char *out, size_t len)
{
	const char *sep = strstr(key_id, VERSION_SEP);
	snprintf(out, len, "%.*s", sep ? (int)(sep - key_id) : (int)strlen(key_id), key_id);
	return out;
}

/* encrypt/decrypt refused with FAILED_PRECONDITION (KEY_DISABLED): on a
 * key whose purpose is not ENCRYPT_DECRYPT (a RAW_ENCRYPT_DECRYPT key named
 * as an envelope key) the service says "no primary version", as for a key
 * whose versions are all gone. One GetCryptoKey, on that failure only,
 * tells the two apart: a wrong purpose is a key type mismatch, which no
 * retry and no re-enabling cures. */
static p11k_err purpose_check(gcp_state *s, const char *crypto_key, p11k_err e,
			      provider_status *st)
{
	if (e != P11K_ERR_KEY_DISABLED)
		return e;
	provider_status pst = {0};
	json_t *reply = NULL;
	if (gcp_kms_call(s, "GetCryptoKey", crypto_key, "", NULL, CALL_PLAIN, &reply, &pst) !=
	    P11K_OK)
		return e;
	const char *purpose = json_string_value(json_object_get(reply, "purpose"));
	if (purpose && strcmp(purpose, "ENCRYPT_DECRYPT") != 0) {
		snprintf(st->message, sizeof(st->message),
			 "%.100s has purpose %.30s: the envelope needs an ENCRYPT_DECRYPT key "
			 "(declare a RAW_ENCRYPT_DECRYPT key \"type\": \"aes\")",
			 crypto_key, purpose);
		e = st->err = P11K_ERR_KEY_TYPE;
	}
	json_decref(reply);
	return e;
}

/* Is ver the key id itself or one of its versions? */
static bool version_of(const char *ver, const char *key_id)
{
	size_t kl = strlen(key_id);
	return ver && (strcmp(ver, key_id) == 0 ||
		       (strncmp(ver, key_id, kl) == 0 &&
			strncmp(ver + kl, VERSION_SEP, strlen(VERSION_SEP)) == 0));
}

p11k_err gcp_encrypt(void *state, const char *key_id, const uint8_t *pt,
			    size_t ptlen, const uint8_t *aad, size_t aadlen,
			    uint8_t **blob, size_t *bloblen, char *kv, size_t kvlen,
			    provider_status *st)
{
	gcp_state *s = state;
	json_t *req = json_object();
	*blob = NULL;
	*bloblen = 0;
	if (!req || !gcp_set_bytes(req, "plaintext", pt, ptlen) || !gcp_set_aad(req, aad, aadlen)) {
		wipe_json_string(json_object_get(req, "plaintext"));
		json_decref(req);
		return P11K_ERR_NOMEM;
	}
	json_t *reply = NULL;
	p11k_err e = gcp_kms_call(s, "Encrypt", key_id, ":encrypt", req, CALL_ENCRYPT, &reply, st);
	wipe_json_string(json_object_get(req, "plaintext"));
	json_decref(req);
	if (e != P11K_OK) {
		char key[512];
		return purpose_check(s, crypto_key_of(key_id, key, sizeof(key)), e, st);
	}
	const char *ver = json_string_value(json_object_get(reply, "name"));
	e = gcp_get_bytes(reply, "Encrypt", "ciphertext", false, blob, bloblen, st);
	if (e == P11K_OK && !*bloblen) {
		snprintf(st->message, sizeof(st->message), "Encrypt: bad ciphertext");
		e = st->err = P11K_ERR_BAD_REPLY;
	}
	if (e == P11K_OK && !version_of(ver, key_id)) {
		snprintf(st->message, sizeof(st->message),
			 "Encrypt: reply names version %.100s, not one of the key asked for",
			 ver ? ver : "(none)");
		e = st->err = P11K_ERR_BAD_REPLY;
	}
	if (e == P11K_OK)
		e = gcp_check_verified(reply, "Encrypt", "verifiedPlaintextCrc32c", st);
	if (e == P11K_OK && aadlen)
		e = gcp_check_verified(reply, "Encrypt", "verifiedAdditionalAuthenticatedDataCrc32c", st);
	if (e == P11K_OK)
		snprintf(kv, kvlen, "%s", ver);
	if (e != P11K_OK) {
		free(*blob);
		*blob = NULL;
		*bloblen = 0;
	}
	json_decref(reply);
	return e;
}

p11k_err gcp_decrypt(void *state, const char *key_id, const uint8_t *blob,
			    size_t bloblen, const uint8_t *aad, size_t aadlen,
			    uint8_t **pt, size_t *ptlen, provider_status *st)
{
	gcp_state *s = state;
	/* Decrypt takes the CryptoKey: the version is inside the ciphertext. */
	char key[512];
	crypto_key_of(key_id, key, sizeof(key));
	*pt = NULL;
	*ptlen = 0;
	json_t *req = json_object();
	if (!req || !gcp_set_bytes(req, "ciphertext", blob, bloblen) || !gcp_set_aad(req, aad, aadlen)) {
		json_decref(req);
		return P11K_ERR_NOMEM;
	}
	json_t *reply = NULL;
	p11k_err e = gcp_kms_call(s, "Decrypt", key, ":decrypt", req, CALL_DECRYPT, &reply, st);
	json_decref(req);
	if (e != P11K_OK)
		return purpose_check(s, key, e, st);
	e = gcp_get_bytes(reply, "Decrypt", "plaintext", true, pt, ptlen, st);
	json_decref(reply);
	return e;
}

