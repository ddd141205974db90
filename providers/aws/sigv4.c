/* SPDX-License-Identifier: Apache-2.0 */
/*
 * AWS Signature Version 4 (PROTOCOLS.md 1.7). Checked byte for byte
 * against botocore's copy of the official test suite
 * (tests/vectors/sigv4/botocore-aws4_testsuite, tests/unit/test_sigv4.c).
 *
 * Everything is built in bounded buffers: the canonical request holds the
 * session token, so it lives in secure memory; the signing key chain is
 * wiped as soon as the signature is made. HMAC and SHA-256 come from the
 * module's private OpenSSL library context (common/crypto.h).
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "common/crypto.h"
#include "common/secmem.h"
#include "sigv4.h"

#define SHA256_LEN 32
/* Hard caps: a KMS request has a handful of headers, no query and the
 * path "/"; the caps leave room for the test suite and STS. */
#define SIGV4_MAX_HEADERS 64
#define SIGV4_MAX_NAME 128
#define SIGV4_MAX_PARAMS 128
#define SIGV4_MAX_SEGMENTS 128
#define SIGV4_MAX_CANON (256 * 1024)
#define SIGV4_MAX_SCOPE_PART 64

void aws_creds_clear(aws_creds *c)
{
	if (!c)
		return;
	sec_free(c->secret_key);
	sec_free(c->session_token);
	OPENSSL_cleanse(c, sizeof(*c));
}

static char *sec_strdup(const char *s)
{
	return s ? sec_dup(s, strlen(s) + 1) : NULL;
}

bool aws_creds_copy(aws_creds *dst, const aws_creds *src)
{
	aws_creds tmp = {0};
	if (!dst || !src || !src->secret_key)
		return false;
	memcpy(tmp.access_key, src->access_key, sizeof(tmp.access_key));
	tmp.access_key[sizeof(tmp.access_key) - 1] = '\0';
	tmp.expires_at = src->expires_at;
	tmp.secret_key = sec_strdup(src->secret_key);
	if (src->session_token)
		tmp.session_token = sec_strdup(src->session_token);
	if (!tmp.secret_key || (src->session_token && !tmp.session_token)) {
		aws_creds_clear(&tmp);
		return false;
	}
	*dst = tmp;
	return true;
}

void sigv4_result_free(sigv4_result *r)
{
	if (!r)
		return;
	/* Secure memory: the canonical request carries the session token. */
	sec_free(r->canonical_request);
	free(r->string_to_sign);
	r->canonical_request = NULL;
	r->string_to_sign = NULL;
}

/* --- primitives ------------------------------------------------------ */

static bool sha256(const void *p, size_t n, uint8_t out[SHA256_LEN])
{
	size_t outlen = 0;
	return EVP_Q_digest(crypto_libctx(), "SHA256", NULL, p, n, out,
			    &outlen) == 1 &&
	       outlen == SHA256_LEN;
}

static bool hmac256(const void *key, size_t keylen, const void *data,
		    size_t datalen, uint8_t out[SHA256_LEN])
{
	size_t outlen = 0;
	return EVP_Q_mac(crypto_libctx(), "HMAC", NULL, "SHA256", NULL, key,
			 keylen, data, datalen, out, SHA256_LEN,
			 &outlen) != NULL &&
	       outlen == SHA256_LEN;
}

static void hex_lower(const uint8_t *p, size_t n, char *out)
{
	static const char digits[] = "0123456789abcdef";
	for (size_t i = 0; i < n; i++) {
		out[2 * i] = digits[p[i] >> 4];
		out[2 * i + 1] = digits[p[i] & 15];
	}
	out[2 * n] = '\0';
}

static bool dbuf_str(dbuf_t *b, const char *s)
{
	return dbuf_add(b, s, strlen(s));
}

static bool is_unreserved(unsigned char c)
{
	return isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~';
}

/* RFC 3986 encoding as SigV4 wants it: unreserved kept, everything else
 * %XX with upper-case hex. */
static bool uri_encode(dbuf_t *b, const char *s, size_t n)
{
	static const char digits[] = "0123456789ABCDEF";
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (is_unreserved(c)) {
			if (!dbuf_add_u8(b, c))
				return false;
		} else {
			char esc[3] = {'%', digits[c >> 4], digits[c & 15]};
			if (!dbuf_add(b, esc, 3))
				return false;
		}
	}
	return true;
}

