/* SPDX-License-Identifier: Apache-2.0 */
#include "err.h"

CK_RV p11k_err_to_ckr(p11k_err e)
{
	switch (e) {
	case P11K_OK:
		return CKR_OK;
	case P11K_ERR_NOMEM:
		return CKR_HOST_MEMORY;
	/* The KMS refusing or failing is a fault of the token as seen
	 * through PKCS #11; the precise cause goes to the log and to
	 * ulDeviceError. */
	case P11K_ERR_KEY_DISABLED:
	case P11K_ERR_KEY_NOT_FOUND:
	case P11K_ERR_ACCESS_DENIED:
	case P11K_ERR_UNREACHABLE:
	case P11K_ERR_TLS:
	case P11K_ERR_THROTTLED:
	case P11K_ERR_BAD_REPLY:
	case P11K_ERR_STORE:
	case P11K_ERR_STORE_BUSY:
		return CKR_DEVICE_ERROR;
	case P11K_ERR_INVALID_CIPHERTEXT:
		return CKR_ENCRYPTED_DATA_INVALID;
	case P11K_ERR_KEY_TYPE:
		return CKR_KEY_TYPE_INCONSISTENT;
	case P11K_ERR_INTERNAL:
		return CKR_GENERAL_ERROR;
	}
	return CKR_GENERAL_ERROR;
}

CK_ULONG p11k_err_to_deverr(p11k_err e)
{
	switch (e) {
	case P11K_OK:
		return P11KMS_DEVERR_NONE;
	case P11K_ERR_NOMEM:
	case P11K_ERR_INTERNAL:
		return P11KMS_DEVERR_INTERNAL;
	case P11K_ERR_KEY_DISABLED:
		return P11KMS_DEVERR_KEY_DISABLED;
	case P11K_ERR_KEY_NOT_FOUND:
		return P11KMS_DEVERR_KEY_NOT_FOUND;
	case P11K_ERR_ACCESS_DENIED:
		return P11KMS_DEVERR_ACCESS_DENIED;
	case P11K_ERR_UNREACHABLE:
		return P11KMS_DEVERR_UNREACHABLE;
	case P11K_ERR_TLS:
		return P11KMS_DEVERR_TLS;
	case P11K_ERR_THROTTLED:
		return P11KMS_DEVERR_THROTTLED;
	case P11K_ERR_INVALID_CIPHERTEXT:
		return P11KMS_DEVERR_INVALID_CIPHERTEXT;
	case P11K_ERR_BAD_REPLY:
		return P11KMS_DEVERR_BAD_REPLY;
	case P11K_ERR_KEY_TYPE:
		return P11KMS_DEVERR_KEY_TYPE;
	case P11K_ERR_STORE:
	case P11K_ERR_STORE_BUSY:
		return P11KMS_DEVERR_STORE;
	}
	return P11KMS_DEVERR_INTERNAL;
}

const char *p11k_err_name(p11k_err e)
{
	switch (e) {
	case P11K_OK:
		return "ok";
	case P11K_ERR_NOMEM:
		return "out of memory";
	case P11K_ERR_KEY_DISABLED:
		return "KMS key disabled";
	case P11K_ERR_KEY_NOT_FOUND:
		return "KMS key not found";
	case P11K_ERR_ACCESS_DENIED:
		return "access denied";
	case P11K_ERR_UNREACHABLE:
		return "KMS unreachable";
	case P11K_ERR_TLS:
		return "TLS certificate not verified";
	case P11K_ERR_THROTTLED:
		return "KMS throttled";
	case P11K_ERR_INVALID_CIPHERTEXT:
		return "invalid ciphertext";
	case P11K_ERR_BAD_REPLY:
		return "malformed reply";
	case P11K_ERR_KEY_TYPE:
		return "KMS key cannot run the algorithm";
	case P11K_ERR_INTERNAL:
		return "internal error";
	case P11K_ERR_STORE:
		return "store error";
	case P11K_ERR_STORE_BUSY:
		return "store busy";
	}
	return "unknown";
}
