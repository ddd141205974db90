/* SPDX-License-Identifier: Apache-2.0 */
/*
 * p11kms: the command-line tool.
 *   p11kms create-key-file PATH   make a local provider key file (a random
 *                                 key and its creation time, mode 0600,
 *                                 never overwrites)
 *   p11kms status [--config PATH] slots, tokens, seals and their key versions
 *   p11kms rewrap [--config PATH] [--slot ID] [--force] [--json]
 *                                 reseal tokens under their keys' current
 *                                 versions (no PIN: only the KMS)
 *   rekey (rekey.c), backup, verify-backup, restore (backup.c), encrypt,
 *   decrypt (stream.c), audit (auditlog.c): their own files
 *   p11kms version
 *   p11kms help [COMMAND], p11kms --help, p11kms COMMAND --help
 * Every command exits 0 ok, 1 warning, 2 failure, 3 usage or configuration
 * error (tool.h, p11kms(1)).
 */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>
#include <openssl/crypto.h>

#include "slots/config.h"
#include "common/crypto.h"
#include "common/log.h"
#include "module/module.h"
#include "providers/local/local.h"
#include "slots/seal.h"
#include "slots/store.h"
#include "slots/token.h"
#include "tools/rekey.h"
#include "tools/status.h"
#include "tools/backup.h"
#include "tools/stream.h"
#include "tools/auditlog.h"
#include "tools/tool.h"
#include "slots/audit.h"

/* Each command's synopsis and what it does: `p11kms help`, `p11kms
 * --help` and `p11kms CMD --help` print them to stdout and exit 0; a
 * usage error prints the synopses to stderr and exits 3 (p11kms(1)). */
static const struct command_help {
	const char *name, *synopsis, *text;
} commands[] = {
	{"create-key-file", "p11kms create-key-file PATH",
	 "Write a new key file of a local provider to PATH, mode 0600: a random\n"
	 "256-bit key and the time it was made (the key's age, for the rotation\n"
	 "warning). Prints the key's version (its fingerprint). An existing file\n"
	 "is never overwritten. Back the file up: without it the tokens it seals\n"
	 "cannot be opened.\n"
	 "To rotate a local key: create a new file, make it the provider's\n"
	 "\"key_file\" and list the old one in \"previous_key_files\": the\n"
	 "key_file seals, every listed file unseals. Keep the old file listed\n"
	 "until no seal names its version (p11kms status), and keep a backup of\n"
	 "it for old backups of the store. Exit 0 written, 2 failed, 3 usage.\n"},
	{"status", "p11kms status [--config PATH] [--check] [--json] [--slot NAME]",
	 "Start the module as an application would (the same configuration and\n"
	 "key file checks), then show each slot (or --slot NAME, a slot id or a\n"
	 "provider name): provider, login mode, store, token label, objects, its\n"
	 "seals (the policy, every KMS seal with its key version and age, the PIN\n"
	 "roles). --check also asks the KMS about every sealing key: its\n"
	 "state, current version and its age, whether rotation is due\n"
	 "(rotation_age_days) and whether a reseal is pending (p11kms rewrap).\n"
	 "--json prints one JSON object (schema \"p11kms-status/1\", p11kms(1)).\n"
	 "Exit 0 fine, 1 warning (rotation due, reseal pending, a key of an\n"
	 "\"any\" set failing), 2 critical (a token whose keys refuse or do not\n"
	 "answer, a store unusable), 3 usage or configuration error.\n"},
	{"rekey", "p11kms rekey --slot ID [--config PATH] [--pin-env VAR] [--so] [--json]",
	 "Give the token of slot ID (a slot id or a provider name) a new token\n"
	 "key and re-encrypt every object record under it; the old key is wiped.\n"
	 "No KMS call. Consumers may use the token meanwhile. Safe to interrupt:\n"
	 "the store opens as it is and a new rekey finishes the work. In login\n"
	 "\"required\" mode the tool logs in as the user (--so: the SO) with the\n"
	 "PIN in the environment variable VAR (never on the command line).\n"
	 "Progress goes to stderr (a bar on a terminal). --json: the result as\n"
	 "one JSON object (schema \"p11kms-rekey/1\", p11kms(1)). Exit 0 done,\n"
	 "2 failed, 3 configuration or usage.\n"},
	{"rewrap", "p11kms rewrap [--config PATH] [--slot ID] [--force] [--json]",
	 "Move each token's seals to its sealing keys' current versions, after a\n"
	 "rotation in the KMS, so that the old versions can be disabled or\n"
	 "destroyed. Needs access to the KMS, never a PIN. --slot ID (a slot id\n"
	 "or a provider name) limits it to one slot; --force reseals even seals\n"
	 "that are current. Per slot it prints \"resealed: WHY -> key K version V\",\n"
	 "\"already current\", or the error with its ulDeviceError class; then it\n"
	 "asks the KMS again that every seal is current. Exit 0 when every slot\n"
	 "is current, 2 otherwise, 3 configuration or usage error. Safe while\n"
	 "consumers use the token. --json: one JSON object instead (schema\n"
	 "\"p11kms-rewrap/1\", p11kms(1)).\n"},
	{"backup", BACKUP_SYNOPSIS, BACKUP_HELP},
	{"verify-backup", VERIFY_BACKUP_SYNOPSIS, VERIFY_BACKUP_HELP},
	{"restore", RESTORE_SYNOPSIS, RESTORE_HELP},
	{"encrypt", STREAM_ENCRYPT_SYNOPSIS, STREAM_ENCRYPT_HELP},
	{"decrypt", STREAM_DECRYPT_SYNOPSIS, STREAM_DECRYPT_HELP},
	{"audit", AUDIT_SYNOPSIS, AUDIT_HELP},
	{"version", "p11kms version", "Print the version.\n"},
	{"help", "p11kms help [COMMAND]", "Print this help, or one command's.\n"},
};

