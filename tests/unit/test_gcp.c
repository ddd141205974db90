/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The Google Cloud KMS provider without a network: CRC32C against its
 * standard vectors; the RS256 JWT-bearer assertion (structure, claims, and
 * the signature verified with the public key); the token cache (one fetch,
 * refresh 5 minutes before expiry, a 401 drops the token); the metadata
 * server and authorized-user sources; the google.rpc.Status error table and
 * retries; and the CRC32C contract: a corrupted or unverified checksum in a
 * reply is refused, never returned as a result. Raw AES-GCM (remote_crypt on
 * RAW_ENCRYPT_DECRYPT keys): the request fields and their CRC32Cs, every
 * integrity check of a reply, the error mapping, and version selection
 * (newest enabled for encryption, trial decryption, the cached list).
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>

#include "asym_fixture.h"
#include "common/crypto.h"
#include "common/log.h"
#include "common/secmem.h"
#include "providers/common/codec.h"
#include "providers/gcp/crc32c.h"
#include "providers/gcp/gcp.h"
#include "providers/gcp/oauth.h"

#define KEY "projects/p/locations/global/keyRings/r/cryptoKeys/k"
#define TOKEN_URL "https://token.test/token"

static const char *SAMPLE = "123456789";

/* --- CRC32C ---------------------------------------------------------------- */

static void test_crc32c_vectors(void **state)
{
	(void)state;
	assert_int_equal(crc32c((const uint8_t *)SAMPLE, 9), 0xE3069283u);
	assert_int_equal(crc32c((const uint8_t *)"hello world", 11), 3381945770u);
	assert_int_equal(crc32c((const uint8_t *)"aad-1", 5), 899476416u);
	assert_int_equal(crc32c(NULL, 0), 0);
	/* RFC 3720 B.4: 32 bytes of zeros, of 0xff. */
	uint8_t z[32] = {0}, f[32];
	memset(f, 0xff, sizeof(f));
	assert_int_equal(crc32c(z, 32), 0x8A9136AAu);
	assert_int_equal(crc32c(f, 32), 0x62A8AB43u);
	/* Incremental equals one shot. */
	uint32_t c = crc32c_update(0, (const uint8_t *)SAMPLE, 4);
	assert_int_equal(crc32c_update(c, (const uint8_t *)SAMPLE + 4, 5), 0xE3069283u);
}

/* --- the JWT assertion ------------------------------------------------------ */

static EVP_PKEY *test_key;
static char *test_pem;

static void make_key(void)
{
	if (test_key)
		return;
	test_key = EVP_RSA_gen(2048);
	assert_non_null(test_key);
	BIO *b = BIO_new(BIO_s_mem());
	assert_true(PEM_write_bio_PrivateKey(b, test_key, NULL, NULL, 0, NULL, NULL));
	char *p;
	long n = BIO_get_mem_data(b, &p);
	test_pem = strndup(p, (size_t)n);
	BIO_free(b);
}

static json_t *b64url_json(const char *s, size_t n)
{
	uint8_t *raw;
	size_t rl;
	assert_true(b64url_decode(s, n, false, &raw, &rl));
	json_error_t je;
	json_t *j = json_loadb((const char *)raw, rl, 0, &je);
	free(raw);
	assert_non_null(j);
	return j;
}

static void test_jwt_assertion(void **state)
{
	(void)state;
	make_key();
	char *jwt = NULL;
	assert_int_equal(gcp_jwt_assertion(test_pem, "kid-1", "sa@p.iam.gserviceaccount.com",
					   NULL, "https://www.googleapis.com/auth/cloudkms", TOKEN_URL,
					   1700000000, &jwt),
			 P11K_OK);
	char *d1 = strchr(jwt, '.');
	assert_non_null(d1);
	char *d2 = strchr(d1 + 1, '.');
	assert_non_null(d2);
	assert_null(strchr(d2 + 1, '.'));
	assert_null(strchr(jwt, '=')); /* base64url without padding */

	json_t *h = b64url_json(jwt, (size_t)(d1 - jwt));
	assert_string_equal(json_string_value(json_object_get(h, "alg")), "RS256");
	assert_string_equal(json_string_value(json_object_get(h, "typ")), "JWT");
	assert_string_equal(json_string_value(json_object_get(h, "kid")), "kid-1");
	json_decref(h);
	json_t *c = b64url_json(d1 + 1, (size_t)(d2 - d1 - 1));
	assert_string_equal(json_string_value(json_object_get(c, "iss")),
			    "sa@p.iam.gserviceaccount.com");
	assert_string_equal(json_string_value(json_object_get(c, "aud")), TOKEN_URL);
	assert_string_equal(json_string_value(json_object_get(c, "scope")),
			    "https://www.googleapis.com/auth/cloudkms");
	assert_int_equal(json_integer_value(json_object_get(c, "iat")), 1700000000);
	assert_int_equal(json_integer_value(json_object_get(c, "exp")), 1700003600);
	assert_null(json_object_get(c, "sub"));
	json_decref(c);

	/* RS256 = RSASSA-PKCS1-v1_5 with SHA-256 over "header.claims". */
	uint8_t *sig;
	size_t sl;
	assert_true(b64url_decode(d2 + 1, strlen(d2 + 1), false, &sig, &sl));
	assert_int_equal(sl, 256);
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	assert_int_equal(EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, test_key), 1);
	assert_int_equal(EVP_DigestVerify(md, sig, sl, (const uint8_t *)jwt, (size_t)(d2 - jwt)),
			 1);
	/* One flipped byte of the signed input and it no longer verifies. */
	jwt[3] ^= 1;
	EVP_MD_CTX_reset(md);
	assert_int_equal(EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, test_key), 1);
	assert_int_not_equal(
		EVP_DigestVerify(md, sig, sl, (const uint8_t *)jwt, (size_t)(d2 - jwt)), 1);
	EVP_MD_CTX_free(md);
	free(sig);
	free(jwt);

	/* Not a private key: refused, no assertion. */
	assert_int_equal(gcp_jwt_assertion("-----BEGIN PRIVATE KEY-----\nAAAA\n"
					   "-----END PRIVATE KEY-----\n",
					   NULL, "i", NULL, "s", "a", 1, &jwt),
			 P11K_ERR_ACCESS_DENIED);
	assert_null(jwt);
}

/* --- a fake Google ---------------------------------------------------------- */

typedef enum { KMS_OK, KMS_CORRUPT_CRC, KMS_UNVERIFIED, KMS_ERROR } kms_mode;

typedef struct fake {
	uint64_t now;
	int token_calls, metadata_calls, kms_calls;
	long expires_in;
	char last_auth[2048];
	char last_token_body[8192];
	char last_metadata_url[512];
	char last_metadata_flavor[64];
	kms_mode mode;
	long err_status;
	const char *err_body;
	int err_count;         /* errors before normal replies; -1 = always */
	const char *primary_state;
	bool no_primary;
	char last_kms_body[4096];
} fake;

static fake F;
static char scratch[64];
static char sa_file[128];

static const char *hdr(const http_request *r, const char *name)
{
	const char *v = http_header_get(r, name);
	return v ? v : "";
}

static p11k_err reply(http_response *resp, long status, const char *body)
{
	resp->status = status;
	return dbuf_add(&resp->body, body, strlen(body)) ? P11K_OK : P11K_ERR_NOMEM;
}

/* --- a fake Cloud KMS for raw keys ---------------------------------------------
 * "AES-GCM" here: ciphertext = plaintext ^ 0x5a, then a 16-byte tag naming
 * the version and the AAD's CRC32C; the IV is the version then 1..11. A
 * version opens only its own ciphertexts with the same AAD and IV. */

typedef enum {
	RAW_OK,
	RAW_BAD_CT_CRC,     /* rawEncrypt: ciphertextCrc32c off by one */
	RAW_BAD_IV_CRC,     /* rawEncrypt: initializationVectorCrc32c off by one */
	RAW_NO_CT_CRC,      /* rawEncrypt: ciphertextCrc32c missing */
	RAW_UNVERIFIED_PT,  /* rawEncrypt: verifiedPlaintextCrc32c missing */
	RAW_UNVERIFIED_AAD, /* both: verifiedAdditionalAuthenticatedDataCrc32c false */
	RAW_IV_16,          /* rawEncrypt: a 16-byte IV (consistent CRC) */
	RAW_TAG_12,         /* rawEncrypt: tagLength 12 */
	RAW_TAG_16_STRING,  /* rawEncrypt: tagLength "16" (accepted) */
	RAW_NO_TAG_LEN,     /* rawEncrypt: tagLength absent (accepted: 16) */
	RAW_SHORT_CT,       /* rawEncrypt: ciphertext one byte short (consistent CRC) */
	RAW_OTHER_NAME,     /* rawEncrypt: reply names another version */
	RAW_BAD_PT_CRC,     /* rawDecrypt: plaintextCrc32c off by one */
	RAW_UNVERIFIED_CT,  /* rawDecrypt: verifiedCiphertextCrc32c missing */
	RAW_UNVERIFIED_IV,  /* rawDecrypt: verifiedInitializationVectorCrc32c false */
} raw_fault;

typedef struct raw_fake {
	raw_fault fault;
	const char *list1, *list2; /* ListCryptoKeyVersions pages (list2: pageToken=p2) */
	int list_calls, enc_calls, dec_calls;
	char last_list_url[1024];
	char tried[256];            /* version ids used, "10,3," */
	char last_body[4096];
	char last_url[1024];
	unsigned disabled;          /* this version answers FAILED_PRECONDITION */
	const char *err_verb;       /* ":rawEncrypt"/":rawDecrypt": answer err_body */
	unsigned err_version;       /* ... only for this version (0: any) */
	long err_status;
	const char *err_body;
} raw_fake;

static raw_fake R;

/* --- a scripted Cloud KMS for asymmetric keys: each request must be the
 * next one scripted (method and URL after /v1/); the reply is given. */
#define ASYM_SCRIPT 8

typedef struct asym_fake {
	size_t n, next, calls;
	struct {
		const char *method, *url;
		long status;
		char *body;
	} s[ASYM_SCRIPT];
	char body[ASYM_SCRIPT][2048];
} asym_fake;

static asym_fake A;

static void fake_tag(unsigned ver, const uint8_t *aad, size_t al, uint8_t tag[16])
{
	uint32_t c = crc32c(aad, al);
	memset(tag, 0xAA, 16);
	tag[0] = (uint8_t)ver;
	memcpy(tag + 1, &c, 4);
}

static bool bytes_field(json_t *o, const char *field, uint8_t **out, size_t *len)
{
	json_t *f = json_object_get(o, field);
	if (!f)
		return false;
	assert_true(b64_decode(json_string_value(f), json_string_length(f), false, out, len));
	/* Every bytes field comes with its CRC32C. */
	char crcname[64], want[16];
	snprintf(crcname, sizeof(crcname), "%sCrc32c", field);
	snprintf(want, sizeof(want), "%u", crc32c(*out, *len));
	assert_string_equal(json_string_value(json_object_get(o, crcname)), want);
	return true;
}

static void set_b64(json_t *o, const char *field, const uint8_t *p, size_t n, uint32_t crc_delta)
{
	char *b = b64_encode(p, n);
	char crcname[64], v[16];
	json_object_set_new(o, field, json_string(b));
	free(b);
	snprintf(crcname, sizeof(crcname), "%sCrc32c", field);
	snprintf(v, sizeof(v), "%u", crc32c(p, n) + crc_delta);
	json_object_set_new(o, crcname, json_string(v));
}

static p11k_err json_reply(http_response *resp, json_t *o)
{
	char *d = json_dumps(o, JSON_COMPACT);
	p11k_err e = reply(resp, 200, d);
	free(d);
	json_decref(o);
	return e;
}

