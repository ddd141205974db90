/* SPDX-License-Identifier: Apache-2.0 */
/*
 * p11bench: load any PKCS#11 module by path and run one named workload
 * against it, or run the same crypto directly with OpenSSL EVP (module
 * "openssl") as the raw baseline. One machine-readable TSV line per result:
 *
 *   impl  workload  size  threads  ops_per_s  MB_per_s  maxrss_kb  note
 *
 * ops_per_s is "n/a" when the module does not offer the mechanism (checked
 * with C_GetMechanismList) or the workload has no meaning for the
 * implementation, and "ERR" when a call failed (the note names the call
 * and its CK_RV; the exit status is then 1). The program knows nothing of
 * any module's internals.
 *
 * Build: gcc -O2 -o p11bench p11bench.c $(pkg-config --cflags p11-kit-1) \
 *          -ldl -lcrypto -lpthread
 * Usage: p11bench --module PATH|openssl [options] WORKLOAD
 *   see usage() below.
 */
#define _GNU_SOURCE
#include <p11-kit/pkcs11.h>

#include <dlfcn.h>
#include <errno.h>
#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/params.h>
#include <openssl/rand.h>

#ifndef CKM_AES_KEY_WRAP_KWP
#define CKM_AES_KEY_WRAP_KWP 0x0000210BUL /* PKCS#11 3.0, RFC 5649 */
#endif

/* ------------------------------------------------------------------ */
/* options and state                                                   */

static struct {
	const char *module;	/* path or "openssl" */
	const char *impl;	/* name printed in column 1 */
	const char *token;	/* token label to pick the slot, else first token */
	long slot;		/* explicit slot id, -1 = none */
	const char *pin;
	const char *so_pin;
	const char *init_string; /* CK_C_INITIALIZE_ARGS.pReserved */
	double seconds;		/* time box per measurement */
	long max_ops;		/* op cap per measurement */
	size_t size;
	size_t part;
	int threads;
	long count;		/* objects for populate/find */
	long first;		/* first index for populate */
	const char *prefix;	/* label prefix for populated objects */
	const char *shape;	/* find: which attributes the template has */
	int token_key;		/* cipher workloads: the data key is a token object */
	long hot;		/* find: pick among the first N objects only (0: all) */
	int cycles;		/* lifecycle cycles */
	const char *workload;
} opt = {
	.impl = NULL, .slot = -1, .pin = "123456", .so_pin = "12345678",
	.seconds = 1.0, .max_ops = 100000000L, .size = 4096, .part = 65536,
	.threads = 1, .count = 10000, .first = 0, .prefix = "bench-obj-", .shape = "label",
	.cycles = 7,
};

static int is_openssl;
static void *lib;
static CK_FUNCTION_LIST_PTR f;
static CK_SLOT_ID slot;
static CK_SESSION_HANDLE sess;
static int failed;

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static long maxrss_kb(void)
{
	struct rusage ru;
	getrusage(RUSAGE_SELF, &ru);
	return ru.ru_maxrss;
}

/* One result line. ops < 0: value given in 'word' ("n/a", "ERR"). */
static void result(const char *workload, size_t size, int threads, double ops,
		   size_t bytes_per_op, const char *word, const char *fmt, ...)
{
	char note[512] = "";
	if (fmt) {
		va_list ap;
		va_start(ap, fmt);
		vsnprintf(note, sizeof(note), fmt, ap);
		va_end(ap);
	}
	if (ops >= 0) {
		char mb[32] = "-";
		if (bytes_per_op)
			snprintf(mb, sizeof(mb), "%.1f", ops * (double)bytes_per_op / 1e6);
		printf("%s\t%s\t%zu\t%d\t%.1f\t%s\t%ld\t%s\n", opt.impl, workload, size,
		       threads, ops, mb, maxrss_kb(), note[0] ? note : "-");
	} else {
		printf("%s\t%s\t%zu\t%d\t%s\t-\t%ld\t%s\n", opt.impl, workload, size,
		       threads, word, maxrss_kb(), note[0] ? note : "-");
		if (!strcmp(word, "ERR"))
			failed = 1;
	}
	fflush(stdout);
}

/* A failed call: print an ERR line for the workload and leave. */
#define CK(call, name)                                                           \
	do {                                                                     \
		CK_RV rv_ = (call);                                              \
		if (rv_ != CKR_OK) {                                             \
			result(opt.workload, opt.size, opt.threads, -1, 0, "ERR",  \
			       "%s rv=0x%08lx", name, (unsigned long)rv_);       \
			return -1;                                               \
		}                                                                \
	} while (0)

static void die(const char *fmt, ...)
{
	va_list ap;
	va_start(ap, fmt);
	fprintf(stderr, "p11bench: ");
	vfprintf(stderr, fmt, ap);
	fprintf(stderr, "\n");
	va_end(ap);
	exit(2);
}

/* ------------------------------------------------------------------ */
/* module loading, slot, session                                       */

static CK_RV initialize(void)
{
	CK_C_INITIALIZE_ARGS args;
	memset(&args, 0, sizeof(args));
	args.flags = CKF_OS_LOCKING_OK;
	/* SoftHSM2 refuses a non-NULL pReserved: pass it only when asked. */
	args.pReserved = (void *)opt.init_string;
	return f->C_Initialize(&args);
}

static void load_module(void)
{
	lib = dlopen(opt.module, RTLD_NOW | RTLD_LOCAL);
	if (!lib)
		die("dlopen %s: %s", opt.module, dlerror());
	CK_C_GetFunctionList gfl = (CK_C_GetFunctionList)dlsym(lib, "C_GetFunctionList");
	if (!gfl)
		die("%s: no C_GetFunctionList", opt.module);
	CK_RV rv = gfl(&f);
	if (rv != CKR_OK)
		die("C_GetFunctionList rv=0x%08lx", (unsigned long)rv);
}

static int find_slot(CK_SLOT_ID *out)
{
	if (opt.slot >= 0) {
		*out = (CK_SLOT_ID)opt.slot;
		return 0;
	}
	CK_ULONG n = 0;
	CK_RV rv = f->C_GetSlotList(CK_TRUE, NULL, &n);
	if (rv != CKR_OK || n == 0)
		return -1;
	CK_SLOT_ID *ids = calloc(n, sizeof(*ids));
	if (f->C_GetSlotList(CK_TRUE, ids, &n) != CKR_OK) {
		free(ids);
		return -1;
	}
	int found = -1;
	for (CK_ULONG i = 0; i < n && found < 0; i++) {
		if (!opt.token) {
			*out = ids[i];
			found = 0;
			break;
		}
		CK_TOKEN_INFO ti;
		if (f->C_GetTokenInfo(ids[i], &ti) != CKR_OK)
			continue;
		char label[33];
		memcpy(label, ti.label, 32);
		label[32] = 0;
		for (int k = 31; k >= 0 && label[k] == ' '; k--)
			label[k] = 0;
		if (!strcmp(label, opt.token)) {
			*out = ids[i];
			found = 0;
		}
	}
	free(ids);
	return found;
}

