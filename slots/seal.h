/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The seal of the token key (TK), seal format 2 (docs/LIFECYCLE.md):
 * three layers, each kept by one thing, so each can change alone.
 *
 *   KMS layer  KS, 32 random bytes, is the only secret a KMS encrypts:
 *              one "kms" seal row per key of "seal_with" (policy "any":
 *              each row holds KS; "all": each holds a share, KS is their
 *              XOR). Rotation re-encrypts KS: no PIN needed.
 *   PIN layer  X, 32 random bytes (login=required only), wrapped by each
 *              role's PIN-derived key: rows "pin-so" and "pin-user".
 *              C_SetPIN rewraps it locally; C_InitPIN needs no KMS.
 *   TK seal    meta "tk_seal" = GCM(KS, GCM(X, TK)) (GCM(KS, TK) without
 *              a PIN layer): opening it needs both.
 *
 * In memory the three keys sit in one secure block t->tk: TK, then KS,
 * then X (token_t.tk), wiped together.
 *
 * Unsealing and resealing are the three steps of a job (slots.h):
 * prepare copies the rows, the call opens them and asks the KMS (and
 * describes the sealing keys, to reseal what an older key version made),
 * publish installs the keys and writes new seal rows.
 */
#ifndef P11KMS_SEAL_H
#define P11KMS_SEAL_H

#include "slots.h"

#define TK_LEN 32
#define KS_LEN 32
#define X_LEN 32
/* The secure block t->tk: TK | KS | X | TK' | has TK'. TK' is the next
 * token key while a rekey is under way (slots/rekey.h): records are under
 * TK or TK', new ones are written under TK'. */
#define TK_BLOCK_LEN (TK_LEN + KS_LEN + X_LEN + TK_LEN + 1)
#define TK_KS(b) ((b) + TK_LEN)
#define TK_X(b) ((b) + TK_LEN + KS_LEN)
#define TK_NEXT(b) ((b) + TK_LEN + KS_LEN + X_LEN)
#define TK_HAS_NEXT(b) ((b)[TK_LEN + KS_LEN + X_LEN + TK_LEN])
/* The key new records are written under. */
#define TK_WRITE(b) (TK_HAS_NEXT(b) ? TK_NEXT(b) : (b))

#define SEAL_FORMAT "2"
#define ROLE_KMS "kms"

/* The key and the provider of seal ref i of t's configuration. */
typedef struct seal_target {
	const provider_cfg *cfg; /* the provider (name, ops) */
	void *prov;
	const char *key_id;
} seal_target;

bool seal_target_of(const token_t *t, size_t i, seal_target *out);

/* The stored seal rows of a token and what they mean, copied for a job. */
typedef struct seal_set {
	seal_rec *rows;
	size_t nrows;
	seal_policy policy;   /* of the stored "kms" rows */
	uint8_t *tk_seal;
	size_t tk_seal_len;
	uint8_t *tk_next;     /* "tk_seal_next": a rekey under way, or NULL */
	size_t tk_next_len;
	uint32_t tk_gen;      /* "tk_gen": bumps at each step of a rekey */
	bool v2;              /* seal format 2 (else an unusable store) */
} seal_set;

/* Open the token key(s) of s with ks and x (x NULL in optional mode) into
 * the block b (TK, and TK' when a rekey is under way; KS and X copied). */
P11K_WUR p11k_err tk_keys_open(const uint8_t uuid[16], const seal_set *s, const uint8_t *ks,
			       const uint8_t *x, uint8_t *b);
/* Read the token key meta of t again after another process changed it
 * (load_meta): refreshes t->tk from KS and X it holds, no KMS call. */
void tk_keys_refresh_inlock(token_t *t);

/* Copy t's rows (lock held; store read). */
CK_RV seal_set_load_inlock(token_t *t, seal_set *s);
void seal_set_free(seal_set *s);

/* What a reseal found and made: new "kms" rows to replace the stored ones. */
typedef struct reseal_plan {
	bool write;           /* rows below replace every stored "kms" row */
	bool incomplete;      /* some key that needs a new seal could not make it */
	provider_status fail; /* why (the first refusal) */
	seal_rec *rows;
	size_t nrows;
	char why[640];        /* what changed, for the log */
	/* The primary seal (the first configured key) after the plan. */
	char key_id[256], key_version[128];
	/* Per configured key: what describe said (for revalidation). */
	size_t nrefs;
	p11k_err ref_err[SEAL_MAX_REFS];
	key_info ref_info[SEAL_MAX_REFS];
	provider_status ref_st[SEAL_MAX_REFS];
} reseal_plan;

/* No lock. Describe every configured sealing key (warning in the log
 * when its current version is older than rotation_age_days) and, when
 * ks is given, plan new "kms" rows for every key whose stored seal is not
 * of its current version, is missing, or is no longer configured, and
 * for a changed policy. force: new rows for every key. */
void reseal_plan_make(token_t *t, const uint8_t uuid[16], const seal_set *have,
		      const uint8_t *ks, bool force, reseal_plan *p);
/* Replace the "kms" rows (and the stored policy) in one transaction: the
 * new seals are committed before the old ones are gone. Store held. */
