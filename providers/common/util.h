/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Small helpers every cloud provider needs, written once: wiping secrets
 * out of buffers other libraries own, reading a string field of a JSON
 * object, and environment lookups through a hook tests can replace.
 */
#ifndef P11KMS_PROVIDERS_UTIL_H
#define P11KMS_PROVIDERS_UTIL_H

#include <jansson.h>

/* jansson and the HTTP layer own these buffers and free them without
 * cleansing: wipe the secret bytes first. NULL and non-strings are
 * ignored. */
void wipe_json_string(json_t *s);
void wipe_cstr(const char *s);
/* Every string value of an object (a credentials file). */
void wipe_json_object_strings(json_t *o);

/* o[k] when it is a string, else NULL. */
const char *json_str_field(const json_t *o, const char *k);

/* The key a provider seals tokens with when its config names one:
 * "seal_with", else the id of the first "keys" entry of type "envelope"
 * (or without a type); NULL when there is none. */
const char *cfg_envelope_seal_key(const json_t *cfg);

/* Environment lookups go through this, so tests can supply their own. */
typedef const char *(*env_get_fn)(void *arg, const char *name);
/* name's value through fn (NULL: getenv); NULL when unset or empty. */
const char *env_lookup(env_get_fn fn, void *arg, const char *name);

#endif
