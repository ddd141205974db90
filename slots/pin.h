/* SPDX-License-Identifier: Apache-2.0 */
/*
 * PIN records: version(1) | log2 N(1) | r(1) | p(1) | salt(16) |
 * verifier(32). scrypt over the PIN gives 64 bytes: the verifier kept in
 * the record and the key (kek) that wraps this role's seal in
 * login=required mode. Internal to slots/.
 */
#ifndef P11KMS_PIN_H
#define P11KMS_PIN_H

#include "slots.h"

#define PINREC_LEN 52

/* New record for pin; kek receives the wrapping half (secure memory).
 * Runs scrypt: call without the lock. */
bool pin_record_new(const token_t *t, const CK_UTF8CHAR *pin, size_t len,
		    uint8_t rec[PINREC_LEN], uint8_t **kek);
/* Check pin against rec (constant time); on success *kek, if asked, gets
 * the wrapping half. Runs scrypt: call without the lock. */
CK_RV pin_check(const CK_UTF8CHAR *pin, size_t len, const uint8_t *rec,
		size_t reclen, uint8_t **kek);
const char *role_name(CK_USER_TYPE who);
CK_RV check_pin_len(CK_ULONG len);
bool locked_out(const token_t *t, CK_USER_TYPE who);
/* Copy who's PIN record for pin_check (a job's prepare): CKR_PIN_LOCKED
 * after PIN_MAX_TRIES wrong tries. *rec is the caller's to free. */
CK_RV pin_record_copy_inlock(token_t *t, CK_USER_TYPE who, uint8_t **rec,
			     size_t *reclen);
/* In a job's call (no lock): reserve a try in the store (CKR_PIN_LOCKED
 * when none is left), then check pin against rec. *count is the count
 * with this try. */
CK_RV pin_try(token_t *t, CK_USER_TYPE who, const CK_UTF8CHAR *pin, size_t len,
	      const uint8_t *rec, size_t reclen, uint8_t **kek, uint32_t *count);
/* After pin_try's rv, in publish (store held without waiting: SLOTS_RETRY
 * when busy, nothing changed): a right PIN resets the count; a wrong one
 * was counted already (count) and is answered CKR_PIN_INCORRECT. */
CK_RV pin_publish_inlock(token_t *t, CK_USER_TYPE who, CK_RV rv, uint32_t count);

#endif
