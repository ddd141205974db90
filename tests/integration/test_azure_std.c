/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Standard PKCS #11 mechanisms on Azure keys (docs/REMOTE.md), end to end
 * through the exported API against the KMS emulator, with the Azure SDK
 * for Python as the independent implementation:
 *
 *  - a key declared "rsa" shows as a KMS key object plus an RSA key pair;
 *    CKM_RSA_PKCS_OAEP (SHA-1 and SHA-256) wraps a local key with the
 *    public key and unwraps it with the private key, encrypts and
 *    decrypts, and interoperates with the SDK both ways; CKA_MODULUS,
 *    CKA_PUBLIC_EXPONENT and CKA_MODULUS_BITS are the vault's key's;
 *  - a Managed HSM key declared "aes" does CKM_AES_KEY_WRAP (A256KW),
 *    CKM_AES_KEY_WRAP_KWP (RFC 5649), CKM_AES_KEY_WRAP_PAD (PKCS #7 then
 *    RFC 3394) and CKM_AES_GCM with the KMS's IV, all interoperating with
 *    the SDK;
 *  - tampered input, a new key version (old results still open, new ones
 *    use the new version), a disabled key, a key declared with the wrong
 *    type, and length queries that cost no KMS call.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <jansson.h>

#include "emu.h"
#include "harness.h"
#include "oaep_suite.h"

#define az(field) emu_str("azure", field)
#define emuctl(...) emu_ctl("emuctl_azure.py", __VA_ARGS__)

static h_env env;
static CK_SESSION_HANDLE S;

/* Keys made for this test beside the emulator's own (p11kms-rsa in the
 * vault and the HSM, p11kms-aes in the HSM), so that rotating and
 * disabling leave the others alone. */
#define VAULT_KEYS                                                                        \
	"[ {\"id\": \"p11kms-rsa\", \"label\": \"kek\", \"type\": \"rsa\"},\n"            \
	"  {\"id\": \"rsa3k\", \"label\": \"rsa3k\", \"type\": \"rsa\"},\n"               \
	"  {\"id\": \"rot-rsa\", \"label\": \"rot\", \"type\": \"rsa\"},\n"               \
	"  {\"id\": \"dis-rsa\", \"label\": \"dis\", \"type\": \"rsa\"},\n"               \
	"  {\"id\": \"mis-rsa\", \"label\": \"rsa-said-aes\", \"type\": \"aes\"} ]"
#define HSM_KEYS                                                                          \
	"[ {\"id\": \"p11kms-aes\", \"label\": \"hsm-aes\", \"type\": \"aes\", \"bits\": 256},\n" \
	"  {\"id\": \"aes128\", \"label\": \"aes128\", \"type\": \"aes\", \"bits\": 128},\n"   \
	"  {\"id\": \"rot-aes\", \"label\": \"rot-aes\", \"type\": \"aes\"},\n"             \
	"  {\"id\": \"dis-aes\", \"label\": \"dis-aes\", \"type\": \"aes\"},\n"             \
	"  {\"id\": \"big-aes\", \"label\": \"aes-said-128\", \"type\": \"aes\", \"bits\": 128},\n" \
	"  {\"id\": \"p11kms-rsa\", \"label\": \"hsm-rsa-said-aes\", \"type\": \"aes\"} ]"

static int start_emulator(void **state)
{
	(void)state;
	h_load();
	static const char *const vars[] = {
		"AZURE_TENANT_ID", "AZURE_CLIENT_ID", "AZURE_CLIENT_SECRET",
		"AZURE_CLIENT_CERTIFICATE_PATH", "AZURE_FEDERATED_TOKEN_FILE",
		"AZURE_AUTHORITY_HOST", "AZURE_POD_IDENTITY_AUTHORITY_HOST",
		"IDENTITY_ENDPOINT", "IDENTITY_HEADER",
	};
	for (size_t i = 0; i < sizeof(vars) / sizeof(vars[0]); i++)
		unsetenv(vars[i]);
	if (emu_start("azstd") != 0)
		return -1;
	emuctl("create vault rsa3k RSA 3072");
	emuctl("create vault rot-rsa RSA 2048");
	emuctl("create vault dis-rsa RSA 2048");
	emuctl("create vault mis-rsa RSA 2048");
	emuctl("create hsm aes128 oct-HSM 128");
	emuctl("create hsm rot-aes oct-HSM 256");
	emuctl("create hsm dis-aes oct-HSM 256");
	emuctl("create hsm big-aes oct-HSM 256");
	return 0;
}

static int stop_emulator(void **state)
{
	(void)state;
	return emu_stop();
}

/* A token on the vault (RSA keys) or the Managed HSM (AES keys), sealed
 * under the emulator's key, with the typed keys above. */
static int setup_env(bool hsm, const char *keys)
{
	h_env_new(&env, "required", "");
	char secret[400];
	snprintf(secret, sizeof(secret), "%s/client-secret", env.dir);
	emuctl("secret-file %s", secret);
	FILE *f = fopen(env.config, "w");
	assert_non_null(f);
	fprintf(f,
		"{ \"log\": {\"level\": \"trace\", \"destination\": \"%s\"},\n"
		"  \"providers\": [ { \"name\": \"test\", \"type\": \"azure\",\n"
		"    \"vault_url\": \"%s\", \"ca_file\": \"%s\", %s\n"
		"    \"tenant_id\": \"%s\", \"client_id\": \"%s\", \"client_secret_file\": \"%s\",\n"
		"    \"authority_host\": \"%s\", \"store\": \"%s\", \"seal_with\": \"%s\",\n"
		"    \"keys\": %s,\n"
		"    \"revalidate_seconds\": 3600, \"offline_grace_seconds\": 3600 } ] }\n",
		env.log, az(hsm ? "managed_hsm_url" : "vault_url"),
		json_string_value(json_object_get(emu_info, "ca_bundle")),
		hsm ? "\"resource\": \"hsm\"," : "", az("tenant_id"), az("client_id"), secret,
		az("authority_host"), env.store, hsm ? "p11kms-aes" : "p11kms-rsa",
		keys);
	fclose(f);
	emuctl("clear-faults");
	assert_ok(h_initialize(&env));
	h_init_token(&env);
	S = h_user_session(&env);
	return 0;
}

