/* SPDX-License-Identifier: Apache-2.0 */
/* The signing checks of every KMS key pair (sign_suite.h). */
#include "sign_suite.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/ecdsa.h>
#include <openssl/evp.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

typedef struct sign_case {
	CK_MECHANISM_TYPE mech;
	const char *name;
	unsigned alg;        /* SA_*: the algorithm it runs */
	const char *md;      /* its hash */
	bool raw;            /* the input is the digest (or a DigestInfo) */
	bool digest_info;    /* CKM_RSA_PKCS */
	bool pss;
	bool ec;
} sign_case;

static const sign_case cases[] = {
	{CKM_SHA256_RSA_PKCS, "RSA_PKCS1_SHA256", SA_PKCS1_256, "SHA256", false, false, false, false},
	{CKM_SHA384_RSA_PKCS, "RSA_PKCS1_SHA384", SA_PKCS1_384, "SHA384", false, false, false, false},
	{CKM_SHA512_RSA_PKCS, "RSA_PKCS1_SHA512", SA_PKCS1_512, "SHA512", false, false, false, false},
	{CKM_RSA_PKCS, "RSA_PKCS1_SHA256", SA_PKCS1_256, "SHA256", true, true, false, false},
	{CKM_RSA_PKCS, "RSA_PKCS1_SHA512", SA_PKCS1_512, "SHA512", true, true, false, false},
	{CKM_RSA_PKCS_PSS, "RSA_PSS_SHA256", SA_PSS_256, "SHA256", true, false, true, false},
	{CKM_RSA_PKCS_PSS, "RSA_PSS_SHA384", SA_PSS_384, "SHA384", true, false, true, false},
	{CKM_SHA256_RSA_PKCS_PSS, "RSA_PSS_SHA256", SA_PSS_256, "SHA256", false, false, true, false},
	{CKM_SHA384_RSA_PKCS_PSS, "RSA_PSS_SHA384", SA_PSS_384, "SHA384", false, false, true, false},
	{CKM_SHA512_RSA_PKCS_PSS, "RSA_PSS_SHA512", SA_PSS_512, "SHA512", false, false, true, false},
	{CKM_ECDSA, "ECDSA_SHA256", SA_ECDSA_256, "SHA256", true, false, false, true},
	{CKM_ECDSA, "ECDSA_SHA384", SA_ECDSA_384, "SHA384", true, false, false, true},
	{CKM_ECDSA_SHA256, "ECDSA_SHA256", SA_ECDSA_256, "SHA256", false, false, false, true},
	{CKM_ECDSA_SHA384, "ECDSA_SHA384", SA_ECDSA_384, "SHA384", false, false, false, true},
};

#define ARRAY_SIZE(a) (sizeof(a) / sizeof((a)[0]))

static const uint8_t msg[] = "p11kms signs this message through its KMS";

void sign_key_pair(CK_SESSION_HANDLE s, const char *label, CK_OBJECT_HANDLE *priv,
		   CK_OBJECT_HANDLE *pub)
{
	*priv = h_find_obj(s, CKO_PRIVATE_KEY, label);
	*pub = h_find_obj(s, CKO_PUBLIC_KEY, label);
}

static void digest(const char *md, const uint8_t *in, size_t inlen, uint8_t *out, size_t *n)
{
	unsigned u = 0;
	assert_int_equal(EVP_Digest(in, inlen, out, &u, EVP_get_digestbyname(md), NULL), 1);
	*n = u;
}

/* The DigestInfo of a digest (RFC 8017 9.2). */
static size_t digest_info(const char *md, const uint8_t *dg, size_t dlen, uint8_t *out)
{
	X509_SIG *sig = X509_SIG_new();
	X509_ALGOR *alg;
	ASN1_OCTET_STRING *os;
	X509_SIG_getm(sig, &alg, &os);
	assert_int_equal(X509_ALGOR_set0(alg, OBJ_nid2obj(EVP_MD_get_type(EVP_get_digestbyname(md))),
					 V_ASN1_NULL, NULL),
			 1);
	assert_int_equal(ASN1_OCTET_STRING_set(os, dg, (int)dlen), 1);
	unsigned char *p = out;
	int n = i2d_X509_SIG(sig, &p);
	X509_SIG_free(sig);
	assert_true(n > 0);
	return (size_t)n;
}

