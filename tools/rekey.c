/* SPDX-License-Identifier: Apache-2.0 */
/*
 * p11kms rekey: a new token key for a token (slots/rekey.h). The token key
 * must be in memory, so in login=required mode the tool logs in through
 * the module's own C_Login with a PIN from an environment variable (never
 * from argv, which other users see).
 */
#include "tools/rekey.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "common/log.h"
#include "module/module.h"
#include "tools/tool.h"
#include "slots/token.h"

/* For --json: the records re-encrypted, and the error said on stderr. */
static uint64_t rk_records;
static bool rk_progressed;
static char rk_err[600];

__attribute__((format(printf, 1, 2))) static void rk_fail(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(rk_err, sizeof(rk_err), fmt, ap);
	va_end(ap);
	fprintf(stderr, "p11kms: %s\n", rk_err);
}

static void progress(void *arg, uint64_t done, uint64_t total)
{
	rk_records = total;
	rk_progressed = true;
	bool tty = *(bool *)arg;
	if (tty) {
		int width = 40, fill = total ? (int)(done * (uint64_t)width / total) : width;
		fprintf(stderr, "\rrekey [%.*s%*s] %llu/%llu records", fill,
			"########################################", width - fill, "",
			(unsigned long long)done, (unsigned long long)total);
		if (done == total)
			fputc('\n', stderr);
	} else {
		fprintf(stderr, "rekey: %llu/%llu records\n", (unsigned long long)done,
			(unsigned long long)total);
	}
}

static int rekey_slot(CK_FUNCTION_LIST *fl, token_t *t, const char *pin, bool so, bool json)
{
	CK_SLOT_ID id = t->slot_id;
	CK_SESSION_HANDLE s = 0;
	CK_RV rv = CKR_OK;
	if (t->cfg->login == LOGIN_REQUIRED) {
		if (!pin) {
			rk_fail("slot %lu (%s) needs a PIN: --pin-env VAR names the environment "
				"variable that holds it",
				(unsigned long)id, t->cfg->name);
			return TOOL_EXIT_USAGE;
		}
		rv = fl->C_OpenSession(id, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s);
		if (rv == CKR_OK)
			rv = fl->C_Login(s, so ? CKU_SO : CKU_USER, (CK_UTF8CHAR_PTR)pin,
					 strlen(pin));
		if (rv != CKR_OK) {
			rk_fail("slot %lu (%s): cannot log in: %s",
				(unsigned long)id, t->cfg->name, ckr_name(rv));
			return TOOL_EXIT_FAIL;
		}
	}
	bool tty = isatty(STDERR_FILENO);
	CK_ULONG dev = 0;
	pthread_mutex_lock(&slots.lock);
	rv = token_ensure_tk(t, &dev);
	if (rv == CKR_OK)
		rv = token_rekey(t, progress, &tty, &dev);
	pthread_mutex_unlock(&slots.lock);
	if (s)
		fl->C_CloseSession(s);
	if (rv != CKR_OK) {
		rk_fail("slot %lu (%s): rekey failed: %s (the store opens as it is; run rekey "
			"again to finish)",
			(unsigned long)id, t->cfg->name, ckr_name(rv));
		return TOOL_EXIT_FAIL;
	}
	if (!json)
		printf("slot %lu (%s): rekeyed: every record is under a new token key\n",
		       (unsigned long)id, t->cfg->name);
	return TOOL_EXIT_OK;
}

/* rekey --json's object (schema "p11kms-rekey/1", p11kms(1)). */
static int rekey_json(int ret, const token_t *t, const char *slot)
{
	json_t *o = json_pack("{s:s, s:s, s:i, s:o, s:s, s:b, s:o, s:s?}", "schema",
			      "p11kms-rekey/1", "status", tool_exit_name(ret), "exit", ret, "slot_id",
			      t ? json_integer((json_int_t)t->slot_id) : json_null(), "name",
			      t ? t->cfg->name : slot, "rekeyed", ret == TOOL_EXIT_OK, "records",
			      ret == TOOL_EXIT_OK && rk_progressed ? json_integer((json_int_t)rk_records)
								   : json_null(),
			      "error", ret != TOOL_EXIT_OK && rk_err[0] ? rk_err : NULL);
	return tool_json_print(o, ret);
}

int tool_rekey(int argc, char **argv)
{
	const char *cfgpath = NULL, *slot = NULL, *pinvar = NULL;
	bool so = false, json = false;
	for (int i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
			cfgpath = argv[++i];
		else if (strcmp(argv[i], "--slot") == 0 && i + 1 < argc)
			slot = argv[++i];
		else if (strcmp(argv[i], "--pin-env") == 0 && i + 1 < argc)
			pinvar = argv[++i];
		else if (strcmp(argv[i], "--so") == 0)
			so = true;
		else if (strcmp(argv[i], "--json") == 0)
			json = true;
		else
			return -1;
	}
	if (!slot)
		return -1;
	const char *pin = pinvar ? getenv(pinvar) : NULL;
	if (pinvar && !pin) {
		rk_fail("environment variable %s is not set", pinvar);
		return json ? rekey_json(TOOL_EXIT_USAGE, NULL, slot) : TOOL_EXIT_USAGE;
	}
	CK_FUNCTION_LIST *fl = tool_module_start(cfgpath);
	if (!fl)
		return json ? rekey_json(TOOL_EXIT_USAGE, NULL, slot) : TOOL_EXIT_USAGE;
	token_t *t = NULL;
	pthread_mutex_lock(&slots.lock);
	for (size_t i = 0; i < slots.ntokens && !t; i++) {
		char id[24];
		snprintf(id, sizeof(id), "%lu", (unsigned long)slots.tokens[i].slot_id);
		if (strcmp(slot, id) == 0 || strcmp(slot, slots.tokens[i].cfg->name) == 0)
			t = &slots.tokens[i];
	}
	pthread_mutex_unlock(&slots.lock);
	int ret;
	if (!t) {
		rk_fail("no slot \"%s\" (a slot id or a provider name)", slot);
		ret = TOOL_EXIT_USAGE;
	} else {
		ret = rekey_slot(fl, t, pin, so, json);
	}
	if (json)
		rekey_json(ret, t, slot);
	fl->C_Finalize(NULL);
	return ret;
}
