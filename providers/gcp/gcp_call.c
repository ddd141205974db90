/* SPDX-License-Identifier: Apache-2.0 */
/*
 * One call to Cloud KMS (gcp_impl.h): the request with its bearer token,
 * the google.rpc.Status error map (PROTOCOLS.md 3.5), and the CRC32C
 * contract on every bytes field sent and received.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/crypto.h>

#include "gcp_impl.h"
#include "crc32c.h"
#include "common/log.h"
#include "common/secmem.h"
#include "providers/common/codec.h"
#include "providers/common/errmap.h"
#include "providers/common/util.h"
#include "providers/common/versions.h"

/* google.rpc.Status codes -> the internal vocabulary (PROTOCOLS.md 3.5).
 * INVALID_ARGUMENT depends on the call: on Decrypt it is the service's
 * answer to a ciphertext that does not open (wrong key or AAD). */
static const errmap_entry gcp_errors[] = {
	{"PERMISSION_DENIED", P11K_ERR_ACCESS_DENIED},
	{"UNAUTHENTICATED", P11K_ERR_ACCESS_DENIED},
	{"NOT_FOUND", P11K_ERR_KEY_NOT_FOUND},
	{"FAILED_PRECONDITION", P11K_ERR_KEY_DISABLED},
	{"INVALID_ARGUMENT", P11K_ERR_INTERNAL},
	{"OUT_OF_RANGE", P11K_ERR_INTERNAL},
	{"UNIMPLEMENTED", P11K_ERR_INTERNAL},
	{"ALREADY_EXISTS", P11K_ERR_INTERNAL},
	{"UNAVAILABLE", P11K_ERR_UNREACHABLE},
	{"DEADLINE_EXCEEDED", P11K_ERR_UNREACHABLE},
	{"INTERNAL", P11K_ERR_UNREACHABLE},
	{"UNKNOWN", P11K_ERR_UNREACHABLE},
	{"ABORTED", P11K_ERR_UNREACHABLE},
	{"CANCELLED", P11K_ERR_UNREACHABLE},
	{"RESOURCE_EXHAUSTED", P11K_ERR_THROTTLED},
	{"DATA_LOSS", P11K_ERR_BAD_REPLY},
};

/* When the body has no status name: the HTTP code, as gax maps it. */
static const char *status_of_http(long code)
{
	switch (code) {
	case 400: return "INVALID_ARGUMENT";
	case 401: return "UNAUTHENTICATED";
	case 403: return "PERMISSION_DENIED";
	case 404: return "NOT_FOUND";
	case 409: return "ABORTED";
	case 429: return "RESOURCE_EXHAUSTED";
	case 501: return "UNIMPLEMENTED";
	case 503: return "UNAVAILABLE";
	case 504: return "DEADLINE_EXCEEDED";
	default: return code >= 500 ? "INTERNAL" : "FAILED_PRECONDITION";
	}
}

p11k_err gcp_map_status(const char *status, long http_status, bool decrypt)
{
	if (!status || !*status)
		status = status_of_http(http_status);
	if (decrypt && strcmp(status, "INVALID_ARGUMENT") == 0)
		return P11K_ERR_INVALID_CIPHERTEXT;
	return errmap_lookup(gcp_errors, ARRAY_SIZE(gcp_errors), status, NULL);
}


static bool contains_ci(const char *hay, const char *needle)
{
	return hay && strcasestr(hay, needle) != NULL;
}

/* An error reply -> the internal vocabulary, by status name and, where
 * the name alone is ambiguous, the service's message. */
