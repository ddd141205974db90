/* SPDX-License-Identifier: Apache-2.0 */
/* The credential cache (credcache.h). */
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "credcache.h"
#include "common/log.h"
#include "common/secmem.h"

struct credcache {
	const credcache_ops *ops;
	void *arg;
	const char *comp;

	pthread_mutex_t lock;
	pthread_cond_t done; /* signalled when a refresh ends */
	/* Under lock: */
	void *value;         /* NULL: nothing cached */
	char *key;           /* what value is for (NULL: the only key) */
	uint64_t expires_at;
	bool refreshing;
	const char *source;
};

credcache *credcache_new(const credcache_ops *ops, void *arg, const char *comp)
{
	credcache *c = calloc(1, sizeof(*c));
	if (!c)
		return NULL;
	if (pthread_mutex_init(&c->lock, NULL) != 0) {
		free(c);
		return NULL;
	}
	if (pthread_cond_init(&c->done, NULL) != 0) {
		pthread_mutex_destroy(&c->lock);
		free(c);
		return NULL;
	}
	c->ops = ops;
	c->arg = arg;
	c->comp = comp;
	return c;
}

static void drop_inlock(credcache *c)
{
	if (c->value)
		c->ops->free(c->value);
	c->value = NULL;
	free(c->key);
	c->key = NULL;
	c->expires_at = 0;
}

void credcache_free(credcache *c)
{
	if (!c)
		return;
	drop_inlock(c);
	pthread_cond_destroy(&c->done);
	pthread_mutex_destroy(&c->lock);
	free(c);
}

static bool same_key(const char *a, const char *b)
{
	return (!a && !b) || (a && b && strcmp(a, b) == 0);
}

/* Cached for key and not yet expired. */
static bool valid_inlock(const credcache *c, const char *key, uint64_t now)
{
	return c->value && same_key(c->key, key) && now < c->expires_at;
}

/* Valid and outside the refresh-ahead window. */
static bool fresh_inlock(const credcache *c, const char *key, uint64_t now)
{
	return valid_inlock(c, key, now) &&
	       (c->expires_at == CREDCACHE_NEVER || now + REFRESH_AHEAD_S < c->expires_at);
}

static p11k_err copy_inlock(const credcache *c, void **out)
{
	*out = c->ops->copy(c->value);
	return *out ? P11K_OK : P11K_ERR_NOMEM;
}

p11k_err credcache_get(credcache *c, const char *key, const void *req, void **out,
		       provider_status *st)
{
	void *fresh = NULL;
	uint64_t exp = 0;
	const char *source = NULL;
	provider_status s = {0};
	p11k_err rc;

	if (!c || !out)
		return P11K_ERR_INTERNAL;
	*out = NULL;
	char *k = key ? strdup(key) : NULL;
	if (key && !k)
		return P11K_ERR_NOMEM;
	pthread_mutex_lock(&c->lock);
	for (;;) {
		uint64_t now = clock_now_s();
		/* Fresh, or another thread is refreshing and ours still works. */
		if (fresh_inlock(c, key, now) || (c->refreshing && valid_inlock(c, key, now))) {
			rc = copy_inlock(c, out);
			pthread_mutex_unlock(&c->lock);
			free(k);
			return rc;
		}
		if (!c->refreshing)
			break;
		/* Single flight: nothing usable yet, wait for the refresh. */
		pthread_cond_wait(&c->done, &c->lock);
	}
	c->refreshing = true;
	pthread_mutex_unlock(&c->lock);

	rc = c->ops->fetch(c->arg, req, &fresh, &exp, &source, &s);

	pthread_mutex_lock(&c->lock);
	c->refreshing = false;
	pthread_cond_broadcast(&c->done);
	uint64_t now = clock_now_s();
	if (rc == P11K_OK) {
		drop_inlock(c);
		c->value = fresh; /* ownership moves to the cache */
		c->key = k;
		c->expires_at = exp;
		c->source = source;
		fresh = NULL;
		k = NULL;
		log_debug(c->comp, "credentials from %s (expire %llu)", source,
			  (unsigned long long)exp);
		rc = copy_inlock(c, out);
	} else if (valid_inlock(c, key, now)) {
		/* The refresh failed inside the refresh-ahead window: the
		 * cached value still works, keep using it until it expires. */
		log_warn(c->comp, "refresh failed (%s), using the cached credentials until "
				  "they expire", s.message[0] ? s.message : p11k_err_name(rc));
		rc = copy_inlock(c, out);
	} else if (st) {
		*st = s;
		st->err = rc;
	}
	pthread_mutex_unlock(&c->lock);
	if (fresh)
		c->ops->free(fresh);
	free(k);
	return rc;
}

void *credcache_str_copy(const void *value)
{
	return sec_dup(value, strlen(value) + 1);
}

void credcache_str_free(void *value)
{
	sec_free(value);
}

void credcache_invalidate(credcache *c)
{
	pthread_mutex_lock(&c->lock);
	drop_inlock(c);
	pthread_mutex_unlock(&c->lock);
}

const char *credcache_source(credcache *c)
{
	pthread_mutex_lock(&c->lock);
	const char *n = c->source;
	pthread_mutex_unlock(&c->lock);
	return n;
}
