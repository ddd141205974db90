/* SPDX-License-Identifier: Apache-2.0 */
#include "oaep_suite.h"

#include <stdio.h>
#include <string.h>

#define S (*c->session)

/* The role of a pair (configured "usage", docs/SECURITY.md): "wrap" pairs
 * wrap and unwrap, "data" pairs encrypt and decrypt, never both. */
static bool wraps(const oaep_cloud *c, CK_OBJECT_HANDLE pub, CK_OBJECT_HANDLE priv)
{
	bool w = h_attr_bool(S, pub, CKA_WRAP), e = h_attr_bool(S, pub, CKA_ENCRYPT);
	assert_true(w != e);
	assert_int_equal(h_attr_bool(S, priv, CKA_UNWRAP), w);
	assert_int_equal(h_attr_bool(S, priv, CKA_DECRYPT), e);
	return w;
}

/* Hex of any length into bytes. */
static size_t unhex_odd(const char *hex, uint8_t *out, size_t max)
{
	char pad[1101];
	snprintf(pad, sizeof(pad), "%s%s", strlen(hex) % 2 ? "0" : "", hex);
	return h_unhex(pad, out, max);
}

void oaep_public_attributes(void **state)
{
	const oaep_cloud *c = *state;
	char line[2048], nhex[1100], ehex[32];
	unsigned bits = 0;
	c->pubkey(line, sizeof(line));
	assert_int_equal(sscanf(line, "%1099s %31s %u", nhex, ehex, &bits), 3);
	assert_int_equal(bits, 2048);
	uint8_t nwant[512], ewant[8];
	size_t nl = unhex_odd(nhex, nwant, sizeof(nwant));
	size_t el = unhex_odd(ehex, ewant, sizeof(ewant));
	assert_int_equal(nl, 256);

	c->reset();
	CK_OBJECT_HANDLE keys[] = {h_find_obj(S, CKO_PUBLIC_KEY, "kek"),
				   h_find_obj(S, CKO_PRIVATE_KEY, "kek")};
	for (int i = 0; i < 2; i++) {
		uint8_t n[512], e[8];
		CK_ULONG mb = 0;
		CK_ATTRIBUTE q[] = {{CKA_MODULUS, NULL, 0}, {CKA_PUBLIC_EXPONENT, NULL, 0}};
		assert_ok(p11->C_GetAttributeValue(S, keys[i], q, 2));
		assert_int_equal(q[0].ulValueLen, nl);
		assert_int_equal(q[1].ulValueLen, el);
		CK_ATTRIBUTE a[] = {{CKA_MODULUS, n, sizeof(n)},
				    {CKA_PUBLIC_EXPONENT, e, sizeof(e)},
				    {CKA_MODULUS_BITS, &mb, sizeof(mb)}};
		assert_ok(p11->C_GetAttributeValue(S, keys[i], a, i == 0 ? 3 : 2));
		assert_memory_equal(n, nwant, nl);
		assert_memory_equal(e, ewant, el);
		if (i == 0)
			assert_int_equal(mb, bits);
	}
	/* One public key read for both objects, nothing else. */
	assert_int_equal(c->count("public"), 1);
	assert_int_equal(c->count(NULL), 1);

	/* A 3072-bit key: its size, and the length of what OAEP makes, with
	 * no KMS call for the length query. */
	CK_OBJECT_HANDLE pub3 = h_find_obj(S, CKO_PUBLIC_KEY, "rsa3k");
	assert_int_equal(h_attr_ulong(S, pub3, CKA_MODULUS_BITS), 3072);
	CK_RSA_PKCS_OAEP_PARAMS p;
	CK_MECHANISM m = h_oaep(&p, true);
	CK_OBJECT_HANDLE local = h_aes_key(S, 32, CK_FALSE, "local");
	c->reset();
	CK_ULONG bl = 0;
	assert_ok(p11->C_WrapKey(S, &m, pub3, local, NULL, &bl));
	assert_int_equal(bl, 384);
	assert_int_equal(c->count(NULL), 0);
}

