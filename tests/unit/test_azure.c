/* SPDX-License-Identifier: Apache-2.0 */
/*
 * providers/azure: the Entra ID token flows (client secret from a file and
 * from AZURE_CLIENT_SECRET, workload identity, IMDS, App Service), the
 * token cache, the bearer challenge (followed once; refused for a foreign
 * resource), the error table (code, inner code, status, x-ms-request-id),
 * 429 retried, the blob format and its AAD binding; the standard
 * mechanisms (remote_crypt: algorithm names, bodies, GCM replies, errors,
 * the version fallback); public_key (JWK to SPKI, key_ops to uses, pinned
 * versions) and sign. All through a fake transport: no network, no
 * sleeping.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/sha.h>
#include <openssl/x509.h>

#include "asym_fixture.h"
#include "common/crypto.h"
#include "common/secmem.h"
#include "providers/azure/azure.h"
#include "providers/azure/entra.h"
#include "providers/common/codec.h"
#include "providers/provider.h"


#define VAULT "https://myvault.vault.azure.net"
#define TENANT "72f988bf-86f1-41af-91ab-2d7cd011db47"
#define CLIENT "11111111-2222-3333-4444-555555555555"
#define SECRET "s3cr3t-Value~with&odd=chars"
#define KID1 VAULT "/keys/k1/0698c2156c1a4e1da5b6bab6f6422fd6"
#define KID2 VAULT "/keys/k1/78deebed173b48e48f55abf87ed4cf71"
#define TOKEN_URL "https://login.microsoftonline.com/" TENANT "/oauth2/v2.0/token"
#define TOKEN_OK "{\"token_type\":\"Bearer\",\"expires_in\":3599,\"access_token\":\"tok-1\"}"
#define RSA_BUNDLE                                                                 \
	"{\"key\":{\"kid\":\"" KID1 "\",\"kty\":\"RSA\",\"n\":\"AQAB\",\"e\":\"AQAB\"}," \
	"\"attributes\":{\"enabled\":true,\"created\":1493942451,\"updated\":1493942452}}"

/* --- fake transport ---------------------------------------------------------- */

typedef struct fake_resp {
	const char *method;
	const char *url_prefix;
	long status; /* 0: transport failure */
	const char *body;
	const char *www; /* WWW-Authenticate */
	long retry_after_ms;
} fake_resp;

#define MAX_CALLS 32
#define MAX_SCRIPT 32

typedef struct fake_net {
	fake_resp script[MAX_SCRIPT];
	size_t n, next, calls;
	char url[MAX_CALLS][512];
	char hdrs[MAX_CALLS][2048];
	char body[MAX_CALLS][2048];
} fake_net;

static fake_net net;

static void add(const char *method, const char *url, long status, const char *body)
{
	assert_true(net.n < MAX_SCRIPT);
	net.script[net.n++] = (fake_resp){method, url, status, body, NULL, -1};
}

static p11k_err fake_transport(void *arg, const http_request *req, http_response *resp,
			       provider_status *st)
{
	fake_net *f = arg;
	size_t k = f->calls < MAX_CALLS ? f->calls : MAX_CALLS - 1;
	f->calls++;
	snprintf(f->url[k], sizeof(f->url[k]), "%s", req->url);
	f->hdrs[k][0] = 0;
	for (size_t i = 0; i < req->nheaders; i++) {
		size_t l = strlen(f->hdrs[k]);
		snprintf(f->hdrs[k] + l, sizeof(f->hdrs[k]) - l, "%s: %s\n",
			 req->headers[i].name, req->headers[i].value);
	}
	size_t bl = req->bodylen < sizeof(f->body[k]) - 1 ? req->bodylen : sizeof(f->body[k]) - 1;
	memcpy(f->body[k], req->body ? (const char *)req->body : "", bl);
	f->body[k][bl] = 0;
	if (f->next >= f->n) {
		snprintf(st->message, sizeof(st->message), "fake: nothing scripted");
		return P11K_ERR_UNREACHABLE;
	}
	const fake_resp *r = &f->script[f->next++];
	if (strcmp(r->method, req->method) != 0 ||
	    strncmp(r->url_prefix, req->url, strlen(r->url_prefix)) != 0) {
		print_error("fake: expected %s %s..., got %s %s\n", r->method, r->url_prefix,
			    req->method, req->url);
		fail();
	}
	if (!r->status) {
		snprintf(st->message, sizeof(st->message), "fake: connection reset");
		return P11K_ERR_UNREACHABLE;
	}
	resp->status = r->status;
	resp->retry_after_ms = r->retry_after_ms;
	snprintf(resp->request_id, sizeof(resp->request_id), "req-%zu", k);
	if (r->www)
		snprintf(resp->www_authenticate, sizeof(resp->www_authenticate), "%s", r->www);
	if (r->body && !dbuf_add(&resp->body, r->body, strlen(r->body)))
		return P11K_ERR_BAD_REPLY;
	return P11K_OK;
}

static void no_sleep(void *arg, long ms)
{
	(void)arg;
	(void)ms;
}

/* --- fixtures ------------------------------------------------------------------ */

static char dir[64];
static char secret_path[128];

static const char *const env_vars[] = {
	"AZURE_TENANT_ID", "AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET",
	"AZURE_CLIENT_CERTIFICATE_PATH", "AZURE_FEDERATED_TOKEN_FILE", "AZURE_AUTHORITY_HOST",
	"AZURE_POD_IDENTITY_AUTHORITY_HOST", "IDENTITY_ENDPOINT", "IDENTITY_HEADER",
};

static void write_text(const char *path, const char *text)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fputs(text, f);
	fclose(f);
}

static int asym_setup(void **state);
static int asym_teardown(void **state);

static int group_setup(void **state)
{
	assert_true(crypto_init());
	if (asym_setup(state) != 0)
		return -1;
	snprintf(dir, sizeof(dir), "/tmp/p11kms-azure-XXXXXX");
	assert_non_null(mkdtemp(dir));
	snprintf(secret_path, sizeof(secret_path), "%s/secret", dir);
	write_text(secret_path, SECRET "\n");
	return 0;
}

static int group_teardown(void **state)
{
	asym_teardown(state);
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	return system(cmd) == 0 ? 0 : -1;
}

static int reset(void **state)
{
	(void)state;
	memset(&net, 0, sizeof(net));
	for (size_t i = 0; i < ARRAY_SIZE(env_vars); i++)
		unsetenv(env_vars[i]);
	return 0;
}

/* Create the provider from a JSON config (fields beyond vault_url/keys). */
static void *make(const char *extra)
{
	char cfg[1024];
	snprintf(cfg, sizeof(cfg), "{\"vault_url\": \"" VAULT "/\", \"keys\": [{\"id\": \"k1\"}]%s%s}",
		 extra && *extra ? ", " : "", extra ? extra : "");
	json_error_t je;
	json_t *j = json_loads(cfg, 0, &je);
	assert_non_null(j);
	void *s = NULL;
	char why[256] = "";
	p11k_err e = azure_provider_ops.create(j, "/x/p11kms.json", &s, why, sizeof(why));
	json_decref(j);
	if (e != P11K_OK)
		print_error("create: %s\n", why);
	assert_int_equal(e, P11K_OK);
	azure_provider_ops.test_set_transport(s, fake_transport, &net, no_sleep);
	return s;
}

static void *make_secret(void)
{
	char extra[512];
	snprintf(extra, sizeof(extra),
		 "\"tenant_id\": \"" TENANT "\", \"client_id\": \"" CLIENT "\", "
		 "\"client_secret_file\": \"%s\"",
		 secret_path);
	return make(extra);
}

/* {"kid": kid, "value": b64url(SHA-256(aad) || pt)}: what unwrapkey returns. */
static char *unwrap_reply(const char *kid, const char *aad, const char *pt)
{
	uint8_t buf[256];
	SHA256((const uint8_t *)aad, strlen(aad), buf);
	memcpy(buf + 32, pt, strlen(pt));
	char *v = b64url_encode(buf, 32 + strlen(pt));
	char *out = malloc(1024);
	snprintf(out, 1024, "{\"kid\":\"%s\",\"value\":\"%s\"}", kid, v);
	free(v);
	return out;
}

/* --- token replies ---------------------------------------------------------------- */

static void test_parse_reply(void **state)
{
	(void)state;
	char *tok = NULL;
	uint64_t exp = 0;
	provider_status st = {0};
	const char *oauth = TOKEN_OK;
	assert_int_equal(entra_parse_reply(200, (const uint8_t *)oauth, strlen(oauth), 1000, &tok,
					   &exp, &st),
			 P11K_OK);
	assert_string_equal(tok, "tok-1");
	assert_int_equal(exp, 1000 + 3599);
	sec_free(tok);
	/* IMDS: numbers as strings, expires_on wins. */
	const char *imds = "{\"access_token\":\"t2\",\"expires_in\":\"3599\","
			   "\"expires_on\":\"1506484173\",\"token_type\":\"Bearer\"}";
	assert_int_equal(entra_parse_reply(200, (const uint8_t *)imds, strlen(imds), 1000, &tok,
					   &exp, &st),
			 P11K_OK);
	assert_int_equal(exp, 1506484173);
	sec_free(tok);
	const char *err = "{\"error\":\"invalid_client\",\"error_description\":\"AADSTS7000215: "
			  "Invalid client secret provided.\"}";
	assert_int_equal(entra_parse_reply(401, (const uint8_t *)err, strlen(err), 1000, &tok,
					   &exp, &st),
			 P11K_ERR_ACCESS_DENIED);
	assert_string_equal(st.error_name, "invalid_client");
	assert_non_null(strstr(st.message, "AADSTS7000215"));
	assert_null(tok);
	assert_int_equal(entra_parse_reply(503, (const uint8_t *)"", 0, 1000, &tok, &exp, &st),
			 P11K_ERR_UNREACHABLE);
	const char *none = "{\"token_type\":\"Bearer\",\"expires_in\":3599}";
	assert_int_equal(entra_parse_reply(200, (const uint8_t *)none, strlen(none), 1000, &tok,
					   &exp, &st),
			 P11K_ERR_BAD_REPLY);
	const char *noexp = "{\"access_token\":\"x\"}";
	assert_int_equal(entra_parse_reply(200, (const uint8_t *)noexp, strlen(noexp), 1000,
					   &tok, &exp, &st),
			 P11K_ERR_BAD_REPLY);
}