/* OpenSSL's verdict, from the key's CKA_PUBLIC_KEY_INFO. */
static bool openssl_verify(CK_SESSION_HANDLE s, CK_OBJECT_HANDLE pub, const sign_case *c,
			   const uint8_t *dg, size_t dlen, const uint8_t *sig, size_t siglen)
{
	uint8_t spki[2048];
	CK_ATTRIBUTE a = {CKA_PUBLIC_KEY_INFO, spki, sizeof(spki)};
	assert_ok(p11->C_GetAttributeValue(s, pub, &a, 1));
	const unsigned char *p = spki;
	EVP_PKEY *pk = d2i_PUBKEY(NULL, &p, (long)a.ulValueLen);
	assert_non_null(pk);
	EVP_PKEY_CTX *ctx = EVP_PKEY_CTX_new(pk, NULL);
	assert_int_equal(EVP_PKEY_verify_init(ctx), 1);
	uint8_t der[160];
	size_t derlen = siglen;
	const uint8_t *vs = sig;
	if (c->ec) {
		ECDSA_SIG *es = ECDSA_SIG_new();
		ECDSA_SIG_set0(es, BN_bin2bn(sig, (int)siglen / 2, NULL),
			       BN_bin2bn(sig + siglen / 2, (int)siglen / 2, NULL));
		unsigned char *q = der;
		derlen = (size_t)i2d_ECDSA_SIG(es, &q);
		ECDSA_SIG_free(es);
		vs = der;
	} else {
		const EVP_MD *md = EVP_get_digestbyname(c->md);
		assert_int_equal(EVP_PKEY_CTX_set_signature_md(ctx, md), 1);
		if (c->pss) {
			assert_int_equal(EVP_PKEY_CTX_set_rsa_padding(ctx, RSA_PKCS1_PSS_PADDING), 1);
			assert_int_equal(EVP_PKEY_CTX_set_rsa_mgf1_md(ctx, md), 1);
			assert_int_equal(EVP_PKEY_CTX_set_rsa_pss_saltlen(ctx, (int)dlen), 1);
		}
	}
	bool ok = EVP_PKEY_verify(ctx, vs, derlen, dg, dlen) == 1;
	EVP_PKEY_CTX_free(ctx);
	EVP_PKEY_free(pk);
	return ok;
}

static CK_MECHANISM mech_of(const sign_case *c, CK_RSA_PKCS_PSS_PARAMS *pp)
{
	CK_MECHANISM m = {c->mech, NULL, 0};
	if (c->pss) {
		bool h384 = strcmp(c->md, "SHA384") == 0, h512 = strcmp(c->md, "SHA512") == 0;
		pp->hashAlg = h512 ? CKM_SHA512 : h384 ? CKM_SHA384 : CKM_SHA256;
		pp->mgf = h512 ? CKG_MGF1_SHA512 : h384 ? CKG_MGF1_SHA384 : CKG_MGF1_SHA256;
		pp->sLen = h512 ? 64 : h384 ? 48 : 32;
		m.pParameter = pp;
		m.ulParameterLen = sizeof(*pp);
	}
	return m;
}

static long calls(const sign_key *k)
{
	return k->sign_calls ? k->sign_calls(k->arg) : 0;
}

