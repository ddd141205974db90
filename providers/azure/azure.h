/* SPDX-License-Identifier: Apache-2.0 */
/* The Azure Key Vault / Managed HSM provider (azure.c). Tests drive it
 * through its provider_ops, test_set_transport included. */
#ifndef P11KMS_AZURE_H
#define P11KMS_AZURE_H

#include "providers/provider.h"

extern const provider_ops azure_provider_ops;

#endif
