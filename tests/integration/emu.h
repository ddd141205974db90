/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The KMS emulator for end-to-end tests: started as a subprocess on
 * loopback (tests/kms-emulator/kmsemu.py serve), its emulator.json loaded,
 * and driven through a per-cloud control script in tests/integration/
 * (emuctl.py, emuctl_azure.py, emuctl_gcp.py).
 */
#ifndef P11KMS_TEST_EMU_H
#define P11KMS_TEST_EMU_H

#include <jansson.h>

extern char emu_dir[256];   /* the emulator's state folder */
extern json_t *emu_info;    /* its emulator.json */

/* Start it (state folder /tmp/p11kms-<tag>-XXXXXX); 0 when it answers. */
int emu_start(const char *tag);
/* Stop it and remove its folder. */
int emu_stop(void);
/* emu_info[cloud][field] as a string, or NULL. */
const char *emu_str(const char *cloud, const char *field);
/* Run "script emu_dir ARGS"; a failure fails the test. */
void emu_ctl(const char *script, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The same, returning the first line of its output as a number. */
long emu_ctl_long(const char *script, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
/* ... or as a string (out gets "" on failure, which fails the test). */
void emu_ctl_line(char *out, size_t outlen, const char *script, const char *fmt, ...)
	__attribute__((format(printf, 4, 5)));

#endif
