/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The AWS KMS provider (JSON 1.1 over HTTPS, SigV4; PROTOCOLS.md section 1).
 * Encrypt/Decrypt with SYMMETRIC_DEFAULT keys; the AAD the module passes
 * becomes the encryption context {"p11kms": base64url(aad)}, so a blob
 * opens only with the same context. Blobs are AWS's own: they name the key
 * and its backing version. Creation touches no network; every call goes
 * through the shared HTTP client (retries, Retry-After) and the standard
 * credential chain.
 *
 * Standard mechanisms (remote_crypt, docs/REMOTE.md): an asymmetric RSA
 * key with KeyUsage ENCRYPT_DECRYPT runs RSAES_OAEP_SHA_1/_SHA_256 through
 * the same Encrypt/Decrypt operations, with KeyId and EncryptionAlgorithm
 * always sent and no encryption context; its public numbers come from
 * GetPublicKey (DER SubjectPublicKeyInfo, decoded with OpenSSL), the
 * module keeping them. AWS keys do not rotate asymmetric material, so
 * there are no older versions to try.
 *
 * Signing keys (public_key, sign; docs/SIGNING.md): GetPublicKey checked
 * against KeySpec (RSA_2048..4096, ECC_NIST_P256/P384), KeyUsage and
 * SigningAlgorithms; Sign with MessageType DIGEST, the reply's KeyId and
 * SigningAlgorithm checked and ECDSA DER converted to r||s.
 *
 * Key versions: a symmetric key's version is its key material, named by
 * the 64-hex-digit KeyMaterialId (DescribeKey's CurrentKeyMaterialId, and
 * what Decrypt reports). describe reads when the current material was made
 * from ListKeyRotations (its RotationDate; the key's CreationDate when the
 * key was never rotated), once per material: the answer is kept. Encrypt's
 * reply names no material, so encrypt asks Decrypt of the fresh blob which
 * one sealed it, and checks the blob opens while at it.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "creds.h"
#include "common/log.h"
#include "common/secmem.h"
#include "providers/common/codec.h"
#include "providers/common/errmap.h"
#include "providers/common/http.h"
#include "providers/common/util.h"
#include "providers/provider.h"
#include "sigv4.h"

#define COMP "aws"
#define AWS_MAX_REPLY (64 * 1024)
#define MATERIAL_ID_LEN 64     /* BackingKeyIdType: 64 hex digits */
#define DATES_CACHED 8         /* key materials whose creation time is kept */
#define ROTATION_PAGES_MAX 10  /* ListKeyRotations pages read, 1000 entries each */

/* When a key material was made: it never changes, so describe asks once. */
typedef struct material_date {
	char arn[256];
	char material[MATERIAL_ID_LEN + 1];
	uint64_t made;
} material_date;

typedef struct aws_state {
	char *region;
	char *endpoint; /* https://host[:port] without trailing slash */
	char *host;     /* Host header: host[:port] */
	char *default_key;
	http_client *http;
	aws_creds_provider *creds;
	pthread_mutex_t lock; /* dates, next_date; never held across a call */
	material_date dates[DATES_CACHED];
	size_t next_date;
} aws_state;

static const field_spec aws_fields[] = {
	{"region", FT_STRING, true, 0, 0, NULL},
	{"endpoint", FT_STRING, false, 0, 0, NULL},
	{"sts_endpoint", FT_STRING, false, 0, 0, NULL},
	{"ca_file", FT_STRING, false, 0, 0, NULL},
	{"profile", FT_STRING, false, 0, 0, NULL},
	{"fips", FT_BOOL, false, 0, 0, NULL},
	{"timeout_ms", FT_UINT, false, 100, 120000, NULL},
	{NULL, FT_STRING, false, 0, 0, NULL},
};

/* AWS error types -> the internal vocabulary (PROTOCOLS.md 1.4). Dispatch
 * on __type, never on the HTTP status. */
static const errmap_entry aws_errors[] = {
	{"NotFoundException", P11K_ERR_KEY_NOT_FOUND},
	{"DisabledException", P11K_ERR_KEY_DISABLED},
	{"KMSInvalidStateException", P11K_ERR_KEY_DISABLED},
	{"KeyUnavailableException", P11K_ERR_UNREACHABLE},
	{"AccessDeniedException", P11K_ERR_ACCESS_DENIED},
	{"UnrecognizedClientException", P11K_ERR_ACCESS_DENIED},
	{"InvalidSignatureException", P11K_ERR_ACCESS_DENIED},
	{"IncompleteSignature", P11K_ERR_ACCESS_DENIED},
	{"ExpiredTokenException", P11K_ERR_ACCESS_DENIED},
	{"InvalidClientTokenId", P11K_ERR_ACCESS_DENIED},
	{"MissingAuthenticationToken", P11K_ERR_ACCESS_DENIED},
	/* The key's spec or usage does not allow the operation or algorithm
	 * (an RSA key asked for SYMMETRIC_DEFAULT, a symmetric key for OAEP). */
	{"InvalidKeyUsageException", P11K_ERR_KEY_TYPE},
	/* GetPublicKey on a symmetric key. */
	{"UnsupportedOperationException", P11K_ERR_KEY_TYPE},
	{"InvalidCiphertextException", P11K_ERR_INVALID_CIPHERTEXT},
	{"IncorrectKeyException", P11K_ERR_INVALID_CIPHERTEXT},
	{"ThrottlingException", P11K_ERR_THROTTLED},
	{"LimitExceededException", P11K_ERR_THROTTLED},
	{"KMSInternalException", P11K_ERR_UNREACHABLE},
	{"DependencyTimeoutException", P11K_ERR_UNREACHABLE},
	{"InternalFailure", P11K_ERR_UNREACHABLE},
	{"ServiceUnavailable", P11K_ERR_UNREACHABLE},
	{"ValidationException", P11K_ERR_INTERNAL},
};

static p11k_err map_error(const char *type)
{
	return errmap_lookup(aws_errors, ARRAY_SIZE(aws_errors), type, NULL);
}

