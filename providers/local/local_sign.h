/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The local provider's signing keys (docs/SIGNING.md): a key entry of
 * "type" "rsa" or "ec" names a PEM private key file (PKCS #8 or the
 * traditional RSA / EC form, unencrypted), regular and readable by its
 * owner only, as ssh requires of a private key. The file is read at each
 * signature into secure memory and the key freed right after, as the
 * master key is. The version is the public key's fingerprint: replacing
 * the file is a new version, and a signature pinned to the old one fails.
 */
#ifndef P11KMS_LOCAL_SIGN_H
#define P11KMS_LOCAL_SIGN_H

#include "providers/provider.h"

p11k_err local_public_key(void *state, const char *key_id, asym_public *out,
			  provider_status *st);
p11k_err local_sign(void *state, const char *key_id, const char *version, sign_alg alg,
		    const uint8_t *digest, size_t dlen, uint8_t **sig, size_t *siglen,
		    provider_status *st);

#endif
