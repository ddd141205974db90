/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The Google Cloud KMS provider (REST v1 over HTTPS, OAuth 2.0 bearer
 * tokens; PROTOCOLS.md section 3). Keys are CryptoKey resource names
 * (projects/.../cryptoKeys/...) of purpose ENCRYPT_DECRYPT; the AAD the
 * module passes is Cloud KMS's additionalAuthenticatedData, so a blob opens
 * only with the same AAD. Blobs are Google's ciphertexts, which name the
 * CryptoKeyVersion that made them; the reply's version is returned as
 * key_version. Every request carries CRC32Cs of what it sends and every
 * reply's CRC32Cs and verified* flags are checked: a mismatch is an error,
 * never a result. Creation touches no network; every call goes through the
 * shared HTTP client (retries, Retry-After).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "crc32c.h"
#include "gcp.h"
#include "module/log.h"
#include "module/secmem.h"
#include "oauth.h"
#include "providers/common/codec.h"
#include "providers/common/http.h"
#include "providers/provider.h"

#define COMP "gcp"
#define GCP_MAX_REPLY (256 * 1024)
#define GCP_DEFAULT_ENDPOINT "https://cloudkms.googleapis.com"
#define GCP_DEFAULT_SCOPE "https://www.googleapis.com/auth/cloudkms"
#define VERSION_SEP "/cryptoKeyVersions/"

typedef struct gcp_state {
	char *endpoint; /* https://host[:port], no trailing slash */
	char *default_key;
	http_client *http;     /* Cloud KMS and the token endpoint: https only */
	http_client *metadata; /* the metadata server: plain http by design */
	gcp_creds *creds;
} gcp_state;

static const field_spec gcp_fields[] = {
	{"endpoint", FT_STRING, false, 0, 0, NULL},
	{"credentials_file", FT_STRING, false, 0, 0, NULL},
	{"token_uri", FT_STRING, false, 0, 0, NULL},
	{"metadata_host", FT_STRING, false, 0, 0, NULL},
	{"ca_file", FT_STRING, false, 0, 0, NULL},
	{"scope", FT_STRING, false, 0, 0, NULL},
	{"self_signed_jwt", FT_BOOL, false, 0, 0, NULL},
	{NULL, FT_STRING, false, 0, 0, NULL},
};

/* google.rpc.Status codes -> the internal vocabulary (PROTOCOLS.md 3.5).
 * INVALID_ARGUMENT depends on the call: on Decrypt it is the service's
 * answer to a ciphertext that does not open (wrong key or AAD). */
