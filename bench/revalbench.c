/* SPDX-License-Identifier: Apache-2.0 */
/*
 * revalbench: the latency a KMS adds to local work. It loads a PKCS#11
 * module by path (configuration from $P11KMS_CONFIG), logs in, and runs
 * one local operation again and again for a time box: C_EncryptInit +
 * C_Encrypt of 64 bytes (AES-CBC-PAD) under a token AES key made in the
 * token. Each operation is timed on its own; one TSV line gives the count
 * and the latency distribution:
 *
 *   impl  phase  ops  p50_us  p99_us  p999_us  max_ms  finalize_ms
 *
 * bench/reval.sh runs it against a KMS emulator that answers normally
 * ("quiet") or holds every key check ("hang"). An operation that overruns
 * the time box is timed in full. finalize_ms is C_Finalize's time with
 * --finalize, else "-" (the process ends without it).
 *
 * Build: gcc -O2 -o revalbench revalbench.c $(pkg-config --cflags p11-kit-1) -ldl
 * Usage: revalbench --module PATH [--impl NAME] [--phase NAME] [--pin PIN]
 *        [--so-pin PIN] [--time SEC] [--finalize] (init | run)
 *   init: initialize the first token, set the user PIN, make the key.
 */
#define _GNU_SOURCE
#include <p11-kit/pkcs11.h>

#include <dlfcn.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define LABEL "reval-bench"

static CK_FUNCTION_LIST_PTR f;

