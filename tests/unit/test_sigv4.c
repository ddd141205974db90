/* SPDX-License-Identifier: Apache-2.0 */
/*
 * providers/aws/sigv4.c: every case of botocore's copy of the official
 * SigV4 test suite (tests/vectors/sigv4/botocore-aws4_testsuite, parsed
 * from the raw .req files; canonical request, string to sign and
 * Authorization compared exactly), the KMS request of PROTOCOLS.md 1.2,
 * and the signer's failure paths.
 */
#include <dirent.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <cmocka.h>

#include "common/crypto.h"
#include "common/secmem.h"
#include "providers/aws/sigv4.h"

/* The suite's parameters (its README; botocore test_sigv4.py). */
#define SUITE_AKID "AKIDEXAMPLE"
#define SUITE_SECRET "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY"
#define SUITE_TIME 1440938160ull /* 20150830T123600Z */
#define SUITE_SESSION_TOKEN                                                    \
	"6e86291e8372ff2a2260956d9b8aae1d763fbf315fa00fa31553b73ebf194267"
#define SUITE_EXPECTED_CASES 34
#define MAX_FILE (64 * 1024)
#define MAX_HDRS 32

static void make_creds(aws_creds *c, const char *akid, const char *secret,
		       const char *token)
{
	memset(c, 0, sizeof(*c));
	snprintf(c->access_key, sizeof(c->access_key), "%s", akid);
	c->secret_key = sec_dup(secret, strlen(secret) + 1);
	assert_non_null(c->secret_key);
	if (token) {
		c->session_token = sec_dup(token, strlen(token) + 1);
		assert_non_null(c->session_token);
	}
}

/* Whole file, NUL-terminated; NULL when missing. */
static char *slurp(const char *path, size_t *lenp)
{
	FILE *f = fopen(path, "rb");
	if (!f)
		return NULL;
	char *buf = malloc(MAX_FILE + 1);
	assert_non_null(buf);
	size_t n = fread(buf, 1, MAX_FILE, f);
	assert_true(feof(f));
	fclose(f);
	buf[n] = '\0';
	if (lenp)
		*lenp = n;
	return buf;
}

static const char *vectors_root(char *buf, size_t len)
{
	const char *src = getenv("P11KMS_SRC");
	assert_non_null(src);
	int n = snprintf(buf, len, "%s/tests/vectors/sigv4/botocore-aws4_testsuite", src);
	assert_true(n > 0 && (size_t)n < len);
	return buf;
}

/* A raw HTTP request as the suite writes it: request line (the target
 * may hold spaces: normalize-path/get-space), header lines with
 * obs-fold continuations kept as they are (the signer folds them), an
 * empty line, then the body. */
typedef struct parsed_req {
	char *text; /* owns every string below */
	char *method, *path, *query;
	sigv4_header hdrs[MAX_HDRS];
	size_t nhdrs;
	const uint8_t *body;
	size_t bodylen;
	const char *token; /* X-Amz-Security-Token given in the file */
} parsed_req;

static void parse_req(char *text, size_t len, parsed_req *r)
{
	memset(r, 0, sizeof(*r));
	r->text = text;
	char *end = text + len;
	char *line_end = strchr(text, '\n');
	if (line_end)
		*line_end = '\0';
	char *sp1 = strchr(text, ' ');
	char *sp2 = strrchr(text, ' ');
	assert_non_null(sp1);
	assert_true(sp2 > sp1);
	*sp1 = '\0';
	*sp2 = '\0';
	r->method = text;
	r->path = sp1 + 1;
	char *q = strchr(r->path, '?');
	if (q) {
		*q = '\0';
		r->query = q + 1;
	}
	char *p = line_end ? line_end + 1 : end;
	while (p < end) {
		char *nl = memchr(p, '\n', (size_t)(end - p));
		char *le = nl ? nl : end;
		if (le > p && le[-1] == '\r')
			le[-1] = '\0';
		*le = '\0';
		if (*p == '\0') { /* the empty line: the body follows */
			p = le + 1;
			break;
		}
		if ((*p == ' ' || *p == '\t') && r->nhdrs) {
			/* Continuation: rejoin with the line break it had. */
			p[-1] = '\n';
		} else {
			char *colon = strchr(p, ':');
			assert_non_null(colon);
			assert_true(r->nhdrs < MAX_HDRS);
			*colon = '\0';
			r->hdrs[r->nhdrs].name = p;
			r->hdrs[r->nhdrs].value = colon + 1;
			if (strcasecmp(p, "X-Amz-Security-Token") == 0)
				r->token = colon + 1;
			r->nhdrs++;
		}
		p = nl ? nl + 1 : end;
	}
	if (p < end) {
		r->body = (const uint8_t *)p;
		r->bodylen = (size_t)(end - p);
	}
}

