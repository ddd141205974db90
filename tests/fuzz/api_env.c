/* SPDX-License-Identifier: Apache-2.0 */
/* fuzz_api's environment (api_env.h). */
#include "api_env.h"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>

#include "common/clock.h"
#include "common/secmem.h"
#include "fuzz_common.h"

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

CK_FUNCTION_LIST_3_0 *api_f;

enum { OPT, REQ, NSLOTS };
static const char *const slot_names[NSLOTS] = {"opt", "req"};
static CK_SLOT_ID slot_ids[NSLOTS];

static char config_path[300], init_string[320], key_path[300];
static char store_path[NSLOTS][300];

/* A setup step that must work: the target is useless otherwise. */
#define SETUP(expr)                                                            \
	do {                                                                   \
		CK_RV rv_ = (expr);                                            \
		if (rv_ != CKR_OK) {                                           \
			fprintf(stderr, "fuzz_api: setup: %s: 0x%lx\n", #expr, \
				(unsigned long)rv_);                           \
			abort();                                               \
		}                                                              \
	} while (0)

/* --- files ------------------------------------------------------------------- */

typedef struct blob {
	uint8_t *p;
	size_t n;
	bool present;
} blob;

static void write_file(const char *path, const void *p, size_t n, mode_t mode)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, mode);
	FUZZ_CHECK(fd >= 0);
	FUZZ_CHECK(write(fd, p, n) == (ssize_t)n);
	FUZZ_CHECK(fchmod(fd, mode) == 0);
	close(fd);
}

/* The local provider's key file, as setup made it. */
static void write_key_file(void)
{
	uint8_t key[32];
	for (int i = 0; i < 32; i++)
		key[i] = (uint8_t)(i * 7 + 1);
	write_file(key_path, key, sizeof(key), 0600);
}

static void blob_free(blob *b)
{
	free(b->p);
	memset(b, 0, sizeof(*b));
}

static void read_blob(const char *path, blob *b)
{
	blob_free(b);
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return;
	struct stat st;
	FUZZ_CHECK(fstat(fd, &st) == 0);
	b->present = true;
	b->n = (size_t)st.st_size;
	b->p = malloc(b->n ? b->n : 1);
	FUZZ_CHECK(b->p != NULL);
	size_t got = 0;
	while (got < b->n) {
		ssize_t r = read(fd, b->p + got, b->n - got);
		FUZZ_CHECK(r > 0);
		got += (size_t)r;
	}
	close(fd);
}

/* Is the file as b says? Size first: a store written to is mostly longer. */
static bool file_is(const char *path, const blob *b)
{
	struct stat st;
	if (stat(path, &st) != 0)
		return !b->present;
	if (!b->present || (size_t)st.st_size != b->n)
		return false;
	blob now = {0};
	read_blob(path, &now);
	bool same = now.n == b->n && memcmp(now.p, b->p, b->n) == 0;
	blob_free(&now);
	return same;
}

static void suffixed(char *out, size_t n, const char *path, const char *sfx)
{
	int k = snprintf(out, n, "%s%s", path, sfx);
	FUZZ_CHECK(k > 0 && (size_t)k < n);
}

/* What setup left (no WAL: the module was finalized), and what the
 * stores look like once the module is started again and warmed up. */
static blob pristine[NSLOTS], base_db[NSLOTS], base_wal[NSLOTS];
static struct timespec base_mtime[NSLOTS];

static void snapshot_baseline(void)
{
	char wal[320];
	for (int i = 0; i < NSLOTS; i++) {
		struct stat st;
		read_blob(store_path[i], &base_db[i]);
		FUZZ_CHECK(stat(store_path[i], &st) == 0);
		base_mtime[i] = st.st_mtim;
		suffixed(wal, sizeof(wal), store_path[i], "-wal");
		read_blob(wal, &base_wal[i]);
	}
}

/* The common case, without reading: SQLite in WAL mode writes a change
 * to the WAL first, so an empty WAL and a database file of the same size
 * and time as the baseline's are the baseline. */
