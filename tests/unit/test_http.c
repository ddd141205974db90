/* SPDX-License-Identifier: Apache-2.0 */
/*
 * providers/common/http.c.
 *
 * Group 1, no network: the retry loop over a scripted transport and a
 * recording sleep (503 then success, 429 with Retry-After, giving up with
 * the right error, no retry on 400 unless the classifier says so, the
 * body cap, a rebuilt request per attempt, jitter bounds), the request
 * helpers, and a log at trace level that must not contain a secret.
 *
 * Group 2, real network on 127.0.0.1: a Python HTTPS server with a
 * throwaway CA (made by `openssl req` in a temporary folder) and a plain
 * HTTP one, both started here: TLS with and without the CA, host name
 * verification, plain http only to loopback and only when allowed, refusal
 * of anything else before any connection, the body cap (Content-Length and
 * close-delimited), header capture, connection reuse counted by the
 * server, and concurrent calls on one client.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "common/log.h"
#include "providers/common/http.h"

/* --- helpers shared by both groups ---------------------------------- */

typedef struct sleeps {
	long ms[32];
	int n;
} sleeps;

static void record_sleep(void *arg, long ms)
{
	sleeps *s = arg;
	if (s->n < 32)
		s->ms[s->n] = ms;
	s->n++;
}

/* A request builder: method, URL, optional body and one header that says
 * which attempt built it. */
typedef struct builder {
	const char *method;
	const char *url;
	const char *body;
	const char *auth; /* Authorization value, if any */
	int calls;
	int attempts[16];
	p11k_err fail_on; /* fail with this on attempt fail_at */
	int fail_at;
} builder;

static p11k_err build(void *arg, int attempt, http_request *req,
		      provider_status *st)
{
	builder *b = arg;
	char n[16];
	if (b->calls < 16)
		b->attempts[b->calls] = attempt;
	b->calls++;
	if (b->fail_on != P11K_OK && attempt == b->fail_at) {
		snprintf(st->message, sizeof(st->message), "signing failed");
		return b->fail_on;
	}
	/* The loop hands over a clean request every time. */
	assert_int_equal(req->nheaders, 0);
	assert_null(req->url);
	assert_null(req->body);
	snprintf(req->method, sizeof(req->method), "%s", b->method ? b->method : "GET");
	req->url = strdup(b->url);
	snprintf(n, sizeof(n), "%d", attempt);
	assert_true(http_header_add(req, "X-Attempt", n));
	if (b->auth)
		assert_true(http_header_add(req, "Authorization", b->auth));
	if (b->body) {
		req->bodylen = strlen(b->body);
		req->body = malloc(req->bodylen);
		memcpy(req->body, b->body, req->bodylen);
		req->body_secret = true;
		assert_true(http_header_add(req, "Content-Type", "application/json"));
	}
	return P11K_OK;
}

/* --- group 1: scripted transport ------------------------------------ */

typedef struct step {
	p11k_err err;       /* transport failure when set */
	long status;
	long retry_after;   /* ms; used when has_ra */
	bool has_ra;
	const char *body;
	size_t big;         /* append this many bytes instead */
	const char *reqid;
} step;

typedef struct fake {
	step steps[12];
	int nsteps;
	int calls;
	char seen_attempt[12][8];
} fake;

static p11k_err fake_transport(void *arg, const http_request *req,
			       http_response *resp, provider_status *st)
{
	fake *f = arg;
	int i = f->calls < f->nsteps ? f->calls : f->nsteps - 1;
	const char *a = http_header_get(req, "x-attempt");
	if (f->calls < 12)
		snprintf(f->seen_attempt[f->calls], 8, "%s", a ? a : "?");
	f->calls++;
	const step *s = &f->steps[i];
	/* Each attempt starts from an empty response. */
	assert_int_equal(resp->body.len, 0);
	assert_int_equal(resp->status, 0);
	assert_int_equal(resp->retry_after_ms, -1);
	if (s->err != P11K_OK) {
		snprintf(st->message, sizeof(st->message), "fake transport failure");
		return s->err;
	}
	resp->status = s->status;
	if (s->has_ra)
		resp->retry_after_ms = s->retry_after;
	if (s->reqid)
		snprintf(resp->request_id, sizeof(resp->request_id), "%s", s->reqid);
	if (s->body)
		(void)dbuf_add(&resp->body, s->body, strlen(s->body));
	for (size_t k = 0; k < s->big; k += 100) {
		char chunk[100];
		memset(chunk, 'x', sizeof(chunk));
		if (!dbuf_add(&resp->body, chunk, s->big - k < 100 ? s->big - k : 100))
			break;
	}
	return P11K_OK;
}

typedef struct env {
	http_client *c;
	fake f;
	sleeps s;
	builder b;
	http_response resp;
	provider_status st;
} env;

static env *env_new(const http_options *o)
{
	env *e = calloc(1, sizeof(*e));
	http_options dflt = {0};
	e->c = http_client_new(o ? o : &dflt);
	assert_non_null(e->c);
	http_client_set_transport(e->c, fake_transport, &e->f);
	http_client_set_sleep(e->c, record_sleep, &e->s);
	e->b.url = "https://kms.example.com/path?sig=abc";
	http_response_init(&e->resp, 0);
	return e;
}

static void env_free(env *e)
{
	http_response_free(&e->resp);
	http_client_free(e->c);
	free(e);
}

static p11k_err run(env *e, http_retryable_fn r, void *rarg)
{
	return http_call(e->c, build, &e->b, r, rarg, &e->resp, &e->st);
}

static void test_retry_503_then_ok(void **state)
{
	env *e = env_new(NULL);
	e->f.steps[0] = (step){.status = 503, .body = "busy", .reqid = "r1"};
	e->f.steps[1] = (step){.status = 503, .body = "busy", .reqid = "r2"};
	e->f.steps[2] = (step){.status = 200, .body = "{\"ok\":1}", .reqid = "r3"};
	e->f.nsteps = 3;
	assert_int_equal(run(e, NULL, NULL), P11K_OK);
	assert_int_equal(e->resp.status, 200);
	/* Only the last attempt's body. */
	assert_int_equal(e->resp.body.len, 8);
	assert_memory_equal(e->resp.body.p, "{\"ok\":1}", 8);
	assert_int_equal(e->f.calls, 3);
	assert_int_equal(e->b.calls, 3);
	assert_int_equal(e->s.n, 2);
	/* Defaults: full jitter under 1 s then 2 s. */
	assert_in_range(e->s.ms[0], 0, 1000);
	assert_in_range(e->s.ms[1], 0, 2000);
	assert_int_equal(e->st.err, P11K_OK);
	assert_int_equal(e->st.http_status, 200);
	assert_string_equal(e->st.request_id, "r3");
	env_free(e);
}

