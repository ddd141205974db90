/* SPDX-License-Identifier: Apache-2.0 */
#include "emu.h"

#include <fcntl.h>
#include <setjmp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cmocka.h>

char emu_dir[256];
json_t *emu_info;
static pid_t emu_pid;

int emu_start(const char *tag)
{
	snprintf(emu_dir, sizeof(emu_dir), "/tmp/p11kms-%s-XXXXXX", tag);
	if (!mkdtemp(emu_dir))
		return -1;
	char script[512], logp[300], info[300];
	snprintf(script, sizeof(script), "%s/tests/kms-emulator/kmsemu.py", getenv("P11KMS_SRC"));
	snprintf(logp, sizeof(logp), "%s/emulator.log", emu_dir);
	snprintf(info, sizeof(info), "%s/emulator.json", emu_dir);
	emu_pid = fork();
	if (emu_pid == 0) {
		int fd = open(logp, O_WRONLY | O_CREAT | O_TRUNC, 0600);
		dup2(fd, 1);
		dup2(fd, 2);
		execl("/usr/bin/python3", "python3", script, "serve", "--state-dir", emu_dir,
		      (char *)NULL);
		_exit(127);
	}
	/* It writes emulator.json once it serves. */
	for (int i = 0; i < 600 && !emu_info; i++) {
		usleep(100000);
		json_error_t je;
		emu_info = json_load_file(info, 0, &je);
	}
	if (!emu_info)
		fprintf(stderr, "the emulator did not start (see %s)\n", logp);
	return emu_info ? 0 : -1;
}

int emu_stop(void)
{
	if (emu_pid > 0) {
		kill(emu_pid, SIGTERM);
		waitpid(emu_pid, NULL, 0);
		emu_pid = 0;
	}
	json_decref(emu_info);
	emu_info = NULL;
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", emu_dir);
	return system(cmd) == 0 ? 0 : -1;
}

const char *emu_str(const char *cloud, const char *field)
{
	return json_string_value(json_object_get(json_object_get(emu_info, cloud), field));
}

static void command(char *cmd, size_t n, const char *script, const char *fmt, va_list ap)
	__attribute__((format(printf, 4, 0)));
static void command(char *cmd, size_t n, const char *script, const char *fmt, va_list ap)
{
	char args[1024];
	vsnprintf(args, sizeof(args), fmt, ap);
	snprintf(cmd, n, "/usr/bin/python3 %s/tests/integration/%s %s %s", getenv("P11KMS_SRC"),
		 script, emu_dir, args);
}

void emu_ctl(const char *script, const char *fmt, ...)
{
	char cmd[2048];
	va_list ap;
	va_start(ap, fmt);
	command(cmd, sizeof(cmd), script, fmt, ap);
	va_end(ap);
	if (system(cmd) != 0)
		fail_msg("%s failed", cmd);
}

static void run_line(char *out, size_t outlen, const char *cmd)
{
	FILE *p = popen(cmd, "r");
	out[0] = 0;
	if (!p || !fgets(out, (int)outlen, p))
		out[0] = 0;
	if (p)
		pclose(p);
	out[strcspn(out, "\r\n")] = 0;
	if (!out[0])
		fail_msg("%s gave nothing", cmd);
}

void emu_ctl_line(char *out, size_t outlen, const char *script, const char *fmt, ...)
{
	char cmd[2048];
	va_list ap;
	va_start(ap, fmt);
	command(cmd, sizeof(cmd), script, fmt, ap);
	va_end(ap);
	run_line(out, outlen, cmd);
}

long emu_ctl_long(const char *script, const char *fmt, ...)
{
	char cmd[2048], v[64];
	va_list ap;
	va_start(ap, fmt);
	command(cmd, sizeof(cmd), script, fmt, ap);
	va_end(ap);
	run_line(v, sizeof(v), cmd);
	return strtol(v, NULL, 10);
}
