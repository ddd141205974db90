/* SPDX-License-Identifier: Apache-2.0 */
/* Shared provider helpers (util.h). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>

#include "util.h"

void wipe_json_string(json_t *s)
{
	if (json_is_string(s))
		OPENSSL_cleanse((char *)(uintptr_t)json_string_value(s), json_string_length(s));
}

void wipe_cstr(const char *s)
{
	if (s)
		OPENSSL_cleanse((void *)(uintptr_t)s, strlen(s));
}

void wipe_json_object_strings(json_t *o)
{
	const char *k;
	json_t *v;
	json_object_foreach(o, k, v)
		wipe_json_string(v);
}

const char *json_str_field(const json_t *o, const char *k)
{
	return json_string_value(json_object_get(o, k));
}

const char *cfg_envelope_seal_key(const json_t *cfg)
{
	json_t *keys = json_object_get(cfg, "keys");
	const char *seal = json_str_field(cfg, "seal_with");
	for (size_t i = 0; !seal && i < json_array_size(keys); i++) {
		const char *type = json_str_field(json_array_get(keys, i), "type");
		if (!type || strcmp(type, "envelope") == 0)
			seal = json_str_field(json_array_get(keys, i), "id");
	}
	return seal;
}

const char *env_lookup(env_get_fn fn, void *arg, const char *name)
{
	const char *v = fn ? fn(arg, name) : getenv(name);
	return v && *v ? v : NULL;
}
