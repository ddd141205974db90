/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The shared HTTP client (http.h, DESIGN.md section 5).
 *
 * Two halves: http_call, the retry loop, which knows nothing of curl and
 * drives an injectable transport; and the default transport over libcurl.
 *
 * curl side, in brief:
 *  - curl_global_init once per process (pthread_once), on the first real
 *    transfer rather than at http_client_new: C_Initialize runs in every
 *    process p11-kit loads us into and must stay cheap (DESIGN.md 7).
 *    Never curl_global_cleanup: the host program may use curl itself, and
 *    curl's global state is shared with it.
 *  - One CURLSH per client shares connections, TLS sessions and DNS; its
 *    lock callbacks use one mutex per curl_lock_data.
 *  - Easy handles are pooled (a small stack under a mutex held only to
 *    push or pop, never across a transfer) and reset before going back,
 *    so no handle keeps a pointer into a finished request.
 *  - The URL is parsed once with curl_url() and that same handle is given
 *    to the transfer (CURLOPT_CURLU), so the scheme and host we check are
 *    the ones curl uses: no second parser to disagree with.
 */
#include "http.h"

#include <arpa/inet.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <sys/types.h>
#include <time.h>
#include <unistd.h>

#include <curl/curl.h>
#include <openssl/crypto.h>

#include "common/log.h"

#define COMP "http"
#define POOL_MAX 8
/* Upper bounds on options, so arithmetic on them cannot overflow. */
#define ATTEMPTS_LIMIT 10
#define DELAY_LIMIT_MS (3600L * 1000)

struct http_client {
	http_options opt; /* defaults applied; opt.ca_file points at ca_file */
	char *ca_file;
	pid_t pid;        /* the process that made it: see client_usable */

	http_transport_fn transport;
	void *targ;
	http_sleep_fn sleep;
	void *sarg;

	/* Made on the first curl transfer (pool_lock). */
	CURLSH *share;
	pthread_mutex_t share_locks[CURL_LOCK_DATA_LAST];

	pthread_mutex_t pool_lock;
	CURL *pool[POOL_MAX];
	size_t npool;
};

/* ---------------------------------------------------------------------- */
/* Requests and responses                                                 */

static bool header_name_ok(const char *name)
{
	size_t n = strlen(name);
	if (n == 0 || n >= sizeof(((http_header *)0)->name))
		return false;
	/* RFC 9110 5.1 token characters: nothing that could end the name or
	 * the line. */
	for (size_t i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)name[i];
		if (ch <= ' ' || ch >= 0x7f || strchr("\"(),/:;<=>?@[\\]{}", ch))
			return false;
	}
	return true;
}

bool http_header_add(http_request *r, const char *name, const char *value)
{
	if (!r || !name || !value || r->nheaders >= HTTP_MAX_HEADERS ||
	    !header_name_ok(name))
		return false;
	/* No control characters but tab (RFC 9110 5.5): a CR or LF would let
	 * a value start a header of its own. */
	size_t vlen = strlen(value);
	for (size_t i = 0; i < vlen; i++)
		if (((unsigned char)value[i] < ' ' && value[i] != '\t') || value[i] == 0x7f)
			return false;
	char *v = malloc(vlen + 1);
	if (!v)
		return false;
	memcpy(v, value, vlen + 1);
	http_header *h = &r->headers[r->nheaders++];
	snprintf(h->name, sizeof(h->name), "%s", name);
	h->value = v;
	return true;
}

const char *http_header_get(const http_request *r, const char *name)
{
	for (size_t i = 0; r && name && i < r->nheaders; i++)
		if (strcasecmp(r->headers[i].name, name) == 0)
			return r->headers[i].value;
	return NULL;
}

static void wipe_str(char *s)
{
	if (s) {
		OPENSSL_cleanse(s, strlen(s));
		free(s);
	}
}

void http_request_reset(http_request *r)
{
	if (!r)
		return;
	for (size_t i = 0; i < r->nheaders && i < HTTP_MAX_HEADERS; i++)
		wipe_str(r->headers[i].value);
	/* Query strings may carry signatures (presigned URLs, SAS). */
	wipe_str(r->url);
	/* Every body, not only body_secret ones: they are small, and a
	 * builder that forgets the flag should not leave a key behind. */
	if (r->body) {
		OPENSSL_cleanse(r->body, r->bodylen);
		free(r->body);
	}
	memset(r, 0, sizeof(*r));
}

void http_response_init(http_response *r, size_t max_body)
{
	memset(r, 0, sizeof(*r));
	/* Secure memory: decrypt replies carry the plaintext. */
	dbuf_init(&r->body, max_body ? max_body : HTTP_DEFAULT_MAX_BODY, true);
	r->retry_after_ms = -1;
}

void http_response_free(http_response *r)
{
	if (!r)
		return;
	size_t max = r->body.max;
	dbuf_free(&r->body);
	/* Leave it empty but usable: free then init, or free twice, both
	 * work. */
	http_response_init(r, max);
}

/* ---------------------------------------------------------------------- */
/* Small helpers                                                          */

