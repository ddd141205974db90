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

void seal_aad(const uint8_t uuid[16], uint8_t *aad, size_t *len)
{
	static const char pfx[] = "p11kms-token-key:v1:";
	memcpy(aad, pfx, sizeof(pfx) - 1);
	memcpy(aad + sizeof(pfx) - 1, uuid, 16);
	*len = sizeof(pfx) - 1 + 16;
}

void pin_aad(const uint8_t uuid[16], const char *role, uint8_t *aad, size_t *len)
{
	int n = snprintf((char *)aad, 64, "p11kms-pin-seal:v1:%s:", role);
	memcpy(aad + n, uuid, 16);
	*len = (size_t)n + 16;
}

const char *seal_key(const token_t *t)
{
	return t->cfg->seal_key ? t->cfg->seal_key
				: t->cfg->ops->default_seal_key(t->prov);
}

p11k_err seal_tk(token_t *t, const uint8_t uuid[16], const uint8_t *tk, uint8_t **blob,
		 size_t *bloblen, char *kv, size_t kvlen, provider_status *st)
{
	uint8_t aad[64];
	size_t aadlen;
	seal_aad(uuid, aad, &aadlen);
	p11k_err e = t->cfg->ops->encrypt(t->prov, seal_key(t), tk, TK_LEN, aad, aadlen,
					  blob, bloblen, kv, kvlen, st);
	if (e != P11K_OK)
		st->err = e;
	return e;
}

CK_RV seal_rv(p11k_err e, CK_ULONG *deverr)
{
	if (e == P11K_OK)
		return CKR_OK;
	*deverr = p11k_err_to_deverr(e);
	/* C_InitToken, C_InitPIN and C_Login have neither of these: the KMS
	 * refusing is a device error (ulDeviceError says why). */
	CK_RV rv = p11k_err_to_ckr(e);
	return rv == CKR_ENCRYPTED_DATA_INVALID || rv == CKR_KEY_TYPE_INCONSISTENT
		       ? CKR_DEVICE_ERROR
		       : rv;
}

CK_RV unseal_prepare_inlock(token_t *t, const char *role, unseal_job *u)
{
	memset(u, 0, sizeof(*u));
	u->role = role;
	memcpy(u->uuid, t->uuid, 16);
	GUARD(store_rv(t, store_seals_load(t->store, &u->seals, &u->nseals)));
	t->unsealing++;
	u->marked = true;
	return CKR_OK;
}

CK_RV unseal_call(token_t *t, unseal_job *u, const uint8_t *kek)
{
	uint8_t aad[64], paad[64];
	size_t aadlen, paadlen;
	seal_aad(u->uuid, aad, &aadlen);
	pin_aad(u->uuid, u->role, paad, &paadlen);
	CK_RV rv = CKR_DEVICE_ERROR;
	u->called = true;
	for (size_t i = 0; i < u->nseals && rv != CKR_OK; i++) {
		const seal_rec *sr = &u->seals[i];
		if (strcmp(sr->role, u->role) != 0 || strcmp(sr->provider, t->cfg->name) != 0)
			continue;
		u->any = true;
		uint8_t *kms = sr->blob, *inner = NULL, *pt = NULL;
		size_t kmslen = sr->bloblen, ptlen = 0;
		if (kek) {
			if (gcm_open(kek, paad, paadlen, sr->blob, sr->bloblen, &inner,
				     &kmslen) != P11K_OK) {
				log_error("token", "slot %lu: the %s seal does not open "
						   "with this PIN's key (store damaged?)",
					  (unsigned long)t->slot_id, u->role);
				continue;
			}
			kms = inner;
		}
		provider_status st = {0};
		p11k_err e = t->cfg->ops->decrypt(t->prov, sr->key_id, kms, kmslen, aad,
						  aadlen, &pt, &ptlen, &st);
		sec_free(inner);
		if (e == P11K_OK && ptlen == TK_LEN) {
			u->tk = pt;
			rv = CKR_OK;
			log_info("token", "slot %lu: token key unsealed by %s version %s",
				 (unsigned long)t->slot_id, sr->key_id, sr->key_version);
		} else {
			sec_free(pt);
			st.err = e != P11K_OK ? e : P11K_ERR_BAD_REPLY;
			u->deverr = p11k_err_to_deverr(st.err);
			u->st = st; /* published with the lock: note_provider_error */
			u->failed = true;
		}
	}
	return rv;
}

void unseal_publish_inlock(token_t *t, unseal_job *u, CK_ULONG *deverr)
{
	if (!u->marked)
		return;
	u->marked = false;
	t->unsealing--;
	if (u->failed) {
		note_provider_error(t, &u->st, "unsealing the token key");
		*deverr = u->deverr;
	}
	if (u->tk) {
		/* A successful unseal is an answer from the KMS: the key is usable. */
		t->last_check = t->last_ok = clock_now_s();
		t->revoked = false;
	}
	if (u->called && !u->any)
		log_error("token", "slot %lu: the store has no %s seal for provider "
				   "%s (was the token initialized with another login "
				   "mode or provider?)",
			  (unsigned long)t->slot_id, u->role, t->cfg->name);
}

void unseal_job_free(unseal_job *u)
{
	seal_recs_free(u->seals, u->nseals);
	sec_free(u->tk);
	u->seals = NULL;
	u->nseals = 0;
	u->tk = NULL;
}

/* --- ensure_tk: the login=optional unseal at first need ----------------- */

typedef struct ensure_job {
	unseal_job u;
	CK_ULONG *deverr;
} ensure_job;

static CK_RV ensure_prepare(token_t *t, void *arg)
{
	ensure_job *j = arg;
	return unseal_prepare_inlock(t, "any", &j->u);
}

static CK_RV ensure_call(token_t *t, void *arg)
{
	ensure_job *j = arg;
	return unseal_call(t, &j->u, NULL);
}

static CK_RV ensure_publish(token_t *t, void *arg, CK_RV rv, bool stale)
{
	ensure_job *j = arg;
	unseal_publish_inlock(t, &j->u, j->deverr);
	if (stale)
		return rv == CKR_OK ? CKR_FUNCTION_FAILED : rv; /* a seal of another token */
	if (rv != CKR_OK)
		return rv;
	if (!t->tk) {
		set_tk_inlock(t, j->u.tk);
		j->u.tk = NULL;
	}
	return CKR_OK;
}

static const slots_job_ops ensure_ops = {ensure_prepare, ensure_call, ensure_publish,
					 false};

CK_RV token_ensure_tk(token_t *t, CK_ULONG *deverr)
{
	if (t->tk)
		return CKR_OK;
	if (!t->initialized)
		return CKR_USER_PIN_NOT_INITIALIZED;
	if (t->cfg->login == LOGIN_REQUIRED)
		return CKR_USER_NOT_LOGGED_IN;
	ensure_job j = {.deverr = deverr};
	CK_RV rv = slots_run(t, &ensure_ops, &j);
	unseal_job_free(&j.u);
	return rv;
}

CK_RV make_seal(token_t *t, const uint8_t uuid[16], const char *role, const uint8_t *kek,
		uint8_t *kms, size_t kmslen, const char *kv, seal_rec *out)
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
	pin_aad(uuid, role, paad, &paadlen);
	return gcm_seal(kek, paad, paadlen, kms, kmslen, &out->blob, &out->bloblen) ==
			       P11K_OK
		       ? CKR_OK
		       : CKR_GENERAL_ERROR;
}