static void test_429_honours_retry_after(void **state)
{
	http_options o = {.retry_after_cap_ms = 5000};
	env *e = env_new(&o);
	e->f.steps[0] = (step){.status = 429, .has_ra = true, .retry_after = 1500};
	e->f.steps[1] = (step){.status = 429, .has_ra = true, .retry_after = 0};
	e->f.steps[2] = (step){.status = 200};
	e->f.nsteps = 3;
	assert_int_equal(run(e, NULL, NULL), P11K_OK);
	assert_int_equal(e->s.n, 2);
	assert_int_equal(e->s.ms[0], 1500);
	assert_int_equal(e->s.ms[1], 0); /* "Retry-After: 0" is honoured too */
	env_free(e);

	/* A hint longer than the cap is cut to the cap. */
	e = env_new(&o);
	e->f.steps[0] = (step){.status = 503, .has_ra = true, .retry_after = 60000};
	e->f.steps[1] = (step){.status = 204};
	e->f.nsteps = 2;
	assert_int_equal(run(e, NULL, NULL), P11K_OK);
	assert_int_equal(e->s.n, 1);
	assert_int_equal(e->s.ms[0], 5000);
	env_free(e);
}

static void test_give_up(void **state)
{
	/* 5xx: unreachable, with the last response kept. */
	env *e = env_new(NULL);
	e->f.steps[0] = (step){.status = 503, .body = "down", .reqid = "last"};
	e->f.nsteps = 1;
	assert_int_equal(run(e, NULL, NULL), P11K_ERR_UNREACHABLE);
	assert_int_equal(e->f.calls, 3);
	assert_int_equal(e->s.n, 2); /* no sleep after the last attempt */
	assert_int_equal(e->resp.status, 503);
	assert_int_equal(e->resp.body.len, 4);
	assert_int_equal(e->st.err, P11K_ERR_UNREACHABLE);
	assert_int_equal(e->st.http_status, 503);
	assert_string_equal(e->st.request_id, "last");
	assert_non_null(strstr(e->st.message, "gave up after 3 attempts"));
	assert_non_null(strstr(e->st.message, "HTTP 503"));
	env_free(e);

	/* 429: throttled. */
	http_options o = {.max_attempts = 5};
	e = env_new(&o);
	e->f.steps[0] = (step){.status = 429};
	e->f.nsteps = 1;
	assert_int_equal(run(e, NULL, NULL), P11K_ERR_THROTTLED);
	assert_int_equal(e->f.calls, 5);
	assert_int_equal(e->s.n, 4);
	env_free(e);

	/* Transport failures: unreachable, with the transport's reason. */
	e = env_new(NULL);
	e->f.steps[0] = (step){.err = P11K_ERR_UNREACHABLE};
	e->f.nsteps = 1;
	assert_int_equal(run(e, NULL, NULL), P11K_ERR_UNREACHABLE);
	assert_int_equal(e->f.calls, 3);
	assert_int_equal(e->resp.status, 0);
	assert_non_null(strstr(e->st.message, "fake transport failure"));
	env_free(e);

	/* A certificate that cannot be verified: once, never again. */
	e = env_new(NULL);
	e->f.steps[0] = (step){.err = P11K_ERR_TLS};
	e->f.steps[1] = (step){.status = 200};
	e->f.nsteps = 2;
	assert_int_equal(run(e, NULL, NULL), P11K_ERR_TLS);
	assert_int_equal(e->f.calls, 1);
	assert_int_equal(e->s.n, 0);
	assert_int_equal(e->st.err, P11K_ERR_TLS);
	env_free(e);

	/* A last 5xx after a 429 is a server problem, not throttling. */
	e = env_new(NULL);
	e->f.steps[0] = (step){.status = 429};
	e->f.steps[1] = (step){.status = 500};
	e->f.steps[2] = (step){.status = 502};
	e->f.nsteps = 3;
	assert_int_equal(run(e, NULL, NULL), P11K_ERR_UNREACHABLE);
	env_free(e);

	/* One attempt only: nothing to retry, nothing slept. */
	http_options one = {.max_attempts = 1};
	e = env_new(&one);
	e->f.steps[0] = (step){.status = 504};
	e->f.nsteps = 1;
	assert_int_equal(run(e, NULL, NULL), P11K_ERR_UNREACHABLE);
	assert_int_equal(e->s.n, 0);
	assert_non_null(strstr(e->st.message, "gave up after 1 attempt:"));
	env_free(e);
}

static bool throttling_body(void *arg, const http_response *r)
{
	int *n = arg;
	(*n)++;
	return r->body.len && memmem(r->body.p, r->body.len, "ThrottlingException",
				      strlen("ThrottlingException")) != NULL;
}

static void test_400_not_retried_unless_classified(void **state)
{
	int asked = 0;
	env *e = env_new(NULL);
	e->f.steps[0] = (step){.status = 400, .body = "{\"__type\":\"ValidationException\"}"};
	e->f.nsteps = 1;
	assert_int_equal(run(e, throttling_body, &asked), P11K_OK);
	assert_int_equal(e->resp.status, 400);
	assert_int_equal(e->f.calls, 1);
	assert_int_equal(e->s.n, 0);
	assert_int_equal(asked, 1);
	env_free(e);

	/* Other non-retryable statuses, no classifier. */
	long codes[] = {200, 201, 301, 401, 403, 404, 409, 501, 505};
	for (size_t i = 0; i < sizeof(codes) / sizeof(codes[0]); i++) {
		e = env_new(NULL);
		e->f.steps[0] = (step){.status = codes[i]};
		e->f.nsteps = 1;
		assert_int_equal(run(e, NULL, NULL), P11K_OK);
		assert_int_equal(e->f.calls, 1);
		env_free(e);
	}

	/* AWS throttling arrives as HTTP 400: the classifier retries it and,
	 * when it never clears, the result is P11K_ERR_THROTTLED. */
	asked = 0;
	e = env_new(NULL);
	e->f.steps[0] = (step){.status = 400, .body = "{\"__type\":\"ThrottlingException\"}"};
	e->f.nsteps = 1;
	assert_int_equal(run(e, throttling_body, &asked), P11K_ERR_THROTTLED);
	assert_int_equal(e->f.calls, 3);
	assert_int_equal(asked, 3);
	assert_int_equal(e->resp.status, 400);
	env_free(e);

	/* ... and when it clears, the final answer is returned. */
	asked = 0;
	e = env_new(NULL);
	e->f.steps[0] = (step){.status = 400, .body = "{\"__type\":\"ThrottlingException\"}"};
	e->f.steps[1] = (step){.status = 200, .body = "{}"};
	e->f.nsteps = 2;
	assert_int_equal(run(e, throttling_body, &asked), P11K_OK);
	assert_int_equal(e->f.calls, 2);
	/* 429 and 5xx need no classifier; it is not asked about them. */
	asked = 0;
	e->f.calls = 0;
	e->f.steps[0] = (step){.status = 429};
	assert_int_equal(run(e, throttling_body, &asked), P11K_OK);
	assert_int_equal(asked, 1); /* only for the final 200 */
	env_free(e);
}