static void synopses(FILE *f)
{
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
		fprintf(f, "%s %s\n", i ? "      " : "usage:", commands[i].synopsis);
}

static int usage(void)
{
	synopses(stderr);
	fprintf(stderr, "(p11kms help, or man p11kms, says more)\n");
	return TOOL_EXIT_USAGE;
}

static bool is_help(const char *a)
{
	return strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0 || strcmp(a, "help") == 0;
}

/* name NULL: every command. */
static int help(const char *name)
{
	if (!name) {
		printf("p11kms: the command-line tool of the p11kms PKCS#11 module\n\n");
		synopses(stdout);
		printf("\n");
		for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
			printf("%s\n%s\n", commands[i].synopsis, commands[i].text);
		printf("Exit status, every command: 0 ok, 1 warning, 2 failure or critical, 3 usage\n"
		       "or configuration error. See p11kms(1).\n");
		return 0;
	}
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
		if (strcmp(commands[i].name, name) == 0) {
			printf("usage: %s\n\n%s", commands[i].synopsis, commands[i].text);
			return 0;
		}
	fprintf(stderr, "p11kms: no command \"%s\"\n", name);
	return usage();
}

static int create_key_file(const char *path)
{
	char why[400] = "", fp[LOCAL_FP_HEX_LEN + 1] = "";
	if (!crypto_init()) {
		fprintf(stderr, "p11kms: cannot set up OpenSSL\n");
		return TOOL_EXIT_FAIL;
	}
	if (local_key_file_create(path, clock_now_s(), fp, why, sizeof(why)) != P11K_OK) {
		fprintf(stderr, "p11kms: %s\n", why);
		return TOOL_EXIT_FAIL;
	}
	printf("created %s (key version %s, mode 0600): back it up; without it the "
	       "tokens it seals cannot be opened\n",
	       path, fp);
	return 0;
}

/* A seal row's time and age: "2026-12-04T10:00:00Z (3 days ago)". */
/* --- rewrap ---------------------------------------------------------------- */

/* The ulDeviceError classes of include/p11kms/p11kms.h, by name. */
#define DEVERR(n) [P11KMS_DEVERR_##n] = "P11KMS_DEVERR_" #n
static const char *deverr_name(CK_ULONG d)
{
	static const char *const names[] = {
		DEVERR(NONE),	       DEVERR(KEY_DISABLED), DEVERR(KEY_NOT_FOUND),
		DEVERR(ACCESS_DENIED), DEVERR(UNREACHABLE),  DEVERR(THROTTLED),
		DEVERR(INVALID_CIPHERTEXT), DEVERR(BAD_REPLY), DEVERR(INTERNAL),
		DEVERR(STORE),	       DEVERR(KEY_TYPE),     DEVERR(TLS),
	};
	return d < ARRAY_SIZE(names) && names[d] ? names[d] : "P11KMS_DEVERR_(unknown)";
}
#undef DEVERR

static const seal_rec *kms_row(const seal_set *s, const char *provider, const char *key_id)
{
	for (size_t i = 0; i < s->nrows; i++)
		if (strcmp(s->rows[i].role, ROLE_KMS) == 0 &&
		    strcmp(s->rows[i].provider, provider) == 0 &&
		    strcmp(s->rows[i].key_id, key_id) == 0)
			return &s->rows[i];
	return NULL;
}

