/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The Azure Key Vault / Managed HSM provider (keys REST API over HTTPS,
 * Entra ID bearer tokens; PROTOCOLS.md section 2).
 *
 * Sealing is a remote wrapKey: RSA keys with RSA-OAEP-256, Managed HSM
 * oct-HSM keys with CKM_AES_KEY_WRAP_PAD (RFC 5649, any length). Wrapping
 * is remote even for RSA, where the public key would allow it locally,
 * so that every seal is checked by the service against the key's state
 * and the caller's rights (a disabled key or a revoked role fails at
 * once) and no public key needs caching or trusting.
 *
 * Neither algorithm carries AAD, so the module's AAD is bound by wrapping
 * SHA-256(aad) || plaintext and checking that prefix after unwrap.
 *
 * Blob: "P1KA" | 0x01 | alg length (1) | alg | kid length (2, BE) | kid |
 * wrapped value. The kid is the full versioned key id the service
 * returned, so rotation keeps old blobs working; decrypt calls that
 * version under the configured vault_url (never the blob's host) and
 * refuses a blob of another key name.
 *
 * Standard mechanisms (remote_crypt, docs/REMOTE.md): RSA-OAEP(-256),
 * AES key wrap (A*KW, CKM_AES_KEY_WRAP_PAD) and AES-GCM run by the
 * service in their standard formats, no header, no AAD binding. Their
 * results name no key version, so an unversioned decryption that fails
 * is retried with the older enabled versions (GetKeyVersions).
 *
 * Signing keys (public_key, sign; docs/SIGNING.md): GetKey's JWK (RSA n/e,
 * EC P-256/P-384 x/y) becomes DER SPKI, key_ops the uses; sign POSTs the
 * digest to .../sign with the JWS name (RS*, PS*, ES*) under the version
 * public_key named, and ES* values come back as r||s already.
 *
 * This file: configuration, creation and the ops table. The rest, one job
 * a file: azure_call.c (one vault call, error map, key ids),
 * azure_challenge.c (the bearer challenge), azure_keys.c (describe, the
 * envelope seal), azure_std.c (the standard mechanisms); entra.c gets the
 * tokens.
 */
#include <ctype.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "azure_impl.h"
#include "common/log.h"
#include "common/secmem.h"
#include "providers/common/util.h"

static const char *const resource_choices[] = {"vault", "hsm", NULL};

static const field_spec azure_fields[] = {
	{"vault_url", FT_STRING, true, 0, 0, NULL},
	{"tenant_id", FT_STRING, false, 0, 0, NULL},
	{"client_id", FT_STRING, false, 0, 0, NULL},
	{"client_secret_file", FT_STRING, false, 0, 0, NULL},
	{"client_certificate_file", FT_STRING, false, 0, 0, NULL},
	{"federated_token_file", FT_STRING, false, 0, 0, NULL},
	{"authority_host", FT_STRING, false, 0, 0, NULL},
	{"managed_identity", FT_BOOL, false, 0, 0, NULL},
	{"ca_file", FT_STRING, false, 0, 0, NULL},
	{"api_version", FT_STRING, false, 0, 0, NULL},
	{"resource", FT_STRING, false, 0, 0, resource_choices},
	{NULL, FT_STRING, false, 0, 0, NULL},
};

/* --- creation (no network) ------------------------------------------------------ */

static void az_destroy(void *state)
{
	az_state *s = state;
	if (!s)
		return;
	entra_free(s->cred);
	http_client_free(s->http);
	http_client_free(s->idhttp);
	http_client_free(s->loginhttp);
	for (size_t i = 0; i < s->nkty; i++)
		free(s->kty[i].key_id);
	free(s->vault_url);
	free(s->host);
	free(s->api_version);
	free(s->default_key);
	free(s->scope);
	free(s->tenant);
	pthread_mutex_destroy(&s->lock);
	free(s);
}

static bool is_loopback_host(const char *h)
{
	return strncmp(h, "127.", 4) == 0 || strncmp(h, "[::1]", 5) == 0 ||
	       strncasecmp(h, "localhost", 9) == 0;
}

