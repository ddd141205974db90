/* SPDX-License-Identifier: Apache-2.0 */
/*
 * p11kms encrypt / decrypt: the streaming envelope format of
 * docs/STREAM.md. One KMS call per file (wrap or unwrap the data key),
 * then AES-256-GCM per segment with the module's private OpenSSL library
 * context (common/crypto.h), one EVP context whose key schedule is kept
 * and only the nonce changed per segment.
 *
 * Memory is constant: two buffers of one segment each. An output file is
 * written as OUT.tmp.XXXXXX, fsync'd and renamed over OUT only when the
 * whole stream is done, so a failure never leaves OUT half-written; the
 * temporary file is removed on every failure, and by a signal handler on
 * SIGINT/SIGTERM/SIGHUP.
 */
#include "stream.h"

#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "common/crypto.h"
#include "common/log.h"
#include "common/secmem.h"
#include "slots/audit.h"
#include "slots/config.h"
#include "slots/seal.h"
#include "tools/tool.h"

static const char kms_aad_label[] = "p11kms-stream:v1:";

/* --- the header ------------------------------------------------------------ */

static void put_be(uint8_t *p, uint64_t v, size_t n)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(v >> (8 * (n - 1 - i)));
}

static uint64_t get_be(const uint8_t *p, size_t n)
{
	uint64_t v = 0;
	for (size_t i = 0; i < n; i++)
		v = v << 8 | p[i];
	return v;
}

/* A length-prefixed field (lenbytes 1 or 2) of 1..max bytes. */
static const uint8_t *take_field(rd_t *c, size_t lenbytes, size_t max, size_t *n)
{
	const uint8_t *l = rd_take(c, lenbytes);
	*n = l ? (size_t)get_be(l, lenbytes) : 0;
	if (!l || *n == 0 || *n > max) {
		c->failed = true;
		return NULL;
	}
	return rd_take(c, *n);
}

/* A text field: printable ASCII only, so it can be named in messages. */
static bool take_text(rd_t *c, size_t lenbytes, size_t max, char *out)
{
	size_t n;
	const uint8_t *v = take_field(c, lenbytes, max, &n);
	if (!v)
		return false;
	for (size_t i = 0; i < n; i++)
		if (v[i] < 0x20 || v[i] > 0x7e) {
			c->failed = true;
			return false;
		}
	memcpy(out, v, n);
	out[n] = 0;
	return true;
}

bool stream_hdr_parse(const uint8_t *buf, size_t len, stream_hdr *h, char *why, size_t whylen)
{
	memset(h, 0, offsetof(stream_hdr, raw));
	if (len < STREAM_MAGIC_LEN || memcmp(buf, STREAM_MAGIC, STREAM_MAGIC_LEN) != 0) {
		snprintf(why, whylen, "not a p11kms encrypted file (no p11kmsST header)");
		return false;
	}
	if (len > STREAM_MAGIC_LEN && buf[8] != STREAM_VERSION) {
		snprintf(why, whylen, "format version %u is not supported (this p11kms reads %u)",
			 buf[8], STREAM_VERSION);
		return false;
	}
	if (len < STREAM_FIXED_LEN || len > STREAM_HDR_MAX || get_be(buf + 9, 2) != len) {
		snprintf(why, whylen, "damaged header (bad header length)");
		return false;
	}
	if (buf[11] != STREAM_ALG_AES256GCM) {
		snprintf(why, whylen, "unknown algorithm %u in the header", buf[11]);
		return false;
	}
	h->seg_size = (uint32_t)get_be(buf + 12, 4);
	if (h->seg_size < STREAM_SEG_MIN || h->seg_size > STREAM_SEG_MAX) {
		snprintf(why, whylen, "damaged header (segment size %u out of range)", h->seg_size);
		return false;
	}
	memcpy(h->prefix, buf + 16, STREAM_PREFIX_LEN);
	rd_t c;
	rd_init(&c, buf, len);
	(void)rd_take(&c, STREAM_FIXED_LEN);
	size_t wl = 0;
	if (take_text(&c, 1, STREAM_NAME_MAX, h->provider) &&
	    take_text(&c, 1, STREAM_NAME_MAX, h->type) &&
	    take_text(&c, 2, STREAM_KEY_ID_MAX, h->key_id) &&
	    take_text(&c, 1, STREAM_NAME_MAX, h->key_version))
		h->wrapped = take_field(&c, 2, STREAM_WRAPPED_MAX, &wl);
	if (c.failed || c.off != len) {
		snprintf(why, whylen, "damaged header (bad field)");
		return false;
	}
	h->wrapped_len = wl;
	if (h->raw != buf)
		memcpy(h->raw, buf, len);
	h->wrapped = h->raw + (h->wrapped - buf);
	h->len = len;
	return true;
}

