/* SPDX-License-Identifier: Apache-2.0 */
/* Revalidation of the sealing key (revalidate.h). */
#include "revalidate.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/clock.h"
#include "common/log.h"
#include "common/secmem.h"
#include "audit.h"
#include "revalthread.h"
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
	/* With login required the PIN is needed again to unseal: a logout,
	 * which invalidates the private handles as C_Logout does. */
	if (t->cfg->login == LOGIN_REQUIRED && t->login != NO_LOGIN) {
		t->login = NO_LOGIN;
		token_forget_private_inlock(t);
	}
}

/* A job (slots.h): prepare marks the check and copies the seals and KS,
 * the call describes every sealing key (and reseals what an older
 * version made, while KS is in memory), publish judges the answers under
 * the seal policy. */
typedef struct reval_job {
	uint64_t now;
	uint8_t uuid[16];
	seal_set set;
	uint8_t *ks;
	reseal_plan plan;
	CK_ULONG *deverr;
} reval_job;

static CK_RV reval_prepare(token_t *t, void *arg)
{
	reval_job *j = arg;
	t->checking = true;
	t->last_check = j->now;
	memcpy(j->uuid, t->uuid, 16);
	/* Without the rows or KS the check still asks; it only cannot reseal. */
	if (t->tk && t->store && seal_set_load_inlock(t, &j->set) == CKR_OK)
		j->ks = sec_dup(TK_KS(t->tk), KS_LEN);
	return CKR_OK;
}

static CK_RV reval_call(token_t *t, void *arg)
{
	reval_job *j = arg;
	/* In the revalidation thread or, without one, in a caller's: the
	 * audit log names the cause "revalidation" either way. */
	const char *was = audit_caller_set("revalidation");
	reseal_plan_make(t, j->uuid, &j->set, j->ks, false, &j->plan);
	audit_caller_set(was);
	return CKR_OK;
}

static bool transient(p11k_err e)
{
	return e == P11K_ERR_UNREACHABLE || e == P11K_ERR_THROTTLED;
}

/* The sealing keys are configuration, not token identity: a stale job's
 * answer is still an answer about the keys (but its reseal is not). */
static CK_RV reval_publish(token_t *t, void *arg, CK_RV rv, bool stale)
{
	(void)rv;
	reval_job *j = arg;
	uint64_t now = j->now;
	reseal_plan *p = &j->plan;
	t->checking = false;
	size_t nok = 0, nrevoked = 0, nunreach = 0;
	p11k_err cause = P11K_OK;
	for (size_t i = 0; i < p->nrefs; i++) {
		p11k_err e = p->ref_err[i];
		if (e == P11K_OK && p->ref_info[i].state == KEY_STATE_ENABLED) {
			nok++;
			continue;
		}
		if (e == P11K_OK)
			e = p->ref_info[i].state == KEY_STATE_DISABLED ||
					    p->ref_info[i].state == KEY_STATE_PENDING_DELETION
				    ? P11K_ERR_KEY_DISABLED
				    : P11K_ERR_KEY_NOT_FOUND;
		provider_status st = p->ref_st[i];
		st.err = e;
		seal_target tg;
		char what[320];
		snprintf(what, sizeof(what), "revalidating sealing key %s",
			 seal_target_of(t, i, &tg) ? tg.key_id : "(unresolved)");
		note_provider_error(t, &st, what);
		if (transient(e))
			nunreach++;
		else
			nrevoked++;
		/* The cause reported: a refusal over an outage, else the first. */
		if (cause == P11K_OK || (transient(cause) && !transient(e)))
			cause = e;
	}
	bool any = t->cfg->seal_policy == SEAL_ANY;
	bool usable = any ? nok > 0 : nok == p->nrefs;
	if (usable) {
		if (t->revoked)
			log_info("token", "slot %lu (%s): the sealing key%s usable again",
				 (unsigned long)t->slot_id, t->cfg->name,
				 p->nrefs > 1 ? "s are" : " is");
		if (nok < p->nrefs)
			log_warn("token", "slot %lu (%s): %zu of %zu sealing keys failed the "
					  "check; seal_policy \"any\" keeps the token open",
				 (unsigned long)t->slot_id, t->cfg->name, p->nrefs - nok, p->nrefs);
		t->revoked = false;
		t->last_ok = now;
		if (!stale)
			reseal_publish_inlock(t, p);
		return CKR_OK;
	}
	*j->deverr = p11k_err_to_deverr(cause);
	/* Revoked: under "any" every key refused; under "all" one did. */
	bool refused = any ? nunreach == 0 : nrevoked > 0;
	if (!refused) {
		if (now - t->last_ok <= t->cfg->offline_grace_seconds) {
			log_warn("token", "slot %lu (%s): KMS unreachable; working on for "
					  "up to %llu s of grace",
				 (unsigned long)t->slot_id, t->cfg->name,
				 (unsigned long long)(t->cfg->offline_grace_seconds -
						      (now - t->last_ok)));
			return t->revoked ? CKR_DEVICE_ERROR : CKR_OK;
		}
		revoke_inlock(t, cause, "KMS unreachable for longer than the grace period");
		return CKR_DEVICE_ERROR;
	}
	revoke_inlock(t, cause, p11k_err_name(cause));
	return CKR_DEVICE_ERROR;
}

static const slots_job_ops reval_ops = {reval_prepare, reval_call, reval_publish, true};

/* --- scheduling: when a check is due, and who runs it ---------------------- */

uint64_t token_reval_due_in_inlock(const token_t *t, uint64_t now)
{
	if (!(t->tk || t->revoked) || t->checking)
		return REVAL_NONE;
	/* Unsigned: a wall clock stepped back makes the check due at once. */
	uint64_t since = now - t->last_check;
	return since >= t->cfg->revalidate_seconds ? 0 : t->cfg->revalidate_seconds - since;
}

CK_RV token_reval_run(token_t *t, uint64_t now, CK_ULONG *deverr)
{
	reval_job j = {.now = now, .deverr = deverr};
	CK_RV rv = slots_run(t, &reval_ops, &j);
	seal_set_free(&j.set);
	reseal_plan_free(&j.plan);
	sec_free(j.ks);
	return rv;
}

CK_RV token_revalidate(token_t *t, CK_ULONG *deverr)
{
	uint64_t now = clock_now_s();
	bool due = token_reval_due_in_inlock(t, now) == 0;
	/* The revalidation thread runs the checks (revalthread.h); it starts
	 * here, the first time a token has a key in memory or is revoked. The
	 * caller reads the verdict so far and wakes the thread when a check is
	 * due, never waiting for the KMS. Without the thread
	 * (CKF_LIBRARY_CANT_CREATE_OS_THREADS, or none could be made) a due
	 * check runs here, in the caller, as it did before the thread. */
	if ((t->tk || t->revoked) && !revalthread_kick_inlock(due) && due)
		return token_reval_run(t, now, deverr);
	if (t->revoked)
		*deverr = p11k_err_to_deverr(t->revoked_why);
	return t->revoked ? CKR_DEVICE_ERROR : CKR_OK;
}