/* --- the client secret flow, end to end over the fake ----------------------------- */

static void test_secret_encrypt_decrypt(void **state)
{
	(void)state;
	void *s = make_secret();
	add("POST", TOKEN_URL, 200, TOKEN_OK);
	add("GET", VAULT "/keys/k1?api-version=7.4", 200, RSA_BUNDLE);
	add("POST", VAULT "/keys/k1/wrapkey?api-version=7.4", 200,
	    "{\"kid\":\"" KID1 "\",\"value\":\"AAECAwQ\"}");
	uint8_t *blob = NULL;
	size_t bl = 0;
	char kv[128];
	provider_status st = {0};
	assert_int_equal(azure_provider_ops.encrypt(s, "k1", (const uint8_t *)"0123456789", 10,
						    (const uint8_t *)"ctx", 3, &blob, &bl, kv,
						    sizeof(kv), &st),
			 P11K_OK);
	assert_string_equal(kv, "0698c2156c1a4e1da5b6bab6f6422fd6");
	/* The token request: client credentials, the vault scope, the secret
	 * form-encoded. */
	assert_non_null(strstr(net.body[0], "grant_type=client_credentials"));
	assert_non_null(strstr(net.body[0], "scope=https%3A%2F%2Fvault.azure.net%2F.default"));
	assert_non_null(strstr(net.body[0], "client_id=" CLIENT));
	assert_non_null(strstr(net.body[0], "client_secret=s3cr3t-Value~with%26odd%3Dchars"));
	assert_non_null(strstr(net.hdrs[0], "application/x-www-form-urlencoded"));
	assert_non_null(strstr(net.hdrs[1], "Authorization: Bearer tok-1"));
	/* wrapkey: RSA-OAEP-256 over SHA-256(aad) || pt, base64url. */
	json_error_t je;
	json_t *w = json_loads(net.body[2], 0, &je);
	assert_non_null(w);
	assert_string_equal(json_string_value(json_object_get(w, "alg")), "RSA-OAEP-256");
	uint8_t *in = NULL;
	size_t inl = 0;
	const char *v = json_string_value(json_object_get(w, "value"));
	assert_null(strchr(v, '='));
	assert_true(b64url_decode(v, strlen(v), false, &in, &inl));
	assert_int_equal(inl, 42);
	uint8_t h[32];
	SHA256((const uint8_t *)"ctx", 3, h);
	assert_memory_equal(in, h, 32);
	assert_memory_equal(in + 32, "0123456789", 10);
	free(in);
	json_decref(w);
	/* The blob names the versioned kid. */
	assert_memory_equal(blob, "P1KA\x01", 5);
	assert_non_null(memmem(blob, bl, KID1, strlen(KID1)));
	assert_true(bl <= azure_provider_ops.max_blob_len(s, 10));

	/* Decrypt: the version from the blob, the token from the cache. */
	char *rep = unwrap_reply(KID1, "ctx", "0123456789");
	add("POST", KID1 "/unwrapkey?api-version=7.4", 200, rep);
	uint8_t *pt = NULL;
	size_t ptl = 0;
	assert_int_equal(azure_provider_ops.decrypt(s, "k1", blob, bl, (const uint8_t *)"ctx", 3,
						    &pt, &ptl, &st),
			 P11K_OK);
	assert_int_equal(ptl, 10);
	assert_memory_equal(pt, "0123456789", 10);
	sec_free(pt);
	assert_int_equal(net.calls, 4); /* one token for all */
	/* Other AAD: the prefix does not match. */
	add("POST", KID1 "/unwrapkey?api-version=7.4", 200, rep);
	assert_int_equal(azure_provider_ops.decrypt(s, "k1", blob, bl, (const uint8_t *)"other", 5,
						    &pt, &ptl, &st),
			 P11K_ERR_INVALID_CIPHERTEXT);
	/* A blob of another key name is refused without a call. */
	size_t before = net.calls;
	assert_int_equal(azure_provider_ops.decrypt(s, "k2", blob, bl, (const uint8_t *)"ctx", 3,
						    &pt, &ptl, &st),
			 P11K_ERR_INVALID_CIPHERTEXT);
	/* Garbage and truncation too. */
	assert_int_equal(azure_provider_ops.decrypt(s, "k1", blob, 20, (const uint8_t *)"ctx", 3,
						    &pt, &ptl, &st),
			 P11K_ERR_INVALID_CIPHERTEXT);
	assert_int_equal(azure_provider_ops.decrypt(s, "k1", (const uint8_t *)"xxxxxxxxxxxx", 12,
						    (const uint8_t *)"ctx", 3, &pt, &ptl, &st),
			 P11K_ERR_INVALID_CIPHERTEXT);
	assert_int_equal(net.calls, before);
	free(rep);
	free(blob);
	azure_provider_ops.destroy(s);
}

static void test_describe_and_versions(void **state)
{
	(void)state;
	void *s = make_secret();
	add("POST", TOKEN_URL, 200, TOKEN_OK);
	add("GET", VAULT "/keys/k1/78deebed173b48e48f55abf87ed4cf71?api-version=7.4", 200,
	    "{\"key\":{\"kid\":\"" KID2 "\",\"kty\":\"RSA-HSM\"},"
	    "\"attributes\":{\"enabled\":false,\"created\":5}}");
	key_info ki;
	provider_status st = {0};
	assert_int_equal(azure_provider_ops.describe(s, "k1/78deebed173b48e48f55abf87ed4cf71",
						     &ki, &st),
			 P11K_OK);
	assert_int_equal(ki.state, KEY_STATE_DISABLED);
	assert_string_equal(ki.primary_version, "78deebed173b48e48f55abf87ed4cf71");
	assert_string_equal(ki.key_id, KID2);
	assert_int_equal(ki.created_at, 5);
	assert_int_equal(ki.version_created_at, 5);
	/* Key ids that would change the URL's shape are refused locally. */
	assert_int_equal(azure_provider_ops.describe(s, "k1/../x", &ki, &st),
			 P11K_ERR_KEY_NOT_FOUND);
	assert_int_equal(azure_provider_ops.describe(s, "k1?x=1", &ki, &st),
			 P11K_ERR_KEY_NOT_FOUND);
	assert_int_equal(net.calls, 2);
	azure_provider_ops.destroy(s);
}

/* oct-HSM keys wrap with CKM_AES_KEY_WRAP_PAD; the scope follows the URL. */
static void test_hsm_aes(void **state)
{
	(void)state;
	char cfg[512];
	snprintf(cfg, sizeof(cfg),
		 "{\"vault_url\": \"https://myhsm.managedhsm.azure.net\", \"keys\": [{\"id\": "
		 "\"aes\"}], \"tenant_id\": \"" TENANT "\", \"client_id\": \"" CLIENT "\", "
		 "\"client_secret_file\": \"%s\"}",
		 secret_path);
	json_error_t je;
	json_t *j = json_loads(cfg, 0, &je);
	void *s = NULL;
	char why[256];
	assert_int_equal(azure_provider_ops.create(j, "/x", &s, why, sizeof(why)), P11K_OK);
	json_decref(j);
	azure_provider_ops.test_set_transport(s, fake_transport, &net, no_sleep);
	add("POST", TOKEN_URL, 200, TOKEN_OK);
	add("GET", "https://myhsm.managedhsm.azure.net/keys/aes?", 200,
	    "{\"key\":{\"kid\":\"https://myhsm.managedhsm.azure.net/keys/aes/abc\","
	    "\"kty\":\"oct-HSM\"},\"attributes\":{\"enabled\":true}}");
	add("POST", "https://myhsm.managedhsm.azure.net/keys/aes/wrapkey?", 200,
	    "{\"kid\":\"https://myhsm.managedhsm.azure.net/keys/aes/abc\",\"value\":\"AAAA\"}");
	uint8_t *blob = NULL;
	size_t bl = 0;
	char kv[64];
	provider_status st = {0};
	assert_int_equal(azure_provider_ops.encrypt(s, "aes", (const uint8_t *)"k", 1, NULL, 0,
						    &blob, &bl, kv, sizeof(kv), &st),
			 P11K_OK);
	assert_non_null(strstr(net.body[0], "scope=https%3A%2F%2Fmanagedhsm.azure.net%2F.default"));
	assert_non_null(strstr(net.body[2], "\"alg\":\"CKM_AES_KEY_WRAP_PAD\""));
	free(blob);
	azure_provider_ops.destroy(s);
}

/* --- the bearer challenge ------------------------------------------------------------ */

static void test_challenge_followed(void **state)
{
	(void)state;
	void *s = make_secret();
	add("POST", TOKEN_URL, 200, TOKEN_OK);
	add("GET", VAULT "/keys/k1?", 401,
	    "{\"error\":{\"code\":\"Unauthorized\",\"message\":\"AKV10022: Invalid audience.\"}}");
	net.script[1].www = "Bearer authorization=\"https://login.windows.net/" TENANT
			    "\", resource=\"https://vault.azure.net\"";
	add("POST", TOKEN_URL, 200,
	    "{\"token_type\":\"Bearer\",\"expires_in\":3599,\"access_token\":\"tok-2\"}");
	add("GET", VAULT "/keys/k1?", 200, RSA_BUNDLE);
	key_info ki;
	provider_status st = {0};
	assert_int_equal(azure_provider_ops.describe(s, "k1", &ki, &st), P11K_OK);
	assert_int_equal(ki.state, KEY_STATE_ENABLED);
	/* The current version: its id and when it was made. */
	assert_string_equal(ki.primary_version, "0698c2156c1a4e1da5b6bab6f6422fd6");
	assert_int_equal(ki.version_created_at, 1493942451);
	assert_int_equal(ki.rotated_at, 1493942452);
	assert_non_null(strstr(net.hdrs[3], "Bearer tok-2"));
	azure_provider_ops.destroy(s);
}

