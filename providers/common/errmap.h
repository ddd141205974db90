/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The one shape of a provider's error table (STYLE habit 4): the
 * service's own error name (AWS __type, Azure error.code, google.rpc.Status
 * name) -> the internal vocabulary. Each cloud keeps its table next to
 * its code, with the protocol section it follows; the lookup is this one.
 */
#ifndef P11KMS_ERRMAP_H
#define P11KMS_ERRMAP_H

#include <stdbool.h>
#include <stddef.h>

#include "common/err.h"

typedef struct errmap_entry {
	const char *name;
	p11k_err err;
} errmap_entry;

/* name's entry in table[0..n): *known tells whether there was one (known
 * may be NULL); an unknown name is P11K_ERR_BAD_REPLY. */
p11k_err errmap_lookup(const errmap_entry *table, size_t n, const char *name, bool *known);

#endif