P11K_WUR p11k_err reseal_write(token_t *t, const reseal_plan *p);
void reseal_plan_free(reseal_plan *p);
/* Publish a plan under the lock: write (best effort when the store is
 * busy, logged), remember the primary seal's id and version. */
void reseal_publish_inlock(token_t *t, reseal_plan *p);

/* Make every configured key's "kms" row for ks (init). No lock; all
 * must succeed. */
p11k_err seal_rows_make(token_t *t, const uint8_t uuid[16], const uint8_t *ks,
			seal_rec **rows, size_t *nrows, provider_status *st);
/* tk_seal for tk under ks (and x when given). */
p11k_err tk_seal_make(const uint8_t uuid[16], const uint8_t *tk, const uint8_t *ks,
		      const uint8_t *x, uint8_t **blob, size_t *len);
/* The "pin-<role>" row wrapping x under kek. */
CK_RV pin_row_make(const uint8_t uuid[16], const char *role, const uint8_t *kek,
		   const uint8_t *x, seal_rec *out);
/* Open the "pin-<role>" row of rows with kek: *x is secure memory. */
CK_RV pin_row_open(const uint8_t uuid[16], const char *role, const uint8_t *kek,
		   const seal_rec *row, uint8_t **x);
void seal_rec_clear(seal_rec *r);
/* The "pin-<role>" row of s, or NULL. */
const seal_rec *seal_pin_row(const seal_set *s, const char *role);

/* The CKR of a failed KMS call for C_InitToken/C_InitPIN/C_Login; sets
 * *deverr. */
CK_RV seal_rv(p11k_err e, CK_ULONG *deverr);

typedef struct unseal_job {
	const char *role;     /* "so", "user", or "any" (no PIN layer) */
	uint8_t uuid[16];
	seal_set set;
	bool marked;          /* t->unsealing counts this job */
	bool called;          /* unseal_call ran (the PIN was right) */
	bool failed;          /* the KMS refused */
	provider_status st;   /* the last refusal */
	CK_ULONG deverr;
	uint8_t *keys;        /* the result, TK_BLOCK_LEN of secure memory */
	reseal_plan plan;
} unseal_job;

/* Copy the seals (marks t->unsealing). Lock held. */
CK_RV unseal_prepare_inlock(token_t *t, const char *role, unseal_job *u);
/* Open the PIN layer (kek NULL for role "any"), ask the KMS, and plan a
 * reseal. No lock. */
CK_RV unseal_call(token_t *t, unseal_job *u, const uint8_t *kek);
/* Note the outcome (unmarks t->unsealing; once) and write the reseal.
 * Lock held, the store held without waiting. */
void unseal_publish_inlock(token_t *t, unseal_job *u, CK_ULONG *deverr);
void unseal_job_free(unseal_job *u);

/* The token key for object records. In login=optional mode the first
 * caller unseals it: one KMS call, a job (slots.h). Called with the lock
 * held, returns with it held, releases it for the KMS call: look the
 * session up again afterwards. In required mode the key is present only
 * while a user or SO is logged in. */
CK_RV token_ensure_tk(token_t *t, CK_ULONG *deverr);

/* Move the token's seals to each sealing key's current version now (the
 * operator's rewrap): needs no PIN, only the KMS. force: reseal every
 * key even when current. *changed says whether rows were written. Called
 * with the lock held, returns with it held, releases it for the KMS. */
CK_RV token_reseal(token_t *t, bool force, bool *changed, CK_ULONG *deverr);

/* --- backups (docs/BACKUP.md) --- */

#define VERIFY_MAX_SEALS 64

/* One "kms" row of a backup and what the KMS says of it now. */
typedef struct verify_seal {
	char provider[64], key_id[256], key_version[128];
	bool configured;          /* a provider of that name is configured */
	p11k_err describe_err;    /* the key, as describe sees it */
	key_info info;
	provider_status describe_st;
	p11k_err open_err;        /* this row's KMS decrypt */
	provider_status open_st;
} verify_seal;

typedef struct verify_report {
	uint8_t uuid[16];         /* the backup's token */
	bool login_required;
	seal_policy policy;
	size_t nseals;
	verify_seal seals[VERIFY_MAX_SEALS];
	bool ks_open;             /* the KMS layer opens under the policy */
	bool tk_outer;            /* tk_seal's outer layer authenticates under KS */
	bool pin_tried, pin_ok;   /* a PIN was given; it opened X */
	bool tk_open;             /* TK opened (optional mode, or with the PIN) */
	uint64_t nrecords, records_ok;
	int64_t bad_record;       /* the first record that failed, or 0 */
	char why[768];            /* the first failure, one line; "" when none */
} verify_report;

/* Does the backup b open now, with t's configuration (its providers,
 * by the names the rows record)? Each "kms" row alone: its provider's
 * describe and its KMS decrypt; then KS under the backup's own policy,
 * tk_seal's outer layer under KS; with pin (NULL: none) X, TK and every
 * object record (in login=optional mode TK and the records need no PIN).
 * Reads b only. No lock: it calls the KMS, and touches only t's
 * immutable cfg and the providers. P11K_ERR_STORE when b holds no
 * initialized format-2 token (r->why says why); otherwise P11K_OK with
 * the findings in r. */
P11K_WUR p11k_err seal_verify_backup(token_t *t, store_t *b, const char *pin, size_t pinlen,
				     verify_report *r);

#endif