static size_t put_field(uint8_t *p, size_t lenbytes, const void *v, size_t n)
{
	put_be(p, n, lenbytes);
	memcpy(p + lenbytes, v, n);
	return lenbytes + n;
}

/* The fixed part, provider, type and key id: the header up to the key
 * version. The header length is not known yet and is left zero here. */
static size_t hdr_head(const stream_hdr *h, uint8_t *p)
{
	memcpy(p, STREAM_MAGIC, STREAM_MAGIC_LEN);
	p[8] = STREAM_VERSION;
	put_be(p + 9, 0, 2);
	p[11] = STREAM_ALG_AES256GCM;
	put_be(p + 12, h->seg_size, 4);
	memcpy(p + 16, h->prefix, STREAM_PREFIX_LEN);
	size_t n = STREAM_FIXED_LEN;
	n += put_field(p + n, 1, h->provider, strlen(h->provider));
	n += put_field(p + n, 1, h->type, strlen(h->type));
	n += put_field(p + n, 2, h->key_id, strlen(h->key_id));
	return n;
}

size_t stream_kms_aad(const stream_hdr *h, uint8_t *aad)
{
	uint8_t head[STREAM_HDR_MAX];
	size_t n = hdr_head(h, head);
	size_t l = sizeof(kms_aad_label) - 1;
	memcpy(aad, kms_aad_label, l);
	/* Without magic, version and header length: label, then alg onwards. */
	memcpy(aad + l, head + 11, n - 11);
	return l + n - 11;
}

bool stream_hdr_build(stream_hdr *h, const uint8_t *wrapped, size_t wl)
{
	size_t kvl = strlen(h->key_version);
	size_t n = hdr_head(h, h->raw);
	if (kvl == 0 || kvl > STREAM_NAME_MAX || wl == 0 || wl > STREAM_WRAPPED_MAX ||
	    n + 1 + kvl + 2 + wl > STREAM_HDR_MAX)
		return false;
	n += put_field(h->raw + n, 1, h->key_version, kvl);
	h->wrapped = h->raw + n + 2;
	h->wrapped_len = wl;
	n += put_field(h->raw + n, 2, wrapped, wl);
	put_be(h->raw + 9, n, 2);
	h->len = n;
	return true;
}

/* --- I/O ------------------------------------------------------------------- */

/* Read until n bytes or end of input: the count, or -1. */
static ssize_t read_full(int fd, uint8_t *p, size_t n)
{
	size_t got = 0;
	while (got < n) {
		ssize_t r = read(fd, p + got, n - got);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -1;
		if (r == 0)
			break;
		got += (size_t)r;
	}
	return (ssize_t)got;
}

static bool write_full(int fd, const uint8_t *p, size_t n)
{
	while (n) {
		ssize_t w = write(fd, p, n);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return false;
		p += w;
		n -= (size_t)w;
	}
	return true;
}