static int hexval(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

/* Query components may arrive already percent-encoded (the wire form) or
 * raw: decode valid %XX first so that encoding once gives the same
 * canonical text either way (get-vanilla-query-order-encoded vs
 * get-vanilla-utf8-query). '+' stays a literal plus, as AWS reads it. */
static bool query_component(dbuf_t *b, const char *s, size_t n)
{
	char tmp[512];
	size_t o = 0;
	for (size_t i = 0; i < n; i++) {
		char c = s[i];
		if (c == '%' && i + 2 < n && hexval(s[i + 1]) >= 0 &&
		    hexval(s[i + 2]) >= 0) {
			c = (char)(hexval(s[i + 1]) << 4 | hexval(s[i + 2]));
			i += 2;
		}
		if (o == sizeof(tmp)) {
			if (!uri_encode(b, tmp, o))
				return false;
			o = 0;
		}
		tmp[o++] = c;
	}
	return uri_encode(b, tmp, o);
}

/* --- canonical URI ----------------------------------------------------- */

/* Non-S3 services: drop empty and "." segments, let ".." remove the one
 * before it, keep a trailing slash when the raw path had one (botocore
 * _normalize_url_path), then encode each segment once. */
static bool canonical_uri(dbuf_t *b, const char *path)
{
	struct seg {
		const char *p;
		size_t n;
	} segs[SIGV4_MAX_SEGMENTS];
	size_t nseg = 0;
	if (!path || !*path)
		path = "/";
	size_t plen = strlen(path);
	for (size_t i = 0; i < plen;) {
		size_t j = i;
		while (j < plen && path[j] != '/')
			j++;
		size_t n = j - i;
		if (n == 0 || (n == 1 && path[i] == '.')) {
			/* nothing */
		} else if (n == 2 && path[i] == '.' && path[i + 1] == '.') {
			if (nseg)
				nseg--;
		} else {
			if (nseg == SIGV4_MAX_SEGMENTS)
				return false;
			segs[nseg].p = path + i;
			segs[nseg].n = n;
			nseg++;
		}
		i = j + 1;
	}
	if (!dbuf_add_u8(b, '/'))
		return false;
	for (size_t k = 0; k < nseg; k++) {
		if (k && !dbuf_add_u8(b, '/'))
			return false;
		if (!uri_encode(b, segs[k].p, segs[k].n))
			return false;
	}
	if (nseg && path[plen - 1] == '/' && !dbuf_add_u8(b, '/'))
		return false;
	return true;
}

/* --- canonical query ---------------------------------------------------- */

typedef struct qparam {
	char *name, *value; /* encoded, NUL-terminated */
} qparam;

static int qparam_cmp(const void *a, const void *b)
{
	const qparam *x = a, *y = b;
	int c = strcmp(x->name, y->name);
	return c ? c : strcmp(x->value, y->value);
}

static char *encoded_component(const char *s, size_t n)
{
	dbuf_t d;
	dbuf_init(&d, 16 * 1024, false);
	if (!query_component(&d, s, n) || !dbuf_add_u8(&d, 0)) {
		dbuf_free(&d);
		return NULL;
	}
	return (char *)d.p;
}

static p11k_err canonical_query(dbuf_t *b, const char *query)
{
	qparam params[SIGV4_MAX_PARAMS];
	size_t np = 0;
	p11k_err rc = P11K_OK;
	size_t qlen = query ? strlen(query) : 0;
	for (size_t i = 0; i < qlen && rc == P11K_OK;) {
		size_t j = i;
		while (j < qlen && query[j] != '&')
			j++;
		if (j > i) {
			const char *eq = memchr(query + i, '=', j - i);
			size_t nlen = eq ? (size_t)(eq - (query + i)) : j - i;
			const char *v = eq ? eq + 1 : query + j;
			size_t vlen = eq ? (size_t)(query + j - v) : 0;
			if (np == SIGV4_MAX_PARAMS) {
				rc = P11K_ERR_INTERNAL;
				break;
			}
			params[np].name = encoded_component(query + i, nlen);
			params[np].value = encoded_component(v, vlen);
			np++;
			if (!params[np - 1].name || !params[np - 1].value)
				rc = P11K_ERR_NOMEM;
		}
		i = j + 1;
	}
	if (rc == P11K_OK) {
		qsort(params, np, sizeof(params[0]), qparam_cmp);
		for (size_t k = 0; k < np; k++) {
			if ((k && !dbuf_add_u8(b, '&')) ||
			    !dbuf_str(b, params[k].name) || !dbuf_add_u8(b, '=') ||
			    !dbuf_str(b, params[k].value))
				rc = P11K_ERR_NOMEM;
		}
	}
	for (size_t k = 0; k < np; k++) {
		free(params[k].name);
		free(params[k].value);
	}
	return rc;
}

/* --- canonical headers -------------------------------------------------- */

typedef struct hent {
	char name[SIGV4_MAX_NAME]; /* lower case */
	const char *value;
	size_t order;              /* keeps repeated headers in the given order */
} hent;

static int hent_cmp(const void *a, const void *b)
{
	const hent *x = a, *y = b;
	int c = strcmp(x->name, y->name);
	if (c)
		return c;
	return x->order < y->order ? -1 : x->order > y->order;
}

static bool is_lws(char c)
{
	return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

/* Trim, and fold every run of whitespace (obs-fold line breaks included,
 * get-header-value-multiline) into one space. */
static bool header_value(dbuf_t *b, const char *v)
{
	const char *e = v + strlen(v);
	while (v < e && is_lws(*v))
		v++;
	while (e > v && is_lws(e[-1]))
		e--;
	bool space = false;
	for (; v < e; v++) {
		if (is_lws(*v)) {
			space = true;
			continue;
		}
		if (space && !dbuf_add_u8(b, ' '))
			return false;
		space = false;
		if (!dbuf_add_u8(b, (uint8_t)*v))
			return false;
	}
	return true;
}

static bool header_name(const char *in, char out[SIGV4_MAX_NAME])
{
	size_t n = strlen(in);
	if (n == 0 || n >= SIGV4_MAX_NAME)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)in[i];
		/* RFC 9110 token characters only; ':' or spaces would let a
		 * name forge extra canonical lines. */
		if (c <= ' ' || c >= 0x7f || c == ':')
			return false;
		out[i] = (char)tolower(c);
	}
	out[n] = '\0';
	return true;
}

