/* SPDX-License-Identifier: Apache-2.0 */
/*
 * module/config.c: a valid configuration and each way one is refused.
 * Every refusal must be CKR_FUNCTION_FAILED and log one line naming the
 * file, the line and the field (CONFIGURATION.md); the log goes to a
 * scratch file that each test reads back.
 */
#include <fcntl.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>

#include "slots/config.h"
#include "common/log.h"

#define CFG_PATH "/etc/p11kms/test.json"

static char logpath[256];
static char tmpdir[] = "/tmp/p11kms-test-config-XXXXXX";

static int group_setup(void **state)
{
	if (!mkdtemp(tmpdir))
		return -1;
	snprintf(logpath, sizeof(logpath), "%s/log", tmpdir);
	return log_configure(LOG_INFO, logpath) ? 0 : -1;
}

static int group_teardown(void **state)
{
	log_reset();
	unlink(logpath);
	rmdir(tmpdir);
	return 0;
}

/* The log written since the last call (NUL-terminated, static). */
static const char *new_log(void)
{
	static char buf[8192];
	static off_t seen;
	int fd = open(logpath, O_RDONLY);
	assert_true(fd >= 0);
	ssize_t n = pread(fd, buf, sizeof(buf) - 1, seen);
	close(fd);
	assert_true(n >= 0);
	buf[n] = 0;
	seen += n;
	return buf;
}

/* Parse text expecting failure; the log must hold want. */
static void refused(const char *text, const char *want)
{
	config_t *cfg = (config_t *)0x1;
	(void)new_log();
	CK_RV rv = config_parse(text, strlen(text), CFG_PATH, &cfg);
	const char *log = new_log();
	assert_int_equal(rv, CKR_FUNCTION_FAILED);
	assert_null(cfg);
	if (!strstr(log, want))
		fail_msg("expected in the log: \"%s\"\ngot: \"%s\"", want, log);
	/* One line, at error level, from the config component. */
	assert_non_null(strstr(log, " error config: "));
	assert_ptr_equal(strchr(log, '\n'), log + strlen(log) - 1);
}

static void test_valid_minimal(void **state)
{
	static const char text[] =
		"{ \"providers\": [ { \"name\": \"dev\", \"type\": \"local\",\n"
		"  \"key_file\": \"/var/lib/p11kms/dev.key\",\n"
		"  \"store\": \"/var/lib/p11kms/dev.db\" } ] }\n";
	config_t *cfg = NULL;
	assert_int_equal(config_parse(text, strlen(text), CFG_PATH, &cfg), CKR_OK);
	assert_non_null(cfg);
	assert_string_equal(cfg->path, CFG_PATH);
	assert_int_equal(cfg->log_level, -1);
	assert_null(cfg->log_dest);
	assert_int_equal(cfg->nproviders, 1);
	provider_cfg *p = &cfg->providers[0];
	assert_string_equal(p->name, "dev");
	assert_string_equal(p->store, "/var/lib/p11kms/dev.db");
	/* No seal_with: one seal, the provider's own default key. */
	assert_int_equal(p->nseals, 1);
	assert_int_equal(p->seals[0].provider, 0);
	assert_null(p->seals[0].key_id);
	assert_int_equal(p->seal_policy, SEAL_ANY);
	assert_non_null(p->ops);
	assert_string_equal(p->ops->type, "local");
	assert_non_null(p->obj);
	assert_int_equal(p->login, LOGIN_REQUIRED);
	/* Documented defaults. */
	assert_int_equal(p->revalidate_seconds, 900);
	assert_int_equal(p->offline_grace_seconds, 3600);
	assert_int_equal(p->rotation_age_days, 90);
	assert_int_equal(p->max_sessions, 4096);
	/* The slot id is FNV-1a of the name, in 31 bits: stable. */
	uint32_t h = 2166136261u;
	for (const char *c = "dev"; *c; c++)
		h = (h ^ (unsigned char)*c) * 16777619u;
	assert_int_equal(p->slot_id, h & 0x7fffffffu);
	config_free(cfg);
	assert_string_equal(new_log(), "");
}

