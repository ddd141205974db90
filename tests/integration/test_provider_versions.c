/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The cloud providers against the KMS emulator over real HTTPS, below the
 * PKCS #11 layer: describe names the version that encrypts now and when it
 * was made (AWS: the current key material and its ListKeyRotations date;
 * Azure: the current version's attributes.created; GCP: the primary
 * version's createTime), following a rotation and a back-dated version,
 * and encrypt records that same version. And a provider that cannot verify
 * the endpoint's certificate gets P11K_ERR_TLS after one handshake.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "common/crypto.h"
#include "common/log.h"
#include "common/secmem.h"
#include "emu.h"
#include "providers/provider.h"

#define emuctl(...) emu_ctl("emuctl.py", __VA_ARGS__)
#define DAYS_100 (100L * 86400)

static char dir[64];

static const char *ca(void)
{
	return json_string_value(json_object_get(emu_info, "ca_bundle"));
}

typedef struct prov {
	const provider_ops *ops;
	void *st;
} prov;

static prov make(const char *type, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static prov make(const char *type, const char *fmt, ...)
{
	char buf[2048], why[512] = "";
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	json_error_t je;
	json_t *cfg = json_loads(buf, 0, &je);
	if (!cfg)
		fail_msg("bad test JSON: %s", je.text);
	prov p = {provider_find(type), NULL};
	assert_non_null(p.ops);
	if (p.ops->create(cfg, "test.json", &p.st, why, sizeof(why)) != P11K_OK)
		fail_msg("create %s: %s", type, why);
	json_decref(cfg);
	return p;
}

static key_info describe(prov p, const char *key)
{
	key_info ki;
	provider_status st = {0};
	p11k_err e = p.ops->describe(p.st, key, &ki, &st);
	if (e != P11K_OK)
		fail_msg("describe %s: %s: %s", key, p11k_err_name(e), st.message);
	assert_int_equal(ki.state, KEY_STATE_ENABLED);
	return ki;
}

/* Encrypt under key; the version it records in kv; the blob in *blob. */
static void seal(prov p, const char *key, char kv[128], uint8_t **blob, size_t *bl)
{
	provider_status st = {0};
	static const uint8_t tk[32] = {1, 2, 3, 4};
	p11k_err e = p.ops->encrypt(p.st, key, tk, sizeof(tk), (const uint8_t *)"aad", 3, blob, bl,
				    kv, 128, &st);
	if (e != P11K_OK)
		fail_msg("encrypt %s: %s: %s", key, p11k_err_name(e), st.message);
}

static void unseal_ok(prov p, const char *key, const uint8_t *blob, size_t bl)
{
	provider_status st = {0};
	uint8_t *pt = NULL;
	size_t pl = 0;
	p11k_err e = p.ops->decrypt(p.st, key, blob, bl, (const uint8_t *)"aad", 3, &pt, &pl, &st);
	if (e != P11K_OK)
		fail_msg("decrypt %s: %s: %s", key, p11k_err_name(e), st.message);
	assert_int_equal(pl, 32);
	sec_free(pt);
}

/* t is within a minute (either way) of `ago` seconds before now. */
static void about(uint64_t t, long ago)
{
	long want = (long)time(NULL) - ago;
	if (labs((long)t - want) > 60)
		fail_msg("time %llu, want about %ld (%ld s ago)", (unsigned long long)t, want, ago);
}

/* The emulator's reply field for a key action. */
static void key_action(char *out, size_t n, const char *cloud, const char *action,
		       const char *key, const char *extra, const char *field)
{
	emu_ctl_line(out, n, "emuctl.py", "key %s %s '%s' '%s' %s", cloud, action, key,
		     extra, field);
}

/* The same story for every cloud: a new key's version and age; a rotation
 * whose new version is back-dated 100 days; encrypt records the version
 * describe names; old blobs still open. */
static void versions_story(prov p, const char *cloud, const char *key)
{
	key_info k1 = describe(p, key);
	assert_true(k1.primary_version[0]);
	about(k1.version_created_at, 0);
	char kv[128];
	uint8_t *b1 = NULL, *b2 = NULL;
	size_t l1 = 0, l2 = 0;
	seal(p, key, kv, &b1, &l1);
	assert_string_equal(kv, k1.primary_version);

	emuctl("key %s rotate '%s'", cloud, key);
	char extra[64];
	snprintf(extra, sizeof(extra), "{\"seconds\": %ld}", DAYS_100);
	emuctl("key %s backdate '%s' '%s'", cloud, key, extra);
	key_info k2 = describe(p, key);
	assert_string_not_equal(k2.primary_version, k1.primary_version);
	about(k2.version_created_at, DAYS_100);
	seal(p, key, kv, &b2, &l2);
	assert_string_equal(kv, k2.primary_version);
	unseal_ok(p, key, b1, l1);
	unseal_ok(p, key, b2, l2);
	free(b1);
	free(b2);
}

static void test_aws_versions(void **state)
{
	(void)state;
	char arn[256];
	key_action(arn, sizeof(arn), "aws", "create", "-", "{\"alias\": \"alias/versions\"}", "arn");
	prov p = make("aws",
		      "{\"region\": \"%s\", \"endpoint\": \"%s\", \"ca_file\": \"%s\", "
		      "\"seal_with\": \"alias/versions\"}",
		      emu_str("aws", "region"), emu_str("aws", "endpoint_url"), ca());
	/* The alias works as the key id; describe names the ARN. */
	key_info k = describe(p, "alias/versions");
	assert_string_equal(k.key_id, arn);
	assert_int_equal(strlen(k.primary_version), 64);
	emuctl("reset-counters");
	versions_story(p, "aws", arn);
	/* One ListKeyRotations per material: the first, the rotated one. */
	assert_int_equal(emu_ctl_long("emuctl.py", "count aws ListKeyRotations"), 1);
	describe(p, arn);
	assert_int_equal(emu_ctl_long("emuctl.py", "count aws ListKeyRotations"), 1);
	/* Each seal asked Decrypt which material made it. */
	assert_int_equal(emu_ctl_long("emuctl.py", "count aws Encrypt"), 2);
	assert_int_equal(emu_ctl_long("emuctl.py", "count aws Decrypt"), 4);
	p.ops->destroy(p.st);
}

static void test_gcp_versions(void **state)
{
	(void)state;
	char name[512];
	key_action(name, sizeof(name), "gcp", "create", "versions", "{}", "name");
	prov p = make("gcp",
		      "{\"endpoint\": \"%s\", \"ca_file\": \"%s\", \"credentials_file\": \"%s\", "
		      "\"seal_with\": \"%s\"}",
		      emu_str("gcp", "endpoint_url"), ca(), emu_str("gcp", "service_account_file"),
		      name);
	key_info k = describe(p, name);
	char want[600];
	snprintf(want, sizeof(want), "%s/cryptoKeyVersions/1", name);
	assert_string_equal(k.primary_version, want);
	versions_story(p, "gcp", name);
	p.ops->destroy(p.st);
}

static void azure_secret_file(char *path, size_t n)
{
	snprintf(path, n, "%s/client-secret", dir);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	fprintf(f, "%s\n", emu_str("azure", "client_secret"));
	fclose(f);
	assert_int_equal(chmod(path, 0600), 0);
}

static prov azure(const char *ca_field)
{
	char secret[128];
	azure_secret_file(secret, sizeof(secret));
	return make("azure",
		    "{\"vault_url\": \"%s\", %s \"tenant_id\": \"%s\", \"client_id\": \"%s\", "
		    "\"client_secret_file\": \"%s\", \"authority_host\": \"%s\", "
		    "\"seal_with\": \"versions\"}",
		    emu_str("azure", "vault_url"), ca_field, emu_str("azure", "tenant_id"),
		    emu_str("azure", "client_id"), secret, emu_str("azure", "authority_host"));
}

static void test_azure_versions(void **state)
{
	(void)state;
	char v1[128], ca_field[400];
	key_action(v1, sizeof(v1), "azure", "create", "versions",
		   "{\"vault\": \"vault\", \"kty\": \"RSA\"}", "version");
	snprintf(ca_field, sizeof(ca_field), "\"ca_file\": \"%s\",", ca());
	prov p = azure(ca_field);
	key_info k = describe(p, "versions");
	assert_string_equal(k.primary_version, v1);
	versions_story(p, "azure", "versions");
	p.ops->destroy(p.st);
}

/* No ca_file: the system store does not know the emulator's CA. One
 * handshake, no retry, P11K_ERR_TLS, whichever request comes first (the
 * KMS for AWS, the token endpoints for Azure and GCP). */
static void expect_tls(prov p, const char *key, const char *service)
{
	emuctl("reset-counters");
	key_info ki;
	provider_status st = {0};
	p11k_err e = p.ops->describe(p.st, key, &ki, &st);
	if (e != P11K_ERR_TLS)
		fail_msg("%s: describe gave %s (%s)", service, p11k_err_name(e), st.message);
	assert_int_equal(st.err, P11K_ERR_TLS);
	assert_int_equal(st.http_status, 0);
	assert_true(strlen(st.message) > 10);
	/* The emulator's side of the handshake ends in its own thread,
	 * maybe after the provider gave up: wait for the first. */
	long n = 0;
	for (int i = 0; i < 50 && (n = emu_ctl_long("emuctl.py", "count %s handshake", service)) < 1;
	     i++)
		usleep(100000);
	assert_int_equal(n, 1);
	p.ops->destroy(p.st);
}

static void test_tls_without_ca_file(void **state)
{
	(void)state;
	unsetenv("AWS_CA_BUNDLE");
	expect_tls(make("aws", "{\"region\": \"%s\", \"endpoint\": \"%s\", "
			       "\"seal_with\": \"alias/p11kms-test\"}",
			emu_str("aws", "region"), emu_str("aws", "endpoint_url")),
		   "alias/p11kms-test", "aws");
	expect_tls(make("gcp", "{\"endpoint\": \"%s\", \"credentials_file\": \"%s\", "
			       "\"seal_with\": \"%s\"}",
			emu_str("gcp", "endpoint_url"), emu_str("gcp", "service_account_file"),
			"projects/p/locations/global/keyRings/r/cryptoKeys/k"),
		   "projects/p/locations/global/keyRings/r/cryptoKeys/k", "gcp");
	expect_tls(azure(""), "p11kms-rsa", "azure-login");
}

static int group_setup(void **state)
{
	(void)state;
	if (!crypto_init())
		return -1;
	log_configure(LOG_WARN, "stderr");
	log_apply_env();
	snprintf(dir, sizeof(dir), "/tmp/p11kms-versions-XXXXXX");
	if (!mkdtemp(dir) || emu_start("versions") != 0)
		return -1;
	setenv("AWS_ACCESS_KEY_ID", emu_str("aws", "access_key_id"), 1);
	setenv("AWS_SECRET_ACCESS_KEY", emu_str("aws", "secret_access_key"), 1);
	unsetenv("AWS_SESSION_TOKEN");
	unsetenv("AWS_PROFILE");
	unsetenv("AWS_ENDPOINT_URL_KMS");
	unsetenv("AWS_ENDPOINT_URL");
	unsetenv("GOOGLE_APPLICATION_CREDENTIALS");
	for (const char *const *v = (const char *const[]){"AZURE_TENANT_ID", "AZURE_CLIENT_ID",
							    "AZURE_CLIENT_SECRET", "IDENTITY_ENDPOINT",
							    "IDENTITY_HEADER", NULL};
	     *v; v++)
		unsetenv(*v);
	setenv("HOME", dir, 1);
	return 0;
}

static int group_teardown(void **state)
{
	(void)state;
	char cmd[128];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
	int rc = system(cmd);
	return emu_stop() == 0 && rc == 0 ? 0 : -1;
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_aws_versions),
		cmocka_unit_test(test_gcp_versions),
		cmocka_unit_test(test_azure_versions),
		cmocka_unit_test(test_tls_without_ca_file),
	};
	return cmocka_run_group_tests_name("provider_versions", tests, group_setup,
					   group_teardown);
}
