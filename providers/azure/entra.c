/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Entra ID token acquisition (entra.h, PROTOCOLS.md 2.6). One vtable
 * entry per credential source (entra_source_ops), the providers' one
 * credential cache (credcache.h). Secrets (client secret, federated
 * token, private key, access tokens) live in secure memory; copies that
 * libraries make (form bodies, jansson strings) are wiped before free.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "entra.h"
#include "common/crypto.h"
#include "common/log.h"
#include "common/secmem.h"
#include "providers/common/codec.h"
#include "providers/common/credcache.h"
#include "providers/common/secretfile.h"
#include "providers/common/util.h"

#define COMP "azure-entra"
#define MAX_REPLY (64 * 1024)
#define MAX_SECRET_FILE (64 * 1024)
#define MAX_PEM_FILE (256 * 1024)
#define DEFAULT_AUTHORITY "https://login.microsoftonline.com"
#define DEFAULT_IMDS "http://169.254.169.254"
#define ASSERTION_LIFETIME_S 600

/* The credential sources, DefaultAzureCredential's order. */
typedef enum entra_kind {
	ENTRA_SECRET,
	ENTRA_CERT,
	ENTRA_WORKLOAD,
	ENTRA_APP_SERVICE,
	ENTRA_IMDS,
} entra_kind;

/* A token request: what the cache's fetch is asked for. */
typedef struct token_req {
	const char *scope, *tenant;
} token_req;

/* One credential source. */
typedef struct entra_source_ops {
	const char *name; /* for logs and status */
	/* Client credentials at the tenant's token endpoint (needs a
	 * tenant); else a managed identity endpoint. */
	bool app;
	p11k_err (*fetch)(entra_cred *c, const token_req *r, char **token, uint64_t *exp,
			  provider_status *st);
} entra_source_ops;

struct entra_cred {
	entra_kind kind;
	const entra_source_ops *src;
	char *tenant;
	char *client_id;
	char *secret_file;  /* NULL: AZURE_CLIENT_SECRET holds the secret */
	char *cert_file;
	char *token_file;
	char *authority;    /* https://host[:port], no trailing slash */
	char *mi_endpoint;  /* App Service endpoint or IMDS base */
	http_client *login_http, *identity_http;
	credcache *cache; /* values: the token, secure memory; key: tenant + scope */
};

static const entra_source_ops sources[ENTRA_IMDS + 1];
static const credcache_ops cache_ops;

static const char *nz(const char *a, const char *env)
{
	if (a && *a)
		return a;
	const char *v = env ? getenv(env) : NULL;
	return v && *v ? v : NULL;
}

static char *dup_or_null(const char *s)
{
	return s ? strdup(s) : NULL;
}

/* A whole small file into secure memory, NUL-terminated, trailing
 * whitespace trimmed (token files end with a newline); NULL when missing,
 * unreadable or empty (the callers say which file). */
static char *read_secret_file(const char *path, size_t max)
{
	char *buf = NULL;
	size_t n = 0;
	if (secretfile_read(path, max, "file", &buf, &n, NULL) != P11K_OK)
		return NULL;
	if (!secretfile_trim_end(buf, n)) {
		sec_free(buf);
		return NULL;
	}
	return buf;
}

const char *entra_source_name(const entra_cred *c)
{
	return c->src->name;
}

const char *entra_tenant(const entra_cred *c)
{
	return c->tenant;
}

void entra_free(entra_cred *c)
{
	if (!c)
		return;
	free(c->tenant);
	free(c->client_id);
	free(c->secret_file);
	free(c->cert_file);
	free(c->token_file);
	free(c->authority);
	free(c->mi_endpoint);
	credcache_free(c->cache);
	free(c);
}

static bool readable(const char *p)
{
	return access(p, R_OK) == 0;
}

