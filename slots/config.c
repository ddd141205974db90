/* SPDX-License-Identifier: Apache-2.0 */
#include "config.h"

#include <errno.h>
#include <limits.h>
#include <stdarg.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "common/jsonpos.h"
#include "common/log.h"
#include "audit.h"

#define CONFIG_MAX_BYTES (1024 * 1024)
#define MAX_PROVIDERS 64

/* Fields every provider object accepts. */
static const char *const login_choices[] = {"required", "optional", NULL};
static const char *const policy_choices[] = {"any", "all", NULL};
static const field_spec common_fields[] = {
	{"name", FT_STRING, true, 0, 0, NULL},
	{"type", FT_STRING, true, 0, 0, NULL},
	{"store", FT_STRING, true, 0, 0, NULL},
	{"login", FT_STRING, false, 0, 0, login_choices},
	{"slot_id", FT_UINT, false, 0, 0x7fffffff, NULL},
	{"seal_with", FT_STRING_ARRAY /* or one string: check_seal_list */, false, 0, 0,
	 NULL},
	{"seal_policy", FT_STRING, false, 0, 0, policy_choices},
	{"keys", FT_KEY_ARRAY, false, 0, 0, NULL},
	{"revalidate_seconds", FT_UINT, false, 1, 86400 * 30, NULL},
	{"offline_grace_seconds", FT_UINT, false, 0, 86400 * 30, NULL},
	{"rotation_age_days", FT_UINT, false, 1, 3650, NULL},
	{"max_sessions", FT_UINT, false, 1, 1000000, NULL},
	{"pin_kdf_cost", FT_UINT, false, 12, 20, NULL},
	{NULL, FT_STRING, false, 0, 0, NULL},
};

static const char *const level_choices[] = {"error", "warn", "info", "debug",
					    "trace", NULL};
static const field_spec log_fields[] = {
	{"level", FT_STRING, false, 0, 0, level_choices},
	{"destination", FT_STRING, false, 0, 0, NULL},
	{"audit", FT_STRING, false, 0, 0, NULL},
	{NULL, FT_STRING, false, 0, 0, NULL},
};

typedef struct ctx {
	const char *path, *text;
	size_t len;
} ctx_t;

/* Log "file:line: field: reason" for the value at path. */
__attribute__((format(printf, 4, 5))) static CK_RV
fail(const ctx_t *c, const jpath_elem *path, size_t depth, const char *fmt, ...)
{
	char field[160] = "", why[400];
	size_t off = 0;
	for (size_t i = 0; i < depth && off < sizeof(field); i++) {
		int n = path[i].key
				? snprintf(field + off, sizeof(field) - off, "%s%s",
					   i ? "." : "", path[i].key)
				: snprintf(field + off, sizeof(field) - off, "[%zu]",
					   path[i].index);
		if (n < 0)
			break;
		off += (size_t)n;
	}
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(why, sizeof(why), fmt, ap);
	va_end(ap);
	unsigned line = jsonpos_line(c->text, c->len, path, depth);
	log_error("config", "%s:%u: %s: %s", c->path, line,
		  depth ? field : "(top level)", why);
	return CKR_FUNCTION_FAILED;
}

static const char *type_name(field_type t)
{
	switch (t) {
	case FT_STRING:
		return "a string";
	case FT_UINT:
		return "a non-negative integer";
	case FT_BOOL:
		return "true or false";
	case FT_STRING_ARRAY:
		return "an array of strings";
	case FT_KEY_ARRAY:
		return "an array of {\"id\": ..., \"label\": ..., \"type\": ...} objects";
	}
	return "?";
}

static const field_spec *spec_find(const field_spec *s, const char *name)
{
	for (; s && s->name; s++)
		if (strcmp(s->name, name) == 0)
			return s;
	return NULL;
}

static CK_RV check_object(const ctx_t *c, jpath_elem *path, size_t depth,
			  json_t *obj, const field_spec *a, const field_spec *b);

/* "bits" describes AES keys only, and only the three AES sizes. */
static CK_RV check_key_bits(const ctx_t *c, jpath_elem *path, size_t depth, json_t *key)
{
	json_t *bits = json_object_get(key, "bits");
	if (!bits)
		return CKR_OK;
	const char *ty = json_string_value(json_object_get(key, "type"));
	path[depth].key = "bits";
	if (!ty || strcmp(ty, "aes") != 0)
		return fail(c, path, depth + 1, "only keys of \"type\": \"aes\" take a size");
	json_int_t b = json_integer_value(bits);
	if (b != 128 && b != 192 && b != 256)
		return fail(c, path, depth + 1, "%lld is not an AES key size (128, 192, 256)",
			    (long long)b);
	return CKR_OK;
}

