/* SPDX-License-Identifier: Apache-2.0 */
/*
 * providers/aws/creds_*.c: each credential source alone (fake environment,
 * fake transport, temporary files), the chain order, the cache's refresh
 * with a fake clock, its lock never held across a fetch, malformed
 * replies, the INI parser and the STS XML reader, no secret in the log at
 * trace level, and web identity / container / IMDSv2 against the real
 * emulator over HTTPS (tests/kms-emulator), whose credentials then sign a
 * KMS call it verifies.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "common/crypto.h"
#include "common/log.h"
#include "common/secmem.h"
#include "providers/aws/creds.h"
#include "providers/common/credcache.h"

/* Distinctive secrets: the log test greps for every one of them. */
#define ENV_SECRET "envSECRETkey/0000+AAAAbbbbCCCCddddEEEEffff"
#define ENV_TOKEN "envSESSIONtoken//1111+zzzzYYYYxxxxWWWW"
#define FILE_SECRET "fileSECRETkey/2222+AAAAbbbbCCCCddddEEEEff"
#define FILE_TOKEN "fileSESSIONtoken//3333+zzzzYYYYxxxx"
#define STS_SECRET "stsSECRETkey/4444+AAAAbbbbCCCCddddEEEEffff"
#define STS_TOKEN "stsSESSIONtoken//5555+zzzzYYYYxxxxWWWW"
#define WEB_TOKEN "eyJhbGciOiJSUzI1NiJ9.webIDENTITYtoken6666.sig-_7777"
#define ECS_SECRET "ecsSECRETkey/8888+AAAAbbbbCCCCddddEEEEffff"
#define ECS_TOKEN "ecsSESSIONtoken//9999+zzzzYYYYxxxx"
#define ECS_AUTH "ecsAUTHORIZATIONtoken-abab"
#define IMDS_SECRET "imdsSECRETkey/aaaa+AAAAbbbbCCCCddddEEEEff"
#define IMDS_TOKEN "imdsSESSIONtoken//bbbb+zzzzYYYYxxxx"
#define IMDS_API_TOKEN "imdsAPItoken-cccc=="

#define T0 1767225600ull /* 2026-01-01T00:00:00Z */

/* --- fake environment --------------------------------------------------- */

typedef struct fake_env {
	const char *kv[32][2];
	size_t n;
} fake_env;

static const char *fenv_get(void *arg, const char *name)
{
	fake_env *e = arg;
	for (size_t i = 0; i < e->n; i++)
		if (strcmp(e->kv[i][0], name) == 0)
			return e->kv[i][1];
	return NULL;
}

static void fenv_set(fake_env *e, const char *name, const char *value)
{
	for (size_t i = 0; i < e->n; i++)
		if (strcmp(e->kv[i][0], name) == 0) {
			e->kv[i][1] = value;
			return;
		}
	assert_true(e->n < ARRAY_SIZE(e->kv));
	e->kv[e->n][0] = name;
	e->kv[e->n][1] = value;
	e->n++;
}

/* --- fake transport ------------------------------------------------------ */

typedef struct fake_resp {
	const char *method;
	const char *url; /* exact */
	long status;     /* 0: transport failure */
	const char *body;
} fake_resp;

#define MAX_CALLS 16

typedef struct fake_net {
	fake_resp script[8];
	size_t n, next;
	size_t calls;
	char method[MAX_CALLS][8];
	char url[MAX_CALLS][512];
	char hdrs[MAX_CALLS][2048]; /* "name: value\n" each */
	char body[MAX_CALLS][2048];
	bool lax; /* do not check the URL and method */
	/* Run inside the fetch (proves the cache lock is not held). */
	void (*during)(void *arg);
	void *during_arg;
} fake_net;

static void fnet_add(fake_net *f, const char *method, const char *url,
		     long status, const char *body)
{
	assert_true(f->n < ARRAY_SIZE(f->script));
	f->script[f->n++] = (fake_resp){method, url, status, body};
}

static void fnet_reset(fake_net *f)
{
	memset(f, 0, sizeof(*f));
}

static p11k_err fake_transport(void *arg, const http_request *req,
			       http_response *resp, provider_status *st)
{
	fake_net *f = arg;
	size_t k = f->calls < MAX_CALLS ? f->calls : MAX_CALLS - 1;
	f->calls++;
	snprintf(f->method[k], sizeof(f->method[k]), "%s", req->method);
	snprintf(f->url[k], sizeof(f->url[k]), "%s", req->url);
	f->hdrs[k][0] = '\0';
	for (size_t i = 0; i < req->nheaders; i++) {
		size_t l = strlen(f->hdrs[k]);
		snprintf(f->hdrs[k] + l, sizeof(f->hdrs[k]) - l, "%s: %s\n",
			 req->headers[i].name, req->headers[i].value);
	}
	size_t bl = req->bodylen < sizeof(f->body[k]) - 1 ? req->bodylen
							   : sizeof(f->body[k]) - 1;
	memcpy(f->body[k], req->body ? (const char *)req->body : "", bl);
	f->body[k][bl] = '\0';
	if (f->during)
		f->during(f->during_arg);
	if (f->next >= f->n) {
		snprintf(st->message, sizeof(st->message), "fake: nothing scripted");
		return P11K_ERR_UNREACHABLE;
	}
	const fake_resp *r = &f->script[f->next++];
	if (!f->lax) {
		if (strcmp(r->method, req->method) != 0 || strcmp(r->url, req->url) != 0) {
			print_error("fake: expected %s %s, got %s %s\n", r->method,
				    r->url, req->method, req->url);
			fail();
		}
	}
	if (r->status == 0) {
		snprintf(st->message, sizeof(st->message), "fake: connection refused");
		return P11K_ERR_UNREACHABLE;
	}
	resp->status = r->status;
	if (r->body && !dbuf_add(&resp->body, r->body, strlen(r->body)))
		return P11K_ERR_BAD_REPLY;
	return P11K_OK;
}

static void no_sleep(void *arg, long ms)
{
}

/* --- fixtures ------------------------------------------------------------ */

static uint64_t fake_now = T0;

static uint64_t fake_clock(void *arg)
{
	return fake_now;
}

typedef struct fx {
	fake_env env;
	fake_net net;
	http_client *http;
	char dir[128];
} fx;

static void write_file(const char *dir, const char *name, const char *text,
		       char *path, size_t pathlen)
{
	int n = snprintf(path, pathlen, "%s/%s", dir, name);
	assert_true(n > 0 && (size_t)n < pathlen);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(fputs(text, f) >= 0, 1);
	assert_int_equal(fclose(f), 0);
}

static void rm_tree(const char *dir)
{
	char cmd[300];
	/* Only our own mkdtemp folder, by its exact name. */
	if (dir[0] && snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir) < (int)sizeof(cmd))
		assert_int_equal(system(cmd), 0);
}

static int fx_setup(void **state)
{
	fx *f = calloc(1, sizeof(*f));
	assert_non_null(f);
	snprintf(f->dir, sizeof(f->dir), "/tmp/p11kms-creds-XXXXXX");
	assert_non_null(mkdtemp(f->dir));
	http_options o = {.max_attempts = 2};
	f->http = http_client_new(&o);
	assert_non_null(f->http);
	http_client_set_transport(f->http, fake_transport, &f->net);
	http_client_set_sleep(f->http, no_sleep, NULL);
	/* A HOME with no ~/.aws, so the developer's own files never leak
	 * into a test. */
	fenv_set(&f->env, "HOME", f->dir);
	fake_now = T0;
	*state = f;
	return 0;
}

static int fx_teardown(void **state)
{
	fx *f = *state;
	clock_set_fake(NULL, NULL);
	http_client_free(f->http);
	rm_tree(f->dir);
	free(f);
	return 0;
}

static aws_creds_provider *chain(fx *f, const char *profile, const char *sts)
{
	aws_chain_options o = {.profile = profile, .region = "eu-west-1",
			       .sts_endpoint = sts, .http = f->http,
			       .getenv_fn = fenv_get, .getenv_arg = &f->env};
	aws_creds_provider *p = aws_creds_chain_new(&o);
	assert_non_null(p);
	clock_set_fake(fake_clock, NULL);
	return p;
}

static void iso(uint64_t t, char *out, size_t len)
{
	time_t tt = (time_t)t;
	struct tm tm;
	assert_non_null(gmtime_r(&tt, &tm));
	assert_int_equal(strftime(out, len, "%Y-%m-%dT%H:%M:%SZ", &tm), 20);
}

/* Fetch once and check what came back. */
static void expect_creds(aws_creds_provider *p, const char *src, const char *akid,
			 const char *secret, const char *token, uint64_t exp)
{
	aws_creds c;
	provider_status st = {0};
	p11k_err rc = aws_creds_get(p, &c, &st);
	if (rc != P11K_OK)
		print_error("aws_creds_get: %s: %s\n", p11k_err_name(rc), st.message);
	assert_int_equal(rc, P11K_OK);
	assert_string_equal(aws_creds_source_name(p), src);
	assert_string_equal(c.access_key, akid);
	assert_string_equal(c.secret_key, secret);
	if (token)
		assert_string_equal(c.session_token, token);
	else
		assert_null(c.session_token);
	assert_int_equal(c.expires_at, exp);
	aws_creds_clear(&c);
}

static p11k_err get_err(aws_creds_provider *p, provider_status *st)
{
	aws_creds c;
	memset(st, 0, sizeof(*st));
	p11k_err rc = aws_creds_get(p, &c, st);
	if (rc == P11K_OK)
		aws_creds_clear(&c);
	return rc;
}

static const char *json_reply(char *buf, size_t len, const char *akid,
			      const char *secret, const char *token, uint64_t exp)
{
	char e[32];
	iso(exp, e, sizeof(e));
	int n = snprintf(buf, len,
			 "{\"Code\":\"Success\",\"Type\":\"AWS-HMAC\","
			 "\"AccessKeyId\":\"%s\",\"SecretAccessKey\":\"%s\","
			 "\"Token\":\"%s\",\"Expiration\":\"%s\"}",
			 akid, secret, token, e);
	assert_true(n > 0 && (size_t)n < len);
	return buf;
}

static const char *sts_reply(char *buf, size_t len, uint64_t exp)
{
	char e[32];
	iso(exp, e, sizeof(e));
	int n = snprintf(
		buf, len,
		"<AssumeRoleWithWebIdentityResponse xmlns=\"https://sts.amazonaws.com/"
		"doc/2011-06-15/\">\n  <AssumeRoleWithWebIdentityResult>\n"
		"    <Credentials>\n      <AccessKeyId>ASIASTS</AccessKeyId>\n"
		"      <SecretAccessKey>%s</SecretAccessKey>\n"
		"      <SessionToken>%s</SessionToken>\n"
		"      <Expiration>%s</Expiration>\n    </Credentials>\n"
		"    <Provider>www.amazon.com</Provider>\n"
		"  </AssumeRoleWithWebIdentityResult>\n"
		"  <ResponseMetadata><RequestId>rid-1</RequestId></ResponseMetadata>\n"
		"</AssumeRoleWithWebIdentityResponse>\n",
		STS_SECRET, STS_TOKEN, e);
	assert_true(n > 0 && (size_t)n < len);
	return buf;
}

