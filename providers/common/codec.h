/* SPDX-License-Identifier: Apache-2.0 */
/* Bounded encoders and decoders the providers share: base64 (standard,
 * padded) and base64url (no padding, as Azure and JWTs use), hex, and
 * percent-encoding for URLs and form bodies. Decoders reject anything
 * malformed (bad characters, bad padding, trailing garbage). */
#ifndef P11KMS_CODEC_H
#define P11KMS_CODEC_H

#include "common/common.h"

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

#endif
