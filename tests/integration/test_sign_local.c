/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Signing keys on the local provider (docs/SIGNING.md) through the exported
 * API: PEM private key files (RSA 2048, EC P-256, EC P-384) as "rsa" and
 * "ec" KMS keys, every signing mechanism (sign_suite.c), the public
 * attributes against the key files, the role the provider decides, a
 * certificate from the configuration, a key file replaced under a running
 * module (a new version: pinned signatures stop), and no key byte in the
 * log.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/core_names.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "harness.h"
#include "sign_suite.h"

static h_env env;
static CK_SESSION_HANDLE S;
static char dir[256], rsa_pem[300], rsa2_pem[300], ec256_pem[300], ec384_pem[300],
	cert_pem[300];
static EVP_PKEY *rsa_key, *ec256_key;

static void write_key(EVP_PKEY *pk, const char *path)
{
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	assert_int_equal(PEM_write_PrivateKey(f, pk, NULL, NULL, 0, NULL, NULL), 1);
	fclose(f);
	assert_int_equal(chmod(path, 0600), 0);
}

/* A self-signed certificate of pk, as an administrator would make it. */
static void write_cert(EVP_PKEY *pk, const char *path)
{
	X509 *x = X509_new();
	X509_set_version(x, 2);
	ASN1_INTEGER_set(X509_get_serialNumber(x), 4242);
	X509_gmtime_adj(X509_getm_notBefore(x), 0);
	X509_gmtime_adj(X509_getm_notAfter(x), 86400L * 365);
	X509_set_pubkey(x, pk);
	X509_NAME *n = X509_get_subject_name(x);
	X509_NAME_add_entry_by_txt(n, "CN", MBSTRING_ASC, (const unsigned char *)"p11kms signer",
				   -1, -1, 0);
	X509_set_issuer_name(x, n);
	assert_true(X509_sign(x, pk, EVP_sha256()) > 0);
	FILE *f = fopen(path, "w");
	assert_non_null(f);
	PEM_write_X509(f, x);
	fclose(f);
	X509_free(x);
}

static int setup(void **state)
{
	(void)state;
	snprintf(dir, sizeof(dir), "/tmp/p11kms-sign-XXXXXX");
	assert_non_null(mkdtemp(dir));
	snprintf(rsa_pem, sizeof(rsa_pem), "%s/rsa.pem", dir);
	snprintf(rsa2_pem, sizeof(rsa2_pem), "%s/rsa2.pem", dir);
	snprintf(ec256_pem, sizeof(ec256_pem), "%s/ec256.pem", dir);
	snprintf(ec384_pem, sizeof(ec384_pem), "%s/ec384.pem", dir);
	snprintf(cert_pem, sizeof(cert_pem), "%s/rsa-cert.pem", dir);
	rsa_key = EVP_RSA_gen(2048);
	ec256_key = EVP_EC_gen("P-256");
	EVP_PKEY *ec384 = EVP_EC_gen("P-384");
	write_key(rsa_key, rsa_pem);
	write_key(rsa_key, rsa2_pem);
	write_key(ec256_key, ec256_pem);
	write_key(ec384, ec384_pem);
	write_cert(rsa_key, cert_pem);
	EVP_PKEY_free(ec384);
	char keys[2048];
	snprintf(keys, sizeof(keys),
		 "\"keys\": [{\"id\": \"%s\", \"label\": \"rsa\", \"type\": \"rsa\", "
		 "\"certificate\": \"%s\"}, "
		 "{\"id\": \"%s\", \"label\": \"ec256\", \"type\": \"ec\"}, "
		 "{\"id\": \"%s\", \"label\": \"ec384\", \"type\": \"ec\"}, "
		 "{\"id\": \"%s\", \"label\": \"rsa-wrap\", \"type\": \"rsa\", \"usage\": \"wrap\"}]",
		 rsa_pem, cert_pem, ec256_pem, ec384_pem, rsa2_pem);
	h_env_new(&env, "required", keys);
	assert_ok(h_initialize(&env));
	h_init_token(&env);
	S = h_user_session(&env);
	return 0;
}

