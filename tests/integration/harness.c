/* SPDX-License-Identifier: Apache-2.0 */
#include "harness.h"

#include <dlfcn.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

CK_FUNCTION_LIST_3_0 *p11;

void h_load(void)
{
	if (p11)
		return;
	const char *path = getenv("P11KMS_MODULE");
	if (!path) {
		fprintf(stderr, "P11KMS_MODULE is not set\n");
		exit(2);
	}
	void *lib = dlopen(path, RTLD_NOW | RTLD_LOCAL);
	if (!lib) {
		fprintf(stderr, "dlopen %s: %s\n", path, dlerror());
		exit(2);
	}
	CK_C_GetInterface gi = (CK_C_GetInterface)dlsym(lib, "C_GetInterface");
	CK_INTERFACE *itf = NULL;
	CK_VERSION v3 = {3, 0};
	if (!gi || gi((CK_UTF8CHAR_PTR) "PKCS 11", &v3, &itf, 0) != CKR_OK) {
		fprintf(stderr, "C_GetInterface failed\n");
		exit(2);
	}
	p11 = itf->pFunctionList;
}

static void write_file(const char *path, const void *data, size_t len, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode);
	if (fd < 0 || write(fd, data, len) != (ssize_t)len) {
		fprintf(stderr, "cannot write %s\n", path);
		exit(2);
	}
	fchmod(fd, mode);
	close(fd);
}

void h_env_new(h_env *e, const char *login, const char *extra)
{
	h_load();
	memset(e, 0, sizeof(*e));
	snprintf(e->dir, sizeof(e->dir), "/tmp/p11kms-test-XXXXXX");
	if (!mkdtemp(e->dir)) {
		perror("mkdtemp");
		exit(2);
	}
	snprintf(e->config, sizeof(e->config), "%s/p11kms.json", e->dir);
	snprintf(e->key_file, sizeof(e->key_file), "%s/master.key", e->dir);
	snprintf(e->store, sizeof(e->store), "%s/token.db", e->dir);
	snprintf(e->log, sizeof(e->log), "%s/module.log", e->dir);
	snprintf(e->init_str, sizeof(e->init_str), "config=%s", e->config);
	uint8_t key[32];
	int fd = open("/dev/urandom", O_RDONLY);
	if (fd < 0 || read(fd, key, 32) != 32)
		exit(2);
	close(fd);
	write_file(e->key_file, key, 32, 0600);
	char cfg[2048];
	int n = snprintf(cfg, sizeof(cfg),
			 "{\n  \"log\": {\"level\": \"trace\", \"destination\": \"%s\"},\n"
			 "  \"providers\": [\n    {\"name\": \"test\", \"type\": \"local\",\n"
			 "     \"key_file\": \"%s\", \"store\": \"%s\",\n"
			 "     \"login\": \"%s\"%s%s}\n  ]\n}\n",
			 e->log, e->key_file, e->store, login ? login : "required",
			 extra && *extra ? ", " : "", extra ? extra : "");
	write_file(e->config, cfg, (size_t)n, 0644);
	/* slot id: FNV-1a of the provider name, as the module computes it */
	uint32_t h = 2166136261u;
	for (const char *p = "test"; *p; p++)
		h = (h ^ (unsigned char)*p) * 16777619u;
	e->slot = h & 0x7fffffffu;
}

void h_env_free(h_env *e)
{
	char cmd[400];
	if (getenv("P11KMS_TEST_KEEP")) { /* debugging: keep the scratch folder */
		fprintf(stderr, "kept %s\n", e->dir);
		return;
	}
	snprintf(cmd, sizeof(cmd), "rm -rf '%s'", e->dir);
	if (system(cmd) != 0)
		fprintf(stderr, "cleanup of %s failed\n", e->dir);
}

CK_RV h_initialize(const h_env *e)
{
	CK_C_INITIALIZE_ARGS args = {0};
	args.flags = CKF_OS_LOCKING_OK;
	args.pReserved = (void *)e->init_str;
	return p11->C_Initialize(&args);
}

#if defined(__SANITIZE_THREAD__)
#define H_TSAN 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define H_TSAN 1
#endif
#endif
#ifdef H_TSAN
const int h_tsan = 1;
/* Children of threaded processes go on working (h_initialize_child). */
__attribute__((visibility("default"))) const char *__tsan_default_options(void);
const char *__tsan_default_options(void)
{
	return "die_after_fork=0";
}
#else
const int h_tsan = 0;
#endif