/* One case the key runs: sign, check three ways, tamper. */
static void sign_one(CK_SESSION_HANDLE s, const sign_key *k, const sign_case *c,
		     CK_OBJECT_HANDLE priv, CK_OBJECT_HANDLE pub)
{
	CK_RSA_PKCS_PSS_PARAMS pp;
	CK_MECHANISM m = mech_of(c, &pp);
	uint8_t dg[64], in[128], sig[1024];
	size_t dlen = 0;
	digest(c->md, msg, sizeof(msg), dg, &dlen);
	const uint8_t *data = msg;
	size_t datalen = sizeof(msg);
	if (c->raw) {
		datalen = c->digest_info ? digest_info(c->md, dg, dlen, in) : dlen;
		if (!c->digest_info)
			memcpy(in, dg, dlen);
		data = in;
	}
	long before = calls(k);
	assert_ok(p11->C_SignInit(s, &m, priv));
	CK_ULONG siglen = 0;
	assert_ok(p11->C_Sign(s, (CK_BYTE_PTR)data, datalen, NULL, &siglen));
	CK_ULONG want = siglen;
	CK_ULONG small = siglen - 1;
	assert_rv(p11->C_Sign(s, (CK_BYTE_PTR)data, datalen, sig, &small), CKR_BUFFER_TOO_SMALL);
	assert_int_equal(small, want);
	assert_int_equal(calls(k), before); /* no KMS call for lengths */
	siglen = sizeof(sig);
	assert_ok(p11->C_Sign(s, (CK_BYTE_PTR)data, datalen, sig, &siglen));
	assert_int_equal(siglen, want);
	if (k->sign_calls)
		assert_int_equal(calls(k), before + 1);
	/* the operation is over */
	assert_rv(p11->C_Sign(s, (CK_BYTE_PTR)data, datalen, sig, &siglen),
		  CKR_OPERATION_NOT_INITIALIZED);
	assert_true(openssl_verify(s, pub, c, dg, dlen, sig, siglen));
	if (k->check)
		assert_true(k->check(k->arg, c->name, dg, dlen, sig, siglen));
	assert_ok(p11->C_VerifyInit(s, &m, pub));
	assert_ok(p11->C_Verify(s, (CK_BYTE_PTR)data, datalen, sig, siglen));
	/* multi-part, for the mechanisms that hash */
	if (!c->raw) {
		uint8_t sig2[1024];
		CK_ULONG l2 = sizeof(sig2);
		assert_ok(p11->C_SignInit(s, &m, priv));
		assert_ok(p11->C_SignUpdate(s, (CK_BYTE_PTR)msg, 10));
		assert_ok(p11->C_SignUpdate(s, (CK_BYTE_PTR)msg + 10, sizeof(msg) - 10));
		assert_ok(p11->C_SignFinal(s, sig2, &l2));
		assert_true(openssl_verify(s, pub, c, dg, dlen, sig2, l2));
		/* deterministic for PKCS #1 v1.5 */
		if (!c->pss && !c->ec)
			assert_memory_equal(sig, sig2, siglen);
		assert_ok(p11->C_VerifyInit(s, &m, pub));
		assert_ok(p11->C_VerifyUpdate(s, (CK_BYTE_PTR)msg, 3));
		assert_ok(p11->C_VerifyUpdate(s, (CK_BYTE_PTR)msg + 3, sizeof(msg) - 3));
		assert_ok(p11->C_VerifyFinal(s, sig2, l2));
	} else {
		assert_ok(p11->C_SignInit(s, &m, priv));
		assert_rv(p11->C_SignUpdate(s, (CK_BYTE_PTR)data, datalen),
			  CKR_FUNCTION_NOT_SUPPORTED);
		assert_rv(p11->C_SignFinal(s, sig, &siglen), CKR_OPERATION_NOT_INITIALIZED);
	}
	/* tampering */
	uint8_t bad[1024];
	memcpy(bad, sig, siglen);
	bad[siglen / 2] ^= 0x01;
	assert_ok(p11->C_VerifyInit(s, &m, pub));
	assert_rv(p11->C_Verify(s, (CK_BYTE_PTR)data, datalen, bad, siglen), CKR_SIGNATURE_INVALID);
	assert_ok(p11->C_VerifyInit(s, &m, pub));
	assert_rv(p11->C_Verify(s, (CK_BYTE_PTR)data, datalen, sig, siglen - 1),
		  CKR_SIGNATURE_LEN_RANGE);
	if (!c->raw) {
		assert_ok(p11->C_VerifyInit(s, &m, pub));
		assert_rv(p11->C_Verify(s, (CK_BYTE_PTR)msg, sizeof(msg) - 1, sig, siglen),
			  CKR_SIGNATURE_INVALID);
	}
	if (k->check)
		assert_false(k->check(k->arg, c->name, dg, dlen, bad, siglen));
}