/* A ValidationException is a request the service refused to parse or
 * check; the ones that name the algorithm, the key spec or the key usage
 * say that this key cannot run what was asked (a key declared "rsa" that
 * is not one), which the module reports as a key type mismatch. A size
 * limit ("cannot encrypt data larger than ...") stays internal: the module
 * checks lengths before it asks. */
static p11k_err validation_error(const char *msg)
{
	char low[181];
	size_t i;
	for (i = 0; msg[i] && i + 1 < sizeof(low); i++)
		low[i] = (char)((msg[i] >= 'A' && msg[i] <= 'Z') ? msg[i] + 32 : msg[i]);
	low[i] = 0;
	if (strstr(low, "larger than"))
		return P11K_ERR_INTERNAL;
	static const char *const about_key[] = {"algorithm", "key spec", "keyspec",
						"key usage", "keyusage", "asymmetric"};
	for (size_t k = 0; k < ARRAY_SIZE(about_key); k++)
		if (strstr(low, about_key[k]))
			return P11K_ERR_KEY_TYPE;
	return P11K_ERR_INTERNAL;
}

/* "aws.protocols#FooError:http://..." -> "FooError" (PROTOCOLS.md 1.1). */
static void error_type(const char *raw, char *out, size_t outlen)
{
	const char *p = strrchr(raw, '#');
	p = p ? p + 1 : raw;
	size_t n = strcspn(p, ":");
	if (n >= outlen)
		n = outlen - 1;
	memcpy(out, p, n);
	out[n] = 0;
}

/* --- one call ------------------------------------------------------------ */

typedef struct call {
	aws_state *s;
	const char *op;
	const char *body; /* JSON; may hold key material */
	size_t bodylen;
} call_t;

static p11k_err build(void *arg, int attempt, http_request *req, provider_status *st)
{
	call_t *c = arg;
	aws_creds cr = {0};
	char target[80];
	(void)attempt;
	p11k_err e = aws_creds_get(c->s->creds, &cr, st);
	if (e != P11K_OK)
		return e;
	snprintf(target, sizeof(target), "TrentService.%s", c->op);
	sigv4_header hs[] = {
		{"Host", c->s->host},
		{"Content-Type", "application/x-amz-json-1.1"},
		{"X-Amz-Target", target},
	};
	sigv4_request sr = {
		.method = "POST", .path = "/", .query = NULL,
		.headers = hs, .nheaders = ARRAY_SIZE(hs),
		.payload = (const uint8_t *)c->body, .payloadlen = c->bodylen,
		.region = c->s->region, .service = "kms", .now = clock_now_s(),
	};
	sigv4_result sig = {0};
	e = sigv4_sign(&sr, &cr, &sig);
	size_t ulen = strlen(c->s->endpoint) + 2;
	snprintf(req->method, sizeof(req->method), "POST");
	if (e == P11K_OK && !(req->url = malloc(ulen)))
		e = P11K_ERR_NOMEM;
	if (e == P11K_OK)
		snprintf(req->url, ulen, "%s/", c->s->endpoint);
	if (e == P11K_OK &&
	    (!http_header_add(req, "Content-Type", "application/x-amz-json-1.1") ||
	     !http_header_add(req, "X-Amz-Target", target) ||
	     !http_header_add(req, "X-Amz-Date", sig.amz_date) ||
	     (cr.session_token &&
	      !http_header_add(req, "X-Amz-Security-Token", cr.session_token)) ||
	     !http_header_add(req, "Authorization", sig.authorization)))
		e = P11K_ERR_NOMEM;
	if (e == P11K_OK && !(req->body = malloc(c->bodylen ? c->bodylen : 1)))
		e = P11K_ERR_NOMEM;
	if (e == P11K_OK) {
		memcpy(req->body, c->body, c->bodylen);
		req->bodylen = c->bodylen;
		req->body_secret = true;
	}
	sigv4_result_free(&sig);
	OPENSSL_cleanse(&sig, sizeof(sig));
	aws_creds_clear(&cr);
	return e;
}

static bool reply_type(const http_response *r, char *type, size_t tlen, json_t **out)
{
	json_error_t je;
	json_t *j = json_loadb((const char *)r->body.p, r->body.len, 0, &je);
	type[0] = 0;
	if (!j)
		return false;
	json_t *t = json_object_get(j, "__type");
	if (json_is_string(t))
		error_type(json_string_value(t), type, tlen);
	if (out)
		*out = j;
	else
		json_decref(j);
	return true;
}

/* KMS throttles with HTTP 400 (PROTOCOLS.md 1.4): retry on the type. */
static bool retryable(void *arg, const http_response *r)
{
	char type[96];
	(void)arg;
	if (r->status != 400 || !reply_type(r, type, sizeof(type), NULL))
		return false;
	return map_error(type) == P11K_ERR_THROTTLED;
}

/* Send op with body; on success *reply is the parsed JSON (caller frees,
 * after wiping secret strings it read). */