CK_RV h_initialize_child(const h_env *e)
{
	CK_C_INITIALIZE_ARGS args = {0};
	args.flags = CKF_OS_LOCKING_OK | (h_tsan ? CKF_LIBRARY_CANT_CREATE_OS_THREADS : 0);
	args.pReserved = (void *)e->init_str;
	return p11->C_Initialize(&args);
}

void h_dump_log(const h_env *e)
{
	/* The module's own account of a failure, before the folder goes. */
	FILE *f = fopen(e->log, "r");
	char line[1024];
	fprintf(stderr, "--- last lines of %s ---\n", e->log);
	if (!f)
		return;
	long keep[40] = {0};
	int n = 0;
	for (long pos = ftell(f); fgets(line, sizeof(line), f); pos = ftell(f))
		keep[n++ % 40] = pos;
	for (int i = n > 40 ? n - 40 : 0; i < n; i++) {
		fseek(f, keep[i % 40], SEEK_SET);
		if (fgets(line, sizeof(line), f) && !strstr(line, " trace "))
			fputs(line, stderr);
	}
	fclose(f);
}

#define H_CHECK(e, expr)                                                       \
	do {                                                                   \
		CK_RV r_ = (expr);                                             \
		if (r_ != CKR_OK) {                                            \
			h_dump_log(e);                                         \
			fail_msg("%s: 0x%lx", #expr, (unsigned long)r_);       \
		}                                                              \
	} while (0)

void h_init_token(h_env *e)
{
	CK_UTF8CHAR label[32];
	memset(label, ' ', 32);
	memcpy(label, "test", 4);
	H_CHECK(e, p11->C_InitToken(e->slot, (CK_UTF8CHAR_PTR)SO_PIN, 8, label));
	CK_SESSION_HANDLE s;
	H_CHECK(e, p11->C_OpenSession(e->slot, CKF_SERIAL_SESSION | CKF_RW_SESSION,
				      NULL, NULL, &s));
	H_CHECK(e, p11->C_Login(s, CKU_SO, (CK_UTF8CHAR_PTR)SO_PIN, 8));
	H_CHECK(e, p11->C_InitPIN(s, (CK_UTF8CHAR_PTR)USER_PIN, 4));
	H_CHECK(e, p11->C_Logout(s));
	H_CHECK(e, p11->C_CloseSession(s));
}

CK_SESSION_HANDLE h_user_session(const h_env *e)
{
	CK_SESSION_HANDLE s;
	assert_ok(p11->C_OpenSession(e->slot, CKF_SERIAL_SESSION | CKF_RW_SESSION,
				     NULL, NULL, &s));
	CK_RV rv = p11->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)USER_PIN, 4);
	if (rv != CKR_OK && rv != CKR_USER_ALREADY_LOGGED_IN)
		fail_msg("C_Login: 0x%lx", (unsigned long)rv);
	return s;
}

CK_OBJECT_HANDLE h_aes_key(CK_SESSION_HANDLE s, CK_ULONG len, CK_BBOOL token,
			   const char *label)
{
	CK_MECHANISM m = {CKM_AES_KEY_GEN, NULL, 0};
	CK_BBOOL t = CK_TRUE;
	CK_ATTRIBUTE tmpl[] = {
		{CKA_VALUE_LEN, &len, sizeof(len)},
		{CKA_TOKEN, &token, sizeof(token)},
		{CKA_LABEL, (void *)label, label ? strlen(label) : 0},
		{CKA_EXTRACTABLE, &t, sizeof(t)},
	};
	CK_OBJECT_HANDLE k = CK_INVALID_HANDLE;
	assert_ok(p11->C_GenerateKey(s, &m, tmpl, 4, &k));
	return k;
}

CK_OBJECT_HANDLE h_import_aes(CK_SESSION_HANDLE s, const uint8_t *key, CK_ULONG len)
{
	CK_OBJECT_CLASS c = CKO_SECRET_KEY;
	CK_KEY_TYPE kt = CKK_AES;
	CK_BBOOL f = CK_FALSE, t = CK_TRUE;
	CK_ATTRIBUTE tmpl[] = {
		{CKA_CLASS, &c, sizeof(c)},     {CKA_KEY_TYPE, &kt, sizeof(kt)},
		{CKA_VALUE, (void *)key, len},  {CKA_TOKEN, &f, sizeof(f)},
		{CKA_EXTRACTABLE, &t, sizeof(t)},
	};
	CK_OBJECT_HANDLE k = CK_INVALID_HANDLE;
	assert_ok(p11->C_CreateObject(s, tmpl, 5, &k));
	return k;
}

