/* SPDX-License-Identifier: Apache-2.0 */
/*
 * providers/aws: the standard mechanisms on asymmetric RSA keys
 * (remote_crypt: Encrypt/Decrypt bodies with KeyId and EncryptionAlgorithm,
 * no context; algorithms it cannot run refused without a request; the
 * error mapping) and public_key (GetPublicKey's DER SubjectPublicKeyInfo
 * checked against the key spec, the usage and algorithms); sign; the envelope
 * on an RSA key and the default sealing key; describe (the current key
 * material and when ListKeyRotations says it was made) and the key material
 * encrypt records as the seal's version. All through a fake transport: no
 * network, no sleeping.
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
#include <openssl/x509.h>

#include "asym_fixture.h"
#include "common/crypto.h"
#include "common/secmem.h"
#include "providers/common/codec.h"
#include "providers/common/http.h"
#include "providers/provider.h"

extern const provider_ops aws_provider_ops;

#define ENDPOINT "https://kms.us-east-1.amazonaws.com"
#define KEY "arn:aws:kms:us-east-1:111122223333:key/1234abcd-12ab-34cd-56ef-1234567890ab"

/* --- fake transport ---------------------------------------------------------- */

typedef struct fake_resp {
	long status;
	char body[4096];
} fake_resp;

#define MAX_CALLS 16

typedef struct fake_net {
	fake_resp script[MAX_CALLS];
	size_t n, next, calls;
	char target[MAX_CALLS][96];
	char body[MAX_CALLS][2048];
} fake_net;

static fake_net net;
static void *aws;

static void add(long status, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void add(long status, const char *fmt, ...)
{
	assert_true(net.n < MAX_CALLS);
	fake_resp *r = &net.script[net.n++];
	r->status = status;
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(r->body, sizeof(r->body), fmt, ap);
	va_end(ap);
}

static p11k_err fake_transport(void *arg, const http_request *req, http_response *resp,
			       provider_status *st)
{
	fake_net *f = arg;
	size_t k = f->calls < MAX_CALLS ? f->calls : MAX_CALLS - 1;
	f->calls++;
	const char *t = http_header_get(req, "X-Amz-Target");
	snprintf(f->target[k], sizeof(f->target[k]), "%s", t ? t : "");
	size_t bl = req->bodylen < sizeof(f->body[k]) - 1 ? req->bodylen : sizeof(f->body[k]) - 1;
	memcpy(f->body[k], req->body ? (const char *)req->body : "", bl);
	f->body[k][bl] = 0;
	if (strcmp(req->method, "POST") != 0 || strcmp(req->url, ENDPOINT "/") != 0) {
		print_error("fake: unexpected %s %s\n", req->method, req->url);
		fail();
	}
	if (f->next >= f->n) {
		snprintf(st->message, sizeof(st->message), "fake: nothing scripted");
		return P11K_ERR_UNREACHABLE;
	}
	const fake_resp *r = &f->script[f->next++];
	resp->status = r->status;
	snprintf(resp->request_id, sizeof(resp->request_id), "req-%zu", k);
	if (!dbuf_add(&resp->body, r->body, strlen(r->body)))
		return P11K_ERR_BAD_REPLY;
	return P11K_OK;
}

static void no_sleep(void *arg, long ms)
{
	(void)arg;
	(void)ms;
}

static void *make(const char *json, p11k_err *err)
{
	json_error_t je;
	json_t *cfg = json_loads(json, 0, &je);
	assert_non_null(cfg);
	void *st = NULL;
	char why[256] = "";
	*err = aws_provider_ops.create(cfg, "test.json", &st, why, sizeof(why));
	json_decref(cfg);
	if (st)
		aws_provider_ops.test_set_transport(st, fake_transport, &net, no_sleep);
	return st;
}

static int setup(void **state)
{
	(void)state;
	memset(&net, 0, sizeof(net));
	p11k_err e;
	aws = make("{\"region\": \"us-east-1\", \"endpoint\": \"" ENDPOINT "\", "
		   "\"seal_with\": \"alias/seal\"}", &e);
	assert_int_equal(e, P11K_OK);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	aws_provider_ops.destroy(aws);
	aws = NULL;
	return 0;
}

/* The request body k as JSON (the caller frees). */
static json_t *body_of(size_t k)
{
	json_error_t je;
	json_t *j = json_loads(net.body[k], 0, &je);
	assert_non_null(j);
	return j;
}

static const char *jstr(json_t *j, const char *k)
{
	return json_string_value(json_object_get(j, k));
}

static char *b64(const uint8_t *p, size_t n)
{
	char *s = b64_encode(p, n);
	assert_non_null(s);
	return s;
}

/* --- remote_crypt ------------------------------------------------------------ */

static void test_encrypt_body(void **state)
{
	(void)state;
	uint8_t ct[256], pt[32];
	for (size_t i = 0; i < sizeof(ct); i++)
		ct[i] = (uint8_t)(i * 3 + 1);
	memset(pt, 0x5a, sizeof(pt));
	char *cb = b64(ct, sizeof(ct));
	add(200, "{\"CiphertextBlob\":\"%s\",\"KeyId\":\"%s\","
		 "\"EncryptionAlgorithm\":\"RSAES_OAEP_SHA_256\"}", cb, KEY);
	free(cb);
	remote_req r = {.alg = RALG_RSA_OAEP_SHA256, .encrypt = true, .key_op = true,
			.in = pt, .inlen = sizeof(pt)};
	uint8_t *out = NULL;
	size_t ol = 0;
	provider_status st = {0};
	assert_int_equal(aws_provider_ops.remote_crypt(aws, "alias/rsa", &r, &out, &ol, &st),
			 P11K_OK);
	assert_int_equal(ol, sizeof(ct));
	assert_memory_equal(out, ct, ol);
	assert_true(sec_size(out) >= ol); /* secure memory */
	sec_free(out);
	assert_int_equal(net.calls, 1);
	assert_string_equal(net.target[0], "TrentService.Encrypt");
	json_t *j = body_of(0);
	assert_string_equal(jstr(j, "KeyId"), "alias/rsa");
	assert_string_equal(jstr(j, "EncryptionAlgorithm"), "RSAES_OAEP_SHA_256");
	char *pb = b64(pt, sizeof(pt));
	assert_string_equal(jstr(j, "Plaintext"), pb);
	free(pb);
	assert_null(json_object_get(j, "EncryptionContext"));
	assert_int_equal(json_object_size(j), 3);
	json_decref(j);
}

static void test_decrypt_body(void **state)
{
	(void)state;
	uint8_t ct[256];
	memset(ct, 0x11, sizeof(ct));
	add(200, "{\"Plaintext\":\"c2VjcmV0\",\"KeyId\":\"%s\","
		 "\"EncryptionAlgorithm\":\"RSAES_OAEP_SHA_1\"}", KEY);
	remote_req r = {.alg = RALG_RSA_OAEP_SHA1, .encrypt = false, .in = ct,
			.inlen = sizeof(ct)};
	uint8_t *out = NULL;
	size_t ol = 0;
	provider_status st = {0};
	assert_int_equal(aws_provider_ops.remote_crypt(aws, KEY, &r, &out, &ol, &st), P11K_OK);
	assert_int_equal(ol, 6);
	assert_memory_equal(out, "secret", 6);
	assert_true(sec_size(out) >= ol);
	sec_free(out);
	assert_string_equal(net.target[0], "TrentService.Decrypt");
	json_t *j = body_of(0);
	assert_string_equal(jstr(j, "KeyId"), KEY);
	assert_string_equal(jstr(j, "EncryptionAlgorithm"), "RSAES_OAEP_SHA_1");
	char *cb = b64(ct, sizeof(ct));
	assert_string_equal(jstr(j, "CiphertextBlob"), cb);
	free(cb);
	assert_null(json_object_get(j, "EncryptionContext"));
	json_decref(j);

	/* A reply without Plaintext is a bad reply. */
	add(200, "{\"KeyId\":\"%s\"}", KEY);
	assert_int_equal(aws_provider_ops.remote_crypt(aws, KEY, &r, &out, &ol, &st),
			 P11K_ERR_BAD_REPLY);
	assert_null(out);
}

/* AES key wrap and GCM: AWS has no such operation; no request is made. */
static void test_unsupported_algs(void **state)
{
	(void)state;
	static const remote_alg algs[] = {RALG_AES_KW, RALG_AES_KWP, RALG_AES_GCM};
	uint8_t in[32] = {0};
	for (size_t i = 0; i < 3; i++) {
		for (int enc = 0; enc < 2; enc++) {
			remote_req r = {.alg = algs[i], .encrypt = enc, .key_bits = 256,
					.in = in, .inlen = sizeof(in)};
			uint8_t *out = NULL;
			size_t ol = 0;
			provider_status st = {0};
			assert_int_equal(aws_provider_ops.remote_crypt(aws, KEY, &r, &out, &ol, &st),
					 P11K_ERR_KEY_TYPE);
			assert_null(out);
			assert_non_null(strstr(st.message, "RSA-OAEP"));
		}
	}
	assert_int_equal(net.calls, 0);
}

static void test_error_mapping(void **state)
{
	(void)state;
	static const struct {
		const char *body;
		p11k_err want;
	} cases[] = {
		{"{\"__type\":\"InvalidCiphertextException\"}", P11K_ERR_INVALID_CIPHERTEXT},
		{"{\"__type\":\"InvalidKeyUsageException\",\"message\":\"Algorithm "
		 "RSAES_OAEP_SHA_256 is incompatible with key spec SYMMETRIC_DEFAULT.\"}",
		 P11K_ERR_KEY_TYPE},
		{"{\"__type\":\"ValidationException\",\"message\":\"EncryptionAlgorithm "
		 "RSAES_OAEP_SHA_1 is not supported for key spec ECC_NIST_P256\"}",
		 P11K_ERR_KEY_TYPE},
		{"{\"__type\":\"ValidationException\",\"message\":\"KeyUsage SIGN_VERIFY is not "
		 "valid\"}",
		 P11K_ERR_KEY_TYPE},
		{"{\"__type\":\"ValidationException\",\"message\":\"Algorithm RSAES_OAEP_SHA_256 "
		 "and key spec RSA_2048 cannot encrypt data larger than 190 bytes.\"}",
		 P11K_ERR_INTERNAL},
		{"{\"__type\":\"ValidationException\",\"message\":\"1 validation error detected: "
		 "Value null at 'keyId'\"}",
		 P11K_ERR_INTERNAL},
		{"{\"__type\":\"DisabledException\",\"message\":\"k is disabled.\"}",
		 P11K_ERR_KEY_DISABLED},
		{"{\"__type\":\"KMSInvalidStateException\",\"message\":\"pending deletion\"}",
		 P11K_ERR_KEY_DISABLED},
		{"{\"__type\":\"NotFoundException\",\"message\":\"nope\"}", P11K_ERR_KEY_NOT_FOUND},
		{"{\"__type\":\"AccessDeniedException\",\"Message\":\"no\"}", P11K_ERR_ACCESS_DENIED},
		{"{\"__type\":\"com.amazonaws.kms#IncorrectKeyException\",\"message\":\"x\"}",
		 P11K_ERR_INVALID_CIPHERTEXT},
	};
	uint8_t in[256] = {0};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		for (int enc = 0; enc < 2; enc++) {
			net.n = net.next = net.calls = 0;
			add(400, "%s", cases[i].body);
			remote_req r = {.alg = RALG_RSA_OAEP_SHA256, .encrypt = enc, .in = in,
					.inlen = enc ? 16 : sizeof(in)};
			uint8_t *out = NULL;
			size_t ol = 0;
			provider_status st = {0};
			p11k_err e = aws_provider_ops.remote_crypt(aws, KEY, &r, &out, &ol, &st);
			if (e != cases[i].want)
				fail_msg("case %zu (%s): got %s, want %s", i, cases[i].body,
					 p11k_err_name(e), p11k_err_name(cases[i].want));
			assert_null(out);
			assert_int_equal(st.err, e);
			assert_int_equal(st.http_status, 400);
			assert_int_equal(net.calls, 1);
		}
	}
}