__attribute__((format(printf, 3, 4))) static void add_why(char *buf, size_t n, const char *fmt,
							    ...)
{
	size_t l = strlen(buf);
	if (l && l + 2 < n) {
		memcpy(buf + l, "; ", 3);
		l += 2;
	}
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf + l, n - l, fmt, ap);
	va_end(ap);
}

/* Do the stored "kms" rows or policy differ (a new seal is a new blob)? */
static bool rows_differ(const seal_set *a, const seal_set *b)
{
	size_t na = 0, nb = 0;
	for (size_t i = 0; i < a->nrows; i++)
		na += strcmp(a->rows[i].role, ROLE_KMS) == 0;
	for (size_t i = 0; i < b->nrows; i++) {
		const seal_rec *r = &b->rows[i], *o;
		if (strcmp(r->role, ROLE_KMS) != 0)
			continue;
		nb++;
		if (!(o = kms_row(a, r->provider, r->key_id)) || o->bloblen != r->bloblen ||
		    memcmp(o->blob, r->blob, r->bloblen) != 0)
			return true;
	}
	return na != nb || a->policy != b->policy;
}

/* What a reseal changed, from the stored rows before and after. */
static void reseal_why(const seal_set *a, const seal_set *b, bool force, char *out, size_t n)
{
	out[0] = 0;
	if (a->policy != b->policy)
		add_why(out, n, "seal_policy is now \"%s\"", b->policy == SEAL_ALL ? "all" : "any");
	for (size_t i = 0; i < b->nrows; i++) {
		const seal_rec *r = &b->rows[i], *old;
		if (strcmp(r->role, ROLE_KMS) != 0)
			continue;
		if (!(old = kms_row(a, r->provider, r->key_id)))
			add_why(out, n, "new seal under %s key %s", r->provider, r->key_id);
		else if (strcmp(old->key_version, r->key_version) != 0)
			add_why(out, n, "%s key %s was sealed by version %s", r->provider,
				r->key_id, old->key_version);
	}
	for (size_t i = 0; i < a->nrows; i++) {
		const seal_rec *r = &a->rows[i];
		if (strcmp(r->role, ROLE_KMS) == 0 && !kms_row(b, r->provider, r->key_id))
			add_why(out, n, "the seal under %s key %s is no longer configured",
				r->provider, r->key_id);
	}
	if (!out[0])
		snprintf(out, n, "%s", force ? "--force" : "new seals of the same key versions");
}

/* rewrap --json: the slot being done (docs/man/p11kms.1, "JSON results"),
 * or NULL for the text report. */
static json_t *rw_slot;

/* A slot's error: "WHO: error: ..." on stdout, or into its "errors". */
__attribute__((format(printf, 2, 3))) static void rw_error(const char *who, const char *fmt, ...)
{
	char m[1200];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(m, sizeof(m), fmt, ap);
	va_end(ap);
	if (rw_slot)
		json_array_append_new(json_object_get(rw_slot, "errors"), json_string(m));
	else
		printf("%s: error: %s\n", who, m);
}

/* Ask the KMS whether every configured sealing key's stored seal is of its
 * current version; print each that is not, and why. No lock: describes
 * only (reseal_plan_make without KS plans nothing). */
