/* SPDX-License-Identifier: Apache-2.0 */
/* p11kms status (tools/status.c). */
#ifndef P11KMS_TOOL_STATUS_H
#define P11KMS_TOOL_STATUS_H

/* argv[1] is "status". Exit status 0..3, or -1 for a usage error. */
int tool_status(int argc, char **argv);

#endif
