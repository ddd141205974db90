/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Inside the Azure provider: its state and what its files share. The
 * provider is azure.c (config, creation, the ops table), azure_call.c (one
 * vault call, errors, key ids), azure_challenge.c (the bearer challenge),
 * azure_keys.c (describe and the envelope seal), azure_std.c (the standard
 * mechanisms). Not for use outside providers/azure/.
 */
#ifndef P11KMS_AZURE_IMPL_H
#define P11KMS_AZURE_IMPL_H

#include <pthread.h>

#include <jansson.h>

#include "azure.h"
#include "entra.h"
#include "providers/common/http.h"
#include "providers/provider.h"

#define COMP "azure"
#define AZ_MAX_REPLY (64 * 1024)
#define BLOB_MAGIC "P1KA"
#define BLOB_VERSION 1
#define MAX_KID 512
#define MAX_ALG 32
#define AAD_HASH_LEN 32
#define MAX_CACHED_KEYS 64

typedef struct kty_entry {
	char *key_id;
	bool oct; /* oct / oct-HSM: AES key wrap, else RSA */
} kty_entry;

typedef struct az_state {
	char *vault_url;   /* https://host[:port], no trailing slash */
	char *host;        /* host part, for challenge verification */
	char *api_version;
	char *default_key;
	bool verify_challenge; /* off only for loopback (emulators) */
	http_client *http;     /* the vault: https only */
	http_client *idhttp;   /* IMDS / App Service: plain http to metadata, loopback */
	http_client *loginhttp;
	entra_cred *cred;

	pthread_mutex_t lock;
	/* Under lock: */
	char *scope;  /* from config, then from the bearer challenge */
	char *tenant; /* from the challenge when none is configured */
	kty_entry kty[MAX_CACHED_KEYS];
	size_t nkty;
} az_state;

/* One cryptographic call of the keys API: POST .../{wrapkey, unwrapkey,
 * encrypt, decrypt} with alg, value and, for AES-GCM, iv, tag and aad
 * (all base64url without padding); the reply's kid and value and, from
 * a GCM encryption, the iv and tag the service generated. */
typedef struct kv_crypt {
	const char *op;   /* "wrapKey", "decrypt", ...: for messages */
	const char *path; /* /keys/NAME[/VERSION]/OPERATION */
	const char *alg;
	const uint8_t *in;
	size_t inlen;
	const uint8_t *iv, *tag, *aad; /* NULL: not sent */
	size_t ivlen, taglen, aadlen;
	bool reverse;    /* decrypt/unwrap: a 400 about the data is a bad ciphertext */
	bool secret_out; /* out in secure memory */
	bool want_iv_tag;
	/* Results. */
	char kid[MAX_KID];
	uint8_t *out; /* secure memory when secret_out, else malloc'd */
	size_t outlen;
	uint8_t *riv, *rtag; /* malloc'd, only with want_iv_tag */
	size_t rivlen, rtaglen;
} kv_crypt;

/* azure_call.c */
bool az_parse_key_id(const char *id, char *name, size_t nl, char *ver, size_t vl);
bool az_parse_kid(const char *kid, char *name, size_t nl, char *ver, size_t vl);
p11k_err az_vault_call_url(az_state *s, const char *op, const char *method,
			       const char *url, json_t *req, json_t **reply, long *vstatus,
			       provider_status *st);
p11k_err az_vault_call(az_state *s, const char *op, const char *method, const char *path,
			   json_t *req, json_t **reply, long *vstatus, provider_status *st);

/* azure_challenge.c */
bool az_host_ends_with(const char *host, const char *domain);
p11k_err az_apply_challenge(az_state *s, const char *hdr, provider_status *st);

/* azure_keys.c */
p11k_err az_get_key(az_state *s, const char *key_id, json_t **bundle, char *kv,
			size_t kvl, provider_status *st);
p11k_err az_describe(void *state, const char *key_id, key_info *out,
			    provider_status *st);
void az_kv_crypt_free(kv_crypt *c);
bool az_get_b64(json_t *reply, const char *name, bool secret, uint8_t **out, size_t *len);
p11k_err az_kv_crypt_call(az_state *s, kv_crypt *c, provider_status *st);
p11k_err az_encrypt(void *state, const char *key_id, const uint8_t *pt, size_t ptlen,
			   const uint8_t *aad, size_t aadlen, uint8_t **blob, size_t *bloblen,
			   char *kvout, size_t kvlen, provider_status *st);
p11k_err az_decrypt(void *state, const char *key_id, const uint8_t *blob,
			   size_t bloblen, const uint8_t *aad, size_t aadlen, uint8_t **pt,
			   size_t *ptlen, provider_status *st);
size_t az_max_blob_len(void *state, size_t ptlen);

/* azure_std.c */
p11k_err az_remote_crypt(void *state, const char *key_id, remote_req *r, uint8_t **out,
				size_t *outlen, provider_status *st);
p11k_err az_public_key(void *state, const char *key_id, asym_public *out, provider_status *st);
p11k_err az_sign(void *state, const char *key_id, const char *version, sign_alg alg,
		 const uint8_t *digest, size_t dlen, uint8_t **sig, size_t *siglen,
		 provider_status *st);

#endif
