/* SPDX-License-Identifier: Apache-2.0 */
/* PIN records and their verification (pin.h). */
#include "pin.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/kdf.h>

#include "common/crypto.h"
#include "common/log.h"
#include "common/secmem.h"
#include "token.h"
#include "token_priv.h"

/* --- PIN records ---------------------------------------------------------
 * version(1) | log2 N(1) | r(1) | p(1) | salt(16) | verifier(32)
 * scrypt(PIN, salt; N = 2^pin_kdf_cost (default 15), r = 8, p = 1) gives
 * 64 bytes: the first half is the verifier kept
 * here, the second half the key that wraps this role's seal in
 * login=required mode. Neither half reveals the other.
 */
#define PIN_SALT 16
#define SCRYPT_R 8
#define SCRYPT_P 1

static bool pin_derive(const CK_UTF8CHAR *pin, size_t len, const uint8_t *rec,
		       uint8_t out[64])
{
	uint64_t n = (uint64_t)1 << rec[1];
	uint32_t r = rec[2], p = rec[3];
	uint64_t maxmem = 256ull * 1024 * 1024;
	EVP_KDF *kdf = EVP_KDF_fetch(crypto_libctx(), "SCRYPT", NULL);
	EVP_KDF_CTX *ctx = kdf ? EVP_KDF_CTX_new(kdf) : NULL;
	OSSL_PARAM params[] = {
		OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_PASSWORD,
						  (void *)(len ? pin : (const CK_UTF8CHAR *)""),
						  len),
		OSSL_PARAM_construct_octet_string(OSSL_KDF_PARAM_SALT,
						  (void *)(rec + 4), PIN_SALT),
		OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_N, &n),
		OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_R, &r),
		OSSL_PARAM_construct_uint32(OSSL_KDF_PARAM_SCRYPT_P, &p),
		OSSL_PARAM_construct_uint64(OSSL_KDF_PARAM_SCRYPT_MAXMEM, &maxmem),
		OSSL_PARAM_construct_end(),
	};
	bool ok = ctx && rec[1] >= 10 && rec[1] <= 20 && r && r <= 32 && p &&
		  p <= 16 && EVP_KDF_derive(ctx, out, 64, params) == 1;
	EVP_KDF_CTX_free(ctx);
	EVP_KDF_free(kdf);
	return ok;
}

/* New record for pin; kek receives the wrapping half (secure memory). */
bool pin_record_new(const token_t *t, const CK_UTF8CHAR *pin, size_t len,
			   uint8_t rec[PINREC_LEN], uint8_t **kek)
{
	uint8_t *out = sec_alloc(64);
	rec[0] = 1;
	rec[1] = (uint8_t)t->cfg->pin_kdf_cost; /* recorded: later checks use it */
	rec[2] = SCRYPT_R;
	rec[3] = SCRYPT_P;
	bool ok = out && crypto_random(rec + 4, PIN_SALT) &&
		  pin_derive(pin, len, rec, out);
	if (ok) {
		memcpy(rec + 4 + PIN_SALT, out, 32);
		*kek = sec_dup(out + 32, 32);
		ok = *kek != NULL;
	}
	sec_free(out);
	return ok;
}

/* Check pin against rec; on success *kek (if asked) gets the wrapping
 * half. Constant-time comparison. */
CK_RV pin_check(const CK_UTF8CHAR *pin, size_t len, const uint8_t *rec,
		       size_t reclen, uint8_t **kek)
{
	if (reclen != PINREC_LEN || rec[0] != 1) {
		log_error("token", "stored PIN record is malformed");
		return CKR_DEVICE_ERROR;
	}
	uint8_t *out = sec_alloc(64);
	if (!out)
		return CKR_HOST_MEMORY;
	CK_RV rv = CKR_OK;
	if (!pin_derive(pin, len, rec, out))
		rv = CKR_GENERAL_ERROR;
	else if (CRYPTO_memcmp(out, rec + 4 + PIN_SALT, 32) != 0)
		rv = CKR_PIN_INCORRECT;
	else if (kek && !(*kek = sec_dup(out + 32, 32)))
		rv = CKR_HOST_MEMORY;
	sec_free(out);
	return rv;
}

const char *role_name(CK_USER_TYPE who)
{
	return who == CKU_SO ? "so" : "user";
}
/* --- failure counters ----------------------------------------------------
 * A try is reserved in the store before the PIN is evaluated (in a job's
 * call, without the lock), so no number of threads or processes gets
 * more than PIN_MAX_TRIES guesses; a right PIN resets the count in
 * publish, with the store held without waiting (slots.h). */

static const char *fail_name(CK_USER_TYPE who)
{
	return who == CKU_SO ? "so_fail" : "user_fail";
}

