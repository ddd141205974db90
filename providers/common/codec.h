/* SPDX-License-Identifier: Apache-2.0 */
/* Bounded encoders and decoders the providers share: base64 (standard,
 * padded) and base64url (no padding, as Azure and JWTs use), hex, and
 * percent-encoding for URLs and form bodies. Decoders reject anything
 * malformed (bad characters, bad padding, trailing garbage). */
#ifndef P11KMS_CODEC_H
#define P11KMS_CODEC_H

#include "common/common.h"
#include "common/err.h"
#include "providers/provider.h"

/* Encoders return a malloc'd NUL-terminated string, NULL on failure. */
char *b64_encode(const uint8_t *p, size_t n);
char *b64url_encode(const uint8_t *p, size_t n);
/* Decoders: *out malloc'd (secure memory when secret), NULL on bad input. */
P11K_WUR bool b64_decode(const char *s, size_t len, bool secret, uint8_t **out,
			 size_t *outlen);
P11K_WUR bool b64url_decode(const char *s, size_t len, bool secret, uint8_t **out,
			    size_t *outlen);
void hex_encode(const uint8_t *p, size_t n, char *out); /* out: 2n+1 bytes */
/* RFC 3986 unreserved kept, everything else %XX (upper case). */
char *pct_encode(const char *s, size_t n);


/* --- asymmetric keys: the encodings the clouds hand out -------------------
 * (provider.h public_key, sign). The clouds describe one public key three
 * ways (AWS: DER SubjectPublicKeyInfo; Azure: a JWK; Cloud KMS: PEM) and
 * ECDSA signatures two ways (AWS, Cloud KMS: DER; Azure: r||s); the module
 * takes DER SPKI and r||s. */

/* What a checked SubjectPublicKeyInfo is. */
typedef struct spki_desc {
	bool ec;       /* EC (P-256 or P-384), else RSA */
	unsigned bits; /* RSA modulus bits; EC: 256 or 384 */
} spki_desc;

/* Check der is one DER SubjectPublicKeyInfo the module can use: RSA of
 * 2048..4096 bits with an odd exponent of at most 64 bits, or EC on P-256
 * or P-384 with a point on the curve. P11K_ERR_BAD_REPLY when it is not a
 * public key at all, P11K_ERR_KEY_TYPE for another kind (Ed25519,
 * secp256k1, RSA-1024); a one-line reason in why. */
P11K_WUR p11k_err spki_check(const uint8_t *der, size_t len, spki_desc *d, char *why,
			     size_t wl);
/* DER SubjectPublicKeyInfo (malloc'd) of an RSA key, from big-endian n and
 * e (leading zeros allowed), or of an EC key ("P-256" / "P-384") from the
 * affine x and y, big-endian numbers of at most the curve's size (full
 * size as RFC 7518 wants, or with leading zeros dropped or added, as
 * some encoders write them). Checked with spki_check. */
P11K_WUR p11k_err spki_from_rsa(const uint8_t *n, size_t nlen, const uint8_t *e, size_t elen,
				uint8_t **der, size_t *derlen, char *why, size_t wl);
P11K_WUR p11k_err spki_from_ec(const char *crv, const uint8_t *x, size_t xlen,
			       const uint8_t *y, size_t ylen, uint8_t **der, size_t *derlen,
			       char *why, size_t wl);
/* The DER inside one PEM block labelled label ("PUBLIC KEY"): nothing but
 * whitespace around it, base64 lines between; *der malloc'd. */
P11K_WUR bool pem_to_der(const char *pem, size_t len, const char *label, uint8_t **der,
			 size_t *derlen);
/* A KMS's signature (*raw, malloc'd; taken over) in the module's form
 * (provider.h sign): ECDSA r||s, converted from DER when der; RSA as it
 * is, 256..512 bytes (2048..4096 bits). P11K_ERR_BAD_REPLY with a reason
 * in why when it is neither. */
P11K_WUR p11k_err sig_for_module(sign_alg a, bool der, uint8_t **raw, size_t rawlen,
				 uint8_t **sig, size_t *siglen, char *why, size_t wl);
/* A signing algorithm's digest size (32, 48, 64), and for ECDSA the size
 * of r and of s (32 for P-256, 48 for P-384; 0 for RSA). 0 for a value
 * outside the enum. */
size_t salg_digest_len(sign_alg a);
size_t salg_ec_half(sign_alg a);

#endif