static int teardown(void **state)
{
	(void)state;
	p11->C_Finalize(NULL);
	h_env_free(&env);
	EVP_PKEY_free(rsa_key);
	EVP_PKEY_free(ec256_key);
	char cmd[300];
	snprintf(cmd, sizeof(cmd), "rm -rf %s", dir);
	assert_int_equal(system(cmd), 0);
	return 0;
}

static void test_rsa_suite(void **state)
{
	(void)state;
	sign_key k = {.label = "rsa", .ec = false, .algs = SA_RSA_ALL};
	sign_suite_run(S, &k);
}

static void test_ec_suites(void **state)
{
	(void)state;
	sign_key k256 = {.label = "ec256", .ec = true, .algs = SA_ECDSA_256};
	sign_suite_run(S, &k256);
	sign_key k384 = {.label = "ec384", .ec = true, .algs = SA_ECDSA_384};
	sign_suite_run(S, &k384);
}

/* The public attributes are the key files' own. */
static void test_public_attributes(void **state)
{
	(void)state;
	CK_OBJECT_HANDLE priv, pub;
	sign_key_pair(S, "rsa", &priv, &pub);
	BIGNUM *n = NULL;
	assert_int_equal(EVP_PKEY_get_bn_param(rsa_key, OSSL_PKEY_PARAM_RSA_N, &n), 1);
	uint8_t want[512], got[512];
	int wl = BN_bn2bin(n, want);
	BN_free(n);
	CK_ATTRIBUTE a = {CKA_MODULUS, got, sizeof(got)};
	assert_ok(p11->C_GetAttributeValue(S, priv, &a, 1));
	assert_int_equal(a.ulValueLen, wl);
	assert_memory_equal(got, want, (size_t)wl);
	assert_int_equal(h_attr_ulong(S, pub, CKA_MODULUS_BITS), 2048);
	/* the private numbers never leave */
	CK_ATTRIBUTE d = {CKA_PRIVATE_EXPONENT, NULL, 0};
	assert_rv(p11->C_GetAttributeValue(S, priv, &d, 1), CKR_ATTRIBUTE_SENSITIVE);
	assert_true(h_attr_bool(S, priv, CKA_SENSITIVE));
	assert_false(h_attr_bool(S, priv, CKA_EXTRACTABLE));

	sign_key_pair(S, "ec256", &priv, &pub);
	static const uint8_t p256[] = {0x06, 0x08, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x03, 0x01, 0x07};
	CK_ATTRIBUTE e[] = {{CKA_EC_PARAMS, got, sizeof(got)}};
	assert_ok(p11->C_GetAttributeValue(S, pub, e, 1));
	assert_int_equal(e[0].ulValueLen, sizeof(p256));
	assert_memory_equal(got, p256, sizeof(p256));
	uint8_t pt[200];
	size_t ptl = 0;
	assert_int_equal(EVP_PKEY_get_octet_string_param(ec256_key, OSSL_PKEY_PARAM_ENCODED_PUBLIC_KEY,
							 pt, sizeof(pt), &ptl),
			 1);
	CK_ATTRIBUTE q = {CKA_EC_POINT, got, sizeof(got)};
	assert_ok(p11->C_GetAttributeValue(S, priv, &q, 1));
	assert_int_equal(q.ulValueLen, ptl + 2);
	assert_int_equal(got[0], 0x04);
	assert_int_equal(got[1], ptl);
	assert_memory_equal(got + 2, pt, ptl);
	/* the version names the key material */
	char ver[64] = {0};
	CK_ATTRIBUTE v = {CKA_P11KMS_KMS_KEY_VERSION, ver, sizeof(ver) - 1};
	assert_ok(p11->C_GetAttributeValue(S, pub, &v, 1));
	assert_int_equal(v.ulValueLen, 16);
}

/* A template naming a role finds the signing key before anything else
 * asked the KMS: C_FindObjectsInit asks it. */
