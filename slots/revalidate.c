/* SPDX-License-Identifier: Apache-2.0 */
/* Revalidation of the sealing key (revalidate.h). */
#include "revalidate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "token.h"
#include "token_priv.h"

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

/* A job (slots.h): prepare marks the check, the call asks the KMS,
 * publish judges the answer. */
typedef struct reval_job {
	uint64_t now;
	const char *kid;
	key_info ki;
	provider_status st;
	p11k_err e;
	CK_ULONG *deverr;
} reval_job;

static CK_RV reval_prepare(token_t *t, void *arg)
{
	reval_job *j = arg;
	t->checking = true;
	t->last_check = j->now;
	j->kid = seal_key(t);
	return CKR_OK;
}

static CK_RV reval_call(token_t *t, void *arg)
{
	reval_job *j = arg;
	j->e = t->cfg->ops->describe(t->prov, j->kid, &j->ki, &j->st);
	return CKR_OK;
}

/* The sealing key is configuration, not token identity: a stale job's
 * answer is still an answer about the key. */
static CK_RV reval_publish(token_t *t, void *arg, CK_RV rv, bool stale)
{
	(void)rv;
	(void)stale;
	reval_job *j = arg;
	uint64_t now = j->now;
	const char *kid = j->kid;
	key_info ki = j->ki;
	provider_status st = j->st;
	p11k_err e = j->e;
	CK_ULONG *deverr = j->deverr;
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

static const slots_job_ops reval_ops = {reval_prepare, reval_call, reval_publish, false};

CK_RV token_revalidate(token_t *t, CK_ULONG *deverr)
{
	uint64_t now = clock_now_s();
	bool due = (t->tk || t->revoked) && !t->checking &&
		   now - t->last_check >= t->cfg->revalidate_seconds;
	if (!due) {
		if (t->revoked)
			*deverr = p11k_err_to_deverr(t->revoked_why);
		return t->revoked ? CKR_DEVICE_ERROR : CKR_OK;
	}
	reval_job j = {.now = now, .deverr = deverr};
	return slots_run(t, &reval_ops, &j);
}