/* One try at the count, the store held without waiting. */
static p11k_err reserve_once(token_t *t, CK_USER_TYPE who, uint32_t *count, bool *locked)
{
	uint8_t *v = NULL;
	size_t n = 0;
	bool found = false;
	p11k_err e = store_begin(t->store);
	if (e != P11K_OK)
		return e;
	e = store_meta_get(t->store, fail_name(who), &v, &n, &found);
	uint32_t cnt = (e == P11K_OK && found) ? get_u32(v, n) : 0;
	free(v);
	*count = cnt;
	if (e == P11K_OK && cnt >= PIN_MAX_TRIES) {
		store_rollback(t->store);
		*locked = true;
		return P11K_OK;
	}
	if (e == P11K_OK)
		e = put_u32(t->store, fail_name(who), cnt + 1);
	if (e == P11K_OK)
		e = store_commit(t->store);
	else
		store_rollback(t->store);
	if (e == P11K_OK)
		*count = cnt + 1;
	return e;
}

/* Called without the module lock (slots_store_try). */
typedef struct try_arg {
	token_t *t;
	CK_USER_TYPE who;
	uint32_t *count;
	bool locked;
} try_arg;

static p11k_err reserve_store(store_t *s, void *arg)
{
	try_arg *a = arg;
	(void)s;
	return reserve_once(a->t, a->who, a->count, &a->locked);
}

static CK_RV reserve_try(token_t *t, CK_USER_TYPE who, uint32_t *count)
{
	try_arg a = {t, who, count, false};
	p11k_err e = slots_store_try(t->store, reserve_store, &a);
	bool locked = a.locked;
	if (e != P11K_OK) {
		log_error("token", "slot %lu: cannot count a PIN try: %s",
			  (unsigned long)t->slot_id, p11k_err_name(e));
		return p11k_err_to_ckr(e);
	}
	if (locked) {
		log_warn("token", "slot %lu: %s PIN is locked after %d wrong tries",
			 (unsigned long)t->slot_id, role_name(who), PIN_MAX_TRIES);
		return CKR_PIN_LOCKED;
	}
	return CKR_OK;
}

CK_RV pin_try(token_t *t, CK_USER_TYPE who, const CK_UTF8CHAR *pin, size_t len,
	      const uint8_t *rec, size_t reclen, uint8_t **kek, uint32_t *count)
{
	CK_RV rv = reserve_try(t, who, count);
	return rv == CKR_OK ? pin_check(pin, len, rec, reclen, kek) : rv;
}

static CK_RV reset_failures_inlock(token_t *t, CK_USER_TYPE who)
{
	p11k_err e = put_u32(t->store, fail_name(who), 0);
	if (e == P11K_OK)
		*(who == CKU_SO ? &t->so_fail : &t->user_fail) = 0;
	return publish_rv(t, e);
}

CK_RV pin_publish_inlock(token_t *t, CK_USER_TYPE who, CK_RV rv, uint32_t count)
{
	if (rv == CKR_PIN_INCORRECT || rv == CKR_PIN_LOCKED) {
		/* The try was counted before the PIN was evaluated. */
		*(who == CKU_SO ? &t->so_fail : &t->user_fail) = count;
		if (rv == CKR_PIN_INCORRECT)
			log_warn("token", "slot %lu: wrong %s PIN (%u of %d tries)",
				 (unsigned long)t->slot_id, role_name(who), count, PIN_MAX_TRIES);
		return rv;
	}
	if (rv == CKR_OK)
		return reset_failures_inlock(t, who);
	return rv;
}

bool locked_out(const token_t *t, CK_USER_TYPE who)
{
	return (who == CKU_SO ? t->so_fail : t->user_fail) >= PIN_MAX_TRIES;
}

CK_RV pin_record_copy_inlock(token_t *t, CK_USER_TYPE who, uint8_t **rec, size_t *reclen)
{
	bool found = false;
	*rec = NULL;
	*reclen = 0;
	if (locked_out(t, who)) {
		log_warn("token", "slot %lu: %s PIN is locked after %d wrong tries",
			 (unsigned long)t->slot_id, role_name(who), PIN_MAX_TRIES);
		return CKR_PIN_LOCKED;
	}
	p11k_err e = store_meta_get(t->store, who == CKU_SO ? "so_pin" : "user_pin", rec,
				    reclen, &found);
	if (e != P11K_OK)
		return store_rv(t, e);
	if (!found) {
		free(*rec);
		*rec = NULL;
		return who == CKU_SO ? CKR_DEVICE_ERROR : CKR_USER_PIN_NOT_INITIALIZED;
	}
	return CKR_OK;
}

CK_RV check_pin_len(CK_ULONG len)
{
	if (len < PIN_MIN || len > PIN_MAX) {
		log_info("token", "PIN length %lu is outside %d..%d",
			 (unsigned long)len, PIN_MIN, PIN_MAX);
		return CKR_PIN_LEN_RANGE;
	}
	return CKR_OK;
}