static void test_body_cap(void **state)
{
	http_options o = {.max_body = 1000};
	env *e = env_new(&o);
	e->f.steps[0] = (step){.status = 200, .big = 1001};
	e->f.nsteps = 1;
	assert_int_equal(run(e, NULL, NULL), P11K_ERR_BAD_REPLY);
	assert_int_equal(e->f.calls, 1); /* not retried */
	assert_non_null(strstr(e->st.message, "response larger than 1000 bytes"));
	assert_int_equal(e->st.err, P11K_ERR_BAD_REPLY);
	env_free(e);

	e = env_new(&o);
	e->f.steps[0] = (step){.status = 200, .big = 1000};
	e->f.nsteps = 1;
	assert_int_equal(run(e, NULL, NULL), P11K_OK);
	assert_int_equal(e->resp.body.len, 1000);
	assert_int_equal(e->resp.body.max, 1000);
	env_free(e);

	/* The default cap. */
	e = env_new(NULL);
	e->f.steps[0] = (step){.status = 200, .big = HTTP_DEFAULT_MAX_BODY + 1};
	e->f.nsteps = 1;
	assert_int_equal(run(e, NULL, NULL), P11K_ERR_BAD_REPLY);
	env_free(e);
}

static void test_rebuilt_per_attempt(void **state)
{
	http_options o = {.max_attempts = 4};
	env *e = env_new(&o);
	e->b.auth = "AWS4-HMAC-SHA256 Credential=...";
	e->b.body = "{\"Plaintext\":\"c2VjcmV0\"}";
	e->b.method = "POST";
	e->f.steps[0] = (step){.err = P11K_ERR_UNREACHABLE};
	e->f.steps[1] = (step){.status = 500};
	e->f.steps[2] = (step){.status = 429};
	e->f.steps[3] = (step){.status = 200};
	e->f.nsteps = 4;
	assert_int_equal(run(e, NULL, NULL), P11K_OK);
	assert_int_equal(e->b.calls, 4);
	for (int i = 0; i < 4; i++) {
		char want[8];
		snprintf(want, sizeof(want), "%d", i);
		assert_int_equal(e->b.attempts[i], i);
		/* The transport saw the request of that attempt. */
		assert_string_equal(e->f.seen_attempt[i], want);
	}
	env_free(e);

	/* A builder failure (e.g. no credentials) ends the call with its
	 * error and message, whatever the attempt. */
	e = env_new(NULL);
	e->b.fail_on = P11K_ERR_ACCESS_DENIED;
	e->b.fail_at = 1;
	e->f.steps[0] = (step){.status = 503};
	e->f.nsteps = 1;
	assert_int_equal(run(e, NULL, NULL), P11K_ERR_ACCESS_DENIED);
	assert_int_equal(e->f.calls, 1);
	assert_int_equal(e->st.err, P11K_ERR_ACCESS_DENIED);
	assert_string_equal(e->st.message, "signing failed");
	env_free(e);

	/* Errors other than "unreachable" from the transport are final. */
	p11k_err hard[] = {P11K_ERR_ACCESS_DENIED, P11K_ERR_NOMEM, P11K_ERR_INTERNAL,
			   P11K_ERR_BAD_REPLY};
	for (size_t i = 0; i < sizeof(hard) / sizeof(hard[0]); i++) {
		e = env_new(NULL);
		e->f.steps[0] = (step){.err = hard[i]};
		e->f.nsteps = 1;
		assert_int_equal(run(e, NULL, NULL), hard[i]);
		assert_int_equal(e->f.calls, 1);
		assert_int_equal(e->s.n, 0);
		env_free(e);
	}
}

static void test_jitter_bounds(void **state)
{
	http_options o = {.max_attempts = 6, .backoff_base_ms = 100,
			  .backoff_cap_ms = 300};
	long ceil[5] = {100, 200, 300, 300, 300};
	long hi[5] = {0}, lo[5] = {1000, 1000, 1000, 1000, 1000};
	for (int run_no = 0; run_no < 300; run_no++) {
		env *e = env_new(&o);
		e->f.steps[0] = (step){.status = 503};
		e->f.nsteps = 1;
		assert_int_equal(run(e, NULL, NULL), P11K_ERR_UNREACHABLE);
		assert_int_equal(e->s.n, 5);
		for (int i = 0; i < 5; i++) {
			assert_in_range(e->s.ms[i], 0, ceil[i]);
			if (e->s.ms[i] > hi[i])
				hi[i] = e->s.ms[i];
			if (e->s.ms[i] < lo[i])
				lo[i] = e->s.ms[i];
		}
		env_free(e);
	}
	/* Spread over the whole range, not a constant. */
	for (int i = 0; i < 5; i++) {
		assert_true(hi[i] >= ceil[i] * 8 / 10);
		assert_true(lo[i] <= ceil[i] * 2 / 10);
	}
}

