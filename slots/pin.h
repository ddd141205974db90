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
/* The failure counters, in a job's publish (store held without waiting:
 * SLOTS_RETRY when busy, nothing changed). */
CK_RV count_failure_inlock(token_t *t, CK_USER_TYPE who);
CK_RV reset_failures_inlock(token_t *t, CK_USER_TYPE who);
/* After pin_check's rv: count a wrong PIN (CKR_PIN_INCORRECT), reset the
 * count after a right one (CKR_OK), else rv. */
CK_RV pin_publish_inlock(token_t *t, CK_USER_TYPE who, CK_RV rv);

#endif