static char *case_file(const char *dir, const char *name, const char *ext)
{
	char path[1024];
	int n = snprintf(path, sizeof(path), "%s/%s.%s", dir, name, ext);
	assert_true(n > 0 && (size_t)n < sizeof(path));
	return slurp(path, NULL);
}

static void expect_text(const char *what, const char *dir, const char *got,
			const char *want)
{
	if (strcmp(got, want) != 0) {
		print_error("%s: %s differs\n--- want\n%s\n--- got\n%s\n", dir,
			    what, want, got);
		fail();
	}
}

static int run_case(const char *dir, const char *name)
{
	size_t len;
	char path[1024];
	int n = snprintf(path, sizeof(path), "%s/%s.req", dir, name);
	assert_true(n > 0 && (size_t)n < sizeof(path));
	char *text = slurp(path, &len);
	assert_non_null(text);
	char *creq = case_file(dir, name, "creq");
	char *sts = case_file(dir, name, "sts");
	char *authz = case_file(dir, name, "authz");
	assert_non_null(creq);
	assert_non_null(sts);
	assert_non_null(authz);

	parsed_req r;
	parse_req(text, len, &r);
	/* Session tokens: the suite's one case that adds it while signing
	 * (botocore's SESSION_TOKEN), or the one whose request already
	 * carries it (post-sts-header-before). post-sts-header-after adds
	 * the token after signing, so it is signed without one. */
	const char *token = r.token;
	if (strcmp(name, "get-vanilla-with-session-token") == 0)
		token = SUITE_SESSION_TOKEN;
	aws_creds c;
	make_creds(&c, SUITE_AKID, SUITE_SECRET, token);

	sigv4_request req = {
		.method = r.method,
		.path = r.path,
		.query = r.query,
		.headers = r.hdrs,
		.nheaders = r.nhdrs,
		.payload = r.body,
		.payloadlen = r.bodylen,
		.region = "us-east-1",
		.service = "service",
		.now = SUITE_TIME,
	};
	sigv4_result res;
	assert_int_equal(sigv4_sign(&req, &c, &res), P11K_OK);
	assert_string_equal(res.amz_date, "20150830T123600Z");
	expect_text("canonical request", dir, res.canonical_request, creq);
	expect_text("string to sign", dir, res.string_to_sign, sts);
	expect_text("authorization", dir, res.authorization, authz);
	sigv4_result_free(&res);
	aws_creds_clear(&c);
	free(text);
	free(creq);
	free(sts);
	free(authz);
	return 1;
}

/* A case is a folder holding <folder-name>.req; groups (normalize-path,
 * post-sts-token) are walked recursively. */
static int walk(const char *dir, int depth)
{
	int cases = 0;
	assert_true(depth < 4);
	DIR *d = opendir(dir);
	assert_non_null(d);
	const char *base = strrchr(dir, '/');
	base = base ? base + 1 : dir;
	char req[1024];
	int n = snprintf(req, sizeof(req), "%s/%s.req", dir, base);
	assert_true(n > 0 && (size_t)n < sizeof(req));
	struct stat st;
	if (stat(req, &st) == 0)
		cases += run_case(dir, base);
	struct dirent *e;
	while ((e = readdir(d)) != NULL) {
		if (e->d_name[0] == '.')
			continue;
		char sub[1024];
		n = snprintf(sub, sizeof(sub), "%s/%s", dir, e->d_name);
		assert_true(n > 0 && (size_t)n < sizeof(sub));
		if (stat(sub, &st) == 0 && S_ISDIR(st.st_mode))
			cases += walk(sub, depth + 1);
	}
	closedir(d);
	return cases;
}