entra_cred *entra_new(const entra_options *o, char *why, size_t wl)
{
	entra_cred *c = calloc(1, sizeof(*c));
	if (!c) {
		snprintf(why, wl, "out of memory");
		return NULL;
	}
	c->login_http = o->login_http;
	c->identity_http = o->identity_http;
	const char *tenant = nz(o->tenant_id, "AZURE_TENANT_ID");
	const char *client = nz(o->client_id, "AZURE_CLIENT_ID");
	const char *sfile = nz(o->client_secret_file, NULL);
	bool senv = !sfile && nz(NULL, "AZURE_CLIENT_SECRET");
	const char *cfile = nz(o->client_certificate_file, "AZURE_CLIENT_CERTIFICATE_PATH");
	const char *tfile = nz(o->federated_token_file, "AZURE_FEDERATED_TOKEN_FILE");
	const char *auth = nz(o->authority_host, "AZURE_AUTHORITY_HOST");
	bool app = tenant && client && o->managed_identity != 1;
	bool ok = true;

	/* DefaultAzureCredential's order: environment (secret, certificate),
	 * workload identity, managed identity. */
	if (app && (sfile || senv)) {
		c->kind = ENTRA_SECRET;
		if (sfile && !readable(sfile)) {
			snprintf(why, wl, "client_secret_file %.150s is not readable", sfile);
			ok = false;
		}
	} else if (app && cfile) {
		c->kind = ENTRA_CERT;
		if (!readable(cfile)) {
			snprintf(why, wl, "client certificate %.150s is not readable", cfile);
			ok = false;
		}
	} else if (app && tfile) {
		c->kind = ENTRA_WORKLOAD;
		if (!readable(tfile)) {
			snprintf(why, wl, "federated token file %.150s is not readable", tfile);
			ok = false;
		}
	} else if (o->managed_identity != 0) {
		const char *ep = nz(NULL, "IDENTITY_ENDPOINT");
		if (ep && nz(NULL, "IDENTITY_HEADER")) {
			c->kind = ENTRA_APP_SERVICE;
			c->mi_endpoint = strdup(ep);
		} else {
			const char *base = nz(NULL, "AZURE_POD_IDENTITY_AUTHORITY_HOST");
			c->kind = ENTRA_IMDS;
			c->mi_endpoint = strdup(base ? base : DEFAULT_IMDS);
		}
		if (!c->mi_endpoint)
			ok = false;
	} else {
		snprintf(why, wl, "no Azure credential: give tenant_id and client_id with "
				  "client_secret_file, client_certificate_file or "
				  "federated_token_file, or allow managed_identity");
		ok = false;
	}
	c->src = &sources[c->kind];
	if (ok && c->src->app) {
		char buf[512];
		if (!auth)
			auth = DEFAULT_AUTHORITY;
		/* The SDKs accept a bare host name. */
		if (!strstr(auth, "://"))
			snprintf(buf, sizeof(buf), "https://%s", auth);
		else
			snprintf(buf, sizeof(buf), "%s", auth);
		size_t n = strlen(buf);
		while (n > 8 && buf[n - 1] == '/')
			buf[--n] = 0;
		if (strncmp(buf, "https://", 8) != 0) {
			snprintf(why, wl, "authority_host %.100s: only https is accepted", buf);
			ok = false;
		} else if (!(c->authority = strdup(buf))) {
			ok = false;
		}
		/* The tenant is a path segment of the token URL. */
		for (const char *p = tenant; ok && *p; p++)
			if (!(isalnum((unsigned char)*p) || *p == '-' || *p == '.')) {
				snprintf(why, wl, "tenant_id is malformed");
				ok = false;
			}
	}
	if (ok) {
		c->tenant = dup_or_null(tenant);
		c->client_id = dup_or_null(client);
		c->secret_file = c->kind == ENTRA_SECRET ? dup_or_null(sfile) : NULL;
		c->cert_file = c->kind == ENTRA_CERT ? dup_or_null(cfile) : NULL;
		c->token_file = c->kind == ENTRA_WORKLOAD ? dup_or_null(tfile) : NULL;
		if ((tenant && !c->tenant) || (client && !c->client_id) ||
		    (c->kind == ENTRA_SECRET && sfile && !c->secret_file) ||
		    (c->kind == ENTRA_CERT && !c->cert_file) ||
		    (c->kind == ENTRA_WORKLOAD && !c->token_file)) {
			snprintf(why, wl, "out of memory");
			ok = false;
		}
	}
	if (ok && !(c->cache = credcache_new(&cache_ops, c, COMP))) {
		snprintf(why, wl, "out of memory");
		ok = false;
	}
	if (!ok) {
		entra_free(c);
		return NULL;
	}
	log_debug(COMP, "credential source: %s", c->src->name);
	return c;
}

