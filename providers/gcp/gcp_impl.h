/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Inside the Google Cloud KMS provider: its state and what its files
 * share. gcp.c (config, creation, the ops table), gcp_call.c (one call,
 * errors, CRC32C fields), gcp_keys.c (describe, envelope encrypt and
 * decrypt), gcp_raw.c (raw AES-GCM keys). Not for use outside
 * providers/gcp/.
 */
#ifndef P11KMS_GCP_IMPL_H
#define P11KMS_GCP_IMPL_H

#include <pthread.h>

#include <jansson.h>

#include "gcp.h"
#include "oauth.h"
#include "providers/common/http.h"
#include "providers/provider.h"

#define COMP "gcp"
#define GCP_MAX_REPLY (256 * 1024)
#define GCP_DEFAULT_ENDPOINT "https://cloudkms.googleapis.com"
#define GCP_DEFAULT_SCOPE "https://www.googleapis.com/auth/cloudkms"
#define VERSION_SEP "/cryptoKeyVersions/"
#define GCP_NAME_MAX 400
/* Raw keys: versions tried on decryption, newest first. */
#define RAW_MAX_VERSIONS 8
#define RAW_LIST_PAGES 10
#define RAW_CACHE_SLOTS 32

/* The enabled AES-GCM versions of a raw CryptoKey, newest first. */
typedef struct raw_versions {
	size_t n;
	unsigned long id[RAW_MAX_VERSIONS];
	unsigned bits[RAW_MAX_VERSIONS];
} raw_versions;

typedef struct raw_cache {
	char key[GCP_NAME_MAX + 1]; /* "" = free slot */
	uint64_t at;                /* when listed */
	raw_versions v;
} raw_cache;

typedef struct gcp_state {
	char *endpoint; /* https://host[:port], no trailing slash */
	char *default_key;
	http_client *http;     /* Cloud KMS and the token endpoint: https only */
	http_client *metadata; /* the metadata server: plain http by design */
	gcp_creds *creds;
	/* Raw keys' version lists, kept for cache_ttl seconds (the
	 * provider's revalidate_seconds). */
	pthread_mutex_t lock;
	bool lock_ok;
	uint64_t cache_ttl;
	unsigned cache_next; /* round-robin victim when full */
	raw_cache cache[RAW_CACHE_SLOTS];
} gcp_state;
/* What a call is, for reading its errors. */
typedef enum call_kind {
	CALL_PLAIN,       /* INVALID_ARGUMENT is our fault */
	CALL_ENCRYPT,     /* encrypt: the same; and the key's purpose may be wrong */
	CALL_DECRYPT,     /* INVALID_ARGUMENT: the ciphertext does not open; or
			   * the key's purpose is wrong */
	CALL_RAW_ENCRYPT, /* rawEncrypt: the key's purpose may be wrong */
	CALL_RAW_DECRYPT, /* rawDecrypt: both */
	CALL_ASYM,        /* getPublicKey, asymmetricSign: the key's purpose or
			   * algorithm may be wrong */
	CALL_ASYM_DECRYPT, /* asymmetricDecrypt: that, or the ciphertext */
} call_kind;

/* gcp_call.c */
bool gcp_name_ok(const char *n);
p11k_err gcp_kms_call(gcp_state *s, const char *op, const char *name, const char *suffix,
			 json_t *req, call_kind kind, json_t **reply, provider_status *st);
bool gcp_set_bytes(json_t *req, const char *field, const uint8_t *p, size_t n);
bool gcp_set_aad(json_t *req, const uint8_t *aad, size_t aadlen);
p11k_err gcp_get_bytes(json_t *reply, const char *op, const char *field, bool secret,
			  uint8_t **out, size_t *outlen, provider_status *st);
p11k_err gcp_check_crc(const json_t *reply, const char *op, const char *name,
		       const void *data, size_t len, provider_status *st);
p11k_err gcp_check_verified(const json_t *reply, const char *op, const char *flag,
			       provider_status *st);

/* gcp_keys.c */
key_state gcp_state_of(const char *v);
p11k_err gcp_describe(void *state, const char *key_id, key_info *out,
			     provider_status *st);
p11k_err gcp_encrypt(void *state, const char *key_id, const uint8_t *pt,
			    size_t ptlen, const uint8_t *aad, size_t aadlen,
			    uint8_t **blob, size_t *bloblen, char *kv, size_t kvlen,
			    provider_status *st);
p11k_err gcp_decrypt(void *state, const char *key_id, const uint8_t *blob,
			    size_t bloblen, const uint8_t *aad, size_t aadlen,
			    uint8_t **pt, size_t *ptlen, provider_status *st);

/* gcp_raw.c */
p11k_err gcp_remote_crypt(void *state, const char *key_id, remote_req *r,
				 uint8_t **out, size_t *outlen, provider_status *st);
size_t gcp_max_blob_len(void *state, size_t ptlen);
/* The newest enabled versions of key whose algorithm kind() accepts
 * (nonzero: kept in raw_versions.bits), highest id first; wanted names
 * them in the error when there are none. */
p11k_err gcp_list_newest(gcp_state *s, const char *key, unsigned (*kind)(const char *alg),
			 const char *wanted, raw_versions *v, provider_status *st);

/* gcp_raw.c, asymmetric keys (signing, RSA-OAEP decryption) */
p11k_err gcp_public_key(void *state, const char *key_id, asym_public *out,
			provider_status *st);
p11k_err gcp_sign(void *state, const char *key_id, const char *version, sign_alg alg,
		  const uint8_t *digest, size_t dlen, uint8_t **sig, size_t *siglen,
		  provider_status *st);
p11k_err gcp_asym_decrypt(gcp_state *s, const char *key_id, remote_req *r, uint8_t **out,
			  size_t *outlen, provider_status *st);

#endif
