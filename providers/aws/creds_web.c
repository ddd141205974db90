/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Credential source "web-identity": a token file and role ARN (from the
 * environment or the profile) traded at STS AssumeRoleWithWebIdentity,
 * unsigned (PROTOCOLS.md 1.5 Web identity).
 */
#include <ctype.h>
#include <stdio.h>
#include <string.h>

#include "creds_impl.h"
#include "common/log.h"
#include "common/secmem.h"

/* --- source: web identity ------------------------------------------------ */

static bool form_add(dbuf_t *b, const char *name, const char *value)
{
	static const char digits[] = "0123456789ABCDEF";
	if ((b->len && !dbuf_add_u8(b, '&')) || !dbuf_add(b, name, strlen(name)) ||
	    !dbuf_add_u8(b, '='))
		return false;
	for (const char *p = value; *p; p++) {
		unsigned char ch = (unsigned char)*p;
		if (isalnum(ch) || ch == '-' || ch == '_' || ch == '.' || ch == '~') {
			if (!dbuf_add_u8(b, ch))
				return false;
		} else {
			char esc[3] = {'%', digits[ch >> 4], digits[ch & 15]};
			if (!dbuf_add(b, esc, 3))
				return false;
		}
	}
	return true;
}

static p11k_err sts_url(const aws_chain_cfg *c, char *url, size_t len,
			provider_status *st)
{
	const char *ep = c->sts_endpoint;
	int n;
	if (!ep)
		ep = aws_env(c, "AWS_ENDPOINT_URL_STS");
	if (!ep)
		ep = aws_env(c, "AWS_ENDPOINT_URL");
	if (ep) {
		size_t el = strlen(ep);
		while (el && ep[el - 1] == '/')
			el--;
		n = snprintf(url, len, "%.*s/", (int)el, ep);
	} else {
		const char *region = c->region;
		if (!region)
			region = aws_env(c, "AWS_REGION");
		if (!region)
			region = aws_env(c, "AWS_DEFAULT_REGION");
		if (!region)
			region = "us-east-1";
		for (const char *p = region; *p; p++)
			if (!isalnum((unsigned char)*p) && *p != '-') {
				provider_status_set(st, P11K_ERR_INTERNAL,
					   "region name is malformed");
				return P11K_ERR_INTERNAL;
			}
		n = snprintf(url, len, "https://sts.%s.amazonaws.com/", region);
	}
	if (n < 0 || (size_t)n >= len || !aws_printable(url, (size_t)n)) {
		provider_status_set(st, P11K_ERR_INTERNAL, "STS endpoint URL is malformed");
		return P11K_ERR_INTERNAL;
	}
	return P11K_OK;
}

p11k_err aws_src_web(void *state, aws_creds *out, provider_status *st)
{
	const aws_chain_cfg *c = state;
	char tokfile[MAX_VALUE], role[MAX_VALUE], session[128], url[MAX_URL];
	const char *ef = aws_env(c, "AWS_WEB_IDENTITY_TOKEN_FILE");
	const char *er = aws_env(c, "AWS_ROLE_ARN");
	const char *es = aws_env(c, "AWS_ROLE_SESSION_NAME");
	char *token = NULL, *body = NULL;
	dbuf_t form;
	http_response resp;
	bool have_resp = false;
	p11k_err rc = P11K_OK;

	memset(out, 0, sizeof(*out));
	session[0] = '\0';
	if (ef && er) {
		if (strlen(ef) >= sizeof(tokfile) || strlen(er) >= sizeof(role) ||
		    (es && strlen(es) >= sizeof(session))) {
			provider_status_set(st, P11K_ERR_ACCESS_DENIED,
				   "AWS_WEB_IDENTITY_TOKEN_FILE, AWS_ROLE_ARN or "
				   "AWS_ROLE_SESSION_NAME is too long");
			return P11K_ERR_ACCESS_DENIED;
		}
		memcpy(tokfile, ef, strlen(ef) + 1);
		memcpy(role, er, strlen(er) + 1);
		if (es)
			memcpy(session, es, strlen(es) + 1);
	} else {
		/* The profile's web_identity_token_file / role_arn (config file). */
		aws_ini_file f;
		rc = aws_ini_load(c, true, &f, st);
		if (rc == P11K_OK) {
			bool tf = aws_ini_get(&f, "web_identity_token_file", tokfile,
					  sizeof(tokfile)) && tokfile[0];
			bool ra = aws_ini_get(&f, "role_arn", role, sizeof(role)) && role[0];
			if (!aws_ini_get(&f, "role_session_name", session, sizeof(session)))
				session[0] = '\0';
			rc = tf && ra ? P11K_OK : P11K_ERR_KEY_NOT_FOUND;
		}
		aws_ini_free(&f);
		if (rc != P11K_OK)
			return rc;
	}
	if (!session[0])
		snprintf(session, sizeof(session), "p11kms-%llu",
			 (unsigned long long)clock_now_s());

	dbuf_init(&form, MAX_TOKEN_FILE + 4096, true);
	rc = aws_read_token_file(tokfile, &token, st, "web identity token file");
	if (rc == P11K_OK)
		rc = sts_url(c, url, sizeof(url), st);
	/* awsQuery, unsigned (PROTOCOLS.md 1.5 Web identity). */
	if (rc == P11K_OK &&
	    (!form_add(&form, "Action", "AssumeRoleWithWebIdentity") ||
	     !form_add(&form, "Version", "2011-06-15") ||
	     !form_add(&form, "RoleArn", role) ||
	     !form_add(&form, "RoleSessionName", session) ||
	     !form_add(&form, "WebIdentityToken", token)))
		rc = P11K_ERR_NOMEM;
	if (rc == P11K_OK) {
		aws_req_spec s = {
			.method = "POST",
			.url = url,
			.hname = {"Content-Type", "Accept"},
			.hval = {"application/x-www-form-urlencoded; charset=utf-8",
				 "text/xml"},
			.nh = 2,
			.body = (const char *)form.p,
			.bodylen = form.len,
			.body_secret = true,
		};
		log_debug(COMP, "web identity: AssumeRoleWithWebIdentity for %.200s", role);
		rc = aws_do_http(c, &s, aws_sts_retryable, &resp, st);
		have_resp = true;
	}
	if (rc == P11K_OK) {
		body = aws_resp_text(&resp);
		rc = body ? aws_sts_parse_reply(resp.status, body, resp.body.len, out, st)
			  : P11K_ERR_NOMEM;
		if (st && resp.request_id[0] && !st->request_id[0])
			snprintf(st->request_id, sizeof(st->request_id), "%s",
				 resp.request_id);
	}
	sec_free(body);
	if (have_resp)
		http_response_free(&resp);
	sec_free(token);
	dbuf_free(&form);
	return rc;
}