/* Headers the signer owns: supplied values are replaced, not doubled. */
static bool signer_owned(const char *lname)
{
	return strcmp(lname, "authorization") == 0 ||
	       strcmp(lname, "x-amz-date") == 0 ||
	       strcmp(lname, "x-amz-security-token") == 0;
}

static p11k_err canonical_headers(dbuf_t *b, dbuf_t *signed_names,
				  const sigv4_request *req, const aws_creds *creds,
				  const char *amz_date)
{
	hent *h = calloc(SIGV4_MAX_HEADERS, sizeof(*h));
	size_t n = 0;
	bool host = false;
	p11k_err rc = P11K_OK;
	if (!h)
		return P11K_ERR_NOMEM;
	if (req->nheaders > SIGV4_MAX_HEADERS - 2 || (req->nheaders && !req->headers))
		rc = P11K_ERR_INTERNAL;
	for (size_t i = 0; rc == P11K_OK && i < req->nheaders; i++) {
		const sigv4_header *in = &req->headers[i];
		if (!in->name || !in->value || !header_name(in->name, h[n].name)) {
			rc = P11K_ERR_INTERNAL;
			break;
		}
		if (signer_owned(h[n].name))
			continue;
		host |= strcmp(h[n].name, "host") == 0;
		h[n].value = in->value;
		h[n].order = n;
		n++;
	}
	if (rc == P11K_OK && !host)
		rc = P11K_ERR_INTERNAL; /* SigV4 requires a signed Host */
	if (rc == P11K_OK) {
		memcpy(h[n].name, "x-amz-date", sizeof("x-amz-date"));
		h[n].value = amz_date;
		h[n].order = n;
		n++;
		if (creds->session_token) {
			memcpy(h[n].name, "x-amz-security-token",
			       sizeof("x-amz-security-token"));
			h[n].value = creds->session_token;
			h[n].order = n;
			n++;
		}
		qsort(h, n, sizeof(*h), hent_cmp);
	}
	/* One line per name; repeated names joined with ',' in the order
	 * they were given. */
	for (size_t i = 0; rc == P11K_OK && i < n; i++) {
		bool first = i == 0 || strcmp(h[i].name, h[i - 1].name) != 0;
		bool last = i + 1 == n || strcmp(h[i].name, h[i + 1].name) != 0;
		bool ok = true;
		if (first) {
			ok = dbuf_str(b, h[i].name) && dbuf_add_u8(b, ':') &&
			     (signed_names->len == 0 || dbuf_add_u8(signed_names, ';')) &&
			     dbuf_str(signed_names, h[i].name);
		} else {
			ok = dbuf_add_u8(b, ',');
		}
		ok = ok && header_value(b, h[i].value);
		if (ok && last)
			ok = dbuf_add_u8(b, '\n');
		if (!ok)
			rc = P11K_ERR_NOMEM;
	}
	free(h);
	return rc;
}

