/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The one mechanism table. C_GetMechanismList, C_GetMechanismInfo, the
 * checks at every *Init and key generation all read it; nothing else
 * names a mechanism.
 */
#ifndef P11KMS_MECH_H
#define P11KMS_MECH_H

#include <openssl/evp.h>

#include "common/common.h"
#include "slots/kms_port.h"

typedef struct mech_info mech_info;
typedef struct cipher_impl cipher_impl;

/* What a running operation remembers of its token (module/crypt.c): a
 * local operation ends with CKR_DEVICE_ERROR once the token is revoked,
 * and one on a token object's key also once the token key it was loaded
 * under is gone (docs/SECURITY.md). */
typedef struct op_live {
	bool local;     /* a local key: the token's revocation ends it */
	bool tk;        /* the key is a token object's: so does a new tk_epoch */
	uint64_t epoch; /* the token's tk_epoch at init */
} op_live;

/* The cipher context a session's last local operation of one kind
 * (encrypt or decrypt) leaves behind, its key schedule overwritten with
 * an all-zero key's (no key outlives its operation in ordinary memory: a
 * core dump holds that): the next operation with the same cipher keys it
 * without allocating or setting up a context. Freed with the session. */
typedef struct cipher_keep {
	EVP_CIPHER_CTX *ctx;
	const EVP_CIPHER *cipher;
	size_t gcm_ivlen; /* the IV length ctx is set to (GCM) */
	bool encrypt;
} cipher_keep;

/* State of one encrypt or decrypt operation. */
typedef struct cipher_op {
	const mech_info *mech;
	const cipher_impl *impl; /* mech->cipher, or the KMS's for KMS keys */
	bool encrypt;
	bool multipart;      /* an Update has been called */
	EVP_CIPHER_CTX *ctx;
	size_t keylen;
	uint8_t iv[16];      /* CBC IV, or key wrap IV */
	size_t ivlen;
	uint8_t *gcm_iv;     /* GCM: IV (gcm_ivbuf, or malloc when longer) */
	size_t gcm_ivlen;
	uint8_t *aad;        /* GCM: AAD (aadbuf, or malloc when longer) */
	size_t aadlen;
	uint8_t gcm_ivbuf[16];
	uint8_t aadbuf[64];
	const EVP_CIPHER *evp; /* the cipher ctx is set up for */
	cipher_keep keep;    /* left by the last operation (crypt.c) */
	size_t taglen;       /* GCM: tag bytes */
	dbuf_t buf;          /* data held back between parts (secure) */
	uint8_t tail[16];    /* CBC-PAD decrypt: the last plaintext block */
	size_t tail_len;
	bool tail_done;      /* tail decrypted, waiting for a big enough buffer */
	/* remote (KMS) operations */
	kms_port kms;        /* .tok NULL: a local operation */
	const char *kms_key_id;
	uint8_t *kms_ctx;
	size_t kms_ctxlen;
	/* standard mechanisms run by the KMS (docs/REMOTE.md) */
	size_t kms_index;    /* the configured key */
	int kms_alg;         /* remote_alg */
	bool kms_key_op;     /* wrap / unwrap rather than encrypt / decrypt */
	bool kms_pad7;       /* CKM_AES_KEY_WRAP_PAD: PKCS #7 here, RFC 3394 there */
	size_t kms_bits;     /* AES key size */
	size_t kms_modlen;   /* RSA modulus bytes */
	size_t kms_hlen;     /* OAEP hash bytes */
	uint8_t *kms_iv_out; /* GCM encrypt: the caller's pIv (12 bytes) */
	uint8_t *kms_in;     /* decrypt: the input of a result kept for a */
	size_t kms_inlen;    /*   retry after CKR_BUFFER_TOO_SMALL */
	uint8_t *kms_res;
	size_t kms_reslen;
	uint64_t ctr_left;   /* CTR: counter blocks left before it would wrap */
	uint64_t ctr_bytes;  /* CTR: bytes processed */
	bool ctx_fresh;      /* ctx keyed and unused */
	op_live live;        /* set by crypt.c once started */
} cipher_op;

struct cipher_impl {
	CK_RV (*init)(cipher_op *op, const CK_MECHANISM *m);
	/* Each follows PKCS #11 5.2: out == NULL asks the length; a short
	 * buffer gives CKR_BUFFER_TOO_SMALL with the length. Either leaves
	 * the operation active. */
	CK_RV (*oneshot)(cipher_op *op, const uint8_t *in, size_t inlen,
			 uint8_t *out, CK_ULONG *outlen);
	CK_RV (*update)(cipher_op *op, const uint8_t *in, size_t inlen,
			uint8_t *out, CK_ULONG *outlen);
	CK_RV (*final)(cipher_op *op, uint8_t *out, CK_ULONG *outlen);
};

/* State of one digest, sign or verify operation. */
typedef struct mac_op {
	const mech_info *mech;
	bool multipart;
	EVP_MD_CTX *md;    /* digests */
	EVP_MAC_CTX *mac;  /* HMAC, CMAC */
	size_t outlen;     /* bytes of output (shorter for _GENERAL) */
	op_live live;      /* revocation ends it (crypt.c, docs/SECURITY.md) */
	/* KMS asymmetric keys (module/sign.c): the KMS signs, verification
	 * is local with the public key */
	kms_port kms;
	size_t kms_index;
	EVP_PKEY *pub;
	int salg;          /* sign_alg; 0 until CKM_RSA_PKCS's DigestInfo names it */
	bool verify;
	dbuf_t held;       /* the single-part mechanisms' input */
} mac_op;

typedef enum mac_kind { MAC_NONE, MAC_DIGEST, MAC_HMAC, MAC_CMAC, MAC_ASYM } mac_kind;

