/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The one reader for files that hold secrets (credentials and config
 * files, token files, private keys, client secrets): the whole file into
 * secure memory (common/secmem.h), bounded, refused unless it is a regular
 * file, and refused when it grows while being read.
 */
#ifndef P11KMS_SECRETFILE_H
#define P11KMS_SECRETFILE_H

#include "common/common.h"
#include "common/err.h"
#include "providers/provider.h"

/* *out (sec_free it) is NUL-terminated, *outlen bytes (outlen may be
 * NULL). P11K_ERR_KEY_NOT_FOUND, with no message, when the file does not
 * exist: the caller decides whether that is an error. Other failures are
 * P11K_ERR_ACCESS_DENIED (P11K_ERR_NOMEM) with "<what> <path> ..." in st;
 * no byte of the file reaches the message. */
P11K_WUR p11k_err secretfile_read(const char *path, size_t max, const char *what, char **out,
				  size_t *outlen, provider_status *st);

/* Trailing blanks and line ends off a text read above (token files end
 * with a newline); returns the new length. */
size_t secretfile_trim_end(char *text, size_t len);

#endif
