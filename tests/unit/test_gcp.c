/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The Google Cloud KMS provider without a network: CRC32C against its
 * standard vectors; the RS256 JWT-bearer assertion (structure, claims, and
 * the signature verified with the public key); the token cache (one fetch,
 * refresh 5 minutes before expiry, a 401 drops the token); the metadata
 * server and authorized-user sources; the google.rpc.Status error table and
 * retries; and the CRC32C contract: a corrupted or unverified checksum in a
 * reply is refused, never returned as a result.
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

#include "module/crypto.h"
#include "module/log.h"
#include "module/secmem.h"
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

static p11k_err kms_reply(const http_request *req, http_response *resp)
{
	F.kms_calls++;
	snprintf(F.last_auth, sizeof(F.last_auth), "%s", hdr(req, "Authorization"));
	if (F.mode == KMS_ERROR && F.err_count != 0) {
		if (F.err_count > 0)
			F.err_count--;
		return reply(resp, F.err_status, F.err_body);
	}
	if (strcmp(req->method, "GET") == 0) {
		char b[1024];
		if (F.no_primary)
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
	gcp_test_hooks(st, fake_transport, NULL, no_sleep, fake_now, NULL);
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
	expect_error(st, 400, "FAILED_PRECONDITION", -1, P11K_ERR_KEY_DISABLED, 1);
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
	};
	int rc = cmocka_run_group_tests(tests, NULL, NULL);
	EVP_PKEY_free(test_key);
	free(test_pem);
	crypto_fini();
	return rc;
}
