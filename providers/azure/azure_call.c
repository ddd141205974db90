/* SPDX-License-Identifier: Apache-2.0 */
/*
 * One call to the vault (azure_impl.h): the request, the bearer token and
 * its one retry after a challenge or a refused token, error replies mapped
 * to the internal vocabulary (PROTOCOLS.md 2.4), and key id parsing.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "azure_impl.h"
#include "common/crypto.h"
#include "common/log.h"
#include "common/secmem.h"
#include "providers/common/codec.h"
#include "providers/common/errmap.h"
#include "providers/common/util.h"
#include "providers/common/versions.h"

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
	/* A disabled key's decrypt/sign/unwrapKey: 403 Forbidden, the
	 * innererror KeyDisabled deciding (above); a reply without the
	 * innererror still says so in its message ("Operation sign is not
	 * allowed on a disabled key."). */
	if (status == 403 && !inner && code && strcmp(code, "Forbidden") == 0 && msg &&
	    strcasestr(msg, "disabled key"))
		e = P11K_ERR_KEY_DISABLED;
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
bool az_parse_key_id(const char *id, char *name, size_t nl, char *ver, size_t vl)
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
bool az_parse_kid(const char *kid, char *name, size_t nl, char *ver, size_t vl)
{
	const char *k = strstr(kid, "/keys/");
	if (!k)
		return false;
	char id[300];
	if ((size_t)snprintf(id, sizeof(id), "%s", k + 6) >= sizeof(id))
		return false;
	return strchr(id, '/') && az_parse_key_id(id, name, nl, ver, vl) && ver[0];
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
p11k_err az_vault_call_url(az_state *s, const char *op, const char *method,
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
		p11k_err ce = az_apply_challenge(s, resp.www_authenticate, st);
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
p11k_err az_vault_call(az_state *s, const char *op, const char *method, const char *path,
			   json_t *req, json_t **reply, long *vstatus, provider_status *st)
{
	char url[1024];
	*reply = NULL;
	if ((size_t)snprintf(url, sizeof(url), "%s%s?api-version=%s", s->vault_url, path,
			     s->api_version) >= sizeof(url))
		return st->err = P11K_ERR_INTERNAL;
	return az_vault_call_url(s, op, method, url, req, reply, vstatus, st);
}