static int setup_vault(void **state)
{
	(void)state;
	return setup_env(false, VAULT_KEYS);
}

static int setup_hsm(void **state)
{
	(void)state;
	return setup_env(true, HSM_KEYS);
}

/* The same keys in the data role ("usage": "data"): C_Encrypt and
 * C_Decrypt, no wrapping. */
static int setup_vault_data(void **state)
{
	(void)state;
	return setup_env(false, h_usage_data(VAULT_KEYS));
}

static int setup_hsm_data(void **state)
{
	(void)state;
	return setup_env(true, h_usage_data(HSM_KEYS));
}

/* The HSM's AES key declared "rsa". */
static int setup_hsm_aes_said_rsa(void **state)
{
	(void)state;
	return setup_env(true, "[ {\"id\": \"p11kms-aes\", \"label\": \"aes-said-rsa\", "
			       "\"type\": \"rsa\"} ]");
}

static int teardown(void **state)
{
	(void)state;
	p11->C_Finalize(NULL);
	h_env_free(&env);
	S = 0;
	return 0;
}

/* --- helpers ------------------------------------------------------------------ */

static long count(const char *service, const char *op)
{
	return emu_ctl_long("emuctl_azure.py", "count %s %s", service, op);
}

static long count_all(const char *service)
{
	return emu_ctl_long("emuctl_azure.py", "count-all %s", service);
}

/* The SDK runs OP (wrap, unwrap, encrypt, decrypt) with ALG on KEY (a name:
 * its current version) from file IN to file OUT in the env's folder; its
 * verdict, "ok" or "error: ...". */
static void sdk(char *verdict, size_t vl, const char *vault, const char *key, const char *op,
		const char *alg, const char *in, const char *out, const char *aad)
{
	char ip[400], op_[400];
	h_env_path(&env, in, ip, sizeof(ip));
	h_env_path(&env, out, op_, sizeof(op_));
	emu_ctl_line(verdict, vl, "emuctl_azure.py", "sdk %s %s %s %s %s %s %s", vault, key, op,
		     alg, ip, op_, aad ? aad : "");
}

static void sdk_ok(const char *vault, const char *key, const char *op, const char *alg,
		   const char *in, const char *out, const char *aad)
{
	char v[512];
	sdk(v, sizeof(v), vault, key, op, alg, in, out, aad);
	if (strcmp(v, "ok") != 0)
		fail_msg("SDK %s %s on %s: %s", op, alg, key, v);
}

/* --- objects -------------------------------------------------------------------- */

static void test_objects(void **state)
{
	(void)state;
	emuctl("reset-counters");
	CK_OBJECT_HANDLE env_obj = h_find_obj(S, CKO_SECRET_KEY, "kek-envelope");
	CK_OBJECT_HANDLE pub = h_find_obj(S, CKO_PUBLIC_KEY, "kek");
	CK_OBJECT_HANDLE priv = h_find_obj(S, CKO_PRIVATE_KEY, "kek");
	/* By key type too, as consumers look for an RSA key. */
	CK_KEY_TYPE rsa = CKK_RSA;
	CK_ATTRIBUTE q[] = {{CKA_KEY_TYPE, &rsa, sizeof(rsa)}, {CKA_LABEL, "kek", 3}};
	CK_OBJECT_HANDLE h[4];
	CK_ULONG nh = 0;
	assert_ok(p11->C_FindObjectsInit(S, q, 2));
	assert_ok(p11->C_FindObjects(S, h, 4, &nh));
	assert_ok(p11->C_FindObjectsFinal(S));
	assert_int_equal(nh, 2);
	assert_int_equal(h_attr_ulong(S, env_obj, CKA_KEY_TYPE), CKK_P11KMS_KMS);
	assert_int_equal(h_attr_ulong(S, pub, CKA_KEY_TYPE), CKK_RSA);
	assert_int_equal(h_attr_ulong(S, priv, CKA_KEY_TYPE), CKK_RSA);
	uint8_t id1[64], id2[64], id3[64];
	CK_ATTRIBUTE a[] = {{CKA_ID, id1, sizeof(id1)}, {CKA_ID, id2, sizeof(id2)},
			    {CKA_ID, id3, sizeof(id3)}};
	assert_ok(p11->C_GetAttributeValue(S, env_obj, &a[0], 1));
	assert_ok(p11->C_GetAttributeValue(S, pub, &a[1], 1));
	assert_ok(p11->C_GetAttributeValue(S, priv, &a[2], 1));
	assert_int_equal(a[0].ulValueLen, a[1].ulValueLen);
	assert_int_equal(a[0].ulValueLen, a[2].ulValueLen);
	assert_memory_equal(id1, id2, a[0].ulValueLen);
	assert_memory_equal(id1, id3, a[0].ulValueLen);
	/* The private key never leaves. */
	CK_BBOOL b = CK_TRUE;
	CK_ATTRIBUTE ex = {CKA_EXTRACTABLE, &b, 1};
	assert_ok(p11->C_GetAttributeValue(S, priv, &ex, 1));
	assert_false(b);
	uint8_t d[512];
	CK_ATTRIBUTE pe = {CKA_PRIVATE_EXPONENT, d, sizeof(d)};
	assert_rv(p11->C_GetAttributeValue(S, priv, &pe, 1), CKR_ATTRIBUTE_SENSITIVE);
	assert_int_equal(pe.ulValueLen, CK_UNAVAILABLE_INFORMATION);
	/* An "aes" declaration is one AES secret key object. */
	CK_OBJECT_HANDLE aes = h_find_obj(S, CKO_SECRET_KEY, "rsa-said-aes");
	assert_int_equal(h_attr_ulong(S, aes, CKA_KEY_TYPE), CKK_AES);
	/* OAEP is offered: the slot has RSA keys. */
	CK_MECHANISM_TYPE list[256];
	CK_ULONG n = 256;
	bool found = false;
	assert_ok(p11->C_GetMechanismList(env.slot, list, &n));
	for (CK_ULONG i = 0; i < n; i++)
		found |= list[i] == CKM_RSA_PKCS_OAEP;
	assert_true(found);
	/* None of this asked the KMS anything. */
	assert_int_equal(count_all("azure-vault"), 0);
}

