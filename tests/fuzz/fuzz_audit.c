/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The audit log's line parser (p11kms audit, slots/audit.c) on arbitrary
 * bytes: the input is one line. A line that parses has every required
 * field, of its type, and a time that parses on its own to the same
 * instant; whatever the input, no read past it and no leak.
 */
#include <stdbool.h>
#include <stdint.h>

#include "fuzz_common.h"
#include "slots/audit.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	/* A copy of exactly size bytes: the parser must not need a NUL. */
	char *text = malloc(size ? size : 1);
	if (!text)
		return 0;
	memcpy(text, data, size);
	audit_entry e;
	char why[200];
	bool ok = audit_line_parse(text, size, &e, why, sizeof(why));
	if (ok) {
		FUZZ_CHECK(e.time && e.exe && e.slot && e.provider && e.key_id && e.op &&
			   e.result);
		FUZZ_CHECK(e.pid >= 0 && e.uid >= 0 && e.slot_id >= 0 && e.latency_ms >= 0);
		uint64_t ms = 0;
		FUZZ_CHECK(audit_time_parse(e.time, &ms) && ms == e.time_ms);
		audit_entry_free(&e);
	} else {
		FUZZ_CHECK(why[0] && strnlen(why, sizeof(why)) < sizeof(why));
	}
	free(text);
	return 0;
}
