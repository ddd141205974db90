/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The local provider's key file, for the command-line tool
 * (`p11kms create-key-file`), which writes what local.c reads.
 *
 * Two formats are read (docs/CONFIGURATION.md, "type: local"):
 *   - 32 bytes: the key alone, as p11kms 0.x wrote it and as
 *     `head -c 32 /dev/urandom` makes it. It records no creation time:
 *     the file's modification time stands in.
 *   - 48 bytes: "P1KK" | 0x01 | 3 zero bytes | created (8 bytes,
 *     big-endian seconds since the epoch) | the key (32 bytes).
 * Both name the same key version: the fingerprint is of the key alone, so
 * rewriting an old file in the new format keeps its seals.
 */
#ifndef P11KMS_LOCAL_H
#define P11KMS_LOCAL_H

#include <stdint.h>

#include "common/err.h"

#define LOCAL_KEY_LEN 32
#define LOCAL_FP_HEX_LEN 16 /* the fingerprint (key version) in hex */

/* Make a new key file at path (never overwriting one): a random key and
 * the creation time `created`, mode 0600, written and synced. fp_hex gets
 * the new key's version (LOCAL_FP_HEX_LEN + 1 bytes). On failure, a
 * one-line reason in why; no file is left behind. */
P11K_WUR p11k_err local_key_file_create(const char *path, uint64_t created,
					char fp_hex[LOCAL_FP_HEX_LEN + 1], char *why,
					size_t whylen);

#endif