static void test_headers(void **state)
{
	http_request r;
	memset(&r, 0, sizeof(r));
	assert_true(http_header_add(&r, "Content-Type", "application/json"));
	assert_true(http_header_add(&r, "X-Empty", ""));
	assert_string_equal(http_header_get(&r, "content-type"), "application/json");
	assert_string_equal(http_header_get(&r, "X-EMPTY"), "");
	assert_null(http_header_get(&r, "Authorization"));
	/* No header injection through a value or a name. */
	assert_false(http_header_add(&r, "X-Bad", "a\r\nInjected: 1"));
	assert_false(http_header_add(&r, "X-Bad", "a\nb"));
	assert_false(http_header_add(&r, "X-Bad", "a\x01b"));
	assert_false(http_header_add(&r, "X-Bad", "a\x7f"));
	assert_true(http_header_add(&r, "X-Tab", "a\tb"));
	assert_false(http_header_add(&r, "X Bad", "v"));
	assert_false(http_header_add(&r, "X-Bad:", "v"));
	assert_false(http_header_add(&r, "", "v"));
	assert_false(http_header_add(&r, "X-Bad\r\n", "v"));
	char longname[80];
	memset(longname, 'a', sizeof(longname) - 1);
	longname[sizeof(longname) - 1] = '\0';
	assert_false(http_header_add(&r, longname, "v"));
	assert_false(http_header_add(&r, NULL, "v"));
	assert_false(http_header_add(&r, "X", NULL));
	assert_int_equal(r.nheaders, 3);
	/* A hard limit on their number. */
	while (r.nheaders < HTTP_MAX_HEADERS)
		assert_true(http_header_add(&r, "X-Fill", "1"));
	assert_false(http_header_add(&r, "X-One-Too-Many", "1"));
	r.url = strdup("https://h/");
	r.body = malloc(4);
	memcpy(r.body, "body", 4);
	r.bodylen = 4;
	http_request_reset(&r);
	assert_int_equal(r.nheaders, 0);
	assert_null(r.url);
	assert_null(r.body);
	http_request_reset(&r); /* twice is fine */

	/* Responses: init, free, free again. */
	http_response resp;
	http_response_init(&resp, 10);
	assert_int_equal(resp.retry_after_ms, -1);
	assert_true(resp.body.secret);
	assert_true(dbuf_add(&resp.body, "0123456789", 10));
	assert_false(dbuf_add(&resp.body, "x", 1));
	http_response_free(&resp);
	http_response_free(&resp);
}

/* Trace logging shows method, path, status, attempt and request id, and
 * never a header value, a body or a query string. */
static void test_log_has_no_secrets(void **state)
{
	char path[] = "/tmp/p11kms-http-log-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	close(fd);
	assert_true(log_configure(LOG_TRACE, path));

	env *e = env_new(NULL);
	e->b.method = "POST";
	e->b.url = "https://user:pw-SECRET1@kms.example.com/keys/k1?sig=SECRET2#SECRET3";
	e->b.auth = "Bearer SECRET4";
	e->b.body = "{\"Plaintext\":\"SECRET5\"}";
	e->f.steps[0] = (step){.status = 503, .reqid = "req-503"};
	e->f.steps[1] = (step){.status = 200, .body = "{\"Plaintext\":\"SECRET6\"}",
			       .reqid = "req-200"};
	e->f.nsteps = 2;
	assert_int_equal(run(e, NULL, NULL), P11K_OK);
	env_free(e);
	log_configure(LOG_WARN, "stderr");
	log_apply_env();

	FILE *f = fopen(path, "r");
	assert_non_null(f);
	char buf[8192];
	size_t n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	unlink(path);
	buf[n] = '\0';
	assert_null(strstr(buf, "SECRET"));
	assert_null(strstr(buf, "pw-"));
	assert_non_null(strstr(buf, "POST https://kms.example.com/keys/k1"));
	assert_non_null(strstr(buf, "HTTP 503"));
	assert_non_null(strstr(buf, "req-503"));
	assert_non_null(strstr(buf, "req-200"));
	assert_non_null(strstr(buf, "attempt 2/3"));
}

/* --- group 2: real network on 127.0.0.1 ------------------------------ */

static const char server_py[] =
	"import email.utils, http.server, ssl, sys, threading, time, json\n"
	"lock = threading.Lock()\n"
	"conns = 0\n"
	"class H(http.server.BaseHTTPRequestHandler):\n"
	"    protocol_version = 'HTTP/1.1'\n"
	"    disable_nagle_algorithm = True\n"
	"    def setup(self):\n"
	"        global conns\n"
	"        with lock:\n"
	"            conns += 1\n"
	"        super().setup()\n"
	"    def log_message(self, *a):\n"
	"        pass\n"
	"    def reply(self, code, body, headers=()):\n"
	"        self.send_response(code)\n"
	"        for k, v in headers:\n"
	"            self.send_header(k, v)\n"
	"        self.send_header('Content-Length', str(len(body)))\n"
	"        self.end_headers()\n"
	"        self.wfile.write(body)\n"
	"    def do_GET(self):\n"
	"        p = self.path.split('?')[0]\n"
	"        if p == '/hello':\n"
	"            self.reply(200, b'hello', [('Content-Type', 'text/plain'),\n"
	"                                       ('x-amzn-RequestId', 'req-123')])\n"
	"        elif p == '/conns':\n"
	"            with lock:\n"
	"                n = conns\n"
	"            self.reply(200, str(n).encode())\n"
	"        elif p.startswith('/big/'):\n"
	"            self.reply(200, b'x' * int(p[5:]))\n"
	"        elif p.startswith('/stream/'):\n"
	"            self.send_response(200)\n"
	"            self.send_header('Connection', 'close')\n"
	"            self.end_headers()\n"
	"            self.wfile.write(b'x' * int(p[8:]))\n"
	"            self.close_connection = True\n"
	"        elif p == '/throttle':\n"
	"            self.reply(429, b'{\"error\":{\"code\":\"Throttled\"}}', [\n"
	"                ('Retry-After', '2'), ('x-ms-request-id', 'ms-req-9'),\n"
	"                ('Content-Type', 'application/json; charset=utf-8'),\n"
	"                ('WWW-Authenticate', 'Bearer authorization=\"https://login.example/t\", '\n"
	"                 'resource=\"https://vault.azure.net\"')])\n"
	"        elif p == '/date':\n"
	"            d = email.utils.formatdate(time.time() + 3, usegmt=True)\n"
	"            self.reply(503, b'', [('Retry-After', d)])\n"
	"        elif p == '/ms':\n"
	"            self.reply(503, b'', [('x-ms-retry-after-ms', '1234'),\n"
	"                                  ('x-amz-retry-after', '99')])\n"
	"        elif p == '/amz':\n"
	"            self.reply(429, b'', [('x-amz-retry-after', '750')])\n"
	"        else:\n"
	"            self.reply(404, b'nope')\n"
	"    def do_POST(self):\n"
	"        n = int(self.headers.get('Content-Length', '0'))\n"
	"        body = self.rfile.read(n).decode()\n"
	"        out = {'method': self.command, 'body': body,\n"
	"               'ct': self.headers.get('Content-Type'),\n"
	"               'auth': self.headers.get('Authorization'),\n"
	"               'expect': self.headers.get('Expect'),\n"
	"               'ua': self.headers.get('User-Agent'),\n"
	"               'empty': self.headers.get('X-Empty')}\n"
	"        self.reply(200, json.dumps(out, sort_keys=True).encode(),\n"
	"                   [('Content-Type', 'application/json')])\n"
	"    do_PUT = do_POST\n"
	"    do_PATCH = do_POST\n"
	"    do_DELETE = do_POST\n"
	"class S(http.server.ThreadingHTTPServer):\n"
	"    daemon_threads = True\n"
	"    def handle_error(self, request, client_address):\n"
	"        pass  # a client hanging up at the body cap is expected\n"
	"srv = S(('127.0.0.1', 0), H)\n"
	"if sys.argv[1] == 'tls':\n"
	"    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)\n"
	"    ctx.load_cert_chain(sys.argv[2], sys.argv[3])\n"
	"    srv.socket = ctx.wrap_socket(srv.socket, server_side=True)\n"
	"print(srv.server_address[1], flush=True)\n"
	"srv.serve_forever()\n";

