/* SPDX-License-Identifier: Apache-2.0 */
/* What the p11kms commands share. */
#ifndef P11KMS_TOOL_TOOL_H
#define P11KMS_TOOL_TOOL_H

#include "module/module.h"

/* Start the module's core as an application would, through C_Initialize
 * (the configuration at cfgpath, or the module's own search when NULL).
 * NULL, with a line on stderr, when it does not start. */
CK_FUNCTION_LIST *tool_module_start(const char *cfgpath);

#endif