static void test_hsm_objects(void **state)
{
	(void)state;
	CK_OBJECT_HANDLE k = h_find_obj(S, CKO_SECRET_KEY, "hsm-aes");
	assert_int_equal(h_attr_ulong(S, k, CKA_KEY_TYPE), CKK_AES);
	assert_int_equal(h_attr_ulong(S, k, CKA_VALUE_LEN), 32);
	assert_int_equal(h_attr_ulong(S, h_find_obj(S, CKO_SECRET_KEY, "aes128"), CKA_VALUE_LEN), 16);
	CK_OBJECT_CLASS pk = CKO_PUBLIC_KEY;
	CK_ATTRIBUTE q = {CKA_CLASS, &pk, sizeof(pk)};
	CK_OBJECT_HANDLE h;
	CK_ULONG n = 1;
	assert_ok(p11->C_FindObjectsInit(S, &q, 1));
	assert_ok(p11->C_FindObjects(S, &h, 1, &n));
	assert_ok(p11->C_FindObjectsFinal(S));
	assert_int_equal(n, 0);
	/* No RSA key here: no OAEP. */
	CK_MECHANISM_TYPE list[256];
	n = 256;
	assert_ok(p11->C_GetMechanismList(env.slot, list, &n));
	for (CK_ULONG i = 0; i < n; i++)
		assert_int_not_equal(list[i], CKM_RSA_PKCS_OAEP);
}

/* --- RSA-OAEP --------------------------------------------------------------------- */

static long az_count(const char *kind)
{
	static const char *const ops[][2] = {{"public", "GetKey"}, {"wrap", "wrapKey"},
					     {"unwrap", "unwrapKey"}, {"encrypt", "encrypt"},
					     {"decrypt", "decrypt"}};
	if (!kind)
		return count_all("azure-vault");
	for (size_t i = 0; i < sizeof(ops) / sizeof(ops[0]); i++)
		if (strcmp(kind, ops[i][0]) == 0)
			return count("azure-vault", ops[i][1]);
	fail_msg("unknown call kind %s", kind);
	return -1;
}

static void az_reset(void)
{
	emuctl("reset-counters");
}

static void az_pubkey(char *line, size_t n)
{
	emu_ctl_line(line, n, "emuctl_azure.py", "pubkey vault p11kms-rsa");
}

static void az_sdk(const char *op, bool sha256, const char *in, const char *out)
{
	sdk_ok("vault", "p11kms-rsa", op, sha256 ? "RSA-OAEP-256" : "RSA-OAEP", in, out, NULL);
}

static void az_set_enabled(bool enabled)
{
	if (enabled)
		emuctl("enable vault dis-rsa");
	else
		emuctl("disable vault dis-rsa");
}

static const oaep_cloud AZURE = {&env, &S, az_count, az_reset, az_pubkey, az_sdk,
				az_set_enabled};

/* A new key version: results of the old one still open (the provider
 * tries the older versions), new results are made by the new one. */
static void test_oaep_new_version(void **state)
{
	(void)state;
	CK_OBJECT_HANDLE pub = h_find_obj(S, CKO_PUBLIC_KEY, "rot");
	CK_OBJECT_HANDLE priv = h_find_obj(S, CKO_PRIVATE_KEY, "rot");
	CK_RSA_PKCS_OAEP_PARAMS p;
	CK_MECHANISM m = h_oaep(&p, true);
	uint8_t k1[32], b1[512], b2[512], c1[512], out[512];
	h_fill(k1, 32, 0x21);
	CK_OBJECT_HANDLE local = h_import_key(S, CKK_AES, k1, 32);
	CK_ULONG l1 = sizeof(b1), l2 = sizeof(b2), cl = sizeof(c1);
	/* The pair's one role (run with each "usage"). */
	bool w = h_attr_bool(S, pub, CKA_WRAP);
	if (w) {
		assert_ok(p11->C_WrapKey(S, &m, pub, local, b1, &l1));
	} else {
		assert_ok(p11->C_EncryptInit(S, &m, pub));
		assert_ok(p11->C_Encrypt(S, (CK_BYTE_PTR) "old data", 8, c1, &cl));
	}

	emuctl("rotate vault rot-rsa");
	emuctl("reset-counters");
	/* The current version, the list of versions, the old version. */
	if (!w) {
		CK_ULONG ol = sizeof(out);
		assert_ok(p11->C_DecryptInit(S, &m, priv));
		assert_ok(p11->C_Decrypt(S, c1, cl, out, &ol));
		assert_int_equal(ol, 8);
		assert_memory_equal(out, "old data", 8);
		assert_int_equal(count("azure-vault", "decrypt"), 2);
		assert_int_equal(count("azure-vault", "GetKeyVersions"), 1);
		return;
	}
	h_unwrap_expect(S, &m, priv, b1, l1, CKK_AES, k1, 32);
	assert_int_equal(count("azure-vault", "unwrapKey"), 2);
	assert_int_equal(count("azure-vault", "GetKeyVersions"), 1);

	/* A new wrap is the new version's: the SDK on the current version
	 * opens it, and not the old blob. */
	assert_ok(p11->C_WrapKey(S, &m, pub, local, b2, &l2));
	emuctl("reset-counters");
	h_unwrap_expect(S, &m, priv, b2, l2, CKK_AES, k1, 32);
	assert_int_equal(count("azure-vault", "unwrapKey"), 1);
	h_env_write(&env, "b2.bin", b2, l2);
	sdk_ok("vault", "rot-rsa", "unwrap", "RSA-OAEP-256", "b2.bin", "out.bin", NULL);
	assert_int_equal(h_env_read(&env, "out.bin", out, sizeof(out)), 32);
	assert_memory_equal(out, k1, 32);
	h_env_write(&env, "b1.bin", b1, l1);
	char v[512];
	sdk(v, sizeof(v), "vault", "rot-rsa", "unwrap", "RSA-OAEP-256", "b1.bin", "out.bin", NULL);
	assert_true(strncmp(v, "error", 5) == 0);

	/* Garbage still fails after trying every version. */
	b1[7] ^= 0x10;
	CK_OBJECT_HANDLE back;
	assert_rv(h_unwrap_as(S, &m, priv, b1, l1, CKK_AES, &back), CKR_WRAPPED_KEY_INVALID);
}