static bool store_untouched(int i, const char *wal)
{
	struct stat db, w;
	return base_db[i].present && (!base_wal[i].present || base_wal[i].n == 0) &&
	       (stat(wal, &w) != 0 || w.st_size == 0) && stat(store_path[i], &db) == 0 &&
	       (size_t)db.st_size == base_db[i].n && db.st_mtim.tv_sec == base_mtime[i].tv_sec &&
	       db.st_mtim.tv_nsec == base_mtime[i].tv_nsec;
}

/* An empty WAL is no WAL: the module's C_Finalize removes it. */
static bool wal_is(const char *path, const blob *b)
{
	struct stat st;
	bool empty_now = stat(path, &st) != 0 || st.st_size == 0;
	return (empty_now && (!b->present || b->n == 0)) || file_is(path, b);
}

static bool stores_unchanged(void)
{
	char wal[320];
	for (int i = 0; i < NSLOTS; i++) {
		suffixed(wal, sizeof(wal), store_path[i], "-wal");
		if (store_untouched(i, wal))
			continue;
		if (!file_is(store_path[i], &base_db[i]) || !wal_is(wal, &base_wal[i]))
			return false;
	}
	return true;
}

static void restore_stores(void)
{
	char p[320];
	for (int i = 0; i < NSLOTS; i++) {
		suffixed(p, sizeof(p), store_path[i], "-wal");
		unlink(p);
		suffixed(p, sizeof(p), store_path[i], "-shm");
		unlink(p);
		write_file(store_path[i], pristine[i].p, pristine[i].n, 0600);
	}
}

/* --- the tables ------------------------------------------------------------------ */

static CK_SESSION_HANDLE sessions[API_SESSIONS];
static CK_OBJECT_HANDLE objects[API_OBJECTS];
/* objects[0..BASE_REQ): what opt shows without a login (its public token
 * objects and KMS key objects), [BASE_REQ..BASE_END): the same of req
 * (their handles are the same at every start of the module, which
 * warm_same() checks), then what the input makes or finds. Private
 * objects get their handles when a login loads them, from a counter that
 * earlier inputs moved on: an input finds them (C_FindObjects) after its
 * login, as a caller does. */
#define BASE_REQ 8
#define BASE_END 14
static CK_OBJECT_HANDLE base[BASE_END];
static unsigned next_session = 2, next_object = BASE_END;

/* Handles the input closed or destroyed (stale handles are good garbage). */
#define TRACK 64
static CK_SESSION_HANDLE closed_s[TRACK];
static CK_OBJECT_HANDLE gone_o[TRACK];
static unsigned nclosed_s, ngone_o;

static unsigned pin_budget, init_budget, fin_budget;
/* For the summary at exit: how often the fast path was left. */
static unsigned long n_inputs, n_restarts, n_starts;
static bool finalized_by_input;
/* The input moved the clock or changed the key file: the module's
 * revalidation state is then the input's, and only a restart clears it. */
static bool env_touched;

/* The module's clock (clock_set_fake): the same at every input's start,
 * so revalidation, creation times and rotation warnings do not depend on
 * when an input runs; an input moves it on to make the module revalidate
 * its sealing keys (revalidate_seconds 60). */
#define FAKE_T0 1767225600ull /* 2026-01-01 */
static uint64_t fake_now = FAKE_T0;
static uint64_t fake_clock(void *arg)
{
	(void)arg;
	return fake_now;
}

void api_clock_advance(CK_ULONG seconds)
{
	fake_now += seconds;
	env_touched = true;
}

bool api_env_touched(void)
{
	return env_touched;
}

void api_keyfile(uint8_t how)
{
	static const uint8_t other[32] = {1, 2, 3};
	char moved[320];
	suffixed(moved, sizeof(moved), key_path, ".moved");
	switch (how % 5) {
	case 0: /* readable by others: the provider must refuse it */
		FUZZ_CHECK(chmod(key_path, 0644) == 0 || errno == ENOENT);
		break;
	case 1: /* gone */
		FUZZ_CHECK(rename(key_path, moved) == 0 || errno == ENOENT);
		break;
	case 2: /* back */
		FUZZ_CHECK(rename(moved, key_path) == 0 || errno == ENOENT);
		break;
	case 3: /* another key: a rotated master key, blobs of the old one */
		write_file(key_path, other, sizeof(other), 0600);
		break;
	default: /* as setup made it */
		write_key_file();
		break;
	}
	env_touched = true;
}