static void test_suite(void **state)
{
	char root[1024];
	int cases = walk(vectors_root(root, sizeof(root)), 0);
	print_message("sigv4 test suite: %d/%d cases passed\n", cases,
		      SUITE_EXPECTED_CASES);
	/* All of them, botocore's four skips included (get-space and the
	 * duplicate-query-key cases). */
	assert_int_equal(cases, SUITE_EXPECTED_CASES);
}

/* PROTOCOLS.md 1.2: a real KMS Encrypt, verified against botocore. */
static const char kms_body[] =
	"{\"KeyId\":\"alias/test-key\",\"Plaintext\":\"aGVsbG8gd29ybGQ=\","
	"\"EncryptionContext\":{\"purpose\":\"demo\"}}";

static void kms_request(sigv4_request *req, sigv4_header *h)
{
	h[0] = (sigv4_header){"Host", "kms.us-east-1.amazonaws.com"};
	h[1] = (sigv4_header){"Content-Type", "application/x-amz-json-1.1"};
	h[2] = (sigv4_header){"X-Amz-Target", "TrentService.Encrypt"};
	*req = (sigv4_request){
		.method = "POST",
		.path = "/",
		.headers = h,
		.nheaders = 3,
		.payload = (const uint8_t *)kms_body,
		.payloadlen = sizeof(kms_body) - 1,
		.region = "us-east-1",
		.service = "kms",
		.now = 1704067200, /* 20240101T000000Z */
	};
}

static void test_kms_vector(void **state)
{
	sigv4_header h[4];
	sigv4_request req;
	kms_request(&req, h);
	assert_int_equal(req.payloadlen, 96);
	aws_creds c;
	make_creds(&c, SUITE_AKID, SUITE_SECRET, NULL);
	sigv4_result res;
	assert_int_equal(sigv4_sign(&req, &c, &res), P11K_OK);
	assert_string_equal(res.amz_date, "20240101T000000Z");
	assert_string_equal(res.canonical_request,
			    "POST\n/\n\n"
			    "content-type:application/x-amz-json-1.1\n"
			    "host:kms.us-east-1.amazonaws.com\n"
			    "x-amz-date:20240101T000000Z\n"
			    "x-amz-target:TrentService.Encrypt\n\n"
			    "content-type;host;x-amz-date;x-amz-target\n"
			    "7a3f303d1742197e1ea161d7332768853c08e30bc0fa50e10363bb88f54dcee9");
	assert_string_equal(res.string_to_sign,
			    "AWS4-HMAC-SHA256\n20240101T000000Z\n"
			    "20240101/us-east-1/kms/aws4_request\n"
			    "5930948f36fc847e1e145730f9b34ef2976cca96846a588c890afa34576b85bf");
	assert_string_equal(res.authorization,
			    "AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/20240101/us-east-1/kms/"
			    "aws4_request, SignedHeaders=content-type;host;x-amz-date;"
			    "x-amz-target, Signature=5b3c62f11614641f76d460a976d8c8abc2bb"
			    "1109694cab4ae7c9b69da03d27bc");
	sigv4_result_free(&res);

	/* A stale X-Amz-Date (a retried request) or a caller's Authorization
	 * is replaced by the signer's own, never signed twice. */
	h[3] = (sigv4_header){"x-amz-date", "19990101T000000Z"};
	req.nheaders = 4;
	assert_int_equal(sigv4_sign(&req, &c, &res), P11K_OK);
	assert_non_null(strstr(res.authorization, "Signature=5b3c62f1"));
	sigv4_result_free(&res);
	h[3] = (sigv4_header){"Authorization", "AWS4-HMAC-SHA256 old"};
	assert_int_equal(sigv4_sign(&req, &c, &res), P11K_OK);
	assert_non_null(strstr(res.authorization, "Signature=5b3c62f1"));
	sigv4_result_free(&res);
	aws_creds_clear(&c);
}