static const struct {
	const char *status;
	p11k_err err;
} gcp_errors[] = {
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
	for (size_t i = 0; i < ARRAY_SIZE(gcp_errors); i++)
		if (strcmp(gcp_errors[i].status, status) == 0)
			return gcp_errors[i].err;
	return P11K_ERR_BAD_REPLY;
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
static bool name_ok(const char *n)
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
static p11k_err kms_call(gcp_state *s, const char *op, const char *name, const char *suffix,
			 json_t *req, bool decrypt, json_t **reply, provider_status *st)
{
	if (!name_ok(name)) {
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
		if (e == P11K_OK) {
			e = gcp_map_status(sn, resp.status, decrypt);
			/* The service checked our CRC32C and found the data
			 * damaged on the way: an integrity failure, not a bad
			 * ciphertext. */
			if (msg && strstr(msg, "checksum"))
				e = P11K_ERR_BAD_REPLY;
		}
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

static void wipe_string(json_t *s)
{
	if (json_is_string(s))
		OPENSSL_cleanse((char *)(uintptr_t)json_string_value(s), json_string_length(s));
}

static bool set_crc(json_t *req, const char *name, const uint8_t *p, size_t n)
{
	char v[16];
	snprintf(v, sizeof(v), "%u", crc32c(p, n));
	return json_object_set_new(req, name, json_string(v)) == 0;
}

/* Add the AAD and its CRC32C (nothing when empty: the field is optional). */
static bool set_aad(json_t *req, const uint8_t *aad, size_t aadlen)
{
	if (!aadlen)
		return true;
	char *b = b64_encode(aad, aadlen);
	bool ok = b &&
		  json_object_set_new(req, "additionalAuthenticatedData", json_string(b)) == 0 &&
		  set_crc(req, "additionalAuthenticatedDataCrc32c", aad, aadlen);
	free(b);
	return ok;
}

/* --- provider operations ------------------------------------------------ */

/* RFC 3339 "2024-01-01T00:00:00.123456Z" -> seconds; 0 when unparsable. */
static uint64_t rfc3339(const char *s)
{
	struct tm tm = {0};
	int n = 0;
	if (!s || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d%n", &tm.tm_year, &tm.tm_mon, &tm.tm_mday,
			 &tm.tm_hour, &tm.tm_min, &tm.tm_sec, &n) != 6)
		return 0;
	tm.tm_year -= 1900;
	tm.tm_mon -= 1;
	time_t t = timegm(&tm);
	return t > 0 ? (uint64_t)t : 0;
}

static key_state state_of(const char *v)
{
	if (!v)
		return KEY_STATE_UNKNOWN;
	if (strcmp(v, "ENABLED") == 0)
		return KEY_STATE_ENABLED;
	if (strcmp(v, "DESTROYED") == 0 || strcmp(v, "DESTROY_SCHEDULED") == 0 ||
	    strcmp(v, "PENDING_EXTERNAL_DESTRUCTION") == 0)
		return KEY_STATE_DESTROYED;
	/* DISABLED, and versions not (yet) usable: PENDING_GENERATION,
	 * PENDING_IMPORT, IMPORT_FAILED, GENERATION_FAILED, ... */
	return KEY_STATE_DISABLED;
}

static p11k_err gcp_describe(void *state, const char *key_id, key_info *out,
			     provider_status *st)
{
	gcp_state *s = state;
	json_t *reply = NULL;
	bool version = strstr(key_id, VERSION_SEP) != NULL;
	memset(out, 0, sizeof(*out));
	p11k_err e = kms_call(s, version ? "GetCryptoKeyVersion" : "GetCryptoKey", key_id, "",
			      NULL, false, &reply, st);
	if (e != P11K_OK)
		return e;
	/* A key's state is its primary version's; a version names itself. */
	json_t *v = version ? reply : json_object_get(reply, "primary");
	const char *name = json_string_value(json_object_get(reply, "name"));
	if (!json_is_object(v)) {
		/* No primary: nothing can encrypt (a key whose versions are
		 * all gone, or not of purpose ENCRYPT_DECRYPT). */
		const char *purpose = json_string_value(json_object_get(reply, "purpose"));
		snprintf(st->message, sizeof(st->message), "GetCryptoKey: %.100s has no primary "
			 "version (purpose %.30s)", key_id, purpose ? purpose : "?");
		log_warn(COMP, "%s", st->message);
		out->state = KEY_STATE_DISABLED;
	} else {
		out->state = state_of(json_string_value(json_object_get(v, "state")));
		snprintf(out->primary_version, sizeof(out->primary_version), "%s",
			 json_string_value(json_object_get(v, "name"))
				 ? json_string_value(json_object_get(v, "name"))
				 : "");
		/* The primary's creation is the last rotation. */
		out->rotated_at = rfc3339(json_string_value(json_object_get(v, "createTime")));
	}
	snprintf(out->key_id, sizeof(out->key_id), "%s", name ? name : key_id);
	out->created_at = rfc3339(json_string_value(json_object_get(reply, "createTime")));
	if (out->state == KEY_STATE_UNKNOWN) {
		snprintf(st->message, sizeof(st->message), "GetCryptoKey: no version state");
		e = st->err = P11K_ERR_BAD_REPLY;
	}
	json_decref(reply);
	return e;
}

static p11k_err gcp_encrypt(void *state, const char *key_id, const uint8_t *pt,
			    size_t ptlen, const uint8_t *aad, size_t aadlen,
			    uint8_t **blob, size_t *bloblen, char *kv, size_t kvlen,
			    provider_status *st)
{
	gcp_state *s = state;
	char *b64 = b64_encode(pt, ptlen);
	json_t *req = b64 ? json_pack("{s:s}", "plaintext", b64) : NULL;
	if (b64) {
		OPENSSL_cleanse(b64, strlen(b64));
		free(b64);
	}
	if (!req || !set_crc(req, "plaintextCrc32c", pt, ptlen) || !set_aad(req, aad, aadlen)) {
		wipe_string(json_object_get(req, "plaintext"));
		json_decref(req);
		return P11K_ERR_NOMEM;
	}
	json_t *reply = NULL;
	p11k_err e = kms_call(s, "Encrypt", key_id, ":encrypt", req, false, &reply, st);
	wipe_string(json_object_get(req, "plaintext"));
	json_decref(req);
	if (e != P11K_OK)
		return e;
	json_t *ct = json_object_get(reply, "ciphertext");
	const char *ver = json_string_value(json_object_get(reply, "name"));
	size_t kl = strlen(key_id);
	uint32_t crc;
	*blob = NULL;
	if (!json_is_string(ct) ||
	    !b64_decode(json_string_value(ct), json_string_length(ct), false, blob, bloblen) ||
	    !*bloblen) {
		snprintf(st->message, sizeof(st->message), "Encrypt: bad ciphertext");
		e = st->err = P11K_ERR_BAD_REPLY;
	} else if (!ver || (strcmp(ver, key_id) != 0 &&
			    (strncmp(ver, key_id, kl) != 0 ||
			     strncmp(ver + kl, VERSION_SEP, strlen(VERSION_SEP)) != 0))) {
		snprintf(st->message, sizeof(st->message),
			 "Encrypt: reply names version %.100s, not one of the key asked for",
			 ver ? ver : "(none)");
		e = st->err = P11K_ERR_BAD_REPLY;
	} else if (!json_is_true(json_object_get(reply, "verifiedPlaintextCrc32c"))) {
		e = crc_mismatch(st, "Encrypt", "verifiedPlaintextCrc32c is not true");
	} else if (aadlen && !json_is_true(json_object_get(
					     reply, "verifiedAdditionalAuthenticatedDataCrc32c"))) {
		e = crc_mismatch(st, "Encrypt",
				 "verifiedAdditionalAuthenticatedDataCrc32c is not true");
	} else if (!crc_field(reply, "ciphertextCrc32c", &crc)) {
		e = crc_mismatch(st, "Encrypt", "ciphertextCrc32c missing or malformed");
	} else if (crc != crc32c(*blob, *bloblen)) {
		e = crc_mismatch(st, "Encrypt", "ciphertextCrc32c does not match the ciphertext");
	} else {
		snprintf(kv, kvlen, "%s", ver);
	}
	if (e != P11K_OK) {
		free(*blob);
		*blob = NULL;
		*bloblen = 0;
	}
	json_decref(reply);
	return e;
}

static p11k_err gcp_decrypt(void *state, const char *key_id, const uint8_t *blob,
			    size_t bloblen, const uint8_t *aad, size_t aadlen,
			    uint8_t **pt, size_t *ptlen, provider_status *st)
{
	gcp_state *s = state;
	/* Decrypt takes the CryptoKey: the version is inside the ciphertext. */
	char key[512];
	const char *sep = strstr(key_id, VERSION_SEP);
	snprintf(key, sizeof(key), "%.*s", sep ? (int)(sep - key_id) : (int)strlen(key_id),
		 key_id);
	char *b64 = b64_encode(blob, bloblen);
	json_t *req = b64 ? json_pack("{s:s}", "ciphertext", b64) : NULL;
	free(b64);
	if (!req || !set_crc(req, "ciphertextCrc32c", blob, bloblen) ||
	    !set_aad(req, aad, aadlen)) {
		json_decref(req);
		return P11K_ERR_NOMEM;
	}
	json_t *reply = NULL;
	p11k_err e = kms_call(s, "Decrypt", key, ":decrypt", req, true, &reply, st);
	json_decref(req);
	if (e != P11K_OK)
		return e;
	json_t *p = json_object_get(reply, "plaintext");
	uint32_t crc;
	*pt = NULL;
	if (!json_is_string(p) ||
	    !b64_decode(json_string_value(p), json_string_length(p), true, pt, ptlen)) {
		snprintf(st->message, sizeof(st->message), "Decrypt: bad plaintext");
		e = st->err = P11K_ERR_BAD_REPLY;
	} else if (!crc_field(reply, "plaintextCrc32c", &crc)) {
		e = crc_mismatch(st, "Decrypt", "plaintextCrc32c missing or malformed");
	} else if (crc != crc32c(*pt, *ptlen)) {
		e = crc_mismatch(st, "Decrypt", "plaintextCrc32c does not match the plaintext");
	}
	if (e != P11K_OK) {
		sec_free(*pt);
		*pt = NULL;
		*ptlen = 0;
	}
	wipe_string(p);
	json_decref(reply);
	return e;
}

static size_t gcp_max_blob_len(void *state, size_t ptlen)
{
	(void)state;
	/* Google's symmetric ciphertexts add a header, IV and tag of well
	 * under 512 bytes to the plaintext (at most 64 KiB). */
	return ptlen + 512;
}

/* --- creation (no network) ------------------------------------------------ */

static const char *str_field(const json_t *cfg, const char *k)
{
	return json_string_value(json_object_get(cfg, k));
}

static void gcp_destroy(void *state)
{
	gcp_state *s = state;
	if (!s)
		return;
	gcp_creds_free(s->creds);
	http_client_free(s->http);
	http_client_free(s->metadata);
	free(s->endpoint);
	free(s->default_key);
	free(s);
}

static p11k_err gcp_create(const json_t *cfg, const char *cfg_path, void **state, char *why,
			   size_t wl)
{
	(void)cfg_path;
	gcp_state *s = calloc(1, sizeof(*s));
	if (!s)
		return P11K_ERR_NOMEM;
	const char *ep = str_field(cfg, "endpoint");
	const char *use = ep ? ep : GCP_DEFAULT_ENDPOINT;
	p11k_err e = P11K_OK;
	if (strncmp(use, "https://", 8) != 0) {
		snprintf(why, wl, "endpoint %.100s: only https:// endpoints are accepted", use);
		e = P11K_ERR_ACCESS_DENIED;
	}
	if (e == P11K_OK && !(s->endpoint = strdup(use)))
		e = P11K_ERR_NOMEM;
	if (e == P11K_OK) {
		size_t n = strlen(s->endpoint);
		while (n > 8 && s->endpoint[n - 1] == '/')
			s->endpoint[--n] = 0;
		if (strchr(s->endpoint + 8, '/') || n == 8) {
			snprintf(why, wl, "endpoint %.100s: give scheme and host only", use);
			e = P11K_ERR_ACCESS_DENIED;
		}
	}
	json_t *keys = json_object_get(cfg, "keys");
	const char *seal = str_field(cfg, "seal_with");
	if (!seal && json_array_size(keys))
		seal = str_field(json_array_get(keys, 0), "id");
	if (e == P11K_OK && !seal) {
		snprintf(why, wl, "name the CryptoKey that seals the token: \"seal_with\" or "
				  "a first entry in \"keys\"");
		e = P11K_ERR_KEY_NOT_FOUND;
	}
	/* Names are checked here so a typo fails at C_Initialize, not at
	 * the first unseal. */
	for (size_t i = 0; e == P11K_OK && i <= json_array_size(keys); i++) {
		const char *id = i < json_array_size(keys)
					 ? str_field(json_array_get(keys, i), "id")
					 : seal;
		if (id && (!name_ok(id) || !strstr(id, "/cryptoKeys/"))) {
			snprintf(why, wl, "%.120s is not a CryptoKey resource name "
				 "(projects/*/locations/*/keyRings/*/cryptoKeys/*)", id);
			e = P11K_ERR_KEY_NOT_FOUND;
		}
	}
	if (e == P11K_OK && !(s->default_key = strdup(seal)))
		e = P11K_ERR_NOMEM;
	const char *cf = str_field(cfg, "credentials_file");
	if (e == P11K_OK && cf && access(cf, R_OK) != 0) {
		snprintf(why, wl, "credentials_file %.120s is not readable", cf);
		e = P11K_ERR_ACCESS_DENIED;
	}
	if (e == P11K_OK) {
		const char *ca = str_field(cfg, "ca_file");
		http_options ho = {.ca_file = ca};
		/* The metadata server speaks plain http only; loopback too,
		 * for GCE_METADATA_HOST pointing at a local emulator. */
		http_options mo = {.ca_file = ca, .allow_plain_metadata = true,
				   .allow_plain_loopback = true, .connect_timeout_ms = 1000};
		s->http = http_client_new(&ho);
		s->metadata = http_client_new(&mo);
		const char *scope = str_field(cfg, "scope");
		gcp_creds_options co = {.credentials_file = cf,
					.token_uri = str_field(cfg, "token_uri"),
					.metadata_host = str_field(cfg, "metadata_host"),
					.scope = scope ? scope : GCP_DEFAULT_SCOPE,
					.self_signed_jwt = json_is_true(
						json_object_get(cfg, "self_signed_jwt")),
					.http = s->http,
					.metadata_http = s->metadata};
		s->creds = s->http && s->metadata ? gcp_creds_new(&co) : NULL;
		if (!s->creds)
			e = P11K_ERR_NOMEM;
	}
	if (e != P11K_OK) {
		gcp_destroy(s);
		return e;
	}
	*state = s;
	return P11K_OK;
}

static const char *gcp_default_seal_key(void *state)
{
	return ((gcp_state *)state)->default_key;
}

void gcp_test_hooks(void *state, http_transport_fn fn, void *arg, http_sleep_fn sleep_fn,
		    uint64_t (*now)(void *arg), void *now_arg)
{
	gcp_state *s = state;
	http_client_set_transport(s->http, fn, arg);
	http_client_set_transport(s->metadata, fn, arg);
	if (sleep_fn) {
		http_client_set_sleep(s->http, sleep_fn, NULL);
		http_client_set_sleep(s->metadata, sleep_fn, NULL);
	}
	if (now)
		gcp_creds_set_clock(s->creds, now, now_arg);
}

const provider_ops gcp_provider_ops = {
	.type = "gcp",
	.fields = gcp_fields,
	.create = gcp_create,
	.destroy = gcp_destroy,
	.default_seal_key = gcp_default_seal_key,
	.describe = gcp_describe,
	.encrypt = gcp_encrypt,
	.decrypt = gcp_decrypt,
	.max_blob_len = gcp_max_blob_len,
};
