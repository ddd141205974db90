/* SPDX-License-Identifier: Apache-2.0 */
/*
 * "Try the current version, then older ones" (provider.h remote_crypt):
 * the standard formats name no key version, so a decryption is tried on
 * the candidates in order of preference until one answers anything but
 * "not this version". Safe because every algorithm the providers run
 * authenticates what it decrypts. Azure and GCP walk their versions with
 * this; each says what "not this version" means for its service.
 */
#ifndef P11KMS_VERSIONS_H
#define P11KMS_VERSIONS_H

#include <stdbool.h>
#include <stddef.h>

#include "common/err.h"
#include "providers/provider.h"

typedef struct version_walk {
	size_t n;         /* candidates, best first */
	size_t max_tries; /* 0: all of them */
	/* Run the operation on candidate i. */
	p11k_err (*attempt)(void *arg, size_t i, provider_status *st);
	/* Does e mean "not this version, try the next one"? */
	bool (*next)(p11k_err e);
	void *arg;
} version_walk;

/* The first answer that is not "next", else the last answer;
 * P11K_ERR_INVALID_CIPHERTEXT when there was no candidate. *tried (may be
 * NULL) counts the attempts. */
P11K_WUR p11k_err versions_try(const version_walk *w, size_t *tried, provider_status *st);

#endif
