/* SPDX-License-Identifier: Apache-2.0 */
/* The version walk (versions.h). */
#include "versions.h"

p11k_err versions_try(const version_walk *w, size_t *tried, provider_status *st)
{
	p11k_err e = P11K_ERR_INVALID_CIPHERTEXT;
	size_t t = 0;
	for (size_t i = 0; i < w->n && (!w->max_tries || t < w->max_tries); i++) {
		t++;
		e = w->attempt(w->arg, i, st);
		if (!w->next(e))
			break;
	}
	if (tried)
		*tried = t;
	return e;
}