static CK_C_INITIALIZE_ARGS init_args;

const char *api_init_string(void)
{
	return init_string;
}

bool api_slot_known(CK_SLOT_ID s)
{
	return s == slot_ids[OPT] || s == slot_ids[REQ];
}

bool api_spend_pin(void)
{
	return pin_budget ? (pin_budget--, true) : false;
}

bool api_spend_init(void)
{
	return init_budget ? (init_budget--, true) : false;
}

bool api_spend_finalize(void)
{
	return fin_budget ? (fin_budget--, true) : false;
}

void api_session_opened(CK_SESSION_HANDLE h)
{
	sessions[next_session] = h;
	next_session = next_session + 1 < API_SESSIONS ? next_session + 1 : 2;
}

void api_session_closed(CK_SESSION_HANDLE h)
{
	if (nclosed_s < TRACK)
		closed_s[nclosed_s++] = h;
}

void api_object_made(CK_OBJECT_HANDLE h)
{
	if (h == CK_INVALID_HANDLE)
		return;
	for (unsigned i = 0; i < API_OBJECTS; i++)
		if (objects[i] == h)
			return;
	objects[next_object] = h;
	next_object = next_object + 1 < API_OBJECTS ? next_object + 1 : BASE_END;
}

void api_object_gone(CK_OBJECT_HANDLE h)
{
	if (ngone_o < TRACK)
		gone_o[ngone_o++] = h;
}

/* After C_Finalize the module holds no secret: whatever secure memory is
 * still in use is a secret never freed (LeakSanitizer does not see secure
 * memory, which comes from mmap). */
static void no_secrets_left(const char *when)
{
	if (sec_in_use() != 0)
		api_finding(when, "secure memory still in use after C_Finalize: a secret "
				  "that was never freed (or never wiped)");
}

void api_module_finalized(void)
{
	finalized_by_input = true;
	no_secrets_left("C_Finalize");
}

/* Find every object the session sees into base[from..to). */
static void find_into(CK_SESSION_HANDLE s, unsigned from, unsigned to)
{
	CK_ULONG n = 0;
	SETUP(api_f->C_FindObjectsInit(s, NULL, 0));
	SETUP(api_f->C_FindObjects(s, &base[from], to - from, &n));
	SETUP(api_f->C_FindObjectsFinal(s));
}

static CK_OBJECT_HANDLE find_label(CK_SESSION_HANDLE s, const char *label)
{
	CK_ATTRIBUTE t = {CKA_LABEL, (void *)label, strlen(label)};
	CK_OBJECT_HANDLE h = CK_INVALID_HANDLE;
	CK_ULONG n = 0;
	SETUP(api_f->C_FindObjectsInit(s, &t, 1));
	SETUP(api_f->C_FindObjects(s, &h, 1, &n));
	SETUP(api_f->C_FindObjectsFinal(s));
	FUZZ_CHECK(n == 1);
	return h;
}

static CK_SESSION_HANDLE open_rw(int slot)
{
	CK_SESSION_HANDLE s;
	SETUP(api_f->C_OpenSession(slot_ids[slot], CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL,
				   NULL, &s));
	return s;
}

static const CK_ULONG garbage_handles[] = {CK_INVALID_HANDLE, ~0UL, 0xffffffffUL,
					   0x80000000UL, 0x7fffffffUL};

static CK_ULONG garbage(api_prog *r, const CK_ULONG *table, unsigned n, const CK_ULONG *stale,
			unsigned nstale)
{
	uint8_t s = ap_u8(r);
	switch (s % 5) {
	case 0:
		return garbage_handles[(s >> 3) % COUNT(garbage_handles)];
	case 1: /* a real handle in the high bits too: truncated, it would be valid */
		return table[(s >> 3) % n] | (1UL << 32);
	case 2:
		return table[(s >> 3) % n] + 0x10000000UL;
	case 3:
		return nstale ? stale[(s >> 3) % nstale] : CK_INVALID_HANDLE;
	default:
		return ap_u32(r) | 0x40000000UL;
	}
}

