/* SPDX-License-Identifier: Apache-2.0 */
/*
 * providers/azure: the Entra ID token flows (client secret from a file and
 * from AZURE_CLIENT_SECRET, workload identity, IMDS, App Service), the
 * token cache, the bearer challenge (followed once; refused for a foreign
 * resource), the error table (code, inner code, status, x-ms-request-id),
 * 429 retried, the blob format and its AAD binding. All through a fake
 * transport: no network, no sleeping.
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

#include "module/crypto.h"
#include "module/secmem.h"
#include "providers/azure/azure.h"
#include "providers/azure/entra.h"
#include "providers/common/codec.h"
#include "providers/provider.h"

extern const provider_ops azure_provider_ops;

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

#define MAX_CALLS 16

typedef struct fake_net {
	fake_resp script[12];
	size_t n, next, calls;
	char url[MAX_CALLS][512];
	char hdrs[MAX_CALLS][2048];
	char body[MAX_CALLS][2048];
} fake_net;

static fake_net net;

static void add(const char *method, const char *url, long status, const char *body)
{
	assert_true(net.n < 12);
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

static int group_setup(void **state)
{
	(void)state;
	assert_true(crypto_init());
	snprintf(dir, sizeof(dir), "/tmp/p11kms-azure-XXXXXX");
	assert_non_null(mkdtemp(dir));
	snprintf(secret_path, sizeof(secret_path), "%s/secret", dir);
	write_text(secret_path, SECRET "\n");
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
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
	azure_test_set_transport(s, fake_transport, &net, no_sleep);
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
	azure_test_set_transport(s, fake_transport, &net, no_sleep);
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
	if (system(cmd) != 0)
		skip();
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
		cmocka_unit_test_setup(test_env_secret_and_cache, reset),
		cmocka_unit_test_setup(test_workload_identity, reset),
		cmocka_unit_test_setup(test_imds, reset),
		cmocka_unit_test_setup(test_app_service, reset),
		cmocka_unit_test_setup(test_client_certificate, reset),
		cmocka_unit_test_setup(test_create_rejects, reset),
	};
	return cmocka_run_group_tests_name("azure", tests, group_setup, group_teardown);
}