/* --- replies --------------------------------------------------------------- */

static bool num_or_string(json_t *v, uint64_t *out)
{
	if (json_is_integer(v) && json_integer_value(v) >= 0) {
		*out = (uint64_t)json_integer_value(v);
		return true;
	}
	if (json_is_string(v)) {
		char *end;
		const char *s = json_string_value(v);
		unsigned long long x = strtoull(s, &end, 10);
		if (end != s && !*end) {
			*out = x;
			return true;
		}
	}
	return false;
}

p11k_err entra_parse_reply(long status, const uint8_t *body, size_t len, uint64_t now,
			   char **token, uint64_t *expires_at, provider_status *st)
{
	json_error_t je;
	*token = NULL;
	json_t *j = json_loadb((const char *)body, len, 0, &je);
	if (status != 200) {
		/* OAuth2 errors ({"error", "error_description": "AADSTSnnn: ..."}),
		 * IMDS ({"error", "error_description"}), App Service
		 * ({"statusCode", "message"}). Descriptions name apps and
		 * tenants, never secrets. */
		json_t *e = json_object_get(j, "error");
		const char *name = json_is_string(e) ? json_string_value(e) : "";
		const char *d = json_string_value(json_object_get(j, "error_description"));
		if (!d)
			d = json_string_value(json_object_get(j, "message"));
		if (st) {
			snprintf(st->error_name, sizeof(st->error_name), "%s", name);
			st->http_status = status;
		}
		p11k_err rc = status >= 500 || status == 429 ? P11K_ERR_UNREACHABLE
							     : P11K_ERR_ACCESS_DENIED;
		provider_status_set(st, rc, "token request: HTTP %ld %s: %.160s", status, name,
			   d ? d : "");
		json_decref(j);
		return rc;
	}
	json_t *at = json_object_get(j, "access_token");
	uint64_t on = 0, in = 0;
	bool have_on = num_or_string(json_object_get(j, "expires_on"), &on);
	bool have_in = num_or_string(json_object_get(j, "expires_in"), &in);
	p11k_err rc = P11K_OK;
	if (!json_is_string(at) || !json_string_length(at) || json_string_length(at) > 16384) {
		provider_status_set(st, P11K_ERR_BAD_REPLY, "token reply without an access_token");
		rc = P11K_ERR_BAD_REPLY;
	} else if (!have_on && !have_in) {
		provider_status_set(st, P11K_ERR_BAD_REPLY, "token reply without an expiry");
		rc = P11K_ERR_BAD_REPLY;
	} else if (!(*token = sec_dup(json_string_value(at), json_string_length(at) + 1))) {
		rc = P11K_ERR_NOMEM;
	} else {
		*expires_at = have_on ? on : now + in;
	}
	wipe_json_string(at);
	json_decref(j);
	return rc;
}

/* --- one HTTP exchange ------------------------------------------------------- */

typedef struct xreq {
	const char *method, *url;
	const char *hname[2], *hval[2];
	size_t nh;
	const char *body; /* secret: wiped by the http layer */
	size_t bodylen;
} xreq;

static p11k_err xbuild(void *arg, int attempt, http_request *req, provider_status *st)
{
	const xreq *x = arg;
	(void)attempt;
	(void)st;
	snprintf(req->method, sizeof(req->method), "%s", x->method);
	if (!(req->url = strdup(x->url)))
		return P11K_ERR_NOMEM;
	for (size_t i = 0; i < x->nh; i++)
		if (!http_header_add(req, x->hname[i], x->hval[i]))
			return P11K_ERR_NOMEM;
	if (x->body) {
		if (!(req->body = malloc(x->bodylen ? x->bodylen : 1)))
			return P11K_ERR_NOMEM;
		memcpy(req->body, x->body, x->bodylen);
		req->bodylen = x->bodylen;
		req->body_secret = true;
	}
	return P11K_OK;
}