static void test_challenge_foreign_resource_refused(void **state)
{
	(void)state;
	void *s = make_secret();
	add("POST", TOKEN_URL, 200, TOKEN_OK);
	add("GET", VAULT "/keys/k1?", 401, "{\"error\":{\"code\":\"Unauthorized\"}}");
	net.script[1].www = "Bearer authorization=\"https://login.windows.net/" TENANT
			    "\", resource=\"https://evil.example.com\"";
	key_info ki;
	provider_status st = {0};
	assert_int_equal(azure_provider_ops.describe(s, "k1", &ki, &st), P11K_ERR_ACCESS_DENIED);
	assert_non_null(strstr(st.message, "does not match"));
	assert_int_equal(net.calls, 2); /* no token for evil.example.com */
	/* A second 401 after following the challenge is final. */
	memset(&net, 0, sizeof(net));
	add("POST", TOKEN_URL, 200, TOKEN_OK);
	add("GET", VAULT "/keys/k1?", 401, "{\"error\":{\"code\":\"Unauthorized\"}}");
	net.script[1].www = "Bearer authorization=\"https://login.windows.net/" TENANT
			    "\", resource=\"https://vault.azure.net\"";
	add("POST", TOKEN_URL, 200, TOKEN_OK);
	add("GET", VAULT "/keys/k1?", 401, "{\"error\":{\"code\":\"Unauthorized\"}}");
	assert_int_equal(azure_provider_ops.describe(s, "k1", &ki, &st), P11K_ERR_ACCESS_DENIED);
	assert_int_equal(net.calls, 4);
	azure_provider_ops.destroy(s);
}

/* --- errors ------------------------------------------------------------------------------- */

static void test_error_table(void **state)
{
	(void)state;
	static const struct {
		long status;
		const char *body;
		p11k_err want;
		const char *name;
	} cases[] = {
		{403, "{\"error\":{\"code\":\"Forbidden\",\"message\":\"Operation unwrapKey is not "
		      "allowed on a disabled key.\",\"innererror\":{\"code\":\"KeyDisabled\"}}}",
		 P11K_ERR_KEY_DISABLED, "Forbidden/KeyDisabled"},
		{403, "{\"error\":{\"code\":\"Forbidden\",\"innererror\":{\"code\":\"ForbiddenByRbac\"}}}",
		 P11K_ERR_ACCESS_DENIED, "Forbidden/ForbiddenByRbac"},
		{404, "{\"error\":{\"code\":\"KeyNotFound\",\"message\":\"A key with (name/id) k1 was "
		      "not found in this key vault.\"}}",
		 P11K_ERR_KEY_NOT_FOUND, "KeyNotFound"},
		{400, "{\"error\":{\"code\":\"BadParameter\",\"message\":\"x\"}}",
		 P11K_ERR_INVALID_CIPHERTEXT, "BadParameter"},
		{418, "not json", P11K_ERR_BAD_REPLY, ""},
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		memset(&net, 0, sizeof(net));
		void *s = make_secret();
		add("POST", TOKEN_URL, 200, TOKEN_OK);
		add("POST", KID1 "/unwrapkey?", cases[i].status, cases[i].body);
		/* A well-formed blob of k1. */
		uint8_t blob[200], *p = blob;
		memcpy(p, "P1KA\x01\x0c" "RSA-OAEP-256", 18);
		p += 18;
		*p++ = 0;
		*p++ = (uint8_t)strlen(KID1);
		memcpy(p, KID1, strlen(KID1));
		p += strlen(KID1);
		memcpy(p, "wrapped", 7);
		p += 7;
		uint8_t *pt = NULL;
		size_t ptl = 0;
		provider_status st = {0};
		assert_int_equal(azure_provider_ops.decrypt(s, "k1", blob, (size_t)(p - blob), NULL,
							    0, &pt, &ptl, &st),
				 cases[i].want);
		assert_string_equal(st.error_name, cases[i].name);
		assert_string_equal(st.request_id, "req-1");
		assert_int_equal(st.http_status, cases[i].status);
		azure_provider_ops.destroy(s);
	}
}

/* 429 with Retry-After and 503 are retried by the shared client. */
static void test_throttle_retried(void **state)
{
	(void)state;
	void *s = make_secret();
	add("POST", TOKEN_URL, 200, TOKEN_OK);
	add("GET", VAULT "/keys/k1?", 429,
	    "{\"error\":{\"code\":\"Throttled\",\"message\":\"Request was not processed\"}}");
	net.script[1].retry_after_ms = 1000;
	add("GET", VAULT "/keys/k1?", 503, "{\"error\":{\"code\":\"ServiceUnavailable\"}}");
	add("GET", VAULT "/keys/k1?", 200, RSA_BUNDLE);
	key_info ki;
	provider_status st = {0};
	assert_int_equal(azure_provider_ops.describe(s, "k1", &ki, &st), P11K_OK);
	/* Throttled beyond the attempts. */
	for (int i = 0; i < 3; i++) {
		add("GET", VAULT "/keys/k1?", 429, "{\"error\":{\"code\":\"Throttled\"}}");
	}
	assert_int_equal(azure_provider_ops.describe(s, "k1", &ki, &st), P11K_ERR_THROTTLED);
	azure_provider_ops.destroy(s);
}

/* --- standard mechanisms: remote_crypt ------------------------------------------------ */

#define V(c) #c #c #c #c #c #c #c #c #c #c #c #c #c #c #c #c #c #c #c #c #c #c #c #c #c #c #c #c #c #c #c #c
#define KIDV(c) VAULT "/keys/k1/" V(c)

/* Replies built at run time; valid until the end of the test. */
static char replies[128][2048];
static size_t nreplies;

static const char *reply_fmt(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static const char *reply_fmt(const char *fmt, ...)
{
	assert_true(nreplies < ARRAY_SIZE(replies));
	char *r = replies[nreplies++];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(r, sizeof(replies[0]), fmt, ap);
	va_end(ap);
	return r;
}

static const char *b64u(const void *p, size_t n)
{
	char *v = b64url_encode(p, n);
	const char *r = reply_fmt("%s", v);
	free(v);
	return r;
}

static json_t *sent_json(size_t call)
{
	json_error_t je;
	json_t *j = json_loads(net.body[call], 0, &je);
	assert_non_null(j);
	return j;
}

static const char *jstr(json_t *j, const char *k)
{
	return json_string_value(json_object_get(j, k));
}

static void *make_remote(void)
{
	nreplies = 0;
	void *s = make_secret();
	add("POST", TOKEN_URL, 200, TOKEN_OK);
	return s;
}

/* Which algorithm and which operation each remote_alg becomes. */
static void test_remote_alg_names(void **state)
{
	(void)state;
	static const struct {
		remote_alg alg;
		size_t bits;
		bool encrypt, key_op;
		const char *path, *name;
	} cases[] = {
		{RALG_RSA_OAEP_SHA1, 0, true, true, "/keys/k1/wrapkey?", "RSA-OAEP"},
		{RALG_RSA_OAEP_SHA1, 0, false, true, "/keys/k1/unwrapkey?", "RSA-OAEP"},
		{RALG_RSA_OAEP_SHA256, 0, true, false, "/keys/k1/encrypt?", "RSA-OAEP-256"},
		{RALG_RSA_OAEP_SHA256, 0, false, false, "/keys/k1/decrypt?", "RSA-OAEP-256"},
		{RALG_AES_KW, 128, true, true, "/keys/k1/wrapkey?", "A128KW"},
		{RALG_AES_KW, 192, false, true, "/keys/k1/unwrapkey?", "A192KW"},
		{RALG_AES_KW, 256, true, true, "/keys/k1/wrapkey?", "A256KW"},
		{RALG_AES_KW, 0, true, true, "/keys/k1/wrapkey?", "A256KW"},
		/* AES key wrap exists only as wrapKey/unwrapKey. */
		{RALG_AES_KW, 256, true, false, "/keys/k1/wrapkey?", "A256KW"},
		{RALG_AES_KWP, 256, true, true, "/keys/k1/wrapkey?", "CKM_AES_KEY_WRAP_PAD"},
		{RALG_AES_KWP, 128, false, false, "/keys/k1/unwrapkey?", "CKM_AES_KEY_WRAP_PAD"},
		/* AES-GCM only as encrypt/decrypt. */
		{RALG_AES_GCM, 128, true, true, "/keys/k1/encrypt?", "A128GCM"},
		{RALG_AES_GCM, 192, true, false, "/keys/k1/encrypt?", "A192GCM"},
		{RALG_AES_GCM, 256, false, true, "/keys/k1/decrypt?", "A256GCM"},
	};
	uint8_t iv[12], tag[16];
	memset(iv, 7, sizeof(iv));
	memset(tag, 9, sizeof(tag));
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		memset(&net, 0, sizeof(net));
		void *s = make_remote();
		char url[256];
		snprintf(url, sizeof(url), VAULT "%sapi-version=7.4", cases[i].path);
		bool gcm_enc = cases[i].alg == RALG_AES_GCM && cases[i].encrypt;
		add("POST", url, 200,
		    gcm_enc ? reply_fmt("{\"kid\":\"" KID1 "\",\"value\":\"AAEC\",\"iv\":\"%s\","
					"\"tag\":\"%s\"}",
					b64u(iv, 12), b64u(tag, 16))
			    : "{\"kid\":\"" KID1 "\",\"value\":\"AAEC\"}");
		uint8_t in[32];
		memset(in, 0x11, sizeof(in));
		remote_req r = {.alg = cases[i].alg, .encrypt = cases[i].encrypt,
				.key_op = cases[i].key_op, .key_bits = cases[i].bits,
				.in = in, .inlen = sizeof(in)};
		uint8_t *out = NULL;
		size_t ol = 0;
		provider_status st = {0};
		p11k_err e = azure_provider_ops.remote_crypt(s, "k1", &r, &out, &ol, &st);
		if (e != P11K_OK)
			print_error("case %zu: %s\n", i, st.message);
		assert_int_equal(e, P11K_OK);
		assert_string_equal(net.url[1], url);
		json_t *j = sent_json(1);
		assert_string_equal(jstr(j, "alg"), cases[i].name);
		json_decref(j);
		assert_int_equal(ol, gcm_enc ? 3 + 16 : 3);
		assert_memory_equal(out, "\x00\x01\x02", 3);
		sec_free(out);
		azure_provider_ops.destroy(s);
	}
	/* A size no AES key has: refused without a call. */
	memset(&net, 0, sizeof(net));
	void *s = make_remote();
	remote_req r = {.alg = RALG_AES_KW, .encrypt = true, .key_bits = 100,
			.in = (const uint8_t *)"0123456789abcdef", .inlen = 16};
	uint8_t *out = NULL;
	size_t ol = 0;
	provider_status st = {0};
	assert_int_equal(azure_provider_ops.remote_crypt(s, "k1", &r, &out, &ol, &st),
			 P11K_ERR_KEY_TYPE);
	assert_null(out);
	assert_int_equal(net.calls, 0);
	azure_provider_ops.destroy(s);
}

