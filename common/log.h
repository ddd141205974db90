/* SPDX-License-Identifier: Apache-2.0 */
/*
 * One logging module. Level and destination are read once (config, then
 * the P11KMS_LOG_LEVEL / P11KMS_LOG_FILE environment variables, which win
 * for troubleshooting). The module never writes to the host's stdout.
 * Callers never pass secrets: the log takes only names, sizes and codes.
 */
#ifndef P11KMS_LOG_H
#define P11KMS_LOG_H

#include "common.h"

enum log_level { LOG_ERROR = 0, LOG_WARN, LOG_INFO, LOG_DEBUG, LOG_TRACE };

/* Parse "error".."trace"; -1 when unknown. */
int log_level_parse(const char *s);
/* dest: "stderr", "syslog" or an absolute file path. Returns false (and
 * keeps stderr) when the file cannot be opened. */
bool log_configure(int level, const char *dest);
/* Environment overrides applied on top of whatever configure set. */
void log_apply_env(void);
void log_reset(void);
int log_get_level(void);
/* fork: module/entry.c's one pthread_atfork handler calls these. The log's
 * lock is a leaf (its holder takes no other lock): prepare takes it last. */
void log_fork_prepare(void);
void log_fork_parent(void);
void log_fork_child(void);

void p11k_log(int level, const char *comp, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

#define LOG_ENABLED(lvl) ((lvl) <= log_get_level())
#define log_error(comp, ...) p11k_log(LOG_ERROR, comp, __VA_ARGS__)
#define log_warn(comp, ...) p11k_log(LOG_WARN, comp, __VA_ARGS__)
#define log_info(comp, ...)                                                    \
	do {                                                                   \
		if (LOG_ENABLED(LOG_INFO))                                     \
			p11k_log(LOG_INFO, comp, __VA_ARGS__);                 \
	} while (0)
#define log_debug(comp, ...)                                                   \
	do {                                                                   \
		if (LOG_ENABLED(LOG_DEBUG))                                    \
			p11k_log(LOG_DEBUG, comp, __VA_ARGS__);                \
	} while (0)
#define log_trace(comp, ...)                                                   \
	do {                                                                   \
		if (LOG_ENABLED(LOG_TRACE))                                    \
			p11k_log(LOG_TRACE, comp, __VA_ARGS__);                \
	} while (0)

/* Name of a CKR code for log lines ("CKR_PIN_INCORRECT"). */
const char *ckr_name(CK_RV rv);

#endif
