/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Test harness for the exported API: loads libp11kms.so with dlopen (path
 * from $P11KMS_MODULE), gives the 3.0 function list, and makes a scratch
 * folder with a key file and a configuration for each test.
 */
#ifndef P11KMS_TEST_HARNESS_H
#define P11KMS_TEST_HARNESS_H

#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include "p11kms/p11kms.h"

extern CK_FUNCTION_LIST_3_0 *p11;

typedef struct h_env {
	char dir[256];      /* scratch folder */
	char config[300];   /* its p11kms.json */
	char key_file[300];
	char store[300];
	char log[300];      /* log file the module writes (level trace) */
	char init_str[320]; /* "config=PATH" for pReserved */
	CK_SLOT_ID slot;
} h_env;

/* Load the module once per process (idempotent). */
void h_load(void);
/* Fresh scratch folder and config; login mode "required" or "optional";
 * extra_provider_json is appended inside the provider object (may be ""). */
void h_env_new(h_env *e, const char *login, const char *extra_provider_json);
void h_env_free(h_env *e);
/* C_Initialize with the env's config through pReserved. */
CK_RV h_initialize(const h_env *e);
/* The same in the child of a fork() of a threaded process. ThreadSanitizer
 * cannot follow a thread started there (it dies: "dup thread with used
 * id"): under TSan the child initializes with
 * CKF_LIBRARY_CANT_CREATE_OS_THREADS, so it starts no revalidation thread
 * (the module checks in the callers' threads); everything else runs the
 * same. Elsewhere it is h_initialize. */
CK_RV h_initialize_child(const h_env *e);
/* True in a ThreadSanitizer build. */
extern const int h_tsan;
/* Initialize token (SO PIN "12345678", label "test"), user PIN "1234". */
void h_init_token(h_env *e);
/* Open an RW session and log the user in. */
CK_SESSION_HANDLE h_user_session(const h_env *e);
/* Generate an AES key; token = persistent. */
CK_OBJECT_HANDLE h_aes_key(CK_SESSION_HANDLE s, CK_ULONG len, CK_BBOOL token,
			   const char *label);
/* Import an AES key with given bytes as a session object. */
CK_OBJECT_HANDLE h_import_aes(CK_SESSION_HANDLE s, const uint8_t *key, CK_ULONG len);
/* The single object with this label (fails the test otherwise). */
CK_OBJECT_HANDLE h_find_label(CK_SESSION_HANDLE s, const char *label);
/* AES-CBC-PAD of a fixed message under k with a zero IV: a probe that a
 * key still works and gives the same bytes. */
CK_RV h_encrypt_probe(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE k, uint8_t *out,
		      CK_ULONG *ol);

/* n threads, each with its own session, wrap key under kms with
 * CKM_P11KMS_KMS_ENVELOPE at the same time. */
typedef struct h_wrap_result {
	CK_RV rv;
	uint8_t blob[4096];
	CK_ULONG len;
} h_wrap_result;
void h_wrap_in_threads(CK_SLOT_ID slot, CK_OBJECT_HANDLE kms, CK_OBJECT_HANDLE key,
		       h_wrap_result *out, int n);

/* Print the module log's last lines (not trace) to stderr. */
void h_dump_log(const h_env *e);
/* Does the env's log contain s? */
int h_log_contains(const h_env *e, const char *s);
/* Do these bytes (12 or more) appear in the log, hex or base64 encoded? */
bool h_log_has_bytes(const h_env *e, const uint8_t *p, size_t n);
/* Hex helpers. */
size_t h_unhex(const char *hex, uint8_t *out, size_t max);
/* A cmocka test whose state is given (cloud descriptions for the shared
 * suites: cloud_suite.h, oaep_suite.h). */
#define H_TEST_STATE(name, setup, teardown, state)                                   \
	cmocka_unit_test_prestate_setup_teardown(name, setup, teardown, (void *)(state))

/* KMS key objects (the standard-mechanism tests). */
CK_ULONG h_deverr(CK_SESSION_HANDLE s);
/* The one object of this class and label, by C_FindObjects. */
CK_OBJECT_HANDLE h_find_obj(CK_SESSION_HANDLE s, CK_OBJECT_CLASS cls, const char *label);
CK_ULONG h_attr_ulong(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE h, CK_ATTRIBUTE_TYPE t);
bool h_attr_bool(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE h, CK_ATTRIBUTE_TYPE t);
/* A "keys" JSON with "usage": "data" added to every typed ("aes", "rsa")
 * entry, in a static buffer: the same keys in the data role. */
const char *h_usage_data(const char *keys_json);
void h_fill(uint8_t *p, size_t n, uint8_t seed);
/* A session secret key with a known, readable value. */
CK_OBJECT_HANDLE h_import_key(CK_SESSION_HANDLE s, CK_KEY_TYPE kt, const uint8_t *v,
			      CK_ULONG len);
void h_key_value(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE k, uint8_t *out, CK_ULONG *len);
CK_RV h_unwrap_as(CK_SESSION_HANDLE s, CK_MECHANISM *m, CK_OBJECT_HANDLE with,
		  const uint8_t *blob, CK_ULONG bl, CK_KEY_TYPE kt, CK_OBJECT_HANDLE *out);
/* Unwrap and check the bytes that come out. */
void h_unwrap_expect(CK_SESSION_HANDLE s, CK_MECHANISM *m, CK_OBJECT_HANDLE with,
		     const uint8_t *blob, CK_ULONG bl, CK_KEY_TYPE kt, const uint8_t *want,
		     CK_ULONG wl);
/* CKM_RSA_PKCS_OAEP with SHA-1 or SHA-256 (MGF1 alike), no label. */
CK_MECHANISM h_oaep(CK_RSA_PKCS_OAEP_PARAMS *p, bool sha256);
/* Two AES keys are the same key: equal AES-ECB and AES-GCM (fixed IV)
 * ciphertexts. */
void h_same_aes_key(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE a, CK_OBJECT_HANDLE b);
/* Whole files, for SDK interop (assert on failure). */
void h_write_file(const char *path, const void *p, size_t n);
size_t h_read_file(const char *path, void *p, size_t max);
/* The same for a file NAME in the env's scratch folder. */
void h_env_path(const h_env *e, const char *name, char *out, size_t n);
void h_env_write(const h_env *e, const char *name, const void *p, size_t n);
size_t h_env_read(const h_env *e, const char *name, void *p, size_t max);

/* A test program that cannot run here exits with this, and ctest reports
 * it skipped (SKIP_RETURN_CODE in tests/CMakeLists.txt); scripts/test.sh
 * fails the run on a skip not expected on a fresh Debian 12 machine. */
#define SKIP_RETURN_CODE 77

#define SO_PIN "12345678"
#define USER_PIN "1234"

#define assert_rv(expr, want)                                                  \
	do {                                                                   \
		CK_RV got_rv_ = (expr);                                        \
		if (got_rv_ != (CK_RV)(want))                                  \
			fail_msg("%s: got 0x%lx, want 0x%lx (%s)", #expr,      \
				 (unsigned long)got_rv_, (unsigned long)(want), \
				 #want);                                       \
	} while (0)
#define assert_ok(expr) assert_rv(expr, CKR_OK)

#endif
