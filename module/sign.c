/* SPDX-License-Identifier: Apache-2.0 */
/*
 * Signing with a KMS asymmetric key and verifying with its public key
 * (docs/SIGNING.md). The hashing mechanisms hash here, part by part; the
 * KMS gets one digest per signature, the only form all three clouds take.
 * Verification never asks the KMS. The raw mechanisms (CKM_RSA_PKCS,
 * CKM_RSA_PKCS_PSS, CKM_ECDSA) are single-part, as PKCS #11 defines them.
 */
#include <string.h>

#include <openssl/crypto.h>

#include "common/crypto.h"
#include "common/log.h"
#include "mech.h"
#include "slots/asym.h"

#define HELD_MAX 512 /* the longest single-part input: a 4096-bit key's k - 11 */

/* CK_RSA_PKCS_PSS_PARAMS of the right size; its values are checked
 * against the key at init. */
CK_RV param_pss(const CK_MECHANISM *m)
{
	if (!m->pParameter || m->ulParameterLen != sizeof(CK_RSA_PKCS_PSS_PARAMS)) {
		log_info("mech", "RSA-PSS needs CK_RSA_PKCS_PSS_PARAMS (%zu bytes), %lu given",
			 sizeof(CK_RSA_PKCS_PSS_PARAMS), (unsigned long)m->ulParameterLen);
		return CKR_MECHANISM_PARAM_INVALID;
	}
	return CKR_OK;
}

/* The PSS algorithm the parameters name: hash and MGF1 hash the same,
 * salt as long as the hash (what the KMSs run); 0 when there is none. */
static int pss_alg(const CK_RSA_PKCS_PSS_PARAMS *p)
{
	static const struct {
		CK_MECHANISM_TYPE hash;
		CK_RSA_PKCS_MGF_TYPE mgf;
		CK_ULONG slen;
		int alg;
	} pss[] = {
		{CKM_SHA256, CKG_MGF1_SHA256, 32, SALG_RSA_PSS_SHA256},
		{CKM_SHA384, CKG_MGF1_SHA384, 48, SALG_RSA_PSS_SHA384},
		{CKM_SHA512, CKG_MGF1_SHA512, 64, SALG_RSA_PSS_SHA512},
	};
	for (size_t i = 0; i < ARRAY_SIZE(pss); i++)
		if (p->hashAlg == pss[i].hash && p->mgf == pss[i].mgf && p->sLen == pss[i].slen)
			return pss[i].alg;
	return 0;
}

/* The DigestInfo prefixes (RFC 8017 9.2, note 1) of the hashes the KMSs
 * sign, for CKM_RSA_PKCS: the caller's DigestInfo names the algorithm. */
static const struct {
	uint8_t prefix[19];
	int alg;
} digest_infos[] = {
	{{0x30, 0x31, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
	  0x01, 0x05, 0x00, 0x04, 0x20},
	 SALG_RSA_PKCS1_SHA256},
	{{0x30, 0x41, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
	  0x02, 0x05, 0x00, 0x04, 0x30},
	 SALG_RSA_PKCS1_SHA384},
	{{0x30, 0x51, 0x30, 0x0d, 0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02,
	  0x03, 0x05, 0x00, 0x04, 0x40},
	 SALG_RSA_PKCS1_SHA512},
};

static int digest_info_alg(const uint8_t *in, size_t inlen, const uint8_t **dg)
{
	for (size_t i = 0; i < ARRAY_SIZE(digest_infos); i++) {
		const salg_facts *f = salg_info((sign_alg)digest_infos[i].alg);
		size_t pl = sizeof(digest_infos[i].prefix);
		if (inlen == pl + f->dlen && memcmp(in, digest_infos[i].prefix, pl) == 0) {
			*dg = in + pl;
			return digest_infos[i].alg;
		}
	}
	return 0;
}

