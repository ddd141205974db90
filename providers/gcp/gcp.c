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
 *
 * RAW_ENCRYPT_DECRYPT keys (AES_256_GCM, AES_128_GCM) also run standard
 * AES-GCM through rawEncrypt / rawDecrypt (remote_crypt, docs/GCP.md "Raw
 * AES-GCM keys"): the service generates the IV, the output is
 * ciphertext||tag, and the same CRC32C contract holds for every field.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "crc32c.h"
#include "gcp.h"
#include "common/log.h"
#include "common/secmem.h"
#include "oauth.h"
#include "providers/common/codec.h"
#include "providers/common/errmap.h"
#include "providers/common/http.h"
#include "providers/common/util.h"
#include "providers/common/versions.h"
#include "providers/provider.h"

#define COMP "gcp"
#define GCP_MAX_REPLY (256 * 1024)
#define GCP_DEFAULT_ENDPOINT "https://cloudkms.googleapis.com"
#define GCP_DEFAULT_SCOPE "https://www.googleapis.com/auth/cloudkms"
#define VERSION_SEP "/cryptoKeyVersions/"
#define GCP_NAME_MAX 400
/* Raw keys: versions tried on decryption, newest first. */
#define RAW_MAX_VERSIONS 8
#define RAW_LIST_PAGES 10
#define RAW_CACHE_SLOTS 32

/* The enabled AES-GCM versions of a raw CryptoKey, newest first. */
typedef struct raw_versions {
	size_t n;
	unsigned long id[RAW_MAX_VERSIONS];
	unsigned bits[RAW_MAX_VERSIONS];
} raw_versions;

typedef struct raw_cache {
	char key[GCP_NAME_MAX + 1]; /* "" = free slot */
	uint64_t at;                /* when listed */
	raw_versions v;
} raw_cache;

typedef struct gcp_state {
	char *endpoint; /* https://host[:port], no trailing slash */
	char *default_key;
	http_client *http;     /* Cloud KMS and the token endpoint: https only */
	http_client *metadata; /* the metadata server: plain http by design */
	gcp_creds *creds;
	/* Raw keys' version lists, kept for cache_ttl seconds (the
	 * provider's revalidate_seconds). */
	pthread_mutex_t lock;
	bool lock_ok;
	uint64_t cache_ttl;
	unsigned cache_next; /* round-robin victim when full */
	raw_cache cache[RAW_CACHE_SLOTS];
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

/* What a call is, for reading its errors. */
typedef enum call_kind {
	CALL_PLAIN,       /* INVALID_ARGUMENT is our fault */
	CALL_DECRYPT,     /* INVALID_ARGUMENT: the ciphertext does not open */
	CALL_RAW_ENCRYPT, /* rawEncrypt: the key's purpose may be wrong */
	CALL_RAW_DECRYPT, /* rawDecrypt: both */
} call_kind;

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
	if (kind == CALL_RAW_ENCRYPT || kind == CALL_RAW_DECRYPT) {
		bool inval = strcmp(name, "INVALID_ARGUMENT") == 0;
		/* rawEncrypt on a key that is not RAW_ENCRYPT_DECRYPT, or
		 * whose algorithm is not AES-GCM. */
		if ((inval || strcmp(name, "FAILED_PRECONDITION") == 0) &&
		    (contains_ci(msg, "purpose") || contains_ci(msg, "RAW_ENCRYPT_DECRYPT") ||
		     contains_ci(msg, "algorithm")))
			return P11K_ERR_KEY_TYPE;
		/* A destroyed version is gone, as describe says too. */
		if (strcmp(name, "FAILED_PRECONDITION") == 0 && contains_ci(msg, "DESTROY"))
			return P11K_ERR_KEY_NOT_FOUND;
		if (kind == CALL_RAW_DECRYPT && inval &&
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
			 json_t *req, call_kind kind, json_t **reply, provider_status *st)
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

/* A bytes field (base64) and its CRC32C, "<field>Crc32c" as Cloud KMS names
 * every one of them. The base64 copy is wiped: the field may be secret. */
static bool set_bytes(json_t *req, const char *field, const uint8_t *p, size_t n)
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
static bool set_aad(json_t *req, const uint8_t *aad, size_t aadlen)
{
	return !aadlen || set_bytes(req, "additionalAuthenticatedData", aad, aadlen);
}

/* A reply's bytes field, decoded into *out (secure memory when secret;
 * the JSON copy is wiped then) and checked against "<field>Crc32c". On
 * failure *out is NULL and the reply is refused. */
static p11k_err get_bytes(json_t *reply, const char *op, const char *field, bool secret,
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
static p11k_err check_verified(const json_t *reply, const char *op, const char *flag,
			       provider_status *st)
{
	char what[96];
	if (json_is_true(json_object_get(reply, flag)))
		return P11K_OK;
	snprintf(what, sizeof(what), "%s is not true", flag);
	return crc_mismatch(st, op, what);
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
			      NULL, CALL_PLAIN, &reply, st);
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

/* Is ver the key id itself or one of its versions? */
static bool version_of(const char *ver, const char *key_id)
{
	size_t kl = strlen(key_id);
	return ver && (strcmp(ver, key_id) == 0 ||
		       (strncmp(ver, key_id, kl) == 0 &&
			strncmp(ver + kl, VERSION_SEP, strlen(VERSION_SEP)) == 0));
}

static p11k_err gcp_encrypt(void *state, const char *key_id, const uint8_t *pt,
			    size_t ptlen, const uint8_t *aad, size_t aadlen,
			    uint8_t **blob, size_t *bloblen, char *kv, size_t kvlen,
			    provider_status *st)
{
	gcp_state *s = state;
	json_t *req = json_object();
	*blob = NULL;
	*bloblen = 0;
	if (!req || !set_bytes(req, "plaintext", pt, ptlen) || !set_aad(req, aad, aadlen)) {
		wipe_json_string(json_object_get(req, "plaintext"));
		json_decref(req);
		return P11K_ERR_NOMEM;
	}
	json_t *reply = NULL;
	p11k_err e = kms_call(s, "Encrypt", key_id, ":encrypt", req, CALL_PLAIN, &reply, st);
	wipe_json_string(json_object_get(req, "plaintext"));
	json_decref(req);
	if (e != P11K_OK)
		return e;
	const char *ver = json_string_value(json_object_get(reply, "name"));
	e = get_bytes(reply, "Encrypt", "ciphertext", false, blob, bloblen, st);
	if (e == P11K_OK && !*bloblen) {
		snprintf(st->message, sizeof(st->message), "Encrypt: bad ciphertext");
		e = st->err = P11K_ERR_BAD_REPLY;
	}
	if (e == P11K_OK && !version_of(ver, key_id)) {
		snprintf(st->message, sizeof(st->message),
			 "Encrypt: reply names version %.100s, not one of the key asked for",
			 ver ? ver : "(none)");
		e = st->err = P11K_ERR_BAD_REPLY;
	}
	if (e == P11K_OK)
		e = check_verified(reply, "Encrypt", "verifiedPlaintextCrc32c", st);
	if (e == P11K_OK && aadlen)
		e = check_verified(reply, "Encrypt", "verifiedAdditionalAuthenticatedDataCrc32c", st);
	if (e == P11K_OK)
		snprintf(kv, kvlen, "%s", ver);
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
	*pt = NULL;
	*ptlen = 0;
	json_t *req = json_object();
	if (!req || !set_bytes(req, "ciphertext", blob, bloblen) || !set_aad(req, aad, aadlen)) {
		json_decref(req);
		return P11K_ERR_NOMEM;
	}
	json_t *reply = NULL;
	p11k_err e = kms_call(s, "Decrypt", key, ":decrypt", req, CALL_DECRYPT, &reply, st);
	json_decref(req);
	if (e != P11K_OK)
		return e;
	e = get_bytes(reply, "Decrypt", "plaintext", true, pt, ptlen, st);
	json_decref(reply);
	return e;
}

/* --- raw AES-GCM (RAW_ENCRYPT_DECRYPT keys) --------------------------------- */

static unsigned gcm_bits(const char *alg)
{
	if (alg && strcmp(alg, "AES_256_GCM") == 0)
		return 256;
	if (alg && strcmp(alg, "AES_128_GCM") == 0)
		return 128;
	return 0;
}

/* Keep v the newest RAW_MAX_VERSIONS ids, highest first. */
static void versions_add(raw_versions *v, unsigned long id, unsigned bits)
{
	size_t i = v->n;
	for (size_t j = 0; j < v->n; j++)
		if (v->id[j] == id)
			return; /* listed twice across pages */
	if (i == RAW_MAX_VERSIONS) {
		if (id < v->id[i - 1])
			return;
		i--;
	} else {
		v->n++;
	}
	for (; i > 0 && v->id[i - 1] < id; i--) {
		v->id[i] = v->id[i - 1];
		v->bits[i] = v->bits[i - 1];
	}
	v->id[i] = id;
	v->bits[i] = bits;
}

/* What a listing of a key's versions saw besides its enabled GCM ones. */
typedef struct list_seen {
	size_t total, disabled;
	char foreign_alg[48]; /* an enabled version's non-GCM algorithm */
} list_seen;

/* One bounded listing of key's versions (only the enabled ones when
 * filter; filtered here too, whatever the service did). */
static p11k_err list_once(gcp_state *s, const char *key, bool filter, raw_versions *v,
			  list_seen *seen, provider_status *st)
{
	char suffix[1024], prefix[GCP_NAME_MAX + 32];
	char *token = NULL;
	p11k_err e = P11K_OK;
	snprintf(prefix, sizeof(prefix), "%s" VERSION_SEP, key);
	size_t pl = strlen(prefix);
	for (int page = 0; e == P11K_OK && page < RAW_LIST_PAGES; page++) {
		json_t *reply = NULL;
		snprintf(suffix, sizeof(suffix), "/cryptoKeyVersions?pageSize=100%s%s%s",
			 filter ? "&filter=state%3DENABLED" : "", token ? "&pageToken=" : "",
			 token ? token : "");
		free(token);
		token = NULL;
		e = kms_call(s, "ListCryptoKeyVersions", key, suffix, NULL, CALL_PLAIN, &reply, st);
		if (e != P11K_OK)
			break;
		json_t *arr = json_object_get(reply, "cryptoKeyVersions");
		if (arr && !json_is_array(arr)) {
			snprintf(st->message, sizeof(st->message),
				 "ListCryptoKeyVersions: cryptoKeyVersions is not a list");
			e = st->err = P11K_ERR_BAD_REPLY;
		}
		size_t i;
		json_t *ver;
		json_array_foreach(arr, i, ver) {
			const char *name = json_string_value(json_object_get(ver, "name"));
			const char *state = json_string_value(json_object_get(ver, "state"));
			const char *alg = json_string_value(json_object_get(ver, "algorithm"));
			if (!name || strncmp(name, prefix, pl) != 0 || !name[pl] ||
			    strspn(name + pl, "0123456789") != strlen(name + pl) ||
			    strlen(name + pl) > 9)
				continue; /* not one of this key's versions */
			unsigned long id = strtoul(name + pl, NULL, 10);
			seen->total++;
			key_state ks = state_of(state);
			if (ks == KEY_STATE_DISABLED)
				seen->disabled++;
			if (ks != KEY_STATE_ENABLED)
				continue;
			if (!gcm_bits(alg)) {
				snprintf(seen->foreign_alg, sizeof(seen->foreign_alg), "%s",
					 alg ? alg : "?");
				continue;
			}
			versions_add(v, id, gcm_bits(alg));
		}
		const char *next = json_string_value(json_object_get(reply, "nextPageToken"));
		/* Percent-encoded, a token of up to 300 characters fits the URL. */
		if (e == P11K_OK && next && strlen(next) > 300)
			log_warn(COMP, "ListCryptoKeyVersions: page token too long; using the "
				 "versions listed so far");
		else if (e == P11K_OK && next && *next &&
			 !(token = pct_encode(next, strlen(next))))
			e = P11K_ERR_NOMEM;
		json_decref(reply);
		if (!token)
			break;
	}
	if (token) {
		log_warn(COMP, "ListCryptoKeyVersions: %s has more than %d pages of versions; "
			 "using the first ones", key, RAW_LIST_PAGES);
		free(token);
	}
	return e;
}

/* The enabled AES-GCM versions of a raw CryptoKey, from the service. */
static p11k_err list_versions(gcp_state *s, const char *key, raw_versions *v,
			      provider_status *st)
{
	list_seen seen = {0};
	memset(v, 0, sizeof(*v));
	p11k_err e = list_once(s, key, true, v, &seen, st);
	/* Nothing enabled: list everything, to say why. */
	if (e == P11K_OK && !v->n && !seen.total)
		e = list_once(s, key, false, v, &seen, st);
	if (e != P11K_OK || v->n)
		return e;
	if (seen.foreign_alg[0]) {
		snprintf(st->message, sizeof(st->message),
			 "%.120s: versions are %.40s, not AES_256_GCM/AES_128_GCM (AES-GCM needs "
			 "a RAW_ENCRYPT_DECRYPT key)", key, seen.foreign_alg);
		e = P11K_ERR_KEY_TYPE;
	} else if (seen.disabled) {
		snprintf(st->message, sizeof(st->message),
			 "%.120s: no enabled version (%zu disabled)", key, seen.disabled);
		e = P11K_ERR_KEY_DISABLED;
	} else {
		snprintf(st->message, sizeof(st->message),
			 "%.120s: no enabled version (%zu destroyed or unusable)", key, seen.total);
		e = P11K_ERR_KEY_NOT_FOUND;
	}
	return st->err = e;
}

/* The versions to use for key: cached for cache_ttl seconds unless fresh
 * is asked for. *cached says where they came from. */
static p11k_err raw_versions_of(gcp_state *s, const char *key, bool fresh, raw_versions *v,
				bool *cached, provider_status *st)
{
	uint64_t now = clock_now_s();
	*cached = false;
	if (s->lock_ok && !fresh && s->cache_ttl) {
		pthread_mutex_lock(&s->lock);
		for (size_t i = 0; i < RAW_CACHE_SLOTS; i++)
			if (strcmp(s->cache[i].key, key) == 0 && now >= s->cache[i].at &&
			    now - s->cache[i].at < s->cache_ttl) {
				*v = s->cache[i].v;
				*cached = true;
				break;
			}
		pthread_mutex_unlock(&s->lock);
		if (*cached)
			return P11K_OK;
	}
	p11k_err e = list_versions(s, key, v, st);
	if (s->lock_ok && s->cache_ttl) {
		pthread_mutex_lock(&s->lock);
		raw_cache *slot = NULL;
		for (size_t i = 0; i < RAW_CACHE_SLOTS && !slot; i++)
			if (strcmp(s->cache[i].key, key) == 0)
				slot = &s->cache[i];
		if (e != P11K_OK) {
			if (slot)
				slot->key[0] = 0; /* no stale list outlives a failure */
		} else {
			for (size_t i = 0; i < RAW_CACHE_SLOTS && !slot; i++)
				if (!s->cache[i].key[0])
					slot = &s->cache[i];
			if (!slot)
				slot = &s->cache[s->cache_next++ % RAW_CACHE_SLOTS];
			snprintf(slot->key, sizeof(slot->key), "%s", key);
			slot->at = now;
			slot->v = *v;
		}
		pthread_mutex_unlock(&s->lock);
	}
	return e;
}

static void raw_forget(gcp_state *s, const char *key)
{
	if (!s->lock_ok)
		return;
	pthread_mutex_lock(&s->lock);
	for (size_t i = 0; i < RAW_CACHE_SLOTS; i++)
		if (strcmp(s->cache[i].key, key) == 0)
			s->cache[i].key[0] = 0;
	pthread_mutex_unlock(&s->lock);
}

/* tagLength: an int32, absent meaning the default of 16 bytes. */
static bool tag_length_ok(const json_t *reply)
{
	json_t *t = json_object_get(reply, "tagLength");
	if (!t || json_is_null(t))
		return true;
	if (json_is_integer(t))
		return json_integer_value(t) == REMOTE_GCM_TAG_LEN;
	return json_is_string(t) && strcmp(json_string_value(t), "16") == 0;
}

static p11k_err raw_encrypt(gcp_state *s, const char *version, remote_req *r, uint8_t **out,
			    size_t *outlen, provider_status *st)
{
	const char *op = "RawEncrypt";
	json_t *req = json_object();
	if (!req || !set_bytes(req, "plaintext", r->in, r->inlen) ||
	    !set_aad(req, r->aad, r->aadlen)) {
		wipe_json_string(json_object_get(req, "plaintext"));
		json_decref(req);
		return P11K_ERR_NOMEM;
	}
	json_t *reply = NULL;
	p11k_err e = kms_call(s, op, version, ":rawEncrypt", req, CALL_RAW_ENCRYPT, &reply, st);
	wipe_json_string(json_object_get(req, "plaintext"));
	json_decref(req);
	if (e != P11K_OK)
		return e;
	uint8_t *iv = NULL;
	size_t ivlen = 0;
	const char *ver = json_string_value(json_object_get(reply, "name"));
	if (ver && strcmp(ver, version) != 0) {
		snprintf(st->message, sizeof(st->message),
			 "%s: reply names version %.100s, not the one asked for", op, ver);
		e = st->err = P11K_ERR_BAD_REPLY;
	}
	if (e == P11K_OK)
		e = check_verified(reply, op, "verifiedPlaintextCrc32c", st);
	if (e == P11K_OK && r->aadlen)
		e = check_verified(reply, op, "verifiedAdditionalAuthenticatedDataCrc32c", st);
	if (e == P11K_OK)
		e = get_bytes(reply, op, "ciphertext", true, out, outlen, st);
	if (e == P11K_OK)
		e = get_bytes(reply, op, "initializationVector", false, &iv, &ivlen, st);
	if (e == P11K_OK && ivlen != REMOTE_GCM_IV_LEN) {
		snprintf(st->message, sizeof(st->message),
			 "%s: initializationVector is %zu bytes, not %d", op, ivlen,
			 REMOTE_GCM_IV_LEN);
		e = st->err = P11K_ERR_BAD_REPLY;
	}
	if (e == P11K_OK && !tag_length_ok(reply)) {
		snprintf(st->message, sizeof(st->message), "%s: tagLength is not %d", op,
			 REMOTE_GCM_TAG_LEN);
		e = st->err = P11K_ERR_BAD_REPLY;
	}
	if (e == P11K_OK && *outlen != r->inlen + REMOTE_GCM_TAG_LEN) {
		snprintf(st->message, sizeof(st->message),
			 "%s: ciphertext is %zu bytes for %zu of plaintext", op, *outlen, r->inlen);
		e = st->err = P11K_ERR_BAD_REPLY;
	}
	if (e == P11K_OK) {
		memcpy(r->iv, iv, REMOTE_GCM_IV_LEN);
	} else {
		sec_free(*out);
		*out = NULL;
		*outlen = 0;
	}
	free(iv);
	json_decref(reply);
	return e;
}

static p11k_err raw_decrypt(gcp_state *s, const char *version, remote_req *r, uint8_t **out,
			    size_t *outlen, provider_status *st)
{
	const char *op = "RawDecrypt";
	json_t *req = json_object();
	if (!req || !set_bytes(req, "ciphertext", r->in, r->inlen) ||
	    !set_bytes(req, "initializationVector", r->iv, REMOTE_GCM_IV_LEN) ||
	    !set_aad(req, r->aad, r->aadlen) ||
	    json_object_set_new(req, "tagLength", json_integer(REMOTE_GCM_TAG_LEN)) != 0) {
		json_decref(req);
		return P11K_ERR_NOMEM;
	}
	json_t *reply = NULL;
	p11k_err e = kms_call(s, op, version, ":rawDecrypt", req, CALL_RAW_DECRYPT, &reply, st);
	json_decref(req);
	if (e != P11K_OK)
		return e;
	e = get_bytes(reply, op, "plaintext", true, out, outlen, st);
	if (e == P11K_OK)
		e = check_verified(reply, op, "verifiedCiphertextCrc32c", st);
	if (e == P11K_OK)
		e = check_verified(reply, op, "verifiedInitializationVectorCrc32c", st);
	if (e == P11K_OK && r->aadlen)
		e = check_verified(reply, op, "verifiedAdditionalAuthenticatedDataCrc32c", st);
	if (e == P11K_OK && *outlen != r->inlen - REMOTE_GCM_TAG_LEN) {
		snprintf(st->message, sizeof(st->message),
			 "%s: plaintext is %zu bytes for %zu of ciphertext", op, *outlen, r->inlen);
		e = st->err = P11K_ERR_BAD_REPLY;
	}
	if (e != P11K_OK) {
		sec_free(*out);
		*out = NULL;
		*outlen = 0;
	}
	json_decref(reply);
	return e;
}

static const char *ralg_name(remote_alg a)
{
	switch (a) {
	case RALG_RSA_OAEP_SHA1: return "RSA-OAEP (SHA-1)";
	case RALG_RSA_OAEP_SHA256: return "RSA-OAEP (SHA-256)";
	case RALG_AES_KW: return "AES key wrap";
	case RALG_AES_KWP: return "AES key wrap with padding";
	case RALG_AES_GCM: return "AES-GCM";
	}
	return "?";
}

static p11k_err raw_once(gcp_state *s, const char *version, remote_req *r, uint8_t **out,
			 size_t *outlen, provider_status *st)
{
	p11k_err e = r->encrypt ? raw_encrypt(s, version, r, out, outlen, st)
				: raw_decrypt(s, version, r, out, outlen, st);
	return st->err = e;
}

typedef struct raw_ctx {
	gcp_state *s;
	const char *key_id;
	const raw_versions *v;
	remote_req *r;
	uint8_t **out;
	size_t *outlen;
} raw_ctx;

static p11k_err raw_attempt(void *arg, size_t i, provider_status *st)
{
	raw_ctx *c = arg;
	char version[GCP_NAME_MAX + 32];
	snprintf(version, sizeof(version), "%s" VERSION_SEP "%lu", c->key_id, c->v->id[i]);
	p11k_err e = raw_once(c->s, version, c->r, c->out, c->outlen, st);
	if (e == P11K_ERR_INVALID_CIPHERTEXT)
		log_debug(COMP, "RawDecrypt: %s does not open it", version);
	return e;
}

/* Only a version that does not open the ciphertext sends the walk on. */
static bool raw_next(p11k_err e)
{
	return e == P11K_ERR_INVALID_CIPHERTEXT;
}

/* Standard AES-GCM on a RAW_ENCRYPT_DECRYPT key. A version name pins the
 * version; a CryptoKey (which has no primary when raw) encrypts with its
 * newest enabled version and decrypts with the newest enabled ones in
 * turn, moving on only when a version does not open the ciphertext. */
static p11k_err gcp_remote_crypt(void *state, const char *key_id, remote_req *r,
				 uint8_t **out, size_t *outlen, provider_status *st)
{
	gcp_state *s = state;
	*out = NULL;
	*outlen = 0;
	if (r->alg != RALG_AES_GCM) {
		snprintf(st->message, sizeof(st->message),
			 "Cloud KMS runs only AES-GCM (rawEncrypt) on a key, not %s",
			 ralg_name(r->alg));
		return st->err = P11K_ERR_KEY_TYPE;
	}
	if (!r->encrypt && r->inlen < REMOTE_GCM_TAG_LEN) {
		snprintf(st->message, sizeof(st->message),
			 "RawDecrypt: %zu bytes is shorter than the tag", r->inlen);
		return st->err = P11K_ERR_INVALID_CIPHERTEXT;
	}
	if (strstr(key_id, VERSION_SEP))
		return raw_once(s, key_id, r, out, outlen, st);
	p11k_err e = P11K_OK;
	for (int pass = 0; pass < 2; pass++) {
		raw_versions v;
		bool cached;
		e = raw_versions_of(s, key_id, pass > 0, &v, &cached, st);
		if (e != P11K_OK)
			return e;
		if (r->key_bits && v.bits[0] != r->key_bits) {
			snprintf(st->message, sizeof(st->message),
				 "%.120s is AES_%u_GCM; the configuration declares %zu bits", key_id,
				 v.bits[0], r->key_bits);
			return st->err = P11K_ERR_KEY_TYPE;
		}
		raw_ctx rc = {s, key_id, &v, r, out, outlen};
		version_walk w = {.n = r->encrypt ? 1 : v.n, .attempt = raw_attempt,
				  .next = raw_next, .arg = &rc};
		e = versions_try(&w, NULL, st);
		/* A version disabled or destroyed since the listing: list
		 * again, once. */
		if (cached && (e == P11K_ERR_KEY_DISABLED || e == P11K_ERR_KEY_NOT_FOUND)) {
			log_info(COMP, "%s: %s; listing its versions again", key_id, st->message);
			raw_forget(s, key_id);
			continue;
		}
		break;
	}
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

static void gcp_destroy(void *state)
{
	gcp_state *s = state;
	if (!s)
		return;
	gcp_creds_free(s->creds);
	if (s->lock_ok)
		pthread_mutex_destroy(&s->lock);
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
	s->lock_ok = pthread_mutex_init(&s->lock, NULL) == 0;
	/* Raw keys' version lists live as long as a revalidation. */
	json_t *rv = json_object_get(cfg, "revalidate_seconds");
	s->cache_ttl = json_is_integer(rv) && json_integer_value(rv) > 0
			       ? (uint64_t)json_integer_value(rv)
			       : 900;
	const char *ep = json_str_field(cfg, "endpoint");
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
	const char *seal = json_str_field(cfg, "seal_with");
	/* Else the first envelope key: a raw ("aes") key cannot :encrypt. */
	for (size_t i = 0; !seal && i < json_array_size(keys); i++) {
		const char *type = json_str_field(json_array_get(keys, i), "type");
		if (!type || strcmp(type, "envelope") == 0)
			seal = json_str_field(json_array_get(keys, i), "id");
	}
	if (e == P11K_OK && !seal) {
		snprintf(why, wl, "name the CryptoKey that seals the token: \"seal_with\" or "
				  "an envelope (ENCRYPT_DECRYPT) entry in \"keys\"");
		e = P11K_ERR_KEY_NOT_FOUND;
	}
	/* Names are checked here so a typo fails at C_Initialize, not at
	 * the first unseal. */
	for (size_t i = 0; e == P11K_OK && i <= json_array_size(keys); i++) {
		const char *id = i < json_array_size(keys)
					 ? json_str_field(json_array_get(keys, i), "id")
					 : seal;
		if (id && (!name_ok(id) || !strstr(id, "/cryptoKeys/"))) {
			snprintf(why, wl, "%.120s is not a CryptoKey resource name "
				 "(projects/*/locations/*/keyRings/*/cryptoKeys/*)", id);
			e = P11K_ERR_KEY_NOT_FOUND;
		}
	}
	if (e == P11K_OK && !(s->default_key = strdup(seal)))
		e = P11K_ERR_NOMEM;
	const char *cf = json_str_field(cfg, "credentials_file");
	if (e == P11K_OK && cf && access(cf, R_OK) != 0) {
		snprintf(why, wl, "credentials_file %.120s is not readable", cf);
		e = P11K_ERR_ACCESS_DENIED;
	}
	if (e == P11K_OK) {
		const char *ca = json_str_field(cfg, "ca_file");
		http_options ho = {.ca_file = ca};
		/* The metadata server speaks plain http only; loopback too,
		 * for GCE_METADATA_HOST pointing at a local emulator. */
		http_options mo = {.ca_file = ca, .allow_plain_metadata = true,
				   .allow_plain_loopback = true, .connect_timeout_ms = 1000};
		s->http = http_client_new(&ho);
		s->metadata = http_client_new(&mo);
		const char *scope = json_str_field(cfg, "scope");
		gcp_creds_options co = {.credentials_file = cf,
					.token_uri = json_str_field(cfg, "token_uri"),
					.metadata_host = json_str_field(cfg, "metadata_host"),
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

/* provider_ops.test_set_transport: the KMS/token endpoint client and the
 * metadata server's. */
static void gcp_test_set_transport(void *state, http_transport_fn fn, void *arg,
				   http_sleep_fn sleep_fn)
{
	gcp_state *s = state;
	http_client_set_transport(s->http, fn, arg);
	http_client_set_transport(s->metadata, fn, arg);
	if (sleep_fn) {
		http_client_set_sleep(s->http, sleep_fn, NULL);
		http_client_set_sleep(s->metadata, sleep_fn, NULL);
	}
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
	.remote_crypt = gcp_remote_crypt,
	.test_set_transport = gcp_test_set_transport,
};
