/* SPDX-License-Identifier: Apache-2.0 */
#include "log.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/time.h>
#include <syslog.h>
#include <time.h>
#include <unistd.h>

enum dest_kind { DEST_STDERR, DEST_SYSLOG, DEST_FILE };

static int cur_level = LOG_WARN;
static enum dest_kind cur_dest = DEST_STDERR;
static int log_fd = -1;
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

static const char *const level_names[] = {"error", "warn", "info", "debug",
					  "trace"};

int log_level_parse(const char *s)
{
	for (size_t i = 0; s && i < ARRAY_SIZE(level_names); i++)
		if (strcmp(s, level_names[i]) == 0)
			return (int)i;
	return -1;
}

int log_get_level(void)
{
	return __atomic_load_n(&cur_level, __ATOMIC_RELAXED);
}

static void close_dest(void)
{
	if (log_fd >= 0)
		close(log_fd);
	log_fd = -1;
	if (cur_dest == DEST_SYSLOG)
		closelog();
	cur_dest = DEST_STDERR;
}

bool log_configure(int level, const char *dest)
{
	bool ok = true;
	pthread_mutex_lock(&log_lock);
	if (level >= 0)
		cur_level = level;
	if (dest) {
		close_dest();
		if (strcmp(dest, "stderr") == 0) {
			cur_dest = DEST_STDERR;
		} else if (strcmp(dest, "syslog") == 0) {
			openlog("p11kms", LOG_PID, LOG_USER);
			cur_dest = DEST_SYSLOG;
		} else {
			log_fd = open(dest, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC,
				      0600);
			if (log_fd >= 0)
				cur_dest = DEST_FILE;
			else
				ok = false;
		}
	}
	pthread_mutex_unlock(&log_lock);
	if (!ok)
		log_error("log", "cannot open log file %s: %s; logging to stderr",
			  dest, strerror(errno));
	return ok;
}

void log_apply_env(void)
{
	const char *lv = getenv("P11KMS_LOG_LEVEL");
	const char *f = getenv("P11KMS_LOG_FILE");
	int l = log_level_parse(lv);
	if (lv && l < 0)
		log_warn("log", "ignoring P11KMS_LOG_LEVEL=%.16s: not a level", lv);
	log_configure(l, f && *f ? f : NULL);
}

void log_reset(void)
{
	pthread_mutex_lock(&log_lock);
	close_dest();
	cur_level = LOG_WARN;
	pthread_mutex_unlock(&log_lock);
}

/* A thread that is gone in the child may have held the lock: prepare
 * takes it so that the child's only thread holds it, and releases it. */
void log_fork_prepare(void)
{
	pthread_mutex_lock(&log_lock);
}

void log_fork_parent(void)
{
	pthread_mutex_unlock(&log_lock);
}

void log_fork_child(void)
{
	pthread_mutex_unlock(&log_lock);
}

void p11k_log(int level, const char *comp, const char *fmt, ...)
{
	if (level > log_get_level())
		return;
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);

	pthread_mutex_lock(&log_lock);
	if (cur_dest == DEST_SYSLOG) {
		static const int prio[] = {LOG_ERR, LOG_WARNING, LOG_INFO,
					   LOG_DEBUG, LOG_DEBUG};
		syslog(prio[level], "%s: %s", comp, msg);
	} else {
		struct timeval tv;
		struct tm tm;
		char line[1200], ts[32];
		gettimeofday(&tv, NULL);
		gmtime_r(&tv.tv_sec, &tm);
		strftime(ts, sizeof(ts), "%Y-%m-%dT%H:%M:%S", &tm);
		int n = snprintf(line, sizeof(line), "%s.%03ldZ p11kms[%d] %s %s: %s\n",
				 ts, (long)(tv.tv_usec / 1000), (int)getpid(),
				 level_names[level], comp, msg);
		if (n > (int)sizeof(line) - 1)
			n = (int)sizeof(line) - 1;
		int fd = cur_dest == DEST_FILE ? log_fd : STDERR_FILENO;
		/* One write per line keeps lines whole across processes. */
		if (write(fd, line, (size_t)n) < 0) {
			/* nowhere left to report it */
		}
	}
	pthread_mutex_unlock(&log_lock);
}