/* "usage" gives a typed key (aes, rsa) its one role (docs/SECURITY.md):
 * the envelope separates wrapping from data in the KMS, by context. */
static CK_RV check_key_usage(const ctx_t *c, jpath_elem *path, size_t depth, json_t *key)
{
	if (!json_object_get(key, "usage"))
		return CKR_OK;
	const char *ty = json_string_value(json_object_get(key, "type"));
	const char *us = json_string_value(json_object_get(key, "usage"));
	path[depth].key = "usage";
	if (!ty || strcmp(ty, "envelope") == 0)
		return fail(c, path, depth + 1,
			    "only keys of \"type\": \"aes\", \"rsa\" or \"ec\" take a usage "
			    "(the envelope key wraps and encrypts, kept apart by the KMS)");
	if (strcmp(ty, "aes") == 0 && us && strcmp(us, "sign") == 0)
		return fail(c, path, depth + 1, "an AES key does not sign (\"wrap\" or \"data\")");
	if (strcmp(ty, "ec") == 0 && us && strcmp(us, "sign") != 0)
		return fail(c, path, depth + 1,
			    "an EC key only signs: \"usage\" is \"sign\" or absent");
	return CKR_OK;
}

/* "certificate" names the PEM file of an rsa or ec key's certificate. */
static CK_RV check_key_cert(const ctx_t *c, jpath_elem *path, size_t depth, json_t *key)
{
	json_t *v = json_object_get(key, "certificate");
	if (!v)
		return CKR_OK;
	const char *ty = json_string_value(json_object_get(key, "type"));
	path[depth].key = "certificate";
	if (!ty || (strcmp(ty, "rsa") != 0 && strcmp(ty, "ec") != 0))
		return fail(c, path, depth + 1,
			    "only keys of \"type\": \"rsa\" or \"ec\" have a certificate");
	if (json_string_value(v)[0] != '/')
		return fail(c, path, depth + 1, "must be an absolute path");
	return CKR_OK;
}

/* "seal_with": one key reference or a list of 1..SEAL_MAX_REFS; each is
 * resolved against the provider names once all are known
 * (resolve_seals). */
static CK_RV check_seal_list(const ctx_t *c, jpath_elem *path, size_t depth, json_t *v)
{
	if (json_is_string(v))
		return json_string_length(v) && strlen(json_string_value(v)) == json_string_length(v)
			       ? CKR_OK
			       : fail(c, path, depth, "must be a non-empty string without NUL");
	if (!json_is_array(v) || json_array_size(v) == 0 ||
	    json_array_size(v) > SEAL_MAX_REFS)
		return fail(c, path, depth,
			    "must be a key reference or an array of 1 to %d of them",
			    SEAL_MAX_REFS);
	size_t i;
	json_t *e;
	json_array_foreach(v, i, e)
	{
		path[depth].key = NULL;
		path[depth].index = i;
		if (!json_is_string(e) || json_string_length(e) == 0 ||
		    json_string_length(e) > 4096 ||
		    strlen(json_string_value(e)) != json_string_length(e))
			return fail(c, path, depth + 1,
				    "must be a non-empty string without NUL");
	}
	return CKR_OK;
}