static void set_msg(provider_status *st, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static void set_msg(provider_status *st, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(st->message, sizeof(st->message), fmt, ap);
	va_end(ap);
}

/* The URL for log lines: no user info, no query, no fragment (signatures
 * and tokens live there), control characters replaced. */
static void url_for_log(const char *url, char *out, size_t outlen)
{
	const char *p = url, *auth = strstr(url, "://"), *end;
	size_t o = 0;
	if (auth) {
		auth += 3;
		const char *slash = auth + strcspn(auth, "/?#");
		const char *at = memchr(auth, '@', (size_t)(slash - auth));
		/* Copy "scheme://", then resume after the user info. */
		for (; p < auth && o + 1 < outlen; p++)
			out[o++] = *p;
		if (at)
			p = at + 1;
	}
	end = p + strcspn(p, "?#");
	for (; p < end && o + 1 < outlen; p++)
		out[o++] = (*p < 0x20 || *p == 0x7f) ? '?' : *p;
	out[o] = '\0';
	if (p < end && outlen > 4)
		memcpy(out + outlen - 4, "...", 4);
}

static long now_ms_mono(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void default_sleep(void *arg, long ms)
{
	struct timespec ts = {.tv_sec = ms / 1000, .tv_nsec = (ms % 1000) * 1000000L};
	while (nanosleep(&ts, &ts) != 0 && errno == EINTR)
		;
}

/* Uniform in [0, 1). Jitter needs no cryptographic quality, and the
 * module's OpenSSL runs in a private context that this file does not
 * see: a per-thread xorshift seeded from getrandom is enough. */
static double jitter01(void)
{
	static _Thread_local uint64_t s;
	if (s == 0) {
		if (getrandom(&s, sizeof(s), GRND_NONBLOCK) != (ssize_t)sizeof(s))
			s = (uint64_t)now_ms_mono() ^ ((uint64_t)getpid() << 32) ^
			    (uint64_t)(uintptr_t)&s;
		s |= 1;
	}
	s ^= s << 13;
	s ^= s >> 7;
	s ^= s << 17;
	return (double)(s >> 11) * 0x1.0p-53;
}

/* ---------------------------------------------------------------------- */
/* The libcurl transport                                                  */

static pthread_once_t curl_once = PTHREAD_ONCE_INIT;
static CURLcode curl_init_rc = CURLE_FAILED_INIT;

static void curl_init_once(void)
{
	curl_init_rc = curl_global_init(CURL_GLOBAL_DEFAULT);
}

static void share_lock(CURL *h, curl_lock_data data, curl_lock_access access,
		       void *arg)
{
	http_client *c = arg;
	if ((int)data >= 0 && data < CURL_LOCK_DATA_LAST)
		pthread_mutex_lock(&c->share_locks[data]);
}

static void share_unlock(CURL *h, curl_lock_data data, void *arg)
{
	http_client *c = arg;
	if ((int)data >= 0 && data < CURL_LOCK_DATA_LAST)
		pthread_mutex_unlock(&c->share_locks[data]);
}

static CURLSH *share_new(http_client *c)
{
	CURLSH *sh = curl_share_init();
	CURLSHcode rc = sh ? CURLSHE_OK : CURLSHE_NOMEM;
	if (!rc)
		rc = curl_share_setopt(sh, CURLSHOPT_LOCKFUNC, share_lock);
	if (!rc)
		rc = curl_share_setopt(sh, CURLSHOPT_UNLOCKFUNC, share_unlock);
	if (!rc)
		rc = curl_share_setopt(sh, CURLSHOPT_USERDATA, c);
	if (!rc)
		rc = curl_share_setopt(sh, CURLSHOPT_SHARE, CURL_LOCK_DATA_CONNECT);
	if (!rc)
		rc = curl_share_setopt(sh, CURLSHOPT_SHARE, CURL_LOCK_DATA_SSL_SESSION);
	if (!rc)
		rc = curl_share_setopt(sh, CURLSHOPT_SHARE, CURL_LOCK_DATA_DNS);
	if (rc != CURLSHE_OK && sh) {
		curl_share_cleanup(sh);
		sh = NULL;
	}
	return sh;
}

static p11k_err handle_get(http_client *c, CURL **out, provider_status *st)
{
	CURL *h = NULL;
	p11k_err e = P11K_OK;
	*out = NULL;
	pthread_once(&curl_once, curl_init_once);
	if (curl_init_rc != CURLE_OK) {
		set_msg(st, "curl_global_init failed: %s",
			curl_easy_strerror(curl_init_rc));
		return P11K_ERR_INTERNAL;
	}
	pthread_mutex_lock(&c->pool_lock);
	if (!c->share)
		c->share = share_new(c);
	if (!c->share)
		e = P11K_ERR_NOMEM;
	else if (c->npool)
		h = c->pool[--c->npool];
	pthread_mutex_unlock(&c->pool_lock);
	if (e == P11K_OK && !h && !(h = curl_easy_init()))
		e = P11K_ERR_NOMEM;
	if (e != P11K_OK)
		set_msg(st, "cannot set up a curl handle");
	*out = h;
	return e;
}

static void handle_put(http_client *c, CURL *h)
{
	if (!h)
		return;
	/* Forget every pointer into this request (headers, body, URL
	 * handle); connections, TLS sessions and DNS stay in the share. */
	curl_easy_reset(h);
	pthread_mutex_lock(&c->pool_lock);
	if (c->npool < POOL_MAX) {
		c->pool[c->npool++] = h;
		h = NULL;
	}
	pthread_mutex_unlock(&c->pool_lock);
	if (h)
		curl_easy_cleanup(h);
}

static bool host_is_loopback(const char *host)
{
	char buf[INET6_ADDRSTRLEN + 2];
	size_t n = strlen(host);
	struct in_addr a4;
	struct in6_addr a6;
	/* curl resolves "localhost" to loopback itself, without asking DNS
	 * or /etc/hosts (curl 7.78+). */
	if (strcasecmp(host, "localhost") == 0)
		return true;
	if (inet_pton(AF_INET, host, &a4) == 1)
		return (ntohl(a4.s_addr) >> 24) == 127;
	if (n >= 2 && host[0] == '[' && host[n - 1] == ']' && n - 2 < sizeof(buf)) {
		memcpy(buf, host + 1, n - 2);
		buf[n - 2] = '\0';
		host = buf;
	}
	return inet_pton(AF_INET6, host, &a6) == 1 && IN6_IS_ADDR_LOOPBACK(&a6);
}

/* The instance metadata services: link-local, http by design. */
static bool host_is_metadata(const char *host)
{
	static const char *const hosts[] = {
		"169.254.169.254", "169.254.170.2", "169.254.170.23",
		"[fd00:ec2::254]", "[fd00:ec2::23]", "metadata.google.internal",
	};
	for (size_t i = 0; i < ARRAY_SIZE(hosts); i++)
		if (strcasecmp(host, hosts[i]) == 0)
			return true;
	return false;
}

/*
 * Parse the URL and apply the policy: https anywhere; http only when the
 * client allows it and only to 127.0.0.0/8, ::1 or localhost (so nothing
 * readable leaves the machine); nothing else. Refusals happen here, before
 * any connection is attempted.
 */
static p11k_err check_url(const http_client *c, const char *url, CURLU **out,
			  bool *plain, provider_status *st)
{
	CURLU *u = curl_url();
	char *scheme = NULL, *host = NULL, *user = NULL;
	p11k_err e = P11K_OK;
	CURLUcode uc;
	*out = NULL;
	*plain = false;
	if (!u)
		return P11K_ERR_NOMEM;
	uc = curl_url_set(u, CURLUPART_URL, url, 0);
	if (uc == CURLUE_OK)
		uc = curl_url_get(u, CURLUPART_SCHEME, &scheme, 0);
	if (uc == CURLUE_UNSUPPORTED_SCHEME) {
		set_msg(st, "URL scheme not supported (https only)");
		e = P11K_ERR_ACCESS_DENIED;
	} else if (uc != CURLUE_OK) {
		set_msg(st, "malformed URL: %s", curl_url_strerror(uc));
		e = uc == CURLUE_OUT_OF_MEMORY ? P11K_ERR_NOMEM : P11K_ERR_INTERNAL;
	} else if (curl_url_get(u, CURLUPART_USER, &user, 0) == CURLUE_OK) {
		/* curl would send them as Basic auth, and they would sit in
		 * config files and URLs we log. */
		set_msg(st, "credentials in a URL are not accepted");
		e = P11K_ERR_ACCESS_DENIED;
	} else if (strcmp(scheme, "https") != 0 && strcmp(scheme, "http") != 0) {
		set_msg(st, "URL scheme %.16s is not supported (https only)", scheme);
		e = P11K_ERR_ACCESS_DENIED;
	} else if ((uc = curl_url_get(u, CURLUPART_HOST, &host, 0)) != CURLUE_OK) {
		set_msg(st, "malformed URL: %s", curl_url_strerror(uc));
		e = uc == CURLUE_OUT_OF_MEMORY ? P11K_ERR_NOMEM : P11K_ERR_INTERNAL;
	} else if (strcmp(scheme, "https") == 0) {
		*plain = false;
	} else if (c->opt.allow_plain_metadata && host_is_metadata(host)) {
		*plain = true;
	} else if (!c->opt.allow_plain_loopback) {
		set_msg(st, "plain http to %.96s refused: https is required "
			    "(plain http is allowed only to loopback, when enabled)",
			host);
		e = P11K_ERR_ACCESS_DENIED;
	} else if (!host_is_loopback(host)) {
		set_msg(st, "plain http to %.96s refused: allowed only to "
			    "127.0.0.0/8, ::1 and localhost", host);
		e = P11K_ERR_ACCESS_DENIED;
	} else {
		*plain = true;
	}
	curl_free(scheme);
	curl_free(host);
	curl_free(user);
	if (e == P11K_OK)
		*out = u;
	else
		curl_url_cleanup(u);
	return e;
}

/* One transfer's state, shared with the curl callbacks. */
typedef struct xfer {
	http_response *resp;
	int ra_rank;       /* which header set retry_after_ms (see on_header) */
	bool too_large;
	bool nomem;
	char errbuf[CURL_ERROR_SIZE];
} xfer;

static size_t on_body(char *p, size_t size, size_t nmemb, void *arg)
{
	xfer *x = arg;
	dbuf_t *b = &x->resp->body;
	size_t n = size * nmemb;
	if (n > b->max - b->len) {
		x->too_large = true;
		return 0; /* aborts the transfer: CURLE_WRITE_ERROR */
	}
	if (!dbuf_add(b, p, n)) {
		x->nomem = true;
		return 0;
	}
	return n;
}

/* Digits only, clamped: a header number is never trusted to fit. */
static bool parse_num(const char *s, long max, long *out)
{
	long v = 0;
	if (!*s)
		return false;
	for (; *s; s++) {
		if (*s < '0' || *s > '9')
			return false;
		v = v > (max - (*s - '0')) / 10 ? max : v * 10 + (*s - '0');
	}
	*out = v;
	return true;
}

/* Copy a header value fit for a log line: a conservative character set,
 * so a hostile server cannot forge log lines through a request id. */
static void copy_token(char *dst, size_t dstlen, const char *v)
{
	size_t o = 0;
	for (; *v && o + 1 < dstlen; v++) {
		unsigned char ch = (unsigned char)*v;
		if (ch > ' ' && ch < 0x7f && ch != '"' && ch != '\\')
			dst[o++] = (char)ch;
		else
			break;
	}
	dst[o] = '\0';
}

/* Printable ASCII only, cut to fit. */
static void copy_text(char *dst, size_t dstlen, const char *v)
{
	size_t o = 0;
	for (; *v && o + 1 < dstlen; v++)
		dst[o++] = (*v >= ' ' && *v < 0x7f) ? *v : '?';
	dst[o] = '\0';
}

static void set_retry_after(xfer *x, int rank, long ms)
{
	if (rank > x->ra_rank) {
		x->ra_rank = rank;
		x->resp->retry_after_ms = ms;
	}
}

/*
 * Headers we keep. Values are read here and never logged except the
 * request id (sanitized above). Retry hints by precedence, as azure-core
 * orders them (PROTOCOLS.md 2.4): Retry-After (seconds or HTTP-date),
 * retry-after-ms, x-ms-retry-after-ms; then AWS's x-amz-retry-after (ms,
 * PROTOCOLS.md 1.6).
 */
static size_t on_header(char *buf, size_t size, size_t nitems, void *arg)
{
	xfer *x = arg;
	http_response *r = x->resp;
	size_t n = size * nitems, nlen, vlen;
	char name[64], val[sizeof(r->www_authenticate)];
	const char *colon, *v;
	long num;

	/* A new status line starts a new header block (100 Continue, a
	 * proxy's CONNECT reply): forget the previous one. */
	if (n >= 5 && memcmp(buf, "HTTP/", 5) == 0) {
		r->request_id[0] = r->content_type[0] = r->www_authenticate[0] = '\0';
		r->retry_after_ms = -1;
		x->ra_rank = 0;
		return n;
	}
	colon = memchr(buf, ':', n);
	if (!colon)
		return n;
	nlen = (size_t)(colon - buf);
	if (nlen == 0 || nlen >= sizeof(name))
		return n;
	memcpy(name, buf, nlen);
	name[nlen] = '\0';
	v = colon + 1;
	vlen = n - nlen - 1;
	while (vlen && (*v == ' ' || *v == '\t')) {
		v++;
		vlen--;
	}
	while (vlen && (v[vlen - 1] == '\r' || v[vlen - 1] == '\n' ||
			v[vlen - 1] == ' ' || v[vlen - 1] == '\t'))
		vlen--;

	if (strcasecmp(name, "WWW-Authenticate") == 0) {
		/* Whole or not at all: a cut challenge would parse wrongly. */
		if (vlen < sizeof(r->www_authenticate) && !r->www_authenticate[0]) {
			memcpy(r->www_authenticate, v, vlen);
			r->www_authenticate[vlen] = '\0';
		}
		return n;
	}
	/* Longer values are cut: a content type or request id stays
	 * recognisable, and a number that long is garbage anyway. */
	memcpy(val, v, vlen < sizeof(val) ? vlen : sizeof(val) - 1);
	val[vlen < sizeof(val) ? vlen : sizeof(val) - 1] = '\0';

	if (strcasecmp(name, "Content-Type") == 0) {
		copy_text(r->content_type, sizeof(r->content_type), val);
	} else if (strcasecmp(name, "x-amzn-RequestId") == 0 ||
		   strcasecmp(name, "x-amz-request-id") == 0 ||
		   strcasecmp(name, "x-ms-request-id") == 0 ||
		   strcasecmp(name, "x-goog-request-id") == 0 ||
		   strcasecmp(name, "x-request-id") == 0) {
		if (!r->request_id[0])
			copy_token(r->request_id, sizeof(r->request_id), val);
	} else if (strcasecmp(name, "Retry-After") == 0) {
		if (parse_num(val, DELAY_LIMIT_MS / 1000, &num)) {
			set_retry_after(x, 4, num * 1000);
		} else {
			/* An HTTP-date (RFC 9110 10.2.3); one in the past
			 * means now. */
			time_t t = curl_getdate(val, NULL), now = time(NULL);
			long secs = 0;
			if (t != (time_t)-1 && t > now)
				secs = t - now < DELAY_LIMIT_MS / 1000 ? (long)(t - now)
								       : DELAY_LIMIT_MS / 1000;
			if (t != (time_t)-1)
				set_retry_after(x, 4, secs * 1000);
		}
	} else if (strcasecmp(name, "retry-after-ms") == 0) {
		if (parse_num(val, DELAY_LIMIT_MS, &num))
			set_retry_after(x, 3, num);
	} else if (strcasecmp(name, "x-ms-retry-after-ms") == 0) {
		if (parse_num(val, DELAY_LIMIT_MS, &num))
			set_retry_after(x, 2, num);
	} else if (strcasecmp(name, "x-amz-retry-after") == 0) {
		if (parse_num(val, DELAY_LIMIT_MS, &num))
			set_retry_after(x, 1, num);
	}
	return n;
}

/* "Name: value" for curl's list, in a buffer we wipe. An empty value
 * needs curl's "Name;" form, or curl would drop the header. */
static bool slist_add_header(struct curl_slist **list, const char *name,
			     const char *value)
{
	size_t nl = strlen(name), vl = strlen(value), len;
	struct curl_slist *nlist;
	char *line;
	if (!size_add(nl, vl, &len) || !size_add(len, 3, &len) ||
	    !(line = malloc(len)))
		return false;
	if (vl)
		snprintf(line, len, "%s: %s", name, value);
	else
		snprintf(line, len, "%s;", name);
	nlist = curl_slist_append(*list, line);
	OPENSSL_cleanse(line, len);
	free(line);
	if (!nlist)
		return false;
	*list = nlist;
	return true;
}

/* curl_slist_free_all does not wipe: Authorization lives here. */
static void slist_wipe(struct curl_slist *list)
{
	for (struct curl_slist *s = list; s; s = s->next)
		if (s->data)
			OPENSSL_cleanse(s->data, strlen(s->data));
	curl_slist_free_all(list);
}

static p11k_err build_headers(const http_request *req, struct curl_slist **out,
			      provider_status *st)
{
	struct curl_slist *list = NULL;
	bool ok = true;
	for (size_t i = 0; ok && i < req->nheaders; i++)
		ok = slist_add_header(&list, req->headers[i].name,
				      req->headers[i].value ? req->headers[i].value : "");
	/* No "Expect: 100-continue" round trip for our small bodies, and no
	 * curl-chosen Content-Type the builder did not ask (or sign) for. */
	if (ok && !http_header_get(req, "Expect"))
		ok = (list = curl_slist_append(list, "Expect:")) != NULL;
	if (ok && !http_header_get(req, "Content-Type"))
		ok = (list = curl_slist_append(list, "Content-Type:")) != NULL;
	if (!ok) {
		slist_wipe(list);
		list = NULL;
		set_msg(st, "out of memory building request headers");
	}
	*out = list;
	return ok ? P11K_OK : P11K_ERR_NOMEM;
}

static p11k_err set_options(http_client *c, CURL *h, CURLU *u, bool plain,
			    const http_request *req, struct curl_slist *hl,
			    xfer *x, provider_status *st)
{
	const http_options *o = &c->opt;
	bool get = strcmp(req->method, "GET") == 0;
	bool post = strcmp(req->method, "POST") == 0;
	bool other = strcmp(req->method, "PUT") == 0 ||
		     strcmp(req->method, "PATCH") == 0 ||
		     strcmp(req->method, "DELETE") == 0;
	CURLcode rc = CURLE_OK;

	if (!get && !post && !other) {
		set_msg(st, "HTTP method %.8s is not supported", req->method);
		return P11K_ERR_INTERNAL;
	}
	if (get && req->bodylen) {
		set_msg(st, "a GET request cannot carry a body");
		return P11K_ERR_INTERNAL;
	}
	if (!rc)
		rc = curl_easy_setopt(h, CURLOPT_SHARE, c->share);
	if (!rc)
		rc = curl_easy_setopt(h, CURLOPT_CURLU, u);
	/* The host program may be multi-threaded: no SIGALRM timeouts. */
	if (!rc)
		rc = curl_easy_setopt(h, CURLOPT_NOSIGNAL, 1L);
	/* Only the scheme check_url approved; never follow redirects. */
	if (!rc)
		rc = curl_easy_setopt(h, CURLOPT_PROTOCOLS_STR, plain ? "http" : "https");
	if (!rc)
		rc = curl_easy_setopt(h, CURLOPT_REDIR_PROTOCOLS_STR, "https");
	if (!rc)
		rc = curl_easy_setopt(h, CURLOPT_FOLLOWLOCATION, 0L);
	/* A proxy would take plain text off the machine. */
	if (!rc && plain)
		rc = curl_easy_setopt(h, CURLOPT_NOPROXY, "*");
	if (!rc)
		rc = curl_easy_setopt(h, CURLOPT_SSL_VERIFYPEER, 1L);
	if (!rc)
		rc = curl_easy_setopt(h, CURLOPT_SSL_VERIFYHOST, 2L);
	if (!rc)
		rc = curl_easy_setopt(h, CURLOPT_SSLVERSION, (long)CURL_SSLVERSION_TLSv1_2);
	/* A configured bundle replaces the system store (as AWS_CA_BUNDLE
	 * does for the SDKs): no fallback to the system's CA folder. */
	if (!rc && o->ca_file)
		rc = curl_easy_setopt(h, CURLOPT_CAINFO, o->ca_file);
	if (!rc && o->ca_file)
		rc = curl_easy_setopt(h, CURLOPT_CAPATH, NULL);
	if (!rc)
		rc = curl_easy_setopt(h, CURLOPT_CONNECTTIMEOUT_MS, o->connect_timeout_ms);
	if (!rc)
		rc = curl_easy_setopt(h, CURLOPT_TIMEOUT_MS, o->total_timeout_ms);
	if (!rc)
		rc = curl_easy_setopt(h, CURLOPT_TCP_KEEPALIVE, 1L);
	/* Stops at a Content-Length over the cap before reading anything;
	 * on_body catches the rest (chunked, close-delimited). */
	if (!rc)
		rc = curl_easy_setopt(h, CURLOPT_MAXFILESIZE_LARGE, (curl_off_t)o->max_body);
	if (!rc)
		rc = curl_easy_setopt(h, CURLOPT_WRITEFUNCTION, on_body);
	if (!rc)
		rc = curl_easy_setopt(h, CURLOPT_WRITEDATA, x);
	if (!rc)
		rc = curl_easy_setopt(h, CURLOPT_HEADERFUNCTION, on_header);
	if (!rc)
		rc = curl_easy_setopt(h, CURLOPT_HEADERDATA, x);
	if (!rc)
		rc = curl_easy_setopt(h, CURLOPT_ERRORBUFFER, x->errbuf);
	if (!rc && !http_header_get(req, "User-Agent"))
		rc = curl_easy_setopt(h, CURLOPT_USERAGENT, "p11kms");
	if (!rc)
		rc = curl_easy_setopt(h, CURLOPT_HTTPHEADER, hl);
	if (!rc && get)
		rc = curl_easy_setopt(h, CURLOPT_HTTPGET, 1L);
	if (!rc && !get && (post || req->bodylen || strcmp(req->method, "DELETE") != 0)) {
		/* Not copied: req outlives the transfer. An empty body still
		 * sends Content-Length: 0 (Azure's challenge request). */
		rc = curl_easy_setopt(h, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)req->bodylen);
		if (!rc)
			rc = curl_easy_setopt(h, CURLOPT_POSTFIELDS,
					      req->body ? (const char *)req->body : "");
	}
	if (!rc && !get && !post)
		rc = curl_easy_setopt(h, CURLOPT_CUSTOMREQUEST, req->method);
	if (rc != CURLE_OK) {
		set_msg(st, "curl option refused: %s", curl_easy_strerror(rc));
		return rc == CURLE_OUT_OF_MEMORY ? P11K_ERR_NOMEM : P11K_ERR_INTERNAL;
	}
	return P11K_OK;
}

/*
 * The failures that say the peer could not be trusted, or that the trust
 * configuration itself is broken: the same answer comes back however often
 * we ask, so they are P11K_ERR_TLS, not retried and not "unreachable".
 * CURLE_PEER_FAILED_VERIFICATION covers an unknown issuer, an expired
 * certificate and a name mismatch (curl 7.62 merged CURLE_SSL_CACERT into
 * it). A handshake that breaks off (CURLE_SSL_CONNECT_ERROR: a reset, a
 * middlebox, no common protocol) and a failed send or receive stay
 * transport errors: they can be transient.
 */
static bool tls_verification_error(CURLcode rc)
{
	switch (rc) {
	case CURLE_PEER_FAILED_VERIFICATION: /* untrusted, expired, wrong name */
	case CURLE_SSL_CACERT_BADFILE:       /* the ca_file cannot be read */
	case CURLE_SSL_CERTPROBLEM:          /* a local certificate is unusable */
	case CURLE_SSL_ISSUER_ERROR:         /* issuer check failed */
	case CURLE_SSL_CRL_BADFILE:          /* the CRL file cannot be read */
	case CURLE_SSL_PINNEDPUBKEYNOTMATCH: /* pinned key differs */
	case CURLE_SSL_INVALIDCERTSTATUS:    /* OCSP status says no */
		return true;
	default:
		return false;
	}
}

static p11k_err perform(CURL *h, xfer *x, size_t max_body, provider_status *st)
{
	CURLcode rc = curl_easy_perform(h);
	long code = 0;
	if (curl_easy_getinfo(h, CURLINFO_RESPONSE_CODE, &code) != CURLE_OK)
		code = 0;
	if (x->too_large || rc == CURLE_FILESIZE_EXCEEDED) {
		x->resp->status = code;
		set_msg(st, "response larger than %zu bytes", max_body);
		return P11K_ERR_BAD_REPLY;
	}
	if (x->nomem || rc == CURLE_OUT_OF_MEMORY) {
		set_msg(st, "out of memory reading the response");
		return P11K_ERR_NOMEM;
	}
	if (rc != CURLE_OK) {
		/* curl's messages name hosts, ports and certificate problems,
		 * never header values. */
		x->resp->status = 0;
		set_msg(st, "%s", x->errbuf[0] ? x->errbuf : curl_easy_strerror(rc));
		return tls_verification_error(rc) ? P11K_ERR_TLS : P11K_ERR_UNREACHABLE;
	}
	x->resp->status = code;
	return P11K_OK;
}

static p11k_err curl_transport(void *arg, const http_request *req,
			       http_response *resp, provider_status *st)
{
	http_client *c = arg;
	CURLU *u = NULL;
	CURL *h = NULL;
	struct curl_slist *hl = NULL;
	bool plain = false;
	xfer x = {.resp = resp};
	p11k_err e;

	resp->status = 0;
	e = check_url(c, req->url, &u, &plain, st);
	if (e == P11K_OK)
		e = build_headers(req, &hl, st);
	if (e == P11K_OK)
		e = handle_get(c, &h, st);
	if (e == P11K_OK)
		e = set_options(c, h, u, plain, req, hl, &x, st);
	if (e == P11K_OK)
		e = perform(h, &x, c->opt.max_body, st);
	/* The handle lets go of hl and u first. */
	handle_put(c, h);
	slist_wipe(hl);
	curl_url_cleanup(u);
	return e;
}

/* ---------------------------------------------------------------------- */
/* The client                                                             */

static long opt_or(long v, long dflt)
{
	return v > 0 ? (v < DELAY_LIMIT_MS ? v : DELAY_LIMIT_MS) : dflt;
}

http_client *http_client_new(const http_options *opt)
{
	http_options o = {0};
	http_client *c = calloc(1, sizeof(*c));
	if (opt)
		o = *opt;
	if (!c)
		return NULL;
	if (o.ca_file && !(c->ca_file = strdup(o.ca_file))) {
		free(c);
		return NULL;
	}
	c->opt.ca_file = c->ca_file;
	c->opt.allow_plain_loopback = o.allow_plain_loopback;
	c->opt.allow_plain_metadata = o.allow_plain_metadata;
	c->opt.connect_timeout_ms = opt_or(o.connect_timeout_ms, 3000);
	c->opt.total_timeout_ms = opt_or(o.total_timeout_ms, 10000);
	c->opt.max_body = o.max_body ? o.max_body : HTTP_DEFAULT_MAX_BODY;
	c->opt.max_attempts = o.max_attempts > 0 ?
		(o.max_attempts < ATTEMPTS_LIMIT ? o.max_attempts : ATTEMPTS_LIMIT) : 3;
	c->opt.backoff_base_ms = opt_or(o.backoff_base_ms, 1000);
	c->opt.backoff_cap_ms = opt_or(o.backoff_cap_ms, 20000);
	c->opt.retry_after_cap_ms = opt_or(o.retry_after_cap_ms, 20000);
	c->pid = getpid();
	c->transport = curl_transport;
	c->targ = c;
	c->sleep = default_sleep;
	pthread_mutex_init(&c->pool_lock, NULL);
	for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
		pthread_mutex_init(&c->share_locks[i], NULL);
	return c;
}

void http_client_free(http_client *c)
{
	if (!c)
		return;
	/* In a forked child the connections are the parent's: closing them
	 * would send TLS close_notify on its sockets. Leak them instead
	 * (entry.c likewise forgets the parent's state without touching
	 * it). */
	if (c->pid == getpid()) {
		for (size_t i = 0; i < c->npool; i++)
			curl_easy_cleanup(c->pool[i]);
		if (c->share)
			curl_share_cleanup(c->share);
		pthread_mutex_destroy(&c->pool_lock);
		for (int i = 0; i < CURL_LOCK_DATA_LAST; i++)
			pthread_mutex_destroy(&c->share_locks[i]);
	}
	free(c->ca_file);
	free(c);
}

void http_client_set_transport(http_client *c, http_transport_fn fn, void *arg)
{
	c->transport = fn ? fn : curl_transport;
	c->targ = fn ? arg : c;
}

void http_client_set_sleep(http_client *c, http_sleep_fn fn, void *arg)
{
	c->sleep = fn ? fn : default_sleep;
	c->sarg = fn ? arg : NULL;
}

/* ---------------------------------------------------------------------- */
/* The retry loop (PROTOCOLS.md 1.6, 2.4, 3.5)                            */

typedef enum retry_kind {
	RETRY_NO = 0,    /* also P11K_ERR_TLS: asking again gets the same no */
	RETRY_TRANSPORT, /* no response: gives P11K_ERR_UNREACHABLE */
	RETRY_SERVER,    /* 500/502/503/504: likewise */
	RETRY_THROTTLE,  /* 429 or the caller's classifier: P11K_ERR_THROTTLED */
} retry_kind;

static retry_kind classify(p11k_err e, const http_response *resp,
			   http_retryable_fn retryable, void *rarg)
{
	if (e == P11K_ERR_UNREACHABLE)
		return RETRY_TRANSPORT;
	if (e != P11K_OK)
		return RETRY_NO; /* refused URL, body cap, out of memory */
	switch (resp->status) {
	case 0:
		return RETRY_TRANSPORT;
	case 429:
		return RETRY_THROTTLE;
	case 500:
	case 502:
	case 503:
	case 504:
		return RETRY_SERVER;
	default:
		break;
	}
	return retryable && retryable(rarg, resp) ? RETRY_THROTTLE : RETRY_NO;
}

/* The server's hint when it gave one, else full jitter over a doubling
 * ceiling: rand(0,1) * min(base * 2^attempt, cap). */
static long retry_delay(const http_client *c, int attempt, long retry_after_ms)
{
	const http_options *o = &c->opt;
	if (retry_after_ms >= 0)
		return retry_after_ms < o->retry_after_cap_ms ? retry_after_ms
							      : o->retry_after_cap_ms;
	long ceiling = o->backoff_base_ms;
	for (int i = 0; i < attempt && ceiling < o->backoff_cap_ms; i++)
		ceiling *= 2; /* both bounded by DELAY_LIMIT_MS: no overflow */
	if (ceiling > o->backoff_cap_ms)
		ceiling = o->backoff_cap_ms;
	return (long)(jitter01() * (double)ceiling);
}

static void describe_outcome(p11k_err e, const http_response *resp,
			     const provider_status *st, char *out, size_t outlen)
{
	if (e == P11K_OK && resp->status)
		snprintf(out, outlen, "HTTP %ld", resp->status);
	else
		snprintf(out, outlen, "%s", st->message[0] ? st->message
							   : p11k_err_name(e));
}

p11k_err http_call(http_client *c, http_build_fn build, void *barg,
		   http_retryable_fn retryable, void *rarg, http_response *resp,
		   provider_status *st)
{
	http_request req;
	retry_kind why = RETRY_NO;
	p11k_err e = P11K_OK;
	char logurl[160] = "", method[sizeof(req.method)] = "";
	char outcome[sizeof(st->message)] = "";
	int attempt = 0, max;

	memset(&req, 0, sizeof(req));
	if (!st)
		return P11K_ERR_INTERNAL;
	memset(st, 0, sizeof(*st));
	if (!c || !build || !resp) {
		set_msg(st, "http_call: missing argument");
		st->err = P11K_ERR_INTERNAL;
		return P11K_ERR_INTERNAL;
	}
	if (c->pid != getpid()) {
		set_msg(st, "HTTP client used in a forked child");
		st->err = P11K_ERR_INTERNAL;
		return P11K_ERR_INTERNAL;
	}
	max = c->opt.max_attempts;
	for (attempt = 0; attempt < max; attempt++) {
		http_request_reset(&req);
		http_response_free(resp);
		http_response_init(resp, c->opt.max_body);
		st->message[0] = '\0';
		why = RETRY_NO;

		e = build(barg, attempt, &req, st);
		if (e == P11K_OK && (!req.url || !req.method[0])) {
			set_msg(st, "request built without a method or URL");
			e = P11K_ERR_INTERNAL;
		}
		if (e != P11K_OK)
			break;
		url_for_log(req.url, logurl, sizeof(logurl));
		memcpy(method, req.method, sizeof(method));
		method[sizeof(method) - 1] = '\0';

		long t0 = now_ms_mono();
		e = c->transport(c->targ, &req, resp, st);
		/* The cap holds for injected transports too. */
		if (e == P11K_OK && resp->body.failed) {
			set_msg(st, "response larger than %zu bytes", resp->body.max);
			e = P11K_ERR_BAD_REPLY;
		}
		why = classify(e, resp, retryable, rarg);
		describe_outcome(e, resp, st, outcome, sizeof(outcome));
		if (e == P11K_ERR_TLS)
			log_error(COMP, "%s %s: the server's TLS certificate could not be "
					"verified (%s): check ca_file (the CA bundle that "
					"signs the endpoint's certificate) and the endpoint's "
					"host name; not retried",
				  req.method, logurl, outcome);
		log_debug(COMP, "%s %s: %s in %ld ms, %zu bytes (attempt %d/%d%s%s)",
			  req.method, logurl, outcome, now_ms_mono() - t0,
			  resp->body.len, attempt + 1, max,
			  resp->request_id[0] ? ", request id " : "", resp->request_id);
		if (why == RETRY_NO || attempt + 1 >= max)
			break;

		long delay = retry_delay(c, attempt,
					 e == P11K_OK ? resp->retry_after_ms : -1);
		log_info(COMP, "%s %s: %s, retrying in %ld ms%s (attempt %d/%d%s%s)",
			 req.method, logurl, outcome, delay,
			 e == P11K_OK && resp->retry_after_ms >= 0 ? " as asked" : "",
			 attempt + 1, max,
			 resp->request_id[0] ? ", request id " : "", resp->request_id);
		c->sleep(c->sarg, delay);
	}
	http_request_reset(&req);

	if (why != RETRY_NO) {
		e = why == RETRY_THROTTLE ? P11K_ERR_THROTTLED : P11K_ERR_UNREACHABLE;
		set_msg(st, "gave up after %d attempt%s: %s", attempt + 1,
			attempt ? "s" : "", outcome);
		log_info(COMP, "%s %s: %s", method, logurl, st->message);
	}
	st->err = e;
	st->http_status = resp->status;
	snprintf(st->request_id, sizeof(st->request_id), "%s", resp->request_id);
	return e;
}
