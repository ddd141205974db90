/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The cloud providers' reply parsers: every HTTP reply (token endpoints,
 * KMS operations, error bodies) comes from a fake transport that answers
 * with the fuzz input. Byte 0 picks the provider, the operation and (for
 * the standard algorithms) the algorithm; byte 1 the HTTP status and the
 * direction; the rest is the body (and, for decryption, also the input).
 * Byte 0 below 180 picks describe, encrypt, decrypt, remote_crypt or
 * public_key; from 180 on the signing-key operations: public_key, sign
 * under the key id, sign under a version (each provider's form of one),
 * and the signing algorithm.
 * Nothing may crash, leak or read out of bounds; every failure must be an
 * error code, never a result.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "fuzz_common.h"
#include "common/crypto.h"
#include "common/secmem.h"
#include "providers/azure/azure.h"
#include "providers/common/codec.h"
#include "providers/common/http.h"
#include "providers/gcp/gcp.h"
#include "providers/provider.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

typedef struct reply {
	long status;
	const uint8_t *body;
	size_t len;
} reply;

static p11k_err fake(void *arg, const http_request *req, http_response *resp,
		     provider_status *st)
{
	const reply *r = arg;
	(void)req;
	(void)st;
	resp->status = r->status;
	if (!dbuf_add(&resp->body, r->body, r->len))
		return P11K_ERR_BAD_REPLY;
	return P11K_OK;
}

static void no_sleep(void *arg, long ms)
{
	(void)arg;
	(void)ms;
}

static const long statuses[] = {200, 400, 401, 403, 404, 409, 429, 500, 503};

static void *make(const provider_ops *ops, const char *json)
{
	json_error_t je;
	json_t *cfg = json_loads(json, 0, &je);
	void *st = NULL;
	char why[512];
	FUZZ_CHECK(cfg != NULL);
	p11k_err e = ops->create(cfg, "fuzz.json", &st, why, sizeof(why));
	json_decref(cfg);
	FUZZ_CHECK(e == P11K_OK);
	return st;
}

/* public_key: whatever the reply, a success is a checked, non-empty SPKI
 * with uses and signing algorithms in range. */
static void fuzz_public_key(const provider_ops *ops, void *state, const char *key,
			    provider_status *st)
{
	asym_public ap;
	if (ops->public_key(state, key, &ap, st) == P11K_OK) {
		spki_desc d;
		char why[160];
		FUZZ_CHECK(ap.spki && ap.spkilen &&
			   spki_check(ap.spki, ap.spkilen, &d, why, sizeof(why)) == P11K_OK);
		FUZZ_CHECK(ap.uses && (ap.uses & ~(ASYM_USE_SIGN | ASYM_USE_DECRYPT)) == 0);
		FUZZ_CHECK(ap.sign_algs < SALG_BIT(SALG_COUNT_) && !(ap.sign_algs & 1));
		asym_public_free(&ap);
	}
}

/* public_key and sign: whatever the reply, a success is a usable answer. */
static void fuzz_signing(const provider_ops *ops, void *state, int which, uint8_t b,
			 provider_status *st)
{
#define GCP_KEY "projects/p/locations/l/keyRings/r/cryptoKeys/k"
	static const char *const keys[] = {"alias/x", "k", GCP_KEY};
	static const char *const versions[] = {"", "0698c2156c1a4e1da5b6bab6f6422fd6",
					       GCP_KEY "/cryptoKeyVersions/1"};
	unsigned k = (unsigned)(b - 180) / 3;
	int op = (int)(k % 3);
	sign_alg alg = (sign_alg)(1 + (k / 3) % (SALG_COUNT_ - 1));
	if (op == 0) {
		fuzz_public_key(ops, state, keys[which], st);
		return;
	}
	uint8_t digest[64], *sig = NULL;
	size_t sl = 0, half = salg_ec_half(alg);
	memset(digest, 0x5c, sizeof(digest));
	if (ops->sign(state, keys[which], op == 2 ? versions[which] : "", alg, digest,
		      salg_digest_len(alg), &sig, &sl, st) == P11K_OK)
		FUZZ_CHECK(sig && (half ? sl == 2 * half : sl >= 256 && sl <= 512));
	else
		FUZZ_CHECK(sig == NULL);
	free(sig);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static bool ready;
	static void *aws, *azure, *gcp;
	extern const provider_ops aws_provider_ops, azure_provider_ops;
	if (!ready) {
		const char *dir = fuzz_tmpdir();
		char secret[300], cfg[1024];
		FUZZ_CHECK(crypto_init());
		log_configure(LOG_ERROR, "/dev/null");
		setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE", 1);
		setenv("AWS_SECRET_ACCESS_KEY", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY", 1);
		setenv("HOME", dir, 1);
		unsetenv("GOOGLE_APPLICATION_CREDENTIALS");
		snprintf(secret, sizeof(secret), "%s/secret", dir);
		FILE *f = fopen(secret, "w");
		FUZZ_CHECK(f != NULL);
		fputs("not-a-real-secret", f);
		fclose(f);
		aws = make(&aws_provider_ops, "{\"region\": \"us-east-1\", \"endpoint\": "
					      "\"https://kms.invalid\", \"seal_with\": \"alias/x\"}");
		snprintf(cfg, sizeof(cfg),
			 "{\"vault_url\": \"https://v.vault.azure.net\", \"tenant_id\": \"t\", "
			 "\"client_id\": \"c\", \"client_secret_file\": \"%s\", "
			 "\"seal_with\": \"k\"}",
			 secret);
		azure = make(&azure_provider_ops, cfg);
		gcp = make(&gcp_provider_ops,
			   "{\"endpoint\": \"https://kms.invalid\", \"metadata_host\": "
			   "\"127.0.0.1:1\", \"seal_with\": "
			   "\"projects/p/locations/l/keyRings/r/cryptoKeys/k\"}");
		ready = true;
	}
	if (size < 2)
		return 0;
	reply r = {statuses[data[1] % ARRAY_SIZE(statuses)], data + 2, size - 2};
	aws_provider_ops.test_set_transport(aws, fake, &r, no_sleep);
	azure_provider_ops.test_set_transport(azure, fake, &r, no_sleep);
	gcp_provider_ops.test_set_transport(gcp, fake, &r, no_sleep);

	const provider_ops *ops[] = {&aws_provider_ops, &azure_provider_ops, &gcp_provider_ops};
	void *states[] = {aws, azure, gcp};
	const char *keys[] = {"alias/x", "k", "projects/p/locations/l/keyRings/r/cryptoKeys/k"};
	int which = data[0] % 3, op = (data[0] / 3) % 5;
	provider_status st = {0};
	const uint8_t aad[] = "context";
	if (data[0] >= 180) {
		fuzz_signing(ops[which], states[which], which, data[0], &st);
		return 0;
	}
	if (op == 0) {
		key_info ki;
		(void)ops[which]->describe(states[which], keys[which], &ki, &st);
	} else if (op == 1) {
		uint8_t *blob = NULL;
		size_t bl = 0;
		char kv[128];
		static const uint8_t pt[32] = {1, 2, 3};
		p11k_err e = ops[which]->encrypt(states[which], keys[which], pt, sizeof(pt), aad,
						 sizeof(aad), &blob, &bl, kv, sizeof(kv), &st);
		FUZZ_CHECK(e != P11K_OK || blob != NULL);
		free(blob);
	} else if (op == 2) {
		uint8_t *pt = NULL;
		size_t pl = 0;
		p11k_err e = ops[which]->decrypt(states[which], keys[which], data + 2, size - 2,
						 aad, sizeof(aad), &pt, &pl, &st);
		FUZZ_CHECK(e != P11K_OK || pt != NULL || pl == 0);
		sec_free(pt);
	} else if (op == 3 && ops[which]->remote_crypt) {
		static const remote_alg algs[] = {RALG_RSA_OAEP_SHA1, RALG_RSA_OAEP_SHA256,
						  RALG_AES_KW, RALG_AES_KWP, RALG_AES_GCM};
		static const uint8_t pt[32] = {4, 5, 6};
		bool enc = (data[1] / ARRAY_SIZE(statuses)) & 1;
		remote_alg a = algs[(data[0] / 15) % 5];
		/* AAD only where the algorithm takes it (AES-GCM): the
		 * providers refuse it elsewhere before any request. */
		remote_req rq = {.alg = a, .encrypt = enc,
				 .key_op = (data[1] / (2 * ARRAY_SIZE(statuses))) & 1,
				 .key_bits = 256, .in = enc ? pt : data + 2,
				 .inlen = enc ? sizeof(pt) : size - 2,
				 .aad = a == RALG_AES_GCM ? aad : NULL,
				 .aadlen = a == RALG_AES_GCM ? sizeof(aad) : 0};
		uint8_t *out = NULL;
		size_t ol = 0;
		p11k_err e = ops[which]->remote_crypt(states[which], keys[which], &rq, &out, &ol,
						      &st);
		FUZZ_CHECK(e != P11K_OK || out != NULL || ol == 0);
		sec_free(out);
	} else if (op == 4) {
		/* The public half the module reads of every asymmetric key
		 * (for RSA-OAEP encryption as well as for verification). */
		fuzz_public_key(ops[which], states[which], keys[which], &st);
	}
	return 0;
}