static p11k_err kms_call(aws_state *s, const char *op, json_t *req, json_t **reply,
			 provider_status *st)
{
	char *body = json_dumps(req, JSON_COMPACT);
	if (!body)
		return P11K_ERR_NOMEM;
	call_t c = {.s = s, .op = op, .body = body, .bodylen = strlen(body)};
	http_response resp;
	http_response_init(&resp, AWS_MAX_REPLY);
	p11k_err e = http_call(s->http, build, &c, retryable, NULL, &resp, st);
	OPENSSL_cleanse(body, c.bodylen);
	free(body);
	snprintf(st->request_id, sizeof(st->request_id), "%s", resp.request_id);
	st->http_status = resp.status;
	if (e == P11K_OK && resp.status == 200) {
		json_error_t je;
		*reply = json_loadb((const char *)resp.body.p, resp.body.len, 0, &je);
		if (!*reply) {
			snprintf(st->message, sizeof(st->message), "%s: reply is not JSON", op);
			e = P11K_ERR_BAD_REPLY;
		}
	} else if (e == P11K_OK) {
		json_t *j = NULL;
		char type[96];
		if (!reply_type(&resp, type, sizeof(type), &j) || !type[0]) {
			snprintf(st->message, sizeof(st->message), "%s: HTTP %ld without an "
				 "AWS error body", op, resp.status);
			e = resp.status >= 500 ? P11K_ERR_UNREACHABLE : P11K_ERR_BAD_REPLY;
		} else {
			json_t *m = json_object_get(j, "message");
			if (!json_is_string(m))
				m = json_object_get(j, "Message");
			snprintf(st->error_name, sizeof(st->error_name), "%s", type);
			/* AWS messages name keys and ARNs, never key material; but a
			 * signature mismatch quotes the expected canonical request,
			 * headers (a session token) included: keep the first line,
			 * and nothing from "Canonical" on. */
			char msg[181] = "";
			if (json_is_string(m))
				snprintf(msg, sizeof(msg), "%s", json_string_value(m));
			msg[strcspn(msg, "\r\n")] = 0;
			char *canon = strstr(msg, "Canonical");
			if (canon)
				*canon = 0;
			snprintf(st->message, sizeof(st->message), "%s: %s: %s", op, type, msg);
			e = map_error(type);
			if (strcmp(type, "ValidationException") == 0)
				e = validation_error(msg);
		}
		json_decref(j);
	} else if (resp.status) {
		char type[96];
		if (reply_type(&resp, type, sizeof(type), NULL) && type[0])
			snprintf(st->error_name, sizeof(st->error_name), "%s", type);
	}
	http_response_free(&resp);
	st->err = e;
	return e;
}

/* --- provider operations ------------------------------------------------ */

/* A key material id as the service writes it: 64 lower-case hex digits. */
static bool material_id_ok(const char *m)
{
	if (!m || strlen(m) != MATERIAL_ID_LEN)
		return false;
	for (const char *p = m; *p; p++)
		if (!((*p >= '0' && *p <= '9') || (*p >= 'a' && *p <= 'f')))
			return false;
	return true;
}

static uint64_t epoch_of(json_t *t)
{
	double v = json_is_number(t) ? json_number_value(t) : 0;
	return v > 0 && v < 1e12 ? (uint64_t)v : 0;
}

static bool date_get(aws_state *s, const char *arn, const char *mat, uint64_t *made)
{
	bool hit = false;
	pthread_mutex_lock(&s->lock);
	for (size_t i = 0; i < DATES_CACHED && !hit; i++)
		if (strcmp(s->dates[i].material, mat) == 0 && strcmp(s->dates[i].arn, arn) == 0) {
			*made = s->dates[i].made;
			hit = true;
		}
	pthread_mutex_unlock(&s->lock);
	return hit;
}

static void date_put(aws_state *s, const char *arn, const char *mat, uint64_t made)
{
	pthread_mutex_lock(&s->lock);
	material_date *d = &s->dates[s->next_date++ % DATES_CACHED];
	snprintf(d->arn, sizeof(d->arn), "%s", arn);
	snprintf(d->material, sizeof(d->material), "%s", mat);
	d->made = made;
	pthread_mutex_unlock(&s->lock);
}

/* What ListKeyRotations says about the current material, page by page. */
typedef struct rotations {
	const char *current;   /* CurrentKeyMaterialId, NULL when DescribeKey gave none */
	bool has_ids, has_states;
	uint64_t current_at;   /* newest RotationDate of an entry that is current */
	uint64_t newest_at;    /* newest RotationDate of any entry */
} rotations;

static void rotations_read(rotations *r, json_t *list)
{
	size_t i;
	json_t *e;
	json_array_foreach(list, i, e) {
		const char *id = json_string_value(json_object_get(e, "KeyMaterialId"));
		const char *state = json_string_value(json_object_get(e, "KeyMaterialState"));
		uint64_t at = epoch_of(json_object_get(e, "RotationDate"));
		r->has_ids |= id != NULL;
		r->has_states |= state != NULL;
		bool current = (state && strcmp(state, "CURRENT") == 0) ||
			       (id && r->current && strcmp(id, r->current) == 0);
		if (current && at > r->current_at)
			r->current_at = at;
		if (at > r->newest_at)
			r->newest_at = at;
	}
}

/* When the current key material of arn was made: the RotationDate of the
 * newest ListKeyRotations entry whose material is current (by
 * KeyMaterialState, or by id); the key's creation when no entry is (never
 * rotated: the list holds rotations only, and the first material is the
 * key's own). Replies from before key material ids had neither field: the
 * newest rotation made the current material. The order of the list is not
 * documented, so nothing here depends on it. */
static p11k_err current_material_made(aws_state *s, const char *arn, const char *mat,
				      uint64_t key_created, uint64_t *made, provider_status *st)
{
	rotations r = {.current = mat};
	char marker[1024] = "";
	p11k_err e = P11K_OK;
	int page = 0;
	for (bool more = true; more && e == P11K_OK; page++) {
		if (page == ROTATION_PAGES_MAX) {
			snprintf(st->message, sizeof(st->message),
				 "ListKeyRotations: more than %d pages", ROTATION_PAGES_MAX);
			return st->err = P11K_ERR_BAD_REPLY;
		}
		json_t *reply = NULL, *req = json_pack("{s:s, s:i}", "KeyId", arn, "Limit", 1000);
		if (!req || (marker[0] &&
			     json_object_set_new(req, "Marker", json_string(marker)) != 0)) {
			json_decref(req);
			return st->err = P11K_ERR_NOMEM;
		}
		e = kms_call(s, "ListKeyRotations", req, &reply, st);
		json_decref(req);
		if (e != P11K_OK)
			break;
		json_t *list = json_object_get(reply, "Rotations");
		const char *next = json_string_value(json_object_get(reply, "NextMarker"));
		more = json_is_true(json_object_get(reply, "Truncated"));
		if (!json_is_array(list) || (more && (!next || !*next ||
						      strlen(next) >= sizeof(marker)))) {
			snprintf(st->message, sizeof(st->message),
				 "ListKeyRotations: no Rotations list, or Truncated without NextMarker");
			e = st->err = P11K_ERR_BAD_REPLY;
		} else {
			rotations_read(&r, list);
			if (more)
				snprintf(marker, sizeof(marker), "%s", next);
		}
		json_decref(reply);
	}
	if (e != P11K_OK)
		return e;
	if (r.current_at)
		*made = r.current_at;
	else if (!r.has_ids && !r.has_states && r.newest_at)
		*made = r.newest_at;
	else
		*made = key_created;
	return P11K_OK;
}