static void test_valid_full(void **state)
{
	static const char text[] =
		"{\n"
		"  \"log\": { \"level\": \"debug\", \"destination\": \"/var/log/p.log\" },\n"
		"  \"providers\": [\n"
		"    { \"name\": \"dev\", \"type\": \"local\", \"key_file\": \"/k1\",\n"
		"      \"store\": \"/s1\", \"login\": \"optional\", \"slot_id\": 7,\n"
		"      \"seal_with\": \"/k1\", \"revalidate_seconds\": 60,\n"
		"      \"offline_grace_seconds\": 0, \"rotation_age_days\": 30,\n"
		"      \"max_sessions\": 16 },\n"
		"    { \"name\": \"two\", \"type\": \"local\", \"key_file\": \"/k2\",\n"
		"      \"store\": \"/s2\" }\n"
		"  ]\n"
		"}\n";
	config_t *cfg = NULL;
	assert_int_equal(config_parse(text, strlen(text), CFG_PATH, &cfg), CKR_OK);
	assert_int_equal(cfg->log_level, LOG_DEBUG);
	assert_string_equal(cfg->log_dest, "/var/log/p.log");
	assert_int_equal(cfg->nproviders, 2);
	provider_cfg *p = &cfg->providers[0];
	assert_int_equal(p->login, LOGIN_OPTIONAL);
	assert_int_equal(p->slot_id, 7);
	assert_int_equal(p->nseals, 1);
	assert_string_equal(p->seals[0].key_id, "/k1");
	assert_int_equal(p->revalidate_seconds, 60);
	assert_int_equal(p->offline_grace_seconds, 0);
	assert_int_equal(p->rotation_age_days, 30);
	assert_int_equal(p->max_sessions, 16);
	assert_string_equal(cfg->providers[1].name, "two");
	assert_true(cfg->providers[1].slot_id != 7);
	config_free(cfg);

	static const char none[] = "{\"providers\": [],"
				   " \"log\": {\"destination\": \"syslog\"}}";
	assert_int_equal(config_parse(none, strlen(none), CFG_PATH, &cfg), CKR_OK);
	assert_int_equal(cfg->nproviders, 0);
	assert_string_equal(cfg->log_dest, "syslog");
	config_free(cfg);
	config_free(NULL);
}

/* seal_with: a list of keys of this or other providers; "NAME:" is a
 * provider's prefix only when NAME is configured (ARNs have colons). */
static void test_seal_with_list(void **state)
{
	(void)state;
	static const char text[] =
		"{ \"providers\": [\n"
		"  { \"name\": \"a\", \"type\": \"local\", \"key_file\": \"/k1\",\n"
		"    \"store\": \"/s1\", \"seal_policy\": \"all\",\n"
		"    \"seal_with\": [\"arn:aws:kms:eu-west-1:1:key/x\", \"b:\", \"b:kb\"] },\n"
		"  { \"name\": \"b\", \"type\": \"local\", \"key_file\": \"/k2\",\n"
		"    \"store\": \"/s2\", \"seal_with\": [\"a:ka\"] } ] }\n";
	config_t *cfg = NULL;
	assert_int_equal(config_parse(text, strlen(text), CFG_PATH, &cfg), CKR_OK);
	provider_cfg *a = &cfg->providers[0], *b = &cfg->providers[1];
	assert_int_equal(a->seal_policy, SEAL_ALL);
	assert_int_equal(a->nseals, 3);
	assert_int_equal(a->seals[0].provider, 0);
	assert_string_equal(a->seals[0].key_id, "arn:aws:kms:eu-west-1:1:key/x");
	assert_int_equal(a->seals[1].provider, 1);
	assert_null(a->seals[1].key_id);
	assert_int_equal(a->seals[2].provider, 1);
	assert_string_equal(a->seals[2].key_id, "kb");
	assert_int_equal(b->seal_policy, SEAL_ANY);
	assert_int_equal(b->nseals, 1);
	assert_int_equal(b->seals[0].provider, 0);
	assert_string_equal(b->seals[0].key_id, "ka");
	/* The provider sees its own first key only. */
	assert_string_equal(json_string_value(json_object_get(a->obj, "seal_with")),
			    "arn:aws:kms:eu-west-1:1:key/x");
	assert_null(json_object_get(b->obj, "seal_with"));
	config_free(cfg);

	refused("{ \"providers\": [ { \"name\": \"a\", \"type\": \"local\", "
		"\"key_file\": \"/k\", \"store\": \"/s\", \"seal_with\": [] } ] }",
		"providers[0].seal_with: must be a key reference or an array of 1 to 8");
	refused("{ \"providers\": [ { \"name\": \"a\", \"type\": \"local\", "
		"\"key_file\": \"/k\", \"store\": \"/s\", \"seal_with\": [\"x\", 3] } ] }",
		"providers[0].seal_with[1]: must be a non-empty string");
	refused("{ \"providers\": [ { \"name\": \"a\", \"type\": \"local\", "
		"\"key_file\": \"/k\", \"store\": \"/s\", \"seal_with\": [\"x\", \"a:x\"] } ] }",
		"providers[0].seal_with[1]: the same key is listed twice");
	refused("{ \"providers\": [ { \"name\": \"a\", \"type\": \"local\", "
		"\"key_file\": \"/k\", \"store\": \"/s\", \"keys\": [{\"id\": \"k1\"}, "
		"{\"id\": \"k2\"}, {\"id\": \"k1\", \"label\": \"again\"}] } ] }",
		"providers[0].keys[2].id: key \"k1\" is listed twice (also keys[0])");
	refused("{ \"providers\": [ { \"name\": \"a\", \"type\": \"local\", "
		"\"key_file\": \"/k\", \"store\": \"/s\", \"seal_policy\": \"some\" } ] }",
		"providers[0].seal_policy: \"some\" is not one of the allowed values");
}