static const char *alg_list(unsigned algs, char *b, size_t n)
{
	static const char *const names[SALG_COUNT_] = {
		[SALG_RSA_PKCS1_SHA256] = "SHA256-RSA-PKCS", [SALG_RSA_PKCS1_SHA384] = "SHA384-RSA-PKCS",
		[SALG_RSA_PKCS1_SHA512] = "SHA512-RSA-PKCS", [SALG_RSA_PSS_SHA256] = "SHA256-RSA-PSS",
		[SALG_RSA_PSS_SHA384] = "SHA384-RSA-PSS",    [SALG_RSA_PSS_SHA512] = "SHA512-RSA-PSS",
		[SALG_ECDSA_SHA256] = "ECDSA-SHA256",	     [SALG_ECDSA_SHA384] = "ECDSA-SHA384",
	};
	size_t used = 0;
	b[0] = 0;
	for (int a = 1; a < SALG_COUNT_; a++)
		if (algs & SALG_BIT(a) && used < n)
			used += (size_t)snprintf(b + used, n - used, "%s%s", used ? ", " : "",
						 names[a]);
	return algs ? b : "none";
}

CK_RV sign_op_init(mac_op *op, const mech_info *mi, const CK_MECHANISM *m,
		   const kms_port *port, size_t idx, bool verify)
{
	memset(op, 0, sizeof(*op));
	GUARD(mi->check_param(m));
	if (!port || !port->tok || !port->pubkey || !port->sign)
		return CKR_GENERAL_ERROR;
	EVP_PKEY *pub = NULL;
	unsigned algs = 0;
	GUARD(port->pubkey(port->tok, idx, &pub, &algs));
	int salg = mi->salg;
	CK_RV rv = CKR_OK;
	if (mi->type == CKM_ECDSA)
		salg = EVP_PKEY_get_bits(pub) > 256 ? SALG_ECDSA_SHA384 : SALG_ECDSA_SHA256;
	if (m->pParameter && mi->check_param == param_pss) {
		const CK_RSA_PKCS_PSS_PARAMS *p = m->pParameter;
		int named = pss_alg(p);
		if (!named || (salg && named != salg)) {
			log_info("mech", "%s: hash 0x%lx, MGF 0x%lx, salt %lu bytes: the KMS runs "
					 "PSS with the mechanism's hash in both and a salt as long "
					 "as the hash (SHA-256, -384 or -512)",
				 mi->name, (unsigned long)p->hashAlg, (unsigned long)p->mgf,
				 (unsigned long)p->sLen);
			rv = CKR_MECHANISM_PARAM_INVALID;
		}
		salg = named;
	}
	/* What the KMS key runs, as the KMS said: a signature it cannot make
	 * is refused here, not after the data was hashed. */
	if (rv == CKR_OK && !verify && salg && !(algs & SALG_BIT(salg))) {
		char b[160];
		log_info("mech", "%s: the KMS key signs only with %s", mi->name,
			 alg_list(algs, b, sizeof(b)));
		rv = mi->check_param == param_pss ? CKR_MECHANISM_PARAM_INVALID
						  : CKR_KEY_TYPE_INCONSISTENT;
	}
	const salg_facts *f = salg ? salg_info((sign_alg)salg) : NULL;
	if (rv == CKR_OK && mi->multipart) {
		EVP_MD *md = EVP_MD_fetch(crypto_libctx(), f->md, NULL);
		op->md = EVP_MD_CTX_new();
		if (!md || !op->md || EVP_DigestInit_ex2(op->md, md, NULL) != 1)
			rv = CKR_GENERAL_ERROR;
		EVP_MD_free(md);
	}
	dbuf_init(&op->held, HELD_MAX, false);
	op->pub = pub;
	if (rv != CKR_OK) {
		mac_op_free(op);
		return rv;
	}
	op->mech = mi;
	op->kms = *port;
	op->kms_index = idx;
	op->salg = salg;
	op->verify = verify;
	op->outlen = asym_sig_len(pub);
	return CKR_OK;
}

CK_RV sign_update(mac_op *op, const uint8_t *in, size_t inlen)
{
	if (op->md)
		return EVP_DigestUpdate(op->md, in, inlen) == 1 ? CKR_OK : CKR_GENERAL_ERROR;
	if (!dbuf_add(&op->held, in, inlen)) {
		log_info("mech", "%s: %zu bytes of input is more than the mechanism takes",
			 op->mech->name, op->held.len + inlen);
		return CKR_DATA_LEN_RANGE;
	}
	return CKR_OK;
}

