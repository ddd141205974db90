/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Credential source "imds": EC2 instance metadata, IMDSv2 only (a PUT for
 * the session token, then the role, then its credentials).
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "creds_impl.h"
#include "common/log.h"
#include "common/secmem.h"

#define IMDS_TOKEN_TTL "21600"

/* --- source: IMDSv2 -------------------------------------------------------- */

static bool env_true(const aws_chain_cfg *c, const char *name)
{
	const char *v = aws_env(c, name);
	return v && strcasecmp(v, "true") == 0;
}

#define IMDS_CREDS_PATH "/latest/meta-data/iam/security-credentials/"

static bool imds_url(char *out, size_t len, const char *base, const char *path,
		     const char *leaf)
{
	int n = snprintf(out, len, "%s%s%s", base, path, leaf);
	return n > 0 && (size_t)n < len;
}

/* IMDSv2 only: PUT token, GET role, GET credentials. A token refusal that
 * would send botocore to IMDSv1 (403/404/405) ends the source instead:
 * the module does not speak IMDSv1. */
p11k_err aws_src_imds(void *state, aws_creds *out, provider_status *st)
{
	const aws_chain_cfg *c = state;
	const char *ep = aws_env(c, "AWS_EC2_METADATA_SERVICE_ENDPOINT");
	char base[MAX_URL], url[MAX_URL], role[256];
	char *token = NULL;
	http_response resp;
	bool have_resp = false;
	p11k_err rc = P11K_OK;
	int n;

	memset(out, 0, sizeof(*out));
	/* Last in the chain: without a client (or when disabled) it simply
	 * has nothing, so "no credentials found" stays the answer. */
	if (env_true(c, "AWS_EC2_METADATA_DISABLED") || !c->http)
		return P11K_ERR_KEY_NOT_FOUND;
	if (!ep)
		ep = aws_env(c, "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE") &&
			     strcasecmp(aws_env(c, "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE"),
					"IPv6") == 0
			     ? "http://[fd00:ec2::254]"
			     : "http://169.254.169.254";
	size_t el = strlen(ep);
	while (el && ep[el - 1] == '/')
		el--;
	n = snprintf(base, sizeof(base), "%.*s", (int)el, ep);
	if (n < 0 || (size_t)n >= sizeof(base) - 256 || !aws_printable(base, (size_t)n)) {
		provider_status_set(st, P11K_ERR_ACCESS_DENIED,
			   "AWS_EC2_METADATA_SERVICE_ENDPOINT is malformed");
		return P11K_ERR_ACCESS_DENIED;
	}

	/* Step 1: the session token. */
	if (!imds_url(url, sizeof(url), base, "/latest/api/token", "")) {
		provider_status_set(st, P11K_ERR_INTERNAL, "IMDS URL too long");
		return P11K_ERR_INTERNAL;
	}
	aws_req_spec s1 = {.method = "PUT", .url = url,
		       .hname = {"x-aws-ec2-metadata-token-ttl-seconds"},
		       .hval = {IMDS_TOKEN_TTL}, .nh = 1};
	rc = aws_do_http(c, &s1, NULL, &resp, st);
	have_resp = true;
	if (rc == P11K_ERR_UNREACHABLE) {
		/* Not on EC2 (or IMDS blocked): this source has nothing. */
		log_debug(COMP, "imds: not reachable");
		rc = P11K_ERR_KEY_NOT_FOUND;
	} else if (rc == P11K_OK && resp.status != 200) {
		if (st)
			st->http_status = resp.status;
		bool v1 = resp.status == 403 || resp.status == 404 || resp.status == 405;
		rc = v1 ? P11K_ERR_KEY_NOT_FOUND : P11K_ERR_BAD_REPLY;
		provider_status_set(st, rc, "IMDS token request returned HTTP %ld%s",
			   resp.status, v1 ? " (IMDSv1 is not supported)" : "");
	} else if (rc == P11K_OK) {
		token = aws_resp_text(&resp);
		size_t tl = token ? strlen(token) : 0;
		while (tl && aws_is_ws(token[tl - 1]))
			token[--tl] = '\0';
		if (!token)
			rc = P11K_ERR_NOMEM;
		else if (!tl || !aws_printable(token, tl)) {
			rc = P11K_ERR_BAD_REPLY;
			provider_status_set(st, rc, "IMDS returned a malformed token");
		}
	}
	http_response_free(&resp);
	have_resp = false;

	/* Step 2: the role name. */
	if (rc == P11K_OK) {
		if (!imds_url(url, sizeof(url), base, IMDS_CREDS_PATH, ""))
			rc = P11K_ERR_INTERNAL;
	}
	if (rc == P11K_OK) {
		aws_req_spec s2 = {.method = "GET", .url = url,
			       .hname = {"x-aws-ec2-metadata-token"},
			       .hval = {token}, .nh = 1};
		rc = aws_do_http(c, &s2, NULL, &resp, st);
		have_resp = true;
	}
	if (rc == P11K_OK && resp.status == 404) {
		rc = P11K_ERR_KEY_NOT_FOUND;
		provider_status_set(st, rc, "IMDS: no IAM role attached to this instance");
	} else if (rc == P11K_OK && resp.status != 200) {
		rc = P11K_ERR_BAD_REPLY;
		provider_status_set(st, rc, "IMDS role request returned HTTP %ld", resp.status);
	} else if (rc == P11K_OK) {
		size_t rl = 0;
		const char *b = resp.body.p ? (const char *)resp.body.p : "";
		/* The first line: one role per instance profile. */
		while (rl < resp.body.len && b[rl] != '\n' && b[rl] != '\r')
			rl++;
		bool ok = rl > 0 && rl < sizeof(role);
		for (size_t i = 0; ok && i < rl; i++)
			ok = isalnum((unsigned char)b[i]) ||
			     (b[i] && strchr("+=,.@_-", b[i]));
		if (!ok) {
			rc = P11K_ERR_BAD_REPLY;
			provider_status_set(st, rc, "IMDS returned a malformed role name");
		} else {
			memcpy(role, b, rl);
			role[rl] = '\0';
		}
	}
	if (have_resp)
		http_response_free(&resp);
	have_resp = false;

	/* Step 3: the credentials. */
	if (rc == P11K_OK) {
		if (!imds_url(url, sizeof(url), base, IMDS_CREDS_PATH, role))
			rc = P11K_ERR_INTERNAL;
	}
	if (rc == P11K_OK) {
		aws_req_spec s3 = {.method = "GET", .url = url,
			       .hname = {"x-aws-ec2-metadata-token"},
			       .hval = {token}, .nh = 1};
		log_debug(COMP, "imds: credentials for role %s", role);
		rc = aws_do_http(c, &s3, NULL, &resp, st);
		have_resp = true;
	}
	if (rc == P11K_OK && resp.status != 200) {
		rc = P11K_ERR_BAD_REPLY;
		provider_status_set(st, rc, "IMDS credentials request returned HTTP %ld",
			   resp.status);
	} else if (rc == P11K_OK) {
		rc = aws_json_creds("IMDS", resp.body.p, resp.body.len, out, st);
	}
	if (have_resp)
		http_response_free(&resp);
	sec_free(token);
	return rc;
}