/* --- the INI parser ------------------------------------------------------ */

static void test_ini(void **state)
{
	static const char text[] =
		"# a comment\n"
		"; another\n"
		"[default]\n"
		"aws_access_key_id = AKIDDEFAULT\n"
		"  [not a section, a continuation]\n"
		"region=us-east-1\r\n"
		"s3 =\n"
		"  aws_secret_access_key = nested-not-a-key\n"
		"[ profile ci ]\n"
		"Role_Arn : arn:aws:iam::1:role/ci\n"
		"empty =\n"
		"#aws_secret_access_key = commented\n"
		"key = first\n"
		"key = second\n"
		"[profile other]\n"
		"aws_secret_access_key = x = y ; kept\n"
		"[broken\n"
		"key = after-broken\n"
		"[last]\n"
		"tail = no-newline";
	char out[64];
	size_t len = sizeof(text) - 1;
	assert_true(aws_ini_lookup(text, len, "default", "aws_access_key_id", out,
				   sizeof(out)));
	assert_string_equal(out, "AKIDDEFAULT");
	assert_true(aws_ini_lookup(text, len, "default", "region", out, sizeof(out)));
	assert_string_equal(out, "us-east-1");
	/* Nested blocks are not keys of the section. */
	assert_false(aws_ini_lookup(text, len, "default", "aws_secret_access_key",
				    out, sizeof(out)));
	/* Section names are trimmed, keys case-insensitive, ':' works. */
	assert_true(aws_ini_lookup(text, len, "profile ci", "role_arn", out, sizeof(out)));
	assert_string_equal(out, "arn:aws:iam::1:role/ci");
	assert_true(aws_ini_lookup(text, len, "profile ci", "empty", out, sizeof(out)));
	assert_string_equal(out, "");
	assert_true(aws_ini_lookup(text, len, "profile ci", "key", out, sizeof(out)));
	assert_string_equal(out, "first");
	assert_false(aws_ini_lookup(text, len, "profile ci", "aws_secret_access_key",
				    out, sizeof(out)));
	/* Values keep everything after the first delimiter (no inline
	 * comments, as configparser). */
	assert_true(aws_ini_lookup(text, len, "profile other", "aws_secret_access_key",
				   out, sizeof(out)));
	assert_string_equal(out, "x = y ; kept");
	/* [ci] is not [profile ci]; a broken header ends the section. */
	assert_false(aws_ini_lookup(text, len, "ci", "role_arn", out, sizeof(out)));
	assert_false(aws_ini_lookup(text, len, "profile other", "key", out, sizeof(out)));
	assert_true(aws_ini_lookup(text, len, "last", "tail", out, sizeof(out)));
	assert_string_equal(out, "no-newline");
	/* Too long for the buffer: not found, never truncated. */
	assert_false(aws_ini_lookup(text, len, "default", "aws_access_key_id", out, 11));
	assert_true(aws_ini_lookup(text, len, "default", "aws_access_key_id", out, 12));
	/* The length bounds the parse: nothing past it is read. */
	assert_false(aws_ini_lookup(text, 20, "default", "aws_access_key_id", out,
				    sizeof(out)));
	assert_false(aws_ini_lookup(NULL, 0, "default", "x", out, sizeof(out)));
	assert_false(aws_ini_lookup(text, len, "default", "region", out, 0));
	assert_false(aws_ini_lookup("", 0, "default", "region", out, sizeof(out)));
}

/* --- the STS reply -------------------------------------------------------- */

static void test_sts_parse(void **state)
{
	char buf[2048];
	aws_creds c;
	provider_status st = {0};
	sts_reply(buf, sizeof(buf), T0 + 3600);
	assert_int_equal(aws_sts_parse_reply(200, buf, strlen(buf), &c, &st), P11K_OK);
	assert_string_equal(c.access_key, "ASIASTS");
	assert_string_equal(c.secret_key, STS_SECRET);
	assert_string_equal(c.session_token, STS_TOKEN);
	assert_int_equal(c.expires_at, T0 + 3600);
	aws_creds_clear(&c);

	/* Entities are decoded. */
	static const char ent[] =
		"<Credentials><AccessKeyId>A</AccessKeyId><SecretAccessKey>a&amp;b&lt;"
		"</SecretAccessKey><SessionToken>t</SessionToken><Expiration>"
		"2026-01-01T01:00:00.123+01:00</Expiration></Credentials>";
	assert_int_equal(aws_sts_parse_reply(200, ent, sizeof(ent) - 1, &c, &st), P11K_OK);
	assert_string_equal(c.secret_key, "a&b<");
	assert_int_equal(c.expires_at, T0);
	aws_creds_clear(&c);

	/* Malformed replies: each a clear BAD_REPLY, never a crash. */
	static const char *const bad[] = {
		"",
		"not xml",
		"<Credentials>",
		"<Credentials><AccessKeyId>A</AccessKeyId></Credentials>",
		"<Credentials><AccessKeyId>A</AccessKeyId><SecretAccessKey>s"
		"</SecretAccessKey><SessionToken>t</SessionToken></Credentials>",
		"<Credentials><AccessKeyId>A</AccessKeyId><SecretAccessKey>s"
		"</SecretAccessKey><SessionToken>t</SessionToken><Expiration>soon"
		"</Expiration></Credentials>",
		"<Credentials><AccessKeyId>A</AccessKeyId><SecretAccessKey>s&bogus;"
		"</SecretAccessKey><SessionToken>t</SessionToken><Expiration>"
		"2026-01-01T00:00:00Z</Expiration></Credentials>",
		"<Credentials><AccessKeyId>A<x/></AccessKeyId><SecretAccessKey>s"
		"</SecretAccessKey><SessionToken>t</SessionToken><Expiration>"
		"2026-01-01T00:00:00Z</Expiration></Credentials>",
		"<Credentials><AccessKeyId></AccessKeyId><SecretAccessKey>s"
		"</SecretAccessKey><SessionToken>t</SessionToken><Expiration>"
		"2026-01-01T00:00:00Z</Expiration></Credentials>",
		"<Credentials/>",
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		memset(&st, 0, sizeof(st));
		assert_int_equal(aws_sts_parse_reply(200, bad[i], strlen(bad[i]), &c, &st),
				 P11K_ERR_BAD_REPLY);
		assert_null(c.secret_key);
		assert_non_null(strstr(st.message, "Credentials"));
	}
	/* A truncated copy of a good reply (the length bounds the search). */
	sts_reply(buf, sizeof(buf), T0 + 3600);
	char *cut = strstr(buf, "</SessionToken>");
	assert_int_equal(aws_sts_parse_reply(200, buf, (size_t)(cut - buf), &c, &st),
			 P11K_ERR_BAD_REPLY);

	/* Error replies: the code, not the message. */
	static const char err[] =
		"<ErrorResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">"
		"<Error><Type>Sender</Type><Code>InvalidIdentityToken</Code>"
		"<Message>token " WEB_TOKEN " is bad</Message></Error>"
		"<RequestId>rid-9</RequestId></ErrorResponse>";
	memset(&st, 0, sizeof(st));
	assert_int_equal(aws_sts_parse_reply(400, err, sizeof(err) - 1, &c, &st),
			 P11K_ERR_ACCESS_DENIED);
	assert_string_equal(st.error_name, "InvalidIdentityToken");
	assert_string_equal(st.request_id, "rid-9");
	assert_int_equal(st.http_status, 400);
	assert_null(strstr(st.message, WEB_TOKEN));
	memset(&st, 0, sizeof(st));
	assert_int_equal(aws_sts_parse_reply(503, "oops", 4, &c, &st),
			 P11K_ERR_UNREACHABLE);
	assert_string_equal(st.error_name, "HTTP 503");
	static const char thr[] = "<Error><Code>Throttling</Code></Error>";
	assert_int_equal(aws_sts_parse_reply(400, thr, sizeof(thr) - 1, &c, &st),
			 P11K_ERR_THROTTLED);
	assert_int_equal(aws_sts_parse_reply(200, NULL, 0, &c, &st), P11K_ERR_BAD_REPLY);
	assert_int_equal(sec_in_use(), 0);
}

/* --- sources alone ----------------------------------------------------------- */

static void test_env(void **state)
{
	fx *f = *state;
	provider_status st;
	aws_creds_provider *p = chain(f, NULL, NULL);
	/* Nothing anywhere: a clear error naming what was tried. */
	fenv_set(&f->env, "AWS_EC2_METADATA_DISABLED", "true");
	assert_int_equal(get_err(p, &st), P11K_ERR_ACCESS_DENIED);
	assert_non_null(strstr(st.message, "no AWS credentials found"));
	assert_int_equal(f->net.calls, 0);
	aws_creds_provider_free(p);

	fenv_set(&f->env, "AWS_ACCESS_KEY_ID", "AKIDENV");
	fenv_set(&f->env, "AWS_SECRET_ACCESS_KEY", ENV_SECRET);
	p = chain(f, NULL, NULL);
	expect_creds(p, "environment", "AKIDENV", ENV_SECRET, NULL, 0);
	aws_creds_provider_free(p);

	fenv_set(&f->env, "AWS_SECURITY_TOKEN", "legacy-token");
	p = chain(f, NULL, NULL);
	expect_creds(p, "environment", "AKIDENV", ENV_SECRET, "legacy-token", 0);
	aws_creds_provider_free(p);

	fenv_set(&f->env, "AWS_SESSION_TOKEN", ENV_TOKEN);
	fenv_set(&f->env, "AWS_CREDENTIAL_EXPIRATION", "2026-01-01T02:00:00Z");
	p = chain(f, NULL, NULL);
	expect_creds(p, "environment", "AKIDENV", ENV_SECRET, ENV_TOKEN, T0 + 7200);
	aws_creds_provider_free(p);

	/* Malformed: each an error that names the variable, not its value. */
	fenv_set(&f->env, "AWS_CREDENTIAL_EXPIRATION", "tomorrow");
	p = chain(f, NULL, NULL);
	assert_int_equal(get_err(p, &st), P11K_ERR_ACCESS_DENIED);
	assert_non_null(strstr(st.message, "environment: AWS_CREDENTIAL_EXPIRATION"));
	aws_creds_provider_free(p);
	static const char *const bad_times[] = {
		"2026-01-01 00:00:00Z", "2026-1-01T00:00:00Z", "2026-01-01T00:00:00",
		"2026-01-01T00:00:00Zx", "2026-01-01T24:00:00Z", "1969-12-31T23:59:59Z",
		"2026-01-01T00:00:00.Z", "2026-01-01T00:00:00+0100", "+026-01-01T00:00:00Z",
		"2026-01-01T00:00:00.1234567890Z", "",
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad_times); i++) {
		fenv_set(&f->env, "AWS_CREDENTIAL_EXPIRATION", bad_times[i]);
		p = chain(f, NULL, NULL);
		/* "" is unset, as the SDKs read it. */
		assert_int_equal(get_err(p, &st), bad_times[i][0] ? P11K_ERR_ACCESS_DENIED
								   : P11K_OK);
		aws_creds_provider_free(p);
	}
	static const struct {
		const char *s;
		uint64_t t;
	} good_times[] = {
		{"2026-01-01T01:00:00+01:00", T0},
		{"2025-12-31T23:00:00-01:00", T0},
		{"2026-01-01t00:00:00.5z", T0},
		{"2026-01-01T00:00:00.123456789Z", T0},
	};
	for (size_t i = 0; i < ARRAY_SIZE(good_times); i++) {
		fenv_set(&f->env, "AWS_CREDENTIAL_EXPIRATION", good_times[i].s);
		fake_now = T0 - 3600;
		p = chain(f, NULL, NULL);
		expect_creds(p, "environment", "AKIDENV", ENV_SECRET, ENV_TOKEN,
			     good_times[i].t);
		aws_creds_provider_free(p);
	}
	fake_now = T0;
	fenv_set(&f->env, "AWS_CREDENTIAL_EXPIRATION", NULL);

	fenv_set(&f->env, "AWS_ACCESS_KEY_ID", NULL);
	p = chain(f, NULL, NULL);
	assert_int_equal(get_err(p, &st), P11K_ERR_ACCESS_DENIED);
	assert_string_equal(st.message, "environment: AWS_SECRET_ACCESS_KEY is set but "
					"AWS_ACCESS_KEY_ID is not");
	assert_null(strstr(st.message, ENV_SECRET));
	aws_creds_provider_free(p);
	assert_int_equal(f->net.calls, 0);
}