static bool seals_current(token_t *t, const char *who, const uint8_t uuid[16],
			  const seal_set *now)
{
	reseal_plan p;
	reseal_plan_make(t, uuid, now, NULL, false, &p);
	char why[800] = "";
	bool ok = true;
	if (now->policy != t->cfg->seal_policy)
		add_why(why, sizeof(why), "the seals are of seal_policy \"%s\"",
			now->policy == SEAL_ALL ? "all" : "any");
	for (size_t i = 0; i < p.nrefs; i++) {
		seal_target tg;
		const seal_rec *r;
		const char *cur = p.ref_info[i].primary_version;
		if (!seal_target_of(t, i, &tg)) {
			add_why(why, sizeof(why), "seal_with entry %zu names no key", i);
		} else if (p.ref_err[i] != P11K_OK) {
			ok = false;
			rw_error(who, "cannot check sealing key %s: %s%s%s (ulDeviceError %s)",
				 tg.key_id, p11k_err_name(p.ref_err[i]),
			       p.ref_st[i].message[0] ? ": " : "", p.ref_st[i].message,
			       deverr_name(p11k_err_to_deverr(p.ref_err[i])));
		} else if (!(r = kms_row(now, tg.cfg->name, tg.key_id))) {
			add_why(why, sizeof(why), "no seal under %s key %s", tg.cfg->name,
				tg.key_id);
		} else if (cur[0] && strcmp(r->key_version, cur) != 0) {
			add_why(why, sizeof(why),
				"%s key %s: sealed by version %s, current version %s%s",
				tg.cfg->name, tg.key_id, r->key_version, cur,
				p.ref_info[i].state == KEY_STATE_ENABLED ? "" : " (not enabled)");
		}
	}
	for (size_t j = 0; j < now->nrows; j++) {
		const seal_rec *r = &now->rows[j];
		bool listed = false;
		for (size_t i = 0; i < t->cfg->nseals && !listed; i++) {
			seal_target tg;
			listed = seal_target_of(t, i, &tg) &&
				 strcmp(tg.cfg->name, r->provider) == 0 &&
				 strcmp(tg.key_id, r->key_id) == 0;
		}
		if (strcmp(r->role, ROLE_KMS) == 0 && !listed)
			add_why(why, sizeof(why), "a seal under %s key %s, no longer configured",
				r->provider, r->key_id);
	}
	/* Anything else the module itself would reseal for. */
	if (!why[0] && ok && p.why[0])
		snprintf(why, sizeof(why), "%s", p.why);
	if (why[0]) {
		ok = false;
		rw_error(who, "not current: %s", why);
	}
	reseal_plan_free(&p);
	return ok;
}

/* One slot's rewrap; lock held (released inside token_reseal and for the
 * check). true when its seals are current afterwards. */
static bool rewrap_slot(token_t *t, bool force)
{
	char who[200], why[600];
	snprintf(who, sizeof(who), "slot %lu (%s)", (unsigned long)t->slot_id, t->cfg->name);
	CK_RV rv = token_sync_inlock(t);
	if (rv != CKR_OK) {
		rw_error(who, "store %s unusable: %s", t->cfg->store, ckr_name(rv));
		return false;
	}
	if (!t->initialized) {
		if (rw_slot)
			json_object_set_new(rw_slot, "initialized", json_false());
		else
			printf("%s: not initialized: nothing to reseal\n", who);
		return true;
	}
	seal_set before, after;
	if ((rv = seal_set_load_inlock(t, &before)) != CKR_OK) {
		rw_error(who, "cannot read the seals: %s", ckr_name(rv));
		return false;
	}
	bool changed = false;
	CK_ULONG dev = 0;
	rv = token_reseal(t, force, &changed, &dev);
	if (rv == CKR_OK)
		rv = seal_set_load_inlock(t, &after);
	if (rv != CKR_OK) {
		rw_error(who, "%s%s%s%s%s", ckr_name(rv), dev ? ", ulDeviceError " : "",
			 dev ? deverr_name(dev) : "", dev && t->last.message[0] ? ": " : "",
			 dev ? t->last.message : "");
		seal_set_free(&before);
		return false;
	}
	uint8_t uuid[16];
	memcpy(uuid, t->uuid, 16);
	reseal_why(&before, &after, force, why, sizeof(why));
	seal_target tg;
	const seal_rec *primary = seal_target_of(t, 0, &tg) ? kms_row(&after, tg.cfg->name,
								      tg.key_id)
							    : NULL;
	char kv[400] = "(no primary seal)";
	if (primary)
		snprintf(kv, sizeof(kv), "key %s version %s", primary->key_id,
			 primary->key_version);
	/* What the store now says, not only what token_reseal says: rows
	 * rewritten unchanged are no reseal. */
	changed = changed && rows_differ(&before, &after);
	if (rw_slot && primary) {
		json_object_set_new(rw_slot, "key_id", json_string(primary->key_id));
		json_object_set_new(rw_slot, "key_version", json_string(primary->key_version));
	}
	if (changed && rw_slot) {
		json_object_set_new(rw_slot, "resealed", json_true());
		json_object_set_new(rw_slot, "reason", json_string(why));
	} else if (changed) {
		printf("%s: resealed: %s -> %s\n", who, why, kv);
	}
	pthread_mutex_unlock(&slots.lock);
	bool ok = seals_current(t, who, uuid, &after);
	pthread_mutex_lock(&slots.lock);
	if (ok && !changed && !rw_slot)
		printf("%s: already current (%s)\n", who, kv);
	seal_set_free(&before);
	seal_set_free(&after);
	return ok;
}

/* rewrap --json's object (schema "p11kms-rewrap/1"). Takes slots_j. */
static int rewrap_json(int ret, json_t *slots_j)
{
	return tool_json_print(json_pack("{s:s, s:s, s:i, s:o}", "schema", "p11kms-rewrap/1",
					 "status", tool_exit_name(ret), "exit", ret, "slots",
					 slots_j ? slots_j : json_array()),
			       ret);
}