static p11k_err aws_describe(void *state, const char *key_id, key_info *out,
			     provider_status *st)
{
	aws_state *s = state;
	json_t *reply = NULL, *req = json_pack("{s:s}", "KeyId", key_id);
	memset(out, 0, sizeof(*out));
	if (!req)
		return P11K_ERR_NOMEM;
	p11k_err e = kms_call(s, "DescribeKey", req, &reply, st);
	json_decref(req);
	if (e != P11K_OK)
		return e;
	json_t *md = json_object_get(reply, "KeyMetadata");
	const char *state_s = json_string_value(json_object_get(md, "KeyState"));
	const char *arn = json_string_value(json_object_get(md, "Arn"));
	const char *m = json_string_value(json_object_get(md, "CurrentKeyMaterialId"));
	if (!state_s || (m && !material_id_ok(m))) {
		snprintf(st->message, sizeof(st->message),
			 "DescribeKey: no KeyState, or a CurrentKeyMaterialId that is not 64 hex "
			 "digits");
		json_decref(reply);
		return st->err = P11K_ERR_BAD_REPLY;
	}
	out->state = strcmp(state_s, "Enabled") == 0           ? KEY_STATE_ENABLED
		     : strcmp(state_s, "PendingDeletion") == 0 ? KEY_STATE_PENDING_DELETION
							       : KEY_STATE_DISABLED;
	snprintf(out->key_id, sizeof(out->key_id), "%s", arn ? arn : key_id);
	char matbuf[MATERIAL_ID_LEN + 1];
	const char *mat = m ? memcpy(matbuf, m, sizeof(matbuf)) : NULL;
	/* The version is the key material; a key without one (asymmetric
	 * keys, which never rotate) has one version, itself: the ARN, as
	 * encrypt records then too. */
	snprintf(out->primary_version, sizeof(out->primary_version), "%.*s",
		 (int)sizeof(out->primary_version) - 1, mat ? mat : out->key_id);
	out->created_at = epoch_of(json_object_get(md, "CreationDate"));
	json_decref(reply);
	/* Keys without materials (asymmetric) never rotate. */
	if (!mat) {
		out->version_created_at = out->created_at;
		return P11K_OK;
	}
	uint64_t made = 0;
	if (date_get(s, out->key_id, mat, &made)) {
		out->version_created_at = out->rotated_at = made;
		return P11K_OK;
	}
	/* Only a usable key's age matters: a disabled one is a revocation,
	 * and its age stays unknown (0). */
	if (out->state != KEY_STATE_ENABLED)
		return P11K_OK;
	/* A failure here says nothing about the key's state, which is what
	 * describe is asked for: the age becomes unknown, the call succeeds. */
	provider_status ls = {0};
	if (current_material_made(s, out->key_id, mat, out->created_at, &made, &ls) != P11K_OK) {
		log_warn(COMP, "%s: when its key material %.16s... was made is unknown (%s%s%s); "
			       "the rotation age cannot be checked%s",
			 out->key_id, mat, p11k_err_name(ls.err), ls.message[0] ? ": " : "",
			 ls.message, ls.err == P11K_ERR_ACCESS_DENIED
					     ? ": allow kms:ListKeyRotations on the key"
					     : "");
		out->version_created_at = 0;
		return P11K_OK;
	}
	date_put(s, out->key_id, mat, made);
	out->version_created_at = out->rotated_at = made;
	return P11K_OK;
}

static json_t *context_of(const uint8_t *aad, size_t aadlen)
{
	if (!aadlen)
		return NULL;
	char *v = b64url_encode(aad, aadlen);
	json_t *ctx = v ? json_pack("{s:s}", "p11kms", v) : NULL;
	free(v);
	return ctx;
}

/* Wipe and drop a JSON string that held key material. */
/* One Encrypt or Decrypt: the input goes in in_field (base64), the output
 * comes back from out_field, decoded into *out (secure memory when
 * out_secret; malloc'd otherwise). The AAD, if any, becomes the encryption
 * context. reply_key receives the key ARN the reply names ("" if none). */
typedef struct crypt_call {
	const char *op;        /* "Encrypt" or "Decrypt" */
	const char *key_id;
	const char *alg;       /* EncryptionAlgorithm */
	const char *in_field;  /* "Plaintext" or "CiphertextBlob" */
	const uint8_t *in;
	size_t inlen;
	const uint8_t *aad;
	size_t aadlen;
	const char *out_field; /* "CiphertextBlob" or "Plaintext" */
	bool out_secret;
	uint8_t *out;
	size_t outlen;
	char reply_key[256];
	char reply_material[MATERIAL_ID_LEN + 1]; /* KeyMaterialId, "" if none */
} crypt_call;