/* C_WrapKey with the public key, C_UnwrapKey with the private key: the
 * same AES key comes back. Length queries cost no KMS call. */
static void wrap_unwrap(const oaep_cloud *c, bool sha256)
{
	CK_OBJECT_HANDLE pub = h_find_obj(S, CKO_PUBLIC_KEY, "kek");
	CK_OBJECT_HANDLE priv = h_find_obj(S, CKO_PRIVATE_KEY, "kek");
	CK_OBJECT_HANDLE local = h_aes_key(S, 32, CK_FALSE, "local");
	CK_RSA_PKCS_OAEP_PARAMS p;
	CK_MECHANISM m = h_oaep(&p, sha256);
	/* The modulus size first (one public key read), then count. */
	assert_int_equal(h_attr_ulong(S, pub, CKA_MODULUS_BITS), 2048);
	c->reset();
	uint8_t blob[512];
	CK_ULONG bl = 0;
	assert_ok(p11->C_WrapKey(S, &m, pub, local, NULL, &bl));
	assert_int_equal(bl, 256);
	assert_int_equal(c->count(NULL), 0);
	bl = 10;
	assert_rv(p11->C_WrapKey(S, &m, pub, local, blob, &bl), CKR_BUFFER_TOO_SMALL);
	assert_int_equal(bl, 256);
	assert_int_equal(c->count(NULL), 0);
	bl = sizeof(blob);
	assert_ok(p11->C_WrapKey(S, &m, pub, local, blob, &bl));
	assert_int_equal(bl, 256);
	assert_int_equal(c->count("wrap"), 1);
	CK_OBJECT_HANDLE back;
	assert_ok(h_unwrap_as(S, &m, priv, blob, bl, CKK_AES, &back));
	assert_int_equal(c->count("unwrap"), 1);
	assert_int_equal(h_attr_ulong(S, back, CKA_VALUE_LEN), 32);
	h_same_aes_key(S, local, back);
	/* The other hash does not open it. */
	CK_RSA_PKCS_OAEP_PARAMS p2;
	CK_MECHANISM m2 = h_oaep(&p2, !sha256);
	assert_rv(h_unwrap_as(S, &m2, priv, blob, bl, CKK_AES, &back), CKR_WRAPPED_KEY_INVALID);
}

void oaep_sha1_wrap_unwrap(void **state)
{
	wrap_unwrap(*state, false);
}

void oaep_sha256_wrap_unwrap(void **state)
{
	wrap_unwrap(*state, true);
}

