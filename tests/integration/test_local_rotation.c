/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Rotating the local provider's key, through the exported API: a token
 * initialized under key file A (the old 32-byte format) keeps working when
 * the configuration becomes "key_file": B, "previous_key_files": [A] with
 * B made by `p11kms create-key-file`: both PINs log in, token objects and
 * A's blobs open, what is encrypted now is B's (the blob header names B's
 * fingerprint), and the first login reseals the token under B
 * (CKA_P11KMS_KMS_KEY_VERSION). With A dropped from the list the token
 * still opens for both PINs; only A's own envelope blobs stop opening,
 * and say which key version they need.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/evp.h>

#include "harness.h"
#include "p11kms/p11kms.h"

#define FP_LEN 8

static h_env env;
static char key_b[320], kms_keys[] = "\"keys\": [{\"id\": \"master\", \"label\": \"kms\"}]";
static char fp_a[2 * FP_LEN + 1], fp_b[2 * FP_LEN + 1];

/* A session key whose value the test reads back after an unwrap: not
 * sensitive, so its envelope blob is an ordinary one (a sensitive key's
 * may only come back sensitive, docs/SECURITY.md). */
static CK_OBJECT_HANDLE import_plain(CK_SESSION_HANDLE s, const uint8_t *key, CK_ULONG len)
{
	CK_OBJECT_CLASS c = CKO_SECRET_KEY;
	CK_KEY_TYPE kt = CKK_AES;
	CK_BBOOL f = CK_FALSE, t = CK_TRUE;
	CK_ATTRIBUTE tmpl[] = {
		{CKA_CLASS, &c, sizeof(c)},    {CKA_KEY_TYPE, &kt, sizeof(kt)},
		{CKA_VALUE, (void *)key, len}, {CKA_TOKEN, &f, sizeof(f)},
		{CKA_SENSITIVE, &f, sizeof(f)}, {CKA_EXTRACTABLE, &t, sizeof(t)},
	};
	CK_OBJECT_HANDLE k = CK_INVALID_HANDLE;
	assert_ok(p11->C_CreateObject(s, tmpl, 6, &k));
	return k;
}


/* The local provider's fingerprint of a key, as its header names it:
 * SHA-256("p11kms local key fingerprint" || key)[0..8), in hex. */
static void fingerprint_hex(const uint8_t key[32], char out[2 * FP_LEN + 1])
{
	static const char label[] = "p11kms local key fingerprint";
	uint8_t in[sizeof(label) - 1 + 32], md[32];
	memcpy(in, label, sizeof(label) - 1);
	memcpy(in + sizeof(label) - 1, key, 32);
	unsigned int n = 0;
	assert_true(EVP_Digest(in, sizeof(in), md, &n, EVP_sha256(), NULL) == 1);
	for (int i = 0; i < FP_LEN; i++)
		snprintf(out + 2 * i, 3, "%02x", md[i]);
}

static void hex8(const uint8_t *p, char out[2 * FP_LEN + 1])
{
	for (int i = 0; i < FP_LEN; i++)
		snprintf(out + 2 * i, 3, "%02x", p[i]);
}