/* Request bodies: base64url without padding, iv/tag/aad only for GCM;
 * a versioned key id names its version in the path. */
static void test_remote_bodies(void **state)
{
	(void)state;
	void *s = make_remote();
	/* fb ef ff fe: standard base64 "++//" and "/g==". */
	const uint8_t in[] = {0xfb, 0xef, 0xff, 0xfe};
	add("POST", KIDV(a) "/wrapkey?api-version=7.4", 200,
	    "{\"kid\":\"" KIDV(a) "\",\"value\":\"AAEC\"}");
	remote_req r = {.alg = RALG_RSA_OAEP_SHA256, .encrypt = true, .key_op = true, .in = in,
			.inlen = sizeof(in)};
	uint8_t *out = NULL;
	size_t ol = 0;
	provider_status st = {0};
	assert_int_equal(azure_provider_ops.remote_crypt(s, "k1/" V(a), &r, &out, &ol, &st),
			 P11K_OK);
	sec_free(out);
	json_t *j = sent_json(1);
	assert_string_equal(jstr(j, "value"), "--___g");
	assert_int_equal(json_object_size(j), 2); /* alg and value only */
	json_decref(j);
	/* The reply naming another version of a pinned id is refused. */
	add("POST", KIDV(a) "/wrapkey?", 200, "{\"kid\":\"" KIDV(b) "\",\"value\":\"AAEC\"}");
	assert_int_equal(azure_provider_ops.remote_crypt(s, "k1/" V(a), &r, &out, &ol, &st),
			 P11K_ERR_BAD_REPLY);
	assert_null(out);
	/* ... and another key, always. */
	add("POST", VAULT "/keys/k1/wrapkey?", 200,
	    "{\"kid\":\"" VAULT "/keys/k2/" V(a) "\",\"value\":\"AAEC\"}");
	assert_int_equal(azure_provider_ops.remote_crypt(s, "k1", &r, &out, &ol, &st),
			 P11K_ERR_BAD_REPLY);

	/* GCM decrypt: ciphertext without the tag, the tag, the IV, the AAD. */
	uint8_t ct[5 + 16];
	for (size_t i = 0; i < sizeof(ct); i++)
		ct[i] = (uint8_t)(0xf0 + i);
	remote_req g = {.alg = RALG_AES_GCM, .encrypt = false, .key_bits = 256, .in = ct,
			.inlen = sizeof(ct), .aad = (const uint8_t *)"hdr?", .aadlen = 4};
	memset(g.iv, 0xff, sizeof(g.iv));
	add("POST", VAULT "/keys/k1/decrypt?", 200,
	    "{\"kid\":\"" KID1 "\",\"value\":\"cGxhaW4\"}");
	assert_int_equal(azure_provider_ops.remote_crypt(s, "k1", &g, &out, &ol, &st), P11K_OK);
	assert_int_equal(ol, 5);
	assert_memory_equal(out, "plain", 5);
	sec_free(out);
	j = sent_json(net.calls - 1);
	assert_string_equal(jstr(j, "alg"), "A256GCM");
	assert_string_equal(jstr(j, "value"), b64u(ct, 5));
	assert_string_equal(jstr(j, "tag"), b64u(ct + 5, 16));
	assert_string_equal(jstr(j, "iv"), "________________");
	assert_string_equal(jstr(j, "aad"), "aGRyPw");
	assert_null(strchr(net.body[net.calls - 1], '='));
	json_decref(j);
	/* Shorter than a tag: no call. */
	size_t before = net.calls;
	g.inlen = 15;
	assert_int_equal(azure_provider_ops.remote_crypt(s, "k1", &g, &out, &ol, &st),
			 P11K_ERR_INVALID_CIPHERTEXT);
	assert_int_equal(net.calls, before);
	azure_provider_ops.destroy(s);
}

/* GCM encryption: the service's IV lands in r->iv, the tag after the
 * ciphertext; an IV or tag of another length is a bad reply. */
static void test_remote_gcm_reply(void **state)
{
	(void)state;
	void *s = make_remote();
	uint8_t iv[16], tag[16];
	for (int i = 0; i < 16; i++) {
		iv[i] = (uint8_t)(0xa0 + i);
		tag[i] = (uint8_t)(0x30 + i);
	}
	add("POST", VAULT "/keys/k1/encrypt?", 200,
	    reply_fmt("{\"kid\":\"" KID1 "\",\"value\":\"%s\",\"iv\":\"%s\",\"tag\":\"%s\","
		      "\"aad\":\"YWFk\"}",
		      b64u("cipher", 6), b64u(iv, 12), b64u(tag, 16)));
	remote_req r = {.alg = RALG_AES_GCM, .encrypt = true, .key_bits = 256,
			.in = (const uint8_t *)"secret", .inlen = 6,
			.aad = (const uint8_t *)"aad", .aadlen = 3};
	uint8_t *out = NULL;
	size_t ol = 0;
	provider_status st = {0};
	assert_int_equal(azure_provider_ops.remote_crypt(s, "k1", &r, &out, &ol, &st), P11K_OK);
	assert_int_equal(ol, 6 + 16);
	assert_memory_equal(out, "cipher", 6);
	assert_memory_equal(out + 6, tag, 16);
	assert_memory_equal(r.iv, iv, 12);
	assert_true(sec_size(out) >= ol); /* secure memory */
	sec_free(out);
	json_t *j = sent_json(1);
	assert_string_equal(jstr(j, "aad"), "YWFk");
	assert_null(json_object_get(j, "iv")); /* the service makes the IV */
	assert_null(json_object_get(j, "tag"));
	json_decref(j);
	/* Without AAD none is sent. */
	add("POST", VAULT "/keys/k1/encrypt?", 200,
	    reply_fmt("{\"kid\":\"" KID1 "\",\"value\":\"\",\"iv\":\"%s\",\"tag\":\"%s\"}",
		      b64u(iv, 12), b64u(tag, 16)));
	r.aad = NULL;
	r.aadlen = 0;
	assert_int_equal(azure_provider_ops.remote_crypt(s, "k1", &r, &out, &ol, &st), P11K_OK);
	assert_int_equal(ol, 16);
	sec_free(out);
	j = sent_json(2);
	assert_null(json_object_get(j, "aad"));
	json_decref(j);
	/* A 16-byte IV, an 8-byte tag, no tag at all. */
	const char *bad[] = {
		reply_fmt("{\"kid\":\"" KID1 "\",\"value\":\"AAEC\",\"iv\":\"%s\",\"tag\":\"%s\"}",
			  b64u(iv, 16), b64u(tag, 16)),
		reply_fmt("{\"kid\":\"" KID1 "\",\"value\":\"AAEC\",\"iv\":\"%s\",\"tag\":\"%s\"}",
			  b64u(iv, 12), b64u(tag, 8)),
		reply_fmt("{\"kid\":\"" KID1 "\",\"value\":\"AAEC\",\"iv\":\"%s\"}", b64u(iv, 12)),
		reply_fmt("{\"kid\":\"" KID1 "\",\"value\":\"AAEC\",\"iv\":\"%s\",\"tag\":\"a=b\"}",
			  b64u(iv, 12)),
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		add("POST", VAULT "/keys/k1/encrypt?", 200, bad[i]);
		memset(r.iv, 0, sizeof(r.iv));
		assert_int_equal(azure_provider_ops.remote_crypt(s, "k1", &r, &out, &ol, &st),
				 P11K_ERR_BAD_REPLY);
		assert_null(out);
		assert_int_equal(r.iv[0], 0);
	}
	azure_provider_ops.destroy(s);
}

/* The service's errors: bad data on decryption, an algorithm the key
 * cannot run, and the error table. */
static void test_remote_errors(void **state)
{
	(void)state;
	static const struct {
		bool encrypt;
		long status;
		const char *body;
		p11k_err want;
	} cases[] = {
		{false, 400, "{\"error\":{\"code\":\"BadParameter\",\"message\":\"Invalid ciphertext: "
			     "the value could not be decrypted with RSA-OAEP.\"}}",
		 P11K_ERR_INVALID_CIPHERTEXT},
		{false, 400, "{\"error\":{\"code\":\"BadParameter\",\"message\":\"Bad Request\"}}",
		 P11K_ERR_INVALID_CIPHERTEXT},
		{false, 400, "{\"error\":{\"code\":\"BadParameter\",\"message\":\"Algorithm RSA-OAEP "
			     "is not supported for key type oct-HSM.\"}}",
		 P11K_ERR_KEY_TYPE},
		{true, 400, "{\"error\":{\"code\":\"BadParameter\",\"message\":\"Algorithm RSA-OAEP "
			    "is not supported for key type oct-HSM.\"}}",
		 P11K_ERR_KEY_TYPE},
		{true, 400, "{\"error\":{\"code\":\"BadParameter\",\"message\":\"Algorithm A128KW needs "
			    "a 128-bit key; key k1 is 256-bit.\"}}",
		 P11K_ERR_KEY_TYPE},
		/* Bad input to an encryption is not a ciphertext problem. */
		{true, 400, "{\"error\":{\"code\":\"BadParameter\",\"message\":\"Invalid plaintext.\"}}",
		 P11K_ERR_INTERNAL},
		{false, 403, "{\"error\":{\"code\":\"Forbidden\",\"message\":\"Operation unwrapKey is "
			     "not allowed on a disabled key.\",\"innererror\":{\"code\":\"KeyDisabled\"}}}",
		 P11K_ERR_KEY_DISABLED},
		{true, 403, "{\"error\":{\"code\":\"Forbidden\",\"innererror\":{\"code\":"
			    "\"ForbiddenByRbac\"}}}",
		 P11K_ERR_ACCESS_DENIED},
		{true, 403, "{\"error\":{\"code\":\"Forbidden\",\"innererror\":{\"code\":"
			    "\"KeyOperationForbidden\"}}}",
		 P11K_ERR_ACCESS_DENIED},
		{false, 404, "{\"error\":{\"code\":\"KeyNotFound\",\"message\":\"A key with (name/id) "
			     "k1 was not found in this key vault.\"}}",
		 P11K_ERR_KEY_NOT_FOUND},
	};
	const uint8_t secret[] = "TOP-SECRET-PLAINTEXT";
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		memset(&net, 0, sizeof(net));
		void *s = make_remote();
		/* Pinned to a version: no fallback. */
		add("POST", KIDV(c), cases[i].status, cases[i].body);
		remote_req r = {.alg = RALG_RSA_OAEP_SHA1, .encrypt = cases[i].encrypt,
				.key_op = true, .in = secret, .inlen = sizeof(secret) - 1};
		uint8_t *out = NULL;
		size_t ol = 0;
		provider_status st = {0};
		p11k_err e = azure_provider_ops.remote_crypt(s, "k1/" V(c), &r, &out, &ol, &st);
		if (e != cases[i].want)
			print_error("case %zu: %s\n", i, st.message);
		assert_int_equal(e, cases[i].want);
		assert_int_equal(st.err, cases[i].want);
		assert_null(out);
		assert_int_equal(st.http_status, cases[i].status);
		assert_string_equal(st.request_id, "req-1");
		assert_null(strstr(st.message, "TOP-SECRET"));
		assert_null(strstr(st.message, "VE9QLVNF")); /* nor its base64 */
		assert_int_equal(net.calls, 2);
		azure_provider_ops.destroy(s);
	}
}