static void test_profile(void **state)
{
	fx *f = *state;
	char cpath[256], kpath[256], dpath[256];
	provider_status st;
	write_file(f->dir, "credentials",
		   "[default]\naws_access_key_id = AKIDFILE\n"
		   "aws_secret_access_key = " FILE_SECRET "\n"
		   "aws_session_token = " FILE_TOKEN "\n"
		   "[partial]\naws_access_key_id = AKIDPART\n",
		   cpath, sizeof(cpath));
	write_file(f->dir, "config",
		   "[default]\nregion = us-east-1\n"
		   "[profile cfg]\naws_access_key_id = AKIDCFG\n"
		   "aws_secret_access_key = cfg-secret\n"
		   "[cfg]\naws_access_key_id = WRONG\naws_secret_access_key = WRONG\n",
		   kpath, sizeof(kpath));
	fenv_set(&f->env, "AWS_EC2_METADATA_DISABLED", "true");
	fenv_set(&f->env, "AWS_SHARED_CREDENTIALS_FILE", cpath);
	fenv_set(&f->env, "AWS_CONFIG_FILE", kpath);

	aws_creds_provider *p = chain(f, NULL, NULL);
	expect_creds(p, "profile", "AKIDFILE", FILE_SECRET, FILE_TOKEN, 0);
	aws_creds_provider_free(p);

	/* [profile cfg] in the config file, not [cfg]. */
	fenv_set(&f->env, "AWS_PROFILE", "cfg");
	p = chain(f, NULL, NULL);
	expect_creds(p, "profile", "AKIDCFG", "cfg-secret", NULL, 0);
	aws_creds_provider_free(p);
	/* AWS_DEFAULT_PROFILE when AWS_PROFILE is unset. */
	fenv_set(&f->env, "AWS_PROFILE", NULL);
	fenv_set(&f->env, "AWS_DEFAULT_PROFILE", "cfg");
	p = chain(f, NULL, NULL);
	expect_creds(p, "profile", "AKIDCFG", "cfg-secret", NULL, 0);
	aws_creds_provider_free(p);
	fenv_set(&f->env, "AWS_DEFAULT_PROFILE", NULL);

	/* A profile with an id and no secret is an error, not a skip. */
	fenv_set(&f->env, "AWS_PROFILE", "partial");
	p = chain(f, NULL, NULL);
	assert_int_equal(get_err(p, &st), P11K_ERR_ACCESS_DENIED);
	assert_non_null(strstr(st.message, "profile: profile section [partial]"));
	aws_creds_provider_free(p);
	/* An unknown profile: nothing found. */
	fenv_set(&f->env, "AWS_PROFILE", "nope");
	p = chain(f, NULL, NULL);
	assert_int_equal(get_err(p, &st), P11K_ERR_ACCESS_DENIED);
	assert_non_null(strstr(st.message, "profile 'nope'"));
	aws_creds_provider_free(p);
	fenv_set(&f->env, "AWS_PROFILE", NULL);

	/* The default location, ~/.aws/credentials. */
	fenv_set(&f->env, "AWS_SHARED_CREDENTIALS_FILE", NULL);
	fenv_set(&f->env, "AWS_CONFIG_FILE", NULL);
	snprintf(dpath, sizeof(dpath), "%s/.aws", f->dir);
	assert_int_equal(mkdir(dpath, 0700), 0);
	write_file(dpath, "credentials",
		   "[default]\naws_access_key_id=AKIDHOME\naws_secret_access_key="
		   "home-secret\n", cpath, sizeof(cpath));
	p = chain(f, NULL, NULL);
	expect_creds(p, "profile", "AKIDHOME", "home-secret", NULL, 0);
	aws_creds_provider_free(p);
	/* ~ in an override is expanded too. */
	fenv_set(&f->env, "AWS_SHARED_CREDENTIALS_FILE", "~/.aws/credentials");
	p = chain(f, NULL, NULL);
	expect_creds(p, "profile", "AKIDHOME", "home-secret", NULL, 0);
	aws_creds_provider_free(p);
	/* Over the 1 MiB cap: refused, not read. */
	char big[300];
	snprintf(big, sizeof(big), "%s/big", f->dir);
	FILE *bf = fopen(big, "w");
	assert_non_null(bf);
	assert_int_equal(fputs("[default]\n", bf) >= 0, 1);
	for (int i = 0; i < 1024 * 1024 / 16; i++)
		assert_int_equal(fputs("# padding ......\n", bf) >= 0, 1);
	assert_int_equal(fclose(bf), 0);
	fenv_set(&f->env, "AWS_SHARED_CREDENTIALS_FILE", big);
	p = chain(f, NULL, NULL);
	assert_int_equal(get_err(p, &st), P11K_ERR_ACCESS_DENIED);
	assert_non_null(strstr(st.message, "is larger than 1048576 bytes"));
	aws_creds_provider_free(p);
	/* A folder where the file should be: a clear error. */
	fenv_set(&f->env, "AWS_SHARED_CREDENTIALS_FILE", dpath);
	p = chain(f, NULL, NULL);
	assert_int_equal(get_err(p, &st), P11K_ERR_ACCESS_DENIED);
	assert_non_null(strstr(st.message, "is not a regular file"));
	aws_creds_provider_free(p);
	assert_int_equal(f->net.calls, 0);
}