static void test_find_by_role(void **state)
{
	(void)state;
	p11->C_Finalize(NULL);
	assert_ok(h_initialize(&env));
	S = h_user_session(&env);
	CK_OBJECT_CLASS cls = CKO_PRIVATE_KEY;
	CK_BBOOL T = CK_TRUE;
	CK_KEY_TYPE kt = CKK_RSA;
	CK_ATTRIBUTE q[] = {{CKA_CLASS, &cls, sizeof(cls)},
			    {CKA_KEY_TYPE, &kt, sizeof(kt)},
			    {CKA_SIGN, &T, 1}};
	CK_OBJECT_HANDLE h[8];
	CK_ULONG n = 0;
	assert_ok(p11->C_FindObjectsInit(S, q, 3));
	assert_ok(p11->C_FindObjects(S, h, 8, &n));
	assert_ok(p11->C_FindObjectsFinal(S));
	/* "rsa" signs; "rsa-wrap" is configured to wrap, which this key
	 * cannot: it permits nothing */
	assert_int_equal(n, 1);
	assert_int_equal(h[0], h_find_obj(S, CKO_PRIVATE_KEY, "rsa"));
	CK_OBJECT_HANDLE wpriv, wpub;
	sign_key_pair(S, "rsa-wrap", &wpriv, &wpub);
	/* a declared role shows until the KMS is first asked (here: for the
	 * modulus); then what the KMS said */
	assert_true(h_attr_bool(S, wpriv, CKA_UNWRAP));
	assert_int_equal(h_attr_ulong(S, wpub, CKA_MODULUS_BITS), 2048);
	assert_false(h_attr_bool(S, wpriv, CKA_UNWRAP));
	assert_false(h_attr_bool(S, wpub, CKA_WRAP));
	assert_false(h_attr_bool(S, wpriv, CKA_SIGN));
	CK_MECHANISM m = {CKM_SHA256_RSA_PKCS, NULL, 0};
	assert_rv(p11->C_SignInit(S, &m, wpriv), CKR_KEY_FUNCTION_NOT_PERMITTED);
	assert_true(h_log_contains(&env, "the KMS says it cannot decrypt"));
}

/* The certificate from the configuration: an X.509 object with the key's
 * CKA_ID, and the key pair's CKA_SUBJECT is its subject. */
static void test_certificate(void **state)
{
	(void)state;
	CK_OBJECT_HANDLE c = h_find_obj(S, CKO_CERTIFICATE, "rsa");
	assert_int_equal(h_attr_ulong(S, c, CKA_CERTIFICATE_TYPE), CKC_X_509);
	assert_int_equal(h_attr_ulong(S, c, CKA_CERTIFICATE_CATEGORY), 1);
	uint8_t der[4096], id[300], subj[512], psubj[512], ser[32];
	CK_ATTRIBUTE a[] = {{CKA_VALUE, der, sizeof(der)},
			    {CKA_ID, id, sizeof(id)},
			    {CKA_SUBJECT, subj, sizeof(subj)},
			    {CKA_SERIAL_NUMBER, ser, sizeof(ser)}};
	assert_ok(p11->C_GetAttributeValue(S, c, a, 4));
	assert_int_equal(a[1].ulValueLen, strlen(rsa_pem));
	assert_memory_equal(id, rsa_pem, strlen(rsa_pem));
	const unsigned char *p = der;
	X509 *x = d2i_X509(NULL, &p, (long)a[0].ulValueLen);
	assert_non_null(x);
	assert_int_equal(EVP_PKEY_eq(X509_get0_pubkey(x), rsa_key), 1);
	assert_int_equal(ASN1_INTEGER_get(X509_get_serialNumber(x)), 4242);
	X509_free(x);
	CK_OBJECT_HANDLE priv, pub;
	sign_key_pair(S, "rsa", &priv, &pub);
	CK_ATTRIBUTE ps = {CKA_SUBJECT, psubj, sizeof(psubj)};
	assert_ok(p11->C_GetAttributeValue(S, priv, &ps, 1));
	assert_int_equal(ps.ulValueLen, a[2].ulValueLen);
	assert_memory_equal(psubj, subj, ps.ulValueLen);
	/* read-only, and it stays */
	assert_rv(p11->C_DestroyObject(S, c), CKR_ACTION_PROHIBITED);
}

