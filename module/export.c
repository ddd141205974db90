/* SPDX-License-Identifier: Apache-2.0 */
/* The shared module's own translation unit: the entry points live in the
 * core library (module/entry.c), pulled in whole; p11kms.map exports the
 * three PKCS #11 discovery functions and nothing else. */
#include "p11kms/pkcs11.h"

/* Referenced so the linker keeps entry.o even without --whole-archive. */
void *p11kms_keep_entry_points(void);
void *p11kms_keep_entry_points(void)
{
	return (void *)C_GetFunctionList;
}
