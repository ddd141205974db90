/* SPDX-License-Identifier: Apache-2.0 */
/* The local provider's signing keys (local_sign.h). */
#include "local_sign.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include "common/crypto.h"
#include "common/secmem.h"

#define PEM_MAX (64 * 1024)

/* The private key of file `path`, or NULL with st set. */
static EVP_PKEY *key_read(const char *path, provider_status *st)
{
	if (path[0] != '/') {
		provider_status_set(st, P11K_ERR_KEY_TYPE,
				    "a local signing key is the absolute path of a PEM private "
				    "key file");
		return NULL;
	}
	int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOCTTY);
	struct stat sb;
	if (fd < 0 || fstat(fd, &sb) != 0) {
		provider_status_set(st, P11K_ERR_KEY_NOT_FOUND, "%.200s: %s", path,
				    strerror(errno));
		if (fd >= 0)
			close(fd);
		return NULL;
	}
	const char *bad = !S_ISREG(sb.st_mode)		? "not a regular file"
			  : (sb.st_mode & 077)		? "readable by others than its owner "
							  "(chmod 600)"
			  : sb.st_uid != geteuid()	? "not owned by this user"
			  : sb.st_size > PEM_MAX	? "larger than a private key"
							: NULL;
	uint8_t *buf = bad ? NULL : sec_alloc((size_t)sb.st_size + 1);
	ssize_t got = buf ? read(fd, buf, (size_t)sb.st_size) : -1;
	close(fd);
	if (bad || got != sb.st_size) {
		provider_status_set(st, P11K_ERR_ACCESS_DENIED, "%.200s: %s", path,
				    bad ? bad : "cannot be read");
		sec_free(buf);
		return NULL;
	}
	BIO *bio = BIO_new_mem_buf(buf, (int)got);
	EVP_PKEY *pk = bio ? PEM_read_bio_PrivateKey_ex(bio, NULL, NULL, NULL, crypto_libctx(),
							 NULL)
			   : NULL;
	BIO_free(bio);
	sec_free(buf);
	if (!pk)
		provider_status_set(st, P11K_ERR_KEY_TYPE,
				    "%.200s holds no unencrypted PEM private key", path);
	return pk;
}

/* The key's SPKI (malloc'd) and fingerprint: SHA-256 of it, 8 bytes, hex. */
static p11k_err spki_of(EVP_PKEY *pk, uint8_t **spki, size_t *len, char *fp, size_t fplen,
			provider_status *st)
{
	unsigned char *der = NULL;
	int n = i2d_PUBKEY(pk, &der);
	uint8_t h[32];
	unsigned hl = 0;
	EVP_MD *md = EVP_MD_fetch(crypto_libctx(), "SHA256", NULL);
	bool ok = n > 0 && md && EVP_Digest(der, (size_t)n, h, &hl, md, NULL) == 1;
	EVP_MD_free(md);
	if (ok && spki && (*spki = malloc((size_t)n))) {
		memcpy(*spki, der, (size_t)n);
		*len = (size_t)n;
	} else if (spki) {
		ok = false;
	}
	OPENSSL_free(der);
	if (!ok) {
		provider_status_set(st, P11K_ERR_INTERNAL, "cannot encode the public key");
		return P11K_ERR_INTERNAL;
	}
	for (int i = 0; i < 8 && fplen > 2 * (size_t)i + 2; i++)
		snprintf(fp + 2 * i, fplen - 2 * (size_t)i, "%02x", h[i]);
	return P11K_OK;
}

static unsigned algs_of(EVP_PKEY *pk)
{
	if (EVP_PKEY_is_a(pk, "RSA"))
		return SALG_BIT(SALG_RSA_PKCS1_SHA256) | SALG_BIT(SALG_RSA_PKCS1_SHA384) |
		       SALG_BIT(SALG_RSA_PKCS1_SHA512) | SALG_BIT(SALG_RSA_PSS_SHA256) |
		       SALG_BIT(SALG_RSA_PSS_SHA384) | SALG_BIT(SALG_RSA_PSS_SHA512);
	if (EVP_PKEY_is_a(pk, "EC"))
		return EVP_PKEY_get_bits(pk) == 256   ? SALG_BIT(SALG_ECDSA_SHA256)
		       : EVP_PKEY_get_bits(pk) == 384 ? SALG_BIT(SALG_ECDSA_SHA384)
						      : 0;
	return 0;
}

