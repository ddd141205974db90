/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The RSA-OAEP checks every cloud's RSA key pair must pass, whatever the
 * cloud: the public numbers, wrap/unwrap and encrypt/decrypt with both
 * hashes, length queries that cost no KMS call, parameters refused before
 * any call, results that open with the cloud's own SDK and the other way
 * round, and tampering. Each cloud's test supplies an oaep_cloud with its
 * emulator's counters and SDK, and RSA keys labelled "kek" (2048 bits),
 * "rsa3k" (3072 bits) and "dis" (to be disabled). Each pair has one role,
 * its configured "usage": the wrap tests need "wrap" (the default), the
 * encrypt/decrypt test "data"; sdk_interop, tampered, disabled and
 * one_role test the role they find, so a cloud runs them under both.
 */
#ifndef P11KMS_TEST_OAEP_SUITE_H
#define P11KMS_TEST_OAEP_SUITE_H

#include "harness.h"

typedef struct oaep_cloud {
	h_env *env;
	CK_SESSION_HANDLE *session;
	/* KMS calls of one kind since the last reset: "public" (reading the
	 * public key), "wrap", "unwrap", "encrypt", "decrypt"; NULL: all. */
	long (*count)(const char *kind);
	void (*reset)(void);
	/* The emulator's view of the "kek" key: "NHEX EHEX BITS". */
	void (*pubkey)(char *line, size_t n);
	/* The cloud's SDK runs OP ("wrap", "unwrap", "encrypt", "decrypt")
	 * with RSA-OAEP (SHA-256 or SHA-1) on the "kek" key, from file IN to
	 * file OUT in the env's folder. */
	void (*sdk)(const char *op, bool sha256, const char *in, const char *out);
	/* Disable (false) or enable (true) the KMS key labelled "dis". */
	void (*set_enabled)(bool enabled);
} oaep_cloud;

/* cmocka tests: the oaep_cloud is the test's state, given with
 * H_TEST_STATE(name, setup, teardown, &cloud). */
void oaep_public_attributes(void **state);
void oaep_sha1_wrap_unwrap(void **state);
void oaep_sha256_wrap_unwrap(void **state);
void oaep_encrypt_decrypt(void **state);
void oaep_sdk_interop(void **state);
void oaep_tampered(void **state);
void oaep_disabled(void **state);
void oaep_one_role(void **state);


#endif
