/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Google credential sources and the token cache (oauth.h). Every request
 * goes through the shared HTTP client; its retry policy covers the token
 * endpoint and the metadata server too.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include "common/crypto.h"
#include "common/log.h"
#include "common/secmem.h"
#include "oauth.h"
#include "providers/common/codec.h"
#include "providers/common/credcache.h"
#include "providers/common/secretfile.h"
#include "providers/common/util.h"

#define COMP "gcp-auth"
#define JWT_LIFETIME_S 3600
#define MAX_CRED_FILE (64 * 1024)
#define MAX_REPLY (64 * 1024)
#define MAX_TOKEN 8192
#define MAX_URL 2048

struct gcp_creds {
	char *credentials_file, *token_uri, *metadata_host, *scope;
	bool self_signed_jwt;
	http_client *http, *metadata_http;
	env_get_fn getenv_fn;
	void *getenv_arg;

	credcache *cache;   /* values: the access token, secure memory */
};

/* --- helpers ---------------------------------------------------------- */

static const char *env_get(const gcp_creds *c, const char *name)
{
	return env_lookup(c->getenv_fn, c->getenv_arg, name);
}

/* Header values and URLs must not carry control characters (a reply or
 * file with "\r\n" must not add a header). */
static bool printable(const char *s)
{
	for (; *s; s++)
		if ((unsigned char)*s < 0x21 || *s == 0x7f)
			return false;
	return true;
}

static char *opt_dup(const char *s)
{
	return s && *s ? strdup(s) : NULL;
}

/* --- the JWT-bearer assertion ----------------------------------------- */

static char *b64url_json(json_t *j)
{
	char *s = json_dumps(j, JSON_COMPACT);
	char *e = s ? b64url_encode((const uint8_t *)s, strlen(s)) : NULL;
	free(s);
	return e;
}

p11k_err gcp_jwt_assertion(const char *pem, const char *kid, const char *iss,
			   const char *sub, const char *scope, const char *aud, uint64_t now,
			   char **out)
{
	*out = NULL;
	json_t *hdr = kid && *kid ? json_pack("{s:s, s:s, s:s}", "alg", "RS256", "typ", "JWT",
					      "kid", kid)
				  : json_pack("{s:s, s:s}", "alg", "RS256", "typ", "JWT");
	json_t *cl = json_pack("{s:s, s:s, s:I, s:I}", "iss", iss, "scope", scope, "iat",
			       (json_int_t)now, "exp", (json_int_t)(now + JWT_LIFETIME_S));
	if (cl && ((sub && json_object_set_new(cl, "sub", json_string(sub))) ||
		   (aud && json_object_set_new(cl, "aud", json_string(aud))))) {
		json_decref(cl);
		cl = NULL;
	}
	char *h64 = hdr ? b64url_json(hdr) : NULL;
	char *c64 = cl ? b64url_json(cl) : NULL;
	json_decref(hdr);
	json_decref(cl);
	p11k_err rc = h64 && c64 ? P11K_OK : P11K_ERR_NOMEM;

	EVP_PKEY *pkey = NULL;
	EVP_MD_CTX *md = NULL;
	uint8_t *sig = NULL;
	size_t siglen = 0;
	char *input = NULL;
	if (rc == P11K_OK) {
		BIO *bio = BIO_new_mem_buf(pem, -1);
		pkey = bio ? PEM_read_bio_PrivateKey_ex(bio, NULL, NULL, NULL, crypto_libctx(),
							NULL)
			   : NULL;
		BIO_free(bio);
		if (!pkey || !EVP_PKEY_is_a(pkey, "RSA"))
			rc = P11K_ERR_ACCESS_DENIED;
	}
	if (rc == P11K_OK) {
		size_t n = strlen(h64) + strlen(c64) + 2;
		input = malloc(n);
		if (!input)
			rc = P11K_ERR_NOMEM;
		else
			snprintf(input, n, "%s.%s", h64, c64);
	}
	if (rc == P11K_OK) {
		md = EVP_MD_CTX_new();
		if (!md ||
		    EVP_DigestSignInit_ex(md, NULL, "SHA256", crypto_libctx(), NULL, pkey,
					  NULL) != 1 ||
		    EVP_DigestSign(md, NULL, &siglen, (const uint8_t *)input, strlen(input)) != 1 ||
		    !(sig = malloc(siglen)) ||
		    EVP_DigestSign(md, sig, &siglen, (const uint8_t *)input, strlen(input)) != 1)
			rc = P11K_ERR_INTERNAL;
	}
	char *s64 = rc == P11K_OK ? b64url_encode(sig, siglen) : NULL;
	if (rc == P11K_OK && !s64)
		rc = P11K_ERR_NOMEM;
	if (rc == P11K_OK) {
		size_t n = strlen(input) + strlen(s64) + 2;
		*out = malloc(n);
		if (!*out)
			rc = P11K_ERR_NOMEM;
		else
			snprintf(*out, n, "%s.%s", input, s64);
	}
	EVP_MD_CTX_free(md);
	EVP_PKEY_free(pkey);
	free(sig);
	free(s64);
	free(input);
	free(h64);
	free(c64);
	return rc;
}

