/* SPDX-License-Identifier: Apache-2.0 */
/* Known-answer vectors as hex: shared by the unit tests of module/. */
#ifndef P11KMS_TEST_UNHEX_H
#define P11KMS_TEST_UNHEX_H

#include <stddef.h>
#include <stdint.h>

/* Hex (either case, spaces ignored) to at most cap bytes. Returns the
 * length, or (size_t)-1 for a bad digit, an odd count or overflow. */
size_t unhex(const char *hex, uint8_t *out, size_t cap);

#endif
