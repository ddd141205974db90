/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The provider interface: one table of function pointers that every KMS
 * provider implements (DESIGN.md section 5). Nothing outside
 * providers/registry.c knows which providers exist.
 *
 * Calls into a provider may block on the network: callers must hold no
 * module lock across them.
 */
#ifndef P11KMS_PROVIDER_H
#define P11KMS_PROVIDER_H

#include <jansson.h>

#include "common/common.h"
#include "common/err.h"

/* A config field a provider accepts, beyond the common ones. */
typedef enum field_type {
	FT_STRING,
	FT_UINT,
	FT_BOOL,
	FT_STRING_ARRAY,
	FT_KEY_ARRAY, /* [{"id": string, "label": string?}, ...] */
} field_type;

typedef struct field_spec {
	const char *name;
	field_type type;
	bool required;
	uint64_t min, max; /* FT_UINT bounds */
	const char *const *choices; /* FT_STRING: NULL-terminated, or NULL */
} field_spec;

typedef enum key_state {
	KEY_STATE_UNKNOWN = 0,
	KEY_STATE_ENABLED,
	KEY_STATE_DISABLED,
	KEY_STATE_PENDING_DELETION,
	KEY_STATE_DESTROYED,
} key_state;

typedef struct key_info {
	key_state state;
	char key_id[256];       /* canonical id (ARN, resource name, ...) */
	char primary_version[128]; /* the version encrypt uses now */
	uint64_t created_at;    /* seconds since the epoch, 0 if unknown */
	uint64_t rotated_at;
	/* When the primary (current) version's key material was made, seconds
	 * since the epoch, 0 if unknown: the age the rotation warning judges. */
	uint64_t version_created_at;
} key_info;

/* Detail of the last failure, for the log and ulDeviceError. Never holds
 * secrets: providers copy only service error names, codes and ids. */
typedef struct provider_status {
	p11k_err err;
	long http_status;
	char error_name[96];
	char request_id[96];
	char message[256];
} provider_status;

/* A standard algorithm run by the KMS with the key's own material: the
 * PKCS #11 mechanisms on typed KMS key objects (docs/REMOTE.md). Results
 * are in the algorithm's standard format, so they interoperate with the
 * cloud's SDKs and any other implementation of the algorithm. */
typedef enum remote_alg {
	RALG_RSA_OAEP_SHA1 = 1, /* MGF1 with the same hash, empty label */
	RALG_RSA_OAEP_SHA256,
	RALG_AES_KW,            /* RFC 3394 */
	RALG_AES_KWP,           /* RFC 5649 */
	RALG_AES_GCM,           /* 12-byte IV, 16-byte tag after the ciphertext */
} remote_alg;

#define REMOTE_GCM_IV_LEN 12
#define REMOTE_GCM_TAG_LEN 16

typedef struct remote_req {
	remote_alg alg;
	bool encrypt;   /* encrypt or wrap; false: decrypt or unwrap */
	bool key_op;    /* the data is key material (wrapKey/unwrapKey) */
	size_t key_bits; /* AES keys: the size the configuration declares */
	const uint8_t *in;
	size_t inlen;
	const uint8_t *aad; /* AES-GCM only; may be NULL */
	size_t aadlen;
	/* AES-GCM: on encrypt the provider writes the IV the KMS generated;
	 * on decrypt it is the IV to use. Always REMOTE_GCM_IV_LEN bytes. */
	uint8_t iv[REMOTE_GCM_IV_LEN];
} remote_req;

/* Signing with a KMS asymmetric key (docs/SIGNING.md). The KMS signs a
 * digest the module computed; the algorithm names the hash. RSA-PSS is
 * MGF1 with the same hash and a salt as long as the hash, the only PSS
 * the three clouds run. */
typedef enum sign_alg {
	SALG_RSA_PKCS1_SHA256 = 1,
	SALG_RSA_PKCS1_SHA384,
	SALG_RSA_PKCS1_SHA512,
	SALG_RSA_PSS_SHA256,
	SALG_RSA_PSS_SHA384,
	SALG_RSA_PSS_SHA512,
	SALG_ECDSA_SHA256, /* P-256 keys */
	SALG_ECDSA_SHA384, /* P-384 keys */
	SALG_COUNT_
} sign_alg;

#define SALG_BIT(a) (1u << (a))

/* What an asymmetric key can do, as the KMS says (never the configuration). */
#define ASYM_USE_SIGN 1u
#define ASYM_USE_DECRYPT 2u

/* An asymmetric KMS key's public half, as the KMS describes it. */
typedef struct asym_public {
	uint8_t *spki;       /* DER SubjectPublicKeyInfo, malloc'd: RSA or EC */
	size_t spkilen;
	unsigned uses;       /* ASYM_USE_* */
	unsigned sign_algs;  /* SALG_BIT()s the key accepts (signing keys) */
	/* The version the public key is of, in the terms sign takes: the key
	 * id's own version when it names one; otherwise the version the
	 * provider chose (Azure: the current one; Cloud KMS: the newest
	 * enabled one, since asymmetric keys have no primary; AWS: "", its
	 * asymmetric keys have one version). */
	char version[512];
} asym_public;