CK_SESSION_HANDLE api_session(api_prog *r)
{
	uint8_t s = ap_u8(r);
	if (s >= 0xe0)
		return garbage(r, sessions, API_SESSIONS, closed_s, nclosed_s);
	return sessions[s % API_SESSIONS];
}

CK_OBJECT_HANDLE api_object(api_prog *r)
{
	uint8_t s = ap_u8(r);
	if (s >= 0xe0)
		return garbage(r, objects, API_OBJECTS, gone_o, ngone_o);
	return objects[s % API_OBJECTS];
}

CK_OBJECT_HANDLE api_object_at(unsigned i)
{
	return i < API_OBJECTS ? objects[i] : CK_INVALID_HANDLE;
}

CK_SLOT_ID api_slot(api_prog *r)
{
	uint8_t s = ap_u8(r);
	if (s < 0xe0)
		return slot_ids[s % NSLOTS];
	switch (s % 4) {
	case 0:
		return 0;
	case 1:
		return slot_ids[s % NSLOTS] | (1UL << 32);
	case 2:
		return ~0UL;
	default:
		return ap_u32(r);
	}
}

/* --- setup ----------------------------------------------------------------------- */

static CK_RV initialize(void)
{
	memset(&init_args, 0, sizeof(init_args));
	init_args.flags = CKF_OS_LOCKING_OK;
	init_args.pReserved = init_string;
	return api_f->C_Initialize(&init_args);
}

/* The signing keys (docs/SIGNING.md): PEM files made once per process,
 * a certificate for the EC key. */
static char rsa_pem[300], ec_pem[300], cert_pem[300];
static uint8_t cert_der[2048];
static size_t cert_derlen;

const uint8_t *api_cert_der(size_t *n)
{
	*n = cert_derlen;
	return cert_derlen ? cert_der : NULL;
}

static void write_pem_key(EVP_PKEY *pk, const char *path)
{
	FILE *f = fopen(path, "w");
	FUZZ_CHECK(f && PEM_write_PrivateKey(f, pk, NULL, NULL, 0, NULL, NULL) == 1);
	FUZZ_CHECK(fclose(f) == 0 && chmod(path, 0600) == 0);
}

static void write_signing_keys(const char *dir)
{
	snprintf(rsa_pem, sizeof(rsa_pem), "%s/rsa.pem", dir);
	snprintf(ec_pem, sizeof(ec_pem), "%s/ec.pem", dir);
	snprintf(cert_pem, sizeof(cert_pem), "%s/ec-cert.pem", dir);
	EVP_PKEY *rsa = EVP_RSA_gen(2048), *ec = EVP_EC_gen("P-256");
	FUZZ_CHECK(rsa && ec);
	write_pem_key(rsa, rsa_pem);
	write_pem_key(ec, ec_pem);
	X509 *x = X509_new();
	FUZZ_CHECK(x && X509_set_version(x, 2) && X509_set_pubkey(x, ec) &&
		   X509_gmtime_adj(X509_getm_notBefore(x), 0) &&
		   X509_gmtime_adj(X509_getm_notAfter(x), 86400) &&
		   X509_NAME_add_entry_by_txt(X509_get_subject_name(x), "CN", MBSTRING_ASC,
					      (const unsigned char *)"fuzz", -1, -1, 0) &&
		   X509_set_issuer_name(x, X509_get_subject_name(x)) &&
		   X509_sign(x, ec, EVP_sha256()) > 0);
	FILE *f = fopen(cert_pem, "w");
	FUZZ_CHECK(f && PEM_write_X509(f, x) == 1 && fclose(f) == 0);
	unsigned char *d = NULL;
	int dl = i2d_X509(x, &d);
	FUZZ_CHECK(dl > 0 && (size_t)dl <= sizeof(cert_der));
	memcpy(cert_der, d, (size_t)dl);
	cert_derlen = (size_t)dl;
	OPENSSL_free(d);
	X509_free(x);
	EVP_PKEY_free(rsa);
	EVP_PKEY_free(ec);
}