static double now(void)
{
	struct timespec ts;
	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static void check(CK_RV rv, const char *what)
{
	if (rv != CKR_OK) {
		fprintf(stderr, "revalbench: %s: 0x%lx\n", what, (unsigned long)rv);
		exit(1);
	}
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;
	return x < y ? -1 : x > y;
}

static CK_SESSION_HANDLE open_session(CK_SLOT_ID slot, CK_USER_TYPE who, const char *pin)
{
	CK_SESSION_HANDLE s;
	check(f->C_OpenSession(slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL, &s),
	      "C_OpenSession");
	check(f->C_Login(s, who, (CK_UTF8CHAR_PTR)pin, strlen(pin)), "C_Login");
	return s;
}

static void init_token(CK_SLOT_ID slot, const char *so_pin, const char *pin)
{
	CK_UTF8CHAR label[32];
	memset(label, ' ', sizeof(label));
	memcpy(label, "revalbench", 10);
	check(f->C_InitToken(slot, (CK_UTF8CHAR_PTR)so_pin, strlen(so_pin), label),
	      "C_InitToken");
	CK_SESSION_HANDLE so = open_session(slot, CKU_SO, so_pin);
	check(f->C_InitPIN(so, (CK_UTF8CHAR_PTR)pin, strlen(pin)), "C_InitPIN");
	check(f->C_Logout(so), "C_Logout");
	CK_SESSION_HANDLE s = open_session(slot, CKU_USER, pin);
	CK_OBJECT_CLASS c = CKO_SECRET_KEY;
	CK_KEY_TYPE kt = CKK_AES;
	CK_ULONG len = 32;
	CK_BBOOL t = CK_TRUE;
	CK_ATTRIBUTE tmpl[] = {{CKA_CLASS, &c, sizeof(c)},       {CKA_KEY_TYPE, &kt, sizeof(kt)},
			       {CKA_VALUE_LEN, &len, sizeof(len)}, {CKA_TOKEN, &t, 1},
			       {CKA_LABEL, LABEL, strlen(LABEL)}};
	CK_MECHANISM m = {CKM_AES_KEY_GEN, NULL, 0};
	CK_OBJECT_HANDLE k;
	check(f->C_GenerateKey(s, &m, tmpl, 5, &k), "C_GenerateKey");
}

static CK_OBJECT_HANDLE find_key(CK_SESSION_HANDLE s)
{
	CK_ATTRIBUTE q = {CKA_LABEL, LABEL, strlen(LABEL)};
	CK_OBJECT_HANDLE k;
	CK_ULONG n = 0;
	check(f->C_FindObjectsInit(s, &q, 1), "C_FindObjectsInit");
	check(f->C_FindObjects(s, &k, 1, &n), "C_FindObjects");
	check(f->C_FindObjectsFinal(s), "C_FindObjectsFinal");
	if (n != 1) {
		fprintf(stderr, "revalbench: no key labelled %s (run init first)\n", LABEL);
		exit(1);
	}
	return k;
}

int main(int argc, char **argv)
{
	const char *module = NULL, *impl = "module", *phase = "-", *pin = "123456",
		   *so_pin = "12345678", *cmd = NULL;
	double seconds = 10;
	int finalize = 0;
	for (int i = 1; i < argc; i++) {
		const char *a = argv[i], *v = i + 1 < argc ? argv[i + 1] : NULL;
		if (!strcmp(a, "--module") && v)
			module = v, i++;
		else if (!strcmp(a, "--impl") && v)
			impl = v, i++;
		else if (!strcmp(a, "--phase") && v)
			phase = v, i++;
		else if (!strcmp(a, "--pin") && v)
			pin = v, i++;
		else if (!strcmp(a, "--so-pin") && v)
			so_pin = v, i++;
		else if (!strcmp(a, "--time") && v)
			seconds = atof(v), i++;
		else if (!strcmp(a, "--finalize"))
			finalize = 1;
		else if (!strcmp(a, "init") || !strcmp(a, "run"))
			cmd = a;
		else
			cmd = NULL, i = argc;
	}
	if (!module || !cmd) {
		fprintf(stderr, "usage: revalbench --module PATH [--impl NAME] [--phase NAME] "
				"[--pin PIN] [--so-pin PIN] [--time SEC] [--finalize] init|run\n");
		return 2;
	}
	void *lib = dlopen(module, RTLD_NOW | RTLD_LOCAL);
	CK_C_GetFunctionList gfl = lib ? (CK_C_GetFunctionList)dlsym(lib, "C_GetFunctionList") : NULL;
	if (!gfl) {
		fprintf(stderr, "revalbench: %s: %s\n", module, dlerror());
		return 1;
	}
	check(gfl(&f), "C_GetFunctionList");
	CK_C_INITIALIZE_ARGS ia = {.flags = CKF_OS_LOCKING_OK};
	check(f->C_Initialize(&ia), "C_Initialize");
	CK_SLOT_ID slot;
	CK_ULONG ns = 1;
	check(f->C_GetSlotList(CK_TRUE, &slot, &ns), "C_GetSlotList");
	if (!strcmp(cmd, "init")) {
		init_token(slot, so_pin, pin);
		check(f->C_Finalize(NULL), "C_Finalize");
		return 0;
	}
	CK_SESSION_HANDLE s = open_session(slot, CKU_USER, pin);
	CK_OBJECT_HANDLE k = find_key(s);
	size_t cap = 1 << 16, n = 0;
	double *lat = malloc(cap * sizeof(*lat));
	uint8_t iv[16] = {0}, in[64] = {1}, out[96];
	CK_MECHANISM m = {CKM_AES_CBC_PAD, iv, sizeof(iv)};
	double end = now() + seconds;
	while (lat && now() < end) {
		double t0 = now();
		CK_ULONG ol = sizeof(out);
		check(f->C_EncryptInit(s, &m, k), "C_EncryptInit");
		check(f->C_Encrypt(s, in, sizeof(in), out, &ol), "C_Encrypt");
		if (n == cap && !(lat = realloc(lat, (cap *= 2) * sizeof(*lat))))
			break;
		lat[n++] = now() - t0;
	}
	if (!lat || !n) {
		fprintf(stderr, "revalbench: no measurement\n");
		return 1;
	}
	qsort(lat, n, sizeof(*lat), cmp_double);
	printf("%s\t%s\t%zu\t%.1f\t%.1f\t%.1f\t%.3f\t", impl, phase, n, lat[n / 2] * 1e6,
	       lat[n * 99 / 100] * 1e6, lat[n * 999 / 1000] * 1e6, lat[n - 1] * 1e3);
	fflush(stdout);
	if (!finalize) {
		printf("-\n");
		fflush(stdout);
		_exit(0); /* a check still in flight does not hold the benchmark */
	}
	double t0 = now();
	check(f->C_Finalize(NULL), "C_Finalize");
	printf("%.0f\n", (now() - t0) * 1e3);
	free(lat);
	return 0;
}
