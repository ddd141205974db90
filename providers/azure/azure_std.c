/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The standard mechanisms on Azure keys (remote_crypt; docs/REMOTE.md):
 * RSA-OAEP(-256), AES key wrap and AES-GCM in their standard formats, and
 * the older-versions walk for decryptions, whose results name no key
 * version; and asymmetric keys' public halves and signing (public_key,
 * sign).
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

/* --- standard mechanisms (remote_crypt) -------------------------------------------- */

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
	p11k_err e = az_kv_crypt_call(s, &c, st);
	if (e != P11K_OK)
		return e;
	char kn[128], kv[128];
	if (!az_parse_kid(c.kid, kn, sizeof(kn), kv, sizeof(kv)) || strcasecmp(kn, name) != 0 ||
	    (ver[0] && strcasecmp(kv, ver) != 0)) {
		snprintf(st->message, sizeof(st->message), "%s: reply names another key", op);
		az_kv_crypt_free(&c);
		return st->err = P11K_ERR_BAD_REPLY;
	}
	if (!c.want_iv_tag) {
		*out = c.out;
		*outlen = c.outlen;
		c.out = NULL;
		az_kv_crypt_free(&c);
		return P11K_OK;
	}
	if (c.rivlen != REMOTE_GCM_IV_LEN || c.rtaglen != REMOTE_GCM_TAG_LEN) {
		snprintf(st->message, sizeof(st->message),
			 "%s: the service gave a %zu-byte IV and a %zu-byte tag, not %d and %d", op,
			 c.rivlen, c.rtaglen, REMOTE_GCM_IV_LEN, REMOTE_GCM_TAG_LEN);
		az_kv_crypt_free(&c);
		return st->err = P11K_ERR_BAD_REPLY;
	}
	uint8_t *o = sec_alloc(c.outlen + REMOTE_GCM_TAG_LEN);
	if (!o) {
		az_kv_crypt_free(&c);
		return st->err = P11K_ERR_NOMEM;
	}
	memcpy(o, c.out, c.outlen);
	memcpy(o + c.outlen, c.rtag, REMOTE_GCM_TAG_LEN);
	memcpy(r->iv, c.riv, REMOTE_GCM_IV_LEN);
	*out = o;
	*outlen = c.outlen + REMOTE_GCM_TAG_LEN;
	az_kv_crypt_free(&c);
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
	p11k_err e = az_vault_call(s, "GetKeyVersions", "GET", path, NULL, &reply, NULL, st);
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
			    !az_parse_kid(kid, kn, sizeof(kn), kv, sizeof(kv)) ||
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
		e = az_vault_call_url(s, "GetKeyVersions", "GET", url, NULL, &reply, NULL, st);
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
	if (e == P11K_ERR_UNREACHABLE || e == P11K_ERR_TLS || e == P11K_ERR_THROTTLED ||
	    e == P11K_ERR_NOMEM)
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