/* One line on stderr, prefixed "p11kms: CMD: ". */
static const char *cmd_name = "stream";
static void err_line(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static void err_line(const char *fmt, ...)
{
	char msg[1024];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	for (char *c = msg; *c; c++) /* a provider's message stays on one line */
		if (*c == '\n' || *c == '\r')
			*c = ' ';
	fprintf(stderr, "p11kms: %s: %s\n", cmd_name, msg);
}

/* --- progress (stderr, only on a terminal) --------------------------------- */

typedef struct progress {
	bool on;
	uint64_t total, done; /* total 0: unknown */
	struct timespec start, last;
} progress;

static double since(const struct timespec *a, const struct timespec *b)
{
	return (double)(b->tv_sec - a->tv_sec) + (double)(b->tv_nsec - a->tv_nsec) / 1e9;
}

static void progress_start(progress *p, bool on, int in)
{
	struct stat sb;
	memset(p, 0, sizeof(*p));
	p->on = on && isatty(STDERR_FILENO);
	if (fstat(in, &sb) == 0 && S_ISREG(sb.st_mode))
		p->total = (uint64_t)sb.st_size;
	clock_gettime(CLOCK_MONOTONIC, &p->start);
	p->last = p->start;
}

static void progress_show(progress *p, uint64_t add, bool end)
{
	p->done += add;
	if (!p->on)
		return;
	struct timespec now;
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (!end && since(&p->last, &now) < 0.25)
		return;
	p->last = now;
	double t = since(&p->start, &now), mib = (double)p->done / 1048576.0;
	if (p->total)
		fprintf(stderr, "\r%s: %.1f of %.1f MiB (%u%%), %.0f MiB/s ", cmd_name, mib,
			(double)p->total / 1048576.0,
			(unsigned)(p->done * 100 / (p->total ? p->total : 1)),
			t > 0 ? mib / t : 0.0);
	else
		fprintf(stderr, "\r%s: %.1f MiB, %.0f MiB/s ", cmd_name, mib,
			t > 0 ? mib / t : 0.0);
	if (end)
		fprintf(stderr, "\r\033[K");
}

/* --- segments -------------------------------------------------------------- */

/* The next segment of a stream read with one byte of look-ahead: b holds
 * full + 1 bytes, *have what is in it (the byte read ahead). *n is the
 * segment's length; *last when the input ended within full + 1 bytes.
 * false on a read error (errno). */
static bool next_segment(int in, uint8_t *b, size_t full, size_t *have, size_t *n, bool *last)
{
	if (*have) { /* the previous segment was full and a byte followed it */
		b[0] = b[full];
		*have = 1;
	}
	ssize_t r = read_full(in, b + *have, full + 1 - *have);
	if (r < 0)
		return false;
	*have += (size_t)r;
	*last = *have <= full;
	*n = *last ? *have : full;
	return true;
}

static void seg_nonce(const stream_hdr *h, uint32_t i, bool last, uint8_t n[GCM_NONCE_LEN])
{
	memcpy(n, h->prefix, STREAM_PREFIX_LEN);
	put_be(n + STREAM_PREFIX_LEN, i, 4);
	n[11] = last ? 1 : 0;
}

/* out = GCM(key, nonce(i, last), AAD = header, in) | tag. */
static bool seg_seal(EVP_CIPHER_CTX *c, const stream_hdr *h, uint32_t i, bool last,
		     const uint8_t *in, size_t n, uint8_t *out)
{
	uint8_t nonce[GCM_NONCE_LEN];
	int l = 0, l2 = 0;
	seg_nonce(h, i, last, nonce);
	return EVP_EncryptInit_ex2(c, NULL, NULL, nonce, NULL) == 1 &&
	       EVP_EncryptUpdate(c, NULL, &l, h->raw, (int)h->len) == 1 &&
	       (n == 0 || EVP_EncryptUpdate(c, out, &l, in, (int)n) == 1) &&
	       EVP_EncryptFinal_ex(c, out + n, &l2) == 1 &&
	       EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_GET_TAG, STREAM_TAG_LEN, out + n) == 1;
}

/* in = ciphertext | tag (n bytes, n >= STREAM_TAG_LEN) -> out. */
static bool seg_open(EVP_CIPHER_CTX *c, const stream_hdr *h, uint32_t i, bool last,
		     const uint8_t *in, size_t n, uint8_t *out)
{
	uint8_t nonce[GCM_NONCE_LEN], tag[STREAM_TAG_LEN];
	size_t ct = n - STREAM_TAG_LEN;
	int l = 0;
	seg_nonce(h, i, last, nonce);
	memcpy(tag, in + ct, STREAM_TAG_LEN);
	return EVP_DecryptInit_ex2(c, NULL, NULL, nonce, NULL) == 1 &&
	       EVP_DecryptUpdate(c, NULL, &l, h->raw, (int)h->len) == 1 &&
	       (ct == 0 || EVP_DecryptUpdate(c, out, &l, in, (int)ct) == 1) &&
	       EVP_CIPHER_CTX_ctrl(c, EVP_CTRL_AEAD_SET_TAG, STREAM_TAG_LEN, tag) == 1 &&
	       EVP_DecryptFinal_ex(c, out + ct, &l) == 1;
}

static EVP_CIPHER_CTX *gcm_ctx(const uint8_t *key, bool enc)
{
	const EVP_CIPHER *ciph = crypto_cipher(CIPH_AES_GCM, STREAM_KEY_LEN);
	EVP_CIPHER_CTX *c = ciph ? EVP_CIPHER_CTX_new() : NULL;
	if (c && (enc ? EVP_EncryptInit_ex2(c, ciph, key, NULL, NULL)
		      : EVP_DecryptInit_ex2(c, ciph, key, NULL, NULL)) != 1) {
		EVP_CIPHER_CTX_free(c);
		c = NULL;
	}
	return c;
}

/* Every segment but the last holds exactly seg_size bytes; the last holds
 * 1..seg_size (0 only when the whole input is empty). One byte of
 * look-ahead tells the last. */