int h_log_contains(const h_env *e, const char *s)
{
	FILE *f = fopen(e->log, "r");
	if (!f)
		return 0;
	char line[4096];
	int found = 0;
	while (!found && fgets(line, sizeof(line), f))
		found = strstr(line, s) != NULL;
	fclose(f);
	return found;
}

size_t h_unhex(const char *hex, uint8_t *out, size_t max)
{
	size_t n = 0;
	while (hex[0] && hex[1] && n < max) {
		unsigned v;
		if (sscanf(hex, "%2x", &v) != 1)
			break;
		out[n++] = (uint8_t)v;
		hex += 2;
	}
	return n;
}

CK_OBJECT_HANDLE h_find_label(CK_SESSION_HANDLE s, const char *label)
{
	CK_ATTRIBUTE q = {CKA_LABEL, (void *)label, strlen(label)};
	CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
	CK_ULONG n = 0;
	assert_ok(p11->C_FindObjectsInit(s, &q, 1));
	assert_ok(p11->C_FindObjects(s, &h, 1, &n));
	assert_ok(p11->C_FindObjectsFinal(s));
	assert_int_equal(n, 1);
	return h;
}

CK_RV h_encrypt_probe(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE k, uint8_t *out,
		      CK_ULONG *ol)
{
	static uint8_t iv[16];
	CK_MECHANISM m = {CKM_AES_CBC_PAD, iv, 16};
	CK_RV rv = p11->C_EncryptInit(s, &m, k);
	return rv != CKR_OK ? rv : p11->C_Encrypt(s, (CK_BYTE_PTR) "tde page", 8, out, ol);
}

typedef struct wrap_job {
	CK_SLOT_ID slot;
	CK_OBJECT_HANDLE kms, key;
	h_wrap_result *r;
} wrap_job;

static void *wrap_thread(void *arg)
{
	wrap_job *j = arg;
	CK_SESSION_HANDLE s;
	CK_MECHANISM m = {CKM_P11KMS_KMS_ENVELOPE, NULL, 0};
	j->r->rv = p11->C_OpenSession(j->slot, CKF_SERIAL_SESSION, NULL, NULL, &s);
	j->r->len = sizeof(j->r->blob);
	if (j->r->rv == CKR_OK) {
		j->r->rv = p11->C_WrapKey(s, &m, j->kms, j->key, j->r->blob, &j->r->len);
		p11->C_CloseSession(s);
	}
	return NULL;
}

void h_wrap_in_threads(CK_SLOT_ID slot, CK_OBJECT_HANDLE kms, CK_OBJECT_HANDLE key,
		       h_wrap_result *out, int n)
{
	pthread_t th[16];
	wrap_job jobs[16];
	assert_true(n > 0 && n <= 16);
	for (int i = 0; i < n; i++) {
		jobs[i] = (wrap_job){.slot = slot, .kms = kms, .key = key, .r = &out[i]};
		assert_int_equal(pthread_create(&th[i], NULL, wrap_thread, &jobs[i]), 0);
	}
	for (int i = 0; i < n; i++)
		pthread_join(th[i], NULL);
}

void h_write_file(const char *path, const void *p, size_t n)
{
	FILE *f = fopen(path, "wb");
	assert_non_null(f);
	assert_int_equal(fwrite(p, 1, n, f), n);
	fclose(f);
}

size_t h_read_file(const char *path, void *p, size_t max)
{
	FILE *f = fopen(path, "rb");
	assert_non_null(f);
	size_t n = fread(p, 1, max, f);
	fclose(f);
	return n;
}

/* --- KMS key objects: the standard-mechanism tests' common steps -------- */

CK_ULONG h_deverr(CK_SESSION_HANDLE s)
{
	CK_SESSION_INFO si;
	assert_ok(p11->C_GetSessionInfo(s, &si));
	return si.ulDeviceError;
}