/* --- scope and key --------------------------------------------------- */

static bool scope_part_ok(const char *s)
{
	size_t n = s ? strlen(s) : 0;
	if (n == 0 || n > SIGV4_MAX_SCOPE_PART)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)s[i]) && s[i] != '-' && s[i] != '_')
			return false;
	return true;
}

/* kSigning = HMAC(HMAC(HMAC(HMAC("AWS4"+secret, date), region), service),
 * "aws4_request"); every intermediate key is wiped. */
static bool signing_key(const char *secret, const char *date, const char *region,
			const char *service, uint8_t out[SHA256_LEN])
{
	size_t slen = strlen(secret);
	size_t klen;
	if (!size_add(slen, 4, &klen))
		return false;
	uint8_t *k0 = sec_alloc(klen);
	uint8_t k1[SHA256_LEN], k2[SHA256_LEN], k3[SHA256_LEN];
	bool ok = k0 != NULL;
	if (ok) {
		memcpy(k0, "AWS4", 4);
		memcpy(k0 + 4, secret, slen);
	}
	ok = ok && hmac256(k0, klen, date, strlen(date), k1) &&
	     hmac256(k1, sizeof(k1), region, strlen(region), k2) &&
	     hmac256(k2, sizeof(k2), service, strlen(service), k3) &&
	     hmac256(k3, sizeof(k3), "aws4_request", 12, out);
	sec_free(k0);
	OPENSSL_cleanse(k1, sizeof(k1));
	OPENSSL_cleanse(k2, sizeof(k2));
	OPENSSL_cleanse(k3, sizeof(k3));
	return ok;
}

static bool method_ok(const char *m)
{
	size_t n = m ? strlen(m) : 0;
	if (n == 0 || n > 16)
		return false;
	for (size_t i = 0; i < n; i++)
		if (m[i] < 'A' || m[i] > 'Z')
			return false;
	return true;
}

