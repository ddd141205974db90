/* SPDX-License-Identifier: Apache-2.0 */
/* KMS key objects from the configuration and the KMS port. */
#ifndef P11KMS_KMS_H
#define P11KMS_KMS_H

#include "kms_port.h"
#include "slots.h"

/* KMS key objects: built from the configuration at C_Initialize. */
CK_RV token_kms_objects_create_inlock(token_t *t);
void token_kms_objects_free_inlock(token_t *t);
/* The KMS port of t (kms_port.h): the four functions below, bound to t. */
kms_port token_kms_port(token_t *t);
/* The remote call behind CKM_P11KMS_KMS_ENVELOPE (no lock held): output in
 * secure memory. */
CK_RV token_kms_call(void *tok, bool encrypt, const char *key_id,
		     const uint8_t *ctx, size_t ctxlen, const uint8_t *in,
		     size_t inlen, uint8_t **out, size_t *outlen);
size_t token_kms_max(void *tok, size_t inlen);
/* Standard mechanisms on typed KMS keys (docs/REMOTE.md); no lock held. */
CK_RV token_kms_std(void *tok, size_t idx, remote_req *r, uint8_t **out, size_t *outlen);
CK_RV token_kms_rsa_modlen(void *tok, size_t idx, size_t *modlen);

#endif
