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

#include "module/common.h"
#include "module/err.h"

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
	char primary_version[128];
	uint64_t created_at;    /* seconds since the epoch, 0 if unknown */
	uint64_t rotated_at;
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
	 * key_version receives the version that made it. */
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
} provider_ops;

/* Record a failure in st (NULL allowed): the error and a one-line reason.
 * Never pass secrets in the message. */
void provider_status_set(provider_status *st, p11k_err err, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

const provider_ops *provider_find(const char *type);
/* Comma-separated list of known types, for error messages. */
const char *provider_types(void);

#endif