/* A key declared with the wrong type or size, run in its one role (the
 * tests run with each "usage"): as a wrapping key, wrapping a local key
 * of keylen bytes with mechanism mt is refused as a key type mismatch
 * (true); a data key wraps nothing, and the caller tests C_Encrypt
 * (false). */
static bool wrap_is_key_type_error(CK_OBJECT_HANDLE k, CK_MECHANISM_TYPE mt, CK_ULONG keylen)
{
	if (!h_attr_bool(S, k, CKA_WRAP))
		return false;
	CK_OBJECT_HANDLE local = h_aes_key(S, keylen, CK_FALSE, "local");
	CK_MECHANISM m = {mt, NULL, 0};
	uint8_t blob[512];
	CK_ULONG bl = sizeof(blob);
	assert_rv(p11->C_WrapKey(S, &m, k, local, blob, &bl), CKR_WRAPPING_KEY_TYPE_INCONSISTENT);
	assert_int_equal(h_deverr(S), P11KMS_DEVERR_KEY_TYPE);
	return true;
}

/* An RSA key declared "aes": the KMS says the key cannot run it. */
static void test_rsa_declared_aes(void **state)
{
	(void)state;
	CK_OBJECT_HANDLE k = h_find_obj(S, CKO_SECRET_KEY, "rsa-said-aes");
	uint8_t blob[512];
	CK_ULONG bl = sizeof(blob);
	if (wrap_is_key_type_error(k, CKM_AES_KEY_WRAP_KWP, 32))
		return;
	uint8_t iv[12] = {0};
	CK_GCM_PARAMS gp = {iv, 12, 96, NULL, 0, 128};
	CK_MECHANISM gcm = {CKM_AES_GCM, &gp, sizeof(gp)};
	/* An AES key is not asked anything at C_EncryptInit; C_Encrypt has no
	 * CKR_KEY_TYPE_INCONSISTENT, so the refusal is a device error. */
	assert_ok(p11->C_EncryptInit(S, &gcm, k));
	bl = sizeof(blob);
	assert_rv(p11->C_Encrypt(S, (CK_BYTE_PTR) "data", 4, blob, &bl), CKR_DEVICE_ERROR);
	assert_int_equal(h_deverr(S), P11KMS_DEVERR_KEY_TYPE);
	assert_true(h_log_contains(&env, "not supported for key type RSA"));
}

/* --- Managed HSM AES ---------------------------------------------------------------- */

/* CKM_AES_KEY_WRAP is the service's A256KW (RFC 3394). */
static void test_hsm_aes_key_wrap(void **state)
{
	(void)state;
	CK_OBJECT_HANDLE kek = h_find_obj(S, CKO_SECRET_KEY, "hsm-aes");
	CK_MECHANISM m = {CKM_AES_KEY_WRAP, NULL, 0};
	uint8_t k1[32], k2[32], blob[128], out[128];
	h_fill(k1, 32, 0x01);
	h_fill(k2, 32, 0x81);
	CK_OBJECT_HANDLE local = h_import_key(S, CKK_AES, k1, 32);
	emuctl("reset-counters");
	CK_ULONG bl = 0;
	assert_ok(p11->C_WrapKey(S, &m, kek, local, NULL, &bl));
	assert_int_equal(bl, 40);
	assert_int_equal(count_all("azure-hsm"), 0);
	bl = sizeof(blob);
	assert_ok(p11->C_WrapKey(S, &m, kek, local, blob, &bl));
	assert_int_equal(bl, 40);
	assert_int_equal(count("azure-hsm", "wrapKey"), 1);
	h_unwrap_expect(S, &m, kek, blob, bl, CKK_AES, k1, 32);
	h_env_write(&env, "blob.bin", blob, bl);
	sdk_ok("hsm", "p11kms-aes", "unwrap", "A256KW", "blob.bin", "out.bin", NULL);
	assert_int_equal(h_env_read(&env, "out.bin", out, sizeof(out)), 32);
	assert_memory_equal(out, k1, 32);
	h_env_write(&env, "k2.bin", k2, 32);
	sdk_ok("hsm", "p11kms-aes", "wrap", "A256KW", "k2.bin", "blob2.bin", NULL);
	bl = h_env_read(&env, "blob2.bin", blob, sizeof(blob));
	assert_int_equal(bl, 40);
	h_unwrap_expect(S, &m, kek, blob, bl, CKK_AES, k2, 32);
	/* Tampered: the integrity check fails. */
	blob[3] ^= 0x04;
	CK_OBJECT_HANDLE back;
	assert_rv(h_unwrap_as(S, &m, kek, blob, bl, CKK_AES, &back), CKR_WRAPPED_KEY_INVALID);
	assert_int_equal(h_deverr(S), P11KMS_DEVERR_INVALID_CIPHERTEXT);
	/* A 128-bit KMS key: A128KW. */
	CK_OBJECT_HANDLE k128 = h_find_obj(S, CKO_SECRET_KEY, "aes128");
	bl = sizeof(blob);
	assert_ok(p11->C_WrapKey(S, &m, k128, local, blob, &bl));
	assert_int_equal(bl, 40);
	h_env_write(&env, "blob3.bin", blob, bl);
	sdk_ok("hsm", "aes128", "unwrap", "A128KW", "blob3.bin", "out.bin", NULL);
	assert_int_equal(h_env_read(&env, "out.bin", out, sizeof(out)), 32);
	assert_memory_equal(out, k1, 32);
	h_unwrap_expect(S, &m, k128, blob, bl, CKK_AES, k1, 32);
}