int stream_encrypt_fd(int in, int out, const stream_hdr *h, const uint8_t *key, bool progress_on)
{
	size_t seg = h->seg_size;
	uint8_t *ib = malloc(seg + 1), *ob = malloc(seg + STREAM_TAG_LEN);
	EVP_CIPHER_CTX *c = gcm_ctx(key, true);
	int rc = STREAM_EXIT_OK;
	progress pr;
	progress_start(&pr, progress_on, in);
	if (!ib || !ob || !c) {
		err_line("out of memory or no AES-256-GCM");
		rc = STREAM_EXIT_IO;
	}
	if (rc == STREAM_EXIT_OK && !write_full(out, h->raw, h->len)) {
		err_line("cannot write the output: %s", strerror(errno));
		rc = STREAM_EXIT_IO;
	}
	size_t have = 0, n = 0;
	bool last = false;
	for (uint64_t i = 0; rc == STREAM_EXIT_OK && !last; i++) {
		if (!next_segment(in, ib, seg, &have, &n, &last)) {
			err_line("cannot read the input: %s", strerror(errno));
			rc = STREAM_EXIT_IO;
		} else if (i > UINT32_MAX) {
			err_line("input too large for segments of %zu bytes (2^32 segments)", seg);
			rc = STREAM_EXIT_INPUT;
		} else if (!seg_seal(c, h, (uint32_t)i, last, ib, n, ob)) {
			err_line("AES-256-GCM failed");
			rc = STREAM_EXIT_IO;
		} else if (!write_full(out, ob, n + STREAM_TAG_LEN)) {
			err_line("cannot write the output: %s", strerror(errno));
			rc = STREAM_EXIT_IO;
		}
		progress_show(&pr, n, last || rc != STREAM_EXIT_OK);
	}
	EVP_CIPHER_CTX_free(c);
	if (ib)
		OPENSSL_cleanse(ib, seg + 1);
	free(ib);
	free(ob);
	return rc;
}

/* Read the header from in into h. */
static int read_header(int in, const char *name, stream_hdr *h)
{
	char why[200];
	uint8_t *b = h->raw;
	ssize_t r = read_full(in, b, 11);
	if (r < 0) {
		err_line("%s: cannot read: %s", name, strerror(errno));
		return STREAM_EXIT_IO;
	}
	size_t want = r == 11 ? (size_t)get_be(b + 9, 2) : 0;
	if (r == 11 && memcmp(b, STREAM_MAGIC, STREAM_MAGIC_LEN) == 0 && b[8] == STREAM_VERSION &&
	    want > 11 && want <= STREAM_HDR_MAX) {
		ssize_t r2 = read_full(in, b + 11, want - 11);
		if (r2 < 0) {
			err_line("%s: cannot read: %s", name, strerror(errno));
			return STREAM_EXIT_IO;
		}
		if ((size_t)r2 != want - 11) {
			err_line("%s: truncated in its header", name);
			return STREAM_EXIT_INPUT;
		}
		r = (ssize_t)want;
	} else if (r == 11 && memcmp(b, STREAM_MAGIC, STREAM_MAGIC_LEN) == 0 &&
		   b[8] == STREAM_VERSION) {
		err_line("%s: damaged header (bad header length)", name);
		return STREAM_EXIT_INPUT;
	} else if (r < 11 && memcmp(b, STREAM_MAGIC, r < STREAM_MAGIC_LEN ? (size_t)r : STREAM_MAGIC_LEN) == 0) {
		err_line("%s: %s", name,
			 r ? "truncated in its header" : "empty input, not a p11kms encrypted file");
		return STREAM_EXIT_INPUT;
	}
	if (!stream_hdr_parse(b, (size_t)r, h, why, sizeof(why))) {
		err_line("%s: %s", name, why);
		return STREAM_EXIT_INPUT;
	}
	return STREAM_EXIT_OK;
}