const char *ckr_name(CK_RV rv)
{
	switch (rv) {
#define R(x)                                                                   \
	case x:                                                                \
		return #x;
		R(CKR_OK)
		R(CKR_CANCEL)
		R(CKR_HOST_MEMORY)
		R(CKR_SLOT_ID_INVALID)
		R(CKR_GENERAL_ERROR)
		R(CKR_FUNCTION_FAILED)
		R(CKR_ARGUMENTS_BAD)
		R(CKR_NO_EVENT)
		R(CKR_NEED_TO_CREATE_THREADS)
		R(CKR_CANT_LOCK)
		R(CKR_ATTRIBUTE_READ_ONLY)
		R(CKR_ATTRIBUTE_SENSITIVE)
		R(CKR_ATTRIBUTE_TYPE_INVALID)
		R(CKR_ATTRIBUTE_VALUE_INVALID)
		R(CKR_ACTION_PROHIBITED)
		R(CKR_DATA_INVALID)
		R(CKR_DATA_LEN_RANGE)
		R(CKR_DEVICE_ERROR)
		R(CKR_DEVICE_MEMORY)
		R(CKR_DEVICE_REMOVED)
		R(CKR_ENCRYPTED_DATA_INVALID)
		R(CKR_ENCRYPTED_DATA_LEN_RANGE)
		R(CKR_FUNCTION_CANCELED)
		R(CKR_FUNCTION_NOT_PARALLEL)
		R(CKR_FUNCTION_NOT_SUPPORTED)
		R(CKR_KEY_HANDLE_INVALID)
		R(CKR_KEY_SIZE_RANGE)
		R(CKR_KEY_TYPE_INCONSISTENT)
		R(CKR_KEY_NOT_NEEDED)
		R(CKR_KEY_CHANGED)
		R(CKR_KEY_NEEDED)
		R(CKR_KEY_INDIGESTIBLE)
		R(CKR_KEY_FUNCTION_NOT_PERMITTED)
		R(CKR_KEY_NOT_WRAPPABLE)
		R(CKR_KEY_UNEXTRACTABLE)
		R(CKR_MECHANISM_INVALID)
		R(CKR_MECHANISM_PARAM_INVALID)
		R(CKR_OBJECT_HANDLE_INVALID)
		R(CKR_OPERATION_ACTIVE)
		R(CKR_OPERATION_NOT_INITIALIZED)
		R(CKR_PIN_INCORRECT)
		R(CKR_PIN_INVALID)
		R(CKR_PIN_LEN_RANGE)
		R(CKR_PIN_EXPIRED)
		R(CKR_PIN_LOCKED)
		R(CKR_SESSION_CLOSED)
		R(CKR_SESSION_COUNT)
		R(CKR_SESSION_HANDLE_INVALID)
		R(CKR_SESSION_PARALLEL_NOT_SUPPORTED)
		R(CKR_SESSION_READ_ONLY)
		R(CKR_SESSION_EXISTS)
		R(CKR_SESSION_READ_ONLY_EXISTS)
		R(CKR_SESSION_READ_WRITE_SO_EXISTS)
		R(CKR_SIGNATURE_INVALID)
		R(CKR_SIGNATURE_LEN_RANGE)
		R(CKR_TEMPLATE_INCOMPLETE)
		R(CKR_TEMPLATE_INCONSISTENT)
		R(CKR_TOKEN_NOT_PRESENT)
		R(CKR_TOKEN_NOT_RECOGNIZED)
		R(CKR_TOKEN_WRITE_PROTECTED)
		R(CKR_UNWRAPPING_KEY_HANDLE_INVALID)
		R(CKR_UNWRAPPING_KEY_SIZE_RANGE)
		R(CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT)
		R(CKR_USER_ALREADY_LOGGED_IN)
		R(CKR_USER_NOT_LOGGED_IN)
		R(CKR_USER_PIN_NOT_INITIALIZED)
		R(CKR_USER_TYPE_INVALID)
		R(CKR_USER_ANOTHER_ALREADY_LOGGED_IN)
		R(CKR_USER_TOO_MANY_TYPES)
		R(CKR_WRAPPED_KEY_INVALID)
		R(CKR_WRAPPED_KEY_LEN_RANGE)
		R(CKR_WRAPPING_KEY_HANDLE_INVALID)
		R(CKR_WRAPPING_KEY_SIZE_RANGE)
		R(CKR_WRAPPING_KEY_TYPE_INCONSISTENT)
		R(CKR_RANDOM_SEED_NOT_SUPPORTED)
		R(CKR_RANDOM_NO_RNG)
		R(CKR_DOMAIN_PARAMS_INVALID)
		R(CKR_BUFFER_TOO_SMALL)
		R(CKR_SAVED_STATE_INVALID)
		R(CKR_INFORMATION_SENSITIVE)
		R(CKR_STATE_UNSAVEABLE)
		R(CKR_CRYPTOKI_NOT_INITIALIZED)
		R(CKR_CRYPTOKI_ALREADY_INITIALIZED)
		R(CKR_MUTEX_BAD)
		R(CKR_MUTEX_NOT_LOCKED)
		R(CKR_FUNCTION_REJECTED)
		R(CKR_TOKEN_RESOURCE_EXCEEDED)
		R(CKR_OPERATION_CANCEL_FAILED)
#undef R
	default:
		return "CKR_(vendor or unknown)";
	}
}