/* A key file replaced under a running module is a new version: the
 * objects keep the public key they showed, so a signature must not come
 * from another key. */
static void test_key_file_replaced(void **state)
{
	(void)state;
	CK_OBJECT_HANDLE priv, pub;
	sign_key_pair(S, "ec256", &priv, &pub);
	assert_true(h_attr_bool(S, priv, CKA_SIGN)); /* learned */
	char saved[320];
	snprintf(saved, sizeof(saved), "%s.saved", ec256_pem);
	assert_int_equal(rename(ec256_pem, saved), 0);
	EVP_PKEY *other = EVP_EC_gen("P-256");
	write_key(other, ec256_pem);
	EVP_PKEY_free(other);
	CK_MECHANISM m = {CKM_ECDSA_SHA256, NULL, 0};
	uint8_t sig[128];
	CK_ULONG sl = sizeof(sig);
	assert_ok(p11->C_SignInit(S, &m, priv));
	assert_rv(p11->C_Sign(S, (CK_BYTE_PTR) "x", 1, sig, &sl), CKR_DEVICE_ERROR);
	assert_int_equal(h_deverr(S), P11KMS_DEVERR_KEY_NOT_FOUND);
	assert_true(h_log_contains(&env, "now holds key version"));
	assert_int_equal(rename(saved, ec256_pem), 0);
	sl = sizeof(sig);
	assert_ok(p11->C_SignInit(S, &m, priv));
	assert_ok(p11->C_Sign(S, (CK_BYTE_PTR) "x", 1, sig, &sl));
	/* an open key file is refused, and says why */
	assert_int_equal(chmod(ec256_pem, 0644), 0);
	assert_ok(p11->C_SignInit(S, &m, priv));
	sl = sizeof(sig);
	assert_rv(p11->C_Sign(S, (CK_BYTE_PTR) "x", 1, sig, &sl), CKR_DEVICE_ERROR);
	assert_true(h_log_contains(&env, "readable by others than its owner"));
	assert_int_equal(chmod(ec256_pem, 0600), 0);
}

