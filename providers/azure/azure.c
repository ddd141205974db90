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
 *
 * Standard mechanisms (remote_crypt, docs/REMOTE.md): RSA-OAEP(-256),
 * AES key wrap (A*KW, CKM_AES_KEY_WRAP_PAD) and AES-GCM run by the
 * service in their standard formats, no header, no AAD binding. Their
 * results name no key version, so an unversioned decryption that fails
 * is retried with the older enabled versions (GetKeyVersions).
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
#include "common/crypto.h"
#include "common/log.h"
#include "common/secmem.h"
#include "providers/common/codec.h"
#include "providers/common/errmap.h"
#include "providers/common/http.h"
#include "providers/common/util.h"
#include "providers/common/versions.h"
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
static const errmap_entry az_errors[] = {
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
	return errmap_lookup(az_errors, ARRAY_SIZE(az_errors), code, known);
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

/* method + url (under vault_url, with the query) and an optional JSON
 * body; on success *reply is the parsed JSON. One 401 with a bearer
 * challenge is honoured: new scope/tenant, fresh token, one more try.
 * *vstatus (may be NULL) receives the vault's HTTP status, 0 when it did
 * not answer (token or transport failure). */
static p11k_err vault_call_url(az_state *s, const char *op, const char *method,
			       const char *url, json_t *req, json_t **reply, long *vstatus,
			       provider_status *st)
{
	*reply = NULL;
	if (vstatus)
		*vstatus = 0;
	/* This call's detail only, never a previous call's. */
	st->http_status = 0;
	st->error_name[0] = 0;
	st->request_id[0] = 0;
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
		if (vstatus)
			*vstatus = resp.status;
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

/* method + path (under vault_url, without the query). */
static p11k_err vault_call(az_state *s, const char *op, const char *method, const char *path,
			   json_t *req, json_t **reply, long *vstatus, provider_status *st)
{
	char url[1024];
	*reply = NULL;
	if ((size_t)snprintf(url, sizeof(url), "%s%s?api-version=%s", s->vault_url, path,
			     s->api_version) >= sizeof(url))
		return st->err = P11K_ERR_INTERNAL;
	return vault_call_url(s, op, method, url, req, reply, vstatus, st);
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

/* GetKey: the key bundle, checked to have kid, kty and attributes.enabled;
 * the key type is cached on the way. */
static p11k_err get_key(az_state *s, const char *key_id, json_t **bundle, char *kv,
			size_t kvl, provider_status *st)
{
	char path[400], name[128], kn[128];
	*bundle = NULL;
	p11k_err e = key_path(key_id, "", path, sizeof(path), name, sizeof(name), st);
	json_t *reply = NULL;
	if (e == P11K_OK)
		e = vault_call(s, "GetKey", "GET", path, NULL, &reply, NULL, st);
	if (e != P11K_OK)
		return e;
	json_t *key = json_object_get(reply, "key");
	json_t *en = json_object_get(json_object_get(reply, "attributes"), "enabled");
	const char *kid = json_string_value(json_object_get(key, "kid"));
	const char *kty = json_string_value(json_object_get(key, "kty"));
	if (!json_is_boolean(en) || !kid || !kty || !parse_kid(kid, kn, sizeof(kn), kv, kvl)) {
		snprintf(st->message, sizeof(st->message), "GetKey: reply lacks kid, kty or "
							   "attributes.enabled");
		json_decref(reply);
		return st->err = P11K_ERR_BAD_REPLY;
	}
	kty_put(s, key_id, kty_is_oct(kty));
	*bundle = reply;
	return P11K_OK;
}

static p11k_err az_describe(void *state, const char *key_id, key_info *out,
			    provider_status *st)
{
	az_state *s = state;
	char kv[128];
	memset(out, 0, sizeof(*out));
	json_t *reply = NULL;
	p11k_err e = get_key(s, key_id, &reply, kv, sizeof(kv), st);
	if (e != P11K_OK)
		return e;
	json_t *attrs = json_object_get(reply, "attributes");
	json_t *en = json_object_get(attrs, "enabled");
	const char *kid = json_string_value(json_object_get(json_object_get(reply, "key"), "kid"));
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

/* A 400 from a cryptographic call (BadParameter and its kin) is either
 * about the algorithm and the key (RSA-OAEP on an oct key, A128KW on a
 * 256-bit key, GCM on a vault) or about the data; the service tells them
 * apart only in its message. The data's fault, on decryption, is a bad
 * ciphertext (wrong key, tampered, truncated). */
static p11k_err classify_400(p11k_err e, long vstatus, bool reverse, provider_status *st)
{
	static const char *const key_type_words[] = {
		"not supported for key", "not supported by key", "not supported by this",
		"not valid for key", "key type", "key size", "needs a ", "invalid algorithm",
		"unsupported algorithm", "algorithm is not supported", "not compatible",
	};
	if (vstatus != 400 || !st->error_name[0] ||
	    (e != P11K_ERR_INTERNAL && e != P11K_ERR_BAD_REPLY))
		return e;
	for (size_t i = 0; i < ARRAY_SIZE(key_type_words); i++)
		if (strcasestr(st->message, key_type_words[i]))
			return st->err = P11K_ERR_KEY_TYPE;
	return reverse ? (st->err = P11K_ERR_INVALID_CIPHERTEXT) : e;
}

/* One cryptographic call of the keys API: POST .../{wrapkey, unwrapkey,
 * encrypt, decrypt} with alg, value and, for AES-GCM, iv, tag and aad
 * (all base64url without padding); the reply's kid and value and, from
 * a GCM encryption, the iv and tag the service generated. */
typedef struct kv_crypt {
	const char *op;   /* "wrapKey", "decrypt", ...: for messages */
	const char *path; /* /keys/NAME[/VERSION]/OPERATION */
	const char *alg;
	const uint8_t *in;
	size_t inlen;
	const uint8_t *iv, *tag, *aad; /* NULL: not sent */
	size_t ivlen, taglen, aadlen;
	bool reverse;    /* decrypt/unwrap: a 400 about the data is a bad ciphertext */
	bool secret_out; /* out in secure memory */
	bool want_iv_tag;
	/* Results. */
	char kid[MAX_KID];
	uint8_t *out; /* secure memory when secret_out, else malloc'd */
	size_t outlen;
	uint8_t *riv, *rtag; /* malloc'd, only with want_iv_tag */
	size_t rivlen, rtaglen;
} kv_crypt;

static void kv_crypt_free(kv_crypt *c)
{
	if (c->secret_out)
		sec_free(c->out);
	else
		free(c->out);
	free(c->riv);
	free(c->rtag);
	c->out = c->riv = c->rtag = NULL;
}

static bool put_b64(json_t *o, const char *name, const uint8_t *p, size_t n)
{
	char *v = b64url_encode(p, n);
	if (!v)
		return false;
	bool ok = json_object_set_new(o, name, json_string(v)) == 0;
	OPENSSL_cleanse(v, strlen(v));
	free(v);
	return ok;
}

static bool get_b64(json_t *reply, const char *name, bool secret, uint8_t **out, size_t *len)
{
	json_t *v = json_object_get(reply, name);
	return json_is_string(v) &&
	       b64url_decode(json_string_value(v), json_string_length(v), secret, out, len);
}

static p11k_err kv_crypt_call(az_state *s, kv_crypt *c, provider_status *st)
{
	c->out = c->riv = c->rtag = NULL;
	c->outlen = c->rivlen = c->rtaglen = 0;
	c->kid[0] = 0;
	json_t *req = json_object();
	bool ok = req && json_object_set_new(req, "alg", json_string(c->alg)) == 0 &&
		  put_b64(req, "value", c->in, c->inlen) &&
		  (!c->iv || put_b64(req, "iv", c->iv, c->ivlen)) &&
		  (!c->tag || put_b64(req, "tag", c->tag, c->taglen)) &&
		  (!c->aad || put_b64(req, "aad", c->aad, c->aadlen));
	if (!ok) {
		if (req)
			wipe_json_string(json_object_get(req, "value"));
		json_decref(req);
		return st->err = P11K_ERR_NOMEM;
	}
	json_t *reply = NULL;
	long vstatus = 0;
	p11k_err e = vault_call(s, c->op, "POST", c->path, req, &reply, &vstatus, st);
	wipe_json_string(json_object_get(req, "value"));
	json_decref(req);
	if (e != P11K_OK)
		return classify_400(e, vstatus, c->reverse, st);
	const char *k = json_string_value(json_object_get(reply, "kid"));
	if (!k || strlen(k) >= sizeof(c->kid) ||
	    !get_b64(reply, "value", c->secret_out, &c->out, &c->outlen)) {
		snprintf(st->message, sizeof(st->message), "%s: reply lacks kid or value", c->op);
		e = st->err = P11K_ERR_BAD_REPLY;
	} else if (c->want_iv_tag && (!get_b64(reply, "iv", false, &c->riv, &c->rivlen) ||
				      !get_b64(reply, "tag", false, &c->rtag, &c->rtaglen))) {
		snprintf(st->message, sizeof(st->message), "%s: reply lacks iv or tag", c->op);
		e = st->err = P11K_ERR_BAD_REPLY;
	} else {
		snprintf(c->kid, sizeof(c->kid), "%s", k);
	}
	wipe_json_string(json_object_get(reply, "value"));
	json_decref(reply);
	if (e != P11K_OK)
		kv_crypt_free(c);
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
	kv_crypt c = {.op = "wrapKey", .path = path, .alg = alg, .in = in,
		      .inlen = AAD_HASH_LEN + ptlen};
	e = kv_crypt_call(s, &c, st);
	sec_free(in);
	if (e != P11K_OK)
		return e;
	uint8_t *w = c.out;
	size_t wl = c.outlen;
	snprintf(kid, sizeof(kid), "%s", c.kid);
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
	/* A 400 about the data (BadParameter): the service could not unwrap
	 * the value, a damaged blob. */
	kv_crypt c = {.op = "unwrapKey", .path = path, .alg = alg, .in = blob + off,
		      .inlen = bloblen - off, .reverse = true, .secret_out = true};
	p11k_err e = kv_crypt_call(s, &c, st);
	if (e != P11K_OK)
		return e;
	uint8_t *out = c.out;
	size_t outlen = c.outlen;
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

/* --- standard mechanisms (remote_crypt, rsa_public) -------------------------------- */

#define MAX_VERSION_TRIES 8   /* older versions tried after the current one */
#define MAX_VERSION_PAGES 4   /* GetKeyVersions pages followed */
#define MAX_LISTED_VERSIONS 1024

/* The service's name of r->alg for the key size the configuration declares. */
static const char *ralg_name(const remote_req *r)
{
	size_t bits = r->key_bits ? r->key_bits : 256;
	switch (r->alg) {
	case RALG_RSA_OAEP_SHA1:
		return "RSA-OAEP";
	case RALG_RSA_OAEP_SHA256:
		return "RSA-OAEP-256";
	case RALG_AES_KW:
		return bits == 128 ? "A128KW" : bits == 192 ? "A192KW" : bits == 256 ? "A256KW" : NULL;
	case RALG_AES_KWP:
		return "CKM_AES_KEY_WRAP_PAD";
	case RALG_AES_GCM:
		return bits == 128 ? "A128GCM" : bits == 192 ? "A192GCM" : bits == 256 ? "A256GCM" : NULL;
	}
	return NULL;
}

/* The service has AES key wrap only as wrapKey/unwrapKey and AES-GCM only
 * as encrypt/decrypt; RSA-OAEP as either, as the caller says. */
static bool ralg_key_op(const remote_req *r)
{
	if (r->alg == RALG_AES_KW || r->alg == RALG_AES_KWP)
		return true;
	if (r->alg == RALG_AES_GCM)
		return false;
	return r->key_op;
}

/* r on one version of the key ("" = the current one). For AES-GCM
 * encryption the reply must carry a 12-byte IV and a 16-byte tag; the IV
 * goes to r->iv and *out is ciphertext || tag. */
static p11k_err crypt_version(az_state *s, const char *name, const char *ver, remote_req *r,
			      const char *alg, uint8_t **out, size_t *outlen, provider_status *st)
{
	bool key_op = ralg_key_op(r), gcm = r->alg == RALG_AES_GCM;
	const char *op = key_op ? (r->encrypt ? "wrapKey" : "unwrapKey")
				: (r->encrypt ? "encrypt" : "decrypt");
	char path[400];
	snprintf(path, sizeof(path), "/keys/%s%s%s/%s", name, ver[0] ? "/" : "", ver,
		 key_op ? (r->encrypt ? "wrapkey" : "unwrapkey")
			: (r->encrypt ? "encrypt" : "decrypt"));
	kv_crypt c = {.op = op, .path = path, .alg = alg, .in = r->in, .inlen = r->inlen,
		      .reverse = !r->encrypt, .secret_out = true,
		      .want_iv_tag = gcm && r->encrypt};
	if (gcm && r->aadlen) {
		c.aad = r->aad;
		c.aadlen = r->aadlen;
	}
	if (gcm && !r->encrypt) {
		c.inlen = r->inlen - REMOTE_GCM_TAG_LEN;
		c.tag = r->in + c.inlen;
		c.taglen = REMOTE_GCM_TAG_LEN;
		c.iv = r->iv;
		c.ivlen = REMOTE_GCM_IV_LEN;
	}
	p11k_err e = kv_crypt_call(s, &c, st);
	if (e != P11K_OK)
		return e;
	char kn[128], kv[128];
	if (!parse_kid(c.kid, kn, sizeof(kn), kv, sizeof(kv)) || strcasecmp(kn, name) != 0 ||
	    (ver[0] && strcasecmp(kv, ver) != 0)) {
		snprintf(st->message, sizeof(st->message), "%s: reply names another key", op);
		kv_crypt_free(&c);
		return st->err = P11K_ERR_BAD_REPLY;
	}
	if (!c.want_iv_tag) {
		*out = c.out;
		*outlen = c.outlen;
		c.out = NULL;
		kv_crypt_free(&c);
		return P11K_OK;
	}
	if (c.rivlen != REMOTE_GCM_IV_LEN || c.rtaglen != REMOTE_GCM_TAG_LEN) {
		snprintf(st->message, sizeof(st->message),
			 "%s: the service gave a %zu-byte IV and a %zu-byte tag, not %d and %d", op,
			 c.rivlen, c.rtaglen, REMOTE_GCM_IV_LEN, REMOTE_GCM_TAG_LEN);
		kv_crypt_free(&c);
		return st->err = P11K_ERR_BAD_REPLY;
	}
	uint8_t *o = sec_alloc(c.outlen + REMOTE_GCM_TAG_LEN);
	if (!o) {
		kv_crypt_free(&c);
		return st->err = P11K_ERR_NOMEM;
	}
	memcpy(o, c.out, c.outlen);
	memcpy(o + c.outlen, c.rtag, REMOTE_GCM_TAG_LEN);
	memcpy(r->iv, c.riv, REMOTE_GCM_IV_LEN);
	*out = o;
	*outlen = c.outlen + REMOTE_GCM_TAG_LEN;
	kv_crypt_free(&c);
	return P11K_OK;
}

typedef struct ver_entry {
	char v[128];
	int64_t created;
	bool enabled;
	size_t idx; /* listing order, for equal creation times */
} ver_entry;

/* Newest first. */
static int ver_cmp(const void *a, const void *b)
{
	const ver_entry *x = a, *y = b;
	if (x->created != y->created)
		return x->created > y->created ? -1 : 1;
	return x->idx > y->idx ? -1 : x->idx < y->idx ? 1 : 0;
}

/* A nextLink is followed only under the vault (the service writes the
 * host with ":443"), so the bearer token never goes anywhere else. */
static bool next_url(const az_state *s, const char *link, char *url, size_t ul)
{
	size_t vl = strlen(s->vault_url);
	const char *rest = NULL;
	char alt[300];
	if (strncasecmp(link, s->vault_url, vl) == 0 && link[vl] == '/')
		rest = link + vl;
	else if (!strchr(s->host, ':') &&
		 (size_t)snprintf(alt, sizeof(alt), "https://%s:443", s->host) < sizeof(alt) &&
		 strncasecmp(link, alt, strlen(alt)) == 0)
		rest = link + strlen(alt);
	if (!rest || strncmp(rest, "/keys/", 6) != 0)
		return false;
	for (const char *p = rest; *p; p++)
		if ((unsigned char)*p <= ' ' || (unsigned char)*p >= 0x7f || *p == '#')
			return false;
	bool has_api = strstr(rest, "api-version=") != NULL;
	int n = snprintf(url, ul, "%s%s%s%s", s->vault_url, rest,
			 has_api ? "" : strchr(rest, '?') ? "&api-version=" : "?api-version=",
			 has_api ? "" : s->api_version);
	return n > 0 && (size_t)n < ul;
}

/* GetKeyVersions of NAME: version, enabled, created; *list malloc'd. */
static p11k_err list_versions(az_state *s, const char *name, ver_entry **list, size_t *count,
			      provider_status *st)
{
	char path[300], url[2048];
	*list = NULL;
	*count = 0;
	snprintf(path, sizeof(path), "/keys/%s/versions", name);
	json_t *reply = NULL;
	p11k_err e = vault_call(s, "GetKeyVersions", "GET", path, NULL, &reply, NULL, st);
	size_t n = 0, cap = 0;
	ver_entry *vs = NULL;
	for (int page = 0; e == P11K_OK; page++) {
		json_t *val = json_object_get(reply, "value"), *item;
		size_t i;
		if (!json_is_array(val)) {
			snprintf(st->message, sizeof(st->message), "GetKeyVersions: reply lacks value");
			e = st->err = P11K_ERR_BAD_REPLY;
			break;
		}
		json_array_foreach(val, i, item) {
			const char *kid = json_string_value(json_object_get(item, "kid"));
			json_t *attrs = json_object_get(item, "attributes");
			json_t *en = json_object_get(attrs, "enabled");
			json_t *cr = json_object_get(attrs, "created");
			char kn[128], kv[128];
			/* Entries that are not versions of this key are skipped. */
			if (!kid || !json_is_boolean(en) ||
			    !parse_kid(kid, kn, sizeof(kn), kv, sizeof(kv)) ||
			    strcasecmp(kn, name) != 0 || n >= MAX_LISTED_VERSIONS)
				continue;
			if (n == cap) {
				size_t nc = cap ? 2 * cap : 16;
				ver_entry *nv = realloc(vs, nc * sizeof(*vs));
				if (!nv) {
					e = st->err = P11K_ERR_NOMEM;
					break;
				}
				vs = nv;
				cap = nc;
			}
			ver_entry *v = &vs[n];
			snprintf(v->v, sizeof(v->v), "%s", kv);
			v->enabled = json_is_true(en);
			v->created = json_is_integer(cr) ? (int64_t)json_integer_value(cr) : 0;
			v->idx = n++;
		}
		const char *next = json_string_value(json_object_get(reply, "nextLink"));
		bool follow = false;
		if (e != P11K_OK || !next || !*next) {
			/* the last page */
		} else if (page + 1 >= MAX_VERSION_PAGES) {
			log_debug(COMP, "%s: more than %d pages of versions; the rest not looked at",
				  name, MAX_VERSION_PAGES);
		} else if (!next_url(s, next, url, sizeof(url))) {
			log_warn(COMP, "%s: GetKeyVersions nextLink is not under the vault; not followed",
				 name);
		} else {
			follow = true;
		}
		json_decref(reply);
		reply = NULL;
		if (!follow)
			break;
		e = vault_call_url(s, "GetKeyVersions", "GET", url, NULL, &reply, NULL, st);
	}
	json_decref(reply);
	if (e != P11K_OK) {
		free(vs);
		return e;
	}
	*list = vs;
	*count = n;
	return P11K_OK;
}

typedef struct older_ctx {
	az_state *s;
	const char *name;
	remote_req *r;
	const char *alg;
	const ver_entry *vs;
	uint8_t **out;
	size_t *outlen;
} older_ctx;

static p11k_err older_attempt(void *arg, size_t i, provider_status *st)
{
	older_ctx *o = arg;
	p11k_err e = crypt_version(o->s, o->name, o->vs[i].v, o->r, o->alg, o->out, o->outlen, st);
	if (e == P11K_OK)
		log_debug(COMP, "%s: decrypted by the older version %s", o->name, o->vs[i].v);
	return e;
}

/* A version disabled or deleted since the listing is passed over; the
 * service failing is not. */
static bool older_next(p11k_err e)
{
	return e == P11K_ERR_INVALID_CIPHERTEXT || e == P11K_ERR_KEY_DISABLED ||
	       e == P11K_ERR_KEY_NOT_FOUND || e == P11K_ERR_KEY_TYPE;
}

/* The current version could not decrypt: the standard formats name no
 * version, so try the older enabled ones, newest first, a few at most.
 * Safe because every algorithm here authenticates what it decrypts. */
static p11k_err crypt_older_versions(az_state *s, const char *name, remote_req *r,
				     const char *alg, uint8_t **out, size_t *outlen,
				     provider_status *st)
{
	ver_entry *vs = NULL;
	size_t n = 0;
	p11k_err e = list_versions(s, name, &vs, &n, st);
	if (e == P11K_ERR_UNREACHABLE || e == P11K_ERR_THROTTLED || e == P11K_ERR_NOMEM)
		return e;
	if (e != P11K_OK) {
		char why[160];
		snprintf(why, sizeof(why), "%.150s", st->message);
		snprintf(st->message, sizeof(st->message),
			 "the current version of %.60s does not decrypt the data and older "
			 "versions cannot be listed (%.100s)", name, why);
		return st->err = P11K_ERR_INVALID_CIPHERTEXT;
	}
	qsort(vs, n, sizeof(*vs), ver_cmp);
	/* vs[0], the newest, is the current version: already tried. The
	 * candidates are the older enabled ones, newest first. */
	size_t m = 0, tried = 0;
	for (size_t i = 1; i < n; i++)
		if (vs[i].enabled)
			vs[m++] = vs[i];
	older_ctx oc = {s, name, r, alg, vs, out, outlen};
	version_walk w = {.n = m, .max_tries = MAX_VERSION_TRIES, .attempt = older_attempt,
			  .next = older_next, .arg = &oc};
	e = versions_try(&w, &tried, st);
	if (older_next(e))
		e = P11K_ERR_INVALID_CIPHERTEXT;
	free(vs);
	if (e == P11K_ERR_INVALID_CIPHERTEXT) {
		snprintf(st->message, sizeof(st->message),
			 "%s: no version of %.60s decrypts the data (the current one and %zu older "
			 "enabled)", alg, name, tried);
		st->err = e;
	}
	return e;
}

static p11k_err az_remote_crypt(void *state, const char *key_id, remote_req *r, uint8_t **out,
				size_t *outlen, provider_status *st)
{
	az_state *s = state;
	char name[128], ver[128];
	*out = NULL;
	*outlen = 0;
	if (!parse_key_id(key_id, name, sizeof(name), ver, sizeof(ver))) {
		snprintf(st->message, sizeof(st->message),
			 "key id '%.100s' is not NAME or NAME/VERSION", key_id);
		return st->err = P11K_ERR_KEY_NOT_FOUND;
	}
	const char *alg = ralg_name(r);
	if (!alg) {
		snprintf(st->message, sizeof(st->message),
			 "no Azure algorithm for mechanism %d with a %zu-bit key", (int)r->alg,
			 r->key_bits);
		return st->err = P11K_ERR_KEY_TYPE;
	}
	if ((!r->in && r->inlen) || (!r->aad && r->aadlen) ||
	    (r->aadlen && r->alg != RALG_AES_GCM)) {
		snprintf(st->message, sizeof(st->message), "remote_crypt: malformed request");
		return st->err = P11K_ERR_INTERNAL;
	}
	if (r->alg == RALG_AES_GCM && !r->encrypt && r->inlen < REMOTE_GCM_TAG_LEN) {
		snprintf(st->message, sizeof(st->message), "%s: %zu bytes are shorter than the tag",
			 alg, r->inlen);
		return st->err = P11K_ERR_INVALID_CIPHERTEXT;
	}
	p11k_err e = crypt_version(s, name, ver, r, alg, out, outlen, st);
	if (e == P11K_ERR_INVALID_CIPHERTEXT && !r->encrypt && !ver[0])
		e = crypt_older_versions(s, name, r, alg, out, outlen, st);
	return e;
}

/* A JWK number: base64url, big-endian; leading zeros dropped. */
static bool jwk_number(json_t *key, const char *name, size_t maxlen, uint8_t **out,
		       size_t *len)
{
	if (!get_b64(key, name, false, out, len))
		return false;
	size_t z = 0;
	while (z < *len && (*out)[z] == 0)
		z++;
	memmove(*out, *out + z, *len - z);
	*len -= z;
	if (*len == 0 || *len > maxlen) {
		free(*out);
		*out = NULL;
		return false;
	}
	return true;
}

/* The module keeps the numbers on the key objects: fetched when asked,
 * nothing kept here. */
static p11k_err az_rsa_public(void *state, const char *key_id, uint8_t **n, size_t *nlen,
			      uint8_t **e, size_t *elen, provider_status *st)
{
	az_state *s = state;
	*n = *e = NULL;
	*nlen = *elen = 0;
	json_t *bundle = NULL;
	char kv[128];
	p11k_err err = get_key(s, key_id, &bundle, kv, sizeof(kv), st);
	if (err != P11K_OK)
		return err;
	json_t *key = json_object_get(bundle, "key");
	const char *kty = json_string_value(json_object_get(key, "kty"));
	if (!kty || (strcmp(kty, "RSA") != 0 && strcmp(kty, "RSA-HSM") != 0)) {
		snprintf(st->message, sizeof(st->message), "key %.100s is %.20s, not RSA", key_id,
			 kty ? kty : "of no type");
		err = st->err = P11K_ERR_KEY_TYPE;
	} else if (!jwk_number(key, "n", 1024, n, nlen) || !jwk_number(key, "e", 8, e, elen)) {
		snprintf(st->message, sizeof(st->message), "GetKey: the RSA key lacks n or e");
		err = st->err = P11K_ERR_BAD_REPLY;
		free(*n);
		*n = NULL;
		*nlen = 0;
	}
	json_decref(bundle);
	return err;
}

/* --- creation (no network) ------------------------------------------------------ */

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
	const char *url = json_str_field(cfg, "vault_url");
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
	const char *res = json_str_field(cfg, "resource");
	bool hsm = false;
	if (e == P11K_OK) {
		char hl[256];
		snprintf(hl, sizeof(hl), "%s", s->host);
		hl[strcspn(hl, ":")] = 0;
		hsm = res ? strcmp(res, "hsm") == 0 : host_ends_with(hl, "managedhsm.azure.net");
		s->verify_challenge = !is_loopback_host(s->host);
		s->scope = strdup(hsm ? "https://managedhsm.azure.net/.default"
				      : "https://vault.azure.net/.default");
		const char *av = json_str_field(cfg, "api_version");
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
	const char *seal = json_str_field(cfg, "seal_with");
	if (!seal && json_array_size(keys))
		seal = json_str_field(json_array_get(keys, 0), "id");
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
		const char *ca = json_str_field(cfg, "ca_file");
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
			.tenant_id = json_str_field(cfg, "tenant_id"),
			.client_id = json_str_field(cfg, "client_id"),
			.client_secret_file = json_str_field(cfg, "client_secret_file"),
			.client_certificate_file = json_str_field(cfg, "client_certificate_file"),
			.federated_token_file = json_str_field(cfg, "federated_token_file"),
			.authority_host = json_str_field(cfg, "authority_host"),
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

/* provider_ops.test_set_transport: all three of its clients. */
static void az_test_set_transport(void *state, http_transport_fn fn, void *arg,
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
	.remote_crypt = az_remote_crypt,
	.rsa_public = az_rsa_public,
	.test_set_transport = az_test_set_transport,
};
