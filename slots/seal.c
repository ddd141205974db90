/* SPDX-License-Identifier: Apache-2.0 */
/* Seal and unseal of the token key (seal.h). */
#include "seal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/crypto.h"
#include "common/log.h"
#include "common/secmem.h"
#include "pin.h"
#include "token.h"
#include "token_priv.h"

/* --- sealing ------------------------------------------------------------
 * A seal is a KMS encryption of the TK under the token's sealing key,
 * with the token's uuid as encryption context (AAD). In login=required
 * mode each seal is further wrapped (AES-256-GCM) by the key derived from
 * the user's or the SO's PIN, one row per role; in login=optional mode
 * there is one row with role "any".
 */
void seal_aad(const token_t *t, uint8_t *aad, size_t *len)
{
	static const char pfx[] = "p11kms-token-key:v1:";
	memcpy(aad, pfx, sizeof(pfx) - 1);
	memcpy(aad + sizeof(pfx) - 1, t->uuid, 16);
	*len = sizeof(pfx) - 1 + 16;
}

void pin_aad(const token_t *t, const char *role, uint8_t *aad,
		    size_t *len)
{
	int n = snprintf((char *)aad, 64, "p11kms-pin-seal:v1:%s:", role);
	memcpy(aad + n, t->uuid, 16);
	*len = (size_t)n + 16;
}

const char *seal_key(const token_t *t)
{
	return t->cfg->seal_key ? t->cfg->seal_key
				: t->cfg->ops->default_seal_key(t->prov);
}

/* KMS-encrypt tk. Called without the module lock. */
CK_RV seal_tk(token_t *t, const uint8_t *tk, uint8_t **blob,
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
CK_RV unseal_inlock(token_t *t, const char *role, const uint8_t *kek,
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

/* Build the seal row for role: the KMS blob, PIN-wrapped when kek. */
CK_RV make_seal(token_t *t, const char *role, const uint8_t *kek,
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