/* Bad parameters, answered with PKCS #11's codes and a log line. */
static void test_bad_parameters(void **state)
{
	(void)state;
	CK_OBJECT_HANDLE priv, pub;
	sign_key_pair(S, "rsa", &priv, &pub);
	CK_RSA_PKCS_PSS_PARAMS pp = {CKM_SHA256, CKG_MGF1_SHA256, 20};
	CK_MECHANISM m = {CKM_RSA_PKCS_PSS, &pp, sizeof(pp)};
	assert_rv(p11->C_SignInit(S, &m, priv), CKR_MECHANISM_PARAM_INVALID);
	assert_true(h_log_contains(&env, "a salt as long as the hash"));
	pp = (CK_RSA_PKCS_PSS_PARAMS){CKM_SHA256, CKG_MGF1_SHA384, 32};
	assert_rv(p11->C_SignInit(S, &m, priv), CKR_MECHANISM_PARAM_INVALID);
	pp = (CK_RSA_PKCS_PSS_PARAMS){CKM_SHA384, CKG_MGF1_SHA384, 48};
	CK_MECHANISM m256 = {CKM_SHA256_RSA_PKCS_PSS, &pp, sizeof(pp)};
	assert_rv(p11->C_SignInit(S, &m256, priv), CKR_MECHANISM_PARAM_INVALID);
	m.ulParameterLen = sizeof(pp) - 1;
	assert_rv(p11->C_SignInit(S, &m, priv), CKR_MECHANISM_PARAM_INVALID);
	m.pParameter = NULL;
	m.ulParameterLen = 0;
	assert_rv(p11->C_SignInit(S, &m, priv), CKR_MECHANISM_PARAM_INVALID);
	/* PSS input is the digest */
	pp = (CK_RSA_PKCS_PSS_PARAMS){CKM_SHA256, CKG_MGF1_SHA256, 32};
	m = (CK_MECHANISM){CKM_RSA_PKCS_PSS, &pp, sizeof(pp)};
	uint8_t in[600] = {0}, sig[512];
	CK_ULONG sl = sizeof(sig);
	assert_ok(p11->C_SignInit(S, &m, priv));
	assert_rv(p11->C_Sign(S, in, 33, sig, &sl), CKR_DATA_LEN_RANGE);
	/* CKM_RSA_PKCS: a DigestInfo, at most k - 11 bytes */
	CK_MECHANISM raw = {CKM_RSA_PKCS, NULL, 0};
	assert_ok(p11->C_SignInit(S, &raw, priv));
	sl = sizeof(sig);
	assert_rv(p11->C_Sign(S, in, 36, sig, &sl), CKR_DATA_INVALID);
	assert_true(h_log_contains(&env, "are not a SHA-256, -384 or -512 DigestInfo"));
	assert_ok(p11->C_SignInit(S, &raw, priv));
	sl = sizeof(sig);
	assert_rv(p11->C_Sign(S, in, 256 - 10, sig, &sl), CKR_DATA_LEN_RANGE);
	assert_ok(p11->C_SignInit(S, &raw, priv));
	sl = sizeof(sig);
	assert_rv(p11->C_Sign(S, in, sizeof(in), sig, &sl), CKR_DATA_LEN_RANGE);
	/* a parameter where none is taken */
	CK_MECHANISM withp = {CKM_SHA256_RSA_PKCS, in, 8};
	assert_rv(p11->C_SignInit(S, &withp, priv), CKR_MECHANISM_PARAM_INVALID);
	/* CKM_ECDSA input is the curve's digest */
	sign_key_pair(S, "ec256", &priv, &pub);
	CK_MECHANISM ec = {CKM_ECDSA, NULL, 0};
	assert_ok(p11->C_SignInit(S, &ec, priv));
	sl = sizeof(sig);
	assert_rv(p11->C_Sign(S, in, 20, sig, &sl), CKR_DATA_LEN_RANGE);
	assert_ok(p11->C_SignInit(S, &ec, priv));
	sl = sizeof(sig);
	assert_rv(p11->C_Sign(S, in, 64, sig, &sl), CKR_DATA_LEN_RANGE);
	/* an active operation stays one */
	assert_ok(p11->C_SignInit(S, &ec, priv));
	assert_rv(p11->C_SignInit(S, &ec, priv), CKR_OPERATION_ACTIVE);
	sl = sizeof(sig);
	assert_ok(p11->C_Sign(S, in, 32, sig, &sl));
	/* a local key cannot run them */
	CK_OBJECT_HANDLE aes = h_aes_key(S, 32, CK_FALSE, "aes");
	assert_rv(p11->C_SignInit(S, &ec, aes), CKR_KEY_TYPE_INCONSISTENT);
}

/* An application stores a certificate (as pkcs11-tool --write-object and
 * Java's KeyStore do): a public token object, kept across restarts; what
 * the template leaves out of what the DER says is filled in. */