/* --- HTTP plumbing ------------------------------------------------------ */

typedef struct req_spec {
	const char *method, *url;
	const char *hname, *hval;
	const char *body; /* secret: assertion, refresh token */
} req_spec;

static p11k_err build_req(void *arg, int attempt, http_request *req, provider_status *st)
{
	const req_spec *s = arg;
	(void)attempt;
	(void)st;
	snprintf(req->method, sizeof(req->method), "%s", s->method);
	if (!(req->url = strdup(s->url)))
		return P11K_ERR_NOMEM;
	if (s->hname && !http_header_add(req, s->hname, s->hval))
		return P11K_ERR_NOMEM;
	if (s->body) {
		size_t n = strlen(s->body);
		if (!http_header_add(req, "Content-Type", "application/x-www-form-urlencoded") ||
		    !(req->body = malloc(n ? n : 1)))
			return P11K_ERR_NOMEM;
		memcpy(req->body, s->body, n);
		req->bodylen = n;
		req->body_secret = true;
	}
	return P11K_OK;
}

/* {"access_token", "expires_in", "token_type"}: the same shape from the
 * token endpoint and the metadata server. */
static p11k_err parse_token(const char *what, const http_response *r, char **tok,
			    uint64_t *expires_in, provider_status *st)
{
	json_error_t je;
	json_t *j = json_loadb((const char *)r->body.p, r->body.len, 0, &je);
	json_t *at = json_object_get(j, "access_token");
	json_t *ei = json_object_get(j, "expires_in");
	const char *tt = json_string_value(json_object_get(j, "token_type"));
	p11k_err rc = P11K_ERR_BAD_REPLY;
	long long exp = json_is_integer(ei)  ? (long long)json_integer_value(ei)
			: json_is_string(ei) ? atoll(json_string_value(ei))
					     : -1;
	if (!json_is_string(at) || !json_string_length(at) || json_string_length(at) > MAX_TOKEN ||
	    !printable(json_string_value(at))) {
		provider_status_set(st, rc, "%s: reply has no usable access_token", what);
	} else if (tt && strcasecmp(tt, "Bearer") != 0) {
		provider_status_set(st, rc, "%s: token_type %.32s is not Bearer", what, tt);
	} else if (exp <= 0) {
		provider_status_set(st, rc, "%s: reply has no valid expires_in", what);
	} else {
		*tok = sec_dup(json_string_value(at), json_string_length(at) + 1);
		*expires_in = (uint64_t)exp;
		rc = *tok ? P11K_OK : P11K_ERR_NOMEM;
	}
	wipe_json_string(at);
	json_decref(j);
	return rc;
}

/* The OAuth error reply {"error", "error_description"}: its code and
 * description carry no secrets. */
static p11k_err token_error(const char *what, const http_response *r, provider_status *st)
{
	json_error_t je;
	json_t *j = json_loadb((const char *)r->body.p, r->body.len, 0, &je);
	const char *e = json_string_value(json_object_get(j, "error"));
	const char *d = json_string_value(json_object_get(j, "error_description"));
	p11k_err rc = r->status == 429   ? P11K_ERR_THROTTLED
		      : r->status >= 500 ? P11K_ERR_UNREACHABLE
		      : r->status == 400 || r->status == 401 || r->status == 403
			      ? P11K_ERR_ACCESS_DENIED
			      : P11K_ERR_BAD_REPLY;
	if (st) {
		st->http_status = r->status;
		snprintf(st->error_name, sizeof(st->error_name), "%s", e ? e : "");
	}
	provider_status_set(st, rc, "%s: HTTP %ld %.60s%s%.150s", what, r->status, e ? e : "",
		   d ? ": " : "", d ? d : "");
	json_decref(j);
	return rc;
}