/* CKM_AES_KEY_WRAP_KWP is the service's CKM_AES_KEY_WRAP_PAD (RFC 5649):
 * any length. */
static void test_hsm_aes_kwp(void **state)
{
	(void)state;
	CK_OBJECT_HANDLE kek = h_find_obj(S, CKO_SECRET_KEY, "hsm-aes");
	CK_MECHANISM m = {CKM_AES_KEY_WRAP_KWP, NULL, 0};
	uint8_t k1[20], k2[20], blob[128], out[128];
	h_fill(k1, 20, 0x05);
	h_fill(k2, 20, 0xa5);
	CK_OBJECT_HANDLE local = h_import_key(S, CKK_GENERIC_SECRET, k1, 20);
	emuctl("reset-counters");
	CK_ULONG bl = 0;
	assert_ok(p11->C_WrapKey(S, &m, kek, local, NULL, &bl));
	assert_int_equal(bl, 32);
	assert_int_equal(count_all("azure-hsm"), 0);
	bl = sizeof(blob);
	assert_ok(p11->C_WrapKey(S, &m, kek, local, blob, &bl));
	assert_int_equal(bl, 32);
	h_env_write(&env, "blob.bin", blob, bl);
	sdk_ok("hsm", "p11kms-aes", "unwrap", "CKM_AES_KEY_WRAP_PAD", "blob.bin", "out.bin", NULL);
	assert_int_equal(h_env_read(&env, "out.bin", out, sizeof(out)), 20);
	assert_memory_equal(out, k1, 20);
	h_unwrap_expect(S, &m, kek, blob, bl, CKK_GENERIC_SECRET, k1, 20);
	h_env_write(&env, "k2.bin", k2, 20);
	sdk_ok("hsm", "p11kms-aes", "wrap", "CKM_AES_KEY_WRAP_PAD", "k2.bin", "blob2.bin", NULL);
	bl = h_env_read(&env, "blob2.bin", blob, sizeof(blob));
	h_unwrap_expect(S, &m, kek, blob, bl, CKK_GENERIC_SECRET, k2, 20);
	blob[bl - 1] ^= 0x01;
	CK_OBJECT_HANDLE back;
	assert_rv(h_unwrap_as(S, &m, kek, blob, bl, CKK_GENERIC_SECRET, &back),
		  CKR_WRAPPED_KEY_INVALID);
}

/* CKM_AES_KEY_WRAP_PAD: PKCS #7 padding to a multiple of 8 in the module
 * (as the module's own implementation), RFC 3394 in the KMS. */
static void test_hsm_aes_kw_pkcs7(void **state)
{
	(void)state;
	CK_OBJECT_HANDLE kek = h_find_obj(S, CKO_SECRET_KEY, "hsm-aes");
	CK_MECHANISM m = {CKM_AES_KEY_WRAP_PAD, NULL, 0};
	uint8_t k1[32], k2[32], blob[128], out[128];
	h_fill(k1, 32, 0x0b);
	CK_OBJECT_HANDLE local = h_import_key(S, CKK_AES, k1, 32);
	emuctl("reset-counters");
	CK_ULONG bl = 0;
	assert_ok(p11->C_WrapKey(S, &m, kek, local, NULL, &bl));
	assert_int_equal(bl, 48); /* 32 bytes padded to 40 (a multiple of 8), + 8 */
	assert_int_equal(count_all("azure-hsm"), 0);
	bl = sizeof(blob);
	assert_ok(p11->C_WrapKey(S, &m, kek, local, blob, &bl));
	assert_int_equal(bl, 48);
	h_env_write(&env, "blob.bin", blob, bl);
	sdk_ok("hsm", "p11kms-aes", "unwrap", "A256KW", "blob.bin", "out.bin", NULL);
	assert_int_equal(h_env_read(&env, "out.bin", out, sizeof(out)), 40);
	assert_memory_equal(out, k1, 32);
	for (int i = 32; i < 40; i++)
		assert_int_equal(out[i], 8);
	h_unwrap_expect(S, &m, kek, blob, bl, CKK_AES, k1, 32);
	/* The SDK wraps a padded key; the module strips the padding. */
	h_fill(k2, 24, 0x6d);
	memset(k2 + 24, 8, 8);
	h_env_write(&env, "k2.bin", k2, 32);
	sdk_ok("hsm", "p11kms-aes", "wrap", "A256KW", "k2.bin", "blob2.bin", NULL);
	bl = h_env_read(&env, "blob2.bin", blob, sizeof(blob));
	assert_int_equal(bl, 40);
	h_unwrap_expect(S, &m, kek, blob, bl, CKK_AES, k2, 24);
}

static CK_RV gcm_encrypt(CK_OBJECT_HANDLE k, uint8_t iv[12], const char *aad,
			 const uint8_t *pt, CK_ULONG ptl, uint8_t *out, CK_ULONG *ol)
{
	CK_GCM_PARAMS gp = {iv, 12, 96, (CK_BYTE_PTR)aad, aad ? strlen(aad) : 0, 128};
	CK_MECHANISM m = {CKM_AES_GCM, &gp, sizeof(gp)};
	CK_RV rv = p11->C_EncryptInit(S, &m, k);
	return rv != CKR_OK ? rv : p11->C_Encrypt(S, (CK_BYTE_PTR)pt, ptl, out, ol);
}

