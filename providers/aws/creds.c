/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The AWS credential chain (PROTOCOLS.md 1.5, botocore's order): one
 * source per concern behind aws_cred_source, one caching wrapper.
 *
 *   environment   AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN
 *   web-identity  token file + role ARN (env or profile) -> STS, unsigned
 *   profile       shared credentials file, then config file
 *   container     ECS/EKS credentials endpoint (relative or full URI)
 *   imds          EC2 instance metadata, IMDSv2 only
 *
 * Secrets (secret keys, session tokens, web identity and IMDS tokens,
 * credential file text) are held in secure memory and never reach a log
 * line or a provider_status. Where a library hands them back in its own
 * heap (jansson strings, the HTTP response body) the copy is wiped
 * before it is freed.
 *
 * The cache follows STYLE habit 7: copy under the lock, unlock, fetch,
 * relock, publish. Nothing here holds the lock across the network.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "creds.h"
#include "common/log.h"
#include "common/secmem.h"

#define COMP "aws-creds"
/* Refresh this long before Expiration (creds.h). */
#define REFRESH_AHEAD_S 300
/* Bounds on everything read from files and the network. */
#define MAX_FILE_TEXT (1024 * 1024)   /* credentials / config files */
#define MAX_TOKEN_FILE (64 * 1024)    /* web identity / container token */
#define MAX_REPLY (64 * 1024)         /* STS, container and IMDS bodies */
#define MAX_SECRET 8192               /* a session token is ~1-2 KiB */
#define MAX_VALUE 1024                /* ARNs, names, URIs, dates */
#define MAX_URL 2048
#define IMDS_TOKEN_TTL "21600"

typedef struct chain_cfg {
	char *profile;       /* explicitly configured, NULL when not */
	char *region;
	char *sts_endpoint;
	http_client *http;
	env_get_fn getenv_fn;
	void *getenv_arg;
} chain_cfg;

enum { SRC_ENV, SRC_WEB, SRC_PROFILE, SRC_CONTAINER, SRC_IMDS, SRC__COUNT };

struct aws_creds_provider {
	chain_cfg cfg;
	aws_cred_source src[SRC__COUNT];
	size_t nsrc;

	pthread_mutex_t lock;
	/* Under lock: */
	aws_creds cached;
	bool have;
	bool refreshing;
	const char *last_source;
	uint64_t (*now)(void *arg);
	void *now_arg;
};

/* --- small helpers ----------------------------------------------------- */


static const char *env_get(const chain_cfg *c, const char *name)
{
	const char *v = c->getenv_fn ? c->getenv_fn(c->getenv_arg, name)
				     : getenv(name);
	return v && *v ? v : NULL;
}

static char *sec_strndup(const char *s, size_t n)
{
	char *p = sec_alloc(n + 1);
	if (p && n)
		memcpy(p, s, n);
	return p;
}

static bool is_ws(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Header values and URLs we build must not carry line breaks (a token
 * file with "\r\nX-Evil: 1" must not add a header). */
static bool printable(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if ((unsigned char)s[i] < 0x20 || s[i] == 0x7f)
			return false;
	return true;
}

static void wipe_str(const char *s)
{
	/* jansson and the HTTP response own these buffers; wipe the secret
	 * bytes before the owner frees them without cleansing. */
	if (s)
		OPENSSL_cleanse((void *)(uintptr_t)s, strlen(s));
}

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

static bool parse_iso8601(const char *s, uint64_t *out)
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

/* A whole file, bounded; secure memory when it may hold secrets.
 * P11K_ERR_KEY_NOT_FOUND when it does not exist. */
static p11k_err read_file(const char *path, size_t max, bool secret, char **out,
			  size_t *outlen, provider_status *st, const char *what)
{
	char *buf = NULL;
	size_t len = 0;
	struct stat sb;
	p11k_err rc = P11K_OK;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	*out = NULL;
	if (fd < 0) {
		if (errno == ENOENT || errno == ENOTDIR)
			return P11K_ERR_KEY_NOT_FOUND;
		provider_status_set(st, P11K_ERR_ACCESS_DENIED, "cannot open %s %s: %s",
			   what, path, strerror(errno));
		return P11K_ERR_ACCESS_DENIED;
	}
	if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
		provider_status_set(st, P11K_ERR_ACCESS_DENIED, "%s %s is not a regular file",
			   what, path);
		rc = P11K_ERR_ACCESS_DENIED;
	} else if ((uint64_t)sb.st_size > max) {
		provider_status_set(st, P11K_ERR_ACCESS_DENIED,
			   "%s %s is larger than %zu bytes", what, path, max);
		rc = P11K_ERR_ACCESS_DENIED;
	}
	/* Sized by the file (secure memory is locked memory), then held to
	 * that size: a file that grows while we read is refused. */
	size_t cap = rc == P11K_OK ? (size_t)sb.st_size : 0;
	if (rc == P11K_OK) {
		buf = secret ? sec_alloc(cap + 1) : calloc(1, cap + 1);
		if (!buf)
			rc = P11K_ERR_NOMEM;
	}
	while (rc == P11K_OK) {
		char extra;
		ssize_t n = len < cap ? read(fd, buf + len, cap - len)
				      : read(fd, &extra, 1);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0) {
			provider_status_set(st, P11K_ERR_ACCESS_DENIED, "cannot read %s %s: %s",
				   what, path, strerror(errno));
			rc = P11K_ERR_ACCESS_DENIED;
		} else if (n == 0) {
			break;
		} else if (len == cap) {
			provider_status_set(st, P11K_ERR_ACCESS_DENIED,
				   "%s %s changed while being read", what, path);
			rc = P11K_ERR_ACCESS_DENIED;
		} else {
			len += (size_t)n;
		}
	}
	close(fd);
	if (rc != P11K_OK) {
		if (secret)
			sec_free(buf);
		else
			free(buf);
		return rc;
	}
	buf[len] = '\0';
	*out = buf;
	*outlen = len;
	return P11K_OK;
}

