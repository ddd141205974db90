/* SPDX-License-Identifier: Apache-2.0 */
/*
 * p11kms rekey: a new token key for a token (slots/rekey.h). The token key
 * must be in memory, so in login=required mode the tool logs in through
 * the module's own C_Login with a PIN from an environment variable (never
 * from argv, which other users see).
 */
#include "tools/rekey.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"
#include "module/module.h"
#include "tools/tool.h"
#include "slots/token.h"

static void progress(void *arg, uint64_t done, uint64_t total)
{
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

static int rekey_slot(CK_FUNCTION_LIST *fl, token_t *t, const char *pin, bool so)
{
	CK_SLOT_ID id = t->slot_id;
	CK_SESSION_HANDLE s = 0;
	CK_RV rv = CKR_OK;
	if (t->cfg->login == LOGIN_REQUIRED) {
		if (!pin) {
			fprintf(stderr, "p11kms: slot %lu (%s) needs a PIN: --pin-env VAR names "
					"the environment variable that holds it\n",
				(unsigned long)id, t->cfg->name);
			return TOOL_EXIT_USAGE;
		}
		rv = fl->C_OpenSession(id, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s);
		if (rv == CKR_OK)
			rv = fl->C_Login(s, so ? CKU_SO : CKU_USER, (CK_UTF8CHAR_PTR)pin,
					 strlen(pin));
		if (rv != CKR_OK) {
			fprintf(stderr, "p11kms: slot %lu (%s): cannot log in: %s\n",
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
		fprintf(stderr, "p11kms: slot %lu (%s): rekey failed: %s (the store opens as "
				"it is; run rekey again to finish)\n",
			(unsigned long)id, t->cfg->name, ckr_name(rv));
		return TOOL_EXIT_FAIL;
	}
	printf("slot %lu (%s): rekeyed: every record is under a new token key\n",
	       (unsigned long)id, t->cfg->name);
	return 0;
}

int tool_rekey(int argc, char **argv)
{
	const char *cfgpath = NULL, *slot = NULL, *pinvar = NULL;
	bool so = false;
	for (int i = 2; i < argc; i++) {
		if (strcmp(argv[i], "--config") == 0 && i + 1 < argc)
			cfgpath = argv[++i];
		else if (strcmp(argv[i], "--slot") == 0 && i + 1 < argc)
			slot = argv[++i];
		else if (strcmp(argv[i], "--pin-env") == 0 && i + 1 < argc)
			pinvar = argv[++i];
		else if (strcmp(argv[i], "--so") == 0)
			so = true;
		else
			return -1;
	}
	if (!slot)
		return -1;
	const char *pin = pinvar ? getenv(pinvar) : NULL;
	if (pinvar && !pin) {
		fprintf(stderr, "p11kms: environment variable %s is not set\n", pinvar);
		return TOOL_EXIT_USAGE;
	}
	CK_FUNCTION_LIST *fl = tool_module_start(cfgpath);
	if (!fl)
		return TOOL_EXIT_USAGE;
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
		fprintf(stderr, "p11kms: no slot \"%s\" (a slot id or a provider name)\n", slot);
		ret = 3;
	} else {
		ret = rekey_slot(fl, t, pin, so);
	}
	fl->C_Finalize(NULL);
	return ret;
}