static p11k_err kms_crypt(aws_state *s, crypt_call *c, provider_status *st)
{
	c->out = NULL;
	c->outlen = 0;
	c->reply_key[0] = c->reply_material[0] = 0;
	char *b64 = b64_encode(c->in, c->inlen);
	json_t *ctx = context_of(c->aad, c->aadlen);
	json_t *req = b64 ? json_pack("{s:s, s:s, s:s}", "KeyId", c->key_id, c->in_field, b64,
				      "EncryptionAlgorithm", c->alg)
			  : NULL;
	if (b64) {
		OPENSSL_cleanse(b64, strlen(b64));
		free(b64);
	}
	if (!req || (c->aadlen && (!ctx || json_object_set_new(req, "EncryptionContext", ctx)))) {
		if (!c->aadlen || !req)
			json_decref(ctx);
		json_decref(req);
		return st->err = P11K_ERR_NOMEM;
	}
	json_t *reply = NULL;
	p11k_err e = kms_call(s, c->op, req, &reply, st);
	wipe_json_string(json_object_get(req, c->in_field));
	json_decref(req);
	if (e != P11K_OK)
		return e;
	json_t *o = json_object_get(reply, c->out_field);
	const char *arn = json_string_value(json_object_get(reply, "KeyId"));
	const char *mat = json_string_value(json_object_get(reply, "KeyMaterialId"));
	if (material_id_ok(mat))
		memcpy(c->reply_material, mat, MATERIAL_ID_LEN + 1);
	if (!json_is_string(o) || !b64_decode(json_string_value(o), json_string_length(o),
					      c->out_secret, &c->out, &c->outlen)) {
		snprintf(st->message, sizeof(st->message), "%s: bad %s", c->op, c->out_field);
		e = st->err = P11K_ERR_BAD_REPLY;
	} else {
		snprintf(c->reply_key, sizeof(c->reply_key), "%s", arn ? arn : "");
	}
	wipe_json_string(o);
	json_decref(reply);
	return e;
}

/* Decrypt of an envelope blob; mat (may be NULL) receives the key material
 * the service names, "" if none. */
static p11k_err envelope_decrypt(aws_state *s, const char *key_id, const uint8_t *blob,
				 size_t bloblen, const uint8_t *aad, size_t aadlen, uint8_t **pt,
				 size_t *ptlen, char *mat, provider_status *st)
{
	crypt_call c = {.op = "Decrypt", .key_id = key_id, .alg = "SYMMETRIC_DEFAULT",
			.in_field = "CiphertextBlob", .in = blob, .inlen = bloblen, .aad = aad,
			.aadlen = aadlen, .out_field = "Plaintext", .out_secret = true};
	p11k_err e = kms_crypt(s, &c, st);
	if (e != P11K_OK)
		return e;
	*pt = c.out;
	*ptlen = c.outlen;
	if (mat)
		memcpy(mat, c.reply_material, MATERIAL_ID_LEN + 1);
	return P11K_OK;
}

static p11k_err aws_decrypt(void *state, const char *key_id, const uint8_t *blob,
			    size_t bloblen, const uint8_t *aad, size_t aadlen,
			    uint8_t **pt, size_t *ptlen, provider_status *st)
{
	return envelope_decrypt(state, key_id, blob, bloblen, aad, aadlen, pt, ptlen, NULL, st);
}

/* Which key material sealed blob: Decrypt of it names the material (the
 * Encrypt reply does not), and shows the blob opens to pt. "" when the
 * service names none; P11K_ERR_BAD_REPLY when the blob opens to anything
 * but pt. */
static p11k_err sealing_material(aws_state *s, const char *key_id, const uint8_t *blob,
				 size_t bloblen, const uint8_t *pt, size_t ptlen, const uint8_t *aad,
				 size_t aadlen, char mat[MATERIAL_ID_LEN + 1], provider_status *st)
{
	uint8_t *back = NULL;
	size_t backlen = 0;
	p11k_err e = envelope_decrypt(s, key_id, blob, bloblen, aad, aadlen, &back, &backlen, mat,
				      st);
	if (e != P11K_OK)
		return e;
	bool same = backlen == ptlen && CRYPTO_memcmp(back, pt, ptlen) == 0;
	sec_free(back);
	if (!same) {
		snprintf(st->message, sizeof(st->message),
			 "Decrypt of the blob Encrypt made under %.100s gave other bytes", key_id);
		return st->err = P11K_ERR_BAD_REPLY;
	}
	return P11K_OK;
}

static p11k_err aws_encrypt(void *state, const char *key_id, const uint8_t *pt,
			    size_t ptlen, const uint8_t *aad, size_t aadlen,
			    uint8_t **blob, size_t *bloblen, char *kv, size_t kvlen,
			    provider_status *st)
{
	crypt_call c = {.op = "Encrypt", .key_id = key_id, .alg = "SYMMETRIC_DEFAULT",
			.in_field = "Plaintext", .in = pt, .inlen = ptlen, .aad = aad,
			.aadlen = aadlen, .out_field = "CiphertextBlob"};
	p11k_err e = kms_crypt(state, &c, st);
	if (e != P11K_OK)
		return e;
	const char *arn = c.reply_key[0] ? c.reply_key : key_id;
	if (!kv || !kvlen) {
		*blob = c.out;
		*bloblen = c.outlen;
		return P11K_OK;
	}
	/* The version is the key material (what describe calls the primary
	 * version). */
	char mat[MATERIAL_ID_LEN + 1];
	memcpy(mat, c.reply_material, sizeof(mat));
	if (!mat[0]) {
		provider_status vs = {0};
		e = sealing_material(state, arn, c.out, c.outlen, pt, ptlen, aad, aadlen, mat, &vs);
		if (e == P11K_ERR_BAD_REPLY) {
			free(c.out);
			*st = vs;
			return e;
		}
		if (e != P11K_OK) {
			log_info(COMP, "%s: which key material sealed the blob is unknown (Decrypt: "
				       "%s%s%s); recording the key ARN as its version",
				 arn, p11k_err_name(vs.err), vs.message[0] ? ": " : "", vs.message);
			mat[0] = 0;
		}
	}
	if (!mat[0])
		log_debug(COMP, "%s: the service names no key material; the key ARN is the "
				"version", arn);
	*blob = c.out;
	*bloblen = c.outlen;
	snprintf(kv, kvlen, "%s", mat[0] ? mat : arn);
	return P11K_OK;
}

/* --- standard mechanisms (remote_crypt, public_key, sign) ------------------ */