static CK_RV gcm_decrypt(CK_OBJECT_HANDLE k, uint8_t iv[12], const char *aad,
			 const uint8_t *ct, CK_ULONG cl, uint8_t *out, CK_ULONG *ol)
{
	CK_GCM_PARAMS gp = {iv, 12, 96, (CK_BYTE_PTR)aad, aad ? strlen(aad) : 0, 128};
	CK_MECHANISM m = {CKM_AES_GCM, &gp, sizeof(gp)};
	CK_RV rv = p11->C_DecryptInit(S, &m, k);
	return rv != CKR_OK ? rv : p11->C_Decrypt(S, (CK_BYTE_PTR)ct, cl, out, ol);
}

/* AES-GCM with the KMS's IV: it comes back in pIv; the SDK decrypts the
 * module's output and the module the SDK's. */
static void test_hsm_aes_gcm(void **state)
{
	(void)state;
	CK_OBJECT_HANDLE k = h_find_obj(S, CKO_SECRET_KEY, "hsm-aes");
	uint8_t pt[45], ct[128], out[128], iv[12], zero[12] = {0};
	h_fill(pt, sizeof(pt), 0x3c);
	memset(iv, 0, sizeof(iv));
	CK_GCM_PARAMS gp = {iv, 12, 96, (CK_BYTE_PTR) "hdr", 3, 128};
	CK_MECHANISM m = {CKM_AES_GCM, &gp, sizeof(gp)};
	assert_ok(p11->C_EncryptInit(S, &m, k));
	emuctl("reset-counters");
	CK_ULONG cl = 0;
	assert_ok(p11->C_Encrypt(S, pt, sizeof(pt), NULL, &cl));
	assert_int_equal(cl, sizeof(pt) + 16);
	assert_int_equal(count_all("azure-hsm"), 0);
	cl = sizeof(ct);
	assert_ok(p11->C_Encrypt(S, pt, sizeof(pt), ct, &cl));
	assert_int_equal(cl, sizeof(pt) + 16);
	assert_int_equal(count("azure-hsm", "encrypt"), 1);
	assert_memory_not_equal(iv, zero, 12); /* the KMS's IV */
	/* The SDK decrypts it. */
	h_env_write(&env, "ct.bin", ct, cl);
	h_env_write(&env, "ct.bin.iv", iv, 12);
	sdk_ok("hsm", "p11kms-aes", "decrypt", "A256GCM", "ct.bin", "pt.bin", "hdr");
	assert_int_equal(h_env_read(&env, "pt.bin", out, sizeof(out)), sizeof(pt));
	assert_memory_equal(out, pt, sizeof(pt));
	/* The module too. */
	CK_ULONG ol = sizeof(out);
	assert_ok(gcm_decrypt(k, iv, "hdr", ct, cl, out, &ol));
	assert_int_equal(ol, sizeof(pt));
	assert_memory_equal(out, pt, sizeof(pt));
	/* Two encryptions, two IVs. */
	uint8_t iv2[12] = {0}, ct2[128];
	CK_ULONG cl2 = sizeof(ct2);
	assert_ok(gcm_encrypt(k, iv2, "hdr", pt, sizeof(pt), ct2, &cl2));
	assert_memory_not_equal(iv, iv2, 12);

	/* The SDK encrypts, the module decrypts. */
	h_env_write(&env, "pt2.bin", pt, 30);
	sdk_ok("hsm", "p11kms-aes", "encrypt", "A256GCM", "pt2.bin", "ct2.bin", "other-hdr");
	cl = h_env_read(&env, "ct2.bin", ct, sizeof(ct));
	assert_int_equal(cl, 30 + 16);
	assert_int_equal(h_env_read(&env, "ct2.bin.iv", iv, sizeof(iv)), 12);
	ol = sizeof(out);
	assert_ok(gcm_decrypt(k, iv, "other-hdr", ct, cl, out, &ol));
	assert_int_equal(ol, 30);
	assert_memory_equal(out, pt, 30);

	/* Another AAD, a changed tag, a changed byte: refused. */
	ol = sizeof(out);
	assert_rv(gcm_decrypt(k, iv, "hdr", ct, cl, out, &ol), CKR_ENCRYPTED_DATA_INVALID);
	assert_int_equal(h_deverr(S), P11KMS_DEVERR_INVALID_CIPHERTEXT);
	ct[cl - 1] ^= 0x01;
	ol = sizeof(out);
	assert_rv(gcm_decrypt(k, iv, "other-hdr", ct, cl, out, &ol), CKR_ENCRYPTED_DATA_INVALID);
	ct[cl - 1] ^= 0x01;
	ct[0] ^= 0x01;
	ol = sizeof(out);
	assert_rv(gcm_decrypt(k, iv, "other-hdr", ct, cl, out, &ol), CKR_ENCRYPTED_DATA_INVALID);
	/* Without AAD on both sides. */
	uint8_t iv3[12] = {0};
	cl = sizeof(ct);
	assert_ok(gcm_encrypt(k, iv3, NULL, pt, 16, ct, &cl));
	h_env_write(&env, "ct3.bin", ct, cl);
	h_env_write(&env, "ct3.bin.iv", iv3, 12);
	sdk_ok("hsm", "p11kms-aes", "decrypt", "A256GCM", "ct3.bin", "pt3.bin", NULL);
	assert_int_equal(h_env_read(&env, "pt3.bin", out, sizeof(out)), 16);
	assert_memory_equal(out, pt, 16);
}

/* A new version of the HSM key: GCM ciphertexts and key wrap blobs of the
 * old one still open; new ones are the new version's. */
