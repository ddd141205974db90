/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Credential source "container": the ECS/EKS credentials endpoint
 * (AWS_CONTAINER_CREDENTIALS_RELATIVE_URI or _FULL_URI) with an optional
 * authorization token (a file, re-read on every fetch, or the value).
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "creds_impl.h"
#include "common/secmem.h"

/* --- source: container credentials ---------------------------------------- */

/* FULL_URI over plain http only to the addresses the SDKs allow
 * (loopback, the ECS and EKS link-local hosts); https anywhere. */
static bool container_host_ok(const char *url)
{
	static const char *const allowed[] = {"127.", "localhost", "[::1]",
					      "169.254.170.2", "169.254.170.23",
					      "[fd00:ec2::23]"};
	if (strncasecmp(url, "https://", 8) == 0)
		return true;
	if (strncasecmp(url, "http://", 7) != 0)
		return false;
	const char *h = url + 7;
	size_t hl = strcspn(h, "/?#");
	const char *at = memchr(h, '@', hl);
	if (at)
		return false; /* userinfo would hide the real host */
	for (size_t i = 0; i < ARRAY_SIZE(allowed); i++) {
		size_t al = strlen(allowed[i]);
		if (hl < al || strncasecmp(h, allowed[i], al) != 0)
			continue;
		if (allowed[i][al - 1] == '.') {
			/* 127.0.0.0/8: digits and dots up to an optional port */
			size_t k = al;
			while (k < hl && (isdigit((unsigned char)h[k]) || h[k] == '.'))
				k++;
			if (k == hl || h[k] == ':')
				return true;
			continue;
		}
		if (hl == al || h[al] == ':')
			return true;
	}
	return false;
}

p11k_err aws_src_container(void *state, aws_creds *out, provider_status *st)
{
	const aws_chain_cfg *c = state;
	const char *rel = aws_env(c, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
	const char *full = aws_env(c, "AWS_CONTAINER_CREDENTIALS_FULL_URI");
	const char *tokfile = aws_env(c, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
	const char *tokenv = aws_env(c, "AWS_CONTAINER_AUTHORIZATION_TOKEN");
	char url[MAX_URL];
	char *token = NULL;
	http_response resp;
	bool have_resp = false;
	p11k_err rc = P11K_OK;
	int n;

	memset(out, 0, sizeof(*out));
	if (!rel && !full)
		return P11K_ERR_KEY_NOT_FOUND;
	if (rel)
		n = snprintf(url, sizeof(url), "http://169.254.170.2%s%s",
			     rel[0] == '/' ? "" : "/", rel);
	else
		n = snprintf(url, sizeof(url), "%s", full);
	if (n < 0 || (size_t)n >= sizeof(url) || !aws_printable(url, (size_t)n)) {
		provider_status_set(st, P11K_ERR_ACCESS_DENIED, "container credentials URI "
			   "is malformed or too long");
		return P11K_ERR_ACCESS_DENIED;
	}
	if (!rel && !container_host_ok(url)) {
		provider_status_set(st, P11K_ERR_ACCESS_DENIED,
			   "AWS_CONTAINER_CREDENTIALS_FULL_URI must be https, or "
			   "http to loopback or the ECS/EKS link-local address");
		return P11K_ERR_ACCESS_DENIED;
	}
	/* The token file is read on every fetch: it is rotated. */
	if (tokfile) {
		rc = aws_read_token_file(tokfile, &token, st,
				     "container authorization token file");
	} else if (tokenv) {
		if (!aws_printable(tokenv, strlen(tokenv)) || strlen(tokenv) >= MAX_SECRET) {
			provider_status_set(st, P11K_ERR_ACCESS_DENIED,
				   "AWS_CONTAINER_AUTHORIZATION_TOKEN is malformed");
			rc = P11K_ERR_ACCESS_DENIED;
		} else {
			token = aws_sec_strndup(tokenv, strlen(tokenv));
			rc = token ? P11K_OK : P11K_ERR_NOMEM;
		}
	}
	if (rc == P11K_OK) {
		aws_req_spec s = {.method = "GET", .url = url,
			      .hname = {"Accept", "Authorization"},
			      .hval = {"application/json", token},
			      .nh = token ? 2 : 1};
		rc = aws_do_http(c, &s, NULL, &resp, st);
		have_resp = true;
	}
	if (rc == P11K_OK && resp.status != 200) {
		if (st)
			st->http_status = resp.status;
		rc = resp.status == 401 || resp.status == 403 ? P11K_ERR_ACCESS_DENIED
							      : P11K_ERR_BAD_REPLY;
		provider_status_set(st, rc, "container credentials endpoint returned HTTP %ld",
			   resp.status);
	}
	if (rc == P11K_OK)
		rc = aws_json_creds("container credentials", resp.body.p, resp.body.len,
				out, st);
	if (have_resp)
		http_response_free(&resp);
	sec_free(token);
	return rc;
}