static void test_unknown_field_top(void **state)
{
	refused("{\n  \"providers\": [],\n  \"colour\": \"blue\"\n}\n",
		CFG_PATH ":3: colour: unknown field");
}

static void test_unknown_field_log(void **state)
{
	refused("{\n  \"log\": {\n    \"level\": \"info\",\n    \"colour\": 1\n"
		"  },\n  \"providers\": []\n}\n",
		CFG_PATH ":4: log.colour: unknown field");
}

static void test_unknown_field_provider(void **state)
{
	refused("{ \"providers\": [\n"
		"  { \"name\": \"a\", \"type\": \"local\", \"key_file\": \"/k\",\n"
		"    \"store\": \"/s\" },\n"
		"  { \"name\": \"b\", \"type\": \"local\", \"key_file\": \"/k\",\n"
		"    \"store\": \"/s2\",\n"
		"    \"region\": \"eu\" } ] }\n",
		CFG_PATH ":6: providers[1].region: unknown field");
}

static void test_wrong_type(void **state)
{
	refused("{ \"providers\": [\n"
		"  { \"name\": \"a\", \"type\": \"local\", \"key_file\": \"/k\",\n"
		"    \"store\": \"/s\",\n"
		"    \"slot_id\": \"7\" } ] }\n",
		CFG_PATH ":4: providers[0].slot_id: must be a non-negative integer");
	refused("{ \"providers\": [\n"
		"  { \"name\": \"a\", \"type\": \"local\",\n"
		"    \"key_file\": true, \"store\": \"/s\" } ] }\n",
		CFG_PATH ":3: providers[0].key_file: must be a string");
	refused("{\n  \"log\": {\"level\": 3},\n  \"providers\": []\n}\n",
		CFG_PATH ":2: log.level: must be a string");
	refused("{\n  \"log\": [],\n  \"providers\": []\n}\n",
		CFG_PATH ":2: log: must be an object");
	refused("{\n  \"providers\":\n    {}\n}\n",
		CFG_PATH ":3: providers: must be an array of provider objects");
	refused("{\n  \"providers\": [\n    \"dev\"\n  ]\n}\n",
		CFG_PATH ":3: providers[0]: must be an object");
	refused("[1, 2]", CFG_PATH ":1: (top level): the configuration must be a "
			  "JSON object");
	/* Values out of their documented range. */
	refused("{ \"providers\": [\n"
		"  { \"name\": \"a\", \"type\": \"local\", \"key_file\": \"/k\",\n"
		"    \"store\": \"/s\", \"revalidate_seconds\": 0 } ] }\n",
		CFG_PATH ":3: providers[0].revalidate_seconds: 0 is out of range");
	refused("{ \"providers\": [\n"
		"  { \"name\": \"a\", \"type\": \"local\", \"key_file\": \"/k\",\n"
		"    \"store\": \"/s\", \"slot_id\": -1 } ] }\n",
		CFG_PATH ":3: providers[0].slot_id: -1 is out of range");
	refused("{ \"providers\": [\n"
		"  { \"name\": \"a\", \"type\": \"local\", \"key_file\": \"/k\",\n"
		"    \"store\": \"/s\",\n    \"login\": \"sometimes\" } ] }\n",
		CFG_PATH ":4: providers[0].login: \"sometimes\" is not one of the "
			 "allowed values");
	refused("{ \"providers\": [\n"
		"  { \"name\": \"\", \"type\": \"local\", \"key_file\": \"/k\",\n"
		"    \"store\": \"/s\" } ] }\n",
		CFG_PATH ":2: providers[0].name: must be a non-empty string");
	refused("{\n  \"log\": {\"level\": \"loud\"},\n  \"providers\": []\n}\n",
		CFG_PATH ":2: log.level: \"loud\" is not one of the allowed values");
}

