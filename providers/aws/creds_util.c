/* SPDX-License-Identifier: Apache-2.0 */
/*
 * What the AWS credential sources share (creds_impl.h): the ISO 8601
 * reader, token files, "~" expansion, the JSON credentials reply of the
 * container and IMDS endpoints, and one HTTP call through the shared
 * client. Secrets are held in secure memory and wiped before any buffer a
 * library owns is freed.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <jansson.h>

#include "creds_impl.h"
#include "common/secmem.h"
#include "providers/common/secretfile.h"
#include "providers/common/util.h"

/* ISO 8601 as the credential services write it:
 * YYYY-MM-DDTHH:MM:SS[.fff](Z|+HH:MM|-HH:MM). */
static bool digits(const char *s, int n, int *out)
{
	int v = 0;
	for (int i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		v = v * 10 + (s[i] - '0');
	}
	*out = v;
	return true;
}

bool aws_parse_iso8601(const char *s, uint64_t *out)
{
	struct tm tm = {0};
	int y, mo, d, h, mi, sec;
	if (!s || strnlen(s, 20) < 20 || !digits(s, 4, &y) || s[4] != '-' ||
	    !digits(s + 5, 2, &mo) || s[7] != '-' || !digits(s + 8, 2, &d) ||
	    (s[10] != 'T' && s[10] != 't') || !digits(s + 11, 2, &h) ||
	    s[13] != ':' || !digits(s + 14, 2, &mi) || s[16] != ':' ||
	    !digits(s + 17, 2, &sec))
		return false;
	if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > 31 || h > 23 ||
	    mi > 59 || sec > 60)
		return false;
	const char *p = s + 19;
	if (*p == '.') {
		p++;
		if (!isdigit((unsigned char)*p))
			return false;
		for (int i = 0; isdigit((unsigned char)*p); i++, p++)
			if (i == 9)
				return false;
	}
	long off = 0;
	if (*p == 'Z' || *p == 'z') {
		p++;
	} else if (*p == '+' || *p == '-') {
		int oh, om;
		if (strnlen(p, 6) < 6 || !digits(p + 1, 2, &oh) || p[3] != ':' ||
		    !digits(p + 4, 2, &om) || oh > 23 || om > 59)
			return false;
		off = (long)(oh * 3600 + om * 60) * (*p == '-' ? -1 : 1);
		p += 6;
	} else {
		return false;
	}
	if (*p != '\0')
		return false;
	tm.tm_year = y - 1900;
	tm.tm_mon = mo - 1;
	tm.tm_mday = d;
	tm.tm_hour = h;
	tm.tm_min = mi;
	tm.tm_sec = sec;
	time_t t = timegm(&tm);
	if (t == (time_t)-1 || (long long)t - off < 0)
		return false;
	*out = (uint64_t)((long long)t - off);
	return true;
}

/* A token file (web identity, container authorization): trimmed, in
 * secure memory, no control characters. */
p11k_err aws_read_token_file(const char *path, char **tok,
				provider_status *st, const char *what)
{
	char *buf;
	size_t len;
	p11k_err rc = secretfile_read(path, MAX_TOKEN_FILE, what, &buf, &len, st);
	if (rc == P11K_ERR_KEY_NOT_FOUND) {
		provider_status_set(st, P11K_ERR_ACCESS_DENIED, "%s %s does not exist",
			   what, path);
		return P11K_ERR_ACCESS_DENIED;
	}
	if (rc != P11K_OK)
		return rc;
	size_t b = 0, e = len;
	while (b < e && aws_is_ws(buf[b]))
		b++;
	while (e > b && aws_is_ws(buf[e - 1]))
		e--;
	if (e == b || !aws_printable(buf + b, e - b)) {
		provider_status_set(st, P11K_ERR_ACCESS_DENIED, "%s %s is empty or malformed",
			   what, path);
		sec_free(buf);
		return P11K_ERR_ACCESS_DENIED;
	}
	*tok = aws_sec_strndup(buf + b, e - b);
	sec_free(buf);
	return *tok ? P11K_OK : P11K_ERR_NOMEM;
}

/* "~/x" as the SDKs expand it. */
bool aws_expand_path(const aws_chain_cfg *c, const char *in, const char *dflt,
			char *out, size_t outlen)
{
	const char *home = aws_env(c, "HOME");
	const char *p = in ? in : dflt;
	int n;
	if (!p)
		return false;
	if (p[0] == '~' && (p[1] == '/' || p[1] == '\0')) {
		if (!home)
			return false;
		n = snprintf(out, outlen, "%s%s", home, p + 1);
	} else {
		n = snprintf(out, outlen, "%s", p);
	}
	return n > 0 && (size_t)n < outlen;
}