static p11k_err raw_reply(const http_request *req, http_response *resp)
{
	if (strcmp(req->method, "GET") == 0) {
		R.list_calls++;
		snprintf(R.last_list_url, sizeof(R.last_list_url), "%s", req->url);
		const char *b = strstr(req->url, "pageToken=p2") ? R.list2 : R.list1;
		return reply(resp, 200, b ? b : "{}");
	}
	snprintf(R.last_url, sizeof(R.last_url), "%s", req->url);
	size_t n = req->bodylen < sizeof(R.last_body) - 1 ? req->bodylen : sizeof(R.last_body) - 1;
	memcpy(R.last_body, req->body, n);
	R.last_body[n] = 0;
	const char *vs = strstr(req->url, "/cryptoKeyVersions/");
	assert_non_null(vs);
	unsigned ver = (unsigned)strtoul(vs + 19, NULL, 10);
	size_t tl = strlen(R.tried);
	snprintf(R.tried + tl, sizeof(R.tried) - tl, "%u,", ver);
	bool enc = strstr(req->url, ":rawEncrypt") != NULL;
	if (enc)
		R.enc_calls++;
	else
		R.dec_calls++;
	if (R.err_verb && strstr(req->url, R.err_verb) && (!R.err_version || R.err_version == ver))
		return reply(resp, R.err_status, R.err_body);
	if (ver == R.disabled) {
		char b[512];
		snprintf(b, sizeof(b),
			 "{\"error\":{\"code\":400,\"message\":\"%s/cryptoKeyVersions/%u is not "
			 "enabled, current state is: DISABLED.\",\"status\":\"FAILED_PRECONDITION\"}}",
			 KEY, ver);
		return reply(resp, 400, b);
	}
	json_error_t je;
	json_t *in = json_loadb((const char *)req->body, req->bodylen, 0, &je);
	assert_non_null(in);
	uint8_t *aad = NULL, *data = NULL, tag[16], iv[12];
	size_t al = 0, dl = 0;
	bool has_aad = bytes_field(in, "additionalAuthenticatedData", &aad, &al);
	json_t *out = json_object();
	char name[300];
	snprintf(name, sizeof(name), "%s/cryptoKeyVersions/%u", KEY, ver);
	iv[0] = (uint8_t)ver;
	for (int i = 1; i < 12; i++)
		iv[i] = (uint8_t)i;
	if (enc) {
		assert_true(bytes_field(in, "plaintext", &data, &dl));
		/* Cloud KMS generates the IV for AES-GCM and refuses one. */
		assert_null(json_object_get(in, "initializationVector"));
		uint8_t ct[4096];
		for (size_t i = 0; i < dl; i++)
			ct[i] = data[i] ^ 0x5a;
		fake_tag(ver, aad, al, ct + dl);
		size_t cl = dl + 16 - (R.fault == RAW_SHORT_CT ? 1 : 0);
		set_b64(out, "ciphertext", ct, cl, R.fault == RAW_BAD_CT_CRC);
		if (R.fault == RAW_NO_CT_CRC)
			json_object_del(out, "ciphertextCrc32c");
		uint8_t iv16[16] = {0};
		memcpy(iv16, iv, 12);
		if (R.fault == RAW_IV_16)
			set_b64(out, "initializationVector", iv16, 16, 0);
		else
			set_b64(out, "initializationVector", iv, 12, R.fault == RAW_BAD_IV_CRC);
		json_object_set_new(out, "name",
				    json_string(R.fault == RAW_OTHER_NAME ? KEY "/cryptoKeyVersions/99"
									  : name));
		if (R.fault == RAW_TAG_12)
			json_object_set_new(out, "tagLength", json_integer(12));
		else if (R.fault == RAW_TAG_16_STRING)
			json_object_set_new(out, "tagLength", json_string("16"));
		else if (R.fault != RAW_NO_TAG_LEN)
			json_object_set_new(out, "tagLength", json_integer(16));
		if (R.fault != RAW_UNVERIFIED_PT)
			json_object_set_new(out, "verifiedPlaintextCrc32c", json_true());
		json_object_set_new(out, "protectionLevel", json_string("SOFTWARE"));
	} else {
		uint8_t *giv = NULL;
		size_t gl = 0;
		assert_true(bytes_field(in, "ciphertext", &data, &dl));
		assert_true(bytes_field(in, "initializationVector", &giv, &gl));
		assert_int_equal(json_integer_value(json_object_get(in, "tagLength")), 16);
		assert_true(dl >= 16);
		fake_tag(ver, aad, al, tag);
		bool ok = gl == 12 && memcmp(giv, iv, 12) == 0 && memcmp(data + dl - 16, tag, 16) == 0;
		free(giv);
		if (!ok) {
			free(data);
			free(aad);
			json_decref(in);
			json_decref(out);
			return reply(resp, 400, "{\"error\":{\"code\":400,\"message\":\"Decryption "
						"failed: the ciphertext is invalid.\",\"status\":"
						"\"INVALID_ARGUMENT\"}}");
		}
		for (size_t i = 0; i < dl - 16; i++)
			data[i] ^= 0x5a;
		set_b64(out, "plaintext", data, dl - 16, R.fault == RAW_BAD_PT_CRC);
		if (R.fault != RAW_UNVERIFIED_CT)
			json_object_set_new(out, "verifiedCiphertextCrc32c", json_true());
		json_object_set_new(out, "verifiedInitializationVectorCrc32c",
				    json_boolean(R.fault != RAW_UNVERIFIED_IV));
	}
	if (has_aad)
		json_object_set_new(out, "verifiedAdditionalAuthenticatedDataCrc32c",
				    json_boolean(R.fault != RAW_UNVERIFIED_AAD));
	free(data);
	free(aad);
	json_decref(in);
	return json_reply(resp, out);
}

static p11k_err asym_reply(const http_request *req, http_response *resp);

static p11k_err kms_reply(const http_request *req, http_response *resp)
{
	F.kms_calls++;
	snprintf(F.last_auth, sizeof(F.last_auth), "%s", hdr(req, "Authorization"));
	if (F.mode == KMS_ERROR && F.err_count != 0) {
		if (F.err_count > 0)
			F.err_count--;
		return reply(resp, F.err_status, F.err_body);
	}
	if (A.n)
		return asym_reply(req, resp);
	if (strstr(req->url, ":raw") || strstr(req->url, "/cryptoKeyVersions?"))
		return raw_reply(req, resp);
	if (strcmp(req->method, "GET") == 0) {
		char b[1024];
		if (strstr(req->url, "/cryptoKeyVersions/"))
			snprintf(b, sizeof(b),
				 "{\"name\":\"%s/cryptoKeyVersions/2\",\"state\":\"ENABLED\","
				 "\"createTime\":\"2024-02-01T12:00:00.5Z\"}", KEY);
		else if (F.no_primary)
			snprintf(b, sizeof(b), "{\"name\":\"%s\",\"purpose\":\"RAW_ENCRYPT_DECRYPT\"}",
				 KEY);
		else
			snprintf(b, sizeof(b),
				 "{\"name\":\"%s\",\"createTime\":\"2024-01-01T00:00:00.123456Z\","
				 "\"primary\":{\"name\":\"%s/cryptoKeyVersions/3\",\"state\":\"%s\","
				 "\"createTime\":\"2024-04-01T00:00:00Z\"}}",
				 KEY, KEY, F.primary_state ? F.primary_state : "ENABLED");
		return reply(resp, 200, b);
	}
	json_error_t je;
	json_t *in = json_loadb((const char *)req->body, req->bodylen, 0, &je);
	size_t n = req->bodylen < sizeof(F.last_kms_body) - 1 ? req->bodylen
							     : sizeof(F.last_kms_body) - 1;
	memcpy(F.last_kms_body, req->body, n);
	F.last_kms_body[n] = 0;
	assert_non_null(in);
	char out[4096];
	bool enc = strstr(req->url, ":encrypt") != NULL;
	const char *field = enc ? "plaintext" : "ciphertext";
	json_t *f = json_object_get(in, field);
	uint8_t *data;
	size_t dl;
	assert_true(b64_decode(json_string_value(f), json_string_length(f), false, &data, &dl));
	/* The request's CRC32C must be right: the service checks it. */
	char want[16];
	snprintf(want, sizeof(want), "%u", crc32c(data, dl));
	assert_string_equal(json_string_value(json_object_get(in, enc ? "plaintextCrc32c"
								       : "ciphertextCrc32c")),
			    want);
	json_t *aad = json_object_get(in, "additionalAuthenticatedData");
	if (aad) {
		uint8_t *a;
		size_t al;
		assert_true(b64_decode(json_string_value(aad), json_string_length(aad), false, &a,
				       &al));
		snprintf(want, sizeof(want), "%u", crc32c(a, al));
		assert_string_equal(json_string_value(json_object_get(
					    in, "additionalAuthenticatedDataCrc32c")),
				    want);
		free(a);
	}
	/* "Ciphertext" = the data with every byte flipped. */
	for (size_t i = 0; i < dl; i++)
		data[i] ^= 0xff;
	char *b64 = b64_encode(data, dl);
	uint32_t crc = crc32c(data, dl) + (F.mode == KMS_CORRUPT_CRC ? 1 : 0);
	if (enc)
		snprintf(out, sizeof(out),
			 "{\"name\":\"%s/cryptoKeyVersions/3\",\"ciphertext\":\"%s\","
			 "\"ciphertextCrc32c\":\"%u\"%s%s}",
			 KEY, b64, crc,
			 F.mode == KMS_UNVERIFIED ? "" : ",\"verifiedPlaintextCrc32c\":true",
			 aad ? ",\"verifiedAdditionalAuthenticatedDataCrc32c\":true" : "");
	else
		snprintf(out, sizeof(out), "{\"plaintext\":\"%s\",\"plaintextCrc32c\":%u}", b64,
			 crc); /* a JSON number: accepted as well as a string */
	free(b64);
	free(data);
	json_decref(in);
	return reply(resp, 200, out);
}

static p11k_err fake_transport(void *arg, const http_request *req, http_response *resp,
			       provider_status *st)
{
	(void)arg;
	(void)st;
	char tok[128];
	if (strcmp(req->url, TOKEN_URL) == 0) {
		F.token_calls++;
		size_t n = req->bodylen < sizeof(F.last_token_body) - 1
				   ? req->bodylen
				   : sizeof(F.last_token_body) - 1;
		memcpy(F.last_token_body, req->body, n);
		F.last_token_body[n] = 0;
		snprintf(tok, sizeof(tok),
			 "{\"access_token\":\"tok-%d\",\"expires_in\":%ld,\"token_type\":\"Bearer\"}",
			 F.token_calls, F.expires_in);
		return reply(resp, 200, tok);
	}
	if (strstr(req->url, "/computeMetadata/v1/")) {
		F.metadata_calls++;
		snprintf(F.last_metadata_url, sizeof(F.last_metadata_url), "%s", req->url);
		snprintf(F.last_metadata_flavor, sizeof(F.last_metadata_flavor), "%s",
			 hdr(req, "Metadata-Flavor"));
		snprintf(tok, sizeof(tok),
			 "{\"access_token\":\"md-%d\",\"expires_in\":%ld,\"token_type\":\"Bearer\"}",
			 F.metadata_calls, F.expires_in);
		return reply(resp, 200, tok);
	}
	if (strncmp(req->url, "https://kms.test/v1/", 20) == 0)
		return kms_reply(req, resp);
	return reply(resp, 404, "{}");
}

static void no_sleep(void *arg, long ms)
{
	(void)arg;
	(void)ms;
}

static uint64_t fake_now(void *arg)
{
	(void)arg;
	return F.now;
}

static void write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static void write_sa_file(void)
{
	make_key();
	json_t *j = json_pack("{s:s, s:s, s:s, s:s, s:s}", "type", "service_account",
			      "client_email", "sa@p.iam.gserviceaccount.com", "private_key",
			      test_pem, "private_key_id", "kid-1", "token_uri", TOKEN_URL);
	snprintf(sa_file, sizeof(sa_file), "%s/sa.json", scratch);
	assert_int_equal(json_dump_file(j, sa_file, 0), 0);
	json_decref(j);
}

/* A provider on the fake, from a config object (extra fields merged). */
static void *provider(const char *extra_json)
{
	char cfgs[2048];
	snprintf(cfgs, sizeof(cfgs),
		 "{\"endpoint\": \"https://kms.test/\", \"seal_with\": \"%s\"%s%s}", KEY,
		 extra_json[0] ? ", " : "", extra_json);
	json_error_t je;
	json_t *cfg = json_loads(cfgs, 0, &je);
	assert_non_null(cfg);
	void *st = NULL;
	char why[256] = "";
	p11k_err e = gcp_provider_ops.create(cfg, "/dev/null", &st, why, sizeof(why));
	json_decref(cfg);
	if (e != P11K_OK)
		fail_msg("create: %s", why);
	gcp_provider_ops.test_set_transport(st, fake_transport, NULL, no_sleep);
	clock_set_fake(fake_now, NULL);
	return st;
}

static void *sa_provider(void)
{
	char extra[300];
	snprintf(extra, sizeof(extra), "\"credentials_file\": \"%s\"", sa_file);
	return provider(extra);
}