static p11k_err exchange(http_client *h, const xreq *x, char **token, uint64_t *exp,
			 provider_status *st)
{
	http_response resp;
	http_response_init(&resp, MAX_REPLY);
	p11k_err e = http_call(h, xbuild, (void *)x, NULL, NULL, &resp, st);
	if (st) {
		st->http_status = resp.status;
		snprintf(st->request_id, sizeof(st->request_id), "%s", resp.request_id);
	}
	if (e == P11K_OK)
		e = entra_parse_reply(resp.status, resp.body.p, resp.body.len, clock_now_s(),
				      token, exp, st);
	http_response_free(&resp);
	return e;
}

/* --- sources --------------------------------------------------------------- */

/* "https://vault.azure.net/.default" -> "https://vault.azure.net", for the
 * managed identity endpoints, which take a resource. */
static char *resource_of(const char *scope)
{
	size_t n = strlen(scope);
	const char *suf = "/.default";
	if (n > strlen(suf) && strcmp(scope + n - strlen(suf), suf) == 0)
		n -= strlen(suf);
	char *r = malloc(n + 1);
	if (r) {
		memcpy(r, scope, n);
		r[n] = 0;
	}
	return r;
}

/* b64url(JSON) of a jansson object. */
static char *b64url_json(json_t *o)
{
	char *s = json_dumps(o, JSON_COMPACT);
	char *r = s ? b64url_encode((const uint8_t *)s, strlen(s)) : NULL;
	free(s);
	return r;
}

/* Encrypted keys are not supported: never let OpenSSL prompt on a
 * terminal of the host application. */
static int no_passphrase(char *buf, int size, int rw, void *u)
{
	(void)buf;
	(void)size;
	(void)rw;
	(void)u;
	return 0;
}

/* The private_key_jwt client assertion (PROTOCOLS.md 2.6): RS256 over
 * header.claims, signed in the module's private OpenSSL library context.
 * x5t and x5t#S256 name the certificate. */