/* KMS key entries: a type, and a size for AES keys only (docs/REMOTE.md). */
static void test_key_types(void **state)
{
	static const char text[] =
		"{ \"providers\": [\n"
		"  { \"name\": \"a\", \"type\": \"local\", \"key_file\": \"/k\",\n"
		"    \"store\": \"/s\", \"keys\": [\n"
		"      {\"id\": \"e\"},\n"
		"      {\"id\": \"a\", \"type\": \"aes\", \"bits\": 128},\n"
		"      {\"id\": \"d\", \"type\": \"aes\", \"usage\": \"data\"},\n"
		"      {\"id\": \"r\", \"label\": \"kek\", \"type\": \"rsa\", \"usage\": \"wrap\"} ] } ] }\n";
	config_t *cfg = NULL;
	assert_int_equal(config_parse(text, strlen(text), CFG_PATH, &cfg), CKR_OK);
	provider_cfg *p = &cfg->providers[0];
	assert_int_equal(p->nkeys, 4);
	assert_int_equal(p->keys[0].type, KMS_KEY_ENVELOPE);
	assert_string_equal(p->keys[0].label, "e");
	assert_int_equal(p->keys[1].type, KMS_KEY_AES);
	assert_int_equal(p->keys[1].bits, 128);
	assert_int_equal(p->keys[2].bits, 256);
	assert_int_equal(p->keys[3].type, KMS_KEY_RSA);
	assert_string_equal(p->keys[3].label, "kek");
	/* One role per typed key: "wrap" unless it says "data". */
	assert_int_equal(p->keys[1].usage, KMS_USAGE_WRAP);
	assert_int_equal(p->keys[2].usage, KMS_USAGE_DATA);
	assert_int_equal(p->keys[3].usage, KMS_USAGE_WRAP);
	assert_true(p->keys[3].usage_given);
	assert_false(p->keys[1].usage_given);
	config_free(cfg);
	/* An EC key signs; an RSA key without a usage leaves it to the KMS. */
	static const char sign[] =
		"{ \"providers\": [\n"
		"  { \"name\": \"a\", \"type\": \"local\", \"key_file\": \"/k\",\n"
		"    \"store\": \"/s\", \"keys\": [\n"
		"      {\"id\": \"e\", \"type\": \"ec\"},\n"
		"      {\"id\": \"r\", \"type\": \"rsa\"},\n"
		"      {\"id\": \"s\", \"type\": \"rsa\", \"usage\": \"sign\"} ] } ] }\n";
	assert_int_equal(config_parse(sign, strlen(sign), CFG_PATH, &cfg), CKR_OK);
	p = &cfg->providers[0];
	assert_int_equal(p->keys[0].type, KMS_KEY_EC);
	assert_int_equal(p->keys[0].usage, KMS_USAGE_SIGN);
	assert_true(p->keys[0].usage_given);
	assert_false(p->keys[1].usage_given);
	assert_int_equal(p->keys[2].usage, KMS_USAGE_SIGN);
	assert_true(p->keys[2].usage_given);
	config_free(cfg);
	refused("{ \"providers\": [\n"
		"  { \"name\": \"a\", \"type\": \"local\", \"key_file\": \"/k\",\n"
		"    \"store\": \"/s\", \"keys\": [\n"
		"      {\"id\": \"a\", \"type\": \"aes\",\n"
		"       \"usage\": \"both\"} ] } ] }\n",
		CFG_PATH ":5: providers[0].keys[0].usage: \"both\" is not one of the allowed values");
	refused("{ \"providers\": [\n"
		"  { \"name\": \"a\", \"type\": \"local\", \"key_file\": \"/k\",\n"
		"    \"store\": \"/s\", \"keys\": [\n"
		"      {\"id\": \"a\",\n"
		"       \"usage\": \"data\"} ] } ] }\n",
		CFG_PATH ":5: providers[0].keys[0].usage: only keys of \"type\": \"aes\", \"rsa\" or "
			 "\"ec\" take a usage");
	refused("{ \"providers\": [\n"
		"  { \"name\": \"a\", \"type\": \"local\", \"key_file\": \"/k\",\n"
		"    \"store\": \"/s\", \"keys\": [\n"
		"      {\"id\": \"a\", \"type\": \"dsa\"} ] } ] }\n",
		CFG_PATH ":4: providers[0].keys[0].type: \"dsa\" is not one of the allowed values");
	refused("{ \"providers\": [\n"
		"  { \"name\": \"a\", \"type\": \"local\", \"key_file\": \"/k\",\n"
		"    \"store\": \"/s\", \"keys\": [\n"
		"      {\"id\": \"a\", \"type\": \"aes\",\n"
		"       \"usage\": \"sign\"} ] } ] }\n",
		CFG_PATH ":5: providers[0].keys[0].usage: an AES key does not sign");
	refused("{ \"providers\": [\n"
		"  { \"name\": \"a\", \"type\": \"local\", \"key_file\": \"/k\",\n"
		"    \"store\": \"/s\", \"keys\": [\n"
		"      {\"id\": \"a\", \"type\": \"ec\",\n"
		"       \"usage\": \"wrap\"} ] } ] }\n",
		CFG_PATH ":5: providers[0].keys[0].usage: an EC key only signs");
	refused("{ \"providers\": [\n"
		"  { \"name\": \"a\", \"type\": \"local\", \"key_file\": \"/k\",\n"
		"    \"store\": \"/s\", \"keys\": [\n"
		"      {\"id\": \"a\", \"type\": \"aes\",\n"
		"       \"certificate\": \"/c.pem\"} ] } ] }\n",
		CFG_PATH ":5: providers[0].keys[0].certificate: only keys of \"type\": \"rsa\" or "
			 "\"ec\" have a certificate");
	refused("{ \"providers\": [\n"
		"  { \"name\": \"a\", \"type\": \"local\", \"key_file\": \"/k\",\n"
		"    \"store\": \"/s\", \"keys\": [\n"
		"      {\"id\": \"a\", \"type\": \"ec\",\n"
		"       \"certificate\": \"c.pem\"} ] } ] }\n",
		CFG_PATH ":5: providers[0].keys[0].certificate: must be an absolute path");
	refused("{ \"providers\": [\n"
		"  { \"name\": \"a\", \"type\": \"local\", \"key_file\": \"/k\",\n"
		"    \"store\": \"/s\", \"keys\": [\n"
		"      {\"id\": \"a\", \"type\": \"ec\",\n"
		"       \"certificate\": \"/nonexistent/c.pem\"} ] } ] }\n",
		CFG_PATH ":5: providers[0].keys[0].certificate: /nonexistent/c.pem: No such file");
	refused("{ \"providers\": [\n"
		"  { \"name\": \"a\", \"type\": \"local\", \"key_file\": \"/k\",\n"
		"    \"store\": \"/s\", \"keys\": [\n"
		"      {\"id\": \"a\", \"type\": \"aes\",\n"
		"       \"bits\": 512} ] } ] }\n",
		CFG_PATH ":5: providers[0].keys[0].bits: 512 is not an AES key size");
	refused("{ \"providers\": [\n"
		"  { \"name\": \"a\", \"type\": \"local\", \"key_file\": \"/k\",\n"
		"    \"store\": \"/s\", \"keys\": [\n"
		"      {\"id\": \"a\", \"type\": \"rsa\",\n"
		"       \"bits\": 2048} ] } ] }\n",
		CFG_PATH ":5: providers[0].keys[0].bits: only keys of \"type\": \"aes\" take a size");
}

