/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The PKCS #11 3.0 message-based AEAD API for AES-GCM (v3.0 base 5.14-5.15,
 * current mechanisms 2.10.4): one key, many messages, each with its own IV,
 * AAD and tag carried in CK_GCM_MESSAGE_PARAMS. The module can generate the
 * IV (CKG_GENERATE, CKG_GENERATE_RANDOM, CKG_GENERATE_COUNTER); it never
 * hands out the same generated (key, IV) pair twice: random IVs carry at
 * least 64 random bits, and counter IVs come from per-key ranges reserved
 * in the token's store before use, so no process or restart repeats one.
 */
#ifndef P11KMS_AEAD_H
#define P11KMS_AEAD_H

#include "mech.h"

#define KID_LEN 32

/* Reserves counter values for a key: [*first, *first + count) of the
 * key's counter, which began at *start (random: counters of the same key
 * in another token or after a re-initialization begin elsewhere). */
typedef CK_RV (*counter_reserve_fn)(void *arg, const uint8_t kid[KID_LEN],
				    uint64_t count, uint64_t *first, uint64_t *start);

typedef struct msg_op {
	bool active, encrypt, in_message;
	EVP_CIPHER_CTX *ctx;
	uint8_t *key;
	size_t keylen;
	bool has_kid;             /* key identity for counter IVs */
	uint8_t kid[KID_LEN];
	uint64_t ctr_next, ctr_end, ctr_start;
	CK_GCM_MESSAGE_PARAMS *cur; /* the caller's params during a message */
	size_t taglen;
	/* a KMS key (docs/REMOTE.md): each message is one KMS call */
	kms_port kms;             /* .tok NULL: a local key */
	size_t kms_idx, kms_bits;
	op_live live;             /* set by msg.c once started */
} msg_op;

/* The same on a typed KMS AES key: the KMS generates every IV. */
CK_RV msg_op_init_kms(msg_op *op, const CK_MECHANISM *m, bool encrypt, const kms_port *port,
		      size_t idx, size_t key_bits);

CK_RV msg_op_init(msg_op *op, const CK_MECHANISM *m, const uint8_t *key,
		  size_t keylen, bool encrypt, const uint8_t *kid);
void msg_op_free(msg_op *op);

/* C_EncryptMessage / C_DecryptMessage. */
CK_RV msg_oneshot(msg_op *op, void *param, CK_ULONG plen, const uint8_t *aad,
		  CK_ULONG aadlen, const uint8_t *in, CK_ULONG inlen, uint8_t *out,
		  CK_ULONG *outlen, counter_reserve_fn reserve, void *rarg);
/* C_*MessageBegin / C_*MessageNext. */
CK_RV msg_begin(msg_op *op, void *param, CK_ULONG plen, const uint8_t *aad,
		CK_ULONG aadlen, counter_reserve_fn reserve, void *rarg);
CK_RV msg_next(msg_op *op, void *param, CK_ULONG plen, const uint8_t *in,
	       CK_ULONG inlen, uint8_t *out, CK_ULONG *outlen, CK_FLAGS flags);

#endif