/* With a session token the token is signed even when the caller did not
 * add the header (PROTOCOLS.md 1.7 step 1). */
static void test_session_token_signed(void **state)
{
	sigv4_header h[4];
	sigv4_request req;
	kms_request(&req, h);
	aws_creds c;
	make_creds(&c, SUITE_AKID, SUITE_SECRET, "tok en");
	sigv4_result res;
	assert_int_equal(sigv4_sign(&req, &c, &res), P11K_OK);
	assert_non_null(strstr(res.canonical_request, "\nx-amz-security-token:tok en\n"));
	assert_non_null(strstr(res.authorization,
			       "SignedHeaders=content-type;host;x-amz-date;"
			       "x-amz-security-token;x-amz-target,"));
	sigv4_result_free(&res);
	aws_creds_clear(&c);
}

static void test_errors(void **state)
{
	sigv4_header h[4];
	sigv4_request req;
	sigv4_result res;
	aws_creds c;
	make_creds(&c, SUITE_AKID, SUITE_SECRET, NULL);

	/* No Host header. */
	kms_request(&req, h);
	req.headers = h + 1;
	req.nheaders = 2;
	assert_int_equal(sigv4_sign(&req, &c, &res), P11K_ERR_INTERNAL);
	assert_null(res.canonical_request);
	assert_null(res.string_to_sign);
	/* Header names that would forge canonical lines. */
	kms_request(&req, h);
	h[3] = (sigv4_header){"x-evil:\nhost", "x"};
	req.nheaders = 4;
	assert_int_equal(sigv4_sign(&req, &c, &res), P11K_ERR_INTERNAL);
	h[3] = (sigv4_header){"", "x"};
	assert_int_equal(sigv4_sign(&req, &c, &res), P11K_ERR_INTERNAL);
	h[3] = (sigv4_header){"x-null", NULL};
	assert_int_equal(sigv4_sign(&req, &c, &res), P11K_ERR_INTERNAL);
	/* Bad scope parts and methods. */
	kms_request(&req, h);
	req.region = "us-east-1/x";
	assert_int_equal(sigv4_sign(&req, &c, &res), P11K_ERR_INTERNAL);
	req.region = "";
	assert_int_equal(sigv4_sign(&req, &c, &res), P11K_ERR_INTERNAL);
	kms_request(&req, h);
	req.service = NULL;
	assert_int_equal(sigv4_sign(&req, &c, &res), P11K_ERR_INTERNAL);
	kms_request(&req, h);
	req.method = "post";
	assert_int_equal(sigv4_sign(&req, &c, &res), P11K_ERR_INTERNAL);
	/* A payload length with no payload. */
	kms_request(&req, h);
	req.payload = NULL;
	assert_int_equal(sigv4_sign(&req, &c, &res), P11K_ERR_INTERNAL);
	/* Too many headers. */
	kms_request(&req, h);
	req.nheaders = 1000;
	assert_int_equal(sigv4_sign(&req, &c, &res), P11K_ERR_INTERNAL);
	/* Too many query parameters: bounded, refused. */
	kms_request(&req, h);
	char *q = malloc(200 * 4 + 1);
	assert_non_null(q);
	for (int i = 0; i < 200; i++)
		memcpy(q + 4 * i, "a=b&", 4);
	q[200 * 4] = '\0';
	req.query = q;
	assert_int_equal(sigv4_sign(&req, &c, &res), P11K_ERR_INTERNAL);
	free(q);
	/* Signed header names so many and long that the Authorization header
	 * would not fit: refused, not truncated. */
	kms_request(&req, h);
	sigv4_header many[10];
	char names[9][120];
	many[0] = h[0];
	for (int i = 0; i < 9; i++) {
		memset(names[i], 'a' + i, sizeof(names[i]) - 1);
		names[i][sizeof(names[i]) - 1] = '\0';
		many[i + 1] = (sigv4_header){names[i], "v"};
	}
	req.headers = many;
	req.nheaders = 10;
	assert_int_equal(sigv4_sign(&req, &c, &res), P11K_ERR_INTERNAL);
	assert_null(res.canonical_request);
	req.nheaders = 5; /* the same request with fewer names fits */
	assert_int_equal(sigv4_sign(&req, &c, &res), P11K_OK);
	sigv4_result_free(&res);
	/* No secret. */
	kms_request(&req, h);
	aws_creds_clear(&c);
	assert_int_equal(sigv4_sign(&req, &c, &res), P11K_ERR_INTERNAL);
	assert_int_equal(sigv4_sign(NULL, &c, &res), P11K_ERR_INTERNAL);
	assert_int_equal(sigv4_sign(&req, &c, NULL), P11K_ERR_INTERNAL);
}

