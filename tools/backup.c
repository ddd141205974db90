/* SPDX-License-Identifier: Apache-2.0 */
/*
 * p11kms backup / verify-backup / restore (backup.h, docs/BACKUP.md).
 *
 * The store side is slots/store.h (online backup API, read-only open,
 * one-transaction replace); the seal side is seal_verify_backup
 * (slots/seal.h), which asks the KMS through the module's own token
 * table: the module is initialized with the configuration as any
 * consumer would (no network at C_Initialize), and only the KMS calls
 * of the verification run, without the module lock.
 */
#include "backup.h"

#include <errno.h>
#include <stdarg.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "common/clock.h"
#include "common/crypto.h"
#include "common/log.h"
#include "module/module.h"
#include "slots/seal.h"
#include "slots/store.h"
#include "slots/token.h"
#include "tools/tool.h"

#define EXIT_OK TOOL_EXIT_OK
#define EXIT_WARN TOOL_EXIT_WARN
#define EXIT_REFUSED TOOL_EXIT_FAIL
#define EXIT_USAGE TOOL_EXIT_USAGE

#define MANIFEST "backup_manifest"

/* --json (docs/BACKUP.md, "JSON results"): the text findings are not
 * printed, one JSON object is; errors still go to stderr, one line, and
 * into the object's "error". */
static bool as_json;
static char err_text[1200];

__attribute__((format(printf, 1, 2))) static void say(const char *fmt, ...)
{
	if (as_json)
		return;
	va_list ap;
	va_start(ap, fmt);
	vprintf(fmt, ap);
	va_end(ap);
}

/* "p11kms: " and the message on stderr; the message kept for "error". */
__attribute__((format(printf, 1, 2))) static void complain(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(err_text, sizeof(err_text), fmt, ap);
	va_end(ap);
	fprintf(stderr, "p11kms: %s", err_text);
	char *nl = strchr(err_text, '\n');
	if (nl)
		*nl = 0;
}

typedef struct opts {
	const char *config, *slot, *pin_env, *path;
	bool force;
} opts;

/* What restore did, for --json. */
static char restored_to[PATH_MAX], kept_as[PATH_MAX];

/* --config PATH, --slot NAME, --pin-env VAR, --force (as allowed) and
 * one positional path. false: a usage error (said on stderr). */
#define OPT_PIN 1u
#define OPT_FORCE 2u
#define OPT_SLOT 4u /* --slot is required */

static bool parse(int argc, char **argv, const char *synopsis, unsigned flags, opts *o)
{
	bool pin = flags & OPT_PIN, force = flags & OPT_FORCE;
	memset(o, 0, sizeof(*o));
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		bool val = i + 1 < argc;
		if (strcmp(a, "--config") == 0 && val)
			o->config = argv[++i];
		else if (strcmp(a, "--slot") == 0 && val)
			o->slot = argv[++i];
		else if (pin && strcmp(a, "--pin-env") == 0 && val)
			o->pin_env = argv[++i];
		else if (force && strcmp(a, "--force") == 0)
			o->force = true;
		else if (strcmp(a, "--json") == 0)
			as_json = true;
		else if (a[0] != '-' && !o->path)
			o->path = a;
		else {
			complain("unexpected argument \"%s\"\nusage: %s\n", a,
				synopsis);
			return false;
		}
	}
	if (!o->path || ((flags & OPT_SLOT) && !o->slot)) {
		complain("%s is missing\nusage: %s\n",
			o->path ? "--slot NAME" : "a path", synopsis);
		return false;
	}
	return true;
}

/* The token of slot NAME (a provider name or a slot id), or NULL. */
static token_t *find_token(const char *name)
{
	token_t *found = NULL;
	pthread_mutex_lock(&slots.lock);
	for (size_t i = 0; i < slots.ntokens && !found; i++) {
		char id[24];
		snprintf(id, sizeof(id), "%lu", (unsigned long)slots.tokens[i].slot_id);
		if (strcmp(name, id) == 0 || strcmp(name, slots.tokens[i].cfg->name) == 0)
			found = &slots.tokens[i];
	}
	pthread_mutex_unlock(&slots.lock);
	if (!found)
		complain("no slot \"%s\" in %s (a provider name or a slot id)\n",
			name, mod.cfg->path);
	return found;
}

