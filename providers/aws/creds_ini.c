/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The shared config and credentials files (PROTOCOLS.md 1.5): the INI
 * parser botocore's configparser defines, and loading one file's profile
 * section for the profile and web identity sources.
 */
#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "creds_impl.h"
#include "common/secmem.h"
#include "providers/common/secretfile.h"

static bool span_eq(const char *a, size_t an, const char *b, bool nocase)
{
	size_t bn = strlen(b);
	if (an != bn)
		return false;
	return nocase ? strncasecmp(a, b, an) == 0 : memcmp(a, b, an) == 0;
}

/* botocore reads these files with configparser: "[section]" headers,
 * "key = value" (or "key: value") lines, whole-line comments with '#' or
 * ';', keys case-insensitive, indented lines continuing the previous value
 * (nested "s3 =" blocks) never match a key. The first occurrence wins.
 * No value is ever truncated: too long is not found. */
bool aws_ini_lookup(const char *text, size_t len, const char *section,
		    const char *key, char *out, size_t outlen)
{
	bool in_section = false, seen_key = false;
	if (!text || !section || !key || !out || outlen == 0)
		return false;
	for (size_t i = 0; i < len;) {
		size_t e = i;
		while (e < len && text[e] != '\n')
			e++;
		size_t next = e < len ? e + 1 : len;
		bool indented = e > i && (text[i] == ' ' || text[i] == '\t');
		size_t b = i;
		while (b < e && aws_is_ws(text[b]))
			b++;
		while (e > b && aws_is_ws(text[e - 1]))
			e--;
		i = next;
		if (b == e || text[b] == '#' || text[b] == ';')
			continue;
		if (indented && seen_key)
			continue; /* a continuation line */
		if (text[b] == '[') {
			const char *close = memchr(text + b, ']', e - b);
			if (!close) {
				in_section = false;
				continue;
			}
			size_t sb = b + 1, se = (size_t)(close - text);
			while (sb < se && aws_is_ws(text[sb]))
				sb++;
			while (se > sb && aws_is_ws(text[se - 1]))
				se--;
			in_section = span_eq(text + sb, se - sb, section, false);
			seen_key = false;
			continue;
		}
		if (!in_section)
			continue;
		size_t d = b;
		while (d < e && text[d] != '=' && text[d] != ':')
			d++;
		if (d == e)
			continue; /* not a key line */
		seen_key = true;
		size_t ke = d;
		while (ke > b && aws_is_ws(text[ke - 1]))
			ke--;
		if (!span_eq(text + b, ke - b, key, true))
			continue;
		size_t vb = d + 1;
		while (vb < e && aws_is_ws(text[vb]))
			vb++;
		if (e - vb >= outlen)
			return false;
		memcpy(out, text + vb, e - vb);
		out[e - vb] = '\0';
		return true;
	}
	return false;
}

const char *aws_profile_name(const aws_chain_cfg *c)
{
	if (c->profile)
		return c->profile;
	const char *p = aws_env(c, "AWS_PROFILE");
	if (!p)
		p = aws_env(c, "AWS_DEFAULT_PROFILE");
	return p ? p : "default";
}

p11k_err aws_ini_load(const aws_chain_cfg *c, bool config, aws_ini_file *f,
			 provider_status *st)
{
	const char *prof = aws_profile_name(c);
	const char *env = aws_env(c, config ? "AWS_CONFIG_FILE"
					    : "AWS_SHARED_CREDENTIALS_FILE");
	const char *dflt = config ? "~/.aws/config" : "~/.aws/credentials";
	int n;
	memset(f, 0, sizeof(*f));
	if (!aws_expand_path(c, env, dflt, f->path, sizeof(f->path)))
		return P11K_ERR_KEY_NOT_FOUND;
	/* Credentials file sections are [name]; config file sections are
	 * [profile name] except [default] (PROTOCOLS.md 1.5). */
	if (config && strcmp(prof, "default") != 0)
		n = snprintf(f->section, sizeof(f->section), "profile %s", prof);
	else
		n = snprintf(f->section, sizeof(f->section), "%s", prof);
	if (n < 0 || (size_t)n >= sizeof(f->section)) {
		provider_status_set(st, P11K_ERR_ACCESS_DENIED, "profile name too long");
		return P11K_ERR_ACCESS_DENIED;
	}
	return secretfile_read(f->path, MAX_FILE_TEXT,
			       config ? "AWS config file" : "AWS credentials file", &f->text,
			       &f->len, st);
}

void aws_ini_free(aws_ini_file *f)
{
	sec_free(f->text);
	f->text = NULL;
}

bool aws_ini_get(const aws_ini_file *f, const char *key, char *out, size_t outlen)
{
	return f->text && aws_ini_lookup(f->text, f->len, f->section, key, out, outlen);
}

/* Static keys from one file's profile. */
