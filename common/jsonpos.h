/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Finds the line of a value in JSON text by its path, so configuration
 * errors can name file, line and field. jansson parses; this only scans,
 * and only on the error path. Bounded: it never reads past len and gives
 * up (returns 0) on anything malformed or nested deeper than 32 levels.
 */
#ifndef P11KMS_JSONPOS_H
#define P11KMS_JSONPOS_H

#include <stddef.h>

typedef struct jpath_elem {
	const char *key; /* object member name, or NULL for an array index */
	size_t index;
} jpath_elem;

/* Line (1-based) where the value at path starts, or 0 if not found. */
unsigned jsonpos_line(const char *text, size_t len, const jpath_elem *path,
		      size_t depth);

#endif