/* A GetKeyVersions item: version c repeated 32 times. */
static const char *item(char c, long created, bool enabled)
{
	char kid[200];
	snprintf(kid, sizeof(kid), VAULT "/keys/k1/");
	size_t l = strlen(kid);
	for (int i = 0; i < 32; i++)
		kid[l + (size_t)i] = c;
	kid[l + 32] = 0;
	return reply_fmt("{\"kid\":\"%s\",\"attributes\":{\"enabled\":%s,\"created\":%ld,"
			 "\"updated\":%ld}}",
			 kid, enabled ? "true" : "false", created, created);
}

static const char *ver_url(char c, const char *op)
{
	char v[33];
	memset(v, c, 32);
	v[32] = 0;
	return reply_fmt(VAULT "/keys/k1/%s/%s?api-version=7.4", v, op);
}

#define BAD_DATA "{\"error\":{\"code\":\"BadParameter\",\"message\":\"Invalid ciphertext.\"}}"

/* An unversioned decryption the current version refuses is tried with the
 * older enabled versions, newest first (listing order breaks ties), over
 * GetKeyVersions pages; a nextLink elsewhere is not followed. */
static void test_remote_version_fallback(void **state)
{
	(void)state;
	void *s = make_remote();
	add("POST", VAULT "/keys/k1/unwrapkey?api-version=7.4", 400, BAD_DATA);
	/* Page 1: a (100), b (300, current), c (200, disabled); page 2: d (250),
	 * e (150), f (150, listed after e: newer). */
	add("GET", VAULT "/keys/k1/versions?api-version=7.4", 200,
	    reply_fmt("{\"value\":[%s,%s,%s],\"nextLink\":\"https://myvault.vault.azure.net:443"
		      "/keys/k1/versions?api-version=7.4&$skiptoken=abc\"}",
		      item('a', 100, true), item('b', 300, true), item('c', 200, false)));
	add("GET", VAULT "/keys/k1/versions?api-version=7.4&$skiptoken=abc", 200,
	    reply_fmt("{\"value\":[%s,%s,%s],\"nextLink\":null}", item('d', 250, true),
		      item('e', 150, true), item('f', 150, true)));
	add("POST", ver_url('d', "unwrapkey"), 400, BAD_DATA);
	add("POST", ver_url('f', "unwrapkey"), 400, BAD_DATA);
	add("POST", ver_url('e', "unwrapkey"), 200,
	    "{\"kid\":\"" VAULT "/keys/k1/eeeeeeeeeeeeeeeeeeeeeeeeeeeeeeee\",\"value\":\"a2V5\"}");
	remote_req r = {.alg = RALG_RSA_OAEP_SHA256, .encrypt = false, .key_op = true,
			.in = (const uint8_t *)"blob", .inlen = 4};
	uint8_t *out = NULL;
	size_t ol = 0;
	provider_status st = {0};
	assert_int_equal(azure_provider_ops.remote_crypt(s, "k1", &r, &out, &ol, &st), P11K_OK);
	assert_int_equal(ol, 3);
	assert_memory_equal(out, "key", 3);
	sec_free(out);
	assert_int_equal(net.calls, 7);
	assert_string_equal(net.url[3], VAULT "/keys/k1/versions?api-version=7.4&$skiptoken=abc");
	assert_string_equal(net.url[4], ver_url('d', "unwrapkey"));
	assert_string_equal(net.url[5], ver_url('f', "unwrapkey"));
	assert_string_equal(net.url[6], ver_url('e', "unwrapkey"));

	/* None works: at most eight older versions, then a bad ciphertext. */
	memset(&net, 0, sizeof(net));
	add("POST", VAULT "/keys/k1/decrypt?", 400, BAD_DATA);
	char list[2048] = "";
	for (int i = 0; i < 11; i++) {
		size_t l = strlen(list);
		snprintf(list + l, sizeof(list) - l, "%s%s", i ? "," : "",
			 item((char)('a' + i), 1000 + i, true));
	}
	add("GET", VAULT "/keys/k1/versions?", 200, reply_fmt("{\"value\":[%s]}", list));
	for (int i = 0; i < 8; i++)
		add("POST", ver_url((char)('a' + 9 - i), "decrypt"), 400, BAD_DATA);
	r.key_op = false;
	assert_int_equal(azure_provider_ops.remote_crypt(s, "k1", &r, &out, &ol, &st),
			 P11K_ERR_INVALID_CIPHERTEXT);
	assert_int_equal(net.calls, 10);
	assert_non_null(strstr(st.message, "8 older"));

	/* A nextLink to another host is not followed (the token stays home). */
	memset(&net, 0, sizeof(net));
	add("POST", VAULT "/keys/k1/decrypt?", 400, BAD_DATA);
	add("GET", VAULT "/keys/k1/versions?", 200,
	    reply_fmt("{\"value\":[%s],\"nextLink\":\"https://evil.example.com/keys/k1/versions"
		      "?api-version=7.4\"}",
		      item('b', 300, true)));
	assert_int_equal(azure_provider_ops.remote_crypt(s, "k1", &r, &out, &ol, &st),
			 P11K_ERR_INVALID_CIPHERTEXT);
	assert_int_equal(net.calls, 2);

	/* The service failing during the fallback is reported as such. */
	memset(&net, 0, sizeof(net));
	add("POST", VAULT "/keys/k1/decrypt?", 400, BAD_DATA);
	add("GET", VAULT "/keys/k1/versions?", 200,
	    reply_fmt("{\"value\":[%s,%s]}", item('a', 1, true), item('b', 2, true)));
	add("POST", ver_url('a', "decrypt"), 403,
	    "{\"error\":{\"code\":\"Forbidden\",\"innererror\":{\"code\":\"ForbiddenByRbac\"}}}");
	assert_int_equal(azure_provider_ops.remote_crypt(s, "k1", &r, &out, &ol, &st),
			 P11K_ERR_ACCESS_DENIED);

	/* No fallback for encryption, a pinned version, or another error. */
	memset(&net, 0, sizeof(net));
	add("POST", VAULT "/keys/k1/decrypt?", 403,
	    "{\"error\":{\"code\":\"Forbidden\",\"innererror\":{\"code\":\"KeyDisabled\"}}}");
	assert_int_equal(azure_provider_ops.remote_crypt(s, "k1", &r, &out, &ol, &st),
			 P11K_ERR_KEY_DISABLED);
	add("POST", ver_url('a', "decrypt"), 400, BAD_DATA);
	assert_int_equal(azure_provider_ops.remote_crypt(s, "k1/" V(a), &r, &out, &ol, &st),
			 P11K_ERR_INVALID_CIPHERTEXT);
	r.encrypt = true;
	add("POST", VAULT "/keys/k1/encrypt?", 400, BAD_DATA);
	assert_int_equal(azure_provider_ops.remote_crypt(s, "k1", &r, &out, &ol, &st),
			 P11K_ERR_INTERNAL);
	assert_int_equal(net.calls, 3);
	azure_provider_ops.destroy(s);
}

/* --- other credential sources ---------------------------------------------------------- */

static void test_env_secret_and_cache(void **state)
{
	(void)state;
	setenv("AZURE_TENANT_ID", TENANT, 1);
	setenv("AZURE_CLIENT_ID", CLIENT, 1);
	setenv("AZURE_CLIENT_SECRET", "envsecret", 1);
	setenv("AZURE_AUTHORITY_HOST", "login.example.net/", 1);
	void *s = make(NULL);
	/* A token that is already inside the refresh window is fetched anew
	 * for each call. */
	const char *short_tok = "{\"token_type\":\"Bearer\",\"expires_in\":100,"
				"\"access_token\":\"short\"}";
	add("POST", "https://login.example.net/" TENANT "/oauth2/v2.0/token", 200, short_tok);
	add("GET", VAULT "/keys/k1?", 200, RSA_BUNDLE);
	add("POST", "https://login.example.net/" TENANT "/oauth2/v2.0/token", 200, TOKEN_OK);
	add("GET", VAULT "/keys/k1?", 200, RSA_BUNDLE);
	add("GET", VAULT "/keys/k1?", 200, RSA_BUNDLE);
	key_info ki;
	provider_status st = {0};
	for (int i = 0; i < 3; i++)
		assert_int_equal(azure_provider_ops.describe(s, "k1", &ki, &st), P11K_OK);
	assert_int_equal(net.calls, 5);
	assert_non_null(strstr(net.body[0], "client_secret=envsecret"));
	azure_provider_ops.destroy(s);
}

