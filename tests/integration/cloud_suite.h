/* SPDX-License-Identifier: Apache-2.0 */
/*
 * The end-to-end checks every cloud provider must pass, whatever the
 * cloud: a token survives a restart with exactly one KMS call to unseal
 * it; unreachable KMS within the grace period keeps working, beyond it
 * fails closed; remote calls from several threads are in flight at once.
 * Each cloud's test supplies a cloud_e2e naming its emulator's service
 * and operations (the generic control script, emuctl.py, drives them), and lists the checks with H_TEST_STATE(check, setup,
 * teardown, &cloud) (the fails-closed check with a setup of no grace).
 */
#ifndef P11KMS_TEST_CLOUD_SUITE_H
#define P11KMS_TEST_CLOUD_SUITE_H

#include "harness.h"

typedef struct cloud_e2e {
	h_env *env;
	CK_SESSION_HANDLE *session;
	const char *service;     /* the emulator's name for the KMS */
	const char *seal_op;     /* the envelope's KMS operations */
	const char *unseal_op;
	const char *describe_op; /* what revalidation calls */
	const char *unreachable; /* fault fields that make it unreachable */
	const char *unreachable_log; /* also logged when failing closed, or NULL */
	const char *kms_label;   /* the envelope key object */
} cloud_e2e;

void cloud_token_survives_restart(void **state);
void cloud_unreachable_within_grace(void **state);
void cloud_unreachable_fails_closed(void **state);
void cloud_threads_do_not_serialize(void **state);

#endif