static char *cert_assertion(const entra_cred *c, const char *aud, provider_status *st)
{
	char *pem = read_secret_file(c->cert_file, MAX_PEM_FILE);
	char *out = NULL, *h64 = NULL, *c64 = NULL, *s64 = NULL, *t1 = NULL, *t256 = NULL;
	EVP_PKEY *pk = NULL;
	X509 *x = NULL;
	EVP_MD_CTX *md = NULL;
	unsigned char *der = NULL, *sig = NULL;
	json_t *hdr = NULL, *cl = NULL;
	if (!pem) {
		provider_status_set(st, P11K_ERR_ACCESS_DENIED, "client certificate file unreadable");
		return NULL;
	}
	BIO *b = BIO_new_mem_buf(pem, -1);
	if (b)
		pk = PEM_read_bio_PrivateKey_ex(b, NULL, no_passphrase, NULL, crypto_libctx(),
						 NULL);
	BIO_free(b);
	b = BIO_new_mem_buf(pem, -1);
	if (b)
		x = PEM_read_bio_X509(b, NULL, no_passphrase, NULL);
	BIO_free(b);
	sec_free(pem);
	int dlen = x ? i2d_X509(x, &der) : -1;
	if (!pk || !x || dlen <= 0) {
		provider_status_set(st, P11K_ERR_ACCESS_DENIED,
			   "client certificate file needs an unencrypted PEM private key and "
			   "a certificate");
		ERR_clear_error(); /* leave the host's error queue as it was */
		goto done;
	}
	unsigned char d1[20], d256[32];
	unsigned int l1 = 0, l256 = 0;
	EVP_MD *sha1 = EVP_MD_fetch(crypto_libctx(), "SHA1", NULL);
	EVP_MD *sha256 = EVP_MD_fetch(crypto_libctx(), "SHA256", NULL);
	bool okd = sha1 && sha256 && EVP_Digest(der, (size_t)dlen, d1, &l1, sha1, NULL) &&
		   EVP_Digest(der, (size_t)dlen, d256, &l256, sha256, NULL);
	EVP_MD_free(sha1);
	EVP_MD_free(sha256);
	if (!okd || !(t1 = b64url_encode(d1, l1)) || !(t256 = b64url_encode(d256, l256)))
		goto fail;
	uint64_t now = clock_now_s();
	uint8_t jti[16];
	char jtih[33];
	if (!crypto_random(jti, sizeof(jti)))
		goto fail;
	hex_encode(jti, sizeof(jti), jtih);
	hdr = json_pack("{s:s, s:s, s:s, s:s}", "alg", "RS256", "typ", "JWT", "x5t", t1,
			"x5t#S256", t256);
	cl = json_pack("{s:s, s:s, s:s, s:s, s:I, s:I, s:I}", "aud", aud, "iss", c->client_id,
		       "sub", c->client_id, "jti", jtih, "nbf", (json_int_t)now, "iat",
		       (json_int_t)now, "exp", (json_int_t)(now + ASSERTION_LIFETIME_S));
	if (!hdr || !cl || !(h64 = b64url_json(hdr)) || !(c64 = b64url_json(cl)))
		goto fail;
	size_t ilen = strlen(h64) + 1 + strlen(c64);
	char *input = malloc(ilen + 1);
	if (!input)
		goto fail;
	snprintf(input, ilen + 1, "%s.%s", h64, c64);
	size_t slen = 0;
	md = EVP_MD_CTX_new();
	bool oks = md &&
		   EVP_DigestSignInit_ex(md, NULL, "SHA256", crypto_libctx(), NULL, pk, NULL) == 1 &&
		   EVP_DigestSign(md, NULL, &slen, (const unsigned char *)input, ilen) == 1 &&
		   (sig = malloc(slen)) &&
		   EVP_DigestSign(md, sig, &slen, (const unsigned char *)input, ilen) == 1 &&
		   (s64 = b64url_encode(sig, slen));
	if (oks) {
		size_t ol = ilen + 1 + strlen(s64) + 1;
		if ((out = sec_alloc(ol)))
			snprintf(out, ol, "%s.%s", input, s64);
	}
	free(input);
	if (out)
		goto done;
fail:
	provider_status_set(st, P11K_ERR_INTERNAL, "could not sign the client assertion");
done:
	EVP_MD_CTX_free(md);
	EVP_PKEY_free(pk);
	X509_free(x);
	OPENSSL_free(der);
	free(sig);
	free(h64);
	free(c64);
	free(s64);
	free(t1);
	free(t256);
	json_decref(hdr);
	json_decref(cl);
	return out;
}

/* The client secret (secure memory), from its file or AZURE_CLIENT_SECRET. */
static char *secret_cred(const entra_cred *c, const char *url, provider_status *st)
{
	(void)url;
	char *cred;
	if (c->secret_file) {
		cred = read_secret_file(c->secret_file, MAX_SECRET_FILE);
	} else {
		const char *v = getenv("AZURE_CLIENT_SECRET");
		cred = v && *v ? sec_dup(v, strlen(v) + 1) : NULL;
	}
	if (!cred)
		provider_status_set(st, P11K_ERR_ACCESS_DENIED, "the client secret is unreadable");
	return cred;
}

/* The federated token (workload identity), re-read on every fetch: the
 * platform rotates it. */
static char *federated_cred(const entra_cred *c, const char *url, provider_status *st)
{
	(void)url;
	char *cred = read_secret_file(c->token_file, MAX_SECRET_FILE);
	if (!cred)
		provider_status_set(st, P11K_ERR_ACCESS_DENIED, "federated token file unreadable or empty");
	return cred;
}

/* Client credentials at {authority}/{tenant}/oauth2/v2.0/token with the
 * credential get_cred makes for that URL: a secret (client_secret), or a
 * certificate or federated assertion (client_assertion). */
