/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The one HTTP client every cloud provider uses (DESIGN.md section 5):
 * libcurl with handle reuse and a share for connections, TLS sessions and
 * DNS; timeouts; a hard cap on response bodies; TLS verification always on
 * (custom CA bundle allowed); plain http only to loopback and only when the
 * caller allows it. Retries follow the AWS SDKs' "standard" mode: up to N
 * attempts, full-jitter exponential backoff (base 1 s doubling, cap 20 s),
 * on transport errors, HTTP 429/500/502/503/504 and errors a classifier
 * marks retryable, honouring Retry-After / x-ms-retry-after-ms /
 * x-amz-retry-after. The request is rebuilt (re-signed) for every attempt.
 *
 * Transport and clock are injectable so unit tests need no network and no
 * sleeping. Nothing here logs header values or bodies: they may hold
 * credentials.
 */
#ifndef P11KMS_HTTP_H
#define P11KMS_HTTP_H

#include "common/common.h"
#include "common/err.h"
#include "providers/provider.h"

#define HTTP_MAX_HEADERS 24
#define HTTP_DEFAULT_MAX_BODY (1024 * 1024)

typedef struct http_header {
	char name[64];
	char *value; /* malloc'd; wiped and freed by http_request_reset */
} http_header;

typedef struct http_request {
	char method[8];         /* "GET", "POST", "PUT", "PATCH" */
	char *url;              /* malloc'd */
	http_header headers[HTTP_MAX_HEADERS];
	size_t nheaders;
	uint8_t *body;          /* malloc'd, may be NULL */
	size_t bodylen;
	bool body_secret;       /* body holds secrets: wipe it */
} http_request;

typedef struct http_response {
	long status;            /* 0 when the transport failed */
	dbuf_t body;            /* capped at the client's max_body */
	char request_id[96];    /* x-amzn-RequestId / x-ms-request-id / ... */
	char content_type[96];
	long retry_after_ms;    /* -1 when absent */
	char www_authenticate[512]; /* Azure's bearer challenge; no secrets */
} http_response;

P11K_WUR bool http_header_add(http_request *r, const char *name, const char *value);
const char *http_header_get(const http_request *r, const char *name);
void http_request_reset(http_request *r);
void http_response_init(http_response *r, size_t max_body);
void http_response_free(http_response *r);

typedef struct http_options {
	const char *ca_file;        /* NULL: the system store */
	bool allow_plain_loopback;  /* http:// only to 127.0.0.0/8, ::1, localhost */
	bool allow_plain_metadata;  /* http:// to the clouds' link-local metadata
				     * services (169.254.169.254, 169.254.170.2,
				     * 169.254.170.23, fd00:ec2::254, fd00:ec2::23,
				     * metadata.google.internal), which speak
				     * nothing else */
	long connect_timeout_ms;    /* default 3000 */
	long total_timeout_ms;      /* per attempt, default 10000 */
	size_t max_body;            /* default HTTP_DEFAULT_MAX_BODY */
	int max_attempts;           /* default 3 */
	long backoff_base_ms;       /* default 1000 */
	long backoff_cap_ms;        /* default 20000 */
	long retry_after_cap_ms;    /* longest Retry-After honoured, default 20000 */
} http_options;

/* http_transport_fn (one attempt: fill resp; transport failures give
 * P11K_ERR_UNREACHABLE, a certificate that cannot be verified
 * P11K_ERR_TLS, with a reason in st->message) and http_sleep_fn
 * are declared in providers/provider.h, whose test seam uses them. */

typedef struct http_client http_client;

/* No network activity here. */
http_client *http_client_new(const http_options *opt);
void http_client_free(http_client *c);
/* Tests: replace the transport (curl) and the sleep. */
void http_client_set_transport(http_client *c, http_transport_fn fn, void *arg);
void http_client_set_sleep(http_client *c, http_sleep_fn fn, void *arg);

/* Builds the request for attempt n (0-based): fill req, sign it. */
typedef p11k_err (*http_build_fn)(void *arg, int attempt, http_request *req,
				  provider_status *st);
/* Decides whether a completed response is worth another attempt (beyond
 * the built-in 429/5xx rule), e.g. AWS ThrottlingException on HTTP 400. */
typedef bool (*http_retryable_fn)(void *arg, const http_response *resp);

/* Build, send, retry. On return resp holds the last attempt's response
 * (any status); the return value is P11K_OK when a response arrived,
 * P11K_ERR_UNREACHABLE / P11K_ERR_THROTTLED when attempts ran out, and
 * P11K_ERR_TLS at once, after one attempt and a log line, when the
 * server's certificate could not be verified. */
P11K_WUR p11k_err http_call(http_client *c, http_build_fn build, void *barg,
			    http_retryable_fn retryable, void *rarg,
			    http_response *resp, provider_status *st);

#endif
