/* SPDX-License-Identifier: Apache-2.0 */
/*
 * AWS Signature Version 4 (PROTOCOLS.md 1.7), checked against the official
 * test suite (shared/vectors/sigv4/, botocore's copy as the oracle).
 */
#ifndef P11KMS_SIGV4_H
#define P11KMS_SIGV4_H

#include "common/common.h"
#include "common/err.h"

typedef struct aws_creds {
	char access_key[128];
	char *secret_key;     /* secure memory */
	char *session_token;  /* secure memory, NULL when none */
	uint64_t expires_at;  /* seconds since the epoch, 0 = never */
} aws_creds;

void aws_creds_clear(aws_creds *c);
P11K_WUR bool aws_creds_copy(aws_creds *dst, const aws_creds *src);

typedef struct sigv4_header {
	const char *name;
	const char *value;
} sigv4_header;

typedef struct sigv4_request {
	const char *method;
	const char *path;       /* raw path, e.g. "/" */
	const char *query;      /* raw query string without '?', may be NULL */
	const sigv4_header *headers; /* must include Host */
	size_t nheaders;
	const uint8_t *payload;
	size_t payloadlen;
	const char *region;
	const char *service;
	uint64_t now;           /* seconds since the epoch */
} sigv4_request;

typedef struct sigv4_result {
	char amz_date[17];      /* X-Amz-Date value to send */
	char authorization[1024];
	/* Debug aids for tests only (never logged); free with
	 * sigv4_result_free: */
	char *canonical_request; /* secure memory: holds the session token */
	char *string_to_sign;    /* malloc'd */
} sigv4_result;

/* Signs: the caller must send X-Amz-Date (amz_date) and, with a session
 * token, X-Amz-Security-Token, both of which are included in the
 * signature whether or not present in req->headers. */
P11K_WUR p11k_err sigv4_sign(const sigv4_request *req, const aws_creds *creds,
			     sigv4_result *out);
void sigv4_result_free(sigv4_result *r);

#endif
