/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Configuration: one JSON file, located through the PKCS #11 init string
 * (pReserved "config=PATH", as p11-kit's x-init-reserved passes it), else
 * $P11KMS_CONFIG, else /etc/p11kms/p11kms.json. Validated strictly; every
 * error names the file, the line and the field. docs/CONFIGURATION.md is
 * the reference.
 */
#ifndef P11KMS_CONFIG_H
#define P11KMS_CONFIG_H

#include <jansson.h>

#include "common/common.h"
#include "providers/provider.h"

#define P11KMS_DEFAULT_CONFIG "/etc/p11kms/p11kms.json"

typedef enum login_mode { LOGIN_REQUIRED, LOGIN_OPTIONAL } login_mode;

/* A KMS key the token shows as an object (config "keys"). */
typedef enum kms_key_type {
	KMS_KEY_ENVELOPE, /* the vendor envelope mechanism only */
	KMS_KEY_AES,      /* also CKK_AES mechanisms, run by the KMS */
	KMS_KEY_RSA,      /* an RSA key pair: OAEP or signing (docs/SIGNING.md) */
	KMS_KEY_EC,       /* an EC key pair (P-256, P-384): ECDSA signing */
} kms_key_type;

/* The one role of a typed KMS key ("usage"; docs/SECURITY.md): a key
 * that wraps and decrypts reveals what it wrapped, and the standard
 * formats carry no context for the KMS to tell the two apart. */
typedef enum kms_key_usage {
	KMS_USAGE_WRAP, /* C_WrapKey / C_UnwrapKey (the default) */
	KMS_USAGE_DATA, /* C_Encrypt / C_Decrypt */
	KMS_USAGE_SIGN, /* C_Sign / C_Verify (rsa, ec) */
} kms_key_usage;

/* A certificate of a KMS key's ("certificate": a PEM file, read at
 * C_Initialize): DER, and the parts PKCS #11 shows as attributes. */
typedef struct kms_cert {
	uint8_t *der;
	size_t len;
	uint8_t *subject, *issuer, *serial, *spki; /* DER; one allocation, in der */
	size_t subjlen, isslen, serlen, spkilen;
	CK_DATE start, end;
	uint8_t check[3];        /* CKA_CHECK_VALUE: SHA-1 of the DER, first bytes */
	uint8_t spki_sha1[20];   /* CKA_HASH_OF_SUBJECT_PUBLIC_KEY */
} kms_cert;

typedef struct kms_key_cfg {
	char *id;
	char *label;
	kms_key_type type;
	unsigned bits; /* AES: 128, 192 or 256; RSA: 0 until known */
	kms_key_usage usage; /* typed keys (aes, rsa, ec) only */
	/* "usage" was written. Without it an RSA key's role is the KMS's
	 * answer (sign, or else wrap), known at the first use. */
	bool usage_given;
	char *cert_path;     /* "certificate", or NULL */
	kms_cert *certs;     /* its certificates, the key's own first */
	size_t ncerts;
} kms_key_cfg;

/* One KMS key that seals a token (config "seal_with"): a key of the
 * token's own provider or of another configured provider. */
typedef struct seal_ref {
	size_t provider;       /* index in config_t.providers */
	char *key_id;          /* NULL: that provider's default sealing key */
} seal_ref;

/* What several seals mean (config "seal_policy", docs/LIFECYCLE.md). */
typedef enum seal_policy {
	SEAL_ANY,              /* each seal opens the token alone */
	SEAL_ALL,              /* every seal is needed (shares of one key) */
} seal_policy;

#define SEAL_MAX_REFS 8

typedef struct provider_cfg {
	char *name;
	const provider_ops *ops;
	json_t *obj;           /* the validated object, for the provider */
	char *store;           /* store path */
	seal_ref *seals;       /* at least one: the first is the primary seal */
	size_t nseals;
	seal_policy seal_policy;
	login_mode login;
	CK_SLOT_ID slot_id;
	uint64_t revalidate_seconds, offline_grace_seconds, rotation_age_days;
	uint64_t max_sessions;
	unsigned pin_kdf_cost;  /* log2 of scrypt's N for new PIN records */
	kms_key_cfg *keys;
	size_t nkeys;
} provider_cfg;

typedef struct config {
	char *path;
	int log_level;         /* -1 when not set */
	char *log_dest;        /* NULL when not set */
	char *audit;           /* log.audit: the audit log's path, or NULL */
	unsigned audit_line;   /* its line in the file, for messages */
	provider_cfg *providers;
	size_t nproviders;
} config_t;

/* init_reserved: the pReserved string, or NULL. On failure logs the reason
 * and returns CKR_FUNCTION_FAILED (or CKR_HOST_MEMORY). */
CK_RV config_load(const char *init_reserved, config_t **out);
/* Parse from memory (tests, fuzzing); path is only used in messages. */
CK_RV config_parse(const char *text, size_t len, const char *path,
		   config_t **out);
void config_free(config_t *cfg);

#endif
