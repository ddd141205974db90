/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Google OAuth 2.0 access tokens for Cloud KMS, from Application Default
 * Credentials in Google's order (PROTOCOLS.md 3.6): the configured
 * credentials_file, else GOOGLE_APPLICATION_CREDENTIALS, else the gcloud
 * well-known file, else the GCE metadata server. A service-account key
 * signs an RS256 JWT-bearer assertion for the token endpoint (or, when
 * configured, a self-signed JWT that is itself the access token); an
 * authorized-user file trades its refresh token there; the metadata
 * server hands out the instance's token (Metadata-Flavor: Google).
 * Tokens are kept in the providers' credential cache (credcache.h):
 * refreshed 5 minutes before expiry, the lock never held across the
 * fetch, expiry read from clock_now_s(). No token, key or secret is ever
 * logged.
 */
#ifndef P11KMS_GCP_OAUTH_H
#define P11KMS_GCP_OAUTH_H

#include "providers/common/http.h"
#include "providers/common/util.h"

#define GCP_DEFAULT_TOKEN_URI "https://oauth2.googleapis.com/token"
#define GCP_DEFAULT_METADATA_HOST "metadata.google.internal"

typedef struct gcp_creds_options {
	const char *credentials_file; /* config; NULL: the ADC search */
	const char *token_uri;        /* override of the file's token_uri */
	const char *metadata_host;    /* override, else GCE_METADATA_HOST */
	const char *scope;            /* OAuth scope asked for */
	bool self_signed_jwt;         /* service accounts: send a self-signed
				       * JWT as the bearer token, no token
				       * endpoint (Google's "JWT access") */
	http_client *http;            /* https (token endpoint); not owned */
	http_client *metadata_http;   /* plain http allowed; not owned */
	env_get_fn getenv_fn;         /* NULL: getenv (tests supply their own) */
	void *getenv_arg;
} gcp_creds_options;

typedef struct gcp_creds gcp_creds;

/* No network, no file access. */
gcp_creds *gcp_creds_new(const gcp_creds_options *o);
void gcp_creds_free(gcp_creds *c);
/* The current access token (secure memory, sec_free it). Thread-safe. */
P11K_WUR p11k_err gcp_creds_token(gcp_creds *c, char **token, provider_status *st);
/* Forget the cached token (the service said 401: it was revoked). */
void gcp_creds_invalidate(gcp_creds *c);
/* "service-account", "authorized-user", "metadata" or NULL: for logs. */
const char *gcp_creds_source_name(gcp_creds *c);

/* A signed JWT "header.claims.signature" (malloc'd): header
 * {"alg":"RS256","typ":"JWT"[,"kid"]}, claims {iss, [sub,] scope, [aud,]
 * iat, exp = iat + 3600}, RS256 with the PKCS #8 PEM key. The JWT-bearer
 * assertion has aud = the token endpoint and no sub; the self-signed access
 * token has sub = iss and no aud. Exposed for tests. */
P11K_WUR p11k_err gcp_jwt_assertion(const char *pem, const char *kid, const char *iss,
				    const char *sub, const char *scope, const char *aud,
				    uint64_t now, char **out);

#endif
