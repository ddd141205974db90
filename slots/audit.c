/* SPDX-License-Identifier: Apache-2.0 */
/* The audit log (audit.h, docs/AUDIT.md). */
#include "audit.h"

#include <errno.h>
#include <pthread.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <jansson.h>

#include "common/log.h"

/* The open audit file, -1: none. Replaced only by audit_open (config_load,
 * at C_Initialize, when no other thread of the module runs); read without
 * a lock by the writers: a write is one syscall on an O_APPEND descriptor,
 * and no lock is held while it runs (so none is inherited across fork). */
static int audit_fd = -1;
static __thread const char *caller;
/* The name of the PKCS #11 function that returned last in this thread
 * ("ep_" and leave's name), for calls after its first LEAVE. */
static __thread char left[64];
/* Lines of KMS calls made in a helper of a PKCS #11 function (enter()
 * named the helper, not the function): held until the function returns
 * through leave(), which names it. "\x01" stands for the function. */
static __thread char *pending;
static __thread size_t npending;
#define PENDING_MAX (16 * AUDIT_LINE_MAX)
#define FN_MARK '\x01'
static const char *tool_cmd;
static bool reader_only;

void audit_reader_only(void)
{
	reader_only = true;
}

bool audit_open(const char *path, char *why, size_t whylen)
{
	int fd = -1;
	why[0] = 0;
	if (reader_only)
		return true;
	if (path) {
		struct stat ls, st;
		if (path[0] != '/') {
			snprintf(why, whylen, "must be an absolute path");
			return false;
		}
		if (lstat(path, &ls) == 0 && S_ISLNK(ls.st_mode) && ls.st_uid != geteuid() &&
		    ls.st_uid != 0) {
			snprintf(why, whylen, "%s is a symbolic link owned by uid %lu, not by this "
					      "user or root",
				 path, (unsigned long)ls.st_uid);
			return false;
		}
		fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOCTTY, 0600);
		if (fd < 0) {
			snprintf(why, whylen, "cannot open %s for appending: %s", path,
				 strerror(errno));
			return false;
		}
		const char *bad = NULL;
		if (fstat(fd, &st) != 0)
			bad = "cannot be examined";
		else if (!S_ISREG(st.st_mode))
			bad = "is not a regular file";
		else if (st.st_mode & (S_IWGRP | S_IWOTH))
			bad = "is group- or world-writable (chmod 600 it)";
		if (bad) {
			snprintf(why, whylen, "%s %s", path, bad);
			close(fd);
			return false;
		}
	}
	int old = __atomic_exchange_n(&audit_fd, fd, __ATOMIC_SEQ_CST);
	if (old >= 0)
		close(old);
	return true;
}

const char *audit_caller_set(const char *fn)
{
	const char *was = caller;
	caller = fn;
	return was;
}

void audit_tool_set(const char *cmd)
{
	tool_cmd = cmd;
}

/* --- writing --------------------------------------------------------------- */

typedef struct line {
	char b[AUDIT_LINE_MAX + 2];
	size_t n;
	bool over;
} line;

__attribute__((format(printf, 2, 3))) static void put(line *l, const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	int k = vsnprintf(l->b + l->n, sizeof(l->b) - l->n, fmt, ap);
	va_end(ap);
	if (k < 0 || (size_t)k >= sizeof(l->b) - l->n)
		l->over = true;
	else
		l->n += (size_t)k;
}

/* "name": "s" (JSON-escaped, at most 512 bytes of s) or "name": null. */
static void put_str(line *l, const char *name, const char *s)
{
	put(l, "%s\"%s\": ", l->n > 1 ? ", " : "", name);
	if (!s) {
		put(l, "null");
		return;
	}
	put(l, "\"");
	for (size_t i = 0; s[i] && i < 512 && !l->over; i++) {
		unsigned char c = (unsigned char)s[i];
		if (c == '"' || c == '\\')
			put(l, "\\%c", c);
		else if (c < 0x20 || c == 0x7f)
			put(l, "\\u%04x", c);
		else
			put(l, "%c", c);
	}
	put(l, "\"");
}