/* Paths and queries beyond the suite: the normalisation is bounded and
 * encodes reserved characters once. */
static void test_uri_and_query(void **state)
{
	static const struct {
		const char *path, *query, *curi, *cquery;
	} cases[] = {
		{"", NULL, "/", ""},
		{"/a/b/../../..", "", "/", ""},
		{"/a b/%41", "x=1+2&&y", "/a%20b/%2541", "x=1%2B2&y="},
		{"/./a/./", "b=%zz&a=%41", "/a/", "a=A&b=%25zz"},
		{"/x//y", "z=%e1%88%b4", "/x/y", "z=%E1%88%B4"},
	};
	aws_creds c;
	make_creds(&c, SUITE_AKID, SUITE_SECRET, NULL);
	sigv4_header h[1] = {{"Host", "example.amazonaws.com"}};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		sigv4_request req = {.method = "GET", .path = cases[i].path,
				     .query = cases[i].query, .headers = h,
				     .nheaders = 1, .region = "us-east-1",
				     .service = "service", .now = SUITE_TIME};
		sigv4_result res;
		char want[256];
		snprintf(want, sizeof(want), "GET\n%s\n%s\nhost:", cases[i].curi,
			 cases[i].cquery);
		assert_int_equal(sigv4_sign(&req, &c, &res), P11K_OK);
		if (strncmp(res.canonical_request, want, strlen(want)) != 0) {
			print_error("case %zu: got %s\n", i, res.canonical_request);
			fail();
		}
		sigv4_result_free(&res);
	}
	/* More segments than the bound. */
	char *deep = malloc(2 * 300 + 1);
	assert_non_null(deep);
	for (int i = 0; i < 300; i++)
		memcpy(deep + 2 * i, "/a", 2);
	deep[600] = '\0';
	sigv4_request req = {.method = "GET", .path = deep, .headers = h,
			     .nheaders = 1, .region = "us-east-1",
			     .service = "service", .now = SUITE_TIME};
	sigv4_result res;
	assert_int_equal(sigv4_sign(&req, &c, &res), P11K_ERR_INTERNAL);
	free(deep);
	aws_creds_clear(&c);
}

static void test_creds_copy(void **state)
{
	aws_creds a, b;
	make_creds(&a, "AKID", "secret", "token");
	a.expires_at = 42;
	assert_true(aws_creds_copy(&b, &a));
	assert_string_equal(b.access_key, "AKID");
	assert_string_equal(b.secret_key, "secret");
	assert_string_equal(b.session_token, "token");
	assert_ptr_not_equal(b.secret_key, a.secret_key);
	assert_int_equal(b.expires_at, 42);
	aws_creds_clear(&b);
	assert_null(b.secret_key);
	assert_null(b.session_token);
	assert_int_equal(b.access_key[0], 0);
	aws_creds_clear(&a);
	assert_false(aws_creds_copy(&b, &a)); /* nothing to copy */
	aws_creds_clear(NULL);
	assert_int_equal(sec_in_use(), 0);
}

int main(void)
{
	if (!crypto_init())
		return 1;
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_suite),
		cmocka_unit_test(test_kms_vector),
		cmocka_unit_test(test_session_token_signed),
		cmocka_unit_test(test_errors),
		cmocka_unit_test(test_uri_and_query),
		cmocka_unit_test(test_creds_copy),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	crypto_fini();
	return rc;
}