/* Parse, start the module and find --slot's token (*t NULL without
 * --slot). NULL: a usage or configuration error, said on stderr. */
static CK_FUNCTION_LIST *start(int argc, char **argv, const char *synopsis, unsigned flags,
			       opts *o, token_t **t)
{
	*t = NULL;
	if (!parse(argc, argv, synopsis, flags, o))
		return NULL;
	CK_FUNCTION_LIST *fl = tool_module_start(o->config);
	if (fl && o->slot && !(*t = find_token(o->slot))) {
		fl->C_Finalize(NULL);
		fl = NULL;
	}
	return fl;
}

static void hex(const uint8_t *p, size_t n, char *out)
{
	for (size_t i = 0; i < n; i++)
		snprintf(out + 2 * i, 3, "%02x", p[i]);
}

static char *meta_text(store_t *s, const char *name)
{
	uint8_t *v = NULL;
	size_t n = 0;
	bool found = false;
	if (store_meta_get(s, name, &v, &n, &found) != P11K_OK || !found) {
		free(v);
		return NULL;
	}
	char *t = malloc(n + 1);
	if (t) {
		memcpy(t, v, n);
		t[n] = 0;
	}
	free(v);
	return t;
}

static void utc(uint64_t t, char *out, size_t n)
{
	time_t tt = (time_t)t;
	struct tm tm;
	snprintf(out, n, "?");
	if (gmtime_r(&tt, &tm))
		strftime(out, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

/* The JSON result of a command: schema "p11kms-CMD/1", its status and
 * exit, "error" (the stderr line, or null), and the command's fields
 * (docs/BACKUP.md). Takes fields. */
static int json_result(const char *cmd, int ret, json_t *fields)
{
	char schema[48];
	snprintf(schema, sizeof(schema), "p11kms-%s/1", cmd);
	json_t *o = json_pack("{s:s, s:s, s:i, s:s?}", "schema", schema, "status", tool_exit_name(ret),
			      "exit", ret, "error", ret >= EXIT_REFUSED && err_text[0] ? err_text
										  : NULL);
	if (o && fields)
		json_object_update(o, fields);
	json_decref(fields);
	return tool_json_print(o, ret);
}

/* --- backup ------------------------------------------------------------------ */

typedef struct manifest_arg {
	const token_t *t;
	uint64_t made;
	size_t nseals;
	char why[200];
	json_t *manifest; /* the manifest written, for --json */
} manifest_arg;

/* The manifest, from the copy itself: it describes exactly the pages
 * the snapshot holds, whatever the live store did meanwhile. */
static p11k_err write_manifest(store_t *copy, void *arg)
{
	manifest_arg *m = arg;
	uint8_t *uuid = NULL;
	size_t ulen = 0;
	bool found = false;
	seal_rec *rows = NULL;
	size_t nrows = 0;
	uint64_t nobj = 0;
	char made[32], uhex[33];
	p11k_err e = store_meta_get(copy, "uuid", &uuid, &ulen, &found);
	if (e == P11K_OK && (!found || ulen != 16)) {
		snprintf(m->why, sizeof(m->why), "the token is not initialized: nothing to back up");
		e = P11K_ERR_STORE;
	}
	if (e == P11K_OK)
		e = store_seals_load(copy, &rows, &nrows);
	if (e == P11K_OK)
		e = store_obj_count(copy, &nobj);
	if (e != P11K_OK) {
		free(uuid);
		seal_recs_free(rows, nrows);
		return e;
	}
	hex(uuid, 16, uhex);
	utc(m->made, made, sizeof(made));
	char *label = meta_text(copy, "label"), *login = meta_text(copy, "login_mode"),
	     *policy = meta_text(copy, "seal_policy");
	json_t *seals = json_array();
	for (size_t i = 0; i < nrows; i++)
		if (strcmp(rows[i].role, ROLE_KMS) == 0) {
			json_array_append_new(
				seals, json_pack("{s:s, s:s, s:s, s:I}", "provider", rows[i].provider,
						 "key_id", rows[i].key_id, "key_version",
						 rows[i].key_version, "created",
						 (json_int_t)rows[i].created));
			m->nseals++;
		}
	json_t *j = json_pack("{s:i, s:s, s:I, s:s, s:I, s:{s:s, s:s, s:s}, s:s, s:I, s:o}",
			      "format", 1, "made", made, "made_unix", (json_int_t)m->made,
			      "slot", m->t->cfg->name, "slot_id", (json_int_t)m->t->slot_id,
			      "token", "uuid", uhex, "label", label ? label : "", "login",
			      login ? login : "required", "seal_policy", policy ? policy : "any",
			      "objects", (json_int_t)nobj, "seals", seals);
	char *txt = j ? json_dumps(j, JSON_SORT_KEYS | JSON_COMPACT) : NULL;
	e = txt ? store_meta_put(copy, MANIFEST, txt, strlen(txt)) : P11K_ERR_NOMEM;
	free(txt);
	json_decref(m->manifest);
	m->manifest = e == P11K_OK ? j : NULL;
	if (e != P11K_OK)
		json_decref(j);
	free(label);
	free(login);
	free(policy);
	free(uuid);
	seal_recs_free(rows, nrows);
	return e;
}

int tool_backup(int argc, char **argv)
{
	opts o;
	token_t *t;
	CK_FUNCTION_LIST *fl = start(argc, argv, BACKUP_SYNOPSIS, OPT_SLOT, &o, &t);
	if (!fl)
		return as_json ? json_result("backup", EXIT_USAGE, NULL) : EXIT_USAGE;
	int ret = EXIT_USAGE;
	store_t *live = NULL;
	manifest_arg m = {.t = t, .made = clock_now_s()};
	if (!store_exists(t->cfg->store)) {
		complain("slot %s has no store yet (%s): nothing to back up\n",
			t->cfg->name, t->cfg->store);
		ret = EXIT_REFUSED;
	} else if (store_open(t->cfg->store, false, &live) != P11K_OK) {
		complain("the store %s cannot be read (the log says why)\n",
			t->cfg->store);
		ret = EXIT_REFUSED;
	} else {
		p11k_err e = store_backup_to(live, o.path, write_manifest, &m);
		if (e == P11K_OK) {
			say("backup of slot %s written to %s (mode 0600): %zu KMS seal%s\n",
			       t->cfg->name, o.path, m.nseals, m.nseals == 1 ? "" : "s");
			ret = EXIT_OK;
		} else {
			complain("backup of slot %s to %s failed: %s\n",
				t->cfg->name, o.path, m.why[0] ? m.why : p11k_err_name(e));
			ret = EXIT_REFUSED;
		}
	}
	store_close(live);
	/* Before C_Finalize, which frees the configuration t names. */
	json_t *fields = as_json ? json_pack("{s:s, s:s, s:o}", "slot", t->cfg->name, "path",
					     o.path, "manifest",
					     ret == EXIT_OK && m.manifest ? json_incref(m.manifest)
									  : json_null())
				 : NULL;
	fl->C_Finalize(NULL);
	if (as_json)
		json_result("backup", ret, fields);
	json_decref(m.manifest);
	return ret;
}

/* --- verify-backup ---------------------------------------------------------- */

typedef struct checked {
	store_t *bk;
	json_t *manifest;
	verify_report r;
	char why[1200]; /* the refusal, one line; "" when none */
	int warnings;
} checked;

static const char *state_name(key_state s)
{
	switch (s) {
	case KEY_STATE_ENABLED:
		return "enabled";
	case KEY_STATE_DISABLED:
		return "DISABLED";
	case KEY_STATE_PENDING_DELETION:
		return "PENDING DELETION";
	case KEY_STATE_DESTROYED:
		return "DESTROYED";
	case KEY_STATE_UNKNOWN:
		break;
	}
	return "in an unknown state";
}

/* Every "kms" row is in the manifest and the other way round, for the
 * same token: the manifest is what an operator reads to keep versions
 * alive, so a manifest that lies is tampering. */
static bool manifest_matches(json_t *m, const verify_report *r)
{
	char uhex[33];
	hex(r->uuid, 16, uhex);
	const char *mu = json_string_value(json_object_get(json_object_get(m, "token"), "uuid"));
	json_t *seals = json_object_get(m, "seals");
	if (!mu || strcmp(mu, uhex) != 0 || !json_is_array(seals) ||
	    json_array_size(seals) != r->nseals)
		return false;
	bool used[VERIFY_MAX_SEALS] = {false};
	size_t i;
	json_t *s;
	json_array_foreach(seals, i, s) {
		const char *p = json_string_value(json_object_get(s, "provider")),
			   *k = json_string_value(json_object_get(s, "key_id")),
			   *v = json_string_value(json_object_get(s, "key_version"));
		bool hit = false;
		for (size_t j = 0; p && k && v && j < r->nseals && !hit; j++)
			if (!used[j] && strcmp(p, r->seals[j].provider) == 0 &&
			    strcmp(k, r->seals[j].key_id) == 0 &&
			    strcmp(v, r->seals[j].key_version) == 0)
				used[j] = hit = true;
		if (!hit)
			return false;
	}
	return true;
}

static void print_seal(const verify_seal *v, checked *c)
{
	say("  needs %s key %s version %s\n", v->provider, v->key_id, v->key_version);
	if (v->describe_err == P11K_OK) {
		bool current = !v->info.primary_version[0] ||
			       strcmp(v->info.primary_version, v->key_version) == 0;
		say("    key: %s, current version %s\n", state_name(v->info.state),
		       v->info.primary_version[0] ? v->info.primary_version : "(not said)");
		if (v->open_err == P11K_OK && !current) {
			say("    warning: not the current version: keep version %s enabled as "
			       "long as this backup is kept\n",
			       v->key_version);
			c->warnings++;
		}
	} else if (v->configured) {
		say("    key: not described: %s%s%s\n", p11k_err_name(v->describe_err),
		       v->describe_st.message[0] ? ": " : "", v->describe_st.message);
	}
	if (v->open_err == P11K_OK)
		say("    version %s: accessible (the seal opens)\n", v->key_version);
	else
		say("    version %s: NOT ACCESSIBLE: %s%s%s\n", v->key_version,
		       p11k_err_name(v->open_err), v->open_st.message[0] ? ": " : "",
		       v->open_st.message);
}

/* Open SRC, check it with the KMS (and the PIN), print the findings on
 * stdout. The result: EXIT_OK, EXIT_WARN or EXIT_REFUSED (c->why). */
static int check_backup(token_t *t, const char *src, const char *pin_env, checked *c)
{
	char why[200];
	memset(c, 0, sizeof(*c));
	if (store_open_readonly(src, &c->bk, why, sizeof(why)) != P11K_OK) {
		snprintf(c->why, sizeof(c->why), "%s: %s", src, why);
		return EXIT_REFUSED;
	}
	char *mtxt = meta_text(c->bk, MANIFEST);
	json_error_t jerr;
	c->manifest = mtxt ? json_loads(mtxt, 0, &jerr) : NULL;
	free(mtxt);
	if (!json_is_object(c->manifest)) {
		snprintf(c->why, sizeof(c->why),
			 "%s: no readable backup manifest (not made by p11kms backup)", src);
		return EXIT_REFUSED;
	}
	const char *pin = pin_env ? getenv(pin_env) : NULL;
	if (pin_env && !pin) {
		snprintf(c->why, sizeof(c->why), "--pin-env %s: that variable is not set", pin_env);
		return EXIT_REFUSED;
	}
	if (seal_verify_backup(t, c->bk, pin, pin ? strlen(pin) : 0, &c->r) != P11K_OK) {
		snprintf(c->why, sizeof(c->why), "%s: %s", src, c->r.why);
		return EXIT_REFUSED;
	}
	verify_report *r = &c->r;
	char uhex[33];
	hex(r->uuid, 16, uhex);
	const char *made = json_string_value(json_object_get(c->manifest, "made"));
	const char *slot = json_string_value(json_object_get(c->manifest, "slot"));
	const char *label =
		json_string_value(json_object_get(json_object_get(c->manifest, "token"), "label"));
	say("backup %s: token \"%s\" (uuid %s) of slot %s, made %s; seal policy %s, login "
	       "%s\n",
	       src, label ? label : "", uhex, slot ? slot : "?", made ? made : "?",
	       r->policy == SEAL_ALL ? "all" : "any", r->login_required ? "required" : "optional");
	for (size_t i = 0; i < r->nseals; i++)
		print_seal(&r->seals[i], c);
	bool match = manifest_matches(c->manifest, r);
	say("  manifest: %s\n", match ? "matches the seals" : "DOES NOT MATCH the seals");
	say("  KMS layer: %s\n", r->ks_open ? "opens" : "DOES NOT OPEN");
	if (r->ks_open)
		say("  token key seal: %s\n",
		       r->tk_outer ? "authenticates under the KMS layer" : "DOES NOT AUTHENTICATE");
	if (r->tk_open)
		say("  object records: %llu of %llu open\n", (unsigned long long)r->records_ok,
		       (unsigned long long)r->nrecords);
	else if (r->tk_outer && r->login_required && !r->pin_tried)
		say("  object records: not read (login required: --pin-env VAR reads them)\n");
	if (!match && !r->why[0])
		snprintf(r->why, sizeof(r->why),
			 "its manifest does not match its seal rows (tampered)");
	bool ok = match && r->ks_open && r->tk_outer && (!r->pin_tried || r->pin_ok) &&
		  (!r->tk_open || r->records_ok == r->nrecords);
	if (!ok) {
		snprintf(c->why, sizeof(c->why), "%s: %s", src,
			 r->why[0] ? r->why : "it does not open");
		return EXIT_REFUSED;
	}
	/* Under "any" one row opening is enough; the others are a warning. */
	for (size_t i = 0; i < r->nseals; i++)
		if (r->seals[i].open_err != P11K_OK)
			c->warnings++;
	return c->warnings ? EXIT_WARN : EXIT_OK;
}

static json_t *err_json(p11k_err e, const provider_status *st)
{
	if (e == P11K_OK)
		return json_null();
	char m[400];
	snprintf(m, sizeof(m), "%s%s%s", p11k_err_name(e), st->message[0] ? ": " : "",
		 st->message);
	return json_string(m);
}

/* What verify-backup found (docs/BACKUP.md, "JSON results"). */
static json_t *checked_json(const checked *c, const char *src)
{
	const verify_report *r = &c->r;
	bool have = r->nseals > 0;
	json_t *seals = json_array();
	for (size_t i = 0; i < r->nseals; i++) {
		const verify_seal *v = &r->seals[i];
		bool described = v->describe_err == P11K_OK;
		const char *cur = described && v->info.primary_version[0] ? v->info.primary_version
									   : NULL;
		json_array_append_new(
			seals,
			json_pack("{s:s, s:s, s:s, s:b, s:s?, s:s?, s:O?, s:b, s:o, s:o}", "provider",
				  v->provider, "key_id", v->key_id, "key_version", v->key_version,
				  "configured", v->configured, "state",
				  described ? tool_key_state(v->info.state) : NULL, "current_version",
				  cur, "current",
				  described ? (cur ? (strcmp(cur, v->key_version) == 0 ? json_true()
										   : json_false())
						   : json_true())
					    : NULL,
				  "accessible", v->open_err == P11K_OK, "describe_error",
				  err_json(v->describe_err, &v->describe_st), "error",
				  err_json(v->open_err, &v->open_st)));
	}
	char uhex[33];
	hex(r->uuid, 16, uhex);
	json_t *token = json_object_get(c->manifest, "token");
	json_t *rec = r->tk_open ? json_pack("{s:I, s:I}", "total", (json_int_t)r->nrecords, "ok",
					     (json_int_t)r->records_ok)
				 : json_null();
	return json_pack("{s:s, s:O?, s:s?, s:s?, s:s?, s:s?, s:o, s:b, s:b, s:b, s:o}", "path", src,
			 "slot", json_object_get(c->manifest, "slot"), "made",
			 json_string_value(json_object_get(c->manifest, "made")), "uuid",
			 have ? uhex : NULL, "label",
			 json_string_value(json_object_get(token, "label")), "seal_policy",
			 have ? (r->policy == SEAL_ALL ? "all" : "any") : NULL, "seals", seals,
			 "manifest_matches", have && manifest_matches(c->manifest, r),
			 "kms_layer_opens", r->ks_open, "token_key_seal_ok", r->tk_outer,
			 "records", rec);
}

static void checked_free(checked *c)
{
	store_close(c->bk);
	json_decref(c->manifest);
	c->bk = NULL;
	c->manifest = NULL;
}

/* The slot to check against: --slot, else the one the manifest names,
 * else the first (the rows name their providers; any token of the
 * configuration can ask them). */
static token_t *verify_token(const char *src)
{
	char why[200];
	store_t *bk = NULL;
	token_t *t = NULL;
	if (store_open_readonly(src, &bk, why, sizeof(why)) == P11K_OK) {
		char *m = meta_text(bk, MANIFEST);
		json_t *j = m ? json_loads(m, 0, NULL) : NULL;
		const char *name = json_string_value(json_object_get(j, "slot"));
		pthread_mutex_lock(&slots.lock);
		for (size_t i = 0; name && i < slots.ntokens && !t; i++)
			if (strcmp(slots.tokens[i].cfg->name, name) == 0)
				t = &slots.tokens[i];
		pthread_mutex_unlock(&slots.lock);
		json_decref(j);
		free(m);
		store_close(bk);
	}
	if (!t && slots.ntokens)
		t = &slots.tokens[0];
	return t;
}

int tool_verify_backup(int argc, char **argv)
{
	opts o;
	token_t *t;
	CK_FUNCTION_LIST *fl = start(argc, argv, VERIFY_BACKUP_SYNOPSIS, OPT_PIN, &o, &t);
	if (!fl)
		return as_json ? json_result("verify-backup", EXIT_USAGE, NULL) : EXIT_USAGE;
	if (!t)
		t = verify_token(o.path);
	int ret = EXIT_USAGE;
	json_t *found = NULL;
	if (t) {
		checked c;
		ret = check_backup(t, o.path, o.pin_env, &c);
		if (ret == EXIT_REFUSED)
			complain("verify-backup refused: %s\n", c.why);
		else
			say("result: %s\n", ret == EXIT_OK ? "ok: the backup opens now"
							      : "ok, with warnings (above)");
		found = as_json ? checked_json(&c, o.path) : NULL;
		checked_free(&c);
	}
	fl->C_Finalize(NULL);
	if (as_json)
		json_result("verify-backup", ret, found);
	return ret;
}

/* --- restore ------------------------------------------------------------------ */

static p11k_err strip_manifest(store_t *copy, void *arg)
{
	(void)arg;
	return store_meta_del(copy, MANIFEST);
}

/* Is the live store another token's? *uuid_hex gets its uuid ("" when
 * it holds none). */
static void live_uuid(store_t *live, char uhex[33])
{
	uint8_t *v = NULL;
	size_t n = 0;
	bool found = false;
	uhex[0] = 0;
	if (store_meta_get(live, "uuid", &v, &n, &found) == P11K_OK && found && n == 16)
		hex(v, 16, uhex);
	free(v);
}

/* Put the checked backup in place of the slot's store. */
static int put_in_place(token_t *t, checked *c, bool force)
{
	const char *path = t->cfg->store;
	char staged[PATH_MAX], kept[PATH_MAX], when[32], bhex[33], lhex[33];
	hex(c->r.uuid, 16, bhex);
	if (!store_exists(path)) {
		/* Nothing to keep: the backup (without its manifest) goes in
		 * atomically, temp + fsync + rename. */
		if (store_backup_to(c->bk, path, strip_manifest, NULL) != P11K_OK) {
			complain("restore: writing %s failed (the log says why)\n",
				path);
			return EXIT_REFUSED;
		}
		say("restored to %s (a new store)\n", path);
		snprintf(restored_to, sizeof(restored_to), "%s", path);
		return EXIT_OK;
	}
	store_t *live = NULL, *st = NULL;
	if (store_open(path, false, &live) != P11K_OK) {
		complain("restore: the live store %s cannot be opened (the log says "
				"why); move it aside, then restore\n",
			path);
		return EXIT_REFUSED;
	}
	live_uuid(live, lhex);
	bool other = lhex[0] && strcmp(lhex, bhex) != 0;
	if (!force) {
		if (other)
			complain("restore refused: %s holds another token (uuid %s; "
					"the backup's is %s); --force replaces it\n",
				path, lhex, bhex);
		else
			complain("restore refused: %s exists; --force replaces it "
					"(its content is kept as %s.replaced-<time>)\n",
				path, path);
		store_close(live);
		return EXIT_REFUSED;
	}
	struct tm tm;
	time_t now = (time_t)clock_now_s();
	gmtime_r(&now, &tm);
	strftime(when, sizeof(when), "%Y%m%dT%H%M%SZ", &tm);
	snprintf(kept, sizeof(kept), "%s.replaced-%s", path, when);
	snprintf(staged, sizeof(staged), "%s.restore", path);
	char why[200];
	int ret = EXIT_REFUSED;
	if (store_backup_to(live, kept, NULL, NULL) != P11K_OK)
		complain("restore: keeping the old store as %s failed; nothing "
				"changed\n",
			kept);
	else if (store_backup_to(c->bk, staged, strip_manifest, NULL) != P11K_OK ||
		 store_open_readonly(staged, &st, why, sizeof(why)) != P11K_OK)
		complain("restore: staging the backup at %s failed; nothing "
				"changed\n",
			staged);
	else if (store_replace_from(live, st) != P11K_OK)
		complain("restore: replacing %s failed (the log says why); it is "
				"as it was\n",
			path);
	else
		ret = EXIT_OK;
	store_close(st);
	store_close(live);
	unlink(staged);
	if (ret == EXIT_OK) {
		if (other)
			say("warning: %s held another token (uuid %s): replaced as --force "
			       "asked\n",
			       path, lhex);
		say("restored to %s; the old store is kept as %s\n", path, kept);
		snprintf(restored_to, sizeof(restored_to), "%s", path);
		snprintf(kept_as, sizeof(kept_as), "%s", kept);
	}
	return ret;
}

int tool_restore(int argc, char **argv)
{
	opts o;
	token_t *t;
	CK_FUNCTION_LIST *fl = start(argc, argv, RESTORE_SYNOPSIS, OPT_PIN | OPT_FORCE | OPT_SLOT,
				     &o, &t);
	if (!fl)
		return as_json ? json_result("restore", EXIT_USAGE, NULL) : EXIT_USAGE;
	int ret;
	json_t *found = NULL;
	char a[PATH_MAX], b[PATH_MAX];
	if (realpath(o.path, a) && realpath(t->cfg->store, b) && strcmp(a, b) == 0) {
		complain("restore refused: %s is the slot's live store\n", o.path);
		ret = EXIT_REFUSED;
	} else {
		checked c;
		ret = check_backup(t, o.path, o.pin_env, &c);
		if (ret == EXIT_REFUSED)
			complain("restore refused: %s\n", c.why);
		else
			ret = put_in_place(t, &c, o.force);
		found = as_json ? checked_json(&c, o.path) : NULL;
		checked_free(&c);
	}
	fl->C_Finalize(NULL);
	if (as_json) {
		if (!found) {
			checked none;
			memset(&none, 0, sizeof(none));
			found = checked_json(&none, o.path);
		}
		json_object_set_new(found, "restored_to",
				    restored_to[0] ? json_string(restored_to) : json_null());
		json_object_set_new(found, "kept_as", kept_as[0] ? json_string(kept_as) : json_null());
		json_result("restore", ret, found);
	}
	return ret;
}