static void test_web_identity(void **state)
{
	fx *f = *state;
	char tpath[256], kpath[256], reply[2048];
	provider_status st;
	write_file(f->dir, "token", WEB_TOKEN "\n", tpath, sizeof(tpath));
	fenv_set(&f->env, "AWS_EC2_METADATA_DISABLED", "true");
	fenv_set(&f->env, "AWS_WEB_IDENTITY_TOKEN_FILE", tpath);
	fenv_set(&f->env, "AWS_ROLE_ARN", "arn:aws:iam::111122223333:role/web id");
	fenv_set(&f->env, "AWS_ROLE_SESSION_NAME", "sess-1");

	/* The regional endpoint from the chain's region. */
	sts_reply(reply, sizeof(reply), T0 + 3600);
	fnet_add(&f->net, "POST", "https://sts.eu-west-1.amazonaws.com/", 200, reply);
	aws_creds_provider *p = chain(f, NULL, NULL);
	expect_creds(p, "web-identity", "ASIASTS", STS_SECRET, STS_TOKEN, T0 + 3600);
	aws_creds_provider_free(p);
	assert_int_equal(f->net.calls, 1);
	assert_string_equal(f->net.body[0],
			    "Action=AssumeRoleWithWebIdentity&Version=2011-06-15&RoleArn="
			    "arn%3Aaws%3Aiam%3A%3A111122223333%3Arole%2Fweb%20id&"
			    "RoleSessionName=sess-1&WebIdentityToken=" WEB_TOKEN);
	assert_non_null(strstr(f->net.hdrs[0], "Content-Type: application/"
					       "x-www-form-urlencoded; charset=utf-8\n"));
	/* Unsigned: no Authorization, no X-Amz-Date. */
	assert_null(strstr(f->net.hdrs[0], "Authorization"));
	assert_null(strstr(f->net.hdrs[0], "X-Amz"));

	/* Endpoint precedence: option, AWS_ENDPOINT_URL_STS, AWS_ENDPOINT_URL. */
	fnet_reset(&f->net);
	fenv_set(&f->env, "AWS_ENDPOINT_URL", "https://all.example/");
	fnet_add(&f->net, "POST", "https://all.example/", 200, reply);
	fenv_set(&f->env, "AWS_ENDPOINT_URL_STS", NULL);
	p = chain(f, NULL, NULL);
	expect_creds(p, "web-identity", "ASIASTS", STS_SECRET, STS_TOKEN, T0 + 3600);
	aws_creds_provider_free(p);
	fenv_set(&f->env, "AWS_ENDPOINT_URL_STS", "https://sts.example:8443");
	fnet_add(&f->net, "POST", "https://sts.example:8443/", 200, reply);
	p = chain(f, NULL, NULL);
	expect_creds(p, "web-identity", "ASIASTS", STS_SECRET, STS_TOKEN, T0 + 3600);
	aws_creds_provider_free(p);
	fnet_add(&f->net, "POST", "https://opt.example/", 200, reply);
	p = chain(f, NULL, "https://opt.example");
	expect_creds(p, "web-identity", "ASIASTS", STS_SECRET, STS_TOKEN, T0 + 3600);
	aws_creds_provider_free(p);
	fenv_set(&f->env, "AWS_ENDPOINT_URL", NULL);
	fenv_set(&f->env, "AWS_ENDPOINT_URL_STS", NULL);

	/* STS refuses the token: the code, not the message. */
	fnet_reset(&f->net);
	fnet_add(&f->net, "POST", "https://sts.eu-west-1.amazonaws.com/", 400,
		 "<ErrorResponse><Error><Code>InvalidIdentityToken</Code><Message>"
		 "bad " WEB_TOKEN "</Message></Error><RequestId>r-7</RequestId>"
		 "</ErrorResponse>");
	p = chain(f, NULL, NULL);
	assert_int_equal(get_err(p, &st), P11K_ERR_ACCESS_DENIED);
	assert_string_equal(st.error_name, "InvalidIdentityToken");
	assert_string_equal(st.request_id, "r-7");
	assert_non_null(strstr(st.message, "web-identity: STS AssumeRoleWithWebIdentity"
					   " failed: HTTP 400 InvalidIdentityToken"));
	assert_null(strstr(st.message, WEB_TOKEN));
	aws_creds_provider_free(p);

	/* Throttled (HTTP 400 + Throttling): retried, then fine. */
	fnet_reset(&f->net);
	fnet_add(&f->net, "POST", "https://sts.eu-west-1.amazonaws.com/", 400,
		 "<ErrorResponse><Error><Code>Throttling</Code></Error></ErrorResponse>");
	fnet_add(&f->net, "POST", "https://sts.eu-west-1.amazonaws.com/", 200, reply);
	p = chain(f, NULL, NULL);
	expect_creds(p, "web-identity", "ASIASTS", STS_SECRET, STS_TOKEN, T0 + 3600);
	assert_int_equal(f->net.calls, 2);
	aws_creds_provider_free(p);
	/* ...and throttled to the end. */
	fnet_reset(&f->net);
	fnet_add(&f->net, "POST", "https://sts.eu-west-1.amazonaws.com/", 400,
		 "<ErrorResponse><Error><Code>Throttling</Code></Error></ErrorResponse>");
	fnet_add(&f->net, "POST", "https://sts.eu-west-1.amazonaws.com/", 400,
		 "<ErrorResponse><Error><Code>Throttling</Code></Error></ErrorResponse>");
	p = chain(f, NULL, NULL);
	assert_int_equal(get_err(p, &st), P11K_ERR_THROTTLED);
	aws_creds_provider_free(p);

	/* A garbled 200. */
	fnet_reset(&f->net);
	fnet_add(&f->net, "POST", "https://sts.eu-west-1.amazonaws.com/", 200,
		 "<html>proxy login</html>");
	p = chain(f, NULL, NULL);
	assert_int_equal(get_err(p, &st), P11K_ERR_BAD_REPLY);
	assert_non_null(strstr(st.message, "lacks a complete Credentials"));
	aws_creds_provider_free(p);

	/* STS unreachable after retries. */
	fnet_reset(&f->net);
	p = chain(f, NULL, NULL);
	assert_int_equal(get_err(p, &st), P11K_ERR_UNREACHABLE);
	assert_int_equal(f->net.calls, 2);
	aws_creds_provider_free(p);

	/* A missing or empty token file. */
	fenv_set(&f->env, "AWS_WEB_IDENTITY_TOKEN_FILE", "/nonexistent/token");
	p = chain(f, NULL, NULL);
	assert_int_equal(get_err(p, &st), P11K_ERR_ACCESS_DENIED);
	assert_non_null(strstr(st.message, "does not exist"));
	aws_creds_provider_free(p);
	write_file(f->dir, "empty", " \n", tpath, sizeof(tpath));
	fenv_set(&f->env, "AWS_WEB_IDENTITY_TOKEN_FILE", tpath);
	p = chain(f, NULL, NULL);
	assert_int_equal(get_err(p, &st), P11K_ERR_ACCESS_DENIED);
	assert_non_null(strstr(st.message, "empty or malformed"));
	aws_creds_provider_free(p);

	/* From the profile instead of the environment. */
	fenv_set(&f->env, "AWS_WEB_IDENTITY_TOKEN_FILE", NULL);
	fenv_set(&f->env, "AWS_ROLE_ARN", NULL);
	fenv_set(&f->env, "AWS_ROLE_SESSION_NAME", NULL);
	write_file(f->dir, "token", WEB_TOKEN, tpath, sizeof(tpath));
	char cfg[512];
	snprintf(cfg, sizeof(cfg),
		 "[profile ci]\nrole_arn = arn:aws:iam::1:role/ci\n"
		 "web_identity_token_file = %s\nrole_session_name = ci-run\n", tpath);
	write_file(f->dir, "config", cfg, kpath, sizeof(kpath));
	fenv_set(&f->env, "AWS_CONFIG_FILE", kpath);
	fnet_reset(&f->net);
	fnet_add(&f->net, "POST", "https://sts.eu-west-1.amazonaws.com/", 200, reply);
	p = chain(f, "ci", NULL);
	expect_creds(p, "web-identity", "ASIASTS", STS_SECRET, STS_TOKEN, T0 + 3600);
	aws_creds_provider_free(p);
	assert_non_null(strstr(f->net.body[0], "RoleArn=arn%3Aaws%3Aiam%3A%3A1%3Arole%2Fci&"
					       "RoleSessionName=ci-run&"));
	fenv_set(&f->env, "AWS_CONFIG_FILE", NULL);
}