/* The envelope on an RSA key: AWS refuses SYMMETRIC_DEFAULT; the module is
 * told the key is of the wrong type. */
static void test_envelope_on_rsa_key(void **state)
{
	(void)state;
	add(400, "{\"__type\":\"InvalidKeyUsageException\",\"message\":\"Algorithm "
		 "SYMMETRIC_DEFAULT is incompatible with key spec RSA_2048.\"}");
	uint8_t pt[32] = {1}, *blob = NULL;
	size_t bl = 0;
	char kv[256];
	provider_status st = {0};
	assert_int_equal(aws_provider_ops.encrypt(aws, KEY, pt, sizeof(pt), (const uint8_t *)"a", 1,
						  &blob, &bl, kv, sizeof(kv), &st),
			 P11K_ERR_KEY_TYPE);
	assert_null(blob);
	json_t *j = body_of(0);
	assert_string_equal(jstr(j, "EncryptionAlgorithm"), "SYMMETRIC_DEFAULT");
	assert_non_null(json_object_get(j, "EncryptionContext"));
	json_decref(j);
	/* The envelope itself still works on a symmetric key (refactored path);
	 * with no version asked for, one request. */
	add(200, "{\"CiphertextBlob\":\"AQIDBA==\",\"KeyId\":\"%s\"}", KEY);
	assert_int_equal(aws_provider_ops.encrypt(aws, "alias/seal", pt, sizeof(pt),
						  (const uint8_t *)"a", 1, &blob, &bl, NULL, 0,
						  &st),
			 P11K_OK);
	assert_int_equal(bl, 4);
	assert_int_equal(net.calls, 2);
	free(blob);
	add(200, "{\"Plaintext\":\"AQIDBA==\",\"KeyId\":\"%s\"}", KEY);
	uint8_t *p = NULL;
	size_t pl = 0;
	assert_int_equal(aws_provider_ops.decrypt(aws, "alias/seal", (const uint8_t *)"\1\2\3\4",
						  4, (const uint8_t *)"a", 1, &p, &pl, &st),
			 P11K_OK);
	assert_int_equal(pl, 4);
	sec_free(p);
	j = body_of(2);
	assert_string_equal(jstr(j, "EncryptionAlgorithm"), "SYMMETRIC_DEFAULT");
	assert_string_equal(jstr(json_object_get(j, "EncryptionContext"), "p11kms"), "YQ");
	json_decref(j);
}

