/* SPDX-License-Identifier: Apache-2.0 */
/*
 * aws_ini_lookup (providers/aws/creds_ini.c) on arbitrary bytes: the AWS
 * shared credentials / config file parser. For a fixed set of sections
 * and keys, at several output sizes: never a read past len, never a write
 * past outlen, a found value is NUL-terminated, shorter than outlen and
 * is text that occurs in the input (trimmed, never truncated). Seeds:
 * tests/vectors/aws/ini/.
 */
#include <stdint.h>

#include "fuzz_common.h"
#include "providers/aws/creds.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static const char *const sections[] = {"default", "profile ci", "ci", "x",
				       "profile spaced", ""};
static const char *const keys[] = {"aws_access_key_id", "aws_secret_access_key",
				   "aws_session_token", "role_arn", "k", "key",
				   "region"};
static const size_t outlens[] = {1, 8, 64, 4096};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static int ready;
	if (!ready) {
		fuzz_quiet_log();
		ready = 1;
	}
	/* An exact-size heap copy: a read past the end is an ASan report. */
	char *text = malloc(size ? size : 1);
	if (!text)
		return 0;
	memcpy(text, data, size);
	for (size_t s = 0; s < ARRAY_SIZE(sections); s++) {
		for (size_t k = 0; k < ARRAY_SIZE(keys); k++) {
			for (size_t o = 0; o < ARRAY_SIZE(outlens); o++) {
				/* Exact-size output too: a write past outlen is
				 * an ASan report. */
				char *out = malloc(outlens[o]);
				if (!out)
					break;
				if (aws_ini_lookup(text, size, sections[s], keys[k],
						   out, outlens[o])) {
					size_t n = strnlen(out, outlens[o]);
					FUZZ_CHECK(n < outlens[o]);
					FUZZ_CHECK(n == 0 || memmem(text, size, out, n));
				}
				free(out);
			}
		}
	}
	free(text);
	return 0;
}
