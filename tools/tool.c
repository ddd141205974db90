/* SPDX-License-Identifier: Apache-2.0 */
/* What the p11kms commands share (tool.h). */
#include "tools/tool.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "common/log.h"
#include "slots/config.h"

CK_FUNCTION_LIST *tool_module_start(const char *cfgpath)
{
	CK_FUNCTION_LIST *fl = NULL;
	char init[4200];
	if (cfgpath && strlen(cfgpath) > 4000) {
		fprintf(stderr, "p11kms: the configuration path is too long\n");
		return NULL;
	}
	snprintf(init, sizeof(init), "config=%s", cfgpath ? cfgpath : "");
	/* The configuration alone first: its error (file:line: field: why)
	 * is then the one line on stderr, whatever log destination the file
	 * would name. */
	config_t *cfg = NULL;
	if (config_load(cfgpath ? init : NULL, &cfg) != CKR_OK)
		return NULL;
	config_free(cfg);
	CK_C_INITIALIZE_ARGS args = {.flags = CKF_OS_LOCKING_OK,
				     .pReserved = cfgpath ? init : NULL};
	CK_RV rv = C_GetFunctionList(&fl);
	if (rv == CKR_OK)
		rv = fl->C_Initialize(&args);
	if (rv != CKR_OK) {
		fprintf(stderr, "p11kms: the module does not start with this configuration: %s "
				"(the module's log says why)\n",
			ckr_name(rv));
		return NULL;
	}
	return fl;
}

const char *tool_exit_name(int ret)
{
	static const char *const names[] = {[TOOL_EXIT_OK] = "ok", [TOOL_EXIT_WARN] = "warning",
					    [TOOL_EXIT_FAIL] = "failed",
					    [TOOL_EXIT_USAGE] = "usage_error"};
	return ret >= 0 && ret < (int)ARRAY_SIZE(names) ? names[ret] : "failed";
}

const char *tool_key_state(key_state s)
{
	switch (s) {
	case KEY_STATE_ENABLED:
		return "enabled";
	case KEY_STATE_DISABLED:
		return "disabled";
	case KEY_STATE_PENDING_DELETION:
		return "pending_deletion";
	case KEY_STATE_DESTROYED:
		return "destroyed";
	case KEY_STATE_UNKNOWN:
		break;
	}
	return "unknown";
}

int tool_json_print(json_t *o, int ret)
{
	char *txt = o ? json_dumps(o, JSON_INDENT(2) | JSON_PRESERVE_ORDER) : NULL;
	if (txt)
		printf("%s\n", txt);
	free(txt);
	json_decref(o);
	return ret;
}