p11k_err local_public_key(void *state, const char *key_id, asym_public *out,
			  provider_status *st)
{
	(void)state;
	memset(out, 0, sizeof(*out));
	EVP_PKEY *pk = key_read(key_id, st);
	if (!pk)
		return st->err;
	p11k_err e = spki_of(pk, &out->spki, &out->spkilen, out->version, sizeof(out->version),
			     st);
	out->uses = ASYM_USE_SIGN;
	out->sign_algs = algs_of(pk);
	EVP_PKEY_free(pk);
	if (e != P11K_OK)
		asym_public_free(out);
	return e;
}

p11k_err local_sign(void *state, const char *key_id, const char *version, sign_alg alg,
		    const uint8_t *digest, size_t dlen, uint8_t **sig, size_t *siglen,
		    provider_status *st)
{
	(void)state;
	*sig = NULL;
	EVP_PKEY *pk = key_read(key_id, st);
	if (!pk)
		return st->err;
	char fp[40] = "";
	p11k_err e = spki_of(pk, NULL, NULL, fp, sizeof(fp), st);
	if (e == P11K_OK && version && version[0] && strcmp(version, fp) != 0) {
		e = P11K_ERR_KEY_NOT_FOUND;
		provider_status_set(st, e, "%.200s now holds key version %s, not %.40s", key_id,
				    fp, version);
	}
	if (e == P11K_OK && !(algs_of(pk) & SALG_BIT(alg))) {
		e = P11K_ERR_KEY_TYPE;
		provider_status_set(st, e, "%.200s cannot sign with this algorithm", key_id);
	}
	static const char *const mds[SALG_COUNT_] = {
		[SALG_RSA_PKCS1_SHA256] = "SHA256", [SALG_RSA_PKCS1_SHA384] = "SHA384",
		[SALG_RSA_PKCS1_SHA512] = "SHA512", [SALG_RSA_PSS_SHA256] = "SHA256",
		[SALG_RSA_PSS_SHA384] = "SHA384",   [SALG_RSA_PSS_SHA512] = "SHA512",
		[SALG_ECDSA_SHA256] = "SHA256",	    [SALG_ECDSA_SHA384] = "SHA384",
	};
	bool pss = alg == SALG_RSA_PSS_SHA256 || alg == SALG_RSA_PSS_SHA384 ||
		   alg == SALG_RSA_PSS_SHA512;
	bool ec = alg == SALG_ECDSA_SHA256 || alg == SALG_ECDSA_SHA384;
	EVP_PKEY_CTX *c = e == P11K_OK ? EVP_PKEY_CTX_new_from_pkey(crypto_libctx(), pk, NULL)
				       : NULL;
	EVP_MD *md = c ? EVP_MD_fetch(crypto_libctx(), mds[alg], NULL) : NULL;
	bool ok = md && EVP_PKEY_sign_init(c) == 1 && EVP_PKEY_CTX_set_signature_md(c, md) == 1;
	if (ok && !ec)
		ok = EVP_PKEY_CTX_set_rsa_padding(c, pss ? RSA_PKCS1_PSS_PADDING
							  : RSA_PKCS1_PADDING) == 1 &&
		     (!pss || (EVP_PKEY_CTX_set_rsa_mgf1_md(c, md) == 1 &&
			       EVP_PKEY_CTX_set_rsa_pss_saltlen(c, (int)dlen) == 1));
	size_t n = 0;
	uint8_t *out = NULL;
	ok = ok && EVP_PKEY_sign(c, NULL, &n, digest, dlen) == 1 && (out = malloc(n)) &&
	     EVP_PKEY_sign(c, out, &n, digest, dlen) == 1;
	if (ok && ec) {
		size_t half = (size_t)(EVP_PKEY_get_bits(pk) + 7) / 8;
		uint8_t *raw = malloc(2 * half);
		ok = raw && ecdsa_der_to_rs(out, n, half, raw);
		free(out);
		out = raw;
		n = 2 * half;
	}
	EVP_MD_free(md);
	EVP_PKEY_CTX_free(c);
	EVP_PKEY_free(pk);
	if (e == P11K_OK && !ok) {
		e = P11K_ERR_INTERNAL;
		provider_status_set(st, e, "signing with %.200s failed", key_id);
	}
	if (e != P11K_OK) {
		free(out);
		return e;
	}
	*sig = out;
	*siglen = n;
	return P11K_OK;
}
