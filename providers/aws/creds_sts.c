/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The STS AssumeRoleWithWebIdentity reply (creds.h): a bounded XML
 * extractor, the error codes told apart, and the throttling rule for the
 * shared HTTP client's retries.
 */
#include <stdio.h>
#include <string.h>

#include "creds_impl.h"
#include "common/secmem.h"

/* --- the STS XML reply ---------------------------------------------------- */

/* The content of the first <name>...</name> inside [s, s+n), or NULL.
 * Bounded: a search in the given span only; attributes allowed on the
 * opening tag, nothing else (no CDATA, no nesting of the same name). */
static const char *xml_elem(const char *s, size_t n, const char *name,
			    size_t *vlen)
{
	size_t nl = strlen(name);
	for (size_t i = 0; i + nl + 2 <= n; i++) {
		if (s[i] != '<' || memcmp(s + i + 1, name, nl) != 0)
			continue;
		size_t j = i + 1 + nl;
		if (j >= n || (s[j] != '>' && !aws_is_ws(s[j])))
			continue;
		const char *gt = memchr(s + j, '>', n - j);
		if (!gt || gt[-1] == '/')
			return NULL;
		const char *v = gt + 1;
		size_t rest = n - (size_t)(v - s);
		for (size_t k = 0; k + nl + 3 <= rest; k++) {
			if (v[k] == '<' && v[k + 1] == '/' &&
			    memcmp(v + k + 2, name, nl) == 0 && v[k + 2 + nl] == '>') {
				*vlen = k;
				return v;
			}
		}
		return NULL;
	}
	return NULL;
}

/* Text content with the five predefined entities decoded; no markup
 * allowed inside. out gets at most outlen-1 bytes or the call fails. */
static bool xml_text(const char *v, size_t n, char *out, size_t outlen)
{
	static const struct {
		const char *ent;
		char c;
	} ents[] = {{"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'},
		    {"&quot;", '"'}, {"&apos;", '\''}};
	size_t o = 0;
	while (n && aws_is_ws(*v))
		v++, n--;
	while (n && aws_is_ws(v[n - 1]))
		n--;
	for (size_t i = 0; i < n;) {
		char c = v[i];
		if (c == '<')
			return false;
		if (c == '&') {
			size_t k = 0;
			for (; k < ARRAY_SIZE(ents); k++) {
				size_t el = strlen(ents[k].ent);
				if (n - i >= el && memcmp(v + i, ents[k].ent, el) == 0) {
					c = ents[k].c;
					i += el;
					break;
				}
			}
			if (k == ARRAY_SIZE(ents))
				return false;
		} else {
			i++;
		}
		if (o + 1 >= outlen || (unsigned char)c < 0x20)
			return false;
		out[o++] = c;
	}
	out[o] = '\0';
	return true;
}

static bool xml_field(const char *s, size_t n, const char *name, char *out,
		      size_t outlen)
{
	size_t vlen;
	const char *v = xml_elem(s, n, name, &vlen);
	return v && xml_text(v, vlen, out, outlen);
}

/* Errors worth telling apart: a refused token is an access problem, a
 * throttle may pass, the rest is a bad reply. */
static p11k_err sts_error_kind(long status, const char *code)
{
	if (strcmp(code, "Throttling") == 0 || strcmp(code, "ThrottlingException") == 0 ||
	    strcmp(code, "RequestLimitExceeded") == 0 ||
	    strcmp(code, "TooManyRequestsException") == 0)
		return P11K_ERR_THROTTLED;
	if (status >= 500)
		return P11K_ERR_UNREACHABLE;
	if (strcmp(code, "InvalidIdentityToken") == 0 ||
	    strcmp(code, "ExpiredTokenException") == 0 ||
	    strcmp(code, "AccessDenied") == 0 ||
	    strcmp(code, "IDPRejectedClaim") == 0 ||
	    strcmp(code, "IDPCommunicationError") == 0 || status == 403 ||
	    status == 400)
		return P11K_ERR_ACCESS_DENIED;
	return P11K_ERR_BAD_REPLY;
}

/* STS reports throttling as HTTP 400 with an XML <Code>: worth another
 * attempt (PROTOCOLS.md 1.6 throttling codes). */
bool aws_sts_retryable(void *arg, const http_response *r)
{
	size_t elen;
	char code[96];
	const char *b = (const char *)r->body.p;
	if (r->status != 400 || !b)
		return false;
	const char *er = xml_elem(b, r->body.len, "Error", &elen);
	return er && xml_field(er, elen, "Code", code, sizeof(code)) &&
	       sts_error_kind(r->status, code) == P11K_ERR_THROTTLED;
}

p11k_err aws_sts_parse_reply(long status, const char *xml, size_t len,
			     aws_creds *out, provider_status *st)
{
	char akid[sizeof(out->access_key)], exp[64], code[96];
	char *secret = NULL, *token = NULL;
	const char *cr;
	size_t crlen;
	uint64_t expires = 0;
	p11k_err rc = P11K_OK;

	if (!out || (!xml && len))
		return P11K_ERR_INTERNAL;
	memset(out, 0, sizeof(*out));
	if (status != 200) {
		const char *er = xml ? xml_elem(xml, len, "Error", &crlen) : NULL;
		if (!er || !xml_field(er, crlen, "Code", code, sizeof(code)))
			snprintf(code, sizeof(code), "HTTP %ld", status);
		rc = sts_error_kind(status, code);
		if (st) {
			st->http_status = status;
			snprintf(st->error_name, sizeof(st->error_name), "%s", code);
			if (xml && !xml_field(xml, len, "RequestId", st->request_id,
					      sizeof(st->request_id)))
				st->request_id[0] = '\0';
		}
		/* The STS message is not copied: only the code, so nothing
		 * the server echoes can carry a token into a log. */
		provider_status_set(st, rc, "STS AssumeRoleWithWebIdentity failed: HTTP %ld %s",
			   status, code);
		return rc;
	}
	cr = xml ? xml_elem(xml, len, "Credentials", &crlen) : NULL;
	secret = sec_alloc(MAX_SECRET);
	token = sec_alloc(MAX_SECRET);
	if (!secret || !token)
		rc = P11K_ERR_NOMEM;
	else if (!cr)
		rc = P11K_ERR_BAD_REPLY;
	else if (!xml_field(cr, crlen, "AccessKeyId", akid, sizeof(akid)) ||
		 !akid[0] || !aws_printable(akid, strlen(akid)) ||
		 !xml_field(cr, crlen, "SecretAccessKey", secret, MAX_SECRET) ||
		 !secret[0] ||
		 !xml_field(cr, crlen, "SessionToken", token, MAX_SECRET) ||
		 !token[0] || !xml_field(cr, crlen, "Expiration", exp, sizeof(exp)) ||
		 !aws_parse_iso8601(exp, &expires))
		rc = P11K_ERR_BAD_REPLY;
	if (rc == P11K_ERR_BAD_REPLY)
		provider_status_set(st, rc, "STS reply lacks a complete Credentials element "
				   "(AccessKeyId, SecretAccessKey, SessionToken, "
				   "Expiration)");
	if (rc == P11K_OK) {
		memcpy(out->access_key, akid, sizeof(akid));
		out->secret_key = aws_sec_strndup(secret, strlen(secret));
		out->session_token = aws_sec_strndup(token, strlen(token));
		out->expires_at = expires;
		if (!out->secret_key || !out->session_token) {
			aws_creds_clear(out);
			rc = P11K_ERR_NOMEM;
		}
	}
	sec_free(secret);
	sec_free(token);
	return rc;
}