p11k_err sigv4_sign(const sigv4_request *req, const aws_creds *creds,
		    sigv4_result *out)
{
	dbuf_t creq, names, sts;
	uint8_t hash[SHA256_LEN], key[SHA256_LEN], sig[SHA256_LEN];
	char hex[2 * SHA256_LEN + 1], date[9], sighex[2 * SHA256_LEN + 1];
	struct tm tm;
	time_t t;
	p11k_err rc = P11K_OK;

	if (!out)
		return P11K_ERR_INTERNAL;
	memset(out, 0, sizeof(*out));
	if (!req || !creds || !creds->secret_key || !creds->access_key[0] ||
	    !method_ok(req->method) || !scope_part_ok(req->region) ||
	    !scope_part_ok(req->service) || (req->payloadlen && !req->payload) ||
	    memchr(creds->access_key, '\0', sizeof(creds->access_key)) == NULL)
		return P11K_ERR_INTERNAL;
	t = (time_t)req->now;
	if ((uint64_t)t != req->now || !gmtime_r(&t, &tm) ||
	    strftime(out->amz_date, sizeof(out->amz_date), "%Y%m%dT%H%M%SZ",
		     &tm) != 16)
		return P11K_ERR_INTERNAL;
	memcpy(date, out->amz_date, 8);
	date[8] = '\0';

	/* The canonical request carries the session token: secure memory. */
	dbuf_init(&creq, SIGV4_MAX_CANON, true);
	dbuf_init(&names, 4096, false);
	dbuf_init(&sts, 1024, false);

	/* PROTOCOLS.md 1.7 step 2 */
	if (!dbuf_str(&creq, req->method) || !dbuf_add_u8(&creq, '\n') ||
	    !canonical_uri(&creq, req->path) || !dbuf_add_u8(&creq, '\n'))
		rc = creq.failed ? P11K_ERR_NOMEM : P11K_ERR_INTERNAL;
	if (rc == P11K_OK)
		rc = canonical_query(&creq, req->query);
	if (rc == P11K_OK && !dbuf_add_u8(&creq, '\n'))
		rc = P11K_ERR_NOMEM;
	if (rc == P11K_OK)
		rc = canonical_headers(&creq, &names, req, creds, out->amz_date);
	if (rc == P11K_OK && !sha256(req->payload ? req->payload : (const uint8_t *)"",
				     req->payloadlen, hash))
		rc = P11K_ERR_INTERNAL;
	if (rc == P11K_OK) {
		hex_lower(hash, sizeof(hash), hex);
		if (!dbuf_add_u8(&creq, '\n') || !dbuf_add(&creq, names.p, names.len) ||
		    !dbuf_add_u8(&creq, '\n') || !dbuf_str(&creq, hex) ||
		    !dbuf_add_u8(&names, 0))
			rc = P11K_ERR_NOMEM;
	}
	/* Step 3: the string to sign. */
	if (rc == P11K_OK && !sha256(creq.p, creq.len, hash))
		rc = P11K_ERR_INTERNAL;
	if (rc == P11K_OK) {
		hex_lower(hash, sizeof(hash), hex);
		if (!dbuf_str(&sts, "AWS4-HMAC-SHA256\n") ||
		    !dbuf_str(&sts, out->amz_date) || !dbuf_add_u8(&sts, '\n') ||
		    !dbuf_str(&sts, date) || !dbuf_add_u8(&sts, '/') ||
		    !dbuf_str(&sts, req->region) || !dbuf_add_u8(&sts, '/') ||
		    !dbuf_str(&sts, req->service) ||
		    !dbuf_str(&sts, "/aws4_request\n") || !dbuf_str(&sts, hex))
			rc = P11K_ERR_NOMEM;
	}
	/* Steps 4-5 */
	if (rc == P11K_OK &&
	    (!signing_key(creds->secret_key, date, req->region, req->service, key) ||
	     !hmac256(key, sizeof(key), sts.p, sts.len, sig)))
		rc = P11K_ERR_INTERNAL;
	if (rc == P11K_OK) {
		hex_lower(sig, sizeof(sig), sighex);
		int n = snprintf(out->authorization, sizeof(out->authorization),
				 "AWS4-HMAC-SHA256 Credential=%s/%s/%s/%s/aws4_request, "
				 "SignedHeaders=%s, Signature=%s",
				 creds->access_key, date, req->region, req->service,
				 (const char *)names.p, sighex);
		if (n < 0 || (size_t)n >= sizeof(out->authorization))
			rc = P11K_ERR_INTERNAL;
	}
	if (rc == P11K_OK) {
		out->canonical_request = sec_alloc(creq.len + 1);
		out->string_to_sign = malloc(sts.len + 1);
		if (!out->canonical_request || !out->string_to_sign) {
			rc = P11K_ERR_NOMEM;
		} else {
			memcpy(out->canonical_request, creq.p, creq.len);
			out->canonical_request[creq.len] = '\0';
			memcpy(out->string_to_sign, sts.p, sts.len);
			out->string_to_sign[sts.len] = '\0';
		}
	}
	if (rc != P11K_OK) {
		sigv4_result_free(out);
		memset(out, 0, sizeof(*out));
	}
	OPENSSL_cleanse(key, sizeof(key));
	dbuf_free(&creq);
	dbuf_free(&names);
	dbuf_free(&sts);
	return rc;
}