static p11k_err token_call(http_client *h, const req_spec *s, const char *what, char **tok,
			   uint64_t *expires_in, provider_status *st)
{
	http_response resp;
	http_response_init(&resp, MAX_REPLY);
	p11k_err rc = http_call(h, build_req, (void *)s, NULL, NULL, &resp, st);
	if (rc == P11K_OK && resp.status == 200)
		rc = parse_token(what, &resp, tok, expires_in, st);
	else if (rc == P11K_OK || resp.status)
		rc = token_error(what, &resp, st);
	else
		provider_status_set(st, rc, "%s: %.200s", what, st && st->message[0] ? st->message
									 : p11k_err_name(rc));
	http_response_free(&resp);
	return rc;
}

/* Form fields percent-encoded into a secret body. */
static char *form(const char *const *kv, size_t n)
{
	dbuf_t b;
	dbuf_init(&b, 64 * 1024, true);
	for (size_t i = 0; i + 1 < n; i += 2) {
		char *v = pct_encode(kv[i + 1], strlen(kv[i + 1]));
		if (!v)
			b.failed = true;
		if (i)
			dbuf_add(&b, "&", 1);
		dbuf_add(&b, kv[i], strlen(kv[i]));
		dbuf_add(&b, "=", 1);
		if (v) {
			dbuf_add(&b, v, strlen(v));
			OPENSSL_cleanse(v, strlen(v));
			free(v);
		}
	}
	dbuf_add(&b, "", 1);
	char *out = b.failed ? NULL : sec_dup(b.p, b.len);
	dbuf_free(&b);
	return out;
}

static bool url_ok(const char *u)
{
	return u && strlen(u) < MAX_URL && printable(u) &&
	       (strncmp(u, "https://", 8) == 0 || strncmp(u, "http://", 7) == 0);
}

/* --- sources -------------------------------------------------------------- */

/* The configured override, else the file's token_uri, else Google's. */
static const char *token_uri_of(const gcp_creds *c, const json_t *f)
{
	const char *uri = c->token_uri ? c->token_uri : json_str_field(f, "token_uri");
	return uri ? uri : GCP_DEFAULT_TOKEN_URI;
}

static p11k_err src_service_account(gcp_creds *c, json_t *f, const char *path, char **tok,
				    uint64_t *exp, provider_status *st)
{
	const char *email = json_str_field(f, "client_email");
	const char *pem = json_str_field(f, "private_key");
	const char *kid = json_str_field(f, "private_key_id");
	const char *uri = token_uri_of(c, f);
	if (!email || !pem) {
		provider_status_set(st, P11K_ERR_ACCESS_DENIED,
			   "service-account file %.120s lacks client_email or private_key", path);
		return P11K_ERR_ACCESS_DENIED;
	}
	if (!url_ok(uri)) {
		provider_status_set(st, P11K_ERR_ACCESS_DENIED, "token_uri is malformed");
		return P11K_ERR_ACCESS_DENIED;
	}
	char *jwt = NULL;
	p11k_err rc;
	if (c->self_signed_jwt) {
		/* The JWT is the access token: no round trip to Google. */
		rc = gcp_jwt_assertion(pem, kid, email, email, c->scope, NULL, clock_now_s(),
				       &jwt);
		if (rc == P11K_OK) {
			*tok = sec_dup(jwt, strlen(jwt) + 1);
			*exp = JWT_LIFETIME_S;
			OPENSSL_cleanse(jwt, strlen(jwt));
			free(jwt);
			log_debug(COMP, "service account %s: self-signed JWT access", email);
			return *tok ? P11K_OK : P11K_ERR_NOMEM;
		}
		provider_status_set(st, rc, "service-account file %.120s: cannot sign with its "
			   "private_key", path);
		return rc;
	}
	/* The audience is the token endpoint the assertion is sent to. */
	rc = gcp_jwt_assertion(pem, kid, email, NULL, c->scope, uri, clock_now_s(), &jwt);
	if (rc != P11K_OK) {
		provider_status_set(st, rc, "service-account file %.120s: cannot sign with its private_key",
			   path);
		return rc;
	}
	const char *kv[] = {"grant_type", "urn:ietf:params:oauth:grant-type:jwt-bearer",
			    "assertion", jwt};
	char *body = form(kv, ARRAY_SIZE(kv));
	OPENSSL_cleanse(jwt, strlen(jwt));
	free(jwt);
	if (!body)
		return P11K_ERR_NOMEM;
	log_debug(COMP, "service account %s: JWT bearer grant at %s", email, uri);
	req_spec s = {.method = "POST", .url = uri, .body = body};
	rc = token_call(c->http, &s, "token endpoint (service account)", tok, exp, st);
	sec_free(body);
	return rc;
}