/* A token file (web identity, container authorization): trimmed, in
 * secure memory, no control characters. */
static p11k_err read_token_file(const char *path, char **tok,
				provider_status *st, const char *what)
{
	char *buf;
	size_t len;
	p11k_err rc = read_file(path, MAX_TOKEN_FILE, true, &buf, &len, st, what);
	if (rc == P11K_ERR_KEY_NOT_FOUND) {
		provider_status_set(st, P11K_ERR_ACCESS_DENIED, "%s %s does not exist",
			   what, path);
		return P11K_ERR_ACCESS_DENIED;
	}
	if (rc != P11K_OK)
		return rc;
	size_t b = 0, e = len;
	while (b < e && is_ws(buf[b]))
		b++;
	while (e > b && is_ws(buf[e - 1]))
		e--;
	if (e == b || !printable(buf + b, e - b)) {
		provider_status_set(st, P11K_ERR_ACCESS_DENIED, "%s %s is empty or malformed",
			   what, path);
		sec_free(buf);
		return P11K_ERR_ACCESS_DENIED;
	}
	*tok = sec_strndup(buf + b, e - b);
	sec_free(buf);
	return *tok ? P11K_OK : P11K_ERR_NOMEM;
}

/* "~/x" as the SDKs expand it. */
static bool expand_path(const chain_cfg *c, const char *in, const char *dflt,
			char *out, size_t outlen)
{
	const char *home = env_get(c, "HOME");
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

/* --- the INI parser ----------------------------------------------------- */

static bool span_eq(const char *a, size_t an, const char *b, bool nocase)
{
	size_t bn = strlen(b);
	if (an != bn)
		return false;
	return nocase ? strncasecmp(a, b, an) == 0 : memcmp(a, b, an) == 0;
}

/* botocore reads these files with configparser: "[section]" headers,
 * "key = value" (or "key: value") lines, whole-line comments with '#' or
 * ';', keys case-insensitive, indented lines continuing the previous value
 * (nested "s3 =" blocks) never match a key. The first occurrence wins.
 * No value is ever truncated: too long is not found. */
bool aws_ini_lookup(const char *text, size_t len, const char *section,
		    const char *key, char *out, size_t outlen)
{
	bool in_section = false, seen_key = false;
	if (!text || !section || !key || !out || outlen == 0)
		return false;
	for (size_t i = 0; i < len;) {
		size_t e = i;
		while (e < len && text[e] != '\n')
			e++;
		size_t next = e < len ? e + 1 : len;
		bool indented = e > i && (text[i] == ' ' || text[i] == '\t');
		size_t b = i;
		while (b < e && is_ws(text[b]))
			b++;
		while (e > b && is_ws(text[e - 1]))
			e--;
		i = next;
		if (b == e || text[b] == '#' || text[b] == ';')
			continue;
		if (indented && seen_key)
			continue; /* a continuation line */
		if (text[b] == '[') {
			const char *close = memchr(text + b, ']', e - b);
			if (!close) {
				in_section = false;
				continue;
			}
			size_t sb = b + 1, se = (size_t)(close - text);
			while (sb < se && is_ws(text[sb]))
				sb++;
			while (se > sb && is_ws(text[se - 1]))
				se--;
			in_section = span_eq(text + sb, se - sb, section, false);
			seen_key = false;
			continue;
		}
		if (!in_section)
			continue;
		size_t d = b;
		while (d < e && text[d] != '=' && text[d] != ':')
			d++;
		if (d == e)
			continue; /* not a key line */
		seen_key = true;
		size_t ke = d;
		while (ke > b && is_ws(text[ke - 1]))
			ke--;
		if (!span_eq(text + b, ke - b, key, true))
			continue;
		size_t vb = d + 1;
		while (vb < e && is_ws(text[vb]))
			vb++;
		if (e - vb >= outlen)
			return false;
		memcpy(out, text + vb, e - vb);
		out[e - vb] = '\0';
		return true;
	}
	return false;
}

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
		if (j >= n || (s[j] != '>' && !is_ws(s[j])))
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
	while (n && is_ws(*v))
		v++, n--;
	while (n && is_ws(v[n - 1]))
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
static bool sts_retryable(void *arg, const http_response *r)
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
		 !akid[0] || !printable(akid, strlen(akid)) ||
		 !xml_field(cr, crlen, "SecretAccessKey", secret, MAX_SECRET) ||
		 !secret[0] ||
		 !xml_field(cr, crlen, "SessionToken", token, MAX_SECRET) ||
		 !token[0] || !xml_field(cr, crlen, "Expiration", exp, sizeof(exp)) ||
		 !parse_iso8601(exp, &expires))
		rc = P11K_ERR_BAD_REPLY;
	if (rc == P11K_ERR_BAD_REPLY)
		provider_status_set(st, rc, "STS reply lacks a complete Credentials element "
				   "(AccessKeyId, SecretAccessKey, SessionToken, "
				   "Expiration)");
	if (rc == P11K_OK) {
		memcpy(out->access_key, akid, sizeof(akid));
		out->secret_key = sec_strndup(secret, strlen(secret));
		out->session_token = sec_strndup(token, strlen(token));
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

/* --- JSON credentials (container, IMDS) -------------------------------- */

static p11k_err json_creds(const char *what, const uint8_t *body, size_t len,
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
		   !printable(akid, strlen(akid)) || !sk || !*sk ||
		   strlen(sk) >= MAX_SECRET || (tok && strlen(tok) >= MAX_SECRET)) {
		provider_status_set(st, rc, "%s reply lacks AccessKeyId/SecretAccessKey "
				   "or has oversized values", what);
	} else if (!exp || !parse_iso8601(exp, &expires)) {
		provider_status_set(st, rc, "%s reply lacks a valid Expiration", what);
	} else {
		memcpy(out->access_key, akid, strlen(akid) + 1);
		out->secret_key = sec_strndup(sk, strlen(sk));
		out->session_token = tok && *tok ? sec_strndup(tok, strlen(tok)) : NULL;
		out->expires_at = expires;
		rc = P11K_OK;
		if (!out->secret_key || (tok && *tok && !out->session_token)) {
			aws_creds_clear(out);
			rc = P11K_ERR_NOMEM;
		}
	}
	wipe_str(sk);
	wipe_str(tok);
	json_decref(doc);
	return rc;
}

