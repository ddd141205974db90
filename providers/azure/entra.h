/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Microsoft Entra ID access tokens for Key Vault and Managed HSM
 * (PROTOCOLS.md 2.6), chosen as DefaultAzureCredential does: environment
 * (client secret, then client certificate), workload identity (federated
 * token file), managed identity (App Service IDENTITY_ENDPOINT +
 * IDENTITY_HEADER, else VM IMDS). The source is picked at creation from
 * config and environment, without network; each source is one entry of
 * a table of fetch functions (entra.c). Tokens are kept in the providers'
 * credential cache (credcache.h), for one scope+tenant at a time, and
 * refreshed 5 minutes before expiry; no lock is held across a fetch.
 * Nothing here logs a secret, an assertion or a token.
 */
#ifndef P11KMS_AZURE_ENTRA_H
#define P11KMS_AZURE_ENTRA_H

#include "providers/common/http.h"

typedef struct entra_options {
	const char *tenant_id;            /* config, else AZURE_TENANT_ID */
	const char *client_id;            /* config, else AZURE_CLIENT_ID */
	const char *client_secret_file;   /* else AZURE_CLIENT_SECRET (the value) */
	const char *client_certificate_file; /* else AZURE_CLIENT_CERTIFICATE_PATH */
	const char *federated_token_file; /* else AZURE_FEDERATED_TOKEN_FILE */
	const char *authority_host;       /* else AZURE_AUTHORITY_HOST, else login.microsoftonline.com */
	int managed_identity;             /* -1 not configured, 0 never, 1 only */
	http_client *login_http;          /* https to the authority (not owned) */
	http_client *identity_http;       /* IMDS / App Service, plain http allowed (not owned) */
} entra_options;

typedef struct entra_cred entra_cred;

/* No network; may check local files. On failure a reason (no secrets). */
entra_cred *entra_new(const entra_options *o, char *why, size_t wl);
void entra_free(entra_cred *c);
const char *entra_source_name(const entra_cred *c);
/* The configured tenant, or NULL. */
const char *entra_tenant(const entra_cred *c);

/* A bearer token for scope (e.g. "https://vault.azure.net/.default") in
 * tenant (NULL: the configured one). *token is secure memory (sec_free).
 * Thread-safe. */
P11K_WUR p11k_err entra_get_token(entra_cred *c, const char *scope, const char *tenant,
				  char **token, provider_status *st);
/* Forget the cached token (the service refused it). */
void entra_invalidate(entra_cred *c);

/* Token endpoint / IMDS / App Service reply reader, exposed for tests:
 * *token secure memory, *expires_at unix seconds. */
P11K_WUR p11k_err entra_parse_reply(long status, const uint8_t *body, size_t len,
				    uint64_t now, char **token, uint64_t *expires_at,
				    provider_status *st);

#endif