/* --- public_key of an RSA decryption key --------------------------------------- */

static EVP_PKEY *rsa2048, *p256, *p384;

static int group_setup(void **state)
{
	(void)state;
	assert_true(crypto_init());
	setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE", 1);
	setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", 1);
	unsetenv("AWS_SESSION_TOKEN");
	unsetenv("AWS_PROFILE");
	unsetenv("AWS_ENDPOINT_URL_KMS");
	unsetenv("AWS_ENDPOINT_URL");
	rsa2048 = EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)2048);
	p256 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
	p384 = EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-384");
	return rsa2048 && p256 && p384 ? 0 : -1;
}

static int group_teardown(void **state)
{
	(void)state;
	EVP_PKEY_free(rsa2048);
	EVP_PKEY_free(p256);
	EVP_PKEY_free(p384);
	return 0;
}

/* base64 of the key's DER SubjectPublicKeyInfo (the caller frees). */
static char *spki_b64(EVP_PKEY *k)
{
	unsigned char *der = NULL;
	int n = i2d_PUBKEY(k, &der);
	assert_true(n > 0);
	char *s = b64(der, (size_t)n);
	OPENSSL_free(der);
	return s;
}

static void add_pubkey(const char *spec, const char *usage, const char *pk_b64)
{
	add(200, "{\"KeyId\":\"%s\",\"PublicKey\":\"%s\",\"KeySpec\":\"%s\","
		 "\"CustomerMasterKeySpec\":\"%s\",\"KeyUsage\":\"%s\","
		 "\"EncryptionAlgorithms\":[\"RSAES_OAEP_SHA_1\",\"RSAES_OAEP_SHA_256\"]}",
	    KEY, pk_b64, spec, spec, usage);
}

/* An RSA ENCRYPT_DECRYPT key (the module encrypts RSA-OAEP with its public
 * half): the SPKI is the key's own DER, for decryption only, no signing
 * algorithms, no version. Each call asks: the module keeps the answer,
 * not the provider. */
static void test_public_key_decrypt_key(void **state)
{
	(void)state;
	char *pk = spki_b64(rsa2048);
	size_t dl;
	uint8_t *der = fx_spki(rsa2048, &dl);
	for (int i = 0; i < 4; i++)
		add_pubkey("RSA_2048", "ENCRYPT_DECRYPT", pk);
	free(pk);

	for (int round = 0; round < 3; round++) {
		asym_public ap;
		provider_status st = {0};
		assert_int_equal(aws_provider_ops.public_key(aws, "alias/rsa", &ap, &st), P11K_OK);
		assert_int_equal(ap.spkilen, dl);
		assert_memory_equal(ap.spki, der, dl);
		assert_int_equal(ap.uses, ASYM_USE_DECRYPT);
		assert_int_equal(ap.sign_algs, 0);
		assert_string_equal(ap.version, "");
		asym_public_free(&ap);
		assert_int_equal(net.calls, round + 1);
	}
	assert_string_equal(net.target[0], "TrentService.GetPublicKey");
	json_t *j = body_of(0);
	assert_string_equal(jstr(j, "KeyId"), "alias/rsa");
	assert_int_equal(json_object_size(j), 1);
	json_decref(j);
	/* Another key id. */
	asym_public ap;
	provider_status st = {0};
	assert_int_equal(aws_provider_ops.public_key(aws, KEY, &ap, &st), P11K_OK);
	assert_int_equal(ap.uses, ASYM_USE_DECRYPT);
	assert_int_equal(net.calls, 4);
	asym_public_free(&ap);
	free(der);
}

/* What public_key refuses of an ENCRYPT_DECRYPT key: a reply whose key is
 * unreadable or not the one its spec names (BAD_REPLY), a symmetric key
 * (KEY_TYPE); the service's refusals mapped, and no failure remembered. */
static void test_public_key_decrypt_refusals(void **state)
{
	(void)state;
	char *rsa = spki_b64(rsa2048), *ec = spki_b64(p256);
	static const struct {
		const char *spec;
		int pk; /* 0 rsa, 1 ec, 2 garbage DER, 3 not base64 */
		p11k_err want;
	} cases[] = {
		{"RSA_2048", 2, P11K_ERR_BAD_REPLY},
		{"RSA_2048", 3, P11K_ERR_BAD_REPLY},
		{"RSA_2048", 1, P11K_ERR_BAD_REPLY}, /* spec says RSA, DER is EC */
		{"RSA_3072", 0, P11K_ERR_BAD_REPLY}, /* wrong size */
		{"SYMMETRIC_DEFAULT", 0, P11K_ERR_KEY_TYPE},
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		net.n = net.next = net.calls = 0;
		const char *pk = cases[i].pk == 0   ? rsa
				 : cases[i].pk == 1 ? ec
				 : cases[i].pk == 2 ? "AAECAwQFBgcICQ=="
						    : "***not base64***";
		add_pubkey(cases[i].spec, "ENCRYPT_DECRYPT", pk);
		asym_public ap;
		provider_status st = {0};
		p11k_err got = aws_provider_ops.public_key(aws, KEY, &ap, &st);
		if (got != cases[i].want)
			fail_msg("case %zu: got %s, want %s (%s)", i, p11k_err_name(got),
				 p11k_err_name(cases[i].want), st.message);
		assert_null(ap.spki);
		assert_int_equal(st.err, got);
	}
	/* A reply without PublicKey. */
	net.n = net.next = net.calls = 0;
	add(200, "{\"KeyId\":\"%s\",\"KeySpec\":\"RSA_2048\",\"KeyUsage\":\"ENCRYPT_DECRYPT\"}",
	    KEY);
	/* The symmetric key: GetPublicKey is refused by the service. */
	add(400, "{\"__type\":\"UnsupportedOperationException\",\"message\":\"%s key usage is "
		 "ENCRYPT_DECRYPT and key spec is SYMMETRIC_DEFAULT\"}", KEY);
	add(400, "{\"__type\":\"DisabledException\",\"message\":\"%s is disabled.\"}", KEY);
	/* After failures, the good answer is taken next time. */
	add_pubkey("RSA_2048", "ENCRYPT_DECRYPT", rsa);
	static const p11k_err want[] = {P11K_ERR_BAD_REPLY, P11K_ERR_KEY_TYPE,
					P11K_ERR_KEY_DISABLED, P11K_OK};
	for (size_t i = 0; i < ARRAY_SIZE(want); i++) {
		asym_public ap;
		provider_status st = {0};
		assert_int_equal(aws_provider_ops.public_key(aws, KEY, &ap, &st), want[i]);
		if (want[i] == P11K_OK) {
			assert_int_equal(ap.uses, ASYM_USE_DECRYPT);
			asym_public_free(&ap);
		} else {
			assert_null(ap.spki);
		}
	}
	assert_int_equal(net.calls, 4);
	free(rsa);
	free(ec);
}

