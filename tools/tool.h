/* SPDX-License-Identifier: Apache-2.0 */
/* What the p11kms commands share. */
#ifndef P11KMS_TOOL_TOOL_H
#define P11KMS_TOOL_TOOL_H

#include <jansson.h>

#include "module/module.h"
#include "providers/provider.h"

/* Start the module's core as an application would, through C_Initialize
 * (the configuration at cfgpath, or the module's own search when NULL).
 * NULL, with one line on stderr, when it does not start: the
 * configuration's own error, or why C_Initialize refused. */
CK_FUNCTION_LIST *tool_module_start(const char *cfgpath);

/* The exit statuses of every command (p11kms(1), "EXIT STATUS"). */
#define TOOL_EXIT_OK 0
#define TOOL_EXIT_WARN 1  /* done, with something to look at */
#define TOOL_EXIT_FAIL 2  /* failed, refused, or critical */
#define TOOL_EXIT_USAGE 3 /* usage or configuration error */

/* --json's vocabulary (p11kms(1), "JSON RESULTS"): an exit status's
 * "status" (ok, warning, failed, usage_error), and a key state's name. */
const char *tool_exit_name(int ret);
const char *tool_key_state(key_state s);
/* Print o (indented, in insertion order) on stdout and free it; returns
 * ret. */
int tool_json_print(json_t *o, int ret);

#endif
