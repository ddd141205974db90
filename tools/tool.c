/* SPDX-License-Identifier: Apache-2.0 */
/* What the p11kms commands share (tool.h). */
#include "tools/tool.h"

#include <stdio.h>

#include "common/log.h"

CK_FUNCTION_LIST *tool_module_start(const char *cfgpath)
{
	CK_FUNCTION_LIST *fl = NULL;
	char init[4200];
	snprintf(init, sizeof(init), "config=%s", cfgpath ? cfgpath : "");
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
