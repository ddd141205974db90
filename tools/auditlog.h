/* SPDX-License-Identifier: Apache-2.0 */
/* p11kms audit: the audit log, read back (docs/AUDIT.md, p11kms(1)). */
#ifndef P11KMS_TOOLS_AUDITLOG_H
#define P11KMS_TOOLS_AUDITLOG_H

#define AUDIT_SYNOPSIS "p11kms audit [--config PATH] [--since T] [--json] [FILE]"
#define AUDIT_HELP                                                                           \
	"Show the audit log (the configuration's \"log.audit\", or FILE): one row per\n"     \
	"KMS operation with its time, process, the PKCS#11 function or p11kms\n"            \
	"command that caused it, slot, operation, result, latency, key version and\n"       \
	"the KMS request id. --since T: only lines from T on, an RFC 3339 time\n"           \
	"(2026-12-04T18:00:00Z) or a duration back from now (90s, 30m, 1h, 7d).\n"          \
	"--json prints the lines themselves (JSON lines, docs/AUDIT.md). A line that\n"     \
	"does not parse is reported on stderr with its line number and skipped.\n"          \
	"Exit 0 ok, 1 some lines skipped, 2 the log cannot be read, 3 usage or\n"           \
	"configuration error.\n"

/* The arguments after "audit"; returns the exit status. */
int tool_audit(int argc, char **argv);

#endif