static int mech_offered(CK_MECHANISM_TYPE m)
{
	static CK_MECHANISM_TYPE *list;
	static CK_ULONG n;
	if (is_openssl)
		return 1;
	if (!list) {
		if (f->C_GetMechanismList(slot, NULL, &n) != CKR_OK)
			return 0;
		list = calloc(n + 1, sizeof(*list));
		if (f->C_GetMechanismList(slot, list, &n) != CKR_OK)
			return 0;
	}
	for (CK_ULONG i = 0; i < n; i++)
		if (list[i] == m)
			return 1;
	return 0;
}

/* Open the benchmark session (RW) and log in as the user. */
static int open_and_login(CK_SESSION_HANDLE *s)
{
	CK(f->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, s),
	   "C_OpenSession");
	CK_RV rv = f->C_Login(*s, CKU_USER, (CK_UTF8CHAR_PTR)opt.pin, strlen(opt.pin));
	if (rv != CKR_OK && rv != CKR_USER_ALREADY_LOGGED_IN)
		CK(rv, "C_Login");
	return 0;
}

/* ------------------------------------------------------------------ */
/* keys                                                                */

static CK_BBOOL yes = CK_TRUE, no = CK_FALSE;

/* wrapping: a key that wraps and unwraps only; else one that encrypts and
 * decrypts (p11kms gives a key one role, docs/SECURITY.md). */
static int gen_aes_role(CK_SESSION_HANDLE s, CK_BBOOL token, const char *label,
			CK_OBJECT_HANDLE *key, const char *what, bool wrapping)
{
	CK_MECHANISM m = {CKM_AES_KEY_GEN, NULL, 0};
	CK_ULONG len = 32;
	CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
	CK_KEY_TYPE kt = CKK_AES;
	CK_ATTRIBUTE t[] = {
		{CKA_CLASS, &cls, sizeof(cls)},
		{CKA_KEY_TYPE, &kt, sizeof(kt)},
		{CKA_VALUE_LEN, &len, sizeof(len)},
		{CKA_TOKEN, &token, sizeof(token)},
		{CKA_PRIVATE, &yes, sizeof(yes)},
		{CKA_SENSITIVE, &yes, sizeof(yes)},
		{CKA_EXTRACTABLE, &yes, sizeof(yes)},
		{wrapping ? CKA_WRAP : CKA_ENCRYPT, &yes, sizeof(yes)},
		{wrapping ? CKA_UNWRAP : CKA_DECRYPT, &yes, sizeof(yes)},
		{CKA_LABEL, (void *)label, strlen(label)},
	};
	CK(f->C_GenerateKey(s, &m, t, sizeof(t) / sizeof(t[0]), key), what);
	return 0;
}

static int gen_aes(CK_SESSION_HANDLE s, CK_BBOOL token, const char *label,
		   CK_OBJECT_HANDLE *key, const char *what)
{
	return gen_aes_role(s, token, label, key, what, false);
}

static int create_hmac_key(CK_SESSION_HANDLE s, const unsigned char *val, size_t len,
			   CK_OBJECT_HANDLE *key)
{
	CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
	CK_KEY_TYPE kt = CKK_GENERIC_SECRET;
	CK_ATTRIBUTE t[] = {
		{CKA_CLASS, &cls, sizeof(cls)},
		{CKA_KEY_TYPE, &kt, sizeof(kt)},
		{CKA_TOKEN, &no, sizeof(no)},
		{CKA_PRIVATE, &yes, sizeof(yes)},
		{CKA_SENSITIVE, &yes, sizeof(yes)},
		{CKA_SIGN, &yes, sizeof(yes)},
		{CKA_VERIFY, &yes, sizeof(yes)},
		{CKA_VALUE, (void *)val, len},
	};
	CK(f->C_CreateObject(s, t, sizeof(t) / sizeof(t[0]), key), "C_CreateObject(hmac key)");
	return 0;
}

/* ------------------------------------------------------------------ */
/* time-boxed loop                                                     */

typedef int (*op_fn)(void *arg);

/* Warm up for a tenth of the time box, then run op until the time box or
 * the op cap is reached. Returns ops/s, or -1 when op failed. */
/* CPU time of the process (all threads), in seconds. */
static double cpu_now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

/* run_timed's CPU time per operation (ns): steadier than the rate on a
 * shared machine, where the wall clock also counts other jobs' time. */
static double cpu_ns_per_op;

static double run_timed(op_fn op, void *arg)
{
	double t0 = now(), warm = opt.seconds / 10;
	long w = 0;
	while (now() - t0 < warm && w < opt.max_ops / 10 + 1) {
		if (op(arg))
			return -1;
		w++;
	}
	long n = 0;
	t0 = now();
	double c0 = cpu_now();
	double t;
	do {
		if (op(arg))
			return -1;
		n++;
		t = now() - t0;
	} while (t < opt.seconds && n < opt.max_ops);
	cpu_ns_per_op = (cpu_now() - c0) * 1e9 / (double)n;
	return (double)n / t;
}

/* ------------------------------------------------------------------ */
/* PKCS#11 crypto workloads                                            */

typedef struct {
	CK_SESSION_HANDLE s;
	CK_OBJECT_HANDLE key;
	unsigned char *in, *out;
	size_t in_len, out_cap;
	unsigned char iv[16];
	uint64_t ctr;
	int decrypt;
	int multipart;
	/* OpenSSL */
	EVP_CIPHER_CTX *cctx;
	EVP_MAC_CTX *mctx;
	unsigned char tag[16];
} job;

static void next_iv(job *j)
{
	/* a fresh 96-bit IV per encryption: 4 fixed bytes and a counter */
	j->ctr++;
	memcpy(j->iv + 4, &j->ctr, 8);
}

#define OPFAIL(call, name)                                                      \
	do {                                                                    \
		CK_RV rv_ = (call);                                             \
		if (rv_ != CKR_OK) {                                            \
			result(opt.workload, opt.size, opt.threads, -1, 0, "ERR", \
			       "%s rv=0x%08lx", name, (unsigned long)rv_);      \
			return -1;                                              \
		}                                                               \
	} while (0)

