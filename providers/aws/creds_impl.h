/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Inside the AWS credential chain (creds.h): what the sources share. One
 * file per source (creds_env.c, creds_web.c, creds_profile.c,
 * creds_container.c, creds_imds.c), each a fetch function behind
 * aws_cred_source; the chain and its cache in creds_chain.c; the parsers
 * in creds_ini.c and creds_sts.c; the shared plumbing in creds_util.c.
 * Not for use outside providers/aws/.
 */
#ifndef P11KMS_AWS_CREDS_IMPL_H
#define P11KMS_AWS_CREDS_IMPL_H

#include <string.h>

#include "creds.h"
#include "common/secmem.h"
#include "providers/common/util.h"

#define COMP "aws-creds"
/* Bounds on everything read from files and the network. */
#define MAX_FILE_TEXT (1024 * 1024)   /* credentials / config files */
#define MAX_TOKEN_FILE (64 * 1024)    /* web identity / container token */
#define MAX_REPLY (64 * 1024)         /* STS, container and IMDS bodies */
#define MAX_SECRET 8192               /* a session token is ~1-2 KiB */
#define MAX_VALUE 1024                /* ARNs, names, URIs, dates */
#define MAX_URL 2048

/* The chain's configuration: every source's state. */
typedef struct aws_chain_cfg {
	char *profile;       /* explicitly configured, NULL when not */
	char *region;
	char *sts_endpoint;
	http_client *http;
	env_get_fn getenv_fn;
	void *getenv_arg;
} aws_chain_cfg;

/* The sources, in chain order; state is the aws_chain_cfg. */
P11K_WUR p11k_err aws_src_env(void *state, aws_creds *out, provider_status *st);
P11K_WUR p11k_err aws_src_web(void *state, aws_creds *out, provider_status *st);
P11K_WUR p11k_err aws_src_profile(void *state, aws_creds *out, provider_status *st);
P11K_WUR p11k_err aws_src_container(void *state, aws_creds *out, provider_status *st);
P11K_WUR p11k_err aws_src_imds(void *state, aws_creds *out, provider_status *st);

static inline const char *aws_env(const aws_chain_cfg *c, const char *name)
{
	return env_lookup(c->getenv_fn, c->getenv_arg, name);
}

static inline char *aws_sec_strndup(const char *s, size_t n)
{
	char *p = sec_alloc(n + 1);
	if (p && n)
		memcpy(p, s, n);
	return p;
}

static inline bool aws_is_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Header values and URLs we build must not carry line breaks (a token
 * file with "\r\nX-Evil: 1" must not add a header). */
static inline bool aws_printable(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return false;
	return true;
}

/* ISO 8601 as the credential services write it:
 * YYYY-MM-DDTHH:MM:SS[.fff](Z|+HH:MM|-HH:MM). */
P11K_WUR bool aws_parse_iso8601(const char *s, uint64_t *out);
/* A token file (web identity, container authorization): trimmed, in
 * secure memory, no control characters. */
P11K_WUR p11k_err aws_read_token_file(const char *path, char **tok, provider_status *st,
				      const char *what);
/* "~/x" as the SDKs expand it. */
P11K_WUR bool aws_expand_path(const aws_chain_cfg *c, const char *in, const char *dflt,
			      char *out, size_t outlen);
/* The container / IMDS JSON credentials reply. */
P11K_WUR p11k_err aws_json_creds(const char *what, const uint8_t *body, size_t len,
				 aws_creds *out, provider_status *st);

/* One request through the shared client (retries are its business). */
typedef struct aws_req_spec {
	const char *method;
	const char *url;
	const char *hname[3];
	const char *hval[3];
	size_t nh;
	const char *body; /* may be secret: sent with body_secret */
	size_t bodylen;
	bool body_secret;
} aws_req_spec;

P11K_WUR p11k_err aws_do_http(const aws_chain_cfg *c, const aws_req_spec *s,
			      http_retryable_fn retryable, http_response *resp,
			      provider_status *st);
/* The body as text (NUL-terminated copy in secure memory). */
char *aws_resp_text(const http_response *r);

/* STS reports throttling as HTTP 400 with an XML <Code>. */
bool aws_sts_retryable(void *arg, const http_response *r);

/* The profile the chain reads: configured, AWS_PROFILE,
 * AWS_DEFAULT_PROFILE, else "default". */
const char *aws_profile_name(const aws_chain_cfg *c);

/* A loaded file (secure memory: it may hold secret keys). */
typedef struct aws_ini_file {
	char path[1024];
	char *text;
	size_t len;
	char section[MAX_VALUE]; /* resolved for this file's convention */
} aws_ini_file;

/* The credentials file (config false) or the config file, with the
 * profile's section resolved. P11K_ERR_KEY_NOT_FOUND when it does not
 * exist. aws_ini_free it whatever the result. */
P11K_WUR p11k_err aws_ini_load(const aws_chain_cfg *c, bool config, aws_ini_file *f,
			       provider_status *st);
void aws_ini_free(aws_ini_file *f);
P11K_WUR bool aws_ini_get(const aws_ini_file *f, const char *key, char *out, size_t outlen);

#endif