static void write_config(const char *dir)
{
	char cfg[4096];
	write_signing_keys(dir);
	int k = snprintf(key_path, sizeof(key_path), "%s/master.key", dir);
	FUZZ_CHECK(k > 0 && (size_t)k < sizeof(key_path));
	write_key_file();
	const bool verbose = getenv("P11KMS_FUZZ_VERBOSE") != NULL;
	int n = snprintf(
		cfg, sizeof(cfg),
		"{\"log\": {\"level\": \"%s\", \"destination\": \"%s\"},\n"
		" \"providers\": [\n"
		"  {\"name\": \"opt\", \"type\": \"local\", \"key_file\": \"%s\",\n"
		"   \"store\": \"%s\", \"login\": \"optional\", \"pin_kdf_cost\": 12,\n"
		"   \"max_sessions\": 8, \"revalidate_seconds\": 60,\n"
		"   \"keys\": [{\"id\": \"env\", \"label\": \"kms-env\"},\n"
		"            {\"id\": \"aes\", \"label\": \"kms-aes\", \"type\": \"aes\"},\n"
		"            {\"id\": \"aes128\", \"label\": \"kms-aes128\", \"type\": \"aes\",\n"
		"             \"bits\": 128, \"usage\": \"data\"}]},\n"
		"  {\"name\": \"req\", \"type\": \"local\", \"key_file\": \"%s\",\n"
		"   \"store\": \"%s\", \"login\": \"required\", \"pin_kdf_cost\": 12,\n"
		"   \"max_sessions\": 8, \"revalidate_seconds\": 60,\n"
		"   \"keys\": [{\"id\": \"env\", \"label\": \"kms-env\"},\n"
		"            {\"id\": \"rsa\", \"label\": \"kms-rsa\", \"type\": \"rsa\"},\n"
		"            {\"id\": \"%s\", \"label\": \"sign-rsa\", \"type\": \"rsa\"},\n"
		"            {\"id\": \"%s\", \"label\": \"sign-ec\", \"type\": \"ec\",\n"
		"             \"certificate\": \"%s\"}]}\n"
		" ]}\n",
		verbose ? "trace" : "info", verbose ? "stderr" : "/dev/null", key_path,
		store_path[OPT], key_path, store_path[REQ], rsa_pem, ec_pem, cert_pem);
	FUZZ_CHECK(n > 0 && (size_t)n < sizeof(cfg));
	write_file(config_path, cfg, (size_t)n, 0600);
}

static CK_SLOT_ID fnv_slot(const char *name)
{
	uint32_t h = 2166136261u; /* the module's default slot id */
	for (const char *p = name; *p; p++)
		h = (h ^ (unsigned char)*p) * 16777619u;
	return h & 0x7fffffffu;
}

static void init_token(int i)
{
	CK_UTF8CHAR label[32];
	memset(label, ' ', sizeof(label));
	memcpy(label, slot_names[i], strlen(slot_names[i]));
	SETUP(api_f->C_InitToken(slot_ids[i], (CK_UTF8CHAR_PTR)SO_PIN, strlen(SO_PIN), label));
	CK_SESSION_HANDLE s;
	SETUP(api_f->C_OpenSession(slot_ids[i], CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL,
				   &s));
	SETUP(api_f->C_Login(s, CKU_SO, (CK_UTF8CHAR_PTR)SO_PIN, strlen(SO_PIN)));
	SETUP(api_f->C_InitPIN(s, (CK_UTF8CHAR_PTR)USER_PIN, strlen(USER_PIN)));
	SETUP(api_f->C_Logout(s));
	SETUP(api_f->C_CloseSession(s));
}

typedef struct key_spec {
	const char *label;
	CK_OBJECT_CLASS cls;
	CK_KEY_TYPE kt;
	CK_ULONG len;
	CK_BBOOL priv, sensitive, extractable;
} key_spec;

static void add(CK_ATTRIBUTE *a, CK_ULONG *n, CK_ATTRIBUTE_TYPE t, const void *p, CK_ULONG l)
{
	a[*n].type = t;
	a[*n].pValue = (void *)p;
	a[(*n)++].ulValueLen = l;
}

/* A token object: a secret key of len random bytes (generated when it is
 * AES), or a data object. */