/* --- key versions: describe and the material encrypt records ------------------ */

#define MAT1 "1111111111111111111111111111111111111111111111111111111111111111"
#define MAT2 "2222222222222222222222222222222222222222222222222222222222222222"
#define MAT3 "3333333333333333333333333333333333333333333333333333333333333333"

static void add_describe(const char *state_s, const char *mat, const char *created)
{
	char matf[128] = "";
	if (mat)
		snprintf(matf, sizeof(matf), ",\"CurrentKeyMaterialId\":\"%s\"", mat);
	add(200, "{\"KeyMetadata\":{\"KeyId\":\"1234abcd-12ab-34cd-56ef-1234567890ab\","
		 "\"Arn\":\"%s\",\"KeyState\":\"%s\",\"CreationDate\":%s%s}}",
	    KEY, state_s, created, matf);
}

static key_info describe_ok(const char *key_id)
{
	key_info ki;
	provider_status st = {0};
	p11k_err e = aws_provider_ops.describe(aws, key_id, &ki, &st);
	if (e != P11K_OK)
		fail_msg("describe: %s (%s)", p11k_err_name(e), st.message);
	return ki;
}

/* The current material's RotationDate, whatever the list's order; the
 * answer is kept, so the next describe asks DescribeKey only. */
static void test_describe_rotated_key(void **state)
{
	(void)state;
	add_describe("Enabled", MAT2, "1700000000.317");
	add(200, "{\"Rotations\":["
		 "{\"KeyId\":\"k\",\"KeyMaterialId\":\"" MAT2 "\",\"KeyMaterialState\":\"CURRENT\","
		 "\"RotationDate\":1710000000.5,\"RotationType\":\"ON_DEMAND\"},"
		 "{\"KeyId\":\"k\",\"KeyMaterialId\":\"" MAT3 "\",\"KeyMaterialState\":\"NON_CURRENT\","
		 "\"RotationDate\":1705000000,\"RotationType\":\"AUTOMATIC\"}],\"Truncated\":false}");
	key_info ki = describe_ok("alias/seal");
	assert_int_equal(ki.state, KEY_STATE_ENABLED);
	assert_string_equal(ki.key_id, KEY);
	assert_string_equal(ki.primary_version, MAT2);
	assert_int_equal(ki.created_at, 1700000000);
	assert_int_equal(ki.version_created_at, 1710000000);
	assert_int_equal(net.calls, 2);
	assert_string_equal(net.target[0], "TrentService.DescribeKey");
	assert_string_equal(net.target[1], "TrentService.ListKeyRotations");
	json_t *j = body_of(1);
	assert_string_equal(jstr(j, "KeyId"), KEY); /* the ARN: no alias there */
	assert_null(json_object_get(j, "Marker"));
	json_decref(j);
	/* Asked once per material. */
	add_describe("Enabled", MAT2, "1700000000");
	ki = describe_ok(KEY);
	assert_int_equal(ki.version_created_at, 1710000000);
	assert_int_equal(net.calls, 3);
	/* A new material is asked about again. */
	add_describe("Enabled", MAT1, "1700000000");
	add(200, "{\"Rotations\":[{\"KeyMaterialId\":\"" MAT1 "\",\"KeyMaterialState\":\"CURRENT\","
		 "\"RotationDate\":1720000000}]}");
	ki = describe_ok(KEY);
	assert_string_equal(ki.primary_version, MAT1);
	assert_int_equal(ki.version_created_at, 1720000000);
	assert_int_equal(net.calls, 5);
}

/* Never rotated: the list holds no rotation, the key's creation is the
 * material's. Also when the entries are of other materials only (imported
 * material pending rotation): the current one is still the first. */
static void test_describe_never_rotated(void **state)
{
	(void)state;
	add_describe("Enabled", MAT1, "1600000000");
	add(200, "{\"Rotations\":[],\"Truncated\":false}");
	key_info ki = describe_ok(KEY);
	assert_string_equal(ki.primary_version, MAT1);
	assert_int_equal(ki.version_created_at, 1600000000);
	add_describe("Enabled", MAT2, "1600000000");
	add(200, "{\"Rotations\":[{\"KeyMaterialId\":\"" MAT3 "\","
		 "\"KeyMaterialState\":\"PENDING_ROTATION\"}]}");
	ki = describe_ok(KEY);
	assert_int_equal(ki.version_created_at, 1600000000);
	assert_int_equal(net.calls, 4);
}

/* Replies from before key material ids: the newest rotation made the
 * current material. */
static void test_describe_legacy_rotations(void **state)
{
	(void)state;
	add_describe("Enabled", MAT1, "1600000000");
	add(200, "{\"Rotations\":[{\"KeyId\":\"k\",\"RotationDate\":1650000000,"
		 "\"RotationType\":\"AUTOMATIC\"},{\"KeyId\":\"k\",\"RotationDate\":1640000000,"
		 "\"RotationType\":\"AUTOMATIC\"}]}");
	assert_int_equal(describe_ok(KEY).version_created_at, 1650000000);
}

/* Every page is read; the current entry may be on any of them. */
static void test_describe_rotation_pages(void **state)
{
	(void)state;
	add_describe("Enabled", MAT2, "1600000000");
	add(200, "{\"Rotations\":[{\"KeyMaterialId\":\"" MAT1 "\",\"KeyMaterialState\":"
		 "\"NON_CURRENT\",\"RotationDate\":1610000000}],\"Truncated\":true,"
		 "\"NextMarker\":\"page-2\"}");
	add(200, "{\"Rotations\":[{\"KeyMaterialId\":\"" MAT2 "\",\"KeyMaterialState\":"
		 "\"CURRENT\",\"RotationDate\":1620000000}],\"Truncated\":false}");
	assert_int_equal(describe_ok(KEY).version_created_at, 1620000000);
	assert_int_equal(net.calls, 3);
	json_t *j = body_of(2);
	assert_string_equal(jstr(j, "Marker"), "page-2");
	json_decref(j);
	/* Truncated without a marker is a bad reply: the age is unknown, the
	 * key's state still answered. */
	add_describe("Enabled", MAT3, "1600000000");
	add(200, "{\"Rotations\":[],\"Truncated\":true}");
	key_info ki = describe_ok(KEY);
	assert_int_equal(ki.state, KEY_STATE_ENABLED);
	assert_int_equal(ki.version_created_at, 0);
}

/* Listing refused (no kms:ListKeyRotations): describe still says the key
 * is enabled, with the age unknown, after one request (a 400 is not
 * retried). Then a later describe asks again. */
static void test_describe_rotations_refused(void **state)
{
	(void)state;
	add_describe("Enabled", MAT1, "1600000000");
	add(400, "{\"__type\":\"AccessDeniedException\",\"Message\":\"not allowed\"}");
	key_info ki;
	provider_status st = {0};
	assert_int_equal(aws_provider_ops.describe(aws, KEY, &ki, &st), P11K_OK);
	assert_int_equal(ki.state, KEY_STATE_ENABLED);
	assert_string_equal(ki.primary_version, MAT1);
	assert_int_equal(ki.version_created_at, 0);
	assert_int_equal(net.calls, 2);
	add_describe("Enabled", MAT1, "1600000000");
	add(200, "{\"Rotations\":[]}");
	assert_int_equal(describe_ok(KEY).version_created_at, 1600000000);
	assert_int_equal(net.calls, 4);
}