static int p11_gcm_op(void *arg)
{
	job *j = arg;
	CK_GCM_PARAMS gp;
	memset(&gp, 0, sizeof(gp));
	if (!j->decrypt)
		next_iv(j);
	gp.pIv = j->iv;
	gp.ulIvLen = 12;
	gp.ulIvBits = 96;
	gp.ulTagBits = 128;
	CK_MECHANISM m = {CKM_AES_GCM, &gp, sizeof(gp)};
	CK_ULONG outlen = j->out_cap;
	if (!j->decrypt) {
		OPFAIL(f->C_EncryptInit(j->s, &m, j->key), "C_EncryptInit");
		if (!j->multipart) {
			OPFAIL(f->C_Encrypt(j->s, j->in, j->in_len, j->out, &outlen), "C_Encrypt");
			if (outlen != j->in_len + 16) {
				result(opt.workload, opt.size, opt.threads, -1, 0, "ERR",
				       "C_Encrypt returned %lu bytes", (unsigned long)outlen);
				return -1;
			}
			return 0;
		}
		size_t off = 0, o = 0;
		while (off < j->in_len) {
			size_t p = j->in_len - off < opt.part ? j->in_len - off : opt.part;
			outlen = j->out_cap - o;
			OPFAIL(f->C_EncryptUpdate(j->s, j->in + off, p, j->out + o, &outlen),
			       "C_EncryptUpdate");
			off += p;
			o += outlen;
		}
		outlen = j->out_cap - o;
		OPFAIL(f->C_EncryptFinal(j->s, j->out + o, &outlen), "C_EncryptFinal");
		if (o + outlen != j->in_len + 16) {
			result(opt.workload, opt.size, opt.threads, -1, 0, "ERR",
			       "multi-part GCM encryption returned %zu bytes", o + outlen);
			return -1;
		}
		return 0;
	}
	OPFAIL(f->C_DecryptInit(j->s, &m, j->key), "C_DecryptInit");
	if (!j->multipart) {
		OPFAIL(f->C_Decrypt(j->s, j->in, j->in_len, j->out, &outlen), "C_Decrypt");
		if (outlen != j->in_len - 16) {
			result(opt.workload, opt.size, opt.threads, -1, 0, "ERR",
			       "C_Decrypt returned %lu bytes", (unsigned long)outlen);
			return -1;
		}
		return 0;
	}
	size_t off = 0, o = 0;
	while (off < j->in_len) {
		size_t p = j->in_len - off < opt.part ? j->in_len - off : opt.part;
		outlen = j->out_cap - o;
		OPFAIL(f->C_DecryptUpdate(j->s, j->in + off, p, j->out + o, &outlen),
		       "C_DecryptUpdate");
		off += p;
		o += outlen;
	}
	outlen = j->out_cap - o;
	OPFAIL(f->C_DecryptFinal(j->s, j->out + o, &outlen), "C_DecryptFinal");
	if (o + outlen != j->in_len - 16) {
		result(opt.workload, opt.size, opt.threads, -1, 0, "ERR",
		       "multi-part GCM decryption returned %zu bytes", o + outlen);
		return -1;
	}
	return 0;
}

static int p11_cbcpad_op(void *arg)
{
	job *j = arg;
	CK_MECHANISM m = {CKM_AES_CBC_PAD, j->iv, 16};
	CK_ULONG outlen = j->out_cap;
	if (!j->decrypt) {
		OPFAIL(f->C_EncryptInit(j->s, &m, j->key), "C_EncryptInit");
		OPFAIL(f->C_Encrypt(j->s, j->in, j->in_len, j->out, &outlen), "C_Encrypt");
	} else {
		OPFAIL(f->C_DecryptInit(j->s, &m, j->key), "C_DecryptInit");
		OPFAIL(f->C_Decrypt(j->s, j->in, j->in_len, j->out, &outlen), "C_Decrypt");
	}
	return 0;
}

static int p11_hmac_op(void *arg)
{
	job *j = arg;
	CK_MECHANISM m = {CKM_SHA256_HMAC, NULL, 0};
	CK_ULONG outlen = 32;
	OPFAIL(f->C_SignInit(j->s, &m, j->key), "C_SignInit");
	OPFAIL(f->C_Sign(j->s, j->in, j->in_len, j->out, &outlen), "C_Sign");
	if (outlen != 32) {
		result(opt.workload, opt.size, opt.threads, -1, 0, "ERR",
		       "C_Sign returned %lu bytes", (unsigned long)outlen);
		return -1;
	}
	return 0;
}

/* ------------------------------------------------------------------ */
/* OpenSSL EVP baseline: the key schedule is set once, as an application
 * using OpenSSL directly for many messages under one key would do; each op
 * sets a fresh IV (GCM) or the IV (CBC) and processes one message. */

static int ossl_gcm_op(void *arg)
{
	job *j = arg;
	int l = 0, l2 = 0;
	if (!j->decrypt) {
		next_iv(j);
		if (!EVP_EncryptInit_ex(j->cctx, NULL, NULL, NULL, j->iv))
			return -1;
		if (!j->multipart) {
			if (!EVP_EncryptUpdate(j->cctx, j->out, &l, j->in, (int)j->in_len))
				return -1;
		} else {
			for (size_t off = 0; off < j->in_len; off += opt.part) {
				int pl = 0;
				size_t p = j->in_len - off < opt.part ? j->in_len - off : opt.part;
				if (!EVP_EncryptUpdate(j->cctx, j->out + l, &pl, j->in + off, (int)p))
					return -1;
				l += pl;
			}
		}
		if (!EVP_EncryptFinal_ex(j->cctx, j->out + l, &l2))
			return -1;
		if (!EVP_CIPHER_CTX_ctrl(j->cctx, EVP_CTRL_GCM_GET_TAG, 16, j->out + l + l2))
			return -1;
		return 0;
	}
	size_t clen = j->in_len - 16;
	if (!EVP_DecryptInit_ex(j->cctx, NULL, NULL, NULL, j->iv))
		return -1;
	if (!j->multipart) {
		if (!EVP_DecryptUpdate(j->cctx, j->out, &l, j->in, (int)clen))
			return -1;
	} else {
		for (size_t off = 0; off < clen; off += opt.part) {
			int pl = 0;
			size_t p = clen - off < opt.part ? clen - off : opt.part;
			if (!EVP_DecryptUpdate(j->cctx, j->out + l, &pl, j->in + off, (int)p))
				return -1;
			l += pl;
		}
	}
	if (!EVP_CIPHER_CTX_ctrl(j->cctx, EVP_CTRL_GCM_SET_TAG, 16, j->in + clen))
		return -1;
	if (EVP_DecryptFinal_ex(j->cctx, j->out + l, &l2) <= 0) {
		result(opt.workload, opt.size, opt.threads, -1, 0, "ERR",
		       "OpenSSL GCM tag check failed");
		return -1;
	}
	return 0;
}

static int p11_ctr_op(void *arg)
{
	job *j = arg;
	CK_AES_CTR_PARAMS p = {.ulCounterBits = 32};
	next_iv(j);
	memcpy(p.cb, j->iv, 12);
	CK_MECHANISM m = {CKM_AES_CTR, &p, sizeof(p)};
	CK_ULONG outlen = j->out_cap;
	OPFAIL(f->C_EncryptInit(j->s, &m, j->key), "C_EncryptInit");
	OPFAIL(f->C_Encrypt(j->s, j->in, j->in_len, j->out, &outlen), "C_Encrypt");
	return 0;
}