CK_OBJECT_HANDLE h_find_obj(CK_SESSION_HANDLE s, CK_OBJECT_CLASS cls, const char *label)
{
	CK_ATTRIBUTE q[] = {{CKA_CLASS, &cls, sizeof(cls)},
			    {CKA_LABEL, (void *)label, strlen(label)}};
	CK_OBJECT_HANDLE h[4];
	CK_ULONG n = 0;
	assert_ok(p11->C_FindObjectsInit(s, q, 2));
	assert_ok(p11->C_FindObjects(s, h, 4, &n));
	assert_ok(p11->C_FindObjectsFinal(s));
	if (n != 1)
		fail_msg("C_FindObjects(class %lu, label %s) found %lu objects",
			 (unsigned long)cls, label, (unsigned long)n);
	return h[0];
}

CK_ULONG h_attr_ulong(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE h, CK_ATTRIBUTE_TYPE t)
{
	CK_ULONG v = 0;
	CK_ATTRIBUTE a = {t, &v, sizeof(v)};
	assert_ok(p11->C_GetAttributeValue(s, h, &a, 1));
	return v;
}

bool h_attr_bool(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE h, CK_ATTRIBUTE_TYPE t)
{
	CK_BBOOL v = CK_FALSE;
	CK_ATTRIBUTE a = {t, &v, 1};
	assert_ok(p11->C_GetAttributeValue(s, h, &a, 1));
	return v == CK_TRUE;
}

const char *h_usage_data(const char *keys)
{
	static char out[8192];
	size_t o = 0;
	for (const char *p = keys; *p;) {
		const char *m = NULL;
		size_t ml = 0;
		static const char *const typed[] = {"\"type\": \"aes\"", "\"type\": \"rsa\""};
		for (size_t i = 0; i < 2; i++)
			if (strncmp(p, typed[i], strlen(typed[i])) == 0) {
				m = typed[i];
				ml = strlen(m);
			}
		const char *add = m ? ", \"usage\": \"data\"" : "";
		size_t take = m ? ml : 1;
		assert_true(o + take + strlen(add) < sizeof(out));
		memcpy(out + o, p, take);
		o += take;
		memcpy(out + o, add, strlen(add));
		o += strlen(add);
		p += take;
	}
	out[o] = 0;
	return out;
}

void h_fill(uint8_t *p, size_t n, uint8_t seed)
{
	for (size_t i = 0; i < n; i++)
		p[i] = (uint8_t)(seed + 7 * i);
}

/* A template for a session secret key whose value can be read back; AES
 * keys also encrypt (generic secrets cannot). Returns its length. */
static CK_ULONG shown_key_tmpl(CK_ATTRIBUTE t[7], CK_KEY_TYPE *kt)
{
	static CK_OBJECT_CLASS c = CKO_SECRET_KEY;
	static CK_BBOOL f = CK_FALSE, tr = CK_TRUE;
	const CK_ATTRIBUTE a[] = {
		{CKA_CLASS, &c, sizeof(c)}, {CKA_KEY_TYPE, kt, sizeof(*kt)},
		{CKA_TOKEN, &f, 1},	    {CKA_SENSITIVE, &f, 1},
		{CKA_EXTRACTABLE, &tr, 1},  {CKA_ENCRYPT, &tr, 1},
		{CKA_DECRYPT, &tr, 1},
	};
	memcpy(t, a, sizeof(a));
	return *kt == CKK_AES ? 7 : 5;
}

CK_OBJECT_HANDLE h_import_key(CK_SESSION_HANDLE s, CK_KEY_TYPE kt, const uint8_t *v,
			      CK_ULONG len)
{
	CK_ATTRIBUTE tmpl[8] = {{CKA_VALUE, (void *)v, len}};
	CK_ULONG n = 1 + shown_key_tmpl(tmpl + 1, &kt);
	CK_OBJECT_HANDLE k = CK_INVALID_HANDLE;
	assert_ok(p11->C_CreateObject(s, tmpl, n, &k));
	return k;
}

void h_key_value(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE k, uint8_t *out, CK_ULONG *len)
{
	CK_ATTRIBUTE a = {CKA_VALUE, out, *len};
	assert_ok(p11->C_GetAttributeValue(s, k, &a, 1));
	*len = a.ulValueLen;
}

CK_RV h_unwrap_as(CK_SESSION_HANDLE s, CK_MECHANISM *m, CK_OBJECT_HANDLE with,
		  const uint8_t *blob, CK_ULONG bl, CK_KEY_TYPE kt, CK_OBJECT_HANDLE *out)
{
	CK_ATTRIBUTE tmpl[7];
	CK_ULONG n = shown_key_tmpl(tmpl, &kt);
	return p11->C_UnwrapKey(s, m, with, (CK_BYTE_PTR)blob, bl, tmpl, n, out);
}