static void test_workload_identity(void **state)
{
	(void)state;
	char tf[128];
	snprintf(tf, sizeof(tf), "%s/fed-token", dir);
	write_text(tf, "header.payload.sig\n");
	setenv("AZURE_TENANT_ID", TENANT, 1);
	setenv("AZURE_CLIENT_ID", CLIENT, 1);
	setenv("AZURE_FEDERATED_TOKEN_FILE", tf, 1);
	void *s = make(NULL);
	add("POST", TOKEN_URL, 200, TOKEN_OK);
	add("GET", VAULT "/keys/k1?", 200, RSA_BUNDLE);
	key_info ki;
	provider_status st = {0};
	assert_int_equal(azure_provider_ops.describe(s, "k1", &ki, &st), P11K_OK);
	assert_non_null(strstr(net.body[0], "client_assertion=header.payload.sig"));
	assert_non_null(strstr(net.body[0], "client_assertion_type=urn%3Aietf%3Aparams%3Aoauth%3A"
					    "client-assertion-type%3Ajwt-bearer"));
	assert_null(strstr(net.body[0], "client_secret"));
	azure_provider_ops.destroy(s);
}

static void test_imds(void **state)
{
	(void)state;
	setenv("AZURE_POD_IDENTITY_AUTHORITY_HOST", "http://169.254.169.254/", 1);
	void *s = make("\"managed_identity\": true, \"client_id\": \"" CLIENT "\"");
	add("GET",
	    "http://169.254.169.254/metadata/identity/oauth2/token?api-version=2018-02-01"
	    "&resource=https%3A%2F%2Fvault.azure.net&client_id=" CLIENT,
	    200, "{\"access_token\":\"mi\",\"expires_in\":\"3599\",\"expires_on\":\"99999999999\"}");
	add("GET", VAULT "/keys/k1?", 200, RSA_BUNDLE);
	key_info ki;
	provider_status st = {0};
	assert_int_equal(azure_provider_ops.describe(s, "k1", &ki, &st), P11K_OK);
	assert_non_null(strstr(net.hdrs[0], "Metadata: true"));
	assert_non_null(strstr(net.hdrs[1], "Bearer mi"));
	azure_provider_ops.destroy(s);
	/* Unreachable IMDS: the call fails as unreachable. */
	memset(&net, 0, sizeof(net));
	s = make("\"managed_identity\": true");
	for (int i = 0; i < 3; i++)
		add("GET", "http://169.254.169.254/metadata/", 0, NULL);
	assert_int_equal(azure_provider_ops.describe(s, "k1", &ki, &st), P11K_ERR_UNREACHABLE);
	azure_provider_ops.destroy(s);
}

static void test_app_service(void **state)
{
	(void)state;
	setenv("IDENTITY_ENDPOINT", "http://127.0.0.1:41234/msi/token", 1);
	setenv("IDENTITY_HEADER", "hdr-secret", 1);
	void *s = make(NULL); /* no app credential: the chain ends at managed identity */
	add("GET",
	    "http://127.0.0.1:41234/msi/token?api-version=2019-08-01"
	    "&resource=https%3A%2F%2Fvault.azure.net",
	    200, "{\"access_token\":\"as\",\"expires_on\":\"99999999999\"}");
	add("GET", VAULT "/keys/k1?", 200, RSA_BUNDLE);
	key_info ki;
	provider_status st = {0};
	assert_int_equal(azure_provider_ops.describe(s, "k1", &ki, &st), P11K_OK);
	assert_non_null(strstr(net.hdrs[0], "X-IDENTITY-HEADER: hdr-secret"));
	azure_provider_ops.destroy(s);
}

/* The client certificate's assertion: an RS256 JWT naming the certificate,
 * for the token endpoint, signed by the certificate's key. */
static void test_client_certificate(void **state)
{
	(void)state;
	char pem[160], cmd[512];
	snprintf(pem, sizeof(pem), "%s/cert.pem", dir);
	snprintf(cmd, sizeof(cmd),
		 "cd '%s' && openssl req -x509 -newkey rsa:2048 -nodes -keyout k.pem -out c.pem "
		 "-subj /CN=p11kms-test -days 1 >/dev/null 2>&1 && cat k.pem c.pem > cert.pem",
		 dir);
	if (system(cmd) != 0) /* openssl(1) is on every machine the suite runs on */
		fail_msg("could not make a test certificate with openssl req");
	char extra[512];
	snprintf(extra, sizeof(extra),
		 "\"tenant_id\": \"" TENANT "\", \"client_id\": \"" CLIENT "\", "
		 "\"client_certificate_file\": \"%s\"",
		 pem);
	void *s = make(extra);
	add("POST", TOKEN_URL, 200, TOKEN_OK);
	add("GET", VAULT "/keys/k1?", 200, RSA_BUNDLE);
	key_info ki;
	provider_status st = {0};
	assert_int_equal(azure_provider_ops.describe(s, "k1", &ki, &st), P11K_OK);
	azure_provider_ops.destroy(s);
	const char *a = strstr(net.body[0], "client_assertion=");
	assert_non_null(a);
	assert_non_null(strstr(net.body[0], "client_assertion_type=urn%3Aietf"));
	a += strlen("client_assertion=");
	char jwt[2048];
	snprintf(jwt, sizeof(jwt), "%.*s", (int)strcspn(a, "&"), a);
	char *d1 = strchr(jwt, '.'), *d2 = d1 ? strchr(d1 + 1, '.') : NULL;
	assert_non_null(d2);
	uint8_t *h = NULL, *c = NULL, *sig = NULL;
	size_t hl, cl, sl;
	assert_true(b64url_decode(jwt, (size_t)(d1 - jwt), false, &h, &hl));
	assert_true(b64url_decode(d1 + 1, (size_t)(d2 - d1 - 1), false, &c, &cl));
	assert_true(b64url_decode(d2 + 1, strlen(d2 + 1), false, &sig, &sl));
	json_error_t je;
	json_t *hj = json_loadb((const char *)h, hl, 0, &je);
	json_t *cj = json_loadb((const char *)c, cl, 0, &je);
	assert_string_equal(json_string_value(json_object_get(hj, "alg")), "RS256");
	assert_non_null(json_string_value(json_object_get(hj, "x5t#S256")));
	assert_non_null(json_string_value(json_object_get(hj, "x5t")));
	assert_string_equal(json_string_value(json_object_get(cj, "aud")), TOKEN_URL);
	assert_string_equal(json_string_value(json_object_get(cj, "iss")), CLIENT);
	assert_string_equal(json_string_value(json_object_get(cj, "sub")), CLIENT);
	assert_true(json_integer_value(json_object_get(cj, "exp")) >
		    json_integer_value(json_object_get(cj, "nbf")));
	/* The signature verifies with the certificate. */
	FILE *f = fopen(pem, "r");
	X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	assert_non_null(x);
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	assert_int_equal(EVP_DigestVerifyInit(md, NULL, EVP_sha256(), NULL, X509_get0_pubkey(x)), 1);
	assert_int_equal(EVP_DigestVerify(md, sig, sl, (const uint8_t *)jwt, (size_t)(d2 - jwt)), 1);
	EVP_MD_CTX_free(md);
	X509_free(x);
	json_decref(hj);
	json_decref(cj);
	free(h);
	free(c);
	free(sig);
}

static void test_create_rejects(void **state)
{
	(void)state;
	static const char *const bad[] = {
		"{\"vault_url\": \"http://myvault.vault.azure.net\", \"keys\": [{\"id\": \"k\"}]}",
		"{\"vault_url\": \"https://myvault.vault.azure.net/x\", \"keys\": [{\"id\": \"k\"}]}",
		"{\"vault_url\": \"https://myvault.vault.azure.net\"}",
		"{\"vault_url\": \"https://v.vault.azure.net\", \"keys\": [{\"id\": \"a/b/c\"}]}",
		"{\"vault_url\": \"https://v.vault.azure.net\", \"keys\": [{\"id\": \"k\"}], "
		"\"tenant_id\": \"t\", \"client_id\": \"c\", \"client_secret_file\": \"/nonexistent\"}",
		"{\"vault_url\": \"https://v.vault.azure.net\", \"keys\": [{\"id\": \"k\"}], "
		"\"managed_identity\": false}",
		"{\"vault_url\": \"https://v.vault.azure.net\", \"keys\": [{\"id\": \"k\"}], "
		"\"tenant_id\": \"t\", \"client_id\": \"c\", \"authority_host\": \"http://x\", "
		"\"client_secret_file\": \"/etc/hostname\"}",
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad); i++) {
		json_error_t je;
		json_t *j = json_loads(bad[i], 0, &je);
		assert_non_null(j);
		void *s = NULL;
		char why[256] = "";
		assert_int_not_equal(azure_provider_ops.create(j, "/x", &s, why, sizeof(why)),
				     P11K_OK);
		assert_true(why[0] != 0);
		json_decref(j);
	}
}

/* --- public_key and sign ------------------------------------------------------------- */

static EVP_PKEY *az_rsa, *az_p256, *az_p384, *az_rsa1024;

static int asym_setup(void **state)
{
	(void)state;
	az_rsa = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	az_rsa1024 = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)1024);
	az_p256 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	az_p384 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
	return az_rsa && az_rsa1024 && az_p256 && az_p384 ? 0 : -1;
}

static int asym_teardown(void **state)
{
	(void)state;
	EVP_PKEY_free(az_rsa);
	EVP_PKEY_free(az_rsa1024);
	EVP_PKEY_free(az_p256);
	EVP_PKEY_free(az_p384);
	return 0;
}

/* The JWK members of k: "n":..,"e":.. or "crv":..,"x":..,"y":... */
static const char *jwk_of(EVP_PKEY *k)
{
	uint8_t a[1024], b[1024];
	if (EVP_PKEY_is_a(k, "RSA")) {
		size_t nl = fx_bn(k, OSSL_PKEY_PARAM_RSA_N, a, 0);
		size_t el = fx_bn(k, OSSL_PKEY_PARAM_RSA_E, b, 0);
		const char *n = b64u(a, nl), *e = b64u(b, el);
		return reply_fmt("\"kty\":\"RSA-HSM\",\"n\":\"%s\",\"e\":\"%s\"", n, e);
	}
	size_t half = EVP_PKEY_get_bits(k) == 256 ? 32 : 48;
	fx_bn(k, OSSL_PKEY_PARAM_EC_PUB_X, a, half);
	fx_bn(k, OSSL_PKEY_PARAM_EC_PUB_Y, b, half);
	const char *x = b64u(a, half), *y = b64u(b, half);
	return reply_fmt("\"kty\":\"EC\",\"crv\":\"%s\",\"x\":\"%s\",\"y\":\"%s\"",
			 half == 32 ? "P-256" : "P-384", x, y);
}

