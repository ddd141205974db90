/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The AES-GCM parameter bounds the documentation states are the module's:
 * the CKM_AES_GCM row of docs/OBJECTS.md and docs/CONFORMANCE.md ("AES-GCM
 * parameters") give the IV lengths and the ulIvBits rule; this program
 * reads them from the files ($P11KMS_SRC) and tries their edges through
 * the exported API, in the classic and the message API.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"

static h_env env;
static CK_SESSION_HANDLE S;
static CK_OBJECT_HANDLE key;

static int setup(void **state)
{
	(void)state;
	h_env_new(&env, "required", "");
	assert_ok(h_initialize(&env));
	h_init_token(&env);
	S = h_user_session(&env);
	uint8_t v[32];
	h_fill(v, sizeof(v), 7);
	key = h_import_aes(S, v, sizeof(v));
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	p11->C_Finalize(NULL);
	h_env_free(&env);
	return 0;
}

/* The first line of docs/<doc> containing marker, copied to line. */
static void doc_line(const char *doc, const char *marker, char *line, size_t n)
{
	const char *src = getenv("P11KMS_SRC");
	char path[512];
	assert_non_null(src);
	snprintf(path, sizeof(path), "%s/docs/%s", src, doc);
	FILE *f = fopen(path, "r");
	assert_non_null(f);
	bool found = false;
	while (!found && fgets(line, (int)n, f))
		found = strstr(line, marker) != NULL;
	fclose(f);
	if (!found)
		fail_msg("%s has no line with \"%s\"", path, marker);
}

/* "<before>A..B" in line: the bounds A and B. */
static void doc_range(const char *line, const char *before, unsigned long *lo,
		      unsigned long *hi)
{
	const char *p = strstr(line, before);
	if (!p || sscanf(p + strlen(before), "%lu..%lu", lo, hi) != 2)
		fail_msg("no \"%sA..B\" in: %s", before, line);
}

static uint8_t iv[512], tag[16], out[64];

static CK_RV encrypt_init(CK_ULONG ivlen, CK_ULONG ivbits)
{
	CK_GCM_PARAMS p = {iv, ivlen, ivbits, NULL, 0, 128};
	CK_MECHANISM m = {CKM_AES_GCM, &p, sizeof(p)};
	CK_RV rv = p11->C_EncryptInit(S, &m, key);
	if (rv == CKR_OK)
		assert_ok(p11->C_SessionCancel(S, CKF_ENCRYPT));
	return rv;
}

static CK_RV encrypt_message(CK_ULONG ivlen)
{
	CK_GCM_MESSAGE_PARAMS p = {iv, ivlen, 0, CKG_NO_GENERATE, tag, 128};
	CK_ULONG ol = sizeof(out);
	return p11->C_EncryptMessage(S, &p, sizeof(p), NULL, 0, (CK_BYTE_PTR) "data", 4, out,
				     &ol);
}

static void test_gcm_bounds_as_documented(void **state)
{
	(void)state;
	char row[2048], conf[2048];
	unsigned long lo, hi, clo, chi;
	doc_line("OBJECTS.md", "| `CKM_AES_GCM` |", row, sizeof(row));
	doc_range(row, "IV ", &lo, &hi);
	doc_line("CONFORMANCE.md", "the IV is ", conf, sizeof(conf));
	doc_range(conf, "the IV is ", &clo, &chi);
	print_message("documented IV lengths: %lu..%lu bytes\n", lo, hi);
	assert_int_equal(lo, clo);
	assert_int_equal(hi, chi);
	assert_true(hi + 1 < sizeof(iv));

	/* The edges, and one past each. */
	assert_ok(encrypt_init(lo, 0));
	assert_ok(encrypt_init(hi, 0));
	assert_rv(encrypt_init(lo - 1, 0), CKR_MECHANISM_PARAM_INVALID);
	assert_rv(encrypt_init(hi + 1, 0), CKR_MECHANISM_PARAM_INVALID);
	/* ulIvBits: 0 or 8 * ulIvLen, as the row says. */
	assert_non_null(strstr(row, "`ulIvBits` 0 or 8 × `ulIvLen`"));
	assert_ok(encrypt_init(12, 96));
	assert_ok(encrypt_init(hi, 8 * hi));
	assert_rv(encrypt_init(12, 95), CKR_MECHANISM_PARAM_INVALID);
	assert_rv(encrypt_init(12, 8), CKR_MECHANISM_PARAM_INVALID);

	/* The message API: the same IV bounds per message. */
	CK_MECHANISM m = {CKM_AES_GCM, NULL, 0};
	assert_ok(p11->C_MessageEncryptInit(S, &m, key));
	assert_ok(encrypt_message(lo));
	assert_ok(encrypt_message(hi));
	assert_rv(encrypt_message(hi + 1), CKR_MECHANISM_PARAM_INVALID);
	assert_ok(p11->C_MessageEncryptFinal(S));
}

int main(void)
{
	h_load();
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_gcm_bounds_as_documented, setup, teardown),
	};
	return cmocka_run_group_tests_name("doc_gcm", tests, NULL, NULL);
}