static void test_container(void **state)
{
	fx *f = *state;
	char reply[1024], tpath[256];
	provider_status st;
	json_reply(reply, sizeof(reply), "ASIAECS", ECS_SECRET, ECS_TOKEN, T0 + 3600);
	fenv_set(&f->env, "AWS_EC2_METADATA_DISABLED", "true");

	/* Relative URI: the ECS agent's fixed address. */
	fenv_set(&f->env, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", "/v2/creds/abc");
	fnet_add(&f->net, "GET", "http://169.254.170.2/v2/creds/abc", 200, reply);
	aws_creds_provider *p = chain(f, NULL, NULL);
	expect_creds(p, "container", "ASIAECS", ECS_SECRET, ECS_TOKEN, T0 + 3600);
	aws_creds_provider_free(p);
	assert_null(strstr(f->net.hdrs[0], "Authorization"));
	assert_non_null(strstr(f->net.hdrs[0], "Accept: application/json\n"));
	fenv_set(&f->env, "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", NULL);

	/* Full URI with a token from the environment... */
	fnet_reset(&f->net);
	fenv_set(&f->env, "AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://127.0.0.1:9/creds");
	fenv_set(&f->env, "AWS_CONTAINER_AUTHORIZATION_TOKEN", ECS_AUTH);
	fnet_add(&f->net, "GET", "http://127.0.0.1:9/creds", 200, reply);
	p = chain(f, NULL, NULL);
	expect_creds(p, "container", "ASIAECS", ECS_SECRET, ECS_TOKEN, T0 + 3600);
	aws_creds_provider_free(p);
	assert_non_null(strstr(f->net.hdrs[0], "Authorization: " ECS_AUTH "\n"));
	/* ...or from a file, which wins and is re-read every time. */
	write_file(f->dir, "ecs-token", "file-auth-1\n", tpath, sizeof(tpath));
	fenv_set(&f->env, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", tpath);
	fnet_add(&f->net, "GET", "http://127.0.0.1:9/creds", 200, reply);
	fnet_add(&f->net, "GET", "http://127.0.0.1:9/creds", 200, reply);
	p = chain(f, NULL, NULL);
	expect_creds(p, "container", "ASIAECS", ECS_SECRET, ECS_TOKEN, T0 + 3600);
	assert_non_null(strstr(f->net.hdrs[1], "Authorization: file-auth-1\n"));
	write_file(f->dir, "ecs-token", "file-auth-2", tpath, sizeof(tpath));
	fake_now = T0 + 3400; /* inside the refresh window */
	expect_creds(p, "container", "ASIAECS", ECS_SECRET, ECS_TOKEN, T0 + 3600);
	assert_non_null(strstr(f->net.hdrs[2], "Authorization: file-auth-2\n"));
	aws_creds_provider_free(p);
	fake_now = T0;
	/* A token with a line break would add a header: refused. */
	write_file(f->dir, "ecs-token", "a\r\nX-Evil: 1", tpath, sizeof(tpath));
	p = chain(f, NULL, NULL);
	assert_int_equal(get_err(p, &st), P11K_ERR_ACCESS_DENIED);
	aws_creds_provider_free(p);
	fenv_set(&f->env, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", NULL);

	/* Plain http only to loopback and the link-local hosts. */
	static const char *const refused[] = {
		"http://example.com/creds", "http://169.254.169.254/x",
		"http://127.0.0.1.evil.com/x", "http://user@127.0.0.1/x",
		"ftp://127.0.0.1/x", "http://localhostx/x",
	};
	for (size_t i = 0; i < ARRAY_SIZE(refused); i++) {
		fenv_set(&f->env, "AWS_CONTAINER_CREDENTIALS_FULL_URI", refused[i]);
		p = chain(f, NULL, NULL);
		assert_int_equal(get_err(p, &st), P11K_ERR_ACCESS_DENIED);
		assert_non_null(strstr(st.message, "must be https"));
		aws_creds_provider_free(p);
	}
	static const char *const allowed[] = {
		"https://creds.example/x", "http://localhost:8080/x",
		"http://[::1]:80/x", "http://169.254.170.23/v1/credentials",
		"http://127.1.2.3/x",
	};
	for (size_t i = 0; i < ARRAY_SIZE(allowed); i++) {
		fnet_reset(&f->net);
		fenv_set(&f->env, "AWS_CONTAINER_CREDENTIALS_FULL_URI", allowed[i]);
		fnet_add(&f->net, "GET", allowed[i], 200, reply);
		p = chain(f, NULL, NULL);
		expect_creds(p, "container", "ASIAECS", ECS_SECRET, ECS_TOKEN, T0 + 3600);
		aws_creds_provider_free(p);
	}

	/* Malformed replies and refusals. */
	static const struct {
		long status;
		const char *body;
		p11k_err want;
		const char *msg;
	} bad[] = {
		{401, "{}", P11K_ERR_ACCESS_DENIED, "returned HTTP 401"},
		{404, "", P11K_ERR_BAD_REPLY, "returned HTTP 404"},
		{200, "[]", P11K_ERR_BAD_REPLY, "not a JSON object"},
		{200, "{\"AccessKeyId\":\"A\",", P11K_ERR_BAD_REPLY, "not a JSON object"},
		{200, "{\"AccessKeyId\":\"A\",\"Expiration\":\"2026-01-01T09:00:00Z\"}",
		 P11K_ERR_BAD_REPLY, "lacks AccessKeyId/SecretAccessKey"},
		{200, "{\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"s\",\"Token\":\"t\"}",
		 P11K_ERR_BAD_REPLY, "lacks a valid Expiration"},
		{200, "{\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"s\",\"Token\":\"t\","
		      "\"Expiration\":\"2026-13-01T00:00:00Z\"}",
		 P11K_ERR_BAD_REPLY, "lacks a valid Expiration"},
		{200, "{\"AccessKeyId\":\"A\",\"AccessKeyId\":\"B\"}", P11K_ERR_BAD_REPLY,
		 "not a JSON object"},
		{200, "{\"Code\":\"Failure\"}", P11K_ERR_BAD_REPLY, "has Code Failure"},
	};
	fenv_set(&f->env, "AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://127.0.0.1:9/creds");
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		fnet_reset(&f->net);
		fnet_add(&f->net, "GET", "http://127.0.0.1:9/creds", bad[i].status,
			 bad[i].body);
		p = chain(f, NULL, NULL);
		assert_int_equal(get_err(p, &st), bad[i].want);
		if (!strstr(st.message, bad[i].msg)) {
			print_error("case %zu: %s\n", i, st.message);
			fail();
		}
		assert_non_null(strstr(st.message, "container: "));
		aws_creds_provider_free(p);
	}
	/* Credentials that arrive already expired. */
	fnet_reset(&f->net);
	json_reply(reply, sizeof(reply), "ASIAECS", ECS_SECRET, ECS_TOKEN, T0 - 1);
	fnet_add(&f->net, "GET", "http://127.0.0.1:9/creds", 200, reply);
	p = chain(f, NULL, NULL);
	assert_int_equal(get_err(p, &st), P11K_ERR_ACCESS_DENIED);
	assert_non_null(strstr(st.message, "already expired"));
	aws_creds_provider_free(p);
	fenv_set(&f->env, "AWS_CONTAINER_CREDENTIALS_FULL_URI", NULL);
	fenv_set(&f->env, "AWS_CONTAINER_AUTHORIZATION_TOKEN", NULL);
}

#define IMDS "http://169.254.169.254"
#define IMDS_ROLE_URL IMDS "/latest/meta-data/iam/security-credentials/"

static void test_imds(void **state)
{
	fx *f = *state;
	char reply[1024];
	provider_status st;
	json_reply(reply, sizeof(reply), "ASIAIMDS", IMDS_SECRET, IMDS_TOKEN, T0 + 21600);

	fnet_add(&f->net, "PUT", IMDS "/latest/api/token", 200, IMDS_API_TOKEN);
	fnet_add(&f->net, "GET", IMDS_ROLE_URL, 200, "my-role\n");
	fnet_add(&f->net, "GET", IMDS_ROLE_URL "my-role", 200, reply);
	aws_creds_provider *p = chain(f, NULL, NULL);
	expect_creds(p, "imds", "ASIAIMDS", IMDS_SECRET, IMDS_TOKEN, T0 + 21600);
	aws_creds_provider_free(p);
	assert_int_equal(f->net.calls, 3);
	assert_non_null(strstr(f->net.hdrs[0], "x-aws-ec2-metadata-token-ttl-seconds: 21600\n"));
	assert_non_null(strstr(f->net.hdrs[1], "x-aws-ec2-metadata-token: " IMDS_API_TOKEN "\n"));
	assert_non_null(strstr(f->net.hdrs[2], "x-aws-ec2-metadata-token: " IMDS_API_TOKEN "\n"));

	/* The endpoint override (trailing slash tolerated). */
	fnet_reset(&f->net);
	fenv_set(&f->env, "AWS_EC2_METADATA_SERVICE_ENDPOINT", "http://127.0.0.1:1338/");
	fnet_add(&f->net, "PUT", "http://127.0.0.1:1338/latest/api/token", 200, "t");
	fnet_add(&f->net, "GET", "http://127.0.0.1:1338/latest/meta-data/iam/"
				 "security-credentials/", 200, "r");
	fnet_add(&f->net, "GET", "http://127.0.0.1:1338/latest/meta-data/iam/"
				 "security-credentials/r", 200, reply);
	p = chain(f, NULL, NULL);
	expect_creds(p, "imds", "ASIAIMDS", IMDS_SECRET, IMDS_TOKEN, T0 + 21600);
	aws_creds_provider_free(p);
	fenv_set(&f->env, "AWS_EC2_METADATA_SERVICE_ENDPOINT", NULL);

	/* Disabled: never asked. */
	fnet_reset(&f->net);
	fenv_set(&f->env, "AWS_EC2_METADATA_DISABLED", "TRUE");
	p = chain(f, NULL, NULL);
	assert_int_equal(get_err(p, &st), P11K_ERR_ACCESS_DENIED);
	assert_int_equal(f->net.calls, 0);
	aws_creds_provider_free(p);
	fenv_set(&f->env, "AWS_EC2_METADATA_DISABLED", NULL);

	/* Not on EC2: unreachable means "nothing here". */
	p = chain(f, NULL, NULL);
	assert_int_equal(get_err(p, &st), P11K_ERR_ACCESS_DENIED);
	assert_non_null(strstr(st.message, "no AWS credentials found"));
	aws_creds_provider_free(p);

	/* IMDSv1-only (token refused): no fallback, nothing here. */
	fnet_reset(&f->net);
	fnet_add(&f->net, "PUT", IMDS "/latest/api/token", 403, "");
	p = chain(f, NULL, NULL);
	assert_int_equal(get_err(p, &st), P11K_ERR_ACCESS_DENIED);
	assert_int_equal(f->net.calls, 1);
	aws_creds_provider_free(p);

	/* Failures after the token. */
	static const struct {
		long s1, s2, s3;
		const char *role, *creds;
		p11k_err want;
		const char *msg;
	} bad[] = {
		{400, 0, 0, NULL, NULL, P11K_ERR_BAD_REPLY, "token request returned HTTP 400"},
		{200, 404, 0, NULL, NULL, P11K_ERR_ACCESS_DENIED, "no AWS credentials"},
		{200, 401, 0, NULL, NULL, P11K_ERR_BAD_REPLY, "role request returned HTTP 401"},
		{200, 200, 0, "../etc", NULL, P11K_ERR_BAD_REPLY, "malformed role name"},
		{200, 200, 0, "", NULL, P11K_ERR_BAD_REPLY, "malformed role name"},
		{200, 200, 500, "r", "", P11K_ERR_UNREACHABLE, "gave up"},
		{200, 200, 404, "r", "", P11K_ERR_BAD_REPLY, "credentials request returned"},
		{200, 200, 200, "r", "{\"Code\":\"AssumeRoleUnauthorizedAccess\"}",
		 P11K_ERR_BAD_REPLY, "Code AssumeRoleUnauthorizedAccess"},
		{200, 200, 200, "r", "<xml/>", P11K_ERR_BAD_REPLY, "not a JSON object"},
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		fnet_reset(&f->net);
		f->net.lax = true;
		fnet_add(&f->net, "PUT", "", bad[i].s1, "tok");
		if (bad[i].s2)
			fnet_add(&f->net, "GET", "", bad[i].s2, bad[i].role ? bad[i].role : "");
		if (bad[i].s3) {
			fnet_add(&f->net, "GET", "", bad[i].s3, bad[i].creds);
			fnet_add(&f->net, "GET", "", bad[i].s3, bad[i].creds);
		}
		p = chain(f, NULL, NULL);
		assert_int_equal(get_err(p, &st), bad[i].want);
		if (!strstr(st.message, bad[i].msg)) {
			print_error("case %zu: %s\n", i, st.message);
			fail();
		}
		aws_creds_provider_free(p);
	}
}

/* --- the chain ------------------------------------------------------------------ */

static void test_chain_order(void **state)
{
	fx *f = *state;
	char cpath[256], tpath[256], sts[2048], ecs[1024];
	sts_reply(sts, sizeof(sts), T0 + 3600);
	json_reply(ecs, sizeof(ecs), "ASIAECS", ECS_SECRET, ECS_TOKEN, T0 + 3600);
	write_file(f->dir, "credentials", "[default]\naws_access_key_id=AKIDFILE\n"
		   "aws_secret_access_key=" FILE_SECRET "\n[named]\n"
		   "aws_access_key_id=AKIDNAMED\naws_secret_access_key=named\n",
		   cpath, sizeof(cpath));
	write_file(f->dir, "token", WEB_TOKEN, tpath, sizeof(tpath));
	fenv_set(&f->env, "AWS_SHARED_CREDENTIALS_FILE", cpath);
	fenv_set(&f->env, "AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://127.0.0.1:9/c");
	fenv_set(&f->env, "AWS_ACCESS_KEY_ID", "AKIDENV");
	fenv_set(&f->env, "AWS_SECRET_ACCESS_KEY", ENV_SECRET);
	fenv_set(&f->env, "AWS_WEB_IDENTITY_TOKEN_FILE", tpath);
	fenv_set(&f->env, "AWS_ROLE_ARN", "arn:aws:iam::1:role/r");

	/* Everything set: environment first, nothing on the network. */
	aws_creds_provider *p = chain(f, NULL, NULL);
	expect_creds(p, "environment", "AKIDENV", ENV_SECRET, NULL, 0);
	aws_creds_provider_free(p);
	assert_int_equal(f->net.calls, 0);
	/* An explicit profile skips the environment (botocore). */
	p = chain(f, "named", NULL);
	fnet_add(&f->net, "POST", "https://sts.eu-west-1.amazonaws.com/", 200, sts);
	expect_creds(p, "web-identity", "ASIASTS", STS_SECRET, STS_TOKEN, T0 + 3600);
	aws_creds_provider_free(p);
	/* Then web identity, then the files, then the container, then IMDS. */
	fenv_set(&f->env, "AWS_ACCESS_KEY_ID", NULL);
	fenv_set(&f->env, "AWS_SECRET_ACCESS_KEY", NULL);
	fnet_reset(&f->net);
	fnet_add(&f->net, "POST", "https://sts.eu-west-1.amazonaws.com/", 200, sts);
	p = chain(f, NULL, NULL);
	expect_creds(p, "web-identity", "ASIASTS", STS_SECRET, STS_TOKEN, T0 + 3600);
	aws_creds_provider_free(p);
	fenv_set(&f->env, "AWS_WEB_IDENTITY_TOKEN_FILE", NULL);
	p = chain(f, NULL, NULL);
	expect_creds(p, "profile", "AKIDFILE", FILE_SECRET, NULL, 0);
	aws_creds_provider_free(p);
	p = chain(f, "named", NULL);
	expect_creds(p, "profile", "AKIDNAMED", "named", NULL, 0);
	aws_creds_provider_free(p);
	fenv_set(&f->env, "AWS_SHARED_CREDENTIALS_FILE", NULL);
	fnet_reset(&f->net);
	fnet_add(&f->net, "GET", "http://127.0.0.1:9/c", 200, ecs);
	p = chain(f, NULL, NULL);
	expect_creds(p, "container", "ASIAECS", ECS_SECRET, ECS_TOKEN, T0 + 3600);
	aws_creds_provider_free(p);
	fenv_set(&f->env, "AWS_CONTAINER_CREDENTIALS_FULL_URI", NULL);
	fnet_reset(&f->net);
	f->net.lax = true;
	fnet_add(&f->net, "PUT", "", 200, "t");
	fnet_add(&f->net, "GET", "", 200, "r");
	fnet_add(&f->net, "GET", "", 200, ecs);
	p = chain(f, NULL, NULL);
	expect_creds(p, "imds", "ASIAECS", ECS_SECRET, ECS_TOKEN, T0 + 3600);
	aws_creds_provider_free(p);
	/* A source that applies but fails stops the chain (no silent
	 * fallback to a different identity). */
	fenv_set(&f->env, "AWS_WEB_IDENTITY_TOKEN_FILE", "/nonexistent");
	fenv_set(&f->env, "AWS_SHARED_CREDENTIALS_FILE", cpath);
	provider_status st;
	p = chain(f, NULL, NULL);
	assert_int_equal(get_err(p, &st), P11K_ERR_ACCESS_DENIED);
	assert_non_null(strstr(st.message, "web-identity:"));
	assert_null(aws_creds_source_name(p));
	aws_creds_provider_free(p);
	/* No options at all: the process environment, no HTTP client. */
	p = aws_creds_chain_new(NULL);
	assert_non_null(p);
	aws_creds_provider_free(p);
}

/* --- the cache ----------------------------------------------------------------- */

static void test_refresh(void **state)
{
	fx *f = *state;
	char r1[1024], r2[1024];
	provider_status st;
	json_reply(r1, sizeof(r1), "ASIAONE", ECS_SECRET, ECS_TOKEN, T0 + 3600);
	json_reply(r2, sizeof(r2), "ASIATWO", ECS_SECRET, ECS_TOKEN, T0 + 7200);
	fenv_set(&f->env, "AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://127.0.0.1:9/c");
	fnet_add(&f->net, "GET", "http://127.0.0.1:9/c", 200, r1);
	fnet_add(&f->net, "GET", "http://127.0.0.1:9/c", 200, r2);
	aws_creds_provider *p = chain(f, NULL, NULL);
	expect_creds(p, "container", "ASIAONE", ECS_SECRET, ECS_TOKEN, T0 + 3600);
	/* Cached while more than 5 minutes remain. */
	fake_now = T0 + 3600 - 301;
	expect_creds(p, "container", "ASIAONE", ECS_SECRET, ECS_TOKEN, T0 + 3600);
	assert_int_equal(f->net.calls, 1);
	/* Within 5 minutes: refreshed. */
	fake_now = T0 + 3600 - 300;
	expect_creds(p, "container", "ASIATWO", ECS_SECRET, ECS_TOKEN, T0 + 7200);
	assert_int_equal(f->net.calls, 2);
	/* A failed refresh while the old ones still work: keep them. */
	fake_now = T0 + 7200 - 10;
	fnet_add(&f->net, "GET", "http://127.0.0.1:9/c", 500, "");
	fnet_add(&f->net, "GET", "http://127.0.0.1:9/c", 500, "");
	expect_creds(p, "container", "ASIATWO", ECS_SECRET, ECS_TOKEN, T0 + 7200);
	/* ...but not once they have expired. */
	fake_now = T0 + 7200;
	assert_int_equal(get_err(p, &st), P11K_ERR_UNREACHABLE);
	assert_non_null(strstr(st.message, "container: gave up after 2 attempts"));
	aws_creds_provider_free(p);
	fenv_set(&f->env, "AWS_CONTAINER_CREDENTIALS_FULL_URI", NULL);

	/* Credentials without an expiry are fetched once. */
	fnet_reset(&f->net);
	fenv_set(&f->env, "AWS_ACCESS_KEY_ID", "AKIDENV");
	fenv_set(&f->env, "AWS_SECRET_ACCESS_KEY", ENV_SECRET);
	p = chain(f, NULL, NULL);
	expect_creds(p, "environment", "AKIDENV", ENV_SECRET, NULL, 0);
	fenv_set(&f->env, "AWS_ACCESS_KEY_ID", "AKIDCHANGED");
	fake_now = T0 + 10 * 365 * 86400ull;
	expect_creds(p, "environment", "AKIDENV", ENV_SECRET, NULL, 0);
	aws_creds_provider_free(p);
	fenv_set(&f->env, "AWS_ACCESS_KEY_ID", NULL);
	fenv_set(&f->env, "AWS_SECRET_ACCESS_KEY", NULL);
	fake_now = T0;
	assert_int_equal(aws_creds_get(NULL, NULL, NULL), P11K_ERR_INTERNAL);
	assert_null(aws_creds_source_name(NULL));
	aws_creds_provider_free(NULL);
}

/* Inside the fetch the cache lock must be free: these calls would
 * deadlock on a held (non-recursive) mutex. While one thread refreshes,
 * others get the still-valid cached credentials. */
typedef struct during_ctx {
	aws_creds_provider *p;
	int entered;
	bool expect_cached;
} during_ctx;

static void during_fetch(void *arg)
{
	during_ctx *d = arg;
	d->entered++;
	(void)aws_creds_source_name(d->p);
	if (d->expect_cached) {
		aws_creds c;
		provider_status st;
		assert_int_equal(aws_creds_get(d->p, &c, &st), P11K_OK);
		assert_string_equal(c.access_key, "ASIAONE");
		aws_creds_clear(&c);
	}
}

typedef struct thr_arg {
	aws_creds_provider *p;
	int ok;
} thr_arg;

static void *thr_main(void *arg)
{
	thr_arg *t = arg;
	for (int i = 0; i < 200; i++) {
		aws_creds c;
		provider_status st;
		if (aws_creds_get(t->p, &c, &st) == P11K_OK) {
			t->ok += strcmp(c.access_key, "AKIDENV") == 0;
			aws_creds_clear(&c);
		}
	}
	return NULL;
}

static void test_lock_not_held(void **state)
{
	fx *f = *state;
	char r1[1024], r2[1024];
	json_reply(r1, sizeof(r1), "ASIAONE", ECS_SECRET, ECS_TOKEN, T0 + 3600);
	json_reply(r2, sizeof(r2), "ASIATWO", ECS_SECRET, ECS_TOKEN, T0 + 7200);
	fenv_set(&f->env, "AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://127.0.0.1:9/c");
	fnet_add(&f->net, "GET", "http://127.0.0.1:9/c", 200, r1);
	fnet_add(&f->net, "GET", "http://127.0.0.1:9/c", 200, r2);
	aws_creds_provider *p = chain(f, NULL, NULL);
	during_ctx d = {.p = p};
	f->net.during = during_fetch;
	f->net.during_arg = &d;
	expect_creds(p, "container", "ASIAONE", ECS_SECRET, ECS_TOKEN, T0 + 3600);
	assert_int_equal(d.entered, 1);
	fake_now = T0 + 3500;
	d.expect_cached = true;
	expect_creds(p, "container", "ASIATWO", ECS_SECRET, ECS_TOKEN, T0 + 7200);
	assert_int_equal(d.entered, 2);
	aws_creds_provider_free(p);
	fenv_set(&f->env, "AWS_CONTAINER_CREDENTIALS_FULL_URI", NULL);
	f->net.during = NULL;
	fake_now = T0;

	/* Many threads on one provider (TSan/ASan food). */
	fenv_set(&f->env, "AWS_ACCESS_KEY_ID", "AKIDENV");
	fenv_set(&f->env, "AWS_SECRET_ACCESS_KEY", ENV_SECRET);
	fenv_set(&f->env, "AWS_CREDENTIAL_EXPIRATION", "2026-01-01T00:04:00Z");
	p = chain(f, NULL, NULL); /* always inside the window: refetch each time */
	pthread_t th[8];
	thr_arg ta[8];
	for (int i = 0; i < 8; i++) {
		ta[i] = (thr_arg){p, 0};
		assert_int_equal(pthread_create(&th[i], NULL, thr_main, &ta[i]), 0);
	}
	for (int i = 0; i < 8; i++) {
		assert_int_equal(pthread_join(th[i], NULL), 0);
		assert_int_equal(ta[i].ok, 200);
	}
	aws_creds_provider_free(p);
	fenv_set(&f->env, "AWS_ACCESS_KEY_ID", NULL);
	fenv_set(&f->env, "AWS_SECRET_ACCESS_KEY", NULL);
	fenv_set(&f->env, "AWS_CREDENTIAL_EXPIRATION", NULL);
}

/* --- no secret in the log ----------------------------------------------------- */

static char *read_all(const char *path)
{
	FILE *fp = fopen(path, "rb");
	assert_non_null(fp);
	char *buf = calloc(1, 1024 * 1024 + 1);
	assert_non_null(buf);
	size_t n = fread(buf, 1, 1024 * 1024, fp);
	buf[n] = '\0';
	fclose(fp);
	return buf;
}

static void assert_no_secret(const char *text, const char *const *secrets, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		if (secrets[i] && *secrets[i] && strstr(text, secrets[i])) {
			print_error("secret #%zu found in the log\n", i);
			fail();
		}
	}
}

static void test_no_secret_logged(void **state)
{
	fx *f = *state;
	char logpath[256], cpath[256], tpath[256], epath[256], sts[2048], ecs[1024];
	char imds[1024];
	provider_status st;
	snprintf(logpath, sizeof(logpath), "%s/trace.log", f->dir);
	assert_true(log_configure(LOG_TRACE, logpath));
	sts_reply(sts, sizeof(sts), T0 + 3600);
	json_reply(ecs, sizeof(ecs), "ASIAECS", ECS_SECRET, ECS_TOKEN, T0 + 3600);
	json_reply(imds, sizeof(imds), "ASIAIMDS", IMDS_SECRET, IMDS_TOKEN, T0 + 3600);
	write_file(f->dir, "credentials", "[default]\naws_access_key_id=AKIDFILE\n"
		   "aws_secret_access_key=" FILE_SECRET "\naws_session_token="
		   FILE_TOKEN "\n[partial]\naws_secret_access_key=" FILE_SECRET "\n",
		   cpath, sizeof(cpath));
	write_file(f->dir, "token", WEB_TOKEN, tpath, sizeof(tpath));
	write_file(f->dir, "ecs-token", ECS_AUTH, epath, sizeof(epath));
	static const char *const secrets[] = {
		ENV_SECRET, ENV_TOKEN, FILE_SECRET, FILE_TOKEN, STS_SECRET, STS_TOKEN,
		WEB_TOKEN, ECS_SECRET, ECS_TOKEN, ECS_AUTH, IMDS_SECRET, IMDS_TOKEN,
		IMDS_API_TOKEN,
	};
	aws_creds_provider *p;

	/* environment, good and partial */
	fenv_set(&f->env, "AWS_ACCESS_KEY_ID", "AKIDENV");
	fenv_set(&f->env, "AWS_SECRET_ACCESS_KEY", ENV_SECRET);
	fenv_set(&f->env, "AWS_SESSION_TOKEN", ENV_TOKEN);
	p = chain(f, NULL, NULL);
	expect_creds(p, "environment", "AKIDENV", ENV_SECRET, ENV_TOKEN, 0);
	aws_creds_provider_free(p);
	fenv_set(&f->env, "AWS_ACCESS_KEY_ID", NULL);
	p = chain(f, NULL, NULL);
	assert_int_equal(get_err(p, &st), P11K_ERR_ACCESS_DENIED);
	assert_no_secret(st.message, secrets, ARRAY_SIZE(secrets));
	aws_creds_provider_free(p);
	fenv_set(&f->env, "AWS_SECRET_ACCESS_KEY", NULL);
	fenv_set(&f->env, "AWS_SESSION_TOKEN", NULL);

	/* web identity, good and refused */
	fenv_set(&f->env, "AWS_WEB_IDENTITY_TOKEN_FILE", tpath);
	fenv_set(&f->env, "AWS_ROLE_ARN", "arn:aws:iam::1:role/r");
	fnet_add(&f->net, "POST", "https://sts.eu-west-1.amazonaws.com/", 200, sts);
	fnet_add(&f->net, "POST", "https://sts.eu-west-1.amazonaws.com/", 400,
		 "<Error><Code>InvalidIdentityToken</Code><Message>" WEB_TOKEN
		 "</Message></Error>");
	p = chain(f, NULL, NULL);
	expect_creds(p, "web-identity", "ASIASTS", STS_SECRET, STS_TOKEN, T0 + 3600);
	aws_creds_provider_free(p);
	p = chain(f, NULL, NULL);
	assert_int_equal(get_err(p, &st), P11K_ERR_ACCESS_DENIED);
	assert_no_secret(st.message, secrets, ARRAY_SIZE(secrets));
	assert_no_secret(st.error_name, secrets, ARRAY_SIZE(secrets));
	aws_creds_provider_free(p);
	fenv_set(&f->env, "AWS_WEB_IDENTITY_TOKEN_FILE", NULL);

	/* files, good and partial */
	fenv_set(&f->env, "AWS_SHARED_CREDENTIALS_FILE", cpath);
	p = chain(f, NULL, NULL);
	expect_creds(p, "profile", "AKIDFILE", FILE_SECRET, FILE_TOKEN, 0);
	aws_creds_provider_free(p);
	p = chain(f, "partial", NULL);
	assert_int_equal(get_err(p, &st), P11K_ERR_ACCESS_DENIED);
	assert_no_secret(st.message, secrets, ARRAY_SIZE(secrets));
	aws_creds_provider_free(p);
	fenv_set(&f->env, "AWS_SHARED_CREDENTIALS_FILE", NULL);

	/* container, with a token file, good and malformed */
	fnet_reset(&f->net);
	fenv_set(&f->env, "AWS_CONTAINER_CREDENTIALS_FULL_URI", "http://127.0.0.1:9/c");
	fenv_set(&f->env, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", epath);
	fnet_add(&f->net, "GET", "http://127.0.0.1:9/c", 200, ecs);
	fnet_add(&f->net, "GET", "http://127.0.0.1:9/c", 200,
		 "{\"AccessKeyId\":\"A\",\"SecretAccessKey\":\"" ECS_SECRET "\"}");
	p = chain(f, NULL, NULL);
	expect_creds(p, "container", "ASIAECS", ECS_SECRET, ECS_TOKEN, T0 + 3600);
	aws_creds_provider_free(p);
	p = chain(f, NULL, NULL);
	assert_int_equal(get_err(p, &st), P11K_ERR_BAD_REPLY);
	assert_no_secret(st.message, secrets, ARRAY_SIZE(secrets));
	aws_creds_provider_free(p);
	fenv_set(&f->env, "AWS_CONTAINER_CREDENTIALS_FULL_URI", NULL);
	fenv_set(&f->env, "AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", NULL);

	/* IMDS, good and failing on the last step */
	fnet_reset(&f->net);
	f->net.lax = true;
	fnet_add(&f->net, "PUT", "", 200, IMDS_API_TOKEN);
	fnet_add(&f->net, "GET", "", 200, "role");
	fnet_add(&f->net, "GET", "", 200, imds);
	fnet_add(&f->net, "PUT", "", 200, IMDS_API_TOKEN);
	fnet_add(&f->net, "GET", "", 200, "role");
	fnet_add(&f->net, "GET", "", 200, "{\"Code\":\"Success\",\"SecretAccessKey\":\""
					  IMDS_SECRET "\"}");
	p = chain(f, NULL, NULL);
	expect_creds(p, "imds", "ASIAIMDS", IMDS_SECRET, IMDS_TOKEN, T0 + 3600);
	aws_creds_provider_free(p);
	p = chain(f, NULL, NULL);
	assert_int_equal(get_err(p, &st), P11K_ERR_BAD_REPLY);
	assert_no_secret(st.message, secrets, ARRAY_SIZE(secrets));
	aws_creds_provider_free(p);

	log_reset();
	char *text = read_all(logpath);
	/* The log was really written at trace level... */
	assert_non_null(strstr(text, "aws-creds"));
	assert_non_null(strstr(text, "credentials from imds"));
	/* ...and holds none of the secrets. */
	assert_no_secret(text, secrets, ARRAY_SIZE(secrets));
	free(text);
}

/* --- against the emulator, over HTTPS ------------------------------------------ */

typedef struct emu {
	pid_t pid;
	char dir[128];
	json_t *info;
	http_client *http;
} emu;

static const char *jstr(json_t *o, const char *a, const char *b)
{
	json_t *v = json_object_get(o, a);
	if (b)
		v = json_object_get(v, b);
	const char *s = json_string_value(v);
	assert_non_null(s);
	return s;
}

static bool emu_start(emu *e)
{
	const char *src = getenv("P11KMS_SRC");
	char script[512], path[256];
	memset(e, 0, sizeof(*e));
	if (access("/usr/bin/python3", X_OK) != 0)
		return false;
	assert_non_null(src);
	snprintf(script, sizeof(script), "%s/tests/kms-emulator/kmsemu.py", src);
	snprintf(e->dir, sizeof(e->dir), "/tmp/p11kms-emu-XXXXXX");
	assert_non_null(mkdtemp(e->dir));
	e->pid = fork();
	assert_true(e->pid >= 0);
	if (e->pid == 0) {
		/* stdout gets the JSON document; we read the file. */
		if (!freopen("/dev/null", "w", stdout))
			_exit(127);
		execl("/usr/bin/python3", "python3", script, "serve", "--state-dir",
		      e->dir, (char *)NULL);
		_exit(127);
	}
	snprintf(path, sizeof(path), "%s/emulator.json", e->dir);
	/* Up to 60 s for a cold start (CA and key generation). */
	for (int i = 0; i < 600 && !e->info; i++) {
		int status;
		assert_int_equal(waitpid(e->pid, &status, WNOHANG), 0);
		e->info = json_load_file(path, 0, NULL);
		if (!e->info)
			usleep(100 * 1000);
	}
	assert_non_null(e->info);
	http_options o = {.ca_file = jstr(e->info, "ca_bundle", NULL),
			  .allow_plain_loopback = true, .max_attempts = 2,
			  .backoff_base_ms = 50};
	e->http = http_client_new(&o);
	assert_non_null(e->http);
	return true;
}

static void emu_stop(emu *e)
{
	int status;
	http_client_free(e->http);
	json_decref(e->info);
	if (e->pid > 0) {
		kill(e->pid, SIGTERM);
		assert_int_equal(waitpid(e->pid, &status, 0), e->pid);
	}
	rm_tree(e->dir);
}

/* Proof the credentials work: a SigV4-signed KMS ListKeys that the
 * emulator verifies (signature, session token, expiry). */
typedef struct kms_call {
	const aws_creds *c;
	const char *endpoint;
} kms_call;

static p11k_err kms_build(void *arg, int attempt, http_request *req,
			  provider_status *st)
{
	const kms_call *k = arg;
	static const char body[] = "{}";
	const char *host = strstr(k->endpoint, "://") + 3;
	sigv4_header h[3] = {{"Host", host},
			     {"Content-Type", "application/x-amz-json-1.1"},
			     {"X-Amz-Target", "TrentService.ListKeys"}};
	sigv4_request sr = {.method = "POST", .path = "/", .headers = h, .nheaders = 3,
			    .payload = (const uint8_t *)body, .payloadlen = 2,
			    .region = "us-east-1", .service = "kms",
			    .now = (uint64_t)time(NULL)};
	sigv4_result res;
	p11k_err rc = sigv4_sign(&sr, k->c, &res);
	if (rc != P11K_OK)
		return rc;
	memcpy(req->method, "POST", 5);
	req->url = strdup(k->endpoint);
	req->body = malloc(2);
	if (!req->url || !req->body) {
		sigv4_result_free(&res);
		return P11K_ERR_NOMEM;
	}
	memcpy(req->body, body, 2);
	req->bodylen = 2;
	bool ok = true;
	for (int i = 0; i < 3; i++)
		ok = ok && http_header_add(req, h[i].name, h[i].value);
	ok = ok && http_header_add(req, "X-Amz-Date", res.amz_date) &&
	     http_header_add(req, "Authorization", res.authorization);
	if (k->c->session_token)
		ok = ok && http_header_add(req, "X-Amz-Security-Token",
					   k->c->session_token);
	sigv4_result_free(&res);
	return ok ? P11K_OK : P11K_ERR_NOMEM;
}

static void emu_kms_call(emu *e, aws_creds_provider *p)
{
	aws_creds c;
	provider_status st;
	http_response resp;
	assert_int_equal(aws_creds_get(p, &c, &st), P11K_OK);
	kms_call k = {&c, jstr(e->info, "aws", "endpoint_url")};
	http_response_init(&resp, 0);
	p11k_err rc = http_call(e->http, kms_build, &k, NULL, NULL, &resp, &st);
	if (rc != P11K_OK || resp.status != 200)
		print_error("KMS ListKeys: %s, HTTP %ld: %.*s\n", st.message,
			    resp.status, (int)resp.body.len, (const char *)resp.body.p);
	assert_int_equal(rc, P11K_OK);
	assert_int_equal(resp.status, 200);
	assert_non_null(memmem(resp.body.p, resp.body.len, "\"Keys\"", 6));
	http_response_free(&resp);
	aws_creds_clear(&c);
}

static char *slurp_small(const char *path)
{
	FILE *fp = fopen(path, "rb");
	assert_non_null(fp);
	char *buf = calloc(1, 65537);
	assert_non_null(buf);
	size_t n = fread(buf, 1, 65536, fp);
	fclose(fp);
	while (n && (buf[n - 1] == '\n' || buf[n - 1] == '\r'))
		buf[--n] = '\0';
	return buf;
}

static void test_emulator(void **state)
{
	emu e;
	char logpath[300];
	if (!emu_start(&e)) {
		/* Not a skip: CI (Debian 12) has it, and a skip here would pass
		 * as a success (cmocka's group result counts only failures). */
		fail_msg("/usr/bin/python3 is missing: the emulator cannot run");
	}
	snprintf(logpath, sizeof(logpath), "%s/trace.log", e.dir);
	assert_true(log_configure(LOG_TRACE, logpath));
	fake_env env = {0};
	fenv_set(&env, "HOME", e.dir);
	aws_chain_options o = {.region = "us-east-1", .http = e.http,
			       .sts_endpoint = jstr(e.info, "aws", "sts_endpoint_url"),
			       .getenv_fn = fenv_get, .getenv_arg = &env};
	const char *wit_path = jstr(e.info, "aws", "web_identity_token_file");
	char *wit = slurp_small(wit_path);
	char *secrets[8] = {0};
	size_t ns = 0;
	aws_creds c;
	provider_status st;
	aws_creds_provider *p;

	/* Web identity: the emulator's OIDC token through its STS. */
	fenv_set(&env, "AWS_WEB_IDENTITY_TOKEN_FILE", wit_path);
	fenv_set(&env, "AWS_ROLE_ARN", jstr(e.info, "aws", "role_arn"));
	p = aws_creds_chain_new(&o);
	assert_non_null(p);
	p11k_err rc = aws_creds_get(p, &c, &st);
	if (rc != P11K_OK)
		print_error("web identity: %s\n", st.message);
	assert_int_equal(rc, P11K_OK);
	assert_string_equal(aws_creds_source_name(p), "web-identity");
	assert_non_null(c.session_token);
	assert_true(c.expires_at > (uint64_t)time(NULL));
	secrets[ns++] = strdup(c.secret_key);
	secrets[ns++] = strdup(c.session_token);
	aws_creds_clear(&c);
	emu_kms_call(&e, p);
	aws_creds_provider_free(p);
	/* A role the token may not assume: AccessDenied from STS. */
	fenv_set(&env, "AWS_ROLE_ARN", "arn:aws:iam::111122223333:role/other");
	p = aws_creds_chain_new(&o);
	assert_int_equal(aws_creds_get(p, &c, &st), P11K_ERR_ACCESS_DENIED);
	print_message("web identity, wrong role: %s\n", st.message);
	aws_creds_provider_free(p);
	fenv_set(&env, "AWS_WEB_IDENTITY_TOKEN_FILE", NULL);
	fenv_set(&env, "AWS_ROLE_ARN", NULL);

	/* Container credentials (full URI + token). */
	fenv_set(&env, "AWS_CONTAINER_CREDENTIALS_FULL_URI",
		 jstr(e.info, "aws", "container_credentials_full_uri"));
	fenv_set(&env, "AWS_CONTAINER_AUTHORIZATION_TOKEN",
		 jstr(e.info, "aws", "container_authorization_token"));
	p = aws_creds_chain_new(&o);
	rc = aws_creds_get(p, &c, &st);
	if (rc != P11K_OK)
		print_error("container: %s\n", st.message);
	assert_int_equal(rc, P11K_OK);
	assert_string_equal(aws_creds_source_name(p), "container");
	secrets[ns++] = strdup(c.secret_key);
	secrets[ns++] = c.session_token ? strdup(c.session_token) : NULL;
	aws_creds_clear(&c);
	emu_kms_call(&e, p);
	aws_creds_provider_free(p);
	/* A wrong authorization token is refused. */
	fenv_set(&env, "AWS_CONTAINER_AUTHORIZATION_TOKEN", "wrong");
	p = aws_creds_chain_new(&o);
	assert_int_equal(aws_creds_get(p, &c, &st), P11K_ERR_ACCESS_DENIED);
	print_message("container, wrong token: %s\n", st.message);
	aws_creds_provider_free(p);
	fenv_set(&env, "AWS_CONTAINER_CREDENTIALS_FULL_URI", NULL);
	fenv_set(&env, "AWS_CONTAINER_AUTHORIZATION_TOKEN", NULL);

	/* IMDSv2. */
	fenv_set(&env, "AWS_EC2_METADATA_SERVICE_ENDPOINT",
		 jstr(e.info, "aws", "imds_endpoint"));
	p = aws_creds_chain_new(&o);
	rc = aws_creds_get(p, &c, &st);
	if (rc != P11K_OK)
		print_error("imds: %s\n", st.message);
	assert_int_equal(rc, P11K_OK);
	assert_string_equal(aws_creds_source_name(p), "imds");
	secrets[ns++] = strdup(c.secret_key);
	secrets[ns++] = c.session_token ? strdup(c.session_token) : NULL;
	aws_creds_clear(&c);
	emu_kms_call(&e, p);
	aws_creds_provider_free(p);

	log_reset();
	char *text = read_all(logpath);
	assert_non_null(strstr(text, "credentials from imds"));
	const char *all[10] = {wit, jstr(e.info, "aws", "secret_access_key"),
			       jstr(e.info, "aws", "container_authorization_token")};
	for (size_t i = 0; i < ns; i++)
		all[3 + i] = secrets[i];
	assert_no_secret(text, all, 3 + ns);
	free(text);
	for (size_t i = 0; i < ns; i++)
		free(secrets[i]);
	free(wit);
	emu_stop(&e);
}

/* --- the shared credential cache (providers/common/credcache.c) ---------- */

/* A fetch that blocks until released, counting how often it runs. */
typedef struct sf_ctx {
	pthread_mutex_t m;
	pthread_cond_t c;
	int fetches;
	bool release;
	uint64_t expires;
	credcache *cache;
	p11k_err got;
	char *value;
} sf_ctx;

static p11k_err sf_fetch(void *arg, const void *req, void **value, uint64_t *expires_at,
			 const char **source, provider_status *st)
{
	sf_ctx *x = arg;
	(void)req;
	(void)st;
	pthread_mutex_lock(&x->m);
	x->fetches++;
	while (!x->release)
		pthread_cond_wait(&x->c, &x->m);
	pthread_mutex_unlock(&x->m);
	*value = sec_dup("tok", 4);
	*expires_at = x->expires;
	*source = "test";
	return *value ? P11K_OK : P11K_ERR_NOMEM;
}

static const credcache_ops sf_ops = {sf_fetch, credcache_str_copy, credcache_str_free};

static void *sf_second(void *arg)
{
	sf_ctx *x = arg;
	void *v = NULL;
	provider_status st = {0};
	x->got = credcache_get(x->cache, NULL, NULL, &v, &st);
	x->value = v;
	return NULL;
}

static void sf_release(sf_ctx *x)
{
	pthread_mutex_lock(&x->m);
	x->release = true;
	pthread_cond_broadcast(&x->c);
	pthread_mutex_unlock(&x->m);
}

static void *sf_first(void *arg)
{
	sf_ctx *x = arg;
	void *v = NULL;
	provider_status st = {0};
	assert_int_equal(credcache_get(x->cache, NULL, NULL, &v, &st), P11K_OK);
	credcache_str_free(v);
	return NULL;
}

/* Single flight: a caller with nothing usable waits for the refresh that
 * is running instead of starting its own; the refresh-ahead window and
 * expiry follow clock_now_s(). */
static void test_credcache_single_flight(void **state)
{
	(void)state;
	sf_ctx x = {.expires = T0 + 3600};
	pthread_mutex_init(&x.m, NULL);
	pthread_cond_init(&x.c, NULL);
	clock_set_fake(fake_clock, NULL);
	fake_now = T0;
	x.cache = credcache_new(&sf_ops, &x, "test");
	assert_non_null(x.cache);

	pthread_t a, b;
	assert_int_equal(pthread_create(&a, NULL, sf_first, &x), 0);
	/* Wait until the first caller is inside its fetch. */
	for (;;) {
		pthread_mutex_lock(&x.m);
		int f = x.fetches;
		pthread_mutex_unlock(&x.m);
		if (f)
			break;
		sched_yield();
	}
	assert_int_equal(pthread_create(&b, NULL, sf_second, &x), 0);
	/* Give the second caller time to reach the cache; should it be late,
	 * it finds the value cached and the counts below hold all the same. */
	struct timespec ts = {0, 50 * 1000 * 1000};
	nanosleep(&ts, NULL);
	sf_release(&x);
	assert_int_equal(pthread_join(a, NULL), 0);
	assert_int_equal(pthread_join(b, NULL), 0);
	assert_int_equal(x.got, P11K_OK);
	assert_string_equal(x.value, "tok");
	assert_int_equal(x.fetches, 1);
	assert_string_equal(credcache_source(x.cache), "test");
	credcache_str_free(x.value);

	/* Inside the refresh-ahead window: refreshed; a key the value is not
	 * for: fetched; invalidated: fetched. */
	void *v = NULL;
	provider_status st = {0};
	fake_now = T0 + 3600 - REFRESH_AHEAD_S - 1;
	assert_int_equal(credcache_get(x.cache, NULL, NULL, &v, &st), P11K_OK);
	credcache_str_free(v);
	assert_int_equal(x.fetches, 1);
	fake_now = T0 + 3600 - REFRESH_AHEAD_S;
	assert_int_equal(credcache_get(x.cache, NULL, NULL, &v, &st), P11K_OK);
	credcache_str_free(v);
	assert_int_equal(x.fetches, 2);
	assert_int_equal(credcache_get(x.cache, "other", NULL, &v, &st), P11K_OK);
	credcache_str_free(v);
	assert_int_equal(x.fetches, 3);
	credcache_invalidate(x.cache);
	assert_int_equal(credcache_get(x.cache, "other", NULL, &v, &st), P11K_OK);
	credcache_str_free(v);
	assert_int_equal(x.fetches, 4);

	credcache_free(x.cache);
	clock_set_fake(NULL, NULL);
	fake_now = T0;
	pthread_cond_destroy(&x.c);
	pthread_mutex_destroy(&x.m);
}

int main(void)
{
	if (!crypto_init())
		return 1;
	log_configure(LOG_ERROR, "stderr");
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_ini),
		cmocka_unit_test(test_sts_parse),
		cmocka_unit_test_setup_teardown(test_env, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_profile, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_web_identity, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_container, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_imds, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_chain_order, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_refresh, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_lock_not_held, fx_setup, fx_teardown),
		cmocka_unit_test(test_credcache_single_flight),
		cmocka_unit_test_setup_teardown(test_no_secret_logged, fx_setup,
						fx_teardown),
		cmocka_unit_test(test_emulator),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	crypto_fini();
	return rc;
}