int stream_decrypt_fd(int in, int out, const char *name, stream_key_fn open_key, void *arg,
		      bool progress_on)
{
	stream_hdr *h = malloc(sizeof(*h));
	uint8_t *key = sec_alloc(STREAM_KEY_LEN);
	int rc = h && key ? read_header(in, name, h) : STREAM_EXIT_IO;
	if (!h || !key)
		err_line("out of memory");
	if (rc == STREAM_EXIT_OK)
		rc = open_key(arg, h, key);
	size_t seg = rc == STREAM_EXIT_OK ? h->seg_size : 0, full = seg + STREAM_TAG_LEN;
	uint8_t *ib = rc == STREAM_EXIT_OK ? malloc(full + 1) : NULL;
	uint8_t *ob = rc == STREAM_EXIT_OK ? malloc(seg ? seg : 1) : NULL;
	EVP_CIPHER_CTX *c = rc == STREAM_EXIT_OK ? gcm_ctx(key, false) : NULL;
	sec_free(key);
	if (rc == STREAM_EXIT_OK && (!ib || !ob || !c)) {
		err_line("out of memory or no AES-256-GCM");
		rc = STREAM_EXIT_IO;
	}
	progress pr;
	progress_start(&pr, progress_on, in);
	size_t have = 0, n = 0;
	bool last = false;
	for (uint64_t i = 0; rc == STREAM_EXIT_OK && !last; i++) {
		if (!next_segment(in, ib, full, &have, &n, &last)) {
			err_line("%s: cannot read: %s", name, strerror(errno));
			rc = STREAM_EXIT_IO;
		} else if (i > UINT32_MAX) {
			err_line("%s: more than 2^32 segments: not a stream p11kms made", name);
			rc = STREAM_EXIT_INPUT;
		} else if (n == 0) { /* only at segment 0: later ones follow a byte read ahead */
			err_line("%s: truncated after its header (no segment)", name);
			rc = STREAM_EXIT_INPUT;
		} else if (n < STREAM_TAG_LEN) {
			err_line("%s: truncated in segment %llu", name, (unsigned long long)i);
			rc = STREAM_EXIT_INPUT;
		} else if (seg_open(c, h, (uint32_t)i, last, ib, n, ob)) {
			/* The last segment is empty only in an empty stream. */
			if (last && n == STREAM_TAG_LEN && i > 0) {
				err_line("%s: an empty final segment after segment %llu: not a "
					 "stream p11kms made",
					 name, (unsigned long long)i - 1);
				rc = STREAM_EXIT_INPUT;
			}
		} else if (last && n == full && seg_open(c, h, (uint32_t)i, false, ib, n, ob)) {
			err_line("%s: truncated: it ends after segment %llu, without its final "
				 "segment",
				 name, (unsigned long long)i);
			rc = STREAM_EXIT_INPUT;
		} else if (!last && seg_open(c, h, (uint32_t)i, true, ib, n, ob)) {
			err_line("%s: data after the final segment (%llu): appended or from "
				 "another file",
				 name, (unsigned long long)i);
			rc = STREAM_EXIT_INPUT;
		} else if (i == 0) {
			err_line("%s: the first segment does not authenticate: the file is "
				 "damaged, or its header is from another file",
				 name);
			rc = STREAM_EXIT_INPUT;
		} else {
			err_line("%s: segment %llu does not authenticate: %s", name,
				 (unsigned long long)i,
				 last && n < full ? "the file is truncated or damaged"
						  : "damaged, reordered, duplicated or from "
						    "another file");
			rc = STREAM_EXIT_INPUT;
		}
		if (rc == STREAM_EXIT_OK && !write_full(out, ob, n - STREAM_TAG_LEN)) {
			err_line("cannot write the output: %s", strerror(errno));
			rc = STREAM_EXIT_IO;
		}
		progress_show(&pr, n - (n >= STREAM_TAG_LEN ? STREAM_TAG_LEN : n),
			      last || rc != STREAM_EXIT_OK);
	}
	EVP_CIPHER_CTX_free(c);
	if (ob)
		OPENSSL_cleanse(ob, seg ? seg : 1);
	free(ib);
	free(ob);
	free(h);
	return rc;
}

/* --- the module core ------------------------------------------------------- */

static CK_FUNCTION_LIST_PTR fl;

/* Initialize the module core as a PKCS#11 consumer would (no network:
 * C_Initialize only reads the configuration and builds the providers). */
static int core_init(const char *cfgpath)
{
	fl = tool_module_start(cfgpath);
	return fl ? STREAM_EXIT_OK : STREAM_EXIT_CONFIG; /* it said why */
}

static void core_fini(void)
{
	if (fl)
		(void)fl->C_Finalize(NULL);
	fl = NULL;
}

/* The token of a slot given by provider name or slot id. Tokens' cfg and
 * prov are immutable between C_Initialize and C_Finalize; the lock is
 * taken for the table walk anyway. */
static const token_t *token_named(const char *name)
{
	const token_t *t = NULL;
	char *end;
	unsigned long long id = strtoull(name, &end, 10);
	bool numeric = *name && !*end;
	pthread_mutex_lock(&slots.lock);
	for (size_t i = 0; i < slots.ntokens && !t; i++)
		if (strcmp(slots.tokens[i].cfg->name, name) == 0 ||
		    (numeric && slots.tokens[i].slot_id == id))
			t = &slots.tokens[i];
	pthread_mutex_unlock(&slots.lock);
	return t;
}