static const char *result_class(p11k_err e)
{
	switch (e) {
	case P11K_OK:
		return "ok";
	case P11K_ERR_NOMEM:
		return "nomem";
	case P11K_ERR_KEY_DISABLED:
		return "key_disabled";
	case P11K_ERR_KEY_NOT_FOUND:
		return "key_not_found";
	case P11K_ERR_ACCESS_DENIED:
		return "access_denied";
	case P11K_ERR_UNREACHABLE:
		return "unreachable";
	case P11K_ERR_TLS:
		return "tls";
	case P11K_ERR_THROTTLED:
		return "throttled";
	case P11K_ERR_INVALID_CIPHERTEXT:
		return "invalid_ciphertext";
	case P11K_ERR_BAD_REPLY:
		return "bad_reply";
	case P11K_ERR_KEY_TYPE:
		return "key_type";
	case P11K_ERR_INTERNAL:
		return "internal";
	case P11K_ERR_STORE:
		return "store";
	case P11K_ERR_STORE_BUSY:
		return "store_busy";
	}
	return "internal";
}

static const char *alg_name(remote_alg a)
{
	switch (a) {
	case RALG_RSA_OAEP_SHA1:
		return "rsa_oaep_sha1";
	case RALG_RSA_OAEP_SHA256:
		return "rsa_oaep_sha256";
	case RALG_AES_KW:
		return "aes_kw";
	case RALG_AES_KWP:
		return "aes_kwp";
	case RALG_AES_GCM:
		return "aes_gcm";
	}
	return "unknown";
}

