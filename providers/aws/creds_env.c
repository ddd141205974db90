/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Credential source "environment": AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY,
 * AWS_SESSION_TOKEN (or the legacy AWS_SECURITY_TOKEN) and
 * AWS_CREDENTIAL_EXPIRATION.
 */
#include <string.h>

#include "creds_impl.h"

/* --- source: environment -------------------------------------------------- */

p11k_err aws_src_env(void *state, aws_creds *out, provider_status *st)
{
	const aws_chain_cfg *c = state;
	const char *akid = aws_env(c, "AWS_ACCESS_KEY_ID");
	const char *sk = aws_env(c, "AWS_SECRET_ACCESS_KEY");
	const char *tok = aws_env(c, "AWS_SESSION_TOKEN");
	const char *exp = aws_env(c, "AWS_CREDENTIAL_EXPIRATION");
	if (!tok)
		tok = aws_env(c, "AWS_SECURITY_TOKEN"); /* legacy name */
	memset(out, 0, sizeof(*out));
	if (!akid && !sk)
		return P11K_ERR_KEY_NOT_FOUND;
	if (!akid || !sk) {
		provider_status_set(st, P11K_ERR_ACCESS_DENIED, "%s is set but %s is not",
			   akid ? "AWS_ACCESS_KEY_ID" : "AWS_SECRET_ACCESS_KEY",
			   akid ? "AWS_SECRET_ACCESS_KEY" : "AWS_ACCESS_KEY_ID");
		return P11K_ERR_ACCESS_DENIED;
	}
	if (strlen(akid) >= sizeof(out->access_key) || !aws_printable(akid, strlen(akid)) ||
	    strlen(sk) >= MAX_SECRET || (tok && strlen(tok) >= MAX_SECRET)) {
		provider_status_set(st, P11K_ERR_ACCESS_DENIED,
			   "AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY or "
			   "AWS_SESSION_TOKEN is malformed or too long");
		return P11K_ERR_ACCESS_DENIED;
	}
	if (exp && !aws_parse_iso8601(exp, &out->expires_at)) {
		provider_status_set(st, P11K_ERR_ACCESS_DENIED,
			   "AWS_CREDENTIAL_EXPIRATION is not an ISO 8601 time");
		return P11K_ERR_ACCESS_DENIED;
	}
	memcpy(out->access_key, akid, strlen(akid) + 1);
	out->secret_key = aws_sec_strndup(sk, strlen(sk));
	out->session_token = tok ? aws_sec_strndup(tok, strlen(tok)) : NULL;
	if (!out->secret_key || (tok && !out->session_token)) {
		aws_creds_clear(out);
		return P11K_ERR_NOMEM;
	}
	return P11K_OK;
}

