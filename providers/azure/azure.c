/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The Azure Key Vault / Managed HSM provider (keys REST API over HTTPS,
 * Entra ID bearer tokens; PROTOCOLS.md section 2).
 *
 * Sealing is a remote wrapKey: RSA keys with RSA-OAEP-256, Managed HSM
 * oct-HSM keys with CKM_AES_KEY_WRAP_PAD (RFC 5649, any length). Wrapping
 * is remote even for RSA, where the public key would allow it locally,
 * so that every seal is checked by the service against the key's state
 * and the caller's rights (a disabled key or a revoked role fails at
 * once) and no public key needs caching or trusting.
 *
 * Neither algorithm carries AAD, so the module's AAD is bound by wrapping
 * SHA-256(aad) || plaintext and checking that prefix after unwrap.
 *
 * Blob: "P1KA" | 0x01 | alg length (1) | alg | kid length (2, BE) | kid |
 * wrapped value. The kid is the full versioned key id the service
 * returned, so rotation keeps old blobs working; decrypt calls that
 * version under the configured vault_url (never the blob's host) and
 * refuses a blob of another key name.
 */
#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "azure.h"
#include "entra.h"
#include "module/crypto.h"
#include "module/log.h"
#include "module/secmem.h"
#include "providers/common/codec.h"
#include "providers/common/http.h"
#include "providers/provider.h"

#define COMP "azure"
#define AZ_MAX_REPLY (64 * 1024)
#define BLOB_MAGIC "P1KA"
#define BLOB_VERSION 1
#define MAX_KID 512
#define MAX_ALG 32
#define AAD_HASH_LEN 32
#define MAX_CACHED_KEYS 64

typedef struct kty_entry {
	char *key_id;
	bool oct; /* oct / oct-HSM: AES key wrap, else RSA */
} kty_entry;

typedef struct az_state {
	char *vault_url;   /* https://host[:port], no trailing slash */
	char *host;        /* host part, for challenge verification */
	char *api_version;
	char *default_key;
	bool verify_challenge; /* off only for loopback (emulators) */
	http_client *http;     /* the vault: https only */
	http_client *idhttp;   /* IMDS / App Service: plain http to metadata, loopback */
	http_client *loginhttp;
	entra_cred *cred;

	pthread_mutex_t lock;
	/* Under lock: */
	char *scope;  /* from config, then from the bearer challenge */
	char *tenant; /* from the challenge when none is configured */
	kty_entry kty[MAX_CACHED_KEYS];
	size_t nkty;
} az_state;

static const char *const resource_choices[] = {"vault", "hsm", NULL};

static const field_spec azure_fields[] = {
	{"vault_url", FT_STRING, true, 0, 0, NULL},
	{"tenant_id", FT_STRING, false, 0, 0, NULL},
	{"client_id", FT_STRING, false, 0, 0, NULL},
	{"client_secret_file", FT_STRING, false, 0, 0, NULL},
	{"client_certificate_file", FT_STRING, false, 0, 0, NULL},
	{"federated_token_file", FT_STRING, false, 0, 0, NULL},
	{"authority_host", FT_STRING, false, 0, 0, NULL},
	{"managed_identity", FT_BOOL, false, 0, 0, NULL},
	{"ca_file", FT_STRING, false, 0, 0, NULL},
	{"api_version", FT_STRING, false, 0, 0, NULL},
	{"resource", FT_STRING, false, 0, 0, resource_choices},
	{NULL, FT_STRING, false, 0, 0, NULL},
};

/* Azure error codes (error.code, then innererror.code, which is more
 * specific) -> the internal vocabulary (PROTOCOLS.md 2.4). */
static const struct {
	const char *code;
	p11k_err err;
} az_errors[] = {
	{"KeyDisabled", P11K_ERR_KEY_DISABLED},
	{"SecretDisabled", P11K_ERR_KEY_DISABLED},
	{"KeyNotFound", P11K_ERR_KEY_NOT_FOUND},
	{"NotFound", P11K_ERR_KEY_NOT_FOUND},
	{"Unauthorized", P11K_ERR_ACCESS_DENIED},
	{"Forbidden", P11K_ERR_ACCESS_DENIED},
	{"AccessDenied", P11K_ERR_ACCESS_DENIED},
	{"ForbiddenByRbac", P11K_ERR_ACCESS_DENIED},
	{"ForbiddenByPolicy", P11K_ERR_ACCESS_DENIED},
	{"ForbiddenByFirewall", P11K_ERR_ACCESS_DENIED},
	{"KeyOperationForbidden", P11K_ERR_ACCESS_DENIED},
	{"Throttled", P11K_ERR_THROTTLED},
	{"TooManyRequests", P11K_ERR_THROTTLED},
	{"ServiceUnavailable", P11K_ERR_UNREACHABLE},
	{"InternalServerError", P11K_ERR_UNREACHABLE},
	{"BadParameter", P11K_ERR_INTERNAL},
};

static p11k_err map_code(const char *code, bool *known)
{
	for (size_t i = 0; i < ARRAY_SIZE(az_errors); i++)
		if (strcmp(az_errors[i].code, code) == 0) {
			*known = true;
			return az_errors[i].err;
		}
	*known = false;
	return P11K_ERR_BAD_REPLY;
}

/* Map an error reply; exposed to the unit tests through the operations. */
static p11k_err map_error(long status, json_t *body, provider_status *st, const char *op)
{
	json_t *err = json_object_get(body, "error");
	const char *code = json_string_value(json_object_get(err, "code"));
	const char *msg = json_string_value(json_object_get(err, "message"));
	const char *inner = NULL;
	/* The innermost innererror is the most specific. */
	for (json_t *ie = json_object_get(err, "innererror"); json_is_object(ie);
	     ie = json_object_get(ie, "innererror")) {
		const char *c = json_string_value(json_object_get(ie, "code"));
		if (c)
			inner = c;
	}
	p11k_err e = P11K_ERR_BAD_REPLY;
	bool known = false;
	if (inner)
		e = map_code(inner, &known);
	if (!known && code)
		e = map_code(code, &known);
	if (!known)
		e = status >= 500 || status == 429 ? P11K_ERR_UNREACHABLE
		    : status == 401 || status == 403 ? P11K_ERR_ACCESS_DENIED
		    : status == 404		    ? P11K_ERR_KEY_NOT_FOUND
						    : P11K_ERR_BAD_REPLY;
	if (status == 429)
		e = P11K_ERR_THROTTLED;
	snprintf(st->error_name, sizeof(st->error_name), "%s%s%s", code ? code : "",
		 inner ? "/" : "", inner ? inner : "");
	/* Key Vault messages name keys, vaults and principals, never key
	 * material or tokens. */
	snprintf(st->message, sizeof(st->message), "%s: HTTP %ld %s: %.170s", op, status,
		 st->error_name, msg ? msg : "");
	return e;
}

/* --- key names --------------------------------------------------------------- */

/* "NAME" or "NAME/VERSION": names are 1-127 of [0-9A-Za-z-], versions
 * [0-9A-Za-z]; nothing that could change the URL's shape. */
static bool parse_key_id(const char *id, char *name, size_t nl, char *ver, size_t vl)
{
	const char *slash = strchr(id, '/');
	size_t n = slash ? (size_t)(slash - id) : strlen(id);
	if (n == 0 || n >= nl || n > 127)
		return false;
	for (size_t i = 0; i < n; i++)
		if (!isalnum((unsigned char)id[i]) && id[i] != '-')
			return false;
	memcpy(name, id, n);
	name[n] = 0;
	ver[0] = 0;
	if (slash) {
		const char *v = slash + 1;
		size_t m = strlen(v);
		if (m == 0 || m >= vl)
			return false;
		for (size_t i = 0; i < m; i++)
			if (!isalnum((unsigned char)v[i]))
				return false;
		memcpy(ver, v, m + 1);
	}
	return true;
}

/* ".../keys/NAME/VERSION" of a kid -> name, version. */
static bool parse_kid(const char *kid, char *name, size_t nl, char *ver, size_t vl)
{
	const char *k = strstr(kid, "/keys/");
	if (!k)
		return false;
	char id[300];
	if ((size_t)snprintf(id, sizeof(id), "%s", k + 6) >= sizeof(id))
		return false;
	return strchr(id, '/') && parse_key_id(id, name, nl, ver, vl) && ver[0];
}

/* --- the bearer challenge ------------------------------------------------------ */

/* One parameter of `Bearer a="x", b="y"`. */
static bool challenge_param(const char *h, const char *name, char *out, size_t ol)
{
	size_t nl = strlen(name);
	for (const char *p = h; (p = strstr(p, name)); p += nl) {
		bool start = p == h || p[-1] == ' ' || p[-1] == ',';
		const char *q = p + nl;
		while (*q == ' ')
			q++;
		if (!start || *q != '=')
			continue;
		q++;
		while (*q == ' ')
			q++;
		bool quoted = *q == '"';
		if (quoted)
			q++;
		size_t n = quoted ? strcspn(q, "\"") : strcspn(q, ", ");
		if (n >= ol)
			return false;
		memcpy(out, q, n);
		out[n] = 0;
		return true;
	}
	return false;
}

/* "https://vault.azure.net/.default" -> "vault.azure.net" */
static void scope_host(const char *scope, char *out, size_t ol)
{
	const char *p = strstr(scope, "://");
	p = p ? p + 3 : scope;
	size_t n = strcspn(p, "/:");
	if (n >= ol)
		n = ol - 1;
	memcpy(out, p, n);
	out[n] = 0;
}

static bool host_ends_with(const char *host, const char *domain)
{
	size_t hl = strcspn(host, ":"), dl = strlen(domain);
	return dl && hl > dl && host[hl - dl - 1] == '.' &&
	       strncasecmp(host + hl - dl, domain, dl) == 0;
}

/* PROTOCOLS.md 2.5: scope = scope param, else resource + "/.default";
 * tenant = first path segment of authorization(_uri); the vault's host
 * must lie in the scope's domain, so a token is never handed to a host
 * outside it. */
static p11k_err apply_challenge(az_state *s, const char *hdr, provider_status *st)
{
	char scope[300], res[256], auth[300], tenant[128] = "";
	if (strncasecmp(hdr, "Bearer", 6) != 0) {
		snprintf(st->message, sizeof(st->message), "401 without a Bearer challenge");
		return P11K_ERR_ACCESS_DENIED;
	}
	if (!challenge_param(hdr, "scope", scope, sizeof(scope))) {
		if (!challenge_param(hdr, "resource", res, sizeof(res))) {
			snprintf(st->message, sizeof(st->message),
				 "bearer challenge without resource or scope");
			return P11K_ERR_BAD_REPLY;
		}
		size_t n = strlen(res);
		while (n && res[n - 1] == '/')
			res[--n] = 0;
		snprintf(scope, sizeof(scope), "%s/.default", res);
	}
	if (challenge_param(hdr, "authorization", auth, sizeof(auth)) ||
	    challenge_param(hdr, "authorization_uri", auth, sizeof(auth))) {
		const char *p = strstr(auth, "://");
		p = p ? strchr(p + 3, '/') : NULL;
		if (p) {
			size_t n = strcspn(p + 1, "/?");
			if (n < sizeof(tenant)) {
				memcpy(tenant, p + 1, n);
				tenant[n] = 0;
			}
		}
	}
	char dom[256];
	scope_host(scope, dom, sizeof(dom));
	if (s->verify_challenge && !host_ends_with(s->host, dom)) {
		snprintf(st->message, sizeof(st->message),
			 "the challenge resource '%.80s' does not match the vault host", dom);
		return P11K_ERR_ACCESS_DENIED;
	}
	char *ns = strdup(scope), *nt = tenant[0] ? strdup(tenant) : NULL;
	if (!ns) {
		free(nt);
		return P11K_ERR_NOMEM;
	}
	pthread_mutex_lock(&s->lock);
	free(s->scope);
	s->scope = ns;
	if (nt) {
		free(s->tenant);
		s->tenant = nt;
	}
	pthread_mutex_unlock(&s->lock);
	log_debug(COMP, "bearer challenge: scope %s, tenant %s", scope,
		  tenant[0] ? tenant : "(none)");
	return P11K_OK;
}

/* --- one call ------------------------------------------------------------------ */

typedef struct call {
	az_state *s;
	const char *method;
	const char *url;
	const char *token; /* secure memory */
	const char *body;  /* may hold key material */
	size_t bodylen;
} call_t;

static p11k_err build(void *arg, int attempt, http_request *req, provider_status *st)
{
	call_t *c = arg;
	(void)attempt;
	(void)st;
	size_t al = strlen(c->token) + 8;
	char *authz = sec_alloc(al);
	if (!authz)
		return P11K_ERR_NOMEM;
	snprintf(authz, al, "Bearer %s", c->token);
	p11k_err e = P11K_OK;
	snprintf(req->method, sizeof(req->method), "%s", c->method);
	if (!(req->url = strdup(c->url)) || !http_header_add(req, "Authorization", authz) ||
	    (c->body && !http_header_add(req, "Content-Type", "application/json")))
		e = P11K_ERR_NOMEM;
	sec_free(authz);
	if (e == P11K_OK && c->body) {
		if (!(req->body = malloc(c->bodylen ? c->bodylen : 1)))
			return P11K_ERR_NOMEM;
		memcpy(req->body, c->body, c->bodylen);
		req->bodylen = c->bodylen;
		req->body_secret = true;
	}
	return e;
}

/* method + path (under vault_url, without the query) with an optional
 * JSON body; on success *reply is the parsed JSON. One 401 with a bearer
 * challenge is honoured: new scope/tenant, fresh token, one more try. */
static p11k_err vault_call(az_state *s, const char *op, const char *method, const char *path,
			   json_t *req, json_t **reply, provider_status *st)
{
	char url[1024];
	*reply = NULL;
	if ((size_t)snprintf(url, sizeof(url), "%s%s?api-version=%s", s->vault_url, path,
			     s->api_version) >= sizeof(url))
		return st->err = P11K_ERR_INTERNAL;
	char *body = req ? json_dumps(req, JSON_COMPACT) : NULL;
	if (req && !body)
		return st->err = P11K_ERR_NOMEM;
	p11k_err e = P11K_OK;
	bool refused = false; /* the challenge itself was refused: keep its reason */
	http_response resp;
	http_response_init(&resp, AZ_MAX_REPLY);
	for (int round = 0; round < 2; round++) {
		char *scope = NULL, *tenant = NULL, *token = NULL;
		pthread_mutex_lock(&s->lock);
		scope = strdup(s->scope);
		tenant = s->tenant ? strdup(s->tenant) : NULL;
		pthread_mutex_unlock(&s->lock);
		if (!scope)
			e = P11K_ERR_NOMEM;
		else
			e = entra_get_token(s->cred, scope, entra_tenant(s->cred) ? NULL : tenant,
					    &token, st);
		free(scope);
		free(tenant);
		if (e != P11K_OK)
			break;
		call_t c = {.s = s, .method = method, .url = url, .token = token,
			    .body = body, .bodylen = body ? strlen(body) : 0};
		http_response_free(&resp);
		e = http_call(s->http, build, &c, NULL, NULL, &resp, st);
		sec_free(token);
		if (e != P11K_OK || resp.status != 401 || round == 1)
			break;
		/* The token was refused: follow the challenge (PROTOCOLS.md
		 * 2.5 step 5), once. */
		entra_invalidate(s->cred);
		if (!resp.www_authenticate[0])
			break;
		p11k_err ce = apply_challenge(s, resp.www_authenticate, st);
		if (ce != P11K_OK) {
			e = ce;
			refused = true;
			break;
		}
	}
	if (body) {
		OPENSSL_cleanse(body, strlen(body));
		free(body);
	}
	if (resp.status) {
		st->http_status = resp.status;
		snprintf(st->request_id, sizeof(st->request_id), "%s", resp.request_id);
	}
	json_error_t je;
	if (e == P11K_OK && resp.status == 200) {
		*reply = json_loadb((const char *)resp.body.p, resp.body.len, 0, &je);
		if (!*reply) {
			snprintf(st->message, sizeof(st->message), "%s: reply is not JSON", op);
			e = P11K_ERR_BAD_REPLY;
		}
	} else if (!refused && (e == P11K_OK || resp.status)) {
		json_t *j = json_loadb((const char *)resp.body.p, resp.body.len, 0, &je);
		p11k_err me = map_error(resp.status, j, st, op);
		if (e == P11K_OK)
			e = me;
		json_decref(j);
	}
	if (e != P11K_OK)
		log_debug(COMP, "%s: %s (HTTP %ld, x-ms-request-id %s)", op, p11k_err_name(e),
			  resp.status, resp.request_id[0] ? resp.request_id : "-");
	http_response_free(&resp);
	st->err = e;
	return e;
}

/* --- key type cache --------------------------------------------------------------- */

static bool kty_is_oct(const char *kty)
{
	return kty && strncmp(kty, "oct", 3) == 0;
}

static void kty_put(az_state *s, const char *key_id, bool oct)
{
	pthread_mutex_lock(&s->lock);
	for (size_t i = 0; i < s->nkty; i++)
		if (strcmp(s->kty[i].key_id, key_id) == 0) {
			s->kty[i].oct = oct;
			pthread_mutex_unlock(&s->lock);
			return;
		}
	if (s->nkty < MAX_CACHED_KEYS) {
		char *d = strdup(key_id);
		if (d)
			s->kty[s->nkty++] = (kty_entry){.key_id = d, .oct = oct};
	}
	pthread_mutex_unlock(&s->lock);
}

static int kty_get(az_state *s, const char *key_id)
{
	int r = -1;
	pthread_mutex_lock(&s->lock);
	for (size_t i = 0; i < s->nkty; i++)
		if (strcmp(s->kty[i].key_id, key_id) == 0)
			r = s->kty[i].oct;
	pthread_mutex_unlock(&s->lock);
	return r;
}

static p11k_err key_path(const char *key_id, const char *suffix, char *path, size_t pl,
			 char *name, size_t nl, provider_status *st)
{
	char ver[128];
	if (!parse_key_id(key_id, name, nl, ver, sizeof(ver))) {
		snprintf(st->message, sizeof(st->message),
			 "key id '%.100s' is not NAME or NAME/VERSION", key_id);
		return st->err = P11K_ERR_KEY_NOT_FOUND;
	}
	snprintf(path, pl, "/keys/%s%s%s%s", name, ver[0] ? "/" : "", ver, suffix);
	return P11K_OK;
}

/* --- provider operations ---------------------------------------------------------- */

static p11k_err az_describe(void *state, const char *key_id, key_info *out,
			    provider_status *st)
{
	az_state *s = state;
	char path[400], name[128];
	memset(out, 0, sizeof(*out));
	p11k_err e = key_path(key_id, "", path, sizeof(path), name, sizeof(name), st);
	json_t *reply = NULL;
	if (e == P11K_OK)
		e = vault_call(s, "GetKey", "GET", path, NULL, &reply, st);
	if (e != P11K_OK)
		return e;
	json_t *key = json_object_get(reply, "key");
	json_t *attrs = json_object_get(reply, "attributes");
	json_t *en = json_object_get(attrs, "enabled");
	const char *kid = json_string_value(json_object_get(key, "kid"));
	const char *kty = json_string_value(json_object_get(key, "kty"));
	char kn[128], kv[128];
	if (!json_is_boolean(en) || !kid || !kty || !parse_kid(kid, kn, sizeof(kn), kv, sizeof(kv))) {
		snprintf(st->message, sizeof(st->message), "GetKey: reply lacks kid, kty or "
							   "attributes.enabled");
		json_decref(reply);
		return st->err = P11K_ERR_BAD_REPLY;
	}
	kty_put(s, key_id, kty_is_oct(kty));
	out->state = json_is_true(en) ? KEY_STATE_ENABLED : KEY_STATE_DISABLED;
	snprintf(out->key_id, sizeof(out->key_id), "%s", kid);
	snprintf(out->primary_version, sizeof(out->primary_version), "%s", kv);
	json_t *cr = json_object_get(attrs, "created");
	json_t *up = json_object_get(attrs, "updated");
	if (json_is_integer(cr) && json_integer_value(cr) > 0)
		out->created_at = (uint64_t)json_integer_value(cr);
	if (json_is_integer(up) && json_integer_value(up) > 0)
		out->rotated_at = (uint64_t)json_integer_value(up);
	json_decref(reply);
	return P11K_OK;
}

static bool sha256(const uint8_t *p, size_t n, uint8_t out[AAD_HASH_LEN])
{
	EVP_MD *md = EVP_MD_fetch(crypto_libctx(), "SHA256", NULL);
	unsigned int l = 0;
	bool ok = md && EVP_Digest(p, n, out, &l, md, NULL) == 1 && l == AAD_HASH_LEN;
	EVP_MD_free(md);
	return ok;
}

static void wipe_string(json_t *v)
{
	if (json_is_string(v))
		OPENSSL_cleanse((char *)json_string_value(v), json_string_length(v));
}

/* POST .../{wrapkey|unwrapkey} {"alg", "value"} -> kid, value (secure). */
static p11k_err wrap_op(az_state *s, const char *op, const char *path, const char *alg,
			const uint8_t *in, size_t inlen, bool secret_out, char *kid, size_t kl,
			uint8_t **out, size_t *outlen, provider_status *st)
{
	char *v = b64url_encode(in, inlen);
	json_t *req = v ? json_pack("{s:s, s:s}", "alg", alg, "value", v) : NULL;
	if (v) {
		OPENSSL_cleanse(v, strlen(v));
		free(v);
	}
	if (!req)
		return st->err = P11K_ERR_NOMEM;
	json_t *reply = NULL;
	p11k_err e = vault_call(s, op, "POST", path, req, &reply, st);
	wipe_string(json_object_get(req, "value"));
	json_decref(req);
	if (e != P11K_OK)
		return e;
	json_t *val = json_object_get(reply, "value");
	const char *k = json_string_value(json_object_get(reply, "kid"));
	if (!k || strlen(k) >= kl || !json_is_string(val) ||
	    !b64url_decode(json_string_value(val), json_string_length(val), secret_out, out,
			   outlen)) {
		snprintf(st->message, sizeof(st->message), "%s: reply lacks kid or value", op);
		e = st->err = P11K_ERR_BAD_REPLY;
	} else {
		snprintf(kid, kl, "%s", k);
	}
	wipe_string(val);
	json_decref(reply);
	return e;
}

static p11k_err az_encrypt(void *state, const char *key_id, const uint8_t *pt, size_t ptlen,
			   const uint8_t *aad, size_t aadlen, uint8_t **blob, size_t *bloblen,
			   char *kvout, size_t kvlen, provider_status *st)
{
	az_state *s = state;
	char path[400], name[128], kid[MAX_KID];
	p11k_err e = key_path(key_id, "/wrapkey", path, sizeof(path), name, sizeof(name), st);
	if (e != P11K_OK)
		return e;
	int oct = kty_get(s, key_id);
	if (oct < 0) {
		/* The algorithm follows the key type: one GetKey per key id. */
		key_info ki;
		if ((e = az_describe(s, key_id, &ki, st)) != P11K_OK)
			return e;
		oct = kty_get(s, key_id);
		if (oct < 0)
			return st->err = P11K_ERR_NOMEM;
	}
	const char *alg = oct ? "CKM_AES_KEY_WRAP_PAD" : "RSA-OAEP-256";
	uint8_t *in = sec_alloc(AAD_HASH_LEN + ptlen);
	if (!in)
		return st->err = P11K_ERR_NOMEM;
	if (!sha256(aad, aadlen, in)) {
		sec_free(in);
		return st->err = P11K_ERR_INTERNAL;
	}
	memcpy(in + AAD_HASH_LEN, pt, ptlen);
	uint8_t *w = NULL;
	size_t wl = 0;
	e = wrap_op(s, "wrapKey", path, alg, in, AAD_HASH_LEN + ptlen, false, kid, sizeof(kid),
		    &w, &wl, st);
	sec_free(in);
	if (e != P11K_OK)
		return e;
	char kn[128], kv[128];
	if (!parse_kid(kid, kn, sizeof(kn), kv, sizeof(kv)) || strcasecmp(kn, name) != 0) {
		snprintf(st->message, sizeof(st->message), "wrapKey: reply names another key");
		free(w);
		return st->err = P11K_ERR_BAD_REPLY;
	}
	size_t al = strlen(alg), kl = strlen(kid);
	size_t n = 4 + 1 + 1 + al + 2 + kl + wl;
	uint8_t *b = malloc(n), *p = b;
	if (!b) {
		free(w);
		return st->err = P11K_ERR_NOMEM;
	}
	memcpy(p, BLOB_MAGIC, 4);
	p += 4;
	*p++ = BLOB_VERSION;
	*p++ = (uint8_t)al;
	memcpy(p, alg, al);
	p += al;
	*p++ = (uint8_t)(kl >> 8);
	*p++ = (uint8_t)kl;
	memcpy(p, kid, kl);
	p += kl;
	memcpy(p, w, wl);
	free(w);
	*blob = b;
	*bloblen = n;
	snprintf(kvout, kvlen, "%s", kv);
	return P11K_OK;
}

static p11k_err az_decrypt(void *state, const char *key_id, const uint8_t *blob,
			   size_t bloblen, const uint8_t *aad, size_t aadlen, uint8_t **pt,
			   size_t *ptlen, provider_status *st)
{
	az_state *s = state;
	char name[128], ver[128], alg[MAX_ALG + 1], kid[MAX_KID], kn[128], kv[128];
	*pt = NULL;
	*ptlen = 0;
	if (!parse_key_id(key_id, name, sizeof(name), ver, sizeof(ver))) {
		snprintf(st->message, sizeof(st->message), "key id '%.100s' is malformed", key_id);
		return st->err = P11K_ERR_KEY_NOT_FOUND;
	}
	/* Parse the header; every length is checked against what is left. */
	size_t off = 0, al, kl;
	bool ok = bloblen > 6 && memcmp(blob, BLOB_MAGIC, 4) == 0 && blob[4] == BLOB_VERSION;
	if (ok) {
		al = blob[5];
		off = 6;
		ok = al > 0 && al <= MAX_ALG && bloblen > off + al + 2;
	}
	if (ok) {
		memcpy(alg, blob + off, al);
		alg[al] = 0;
		off += al;
		kl = ((size_t)blob[off] << 8) | blob[off + 1];
		off += 2;
		ok = kl > 0 && kl < MAX_KID && bloblen > off + kl;
	}
	if (ok) {
		memcpy(kid, blob + off, kl);
		kid[kl] = 0;
		off += kl;
		ok = memchr(kid, 0, kl) == NULL && parse_kid(kid, kn, sizeof(kn), kv, sizeof(kv)) &&
		     (strcmp(alg, "RSA-OAEP-256") == 0 || strcmp(alg, "RSA-OAEP") == 0 ||
		      strcmp(alg, "CKM_AES_KEY_WRAP_PAD") == 0 ||
		      strcmp(alg, "CKM_AES_KEY_WRAP") == 0 || strcmp(alg, "A256KW") == 0);
	}
	if (!ok) {
		snprintf(st->message, sizeof(st->message), "not an Azure key blob");
		return st->err = P11K_ERR_INVALID_CIPHERTEXT;
	}
	if (strcasecmp(kn, name) != 0) {
		snprintf(st->message, sizeof(st->message),
			 "blob was made by key %.60s, not %.60s", kn, name);
		return st->err = P11K_ERR_INVALID_CIPHERTEXT;
	}
	char path[400];
	snprintf(path, sizeof(path), "/keys/%s/%s/unwrapkey", kn, kv);
	uint8_t *out = NULL;
	size_t outlen = 0;
	char rkid[MAX_KID];
	p11k_err e = wrap_op(s, "unwrapKey", path, alg, blob + off, bloblen - off, true, rkid,
			     sizeof(rkid), &out, &outlen, st);
	if (e == P11K_ERR_INTERNAL && strncmp(st->error_name, "BadParameter", 12) == 0)
		/* The service could not unwrap the value: a damaged blob. */
		e = st->err = P11K_ERR_INVALID_CIPHERTEXT;
	if (e != P11K_OK)
		return e;
	uint8_t h[AAD_HASH_LEN];
	if (!sha256(aad, aadlen, h)) {
		sec_free(out);
		return st->err = P11K_ERR_INTERNAL;
	}
	if (outlen < AAD_HASH_LEN || CRYPTO_memcmp(out, h, AAD_HASH_LEN) != 0) {
		sec_free(out);
		snprintf(st->message, sizeof(st->message), "the blob is bound to other AAD");
		return st->err = P11K_ERR_INVALID_CIPHERTEXT;
	}
	uint8_t *r = sec_alloc(outlen - AAD_HASH_LEN ? outlen - AAD_HASH_LEN : 1);
	if (!r) {
		sec_free(out);
		return st->err = P11K_ERR_NOMEM;
	}
	memcpy(r, out + AAD_HASH_LEN, outlen - AAD_HASH_LEN);
	*pt = r;
	*ptlen = outlen - AAD_HASH_LEN;
	sec_free(out);
	return P11K_OK;
}

static size_t az_max_blob_len(void *state, size_t ptlen)
{
	(void)state;
	/* Header, the longest kid, then the larger of an RSA-4096 block and
	 * an RFC 5649 wrap of hash + plaintext (8-byte ICV, padded to 8). */
	size_t w = AAD_HASH_LEN + ptlen + 16;
	if (w < 512)
		w = 512;
	return 4 + 1 + 1 + MAX_ALG + 2 + MAX_KID + w;
}

/* --- creation (no network) ------------------------------------------------------ */

static const char *str_field(const json_t *cfg, const char *k)
{
	return json_string_value(json_object_get(cfg, k));
}

static void az_destroy(void *state)
{
	az_state *s = state;
	if (!s)
		return;
	entra_free(s->cred);
	http_client_free(s->http);
	http_client_free(s->idhttp);
	http_client_free(s->loginhttp);
	for (size_t i = 0; i < s->nkty; i++)
		free(s->kty[i].key_id);
	free(s->vault_url);
	free(s->host);
	free(s->api_version);
	free(s->default_key);
	free(s->scope);
	free(s->tenant);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

static bool is_loopback_host(const char *h)
{
	return strncmp(h, "127.", 4) == 0 || strncmp(h, "[::1]", 5) == 0 ||
	       strncasecmp(h, "localhost", 9) == 0;
}

static p11k_err az_create(const json_t *cfg, const char *cfg_path, void **state, char *why,
			  size_t wl)
{
	(void)cfg_path;
	az_state *s = calloc(1, sizeof(*s));
	if (!s || pthread_mutex_init(&s->lock, NULL) != 0) {
		free(s);
		return P11K_ERR_NOMEM;
	}
	p11k_err e = P11K_OK;
	const char *url = str_field(cfg, "vault_url");
	if (!url || strncmp(url, "https://", 8) != 0) {
		snprintf(why, wl, "vault_url %.100s: only https:// URLs are accepted",
			 url ? url : "");
		e = P11K_ERR_ACCESS_DENIED;
	} else if (!(s->vault_url = strdup(url))) {
		e = P11K_ERR_NOMEM;
	}
	if (e == P11K_OK) {
		size_t n = strlen(s->vault_url);
		while (n > 8 && s->vault_url[n - 1] == '/')
			s->vault_url[--n] = 0;
		const char *h = s->vault_url + 8;
		if (!*h || strchr(h, '/') || strchr(h, '?') || strchr(h, '@')) {
			snprintf(why, wl, "vault_url %.100s: give scheme and host only", url);
			e = P11K_ERR_ACCESS_DENIED;
		} else if (!(s->host = strdup(h))) {
			e = P11K_ERR_NOMEM;
		}
	}
	const char *res = str_field(cfg, "resource");
	bool hsm = false;
	if (e == P11K_OK) {
		char hl[256];
		snprintf(hl, sizeof(hl), "%s", s->host);
		hl[strcspn(hl, ":")] = 0;
		hsm = res ? strcmp(res, "hsm") == 0 : host_ends_with(hl, "managedhsm.azure.net");
		s->verify_challenge = !is_loopback_host(s->host);
		s->scope = strdup(hsm ? "https://managedhsm.azure.net/.default"
				      : "https://vault.azure.net/.default");
		const char *av = str_field(cfg, "api_version");
		s->api_version = strdup(av ? av : "7.4");
		if (!s->scope || !s->api_version)
			e = P11K_ERR_NOMEM;
		for (const char *p = s->api_version; e == P11K_OK && *p; p++)
			if (!isalnum((unsigned char)*p) && *p != '.' && *p != '-') {
				snprintf(why, wl, "api_version is malformed");
				e = P11K_ERR_ACCESS_DENIED;
			}
	}
	json_t *keys = json_object_get(cfg, "keys");
	const char *seal = str_field(cfg, "seal_with");
	if (!seal && json_array_size(keys))
		seal = str_field(json_array_get(keys, 0), "id");
	if (e == P11K_OK && !seal) {
		snprintf(why, wl, "name the Key Vault key that seals the token: \"seal_with\" or "
				  "a first entry in \"keys\" (NAME or NAME/VERSION)");
		e = P11K_ERR_KEY_NOT_FOUND;
	}
	char n1[128], v1[128];
	if (e == P11K_OK && !parse_key_id(seal, n1, sizeof(n1), v1, sizeof(v1))) {
		snprintf(why, wl, "key '%.100s' is not NAME or NAME/VERSION", seal);
		e = P11K_ERR_KEY_NOT_FOUND;
	}
	if (e == P11K_OK && !(s->default_key = strdup(seal)))
		e = P11K_ERR_NOMEM;
	if (e == P11K_OK) {
		const char *ca = str_field(cfg, "ca_file");
		http_options vo = {.ca_file = ca};
		/* Managed identity endpoints speak plain http: IMDS at the
		 * link-local address, App Service on loopback. No bearer token
		 * is ever sent on this client. */
		http_options io = {.ca_file = ca, .allow_plain_metadata = true,
				   .allow_plain_loopback = true};
		s->http = http_client_new(&vo);
		s->loginhttp = http_client_new(&vo);
		s->idhttp = http_client_new(&io);
		if (!s->http || !s->idhttp || !s->loginhttp)
			e = P11K_ERR_NOMEM;
	}
	if (e == P11K_OK) {
		json_t *mi = json_object_get(cfg, "managed_identity");
		entra_options eo = {
			.tenant_id = str_field(cfg, "tenant_id"),
			.client_id = str_field(cfg, "client_id"),
			.client_secret_file = str_field(cfg, "client_secret_file"),
			.client_certificate_file = str_field(cfg, "client_certificate_file"),
			.federated_token_file = str_field(cfg, "federated_token_file"),
			.authority_host = str_field(cfg, "authority_host"),
			.managed_identity = json_is_boolean(mi) ? json_is_true(mi) : -1,
			.login_http = s->loginhttp,
			.identity_http = s->idhttp,
		};
		if (!(s->cred = entra_new(&eo, why, wl)))
			e = P11K_ERR_ACCESS_DENIED;
	}
	if (e != P11K_OK) {
		az_destroy(s);
		return e;
	}
	log_debug(COMP, "vault %s (%s), credential %s", s->vault_url, hsm ? "hsm" : "vault",
		  entra_source_name(s->cred));
	*state = s;
	return P11K_OK;
}

void azure_test_set_transport(void *state, http_transport_fn fn, void *arg,
			      http_sleep_fn sleep_fn)
{
	az_state *s = state;
	http_client *cs[] = {s->http, s->idhttp, s->loginhttp};
	for (size_t i = 0; i < ARRAY_SIZE(cs); i++) {
		http_client_set_transport(cs[i], fn, arg);
		http_client_set_sleep(cs[i], sleep_fn, NULL);
	}
}

static const char *az_default_seal_key(void *state)
{
	return ((az_state *)state)->default_key;
}

const provider_ops azure_provider_ops = {
	.type = "azure",
	.fields = azure_fields,
	.create = az_create,
	.destroy = az_destroy,
	.default_seal_key = az_default_seal_key,
	.describe = az_describe,
	.encrypt = az_encrypt,
	.decrypt = az_decrypt,
	.max_blob_len = az_max_blob_len,
};
