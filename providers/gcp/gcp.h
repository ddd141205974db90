/* SPDX-License-Identifier: Apache-2.0 */
/* The Google Cloud KMS provider (gcp.c; its parts in gcp_impl.h), for
 * tests: its provider_ops (test_set_transport included) and its error
 * mapping. */
#ifndef P11KMS_GCP_H
#define P11KMS_GCP_H

#include "oauth.h"
#include "providers/common/http.h"
#include "providers/provider.h"

extern const provider_ops gcp_provider_ops;

/* google.rpc.Status name -> the internal vocabulary. */
p11k_err gcp_map_status(const char *status, long http_status, bool decrypt);

#endif
