/* SPDX-License-Identifier: Apache-2.0 */
/*
 * p11kms status [--config PATH] [--check] [--json] [--slot NAME]
 *
 * Starts the module's core as C_Initialize would (the same configuration
 * and key file checks), then per slot: provider, store, token, objects and
 * every seal; with --check also what the KMS says now of every sealing
 * key. Exit status for monitoring: 0 fine, 1 warning (rotation due, a
 * reseal pending, a key of an "any" set failing), 2 critical (a token
 * that cannot open: its keys refused, unreachable, a store unusable), 3
 * usage or configuration error. --json prints one object, schema
 * "p11kms-status/1" (docs/man/p11kms.1).
 */
#include "tools/status.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/clock.h"
#include "common/log.h"
#include "module/module.h"
#include "tools/tool.h"
#include "slots/seal.h"
#include "slots/token.h"

enum { ST_OK = 0, ST_WARN = 1, ST_CRIT = 2, ST_USAGE = 3 };

static const char *level_name(int l)
{
	return l == ST_OK ? "ok" : l == ST_WARN ? "warning" : "critical";
}


static void iso(uint64_t t, char *out, size_t n)
{
	time_t tt = (time_t)t;
	struct tm tm;
	if (!t || !gmtime_r(&tt, &tm))
		snprintf(out, n, "?");
	else
		strftime(out, n, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static uint64_t days_since(uint64_t t)
{
	uint64_t now = clock_now_s();
	return t && now > t ? (now - t) / 86400 : 0;
}

static void worse(int *level, int l)
{
	if (l > *level)
		*level = l;
}

/* The --check part of one slot: a JSON array of keys; *level raised. */
static json_t *check_keys(token_t *t, const seal_set *set, int *level, bool text)
{
	reseal_plan p;
	uint8_t uuid[16];
	memcpy(uuid, t->uuid, 16);
	/* Describe only (no KS): the KMS is asked, nothing is written. */
	pthread_mutex_unlock(&slots.lock);
	reseal_plan_make(t, uuid, set, NULL, false, &p);
	pthread_mutex_lock(&slots.lock);
	json_t *keys = json_array();
	size_t usable = 0;
	for (size_t i = 0; i < p.nrefs; i++) {
		seal_target tg;
		bool have = seal_target_of(t, i, &tg);
		const key_info *ki = &p.ref_info[i];
		p11k_err e = p.ref_err[i];
		const seal_rec *row = NULL;
		for (size_t j = 0; have && j < set->nrows; j++)
			if (strcmp(set->rows[j].role, ROLE_KMS) == 0 &&
			    strcmp(set->rows[j].provider, tg.cfg->name) == 0 &&
			    strcmp(set->rows[j].key_id, tg.key_id) == 0)
				row = &set->rows[j];
		bool ok = e == P11K_OK && ki->state == KEY_STATE_ENABLED;
		bool due = ok && ki->version_created_at &&
			   days_since(ki->version_created_at) > t->cfg->rotation_age_days;
		bool pending = ok && (!row || (ki->primary_version[0] &&
					       strcmp(row->key_version, ki->primary_version) != 0));
		usable += ok;
		char born[32];
		iso(ki->version_created_at, born, sizeof(born));
		json_t *k = json_pack("{s:s, s:s, s:s, s:b, s:b}", "provider",
				      have ? tg.cfg->name : "?", "key_id", have ? tg.key_id : "?",
				      "state", e == P11K_OK ? tool_key_state(ki->state) : "error",
				      "rotation_due", due, "reseal_pending", pending);
		if (e == P11K_OK) {
			json_object_set_new(k, "current_version", json_string(ki->primary_version));
			if (ki->version_created_at) {
				json_object_set_new(k, "version_created", json_string(born));
				json_object_set_new(k, "version_age_days",
						    json_integer((json_int_t)days_since(
							    ki->version_created_at)));
			}
		} else {
			json_object_set_new(k, "error", json_string(p11k_err_name(e)));
			if (p.ref_st[i].message[0])
				json_object_set_new(k, "message", json_string(p.ref_st[i].message));
		}
		json_array_append_new(keys, k);
		if (text) {
			if (e != P11K_OK)
				printf("    check: %s key %s: %s%s%s\n", have ? tg.cfg->name : "?",
				       have ? tg.key_id : "?", p11k_err_name(e),
				       p.ref_st[i].message[0] ? ": " : "", p.ref_st[i].message);
			else
				printf("    check: %s key %s: %s, current version %s%s%s (%llu days)"
				       "%s%s\n",
				       tg.cfg->name, tg.key_id, tool_key_state(ki->state),
				       ki->primary_version[0] ? ki->primary_version : "?",
				       ki->version_created_at ? ", made " : "",
				       ki->version_created_at ? born : "",
				       (unsigned long long)days_since(ki->version_created_at),
				       due ? ", ROTATION DUE" : "", pending ? ", RESEAL PENDING" : "");
		}
		if (due || pending)
			worse(level, ST_WARN);
	}
	bool any = t->cfg->seal_policy == SEAL_ANY;
	if (any ? usable == 0 : usable < p.nrefs)
		worse(level, ST_CRIT);
	else if (usable < p.nrefs)
		worse(level, ST_WARN);
	reseal_plan_free(&p);
	return keys;
}

/* One slot, lock held. */
static json_t *slot_status(token_t *t, bool check, bool text, int *level)
{
	const provider_cfg *c = t->cfg;
	json_t *o = json_pack("{s:I, s:s, s:s, s:s, s:s}", "slot_id", (json_int_t)t->slot_id,
			      "name", c->name, "type", c->ops->type, "login",
			      c->login == LOGIN_REQUIRED ? "required" : "optional", "store",
			      c->store);
	int mine = ST_OK;
	if (text)
		printf("slot %lu: provider \"%s\" (%s), login %s\n    store: %s\n",
		       (unsigned long)t->slot_id, c->name, c->ops->type,
		       c->login == LOGIN_REQUIRED ? "required" : "optional", c->store);
	CK_RV rv = token_sync_inlock(t);
	if (rv != CKR_OK) {
		json_object_set_new(o, "error", json_string("store unusable"));
		if (text)
			printf("    token: STORE UNUSABLE (%s; the log says why)\n", ckr_name(rv));
		worse(&mine, ST_CRIT);
		goto out;
	}
	json_object_set_new(o, "initialized", json_boolean(t->initialized));
	if (!t->initialized) {
		if (text)
			printf("    token: not initialized\n");
		goto out;
	}
	json_object_set_new(o, "label", json_string(t->label));
	uint64_t nobj = 0;
	if (store_obj_count(t->store, &nobj) == P11K_OK)
		json_object_set_new(o, "objects", json_integer((json_int_t)nobj));
	if (text)
		printf("    token: label \"%s\"\n    objects: %llu\n", t->label,
		       (unsigned long long)nobj);
	seal_set set;
	if (seal_set_load_inlock(t, &set) != CKR_OK) {
		json_object_set_new(o, "error", json_string("seals unreadable"));
		if (text)
			printf("    seals: UNREADABLE (the log says why)\n");
		worse(&mine, ST_CRIT);
		goto out;
	}
	json_object_set_new(o, "seal_policy",
			    json_string(set.policy == SEAL_ALL ? "all" : "any"));
	if (text)
		printf("    seal policy: %s\n", set.policy == SEAL_ALL ? "all" : "any");
	json_t *seals = json_array(), *pins = json_array();
	for (size_t i = 0; i < set.nrows; i++) {
		const seal_rec *r = &set.rows[i];
		char when[32];
		iso(r->created, when, sizeof(when));
		if (strcmp(r->role, ROLE_KMS) == 0) {
			json_array_append_new(
				seals, json_pack("{s:s, s:s, s:s, s:s, s:I}", "provider", r->provider,
						 "key_id", r->key_id, "key_version", r->key_version,
						 "created", when, "age_days",
						 (json_int_t)days_since(r->created)));
			if (text)
				printf("    kms seal: provider \"%s\" key %s version %s, made %s "
				       "(%llu days ago)\n",
				       r->provider, r->key_id, r->key_version, when,
				       (unsigned long long)days_since(r->created));
		} else if (strncmp(r->role, "pin-", 4) == 0) {
			json_array_append_new(pins, json_string(r->role + 4));
		}
	}
	if (text && json_array_size(pins)) {
		printf("    pin seals:");
		for (size_t i = 0; i < json_array_size(pins); i++)
			printf("%s %s", i ? "," : "", json_string_value(json_array_get(pins, i)));
		printf("\n");
	}
	json_object_set_new(o, "seals", seals);
	json_object_set_new(o, "pin_roles", pins);
	if (check)
		json_object_set_new(o, "keys", check_keys(t, &set, &mine, text));
	seal_set_free(&set);
out:
	json_object_set_new(o, "status", json_string(level_name(mine)));
	if (text && check)
		printf("    status: %s\n", level_name(mine));
	worse(level, mine);
	return o;
}

int tool_status(int argc, char **argv)
{
	const char *cfgpath = NULL, *slot = NULL;
	bool check = false, json = false;
	for (int i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
			cfgpath = argv[++i];
		else if (strcmp(argv[i], "--slot") == 0 && i + 1 < argc)
			slot = argv[++i];
		else if (strcmp(argv[i], "--check") == 0)
			check = true;
		else if (strcmp(argv[i], "--json") == 0)
			json = true;
		else
			return -1;
	}
	CK_FUNCTION_LIST *fl = tool_module_start(cfgpath);
	if (!fl) {
		if (json)
			printf("{\"schema\": \"p11kms-status/1\", \"status\": \"config_error\", "
			       "\"exit\": 3}\n");
		return ST_USAGE;
	}
	int level = ST_OK;
	size_t shown = 0;
	json_t *slots_j = json_array();
	if (!json)
		printf("configuration: %s\n", mod.cfg->path);
	pthread_mutex_lock(&slots.lock);
	for (size_t i = 0; i < slots.ntokens; i++) {
		token_t *t = &slots.tokens[i];
		char id[24];
		snprintf(id, sizeof(id), "%lu", (unsigned long)t->slot_id);
		if (slot && strcmp(slot, id) != 0 && strcmp(slot, t->cfg->name) != 0)
			continue;
		shown++;
		json_array_append_new(slots_j, slot_status(t, check, !json, &level));
	}
	pthread_mutex_unlock(&slots.lock);
	int ret = level;
	if (slot && !shown) {
		fprintf(stderr, "p11kms: no slot \"%s\" (a slot id or a provider name)\n", slot);
		ret = ST_USAGE;
	}
	if (json) {
		json_t *o = json_pack("{s:s, s:s, s:b, s:o, s:s, s:i}", "schema", "p11kms-status/1",
				      "config", mod.cfg->path, "checked", check, "slots", slots_j,
				      "status", ret == ST_USAGE ? "usage_error" : level_name(level),
				      "exit", ret);
		char *s = json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER);
		if (s)
			printf("%s\n", s);
		free(s);
		json_decref(o);
	} else {
		json_decref(slots_j);
		if (check)
			printf("overall: %s\n", level_name(level));
	}
	fl->C_Finalize(NULL);
	return ret;
}
