/* SPDX-License-Identifier: Apache-2.0 */
/*
 * p11kms backup, verify-backup, restore (docs/BACKUP.md, p11kms(1)).
 * Each takes the arguments after its command name and returns the exit
 * status: 0 ok, 1 warning, 2 refused or critical, 3 usage or
 * configuration error.
 */
#ifndef P11KMS_TOOLS_BACKUP_H
#define P11KMS_TOOLS_BACKUP_H

#define BACKUP_SYNOPSIS "p11kms backup [--config PATH] [--json] --slot NAME DEST"
#define BACKUP_HELP                                                                          \
	"Write a consistent snapshot of the slot's live store to DEST (SQLite's\n"             \
	"online backup API, so consumers may keep working): mode 0600, written to\n"          \
	"DEST.tmp, fsynced, then renamed. The file carries a manifest naming the\n"           \
	"token and every KMS key version its seals need. Needs no KMS and no PIN.\n"          \
	"NAME is a provider name or a slot id. --json: the result as one JSON\n"            \
	"object (schema \"p11kms-backup/1\", docs/BACKUP.md), for this command and\n"       \
	"verify-backup and restore alike. Exit 0 written, 2 failed, 3 usage or\n"          \
	"configuration error.\n"
#define VERIFY_BACKUP_SYNOPSIS                                                               \
	"p11kms verify-backup [--config PATH] [--slot NAME] [--pin-env VAR] [--json] SRC"
#define VERIFY_BACKUP_HELP                                                                   \
	"Say which KMS key versions the backup SRC needs and whether each is enabled\n"       \
	"and accessible now: describe each key, decrypt each seal, check the token\n"         \
	"key seal under the result. --pin-env VAR (the user's or SO's PIN in the\n"           \
	"environment variable VAR, never on the command line) also opens the token\n"        \
	"key and every object record. SRC is only read. Exit 0 ok, 1 warning (a\n"            \
	"version that is no longer current), 2 refused (a version not accessible,\n"         \
	"damaged or tampered), 3 usage or configuration error.\n"
#define RESTORE_SYNOPSIS                                                                     \
	"p11kms restore [--config PATH] [--pin-env VAR] [--force] [--json] SRC --slot NAME"
#define RESTORE_HELP                                                                         \
	"Verify SRC as verify-backup does, then make it the slot's store. Refused\n"          \
	"when a key version it needs is not accessible. An existing store is\n"              \
	"replaced only with --force (also needed when it is another token's); its\n"          \
	"content is kept first as STORE.replaced-<time>. The replacement is one\n"            \
	"SQLite transaction: running consumers see the old store or the new one.\n"
int tool_backup(int argc, char **argv);
int tool_verify_backup(int argc, char **argv);
int tool_restore(int argc, char **argv);

#endif
