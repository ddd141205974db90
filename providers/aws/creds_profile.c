/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Credential source "profile": static keys of the selected profile, from
 * the shared credentials file, then the config file.
 */
#include <string.h>

#include "creds_impl.h"
#include "common/log.h"
#include "common/secmem.h"

static p11k_err profile_keys(const aws_ini_file *f, aws_creds *out,
			     provider_status *st)
{
	char akid[sizeof(out->access_key)];
	char *sk = sec_alloc(MAX_SECRET), *tok = sec_alloc(MAX_SECRET);
	p11k_err rc = P11K_OK;
	memset(out, 0, sizeof(*out));
	if (!sk || !tok)
		rc = P11K_ERR_NOMEM;
	bool has_id = rc == P11K_OK && aws_ini_get(f, "aws_access_key_id", akid, sizeof(akid)) &&
		      akid[0];
	bool has_sk = rc == P11K_OK &&
		      aws_ini_get(f, "aws_secret_access_key", sk, MAX_SECRET) && sk[0];
	bool has_tok = rc == P11K_OK &&
		       ((aws_ini_get(f, "aws_session_token", tok, MAX_SECRET) && tok[0]) ||
			(aws_ini_get(f, "aws_security_token", tok, MAX_SECRET) && tok[0]));
	if (rc == P11K_OK && !has_id && !has_sk) {
		rc = P11K_ERR_KEY_NOT_FOUND;
	} else if (rc == P11K_OK && (!has_id || !has_sk || !aws_printable(akid, strlen(akid)))) {
		provider_status_set(st, P11K_ERR_ACCESS_DENIED,
			   "profile section [%.100s] in %.100s has %s but not %s",
			   f->section, f->path,
			   has_id ? "aws_access_key_id" : "aws_secret_access_key",
			   has_id ? "a usable aws_secret_access_key"
				  : "aws_access_key_id");
		rc = P11K_ERR_ACCESS_DENIED;
	} else if (rc == P11K_OK) {
		memcpy(out->access_key, akid, sizeof(akid));
		out->secret_key = aws_sec_strndup(sk, strlen(sk));
		out->session_token = has_tok ? aws_sec_strndup(tok, strlen(tok)) : NULL;
		if (!out->secret_key || (has_tok && !out->session_token)) {
			aws_creds_clear(out);
			rc = P11K_ERR_NOMEM;
		}
	}
	sec_free(sk);
	sec_free(tok);
	return rc;
}

p11k_err aws_src_profile(void *state, aws_creds *out, provider_status *st)
{
	const aws_chain_cfg *c = state;
	aws_ini_file f;
	p11k_err rc = P11K_ERR_KEY_NOT_FOUND;
	/* The shared credentials file first, then the config file
	 * (botocore's SharedCredentialProvider, then ConfigProvider). */
	for (int config = 0; config < 2 && rc == P11K_ERR_KEY_NOT_FOUND; config++) {
		rc = aws_ini_load(c, config, &f, st);
		if (rc == P11K_OK) {
			rc = profile_keys(&f, out, st);
			if (rc == P11K_OK)
				log_debug(COMP, "profile '%s' from %s", aws_profile_name(c),
					  f.path);
		}
		aws_ini_free(&f);
	}
	return rc;
}