static int ossl_ctr_op(void *arg)
{
	job *j = arg;
	int l = 0, l2 = 0;
	uint8_t cb[16] = {0};
	next_iv(j);
	memcpy(cb, j->iv, 12);
	if (!EVP_EncryptInit_ex(j->cctx, NULL, NULL, NULL, cb) ||
	    !EVP_EncryptUpdate(j->cctx, j->out, &l, j->in, (int)j->in_len) ||
	    !EVP_EncryptFinal_ex(j->cctx, j->out + l, &l2))
		return -1;
	return 0;
}

static int ossl_cbcpad_op(void *arg)
{
	job *j = arg;
	int l = 0, l2 = 0;
	if (!j->decrypt) {
		if (!EVP_EncryptInit_ex(j->cctx, NULL, NULL, NULL, j->iv) ||
		    !EVP_EncryptUpdate(j->cctx, j->out, &l, j->in, (int)j->in_len) ||
		    !EVP_EncryptFinal_ex(j->cctx, j->out + l, &l2))
			return -1;
	} else {
		if (!EVP_DecryptInit_ex(j->cctx, NULL, NULL, NULL, j->iv) ||
		    !EVP_DecryptUpdate(j->cctx, j->out, &l, j->in, (int)j->in_len) ||
		    !EVP_DecryptFinal_ex(j->cctx, j->out + l, &l2))
			return -1;
	}
	return 0;
}

static int ossl_hmac_op(void *arg)
{
	job *j = arg;
	size_t l = 0;
	/* NULL key: re-initialise with the key already set */
	if (!EVP_MAC_init(j->mctx, NULL, 0, NULL) || !EVP_MAC_update(j->mctx, j->in, j->in_len) ||
	    !EVP_MAC_final(j->mctx, j->out, &l, 32))
		return -1;
	return 0;
}

static unsigned char raw_key[32];

/* Prepare a job for a cipher/MAC workload on session s (p11) or OpenSSL. */
static int job_setup(job *j, CK_SESSION_HANDLE s, CK_OBJECT_HANDLE key, const char *kind,
		     int decrypt, int multipart)
{
	memset(j, 0, sizeof(*j));
	j->s = s;
	j->key = key;
	j->decrypt = decrypt;
	j->multipart = multipart;
	size_t n = opt.size;
	j->in = malloc(n + 64);
	j->out_cap = n + 64;
	j->out = malloc(j->out_cap);
	memset(j->in, 0xA5, n + 64);
	memset(j->iv, 0x11, sizeof(j->iv));
	j->in_len = n;
	if (is_openssl) {
		if (!strcmp(kind, "hmac")) {
			EVP_MAC *mac = EVP_MAC_fetch(NULL, "HMAC", NULL);
			j->mctx = EVP_MAC_CTX_new(mac);
			EVP_MAC_free(mac);
			OSSL_PARAM p[] = {OSSL_PARAM_construct_utf8_string(
						  OSSL_MAC_PARAM_DIGEST, (char *)"SHA256", 0),
					  OSSL_PARAM_construct_end()};
			if (!EVP_MAC_init(j->mctx, raw_key, 32, p))
				return -1;
			return 0;
		}
		const EVP_CIPHER *c = !strcmp(kind, "gcm")   ? EVP_aes_256_gcm()
				      : !strcmp(kind, "ctr") ? EVP_aes_256_ctr()
							     : EVP_aes_256_cbc();
		j->cctx = EVP_CIPHER_CTX_new();
		if (!EVP_CipherInit_ex(j->cctx, c, NULL, raw_key, NULL, decrypt ? 0 : 1))
			return -1;
	}
	if (!decrypt)
		return 0;
	/* decryption: make one valid ciphertext to decrypt over and over */
	job e;
	if (job_setup(&e, s, key, kind, 0, 0))
		return -1;
	if (!strcmp(kind, "gcm")) {
		if (is_openssl ? ossl_gcm_op(&e) : p11_gcm_op(&e))
			return -1;
		memcpy(j->iv, e.iv, 16);
		memcpy(j->in, e.out, n + 16);
		j->in_len = n + 16;
	} else {
		if (is_openssl ? ossl_cbcpad_op(&e) : p11_cbcpad_op(&e))
			return -1;
		j->in_len = (n / 16 + 1) * 16;
		memcpy(j->in, e.out, j->in_len);
	}
	return 0;
}

typedef struct {
	job j;
	op_fn op;
	pthread_barrier_t *bar;
	volatile int *stop;
	long n;
	int err;
} worker;

static void *worker_main(void *arg)
{
	worker *w = arg;
	pthread_barrier_wait(w->bar);
	/* warm-up happens before the start barrier is released by main */
	while (!*w->stop) {
		if (w->op(&w->j)) {
			w->err = 1;
			break;
		}
		w->n++;
	}
	return NULL;
}

static int workload_cipher(const char *kind, int decrypt, int multipart)
{
	CK_MECHANISM_TYPE mech = !strcmp(kind, "gcm")      ? CKM_AES_GCM
				 : !strcmp(kind, "cbcpad") ? CKM_AES_CBC_PAD
				 : !strcmp(kind, "ctr")	   ? CKM_AES_CTR
							   : CKM_SHA256_HMAC;
	if (!mech_offered(mech)) {
		result(opt.workload, opt.size, opt.threads, -1, 0, "n/a",
		       "mechanism 0x%lx not offered", (unsigned long)mech);
		return 0;
	}
	op_fn op;
	if (is_openssl)
		op = !strcmp(kind, "gcm")      ? ossl_gcm_op
		     : !strcmp(kind, "cbcpad") ? ossl_cbcpad_op
		     : !strcmp(kind, "ctr")    ? ossl_ctr_op
					       : ossl_hmac_op;
	else
		op = !strcmp(kind, "gcm")      ? p11_gcm_op
		     : !strcmp(kind, "cbcpad") ? p11_cbcpad_op
		     : !strcmp(kind, "ctr")    ? p11_ctr_op
					       : p11_hmac_op;
	CK_OBJECT_HANDLE key = 0;
	if (!is_openssl) {
		if (mech == CKM_SHA256_HMAC) {
			if (create_hmac_key(sess, raw_key, 32, &key))
				return -1;
		} else if (gen_aes(sess, opt.token_key ? CK_TRUE : CK_FALSE, "bench-data-key", &key,
				   "C_GenerateKey(data key)")) {
			return -1;
		}
	}
	const char *note = multipart ? "parts" : "single-part";
	if (opt.threads <= 1) {
		job j;
		if (job_setup(&j, sess, key, kind, decrypt, multipart))
			return -1;
		double ops = run_timed(op, &j);
		if (ops < 0) {
			if (!failed)
				result(opt.workload, opt.size, opt.threads, -1, 0, "ERR", "operation failed");
			return -1;
		}
		if (multipart)
			result(opt.workload, opt.size, 1, ops, opt.size, NULL,
			       "%zu-byte parts; cpu_ns_per_op=%.0f", opt.part, cpu_ns_per_op);
		else
			result(opt.workload, opt.size, 1, ops, opt.size, NULL, "%s; cpu_ns_per_op=%.0f",
			       note, cpu_ns_per_op);
		return 0;
	}
	/* threads: each its own session (or its own EVP context) */
	int T = opt.threads;
	worker *w = calloc((size_t)T, sizeof(*w));
	pthread_t *tid = calloc((size_t)T, sizeof(*tid));
	pthread_barrier_t bar;
	pthread_barrier_init(&bar, NULL, (unsigned)T + 1);
	volatile int stop = 0;
	for (int i = 0; i < T; i++) {
		CK_SESSION_HANDLE s = 0;
		if (!is_openssl)
			CK(f->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s),
			   "C_OpenSession(thread)");
		if (job_setup(&w[i].j, s, key, kind, decrypt, multipart))
			return -1;
		w[i].j.iv[0] = (unsigned char)i; /* distinct IV space per thread */
		w[i].op = op;
		w[i].bar = &bar;
		w[i].stop = &stop;
		/* warm-up in this thread before timing */
		for (int k = 0; k < 20; k++)
			if (op(&w[i].j))
				return -1;
	}
	for (int i = 0; i < T; i++)
		pthread_create(&tid[i], NULL, worker_main, &w[i]);
	pthread_barrier_wait(&bar);
	double t0 = now();
	struct timespec ts = {(time_t)opt.seconds,
			      (long)((opt.seconds - (double)(time_t)opt.seconds) * 1e9)};
	nanosleep(&ts, NULL);
	stop = 1;
	long total = 0;
	int err = 0;
	for (int i = 0; i < T; i++) {
		pthread_join(tid[i], NULL);
		total += w[i].n;
		err |= w[i].err;
	}
	double t = now() - t0;
	if (err) {
		if (!failed)
			result(opt.workload, opt.size, T, -1, 0, "ERR", "operation failed in a thread");
		return -1;
	}
	result(opt.workload, opt.size, T, (double)total / t, opt.size, NULL,
	       "%d threads, one session each", T);
	return 0;
}