static p11k_err fetch_app(entra_cred *c, const token_req *r,
			  char *(*get_cred)(const entra_cred *c, const char *url,
					    provider_status *st),
			  bool assertion, char **token, uint64_t *exp, provider_status *st)
{
	const char *scope = r->scope;
	char url[1024];
	if ((size_t)snprintf(url, sizeof(url), "%s/%s/oauth2/v2.0/token", c->authority,
			     r->tenant) >= sizeof(url)) {
		provider_status_set(st, P11K_ERR_INTERNAL, "token URL too long");
		return P11K_ERR_INTERNAL;
	}
	const char *cred_name = assertion ? "client_assertion" : "client_secret";
	char *cred = get_cred(c, url, st);
	if (!cred)
		return st && st->err ? st->err : P11K_ERR_ACCESS_DENIED;
	char *ecid = pct_encode(c->client_id, strlen(c->client_id));
	char *escope = pct_encode(scope, strlen(scope));
	char *ecred = pct_encode(cred, strlen(cred));
	OPENSSL_cleanse(cred, strlen(cred));
	sec_free(cred);
	p11k_err e = P11K_ERR_NOMEM;
	if (ecid && escope && ecred) {
		const char *atype = !assertion
					    ? ""
					    : "&client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3A"
					      "client-assertion-type%3Ajwt-bearer";
		size_t bl = strlen(ecid) + strlen(escope) + strlen(ecred) + strlen(atype) + 128;
		char *body = sec_alloc(bl);
		if (body) {
			int n = snprintf(body, bl,
					 "client_id=%s&scope=%s&grant_type=client_credentials%s&%s=%s",
					 ecid, escope, atype, cred_name, ecred);
			xreq x = {.method = "POST", .url = url,
				  .hname = {"Content-Type"},
				  .hval = {"application/x-www-form-urlencoded"}, .nh = 1,
				  .body = body, .bodylen = (size_t)n};
			e = exchange(c->login_http, &x, token, exp, st);
			sec_free(body);
		}
	}
	free(ecid);
	free(escope);
	if (ecred) {
		OPENSSL_cleanse(ecred, strlen(ecred));
		free(ecred);
	}
	return e;
}

static p11k_err src_secret(entra_cred *c, const token_req *r, char **token, uint64_t *exp,
			   provider_status *st)
{
	return fetch_app(c, r, secret_cred, false, token, exp, st);
}

static p11k_err src_cert(entra_cred *c, const token_req *r, char **token, uint64_t *exp,
			 provider_status *st)
{
	return fetch_app(c, r, cert_assertion, true, token, exp, st);
}

static p11k_err src_workload(entra_cred *c, const token_req *r, char **token, uint64_t *exp,
			     provider_status *st)
{
	return fetch_app(c, r, federated_cred, true, token, exp, st);
}

/* Managed identity: resource rather than scope; client_id for a
 * user-assigned identity. The URL is the endpoint's: app_service says
 * which one. */
static p11k_err mi_url(const entra_cred *c, const char *scope, bool app_service, char *url,
		       size_t ul, provider_status *st)
{
	char *res = resource_of(scope);
	char *eres = res ? pct_encode(res, strlen(res)) : NULL;
	char *ecid = c->client_id ? pct_encode(c->client_id, strlen(c->client_id)) : NULL;
	free(res);
	if (!eres || (c->client_id && !ecid)) {
		free(eres);
		free(ecid);
		return P11K_ERR_NOMEM;
	}
	size_t el = strlen(c->mi_endpoint);
	while (el && c->mi_endpoint[el - 1] == '/')
		el--;
	int n;
	if (app_service)
		n = snprintf(url, ul, "%.*s%sapi-version=2019-08-01&resource=%s%s%s",
			     (int)el, c->mi_endpoint, strchr(c->mi_endpoint, '?') ? "&" : "?",
			     eres, ecid ? "&client_id=" : "", ecid ? ecid : "");
	else
		n = snprintf(url, ul,
			     "%.*s/metadata/identity/oauth2/token?api-version=2018-02-01"
			     "&resource=%s%s%s",
			     (int)el, c->mi_endpoint, eres, ecid ? "&client_id=" : "",
			     ecid ? ecid : "");
	free(eres);
	free(ecid);
	if (n < 0 || (size_t)n >= ul) {
		provider_status_set(st, P11K_ERR_INTERNAL, "managed identity URL too long");
		return P11K_ERR_INTERNAL;
	}
	return P11K_OK;
}

