/* SPDX-License-Identifier: Apache-2.0 */
/*
 * p11kms: the command-line tool.
 *   p11kms create-key-file PATH   make a local provider key file (a random
 *                                 key and its creation time, mode 0600,
 *                                 never overwrites)
 *   p11kms status [--config PATH] slots, tokens, seals and their key versions
 *   p11kms version
 *   p11kms help [COMMAND], p11kms --help, p11kms COMMAND --help
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>

#include "slots/config.h"
#include "common/crypto.h"
#include "common/log.h"
#include "module/module.h"
#include "providers/local/local.h"
#include "slots/seal.h"
#include "slots/store.h"

/* Each command's synopsis and what it does: `p11kms help`, `p11kms
 * --help` and `p11kms CMD --help` print them to stdout and exit 0; a
 * usage error prints the synopses to stderr and exits 2 (p11kms(1)). */
static const struct command_help {
	const char *name, *synopsis, *text;
} commands[] = {
	{"create-key-file", "p11kms create-key-file PATH",
	 "Write a new key file of a local provider to PATH, mode 0600: a random\n"
	 "256-bit key and the time it was made (the key's age, for the rotation\n"
	 "warning). Prints the key's version (its fingerprint). An existing file\n"
	 "is never overwritten. Back the file up: without it the tokens it seals\n"
	 "cannot be opened.\n"
	 "To rotate a local key: create a new file, make it the provider's\n"
	 "\"key_file\" and list the old one in \"previous_key_files\": the\n"
	 "key_file seals, every listed file unseals. Keep the old file listed\n"
	 "until no seal names its version (p11kms status), and keep a backup of\n"
	 "it for old backups of the store.\n"},
	{"status", "p11kms status [--config PATH]",
	 "Show the configuration in use, each slot with its provider and login\n"
	 "mode, its store, whether its token is initialized, the number of\n"
	 "objects, and its seals: the seal policy, each KMS seal's provider, key\n"
	 "id, the key version that made it and its age, and the PIN roles. It\n"
	 "reads the stores only. --config PATH reads that file; otherwise\n"
	 "$P11KMS_CONFIG, else /etc/p11kms/p11kms.json.\n"},
	{"version", "p11kms version", "Print the version.\n"},
	{"help", "p11kms help [COMMAND]", "Print this help, or one command's.\n"},
};

static void synopses(FILE *f)
{
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
		fprintf(f, "%s %s\n", i ? "      " : "usage:", commands[i].synopsis);
}

static int usage(void)
{
	synopses(stderr);
	fprintf(stderr, "(p11kms help, or man p11kms, says more)\n");
	return 2;
}

static bool is_help(const char *a)
{
	return strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0 || strcmp(a, "help") == 0;
}

/* name NULL: every command. */
static int help(const char *name)
{
	if (!name) {
		printf("p11kms: the command-line tool of the p11kms PKCS#11 module\n\n");
		synopses(stdout);
		printf("\n");
		for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
			printf("%s\n%s\n", commands[i].synopsis, commands[i].text);
		printf("Exit status: 0 success, 1 failure, 2 usage error. See p11kms(1).\n");
		return 0;
	}
	for (size_t i = 0; i < ARRAY_SIZE(commands); i++)
		if (strcmp(commands[i].name, name) == 0) {
			printf("usage: %s\n\n%s", commands[i].synopsis, commands[i].text);
			return 0;
		}
	fprintf(stderr, "p11kms: no command \"%s\"\n", name);
	return usage();
}

static int create_key_file(const char *path)
{
	char why[400] = "", fp[LOCAL_FP_HEX_LEN + 1] = "";
	if (!crypto_init()) {
		fprintf(stderr, "p11kms: cannot set up OpenSSL\n");
		return 1;
	}
	if (local_key_file_create(path, clock_now_s(), fp, why, sizeof(why)) != P11K_OK) {
		fprintf(stderr, "p11kms: %s\n", why);
		return 1;
	}
	printf("created %s (key version %s, mode 0600): back it up; without it the "
	       "tokens it seals cannot be opened\n",
	       path, fp);
	return 0;
}

/* A seal row's time and age: "2026-12-04T10:00:00Z (3 days ago)". */
static void when_made(uint64_t created, char *out, size_t n)
{
	char when[32] = "?";
	time_t t = (time_t)created;
	struct tm tm;
	if (gmtime_r(&t, &tm))
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
	uint64_t now = clock_now_s();
	snprintf(out, n, "%s (%llu days ago)", when,
		 (unsigned long long)(now > created ? (now - created) / 86400 : 0));
}

