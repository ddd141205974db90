/* SPDX-License-Identifier: Apache-2.0 */
/* Test hooks of the Google Cloud KMS provider (gcp.c). */
#ifndef P11KMS_GCP_H
#define P11KMS_GCP_H

#include "oauth.h"
#include "providers/common/http.h"
#include "providers/provider.h"

extern const provider_ops gcp_provider_ops;

/* Replace the transport and sleep of both of the provider's HTTP clients
 * (KMS/token endpoint and metadata server), and the token cache's clock. */
void gcp_test_hooks(void *state, http_transport_fn fn, void *arg, http_sleep_fn sleep_fn,
		    uint64_t (*now)(void *arg), void *now_arg);
/* google.rpc.Status name -> the internal vocabulary. */
p11k_err gcp_map_status(const char *status, long http_status, bool decrypt);

#endif
