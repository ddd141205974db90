/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Helpers shared by the fuzz targets: a private scratch folder (on tmpfs
 * when there is one, so SQLite's fsyncs cost nothing), quiet logging, and
 * a check that aborts so libFuzzer and the replay runner both see it.
 */
#ifndef P11KMS_FUZZ_COMMON_H
#define P11KMS_FUZZ_COMMON_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "common/log.h"

#define FUZZ_CHECK(cond)                                                       \
	do {                                                                   \
		if (!(cond)) {                                                 \
			fprintf(stderr, "%s:%d: fuzz check failed: %s\n",      \
				__FILE__, __LINE__, #cond);                    \
			abort();                                               \
		}                                                              \
	} while (0)

static char fuzz_dir[256];

static inline void fuzz_dir_remove(void)
{
	char cmd[300];
	/* Only our own mkdtemp folder, by its exact name. */
	if (fuzz_dir[0] &&
	    snprintf(cmd, sizeof(cmd), "rm -rf '%s'", fuzz_dir) < (int)sizeof(cmd) &&
	    system(cmd) != 0)
		fprintf(stderr, "fuzz: could not remove %s\n", fuzz_dir);
}

/* The scratch folder, made on first use and removed at exit. */
static inline const char *fuzz_tmpdir(void)
{
	if (fuzz_dir[0])
		return fuzz_dir;
	const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : NULL;
	if (!base)
		base = getenv("TMPDIR") && *getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp";
	snprintf(fuzz_dir, sizeof(fuzz_dir), "%s/p11kms-fuzz-XXXXXX", base);
	if (!mkdtemp(fuzz_dir)) {
		perror("fuzz: mkdtemp");
		abort();
	}
	atexit(fuzz_dir_remove);
	return fuzz_dir;
}

/* Error paths still format their messages; they just go nowhere. */
static inline void fuzz_quiet_log(void)
{
	if (getenv("P11KMS_FUZZ_VERBOSE"))
		log_configure(LOG_TRACE, "stderr");
	else
		log_configure(LOG_ERROR, "/dev/null");
}

/* Lines in text: an upper bound for any line jsonpos_line reports. */
static inline unsigned fuzz_count_lines(const char *t, size_t n)
{
	unsigned lines = 1;
	for (size_t i = 0; i < n; i++)
		lines += t[i] == '\n';
	return lines;
}

#endif
