/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Standard AES-GCM on Cloud KMS RAW_ENCRYPT_DECRYPT keys, end to end
 * through the exported API against the KMS emulator (docs/GCP.md "Raw
 * AES-GCM keys", docs/REMOTE.md): a key declared "type": "aes" is a
 * CKK_AES object; CKM_AES_GCM encrypts with the IV the KMS generates
 * (written to CK_GCM_PARAMS.pIv, or CK_GCM_MESSAGE_PARAMS.pIv with the
 * message API) and decrypts, wraps and unwraps; its output is plain
 * AES-GCM that @google-cloud/kms rawDecrypt opens and the other way round;
 * tampering is CKR_ENCRYPTED_DATA_INVALID; a corrupted CRC32C either way is
 * refused and logged; a new version takes over encryption while old
 * ciphertexts still open; a disabled or destroyed version fails with the
 * matching ulDeviceError; an ENCRYPT_DECRYPT key declared "aes" is
 * CKR_DEVICE_ERROR with P11KMS_DEVERR_KEY_TYPE; length queries ask the KMS nothing.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "emu.h"
#include "harness.h"

#define gcp(field) emu_str("gcp", field)
#define emuctl(...) emu_ctl("emuctl_gcp.py", __VA_ARGS__)

static h_env env;
static CK_SESSION_HANDLE S;
static char raw_key[512];   /* RAW_ENCRYPT_DECRYPT, AES_256_GCM, this test's own */
static char plain_key[512]; /* ENCRYPT_DECRYPT, declared "aes" by mistake */
static int key_seq;

static const uint8_t MSG[] = "attack at dawn, bring the raw key";
#define MSG_LEN (sizeof(MSG) - 1)

static long emu_count(const char *op)
{
	return emu_ctl_long("emuctl_gcp.py", "count gcp %s", op);
}

static const char *sym_key(void)
{
	return json_string_value(
		json_object_get(json_object_get(json_object_get(emu_info, "gcp"), "keys"),
				"symmetric"));
}

static int start_emulator(void **state)
{
	(void)state;
	h_load();
	if (emu_start("gcpstd") != 0)
		return -1;
	unsetenv("GOOGLE_APPLICATION_CREDENTIALS");
	unsetenv("CLOUDSDK_CONFIG");
	unsetenv("GCE_METADATA_HOST");
	return 0;
}

static int stop_emulator(void **state)
{
	(void)state;
	return emu_stop();
}

/* The token's configuration: sealed by the emulator's ENCRYPT_DECRYPT
 * key, with the KMS keys of keys (a JSON array). */
static void write_config(const char *keys)
{
	FILE *f = fopen(env.config, "w");
	assert_non_null(f);
	fprintf(f,
		"{ \"log\": {\"level\": \"trace\", \"destination\": \"%s\"},\n"
		"  \"providers\": [ { \"name\": \"test\", \"type\": \"gcp\",\n"
		"    \"endpoint\": \"%s\", \"ca_file\": \"%s\", \"credentials_file\": \"%s\",\n"
		"    \"store\": \"%s\", \"seal_with\": \"%s\",\n"
		"    \"keys\": %s,\n"
		"    \"revalidate_seconds\": 1, \"offline_grace_seconds\": 3600 } ] }\n",
		env.log, gcp("endpoint_url"),
		json_string_value(json_object_get(emu_info, "ca_bundle")),
		gcp("service_account_file"), env.store, sym_key(), keys);
	fclose(f);
}

/* A fresh raw key (and a non-raw one) per test, so versions added or
 * disabled by one test do not reach the next. The token is sealed by the
 * emulator's ENCRYPT_DECRYPT key: raw keys cannot seal. */
static int setup_role(bool data)
{
	key_seq++;
	emu_ctl_line(raw_key, sizeof(raw_key), "emuctl_gcp.py", "create-raw std-raw-%d-%d",
		     (int)getpid(), key_seq);
	emu_ctl_line(plain_key, sizeof(plain_key), "emuctl_gcp.py", "create std-ed-%d-%d",
		     (int)getpid(), key_seq);
	h_env_new(&env, "required", "");
	setenv("HOME", env.dir, 1);
	char keys[2048];
	snprintf(keys, sizeof(keys),
		 "[ {\"id\": \"%s\", \"label\": \"raw-aes\", \"type\": \"aes\"},\n"
		 "  {\"id\": \"%s/cryptoKeyVersions/1\", \"label\": \"raw-v1\",\n"
		 "   \"type\": \"aes\", \"bits\": 256},\n"
		 "  {\"id\": \"%s\", \"label\": \"not-raw\", \"type\": \"aes\"} ]",
		 raw_key, raw_key, plain_key);
	write_config(data ? h_usage_data(keys) : keys);
	emuctl("clear-faults");
	assert_ok(h_initialize(&env));
	h_init_token(&env);
	S = h_user_session(&env);
	return 0;
}

/* Most tests here run GCM: the keys in the data role ("usage": "data");
 * setup_wrap for the key wrap tests. */
static int setup(void **state)
{
	(void)state;
	return setup_role(true);
}

static int setup_wrap(void **state)
{
	(void)state;
	return setup_role(false);
}

static int teardown(void **state)
{
	(void)state;
	emuctl("clear-faults");
	p11->C_Finalize(NULL);
	h_env_free(&env);
	return 0;
}

static CK_RV gcm_encrypt(CK_OBJECT_HANDLE k, const char *aad, const uint8_t *pt, CK_ULONG pl,
			 uint8_t iv[12], uint8_t *ct, CK_ULONG *cl)
{
	CK_GCM_PARAMS p = {iv, 12, 96, (CK_BYTE_PTR)aad, aad ? strlen(aad) : 0, 128};
	CK_MECHANISM m = {CKM_AES_GCM, &p, sizeof(p)};
	CK_RV rv = p11->C_EncryptInit(S, &m, k);
	if (rv == CKR_OK)
		rv = p11->C_Encrypt(S, (CK_BYTE_PTR)pt, pl, ct, cl);
	return rv;
}

static CK_RV gcm_decrypt(CK_OBJECT_HANDLE k, const char *aad, const uint8_t *ct, CK_ULONG cl,
			 uint8_t iv[12], uint8_t *pt, CK_ULONG *pl)
{
	CK_GCM_PARAMS p = {iv, 12, 96, (CK_BYTE_PTR)aad, aad ? strlen(aad) : 0, 128};
	CK_MECHANISM m = {CKM_AES_GCM, &p, sizeof(p)};
	CK_RV rv = p11->C_DecryptInit(S, &m, k);
	if (rv == CKR_OK)
		rv = p11->C_Decrypt(S, (CK_BYTE_PTR)ct, cl, pt, pl);
	return rv;
}

static CK_ULONG device_error(void)
{
	CK_SESSION_INFO si;
	assert_ok(p11->C_GetSessionInfo(S, &si));
	return si.ulDeviceError;
}

/* Encrypt MSG under the raw key; the IV and ciphertext||tag come back. */
static void encrypt_msg(const char *label, const char *aad, uint8_t iv[12], uint8_t *ct,
			CK_ULONG *cl)
{
	*cl = MSG_LEN + 16;
	memset(iv, 0xEE, 12);
	assert_ok(gcm_encrypt(h_find_label(S, label), aad, MSG, MSG_LEN, iv, ct, cl));
	assert_int_equal(*cl, MSG_LEN + 16);
}

static void expect_msg(const char *label, const char *aad, const uint8_t *ct, CK_ULONG cl,
		       uint8_t iv[12])
{
	uint8_t pt[256];
	CK_ULONG pl = sizeof(pt);
	assert_ok(gcm_decrypt(h_find_label(S, label), aad, ct, cl, iv, pt, &pl));
	assert_int_equal(pl, MSG_LEN);
	assert_memory_equal(pt, MSG, MSG_LEN);
}

/* The version of the raw key the last request of op went to. */
static long last_version(const char *op)
{
	char path[1024];
	emu_ctl_line(path, sizeof(path), "emuctl_gcp.py", "last-path gcp %s", op);
	const char *v = strstr(path, "/cryptoKeyVersions/");
	assert_non_null(v);
	assert_non_null(strstr(path, raw_key));
	return strtol(v + 19, NULL, 10);
}

static void test_object_is_an_aes_key(void **state)
{
	(void)state;
	emuctl("reset-counters");
	CK_OBJECT_CLASS cls = 0;
	CK_KEY_TYPE kt = 0;
	CK_ULONG len = 0;
	CK_BBOOL extractable = CK_TRUE;
	CK_ATTRIBUTE a[] = {{CKA_CLASS, &cls, sizeof(cls)},
			    {CKA_KEY_TYPE, &kt, sizeof(kt)},
			    {CKA_VALUE_LEN, &len, sizeof(len)},
			    {CKA_EXTRACTABLE, &extractable, sizeof(extractable)}};
	const char *labels[] = {"raw-aes", "raw-v1", "not-raw"};
	for (size_t i = 0; i < 3; i++) {
		assert_ok(p11->C_GetAttributeValue(S, h_find_label(S, labels[i]), a, 4));
		assert_int_equal(cls, CKO_SECRET_KEY);
		assert_int_equal(kt, CKK_AES);
		assert_int_equal(len, 32);
		assert_int_equal(extractable, CK_FALSE);
	}
	/* Declared, not discovered: nothing asked of the KMS. */
	assert_int_equal(emu_count("ListCryptoKeyVersions"), 0);
	assert_int_equal(emu_count("RawEncrypt"), 0);
}

static void test_roundtrip_with_aad(void **state)
{
	(void)state;
	uint8_t iv[12], ct[256];
	CK_ULONG cl;
	const uint8_t untouched[12] = {0xEE, 0xEE, 0xEE, 0xEE, 0xEE, 0xEE,
				       0xEE, 0xEE, 0xEE, 0xEE, 0xEE, 0xEE};
	emuctl("reset-counters");
	encrypt_msg("raw-aes", "hdr-1", iv, ct, &cl);
	/* The KMS's IV came back in pIv. */
	assert_memory_not_equal(iv, untouched, 12);
	assert_memory_not_equal(ct, MSG, MSG_LEN);
	assert_int_equal(emu_count("RawEncrypt"), 1);
	assert_int_equal(last_version("RawEncrypt"), 1);
	expect_msg("raw-aes", "hdr-1", ct, cl, iv);
	assert_int_equal(emu_count("RawDecrypt"), 1);
	/* No AAD at all works too. */
	encrypt_msg("raw-aes", NULL, iv, ct, &cl);
	expect_msg("raw-aes", NULL, ct, cl, iv);
}

static void test_fresh_iv_each_time(void **state)
{
	(void)state;
	uint8_t iv1[12], iv2[12], ct1[256], ct2[256];
	CK_ULONG l1, l2;
	encrypt_msg("raw-aes", "same", iv1, ct1, &l1);
	encrypt_msg("raw-aes", "same", iv2, ct2, &l2);
	assert_memory_not_equal(iv1, iv2, 12);
	assert_memory_not_equal(ct1, ct2, l1);
	expect_msg("raw-aes", "same", ct1, l1, iv1);
	expect_msg("raw-aes", "same", ct2, l2, iv2);
}

static void test_interoperates_with_sdk(void **state)
{
	(void)state;
	uint8_t iv[12], ct[256], out[256];
	CK_ULONG cl;
	char ctf[400], ivf[400], outf[400], inf[400];
	snprintf(ctf, sizeof(ctf), "%s/ct.bin", env.dir);
	snprintf(ivf, sizeof(ivf), "%s/iv.bin", env.dir);
	snprintf(outf, sizeof(outf), "%s/out.bin", env.dir);
	snprintf(inf, sizeof(inf), "%s/in.bin", env.dir);
	/* @google-cloud/kms rawDecrypt opens the module's ciphertext. */
	encrypt_msg("raw-aes", "tenant=7", iv, ct, &cl);
	h_write_file(ctf, ct, cl);
	h_write_file(ivf, iv, 12);
	emuctl("sdk-raw-decrypt %s/cryptoKeyVersions/1 %s tenant=7 %s %s", raw_key, ctf, outf, ivf);
	assert_int_equal(h_read_file(outf, out, sizeof(out)), MSG_LEN);
	assert_memory_equal(out, MSG, MSG_LEN);
	/* And the module opens what rawEncrypt made, given its IV. */
	const char *theirs = "made by the Node.js client";
	h_write_file(inf, (const uint8_t *)theirs, strlen(theirs));
	emuctl("sdk-raw-encrypt %s/cryptoKeyVersions/1 %s tenant=8 %s %s", raw_key, inf, ctf, ivf);
	cl = h_read_file(ctf, ct, sizeof(ct));
	assert_int_equal(cl, strlen(theirs) + 16);
	assert_int_equal(h_read_file(ivf, iv, sizeof(iv)), 12);
	CK_ULONG ol = sizeof(out);
	assert_ok(gcm_decrypt(h_find_label(S, "raw-aes"), "tenant=8", ct, cl, iv, out, &ol));
	assert_int_equal(ol, strlen(theirs));
	assert_memory_equal(out, theirs, ol);
	/* The pinned version's object opens it too. */
	ol = sizeof(out);
	assert_ok(gcm_decrypt(h_find_label(S, "raw-v1"), "tenant=8", ct, cl, iv, out, &ol));
	assert_memory_equal(out, theirs, strlen(theirs));
	/* The plaintexts never reach the (trace-level) log, raw or encoded. */
	assert_false(h_log_contains(&env, (const char *)MSG));
	assert_false(h_log_has_bytes(&env, MSG, MSG_LEN));
	assert_false(h_log_has_bytes(&env, (const uint8_t *)theirs, strlen(theirs)));
}

static void test_tampering_refused(void **state)
{
	(void)state;
	uint8_t iv[12], ct[256], pt[256];
	CK_ULONG cl, pl;
	CK_OBJECT_HANDLE k = h_find_label(S, "raw-aes");
	encrypt_msg("raw-aes", "right", iv, ct, &cl);
	pl = sizeof(pt);
	assert_rv(gcm_decrypt(k, "wrong", ct, cl, iv, pt, &pl), CKR_ENCRYPTED_DATA_INVALID);
	assert_true(h_log_contains(&env, "Decryption failed"));
	ct[3] ^= 0x01; /* a ciphertext bit */
	pl = sizeof(pt);
	assert_rv(gcm_decrypt(k, "right", ct, cl, iv, pt, &pl), CKR_ENCRYPTED_DATA_INVALID);
	ct[3] ^= 0x01;
	ct[cl - 1] ^= 0x80; /* a tag bit */
	pl = sizeof(pt);
	assert_rv(gcm_decrypt(k, "right", ct, cl, iv, pt, &pl), CKR_ENCRYPTED_DATA_INVALID);
	ct[cl - 1] ^= 0x80;
	iv[0] ^= 0x01; /* another IV */
	pl = sizeof(pt);
	assert_rv(gcm_decrypt(k, "right", ct, cl, iv, pt, &pl), CKR_ENCRYPTED_DATA_INVALID);
	iv[0] ^= 0x01;
	expect_msg("raw-aes", "right", ct, cl, iv);
}

static void test_wrap_unwrap(void **state)
{
	(void)state;
	CK_OBJECT_HANDLE kms = h_find_label(S, "raw-aes");
	CK_OBJECT_HANDLE local = h_aes_key(S, 32, CK_FALSE, "local");
	uint8_t iv[12], w[256];
	CK_ULONG wl = 0;
	CK_GCM_PARAMS p = {iv, 12, 96, (CK_BYTE_PTR) "wrap-aad", 8, 128};
	CK_MECHANISM m = {CKM_AES_GCM, &p, sizeof(p)};
	emuctl("reset-counters");
	/* The length first: the key's 32 bytes and the tag, no KMS call. */
	assert_ok(p11->C_WrapKey(S, &m, kms, local, NULL, &wl));
	assert_int_equal(wl, 32 + 16);
	assert_int_equal(emu_count("RawEncrypt"), 0);
	wl = sizeof(w);
	memset(iv, 0, sizeof(iv));
	assert_ok(p11->C_WrapKey(S, &m, kms, local, w, &wl));
	assert_int_equal(wl, 32 + 16);
	assert_int_equal(emu_count("RawEncrypt"), 1);
	CK_OBJECT_CLASS cls = CKO_SECRET_KEY;
	CK_KEY_TYPE kt = CKK_AES;
	CK_BBOOL t = CK_TRUE;
	CK_ATTRIBUTE tmpl[] = {{CKA_CLASS, &cls, sizeof(cls)},
			       {CKA_KEY_TYPE, &kt, sizeof(kt)},
			       {CKA_ENCRYPT, &t, sizeof(t)}};
	CK_OBJECT_HANDLE back = CK_INVALID_HANDLE;
	assert_ok(p11->C_UnwrapKey(S, &m, kms, w, wl, tmpl, 3, &back));
	assert_int_equal(emu_count("RawDecrypt"), 1);
	/* The unwrapped key is the same key. */
	uint8_t a[64], b[64];
	CK_ULONG al = sizeof(a), bl = sizeof(b);
	assert_ok(h_encrypt_probe(S, local, a, &al));
	assert_ok(h_encrypt_probe(S, back, b, &bl));
	assert_int_equal(al, bl);
	assert_memory_equal(a, b, al);
	/* The wrapped key is plain AES-GCM too: the SDK opens it. */
	char wf[400], ivf[400], outf[400];
	snprintf(wf, sizeof(wf), "%s/w.bin", env.dir);
	snprintf(ivf, sizeof(ivf), "%s/iv.bin", env.dir);
	snprintf(outf, sizeof(outf), "%s/k.bin", env.dir);
	h_write_file(wf, w, wl);
	h_write_file(ivf, iv, 12);
	emuctl("sdk-raw-decrypt %s/cryptoKeyVersions/1 %s wrap-aad %s %s", raw_key, wf, outf, ivf);
	uint8_t kb[64], val[64];
	assert_int_equal(h_read_file(outf, kb, sizeof(kb)), 32);
	CK_ATTRIBUTE va = {CKA_VALUE, val, sizeof(val)};
	if (p11->C_GetAttributeValue(S, local, &va, 1) == CKR_OK) {
		assert_int_equal(va.ulValueLen, 32);
		assert_memory_equal(kb, val, 32);
	}
	/* A tampered wrapped key does not unwrap. */
	w[5] ^= 0x10;
	assert_rv(p11->C_UnwrapKey(S, &m, kms, w, wl, tmpl, 3, &back), CKR_WRAPPED_KEY_INVALID);
}

static void test_message_api(void **state)
{
	(void)state;
	CK_OBJECT_HANDLE k = h_find_label(S, "raw-aes");
	CK_MECHANISM gcm = {CKM_AES_GCM, NULL, 0};
	uint8_t iv[12], tag[16], ct[256], pt[256];
	memset(iv, 0, sizeof(iv));
	memset(tag, 0, sizeof(tag));
	CK_GCM_MESSAGE_PARAMS mp = {iv, 12, 0, CKG_GENERATE_RANDOM, tag, 128};
	assert_ok(p11->C_MessageEncryptInit(S, &gcm, k));
	CK_ULONG cl = sizeof(ct);
	assert_ok(p11->C_EncryptMessage(S, &mp, sizeof(mp), (CK_BYTE_PTR) "msg-aad", 7,
					(CK_BYTE_PTR)MSG, MSG_LEN, ct, &cl));
	assert_ok(p11->C_MessageEncryptFinal(S));
	assert_int_equal(cl, MSG_LEN);
	const uint8_t zero[16] = {0};
	assert_memory_not_equal(iv, zero, 12);
	assert_memory_not_equal(tag, zero, 16);
	/* ciphertext||tag with that IV is what C_Decrypt takes. */
	memcpy(ct + cl, tag, 16);
	expect_msg("raw-aes", "msg-aad", ct, cl + 16, iv);
	/* ... and the message API decrypts it with the IV and tag. */
	CK_GCM_MESSAGE_PARAMS dp = {iv, 12, 0, CKG_NO_GENERATE, tag, 128};
	assert_ok(p11->C_MessageDecryptInit(S, &gcm, k));
	CK_ULONG pl = sizeof(pt);
	assert_ok(p11->C_DecryptMessage(S, &dp, sizeof(dp), (CK_BYTE_PTR) "msg-aad", 7, ct, cl,
					pt, &pl));
	assert_ok(p11->C_MessageDecryptFinal(S));
	assert_int_equal(pl, MSG_LEN);
	assert_memory_equal(pt, MSG, MSG_LEN);
}

static void test_corrupt_crc32c_refused(void **state)
{
	(void)state;
	uint8_t iv[12], ct[256], pt[256];
	CK_ULONG cl = sizeof(ct), pl;
	CK_OBJECT_HANDLE k = h_find_label(S, "raw-aes");
	/* Encrypt: the reply's ciphertextCrc32c and initializationVectorCrc32c
	 * are off by one. */
	emuctl("fault '{\"service\": \"gcp\", \"op\": \"RawEncrypt\", \"kind\": "
	       "\"corrupt_crc32c\"}'");
	assert_rv(gcm_encrypt(k, "a", MSG, MSG_LEN, iv, ct, &cl), CKR_DEVICE_ERROR);
	assert_int_equal(device_error(), P11KMS_DEVERR_BAD_REPLY);
	assert_true(h_log_contains(&env, "RawEncrypt: CRC32C mismatch"));
	/* Decrypt: the reply's plaintextCrc32c is off by one; no plaintext
	 * leaves the module. */
	encrypt_msg("raw-aes", "a", iv, ct, &cl);
	emuctl("fault '{\"service\": \"gcp\", \"op\": \"RawDecrypt\", \"kind\": "
	       "\"corrupt_crc32c\"}'");
	memset(pt, 0, sizeof(pt));
	pl = sizeof(pt);
	assert_rv(gcm_decrypt(k, "a", ct, cl, iv, pt, &pl), CKR_DEVICE_ERROR);
	assert_int_equal(device_error(), P11KMS_DEVERR_BAD_REPLY);
	assert_null(memmem(pt, sizeof(pt), MSG, 8));
	assert_true(h_log_contains(&env, "RawDecrypt: CRC32C mismatch: plaintextCrc32c"));
	/* Without the fault the same ciphertext opens. */
	expect_msg("raw-aes", "a", ct, cl, iv);
}

static void test_new_version(void **state)
{
	(void)state;
	uint8_t iv1[12], iv2[12], ivp[12], ct1[256], ct2[256], ctp[256];
	CK_ULONG l1, l2, lp;
	encrypt_msg("raw-aes", "v", iv1, ct1, &l1);
	assert_int_equal(last_version("RawEncrypt"), 1);
	char v2[600];
	emu_ctl_line(v2, sizeof(v2), "emuctl_gcp.py", "add-version %s", raw_key);
	assert_non_null(strstr(v2, "/cryptoKeyVersions/2"));
	sleep(2); /* past revalidate_seconds: the version list is asked again */
	encrypt_msg("raw-aes", "v", iv2, ct2, &l2);
	assert_int_equal(last_version("RawEncrypt"), 2);
	/* The SDK opens it with version 2, so it is version 2's. */
	char ctf[400], ivf[400], outf[400];
	snprintf(ctf, sizeof(ctf), "%s/ct.bin", env.dir);
	snprintf(ivf, sizeof(ivf), "%s/iv.bin", env.dir);
	snprintf(outf, sizeof(outf), "%s/out.bin", env.dir);
	h_write_file(ctf, ct2, l2);
	h_write_file(ivf, iv2, 12);
	emuctl("sdk-raw-decrypt %s %s v %s %s", v2, ctf, outf, ivf);
	/* Both open: the new one with the newest version, the old one after
	 * trying it. */
	expect_msg("raw-aes", "v", ct2, l2, iv2);
	assert_int_equal(last_version("RawDecrypt"), 2);
	emuctl("reset-counters");
	expect_msg("raw-aes", "v", ct1, l1, iv1);
	assert_int_equal(last_version("RawDecrypt"), 1);
	assert_int_equal(emu_count("RawDecrypt"), 2);
	/* The object naming version 1 still encrypts with it. */
	encrypt_msg("raw-v1", "v", ivp, ctp, &lp);
	assert_int_equal(last_version("RawEncrypt"), 1);
	expect_msg("raw-aes", "v", ctp, lp, ivp);
	/* ... and cannot open version 2's ciphertext. */
	uint8_t pt[256];
	CK_ULONG pl = sizeof(pt);
	assert_rv(gcm_decrypt(h_find_label(S, "raw-v1"), "v", ct2, l2, iv2, pt, &pl),
		  CKR_ENCRYPTED_DATA_INVALID);
}

static void test_disabled_and_destroyed(void **state)
{
	(void)state;
	uint8_t iv[12], ct[256], pt[256], iv2[12], ct2[256];
	CK_ULONG cl, pl, l2;
	CK_OBJECT_HANDLE k = h_find_label(S, "raw-aes");
	encrypt_msg("raw-aes", NULL, iv, ct, &cl);
	emuctl("disable %s/cryptoKeyVersions/1", raw_key);
	/* The cached list still names version 1: its FAILED_PRECONDITION
	 * makes the provider list again, and nothing is enabled. */
	l2 = sizeof(ct2);
	assert_rv(gcm_encrypt(k, NULL, MSG, MSG_LEN, iv2, ct2, &l2), CKR_DEVICE_ERROR);
	assert_int_equal(device_error(), P11KMS_DEVERR_KEY_DISABLED);
	pl = sizeof(pt);
	assert_rv(gcm_decrypt(k, NULL, ct, cl, iv, pt, &pl), CKR_DEVICE_ERROR);
	assert_int_equal(device_error(), P11KMS_DEVERR_KEY_DISABLED);
	/* The pinned version: the service's own FAILED_PRECONDITION. */
	l2 = sizeof(ct2);
	assert_rv(gcm_encrypt(h_find_label(S, "raw-v1"), NULL, MSG, MSG_LEN, iv2, ct2, &l2),
		  CKR_DEVICE_ERROR);
	assert_int_equal(device_error(), P11KMS_DEVERR_KEY_DISABLED);
	assert_true(h_log_contains(&env, "FAILED_PRECONDITION"));
	/* Enabled again: works again, old ciphertexts too. */
	emuctl("enable %s/cryptoKeyVersions/1", raw_key);
	expect_msg("raw-aes", NULL, ct, cl, iv);
	/* Destroyed: not found. */
	emuctl("destroy %s/cryptoKeyVersions/1", raw_key);
	l2 = sizeof(ct2);
	assert_rv(gcm_encrypt(k, NULL, MSG, MSG_LEN, iv2, ct2, &l2), CKR_DEVICE_ERROR);
	assert_int_equal(device_error(), P11KMS_DEVERR_KEY_NOT_FOUND);
	pl = sizeof(pt);
	assert_rv(gcm_decrypt(k, NULL, ct, cl, iv, pt, &pl), CKR_DEVICE_ERROR);
	assert_int_equal(device_error(), P11KMS_DEVERR_KEY_NOT_FOUND);
}

static void test_non_raw_key_declared_aes(void **state)
{
	(void)state;
	uint8_t iv[12], ct[256];
	CK_ULONG cl = sizeof(ct);
	emuctl("reset-counters");
	/* C_Encrypt has no CKR_KEY_TYPE_INCONSISTENT: a device error, and
	 * ulDeviceError says why. */
	assert_rv(gcm_encrypt(h_find_label(S, "not-raw"), NULL, MSG, MSG_LEN, iv, ct, &cl),
		  CKR_DEVICE_ERROR);
	assert_int_equal(device_error(), P11KMS_DEVERR_KEY_TYPE);
	assert_true(h_log_contains(&env, "GOOGLE_SYMMETRIC_ENCRYPTION"));
	/* Found out from the version list, before any raw call. */
	assert_int_equal(emu_count("RawEncrypt"), 0);
	uint8_t pt[256];
	CK_ULONG pl = sizeof(pt);
	memset(ct, 0, 64);
	assert_rv(gcm_decrypt(h_find_label(S, "not-raw"), NULL, ct, 48, iv, pt, &pl),
		  CKR_DEVICE_ERROR);
	assert_int_equal(device_error(), P11KMS_DEVERR_KEY_TYPE);
}

/* A RAW_ENCRYPT_DECRYPT key named as an envelope key (no "type"): the
 * service refuses encrypt with FAILED_PRECONDITION ("no primary
 * version"), as it would a key whose versions are gone; the key's purpose
 * says it is a key type mismatch (KEY_TYPE), not KEY_DISABLED. */
static void test_raw_key_as_envelope(void **state)
{
	(void)state;
	p11->C_Finalize(NULL);
	char keys[700];
	snprintf(keys, sizeof(keys), "[ {\"id\": \"%s\", \"label\": \"raw-as-envelope\"} ]",
		 raw_key);
	write_config(keys);
	assert_ok(h_initialize(&env));
	S = h_user_session(&env);
	CK_OBJECT_HANDLE kms = h_find_label(S, "raw-as-envelope");
	CK_OBJECT_HANDLE local = h_aes_key(S, 32, CK_FALSE, "local");
	CK_MECHANISM m = {CKM_P11KMS_KMS_ENVELOPE, NULL, 0};
	uint8_t blob[4096];
	CK_ULONG bl = sizeof(blob);
	assert_rv(p11->C_WrapKey(S, &m, kms, local, blob, &bl),
		  CKR_WRAPPING_KEY_TYPE_INCONSISTENT);
	assert_int_equal(device_error(), P11KMS_DEVERR_KEY_TYPE);
	assert_true(h_log_contains(&env, "has purpose RAW_ENCRYPT_DECRYPT"));
}

static void test_length_query_asks_nothing(void **state)
{
	(void)state;
	CK_OBJECT_HANDLE k = h_find_label(S, "raw-aes");
	uint8_t iv[12], ct[256];
	CK_GCM_PARAMS p = {iv, 12, 96, (CK_BYTE_PTR) "q", 1, 128};
	CK_MECHANISM m = {CKM_AES_GCM, &p, sizeof(p)};
	emuctl("reset-counters");
	assert_ok(p11->C_EncryptInit(S, &m, k));
	CK_ULONG cl = 0;
	assert_ok(p11->C_Encrypt(S, (CK_BYTE_PTR)MSG, MSG_LEN, NULL, &cl));
	assert_int_equal(cl, MSG_LEN + 16);
	assert_int_equal(emu_count("RawEncrypt"), 0);
	assert_int_equal(emu_count("ListCryptoKeyVersions"), 0);
	/* Too small a buffer: also answered here, and the operation goes on. */
	cl = 5;
	assert_rv(p11->C_Encrypt(S, (CK_BYTE_PTR)MSG, MSG_LEN, ct, &cl), CKR_BUFFER_TOO_SMALL);
	assert_int_equal(cl, MSG_LEN + 16);
	assert_int_equal(emu_count("RawEncrypt"), 0);
	cl = sizeof(ct);
	assert_ok(p11->C_Encrypt(S, (CK_BYTE_PTR)MSG, MSG_LEN, ct, &cl));
	assert_int_equal(cl, MSG_LEN + 16);
	assert_int_equal(emu_count("RawEncrypt"), 1);
	/* Decryption's length query: no KMS call either. */
	assert_ok(p11->C_DecryptInit(S, &m, k));
	CK_ULONG pl = 0;
	assert_ok(p11->C_Decrypt(S, ct, cl, NULL, &pl));
	assert_true(pl >= MSG_LEN);
	assert_int_equal(emu_count("RawDecrypt"), 0);
	uint8_t pt[256];
	pl = sizeof(pt);
	assert_ok(p11->C_Decrypt(S, ct, cl, pt, &pl));
	assert_int_equal(pl, MSG_LEN);
	assert_memory_equal(pt, MSG, MSG_LEN);
	assert_int_equal(emu_count("RawDecrypt"), 1);
}

int main(void)
{
	if (access("/usr/bin/python3", X_OK) != 0) {
		printf("1..0 # SKIP /usr/bin/python3 is needed for the emulator\n");
		return SKIP_RETURN_CODE;
	}
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_object_is_an_aes_key, setup, teardown),
		cmocka_unit_test_setup_teardown(test_roundtrip_with_aad, setup, teardown),
		cmocka_unit_test_setup_teardown(test_fresh_iv_each_time, setup, teardown),
		cmocka_unit_test_setup_teardown(test_interoperates_with_sdk, setup, teardown),
		cmocka_unit_test_setup_teardown(test_tampering_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_wrap_unwrap, setup_wrap, teardown),
		cmocka_unit_test_setup_teardown(test_message_api, setup, teardown),
		cmocka_unit_test_setup_teardown(test_corrupt_crc32c_refused, setup, teardown),
		cmocka_unit_test_setup_teardown(test_new_version, setup, teardown),
		cmocka_unit_test_setup_teardown(test_disabled_and_destroyed, setup, teardown),
		cmocka_unit_test_setup_teardown(test_non_raw_key_declared_aes, setup, teardown),
		cmocka_unit_test_setup_teardown(test_raw_key_as_envelope, setup, teardown),
		cmocka_unit_test_setup_teardown(test_length_query_asks_nothing, setup, teardown),
	};
	return cmocka_run_group_tests_name("gcp_std", tests, start_emulator, stop_emulator);
}
