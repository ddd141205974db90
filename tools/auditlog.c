/* SPDX-License-Identifier: Apache-2.0 */
/* p11kms audit (auditlog.h): the line parser is slots/audit.c's. */
#include "tools/auditlog.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "common/log.h"
#include "slots/audit.h"
#include "slots/config.h"
#include "tools/tool.h"

#define EXIT_OK TOOL_EXIT_OK
#define EXIT_SKIPPED TOOL_EXIT_WARN
#define EXIT_UNREADABLE TOOL_EXIT_FAIL
#define EXIT_USAGE TOOL_EXIT_USAGE

static int usage_error(const char *what, const char *arg)
{
	fprintf(stderr, "p11kms: %s%s; usage: %s\n", what, arg, AUDIT_SYNOPSIS);
	return EXIT_USAGE;
}

/* "90s", "30m", "1h", "7d" back from now, or an RFC 3339 time. */
static bool since_parse(const char *s, uint64_t *ms)
{
	if (audit_time_parse(s, ms))
		return true;
	char *end;
	errno = 0;
	unsigned long long n = strtoull(s, &end, 10);
	static const struct {
		char c;
		uint64_t secs;
	} units[] = {{'s', 1}, {'m', 60}, {'h', 3600}, {'d', 86400}};
	if (end == s || errno || s[0] == '-' || !end[0] || end[1] || n > 36500ull * 86400)
		return false;
	for (size_t i = 0; i < ARRAY_SIZE(units); i++)
		if (*end == units[i].c) {
			struct timespec ts;
			clock_gettime(CLOCK_REALTIME, &ts);
			uint64_t now = (uint64_t)ts.tv_sec * 1000 + (uint64_t)ts.tv_nsec / 1000000;
			uint64_t back = n * units[i].secs * 1000;
			*ms = back > now ? 0 : now - back;
			return true;
		}
	return false;
}

static void row(const audit_entry *e)
{
	char who[64];
	snprintf(who, sizeof(who), "%s[%lld]", e->exe, e->pid);
	printf("%-24s  %-22s %-22s %-16s %-12s %-18s %9.3f  %s%s%s%s%s\n", e->time, who,
	       e->function ? e->function : "-", e->slot, e->op, e->result, e->latency_ms,
	       e->key_id, e->key_version ? " version " : "",
	       e->key_version ? e->key_version : "", e->request_id ? " request " : "",
	       e->request_id ? e->request_id : "");
}

/* Every line of f from since_ms on; bad lines reported (name:N) and
 * skipped. Returns the number skipped. */
static size_t show(FILE *f, const char *name, uint64_t since_ms, bool json)
{
	char *buf = malloc(AUDIT_LINE_MAX + 2);
	size_t lineno = 0, skipped = 0;
	if (!buf) {
		fprintf(stderr, "p11kms: out of memory\n");
		return 1;
	}
	if (!json)
		printf("%-24s  %-22s %-22s %-16s %-12s %-18s %9s  %s\n", "TIME", "PROCESS",
		       "CAUSE", "SLOT", "OPERATION", "RESULT", "MS", "KEY");
	while (fgets(buf, AUDIT_LINE_MAX + 2, f)) {
		size_t n = strlen(buf);
		lineno++;
		bool whole = n && buf[n - 1] == '\n';
		if (!whole && !feof(f)) {
			/* Longer than any line the module writes: skip to its end. */
			int c;
			while ((c = fgetc(f)) != EOF && c != '\n')
				;
			fprintf(stderr, "p11kms: %s:%zu: longer than %d bytes: skipped\n", name,
				lineno, AUDIT_LINE_MAX);
			skipped++;
			continue;
		}
		if (whole)
			buf[--n] = 0;
		audit_entry e;
		char why[200];
		if (!audit_line_parse(buf, n, &e, why, sizeof(why))) {
			fprintf(stderr, "p11kms: %s:%zu: %s: skipped\n", name, lineno, why);
			skipped++;
			continue;
		}
		if (e.time_ms >= since_ms) {
			if (json)
				printf("%s\n", buf);
			else
				row(&e);
		}
		audit_entry_free(&e);
	}
	free(buf);
	return skipped;
}

int tool_audit(int argc, char **argv)
{
	const char *cfgpath = NULL, *file = NULL;
	uint64_t since = 0;
	bool json = false;
	for (int i = 0; i < argc; i++) {
		const char *a = argv[i];
		if (strcmp(a, "--config") == 0 && i + 1 < argc)
			cfgpath = argv[++i];
		else if (strcmp(a, "--since") == 0 && i + 1 < argc) {
			if (!since_parse(argv[++i], &since))
				return usage_error("--since wants an RFC 3339 time or a duration "
						   "(90s, 30m, 1h, 7d), not ",
						   argv[i]);
		} else if (strcmp(a, "--json") == 0)
			json = true;
		else if (a[0] != '-' && !file)
			file = a;
		else
			return usage_error("unexpected argument ", a);
	}
	config_t *cfg = NULL;
	if (!file) {
		char init[4200];
		snprintf(init, sizeof(init), "config=%s", cfgpath ? cfgpath : "");
		audit_reader_only();
		if (config_load(cfgpath ? init : NULL, &cfg) != CKR_OK) {
			fprintf(stderr, "p11kms: the configuration does not load (the log says "
					"why)\n");
			return EXIT_USAGE;
		}
		if (!cfg->audit) {
			fprintf(stderr, "p11kms: %s has no \"log.audit\": there is no audit log\n",
				cfg->path);
			config_free(cfg);
			return EXIT_USAGE;
		}
		file = cfg->audit;
	}
	FILE *f = fopen(file, "re");
	int ret = EXIT_OK;
	if (!f) {
		fprintf(stderr, "p11kms: the audit log %s cannot be read: %s\n", file,
			strerror(errno));
		ret = EXIT_UNREADABLE;
	} else {
		if (show(f, file, since, json))
			ret = EXIT_SKIPPED;
		if (ferror(f)) {
			fprintf(stderr, "p11kms: reading %s failed\n", file);
			ret = EXIT_UNREADABLE;
		}
		fclose(f);
	}
	config_free(cfg);
	return ret;
}