/* ------------------------------------------------------------------ */
/* key generation                                                      */

typedef struct {
	CK_BBOOL token;
	CK_OBJECT_HANDLE *made;
	long n, cap;
	double t; /* time spent in C_GenerateKey only */
} kg;

static int keygen_op(void *arg)
{
	kg *k = arg;
	CK_OBJECT_HANDLE h;
	if (k->n == k->cap) {
		k->cap = k->cap ? k->cap * 2 : 1024;
		k->made = realloc(k->made, (size_t)k->cap * sizeof(*k->made));
	}
	double t0 = now();
	if (gen_aes(sess, k->token, k->token ? "bench-token-keygen" : "bench-session-keygen", &h,
		    "C_GenerateKey"))
		return -1;
	k->t += now() - t0;
	k->made[k->n++] = h;
	return 0;
}

static int workload_keygen(CK_BBOOL token)
{
	if (is_openssl) {
		result(opt.workload, 32, 1, -1, 0, "n/a", "no key objects in raw OpenSSL");
		return 0;
	}
	if (!mech_offered(CKM_AES_KEY_GEN)) {
		result(opt.workload, 32, 1, -1, 0, "n/a", "CKM_AES_KEY_GEN not offered");
		return 0;
	}
	kg k = {.token = token};
	double wall = now();
	long lim = opt.max_ops;
	while (now() - wall < opt.seconds && k.n < lim)
		if (keygen_op(&k))
			return -1;
	double ops = (double)k.n / k.t;
	/* clean up (untimed): token keys must not pile up across runs */
	double d0 = now();
	for (long i = 0; i < k.n; i++)
		CK(f->C_DestroyObject(sess, k.made[i]), "C_DestroyObject");
	double d = now() - d0;
	result(opt.workload, 32, 1, ops, 0, NULL, "%ld keys; C_DestroyObject %.0f/s (untimed)", k.n,
	       d > 0 ? (double)k.n / d : 0.0);
	free(k.made);
	return 0;
}

/* ------------------------------------------------------------------ */
/* wrap / unwrap                                                        */

static int workload_wrap(int unwrap)
{
	CK_MECHANISM_TYPE mt = 0;
	const char *mname = "";
	if (is_openssl) {
		mt = CKM_AES_KEY_WRAP_KWP;
		mname = "EVP_aes_256_wrap_pad (RFC 5649)";
	} else if (mech_offered(CKM_AES_KEY_WRAP_KWP)) {
		mt = CKM_AES_KEY_WRAP_KWP;
		mname = "CKM_AES_KEY_WRAP_KWP 0x210B";
	} else if (mech_offered(CKM_AES_KEY_WRAP_PAD)) {
		mt = CKM_AES_KEY_WRAP_PAD;
		mname = "CKM_AES_KEY_WRAP_PAD 0x210A";
	} else {
		result(opt.workload, 32, 1, -1, 0, "n/a", "no AES key wrap with padding");
		return 0;
	}
	unsigned char wrapped[64];
	if (is_openssl) {
		unsigned char target[32];
		RAND_bytes(target, 32);
		EVP_CIPHER_CTX *c = EVP_CIPHER_CTX_new();
		EVP_CIPHER_CTX_set_flags(c, EVP_CIPHER_CTX_FLAG_WRAP_ALLOW);
		int l = 0, l2 = 0;
		if (!EVP_CipherInit_ex(c, EVP_aes_256_wrap_pad(), NULL, raw_key, NULL, 1) ||
		    !EVP_CipherUpdate(c, wrapped, &l, target, 32) || !EVP_CipherFinal_ex(c, wrapped + l, &l2))
			return -1;
		int wl = l + l2;
		if (unwrap) {
			/* the decryption key schedule differs: set the key again */
			EVP_CIPHER_CTX_free(c);
			c = EVP_CIPHER_CTX_new();
			EVP_CIPHER_CTX_set_flags(c, EVP_CIPHER_CTX_FLAG_WRAP_ALLOW);
			if (!EVP_CipherInit_ex(c, EVP_aes_256_wrap_pad(), NULL, raw_key, NULL, 0))
				return -1;
		}
		double t0 = now(), t;
		long n = 0;
		unsigned char out[64];
		do {
			if (!EVP_CipherInit_ex(c, NULL, NULL, NULL, NULL, -1))
				return -1;
			if (!EVP_CipherUpdate(c, out, &l, unwrap ? wrapped : target, unwrap ? wl : 32) ||
			    !EVP_CipherFinal_ex(c, out + l, &l2))
				return -1;
			n++;
			t = now() - t0;
		} while (t < opt.seconds && n < opt.max_ops);
		EVP_CIPHER_CTX_free(c);
		result(opt.workload, 32, 1, (double)n / t, 0, NULL, "%s", mname);
		return 0;
	}
	CK_OBJECT_HANDLE kek, target;
	if (gen_aes_role(sess, CK_FALSE, "bench-kek", &kek, "C_GenerateKey(kek)", true) ||
	    gen_aes(sess, CK_FALSE, "bench-target", &target, "C_GenerateKey(target)"))
		return -1;
	CK_MECHANISM m = {mt, NULL, 0};
	CK_ULONG wl = sizeof(wrapped);
	CK(f->C_WrapKey(sess, &m, kek, target, wrapped, &wl), "C_WrapKey");
	long n = 0;
	double t = 0, wall = now();
	CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
	CK_KEY_TYPE kt = CKK_AES;
	CK_ATTRIBUTE ut[] = {
		{CKA_CLASS, &cls, sizeof(cls)},
		{CKA_KEY_TYPE, &kt, sizeof(kt)},
		{CKA_TOKEN, &no, sizeof(no)},
		{CKA_PRIVATE, &yes, sizeof(yes)},
		{CKA_SENSITIVE, &yes, sizeof(yes)},
		{CKA_ENCRYPT, &yes, sizeof(yes)},
		{CKA_DECRYPT, &yes, sizeof(yes)},
	};
	do {
		double t0 = now();
		if (!unwrap) {
			unsigned char w2[64];
			CK_ULONG l = sizeof(w2);
			CK(f->C_WrapKey(sess, &m, kek, target, w2, &l), "C_WrapKey");
			t += now() - t0;
		} else {
			CK_OBJECT_HANDLE h;
			CK(f->C_UnwrapKey(sess, &m, kek, wrapped, wl, ut, sizeof(ut) / sizeof(ut[0]), &h),
			   "C_UnwrapKey");
			t += now() - t0;
			CK(f->C_DestroyObject(sess, h), "C_DestroyObject(unwrapped)");
		}
		n++;
	} while (now() - wall < opt.seconds && n < opt.max_ops);
	result(opt.workload, 32, 1, (double)n / t, 0, NULL, "%s%s", mname,
	       unwrap ? "; unwrapped key destroyed after each op (untimed)" : "");
	return 0;
}