static uint64_t now_ns(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* What caused the operation: the revalidation, the tool's command, the
 * PKCS #11 function (audit.h). *later: a helper of a PKCS #11 function
 * made the call, the line waits for audit_leave to name it. */
static const char *cause(char *buf, size_t n, bool *later)
{
	const char *c = caller;
	*later = false;
	if (c && strcmp(c, "revalidation") == 0)
		return c;
	if (tool_cmd) {
		snprintf(buf, n, "p11kms %s", tool_cmd);
		return buf;
	}
	if (c && strncmp(c, "ep_", 3) == 0) {
		snprintf(buf, n, "C_%s", c + 3);
		return buf;
	}
	*later = c != NULL;
	return NULL;
}

static void write_line(int fd, const char *b, size_t n)
{
	ssize_t w = write(fd, b, n);
	if (w != (ssize_t)n)
		log_error("audit", "the audit log was not written: %s",
			  w < 0 ? strerror(errno) : "short write");
}

/* Write one held line with its function mark replaced by name (a JSON
 * value: "\"C_Sign\"" or "null"), from a buffer on the stack: a held line
 * is never lost to a failed allocation. */
static void write_named(int fd, const char *b, size_t n, const char *name)
{
	char buf[AUDIT_LINE_MAX + 2 + 80];
	size_t nl = strlen(name);
	const char *mark = memchr(b, FN_MARK, n);
	if (!mark || n + nl > sizeof(buf)) {
		write_line(fd, b, n); /* cannot be: record() marks every held line */
		return;
	}
	size_t h = (size_t)(mark - b);
	memcpy(buf, b, h);
	memcpy(buf + h, name, nl);
	memcpy(buf + h + nl, mark + 1, n - h - 1);
	write_line(fd, buf, n - 1 + nl);
}

/* Write every held line with name, and forget them. */
static void flush_pending(int fd, const char *name)
{
	size_t at = 0;
	while (fd >= 0 && at < npending) {
		char *end = memchr(pending + at, '\n', npending - at);
		size_t len = end ? (size_t)(end - (pending + at)) + 1 : npending - at;
		write_named(fd, pending + at, len, name);
		at += len;
	}
	free(pending);
	pending = NULL;
	npending = 0;
}

/* A thread that ends with lines held (a helper's KMS call outside any
 * PKCS #11 function that leaves) writes them with function null. */
static pthread_key_t exit_key;
static pthread_once_t exit_once = PTHREAD_ONCE_INIT;
static bool exit_key_made;

static void flush_at_exit(void *unused)
{
	(void)unused;
	flush_pending(__atomic_load_n(&audit_fd, __ATOMIC_SEQ_CST), "null");
}

static void exit_key_make(void)
{
	exit_key_made = pthread_key_create(&exit_key, flush_at_exit) == 0;
	if (!exit_key_made)
		log_error("audit", "no thread-exit hook: a thread that ends with a line held "
				   "loses it");
}

/* The module is unloaded (dlclose): no thread may call into it at exit. */
__attribute__((destructor)) static void exit_key_drop(void)
{
	if (exit_key_made)
		pthread_key_delete(exit_key);
}

/* Hold a line for audit_leave; when too much waits, write it now with
 * function null. */
static void defer(int fd, const char *b, size_t n)
{
	char *p = npending + n <= PENDING_MAX ? realloc(pending, npending + n) : NULL;
	if (!p) {
		write_named(fd, b, n, "null");
		return;
	}
	if (!npending) {
		pthread_once(&exit_once, exit_key_make);
		pthread_setspecific(exit_key, (void *)1);
	}
	memcpy(p + npending, b, n);
	pending = p;
	npending += n;
}

void audit_leave(const char *fn)
{
	snprintf(left, sizeof(left), "ep_%s", fn);
	caller = left;
	if (!npending)
		return;
	char name[80];
	int nl = snprintf(name, sizeof(name), "\"C_%s\"", fn);
	flush_pending(__atomic_load_n(&audit_fd, __ATOMIC_SEQ_CST),
		      nl > 0 && (size_t)nl < sizeof(name) ? name : "null");
}

typedef struct op_rec {
	const provider_cfg *pc;
	const char *key_id, *version, *op, *alg;
	uint64_t t0;
} op_rec;

static void record(const op_rec *o, p11k_err e, const provider_status *st)
{
	int fd = __atomic_load_n(&audit_fd, __ATOMIC_SEQ_CST);
	if (fd < 0)
		return;
	double ms = (double)(now_ns() - o->t0) / 1e6;
	struct timespec ts;
	struct tm tm;
	char when[40] = "1970-01-01T00:00:00", fnbuf[80];
	bool later;
	clock_gettime(CLOCK_REALTIME, &ts);
	time_t secs = ts.tv_sec;
	if (gmtime_r(&secs, &tm))
		strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%S", &tm);
	line *l = malloc(sizeof(*l));
	if (!l)
		return;
	l->n = 0;
	l->over = false;
	put(l, "{\"time\": \"%s.%03ldZ\", \"pid\": %ld, \"uid\": %lu", when,
	    (long)(ts.tv_nsec / 1000000), (long)getpid(), (unsigned long)getuid());
	put_str(l, "exe", program_invocation_short_name);
	put_str(l, "slot", o->pc->name);
	put(l, ", \"slot_id\": %lu", (unsigned long)o->pc->slot_id);
	put_str(l, "provider", o->pc->ops->type);
	put_str(l, "key_id", o->key_id ? o->key_id : "");
	put_str(l, "key_version", o->version && o->version[0] ? o->version : NULL);
	put_str(l, "op", o->op);
	if (o->alg)
		put_str(l, "alg", o->alg);
	const char *fn = cause(fnbuf, sizeof(fnbuf), &later);
	if (later)
		put(l, ", \"function\": %c", FN_MARK);
	else
		put_str(l, "function", fn);
	put_str(l, "result", result_class(e));
	put(l, ", \"latency_ms\": %.3f", ms);
	put_str(l, "request_id", st && st->request_id[0] ? st->request_id : NULL);
	put(l, "}\n");
	if (l->over) {
		log_error("audit", "a line of the audit log is longer than %d bytes: not written",
			  AUDIT_LINE_MAX);
	} else if (later) {
		defer(fd, l->b, l->n);
	} else {
		write_line(fd, l->b, l->n);
	}
	free(l);
}

/* --- the provider operations, recorded ------------------------------------- */

p11k_err audit_describe(const provider_cfg *pc, void *prov, const char *key_id, key_info *out,
			provider_status *st)
{
	op_rec o = {pc, key_id, NULL, "describe", NULL, now_ns()};
	p11k_err e = pc->ops->describe(prov, key_id, out, st);
	if (e == P11K_OK)
		o.version = out->primary_version;
	record(&o, e, st);
	return e;
}

p11k_err audit_encrypt(const provider_cfg *pc, void *prov, const char *key_id, const uint8_t *pt,
		       size_t ptlen, const uint8_t *aad, size_t aadlen, uint8_t **blob,
		       size_t *bloblen, char *key_version, size_t kvlen, provider_status *st)
{
	op_rec o = {pc, key_id, NULL, "encrypt", NULL, now_ns()};
	p11k_err e = pc->ops->encrypt(prov, key_id, pt, ptlen, aad, aadlen, blob, bloblen,
				      key_version, kvlen, st);
	if (e == P11K_OK && key_version && kvlen)
		o.version = key_version;
	record(&o, e, st);
	return e;
}

p11k_err audit_decrypt(const provider_cfg *pc, void *prov, const char *key_id,
		       const char *version, const uint8_t *blob, size_t bloblen,
		       const uint8_t *aad, size_t aadlen, uint8_t **pt, size_t *ptlen,
		       provider_status *st)
{
	op_rec o = {pc, key_id, version, "decrypt", NULL, now_ns()};
	p11k_err e = pc->ops->decrypt(prov, key_id, blob, bloblen, aad, aadlen, pt, ptlen, st);
	record(&o, e, st);
	return e;
}

p11k_err audit_remote_crypt(const provider_cfg *pc, void *prov, const char *key_id,
			    remote_req *r, uint8_t **out, size_t *outlen, provider_status *st)
{
	const char *op = r->key_op ? (r->encrypt ? "wrap" : "unwrap")
				   : (r->encrypt ? "encrypt" : "decrypt");
	op_rec o = {pc, key_id, NULL, op, alg_name(r->alg), now_ns()};
	p11k_err e = pc->ops->remote_crypt(prov, key_id, r, out, outlen, st);
	record(&o, e, st);
	return e;
}

p11k_err audit_public_key(const provider_cfg *pc, void *prov, const char *key_id,
			  asym_public *out, provider_status *st)
{
	op_rec o = {pc, key_id, NULL, "public_key", NULL, now_ns()};
	p11k_err err = pc->ops->public_key(prov, key_id, out, st);
	if (err == P11K_OK && out->version[0])
		o.version = out->version;
	record(&o, err, st);
	return err;
}

static const char *sign_alg_name(sign_alg a)
{
	static const char *const names[SALG_COUNT_] = {
		[SALG_RSA_PKCS1_SHA256] = "rsa_pkcs1_sha256", [SALG_RSA_PKCS1_SHA384] = "rsa_pkcs1_sha384",
		[SALG_RSA_PKCS1_SHA512] = "rsa_pkcs1_sha512", [SALG_RSA_PSS_SHA256] = "rsa_pss_sha256",
		[SALG_RSA_PSS_SHA384] = "rsa_pss_sha384",     [SALG_RSA_PSS_SHA512] = "rsa_pss_sha512",
		[SALG_ECDSA_SHA256] = "ecdsa_sha256",	      [SALG_ECDSA_SHA384] = "ecdsa_sha384",
	};
	return a > 0 && a < SALG_COUNT_ ? names[a] : "?";
}

p11k_err audit_sign(const provider_cfg *pc, void *prov, const char *key_id, const char *version,
		    sign_alg alg, const uint8_t *digest, size_t dlen, uint8_t **sig,
		    size_t *siglen, provider_status *st)
{
	op_rec o = {pc, key_id, version && version[0] ? version : NULL, "sign",
		    sign_alg_name(alg), now_ns()};
	p11k_err err = pc->ops->sign(prov, key_id, version, alg, digest, dlen, sig, siglen, st);
	record(&o, err, st);
	return err;
}

/* --- reading --------------------------------------------------------------- */

static bool digits(const char *s, size_t n, unsigned *v)
{
	*v = 0;
	for (size_t i = 0; i < n; i++) {
		if (s[i] < '0' || s[i] > '9')
			return false;
		*v = *v * 10 + (unsigned)(s[i] - '0');
	}
	return true;
}

/* Days from 1970-01-01 to y-m-d (proleptic Gregorian; H. Hinnant's
 * days_from_civil). */
static int64_t days_from_civil(int64_t y, unsigned m, unsigned d)
{
	y -= m <= 2;
	int64_t era = (y >= 0 ? y : y - 399) / 400;
	unsigned yoe = (unsigned)(y - era * 400);
	unsigned doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
	unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
	return era * 146097 + (int64_t)doe - 719468;
}

bool audit_time_parse(const char *s, uint64_t *ms)
{
	unsigned y, mo, d, h, mi, sec, frac = 0, oh = 0, om = 0;
	size_t n = strnlen(s, 64);
	if (n < 20 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't') ||
	    s[13] != ':' || s[16] != ':')
		return false;
	if (!digits(s, 4, &y) || !digits(s + 5, 2, &mo) || !digits(s + 8, 2, &d) ||
	    !digits(s + 11, 2, &h) || !digits(s + 14, 2, &mi) || !digits(s + 17, 2, &sec))
		return false;
	static const unsigned mdays[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
	bool leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
	if (y < 1970 || mo < 1 || mo > 12 || d < 1 || d > mdays[mo - 1] ||
	    (mo == 2 && d == 29 && !leap) || h > 23 || mi > 59 || sec > 60)
		return false;
	size_t i = 19;
	if (s[i] == '.') {
		size_t k = 0;
		for (i++; i < n && s[i] >= '0' && s[i] <= '9'; i++, k++)
			if (k < 3)
				frac = frac * 10 + (unsigned)(s[i] - '0');
		if (k == 0 || k > 9)
			return false;
		for (; k < 3; k++)
			frac *= 10;
	}
	int sign = 0;
	if (i + 1 == n && (s[i] == 'Z' || s[i] == 'z'))
		sign = 0;
	else if (i + 6 == n && (s[i] == '+' || s[i] == '-') && s[i + 3] == ':' &&
		 digits(s + i + 1, 2, &oh) && digits(s + i + 4, 2, &om) && oh <= 23 && om <= 59)
		sign = s[i] == '+' ? 1 : -1;
	else
		return false;
	int64_t t = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec -
		    sign * (int64_t)(oh * 3600 + om * 60);
	if (t < 0)
		return false;
	*ms = (uint64_t)t * 1000 + frac;
	return true;
}

void audit_entry_free(audit_entry *e)
{
	json_decref(e->doc);
	memset(e, 0, sizeof(*e));
}

/* A string field (or null, when nullable) of o; false: why says. */
static bool field_str(json_t *o, const char *name, bool nullable, const char **out, char *why,
		      size_t whylen)
{
	json_t *v = json_object_get(o, name);
	*out = NULL;
	if (json_is_string(v)) {
		*out = json_string_value(v);
		return true;
	}
	if (nullable && json_is_null(v))
		return true;
	snprintf(why, whylen, "field \"%s\" %s", name,
		 v ? (nullable ? "must be a string or null" : "must be a string") : "is missing");
	return false;
}

static bool field_int(json_t *o, const char *name, long long *out, char *why, size_t whylen)
{
	json_t *v = json_object_get(o, name);
	if (!json_is_integer(v) || json_integer_value(v) < 0) {
		snprintf(why, whylen, "field \"%s\" %s", name,
			 v ? "must be a non-negative integer" : "is missing");
		return false;
	}
	*out = json_integer_value(v);
	return true;
}

bool audit_line_parse(const char *text, size_t len, audit_entry *out, char *why, size_t whylen)
{
	memset(out, 0, sizeof(*out));
	why[0] = 0;
	if (len > AUDIT_LINE_MAX) {
		snprintf(why, whylen, "longer than %d bytes", AUDIT_LINE_MAX);
		return false;
	}
	json_error_t je;
	json_t *o = json_loadb(text, len, JSON_REJECT_DUPLICATES, &je);
	if (!o) {
		snprintf(why, whylen, "not JSON: %s (column %d)", je.text, je.column);
		return false;
	}
	out->doc = o;
	bool ok = json_is_object(o);
	if (!ok)
		snprintf(why, whylen, "not a JSON object");
	ok = ok && field_str(o, "time", false, &out->time, why, whylen) &&
	     field_int(o, "pid", &out->pid, why, whylen) &&
	     field_int(o, "uid", &out->uid, why, whylen) &&
	     field_str(o, "exe", false, &out->exe, why, whylen) &&
	     field_str(o, "slot", false, &out->slot, why, whylen) &&
	     field_int(o, "slot_id", &out->slot_id, why, whylen) &&
	     field_str(o, "provider", false, &out->provider, why, whylen) &&
	     field_str(o, "key_id", false, &out->key_id, why, whylen) &&
	     field_str(o, "key_version", true, &out->key_version, why, whylen) &&
	     field_str(o, "op", false, &out->op, why, whylen) &&
	     field_str(o, "function", true, &out->function, why, whylen) &&
	     field_str(o, "result", false, &out->result, why, whylen) &&
	     field_str(o, "request_id", true, &out->request_id, why, whylen);
	json_t *lat = ok ? json_object_get(o, "latency_ms") : NULL;
	if (ok && (!json_is_number(lat) || json_number_value(lat) < 0)) {
		snprintf(why, whylen, "field \"latency_ms\" %s",
			 lat ? "must be a non-negative number" : "is missing");
		ok = false;
	}
	if (ok)
		out->latency_ms = json_number_value(lat);
	if (ok && !audit_time_parse(out->time, &out->time_ms)) {
		snprintf(why, whylen, "field \"time\" is not an RFC 3339 time");
		ok = false;
	}
	if (!ok)
		audit_entry_free(out);
	return ok;
}