static p11k_err map_error(call_kind kind, const char *sn, const char *msg, long http_status)
{
	const char *name = sn && *sn ? sn : status_of_http(http_status);
	/* The service checked our CRC32C and found the data damaged on the
	 * way: an integrity failure, not a bad ciphertext. */
	if (contains_ci(msg, "checksum"))
		return P11K_ERR_BAD_REPLY;
	bool inval = strcmp(name, "INVALID_ARGUMENT") == 0;
	/* encrypt/decrypt on a key of another purpose (a RAW_ENCRYPT_DECRYPT
	 * key named as an envelope key): FAILED_PRECONDITION, as for a
	 * disabled version, but a key type mismatch, which no retry and no
	 * re-enabling cures. */
	if ((kind == CALL_ENCRYPT || kind == CALL_DECRYPT) &&
	    (inval || strcmp(name, "FAILED_PRECONDITION") == 0) && contains_ci(msg, "purpose"))
		return P11K_ERR_KEY_TYPE;
	if (kind >= CALL_RAW_ENCRYPT) {
		bool reverse = kind == CALL_RAW_DECRYPT || kind == CALL_ASYM_DECRYPT;
		/* rawEncrypt on a key that is not RAW_ENCRYPT_DECRYPT, or
		 * whose algorithm is not AES-GCM; asymmetricSign/Decrypt or
		 * getPublicKey on a key of another purpose, or a digest of
		 * another hash than the version's algorithm. */
		if ((inval || strcmp(name, "FAILED_PRECONDITION") == 0) &&
		    (contains_ci(msg, "purpose") || contains_ci(msg, "RAW_ENCRYPT_DECRYPT") ||
		     contains_ci(msg, "algorithm") || contains_ci(msg, "asymmetric") ||
		     contains_ci(msg, "digest type")))
			return P11K_ERR_KEY_TYPE;
		/* A destroyed version is gone, as describe says too. */
		if (strcmp(name, "FAILED_PRECONDITION") == 0 && contains_ci(msg, "DESTROY"))
			return P11K_ERR_KEY_NOT_FOUND;
		if (reverse && inval &&
		    (contains_ci(msg, "decryption failed") ||
		     contains_ci(msg, "ciphertext is invalid")))
			return P11K_ERR_INVALID_CIPHERTEXT;
		return gcp_map_status(name, http_status, false);
	}
	return gcp_map_status(name, http_status, kind == CALL_DECRYPT);
}

/* --- one call ------------------------------------------------------------ */

typedef struct call {
	gcp_state *s;
	const char *op;     /* "Encrypt", ... for messages */
	const char *method;
	char *url;
	const char *body; /* JSON; may hold key material */
	size_t bodylen;
} call_t;

static p11k_err build(void *arg, int attempt, http_request *req, provider_status *st)
{
	call_t *c = arg;
	char *tok = NULL;
	(void)attempt;
	/* Asked for on every attempt: a retry after a refresh uses the new token. */
	p11k_err e = gcp_creds_token(c->s->creds, &tok, st);
	if (e != P11K_OK)
		return e;
	size_t hl = strlen(tok) + 8;
	char *authz = sec_alloc(hl);
	if (!authz) {
		sec_free(tok);
		return P11K_ERR_NOMEM;
	}
	snprintf(authz, hl, "Bearer %s", tok);
	sec_free(tok);
	snprintf(req->method, sizeof(req->method), "%s", c->method);
	if (!(req->url = strdup(c->url)) || !http_header_add(req, "Authorization", authz))
		e = P11K_ERR_NOMEM;
	sec_free(authz);
	if (e == P11K_OK && c->body &&
	    (!http_header_add(req, "Content-Type", "application/json") ||
	     !(req->body = malloc(c->bodylen ? c->bodylen : 1))))
		e = P11K_ERR_NOMEM;
	if (e == P11K_OK && c->body) {
		memcpy(req->body, c->body, c->bodylen);
		req->bodylen = c->bodylen;
		req->body_secret = true;
	}
	return e;
}

/* The google.rpc.Status of an error reply: {"error": {code, message,
 * status}}, or the same object without the wrapper (gax accepts both). */
static json_t *rpc_status(const http_response *r, json_t **doc)
{
	json_error_t je;
	*doc = json_loadb((const char *)r->body.p, r->body.len, 0, &je);
	json_t *e = json_object_get(*doc, "error");
	return json_is_object(e) ? e : *doc;
}

static bool retryable(void *arg, const http_response *r)
{
	json_t *doc;
	(void)arg;
	if (r->status < 400)
		return false;
	const char *n = json_string_value(json_object_get(rpc_status(r, &doc), "status"));
	bool retry = n && (strcmp(n, "UNAVAILABLE") == 0 || strcmp(n, "DEADLINE_EXCEEDED") == 0 ||
			   strcmp(n, "RESOURCE_EXHAUSTED") == 0);
	json_decref(doc);
	return retry;
}

/* Resource names go into the URL path unescaped (as Google's clients send
 * them): only the characters resource ids may hold. */
