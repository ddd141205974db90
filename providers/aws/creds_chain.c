/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The AWS credential chain (PROTOCOLS.md 1.5, botocore's order): one
 * source per concern behind aws_cred_source, each in its own file, and
 * the providers' one credential cache (providers/common/credcache.h) as
 * the caching wrapper.
 *
 *   environment   creds_env.c        AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN
 *   web-identity  creds_web.c        token file + role ARN (env or profile) -> STS, unsigned
 *   profile       creds_profile.c    shared credentials file, then config file
 *   container     creds_container.c  ECS/EKS credentials endpoint (relative or full URI)
 *   imds          creds_imds.c       EC2 instance metadata, IMDSv2 only
 *
 * Secrets (secret keys, session tokens, web identity and IMDS tokens,
 * credential file text) are held in secure memory and never reach a log
 * line or a provider_status. Where a library hands them back in its own
 * heap (jansson strings, the HTTP response body) the copy is wiped
 * before it is freed. The cache never holds its lock across the network.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "creds_impl.h"
#include "common/log.h"
#include "providers/common/credcache.h"

enum { SRC_ENV, SRC_WEB, SRC_PROFILE, SRC_CONTAINER, SRC_IMDS, SRC__COUNT };

struct aws_creds_provider {
	aws_chain_cfg cfg;
	aws_cred_source src[SRC__COUNT];
	size_t nsrc;
	credcache *cache; /* values: aws_creds (heap), secrets in secure memory */
};

/* --- the cache's values ----------------------------------------------------- */

static void creds_free(void *v)
{
	aws_creds_clear(v);
	free(v);
}

static void *creds_copy(const void *v)
{
	aws_creds *c = calloc(1, sizeof(*c));
	if (c && !aws_creds_copy(c, v)) {
		free(c);
		c = NULL;
	}
	return c;
}

/* Walks the sources in order (the cache calls it without its lock). */
static p11k_err chain_fetch(aws_creds_provider *p, aws_creds *out, const char **name,
			    provider_status *st)
{
	for (size_t i = 0; i < p->nsrc; i++) {
		provider_status s = {0};
		p11k_err rc = p->src[i].fetch(p->src[i].state, out, &s);
		if (rc == P11K_ERR_KEY_NOT_FOUND) {
			log_trace(COMP, "source %s: nothing here%s%s", p->src[i].name,
				  s.message[0] ? ": " : "", s.message);
			continue;
		}
		if (st) {
			*st = s;
			st->err = rc;
			/* "source: reason", the reason cut to fit. */
			int n = snprintf(st->message, sizeof(st->message), "%s: %.200s",
					 p->src[i].name,
					 s.message[0] ? s.message : p11k_err_name(rc));
			(void)n;
		}
		if (rc == P11K_OK)
			*name = p->src[i].name;
		else
			log_warn(COMP, "source %s failed: %s", p->src[i].name,
				 s.message[0] ? s.message : p11k_err_name(rc));
		return rc;
	}
	provider_status_set(st, P11K_ERR_ACCESS_DENIED,
			    "no AWS credentials found (environment, web identity, "
			    "profile '%.64s', container, IMDS)",
			    aws_profile_name(&p->cfg));
	return P11K_ERR_ACCESS_DENIED;
}

static p11k_err cache_fetch(void *arg, const void *req, void **value, uint64_t *expires_at,
			    const char **source, provider_status *st)
{
	aws_creds_provider *p = arg;
	aws_creds *fresh = calloc(1, sizeof(*fresh));
	(void)req;
	if (!fresh)
		return P11K_ERR_NOMEM;
	p11k_err rc = chain_fetch(p, fresh, source, st);
	if (rc == P11K_OK && fresh->expires_at && fresh->expires_at <= clock_now_s()) {
		provider_status_set(st, P11K_ERR_ACCESS_DENIED,
				    "%s: the credentials it returned have already expired",
				    *source);
		rc = P11K_ERR_ACCESS_DENIED;
	}
	if (rc != P11K_OK) {
		creds_free(fresh);
		return rc;
	}
	*expires_at = fresh->expires_at ? fresh->expires_at : CREDCACHE_NEVER;
	*value = fresh;
	return P11K_OK;
}

static const credcache_ops cache_ops = {
	.fetch = cache_fetch,
	.copy = creds_copy,
	.free = creds_free,
};

/* --- the chain -------------------------------------------------------------- */

static char *opt_dup(const char *s)
{
	return s && *s ? strdup(s) : NULL;
}

aws_creds_provider *aws_creds_chain_new(const aws_chain_options *opt)
{
	aws_creds_provider *p = calloc(1, sizeof(*p));
	if (!p)
		return NULL;
	if (opt) {
		p->cfg.profile = opt_dup(opt->profile);
		p->cfg.region = opt_dup(opt->region);
		p->cfg.sts_endpoint = opt_dup(opt->sts_endpoint);
		p->cfg.http = opt->http;
		p->cfg.getenv_fn = opt->getenv_fn;
		p->cfg.getenv_arg = opt->getenv_arg;
	}
	p->cache = credcache_new(&cache_ops, p, COMP);
	if ((opt && opt->profile && *opt->profile && !p->cfg.profile) ||
	    (opt && opt->region && *opt->region && !p->cfg.region) ||
	    (opt && opt->sts_endpoint && *opt->sts_endpoint && !p->cfg.sts_endpoint) ||
	    !p->cache) {
		aws_creds_provider_free(p);
		return NULL;
	}
	/* botocore skips the environment when a profile is named
	 * explicitly: the configuration asked for that profile. */
	if (!p->cfg.profile)
		p->src[p->nsrc++] = (aws_cred_source){"environment", aws_src_env, NULL, &p->cfg};
	p->src[p->nsrc++] = (aws_cred_source){"web-identity", aws_src_web, NULL, &p->cfg};
	p->src[p->nsrc++] = (aws_cred_source){"profile", aws_src_profile, NULL, &p->cfg};
	p->src[p->nsrc++] = (aws_cred_source){"container", aws_src_container, NULL, &p->cfg};
	p->src[p->nsrc++] = (aws_cred_source){"imds", aws_src_imds, NULL, &p->cfg};
	return p;
}

void aws_creds_provider_free(aws_creds_provider *p)
{
	if (!p)
		return;
	for (size_t i = 0; i < p->nsrc; i++)
		if (p->src[i].destroy)
			p->src[i].destroy(p->src[i].state);
	credcache_free(p->cache);
	free(p->cfg.profile);
	free(p->cfg.region);
	free(p->cfg.sts_endpoint);
	free(p);
}

p11k_err aws_creds_get(aws_creds_provider *p, aws_creds *out, provider_status *st)
{
	void *v = NULL;
	if (!p || !out)
		return P11K_ERR_INTERNAL;
	memset(out, 0, sizeof(*out));
	p11k_err rc = credcache_get(p->cache, NULL, NULL, &v, st);
	if (rc == P11K_OK) {
		*out = *(aws_creds *)v; /* the secrets move to the caller */
		free(v);
	}
	return rc;
}

const char *aws_creds_source_name(aws_creds_provider *p)
{
	return p ? credcache_source(p->cache) : NULL;
}