static void test_missing_required(void **state)
{
	refused("{\n  \"log\": {}\n}\n",
		CFG_PATH ":1: (top level): missing required field \"providers\"");
	refused("{ \"providers\": [\n"
		"  { \"name\": \"a\", \"type\": \"local\",\n"
		"    \"key_file\": \"/k\" } ] }\n",
		CFG_PATH ":2: providers[0]: missing required field \"store\"");
	refused("{ \"providers\": [\n"
		"  { \"name\": \"a\", \"type\": \"local\",\n"
		"    \"store\": \"/s\" } ] }\n",
		CFG_PATH ":2: providers[0]: missing required field \"key_file\"");
	refused("{ \"providers\": [\n  {\n    \"name\": \"a\", \"store\": \"/s\" } ] }\n",
		CFG_PATH ":2: providers[0]: missing required field \"type\"");
}

static void test_unknown_provider_type(void **state)
{
	refused("{ \"providers\": [\n"
		"  { \"name\": \"a\",\n    \"type\": \"aws-kmz\",\n"
		"    \"store\": \"/s\" } ] }\n",
		CFG_PATH ":3: providers[0].type: unknown provider type \"aws-kmz\" "
			 "(known: local");
}

static void test_duplicate_providers(void **state)
{
	refused("{ \"providers\": [\n"
		"  { \"name\": \"a\", \"type\": \"local\", \"key_file\": \"/k\",\n"
		"    \"store\": \"/s1\" },\n"
		"  { \"type\": \"local\", \"key_file\": \"/k\",\n"
		"    \"name\": \"a\", \"store\": \"/s2\" } ] }\n",
		CFG_PATH ":5: providers[1].name: provider name \"a\" used twice");
	refused("{ \"providers\": [\n"
		"  { \"name\": \"a\", \"type\": \"local\", \"key_file\": \"/k\",\n"
		"    \"store\": \"/s\", \"slot_id\": 3 },\n"
		"  { \"name\": \"b\", \"type\": \"local\", \"key_file\": \"/k\",\n"
		"    \"store\": \"/s2\", \"slot_id\": 3 } ] }\n",
		CFG_PATH ":4: providers[1].name: slot id 3 of \"b\" collides with \"a\"");
	refused("{ \"providers\": [\n"
		"  { \"name\": \"a\", \"type\": \"local\", \"key_file\": \"/k\",\n"
		"    \"store\": \"/s\" },\n"
		"  { \"name\": \"b\", \"type\": \"local\", \"key_file\": \"/k\",\n"
		"    \"store\": \"/s\" } ] }\n",
		CFG_PATH ":5: providers[1].store: store /s used by two providers");
}