/* C_Encrypt / C_Decrypt with both hashes, and parameters no KMS honours. */
void oaep_encrypt_decrypt(void **state)
{
	const oaep_cloud *c = *state;
	CK_OBJECT_HANDLE pub = h_find_obj(S, CKO_PUBLIC_KEY, "kek");
	CK_OBJECT_HANDLE priv = h_find_obj(S, CKO_PRIVATE_KEY, "kek");
	assert_false(wraps(c, pub, priv)); /* a "usage": "data" pair */
	assert_int_equal(h_attr_ulong(S, pub, CKA_MODULUS_BITS), 2048);
	uint8_t pt[40], ct[512], out[512];
	for (int h = 0; h < 2; h++) {
		CK_RSA_PKCS_OAEP_PARAMS p;
		CK_MECHANISM m = h_oaep(&p, h == 1);
		h_fill(pt, sizeof(pt), (uint8_t)(1 + h));
		c->reset();
		assert_ok(p11->C_EncryptInit(S, &m, pub));
		CK_ULONG cl = 0;
		assert_ok(p11->C_Encrypt(S, pt, sizeof(pt), NULL, &cl));
		assert_int_equal(cl, 256);
		assert_int_equal(c->count(NULL), 0);
		cl = sizeof(ct);
		assert_ok(p11->C_Encrypt(S, pt, sizeof(pt), ct, &cl));
		assert_int_equal(cl, 256);
		assert_int_equal(c->count("encrypt"), 1);
		assert_ok(p11->C_DecryptInit(S, &m, priv));
		CK_ULONG ol = sizeof(out);
		assert_ok(p11->C_Decrypt(S, ct, cl, out, &ol));
		assert_int_equal(ol, sizeof(pt));
		assert_memory_equal(out, pt, sizeof(pt));
		assert_int_equal(c->count("decrypt"), 1);
	}
	/* Too much data for OAEP with a 2048-bit key (at most 190 bytes with
	 * SHA-256), mixed hashes, a label: refused before any KMS call. */
	CK_RSA_PKCS_OAEP_PARAMS p;
	CK_MECHANISM m = h_oaep(&p, true);
	c->reset();
	uint8_t big[191] = {0};
	CK_ULONG cl = sizeof(ct);
	assert_ok(p11->C_EncryptInit(S, &m, pub));
	assert_rv(p11->C_Encrypt(S, big, sizeof(big), ct, &cl), CKR_DATA_LEN_RANGE);
	CK_RSA_PKCS_OAEP_PARAMS bad = p;
	bad.mgf = CKG_MGF1_SHA1;
	CK_MECHANISM mb = {CKM_RSA_PKCS_OAEP, &bad, sizeof(bad)};
	assert_rv(p11->C_EncryptInit(S, &mb, pub), CKR_MECHANISM_PARAM_INVALID);
	bad = p;
	bad.pSourceData = (CK_VOID_PTR) "label";
	bad.ulSourceDataLen = 5;
	assert_rv(p11->C_EncryptInit(S, &mb, pub), CKR_MECHANISM_PARAM_INVALID);
	assert_int_equal(c->count(NULL), 0);
	/* The public key does not decrypt, the private key does not encrypt. */
	assert_rv(p11->C_DecryptInit(S, &m, pub), CKR_KEY_FUNCTION_NOT_PERMITTED);
	assert_rv(p11->C_EncryptInit(S, &m, priv), CKR_KEY_FUNCTION_NOT_PERMITTED);
}

/* The module's results open with the cloud's SDK, and the SDK's in the
 * module: wrapped keys and data, both hashes. */
void oaep_sdk_interop(void **state)
{
	const oaep_cloud *c = *state;
	CK_OBJECT_HANDLE pub = h_find_obj(S, CKO_PUBLIC_KEY, "kek");
	CK_OBJECT_HANDLE priv = h_find_obj(S, CKO_PRIVATE_KEY, "kek");
	bool w = wraps(c, pub, priv);
	for (int i = 0; i < 2; i++) {
		bool sha256 = i == 1;
		CK_RSA_PKCS_OAEP_PARAMS p;
		CK_MECHANISM m = h_oaep(&p, sha256);
		uint8_t k1[32], k2[32], blob[512], out[512];
		h_fill(k1, 32, (uint8_t)(0x10 + i));
		h_fill(k2, 32, (uint8_t)(0x90 + i));
		CK_OBJECT_HANDLE local = h_import_key(S, CKK_AES, k1, 32);
		uint8_t pt[50], ct[512];
		h_fill(pt, sizeof(pt), (uint8_t)(0x50 + i));
		if (!w)
			goto data;
		/* Module wraps, SDK unwraps. */
		CK_ULONG bl = sizeof(blob);
		assert_ok(p11->C_WrapKey(S, &m, pub, local, blob, &bl));
		h_env_write(c->env, "blob.bin", blob, bl);
		c->sdk("unwrap", sha256, "blob.bin", "out.bin");
		assert_int_equal(h_env_read(c->env, "out.bin", out, sizeof(out)), 32);
		assert_memory_equal(out, k1, 32);
		/* SDK wraps, module unwraps. */
		h_env_write(c->env, "k2.bin", k2, 32);
		c->sdk("wrap", sha256, "k2.bin", "blob2.bin");
		bl = h_env_read(c->env, "blob2.bin", blob, sizeof(blob));
		assert_int_equal(bl, 256);
		h_unwrap_expect(S, &m, priv, blob, bl, CKK_AES, k2, 32);
		goto done;
	data:
		/* Module encrypts, SDK decrypts. */
		(void)local;
		CK_ULONG cl = sizeof(ct);
		assert_ok(p11->C_EncryptInit(S, &m, pub));
		assert_ok(p11->C_Encrypt(S, pt, sizeof(pt), ct, &cl));
		h_env_write(c->env, "ct.bin", ct, cl);
		c->sdk("decrypt", sha256, "ct.bin", "pt.bin");
		assert_int_equal(h_env_read(c->env, "pt.bin", out, sizeof(out)), sizeof(pt));
		assert_memory_equal(out, pt, sizeof(pt));
		/* SDK encrypts, module decrypts. */
		h_env_write(c->env, "pt2.bin", k2, 20);
		c->sdk("encrypt", sha256, "pt2.bin", "ct2.bin");
		cl = h_env_read(c->env, "ct2.bin", ct, sizeof(ct));
		CK_ULONG ol = sizeof(out);
		assert_ok(p11->C_DecryptInit(S, &m, priv));
		assert_ok(p11->C_Decrypt(S, ct, cl, out, &ol));
		assert_int_equal(ol, 20);
		assert_memory_equal(out, k2, 20);
	done:
		/* Neither the keys nor the data reach the (trace-level) log. */
		assert_false(h_log_has_bytes(c->env, k1, sizeof(k1)));
		assert_false(h_log_has_bytes(c->env, k2, sizeof(k2)));
		assert_false(h_log_has_bytes(c->env, pt, sizeof(pt)));
	}
}