static p11k_err src_authorized_user(gcp_creds *c, json_t *f, const char *path, char **tok,
				    uint64_t *exp, provider_status *st)
{
	const char *id = json_str_field(f, "client_id");
	const char *sec = json_str_field(f, "client_secret");
	const char *rt = json_str_field(f, "refresh_token");
	const char *uri = token_uri_of(c, f);
	if (!id || !sec || !rt) {
		provider_status_set(st, P11K_ERR_ACCESS_DENIED, "authorized-user file %.120s lacks "
			   "client_id, client_secret or refresh_token", path);
		return P11K_ERR_ACCESS_DENIED;
	}
	if (!url_ok(uri)) {
		provider_status_set(st, P11K_ERR_ACCESS_DENIED, "token_uri is malformed");
		return P11K_ERR_ACCESS_DENIED;
	}
	const char *kv[] = {"grant_type", "refresh_token", "client_id", id,
			    "client_secret", sec, "refresh_token", rt};
	char *body = form(kv, ARRAY_SIZE(kv));
	if (!body)
		return P11K_ERR_NOMEM;
	log_debug(COMP, "authorized user %s: refresh-token grant at %s", id, uri);
	req_spec s = {.method = "POST", .url = uri, .body = body};
	p11k_err rc = token_call(c->http, &s, "token endpoint (authorized user)", tok, exp, st);
	sec_free(body);
	return rc;
}

static p11k_err src_file(gcp_creds *c, const char *path, const char **name, char **tok,
			 uint64_t *exp, provider_status *st)
{
	char *text = NULL;
	/* It holds private keys and refresh tokens. */
	p11k_err rc = secretfile_read(path, MAX_CRED_FILE, "credentials file", &text, NULL, st);
	if (rc != P11K_OK)
		return rc;
	json_error_t je;
	json_t *f = json_loads(text, 0, &je);
	sec_free(text);
	const char *type = json_str_field(f, "type");
	if (!json_is_object(f) || !type) {
		provider_status_set(st, P11K_ERR_ACCESS_DENIED,
			   "credentials file %.120s is not a JSON object with a \"type\"", path);
		rc = P11K_ERR_ACCESS_DENIED;
	} else if (strcmp(type, "service_account") == 0) {
		*name = "service-account";
		rc = src_service_account(c, f, path, tok, exp, st);
	} else if (strcmp(type, "authorized_user") == 0) {
		*name = "authorized-user";
		rc = src_authorized_user(c, f, path, tok, exp, st);
	} else {
		provider_status_set(st, P11K_ERR_ACCESS_DENIED,
			   "credentials file %.120s: type \"%.40s\" is not supported "
			   "(service_account, authorized_user)", path, type);
		rc = P11K_ERR_ACCESS_DENIED;
	}
	if (f)
		wipe_json_object_strings(f);
	json_decref(f);
	return rc;
}

static p11k_err src_metadata(gcp_creds *c, char **tok, uint64_t *exp, provider_status *st)
{
	const char *host = c->metadata_host ? c->metadata_host : env_get(c, "GCE_METADATA_HOST");
	if (!host)
		host = GCP_DEFAULT_METADATA_HOST;
	if (!printable(host) || strpbrk(host, "/@?#") || strlen(host) > 255) {
		provider_status_set(st, P11K_ERR_ACCESS_DENIED, "metadata host is malformed");
		return P11K_ERR_ACCESS_DENIED;
	}
	char *scope = pct_encode(c->scope, strlen(c->scope));
	char url[MAX_URL];
	if (!scope)
		return P11K_ERR_NOMEM;
	snprintf(url, sizeof(url),
		 "http://%s/computeMetadata/v1/instance/service-accounts/default/token?scopes=%s",
		 host, scope);
	free(scope);
	log_debug(COMP, "metadata server %s: instance token", host);
	req_spec s = {.method = "GET", .url = url, .hname = "Metadata-Flavor", .hval = "Google"};
	p11k_err rc = token_call(c->metadata_http, &s, "metadata server", tok, exp, st);
	if (rc == P11K_ERR_UNREACHABLE)
		provider_status_set(st, rc, "no Google credentials: no credentials_file, "
			   "GOOGLE_APPLICATION_CREDENTIALS or gcloud file, and the metadata "
			   "server %.80s is unreachable", host);
	return rc;
}