static char tmpdir[64];
static char ca_path[128];
static pid_t tls_pid = -1, plain_pid = -1;
static int tls_port, plain_port;

static pid_t start_server(const char *mode, int *port)
{
	char script[128], cert[128], key[128];
	int fds[2];
	snprintf(script, sizeof(script), "%s/server.py", tmpdir);
	snprintf(cert, sizeof(cert), "%s/srv.pem", tmpdir);
	snprintf(key, sizeof(key), "%s/srv.key", tmpdir);
	if (pipe(fds) != 0)
		return -1;
	pid_t pid = fork();
	if (pid == 0) {
		/* Dies with the test, even when the test is killed. */
		prctl(PR_SET_PDEATHSIG, SIGTERM);
		dup2(fds[1], 1);
		close(fds[0]);
		close(fds[1]);
		execl("/usr/bin/python3", "python3", script, mode, cert, key, (char *)NULL);
		_exit(127);
	}
	close(fds[1]);
	char line[32];
	size_t n = 0;
	struct pollfd p = {.fd = fds[0], .events = POLLIN};
	while (n + 1 < sizeof(line) && poll(&p, 1, 15000) == 1) {
		ssize_t r = read(fds[0], line + n, 1);
		if (r != 1 || line[n] == '\n')
			break;
		n++;
	}
	line[n] = '\0';
	close(fds[0]);
	*port = (int)strtol(line, NULL, 10);
	if (pid > 0 && *port <= 0) {
		kill(pid, SIGTERM);
		waitpid(pid, NULL, 0);
		return -1;
	}
	return pid;
}

static void stop_server(pid_t *pid)
{
	if (*pid > 0) {
		kill(*pid, SIGTERM);
		waitpid(*pid, NULL, 0);
	}
	*pid = -1;
}

static int net_setup(void **state)
{
	char cmd[2048];
	snprintf(tmpdir, sizeof(tmpdir), "/tmp/p11kms-http-XXXXXX");
	if (!mkdtemp(tmpdir))
		return -1;
	snprintf(ca_path, sizeof(ca_path), "%s/ca.pem", tmpdir);
	/* A CA, and a server certificate for "localhost" only, so that
	 * https://127.0.0.1 fails host name verification. */
	snprintf(cmd, sizeof(cmd),
		 "cd '%s' && "
		 "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
		 "-keyout ca.key -out ca.pem -days 2 -subj /CN=p11kms-test-ca && "
		 "openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes "
		 "-keyout srv.key -out srv.csr -subj /CN=localhost && "
		 "printf 'subjectAltName=DNS:localhost\\nbasicConstraints=CA:FALSE\\n"
		 "extendedKeyUsage=serverAuth\\n' > ext.cnf && "
		 "openssl x509 -req -in srv.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
		 "-days 2 -extfile ext.cnf -out srv.pem",
		 tmpdir);
	/* Quiet unless it fails. */
	char full[4400];
	snprintf(full, sizeof(full), "( %s ) >'%s/openssl.log' 2>&1 || cat '%s/openssl.log' >&2",
		 cmd, tmpdir, tmpdir);
	if (system(full) != 0)
		return -1;
	char script[128];
	snprintf(script, sizeof(script), "%s/server.py", tmpdir);
	FILE *f = fopen(script, "w");
	if (!f)
		return -1;
	fputs(server_py, f);
	fclose(f);
	tls_pid = start_server("tls", &tls_port);
	plain_pid = start_server("plain", &plain_port);
	if (tls_pid < 0 || plain_pid < 0) {
		fprintf(stderr, "could not start the test servers\n");
		return -1;
	}
	return 0;
}

static int net_teardown(void **state)
{
	char cmd[128];
	stop_server(&tls_pid);
	stop_server(&plain_pid);
	/* Only our own mkdtemp folder, by its exact name. */
	if (tmpdir[0] && snprintf(cmd, sizeof(cmd), "rm -rf '%s'", tmpdir) < (int)sizeof(cmd) &&
	    system(cmd) != 0)
		fprintf(stderr, "could not remove %s\n", tmpdir);
	return 0;
}

typedef struct net {
	http_client *c;
	sleeps s;
	builder b;
	char url[256];
	http_response resp;
	provider_status st;
} net;

static net *net_new(const http_options *o)
{
	net *n = calloc(1, sizeof(*n));
	n->c = http_client_new(o);
	assert_non_null(n->c);
	http_client_set_sleep(n->c, record_sleep, &n->s);
	n->b.url = n->url;
	http_response_init(&n->resp, 0);
	return n;
}

static void net_free(net *n)
{
	http_response_free(&n->resp);
	http_client_free(n->c);
	free(n);
}