static int fx_setup(void **state)
{
	(void)state;
	memset(&F, 0, sizeof(F));
	memset(&R, 0, sizeof(R));
	memset(&A, 0, sizeof(A));
	F.now = 1700000000;
	F.expires_in = 3600;
	snprintf(scratch, sizeof(scratch), "/tmp/p11kms-gcp-unit-XXXXXX");
	assert_non_null(mkdtemp(scratch));
	setenv("HOME", scratch, 1);
	unsetenv("GOOGLE_APPLICATION_CREDENTIALS");
	unsetenv("CLOUDSDK_CONFIG");
	unsetenv("GCE_METADATA_HOST");
	write_sa_file();
	return 0;
}

static int fx_teardown(void **state)
{
	(void)state;
	clock_set_fake(NULL, NULL);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", scratch);
	return system(cmd) == 0 ? 0 : -1;
}

static p11k_err do_encrypt(void *st, const char *aad, uint8_t **blob, size_t *bl,
			   provider_status *ps)
{
	char kv[256] = "";
	memset(ps, 0, sizeof(*ps));
	return gcp_provider_ops.encrypt(st, KEY, (const uint8_t *)SAMPLE, 9, (const uint8_t *)aad,
					aad ? strlen(aad) : 0, blob, bl, kv, sizeof(kv), ps);
}

/* --- tokens ----------------------------------------------------------------- */

static void test_encrypt_decrypt_and_token_cache(void **state)
{
	(void)state;
	void *st = sa_provider();
	provider_status ps;
	uint8_t *blob = NULL, *pt = NULL;
	size_t bl = 0, pl = 0;
	char kv[256] = "";
	assert_int_equal(F.token_calls, 0); /* no network at create */
	assert_int_equal(gcp_provider_ops.encrypt(st, KEY, (const uint8_t *)SAMPLE, 9,
						  (const uint8_t *)"aad", 3, &blob, &bl, kv,
						  sizeof(kv), &ps),
			 P11K_OK);
	assert_string_equal(kv, KEY "/cryptoKeyVersions/3");
	assert_int_equal(bl, 9);
	assert_int_equal(F.token_calls, 1);
	assert_string_equal(F.last_auth, "Bearer tok-1");
	assert_non_null(strstr(F.last_token_body,
			       "grant_type=urn%3Aietf%3Aparams%3Aoauth%3Agrant-type%3Ajwt-bearer"));
	assert_non_null(strstr(F.last_token_body, "&assertion=ey"));
	assert_non_null(strstr(F.last_kms_body, "\"additionalAuthenticatedData\":\"YWFk\""));
	assert_int_equal(gcp_provider_ops.decrypt(st, KEY, blob, bl, (const uint8_t *)"aad", 3,
						  &pt, &pl, &ps),
			 P11K_OK);
	assert_int_equal(pl, 9);
	assert_memory_equal(pt, SAMPLE, 9);
	sec_free(pt);
	free(blob);
	assert_int_equal(F.token_calls, 1); /* cached */

	/* More than 5 minutes left: still cached. */
	F.now += 3600 - 301;
	assert_int_equal(do_encrypt(st, NULL, &blob, &bl, &ps), P11K_OK);
	free(blob);
	assert_int_equal(F.token_calls, 1);
	/* Inside the 5-minute window: refreshed. */
	F.now += 2;
	assert_int_equal(do_encrypt(st, NULL, &blob, &bl, &ps), P11K_OK);
	free(blob);
	assert_int_equal(F.token_calls, 2);
	assert_string_equal(F.last_auth, "Bearer tok-2");
	/* No AAD: no AAD fields at all (they are optional). */
	assert_null(strstr(F.last_kms_body, "additionalAuthenticatedData"));

	/* A 401 drops the cached token and the call is made once more with
	 * a fresh one. */
	F.mode = KMS_ERROR;
	F.err_status = 401;
	F.err_count = 1;
	F.err_body = "{\"error\":{\"code\":401,\"message\":\"Request had invalid authentication "
		     "credentials.\",\"status\":\"UNAUTHENTICATED\"}}";
	F.kms_calls = 0;
	assert_int_equal(do_encrypt(st, NULL, &blob, &bl, &ps), P11K_OK);
	free(blob);
	assert_int_equal(F.kms_calls, 2);
	assert_int_equal(F.token_calls, 3);
	assert_string_equal(F.last_auth, "Bearer tok-3");
	/* Refused with the fresh token too: access denied. */
	F.mode = KMS_ERROR;
	F.err_count = -1;
	assert_int_equal(do_encrypt(st, NULL, &blob, &bl, &ps), P11K_ERR_ACCESS_DENIED);
	assert_string_equal(ps.error_name, "UNAUTHENTICATED");
	assert_int_equal(ps.http_status, 401);
	F.mode = KMS_OK;
	assert_int_equal(do_encrypt(st, NULL, &blob, &bl, &ps), P11K_OK);
	free(blob);
	assert_int_equal(F.token_calls, 5);
	gcp_provider_ops.destroy(st);
}

static void test_metadata_source(void **state)
{
	(void)state;
	setenv("GCE_METADATA_HOST", "169.254.169.254", 1);
	void *st = provider("");
	provider_status ps;
	uint8_t *blob;
	size_t bl;
	assert_int_equal(do_encrypt(st, NULL, &blob, &bl, &ps), P11K_OK);
	free(blob);
	assert_int_equal(F.metadata_calls, 1);
	assert_int_equal(F.token_calls, 0);
	assert_string_equal(F.last_metadata_flavor, "Google");
	assert_string_equal(F.last_metadata_url,
			    "http://169.254.169.254/computeMetadata/v1/instance/service-accounts/"
			    "default/token?scopes=https%3A%2F%2Fwww.googleapis.com%2Fauth%2Fcloudkms");
	assert_string_equal(F.last_auth, "Bearer md-1");
	gcp_provider_ops.destroy(st);
	/* The config's metadata_host wins over the environment. */
	st = provider("\"metadata_host\": \"127.0.0.1:8080\"");
	assert_int_equal(do_encrypt(st, NULL, &blob, &bl, &ps), P11K_OK);
	free(blob);
	assert_non_null(strstr(F.last_metadata_url, "http://127.0.0.1:8080/computeMetadata/"));
	gcp_provider_ops.destroy(st);
	unsetenv("GCE_METADATA_HOST");
}

static void test_authorized_user_and_gcloud_file(void **state)
{
	(void)state;
	char d[128], p[200];
	snprintf(d, sizeof(d), "%s/.config", scratch);
	assert_int_equal(mkdir(d, 0700), 0);
	snprintf(d, sizeof(d), "%s/.config/gcloud", scratch);
	assert_int_equal(mkdir(d, 0700), 0);
	snprintf(p, sizeof(p), "%s/application_default_credentials.json", d);
	write_text(p, "{\"type\":\"authorized_user\",\"client_id\":\"cid.apps\","
		      "\"client_secret\":\"s3cr&t\",\"refresh_token\":\"1//rt\"}");
	void *st = provider("\"token_uri\": \"" TOKEN_URL "\"");
	provider_status ps;
	uint8_t *blob;
	size_t bl;
	assert_int_equal(do_encrypt(st, NULL, &blob, &bl, &ps), P11K_OK);
	free(blob);
	assert_int_equal(F.token_calls, 1);
	assert_int_equal(F.metadata_calls, 0);
	assert_string_equal(F.last_token_body, "grant_type=refresh_token&client_id=cid.apps&"
					       "client_secret=s3cr%26t&refresh_token=1%2F%2Frt");
	gcp_provider_ops.destroy(st);

	/* GOOGLE_APPLICATION_CREDENTIALS comes before the gcloud file. */
	setenv("GOOGLE_APPLICATION_CREDENTIALS", sa_file, 1);
	st = provider("");
	assert_int_equal(do_encrypt(st, NULL, &blob, &bl, &ps), P11K_OK);
	free(blob);
	assert_non_null(strstr(F.last_token_body, "jwt-bearer"));
	gcp_provider_ops.destroy(st);
	/* Named but missing: an error, not a fall-through to the next source. */
	setenv("GOOGLE_APPLICATION_CREDENTIALS", "/nonexistent/sa.json", 1);
	st = provider("");
	assert_int_equal(do_encrypt(st, NULL, &blob, &bl, &ps), P11K_ERR_ACCESS_DENIED);
	assert_non_null(strstr(ps.message, "does not exist"));
	gcp_provider_ops.destroy(st);
	unsetenv("GOOGLE_APPLICATION_CREDENTIALS");
}

static void test_self_signed_jwt(void **state)
{
	(void)state;
	char extra[300];
	snprintf(extra, sizeof(extra), "\"credentials_file\": \"%s\", \"self_signed_jwt\": true",
		 sa_file);
	void *st = provider(extra);
	provider_status ps;
	uint8_t *blob;
	size_t bl;
	assert_int_equal(do_encrypt(st, NULL, &blob, &bl, &ps), P11K_OK);
	free(blob);
	assert_int_equal(F.token_calls, 0); /* no token endpoint */
	assert_int_equal(strncmp(F.last_auth, "Bearer ey", 9), 0);
	const char *jwt = F.last_auth + 7;
	const char *d1 = strchr(jwt, '.'), *d2 = d1 ? strchr(d1 + 1, '.') : NULL;
	assert_non_null(d2);
	json_t *c = b64url_json(d1 + 1, (size_t)(d2 - d1 - 1));
	assert_string_equal(json_string_value(json_object_get(c, "iss")),
			    "sa@p.iam.gserviceaccount.com");
	assert_string_equal(json_string_value(json_object_get(c, "sub")),
			    "sa@p.iam.gserviceaccount.com");
	assert_null(json_object_get(c, "aud"));
	json_decref(c);
	gcp_provider_ops.destroy(st);
}

/* --- errors ----------------------------------------------------------------- */

static void test_status_table(void **state)
{
	(void)state;
	assert_int_equal(gcp_map_status("PERMISSION_DENIED", 403, false), P11K_ERR_ACCESS_DENIED);
	assert_int_equal(gcp_map_status("UNAUTHENTICATED", 401, false), P11K_ERR_ACCESS_DENIED);
	assert_int_equal(gcp_map_status("NOT_FOUND", 404, false), P11K_ERR_KEY_NOT_FOUND);
	assert_int_equal(gcp_map_status("FAILED_PRECONDITION", 400, true), P11K_ERR_KEY_DISABLED);
	assert_int_equal(gcp_map_status("INVALID_ARGUMENT", 400, true),
			 P11K_ERR_INVALID_CIPHERTEXT);
	assert_int_equal(gcp_map_status("INVALID_ARGUMENT", 400, false), P11K_ERR_INTERNAL);
	assert_int_equal(gcp_map_status("UNAVAILABLE", 503, false), P11K_ERR_UNREACHABLE);
	assert_int_equal(gcp_map_status("DEADLINE_EXCEEDED", 504, false), P11K_ERR_UNREACHABLE);
	assert_int_equal(gcp_map_status("INTERNAL", 500, false), P11K_ERR_UNREACHABLE);
	assert_int_equal(gcp_map_status("RESOURCE_EXHAUSTED", 429, false), P11K_ERR_THROTTLED);
	/* No status name: the HTTP code decides, as in Google's clients. */
	assert_int_equal(gcp_map_status(NULL, 403, false), P11K_ERR_ACCESS_DENIED);
	assert_int_equal(gcp_map_status("", 503, false), P11K_ERR_UNREACHABLE);
	assert_int_equal(gcp_map_status("SOMETHING_NEW", 400, false), P11K_ERR_BAD_REPLY);
}

static void expect_error(void *st, long status, const char *name, int count, p11k_err want,
			 int want_calls)
{
	char body[256];
	snprintf(body, sizeof(body), "{\"error\":{\"code\":%ld,\"message\":\"m\",\"status\":\"%s\"}}",
		 status, name);
	F.mode = KMS_ERROR;
	F.err_status = status;
	F.err_body = body;
	F.err_count = count;
	F.kms_calls = 0;
	provider_status ps;
	uint8_t *blob = NULL;
	size_t bl;
	p11k_err e = do_encrypt(st, NULL, &blob, &bl, &ps);
	if (e == P11K_OK)
		free(blob);
	assert_int_equal(e, want);
	assert_int_equal(F.kms_calls, want_calls);
	if (want != P11K_OK) {
		assert_string_equal(ps.error_name, name);
		assert_int_equal(ps.http_status, status);
	}
	F.mode = KMS_OK;
}