/* Seal format 2 (slots/seal.h): the policy, each "kms" row (the KMS key
 * version that sealed KS) and which PIN roles wrap X. */
static void print_seals(store_t *st)
{
	seal_rec *s = NULL;
	size_t n = 0;
	uint8_t *v = NULL;
	size_t len = 0;
	bool found = false;
	if (store_meta_get(st, "seal_policy", &v, &len, &found) == P11K_OK)
		printf("    seal policy: %.*s\n", found ? (int)len : 3,
		       found ? (const char *)v : "any");
	free(v);
	if (store_seals_load(st, &s, &n) != P11K_OK)
		return;
	char pins[64] = "";
	for (size_t i = 0; i < n; i++) {
		char when[64];
		when_made(s[i].created, when, sizeof(when));
		if (strcmp(s[i].role, ROLE_KMS) == 0)
			printf("    kms seal: provider \"%s\" key %s version %s, made %s\n",
			       s[i].provider, s[i].key_id, s[i].key_version, when);
		else if (strncmp(s[i].role, "pin-", 4) == 0 &&
			 strlen(pins) + strlen(s[i].role) < sizeof(pins) - 4)
			snprintf(pins + strlen(pins), sizeof(pins) - strlen(pins), "%s%s",
				 pins[0] ? ", " : "", s[i].role + 4);
		else
			printf("    seal: role %s (not known to this version)\n", s[i].role);
	}
	if (pins[0])
		printf("    pin seals: %s\n", pins);
	seal_recs_free(s, n);
}

static int status(const char *cfgpath)
{
	config_t *cfg;
	char init[4200];
	snprintf(init, sizeof(init), "config=%s", cfgpath ? cfgpath : "");
	if (config_load(cfgpath ? init : NULL, &cfg) != CKR_OK)
		return 1;
	printf("configuration: %s\n", cfg->path);
	for (size_t i = 0; i < cfg->nproviders; i++) {
		provider_cfg *p = &cfg->providers[i];
		printf("slot %lu: provider \"%s\" (%s), login %s\n", (unsigned long)p->slot_id,
		       p->name, p->ops->type,
		       p->login == LOGIN_REQUIRED ? "required" : "optional");
		printf("    store: %s\n", p->store);
		store_t *st = NULL;
		if (!store_exists(p->store)) {
			printf("    token: not initialized (no store yet)\n");
			continue;
		}
		if (store_open(p->store, false, &st) != P11K_OK) {
			printf("    token: STORE UNUSABLE (see the log line above)\n");
			continue;
		}
		uint8_t *v = NULL;
		size_t len = 0;
		bool found = false;
		if (store_meta_get(st, "label", &v, &len, &found) == P11K_OK && found)
			printf("    token: label \"%.*s\"\n", (int)len, (const char *)v);
		else
			printf("    token: not initialized\n");
		free(v);
		uint64_t nobj = 0;
		if (store_obj_count(st, &nobj) == P11K_OK)
			printf("    objects: %llu\n", (unsigned long long)nobj);
		print_seals(st);
		store_close(st);
	}
	config_free(cfg);
	return 0;
}

int main(int argc, char **argv)
{
	log_apply_env();
	if (argc < 2)
		return usage();
	if (is_help(argv[1]))
		return argc == 2 ? help(NULL) : argc == 3 ? help(argv[2]) : usage();
	if (argc == 3 && (strcmp(argv[2], "--help") == 0 || strcmp(argv[2], "-h") == 0))
		return help(argv[1]);
	if (strcmp(argv[1], "create-key-file") == 0 && argc == 3)
		return create_key_file(argv[2]);
	if (strcmp(argv[1], "status") == 0) {
		const char *cfg = NULL;
		if (argc == 4 && strcmp(argv[2], "--config") == 0)
			cfg = argv[3];
		else if (argc != 2)
			return usage();
		if (!crypto_init())
			return 1;
		return status(cfg);
	}
	if (strcmp(argv[1], "version") == 0) {
		printf("p11kms %d.%d\n", P11KMS_VERSION_MAJOR, P11KMS_VERSION_MINOR);
		return 0;
	}
	return usage();
}