bool gcp_name_ok(const char *n)
{
	if (strncmp(n, "projects/", 9) != 0 || strlen(n) > 400 || strstr(n, "..") ||
	    strstr(n, "//"))
		return false;
	for (const char *p = n; *p; p++)
		if (!((*p >= 'a' && *p <= 'z') || (*p >= 'A' && *p <= 'Z') ||
		      (*p >= '0' && *p <= '9') || strchr("/_-.", *p)))
			return false;
	return true;
}

/* Call op on name (GET when req is NULL); on success *reply is the parsed
 * JSON (caller frees, after wiping secret strings it read). */
p11k_err gcp_kms_call(gcp_state *s, const char *op, const char *name, const char *suffix,
			 json_t *req, call_kind kind, json_t **reply, provider_status *st)
{
	if (!gcp_name_ok(name)) {
		snprintf(st->message, sizeof(st->message),
			 "%s: %.100s is not a Cloud KMS resource name (projects/*/locations/*/"
			 "keyRings/*/cryptoKeys/*)", op, name);
		return st->err = P11K_ERR_KEY_NOT_FOUND;
	}
	char *body = req ? json_dumps(req, JSON_COMPACT) : NULL;
	size_t ul = strlen(s->endpoint) + strlen(name) + strlen(suffix) + 8;
	call_t c = {.s = s, .op = op, .method = req ? "POST" : "GET", .url = malloc(ul),
		    .body = body, .bodylen = body ? strlen(body) : 0};
	if ((req && !body) || !c.url) {
		free(body);
		free(c.url);
		return P11K_ERR_NOMEM;
	}
	snprintf(c.url, ul, "%s/v1/%s%s", s->endpoint, name, suffix);
	http_response resp;
	http_response_init(&resp, GCP_MAX_REPLY);
	p11k_err e = http_call(s->http, build, &c, retryable, NULL, &resp, st);
	if (e == P11K_OK && resp.status == 401) {
		/* The cached token was refused (revoked, or expired early by
		 * the service's clock): once more with a freshly fetched one
		 * before calling it an access failure. */
		log_debug(COMP, "%s: 401, fetching a new access token", op);
		gcp_creds_invalidate(s->creds);
		http_response_free(&resp);
		http_response_init(&resp, GCP_MAX_REPLY);
		e = http_call(s->http, build, &c, retryable, NULL, &resp, st);
	}
	if (body) {
		OPENSSL_cleanse(body, c.bodylen);
		free(body);
	}
	free(c.url);
	snprintf(st->request_id, sizeof(st->request_id), "%s", resp.request_id);
	if (resp.status)
		st->http_status = resp.status;
	if (e == P11K_OK && resp.status == 200) {
		json_error_t je;
		*reply = json_loadb((const char *)resp.body.p, resp.body.len, 0, &je);
		if (!json_is_object(*reply)) {
			json_decref(*reply);
			*reply = NULL;
			snprintf(st->message, sizeof(st->message), "%s: reply is not a JSON object",
				 op);
			e = P11K_ERR_BAD_REPLY;
		}
	} else if (resp.status) {
		json_t *doc;
		json_t *rs = rpc_status(&resp, &doc);
		const char *sn = json_string_value(json_object_get(rs, "status"));
		const char *msg = json_string_value(json_object_get(rs, "message"));
		snprintf(st->error_name, sizeof(st->error_name), "%s",
			 sn ? sn : status_of_http(resp.status));
		/* Google's messages name resources and permissions, never data. */
		snprintf(st->message, sizeof(st->message), "%.24s: %.40s (HTTP %ld): %.150s", op,
			 st->error_name, resp.status, msg ? msg : "");
		if (e == P11K_OK)
			e = map_error(kind, sn, msg, resp.status);
		if (resp.status == 401)
			/* Refused again: fetch a new token next time too. */
			gcp_creds_invalidate(s->creds);
		json_decref(doc);
	}
	http_response_free(&resp);
	st->err = e;
	return e;
}

/* A CRC32C field: proto3 maps Int64Value to a decimal string (numbers are
 * accepted too); the value never exceeds 2^32-1. */
static bool crc_field(const json_t *o, const char *name, uint32_t *out)
{
	json_t *v = json_object_get(o, name);
	unsigned long long n;
	if (json_is_integer(v)) {
		if (json_integer_value(v) < 0)
			return false;
		n = (unsigned long long)json_integer_value(v);
	} else if (json_is_string(v)) {
		const char *p = json_string_value(v);
		char *end;
		if (!*p || json_string_length(v) > 10 || strspn(p, "0123456789") != strlen(p))
			return false;
		n = strtoull(p, &end, 10);
	} else {
		return false;
	}
	if (n > 0xFFFFFFFFull)
		return false;
	*out = (uint32_t)n;
	return true;
}