static void test_errors_and_retries(void **state)
{
	(void)state;
	void *st = sa_provider();
	expect_error(st, 403, "PERMISSION_DENIED", -1, P11K_ERR_ACCESS_DENIED, 1);
	expect_error(st, 404, "NOT_FOUND", -1, P11K_ERR_KEY_NOT_FOUND, 1);
	/* + one GetCryptoKey, which asks whether the key's purpose is the
	 * cause (it fails here too: the key stays disabled, the error
	 * reported is Encrypt's). */
	expect_error(st, 400, "FAILED_PRECONDITION", -1, P11K_ERR_KEY_DISABLED, 2);
	/* Retried: UNAVAILABLE twice, then an answer. */
	expect_error(st, 503, "UNAVAILABLE", 2, P11K_OK, 3);
	expect_error(st, 429, "RESOURCE_EXHAUSTED", 1, P11K_OK, 2);
	/* A retryable status name on an unusual HTTP code is retried too. */
	expect_error(st, 400, "DEADLINE_EXCEEDED", 1, P11K_OK, 2);
	/* Attempts run out. */
	expect_error(st, 503, "UNAVAILABLE", -1, P11K_ERR_UNREACHABLE, 3);
	expect_error(st, 429, "RESOURCE_EXHAUSTED", -1, P11K_ERR_THROTTLED, 3);

	/* Decrypt: INVALID_ARGUMENT is a ciphertext that does not open. */
	F.mode = KMS_ERROR;
	F.err_status = 400;
	F.err_count = -1;
	F.err_body = "{\"error\":{\"code\":400,\"message\":\"Decryption failed: verify that "
		     "'name' refers to the correct CryptoKey.\",\"status\":\"INVALID_ARGUMENT\"}}";
	provider_status ps = {0};
	uint8_t *pt = NULL;
	size_t pl;
	assert_int_equal(gcp_provider_ops.decrypt(st, KEY, (const uint8_t *)"xx", 2, NULL, 0, &pt,
						  &pl, &ps),
			 P11K_ERR_INVALID_CIPHERTEXT);
	assert_non_null(strstr(ps.message, "Decryption failed"));
	/* ... unless the service says our checksum did not match: damage in
	 * transit, reported as such. */
	F.err_body = "{\"error\":{\"code\":400,\"message\":\"The checksum in field "
		     "ciphertext_crc32c did not match the data in field ciphertext.\","
		     "\"status\":\"INVALID_ARGUMENT\"}}";
	assert_int_equal(gcp_provider_ops.decrypt(st, KEY, (const uint8_t *)"xx", 2, NULL, 0, &pt,
						  &pl, &ps),
			 P11K_ERR_BAD_REPLY);
	F.mode = KMS_OK;
	/* Not a resource name: refused before any request. */
	F.kms_calls = 0;
	assert_int_equal(gcp_provider_ops.decrypt(st, "projects/p/../x?y", (const uint8_t *)"xx",
						  2, NULL, 0, &pt, &pl, &ps),
			 P11K_ERR_KEY_NOT_FOUND);
	assert_int_equal(F.kms_calls, 0);
	gcp_provider_ops.destroy(st);
}

/* --- CRC32C in replies -------------------------------------------------------- */

static void test_corrupt_crc_refused(void **state)
{
	(void)state;
	void *st = sa_provider();
	provider_status ps;
	uint8_t *blob = NULL, *pt = NULL;
	size_t bl = 0, pl = 0;
	F.mode = KMS_CORRUPT_CRC;
	assert_int_equal(do_encrypt(st, "aad", &blob, &bl, &ps), P11K_ERR_BAD_REPLY);
	assert_null(blob);
	assert_non_null(strstr(ps.message, "CRC32C mismatch"));
	assert_int_equal(gcp_provider_ops.decrypt(st, KEY, (const uint8_t *)"ct", 2, NULL, 0, &pt,
						  &pl, &ps),
			 P11K_ERR_BAD_REPLY);
	assert_null(pt);
	assert_non_null(strstr(ps.message, "plaintextCrc32c"));
	/* The service did not confirm it checked our plaintext's CRC. */
	F.mode = KMS_UNVERIFIED;
	assert_int_equal(do_encrypt(st, NULL, &blob, &bl, &ps), P11K_ERR_BAD_REPLY);
	assert_null(blob);
	assert_non_null(strstr(ps.message, "verifiedPlaintextCrc32c"));
	F.mode = KMS_OK;
	assert_int_equal(do_encrypt(st, NULL, &blob, &bl, &ps), P11K_OK);
	free(blob);
	gcp_provider_ops.destroy(st);
}

/* --- describe ------------------------------------------------------------------ */

static void test_describe(void **state)
{
	(void)state;
	void *st = sa_provider();
	key_info ki;
	provider_status ps = {0};
	assert_int_equal(gcp_provider_ops.describe(st, KEY, &ki, &ps), P11K_OK);
	assert_int_equal(ki.state, KEY_STATE_ENABLED);
	assert_string_equal(ki.key_id, KEY);
	assert_string_equal(ki.primary_version, KEY "/cryptoKeyVersions/3");
	assert_int_equal(ki.created_at, 1704067200);
	assert_int_equal(ki.rotated_at, 1711929600);
	/* The primary version's createTime, not the key's. */
	assert_int_equal(ki.version_created_at, 1711929600);
	/* A pinned version: its own createTime. */
	assert_int_equal(gcp_provider_ops.describe(st, KEY "/cryptoKeyVersions/2", &ki, &ps),
			 P11K_OK);
	assert_string_equal(ki.primary_version, KEY "/cryptoKeyVersions/2");
	assert_int_equal(ki.version_created_at, 1706788800);
	F.primary_state = "DISABLED";
	assert_int_equal(gcp_provider_ops.describe(st, KEY, &ki, &ps), P11K_OK);
	assert_int_equal(ki.state, KEY_STATE_DISABLED);
	F.primary_state = "DESTROYED";
	assert_int_equal(gcp_provider_ops.describe(st, KEY, &ki, &ps), P11K_OK);
	assert_int_equal(ki.state, KEY_STATE_DESTROYED);
	F.primary_state = "DESTROY_SCHEDULED";
	assert_int_equal(gcp_provider_ops.describe(st, KEY, &ki, &ps), P11K_OK);
	assert_int_equal(ki.state, KEY_STATE_DESTROYED);
	F.no_primary = true;
	assert_int_equal(gcp_provider_ops.describe(st, KEY, &ki, &ps), P11K_OK);
	assert_int_equal(ki.state, KEY_STATE_DISABLED);
	assert_int_equal(ki.version_created_at, 0); /* no primary: nothing to age */
	gcp_provider_ops.destroy(st);
}

/* --- raw AES-GCM (remote_crypt) -------------------------------------------------- */

#define VKEY(n) KEY "/cryptoKeyVersions/" #n

static size_t raw_bits = 256;

static p11k_err raw_op(void *st, const char *key, bool enc, const uint8_t *in, size_t inlen,
		       const char *aad, uint8_t iv[12], uint8_t **out, size_t *outlen,
		       provider_status *ps)
{
	remote_req r = {.alg = RALG_AES_GCM, .encrypt = enc, .key_bits = raw_bits, .in = in,
			.inlen = inlen, .aad = (const uint8_t *)aad,
			.aadlen = aad ? strlen(aad) : 0};
	if (!enc)
		memcpy(r.iv, iv, 12);
	memset(ps, 0, sizeof(*ps));
	*out = (uint8_t *)"junk";
	p11k_err e = gcp_provider_ops.remote_crypt(st, key, &r, out, outlen, ps);
	if (e == P11K_OK && enc)
		memcpy(iv, r.iv, 12);
	if (e != P11K_OK) {
		assert_null(*out); /* never a result with an error */
		assert_int_equal(*outlen, 0);
	}
	return e;
}

static p11k_err raw_enc(void *st, const char *key, const char *aad, uint8_t iv[12],
			uint8_t **ct, size_t *cl, provider_status *ps)
{
	return raw_op(st, key, true, (const uint8_t *)SAMPLE, 9, aad, iv, ct, cl, ps);
}

/* A ListCryptoKeyVersions page: spec "1:ENABLED,3:DISABLED", one algorithm. */
static char list_pages[2][8192];
static const char *vlist(int page, const char *alg, const char *spec, const char *next)
{
	json_t *arr = json_array();
	char buf[512];
	snprintf(buf, sizeof(buf), "%s", spec);
	for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		char name[300];
		char *colon = strchr(t, ':');
		assert_non_null(colon);
		*colon = 0;
		snprintf(name, sizeof(name), "%s/cryptoKeyVersions/%s", KEY, t);
		json_array_append_new(arr, json_pack("{s:s, s:s, s:s, s:s}", "name", name, "state",
						     colon + 1, "algorithm", alg,
						     "protectionLevel", "SOFTWARE"));
	}
	json_t *o = json_pack("{s:o}", "cryptoKeyVersions", arr);
	if (next)
		json_object_set_new(o, "nextPageToken", json_string(next));
	char *d = json_dumps(o, JSON_COMPACT);
	snprintf(list_pages[page], sizeof(list_pages[page]), "%s", d);
	free(d);
	json_decref(o);
	return list_pages[page];
}

static void test_raw_request_fields(void **state)
{
	(void)state;
	void *st = sa_provider();
	provider_status ps;
	uint8_t iv[12], *ct = NULL, *pt = NULL;
	size_t cl = 0, pl = 0;
	size_t sec_before = sec_in_use();
	/* A version name pins it: no listing. */
	assert_int_equal(raw_enc(st, VKEY(2), "aad-1", iv, &ct, &cl, &ps), P11K_OK);
	assert_int_equal(R.list_calls, 0);
	assert_int_equal(R.enc_calls, 1);
	assert_string_equal(R.last_url, "https://kms.test/v1/" VKEY(2) ":rawEncrypt");
	json_error_t je;
	json_t *b = json_loads(R.last_body, 0, &je);
	assert_non_null(b);
	assert_string_equal(json_string_value(json_object_get(b, "plaintext")), "MTIzNDU2Nzg5");
	assert_string_equal(json_string_value(json_object_get(b, "plaintextCrc32c")), "3808858755");
	assert_string_equal(json_string_value(json_object_get(b, "additionalAuthenticatedData")),
			    "YWFkLTE=");
	assert_string_equal(json_string_value(
				    json_object_get(b, "additionalAuthenticatedDataCrc32c")),
			    "899476416");
	/* No IV (the service makes it) and nothing else. */
	assert_int_equal(json_object_size(b), 4);
	json_decref(b);
	/* ciphertext||tag, in secure memory; the IV the service made. */
	assert_int_equal(cl, 9 + 16);
	assert_true(sec_in_use() >= sec_before + cl);
	for (int i = 0; i < 9; i++)
		assert_int_equal(ct[i], (uint8_t)(SAMPLE[i] ^ 0x5a));
	const uint8_t want_iv[12] = {2, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11};
	assert_memory_equal(iv, want_iv, 12);

	assert_int_equal(raw_op(st, VKEY(2), false, ct, cl, "aad-1", iv, &pt, &pl, &ps), P11K_OK);
	assert_int_equal(pl, 9);
	assert_memory_equal(pt, SAMPLE, 9);
	sec_free(pt);
	assert_string_equal(R.last_url, "https://kms.test/v1/" VKEY(2) ":rawDecrypt");
	b = json_loads(R.last_body, 0, &je);
	char *ctb = b64_encode(ct, cl), *ivb = b64_encode(iv, 12), v[16];
	assert_string_equal(json_string_value(json_object_get(b, "ciphertext")), ctb);
	snprintf(v, sizeof(v), "%u", crc32c(ct, cl));
	assert_string_equal(json_string_value(json_object_get(b, "ciphertextCrc32c")), v);
	assert_string_equal(json_string_value(json_object_get(b, "initializationVector")), ivb);
	snprintf(v, sizeof(v), "%u", crc32c(iv, 12));
	assert_string_equal(json_string_value(json_object_get(b, "initializationVectorCrc32c")), v);
	assert_string_equal(json_string_value(json_object_get(b, "additionalAuthenticatedData")),
			    "YWFkLTE=");
	assert_string_equal(json_string_value(
				    json_object_get(b, "additionalAuthenticatedDataCrc32c")),
			    "899476416");
	assert_int_equal(json_integer_value(json_object_get(b, "tagLength")), 16);
	assert_int_equal(json_object_size(b), 7);
	free(ctb);
	free(ivb);
	json_decref(b);

	/* Another AAD does not open it; the service's answer says why. */
	assert_int_equal(raw_op(st, VKEY(2), false, ct, cl, "aad-2", iv, &pt, &pl, &ps),
			 P11K_ERR_INVALID_CIPHERTEXT);
	assert_non_null(strstr(ps.message, "Decryption failed"));
	/* Nor another IV. */
	iv[5] ^= 1;
	assert_int_equal(raw_op(st, VKEY(2), false, ct, cl, "aad-1", iv, &pt, &pl, &ps),
			 P11K_ERR_INVALID_CIPHERTEXT);
	sec_free(ct);
	/* Without AAD: no AAD fields at all. */
	assert_int_equal(raw_enc(st, VKEY(2), NULL, iv, &ct, &cl, &ps), P11K_OK);
	assert_null(strstr(R.last_body, "additionalAuthenticatedData"));
	assert_int_equal(raw_op(st, VKEY(2), false, ct, cl, NULL, iv, &pt, &pl, &ps), P11K_OK);
	assert_null(strstr(R.last_body, "additionalAuthenticatedData"));
	sec_free(pt);
	sec_free(ct);
	gcp_provider_ops.destroy(st);
}

