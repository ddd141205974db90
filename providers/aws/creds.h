/* SPDX-License-Identifier: Apache-2.0 */
/*
 * AWS credential sources, in the SDKs' chain order (PROTOCOLS.md 1.5):
 * environment, web identity (AWS_WEB_IDENTITY_TOKEN_FILE + AWS_ROLE_ARN ->
 * STS AssumeRoleWithWebIdentity), shared credentials/config files with
 * profiles (AWS_PROFILE, AWS_SHARED_CREDENTIALS_FILE, AWS_CONFIG_FILE),
 * container credentials (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI/FULL_URI +
 * token), IMDSv2. One vtable per source, one caching wrapper (the
 * providers' credential cache, providers/common/credcache.h) that refreshes
 * before expiry (REFRESH_AHEAD_S, 5 minutes ahead). No secret is ever
 * logged.
 */
#ifndef P11KMS_AWS_CREDS_H
#define P11KMS_AWS_CREDS_H

#include "providers/common/http.h"
#include "providers/common/util.h"
#include "sigv4.h"

typedef struct aws_cred_source {
	const char *name;   /* "environment", "web-identity", ... (for logs) */
	/* P11K_ERR_KEY_NOT_FOUND: this source has nothing (try the next);
	 * other errors: it applies but failed (stop, report). */
	p11k_err (*fetch)(void *state, aws_creds *out, provider_status *st);
	void (*destroy)(void *state);
	void *state;
} aws_cred_source;


typedef struct aws_chain_options {
	const char *profile;        /* config "profile", else AWS_PROFILE, else "default" */
	const char *region;         /* for STS */
	const char *sts_endpoint;   /* override, else AWS_ENDPOINT_URL_STS, else regional */
	http_client *http;          /* shared client (not owned) */
	env_get_fn getenv_fn;       /* NULL: getenv */
	void *getenv_arg;
} aws_chain_options;

typedef struct aws_creds_provider aws_creds_provider;

/* Build the chain (no network). */
aws_creds_provider *aws_creds_chain_new(const aws_chain_options *opt);
void aws_creds_provider_free(aws_creds_provider *p);
/* Current credentials (cached; refreshed when within 5 minutes of expiry).
 * Thread-safe. out must be cleared with aws_creds_clear. */
P11K_WUR p11k_err aws_creds_get(aws_creds_provider *p, aws_creds *out,
				provider_status *st);
/* Which source answered last ("environment", ...), for status output. */
const char *aws_creds_source_name(aws_creds_provider *p);

/* Expiry times are compared with clock_now_s(), which tests replace with
 * clock_set_fake() (common/clock.h), so refresh is tested without sleeping
 * (STYLE habit 9). */

/* The STS AssumeRoleWithWebIdentity reply reader (a bounded XML
 * extractor), exposed for tests/fuzzing. status is the HTTP status; an
 * error reply gives its <Code> in st->error_name. */
P11K_WUR p11k_err aws_sts_parse_reply(long status, const char *xml, size_t len,
				      aws_creds *out, provider_status *st);

/* The shared config/credentials file parser, exposed for tests/fuzzing:
 * finds key in section (already resolved: "default", "profile ci", ...). */
P11K_WUR bool aws_ini_lookup(const char *text, size_t len, const char *section,
			     const char *key, char *out, size_t outlen);

#endif