static p11k_err aws_remote_crypt(void *state, const char *key_id, remote_req *r,
				 uint8_t **out, size_t *outlen, provider_status *st)
{
	*out = NULL;
	*outlen = 0;
	const char *alg = r->alg == RALG_RSA_OAEP_SHA1	 ? "RSAES_OAEP_SHA_1"
			  : r->alg == RALG_RSA_OAEP_SHA256 ? "RSAES_OAEP_SHA_256"
							   : NULL;
	if (!alg) {
		snprintf(st->message, sizeof(st->message),
			 "AWS KMS runs no standard algorithm %d: only RSA-OAEP (SHA-1, SHA-256) "
			 "on asymmetric RSA keys", (int)r->alg);
		return st->err = P11K_ERR_KEY_TYPE;
	}
	if ((!r->in && r->inlen) || r->aadlen) {
		snprintf(st->message, sizeof(st->message), "remote_crypt: malformed request");
		return st->err = P11K_ERR_INTERNAL;
	}
	/* Both directions name the key and the algorithm: an asymmetric
	 * ciphertext carries neither. No context: AWS refuses one with
	 * asymmetric keys. */
	crypt_call c = {.op = r->encrypt ? "Encrypt" : "Decrypt", .key_id = key_id, .alg = alg,
			.in_field = r->encrypt ? "Plaintext" : "CiphertextBlob",
			.in = r->in, .inlen = r->inlen,
			.out_field = r->encrypt ? "CiphertextBlob" : "Plaintext",
			.out_secret = true};
	p11k_err e = kms_crypt(state, &c, st);
	if (e != P11K_OK)
		return e;
	if (c.outlen == 0 && r->encrypt) {
		sec_free(c.out);
		snprintf(st->message, sizeof(st->message), "Encrypt: empty CiphertextBlob");
		return st->err = P11K_ERR_BAD_REPLY;
	}
	*out = c.out;
	*outlen = c.outlen;
	return P11K_OK;
}

/* --- signing keys (public_key, sign) ---------------------------------------- */

/* Does the key ARN a reply names belong to what was asked? An ARN asked
 * is the ARN; a key id (UUID, mrk-...) is the ARN's last segment; an alias
 * (alias/NAME or its ARN) names no key id to compare, so any key ARN of the
 * region's form passes. */
static bool key_arn_matches(const char *asked, const char *arn)
{
	if (!arn || strncmp(arn, "arn:", 4) != 0 || !strstr(arn, ":key/"))
		return false;
	if (strncmp(asked, "alias/", 6) == 0 || (strncmp(asked, "arn:", 4) == 0 &&
						 strstr(asked, ":alias/")))
		return true;
	if (strncmp(asked, "arn:", 4) == 0)
		return strcmp(asked, arn) == 0;
	const char *id = strstr(arn, ":key/") + 5;
	return strcmp(id, asked) == 0;
}

/* SigningAlgorithmSpec names (botocore kms-2014-11-01) -> sign_alg. */
static const struct {
	const char *name;
	sign_alg alg;
} aws_salgs[] = {
	{"RSASSA_PKCS1_V1_5_SHA_256", SALG_RSA_PKCS1_SHA256},
	{"RSASSA_PKCS1_V1_5_SHA_384", SALG_RSA_PKCS1_SHA384},
	{"RSASSA_PKCS1_V1_5_SHA_512", SALG_RSA_PKCS1_SHA512},
	{"RSASSA_PSS_SHA_256", SALG_RSA_PSS_SHA256},
	{"RSASSA_PSS_SHA_384", SALG_RSA_PSS_SHA384},
	{"RSASSA_PSS_SHA_512", SALG_RSA_PSS_SHA512},
	{"ECDSA_SHA_256", SALG_ECDSA_SHA256},
	{"ECDSA_SHA_384", SALG_ECDSA_SHA384},
};

static const char *aws_salg_name(sign_alg a)
{
	for (size_t i = 0; i < ARRAY_SIZE(aws_salgs); i++)
		if (aws_salgs[i].alg == a)
			return aws_salgs[i].name;
	return NULL;
}

/* The algorithms of the list the key's kind can run (ECDSA_SHA_256 on
 * P-256 only, ECDSA_SHA_384 on P-384 only, RSASSA_* on RSA); names this
 * module does not run (ECDSA_SHA_512, SM2DSA, ML_DSA_*) are skipped. */
static bool aws_sign_algs(json_t *list, const spki_desc *d, unsigned *mask)
{
	size_t i;
	json_t *v;
	*mask = 0;
	if (!list)
		return true; /* none named: none offered */
	if (!json_is_array(list) || json_array_size(list) > 32)
		return false;
	json_array_foreach(list, i, v) {
		const char *n = json_string_value(v);
		if (!n)
			return false;
		for (size_t k = 0; k < ARRAY_SIZE(aws_salgs); k++) {
			sign_alg a = aws_salgs[k].alg;
			size_t half = salg_ec_half(a);
			bool fits = d->ec ? half * 8 == d->bits : half == 0;
			if (strcmp(n, aws_salgs[k].name) == 0 && fits)
				*mask |= SALG_BIT(a);
		}
	}
	return true;
}

/* GetPublicKey's reply for public_key: KeyId, KeySpec, KeyUsage, PublicKey
 * and, for SIGN_VERIFY keys, SigningAlgorithms, each checked against the
 * others and against the key asked for. */