void h_unwrap_expect(CK_SESSION_HANDLE s, CK_MECHANISM *m, CK_OBJECT_HANDLE with,
		     const uint8_t *blob, CK_ULONG bl, CK_KEY_TYPE kt, const uint8_t *want,
		     CK_ULONG wl)
{
	CK_OBJECT_HANDLE k;
	assert_ok(h_unwrap_as(s, m, with, blob, bl, kt, &k));
	uint8_t v[128];
	CK_ULONG vl = sizeof(v);
	h_key_value(s, k, v, &vl);
	assert_int_equal(vl, wl);
	assert_memory_equal(v, want, wl);
}

CK_MECHANISM h_oaep(CK_RSA_PKCS_OAEP_PARAMS *p, bool sha256)
{
	p->hashAlg = sha256 ? CKM_SHA256 : CKM_SHA_1;
	p->mgf = sha256 ? CKG_MGF1_SHA256 : CKG_MGF1_SHA1;
	p->source = CKZ_DATA_SPECIFIED;
	p->pSourceData = NULL;
	p->ulSourceDataLen = 0;
	return (CK_MECHANISM){CKM_RSA_PKCS_OAEP, p, sizeof(*p)};
}

void h_same_aes_key(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE a, CK_OBJECT_HANDLE b)
{
	uint8_t pt[32], c1[64], c2[64], iv[12];
	h_fill(pt, sizeof(pt), 0x33);
	h_fill(iv, sizeof(iv), 0x44);
	CK_MECHANISM ecb = {CKM_AES_ECB, NULL, 0};
	CK_GCM_PARAMS gp = {iv, 12, 96, (CK_BYTE_PTR) "aad", 3, 128};
	CK_MECHANISM gcm = {CKM_AES_GCM, &gp, sizeof(gp)};
	CK_MECHANISM *ms[] = {&ecb, &gcm};
	for (int i = 0; i < 2; i++) {
		CK_ULONG l1 = sizeof(c1), l2 = sizeof(c2);
		assert_ok(p11->C_EncryptInit(s, ms[i], a));
		assert_ok(p11->C_Encrypt(s, pt, sizeof(pt), c1, &l1));
		assert_ok(p11->C_EncryptInit(s, ms[i], b));
		assert_ok(p11->C_Encrypt(s, pt, sizeof(pt), c2, &l2));
		assert_int_equal(l1, l2);
		assert_memory_equal(c1, c2, l1);
	}
}

void h_env_path(const h_env *e, const char *name, char *out, size_t n)
{
	snprintf(out, n, "%s/%s", e->dir, name);
}

void h_env_write(const h_env *e, const char *name, const void *p, size_t n)
{
	char path[400];
	h_env_path(e, name, path, sizeof(path));
	h_write_file(path, p, n);
}

size_t h_env_read(const h_env *e, const char *name, void *p, size_t max)
{
	char path[400];
	h_env_path(e, name, path, sizeof(path));
	return h_read_file(path, p, max);
}

/* The bytes as lowercase hex, base64 and base64url (the encodings a wire
 * body or a careless log line would use); each encoding's first 24
 * characters, enough to be unique, are searched in the log. */
bool h_log_has_bytes(const h_env *e, const uint8_t *p, size_t n)
{
	static const char std[] =
		"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
	char hex[49], b64[25], b64u[25];
	size_t hn = n < 12 ? n : 12;
	for (size_t i = 0; i < hn; i++)
		snprintf(hex + 2 * i, 3, "%02x", p[i]);
	size_t o = 0;
	for (size_t i = 0; i + 2 < n && o + 4 <= 24; i += 3) {
		uint32_t v = (uint32_t)p[i] << 16 | (uint32_t)p[i + 1] << 8 | p[i + 2];
		for (int k = 3; k >= 0; k--)
			b64[o++] = std[(v >> (6 * k)) & 63];
	}
	b64[o] = 0;
	for (size_t i = 0; i <= o; i++)
		b64u[i] = b64[i] == '+' ? '-' : b64[i] == '/' ? '_' : b64[i];
	return h_log_contains(e, hex) || (o && (h_log_contains(e, b64) || h_log_contains(e, b64u)));
}