static int rewrap(const char *cfgpath, const char *slot, bool force, bool json)
{
	CK_FUNCTION_LIST *fl = tool_module_start(cfgpath);
	if (!fl)
		return json ? rewrap_json(TOOL_EXIT_USAGE, NULL) : TOOL_EXIT_USAGE;
	json_t *slots_j = json ? json_array() : NULL;
	/* The module's own table, under its lock: token_reseal is a job
	 * (slots/slots.h) like any C_* call would run. */
	pthread_mutex_lock(&slots.lock);
	int ret = 0;
	size_t done = 0;
	for (size_t i = 0; i < slots.ntokens; i++) {
		token_t *t = &slots.tokens[i];
		char id[24];
		snprintf(id, sizeof(id), "%lu", (unsigned long)t->slot_id);
		if (slot && strcmp(slot, id) != 0 && strcmp(slot, t->cfg->name) != 0)
			continue;
		done++;
		if (json)
			rw_slot = json_pack("{s:I, s:s, s:b, s:b, s:n, s:b, s:n, s:n, s:[]}", "slot_id",
					    (json_int_t)t->slot_id, "name", t->cfg->name,
					    "initialized", true, "resealed", false, "reason",
					    "current", false, "key_id", "key_version", "errors");
		bool ok = rewrap_slot(t, force);
		if (!ok)
			ret = TOOL_EXIT_FAIL;
		if (rw_slot) {
			json_object_set_new(rw_slot, "current", json_boolean(ok));
			json_array_append_new(slots_j, rw_slot);
			rw_slot = NULL;
		}
	}
	pthread_mutex_unlock(&slots.lock);
	if (slot && !done) {
		fprintf(stderr, "p11kms: no slot \"%s\" in %s (a slot id or a provider name)\n",
			slot, mod.cfg->path);
		ret = TOOL_EXIT_USAGE;
	}
	fl->C_Finalize(NULL);
	return json ? rewrap_json(ret, slots_j) : ret;
}

int main(int argc, char **argv)
{
	log_apply_env();
	if (argc < 2)
		return usage();
	if (is_help(argv[1]))
		return argc == 2 ? help(NULL) : argc == 3 ? help(argv[2]) : usage();
	if (argc == 3 && (strcmp(argv[2], "--help") == 0 || strcmp(argv[2], "-h") == 0))
		return help(argv[1]);
	/* The audit log names the command as the cause of its KMS calls. */
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
		if (strcmp(argv[1], commands[i].name) == 0)
			audit_tool_set(commands[i].name);
	if (strcmp(argv[1], "audit") == 0)
		return tool_audit(argc - 2, argv + 2);
	if (strcmp(argv[1], "create-key-file") == 0 && argc == 3)
		return create_key_file(argv[2]);
	if (strcmp(argv[1], "status") == 0) {
		int r = tool_status(argc, argv);
		return r < 0 ? usage() : r;
	}
	if (strcmp(argv[1], "rekey") == 0) {
		int r = tool_rekey(argc, argv);
		return r < 0 ? usage() : r;
	}
	if (strcmp(argv[1], "rewrap") == 0) {
		const char *cfg = NULL, *slot = NULL;
		bool force = false, json = false;
		for (int i = 2; i < argc; i++) {
			if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
				cfg = argv[++i];
			else if (strcmp(argv[i], "--slot") == 0 && i + 1 < argc)
				slot = argv[++i];
			else if (strcmp(argv[i], "--force") == 0)
				force = true;
			else if (strcmp(argv[i], "--json") == 0)
				json = true;
			else
				return usage(); /* no PIN, ever: the KMS alone reseals */
		}
		return rewrap(cfg, slot, force, json);
	}
	if (strcmp(argv[1], "backup") == 0)
		return tool_backup(argc - 2, argv + 2);
	if (strcmp(argv[1], "verify-backup") == 0)
		return tool_verify_backup(argc - 2, argv + 2);
	if (strcmp(argv[1], "restore") == 0)
		return tool_restore(argc - 2, argv + 2);
	if (strcmp(argv[1], "encrypt") == 0 || strcmp(argv[1], "decrypt") == 0)
		return stream_main(argc - 1, argv + 1);
	if (strcmp(argv[1], "version") == 0) {
		printf("p11kms %d.%d\n", P11KMS_VERSION_MAJOR, P11KMS_VERSION_MINOR);
		return 0;
	}
	return usage();
}