/* --- JSON credentials (container, IMDS) -------------------------------- */

p11k_err aws_json_creds(const char *what, const uint8_t *body, size_t len,
			   aws_creds *out, provider_status *st)
{
	json_error_t jerr;
	p11k_err rc = P11K_ERR_BAD_REPLY;
	json_t *doc = json_loadb((const char *)body, len, JSON_REJECT_DUPLICATES, &jerr);
	const char *akid = NULL, *sk = NULL, *tok = NULL, *exp = NULL, *code = NULL;
	uint64_t expires = 0;
	memset(out, 0, sizeof(*out));
	if (json_is_object(doc)) {
		akid = json_string_value(json_object_get(doc, "AccessKeyId"));
		sk = json_string_value(json_object_get(doc, "SecretAccessKey"));
		tok = json_string_value(json_object_get(doc, "Token"));
		exp = json_string_value(json_object_get(doc, "Expiration"));
		code = json_string_value(json_object_get(doc, "Code"));
	}
	if (!doc || !json_is_object(doc)) {
		provider_status_set(st, rc, "%s reply is not a JSON object", what);
	} else if (code && strcmp(code, "Success") != 0) {
		provider_status_set(st, rc, "%s reply has Code %.64s", what, code);
	} else if (!akid || !*akid || strlen(akid) >= sizeof(out->access_key) ||
		   !aws_printable(akid, strlen(akid)) || !sk || !*sk ||
		   strlen(sk) >= MAX_SECRET || (tok && strlen(tok) >= MAX_SECRET)) {
		provider_status_set(st, rc, "%s reply lacks AccessKeyId/SecretAccessKey "
				   "or has oversized values", what);
	} else if (!exp || !aws_parse_iso8601(exp, &expires)) {
		provider_status_set(st, rc, "%s reply lacks a valid Expiration", what);
	} else {
		memcpy(out->access_key, akid, strlen(akid) + 1);
		out->secret_key = aws_sec_strndup(sk, strlen(sk));
		out->session_token = tok && *tok ? aws_sec_strndup(tok, strlen(tok)) : NULL;
		out->expires_at = expires;
		rc = P11K_OK;
		if (!out->secret_key || (tok && *tok && !out->session_token)) {
			aws_creds_clear(out);
			rc = P11K_ERR_NOMEM;
		}
	}
	wipe_cstr(sk);
	wipe_cstr(tok);
	json_decref(doc);
	return rc;
}

/* --- HTTP plumbing ------------------------------------------------------ */

static p11k_err build_req(void *arg, int attempt, http_request *req,
			  provider_status *st)
{
	const aws_req_spec *s = arg;
	size_t ml = strlen(s->method);
	if (ml >= sizeof(req->method))
		return P11K_ERR_INTERNAL;
	memcpy(req->method, s->method, ml + 1);
	req->url = strdup(s->url);
	if (!req->url)
		return P11K_ERR_NOMEM;
	for (size_t i = 0; i < s->nh; i++)
		if (!http_header_add(req, s->hname[i], s->hval[i]))
			return P11K_ERR_NOMEM;
	if (s->body) {
		/* http_request owns a malloc'd body; body_secret makes
		 * http_request_reset wipe it. */
		req->body = malloc(s->bodylen ? s->bodylen : 1);
		if (!req->body)
			return P11K_ERR_NOMEM;
		memcpy(req->body, s->body, s->bodylen);
		req->bodylen = s->bodylen;
		req->body_secret = s->body_secret;
	}
	return P11K_OK;
}

/* One call through the shared client (retries are its business). */
p11k_err aws_do_http(const aws_chain_cfg *c, const aws_req_spec *s,
			http_retryable_fn retryable, http_response *resp,
			provider_status *st)
{
	http_response_init(resp, MAX_REPLY);
	if (!c->http) {
		provider_status_set(st, P11K_ERR_INTERNAL, "no HTTP client configured");
		return P11K_ERR_INTERNAL;
	}
	return http_call(c->http, build_req, (void *)s, retryable, NULL, resp, st);
}

/* The response body is secure memory, wiped by http_response_free; this
 * copy is too. */
char *aws_resp_text(const http_response *r)
{
	return aws_sec_strndup(r->body.p ? (const char *)r->body.p : "", r->body.len);
}