p11k_err az_remote_crypt(void *state, const char *key_id, remote_req *r, uint8_t **out,
				size_t *outlen, provider_status *st)
{
	az_state *s = state;
	char name[128], ver[128];
	*out = NULL;
	*outlen = 0;
	if (!az_parse_key_id(key_id, name, sizeof(name), ver, sizeof(ver))) {
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

/* --- signing keys (public_key, sign) ----------------------------------------------- */

/* The JWS names of the signing algorithms (Key Vault 7.4 JsonWebKeySignatureAlgorithm). */
static const char *const jws_alg[SALG_COUNT_] = {
	[SALG_RSA_PKCS1_SHA256] = "RS256", [SALG_RSA_PKCS1_SHA384] = "RS384",
	[SALG_RSA_PKCS1_SHA512] = "RS512", [SALG_RSA_PSS_SHA256] = "PS256",
	[SALG_RSA_PSS_SHA384] = "PS384",   [SALG_RSA_PSS_SHA512] = "PS512",
	[SALG_ECDSA_SHA256] = "ES256",     [SALG_ECDSA_SHA384] = "ES384",
};

/* A JWK coordinate or number, base64url, at most max bytes. */
static bool jwk_bytes(json_t *key, const char *name, size_t max, uint8_t **out, size_t *len)
{
	json_t *v = json_object_get(key, name);
	*out = NULL;
	*len = 0;
	if (!json_is_string(v) || json_string_length(v) > 4 * max / 3 + 4)
		return false;
	return az_get_b64(key, name, false, out, len);
}

/* The JWK of a key bundle -> DER SubjectPublicKeyInfo, its kind and what
 * key_ops allow. */
static p11k_err jwk_public(json_t *key, const char *key_id, asym_public *out, spki_desc *d,
			   provider_status *st)
{
	const char *kty = json_str_field(key, "kty");
	char why[160] = "";
	uint8_t *a = NULL, *b = NULL;
	size_t al = 0, bl = 0;
	p11k_err e;
	bool rsa = kty && (strcmp(kty, "RSA") == 0 || strcmp(kty, "RSA-HSM") == 0);
	bool ec = kty && (strcmp(kty, "EC") == 0 || strcmp(kty, "EC-HSM") == 0);
	if (!rsa && !ec) {
		snprintf(st->message, sizeof(st->message),
			 "key %.100s is %.20s: neither RSA nor EC", key_id, kty ? kty : "of no type");
		return st->err = P11K_ERR_KEY_TYPE;
	}
	if (rsa) {
		if (!jwk_bytes(key, "n", 1024, &a, &al) || !jwk_bytes(key, "e", 64, &b, &bl))
			e = P11K_ERR_BAD_REPLY, snprintf(why, sizeof(why), "the RSA key lacks n or e");
		else
			e = spki_from_rsa(a, al, b, bl, &out->spki, &out->spkilen, why, sizeof(why));
	} else {
		const char *crv = json_str_field(key, "crv");
		if (!crv || (strcmp(crv, "P-256") != 0 && strcmp(crv, "P-384") != 0)) {
			snprintf(why, sizeof(why), "an EC key on curve %.20s: only P-256 and P-384 "
				 "are offered", crv ? crv : "(none)");
			e = P11K_ERR_KEY_TYPE;
		} else if (!jwk_bytes(key, "x", 66, &a, &al) || !jwk_bytes(key, "y", 66, &b, &bl)) {
			e = P11K_ERR_BAD_REPLY;
			snprintf(why, sizeof(why), "the EC key lacks x or y");
		} else {
			e = spki_from_ec(crv, a, al, b, bl, &out->spki, &out->spkilen, why,
					 sizeof(why));
		}
	}
	free(a);
	free(b);
	if (e == P11K_OK)
		e = spki_check(out->spki, out->spkilen, d, why, sizeof(why));
	if (e != P11K_OK) {
		free(out->spki);
		out->spki = NULL;
		out->spkilen = 0;
		snprintf(st->message, sizeof(st->message), "GetKey: %.80s: %.120s", key_id, why);
		return st->err = e;
	}
	return P11K_OK;
}

/* key_ops -> ASYM_USE_*: "sign" signs; "decrypt" or "unwrapKey" decrypts. */
static bool key_uses(json_t *ops, unsigned *uses)
{
	size_t i;
	json_t *v;
	*uses = 0;
	if (!json_is_array(ops) || json_array_size(ops) > 32)
		return false;
	json_array_foreach(ops, i, v) {
		const char *o = json_string_value(v);
		if (!o)
			return false;
		if (strcmp(o, "sign") == 0)
			*uses |= ASYM_USE_SIGN;
		else if (strcmp(o, "decrypt") == 0 || strcmp(o, "unwrapKey") == 0)
			*uses |= ASYM_USE_DECRYPT;
	}
	return true;
}

/* GetKey (the pinned version, else the current one): the JWK as DER SPKI,
 * key_ops as uses, the algorithms the key type signs with (RSA: RS* and
 * PS*; P-256: ES256; P-384: ES384), and the kid's version. */
p11k_err az_public_key(void *state, const char *key_id, asym_public *out, provider_status *st)
{
	az_state *s = state;
	char name[128], ver[128], kn[128], kv[128];
	memset(out, 0, sizeof(*out));
	if (!az_parse_key_id(key_id, name, sizeof(name), ver, sizeof(ver))) {
		snprintf(st->message, sizeof(st->message),
			 "key id '%.100s' is not NAME or NAME/VERSION", key_id);
		return st->err = P11K_ERR_KEY_NOT_FOUND;
	}
	json_t *bundle = NULL;
	p11k_err e = az_get_key(s, key_id, &bundle, kv, sizeof(kv), st);
	if (e != P11K_OK)
		return e;
	json_t *key = json_object_get(bundle, "key");
	const char *kid = json_str_field(key, "kid");
	unsigned uses = 0;
	spki_desc d;
	if (!az_parse_kid(kid, kn, sizeof(kn), kv, sizeof(kv)) || strcasecmp(kn, name) != 0 ||
	    (ver[0] && strcasecmp(kv, ver) != 0)) {
		snprintf(st->message, sizeof(st->message), "GetKey: reply names another key");
		e = st->err = P11K_ERR_BAD_REPLY;
	} else if (!json_is_true(json_object_get(json_object_get(bundle, "attributes"),
						 "enabled"))) {
		snprintf(st->message, sizeof(st->message), "key %.100s (version %.40s) is disabled",
			 key_id, kv);
		e = st->err = P11K_ERR_KEY_DISABLED;
	} else if (!key_uses(json_object_get(key, "key_ops"), &uses)) {
		snprintf(st->message, sizeof(st->message), "GetKey: key_ops is not a list of names");
		e = st->err = P11K_ERR_BAD_REPLY;
	} else if ((e = jwk_public(key, key_id, out, &d, st)) != P11K_OK) {
		/* st says why */
	} else if (!uses) {
		snprintf(st->message, sizeof(st->message),
			 "key %.100s allows neither sign nor decrypt/unwrapKey (key_ops)", key_id);
		e = st->err = P11K_ERR_KEY_TYPE;
	} else {
		out->uses = uses;
		if (uses & ASYM_USE_SIGN)
			out->sign_algs = !d.ec ? SALG_BIT(SALG_RSA_PKCS1_SHA256) |
							 SALG_BIT(SALG_RSA_PKCS1_SHA384) |
							 SALG_BIT(SALG_RSA_PKCS1_SHA512) |
							 SALG_BIT(SALG_RSA_PSS_SHA256) |
							 SALG_BIT(SALG_RSA_PSS_SHA384) |
							 SALG_BIT(SALG_RSA_PSS_SHA512)
					 : d.bits == 256 ? SALG_BIT(SALG_ECDSA_SHA256)
							 : SALG_BIT(SALG_ECDSA_SHA384);
		snprintf(out->version, sizeof(out->version), "%s", kv);
	}
	if (e != P11K_OK)
		asym_public_free(out);
	json_decref(bundle);
	return e;
}

/* POST /keys/NAME/VERSION/sign {alg, value: base64url(digest)}: the
 * service signs the digest as given; ES* values are already r||s. The
 * version is the one asked, else the key id's own, else the current one. */
p11k_err az_sign(void *state, const char *key_id, const char *version, sign_alg alg,
		 const uint8_t *digest, size_t dlen, uint8_t **sig, size_t *siglen,
		 provider_status *st)
{
	az_state *s = state;
	char name[128], ver[128], path[400], kn[128], kv[128];
	*sig = NULL;
	*siglen = 0;
	if (!az_parse_key_id(key_id, name, sizeof(name), ver, sizeof(ver))) {
		snprintf(st->message, sizeof(st->message),
			 "key id '%.100s' is not NAME or NAME/VERSION", key_id);
		return st->err = P11K_ERR_KEY_NOT_FOUND;
	}
	const char *jalg = (unsigned)alg < SALG_COUNT_ ? jws_alg[alg] : NULL;
	bool ver_ok = true;
	if (version && version[0]) {
		char tmp[300], n2[128];
		snprintf(tmp, sizeof(tmp), "%s/%.150s", name, version);
		ver_ok = (!ver[0] || strcasecmp(ver, version) == 0) &&
			 az_parse_key_id(tmp, n2, sizeof(n2), ver, sizeof(ver));
	}
	if (!jalg || !digest || dlen != salg_digest_len(alg) || !ver_ok) {
		snprintf(st->message, sizeof(st->message),
			 "sign: malformed request (algorithm %d, %zu-byte digest, version %.60s)",
			 (int)alg, dlen, version ? version : "");
		return st->err = P11K_ERR_INTERNAL;
	}
	snprintf(path, sizeof(path), "/keys/%s%s%s/sign", name, ver[0] ? "/" : "", ver);
	kv_crypt c = {.op = "sign", .path = path, .alg = jalg, .in = digest, .inlen = dlen};
	p11k_err e = az_kv_crypt_call(s, &c, st);
	if (e != P11K_OK)
		return e;
	if (!az_parse_kid(c.kid, kn, sizeof(kn), kv, sizeof(kv)) || strcasecmp(kn, name) != 0 ||
	    (ver[0] && strcasecmp(kv, ver) != 0)) {
		snprintf(st->message, sizeof(st->message), "sign: reply names another key");
		az_kv_crypt_free(&c);
		return st->err = P11K_ERR_BAD_REPLY;
	}
	char why[120];
	e = sig_for_module(alg, false, &c.out, c.outlen, sig, siglen, why, sizeof(why));
	if (e != P11K_OK)
		snprintf(st->message, sizeof(st->message), "sign: %s: %s", jalg, why);
	return st->err = e;
}