static const char *key_bundle(const char *kid, const char *jwk, const char *ops, bool enabled)
{
	return reply_fmt("{\"key\":{\"kid\":\"%s\",%s,\"key_ops\":%s},\"attributes\":"
			 "{\"enabled\":%s,\"created\":1493942451}}",
			 kid, jwk, ops, enabled ? "true" : "false");
}

#define RSA_SIGN_ALGS                                                                        \
	(SALG_BIT(SALG_RSA_PKCS1_SHA256) | SALG_BIT(SALG_RSA_PKCS1_SHA384) |                 \
	 SALG_BIT(SALG_RSA_PKCS1_SHA512) | SALG_BIT(SALG_RSA_PSS_SHA256) |                   \
	 SALG_BIT(SALG_RSA_PSS_SHA384) | SALG_BIT(SALG_RSA_PSS_SHA512))

/* RSA and EC JWKs become the keys' own DER SPKI; key_ops give the uses;
 * the version is the kid's (current, or the one pinned). */
static void test_public_key_kinds(void **state)
{
	(void)state;
	EVP_PKEY *keys[] = {az_rsa, az_p256, az_p384, az_rsa};
	const struct {
		const char *id, *url, *ops;
		unsigned uses, algs;
	} cases[] = {
		{"k1", VAULT "/keys/k1?api-version=7.4", "[\"sign\",\"verify\"]", ASYM_USE_SIGN,
		 RSA_SIGN_ALGS},
		{"k1", VAULT "/keys/k1?api-version=7.4", "[\"sign\",\"verify\"]", ASYM_USE_SIGN,
		 SALG_BIT(SALG_ECDSA_SHA256)},
		{"k1/0698c2156c1a4e1da5b6bab6f6422fd6", KID1 "?api-version=7.4", "[\"sign\"]",
		 ASYM_USE_SIGN, SALG_BIT(SALG_ECDSA_SHA384)},
		{"k1", VAULT "/keys/k1?api-version=7.4",
		 "[\"encrypt\",\"decrypt\",\"wrapKey\",\"unwrapKey\"]", ASYM_USE_DECRYPT, 0},
	};
	void *s = make_remote();
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		size_t dl;
		uint8_t *der = fx_spki(keys[i], &dl);
		add("GET", cases[i].url, 200, key_bundle(KID1, jwk_of(keys[i]), cases[i].ops, true));
		asym_public ap;
		provider_status st = {0};
		p11k_err e = azure_provider_ops.public_key(s, cases[i].id, &ap, &st);
		if (e != P11K_OK)
			fail_msg("case %zu: %s (%s)", i, p11k_err_name(e), st.message);
		assert_int_equal(ap.spkilen, dl);
		assert_memory_equal(ap.spki, der, dl);
		assert_int_equal(ap.uses, cases[i].uses);
		assert_int_equal(ap.sign_algs, cases[i].algs);
		assert_string_equal(ap.version, "0698c2156c1a4e1da5b6bab6f6422fd6");
		assert_true(st.request_id[0]);
		asym_public_free(&ap);
		free(der);
	}
	azure_provider_ops.destroy(s);
}

static void test_public_key_refusals(void **state)
{
	(void)state;
	uint8_t xy[48];
	memset(xy, 0x11, sizeof(xy));
	const char *off_curve = reply_fmt("\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"%s\",\"y\":\"%s\"",
					  b64u(xy, 32), b64u(xy, 32));
	const char *long_x = reply_fmt("\"kty\":\"EC\",\"crv\":\"P-256\",\"x\":\"%s\",\"y\":\"%s\"",
				       b64u(xy, 33), b64u(xy, 32));
	const char *rsa = jwk_of(az_rsa), *sign = "[\"sign\"]";
	const struct {
		const char *id, *kid, *jwk, *ops;
		bool enabled;
		p11k_err want;
	} cases[] = {
		{"k1", KID1, rsa, sign, false, P11K_ERR_KEY_DISABLED},
		{"k1", KID1, "\"kty\":\"oct-HSM\"", "[\"wrapKey\"]", true, P11K_ERR_KEY_TYPE},
		{"k1", KID1, "\"kty\":\"EC\",\"crv\":\"P-521\",\"x\":\"AA\",\"y\":\"AA\"", sign, true,
		 P11K_ERR_KEY_TYPE},
		{"k1", KID1, "\"kty\":\"EC-HSM\",\"crv\":\"P-256K\",\"x\":\"AA\",\"y\":\"AA\"", sign,
		 true, P11K_ERR_KEY_TYPE},
		{"k1", KID1, jwk_of(az_rsa1024), sign, true, P11K_ERR_KEY_TYPE},
		{"k1", KID1, rsa, "[\"verify\",\"encrypt\"]", true, P11K_ERR_KEY_TYPE},
		{"k1", KID1, off_curve, sign, true, P11K_ERR_BAD_REPLY},
		{"k1", KID1, long_x, sign, true, P11K_ERR_BAD_REPLY},
		{"k1", KID1, "\"kty\":\"RSA\",\"e\":\"AQAB\"", sign, true, P11K_ERR_BAD_REPLY},
		{"k1", KID1, rsa, "\"sign\"", true, P11K_ERR_BAD_REPLY},
		{"k1", VAULT "/keys/k2/0698c2156c1a4e1da5b6bab6f6422fd6", rsa, sign, true,
		 P11K_ERR_BAD_REPLY},
		{"k1/0698c2156c1a4e1da5b6bab6f6422fd6", KID2, rsa, sign, true, P11K_ERR_BAD_REPLY},
	};
	void *s = make_remote();
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		add("GET", VAULT "/keys/k1", 200,
		    key_bundle(cases[i].kid, cases[i].jwk, cases[i].ops, cases[i].enabled));
		asym_public ap;
		provider_status st = {0};
		p11k_err e = azure_provider_ops.public_key(s, cases[i].id, &ap, &st);
		if (e != cases[i].want)
			fail_msg("case %zu: got %s, want %s (%s)", i, p11k_err_name(e),
				 p11k_err_name(cases[i].want), st.message);
		assert_null(ap.spki);
		assert_true(st.message[0]);
	}
	add("GET", VAULT "/keys/k1", 404, "{\"error\":{\"code\":\"KeyNotFound\"}}");
	asym_public ap;
	provider_status st = {0};
	assert_int_equal(azure_provider_ops.public_key(s, "k1", &ap, &st), P11K_ERR_KEY_NOT_FOUND);
	add("GET", VAULT "/keys/k1", 200, "{\"key\":");
	assert_int_equal(azure_provider_ops.public_key(s, "k1", &ap, &st), P11K_ERR_BAD_REPLY);
	azure_provider_ops.destroy(s);
}

/* An RSA key the vault decrypts with (the module encrypts RSA-OAEP with
 * its public half): a JWK modulus with a leading zero gives the key's own
 * SPKI, for decryption only; each call asks (the module keeps the
 * answer); a pinned version is the one asked for, and what it refuses
 * there is refused, with no failure remembered. */
static void test_public_key_decrypt_key(void **state)
{
	(void)state;
	uint8_t mod[1 + 256], ex[8];
	mod[0] = 0; /* a JWK may carry a leading zero */
	assert_int_equal(fx_bn(az_rsa, OSSL_PKEY_PARAM_RSA_N, mod + 1, 0), 256);
	size_t el = fx_bn(az_rsa, OSSL_PKEY_PARAM_RSA_E, ex, 0);
	const char *ops = "[\"encrypt\",\"decrypt\",\"wrapKey\",\"unwrapKey\"]";
	const char *jwk = reply_fmt("\"kty\":\"RSA-HSM\",\"n\":\"%s\",\"e\":\"%s\"",
				    b64u(mod, sizeof(mod)), b64u(ex, el));
	const char *bundle = key_bundle(KID1, jwk, ops, true);
	size_t dl;
	uint8_t *der = fx_spki(az_rsa, &dl);
	void *s = make_remote();
	for (int round = 0; round < 2; round++) {
		add("GET", VAULT "/keys/k1?api-version=7.4", 200, bundle);
		asym_public ap;
		provider_status st = {0};
		assert_int_equal(azure_provider_ops.public_key(s, "k1", &ap, &st), P11K_OK);
		assert_int_equal(ap.spkilen, dl);
		assert_memory_equal(ap.spki, der, dl);
		assert_int_equal(ap.uses, ASYM_USE_DECRYPT);
		assert_int_equal(ap.sign_algs, 0);
		assert_string_equal(ap.version, "0698c2156c1a4e1da5b6bab6f6422fd6");
		asym_public_free(&ap);
	}
	assert_int_equal(net.calls, 3); /* the token, then one GetKey each */
	/* Pinned versions: the URL names the version asked for. */
	const struct {
		const char *id, *url, *body;
		p11k_err want;
	} cases[] = {
		{"k1/" V(a), KIDV(a) "?api-version=7.4",
		 reply_fmt("{\"key\":{\"kid\":\"" KIDV(a) "\",\"kty\":\"oct-HSM\",\"key_ops\":%s},"
			   "\"attributes\":{\"enabled\":true}}", ops),
		 P11K_ERR_KEY_TYPE},
		{"k1/" V(b), KIDV(b) "?",
		 key_bundle(KIDV(b), "\"kty\":\"RSA\",\"e\":\"AQAB\"", ops, true),
		 P11K_ERR_BAD_REPLY},
		{"k1/" V(c), KIDV(c) "?",
		 key_bundle(KIDV(c), "\"kty\":\"RSA\",\"n\":\"AAAA\",\"e\":\"AQAB\"", ops, true),
		 P11K_ERR_KEY_TYPE}, /* all zeros: an RSA key of no size */
		{"k1/" V(d), KIDV(d) "?", "{\"error\":{\"code\":\"KeyNotFound\"}}",
		 P11K_ERR_KEY_NOT_FOUND},
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		add("GET", cases[i].url, cases[i].want == P11K_ERR_KEY_NOT_FOUND ? 404 : 200,
		    cases[i].body);
		asym_public ap;
		provider_status st = {0};
		p11k_err e = azure_provider_ops.public_key(s, cases[i].id, &ap, &st);
		if (e != cases[i].want)
			fail_msg("case %zu: got %s, want %s (%s)", i, p11k_err_name(e),
				 p11k_err_name(cases[i].want), st.message);
		assert_null(ap.spki);
	}
	/* After a failure, the next answer is taken: the version asked for. */
	add("GET", KIDV(d) "?", 200, key_bundle(KIDV(d), jwk, "[\"unwrapKey\"]", true));
	asym_public ap;
	provider_status st = {0};
	assert_int_equal(azure_provider_ops.public_key(s, "k1/" V(d), &ap, &st), P11K_OK);
	assert_memory_equal(ap.spki, der, dl);
	assert_int_equal(ap.uses, ASYM_USE_DECRYPT);
	assert_string_equal(ap.version, V(d));
	asym_public_free(&ap);
	assert_int_equal(net.calls, 8);
	free(der);
	azure_provider_ops.destroy(s);
}