static void make_object(CK_SESSION_HANDLE s, const key_spec *k)
{
	CK_BBOOL t = CK_TRUE;
	uint8_t value[64];
	for (size_t i = 0; i < sizeof(value); i++)
		value[i] = (uint8_t)(0x40 + i);
	CK_ATTRIBUTE a[16];
	CK_ULONG n = 0;
	add(a, &n, CKA_TOKEN, &t, sizeof(t));
	add(a, &n, CKA_PRIVATE, &k->priv, sizeof(k->priv));
	add(a, &n, CKA_LABEL, k->label, strlen(k->label));
	CK_OBJECT_HANDLE h;
	if (k->cls == CKO_DATA) {
		add(a, &n, CKA_CLASS, &k->cls, sizeof(k->cls));
		add(a, &n, CKA_APPLICATION, "fuzz", 4);
		add(a, &n, CKA_VALUE, value, k->len);
		SETUP(api_f->C_CreateObject(s, a, n, &h));
		return;
	}
	add(a, &n, CKA_SENSITIVE, &k->sensitive, sizeof(k->sensitive));
	add(a, &n, CKA_EXTRACTABLE, &k->extractable, sizeof(k->extractable));
	/* Data keys (one role per key, docs/SECURITY.md): the envelope key
	 * objects are the inputs' wrapping keys. */
	const CK_ATTRIBUTE_TYPE uses[] = {CKA_ENCRYPT, CKA_DECRYPT, CKA_SIGN, CKA_VERIFY};
	for (size_t i = 0; i < COUNT(uses); i++)
		add(a, &n, uses[i], &t, sizeof(t));
	if (k->kt == CKK_AES && !k->sensitive) {
		CK_MECHANISM m = {CKM_AES_KEY_GEN, NULL, 0};
		add(a, &n, CKA_VALUE_LEN, &k->len, sizeof(k->len));
		SETUP(api_f->C_GenerateKey(s, &m, a, n, &h));
		return;
	}
	add(a, &n, CKA_CLASS, &k->cls, sizeof(k->cls));
	add(a, &n, CKA_KEY_TYPE, &k->kt, sizeof(k->kt));
	add(a, &n, CKA_VALUE, value, k->len);
	SETUP(api_f->C_CreateObject(s, a, n, &h));
}

static const key_spec opt_public[] = {
	{"tok-aes", CKO_SECRET_KEY, CKK_AES, 32, CK_FALSE, CK_FALSE, CK_TRUE},
	{"tok-aes-locked", CKO_SECRET_KEY, CKK_AES, 16, CK_FALSE, CK_TRUE, CK_FALSE},
	{"tok-hmac", CKO_SECRET_KEY, CKK_GENERIC_SECRET, 32, CK_FALSE, CK_FALSE, CK_TRUE},
	{"ORACLE.TDE.HSM.MK.fuzz", CKO_DATA, 0, 16, CK_FALSE, CK_FALSE, CK_FALSE},
};
static const key_spec opt_private[] = {
	{"tok-private", CKO_SECRET_KEY, CKK_AES, 24, CK_TRUE, CK_FALSE, CK_TRUE},
};
static const key_spec req_keys[] = {
	{"req-aes", CKO_SECRET_KEY, CKK_AES, 32, CK_TRUE, CK_FALSE, CK_TRUE},
	{"req-data", CKO_DATA, 0, 8, CK_FALSE, CK_FALSE, CK_FALSE},
	{"req-hmac", CKO_SECRET_KEY, CKK_GENERIC_SECRET, 64, CK_TRUE, CK_TRUE, CK_FALSE},
};

static void make_tokens(void)
{
	CK_SESSION_HANDLE s;
	for (int i = 0; i < NSLOTS; i++)
		init_token(i);
	SETUP(api_f->C_OpenSession(slot_ids[OPT], CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL,
				   NULL, &s));
	for (size_t i = 0; i < COUNT(opt_public); i++)
		make_object(s, &opt_public[i]);
	SETUP(api_f->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)USER_PIN, strlen(USER_PIN)));
	for (size_t i = 0; i < COUNT(opt_private); i++)
		make_object(s, &opt_private[i]);
	SETUP(api_f->C_CloseSession(s));
	SETUP(api_f->C_OpenSession(slot_ids[REQ], CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL,
				   NULL, &s));
	SETUP(api_f->C_Login(s, CKU_USER, (CK_UTF8CHAR_PTR)USER_PIN, strlen(USER_PIN)));
	for (size_t i = 0; i < COUNT(req_keys); i++)
		make_object(s, &req_keys[i]);
	SETUP(api_f->C_CloseSession(s));
}

