/* SPDX-License-Identifier: Apache-2.0 */
/* The provider error-table lookup (errmap.h). */
#include <string.h>

#include "errmap.h"

p11k_err errmap_lookup(const errmap_entry *table, size_t n, const char *name, bool *known)
{
	for (size_t i = 0; name && i < n; i++)
		if (strcmp(table[i].name, name) == 0) {
			if (known)
				*known = true;
			return table[i].err;
		}
	if (known)
		*known = false;
	return P11K_ERR_BAD_REPLY;
}