static const char *err_words(p11k_err e)
{
	switch (e) {
	case P11K_ERR_KEY_DISABLED:
		return "is disabled or pending deletion";
	case P11K_ERR_KEY_NOT_FOUND:
		return "is not found or destroyed";
	case P11K_ERR_ACCESS_DENIED:
		return "is not accessible (access denied)";
	case P11K_ERR_UNREACHABLE:
	case P11K_ERR_THROTTLED:
		return "cannot be reached (the KMS is unreachable or throttling)";
	case P11K_ERR_INVALID_CIPHERTEXT:
		return "does not open this file's data key (the header is damaged, or "
		       "from another file or key)";
	default:
		return "failed";
	}
}

static void status_detail(const provider_status *st, char *out, size_t n)
{
	snprintf(out, n, "%s%s%s%s%s", st->error_name[0] || st->message[0] ? " (" : "",
		 st->error_name, st->error_name[0] && st->message[0] ? ": " : "", st->message,
		 st->error_name[0] || st->message[0] ? ")" : "");
}

/* stream_key_fn for the real KMS: the provider the header names. */
static int kms_open_key(void *arg, const stream_hdr *h, uint8_t *key)
{
	(void)arg;
	const token_t *t = NULL;
	pthread_mutex_lock(&slots.lock);
	for (size_t i = 0; i < slots.ntokens && !t; i++)
		if (strcmp(slots.tokens[i].cfg->name, h->provider) == 0)
			t = &slots.tokens[i];
	pthread_mutex_unlock(&slots.lock);
	if (!t) {
		err_line("this file needs provider \"%s\" (%s) key %s version %s, which the "
			 "configuration does not have",
			 h->provider, h->type, h->key_id, h->key_version);
		return STREAM_EXIT_CONFIG;
	}
	if (strcmp(t->cfg->ops->type, h->type) != 0) {
		err_line("this file needs provider \"%s\" of type %s; the configuration's "
			 "\"%s\" is of type %s",
			 h->provider, h->type, h->provider, t->cfg->ops->type);
		return STREAM_EXIT_CONFIG;
	}
	uint8_t aad[STREAM_HDR_MAX];
	size_t aadlen = stream_kms_aad(h, aad);
	provider_status st = {0};
	uint8_t *pt = NULL;
	size_t ptlen = 0;
	p11k_err e = audit_decrypt(t->cfg, t->prov, h->key_id, h->key_version, h->wrapped,
				   h->wrapped_len, aad, aadlen, &pt, &ptlen, &st);
	if (e == P11K_OK && ptlen != STREAM_KEY_LEN)
		e = P11K_ERR_INVALID_CIPHERTEXT;
	if (e != P11K_OK) {
		char d[400];
		status_detail(&st, d, sizeof(d));
		err_line("provider \"%s\" key %s version %s %s%s: this file needs that version "
			 "enabled and accessible",
			 h->provider, h->key_id, h->key_version, err_words(e), d);
		sec_free(pt);
		return e == P11K_ERR_INVALID_CIPHERTEXT ? STREAM_EXIT_INPUT : STREAM_EXIT_KMS;
	}
	memcpy(key, pt, STREAM_KEY_LEN);
	sec_free(pt);
	return STREAM_EXIT_OK;
}

/* --- the commands ---------------------------------------------------------- */

/* Where output goes: a temporary file beside OUT, renamed when done. */
static char tmp_path[PATH_MAX + 16];
static volatile sig_atomic_t tmp_live;

static void on_signal(int sig)
{
	if (tmp_live)
		unlink(tmp_path);
	signal(sig, SIG_DFL);
	raise(sig);
}

static int out_open(const char *out, int *fd)
{
	if (!out) {
		*fd = STDOUT_FILENO;
		return STREAM_EXIT_OK;
	}
	if (strlen(out) > PATH_MAX - 1) {
		err_line("%s: path too long", out);
		return STREAM_EXIT_INPUT;
	}
	snprintf(tmp_path, sizeof(tmp_path), "%s.tmp.XXXXXX", out);
	signal(SIGINT, on_signal);
	signal(SIGTERM, on_signal);
	signal(SIGHUP, on_signal);
	*fd = mkstemp(tmp_path); /* mode 0600 */
	if (*fd < 0) {
		err_line("%s: cannot create %s: %s", out, tmp_path, strerror(errno));
		return STREAM_EXIT_IO;
	}
	tmp_live = 1;
	return STREAM_EXIT_OK;
}

