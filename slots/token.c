/* SPDX-License-Identifier: Apache-2.0 */
#include "token.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/core_names.h>
#include <openssl/crypto.h>
#include <openssl/kdf.h>

#include "common/crypto.h"
#include "common/log.h"
#include "common/secmem.h"

/* --- PIN records ---------------------------------------------------------
 * version(1) | log2 N(1) | r(1) | p(1) | salt(16) | verifier(32)
 * scrypt(PIN, salt; N = 2^pin_kdf_cost (default 15), r = 8, p = 1) gives
 * 64 bytes: the first half is the verifier kept
 * here, the second half the key that wraps this role's seal in
 * login=required mode. Neither half reveals the other.
 */
#define PINREC_LEN 52
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
static bool pin_record_new(const token_t *t, const CK_UTF8CHAR *pin, size_t len,
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
static CK_RV pin_check(const CK_UTF8CHAR *pin, size_t len, const uint8_t *rec,
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

static const char *role_name(CK_USER_TYPE who)
{
	return who == CKU_SO ? "so" : "user";
}

/* --- store metadata --------------------------------------------------- */

static uint32_t get_u32(const uint8_t *p, size_t n)
{
	return n == 4 ? ((uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 |
			 (uint32_t)p[2] << 8 | p[3])
		      : 0;
}

static p11k_err put_u32(store_t *s, const char *name, uint32_t v)
{
	uint8_t b[4] = {v >> 24, v >> 16, v >> 8, v};
	return store_meta_put(s, name, b, 4);
}

static CK_RV store_rv(token_t *t, p11k_err e)
{
	if (e == P11K_OK)
		return CKR_OK;
	t->last.err = e;
	return p11k_err_to_ckr(e);
}

/* Load the cached meta of t. */
static CK_RV load_meta(token_t *t)
{
	uint8_t *v = NULL;
	size_t n = 0;
	bool found;
	p11k_err e = store_meta_get(t->store, "uuid", &v, &n, &found);
	if (e != P11K_OK)
		return store_rv(t, e);
	bool was = t->initialized;
	uint8_t olduuid[16];
	memcpy(olduuid, t->uuid, 16);
	t->initialized = found && n == 16;
	if (t->initialized)
		memcpy(t->uuid, v, 16);
	free(v);
	if (was && (!t->initialized || memcmp(olduuid, t->uuid, 16) != 0)) {
		/* Re-initialized by another process: nothing we hold is valid. */
		log_warn("token", "slot %lu: the token was re-initialized by another "
				  "process; logging out",
			 (unsigned long)t->slot_id);
		token_lock_inlock(t);
		t->login = NO_LOGIN;
		token_forget_objects_inlock(t);
	}
	if (!t->initialized)
		return CKR_OK;
	for (int i = 0; i < 8; i++)
		snprintf(t->serial + 2 * i, 3, "%02x", t->uuid[i]);
	e = store_meta_get(t->store, "label", &v, &n, &found);
	if (e == P11K_OK) {
		size_t l = found ? (n < 32 ? n : 32) : 0;
		memset(t->label, 0, sizeof(t->label));
		if (l)
			memcpy(t->label, v, l);
		free(v);
		e = store_meta_get(t->store, "user_pin", &v, &n, &found);
	}
	if (e == P11K_OK) {
		t->user_pin_set = found;
		free(v);
		e = store_meta_get(t->store, "user_fail", &v, &n, &found);
	}
	if (e == P11K_OK) {
		t->user_fail = found ? get_u32(v, n) : 0;
		free(v);
		e = store_meta_get(t->store, "so_fail", &v, &n, &found);
	}
	if (e == P11K_OK) {
		t->so_fail = found ? get_u32(v, n) : 0;
		free(v);
	}
	return store_rv(t, e);
}

CK_RV token_sync_inlock(token_t *t)
{
	if (t->store_broken)
		return CKR_DEVICE_ERROR;
	if (!t->store) {
		if (!store_exists(t->cfg->store)) {
			t->initialized = false;
			return CKR_OK;
		}
		p11k_err e = store_open(t->cfg->store, false, &t->store);
		if (e != P11K_OK) {
			t->store_broken = e != P11K_ERR_STORE_BUSY;
			log_error("token", "slot %lu (%s): store %s is unusable: %s",
				  (unsigned long)t->slot_id, t->cfg->name,
				  t->cfg->store, p11k_err_name(e));
			return store_rv(t, e);
		}
		t->seen_version = store_data_version(t->store);
		return load_meta(t);
	}
	uint64_t v = store_data_version(t->store);
	if (v == t->seen_version)
		return CKR_OK;
	t->seen_version = v;
	size_t it = 0;
	uint64_t k;
	void *val;
	while (hmap_next(&t->by_rowid, &it, &k, &val))
		((object_t *)val)->stale = true;
	return load_meta(t);
}

/* --- sealing ------------------------------------------------------------
 * A seal is a KMS encryption of the TK under the token's sealing key,
 * with the token's uuid as encryption context (AAD). In login=required
 * mode each seal is further wrapped (AES-256-GCM) by the key derived from
 * the user's or the SO's PIN, one row per role; in login=optional mode
 * there is one row with role "any".
 */
static void seal_aad(const token_t *t, uint8_t *aad, size_t *len)
{
	static const char pfx[] = "p11kms-token-key:v1:";
	memcpy(aad, pfx, sizeof(pfx) - 1);
	memcpy(aad + sizeof(pfx) - 1, t->uuid, 16);
	*len = sizeof(pfx) - 1 + 16;
}

static void pin_aad(const token_t *t, const char *role, uint8_t *aad,
		    size_t *len)
{
	int n = snprintf((char *)aad, 64, "p11kms-pin-seal:v1:%s:", role);
	memcpy(aad + n, t->uuid, 16);
	*len = (size_t)n + 16;
}

static const char *seal_key(const token_t *t)
{
	return t->cfg->seal_key ? t->cfg->seal_key
				: t->cfg->ops->default_seal_key(t->prov);
}

static void note_provider_error(token_t *t, const provider_status *st,
				const char *what)
{
	t->last = *st;
	char http[24] = "";
	if (st->http_status)
		snprintf(http, sizeof(http), " HTTP %ld", st->http_status);
	log_error("token", "slot %lu (%s): %s failed: %s%s%s%s%s%s%s%s%s",
		  (unsigned long)t->slot_id, t->cfg->name, what,
		  p11k_err_name(st->err), st->message[0] ? ": " : "", st->message,
		  st->error_name[0] ? " [" : "", st->error_name,
		  st->error_name[0] ? "]" : "", http,
		  st->request_id[0] ? " request-id " : "", st->request_id);
}

/* KMS-encrypt tk. Called without the module lock. */
static CK_RV seal_tk(token_t *t, const uint8_t *tk, uint8_t **blob,
		     size_t *bloblen, char *kv, size_t kvlen, CK_ULONG *deverr)
{
	uint8_t aad[64];
	size_t aadlen;
	provider_status st = {0};
	seal_aad(t, aad, &aadlen);
	p11k_err e = t->cfg->ops->encrypt(t->prov, seal_key(t), tk, TK_LEN, aad,
					  aadlen, blob, bloblen, kv, kvlen, &st);
	if (e != P11K_OK) {
		st.err = e;
		note_provider_error(t, &st, "sealing the token key");
		*deverr = p11k_err_to_deverr(e);
		/* C_InitToken, C_InitPIN and C_Login have neither of these:
		 * the KMS refusing is a device error (ulDeviceError says why). */
		CK_RV rv = p11k_err_to_ckr(e);
		return rv == CKR_ENCRYPTED_DATA_INVALID || rv == CKR_KEY_TYPE_INCONSISTENT
			       ? CKR_DEVICE_ERROR
			       : rv;
	}
	return CKR_OK;
}

/* Unseal: open the PIN layer (kek may be NULL for role "any") and ask the
 * KMS. Called with the lock held; drops it around the KMS call. On
 * success *tk is secure memory. */
static CK_RV unseal_inlock(token_t *t, const char *role, const uint8_t *kek,
			   uint8_t **tk, CK_ULONG *deverr)
{
	seal_rec *seals = NULL;
	size_t nseals = 0;
	p11k_err e = store_seals_load(t->store, &seals, &nseals);
	if (e != P11K_OK)
		return store_rv(t, e);
	uint8_t aad[64], paad[64];
	size_t aadlen, paadlen;
	seal_aad(t, aad, &aadlen);
	pin_aad(t, role, paad, &paadlen);
	CK_RV rv = CKR_DEVICE_ERROR;
	bool any = false;
	provider_status st = {0};

	t->unsealing = true;
	pthread_mutex_unlock(&slots.lock);
	for (size_t i = 0; i < nseals && rv != CKR_OK; i++) {
		if (strcmp(seals[i].role, role) != 0 ||
		    strcmp(seals[i].provider, t->cfg->name) != 0)
			continue;
		any = true;
		uint8_t *kms = seals[i].blob, *inner = NULL, *pt = NULL;
		size_t kmslen = seals[i].bloblen, ptlen = 0;
		if (kek) {
			if (gcm_open(kek, paad, paadlen, seals[i].blob, seals[i].bloblen,
				     &inner, &kmslen) != P11K_OK) {
				log_error("token", "slot %lu: the %s seal does not open "
						   "with this PIN's key (store damaged?)",
					  (unsigned long)t->slot_id, role);
				continue;
			}
			kms = inner;
		}
		memset(&st, 0, sizeof(st));
		e = t->cfg->ops->decrypt(t->prov, seals[i].key_id, kms, kmslen, aad,
					 aadlen, &pt, &ptlen, &st);
		sec_free(inner);
		if (e == P11K_OK && ptlen == TK_LEN) {
			*tk = pt;
			rv = CKR_OK;
			log_info("token", "slot %lu: token key unsealed by %s version %s",
				 (unsigned long)t->slot_id, seals[i].key_id,
				 seals[i].key_version);
		} else {
			sec_free(pt);
			st.err = e != P11K_OK ? e : P11K_ERR_BAD_REPLY;
			*deverr = p11k_err_to_deverr(st.err);
			pthread_mutex_lock(&slots.lock);
			note_provider_error(t, &st, "unsealing the token key");
			pthread_mutex_unlock(&slots.lock);
		}
	}
	pthread_mutex_lock(&slots.lock);
	t->unsealing = false;
	if (rv == CKR_OK) {
		/* A successful unseal is an answer from the KMS: the key is usable. */
		t->last_check = t->last_ok = clock_now_s();
		t->revoked = false;
	}
	if (!any)
		log_error("token", "slot %lu: the store has no %s seal for provider "
				   "%s (was the token initialized with another login "
				   "mode or provider?)",
			  (unsigned long)t->slot_id, role, t->cfg->name);
	seal_recs_free(seals, nseals);
	return rv;
}

static void set_tk_inlock(token_t *t, uint8_t *tk)
{
	sec_free(t->tk);
	t->tk = tk;
	t->tk_epoch++;
}

CK_RV token_ensure_tk_inlock(token_t *t, CK_ULONG *deverr)
{
	if (t->tk)
		return CKR_OK;
	if (!t->initialized)
		return CKR_USER_PIN_NOT_INITIALIZED;
	if (t->cfg->login == LOGIN_REQUIRED)
		return CKR_USER_NOT_LOGGED_IN;
	uint8_t *tk = NULL;
	CK_RV rv = unseal_inlock(t, "any", NULL, &tk, deverr);
	if (rv != CKR_OK)
		return rv;
	if (!t->tk)
		set_tk_inlock(t, tk);
	else
		sec_free(tk);
	return CKR_OK;
}

/* --- failure counters ---------------------------------------------------- */

static CK_RV count_failure_inlock(token_t *t, CK_USER_TYPE who)
{
	const char *name = who == CKU_SO ? "so_fail" : "user_fail";
	uint8_t *v = NULL;
	size_t n = 0;
	bool found;
	/* Re-read: another process may have counted too. */
	p11k_err e = store_begin(t->store);
	if (e == P11K_OK)
		e = store_meta_get(t->store, name, &v, &n, &found);
	uint32_t cnt = (e == P11K_OK && found) ? get_u32(v, n) : 0;
	free(v);
	if (e == P11K_OK)
		e = put_u32(t->store, name, cnt + 1);
	if (e == P11K_OK)
		e = store_commit(t->store);
	else
		store_rollback(t->store);
	if (e != P11K_OK)
		return store_rv(t, e);
	if (who == CKU_SO)
		t->so_fail = cnt + 1;
	else
		t->user_fail = cnt + 1;
	log_warn("token", "slot %lu: wrong %s PIN (%u of %d tries)",
		 (unsigned long)t->slot_id, role_name(who), cnt + 1, PIN_MAX_TRIES);
	return CKR_PIN_INCORRECT;
}

static CK_RV reset_failures_inlock(token_t *t, CK_USER_TYPE who)
{
	uint32_t *c = who == CKU_SO ? &t->so_fail : &t->user_fail;
	if (*c == 0)
		return CKR_OK;
	p11k_err e = put_u32(t->store, who == CKU_SO ? "so_fail" : "user_fail", 0);
	if (e == P11K_OK)
		*c = 0;
	return store_rv(t, e);
}

static bool locked_out(const token_t *t, CK_USER_TYPE who)
{
	return (who == CKU_SO ? t->so_fail : t->user_fail) >= PIN_MAX_TRIES;
}

/* Verify a PIN with the lock dropped during the slow KDF. */
static CK_RV verify_pin_inlock(token_t *t, CK_USER_TYPE who,
			       const CK_UTF8CHAR *pin, CK_ULONG len,
			       uint8_t **kek)
{
	uint8_t *rec = NULL;
	size_t reclen = 0;
	bool found;
	if (locked_out(t, who)) {
		log_warn("token", "slot %lu: %s PIN is locked after %d wrong tries",
			 (unsigned long)t->slot_id, role_name(who), PIN_MAX_TRIES);
		return CKR_PIN_LOCKED;
	}
	p11k_err e = store_meta_get(t->store, who == CKU_SO ? "so_pin" : "user_pin",
				    &rec, &reclen, &found);
	if (e != P11K_OK)
		return store_rv(t, e);
	if (!found) {
		free(rec);
		return who == CKU_SO ? CKR_DEVICE_ERROR : CKR_USER_PIN_NOT_INITIALIZED;
	}
	pthread_mutex_unlock(&slots.lock);
	CK_RV rv = pin_check(pin, len, rec, reclen, kek);
	pthread_mutex_lock(&slots.lock);
	free(rec);
	if (rv == CKR_PIN_INCORRECT)
		return count_failure_inlock(t, who);
	if (rv == CKR_OK)
		rv = reset_failures_inlock(t, who);
	return rv;
}

static CK_RV check_pin_len(CK_ULONG len)
{
	if (len < PIN_MIN || len > PIN_MAX) {
		log_info("token", "PIN length %lu is outside %d..%d",
			 (unsigned long)len, PIN_MIN, PIN_MAX);
		return CKR_PIN_LEN_RANGE;
	}
	return CKR_OK;
}

/* Build the seal row for role: the KMS blob, PIN-wrapped when kek. */
static CK_RV make_seal(token_t *t, const char *role, const uint8_t *kek,
		       uint8_t *kms, size_t kmslen, const char *kv,
		       seal_rec *out)
{
	memset(out, 0, sizeof(*out));
	out->provider = (char *)t->cfg->name;
	out->key_id = (char *)seal_key(t);
	out->key_version = (char *)kv;
	out->role = (char *)role;
	out->created = clock_now_s();
	if (!kek) {
		out->blob = kms;
		out->bloblen = kmslen;
		return CKR_OK;
	}
	uint8_t paad[64];
	size_t paadlen;
	pin_aad(t, role, paad, &paadlen);
	return gcm_seal(kek, paad, paadlen, kms, kmslen, &out->blob, &out->bloblen) ==
			       P11K_OK
		       ? CKR_OK
		       : CKR_GENERAL_ERROR;
}

/* --- C_InitToken ------------------------------------------------------- */

CK_RV token_init(token_t *t, const CK_UTF8CHAR *so_pin, CK_ULONG so_len,
		 const CK_UTF8CHAR *label, CK_ULONG *deverr)
{
	/* Called with the lock held (entry checked: no sessions open). */
	GUARD(check_pin_len(so_len));
	CK_RV rv = token_sync_inlock(t);
	if (rv != CKR_OK)
		return rv;
	if (t->initialized) {
		rv = verify_pin_inlock(t, CKU_SO, so_pin, so_len, NULL);
		if (rv != CKR_OK)
			return rv;
	}
	uint8_t *tk = sec_alloc(TK_LEN), *kek = NULL, *kms = NULL;
	uint8_t rec[PINREC_LEN], newuuid[16], olduuid[16];
	size_t kmslen = 0;
	char kv[128] = "";
	seal_rec seal = {0};
	if (!tk)
		return CKR_HOST_MEMORY;
	memcpy(olduuid, t->uuid, 16);
	if (!crypto_random(tk, TK_LEN) || !crypto_random(newuuid, 16)) {
		sec_free(tk);
		return CKR_GENERAL_ERROR;
	}
	/* The uuid is part of the seal's context: set it for the seal, and
	 * restore the old one if anything fails. */
	memcpy(t->uuid, newuuid, 16);
	bool required = t->cfg->login == LOGIN_REQUIRED;
	pthread_mutex_unlock(&slots.lock);
	rv = seal_tk(t, tk, &kms, &kmslen, kv, sizeof(kv), deverr);
	if (rv == CKR_OK && !pin_record_new(t, so_pin, so_len, rec, &kek))
		rv = CKR_GENERAL_ERROR;
	if (rv == CKR_OK)
		rv = make_seal(t, required ? "so" : "any", required ? kek : NULL, kms,
			       kmslen, kv, &seal);
	pthread_mutex_lock(&slots.lock);

	p11k_err e = P11K_OK;
	if (rv == CKR_OK && !t->store) {
		e = store_open(t->cfg->store, true, &t->store);
		if (e != P11K_OK)
			t->store_broken = e != P11K_ERR_STORE_BUSY;
	}
	if (rv == CKR_OK && e == P11K_OK)
		e = store_begin(t->store);
	const char *mode = required ? "required" : "optional";
	if (rv == CKR_OK && e == P11K_OK) {
		char lab[33];
		memcpy(lab, label, 32);
		lab[32] = 0;
		for (int i = 31; i >= 0 && lab[i] == ' '; i--)
			lab[i] = 0;
		e = store_obj_delete_all(t->store);
		if (e == P11K_OK)
			e = store_seals_clear(t->store);
		if (e == P11K_OK)
			e = store_seal_add(t->store, &seal);
		if (e == P11K_OK)
			e = store_meta_put(t->store, "uuid", newuuid, 16);
		if (e == P11K_OK)
			e = store_meta_put(t->store, "label", lab, strlen(lab));
		if (e == P11K_OK)
			e = store_meta_put(t->store, "so_pin", rec, PINREC_LEN);
		if (e == P11K_OK)
			e = store_meta_del(t->store, "user_pin");
		if (e == P11K_OK)
			e = put_u32(t->store, "so_fail", 0);
		if (e == P11K_OK)
			e = put_u32(t->store, "user_fail", 0);
		if (e == P11K_OK)
			e = store_meta_put(t->store, "login_mode", mode, strlen(mode));
		if (e == P11K_OK)
			e = store_commit(t->store);
		else
			store_rollback(t->store);
	}
	if (rv == CKR_OK && e != P11K_OK)
		rv = store_rv(t, e);
	if (seal.blob != kms)
		free(seal.blob);
	free(kms);
	sec_free(kek);
	if (rv != CKR_OK) {
		memcpy(t->uuid, olduuid, 16);
		sec_free(tk);
		return rv;
	}
	token_lock_inlock(t);
	t->login = NO_LOGIN;
	token_forget_objects_inlock(t);
	set_tk_inlock(t, required ? NULL : tk);
	if (required)
		sec_free(tk);
	t->seen_version = store_data_version(t->store);
	rv = load_meta(t);
	t->user_pin_set = false;
	log_info("token", "slot %lu (%s): token initialized", (unsigned long)t->slot_id,
		 t->cfg->name);
	return rv;
}

/* --- login / logout ------------------------------------------------------ */

CK_RV token_login_inlock(token_t *t, CK_USER_TYPE who, const CK_UTF8CHAR *pin,
			 CK_ULONG len, CK_ULONG *deverr)
{
	GUARD(token_sync_inlock(t));
	if (!t->initialized)
		return CKR_USER_PIN_NOT_INITIALIZED;
	if (who == CKU_USER && !t->user_pin_set)
		return CKR_USER_PIN_NOT_INITIALIZED;
	if (len > PIN_MAX)
		return CKR_PIN_LEN_RANGE;
	bool required = t->cfg->login == LOGIN_REQUIRED;
	uint8_t *kek = NULL, *tk = NULL;
	CK_RV rv = verify_pin_inlock(t, who, pin, len, required ? &kek : NULL);
	if (rv == CKR_OK && t->login != NO_LOGIN)
		rv = t->login == who ? CKR_USER_ALREADY_LOGGED_IN
				     : CKR_USER_ANOTHER_ALREADY_LOGGED_IN;
	if (rv == CKR_OK && required && !t->tk) {
		rv = unseal_inlock(t, role_name(who), kek, &tk, deverr);
		if (rv == CKR_OK && t->login != NO_LOGIN) {
			sec_free(tk);
			rv = t->login == who ? CKR_USER_ALREADY_LOGGED_IN
					     : CKR_USER_ANOTHER_ALREADY_LOGGED_IN;
		} else if (rv == CKR_OK) {
			set_tk_inlock(t, tk);
		}
	}
	sec_free(kek);
	if (rv == CKR_OK) {
		t->login = who;
		log_info("token", "slot %lu: %s logged in", (unsigned long)t->slot_id,
			 role_name(who));
	}
	return rv;
}

void token_lock_inlock(token_t *t)
{
	if (t->cfg->login == LOGIN_REQUIRED && t->tk)
		set_tk_inlock(t, NULL);
	if (t->cfg->login == LOGIN_REQUIRED) {
		size_t it = 0;
		uint64_t k;
		void *v;
		while (hmap_next(&t->by_rowid, &it, &k, &v))
			obj_drop_secrets(v);
	}
}

CK_RV token_logout_inlock(token_t *t)
{
	if (t->login == NO_LOGIN)
		return CKR_USER_NOT_LOGGED_IN;
	token_lock_inlock(t);
	t->login = NO_LOGIN;
	return CKR_OK;
}

/* --- C_InitPIN / C_SetPIN ------------------------------------------------ */

CK_RV token_init_pin_inlock(token_t *t, const CK_UTF8CHAR *pin, CK_ULONG len,
			    CK_ULONG *deverr)
{
	GUARD(check_pin_len(len));
	GUARD(token_sync_inlock(t));
	GUARD(token_ensure_tk_inlock(t, deverr));
	bool required = t->cfg->login == LOGIN_REQUIRED;
	uint8_t *tk = sec_dup(t->tk, TK_LEN), *kek = NULL, *kms = NULL;
	uint8_t rec[PINREC_LEN];
	size_t kmslen = 0;
	char kv[128] = "";
	seal_rec seal = {0};
	if (!tk)
		return CKR_HOST_MEMORY;
	pthread_mutex_unlock(&slots.lock);
	CK_RV rv = pin_record_new(t, pin, len, rec, &kek) ? CKR_OK : CKR_GENERAL_ERROR;
	/* A fresh KMS encryption for the user's seal: the SO's seal stays
	 * wrapped under the SO's PIN. */
	if (rv == CKR_OK && required)
		rv = seal_tk(t, tk, &kms, &kmslen, kv, sizeof(kv), deverr);
	if (rv == CKR_OK && required)
		rv = make_seal(t, "user", kek, kms, kmslen, kv, &seal);
	sec_free(tk);
	pthread_mutex_lock(&slots.lock);
	p11k_err e = P11K_OK;
	if (rv == CKR_OK)
		e = store_begin(t->store);
	if (rv == CKR_OK && e == P11K_OK) {
		if (required) {
			/* Replace any previous user seal. */
			seal_rec *all = NULL;
			size_t n = 0;
			e = store_seals_load(t->store, &all, &n);
			if (e == P11K_OK)
				e = store_seals_clear(t->store);
			for (size_t i = 0; e == P11K_OK && i < n; i++)
				if (strcmp(all[i].role, "user") != 0)
					e = store_seal_add(t->store, &all[i]);
			seal_recs_free(all, n);
			if (e == P11K_OK)
				e = store_seal_add(t->store, &seal);
		}
		if (e == P11K_OK)
			e = store_meta_put(t->store, "user_pin", rec, PINREC_LEN);
		if (e == P11K_OK)
			e = put_u32(t->store, "user_fail", 0);
		if (e == P11K_OK)
			e = store_commit(t->store);
		else
			store_rollback(t->store);
	}
	if (rv == CKR_OK)
		rv = store_rv(t, e);
	free(seal.blob);
	free(kms);
	sec_free(kek);
	if (rv == CKR_OK) {
		t->user_pin_set = true;
		t->user_fail = 0;
		log_info("token", "slot %lu: user PIN initialized",
			 (unsigned long)t->slot_id);
	}
	return rv;
}

CK_RV token_set_pin_inlock(token_t *t, CK_USER_TYPE who, const CK_UTF8CHAR *old,
			   CK_ULONG oldlen, const CK_UTF8CHAR *new_pin,
			   CK_ULONG newlen)
{
	GUARD(check_pin_len(newlen));
	GUARD(token_sync_inlock(t));
	if (!t->initialized || (who == CKU_USER && !t->user_pin_set))
		return CKR_USER_PIN_NOT_INITIALIZED;
	if (oldlen > PIN_MAX)
		return CKR_PIN_LEN_RANGE;
	bool required = t->cfg->login == LOGIN_REQUIRED;
	const char *role = role_name(who);
	uint8_t *oldkek = NULL, *newkek = NULL, rec[PINREC_LEN];
	CK_RV rv = verify_pin_inlock(t, who, old, oldlen, required ? &oldkek : NULL);
	if (rv != CKR_OK)
		return rv;
	seal_rec *all = NULL;
	size_t n = 0;
	p11k_err e = store_seals_load(t->store, &all, &n);
	if (e != P11K_OK) {
		sec_free(oldkek);
		return store_rv(t, e);
	}
	pthread_mutex_unlock(&slots.lock);
	if (!pin_record_new(t, new_pin, newlen, rec, &newkek))
		rv = CKR_GENERAL_ERROR;
	/* Re-wrap this role's seals under the new PIN: no KMS call. */
	uint8_t paad[64];
	size_t paadlen;
	pin_aad(t, role, paad, &paadlen);
	for (size_t i = 0; rv == CKR_OK && required && i < n; i++) {
		if (strcmp(all[i].role, role) != 0)
			continue;
		uint8_t *kms = NULL, *nb = NULL;
		size_t kmslen = 0, nblen = 0;
		if (gcm_open(oldkek, paad, paadlen, all[i].blob, all[i].bloblen, &kms,
			     &kmslen) != P11K_OK ||
		    gcm_seal(newkek, paad, paadlen, kms, kmslen, &nb, &nblen) != P11K_OK)
			rv = CKR_DEVICE_ERROR;
		sec_free(kms);
		if (rv == CKR_OK) {
			free(all[i].blob);
			all[i].blob = nb;
			all[i].bloblen = nblen;
		}
	}
	pthread_mutex_lock(&slots.lock);
	if (rv == CKR_OK)
		e = store_begin(t->store);
	if (rv == CKR_OK && e == P11K_OK) {
		if (required)
			e = store_seals_clear(t->store);
		for (size_t i = 0; required && e == P11K_OK && i < n; i++)
			e = store_seal_add(t->store, &all[i]);
		if (e == P11K_OK)
			e = store_meta_put(t->store, who == CKU_SO ? "so_pin" : "user_pin",
					   rec, PINREC_LEN);
		if (e == P11K_OK)
			e = store_commit(t->store);
		else
			store_rollback(t->store);
		rv = store_rv(t, e);
	}
	seal_recs_free(all, n);
	sec_free(oldkek);
	sec_free(newkek);
	if (rv == CKR_OK)
		log_info("token", "slot %lu: %s PIN changed", (unsigned long)t->slot_id,
			 role);
	return rv;
}

/* --- object handles ------------------------------------------------------ */

CK_RV object_register_inlock(object_t *o)
{
	o->handle = ++slots.next_object;
	if (!hmap_put(&slots.objects, o->handle, o))
		return CKR_HOST_MEMORY;
	token_t *t = o->tok;
	bool ok = o->session ? hmap_put(&t->session_objs, o->handle, o)
			     : hmap_put(&t->by_rowid, (uint64_t)o->rowid, o);
	if (!ok) {
		hmap_del(&slots.objects, o->handle);
		return CKR_HOST_MEMORY;
	}
	return CKR_OK;
}

void object_unregister_inlock(object_t *o)
{
	hmap_del(&slots.objects, o->handle);
	if (o->session)
		hmap_del(&o->tok->session_objs, o->handle);
	else
		hmap_del(&o->tok->by_rowid, (uint64_t)o->rowid);
}

void token_forget_objects_inlock(token_t *t)
{
	size_t it = 0;
	uint64_t k;
	void *v;
	while (hmap_next(&t->by_rowid, &it, &k, &v)) {
		object_t *o = v;
		hmap_del(&slots.objects, o->handle);
		obj_free(o);
	}
	hmap_free(&t->by_rowid);
	hmap_init(&t->by_rowid);
}

/* --- token object records ----------------------------------------------- */

static bool rec_aad(const object_t *o, const dbuf_t *pub, dbuf_t *aad)
{
	static const char pfx[] = "p11kms-object:v1:";
	return dbuf_add(aad, pfx, sizeof(pfx) - 1) && dbuf_add(aad, o->uid, 16) &&
	       dbuf_add(aad, pub->p, pub->len);
}

static CK_RV seal_record(token_t *t, object_t *o, obj_rec *r, dbuf_t *pub)
{
	dbuf_t sec, aad;
	dbuf_init(&sec, 128u << 20, true);
	dbuf_init(&aad, 128u << 20, false);
	CK_RV rv = CKR_OK;
	if (!obj_serialize(o, false, pub) || !obj_serialize(o, true, &sec) ||
	    !rec_aad(o, pub, &aad))
		rv = CKR_HOST_MEMORY;
	if (rv == CKR_OK && gcm_seal(t->tk, aad.p, aad.len, sec.p, sec.len, &r->sec,
				     &r->seclen) != P11K_OK)
		rv = CKR_GENERAL_ERROR;
	dbuf_free(&sec);
	dbuf_free(&aad);
	if (rv != CKR_OK)
		return rv;
	memcpy(r->uid, o->uid, 16);
	r->cls = obj_ulong(o, CKA_CLASS, 0);
	r->priv = obj_is_private(o);
	const attr_t *l = obj_attr(o, CKA_LABEL), *id = obj_attr(o, CKA_ID);
	r->label = l ? l->val : NULL;
	r->labellen = l ? l->len : 0;
	r->ckaid = id ? id->val : NULL;
	r->ckaidlen = id ? id->len : 0;
	r->pub = pub->p;
	r->publen = pub->len;
	return CKR_OK;
}

CK_RV token_obj_persist_inlock(token_t *t, object_t *o)
{
	if (!t->tk)
		return CKR_USER_NOT_LOGGED_IN;
	obj_rec r = {0};
	dbuf_t pub;
	dbuf_init(&pub, 64u << 20, false);
	CK_RV rv = seal_record(t, o, &r, &pub);
	if (rv == CKR_OK)
		rv = store_rv(t, store_obj_insert(t->store, &r));
	if (rv == CKR_OK) {
		o->rowid = r.rowid;
		o->loaded_version = t->seen_version;
	}
	free(r.sec);
	dbuf_free(&pub);
	return rv;
}

CK_RV token_obj_update_inlock(token_t *t, object_t *o)
{
	if (!t->tk)
		return CKR_USER_NOT_LOGGED_IN;
	obj_rec r = {0};
	dbuf_t pub;
	dbuf_init(&pub, 64u << 20, false);
	CK_RV rv = seal_record(t, o, &r, &pub);
	r.rowid = o->rowid;
	if (rv == CKR_OK)
		rv = store_rv(t, store_obj_update(t->store, &r));
	free(r.sec);
	dbuf_free(&pub);
	return rv;
}

CK_RV token_obj_delete_inlock(token_t *t, object_t *o)
{
	bool found;
	p11k_err e = store_obj_delete(t->store, o->rowid, &found);
	if (e != P11K_OK)
		return store_rv(t, e);
	return found ? CKR_OK : CKR_OBJECT_HANDLE_INVALID;
}

static CK_RV load_secret(token_t *t, object_t *o, const obj_rec *r)
{
	if (!t->tk)
		return CKR_USER_NOT_LOGGED_IN;
	dbuf_t pub, aad;
	dbuf_init(&pub, 64u << 20, false);
	dbuf_init(&aad, 128u << 20, false);
	uint8_t *pt = NULL;
	size_t ptlen = 0;
	CK_RV rv = CKR_OK;
	if (!dbuf_add(&pub, r->pub, r->publen) || !rec_aad(o, &pub, &aad))
		rv = CKR_HOST_MEMORY;
	if (rv == CKR_OK &&
	    gcm_open(t->tk, aad.p, aad.len, r->sec, r->seclen, &pt, &ptlen) != P11K_OK) {
		log_error("token", "slot %lu: object record %lld does not authenticate "
				   "under the token key (tampered, swapped or damaged)",
			  (unsigned long)t->slot_id, (long long)r->rowid);
		t->last.err = P11K_ERR_STORE;
		rv = CKR_DEVICE_ERROR;
	}
	if (rv == CKR_OK) {
		obj_drop_secrets(o);
		if (!obj_deserialize(o, pt, ptlen, true)) {
			log_error("token", "slot %lu: object record %lld is malformed",
				  (unsigned long)t->slot_id, (long long)r->rowid);
			rv = CKR_DEVICE_ERROR;
		} else {
			o->sec_loaded = true;
		}
	}
	sec_free(pt);
	dbuf_free(&pub);
	dbuf_free(&aad);
	return rv;
}

/* Build an object (public part) from a record. */
static object_t *obj_from_rec(token_t *t, const obj_rec *r)
{
	object_t *o = calloc(1, sizeof(*o));
	if (!o)
		return NULL;
	o->tok = t;
	o->rowid = r->rowid;
	memcpy(o->uid, r->uid, 16);
	if (!obj_deserialize(o, r->pub, r->publen, false) ||
	    obj_ulong(o, CKA_CLASS, (CK_ULONG)-1) != r->cls ||
	    obj_is_private(o) != (r->priv != 0)) {
		log_error("token", "slot %lu: object record %lld has a malformed or "
				   "inconsistent public part; skipped",
			  (unsigned long)t->slot_id, (long long)r->rowid);
		obj_free(o);
		return NULL;
	}
	o->loaded_version = t->seen_version;
	/* A public data object has nothing sealed: it is complete already. */
	o->sec_loaded = !obj_attr_sealed(o, CKA_VALUE);
	return o;
}

CK_RV token_obj_refresh_inlock(token_t *t, object_t *o, bool need_secret)
{
	GUARD(token_sync_inlock(t));
	if (!o->stale && (o->sec_loaded || !need_secret))
		return CKR_OK;
	obj_rec r;
	bool found;
	p11k_err e = store_obj_get(t->store, o->rowid, &r, &found);
	if (e != P11K_OK)
		return store_rv(t, e);
	if (!found)
		return CKR_OBJECT_HANDLE_INVALID;
	CK_RV rv = CKR_OK;
	if (o->stale) {
		object_t *fresh = obj_from_rec(t, &r);
		if (!fresh || memcmp(fresh->uid, o->uid, 16) != 0) {
			obj_free(fresh);
			obj_rec_free(&r);
			return CKR_OBJECT_HANDLE_INVALID;
		}
		/* Swap in the new attributes, keep handle and identity. */
		attr_t *oa = o->attrs;
		size_t on = o->nattrs;
		o->attrs = fresh->attrs;
		o->nattrs = fresh->nattrs;
		fresh->attrs = oa;
		fresh->nattrs = on;
		obj_free(fresh);
		o->sec_loaded = !obj_attr_sealed(o, CKA_VALUE);
		o->stale = false;
	}
	if (need_secret)
		rv = load_secret(t, o, &r);
	obj_rec_free(&r);
	return rv;
}

typedef struct find_ctx {
	token_t *t;
	const CK_ATTRIBUTE *tmpl;
	CK_ULONG n;
	bool need_secret;
	CK_OBJECT_HANDLE *h;
	size_t cnt, cap;
	CK_RV rv;
} find_ctx;

static bool find_cb(void *arg, const obj_rec *r)
{
	find_ctx *c = arg;
	object_t *o = hmap_get(&c->t->by_rowid, (uint64_t)r->rowid);
	bool fresh = false;
	if (o && o->stale) {
		c->rv = token_obj_refresh_inlock(c->t, o, false);
		if (c->rv != CKR_OK) {
			c->rv = CKR_OK;
			return true;
		}
	}
	if (!o) {
		o = obj_from_rec(c->t, r);
		if (!o)
			return true; /* logged, skipped: one bad record hides nothing else */
		fresh = true;
	}
	if (c->need_secret && !o->sec_loaded) {
		obj_rec full;
		bool found;
		if (store_obj_get(c->t->store, r->rowid, &full, &found) == P11K_OK &&
		    found) {
			(void)load_secret(c->t, o, &full);
			obj_rec_free(&full);
		}
	}
	if (!obj_match(o, c->tmpl, c->n)) {
		if (fresh)
			obj_free(o);
		return true;
	}
	if (fresh && (c->rv = object_register_inlock(o)) != CKR_OK) {
		obj_free(o);
		return false;
	}
	if (c->cnt == c->cap) {
		size_t ncap = c->cap ? c->cap * 2 : 16;
		CK_OBJECT_HANDLE *nh = realloc(c->h, ncap * sizeof(*nh));
		if (!nh) {
			c->rv = CKR_HOST_MEMORY;
			return false;
		}
		c->h = nh;
		c->cap = ncap;
	}
	c->h[c->cnt++] = o->handle;
	return true;
}

CK_RV token_obj_find_inlock(token_t *t, const CK_ATTRIBUTE *tmpl, CK_ULONG n,
			    bool include_private, CK_OBJECT_HANDLE **handles,
			    size_t *count)
{
	GUARD(token_sync_inlock(t));
	if (!t->store || !t->initialized)
		return CKR_OK;
	find_ctx c = {.t = t, .tmpl = tmpl, .n = n, .h = *handles, .cnt = *count,
		      .cap = *count, .rv = CKR_OK};
	obj_filter f = {.public_only = !include_private};
	uint64_t cls;
	CK_BBOOL tokv;
	for (CK_ULONG i = 0; i < n; i++) {
		const CK_ATTRIBUTE *a = &tmpl[i];
		if (a->type == CKA_LABEL) {
			f.label = a->ulValueLen ? a->pValue : (const uint8_t *)"";
			f.labellen = a->ulValueLen;
		} else if (a->type == CKA_ID) {
			f.ckaid = a->ulValueLen ? a->pValue : (const uint8_t *)"";
			f.ckaidlen = a->ulValueLen;
		} else if (a->type == CKA_CLASS && a->ulValueLen == sizeof(CK_ULONG)) {
			CK_ULONG v;
			memcpy(&v, a->pValue, sizeof(v));
			cls = v;
			f.cls = &cls;
		} else if (a->type == CKA_TOKEN && a->ulValueLen == 1) {
			memcpy(&tokv, a->pValue, 1);
			if (!tokv)
				return CKR_OK; /* session objects only */
		} else if (obj_is_secret_attr(a->type)) {
			c.need_secret = true;
		}
	}
	p11k_err e = store_obj_find(t->store, &f, find_cb, &c);
	*handles = c.h;
	*count = c.cnt;
	if (e != P11K_OK)
		return store_rv(t, e);
	return c.rv;
}

/* --- GCM IV counters -------------------------------------------------------- */

CK_RV token_reserve_counter(void *arg, const uint8_t kid[32], uint64_t count,
			    uint64_t *first)
{
	token_t *t = arg;
	char name[48] = "ivctr:";
	for (int i = 0; i < 16; i++)
		snprintf(name + 6 + 2 * i, 3, "%02x", kid[i]);
	if (!t->store)
		return CKR_USER_NOT_LOGGED_IN;
	uint8_t *v = NULL;
	size_t n = 0;
	bool found = false;
	p11k_err e = store_begin(t->store);
	if (e == P11K_OK)
		e = store_meta_get(t->store, name, &v, &n, &found);
	uint64_t next = 0;
	if (e == P11K_OK && found) {
		rd_t r;
		rd_init(&r, v, n);
		next = rd_u64(&r);
		if (!rd_done(&r))
			e = P11K_ERR_STORE;
	}
	free(v);
	if (e == P11K_OK && next > UINT64_MAX - count)
		e = P11K_ERR_INTERNAL;
	if (e == P11K_OK) {
		uint8_t b[8];
		for (int i = 0; i < 8; i++)
			b[i] = (uint8_t)((next + count) >> (56 - 8 * i));
		e = store_meta_put(t->store, name, b, 8);
	}
	if (e == P11K_OK)
		e = store_commit(t->store);
	else if (e != P11K_ERR_STORE_BUSY)
		store_rollback(t->store);
	if (e != P11K_OK) {
		log_error("token", "slot %lu: cannot reserve IV counters: %s",
			  (unsigned long)t->slot_id, p11k_err_name(e));
		return p11k_err_to_ckr(e);
	}
	*first = next;
	return CKR_OK;
}

/* --- KMS key objects ------------------------------------------------------ */

typedef struct kms_attr {
	CK_ATTRIBUTE_TYPE t;
	const void *v;
	size_t n;
} kms_attr;

static bool kms_attrs_set(object_t *o, const kms_attr *a, size_t n)
{
	bool ok = true;
	for (size_t j = 0; ok && j < n; j++)
		ok = obj_set(o, a[j].t, a[j].v, a[j].n);
	return ok;
}

/* One face of configured KMS key i (docs/REMOTE.md, "Objects"). */
static CK_RV kms_object_add_inlock(token_t *t, size_t i, enum kms_role role)
{
	const kms_key_cfg *k = &t->cfg->keys[i];
	object_t *o = calloc(1, sizeof(*o));
	if (!o)
		return CKR_HOST_MEMORY;
	static const CK_OBJECT_CLASS classes[] = {
		[KMS_ROLE_ENVELOPE] = CKO_SECRET_KEY, [KMS_ROLE_AES] = CKO_SECRET_KEY,
		[KMS_ROLE_RSA_PUBLIC] = CKO_PUBLIC_KEY, [KMS_ROLE_RSA_PRIVATE] = CKO_PRIVATE_KEY};
	static const CK_KEY_TYPE types[] = {
		[KMS_ROLE_ENVELOPE] = CKK_P11KMS_KMS, [KMS_ROLE_AES] = CKK_AES,
		[KMS_ROLE_RSA_PUBLIC] = CKK_RSA, [KMS_ROLE_RSA_PRIVATE] = CKK_RSA};
	CK_OBJECT_CLASS cls = classes[role];
	CK_KEY_TYPE kt = types[role];
	CK_BBOOL T = CK_TRUE, F = CK_FALSE;
	CK_BBOOL secret = role == KMS_ROLE_ENVELOPE || role == KMS_ROLE_AES;
	CK_BBOOL enc = secret || role == KMS_ROLE_RSA_PUBLIC;
	CK_BBOOL dec = secret || role == KMS_ROLE_RSA_PRIVATE;
	CK_ULONG unavailable = CK_UNAVAILABLE_INFORMATION;
	CK_ULONG value_len = k->bits / 8;
	const kms_attr common[] = {
		{CKA_CLASS, &cls, sizeof(cls)}, {CKA_KEY_TYPE, &kt, sizeof(kt)},
		{CKA_TOKEN, &T, 1}, {CKA_PRIVATE, &F, 1}, {CKA_MODIFIABLE, &F, 1},
		{CKA_COPYABLE, &F, 1}, {CKA_DESTROYABLE, &F, 1},
		{CKA_LABEL, k->label, strlen(k->label)},
		{CKA_ID, k->id, strlen(k->id)},
		{CKA_P11KMS_KMS_KEY_ID, k->id, strlen(k->id)},
		{CKA_LOCAL, &F, 1}, {CKA_KEY_GEN_MECHANISM, &unavailable, sizeof(unavailable)},
		{CKA_DERIVE, &F, 1}, {CKA_START_DATE, "", 0}, {CKA_END_DATE, "", 0},
		{CKA_ALLOWED_MECHANISMS, "", 0},
	};
	/* Secret and private faces hold (remote) material: sensitive, and
	 * never extractable. */
	const kms_attr material[] = {
		{CKA_SENSITIVE, &T, 1}, {CKA_EXTRACTABLE, &F, 1},
		{CKA_ALWAYS_SENSITIVE, &T, 1}, {CKA_NEVER_EXTRACTABLE, &T, 1},
		{CKA_DECRYPT, &dec, 1}, {CKA_UNWRAP, &dec, 1}, {CKA_SIGN, &F, 1},
		{CKA_WRAP_WITH_TRUSTED, &F, 1},
	};
	const kms_attr encrypting[] = {
		{CKA_ENCRYPT, &enc, 1}, {CKA_WRAP, &enc, 1}, {CKA_VERIFY, &F, 1},
		{CKA_TRUSTED, &F, 1},
	};
	const kms_attr aes[] = {{CKA_VALUE_LEN, &value_len, sizeof(value_len)}};
	const kms_attr rsa_public[] = {{CKA_SUBJECT, "", 0}, {CKA_VERIFY_RECOVER, &F, 1}};
	const kms_attr rsa_private[] = {{CKA_SUBJECT, "", 0}, {CKA_SIGN_RECOVER, &F, 1},
					{CKA_ALWAYS_AUTHENTICATE, &F, 1}};
	bool ok = kms_attrs_set(o, common, ARRAY_SIZE(common));
	if (role != KMS_ROLE_RSA_PUBLIC)
		ok = ok && kms_attrs_set(o, material, ARRAY_SIZE(material));
	if (role != KMS_ROLE_RSA_PRIVATE)
		ok = ok && kms_attrs_set(o, encrypting, ARRAY_SIZE(encrypting));
	if (role == KMS_ROLE_AES)
		ok = ok && kms_attrs_set(o, aes, ARRAY_SIZE(aes));
	if (role == KMS_ROLE_RSA_PUBLIC)
		ok = ok && kms_attrs_set(o, rsa_public, ARRAY_SIZE(rsa_public));
	if (role == KMS_ROLE_RSA_PRIVATE)
		ok = ok && kms_attrs_set(o, rsa_private, ARRAY_SIZE(rsa_private));
	char uid[48];
	/* A stable identity: the same key gets the same CKA_UNIQUE_ID. */
	uint32_t h = 2166136261u;
	for (const char *p = k->id; *p; p++)
		h = (h ^ (unsigned char)*p) * 16777619u;
	static const char *const suffix[] = {"", "", "-pub", "-priv"};
	snprintf(uid, sizeof(uid), "kms-%08x-%lu%s", h, (unsigned long)t->slot_id, suffix[role]);
	ok = ok && obj_set(o, CKA_UNIQUE_ID, uid, strlen(uid));
	o->tok = t;
	o->kms = true;
	o->kms_index = i;
	o->kms_role = (uint8_t)role;
	o->sec_loaded = true;
	o->handle = ++slots.next_object;
	if (!ok || !hmap_put(&slots.objects, o->handle, o)) {
		obj_free(o);
		return CKR_HOST_MEMORY;
	}
	t->kms_objs[t->nkms++] = o;
	return CKR_OK;
}

CK_RV token_kms_objects_create_inlock(token_t *t)
{
	if (!t->cfg->nkeys)
		return CKR_OK;
	t->kms_objs = calloc(t->cfg->nkeys * 3, sizeof(*t->kms_objs));
	if (!t->kms_objs)
		return CKR_HOST_MEMORY;
	for (size_t i = 0; i < t->cfg->nkeys; i++) {
		switch (t->cfg->keys[i].type) {
		case KMS_KEY_ENVELOPE:
			GUARD(kms_object_add_inlock(t, i, KMS_ROLE_ENVELOPE));
			break;
		case KMS_KEY_AES:
			GUARD(kms_object_add_inlock(t, i, KMS_ROLE_AES));
			break;
		case KMS_KEY_RSA:
			GUARD(kms_object_add_inlock(t, i, KMS_ROLE_ENVELOPE));
			GUARD(kms_object_add_inlock(t, i, KMS_ROLE_RSA_PUBLIC));
			GUARD(kms_object_add_inlock(t, i, KMS_ROLE_RSA_PRIVATE));
			break;
		}
	}
	return CKR_OK;
}

void token_kms_objects_free_inlock(token_t *t)
{
	for (size_t i = 0; i < t->nkms; i++) {
		hmap_del(&slots.objects, t->kms_objs[i]->handle);
		obj_free(t->kms_objs[i]);
	}
	free(t->kms_objs);
	t->kms_objs = NULL;
	t->nkms = 0;
}

CK_RV token_kms_call(void *tok, bool encrypt, const char *key_id,
		     const uint8_t *ctx, size_t ctxlen, const uint8_t *in,
		     size_t inlen, uint8_t **out, size_t *outlen)
{
	token_t *t = tok;
	provider_status st = {0};
	uint8_t *res = NULL;
	size_t reslen = 0;
	char kv[128] = "";
	p11k_err e;
	if (encrypt) {
		e = t->cfg->ops->encrypt(t->prov, key_id, in, inlen, ctx, ctxlen, &res,
					 &reslen, kv, sizeof(kv), &st);
		if (e == P11K_OK) {
			uint8_t *sec = sec_dup(res, reslen);
			free(res);
			res = sec;
			if (!res)
				e = P11K_ERR_NOMEM;
		}
	} else {
		e = t->cfg->ops->decrypt(t->prov, key_id, in, inlen, ctx, ctxlen, &res,
					 &reslen, &st);
	}
	if (e != P11K_OK) {
		st.err = e;
		pthread_mutex_lock(&slots.lock);
		note_provider_error(t, &st, encrypt ? "KMS encrypt" : "KMS decrypt");
		pthread_mutex_unlock(&slots.lock);
		return p11k_err_to_ckr(e);
	}
	*out = res;
	*outlen = reslen;
	return CKR_OK;
}

size_t token_kms_max(void *tok, size_t inlen)
{
	token_t *t = tok;
	return t->cfg->ops->max_blob_len(t->prov, inlen);
}

/* A standard algorithm on configured KMS key idx (docs/REMOTE.md). Called
 * without the module lock. */
CK_RV token_kms_std(void *tok, size_t idx, remote_req *r, uint8_t **out, size_t *outlen)
{
	token_t *t = tok;
	provider_status st = {0};
	const kms_key_cfg *k = &t->cfg->keys[idx];
	p11k_err e = P11K_ERR_KEY_TYPE;
	if (t->cfg->ops->remote_crypt)
		e = t->cfg->ops->remote_crypt(t->prov, k->id, r, out, outlen, &st);
	else
		provider_status_set(&st, e, "the %s provider runs no standard algorithm",
				    t->cfg->ops->type);
	if (e == P11K_OK)
		return CKR_OK;
	st.err = e;
	pthread_mutex_lock(&slots.lock);
	note_provider_error(t, &st, r->encrypt ? "KMS encrypt (standard mechanism)"
					       : "KMS decrypt (standard mechanism)");
	pthread_mutex_unlock(&slots.lock);
	return p11k_err_to_ckr(e);
}

/* The RSA key pair objects of configured key idx. */
static void rsa_faces_inlock(token_t *t, size_t idx, object_t **pub, object_t **priv)
{
	*pub = *priv = NULL;
	for (size_t i = 0; i < t->nkms; i++) {
		object_t *o = t->kms_objs[i];
		if (o->kms_index != idx)
			continue;
		if (o->kms_role == KMS_ROLE_RSA_PUBLIC)
			*pub = o;
		else if (o->kms_role == KMS_ROLE_RSA_PRIVATE)
			*priv = o;
	}
}

static size_t modulus_len_inlock(token_t *t, size_t idx)
{
	object_t *pub, *priv;
	rsa_faces_inlock(t, idx, &pub, &priv);
	const attr_t *n = pub ? obj_attr(pub, CKA_MODULUS) : NULL;
	return n ? n->len : 0;
}

/* The modulus length of RSA key idx, asking the KMS for the public key
 * the first time and keeping it on both key objects. Called without the
 * module lock. */
CK_RV token_kms_rsa_modlen(void *tok, size_t idx, size_t *modlen)
{
	token_t *t = tok;
	pthread_mutex_lock(&slots.lock);
	*modlen = modulus_len_inlock(t, idx);
	pthread_mutex_unlock(&slots.lock);
	if (*modlen)
		return CKR_OK;
	provider_status st = {0};
	uint8_t *n = NULL, *e = NULL;
	size_t nlen = 0, elen = 0;
	p11k_err err = P11K_ERR_KEY_TYPE;
	if (t->cfg->ops->rsa_public)
		err = t->cfg->ops->rsa_public(t->prov, t->cfg->keys[idx].id, &n, &nlen, &e,
					      &elen, &st);
	else
		provider_status_set(&st, err, "the %s provider has no RSA keys",
				    t->cfg->ops->type);
	/* RSA keys the KMSs offer: 2048 to 4096 bits (docs/REMOTE.md). */
	if (err == P11K_OK && (nlen < 256 || nlen > 512 || !n[0] || !elen || elen > 8)) {
		err = P11K_ERR_BAD_REPLY;
		provider_status_set(&st, err, "RSA public key of %zu bytes is out of range",
				    nlen);
	}
	CK_RV rv = CKR_OK;
	pthread_mutex_lock(&slots.lock);
	if (err != P11K_OK) {
		st.err = err;
		note_provider_error(t, &st, "reading the RSA public key");
		rv = p11k_err_to_ckr(err);
		if (rv == CKR_ENCRYPTED_DATA_INVALID)
			rv = CKR_DEVICE_ERROR;
	} else {
		object_t *faces[2];
		rsa_faces_inlock(t, idx, &faces[0], &faces[1]);
		CK_ULONG bits = nlen * 8;
		for (int b = 7; b >= 0 && !(n[0] & (1u << b)); b--)
			bits--;
		for (int f = 0; f < 2; f++)
			if (faces[f] && !obj_attr(faces[f], CKA_MODULUS) &&
			    !(obj_set(faces[f], CKA_MODULUS, n, nlen) &&
			      obj_set(faces[f], CKA_PUBLIC_EXPONENT, e, elen) &&
			      obj_set(faces[f], CKA_MODULUS_BITS, &bits, sizeof(bits))))
				rv = CKR_HOST_MEMORY;
		*modlen = rv == CKR_OK ? modulus_len_inlock(t, idx) : 0;
	}
	pthread_mutex_unlock(&slots.lock);
	free(n);
	free(e);
	return rv;
}

/* --- revalidation --------------------------------------------------------- */

static void revoke_inlock(token_t *t, p11k_err why, const char *what)
{
	if (!t->revoked)
		log_error("token", "slot %lu (%s): %s: the token key and every key "
				   "derived through the KMS are wiped until the key is back",
			  (unsigned long)t->slot_id, t->cfg->name, what);
	t->revoked = true;
	t->revoked_why = why;
	set_tk_inlock(t, NULL);
	size_t it = 0;
	uint64_t k;
	void *v;
	while (hmap_next(&t->by_rowid, &it, &k, &v))
		obj_drop_secrets(v);
	it = 0;
	while (hmap_next(&t->session_objs, &it, &k, &v)) {
		object_t *o = v;
		if (o->kms_derived) {
			object_unregister_inlock(o);
			obj_free(o);
		}
	}
	/* With login required the PIN is needed again to unseal. */
	if (t->cfg->login == LOGIN_REQUIRED)
		t->login = NO_LOGIN;
}

CK_RV token_revalidate_inlock(token_t *t, CK_ULONG *deverr)
{
	uint64_t now = clock_now_s();
	bool due = (t->tk || t->revoked) && !t->checking &&
		   now - t->last_check >= t->cfg->revalidate_seconds;
	if (!due) {
		if (t->revoked)
			*deverr = p11k_err_to_deverr(t->revoked_why);
		return t->revoked ? CKR_DEVICE_ERROR : CKR_OK;
	}
	t->checking = true;
	t->last_check = now;
	key_info ki;
	provider_status st = {0};
	const char *kid = seal_key(t);
	pthread_mutex_unlock(&slots.lock);
	p11k_err e = t->cfg->ops->describe(t->prov, kid, &ki, &st);
	pthread_mutex_lock(&slots.lock);
	t->checking = false;
	if (e == P11K_OK && ki.state == KEY_STATE_ENABLED) {
		if (t->revoked)
			log_info("token", "slot %lu (%s): KMS key %s is usable again",
				 (unsigned long)t->slot_id, t->cfg->name, kid);
		t->revoked = false;
		t->last_ok = now;
		return CKR_OK;
	}
	if (e == P11K_OK)
		e = ki.state == KEY_STATE_DISABLED || ki.state == KEY_STATE_PENDING_DELETION
			    ? P11K_ERR_KEY_DISABLED
			    : P11K_ERR_KEY_NOT_FOUND;
	st.err = e;
	note_provider_error(t, &st, "revalidating the sealing key");
	*deverr = p11k_err_to_deverr(e);
	if (e == P11K_ERR_UNREACHABLE || e == P11K_ERR_THROTTLED) {
		if (now - t->last_ok <= t->cfg->offline_grace_seconds) {
			log_warn("token", "slot %lu (%s): KMS unreachable; working on for "
					  "up to %llu s of grace",
				 (unsigned long)t->slot_id, t->cfg->name,
				 (unsigned long long)(t->cfg->offline_grace_seconds -
						      (now - t->last_ok)));
			return t->revoked ? CKR_DEVICE_ERROR : CKR_OK;
		}
		revoke_inlock(t, e, "KMS unreachable for longer than the grace period");
		return CKR_DEVICE_ERROR;
	}
	revoke_inlock(t, e, p11k_err_name(e));
	return CKR_DEVICE_ERROR;
}

kms_port token_kms_port(token_t *t)
{
	return (kms_port){.tok = t, .call = token_kms_call, .max = token_kms_max,
			  .std = token_kms_std, .modlen = token_kms_rsa_modlen};
}