/* ------------------------------------------------------------------ */
/* object population and finds                                          */

static void obj_label(char *buf, size_t cap, long i)
{
	snprintf(buf, cap, "%s%07ld", opt.prefix, i);
}

/* CKA_ID of object i: distinct from every label. */
static void obj_id(char *buf, size_t cap, long i)
{
	snprintf(buf, cap, "id-%07ld", i);
}

static int workload_populate(void)
{
	if (is_openssl) {
		result(opt.workload, (size_t)opt.count, 1, -1, 0, "n/a", "no objects in raw OpenSSL");
		return 0;
	}
	CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
	CK_KEY_TYPE kt = CKK_AES;
	unsigned char val[32];
	char label[128], id[32];
	CK_ATTRIBUTE tmpl[] = {
		{CKA_CLASS, &cls, sizeof(cls)},
		{CKA_KEY_TYPE, &kt, sizeof(kt)},
		{CKA_TOKEN, &yes, sizeof(yes)},
		{CKA_PRIVATE, &yes, sizeof(yes)},
		{CKA_SENSITIVE, &yes, sizeof(yes)},
		{CKA_ENCRYPT, &yes, sizeof(yes)},
		{CKA_DECRYPT, &yes, sizeof(yes)},
		{CKA_VALUE, val, sizeof(val)},
		{CKA_LABEL, label, 0},
		{CKA_ID, id, 0},
	};
	double t0 = now(), last = t0;
	long i;
	for (i = opt.first; i < opt.count; i++) {
		if (now() - t0 > opt.seconds)
			break;
		RAND_bytes(val, sizeof(val));
		obj_label(label, sizeof(label), i);
		tmpl[8].ulValueLen = strlen(label);
		obj_id(id, sizeof(id), i);
		tmpl[9].ulValueLen = strlen(id);
		CK_OBJECT_HANDLE h;
		CK(f->C_CreateObject(sess, tmpl, sizeof(tmpl) / sizeof(tmpl[0]), &h), "C_CreateObject(token key)");
		if (now() - last > 10) {
			last = now();
			fprintf(stderr, "p11bench %s: populated %ld/%ld (%.0f/s)\n", opt.impl, i + 1,
				opt.count, (double)(i + 1 - opt.first) / (last - t0));
		}
	}
	double t = now() - t0;
	long made = i - opt.first;
	/* size column = objects present after this run */
	result(opt.workload, (size_t)i, 1, made / t, 0, NULL,
	       "created=%ld in %.1f s%s", made, t, i < opt.count ? " (time box reached)" : "");
	return 0;
}

/* find's template shapes: letters for the attributes, in this order
 * (c CKA_CLASS, k CKA_KEY_TYPE, t CKA_TOKEN, p CKA_PRIVATE, l CKA_LABEL,
 * i CKA_ID); the populated objects are token AES keys, private, each with
 * its own label and id, so every shape with l or i names one object. */
static const struct {
	const char *name, *attrs;
} find_shapes[] = {
	{"label", "l"},		   {"id", "i"},		    {"class+label", "cl"},
	{"class+id", "ci"},	   {"class+keytype+label", "ckl"},
	{"token+class+label", "tcl"}, {"private+id", "pi"}, {"label+id", "li"},
	{"all6", "cktpli"},
};