/* A disabled key is not asked about its materials; an asymmetric key has
 * none and never rotates: its version is the ARN, its age the key's. */
static void test_describe_disabled_and_asymmetric(void **state)
{
	(void)state;
	add_describe("Disabled", MAT1, "1600000000");
	key_info ki = describe_ok(KEY);
	assert_int_equal(ki.state, KEY_STATE_DISABLED);
	assert_string_equal(ki.primary_version, MAT1);
	assert_int_equal(ki.version_created_at, 0);
	add_describe("PendingDeletion", MAT1, "1600000000");
	assert_int_equal(describe_ok(KEY).state, KEY_STATE_PENDING_DELETION);
	add_describe("Enabled", NULL, "1600000000");
	ki = describe_ok(KEY);
	assert_string_equal(ki.primary_version, KEY);
	assert_int_equal(ki.version_created_at, 1600000000);
	assert_int_equal(net.calls, 3);
	/* A material id that is not 64 hex digits is a bad reply. */
	add_describe("Enabled", "not-a-material-id", "1600000000");
	provider_status st = {0};
	assert_int_equal(aws_provider_ops.describe(aws, KEY, &ki, &st), P11K_ERR_BAD_REPLY);
}

static p11k_err seal(uint8_t **blob, size_t *bl, char *kv, size_t kvlen, provider_status *st)
{
	static const uint8_t tk[32] = {9, 8, 7};
	return aws_provider_ops.encrypt(aws, "alias/seal", tk, sizeof(tk), (const uint8_t *)"ctx",
					3, blob, bl, kv, kvlen, st);
}

/* base64 of the TK seal() encrypts. */
static char *tk_b64(void)
{
	static const uint8_t tk[32] = {9, 8, 7};
	return b64(tk, sizeof(tk));
}

/* Encrypt's reply names no key material: Decrypt of the new blob does, and
 * that id is the version; the blob must open to what was sealed. */
static void test_encrypt_records_key_material(void **state)
{
	(void)state;
	char kv[128], *tk = tk_b64();
	uint8_t *blob = NULL;
	size_t bl = 0;
	provider_status st = {0};
	add(200, "{\"CiphertextBlob\":\"AQIDBA==\",\"KeyId\":\"%s\","
		 "\"EncryptionAlgorithm\":\"SYMMETRIC_DEFAULT\"}", KEY);
	add(200, "{\"Plaintext\":\"%s\",\"KeyId\":\"%s\",\"KeyMaterialId\":\"" MAT2 "\"}", tk, KEY);
	assert_int_equal(seal(&blob, &bl, kv, sizeof(kv), &st), P11K_OK);
	assert_string_equal(kv, MAT2);
	assert_int_equal(bl, 4);
	free(blob);
	assert_int_equal(net.calls, 2);
	assert_string_equal(net.target[1], "TrentService.Decrypt");
	json_t *j = body_of(1);
	assert_string_equal(jstr(j, "CiphertextBlob"), "AQIDBA==");
	assert_string_equal(jstr(j, "KeyId"), KEY);
	assert_string_equal(jstr(json_object_get(j, "EncryptionContext"), "p11kms"), "Y3R4");
	json_decref(j);

	/* A reply that names the material is taken as it is: one request. */
	add(200, "{\"CiphertextBlob\":\"AQIDBA==\",\"KeyId\":\"%s\",\"KeyMaterialId\":\"" MAT3 "\"}", KEY);
	assert_int_equal(seal(&blob, &bl, kv, sizeof(kv), &st), P11K_OK);
	assert_string_equal(kv, MAT3);
	free(blob);
	assert_int_equal(net.calls, 3);

	/* No material named anywhere: the key ARN, as describe says then. */
	add(200, "{\"CiphertextBlob\":\"AQIDBA==\",\"KeyId\":\"%s\"}", KEY);
	add(200, "{\"Plaintext\":\"%s\",\"KeyId\":\"%s\"}", tk, KEY);
	assert_int_equal(seal(&blob, &bl, kv, sizeof(kv), &st), P11K_OK);
	assert_string_equal(kv, KEY);
	free(blob);

	/* Decrypt refused: the blob is still good, the version is the ARN. */
	add(200, "{\"CiphertextBlob\":\"AQIDBA==\",\"KeyId\":\"%s\"}", KEY);
	add(400, "{\"__type\":\"AccessDeniedException\",\"Message\":\"no decrypt\"}");
	assert_int_equal(seal(&blob, &bl, kv, sizeof(kv), &st), P11K_OK);
	assert_string_equal(kv, KEY);
	assert_int_equal(bl, 4);
	free(blob);

	/* A blob that opens to other bytes is refused. */
	add(200, "{\"CiphertextBlob\":\"AQIDBA==\",\"KeyId\":\"%s\"}", KEY);
	add(200, "{\"Plaintext\":\"b3RoZXI=\",\"KeyId\":\"%s\",\"KeyMaterialId\":\"" MAT2 "\"}", KEY);
	blob = NULL;
	assert_int_equal(seal(&blob, &bl, kv, sizeof(kv), &st), P11K_ERR_BAD_REPLY);
	assert_null(blob);
	assert_int_equal(st.err, P11K_ERR_BAD_REPLY);
	free(tk);
}

/* --- configuration ------------------------------------------------------------- */

static void test_default_seal_key(void **state)
{
	(void)state;
	p11k_err e;
	void *s = make("{\"region\": \"us-east-1\", \"endpoint\": \"" ENDPOINT "\", \"keys\": ["
		       "{\"id\": \"alias/rsa\", \"type\": \"rsa\"},"
		       "{\"id\": \"alias/sym\", \"label\": \"sym\"},"
		       "{\"id\": \"alias/sym2\"}]}", &e);
	assert_int_equal(e, P11K_OK);
	assert_string_equal(aws_provider_ops.default_seal_key(s), "alias/sym");
	aws_provider_ops.destroy(s);
	s = make("{\"region\": \"us-east-1\", \"endpoint\": \"" ENDPOINT "\", \"keys\": ["
		 "{\"id\": \"alias/rsa\", \"type\": \"rsa\"},"
		 "{\"id\": \"alias/env\", \"type\": \"envelope\"}]}", &e);
	assert_int_equal(e, P11K_OK);
	assert_string_equal(aws_provider_ops.default_seal_key(s), "alias/env");
	aws_provider_ops.destroy(s);
	/* Only an RSA key and no seal_with: nothing can seal. */
	s = make("{\"region\": \"us-east-1\", \"endpoint\": \"" ENDPOINT "\", \"keys\": ["
		 "{\"id\": \"alias/rsa\", \"type\": \"rsa\"}]}", &e);
	assert_int_equal(e, P11K_ERR_KEY_NOT_FOUND);
	assert_null(s);
	/* seal_with still wins. */
	s = make("{\"region\": \"us-east-1\", \"endpoint\": \"" ENDPOINT "\", "
		 "\"seal_with\": \"alias/x\", \"keys\": [{\"id\": \"alias/rsa\", \"type\": \"rsa\"}]}",
		 &e);
	assert_int_equal(e, P11K_OK);
	assert_string_equal(aws_provider_ops.default_seal_key(s), "alias/x");
	aws_provider_ops.destroy(s);
}