static void test_hsm_new_version(void **state)
{
	(void)state;
	CK_OBJECT_HANDLE k = h_find_obj(S, CKO_SECRET_KEY, "rot-aes");
	uint8_t pt[24], ct[128], out[128], iv[12] = {0}, k1[32], b1[64], b2[64];
	h_fill(pt, sizeof(pt), 0x77);
	h_fill(k1, 32, 0x1f);
	CK_OBJECT_HANDLE local = h_import_key(S, CKK_AES, k1, 32);
	CK_MECHANISM kw = {CKM_AES_KEY_WRAP, NULL, 0};
	CK_ULONG cl = sizeof(ct), l1 = sizeof(b1), l2 = sizeof(b2);
	/* The key's one role (run with each "usage"). */
	bool w = h_attr_bool(S, k, CKA_WRAP);
	if (w)
		assert_ok(p11->C_WrapKey(S, &kw, k, local, b1, &l1));
	else
		assert_ok(gcm_encrypt(k, iv, "v1", pt, sizeof(pt), ct, &cl));

	emuctl("rotate hsm rot-aes");
	emuctl("reset-counters");
	if (!w) {
		CK_ULONG ol = sizeof(out);
		assert_ok(gcm_decrypt(k, iv, "v1", ct, cl, out, &ol));
		assert_int_equal(ol, sizeof(pt));
		assert_memory_equal(out, pt, sizeof(pt));
		assert_int_equal(count("azure-hsm", "decrypt"), 2);
		assert_int_equal(count("azure-hsm", "GetKeyVersions"), 1);
		return;
	}
	h_unwrap_expect(S, &kw, k, b1, l1, CKK_AES, k1, 32);
	assert_int_equal(count("azure-hsm", "unwrapKey"), 2);
	assert_int_equal(count("azure-hsm", "GetKeyVersions"), 1);

	assert_ok(p11->C_WrapKey(S, &kw, k, local, b2, &l2));
	assert_false(l1 == l2 && memcmp(b1, b2, l1) == 0);
	h_env_write(&env, "b2.bin", b2, l2);
	sdk_ok("hsm", "rot-aes", "unwrap", "A256KW", "b2.bin", "out.bin", NULL);
	assert_int_equal(h_env_read(&env, "out.bin", out, sizeof(out)), 32);
	assert_memory_equal(out, k1, 32);
	h_env_write(&env, "b1.bin", b1, l1);
	char v[512];
	sdk(v, sizeof(v), "hsm", "rot-aes", "unwrap", "A256KW", "b1.bin", "out.bin", NULL);
	assert_true(strncmp(v, "error", 5) == 0);
}

static void test_hsm_disabled(void **state)
{
	(void)state;
	CK_OBJECT_HANDLE k = h_find_obj(S, CKO_SECRET_KEY, "dis-aes");
	CK_OBJECT_HANDLE local = h_aes_key(S, 32, CK_FALSE, "local");
	CK_MECHANISM kw = {CKM_AES_KEY_WRAP, NULL, 0};
	uint8_t ct[128], iv[12] = {0}, blob[64];
	CK_ULONG cl = sizeof(ct), bl = sizeof(blob);
	bool w = h_attr_bool(S, k, CKA_WRAP); /* its one role, run with each */
	if (!w)
		assert_ok(gcm_encrypt(k, iv, NULL, (const uint8_t *)"x", 1, ct, &cl));
	emuctl("disable hsm dis-aes");
	cl = sizeof(ct);
	if (w)
		assert_rv(p11->C_WrapKey(S, &kw, k, local, blob, &bl), CKR_DEVICE_ERROR);
	else
		assert_rv(gcm_encrypt(k, iv, NULL, (const uint8_t *)"x", 1, ct, &cl),
			  CKR_DEVICE_ERROR);
	assert_int_equal(h_deverr(S), P11KMS_DEVERR_KEY_DISABLED);
	emuctl("enable hsm dis-aes");
	bl = sizeof(blob);
	cl = sizeof(ct);
	if (w)
		assert_ok(p11->C_WrapKey(S, &kw, k, local, blob, &bl));
	else
		assert_ok(gcm_encrypt(k, iv, NULL, (const uint8_t *)"x", 1, ct, &cl));
}

/* The HSM's RSA key declared "aes". */
static void test_hsm_rsa_declared_aes(void **state)
{
	(void)state;
	CK_OBJECT_HANDLE k = h_find_obj(S, CKO_SECRET_KEY, "hsm-rsa-said-aes");
	CK_OBJECT_HANDLE local = h_aes_key(S, 32, CK_FALSE, "local");
	CK_MECHANISM kw = {CKM_AES_KEY_WRAP, NULL, 0};
	uint8_t blob[64];
	CK_ULONG bl = sizeof(blob);
	assert_rv(p11->C_WrapKey(S, &kw, k, local, blob, &bl), CKR_WRAPPING_KEY_TYPE_INCONSISTENT);
	assert_int_equal(h_deverr(S), P11KMS_DEVERR_KEY_TYPE);
}

/* A 256-bit Managed HSM key declared "bits": 128: the service refuses
 * A128GCM and A128KW with 400 BadParameter, a code that says nothing of
 * the cause; a message naming the algorithm sent is a key type mismatch
 * (KEY_TYPE), not an internal error, whatever its wording. */
static void test_hsm_aes_declared_wrong_size(void **state)
{
	(void)state;
	CK_OBJECT_HANDLE k = h_find_obj(S, CKO_SECRET_KEY, "aes-said-128");
	uint8_t blob[64];
	CK_ULONG bl = sizeof(blob);
	if (wrap_is_key_type_error(k, CKM_AES_KEY_WRAP, 16))
		return;
	uint8_t iv[12] = {0};
	CK_GCM_PARAMS gp = {iv, 12, 96, NULL, 0, 128};
	CK_MECHANISM gcm = {CKM_AES_GCM, &gp, sizeof(gp)};
	/* Worded as Managed HSM words it, which no phrase of ours matches. */
	emuctl("fault '{\"service\": \"azure-hsm\", \"op\": \"encrypt\", \"kind\": \"error\", "
	       "\"status\": 400, \"message\": \"Algorithm \\u0027A128GCM\\u0027 is not "
	       "supported. (Activity ID: 7f3c)\", \"count\": 1}'");
	assert_ok(p11->C_EncryptInit(S, &gcm, k));
	bl = sizeof(blob);
	assert_rv(p11->C_Encrypt(S, (CK_BYTE_PTR) "data", 4, blob, &bl), CKR_DEVICE_ERROR);
	assert_int_equal(h_deverr(S), P11KMS_DEVERR_KEY_TYPE);
	assert_true(h_log_contains(&env, "is not supported. (Activity ID"));
	/* A 400 about the request (not naming the algorithm) stays what it
	 * was: the module sent something malformed, an internal error. */
	emuctl("fault '{\"service\": \"azure-hsm\", \"op\": \"encrypt\", \"kind\": \"error\", "
	       "\"status\": 400, \"message\": \"Content of value is not base64url.\", "
	       "\"count\": 1}'");
	assert_ok(p11->C_EncryptInit(S, &gcm, k));
	bl = sizeof(blob);
	assert_rv(p11->C_Encrypt(S, (CK_BYTE_PTR) "data", 4, blob, &bl), CKR_GENERAL_ERROR);
	emuctl("clear-faults");
}