/* One case the key does not run: refused before any KMS call where the
 * mechanism names the algorithm, at C_Sign for CKM_RSA_PKCS. */
static void refuse_one(CK_SESSION_HANDLE s, const sign_key *k, const sign_case *c,
		       CK_OBJECT_HANDLE priv)
{
	CK_RSA_PKCS_PSS_PARAMS pp;
	CK_MECHANISM m = mech_of(c, &pp);
	long before = calls(k);
	if (c->ec != k->ec) {
		assert_rv(p11->C_SignInit(s, &m, priv), CKR_KEY_TYPE_INCONSISTENT);
	} else if (c->digest_info) {
		uint8_t dg[64], in[128], sig[1024];
		size_t dlen = 0;
		digest(c->md, msg, sizeof(msg), dg, &dlen);
		size_t n = digest_info(c->md, dg, dlen, in);
		CK_ULONG siglen = sizeof(sig);
		assert_ok(p11->C_SignInit(s, &m, priv));
		assert_rv(p11->C_Sign(s, in, n, sig, &siglen), CKR_DATA_INVALID);
	} else if (c->mech == CKM_ECDSA) {
		/* CKM_ECDSA takes the curve's digest: the other size is refused */
		uint8_t sig[256], dg[64] = {0};
		CK_ULONG siglen = sizeof(sig);
		assert_ok(p11->C_SignInit(s, &m, priv));
		assert_rv(p11->C_Sign(s, dg, c->alg == SA_ECDSA_384 ? 48 : 32, sig, &siglen),
			  CKR_DATA_LEN_RANGE);
	} else {
		assert_rv(p11->C_SignInit(s, &m, priv),
			  c->pss ? CKR_MECHANISM_PARAM_INVALID : CKR_KEY_TYPE_INCONSISTENT);
	}
	assert_int_equal(calls(k), before);
}

void sign_suite_run(CK_SESSION_HANDLE s, const sign_key *k)
{
	CK_OBJECT_HANDLE priv, pub;
	sign_key_pair(s, k->label, &priv, &pub);
	assert_true(h_attr_bool(s, priv, CKA_SIGN));
	assert_false(h_attr_bool(s, priv, CKA_DECRYPT));
	assert_false(h_attr_bool(s, priv, CKA_UNWRAP));
	assert_false(h_attr_bool(s, priv, CKA_ALWAYS_AUTHENTICATE));
	assert_true(h_attr_bool(s, pub, CKA_VERIFY));
	assert_false(h_attr_bool(s, pub, CKA_ENCRYPT));
	assert_int_equal(h_attr_ulong(s, priv, CKA_KEY_TYPE), k->ec ? CKK_EC : CKK_RSA);
	for (size_t i = 0; i < ARRAY_SIZE(cases); i++) {
		const sign_case *c = &cases[i];
		print_message("# %s: %s (%s)\n", k->label, c->name,
			      c->raw ? "raw" : "hashing");
		if (c->ec == k->ec && (k->algs & c->alg))
			sign_one(s, k, c, priv, pub);
		else
			refuse_one(s, k, c, priv);
	}
	/* a public key does not sign, a private one does not verify here */
	CK_MECHANISM m = {k->ec ? CKM_ECDSA_SHA256 : CKM_SHA256_RSA_PKCS, NULL, 0};
	assert_rv(p11->C_SignInit(s, &m, pub), CKR_KEY_FUNCTION_NOT_PERMITTED);
	assert_rv(p11->C_VerifyInit(s, &m, priv), CKR_KEY_FUNCTION_NOT_PERMITTED);
}