static p11k_err parse_asym_public(json_t *reply, const char *key_id, asym_public *out,
				  provider_status *st)
{
	const char *op = "GetPublicKey";
	const char *arn = json_str_field(reply, "KeyId");
	const char *spec = json_str_field(reply, "KeySpec");
	if (!spec)
		spec = json_str_field(reply, "CustomerMasterKeySpec");
	const char *usage = json_str_field(reply, "KeyUsage");
	json_t *pk = json_object_get(reply, "PublicKey");
	if (!spec || !usage) {
		snprintf(st->message, sizeof(st->message), "%s: reply lacks KeySpec or KeyUsage", op);
		return st->err = P11K_ERR_BAD_REPLY;
	}
	if (!key_arn_matches(key_id, arn)) {
		snprintf(st->message, sizeof(st->message),
			 "%s: reply names key %.100s, not %.100s", op, arn ? arn : "(none)", key_id);
		return st->err = P11K_ERR_BAD_REPLY;
	}
	/* KeySpec: RSA_2048/3072/4096, ECC_NIST_P256/P384 here; the rest
	 * (ECC_NIST_P521, ECC_SECG_P256K1, SM2, HMAC_*, ML_DSA_*,
	 * SYMMETRIC_DEFAULT) are keys the module does not use. */
	unsigned want = 0;
	bool ec = false;
	if (strcmp(spec, "RSA_2048") == 0)
		want = 2048;
	else if (strcmp(spec, "RSA_3072") == 0)
		want = 3072;
	else if (strcmp(spec, "RSA_4096") == 0)
		want = 4096;
	else if (strcmp(spec, "ECC_NIST_P256") == 0)
		want = 256, ec = true;
	else if (strcmp(spec, "ECC_NIST_P384") == 0)
		want = 384, ec = true;
	bool sign = strcmp(usage, "SIGN_VERIFY") == 0;
	bool decrypt = strcmp(usage, "ENCRYPT_DECRYPT") == 0;
	if (!want || !(sign || (decrypt && !ec))) {
		snprintf(st->message, sizeof(st->message),
			 "key %.100s is %.24s with usage %.24s: not an RSA or EC P-256/P-384 "
			 "signing key, nor an RSA decryption key", key_id, spec, usage);
		return st->err = P11K_ERR_KEY_TYPE;
	}
	uint8_t *der = NULL;
	size_t derlen = 0;
	spki_desc d;
	char why[160];
	if (!json_is_string(pk) || json_string_length(pk) > 4096 ||
	    !b64_decode(json_string_value(pk), json_string_length(pk), false, &der, &derlen)) {
		snprintf(st->message, sizeof(st->message), "%s: PublicKey is missing or not base64",
			 op);
		return st->err = P11K_ERR_BAD_REPLY;
	}
	p11k_err e = spki_check(der, derlen, &d, why, sizeof(why));
	if (e == P11K_OK && (d.ec != ec || d.bits != want)) {
		snprintf(why, sizeof(why), "the public key is not the %.24s the KeySpec names", spec);
		e = P11K_ERR_BAD_REPLY;
	}
	unsigned algs = 0;
	if (e == P11K_OK && sign &&
	    !aws_sign_algs(json_object_get(reply, "SigningAlgorithms"), &d, &algs)) {
		snprintf(why, sizeof(why), "SigningAlgorithms is not a list of names");
		e = P11K_ERR_BAD_REPLY;
	}
	if (e == P11K_OK && sign && !algs) {
		snprintf(why, sizeof(why), "the key offers no signing algorithm this module runs");
		e = P11K_ERR_KEY_TYPE;
	}
	if (e != P11K_OK) {
		free(der);
		snprintf(st->message, sizeof(st->message), "%s: %.80s: %.120s", op, key_id, why);
		return st->err = e;
	}
	out->spki = der;
	out->spkilen = derlen;
	out->uses = sign ? ASYM_USE_SIGN : ASYM_USE_DECRYPT;
	out->sign_algs = algs;
	out->version[0] = 0; /* one version: AWS never rotates asymmetric material */
	return P11K_OK;
}

static p11k_err aws_public_key(void *state, const char *key_id, asym_public *out,
			       provider_status *st)
{
	memset(out, 0, sizeof(*out));
	json_t *req = json_pack("{s:s}", "KeyId", key_id), *reply = NULL;
	if (!req)
		return st->err = P11K_ERR_NOMEM;
	p11k_err e = kms_call(state, "GetPublicKey", req, &reply, st);
	json_decref(req);
	if (e != P11K_OK)
		return e;
	e = parse_asym_public(reply, key_id, out, st);
	json_decref(reply);
	return e;
}

/* Sign with MessageType DIGEST: the service signs the digest as given
 * (PKCS #1 v1.5 with the DigestInfo, PSS with salt = hash length, ECDSA).
 * RSA signatures come as the modulus' size; ECDSA ones as DER, converted
 * to r||s. */
static p11k_err aws_sign(void *state, const char *key_id, const char *version, sign_alg alg,
			 const uint8_t *digest, size_t dlen, uint8_t **sig, size_t *siglen,
			 provider_status *st)
{
	const char *op = "Sign";
	const char *name = aws_salg_name(alg);
	*sig = NULL;
	*siglen = 0;
	if (!name || !digest || dlen != salg_digest_len(alg) || (version && version[0])) {
		snprintf(st->message, sizeof(st->message),
			 "%s: malformed request (algorithm %d, %zu-byte digest%s)", op, (int)alg, dlen,
			 version && version[0] ? ", a version: AWS keys have none" : "");
		return st->err = P11K_ERR_INTERNAL;
	}
	char *b64 = b64_encode(digest, dlen);
	json_t *req = b64 ? json_pack("{s:s, s:s, s:s, s:s}", "KeyId", key_id, "Message", b64,
				      "MessageType", "DIGEST", "SigningAlgorithm", name)
			  : NULL;
	free(b64);
	if (!req)
		return st->err = P11K_ERR_NOMEM;
	json_t *reply = NULL;
	p11k_err e = kms_call(state, op, req, &reply, st);
	json_decref(req);
	if (e != P11K_OK)
		return e;
	const char *arn = json_str_field(reply, "KeyId");
	const char *ralg = json_str_field(reply, "SigningAlgorithm");
	json_t *sv = json_object_get(reply, "Signature");
	uint8_t *raw = NULL;
	size_t rawlen = 0;
	if (!key_arn_matches(key_id, arn)) {
		snprintf(st->message, sizeof(st->message), "%s: reply names key %.100s, not %.100s",
			 op, arn ? arn : "(none)", key_id);
		e = P11K_ERR_BAD_REPLY;
	} else if (!ralg || strcmp(ralg, name) != 0) {
		snprintf(st->message, sizeof(st->message), "%s: reply names algorithm %.40s, not %s",
			 op, ralg ? ralg : "(none)", name);
		e = P11K_ERR_BAD_REPLY;
	} else if (!json_is_string(sv) || json_string_length(sv) > 1024 ||
		   !b64_decode(json_string_value(sv), json_string_length(sv), false, &raw,
			       &rawlen)) {
		snprintf(st->message, sizeof(st->message), "%s: Signature is missing or not base64",
			 op);
		e = P11K_ERR_BAD_REPLY;
	} else {
		char why[120];
		e = sig_for_module(alg, true, &raw, rawlen, sig, siglen, why, sizeof(why));
		if (e != P11K_OK)
			snprintf(st->message, sizeof(st->message), "%s: %s", op, why);
	}
	free(raw);
	json_decref(reply);
	return st->err = e;
}