static p11k_err get(net *n, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static p11k_err get(net *n, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(n->url, sizeof(n->url), fmt, ap);
	va_end(ap);
	n->b.calls = 0;
	n->s.n = 0;
	return http_call(n->c, build, &n->b, NULL, NULL, &n->resp, &n->st);
}

static bool body_is(const http_response *r, const char *s)
{
	return r->body.len == strlen(s) && memcmp(r->body.p, s, r->body.len) == 0;
}

static long elapsed_ms(const struct timespec *t0)
{
	struct timespec t1;
	clock_gettime(CLOCK_MONOTONIC, &t1);
	return (t1.tv_sec - t0->tv_sec) * 1000 + (t1.tv_nsec - t0->tv_nsec) / 1000000;
}

static void test_tls_with_ca(void **state)
{
	http_options o = {.ca_file = ca_path, .connect_timeout_ms = 5000};
	net *n = net_new(&o);
	assert_int_equal(get(n, "https://localhost:%d/hello?q=1", tls_port), P11K_OK);
	assert_int_equal(n->resp.status, 200);
	assert_true(body_is(&n->resp, "hello"));
	assert_string_equal(n->resp.content_type, "text/plain");
	assert_string_equal(n->resp.request_id, "req-123");
	assert_string_equal(n->st.request_id, "req-123");
	assert_int_equal(n->resp.retry_after_ms, -1);
	assert_int_equal(n->b.calls, 1);
	/* A 404 is an answer, not a failure. */
	assert_int_equal(get(n, "https://localhost:%d/missing", tls_port), P11K_OK);
	assert_int_equal(n->resp.status, 404);
	net_free(n);
}

/* The whole log written while fn runs, at debug level, into buf. */
static void log_during(void (*fn)(void *), void *arg, char *buf, size_t buflen)
{
	char path[] = "/tmp/p11kms-http-log-XXXXXX";
	int fd = mkstemp(path);
	assert_true(fd >= 0);
	close(fd);
	assert_true(log_configure(LOG_DEBUG, path));
	fn(arg);
	log_configure(LOG_WARN, "stderr");
	log_apply_env();
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	size_t n = fread(buf, 1, buflen - 1, f);
	fclose(f);
	unlink(path);
	buf[n] = '\0';
}

typedef struct tls_case {
	net *n;
	const char *url;
	p11k_err got;
} tls_case;

static void tls_case_run(void *arg)
{
	tls_case *t = arg;
	t->got = get(t->n, "%s", t->url);
}

/* A certificate that cannot be verified is P11K_ERR_TLS after one
 * attempt (no backoff, nothing retried: the answer would be the same),
 * with an error line that names ca_file. */
static void expect_tls_failure(const http_options *o, const char *url, const char *why)
{
	net *n = net_new(o);
	tls_case t = {.n = n, .url = url};
	char log[8192];
	log_during(tls_case_run, &t, log, sizeof(log));
	if (t.got != P11K_ERR_TLS)
		fail_msg("%s: %s gave %d (%s)", why, url, (int)t.got, n->st.message);
	assert_int_equal(n->st.err, P11K_ERR_TLS);
	assert_int_equal(n->b.calls, 1);
	assert_int_equal(n->s.n, 0);
	assert_int_equal(n->resp.status, 0);
	assert_int_equal(n->resp.body.len, 0);
	assert_null(strstr(n->st.message, "gave up"));
	assert_true(strlen(n->st.message) > 10);
	assert_non_null(strstr(log, "certificate could not be verified"));
	assert_non_null(strstr(log, "check ca_file"));
	assert_non_null(strstr(log, "attempt 1/3"));
	assert_null(strstr(log, "attempt 2/3"));
	assert_null(strstr(log, "retrying"));
	net_free(n);
}

static void test_tls_verification(void **state)
{
	char url[128], ip_url[128];
	snprintf(url, sizeof(url), "https://localhost:%d/hello", tls_port);
	snprintf(ip_url, sizeof(ip_url), "https://127.0.0.1:%d/hello", tls_port);

	/* Without the CA: the system store does not know it. */
	http_options o = {.connect_timeout_ms = 5000};
	expect_tls_failure(&o, url, "no ca_file");

	/* With the CA but the wrong name (the certificate says localhost). */
	http_options o2 = {.ca_file = ca_path, .connect_timeout_ms = 5000};
	expect_tls_failure(&o2, ip_url, "name mismatch");

	/* A CA file that does not exist is not a silent fallback. */
	http_options o3 = {.ca_file = "/nonexistent/ca.pem", .connect_timeout_ms = 5000};
	expect_tls_failure(&o3, url, "missing ca_file");

	/* A CA file that is not a CA bundle. */
	char junk[160];
	snprintf(junk, sizeof(junk), "%s/junk.pem", tmpdir);
	FILE *f = fopen(junk, "w");
	assert_non_null(f);
	fputs("not a certificate\n", f);
	fclose(f);
	http_options o4 = {.ca_file = junk, .connect_timeout_ms = 5000};
	expect_tls_failure(&o4, url, "junk ca_file");

	/* The right CA verifies (the failures above are about trust, not
	 * about the server). */
	net *n = net_new(&o2);
	assert_int_equal(get(n, "%s", url), P11K_OK);
	net_free(n);

	/* Plain HTTP spoken to the TLS port fails too (no downgrade), and
	 * that is a transport failure, not a certificate one. */
	http_options o5 = {.allow_plain_loopback = true, .max_attempts = 1};
	n = net_new(&o5);
	p11k_err e = get(n, "http://127.0.0.1:%d/hello", tls_port);
	assert_int_not_equal(e, P11K_OK);
	assert_int_not_equal(e, P11K_ERR_TLS);
	net_free(n);
}

static int conns(net *n, int port, bool tls)
{
	p11k_err e = tls ? get(n, "https://localhost:%d/conns", port)
			 : get(n, "http://127.0.0.1:%d/conns", port);
	assert_int_equal(e, P11K_OK);
	assert_int_equal(n->resp.status, 200);
	char buf[16];
	size_t len = n->resp.body.len < 15 ? n->resp.body.len : 15;
	memcpy(buf, n->resp.body.p, len);
	buf[len] = '\0';
	return (int)strtol(buf, NULL, 10);
}

static void test_plain_loopback(void **state)
{
	/* Not allowed unless asked for, even to loopback. */
	http_options o = {.max_attempts = 3};
	net *n = net_new(&o);
	assert_int_equal(get(n, "http://127.0.0.1:%d/hello", plain_port),
			 P11K_ERR_ACCESS_DENIED);
	assert_non_null(strstr(n->st.message, "plain http"));
	assert_non_null(strstr(n->st.message, "refused"));
	assert_int_equal(n->s.n, 0);
	assert_int_equal(n->b.calls, 1);
	net_free(n);

	http_options ok = {.allow_plain_loopback = true, .connect_timeout_ms = 5000};
	n = net_new(&ok);
	assert_int_equal(get(n, "http://127.0.0.1:%d/hello", plain_port), P11K_OK);
	assert_true(body_is(&n->resp, "hello"));
	assert_int_equal(get(n, "http://localhost:%d/hello", plain_port), P11K_OK);
	assert_true(body_is(&n->resp, "hello"));
	assert_int_equal(get(n, "http://LOCALHOST:%d/hello", plain_port), P11K_OK);
	/* https is still fine on such a client. */
	net_free(n);
}

static void test_refused_without_connecting(void **state)
{
	http_options o = {.allow_plain_loopback = true, .max_attempts = 3,
			  .connect_timeout_ms = 5000, .ca_file = ca_path};
	net *n = net_new(&o);
	int before = conns(n, plain_port, false);
	/* Each one followed by the plain server's port and a suffix. */
	const char *bad[][2] = {
		{"http://192.0.2.1:", "/hello"}, /* TEST-NET-1 */
		{"http://128.0.0.1:", "/hello"},
		{"http://10.0.0.1:", "/hello"},
		{"http://example.com:", "/hello"},
		{"http://localhost.example.com:", "/hello"},
		{"http://127.0.0.1.nip.io:", "/hello"},
		{"http://[::ffff:127.0.0.1]:", "/hello"},
		{"http://[2001:db8::1]:", "/hello"},
		{"ftp://127.0.0.1:", "/hello"},
		{"gopher://127.0.0.1:", "/hello"},
		{"file:///etc/passwd?", ""},
		{"http://user:pw@127.0.0.1:", "/hello"},
		{"https://user:pw@localhost:", "/hello"},
	};
	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		struct timespec t0;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		p11k_err e = get(n, "%s%d%s", bad[i][0], plain_port, bad[i][1]);
		if (e != P11K_ERR_ACCESS_DENIED)
			fail_msg("%s%d: %s (%s)", bad[i][0], plain_port,
				 p11k_err_name(e), n->st.message);
		/* Refused up front: no retry, no sleep, no connect timeout. */
		assert_int_equal(n->b.calls, 1);
		assert_int_equal(n->s.n, 0);
		assert_true(elapsed_ms(&t0) < 1000);
		assert_true(n->st.message[0] != '\0');
	}
	/* The server saw no new connection (this one reuses the first). */
	assert_int_equal(conns(n, plain_port, false), before);

	/* Garbage is an internal error, not a connection attempt. */
	assert_int_equal(get(n, "not a url %d", 1), P11K_ERR_INTERNAL);
	assert_non_null(strstr(n->st.message, "malformed URL"));

	/* ::1 and the rest of 127/8 pass the policy (and then fail to
	 * connect: nobody listens there). */
	http_options one = {.allow_plain_loopback = true, .max_attempts = 1,
			    .connect_timeout_ms = 2000};
	net *m = net_new(&one);
	assert_int_equal(get(m, "http://[::1]:%d/hello", 1), P11K_ERR_UNREACHABLE);
	assert_int_equal(get(m, "http://127.9.8.7:%d/hello", 1), P11K_ERR_UNREACHABLE);
	net_free(m);
	net_free(n);
}