static p11k_err crc_mismatch(provider_status *st, const char *op, const char *what)
{
	snprintf(st->error_name, sizeof(st->error_name), "CRC32C");
	snprintf(st->message, sizeof(st->message), "%s: CRC32C mismatch: %s", op, what);
	log_error(COMP, "%s: CRC32C mismatch: %s; reply refused", op, what);
	return st->err = P11K_ERR_BAD_REPLY;
}

/* A reply's "<name>" CRC32C field against the CRC32C of data (a string
 * field the caller read, e.g. the public key's pem). */
p11k_err gcp_check_crc(const json_t *reply, const char *op, const char *name,
		       const void *data, size_t len, provider_status *st)
{
	char what[128];
	uint32_t crc;
	if (!crc_field(reply, name, &crc)) {
		snprintf(what, sizeof(what), "%s missing or malformed", name);
		return crc_mismatch(st, op, what);
	}
	if (crc != crc32c(data, len)) {
		snprintf(what, sizeof(what), "%s does not match", name);
		return crc_mismatch(st, op, what);
	}
	return P11K_OK;
}

/* A bytes field (base64) and its CRC32C, "<field>Crc32c" as Cloud KMS names
 * every one of them. The base64 copy is wiped: the field may be secret. */
bool gcp_set_bytes(json_t *req, const char *field, const uint8_t *p, size_t n)
{
	char crcname[64], v[16];
	char *b = b64_encode(p, n);
	if (!b)
		return false;
	bool ok = json_object_set_new(req, field, json_string(b)) == 0;
	OPENSSL_cleanse(b, strlen(b));
	free(b);
	snprintf(crcname, sizeof(crcname), "%sCrc32c", field);
	snprintf(v, sizeof(v), "%u", crc32c(p, n));
	return ok && json_object_set_new(req, crcname, json_string(v)) == 0;
}

/* Add the AAD and its CRC32C (nothing when empty: the field is optional). */
bool gcp_set_aad(json_t *req, const uint8_t *aad, size_t aadlen)
{
	return !aadlen || gcp_set_bytes(req, "additionalAuthenticatedData", aad, aadlen);
}

/* A reply's bytes field, decoded into *out (secure memory when secret;
 * the JSON copy is wiped then) and checked against "<field>Crc32c". On
 * failure *out is NULL and the reply is refused. */
p11k_err gcp_get_bytes(json_t *reply, const char *op, const char *field, bool secret,
			  uint8_t **out, size_t *outlen, provider_status *st)
{
	char crcname[64], what[128];
	json_t *f = json_object_get(reply, field);
	uint32_t crc;
	p11k_err e = P11K_OK;
	*out = NULL;
	*outlen = 0;
	snprintf(crcname, sizeof(crcname), "%sCrc32c", field);
	if (!json_is_string(f) ||
	    !b64_decode(json_string_value(f), json_string_length(f), secret, out, outlen)) {
		snprintf(st->message, sizeof(st->message), "%s: bad %s", op, field);
		e = st->err = P11K_ERR_BAD_REPLY;
	} else if (!crc_field(reply, crcname, &crc)) {
		snprintf(what, sizeof(what), "%s missing or malformed", crcname);
		e = crc_mismatch(st, op, what);
	} else if (crc != crc32c(*out, *outlen)) {
		snprintf(what, sizeof(what), "%s does not match the %s", crcname, field);
		e = crc_mismatch(st, op, what);
	}
	if (secret)
		wipe_json_string(f);
	if (e != P11K_OK) {
		if (secret)
			sec_free(*out);
		else
			free(*out);
		*out = NULL;
		*outlen = 0;
	}
	return e;
}

/* The service's confirmation that it checked one of our CRC32Cs. */
p11k_err gcp_check_verified(const json_t *reply, const char *op, const char *flag,
			       provider_status *st)
{
	char what[96];
	if (json_is_true(json_object_get(reply, flag)))
		return P11K_OK;
	snprintf(what, sizeof(what), "%s is not true", flag);
	return crc_mismatch(st, op, what);
}