static int workload_find(void)
{
	if (is_openssl) {
		result(opt.workload, (size_t)opt.count, 1, -1, 0, "n/a", "no objects in raw OpenSSL");
		return 0;
	}
	const char *attrs = NULL;
	for (size_t k = 0; k < sizeof(find_shapes) / sizeof(find_shapes[0]); k++)
		if (!strcmp(find_shapes[k].name, opt.shape))
			attrs = find_shapes[k].attrs;
	if (!attrs)
		die("unknown --shape %s", opt.shape);
	char label[128], id[32];
	CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
	CK_KEY_TYPE kt = CKK_AES;
	CK_ATTRIBUTE tmpl[6];
	CK_ULONG nt = 0;
	CK_ATTRIBUTE *lab = NULL, *ida = NULL;
	for (const char *a = attrs; *a; a++) {
		CK_ATTRIBUTE *e = &tmpl[nt++];
		switch (*a) {
		case 'c': *e = (CK_ATTRIBUTE){CKA_CLASS, &cls, sizeof(cls)}; break;
		case 'k': *e = (CK_ATTRIBUTE){CKA_KEY_TYPE, &kt, sizeof(kt)}; break;
		case 't': *e = (CK_ATTRIBUTE){CKA_TOKEN, &yes, sizeof(yes)}; break;
		case 'p': *e = (CK_ATTRIBUTE){CKA_PRIVATE, &yes, sizeof(yes)}; break;
		case 'l': *e = (CK_ATTRIBUTE){CKA_LABEL, label, 0}; lab = e; break;
		default: *e = (CK_ATTRIBUTE){CKA_ID, id, 0}; ida = e; break;
		}
	}
	unsigned int seed = 12345;
	long n = 0;
	double wall = now(), t = 0, c0 = cpu_now();
	double worst = 0;
	do {
		long pick = opt.hot > 0 && opt.hot < opt.count ? opt.hot : opt.count;
		long i = (long)(rand_r(&seed) % (unsigned)pick);
		obj_label(label, sizeof(label), i);
		obj_id(id, sizeof(id), i);
		if (lab)
			lab->ulValueLen = strlen(label);
		if (ida)
			ida->ulValueLen = strlen(id);
		CK_OBJECT_HANDLE h[2];
		CK_ULONG got = 0;
		double t0 = now();
		CK(f->C_FindObjectsInit(sess, tmpl, nt), "C_FindObjectsInit");
		CK(f->C_FindObjects(sess, h, 2, &got), "C_FindObjects");
		CK(f->C_FindObjectsFinal(sess), "C_FindObjectsFinal");
		double d = now() - t0;
		t += d;
		if (d > worst)
			worst = d;
		if (got != 1) {
			result(opt.workload, (size_t)opt.count, 1, -1, 0, "ERR",
			       "shape=%s: C_FindObjects found %lu objects for %s (want 1)", opt.shape,
			       (unsigned long)got, lab ? label : id);
			return -1;
		}
		n++;
	} while (now() - wall < opt.seconds && n < opt.max_ops);
	result(opt.workload, (size_t)opt.count, 1, n / t, 0, NULL,
	       "shape=%s hot=%ld %ld finds, mean %.3f ms, worst %.3f ms; cpu_ns_per_op=%.0f",
	       opt.shape, opt.hot, n, t / n * 1e3, worst * 1e3, (cpu_now() - c0) * 1e9 / (double)n);
	return 0;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

/* C_Initialize + C_OpenSession + C_Login + C_Finalize, 'cycles' times.
 * Called with the module not initialized. */
static int workload_lifecycle(void)
{
	if (is_openssl) {
		result(opt.workload, (size_t)opt.count, 1, -1, 0, "n/a", "no module in raw OpenSSL");
		return 0;
	}
	/* d[0]: whole cycle; d[1..4]: C_Initialize, C_OpenSession (with the
	 * slot lookup), C_Login, C_Finalize */
	double *d[5];
	for (int k = 0; k < 5; k++)
		d[k] = calloc((size_t)opt.cycles, sizeof(double));
	for (int c = 0; c < opt.cycles; c++) {
		double t0 = now();
		CK(initialize(), "C_Initialize");
		double t1 = now();
		CK_SLOT_ID sl;
		if (find_slot(&sl)) {
			result(opt.workload, (size_t)opt.count, 1, -1, 0, "ERR", "slot/token not found");
			return -1;
		}
		CK_SESSION_HANDLE s;
		CK(f->C_OpenSession(sl, CKF_SERIAL_SESSION, NULL, NULL, &s), "C_OpenSession");
		double t2 = now();
		CK(f->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)opt.pin, strlen(opt.pin)), "C_Login");
		double t3 = now();
		CK(f->C_Finalize(NULL), "C_Finalize");
		double t4 = now();
		d[0][c] = t4 - t0;
		d[1][c] = t1 - t0;
		d[2][c] = t2 - t1;
		d[3][c] = t3 - t2;
		d[4][c] = t4 - t3;
	}
	double first = d[0][0];
	for (int k = 0; k < 5; k++)
		qsort(d[k], (size_t)opt.cycles, sizeof(double), cmp_double);
	int m = opt.cycles / 2;
	double med = d[0][m];
	/* ops/s = cycles per second at the median; the note has the times */
	result(opt.workload, (size_t)opt.count, 1, 1.0 / med, 0, NULL,
	       "median_ms=%.2f first_ms=%.2f min_ms=%.2f max_ms=%.2f cycles=%d "
	       "median_ms_initialize=%.2f median_ms_opensession=%.2f median_ms_login=%.2f "
	       "median_ms_finalize=%.2f",
	       med * 1e3, first * 1e3, d[0][0] * 1e3, d[0][opt.cycles - 1] * 1e3, opt.cycles,
	       d[1][m] * 1e3, d[2][m] * 1e3, d[3][m] * 1e3, d[4][m] * 1e3);
	for (int k = 0; k < 5; k++)
		free(d[k]);
	return 0;
}

/* C_InitToken + C_InitPIN (for modules without their own init tool). */
static int workload_init_token(void)
{
	char label[32];
	memset(label, ' ', 32);
	const char *l = opt.token ? opt.token : "bench";
	memcpy(label, l, strlen(l) < 32 ? strlen(l) : 32);
	CK_SLOT_ID sl = opt.slot >= 0 ? (CK_SLOT_ID)opt.slot : 0;
	if (opt.slot < 0) {
		CK_ULONG n = 1;
		CK_SLOT_ID ids[64];
		n = 64;
		CK(f->C_GetSlotList(CK_TRUE, ids, &n), "C_GetSlotList");
		if (n == 0) {
			result("init-token", 0, 1, -1, 0, "ERR", "no slot with a token");
			return -1;
		}
		sl = ids[0];
	}
	CK(f->C_InitToken(sl, (CK_UTF8CHAR_PTR)opt.so_pin, strlen(opt.so_pin), (CK_UTF8CHAR_PTR)label),
	   "C_InitToken");
	CK_SESSION_HANDLE s;
	CK(f->C_OpenSession(sl, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s), "C_OpenSession");
	CK(f->C_Login(s, CKU_SO, (CK_UTF8CHAR_PTR)opt.so_pin, strlen(opt.so_pin)), "C_Login(SO)");
	CK(f->C_InitPIN(s, (CK_UTF8CHAR_PTR)opt.pin, strlen(opt.pin)), "C_InitPIN");
	CK(f->C_Logout(s), "C_Logout");
	CK(f->C_CloseSession(s), "C_CloseSession");
	printf("%s\tinit-token\t0\t1\tok\t-\t%ld\tslot=%lu\n", opt.impl, maxrss_kb(), (unsigned long)sl);
	return 0;
}

static int workload_mechs(void)
{
	static const struct {
		CK_MECHANISM_TYPE m;
		const char *n;
	} ms[] = {
		{CKM_AES_KEY_GEN, "CKM_AES_KEY_GEN"},	    {CKM_AES_GCM, "CKM_AES_GCM"},
		{CKM_AES_CBC_PAD, "CKM_AES_CBC_PAD"},	    {CKM_SHA256_HMAC, "CKM_SHA256_HMAC"},
		{CKM_AES_KEY_WRAP, "CKM_AES_KEY_WRAP"},	    {CKM_AES_KEY_WRAP_PAD, "CKM_AES_KEY_WRAP_PAD"},
		{CKM_AES_KEY_WRAP_KWP, "CKM_AES_KEY_WRAP_KWP"},
	};
	for (size_t i = 0; i < sizeof(ms) / sizeof(ms[0]); i++)
		printf("%s\tmech\t0\t1\t%s\t-\t%ld\t%s\n", opt.impl, mech_offered(ms[i].m) ? "yes" : "no",
		       maxrss_kb(), ms[i].n);
	return 0;
}

