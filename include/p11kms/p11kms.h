/* SPDX-License-Identifier: Apache-2.0 */
/*
 * p11kms vendor-defined constants: the one public header consumers need
 * beyond the PKCS #11 headers. Values live in the CKA/CKM/CKR vendor range
 * (CKx_VENDOR_DEFINED | 0x504B0000, "PK") so they cannot collide with the
 * standard nor, in practice, with other vendors' modules.
 */
#ifndef P11KMS_H
#define P11KMS_H

#include "pkcs11.h"

#define P11KMS_VENDOR_BASE 0x504B0000UL

/* Attributes (read-only, on every token key object). */
/* Identity of the KMS key that seals the token, as a UTF-8 string. */
#define CKA_P11KMS_KMS_KEY_ID (CKA_VENDOR_DEFINED | P11KMS_VENDOR_BASE | 0x01UL)
/* Version of that KMS key that made the seal, as a UTF-8 string. */
#define CKA_P11KMS_KMS_KEY_VERSION (CKA_VENDOR_DEFINED | P11KMS_VENDOR_BASE | 0x02UL)
/* Creation time of the object, seconds since the epoch (CK_ULONG). */
#define CKA_P11KMS_CREATED_AT (CKA_VENDOR_DEFINED | P11KMS_VENDOR_BASE | 0x03UL)

/* Key type of KMS key objects: keys held in the KMS, used only remotely. */
#define CKK_P11KMS_KMS (CKK_VENDOR_DEFINED | P11KMS_VENDOR_BASE | 0x01UL)

/* The provider's native envelope encryption with a KMS key object (AWS
 * SYMMETRIC_DEFAULT, Google ENCRYPT_DECRYPT, the local provider's
 * AES-256-GCM): C_Encrypt/C_Decrypt of small data, C_WrapKey/C_UnwrapKey of
 * local keys. The parameter, optional, carries the encryption context (AAD):
 * the same bytes must be given to decrypt. Blobs name the key version. */
#define CKM_P11KMS_KMS_ENVELOPE (CKM_VENDOR_DEFINED | P11KMS_VENDOR_BASE | 0x01UL)

typedef struct CK_P11KMS_KMS_PARAMS {
	CK_BYTE_PTR pContext; /* encryption context / AAD, may be NULL */
	CK_ULONG ulContextLen;
} CK_P11KMS_KMS_PARAMS;

/* Return values placed in CK_SESSION_INFO.ulDeviceError: the class of the
 * last provider error seen on the session (0 = none). */
#define P11KMS_DEVERR_NONE 0UL
#define P11KMS_DEVERR_KEY_DISABLED 1UL
#define P11KMS_DEVERR_KEY_NOT_FOUND 2UL
#define P11KMS_DEVERR_ACCESS_DENIED 3UL
#define P11KMS_DEVERR_UNREACHABLE 4UL
#define P11KMS_DEVERR_THROTTLED 5UL
#define P11KMS_DEVERR_INVALID_CIPHERTEXT 6UL
#define P11KMS_DEVERR_BAD_REPLY 7UL
#define P11KMS_DEVERR_INTERNAL 8UL
#define P11KMS_DEVERR_STORE 9UL
#define P11KMS_DEVERR_KEY_TYPE 10UL
/* The KMS endpoint's TLS certificate could not be verified (wrong or
 * missing ca_file, a name mismatch, an intercepting proxy): a
 * configuration fault, not an outage. */
#define P11KMS_DEVERR_TLS 11UL

#endif