static void test_network_body_cap(void **state)
{
	http_options o = {.ca_file = ca_path, .max_body = 1000,
			  .connect_timeout_ms = 5000};
	net *n = net_new(&o);
	/* Announced by Content-Length. */
	assert_int_equal(get(n, "https://localhost:%d/big/5000", tls_port),
			 P11K_ERR_BAD_REPLY);
	assert_non_null(strstr(n->st.message, "response larger than 1000 bytes"));
	assert_int_equal(n->b.calls, 1);
	/* Not announced: read until close, cut at the cap. */
	assert_int_equal(get(n, "https://localhost:%d/stream/100000", tls_port),
			 P11K_ERR_BAD_REPLY);
	assert_non_null(strstr(n->st.message, "response larger than 1000 bytes"));
	assert_true(n->resp.body.len <= 1000);
	/* Exactly the cap is fine, both ways. */
	assert_int_equal(get(n, "https://localhost:%d/big/1000", tls_port), P11K_OK);
	assert_int_equal(n->resp.body.len, 1000);
	assert_int_equal(get(n, "https://localhost:%d/stream/1000", tls_port), P11K_OK);
	assert_int_equal(n->resp.body.len, 1000);
	net_free(n);
}

static void test_connection_reuse(void **state)
{
	http_options o = {.ca_file = ca_path, .connect_timeout_ms = 5000};
	net *n = net_new(&o);
	int first = conns(n, tls_port, true);
	assert_int_equal(get(n, "https://localhost:%d/hello", tls_port), P11K_OK);
	assert_int_equal(get(n, "https://localhost:%d/hello", tls_port), P11K_OK);
	/* Two calls and a count: all on the first connection. */
	assert_int_equal(conns(n, tls_port, true), first);
	net_free(n);

	/* Plain http likewise. */
	http_options p = {.allow_plain_loopback = true};
	n = net_new(&p);
	first = conns(n, plain_port, false);
	assert_int_equal(get(n, "http://127.0.0.1:%d/hello", plain_port), P11K_OK);
	assert_int_equal(get(n, "http://127.0.0.1:%d/hello", plain_port), P11K_OK);
	assert_int_equal(conns(n, plain_port, false), first);
	net_free(n);
}

