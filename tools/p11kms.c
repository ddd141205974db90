/* SPDX-License-Identifier: Apache-2.0 */
/*
 * p11kms: the command-line tool.
 *   p11kms create-key-file PATH   make a local provider key file (32 random
 *                                 bytes, mode 0600, never overwrites)
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
#include <openssl/rand.h>

#include "slots/config.h"
#include "common/crypto.h"
#include "common/log.h"
#include "module/module.h"
#include "slots/store.h"
#include "tools/backup.h"

/* Each command's synopsis and what it does: `p11kms help`, `p11kms
 * --help` and `p11kms CMD --help` print them to stdout and exit 0; a
 * usage error prints the synopses to stderr and exits 2 (p11kms(1)). */
static const struct command_help {
	const char *name, *synopsis, *text;
} commands[] = {
	{"create-key-file", "p11kms create-key-file PATH",
	 "Write 32 random bytes to PATH with mode 0600: the key file of a local\n"
	 "provider. An existing file is never overwritten. Back the file up:\n"
	 "without it the tokens it seals cannot be opened.\n"},
	{"status", "p11kms status [--config PATH]",
	 "Show the configuration in use, each slot with its provider and login\n"
	 "mode, its store, whether its token is initialized, the number of\n"
	 "objects, and the seals with the key versions that made them and their\n"
	 "age. --config PATH reads that file; otherwise $P11KMS_CONFIG, else\n"
	 "/etc/p11kms/p11kms.json.\n"},
	{"backup", BACKUP_SYNOPSIS, BACKUP_HELP},
	{"verify-backup", VERIFY_BACKUP_SYNOPSIS, VERIFY_BACKUP_HELP},
	{"restore", RESTORE_SYNOPSIS, RESTORE_HELP},
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
	unsigned char key[32];
	if (RAND_priv_bytes(key, sizeof(key)) != 1) {
		fprintf(stderr, "p11kms: no randomness available\n");
		return 1;
	}
	int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
	if (fd < 0) {
		fprintf(stderr, "p11kms: %s: %s%s\n", path, strerror(errno),
			errno == EEXIST ? " (refusing to overwrite a key file)" : "");
		OPENSSL_cleanse(key, sizeof(key));
		return 1;
	}
	int ok = fchmod(fd, 0600) == 0 && write(fd, key, sizeof(key)) == sizeof(key) &&
		 fsync(fd) == 0;
	OPENSSL_cleanse(key, sizeof(key));
	if (close(fd) != 0 || !ok) {
		fprintf(stderr, "p11kms: %s: write failed: %s\n", path, strerror(errno));
		unlink(path);
		return 1;
	}
	printf("created %s (32 bytes, mode 0600): back it up; without it the "
	       "tokens it seals cannot be opened\n",
	       path);
	return 0;
}

static void print_seals(store_t *st)
{
	seal_rec *s = NULL;
	size_t n = 0;
	if (store_seals_load(st, &s, &n) != P11K_OK)
		return;
	for (size_t i = 0; i < n; i++) {
		char when[32] = "?";
		time_t t = (time_t)s[i].created;
		struct tm tm;
		if (gmtime_r(&t, &tm))
			strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ", &tm);
		unsigned long age = (unsigned long)((clock_now_s() - s[i].created) / 86400);
		printf("    seal: role %-4s key %s version %s, made %s (%lu days ago)\n",
		       s[i].role, s[i].key_id, s[i].key_version, when, age);
	}
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
	if (strcmp(argv[1], "backup") == 0)
		return tool_backup(argc - 2, argv + 2);
	if (strcmp(argv[1], "verify-backup") == 0)
		return tool_verify_backup(argc - 2, argv + 2);
	if (strcmp(argv[1], "restore") == 0)
		return tool_restore(argc - 2, argv + 2);
	if (strcmp(argv[1], "version") == 0) {
		printf("p11kms %d.%d\n", P11KMS_VERSION_MAJOR, P11KMS_VERSION_MINOR);
		return 0;
	}
	return usage();
}