static void test_raw_reply_integrity(void **state)
{
	(void)state;
	void *st = sa_provider();
	provider_status ps;
	uint8_t iv[12], *ct = NULL, *out = NULL;
	size_t cl = 0, ol = 0;
	assert_int_equal(raw_enc(st, VKEY(2), "aad-1", iv, &ct, &cl, &ps), P11K_OK);
	static const struct {
		raw_fault fault;
		bool enc;
		const char *msg;
		bool crc; /* reported as a CRC32C failure */
	} cases[] = {
		{RAW_BAD_CT_CRC, true, "CRC32C mismatch: ciphertextCrc32c does not match", true},
		{RAW_BAD_IV_CRC, true, "CRC32C mismatch: initializationVectorCrc32c", true},
		{RAW_NO_CT_CRC, true, "ciphertextCrc32c missing", true},
		{RAW_UNVERIFIED_PT, true, "verifiedPlaintextCrc32c is not true", true},
		{RAW_UNVERIFIED_AAD, true, "verifiedAdditionalAuthenticatedDataCrc32c", true},
		{RAW_IV_16, true, "initializationVector is 16 bytes", false},
		{RAW_TAG_12, true, "tagLength is not 16", false},
		{RAW_SHORT_CT, true, "ciphertext is 24 bytes", false},
		{RAW_OTHER_NAME, true, "names version", false},
		{RAW_BAD_PT_CRC, false, "CRC32C mismatch: plaintextCrc32c", true},
		{RAW_UNVERIFIED_CT, false, "verifiedCiphertextCrc32c is not true", true},
		{RAW_UNVERIFIED_IV, false, "verifiedInitializationVectorCrc32c is not true", true},
		{RAW_UNVERIFIED_AAD, false, "verifiedAdditionalAuthenticatedDataCrc32c", true},
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		R.fault = cases[i].fault;
		uint8_t iv2[12];
		memcpy(iv2, iv, 12);
		p11k_err e = cases[i].enc
				     ? raw_enc(st, VKEY(2), "aad-1", iv2, &out, &ol, &ps)
				     : raw_op(st, VKEY(2), false, ct, cl, "aad-1", iv2, &out, &ol, &ps);
		if (e != P11K_ERR_BAD_REPLY || !strstr(ps.message, cases[i].msg))
			fail_msg("case %zu: %d, %s", i, e, ps.message);
		if (cases[i].crc)
			assert_string_equal(ps.error_name, "CRC32C");
	}
	/* tagLength as a string, or absent (the default, 16): accepted. */
	R.fault = RAW_TAG_16_STRING;
	assert_int_equal(raw_enc(st, VKEY(2), "aad-1", iv, &out, &ol, &ps), P11K_OK);
	sec_free(out);
	R.fault = RAW_NO_TAG_LEN;
	assert_int_equal(raw_enc(st, VKEY(2), "aad-1", iv, &out, &ol, &ps), P11K_OK);
	sec_free(out);
	sec_free(ct);
	gcp_provider_ops.destroy(st);
}

static p11k_err raw_error(void *st, const char *verb, long status, const char *name,
			  const char *msg, provider_status *ps)
{
	static char body[512];
	snprintf(body, sizeof(body),
		 "{\"error\":{\"code\":%ld,\"message\":\"%s\",\"status\":\"%s\"}}", status, msg,
		 name);
	R.err_verb = verb;
	R.err_status = status;
	R.err_body = body;
	uint8_t iv[12] = {0}, ct[32] = {0}, *out;
	size_t ol;
	p11k_err e = strcmp(verb, ":rawEncrypt") == 0
			     ? raw_enc(st, VKEY(2), NULL, iv, &out, &ol, ps)
			     : raw_op(st, VKEY(2), false, ct, sizeof(ct), NULL, iv, &out, &ol, ps);
	R.err_verb = NULL;
	return e;
}

static void test_raw_errors(void **state)
{
	(void)state;
	void *st = sa_provider();
	provider_status ps;
	uint8_t iv[12] = {0}, *out;
	size_t ol;
	/* Only AES-GCM (and RSA-OAEP decryption), and without asking anyone. */
	remote_req kw = {.alg = RALG_AES_KW, .encrypt = true, .in = (const uint8_t *)SAMPLE,
			 .inlen = 9};
	memset(&ps, 0, sizeof(ps));
	assert_int_equal(gcp_provider_ops.remote_crypt(st, KEY, &kw, &out, &ol, &ps),
			 P11K_ERR_KEY_TYPE);
	assert_non_null(strstr(ps.message, "AES-GCM (rawEncrypt) and RSA-OAEP decryption"));
	assert_non_null(strstr(ps.message, "AES key wrap"));
	/* Shorter than a tag: not a ciphertext. */
	assert_int_equal(raw_op(st, VKEY(2), false, (const uint8_t *)SAMPLE, 9, NULL, iv, &out,
				&ol, &ps),
			 P11K_ERR_INVALID_CIPHERTEXT);
	assert_int_equal(F.kms_calls, 0);

	/* Not a RAW_ENCRYPT_DECRYPT key. */
	assert_int_equal(raw_error(st, ":rawEncrypt", 400, "INVALID_ARGUMENT",
				   KEY " is not a RAW_ENCRYPT_DECRYPT key.", &ps),
			 P11K_ERR_KEY_TYPE);
	assert_non_null(strstr(ps.message, "RAW_ENCRYPT_DECRYPT"));
	assert_int_equal(raw_error(st, ":rawDecrypt", 400, "FAILED_PRECONDITION",
				   "The key purpose ENCRYPT_DECRYPT does not support this.", &ps),
			 P11K_ERR_KEY_TYPE);
	/* Decryption failed: the ciphertext (or AAD, IV) is wrong. */
	assert_int_equal(raw_error(st, ":rawDecrypt", 400, "INVALID_ARGUMENT",
				   "Decryption failed: the ciphertext is invalid.", &ps),
			 P11K_ERR_INVALID_CIPHERTEXT);
	/* ... but other INVALID_ARGUMENTs on rawDecrypt are not. */
	assert_int_equal(raw_error(st, ":rawDecrypt", 400, "INVALID_ARGUMENT",
				   "initialization_vector: must be set.", &ps),
			 P11K_ERR_INTERNAL);
	assert_int_equal(raw_error(st, ":rawEncrypt", 400, "INVALID_ARGUMENT",
				   "Decryption failed: the ciphertext is invalid.", &ps),
			 P11K_ERR_INTERNAL);
	/* Our checksum did not arrive intact: integrity, not a bad ciphertext. */
	assert_int_equal(raw_error(st, ":rawDecrypt", 400, "INVALID_ARGUMENT",
				   "The checksum in field ciphertext_crc32c did not match the data "
				   "in field ciphertext.", &ps),
			 P11K_ERR_BAD_REPLY);
	assert_int_equal(raw_error(st, ":rawEncrypt", 400, "FAILED_PRECONDITION",
				   VKEY(2) " is not enabled, current state is: DISABLED.", &ps),
			 P11K_ERR_KEY_DISABLED);
	assert_string_equal(ps.error_name, "FAILED_PRECONDITION");
	/* Destroyed (or scheduled): gone, as describe says. */
	assert_int_equal(raw_error(st, ":rawDecrypt", 400, "FAILED_PRECONDITION",
				   VKEY(2) " is not enabled, current state is: DESTROYED.", &ps),
			 P11K_ERR_KEY_NOT_FOUND);
	assert_int_equal(raw_error(st, ":rawDecrypt", 403, "PERMISSION_DENIED", "denied", &ps),
			 P11K_ERR_ACCESS_DENIED);
	assert_int_equal(raw_error(st, ":rawEncrypt", 404, "NOT_FOUND", "gone", &ps),
			 P11K_ERR_KEY_NOT_FOUND);
	/* Retried like every call, then unreachable. */
	R.enc_calls = 0;
	assert_int_equal(raw_error(st, ":rawEncrypt", 503, "UNAVAILABLE", "busy", &ps),
			 P11K_ERR_UNREACHABLE);
	assert_int_equal(R.enc_calls, 3);

	/* A CryptoKey whose versions are not AES-GCM (an ENCRYPT_DECRYPT key
	 * declared "aes"): refused from the listing, no raw call. */
	R.list1 = vlist(0, "GOOGLE_SYMMETRIC_ENCRYPTION", "1:ENABLED,2:ENABLED", NULL);
	R.enc_calls = 0;
	assert_int_equal(raw_enc(st, KEY, NULL, iv, &out, &ol, &ps), P11K_ERR_KEY_TYPE);
	assert_non_null(strstr(ps.message, "GOOGLE_SYMMETRIC_ENCRYPTION"));
	assert_int_equal(R.enc_calls, 0);
	/* AES_128_GCM where the configuration says 256 bits. */
	R.list1 = vlist(0, "AES_128_GCM", "1:ENABLED", NULL);
	F.now += 1000;
	assert_int_equal(raw_enc(st, KEY, NULL, iv, &out, &ol, &ps), P11K_ERR_KEY_TYPE);
	assert_non_null(strstr(ps.message, "AES_128_GCM"));
	raw_bits = 128;
	assert_int_equal(raw_enc(st, KEY, NULL, iv, &out, &ol, &ps), P11K_OK);
	sec_free(out);
	raw_bits = 256;
	gcp_provider_ops.destroy(st);
}

