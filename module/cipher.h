/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Private to the cipher mechanisms: what mech.c (the table and the shared
 * rules), aes.c (local AES) and remote.c (operations run by the KMS) share,
 * and aead.c the AES-GCM bounds. Nothing outside those four files includes
 * it; the rest of the module sees only mech.h. No variables are defined
 * here.
 */
#ifndef P11KMS_CIPHER_H
#define P11KMS_CIPHER_H

#include "mech.h"

#define AES_BLOCK 16
#define KW_SEMI 8
#define GCM_MAX_IV 128 /* bytes: OpenSSL's GCM takes no longer IV */
#define GCM_MAX_AAD (16u * 1024 * 1024)
#define HOLD_MAX ((size_t)256 * 1024 * 1024) /* data held between parts */

/* --- mech.c -------------------------------------------------------------- */

/* PKCS #11 5.2 length convention. True when the caller must return *rv:
 * a length query (out == NULL) or a short buffer, both of which leave the
 * operation active. */
bool len_rule(CK_ULONG need, const uint8_t *out, CK_ULONG *outlen, CK_RV *rv);
/* Single-part mechanisms in a multi-part call: gather the parts, run the
 * one-shot at Final. */
CK_RV hold_update(cipher_op *op, const uint8_t *in, size_t inlen, uint8_t *out,
		  CK_ULONG *outlen);
CK_RV hold_final(cipher_op *op, uint8_t *out, CK_ULONG *outlen);
/* CKM_AES_KEY_WRAP_PAD's PKCS #7 padding (1..KW_SEMI bytes, always
 * present): false if p[0..*len) does not end in it, else *len drops it. */
bool kw_pad7_strip(const uint8_t *p, size_t *len);
/* CKM_AES_GCM's parameter as read, whichever CK_GCM_PARAMS layout the
 * caller passed: v3.0's (48 bytes on LP64, with ulIvBits) or v2.30's
 * (40 bytes, without ulIvBits; Java's SunPKCS11 offers it first). The two
 * sizes differ on every ABI, so ulParameterLen tells them apart. */
typedef struct {
	CK_BYTE_PTR iv;
	CK_ULONG ivlen;
	CK_ULONG ivbits; /* 0 in the v2.30 layout */
	CK_BYTE_PTR aad;
	CK_ULONG aadlen;
	CK_ULONG tagbits;
} gcm_params;
/* Read m's parameter into *g: CKR_MECHANISM_PARAM_INVALID, logged, when it
 * is NULL or of neither layout's size. No value is checked (param_gcm). */
CK_RV gcm_params_read(const CK_MECHANISM *m, gcm_params *g);
/* Parameter checks that the KMS variants repeat. */
CK_RV param_gcm(const CK_MECHANISM *m);
/* The AES-GCM IV and tag rules, for CK_GCM_PARAMS and the message API's
 * CK_GCM_MESSAGE_PARAMS alike: CKR_MECHANISM_PARAM_INVALID, logged, for
 * an IV that is NULL or not 1..GCM_MAX_IV bytes, or a tag length that
 * SP 800-38D does not allow. */
CK_RV gcm_iv_tag_check(const void *iv, CK_ULONG ivlen, CK_ULONG tagbits);
CK_RV param_oaep(const CK_MECHANISM *m);

/* --- aes.c --------------------------------------------------------------- */

/* Copy a checked CK_GCM_PARAMS (either layout) into op (IV, AAD, tag length). */
CK_RV init_gcm(cipher_op *op, const CK_MECHANISM *m);

extern const cipher_impl aes_ecb_impl, aes_cbc_impl, aes_cbcpad_impl, aes_ctr_impl,
	aes_gcm_impl, aes_kw_impl;

/* --- remote.c ------------------------------------------------------------ */

/* CKM_P11KMS_KMS_ENVELOPE, and the standard mechanisms on typed KMS keys. */
extern const cipher_impl remote_envelope_impl, remote_std_impl;

#endif
