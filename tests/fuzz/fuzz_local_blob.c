/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The local provider's blob format (providers/local/local.c) through its
 * ops table, with a fixed key file in a scratch folder. Input layout:
 *   flags (1 byte): bit 0 puts the key's real fingerprint into the blob
 *     header so the fuzzer reaches AES-GCM; bit 1 also seals the blob
 *     bytes as plaintext and checks they open again, and that a flipped
 *     bit does not.
 *   aad length (1 byte, at most what is left), aad, then the blob.
 */
#include <fcntl.h>
#include <stdint.h>
#include <sys/stat.h>

#include "fuzz_common.h"
#include "common/crypto.h"
#include "common/secmem.h"
#include "providers/provider.h"

extern const provider_ops local_provider_ops;
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define FP_OFF 5
#define FP_LEN 8

static void *state;
static uint8_t fp[FP_LEN];

static void setup(void)
{
	char path[512], why[256];
	uint8_t key[32];
	fuzz_quiet_log();
	FUZZ_CHECK(crypto_init());
	for (int i = 0; i < 32; i++)
		key[i] = (uint8_t)(0xa0 + i);
	snprintf(path, sizeof(path), "%s/local.key", fuzz_tmpdir());
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	FUZZ_CHECK(fd >= 0 && write(fd, key, sizeof(key)) == (ssize_t)sizeof(key));
	close(fd);
	json_t *cfg = json_pack("{s:s}", "key_file", path);
	FUZZ_CHECK(cfg != NULL);
	FUZZ_CHECK(local_provider_ops.create(cfg, "/fuzz/p11kms.json", &state, why,
					     sizeof(why)) == P11K_OK);
	json_decref(cfg);
	/* The key's fingerprint, as the provider writes it. */
	uint8_t *blob = NULL;
	size_t bloblen = 0;
	char kv[64];
	provider_status st = {0};
	FUZZ_CHECK(local_provider_ops.encrypt(state, NULL, (const uint8_t *)"x", 1,
					      NULL, 0, &blob, &bloblen, kv,
					      sizeof(kv), &st) == P11K_OK);
	FUZZ_CHECK(bloblen >= FP_OFF + FP_LEN);
	memcpy(fp, blob + FP_OFF, FP_LEN);
	free(blob);
}

static void roundtrip(const uint8_t *pt, size_t ptlen, const uint8_t *aad,
		      size_t aadlen)
{
	uint8_t *blob = NULL, *out = NULL;
	size_t bloblen = 0, outlen = 0;
	char kv[64];
	provider_status st = {0};
	FUZZ_CHECK(local_provider_ops.encrypt(state, NULL, pt, ptlen, aad, aadlen,
					      &blob, &bloblen, kv, sizeof(kv),
					      &st) == P11K_OK);
	FUZZ_CHECK(local_provider_ops.decrypt(state, NULL, blob, bloblen, aad,
					      aadlen, &out, &outlen,
					      &st) == P11K_OK);
	FUZZ_CHECK(outlen == ptlen && (!ptlen || memcmp(out, pt, ptlen) == 0));
	sec_free(out);
	out = NULL;
	/* Any flipped bit past the header, or in the AAD, must not open. */
	size_t at = FP_OFF + FP_LEN + (ptlen ? pt[0] : 0) % (bloblen - FP_OFF - FP_LEN);
	blob[at] ^= 0x01;
	FUZZ_CHECK(local_provider_ops.decrypt(state, NULL, blob, bloblen, aad,
					      aadlen, &out, &outlen,
					      &st) == P11K_ERR_INVALID_CIPHERTEXT);
	FUZZ_CHECK(out == NULL);
	free(blob);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	if (!state)
		setup();
	if (size < 2)
		return 0;
	uint8_t flags = data[0];
	size_t aadlen = data[1];
	if (aadlen > size - 2)
		aadlen = size - 2;
	uint8_t *aad = malloc(aadlen ? aadlen : 1);
	size_t bloblen = size - 2 - aadlen;
	uint8_t *blob = malloc(bloblen ? bloblen : 1);
	if (!aad || !blob) {
		free(aad);
		free(blob);
		return 0;
	}
	memcpy(aad, data + 2, aadlen);
	memcpy(blob, data + 2 + aadlen, bloblen);
	if ((flags & 1) && bloblen >= FP_OFF + FP_LEN)
		memcpy(blob + FP_OFF, fp, FP_LEN);

	uint8_t *pt = NULL;
	size_t ptlen = 0;
	provider_status st = {0};
	size_t before = sec_in_use();
	p11k_err e = local_provider_ops.decrypt(state, NULL, blob, bloblen, aad,
						aadlen, &pt, &ptlen, &st);
	FUZZ_CHECK(e == P11K_OK || e == P11K_ERR_INVALID_CIPHERTEXT ||
		   e == P11K_ERR_KEY_NOT_FOUND);
	FUZZ_CHECK(st.err == e);
	FUZZ_CHECK(memchr(st.message, 0, sizeof(st.message)) != NULL);
	if (e == P11K_OK) {
		/* Only a blob this key made opens: header + nonce + tag. */
		FUZZ_CHECK(bloblen >= 13 + 12 + 16 && ptlen == bloblen - 13 - 12 - 16);
		sec_free(pt);
	} else {
		FUZZ_CHECK(pt == NULL);
	}
	FUZZ_CHECK(sec_in_use() == before);
	if (flags & 2)
		roundtrip(blob, bloblen, aad, aadlen);
	free(aad);
	free(blob);
	return 0;
}