/* The base objects, by their place in the table (for writing seeds). */
static void list_objects(void)
{
	CK_SESSION_HANDLE s = open_rw(OPT);
	for (unsigned i = 0; i < BASE_END; i++) {
		char label[64] = "";
		CK_ATTRIBUTE a = {CKA_LABEL, label, sizeof(label) - 1};
		CK_RV rv = api_f->C_GetAttributeValue(s, base[i], &a, 1);
		if (rv != CKR_OK && i >= BASE_REQ) { /* req's, through a req session */
			CK_SESSION_HANDLE q = open_rw(REQ);
			rv = api_f->C_GetAttributeValue(q, base[i], &a, 1);
			(void)api_f->C_CloseSession(q);
		}
		if (rv == CKR_OK)
			label[a.ulValueLen < sizeof(label) ? a.ulValueLen : sizeof(label) - 1] = 0;
		fprintf(stderr, "fuzz_api: object %u: %lu %s\n", i, (unsigned long)base[i],
			rv == CKR_OK ? label : "(not readable without a login)");
	}
	SETUP(api_f->C_CloseSession(s));
}

/* After C_Initialize: the objects each slot shows without a login into
 * the table, opt's token key unsealed (the first operation on a token key
 * does it) so no input pays for it, req's store opened, as any first use
 * would. Then the stores' look, for the dirty check. */
static void warm(void)
{
	n_starts++;
	memset(base, 0, sizeof(base));
	CK_SESSION_HANDLE s = open_rw(OPT);
	find_into(s, 0, BASE_REQ);
	CK_MECHANISM ecb = {CKM_AES_ECB, NULL, 0};
	SETUP(api_f->C_EncryptInit(s, &ecb, find_label(s, "tok-aes")));
	SETUP(api_f->C_CloseSession(s));
	s = open_rw(REQ);
	find_into(s, BASE_REQ, BASE_END);
	SETUP(api_f->C_CloseSession(s));
	snapshot_baseline();
}

/* warm() after a new start of the module: the objects' handles must be
 * the ones of the last start, or inputs would not replay. */
static void warm_same(void)
{
	CK_OBJECT_HANDLE before[BASE_END];
	memcpy(before, base, sizeof(before));
	warm();
	FUZZ_CHECK(memcmp(before, base, sizeof(before)) == 0);
}

/* Finalize (if up), put the stores back, initialize, warm up. */
static void restart(void)
{
	n_restarts++;
	CK_INFO info;
	if (api_f->C_GetInfo(&info) == CKR_OK)
		SETUP(api_f->C_Finalize(NULL));
	no_secrets_left("C_Finalize (between inputs)");
	restore_stores();
	SETUP(initialize());
	warm_same();
}

/* A crash (abort) skips the folder's removal at exit, and minimizing
 * one crashes thousands of times: each folder of this target names its
 * process, and the folders of dead ones are removed at the next start. */
static void mark_and_sweep(const char *dir)
{
	char p[320], cmd[400];
	int n = snprintf(p, sizeof(p), "%s/fuzz_api.pid", dir);
	FUZZ_CHECK(n > 0 && (size_t)n < sizeof(p));
	n = snprintf(cmd, sizeof(cmd), "%ld\n", (long)getpid());
	write_file(p, cmd, (size_t)n, 0600);
	const char *slash = strrchr(dir, '/');
	DIR *d = slash ? opendir(strndupa(dir, (size_t)(slash - dir))) : NULL;
	for (struct dirent *e; d && (e = readdir(d));) {
		char pidfile[600], buf[32] = "";
		if (strncmp(e->d_name, "p11kms-fuzz-", 12) != 0 ||
		    snprintf(pidfile, sizeof(pidfile), "%.*s/%s/fuzz_api.pid",
			     (int)(slash - dir), dir, e->d_name) >= (int)sizeof(pidfile))
			continue;
		int fd = open(pidfile, O_RDONLY | O_CLOEXEC);
		ssize_t got = fd >= 0 ? read(fd, buf, sizeof(buf) - 1) : -1;
		if (fd >= 0)
			close(fd);
		long pid = got > 0 ? strtol(buf, NULL, 10) : 0;
		if (pid <= 0 || kill((pid_t)pid, 0) == 0 || errno != ESRCH)
			continue;
		if (snprintf(cmd, sizeof(cmd), "rm -rf '%.*s/%s'", (int)(slash - dir), dir,
			     e->d_name) < (int)sizeof(cmd) &&
		    system(cmd) != 0)
			fprintf(stderr, "fuzz_api: could not remove %s\n", e->d_name);
	}
	if (d)
		closedir(d);
}