/* Finish (rc 0: fsync, rename over out, fsync its folder) or discard. */
static int out_close(const char *out, int fd, int rc)
{
	if (!out)
		return rc;
	if (rc == STREAM_EXIT_OK && fsync(fd) != 0) {
		err_line("%s: %s", tmp_path, strerror(errno));
		rc = STREAM_EXIT_IO;
	}
	if (close(fd) != 0 && rc == STREAM_EXIT_OK) {
		err_line("%s: %s", tmp_path, strerror(errno));
		rc = STREAM_EXIT_IO;
	}
	if (rc == STREAM_EXIT_OK && rename(tmp_path, out) != 0) {
		err_line("cannot rename %s to %s: %s", tmp_path, out, strerror(errno));
		rc = STREAM_EXIT_IO;
	}
	if (rc != STREAM_EXIT_OK)
		unlink(tmp_path);
	tmp_live = 0;
	if (rc == STREAM_EXIT_OK) {
		char dir[PATH_MAX];
		snprintf(dir, sizeof(dir), "%s", out);
		char *slash = strrchr(dir, '/');
		if (slash)
			*(slash == dir ? slash + 1 : slash) = 0;
		int dfd = open(slash ? dir : ".", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
		if (dfd >= 0) {
			(void)fsync(dfd);
			close(dfd);
		}
	}
	return rc;
}

static int in_open(const char *in, int *fd)
{
	if (!in) {
		*fd = STDIN_FILENO;
		return STREAM_EXIT_OK;
	}
	*fd = open(in, O_RDONLY | O_CLOEXEC);
	if (*fd < 0) {
		err_line("%s: %s", in, strerror(errno));
		return errno == ENOENT ? STREAM_EXIT_INPUT : STREAM_EXIT_IO;
	}
	return STREAM_EXIT_OK;
}

typedef struct opts {
	const char *slot, *config, *in, *out;
	uint32_t seg;
	bool quiet;
} opts;

/* A usage error: one line, with the synopsis. */
static int stream_usage(bool enc, const char *what, const char *arg)
{
	err_line("%s%s; usage: %s", what, arg, enc ? STREAM_ENCRYPT_SYNOPSIS : STREAM_DECRYPT_SYNOPSIS);
	return STREAM_EXIT_USAGE;
}

static int parse_opts(int argc, char **argv, bool enc, opts *o)
{
	memset(o, 0, sizeof(*o));
	o->seg = STREAM_SEG_DEFAULT;
	int npos = 0;
	bool dashdash = false;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
		if (!dashdash && strcmp(a, "--") == 0) {
			dashdash = true;
		} else if (!dashdash && (strcmp(a, "--help") == 0 || strcmp(a, "-h") == 0)) {
			printf("usage: %s\n\n%s", enc ? STREAM_ENCRYPT_SYNOPSIS
						      : STREAM_DECRYPT_SYNOPSIS,
			       enc ? STREAM_ENCRYPT_HELP : STREAM_DECRYPT_HELP);
			return -1;
		} else if (!dashdash && (strcmp(a, "--quiet") == 0 || strcmp(a, "-q") == 0)) {
			o->quiet = true;
		} else if (!dashdash && strcmp(a, "--config") == 0 && i + 1 < argc) {
			o->config = argv[++i];
		} else if (!dashdash && enc && strcmp(a, "--slot") == 0 && i + 1 < argc) {
			o->slot = argv[++i];
		} else if (!dashdash && enc && strcmp(a, "--segment-size") == 0 && i + 1 < argc) {
			char *end;
			errno = 0;
			unsigned long long v = strtoull(argv[++i], &end, 10);
			if (errno || *end || !*argv[i] || v < STREAM_SEG_MIN || v > STREAM_SEG_MAX) {
				err_line("--segment-size: a number of bytes from %u to %u",
					 STREAM_SEG_MIN, STREAM_SEG_MAX);
				return STREAM_EXIT_USAGE;
			}
			o->seg = (uint32_t)v;
		} else if (!dashdash && a[0] == '-' && a[1]) {
			return stream_usage(enc, "unknown option ", a);
		} else if (npos < 2) {
			const char *v = strcmp(a, "-") == 0 ? NULL : a;
			if (npos++ == 0)
				o->in = v;
			else
				o->out = v;
		} else {
			return stream_usage(enc, "too many arguments at ", a);
		}
	}
	if (enc && !o->slot)
		return stream_usage(enc, "--slot NAME is required", "");
	return STREAM_EXIT_OK;
}