static const char *sign_reply(const char *kid, const uint8_t *v, size_t n)
{
	return reply_fmt("{\"kid\":\"%s\",\"value\":\"%s\"}", kid, b64u(v, n));
}

/* The request: POST .../sign with the JWS name and base64url(digest),
 * under the version asked; the value back as it is (ES*: r||s). */
static void test_sign(void **state)
{
	(void)state;
	const struct {
		sign_alg a;
		const char *version, *url, *alg;
		size_t dl, sl;
	} cases[] = {
		{SALG_RSA_PKCS1_SHA256, "", VAULT "/keys/k1/sign?api-version=7.4", "RS256", 32, 256},
		{SALG_RSA_PKCS1_SHA512, "", VAULT "/keys/k1/sign?", "RS512", 64, 384},
		{SALG_RSA_PSS_SHA384, "0698c2156c1a4e1da5b6bab6f6422fd6", KID1 "/sign?api-version=7.4",
		 "PS384", 48, 512},
		{SALG_ECDSA_SHA256, "0698c2156c1a4e1da5b6bab6f6422fd6", KID1 "/sign?", "ES256", 32, 64},
		{SALG_ECDSA_SHA384, "", VAULT "/keys/k1/sign?", "ES384", 48, 96},
	};
	void *s = make_remote();
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		uint8_t d[64], sv[512];
		memset(d, (int)(0x61 + i), sizeof(d));
		for (size_t k = 0; k < sizeof(sv); k++)
			sv[k] = (uint8_t)(k * 5 + i);
		size_t call = net.calls + (i == 0); /* the first call fetches a token */
		add("POST", cases[i].url, 200, sign_reply(KID1, sv, cases[i].sl));
		uint8_t *sig = NULL;
		size_t sl = 0;
		provider_status st = {0};
		p11k_err e = azure_provider_ops.sign(s, "k1", cases[i].version, cases[i].a, d,
						     cases[i].dl, &sig, &sl, &st);
		if (e != P11K_OK)
			fail_msg("case %zu: %s (%s)", i, p11k_err_name(e), st.message);
		assert_int_equal(sl, cases[i].sl);
		assert_memory_equal(sig, sv, sl);
		free(sig);
		json_t *j = sent_json(call);
		assert_string_equal(jstr(j, "alg"), cases[i].alg);
		assert_string_equal(jstr(j, "value"), b64u(d, cases[i].dl));
		assert_int_equal(json_object_size(j), 2);
		json_decref(j);
		assert_non_null(strstr(net.hdrs[call], "Authorization: Bearer tok-1"));
	}
	/* A key id that pins a version signs with it. */
	uint8_t d[32] = {9}, sv[64] = {1};
	add("POST", KID1 "/sign?", 200, sign_reply(KID1, sv, 64));
	uint8_t *sig = NULL;
	size_t sl = 0;
	provider_status st = {0};
	assert_int_equal(azure_provider_ops.sign(s, "k1/0698c2156c1a4e1da5b6bab6f6422fd6", "",
						 SALG_ECDSA_SHA256, d, 32, &sig, &sl, &st),
			 P11K_OK);
	free(sig);
	azure_provider_ops.destroy(s);
}

static void test_sign_errors(void **state)
{
	(void)state;
	uint8_t sv[512] = {1};
	const struct {
		sign_alg a;
		long status;
		const char *body;
		p11k_err want;
	} cases[] = {
		{SALG_RSA_PSS_SHA256, 403, "{\"error\":{\"code\":\"Forbidden\",\"message\":\"Operation "
		 "sign is not allowed on a disabled key.\",\"innererror\":{\"code\":\"KeyDisabled\"}}}",
		 P11K_ERR_KEY_DISABLED},
		{SALG_RSA_PSS_SHA256, 403, "{\"error\":{\"code\":\"Forbidden\",\"message\":\"Operation "
		 "sign is not allowed on a disabled key.\"}}", P11K_ERR_KEY_DISABLED},
		{SALG_RSA_PSS_SHA256, 403, "{\"error\":{\"code\":\"Forbidden\",\"message\":\"Caller is "
		 "not authorized\",\"innererror\":{\"code\":\"ForbiddenByRbac\"}}}",
		 P11K_ERR_ACCESS_DENIED},
		{SALG_ECDSA_SHA256, 400, "{\"error\":{\"code\":\"BadParameter\",\"message\":\"Algorithm "
		 "ES256 is not supported for key type RSA-HSM.\"}}", P11K_ERR_KEY_TYPE},
		{SALG_ECDSA_SHA384, 400, "{\"error\":{\"code\":\"BadParameter\",\"message\":\"Invalid "
		 "algorithm for key type EC with curve P-256\"}}", P11K_ERR_KEY_TYPE},
		{SALG_RSA_PSS_SHA256, 404, "{\"error\":{\"code\":\"KeyNotFound\",\"message\":\"A key "
		 "with (name/id) k1 was not found in this key vault.\"}}", P11K_ERR_KEY_NOT_FOUND},
		{SALG_ECDSA_SHA256, 200, sign_reply(KID1, sv, 63), P11K_ERR_BAD_REPLY},
		{SALG_ECDSA_SHA384, 200, sign_reply(KID1, sv, 64), P11K_ERR_BAD_REPLY},
		{SALG_RSA_PSS_SHA256, 200, sign_reply(KID1, sv, 100), P11K_ERR_BAD_REPLY},
		{SALG_RSA_PSS_SHA256, 200, sign_reply(VAULT "/keys/k2/0698c2156c1a4e1da5b6bab6f6422fd6",
						      sv, 256), P11K_ERR_BAD_REPLY},
		{SALG_RSA_PSS_SHA256, 200, "{\"kid\":\"" KID1 "\",\"value\":\"***\"}",
		 P11K_ERR_BAD_REPLY},
		{SALG_RSA_PSS_SHA256, 200, "{\"kid\":\"" KID1 "\"}", P11K_ERR_BAD_REPLY},
		{SALG_RSA_PSS_SHA256, 200, "<html>", P11K_ERR_BAD_REPLY},
	};
	void *s = make_remote();
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		add("POST", VAULT "/keys/k1/sign?", cases[i].status, cases[i].body);
		uint8_t d[48] = {2}, *sig = NULL;
		size_t sl = 0;
		provider_status st = {0};
		p11k_err e = azure_provider_ops.sign(s, "k1", "", cases[i].a, d,
						     salg_digest_len(cases[i].a), &sig, &sl, &st);
		if (e != cases[i].want)
			fail_msg("case %zu: got %s, want %s (%s)", i, p11k_err_name(e),
				 p11k_err_name(cases[i].want), st.message);
		assert_null(sig);
		assert_int_equal(st.err, e);
	}
	/* A version under a key id pinning another answers another key: the
	 * caller's bug, refused before any request, as a digest of the wrong
	 * size is. */
	size_t calls = net.calls;
	uint8_t d[64] = {0}, *sig = NULL;
	size_t sl = 0;
	provider_status st = {0};
	assert_int_equal(azure_provider_ops.sign(s, "k1/0698c2156c1a4e1da5b6bab6f6422fd6",
						 "78deebed173b48e48f55abf87ed4cf71", SALG_ECDSA_SHA256,
						 d, 32, &sig, &sl, &st),
			 P11K_ERR_INTERNAL);
	assert_int_equal(azure_provider_ops.sign(s, "k1", "", SALG_ECDSA_SHA256, d, 48, &sig, &sl,
						 &st),
			 P11K_ERR_INTERNAL);
	assert_int_equal(azure_provider_ops.sign(s, "k1", "a/b", SALG_ECDSA_SHA256, d, 32, &sig,
						 &sl, &st),
			 P11K_ERR_INTERNAL);
	assert_int_equal(net.calls, calls);
	azure_provider_ops.destroy(s);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup(test_parse_reply, reset),
		cmocka_unit_test_setup(test_secret_encrypt_decrypt, reset),
		cmocka_unit_test_setup(test_describe_and_versions, reset),
		cmocka_unit_test_setup(test_hsm_aes, reset),
		cmocka_unit_test_setup(test_challenge_followed, reset),
		cmocka_unit_test_setup(test_challenge_foreign_resource_refused, reset),
		cmocka_unit_test_setup(test_error_table, reset),
		cmocka_unit_test_setup(test_throttle_retried, reset),
		cmocka_unit_test_setup(test_remote_alg_names, reset),
		cmocka_unit_test_setup(test_remote_bodies, reset),
		cmocka_unit_test_setup(test_remote_gcm_reply, reset),
		cmocka_unit_test_setup(test_remote_errors, reset),
		cmocka_unit_test_setup(test_remote_version_fallback, reset),
		cmocka_unit_test_setup(test_public_key_kinds, reset),
		cmocka_unit_test_setup(test_public_key_refusals, reset),
		cmocka_unit_test_setup(test_public_key_decrypt_key, reset),
		cmocka_unit_test_setup(test_sign, reset),
		cmocka_unit_test_setup(test_sign_errors, reset),
		cmocka_unit_test_setup(test_env_secret_and_cache, reset),
		cmocka_unit_test_setup(test_workload_identity, reset),
		cmocka_unit_test_setup(test_imds, reset),
		cmocka_unit_test_setup(test_app_service, reset),
		cmocka_unit_test_setup(test_client_certificate, reset),
		cmocka_unit_test_setup(test_create_rejects, reset),
	};
	return cmocka_run_group_tests_name("azure", tests, group_setup, group_teardown);
}