static CK_RV check_value(const ctx_t *c, jpath_elem *path, size_t depth,
			 const field_spec *f, json_t *v)
{
	if (strcmp(f->name, "seal_with") == 0)
		return check_seal_list(c, path, depth, v);
	switch (f->type) {
	case FT_STRING:
		if (!json_is_string(v))
			return fail(c, path, depth, "must be %s", type_name(f->type));
		if (json_string_length(v) == 0 || json_string_length(v) > 4096 ||
		    strlen(json_string_value(v)) != json_string_length(v))
			return fail(c, path, depth,
				    "must be a non-empty string without NUL");
		if (f->choices) {
			for (const char *const *ch = f->choices; *ch; ch++)
				if (strcmp(*ch, json_string_value(v)) == 0)
					return CKR_OK;
			return fail(c, path, depth, "\"%s\" is not one of the allowed values",
				    json_string_value(v));
		}
		return CKR_OK;
	case FT_UINT: {
		if (!json_is_integer(v))
			return fail(c, path, depth, "must be %s", type_name(f->type));
		json_int_t i = json_integer_value(v);
		if (i < 0 || (uint64_t)i < f->min || (f->max && (uint64_t)i > f->max))
			return fail(c, path, depth, "%lld is out of range [%llu, %llu]",
				    (long long)i, (unsigned long long)f->min,
				    (unsigned long long)f->max);
		return CKR_OK;
	}
	case FT_BOOL:
		if (!json_is_boolean(v))
			return fail(c, path, depth, "must be %s", type_name(f->type));
		return CKR_OK;
	case FT_STRING_ARRAY: {
		if (!json_is_array(v))
			return fail(c, path, depth, "must be %s", type_name(f->type));
		size_t i;
		json_t *e;
		json_array_foreach(v, i, e)
		{
			path[depth].key = NULL;
			path[depth].index = i;
			if (!json_is_string(e) || json_string_length(e) == 0)
				return fail(c, path, depth + 1,
					    "must be a non-empty string");
		}
		return CKR_OK;
	}
	case FT_KEY_ARRAY: {
		static const char *const key_types[] = {"envelope", "aes", "rsa", "ec", NULL};
		static const char *const usages[] = {"wrap", "data", "sign", NULL};
		static const field_spec key_fields[] = {
			{"id", FT_STRING, true, 0, 0, NULL},
			{"label", FT_STRING, false, 0, 0, NULL},
			{"type", FT_STRING, false, 0, 0, key_types},
			{"bits", FT_UINT, false, 128, 4096, NULL},
			{"usage", FT_STRING, false, 0, 0, usages},
			{"certificate", FT_STRING, false, 0, 0, NULL},
			{NULL, FT_STRING, false, 0, 0, NULL},
		};
		if (!json_is_array(v) || json_array_size(v) > 256)
			return fail(c, path, depth, "must be %s (at most 256)",
				    type_name(f->type));
		size_t i;
		json_t *e;
		json_array_foreach(v, i, e)
		{
			path[depth].key = NULL;
			path[depth].index = i;
			if (!json_is_object(e))
				return fail(c, path, depth + 1, "must be an object");
			GUARD(check_object(c, path, depth + 1, e, key_fields, NULL));
			GUARD(check_key_bits(c, path, depth + 1, e));
			GUARD(check_key_usage(c, path, depth + 1, e));
			GUARD(check_key_cert(c, path, depth + 1, e));
		}
		return CKR_OK;
	}
	}
	return CKR_GENERAL_ERROR;
}

/* Every member of obj must be in one of the two spec lists, of the right
 * type; every required field must be present. */
static CK_RV check_object(const ctx_t *c, jpath_elem *path, size_t depth,
			  json_t *obj, const field_spec *a, const field_spec *b)
{
	const char *k;
	json_t *v;
	json_object_foreach(obj, k, v)
	{
		const field_spec *f = spec_find(a, k);
		if (!f)
			f = spec_find(b, k);
		path[depth].key = k;
		if (!f)
			return fail(c, path, depth + 1, "unknown field");
		GUARD(check_value(c, path, depth + 1, f, v));
	}
	for (int pass = 0; pass < 2; pass++)
		for (const field_spec *f = pass ? b : a; f && f->name; f++)
			if (f->required && !json_object_get(obj, f->name))
				return fail(c, path, depth,
					    "missing required field \"%s\"", f->name);
	return CKR_OK;
}

static char *dup_str(json_t *obj, const char *key)
{
	json_t *v = json_object_get(obj, key);
	return v ? strdup(json_string_value(v)) : NULL;
}

static uint64_t get_uint(json_t *obj, const char *key, uint64_t def)
{
	json_t *v = json_object_get(obj, key);
	return v ? (uint64_t)json_integer_value(v) : def;
}

/* FNV-1a of the provider name: stable across restarts and reorderings. */
static CK_SLOT_ID slot_id_of(const char *name)
{
	uint32_t h = 2166136261u;
	for (const unsigned char *p = (const unsigned char *)name; *p; p++)
		h = (h ^ *p) * 16777619u;
	return (CK_SLOT_ID)(h & 0x7fffffffu);
}