static int cmd_encrypt(const opts *o)
{
	if (!o->out && isatty(STDOUT_FILENO)) {
		err_line("refusing to write encrypted data to a terminal (give OUT, or redirect)");
		return STREAM_EXIT_INPUT;
	}
	int rc = core_init(o->config);
	if (rc != STREAM_EXIT_OK)
		return rc;
	const token_t *t = token_named(o->slot);
	seal_target tg = {0};
	stream_hdr *h = calloc(1, sizeof(*h));
	uint8_t *key = sec_alloc(STREAM_KEY_LEN);
	if (!h || !key) {
		err_line("out of memory");
		rc = STREAM_EXIT_IO;
	} else if (!t) {
		err_line("no slot \"%s\" in the configuration", o->slot);
		rc = STREAM_EXIT_CONFIG;
	} else if (!seal_target_of(t, 0, &tg)) {
		err_line("slot \"%s\" has no usable sealing key", o->slot);
		rc = STREAM_EXIT_CONFIG;
	} else if (strlen(tg.cfg->name) > STREAM_NAME_MAX ||
		   strlen(tg.cfg->ops->type) > STREAM_NAME_MAX ||
		   strlen(tg.key_id) > STREAM_KEY_ID_MAX) {
		err_line("slot \"%s\": provider name or key id too long for the header", o->slot);
		rc = STREAM_EXIT_CONFIG;
	} else if (!crypto_random(key, STREAM_KEY_LEN) ||
		   !crypto_random(h->prefix, STREAM_PREFIX_LEN)) {
		err_line("no randomness available");
		rc = STREAM_EXIT_IO;
	}
	int in = -1, out = -1;
	if (rc == STREAM_EXIT_OK) {
		h->seg_size = o->seg;
		snprintf(h->provider, sizeof(h->provider), "%s", tg.cfg->name);
		snprintf(h->type, sizeof(h->type), "%s", tg.cfg->ops->type);
		snprintf(h->key_id, sizeof(h->key_id), "%s", tg.key_id);
		rc = in_open(o->in, &in);
	}
	if (rc == STREAM_EXIT_OK) {
		uint8_t *aad = malloc(STREAM_HDR_MAX), *blob = NULL;
		size_t bloblen = 0, aadlen = aad ? stream_kms_aad(h, aad) : 0;
		provider_status st = {0};
		p11k_err e = aad ? audit_encrypt(tg.cfg, tg.prov, tg.key_id, key, STREAM_KEY_LEN, aad,
						 aadlen, &blob, &bloblen, h->key_version,
						 sizeof(h->key_version), &st)
				 : P11K_ERR_NOMEM;
		if (e != P11K_OK) {
			char d[400];
			status_detail(&st, d, sizeof(d));
			err_line("provider \"%s\" key %s %s%s: cannot wrap the data key", h->provider,
				 h->key_id, err_words(e), d);
			rc = STREAM_EXIT_KMS;
		} else if (!stream_hdr_build(h, blob, bloblen)) {
			err_line("the KMS's wrapped key or key version does not fit the header");
			rc = STREAM_EXIT_KMS;
		}
		free(blob);
		free(aad);
	}
	if (rc == STREAM_EXIT_OK)
		rc = out_open(o->out, &out);
	if (rc == STREAM_EXIT_OK)
		rc = out_close(o->out, out, stream_encrypt_fd(in, out, h, key, !o->quiet));
	if (in > STDIN_FILENO)
		close(in);
	sec_free(key);
	free(h);
	core_fini();
	return rc;
}

static int cmd_decrypt(const opts *o)
{
	int rc = core_init(o->config), in = -1, out = -1;
	if (rc == STREAM_EXIT_OK)
		rc = in_open(o->in, &in);
	if (rc == STREAM_EXIT_OK)
		rc = out_open(o->out, &out);
	if (rc == STREAM_EXIT_OK)
		rc = out_close(o->out, out,
			       stream_decrypt_fd(in, out, o->in ? o->in : "stdin", kms_open_key,
						 NULL, !o->quiet));
	if (in > STDIN_FILENO)
		close(in);
	core_fini();
	return rc;
}

int stream_main(int argc, char **argv)
{
	bool enc = strcmp(argv[0], "encrypt") == 0;
	cmd_name = enc ? "encrypt" : "decrypt";
	opts o;
	int rc = parse_opts(argc, argv, enc, &o);
	if (rc < 0)
		return STREAM_EXIT_OK; /* --help */
	if (rc != STREAM_EXIT_OK)
		return rc;
	/* A closed stdout (EPIPE) is an I/O error with a message, not a kill. */
	signal(SIGPIPE, SIG_IGN);
	return enc ? cmd_encrypt(&o) : cmd_decrypt(&o);
}