static void summary(void)
{
	if (n_inputs)
		fprintf(stderr, "fuzz_api: %lu inputs; the module started %lu times, the "
				"stores restored %lu times\n",
			n_inputs, n_starts, n_restarts);
}

void api_env_init(void)
{
	if (api_f)
		return;
	atexit(summary);
	fuzz_quiet_log();
	clock_set_fake(fake_clock, NULL);
	CK_INTERFACE *itf = NULL;
	CK_VERSION v3 = {3, 0};
	SETUP(C_GetInterface((CK_UTF8CHAR_PTR) "PKCS 11", &v3, &itf, 0));
	api_f = itf->pFunctionList;
	const char *dir = fuzz_tmpdir();
	mark_and_sweep(dir);
	snprintf(config_path, sizeof(config_path), "%s/p11kms.json", dir);
	snprintf(init_string, sizeof(init_string), "config=%s", config_path);
	for (int i = 0; i < NSLOTS; i++) {
		snprintf(store_path[i], sizeof(store_path[i]), "%s/%s.db", dir, slot_names[i]);
		slot_ids[i] = fnv_slot(slot_names[i]);
	}
	write_config(dir);
	/* C_Initialize(NULL) finds the same configuration. */
	setenv("P11KMS_CONFIG", config_path, 1);
	/* What C_Initialize refuses is logged before any configuration is
	 * read: to stderr, millions of times, unless told otherwise. */
	if (!getenv("P11KMS_FUZZ_VERBOSE"))
		setenv("P11KMS_LOG_FILE", "/dev/null", 0);
	SETUP(initialize());
	make_tokens();
	SETUP(api_f->C_Finalize(NULL));
	for (int i = 0; i < NSLOTS; i++)
		read_blob(store_path[i], &pristine[i]);
	SETUP(initialize());
	warm();
	restart(); /* the handles are checked */
	if (getenv("P11KMS_APIFUZZ_TRACE"))
		list_objects();
}

/* --- each input ------------------------------------------------------------------ */

void api_input_begin(void)
{
	memset(sessions, 0, sizeof(sessions));
	memcpy(objects, base, sizeof(base));
	for (unsigned i = BASE_END; i < API_OBJECTS; i++)
		objects[i] = CK_INVALID_HANDLE;
	next_session = 2;
	next_object = BASE_END;
	nclosed_s = ngone_o = 0;
	pin_budget = 4;
	init_budget = 3;
	fin_budget = 1;
	finalized_by_input = false;
	n_inputs++;
	ap_ring_clear();
	sessions[0] = open_rw(OPT);
	sessions[1] = open_rw(REQ);
}

/* Back to the state every input starts in: no session (so nobody logged
 * in), the stores as setup left them, opt's token key unsealed. Only an
 * input that changed a store or stopped the module pays for more than
 * closing its sessions. */
void api_input_end(void)
{
	CK_INFO info;
	if (env_touched) {
		char moved[320];
		suffixed(moved, sizeof(moved), key_path, ".moved");
		unlink(moved);
		write_key_file();
		fake_now = FAKE_T0;
		env_touched = false;
		restart();
		return;
	}
	bool up = api_f->C_GetInfo(&info) == CKR_OK;
	if (up) {
		(void)api_f->C_CloseAllSessions(slot_ids[OPT]);
		(void)api_f->C_CloseAllSessions(slot_ids[REQ]);
	}
	if (!stores_unchanged()) {
		restart();
	} else if (!up) {
		SETUP(initialize());
		warm_same();
	} else if (finalized_by_input) {
		/* The input started the module again itself: its first calls
		 * then chose which store loaded first, and so the handles. */
		restart();
	}
}