void oaep_tampered(void **state)
{
	const oaep_cloud *c = *state;
	CK_OBJECT_HANDLE pub = h_find_obj(S, CKO_PUBLIC_KEY, "kek");
	CK_OBJECT_HANDLE priv = h_find_obj(S, CKO_PRIVATE_KEY, "kek");
	CK_RSA_PKCS_OAEP_PARAMS p;
	CK_MECHANISM m = h_oaep(&p, true);
	CK_OBJECT_HANDLE local = h_aes_key(S, 32, CK_FALSE, "local");
	uint8_t blob[512], ct[512], out[512];
	CK_ULONG bl = sizeof(blob), cl = sizeof(ct), ol = sizeof(out);
	if (!wraps(c, pub, priv))
		goto data;
	assert_ok(p11->C_WrapKey(S, &m, pub, local, blob, &bl));
	blob[100] ^= 0x01;
	CK_OBJECT_HANDLE back;
	assert_rv(h_unwrap_as(S, &m, priv, blob, bl, CKK_AES, &back), CKR_WRAPPED_KEY_INVALID);
	assert_int_equal(h_deverr(S), P11KMS_DEVERR_INVALID_CIPHERTEXT);
	return;
data:
	assert_ok(p11->C_EncryptInit(S, &m, pub));
	assert_ok(p11->C_Encrypt(S, (CK_BYTE_PTR) "data", 4, ct, &cl));
	ct[cl - 1] ^= 0x80;
	assert_ok(p11->C_DecryptInit(S, &m, priv));
	assert_rv(p11->C_Decrypt(S, ct, cl, out, &ol), CKR_ENCRYPTED_DATA_INVALID);
	assert_int_equal(h_deverr(S), P11KMS_DEVERR_INVALID_CIPHERTEXT);
}

/* A disabled key: the KMS refuses wrap, unwrap and encrypt, the session
 * says why; enabled again, the blob made before opens. */
