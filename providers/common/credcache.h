/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The one credential cache of the cloud providers (AWS credentials, Entra
 * ID and Google access tokens). It holds one value for one key, refreshes
 * it REFRESH_AHEAD_S before it expires, and refreshes in one thread at a
 * time (single flight): while a refresh runs, other callers get the cached
 * value if it is still valid and otherwise wait for the refresh to end. A
 * refresh that fails while the cached value is still valid keeps it (the
 * SDKs' advisory refresh). The lock is never held across a fetch (STYLE
 * habit 7); the time comes from clock_now_s(), which tests replace.
 *
 * Values are opaque to the cache: the cloud supplies how to copy and how
 * to free one, and keeps them in secure memory (common/secmem.h), so every
 * free wipes them.
 */
#ifndef P11KMS_CREDCACHE_H
#define P11KMS_CREDCACHE_H

#include "common/common.h"
#include "common/err.h"
#include "providers/provider.h"

/* How long before expiry a value is refreshed (5 minutes, as the SDKs do). */
#define REFRESH_AHEAD_S 300
/* The expiry of a value that never expires. */
#define CREDCACHE_NEVER UINT64_MAX

typedef struct credcache_ops {
	/* Fetch a new value for req (the argument of credcache_get), called
	 * without the lock and by one thread at a time. On P11K_OK *value is
	 * the cache's, *expires_at absolute unix seconds (CREDCACHE_NEVER for
	 * none) and *source a static name for logs. */
	p11k_err (*fetch)(void *arg, const void *req, void **value, uint64_t *expires_at,
			  const char **source, provider_status *st);
	/* A copy for a caller (NULL: out of memory). */
	void *(*copy)(const void *value);
	/* Wipe and free a value. */
	void (*free)(void *value);
} credcache_ops;

/* copy and free for the common value, a NUL-terminated token in secure
 * memory. */
void *credcache_str_copy(const void *value);
void credcache_str_free(void *value);

typedef struct credcache credcache;

/* comp names the log component ("aws-creds", ...). ops and comp must
 * outlive the cache. */
credcache *credcache_new(const credcache_ops *ops, void *arg, const char *comp);
void credcache_free(credcache *c);

/* The value for key (NULL: the cache serves one value only), fetched with
 * req when the cached one is for another key, missing, or due for refresh.
 * *out is a copy the caller frees with ops->free. Thread-safe. On failure
 * st holds the fetch's status with st->err set. */
P11K_WUR p11k_err credcache_get(credcache *c, const char *key, const void *req, void **out,
				provider_status *st);
/* Forget the cached value (the service refused it). */
void credcache_invalidate(credcache *c);
/* The source of the last successful fetch, or NULL. */
const char *credcache_source(credcache *c);

#endif
