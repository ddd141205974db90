/* SPDX-License-Identifier: Apache-2.0 */
/*
 * In fuzz_api's libFuzzer build only: scrypt made cheap. slots/pin.c derives
 * every PIN through EVP_KDF_derive(SCRYPT), which at the lowest cost the
 * configuration allows (pin_kdf_cost 12) takes ~14 ms and 4 MiB, where an
 * input without a PIN call takes ~0.3 ms: a third of a run went there. This
 * definition of EVP_KDF_derive, linked into the target, takes the module's
 * calls (libcrypto's own calls stay inside libcrypto): for SCRYPT it gives
 * SHA-512 of the password, salt and parameters -- like scrypt, a
 * deterministic function of them, so every PIN rule in the module (records,
 * verifier, the wrapping half, failure counts) runs as it would -- and any
 * other KDF goes to libcrypto. The corpus replay in the test suite is built
 * without this file and runs the real scrypt on the same inputs.
 */
#include <dlfcn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/kdf.h>
#include <openssl/params.h>

int EVP_KDF_derive(EVP_KDF_CTX *ctx, unsigned char *key, size_t keylen,
		   const OSSL_PARAM params[]);

typedef int (*derive_fn)(EVP_KDF_CTX *, unsigned char *, size_t, const OSSL_PARAM[]);

/* The octet string or integer of params named name, as bytes. */
static void add_param(EVP_MD_CTX *md, const OSSL_PARAM params[], const char *name)
{
	const OSSL_PARAM *p = OSSL_PARAM_locate_const(params, name);
	if (p && p->data && EVP_DigestUpdate(md, p->data, p->data_size) != 1)
		abort();
	if (EVP_DigestUpdate(md, "|", 1) != 1)
		abort();
}

int EVP_KDF_derive(EVP_KDF_CTX *ctx, unsigned char *key, size_t keylen,
		   const OSSL_PARAM params[])
{
	static derive_fn real;
	const EVP_KDF *kdf = EVP_KDF_CTX_kdf(ctx);
	if (!kdf || !EVP_KDF_is_a(kdf, "SCRYPT") || !params || keylen > 64) {
		if (!real && !(real = (derive_fn)dlsym(RTLD_NEXT, "EVP_KDF_derive"))) {
			fprintf(stderr, "fuzz_api: no EVP_KDF_derive in libcrypto\n");
			abort();
		}
		return real(ctx, key, keylen, params);
	}
	unsigned char out[64];
	EVP_MD_CTX *md = EVP_MD_CTX_new();
	if (!md || EVP_DigestInit_ex(md, EVP_sha512(), NULL) != 1)
		abort();
	add_param(md, params, OSSL_KDF_PARAM_PASSWORD);
	add_param(md, params, OSSL_KDF_PARAM_SALT);
	add_param(md, params, OSSL_KDF_PARAM_SCRYPT_N);
	add_param(md, params, OSSL_KDF_PARAM_SCRYPT_R);
	add_param(md, params, OSSL_KDF_PARAM_SCRYPT_P);
	if (EVP_DigestFinal_ex(md, out, NULL) != 1)
		abort();
	EVP_MD_CTX_free(md);
	memcpy(key, out, keylen);
	return 1;
}