static void test_raw_version_selection(void **state)
{
	(void)state;
	void *st = sa_provider();
	provider_status ps;
	uint8_t iv[12], iv3[12], iv2[12], *ct = NULL, *ct3 = NULL, *ct2 = NULL, *pt = NULL;
	size_t cl, cl3, cl2, pl;
	/* Two pages, unordered: the newest enabled is 10 (numerically). */
	R.list1 = vlist(0, "AES_256_GCM", "1:ENABLED,3:ENABLED,2:DISABLED", "p2");
	R.list2 = vlist(1, "AES_256_GCM", "10:ENABLED,4:DESTROYED", NULL);
	assert_int_equal(raw_enc(st, KEY, NULL, iv, &ct, &cl, &ps), P11K_OK);
	assert_string_equal(R.tried, "10,");
	assert_int_equal(iv[0], 10);
	assert_int_equal(R.list_calls, 2);
	assert_non_null(strstr(R.last_list_url, "https://kms.test/v1/" KEY "/cryptoKeyVersions?"));
	assert_non_null(strstr(R.last_list_url, "filter=state%3DENABLED"));
	assert_non_null(strstr(R.last_list_url, "pageToken=p2"));
	/* Ciphertexts of older versions (pinned encryptions). */
	assert_int_equal(raw_enc(st, VKEY(3), NULL, iv3, &ct3, &cl3, &ps), P11K_OK);
	assert_int_equal(raw_enc(st, VKEY(2), NULL, iv2, &ct2, &cl2, &ps), P11K_OK);
	/* Decryption tries the enabled versions newest first; the list is
	 * cached. */
	R.tried[0] = 0;
	assert_int_equal(raw_op(st, KEY, false, ct3, cl3, NULL, iv3, &pt, &pl, &ps), P11K_OK);
	assert_memory_equal(pt, SAMPLE, 9);
	sec_free(pt);
	assert_string_equal(R.tried, "10,3,");
	assert_int_equal(R.list_calls, 2);
	R.tried[0] = 0;
	assert_int_equal(raw_op(st, KEY, false, ct, cl, NULL, iv, &pt, &pl, &ps), P11K_OK);
	sec_free(pt);
	assert_string_equal(R.tried, "10,");
	/* Version 2 is disabled: not tried, nothing opens it. */
	R.tried[0] = 0;
	assert_int_equal(raw_op(st, KEY, false, ct2, cl2, NULL, iv2, &pt, &pl, &ps),
			 P11K_ERR_INVALID_CIPHERTEXT);
	assert_string_equal(R.tried, "10,3,1,");
	/* Only a version not opening it moves on: any other error stops. */
	R.tried[0] = 0;
	R.err_verb = ":rawDecrypt";
	R.err_version = 10;
	R.err_status = 403;
	R.err_body = "{\"error\":{\"code\":403,\"message\":\"denied\",\"status\":"
		     "\"PERMISSION_DENIED\"}}";
	assert_int_equal(raw_op(st, KEY, false, ct3, cl3, NULL, iv3, &pt, &pl, &ps),
			 P11K_ERR_ACCESS_DENIED);
	assert_string_equal(R.tried, "10,");
	R.err_verb = NULL;
	R.err_version = 0;
	assert_int_equal(R.list_calls, 2);

	/* Past the cache's life (revalidate_seconds, 900 by default): listed
	 * again. At most 8 versions are tried. */
	R.list1 = vlist(0, "AES_256_GCM",
			"1:ENABLED,2:ENABLED,3:ENABLED,4:ENABLED,5:ENABLED,6:ENABLED,7:ENABLED,"
			"8:ENABLED,9:ENABLED,10:ENABLED,11:ENABLED,12:ENABLED",
			NULL);
	F.now += 899;
	R.tried[0] = 0;
	assert_int_equal(raw_op(st, KEY, false, ct3, cl3, NULL, iv3, &pt, &pl, &ps), P11K_OK);
	sec_free(pt);
	assert_int_equal(R.list_calls, 2);
	F.now += 2;
	R.tried[0] = 0;
	assert_int_equal(raw_op(st, KEY, false, ct2, cl2, NULL, iv2, &pt, &pl, &ps),
			 P11K_ERR_INVALID_CIPHERTEXT);
	assert_int_equal(R.list_calls, 3);
	assert_string_equal(R.tried, "12,11,10,9,8,7,6,5,");
	sec_free(ct);
	sec_free(ct2);
	sec_free(ct3);

	/* The cached newest version disabled since: the failed encryption
	 * lists again and uses the newest enabled one. */
	F.now += 1000;
	R.list1 = vlist(0, "AES_256_GCM", "4:ENABLED,5:ENABLED", NULL);
	assert_int_equal(raw_enc(st, KEY, NULL, iv, &ct, &cl, &ps), P11K_OK);
	sec_free(ct);
	assert_int_equal(iv[0], 5);
	int lists = R.list_calls;
	R.disabled = 5;
	R.list1 = vlist(0, "AES_256_GCM", "4:ENABLED,5:DISABLED", NULL);
	R.tried[0] = 0;
	assert_int_equal(raw_enc(st, KEY, NULL, iv, &ct, &cl, &ps), P11K_OK);
	sec_free(ct);
	assert_string_equal(R.tried, "5,4,");
	assert_int_equal(iv[0], 4);
	assert_int_equal(R.list_calls, lists + 1);
	/* A fresh list is not listed again: the error stands. */
	R.disabled = 4;
	R.tried[0] = 0;
	assert_int_equal(raw_enc(st, KEY, NULL, iv, &ct, &cl, &ps), P11K_ERR_KEY_DISABLED);
	assert_string_equal(R.tried, "4,4,");
	assert_int_equal(R.list_calls, lists + 2);
	R.disabled = 0;

	/* No enabled version: disabled ones, or none usable at all. */
	F.now += 1000;
	R.list1 = vlist(0, "AES_256_GCM", "1:DISABLED,2:DESTROYED", NULL);
	assert_int_equal(raw_enc(st, KEY, NULL, iv, &ct, &cl, &ps), P11K_ERR_KEY_DISABLED);
	assert_non_null(strstr(ps.message, "no enabled version"));
	R.list1 = vlist(0, "AES_256_GCM", "1:DESTROYED,2:DESTROY_SCHEDULED", NULL);
	assert_int_equal(raw_enc(st, KEY, NULL, iv, &ct, &cl, &ps), P11K_ERR_KEY_NOT_FOUND);
	/* The filtered listing is empty: listed without the filter to say why. */
	R.list1 = "{}";
	lists = R.list_calls;
	assert_int_equal(raw_enc(st, KEY, NULL, iv, &ct, &cl, &ps), P11K_ERR_KEY_NOT_FOUND);
	assert_int_equal(R.list_calls, lists + 2);
	assert_null(strstr(R.last_list_url, "filter="));
	/* A failed listing is no list: asked again next time. */
	R.list1 = vlist(0, "AES_256_GCM", "7:ENABLED", NULL);
	assert_int_equal(raw_enc(st, KEY, NULL, iv, &ct, &cl, &ps), P11K_OK);
	sec_free(ct);
	assert_int_equal(iv[0], 7);
	gcp_provider_ops.destroy(st);

	/* The cache lives as long as the provider's revalidate_seconds. */
	char extra[400];
	snprintf(extra, sizeof(extra), "\"credentials_file\": \"%s\", \"revalidate_seconds\": 5",
		 sa_file);
	st = provider(extra);
	lists = R.list_calls;
	assert_int_equal(raw_enc(st, KEY, NULL, iv, &ct, &cl, &ps), P11K_OK);
	sec_free(ct);
	F.now += 4;
	assert_int_equal(raw_enc(st, KEY, NULL, iv, &ct, &cl, &ps), P11K_OK);
	sec_free(ct);
	assert_int_equal(R.list_calls, lists + 1);
	F.now += 2;
	assert_int_equal(raw_enc(st, KEY, NULL, iv, &ct, &cl, &ps), P11K_OK);
	sec_free(ct);
	assert_int_equal(R.list_calls, lists + 2);
	gcp_provider_ops.destroy(st);
}

static void test_create_checks(void **state)
{
	(void)state;
	json_error_t je;
	const char *bad[] = {
		"{\"endpoint\": \"http://kms.test\", \"seal_with\": \"" KEY "\"}",
		"{\"endpoint\": \"https://kms.test/v1\", \"seal_with\": \"" KEY "\"}",
		"{\"seal_with\": \"my-key\"}",
		"{}",
		"{\"seal_with\": \"" KEY "\", \"credentials_file\": \"/nonexistent.json\"}",
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		json_t *cfg = json_loads(bad[i], 0, &je);
		void *st = NULL;
		char why[256] = "";
		assert_int_not_equal(gcp_provider_ops.create(cfg, "/dev/null", &st, why,
							     sizeof(why)),
				     P11K_OK);
		assert_true(why[0]);
		json_decref(cfg);
	}
	assert_true(gcp_provider_ops.max_blob_len(NULL, 100) >= 100 + 100);
	/* No seal_with: the first envelope key seals, not a raw AES one. */
	json_t *cfg = json_loads("{\"keys\": [{\"id\": \"" KEY "-raw\", \"type\": \"aes\"}, "
				 "{\"id\": \"" KEY "\"}]}", 0, &je);
	assert_non_null(cfg);
	void *st = NULL;
	char why[256] = "";
	assert_int_equal(gcp_provider_ops.create(cfg, "/dev/null", &st, why, sizeof(why)),
			 P11K_OK);
	assert_string_equal(gcp_provider_ops.default_seal_key(st), KEY);
	gcp_provider_ops.destroy(st);
	json_decref(cfg);
	/* Only raw keys: nothing to seal with. */
	cfg = json_loads("{\"keys\": [{\"id\": \"" KEY "\", \"type\": \"aes\"}]}", 0, &je);
	assert_int_not_equal(gcp_provider_ops.create(cfg, "/dev/null", &st, why, sizeof(why)),
			     P11K_OK);
	json_decref(cfg);
}

/* --- asymmetric keys: public_key, sign, RSA-OAEP decryption --------------------------- */

static p11k_err asym_reply(const http_request *req, http_response *resp)
{
	size_t k = A.calls < ASYM_SCRIPT ? A.calls : ASYM_SCRIPT - 1;
	A.calls++;
	size_t bl = req->bodylen < sizeof(A.body[k]) - 1 ? req->bodylen : sizeof(A.body[k]) - 1;
	memcpy(A.body[k], req->body ? (const char *)req->body : "", bl);
	A.body[k][bl] = 0;
	if (A.next >= A.n)
		fail_msg("asym fake: unexpected %s %s", req->method, req->url);
	const char *url = req->url + strlen("https://kms.test/v1/");
	if (strcmp(A.s[A.next].method, req->method) != 0 || strcmp(A.s[A.next].url, url) != 0)
		fail_msg("asym fake: expected %s %s, got %s %s", A.s[A.next].method,
			 A.s[A.next].url, req->method, url);
	snprintf(resp->request_id, sizeof(resp->request_id), "g-%zu", k);
	p11k_err e = reply(resp, A.s[A.next].status, A.s[A.next].body);
	A.next++;
	return e;
}

static char *jdump(json_t *j)
{
	char *d = json_dumps(j, JSON_COMPACT);
	json_decref(j);
	assert_non_null(d);
	return d;
}

static void ascript(const char *method, const char *url, long status, char *body)
{
	assert_true(A.n < ASYM_SCRIPT);
	A.s[A.n].method = method;
	A.s[A.n].url = url;
	A.s[A.n].status = status;
	A.s[A.n].body = body;
	A.n++;
}

static void ascript_free(void)
{
	for (size_t i = 0; i < A.n; i++)
		free(A.s[i].body);
	memset(&A, 0, sizeof(A));
}

/* A GetPublicKey reply for k, pemCrc32c off by crc_delta. */
static char *pubkey_reply(const char *name, const char *alg, EVP_PKEY *k, uint32_t crc_delta)
{
	char *pem = fx_pem(k), crc[16];
	snprintf(crc, sizeof(crc), "%u", crc32c((const uint8_t *)pem, strlen(pem)) + crc_delta);
	char *r = jdump(json_pack("{s:s, s:s, s:s, s:s, s:s}", "name", name, "algorithm", alg,
				  "pem", pem, "pemCrc32c", crc, "protectionLevel", "SOFTWARE"));
	free(pem);
	return r;
}

static char *list_reply(const char *spec)
{
	/* "3:EC_SIGN_P256_SHA256:ENABLED,..." */
	json_t *arr = json_array();
	char buf[512];
	snprintf(buf, sizeof(buf), "%s", spec);
	for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
		char *alg = strchr(t, ':'), *state;
		assert_non_null(alg);
		*alg++ = 0;
		state = strchr(alg, ':');
		assert_non_null(state);
		*state++ = 0;
		char name[256];
		snprintf(name, sizeof(name), KEY "/cryptoKeyVersions/%s", t);
		json_array_append_new(arr, json_pack("{s:s, s:s, s:s}", "name", name, "algorithm",
						     alg, "state", state));
	}
	return jdump(json_pack("{s:o}", "cryptoKeyVersions", arr));
}

#define LIST_URL KEY "/cryptoKeyVersions?pageSize=100&filter=state%3DENABLED"
#define LIST_ALL_URL KEY "/cryptoKeyVersions?pageSize=100"

static EVP_PKEY *g_rsa, *g_p256, *g_p384;

static void asym_keys(void)
{
	if (!g_rsa) {
		g_rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
		g_p256 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
		g_p384 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
	}
	assert_true(g_rsa && g_p256 && g_p384);
}

/* A CryptoKey: the newest enabled version (by id, whatever the order);
 * a version name: that version. The SPKI is the key's own DER. */