static void test_bad_log_destination(void **state)
{
	refused("{\n  \"log\": {\n    \"destination\": \"p11kms.log\"\n  },\n"
		"  \"providers\": []\n}\n",
		CFG_PATH ":3: log.destination: must be \"stderr\", \"syslog\" or an "
			 "absolute path");
}

static void test_json_syntax_error(void **state)
{
	/* No field can be named: file, line and column instead. */
	refused("{\n  \"providers\": [\n    { \"name\": \"a\",, }\n  ]\n}\n",
		CFG_PATH ":3: column ");
	refused("{ \"providers\": [] }\n{}\n", CFG_PATH ":2: column ");
	/* JSON_REJECT_DUPLICATES: a repeated key is an error, not last-wins. */
	refused("{\n  \"providers\": [],\n  \"providers\": []\n}\n", CFG_PATH ":3: ");
	refused("", CFG_PATH ":");
}

static void test_load_from_file(void **state)
{
	char path[300], reserved[340];
	static const char text[] = "{ \"providers\": [] }";
	snprintf(path, sizeof(path), "%s/p11kms.json", tmpdir);
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	assert_true(fd >= 0);
	assert_int_equal(write(fd, text, strlen(text)), (ssize_t)strlen(text));
	close(fd);
	config_t *cfg = NULL;
	snprintf(reserved, sizeof(reserved), "x=1; config=%s other", path);
	assert_int_equal(config_load(reserved, &cfg), CKR_OK);
	assert_string_equal(cfg->path, path);
	config_free(cfg);
	unlink(path);
	(void)new_log();
	assert_int_equal(config_load(reserved, &cfg), CKR_FUNCTION_FAILED);
	assert_non_null(strstr(new_log(), "cannot open"));
	/* A folder is not a configuration. */
	snprintf(reserved, sizeof(reserved), "config=%s", tmpdir);
	assert_int_equal(config_load(reserved, &cfg), CKR_FUNCTION_FAILED);
	assert_non_null(strstr(new_log(), "not a regular file"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_valid_minimal),
		cmocka_unit_test(test_valid_full),
		cmocka_unit_test(test_seal_with_list),
		cmocka_unit_test(test_unknown_field_top),
		cmocka_unit_test(test_unknown_field_log),
		cmocka_unit_test(test_unknown_field_provider),
		cmocka_unit_test(test_wrong_type),
		cmocka_unit_test(test_missing_required),
		cmocka_unit_test(test_key_types),
		cmocka_unit_test(test_unknown_provider_type),
		cmocka_unit_test(test_duplicate_providers),
		cmocka_unit_test(test_bad_log_destination),
		cmocka_unit_test(test_json_syntax_error),
		cmocka_unit_test(test_load_from_file),
	};
	return cmocka_run_group_tests(tests, group_setup, group_teardown);
}