/* --- public_key and sign ------------------------------------------------------------ */

static void add_asym(const char *key_id, const char *spec, const char *usage, const char *pk,
		     const char *algs)
{
	add(200, "{\"KeyId\":\"%s\",\"PublicKey\":\"%s\",\"KeySpec\":\"%s\",\"KeyUsage\":\"%s\","
		 "\"SigningAlgorithms\":%s}", key_id, pk, spec, usage, algs);
}

static p11k_err public_key(const char *key_id, asym_public *out, provider_status *st)
{
	memset(st, 0, sizeof(*st));
	return aws_provider_ops.public_key(aws, key_id, out, st);
}

/* Each key kind: the SPKI is the key's own DER, the usage and algorithms
 * the service names (those of another kind dropped), no version; the
 * request names the key and nothing else. */
static void test_public_key_kinds(void **state)
{
	(void)state;
	static const struct {
		int key; /* 0 RSA-2048, 1 P-256, 2 P-384 */
		const char *spec, *usage, *algs;
		unsigned uses, want;
	} cases[] = {
		{0, "RSA_2048", "SIGN_VERIFY",
		 "[\"RSASSA_PSS_SHA_256\",\"RSASSA_PSS_SHA_384\",\"RSASSA_PSS_SHA_512\","
		 "\"RSASSA_PKCS1_V1_5_SHA_256\",\"RSASSA_PKCS1_V1_5_SHA_384\","
		 "\"RSASSA_PKCS1_V1_5_SHA_512\"]",
		 ASYM_USE_SIGN, SALG_BIT(SALG_RSA_PSS_SHA256) | SALG_BIT(SALG_RSA_PSS_SHA384) |
					SALG_BIT(SALG_RSA_PSS_SHA512) |
					SALG_BIT(SALG_RSA_PKCS1_SHA256) |
					SALG_BIT(SALG_RSA_PKCS1_SHA384) |
					SALG_BIT(SALG_RSA_PKCS1_SHA512)},
		{0, "RSA_2048", "SIGN_VERIFY", "[\"RSASSA_PSS_SHA_256\",\"ECDSA_SHA_256\"]",
		 ASYM_USE_SIGN, SALG_BIT(SALG_RSA_PSS_SHA256)},
		{0, "RSA_2048", "ENCRYPT_DECRYPT", "null", ASYM_USE_DECRYPT, 0},
		{1, "ECC_NIST_P256", "SIGN_VERIFY", "[\"ECDSA_SHA_256\",\"ECDSA_SHA_384\"]",
		 ASYM_USE_SIGN, SALG_BIT(SALG_ECDSA_SHA256)},
		{2, "ECC_NIST_P384", "SIGN_VERIFY", "[\"ECDSA_SHA_384\",\"ECDSA_SHA_512\"]",
		 ASYM_USE_SIGN, SALG_BIT(SALG_ECDSA_SHA384)},
	};
	EVP_PKEY *keys[] = {rsa2048, p256, p384};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		size_t dl;
		uint8_t *der = fx_spki(keys[cases[i].key], &dl);
		char *pk = spki_b64(keys[cases[i].key]);
		asym_public ap;
		provider_status st;
		net.n = net.next = net.calls = 0;
		add_asym(KEY, cases[i].spec, cases[i].usage, pk, cases[i].algs);
		assert_int_equal(aws_provider_ops.public_key(aws, "alias/sign", &ap, &st), P11K_OK);
		assert_int_equal(ap.spkilen, dl);
		assert_memory_equal(ap.spki, der, dl);
		assert_int_equal(ap.uses, cases[i].uses);
		assert_int_equal(ap.sign_algs, cases[i].want);
		assert_string_equal(ap.version, "");
		assert_string_equal(st.request_id, "req-0");
		assert_string_equal(net.target[0], "TrentService.GetPublicKey");
		json_t *j = body_of(0);
		assert_string_equal(jstr(j, "KeyId"), "alias/sign");
		assert_int_equal(json_object_size(j), 1);
		json_decref(j);
		asym_public_free(&ap);
		free(der);
		free(pk);
	}
}

/* What public_key refuses: a key of another kind or purpose (KEY_TYPE), a
 * reply that contradicts itself or names another key (BAD_REPLY). */
static void test_public_key_refusals(void **state)
{
	(void)state;
	char *rsa = spki_b64(rsa2048), *ec = spki_b64(p256);
	char big[5000];
	memset(big, 'A', sizeof(big) - 1);
	big[sizeof(big) - 1] = 0;
	static const char *const sig256 = "[\"RSASSA_PSS_SHA_256\"]";
	const struct {
		const char *id, *spec, *usage, *pk, *algs;
		p11k_err want;
	} cases[] = {
		{KEY, "HMAC_256", "GENERATE_VERIFY_MAC", rsa, "null", P11K_ERR_KEY_TYPE},
		{KEY, "ECC_SECG_P256K1", "SIGN_VERIFY", ec, "[\"ECDSA_SHA_256\"]", P11K_ERR_KEY_TYPE},
		{KEY, "ECC_NIST_P521", "SIGN_VERIFY", ec, "[\"ECDSA_SHA_512\"]", P11K_ERR_KEY_TYPE},
		{KEY, "ECC_NIST_P256", "ENCRYPT_DECRYPT", ec, "null", P11K_ERR_KEY_TYPE},
		{KEY, "ECC_NIST_P256", "KEY_AGREEMENT", ec, "null", P11K_ERR_KEY_TYPE},
		{KEY, "RSA_2048", "SIGN_VERIFY", rsa, "[\"SM2DSA\"]", P11K_ERR_KEY_TYPE},
		{KEY, "RSA_3072", "SIGN_VERIFY", rsa, sig256, P11K_ERR_BAD_REPLY},
		{KEY, "ECC_NIST_P384", "SIGN_VERIFY", ec, "[\"ECDSA_SHA_384\"]", P11K_ERR_BAD_REPLY},
		{KEY, "ECC_NIST_P256", "SIGN_VERIFY", rsa, "[\"ECDSA_SHA_256\"]", P11K_ERR_BAD_REPLY},
		{KEY, "RSA_2048", "SIGN_VERIFY", "bm90IGEga2V5", sig256, P11K_ERR_BAD_REPLY},
		{KEY, "RSA_2048", "SIGN_VERIFY", "!!", sig256, P11K_ERR_BAD_REPLY},
		{KEY, "RSA_2048", "SIGN_VERIFY", big, sig256, P11K_ERR_BAD_REPLY},
		{KEY, "RSA_2048", "SIGN_VERIFY", rsa, "\"RSASSA_PSS_SHA_256\"", P11K_ERR_BAD_REPLY},
		{KEY, "RSA_2048", "SIGN_VERIFY", rsa, "[7]", P11K_ERR_BAD_REPLY},
		{"arn:aws:kms:us-east-1:111122223333:key/other", "RSA_2048", "SIGN_VERIFY", rsa,
		 sig256, P11K_ERR_BAD_REPLY},
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		asym_public ap;
		provider_status st;
		net.n = net.next = net.calls = 0;
		add_asym(cases[i].id, cases[i].spec, cases[i].usage, cases[i].pk, cases[i].algs);
		p11k_err e = aws_provider_ops.public_key(aws, KEY, &ap, &st);
		if (e != cases[i].want)
			fail_msg("case %zu: got %s, want %s (%s)", i, p11k_err_name(e),
				 p11k_err_name(cases[i].want), st.message);
		assert_null(ap.spki);
		assert_int_equal(st.err, e);
		assert_true(st.message[0]);
	}
	/* Asked by key id, the ARN must end in it; asked by ARN, be it. */
	asym_public ap;
	provider_status st;
	net.n = net.next = net.calls = 0;
	add_asym(KEY, "RSA_2048", "SIGN_VERIFY", rsa, sig256);
	assert_int_equal(aws_provider_ops.public_key(aws, "1234abcd-12ab-34cd-56ef-1234567890ab",
						      &ap, &st), P11K_OK);
	asym_public_free(&ap);
	net.n = net.next = net.calls = 0;
	add_asym(KEY, "RSA_2048", "SIGN_VERIFY", rsa, sig256);
	assert_int_equal(aws_provider_ops.public_key(aws, "1234abcd", &ap, &st),
			 P11K_ERR_BAD_REPLY);
	/* A symmetric key: GetPublicKey says UnsupportedOperationException. */
	net.n = net.next = net.calls = 0;
	add(400, "{\"__type\":\"UnsupportedOperationException\",\"message\":\"x\"}");
	assert_int_equal(public_key(KEY, &ap, &st), P11K_ERR_KEY_TYPE);
	add(200, "not json");
	assert_int_equal(public_key(KEY, &ap, &st), P11K_ERR_BAD_REPLY);
	add(200, "{\"KeyId\":\"%s\",\"KeySpec\":\"RSA_2048\",\"KeyUsage\":\"SIGN_VERIFY\"}", KEY);
	assert_int_equal(public_key(KEY, &ap, &st), P11K_ERR_BAD_REPLY);
	free(rsa);
	free(ec);
}