static size_t aws_max_blob_len(void *state, size_t ptlen)
{
	(void)state;
	/* KMS ciphertexts carry a header of a few hundred bytes at most; the
	 * service caps them at 6144 bytes. */
	size_t n = ptlen + 1024;
	return n > 6144 ? 6144 : n;
}

/* --- creation (no network) ------------------------------------------------ */

static void aws_destroy(void *state)
{
	aws_state *s = state;
	if (!s)
		return;
	aws_creds_provider_free(s->creds);
	http_client_free(s->http);
	pthread_mutex_destroy(&s->lock);
	free(s->region);
	free(s->endpoint);
	free(s->host);
	free(s->default_key);
	free(s);
}

static p11k_err aws_create(const json_t *cfg, const char *cfg_path, void **state,
			   char *why, size_t wl)
{
	(void)cfg_path;
	aws_state *s = calloc(1, sizeof(*s));
	if (!s)
		return P11K_ERR_NOMEM;
	pthread_mutex_init(&s->lock, NULL);
	const char *region = json_str_field(cfg, "region");
	const char *ep = json_str_field(cfg, "endpoint");
	const char *env_ep = getenv("AWS_ENDPOINT_URL_KMS");
	if (!env_ep || !*env_ep)
		env_ep = getenv("AWS_ENDPOINT_URL");
	char defep[160];
	snprintf(defep, sizeof(defep), "https://kms%s.%s.amazonaws.com",
		 json_is_true(json_object_get(cfg, "fips")) ? "-fips" : "", region);
	const char *use = ep ? ep : (env_ep && *env_ep) ? env_ep : defep;
	p11k_err e = P11K_OK;
	if (strncmp(use, "https://", 8) != 0) {
		snprintf(why, wl, "endpoint %.100s: only https:// endpoints are accepted", use);
		e = P11K_ERR_ACCESS_DENIED;
	}
	s->region = strdup(region);
	s->endpoint = strdup(use);
	if (e == P11K_OK && (!s->region || !s->endpoint))
		e = P11K_ERR_NOMEM;
	if (e == P11K_OK) {
		size_t n = strlen(s->endpoint);
		while (n > 8 && s->endpoint[n - 1] == '/')
			s->endpoint[--n] = 0;
		const char *h = s->endpoint + 8;
		if (strchr(h, '/')) {
			snprintf(why, wl, "endpoint %.100s: give scheme and host only", use);
			e = P11K_ERR_ACCESS_DENIED;
		} else if (!(s->host = strdup(h))) {
			e = P11K_ERR_NOMEM;
		}
	}
	/* Else the first envelope key: an asymmetric ("rsa") key cannot run
	 * the SYMMETRIC_DEFAULT Encrypt that seals. */
	const char *seal = cfg_envelope_seal_key(cfg);
	if (e == P11K_OK && seal && !(s->default_key = strdup(seal)))
		e = P11K_ERR_NOMEM;
	if (e == P11K_OK && !seal) {
		snprintf(why, wl, "name the KMS key that seals the token: \"seal_with\" or "
				  "an envelope (symmetric) entry in \"keys\"");
		e = P11K_ERR_KEY_NOT_FOUND;
	}
	if (e == P11K_OK) {
		const char *ca = json_str_field(cfg, "ca_file");
		if (!ca)
			ca = getenv("AWS_CA_BUNDLE");
		json_t *to = json_object_get(cfg, "timeout_ms");
		/* Plain http to loopback, as the SDKs allow it, for the
		 * container credentials and IMDS endpoints (aws-vault's
		 * --ecs-server, Greengrass); the KMS endpoint stays https-only
		 * (checked above). */
		http_options ho = {.ca_file = ca, .allow_plain_metadata = true,
				   .allow_plain_loopback = true,
				   .total_timeout_ms = to ? (long)json_integer_value(to) : 0};
		s->http = http_client_new(&ho);
		aws_chain_options co = {.profile = json_str_field(cfg, "profile"),
					.region = region,
					.sts_endpoint = json_str_field(cfg, "sts_endpoint"),
					.http = s->http};
		s->creds = s->http ? aws_creds_chain_new(&co) : NULL;
		if (!s->http || !s->creds)
			e = P11K_ERR_NOMEM;
	}
	if (e != P11K_OK) {
		aws_destroy(s);
		return e;
	}
	*state = s;
	return P11K_OK;
}

/* provider_ops.test_set_transport. */
static void aws_test_set_transport(void *state, http_transport_fn fn, void *arg,
				   http_sleep_fn sleep_fn)
{
	aws_state *s = state;
	http_client_set_transport(s->http, fn, arg);
	http_client_set_sleep(s->http, sleep_fn, NULL);
}

static const char *aws_default_seal_key(void *state)
{
	return ((aws_state *)state)->default_key;
}

const provider_ops aws_provider_ops = {
	.type = "aws",
	.fields = aws_fields,
	.create = aws_create,
	.destroy = aws_destroy,
	.default_seal_key = aws_default_seal_key,
	.describe = aws_describe,
	.encrypt = aws_encrypt,
	.decrypt = aws_decrypt,
	.max_blob_len = aws_max_blob_len,
	.remote_crypt = aws_remote_crypt,
	.public_key = aws_public_key,
	.sign = aws_sign,
	.test_set_transport = aws_test_set_transport,
};
