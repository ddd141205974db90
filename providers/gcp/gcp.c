/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The Google Cloud KMS provider (REST v1 over HTTPS, OAuth 2.0 bearer
 * tokens; PROTOCOLS.md section 3). Keys are CryptoKey resource names
 * (projects/.../cryptoKeys/...) of purpose ENCRYPT_DECRYPT; the AAD the
 * module passes is Cloud KMS's additionalAuthenticatedData, so a blob opens
 * only with the same AAD. Blobs are Google's ciphertexts, which name the
 * CryptoKeyVersion that made them; the reply's version is returned as
 * key_version. Every request carries CRC32Cs of what it sends and every
 * reply's CRC32Cs and verified* flags are checked: a mismatch is an error,
 * never a result. Creation touches no network; every call goes through the
 * shared HTTP client (retries, Retry-After).
 *
 * RAW_ENCRYPT_DECRYPT keys (AES_256_GCM, AES_128_GCM) also run standard
 * AES-GCM through rawEncrypt / rawDecrypt (remote_crypt, docs/GCP.md "Raw
 * AES-GCM keys"): the service generates the IV, the output is
 * ciphertext||tag, and the same CRC32C contract holds for every field.
 *
 * Asymmetric keys (public_key, sign; docs/SIGNING.md): ASYMMETRIC_SIGN and
 * ASYMMETRIC_DECRYPT keys have no primary, so a CryptoKey name means its
 * newest enabled version (highest id) of an algorithm offered here, and a
 * version name pins one. getPublicKey's pem (pemCrc32c checked) becomes
 * DER SPKI; asymmetricSign signs the digest with digestCrc32c, and its
 * signatureCrc32c, verifiedDigestCrc32c and name are checked, ECDSA DER
 * converted to r||s; remote_crypt runs RSA-OAEP decryption through
 * asymmetricDecrypt (encryption is the module's, with the public key).
 *
 * This file: configuration, creation and the ops table. The rest, one job
 * a file: gcp_call.c (one call, errors, CRC32C fields), gcp_keys.c
 * (describe, envelope encrypt/decrypt), gcp_raw.c (raw AES-GCM keys);
 * oauth.c gets the tokens.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gcp_impl.h"
#include "common/log.h"
#include "common/secmem.h"
#include "providers/common/util.h"

static const field_spec gcp_fields[] = {
	{"endpoint", FT_STRING, false, 0, 0, NULL},
	{"credentials_file", FT_STRING, false, 0, 0, NULL},
	{"token_uri", FT_STRING, false, 0, 0, NULL},
	{"metadata_host", FT_STRING, false, 0, 0, NULL},
	{"ca_file", FT_STRING, false, 0, 0, NULL},
	{"scope", FT_STRING, false, 0, 0, NULL},
	{"self_signed_jwt", FT_BOOL, false, 0, 0, NULL},
	{NULL, FT_STRING, false, 0, 0, NULL},
};

/* --- creation (no network) ------------------------------------------------ */

static void gcp_destroy(void *state)
{
	gcp_state *s = state;
	if (!s)
		return;
	gcp_creds_free(s->creds);
	if (s->lock_ok)
		pthread_mutex_destroy(&s->lock);
	http_client_free(s->http);
	http_client_free(s->metadata);
	free(s->endpoint);
	free(s->default_key);
	free(s);
}

static p11k_err gcp_create(const json_t *cfg, const char *cfg_path, void **state, char *why,
			   size_t wl)
{
	(void)cfg_path;
	gcp_state *s = calloc(1, sizeof(*s));
	if (!s)
		return P11K_ERR_NOMEM;
	s->lock_ok = pthread_mutex_init(&s->lock, NULL) == 0;
	/* Raw keys' version lists live as long as a revalidation. */
	json_t *rv = json_object_get(cfg, "revalidate_seconds");
	s->cache_ttl = json_is_integer(rv) && json_integer_value(rv) > 0
			       ? (uint64_t)json_integer_value(rv)
			       : 900;
	const char *ep = json_str_field(cfg, "endpoint");
	const char *use = ep ? ep : GCP_DEFAULT_ENDPOINT;
	p11k_err e = P11K_OK;
	if (strncmp(use, "https://", 8) != 0) {
		snprintf(why, wl, "endpoint %.100s: only https:// endpoints are accepted", use);
		e = P11K_ERR_ACCESS_DENIED;
	}
	if (e == P11K_OK && !(s->endpoint = strdup(use)))
		e = P11K_ERR_NOMEM;
	if (e == P11K_OK) {
		size_t n = strlen(s->endpoint);
		while (n > 8 && s->endpoint[n - 1] == '/')
			s->endpoint[--n] = 0;
		if (strchr(s->endpoint + 8, '/') || n == 8) {
			snprintf(why, wl, "endpoint %.100s: give scheme and host only", use);
			e = P11K_ERR_ACCESS_DENIED;
		}
	}
	/* Else the first envelope key: a raw ("aes") key cannot :encrypt. */
	const char *seal = cfg_envelope_seal_key(cfg);
	if (e == P11K_OK && !seal) {
		snprintf(why, wl, "name the CryptoKey that seals the token: \"seal_with\" or "
				  "an envelope (ENCRYPT_DECRYPT) entry in \"keys\"");
		e = P11K_ERR_KEY_NOT_FOUND;
	}
	/* Names are checked here so a typo fails at C_Initialize, not at
	 * the first unseal. */
	json_t *keys = json_object_get(cfg, "keys");
	for (size_t i = 0; e == P11K_OK && i <= json_array_size(keys); i++) {
		const char *id = i < json_array_size(keys)
					 ? json_str_field(json_array_get(keys, i), "id")
					 : seal;
		if (id && (!gcp_name_ok(id) || !strstr(id, "/cryptoKeys/"))) {
			snprintf(why, wl, "%.120s is not a CryptoKey resource name "
				 "(projects/*/locations/*/keyRings/*/cryptoKeys/*)", id);
			e = P11K_ERR_KEY_NOT_FOUND;
		}
	}
	if (e == P11K_OK && !(s->default_key = strdup(seal)))
		e = P11K_ERR_NOMEM;
	const char *cf = json_str_field(cfg, "credentials_file");
	if (e == P11K_OK && cf && access(cf, R_OK) != 0) {
		snprintf(why, wl, "credentials_file %.120s is not readable", cf);
		e = P11K_ERR_ACCESS_DENIED;
	}
	if (e == P11K_OK) {
		const char *ca = json_str_field(cfg, "ca_file");
		http_options ho = {.ca_file = ca};
		/* The metadata server speaks plain http only; loopback too,
		 * for GCE_METADATA_HOST pointing at a local emulator. */
		http_options mo = {.ca_file = ca, .allow_plain_metadata = true,
				   .allow_plain_loopback = true, .connect_timeout_ms = 1000};
		s->http = http_client_new(&ho);
		s->metadata = http_client_new(&mo);
		const char *scope = json_str_field(cfg, "scope");
		gcp_creds_options co = {.credentials_file = cf,
					.token_uri = json_str_field(cfg, "token_uri"),
					.metadata_host = json_str_field(cfg, "metadata_host"),
					.scope = scope ? scope : GCP_DEFAULT_SCOPE,
					.self_signed_jwt = json_is_true(
						json_object_get(cfg, "self_signed_jwt")),
					.http = s->http,
					.metadata_http = s->metadata};
		s->creds = s->http && s->metadata ? gcp_creds_new(&co) : NULL;
		if (!s->creds)
			e = P11K_ERR_NOMEM;
	}
	if (e != P11K_OK) {
		gcp_destroy(s);
		return e;
	}
	*state = s;
	return P11K_OK;
}

static const char *gcp_default_seal_key(void *state)
{
	return ((gcp_state *)state)->default_key;
}

/* provider_ops.test_set_transport: the KMS/token endpoint client and the
 * metadata server's. */
static void gcp_test_set_transport(void *state, http_transport_fn fn, void *arg,
				   http_sleep_fn sleep_fn)
{
	gcp_state *s = state;
	http_client_set_transport(s->http, fn, arg);
	http_client_set_transport(s->metadata, fn, arg);
	if (sleep_fn) {
		http_client_set_sleep(s->http, sleep_fn, NULL);
		http_client_set_sleep(s->metadata, sleep_fn, NULL);
	}
}

const provider_ops gcp_provider_ops = {
	.type = "gcp",
	.fields = gcp_fields,
	.create = gcp_create,
	.destroy = gcp_destroy,
	.default_seal_key = gcp_default_seal_key,
	.describe = gcp_describe,
	.encrypt = gcp_encrypt,
	.decrypt = gcp_decrypt,
	.max_blob_len = gcp_max_blob_len,
	.remote_crypt = gcp_remote_crypt,
	.public_key = gcp_public_key,
	.sign = gcp_sign,
	.test_set_transport = gcp_test_set_transport,
};