static p11k_err sign(const char *key_id, sign_alg a, const uint8_t *d, size_t dl, uint8_t **sig,
		     size_t *sl, provider_status *st)
{
	memset(st, 0, sizeof(*st));
	return aws_provider_ops.sign(aws, key_id, "", a, d, dl, sig, sl, st);
}

static void add_sig(const char *id, const char *alg, const uint8_t *sig, size_t sl)
{
	char *sb = b64(sig, sl);
	add(200, "{\"KeyId\":\"%s\",\"Signature\":\"%s\",\"SigningAlgorithm\":\"%s\"}", id, sb,
	    alg);
	free(sb);
}

/* RSA: the request is the digest with MessageType DIGEST and the
 * algorithm's name; the signature comes back as it is. */
static void test_sign_rsa(void **state)
{
	(void)state;
	static const struct {
		sign_alg a;
		const char *name;
		size_t dl;
	} cases[] = {
		{SALG_RSA_PKCS1_SHA256, "RSASSA_PKCS1_V1_5_SHA_256", 32},
		{SALG_RSA_PKCS1_SHA512, "RSASSA_PKCS1_V1_5_SHA_512", 64},
		{SALG_RSA_PSS_SHA256, "RSASSA_PSS_SHA_256", 32},
		{SALG_RSA_PSS_SHA384, "RSASSA_PSS_SHA_384", 48},
	};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		uint8_t d[64], sigv[256];
		memset(d, (int)(0x30 + i), sizeof(d));
		for (size_t k = 0; k < sizeof(sigv); k++)
			sigv[k] = (uint8_t)(k ^ i);
		net.n = net.next = net.calls = 0;
		add_sig(KEY, cases[i].name, sigv, sizeof(sigv));
		uint8_t *sig = NULL;
		size_t sl = 0;
		provider_status st;
		assert_int_equal(sign("alias/sign", cases[i].a, d, cases[i].dl, &sig, &sl, &st),
				 P11K_OK);
		assert_int_equal(sl, sizeof(sigv));
		assert_memory_equal(sig, sigv, sl);
		free(sig);
		assert_string_equal(st.request_id, "req-0");
		assert_string_equal(net.target[0], "TrentService.Sign");
		json_t *j = body_of(0);
		char *db = b64(d, cases[i].dl);
		assert_string_equal(jstr(j, "KeyId"), "alias/sign");
		assert_string_equal(jstr(j, "Message"), db);
		assert_string_equal(jstr(j, "MessageType"), "DIGEST");
		assert_string_equal(jstr(j, "SigningAlgorithm"), cases[i].name);
		assert_int_equal(json_object_size(j), 4);
		free(db);
		json_decref(j);
	}
}

/* ECDSA: DER -> r||s of the curve's width, including an r whose DER needs
 * a 0x00 and an s shorter than the curve; and a real signature of the
 * test key, checked with OpenSSL after the round trip. */
static void test_sign_ecdsa(void **state)
{
	(void)state;
	for (int c = 0; c < 2; c++) {
		size_t half = c ? 48 : 32;
		uint8_t rs[96], der[120], d[48];
		fx_awkward_rs(rs, half);
		size_t n = fx_ecdsa_der(rs, half, der);
		memset(d, 7, sizeof(d));
		net.n = net.next = net.calls = 0;
		add_sig(KEY, c ? "ECDSA_SHA_384" : "ECDSA_SHA_256", der, n);
		uint8_t *sig = NULL;
		size_t sl = 0;
		provider_status st;
		assert_int_equal(sign(KEY, c ? SALG_ECDSA_SHA384 : SALG_ECDSA_SHA256, d, half, &sig,
				      &sl, &st),
				 P11K_OK);
		assert_int_equal(sl, 2 * half);
		assert_memory_equal(sig, rs, sl);
		free(sig);
	}
	/* A real signature of a digest with the P-256 key. */
	uint8_t d[32], der[80];
	memset(d, 0x42, sizeof(d));
	EVP_PKEY_CTX *c = EVP_PKEY_CTX_new(p256, NULL);
	size_t dl = sizeof(der);
	assert_true(c && EVP_PKEY_sign_init(c) == 1 && EVP_PKEY_sign(c, der, &dl, d, 32) == 1);
	net.n = net.next = net.calls = 0;
	add_sig(KEY, "ECDSA_SHA_256", der, dl);
	uint8_t *sig = NULL, *back = NULL;
	size_t sl = 0, bl = 0;
	provider_status st;
	assert_int_equal(sign(KEY, SALG_ECDSA_SHA256, d, 32, &sig, &sl, &st), P11K_OK);
	assert_true(ecdsa_rs_to_der(sig, 32, &back, &bl));
	assert_true(EVP_PKEY_verify_init(c) == 1);
	assert_int_equal(EVP_PKEY_verify(c, back, bl, d, 32), 1);
	EVP_PKEY_CTX_free(c);
	free(sig);
	free(back);
}