static p11k_err az_create(const json_t *cfg, const char *cfg_path, void **state, char *why,
			  size_t wl)
{
	(void)cfg_path;
	az_state *s = calloc(1, sizeof(*s));
	if (!s || pthread_mutex_init(&s->lock, NULL) != 0) {
		free(s);
		return P11K_ERR_NOMEM;
	}
	p11k_err e = P11K_OK;
	const char *url = json_str_field(cfg, "vault_url");
	if (!url || strncmp(url, "https://", 8) != 0) {
		snprintf(why, wl, "vault_url %.100s: only https:// URLs are accepted",
			 url ? url : "");
		e = P11K_ERR_ACCESS_DENIED;
	} else if (!(s->vault_url = strdup(url))) {
		e = P11K_ERR_NOMEM;
	}
	if (e == P11K_OK) {
		size_t n = strlen(s->vault_url);
		while (n > 8 && s->vault_url[n - 1] == '/')
			s->vault_url[--n] = 0;
		const char *h = s->vault_url + 8;
		if (!*h || strchr(h, '/') || strchr(h, '?') || strchr(h, '@')) {
			snprintf(why, wl, "vault_url %.100s: give scheme and host only", url);
			e = P11K_ERR_ACCESS_DENIED;
		} else if (!(s->host = strdup(h))) {
			e = P11K_ERR_NOMEM;
		}
	}
	const char *res = json_str_field(cfg, "resource");
	bool hsm = false;
	if (e == P11K_OK) {
		char hl[256];
		snprintf(hl, sizeof(hl), "%s", s->host);
		hl[strcspn(hl, ":")] = 0;
		hsm = res ? strcmp(res, "hsm") == 0 : az_host_ends_with(hl, "managedhsm.azure.net");
		s->verify_challenge = !is_loopback_host(s->host);
		s->scope = strdup(hsm ? "https://managedhsm.azure.net/.default"
				      : "https://vault.azure.net/.default");
		const char *av = json_str_field(cfg, "api_version");
		s->api_version = strdup(av ? av : "7.4");
		if (!s->scope || !s->api_version)
			e = P11K_ERR_NOMEM;
		for (const char *p = s->api_version; e == P11K_OK && *p; p++)
			if (!isalnum((unsigned char)*p) && *p != '.' && *p != '-') {
				snprintf(why, wl, "api_version is malformed");
				e = P11K_ERR_ACCESS_DENIED;
			}
	}
	json_t *keys = json_object_get(cfg, "keys");
	const char *seal = json_str_field(cfg, "seal_with");
	if (!seal && json_array_size(keys))
		seal = json_str_field(json_array_get(keys, 0), "id");
	if (e == P11K_OK && !seal) {
		snprintf(why, wl, "name the Key Vault key that seals the token: \"seal_with\" or "
				  "a first entry in \"keys\" (NAME or NAME/VERSION)");
		e = P11K_ERR_KEY_NOT_FOUND;
	}
	char n1[128], v1[128];
	if (e == P11K_OK && !az_parse_key_id(seal, n1, sizeof(n1), v1, sizeof(v1))) {
		snprintf(why, wl, "key '%.100s' is not NAME or NAME/VERSION", seal);
		e = P11K_ERR_KEY_NOT_FOUND;
	}
	if (e == P11K_OK && !(s->default_key = strdup(seal)))
		e = P11K_ERR_NOMEM;
	if (e == P11K_OK) {
		const char *ca = json_str_field(cfg, "ca_file");
		http_options vo = {.ca_file = ca};
		/* Managed identity endpoints speak plain http: IMDS at the
		 * link-local address, App Service on loopback. No bearer token
		 * is ever sent on this client. */
		http_options io = {.ca_file = ca, .allow_plain_metadata = true,
				   .allow_plain_loopback = true};
		s->http = http_client_new(&vo);
		s->loginhttp = http_client_new(&vo);
		s->idhttp = http_client_new(&io);
		if (!s->http || !s->idhttp || !s->loginhttp)
			e = P11K_ERR_NOMEM;
	}
	if (e == P11K_OK) {
		json_t *mi = json_object_get(cfg, "managed_identity");
		entra_options eo = {
			.tenant_id = json_str_field(cfg, "tenant_id"),
			.client_id = json_str_field(cfg, "client_id"),
			.client_secret_file = json_str_field(cfg, "client_secret_file"),
			.client_certificate_file = json_str_field(cfg, "client_certificate_file"),
			.federated_token_file = json_str_field(cfg, "federated_token_file"),
			.authority_host = json_str_field(cfg, "authority_host"),
			.managed_identity = json_is_boolean(mi) ? json_is_true(mi) : -1,
			.login_http = s->loginhttp,
			.identity_http = s->idhttp,
		};
		if (!(s->cred = entra_new(&eo, why, wl)))
			e = P11K_ERR_ACCESS_DENIED;
	}
	if (e != P11K_OK) {
		az_destroy(s);
		return e;
	}
	log_debug(COMP, "vault %s (%s), credential %s", s->vault_url, hsm ? "hsm" : "vault",
		  entra_source_name(s->cred));
	*state = s;
	return P11K_OK;
}

/* provider_ops.test_set_transport: all three of its clients. */
static void az_test_set_transport(void *state, http_transport_fn fn, void *arg,
				  http_sleep_fn sleep_fn)
{
	az_state *s = state;
	http_client *cs[] = {s->http, s->idhttp, s->loginhttp};
	for (size_t i = 0; i < ARRAY_SIZE(cs); i++) {
		http_client_set_transport(cs[i], fn, arg);
		http_client_set_sleep(cs[i], sleep_fn, NULL);
	}
}

static const char *az_default_seal_key(void *state)
{
	return ((az_state *)state)->default_key;
}

const provider_ops azure_provider_ops = {
	.type = "azure",
	.fields = azure_fields,
	.create = az_create,
	.destroy = az_destroy,
	.default_seal_key = az_default_seal_key,
	.describe = az_describe,
	.encrypt = az_encrypt,
	.decrypt = az_decrypt,
	.max_blob_len = az_max_blob_len,
	.remote_crypt = az_remote_crypt,
	.public_key = az_public_key,
	.sign = az_sign,
	.test_set_transport = az_test_set_transport,
};