static void test_request_sent(void **state)
{
	http_options o = {.ca_file = ca_path, .connect_timeout_ms = 5000};
	net *n = net_new(&o);
	const char *methods[] = {"POST", "PUT", "PATCH", "DELETE"};
	for (size_t i = 0; i < 4; i++) {
		n->b.method = methods[i];
		n->b.body = "{\"a\":1}";
		n->b.auth = "Bearer tok";
		assert_int_equal(get(n, "https://localhost:%d/echo", tls_port), P11K_OK);
		assert_int_equal(n->resp.status, 200);
		char want[256];
		snprintf(want, sizeof(want),
			 "{\"auth\": \"Bearer tok\", \"body\": \"{\\\"a\\\":1}\", "
			 "\"ct\": \"application/json\", \"empty\": null, \"expect\": null, "
			 "\"method\": \"%s\", \"ua\": \"p11kms\"}", methods[i]);
		if (!body_is(&n->resp, want))
			fail_msg("%s: got %.*s", methods[i], (int)n->resp.body.len,
				 (const char *)n->resp.body.p);
	}
	/* POST with no body: Content-Length 0, no curl Content-Type. */
	n->b.method = "POST";
	n->b.body = NULL;
	n->b.auth = NULL;
	assert_int_equal(get(n, "https://localhost:%d/echo", tls_port), P11K_OK);
	assert_true(body_is(&n->resp,
			    "{\"auth\": null, \"body\": \"\", \"ct\": null, \"empty\": null, "
			    "\"expect\": null, \"method\": \"POST\", \"ua\": \"p11kms\"}"));
	net_free(n);
}

static void test_response_headers(void **state)
{
	http_options o = {.ca_file = ca_path, .connect_timeout_ms = 5000,
			  .max_attempts = 2};
	net *n = net_new(&o);
	assert_int_equal(get(n, "https://localhost:%d/throttle", tls_port),
			 P11K_ERR_THROTTLED);
	assert_int_equal(n->resp.status, 429);
	assert_int_equal(n->s.n, 1);
	assert_int_equal(n->s.ms[0], 2000);
	assert_int_equal(n->resp.retry_after_ms, 2000);
	assert_string_equal(n->resp.request_id, "ms-req-9");
	assert_string_equal(n->resp.content_type, "application/json; charset=utf-8");
	assert_string_equal(n->resp.www_authenticate,
			    "Bearer authorization=\"https://login.example/t\", "
			    "resource=\"https://vault.azure.net\"");
	assert_int_equal(n->st.http_status, 429);
	assert_string_equal(n->st.request_id, "ms-req-9");

	/* Retry-After as an HTTP-date, about 3 s ahead. */
	assert_int_equal(get(n, "https://localhost:%d/date", tls_port),
			 P11K_ERR_UNREACHABLE);
	assert_int_equal(n->s.n, 1);
	assert_in_range(n->s.ms[0], 1000, 4000);

	/* Azure's milliseconds win over AWS's; AWS's alone is used. */
	assert_int_equal(get(n, "https://localhost:%d/ms", tls_port),
			 P11K_ERR_UNREACHABLE);
	assert_int_equal(n->s.ms[0], 1234);
	assert_int_equal(get(n, "https://localhost:%d/amz", tls_port),
			 P11K_ERR_THROTTLED);
	assert_int_equal(n->s.ms[0], 750);
	net_free(n);
}

static void test_unreachable_retried(void **state)
{
	/* Nobody listens on port 1: connection refused, retried, given up. */
	http_options o = {.ca_file = ca_path, .connect_timeout_ms = 2000};
	net *n = net_new(&o);
	assert_int_equal(get(n, "https://localhost:%d/hello", 1), P11K_ERR_UNREACHABLE);
	assert_int_equal(n->b.calls, 3);
	assert_int_equal(n->s.n, 2);
	assert_non_null(strstr(n->st.message, "gave up after 3 attempts"));
	net_free(n);
}

typedef struct worker {
	http_client *c;
	int port;
	int ok;
} worker;

static void *worker_main(void *arg)
{
	worker *w = arg;
	builder b = {.method = "GET"};
	char url[128];
	snprintf(url, sizeof(url), "https://localhost:%d/hello", w->port);
	b.url = url;
	for (int i = 0; i < 25; i++) {
		http_response resp;
		provider_status st;
		http_response_init(&resp, 0);
		if (http_call(w->c, build, &b, NULL, NULL, &resp, &st) == P11K_OK &&
		    resp.status == 200 && body_is(&resp, "hello"))
			w->ok++;
		http_response_free(&resp);
	}
	return NULL;
}

/* One client, many threads: the handle pool and the share's locks. */
static void test_concurrent_calls(void **state)
{
	http_options o = {.ca_file = ca_path, .connect_timeout_ms = 5000};
	http_client *c = http_client_new(&o);
	sleeps s = {0};
	http_client_set_sleep(c, record_sleep, &s);
	worker w[8];
	pthread_t t[8];
	for (int i = 0; i < 8; i++) {
		w[i] = (worker){.c = c, .port = tls_port};
		assert_int_equal(pthread_create(&t[i], NULL, worker_main, &w[i]), 0);
	}
	for (int i = 0; i < 8; i++) {
		pthread_join(t[i], NULL);
		assert_int_equal(w[i].ok, 25);
	}
	http_client_free(c);
}

int main(void)
{
	/* Quiet by default; P11KMS_LOG_LEVEL=debug shows each attempt. */
	log_configure(LOG_WARN, "stderr");
	log_apply_env();
	const struct CMUnitTest offline[] = {
		cmocka_unit_test(test_retry_503_then_ok),
		cmocka_unit_test(test_429_honours_retry_after),
		cmocka_unit_test(test_give_up),
		cmocka_unit_test(test_400_not_retried_unless_classified),
		cmocka_unit_test(test_body_cap),
		cmocka_unit_test(test_rebuilt_per_attempt),
		cmocka_unit_test(test_jitter_bounds),
		cmocka_unit_test(test_headers),
		cmocka_unit_test(test_log_has_no_secrets),
	};
	const struct CMUnitTest network[] = {
		cmocka_unit_test(test_tls_with_ca),
		cmocka_unit_test(test_tls_verification),
		cmocka_unit_test(test_plain_loopback),
		cmocka_unit_test(test_refused_without_connecting),
		cmocka_unit_test(test_network_body_cap),
		cmocka_unit_test(test_connection_reuse),
		cmocka_unit_test(test_request_sent),
		cmocka_unit_test(test_response_headers),
		cmocka_unit_test(test_unreachable_retried),
		cmocka_unit_test(test_concurrent_calls),
	};
	int failed = cmocka_run_group_tests_name("http offline", offline, NULL, NULL);
	failed += cmocka_run_group_tests_name("http network", network, net_setup,
					      net_teardown);
	return failed;
}