/* App Service (IDENTITY_ENDPOINT with the X-IDENTITY-HEADER secret) or
 * the VM's IMDS (Metadata: true). */
static p11k_err fetch_mi(entra_cred *c, const token_req *r, bool app_service, char **token,
			 uint64_t *exp, provider_status *st)
{
	char url[2048];
	char *h = NULL;
	p11k_err e = mi_url(c, r->scope, app_service, url, sizeof(url), st);
	if (e == P11K_OK && app_service) {
		const char *hv = getenv("IDENTITY_HEADER");
		if (!(h = hv ? sec_dup(hv, strlen(hv) + 1) : NULL)) {
			provider_status_set(st, P11K_ERR_ACCESS_DENIED, "IDENTITY_HEADER is not set");
			e = P11K_ERR_ACCESS_DENIED;
		}
	}
	if (e == P11K_OK) {
		xreq x = {.method = "GET", .url = url,
			  .hname = {app_service ? "X-IDENTITY-HEADER" : "Metadata"},
			  .hval = {app_service ? h : "true"}, .nh = 1};
		e = exchange(c->identity_http, &x, token, exp, st);
		if (e == P11K_ERR_UNREACHABLE && st && !st->http_status)
			provider_status_set(st, e, "managed identity endpoint unreachable "
						   "(not on Azure?)");
	}
	sec_free(h);
	return e;
}

static p11k_err src_app_service(entra_cred *c, const token_req *r, char **token, uint64_t *exp,
				provider_status *st)
{
	return fetch_mi(c, r, true, token, exp, st);
}

static p11k_err src_imds(entra_cred *c, const token_req *r, char **token, uint64_t *exp,
			 provider_status *st)
{
	return fetch_mi(c, r, false, token, exp, st);
}

static const entra_source_ops sources[ENTRA_IMDS + 1] = {
	[ENTRA_SECRET] = {"client-secret", true, src_secret},
	[ENTRA_CERT] = {"client-certificate", true, src_cert},
	[ENTRA_WORKLOAD] = {"workload-identity", true, src_workload},
	[ENTRA_APP_SERVICE] = {"managed-identity (App Service)", false, src_app_service},
	[ENTRA_IMDS] = {"managed-identity (IMDS)", false, src_imds},
};

/* --- the cache -------------------------------------------------------------- */

static p11k_err cache_fetch(void *arg, const void *req, void **value, uint64_t *expires_at,
			    const char **source, provider_status *st)
{
	entra_cred *c = arg;
	const token_req *r = req;
	char *tok = NULL;
	p11k_err e = c->src->fetch(c, r, &tok, expires_at, st);
	if (e == P11K_OK) {
		*value = tok;
		*source = c->src->name;
		log_debug(COMP, "%s: token for %s, expires at %llu", c->src->name, r->scope,
			  (unsigned long long)*expires_at);
	}
	return e;
}

static const credcache_ops cache_ops = {
	.fetch = cache_fetch,
	.copy = credcache_str_copy,
	.free = credcache_str_free,
};

void entra_invalidate(entra_cred *c)
{
	credcache_invalidate(c->cache);
}

p11k_err entra_get_token(entra_cred *c, const char *scope, const char *tenant, char **token,
			 provider_status *st)
{
	*token = NULL;
	if (!tenant)
		tenant = c->tenant;
	if (c->src->app && !tenant) {
		provider_status_set(st, P11K_ERR_ACCESS_DENIED, "no tenant_id");
		return P11K_ERR_ACCESS_DENIED;
	}
	/* One cached token, for one tenant and scope. */
	size_t kl = strlen(scope) + (tenant ? strlen(tenant) : 0) + 4;
	char *key = malloc(kl);
	if (!key)
		return P11K_ERR_NOMEM;
	snprintf(key, kl, "%s%s\n%s", tenant ? "t:" : "-", tenant ? tenant : "", scope);
	token_req r = {.scope = scope, .tenant = tenant};
	void *v = NULL;
	p11k_err e = credcache_get(c->cache, key, &r, &v, st);
	free(key);
	*token = v;
	return e;
}