/* ASN.1 time -> CK_DATE ("YYYYMMDD" as characters). */
static bool cert_date(const ASN1_TIME *t, CK_DATE *d)
{
	struct tm tm;
	char b[40];
	if (!t || ASN1_TIME_to_tm(t, &tm) != 1 || tm.tm_year + 1900 > 9999 || tm.tm_year < -1900)
		return false;
	snprintf(b, sizeof(b), "%04d%02d%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
	memcpy(d->year, b, 4);
	memcpy(d->month, b + 4, 2);
	memcpy(d->day, b + 6, 2);
	return true;
}

/* What PKCS #11 shows of certificate x: its DER and the DER of its parts,
 * in one allocation. */
static bool cert_parse(X509 *x, kms_cert *out)
{
	unsigned char *part[5] = {NULL};
	int n[5];
	n[0] = i2d_X509(x, &part[0]);
	n[1] = i2d_X509_NAME(X509_get_subject_name(x), &part[1]);
	n[2] = i2d_X509_NAME(X509_get_issuer_name(x), &part[2]);
	n[3] = i2d_ASN1_INTEGER(X509_get_serialNumber(x), &part[3]);
	n[4] = i2d_X509_PUBKEY(X509_get_X509_PUBKEY(x), &part[4]);
	size_t total = 0;
	bool ok = cert_date(X509_get0_notBefore(x), &out->start) &&
		  cert_date(X509_get0_notAfter(x), &out->end);
	for (int i = 0; i < 5; i++) {
		ok = ok && n[i] > 0;
		total += ok ? (size_t)n[i] : 0;
	}
	uint8_t sha1[20];
	unsigned sl = 0;
	ok = ok && EVP_Digest(part[0], (size_t)n[0], sha1, &sl, EVP_sha1(), NULL) == 1 &&
	     EVP_Digest(part[4], (size_t)n[4], out->spki_sha1, &sl, EVP_sha1(), NULL) == 1;
	uint8_t *buf = ok ? malloc(total) : NULL;
	if (buf) {
		uint8_t **dst[5] = {&out->der, &out->subject, &out->issuer, &out->serial, &out->spki};
		size_t *len[5] = {&out->len, &out->subjlen, &out->isslen, &out->serlen,
				  &out->spkilen};
		size_t off = 0;
		for (int i = 0; i < 5; i++) {
			memcpy(buf + off, part[i], (size_t)n[i]);
			*dst[i] = buf + off;
			*len[i] = (size_t)n[i];
			off += (size_t)n[i];
		}
		memcpy(out->check, sha1, sizeof(out->check));
	}
	for (int i = 0; i < 5; i++)
		OPENSSL_free(part[i]);
	return buf != NULL;
}

/* The certificates of kc->cert_path: every CERTIFICATE block of the PEM
 * file, the key's own first (docs/SIGNING.md). Bounded: a regular file of
 * at most CERT_FILE_MAX bytes and CERT_MAX certificates. */
#define CERT_FILE_MAX (1u << 20)
#define CERT_MAX 16
static CK_RV load_certs(const ctx_t *c, jpath_elem *path, size_t depth, kms_key_cfg *kc)
{
	const char *fp = kc->cert_path;
	struct stat sb;
	if (stat(fp, &sb) != 0)
		return fail(c, path, depth, "%s: %s", fp, strerror(errno));
	if (!S_ISREG(sb.st_mode) || sb.st_size > CERT_FILE_MAX)
		return fail(c, path, depth, "%s: not a regular file of at most %u bytes", fp,
			    CERT_FILE_MAX);
	BIO *bio = BIO_new_file(fp, "r");
	if (!bio)
		return fail(c, path, depth, "%s: cannot be read", fp);
	kc->certs = calloc(CERT_MAX, sizeof(*kc->certs));
	CK_RV rv = kc->certs ? CKR_OK : CKR_HOST_MEMORY;
	X509 *x = NULL;
	while (rv == CKR_OK && (x = PEM_read_bio_X509(bio, NULL, NULL, NULL))) {
		if (kc->ncerts == CERT_MAX)
			rv = fail(c, path, depth, "%s: more than %d certificates", fp, CERT_MAX);
		else if (!cert_parse(x, &kc->certs[kc->ncerts]))
			rv = fail(c, path, depth, "%s: certificate %zu cannot be read", fp,
				  kc->ncerts + 1);
		else
			kc->ncerts++;
		X509_free(x);
	}
	unsigned long e = ERR_peek_last_error();
	bool at_end = ERR_GET_LIB(e) == ERR_LIB_PEM && ERR_GET_REASON(e) == PEM_R_NO_START_LINE;
	ERR_clear_error();
	BIO_free(bio);
	if (rv == CKR_OK && (!kc->ncerts || (e && !at_end)))
		rv = fail(c, path, depth, "%s: %s", fp,
			  kc->ncerts ? "a certificate in it does not parse"
				     : "holds no PEM certificate");
	return rv;
}

static CK_RV parse_provider(const ctx_t *c, jpath_elem *path, json_t *obj,
			    provider_cfg *pc)
{
	if (!json_is_object(obj))
		return fail(c, path, 2, "must be an object");
	json_t *t = json_object_get(obj, "type");
	if (!t) /* before anything else: every other field depends on it */
		return fail(c, path, 2, "missing required field \"type\" (known: %s)",
			    provider_types());
	const provider_ops *ops = json_is_string(t) ? provider_find(json_string_value(t))
						    : NULL;
	if (t && json_is_string(t) && !ops) {
		path[2].key = "type";
		return fail(c, path, 3, "unknown provider type \"%s\" (known: %s)",
			    json_string_value(t), provider_types());
	}
	GUARD(check_object(c, path, 2, obj, common_fields, ops ? ops->fields : NULL));

	pc->ops = ops;
	pc->obj = json_incref(obj);
	pc->name = dup_str(obj, "name");
	pc->store = dup_str(obj, "store");
	if (!pc->name || !pc->store)
		return CKR_HOST_MEMORY;
	json_t *sp = json_object_get(obj, "seal_policy");
	pc->seal_policy = sp && strcmp(json_string_value(sp), "all") == 0 ? SEAL_ALL : SEAL_ANY;
	json_t *lm = json_object_get(obj, "login");
	pc->login = lm && strcmp(json_string_value(lm), "optional") == 0
			    ? LOGIN_OPTIONAL
			    : LOGIN_REQUIRED;
	pc->slot_id = json_object_get(obj, "slot_id")
			      ? (CK_SLOT_ID)get_uint(obj, "slot_id", 0)
			      : slot_id_of(pc->name);
	pc->revalidate_seconds = get_uint(obj, "revalidate_seconds", 900);
	pc->offline_grace_seconds = get_uint(obj, "offline_grace_seconds", 3600);
	pc->rotation_age_days = get_uint(obj, "rotation_age_days", 90);
	pc->max_sessions = get_uint(obj, "max_sessions", 4096);
	pc->pin_kdf_cost = (unsigned)get_uint(obj, "pin_kdf_cost", 15);
	json_t *keys = json_object_get(obj, "keys");
	if (keys && json_array_size(keys)) {
		pc->keys = calloc(json_array_size(keys), sizeof(*pc->keys));
		if (!pc->keys)
			return CKR_HOST_MEMORY;
		for (size_t i = 0; i < json_array_size(keys); i++) {
			json_t *k = json_array_get(keys, i);
			kms_key_cfg *kc = &pc->keys[pc->nkeys++];
			kc->id = dup_str(k, "id");
			kc->label = json_object_get(k, "label") ? dup_str(k, "label")
								 : dup_str(k, "id");
			if (!kc->id || !kc->label)
				return CKR_HOST_MEMORY;
			const char *ty = json_string_value(json_object_get(k, "type"));
			kc->type = !ty || strcmp(ty, "envelope") == 0 ? KMS_KEY_ENVELOPE
				   : strcmp(ty, "aes") == 0	  ? KMS_KEY_AES
				   : strcmp(ty, "ec") == 0	  ? KMS_KEY_EC
								  : KMS_KEY_RSA;
			kc->bits = (unsigned)get_uint(k, "bits", kc->type == KMS_KEY_AES ? 256 : 0);
			const char *us = json_string_value(json_object_get(k, "usage"));
			kc->usage_given = us != NULL;
			kc->usage = us && strcmp(us, "data") == 0   ? KMS_USAGE_DATA
				    : us && strcmp(us, "sign") == 0 ? KMS_USAGE_SIGN
				    : kc->type == KMS_KEY_EC	    ? KMS_USAGE_SIGN
								    : KMS_USAGE_WRAP;
			if (kc->type == KMS_KEY_EC)
				kc->usage_given = true; /* an EC key only signs */
			if (json_object_get(k, "certificate")) {
				path[2].key = "keys";
				path[3].key = NULL;
				path[3].index = i;
				path[4].key = "certificate";
				kc->cert_path = dup_str(k, "certificate");
				if (!kc->cert_path)
					return CKR_HOST_MEMORY;
				GUARD(load_certs(c, path, 5, kc));
			}
			/* One key, one set of objects: CKA_UNIQUE_ID is the key's. */
			for (size_t j = 0; j + 1 < pc->nkeys; j++)
				if (strcmp(pc->keys[j].id, kc->id) == 0) {
					path[2].key = "keys";
					path[3].key = NULL;
					path[3].index = i;
					path[4].key = "id";
					return fail(c, path, 5,
						    "key \"%s\" is listed twice (also keys[%zu])",
						    kc->id, j);
				}
		}
	}
	return CKR_OK;
}

/* One reference of "seal_with": "NAME:KEY" names KEY of the configured
 * provider NAME ("NAME:" its default key); anything else is a key of the
 * provider's own. Key ids contain colons (ARNs, URLs), so only a prefix
 * that is a provider's name counts. */
static CK_RV resolve_ref(const ctx_t *c, jpath_elem *path, size_t depth, config_t *cfg,
			 size_t self, const char *s, seal_ref *out)
{
	out->provider = self;
	const char *colon = strchr(s, ':');
	for (size_t p = 0; colon && p < cfg->nproviders; p++)
		if (strlen(cfg->providers[p].name) == (size_t)(colon - s) &&
		    strncmp(cfg->providers[p].name, s, (size_t)(colon - s)) == 0) {
			out->provider = p;
			s = colon + 1;
			break;
		}
	if (*s && !(out->key_id = strdup(s)))
		return CKR_HOST_MEMORY;
	if (!*s && !cfg->providers[out->provider].ops->default_seal_key)
		return fail(c, path, depth, "provider \"%s\" has no default sealing key: "
					    "name one", cfg->providers[out->provider].name);
	return CKR_OK;
}

static CK_RV resolve_seals(const ctx_t *c, jpath_elem *path, config_t *cfg, size_t self,
			   json_t *obj)
{
	provider_cfg *pc = &cfg->providers[self];
	json_t *v = json_object_get(obj, "seal_with");
	size_t n = !v ? 1 : json_is_string(v) ? 1 : json_array_size(v);
	if (!(pc->seals = calloc(n, sizeof(*pc->seals))))
		return CKR_HOST_MEMORY;
	path[2].key = "seal_with";
	for (size_t i = 0; i < n; i++) {
		json_t *e = !v ? NULL : json_is_string(v) ? v : json_array_get(v, i);
		path[3].key = NULL;
		path[3].index = i;
		size_t depth = v && json_is_array(v) ? 4 : 3;
		pc->nseals = i + 1;
		if (!e) {
			pc->seals[i].provider = self;
			continue;
		}
		GUARD(resolve_ref(c, path, depth, cfg, self, json_string_value(e),
				  &pc->seals[i]));
		for (size_t j = 0; j < i; j++) {
			const seal_ref *a = &pc->seals[j], *b = &pc->seals[i];
			if (a->provider == b->provider &&
			    (a->key_id && b->key_id ? strcmp(a->key_id, b->key_id) == 0
						    : a->key_id == b->key_id))
				return fail(c, path, depth, "the same key is listed twice");
		}
	}
	if (!v)
		return CKR_OK;
	/* The provider reads "seal_with" for its default key: give it its
	 * own first key, or none when every seal is another provider's. */
	json_t *own = json_deep_copy(pc->obj);
	if (!own)
		return CKR_HOST_MEMORY;
	json_object_del(own, "seal_with");
	for (size_t i = 0; i < pc->nseals; i++)
		if (pc->seals[i].provider == self && pc->seals[i].key_id) {
			json_object_set_new(own, "seal_with", json_string(pc->seals[i].key_id));
			break;
		}
	json_decref(pc->obj);
	pc->obj = own;
	return CKR_OK;
}

static const field_spec top_fields[] = {
	{"log", FT_BOOL /* checked as an object below */, false, 0, 0, NULL},
	{"providers", FT_BOOL /* checked as an array below */, true, 0, 0, NULL},
	{NULL, FT_STRING, false, 0, 0, NULL},
};

CK_RV config_parse(const char *text, size_t len, const char *path_name,
		   config_t **out)
{
	ctx_t c = {.path = path_name, .text = text, .len = len};
	jpath_elem path[8] = {{0}};
	json_error_t jerr;
	*out = NULL;

	json_t *root = json_loadb(text, len, JSON_REJECT_DUPLICATES, &jerr);
	if (!root) {
		log_error("config", "%s:%d: column %d: %s", path_name, jerr.line,
			  jerr.column, jerr.text);
		return CKR_FUNCTION_FAILED;
	}
	config_t *cfg = calloc(1, sizeof(*cfg));
	CK_RV rv = cfg ? CKR_OK : CKR_HOST_MEMORY;
	if (rv == CKR_OK) {
		cfg->log_level = -1;
		cfg->path = strdup(path_name);
		if (!cfg->path)
			rv = CKR_HOST_MEMORY;
	}
	if (rv == CKR_OK && !json_is_object(root))
		rv = fail(&c, path, 0, "the configuration must be a JSON object");

	const char *k;
	json_t *v;
	if (rv == CKR_OK) {
		json_object_foreach(root, k, v)
		{
			if (spec_find(top_fields, k))
				continue;
			path[0].key = k;
			rv = fail(&c, path, 1, "unknown field");
			break;
		}
	}
	json_t *log = rv == CKR_OK ? json_object_get(root, "log") : NULL;
	if (log) {
		path[0].key = "log";
		rv = json_is_object(log) ? check_object(&c, path, 1, log, log_fields, NULL)
					 : fail(&c, path, 1, "must be an object");
		if (rv == CKR_OK) {
			json_t *lv = json_object_get(log, "level");
			if (lv)
				cfg->log_level = log_level_parse(json_string_value(lv));
			cfg->log_dest = dup_str(log, "destination");
			if (cfg->log_dest && strcmp(cfg->log_dest, "stderr") != 0 &&
			    strcmp(cfg->log_dest, "syslog") != 0 &&
			    cfg->log_dest[0] != '/') {
				path[1].key = "destination";
				rv = fail(&c, path, 2,
					  "must be \"stderr\", \"syslog\" or an absolute path");
			}
		}
		if (rv == CKR_OK && (cfg->audit = dup_str(log, "audit"))) {
			path[1].key = "audit";
			cfg->audit_line = jsonpos_line(text, len, path, 2);
			if (cfg->audit[0] != '/')
				rv = fail(&c, path, 2, "must be an absolute path");
			else if (strlen(cfg->audit) >= PATH_MAX)
				rv = fail(&c, path, 2, "longer than %d bytes", PATH_MAX - 1);
		}
	}
	json_t *provs = rv == CKR_OK ? json_object_get(root, "providers") : NULL;
	path[0].key = "providers";
	if (rv == CKR_OK && !provs)
		rv = fail(&c, path, 0, "missing required field \"providers\"");
	if (rv == CKR_OK && !json_is_array(provs))
		rv = fail(&c, path, 1, "must be an array of provider objects");
	if (rv == CKR_OK && json_array_size(provs) > MAX_PROVIDERS)
		rv = fail(&c, path, 1, "more than %d providers", MAX_PROVIDERS);
	if (rv == CKR_OK && json_array_size(provs) > 0) {
		cfg->providers = calloc(json_array_size(provs), sizeof(provider_cfg));
		if (!cfg->providers)
			rv = CKR_HOST_MEMORY;
	}
	for (size_t i = 0; rv == CKR_OK && i < json_array_size(provs); i++) {
		path[1].key = NULL;
		path[1].index = i;
		rv = parse_provider(&c, path, json_array_get(provs, i),
				    &cfg->providers[i]);
		cfg->nproviders = i + 1;
		for (size_t j = 0; rv == CKR_OK && j < i; j++) {
			provider_cfg *a = &cfg->providers[j], *b = &cfg->providers[i];
			path[2].key = "name";
			if (strcmp(a->name, b->name) == 0)
				rv = fail(&c, path, 3, "provider name \"%s\" used twice",
					  b->name);
			else if (a->slot_id == b->slot_id)
				rv = fail(&c, path, 3,
					  "slot id %lu of \"%s\" collides with \"%s\"; set "
					  "\"slot_id\" explicitly",
					  (unsigned long)b->slot_id, b->name, a->name);
			else if (strcmp(a->store, b->store) == 0) {
				path[2].key = "store";
				rv = fail(&c, path, 3, "store %s used by two providers",
					  b->store);
			}
		}
	}
	for (size_t i = 0; rv == CKR_OK && i < cfg->nproviders; i++) {
		path[1].key = NULL;
		path[1].index = i;
		rv = resolve_seals(&c, path, cfg, i, json_array_get(provs, i));
	}
	json_decref(root);
	if (rv != CKR_OK) {
		config_free(cfg);
		return rv;
	}
	*out = cfg;
	return CKR_OK;
}

/* "config=PATH" among whitespace- or ';'-separated words. */
static char *path_from_reserved(const char *r)
{
	if (!r)
		return NULL;
	size_t n = strnlen(r, 4096);
	const char *end = r + n, *p = r;
	while (p < end) {
		while (p < end && (*p == ' ' || *p == ';' || *p == '\t'))
			p++;
		const char *w = p;
		while (p < end && *p != ' ' && *p != ';' && *p != '\t')
			p++;
		if ((size_t)(p - w) > 7 && strncmp(w, "config=", 7) == 0)
			return strndup(w + 7, (size_t)(p - w) - 7);
	}
	return NULL;
}

CK_RV config_load(const char *init_reserved, config_t **out)
{
	char *path = path_from_reserved(init_reserved);
	const char *source = "init string";
	if (!path) {
		const char *e = getenv("P11KMS_CONFIG");
		source = "P11KMS_CONFIG";
		if (!e || !*e) {
			e = P11KMS_DEFAULT_CONFIG;
			source = "default path";
		}
		path = strdup(e);
	}
	if (!path)
		return CKR_HOST_MEMORY;

	CK_RV rv = CKR_FUNCTION_FAILED;
	char *buf = NULL;
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	struct stat st;
	if (fd < 0) {
		log_error("config", "%s (from %s): cannot open: %s", path, source,
			  strerror(errno));
	} else if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
		log_error("config", "%s: not a regular file", path);
	} else if (st.st_size > CONFIG_MAX_BYTES) {
		log_error("config", "%s: larger than %d bytes", path, CONFIG_MAX_BYTES);
	} else if (!(buf = malloc((size_t)st.st_size + 1))) {
		rv = CKR_HOST_MEMORY;
	} else {
		size_t got = 0;
		ssize_t n;
		while (got < (size_t)st.st_size &&
		       (n = read(fd, buf + got, (size_t)st.st_size - got)) > 0)
			got += (size_t)n;
		if (got != (size_t)st.st_size)
			log_error("config", "%s: short read", path);
		else
			rv = config_parse(buf, got, path, out);
	}
	/* The audit log opens with the configuration: a path it refuses is a
	 * configuration error, reported by C_Initialize, never a line lost
	 * later. Without log.audit, a log opened before is closed. */
	char why[600];
	if (rv == CKR_OK && !audit_open((*out)->audit, why, sizeof(why))) {
		log_error("config", "%s:%u: log.audit: %s", path, (*out)->audit_line, why);
		config_free(*out);
		*out = NULL;
		rv = CKR_FUNCTION_FAILED;
	}
	if (fd >= 0)
		close(fd);
	free(buf);
	free(path);
	return rv;
}

void config_free(config_t *cfg)
{
	if (!cfg)
		return;
	for (size_t i = 0; i < cfg->nproviders; i++) {
		provider_cfg *p = &cfg->providers[i];
		free(p->name);
		free(p->store);
		for (size_t k = 0; k < p->nseals; k++)
			free(p->seals[k].key_id);
		free(p->seals);
		for (size_t k = 0; k < p->nkeys; k++) {
			free(p->keys[k].id);
			free(p->keys[k].label);
			free(p->keys[k].cert_path);
			for (size_t j = 0; j < p->keys[k].ncerts; j++)
				free(p->keys[k].certs[j].der); /* holds the parts too */
			free(p->keys[k].certs);
		}
		free(p->keys);
		json_decref(p->obj);
	}
	free(cfg->providers);
	free(cfg->log_dest);
	free(cfg->audit);
	free(cfg->path);
	free(cfg);
}