/* --- HTTP plumbing ------------------------------------------------------ */

typedef struct req_spec {
	const char *method;
	const char *url;
	const char *hname[3];
	const char *hval[3];
	size_t nh;
	const char *body; /* may be secret: sent with body_secret */
	size_t bodylen;
	bool body_secret;
} req_spec;

static p11k_err build_req(void *arg, int attempt, http_request *req,
			  provider_status *st)
{
	const req_spec *s = arg;
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
static p11k_err do_http(const chain_cfg *c, const req_spec *s,
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

/* The response body is secure memory, wiped by http_response_free. */
static void resp_free(http_response *r)
{
	http_response_free(r);
}

/* The body as text (NUL-terminated copy in secure memory). */
static char *resp_text(const http_response *r)
{
	return sec_strndup(r->body.p ? (const char *)r->body.p : "", r->body.len);
}

/* --- source: environment -------------------------------------------------- */

static p11k_err src_env(void *state, aws_creds *out, provider_status *st)
{
	const chain_cfg *c = state;
	const char *akid = env_get(c, "AWS_ACCESS_KEY_ID");
	const char *sk = env_get(c, "AWS_SECRET_ACCESS_KEY");
	const char *tok = env_get(c, "AWS_SESSION_TOKEN");
	const char *exp = env_get(c, "AWS_CREDENTIAL_EXPIRATION");
	if (!tok)
		tok = env_get(c, "AWS_SECURITY_TOKEN"); /* legacy name */
	memset(out, 0, sizeof(*out));
	if (!akid && !sk)
		return P11K_ERR_KEY_NOT_FOUND;
	if (!akid || !sk) {
		provider_status_set(st, P11K_ERR_ACCESS_DENIED, "%s is set but %s is not",
			   akid ? "AWS_ACCESS_KEY_ID" : "AWS_SECRET_ACCESS_KEY",
			   akid ? "AWS_SECRET_ACCESS_KEY" : "AWS_ACCESS_KEY_ID");
		return P11K_ERR_ACCESS_DENIED;
	}
	if (strlen(akid) >= sizeof(out->access_key) || !printable(akid, strlen(akid)) ||
	    strlen(sk) >= MAX_SECRET || (tok && strlen(tok) >= MAX_SECRET)) {
		provider_status_set(st, P11K_ERR_ACCESS_DENIED,
			   "AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY or "
			   "AWS_SESSION_TOKEN is malformed or too long");
		return P11K_ERR_ACCESS_DENIED;
	}
	if (exp && !parse_iso8601(exp, &out->expires_at)) {
		provider_status_set(st, P11K_ERR_ACCESS_DENIED,
			   "AWS_CREDENTIAL_EXPIRATION is not an ISO 8601 time");
		return P11K_ERR_ACCESS_DENIED;
	}
	memcpy(out->access_key, akid, strlen(akid) + 1);
	out->secret_key = sec_strndup(sk, strlen(sk));
	out->session_token = tok ? sec_strndup(tok, strlen(tok)) : NULL;
	if (!out->secret_key || (tok && !out->session_token)) {
		aws_creds_clear(out);
		return P11K_ERR_NOMEM;
	}
	return P11K_OK;
}

/* --- profiles ------------------------------------------------------------- */

static const char *profile_name(const chain_cfg *c)
{
	if (c->profile)
		return c->profile;
	const char *p = env_get(c, "AWS_PROFILE");
	if (!p)
		p = env_get(c, "AWS_DEFAULT_PROFILE");
	return p ? p : "default";
}

/* A loaded file (secure memory: it may hold secret keys). */
typedef struct ini_file {
	char path[1024];
	char *text;
	size_t len;
	char section[MAX_VALUE]; /* resolved for this file's convention */
} ini_file;

static p11k_err ini_load(const chain_cfg *c, bool config, ini_file *f,
			 provider_status *st)
{
	const char *prof = profile_name(c);
	const char *env = env_get(c, config ? "AWS_CONFIG_FILE"
					    : "AWS_SHARED_CREDENTIALS_FILE");
	const char *dflt = config ? "~/.aws/config" : "~/.aws/credentials";
	int n;
	memset(f, 0, sizeof(*f));
	if (!expand_path(c, env, dflt, f->path, sizeof(f->path)))
		return P11K_ERR_KEY_NOT_FOUND;
	/* Credentials file sections are [name]; config file sections are
	 * [profile name] except [default] (PROTOCOLS.md 1.5). */
	if (config && strcmp(prof, "default") != 0)
		n = snprintf(f->section, sizeof(f->section), "profile %s", prof);
	else
		n = snprintf(f->section, sizeof(f->section), "%s", prof);
	if (n < 0 || (size_t)n >= sizeof(f->section)) {
		provider_status_set(st, P11K_ERR_ACCESS_DENIED, "profile name too long");
		return P11K_ERR_ACCESS_DENIED;
	}
	return read_file(f->path, MAX_FILE_TEXT, true, &f->text, &f->len, st,
			 config ? "AWS config file" : "AWS credentials file");
}

static void ini_free(ini_file *f)
{
	sec_free(f->text);
	f->text = NULL;
}

static bool ini_get(const ini_file *f, const char *key, char *out, size_t outlen)
{
	return f->text && aws_ini_lookup(f->text, f->len, f->section, key, out, outlen);
}

/* Static keys from one file's profile. */
static p11k_err profile_keys(const ini_file *f, aws_creds *out,
			     provider_status *st)
{
	char akid[sizeof(out->access_key)];
	char *sk = sec_alloc(MAX_SECRET), *tok = sec_alloc(MAX_SECRET);
	p11k_err rc = P11K_OK;
	memset(out, 0, sizeof(*out));
	if (!sk || !tok)
		rc = P11K_ERR_NOMEM;
	bool has_id = rc == P11K_OK && ini_get(f, "aws_access_key_id", akid, sizeof(akid)) &&
		      akid[0];
	bool has_sk = rc == P11K_OK &&
		      ini_get(f, "aws_secret_access_key", sk, MAX_SECRET) && sk[0];
	bool has_tok = rc == P11K_OK &&
		       ((ini_get(f, "aws_session_token", tok, MAX_SECRET) && tok[0]) ||
			(ini_get(f, "aws_security_token", tok, MAX_SECRET) && tok[0]));
	if (rc == P11K_OK && !has_id && !has_sk) {
		rc = P11K_ERR_KEY_NOT_FOUND;
	} else if (rc == P11K_OK && (!has_id || !has_sk || !printable(akid, strlen(akid)))) {
		provider_status_set(st, P11K_ERR_ACCESS_DENIED,
			   "profile section [%.100s] in %.100s has %s but not %s",
			   f->section, f->path,
			   has_id ? "aws_access_key_id" : "aws_secret_access_key",
			   has_id ? "a usable aws_secret_access_key"
				  : "aws_access_key_id");
		rc = P11K_ERR_ACCESS_DENIED;
	} else if (rc == P11K_OK) {
		memcpy(out->access_key, akid, sizeof(akid));
		out->secret_key = sec_strndup(sk, strlen(sk));
		out->session_token = has_tok ? sec_strndup(tok, strlen(tok)) : NULL;
		if (!out->secret_key || (has_tok && !out->session_token)) {
			aws_creds_clear(out);
			rc = P11K_ERR_NOMEM;
		}
	}
	sec_free(sk);
	sec_free(tok);
	return rc;
}

static p11k_err src_profile(void *state, aws_creds *out, provider_status *st)
{
	const chain_cfg *c = state;
	ini_file f;
	p11k_err rc = P11K_ERR_KEY_NOT_FOUND;
	/* The shared credentials file first, then the config file
	 * (botocore's SharedCredentialProvider, then ConfigProvider). */
	for (int config = 0; config < 2 && rc == P11K_ERR_KEY_NOT_FOUND; config++) {
		rc = ini_load(c, config, &f, st);
		if (rc == P11K_OK) {
			rc = profile_keys(&f, out, st);
			if (rc == P11K_OK)
				log_debug(COMP, "profile '%s' from %s", profile_name(c),
					  f.path);
		}
		ini_free(&f);
	}
	return rc;
}

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

static p11k_err sts_url(const chain_cfg *c, char *url, size_t len,
			provider_status *st)
{
	const char *ep = c->sts_endpoint;
	int n;
	if (!ep)
		ep = env_get(c, "AWS_ENDPOINT_URL_STS");
	if (!ep)
		ep = env_get(c, "AWS_ENDPOINT_URL");
	if (ep) {
		size_t el = strlen(ep);
		while (el && ep[el - 1] == '/')
			el--;
		n = snprintf(url, len, "%.*s/", (int)el, ep);
	} else {
		const char *region = c->region;
		if (!region)
			region = env_get(c, "AWS_REGION");
		if (!region)
			region = env_get(c, "AWS_DEFAULT_REGION");
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
	if (n < 0 || (size_t)n >= len || !printable(url, (size_t)n)) {
		provider_status_set(st, P11K_ERR_INTERNAL, "STS endpoint URL is malformed");
		return P11K_ERR_INTERNAL;
	}
	return P11K_OK;
}

static p11k_err src_web(void *state, aws_creds *out, provider_status *st)
{
	const chain_cfg *c = state;
	char tokfile[MAX_VALUE], role[MAX_VALUE], session[128], url[MAX_URL];
	const char *ef = env_get(c, "AWS_WEB_IDENTITY_TOKEN_FILE");
	const char *er = env_get(c, "AWS_ROLE_ARN");
	const char *es = env_get(c, "AWS_ROLE_SESSION_NAME");
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
		ini_file f;
		rc = ini_load(c, true, &f, st);
		if (rc == P11K_OK) {
			bool tf = ini_get(&f, "web_identity_token_file", tokfile,
					  sizeof(tokfile)) && tokfile[0];
			bool ra = ini_get(&f, "role_arn", role, sizeof(role)) && role[0];
			if (!ini_get(&f, "role_session_name", session, sizeof(session)))
				session[0] = '\0';
			rc = tf && ra ? P11K_OK : P11K_ERR_KEY_NOT_FOUND;
		}
		ini_free(&f);
		if (rc != P11K_OK)
			return rc;
	}
	if (!session[0])
		snprintf(session, sizeof(session), "p11kms-%llu",
			 (unsigned long long)clock_now_s());

	dbuf_init(&form, MAX_TOKEN_FILE + 4096, true);
	rc = read_token_file(tokfile, &token, st, "web identity token file");
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
		req_spec s = {
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
		rc = do_http(c, &s, sts_retryable, &resp, st);
		have_resp = true;
	}
	if (rc == P11K_OK) {
		body = resp_text(&resp);
		rc = body ? aws_sts_parse_reply(resp.status, body, resp.body.len, out, st)
			  : P11K_ERR_NOMEM;
		if (st && resp.request_id[0] && !st->request_id[0])
			snprintf(st->request_id, sizeof(st->request_id), "%s",
				 resp.request_id);
	}
	sec_free(body);
	if (have_resp)
		resp_free(&resp);
	sec_free(token);
	dbuf_free(&form);
	return rc;
}

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

static p11k_err src_container(void *state, aws_creds *out, provider_status *st)
{
	const chain_cfg *c = state;
	const char *rel = env_get(c, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI");
	const char *full = env_get(c, "AWS_CONTAINER_CREDENTIALS_FULL_URI");
	const char *tokfile = env_get(c, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE");
	const char *tokenv = env_get(c, "AWS_CONTAINER_AUTHORIZATION_TOKEN");
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
	if (n < 0 || (size_t)n >= sizeof(url) || !printable(url, (size_t)n)) {
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
		rc = read_token_file(tokfile, &token, st,
				     "container authorization token file");
	} else if (tokenv) {
		if (!printable(tokenv, strlen(tokenv)) || strlen(tokenv) >= MAX_SECRET) {
			provider_status_set(st, P11K_ERR_ACCESS_DENIED,
				   "AWS_CONTAINER_AUTHORIZATION_TOKEN is malformed");
			rc = P11K_ERR_ACCESS_DENIED;
		} else {
			token = sec_strndup(tokenv, strlen(tokenv));
			rc = token ? P11K_OK : P11K_ERR_NOMEM;
		}
	}
	if (rc == P11K_OK) {
		req_spec s = {.method = "GET", .url = url,
			      .hname = {"Accept", "Authorization"},
			      .hval = {"application/json", token},
			      .nh = token ? 2 : 1};
		rc = do_http(c, &s, NULL, &resp, st);
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
		rc = json_creds("container credentials", resp.body.p, resp.body.len,
				out, st);
	if (have_resp)
		resp_free(&resp);
	sec_free(token);
	return rc;
}

/* --- source: IMDSv2 -------------------------------------------------------- */

static bool env_true(const chain_cfg *c, const char *name)
{
	const char *v = env_get(c, name);
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
static p11k_err src_imds(void *state, aws_creds *out, provider_status *st)
{
	const chain_cfg *c = state;
	const char *ep = env_get(c, "AWS_EC2_METADATA_SERVICE_ENDPOINT");
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
		ep = env_get(c, "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE") &&
			     strcasecmp(env_get(c, "AWS_EC2_METADATA_SERVICE_ENDPOINT_MODE"),
					"IPv6") == 0
			     ? "http://[fd00:ec2::254]"
			     : "http://169.254.169.254";
	size_t el = strlen(ep);
	while (el && ep[el - 1] == '/')
		el--;
	n = snprintf(base, sizeof(base), "%.*s", (int)el, ep);
	if (n < 0 || (size_t)n >= sizeof(base) - 256 || !printable(base, (size_t)n)) {
		provider_status_set(st, P11K_ERR_ACCESS_DENIED,
			   "AWS_EC2_METADATA_SERVICE_ENDPOINT is malformed");
		return P11K_ERR_ACCESS_DENIED;
	}

	/* Step 1: the session token. */
	if (!imds_url(url, sizeof(url), base, "/latest/api/token", "")) {
		provider_status_set(st, P11K_ERR_INTERNAL, "IMDS URL too long");
		return P11K_ERR_INTERNAL;
	}
	req_spec s1 = {.method = "PUT", .url = url,
		       .hname = {"x-aws-ec2-metadata-token-ttl-seconds"},
		       .hval = {IMDS_TOKEN_TTL}, .nh = 1};
	rc = do_http(c, &s1, NULL, &resp, st);
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
		token = resp_text(&resp);
		size_t tl = token ? strlen(token) : 0;
		while (tl && is_ws(token[tl - 1]))
			token[--tl] = '\0';
		if (!token)
			rc = P11K_ERR_NOMEM;
		else if (!tl || !printable(token, tl)) {
			rc = P11K_ERR_BAD_REPLY;
			provider_status_set(st, rc, "IMDS returned a malformed token");
		}
	}
	resp_free(&resp);
	have_resp = false;

	/* Step 2: the role name. */
	if (rc == P11K_OK) {
		if (!imds_url(url, sizeof(url), base, IMDS_CREDS_PATH, ""))
			rc = P11K_ERR_INTERNAL;
	}
	if (rc == P11K_OK) {
		req_spec s2 = {.method = "GET", .url = url,
			       .hname = {"x-aws-ec2-metadata-token"},
			       .hval = {token}, .nh = 1};
		rc = do_http(c, &s2, NULL, &resp, st);
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
		resp_free(&resp);
	have_resp = false;

	/* Step 3: the credentials. */
	if (rc == P11K_OK) {
		if (!imds_url(url, sizeof(url), base, IMDS_CREDS_PATH, role))
			rc = P11K_ERR_INTERNAL;
	}
	if (rc == P11K_OK) {
		req_spec s3 = {.method = "GET", .url = url,
			       .hname = {"x-aws-ec2-metadata-token"},
			       .hval = {token}, .nh = 1};
		log_debug(COMP, "imds: credentials for role %s", role);
		rc = do_http(c, &s3, NULL, &resp, st);
		have_resp = true;
	}
	if (rc == P11K_OK && resp.status != 200) {
		rc = P11K_ERR_BAD_REPLY;
		provider_status_set(st, rc, "IMDS credentials request returned HTTP %ld",
			   resp.status);
	} else if (rc == P11K_OK) {
		rc = json_creds("IMDS", resp.body.p, resp.body.len, out, st);
	}
	if (have_resp)
		resp_free(&resp);
	sec_free(token);
	return rc;
}

/* --- the chain and its cache ---------------------------------------------- */

static char *opt_dup(const char *s)
{
	return s && *s ? strdup(s) : NULL;
}

aws_creds_provider *aws_creds_chain_new(const aws_chain_options *opt)
{
	aws_creds_provider *p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	if (opt) {
		p->cfg.profile = opt_dup(opt->profile);
		p->cfg.region = opt_dup(opt->region);
		p->cfg.sts_endpoint = opt_dup(opt->sts_endpoint);
		p->cfg.http = opt->http;
		p->cfg.getenv_fn = opt->getenv_fn;
		p->cfg.getenv_arg = opt->getenv_arg;
	}
	if ((opt && opt->profile && *opt->profile && !p->cfg.profile) ||
	    (opt && opt->region && *opt->region && !p->cfg.region) ||
	    (opt && opt->sts_endpoint && *opt->sts_endpoint && !p->cfg.sts_endpoint) ||
	    pthread_mutex_init(&p->lock, NULL) != 0) {
		free(p->cfg.profile);
		free(p->cfg.region);
		free(p->cfg.sts_endpoint);
		free(p);
		return NULL;
	}
	/* botocore skips the environment when a profile is named
	 * explicitly: the configuration asked for that profile. */
	if (!p->cfg.profile)
		p->src[p->nsrc++] = (aws_cred_source){"environment", src_env, NULL, &p->cfg};
	p->src[p->nsrc++] = (aws_cred_source){"web-identity", src_web, NULL, &p->cfg};
	p->src[p->nsrc++] = (aws_cred_source){"profile", src_profile, NULL, &p->cfg};
	p->src[p->nsrc++] = (aws_cred_source){"container", src_container, NULL, &p->cfg};
	p->src[p->nsrc++] = (aws_cred_source){"imds", src_imds, NULL, &p->cfg};
	p->now = NULL;
	return p;
}

void aws_creds_provider_free(aws_creds_provider *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->nsrc; i++)
		if (p->src[i].destroy)
			p->src[i].destroy(p->src[i].state);
	aws_creds_clear(&p->cached);
	pthread_mutex_destroy(&p->lock);
	free(p->cfg.profile);
	free(p->cfg.region);
	free(p->cfg.sts_endpoint);
	free(p);
}

void aws_creds_set_clock(aws_creds_provider *p, uint64_t (*now)(void *arg),
			 void *arg)
{
	pthread_mutex_lock(&p->lock);
	p->now = now;
	p->now_arg = arg;
	pthread_mutex_unlock(&p->lock);
}

static uint64_t now_inlock(const aws_creds_provider *p)
{
	return p->now ? p->now(p->now_arg) : clock_now_s();
}

static bool fresh_inlock(const aws_creds_provider *p, uint64_t now)
{
	return p->have && (p->cached.expires_at == 0 ||
			   now + REFRESH_AHEAD_S < p->cached.expires_at);
}

static bool valid_inlock(const aws_creds_provider *p, uint64_t now)
{
	return p->have && (p->cached.expires_at == 0 || now < p->cached.expires_at);
}

/* Walks the sources in order without the lock. */
static p11k_err chain_fetch(aws_creds_provider *p, aws_creds *out,
			    const char **name, provider_status *st)
{
	for (size_t i = 0; i < p->nsrc; i++) {
		provider_status s = {0};
		p11k_err rc = p->src[i].fetch(p->src[i].state, out, &s);
		if (rc == P11K_ERR_KEY_NOT_FOUND) {
			log_trace(COMP, "source %s: nothing here%s%s", p->src[i].name,
				  s.message[0] ? ": " : "", s.message);
			continue;
		}
		if (st) {
			*st = s;
			st->err = rc;
			/* "source: reason", the reason cut to fit. */
			int n = snprintf(st->message, sizeof(st->message), "%s: %.200s",
					 p->src[i].name,
					 s.message[0] ? s.message : p11k_err_name(rc));
			(void)n;
		}
		if (rc == P11K_OK)
			*name = p->src[i].name;
		else
			log_warn(COMP, "source %s failed: %s", p->src[i].name,
				 s.message[0] ? s.message : p11k_err_name(rc));
		return rc;
	}
	provider_status_set(st, P11K_ERR_ACCESS_DENIED,
		   "no AWS credentials found (environment, web identity, "
		   "profile '%.64s', container, IMDS)",
		   profile_name(&p->cfg));
	return P11K_ERR_ACCESS_DENIED;
}

p11k_err aws_creds_get(aws_creds_provider *p, aws_creds *out, provider_status *st)
{
	aws_creds fresh = {0};
	const char *name = NULL;
	p11k_err rc;
	uint64_t now;

	if (!p || !out)
		return P11K_ERR_INTERNAL;
	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&p->lock);
	now = now_inlock(p);
	/* Fresh, or someone else is refreshing and ours still works. */
	if (fresh_inlock(p, now) || (p->refreshing && valid_inlock(p, now))) {
		rc = aws_creds_copy(out, &p->cached) ? P11K_OK : P11K_ERR_NOMEM;
		pthread_mutex_unlock(&p->lock);
		return rc;
	}
	p->refreshing = true;
	pthread_mutex_unlock(&p->lock);

	rc = chain_fetch(p, &fresh, &name, st);

	pthread_mutex_lock(&p->lock);
	p->refreshing = false;
	now = now_inlock(p);
	if (rc == P11K_OK && fresh.expires_at && fresh.expires_at <= now) {
		provider_status_set(st, P11K_ERR_ACCESS_DENIED,
			   "%s: the credentials it returned have already expired", name);
		aws_creds_clear(&fresh);
		rc = P11K_ERR_ACCESS_DENIED;
	}
	if (rc == P11K_OK) {
		aws_creds_clear(&p->cached);
		p->cached = fresh; /* ownership moves to the cache */
		memset(&fresh, 0, sizeof(fresh));
		p->have = true;
		p->last_source = name;
		log_debug(COMP, "credentials from %s (expire %llu)", name,
			  (unsigned long long)p->cached.expires_at);
		rc = aws_creds_copy(out, &p->cached) ? P11K_OK : P11K_ERR_NOMEM;
	} else if (valid_inlock(p, now)) {
		/* The refresh failed inside the 5-minute window: the cached
		 * credentials still work, keep using them (botocore's
		 * advisory refresh). */
		log_warn(COMP, "refresh failed, using cached credentials until "
			       "they expire");
		rc = aws_creds_copy(out, &p->cached) ? P11K_OK : P11K_ERR_NOMEM;
	}
	pthread_mutex_unlock(&p->lock);
	aws_creds_clear(&fresh);
	return rc;
}

const char *aws_creds_source_name(aws_creds_provider *p)
{
	const char *n;
	if (!p)
		return NULL;
	pthread_mutex_lock(&p->lock);
	n = p->last_source;
	pthread_mutex_unlock(&p->lock);
	return n;
}