void asym_public_free(asym_public *p);

/* The HTTP layer's transport and sleep hooks (providers/common/http.h),
 * named here for provider_ops.test_set_transport. */
struct http_request;
struct http_response;
typedef p11k_err (*http_transport_fn)(void *arg, const struct http_request *req,
				      struct http_response *resp, provider_status *st);
typedef void (*http_sleep_fn)(void *arg, long ms);

typedef struct provider_ops {
	const char *type;
	const field_spec *fields; /* terminated by a {NULL} entry */

	/* Build the provider from its validated config object. Must not touch
	 * the network; may check local files. On failure writes a one-line
	 * reason (no secrets) into why. */
	p11k_err (*create)(const json_t *cfg, const char *cfg_path,
			   void **state, char *why, size_t whylen);
	void (*destroy)(void *state);

	/* The key this provider seals tokens with when the config names
	 * none (the local provider's key file); NULL if a key must be named. */
	const char *(*default_seal_key)(void *state);

	p11k_err (*describe)(void *state, const char *key_id, key_info *out,
			     provider_status *st);
	/* Encrypt a small secret; *blob is malloc'd, names key and version.
	 * key_version receives the version that made it, in the same terms
	 * as describe's primary_version (GCP the version's resource name,
	 * Azure the version id, AWS the key material id, local the key
	 * file's fingerprint), so the two compare equal while the version
	 * is current. key_version may be NULL with kvlen 0 when the caller
	 * does not need it: AWS then saves the request that finds it. */
	p11k_err (*encrypt)(void *state, const char *key_id, const uint8_t *pt,
			    size_t ptlen, const uint8_t *aad, size_t aadlen,
			    uint8_t **blob, size_t *bloblen, char *key_version,
			    size_t kvlen, provider_status *st);
	/* Decrypt; *pt is secure memory (sec_alloc), sec_free it. */
	p11k_err (*decrypt)(void *state, const char *key_id, const uint8_t *blob,
			    size_t bloblen, const uint8_t *aad, size_t aadlen,
			    uint8_t **pt, size_t *ptlen, provider_status *st);
	/* Longest blob encrypt can return for ptlen bytes (for PKCS #11
	 * length queries, answered without a KMS call). */
	size_t (*max_blob_len)(void *state, size_t ptlen);

	/* Optional: NULL when the provider runs no standard algorithm.
	 * Runs r->alg on the key; *out is secure memory (sec_alloc), also when
	 * it is ciphertext; the caller sec_frees it. For AES-GCM encryption
	 * *out is ciphertext||tag. A key id without a version means the
	 * current version for encryption; for decryption a provider tries the
	 * current version first, then older enabled versions, because the
	 * standard formats do not name the version. Errors: P11K_ERR_INVALID_CIPHERTEXT
	 * when the KMS rejects the input as undecryptable (wrong key, tampered
	 * data), P11K_ERR_KEY_TYPE when the key cannot run r->alg. */
	p11k_err (*remote_crypt)(void *state, const char *key_id, remote_req *r,
				 uint8_t **out, size_t *outlen, provider_status *st);
	/* Optional: an asymmetric key's public key and usage (RSA or EC). A
	 * key the KMS holds under another purpose (symmetric, HMAC) is
	 * P11K_ERR_KEY_TYPE. GCP's pemCrc32c is checked. The module calls it
	 * once per key and process and keeps the answer. */
	p11k_err (*public_key)(void *state, const char *key_id, asym_public *out,
			       provider_status *st);
	/* Optional: sign digest (the hash alg names, dlen its size) with the
	 * key's version `version` (asym_public.version; "" the key id's own).
	 * *sig is malloc'd: RSA the modulus' size, ECDSA r||s, each half the
	 * curve's size, big-endian (converted from the KMS's DER when it
	 * sends DER). Errors: P11K_ERR_KEY_TYPE when the key cannot sign with
	 * alg; P11K_ERR_KEY_DISABLED / P11K_ERR_KEY_NOT_FOUND for the version's state. */
	p11k_err (*sign)(void *state, const char *key_id, const char *version,
			 sign_alg alg, const uint8_t *digest, size_t dlen,
			 uint8_t **sig, size_t *siglen, provider_status *st);
	/* Tests and fuzzing only, NULL for a provider without HTTP: send
	 * every request of the provider's HTTP clients through fn and sleep
	 * through sleep_fn, so unit tests need no network and no waiting.
	 * The one transport seam of every provider; the clock's is
	 * clock_set_fake (common/clock.h). */
	void (*test_set_transport)(void *state, http_transport_fn fn, void *arg,
				   http_sleep_fn sleep_fn);
} provider_ops;

/* Record a failure in st (NULL allowed): the error and a one-line reason.
 * Never pass secrets in the message. */
void provider_status_set(provider_status *st, p11k_err err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

const provider_ops *provider_find(const char *type);
/* Comma-separated list of known types, for error messages. */
const char *provider_types(void);

#endif