static void test_asym_public_key(void **state)
{
	(void)state;
	asym_keys();
	void *st = sa_provider();
	const struct {
		const char *id, *list, *version, *alg;
		EVP_PKEY **k;
		unsigned uses, algs;
	} cases[] = {
		{KEY, "1:EC_SIGN_P256_SHA256:ENABLED,12:EC_SIGN_P256_SHA256:ENABLED,"
		      "9:EC_SIGN_P256_SHA256:ENABLED,13:EC_SIGN_P256_SHA256:DISABLED",
		 VKEY(12), "EC_SIGN_P256_SHA256", &g_p256, ASYM_USE_SIGN, SALG_BIT(SALG_ECDSA_SHA256)},
		{VKEY(2), NULL, VKEY(2), "EC_SIGN_P384_SHA384", &g_p384, ASYM_USE_SIGN,
		 SALG_BIT(SALG_ECDSA_SHA384)},
		{VKEY(3), NULL, VKEY(3), "RSA_SIGN_PSS_2048_SHA256", &g_rsa, ASYM_USE_SIGN,
		 SALG_BIT(SALG_RSA_PSS_SHA256)},
		{VKEY(4), NULL, VKEY(4), "RSA_SIGN_PKCS1_2048_SHA256", &g_rsa, ASYM_USE_SIGN,
		 SALG_BIT(SALG_RSA_PKCS1_SHA256)},
		{KEY, "5:RSA_DECRYPT_OAEP_2048_SHA256:ENABLED", VKEY(5), "RSA_DECRYPT_OAEP_2048_SHA256",
		 &g_rsa, ASYM_USE_DECRYPT, 0},
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		char url[300];
		snprintf(url, sizeof(url), "%s/publicKey", cases[i].version);
		if (cases[i].list)
			ascript("GET", LIST_URL, 200, list_reply(cases[i].list));
		ascript("GET", url, 200, pubkey_reply(cases[i].version, cases[i].alg, *cases[i].k, 0));
		size_t dl;
		uint8_t *der = fx_spki(*cases[i].k, &dl);
		asym_public ap;
		provider_status ps = {0};
		p11k_err e = gcp_provider_ops.public_key(st, cases[i].id, &ap, &ps);
		if (e != P11K_OK)
			fail_msg("case %zu: %s (%s)", i, p11k_err_name(e), ps.message);
		assert_int_equal(A.next, A.n);
		assert_int_equal(ap.spkilen, dl);
		assert_memory_equal(ap.spki, der, dl);
		assert_int_equal(ap.uses, cases[i].uses);
		assert_int_equal(ap.sign_algs, cases[i].algs);
		assert_string_equal(ap.version, cases[i].version);
		assert_true(ps.request_id[0]);
		asym_public_free(&ap);
		free(der);
		ascript_free();
	}
	gcp_provider_ops.destroy(st);
}

static p11k_err gcp_pk(void *st, const char *id, provider_status *ps)
{
	asym_public ap;
	memset(ps, 0, sizeof(*ps));
	p11k_err e = gcp_provider_ops.public_key(st, id, &ap, ps);
	if (e == P11K_OK)
		asym_public_free(&ap);
	else
		assert_null(ap.spki);
	ascript_free();
	return e;
}

static void test_asym_public_key_refusals(void **state)
{
	(void)state;
	asym_keys();
	void *st = sa_provider();
	provider_status ps;
	const char *url = VKEY(3) "/publicKey";
	ascript("GET", url, 200, pubkey_reply(VKEY(3), "EC_SIGN_P256_SHA256", g_p256, 1));
	assert_int_equal(gcp_pk(st, VKEY(3), &ps), P11K_ERR_BAD_REPLY);
	assert_string_equal(ps.error_name, "CRC32C");
	ascript("GET", url, 200, pubkey_reply(VKEY(4), "EC_SIGN_P256_SHA256", g_p256, 0));
	assert_int_equal(gcp_pk(st, VKEY(3), &ps), P11K_ERR_BAD_REPLY);
	ascript("GET", url, 200, pubkey_reply(VKEY(3), "EC_SIGN_P384_SHA384", g_p256, 0));
	assert_int_equal(gcp_pk(st, VKEY(3), &ps), P11K_ERR_BAD_REPLY);
	ascript("GET", url, 200, pubkey_reply(VKEY(3), "RSA_SIGN_PKCS1_2048_SHA256", g_p256, 0));
	assert_int_equal(gcp_pk(st, VKEY(3), &ps), P11K_ERR_BAD_REPLY);
	static const char *const not_offered[] = {"RSA_SIGN_RAW_PKCS1_2048",
						  "EC_SIGN_SECP256K1_SHA256", "EC_SIGN_ED25519",
						  "RSA_DECRYPT_OAEP_4096_SHA512",
						  "GOOGLE_SYMMETRIC_ENCRYPTION"};
	for (size_t i = 0; i < ARRAY_SIZE(not_offered); i++) {
		ascript("GET", url, 200, pubkey_reply(VKEY(3), not_offered[i], g_p256, 0));
		assert_int_equal(gcp_pk(st, VKEY(3), &ps), P11K_ERR_KEY_TYPE);
	}
	/* pem that is not one (its CRC right) */
	ascript("GET", url, 200,
		jdump(json_pack("{s:s, s:s, s:s, s:s}", "name", VKEY(3), "algorithm",
				"EC_SIGN_P256_SHA256", "pem", "-----BEGIN PUBLIC KEY-----\nAAAA\n",
				"pemCrc32c", "1")));
	assert_int_equal(gcp_pk(st, VKEY(3), &ps), P11K_ERR_BAD_REPLY);
	ascript("GET", url, 200, jdump(json_pack("{s:s}", "name", VKEY(3))));
	assert_int_equal(gcp_pk(st, VKEY(3), &ps), P11K_ERR_BAD_REPLY);
	ascript("GET", url, 200, strdup("[1,2]"));
	assert_int_equal(gcp_pk(st, VKEY(3), &ps), P11K_ERR_BAD_REPLY);
	/* The service's errors. */
	const struct {
		long status;
		const char *name, *msg;
		p11k_err want;
	} errs[] = {
		{400, "FAILED_PRECONDITION", VKEY(3) " is not enabled, current state is: DISABLED.",
		 P11K_ERR_KEY_DISABLED},
		{400, "FAILED_PRECONDITION", VKEY(3) " is not enabled, current state is: DESTROYED.",
		 P11K_ERR_KEY_NOT_FOUND},
		{400, "FAILED_PRECONDITION", "The request's key purpose ENCRYPT_DECRYPT is not "
		      "ASYMMETRIC_SIGN or ASYMMETRIC_DECRYPT.", P11K_ERR_KEY_TYPE},
		{404, "NOT_FOUND", VKEY(3) " not found.", P11K_ERR_KEY_NOT_FOUND},
		{403, "PERMISSION_DENIED", "Permission 'cloudkms.cryptoKeyVersions.viewPublicKey' "
		      "denied", P11K_ERR_ACCESS_DENIED},
	};
	for (size_t i = 0; i < ARRAY_SIZE(errs); i++) {
		ascript("GET", url, errs[i].status,
			jdump(json_pack("{s:{s:i, s:s, s:s}}", "error", "code", (int)errs[i].status,
					"status", errs[i].name, "message", errs[i].msg)));
		p11k_err e = gcp_pk(st, VKEY(3), &ps);
		if (e != errs[i].want)
			fail_msg("error %zu: got %s, want %s", i, p11k_err_name(e),
				 p11k_err_name(errs[i].want));
	}
	/* A CryptoKey of another purpose, or with nothing enabled. */
	ascript("GET", LIST_URL, 200, list_reply("1:GOOGLE_SYMMETRIC_ENCRYPTION:ENABLED"));
	assert_int_equal(gcp_pk(st, KEY, &ps), P11K_ERR_KEY_TYPE);
	ascript("GET", LIST_URL, 200, strdup("{}"));
	ascript("GET", LIST_ALL_URL, 200, list_reply("1:EC_SIGN_P256_SHA256:DISABLED"));
	assert_int_equal(gcp_pk(st, KEY, &ps), P11K_ERR_KEY_DISABLED);
	/* The listing said one algorithm, the public key another. */
	ascript("GET", LIST_URL, 200, list_reply("7:EC_SIGN_P256_SHA256:ENABLED"));
	ascript("GET", VKEY(7) "/publicKey", 200,
		pubkey_reply(VKEY(7), "EC_SIGN_P384_SHA384", g_p384, 0));
	assert_int_equal(gcp_pk(st, KEY, &ps), P11K_ERR_BAD_REPLY);
	gcp_provider_ops.destroy(st);
}

static char *sign_reply(const char *name, const uint8_t *sig, size_t n, uint32_t crc_delta,
			bool verified)
{
	char *b = b64_encode(sig, n), crc[16];
	snprintf(crc, sizeof(crc), "%u", crc32c(sig, n) + crc_delta);
	char *r = jdump(json_pack("{s:s, s:s, s:s, s:b}", "name", name, "signature", b,
				  "signatureCrc32c", crc, "verifiedDigestCrc32c", verified));
	free(b);
	return r;
}

/* The request: the digest under the hash's name with its CRC32C; the
 * reply's name, verifiedDigestCrc32c and signatureCrc32c checked; ECDSA
 * DER -> r||s. */
static void test_asym_sign(void **state)
{
	(void)state;
	void *st = sa_provider();
	const struct {
		sign_alg a;
		const char *field;
		size_t dl;
		bool ec;
	} cases[] = {
		{SALG_RSA_PKCS1_SHA256, "sha256", 32, false},
		{SALG_RSA_PSS_SHA512, "sha512", 64, false},
		{SALG_ECDSA_SHA256, "sha256", 32, true},
		{SALG_ECDSA_SHA384, "sha384", 48, true},
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		uint8_t d[64], sv[256], rs[96], der[120];
		size_t sl = sizeof(sv), half = salg_ec_half(cases[i].a);
		memset(d, (int)(0x20 + i), sizeof(d));
		for (size_t k = 0; k < sizeof(sv); k++)
			sv[k] = (uint8_t)(k * 3 + i);
		if (cases[i].ec) {
			fx_awkward_rs(rs, half);
			sl = fx_ecdsa_der(rs, half, der);
		}
		ascript("POST", VKEY(3) ":asymmetricSign", 200,
			sign_reply(VKEY(3), cases[i].ec ? der : sv, sl, 0, true));
		uint8_t *sig = NULL;
		size_t siglen = 0;
		provider_status ps = {0};
		p11k_err e = gcp_provider_ops.sign(st, KEY, VKEY(3), cases[i].a, d, cases[i].dl, &sig,
						   &siglen, &ps);
		if (e != P11K_OK)
			fail_msg("case %zu: %s (%s)", i, p11k_err_name(e), ps.message);
		if (cases[i].ec) {
			assert_int_equal(siglen, 2 * half);
			assert_memory_equal(sig, rs, siglen);
		} else {
			assert_int_equal(siglen, sl);
			assert_memory_equal(sig, sv, sl);
		}
		free(sig);
		json_error_t je;
		json_t *j = json_loads(A.body[0], 0, &je);
		assert_non_null(j);
		assert_int_equal(json_object_size(j), 2);
		json_t *dg = json_object_get(j, "digest");
		assert_int_equal(json_object_size(dg), 1);
		char *db = b64_encode(d, cases[i].dl), crc[16];
		assert_string_equal(json_string_value(json_object_get(dg, cases[i].field)), db);
		snprintf(crc, sizeof(crc), "%u", crc32c(d, cases[i].dl));
		assert_string_equal(json_string_value(json_object_get(j, "digestCrc32c")), crc);
		free(db);
		json_decref(j);
		ascript_free();
	}
	/* No version: the newest enabled one; its algorithm must be the one
	 * asked for. */
	uint8_t d[32] = {5}, sv[256] = {6}, *sig = NULL;
	size_t siglen;
	provider_status ps = {0};
	ascript("GET", LIST_URL, 200,
		list_reply("2:RSA_SIGN_PSS_2048_SHA256:ENABLED,4:RSA_SIGN_PSS_2048_SHA256:ENABLED"));
	ascript("POST", VKEY(4) ":asymmetricSign", 200, sign_reply(VKEY(4), sv, 256, 0, true));
	assert_int_equal(gcp_provider_ops.sign(st, KEY, "", SALG_RSA_PSS_SHA256, d, 32, &sig,
					       &siglen, &ps),
			 P11K_OK);
	assert_int_equal(A.next, 2);
	free(sig);
	ascript_free();
	ascript("GET", LIST_URL, 200, list_reply("4:RSA_SIGN_PSS_2048_SHA256:ENABLED"));
	assert_int_equal(gcp_provider_ops.sign(st, KEY, "", SALG_RSA_PKCS1_SHA256, d, 32, &sig,
					       &siglen, &ps),
			 P11K_ERR_KEY_TYPE);
	assert_int_equal(A.calls, 1);
	ascript_free();
	/* A version name as the key id is the version. */
	ascript("POST", VKEY(8) ":asymmetricSign", 200, sign_reply(VKEY(8), sv, 256, 0, true));
	assert_int_equal(gcp_provider_ops.sign(st, VKEY(8), "", SALG_RSA_PSS_SHA256, d, 32, &sig,
					       &siglen, &ps),
			 P11K_OK);
	free(sig);
	ascript_free();
	gcp_provider_ops.destroy(st);
}