struct mech_info {
	CK_MECHANISM_TYPE type;
	const char *name;
	CK_ULONG min_key, max_key; /* as reported in CK_MECHANISM_INFO */
	CK_FLAGS flags;
	CK_KEY_TYPE key_type;      /* key the mechanism uses or makes */
	CK_RV (*check_param)(const CK_MECHANISM *m);
	const cipher_impl *cipher; /* encrypt / decrypt / wrap / unwrap */
	bool keygen;
	mac_kind mac;              /* digest / sign / verify */
	const char *md;            /* OpenSSL digest name */
	bool general;              /* _GENERAL: output length is the parameter */
	bool key_bits;             /* min_key/max_key are bits, not bytes */
	bool remote;               /* the envelope: runs in the KMS, on KMS key objects */
	bool kms_only;             /* offered on KMS keys only (no local key type) */
	int salg;                  /* MAC_ASYM hashing mechanisms: their sign_alg
				    * (ECDSA: the SHA-256 one, whichever curve) */
	bool multipart;            /* MAC_ASYM: takes C_SignUpdate (it hashes) */
};

const mech_info *mech_lookup(CK_MECHANISM_TYPE t);
size_t mech_count(void);
const mech_info *mech_at(size_t i);
/* Is keylen (bytes) acceptable for m? */
bool mech_key_ok(const mech_info *m, size_t keylen);

/* Start an operation: parameters checked, context keyed (key is not
 * kept: the caller's copy may go once this returns). */
CK_RV cipher_op_init(cipher_op *op, const mech_info *mi, const CK_MECHANISM *m,
		     const uint8_t *key, size_t keylen, bool encrypt);
/* The same with the context a session's last operation left (consumed:
 * taken into op when it fits, freed otherwise). */
CK_RV cipher_op_init_kept(cipher_op *op, cipher_keep *keep, const mech_info *mi,
			  const CK_MECHANISM *m, const uint8_t *key, size_t keylen,
			  bool encrypt);
/* End op, keeping its context, scrubbed, in op->keep for the next one. */
void cipher_op_end_keep(cipher_op *op);
void cipher_keep_free(cipher_keep *k);
void cipher_op_free(cipher_op *op);
bool cipher_op_active(const cipher_op *op);

/* Remote operations run through the token's KMS port (slots/kms_port.h),
 * with no lock held. */
CK_RV cipher_op_init_remote(cipher_op *op, const mech_info *mi,
			    const CK_MECHANISM *m, const kms_port *port, const char *key_id,
			    bool encrypt);

/* The envelope for C_WrapKey / C_UnwrapKey: protected_domain (a
 * sensitive key) asks the KMS under the reserved wrap domain, which no
 * caller's context may name (docs/SECURITY.md). */
CK_RV cipher_op_init_remote_key(cipher_op *op, const mech_info *mi, const CK_MECHANISM *m,
				const kms_port *port, const char *key_id, bool encrypt,
				bool protected_domain);

/* Standard mechanisms on typed KMS keys (docs/REMOTE.md), through the
 * port's std and modlen. */
/* Can mi run on a KMS key? (the envelope, or a standard one in the KMS) */
bool mech_kms_capable(const mech_info *mi);
CK_RV cipher_op_init_kms(cipher_op *op, const mech_info *mi, const CK_MECHANISM *m,
			 const kms_port *port, size_t idx, size_t key_bits, size_t modlen,
			 bool encrypt, bool key_op);
/* One AES-GCM message on KMS key idx: the KMS makes the 12-byte IV when
 * encrypting (written to iv). Encrypt: in is plaintext, *res is
 * ciphertext||tag. Decrypt: in is ciphertext||tag. *res is secure memory. */
CK_RV mech_kms_gcm(const kms_port *port, size_t idx, size_t key_bits, bool encrypt, const uint8_t *aad,
		   size_t aadlen, const uint8_t *in, size_t inlen, uint8_t iv[12],
		   uint8_t **res, size_t *reslen);

/* Digest (key NULL), HMAC or CMAC. */
CK_RV mac_op_init(mac_op *op, const mech_info *mi, const CK_MECHANISM *m,
		  const uint8_t *key, size_t keylen);
void mac_op_free(mac_op *op);
bool mac_op_active(const mac_op *op);
CK_RV mac_update(mac_op *op, const uint8_t *in, size_t inlen);
/* PKCS #11 5.2 length rules; out == NULL asks the length. */
CK_RV mac_final(mac_op *op, uint8_t *out, CK_ULONG *outlen);
CK_RV mac_oneshot(mac_op *op, const uint8_t *in, size_t inlen, uint8_t *out,
		  CK_ULONG *outlen);
/* Verify: compute and compare in constant time. */
CK_RV mac_verify_final(mac_op *op, const uint8_t *sig, size_t siglen);

/* Signing with a KMS asymmetric key and verifying with its public key
 * (module/sign.c, docs/SIGNING.md): the mac_* functions above run them. */
CK_RV sign_op_init(mac_op *op, const mech_info *mi, const CK_MECHANISM *m,
		   const kms_port *port, size_t idx, bool verify);
CK_RV sign_update(mac_op *op, const uint8_t *in, size_t inlen);
CK_RV sign_final(mac_op *op, uint8_t *out, CK_ULONG *outlen);
CK_RV sign_oneshot(mac_op *op, const uint8_t *in, size_t inlen, uint8_t *out,
		   CK_ULONG *outlen);
CK_RV sign_verify_final(mac_op *op, const uint8_t *sig, size_t siglen);
CK_RV param_pss(const CK_MECHANISM *m);

#endif
