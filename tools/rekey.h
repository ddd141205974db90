/* SPDX-License-Identifier: Apache-2.0 */
/* p11kms rekey (tools/rekey.c). */
#ifndef P11KMS_TOOL_REKEY_H
#define P11KMS_TOOL_REKEY_H

/* argv[1] is "rekey". Exit status, or -1 for a usage error. */
int tool_rekey(int argc, char **argv);

#endif