static void test_asym_sign_errors(void **state)
{
	(void)state;
	void *st = sa_provider();
	uint8_t d[64] = {1}, sv[256] = {2}, *sig = NULL;
	size_t siglen = 0;
	const char *url = VKEY(3) ":asymmetricSign";
	const struct {
		long status;
		char *body;
		p11k_err want;
	} cases[] = {
		{200, sign_reply(VKEY(3), sv, 256, 1, true), P11K_ERR_BAD_REPLY},
		{200, sign_reply(VKEY(3), sv, 256, 0, false), P11K_ERR_BAD_REPLY},
		{200, sign_reply(VKEY(4), sv, 256, 0, true), P11K_ERR_BAD_REPLY},
		{200, sign_reply(VKEY(3), sv, 100, 0, true), P11K_ERR_BAD_REPLY},
		{200, strdup("{\"name\":\"" VKEY(3) "\",\"verifiedDigestCrc32c\":true}"),
		 P11K_ERR_BAD_REPLY},
		{400, strdup("{\"error\":{\"code\":400,\"status\":\"FAILED_PRECONDITION\",\"message\":"
			     "\"" VKEY(3) " is not enabled, current state is: DISABLED.\"}}"),
		 P11K_ERR_KEY_DISABLED},
		{400, strdup("{\"error\":{\"code\":400,\"status\":\"FAILED_PRECONDITION\",\"message\":"
			     "\"" VKEY(3) " is not enabled, current state is: DESTROYED.\"}}"),
		 P11K_ERR_KEY_NOT_FOUND},
		{400, strdup("{\"error\":{\"code\":400,\"status\":\"INVALID_ARGUMENT\",\"message\":"
			     "\"Digest type SHA384 does not match the algorithm RSA_SIGN_PSS_2048_SHA256\"}}"),
		 P11K_ERR_KEY_TYPE},
		{400, strdup("{\"error\":{\"code\":400,\"status\":\"FAILED_PRECONDITION\",\"message\":"
			     "\"The request's key purpose ENCRYPT_DECRYPT is not ASYMMETRIC_SIGN\"}}"),
		 P11K_ERR_KEY_TYPE},
		{404, strdup("{\"error\":{\"code\":404,\"status\":\"NOT_FOUND\",\"message\":\"x\"}}"),
		 P11K_ERR_KEY_NOT_FOUND},
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		ascript("POST", url, cases[i].status, cases[i].body);
		provider_status ps = {0};
		p11k_err e = gcp_provider_ops.sign(st, KEY, VKEY(3), SALG_RSA_PSS_SHA256, d, 32, &sig,
						   &siglen, &ps);
		if (e != cases[i].want)
			fail_msg("case %zu: got %s, want %s (%s)", i, p11k_err_name(e),
				 p11k_err_name(cases[i].want), ps.message);
		assert_null(sig);
		ascript_free();
	}
	/* ECDSA: DER that is not strict, an r wider than the curve. */
	uint8_t rs[96], der[120];
	fx_awkward_rs(rs, 48);
	size_t n = fx_ecdsa_der(rs, 48, der);
	ascript("POST", url, 200, sign_reply(VKEY(3), der, n, 0, true));
	provider_status ps = {0};
	assert_int_equal(gcp_provider_ops.sign(st, KEY, VKEY(3), SALG_ECDSA_SHA256, d, 32, &sig,
					       &siglen, &ps),
			 P11K_ERR_BAD_REPLY);
	ascript_free();
	der[0] = 0x31;
	ascript("POST", url, 200, sign_reply(VKEY(3), der, n, 0, true));
	assert_int_equal(gcp_provider_ops.sign(st, KEY, VKEY(3), SALG_ECDSA_SHA384, d, 48, &sig,
					       &siglen, &ps),
			 P11K_ERR_BAD_REPLY);
	ascript_free();
	/* Caller bugs: no request. */
	assert_int_equal(gcp_provider_ops.sign(st, KEY, VKEY(3), SALG_ECDSA_SHA384, d, 32, &sig,
					       &siglen, &ps),
			 P11K_ERR_INTERNAL);
	assert_int_equal(gcp_provider_ops.sign(st, KEY,
					       "projects/p/locations/global/keyRings/r/cryptoKeys/"
					       "other/cryptoKeyVersions/3",
					       SALG_RSA_PSS_SHA256, d, 32, &sig, &siglen, &ps),
			 P11K_ERR_INTERNAL);
	assert_int_equal(A.calls, 0);
	gcp_provider_ops.destroy(st);
}

static char *decrypt_reply(const char *pt, uint32_t crc_delta, bool verified)
{
	char *b = b64_encode((const uint8_t *)pt, strlen(pt)), crc[16];
	snprintf(crc, sizeof(crc), "%u", crc32c((const uint8_t *)pt, strlen(pt)) + crc_delta);
	char *r = jdump(json_pack("{s:s, s:s, s:b}", "plaintext", b, "plaintextCrc32c", crc,
				  "verifiedCiphertextCrc32c", verified));
	free(b);
	return r;
}

static p11k_err oaep(void *st, const char *key, remote_alg a, bool enc, uint8_t **out,
		     size_t *ol, provider_status *ps)
{
	static const uint8_t ct[256] = {7, 7, 7};
	remote_req r = {.alg = a, .encrypt = enc, .in = ct, .inlen = sizeof(ct)};
	memset(ps, 0, sizeof(*ps));
	*out = NULL;
	return gcp_provider_ops.remote_crypt(st, key, &r, out, ol, ps);
}

/* RSA-OAEP decryption: the newest enabled version of the hash asked, then
 * older ones while a version does not open it; both CRC32Cs checked; the
 * plaintext in secure memory. */
static void test_asym_decrypt(void **state)
{
	(void)state;
	void *st = sa_provider();
	uint8_t *out;
	size_t ol;
	provider_status ps;
	ascript("GET", LIST_URL, 200,
		list_reply("2:RSA_DECRYPT_OAEP_2048_SHA256:ENABLED,5:RSA_DECRYPT_OAEP_2048_SHA1:"
			   "ENABLED,3:RSA_DECRYPT_OAEP_2048_SHA256:ENABLED"));
	ascript("POST", VKEY(3) ":asymmetricDecrypt", 400,
		strdup("{\"error\":{\"code\":400,\"status\":\"INVALID_ARGUMENT\",\"message\":"
		       "\"Decryption failed: the ciphertext is invalid.\"}}"));
	ascript("POST", VKEY(2) ":asymmetricDecrypt", 200, decrypt_reply("key bytes", 0, true));
	assert_int_equal(oaep(st, KEY, RALG_RSA_OAEP_SHA256, false, &out, &ol, &ps), P11K_OK);
	assert_int_equal(ol, 9);
	assert_memory_equal(out, "key bytes", 9);
	assert_true(sec_size(out) >= ol);
	sec_free(out);
	assert_int_equal(A.next, 3);
	json_error_t je;
	json_t *j = json_loads(A.body[2], 0, &je);
	assert_non_null(j);
	static const uint8_t ct[256] = {7, 7, 7};
	char *cb = b64_encode(ct, sizeof(ct)), crc[16];
	snprintf(crc, sizeof(crc), "%u", crc32c(ct, sizeof(ct)));
	assert_string_equal(json_string_value(json_object_get(j, "ciphertext")), cb);
	assert_string_equal(json_string_value(json_object_get(j, "ciphertextCrc32c")), crc);
	assert_int_equal(json_object_size(j), 2);
	free(cb);
	json_decref(j);
	ascript_free();
	/* SHA-1 goes to the SHA-1 version. */
	ascript("GET", LIST_URL, 200,
		list_reply("2:RSA_DECRYPT_OAEP_2048_SHA256:ENABLED,5:RSA_DECRYPT_OAEP_2048_SHA1:"
			   "ENABLED"));
	ascript("POST", VKEY(5) ":asymmetricDecrypt", 200, decrypt_reply("k", 0, true));
	assert_int_equal(oaep(st, KEY, RALG_RSA_OAEP_SHA1, false, &out, &ol, &ps), P11K_OK);
	sec_free(out);
	ascript_free();
	/* CRC32C faults: refused, no further version tried. */
	ascript("POST", VKEY(5) ":asymmetricDecrypt", 200, decrypt_reply("k", 1, true));
	assert_int_equal(oaep(st, VKEY(5), RALG_RSA_OAEP_SHA1, false, &out, &ol, &ps),
			 P11K_ERR_BAD_REPLY);
	assert_null(out);
	ascript_free();
	ascript("POST", VKEY(5) ":asymmetricDecrypt", 200, decrypt_reply("k", 0, false));
	assert_int_equal(oaep(st, VKEY(5), RALG_RSA_OAEP_SHA1, false, &out, &ol, &ps),
			 P11K_ERR_BAD_REPLY);
	ascript_free();
	/* The public key the module encrypts with: that of the newest enabled
	 * version, for decryption; a signing key offers none for it. */
	ascript("GET", LIST_URL, 200, list_reply("2:RSA_DECRYPT_OAEP_2048_SHA256:ENABLED"));
	ascript("GET", VKEY(2) "/publicKey", 200,
		pubkey_reply(VKEY(2), "RSA_DECRYPT_OAEP_2048_SHA256", g_rsa, 0));
	asym_keys();
	size_t dl;
	uint8_t *der = fx_spki(g_rsa, &dl);
	asym_public ap;
	assert_int_equal(gcp_provider_ops.public_key(st, KEY, &ap, &ps), P11K_OK);
	assert_int_equal(ap.spkilen, dl);
	assert_memory_equal(ap.spki, der, dl);
	assert_int_equal(ap.uses, ASYM_USE_DECRYPT);
	assert_int_equal(ap.sign_algs, 0);
	assert_string_equal(ap.version, VKEY(2));
	asym_public_free(&ap);
	ascript_free();
	ascript("GET", VKEY(3) "/publicKey", 200,
		pubkey_reply(VKEY(3), "RSA_SIGN_PSS_2048_SHA256", g_rsa, 0));
	assert_int_equal(gcp_provider_ops.public_key(st, VKEY(3), &ap, &ps), P11K_OK);
	assert_memory_equal(ap.spki, der, dl);
	assert_int_equal(ap.uses, ASYM_USE_SIGN);
	assert_string_equal(ap.version, VKEY(3));
	asym_public_free(&ap);
	free(der);
	ascript_free();
	/* No version of that hash; signing keys; encryption is local. */
	ascript("GET", LIST_URL, 200, list_reply("2:RSA_DECRYPT_OAEP_2048_SHA256:ENABLED"));
	assert_int_equal(oaep(st, KEY, RALG_RSA_OAEP_SHA1, false, &out, &ol, &ps),
			 P11K_ERR_KEY_TYPE);
	ascript_free();
	ascript("POST", VKEY(5) ":asymmetricDecrypt", 400,
		strdup("{\"error\":{\"code\":400,\"status\":\"FAILED_PRECONDITION\",\"message\":"
		       "\"The request's key purpose ASYMMETRIC_SIGN is not ASYMMETRIC_DECRYPT\"}}"));
	assert_int_equal(oaep(st, VKEY(5), RALG_RSA_OAEP_SHA1, false, &out, &ol, &ps),
			 P11K_ERR_KEY_TYPE);
	ascript_free();
	assert_int_equal(oaep(st, KEY, RALG_RSA_OAEP_SHA256, true, &out, &ol, &ps),
			 P11K_ERR_KEY_TYPE);
	assert_int_equal(A.calls, 0);
	gcp_provider_ops.destroy(st);
}

int main(void)
{
	if (!crypto_init())
		return 1;
	log_configure(LOG_ERROR, "stderr");
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_crc32c_vectors),
		cmocka_unit_test(test_jwt_assertion),
		cmocka_unit_test(test_status_table),
		cmocka_unit_test_setup_teardown(test_encrypt_decrypt_and_token_cache, fx_setup,
						fx_teardown),
		cmocka_unit_test_setup_teardown(test_metadata_source, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_self_signed_jwt, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_authorized_user_and_gcloud_file, fx_setup,
						fx_teardown),
		cmocka_unit_test_setup_teardown(test_errors_and_retries, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_corrupt_crc_refused, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_describe, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_create_checks, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_raw_request_fields, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_raw_reply_integrity, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_raw_errors, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_raw_version_selection, fx_setup,
						fx_teardown),
		cmocka_unit_test_setup_teardown(test_asym_public_key, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_asym_public_key_refusals, fx_setup,
						fx_teardown),
		cmocka_unit_test_setup_teardown(test_asym_sign, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_asym_sign_errors, fx_setup, fx_teardown),
		cmocka_unit_test_setup_teardown(test_asym_decrypt, fx_setup, fx_teardown),
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	EVP_PKEY_free(test_key);
	EVP_PKEY_free(g_rsa);
	EVP_PKEY_free(g_p256);
	EVP_PKEY_free(g_p384);
	free(test_pem);
	crypto_fini();
	return rc;
}