/* Google's ADC order, walked without the lock. */
static p11k_err fetch(gcp_creds *c, const char **name, char **tok, uint64_t *exp,
		      provider_status *st)
{
	const char *f = c->credentials_file;
	const char *what = "credentials_file";
	if (!f) {
		f = env_get(c, "GOOGLE_APPLICATION_CREDENTIALS");
		what = "GOOGLE_APPLICATION_CREDENTIALS";
	}
	if (f) {
		/* Named explicitly: a missing file is an error, not a fallthrough. */
		p11k_err rc = src_file(c, f, name, tok, exp, st);
		if (rc == P11K_ERR_KEY_NOT_FOUND) {
			provider_status_set(st, P11K_ERR_ACCESS_DENIED,
				   "%s names %.120s, which does not exist", what, f);
			rc = P11K_ERR_ACCESS_DENIED;
		}
		return rc;
	}
	char wk[1024];
	const char *cfgdir = env_get(c, "CLOUDSDK_CONFIG");
	const char *home = env_get(c, "HOME");
	int n = cfgdir ? snprintf(wk, sizeof(wk), "%s/application_default_credentials.json", cfgdir)
		: home ? snprintf(wk, sizeof(wk),
				  "%s/.config/gcloud/application_default_credentials.json", home)
		       : -1;
	if (n > 0 && (size_t)n < sizeof(wk)) {
		p11k_err rc = src_file(c, wk, name, tok, exp, st);
		if (rc != P11K_ERR_KEY_NOT_FOUND)
			return rc;
		log_trace(COMP, "no gcloud file at %s", wk);
	}
	*name = "metadata";
	return src_metadata(c, tok, exp, st);
}

/* --- the cache -------------------------------------------------------------- */

static p11k_err cache_fetch(void *arg, const void *req, void **value, uint64_t *expires_at,
			    const char **source, provider_status *st)
{
	gcp_creds *c = arg;
	char *tok = NULL;
	uint64_t life = 0;
	(void)req;
	p11k_err rc = fetch(c, source, &tok, &life, st);
	if (rc == P11K_OK) {
		*value = tok;
		*expires_at = clock_now_s() + life;
		log_debug(COMP, "access token from %s (expires in %llu s)", *source,
			  (unsigned long long)life);
	} else {
		sec_free(tok);
	}
	return rc;
}

static const credcache_ops cache_ops = {
	.fetch = cache_fetch,
	.copy = credcache_str_copy,
	.free = credcache_str_free,
};

gcp_creds *gcp_creds_new(const gcp_creds_options *o)
{
	gcp_creds *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	c->credentials_file = opt_dup(o->credentials_file);
	c->token_uri = opt_dup(o->token_uri);
	c->metadata_host = opt_dup(o->metadata_host);
	c->scope = strdup(o->scope && *o->scope ? o->scope
						: "https://www.googleapis.com/auth/cloudkms");
	c->self_signed_jwt = o->self_signed_jwt;
	c->http = o->http;
	c->metadata_http = o->metadata_http ? o->metadata_http : o->http;
	c->getenv_fn = o->getenv_fn;
	c->getenv_arg = o->getenv_arg;
	c->cache = credcache_new(&cache_ops, c, COMP);
	if ((o->credentials_file && *o->credentials_file && !c->credentials_file) ||
	    (o->token_uri && *o->token_uri && !c->token_uri) ||
	    (o->metadata_host && *o->metadata_host && !c->metadata_host) || !c->scope ||
	    !c->cache) {
		gcp_creds_free(c);
		return NULL;
	}
	return c;
}

void gcp_creds_free(gcp_creds *c)
{
	if (!c)
		return;
	credcache_free(c->cache);
	free(c->credentials_file);
	free(c->token_uri);
	free(c->metadata_host);
	free(c->scope);
	free(c);
}

void gcp_creds_invalidate(gcp_creds *c)
{
	credcache_invalidate(c->cache);
}

const char *gcp_creds_source_name(gcp_creds *c)
{
	return credcache_source(c->cache);
}

p11k_err gcp_creds_token(gcp_creds *c, char **token, provider_status *st)
{
	void *v = NULL;
	p11k_err rc = credcache_get(c->cache, NULL, NULL, &v, st);
	*token = v;
	return rc;
}
