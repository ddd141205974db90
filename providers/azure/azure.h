/* SPDX-License-Identifier: Apache-2.0 */
/* Test hooks of the Azure provider (azure.c): the provider's own HTTP
 * clients get a fake transport and no sleeping, so unit tests drive the
 * token flows and error mapping without a network. */
#ifndef P11KMS_AZURE_H
#define P11KMS_AZURE_H

#include "providers/common/http.h"

void azure_test_set_transport(void *state, http_transport_fn fn, void *arg,
			      http_sleep_fn sleep_fn);

#endif