/* The service's errors, and replies that are not the signature asked for. */
static void test_sign_errors(void **state)
{
	(void)state;
	static const struct {
		long status;
		const char *body;
		p11k_err want;
	} cases[] = {
		{400, "{\"__type\":\"InvalidKeyUsageException\",\"message\":\"KeyUsage "
		      "ENCRYPT_DECRYPT is not compatible with Sign\"}", P11K_ERR_KEY_TYPE},
		{400, "{\"__type\":\"DisabledException\",\"message\":\"k is disabled.\"}",
		 P11K_ERR_KEY_DISABLED},
		{400, "{\"__type\":\"KMSInvalidStateException\",\"message\":\"k is pending "
		      "deletion.\"}", P11K_ERR_KEY_DISABLED},
		{400, "{\"__type\":\"NotFoundException\",\"message\":\"no key\"}",
		 P11K_ERR_KEY_NOT_FOUND},
		{400, "{\"__type\":\"ValidationException\",\"message\":\"SigningAlgorithm "
		      "RSASSA_PSS_SHA_256 is not supported for key spec ECC_NIST_P256\"}",
		 P11K_ERR_KEY_TYPE},
		{200, "{\"KeyId\":\"" KEY "\",\"Signature\":\"AAAA\",\"SigningAlgorithm\":"
		      "\"RSASSA_PSS_SHA_384\"}", P11K_ERR_BAD_REPLY},
		{200, "{\"KeyId\":\"arn:aws:kms:us-east-1:1:key/x\",\"Signature\":\"AAAA\","
		      "\"SigningAlgorithm\":\"RSASSA_PSS_SHA_256\"}", P11K_ERR_BAD_REPLY},
		{200, "{\"KeyId\":\"" KEY "\",\"Signature\":\"AAAA\",\"SigningAlgorithm\":"
		      "\"RSASSA_PSS_SHA_256\"}", P11K_ERR_BAD_REPLY}, /* 3 bytes */
		{200, "{\"KeyId\":\"" KEY "\",\"SigningAlgorithm\":\"RSASSA_PSS_SHA_256\"}",
		 P11K_ERR_BAD_REPLY},
		{200, "{\"KeyId\":\"" KEY "\",\"Signature\":7,\"SigningAlgorithm\":"
		      "\"RSASSA_PSS_SHA_256\"}", P11K_ERR_BAD_REPLY},
		{200, "[]", P11K_ERR_BAD_REPLY},
	};
	uint8_t d[32] = {1};
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		net.n = net.next = net.calls = 0;
		add(cases[i].status, "%s", cases[i].body);
		uint8_t *sig = NULL;
		size_t sl = 0;
		provider_status st;
		p11k_err e = sign(KEY, SALG_RSA_PSS_SHA256, d, 32, &sig, &sl, &st);
		if (e != cases[i].want)
			fail_msg("case %zu: got %s, want %s (%s)", i, p11k_err_name(e),
				 p11k_err_name(cases[i].want), st.message);
		assert_null(sig);
		assert_int_equal(st.err, e);
	}
	/* ECDSA replies that are not a strict DER signature of the curve. */
	static const char *const bad_der[] = {
		"MAYCAQECAQEA",     /* a byte after the SEQUENCE */
		"MAYCAQACAQE=",     /* r = 0 */
		"MIACAQECAQEAAA==", /* indefinite length (BER) */
		"MAcCAgABAgEB",     /* r with a needless leading 0x00 */
		"MAYCAQECAYE=",     /* s negative */
	};
	for (size_t i = 0; i < ARRAY_SIZE(bad_der); i++) {
		net.n = net.next = net.calls = 0;
		add(200, "{\"KeyId\":\"%s\",\"Signature\":\"%s\",\"SigningAlgorithm\":"
			 "\"ECDSA_SHA_256\"}", KEY, bad_der[i]);
		uint8_t *sig = NULL;
		size_t sl = 0;
		provider_status st;
		assert_int_equal(sign(KEY, SALG_ECDSA_SHA256, d, 32, &sig, &sl, &st),
				 P11K_ERR_BAD_REPLY);
		assert_null(sig);
	}
	/* An r wider than the curve. */
	uint8_t rs[96], der[120];
	fx_awkward_rs(rs, 48);
	size_t n = fx_ecdsa_der(rs, 48, der);
	net.n = net.next = net.calls = 0;
	add_sig(KEY, "ECDSA_SHA_256", der, n);
	uint8_t *sig = NULL;
	size_t sl = 0;
	provider_status st;
	assert_int_equal(sign(KEY, SALG_ECDSA_SHA256, d, 32, &sig, &sl, &st), P11K_ERR_BAD_REPLY);
	/* Caller bugs are refused before any request. */
	net.n = net.next = net.calls = 0;
	assert_int_equal(sign(KEY, SALG_ECDSA_SHA384, d, 32, &sig, &sl, &st), P11K_ERR_INTERNAL);
	assert_int_equal(sign(KEY, (sign_alg)0, d, 32, &sig, &sl, &st), P11K_ERR_INTERNAL);
	assert_int_equal(aws_provider_ops.sign(aws, KEY, "v2", SALG_ECDSA_SHA256, d, 32, &sig, &sl,
					       &st),
			 P11K_ERR_INTERNAL);
	assert_int_equal(net.calls, 0);
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_encrypt_body, setup, teardown),
		cmocka_unit_test_setup_teardown(test_decrypt_body, setup, teardown),
		cmocka_unit_test_setup_teardown(test_unsupported_algs, setup, teardown),
		cmocka_unit_test_setup_teardown(test_error_mapping, setup, teardown),
		cmocka_unit_test_setup_teardown(test_envelope_on_rsa_key, setup, teardown),
		cmocka_unit_test_setup_teardown(test_public_key_decrypt_key, setup, teardown),
		cmocka_unit_test_setup_teardown(test_public_key_decrypt_refusals, setup, teardown),
		cmocka_unit_test_setup_teardown(test_default_seal_key, setup, teardown),
		cmocka_unit_test_setup_teardown(test_describe_rotated_key, setup, teardown),
		cmocka_unit_test_setup_teardown(test_describe_never_rotated, setup, teardown),
		cmocka_unit_test_setup_teardown(test_describe_legacy_rotations, setup, teardown),
		cmocka_unit_test_setup_teardown(test_describe_rotation_pages, setup, teardown),
		cmocka_unit_test_setup_teardown(test_describe_rotations_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_describe_disabled_and_asymmetric, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_encrypt_records_key_material, setup, teardown),
		cmocka_unit_test_setup_teardown(test_public_key_kinds, setup, teardown),
		cmocka_unit_test_setup_teardown(test_public_key_refusals, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sign_rsa, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sign_ecdsa, setup, teardown),
		cmocka_unit_test_setup_teardown(test_sign_errors, setup, teardown),
	};
	return cmocka_run_group_tests_name("aws_provider", tests, group_setup, group_teardown);
}
