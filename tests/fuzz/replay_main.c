/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Corpus replay: a plain main() for a fuzz target, so the normal test
 * suite (gcc release, clang ASan) runs every saved input through
 * LLVMFuzzerTestOneInput without libFuzzer. Arguments are files or
 * folders (every regular file inside, not recursive).
 */
#include <dirent.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REPLAY_MAX (64 * 1024 * 1024)

static int run_file(const char *path)
{
	FILE *f = fopen(path, "rb");
	if (!f) {
		fprintf(stderr, "replay: cannot open %s\n", path);
		return 1;
	}
	uint8_t *buf = NULL;
	size_t len = 0, cap = 0;
	for (;;) {
		if (len == cap) {
			size_t ncap = cap ? cap * 2 : 4096;
			uint8_t *nb = ncap <= REPLAY_MAX ? realloc(buf, ncap) : NULL;
			if (!nb) {
				fprintf(stderr, "replay: %s is too large\n", path);
				free(buf);
				fclose(f);
				return 1;
			}
			buf = nb;
			cap = ncap;
		}
		size_t n = fread(buf + len, 1, cap - len, f);
		if (n == 0)
			break;
		len += n;
	}
	fclose(f);
	/* An exact-size copy, so ASan sees a read past the input's end. */
	uint8_t *exact = malloc(len ? len : 1);
	if (!exact) {
		free(buf);
		return 1;
	}
	if (len)
		memcpy(exact, buf, len);
	free(buf);
	LLVMFuzzerTestOneInput(exact, len);
	free(exact);
	return 0;
}

static int by_name(const struct dirent **a, const struct dirent **b)
{
	return strcmp((*a)->d_name, (*b)->d_name);
}

int main(int argc, char **argv)
{
	int bad = 0, count = 0;
	for (int i = 1; i < argc; i++) {
		struct stat st;
		if (stat(argv[i], &st) != 0) {
			fprintf(stderr, "replay: %s: no such file or folder\n", argv[i]);
			bad = 1;
			continue;
		}
		if (!S_ISDIR(st.st_mode)) {
			bad |= run_file(argv[i]);
			count++;
			continue;
		}
		struct dirent **ents;
		int n = scandir(argv[i], &ents, NULL, by_name);
		if (n < 0) {
			fprintf(stderr, "replay: cannot list %s\n", argv[i]);
			bad = 1;
			continue;
		}
		for (int j = 0; j < n; j++) {
			char path[4096];
			struct stat es;
			if (ents[j]->d_name[0] != '.' &&
			    snprintf(path, sizeof(path), "%s/%s", argv[i],
				     ents[j]->d_name) < (int)sizeof(path) &&
			    stat(path, &es) == 0 && S_ISREG(es.st_mode)) {
				bad |= run_file(path);
				count++;
			}
			free(ents[j]);
		}
		free(ents);
	}
	printf("replayed %d input(s)\n", count);
	if (count == 0) {
		fprintf(stderr, "replay: no inputs\n");
		bad = 1;
	}
	return bad;
}