/* Run the tool; its stdout (first 4 KiB) in out. */
static int tool(char *out, size_t outlen, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
static int tool(char *out, size_t outlen, const char *fmt, ...)
{
	char args[1200], cmd[1600];
	va_list ap;
	va_start(ap, fmt);
	vsnprintf(args, sizeof(args), fmt, ap);
	va_end(ap);
	snprintf(cmd, sizeof(cmd), "'%s' %s", getenv("P11KMS_TOOL"), args);
	FILE *p = popen(cmd, "r");
	assert_non_null(p);
	size_t n = fread(out, 1, outlen - 1, p);
	out[n] = 0;
	return pclose(p);
}

/* The configuration with the given key file fields. */
static void write_config(const char *key_fields)
{
	FILE *f = fopen(env.config, "w");
	assert_non_null(f);
	fprintf(f,
		"{ \"log\": {\"level\": \"debug\", \"destination\": \"%s\"},\n"
		"  \"providers\": [ { \"name\": \"test\", \"type\": \"local\", %s,\n"
		"    \"store\": \"%s\", \"login\": \"required\", %s } ] }\n",
		env.log, key_fields, env.store, kms_keys);
	fclose(f);
}

static void use_keys(const char *first, const char *second)
{
	char fields[800];
	if (second)
		snprintf(fields, sizeof(fields),
			 "\"key_file\": \"%s\", \"previous_key_files\": [\"%s\"]", first, second);
	else
		snprintf(fields, sizeof(fields), "\"key_file\": \"%s\"", first);
	write_config(fields);
}

static CK_RV login(CK_SESSION_HANDLE *s, CK_USER_TYPE who)
{
	assert_ok(p11->C_OpenSession(env.slot, CKF_SERIAL_SESSION | CKF_RW_SESSION, NULL, NULL,
				     s));
	return who == CKU_SO ? p11->C_Login(*s, CKU_SO, (CK_UTF8CHAR_PTR)SO_PIN, 8)
			     : p11->C_Login(*s, CKU_USER, (CK_UTF8CHAR_PTR)USER_PIN, 4);
}

static CK_MECHANISM envelope = {CKM_P11KMS_KMS_ENVELOPE, NULL, 0};
static uint8_t probe_a[32], blob_a[512];
static CK_ULONG probe_len, blob_a_len;
static uint8_t wrapped_value[32];

/* A token under A alone, with a token key and a blob A wrapped. */
static int setup(void **state)
{
	(void)state;
	if (!getenv("P11KMS_TOOL")) {
		fprintf(stderr, "P11KMS_TOOL is not set\n");
		return -1;
	}
	h_env_new(&env, "required", kms_keys);
	uint8_t a[32];
	assert_int_equal(h_read_file(env.key_file, a, sizeof(a)), 32);
	fingerprint_hex(a, fp_a);
	assert_ok(h_initialize(&env));
	h_init_token(&env);
	CK_SESSION_HANDLE s = h_user_session(&env);
	CK_OBJECT_HANDLE k = h_aes_key(s, 32, CK_TRUE, "tdek");
	probe_len = sizeof(probe_a);
	assert_ok(h_encrypt_probe(s, k, probe_a, &probe_len));
	h_fill(wrapped_value, sizeof(wrapped_value), 0x31);
	CK_OBJECT_HANDLE v = import_plain(s, wrapped_value, sizeof(wrapped_value));
	blob_a_len = sizeof(blob_a);
	assert_ok(p11->C_WrapKey(s, &envelope, h_find_label(s, "kms"), v, blob_a, &blob_a_len));
	char h[2 * FP_LEN + 1];
	hex8(blob_a + 5, h);
	assert_string_equal(h, fp_a);
	assert_ok(p11->C_Finalize(NULL));

	/* B, made by the tool: it prints B's version. */
	h_env_path(&env, "B.key", key_b, sizeof(key_b));
	char out[4096];
	assert_int_equal(tool(out, sizeof(out), "create-key-file '%s'", key_b), 0);
	uint8_t file_b[48];
	assert_int_equal(h_read_file(key_b, file_b, sizeof(file_b)), 48);
	fingerprint_hex(file_b + 16, fp_b);
	char want[64];
	snprintf(want, sizeof(want), "key version %s", fp_b);
	if (!strstr(out, want))
		fail_msg("create-key-file said: %s", out);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	p11->C_Finalize(NULL);
	h_env_free(&env);
	return 0;
}

/* key_file B, previous A: everything A sealed opens; B encrypts. */
static void test_old_seals_open_new_blobs_are_first_files(void **state)
{
	(void)state;
	use_keys(key_b, env.key_file);
	assert_ok(h_initialize(&env));
	CK_SESSION_HANDLE s;
	assert_ok(login(&s, CKU_USER));
	uint8_t probe[32];
	CK_ULONG pl = sizeof(probe);
	assert_ok(h_encrypt_probe(s, h_find_label(s, "tdek"), probe, &pl));
	assert_int_equal(pl, probe_len);
	assert_memory_equal(probe, probe_a, pl);
	CK_OBJECT_HANDLE kms = h_find_label(s, "kms");
	h_unwrap_expect(s, &envelope, kms, blob_a, blob_a_len, CKK_AES, wrapped_value,
			sizeof(wrapped_value));
	/* A new blob is B's, and opens. */
	CK_OBJECT_HANDLE v = import_plain(s, wrapped_value, sizeof(wrapped_value));
	uint8_t blob_b[512];
	CK_ULONG bl = sizeof(blob_b);
	assert_ok(p11->C_WrapKey(s, &envelope, kms, v, blob_b, &bl));
	char h[2 * FP_LEN + 1];
	hex8(blob_b + 5, h);
	assert_string_equal(h, fp_b);
	h_unwrap_expect(s, &envelope, kms, blob_b, bl, CKK_AES, wrapped_value,
			sizeof(wrapped_value));
	/* The user's login resealed the token under B: the token key objects
	 * name B's version now. */
	char ver[64];
	CK_ATTRIBUTE q = {CKA_P11KMS_KMS_KEY_VERSION, ver, sizeof(ver)};
	assert_ok(p11->C_GetAttributeValue(s, h_find_label(s, "tdek"), &q, 1));
	assert_int_equal(q.ulValueLen, strlen(fp_b));
	assert_memory_equal(ver, fp_b, q.ulValueLen);
	assert_true(h_log_contains(&env, "token resealed"));
	assert_ok(p11->C_CloseSession(s));
	assert_ok(p11->C_Finalize(NULL));

	/* [B] alone: both PINs log in and the token works; only A's own
	 * envelope blobs need A, and say which key version they need. */
	use_keys(key_b, NULL);
	assert_ok(h_initialize(&env));
	assert_ok(login(&s, CKU_USER));
	assert_ok(h_encrypt_probe(s, h_find_label(s, "tdek"), probe, &pl));
	assert_memory_equal(probe, probe_a, pl);
	CK_OBJECT_HANDLE back;
	assert_int_not_equal(h_unwrap_as(s, &envelope, h_find_label(s, "kms"), blob_a, blob_a_len,
					 CKK_AES, &back),
			     CKR_OK);
	char need[80];
	snprintf(need, sizeof(need), "needs local key version %s", fp_a);
	if (!h_log_contains(&env, need)) {
		h_dump_log(&env);
		fail_msg("the log does not say \"%s\"", need);
	}
	assert_ok(p11->C_CloseSession(s));
	CK_SESSION_HANDLE so;
	assert_ok(login(&so, CKU_SO));
	assert_ok(p11->C_Finalize(NULL));
}

/* A list that is not a list of paths fails C_Initialize (the configuration
 * reader says why on stderr); a previous key file that is not a key file,
 * or a key listed twice, fails it with a reason in the log. */
static void test_bad_key_file_lists(void **state)
{
	(void)state;
	char fields[800];
	snprintf(fields, sizeof(fields), "\"key_file\": \"%s\", \"previous_key_files\": \"%s\"",
		 key_b, env.key_file);
	write_config(fields);
	assert_int_not_equal(h_initialize(&env), CKR_OK);
	char junk[320];
	h_env_path(&env, "junk.key", junk, sizeof(junk));
	h_write_file(junk, "0123456789", 10);
	assert_int_equal(chmod(junk, 0600), 0);
	use_keys(key_b, junk);
	assert_int_not_equal(h_initialize(&env), CKR_OK);
	assert_true(h_log_contains(&env, "holds 10 bytes"));
	use_keys(key_b, key_b);
	assert_int_not_equal(h_initialize(&env), CKR_OK);
	assert_true(h_log_contains(&env, "hold the same key"));
}

int main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_old_seals_open_new_blobs_are_first_files, setup,
						teardown),
		cmocka_unit_test_setup_teardown(test_bad_key_file_lists, setup, teardown),
	};
	return cmocka_run_group_tests_name("local_rotation", tests, NULL, NULL);
}