/* The digest to sign or verify, and its algorithm. */
static CK_RV sign_input(mac_op *op, uint8_t dg[EVP_MAX_MD_SIZE], size_t *dlen, int *alg)
{
	*alg = op->salg;
	if (op->md) {
		unsigned u = 0;
		if (EVP_DigestFinal_ex(op->md, dg, &u) != 1)
			return CKR_GENERAL_ERROR;
		*dlen = u;
		return CKR_OK;
	}
	const uint8_t *in = op->held.p ? op->held.p : (const uint8_t *)"";
	size_t inlen = op->held.len;
	if (op->mech->type == CKM_RSA_PKCS) {
		const uint8_t *d = NULL;
		*alg = digest_info_alg(in, inlen, &d);
		if (!*alg) {
			log_info("mech", "CKM_RSA_PKCS: the %zu bytes are not a SHA-256, -384 or "
					 "-512 DigestInfo, the only input a KMS signs",
				 inlen);
			return inlen + 11 > op->outlen ? CKR_DATA_LEN_RANGE : CKR_DATA_INVALID;
		}
		in = d;
		inlen = salg_info((sign_alg)*alg)->dlen;
	} else if (inlen != salg_info((sign_alg)op->salg)->dlen) {
		log_info("mech", "%s: the input is a %zu-byte digest; the key signs %zu-byte ones",
			 op->mech->name, inlen, salg_info((sign_alg)op->salg)->dlen);
		return CKR_DATA_LEN_RANGE;
	}
	memcpy(dg, in, inlen);
	*dlen = inlen;
	return CKR_OK;
}

CK_RV sign_final(mac_op *op, uint8_t *out, CK_ULONG *outlen)
{
	if (!out) {
		*outlen = op->outlen;
		return CKR_OK;
	}
	if (*outlen < op->outlen) {
		*outlen = op->outlen;
		return CKR_BUFFER_TOO_SMALL;
	}
	uint8_t dg[EVP_MAX_MD_SIZE];
	size_t dlen = 0;
	int alg = 0;
	GUARD(sign_input(op, dg, &dlen, &alg));
	uint8_t *sig = NULL;
	size_t siglen = 0;
	EVP_PKEY *pk = NULL;
	unsigned algs = 0;
	/* CKM_RSA_PKCS learns its algorithm only now: the key must run it. */
	CK_RV rv = op->kms.pubkey(op->kms.tok, op->kms_index, &pk, &algs);
	EVP_PKEY_free(pk);
	if (rv == CKR_OK && !(algs & SALG_BIT(alg))) {
		char b[160];
		log_info("mech", "%s: the KMS key signs only with %s", op->mech->name,
			 alg_list(algs, b, sizeof(b)));
		rv = CKR_DATA_INVALID;
	}
	if (rv == CKR_OK)
		rv = op->kms.sign(op->kms.tok, op->kms_index, (sign_alg)alg, dg, dlen, &sig,
				  &siglen);
	if (rv == CKR_OK && siglen != op->outlen)
		rv = CKR_DEVICE_ERROR; /* asym.c checked it; a bug otherwise */
	if (rv == CKR_OK) {
		memcpy(out, sig, siglen);
		*outlen = siglen;
	}
	free(sig);
	return rv;
}

CK_RV sign_oneshot(mac_op *op, const uint8_t *in, size_t inlen, uint8_t *out,
		   CK_ULONG *outlen)
{
	if (!out || *outlen < op->outlen)
		return sign_final(op, out, outlen); /* length rules only */
	GUARD(sign_update(op, in, inlen));
	return sign_final(op, out, outlen);
}

CK_RV sign_verify_final(mac_op *op, const uint8_t *sig, size_t siglen)
{
	if (siglen != op->outlen) {
		log_info("mech", "%s: a signature of this key has %zu bytes, %zu given",
			 op->mech->name, op->outlen, siglen);
		return CKR_SIGNATURE_LEN_RANGE;
	}
	if (op->mech->type == CKM_RSA_PKCS) {
		bool ok = asym_verify_pkcs1_raw(op->pub, op->held.p ? op->held.p : (uint8_t *)"",
						op->held.len, sig, siglen);
		return ok ? CKR_OK : CKR_SIGNATURE_INVALID;
	}
	uint8_t dg[EVP_MAX_MD_SIZE];
	size_t dlen = 0;
	int alg = 0;
	GUARD(sign_input(op, dg, &dlen, &alg));
	return asym_verify(op->pub, (sign_alg)alg, dg, dlen, sig, siglen) ? CKR_OK
									  : CKR_SIGNATURE_INVALID;
}
