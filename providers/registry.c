/* SPDX-License-Identifier: Apache-2.0 */
/* The one place that lists providers. */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "provider.h"

extern const provider_ops local_provider_ops;
extern const provider_ops aws_provider_ops;
extern const provider_ops azure_provider_ops;
extern const provider_ops gcp_provider_ops;

static const provider_ops *const registry[] = {
	&local_provider_ops,
	&aws_provider_ops,
	&azure_provider_ops,
	&gcp_provider_ops,
};

const provider_ops *provider_find(const char *type)
{
	for (size_t i = 0; type && i < ARRAY_SIZE(registry); i++)
		if (strcmp(registry[i]->type, type) == 0)
			return registry[i];
	return NULL;
}

const char *provider_types(void)
{
	return "local, aws, azure, gcp";
}

void provider_status_set(provider_status *st, p11k_err err, const char *fmt, ...)
{
	va_list ap;
	if (!st)
		return;
	st->err = err;
	va_start(ap, fmt);
	vsnprintf(st->message, sizeof(st->message), fmt, ap);
	va_end(ap);
}

void asym_public_free(asym_public *p)
{
	if (!p)
		return;
	free(p->spki);
	memset(p, 0, sizeof(*p));
}