static void test_create_certificate(void **state)
{
	(void)state;
	FILE *f = fopen(cert_pem, "r");
	assert_non_null(f);
	X509 *x = PEM_read_X509(f, NULL, NULL, NULL);
	fclose(f);
	unsigned char *der = NULL, *subj = NULL;
	int dl = i2d_X509(x, &der);
	int sl = i2d_X509_NAME(X509_get_subject_name(x), &subj);
	X509_free(x);
	CK_OBJECT_CLASS cls = CKO_CERTIFICATE;
	CK_CERTIFICATE_TYPE ct = CKC_X_509;
	CK_BBOOL T = CK_TRUE;
	CK_ATTRIBUTE t[] = {{CKA_CLASS, &cls, sizeof(cls)},
			    {CKA_CERTIFICATE_TYPE, &ct, sizeof(ct)},
			    {CKA_TOKEN, &T, 1},
			    {CKA_LABEL, "stored", 6},
			    {CKA_ID, "\x01\x02", 2},
			    {CKA_SUBJECT, subj, (CK_ULONG)sl},
			    {CKA_VALUE, der, (CK_ULONG)dl}};
	CK_OBJECT_HANDLE h;
	/* required: the subject and the value */
	assert_rv(p11->C_CreateObject(S, t, 5, &h), CKR_TEMPLATE_INCOMPLETE);
	/* the value must be a certificate, of the type said */
	uint8_t junk[64] = {0x30, 0x03, 0x02, 0x01, 0x01};
	CK_ATTRIBUTE bad[7];
	memcpy(bad, t, sizeof(bad));
	bad[6].pValue = junk;
	bad[6].ulValueLen = sizeof(junk);
	assert_rv(p11->C_CreateObject(S, bad, 7, &h), CKR_ATTRIBUTE_VALUE_INVALID);
	CK_CERTIFICATE_TYPE attr_cert = CKC_X_509_ATTR_CERT;
	memcpy(bad, t, sizeof(bad));
	bad[1].pValue = &attr_cert;
	assert_rv(p11->C_CreateObject(S, bad, 7, &h), CKR_ATTRIBUTE_VALUE_INVALID);
	/* only the SO trusts */
	memcpy(bad, t, sizeof(bad));
	bad[2] = (CK_ATTRIBUTE){CKA_TRUSTED, &T, 1};
	assert_rv(p11->C_CreateObject(S, bad, 7, &h), CKR_ATTRIBUTE_READ_ONLY);
	assert_ok(p11->C_CreateObject(S, t, 7, &h));
	uint8_t serial[32], spki[1024];
	CK_ATTRIBUTE q[] = {{CKA_SERIAL_NUMBER, serial, sizeof(serial)},
			    {CKA_PUBLIC_KEY_INFO, spki, sizeof(spki)}};
	assert_ok(p11->C_GetAttributeValue(S, h, q, 2));
	assert_true(q[0].ulValueLen >= 3); /* INTEGER 4242 */
	const unsigned char *p = spki;
	EVP_PKEY *pk = d2i_PUBKEY(NULL, &p, (long)q[1].ulValueLen);
	assert_int_equal(EVP_PKEY_eq(pk, rsa_key), 1);
	EVP_PKEY_free(pk);
	assert_false(h_attr_bool(S, h, CKA_PRIVATE));
	/* kept, and readable without a login */
	p11->C_Finalize(NULL);
	assert_ok(h_initialize(&env));
	CK_SESSION_HANDLE ro;
	assert_ok(p11->C_OpenSession(env.slot, CKF_SERIAL_SESSION, NULL, NULL, &ro));
	h = h_find_obj(ro, CKO_CERTIFICATE, "stored");
	uint8_t back[4096];
	CK_ATTRIBUTE v = {CKA_VALUE, back, sizeof(back)};
	assert_ok(p11->C_GetAttributeValue(ro, h, &v, 1));
	assert_int_equal(v.ulValueLen, dl);
	assert_memory_equal(back, der, (size_t)dl);
	assert_ok(p11->C_CloseSession(ro));
	S = h_user_session(&env);
	assert_ok(p11->C_DestroyObject(S, h_find_obj(S, CKO_CERTIFICATE, "stored")));
	OPENSSL_free(der);
	OPENSSL_free(subj);
}

/* Nothing of the private keys reaches the log. */
static void test_no_key_in_log(void **state)
{
	(void)state;
	BIGNUM *d = NULL;
	assert_int_equal(EVP_PKEY_get_bn_param(ec256_key, OSSL_PKEY_PARAM_PRIV_KEY, &d), 1);
	uint8_t b[66];
	int n = BN_bn2bin(d, b);
	BN_free(d);
	assert_false(h_log_has_bytes(&env, b, (size_t)n));
	assert_false(h_log_contains(&env, "PRIVATE KEY"));
}

int main(void)
{
	h_load();
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_rsa_suite),
		cmocka_unit_test(test_ec_suites),
		cmocka_unit_test(test_public_attributes),
		cmocka_unit_test(test_certificate),
		cmocka_unit_test(test_bad_parameters),
		cmocka_unit_test(test_key_file_replaced),
		cmocka_unit_test(test_find_by_role),
		cmocka_unit_test(test_create_certificate),
		cmocka_unit_test(test_no_key_in_log),
	};
	return cmocka_run_group_tests(tests, setup, teardown);
}