/* ------------------------------------------------------------------ */

static void usage(void)
{
	fprintf(stderr,
		"usage: p11bench --module PATH|openssl [options] WORKLOAD\n"
		"options:\n"
		"  --impl NAME        name in the first output column (default: module basename)\n"
		"  --token LABEL      use the slot whose token has this label (default: first token)\n"
		"  --slot ID          use this slot id\n"
		"  --pin PIN          user PIN (default 123456); --so-pin PIN (default 12345678)\n"
		"  --init-string STR  CK_C_INITIALIZE_ARGS.pReserved (e.g. config=/path for p11kms)\n"
		"  --time SEC         time box per measurement (default 1)\n"
		"  --max-ops N        op cap per measurement\n"
		"  --size BYTES       message size (default 4096); --part BYTES (default 65536)\n"
		"  --threads N        threads, each with its own session (gcm-enc/gcm-dec)\n"
		"  --token-key        cipher workloads: the key is a token object (else a session one)\n"
		"  --count N          objects for populate/find/lifecycle (default 10000)\n"
		"  --first N          first index for populate (to extend a population)\n"
		"  --prefix STR       label prefix of populated objects (default bench-obj-)\n"
		"  --shape NAME       find template: label id class+label class+id\n"
		"                     class+keytype+label token+class+label private+id label+id\n"
		"                     all6 (default label)\n"
		"  --hot N            find: objects picked among the first N only (default: all)\n"
		"  --cycles N         lifecycle cycles (default 7; the median is reported)\n"
		"workloads:\n"
		"  gcm-enc gcm-dec gcm-enc-mp gcm-dec-mp cbcpad-enc cbcpad-dec ctr-enc hmac\n"
		"  keygen-session keygen-token wrap unwrap populate find lifecycle\n"
		"  init-token mechs\n");
	exit(2);
}

int main(int argc, char **argv)
{
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i];
#define ARG() (i + 1 < argc ? argv[++i] : (usage(), ""))
		if (!strcmp(a, "--module"))
			opt.module = ARG();
		else if (!strcmp(a, "--impl"))
			opt.impl = ARG();
		else if (!strcmp(a, "--token"))
			opt.token = ARG();
		else if (!strcmp(a, "--slot"))
			opt.slot = strtol(ARG(), NULL, 0);
		else if (!strcmp(a, "--pin"))
			opt.pin = ARG();
		else if (!strcmp(a, "--so-pin"))
			opt.so_pin = ARG();
		else if (!strcmp(a, "--init-string"))
			opt.init_string = ARG();
		else if (!strcmp(a, "--time"))
			opt.seconds = strtod(ARG(), NULL);
		else if (!strcmp(a, "--max-ops"))
			opt.max_ops = strtol(ARG(), NULL, 0);
		else if (!strcmp(a, "--size"))
			opt.size = strtoul(ARG(), NULL, 0);
		else if (!strcmp(a, "--part"))
			opt.part = strtoul(ARG(), NULL, 0);
		else if (!strcmp(a, "--threads"))
			opt.threads = atoi(ARG());
		else if (!strcmp(a, "--count"))
			opt.count = strtol(ARG(), NULL, 0);
		else if (!strcmp(a, "--first"))
			opt.first = strtol(ARG(), NULL, 0);
		else if (!strcmp(a, "--token-key"))
			opt.token_key = 1;
		else if (!strcmp(a, "--hot"))
			opt.hot = strtol(ARG(), NULL, 0);
		else if (!strcmp(a, "--shape"))
			opt.shape = ARG();
		else if (!strcmp(a, "--prefix"))
			opt.prefix = ARG();
		else if (!strcmp(a, "--cycles"))
			opt.cycles = atoi(ARG());
		else if (a[0] == '-')
			usage();
		else if (!opt.workload)
			opt.workload = a;
		else
			usage();
	}
	if (!opt.module || !opt.workload || opt.threads < 1 || opt.cycles < 1 || opt.part == 0 ||
	    opt.count < 1)
		usage();
	is_openssl = !strcmp(opt.module, "openssl");
	if (!opt.impl) {
		const char *b = strrchr(opt.module, '/');
		opt.impl = b ? b + 1 : opt.module;
	}
	RAND_bytes(raw_key, sizeof(raw_key));
	const char *w = opt.workload;
	int rc = 0;

	if (!is_openssl) {
		load_module();
		if (!strcmp(w, "lifecycle"))
			return workload_lifecycle() ? 1 : 0;
		CK_RV rv = initialize();
		if (rv != CKR_OK)
			die("C_Initialize rv=0x%08lx", (unsigned long)rv);
		if (!strcmp(w, "init-token")) {
			rc = workload_init_token();
			f->C_Finalize(NULL);
			return rc ? 1 : 0;
		}
		if (find_slot(&slot))
			die("no slot%s%s", opt.token ? " with token " : "", opt.token ? opt.token : "");
		if (!strcmp(w, "mechs")) {
			workload_mechs();
			f->C_Finalize(NULL);
			return 0;
		}
		if (open_and_login(&sess))
			return 1;
	} else if (!strcmp(w, "init-token") || !strcmp(w, "mechs")) {
		return 0;
	}

	if (!strcmp(w, "gcm-enc"))
		rc = workload_cipher("gcm", 0, 0);
	else if (!strcmp(w, "gcm-dec"))
		rc = workload_cipher("gcm", 1, 0);
	else if (!strcmp(w, "gcm-enc-mp"))
		rc = workload_cipher("gcm", 0, 1);
	else if (!strcmp(w, "gcm-dec-mp"))
		rc = workload_cipher("gcm", 1, 1);
	else if (!strcmp(w, "cbcpad-enc"))
		rc = workload_cipher("cbcpad", 0, 0);
	else if (!strcmp(w, "cbcpad-dec"))
		rc = workload_cipher("cbcpad", 1, 0);
	else if (!strcmp(w, "ctr-enc"))
		rc = workload_cipher("ctr", 0, 0);
	else if (!strcmp(w, "hmac"))
		rc = workload_cipher("hmac", 0, 0);
	else if (!strcmp(w, "keygen-session"))
		rc = workload_keygen(CK_FALSE);
	else if (!strcmp(w, "keygen-token"))
		rc = workload_keygen(CK_TRUE);
	else if (!strcmp(w, "wrap"))
		rc = workload_wrap(0);
	else if (!strcmp(w, "unwrap"))
		rc = workload_wrap(1);
	else if (!strcmp(w, "populate"))
		rc = workload_populate();
	else if (!strcmp(w, "find"))
		rc = workload_find();
	else if (!strcmp(w, "lifecycle"))
		rc = workload_lifecycle();
	else
		usage();

	if (!is_openssl) {
		f->C_CloseAllSessions(slot);
		f->C_Finalize(NULL);
	}
	return (rc || failed) ? 1 : 0;
}