void oaep_disabled(void **state)
{
	const oaep_cloud *c = *state;
	CK_OBJECT_HANDLE pub = h_find_obj(S, CKO_PUBLIC_KEY, "dis");
	CK_OBJECT_HANDLE priv = h_find_obj(S, CKO_PRIVATE_KEY, "dis");
	CK_RSA_PKCS_OAEP_PARAMS p;
	CK_MECHANISM m = h_oaep(&p, false);
	CK_OBJECT_HANDLE local = h_aes_key(S, 32, CK_FALSE, "local");
	uint8_t blob[512];
	CK_ULONG bl = sizeof(blob);
	bool w = wraps(c, pub, priv);
	if (w) {
		assert_ok(p11->C_WrapKey(S, &m, pub, local, blob, &bl));
	} else {
		assert_ok(p11->C_EncryptInit(S, &m, pub));
		assert_ok(p11->C_Encrypt(S, (CK_BYTE_PTR) "before", 6, blob, &bl));
	}
	c->set_enabled(false);
	if (w) {
		uint8_t b2[512];
		CK_ULONG l2 = sizeof(b2);
		assert_rv(p11->C_WrapKey(S, &m, pub, local, b2, &l2), CKR_DEVICE_ERROR);
		assert_int_equal(h_deverr(S), P11KMS_DEVERR_KEY_DISABLED);
		CK_OBJECT_HANDLE back;
		assert_rv(h_unwrap_as(S, &m, priv, blob, bl, CKK_AES, &back), CKR_DEVICE_ERROR);
		assert_int_equal(h_deverr(S), P11KMS_DEVERR_KEY_DISABLED);
	} else {
		uint8_t ct[512], out[512];
		CK_ULONG cl = sizeof(ct), ol = sizeof(out);
		assert_ok(p11->C_EncryptInit(S, &m, pub));
		assert_rv(p11->C_Encrypt(S, (CK_BYTE_PTR) "x", 1, ct, &cl), CKR_DEVICE_ERROR);
		assert_int_equal(h_deverr(S), P11KMS_DEVERR_KEY_DISABLED);
		assert_ok(p11->C_DecryptInit(S, &m, priv));
		assert_rv(p11->C_Decrypt(S, blob, bl, out, &ol), CKR_DEVICE_ERROR);
		assert_int_equal(h_deverr(S), P11KMS_DEVERR_KEY_DISABLED);
	}
	c->set_enabled(true);
	if (w) {
		CK_OBJECT_HANDLE back;
		assert_ok(h_unwrap_as(S, &m, priv, blob, bl, CKK_AES, &back));
		h_same_aes_key(S, local, back);
	} else {
		uint8_t out[512];
		CK_ULONG ol = sizeof(out);
		assert_ok(p11->C_DecryptInit(S, &m, priv));
		assert_ok(p11->C_Decrypt(S, blob, bl, out, &ol));
		assert_int_equal(ol, 6);
		assert_memory_equal(out, "before", 6);
	}
}

/* One role per pair: a wrapping pair refuses C_Encrypt/C_Decrypt, so a
 * key it wrapped cannot be read with C_Decrypt (Clulow; Tookan A1); a
 * data pair wraps and unwraps nothing, so it cannot import a key whose
 * value the caller chose (Tookan A2). */
void oaep_one_role(void **state)
{
	const oaep_cloud *c = *state;
	CK_OBJECT_HANDLE pub = h_find_obj(S, CKO_PUBLIC_KEY, "kek");
	CK_OBJECT_HANDLE priv = h_find_obj(S, CKO_PRIVATE_KEY, "kek");
	CK_RSA_PKCS_OAEP_PARAMS p;
	CK_MECHANISM m = h_oaep(&p, true);
	uint8_t victim[32], blob[512], out[1];
	h_fill(victim, 32, 0x3c);
	CK_OBJECT_HANDLE local = h_import_key(S, CKK_AES, victim, 32);
	CK_ULONG bl = sizeof(blob);
	if (wraps(c, pub, priv)) {
		assert_ok(p11->C_WrapKey(S, &m, pub, local, blob, &bl));
		assert_rv(p11->C_DecryptInit(S, &m, priv), CKR_KEY_FUNCTION_NOT_PERMITTED);
		assert_rv(p11->C_EncryptInit(S, &m, pub), CKR_KEY_FUNCTION_NOT_PERMITTED);
	} else {
		assert_rv(p11->C_WrapKey(S, &m, pub, local, blob, &bl),
			  CKR_KEY_FUNCTION_NOT_PERMITTED);
		assert_ok(p11->C_EncryptInit(S, &m, pub));
		assert_ok(p11->C_Encrypt(S, victim, 32, blob, &bl));
		CK_OBJECT_HANDLE back;
		assert_rv(h_unwrap_as(S, &m, priv, blob, bl, CKK_AES, &back),
			  CKR_KEY_FUNCTION_NOT_PERMITTED);
	}
	(void)out;
}
