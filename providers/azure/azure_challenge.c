/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The bearer challenge (PROTOCOLS.md 2.6): the WWW-Authenticate header of
 * a 401 names the authority, tenant and resource to ask a token for; the
 * resource must belong to the vault's own host before it is believed.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "azure_impl.h"
#include "common/crypto.h"
#include "common/log.h"
#include "common/secmem.h"
#include "providers/common/codec.h"
#include "providers/common/errmap.h"
#include "providers/common/util.h"
#include "providers/common/versions.h"

/* --- the bearer challenge ------------------------------------------------------ */

/* One parameter of `Bearer a="x", b="y"`. */
static bool challenge_param(const char *h, const char *name, char *out, size_t ol)
{
	size_t nl = strlen(name);
	for (const char *p = h; (p = strstr(p, name)); p += nl) {
		bool start = p == h || p[-1] == ' ' || p[-1] == ',';
		const char *q = p + nl;
		while (*q == ' ')
			q++;
		if (!start || *q != '=')
			continue;
		q++;
		while (*q == ' ')
			q++;
		bool quoted = *q == '"';
		if (quoted)
			q++;
		size_t n = quoted ? strcspn(q, "\"") : strcspn(q, ", ");
		if (n >= ol)
			return false;
		memcpy(out, q, n);
		out[n] = 0;
		return true;
	}
	return false;
}

/* "https://vault.azure.net/.default" -> "vault.azure.net" */
static void scope_host(const char *scope, char *out, size_t ol)
{
	const char *p = strstr(scope, "://");
	p = p ? p + 3 : scope;
	size_t n = strcspn(p, "/:");
	if (n >= ol)
		n = ol - 1;
	memcpy(out, p, n);
	out[n] = 0;
}

bool az_host_ends_with(const char *host, const char *domain)
{
	size_t hl = strcspn(host, ":"), dl = strlen(domain);
	return dl && hl > dl && host[hl - dl - 1] == '.' &&
	       strncasecmp(host + hl - dl, domain, dl) == 0;
}

/* PROTOCOLS.md 2.5: scope = scope param, else resource + "/.default";
 * tenant = first path segment of authorization(_uri); the vault's host
 * must lie in the scope's domain, so a token is never handed to a host
 * outside it. */
p11k_err az_apply_challenge(az_state *s, const char *hdr, provider_status *st)
{
	char scope[300], res[256], auth[300], tenant[128] = "";
	if (strncasecmp(hdr, "Bearer", 6) != 0) {
		snprintf(st->message, sizeof(st->message), "401 without a Bearer challenge");
		return P11K_ERR_ACCESS_DENIED;
	}
	if (!challenge_param(hdr, "scope", scope, sizeof(scope))) {
		if (!challenge_param(hdr, "resource", res, sizeof(res))) {
			snprintf(st->message, sizeof(st->message),
				 "bearer challenge without resource or scope");
			return P11K_ERR_BAD_REPLY;
		}
		size_t n = strlen(res);
		while (n && res[n - 1] == '/')
			res[--n] = 0;
		snprintf(scope, sizeof(scope), "%s/.default", res);
	}
	if (challenge_param(hdr, "authorization", auth, sizeof(auth)) ||
	    challenge_param(hdr, "authorization_uri", auth, sizeof(auth))) {
		const char *p = strstr(auth, "://");
		p = p ? strchr(p + 3, '/') : NULL;
		if (p) {
			size_t n = strcspn(p + 1, "/?");
			if (n < sizeof(tenant)) {
				memcpy(tenant, p + 1, n);
				tenant[n] = 0;
			}
		}
	}
	char dom[256];
	scope_host(scope, dom, sizeof(dom));
	if (s->verify_challenge && !az_host_ends_with(s->host, dom)) {
		snprintf(st->message, sizeof(st->message),
			 "the challenge resource '%.80s' does not match the vault host", dom);
		return P11K_ERR_ACCESS_DENIED;
	}
	char *ns = strdup(scope), *nt = tenant[0] ? strdup(tenant) : NULL;
	if (!ns) {
		free(nt);
		return P11K_ERR_NOMEM;
	}
	pthread_mutex_lock(&s->lock);
	free(s->scope);
	s->scope = ns;
	if (nt) {
		free(s->tenant);
		s->tenant = nt;
	}
	pthread_mutex_unlock(&s->lock);
	log_debug(COMP, "bearer challenge: scope %s, tenant %s", scope,
		  tenant[0] ? tenant : "(none)");
	return P11K_OK;
}