/* An AES key declared "rsa": its public key cannot be had, OAEP fails
 * as a key type mismatch. */
static void test_hsm_aes_declared_rsa(void **state)
{
	(void)state;
	CK_OBJECT_HANDLE pub = h_find_obj(S, CKO_PUBLIC_KEY, "aes-said-rsa");
	CK_OBJECT_HANDLE priv = h_find_obj(S, CKO_PRIVATE_KEY, "aes-said-rsa");
	CK_OBJECT_HANDLE local = h_aes_key(S, 32, CK_FALSE, "local");
	CK_RSA_PKCS_OAEP_PARAMS p;
	CK_MECHANISM m = h_oaep(&p, true);
	uint8_t blob[512];
	CK_ULONG bl = sizeof(blob);
	assert_rv(p11->C_WrapKey(S, &m, pub, local, blob, &bl), CKR_WRAPPING_KEY_TYPE_INCONSISTENT);
	assert_int_equal(h_deverr(S), P11KMS_DEVERR_KEY_TYPE);
	CK_OBJECT_HANDLE back;
	memset(blob, 1, 256);
	assert_rv(h_unwrap_as(S, &m, priv, blob, 256, CKK_AES, &back),
		  CKR_UNWRAPPING_KEY_TYPE_INCONSISTENT);
	CK_ULONG bits = 0;
	CK_ATTRIBUTE a = {CKA_MODULUS_BITS, &bits, sizeof(bits)};
	assert_rv(p11->C_GetAttributeValue(S, pub, &a, 1), CKR_DEVICE_ERROR);
	assert_int_equal(h_deverr(S), P11KMS_DEVERR_KEY_TYPE);
	assert_true(h_log_contains(&env, "oct-HSM: neither RSA nor EC"));
}

int main(void)
{
	if (access("/usr/bin/python3", X_OK) != 0) {
		printf("1..0 # SKIP /usr/bin/python3 is needed for the emulator\n");
		return SKIP_RETURN_CODE;
	}
	const struct CMUnitTest tests[] = {
		cmocka_unit_test_setup_teardown(test_objects, setup_vault, teardown),
		H_TEST_STATE(oaep_public_attributes, setup_vault, teardown, &AZURE),
		H_TEST_STATE(oaep_sha1_wrap_unwrap, setup_vault, teardown, &AZURE),
		H_TEST_STATE(oaep_sha256_wrap_unwrap, setup_vault, teardown, &AZURE),
		H_TEST_STATE(oaep_encrypt_decrypt, setup_vault_data, teardown, &AZURE),
		H_TEST_STATE(oaep_sdk_interop, setup_vault, teardown, &AZURE),
		H_TEST_STATE(oaep_sdk_interop, setup_vault_data, teardown, &AZURE),
		H_TEST_STATE(oaep_tampered, setup_vault, teardown, &AZURE),
		H_TEST_STATE(oaep_tampered, setup_vault_data, teardown, &AZURE),
		H_TEST_STATE(oaep_one_role, setup_vault, teardown, &AZURE),
		H_TEST_STATE(oaep_one_role, setup_vault_data, teardown, &AZURE),
		cmocka_unit_test_setup_teardown(test_oaep_new_version, setup_vault, teardown),
		cmocka_unit_test_setup_teardown(test_oaep_new_version, setup_vault_data, teardown),
		H_TEST_STATE(oaep_disabled, setup_vault, teardown, &AZURE),
		H_TEST_STATE(oaep_disabled, setup_vault_data, teardown, &AZURE),
		cmocka_unit_test_setup_teardown(test_rsa_declared_aes, setup_vault, teardown),
		cmocka_unit_test_setup_teardown(test_rsa_declared_aes, setup_vault_data, teardown),
		cmocka_unit_test_setup_teardown(test_hsm_objects, setup_hsm, teardown),
		cmocka_unit_test_setup_teardown(test_hsm_aes_key_wrap, setup_hsm, teardown),
		cmocka_unit_test_setup_teardown(test_hsm_aes_kwp, setup_hsm, teardown),
		cmocka_unit_test_setup_teardown(test_hsm_aes_kw_pkcs7, setup_hsm, teardown),
		cmocka_unit_test_setup_teardown(test_hsm_aes_gcm, setup_hsm_data, teardown),
		cmocka_unit_test_setup_teardown(test_hsm_new_version, setup_hsm, teardown),
		cmocka_unit_test_setup_teardown(test_hsm_new_version, setup_hsm_data, teardown),
		cmocka_unit_test_setup_teardown(test_hsm_disabled, setup_hsm, teardown),
		cmocka_unit_test_setup_teardown(test_hsm_disabled, setup_hsm_data, teardown),
		cmocka_unit_test_setup_teardown(test_hsm_rsa_declared_aes, setup_hsm, teardown),
		cmocka_unit_test_setup_teardown(test_hsm_aes_declared_wrong_size, setup_hsm,
						teardown),
		cmocka_unit_test_setup_teardown(test_hsm_aes_declared_wrong_size, setup_hsm_data,
						teardown),
		cmocka_unit_test_setup_teardown(test_hsm_aes_declared_rsa, setup_hsm_aes_said_rsa,
						teardown),
	};
	return cmocka_run_group_tests_name("azure_std", tests, start_emulator, stop_emulator);
}
